//! Everything a receiver can send back, through the core's response
//! handling: pipelines to every exporting route (OTLP http/protobuf and
//! http/json with or without gzip, OTLP gRPC, Azure Monitor with or without
//! Live Metrics) record spans and logs, poll at advancing and non-monotonic
//! times, and every export is answered with a generated outcome: any status,
//! Retry-After (garbage, seconds, HTTP-dates near, far and past), header
//! lists (Location, x-ms-qps-*), bodies (OTLP partial successes, Track API
//! responses, truncated and garbage bytes), gRPC codes with details (garbage
//! or a google.rpc.Status with a RetryInfo), transport failures and
//! redirects. Then flush, abandon, late answers.
//!
//! The whole input drives generators (`polytel_fuzz::route_config`,
//! `http_answer`, `grpc_answer`, ...).
//!
//! Checks, besides "never panics":
//! - per signal, received (+ non-array batches) == exported + dropped + queued + pending;
//! - no export is handed out while it is in flight (handed out, not answered);
//! - an export retried after a Retry-After (or a RetryInfo) the oracle can
//!   read is not handed out before the time it asked for;
//! - poll's `outstanding` == queued + pending over all signals;
//! - trace export bodies decode as their headers say and carry `items` spans
//!   (OTLP), Azure bodies are JSON arrays of at least `items` envelopes;
//! - after answering everything 200 (or gRPC OK) and a flush, nothing is left.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Result, Unstructured};
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use polytel_core::azure::live::is_live_id;
use polytel_core::delivery::Outcome;
use polytel_core::pipeline::{Destination, Export, Signal};
use polytel_core::Pipeline;
use polytel_fuzz::{
    check_export, check_signal_conservation, effective_retry_after, grpc_answer, http_answer, is_array, outcome,
    retry_after_floor, route_config, RecordGen, RouteKind, B64,
};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_767_268_800 * S;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((json, kind)) = route_config(&mut u) else { return };
    trace(|| format!("config {json}"));
    let p = Pipeline::from_json(&json).unwrap_or_else(|e| panic!("fixed configuration rejected: {e}\n{json}"));
    let mut h = Harness {
        p,
        kind,
        now: T0,
        latest: T0,
        in_flight: BTreeMap::new(),
        not_before: BTreeMap::new(),
        bad_spans: 0,
        bad_logs: 0,
        gen: RecordGen::default(),
    };
    let _ = h.operations(&mut u);
    h.finish();
});

/// With POLYTEL_FUZZ_TRACE=1, every call into the core is printed.
fn trace(line: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("POLYTEL_FUZZ_TRACE").is_some_and(|v| v == "1")) {
        eprintln!("responses: {}", line());
    }
}

/// What the harness knows of an export it was handed.
#[derive(Clone, Debug)]
struct Sent {
    items: u64,
    envelopes: usize,
    grpc: bool,
}

struct Harness {
    p: Pipeline,
    kind: RouteKind,
    now: u64,
    /// The latest time any call was made at.
    latest: u64,
    /// Exports (and Live Metrics requests) handed out and not yet answered.
    in_flight: BTreeMap<u64, Sent>,
    /// Export id -> the earliest time (unix ns) a Retry-After or RetryInfo
    /// allows it to be handed out again.
    not_before: BTreeMap<u64, u64>,
    bad_spans: u64,
    bad_logs: u64,
    gen: RecordGen,
}

impl Harness {
    fn set_now(&mut self, now: u64) {
        self.now = now;
        self.latest = self.latest.max(now);
    }

    fn conservation(&self) {
        check_signal_conservation(&self.p, Signal::Traces, self.bad_spans);
        check_signal_conservation(&self.p, Signal::Logs, self.bad_logs);
    }

    fn check_export(&self, e: &Export) {
        if is_live_id(e.id) {
            assert!(matches!(self.p.config().routes(Signal::Traces).first(), Some(polytel_core::config::Route::Azure(_))));
            return;
        }
        match self.kind {
            RouteKind::Azure => {
                // `items` counts the signal's items only: a part of a body
                // (413 halves, the retryable envelopes of a 206) may hold
                // only a span's event envelopes, and count 0.
                let raw = B64.decode(&e.body).expect("Azure body is base64");
                let v: Vec<serde_json::Value> = serde_json::from_slice(&raw).expect("Azure body is a JSON array");
                assert!(!v.is_empty() && v.len() >= e.items as usize, "{} envelopes for {} items", v.len(), e.items);
            }
            _ if e.items == 0 => panic!("an export with no items: {e:?}"),
            _ if e.signal == Signal::Traces => check_export(e),
            _ => {}
        }
    }

