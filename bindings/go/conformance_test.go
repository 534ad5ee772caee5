package polytel

// Replays tests/conformance/scenarios through the Go API and compares the
// export bodies with the golden files, byte for byte (see
// tests/conformance/README.md). An internal test: it sets the deterministic
// test hooks (seed, fake clock, no machine facts) that users cannot.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var conformanceDir = filepath.Join("..", "..", "tests", "conformance")

type scenario struct {
	Description string            `json:"description"`
	Options     json.RawMessage   `json:"options"`
	Env         map[string]string `json:"env"`
	Seed        string            `json:"seed"`
	Clock       struct {
		Start string `json:"start"`
		Step  string `json:"step"`
	} `json:"clock"`
	Steps []json.RawMessage `json:"steps"`
}

// step is one step; which action it is follows from the member present.
type step struct {
	Start           *string           `json:"start"`
	Name            *string           `json:"name"`
	Kind            *string           `json:"kind"`
	Parent          *string           `json:"parent"`
	RemoteParent    map[string]string `json:"remote_parent"`
	Attributes      json.RawMessage   `json:"attributes"`
	Links           []linkSpec        `json:"links"`
	SetAttribute    *string           `json:"set_attribute"`
	Key             *string           `json:"key"`
	Value           json.RawMessage   `json:"value"`
	AddEvent        *string           `json:"add_event"`
	RecordException *string           `json:"record_exception"`
	Type            string            `json:"type"`
	Message         string            `json:"message"`
	Stacktrace      string            `json:"stacktrace"`
	SetStatus       *string           `json:"set_status"`
	Code            string            `json:"code"`
	End             *string           `json:"end"`
	Inject          *string           `json:"inject"`
	Instrument      *string           `json:"instrument"`
	Unit            string            `json:"unit"`
	Description     string            `json:"description"`
	Boundaries      []float64         `json:"boundaries"`
	Add             *string           `json:"add"`
	Record          *string           `json:"record"`
	Span            *string           `json:"span"`
	Log             *string           `json:"log"`
	EventName       *string           `json:"event_name"`
	// GenAI operations.
	LLMCall          *string         `json:"llm_call"`
	Provider         string          `json:"provider"`
	Model            string          `json:"model"`
	Operation        *string         `json:"operation"`
	Agent            *string         `json:"agent"`
	Tool             *string         `json:"tool"`
	Workflow         *string         `json:"workflow"`
	Memory           *string         `json:"memory"`
	Store            string          `json:"store"`
	Usage            *string         `json:"usage"`
	InputTokens      int64           `json:"input_tokens"`
	OutputTokens     int64           `json:"output_tokens"`
	CacheReadTokens  int64           `json:"cache_read_tokens"`
	CacheWriteTokens int64           `json:"cache_write_tokens"`
	ReasoningTokens  int64           `json:"reasoning_tokens"`
	ResponseModel    *string         `json:"response_model"`
	Cost             *string         `json:"cost"`
	USD              float64         `json:"usd"`
	Capture          *string         `json:"capture"`
	Input            json.RawMessage `json:"input"`
	Output           json.RawMessage `json:"output"`
	Stats            *bool           `json:"stats"`
}

type linkSpec struct {
	To         string          `json:"to"`
	Attributes json.RawMessage `json:"attributes"`
}

// optionsFromJSON fills Options from the core's option names, through the
// same `polytel` struct tags the binding sends them by.
func optionsFromJSON(t *testing.T, raw json.RawMessage) Options {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatal(err)
	}
	var o Options
	rv := reflect.ValueOf(&o).Elem()
	for name, value := range members {
		set := false
		for _, f := range optionFields {
			if f.name != name || f.role != "" {
				continue
			}
			fv := rv.Field(f.index)
			if f.ms {
				var ms int64
				if json.Unmarshal(value, &ms) != nil {
					continue
				}
				fv.Set(reflect.ValueOf(time.Duration(ms) * time.Millisecond))
			} else if json.Unmarshal(value, fv.Addr().Interface()) != nil {
				continue
			}
			set = true
			break
		}
		if !set {
			t.Fatalf("option %s=%s has no Options field", name, value)
		}
	}
	return o
}

