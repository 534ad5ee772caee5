//! The C ABI (host/include/polytel.h), called as a C caller would: pointers,
//! lengths, returned strings freed with polytel_free_string.

use std::ffi::{c_char, CStr};
use std::sync::{Arc, Mutex};

use polytel::capi::*;
use polytel::receiver::{Received, Receiver};
use polytel_core::proto::tonic::common::v1::any_value;

/// Takes a returned string (and frees it).
fn take(s: *mut c_char) -> String {
    assert!(!s.is_null(), "a NULL string");
    let out = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned();
    unsafe { polytel_free_string(s) };
    out
}

fn configure(json: &str) -> Result<*mut Handle, String> {
    let mut err: *mut c_char = std::ptr::null_mut();
    let h = unsafe { polytel_configure(json.as_ptr().cast(), json.len(), &mut err) };
    if h.is_null() {
        Err(take(err))
    } else {
        assert!(err.is_null());
        Ok(h)
    }
}

fn json_call(f: impl FnOnce(*mut *mut c_char) -> *mut c_char) -> serde_json::Value {
    let mut err: *mut c_char = std::ptr::null_mut();
    let s = f(&mut err);
    assert!(err.is_null(), "{}", take(err));
    serde_json::from_str(&take(s)).unwrap()
}

#[test]
fn a_c_caller_records_batches_and_the_worker_exports_them() {
    let captured: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = captured.clone();
    let receiver = Receiver::start("127.0.0.1:0", move |r| sink.lock().unwrap().push(r)).unwrap();
    let options = serde_json::json!({
        "backend": "otlp", "endpoint": receiver.endpoint(), "protocol": "http/json", "service_name": "c-caller",
        "env": {}, "detect_host": false, "host": {"sdk_language": "cpp"}, "seed": "7",
        "clock": {"start": "1000", "step": "10"},
    })
    .to_string();
    let h = configure(&options).unwrap();

    let plan = json_call(|e| unsafe { polytel_plan(h, e) });
    assert_eq!(plan["traces"], true, "{plan}");
    assert_eq!(plan["sampler"]["root_bound"], "9223372036854775808", "{plan}");
    assert!(json_call(|e| unsafe { polytel_describe(h, e) }).to_string().contains(&receiver.endpoint()));
    // The test clock: the caller's readings advance it.
    assert_eq!(unsafe { (polytel_now(h), polytel_now(h)) }, (1000, 1010));

    let spans = r#"[{"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331","name":"from C","kind":2,"start":1000,"end":1010,"attributes":{"k":"v"}},
                   {"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203332","parent_span_id":"b7ad6b7169203331","name":"child","start":1001,"end":1002}]"#;
    let mut err: *mut c_char = std::ptr::null_mut();
    assert_eq!(unsafe { polytel_record_spans(h, spans.as_ptr().cast(), spans.len(), &mut err) }, 0);
    let instrument = r#"{"name":"c.calls","kind":"counter","unit":"{call}","description":""}"#;
    let mut id = u32::MAX;
    assert_eq!(
        unsafe { polytel_register_instrument(h, instrument.as_ptr().cast(), instrument.len(), &mut id, &mut err) },
        0
    );
    let mut again = u32::MAX;
    unsafe { polytel_register_instrument(h, instrument.as_ptr().cast(), instrument.len(), &mut again, &mut err) };
    assert_eq!(id, again, "the same instrument gets the same id");
    let metrics = format!(r#"[{{"instrument":{id},"value":2}},{{"instrument":{id},"value":3}}]"#);
    assert_eq!(unsafe { polytel_record_metrics(h, metrics.as_ptr().cast(), metrics.len(), &mut err) }, 0);
    let logs = r#"[{"time":1005,"observed":1005,"severity":9,"severity_text":"INFO","body":"hello from C"}]"#;
    assert_eq!(unsafe { polytel_record_logs(h, logs.as_ptr().cast(), logs.len(), &mut err) }, 0);

    // Not an array: refused, with a message.
    let bad = "{not json";
    assert_eq!(unsafe { polytel_record_spans(h, bad.as_ptr().cast(), bad.len(), &mut err) }, -1);
    assert!(take(err).contains("not a JSON array"));

    // Propagation round trip.
    let headers = r#"{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"v=1","baggage":"user=42"}"#;
    let ctx = json_call(|e| unsafe { polytel_extract(h, headers.as_ptr().cast(), headers.len(), e) });
    assert_eq!(ctx["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(ctx["flags"], 1);
    assert_eq!(ctx["baggage"], serde_json::json!([["user", "42"]]));
    let ctx = ctx.to_string();
    let out = json_call(|e| unsafe { polytel_inject(h, ctx.as_ptr().cast(), ctx.len(), e) });
    assert_eq!(out["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "{out}");
    assert_eq!(out["tracestate"], "v=1");

    assert_eq!(unsafe { polytel_force_flush(h, 10_000) }, 1);
    let report = json_call(|e| unsafe { polytel_shutdown(h, 10_000, e) });
    assert_eq!(report, serde_json::json!({"flushed": true, "abandoned": 0}));
    let stats = json_call(|e| unsafe { polytel_stats(h, e) });
    assert_eq!(stats["spans"]["exported"], 2, "{stats}");
    assert_eq!(stats["logs"]["exported"], 1, "{stats}");
    unsafe { polytel_free(h) };

    let got = captured.lock().unwrap();
    let traces = got.iter().find_map(|r| r.traces.as_ref()).expect("a traces export");
    let resource = traces.resource_spans[0].resource.as_ref().unwrap();
    let language = resource.attributes.iter().find(|kv| kv.key == "telemetry.sdk.language").unwrap();
    let language = language.value.as_ref().and_then(|v| v.value.as_ref());
    assert!(matches!(language, Some(any_value::Value::StringValue(s)) if s == "cpp"), "{language:?}");
    let names: Vec<&str> = traces.resource_spans[0].scope_spans[0].spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["from C", "child"]);
    assert!(got.iter().any(|r| r.metrics.is_some()) && got.iter().any(|r| r.logs.is_some()));
}

#[test]
fn failures_are_one_sentence_strings_and_never_show_secrets() {
    let e = configure(r#"{"backend": "honeycomb", "env": {}}"#).unwrap_err();
    assert!(e.contains("honeycomb_api_key") && e.contains("HONEYCOMB_API_KEY"), "{e}");
    let e = configure(r#"{"schedule_delay_ms": "hcaik_secret_value"}"#).unwrap_err();
    assert!(!e.contains("hcaik_secret_value"), "{e}");
    assert!(configure("[1]").unwrap_err().contains("JSON object"));
    assert!(configure(r#"{"clock": {"start": "1"}}"#).unwrap_err().contains("clock"));

    // NULL handles and pointers are errors, not crashes.
    let mut err: *mut c_char = std::ptr::null_mut();
    assert!(unsafe { polytel_plan(std::ptr::null(), &mut err) }.is_null());
    assert!(take(err).contains("NULL"));
    assert_eq!(unsafe { polytel_record_logs(std::ptr::null(), std::ptr::null(), 0, std::ptr::null_mut()) }, -1);
    assert_eq!(unsafe { polytel_force_flush(std::ptr::null(), 0) }, -1);
    assert_eq!(unsafe { polytel_now(std::ptr::null()) }, 0);
    unsafe { polytel_free(std::ptr::null_mut()) };
    unsafe { polytel_free_string(std::ptr::null_mut()) };

    // Not UTF-8.
    let bytes = [b'{', 0xff, b'}'];
    let mut err: *mut c_char = std::ptr::null_mut();
    assert!(unsafe { polytel_configure(bytes.as_ptr().cast(), bytes.len(), &mut err) }.is_null());
    assert!(take(err).contains("UTF-8"));

    let version = unsafe { CStr::from_ptr(polytel_version()) }.to_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_disabled_pipeline_takes_nothing_and_free_shuts_it_down() {
    // Disabled through the options: no worker, every record call a no-op.
    let h = configure(r#"{"disabled": true, "env": {}}"#).unwrap();
    let plan = json_call(|e| unsafe { polytel_plan(h, e) });
    assert_eq!(plan["disabled"], true);
    let spans = r#"[{"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331","name":"x","start":1,"end":2}]"#;
    assert_eq!(unsafe { polytel_record_spans(h, spans.as_ptr().cast(), spans.len(), std::ptr::null_mut()) }, 0);
    let stats = json_call(|e| unsafe { polytel_stats(h, e) });
    assert_eq!(stats["host"]["buffered"], 0, "{stats}");
    unsafe { polytel_free(h) };
}
