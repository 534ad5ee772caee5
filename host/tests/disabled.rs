//! OTEL_SDK_DISABLED=true: the whole API still works, as a no-op. Nothing is
//! sent, nothing reaches the core, no clock is read, no export worker runs;
//! context from upstream still flows through to downstream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polytel::receiver::{Received, Receiver};
use polytel::{Options, Severity, SpanContext, SpanKind, Status, Telemetry};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// Tests here count the process's export worker threads: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn sink() -> (Receiver, Arc<Mutex<Vec<Received>>>) {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let got = received.clone();
    let receiver = Receiver::start("127.0.0.1:0", move |r| got.lock().unwrap().push(r)).unwrap();
    (receiver, received)
}

/// Every signal to `receiver` over OTLP/HTTP, exporting often, with a clock
/// that counts its readings.
fn options(receiver: &Receiver, env: &[(&str, &str)], readings: &Arc<AtomicU64>) -> Options {
    let readings = readings.clone();
    Options {
        backend: Some("otlp".into()),
        endpoint: Some(receiver.endpoint()),
        traces_exporter: Some("otlp".into()),
        metrics_exporter: Some("otlp".into()),
        logs_exporter: Some("otlp".into()),
        schedule_delay_ms: Some(20),
        log_schedule_delay_ms: Some(20),
        metric_export_interval_ms: Some(20),
        env: Some(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()),
        clock: Some(Arc::new(move || 1_750_000_000_000_000_000 + readings.fetch_add(1, Ordering::SeqCst))),
        ..Default::default()
    }
}

/// Threads of this process named as the export worker. A new thread names
/// itself once it runs, so this first gives any a moment to start.
fn export_workers() -> usize {
    std::thread::sleep(Duration::from_millis(100));
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim() == "polytel-export")
                .count()
        })
        .unwrap_or(0)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn disabled_sends_nothing_and_records_nothing() {
    let _serial = serial();
    let (receiver, received) = sink();
    let readings = Arc::new(AtomicU64::new(0));
    let workers_before = export_workers();
    let t = Telemetry::configure(options(&receiver, &[("OTEL_SDK_DISABLED", "true")], &readings)).unwrap();
    assert_eq!(export_workers(), workers_before, "disabled: no export worker thread");

    // Spans: not recording; a root carries the invalid (all-zero) context.
    let mut root = t.span("root").kind(SpanKind::Server).attribute("a", 1).scope("lib", "1.0").start();
    assert!(!root.is_recording());
    assert_eq!(root.context().trace_id, [0; 16]);
    assert_eq!(root.context().span_id, [0; 8]);
    assert!(!root.context().sampled);
    root.set_attribute("http.request.method", "GET");
    root.add_event("event", &[("k".into(), 1.into())]);
    root.record_exception("E", "boom", "");
    root.set_status(Status::Error("failed".into()));
    let child = root.child("child").start();
    assert!(!child.is_recording());
    assert_eq!(child.context(), root.context(), "a child of a no-op span carries its context");
    let linked = t.span("linked").link(root.context(), &[]).start();
    assert!(!linked.is_recording());
    linked.end();
    child.end();

    // An invalid context goes downstream as no traceparent; baggage still goes.
    let headers = t.inject(root.context(), &[("user".into(), "alice".into())]).unwrap();
    assert_eq!(header(&headers, "traceparent"), None, "{headers:?}");
    assert_eq!(header(&headers, "baggage"), Some("user=alice"), "{headers:?}");
    root.end();

    // A remote parent: its children keep its trace (and its context) and pass it on.
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let extracted = t.extract([("traceparent", traceparent.as_str()), ("tracestate", "v=1")]).unwrap();
    let parent = extracted.parent.expect("the traceparent is read while disabled");
    let mut server = t.span("GET /items").kind(SpanKind::Server).parent(&parent).start();
    assert!(!server.is_recording());
    assert_eq!(server.context().trace_id_hex(), TRACE, "the remote trace id is kept");
    assert_eq!(server.context().span_id_hex(), PARENT, "no span id is drawn: the parent's context is carried");
    assert!(server.context().sampled);
    server.set_attribute("http.response.status_code", 200);
    let client = server.child("GET upstream").kind(SpanKind::Client).start();
    assert_eq!(client.context().trace_id_hex(), TRACE);
    let headers = t.inject(client.context(), &[]).unwrap();
    assert_eq!(header(&headers, "traceparent"), Some(traceparent.as_str()), "{headers:?}");
    assert_eq!(header(&headers, "tracestate"), Some("v=1"), "{headers:?}");
    client.end();

    // Metrics and logs: accepted, dropped on the spot.
    let counter = t.counter("llm.calls").unit("{call}").build();
    let histogram = t.histogram("llm.duration").unit("s").boundaries(&[0.1, 1.0]).build();
    let up_down = t.up_down_counter("sessions").build();
    let gauge = t.gauge("pool.size").build();
    let observed = Arc::new(AtomicU64::new(0));
    let calls = observed.clone();
    let observable = t.observable_gauge("queue.depth").callback(move |o| {
        calls.fetch_add(1, Ordering::SeqCst);
        o.observe(1.0, &[]);
    });
    for i in 0..100 {
        counter.add(1.0, &[("model", &"gpt-4o"), ("attempt", &(i % 3)), ("ok", &true)]);
        counter.add_in(server.context(), 1.0, &[]);
        histogram.record(0.5, &[("model", &"gpt-4o")]);
        histogram.record_in(server.context(), 0.5, &[]);
        up_down.add(-1.0, &[]);
        gauge.record(3.0, &[]);
        t.log(Severity::Info, "hello").attribute("i", i).span(server.context()).event_name("e").emit();
    }
    server.end();

    assert!(t.force_flush(Duration::from_secs(5)));
    // Longer than every schedule delay and export interval above.
    std::thread::sleep(Duration::from_millis(300));
    let report = t.shutdown(Duration::from_secs(5));
    observable.unregister();
    assert!(report.flushed);
    assert_eq!(report.abandoned, 0);

    let received = received.lock().unwrap();
    assert!(received.is_empty(), "nothing is sent: {:?}", received.iter().map(|r| &r.path).collect::<Vec<_>>());
    assert_eq!(observed.load(Ordering::SeqCst), 0, "no collection: observable callbacks never run");
    assert_eq!(readings.load(Ordering::SeqCst), 0, "the clock is never read");
    let stats = t.stats().unwrap();
    for signal in ["spans", "metrics", "logs"] {
        assert_eq!(stats[signal]["received"], 0, "{signal}: {stats}");
        assert_eq!(stats[signal]["exported"], 0, "{signal}: {stats}");
        assert_eq!(stats["host"]["buffer_dropped"][signal], 0, "{signal}: {stats}");
    }
    assert_eq!(stats["exports"]["sent"], 0, "{stats}");
    assert_eq!(stats["host"]["buffered"], 0, "{stats}");
}

