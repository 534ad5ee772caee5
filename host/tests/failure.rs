//! Delivery under failure, through the Rust host against the misbehaving
//! receiver (`polytel::faults`): a transient outage loses nothing and sends
//! nothing twice; Retry-After is honoured in both its forms; 400 and partial
//! success are not retried; 413 splits; shutdown with a receiver that hangs
//! or is gone keeps its deadline and says what was not delivered; a dead
//! receiver keeps the buffers at their bounds, with every item accounted for.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use polytel::faults::{FaultReceiver, FaultStats, Script, Step};
use polytel::{Options, Severity, Telemetry};

fn telemetry(endpoint: String, extra: impl FnOnce(&mut Options)) -> Telemetry {
    let mut options = Options {
        backend: Some("otlp".into()),
        endpoint: Some(endpoint),
        service_name: Some("failure".into()),
        env: Some(BTreeMap::new()),
        ..Default::default()
    };
    extra(&mut options);
    Telemetry::configure(options).unwrap()
}

fn record_spans(t: &Telemetry, n: usize) {
    for i in 0..n {
        t.span(format!("op {i}")).attribute("i", i as i64).start().end();
    }
}

fn dropped(stats: &serde_json::Value, signal: &str) -> BTreeMap<String, u64> {
    serde_json::from_value(stats[signal]["dropped"].clone()).unwrap()
}

