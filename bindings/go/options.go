package polytel

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Options configures polytel. The zero Options reads everything from the
// environment (OTEL_* variables, POLYTEL_BACKEND, the vendors' credential
// variables, the config file named by POLYTEL_CONFIG); a field left at its
// zero value is not set, so the environment or the default decides.
//
// Each field carries the option's name as every polytel binding spells it
// (the `polytel` struct tag), so the README's tables apply as they are:
// Backend is "backend", HoneycombAPIKey is "honeycomb_api_key". Settings
// takes any other backend setting by that name.
//
// Printing Options (String, GoString, MarshalJSON, LogValue) masks every
// credential: its first four characters and its length.
type Options struct {
	// A backend: "otlp" (the default), "console", "honeycomb", "sentry",
	// "datadog", "grafana-cloud", "axiom", "newrelic", "elastic", "dynatrace",
	// "langfuse", "logfire", "jaeger", "tempo", "loki", "prometheus",
	// "signoz", "uptrace", …; several comma-separated ("console,honeycomb").
	Backend string `polytel:"backend"`
	// One backend per signal ("traces", "metrics", "logs"); wins over Backend.
	Backends map[string]string `polytel:"backend"`
	// A base URL, as OTEL_EXPORTER_OTLP_ENDPOINT: "/v1/<signal>" is appended.
	// For a preset, it replaces the preset's base URL.
	Endpoint string `polytel:"endpoint"`
	// Base URLs by backend name, when several backends are in use.
	Endpoints map[string]string `polytel:"endpoints"`
	// Headers sent with every export (credentials among them are masked
	// wherever polytel prints them).
	Headers map[string]string `polytel:"headers,secret"`
	// "http/protobuf" (default), "http/json" or "grpc".
	Protocol string `polytel:"protocol"`
	// "gzip" or "none".
	Compression string `polytel:"compression"`
	// How long one export may take.
	Timeout time.Duration `polytel:"timeout_ms,ms"`
	// Let credentials travel over plain http:// to another machine.
	AllowInsecure bool `polytel:"allow_insecure"`
	// A TOML file with the same settings, ranking below the environment.
	ConfigFile string `polytel:"config_file"`

	ServiceName           string `polytel:"service_name"`
	ServiceVersion        string `polytel:"service_version"`
	ServiceNamespace      string `polytel:"service_namespace"`
	DeploymentEnvironment string `polytel:"deployment_environment"`
	// Which resource detectors run: "host", "process", "container", "k8s",
	// "cloud", "all" or "none".
	ResourceDetectors []string `polytel:"resource_detectors"`

	// "parentbased_always_on" (default), "always_on", "always_off",
	// "traceidratio", "parentbased_traceidratio", "parentbased_always_off".
	Sampler string `polytel:"sampler"`
	// The ratio for the traceidratio samplers, such as "0.25".
	SamplerArg string `polytel:"sampler_arg"`

	// Turns all telemetry off: every call is a no-op.
	Disabled bool `polytel:"disabled"`
	// As OTEL_TRACES_EXPORTER: "otlp", "console", "none" (comma-separated).
	TracesExporter string `polytel:"traces_exporter"`
	// As OTEL_METRICS_EXPORTER: "otlp", "console", "prometheus", "none".
	MetricsExporter string `polytel:"metrics_exporter"`
	// As OTEL_LOGS_EXPORTER: "otlp", "console", "jsonl", "none".
	LogsExporter string `polytel:"logs_exporter"`

	// Span batching.
	ScheduleDelay      time.Duration `polytel:"schedule_delay_ms,ms"`
	MaxQueueSize       int           `polytel:"max_queue_size"`
	MaxExportBatchSize int           `polytel:"max_export_batch_size"`
	ExportTimeout      time.Duration `polytel:"export_timeout_ms,ms"`

	// Metrics.
	MetricExportInterval time.Duration `polytel:"metric_export_interval_ms,ms"`
	MetricExportTimeout  time.Duration `polytel:"metric_export_timeout_ms,ms"`
	// "cumulative", "delta" or "lowmemory".
	Temporality string `polytel:"temporality"`
	// "explicit_bucket_histogram" or "base2_exponential_bucket_histogram".
	HistogramAggregation string `polytel:"histogram_aggregation"`
	// "trace_based", "always_on" or "always_off".
	ExemplarFilter string `polytel:"exemplar_filter"`
	// Series per instrument, the overflow series included (default 2000).
	CardinalityLimit int `polytel:"cardinality_limit"`
	// Where GET /metrics is served with the prometheus metrics exporter
	// ("127.0.0.1:9464"; port 0 picks one).
	PrometheusListen string `polytel:"prometheus_listen"`

	// GenAI operations (StartLLMCall, StartAgent, …). Capture their content
	// (RecordInput, RecordOutput): prompts, responses, tool arguments and
	// results. Off by default.
	GenAICaptureContent bool `polytel:"genai_capture_content"`
	// Prices per provider and model, over and above the core's table:
	// GenAIPrices["openai"]["gpt-4o"] = GenAIPrice{Input: 2.5, Output: 10}.
	GenAIPrices map[string]map[string]GenAIPrice `polytel:"genai_prices"`
	// Redaction of secrets (API keys, passwords, tokens, bearer headers) in
	// captured content, attribute values and log bodies; on unless false.
	Redact *bool `polytel:"redact"`
	// More patterns to redact (regular expressions), such as `user \d+`.
	RedactPatterns []string `polytel:"redact_patterns"`
	// Export the core's own counters (exported, dropped by reason, retried,
	// queued, pending) as polytel.* metrics.
	SelfMetrics bool `polytel:"self_metrics"`

	// Log record batching.
	LogScheduleDelay      time.Duration `polytel:"log_schedule_delay_ms,ms"`
	LogMaxQueueSize       int           `polytel:"log_max_queue_size"`
	LogMaxExportBatchSize int           `polytel:"log_max_export_batch_size"`
	LogExportTimeout      time.Duration `polytel:"log_export_timeout_ms,ms"`

	// Backend credentials and settings of the presets (see the README's
	// backend table; each also comes from its environment variable).
	HoneycombAPIKey              string `polytel:"honeycomb_api_key,secret"`
	HoneycombDataset             string `polytel:"honeycomb_dataset"`
	SentryDSN                    string `polytel:"sentry_dsn,secret"`
	DatadogAPIKey                string `polytel:"datadog_api_key,secret"`
	DatadogSite                  string `polytel:"datadog_site"`
	GrafanaCloudZone             string `polytel:"grafana_cloud_zone"`
	GrafanaCloudInstanceID       string `polytel:"grafana_cloud_instance_id"`
	GrafanaCloudToken            string `polytel:"grafana_cloud_token,secret"`
	AxiomToken                   string `polytel:"axiom_token,secret"`
	AxiomDataset                 string `polytel:"axiom_dataset"`
	NewRelicLicenseKey           string `polytel:"newrelic_license_key,secret"`
	AzureMonitorConnectionString string `polytel:"azure_monitor_connection_string,secret"`
	ElasticAPIKey                string `polytel:"elastic_api_key,secret"`
	DynatraceAPIToken            string `polytel:"dynatrace_api_token,secret"`
	DynatraceEnvironmentID       string `polytel:"dynatrace_environment_id"`
	LangfusePublicKey            string `polytel:"langfuse_public_key"`
	LangfuseSecretKey            string `polytel:"langfuse_secret_key,secret"`
	LogfireToken                 string `polytel:"logfire_token,secret"`
	SignozIngestionKey           string `polytel:"signoz_ingestion_key,secret"`
	UptraceDSN                   string `polytel:"uptrace_dsn,secret"`
	// Tempo's and Loki's X-Scope-OrgID.
	TenantID string `polytel:"tenant_id"`

	// Any other setting by its option name ("honeycomb_region",
	// "datadog_otlp_source", …). A field above wins over the same name here.
	Settings map[string]string `polytel:",settings"`

	// The environment the core reads (OTEL_* and the vendors' variables)
	// instead of this process's; nil reads the process's.
	Env map[string]string `polytel:",env"`

	// Deterministic replays (the conformance tests): see testHooks.
	test *testHooks
}

