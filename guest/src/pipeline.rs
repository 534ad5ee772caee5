//! One configured pipeline: spans, measurements and log records in, exports
//! out, outcomes back. This is the whole behaviour behind the `pipeline`
//! resource of `wit/polytel.wit`, as plain Rust so it is tested natively.

use std::collections::HashSet;

use base64::Engine as _;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::azure::delivery::Judgement;
use crate::azure::live::{self, Answer, Session, Settled};
use crate::config::{Config, Route};
use crate::delivery::{judge, Outcome, Verdict, RETRY_BUDGET_NS};
use crate::encode::{
    body, content_type, logs_request, metrics_request, request_of_body, sized_bodies, trace_request, Request,
};
use crate::genai::{GenAi, MetricSink};
use crate::ids::splitmix64;
use crate::logs::parse_log;
use crate::metrics::Meters;
use crate::propagation::{self, Context};
use crate::queue::BatchQueue;
use crate::routes::{grpc_path, Transport};
use crate::secret::Secret;
use crate::self_metrics::SelfMetrics;
use crate::spans::{parse_span, Scope};
use crate::stats::{DropReason, Limited, SignalStats, Stats, Warnings};

pub use crate::config::Signal;
pub use crate::delivery::Outcome as ExportOutcome;

/// Where an export goes, with everything the host needs to send it.
#[derive(Clone, PartialEq)]
pub enum Destination {
    Http {
        url: String,
        headers: Vec<(String, Secret)>,
        timeout_ms: u32,
    },
    /// A unary gRPC call to `target` ("http(s)://host:port") at `path`.
    Grpc {
        target: String,
        path: String,
        metadata: Vec<(String, Secret)>,
        compressed: bool,
        timeout_ms: u32,
    },
    Stdout,
}

/// URLs with the `ikey` of a Live Metrics request masked; header values are
/// `Secret`s, which mask themselves.
impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Destination::Http { url, headers, timeout_ms } => f
                .debug_struct("Http")
                .field("url", &live::masked_url(url))
                .field("headers", headers)
                .field("timeout_ms", timeout_ms)
                .finish(),
            Destination::Grpc { target, path, metadata, compressed, timeout_ms } => f
                .debug_struct("Grpc")
                .field("target", target)
                .field("path", path)
                .field("metadata", metadata)
                .field("compressed", compressed)
                .field("timeout_ms", timeout_ms)
                .finish(),
            Destination::Stdout => f.write_str("Stdout"),
        }
    }
}

#[derive(Clone, PartialEq)]
pub struct Export {
    pub id: u64,
    pub signal: Signal,
    pub destination: Destination,
    /// base64 of the request body for `Http`; text for `Stdout`.
    pub body: String,
    pub items: u32,
}

/// Without the body: an Azure Monitor body carries the instrumentation key
/// in every envelope, and secrets never appear in debug formatting.
impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("id", &self.id)
            .field("signal", &self.signal)
            .field("destination", &self.destination)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("items", &self.items)
            .finish()
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct PollResult {
    pub exports: Vec<Export>,
    pub warnings: Vec<String>,
    pub next_poll: u64,
    /// The host should run its observable callbacks and poll again.
    pub observe: bool,
    /// Items queued or in exports not yet settled (the ones handed out now
    /// included): a flush is complete once a poll hands out nothing and this is 0.
    pub outstanding: u64,
}

/// An HTTP export built and not yet settled. Only its body is kept: a retry
/// resends it as it is, and a split decodes it (an Azure Monitor partial
/// success takes the envelopes to resend out of it).
struct Pending {
    id: u64,
    signal: Signal,
    route: usize,
    items: usize,
    /// Envelopes in the body of an Azure Monitor export; 0 for OTLP.
    envelopes: usize,
    body: String,
    attempts: u32,
    /// When the first attempt was handed out; retries end `RETRY_BUDGET_NS` after it.
    first_attempt: u64,
    /// Redirects followed in a row.
    redirects: u32,
    /// Where a followed OTLP redirect sent this export (the route's URL otherwise).
    url: Option<String>,
    due: u64,
    in_flight: bool,
}

/// Metric data points waiting to be delivered are held to this many; the
/// oldest export goes first when a collection would exceed it.
const MAX_PENDING_POINTS: usize = 1 << 16;

pub struct Pipeline {
    config: Config,
    spans: BatchQueue<(Scope, Span)>,
    queued_ids: HashSet<Vec<u8>>,
    logs: BatchQueue<(Scope, LogRecord)>,
    meters: Meters,
    /// When metrics were last collected; `None` until the first poll.
    last_collection: Option<u64>,
    /// The host was told to observe; the next poll collects.
    observing: bool,
    pending: Vec<Pending>,
    next_id: u64,
    rng: u64,
    stats: Stats,
    warnings: Warnings,
    /// Application Insights' Live Metrics (azure-monitor.md §4(e)), when an
    /// azure-monitor route has it on: its requests are not exports (see
    /// `crate::azure::live`).
    live: Option<Session>,
    genai: GenAi,
    /// Some when the core's counters go out as metrics.
    self_metrics: Option<SelfMetrics>,
    /// `abandon` was called: late outcomes are expected, not warned about.
    abandoned: bool,
}

