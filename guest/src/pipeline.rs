//! One configured pipeline: spans in, exports out, outcomes back. This is the
//! whole behaviour behind the `pipeline` resource of `wit/polytel.wit`, as
//! plain Rust so it is tested natively.

use std::collections::{HashSet, VecDeque};

use base64::Engine as _;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::config::{Config, Route};
use crate::delivery::{judge, Outcome, Verdict};
use crate::encode::{body, content_type, spans_of_body, trace_request};
use crate::ids::splitmix64;
use crate::propagation::{self, Context};
use crate::secret::Secret;
use crate::spans::{parse_span, Scope};
use crate::stats::{DropReason, Stats, Warnings};

pub use crate::delivery::Outcome as ExportOutcome;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
}

/// Where an export goes, with everything the host needs to send it.
#[derive(Clone, Debug, PartialEq)]
pub enum Destination {
    Http { url: String, headers: Vec<(String, Secret)>, timeout_ms: u32 },
    Stdout,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    pub id: u64,
    pub signal: Signal,
    pub destination: Destination,
    /// base64 of the request body for `Http`; text for `Stdout`.
    pub body: String,
    pub items: u32,
}

#[derive(Debug, Default, PartialEq)]
pub struct PollResult {
    pub exports: Vec<Export>,
    pub warnings: Vec<String>,
    pub next_poll: u64,
}

/// An HTTP export built and not yet settled. Only its body is kept: a retry
/// resends it as it is, and a split decodes it.
struct Pending {
    id: u64,
    route: usize,
    items: usize,
    body: String,
    attempts: u32,
    due: u64,
    in_flight: bool,
}

pub struct Pipeline {
    config: Config,
    queue: VecDeque<(Scope, Span)>,
    queued_ids: HashSet<Vec<u8>>,
    pending: Vec<Pending>,
    /// When the schedule last fired; `None` until the first poll.
    last_export: Option<u64>,
    next_id: u64,
    rng: u64,
    stats: Stats,
    warnings: Warnings,
}

impl Pipeline {
    pub fn new(config: Config) -> Pipeline {
        let mut warnings = Warnings::default();
        config.warnings.iter().cloned().for_each(|w| warnings.push(w));
        Pipeline {
            rng: config.seed,
            config,
            queue: VecDeque::new(),
            queued_ids: HashSet::new(),
            pending: Vec::new(),
            last_export: None,
            next_id: 1,
            stats: Stats::default(),
            warnings,
        }
    }

    pub fn from_json(json: &str) -> Result<Pipeline, String> {
        Config::from_json(json).map(Pipeline::new)
    }

