//! W3C Trace Context (traceparent, tracestate) and W3C Baggage, per
//! OTEL_PROPAGATORS. Malformed input is ignored, never an error: a bad
//! traceparent yields no parent, a bad tracestate is dropped, bad baggage
//! members are skipped.

use serde::{Deserialize, Serialize};

use crate::env::{percent_decode, Env};
use crate::ids::parse_hex_id;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Propagators {
    pub tracecontext: bool,
    pub baggage: bool,
}

impl Propagators {
    pub fn from_names<'a>(names: impl Iterator<Item = &'a str>, env: &mut Env) -> Self {
        let mut p = Propagators::default();
        for name in names.map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "tracecontext" => p.tracecontext = true,
                "baggage" => p.baggage = true,
                "none" => {}
                other => env.warn(format!(
                    "The propagator {other:?} is not supported (use tracecontext, baggage or none); ignoring it."
                )),
            }
        }
        p
    }
}

/// A propagated context, as `extract` returns it and `inject` takes it.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    /// Empty when there is no valid remote parent.
    pub trace_id: String,
    pub span_id: String,
    pub flags: u8,
    pub trace_state: String,
    pub baggage: Vec<(String, String)>,
}

const MAX_BAGGAGE_MEMBERS: usize = 180;
const MAX_BAGGAGE_BYTES: usize = 8192;
const MAX_TRACESTATE_MEMBERS: usize = 32;

/// Reads a context from headers given as (name, value) pairs; names are
/// compared case-insensitively.
pub fn extract(propagators: Propagators, headers: &[(String, String)]) -> Context {
    let header = |name: &str| -> Vec<&str> {
        headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    };
    let mut ctx = Context::default();
    if propagators.tracecontext {
        let parents = header("traceparent");
        if let [one] = parents[..] {
            if let Some((trace_id, span_id, flags)) = parse_traceparent(one) {
                ctx.trace_id = trace_id;
                ctx.span_id = span_id;
                ctx.flags = flags;
                ctx.trace_state = parse_tracestate(&header("tracestate").join(",")).unwrap_or_default();
            }
        }
    }
    if propagators.baggage {
        ctx.baggage = parse_baggage(&header("baggage").join(","));
    }
    ctx
}

/// The headers that carry `ctx` downstream.
pub fn inject(propagators: Propagators, ctx: &Context) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if propagators.tracecontext
        && parse_hex_id::<16>(&ctx.trace_id).is_some()
        && parse_hex_id::<8>(&ctx.span_id).is_some()
    {
        out.push(("traceparent".into(), format!("00-{}-{}-{:02x}", ctx.trace_id, ctx.span_id, ctx.flags)));
        if let Some(state) = parse_tracestate(&ctx.trace_state).filter(|s| !s.is_empty()) {
            out.push(("tracestate".into(), state));
        }
    }
    if propagators.baggage && !ctx.baggage.is_empty() {
        let members: Vec<String> = ctx
            .baggage
            .iter()
            .filter(|(k, _)| is_token(k))
            .take(MAX_BAGGAGE_MEMBERS)
            .map(|(k, v)| format!("{k}={}", percent_encode_baggage(v)))
            .collect();
        let mut value = String::new();
        for m in members {
            if value.len() + m.len() + 1 > MAX_BAGGAGE_BYTES {
                break;
            }
            if !value.is_empty() {
                value.push(',');
            }
            value.push_str(&m);
        }
        if !value.is_empty() {
            out.push(("baggage".into(), value));
        }
    }
    out
}

/// `version-traceid-parentid-flags`. Version ff is invalid; version 00 has
/// exactly four fields; a later version may append more after a dash.
fn parse_traceparent(s: &str) -> Option<(String, String, u8)> {
    let s = s.trim();
    let mut parts = s.splitn(5, '-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    let rest = parts.next();
    if version.len() != 2 || !is_lower_hex(version) || version == "ff" {
        return None;
    }
    if version == "00" && rest.is_some() {
        return None;
    }
    if flags.len() != 2 || !is_lower_hex(flags) {
        return None;
    }
    parse_hex_id::<16>(trace_id)?;
    parse_hex_id::<8>(span_id)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id.to_owned(), span_id.to_owned(), flags & 0x01))
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Validates and normalises a tracestate list; `None` if any member is
/// invalid or there are too many (checked first: the header is untrusted).
fn parse_tracestate(s: &str) -> Option<String> {
    let mut members: Vec<&str> = Vec::new();
    for member in s.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        if members.len() == MAX_TRACESTATE_MEMBERS {
            return None;
        }
        let (key, value) = member.split_once('=')?;
        if !valid_tracestate_key(key) || !valid_tracestate_value(value) {
            return None;
        }
        if members.iter().any(|m| m.split_once('=').map(|(k, _)| k) == Some(key)) {
            return None;
        }
        members.push(member);
    }
    Some(members.join(","))
}

