//! Log records as hosts write them (see `record-logs` in `wit/polytel.wit`),
//! turned into OTLP log records under the configured limits.

use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::attributes::{parse_attributes, parse_value, AttributeLimits};
use crate::ids::parse_hex_id;
use crate::spans::Scope;
use crate::stats::Limited;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogInput<'a> {
    #[serde(default)]
    time: u64,
    observed: u64,
    #[serde(default)]
    severity: i32,
    #[serde(default)]
    severity_text: String,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
    #[serde(borrow, default)]
    attributes: Option<&'a RawValue>,
    #[serde(default)]
    event_name: String,
    #[serde(default)]
    trace_id: Option<&'a str>,
    #[serde(default)]
    span_id: Option<&'a str>,
    #[serde(default)]
    flags: u8,
    #[serde(default)]
    scope: Option<Scope>,
}

pub struct ParsedLog {
    pub record: LogRecord,
    pub scope: Scope,
    pub limited: Limited,
    pub notes: Vec<(&'static str, String)>,
}

/// Parses one log record. `Err` says why the whole record was unusable.
pub fn parse_log(json: &str, limits: AttributeLimits) -> Result<ParsedLog, String> {
    let rec: LogInput = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut notes = Vec::new();
    let mut limited = Limited::default();
    let severity = if (0..=24).contains(&rec.severity) {
        rec.severity
    } else {
        notes.push((
            "bad_severity",
            format!(
                "A log record arrived with severity {}, which is not 0 to 24; it was recorded as unspecified.",
                rec.severity
            ),
        ));
        0
    };
    let body = match rec.body {
        None => None,
        Some(raw) => {
            let (body, truncated) = parse_value(raw.get(), limits).map_err(|e| format!("body: {e}"))?;
            limited.values_truncated += u64::from(truncated);
            body
        }
    };
    let attributes = match rec.attributes {
        None => Default::default(),
        Some(raw) => parse_attributes(raw.get(), limits).map_err(|e| format!("attributes: {e}"))?,
    };
    limited.attributes_dropped += u64::from(attributes.dropped);
    limited.values_truncated += u64::from(attributes.truncated);
    let trace_id = rec.trace_id.filter(|t| !t.is_empty()).map(parse_hex_id::<16>);
    let span_id = rec.span_id.filter(|t| !t.is_empty()).map(parse_hex_id::<8>);
    let (trace_id, span_id, flags) = match (trace_id, span_id) {
        (Some(Some(t)), Some(Some(s))) => (t.to_vec(), s.to_vec(), u32::from(rec.flags)),
        (None, None) => (Vec::new(), Vec::new(), 0),
        _ => {
            notes.push((
                "bad_log_context",
                "A log record carried a malformed or partial trace context; it was kept without one.".into(),
            ));
            (Vec::new(), Vec::new(), 0)
        }
    };
    Ok(ParsedLog {
        record: LogRecord {
            time_unix_nano: rec.time,
            observed_time_unix_nano: rec.observed,
            severity_number: severity,
            severity_text: rec.severity_text,
            body,
            attributes: attributes.kept,
            dropped_attributes_count: attributes.dropped,
            flags,
            trace_id,
            span_id,
            event_name: rec.event_name,
        },
        scope: rec.scope.unwrap_or_default(),
        limited,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    use super::*;

    const LIMITS: AttributeLimits = AttributeLimits { count: 2, value_length: Some(5) };

    #[test]
    fn full_record() {
        let p = parse_log(
            r#"{"time":5,"observed":6,"severity":9,"severity_text":"INFO","body":{"map":{"k":1}},
                "attributes":{"a":"abcdefgh","b":2,"c":3},"event_name":"e",
                "trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","flags":1,
                "scope":{"name":"s","version":"1"}}"#,
            LIMITS,
        )
        .unwrap();
        let r = p.record;
        assert_eq!((r.time_unix_nano, r.observed_time_unix_nano, r.severity_number), (5, 6, 9));
        assert!(matches!(r.body.and_then(|b| b.value), Some(Value::KvlistValue(_))));
        assert_eq!((r.attributes.len(), r.dropped_attributes_count, r.flags), (2, 1, 1));
        assert_eq!(r.trace_id.len(), 16);
        assert_eq!(r.event_name, "e");
        assert_eq!((p.limited.attributes_dropped, p.limited.values_truncated), (1, 1));
        assert_eq!(p.scope.name, "s");
        let p = parse_log(r#"{"observed":1,"body":{"map":{"a":1,"b":2,"c":3}}}"#, LIMITS).unwrap();
        let Some(Value::KvlistValue(map)) = p.record.body.and_then(|b| b.value) else { panic!("a map body") };
        assert_eq!(map.values.len(), 3, "a map body keeps every member, whatever the attribute count limit");
    }

    #[test]
    fn repairs_and_rejections() {
        let p =
            parse_log(r#"{"observed":1,"severity":99,"trace_id":"zz","span_id":"00f067aa0ba902b7"}"#, LIMITS).unwrap();
        assert_eq!(p.record.severity_number, 0);
        assert!(p.record.trace_id.is_empty() && p.record.span_id.is_empty());
        assert_eq!(p.notes.len(), 2);
        let p = parse_log(r#"{"observed":1,"body":"a long message"}"#, LIMITS).unwrap();
        assert_eq!(p.record.body.and_then(|b| b.value), Some(Value::StringValue("a lon".into())));
        assert!(parse_log(r#"{"observed":1,"body":{"double":"x"}}"#, LIMITS).is_err());
        assert!(parse_log(r#"{"time":1}"#, LIMITS).is_err(), "observed time is required");
        assert!(parse_log(r#"{"observed":1,"what":1}"#, LIMITS).is_err());
    }
}
