//! `extract` and `inject` (W3C trace context and baggage), with round trips.
//!
//! Byte 0: bits 0-1 choose the propagators (both, tracecontext, baggage,
//! none); (byte 0 >> 2) % 3 chooses the mode: 0 = the rest is header JSON for
//! extract, 1 = the rest is context JSON for inject, 2 = the rest drives a
//! generator of mostly-valid headers (traceparent from parts, tracestate and
//! baggage lists, header names in any case, repeats).
//!
//! Properties:
//! - extract returns a well-formed context; a traceparent it accepted is written
//!   back by inject as `00-<trace>-<span>-<flags>`, which is exactly the header
//!   received when that was canonical (version 00, flags 00 or 01, no padding);
//! - inject writes back the extracted tracestate as it is;
//! - extract(inject(ctx)) gives ctx back (baggage: a prefix of it, as inject
//!   stops at 8192 bytes);
//! - for any context, what inject writes is read back by extract.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use polytel_core::propagation::Context;
use polytel_core::Pipeline;
use polytel_fuzz::{hex, pick, size};
use serde_json::{Map, Value};

fn pipelines() -> &'static [Pipeline; 4] {
    static P: OnceLock<[Pipeline; 4]> = OnceLock::new();
    P.get_or_init(|| {
        ["[\"tracecontext\",\"baggage\"]", "[\"tracecontext\"]", "[\"baggage\"]", "[\"none\"]"].map(|list| {
            Pipeline::from_json(&format!(r#"{{"options":{{"propagators":{list},"backend":"none"}}}}"#))
                .expect("configuration")
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let p = &pipelines()[(sel & 3) as usize];
    let (tc, bg) = [(true, true), (true, false), (false, true), (false, false)][(sel & 3) as usize];
    match (sel >> 2) % 3 {
        0 => check_extract(p, tc, bg, &String::from_utf8_lossy(rest)),
        1 => check_inject(p, tc, bg, &String::from_utf8_lossy(rest)),
        _ => {
            if let Ok(headers) = headers(&mut Unstructured::new(rest)) {
                check_extract(p, tc, bg, &headers);
            }
        }
    }
});

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) && s.bytes().any(|b| b != b'0')
}

fn parse_ctx(json: &str) -> Context {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("extract returned something that is not a context: {e}: {json}"))
}

fn parse_headers(json: &str) -> Map<String, Value> {
    let m: Map<String, Value> =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("inject returned something that is not an object: {e}: {json}"));
    assert!(m.values().all(Value::is_string), "inject returned a non-string header: {json}");
    m
}

fn check_extract(p: &Pipeline, tc: bool, bg: bool, headers_json: &str) {
    let out = p.extract(headers_json);
    let ctx = parse_ctx(&out);

    // Shape of what extract returns.
    if ctx.trace_id.is_empty() {
        assert_eq!((ctx.span_id.as_str(), ctx.flags, ctx.trace_state.as_str()), ("", 0, ""), "{out}");
    } else {
        assert!(tc, "a trace context was extracted with tracecontext off: {out}");
        assert!(is_lower_hex(&ctx.trace_id, 32) && is_lower_hex(&ctx.span_id, 16), "{out}");
        assert!(ctx.flags <= 1, "{out}");
    }
    if !bg {
        assert!(ctx.baggage.is_empty(), "baggage extracted with baggage off: {out}");
    }
    assert!(ctx.baggage.len() <= 180, "more than 180 baggage members");
    for (i, (k, _)) in ctx.baggage.iter().enumerate() {
        assert!(!k.is_empty() && ctx.baggage[..i].iter().all(|(e, _)| e != k), "bad or repeated baggage key {k:?}");
    }

    // The traceparent received, if extract accepted one.
    if !ctx.trace_id.is_empty() {
        let input: Map<String, Value> = serde_json::from_str(headers_json).expect("extract accepted headers, so they are an object");
        let tps: Vec<&str> = input
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
            .filter_map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(tps.len(), 1, "a traceparent was accepted from {} headers", tps.len());
        let received = tps[0];
        let expected = format!("00-{}-{}-{:02x}", ctx.trace_id, ctx.span_id, ctx.flags);
        let parts: Vec<&str> = received.trim().split('-').collect();
        assert_eq!((parts[1], parts[2]), (ctx.trace_id.as_str(), ctx.span_id.as_str()), "ids changed: {received:?}");
        let canonical = received.starts_with("00-") && (received.ends_with("-00") || received.ends_with("-01"));
        let injected = parse_headers(&p.inject(&out));
        let got = injected.get("traceparent").and_then(Value::as_str);
        assert_eq!(got, Some(expected.as_str()), "inject did not write the extracted traceparent back (received {received:?})");
        if canonical {
            assert_eq!(got, Some(received), "a canonical traceparent did not round-trip exactly");
        }
        let state = injected.get("tracestate").and_then(Value::as_str).unwrap_or("");
        assert_eq!(state, ctx.trace_state, "inject changed the extracted tracestate");
    }

    round_trip(p, &ctx);
}

