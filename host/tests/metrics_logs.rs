//! Metrics and logs through the Rust API and the component: to an OTLP
//! receiver, to a real OpenTelemetry Collector, and scraped by a real
//! Prometheus from the host's /metrics. The Collector and Prometheus are
//! installed by the project's scripts; without them these tests fail, they
//! never skip.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polytel::receiver::{Received, Receiver};
use polytel::{Options, Severity, Telemetry};
use polytel_core::proto::tonic::metrics::v1::{metric, number_data_point};
use support::collector::Collector;
use support::prometheus::{promtool_check_metrics, Prometheus};

fn receiver() -> (Receiver, Arc<Mutex<Vec<Received>>>) {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = got.clone();
    (Receiver::start("127.0.0.1:0", move |r| sink.lock().unwrap().push(r)).unwrap(), got)
}

#[test]
fn the_api_records_instruments_observations_and_logs_with_trace_context() {
    let (receiver, got) = receiver();
    let t = Telemetry::configure(Options {
        backend: Some("otlp".into()),
        endpoint: Some(receiver.endpoint()),
        service_name: Some("metrics-api".into()),
        env: Some(BTreeMap::new()),
        ..Default::default()
    })
    .unwrap();
    let calls = t.counter("agent.tool.calls").unit("{call}").build();
    let latency = t.histogram("tool.latency").unit("s").boundaries(&[0.1, 1.0]).build();
    let observed = Arc::new(AtomicU64::new(0));
    let seen = observed.clone();
    let _entries = t.observable_gauge("memory.entries").callback(move |o| {
        seen.fetch_add(1, Ordering::SeqCst);
        o.observe(42.0, &[("store", &"notes")]);
    });
    let span = t.span("execute_tool search").start();
    calls.add_in(span.context(), 1.0, &[("tool", &"search")]);
    calls.add(2.0, &[("tool", &"search")]);
    calls.add(-5.0, &[("tool", &"search")]);
    latency.record_in(span.context(), 0.5, &[]);
    t.log(Severity::Warn, "slow tool").attribute("tool", "search").span(span.context()).emit();
    let ctx = span.context().clone();
    span.end();
    let report = t.shutdown(Duration::from_secs(10));
    assert!(report.flushed && report.abandoned == 0, "{report:?}");
    assert!(observed.load(Ordering::SeqCst) >= 1, "the callback ran at the final collection");
    let stats = t.stats().unwrap();
    assert_eq!(stats["metrics"]["dropped"]["negative"], 1, "{stats}");
    assert_eq!(stats["logs"]["exported"], 1, "{stats}");

    let got = got.lock().unwrap();
    let metrics: Vec<_> = got
        .iter()
        .filter_map(|r| r.metrics.clone())
        .flat_map(|m| m.resource_metrics)
        .flat_map(|rm| rm.scope_metrics)
        .flat_map(|sm| sm.metrics)
        .collect();
    let find = |name: &str| metrics.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("{name}: {metrics:?}"));
    let Some(metric::Data::Sum(sum)) = &find("agent.tool.calls").data else { panic!() };
    assert_eq!(sum.data_points[0].value, Some(number_data_point::Value::AsDouble(3.0)));
    assert_eq!(sum.data_points[0].exemplars[0].trace_id, ctx.trace_id.to_vec());
    let Some(metric::Data::Histogram(h)) = &find("tool.latency").data else { panic!() };
    assert_eq!(h.data_points[0].bucket_counts, [0, 1, 0]);
    let Some(metric::Data::Gauge(g)) = &find("memory.entries").data else { panic!() };
    assert_eq!(g.data_points[0].value, Some(number_data_point::Value::AsDouble(42.0)));
    let logs: Vec<_> = got
        .iter()
        .filter_map(|r| r.logs.clone())
        .flat_map(|l| l.resource_logs)
        .flat_map(|rl| rl.scope_logs)
        .flat_map(|sl| sl.log_records)
        .collect();
    assert_eq!(logs.len(), 1);
    assert_eq!((logs[0].severity_number, logs[0].severity_text.as_str()), (13, "WARN"));
    assert_eq!((logs[0].trace_id.clone(), logs[0].span_id.clone()), (ctx.trace_id.to_vec(), ctx.span_id.to_vec()));
}

