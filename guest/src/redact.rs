//! Redaction of secrets in what the app records: span, event and link
//! attributes, log attributes and bodies, and captured GenAI content. An
//! attribute or map member whose key names a secret loses its whole value; any
//! string value loses the parts shaped like a secret (bearer tokens, API keys,
//! `password=…`) and the parts matching the user's patterns.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use std::sync::OnceLock;

use regex_lite::{Captures, Regex};

use crate::env::Env;

pub const REDACTED: &str = "[REDACTED]";

/// Words that make a key name a secret ("db.password", "x-api-key", "session.token").
const SECRET_WORDS: [&str; 11] = [
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "credentials",
];

/// Adjacent word pairs that make a key name a secret ("api_key", "private-key").
const SECRET_PAIRS: [(&str, &str); 5] =
    [("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("auth", "token")];

/// Secret shapes inside free text. The groups `pre` and `post` are kept, and
/// a value matched inside quotes (`dq`, `sq`) keeps its quotes.
const SHAPES: [&str; 10] = [
    // Authorization header values.
    r"(?i)\b(?P<pre>(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}",
    // `password=…`, `"api_key": "…"`, `token: …`.
    r#"(?i)\b(?P<pre>(?:password|passwd|pwd|passphrase|secret|client_secret|token|access_token|refresh_token|api[_-]?key|access[_-]?key)"?\s*[=:]\s*)(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|[^\s"'&,;]+)"#,
    // OpenAI and Anthropic keys.
    r"\bsk-[A-Za-z0-9_-]{20,}",
    // AWS access key ids.
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    // GitHub tokens.
    r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
    // Slack tokens.
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    // Google API keys.
    r"\bAIza[0-9A-Za-z_-]{35}",
    // JSON Web Tokens.
    r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}",
    // PEM private keys.
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    // The password in a URL's user information: `scheme://user:password@host`.
    r"(?P<pre>://[^/\s:@]+:)[^/\s@]+(?P<post>@)",
];

/// Lower-cased substrings one of which any secret shape contains: text with
/// none of them skips the patterns.
const HINTS: [&str; 21] = [
    "bearer",
    "basic",
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "sk-",
    "akia",
    "asia",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat",
    "xox",
    "aiza",
    "eyj",
    "://",
    "-----",
];

#[derive(Debug)]
pub struct Redactor {
    /// The key names and secret shapes are on.
    builtin: bool,
    user: Vec<Regex>,
}

/// The secret shapes, compiled once per process and only when some text
/// has a hint of one.
fn shapes() -> &'static [Regex] {
    static SHAPES_COMPILED: OnceLock<Vec<Regex>> = OnceLock::new();
    SHAPES_COMPILED.get_or_init(|| SHAPES.iter().map(|p| Regex::new(p).expect("built-in patterns compile")).collect())
}

