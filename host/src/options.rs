//! Options of `Telemetry::configure`. The core-facing ones are sent to the
//! core as JSON under the same names every binding uses; the rest steer the host.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
pub use polytel_core::config::Backend;
use serde::{Deserialize, Serialize};

/// Unix nanoseconds for span and event timestamps.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// What to configure. `Options::default()` reads everything from the environment.
/// Deserializable for scenario files: fields it does not name land in
/// `settings`, and the core refuses the ones that are no setting.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Options {
    /// A backend ("honeycomb", "otlp", "console", …, comma-separated for
    /// several) or one per signal; default from POLYTEL_BACKEND, else
    /// OTEL_*_EXPORTER, else otlp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// Backend settings by their option names: "honeycomb_api_key",
    /// "sentry_dsn", "datadog_site", … (the README lists them per backend).
    #[serde(flatten)]
    pub settings: BTreeMap<String, String>,
    /// A base URL, as OTEL_EXPORTER_OTLP_ENDPOINT: `/v1/<signal>` is appended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Base URLs by backend name, when several backends are in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<BTreeMap<String, String>>,
    /// Let credentials travel over plain http to another machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_insecure: Option<bool>,
    /// A TOML file with the same settings, ranking below the environment;
    /// default from POLYTEL_CONFIG.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// "http/protobuf" or "http/json".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// "gzip" or "none".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_environment: Option<String>,
    /// Which resource detectors run: "host", "process", "container", "k8s",
    /// "cloud", "all" or "none"; default from POLYTEL_RESOURCE_DETECTORS, else all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_detectors: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampler_arg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_queue_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_export_batch_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Comma-separated, as OTEL_TRACES_EXPORTER: "otlp", "console", "none".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces_exporter: Option<String>,
    /// As OTEL_METRICS_EXPORTER: "otlp", "console", "prometheus", "none".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_exporter: Option<String>,
    /// As OTEL_LOGS_EXPORTER: "otlp", "console", "jsonl", "none".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs_exporter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_export_interval_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_export_timeout_ms: Option<u64>,
    /// "cumulative", "delta" or "lowmemory".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporality: Option<String>,
    /// "explicit_bucket_histogram" or "base2_exponential_bucket_histogram".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub histogram_aggregation: Option<String>,
    /// "trace_based", "always_on" or "always_off".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exemplar_filter: Option<String>,
    /// Series per instrument, the overflow series included (default 2000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cardinality_limit: Option<u64>,
    /// Where /metrics is served ("127.0.0.1:9464"; port 0 picks one), with the prometheus exporter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_schedule_delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_max_queue_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_max_export_batch_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_export_timeout_ms: Option<u64>,
    /// Capture GenAI prompts, responses, tool arguments and results (off by
    /// default; OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genai_capture_content: Option<bool>,
    /// Token prices over the shipped table: provider → model →
    /// {"input", "output", "cache_read"?, "cache_write"?, "aliases"?}, US dollars per million.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genai_prices: Option<serde_json::Value>,
    /// Redact secret-named attributes and secret-shaped text (on by default; POLYTEL_REDACT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redact: Option<bool>,
    /// Regular expressions whose matches are redacted too (POLYTEL_REDACT_PATTERNS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redact_patterns: Option<Vec<String>>,
    /// Export the core's own counters (exported, dropped by reason, retried,
    /// queued, pending) as `polytel.*` metrics (POLYTEL_SELF_METRICS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_metrics: Option<bool>,

    /// The environment the core reads OTEL_* settings from; `None` is this process's.
    #[serde(skip)]
    pub env: Option<BTreeMap<String, String>>,
    /// Seeds span and trace ids (and retry jitter); `None` draws one from the OS.
    #[serde(skip)]
    pub seed: Option<u64>,
    /// The timestamp source; `None` is the system clock.
    #[serde(skip)]
    pub clock: Option<Clock>,
    /// Bytes the core's memory may grow to; `None` is 512 MiB.
    #[serde(skip)]
    pub core_memory_limit: Option<usize>,
    /// Another build of the core component to run instead of the embedded
    /// one: the edge flavour, say, to check that it exports the same bytes.
    /// Imports other than polytel's are linked as traps: a host never lets
    /// the core do its own I/O.
    #[serde(skip)]
    pub core_component: Option<&'static [u8]>,
    /// The facts resource detection reads; `None` gathers this machine's.
    /// Tests pass fixed facts.
    #[serde(skip)]
    pub host_facts: Option<serde_json::Value>,
}

impl Options {
    /// Sets a backend setting by its option name, such as "honeycomb_api_key".
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.settings.insert(name.to_owned(), value.into());
        self
    }

    /// The configuration JSON `pipeline.create` takes. Reads the config file,
    /// if one is named.
    pub fn core_config(&self, seed: u64) -> Result<String> {
        let env: BTreeMap<String, String> = match &self.env {
            Some(e) => e.clone(),
            // The core reads OTEL_* settings, vendors' credential variables and
            // the platform variables resource detection looks at.
            None => std::env::vars().collect(),
        };
        let mut host = self.host_facts.clone().unwrap_or_else(crate::facts::gather);
        if let Some(facts) = host.as_object_mut() {
            // A binding over the C ABI (Go) names its own language.
            facts.entry("sdk_language").or_insert_with(|| "rust".into());
            facts.insert("grpc".into(), true.into());
        }
        let path =
            self.config_file.clone().or_else(|| env.get("POLYTEL_CONFIG").cloned()).filter(|p| !p.trim().is_empty());
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("The config file {path} could not be read"))?;
                serde_json::json!({"path": path, "text": text})
            }
            None => serde_json::Value::Null,
        };
        Ok(serde_json::json!({
            "options": self,
            "env": env,
            "seed": seed.to_string(),
            "host": host,
            "file": file,
        })
        .to_string())
    }
}
