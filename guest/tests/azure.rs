//! The azure-monitor backend through the pipeline's public surface: routes
//! from the connection string, envelopes in the export bodies, and the Track
//! API's answers (shared/reference/azure-monitor.md §4(c)): 200, 206 with item
//! errors (only the retryable items go again), retryable statuses with
//! Retry-After, drops that are counted, and redirects; and Live Metrics
//! (§4(e)): pings, posts and their answers' x-ms-qps-* headers, apart from
//! exports. Tests of exports switch Live Metrics off (it is on by default),
//! so that only exports are seen.

use base64::Engine as _;
use polytel_core::config::{Route, Signal};
use polytel_core::delivery::Outcome;
use polytel_core::pipeline::{Destination, Export, Pipeline, PollResult};
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

/// A pipeline to Azure Monitor with `extra` option members, and `env`;
/// Live Metrics off unless `extra` says otherwise.
fn pipeline_with(extra: Value, env: Value) -> Result<Pipeline, String> {
    let mut options = json!({"backend": "azure-monitor", "service_name": "checkout", "service_version": "2.0.1",
        "azure_monitor_live_metrics": "false"});
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
fn retryable_statuses_back_off_until_the_retry_budget_is_spent() {
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
        // A poll a minute: attempts at 0, 60 and 120 s; the next would be past the two-minute budget.
        assert_eq!(attempts, 3, "{status}");
        let s = p.stats();
        assert_eq!((s.spans.dropped(DropReason::RetriesExhausted), s.spans.retried), (1, 2), "{status}");
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

// Live Metrics (QuickPulse, §4(e)).

const LIVE: &str = "https://westeurope.livediagnostics.monitor.azure.com";

fn live_pipeline() -> Pipeline {
    pipeline(json!({"azure_monitor_live_metrics": "true"}))
}

fn url_of(e: &Export) -> &str {
    let Destination::Http { url, .. } = &e.destination else { panic!("http expected: {e:?}") };
    url
}

fn is_live(e: &Export) -> bool {
    url_of(e).contains("/QuickPulseService.svc/")
}

/// The Live Metrics requests of a poll: "ping" or "post" and the export.
fn live_of(r: &PollResult) -> Vec<(&'static str, Export)> {
    r.exports
        .iter()
        .filter(|e| e.destination != Destination::Stdout && is_live(e))
        .map(|e| {
            let url = url_of(e);
            let mode = if url.contains("/QuickPulseService.svc/ping?") { "ping" } else { "post" };
            (mode, e.clone())
        })
        .collect()
}

fn body_of(e: &Export) -> Value {
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(&e.body).unwrap()).unwrap()
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

const SUB: &[(&str, &str)] = &[("x-ms-qps-subscribed", "true")];
const UNSUB: &[(&str, &str)] = &[("x-ms-qps-subscribed", "false")];
const NONE: &[(&str, &str)] = &[];

/// One poll at `at` seconds after T0: the Live Metrics request it gives
/// (`None`: none), answered with `status` (0: no answer) and `headers`.
struct Step {
    at: u64,
    sent: Option<&'static str>,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
}

const fn step(
    at: u64,
    sent: Option<&'static str>,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
) -> Step {
    Step { at, sent, status, headers }
}

/// Runs `steps` through `p`; returns the requests sent, with when, and the warnings.
fn run(p: &mut Pipeline, steps: &[Step]) -> (Vec<(u64, Export)>, Vec<String>) {
    let mut sent = Vec::new();
    let mut warnings = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let now = T0 + s.at * S;
        let r = p.poll(now, false);
        warnings.extend(r.warnings.iter().cloned());
        let live = live_of(&r);
        assert_eq!(
            live.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
            s.sent.into_iter().collect::<Vec<_>>(),
            "step {i} at {}s",
            s.at
        );
        if let Some((_, e)) = live.into_iter().next() {
            assert!(r.next_poll > now, "step {i}: nothing more is due while the request is out");
            assert_eq!(e.items, 0, "step {i}: no items");
            if s.status == 0 {
                p.report(e.id, &Outcome::Failed("connection refused".into()), now);
            } else {
                p.report_http(e.id, s.status, None, &h(s.headers), vec![], now);
            }
            sent.push((s.at, e));
        }
    }
    warnings.extend(p.poll(T0 + steps.last().map_or(0, |s| s.at) * S, false).warnings);
    (sent, warnings)
}

#[test]
fn live_metrics_pings_every_5_s_until_subscribed_then_posts_every_second() {
    let mut p = live_pipeline();
    let (sent, warnings) = run(
        &mut p,
        &[
            step(0, Some("ping"), 200, UNSUB),
            step(1, None, 0, NONE),
            step(4, None, 0, NONE),
            step(5, Some("ping"), 200, NONE),
            step(9, None, 0, NONE),
            step(10, Some("ping"), 200, SUB),
            step(10, None, 0, NONE),
            step(11, Some("post"), 200, NONE),
            step(12, Some("post"), 200, SUB),
            step(13, Some("post"), 200, UNSUB),
            step(14, None, 0, NONE),
            step(17, None, 0, NONE),
            step(18, Some("ping"), 200, NONE),
            step(23, Some("ping"), 200, NONE),
        ],
    );
    let (_, ping) = &sent[0];
    let Destination::Http { url, headers, timeout_ms } = &ping.destination else { panic!() };
    assert_eq!(url, &format!("{LIVE}/QuickPulseService.svc/ping?api-version=2024-04-01-preview&ikey={KEY}"));
    assert!(*timeout_ms <= 2_000, "{timeout_ms}");
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.expose().to_owned());
    assert_eq!(header("Content-Type").as_deref(), Some("application/json"));
    // .NET ticks of 2026-01-01T12:00:00Z.
    assert_eq!(header("x-ms-qps-transmission-time").as_deref(), Some("639028656000000000"));
    assert_eq!(header("x-ms-qps-machine-name").as_deref(), Some("box-1"));
    assert_eq!(header("x-ms-qps-instance-name").as_deref(), Some("box-1"));
    assert_eq!(header("x-ms-qps-role-name").as_deref(), Some("checkout"));
    assert_eq!(header("x-ms-qps-invariant-version").as_deref(), Some("1"));
    assert_eq!(header("x-ms-qps-configuration-etag").as_deref(), Some(""));
    let stream = header("x-ms-qps-stream-id").unwrap();
    assert!(stream.len() == 32 && stream.bytes().all(|b| b.is_ascii_hexdigit()), "{stream}");
    let point = body_of(ping);
    assert!(point.is_object(), "a ping carries one MonitoringDataPoint: {point}");
    assert_eq!(
        (&point["StreamId"], &point["RoleName"], &point["Instance"]),
        (&json!(stream), &json!("checkout"), &json!("box-1"))
    );
    assert_eq!(point["Timestamp"], "2026-01-01T12:00:00.000000Z");
    assert_eq!(point["Metrics"], json!([]));
    // Posts: an array of one point, to /post.
    let (at, post) = &sent[3];
    assert_eq!(*at, 11);
    assert!(
        url_of(post).starts_with(&format!("{LIVE}/QuickPulseService.svc/post?api-version=2024-04-01-preview&ikey="))
    );
    assert_eq!(body_of(post).as_array().map(Vec::len), Some(1));
    // Not exports: no items, not counted, no warnings.
    let s = p.stats();
    assert_eq!((s.exports.sent, s.exports.succeeded, s.exports.failed), (0, 0, 0));
    assert!(warnings.is_empty(), "{warnings:?}");
    // The key is masked wherever a request is printed.
    let shown = format!("{:?}", sent.iter().map(|(_, e)| e).collect::<Vec<_>>());
    assert!(!shown.contains(KEY) && shown.contains("ikey=***"), "{shown}");
}

