//! The support module's metrics and log parsers, against stderr captured from
//! the real Collector (v0.162.0, `scripts/collector/config.yaml.tmpl`) and
//! once more against a live one. The fixture is `fixtures/collector/stderr.txt`,
//! the Collector's whole stderr after the JSON requests next to it were POSTed
//! in this order: trace, metrics, logs, metrics-edge, logs-edge. The live test
//! sends the same requests, so its parse must equal the fixture's: if a
//! Collector upgrade changes the format, that test says so.
//!
//! Needs Go (the Collector is built once by scripts/install-collector.sh);
//! without it the live test fails, it never skips.

mod support;

use std::time::Duration;

use support::collector::{
    parse_logs, parse_metrics, parse_spans, CollectedExemplar, CollectedLog, CollectedMetric, CollectedPoint, Collector,
};

const STDERR: &str = include_str!("fixtures/collector/stderr.txt");
/// The requests behind the fixture, as (OTLP path, JSON body), in the order sent.
const REQUESTS: &[(&str, &str)] = &[
    ("/v1/traces", include_str!("fixtures/collector/trace.json")),
    ("/v1/metrics", include_str!("fixtures/collector/metrics.json")),
    ("/v1/logs", include_str!("fixtures/collector/logs.json")),
    ("/v1/metrics", include_str!("fixtures/collector/metrics-edge.json")),
    ("/v1/logs", include_str!("fixtures/collector/logs-edge.json")),
];

const T20: &str = "2023-11-14 22:13:20 +0000 UTC";
const T21: &str = "2023-11-14 22:13:21 +0000 UTC";
const T22: &str = "2023-11-14 22:13:22 +0000 UTC";
/// What the exporter prints for an unset timestamp.
const EPOCH: &str = "1970-01-01 00:00:00 +0000 UTC";
const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
const SPAN_ID: &str = "eee19b7ec3c1b174";

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

fn polytel_resource() -> Vec<(String, String)> {
    vec![kv("service.name", "Str(polytel-test)"), kv("host.cores", "Int(2)")]
}

/// A metric of the first request's first scope, without points.
fn guest_metric(name: &str, description: &str, unit: &str, data_type: &str) -> CollectedMetric {
    CollectedMetric {
        name: name.into(),
        description: description.into(),
        unit: unit.into(),
        data_type: data_type.into(),
        resource: polytel_resource(),
        scope_name: "polytel.guest".into(),
        scope_version: "0.1.0".into(),
        ..Default::default()
    }
}

fn number(attributes: &[(&str, &str)], start: &str, time: &str, value: f64) -> CollectedPoint {
    CollectedPoint {
        attributes: attributes.iter().map(|(k, v)| kv(k, v)).collect(),
        value: Some(value),
        start: start.into(),
        time: time.into(),
        ..Default::default()
    }
}

/// `raw` is checked apart from the other fields: every point's lines must be
/// a verbatim piece of the fixture, and a few are spelled out in full.
fn without_raw(metrics: &[CollectedMetric]) -> Vec<CollectedMetric> {
    let mut metrics = metrics.to_vec();
    for point in metrics.iter_mut().flat_map(|m| &mut m.points) {
        point.raw.clear();
    }
    metrics
}