    fn poll(&mut self, flush: bool) {
        let r = self.p.poll(self.now, flush);
        trace(|| {
            let ids: Vec<(u64, u32)> = r.exports.iter().map(|e| (e.id, e.items)).collect();
            format!("poll(now={}, flush={flush}) -> exports {ids:?} outstanding {}", self.now, r.outstanding)
        });
        let mut ids = BTreeSet::new();
        for e in &r.exports {
            assert!(ids.insert(e.id), "two exports with one id {} in a poll", e.id);
            self.check_export(e);
            if e.destination == Destination::Stdout {
                continue;
            }
            assert!(!self.in_flight.contains_key(&e.id), "export {} handed out while in flight", e.id);
            if let Some(&at) = self.not_before.get(&e.id) {
                assert!(
                    self.now >= at,
                    "export {} handed out at {} before the time its Retry-After asked for ({at}, {} s early)",
                    e.id,
                    self.now,
                    (at - self.now) / S
                );
            }
            let envelopes = match self.kind {
                RouteKind::Azure if !is_live_id(e.id) => B64
                    .decode(&e.body)
                    .ok()
                    .and_then(|raw| serde_json::from_slice::<Vec<serde_json::Value>>(&raw).ok())
                    .map_or(0, |v| v.len()),
                _ => 0,
            };
            let grpc = matches!(e.destination, Destination::Grpc { .. });
            self.in_flight.insert(e.id, Sent { items: u64::from(e.items), envelopes, grpc });
        }
        let s = self.p.stats();
        let held = s.spans.queued + s.logs.queued + s.metrics.queued + s.spans.pending + s.logs.pending + s.metrics.pending;
        assert_eq!(r.outstanding, held, "outstanding is not queued + pending: {}", self.p.stats_json());
        self.conservation();
    }

    /// Answers export `id` with a generated outcome.
    fn answer(&mut self, u: &mut Unstructured, id: u64) -> Result<()> {
        // An id not in flight (made up, answered already, or after abandon):
        // the core ignores the answer, so it says nothing about a later send.
        let known = self.in_flight.remove(&id);
        let in_flight = known.is_some();
        let sent = known.unwrap_or(Sent { items: 1, envelopes: 1, grpc: false });
        let floor = match u.int_in_range(0..=9)? {
            0 | 1 => {
                let o = outcome(u)?;
                trace(|| format!("report(id={id}, {o:?}, now={})", self.now));
                self.p.report(id, &o, self.now);
                match &o {
                    Outcome::Response { retry_after: Some(v), .. } => retry_after_floor(v, self.now),
                    _ => None,
                }
            }
            2..=4 if sent.grpc || self.kind == RouteKind::Grpc => {
                let (o, floor) = grpc_answer(u, sent.items, self.now)?;
                trace(|| format!("report(id={id}, {o:?}, now={}) floor {floor:?}", self.now));
                self.p.report(id, &o, self.now);
                floor
            }
            _ => {
                let a = http_answer(u, self.kind, sent.items, sent.envelopes, self.now)?;
                let floor = effective_retry_after(&a).and_then(|v| retry_after_floor(v, self.now));
                trace(|| {
                    format!(
                        "report_http(id={id}, {} retry_after={:?} headers={:?} body={:?}, now={}) floor {floor:?}",
                        a.status,
                        a.retry_after,
                        a.headers,
                        String::from_utf8_lossy(&a.body),
                        self.now
                    )
                });
                self.p.report_http(id, a.status, a.retry_after, &a.headers, a.body, self.now);
                floor
            }
        };
        if in_flight {
            match floor {
                Some(at) => self.not_before.insert(id, at),
                None => self.not_before.remove(&id),
            };
        }
        self.conservation();
        Ok(())
    }