// parseValue reads a value in the attribute JSON of wit/polytel.wit.
func parseValue(t *testing.T, dec *json.Decoder) Value {
	tok, err := dec.Token()
	if err != nil {
		t.Fatal(err)
	}
	switch v := tok.(type) {
	case string:
		return StringValue(v)
	case bool:
		return BoolValue(v)
	case json.Number:
		if strings.ContainsAny(v.String(), ".eE") {
			f, _ := v.Float64()
			return Float64Value(f)
		}
		n, err := v.Int64()
		if err != nil {
			t.Fatal(err)
		}
		return Int64Value(n)
	case json.Delim:
		if v == '[' {
			var vs []Value
			for dec.More() {
				vs = append(vs, parseValue(t, dec))
			}
			dec.Token()
			return SliceValue(vs...)
		}
		key, _ := dec.Token()
		var out Value
		switch key {
		case "double":
			tok, _ := dec.Token()
			switch x := tok.(type) {
			case json.Number:
				f, _ := x.Float64()
				out = Float64Value(f)
			case string:
				out = Float64Value(map[string]float64{"NaN": math.NaN(), "Infinity": math.Inf(1), "-Infinity": math.Inf(-1)}[x])
			}
		case "bytes":
			tok, _ := dec.Token()
			b, err := base64.StdEncoding.DecodeString(tok.(string))
			if err != nil {
				t.Fatal(err)
			}
			out = BytesValue(b)
		case "map":
			out = MapValue(parseObject(t, dec)...)
		default:
			t.Fatalf("unknown value form %v", key)
		}
		dec.Token() // }
		return out
	}
	t.Fatalf("unexpected token %v", tok)
	return Value{}
}

// parseObject reads an attributes object from dec, in order.
func parseObject(t *testing.T, dec *json.Decoder) []Attribute {
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		t.Fatalf("attributes must be an object, not %v", tok)
	}
	var attrs []Attribute
	for dec.More() {
		key, _ := dec.Token()
		attrs = append(attrs, Attribute{key.(string), parseValue(t, dec)})
	}
	dec.Token()
	return attrs
}

func decoder(raw []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec
}

func attributes(t *testing.T, raw json.RawMessage) []Attribute {
	if len(raw) == 0 {
		return nil
	}
	return parseObject(t, decoder(raw))
}

var kinds = map[string]SpanKind{
	"internal": KindInternal, "server": KindServer, "client": KindClient, "producer": KindProducer, "consumer": KindConsumer,
}

var levels = map[string]slog.Level{
	"trace": LevelTrace, "debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn,
	"error": slog.LevelError, "fatal": LevelFatal,
}

// slogAttr is an attribute as an application would log it.
func slogAttr(a Attribute) slog.Attr {
	switch a.Value.Kind() {
	case KindString:
		return slog.String(a.Key, a.Value.AsString())
	case KindBool:
		return slog.Bool(a.Key, a.Value.AsBool())
	case KindInt64:
		return slog.Int64(a.Key, a.Value.AsInt64())
	case KindFloat64:
		return slog.Float64(a.Key, a.Value.AsFloat64())
	default:
		return slog.Any(a.Key, a.Value)
	}
}

// export is one request the capture receiver got.
type export struct {
	ext  string
	body []byte
}