fn wait_for(what: &str, receiver: &FaultReceiver, done: impl Fn(&FaultStats) -> bool) -> FaultStats {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = receiver.stats();
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn script(steps: Vec<Step>) -> Script {
    Script { steps, then: Some(Step::ok()) }
}

#[test]
fn a_transient_outage_loses_nothing_and_sends_nothing_twice() {
    // Three seconds' worth of 503 (Retry-After: 1), then healthy.
    let r = FaultReceiver::start(
        "127.0.0.1:0",
        script(vec![Step { retry_after: Some("1".into()), ..Step::status(503) }.times(3)]),
    )
    .unwrap();
    let t = telemetry(r.endpoint(), |_| {});
    record_spans(&t, 300);
    for i in 0..50 {
        t.log(Severity::Info, format!("log {i}")).emit();
    }
    let report = t.shutdown(Duration::from_secs(20));
    assert!(report.flushed && report.abandoned == 0, "{report:?}");
    let s = r.stats();
    assert_eq!((s.spans, s.duplicate_spans, s.log_records), (300, 0, 50), "{s:?}");
    assert_eq!(s.answered.get("503"), Some(&3));
    let stats = t.stats().unwrap();
    assert!(dropped(&stats, "spans").is_empty() && dropped(&stats, "logs").is_empty(), "{stats}");
    assert!(stats["spans"]["retried"].as_u64().unwrap() > 0, "{stats}");
}

#[test]
fn retry_after_is_honoured_in_seconds_and_as_an_http_date() {
    for step in [
        Step { retry_after: Some("2".into()), ..Step::status(429) },
        Step { retry_after_date: Some(3), ..Step::status(503) },
    ] {
        let r = FaultReceiver::start("127.0.0.1:0", script(vec![step.clone()])).unwrap();
        let t = telemetry(r.endpoint(), |_| {});
        record_spans(&t, 10);
        let started = Instant::now();
        assert!(t.force_flush(Duration::from_secs(20)), "{step:?}");
        let took = started.elapsed();
        // An HTTP-date has whole seconds: 3 s ahead is at least 2 s away.
        assert!(took >= Duration::from_millis(1900), "{step:?}: delivered after {took:?}");
        let s = r.stats();
        assert_eq!((s.requests, s.spans, s.duplicate_spans), (2, 10, 0), "{step:?}: {s:?}");
        t.shutdown(Duration::from_secs(5));
    }
}

#[test]
fn bad_request_and_partial_success_are_not_retried() {
    let r = FaultReceiver::start("127.0.0.1:0", Script::always(Step::status(400))).unwrap();
    let t = telemetry(r.endpoint(), |_| {});
    record_spans(&t, 10);
    assert!(t.force_flush(Duration::from_secs(10)));
    assert_eq!(r.stats().requests, 1);
    assert_eq!(dropped(&t.stats().unwrap(), "spans"), BTreeMap::from([("rejected".into(), 10)]));

    let r =
        FaultReceiver::start("127.0.0.1:0", Script::always(Step { partial_success: Some(3), ..Default::default() }))
            .unwrap();
    let t = telemetry(r.endpoint(), |_| {});
    record_spans(&t, 10);
    assert!(t.force_flush(Duration::from_secs(10)));
    assert_eq!(r.stats().requests, 1);
    let stats = t.stats().unwrap();
    assert_eq!(dropped(&stats, "spans"), BTreeMap::from([("partial_success".into(), 3)]));
    assert_eq!(stats["spans"]["exported"], 7);
}

#[test]
fn too_large_splits_the_batch() {
    let r = FaultReceiver::start("127.0.0.1:0", script(vec![Step::status(413)])).unwrap();
    let t = telemetry(r.endpoint(), |_| {});
    record_spans(&t, 40);
    assert!(t.force_flush(Duration::from_secs(10)));
    let s = r.stats();
    assert_eq!((s.spans, s.duplicate_spans), (40, 0), "{s:?}");
    assert_eq!(s.answered.get("ok"), Some(&2), "two halves: {s:?}");
}

#[test]
fn shutdown_keeps_its_deadline_with_a_receiver_that_hangs_or_is_gone() {
    let hanging =
        FaultReceiver::start("127.0.0.1:0", Script::always(Step { hang: Some(true), ..Default::default() })).unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    for endpoint in [hanging.endpoint(), closed] {
        let t = telemetry(endpoint.clone(), |_| {});
        record_spans(&t, 100);
        let started = Instant::now();
        let report = t.shutdown(Duration::from_secs(2));
        let took = started.elapsed();
        assert!(took < Duration::from_millis(2800), "{endpoint}: shutdown took {took:?}");
        assert!(!report.flushed, "{endpoint}: {report:?}");
        let stats = t.stats().unwrap();
        let lost = report.abandoned;
        assert_eq!(lost + stats["spans"]["exported"].as_u64().unwrap(), 100, "{endpoint}: {report:?} {stats}");
        assert_eq!(dropped(&stats, "spans").get("shutdown"), Some(&100), "{endpoint}: {stats}");
    }
}

#[test]
fn a_dead_receiver_keeps_the_buffers_bounded_and_counts_every_drop() {
    let r =
        FaultReceiver::start("127.0.0.1:0", Script::always(Step { hang: Some(true), ..Default::default() })).unwrap();
    let t = telemetry(r.endpoint(), |o| {
        o.max_queue_size = Some(512);
        o.max_export_batch_size = Some(128);
    });
    let n = 20_000;
    record_spans(&t, n);
    // Let the worker take what it can while the first request hangs.
    wait_for("the first request", &r, |s| s.requests >= 1);
    std::thread::sleep(Duration::from_millis(300));
    let stats = t.stats().unwrap();
    let spans = &stats["spans"];
    let (queued, pending) = (spans["queued"].as_u64().unwrap(), spans["pending"].as_u64().unwrap());
    assert!(queued <= 512 && pending <= 512, "{stats}");
    let host_dropped = stats["host"]["buffer_dropped"]["spans"].as_u64().unwrap();
    let buffered = stats["host"]["buffered"].as_u64().unwrap();
    assert!(buffered <= 512, "{stats}");
    let core_dropped: u64 = dropped(&stats, "spans").values().sum();
    assert!(dropped(&stats, "spans").keys().all(|reason| reason == "queue_full"), "{stats}");
    assert_eq!(
        host_dropped + core_dropped + queued + pending + buffered,
        n as u64,
        "every span accounted for: {stats}"
    );
    assert_eq!(r.stats().spans, 0);
    let report = t.shutdown(Duration::from_millis(500));
    assert!(!report.flushed);
}

#[test]
fn self_metrics_carry_the_cores_counters_to_the_receiver() {
    let r = FaultReceiver::start("127.0.0.1:0", script(vec![Step::status(400)])).unwrap();
    let t = telemetry(r.endpoint(), |o| o.self_metrics = Some(true));
    record_spans(&t, 5);
    assert!(t.force_flush(Duration::from_secs(10)));
    assert!(t.force_flush(Duration::from_secs(10)), "a second collection reports the first's drops");
    // Two collections of five instruments each, per signal; at least the
    // spans' exported, dropped and gauges arrived.
    assert!(r.stats().data_points >= 10, "{:?}", r.stats());
    t.shutdown(Duration::from_secs(5));
}

#[test]
fn a_retry_goes_when_its_retry_after_ends_not_at_the_next_schedule() {
    let r =
        FaultReceiver::start("127.0.0.1:0", script(vec![Step { retry_after: Some("1".into()), ..Step::status(503) }]))
            .unwrap();
    // A full batch goes at once; the schedule would fire only after 4 s.
    let t = telemetry(r.endpoint(), |o| {
        o.max_export_batch_size = Some(10);
        o.schedule_delay_ms = Some(4000);
        o.log_schedule_delay_ms = Some(4000);
    });
    let started = Instant::now();
    record_spans(&t, 10);
    let s = wait_for("the retry", &r, |s| s.spans == 10);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(2500), "delivered after {took:?}");
    assert_eq!((s.requests, s.duplicate_spans), (2, 0));
    t.shutdown(Duration::from_secs(5));
}

#[test]
fn measurements_reach_the_core_while_a_request_hangs() {
    let r =
        FaultReceiver::start("127.0.0.1:0", Script::always(Step { hang: Some(true), ..Default::default() })).unwrap();
    let t = telemetry(r.endpoint(), |o| {
        o.max_queue_size = Some(512);
        o.max_export_batch_size = Some(128);
    });
    // A span export goes first and hangs, holding the export worker.
    record_spans(&t, 128);
    wait_for("the hanging request", &r, |s| s.requests >= 1);
    let counter = t.counter("calls").build();
    // Bursts well under the buffer's bound, with pauses in which the shipper
    // runs (as in an app that does anything else).
    for _ in 0..100 {
        for _ in 0..200 {
            counter.add(1.0, &[("tool", &"search")]);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // The core aggregates them in one series; none was lost in the host's buffer.
    let stats = t.stats().unwrap();
    assert_eq!(stats["host"]["buffer_dropped"]["metrics"], 0, "{stats}");
    assert_eq!(stats["metrics"]["received"], 20_000, "{stats}");
    t.shutdown(Duration::from_millis(300));
}
