//! OTLP/JSON, written and read directly: the Proto3 JSON mapping with OTLP's
//! rules (hex ids, integer enums, lowerCamelCase keys, 64-bit integers as
//! strings, non-finite doubles as "NaN"/"Infinity"/"-Infinity"). Written with
//! default-valued fields left out and members in field-number order, so output
//! is deterministic; read leniently, as receivers must (numbers or strings for
//! 64-bit integers, original snake_case names too, unknown fields ignored).

use std::fmt::Write;

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use serde_json::Value as Json;

use crate::ids::to_hex;

/// Reads an ExportTraceServiceRequest from OTLP/JSON.
pub fn decode_trace_request(text: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    let root: Json = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let resource_spans = list(&root, "resourceSpans")
        .iter()
        .map(|rs| {
            Ok(ResourceSpans {
                resource: member(rs, "resource").map(|r| Resource {
                    attributes: read_attributes(r),
                    dropped_attributes_count: uint(r, "droppedAttributesCount") as u32,
                    ..Default::default()
                }),
                scope_spans: list(rs, "scopeSpans")
                    .iter()
                    .map(|ss| {
                        Ok(ScopeSpans {
                            scope: member(ss, "scope").map(|sc| InstrumentationScope {
                                name: string(sc, "name"),
                                version: string(sc, "version"),
                                attributes: read_attributes(sc),
                                dropped_attributes_count: uint(sc, "droppedAttributesCount") as u32,
                            }),
                            spans: list(ss, "spans").iter().map(decode_span).collect::<Result<_, String>>()?,
                            schema_url: string(ss, "schemaUrl"),
                        })
                    })
                    .collect::<Result<_, String>>()?,
                schema_url: string(rs, "schemaUrl"),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(ExportTraceServiceRequest { resource_spans })
}

fn decode_span(s: &Json) -> Result<Span, String> {
    Ok(Span {
        trace_id: hex(s, "traceId")?,
        span_id: hex(s, "spanId")?,
        trace_state: string(s, "traceState"),
        parent_span_id: hex(s, "parentSpanId")?,
        flags: uint(s, "flags") as u32,
        name: string(s, "name"),
        kind: uint(s, "kind") as i32,
        start_time_unix_nano: uint(s, "startTimeUnixNano"),
        end_time_unix_nano: uint(s, "endTimeUnixNano"),
        attributes: read_attributes(s),
        dropped_attributes_count: uint(s, "droppedAttributesCount") as u32,
        events: list(s, "events")
            .iter()
            .map(|e| span::Event {
                time_unix_nano: uint(e, "timeUnixNano"),
                name: string(e, "name"),
                attributes: read_attributes(e),
                dropped_attributes_count: uint(e, "droppedAttributesCount") as u32,
            })
            .collect(),
        dropped_events_count: uint(s, "droppedEventsCount") as u32,
        links: list(s, "links")
            .iter()
            .map(|l| {
                Ok(span::Link {
                    trace_id: hex(l, "traceId")?,
                    span_id: hex(l, "spanId")?,
                    trace_state: string(l, "traceState"),
                    attributes: read_attributes(l),
                    dropped_attributes_count: uint(l, "droppedAttributesCount") as u32,
                    flags: uint(l, "flags") as u32,
                })
            })
            .collect::<Result<_, String>>()?,
        dropped_links_count: uint(s, "droppedLinksCount") as u32,
        status: member(s, "status").map(|st| Status { message: string(st, "message"), code: uint(st, "code") as i32 }),
    })
}

/// A member by its lowerCamelCase name or its original snake_case name.
fn member<'a>(v: &'a Json, camel: &str) -> Option<&'a Json> {
    v.get(camel).or_else(|| {
        let snake: String = camel
            .chars()
            .flat_map(|c| if c.is_ascii_uppercase() { vec!['_', c.to_ascii_lowercase()] } else { vec![c] })
            .collect();
        v.get(snake)
    })
}

fn list<'a>(v: &'a Json, name: &str) -> &'a [Json] {
    member(v, name).and_then(Json::as_array).map_or(&[], Vec::as_slice)
}