// GenAIPrice is a model's price in US dollars per million tokens, as the
// core's price table takes it.
type GenAIPrice struct {
	Input  float64 `json:"input"`
	Output float64 `json:"output"`
	// Cache reads and writes, when the provider prices them apart.
	CacheRead  float64 `json:"cache_read,omitempty"`
	CacheWrite float64 `json:"cache_write,omitempty"`
	// Other model names with this price ("gpt-4o-2024-08-06").
	Aliases []string `json:"aliases,omitempty"`
}

// testHooks make a pipeline deterministic, for the conformance tests: ids
// from a fixed seed, timestamps from a fake clock shared with the export
// worker, and no facts about the machine in the resource.
type testHooks struct {
	seed       uint64
	clockStart uint64
	clockStep  uint64
}

// optionField is one field of Options as its tag describes it.
type optionField struct {
	index  int
	name   string
	ms     bool // a time.Duration sent as whole milliseconds
	secret bool
	role   string // "", "settings" or "env"
}

var optionFields = func() []optionField {
	t := reflect.TypeFor[Options]()
	var fields []optionField
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("polytel")
		if !ok || !f.IsExported() {
			continue
		}
		name, mods, _ := strings.Cut(tag, ",")
		of := optionField{index: i, name: name}
		for m := range strings.SplitSeq(mods, ",") {
			switch m {
			case "ms":
				of.ms = true
			case "secret":
				of.secret = true
			case "settings", "env":
				of.role = m
			}
		}
		fields = append(fields, of)
	}
	return fields
}()

