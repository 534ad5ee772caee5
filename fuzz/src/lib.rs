//! Shared pieces of the polytel fuzz targets: generators for structured inputs
//! (configuration, span records, delivery outcomes) and the oracles that check
//! what the core hands back (export bodies, counters).
//!
//! Every generator draws from an `arbitrary::Unstructured`; when the input runs
//! out, `Unstructured` answers zeros, so generation always ends.

use std::fmt::Write as _;
use std::io::Read as _;

use arbitrary::{Result, Unstructured};
use base64::Engine as _;
use polytel_core::delivery::Outcome;
use polytel_core::pipeline::{Destination, Export, PollResult};
use polytel_core::proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use polytel_core::Pipeline;
use prost::Message as _;

pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A JSON string literal.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// One of `items`, chosen by the input.
pub fn pick<'a, T: ?Sized>(u: &mut Unstructured, items: &[&'a T]) -> Result<&'a T> {
    Ok(items[u.choose_index(items.len())?])
}

/// One of `interesting`, sometimes wrapped in white space or upper-cased.
pub fn vocab(u: &mut Unstructured, interesting: &[&str]) -> Result<String> {
    let s = pick(u, interesting)?.to_owned();
    Ok(match u.int_in_range(0..=5)? {
        0 => format!("  {s}\t"),
        1 => s.to_ascii_uppercase(),
        _ => s,
    })
}

/// Text: half the time one of `interesting` (see `vocab`), else arbitrary.
pub fn text(u: &mut Unstructured, interesting: &[&str]) -> Result<String> {
    if !interesting.is_empty() && u.ratio(1, 2)? {
        return vocab(u, interesting);
    }
    u.arbitrary()
}

/// A count up to `max`, spread over orders of magnitude and skewed to small
/// ones (the lesser of two exponents), so that most inputs stay cheap and
/// some are large.
pub fn size(u: &mut Unstructured, max: usize) -> Result<usize> {
    let bits = usize::BITS - max.leading_zeros();
    let e = u.int_in_range(0..=bits)?.min(u.int_in_range(0..=bits)?);
    let top = if e == 0 { 0 } else { (1usize << e) - 1 };
    Ok(u.int_in_range(0..=top.min(max))?)
}

/// A u64 that is often at an edge.
pub fn edgy_u64(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0..=7)? {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => u64::MAX - u.int_in_range(0..=1000)?,
        4 => 1 << u.int_in_range(0..=63)?,
        5 => (1u64 << 32) + u.int_in_range(0..=16)?,
        _ => u.arbitrary()?,
    })
}

// ---------------------------------------------------------------------------
// Delivery outcomes.

const STATUSES: &[u16] = &[200, 201, 202, 204, 206, 299, 300, 301, 400, 401, 403, 404, 408, 413, 429, 500, 501, 502, 503, 504, 0, 100, 599, 999, u16::MAX];
const DAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Xyz"];
const MONTHS: &[&str] = &["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "jan", "Foo"];

/// A Retry-After header value: delta-seconds, an IMF-fixdate with fields
/// anywhere in their ranges and beyond, or anything.
pub fn retry_after(u: &mut Unstructured) -> Result<Option<String>> {
    Ok(match u.int_in_range(0..=6)? {
        0 => None,
        1 => Some(u.int_in_range(0u64..=400)?.to_string()),
        2 => Some(edgy_u64(u)?.to_string()),
        3 | 4 => {
            let wd = pick(u, DAYS)?;
            let day: i64 = if u.arbitrary()? { u.int_in_range(0..=32)? } else { u.arbitrary()? };
            let month = pick(u, MONTHS)?;
            let year: i64 = match u.int_in_range(0..=3)? {
                0 => u.int_in_range(1969..=2200)?,
                1 => u.int_in_range(0..=100_000)?,
                _ => u.arbitrary()?,
            };
            let (h, m, s): (u64, u64, u64) = if u.arbitrary()? {
                (u.int_in_range(0..=24)?, u.int_in_range(0..=60)?, u.int_in_range(0..=61)?)
            } else {
                (u.arbitrary()?, u.arbitrary()?, u.arbitrary()?)
            };
            Some(format!("{wd}, {day:02} {month} {year} {h:02}:{m:02}:{s:02} GMT"))
        }
        5 => Some(pick(u, &["", " ", "-1", "1.5", "Sun, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37", "soon"])?.to_owned()),
        _ => Some(u.arbitrary()?),
    })
}

/// A response body: empty, arbitrary, or a partial success in either encoding
/// with any count.
pub fn response_body(u: &mut Unstructured) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0..=5)? {
        0 => Vec::new(),
        1 => u.arbitrary()?,
        2 => ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: if u.arbitrary()? { u.int_in_range(-2..=10)? } else { u.arbitrary()? },
                error_message: u.arbitrary()?,
            }),
        }
        .encode_to_vec(),
        _ => {
            let outer = pick(u, &["partialSuccess", "partial_success", "other"])?;
            let count_key = pick(u, &["rejectedSpans", "rejected_spans"])?;
            let count = match u.int_in_range(0..=4)? {
                0 => u.int_in_range(0u64..=10)?.to_string(),
                1 => quote(&edgy_u64(u)?.to_string()),
                2 => edgy_u64(u)?.to_string(),
                3 => u.arbitrary::<i64>()?.to_string(),
                _ => quote(&u.arbitrary::<String>()?),
            };
            let msg: String = u.arbitrary()?;
            format!(r#"{{{}:{{{}:{count},"errorMessage":{}}}}}"#, quote(outer), quote(count_key), quote(&msg)).into_bytes()
        }
    })
}

/// Locations a redirect may name: same origin, Azure, elsewhere, malformed.
const LOCATIONS: &[&str] = &[
    "/moved/v1/traces",
    "http://127.0.0.1:4318/v2/traces",
    "https://eu.in.applicationinsights.azure.com/",
    "https://elsewhere.example/v1/traces?token=x",
    "https://user@elsewhere.example/",
    "//elsewhere.example/",
    "",
];

