//! Attribute values as hosts write them in batch JSON (see `wit/polytel.wit`),
//! parsed straight into OTLP values with the configured limits applied while
//! parsing, so a 100 000-attribute map or a 10 MB string never grows past them.

use std::fmt;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, ArrayValue, KeyValue, KeyValueList};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

/// Arrays and maps nest at most this deep; deeper content is replaced by a
/// marker string and counted as truncated. Receivers decode with recursion
/// limits (prost: 100 messages, serde_json: 128 levels) that a deeper value
/// would exceed, losing the whole request.
pub const MAX_NESTING: usize = 16;
const TOO_DEEP: &str = "[nested too deep]";

/// Limits for one set of attributes (span, event, link, resource).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttributeLimits {
    /// Attributes kept; later ones are dropped and counted.
    pub count: usize,
    /// Characters kept of a string (bytes of a byte array); `None` is unlimited.
    pub value_length: Option<usize>,
}

impl AttributeLimits {
    pub const UNLIMITED: Self = Self { count: usize::MAX, value_length: None };
}

/// Attributes parsed under limits: what was kept, and how many were dropped.
#[derive(Debug, Default, PartialEq)]
pub struct Attributes {
    pub kept: Vec<KeyValue>,
    pub dropped: u32,
    /// Values cut to the length limit.
    pub truncated: u32,
    /// Attributes with an empty key or a null value: dropped, and counted in `dropped`.
    pub invalid: u32,
}

/// Parses a JSON object of attributes under `limits`.
pub fn parse_attributes(json: &str, limits: AttributeLimits) -> Result<Attributes, String> {
    let mut de = serde_json::Deserializer::from_str(json);
    let attrs = AttributesSeed { limits, depth: 0 }.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(attrs)
}

/// Parses one attribute value (a log body, captured content) under the value
/// length limit: the value and how many strings were cut. Reading it as a
/// one-member map reuses the attribute parser; the count limit does not apply,
/// so a map value keeps all its members.
pub fn parse_value(json: &str, limits: AttributeLimits) -> Result<(Option<AnyValue>, u32), String> {
    let wrapped = format!("{{\"v\":{json}}}");
    let mut parsed = parse_attributes(&wrapped, AttributeLimits { count: usize::MAX, ..limits })?;
    Ok((parsed.kept.pop().and_then(|kv| kv.value), parsed.truncated))
}

/// Cuts `s` to at most `limit` characters, on a character boundary.
pub fn truncate_chars(s: &mut String, limit: usize) -> bool {
    match s.char_indices().nth(limit) {
        Some((at, _)) => {
            s.truncate(at);
            true
        }
        None => false,
    }
}

pub fn string_value(s: impl Into<String>) -> AnyValue {
    AnyValue { value: Some(Value::StringValue(s.into())) }
}

pub fn int_value(i: i64) -> AnyValue {
    AnyValue { value: Some(Value::IntValue(i)) }
}

/// The text of a string value; `None` for other kinds.
pub fn string_of(value: Option<&AnyValue>) -> Option<&str> {
    match value?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

pub fn key_value(key: impl Into<String>, value: AnyValue) -> KeyValue {
    KeyValue { key: key.into(), value: Some(value), ..Default::default() }
}

/// Sets `key` in `attrs`, replacing an earlier value with the same key.
pub fn upsert(attrs: &mut Vec<KeyValue>, kv: KeyValue) {
    match attrs.iter_mut().find(|existing| existing.key == kv.key) {
        Some(existing) => *existing = kv,
        None => attrs.push(kv),
    }
}

pub struct AttributesSeed {
    pub limits: AttributeLimits,
    /// How deep inside other values this set of attributes is (0 at the top).
    pub depth: usize,
}

impl<'de> DeserializeSeed<'de> for AttributesSeed {
    type Value = Attributes;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Attributes, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AttributesSeed {
    type Value = Attributes;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of attributes")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes, A::Error> {
        let mut out = Attributes::default();
        while let Some(key) = map.next_key::<String>()? {
            let replaces = out.kept.iter().position(|kv| kv.key == key);
            if replaces.is_none() && out.kept.len() >= self.limits.count {
                map.next_value::<IgnoredAny>()?;
                out.dropped += 1;
                continue;
            }
            let mut truncated = 0;
            let value =
                map.next_value_seed(ValueSeed { limits: self.limits, truncated: &mut truncated, depth: self.depth })?;
            out.truncated += truncated;
            if key.is_empty() || value.value.is_none() {
                out.invalid += 1;
                out.dropped += 1;
                continue;
            }
            let kv = key_value(key, value);
            match replaces {
                Some(i) => out.kept[i] = kv,
                None => out.kept.push(kv),
            }
        }
        Ok(out)
    }
}

/// One attribute value. A JSON null gives an empty `AnyValue`.
struct ValueSeed<'a> {
    limits: AttributeLimits,
    truncated: &'a mut u32,
    /// Arrays and maps this value is inside.
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = AnyValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AnyValue, D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    /// Whether a container here would nest too deep; if so, counts it.
    fn too_deep(&mut self) -> bool {
        let deep = self.depth >= MAX_NESTING;
        if deep {
            *self.truncated += 1;
        }
        deep
    }
}

