//! The console format: each trace drawn as an indented tree with durations,
//! status, attributes and events. Used for the `console` exporter and by
//! `polytel receive`, so what a user sees locally and what arrived at a
//! receiver look the same.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};

use crate::ids::to_hex;

const KINDS: [&str; 6] = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const VALUE_WIDTH: usize = 80;

/// Renders every trace in `resource_spans` as a tree, traces in order of first
/// appearance, siblings by start time.
pub fn render_traces(resource_spans: &[ResourceSpans]) -> String {
    let mut out = String::new();
    for rs in resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map(|kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                _ => value_text(kv.value.as_ref()),
            })
            .unwrap_or_else(|| "unknown service".into());
        let spans: Vec<&Span> = rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()).collect();
        let mut traces: Vec<(&[u8], Vec<&Span>)> = Vec::new();
        for s in spans {
            match traces.iter_mut().find(|(t, _)| *t == s.trace_id.as_slice()) {
                Some((_, list)) => list.push(s),
                None => traces.push((&s.trace_id, vec![s])),
            }
        }
        for (trace_id, spans) in traces {
            let _ =
                writeln!(out, "trace {} · {} · {} span{}", to_hex(trace_id), service, spans.len(), plural(spans.len()));
            render_tree(&mut out, &spans);
            out.push('\n');
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn render_tree(out: &mut String, spans: &[&Span]) {
    let ids: HashSet<&[u8]> = spans.iter().map(|s| s.span_id.as_slice()).collect();
    let mut children: BTreeMap<&[u8], Vec<&Span>> = BTreeMap::new();
    let mut roots = Vec::new();
    for s in spans {
        if !s.parent_span_id.is_empty() && ids.contains(s.parent_span_id.as_slice()) && s.parent_span_id != s.span_id {
            children.entry(&s.parent_span_id).or_default().push(s);
        } else {
            roots.push(*s);
        }
    }
    let order = |v: &mut Vec<&Span>| {
        v.sort_by(|a, b| (a.start_time_unix_nano, &a.span_id).cmp(&(b.start_time_unix_nano, &b.span_id)))
    };
    order(&mut roots);
    children.values_mut().for_each(order);
    let mut visited = HashSet::new();
    for (i, root) in roots.iter().enumerate() {
        draw(out, root, i + 1 == roots.len(), &children, &mut visited);
    }
    // Spans in a parent cycle have no root above them; show them anyway.
    for s in spans {
        if !visited.contains(s.span_id.as_slice()) {
            draw(out, s, true, &children, &mut visited);
        }
    }
}

/// Deeper spans are drawn at this indentation, so a long parent chain cannot
/// make every line longer than the last.
const MAX_INDENT: usize = 24;

/// Draws `root` and its descendants depth first, without recursion: a chain of
/// parents may be arbitrarily long.
fn draw<'a>(
    out: &mut String,
    root: &'a Span,
    last_root: bool,
    children: &BTreeMap<&[u8], Vec<&'a Span>>,
    visited: &mut HashSet<&'a [u8]>,
) {
    // (span, prefix, is last sibling, is a root)
    let mut stack: Vec<(&Span, String, bool, bool)> = vec![(root, String::new(), last_root, true)];
    while let Some((span, prefix, last, is_root)) = stack.pop() {
        if !visited.insert(&span.span_id) {
            continue;
        }
        let (branch, stem) = match (is_root, last) {
            (true, _) => ("", ""),
            (false, true) => ("└─ ", "   "),
            (false, false) => ("├─ ", "│  "),
        };
        draw_line(out, span, &prefix, branch, is_root);
        let kids = children.get(span.span_id.as_slice()).map(Vec::as_slice).unwrap_or(&[]);
        let detail_prefix = format!("{prefix}{stem}{}", if kids.is_empty() { "   " } else { "│  " });
        draw_details(out, span, &detail_prefix);
        let child_prefix =
            if prefix.chars().count() >= MAX_INDENT * 3 { prefix.clone() } else { format!("{prefix}{stem}") };
        for (i, child) in kids.iter().enumerate().rev() {
            stack.push((child, child_prefix.clone(), i + 1 == kids.len(), false));
        }
    }
}

fn draw_line(out: &mut String, span: &Span, prefix: &str, branch: &str, root: bool) {
    let _ = write!(out, "{prefix}{branch}{}  {}", span.name, duration(span));
    let kind = KINDS.get(span.kind as usize).copied().unwrap_or("unspecified");
    let _ = write!(out, "  {kind}");
    if root && !span.parent_span_id.is_empty() {
        let _ = write!(out, "  (parent {})", to_hex(&span.parent_span_id));
    }
    match &span.status {
        Some(s) if s.code == 2 => {
            let _ = write!(out, "  ERROR");
            if !s.message.is_empty() {
                let _ = write!(out, ": {}", s.message);
            }
        }
        Some(s) if s.code == 1 => out.push_str("  OK"),
        _ => {}
    }
    out.push('\n');
}

