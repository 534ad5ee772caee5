package polytel

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The pipeline Configure made; nil before Configure and after Shutdown.
var active atomic.Pointer[pipeline]

// How long a record may wait in a Go buffer before it is handed to the
// library (which batches again for export).
const shipInterval = 100 * time.Millisecond

// Without a deadline in the context, Shutdown and ForceFlush wait this long.
const defaultDeadline = 30 * time.Second

// plan is what the core tells a host to apply on its hot path (`plan` in
// wit/polytel.wit).
type plan struct {
	Disabled bool `json:"disabled"`
	Sampler  struct {
		ParentBased bool   `json:"parent_based"`
		RootBound   string `json:"root_bound"`
	} `json:"sampler"`
	MaxBatch int  `json:"max_batch"`
	MaxQueue int  `json:"max_queue"`
	Traces   bool `json:"traces"`
	Metrics  bool `json:"metrics"`
	Logs     bool `json:"logs"`
	// Whether GenAI content (an operation's input and output) is kept.
	GenAICapture bool `json:"genai_capture"`

	rootBound uint64
}

// pipeline is one configured pipeline: the library's handle, the plan, the id
// generator and a buffer per signal.
type pipeline struct {
	// mu is held for reading by every call on c, and for writing by free.
	mu    sync.RWMutex
	c     cHandle
	freed bool

	plan      plan
	ids       atomic.Uint64 // splitmix64 state
	testClock bool
	closed    atomic.Bool
	bufs      [3]buffer
	warned    sync.Map
	// The library's counters at shutdown, before the handle is freed (tests read them).
	finalStats string
}

// buffer holds one signal's records until a batch is handed over.
type buffer struct {
	sig signal
	max int

	mu    sync.Mutex // guards buf, n and armed
	buf   []byte     // "[" and the records, comma-separated
	n     int
	armed bool
	timer *time.Timer

	// ship is held while a batch is handed over, so batches arrive in order.
	ship  sync.Mutex
	spare []byte // guarded by ship
}

// Configure sets up polytel for this process: where telemetry goes and how.
// A bad configuration fails with one sentence saying what is wrong (a missing
// credential names the option and the environment variable). Configuring
// again replaces the pipeline; the old one is shut down.
func Configure(o Options) error {
	p, err := newPipeline(o)
	if err != nil {
		return err
	}
	if old := active.Swap(p); old != nil {
		_ = old.shutdown(5 * time.Second)
	}
	return nil
}

func newPipeline(o Options) (*pipeline, error) {
	members := o.members()
	if o.Env != nil {
		members["env"] = o.Env
	}
	var seed uint64
	if o.test != nil {
		seed = o.test.seed
		members["clock"] = map[string]string{
			"start": strconv.FormatUint(o.test.clockStart, 10),
			"step":  strconv.FormatUint(o.test.clockStep, 10),
		}
		members["detect_host"] = false
		members["host"] = map[string]any{"sdk_language": "go"}
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
		members["host"] = map[string]any{
			"sdk_language":                "go",
			"process_runtime_name":        "go",
			"process_runtime_version":     runtime.Version(),
			"process_runtime_description": "go " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		}
	}
	members["seed"] = strconv.FormatUint(seed, 10)
	optionsJSON, err := json.Marshal(members)
	if err != nil {
		return nil, fmt.Errorf("polytel: the options could not be written as JSON: %w", err)
	}
	c, err := cConfigure(optionsJSON)
	if err != nil {
		return nil, err
	}
	p := &pipeline{c: c, testClock: o.test != nil}
	p.ids.Store(seed)
	planJSON, err := c.plan()
	if err == nil {
		err = json.Unmarshal([]byte(planJSON), &p.plan)
	}
	if err == nil {
		p.plan.rootBound, err = strconv.ParseUint(p.plan.Sampler.RootBound, 10, 64)
	}
	if err != nil {
		_, _ = c.shutdown(0)
		c.free()
		return nil, fmt.Errorf("polytel: the core's plan could not be read: %w", err)
	}
	batch := p.plan.MaxBatch
	if batch <= 0 || batch > 512 {
		batch = 512
	}
	for i := range p.bufs {
		b := &p.bufs[i]
		b.sig, b.max = signal(i), batch
		b.timer = time.AfterFunc(time.Hour, func() { p.shipTimer(b) })
		b.timer.Stop()
	}
	return p, nil
}

// now is a timestamp in unix nanoseconds.
func (p *pipeline) now() uint64 {
	if p.testClock {
		p.mu.RLock()
		defer p.mu.RUnlock()
		if p.freed {
			return 0
		}
		return p.c.now()
	}
	return uint64(time.Now().UnixNano())
}

// wants reports whether records of sig are worth writing.
func (p *pipeline) wants(sig signal) bool {
	if p.closed.Load() {
		return false
	}
	switch sig {
	case signalSpans:
		return p.plan.Traces
	case signalMetrics:
		return p.plan.Metrics
	default:
		return p.plan.Logs
	}
}

// warnOnce shows a message of the library's once.
func (p *pipeline) warnOnce(err error) {
	if _, seen := p.warned.LoadOrStore(err.Error(), true); !seen {
		fmt.Fprintln(os.Stderr, err.Error())
	}
}

