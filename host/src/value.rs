//! Attribute values of the Rust API and their batch JSON (see `wit/polytel.wit`).

use base64::Engine as _;

/// An attribute value of any OTLP type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

/// Appends `s` as a JSON string, escaping in place (no allocation).
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut clean = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[clean..i]);
        if escape.is_empty() {
            use std::fmt::Write;
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        clean = i + 1;
    }
    out.push_str(&s[clean..]);
    out.push('"');
}

/// Appends a double as a plain JSON number, or as "NaN", "Infinity" or
/// "-Infinity", which JSON numbers cannot be (see `record-metrics` in the WIT).
pub(crate) fn push_number(out: &mut String, value: f64) {
    use std::fmt::Write;
    if value.is_finite() {
        let _ = write!(out, "{value:?}");
    } else if value.is_nan() {
        out.push_str(r#""NaN""#);
    } else if value > 0.0 {
        out.push_str(r#""Infinity""#);
    } else {
        out.push_str(r#""-Infinity""#);
    }
}

/// Appends `,"scope":{"name":…,"version":…}` to a record.
pub(crate) fn push_scope(out: &mut String, name: &str, version: &str) {
    out.push_str(r#","scope":{"name":"#);
    push_json_str(out, name);
    out.push_str(r#","version":"#);
    push_json_str(out, version);
    out.push('}');
}

/// Appends lower-case hex of `bytes`.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

/// Anything that can be an attribute value. It is written straight into the
/// span's record as batch JSON (`wit/polytel.wit`), so setting an attribute
/// allocates nothing of its own.
pub trait AttributeValue {
    fn write_json(&self, out: &mut String);
}

impl AttributeValue for str {
    fn write_json(&self, out: &mut String) {
        push_json_str(out, self);
    }
}
impl AttributeValue for String {
    fn write_json(&self, out: &mut String) {
        push_json_str(out, self);
    }
}
impl AttributeValue for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}
macro_rules! integer_values {
    ($($t:ty),*) => {$(
        impl AttributeValue for $t {
            fn write_json(&self, out: &mut String) {
                use std::fmt::Write;
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
integer_values!(i64, i32, u32, u16, u8);
impl AttributeValue for f64 {
    fn write_json(&self, out: &mut String) {
        Value::Double(*self).write_json(out);
    }
}
impl<T: AttributeValue + ?Sized> AttributeValue for &T {
    fn write_json(&self, out: &mut String) {
        (**self).write_json(out);
    }
}
impl<T: AttributeValue> AttributeValue for [T] {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            v.write_json(out);
        }
        out.push(']');
    }
}
impl<T: AttributeValue> AttributeValue for Vec<T> {
    fn write_json(&self, out: &mut String) {
        self.as_slice().write_json(out);
    }
}

/// Appends `"key":value` to a JSON object's members, with a comma if needed.
pub(crate) fn push_member(members: &mut String, key: &str, value: &(impl AttributeValue + ?Sized)) {
    if !members.is_empty() {
        members.push(',');
    }
    push_json_str(members, key);
    members.push(':');
    value.write_json(members);
}

impl AttributeValue for Value {
    fn write_json(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            Value::String(s) => push_json_str(out, s),
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Double(d) if d.is_nan() => out.push_str(r#"{"double":"NaN"}"#),
            Value::Double(d) if d.is_infinite() => {
                out.push_str(if *d > 0.0 { r#"{"double":"Infinity"}"# } else { r#"{"double":"-Infinity"}"# })
            }
            Value::Double(d) => {
                let _ = write!(out, r#"{{"double":{d:?}}}"#);
            }
            Value::Bytes(b) => {
                let _ = write!(out, r#"{{"bytes":"{}"}}"#, base64::engine::general_purpose::STANDARD.encode(b));
            }
            Value::Array(items) => items.as_slice().write_json(out),
            Value::Map(kvs) => {
                out.push_str(r#"{"map":"#);
                write_attributes(out, kvs);
                out.push('}');
            }
        }
    }
}

pub(crate) fn write_attributes(out: &mut String, kvs: &[(String, Value)]) {
    out.push('{');
    for (i, (k, v)) in kvs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, k);
        out.push(':');
        v.write_json(out);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_json() {
        for s in ["plain", "quote\" back\\slash", "ctl\u{1}\n\r\t", "ünï ✓ 😀", ""] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s, "{out}");
        }
    }

    #[test]
    fn json_follows_the_contract() {
        let v = Value::Map(vec![
            ("d".into(), Value::Double(1.0)),
            ("n".into(), Value::Double(f64::NAN)),
            ("b".into(), Value::Bytes(vec![1, 2])),
            ("a".into(), Value::from(vec![1i64, 2])),
        ]);
        let mut out = String::new();
        v.write_json(&mut out);
        assert_eq!(out, r#"{"map":{"d":{"double":1.0},"n":{"double":"NaN"},"b":{"bytes":"AQI="},"a":[1,2]}}"#);
    }
}
