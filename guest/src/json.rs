//! Small serde helpers shared by the core's JSON surfaces.

use serde::Serializer;

/// 64-bit integers travel as decimal strings: JavaScript numbers lose precision
/// above 2^53.
pub fn u64_as_string<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// A JSON object of strings (members sorted by key, so output is deterministic).
pub fn string_pairs(pairs: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(pairs.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect())
}
