//! Options of `Telemetry::configure`. The core-facing ones are sent to the
//! core as JSON under the same names every binding uses; the rest steer the host.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Unix nanoseconds for span and event timestamps.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// What to configure. `Options::default()` reads everything from the environment.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// "otlp", "console" or "none"; default from OTEL_TRACES_EXPORTER, else otlp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// A base URL, as OTEL_EXPORTER_OTLP_ENDPOINT: `/v1/traces` is appended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
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
}

impl Options {
    /// The configuration JSON `pipeline.create` takes.
    pub fn core_config(&self, seed: u64) -> String {
        let env: BTreeMap<String, String> = match &self.env {
            Some(e) => e.clone(),
            None => std::env::vars().filter(|(k, _)| is_config_var(k)).collect(),
        };
        serde_json::json!({
            "options": self,
            "env": env,
            "seed": seed.to_string(),
            "host": {"sdk_language": "rust"},
        })
        .to_string()
    }
}

/// Only the variables the core reads are handed over.
fn is_config_var(name: &str) -> bool {
    name.starts_with("OTEL_") || name.starts_with("POLYTEL_")
}