fn valid_tracestate_key(key: &str) -> bool {
    let simple = |k: &str, max: usize| {
        !k.is_empty()
            && k.len() <= max
            && k.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/".contains(&b))
    };
    match key.split_once('@') {
        None => simple(key, 256),
        Some((tenant, system)) => simple(tenant, 241) && simple(system, 14),
    }
}

fn valid_tracestate_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && !value.ends_with(' ')
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_baggage(s: &str) -> Vec<(String, String)> {
    if s.len() > MAX_BAGGAGE_BYTES {
        return Vec::new();
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for member in s.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        // Properties after ';' are metadata; the entry itself is what is kept.
        let entry = member.split(';').next().unwrap_or("");
        let Some((k, v)) = entry.split_once('=') else { continue };
        let (k, v) = (k.trim(), v.trim());
        let Some(v) = percent_decode(v) else { continue };
        if !is_token(k) {
            continue;
        }
        match out.iter().position(|(ek, _)| ek == k) {
            Some(i) => out[i].1 = v,
            None if out.len() < MAX_BAGGAGE_MEMBERS => out.push((k.to_owned(), v)),
            None => {}
        }
    }
    out
}

fn percent_encode_baggage(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        let safe = (0x21..=0x7e).contains(&b) && !b",;\\\"%".contains(&b);
        if safe {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Propagators = Propagators { tracecontext: true, baggage: true };
    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn round_trip() {
        let ctx = extract(
            ALL,
            &h(&[
                ("TraceParent", TP),
                ("tracestate", "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"),
                ("baggage", "user=al%20ice;p=1,n=2"),
            ]),
        );
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.flags, 1);
        assert_eq!(ctx.trace_state, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
        assert_eq!(ctx.baggage, vec![("user".into(), "al ice".into()), ("n".into(), "2".into())]);
        let out = inject(ALL, &ctx);
        assert_eq!(out[0], ("traceparent".into(), TP.into()));
        assert_eq!(out[1].1, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
        assert_eq!(out[2].1, "user=al%20ice,n=2");
    }

    #[test]
    fn malformed_traceparents_give_no_parent() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "\u{1F600}",
        ] {
            assert_eq!(extract(ALL, &h(&[("traceparent", bad)])).trace_id, "", "{bad:?}");
        }
        // A future version may carry more fields.
        let ctx = extract(ALL, &h(&[("traceparent", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-x")]));
        assert_eq!(ctx.flags, 1);
        // Two traceparent headers are ambiguous.
        assert_eq!(extract(ALL, &h(&[("traceparent", TP), ("traceparent", TP)])).trace_id, "");
    }

    #[test]
    fn tracestate_is_limited_to_32_members() {
        let list = |n: usize| (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
        assert_eq!(parse_tracestate(&list(32)).map(|s| s.split(',').count()), Some(32));
        assert_eq!(parse_tracestate(&list(33)), None);
        assert_eq!(parse_tracestate(&list(100_000)), None, "rejected after 33 members, not after all of them");
    }

    #[test]
    fn bad_tracestate_and_baggage_are_dropped_not_fatal() {
        let ctx = extract(
            ALL,
            &h(&[("traceparent", TP), ("tracestate", "Bad Key=1"), ("baggage", "=x,ok=1,bad key=2,k=%zz")]),
        );
        assert_eq!(ctx.trace_id.len(), 32);
        assert_eq!(ctx.trace_state, "");
        assert_eq!(ctx.baggage, vec![("ok".into(), "1".into())]);
        let none = Propagators::default();
        assert_eq!(extract(none, &h(&[("traceparent", TP)])), Context::default());
        assert!(inject(none, &ctx).is_empty());
    }
}
