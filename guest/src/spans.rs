//! Span records as hosts write them (see `record-spans` in `wit/polytel.wit`),
//! turned into OTLP spans under the configured limits.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{span, Span, Status};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::attributes::{key_value, parse_attributes, string_value, AttributeLimits, Attributes};
use crate::config::SpanLimits;
use crate::genai::{Operation, OperationRecord};
use crate::ids::parse_hex_id;
use crate::stats::Limited;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpanRecord<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    #[serde(default)]
    parent_span_id: Option<&'a str>,
    #[serde(default)]
    parent_remote: bool,
    #[serde(default)]
    trace_state: String,
    name: String,
    #[serde(default)]
    kind: i32,
    start: u64,
    end: u64,
    #[serde(borrow, default)]
    attributes: Option<&'a RawValue>,
    #[serde(borrow, default)]
    events: Vec<EventRecord<'a>>,
    #[serde(borrow, default)]
    links: Vec<LinkRecord<'a>>,
    #[serde(default)]
    status: Option<StatusRecord>,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default = "yes")]
    sampled: bool,
    #[serde(borrow, default)]
    genai: Option<OperationRecord<'a>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRecord<'a> {
    #[serde(default)]
    name: String,
    time: u64,
    #[serde(borrow, default)]
    attributes: Option<&'a RawValue>,
    #[serde(default)]
    exception: Option<ExceptionRecord>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionRecord {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    stacktrace: String,
    #[serde(default)]
    escaped: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkRecord<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    #[serde(default)]
    trace_state: String,
    #[serde(borrow, default)]
    attributes: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRecord {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    message: String,
}

/// The instrumentation scope a span was recorded under.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

/// Trace flags in OTLP's `Span.flags`: sampled, plus whether the parent is remote.
const FLAG_SAMPLED: u32 = 0x01;
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// A span ready to queue.
pub struct ParsedSpan {
    pub span: Span,
    pub scope: Scope,
    pub limited: Limited,
    /// Repairs made (one sentence each, by kind) that the host should hear about once.
    pub notes: Vec<(&'static str, String)>,
    /// Whether the span was sampled: only a GenAI operation arrives unsampled.
    pub sampled: bool,
    pub operation: Option<Operation>,
}

/// Parses one span record. `Err` says why the whole record was unusable.
pub fn parse_span(json: &str, limits: &SpanLimits) -> Result<ParsedSpan, String> {
    let rec: SpanRecord = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let trace_id = parse_hex_id::<16>(rec.trace_id).ok_or("trace_id is not 32 lower-case hex digits, not all zero")?;
    let span_id = parse_hex_id::<8>(rec.span_id).ok_or("span_id is not 16 lower-case hex digits, not all zero")?;
    let mut notes = Vec::new();
    let mut limited = Limited::default();

    let parent_span_id = match rec.parent_span_id {
        None | Some("") => Vec::new(),
        Some(p) => match parse_hex_id::<8>(p) {
            Some(id) => id.to_vec(),
            None => {
                notes.push(("bad_parent", format!("A span arrived with parent_span_id {p:?}, which is not a span id; it was recorded as a root span.")));
                Vec::new()
            }
        },
    };
    let kind = if (0..=5).contains(&rec.kind) {
        rec.kind
    } else {
        notes.push((
            "bad_kind",
            format!("A span arrived with kind {}, which is not 0 to 5; it was recorded as internal.", rec.kind),
        ));
        span::SpanKind::Internal as i32
    };
    let end = if rec.end < rec.start {
        notes.push((
            "end_before_start",
            "A span arrived ending before it started; its end was set to its start.".into(),
        ));
        rec.start
    } else {
        rec.end
    };
    // A GenAI operation without a name is named by the core (`genai`).
    if rec.name.is_empty() && rec.genai.is_none() {
        notes.push(("empty_name", "A span arrived with an empty name; it is kept as it is.".into()));
    }

    let attrs = attributes(rec.attributes, limits.attributes, &mut limited)?;

    let mut events = Vec::new();
    let mut dropped_events = 0u32;
    for ev in rec.events {
        if events.len() >= limits.events {
            dropped_events += 1;
            continue;
        }
        events.push(event(ev, limits.event_attributes, &mut limited)?);
    }
    limited.events_dropped += dropped_events as u64;

    let mut links = Vec::new();
    let mut dropped_links = 0u32;
    for l in rec.links {
        if links.len() >= limits.links {
            dropped_links += 1;
            continue;
        }
        let (Some(tid), Some(sid)) = (parse_hex_id::<16>(l.trace_id), parse_hex_id::<8>(l.span_id)) else {
            notes.push(("bad_link", "A span link with malformed ids was dropped.".into()));
            dropped_links += 1;
            continue;
        };
        let a = attributes(l.attributes, limits.link_attributes, &mut limited)?;
        links.push(span::Link {
            trace_id: tid.to_vec(),
            span_id: sid.to_vec(),
            trace_state: l.trace_state,
            attributes: a.kept,
            dropped_attributes_count: a.dropped,
            flags: FLAG_SAMPLED,
        });
    }
    limited.links_dropped += dropped_links as u64;

    let status = rec.status.map(|s| {
        let code = if (0..=2).contains(&s.code) { s.code } else { 0 };
        // The message is only meaningful with an error status.
        let message = if code == 2 { s.message } else { String::new() };
        Status { code, message }
    });

    let operation = match rec.genai {
        None => None,
        Some(op) => Some(Operation::parse(op, limits.attributes, &mut limited, &mut notes)?),
    };
    let mut flags = if rec.sampled { FLAG_SAMPLED } else { 0 } | FLAG_HAS_IS_REMOTE;
    if rec.parent_remote && !parent_span_id.is_empty() {
        flags |= FLAG_IS_REMOTE;
    }

    Ok(ParsedSpan {
        span: Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            trace_state: rec.trace_state,
            parent_span_id,
            flags,
            name: rec.name,
            kind,
            start_time_unix_nano: rec.start,
            end_time_unix_nano: end,
            attributes: attrs.kept,
            dropped_attributes_count: attrs.dropped,
            events,
            dropped_events_count: dropped_events,
            links,
            dropped_links_count: dropped_links,
            status,
        },
        scope: rec.scope.unwrap_or_default(),
        limited,
        notes,
        sampled: rec.sampled,
        operation,
    })
}

fn attributes(raw: Option<&RawValue>, limits: AttributeLimits, limited: &mut Limited) -> Result<Attributes, String> {
    let Some(raw) = raw else { return Ok(Attributes::default()) };
    let a = parse_attributes(raw.get(), limits).map_err(|e| format!("attributes: {e}"))?;
    limited.attributes_dropped += a.dropped as u64;
    limited.values_truncated += a.truncated as u64;
    Ok(a)
}

fn event(ev: EventRecord, limits: AttributeLimits, limited: &mut Limited) -> Result<span::Event, String> {
    let mut a = attributes(ev.attributes, limits, limited)?;
    let name = match ev.exception {
        None => ev.name,
        Some(x) => {
            // Semantic conventions: an `exception` event with these attributes first.
            let mut kept: Vec<KeyValue> = Vec::new();
            let mut push = |key: &str, value: String| {
                if !value.is_empty() {
                    let mut v = value;
                    if let Some(limit) = limits.value_length {
                        if crate::attributes::truncate_chars(&mut v, limit) {
                            limited.values_truncated += 1;
                        }
                    }
                    kept.push(key_value(key, string_value(v)));
                }
            };
            push("exception.type", x.kind);
            push("exception.message", x.message);
            push("exception.stacktrace", x.stacktrace);
            if x.escaped {
                kept.push(key_value(
                    "exception.escaped",
                    opentelemetry_proto::tonic::common::v1::AnyValue {
                        value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::BoolValue(true)),
                    },
                ));
            }
            kept.extend(a.kept.drain(..).filter(|kv| !kv.key.starts_with("exception.")));
            let over = kept.len().saturating_sub(limits.count);
            kept.truncate(limits.count);
            a.dropped += over as u32;
            limited.attributes_dropped += over as u64;
            a.kept = kept;
            "exception".to_owned()
        }
    };
    Ok(span::Event { time_unix_nano: ev.time, name, attributes: a.kept, dropped_attributes_count: a.dropped })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SpanLimits = SpanLimits {
        attributes: AttributeLimits { count: 128, value_length: None },
        events: 128,
        links: 128,
        event_attributes: AttributeLimits { count: 128, value_length: None },
        link_attributes: AttributeLimits { count: 128, value_length: None },
    };
    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn rec(extra: &str) -> String {
        format!(r#"{{"trace_id":"{T}","span_id":"00f067aa0ba902b7","name":"n","start":10,"end":20{extra}}}"#)
    }

    #[test]
    fn full_record() {
        let p = parse_span(
            &rec(r#","parent_span_id":"1111111111111111","parent_remote":true,"kind":3,
                 "attributes":{"a":1},"events":[{"name":"e","time":15,"attributes":{"x":"y"}},
                 {"time":16,"exception":{"type":"ValueError","message":"boom","stacktrace":"at f","escaped":true}}],
                 "links":[{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4737","span_id":"2222222222222222","attributes":{"l":true}}],
                 "status":{"code":2,"message":"failed"},"scope":{"name":"agent","version":"1"}"#),
            &LIMITS,
        )
        .unwrap();
        let s = p.span;
        assert_eq!(s.kind, 3);
        assert_eq!(s.flags, 0x301);
        assert_eq!(s.events[1].name, "exception");
        let keys: Vec<_> = s.events[1].attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["exception.type", "exception.message", "exception.stacktrace", "exception.escaped"]);
        assert_eq!(s.links[0].attributes.len(), 1);
        assert_eq!(s.status, Some(Status { code: 2, message: "failed".into() }));
        assert_eq!(p.scope, Scope { name: "agent".into(), version: "1".into() });
    }

    #[test]
    fn limits_are_counted() {
        let events: Vec<String> = (0..5).map(|i| format!(r#"{{"name":"e{i}","time":{i}}}"#)).collect();
        let p = parse_span(
            &rec(&format!(r#","attributes":{{"a":"abcdef","b":2,"c":3}},"events":[{}]"#, events.join(","))),
            &SpanLimits { attributes: AttributeLimits { count: 2, value_length: Some(3) }, events: 2, ..LIMITS },
        )
        .unwrap();
        assert_eq!((p.span.attributes.len(), p.span.dropped_attributes_count), (2, 1));
        assert_eq!((p.span.events.len(), p.span.dropped_events_count), (2, 3));
        assert_eq!((p.limited.values_truncated, p.limited.events_dropped), (1, 3));
    }

    #[test]
    fn repairs_and_rejections() {
        let p =
            parse_span(&rec(r#","parent_span_id":"xyz","kind":9,"status":{"code":1,"message":"m"}"#), &LIMITS).unwrap();
        assert!(p.span.parent_span_id.is_empty());
        assert_eq!(p.span.kind, 1);
        assert_eq!(p.span.status.unwrap().message, "");
        assert_eq!(p.notes.len(), 2);
        let p = parse_span(
            &format!(r#"{{"trace_id":"{T}","span_id":"00f067aa0ba902b7","name":"","start":20,"end":10}}"#),
            &LIMITS,
        )
        .unwrap();
        assert_eq!(p.span.end_time_unix_nano, 20);
        assert_eq!(p.notes.len(), 2);
        assert!(parse_span(r#"{"trace_id":"00","span_id":"00f067aa0ba902b7","name":"n","start":1,"end":2}"#, &LIMITS)
            .is_err());
        assert!(parse_span(&rec(r#","attributes":{"k":{"double":"x"}}"#), &LIMITS).is_err());
        assert!(parse_span(&rec(r#","unknown":1"#), &LIMITS).is_err());
    }
}
