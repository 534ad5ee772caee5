//! The azure-monitor backend through the pipeline's public surface: routes
//! from the connection string, envelopes in the export bodies, and the Track
//! API's answers (shared/reference/azure-monitor.md §4(c)): 200, 206 with item
//! errors (only the retryable items go again), retryable statuses with
//! Retry-After, drops that are counted, and redirects.

use base64::Engine as _;
use polytel_core::config::{Route, Signal};
use polytel_core::delivery::Outcome;
use polytel_core::pipeline::{Destination, Export, Pipeline};
use polytel_core::stats::DropReason;
use serde_json::{json, Value};

const MS: u64 = 1_000_000;
const S: u64 = 1000 * MS;
const T0: u64 = 1_767_268_800_000_000_000;
const KEY: &str = "5ec2e7a1-5ec2-4e7a-9ec2-5ec2e7a15ec2";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const INGESTION: &str = "https://westeurope-5.in.applicationinsights.azure.com";
const TRACK: &str = "https://westeurope-5.in.applicationinsights.azure.com/v2.1/track";

fn connection_string() -> String {
    format!("InstrumentationKey={KEY};IngestionEndpoint={INGESTION}/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/")
}

/// A pipeline to Azure Monitor with `extra` option members, and `env`.
fn pipeline_with(extra: Value, env: Value) -> Result<Pipeline, String> {
    let mut options = json!({"backend": "azure-monitor", "service_name": "checkout", "service_version": "2.0.1"});
    options.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    if env.get("APPLICATIONINSIGHTS_CONNECTION_STRING").is_none()
        && options.get("azure_monitor_connection_string").is_none()
    {
        options["azure_monitor_connection_string"] = json!(connection_string());
    }
    let input =
        json!({"options": options, "env": env, "seed": "7", "host": {"sdk_language": "python", "host_name": "box-1"}});
    Pipeline::from_json(&input.to_string())
}

fn pipeline(extra: Value) -> Pipeline {
    pipeline_with(extra, json!({})).unwrap()
}

/// Span `i` (span id i+1), a server span with one event when `i` is even.
fn span(i: u64) -> Value {
    let mut s = json!({
        "trace_id": TRACE, "span_id": format!("{:016x}", i + 1), "name": format!("s{i}"),
        "kind": 2, "start": T0 + i * MS, "end": T0 + i * MS + 1_500 * MS,
        "attributes": {"i": i}
    });
    if i.is_multiple_of(2) {
        s["events"] = json!([{"name": "checkpoint", "time": T0 + i * MS + 1}]);
    }
    s
}

fn spans(range: std::ops::Range<u64>) -> String {
    Value::Array(range.map(span).collect()).to_string()
}

fn envelopes(e: &Export) -> Vec<Value> {
    let raw = base64::engine::general_purpose::STANDARD.decode(&e.body).unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn names(e: &Export) -> Vec<String> {
    envelopes(e)
        .iter()
        .map(|v| {
            let base = &v["data"]["baseData"];
            base["name"].as_str().or(base["message"].as_str()).unwrap_or("").to_owned()
        })
        .collect()
}

fn response(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    Outcome::Response { status, retry_after: retry_after.map(str::to_owned), body: body.as_bytes().to_vec() }
}

fn ok() -> Outcome {
    response(200, None, r#"{"itemsReceived":1,"itemsAccepted":1,"errors":[]}"#)
}

#[test]
fn every_signal_routes_to_the_track_api() {
    let p = pipeline(json!({}));
    for signal in Signal::ALL {
        let routes = p.config().routes(signal);
        assert_eq!(routes.len(), 1, "{signal:?}");
        let Route::Azure(a) = &routes[0] else { panic!("{signal:?}: {:?}", routes[0]) };
        assert_eq!(a.url, TRACK);
        assert_eq!(a.live_endpoint, "https://westeurope.livediagnostics.monitor.azure.com");
        assert_eq!(a.instrumentation_key.expose(), KEY);
    }
    let plan: Value = serde_json::from_str(&p.plan()).unwrap();
    assert_eq!((&plan["traces"], &plan["metrics"], &plan["logs"]), (&json!(true), &json!(true), &json!(true)));
    let described: Value = serde_json::from_str(&p.describe()).unwrap();
    assert_eq!(described["temporality"], "delta", "§4(b): delta for counters and histograms");
    assert_eq!(described["traces"][0]["exporter"], "azure-monitor");
    assert_eq!(described["traces"][0]["url"], TRACK);
    assert_eq!(described["traces"][0]["instrumentation_key"], "5ec2… (36 chars)");
    assert!(!p.describe().contains(KEY), "describe shows the key");
    assert!(!format!("{:?}", p.config().routes(Signal::Logs)).contains(KEY), "Debug shows the key");
    let mut p = pipeline(json!({}));
    p.record_spans(&spans(0..1));
    let r = p.poll(T0, true);
    assert!(String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&r.exports[0].body).unwrap())
        .unwrap()
        .contains(KEY));
    let shown = format!("{r:?}");
    assert!(!shown.contains(&r.exports[0].body[..40]) && shown.contains("bytes>"), "the body carries the key: {shown}");

    // From the environment; an endpoint replaces the IngestionEndpoint.
    let p = pipeline_with(
        json!({"endpoint": "http://127.0.0.1:9/"}),
        json!({"APPLICATIONINSIGHTS_CONNECTION_STRING": format!("InstrumentationKey={KEY}")}),
    )
    .unwrap();
    let Route::Azure(a) = &p.config().routes(Signal::Traces)[0] else { panic!() };
    assert_eq!(a.url, "http://127.0.0.1:9/v2.1/track");
}