#[test]
// The expected bucket edges are what `%f` printed (1.414214), not √2.
#[allow(clippy::approx_constant)]
fn metrics_of_every_kind() {
    let metrics = parse_metrics(STDERR);
    let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "http.requests",
            "bytes.sent",
            "queue.depth",
            "retries",
            "cpu.temperature",
            "request.duration",
            "payload.size",
            "up",
            "edge.summary",
            "edge.values",
            "edge.empty.sum"
        ],
        "metrics come back in the order the two exports printed them"
    );

    let sum = |name, description, unit, temporality: &str, monotonic, points| CollectedMetric {
        temporality: Some(temporality.into()),
        monotonic: Some(monotonic),
        points,
        ..guest_metric(name, description, unit, "Sum")
    };
    let expected = vec![
        // Monotonic cumulative asDouble; a whole double still prints six decimals.
        sum(
            "http.requests",
            "requests served",
            "{request}",
            "Cumulative",
            true,
            vec![
                number(&[("route", "Str(/a)"), ("ok", "Bool(true)")], T20, "2023-11-14 22:13:21.5 +0000 UTC", 12.5),
                number(&[("route", "Str(/b)")], T20, "2023-11-14 22:13:21.5 +0000 UTC", 3.0),
            ],
        ),
        sum("bytes.sent", "", "By", "Cumulative", true, vec![number(&[], T20, T22, 1048576.0)]),
        sum("queue.depth", "items waiting", "{item}", "Cumulative", false, vec![number(&[], T20, T22, -3.0)]),
        sum("retries", "", "1", "Delta", true, vec![number(&[("attempt", "Int(2)")], T21, T22, 4.0)]),
        // Gauges print no temporality or monotonicity, and an unset start as the epoch.
        CollectedMetric {
            points: vec![
                number(&[("core", "Int(0)")], EPOCH, T22, 21.25),
                number(&[("core", "Int(1)")], EPOCH, T22, 22.0),
            ],
            ..guest_metric("cpu.temperature", "die temperature", "Cel", "Gauge")
        },
        CollectedMetric {
            temporality: Some("Cumulative".into()),
            points: vec![CollectedPoint {
                attributes: vec![kv("route", "Str(/a)")],
                count: Some(6),
                sum: Some(123.75),
                min: Some(0.5),
                max: Some(80.25),
                bucket_bounds: vec![1.0, 10.0, 100.0],
                bucket_counts: vec![1, 2, 3, 0],
                exemplars: vec![CollectedExemplar { trace_id: TRACE_ID.into(), span_id: SPAN_ID.into(), value: 80.25 }],
                start: T20.into(),
                time: T22.into(),
                ..Default::default()
            }],
            ..guest_metric("request.duration", "time to answer", "ms", "Histogram")
        },
        // Sent: scale 1, zero count 2, negative offset 0 counts [4, 5],
        // positive offset 1 counts [1, 2, 3]. Printed lowest bucket first, so
        // the negative counts come out reversed; each bucket's upper edge.
        CollectedMetric {
            temporality: Some("Delta".into()),
            points: vec![CollectedPoint {
                attributes: vec![kv("dir", "Str(in)")],
                count: Some(17),
                sum: Some(42.5),
                min: Some(-3.5),
                max: Some(7.75),
                bucket_bounds: vec![-1.414214, -1.0, 0.0, 2.0, 2.828427, 4.0],
                bucket_counts: vec![5, 4, 2, 1, 2, 3],
                exemplars: vec![CollectedExemplar {
                    trace_id: "0102030405060708090a0b0c0d0e0f10".into(),
                    span_id: "0102030405060708".into(),
                    value: 7.0,
                }],
                start: T21.into(),
                time: T22.into(),
                ..Default::default()
            }],
            ..guest_metric("payload.size", "", "By", "ExponentialHistogram")
        },
        // A second resource in the same request, with a versionless scope.
        CollectedMetric {
            name: "up".into(),
            data_type: "Gauge".into(),
            points: vec![number(&[], EPOCH, "2023-11-14 22:13:23 +0000 UTC", 1.0)],
            resource: vec![kv("service.name", "Str(second)")],
            scope_name: "other.scope".into(),
            ..Default::default()
        },
    ];
    assert_eq!(without_raw(&metrics[..8]), expected);

    for point in metrics.iter().flat_map(|m| &m.points) {
        assert!(STDERR.contains(&format!("{}\n", point.raw)), "raw is not verbatim:\n{}", point.raw);
    }
    let requests = &metrics[0];
    assert_eq!(
        requests.points[0].raw,
        concat!(
            "NumberDataPoints #0\n",
            "Data point attributes:\n",
            "     -> route: Str(/a)\n",
            "     -> ok: Bool(true)\n",
            "StartTimestamp: 2023-11-14 22:13:20 +0000 UTC\n",
            "Timestamp: 2023-11-14 22:13:21.5 +0000 UTC\n",
            "Value: 12.500000",
        )
    );
    let exponential = &metrics[6].points[0];
    assert!(exponential.raw.starts_with("ExponentialHistogramDataPoints #0\n"), "{}", exponential.raw);
    let buckets_and_exemplar = concat!(
        "Bucket [-2.000000, -1.414214), Count: 5\n",
        "Bucket [-1.414214, -1.000000), Count: 4\n",
        "Bucket [0, 0], Count: 2\n",
        "Bucket (1.414214, 2.000000], Count: 1\n",
        "Bucket (2.000000, 2.828427], Count: 2\n",
        "Bucket (2.828427, 4.000000], Count: 3\n",
        "Exemplars:\n",
        "Exemplar #0\n",
        "     -> Trace ID: 0102030405060708090a0b0c0d0e0f10\n",
        "     -> Span ID: 0102030405060708\n",
        "     -> Timestamp: 2023-11-14 22:13:21.5 +0000 UTC\n",
        "     -> Value: 7",
    );
    assert!(exponential.raw.ends_with(buckets_and_exemplar), "{}", exponential.raw);
    assert_eq!(exponential.zero_count(), Some(2));
    assert_eq!(metrics[5].points[0].zero_count(), None);
    // The exemplar's filtered attributes are in raw only.
    assert!(metrics[5].points[0].raw.ends_with("     -> FilteredAttributes:\n          -> user: Str(u1)"));

    // The helpers.
    assert_eq!(requests.resource_attr("host.cores"), Some("Int(2)"));
    assert_eq!(requests.point("route", "Str(/b)").map(|p| p.value), Some(Some(3.0)));
    assert_eq!(requests.point("route", "Str(/c)"), None);
    assert_eq!(requests.points[0].attr("ok"), Some("Bool(true)"));
    assert_eq!(requests.points[1].attr("ok"), None);
}

