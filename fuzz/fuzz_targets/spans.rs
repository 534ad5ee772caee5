//! Span batches through a whole pipeline: record, poll, report outcomes, poll
//! again later, stats, abandon.
//!
//! Input layout:
//!   byte 0: configuration (protocol, gzip, exporters, batch sizes, limits, delay)
//!   byte 1: mode; even = raw, odd = structured
//!   raw:        <batch text> 0xFF <operation bytes>   (JSON text never holds 0xFF)
//!   structured: everything drives generators (mostly-valid span JSON, then operations)
//!
//! Checks, besides "never panics": every export body decodes as what its
//! headers say and carries `items` spans; the counters add up after each poll
//! (with one route); after a flush and a 200 for everything nothing is left.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use polytel_core::delivery::Outcome;
use polytel_core::pipeline::Destination;
use polytel_core::Pipeline;
use polytel_fuzz::{check_conservation, check_poll, is_array, outcome, SpanGen};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mut h = Harness::new(data[0]);
    trace(|| format!("config {}", config(data[0]).0));
    if data[1] & 1 == 0 {
        let rest = &data[2..];
        let (batch, ops) = match rest.iter().position(|&b| b == 0xff) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let batch = String::from_utf8_lossy(batch).into_owned();
        h.record(&batch);
        let _ = h.operations(&mut Unstructured::new(ops), None, &batch);
    } else {
        let mut u = Unstructured::new(&data[2..]);
        let mut gen = SpanGen::default();
        if let Ok(batch) = gen.batch(&mut u) {
            h.record(&batch);
            let _ = h.operations(&mut u, Some(&mut gen), &batch);
        }
    }
    h.finish();
});

/// With POLYTEL_FUZZ_TRACE=1, every call into the core is printed: run a
/// reproducer that way to see it in readable form.
fn trace(line: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("POLYTEL_FUZZ_TRACE").is_some_and(|v| v == "1")) {
        eprintln!("spans: {}", line());
    }
}

struct Harness {
    p: Pipeline,
    now: u64,
    /// HTTP exports handed out and not yet reported.
    in_flight: BTreeSet<u64>,
    bad_batches: u64,
    one_route: bool,
}

/// The configuration chosen by byte 0.
fn config(b: u8) -> (String, bool) {
    let protocol = if b & 1 == 0 { "http/protobuf" } else { "http/json" };
    let compression = if b & 2 == 0 { "none" } else { "gzip" };
    let (exporters, one_route) = match (b >> 2) & 3 {
        1 => ("console", true),
        2 => ("otlp,console", false),
        _ => ("otlp", true),
    };
    let (queue, batch) = match (b >> 4) & 3 {
        0 => (4, 2),
        1 => (16, 3),
        2 => (64, 8),
        _ => (100_000, 100_000),
    };
    let limits = if b & 0x40 != 0 {
        r#","attribute_count_limit":3,"attribute_value_length_limit":5,"event_count_limit":2,"link_count_limit":2"#
    } else {
        ""
    };
    let delay = if b & 0x80 != 0 { 1000 } else { 0 };
    let json = format!(
        r#"{{"options":{{"protocol":"{protocol}","compression":"{compression}","max_queue_size":{queue},"max_export_batch_size":{batch},"schedule_delay_ms":{delay}{limits},"endpoint":"http://127.0.0.1:4318","headers":{{"authorization":"Bearer s3cret"}}}},"env":{{"OTEL_TRACES_EXPORTER":"{exporters}","OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT":"2","OTEL_LINK_ATTRIBUTE_COUNT_LIMIT":"1"}},"seed":"{b}","host":{{"sdk_language":"rust"}}}}"#
    );
    (json, one_route)
}

impl Harness {
    fn new(b: u8) -> Harness {
        let (json, one_route) = config(b);
        let p = Pipeline::from_json(&json).unwrap_or_else(|e| panic!("fixed configuration rejected: {e}\n{json}"));
        Harness { p, now: 1_700_000_000_000_000_000, in_flight: BTreeSet::new(), bad_batches: 0, one_route }
    }

