//! Every preset end to end: its requests go to a local capture server (the
//! preset's base URL pointed at it), and the path, headers and decoded body of
//! each are checked against the vendor facts in shared/reference/presets.md.
//! The capture server answers only POST, so a captured request was a POST.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polytel::receiver::{Received, Receiver};
use polytel::{Options, Severity, Telemetry};

struct Case {
    backend: &'static str,
    settings: &'static [(&'static str, &'static str)],
    /// The preset's base path on the vendor's host; the capture server gets it too.
    base_path: &'static str,
    /// Headers every request of the preset carries.
    headers: &'static [(&'static str, &'static str)],
    /// Extra headers by signal (traces, metrics, logs).
    per_signal: [&'static [(&'static str, &'static str)]; 3],
    /// Which signals the backend takes (traces, metrics, logs).
    signals: [bool; 3],
    json_metrics: bool,
}

const ALL: [bool; 3] = [true, true, true];
const NONE: [&[(&str, &str)]; 3] = [&[], &[], &[]];

const CASES: &[Case] = &[
    Case {
        backend: "sentry",
        settings: &[("sentry_dsn", "https://PUBKEY@o1.ingest.us.sentry.io/42")],
        base_path: "/api/42/integration/otlp",
        headers: &[("x-sentry-auth", "sentry sentry_key=PUBKEY")],
        per_signal: NONE,
        signals: [true, false, true],
        json_metrics: false,
    },
    Case {
        backend: "honeycomb",
        settings: &[
            ("honeycomb_api_key", "hcaik_01hq3fbahv6f2qf7q1qxqs4kcs"),
            ("honeycomb_metrics_dataset", "agent-metrics"),
        ],
        base_path: "",
        headers: &[("x-honeycomb-team", "hcaik_01hq3fbahv6f2qf7q1qxqs4kcs")],
        per_signal: [&[], &[("x-honeycomb-dataset", "agent-metrics")], &[]],
        signals: ALL,
        json_metrics: false,
    },
    Case {
        backend: "datadog",
        settings: &[("datadog_api_key", "ddkey"), ("datadog_otlp_source", "org-source")],
        base_path: "",
        headers: &[("dd-api-key", "ddkey")],
        per_signal: [&[("dd-otlp-source", "org-source")], &[], &[]],
        signals: ALL,
        json_metrics: false,
    },
    Case {
        backend: "datadog-agent",
        settings: &[],
        base_path: "",
        headers: &[],
        per_signal: NONE,
        signals: ALL,
        json_metrics: false,
    },
    Case {
        backend: "grafana-cloud",
        settings: &[("grafana_cloud_instance_id", "123456"), ("grafana_cloud_token", "glc_token")],
        base_path: "/otlp",
        headers: &[("authorization", "Basic MTIzNDU2OmdsY190b2tlbg==")],
        per_signal: NONE,
        signals: ALL,
        json_metrics: false,
    },
    Case {
        backend: "axiom",
        settings: &[("axiom_token", "xaat-1"), ("axiom_dataset", "events"), ("axiom_metrics_dataset", "metrics")],
        base_path: "",
        headers: &[("authorization", "Bearer xaat-1")],
        per_signal: [
            &[("x-axiom-dataset", "events")],
            &[("x-axiom-metrics-dataset", "metrics")],
            &[("x-axiom-dataset", "events")],
        ],
        signals: ALL,
        json_metrics: false,
    },
    Case {
        backend: "newrelic",
        settings: &[("newrelic_license_key", "nrlicense")],
        base_path: "",
        headers: &[("api-key", "nrlicense")],
        per_signal: NONE,
        signals: ALL,
        json_metrics: false,
    },
    Case {
        backend: "elastic",
        settings: &[("elastic_secret_token", "apmsecret")],
        base_path: "",
        headers: &[("authorization", "Bearer apmsecret")],
        per_signal: NONE,
        signals: ALL,
        json_metrics: false,
    },
    Case {
        backend: "dynatrace",
        settings: &[("dynatrace_api_token", "dt0c01.abc")],
        base_path: "/api/v2/otlp",
        headers: &[("authorization", "Api-Token dt0c01.abc")],
        per_signal: NONE,
        signals: ALL,
        json_metrics: false,
    },
    Case {
        backend: "langfuse",
        settings: &[("langfuse_public_key", "pk-lf-1"), ("langfuse_secret_key", "sk-lf-2")],
        base_path: "/api/public/otel",
        headers: &[("authorization", "Basic cGstbGYtMTpzay1sZi0y")],
        per_signal: NONE,
        signals: [true, false, false],
        json_metrics: false,
    },
    Case {
        backend: "logfire",
        settings: &[("logfire_token", "pylf_v1_eu_token")],
        base_path: "",
        headers: &[("authorization", "pylf_v1_eu_token")],
        per_signal: NONE,
        signals: ALL,
        json_metrics: false,
    },
    Case {
        backend: "jaeger",
        settings: &[],
        base_path: "",
        headers: &[],
        per_signal: NONE,
        signals: [true, false, false],
        json_metrics: false,
    },
    Case {
        backend: "tempo",
        settings: &[("tenant_id", "team-a")],
        base_path: "",
        headers: &[("x-scope-orgid", "team-a")],
        per_signal: NONE,
        signals: [true, false, false],
        json_metrics: false,
    },
    Case {
        backend: "loki",
        settings: &[("tenant_id", "team-a")],
        base_path: "/otlp",
        headers: &[("x-scope-orgid", "team-a")],
        per_signal: NONE,
        signals: [false, false, true],
        json_metrics: false,
    },
    Case {
        backend: "prometheus",
        settings: &[],
        base_path: "/api/v1/otlp",
        headers: &[],
        per_signal: NONE,
        signals: [false, true, false],
        json_metrics: true,
    },
    Case {
        backend: "signoz",
        settings: &[("signoz_ingestion_key", "szkey")],
        base_path: "",
        headers: &[("signoz-ingestion-key", "szkey")],
        per_signal: NONE,
        signals: ALL,
        json_metrics: false,
    },
    Case {
        backend: "uptrace",
        settings: &[("uptrace_dsn", "https://token@api.uptrace.dev?grpc=4317")],
        base_path: "",
        headers: &[("uptrace-dsn", "https://token@api.uptrace.dev?grpc=4317")],
        per_signal: NONE,
        signals: ALL,
        json_metrics: false,
    },
];

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Sends one span, one counter increment and one log record through `case`'s
/// preset to a capture server, and returns what arrived.
fn capture(case: &Case, protocol: Option<&str>) -> Vec<Received> {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = got.clone();
    let receiver = Receiver::start("127.0.0.1:0", move |r| sink.lock().unwrap().push(r)).unwrap();
    let mut options = Options {
        backend: Some(case.backend.into()),
        endpoint: Some(format!("{}{}", receiver.endpoint(), case.base_path)),
        protocol: protocol.map(str::to_owned),
        service_name: Some("preset-test".into()),
        env: Some(BTreeMap::new()),
        host_facts: Some(serde_json::json!({})),
        ..Default::default()
    };
    for (k, v) in case.settings {
        options = options.set(k, *v);
    }
    let t = Telemetry::configure(options).unwrap_or_else(|e| panic!("{}: {e:#}", case.backend));
    let span = t.span("invoke_agent planner").start();
    t.counter("agent.runs").build().add(1.0, &[("agent", &"planner")]);
    t.log(Severity::Info, "planning").span(span.context()).emit();
    span.end();
    let report = t.shutdown(Duration::from_secs(10));
    assert!(report.flushed && report.abandoned == 0, "{}: {report:?}", case.backend);
    let got = got.lock().unwrap().clone();
    got
}

#[test]
fn every_preset_sends_the_right_paths_headers_and_bodies() {
    for case in CASES {
        let got = capture(case, None);
        for (i, signal) in ["traces", "metrics", "logs"].into_iter().enumerate() {
            let path = format!("{}/v1/{signal}", case.base_path);
            let requests: Vec<&Received> = got.iter().filter(|r| r.path == path).collect();
            if !case.signals[i] {
                assert!(requests.is_empty(), "{} takes no {signal}, yet got {}", case.backend, requests.len());
                continue;
            }
            assert_eq!(
                requests.len(),
                1,
                "{} {signal}: paths seen {:?}",
                case.backend,
                got.iter().map(|r| &r.path).collect::<Vec<_>>()
            );
            let r = requests[0];
            // Prometheus's receiver matches the content type exactly.
            assert_eq!(header(r, "content-type"), Some("application/x-protobuf"), "{} {signal}", case.backend);
            for (name, value) in case.headers.iter().chain(case.per_signal[i]) {
                assert_eq!(header(r, name), Some(*value), "{} {signal} header {name}", case.backend);
            }
            match signal {
                "traces" => {
                    let spans: Vec<_> = r
                        .traces
                        .iter()
                        .flat_map(|t| &t.resource_spans)
                        .flat_map(|rs| &rs.scope_spans)
                        .flat_map(|ss| &ss.spans)
                        .collect();
                    assert_eq!(spans.len(), 1);
                    assert_eq!(spans[0].name, "invoke_agent planner");
                }
                "metrics" => {
                    let names: Vec<_> = r
                        .metrics
                        .iter()
                        .flat_map(|m| &m.resource_metrics)
                        .flat_map(|rm| &rm.scope_metrics)
                        .flat_map(|sm| &sm.metrics)
                        .map(|m| m.name.as_str())
                        .collect();
                    assert_eq!(names, ["agent.runs"], "{}", case.backend);
                }
                _ => {
                    let logs: Vec<_> = r
                        .logs
                        .iter()
                        .flat_map(|l| &l.resource_logs)
                        .flat_map(|rl| &rl.scope_logs)
                        .flat_map(|sl| &sl.log_records)
                        .collect();
                    assert_eq!(logs.len(), 1);
                    assert_eq!(logs[0].trace_id.len(), 16, "the log carries its span's trace");
                }
            }
        }
        // The backend's own headers must not leak to the other signals' requests.
        let signal_headers: Vec<&str> = case.per_signal.iter().flat_map(|h| h.iter().map(|(n, _)| *n)).collect();
        for r in &got {
            let i = ["traces", "metrics", "logs"].iter().position(|s| r.path.ends_with(s)).unwrap();
            for name in &signal_headers {
                let expected = case.per_signal[i].iter().find(|(n, _)| n == name).map(|(_, v)| *v);
                assert_eq!(header(r, name), expected, "{} {}", case.backend, r.path);
            }
        }
        if case.json_metrics {
            let got = capture(case, Some("http/json"));
            assert_eq!(header(&got[0], "content-type"), Some("application/json"), "{}", case.backend);
        }
    }
}

#[test]
fn delta_backends_receive_delta_metrics() {
    use polytel_core::proto::tonic::metrics::v1::{metric, AggregationTemporality};
    for (backend, temporality) in
        [("datadog", AggregationTemporality::Delta), ("prometheus", AggregationTemporality::Cumulative)]
    {
        let case = CASES.iter().find(|c| c.backend == backend).unwrap();
        let got = capture(case, None);
        let metrics: Vec<_> = got
            .iter()
            .flat_map(|r| &r.metrics)
            .flat_map(|m| &m.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .collect();
        let Some(metric::Data::Sum(sum)) = &metrics[0].data else { panic!("{metrics:?}") };
        assert_eq!(sum.aggregation_temporality, temporality as i32, "{backend}");
    }
}