#[test]
fn metric_edge_cases() {
    let metrics = parse_metrics(STDERR);
    let [summary, values, empty] = &metrics[8..] else { panic!("{metrics:#?}") };
    for m in [summary, values, empty] {
        assert!(m.resource.is_empty(), "{m:#?}");
        // `InstrumentationScope  ` (two spaces): empty name and version.
        assert_eq!((m.scope_name.as_str(), m.scope_version.as_str()), ("", ""));
        assert_eq!(m.unit, "");
    }

    // Count and sum are parsed; quantiles stay in raw.
    assert_eq!(summary.data_type, "Summary");
    assert_eq!((summary.temporality.as_deref(), summary.monotonic), (None, None));
    let [p] = &summary.points[..] else { panic!("{summary:#?}") };
    assert_eq!((p.count, p.sum, p.value, p.min, p.max), (Some(4), Some(10.5), None, None, None));
    assert!(p.bucket_bounds.is_empty() && p.bucket_counts.is_empty() && p.exemplars.is_empty());
    assert_eq!((p.start.as_str(), p.time.as_str()), (EPOCH, T22));
    assert!(p.raw.ends_with("QuantileValue #1: Quantile 0.990000, Value 7.250000"), "{}", p.raw);

    // Values are not escaped: newlines continue on the next line.
    assert_eq!(values.description, "line one\nline two");
    assert_eq!(values.data_type, "Gauge");
    let [tiny, big, nan, neg_inf] = &values.points[..] else { panic!("{values:#?}") };
    assert_eq!(tiny.attributes, vec![kv("multi", "Str(a\nb)")]);
    // %f rounds 1e-7 to 0.
    assert_eq!(tiny.value, Some(0.0));
    assert!(tiny.raw.ends_with("Value: 0.000000"));
    // Ints print exactly, but an f64 cannot hold 2^53 + 1; raw keeps the digits.
    assert_eq!(big.value, Some(9007199254740992.0));
    assert!(big.raw.ends_with("Value: 9007199254740993"));
    assert!(nan.value.is_some_and(f64::is_nan) && nan.raw.ends_with("Value: NaN"));
    assert_eq!(neg_inf.value, Some(f64::NEG_INFINITY));
    assert!(neg_inf.raw.ends_with("Value: -Inf"));
    for p in [tiny, big, nan, neg_inf] {
        assert!(p.count.is_none() && p.sum.is_none() && p.exemplars.is_empty());
        assert_eq!(p.start, EPOCH);
    }

    // A sum without points still prints its descriptor; temporality 0 is "Unspecified".
    assert_eq!(empty.data_type, "Sum");
    assert_eq!((empty.temporality.as_deref(), empty.monotonic), (Some("Unspecified"), Some(false)));
    assert!(empty.points.is_empty());
}