#[test]
fn live_metrics_posts_count_requests_failures_durations_dependencies_and_exceptions() {
    let mut p = live_pipeline();
    run(&mut p, &[step(0, Some("ping"), 200, SUB)]);
    let span = |id: u64, kind: u8, ms: u64, extra: Value| {
        let mut s = json!({"trace_id": TRACE, "span_id": format!("{id:016x}"), "name": "op", "kind": kind,
            "start": T0, "end": T0 + ms * MS});
        s.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        s
    };
    p.record_spans(
        &json!([
            span(1, 2, 1500, json!({})),
            span(2, 2, 500, json!({"status": {"code": 2, "message": "boom"}})),
            span(3, 3, 10, json!({})),
            span(
                4,
                3,
                10,
                json!({"events": [{"name": "exception", "time": T0,
                "attributes": {"exception.type": "ValueError"}}]})
            ),
            span(5, 1, 10, json!({})),
            span(6, 2, 300, json!({"attributes": {"http.request.method": "GET", "http.response.status_code": 404}})),
        ])
        .to_string(),
    );
    p.record_logs(
        &json!([log_record(17, json!({"attributes": {"exception.type": "KeyError"}})), log_record(9, json!({}))])
            .to_string(),
    );
    // A post covers the second since the subscription.
    let r = p.poll(T0 + S, false);
    let live = live_of(&r);
    assert_eq!(live.len(), 1);
    assert!(is_live(r.exports.last().unwrap()), "Live Metrics comes after the exports");
    let (mode, post) = &live[0];
    assert_eq!(*mode, "post");
    let metrics = |e: &Export| -> Vec<(String, f64, u64)> {
        let body = body_of(e);
        body[0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (m["Name"].as_str().unwrap().to_owned(), m["Value"].as_f64().unwrap(), m["Weight"].as_u64().unwrap())
            })
            .collect()
    };
    let named = |rows: &[(&str, f64, u64)]| -> Vec<(String, f64, u64)> {
        rows.iter().map(|(n, v, w)| ((*n).to_owned(), *v, *w)).collect()
    };
    assert_eq!(
        metrics(post),
        named(&[
            (r"\ApplicationInsights\Requests/Sec", 3.0, 1),
            (r"\ApplicationInsights\Request Duration", 2300.0 / 3.0, 3),
            (r"\ApplicationInsights\Requests Failed/Sec", 2.0, 1),
            (r"\ApplicationInsights\Dependency Calls/Sec", 3.0, 1),
            (r"\ApplicationInsights\Exceptions/Sec", 2.0, 1),
        ])
    );
    // The exports are what they would be without Live Metrics, and only they count.
    let sent = r.exports.iter().filter(|e| !is_live(e)).count() as u64;
    assert_eq!(p.stats().exports.sent, sent);
    p.report_http(post.id, 200, None, &[], vec![], T0 + S);
    // The next post covers only what ended since the last one: nothing.
    let r = p.poll(T0 + 2 * S, false);
    let live = live_of(&r);
    assert_eq!(
        metrics(&live[0].1),
        named(&[
            (r"\ApplicationInsights\Requests/Sec", 0.0, 1),
            (r"\ApplicationInsights\Request Duration", 0.0, 1),
            (r"\ApplicationInsights\Requests Failed/Sec", 0.0, 1),
            (r"\ApplicationInsights\Dependency Calls/Sec", 0.0, 1),
            (r"\ApplicationInsights\Exceptions/Sec", 0.0, 1),
        ])
    );
}

