//! Configuration: explicit options over the OTEL_* environment over defaults,
//! validated once, at `pipeline.create`. Errors are one sentence naming what was
//! wrong and how to fix it.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use serde::Deserialize;

use crate::attributes::{parse_attributes, AttributeLimits};
use crate::config_file::ConfigFile;
use crate::detect::HostFacts;
use crate::env::Env;
use crate::propagation::Propagators;
use crate::resource::{build_resource, ResourceSettings};
pub use crate::routes::{Encoding, OtlpRoute, Route, Transport};
use crate::routes::{RouteInputs, Routes};
use crate::sampler::SamplerPlan;

/// What `pipeline.create` receives.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigInput {
    /// Explicit options: the fields of `Options` and the presets' settings
    /// (`presets::KEYS`), read apart in `from_input`.
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Decimal u64; seeds retry jitter.
    #[serde(default)]
    pub seed: Option<String>,
    #[serde(default)]
    pub host: HostFacts,
    #[serde(default)]
    pub file: Option<ConfigFile>,
}

/// Where signals go: one list of backends for all, or one per signal.
#[derive(Deserialize, serde::Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum Backend {
    /// Comma-separated names: "honeycomb", "console,honeycomb".
    All(String),
    /// {"traces": "tempo", "metrics": "prometheus"}; a signal left out goes nowhere.
    PerSignal(BTreeMap<String, String>),
}

impl From<&str> for Backend {
    fn from(names: &str) -> Self {
        Backend::All(names.to_owned())
    }
}

/// Explicit settings, named as every binding names them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub disabled: Option<bool>,
    /// Where signals go: a preset name (see `presets::NAMES`), "console" or
    /// "none", comma-separated for several, or a map per signal. Beats
    /// POLYTEL_BACKEND, which beats OTEL_*_EXPORTER.
    pub backend: Option<Backend>,
    /// Comma-separated, as OTEL_TRACES_EXPORTER: "otlp", "console", "none".
    pub traces_exporter: Option<String>,
    /// As OTEL_METRICS_EXPORTER: "otlp", "console", "prometheus", "none".
    pub metrics_exporter: Option<String>,
    /// As OTEL_LOGS_EXPORTER: "otlp", "console", "jsonl", "none".
    pub logs_exporter: Option<String>,
    /// A base URL, as OTEL_EXPORTER_OTLP_ENDPOINT: `/v1/<signal>` is appended.
    /// With several backends, each takes its own from `endpoints`.
    pub endpoint: Option<String>,
    /// Base URLs by backend name, for several backends at once.
    pub endpoints: Option<BTreeMap<String, String>>,
    /// Headers sent to every OTLP backend, besides the backend's own.
    pub headers: Option<BTreeMap<String, String>>,
    /// "http/protobuf", "http/json" or "grpc".
    pub protocol: Option<String>,
    /// "gzip" or "none".
    pub compression: Option<String>,
    pub timeout_ms: Option<u32>,
    /// Let credentials travel over plain http to another machine.
    pub allow_insecure: Option<bool>,
    /// The TOML file the host read (it passes the text as `file`).
    pub config_file: Option<String>,
    pub service_name: Option<String>,
    pub service_version: Option<String>,
    pub service_namespace: Option<String>,
    pub deployment_environment: Option<String>,
    /// Extra resource attributes, as attribute JSON.
    pub resource_attributes: Option<serde_json::Value>,
    /// Which resource detectors run; see `detect`.
    pub resource_detectors: Option<Vec<String>>,
    pub sampler: Option<String>,
    pub sampler_arg: Option<String>,
    pub schedule_delay_ms: Option<u64>,
    pub max_queue_size: Option<u64>,
    pub max_export_batch_size: Option<u64>,
    pub export_timeout_ms: Option<u64>,
    pub attribute_count_limit: Option<u64>,
    pub attribute_value_length_limit: Option<u64>,
    pub event_count_limit: Option<u64>,
    pub link_count_limit: Option<u64>,
    pub propagators: Option<Vec<String>>,
    pub metric_export_interval_ms: Option<u64>,
    pub metric_export_timeout_ms: Option<u64>,
    /// "cumulative", "delta" or "lowmemory".
    pub temporality: Option<String>,
    /// "explicit_bucket_histogram" or "base2_exponential_bucket_histogram".
    pub histogram_aggregation: Option<String>,
    /// "trace_based", "always_on" or "always_off".
    pub exemplar_filter: Option<String>,
    /// Series per instrument, the overflow series included.
    pub cardinality_limit: Option<u64>,
    /// Where the host serves /metrics ("host:port"), with the prometheus exporter.
    pub prometheus_listen: Option<String>,
    pub log_schedule_delay_ms: Option<u64>,
    pub log_max_queue_size: Option<u64>,
    pub log_max_export_batch_size: Option<u64>,
    pub log_export_timeout_ms: Option<u64>,
    /// Capture GenAI prompts, responses, tool arguments and results (off by default).
    pub genai_capture_content: Option<bool>,
    /// Token prices replacing or adding to the shipped table: provider → model →
    /// {input, output, cache_read?, cache_write?, aliases?}, US dollars per million.
    pub genai_prices: Option<serde_json::Value>,
    /// Redact secret-named attributes and secret-shaped text (on by default).
    pub redact: Option<bool>,
    /// Regular expressions whose matches are redacted too.
    pub redact_patterns: Option<Vec<String>>,
    /// Export the core's own counters as `polytel.*` metrics (see `self_metrics`).
    pub self_metrics: Option<bool>,
}

