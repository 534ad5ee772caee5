//! Field formats of Application Insights envelopes (shared/reference/
//! azure-monitor.md §4(b)): times, durations, the truncation limits, and
//! attributes as `properties` (a map of strings).

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

use crate::jsonl::rfc3339_nanos;

/// §4(b) "Truncation": name, responseCode/resultCode, source, type, target.
pub const MAX_NAME: usize = 1024;
/// §4(b) "Truncation": a request's url.
pub const MAX_URL: usize = 2048;
/// §4(b) "Truncation": a dependency's data (command or URL).
pub const MAX_DATA: usize = 8192;
/// §4(b) "Truncation": longer property keys are dropped.
pub const MAX_PROPERTY_KEY: usize = 150;
/// §4(b) "Truncation": property values.
pub const MAX_PROPERTY_VALUE: usize = 8192;
/// §4(b) "Truncation": property values are "larger for GenAI content"; the
/// reference gives no number, so polytel allows GenAI attributes (`gen_ai.*`:
/// prompts, completions, tool arguments) as much as a message body.
pub const MAX_GENAI_PROPERTY_VALUE: usize = 32768;
/// §4(b) "Truncation": exception message and stack, and a message body.
pub const MAX_MESSAGE: usize = 32768;

/// §4(b) envelope `time`: ISO-8601 UTC with microseconds, as the reference's
/// example `2026-01-01T12:00:00.123456Z` (nanoseconds are cut, not rounded).
pub fn time(unix_nanos: u64) -> String {
    let text = rfc3339_nanos(unix_nanos);
    // `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: keep six of the nine digits.
    format!("{}Z", &text[..text.len() - 4])
}

/// §4(b) "Duration format" (`_utils.py` `ns_to_duration`):
/// `{days}.{hh:02}:{mm:02}:{ss:02}.{fff:03}`, nanoseconds rounded to the
/// nearest millisecond; 1.5 s is `0.00:00:01.500`.
pub fn duration(nanos: u64) -> String {
    let millis = nanos / 1_000_000 + u64::from(nanos % 1_000_000 >= 500_000);
    let (secs, ms) = (millis / 1000, millis % 1000);
    let (mins, s) = (secs / 60, secs % 60);
    let (hours, m) = (mins / 60, mins % 60);
    let (days, h) = (hours / 24, hours % 24);
    format!("{days}.{h:02}:{m:02}:{s:02}.{ms:03}")
}

/// `s` cut to at most `limit` characters.
pub fn truncate(s: &str, limit: usize) -> String {
    match s.char_indices().nth(limit) {
        Some((at, _)) => s[..at].to_owned(),
        None => s.to_owned(),
    }
}

/// An attribute value as a property's text: a string as it is, anything else
/// as JSON (`true`, `42`, `1.5`, `["a","b"]`). The Python exporter uses
/// Python's `str()` (`True`, `('a', 'b')`); JSON reads the same from every
/// host and parses back.
pub fn text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        _ => crate::jsonl::value_json(v).to_string(),
    }
}

/// The text of a string, integer or double attribute named `key`.
pub fn attribute<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().rev().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

/// The first of `keys` present, as text; empty strings count as absent.
pub fn first_text(attrs: &[KeyValue], keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| attribute(attrs, k).map(|v| text(Some(v))).filter(|t| !t.is_empty()))
}

