package polytel_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is an OTLP/HTTP JSON receiver for tests: it keeps every request's
// decoded body by signal.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests map[string][]map[string]any // by path
	headers  []http.Header
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{requests: map[string][]map[string]any{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		var decoded map[string]any
		if err := json.NewDecoder(body).Decode(&decoded); err != nil {
			http.Error(w, "this test receiver takes OTLP/JSON only: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.requests[req.URL.Path] = append(r.requests[req.URL.Path], decoded)
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) bodies(path string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.requests[path]...)
}

// otlpSpan is a span of an OTLP/JSON export, flattened for checks.
type otlpSpan struct {
	TraceID, SpanID, ParentSpanID, Name string
	Kind                                int
	Attributes                          map[string]any
	Events                              []map[string]any
	Links                               []map[string]any
	StatusCode                          int
	StatusMessage                       string
	Resource                            map[string]any
}

func (r *receiver) spans() []otlpSpan {
	var out []otlpSpan
	for _, body := range r.bodies("/v1/traces") {
		for _, rs := range list(body["resourceSpans"]) {
			resource := attrs(obj(obj(rs)["resource"])["attributes"])
			for _, ss := range list(obj(rs)["scopeSpans"]) {
				for _, s := range list(obj(ss)["spans"]) {
					m := obj(s)
					status := obj(m["status"])
					sp := otlpSpan{
						TraceID:       str(m["traceId"]),
						SpanID:        str(m["spanId"]),
						ParentSpanID:  str(m["parentSpanId"]),
						Name:          str(m["name"]),
						Kind:          num(m["kind"]),
						Attributes:    attrs(m["attributes"]),
						StatusCode:    num(status["code"]),
						StatusMessage: str(status["message"]),
						Resource:      resource,
					}
					for _, e := range list(m["events"]) {
						ev := obj(e)
						ev["attributes"] = attrs(ev["attributes"])
						sp.Events = append(sp.Events, ev)
					}
					for _, l := range list(m["links"]) {
						sp.Links = append(sp.Links, obj(l))
					}
					out = append(out, sp)
				}
			}
		}
	}
	return out
}

// otlpLog is a log record of an OTLP/JSON export.
type otlpLog struct {
	Severity        int
	SeverityText    string
	Body            any
	Attributes      map[string]any
	TraceID, SpanID string
	EventName       string
}

func (r *receiver) logs() []otlpLog {
	var out []otlpLog
	for _, body := range r.bodies("/v1/logs") {
		for _, rl := range list(body["resourceLogs"]) {
			for _, sl := range list(obj(rl)["scopeLogs"]) {
				for _, l := range list(obj(sl)["logRecords"]) {
					m := obj(l)
					out = append(out, otlpLog{
						Severity:     num(m["severityNumber"]),
						SeverityText: str(m["severityText"]),
						Body:         value(m["body"]),
						Attributes:   attrs(m["attributes"]),
						TraceID:      str(m["traceId"]),
						SpanID:       str(m["spanId"]),
						EventName:    str(m["eventName"]),
					})
				}
			}
		}
	}
	return out
}

// metrics are the metrics of every export by name (the last export wins).
func (r *receiver) metrics() map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, body := range r.bodies("/v1/metrics") {
		for _, rm := range list(body["resourceMetrics"]) {
			for _, sm := range list(obj(rm)["scopeMetrics"]) {
				for _, m := range list(obj(sm)["metrics"]) {
					out[str(obj(m)["name"])] = obj(m)
				}
			}
		}
	}
	return out
}

// waitFor polls until ok holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) int {
	switch n := v.(type) {
	case float64:
		return int(n)
	case string:
		i, _ := strconv.Atoi(n)
		return i
	}
	return 0
}

// value is an OTLP/JSON AnyValue as a Go value: string, bool, int64 (from
// intValue), float64, []any, map[string]any, or "bytes:<base64>".
func value(v any) any {
	m := obj(v)
	for k, x := range m {
		switch k {
		case "stringValue":
			return x
		case "boolValue":
			return x
		case "intValue":
			n, _ := strconv.ParseInt(str(x), 10, 64)
			if f, ok := x.(float64); ok {
				n = int64(f)
			}
			return n
		case "doubleValue":
			if s, ok := x.(string); ok {
				return "double:" + s
			}
			return x
		case "bytesValue":
			return "bytes:" + str(x)
		case "arrayValue":
			var out []any
			for _, e := range list(obj(x)["values"]) {
				out = append(out, value(e))
			}
			return out
		case "kvlistValue":
			return attrs(obj(x)["values"])
		}
	}
	return nil
}

func attrs(v any) map[string]any {
	out := map[string]any{}
	for _, kv := range list(v) {
		out[str(obj(kv)["key"])] = value(obj(kv)["value"])
	}
	return out
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

var jsonMarshal = json.Marshal