#[test]
fn live_metrics_honours_the_polling_interval_hint_and_slows_down_when_dead() {
    const HINT: &[(&str, &str)] = &[("x-ms-qps-service-polling-interval-hint", "2000")];
    let mut p = live_pipeline();
    run(
        &mut p,
        &[
            step(0, Some("ping"), 200, HINT),
            step(1, None, 0, NONE),
            step(2, Some("ping"), 200, NONE),
            step(4, Some("ping"), 200, &[("x-ms-qps-service-polling-interval-hint", "soon")]),
            step(8, None, 0, NONE),
            step(9, Some("ping"), 200, NONE),
        ],
    );
    // A dead endpoint: pinged every 5 s for a minute, then every minute;
    // never retried like an export, never counted, said once without the key.
    let mut p = live_pipeline();
    let mut steps = vec![step(0, Some("ping"), 0, NONE)];
    steps.extend((1..=12).map(|i| step(i * 5, Some("ping"), 0, NONE)));
    steps.extend([
        step(61, None, 0, NONE),
        step(119, None, 0, NONE),
        step(120, Some("ping"), 503, NONE),
        step(179, None, 0, NONE),
        step(180, Some("ping"), 0, NONE),
    ]);
    let (_, w) = run(&mut p, &steps);
    let s = p.stats();
    assert_eq!((s.exports.sent, s.exports.failed, s.spans.retried), (0, 0, 0));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("westeurope.livediagnostics.monitor.azure.com") && !w[0].contains(KEY), "{w:?}");
}