/// extract(inject(ctx)) is ctx again, baggage cut to a prefix at most.
fn round_trip(p: &Pipeline, ctx: &Context) {
    let ctx_json = serde_json::to_string(&ctx_value(ctx)).unwrap();
    let injected = p.inject(&ctx_json);
    let headers = parse_headers(&injected);
    if let Some(b) = headers.get("baggage").and_then(Value::as_str) {
        assert!(b.len() <= 8192, "injected baggage is {} bytes", b.len());
    }
    let back = parse_ctx(&p.extract(&injected));
    assert_eq!(
        (&back.trace_id, &back.span_id, back.flags, &back.trace_state),
        (&ctx.trace_id, &ctx.span_id, ctx.flags, &ctx.trace_state),
        "trace context changed across inject and extract: {injected}"
    );
    assert!(
        back.baggage.len() <= ctx.baggage.len() && back.baggage[..] == ctx.baggage[..back.baggage.len()],
        "baggage is not a prefix of what was injected:\n{:?}\n{:?}",
        back.baggage,
        ctx.baggage
    );
    if back.baggage.is_empty() && !ctx.baggage.is_empty() {
        // Only allowed when the first member alone does not fit.
        let (k, v) = &ctx.baggage[0];
        assert!(k.len() + 1 + v.len() * 3 >= 8192 || v.len() >= 8192 / 3, "baggage lost: {:?}", ctx.baggage);
    }
}

fn ctx_value(ctx: &Context) -> Value {
    serde_json::json!({
        "trace_id": ctx.trace_id, "span_id": ctx.span_id, "flags": ctx.flags,
        "trace_state": ctx.trace_state, "baggage": ctx.baggage,
    })
}

fn check_inject(p: &Pipeline, tc: bool, bg: bool, ctx_json: &str) {
    let out = p.inject(ctx_json);
    let headers = parse_headers(&out);
    let ctx: Context = serde_json::from_str(ctx_json).unwrap_or_default();
    let back = parse_ctx(&p.extract(&out));
    match headers.get("traceparent").and_then(Value::as_str) {
        Some(tp) => {
            assert!(tc);
            assert_eq!(tp, format!("00-{}-{}-{:02x}", ctx.trace_id, ctx.span_id, ctx.flags));
            assert_eq!((&back.trace_id, &back.span_id, back.flags), (&ctx.trace_id, &ctx.span_id, ctx.flags & 1), "{out}");
            let state = headers.get("tracestate").and_then(Value::as_str).unwrap_or("");
            assert_eq!(back.trace_state, state, "{out}");
        }
        None => {
            assert!(!tc || !is_lower_hex(&ctx.trace_id, 32) || !is_lower_hex(&ctx.span_id, 16), "no traceparent for {ctx:?}");
            assert!(!headers.contains_key("tracestate"));
        }
    }
    match headers.get("baggage").and_then(Value::as_str) {
        Some(b) => {
            assert!(bg && b.len() <= 8192, "{out}");
            // Every member read back is one that was given (later ones win
            // when a key repeats).
            for (k, v) in &back.baggage {
                assert!(ctx.baggage.iter().any(|(ck, cv)| ck == k && cv == v), "baggage member {k:?}={v:?} was not given");
            }
        }
        None => assert!(back.baggage.is_empty()),
    }
}

// ---------------------------------------------------------------------------
// Structured headers.

fn id_hex<const N: usize>(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=9)? {
        0 => "0".repeat(N * 2),
        1 => hex(&u.arbitrary::<[u8; N]>()?).to_ascii_uppercase(),
        2 => u.arbitrary()?,
        3 => hex(&u.arbitrary::<[u8; N]>()?)[1..].to_owned(),
        _ => hex(&u.arbitrary::<[u8; N]>()?),
    })
}

