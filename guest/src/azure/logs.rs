//! Log records as envelopes (shared/reference/azure-monitor.md §4(b) "Logs",
//! `export/logs/_exporter.py`): Exception when the record carries
//! `exception.type` or `exception.message`, Event when it carries
//! `microsoft.custom_event.name`, else Message.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::envelopes::{BaseData, EventData, Item, MessageData, DOMAIN_VERSION, EVENT, EXCEPTION, MESSAGE};
use super::format::{first_text, properties, text, time, truncate, MAX_MESSAGE, MAX_NAME};
use super::spans::exception;
use super::tags::Tags;
use crate::ids::to_hex;
use crate::jsonl::is_set;

/// §4(b): the attribute that makes a record a custom event.
pub const CUSTOM_EVENT_KEY: &str = "microsoft.custom_event.name";

/// §4(b) "Severity": OTel SeverityNumber → Application Insights' level
/// (0 Verbose … 4 Critical): below 9 is 0, else `(sev - 1) / 4 - 1`.
pub fn severity_level(severity_number: i32) -> u8 {
    if severity_number < 9 {
        0
    } else {
        ((severity_number - 1) / 4 - 1).clamp(0, 4) as u8
    }
}

pub fn item(record: &LogRecord, part_a: &Tags) -> Item {
    let mut tags = part_a.clone();
    if is_set(&record.trace_id) {
        tags.insert("ai.operation.id", to_hex(&record.trace_id));
    }
    // §4(b) "Tags": for logs the parent is the current span.
    if is_set(&record.span_id) {
        tags.insert("ai.operation.parentId", to_hex(&record.span_id));
    }
    let attrs = &record.attributes;
    let level = Some(severity_level(record.severity_number));
    let (name, data) = if first_text(attrs, &["exception.type", "exception.message"]).is_some() {
        (EXCEPTION, BaseData::Exception(exception(attrs, level)))
    } else if let Some(event) = first_text(attrs, &[CUSTOM_EVENT_KEY]) {
        let properties = properties(attrs, |k| k == CUSTOM_EVENT_KEY);
        (EVENT, BaseData::Event(EventData { ver: DOMAIN_VERSION, name: truncate(&event, MAX_NAME), properties }))
    } else {
        // A string body as it is; maps, lists and other values as JSON.
        let message = match record.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(Value::StringValue(s)) => truncate(s, MAX_MESSAGE),
            None => String::new(),
            Some(_) => truncate(&text(record.body.as_ref()), MAX_MESSAGE),
        };
        let properties = properties(attrs, |_| false);
        (MESSAGE, BaseData::Message(MessageData { ver: DOMAIN_VERSION, message, severity_level: level, properties }))
    };
    let at = if record.time_unix_nano != 0 { record.time_unix_nano } else { record.observed_time_unix_nano };
    Item { name, time: time(at), sample_rate: 100.0, tags, data }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValueList};
    use serde_json::{json, Value as Json};

    use super::*;
    use crate::attributes::{key_value, string_value};

    #[test]
    fn severities() {
        for (number, level) in
            [(0, 0), (1, 0), (5, 0), (8, 0), (9, 1), (12, 1), (13, 2), (17, 3), (20, 3), (21, 4), (24, 4), (99, 4)]
        {
            assert_eq!(severity_level(number), level, "{number}");
        }
    }

    fn envelope(record: &LogRecord) -> Json {
        serde_json::from_str(&super::super::envelopes::to_json(&item(record, &Tags::new()), "K")).unwrap()
    }

    #[test]
    fn record_rows() {
        let kv = |k: &str, v: &str| key_value(k, string_value(v));
        // (attributes, body) → (envelope name, baseData)
        let rows: Vec<(Vec<_>, Option<AnyValue>, &str, Json)> = vec![
            (
                vec![kv("order", "7")],
                Some(string_value("paid")),
                MESSAGE,
                json!({"ver": 2, "message": "paid", "severityLevel": 2, "properties": {"order": "7"}}),
            ),
            (
                vec![],
                Some(AnyValue { value: Some(Value::KvlistValue(KeyValueList { values: vec![kv("k", "v")] })) }),
                MESSAGE,
                json!({"ver": 2, "message": "{\"k\":\"v\"}", "severityLevel": 2, "properties": {}}),
            ),
            (vec![], None, MESSAGE, json!({"ver": 2, "message": "", "severityLevel": 2, "properties": {}})),
            (
                vec![
                    kv("exception.type", "KeyError"),
                    kv("exception.message", "'x'"),
                    kv("exception.stacktrace", "tb"),
                    kv("a", "b"),
                ],
                Some(string_value("failed")),
                EXCEPTION,
                json!({"ver": 2, "exceptions": [{"typeName": "KeyError", "message": "'x'", "hasFullStack": true, "stack": "tb"}], "severityLevel": 2, "properties": {"a": "b"}}),
            ),
            (
                vec![kv("exception.message", "only a message")],
                None,
                EXCEPTION,
                json!({"ver": 2, "exceptions": [{"typeName": "Exception", "message": "only a message", "hasFullStack": false}], "severityLevel": 2, "properties": {}}),
            ),
            (
                vec![kv(CUSTOM_EVENT_KEY, "checkout"), kv("cart", "3")],
                Some(string_value("ignored")),
                EVENT,
                json!({"ver": 2, "name": "checkout", "properties": {"cart": "3"}}),
            ),
        ];
        for (i, (attributes, body, name, base)) in rows.into_iter().enumerate() {
            let record = LogRecord {
                time_unix_nano: 1_767_268_800_000_001_000,
                severity_number: 13,
                attributes,
                body,
                ..Default::default()
            };
            let e = envelope(&record);
            assert_eq!(e["name"], name, "row {i}");
            assert_eq!(e["data"]["baseData"], base, "row {i}");
            assert_eq!(e["data"]["baseType"], format!("{}Data", name.rsplit('.').next().unwrap()), "row {i}");
            assert_eq!(e["time"], "2026-01-01T12:00:00.000001Z");
        }
    }

    #[test]
    fn correlation_tags_and_limits() {
        let record = LogRecord {
            observed_time_unix_nano: 1_000,
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            body: Some(string_value("m".repeat(40_000))),
            ..Default::default()
        };
        let e = envelope(&record);
        assert_eq!(e["tags"]["ai.operation.id"], "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(e["tags"]["ai.operation.parentId"], "0102030405060708");
        assert_eq!(e["time"], "1970-01-01T00:00:00.000001Z");
        assert_eq!(e["data"]["baseData"]["message"].as_str().unwrap().len(), MAX_MESSAGE);
        assert_eq!(e["data"]["baseData"]["severityLevel"], 0);
        let bare = envelope(&LogRecord { trace_id: vec![0; 16], span_id: vec![0; 8], ..Default::default() });
        assert_eq!(bare["tags"], json!({}));
    }
}