fn any(v: Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

impl ValueSeed<'_> {
    fn string(self, mut s: String) -> AnyValue {
        if let Some(limit) = self.limits.value_length {
            if truncate_chars(&mut s, limit) {
                *self.truncated += 1;
            }
        }
        any(Value::StringValue(s))
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = AnyValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attribute value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<AnyValue, E> {
        Ok(any(Value::BoolValue(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<AnyValue, E> {
        Ok(any(Value::IntValue(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<AnyValue, E> {
        // Above i64::MAX an integer cannot be an OTLP int; keep its magnitude.
        Ok(any(match i64::try_from(v) {
            Ok(i) => Value::IntValue(i),
            Err(_) => Value::DoubleValue(v as f64),
        }))
    }
    fn visit_f64<E>(self, v: f64) -> Result<AnyValue, E> {
        Ok(any(Value::DoubleValue(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<AnyValue, E> {
        Ok(self.string(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<AnyValue, E> {
        Ok(self.string(v))
    }
    fn visit_unit<E>(self) -> Result<AnyValue, E> {
        Ok(AnyValue { value: None })
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<AnyValue, A::Error> {
        if self.too_deep() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(any(Value::StringValue(TOO_DEEP.into())));
        }
        let mut values = Vec::new();
        let depth = self.depth + 1;
        while let Some(v) =
            seq.next_element_seed(ValueSeed { limits: self.limits, truncated: &mut *self.truncated, depth })?
        {
            values.push(v);
        }
        Ok(any(Value::ArrayValue(ArrayValue { values })))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
        let tag: String =
            map.next_key()?.ok_or_else(|| de::Error::custom("an empty object is not an attribute value"))?;
        let value = match tag.as_str() {
            "double" => any(Value::DoubleValue(map.next_value::<Double>()?.0)),
            "bytes" => {
                let text: String = map.next_value()?;
                let mut bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map_err(|e| de::Error::custom(format!("bytes value is not base64: {e}")))?;
                if let Some(limit) = self.limits.value_length {
                    if bytes.len() > limit {
                        bytes.truncate(limit);
                        *self.truncated += 1;
                    }
                }
                any(Value::BytesValue(bytes))
            }
            "map" if self.depth >= MAX_NESTING => {
                map.next_value::<IgnoredAny>()?;
                *self.truncated += 1;
                any(Value::StringValue(TOO_DEEP.into()))
            }
            "map" => {
                // A nested map is held to the same count limit as the attributes
                // it is in: memory and work stay bounded by the limits.
                let nested = map.next_value_seed(AttributesSeed { limits: self.limits, depth: self.depth + 1 })?;
                *self.truncated += nested.truncated + nested.dropped;
                any(Value::KvlistValue(KeyValueList { values: nested.kept }))
            }
            other => {
                return Err(de::Error::custom(format!(
                    "unknown attribute value tag {other:?} (expected double, bytes or map)"
                )))
            }
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("a tagged attribute value has exactly one key"));
        }
        Ok(value)
    }
}

/// A double written as a JSON number or as "NaN", "Infinity" or "-Infinity".
pub struct Double(pub f64);

impl<'de> serde::Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Double;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Double, E> {
                Ok(Double(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Double, E> {
                Ok(Double(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Double, E> {
                Ok(Double(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Double, E> {
                match v {
                    "NaN" => Ok(Double(f64::NAN)),
                    "Infinity" => Ok(Double(f64::INFINITY)),
                    "-Infinity" => Ok(Double(f64::NEG_INFINITY)),
                    _ => Err(E::custom(format!("{v:?} is not a double"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Attributes {
        parse_attributes(json, AttributeLimits::UNLIMITED).unwrap()
    }

    fn value(a: &Attributes, key: &str) -> Option<Value> {
        a.kept.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
    }

    #[test]
    fn every_value_type() {
        let a = parse(
            r#"{"s":"x","b":true,"i":-3,"f":1.5,"d":{"double":2},"nan":{"double":"NaN"},
                "inf":{"double":"-Infinity"},"by":{"bytes":"AQI="},"arr":[1,"two"],
                "m":{"map":{"k":{"map":{"deep":false}}}}}"#,
        );
        assert_eq!(value(&a, "s"), Some(Value::StringValue("x".into())));
        assert_eq!(value(&a, "b"), Some(Value::BoolValue(true)));
        assert_eq!(value(&a, "i"), Some(Value::IntValue(-3)));
        assert_eq!(value(&a, "f"), Some(Value::DoubleValue(1.5)));
        assert_eq!(value(&a, "d"), Some(Value::DoubleValue(2.0)));
        assert!(matches!(value(&a, "nan"), Some(Value::DoubleValue(x)) if x.is_nan()));
        assert_eq!(value(&a, "inf"), Some(Value::DoubleValue(f64::NEG_INFINITY)));
        assert_eq!(value(&a, "by"), Some(Value::BytesValue(vec![1, 2])));
        let Some(Value::ArrayValue(arr)) = value(&a, "arr") else { panic!("array expected") };
        assert_eq!(arr.values.len(), 2);
        let Some(Value::KvlistValue(m)) = value(&a, "m") else { panic!("map expected") };
        assert_eq!(m.values[0].key, "k");
        assert_eq!(a.kept.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>()[..3], ["s", "b", "i"]);
    }

    #[test]
    fn count_limit_drops_and_counts() {
        let json = format!("{{{}}}", (0..1000).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(","));
        let a = parse_attributes(&json, AttributeLimits { count: 128, value_length: None }).unwrap();
        assert_eq!(a.kept.len(), 128);
        assert_eq!(a.dropped, 872);
        assert_eq!(a.kept[127].key, "k127");
    }

    #[test]
    fn value_length_limit_cuts_on_char_boundaries() {
        let a = parse_attributes(
            r#"{"s":"héllo wörld","arr":["abcdef"],"b":{"bytes":"AQIDBAUG"},"m":{"map":{"x":"abcdef"}}}"#,
            AttributeLimits { count: 128, value_length: Some(4) },
        )
        .unwrap();
        assert_eq!(value(&a, "s"), Some(Value::StringValue("héll".into())));
        assert_eq!(value(&a, "b"), Some(Value::BytesValue(vec![1, 2, 3, 4])));
        assert_eq!(a.truncated, 4);
    }

    #[test]
    fn later_duplicate_key_replaces_and_empty_or_null_are_invalid() {
        let a = parse(r#"{"k":1,"":2,"n":null,"k":3}"#);
        assert_eq!(a.kept.len(), 1);
        assert_eq!(value(&a, "k"), Some(Value::IntValue(3)));
        assert_eq!((a.invalid, a.dropped), (2, 2));
    }

    #[test]
    fn malformed_values_are_errors() {
        for bad in [r#"{"k":{"double":"x"}}"#, r#"{"k":{"bytes":"!!"}}"#, r#"{"k":{"what":1}}"#, r#"{"k":{}}"#, "[1]"] {
            assert!(parse_attributes(bad, AttributeLimits::UNLIMITED).is_err(), "{bad}");
        }
    }

    #[test]
    fn deep_nesting_is_cut_at_the_limit() {
        let depth = 40;
        let json = format!("{{\"m\":{}1{}}}", "{\"map\":{\"k\":".repeat(depth), "}}".repeat(depth));
        let a = parse(&json);
        let mut v = value(&a, "m");
        let mut levels = 0;
        while let Some(Value::KvlistValue(kv)) = v {
            levels += 1;
            v = kv.values[0].value.clone().and_then(|v| v.value);
        }
        assert_eq!(levels, MAX_NESTING);
        assert_eq!(v, Some(Value::StringValue(TOO_DEEP.into())));
        assert_eq!(a.truncated, 1);
        let arrays = format!("{{\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(parse(&arrays).truncated, 1);
    }

    #[test]
    fn huge_unsigned_becomes_double() {
        let a = parse(r#"{"u":18446744073709551615}"#);
        assert_eq!(value(&a, "u"), Some(Value::DoubleValue(u64::MAX as f64)));
    }
}
