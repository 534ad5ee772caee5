//! GenAI operations through the pipeline's public surface: what reaches the
//! wire and the summary for sampled and unsampled operations, content capture
//! on and off, error types, pricing, redaction of everything exported, and
//! bad operation records. The conformance scenarios `genai` and
//! `genai_latest` pin the exact bytes.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use polytel_core::pipeline::{Export, Pipeline, Signal};
use polytel_core::stats::DropReason;
use prost::Message;

const T0: u64 = 1_700_000_000_000_000_000;
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn pipeline(extra: &str) -> Pipeline {
    let sep = if extra.is_empty() { "" } else { "," };
    Pipeline::from_json(&format!(
        r#"{{"options":{{"backend":"otlp","endpoint":"http://collector:4318"{sep}{extra}}},"env":{{}},"seed":"7","host":{{"sdk_language":"rust"}}}}"#
    ))
    .unwrap()
}

/// An operation's span record; `extra` adds members to the record, `genai` to its genai member.
fn operation(span_id: &str, extra: &str, genai: &str) -> String {
    format!(
        r#"{{"trace_id":"{TRACE}","span_id":"{span_id}","name":"","kind":0,"start":{T0},"end":{}{extra},"genai":{genai}}}"#,
        T0 + 250_000_000
    )
}

fn flush(p: &mut Pipeline) -> Vec<Export> {
    p.poll(T0 + 1_000_000_000, true).exports
}

fn spans(exports: &[Export]) -> Vec<Span> {
    exports
        .iter()
        .filter(|e| e.signal == Signal::Traces)
        .flat_map(|e| {
            let raw = base64::engine::general_purpose::STANDARD.decode(&e.body).unwrap();
            ExportTraceServiceRequest::decode(&raw[..]).unwrap().resource_spans
        })
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .collect()
}

fn attr(kvs: &[KeyValue], key: &str) -> Option<Value> {
    kvs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
}

fn text(kvs: &[KeyValue], key: &str) -> Option<String> {
    match attr(kvs, key)? {
        Value::StringValue(s) => Some(s),
        other => panic!("{key} is {other:?}"),
    }
}

fn summary(p: &Pipeline) -> serde_json::Value {
    let stats: serde_json::Value = serde_json::from_str(&p.stats_json()).unwrap();
    stats["operations"].clone()
}

const CHAT: &str = r#"{"operation":"chat","name":"gpt-4o","provider":"openai","usage":{"input_tokens":1000,"output_tokens":100},"input":"hello sk-proj-Abcdefghijklmnopqrstuvwx123","output":{"map":{"role":"assistant"}}}"#;