    pub fn config(&self) -> &Config {
        &self.config
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
        })
        .expect("plan serialises")
    }

    pub fn describe(&self) -> String {
        let routes: Vec<serde_json::Value> = self
            .config
            .traces
            .iter()
            .map(|r| match r {
                Route::Console => serde_json::json!({"exporter": "console"}),
                Route::Otlp(o) => serde_json::json!({
                    "exporter": "otlp",
                    "url": o.url,
                    "protocol": match o.encoding { crate::config::Encoding::Protobuf => "http/protobuf", crate::config::Encoding::Json => "http/json" },
                    "content_type": content_type(o.encoding),
                    "compression": if o.gzip { "gzip" } else { "none" },
                    "timeout_ms": o.timeout_ms,
                    "headers": o.headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.masked()))).collect::<serde_json::Map<_, _>>(),
                }),
            })
            .collect();
        let resource: serde_json::Map<String, serde_json::Value> = self
            .config
            .resource
            .iter()
            .map(|kv| (kv.key.clone(), serde_json::Value::String(crate::console::value_text(kv.value.as_ref()))))
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({
            "disabled": self.config.disabled,
            "resource": resource,
            "traces": routes,
            "warnings": self.config.warnings,
        }))
        .expect("description serialises")
    }

    /// Takes a JSON array of span records; see `record-spans` in the WIT.
    pub fn record_spans(&mut self, batch: &str) {
        if self.config.disabled {
            return;
        }
        let records: Vec<&RawValue> = match serde_json::from_str(batch) {
            Ok(r) => r,
            Err(e) => {
                self.stats.spans.drop(DropReason::Invalid, 1);
                self.warnings.once("bad_batch", || format!("A span batch was not a JSON array and was dropped: {e}."));
                return;
            }
        };
        for raw in records {
            self.stats.spans.received += 1;
            let parsed = match parse_span(raw.get(), &self.config.span_limits) {
                Ok(p) => p,
                Err(e) => {
                    self.stats.spans.drop(DropReason::Invalid, 1);
                    self.warnings.once("bad_span", || format!("A span record was malformed and was dropped ({e})."));
                    continue;
                }
            };
            let l = &mut self.stats.spans.limited;
            l.attributes_dropped += parsed.limited.attributes_dropped;
            l.values_truncated += parsed.limited.values_truncated;
            l.events_dropped += parsed.limited.events_dropped;
            l.links_dropped += parsed.limited.links_dropped;
            if parsed.limited.attributes_dropped + parsed.limited.events_dropped + parsed.limited.links_dropped > 0 {
                self.warnings.once("limits", || {
                    "Some spans had more attributes, events or links than the configured limits allow; the extra ones were dropped and counted.".into()
                });
            }
            for (kind, note) in parsed.notes {
                self.warnings.once(kind, || note);
            }
            if self.config.traces.is_empty() {
                continue;
            }
            if self.queued_ids.contains(&parsed.span.span_id) {
                self.stats.spans.drop(DropReason::Duplicate, 1);
                self.warnings
                    .once("duplicate", || "A span arrived twice (ended twice?); the second copy was dropped.".into());
                continue;
            }
            if self.queue.len() >= self.config.batch.max_queue {
                self.stats.spans.drop(DropReason::QueueFull, 1);
                self.warnings.once("queue_full", || {
                    format!(
                        "The span queue is full ({} spans); new spans are dropped until exports catch up.",
                        self.config.batch.max_queue
                    )
                });
                continue;
            }
            self.queued_ids.insert(parsed.span.span_id.clone());
            self.queue.push_back((parsed.scope, parsed.span));
        }
    }

    fn pending_items(&self) -> usize {
        self.pending.iter().map(|p| p.items).sum()
    }

    fn jitter(&mut self) -> f64 {
        (splitmix64(&mut self.rng) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn poll(&mut self, now: u64, flush: bool) -> PollResult {
        let mut out = PollResult::default();
        let delay = self.config.batch.schedule_delay_ms.saturating_mul(1_000_000);
        let last = *self.last_export.get_or_insert(now);
        let timer_fired = now >= last.saturating_add(delay);
        // At least one span per batch, so the loop below always progresses.
        let max_batch = self.config.batch.max_batch.max(1);
        let mut built = false;
        while !self.queue.is_empty() && (flush || timer_fired || self.queue.len() >= max_batch) {
            let n = self.queue.len().min(max_batch);
            let room = self.config.batch.max_queue.saturating_sub(self.pending_items());
            if !flush && n > room {
                break;
            }
            let spans: Vec<(Scope, Span)> = self.queue.drain(..n).collect();
            for (_, s) in &spans {
                self.queued_ids.remove(&s.span_id);
            }
            self.route_batch(spans, now, &mut out);
            built = true;
        }
        if built || timer_fired {
            self.last_export = Some(now);
        }
        for p in self.pending.iter_mut().filter(|p| !p.in_flight && (flush || p.due <= now)) {
            p.in_flight = true;
            p.attempts += 1;
            out.exports.push(Self::export_of(&self.config, p));
        }
        self.stats.exports.sent += out.exports.iter().filter(|e| e.destination != Destination::Stdout).count() as u64;
        let next_schedule = self.last_export.unwrap_or(now).saturating_add(delay);
        out.next_poll = self.pending.iter().filter(|p| !p.in_flight).map(|p| p.due).fold(next_schedule, u64::min);
        out.warnings = self.warnings.take();
        self.stats.spans.queued = self.queue.len() as u64;
        self.stats.spans.pending = self.pending_items() as u64;
        out
    }

    /// Sends one batch down every route: console output at once, HTTP as pending.
    fn route_batch(&mut self, spans: Vec<(Scope, Span)>, now: u64, out: &mut PollResult) {
        let last = self.config.traces.len().saturating_sub(1);
        // Only a second destination pays for a copy of the batch.
        for route in 0..last {
            self.send_down(route, spans.clone(), now, out);
        }
        self.send_down(last, spans, now, out);
    }

    fn send_down(&mut self, route: usize, batch: Vec<(Scope, Span)>, now: u64, out: &mut PollResult) {
        match self.config.traces.get(route) {
            Some(Route::Console) => {
                let items = batch.len() as u32;
                let req = trace_request(&self.config.resource, batch);
                let id = self.next_id();
                out.exports.push(Export {
                    id,
                    signal: Signal::Traces,
                    destination: Destination::Stdout,
                    body: crate::console::render_traces(&req.resource_spans),
                    items,
                });
                self.stats.spans.exported += u64::from(items);
            }
            Some(Route::Otlp(_)) => self.add_pending(route, batch, now),
            None => {}
        }
    }

    fn add_pending(&mut self, route: usize, spans: Vec<(Scope, Span)>, now: u64) {
        let Route::Otlp(otlp) = &self.config.traces[route] else { return };
        let items = spans.len();
        let req = trace_request(&self.config.resource, spans);
        let body = base64::engine::general_purpose::STANDARD.encode(body(otlp, &req));
        let id = self.next_id();
        self.pending.push(Pending { id, route, items, body, attempts: 0, due: now, in_flight: false });
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The spans of a pending export, read back from its body.
    fn spans_of(&self, p: &Pending) -> Option<Vec<(Scope, Span)>> {
        let Route::Otlp(route) = &self.config.traces[p.route] else { return None };
        let raw = base64::engine::general_purpose::STANDARD.decode(p.body.as_bytes()).ok()?;
        spans_of_body(route, &raw)
    }

    fn export_of(config: &Config, p: &Pending) -> Export {
        let Route::Otlp(o) = &config.traces[p.route] else { unreachable!("pending exports are OTLP") };
        let mut headers = vec![("Content-Type".to_owned(), Secret::new(content_type(o.encoding).to_owned()))];
        if o.gzip {
            headers.push(("Content-Encoding".to_owned(), Secret::new("gzip".to_owned())));
        }
        headers.extend(o.headers.iter().cloned());
        Export {
            id: p.id,
            signal: Signal::Traces,
            destination: Destination::Http { url: o.url.clone(), headers, timeout_ms: o.timeout_ms },
            body: p.body.clone(),
            items: p.items as u32,
        }
    }

    pub fn report(&mut self, id: u64, outcome: &Outcome, now: u64) {
        let Some(i) = self.pending.iter().position(|p| p.id == id && p.in_flight) else {
            self.warnings.once("unknown_export", || {
                format!("An outcome was reported for export {id}, which is not in flight; it was ignored.")
            });
            return;
        };
        let Route::Otlp(route) = &self.config.traces[self.pending[i].route] else {
            unreachable!("pending exports are OTLP")
        };
        let (encoding, url) = (route.encoding, route.url.clone());
        let jitter = self.jitter();
        let verdict = judge(outcome, encoding, self.pending[i].attempts, now, jitter);
        let items = self.pending[i].items as u64;
        match verdict {
            Verdict::Done { rejected, message } => {
                self.pending.remove(i);
                self.stats.exports.succeeded += 1;
                let rejected = rejected.min(items);
                self.stats.spans.exported += items - rejected;
                if rejected > 0 {
                    self.stats.spans.drop(DropReason::PartialSuccess, rejected);
                    self.warnings
                        .once("partial_success", || format!("{url} rejected {rejected} of {items} spans: {message}"));
                }
            }
            Verdict::Retry { at } => {
                let p = &mut self.pending[i];
                p.in_flight = false;
                p.due = at;
                self.stats.spans.retried += items;
                self.stats.exports.failed += 1;
                self.warnings.once("retrying", || {
                    format!("Export to {url} failed ({}); retrying with backoff.", describe_outcome(outcome))
                });
            }
            Verdict::Split if items > 1 => {
                let p = self.pending.remove(i);
                self.stats.exports.failed += 1;
                match self.spans_of(&p) {
                    Some(mut first) => {
                        let second = first.split_off(first.len() / 2);
                        self.add_pending(p.route, first, now);
                        self.add_pending(p.route, second, now);
                        self.warnings.once("split", || {
                            format!("{url} answered 413 (too large); sending the batch in smaller parts.")
                        });
                    }
                    None => self.stats.spans.drop(DropReason::TooLarge, items),
                }
            }
            Verdict::Split | Verdict::Drop(_) => {
                let reason = match verdict {
                    Verdict::Drop(r) => r,
                    _ => DropReason::TooLarge,
                };
                self.pending.remove(i);
                self.stats.exports.failed += 1;
                self.stats.spans.drop(reason, items);
                self.warnings.once(drop_warning_kind(reason), || {
                    format!(
                        "Export to {url} failed ({}); {items} spans were dropped ({reason:?}).",
                        describe_outcome(outcome)
                    )
                });
            }
        }
        self.stats.spans.pending = self.pending_items() as u64;
    }

    /// Drops everything queued or pending; returns how many spans that was.
    pub fn abandon(&mut self) -> u64 {
        let n = (self.queue.len() + self.pending_items()) as u64;
        self.queue.clear();
        self.queued_ids.clear();
        self.pending.clear();
        self.stats.spans.drop(DropReason::Shutdown, n);
        self.stats.spans.queued = 0;
        self.stats.spans.pending = 0;
        n
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn stats_json(&self) -> String {
        serde_json::to_string(&self.stats).expect("stats serialise")
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
        Outcome::Failed(why) => why.clone(),
    }
}
