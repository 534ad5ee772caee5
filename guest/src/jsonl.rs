//! JSON lines for logs: one compact object per record, for deployments whose
//! log shipping is "collect the process's stdout". The member names are the
//! ones such collectors look for first (`timestamp`, `level`, `message`), and
//! every line parses on its own, so a line cut off or interleaved with another
//! process's output loses only itself.

use std::fmt::Write;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs};
use serde_json::Value as Json;

use crate::console::{severity_name, MAX_VALUE_DEPTH, TOO_DEEP};
use crate::ids::to_hex;

/// One JSON object per log record, each followed by '\n', records in input order.
pub fn log_lines(resource_logs: &[ResourceLogs]) -> String {
    log_lines_with(resource_logs, false)
}

/// The same; with `azure_correlation`, each record with a trace also carries
/// Application Insights' names for it, `operation_Id` (the trace id) and
/// `operation_ParentId` (the span id), as in the `traces` table
/// (shared/reference/azure-monitor.md §4(b) "Tags": ai.operation.id and
/// ai.operation.parentId, which for logs is the current span), so log lines
/// collected from stdout join the telemetry the azure-monitor backend sends.
pub fn log_lines_with(resource_logs: &[ResourceLogs], azure_correlation: bool) -> String {
    let mut out = String::new();
    for rl in resource_logs {
        let service = rl
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map_or(Json::Null, |kv| value_json(kv.value.as_ref()));
        for record in rl.scope_logs.iter().flat_map(|sl| sl.log_records.iter()) {
            log_line(&mut out, record, &service, azure_correlation);
        }
    }
    out
}

fn log_line(out: &mut String, record: &LogRecord, service: &Json, azure_correlation: bool) {
    // Written member by member: serde_json's map here sorts its keys, and
    // collectors read `timestamp` and `level` more cheaply when they come first.
    let time = if record.time_unix_nano != 0 { record.time_unix_nano } else { record.observed_time_unix_nano };
    // The timestamp's text never needs escaping.
    let _ = write!(out, "{{\"timestamp\":\"{}\"", rfc3339_nanos(time));
    let level =
        if record.severity_text.is_empty() { severity_name(record.severity_number) } else { &record.severity_text };
    member(out, "level", &Json::from(level));
    member(out, "message", &value_json(record.body.as_ref()));
    if is_set(&record.trace_id) {
        member(out, "trace_id", &Json::String(to_hex(&record.trace_id)));
    }
    if is_set(&record.span_id) {
        member(out, "span_id", &Json::String(to_hex(&record.span_id)));
    }
    if azure_correlation {
        if is_set(&record.trace_id) {
            member(out, "operation_Id", &Json::String(to_hex(&record.trace_id)));
        }
        if is_set(&record.span_id) {
            member(out, "operation_ParentId", &Json::String(to_hex(&record.span_id)));
        }
    }
    member(out, "service.name", service);
    if !record.event_name.is_empty() {
        member(out, "event_name", &Json::from(record.event_name.as_str()));
    }
    if !record.attributes.is_empty() {
        member(out, "attributes", &attributes_json(&record.attributes));
    }
    out.push_str("}\n");
}

/// An all-zero id is OTLP's way of saying "none", the same as an empty one.
pub(crate) fn is_set(id: &[u8]) -> bool {
    id.iter().any(|&b| b != 0)
}

fn member(out: &mut String, key: &str, value: &Json) {
    let _ = write!(out, ",{}:{value}", Json::from(key));
}

/// An attribute value as the JSON a reader expects, not OTLP/JSON's tagged
/// form: `"x"` rather than `{"stringValue":"x"}`. A missing value is `null`.
pub fn value_json(v: Option<&AnyValue>) -> Json {
    value_at(v, 0)
}

/// Attributes as one JSON object. A repeated key keeps its last value, as a
/// JSON reader would.
pub fn attributes_json(kvs: &[KeyValue]) -> Json {
    attributes_at(kvs, 0)
}

fn attributes_at(kvs: &[KeyValue], depth: usize) -> Json {
    Json::Object(kvs.iter().map(|kv| (kv.key.clone(), value_at(kv.value.as_ref(), depth))).collect())
}