impl Pipeline {
    pub fn new(config: Config) -> Pipeline {
        let self_metrics = (config.self_metrics && !config.disabled).then(SelfMetrics::default);
        let mut warnings = Warnings::default();
        config.warnings.iter().cloned().for_each(|w| warnings.push(w));
        let live = if config.disabled {
            None
        } else {
            Signal::ALL.iter().flat_map(|s| config.routes(*s)).find_map(|r| match r {
                Route::Azure(a) if a.live_metrics => Some(Session::new(a, &config.resource, config.seed)),
                _ => None,
            })
        };
        Pipeline {
            live,
            rng: config.seed,
            spans: BatchQueue::new(config.batch),
            queued_ids: HashSet::new(),
            logs: BatchQueue::new(config.log_batch),
            meters: Meters::new(config.metrics),
            last_collection: None,
            observing: false,
            config,
            pending: Vec::new(),
            next_id: 1,
            stats: Stats::default(),
            warnings,
            genai: GenAi::default(),
            self_metrics,
            abandoned: false,
        }
    }

    pub fn from_json(json: &str) -> Result<Pipeline, String> {
        Config::from_json(json).map(Pipeline::new)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether `signal` goes anywhere.
    fn enabled(&self, signal: Signal) -> bool {
        !self.config.disabled
            && (!self.config.routes(signal).is_empty()
                || (signal == Signal::Metrics && self.config.prometheus.is_some()))
    }

    pub fn plan(&self) -> String {
        #[derive(Serialize)]
        struct Plan<'a> {
            disabled: bool,
            sampler: crate::sampler::SamplerPlan,
            max_batch: usize,
            max_queue: usize,
            schedule_delay_ms: u64,
            propagators: Vec<&'a str>,
            traces: bool,
            metrics: bool,
            logs: bool,
            prometheus: Option<&'a str>,
            genai_capture: bool,
        }
        let p = &self.config.propagators;
        let propagators = [("tracecontext", p.tracecontext), ("baggage", p.baggage)]
            .into_iter()
            .filter_map(|(n, on)| on.then_some(n))
            .collect();
        serde_json::to_string(&Plan {
            disabled: self.config.disabled,
            sampler: self.config.sampler,
            max_batch: self.config.batch.max_batch,
            max_queue: self.config.batch.max_queue,
            schedule_delay_ms: self.config.batch.schedule_delay_ms,
            propagators,
            traces: self.enabled(Signal::Traces),
            metrics: self.enabled(Signal::Metrics),
            logs: self.enabled(Signal::Logs),
            prometheus: self.config.prometheus.as_deref().filter(|_| !self.config.disabled),
            genai_capture: self.config.genai.capture,
        })
        .expect("plan serialises")
    }