fn string(v: &Json, name: &str) -> String {
    member(v, name).and_then(Json::as_str).unwrap_or_default().to_owned()
}

/// An unsigned integer written as a number or a decimal string.
fn uint(v: &Json, name: &str) -> u64 {
    member(v, name).and_then(|n| n.as_u64().or_else(|| n.as_str()?.parse().ok())).unwrap_or(0)
}

fn hex(v: &Json, name: &str) -> Result<Vec<u8>, String> {
    let Some(text) = member(v, name).and_then(Json::as_str).filter(|t| !t.is_empty()) else { return Ok(Vec::new()) };
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{name} {text:?} is not hex"));
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| e.to_string())).collect()
}

fn read_attributes(v: &Json) -> Vec<KeyValue> {
    list(v, "attributes").iter().map(read_key_value).collect()
}

fn read_key_value(kv: &Json) -> KeyValue {
    KeyValue { key: string(kv, "key"), value: member(kv, "value").map(read_value), ..Default::default() }
}

fn read_value(v: &Json) -> AnyValue {
    let value = if let Some(s) = member(v, "stringValue").and_then(Json::as_str) {
        Some(Value::StringValue(s.to_owned()))
    } else if let Some(b) = member(v, "boolValue").and_then(Json::as_bool) {
        Some(Value::BoolValue(b))
    } else if let Some(i) = member(v, "intValue") {
        i.as_i64().or_else(|| i.as_str()?.parse().ok()).map(Value::IntValue)
    } else if let Some(d) = member(v, "doubleValue") {
        d.as_f64()
            .or_else(|| match d.as_str()? {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                other => other.parse().ok(),
            })
            .map(Value::DoubleValue)
    } else if let Some(b) = member(v, "bytesValue").and_then(Json::as_str) {
        base64::engine::general_purpose::STANDARD.decode(b).ok().map(Value::BytesValue)
    } else if let Some(a) = member(v, "arrayValue") {
        Some(Value::ArrayValue(ArrayValue { values: list(a, "values").iter().map(read_value).collect() }))
    } else {
        member(v, "kvlistValue").map(|kv| {
            Value::KvlistValue(KeyValueList { values: list(kv, "values").iter().map(read_key_value).collect() })
        })
    };
    AnyValue { value }
}

pub fn trace_request(req: &ExportTraceServiceRequest) -> String {
    let mut out = String::with_capacity(4096);
    let mut w = Obj::new(&mut out);
    w.array("resourceSpans", &req.resource_spans, |out, rs| {
        let mut o = Obj::new(out);
        if let Some(r) = &rs.resource {
            o.key("resource");
            let mut ro = Obj::new(o.out());
            ro.attributes("attributes", &r.attributes);
            ro.uint("droppedAttributesCount", r.dropped_attributes_count as u64);
            ro.end();
        }
        o.array("scopeSpans", &rs.scope_spans, |out, ss| {
            let mut so = Obj::new(out);
            if let Some(scope) = &ss.scope {
                so.key("scope");
                scope_json(so.out(), scope);
            }
            so.array("spans", &ss.spans, span_json);
            so.string("schemaUrl", &ss.schema_url);
            so.end();
        });
        o.string("schemaUrl", &rs.schema_url);
        o.end();
    });
    w.end();
    out
}

fn scope_json(out: &mut String, scope: &InstrumentationScope) {
    let mut o = Obj::new(out);
    o.string("name", &scope.name);
    o.string("version", &scope.version);
    o.attributes("attributes", &scope.attributes);
    o.uint("droppedAttributesCount", scope.dropped_attributes_count as u64);
    o.end();
}

