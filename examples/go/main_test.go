package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	polytel "github.com/polytel/polytel/bindings/go"
)

// The example serves a request from a caller with a traceparent: the server
// span continues the caller's trace, the agent run nests under it, and the
// tool and model calls under the agent, named and described by the core.
func TestTheServiceIsTraced(t *testing.T) {
	var mu sync.Mutex
	var spans []map[string]any
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ResourceSpans []struct {
				ScopeSpans []struct {
					Spans []map[string]any `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		for _, rs := range body.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				spans = append(spans, ss.Spans...)
			}
		}
		mu.Unlock()
		w.Write([]byte("{}"))
	}))
	defer collector.Close()
	if err := polytel.Configure(polytel.Options{
		Backend: "otlp", Endpoint: collector.URL, Protocol: "http/json", ServiceName: "go-example", Env: map[string]string{},
	}); err != nil {
		t.Fatal(err)
	}

	service := httptest.NewServer(routes())
	defer service.Close()
	req, _ := http.NewRequest("GET", service.URL+"/ask?q=weather", nil)
	const caller = "4bf92f3577b34da6a3ce929d0e0e4736"
	req.Header.Set("traceparent", "00-"+caller+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(answer), "sunshine") {
		t.Fatalf("answer %q", answer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := polytel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	byName := map[string]map[string]any{}
	for _, s := range spans {
		byName[s["name"].(string)] = s
		if s["traceId"] != caller {
			t.Errorf("span %v is not in the caller's trace", s["name"])
		}
	}
	server, agent := byName["GET /ask"], byName["invoke_agent weather-assistant"]
	chat, tool := byName["chat example-model"], byName["execute_tool weather"]
	if server == nil || agent == nil || chat == nil || tool == nil {
		t.Fatalf("spans: %v", spans)
	}
	if server["parentSpanId"] != "00f067aa0ba902b7" || agent["parentSpanId"] != server["spanId"] ||
		chat["parentSpanId"] != agent["spanId"] || tool["parentSpanId"] != agent["spanId"] {
		t.Errorf("parents: server %v, agent %v, chat %v, tool %v",
			server["parentSpanId"], agent["parentSpanId"], chat["parentSpanId"], tool["parentSpanId"])
	}
	attrs := map[string]any{}
	for _, kv := range chat["attributes"].([]any) {
		kv := kv.(map[string]any)
		attrs[kv["key"].(string)] = kv["value"]
	}
	for _, key := range []string{"gen_ai.operation.name", "gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"} {
		if attrs[key] == nil {
			t.Errorf("the core writes %s on the LLM call: %v", key, attrs)
		}
	}
	for key, v := range attrs {
		if strings.Contains(fmt.Sprint(v), "sunshine") {
			t.Errorf("content is not captured by default: %s=%v", key, v)
		}
	}
}