#[test]
fn configuration_errors_are_one_sentence_without_the_key() {
    let e =
        pipeline_with(json!({"azure_monitor_connection_string": "InstrumentationKey=SECRET-NOT-A-GUID"}), json!({}))
            .err()
            .unwrap();
    assert!(e.contains("not a GUID") && e.contains("azure_monitor_connection_string") && !e.contains("SECRET"), "{e}");
    let e = pipeline_with(json!({"azure_monitor_connection_string": ";"}), json!({})).err().unwrap();
    assert!(e.contains("no InstrumentationKey"), "{e}");
    // The key is a credential: not over plain http to another machine.
    let e = pipeline_with(json!({"endpoint": "http://ingest.internal"}), json!({})).err().unwrap();
    assert!(e.contains("plain http") && e.contains("allow_insecure") && !e.contains(KEY), "{e}");
    assert!(pipeline_with(json!({"endpoint": "http://ingest.internal", "allow_insecure": true}), json!({})).is_ok());
}

#[test]
fn spans_go_as_one_json_array_of_envelopes() {
    let mut p = pipeline(json!({}));
    p.record_spans(&spans(0..2));
    let r = p.poll(T0, true);
    assert_eq!(r.exports.len(), 1);
    let e = &r.exports[0];
    let Destination::Http { url, headers, .. } = &e.destination else { panic!("http expected") };
    assert_eq!(url, TRACK);
    let headers: Vec<_> = headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
    assert_eq!(headers, [("Content-Type", "application/json"), ("Accept", "application/json")]);
    assert_eq!(e.items, 2, "items are spans; the event's envelope rides along");
    let v = envelopes(e);
    assert_eq!(names(e), ["s0", "checkpoint", "s1"]);
    assert_eq!(v[0]["name"], "Microsoft.ApplicationInsights.Request");
    assert_eq!(v[1]["name"], "Microsoft.ApplicationInsights.Message");
    assert_eq!(v[0]["iKey"], KEY);
    assert_eq!(v[0]["time"], "2026-01-01T12:00:00.000000Z");
    assert_eq!(v[0]["sampleRate"], 100.0);
    assert_eq!(v[0]["data"]["baseData"]["duration"], "0.00:00:01.500");
    let tags = &v[0]["tags"];
    assert_eq!(tags["ai.operation.id"], TRACE);
    assert_eq!(tags["ai.cloud.role"], "checkout");
    assert_eq!(tags["ai.cloud.roleInstance"], "box-1");
    assert_eq!(tags["ai.application.ver"], "2.0.1");
    assert!(tags["ai.internal.sdkVersion"].as_str().unwrap().contains("_py:polytel"), "{tags}");
    assert_eq!(v[1]["tags"]["ai.operation.parentId"], "0000000000000001");
    p.report(e.id, &ok(), T0);
    let s = p.stats();
    assert_eq!((s.spans.exported, s.spans.pending, s.exports.succeeded), (2, 0, 1));
    assert!(p.poll(T0 + 60 * S, true).exports.is_empty(), "nothing is sent twice after a 200");
}