impl Redactor {
    /// `builtin` turns on the key names and secret shapes; `patterns` are the
    /// user's regular expressions, whose matches are replaced whole.
    pub fn new(builtin: bool, patterns: &[String]) -> Result<Redactor, String> {
        let user = patterns
            .iter()
            .map(|p| {
                Regex::new(p).map_err(|e| {
                    format!("The redaction pattern {p:?} is not a valid regular expression ({e}); fix redact_patterns.")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Redactor { builtin, user })
    }

    /// From the options `redact` and `redact_patterns`, over POLYTEL_REDACT
    /// and POLYTEL_REDACT_PATTERNS (a JSON array of regular expressions).
    pub fn from_config(env: &mut Env, on: Option<bool>, patterns: Option<&[String]>) -> Result<Redactor, String> {
        let on = on.unwrap_or_else(|| env.get("POLYTEL_REDACT").is_none() || env.bool("POLYTEL_REDACT"));
        let from_env;
        let patterns = match (patterns, env.get("POLYTEL_REDACT_PATTERNS")) {
            (Some(p), _) => p,
            (None, Some(text)) => {
                from_env = serde_json::from_str::<Vec<String>>(text).map_err(|_| {
                    "POLYTEL_REDACT_PATTERNS is not a JSON array of strings, such as [\"user-\\\\d+\"].".to_owned()
                })?;
                &from_env
            }
            (None, None) => &[],
        };
        Redactor::new(on, patterns)
    }

    pub fn is_active(&self) -> bool {
        self.builtin || !self.user.is_empty()
    }

    /// Redacts attributes in place; returns how many values changed.
    pub fn attributes(&self, attributes: &mut [KeyValue]) -> u64 {
        attributes.iter_mut().map(|kv| self.member(&kv.key, kv.value.as_mut())).sum()
    }

    /// Redacts a span's attributes and those of its events and links.
    pub fn span(&self, span: &mut Span) -> u64 {
        self.attributes(&mut span.attributes)
            + span.events.iter_mut().map(|e| self.attributes(&mut e.attributes)).sum::<u64>()
            + span.links.iter_mut().map(|l| self.attributes(&mut l.attributes)).sum::<u64>()
    }

    /// Redacts one value (a log body, captured content); returns how many values changed.
    pub fn value(&self, value: &mut AnyValue) -> u64 {
        match value.value.as_mut() {
            Some(Value::StringValue(s)) => match self.text(s) {
                Some(clean) => {
                    *s = clean;
                    1
                }
                None => 0,
            },
            Some(Value::ArrayValue(a)) => a.values.iter_mut().map(|v| self.value(v)).sum(),
            Some(Value::KvlistValue(m)) => self.attributes(&mut m.values),
            _ => 0,
        }
    }

    fn member(&self, key: &str, value: Option<&mut AnyValue>) -> u64 {
        let Some(value) = value else { return 0 };
        if self.builtin && secret_key(key) && !matches!(value.value, Some(Value::StringValue(ref s)) if s == REDACTED) {
            *value = AnyValue { value: Some(Value::StringValue(REDACTED.to_owned())) };
            return 1;
        }
        self.value(value)
    }

    /// `s` with secrets replaced, or `None` when it has none.
    pub fn text(&self, s: &str) -> Option<String> {
        let mut out: Option<String> = None;
        if self.builtin && has_hint(s) {
            for re in shapes() {
                replace(re, &mut out, s, |caps| {
                    let group = |name| caps.name(name).map_or("", |m| m.as_str());
                    let quote = if caps.name("dq").is_some() {
                        "\""
                    } else if caps.name("sq").is_some() {
                        "'"
                    } else {
                        ""
                    };
                    format!("{}{quote}{REDACTED}{quote}{}", group("pre"), group("post"))
                });
            }
        }
        for re in &self.user {
            replace(re, &mut out, s, |_| REDACTED.to_owned());
        }
        out
    }
}

/// Applies `re` to the text so far (`out`, else `original`), keeping `out` as
/// `None` while nothing changed, so redacting redacted text changes nothing.
fn replace(re: &Regex, out: &mut Option<String>, original: &str, with: impl Fn(&Captures) -> String) {
    let current = out.as_deref().unwrap_or(original);
    if re.is_match(current) {
        let replaced = re.replace_all(current, |caps: &Captures| with(caps));
        if replaced != current {
            *out = Some(replaced.into_owned());
        }
    }
}

fn has_hint(s: &str) -> bool {
    let bytes = s.as_bytes();
    HINTS.iter().any(|h| bytes.windows(h.len()).any(|w| w.eq_ignore_ascii_case(h.as_bytes())))
}

/// Whether a key names a secret. The GenAI conventions' own attributes
/// ("gen_ai.token.type", "gen_ai.usage.input_tokens") never do. Runs for
/// every exported attribute, so it allocates nothing.
pub fn secret_key(key: &str) -> bool {
    if key.starts_with("gen_ai.") {
        return false;
    }
    let mut previous = "";
    for word in key.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let is = |w: &str| word.eq_ignore_ascii_case(w);
        if SECRET_WORDS.iter().any(|w| is(w))
            || SECRET_PAIRS.iter().any(|(first, second)| previous.eq_ignore_ascii_case(first) && is(second))
        {
            return true;
        }
        previous = word;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::{key_value, string_value};

    fn builtin() -> Redactor {
        Redactor::new(true, &[]).unwrap()
    }

    #[test]
    fn secret_shapes_are_replaced_and_the_rest_kept() {
        let r = builtin();
        for (input, want) in [
            ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer [REDACTED]"),
            ("my key is sk-proj-Abcdefghijklmnopqrstuvwx123 ok", "my key is [REDACTED] ok"),
            ("login password=hunter2 done", "login password=[REDACTED] done"),
            (r#"{"api_key": "abc", "q": "x"}"#, r#"{"api_key": "[REDACTED]", "q": "x"}"#),
            ("aws AKIAABCDEFGHIJKLMNOP", "aws [REDACTED]"),
            ("jwt eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl", "jwt [REDACTED]"),
            ("postgres://app:s3cret@db:5432/x", "postgres://app:[REDACTED]@db:5432/x"),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "[REDACTED]"),
        ] {
            assert_eq!(r.text(input).as_deref(), Some(want), "{input}");
        }
        for redacted in ["password=[REDACTED]", "Bearer [REDACTED]", r#""token": "[REDACTED]""#] {
            assert_eq!(r.text(redacted), None, "redacting twice changed {redacted}");
        }
        for clean in ["max_tokens: 512", "plain text with no secret", "tokens used: 42", "https://example.org/a"] {
            assert_eq!(r.text(clean), None, "{clean}");
        }
    }

    #[test]
    fn keys_that_name_secrets_lose_their_values() {
        for key in ["db.password", "http.request.header.authorization", "x-api-key", "session.token", "AWS_SECRET"] {
            assert!(secret_key(key), "{key}");
        }
        for key in ["gen_ai.usage.input_tokens", "gen_ai.token.type", "user.id", "keyboard.layout", "monkey"] {
            assert!(!secret_key(key), "{key}");
        }
        let mut attrs = vec![key_value("db.password", string_value("x")), key_value("user.id", string_value("u1"))];
        assert_eq!(builtin().attributes(&mut attrs), 1);
        assert_eq!(crate::attributes::string_of(attrs[0].value.as_ref()), Some(REDACTED));
        assert_eq!(crate::attributes::string_of(attrs[1].value.as_ref()), Some("u1"));
    }

    #[test]
    fn user_patterns_apply_even_with_the_builtin_shapes_off() {
        let r = Redactor::new(false, &[r"user \d+".into()]).unwrap();
        assert_eq!(r.text("prefs of user 42, password=x").as_deref(), Some("prefs of [REDACTED], password=x"));
        assert!(Redactor::new(true, &["(".into()]).unwrap_err().contains("redact_patterns"));
    }
}