#[test]
fn the_demos_metrics_and_logs_arrive_at_the_collector() {
    for protocol in ["http/protobuf", "http/json"] {
        let mut collector = Collector::start();
        let t = Telemetry::configure(Options {
            backend: Some("otlp".into()),
            endpoint: Some(collector.endpoint()),
            protocol: Some(protocol.into()),
            service_name: Some("collector-metrics".into()),
            env: Some(BTreeMap::new()),
            ..Default::default()
        })
        .unwrap();
        polytel::demo::run_agent_workload(&t, 0.0);
        let report = t.shutdown(Duration::from_secs(10));
        assert!(report.flushed && report.abandoned == 0, "{protocol}: {report:?}");

        let metrics = collector.wait_for_metrics(
            |ms| {
                ["gen_ai.client.operation.duration", "gen_ai.client.token.usage", "polytel.gen_ai.cost"]
                    .iter()
                    .all(|n| ms.iter().any(|m| m.name == *n))
            },
            Duration::from_secs(20),
        );
        let duration = metrics.iter().find(|m| m.name == "gen_ai.client.operation.duration").unwrap();
        assert_eq!((duration.data_type.as_str(), duration.unit.as_str()), ("Histogram", "s"), "{protocol}");
        assert_eq!(duration.temporality.as_deref(), Some("Cumulative"));
        let p = duration.point("gen_ai.request.model", "Str(gpt-4o)").expect("the LLM calls' series");
        assert_eq!(p.count, Some(2), "{protocol}: {}", p.raw);
        assert_eq!(p.bucket_bounds.len(), 14, "{}", p.raw);
        assert!(!p.exemplars.is_empty(), "exemplars from the sampled calls: {}", p.raw);
        let failed = duration.point("error.type", "Str(TimeoutError)").expect("the failed tool's series");
        assert_eq!(failed.attr("gen_ai.tool.name"), Some("Str(fetch_page)"), "{}", failed.raw);
        let tokens = metrics.iter().find(|m| m.name == "gen_ai.client.token.usage").unwrap();
        let input = tokens.point("gen_ai.token.type", "Str(input)").expect("an input token series");
        assert_eq!((input.count, input.sum), (Some(2), Some(2042.0)), "{}", input.raw);
        let cost = metrics.iter().find(|m| m.name == "polytel.gen_ai.cost").unwrap();
        assert_eq!((cost.data_type.as_str(), cost.monotonic), ("Sum", Some(true)));
        let usd = cost.point("gen_ai.request.model", "Str(gpt-4o)").and_then(|p| p.value).expect("a cost series");
        // 2042 input and 508 output tokens at the shipped gpt-4o prices.
        assert!((usd - (2042.0 * 2.5 + 508.0 * 10.0) / 1e6).abs() < 1e-9, "{protocol}: {usd}");
        assert_eq!(cost.resource_attr("service.name"), Some("Str(collector-metrics)"));

        let logs = collector.wait_for_logs(4, Duration::from_secs(20));
        assert_eq!(logs.len(), 4, "{protocol}: {logs:#?}");
        let error = logs.iter().find(|l| l.severity_text == "ERROR").expect("the failed tool's log");
        assert_eq!(error.severity_number, 17);
        assert_eq!(error.body, "Str(tool fetch_page finished: error)");
        assert_eq!(error.attr("error.type"), Some("Str(TimeoutError)"));
        assert_eq!(error.trace_id.len(), 32, "{}", error.raw);
        assert!(logs.iter().all(|l| l.trace_id == logs[0].trace_id), "one trace: {logs:#?}");
    }
}

fn scrape(addr: std::net::SocketAddr, accept: &str) -> (String, String) {
    let mut r =
        ureq::get(&format!("http://{addr}/metrics")).header("Accept", accept).call().expect("scraping /metrics");
    let content_type = r.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    (content_type, r.body_mut().read_to_string().unwrap())
}

#[test]
fn prometheus_scrapes_the_hosts_metrics_endpoint() {
    let t = Telemetry::configure(Options {
        metrics_exporter: Some("prometheus".into()),
        prometheus_listen: Some("127.0.0.1:0".into()),
        traces_exporter: Some("none".into()),
        logs_exporter: Some("none".into()),
        service_name: Some("prom-agent".into()),
        env: Some(BTreeMap::new()),
        ..Default::default()
    })
    .unwrap();
    let addr = t.prometheus_addr().expect("serving /metrics");
    let calls = t.counter("agent.tool.calls").unit("{call}").description("Tool calls.").build();
    let duration = t
        .histogram("gen_ai.client.operation.duration")
        .unit("s")
        .description("GenAI operation duration.")
        .boundaries(&[0.1, 0.5, 1.0, 5.0])
        .build();
    let _sessions = t.observable_up_down_counter("agent.sessions").description("Open sessions.").callback(|o| {
        o.observe(3.0, &[]);
    });
    // Load keeps flowing while Prometheus scrapes, so rates are positive.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                calls.add(1.0, &[("tool", &"search")]);
                duration.record([0.05, 0.3, 0.7, 2.0][(i % 4) as usize], &[("model", &"gpt-4o")]);
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));

    let (content_type, text) = scrape(addr, "text/plain");
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    promtool_check_metrics(&text).unwrap_or_else(|e| panic!("promtool rejects our exposition: {e}\n{text}"));
    for needle in [
        "# TYPE agent_tool_calls_total counter",
        "# TYPE gen_ai_client_operation_duration_seconds histogram",
        "gen_ai_client_operation_duration_seconds_bucket{",
        "le=\"+Inf\"",
        "agent_sessions{",
        "target_info{",
        "service_name=\"prom-agent\"",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
    let (content_type, open) = scrape(addr, "application/openmetrics-text; version=1.0.0");
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    assert!(open.ends_with("# EOF\n"), "{open}");

    let prometheus = Prometheus::start(addr, Duration::from_secs(1));
    let quantile = prometheus.wait_for(
        "histogram_quantile(0.9, sum by (le) (rate(gen_ai_client_operation_duration_seconds_bucket[10s])))",
        Duration::from_secs(40),
        |r| r.first().is_some_and(|(_, v)| v.is_finite() && *v > 0.0),
    );
    let p90 = quantile[0].1;
    assert!((1.0..=5.0).contains(&p90), "a quarter of the values are 2 s, so p90 is in the (1, 5] bucket: {p90}");
    let rate = prometheus.wait_for("rate(agent_tool_calls_total[10s])", Duration::from_secs(20), |r| {
        r.first().is_some_and(|(_, v)| *v > 0.0)
    });
    assert_eq!(rate[0].0.get("tool").map(String::as_str), Some("search"), "{rate:?}");
    let (up, error) = prometheus.target_health();
    assert!(up, "the scrape target is down: {error}\n{}", prometheus.output());
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    t.shutdown(Duration::from_secs(5));
    assert!(ureq::get(&format!("http://{addr}/metrics")).call().is_err(), "shutdown stops serving");
}