#[test]
fn a_partial_success_resends_only_the_retryable_envelopes() {
    let mut p = pipeline(json!({}));
    // Envelopes: s0, checkpoint, s1, s2, checkpoint, s3, s4, checkpoint, s5.
    p.record_spans(&spans(0..6));
    let first = p.poll(T0, true).exports.remove(0);
    assert_eq!(names(&first), ["s0", "checkpoint", "s1", "s2", "checkpoint", "s3", "s4", "checkpoint", "s5"]);
    let body = r#"{"itemsReceived":9,"itemsAccepted":4,"errors":[
        {"index":2,"statusCode":429,"message":"Throttled"},
        {"index":4,"statusCode":503,"message":"Unavailable"},
        {"index":3,"statusCode":400,"message":"Field 'name' is required"},
        {"index":5,"statusCode":500,"message":"Telemetry sampled out."},
        {"index":8,"statusCode":500,"message":"Internal"}]}"#;
    p.report(first.id, &response(206, Some("5"), body), T0);
    let s = p.stats();
    assert_eq!(s.spans.dropped(DropReason::PartialSuccess), 1, "s2 was rejected");
    assert_eq!(s.spans.dropped(DropReason::SampledOut), 1, "s3 was sampled out");
    assert_eq!((s.spans.exported, s.spans.retried, s.spans.pending), (2, 2, 2), "s0 and s4 are in; s1 and s5 wait");
    assert!(p.poll(T0 + 4 * S, false).exports.is_empty(), "Retry-After is honoured");
    let again = p.poll(T0 + 5 * S, false).exports.remove(0);
    assert_eq!(again.id, first.id, "a retried export keeps its id");
    assert_eq!(names(&again), ["s1", "checkpoint", "s5"]);
    assert_eq!(again.items, 2);
    // The resent envelopes are the ones sent before, byte for byte.
    let before = envelopes(&first);
    assert_eq!(envelopes(&again), [before[2].clone(), before[4].clone(), before[8].clone()]);
    p.report(again.id, &ok(), T0 + 5 * S);
    let s = p.stats();
    assert_eq!((s.spans.exported, s.spans.pending), (4, 0));
    assert!(p.poll(T0 + 600 * S, true).exports.is_empty(), "nothing is sent twice after a 200");
    let warnings = p.poll(T0 + 600 * S, true).warnings;
    assert!(warnings.is_empty());
}

#[test]
fn retryable_statuses_back_off_until_attempts_run_out() {
    for status in [401, 403, 408, 429, 500, 502, 503, 504] {
        let mut p = pipeline(json!({}));
        p.record_spans(&spans(0..1));
        let mut now = T0;
        let mut attempts = 0;
        while let Some(e) = p.poll(now, false).exports.into_iter().next().or_else(|| {
            now += 60 * S;
            p.poll(now, false).exports.into_iter().next()
        }) {
            attempts += 1;
            p.report(e.id, &response(status, None, ""), now);
        }
        assert_eq!(attempts, 6, "{status}");
        let s = p.stats();
        assert_eq!((s.spans.dropped(DropReason::RetriesExhausted), s.spans.retried), (1, 5), "{status}");
    }
}

#[test]
fn quota_throttling_and_bad_data_are_dropped_and_counted() {
    for (status, reason) in [(400, DropReason::Rejected), (402, DropReason::Throttled), (439, DropReason::Throttled)] {
        let mut p = pipeline(json!({}));
        p.record_spans(&spans(0..3));
        let e = p.poll(T0, true).exports.remove(0);
        p.report(e.id, &response(status, None, ""), T0);
        let s = p.stats();
        assert_eq!((s.spans.dropped(reason), s.spans.retried, s.spans.pending), (3, 0, 0), "{status}");
        assert!(p.poll(T0 + 600 * S, true).exports.is_empty(), "{status} is not retried");
    }
}

