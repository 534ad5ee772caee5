package polytel_test

// A real OpenTelemetry Collector for the end-to-end tests, and a parser for
// what its debug exporter (verbosity: detailed) prints. The Collector is built
// by scripts/install-collector.sh (once, cached) and configured from
// scripts/collector/config.yaml.tmpl; the output format is described in
// scripts/collector/README.md. A simpler port of host/tests/support/collector.rs:
// it reads simple values (no newlines in them), which is what these tests send.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var repoRoot = func() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}()

// syncBuffer is a bytes.Buffer safe to write from the process and read from the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type collector struct {
	cmd            *exec.Cmd
	stderr         *syncBuffer
	port, grpcPort int
}

// startCollector builds (if needed) and starts a Collector on two free
// loopback ports; it is stopped when the test ends. It fails, never skips,
// when the Collector cannot be built or started.
func startCollector(t *testing.T) *collector {
	t.Helper()
	script := filepath.Join(repoRoot, "scripts", "install-collector.sh")
	out, err := exec.Command("bash", script).Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s failed (%v); the Collector is required for this test:\n%s", script, err, stderr)
	}
	lines := strings.Fields(strings.TrimSpace(string(out)))
	if len(lines) == 0 {
		t.Fatalf("%s printed no binary path", script)
	}
	binary := lines[len(lines)-1]
	tmpl, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "collector", "config.yaml.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var failures []string
	for range 3 {
		c := &collector{stderr: &syncBuffer{}, port: freePort(t), grpcPort: freePort(t)}
		if c.port == c.grpcPort {
			continue
		}
		config := strings.NewReplacer(
			"__HTTP_ENDPOINT__", fmt.Sprintf("127.0.0.1:%d", c.port),
			"__GRPC_ENDPOINT__", fmt.Sprintf("127.0.0.1:%d", c.grpcPort),
		).Replace(string(tmpl))
		path := filepath.Join(t.TempDir(), "otelcol.yaml")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		c.cmd = exec.Command(binary, "--config="+path)
		c.cmd.Stderr = c.stderr
		if err := c.cmd.Start(); err != nil {
			t.Fatalf("cannot start the Collector %s: %v", binary, err)
		}
		exited := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(exited) }()
		if why := c.waitReady(exited); why == "" {
			t.Cleanup(func() {
				_ = c.cmd.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("--- collector stderr ---\n%s", c.stderr)
				}
			})
			return c
		} else {
			_ = c.cmd.Process.Kill()
			<-exited
			failures = append(failures, why+"\n"+c.stderr.String())
			if !strings.Contains(c.stderr.String(), "address already in use") {
				break
			}
		}
	}
	t.Fatalf("the OpenTelemetry Collector did not start:\n%s", strings.Join(failures, "\n"))
	return nil
}

func (c *collector) waitReady(exited chan struct{}) string {
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return "the Collector exited early"
		default:
		}
		if strings.Contains(c.stderr.String(), "Everything is ready") {
			ok := true
			for _, port := range []int{c.port, c.grpcPort} {
				conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
				if err != nil {
					ok = false
					break
				}
				conn.Close()
			}
			if ok {
				return ""
			}
		}
		if time.Now().After(deadline) {
			return "not ready after 30s"
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *collector) endpoint() string   { return fmt.Sprintf("http://127.0.0.1:%d", c.port) }
func (c *collector) grpcTarget() string { return fmt.Sprintf("http://127.0.0.1:%d", c.grpcPort) }

// collectedSpan is a span as the Collector printed it; values typed as
// printed, such as `Str(gpt-4o)` or `Int(412)`.
type collectedSpan struct {
	Resource                           map[string]string
	TraceID, ParentID, SpanID          string
	Name, Kind, StatusCode, StatusText string
	Attributes                         map[string]string
	Events                             []collectedEvent
}

type collectedEvent struct {
	Name       string
	Attributes map[string]string
}

type collectedLog struct {
	Resource                map[string]string
	SeverityText, Body      string
	TraceID, SpanID         string
	Attributes              map[string]string
	SeverityNumberText      string
	EventName, FlagsPrinted string
}

// dumps are the complete dumps whose first line ends with header, without
// their first and last lines.
func dumps(text, header string) [][]string {
	lines := strings.Split(text, "\n")
	var out [][]string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasSuffix(l, "\t"+header+"0") && l != header+"0" {
			continue
		}
		end := -1
		for j := i + 1; j < len(lines); j++ {
			if strings.HasPrefix(lines[j], "\t{") {
				end = j
				break
			}
		}
		if end < 0 {
			break
		}
		out = append(out, lines[i+1:end])
		i = end
	}
	return out
}