pub fn outcome(u: &mut Unstructured) -> Result<Outcome> {
    Ok(if u.ratio(1, 6)? {
        Outcome::Failed(u.arbitrary()?)
    } else if u.ratio(1, 8)? {
        let status = [301, 302, 307, 308, 399][u.choose_index(5)?];
        let location =
            if u.ratio(3, 4)? { LOCATIONS[u.choose_index(LOCATIONS.len())?].to_owned() } else { u.arbitrary()? };
        Outcome::Redirect { status, location }
    } else {
        let status = if u.ratio(7, 8)? { STATUSES[u.choose_index(STATUSES.len())?] } else { u.arbitrary()? };
        Outcome::Response { status, retry_after: retry_after(u)?, body: response_body(u)? }
    })
}

// ---------------------------------------------------------------------------
// Attribute values and span records, as JSON text (written by hand so that
// duplicate keys, deep nesting and malformed tags can be produced).

const KEYS: &[&str] = &["a", "b", "k", "", "service.name", "http.method", "é", "a.b.c"];

pub struct SpanGen {
    /// Span ids handed out so far (as hex), for parents and duplicates.
    pub ids: Vec<String>,
    pub traces: Vec<String>,
    counter: u64,
    pub now: u64,
}

impl Default for SpanGen {
    fn default() -> Self {
        SpanGen {
            ids: Vec::new(),
            traces: vec!["4bf92f3577b34da6a3ce929d0e0e4736".into(), "0af7651916cd43dd8448eb211c80319c".into()],
            counter: 0,
            now: 1_700_000_000_000_000_000,
        }
    }
}

impl SpanGen {
    fn fresh_span_id(&mut self) -> String {
        self.counter += 1;
        // Distinct, non-zero, not in counting order.
        let v = self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        format!("{v:016x}")
    }

    fn key(&self, u: &mut Unstructured) -> Result<String> {
        Ok(if u.ratio(2, 3)? { pick(u, KEYS)?.to_owned() } else { u.arbitrary()? })
    }

