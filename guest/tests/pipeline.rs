//! The pipeline's behaviour through its public surface: batching, delivery
//! decisions, bounds, counters and determinism.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use polytel_core::delivery::Outcome;
use polytel_core::pipeline::{Destination, Export, Pipeline};
use polytel_core::stats::DropReason;
use prost::Message;

const MS: u64 = 1_000_000;
const T0: u64 = 1_700_000_000_000_000_000;

/// A pipeline to an OTLP endpoint, with `extra` option members added.
fn pipeline(extra: &str) -> Pipeline {
    let sep = if extra.is_empty() { "" } else { "," };
    Pipeline::from_json(&format!(
        r#"{{"options":{{"backend":"otlp","endpoint":"http://collector:4318"{sep}{extra}}},"env":{{}},"seed":"7","host":{{"sdk_language":"rust"}}}}"#
    ))
    .unwrap()
}

fn span(i: u64) -> String {
    format!(
        r#"{{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"{:016x}","name":"s{i}","kind":1,"start":{},"end":{},"attributes":{{"i":{i}}}}}"#,
        i + 1,
        T0 + i,
        T0 + i + 10
    )
}

fn batch(range: std::ops::Range<u64>) -> String {
    format!("[{}]", range.map(span).collect::<Vec<_>>().join(","))
}

fn decode(e: &Export) -> ExportTraceServiceRequest {
    let body = base64::engine::general_purpose::STANDARD.decode(&e.body).unwrap();
    ExportTraceServiceRequest::decode(&body[..]).unwrap()
}

fn span_names(e: &Export) -> Vec<String> {
    decode(e)
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| s.name.clone())
        .collect()
}

fn ok() -> Outcome {
    Outcome::Response { status: 200, retry_after: None, body: vec![] }
}

fn status(code: u16) -> Outcome {
    Outcome::Response { status: code, retry_after: None, body: vec![] }
}