fn traceparent(u: &mut Unstructured) -> Result<String> {
    let version = pick(u, &["00", "00", "00", "01", "cc", "fe", "ff", "0", "000", "0g", "AA"])?.to_owned();
    let flags = match u.int_in_range(0..=5)? {
        0 => "00".into(),
        1 => "01".into(),
        2 => u.arbitrary::<String>()?,
        _ => format!("{:02x}", u.arbitrary::<u8>()?),
    };
    let mut tp = format!("{version}-{}-{}-{flags}", id_hex::<16>(u)?, id_hex::<8>(u)?);
    if u.ratio(1, 5)? {
        tp.push('-');
        tp.push_str(&u.arbitrary::<String>()?);
    }
    Ok(match u.int_in_range(0..=9)? {
        0 => format!(" {tp} "),
        1 => format!("\t{tp}"),
        2 => tp.replacen('-', "", 1),
        _ => tp,
    })
}

fn tracestate(u: &mut Unstructured) -> Result<String> {
    let n = if u.ratio(1, 10)? { size(u, 3_000)? } else { u.int_in_range(0..=5)? };
    let mut members = Vec::new();
    for i in 0..n {
        let key = match u.int_in_range(0..=7)? {
            0 => u.arbitrary::<String>()?,
            1 => format!("t{}@sys", i % 50),
            2 => "a".repeat(u.int_in_range(240..=260)?),
            3 => format!("{}@{}", "b".repeat(u.int_in_range(239..=243)?), "s".repeat(u.int_in_range(12..=16)?)),
            4 => pick(u, &["congo", "rojo", "Upper", "1abc", "_x", "a*b/c-d_e"])?.to_owned(),
            _ => format!("k{i}"),
        };
        let value = match u.int_in_range(0..=5)? {
            0 => u.arbitrary::<String>()?,
            1 => "v".repeat(u.int_in_range(250..=260)?),
            2 => pick(u, &["", " x", "x ", "a=b", "t61rcWkgMzE", "~!"])?.to_owned(),
            _ => format!("v{i}"),
        };
        members.push(format!("{key}={value}"));
    }
    Ok(members.join(pick(u, &[",", ", ", " ,", ",,"])?))
}

fn baggage(u: &mut Unstructured) -> Result<String> {
    let n = if u.ratio(1, 10)? { u.int_in_range(0..=400)? } else { u.int_in_range(0..=5)? };
    let mut members = Vec::new();
    for i in 0..n {
        let key = match u.int_in_range(0..=4)? {
            0 => u.arbitrary::<String>()?,
            1 => pick(u, &["user", "k", "bad key", "", "é", "a;b"])?.to_owned(),
            _ => format!("k{}", i % 200),
        };
        let value = match u.int_in_range(0..=5)? {
            0 => u.arbitrary::<String>()?,
            1 => pick(u, &["al%20ice", "%zz", "%", "%E2%82%AC", "%ff", " x ", "a=b", "%2C%3B"])?.to_owned(),
            2 => "x".repeat(u.int_in_range(0..=9_000)?),
            _ => format!("v{i}"),
        };
        let props = if u.ratio(1, 5)? { ";p=1;flag" } else { "" };
        members.push(format!("{key}={value}{props}"));
    }
    Ok(members.join(pick(u, &[",", " , ", ",,"])?))
}

fn header_name(u: &mut Unstructured, name: &str) -> Result<String> {
    Ok(match u.int_in_range(0..=5)? {
        0 => name.to_ascii_uppercase(),
        1 => {
            let mut s: Vec<char> = name.chars().collect();
            s[0] = s[0].to_ascii_uppercase();
            s.into_iter().collect()
        }
        _ => name.to_owned(),
    })
}

fn headers(u: &mut Unstructured) -> Result<String> {
    let mut m = Map::new();
    let repeat = |u: &mut Unstructured| -> Result<usize> { Ok(if u.ratio(1, 8)? { 2 } else { 1 }) };
    if u.ratio(7, 8)? {
        for _ in 0..repeat(u)? {
            m.insert(header_name(u, "traceparent")?, Value::String(traceparent(u)?));
        }
    }
    if u.ratio(2, 3)? {
        for _ in 0..repeat(u)? {
            m.insert(header_name(u, "tracestate")?, Value::String(tracestate(u)?));
        }
    }
    if u.ratio(2, 3)? {
        for _ in 0..repeat(u)? {
            m.insert(header_name(u, "baggage")?, Value::String(baggage(u)?));
        }
    }
    if u.ratio(1, 6)? {
        let k = pick(u, &["traceparent", "baggage", "other"])?.to_owned();
        m.insert(k, u.choose(&[Value::Null, Value::from(1), Value::Array(vec![])])?.clone());
    }
    Ok(Value::Object(m).to_string())
}
