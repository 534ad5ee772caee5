package polytel

import (
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"time"
)

// Levels beyond slog's four, for the OpenTelemetry severities TRACE and FATAL.
const (
	LevelTrace = slog.Level(-8)
	LevelFatal = slog.Level(12)
)

// EventNameKey is the attribute key the handler reads a log record's event
// name from (a top-level string attribute; see EventName).
const EventNameKey = "event.name"

// EventName makes a log record an event with this name:
//
//	slog.InfoContext(ctx, "cache warm", polytel.EventName("agent.cache"))
func EventName(name string) slog.Attr { return slog.String(EventNameKey, name) }

// NewSlogHandler is a slog.Handler that sends log records through polytel as
// OpenTelemetry log records. The span in the record's context (the ctx of
// slog.InfoContext and friends) gives the record its trace and span ids.
// opts may be nil; Level (default slog.LevelInfo), AddSource and ReplaceAttr
// are honoured. Levels map to severities as OpenTelemetry's slog bridge maps
// them: DEBUG 5, INFO 9, WARN 13, ERROR 17 (LevelTrace 1, LevelFatal 21).
func NewSlogHandler(opts *slog.HandlerOptions) slog.Handler {
	h := &slogHandler{}
	if opts != nil {
		h.opts = *opts
	}
	return h
}

type slogHandler struct {
	opts slog.HandlerOptions
	// What WithGroup and WithAttrs added, in order.
	chain []groupOrAttrs
}

type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

func (h *slogHandler) Enabled(_ context.Context, level slog.Level) bool {
	min := slog.LevelInfo
	if h.opts.Level != nil {
		min = h.opts.Level.Level()
	}
	if level < min {
		return false
	}
	p := active.Load()
	return p != nil && p.wants(signalLogs)
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(groupOrAttrs{attrs: attrs})
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(groupOrAttrs{group: name})
}

func (h *slogHandler) with(g groupOrAttrs) *slogHandler {
	chain := make([]groupOrAttrs, len(h.chain)+1)
	copy(chain, h.chain)
	chain[len(h.chain)] = g
	return &slogHandler{opts: h.opts, chain: chain}
}

// severity is the OpenTelemetry severity number and text of a slog level.
func severity(l slog.Level) (int, string) {
	n := int(l) + 9
	n = max(1, min(24, n))
	switch l {
	case LevelTrace:
		return n, "TRACE"
	case LevelFatal:
		return n, "FATAL"
	}
	return n, l.String()
}

func (h *slogHandler) Handle(ctx context.Context, r slog.Record) error {
	p := active.Load()
	if p == nil || !p.wants(signalLogs) {
		return nil
	}
	observed := p.now()
	t := observed
	if !r.Time.IsZero() {
		t = uint64(r.Time.UnixNano())
	}
	num, text := severity(r.Level)
	buf := getScratch()
	b := append((*buf)[:0], `{"time":`...)
	b = strconv.AppendUint(b, t, 10)
	b = append(b, `,"observed":`...)
	b = strconv.AppendUint(b, observed, 10)
	b = append(b, `,"severity":`...)
	b = strconv.AppendInt(b, int64(num), 10)
	b = append(b, `,"severity_text":`...)
	b = appendString(b, text)
	b = append(b, `,"body":`...)
	b = appendString(b, r.Message)

	w := attrWriter{opts: &h.opts}
	if h.opts.AddSource && r.PC != 0 {
		frames := runtime.CallersFrames([]uintptr{r.PC})
		f, _ := frames.Next()
		w.write(slog.String("code.file.path", f.File))
		w.write(slog.Int("code.line.number", f.Line))
		w.write(slog.String("code.function.name", f.Function))
	}
	for _, g := range h.chain {
		if g.group != "" {
			w.openGroup(g.group)
		}
		for _, a := range g.attrs {
			w.write(a)
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		w.write(a)
		return true
	})
	w.close()
	if len(w.members) > 0 {
		b = append(b, `,"attributes":{`...)
		b = append(b, w.members...)
		b = append(b, '}')
	}
	if w.eventName != "" {
		b = append(b, `,"event_name":`...)
		b = appendString(b, w.eventName)
	}
	if sc := SpanContextFromContext(ctx); sc.IsValid() {
		b = append(b, `,"trace_id":"`...)
		b = appendHex(b, sc.TraceID[:])
		b = append(b, `","span_id":"`...)
		b = appendHex(b, sc.SpanID[:])
		b = append(b, `","flags":`...)
		if sc.Sampled {
			b = append(b, '1')
		} else {
			b = append(b, '0')
		}
	}
	b = append(b, '}')
	*buf = b
	p.push(signalLogs, b)
	putScratch(buf)
	return nil
}