fn value_at(v: Option<&AnyValue>, depth: usize) -> Json {
    let Some(v) = v.and_then(|v| v.value.as_ref()) else { return Json::Null };
    match v {
        Value::StringValue(s) => Json::from(s.as_str()),
        Value::BoolValue(b) => Json::Bool(*b),
        Value::IntValue(i) => Json::from(*i),
        Value::DoubleValue(d) => match serde_json::Number::from_f64(*d) {
            Some(n) => Json::Number(n),
            // JSON has no literal for these; OTLP/JSON's spellings are the ones
            // readers of OpenTelemetry data already recognise.
            None if d.is_nan() => Json::from("NaN"),
            None if *d > 0.0 => Json::from("Infinity"),
            None => Json::from("-Infinity"),
        },
        Value::BytesValue(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        // Values built in memory can nest without bound; the stack of a wasm
        // instance cannot.
        Value::ArrayValue(_) | Value::KvlistValue(_) if depth >= MAX_VALUE_DEPTH => Json::from(TOO_DEEP),
        Value::ArrayValue(a) => Json::Array(a.values.iter().map(|v| value_at(Some(v), depth + 1)).collect()),
        Value::KvlistValue(kv) => attributes_at(&kv.values, depth + 1),
        // An index into a profile's string table, which is not at hand; said
        // as such rather than passed off as an integer attribute.
        Value::StringValueStrindex(i) => Json::String(format!("strindex:{i}")),
    }
}

/// `unix_nanos` as RFC 3339 in UTC with all nine fractional digits, e.g.
/// `2026-12-02T16:59:23.123456789Z`. Every u64 has a four-digit year (the
/// largest is in 2554), so the text has a fixed width.
pub fn rfc3339_nanos(unix_nanos: u64) -> String {
    let (date, nanos) = civil(unix_nanos);
    format!("{date}.{nanos:09}Z")
}

/// The same with milliseconds, for people reading a console.
pub(crate) fn rfc3339_millis(unix_nanos: u64) -> String {
    let (date, nanos) = civil(unix_nanos);
    format!("{date}.{:03}Z", nanos / 1_000_000)
}

/// `YYYY-MM-DDTHH:MM:SS` and the nanoseconds past that second.
fn civil(unix_nanos: u64) -> (String, u64) {
    let secs = unix_nanos / 1_000_000_000;
    let mut days = secs / 86_400;
    let rest = secs % 86_400;
    // Gregorian years repeat every 400, which always hold 146 097 days, so whole
    // cycles are skipped at once and at most 400 years are walked one by one.
    let mut year = 1970 + 400 * (days / 146_097);
    days %= 146_097;
    loop {
        let length = if is_leap(year) { 366 } else { 365 };
        if days < length {
            break;
        }
        days -= length;
        year += 1;
    }
    let february = if is_leap(year) { 29 } else { 28 };
    let mut month = 1;
    for length in [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
        if days < length {
            break;
        }
        days -= length;
        month += 1;
    }
    let date =
        format!("{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}", days + 1, rest / 3600, rest / 60 % 60, rest % 60);
    (date, unix_nanos % 1_000_000_000)
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::ScopeLogs;
    use opentelemetry_proto::tonic::resource::v1::Resource;

    use super::*;
    use crate::attributes::{key_value, string_value};

    fn any(v: Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    fn logs(service: Option<&str>, records: Vec<LogRecord>) -> ResourceLogs {
        ResourceLogs {
            resource: service.map(|s| Resource {
                attributes: vec![key_value("service.name", string_value(s))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339_nanos(1_709_251_199_000_000_001), "2024-02-29T23:59:59.000000001Z");
        assert_eq!(rfc3339_nanos(1_709_251_200_000_000_000), "2024-03-01T00:00:00.000000000Z");
        assert_eq!(rfc3339_nanos(951_868_799_000_000_000), "2000-02-29T23:59:59.000000000Z");
        assert_eq!(rfc3339_nanos(4_107_542_399_000_000_000), "2100-02-28T23:59:59.000000000Z");
        assert_eq!(rfc3339_nanos(1_796_230_763_123_456_789), "2026-12-02T16:59:23.123456789Z");
        assert_eq!(rfc3339_nanos(u64::MAX), "2554-07-21T23:34:33.709551615Z");
        assert_eq!(rfc3339_millis(1_796_230_763_123_456_789), "2026-12-02T16:59:23.123Z");
        assert_eq!(rfc3339_millis(u64::MAX), "2554-07-21T23:34:33.709Z");
    }

    #[test]
    fn every_day_follows_the_one_before() {
        // Every midnight from 1970 to the last one a u64 reaches, so each month
        // and year boundary is crossed, each checked against the day before.
        let fields = |t: &str| -> [u64; 3] { [&t[..4], &t[5..7], &t[8..10]].map(|f| f.parse().unwrap()) };
        let mut previous = fields(&rfc3339_nanos(0));
        let mut months_of_29_days = 0;
        for day in 1..=(u64::MAX / 86_400_000_000_000) {
            let text = rfc3339_nanos(day * 86_400_000_000_000);
            assert!(text.ends_with("T00:00:00.000000000Z"), "{text}");
            let [y, m, d] = fields(&text);
            let [py, pm, pd] = previous;
            if d > 1 {
                assert_eq!([y, m, d], [py, pm, pd + 1], "{text}");
            } else {
                assert!(pd >= 28 && if m == 1 { [y, pm] == [py + 1, 12] } else { [y, pm] == [py, m - 1] }, "{text}");
                if pd == 29 {
                    assert!(pm == 2 && py % 4 == 0 && (py % 100 != 0 || py % 400 == 0), "{text}");
                    months_of_29_days += 1;
                }
                let long = [1, 3, 5, 7, 8, 10, 12].contains(&pm);
                assert!(pm == 2 || pd == if long { 31 } else { 30 }, "{text}");
            }
            previous = [y, m, d];
        }
        assert_eq!(previous, [2554, 7, 21]);
        // 1972 to 2552 by fours, less 2100, 2200, 2300 and 2500.
        assert_eq!(months_of_29_days, 142);
    }

    #[test]
    fn values_as_plain_json() {
        let nested = any(Value::KvlistValue(KeyValueList {
            values: vec![
                key_value("z", any(Value::IntValue(-3))),
                key_value(
                    "a",
                    any(Value::ArrayValue(ArrayValue {
                        values: vec![string_value("x"), any(Value::BoolValue(false))],
                    })),
                ),
                KeyValue { key: "none".into(), value: None, ..Default::default() },
            ],
        }));
        let cases: Vec<(Option<AnyValue>, &str)> = vec![
            (None, "null"),
            (Some(AnyValue { value: None }), "null"),
            (Some(string_value("a \"q\"\n")), r#""a \"q\"\n""#),
            (Some(any(Value::BoolValue(true))), "true"),
            (Some(any(Value::IntValue(i64::MIN))), "-9223372036854775808"),
            (Some(any(Value::DoubleValue(0.25))), "0.25"),
            (Some(any(Value::DoubleValue(2.0))), "2.0"),
            (Some(any(Value::DoubleValue(f64::NAN))), r#""NaN""#),
            (Some(any(Value::DoubleValue(f64::INFINITY))), r#""Infinity""#),
            (Some(any(Value::DoubleValue(f64::NEG_INFINITY))), r#""-Infinity""#),
            (Some(any(Value::BytesValue(vec![0, 1, 2, 255]))), r#""AAEC/w==""#),
            (Some(any(Value::ArrayValue(ArrayValue::default()))), "[]"),
            (Some(nested), r#"{"a":["x",false],"none":null,"z":-3}"#),
            (Some(any(Value::StringValueStrindex(7))), r#""strindex:7""#),
        ];
        for (value, expected) in cases {
            assert_eq!(value_json(value.as_ref()).to_string(), expected, "{value:?}");
        }
    }

    #[test]
    fn attributes_as_an_object() {
        let kvs = vec![
            key_value("b", any(Value::IntValue(1))),
            key_value("a", string_value("x")),
            key_value("b", any(Value::IntValue(2))),
        ];
        assert_eq!(attributes_json(&kvs).to_string(), r#"{"a":"x","b":2}"#);
        assert_eq!(attributes_json(&[]).to_string(), "{}");
    }

    #[test]
    fn one_object_per_record_in_a_fixed_member_order() {
        let full = LogRecord {
            time_unix_nano: 1_796_230_763_123_456_789,
            observed_time_unix_nano: 1,
            severity_number: 17,
            body: Some(string_value("payment failed\nretrying")),
            attributes: vec![key_value("order.id", any(Value::IntValue(42))), key_value("a", string_value("b"))],
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            event_name: "payment.failure".into(),
            ..Default::default()
        };
        let bare = LogRecord {
            observed_time_unix_nano: 1_000_000,
            severity_text: "notice".into(),
            severity_number: 10,
            trace_id: vec![0; 16],
            span_id: vec![0; 8],
            ..Default::default()
        };
        let structured = LogRecord {
            body: Some(any(Value::KvlistValue(KeyValueList {
                values: vec![key_value("k", any(Value::BoolValue(true)))],
            }))),
            ..Default::default()
        };
        let text = log_lines(&[logs(Some("checkout"), vec![full, bare]), logs(None, vec![structured])]);
        let expected = concat!(
            r#"{"timestamp":"2026-12-02T16:59:23.123456789Z","level":"ERROR","message":"payment failed\nretrying","#,
            r#""trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708","service.name":"checkout","#,
            r#""event_name":"payment.failure","attributes":{"a":"b","order.id":42}}"#,
            "\n",
            r#"{"timestamp":"1970-01-01T00:00:00.001000000Z","level":"notice","message":null,"#,
            r#""service.name":"checkout"}"#,
            "\n",
            r#"{"timestamp":"1970-01-01T00:00:00.000000000Z","level":"UNSPECIFIED","message":{"k":true},"#,
            r#""service.name":null}"#,
            "\n",
        );
        assert_eq!(text, expected);
        for line in text.lines() {
            serde_json::from_str::<Json>(line).unwrap();
        }
    }

    #[test]
    fn azure_correlation_fields() {
        let record = LogRecord {
            severity_number: 9,
            body: Some(string_value("m")),
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            ..Default::default()
        };
        let uncorrelated = LogRecord { severity_number: 9, ..Default::default() };
        let text = log_lines_with(&[logs(Some("s"), vec![record.clone(), uncorrelated.clone()])], true);
        let expected = concat!(
            r#"{"timestamp":"1970-01-01T00:00:00.000000000Z","level":"INFO","message":"m","#,
            r#""trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708","#,
            r#""operation_Id":"0102030405060708090a0b0c0d0e0f10","operation_ParentId":"0102030405060708","#,
            r#""service.name":"s"}"#,
            "\n",
            r#"{"timestamp":"1970-01-01T00:00:00.000000000Z","level":"INFO","message":null,"service.name":"s"}"#,
            "\n",
        );
        assert_eq!(text, expected);
        let plain = log_lines(&[logs(Some("s"), vec![record])]);
        assert!(!plain.contains("operation_Id") && plain.contains("trace_id"), "{plain}");
    }

    #[test]
    fn every_body_type_is_a_json_value() {
        let bodies = [
            (any(Value::BoolValue(false)), "false"),
            (any(Value::IntValue(7)), "7"),
            (any(Value::DoubleValue(f64::NAN)), r#""NaN""#),
            (any(Value::BytesValue(b"hi".to_vec())), r#""aGk=""#),
            (any(Value::ArrayValue(ArrayValue { values: vec![any(Value::IntValue(1))] })), "[1]"),
            (string_value(""), r#""""#),
        ];
        for (body, expected) in bodies {
            let record = LogRecord { body: Some(body), ..Default::default() };
            let text = log_lines(&[logs(Some("s"), vec![record])]);
            assert!(text.contains(&format!(r#","message":{expected},"#)), "{text}");
        }
    }

    #[test]
    fn deep_values_are_cut_off_rather_than_overflowing_the_stack() {
        let mut v = any(Value::IntValue(1));
        for _ in 0..1_000 {
            v = any(Value::ArrayValue(ArrayValue { values: vec![v] }));
        }
        let expected = format!("{}\"{TOO_DEEP}\"{}", "[".repeat(MAX_VALUE_DEPTH), "]".repeat(MAX_VALUE_DEPTH));
        assert_eq!(value_json(Some(&v)).to_string(), expected);
    }
}
