//! OTLP/JSON, written directly: the Proto3 JSON mapping with OTLP's rules
//! (hex ids, integer enums, lowerCamelCase keys, 64-bit integers as strings,
//! non-finite doubles as "NaN"/"Infinity"/"-Infinity"), default-valued fields
//! left out, members in field-number order so output is deterministic.

use std::fmt::Write;

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span, Span};

use crate::ids::to_hex;

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
