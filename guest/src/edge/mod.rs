//! The edge flavour's own delivery: the loop a host runs to flush, carried out
//! inside the component with wasi:clocks for time and wasi:http for requests,
//! so runtimes that grant wasi:http need no host code. Every decision (what is
//! due, retry, back off, split, drop) stays with the pipeline, as in any host.

mod clock;
mod send;

use std::cell::RefCell;

use crate::component::exports::polytel::telemetry::core::PipelineBorrow;
use crate::component::exports::polytel::telemetry::edge as wit;
use crate::component::{Component, PipelineResource};
use crate::pipeline::{Destination, ExportOutcome, Pipeline};
use send::{Answer, InFlight, Progress};

impl wit::Guest for Component {
    fn flush(pipeline: PipelineBorrow<'_>, timeout_ms: u32) -> wit::FlushReport {
        flush(&pipeline.get::<PipelineResource>().0, timeout_ms)
    }
}

/// A configuration without a seed gets one from wasi:random; the pure core
/// takes 0 there, which a short-lived edge instance would repeat every time.
pub(crate) fn seeded(config: String) -> String {
    let Ok(serde_json::Value::Object(mut members)) = serde_json::from_str(&config) else {
        // Not an object: `create` says what is wrong with it.
        return config;
    };
    if members.contains_key("seed") {
        return config;
    }
    let seed = wasi::random::random::get_random_u64();
    members.insert("seed".into(), seed.to_string().into());
    serde_json::Value::Object(members).to_string()
}

fn flush(pipeline: &RefCell<Pipeline>, timeout_ms: u32) -> wit::FlushReport {
    let deadline = clock::after_ms(timeout_ms);
    let mut report = wit::FlushReport { requests: 0, abandoned: 0, warnings: Vec::new() };
    let mut first = true;
    loop {
        let polled = pipeline.borrow_mut().poll(clock::unix_now(), first);
        first = false;
        report.warnings.extend(polled.warnings);
        let mut in_flight = Vec::new();
        for export in polled.exports {
            match export.destination {
                Destination::Stdout => send::to_stdout(&export.body),
                Destination::Http { url, headers, timeout_ms } => {
                    match InFlight::start(export.id, &url, &headers, &export.body, timeout_ms) {
                        Ok(request) => {
                            report.requests += 1;
                            in_flight.push(request);
                        }
                        Err(why) => settle(pipeline, export.id, Answer::Failed(why)),
                    }
                }
                // A host without gRPC (this one says so at `create`) is never handed these.
                Destination::Grpc { .. } => {
                    settle(pipeline, export.id, Answer::Failed("the edge flavour makes no gRPC calls".into()))
                }
            }
        }
        let delivered = !in_flight.is_empty();
        if delivered && !deliver(pipeline, in_flight, deadline) {
            break;
        }
        // Outcomes change what is due, and after `observe` (no observable
        // callbacks run in here) the next poll collects: poll again at once.
        if delivered || polled.observe {
            continue;
        }
        if polled.outstanding == 0 {
            return report;
        }
        // A retry is waiting for its time. If that is past the deadline,
        // nothing can change before it: give up now rather than hold the
        // instance (and the runtime's capacity) idle until then.
        let wake = clock::at_unix(polled.next_poll);
        if wake >= deadline {
            break;
        }
        clock::sleep_until(wake);
    }
    report.abandoned = pipeline.borrow_mut().abandon();
    report
}

/// Drives every request to its outcome and reports each; false when the
/// deadline passed first (the requests left are dropped, which cancels them).
fn deliver(pipeline: &RefCell<Pipeline>, mut in_flight: Vec<InFlight>, deadline: u64) -> bool {
    while !in_flight.is_empty() {
        let now = clock::monotonic_now();
        if now >= deadline {
            return false;
        }
        let mut i = 0;
        while i < in_flight.len() {
            match in_flight[i].advance(now) {
                Progress::Waiting => i += 1,
                Progress::Done(outcome) => {
                    let request = in_flight.swap_remove(i);
                    settle(pipeline, request.id(), outcome);
                }
            }
        }
        if in_flight.is_empty() {
            break;
        }
        let wake = in_flight.iter().map(InFlight::deadline).min().unwrap_or(deadline).min(deadline);
        let timer = wasi::clocks::monotonic_clock::subscribe_instant(wake);
        let mut pollables: Vec<wasi::io::poll::Pollable> = in_flight.iter().map(InFlight::subscribe).collect();
        pollables.push(timer);
        let refs: Vec<&wasi::io::poll::Pollable> = pollables.iter().collect();
        wasi::io::poll::poll(&refs);
    }
    true
}

fn settle(pipeline: &RefCell<Pipeline>, id: u64, answer: Answer) {
    let now = clock::unix_now();
    let mut p = pipeline.borrow_mut();
    match answer {
        // With its headers: redirects and Live Metrics read them.
        Answer::Response { status, retry_after, headers, body } => {
            p.report_http(id, status, retry_after, &headers, body, now)
        }
        Answer::Failed(why) => p.report(id, &ExportOutcome::Failed(why), now),
    }
}