// attribute splits `     -> key: Type(value)`.
func attribute(line, indent string) (string, string, bool) {
	rest, ok := strings.CutPrefix(line, indent+"-> ")
	if !ok {
		return "", "", false
	}
	k, v, ok := strings.Cut(rest, ": ")
	return k, v, ok
}

func spanField(line string) (string, string, bool) {
	rest, ok := strings.CutPrefix(line, "    ")
	if !ok || strings.HasPrefix(rest, " ") {
		return "", "", false
	}
	k, v, ok := strings.Cut(rest, ":")
	if !ok {
		return "", "", false
	}
	return strings.TrimSpace(k), strings.TrimPrefix(v, " "), true
}

func parseCollectedSpans(text string) []collectedSpan {
	var spans []collectedSpan
	for _, dump := range dumps(text, "ResourceSpans #") {
		resource := map[string]string{}
		section := ""
		var span *collectedSpan
		var event *collectedEvent
		for _, l := range dump {
			switch {
			case strings.HasPrefix(l, "ResourceSpans #"):
				resource, section, span = map[string]string{}, "", nil
			case l == "Resource attributes:":
				section = "resource"
			case strings.HasPrefix(l, "ScopeSpans #"), strings.HasPrefix(l, "InstrumentationScope"):
				section = "scope"
			case strings.HasPrefix(l, "Span #"):
				spans = append(spans, collectedSpan{Resource: resource, Attributes: map[string]string{}})
				span, section = &spans[len(spans)-1], "span"
			case l == "Attributes:":
				section = "attributes"
			case l == "Events:":
				section = "events"
			case l == "Links:":
				section = "links"
			case strings.HasPrefix(l, "SpanEvent #") && span != nil:
				span.Events = append(span.Events, collectedEvent{Attributes: map[string]string{}})
				event = &span.Events[len(span.Events)-1]
			default:
				if k, v, ok := attribute(l, "     "); ok {
					switch {
					case section == "resource":
						resource[k] = v
					case section == "attributes" && span != nil:
						span.Attributes[k] = v
					case section == "events" && event != nil && k == "Name":
						event.Name = v
					}
				} else if k, v, ok := attribute(l, "          "); ok && section == "events" && event != nil {
					event.Attributes[k] = v
				} else if k, v, ok := spanField(l); ok && section == "span" && span != nil {
					switch k {
					case "Trace ID":
						span.TraceID = v
					case "Parent ID":
						span.ParentID = v
					case "ID":
						span.SpanID = v
					case "Name":
						span.Name = v
					case "Kind":
						span.Kind = v
					case "Status code":
						span.StatusCode = v
					case "Status message":
						span.StatusText = v
					}
				}
			}
		}
	}
	return spans
}

func parseCollectedLogs(text string) []collectedLog {
	var logs []collectedLog
	for _, dump := range dumps(text, "ResourceLog #") {
		resource := map[string]string{}
		section := ""
		var log *collectedLog
		for _, l := range dump {
			field := func(name string) (string, bool) { return strings.CutPrefix(l, name+": ") }
			switch {
			case strings.HasPrefix(l, "ResourceLog #"):
				resource, section, log = map[string]string{}, "", nil
			case l == "Resource attributes:":
				section = "resource"
			case strings.HasPrefix(l, "LogRecord #"):
				logs = append(logs, collectedLog{Resource: resource, Attributes: map[string]string{}})
				log, section = &logs[len(logs)-1], "record"
			case l == "Attributes:":
				section = "attributes"
			default:
				if k, v, ok := attribute(l, "     "); ok {
					if section == "resource" {
						resource[k] = v
					} else if section == "attributes" && log != nil {
						log.Attributes[k] = v
					}
					continue
				}
				if log == nil {
					continue
				}
				if v, ok := field("SeverityText"); ok {
					log.SeverityText = v
				} else if v, ok := field("SeverityNumber"); ok {
					log.SeverityNumberText = v
				} else if v, ok := field("EventName"); ok {
					log.EventName = v
				} else if v, ok := field("Body"); ok {
					log.Body = v
				} else if v, ok := field("Trace ID"); ok {
					log.TraceID = v
				} else if v, ok := field("Span ID"); ok {
					log.SpanID = v
				} else if v, ok := field("Flags"); ok {
					log.FlagsPrinted = v
				}
			}
		}
	}
	return logs
}

// parseCollectedMetricNames are the names of the metrics printed, in order.
func parseCollectedMetricNames(text string) []string {
	var names []string
	for _, dump := range dumps(text, "ResourceMetrics #") {
		descriptor := false
		for _, l := range dump {
			if l == "Descriptor:" {
				descriptor = true
				continue
			}
			if k, v, ok := attribute(l, "     "); ok && descriptor && k == "Name" {
				names = append(names, v)
				descriptor = false
			}
		}
	}
	return names
}