fn span_json(out: &mut String, s: &Span) {
    let mut o = Obj::new(out);
    o.hex("traceId", &s.trace_id);
    o.hex("spanId", &s.span_id);
    o.string("traceState", &s.trace_state);
    o.hex("parentSpanId", &s.parent_span_id);
    o.uint("flags", s.flags as u64);
    o.string("name", &s.name);
    o.uint("kind", s.kind as u64);
    o.u64_string("startTimeUnixNano", s.start_time_unix_nano);
    o.u64_string("endTimeUnixNano", s.end_time_unix_nano);
    o.attributes("attributes", &s.attributes);
    o.uint("droppedAttributesCount", s.dropped_attributes_count as u64);
    o.array("events", &s.events, |out, e: &span::Event| {
        let mut eo = Obj::new(out);
        eo.u64_string("timeUnixNano", e.time_unix_nano);
        eo.string("name", &e.name);
        eo.attributes("attributes", &e.attributes);
        eo.uint("droppedAttributesCount", e.dropped_attributes_count as u64);
        eo.end();
    });
    o.uint("droppedEventsCount", s.dropped_events_count as u64);
    o.array("links", &s.links, |out, l: &span::Link| {
        let mut lo = Obj::new(out);
        lo.hex("traceId", &l.trace_id);
        lo.hex("spanId", &l.span_id);
        lo.string("traceState", &l.trace_state);
        lo.attributes("attributes", &l.attributes);
        lo.uint("droppedAttributesCount", l.dropped_attributes_count as u64);
        lo.uint("flags", l.flags as u64);
        lo.end();
    });
    o.uint("droppedLinksCount", s.dropped_links_count as u64);
    if let Some(st) = &s.status {
        if st.code != 0 || !st.message.is_empty() {
            o.key("status");
            let mut so = Obj::new(o.out());
            so.string("message", &st.message);
            so.uint("code", st.code as u64);
            so.end();
        }
    }
    o.end();
}

fn key_values(out: &mut String, kvs: &[KeyValue]) {
    out.push('[');
    for (i, kv) in kvs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        push_str(out, &kv.key);
        out.push_str(",\"value\":");
        any_value(out, kv.value.as_ref());
        out.push('}');
    }
    out.push(']');
}

fn any_value(out: &mut String, v: Option<&AnyValue>) {
    match v.and_then(|v| v.value.as_ref()) {
        None => out.push_str("{}"),
        Some(Value::StringValue(s)) => {
            out.push_str("{\"stringValue\":");
            push_str(out, s);
            out.push('}');
        }
        Some(Value::BoolValue(b)) => {
            let _ = write!(out, "{{\"boolValue\":{b}}}");
        }
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{{\"intValue\":\"{i}\"}}");
        }
        Some(Value::DoubleValue(d)) => {
            out.push_str("{\"doubleValue\":");
            push_double(out, *d);
            out.push('}');
        }
        Some(Value::BytesValue(b)) => {
            out.push_str("{\"bytesValue\":\"");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push_str("\"}");
        }
        Some(Value::ArrayValue(a)) => {
            out.push_str("{\"arrayValue\":{\"values\":[");
            for (i, v) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                any_value(out, Some(v));
            }
            out.push_str("]}}");
        }
        Some(Value::KvlistValue(kv)) => {
            out.push_str("{\"kvlistValue\":{\"values\":");
            key_values(out, &kv.values);
            out.push_str("}}");
        }
        Some(Value::StringValueStrindex(i)) => {
            let _ = write!(out, "{{\"stringValueStrindex\":{i}}}");
        }
    }
}

fn push_double(out: &mut String, d: f64) {
    if d.is_nan() {
        out.push_str("\"NaN\"");
    } else if d.is_infinite() {
        out.push_str(if d > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
    } else {
        // serde_json prints the shortest text that reads back as the same double.
        out.push_str(&serde_json::Number::from_f64(d).expect("finite").to_string());
    }
}

fn push_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("strings always serialise"));
}