    /// An attribute value at most `depth` levels deep (deep-nesting cases aside).
    pub fn value(&self, u: &mut Unstructured, depth: u32, out: &mut String) -> Result<()> {
        let top = if depth == 0 { 10 } else { 16 };
        match u.int_in_range(0..=top)? {
            0 => out.push_str(&quote(&u.arbitrary::<String>()?)),
            1 => out.push_str(if u.arbitrary()? { "true" } else { "false" }),
            2 => {
                let _ = write!(out, "{}", u.arbitrary::<i64>()?);
            }
            3 => {
                let _ = write!(out, "{}", edgy_u64(u)?);
            }
            4 => {
                let f: f64 = u.arbitrary()?;
                match serde_json::Number::from_f64(f) {
                    Some(n) => out.push_str(&n.to_string()),
                    None => out.push_str(r#"{"double":"NaN"}"#),
                }
            }
            5 => {
                let x = match u.int_in_range(0..=5)? {
                    0 => r#""NaN""#.to_owned(),
                    1 => r#""Infinity""#.to_owned(),
                    2 => r#""-Infinity""#.to_owned(),
                    3 => quote(&u.arbitrary::<String>()?),
                    4 => pick(u, &["1e308", "-1e400", "0", "-0.0", "18446744073709551616", "true", "null", "[]"])?.to_owned(),
                    _ => u.arbitrary::<i64>()?.to_string(),
                };
                let _ = write!(out, r#"{{"double":{x}}}"#);
            }
            6 => {
                let b = if u.ratio(3, 4)? { B64.encode(u.arbitrary::<Vec<u8>>()?) } else { u.arbitrary()? };
                let _ = write!(out, r#"{{"bytes":{}}}"#, quote(&b));
            }
            7 => out.push_str("null"),
            8 => {
                // A long string (multi-byte characters, so truncation must
                // respect boundaries).
                let n = size(u, 20_000)?;
                let unit = pick(u, &["x", "é", "日本", "🦀", "a\u{301}"])?;
                out.push_str(&quote(&unit.repeat(n)));
            }
            9 => out.push_str(pick(
                u,
                &[r#"{}"#, r#"{"other":1}"#, r#"{"double":1,"bytes":"AA=="}"#, r#"{"map":[]}"#, r#"{"bytes":"!!"}"#, r#"{"map":{"":1}}"#, r#"{"map":null}"#],
            )?),
            10 => out.push_str(&quote(&u.arbitrary::<String>()?)),
            11 | 12 => {
                out.push('[');
                let n = u.int_in_range(0..=4)?;
                for i in 0..n {
                    if i > 0 {
                        out.push(',');
                    }
                    self.value(u, depth - 1, out)?;
                }
                out.push(']');
            }
            13 | 14 => {
                out.push_str(r#"{"map":"#);
                self.attributes(u, depth - 1, out)?;
                out.push('}');
            }
            15 => {
                // Deep nesting, past serde_json's recursion limit too.
                let n = u.int_in_range(1..=300)?;
                let array = u.arbitrary::<bool>()?;
                for _ in 0..n {
                    out.push_str(if array { "[" } else { r#"{"map":{"k":"# });
                }
                out.push('1');
                for _ in 0..n {
                    out.push_str(if array { "]" } else { "}}" });
                }
            }
            _ => {
                // Many entries: a wide map or array, keys possibly repeated.
                let n = size(u, 5_000)?;
                let repeat = u.int_in_range(1..=n.max(1))?;
                if u.arbitrary()? {
                    out.push_str(r#"{"map":{"#);
                    for i in 0..n {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, r#""k{}":{i}"#, i % repeat);
                    }
                    out.push_str("}}");
                } else {
                    out.push('[');
                    for i in 0..n {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{i}");
                    }
                    out.push(']');
                }
            }
        }
        Ok(())
    }

    /// An attributes object (or, rarely, something that is not one).
    pub fn attributes(&self, u: &mut Unstructured, depth: u32, out: &mut String) -> Result<()> {
        match u.int_in_range(0..=15)? {
            0 => {
                out.push_str(pick(u, &["[]", "1", "\"x\"", "null", "{\"a\":}", "[{\"a\":1}]"])?);
                return Ok(());
            }
            1 => {
                // Many attributes: more than any count limit.
                let n = size(u, 3_000)?;
                out.push('{');
                for i in 0..n {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, r#""attr{i}":"v{i}""#);
                }
                out.push('}');
                return Ok(());
            }
            _ => {}
        }
        out.push('{');
        let n = u.int_in_range(0..=6)?;
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&quote(&self.key(u)?));
            out.push(':');
            self.value(u, depth, out)?;
        }
        out.push('}');
        Ok(())
    }

    fn trace_id(&self, u: &mut Unstructured) -> Result<String> {
        Ok(match u.int_in_range(0..=19)? {
            0 => "00000000000000000000000000000000".into(),
            1 => "4BF92F3577B34DA6A3CE929D0E0E4736".into(),
            2 => u.arbitrary()?,
            3 => hex(&u.arbitrary::<[u8; 16]>()?),
            4 => hex(&u.arbitrary::<[u8; 15]>()?),
            _ => self.traces[u.choose_index(self.traces.len())?].clone(),
        })
    }

    fn span_id(&mut self, u: &mut Unstructured) -> Result<String> {
        Ok(match u.int_in_range(0..=19)? {
            0 => "0000000000000000".into(),
            1 => "00F067AA0BA902B7".into(),
            2 => u.arbitrary()?,
            3 if !self.ids.is_empty() => self.ids[u.choose_index(self.ids.len())?].clone(),
            4 => hex(&u.arbitrary::<[u8; 8]>()?),
            _ => self.fresh_span_id(),
        })
    }

    fn time(&self, u: &mut Unstructured) -> Result<String> {
        Ok(match u.int_in_range(0..=9)? {
            0 => edgy_u64(u)?.to_string(),
            1 => pick(u, &["-1", "1.5", "\"5\"", "null", "18446744073709551616"])?.to_owned(),
            _ => (self.now + u.int_in_range(0..=10_000_000_000u64)?).to_string(),
        })
    }

    /// One span record; `chain_parent` makes it the child of that span.
    pub fn span(&mut self, u: &mut Unstructured, chain_parent: Option<String>, out: &mut String) -> Result<()> {
        let trace_id = self.trace_id(u)?;
        let span_id = self.span_id(u)?;
        let _ = write!(out, r#"{{"trace_id":{},"span_id":{}"#, quote(&trace_id), quote(&span_id));
        let parent = match chain_parent {
            Some(p) => Some(p),
            None => match u.int_in_range(0..=7)? {
                0 => Some(String::new()),
                1 if !self.ids.is_empty() => Some(self.ids[u.choose_index(self.ids.len())?].clone()),
                2 => Some(span_id.clone()),
                3 => Some(u.arbitrary()?),
                4 => self.ids.last().cloned(),
                _ => None,
            },
        };
        if let Some(p) = parent {
            let _ = write!(out, r#","parent_span_id":{}"#, quote(&p));
        }
        if u.ratio(1, 4)? {
            let _ = write!(out, r#","parent_remote":{}"#, u.arbitrary::<bool>()?);
        }
        if u.ratio(1, 4)? {
            let ts = text(u, &["congo=t61rcWkgMzE", "a=1,b=2", "", "Bad Key=1"])?;
            let _ = write!(out, r#","trace_state":{}"#, quote(&ts));
        }
        let name = text(u, &["GET /", "", "span"])?;
        let _ = write!(out, r#","name":{}"#, quote(&name));
        if u.ratio(1, 2)? {
            let kind: i64 = if u.ratio(3, 4)? { u.int_in_range(-1..=6)? } else { u.arbitrary::<i32>()?.into() };
            let _ = write!(out, r#","kind":{kind}"#);
        }
        let _ = write!(out, r#","start":{},"end":{}"#, self.time(u)?, self.time(u)?);
        if u.ratio(1, 2)? {
            out.push_str(r#","attributes":"#);
            self.attributes(u, 3, out)?;
        }
        if u.ratio(1, 3)? {
            out.push_str(r#","events":["#);
            let n = if u.ratio(1, 10)? { size(u, 2_000)? } else { u.int_in_range(0..=4)? };
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, r#"{{"time":{}"#, self.time(u)?);
                if u.ratio(1, 3)? {
                    let _ = write!(
                        out,
                        r#","exception":{{"type":{},"message":{},"stacktrace":{},"escaped":{}}}"#,
                        quote(&u.arbitrary::<String>()?),
                        quote(&u.arbitrary::<String>()?),
                        quote(&u.arbitrary::<String>()?),
                        u.arbitrary::<bool>()?
                    );
                } else {
                    let _ = write!(out, r#","name":{}"#, quote(&u.arbitrary::<String>()?));
                }
                if u.ratio(1, 2)? {
                    out.push_str(r#","attributes":"#);
                    self.attributes(u, 2, out)?;
                }
                out.push('}');
            }
            out.push(']');
        }
        if u.ratio(1, 4)? {
            out.push_str(r#","links":["#);
            let n = if u.ratio(1, 10)? { size(u, 2_000)? } else { u.int_in_range(0..=3)? };
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                let (t, s) = (self.trace_id(u)?, self.span_id(u)?);
                let _ = write!(out, r#"{{"trace_id":{},"span_id":{}"#, quote(&t), quote(&s));
                if u.arbitrary()? {
                    let _ = write!(out, r#","trace_state":{}"#, quote(&u.arbitrary::<String>()?));
                }
                if u.arbitrary()? {
                    out.push_str(r#","attributes":"#);
                    self.attributes(u, 2, out)?;
                }
                out.push('}');
            }
            out.push(']');
        }
        if u.ratio(1, 3)? {
            let code: i64 = if u.ratio(3, 4)? { u.int_in_range(-1..=3)? } else { u.arbitrary::<i32>()?.into() };
            let _ = write!(out, r#","status":{{"code":{code},"message":{}}}"#, quote(&u.arbitrary::<String>()?));
        }
        if u.ratio(1, 3)? {
            let name = pick(u, &["", "agent", "http", "db"])?;
            let version = pick(u, &["", "1", "2.0"])?;
            let _ = write!(out, r#","scope":{{"name":{},"version":{}}}"#, quote(name), quote(version));
        }
        if u.ratio(1, 30)? {
            out.push_str(pick(u, &[r#","unknown":1"#, r#","name":"dup""#, r#","start":"x""#, r#","events":{}"#])?);
        }
        out.push('}');
        self.ids.push(span_id);
        Ok(())
    }

    /// A batch: a JSON array of records, with optional long parent chains
    /// and bulk copies; rarely something that is not an array.
    pub fn batch(&mut self, u: &mut Unstructured) -> Result<String> {
        if u.ratio(1, 40)? {
            return Ok(pick(u, &["", "{}", "[", "null", "[1,2]", "[[]]", "[{}]", "\"x\""])?.to_owned());
        }
        let mut out = String::from("[");
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !std::mem::take(&mut first) {
                out.push(',');
            }
        };
        let n = u.int_in_range(0..=8)?;
        for _ in 0..n {
            match u.int_in_range(0..=9)? {
                0 => {
                    // A parent chain, each span the child of the one before:
                    // a deep tree for the console exporter.
                    let len = size(u, 5_000)?.max(1);
                    let mut parent = None;
                    for _ in 0..len {
                        sep(&mut out);
                        let id = self.fresh_span_id();
                        let _ = write!(
                            out,
                            r#"{{"trace_id":"{}","span_id":"{id}","name":"c","start":{},"end":{}"#,
                            self.traces[0],
                            self.now,
                            self.now + 1
                        );
                        if let Some(p) = &parent {
                            let _ = write!(out, r#","parent_span_id":"{p}""#);
                        }
                        out.push('}');
                        self.ids.push(id.clone());
                        parent = Some(id);
                    }
                }
                1 => {
                    // Many small spans: past the queue size.
                    let count = size(u, 5_000)?.max(1);
                    for _ in 0..count {
                        sep(&mut out);
                        let id = self.fresh_span_id();
                        let trace = &self.traces[self.counter as usize % self.traces.len()];
                        let _ = write!(
                            out,
                            r#"{{"trace_id":"{trace}","span_id":"{id}","name":"bulk","start":1,"end":2,"scope":{{"name":"s{}"}}}}"#,
                            self.counter % 7
                        );
                        self.ids.push(id);
                    }
                }
                2 => {
                    sep(&mut out);
                    out.push_str(pick(u, &["null", "1", "[]", "{}", "\"span\"", r#"{"trace_id":1}"#])?);
                }
                _ => {
                    sep(&mut out);
                    let chain = if u.ratio(1, 3)? { self.ids.last().cloned() } else { None };
                    self.span(u, chain, &mut out)?;
                }
            }
        }
        out.push(']');
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Oracles.

/// Whether export bodies nested past the decoders' recursion limits count as
/// a failure (POLYTEL_FUZZ_STRICT_DEPTH=1); by default they are tolerated so
/// that fuzzing goes on past that known finding.
fn strict_depth() -> bool {
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("POLYTEL_FUZZ_STRICT_DEPTH").is_some_and(|v| v == "1"))
}

/// The body inside a gzip export body; a body that is not gzip is a finding.
fn gunzip(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw).read_to_end(&mut out).unwrap_or_else(|err| panic!("export body is not gzip: {err}"));
    out
}

/// Spans carried by a decoded request.
fn request_spans(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum()
}

/// Checks one export: an HTTP body must be base64 of (gzip of) a well-formed
/// OTLP request of its content type carrying exactly `items` spans; a console
/// export must name every trace.
pub fn check_export(e: &Export) {
    assert!(e.items > 0, "an export with no items: {e:?}");
    match &e.destination {
        Destination::Stdout => {
            assert!(e.body.starts_with("trace "), "console body does not start with a trace line: {:?}", e.body);
        }
        Destination::Http { url, headers, .. } => {
            assert!(url.starts_with("http://") || url.starts_with("https://"), "url {url:?}");
            let header = |name: &str| {
                headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.expose().to_owned())
            };
            let raw = B64.decode(&e.body).unwrap_or_else(|err| panic!("export body is not base64: {err}"));
            let raw = if header("content-encoding").as_deref() == Some("gzip") { gunzip(&raw) } else { raw };
            let spans = match header("content-type").as_deref() {
                Some("application/x-protobuf") => match ExportTraceServiceRequest::decode(&raw[..]) {
                    Ok(req) => request_spans(&req),
                    // Known: attribute maps nested ~32 deep pass the core but
                    // not prost's decoder (recursion limit 100), so the core's
                    // own receiver cannot read such an export. Checked only
                    // with POLYTEL_FUZZ_STRICT_DEPTH=1 (fuzz/regressions/spans/).
                    Err(err) if !strict_depth() && err.to_string().contains("recursion limit") => e.items as usize,
                    Err(err) => panic!("export body is not an OTLP protobuf request: {err}"),
                },
                Some("application/json") => {
                    let v: serde_json::Value = match serde_json::from_slice(&raw) {
                        Ok(v) => v,
                        // Known, as above: OTLP/JSON nests 4 levels per map
                        // level, past serde_json's default limit of 128.
                        Err(err) if !strict_depth() && err.to_string().contains("recursion limit") => {
                            let mut de = serde_json::Deserializer::from_slice(&raw);
                            de.disable_recursion_limit();
                            serde::Deserialize::deserialize(&mut de).expect("export body is JSON")
                        }
                        Err(err) => panic!("export body is not JSON: {err}: {}", String::from_utf8_lossy(&raw)),
                    };
                    let rs = v["resourceSpans"].as_array().expect("resourceSpans array");
                    rs.iter()
                        .flat_map(|r| r["scopeSpans"].as_array().expect("scopeSpans array"))
                        .map(|ss| ss["spans"].as_array().map_or(0, Vec::len))
                        .sum()
                }
                other => panic!("unexpected content type {other:?}"),
            };
            assert_eq!(spans, e.items as usize, "items does not match the spans in the body");
        }
        Destination::Grpc { target, path, compressed, .. } => {
            assert!(target.starts_with("http://") || target.starts_with("https://"), "target {target:?}");
            assert!(path.starts_with("/opentelemetry.proto.collector."), "path {path:?}");
            let raw = B64.decode(&e.body).unwrap_or_else(|err| panic!("export body is not base64: {err}"));
            let raw = if *compressed { gunzip(&raw) } else { raw };
            let req = ExportTraceServiceRequest::decode(&raw[..])
                .unwrap_or_else(|err| panic!("gRPC body is not an OTLP protobuf request: {err}"));
            assert_eq!(request_spans(&req), e.items as usize, "items does not match the spans in the body");
        }
    }
}

pub fn check_poll(r: &PollResult) {
    let mut ids: Vec<u64> = r.exports.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), r.exports.len(), "two exports with one id in a poll");
    r.exports.iter().for_each(check_export);
}

/// The counters must account for every span the core was given: received
/// (plus batches that were not arrays, each counted as one invalid drop)
/// equals exported + dropped + queued + pending. Holds only with one route,
/// and right after a poll or report (queued is refreshed by poll).
pub fn check_conservation(p: &Pipeline, bad_batches: u64) {
    let s = &p.stats().spans;
    let dropped: u64 = s.dropped.values().sum();
    assert_eq!(
        s.received + bad_batches,
        s.exported + dropped + s.queued + s.pending,
        "span counters do not add up: {}",
        p.stats_json()
    );
}

/// Whether the core will take `batch` as an array (else it counts one invalid drop).
pub fn is_array(batch: &str) -> bool {
    serde_json::from_str::<Vec<&serde_json::value::RawValue>>(batch).is_ok()
}

// ---------------------------------------------------------------------------
// Receiver answers (the `responses` target): configurations of every
// exporting route, and everything a receiver can send back.

/// Which kind of route a `responses` configuration has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    HttpProtobuf,
    HttpJson,
    Grpc,
    Azure,
}

/// A configuration with one exporting route per signal (traces and logs;
/// metrics off for OTLP), chosen by the input: OTLP http/protobuf or
/// http/json (with or without gzip), OTLP gRPC (the host says `"grpc": true`),
/// or Azure Monitor from a connection string (Live Metrics on or off).
pub fn route_config(u: &mut Unstructured) -> Result<(String, RouteKind)> {
    let kind = *pick(u, &[&RouteKind::HttpProtobuf, &RouteKind::HttpJson, &RouteKind::Grpc, &RouteKind::Azure])?;
    let gzip = u.arbitrary::<bool>()?;
    let (queue, batch) = *pick(u, &[&(4u32, 2u32), &(16, 3), &(64, 8), &(1000, 1000)])?;
    let (lqueue, lbatch) = *pick(u, &[&(4u32, 2u32), &(16, 3), &(64, 8), &(1000, 1000)])?;
    let delay = *pick(u, &[&0u32, &1000, &5000])?;
    let seed: u16 = u.arbitrary()?;
    let sizes = format!(
        r#""max_queue_size":{queue},"max_export_batch_size":{batch},"schedule_delay_ms":{delay},"log_max_queue_size":{lqueue},"log_max_export_batch_size":{lbatch},"log_schedule_delay_ms":{delay}"#
    );
    let json = match kind {
        RouteKind::Azure => {
            let live = if u.arbitrary()? { "true" } else { "false" };
            format!(
                r#"{{"options":{{"backend":"azure-monitor","azure_monitor_connection_string":"InstrumentationKey=5ec2e7a1-5ec2-4e7a-9ec2-5ec2e7a15ec2;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/","azure_monitor_live_metrics":"{live}",{sizes}}},"env":{{}},"seed":"{seed}","host":{{"sdk_language":"rust","host_name":"box-1"}}}}"#
            )
        }
        _ => {
            let (protocol, endpoint, grpc) = match kind {
                RouteKind::HttpProtobuf => ("http/protobuf", "http://127.0.0.1:4318", false),
                RouteKind::HttpJson => ("http/json", "http://127.0.0.1:4318", false),
                _ => ("grpc", "http://127.0.0.1:4317", true),
            };
            let compression = if gzip { "gzip" } else { "none" };
            format!(
                r#"{{"options":{{"protocol":"{protocol}","compression":"{compression}","endpoint":"{endpoint}","headers":{{"authorization":"Bearer s3cret"}},{sizes}}},"env":{{"OTEL_TRACES_EXPORTER":"otlp","OTEL_LOGS_EXPORTER":"otlp","OTEL_METRICS_EXPORTER":"none"}},"seed":"{seed}","host":{{"sdk_language":"rust","grpc":{grpc}}}}}"#
            )
        }
    };
    Ok((json, kind))
}

/// Simple, mostly valid records: spans with fresh ids (sometimes a repeated
/// id, a malformed one, events that become extra Azure envelopes), log
/// records, and now and then a batch that is not an array.
#[derive(Default)]
pub struct RecordGen {
    counter: u64,
}

impl RecordGen {
    pub fn spans(&mut self, u: &mut Unstructured, now: u64) -> Result<String> {
        if u.ratio(1, 20)? {
            return Ok(pick(u, &["{}", "null", "[", ""])?.to_owned());
        }
        let n = u.int_in_range(0..=6)?;
        let mut out = String::from("[");
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            let id = match u.int_in_range(0..=15)? {
                0 if self.counter > 0 => format!("{:016x}", self.counter),
                1 => "zz".to_owned(),
                _ => {
                    self.counter += 1;
                    format!("{:016x}", self.counter)
                }
            };
            let kind = u.int_in_range(0..=5)?;
            let _ = write!(
                out,
                r#"{{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"{id}","name":"s{i}","kind":{kind},"start":{now},"end":{}"#,
                now.saturating_add(1_000_000)
            );
            if u.ratio(1, 3)? {
                let _ = write!(out, r#","events":[{{"name":"e","time":{now}}}]"#);
            }
            if u.ratio(1, 4)? {
                out.push_str(r#","attributes":{"http.method":"GET","http.status_code":500}"#);
            }
            out.push('}');
        }
        out.push(']');
        Ok(out)
    }

    pub fn logs(&mut self, u: &mut Unstructured, now: u64) -> Result<String> {
        if u.ratio(1, 20)? {
            return Ok(pick(u, &["{}", "null", "[", ""])?.to_owned());
        }
        let n = u.int_in_range(0..=6)?;
        let mut out = String::from("[");
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            match u.int_in_range(0..=11)? {
                0 => out.push_str(r#"{"body":"no observed time"}"#),
                1 => {
                    let _ = write!(
                        out,
                        r#"{{"observed":{now},"severity":17,"body":"boom","attributes":{{"exception.type":"KeyError","exception.message":"x"}}}}"#
                    );
                }
                _ => {
                    let _ = write!(out, r#"{{"observed":{now},"severity":9,"body":"log {i}"}}"#);
                }
            }
        }
        out.push(']');
        Ok(out)
    }
}

const SECOND: u64 = 1_000_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm,
/// written out again here so the oracle does not share the core's code).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of `days_from_civil`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

const MONTH_NAMES: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// `unix_secs` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn imf_fixdate(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTH_NAMES[m as usize - 1],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A strictly valid IMF-fixdate (a real calendar day, years 1970-9999,
/// no leap second) as unix seconds; `None` for anything else.
pub fn parse_imf_fixdate(s: &str) -> Option<u64> {
    let (_, rest) = s.split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts[..] else { return None };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(day) || !all_digits(year) || day.len() > 2 || year.len() != 4 {
        return None;
    }
    let m = MONTH_NAMES.iter().position(|n| *n == month)? as u32 + 1;
    let (y, d): (i64, u32) = (year.parse().ok()?, day.parse().ok()?);
    let hms: Vec<&str> = time.split(':').collect();
    let [h, mi, sec] = hms[..] else { return None };
    if ![h, mi, sec].iter().all(|t| t.len() == 2 && all_digits(t)) {
        return None;
    }
    let (h, mi, sec): (u64, u64, u64) = (h.parse().ok()?, mi.parse().ok()?, sec.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m as usize - 1];
    if !(1970..=9999).contains(&y) || d == 0 || d > month_len || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    Some(days_from_civil(y, m, d) as u64 * 86_400 + h * 3600 + mi * 60 + sec)
}

/// The earliest time (unix ns) a retry may go after an answer at `now`
/// carrying `Retry-After: value`, when the value is a well-formed
/// delta-seconds (any number of digits: one past u64 still means "very long")
/// or IMF-fixdate; `None` when the value says nothing the oracle can hold the
/// core to.
pub fn retry_after_floor(value: &str, now: u64) -> Option<u64> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(now.saturating_add(secs.saturating_mul(SECOND)));
    }
    let at = parse_imf_fixdate(v)?;
    Some(now.max(at.saturating_mul(SECOND)))
}

/// A Retry-After value for an answer at `now`: valid seconds (small, around
/// the 300 s limit, past u64), HTTP-dates near, far and past, or anything
/// `retry_after` makes.
pub fn retry_after_at(u: &mut Unstructured, now: u64) -> Result<Option<String>> {
    let now_secs = now / SECOND;
    Ok(match u.int_in_range(0..=9)? {
        0 | 1 => None,
        2 => Some(u.int_in_range(0u64..=10)?.to_string()),
        3 => Some(u.int_in_range(100u64..=400)?.to_string()),
        4 => Some(pick(u, &["18446744073709551615", "18446744073709551616", "99999999999999999999999", "0000000000000000000000003", " 7 "])?.to_owned()),
        5 | 6 => {
            let delta: i64 = match u.int_in_range(0..=3)? {
                0 => u.int_in_range(0..=10)?,
                1 => u.int_in_range(100..=400)?,
                2 => -u.int_in_range(0..=1_000_000)?,
                _ => u.int_in_range(0..=10_000_000_000)?,
            };
            let at = now_secs.saturating_add_signed(delta).min(253_402_300_799);
            Some(imf_fixdate(at))
        }
        _ => retry_after(u)?,
    })
}

/// An OTLP Export*ServiceResponse body with a partial success, protobuf or
/// JSON (trace and log names), the rejected count below, at or above `items`.
pub fn partial_success_body(u: &mut Unstructured, json: bool, items: u64) -> Result<Vec<u8>> {
    let rejected: i64 = match u.int_in_range(0..=5)? {
        0 => 0,
        1 => u.int_in_range(0..=items as i64)?,
        2 => items as i64 + u.int_in_range(1..=5)?,
        3 => -u.int_in_range(1..=5)?,
        4 => i64::MAX,
        _ => u.arbitrary()?,
    };
    let message: String = text(u, &["", "some rejected", "é"])?;
    if !json {
        return Ok(ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: rejected, error_message: message }),
        }
        .encode_to_vec());
    }
    let key = pick(u, &["rejectedSpans", "rejectedLogRecords", "rejected_spans", "rejected_log_records", "rejectedDataPoints"])?;
    let count = if u.arbitrary()? { rejected.to_string() } else { quote(&rejected.to_string()) };
    Ok(format!(r#"{{"partialSuccess":{{{}:{count},"errorMessage":{}}}}}"#, quote(key), quote(&message)).into_bytes())
}

/// An Application Insights TrackResponse for an export of `envelopes`
/// envelopes: itemsReceived/itemsAccepted, errors with indexes in and out of
/// range (repeated too), retryable, final and "sampled out" ones.
pub fn track_response(u: &mut Unstructured, envelopes: usize) -> Result<Vec<u8>> {
    let n = u.int_in_range(0..=envelopes.min(8) + 2)?;
    let mut errors = Vec::new();
    for _ in 0..n {
        let index: i64 = match u.int_in_range(0..=5)? {
            0 => envelopes as i64 + u.int_in_range(0..=3)?,
            1 => -1,
            2 => u.arbitrary()?,
            _ => u.int_in_range(0..=envelopes.saturating_sub(1))? as i64,
        };
        let status = *pick(u, &[&400u16, &500, &503, &429, &408, &401, &206, &439, &0, &65535])?;
        let message = pick(u, &["Telemetry sampled out.", "Field 'name' is required", "", "Too many requests"])?;
        let entry = match u.int_in_range(0..=7)? {
            0 => format!(r#"{{"index":"{index}","statusCode":{status}}}"#),
            1 => format!(r#"{{"statusCode":{status}}}"#),
            _ => format!(r#"{{"index":{index},"statusCode":{status},"message":{}}}"#, quote(message)),
        };
        errors.push(entry);
    }
    let accepted = envelopes.saturating_sub(n);
    let errors = match u.int_in_range(0..=9)? {
        0 => "null".to_owned(),
        1 => "{}".to_owned(),
        _ => format!("[{}]", errors.join(",")),
    };
    Ok(format!(r#"{{"itemsReceived":{envelopes},"itemsAccepted":{accepted},"errors":{errors}}}"#).into_bytes())
}

/// `body` cut short, with bytes flipped, or with garbage after it.
pub fn mangle(u: &mut Unstructured, mut body: Vec<u8>) -> Result<Vec<u8>> {
    match u.int_in_range(0..=5)? {
        0 => body.truncate(u.int_in_range(0..=body.len())?),
        1 if !body.is_empty() => {
            let i = u.choose_index(body.len())?;
            body[i] ^= u.int_in_range(1..=255)?;
        }
        2 => body.extend(u.arbitrary::<Vec<u8>>()?),
        _ => {}
    }
    Ok(body)
}

/// A response body for an export of `items` items in `envelopes` envelopes
/// (Azure) answered by a receiver of `kind`: empty, garbage, a partial
/// success in either encoding, a TrackResponse, any of them mangled.
pub fn answer_body(u: &mut Unstructured, kind: RouteKind, items: u64, envelopes: usize) -> Result<Vec<u8>> {
    let body = match u.int_in_range(0..=7)? {
        0 => Vec::new(),
        1 => u.arbitrary()?,
        2 => response_body(u)?,
        3 => partial_success_body(u, !matches!(kind, RouteKind::HttpJson), items)?,
        _ => match kind {
            RouteKind::Azure => track_response(u, envelopes)?,
            RouteKind::HttpJson => partial_success_body(u, true, items)?,
            _ => partial_success_body(u, false, items)?,
        },
    };
    if u.ratio(1, 5)? {
        mangle(u, body)
    } else {
        Ok(body)
    }
}

/// Header names an answer may carry, in several spellings.
const HEADER_NAMES: &[&str] = &[
    "location",
    "Location",
    " LOCATION ",
    "retry-after",
    "Retry-After",
    "x-ms-qps-subscribed",
    "x-ms-qps-service-polling-interval-hint",
    "x-ms-qps-service-endpoint-redirect-v2",
    "x-ms-qps-configuration-etag",
    "content-type",
    "grpc-status",
];

/// A header list: locations (relative, absolute, other hosts, garbage),
/// Retry-After, Live Metrics' x-ms-qps-* headers, anything; repeated names.
pub fn answer_headers(u: &mut Unstructured, now: u64) -> Result<Vec<(String, String)>> {
    let n = u.int_in_range(0..=5)?;
    let mut headers = Vec::with_capacity(n);
    for _ in 0..n {
        let name = if u.ratio(7, 8)? { pick(u, HEADER_NAMES)?.to_owned() } else { u.arbitrary()? };
        let lower = name.trim().to_ascii_lowercase();
        let value = match lower.as_str() {
            "location" | "x-ms-qps-service-endpoint-redirect-v2" if u.ratio(3, 4)? => pick(
                u,
                &[
                    "/moved/v1/traces",
                    "/v2.1/track",
                    "http://127.0.0.1:4318/v2/traces",
                    "http://127.0.0.1:4317/",
                    "https://westeurope-5.in.applicationinsights.azure.com/v2.1/track",
                    "https://northeurope-2.in.applicationinsights.azure.com/",
                    "https://northeurope.livediagnostics.monitor.azure.com/",
                    "http://northeurope.livediagnostics.monitor.azure.com",
                    "https://evil.example/?token=x",
                    "https://user:pw@westeurope-5.in.applicationinsights.azure.com/",
                    "//elsewhere.example/",
                    "https://",
                    "https:///x",
                    "relative",
                    "",
                ],
            )?
            .to_owned(),
            "retry-after" => retry_after_at(u, now)?.unwrap_or_default(),
            "x-ms-qps-subscribed" if u.ratio(3, 4)? => pick(u, &["true", "false", "TRUE", "", "yes"])?.to_owned(),
            "x-ms-qps-service-polling-interval-hint" if u.ratio(3, 4)? => match u.int_in_range(0..=3)? {
                0 => u.int_in_range(0u64..=120_000)?.to_string(),
                1 => edgy_u64(u)?.to_string(),
                2 => u.arbitrary::<i64>()?.to_string(),
                _ => pick(u, &["soon", "", "1.5", "-1"])?.to_owned(),
            },
            _ => u.arbitrary()?,
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// An HTTP answer as the contract's http-response carries it.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

const ANSWER_STATUSES: &[u16] = &[
    200, 200, 200, 201, 204, 206, 206, 299, 301, 302, 307, 308, 400, 401, 402, 403, 404, 408, 413, 413, 429, 429,
    439, 500, 502, 503, 503, 504, 0, 100, 999, u16::MAX,
];

pub fn http_answer(u: &mut Unstructured, kind: RouteKind, items: u64, envelopes: usize, now: u64) -> Result<HttpAnswer> {
    let status = if u.ratio(7, 8)? { ANSWER_STATUSES[u.choose_index(ANSWER_STATUSES.len())?] } else { u.arbitrary()? };
    let retry_after = if u.ratio(1, 2)? { retry_after_at(u, now)? } else { None };
    let headers = answer_headers(u, now)?;
    let body = answer_body(u, kind, items, envelopes)?;
    Ok(HttpAnswer { status, retry_after, headers, body })
}

/// The Retry-After `http_outcome` takes from an answer: the field, else the
/// first header of that name; none for a 3xx with a Location (a redirect).
pub fn effective_retry_after(a: &HttpAnswer) -> Option<&str> {
    let header = |name: &str| a.headers.iter().find(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v);
    if (300..400).contains(&a.status) && header("location").is_some() {
        return None;
    }
    a.retry_after.as_deref().or_else(|| header("retry-after").map(String::as_str))
}

fn put_varint(out: &mut Vec<u8>, v: u64) {
    prost::encoding::encode_varint(v, out);
}

fn put_len(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_varint(out, u64::from(tag << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A google.rpc.Status (code, message, details) with a RetryInfo of
/// `seconds`/`nanos` among `other` Any messages, as protobuf.
pub fn rpc_status(code: i32, message: &str, retry: Option<(i64, i32)>, other: &[(&str, &[u8])]) -> Vec<u8> {
    let mut status = Vec::new();
    put_varint(&mut status, 1 << 3);
    put_varint(&mut status, code as i64 as u64);
    put_len(&mut status, 2, message.as_bytes());
    let any = |type_url: &str, value: &[u8]| {
        let mut a = Vec::new();
        put_len(&mut a, 1, type_url.as_bytes());
        put_len(&mut a, 2, value);
        a
    };
    for (url, value) in other {
        put_len(&mut status, 3, &any(url, value));
    }
    if let Some((seconds, nanos)) = retry {
        let mut duration = Vec::new();
        put_varint(&mut duration, 1 << 3);
        put_varint(&mut duration, seconds as u64);
        put_varint(&mut duration, 2 << 3);
        put_varint(&mut duration, nanos as i64 as u64);
        let mut info = Vec::new();
        put_len(&mut info, 1, &duration);
        put_len(&mut status, 3, &any("type.googleapis.com/google.rpc.RetryInfo", &info));
    }
    status
}

/// A gRPC outcome: any code, message and body; details absent, garbage, or
/// a google.rpc.Status with a RetryInfo. With it, the earliest time (unix
/// ns) the RetryInfo allows a retry, when it is well-formed.
pub fn grpc_answer(u: &mut Unstructured, items: u64, now: u64) -> Result<(Outcome, Option<u64>)> {
    let code: u32 = match u.int_in_range(0..=5)? {
        0 => 0,
        1 => *pick(u, &[&1u32, &4, &8, &10, &11, &14, &15])?,
        2 => u.int_in_range(0..=17)?,
        3 => u.arbitrary()?,
        _ => *pick(u, &[&0u32, &14, &8])?,
    };
    let message = text(u, &["", "unavailable", "quota exceeded"])?;
    let mut floor = None;
    let details = match u.int_in_range(0..=6)? {
        0 | 1 => None,
        2 => Some(u.arbitrary::<String>()?),
        3 => Some(B64.encode(u.arbitrary::<Vec<u8>>()?)),
        _ => {
            let (seconds, nanos): (i64, i32) = match u.int_in_range(0..=4)? {
                0 => (u.int_in_range(0..=10)?, u.int_in_range(0..=999_999_999)?),
                1 => (u.int_in_range(100..=400)?, 0),
                2 => (i64::MAX, i32::MAX),
                3 => (-u.int_in_range(1..=10)?, -1),
                _ => (u.arbitrary()?, u.arbitrary()?),
            };
            let other: Vec<(&str, &[u8])> = if u.arbitrary()? {
                vec![("type.googleapis.com/google.rpc.ErrorInfo", b"\x0a\x03bad")]
            } else {
                vec![]
            };
            let raw = rpc_status(code as i32, &message, Some((seconds, nanos)), &other);
            if let (Ok(s), Ok(n)) = (u64::try_from(seconds), u64::try_from(nanos)) {
                floor = Some(now.saturating_add(s.saturating_mul(SECOND).saturating_add(n)));
            }
            Some(match u.int_in_range(0..=3)? {
                0 => base64::engine::general_purpose::STANDARD_NO_PAD.encode(&raw),
                1 => format!(" {} ", B64.encode(&raw)),
                2 => {
                    floor = None;
                    B64.encode(mangle(u, raw)?)
                }
                _ => B64.encode(&raw),
            })
        }
    };
    let body = match u.int_in_range(0..=3)? {
        0 => Vec::new(),
        1 => u.arbitrary()?,
        _ => partial_success_body(u, false, items)?,
    };
    Ok((Outcome::Grpc { code, message, details, body }, floor))
}

/// Counters of one signal must account for every record it was given:
/// received (plus batches that were not arrays, each one invalid drop) equals
/// exported + dropped + queued + pending. Holds with one route per signal.
pub fn check_signal_conservation(p: &Pipeline, signal: polytel_core::pipeline::Signal, bad_batches: u64) {
    let stats = p.stats();
    let s = match signal {
        polytel_core::pipeline::Signal::Traces => &stats.spans,
        polytel_core::pipeline::Signal::Logs => &stats.logs,
        polytel_core::pipeline::Signal::Metrics => &stats.metrics,
    };
    let dropped: u64 = s.dropped.values().sum();
    assert_eq!(
        s.received + bad_batches,
        s.exported + dropped + s.queued + s.pending,
        "{signal:?} counters do not add up: {}",
        p.stats_json()
    );
}