/// The first of `keys` present as an integer (or a string of one).
pub fn first_int(attrs: &[KeyValue], keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|k| match attribute(attrs, k)?.value.as_ref()? {
        Value::IntValue(i) => Some(*i),
        Value::DoubleValue(d) if d.fract() == 0.0 && d.abs() < 9e15 => Some(*d as i64),
        Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// The first of `keys` present as a number.
pub fn first_number(attrs: &[KeyValue], keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| match attribute(attrs, k)?.value.as_ref()? {
        Value::IntValue(i) => Some(*i as f64),
        Value::DoubleValue(d) if d.is_finite() => Some(*d),
        Value::StringValue(s) => s.trim().parse().ok().filter(|d: &f64| d.is_finite()),
        _ => None,
    })
}

/// Attributes as `properties` (§4(b) "Attributes, events and links"), except
/// those `skip` says were mapped to fields: keys longer than 150 characters
/// are dropped, values cut to 8192 characters (32768 for GenAI ones). A
/// repeated key keeps its last value.
pub fn properties(attrs: &[KeyValue], skip: impl Fn(&str) -> bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for kv in attrs {
        if kv.key.is_empty() || kv.key.chars().count() > MAX_PROPERTY_KEY || skip(&kv.key) {
            continue;
        }
        if kv.value.as_ref().and_then(|v| v.value.as_ref()).is_none() {
            continue;
        }
        let limit = if kv.key.starts_with("gen_ai.") { MAX_GENAI_PROPERTY_VALUE } else { MAX_PROPERTY_VALUE };
        out.insert(kv.key.clone(), truncate(&text(kv.value.as_ref()), limit));
    }
    out
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::ArrayValue;

    use super::*;
    use crate::attributes::{int_value, key_value, string_value};

    #[test]
    fn times() {
        for (nanos, expected) in [
            (0, "1970-01-01T00:00:00.000000Z"),
            (1_767_268_800_123_456_789, "2026-01-01T12:00:00.123456Z"),
            (1_767_268_800_000_000_999, "2026-01-01T12:00:00.000000Z"),
            (u64::MAX, "2554-07-21T23:34:33.709551Z"),
        ] {
            assert_eq!(time(nanos), expected, "{nanos}");
        }
    }

    #[test]
    fn durations() {
        const MS: u64 = 1_000_000;
        const S: u64 = 1000 * MS;
        for (nanos, expected) in [
            (0, "0.00:00:00.000"),
            (1_500 * MS, "0.00:00:01.500"),
            (499_999, "0.00:00:00.000"),
            (500_000, "0.00:00:00.001"),
            (59 * S + 999 * MS + 600_000, "0.00:01:00.000"),
            (3_723 * S + 4 * MS, "0.01:02:03.004"),
            (86_400 * S * 3 + 3_600 * S * 23, "3.23:00:00.000"),
            (u64::MAX, "213503.23:34:33.710"),
        ] {
            assert_eq!(duration(nanos), expected, "{nanos}");
        }
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn properties_as_text_with_limits() {
        let attrs = vec![
            key_value("s", string_value("x")),
            key_value("i", int_value(-4)),
            key_value("b", AnyValue { value: Some(Value::BoolValue(true)) }),
            key_value("d", AnyValue { value: Some(Value::DoubleValue(2.0)) }),
            key_value("a", AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![string_value("p")] })) }),
            key_value("k".repeat(151), string_value("dropped")),
            key_value("k".repeat(150), string_value("kept")),
            key_value("long", string_value("v".repeat(9000))),
            key_value("gen_ai.input.messages", string_value("m".repeat(40_000))),
            key_value("skipped.one", string_value("x")),
            KeyValue { key: "none".into(), value: None, ..Default::default() },
            key_value("s", string_value("last")),
        ];
        let p = properties(&attrs, |k| k.starts_with("skipped."));
        assert_eq!(p["s"], "last");
        assert_eq!(
            (p["i"].as_str(), p["b"].as_str(), p["d"].as_str(), p["a"].as_str()),
            ("-4", "true", "2.0", r#"["p"]"#)
        );
        assert_eq!(p["long"].len(), MAX_PROPERTY_VALUE);
        assert_eq!(p["gen_ai.input.messages"].len(), MAX_GENAI_PROPERTY_VALUE);
        assert!(p.contains_key(&"k".repeat(150)) && !p.contains_key(&"k".repeat(151)));
        assert!(!p.contains_key("skipped.one") && !p.contains_key("none"));
    }

    #[test]
    fn typed_lookups() {
        let attrs = vec![
            key_value("code", string_value(" 404 ")),
            key_value("n", int_value(7)),
            key_value("rate", AnyValue { value: Some(Value::DoubleValue(25.0)) }),
            key_value("empty", string_value("")),
        ];
        assert_eq!(first_int(&attrs, &["missing", "code"]), Some(404));
        assert_eq!(first_int(&attrs, &["rate"]), Some(25));
        assert_eq!(first_number(&attrs, &["rate"]), Some(25.0));
        assert_eq!(first_text(&attrs, &["empty", "n"]).as_deref(), Some("7"));
        assert_eq!(first_text(&attrs, &["missing"]), None);
    }
}