#[test]
fn redirects_are_followed_only_within_azure() {
    let mut p = pipeline(json!({}));
    p.record_spans(&spans(0..1));
    let e = p.poll(T0, true).exports.remove(0);
    let moved = "https://northeurope-2.in.applicationinsights.azure.com/";
    p.report(e.id, &Outcome::Redirect { status: 308, location: moved.into() }, T0);
    let again = p.poll(T0, false).exports.remove(0);
    let Destination::Http { url, .. } = &again.destination else { panic!() };
    assert_eq!(url, "https://northeurope-2.in.applicationinsights.azure.com/v2.1/track");
    assert_eq!((again.id, &again.body), (e.id, &e.body));
    p.report(again.id, &ok(), T0);
    assert_eq!(p.stats().spans.exported, 1);
    // Later exports of every signal go to the new host.
    p.record_logs(&json!([{"observed": T0, "body": "x"}]).to_string());
    let log = p.poll(T0 + S, true).exports.into_iter().find(|e| e.signal == Signal::Logs).unwrap();
    let Destination::Http { url, .. } = &log.destination else { panic!() };
    assert!(url.starts_with("https://northeurope-2."), "{url}");

    // Outside Application Insights' domains: dropped, counted, said.
    let mut p = pipeline(json!({}));
    p.record_spans(&spans(0..2));
    let e = p.poll(T0, true).exports.remove(0);
    p.report(e.id, &Outcome::Redirect { status: 307, location: "https://collector.example/".into() }, T0);
    assert_eq!(p.stats().spans.dropped(DropReason::Rejected), 2);
    let w = p.poll(T0, false).warnings;
    assert!(w.iter().any(|w| w.contains("collector.example") && w.contains("does not follow")), "{w:?}");

    // A redirect the host did not pass on (no Location): dropped with advice.
    let mut p = pipeline(json!({}));
    p.record_spans(&spans(0..1));
    let e = p.poll(T0, true).exports.remove(0);
    p.report(e.id, &response(308, None, ""), T0);
    assert_eq!(p.stats().spans.dropped(DropReason::Rejected), 1);
    let w = p.poll(T0, false).warnings;
    assert!(w.iter().any(|w| w.contains("IngestionEndpoint")), "{w:?}");
}

#[test]
fn too_large_splits_the_envelopes_in_halves() {
    let mut p = pipeline(json!({}));
    p.record_spans(&spans(0..3));
    let e = p.poll(T0, true).exports.remove(0);
    p.report(e.id, &response(413, None, ""), T0);
    let parts = p.poll(T0, false).exports;
    assert_eq!(parts.iter().map(names).collect::<Vec<_>>(), [vec!["s0", "checkpoint"], vec!["s1", "s2", "checkpoint"]]);
    assert_eq!(parts.iter().map(|e| e.items).collect::<Vec<_>>(), [1, 2]);
}

fn log_record(severity: u8, extra: Value) -> Value {
    let mut r = json!({"time": T0, "observed": T0, "severity": severity, "body": "payment failed",
        "trace_id": TRACE, "span_id": "00f067aa0ba902b7"});
    r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    r
}