#[test]
fn logs_with_every_field() {
    let logs = parse_logs(STDERR);
    assert_eq!(logs.len(), 6, "{logs:#?}");
    let guest = |severity_text: &str, severity_number, body: &str| CollectedLog {
        severity_text: severity_text.into(),
        severity_number,
        body: body.into(),
        resource: vec![kv("service.name", "Str(polytel-test)")],
        scope_name: "polytel.guest".into(),
        scope_version: "0.1.0".into(),
        ..Default::default()
    };
    let edge = |severity_text: &str, severity_number, body: &str| CollectedLog {
        severity_text: severity_text.into(),
        severity_number,
        body: body.into(),
        time: EPOCH.into(),
        observed_time: EPOCH.into(),
        ..Default::default()
    };
    let expected = vec![
        CollectedLog {
            attributes: vec![kv("k", "Int(42)"), kv("user", "Str(u1)")],
            trace_id: TRACE_ID.into(),
            span_id: SPAN_ID.into(),
            event_name: "app.started".into(),
            time: T20.into(),
            observed_time: "2023-11-14 22:13:20.1 +0000 UTC".into(),
            flags: 1,
            ..guest("INFO", 9, "Str(hello from guest)")
        },
        // Map bodies are JSON with the keys sorted (sent: msg, free).
        CollectedLog {
            time: EPOCH.into(),
            observed_time: "2023-11-14 22:13:20.2 +0000 UTC".into(),
            ..guest("ERROR", 17, r#"Map({"free":0,"msg":"disk full"})"#)
        },
        CollectedLog {
            attributes: vec![kv("exception.stacktrace", "Str(at a\nat b)")],
            time: "2023-11-14 22:13:20.3 +0000 UTC".into(),
            observed_time: "2023-11-14 22:13:20.3 +0000 UTC".into(),
            ..guest("", 0, "Str(first line\nsecond line)")
        },
        // Severity 30 has no name: `SeverityNumber: (30)`.
        edge("", 30, "Int(7)"),
        edge("FATAL", 21, r#"Slice(["x",false])"#),
        edge("", 0, "Empty()"),
    ];
    let mut without_raw = logs.clone();
    for log in &mut without_raw {
        log.raw.clear();
    }
    assert_eq!(without_raw, expected);

    assert_eq!(
        logs[0].raw,
        concat!(
            "LogRecord #0\n",
            "ObservedTimestamp: 2023-11-14 22:13:20.1 +0000 UTC\n",
            "Timestamp: 2023-11-14 22:13:20 +0000 UTC\n",
            "SeverityText: INFO\n",
            "SeverityNumber: Info(9)\n",
            "EventName: app.started\n",
            "Body: Str(hello from guest)\n",
            "Attributes:\n",
            "     -> k: Int(42)\n",
            "     -> user: Str(u1)\n",
            "Trace ID: 5b8efff798038103d269b633813fc60c\n",
            "Span ID: eee19b7ec3c1b174\n",
            "Flags: 1",
        )
    );
    assert!(logs[3].raw.contains("\nSeverityNumber: (30)\n"), "{}", logs[3].raw);
    for log in &logs {
        assert!(STDERR.contains(&format!("{}\n", log.raw)), "raw is not verbatim:\n{}", log.raw);
    }

    assert_eq!(logs[0].attr("k"), Some("Int(42)"));
    assert_eq!(logs[0].attr("missing"), None);
    assert_eq!(logs[0].resource_attr("service.name"), Some("Str(polytel-test)"));
}

#[test]
fn each_parser_takes_only_its_own_signal() {
    let spans = parse_spans(STDERR);
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!((spans[0].name.as_str(), spans[0].span_id.as_str()), ("handle-request", SPAN_ID));
    assert_eq!(spans[0].attr("http.method"), Some("Str(GET)"));

    let traces_only = &STDERR[..STDERR.find("\tMetrics\t").unwrap()];
    assert!(traces_only.contains("ResourceSpans #0"));
    assert!(parse_metrics(traces_only).is_empty() && parse_logs(traces_only).is_empty());
}

#[test]
fn dumps_still_being_written_are_left_out() {
    assert!(parse_metrics("").is_empty() && parse_logs("").is_empty());
    // Everything up to the last line before each dump's end marker.
    let cut_before_end = |header: &str, nth: usize| {
        let start = STDERR.match_indices(header).nth(nth).unwrap().0;
        let end = start + STDERR[start..].find("\n\t{").unwrap() + 1;
        &STDERR[..end]
    };
    assert!(parse_metrics(cut_before_end("\tResourceMetrics #0\n", 0)).is_empty());
    assert_eq!(parse_metrics(cut_before_end("\tResourceMetrics #0\n", 1)).len(), 8);
    assert!(parse_logs(cut_before_end("\tResourceLog #0\n", 0)).is_empty());
    assert_eq!(parse_logs(cut_before_end("\tResourceLog #0\n", 1)).len(), 3);
}

#[test]
fn a_live_collector_prints_what_the_fixture_shows() {
    let mut collector = Collector::start();
    for (path, body) in REQUESTS {
        let url = format!("{}{path}", collector.endpoint());
        let mut response = ureq::post(&url)
            .header("Content-Type", "application/json")
            .send(*body)
            .unwrap_or_else(|e| panic!("POST {url}: {e}\n--- collector stderr ---\n{}", collector.output()));
        let answer = response.body_mut().read_to_string().unwrap_or_default();
        assert_eq!((response.status().as_u16(), answer.as_str()), (200, r#"{"partialSuccess":{}}"#), "POST {url}");
    }

    let want_metrics = parse_metrics(STDERR);
    let metrics = collector.wait_for_metrics(|m| m.len() >= want_metrics.len(), Duration::from_secs(20));
    let logs = collector.wait_for_logs(6, Duration::from_secs(20));
    // Debug, not PartialEq: one fixture value is NaN.
    assert_eq!(
        format!("{metrics:#?}"),
        format!("{want_metrics:#?}"),
        "\n--- collector stderr ---\n{}",
        collector.output()
    );
    assert_eq!(logs, parse_logs(STDERR), "\n--- collector stderr ---\n{}", collector.output());
    assert_eq!(collector.spans(), parse_spans(STDERR));

    // The Collector methods agree with the parsers.
    assert_eq!(collector.logs(), logs);
    assert_eq!(format!("{:?}", collector.metrics()), format!("{metrics:?}"));
    let request_duration = metrics.iter().find(|m| m.name == "request.duration").unwrap();
    assert_eq!(request_duration.points[0].exemplars[0].trace_id, TRACE_ID);
}