/// Writes one JSON object member by member, leaving out default values.
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
    }

    fn out(&mut self) -> &mut String {
        self.out
    }

    fn string(&mut self, k: &str, v: &str) {
        if !v.is_empty() {
            self.key(k);
            push_str(self.out, v);
        }
    }

    fn hex(&mut self, k: &str, v: &[u8]) {
        if !v.is_empty() {
            self.key(k);
            self.out.push('"');
            self.out.push_str(&to_hex(v));
            self.out.push('"');
        }
    }

    fn uint(&mut self, k: &str, v: u64) {
        if v != 0 {
            self.key(k);
            let _ = write!(self.out, "{v}");
        }
    }

    fn u64_string(&mut self, k: &str, v: u64) {
        if v != 0 {
            self.key(k);
            let _ = write!(self.out, "\"{v}\"");
        }
    }

    fn attributes(&mut self, k: &str, kvs: &[KeyValue]) {
        if !kvs.is_empty() {
            self.key(k);
            key_values(self.out, kvs);
        }
    }

    fn array<T>(&mut self, k: &str, items: &[T], mut each: impl FnMut(&mut String, &T)) {
        if items.is_empty() {
            return;
        }
        self.key(k);
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            each(self.out, item);
        }
        self.out.push(']');
    }

    fn end(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::{key_value, string_value};

    #[test]
    fn decode_reads_what_encode_writes() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            name: "n".into(),
            kind: 3,
            start_time_unix_nano: u64::MAX,
            end_time_unix_nano: 6,
            attributes: vec![
                key_value("nan", AnyValue { value: Some(Value::DoubleValue(f64::NEG_INFINITY)) }),
                key_value("b", AnyValue { value: Some(Value::BytesValue(vec![0, 255])) }),
                key_value(
                    "m",
                    AnyValue {
                        value: Some(Value::KvlistValue(KeyValueList {
                            values: vec![key_value("x", string_value("y"))],
                        })),
                    },
                ),
                key_value(
                    "a",
                    AnyValue {
                        value: Some(Value::ArrayValue(ArrayValue {
                            values: vec![AnyValue { value: Some(Value::IntValue(i64::MIN)) }],
                        })),
                    },
                ),
            ],
            events: vec![span::Event { time_unix_nano: 9, name: "e".into(), ..Default::default() }],
            links: vec![span::Link { trace_id: vec![4; 16], span_id: vec![5; 8], flags: 1, ..Default::default() }],
            status: Some(Status { code: 2, message: "m".into() }),
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![key_value("service.name", string_value("s"))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope { name: "sc".into(), ..Default::default() }),
                    spans: vec![span],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let text = trace_request(&req);
        assert_eq!(decode_trace_request(text.as_bytes()).unwrap(), req);
        let snake = r#"{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"0a0b","start_time_unix_nano":12,"attributes":[{"key":"k","value":{"int_value":5}}]}]}]}]}"#;
        let got = decode_trace_request(snake.as_bytes()).unwrap();
        let s = &got.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!((s.trace_id.clone(), s.start_time_unix_nano), (vec![10, 11], 12));
        assert_eq!(s.attributes[0].value.as_ref().unwrap().value, Some(Value::IntValue(5)));
        assert!(decode_trace_request(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#).is_err());
    }

    #[test]
    fn values_and_defaults() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "n".into(),
            kind: 2,
            start_time_unix_nano: 5,
            end_time_unix_nano: 6,
            attributes: vec![
                key_value("s", string_value("a\"b")),
                key_value("nan", AnyValue { value: Some(Value::DoubleValue(f64::NAN)) }),
                key_value("d", AnyValue { value: Some(Value::DoubleValue(1.0)) }),
                key_value("i", AnyValue { value: Some(Value::IntValue(-7)) }),
            ],
            ..Default::default()
        };
        let mut out = String::new();
        span_json(&mut out, &span);
        assert_eq!(
            out,
            r#"{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","name":"n","kind":2,"startTimeUnixNano":"5","endTimeUnixNano":"6","attributes":[{"key":"s","value":{"stringValue":"a\"b"}},{"key":"nan","value":{"doubleValue":"NaN"}},{"key":"d","value":{"doubleValue":1.0}},{"key":"i","value":{"intValue":"-7"}}]}"#
        );
    }
}