// attrWriter writes slog attributes as JSON object members; groups become
// nested maps, opened only once an attribute is written into them.
type attrWriter struct {
	opts      *slog.HandlerOptions
	members   []byte
	groups    []string // the path, for ReplaceAttr
	pending   int      // groups of the path not yet written (empty so far)
	open      int      // groups written, to close
	count     []int    // members written at each open level
	eventName string
}

func (w *attrWriter) openGroup(name string) {
	w.groups = append(w.groups, name)
	w.pending++
}

func (w *attrWriter) sep() {
	level := len(w.count) - 1
	if level < 0 {
		if len(w.members) > 0 {
			w.members = append(w.members, ',')
		}
		return
	}
	if w.count[level] > 0 {
		w.members = append(w.members, ',')
	}
	w.count[level]++
}

// flushGroups writes the groups that now get an attribute.
func (w *attrWriter) flushGroups() {
	for ; w.pending > 0; w.pending-- {
		name := w.groups[len(w.groups)-w.pending]
		w.sep()
		w.members = appendString(w.members, name)
		w.members = append(w.members, `:{"map":{`...)
		w.count = append(w.count, 0)
		w.open++
	}
}

func (w *attrWriter) write(a slog.Attr) {
	if w.opts.ReplaceAttr != nil && a.Value.Kind() != slog.KindGroup {
		a = w.opts.ReplaceAttr(w.groups, a)
	}
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		attrs := a.Value.Group()
		if len(attrs) == 0 {
			return
		}
		if a.Key == "" {
			for _, x := range attrs {
				w.write(x)
			}
			return
		}
		w.flushGroups()
		w.sep()
		w.members = appendString(w.members, a.Key)
		w.members = append(w.members, `:{"map":{`...)
		inner := attrWriter{opts: w.opts, groups: append(append([]string(nil), w.groups...), a.Key)}
		for _, x := range attrs {
			inner.write(x)
		}
		inner.close()
		w.members = append(w.members, inner.members...)
		w.members = append(w.members, "}}"...)
		return
	}
	if len(w.groups) == 0 && a.Key == EventNameKey && a.Value.Kind() == slog.KindString {
		w.eventName = a.Value.String()
		return
	}
	w.flushGroups()
	w.sep()
	w.members = appendString(w.members, a.Key)
	w.members = append(w.members, ':')
	w.members = slogValue(a.Value).appendJSON(w.members)
}

func (w *attrWriter) close() {
	for ; w.open > 0; w.open-- {
		w.members = append(w.members, "}}"...)
	}
}

// slogValue is the attribute value of a resolved, non-group slog value.
func slogValue(v slog.Value) Value {
	switch v.Kind() {
	case slog.KindString:
		return StringValue(v.String())
	case slog.KindInt64:
		return Int64Value(v.Int64())
	case slog.KindUint64:
		return uint64Value(v.Uint64())
	case slog.KindFloat64:
		return Float64Value(v.Float64())
	case slog.KindBool:
		return BoolValue(v.Bool())
	case slog.KindDuration:
		return Int64Value(int64(v.Duration()))
	case slog.KindTime:
		return StringValue(v.Time().Format(time.RFC3339Nano))
	default:
		return AnyValue(v.Any())
	}
}