/// The three signals; each has its own routes, queue and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The name in OTEL_<NAME>_EXPORTER and OTEL_EXPORTER_OTLP_<NAME>_*.
    pub fn env_name(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
        }
    }

    /// The OTLP/HTTP path segment: /v1/<path>.
    pub fn path(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// What one item of this signal is called in messages.
    pub fn items(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "data points",
            Signal::Logs => "log records",
        }
    }
}

/// Which metric kinds are exported as deltas (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Temporality {
    Cumulative,
    /// Counters and histograms (synchronous and observable) as deltas.
    Delta,
    /// Synchronous counters and histograms as deltas.
    LowMemory,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExemplarFilter {
    TraceBased,
    AlwaysOn,
    AlwaysOff,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricSettings {
    pub interval_ms: u64,
    pub temporality: Temporality,
    pub exponential_histograms: bool,
    pub exemplar_filter: ExemplarFilter,
    pub cardinality_limit: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanLimits {
    pub attributes: AttributeLimits,
    pub events: usize,
    pub links: usize,
    pub event_attributes: AttributeLimits,
    pub link_attributes: AttributeLimits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSettings {
    pub max_queue: usize,
    pub max_batch: usize,
    pub schedule_delay_ms: u64,
}

pub struct Config {
    pub disabled: bool,
    pub resource: Vec<KeyValue>,
    pub span_limits: SpanLimits,
    pub log_limits: AttributeLimits,
    pub sampler: SamplerPlan,
    pub batch: BatchSettings,
    pub log_batch: BatchSettings,
    pub metrics: MetricSettings,
    pub traces: Vec<Route>,
    pub metric_routes: Vec<Route>,
    pub logs: Vec<Route>,
    /// "host:port" the host serves /metrics at.
    pub prometheus: Option<String>,
    pub propagators: Propagators,
    pub seed: u64,
    /// A signal goes to Azure Monitor: JSON-lines logs carry `operation_Id`
    /// and `operation_ParentId`.
    pub azure_correlation: bool,
    pub genai: crate::genai::Settings,
    /// The core's own counters go out as metrics.
    pub self_metrics: bool,
    pub redactor: crate::redact::Redactor,
    /// Shown once, at the first poll.
    pub warnings: Vec<String>,
}

impl Config {
    pub fn from_json(json: &str) -> Result<Config, String> {
        let input: ConfigInput =
            serde_json::from_str(json).map_err(|e| format!("The configuration is not valid: {e}."))?;
        Self::from_input(input)
    }

    pub fn from_input(input: ConfigInput) -> Result<Config, String> {
        let mut warnings = Vec::new();
        let mut options = input.options;
        match &input.file {
            Some(file) => crate::config_file::merge_below(&mut options, file, &input.env)?,
            None => {
                let named = options.get("config_file").and_then(|v| v.as_str()).map(str::to_owned);
                if let Some(path) =
                    named.or_else(|| input.env.get("POLYTEL_CONFIG").cloned()).filter(|p| !p.trim().is_empty())
                {
                    return Err(format!("The config file {path} was named but the host did not pass its contents."));
                }
            }
        }
        if let Some(unknown) = options.keys().find(|k| !crate::config_file::is_option(k)) {
            return Err(format!(
                "The option {unknown:?} is not known; the README lists the options and each backend's settings."
            ));
        }
        let preset_settings = take_preset_settings(&mut options)?;
        let opts: Options = serde_json::from_value(serde_json::Value::Object(options))
            .map_err(|e| format!("The options are not valid: {e}."))?;
        let opts = &opts;
        let mut env = Env::new(&input.env, &mut warnings);

        let seed = match &input.seed {
            None => 0,
            Some(s) => {
                s.parse::<u64>().map_err(|_| format!("The seed {s:?} is not a decimal unsigned 64-bit integer."))?
            }
        };
        let disabled = opts.disabled.unwrap_or_else(|| env.bool("OTEL_SDK_DISABLED"));

        let option_resource = match &opts.resource_attributes {
            None => Vec::new(),
            Some(value) => {
                parse_attributes(&value.to_string(), AttributeLimits::UNLIMITED)
                    .map_err(|e| format!("The option resource_attributes is not valid attribute JSON: {e}."))?
                    .kept
            }
        };
        let detected = crate::detect::detect(&input.host, &mut env, opts.resource_detectors.as_deref());
        let resource = build_resource(
            &mut env,
            ResourceSettings {
                detected,
                sdk_language: input.host.sdk_language.as_deref().unwrap_or("unknown"),
                service_name: opts.service_name.as_deref(),
                service_version: opts.service_version.as_deref(),
                service_namespace: opts.service_namespace.as_deref(),
                deployment_environment: opts.deployment_environment.as_deref(),
                attributes: option_resource,
            },
        );

        let span_limits = span_limits(&mut env, opts);
        let sampler = SamplerPlan::from_env(&mut env, opts.sampler.as_deref(), opts.sampler_arg.as_deref());
        let batch = batch_settings(
            &mut env,
            "span",
            "OTEL_BSP",
            [opts.max_queue_size, opts.max_export_batch_size, opts.schedule_delay_ms],
            5000,
        );
        let log_batch = batch_settings(
            &mut env,
            "log",
            "OTEL_BLRP",
            [opts.log_max_queue_size, opts.log_max_export_batch_size, opts.log_schedule_delay_ms],
            1000,
        );
        let log_limits = AttributeLimits {
            count: opts
                .attribute_count_limit
                .or_else(|| env.number(&["OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"]))
                .map_or(128, size),
            value_length: opts
                .attribute_value_length_limit
                .or_else(|| {
                    env.number(&["OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"])
                })
                .map(size),
        };
        let propagators = match &opts.propagators {
            Some(list) => Propagators::from_names(list.iter().map(String::as_str), &mut env),
            None => Propagators::from_names(
                env.get("OTEL_PROPAGATORS").unwrap_or("tracecontext,baggage").split(','),
                &mut env,
            ),
        };
        let service_name = resource
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| crate::attributes::string_of(kv.value.as_ref()))
            .unwrap_or_default()
            .to_owned();
        let routes = crate::routes::build(
            &mut env,
            RouteInputs { opts, presets: &preset_settings, host_grpc: input.host.grpc, service_name: &service_name },
        )?;
        let metrics = metric_settings(&mut env, opts, routes.temporality, routes.delta_only);
        let prometheus = if routes.prometheus_pull { Some(prometheus_listen(&mut env, opts)?) } else { None };
        let Routes { traces, metrics: metric_routes, logs, azure_correlation, .. } = routes;
        let genai =
            crate::genai::Settings::from_config(&mut env, opts.genai_capture_content, opts.genai_prices.as_ref())?;
        let self_metrics = opts.self_metrics.unwrap_or_else(|| env.bool("POLYTEL_SELF_METRICS"));
        let redactor = crate::redact::Redactor::from_config(&mut env, opts.redact, opts.redact_patterns.as_deref())?;

        Ok(Config {
            disabled,
            resource,
            span_limits,
            log_limits,
            sampler,
            batch,
            log_batch,
            metrics,
            traces,
            metric_routes,
            logs,
            prometheus,
            propagators,
            seed,
            azure_correlation,
            genai,
            self_metrics,
            redactor,
            warnings,
        })
    }

    pub fn routes(&self, signal: Signal) -> &[Route] {
        match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metric_routes,
            Signal::Logs => &self.logs,
        }
    }

    /// A route, to follow a redirect (`Route::Azure` keeps the new host).
    pub fn route_mut(&mut self, signal: Signal, index: usize) -> Option<&mut Route> {
        match signal {
            Signal::Traces => self.traces.get_mut(index),
            Signal::Metrics => self.metric_routes.get_mut(index),
            Signal::Logs => self.logs.get_mut(index),
        }
    }
}

/// A count from configuration as a usize; on 32-bit wasm a huge u64 must not wrap.
fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn span_limits(env: &mut Env, opts: &Options) -> SpanLimits {
    let count = |env: &mut Env, opt: Option<u64>, names: &[&'static str]| -> usize {
        opt.or_else(|| env.number(names)).map_or(128, size)
    };
    let value_length = opts
        .attribute_value_length_limit
        .or_else(|| env.number(&["OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"]))
        .map(size);
    let attribute_count =
        count(env, opts.attribute_count_limit, &["OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"]);
    let event_attribute_count = count(env, None, &["OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"]);
    let link_attribute_count = count(env, None, &["OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"]);
    SpanLimits {
        attributes: AttributeLimits { count: attribute_count, value_length },
        events: count(env, opts.event_count_limit, &["OTEL_SPAN_EVENT_COUNT_LIMIT"]),
        links: count(env, opts.link_count_limit, &["OTEL_SPAN_LINK_COUNT_LIMIT"]),
        event_attributes: AttributeLimits { count: event_attribute_count, value_length },
        link_attributes: AttributeLimits { count: link_attribute_count, value_length },
    }
}

/// Larger queues are clamped to this: memory must stay bounded whatever is configured.
const MAX_QUEUE: u64 = 1 << 20;

/// A batch processor's queue, batch size and delay: `[queue, batch, delay]`
/// from explicit options, else `<prefix>_MAX_QUEUE_SIZE`, `_MAX_EXPORT_BATCH_SIZE`
/// and `_SCHEDULE_DELAY`.
fn batch_settings(
    env: &mut Env,
    what: &str,
    prefix: &str,
    [queue, batch, delay]: [Option<u64>; 3],
    default_delay_ms: u64,
) -> BatchSettings {
    let mut max_queue = queue.or_else(|| env.number(&[&format!("{prefix}_MAX_QUEUE_SIZE")])).unwrap_or(2048).max(1);
    if max_queue > MAX_QUEUE {
        env.warn(format!("The {what} queue size {max_queue} is larger than polytel allows; using {MAX_QUEUE}."));
        max_queue = MAX_QUEUE;
    }
    let mut max_batch =
        batch.or_else(|| env.number(&[&format!("{prefix}_MAX_EXPORT_BATCH_SIZE")])).unwrap_or(512).max(1);
    if max_batch > max_queue {
        env.warn(format!(
            "The {what} export batch size ({max_batch}) is larger than the queue ({max_queue}); using {max_queue}."
        ));
        max_batch = max_queue;
    }
    let schedule_delay_ms =
        delay.or_else(|| env.number(&[&format!("{prefix}_SCHEDULE_DELAY")])).unwrap_or(default_delay_ms);
    BatchSettings { max_queue: size(max_queue), max_batch: size(max_batch), schedule_delay_ms }
}

/// OTEL_METRIC_EXPORT_INTERVAL and the other metric settings.
/// `preferred` is the temporality the metric backends want, used when the user
/// chose none; `delta_only` names a backend that rejects cumulative metrics.
fn metric_settings(
    env: &mut Env,
    opts: &Options,
    preferred: Option<Temporality>,
    delta_only: Option<&str>,
) -> MetricSettings {
    let interval_ms =
        opts.metric_export_interval_ms.or_else(|| env.number(&["OTEL_METRIC_EXPORT_INTERVAL"])).unwrap_or(60_000);
    // A zero interval would collect on every poll.
    let interval_ms = interval_ms.max(1);
    let choice = |env: &mut Env, opt: &Option<String>, name: &str, allowed: &[&str]| -> Option<String> {
        match opt {
            Some(v) if allowed.contains(&v.to_ascii_lowercase().as_str()) => Some(v.to_ascii_lowercase()),
            Some(v) => {
                env.warn(format!("The option {v:?} is not one of {}; using the default.", allowed.join(", ")));
                None
            }
            None => env.choice(&[name], allowed),
        }
    };
    let temporality = match choice(
        env,
        &opts.temporality,
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        &["cumulative", "delta", "lowmemory"],
    )
    .as_deref()
    {
        Some("delta") => Temporality::Delta,
        Some("lowmemory") => Temporality::LowMemory,
        Some(_) => Temporality::Cumulative,
        None => preferred.unwrap_or(Temporality::Cumulative),
    };
    if let (Some(backend), Temporality::Cumulative) = (delta_only, temporality) {
        env.warn(format!("{backend} accepts only delta metrics, but cumulative was chosen; it may reject them."));
    }
    let exponential_histograms = choice(
        env,
        &opts.histogram_aggregation,
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
        &["explicit_bucket_histogram", "base2_exponential_bucket_histogram"],
    )
    .as_deref()
        == Some("base2_exponential_bucket_histogram");
    let exemplar_filter = match choice(
        env,
        &opts.exemplar_filter,
        "OTEL_METRICS_EXEMPLAR_FILTER",
        &["trace_based", "always_on", "always_off"],
    )
    .as_deref()
    {
        Some("always_on") => ExemplarFilter::AlwaysOn,
        Some("always_off") => ExemplarFilter::AlwaysOff,
        _ => ExemplarFilter::TraceBased,
    };
    // One series is the overflow series, so at least two.
    let cardinality_limit = opts.cardinality_limit.map_or(2000, size).clamp(2, 1 << 20);
    MetricSettings { interval_ms, temporality, exponential_histograms, exemplar_filter, cardinality_limit }
}

/// Moves the presets' settings (credentials, datasets, regions) out of the
/// options; each must be a string (a switch such as azure_monitor_live_metrics
/// may be a boolean too, as a config file writes it).
fn take_preset_settings(
    options: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for key in crate::presets::KEYS {
        match options.remove(key.option) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(v)) => {
                out.insert(key.option.to_owned(), v);
            }
            Some(serde_json::Value::Bool(b)) => {
                out.insert(key.option.to_owned(), b.to_string());
            }
            Some(_) => return Err(format!("The option {} must be a string.", key.option)),
        }
    }
    Ok(out)
}

