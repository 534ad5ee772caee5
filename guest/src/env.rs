//! The OTEL_* environment as the host read it, with the specification's parsing
//! rules: an empty value is unset, only `true` is true, enums are
//! case-insensitive, durations are integer milliseconds, and an invalid value is
//! ignored with a warning.

use std::collections::BTreeMap;

pub struct Env<'a> {
    vars: &'a BTreeMap<String, String>,
    warnings: &'a mut Vec<String>,
}

impl<'a> Env<'a> {
    pub fn new(vars: &'a BTreeMap<String, String>, warnings: &'a mut Vec<String>) -> Self {
        Self { vars, warnings }
    }

    /// Queues a warning once: the generic OTEL_EXPORTER_OTLP_* variables are
    /// read for every signal, and one bad value deserves one sentence.
    pub fn warn(&mut self, message: String) {
        if !self.warnings.contains(&message) {
            self.warnings.push(message);
        }
    }

    /// The value, trimmed; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The first of `names` that is set, with its name.
    pub fn first<'n>(&self, names: &[&'n str]) -> Option<(&'n str, &'a str)> {
        names.iter().find_map(|n| self.get(n).map(|v| (*n, v)))
    }

    pub fn bool(&mut self, name: &str) -> bool {
        match self.get(name) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                self.warn(format!("{name}={v:?} is neither true nor false; treating it as false."));
                false
            }
        }
    }

    /// A non-negative integer from the first of `names` that is set.
    pub fn number(&mut self, names: &[&str]) -> Option<u64> {
        let (name, v) = self.first(names)?;
        match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.warn(format!("{name}={v:?} is not a whole number; using the default."));
                None
            }
        }
    }

    /// A lower-cased enum value from the first of `names`, if it is one of `allowed`.
    pub fn choice(&mut self, names: &[&str], allowed: &[&str]) -> Option<String> {
        let (name, v) = self.first(names)?;
        let lower = v.to_ascii_lowercase();
        if allowed.contains(&lower.as_str()) {
            Some(lower)
        } else {
            self.warn(format!("{name}={v:?} is not one of {}; using the default.", allowed.join(", ")));
            None
        }
    }
}

/// Decodes %XX escapes; `None` on a malformed escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses `k1=v1,k2=v2` with percent-decoded keys and values, as
/// OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS are written. Empty
/// members are skipped; `None` if any member is malformed.
pub fn parse_key_values(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for member in s.split(',') {
        let member = member.trim();
        if member.is_empty() {
            continue;
        }
        let (k, v) = member.split_once('=')?;
        let k = percent_decode(k.trim())?;
        if k.is_empty() {
            return None;
        }
        out.push((k, percent_decode(v.trim())?));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_percent_decode_and_reject_malformed() {
        assert_eq!(
            parse_key_values("a=b, Authorization=Bearer%20x%3Dy ,,c%2Cd=e=f").unwrap(),
            vec![("a".into(), "b".into()), ("Authorization".into(), "Bearer x=y".into()), ("c,d".into(), "e=f".into())]
        );
        assert!(parse_key_values("novalue").is_none());
        assert!(parse_key_values("k=%zz").is_none());
        assert!(parse_key_values("=v").is_none());
        assert!(parse_key_values("k=%ff").is_none(), "invalid UTF-8");
    }

    #[test]
    fn env_rules() {
        let vars: BTreeMap<String, String> =
            [("A", "  "), ("B", "TRUE"), ("C", "yes"), ("D", "12x"), ("E", "Always_On")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let mut warnings = Vec::new();
        let mut env = Env::new(&vars, &mut warnings);
        assert_eq!(env.get("A"), None);
        assert!(env.bool("B"));
        assert!(!env.bool("C"));
        assert_eq!(env.number(&["D"]), None);
        assert_eq!(env.choice(&["E"], &["always_on"]).as_deref(), Some("always_on"));
        assert_eq!(warnings.len(), 2);
    }
}