    fn record(&mut self, batch: &str) {
        trace(|| format!("record_spans({batch})"));
        if !is_array(batch) {
            self.bad_batches += 1;
        }
        self.p.record_spans(batch);
    }

    fn poll(&mut self, flush: bool) {
        let r = self.p.poll(self.now, flush);
        trace(|| {
            let ids: Vec<u64> = r.exports.iter().map(|e| e.id).collect();
            format!("poll(now={}, flush={flush}) -> exports {ids:?}", self.now)
        });
        check_poll(&r);
        for e in &r.exports {
            if matches!(e.destination, Destination::Http { .. }) {
                self.in_flight.insert(e.id);
            }
        }
        if self.one_route {
            check_conservation(&self.p, self.bad_batches);
        }
    }

    fn report(&mut self, id: u64, o: &Outcome) {
        trace(|| format!("report(id={id}, {o:?}, now={})", self.now));
        self.in_flight.remove(&id);
        // No conservation check here: `queued` is refreshed by poll only, and
        // spans may have been recorded since.
        self.p.report(id, o, self.now);
    }

    fn operations(&mut self, u: &mut Unstructured, mut gen: Option<&mut SpanGen>, batch: &str) -> Result<()> {
        let mut steps = 0;
        while !u.is_empty() && steps < 64 {
            steps += 1;
            match u.int_in_range(0..=9)? {
                0..=2 => {
                    let dt = match u.int_in_range(0..=4)? {
                        0 => 0,
                        1 => u.int_in_range(0..=2_000_000_000)?,
                        2 => u.int_in_range(0..=400)? * 1_000_000_000,
                        3 => u64::MAX,
                        _ => u.arbitrary()?,
                    };
                    self.now = self.now.saturating_add(dt);
                    let flush = u.arbitrary()?;
                    self.poll(flush);
                }
                3..=5 => {
                    let id = if !self.in_flight.is_empty() && u.ratio(7, 8)? {
                        *self.in_flight.iter().nth(u.choose_index(self.in_flight.len())?).unwrap()
                    } else {
                        u.arbitrary()?
                    };
                    let o = outcome(u)?;
                    self.report(id, &o);
                }
                6 => match gen.as_deref_mut() {
                    Some(g) => {
                        let more = g.batch(u)?;
                        self.record(&more);
                    }
                    None => self.record(batch),
                },
                7 => {
                    // The clock may step backwards (a host's wall clock).
                    self.now = u.arbitrary()?;
                }
                8 => {
                    let s: serde_json::Value = serde_json::from_str(&self.p.stats_json()).expect("stats are JSON");
                    assert!(s["spans"]["received"].is_u64());
                    let _ = self.p.describe();
                    let _ = self.p.plan();
                }
                _ => {
                    self.p.abandon();
                    self.in_flight.clear();
                    if self.one_route {
                        check_conservation(&self.p, self.bad_batches);
                    }
                }
            }
        }
        Ok(())
    }

    /// Flush, answer 200 to everything, and expect nothing left over.
    fn finish(&mut self) {
        let ok = Outcome::Response { status: 200, retry_after: None, body: Vec::new() };
        for _ in 0..4 {
            self.now = self.now.saturating_add(1_000_000_000);
            self.poll(true);
            for id in std::mem::take(&mut self.in_flight) {
                self.report(id, &ok);
            }
        }
        let r = self.p.poll(self.now, true);
        check_poll(&r);
        assert!(r.exports.iter().all(|e| e.destination == Destination::Stdout), "left over after flush + 200s");
        let s = &self.p.stats().spans;
        assert_eq!((s.queued, s.pending), (0, 0), "spans left after flush + 200s: {}", self.p.stats_json());
        let _: serde_json::Value = serde_json::from_str(&self.p.stats_json()).expect("stats are JSON");
        assert_eq!(self.p.abandon(), 0);
    }
}