#[test]
fn batches_wait_for_size_or_schedule() {
    let mut p = pipeline(r#""max_export_batch_size":4,"schedule_delay_ms":1000"#);
    assert!(p.poll(T0, false).exports.is_empty(), "first poll starts the schedule");
    p.record_spans(&batch(0..3));
    let r = p.poll(T0 + 10 * MS, false);
    assert!(r.exports.is_empty(), "3 < batch size and the schedule has not fired");
    assert_eq!(r.next_poll, T0 + 1000 * MS);
    p.record_spans(&batch(3..9));
    let r = p.poll(T0 + 20 * MS, false);
    assert_eq!(r.exports.len(), 2, "two full batches of 4");
    assert_eq!(span_names(&r.exports[0]), ["s0", "s1", "s2", "s3"]);
    let r = p.poll(T0 + 1020 * MS, false);
    assert_eq!(r.exports.len(), 1, "the schedule sends the remainder");
    assert_eq!(span_names(&r.exports[0]), ["s8"]);
}

#[test]
fn export_carries_url_headers_and_resource() {
    let mut p = pipeline(r#""headers":{"x-api-key":"secret-value"},"service_name":"svc","allow_insecure":true"#);
    p.record_spans(&batch(0..1));
    let e = p.poll(T0, true).exports.remove(0);
    let Destination::Http { url, headers, timeout_ms } = &e.destination else { panic!("http expected") };
    assert_eq!(url, "http://collector:4318/v1/traces");
    assert_eq!(*timeout_ms, 10_000);
    let names: Vec<_> = headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
    assert_eq!(names, [("Content-Type", "application/x-protobuf"), ("x-api-key", "secret-value")]);
    let req = decode(&e);
    let resource = req.resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(resource.attributes[0].key, "service.name");
    assert!(!p.describe().contains("secret-value"), "describe masks header values");
}

#[test]
fn retry_after_503_then_success_sends_the_same_body_once_more() {
    let mut p = pipeline("");
    p.record_spans(&batch(0..5));
    let first = p.poll(T0, true).exports.remove(0);
    p.report(first.id, &Outcome::Response { status: 503, retry_after: Some("2".into()), body: vec![] }, T0);
    assert!(p.poll(T0 + 1900 * MS, false).exports.is_empty(), "Retry-After is honoured");
    let again = p.poll(T0 + 2000 * MS, false).exports.remove(0);
    assert_eq!((again.id, &again.body), (first.id, &first.body));
    p.report(again.id, &ok(), T0 + 2001 * MS);
    let s = p.stats();
    assert_eq!((s.spans.exported, s.spans.retried, s.spans.pending), (5, 5, 0));
    assert!(p.poll(T0 + 10_000 * MS, true).exports.is_empty(), "nothing is sent twice after success");
}

#[test]
fn connection_failures_back_off_then_give_up_counted() {
    let mut p = pipeline("");
    p.record_spans(&batch(0..2));
    let mut now = T0;
    let mut attempts = 0;
    loop {
        let r = p.poll(now, false);
        let Some(e) = r.exports.into_iter().next() else {
            if p.stats().spans.pending + p.stats().spans.queued == 0 {
                break;
            }
            now += 100 * MS;
            continue;
        };
        attempts += 1;
        p.report(e.id, &Outcome::Failed("connection refused".into()), now);
        assert!(attempts <= 20, "bounded retries");
    }
    // Backoff of 1, 2, 4, 8, 16, then 30 s (half to all of it, jittered)
    // until the two-minute retry budget is spent.
    assert!((7..=14).contains(&attempts), "{attempts} attempts");
    assert_eq!(p.stats().spans.dropped(DropReason::RetriesExhausted), 2);
    let elapsed = (now - T0) / MS;
    assert!((60_000..=120_000).contains(&elapsed), "gave up after {elapsed} ms");
}

#[test]
fn a_short_outage_with_retry_after_costs_nothing() {
    // 30 s of 503 with Retry-After: 1, then healthy: every span arrives once.
    let mut p = pipeline("");
    p.record_spans(&batch(0..5));
    let mut now = T0;
    let mut delivered = 0;
    while delivered == 0 {
        let Some(e) = p.poll(now, false).exports.into_iter().next() else {
            now += 100 * MS;
            continue;
        };
        let outcome = if now < T0 + 30_000 * MS {
            Outcome::Response { status: 503, retry_after: Some("1".into()), body: vec![] }
        } else {
            delivered += e.items;
            ok()
        };
        p.report(e.id, &outcome, now);
    }
    let s = p.stats();
    assert_eq!((s.spans.exported, s.spans.dropped(DropReason::RetriesExhausted)), (5, 0));
    assert!(p.poll(now + 600_000 * MS, true).exports.is_empty(), "nothing is sent twice");
}

#[test]
fn bad_request_is_dropped_not_retried() {
    let mut p = pipeline("");
    p.record_spans(&batch(0..3));
    let e = p.poll(T0, true).exports.remove(0);
    p.report(e.id, &status(400), T0);
    assert_eq!(p.stats().spans.dropped(DropReason::Rejected), 3);
    assert!(p.poll(T0 + 60_000 * MS, true).exports.is_empty());
    let warnings = p.poll(T0, false).warnings;
    assert!(warnings.is_empty(), "warnings were already handed over once");
}

#[test]
fn too_large_splits_until_one_span_then_drops_it() {
    let mut p = pipeline("");
    p.record_spans(&batch(0..4));
    let e = p.poll(T0, true).exports.remove(0);
    p.report(e.id, &status(413), T0);
    let halves = p.poll(T0, false).exports;
    assert_eq!(halves.iter().map(span_names).collect::<Vec<_>>(), [vec!["s0", "s1"], vec!["s2", "s3"]]);
    p.report(halves[0].id, &ok(), T0);
    p.report(halves[1].id, &status(413), T0);
    let quarters = p.poll(T0, false).exports;
    assert_eq!(quarters.len(), 2);
    p.report(quarters[0].id, &ok(), T0);
    p.report(quarters[1].id, &status(413), T0);
    let s = p.stats();
    assert_eq!((s.spans.exported, s.spans.dropped(DropReason::TooLarge)), (3, 1));
}

#[test]
fn partial_success_is_counted_and_not_retried() {
    use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
    let mut p = pipeline("");
    p.record_spans(&batch(0..10));
    let e = p.poll(T0, true).exports.remove(0);
    let body = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess { rejected_spans: 4, error_message: "too old".into() }),
    }
    .encode_to_vec();
    p.report(e.id, &Outcome::Response { status: 200, retry_after: None, body }, T0);
    let s = p.stats();
    assert_eq!((s.spans.exported, s.spans.dropped(DropReason::PartialSuccess)), (6, 4));
    assert!(p.poll(T0 + 60_000 * MS, true).exports.is_empty());
}