#[test]
fn logs_become_messages_exceptions_and_events() {
    let mut p = pipeline(json!({}));
    p.record_logs(
        &json!([
            log_record(17, json!({"attributes": {"order": 7}})),
            log_record(21, json!({"attributes": {"exception.type": "KeyError", "exception.message": "'sku'"}})),
            log_record(9, json!({"attributes": {"microsoft.custom_event.name": "checkout.done"}})),
        ])
        .to_string(),
    );
    let e = p.poll(T0, true).exports.into_iter().find(|e| e.signal == Signal::Logs).unwrap();
    let v = envelopes(&e);
    assert_eq!(e.items, 3);
    let kinds: Vec<_> = v.iter().map(|e| e["data"]["baseType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["MessageData", "ExceptionData", "EventData"]);
    assert_eq!(
        v[0]["data"]["baseData"],
        json!({"ver": 2, "message": "payment failed", "severityLevel": 3, "properties": {"order": "7"}})
    );
    assert_eq!(v[1]["data"]["baseData"]["severityLevel"], 4);
    assert_eq!(v[1]["data"]["baseData"]["exceptions"][0]["typeName"], "KeyError");
    assert_eq!(v[2]["data"]["baseData"]["name"], "checkout.done");
    for e in &v {
        assert_eq!(e["tags"]["ai.operation.id"], TRACE);
        assert_eq!(e["tags"]["ai.operation.parentId"], "00f067aa0ba902b7");
    }
}

#[test]
fn counters_are_sent_as_deltas() {
    let mut p = pipeline(json!({}));
    let c = p.register_instrument(r#"{"name":"agent.runs","kind":"counter"}"#);
    let h = p.register_instrument(r#"{"name":"llm.latency","kind":"histogram"}"#);
    let measure =
        |id: u32, v: f64| json!({"instrument": id, "value": v, "attributes": {"agent": "planner"}, "time": T0});
    p.record_metrics(&json!([measure(c, 2.0), measure(c, 3.0), measure(h, 0.5), measure(h, 1.5)]).to_string());
    let first = p.poll(T0 + S, true).exports.into_iter().find(|e| e.signal == Signal::Metrics).unwrap();
    let points = |e: &Export| -> Vec<Value> {
        envelopes(e)
            .iter()
            .map(|v| {
                assert_eq!(v["name"], "Microsoft.ApplicationInsights.Metric");
                assert_eq!(v["data"]["baseData"]["properties"], json!({"agent": "planner"}));
                v["data"]["baseData"]["metrics"][0].clone()
            })
            .collect()
    };
    assert_eq!(
        points(&first),
        [
            json!({"name": "agent.runs", "value": 5.0, "count": 1}),
            json!({"name": "llm.latency", "value": 2.0, "count": 2, "min": 0.5, "max": 1.5})
        ]
    );
    p.report(first.id, &ok(), T0 + S);
    p.record_metrics(&json!([measure(c, 4.0)]).to_string());
    let second = p.poll(T0 + 2 * S, true).exports.into_iter().find(|e| e.signal == Signal::Metrics).unwrap();
    assert_eq!(points(&second), [json!({"name": "agent.runs", "value": 4.0, "count": 1})], "a delta, not 9");
}

#[test]
fn the_sampler_rate_becomes_the_sample_rate() {
    // (sampler, its argument) → the sampleRate of a span without _MS.sampleRate.
    for (sampler, arg, expected) in [
        ("traceidratio", "0.25", 25.0),
        ("traceidratio", "0.1", 10.0),
        ("always_on", "", 100.0),
        // A parent-based sampler may follow a decision made elsewhere, at another rate.
        ("parentbased_traceidratio", "0.25", 100.0),
    ] {
        let mut p = pipeline(json!({"sampler": sampler, "sampler_arg": arg}));
        let mut s = span(1);
        p.record_spans(&json!([s.clone()]).to_string());
        s["span_id"] = json!("00000000000000ff");
        s["attributes"] = json!({"_MS.sampleRate": 12.5});
        p.record_spans(&json!([s]).to_string());
        let v = envelopes(&p.poll(T0, true).exports[0]);
        assert_eq!(v[0]["sampleRate"].as_f64(), Some(expected), "{sampler} {arg}");
        assert_eq!(v[1]["sampleRate"].as_f64(), Some(12.5), "the span's own rate wins");
    }
}

#[test]
fn json_lines_carry_azure_correlation_with_the_azure_preset() {
    let record =
        json!([{"observed": T0, "severity": 9, "body": "hi", "trace_id": TRACE, "span_id": "00f067aa0ba902b7"}])
            .to_string();
    let mut p = pipeline(json!({"logs_exporter": "jsonl"}));
    p.record_logs(&record);
    let line = p.poll(T0, true).exports.into_iter().find(|e| e.destination == Destination::Stdout).unwrap().body;
    let v: Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!((&v["operation_Id"], &v["operation_ParentId"]), (&json!(TRACE), &json!("00f067aa0ba902b7")));

    let input = json!({"options": {"backend": "console", "logs_exporter": "jsonl"}, "env": {}, "host": {}});
    let mut p = Pipeline::from_json(&input.to_string()).unwrap();
    p.record_logs(&record);
    let line = p.poll(T0, true).exports.into_iter().find(|e| e.signal == Signal::Logs).unwrap().body;
    assert!(!line.contains("operation_Id") && line.contains("trace_id"), "{line}");
}