#[test]
fn disabled_by_option_too() {
    let _serial = serial();
    let (receiver, received) = sink();
    let readings = Arc::new(AtomicU64::new(0));
    let workers_before = export_workers();
    let t = Telemetry::configure(Options { disabled: Some(true), ..options(&receiver, &[], &readings) }).unwrap();
    assert_eq!(export_workers(), workers_before);
    let mut span = t.span("s").start();
    span.set_attribute("k", "v");
    assert!(!span.is_recording());
    span.end();
    t.counter("c").build().add(1.0, &[]);
    t.log(Severity::Warn, "w").emit();
    assert!(t.force_flush(Duration::from_secs(5)));
    t.shutdown(Duration::from_secs(5));
    assert!(received.lock().unwrap().is_empty());
    assert_eq!(readings.load(Ordering::SeqCst), 0);
}

/// A context from disabled telemetry handed to enabled telemetry: no parent
/// (the span is a root with ids of its own), no log context, no traceparent.
#[test]
fn an_invalid_context_is_no_context() {
    let _serial = serial();
    let (receiver, received) = sink();
    let readings = Arc::new(AtomicU64::new(0));
    let off = Telemetry::configure(options(&receiver, &[("OTEL_SDK_DISABLED", "true")], &readings)).unwrap();
    let noop = off.span("no-op").start();
    let invalid: SpanContext = noop.context().clone();
    assert_eq!(invalid.trace_id, [0; 16]);

    let workers_before = export_workers();
    let on = Telemetry::configure(options(&receiver, &[], &readings)).unwrap();
    assert_eq!(export_workers(), workers_before + 1, "enabled: one export worker (and the count works)");
    let span = on.span("root after all").parent(&invalid).start();
    assert!(span.is_recording());
    assert_ne!(span.context().trace_id, [0; 16]);
    assert_ne!(span.context().span_id, [0; 8]);
    let trace_id = span.context().trace_id.to_vec();
    on.log(Severity::Info, "no context").span(&invalid).emit();
    on.counter("c").build().add_in(&invalid, 1.0, &[]);
    let headers = on.inject(&invalid, &[]).unwrap();
    assert_eq!(header(&headers, "traceparent"), None, "{headers:?}");
    span.end();
    assert!(on.force_flush(Duration::from_secs(10)));

    let received = received.lock().unwrap();
    let spans: Vec<_> = received
        .iter()
        .filter_map(|r| r.traces.as_ref())
        .flat_map(|req| &req.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect();
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].trace_id, trace_id);
    assert!(spans[0].parent_span_id.is_empty(), "recorded as a root");
    let logs: Vec<_> = received
        .iter()
        .filter_map(|r| r.logs.as_ref())
        .flat_map(|req| &req.resource_logs)
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].trace_id.is_empty() && logs[0].span_id.is_empty());
    drop(received);
    let stats = on.stats().unwrap();
    assert_eq!(stats["spans"]["dropped"], serde_json::json!({}), "{stats}");
    assert_eq!(stats["logs"]["dropped"], serde_json::json!({}), "{stats}");
    on.shutdown(Duration::from_secs(5));
    off.shutdown(Duration::from_secs(5));
}