#[test]
fn an_unsampled_operation_counts_in_metrics_and_summary_but_is_not_exported() {
    let mut p = pipeline("");
    p.record_spans(&format!(r#"[{}]"#, operation("00f067aa0ba902b7", r#","sampled":false"#, CHAT)));
    let summary = summary(&p);
    assert_eq!(summary[0]["count"], 1, "{summary}");
    assert_eq!(summary[0]["input_tokens"], 1000);
    assert!(summary[0]["cost_usd"].as_f64().unwrap() > 0.0, "gpt-4o is in the shipped table: {summary}");
    let exports = flush(&mut p);
    assert!(spans(&exports).is_empty(), "an unsampled operation was exported");
    assert!(exports.iter().any(|e| e.signal == Signal::Metrics), "its metrics were not exported");
    let stats: serde_json::Value = serde_json::from_str(&p.stats_json()).unwrap();
    assert_eq!(stats["spans"]["received"], 0, "unsampled operations are not received for export: {stats}");
}

#[test]
fn content_is_captured_only_when_the_user_opted_in_and_then_redacted() {
    let mut off = pipeline("");
    off.record_spans(&format!("[{}]", operation("00f067aa0ba902b7", "", CHAT)));
    let span = spans(&flush(&mut off)).remove(0);
    assert_eq!(span.name, "chat gpt-4o");
    assert_eq!(span.kind, 3, "a model call is a client span");
    assert_eq!(attr(&span.attributes, "gen_ai.input.messages"), None);

    let mut on = pipeline(r#""genai_capture_content":true"#);
    on.record_spans(&format!("[{}]", operation("00f067aa0ba902b7", "", CHAT)));
    let span = spans(&flush(&mut on)).remove(0);
    assert_eq!(text(&span.attributes, "gen_ai.input.messages").as_deref(), Some("hello [REDACTED]"));
    assert_eq!(text(&span.attributes, "gen_ai.output.messages").as_deref(), Some(r#"{"role":"assistant"}"#));
    let plan: serde_json::Value = serde_json::from_str(&on.plan()).unwrap();
    assert_eq!(plan["genai_capture"], true);
}

#[test]
fn error_type_comes_from_the_attribute_then_the_exception_then_other() {
    let mut p = pipeline("");
    let tool = r#"{"operation":"execute_tool","name":"fetch"}"#;
    let error = r#","status":{"code":2,"message":"boom"}"#;
    p.record_spans(&format!(
        "[{},{},{}]",
        operation("1111111111111111", &format!(r#"{error},"attributes":{{"error.type":"Quota"}}"#), tool),
        operation(
            "2222222222222222",
            &format!(r#"{error},"events":[{{"time":{T0},"exception":{{"type":"IOError","message":"m"}}}}]"#),
            tool
        ),
        operation("3333333333333333", error, tool),
    ));
    let summary = summary(&p);
    assert_eq!(summary[0]["errors"], 3, "{summary}");
    assert_eq!(summary[0]["error_types"], serde_json::json!({"IOError": 1, "Quota": 1, "_OTHER": 1}));
    let types: Vec<_> = spans(&flush(&mut p)).iter().map(|s| text(&s.attributes, "error.type").unwrap()).collect();
    assert_eq!(types, ["Quota", "IOError", "_OTHER"]);
}

#[test]
fn an_unknown_model_counts_tokens_and_marks_its_cost_unknown() {
    let mut p = pipeline("");
    let genai = r#"{"operation":"chat","name":"my-finetune","provider":"openai","usage":{"input_tokens":10}}"#;
    p.record_spans(&format!("[{}]", operation("00f067aa0ba902b7", "", genai)));
    let summary = summary(&p);
    assert_eq!((summary[0]["cost_unknown"].as_u64(), summary[0]["cost_usd"].as_f64()), (Some(1), Some(0.0)));
    let span = spans(&flush(&mut p)).remove(0);
    assert_eq!(attr(&span.attributes, "polytel.gen_ai.cost_unknown"), Some(Value::BoolValue(true)));
    assert_eq!(attr(&span.attributes, "polytel.gen_ai.cost"), None);
    assert_eq!(attr(&span.attributes, "gen_ai.usage.input_tokens"), Some(Value::IntValue(10)));
}

#[test]
fn redaction_covers_span_event_and_log_values_and_is_counted() {
    let mut p = pipeline(r#""redact_patterns":["acct-\\d+"]"#);
    p.record_spans(&format!(
        r#"[{{"trace_id":"{TRACE}","span_id":"00f067aa0ba902b7","name":"login","start":{T0},"end":{T0},
            "attributes":{{"db.password":"pw","url":"https://u:secret@host/x","note":"acct-42 ok"}},
            "events":[{{"name":"retry","time":{T0},"attributes":{{"header":"Bearer abcdefgh12345678"}}}}]}}]"#
    ));
    p.record_logs(&format!(r#"[{{"observed":{T0},"body":"password=hunter2","attributes":{{"api_key":"k"}}}}]"#));
    let exports = flush(&mut p);
    let span = spans(&exports).remove(0);
    assert_eq!(text(&span.attributes, "db.password").as_deref(), Some("[REDACTED]"));
    assert_eq!(text(&span.attributes, "url").as_deref(), Some("https://u:[REDACTED]@host/x"));
    assert_eq!(text(&span.attributes, "note").as_deref(), Some("[REDACTED] ok"));
    assert_eq!(text(&span.events[0].attributes, "header").as_deref(), Some("Bearer [REDACTED]"));
    let logs = exports.iter().find(|e| e.signal == Signal::Logs).unwrap();
    let raw = base64::engine::general_purpose::STANDARD.decode(&logs.body).unwrap();
    let log = ExportLogsServiceRequest::decode(&raw[..]).unwrap().resource_logs[0].scope_logs[0].log_records[0].clone();
    assert_eq!(log.body.unwrap().value, Some(Value::StringValue("password=[REDACTED]".into())));
    assert_eq!(text(&log.attributes, "api_key").as_deref(), Some("[REDACTED]"));
    let stats: serde_json::Value = serde_json::from_str(&p.stats_json()).unwrap();
    assert_eq!(stats["spans"]["limited"]["values_redacted"], 4, "{stats}");
    assert_eq!(stats["logs"]["limited"]["values_redacted"], 2, "{stats}");

    let mut off = pipeline(r#""redact":false"#);
    off.record_logs(&format!(r#"[{{"observed":{T0},"body":"password=hunter2"}}]"#));
    let exports = flush(&mut off);
    let raw = base64::engine::general_purpose::STANDARD.decode(&exports[0].body).unwrap();
    let log = ExportLogsServiceRequest::decode(&raw[..]).unwrap().resource_logs[0].scope_logs[0].log_records[0].clone();
    assert_eq!(log.body.unwrap().value, Some(Value::StringValue("password=hunter2".into())));
}

#[test]
fn bad_operation_records_are_dropped_alone_and_bad_options_refused() {
    let mut p = pipeline("");
    p.record_spans(&format!(
        "[{},{},{}]",
        operation("1111111111111111", "", r#"{"operation":""}"#),
        operation("2222222222222222", "", r#"{"operation":"chat","usage":{"input_tokens":-1}}"#),
        operation("3333333333333333", "", r#"{"operation":"chat","name":"m","cost":"NaN","usage":{"input_tokens":1}}"#),
    ));
    let stats: serde_json::Value = serde_json::from_str(&p.stats_json()).unwrap();
    assert_eq!(p.stats().spans.dropped(DropReason::Invalid), 2, "{stats}");
    assert_eq!(summary(&p)[0]["cost_unknown"], 1, "a NaN cost is ignored, not summed");
    assert_eq!(spans(&flush(&mut p)).len(), 1);

    for (option, fragment) in [
        (r#""redact_patterns":["("]"#, "redact_patterns"),
        (r#""genai_prices":{"acme":{"m":{"input":"cheap"}}}"#, "genai_prices"),
    ] {
        let sep = ",";
        let err = Pipeline::from_json(&format!(
            r#"{{"options":{{"backend":"otlp","endpoint":"http://c:4318"{sep}{option}}},"env":{{}}}}"#
        ))
        .err()
        .unwrap_or_else(|| panic!("{option} was accepted"));
        assert!(err.contains(fragment), "{err}");
    }
}

#[test]
fn with_traces_going_nowhere_operations_still_give_metrics_and_summary() {
    let mut p = pipeline(r#""traces_exporter":"none""#);
    let plan: serde_json::Value = serde_json::from_str(&p.plan()).unwrap();
    assert_eq!(plan["traces"], false);
    p.record_spans(&format!("[{}]", operation("00f067aa0ba902b7", r#","sampled":false"#, CHAT)));
    assert_eq!(summary(&p)[0]["count"], 1);
    let exports = flush(&mut p);
    assert!(spans(&exports).is_empty());
    assert!(exports.iter().any(|e| e.signal == Signal::Metrics));
}