#[test]
fn queue_is_bounded_and_drops_are_counted() {
    let mut p = pipeline(r#""max_queue_size":10,"max_export_batch_size":5"#);
    p.poll(T0, false);
    p.record_spans(&batch(0..25));
    assert_eq!(p.stats().spans.dropped(DropReason::QueueFull), 15);
    // Exports in flight count against the bound too: with nothing acknowledged,
    // no more than the queue's worth is built.
    let first = p.poll(T0 + MS, false);
    assert_eq!(first.exports.len(), 2);
    // The bound covers queued and pending items together: with ten in
    // unsettled exports, nothing more is taken in.
    p.record_spans(&batch(100..120));
    assert_eq!(p.stats().spans.dropped(DropReason::QueueFull), 35);
    let r = p.poll(T0 + 2 * MS, false);
    assert!(r.exports.is_empty(), "pending exports hold the whole bound");
    assert_eq!((p.stats().spans.queued, p.stats().spans.pending), (0, 10));
    // Once they settle, there is room again.
    for e in first.exports {
        p.report(e.id, &ok(), T0 + 3 * MS);
    }
    p.record_spans(&batch(200..210));
    assert_eq!(p.stats().spans.queued, 10);
}

#[test]
fn one_bad_record_does_not_spoil_the_batch() {
    let mut p = pipeline("");
    let bad_attr = r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00000000000000aa","name":"x","start":1,"end":2,"attributes":{"k":{"double":"zzz"}}}"#;
    p.record_spans(&format!(
        "[{},{},{},{bad_attr},\"not a span\",{}]",
        span(0),
        span(0),
        r#"{"trace_id":"x"}"#,
        span(1)
    ));
    let s = p.stats();
    assert_eq!(
        (s.spans.received, s.spans.dropped(DropReason::Invalid), s.spans.dropped(DropReason::Duplicate)),
        (6, 3, 1)
    );
    let e = p.poll(T0, true).exports.remove(0);
    assert_eq!(span_names(&e), ["s0", "s1"]);
    p.record_spans("{not json");
    assert_eq!(p.stats().spans.dropped(DropReason::Invalid), 4);
    let warnings = p.poll(T0, false).warnings;
    assert!(warnings.iter().any(|w| w.contains("not a JSON array")), "{warnings:?}");
}

#[test]
fn abandon_counts_queued_and_pending() {
    let mut p = pipeline(r#""max_export_batch_size":3"#);
    p.poll(T0, false);
    p.record_spans(&batch(0..5));
    let r = p.poll(T0 + MS, false);
    assert_eq!(r.exports.len(), 1);
    assert_eq!(p.abandon(), 5);
    assert_eq!(p.stats().spans.dropped(DropReason::Shutdown), 5);
}

#[test]
fn console_backend_prints_trees_without_reports() {
    let mut p = Pipeline::from_json(r#"{"options":{"backend":"console"}}"#).unwrap();
    p.record_spans(&batch(0..2));
    let e = p.poll(T0, true).exports.remove(0);
    assert_eq!(e.destination, Destination::Stdout);
    assert!(e.body.contains("trace 4bf92f3577b34da6a3ce929d0e0e4736"), "{}", e.body);
    assert_eq!(p.stats().spans.exported, 2);
}

#[test]
fn json_and_gzip_encodings() {
    let mut p = pipeline(r#""protocol":"http/json","compression":"gzip""#);
    p.record_spans(&batch(0..1));
    let e = p.poll(T0, true).exports.remove(0);
    let Destination::Http { headers, .. } = &e.destination else { panic!() };
    assert!(headers.iter().any(|(k, v)| k == "Content-Encoding" && v.expose() == "gzip"));
    let gz = base64::engine::general_purpose::STANDARD.decode(&e.body).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text).unwrap();
    let parsed = polytel_core::otlp_json::decode_trace_request(text.as_bytes()).unwrap();
    assert_eq!(parsed.resource_spans[0].scope_spans[0].spans[0].name, "s0");
    assert!(text.contains(r#""traceId":"4bf92f3577b34da6a3ce929d0e0e4736""#), "{text}");
}

#[test]
fn same_inputs_give_identical_bytes() {
    let run = || {
        let mut p = pipeline(r#""compression":"gzip""#);
        p.record_spans(&batch(0..50));
        let e = p.poll(T0, true).exports.remove(0);
        p.report(e.id, &status(503), T0);
        let retry = p.poll(T0 + 60_000 * MS, false).exports.remove(0);
        (e.body, retry.body)
    };
    assert_eq!(run(), run());
}

#[test]
fn disabled_pipeline_is_a_no_op() {
    let mut p = pipeline(r#""disabled":true"#);
    p.record_spans(&batch(0..5));
    assert!(p.poll(T0, true).exports.is_empty());
    assert!(p.plan().contains(r#""disabled":true"#));
    assert_eq!(p.stats().spans.received, 0);
}

#[test]
fn a_disabled_pipeline_never_asks_to_be_polled() {
    let mut p = pipeline(r#""disabled":true,"metrics_exporter":"otlp""#);
    p.register_instrument(r#"{"name":"c","kind":"counter"}"#);
    p.record_metrics(r#"[{"instrument":0,"value":1}]"#);
    p.record_spans(&batch(0..3));
    let out = p.poll(T0, true);
    assert!(out.exports.is_empty() && !out.observe, "{out:?}");
    assert_eq!(out.next_poll, u64::MAX);
}

#[test]
fn otlp_redirects_are_followed_on_the_same_origin_only() {
    let redirect = |status: u16, location: &str| Outcome::Redirect { status, location: location.into() };
    let url = |e: &Export| match &e.destination {
        Destination::Http { url, .. } => url.clone(),
        other => panic!("{other:?}"),
    };
    // 307: this export goes again at once to the new path; later ones stay.
    let mut p = pipeline("");
    p.record_spans(&batch(0..2));
    let e = p.poll(T0, true).exports.remove(0);
    assert_eq!(url(&e), "http://collector:4318/v1/traces");
    p.report(e.id, &redirect(307, "/otlp/v1/traces"), T0);
    let again = p.poll(T0, false).exports.remove(0);
    assert_eq!((again.id, &again.body, url(&again)), (e.id, &e.body, "http://collector:4318/otlp/v1/traces".into()));
    // A retry after the redirect stays where the redirect led.
    p.report(again.id, &status(503), T0);
    let retried = p.poll(T0 + 60_000 * MS, false).exports.remove(0);
    assert_eq!(url(&retried), "http://collector:4318/otlp/v1/traces");
    p.report(retried.id, &ok(), T0 + 60_000 * MS);
    assert_eq!((p.stats().spans.exported, p.stats().spans.dropped(DropReason::Rejected)), (2, 0));
    p.record_spans(&batch(2..3));
    let later = p.poll(T0 + 120_000 * MS, true).exports.remove(0);
    assert_eq!(url(&later), "http://collector:4318/v1/traces", "a 307 is temporary");

    // 308: later exports go to the new URL too.
    let mut p = pipeline("");
    p.record_spans(&batch(0..1));
    let e = p.poll(T0, true).exports.remove(0);
    p.report(e.id, &redirect(308, "http://collector:4318/v2/traces"), T0);
    let mut polled = p.poll(T0, false);
    assert!(polled.warnings.iter().any(|w| w.contains("moved permanently")), "{:?}", polled.warnings);
    let again = polled.exports.remove(0);
    p.report(again.id, &ok(), T0);
    p.record_spans(&batch(1..2));
    let later = p.poll(T0 + 60_000 * MS, true).exports.remove(0);
    assert_eq!(url(&later), "http://collector:4318/v2/traces", "a 308 is permanent");

    // Another host: dropped, counted, and the warning names the host only.
    for location in ["https://elsewhere.example/v1/traces?token=s3cr3t", "https://collector:4318/v1/traces"] {
        let mut p = pipeline(r#""allow_insecure":true,"headers":{"authorization":"Bearer s3cr3t"}"#);
        p.record_spans(&batch(0..2));
        let e = p.poll(T0, true).exports.remove(0);
        p.report(e.id, &redirect(307, location), T0);
        assert_eq!(p.stats().spans.dropped(DropReason::Rejected), 2, "{location}");
        let polled = p.poll(T0, false);
        assert!(polled.exports.is_empty(), "{location}");
        let w = polled.warnings.join("\n");
        assert!(w.contains("does not follow") && !w.contains("s3cr3t"), "{w}");
    }

    // 301-303 would turn the POST into a GET: final, with the Location's host said.
    let mut p = pipeline("");
    p.record_spans(&batch(0..1));
    let e = p.poll(T0, true).exports.remove(0);
    p.report(e.id, &redirect(302, "http://login.example/?next=x"), T0);
    assert_eq!(p.stats().spans.dropped(DropReason::Rejected), 1);
    let w = p.poll(T0, false).warnings.join("\n");
    assert!(w.contains("redirect to login.example"), "{w}");

    // A loop is given up after MAX_REDIRECTS.
    let mut p = pipeline("");
    p.record_spans(&batch(0..1));
    let mut e = p.poll(T0, true).exports.remove(0);
    for n in 0..=polytel_core::delivery::MAX_REDIRECTS {
        p.report(e.id, &redirect(307, &format!("/loop{n}")), T0);
        match p.poll(T0, false).exports.pop() {
            Some(next) => e = next,
            None => break,
        }
    }
    assert_eq!(p.stats().spans.dropped(DropReason::Rejected), 1);
}