// push appends one record (batch JSON) to its signal's buffer; a full buffer
// is handed to the library at once, in the caller's goroutine.
func (p *pipeline) push(sig signal, record []byte) {
	b := &p.bufs[sig]
	b.mu.Lock()
	if b.n == 0 {
		b.buf = append(b.buf[:0], '[')
	} else {
		b.buf = append(b.buf, ',')
	}
	b.buf = append(b.buf, record...)
	b.n++
	full := b.n >= b.max
	if !full && !b.armed {
		b.armed = true
		b.timer.Reset(shipInterval)
	}
	b.mu.Unlock()
	if full {
		p.shipBuffer(b)
	}
}

func (p *pipeline) shipTimer(b *buffer) {
	b.mu.Lock()
	b.armed = false
	b.mu.Unlock()
	p.shipBuffer(b)
}

// shipBuffer hands what b holds to the library: one cgo call per batch.
func (p *pipeline) shipBuffer(b *buffer) {
	b.ship.Lock()
	defer b.ship.Unlock()
	b.mu.Lock()
	if b.n == 0 {
		b.mu.Unlock()
		return
	}
	batch := b.buf
	b.buf, b.n = b.spare[:0], 0
	b.mu.Unlock()
	batch = append(batch, ']')
	p.mu.RLock()
	var err error
	if !p.freed {
		err = p.c.record(b.sig, batch)
	}
	p.mu.RUnlock()
	if err != nil {
		p.warnOnce(err)
	}
	if cap(batch) <= 1<<20 {
		b.spare = batch[:0]
	} else {
		b.spare = nil
	}
}

func (p *pipeline) shipAll() {
	for i := range p.bufs {
		p.shipBuffer(&p.bufs[i])
	}
}

// call runs f on the library's handle unless it was freed.
func (p *pipeline) call(f func(c cHandle) error) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.freed {
		return errors.New("polytel: telemetry was shut down")
	}
	return f(p.c)
}

// shutdown ships what is buffered, flushes within timeout, stops the
// library's worker and frees the handle.
func (p *pipeline) shutdown(timeout time.Duration) error {
	p.shipAll()
	p.closed.Store(true)
	for i := range p.bufs {
		p.bufs[i].timer.Stop()
	}
	var report struct {
		Flushed   bool   `json:"flushed"`
		Abandoned uint64 `json:"abandoned"`
	}
	err := p.call(func(c cHandle) error {
		s, err := c.shutdown(millis(timeout))
		if err != nil {
			return err
		}
		p.finalStats, _ = c.stats()
		return json.Unmarshal([]byte(s), &report)
	})
	p.mu.Lock()
	if !p.freed {
		p.freed = true
		p.c.free()
	}
	p.mu.Unlock()
	switch {
	case err != nil:
		return err
	case !report.Flushed || report.Abandoned > 0:
		return fmt.Errorf("polytel: shutdown did not deliver everything before the deadline: %d items were dropped", report.Abandoned)
	}
	return nil
}

func millis(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Millisecond - 1) / time.Millisecond)
}

// deadline is how long ctx leaves, or defaultDeadline.
func deadline(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return defaultDeadline
}

// wait runs f in its own goroutine and waits for it or for ctx.
func wait(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ForceFlush exports everything recorded so far, within ctx's deadline (30
// seconds without one).
func ForceFlush(ctx context.Context) error {
	p := active.Load()
	if p == nil {
		return nil
	}
	return wait(ctx, func() error {
		p.shipAll()
		flushed := false
		err := p.call(func(c cHandle) error {
			flushed = c.forceFlush(millis(deadline(ctx)))
			return nil
		})
		if err == nil && !flushed {
			err = errors.New("polytel: the flush did not finish before the deadline")
		}
		return err
	})
}

// Shutdown flushes what was recorded within ctx's deadline (30 seconds
// without one), then stops exporting; telemetry recorded afterwards is
// dropped until Configure is called again. It fails if something could not be
// delivered in time (the count of what was dropped is in the message).
func Shutdown(ctx context.Context) error {
	p := active.Swap(nil)
	if p == nil {
		return nil
	}
	d := deadline(ctx)
	done := make(chan error, 1)
	go func() { done <- p.shutdown(d) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The shutdown keeps the same deadline, so its report (which says what
		// was dropped) follows at once; it wins over ctx's bare error.
		select {
		case err := <-done:
			return err
		case <-time.After(shutdownGrace):
			return ctx.Err()
		}
	}
}

// shutdownGrace is how long Shutdown waits past ctx's end for the report.
const shutdownGrace = 500 * time.Millisecond

// Stats returns polytel's counters: per signal ("spans", "metrics", "logs")
// what was received, exported, dropped (by reason) and retried, and under
// "host" the library's buffer. Under "operations", the summary of every GenAI
// operation ended so far (see StartLLMCall): per operation, name and
// provider the count, errors by type, duration quantiles, tokens and cost.
func Stats() (map[string]any, error) {
	p := active.Load()
	if p == nil {
		return nil, errors.New("polytel: not configured")
	}
	p.shipAll()
	var out map[string]any
	err := p.call(func(c cHandle) error {
		s, err := c.stats()
		if err != nil {
			return err
		}
		return json.Unmarshal([]byte(s), &out)
	})
	return out, err
}

// Describe says where each signal goes (backend, URL, protocol, encoding,
// headers with credentials masked), as JSON.
func Describe() (string, error) {
	p := active.Load()
	if p == nil {
		return "", errors.New("polytel: not configured")
	}
	var out string
	err := p.call(func(c cHandle) (err error) {
		out, err = c.describe()
		return err
	})
	return out, err
}

// Version is the version of the polytel library linked in.
func Version() string { return libraryVersion() }

// scratch buffers for writing one record.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getScratch() *[]byte { return scratch.Get().(*[]byte) }

func putScratch(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		scratch.Put(b)
	}
}