    fn operations(&mut self, u: &mut Unstructured) -> Result<()> {
        let mut steps = 0;
        while !u.is_empty() && steps < 96 {
            steps += 1;
            match u.int_in_range(0..=19)? {
                0..=2 => {
                    let batch = self.gen.spans(u, self.now)?;
                    trace(|| format!("record_spans({batch})"));
                    if !is_array(&batch) {
                        self.bad_spans += 1;
                    }
                    self.p.record_spans(&batch);
                    self.conservation();
                }
                3 | 4 => {
                    let batch = self.gen.logs(u, self.now)?;
                    trace(|| format!("record_logs({batch})"));
                    if !is_array(&batch) {
                        self.bad_logs += 1;
                    }
                    self.p.record_logs(&batch);
                    self.conservation();
                }
                5..=8 => {
                    let dt = match u.int_in_range(0..=5)? {
                        0 => 0,
                        1 => u.int_in_range(0..=2_000_000_000)?,
                        2 => u.int_in_range(0..=40)? * S,
                        3 => u.int_in_range(0..=400)? * S,
                        _ => u.int_in_range(0..=3)? * S,
                    };
                    self.set_now(self.now.saturating_add(dt));
                    let flush = u.ratio(1, 4)?;
                    self.poll(flush);
                }
                9..=14 => {
                    let id = if !self.in_flight.is_empty() && u.ratio(9, 10)? {
                        *self.in_flight.keys().nth(u.choose_index(self.in_flight.len())?).unwrap()
                    } else {
                        match u.int_in_range(0..=2)? {
                            0 => u.int_in_range(0..=64)?,
                            1 => (1 << 63) + u.int_in_range(0..=8)?,
                            _ => u.arbitrary()?,
                        }
                    };
                    self.answer(u, id)?;
                }
                15 => {
                    // The clock steps back (a host's wall clock), or far ahead.
                    let now = match u.int_in_range(0..=3)? {
                        0 => self.now.saturating_sub(u.int_in_range(0..=600)? * S),
                        1 => 0,
                        2 => u64::MAX - u.int_in_range(0..=1000)? * S,
                        _ => u.arbitrary()?,
                    };
                    self.set_now(now);
                    let flush = u.arbitrary()?;
                    self.poll(flush);
                }
                16 => {
                    let s: serde_json::Value = serde_json::from_str(&self.p.stats_json()).expect("stats are JSON");
                    assert!(s["spans"]["received"].is_u64());
                    let _ = self.p.describe();
                }
                17 if u.ratio(1, 4)? => {
                    let n = self.p.abandon();
                    trace(|| format!("abandon() -> {n}"));
                    // Whatever was in flight is moot: answers are ignored, and
                    // nothing of it is ever handed out again.
                    self.conservation();
                }
                _ => {
                    // An export answered twice: the second answer is ignored.
                    if let Some((&id, _)) = self.not_before.iter().next() {
                        if !self.in_flight.contains_key(&id) {
                            let a = http_answer(u, self.kind, 1, 1, self.now)?;
                            trace(|| format!("report_http(id={id}, {}) again", a.status));
                            self.p.report_http(id, a.status, a.retry_after, &a.headers, a.body, self.now);
                            self.conservation();
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Answers everything OK at times past every one used, flushing, and
    /// expects nothing left over.
    fn finish(&mut self) {
        self.set_now(self.latest.saturating_add(S));
        for _ in 0..6 {
            self.poll(true);
            for (id, sent) in std::mem::take(&mut self.in_flight) {
                let o = if sent.grpc {
                    Outcome::Grpc { code: 0, message: String::new(), details: None, body: Vec::new() }
                } else {
                    Outcome::Response { status: 200, retry_after: None, body: Vec::new() }
                };
                trace(|| format!("report(id={id}, {o:?}, now={}) to finish", self.now));
                self.p.report(id, &o, self.now);
                self.not_before.remove(&id);
            }
            self.conservation();
            // Past any Retry-After the core waits for (300 s) and any backoff.
            self.set_now(self.now.saturating_add(301 * S));
        }
        let r = self.p.poll(self.now, true);
        assert!(
            r.exports.iter().all(|e| e.destination == Destination::Stdout),
            "left over after flush + OK answers: {:?}\n{}",
            r.exports,
            self.p.stats_json()
        );
        assert_eq!(r.outstanding, 0, "outstanding after flush + OK answers: {}", self.p.stats_json());
        let s = self.p.stats();
        for (name, sig) in [("spans", &s.spans), ("logs", &s.logs)] {
            assert_eq!((sig.queued, sig.pending), (0, 0), "{name} left after flush + OK answers: {}", self.p.stats_json());
        }
        self.conservation();
        assert_eq!(self.p.abandon(), 0);
    }
}