/// Where /metrics is served: the option, else OTEL_EXPORTER_PROMETHEUS_HOST and _PORT.
fn prometheus_listen(env: &mut Env, opts: &Options) -> Result<String, String> {
    if let Some(listen) = &opts.prometheus_listen {
        return match listen.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(listen.clone()),
            _ => Err(format!("The option prometheus_listen {listen:?} is not host:port, such as \"127.0.0.1:9464\".")),
        };
    }
    let host = env.get("OTEL_EXPORTER_PROMETHEUS_HOST").unwrap_or("localhost").to_owned();
    let port = match env.get("OTEL_EXPORTER_PROMETHEUS_PORT") {
        None => 9464,
        Some(p) => match p.parse::<u16>() {
            Ok(p) => p,
            Err(_) => {
                env.warn(format!("OTEL_EXPORTER_PROMETHEUS_PORT={p:?} is not a port number; using 9464."));
                9464
            }
        },
    };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(options: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_json(&format!(
            r#"{{"options":{options},"env":{},"host":{{"sdk_language":"rust"}}}}"#,
            serde_json::to_string(&env).unwrap()
        ))
    }

    fn otlp(c: &Config) -> &OtlpRoute {
        match &c.traces[0] {
            Route::Otlp(r) => r,
            _ => panic!("otlp route expected"),
        }
    }

    #[test]
    fn endpoint_rules() {
        let c = config("{}", &[]).unwrap();
        assert_eq!(otlp(&c).url, "http://localhost:4318/v1/traces");
        let c = config("{}", &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1/otlp")]).unwrap();
        assert_eq!(otlp(&c).url, "http://h:1/otlp/v1/traces");
        let c = config("{}", &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1/")]).unwrap();
        assert_eq!(otlp(&c).url, "http://h:1/v1/traces");
        let c = config(
            "{}",
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1"), ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t:2/x")],
        )
        .unwrap();
        assert_eq!(otlp(&c).url, "https://t:2/x", "per-signal endpoint is used as-is");
        let c = config("{}", &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t:2")]).unwrap();
        assert_eq!(otlp(&c).url, "https://t:2/");
        let c = config(r#"{"endpoint":"http://o:3"}"#, &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t")]).unwrap();
        assert_eq!(otlp(&c).url, "http://o:3/v1/traces", "explicit options win");
    }

    #[test]
    fn bad_endpoints_and_protocols_fail_in_one_sentence() {
        let e = config("{}", &[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318")]).err().unwrap();
        assert_eq!(e, "OTEL_EXPORTER_OTLP_ENDPOINT \"localhost:4318\" is not an http:// or https:// URL.");
        let e = config("{}", &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).err().unwrap();
        assert!(e.contains("http/protobuf"), "{e}");
        assert!(config(r#"{"backend":"zipkin"}"#, &[]).is_err());
        assert!(config(r#"{"bogus":1}"#, &[]).is_err(), "unknown options are refused");
    }

    #[test]
    fn headers_protocol_compression_timeout() {
        let c = config(
            "{}",
            &[
                ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "authorization=Bearer%20tok"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "HTTP/JSON"),
                ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ],
        )
        .unwrap();
        let r = otlp(&c);
        assert_eq!(r.headers.len(), 1);
        assert_eq!((r.headers[0].0.as_str(), r.headers[0].1.expose()), ("authorization", "Bearer tok"));
        assert_eq!((r.encoding, r.gzip, r.timeout_ms), (Encoding::Json, true, 2500));
    }

    #[test]
    fn garbage_values_warn_and_use_defaults() {
        let c = config(
            "{}",
            &[
                ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
                ("OTEL_TRACES_SAMPLER", "nope"),
                ("OTEL_SDK_DISABLED", "maybe"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "justakey"),
            ],
        )
        .unwrap();
        assert_eq!(c.batch.max_queue, 2048);
        assert!(!otlp(&c).gzip);
        assert!(!c.disabled);
        assert_eq!(c.warnings.len(), 5, "{:?}", c.warnings);
    }

    #[test]
    fn limits_and_batch_from_env() {
        let c = config(
            r#"{"max_export_batch_size":10}"#,
            &[
                ("OTEL_ATTRIBUTE_COUNT_LIMIT", "5"),
                ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "7"),
                ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "9"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "4"),
                ("OTEL_SDK_DISABLED", "true"),
            ],
        )
        .unwrap();
        assert_eq!(c.span_limits.attributes, AttributeLimits { count: 7, value_length: Some(9) });
        assert_eq!(c.span_limits.event_attributes.count, 5);
        assert_eq!(c.batch, BatchSettings { max_queue: 4, max_batch: 4, schedule_delay_ms: 5000 });
        assert!(c.disabled);
    }

    #[test]
    fn export_timeouts_combine_and_zero_means_none() {
        let timeout = |env: &[(&str, &str)]| otlp(&config("{}", env).unwrap()).timeout_ms;
        assert_eq!(timeout(&[]), 10_000);
        assert_eq!(timeout(&[("OTEL_BSP_EXPORT_TIMEOUT", "2000")]), 2000);
        assert_eq!(timeout(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "0")]), 30_000);
        assert_eq!(timeout(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "0"), ("OTEL_BSP_EXPORT_TIMEOUT", "0")]), u32::MAX);
    }

    #[test]
    fn huge_sizes_are_clamped_not_wrapped() {
        let c = config(r#"{"max_queue_size":4294967306,"max_export_batch_size":4294967296}"#, &[]).unwrap();
        assert_eq!(c.batch.max_queue, 1 << 20);
        assert_eq!(c.batch.max_batch, 1 << 20);
    }

    #[test]
    fn signals_have_their_own_exporters_and_settings() {
        let c = config(
            "{}",
            &[
                ("OTEL_METRICS_EXPORTER", "prometheus,console"),
                ("OTEL_LOGS_EXPORTER", "jsonl,otlp"),
                ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://l:1/logs"),
                ("OTEL_EXPORTER_PROMETHEUS_PORT", "9999"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "1500"),
                ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
                ("OTEL_METRICS_EXEMPLAR_FILTER", "always_off"),
                ("OTEL_BLRP_MAX_QUEUE_SIZE", "10"),
                ("OTEL_BLRP_SCHEDULE_DELAY", "200"),
                ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "3"),
            ],
        )
        .unwrap();
        assert!(matches!(c.metric_routes[..], [Route::Console]));
        assert_eq!(c.prometheus.as_deref(), Some("localhost:9999"));
        assert!(matches!(&c.logs[..], [Route::JsonLines, Route::Otlp(o)] if o.url == "http://l:1/logs"));
        assert_eq!(c.metrics.interval_ms, 1500);
        assert_eq!(c.metrics.temporality, Temporality::Delta);
        assert_eq!(c.metrics.exemplar_filter, ExemplarFilter::AlwaysOff);
        assert_eq!(c.log_batch, BatchSettings { max_queue: 10, max_batch: 10, schedule_delay_ms: 200 });
        assert_eq!(c.log_limits.count, 3);
        assert!(matches!(c.traces[..], [Route::Otlp(_)]));

        let c = config(r#"{"backend":"console","metrics_exporter":"otlp"}"#, &[]).unwrap();
        assert!(matches!(c.traces[..], [Route::Console]));
        assert!(matches!(&c.metric_routes[..], [Route::Otlp(o)] if o.url == "http://localhost:4318/v1/metrics"));
        assert!(matches!(c.logs[..], [Route::Console]));
        let e = config(r#"{"traces_exporter":"prometheus"}"#, &[]).err().unwrap();
        assert!(e.contains("traces_exporter") && e.contains("\"otlp\""), "{e}");
        let e = config(r#"{"metrics_exporter":"prometheus","prometheus_listen":"nope"}"#, &[]).err().unwrap();
        assert!(e.contains("prometheus_listen"), "{e}");
    }

    #[test]
    fn exporters_list() {
        let c = config("{}", &[("OTEL_TRACES_EXPORTER", "console,otlp,zipkin")]).unwrap();
        assert!(matches!(c.traces[..], [Route::Console, Route::Otlp(_)]));
        let c = config(r#"{"backend":"none"}"#, &[]).unwrap();
        assert!(c.traces.is_empty());
    }
}