// captureServer records every OTLP request, gzip removed, in arrival order.
func captureServer(t *testing.T) (*httptest.Server, func() []export) {
	var mu sync.Mutex
	var got []export
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ext := "pb"
		if strings.Contains(r.Header.Get("Content-Type"), "json") {
			ext = "json"
			w.Header().Set("Content-Type", "application/json")
			defer w.Write([]byte("{}"))
		} else {
			w.Header().Set("Content-Type", "application/x-protobuf")
		}
		mu.Lock()
		got = append(got, export{ext, b})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, func() []export {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// replay runs a scenario; returns the golden files it produces.
func replay(t *testing.T, sc scenario) map[string][]byte {
	srv, captured := captureServer(t)
	o := optionsFromJSON(t, sc.Options)
	o.Endpoint = srv.URL
	o.Env = sc.Env
	seed, err1 := strconv.ParseUint(sc.Seed, 10, 64)
	start, err2 := strconv.ParseUint(sc.Clock.Start, 10, 64)
	stepNS, err3 := strconv.ParseUint(sc.Clock.Step, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("bad seed or clock: %v %v %v", err1, err2, err3)
	}
	o.test = &testHooks{seed: seed, clockStart: start, clockStep: stepNS}
	if err := Configure(o); err != nil {
		t.Fatal(err)
	}
	p := active.Load()
	logs := slog.New(NewSlogHandler(&slog.HandlerOptions{Level: LevelTrace}))

	bg := context.Background()
	spans := map[string]*Span{}
	ctxs := map[string]context.Context{}
	type measurer func(ctx context.Context, v float64, attrs ...Attribute)
	instruments := map[string]measurer{}
	var injects []string
	ops := map[string]*Operation{}
	var operations []string // one JSON array per stats step
	// startOp starts a GenAI operation under its explicit parent, if any.
	startOp := func(s step, id string, begin func(ctx context.Context, attrs ...Attribute) (context.Context, *Operation)) {
		ctx := bg
		if s.Parent != nil {
			ctx = ctxs[*s.Parent]
		}
		ctx, op := begin(ctx, attributes(t, s.Attributes)...)
		ops[id], spans[id], ctxs[id] = op, op.Span, ctx
	}
	for _, raw := range sc.Steps {
		var s step
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("step %s: %v", raw, err)
		}
		switch {
		case s.Start != nil:
			ctx := bg
			if s.Parent != nil {
				ctx = ctxs[*s.Parent]
			}
			if s.RemoteParent != nil {
				h := http.Header{}
				for k, v := range s.RemoteParent {
					h.Set(k, v)
				}
				ctx = Extract(bg, h)
				if !SpanContextFromContext(ctx).IsValid() {
					t.Fatalf("no remote parent extracted from %v", s.RemoteParent)
				}
			}
			opts := SpanOptions{Kind: KindInternal}
			if s.Kind != nil {
				opts.Kind = kinds[*s.Kind]
			}
			for _, l := range s.Links {
				opts.Links = append(opts.Links, Link{spans[l.To].SpanContext(), attributes(t, l.Attributes)})
			}
			ctx, span := StartWith(ctx, *s.Name, opts, attributes(t, s.Attributes)...)
			spans[*s.Start], ctxs[*s.Start] = span, ctx
		case s.SetAttribute != nil:
			spans[*s.SetAttribute].SetAttributes(Attribute{*s.Key, parseValue(t, decoder(s.Value))})
		case s.AddEvent != nil:
			spans[*s.AddEvent].AddEvent(*s.Name, attributes(t, s.Attributes)...)
		case s.RecordException != nil:
			spans[*s.RecordException].RecordException(s.Type, s.Message, s.Stacktrace)
		case s.SetStatus != nil:
			code := map[string]StatusCode{"ok": StatusOK, "error": StatusError}[s.Code]
			spans[*s.SetStatus].SetStatus(code, s.Message)
		case s.End != nil:
			spans[*s.End].End()
		case s.Inject != nil:
			h := http.Header{}
			Inject(ctxs[*s.Inject], h)
			headers := map[string]string{}
			for k := range h {
				headers[strings.ToLower(k)] = h.Get(k)
			}
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(headers); err != nil {
				t.Fatal(err)
			}
			injects = append(injects, strings.TrimSuffix(b.String(), "\n"))
		case s.Instrument != nil:
			opts := []InstrumentOption{WithUnit(s.Unit), WithDescription(s.Description)}
			if s.Boundaries != nil {
				opts = append(opts, WithBoundaries(s.Boundaries...))
			}
			var m measurer
			switch *s.Kind {
			case "counter":
				m = Counter(*s.Name, opts...).Add
			case "up_down_counter":
				m = UpDownCounter(*s.Name, opts...).Add
			case "histogram":
				m = Histogram(*s.Name, opts...).Record
			case "gauge":
				m = Gauge(*s.Name, opts...).Record
			default:
				t.Fatalf("unknown instrument kind %s", *s.Kind)
			}
			instruments[*s.Instrument] = m
		case s.Add != nil || s.Record != nil:
			id := s.Add
			if id == nil {
				id = s.Record
			}
			v, err := strconv.ParseFloat(string(s.Value), 64)
			if err != nil {
				t.Fatal(err)
			}
			ctx := bg
			if s.Span != nil {
				ctx = ctxs[*s.Span]
			}
			instruments[*id](ctx, v, attributes(t, s.Attributes)...)
		case s.Log != nil:
			ctx := bg
			if s.Span != nil {
				ctx = ctxs[*s.Span]
			}
			var attrs []slog.Attr
			for _, a := range attributes(t, s.Attributes) {
				attrs = append(attrs, slogAttr(a))
			}
			if s.EventName != nil {
				attrs = append(attrs, EventName(*s.EventName))
			}
			r := slog.NewRecord(time.Time{}, levels[*s.Log], s.Message, 0)
			r.AddAttrs(attrs...)
			if err := logs.Handler().Handle(ctx, r); err != nil {
				t.Fatal(err)
			}
		case s.LLMCall != nil:
			operation := "chat"
			if s.Operation != nil {
				operation = *s.Operation
			}
			startOp(s, *s.LLMCall, func(ctx context.Context, attrs ...Attribute) (context.Context, *Operation) {
				if operation == "chat" {
					return StartLLMCall(ctx, s.Provider, s.Model, attrs...)
				}
				return StartInference(ctx, operation, s.Provider, s.Model, attrs...)
			})
		case s.Agent != nil:
			startOp(s, *s.Agent, func(ctx context.Context, attrs ...Attribute) (context.Context, *Operation) {
				return StartAgent(ctx, *s.Name, attrs...)
			})
		case s.Tool != nil:
			startOp(s, *s.Tool, func(ctx context.Context, attrs ...Attribute) (context.Context, *Operation) {
				return StartTool(ctx, *s.Name, attrs...)
			})
		case s.Workflow != nil:
			startOp(s, *s.Workflow, func(ctx context.Context, attrs ...Attribute) (context.Context, *Operation) {
				return StartWorkflow(ctx, *s.Name, attrs...)
			})
		case s.Memory != nil:
			startOp(s, *s.Memory, func(ctx context.Context, attrs ...Attribute) (context.Context, *Operation) {
				return StartMemory(ctx, *s.Operation, s.Store, attrs...)
			})
		case s.Usage != nil:
			ops[*s.Usage].RecordUsage(Usage{
				InputTokens: s.InputTokens, OutputTokens: s.OutputTokens, CacheReadTokens: s.CacheReadTokens,
				CacheWriteTokens: s.CacheWriteTokens, ReasoningTokens: s.ReasoningTokens,
			})
		case s.ResponseModel != nil:
			ops[*s.ResponseModel].SetResponseModel(s.Model)
		case s.Cost != nil:
			ops[*s.Cost].RecordCost(s.USD)
		case s.Capture != nil:
			if len(s.Input) > 0 {
				ops[*s.Capture].RecordInput(parseValue(t, decoder(s.Input)))
			}
			if len(s.Output) > 0 {
				ops[*s.Capture].RecordOutput(parseValue(t, decoder(s.Output)))
			}
		case s.Stats != nil:
			st, err := Stats()
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(st["operations"])
			if err != nil {
				t.Fatal(err)
			}
			operations = append(operations, string(b))
		default:
			t.Fatalf("unknown step %s", raw)
		}
	}
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	if err := Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var stats map[string]any // "operations" is an array, the signals objects
	if err := json.Unmarshal([]byte(p.finalStats), &stats); err != nil {
		t.Fatalf("stats %q: %v", p.finalStats, err)
	}
	for _, sig := range []string{"spans", "metrics", "logs"} {
		counters, _ := stats[sig].(map[string]any)
		if d := counters["dropped"]; !reflect.DeepEqual(d, map[string]any{}) {
			t.Errorf("%s were dropped: %v", sig, d)
		}
	}
	files := map[string][]byte{}
	for i, e := range captured() {
		files[fmt.Sprintf("export-%d.%s", i, e.ext)] = e.body
	}
	if len(files) == 0 {
		t.Fatal("the scenario exported nothing")
	}
	if len(injects) > 0 {
		files["inject.json"] = []byte(strings.Join(injects, "\n") + "\n")
	}
	if len(operations) > 0 {
		files["operations.json"] = []byte(strings.Join(operations, "\n") + "\n")
	}
	return files
}

func TestConformanceScenariosMatchGoldenPayloads(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(conformanceDir, "scenarios", "*.json"))
	if err != nil || len(paths) < 4 {
		t.Fatalf("scenarios missing from %s: %v", conformanceDir, err)
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var sc scenario
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&sc); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			got := replay(t, sc)
			golden := filepath.Join(conformanceDir, "golden", name)
			entries, err := os.ReadDir(golden)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, e := range entries {
				want = append(want, e.Name())
			}
			if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, want) {
				t.Fatalf("files produced %v, golden %v", names, want)
			}
			for _, file := range want {
				expected, err := os.ReadFile(filepath.Join(golden, file))
				if err != nil {
					t.Fatal(err)
				}
				if file == "operations.json" {
					// Compared as parsed JSON, line by line.
					if !sameJSONLines(t, got[file], expected) {
						t.Errorf("%s/%s differs from the golden file\ngot:  %s\nwant: %s", name, file, got[file], expected)
					}
					continue
				}
				if !bytes.Equal(got[file], expected) {
					t.Errorf("%s/%s differs from the golden file (%d vs %d bytes)", name, file, len(got[file]), len(expected))
					if strings.HasSuffix(file, ".json") {
						t.Logf("got:  %s\nwant: %s", got[file], expected)
					}
				}
			}
		})
	}
}

// sameJSONLines reports whether two files of JSON lines hold equal values.
func sameJSONLines(t *testing.T, got, want []byte) bool {
	parse := func(b []byte) []any {
		var out []any
		for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
			var v any
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Errorf("bad JSON line %q: %v", line, err)
			}
			out = append(out, v)
		}
		return out
	}
	return reflect.DeepEqual(parse(got), parse(want))
}