#[test]
fn live_metrics_follows_endpoint_redirects_within_azure_only() {
    const NORTH: &[(&str, &str)] = &[
        ("x-ms-qps-service-endpoint-redirect-v2", "https://northeurope.livediagnostics.monitor.azure.com/"),
        ("x-ms-qps-configuration-etag", "etag-1"),
    ];
    const EVIL: &[(&str, &str)] = &[("x-ms-qps-service-endpoint-redirect-v2", "https://collector.example/")];
    const PLAIN: &[(&str, &str)] = &[("x-ms-qps-service-endpoint-redirect-v2", "http://rt.services.visualstudio.com/")];
    let mut p = live_pipeline();
    let (sent, w) = run(
        &mut p,
        &[
            step(0, Some("ping"), 200, NORTH),
            step(5, Some("ping"), 200, EVIL),
            step(10, Some("ping"), 200, PLAIN),
            step(15, Some("ping"), 200, NONE),
        ],
    );
    let hosts: Vec<&str> =
        sent.iter().map(|(_, e)| url_of(e).split("/QuickPulseService.svc").next().unwrap()).collect();
    assert_eq!(
        hosts,
        [
            LIVE,
            "https://northeurope.livediagnostics.monitor.azure.com",
            "https://northeurope.livediagnostics.monitor.azure.com",
            "https://northeurope.livediagnostics.monitor.azure.com"
        ]
    );
    let Destination::Http { headers, .. } = &sent[1].1.destination else { panic!() };
    let etag = headers.iter().find(|(k, _)| k == "x-ms-qps-configuration-etag").map(|(_, v)| v.expose());
    assert_eq!(etag, Some("etag-1"), "the service's etag is echoed");
    assert!(
        w.iter().any(|w| w.contains("northeurope.livediagnostics.monitor.azure.com")) && !w.concat().contains(KEY),
        "{w:?}"
    );
    // Exports keep their own endpoint.
    p.record_spans(&spans(0..1));
    let r = p.poll(T0 + 20 * S, true);
    assert!(r.exports.iter().filter(|e| !is_live(e)).all(|e| url_of(e) == TRACK));
}

#[test]
fn live_metrics_is_on_by_default_and_off_by_setting() {
    // On by default: the first poll pings.
    let input = json!({"options": {"backend": "azure-monitor", "azure_monitor_connection_string": connection_string()},
        "env": {}, "host": {"host_name": "box-1"}});
    let mut p = Pipeline::from_json(&input.to_string()).unwrap();
    let described: Value = serde_json::from_str(&p.describe()).unwrap();
    assert_eq!(
        (&described["traces"][0]["live_metrics"], &described["traces"][0]["live_endpoint"]),
        (&json!("on"), &json!(LIVE))
    );
    assert!(!p.describe().contains(KEY));
    assert_eq!(live_of(&p.poll(T0, false)).len(), 1);
    // Not while flushing: a shutdown does not wait on it.
    let mut p = Pipeline::from_json(&input.to_string()).unwrap();
    assert!(live_of(&p.poll(T0, true)).is_empty());
    // After abandon (shutdown), never again.
    p.abandon();
    assert!(live_of(&p.poll(T0 + 60 * S, false)).is_empty());

    // Off: no live request, ever; described as off.
    for off in [json!("false"), json!("FALSE"), json!(false)] {
        let mut p = pipeline(json!({"azure_monitor_live_metrics": off}));
        p.record_spans(&spans(0..3));
        for at in [0, 1, 5, 10, 60, 61, 120] {
            let r = p.poll(T0 + at * S, false);
            assert!(live_of(&r).is_empty(), "{off} at {at}s");
        }
        let described: Value = serde_json::from_str(&p.describe()).unwrap();
        assert_eq!(described["logs"][0]["live_metrics"], "off");
    }
    let e = pipeline_with(json!({"azure_monitor_live_metrics": "nope"}), json!({})).err().unwrap();
    assert!(e.contains("azure_monitor_live_metrics") && e.contains("\"false\""), "{e}");
    // The key goes in the live URL: a plain-http LiveEndpoint elsewhere is refused like an ingestion one.
    let cs = format!("InstrumentationKey={KEY};IngestionEndpoint={INGESTION};LiveEndpoint=http://live.internal/");
    let e =
        pipeline_with(json!({"azure_monitor_connection_string": cs, "azure_monitor_live_metrics": "true"}), json!({}))
            .err()
            .unwrap();
    assert!(e.contains("live.internal") && e.contains("azure_monitor_live_metrics") && !e.contains(KEY), "{e}");
    assert!(pipeline_with(json!({"azure_monitor_connection_string": cs}), json!({})).is_ok(), "off: not sent there");
}
