//! The core component through the host: bad input never traps and gets its
//! specified, counted behaviour with the rest of the batch intact; a trap is
//! recovered from; configuration errors and secrets are handled as specified.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use polytel::receiver::{Received, Receiver};
use polytel::runtime::{wit, CoreInstance};
use polytel::{Options, Telemetry};
use polytel_core::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use polytel_core::proto::tonic::common::v1::any_value::Value;
use polytel_core::proto::tonic::trace::v1::Span;
use prost::Message;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn core(options: &str, env: &str) -> CoreInstance {
    let config = format!(r#"{{"options":{options},"env":{env},"seed":"3","host":{{"sdk_language":"rust"}}}}"#);
    CoreInstance::create(&config).unwrap().unwrap()
}

fn otlp_core(env: &str) -> CoreInstance {
    core(r#"{"backend":"otlp","endpoint":"http://127.0.0.1:9"}"#, env)
}

fn record(span_id: u64, name: &str, extra: &str) -> String {
    format!(
        r#"{{"trace_id":"{TRACE}","span_id":"{span_id:016x}","name":{},"start":10,"end":20{extra}}}"#,
        serde_json::to_string(name).unwrap()
    )
}

/// Flushes and decodes every span the core hands over.
fn exported(core: &mut CoreInstance) -> Vec<Span> {
    let result = core.poll(1, true).unwrap();
    result
        .exports
        .iter()
        .flat_map(|e| {
            let body = base64::engine::general_purpose::STANDARD.decode(&e.body).unwrap();
            let req = ExportTraceServiceRequest::decode(&body[..]).unwrap();
            req.resource_spans.into_iter().flat_map(|rs| rs.scope_spans).flat_map(|ss| ss.spans).collect::<Vec<_>>()
        })
        .collect()
}

fn stats(core: &mut CoreInstance) -> serde_json::Value {
    serde_json::from_str(&core.stats().unwrap()).unwrap()
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

#[test]
fn odd_values_are_kept_as_the_protocol_allows() {
    let mut c = otlp_core("{}");
    let batch = format!(
        "[{},{}]",
        record(1, "", r#","attributes":{"nan":{"double":"NaN"},"inf":{"double":"Infinity"},"":1,"ok":true}"#),
        record(2, "kept", r#","parent_span_id":"00000000000000ff""#)
    );
    c.record_spans(&batch).unwrap();
    let spans = exported(&mut c);
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].name, "", "an empty name is kept");
    assert!(matches!(attr(&spans[0], "nan"), Some(Value::DoubleValue(d)) if d.is_nan()));
    assert_eq!(attr(&spans[0], "inf"), Some(&Value::DoubleValue(f64::INFINITY)));
    assert_eq!(spans[0].dropped_attributes_count, 1, "the empty key is dropped and counted");
    assert_eq!(
        spans[1].parent_span_id,
        vec![0, 0, 0, 0, 0, 0, 0, 0xff],
        "an unknown parent is kept: it may be elsewhere"
    );
    let s = stats(&mut c);
    assert_eq!(s["spans"]["limited"]["attributes_dropped"], 1);
}

#[test]
fn ten_megabyte_values_and_100k_attributes() {
    let big = "x".repeat(10 << 20);
    let many: Vec<String> = (0..100_000).map(|i| format!(r#""k{i}":{i}"#)).collect();
    let batch = format!(
        "[{},{}]",
        record(1, "big", &format!(r#","attributes":{{"big":"{big}"}}"#)),
        record(2, "many", &format!(r#","attributes":{{{}}}"#, many.join(",")))
    );

    let mut unlimited = otlp_core("{}");
    unlimited.record_spans(&batch).unwrap();
    let spans = exported(&mut unlimited);
    assert!(
        matches!(attr(&spans[0], "big"), Some(Value::StringValue(s)) if s.len() == 10 << 20),
        "no length limit by default"
    );
    assert_eq!((spans[1].attributes.len(), spans[1].dropped_attributes_count), (128, 99_872));

    let mut limited = otlp_core(r#"{"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT":"1024"}"#);
    limited.record_spans(&batch).unwrap();
    let spans = exported(&mut limited);
    assert!(matches!(attr(&spans[0], "big"), Some(Value::StringValue(s)) if s.len() == 1024));
    assert_eq!(stats(&mut limited)["spans"]["limited"]["values_truncated"], 1);
}

#[test]
fn malformed_records_are_dropped_alone_and_warned_once() {
    let mut c = otlp_core("{}");
    let batch = format!(
        "[{},{},{},{},{},{}]",
        record(1, "first", ""),
        record(1, "first again (ended twice)", ""),
        r#"{"trace_id":"zz","span_id":"0000000000000002","name":"bad ids","start":1,"end":2}"#,
        record(3, "bad parent", r#","parent_span_id":"nothex""#),
        record(4, "bad value", r#","attributes":{"k":{"bytes":"%%%"}}"#),
        record(5, "last", "")
    );
    c.record_spans(&batch).unwrap();
    c.record_spans("[1,2,").unwrap();
    let result = c.poll(1, true).unwrap();
    let names: Vec<String> = {
        let mut c2 = otlp_core("{}");
        c2.record_spans(&batch).unwrap();
        exported(&mut c2).into_iter().map(|s| s.name).collect()
    };
    assert_eq!(names, ["first", "bad parent", "last"]);
    let s = stats(&mut c);
    assert_eq!(s["spans"]["received"], 6);
    assert_eq!(s["spans"]["dropped"]["invalid"], 3, "two bad records and one bad batch");
    assert_eq!(s["spans"]["dropped"]["duplicate"], 1);
    assert_eq!(result.warnings.len(), 4, "{:?}", result.warnings);
    c.record_spans(&format!("[{}]", record(9, "bad", r#","kind":"x""#))).unwrap();
    assert!(c.poll(2, true).unwrap().warnings.is_empty(), "each kind of warning is shown once");
}

#[test]
fn garbage_environment_configures_with_warnings() {
    let env = r#"{"OTEL_BSP_MAX_QUEUE_SIZE":"-1","OTEL_TRACES_SAMPLER":"sometimes","OTEL_TRACES_SAMPLER_ARG":"lots",
        "OTEL_EXPORTER_OTLP_TIMEOUT":"soon","OTEL_PROPAGATORS":"b3,carrier-pigeon","OTEL_RESOURCE_ATTRIBUTES":"a=%zz",
        "OTEL_SDK_DISABLED":"yes","OTEL_SPAN_EVENT_COUNT_LIMIT":"1e3","OTEL_EXPORTER_OTLP_COMPRESSION":"brotli"}"#;
    let mut c = otlp_core(env);
    let plan: serde_json::Value = serde_json::from_str(&c.plan().unwrap()).unwrap();
    assert_eq!(plan["max_queue"], 2048);
    assert_eq!(plan["disabled"], false);
    assert_eq!(plan["sampler"]["parent_based"], true);
    let warnings = c.poll(1, false).unwrap().warnings;
    assert_eq!(warnings.len(), 9, "{warnings:#?}");
}

#[test]
fn bad_configuration_fails_with_one_sentence() {
    for (options, env, expect) in [
        (r#"{"endpoint":"ftp://x"}"#, "{}", "The option endpoint \"ftp://x\" is not an http:// or https:// URL."),
        ("{}", r#"{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":"collector:4318"}"#, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        (r#"{"protocol":"grpc"}"#, "{}", "http/protobuf"),
        (r#"{"headers":{"bad name":"secret-token"}}"#, "{}", "not a valid HTTP header name"),
        (r#"{"sampler_arg":1}"#, "{}", "The options are not valid"),
        (
            r#"{"backend":"honeycomb","honeycomb_api_key":"secret-token","endpoint":"http://proxy:1"}"#,
            "{}",
            "allow_insecure",
        ),
    ] {
        let config = format!(r#"{{"options":{options},"env":{env}}}"#);
        let err = CoreInstance::create(&config).unwrap().err().unwrap_or_else(|| panic!("{config} was accepted"));
        assert!(err.contains(expect), "{err}");
        assert!(err.ends_with('.'), "one sentence: {err}");
        assert!(!err.contains("secret-token"), "errors never show secrets: {err}");
    }
}

#[test]
fn secrets_are_masked_in_descriptions() {
    let mut c = core(
        r#"{"backend":"otlp","endpoint":"https://api.example.com","headers":{"x-honeycomb-team":"hcaik_0123456789abcdefghij"}}"#,
        "{}",
    );
    let described = c.describe().unwrap();
    assert!(!described.contains("0123456789"), "{described}");
    assert!(described.contains("hcai… (26 chars)"), "{described}");
}

#[test]
fn propagation_through_the_api() {
    let t = Telemetry::configure(Options {
        backend: Some("none".into()),
        env: Some(BTreeMap::new()),
        ..Default::default()
    })
    .unwrap();
    for bad in [
        "",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        let got = t.extract([("traceparent", bad), ("baggage", "a=%zz,=,")]).unwrap();
        assert_eq!(got.parent, None, "{bad:?}");
        assert!(got.baggage.is_empty());
    }
    let got = t
        .extract([
            ("TraceParent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("baggage", "user=al%20ice"),
        ])
        .unwrap();
    let parent = got.parent.unwrap();
    assert!(parent.remote && parent.sampled);
    assert_eq!(got.baggage, vec![("user".to_owned(), "al ice".to_owned())]);
    let child = t.span("downstream").parent(&parent).start();
    let headers = t.inject(child.context(), &got.baggage).unwrap();
    let traceparent = &headers.iter().find(|(k, _)| k == "traceparent").unwrap().1;
    assert!(traceparent.starts_with(&format!("00-{TRACE}-")) && traceparent.ends_with("-01"), "{traceparent}");
    assert!(!traceparent.contains("00f067aa0ba902b7"), "the child's own span id goes downstream");
    assert_eq!(headers.iter().find(|(k, _)| k == "baggage").unwrap().1, "user=al%20ice");
    t.shutdown(Duration::from_secs(1));
}

#[test]
fn a_trap_is_recovered_from_and_counted() {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = received.clone();
    let receiver = Receiver::start("127.0.0.1:0", move |r| sink.lock().unwrap().push(r)).unwrap();
    let t = Telemetry::configure(Options {
        backend: Some("otlp".into()),
        endpoint: Some(receiver.endpoint()),
        env: Some(BTreeMap::new()),
        core_memory_limit: Some(32 << 20),
        ..Default::default()
    })
    .unwrap();
    let mut huge = t.span("too big for the core's memory").start();
    huge.set_attribute("payload", "x".repeat(48 << 20));
    huge.end();
    assert!(t.force_flush(Duration::from_secs(10)));
    assert_eq!(t.stats().unwrap()["host"]["lost_to_traps"], 1);

    t.span("after the trap").start().end();
    assert!(t.force_flush(Duration::from_secs(10)));
    let names: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| r.traces.clone())
        .flat_map(|req| req.resource_spans.into_iter().flat_map(|rs| rs.scope_spans).flat_map(|ss| ss.spans))
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["after the trap"], "a fresh core instance carries on");
    t.shutdown(Duration::from_secs(1));
}

#[test]
fn unreachable_receiver_does_not_hold_up_shutdown() {
    let t = Telemetry::configure(Options {
        backend: Some("otlp".into()),
        endpoint: Some("http://127.0.0.1:9".into()),
        env: Some(BTreeMap::new()),
        ..Default::default()
    })
    .unwrap();
    for i in 0..10 {
        t.span(format!("s{i}")).start().end();
    }
    let started = std::time::Instant::now();
    let report = t.shutdown(Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert_eq!(report.abandoned, 10, "{report:?}");
    let stats = t.stats().unwrap();
    assert_eq!(stats["spans"]["dropped"]["shutdown"], 10, "{stats}");
}

#[test]
fn a_refused_connection_is_retried_later() {
    // A refused connection is a failure the core retries later, not a response.
    let mut c = otlp_core("{}");
    c.record_spans(&format!("[{}]", record(1, "a", ""))).unwrap();
    let e = c.poll(1, true).unwrap().exports.remove(0);
    c.report(e.id, &wit::Outcome::Failed("connection refused".into()), 2).unwrap();
    assert_eq!(stats(&mut c)["spans"]["retried"], 1);
    assert!(c.poll(3, false).unwrap().exports.is_empty(), "backoff: not due yet");
}

#[test]
fn bad_metric_and_log_input_never_traps() {
    let mut c = otlp_core("{}");
    let good = c.register_instrument(r#"{"name":"calls","kind":"counter"}"#).unwrap();
    let ids: Vec<u32> = [
        "",
        "[]",
        "null",
        r#"{"name":"x","kind":"histogram","boundaries":[1e308,-1e308,"Infinity"]}"#,
        &format!(r#"{{"name":"{}","kind":"gauge"}}"#, "n".repeat(100_000)),
        r#"{"name":"u","kind":"counter","unit":"ü"}"#,
    ]
    .iter()
    .map(|j| c.register_instrument(j).unwrap())
    .collect();
    assert_eq!(ids.len(), 6);
    // Many series past the cardinality limit, odd values, and garbage around them.
    let mut batch: Vec<String> =
        (0..5000).map(|i| format!(r#"{{"instrument":{good},"value":1,"attributes":{{"user":"u{i}"}}}}"#)).collect();
    batch.extend(ids.iter().map(|id| format!(r#"{{"instrument":{id},"value":"NaN"}}"#)));
    batch.push(format!(r#"{{"instrument":{good},"value":1e400}}"#));
    c.record_metrics(&format!("[{}]", batch.join(","))).unwrap();
    c.record_metrics("[1,2,").unwrap();
    c.record_metrics(&format!(r#"[{{"instrument":{},"value":1}}]"#, u32::MAX)).unwrap();
    c.record_logs(&format!(
        r#"[{{"observed":1,"body":{{"map":{{"k":{{"bytes":"AAA="}}}}}},"severity":-3}},{{"observed":2,"body":"{}"}},{{"nope":1}}]"#,
        "x".repeat(1 << 20)
    ))
    .unwrap();
    c.record_logs("{").unwrap();
    let result = c.poll(1, true).unwrap();
    assert!(result.exports.iter().any(|e| e.signal == wit::Signal::Metrics));
    assert!(result.exports.iter().any(|e| e.signal == wit::Signal::Logs));
    let stats: serde_json::Value = serde_json::from_str(&c.stats().unwrap()).unwrap();
    assert_eq!(stats["metrics"]["limited"]["series_overflowed"], 5000 - 1999, "{stats}");
    assert_eq!(stats["logs"]["exported"], 0, "not yet: the exports are pending");
    assert_eq!(stats["logs"]["dropped"]["invalid"], 2, "{stats}");
    let rendered = c.render_metrics(wit::MetricsFormat::Openmetrics, 2).unwrap();
    assert!(rendered.body.ends_with("# EOF\n"));
}

#[test]
fn response_headers_carry_a_redirect_into_the_core() {
    let answer = |status: u16, headers: &[(&str, &str)]| {
        wit::Outcome::Response(wit::HttpResponse {
            status,
            retry_after: None,
            body: String::new(),
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        })
    };
    let url = |e: &wit::Export| match &e.destination {
        wit::Destination::Http(r) => r.url.clone(),
        _ => panic!("not HTTP"),
    };
    // A 307 with a Location on the same origin: the same body, at once, to the new URL.
    let mut c = otlp_core("{}");
    c.record_spans(&format!("[{}]", record(1, "a", ""))).unwrap();
    let e = c.poll(1, true).unwrap().exports.remove(0);
    assert_eq!(url(&e), "http://127.0.0.1:9/v1/traces");
    c.report(e.id, &answer(307, &[("x-other", "1"), ("location", "/moved/v1/traces")]), 2).unwrap();
    let again = c.poll(2, false).unwrap().exports.remove(0);
    assert_eq!((again.id, &again.body, url(&again)), (e.id, &e.body, "http://127.0.0.1:9/moved/v1/traces".into()));
    c.report(again.id, &answer(200, &[("location", "/ignored")]), 3).unwrap();
    assert_eq!(stats(&mut c)["spans"]["exported"], 1);

    // Elsewhere: dropped and counted; without a Location: as before, final.
    for headers in [&[("location", "http://127.0.0.2:9/v1/traces")][..], &[]] {
        let mut c = otlp_core("{}");
        c.record_spans(&format!("[{}]", record(1, "a", ""))).unwrap();
        let e = c.poll(1, true).unwrap().exports.remove(0);
        c.report(e.id, &answer(308, headers), 2).unwrap();
        assert!(c.poll(3, true).unwrap().exports.is_empty(), "{headers:?}");
        assert_eq!(stats(&mut c)["spans"]["dropped"]["rejected"], 1, "{headers:?}");
    }
}