fn draw_details(out: &mut String, span: &Span, prefix: &str) {
    if !span.attributes.is_empty() {
        let _ = writeln!(out, "{prefix}{}", attributes_text(&span.attributes));
    }
    for e in &span.events {
        let offset = e.time_unix_nano.saturating_sub(span.start_time_unix_nano);
        let _ = write!(out, "{prefix}• {} at +{}", e.name, nanos(offset));
        if !e.attributes.is_empty() {
            let _ = write!(out, "  {}", attributes_text(&e.attributes));
        }
        out.push('\n');
    }
    for l in &span.links {
        let _ = writeln!(out, "{prefix}↪ link {}/{}", to_hex(&l.trace_id), to_hex(&l.span_id));
    }
}

fn duration(span: &Span) -> String {
    nanos(span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano))
}

/// A duration in the unit that keeps it short: 850 ns, 12.4 µs, 3.2 ms, 1.52 s.
pub fn nanos(n: u64) -> String {
    match n {
        0..=999 => format!("{n} ns"),
        1_000..=999_999 => format!("{:.1} µs", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} ms", n as f64 / 1e6),
        _ => format!("{:.2} s", n as f64 / 1e9),
    }
}

pub fn attributes_text(kvs: &[KeyValue]) -> String {
    kvs.iter().map(|kv| format!("{}={}", kv.key, value_text(kv.value.as_ref()))).collect::<Vec<_>>().join(" ")
}

/// A value as a person reads it: strings quoted and shortened, numbers bare.
pub fn value_text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => "null".into(),
        Some(Value::StringValue(s)) => {
            let mut short: String = s.chars().take(VALUE_WIDTH).collect();
            if short.len() < s.len() {
                short.push('…');
            }
            format!("{short:?}")
        }
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => format!("{d:?}"),
        Some(Value::BytesValue(b)) => format!("0x{}", to_hex(&b[..b.len().min(VALUE_WIDTH / 2)])),
        Some(Value::ArrayValue(a)) => {
            format!("[{}]", a.values.iter().map(|v| value_text(Some(v))).collect::<Vec<_>>().join(", "))
        }
        Some(Value::KvlistValue(kv)) => format!("{{{}}}", attributes_text(&kv.values)),
        Some(Value::StringValueStrindex(i)) => format!("strindex:{i}"),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::trace::v1::{span::Event, ScopeSpans, Status};

    use super::*;
    use crate::attributes::{key_value, string_value};

    fn span(id: u8, parent: Option<u8>, start: u64, end: u64, name: &str) -> Span {
        Span {
            trace_id: vec![9; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: name.into(),
            kind: 1,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        }
    }

    #[test]
    fn draws_a_tree() {
        let mut failed = span(3, Some(1), 3_000_000, 4_500_000, "tool");
        failed.status = Some(Status { code: 2, message: "boom".into() });
        failed.events.push(Event { time_unix_nano: 4_000_000, name: "exception".into(), ..Default::default() });
        let mut root = span(1, None, 0, 1_520_000_000, "agent");
        root.attributes.push(key_value("k", string_value("v")));
        let rs = ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    failed,
                    span(2, Some(1), 1_000, 2_000, "llm"),
                    root,
                    span(4, Some(2), 1_200, 1_300, "inner"),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render_traces(&[rs]);
        let expected = "\
trace 09090909090909090909090909090909 · unknown service · 4 spans
agent  1.52 s  internal
│  k=\"v\"
├─ llm  1.0 µs  internal
│  └─ inner  100 ns  internal
└─ tool  1.5 ms  internal  ERROR: boom
      • exception at +1.0 ms

";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_long_parent_chain_is_drawn_without_recursion() {
        let n = 100_000u32;
        let spans: Vec<Span> = (1..=n)
            .map(|i| {
                let mut s = span(0, None, 0, 1, "s");
                s.span_id = i.to_be_bytes().repeat(2);
                if i > 1 {
                    s.parent_span_id = (i - 1).to_be_bytes().repeat(2);
                }
                s
            })
            .collect();
        let rs = ResourceSpans { scope_spans: vec![ScopeSpans { spans, ..Default::default() }], ..Default::default() };
        let text = render_traces(&[rs]);
        assert_eq!(text.lines().filter(|l| l.contains("s  1 ns")).count(), n as usize);
        assert!(text.lines().all(|l| l.chars().count() < 200), "indentation is capped");
    }

    #[test]
    fn cycles_and_orphans_do_not_loop() {
        let a = span(1, Some(2), 0, 1, "a");
        let b = span(2, Some(1), 0, 1, "b");
        let orphan = span(5, Some(7), 0, 1, "orphan");
        let rs = ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: vec![a, b, orphan], ..Default::default() }],
            ..Default::default()
        };
        let text = render_traces(&[rs]);
        assert!(text.contains("orphan  1 ns  internal  (parent 0707070707070707)"), "{text}");
        assert!(text.contains("a  1 ns") && text.contains("b  1 ns"), "{text}");
    }
}