    pub fn describe(&self) -> String {
        let routes = |signal: Signal| -> Vec<serde_json::Value> {
            self.config
                .routes(signal)
                .iter()
                .map(|r| match r {
                    Route::Console => serde_json::json!({"exporter": "console"}),
                    Route::JsonLines => serde_json::json!({"exporter": "jsonl"}),
                    Route::Azure(a) => serde_json::json!({
                        "exporter": "azure-monitor",
                        "backend": "azure-monitor",
                        "url": crate::credentials::redact_url(&a.url),
                        "protocol": "application-insights/json",
                        "content_type": "application/json",
                        "compression": "none",
                        "timeout_ms": a.timeout_ms,
                        "instrumentation_key": a.instrumentation_key.masked(),
                        "live_metrics": if a.live_metrics { "on" } else { "off" },
                        "live_endpoint": crate::credentials::redact_url(&a.live_endpoint),
                        "headers": a.headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.masked()))).collect::<serde_json::Map<_, _>>(),
                    }),
                    Route::Otlp(o) => serde_json::json!({
                        "exporter": "otlp",
                        "backend": o.destination,
                        "url": crate::credentials::redact_url(&if o.transport == Transport::Grpc { format!("{}{}", o.url, grpc_path(signal)) } else { o.url.clone() }),
                        "protocol": o.protocol(),
                        "content_type": if o.transport == Transport::Grpc { "application/grpc" } else { content_type(o.encoding) },
                        "compression": if o.gzip { "gzip" } else { "none" },
                        "timeout_ms": o.timeout_ms,
                        "max_request_bytes": o.max_request_bytes,
                        "headers": o.headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.masked()))).collect::<serde_json::Map<_, _>>(),
                    }),
                })
                .collect()
        };
        let mut metrics = routes(Signal::Metrics);
        if let Some(listen) = &self.config.prometheus {
            metrics.push(serde_json::json!({"exporter": "prometheus", "listen": listen, "path": "/metrics"}));
        }
        let resource: serde_json::Map<String, serde_json::Value> = self
            .config
            .resource
            .iter()
            .map(|kv| {
                let text = crate::attributes::string_of(kv.value.as_ref())
                    .map_or_else(|| crate::console::value_text(kv.value.as_ref()), str::to_owned);
                (kv.key.clone(), serde_json::Value::String(text))
            })
            .collect();
        let temporality = match self.config.metrics.temporality {
            crate::config::Temporality::Cumulative => "cumulative",
            crate::config::Temporality::Delta => "delta",
            crate::config::Temporality::LowMemory => "lowmemory",
        };
        serde_json::to_string_pretty(&serde_json::json!({
            "disabled": self.config.disabled,
            "resource": resource,
            "traces": routes(Signal::Traces),
            "metrics": metrics,
            "metric_export_interval_ms": self.config.metrics.interval_ms,
            "temporality": temporality,
            "logs": routes(Signal::Logs),
            "warnings": self.config.warnings,
        }))
        .expect("description serialises")
    }

    /// Counts what limits cut from one record and passes its repair notes on.
    fn note_record(&mut self, signal: Signal, limited: &Limited, notes: Vec<(&'static str, String)>) {
        let l = &mut self.stats.signal(signal).limited;
        l.attributes_dropped += limited.attributes_dropped;
        l.values_truncated += limited.values_truncated;
        l.events_dropped += limited.events_dropped;
        l.links_dropped += limited.links_dropped;
        l.values_redacted += limited.values_redacted;
        if limited.attributes_dropped + limited.events_dropped + limited.links_dropped > 0 {
            self.warnings.once("limits", || {
                "Some spans or log records had more attributes, events or links than the configured limits allow; the extra ones were dropped and counted.".into()
            });
        }
        for (kind, note) in notes {
            self.warnings.once(kind, || note);
        }
    }

    /// Whether a queue of `signal` with `full` set can take one more record; counts and warns if not.
    fn admit(&mut self, signal: Signal, full: bool, capacity: usize) -> bool {
        if full {
            self.stats.signal(signal).drop(DropReason::QueueFull, 1);
            self.warnings.once(if signal == Signal::Traces { "queue_full" } else { "log_queue_full" }, || {
                format!(
                    "The {} queue is full ({capacity}); new ones are dropped until exports catch up.",
                    signal.items()
                )
            });
        }
        !full
    }

    /// Takes a JSON array of span records; see `record-spans` in the WIT.
    pub fn record_spans(&mut self, batch: &str) {
        if self.config.disabled {
            return;
        }
        let pending = self.pending_items(Signal::Traces);
        for raw in records(&mut self.stats.spans, &mut self.warnings, "span", batch) {
            let mut parsed = match parse_span(raw.get(), &self.config.span_limits) {
                Ok(p) => p,
                Err(e) => {
                    self.stats.spans.received += 1;
                    self.stats.spans.drop(DropReason::Invalid, 1);
                    self.warnings.once("bad_span", || format!("A span record was malformed and was dropped ({e})."));
                    continue;
                }
            };
            // Unsampled spans are GenAI operations sent for their metrics and
            // summary only: they are not received for export.
            let export = parsed.sampled && !self.config.traces.is_empty();
            if parsed.sampled {
                self.stats.spans.received += 1;
            }
            if let Some(op) = parsed.operation.take() {
                let metrics = self.enabled(Signal::Metrics).then_some(MetricSink {
                    meters: &mut self.meters,
                    stats: &mut self.stats.metrics,
                    warnings: &mut self.warnings,
                });
                parsed.limited.values_redacted += self.genai.ended(
                    &self.config.genai,
                    &mut parsed.span,
                    &mut parsed.scope,
                    op,
                    export,
                    metrics,
                    &self.config.redactor,
                );
            }
            if export && self.config.redactor.is_active() {
                parsed.limited.values_redacted += self.config.redactor.span(&mut parsed.span);
            }
            self.note_record(Signal::Traces, &parsed.limited, parsed.notes);
            if !export {
                continue;
            }
            if self.queued_ids.contains(&parsed.span.span_id) {
                self.stats.spans.drop(DropReason::Duplicate, 1);
                self.warnings
                    .once("duplicate", || "A span arrived twice (ended twice?); the second copy was dropped.".into());
                continue;
            }
            if let Some(live) = &mut self.live {
                live.span(&parsed.span);
            }
            // The queue's bound covers the items in unsettled exports too.
            let full = self.spans.len() + pending >= self.spans.capacity();
            if !self.admit(Signal::Traces, full, self.spans.capacity()) {
                continue;
            }
            self.queued_ids.insert(parsed.span.span_id.clone());
            self.spans.push((parsed.scope, parsed.span));
        }
        self.stats.spans.queued = self.spans.len() as u64;
    }

    /// Takes a JSON array of log records; see `record-logs` in the WIT.
    pub fn record_logs(&mut self, batch: &str) {
        if !self.enabled(Signal::Logs) {
            return;
        }
        let pending = self.pending_items(Signal::Logs);
        for raw in records(&mut self.stats.logs, &mut self.warnings, "log", batch) {
            self.stats.logs.received += 1;
            let mut parsed = match parse_log(raw.get(), self.config.log_limits) {
                Ok(p) => p,
                Err(e) => {
                    self.stats.logs.drop(DropReason::Invalid, 1);
                    self.warnings.once("bad_log", || format!("A log record was malformed and was dropped ({e})."));
                    continue;
                }
            };
            if self.config.redactor.is_active() {
                let r = &self.config.redactor;
                parsed.limited.values_redacted +=
                    r.attributes(&mut parsed.record.attributes) + parsed.record.body.as_mut().map_or(0, |b| r.value(b));
            }
            self.note_record(Signal::Logs, &parsed.limited, parsed.notes);
            if let Some(live) = &mut self.live {
                live.log(&parsed.record);
            }
            let full = self.logs.len() + pending >= self.logs.capacity();
            if self.admit(Signal::Logs, full, self.logs.capacity()) {
                self.logs.push((parsed.scope, parsed.record));
            }
        }
        self.stats.logs.queued = self.logs.len() as u64;
    }

    /// Registers an instrument; see `register-instrument` in the WIT.
    pub fn register_instrument(&mut self, json: &str) -> u32 {
        self.meters.register(json, &mut self.warnings)
    }

    /// Takes a JSON array of measurements; see `record-metrics` in the WIT.
    pub fn record_metrics(&mut self, batch: &str) {
        if self.enabled(Signal::Metrics) {
            self.meters.record(batch, &mut self.stats.metrics, &mut self.warnings);
        }
    }

    /// Current metrics as Prometheus (or OpenMetrics) text: the content type and the body.
    pub fn render_metrics(&mut self, format: crate::prometheus::Format, now: u64) -> (String, String) {
        self.observe_self(now);
        let collected = self.meters.snapshot(now);
        let request = metrics_request(&self.config.resource, collected.metrics);
        let scopes = request.resource_metrics.into_iter().flat_map(|rm| rm.scope_metrics).collect::<Vec<_>>();
        let rendered = crate::prometheus::render(&self.config.resource, &scopes, format);
        for why in rendered.skipped {
            self.warnings.once("prometheus_skipped", || why);
        }
        (format.content_type().to_owned(), rendered.text)
    }

    fn observe_self(&mut self, now: u64) {
        if let Some(s) = &mut self.self_metrics {
            s.observe(&mut self.meters, &mut self.stats, &mut self.warnings, now);
        }
    }

    fn pending_items(&self, signal: Signal) -> usize {
        self.pending.iter().filter(|p| p.signal == signal).map(|p| p.items).sum()
    }

    fn jitter(&mut self) -> f64 {
        (splitmix64(&mut self.rng) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn poll(&mut self, now: u64, flush: bool) -> PollResult {
        if self.config.disabled {
            // Nothing is ever recorded, so there is nothing to collect or send.
            return PollResult { next_poll: u64::MAX, warnings: self.warnings.take(), ..Default::default() };
        }
        let mut out = PollResult::default();
        for batch in self.spans.due(now, flush, self.pending_items(Signal::Traces)) {
            for (_, s) in &batch {
                self.queued_ids.remove(&s.span_id);
            }
            self.route(Request::Traces(trace_request(&self.config.resource, batch)), now, &mut out);
        }
        for batch in self.logs.due(now, flush, self.pending_items(Signal::Logs)) {
            self.route(Request::Logs(logs_request(&self.config.resource, batch)), now, &mut out);
        }
        let interval = self.config.metrics.interval_ms.saturating_mul(1_000_000);
        let last = *self.last_collection.get_or_insert(now);
        let collect_due = !self.config.metric_routes.is_empty() && (flush || now >= last.saturating_add(interval));
        if self.observing || (collect_due && !self.meters.has_observable()) {
            self.observing = false;
            self.last_collection = Some(now);
            self.observe_self(now);
            let collected = self.meters.collect(now);
            if collected.points > 0 {
                self.route(Request::Metrics(metrics_request(&self.config.resource, collected.metrics)), now, &mut out);
            }
        } else if collect_due {
            self.observing = true;
            out.observe = true;
        }
        // A flush sends what is queued at once, but a retry keeps its time:
        // the server's Retry-After, or the backoff.
        for p in self.pending.iter_mut().filter(|p| !p.in_flight && p.due <= now) {
            p.in_flight = true;
            p.attempts += 1;
            if p.attempts == 1 {
                p.first_attempt = now;
            }
            out.exports.push(Self::export_of(&self.config, p));
        }
        self.stats.exports.sent += out.exports.iter().filter(|e| e.destination != Destination::Stdout).count() as u64;
        // Live Metrics last, so it never holds up an export, and not while
        // flushing (a shutdown must not wait on it). Not counted as an export.
        if let Some(r) = self.live.as_mut().filter(|_| !flush).and_then(|l| l.request(now)) {
            out.exports.push(Export {
                id: r.id,
                signal: Signal::Metrics,
                destination: Destination::Http { url: r.url, headers: r.headers, timeout_ms: r.timeout_ms },
                body: base64::engine::general_purpose::STANDARD.encode(r.body),
                items: 0,
            });
        }
        let next_collection = if self.config.metric_routes.is_empty() {
            u64::MAX
        } else {
            self.last_collection.unwrap_or(now).saturating_add(interval)
        };
        let next_schedule = self.spans.next_due(now).min(self.logs.next_due(now)).min(next_collection);
        out.next_poll = self.pending.iter().filter(|p| !p.in_flight).map(|p| p.due).fold(next_schedule, u64::min);
        if let Some(live) = &self.live {
            out.next_poll = out.next_poll.min(live.next_due());
        }
        if out.observe {
            out.next_poll = now;
        }
        out.warnings = self.warnings.take();
        self.stats.spans.queued = self.spans.len() as u64;
        self.stats.logs.queued = self.logs.len() as u64;
        for signal in Signal::ALL {
            self.stats.signal(signal).pending = self.pending_items(signal) as u64;
        }
        out.outstanding =
            (self.spans.len() + self.logs.len() + self.pending.iter().map(|p| p.items).sum::<usize>()) as u64;
        out
    }

    /// Sends one request down every route of its signal: stdout at once, HTTP as pending.
    fn route(&mut self, request: Request, now: u64, out: &mut PollResult) {
        let signal = request.signal();
        let items = request.items();
        for route in 0..self.config.routes(signal).len() {
            let text = match (&self.config.routes(signal)[route], &request) {
                (Route::Otlp(otlp), _) => {
                    let bodies = sized_bodies(otlp, &request);
                    if bodies.len() > 1 {
                        let (url, cap) = (otlp.url.clone(), otlp.max_request_bytes);
                        self.warnings.once("split_to_fit", || {
                            format!("Requests to {url} are capped at {cap} bytes; larger batches are sent in parts.")
                        });
                    }
                    for (part_items, raw) in bodies {
                        let body = base64::engine::general_purpose::STANDARD.encode(raw);
                        self.add_pending(signal, route, part_items, 0, body, now);
                    }
                    continue;
                }
                (Route::Azure(azure), _) => {
                    if let Some(b) = crate::azure::encode(azure, &request, self.span_sample_rate()) {
                        let body = base64::engine::general_purpose::STANDARD.encode(b.text);
                        self.add_pending(signal, route, b.items, b.envelopes, body, now);
                    }
                    continue;
                }
                (Route::Console, Request::Traces(r)) => crate::console::render_traces(&r.resource_spans),
                (Route::Console, Request::Metrics(r)) => crate::console::render_metrics(&r.resource_metrics),
                (Route::Console, Request::Logs(r)) => crate::console::render_logs(&r.resource_logs),
                (Route::JsonLines, Request::Logs(r)) => {
                    crate::jsonl::log_lines_with(&r.resource_logs, self.config.azure_correlation)
                }
                (Route::JsonLines, _) => continue,
            };
            let id = self.next_id();
            out.exports.push(Export { id, signal, destination: Destination::Stdout, body: text, items: items as u32 });
            self.stats.signal(signal).exported += items as u64;
        }
    }

    /// The percentage of traces the sampler keeps, as Application Insights'
    /// `sampleRate` (azure-monitor.md §4(b)) of spans that do not carry their
    /// own, so the portal scales counts back up: a trace kept at 25% stands
    /// for four. Only a sampler that decides every span by its trace id
    /// (traceidratio) says so of every span; under a parent-based one a span
    /// may follow a decision made elsewhere at another rate, so 100 (no
    /// scaling) is said, as the official exporter does without `_MS.sampleRate`.
    fn span_sample_rate(&self) -> f64 {
        let plan = self.config.sampler;
        let ratio = plan.root_bound as f64 / (1u64 << 63) as f64;
        if plan.parent_based || ratio <= 0.0 {
            return 100.0;
        }
        (ratio.min(1.0) * 100.0 * 1e6).round() / 1e6
    }

    fn add_pending(&mut self, signal: Signal, route: usize, items: usize, envelopes: usize, body: String, now: u64) {
        if signal == Signal::Metrics {
            // Metrics have no queue of their own: a dead receiver must not make
            // collections pile up, so the oldest waiting ones make room.
            while self.pending_items(Signal::Metrics) + items > MAX_PENDING_POINTS {
                let Some(i) = self.pending.iter().position(|p| p.signal == Signal::Metrics && !p.in_flight) else {
                    break;
                };
                let old = self.pending.remove(i);
                self.stats.metrics.drop(DropReason::QueueFull, old.items as u64);
                self.warnings.once("metric_queue_full", || {
                    "Metric exports were piling up undelivered; the oldest were dropped to bound memory.".into()
                });
            }
        }
        let id = self.next_id();
        self.pending.push(Pending {
            id,
            signal,
            route,
            items,
            envelopes,
            body,
            attempts: 0,
            first_attempt: now,
            redirects: 0,
            url: None,
            due: now,
            in_flight: false,
        });
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn otlp_route<'c>(config: &'c Config, p: &Pending) -> &'c crate::config::OtlpRoute {
        match &config.routes(p.signal)[p.route] {
            Route::Otlp(o) => o,
            _ => unreachable!("only OTLP exports are split as protobuf or OTLP/JSON"),
        }
    }

    /// Where a pending export goes, for messages.
    fn url_of(config: &Config, p: &Pending) -> String {
        match &config.routes(p.signal)[p.route] {
            Route::Otlp(o) => p.url.clone().unwrap_or_else(|| o.url.clone()),
            Route::Azure(a) => a.url.clone(),
            Route::Console | Route::JsonLines => String::new(),
        }
    }

    fn export_of(config: &Config, p: &Pending) -> Export {
        if let Route::Azure(a) = &config.routes(p.signal)[p.route] {
            // azure-monitor.md §4(b) "Request": a JSON array, uncompressed.
            let mut headers = vec![
                ("Content-Type".to_owned(), Secret::public("application/json".to_owned())),
                ("Accept".to_owned(), Secret::public("application/json".to_owned())),
            ];
            headers.extend(a.headers.iter().cloned());
            return Export {
                id: p.id,
                signal: p.signal,
                destination: Destination::Http { url: a.url.clone(), headers, timeout_ms: a.timeout_ms },
                body: p.body.clone(),
                items: p.items as u32,
            };
        }
        let o = Self::otlp_route(config, p);
        if o.transport == Transport::Grpc {
            return Export {
                id: p.id,
                signal: p.signal,
                destination: Destination::Grpc {
                    target: o.url.clone(),
                    path: grpc_path(p.signal).to_owned(),
                    metadata: o.headers.clone(),
                    compressed: o.gzip,
                    timeout_ms: o.timeout_ms,
                },
                body: p.body.clone(),
                items: p.items as u32,
            };
        }
        let mut headers = vec![("Content-Type".to_owned(), Secret::new(content_type(o.encoding).to_owned()))];
        if o.gzip {
            headers.push(("Content-Encoding".to_owned(), Secret::new("gzip".to_owned())));
        }
        headers.extend(o.headers.iter().cloned());
        Export {
            id: p.id,
            signal: p.signal,
            destination: Destination::Http {
                url: p.url.clone().unwrap_or_else(|| o.url.clone()),
                headers,
                timeout_ms: o.timeout_ms,
            },
            body: p.body.clone(),
            items: p.items as u32,
        }
    }

    /// Settles an HTTP answer with its headers (the contract's
    /// http-response): a Live Metrics request reads its x-ms-qps-* headers;
    /// an export, its status, Retry-After, Location and body (`report`).
    pub fn report_http(
        &mut self,
        id: u64,
        status: u16,
        retry_after: Option<String>,
        headers: &[(String, String)],
        body: Vec<u8>,
        now: u64,
    ) {
        if live::is_live_id(id) {
            self.report_live(id, &Answer::Http { status, headers }, now);
        } else {
            self.report(id, &crate::delivery::http_outcome(status, retry_after, headers, body), now);
        }
    }

    /// Moves Live Metrics on after its request `id` ended: never retried,
    /// never counted; a failure is said once, naming only the endpoint's
    /// host (its URL carries the instrumentation key).
    fn report_live(&mut self, id: u64, answer: &Answer, now: u64) {
        // After `abandon` there is no session; a late answer is moot.
        let Some(session) = &mut self.live else { return };
        let before = session.endpoint().to_owned();
        match session.answered(id, answer, now) {
            None => self.warnings.once("unknown_export", || {
                format!("An outcome was reported for export {id}, which is not in flight; it was ignored.")
            }),
            Some(Settled::Ok) => {}
            Some(Settled::Failed { host, status }) => self.warnings.once("live_failed", || {
                let what = if status == 0 { "no answer".to_owned() } else { format!("HTTP {status}") };
                format!("Live Metrics at {host} failed ({what}); polytel keeps trying at Live Metrics' own pace, apart from exports.")
            }),
        }
        let after = session.endpoint().to_owned();
        if after != before {
            self.warnings.once("live_redirected", || {
                format!(
                    "Application Insights moved this resource's Live Metrics from {} to {}; polytel sends there from now on.",
                    live::host_of(&before),
                    live::host_of(&after)
                )
            });
        }
    }

    pub fn report(&mut self, id: u64, outcome: &Outcome, now: u64) {
        if live::is_live_id(id) {
            // Without headers: a host that reports a bare outcome.
            let answer = match outcome {
                Outcome::Response { status, .. } | Outcome::Redirect { status, .. } => {
                    Answer::Http { status: *status, headers: &[] }
                }
                Outcome::Grpc { .. } | Outcome::Failed(_) => Answer::Failed,
            };
            self.report_live(id, &answer, now);
            return;
        }
        let Some(i) = self.pending.iter().position(|p| p.id == id && p.in_flight) else {
            // After `abandon`, a request that was still running ends moot.
            if self.abandoned {
                return;
            }
            self.warnings.once("unknown_export", || {
                format!("An outcome was reported for export {id}, which is not in flight; it was ignored.")
            });
            return;
        };
        let signal = self.pending[i].signal;
        let url = Self::url_of(&self.config, &self.pending[i]);
        let jitter = self.jitter();
        let p = &self.pending[i];
        let verdict = match &self.config.routes(signal)[p.route] {
            Route::Azure(_) => match crate::azure::delivery::judge(outcome, &url, p.envelopes, p.attempts, now, jitter)
            {
                Judgement::Whole(verdict) => verdict,
                other => {
                    self.settle_azure(i, other, outcome, now);
                    self.stats.signal(signal).pending = self.pending_items(signal) as u64;
                    return;
                }
            },
            Route::Otlp(o) => match outcome {
                Outcome::Redirect { status: status @ (307 | 308), location } if o.transport == Transport::Http => {
                    let (status, location) = (*status, location.clone());
                    self.follow_otlp_redirect(i, status, &location, now);
                    self.stats.signal(signal).pending = self.pending_items(signal) as u64;
                    return;
                }
                _ => judge(outcome, o.encoding, p.attempts, now, jitter),
            },
            _ => judge(outcome, Self::otlp_route(&self.config, p).encoding, p.attempts, now, jitter),
        };
        let verdict = match verdict {
            Verdict::Retry { at } if at.saturating_sub(self.pending[i].first_attempt) > RETRY_BUDGET_NS => {
                Verdict::Drop(DropReason::RetriesExhausted)
            }
            v => v,
        };
        let items = self.pending[i].items as u64;
        let what = signal.items();
        match verdict {
            Verdict::Done { rejected, message } => {
                self.pending.remove(i);
                self.stats.exports.succeeded += 1;
                let rejected = rejected.min(items);
                let stats = self.stats.signal(signal);
                stats.exported += items - rejected;
                if rejected > 0 {
                    stats.drop(DropReason::PartialSuccess, rejected);
                    self.warnings
                        .once("partial_success", || format!("{url} rejected {rejected} of {items} {what}: {message}"));
                }
            }
            Verdict::Retry { at } => {
                let p = &mut self.pending[i];
                p.in_flight = false;
                p.due = at;
                self.stats.signal(signal).retried += items;
                self.stats.exports.failed += 1;
                self.warnings.once("retrying", || {
                    format!("Export to {url} failed ({}); retrying with backoff.", describe_outcome(outcome))
                });
            }
            Verdict::Split if self.pending[i].envelopes > 1 => {
                let p = self.pending.remove(i);
                self.stats.exports.failed += 1;
                let halves = base64::engine::general_purpose::STANDARD
                    .decode(p.body.as_bytes())
                    .ok()
                    .and_then(|raw| String::from_utf8(raw).ok())
                    .and_then(|text| crate::azure::halves(signal, &text));
                match halves {
                    Some((first, second)) => {
                        for half in [first, second] {
                            let body = base64::engine::general_purpose::STANDARD.encode(half.text);
                            self.add_pending(signal, p.route, half.items, half.envelopes, body, now);
                        }
                        self.warnings.once("split", || {
                            format!("{url} answered 413 (too large); sending the batch in smaller parts.")
                        });
                    }
                    None => self.stats.signal(signal).drop(DropReason::TooLarge, items),
                }
            }
            Verdict::Split if items > 1 && self.pending[i].envelopes == 0 => {
                let p = self.pending.remove(i);
                self.stats.exports.failed += 1;
                let route = Self::otlp_route(&self.config, &p).clone();
                let route = &route;
                let halves = base64::engine::general_purpose::STANDARD
                    .decode(p.body.as_bytes())
                    .ok()
                    .and_then(|raw| request_of_body(signal, route, &raw))
                    .and_then(Request::split);
                match halves {
                    Some((first, second)) => {
                        for half in [first, second] {
                            let body = base64::engine::general_purpose::STANDARD.encode(body(route, &half));
                            self.add_pending(signal, p.route, half.items(), 0, body, now);
                        }
                        self.warnings.once("split", || {
                            format!("{url} answered 413 (too large); sending the batch in smaller parts.")
                        });
                    }
                    None => self.stats.signal(signal).drop(DropReason::TooLarge, items),
                }
            }
            Verdict::Split | Verdict::Drop(_) => {
                let reason = match verdict {
                    Verdict::Drop(r) => r,
                    _ => DropReason::TooLarge,
                };
                self.pending.remove(i);
                self.stats.exports.failed += 1;
                self.stats.signal(signal).drop(reason, items);
                self.warnings.once(drop_warning_kind(reason), || {
                    format!(
                        "Export to {url} failed ({}); {items} {what} were dropped ({reason:?}).",
                        describe_outcome(outcome)
                    )
                });
            }
        }
        self.stats.signal(signal).pending = self.pending_items(signal) as u64;
    }

    /// Settles an Azure Monitor export whose answer was more than a verdict
    /// on the whole (azure-monitor.md §4(c)): a partial success, whose
    /// retryable envelopes go again under the same export id and whose others
    /// are counted; or a redirect, followed within Application Insights'
    /// domains only.
    fn settle_azure(&mut self, i: usize, judgement: Judgement, outcome: &Outcome, now: u64) {
        let signal = self.pending[i].signal;
        let url = Self::url_of(&self.config, &self.pending[i]);
        let what = signal.items();
        match judgement {
            Judgement::Whole(_) => unreachable!("whole verdicts are settled by report"),
            Judgement::Partial(partial) => {
                let p = self.pending.remove(i);
                self.stats.exports.succeeded += 1;
                let text = base64::engine::general_purpose::STANDARD
                    .decode(p.body.as_bytes())
                    .ok()
                    .and_then(|raw| String::from_utf8(raw).ok())
                    .unwrap_or_default();
                let count = |indexes: &[usize]| crate::azure::items_at(signal, &text, indexes) as u64;
                let (retry, rejected, sampled) =
                    (count(&partial.retry), count(&partial.rejected), count(&partial.sampled_out));
                let total = p.items as u64;
                let stats = self.stats.signal(signal);
                stats.exported += total.saturating_sub(retry + rejected + sampled);
                stats.drop(DropReason::PartialSuccess, rejected);
                stats.drop(DropReason::SampledOut, sampled);
                if rejected > 0 {
                    let message = partial.message.clone();
                    self.warnings
                        .once("partial_success", || format!("{url} rejected {rejected} of {total} {what}: {message}"));
                }
                match partial.then {
                    Some(Verdict::Retry { at }) => {
                        if let Some(b) = crate::azure::subset(signal, &text, &partial.retry) {
                            self.stats.signal(signal).retried += retry;
                            self.pending.push(Pending {
                                id: p.id,
                                signal,
                                route: p.route,
                                items: b.items,
                                envelopes: b.envelopes,
                                body: base64::engine::general_purpose::STANDARD.encode(b.text),
                                attempts: p.attempts,
                                first_attempt: p.first_attempt,
                                redirects: 0,
                                url: None,
                                due: at,
                                in_flight: false,
                            });
                            self.warnings.once("retrying_partial", || {
                                format!("{url} accepted only part of an export; the {what} it may take later are sent again with backoff.")
                            });
                        }
                    }
                    Some(Verdict::Drop(reason)) => {
                        self.stats.signal(signal).drop(reason, retry);
                        self.warnings.once(drop_warning_kind(reason), || {
                            format!("{url} kept refusing part of an export; {retry} {what} were dropped ({reason:?}).")
                        });
                    }
                    _ => {}
                }
            }
            Judgement::Redirect { url: to } => {
                let p = &mut self.pending[i];
                p.redirects += 1;
                if p.redirects > crate::azure::delivery::MAX_REDIRECTS {
                    let p = self.pending.remove(i);
                    self.stats.exports.failed += 1;
                    self.stats.signal(signal).drop(DropReason::Rejected, p.items as u64);
                    self.warnings
                        .once("redirect_loop", || format!("{url} kept redirecting; {} {what} were dropped.", p.items));
                    return;
                }
                // A redirect is not a failed attempt: the body goes at once to the new host.
                p.attempts = p.attempts.saturating_sub(1);
                p.in_flight = false;
                p.due = now;
                // §4(c): the new host is kept for later sends, by every signal sent to the old one.
                for signal in Signal::ALL {
                    for r in 0..self.config.routes(signal).len() {
                        if let Some(Route::Azure(a)) = self.config.route_mut(signal, r) {
                            if a.url == url {
                                a.url = to.clone();
                            }
                        }
                    }
                }
                self.warnings.once("redirected", || {
                    format!("Application Insights moved this resource's ingestion from {url} to {to}; polytel sends there from now on.")
                });
            }
            Judgement::RedirectRefused { location } => {
                let p = self.pending.remove(i);
                self.stats.exports.failed += 1;
                self.stats.signal(signal).drop(DropReason::Rejected, p.items as u64);
                let items = p.items;
                self.warnings.once("redirect_refused", || match location {
                    Some(to) => format!(
                        "{url} redirected to {}, outside Application Insights' domains, which polytel does not follow; {items} {what} were dropped.",
                        crate::credentials::redact_url(&to)
                    ),
                    None => format!(
                        "{url} answered with a redirect ({}) that this host does not follow; {items} {what} were dropped; set IngestionEndpoint in the connection string to the resource's regional endpoint, as the portal shows it.",
                        describe_outcome(outcome)
                    ),
                });
            }
        }
    }

    /// Settles an OTLP/HTTP export answered with a 307 or 308
    /// (`delivery::same_origin_redirect`): sent again at once to the
    /// Location when it is on the same scheme, host and port, a 308 moving
    /// the route's later sends there too; dropped with a warning naming the
    /// other host otherwise, so the backend's credentials never leave it.
    fn follow_otlp_redirect(&mut self, i: usize, status: u16, location: &str, now: u64) {
        let signal = self.pending[i].signal;
        let url = Self::url_of(&self.config, &self.pending[i]);
        let what = signal.items();
        let Some(to) = crate::delivery::same_origin_redirect(&url, location) else {
            let p = self.pending.remove(i);
            self.stats.exports.failed += 1;
            self.stats.signal(signal).drop(DropReason::Rejected, p.items as u64);
            let (items, host) = (p.items, crate::delivery::location_host(location));
            self.warnings.once("redirect_refused", || {
                format!(
                    "{url} redirected ({status}) to {host}, another origin, which polytel does not follow so that the backend's credentials stay with it; {items} {what} were dropped; point the endpoint at where the backend now lives."
                )
            });
            return;
        };
        let p = &mut self.pending[i];
        p.redirects += 1;
        if p.redirects > crate::delivery::MAX_REDIRECTS {
            let p = self.pending.remove(i);
            self.stats.exports.failed += 1;
            self.stats.signal(signal).drop(DropReason::Rejected, p.items as u64);
            self.warnings.once("redirect_loop", || format!("{url} kept redirecting; {} {what} were dropped.", p.items));
            return;
        }
        // A redirect is not a failed attempt: the body goes at once to the new URL.
        p.attempts = p.attempts.saturating_sub(1);
        p.in_flight = false;
        p.due = now;
        p.url = Some(to.clone());
        let route = p.route;
        if status == 308 {
            if let Some(Route::Otlp(o)) = self.config.route_mut(signal, route) {
                o.url = to.clone();
            }
        }
        self.warnings.once("redirected", || match status {
            308 => format!("{url} moved permanently to {to}; polytel sends there from now on."),
            _ => format!("{url} redirected temporarily to {to}; polytel sent the export there."),
        });
    }

    /// Drops everything queued or pending; returns how many items that was.
    pub fn abandon(&mut self) -> u64 {
        // Shutting down: Live Metrics stops with the exports.
        self.live = None;
        self.abandoned = true;
        let spans = self.spans.clear() as u64;
        self.queued_ids.clear();
        let logs = self.logs.clear() as u64;
        let mut total = spans + logs;
        self.stats.spans.drop(DropReason::Shutdown, spans);
        self.stats.logs.drop(DropReason::Shutdown, logs);
        for p in std::mem::take(&mut self.pending) {
            self.stats.signal(p.signal).drop(DropReason::Shutdown, p.items as u64);
            total += p.items as u64;
        }
        for signal in Signal::ALL {
            let s = self.stats.signal(signal);
            s.queued = 0;
            s.pending = 0;
        }
        total
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn stats_json(&self) -> String {
        let mut stats = serde_json::to_value(&self.stats).expect("stats serialise");
        stats["operations"] = self.genai.summary_json();
        stats.to_string()
    }

    pub fn extract(&self, headers_json: &str) -> String {
        let headers: Vec<(String, String)> =
            match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(headers_json) {
                Ok(m) => m.into_iter().filter_map(|(k, v)| Some((k, v.as_str()?.to_owned()))).collect(),
                Err(_) => Vec::new(),
            };
        serde_json::to_string(&propagation::extract(self.config.propagators, &headers)).expect("context serialises")
    }

    pub fn inject(&self, context_json: &str) -> String {
        let ctx: Context = serde_json::from_str(context_json).unwrap_or_default();
        let headers = propagation::inject(self.config.propagators, &ctx);
        serde_json::to_string(&crate::json::string_pairs(&headers)).expect("headers serialise")
    }
}

/// The records of a JSON array; a batch that is not an array is dropped
/// whole and counted once.
pub(crate) fn records<'a>(
    stats: &mut SignalStats,
    warnings: &mut Warnings,
    what: &str,
    batch: &'a str,
) -> Vec<&'a RawValue> {
    serde_json::from_str(batch).unwrap_or_else(|e| {
        stats.drop(DropReason::Invalid, 1);
        warnings.once("bad_batch", || format!("A {what} batch was not a JSON array and was dropped: {e}."));
        Vec::new()
    })
}

fn drop_warning_kind(reason: DropReason) -> &'static str {
    match reason {
        DropReason::Rejected => "drop_rejected",
        DropReason::RetriesExhausted => "drop_retries",
        DropReason::TooLarge => "drop_too_large",
        _ => "drop_other",
    }
}

fn describe_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Response { status, .. } => format!("HTTP {status}"),
        Outcome::Grpc { code, message, .. } if message.is_empty() => format!("gRPC status {code}"),
        Outcome::Grpc { code, message, .. } => format!("gRPC status {code}: {message}"),
        Outcome::Failed(why) => why.clone(),
        Outcome::Redirect { status, location } => {
            format!("HTTP {status}, a redirect to {}", crate::delivery::location_host(location))
        }
    }
}