// members are the options as the core names them, with the values it takes
// (strings, numbers, booleans, lists and maps of strings). Zero fields are
// left out; Settings first, so a field wins over the same name there.
func (o Options) members() map[string]any {
	out := map[string]any{}
	for k, v := range o.Settings {
		out[k] = v
	}
	rv := reflect.ValueOf(o)
	for _, f := range optionFields {
		fv := rv.Field(f.index)
		if f.role != "" || fv.IsZero() {
			continue
		}
		if fv.Kind() == reflect.Map && fv.Len() == 0 {
			continue
		}
		if f.ms {
			out[f.name] = fv.Interface().(time.Duration).Milliseconds()
		} else {
			out[f.name] = fv.Interface()
		}
	}
	return out
}

// secretName reports whether a setting's name says it holds a credential.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"key", "token", "secret", "dsn", "password", "auth", "connection_string", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// mask shows a credential as its first four characters and its length.
func mask(s string) string {
	n := utf8.RuneCountInString(s)
	head := s
	if n > 4 {
		head = string([]rune(s)[:4])
	}
	return fmt.Sprintf("%s… (%d chars)", head, n)
}

// masked is what printing shows: members with every credential masked.
func (o Options) masked() map[string]any {
	out := map[string]any{}
	secret := map[string]bool{}
	for _, f := range optionFields {
		if f.secret {
			secret[f.name] = true
		}
	}
	for k, v := range o.members() {
		switch v := v.(type) {
		case string:
			if secret[k] || secretName(k) {
				out[k] = mask(v)
			} else {
				out[k] = v
			}
		case map[string]string:
			m := map[string]string{}
			for hk, hv := range v {
				if secret[k] || secretName(hk) {
					m[hk] = mask(hv)
				} else {
					m[hk] = hv
				}
			}
			out[k] = m
		default:
			out[k] = v
		}
	}
	if len(o.Env) > 0 {
		out["env"] = fmt.Sprintf("%d variables", len(o.Env))
	}
	return out
}

// String shows the options set, credentials masked.
func (o Options) String() string {
	m := o.masked()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("polytel.Options{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %#v", k, m[k])
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String: %#v shows no credential either.
func (o Options) GoString() string { return o.String() }

// MarshalJSON writes the options set, credentials masked: the real values go
// only to the core.
func (o Options) MarshalJSON() ([]byte, error) { return json.Marshal(o.masked()) }

// LogValue keeps credentials out of slog output.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }
