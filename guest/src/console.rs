//! The console format, for people reading telemetry as it happens: each trace
//! drawn as an indented tree with durations, status, attributes and events;
//! each metric as a block with one line per data point; each log record as one
//! line. Used for the `console` exporter and by `polytel receive`, so what a
//! user sees locally and what arrived at a receiver look the same.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point, Exemplar,
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};

use crate::ids::to_hex;
use crate::jsonl::{is_set, rfc3339_millis};

const KINDS: [&str; 6] = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const VALUE_WIDTH: usize = 80;

/// Renders every trace in `resource_spans` as a tree, traces in order of first
/// appearance, siblings by start time.
pub fn render_traces(resource_spans: &[ResourceSpans]) -> String {
    let mut out = String::new();
    for rs in resource_spans {
        let service = service_name(rs.resource.as_ref());
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

fn service_name(resource: Option<&Resource>) -> String {
    resource
        .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
        .map(|kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => one_line(s).into_owned(),
            _ => value_text(kv.value.as_ref()),
        })
        .unwrap_or_else(|| "unknown service".into())
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
    pairs_text(kvs.iter(), 0)
}

fn pairs_text<'a>(kvs: impl Iterator<Item = &'a KeyValue>, depth: usize) -> String {
    kvs.map(|kv| format!("{}={}", one_line(&kv.key), value_at(kv.value.as_ref(), depth))).collect::<Vec<_>>().join(" ")
}

/// Arrays and maps inside a value are shown this many levels deep. Decoded
/// requests cannot nest further (prost and serde_json stop well before), but
/// values built in memory can, and a wasm instance's stack is small.
pub(crate) const MAX_VALUE_DEPTH: usize = 64;
pub(crate) const TOO_DEEP: &str = "[nested too deep]";

/// A value as a person reads it: strings quoted and shortened, numbers bare.
pub fn value_text(v: Option<&AnyValue>) -> String {
    value_at(v, 0)
}

fn value_at(v: Option<&AnyValue>, depth: usize) -> String {
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
        Some(Value::ArrayValue(_) | Value::KvlistValue(_)) if depth >= MAX_VALUE_DEPTH => TOO_DEEP.into(),
        Some(Value::ArrayValue(a)) => {
            format!("[{}]", a.values.iter().map(|v| value_at(Some(v), depth + 1)).collect::<Vec<_>>().join(", "))
        }
        Some(Value::KvlistValue(kv)) => format!("{{{}}}", pairs_text(kv.values.iter(), depth + 1)),
        Some(Value::StringValueStrindex(i)) => format!("strindex:{i}"),
    }
}

/// `s` with line breaks and other control characters written as escapes, so
/// one record stays one line and a value cannot move the terminal's cursor.
/// Backslashes stay as they are: this is for reading, not for parsing back.
fn one_line(s: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The level of a log record without severity text, by the ranges of OTLP's
/// SeverityNumber; 0 and numbers outside 1 to 24 are unspecified.
pub fn severity_name(severity_number: i32) -> &'static str {
    match severity_number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "UNSPECIFIED",
    }
}

/// Every log record on one line: time, level, `[event name]`, body,
/// attributes, then trace and span ids when the record has them.
pub fn render_logs(resource_logs: &[ResourceLogs]) -> String {
    let mut out = String::new();
    for record in resource_logs.iter().flat_map(|rl| &rl.scope_logs).flat_map(|sl| &sl.log_records) {
        log_line(&mut out, record);
    }
    out
}

/// Short level names are padded to this width so that messages line up.
const LEVEL_WIDTH: usize = 5;

fn log_line(out: &mut String, record: &LogRecord) {
    let time = if record.time_unix_nano != 0 { record.time_unix_nano } else { record.observed_time_unix_nano };
    let level = match record.severity_text.as_str() {
        "" => Cow::Borrowed(severity_name(record.severity_number)),
        text => one_line(text),
    };
    let mut message =
        if record.event_name.is_empty() { String::new() } else { format!("[{}]", one_line(&record.event_name)) };
    let body = match record.body.as_ref().and_then(|b| b.value.as_ref()) {
        None => Cow::Borrowed(""),
        // The message is the line's main text, so it is shown whole and unquoted.
        Some(Value::StringValue(s)) => one_line(s),
        Some(_) => Cow::Owned(value_text(record.body.as_ref())),
    };
    if !message.is_empty() && !body.is_empty() {
        message.push(' ');
    }
    message.push_str(&body);
    let mut ids = String::new();
    if is_set(&record.trace_id) {
        ids = format!("trace={}", to_hex(&record.trace_id));
        if is_set(&record.span_id) {
            let _ = write!(ids, " span={}", to_hex(&record.span_id));
        }
    }
    let _ = write!(out, "{} {level}", rfc3339_millis(time));
    let parts = [message, attributes_text(&record.attributes), ids];
    for (i, part) in parts.iter().filter(|p| !p.is_empty()).enumerate() {
        if i == 0 {
            let pad = LEVEL_WIDTH.saturating_sub(level.chars().count());
            out.extend(std::iter::repeat_n(' ', pad + 1));
        } else {
            out.push_str("  ");
        }
        out.push_str(part);
    }
    out.push('\n');
}

/// Every metric as a block: a header line with name, unit, kind and service,
/// then one line per data point, in the order they arrived.
pub fn render_metrics(resource_metrics: &[ResourceMetrics]) -> String {
    let mut out = String::new();
    for rm in resource_metrics {
        let service = service_name(rm.resource.as_ref());
        for metric in rm.scope_metrics.iter().flat_map(|sm| &sm.metrics) {
            render_metric(&mut out, metric, &service);
            out.push('\n');
        }
    }
    out
}

fn render_metric(out: &mut String, metric: &Metric, service: &str) {
    let _ = write!(out, "metric {}", one_line(&metric.name));
    if !metric.unit.is_empty() {
        let _ = write!(out, " ({})", one_line(&metric.unit));
    }
    let kind = match &metric.data {
        None => "no data".to_string(),
        Some(Data::Gauge(_)) => "gauge".to_string(),
        Some(Data::Sum(s)) => {
            let kind = if s.is_monotonic { "counter" } else { "up-down counter" };
            format!("{kind}, {}", temporality(s.aggregation_temporality))
        }
        Some(Data::Histogram(h)) => format!("histogram, {}", temporality(h.aggregation_temporality)),
        Some(Data::ExponentialHistogram(h)) => {
            format!("exponential histogram, {}", temporality(h.aggregation_temporality))
        }
        Some(Data::Summary(_)) => "summary".to_string(),
    };
    let _ = writeln!(out, " · {kind} · {service}");
    match &metric.data {
        None => {}
        Some(Data::Gauge(g)) => g.data_points.iter().for_each(|p| number_point(out, p)),
        Some(Data::Sum(s)) => s.data_points.iter().for_each(|p| number_point(out, p)),
        Some(Data::Histogram(h)) => h.data_points.iter().for_each(|p| histogram_point(out, p)),
        Some(Data::ExponentialHistogram(h)) => h.data_points.iter().for_each(|p| exponential_point(out, p)),
        Some(Data::Summary(s)) => s.data_points.iter().for_each(|p| summary_point(out, p)),
    }
}

fn temporality(t: i32) -> &'static str {
    match t {
        1 => "delta",
        2 => "cumulative",
        _ => "unspecified temporality",
    }
}

/// OTLP's DataPointFlags bit for "no value was recorded in this interval".
const NO_RECORDED_VALUE: u32 = 1;

/// One data point line: sorted attributes, the value, then exemplars.
fn point_line(out: &mut String, attributes: &[KeyValue], flags: u32, exemplars: &[Exemplar], value: String) {
    out.push_str("  ");
    if !attributes.is_empty() {
        // Sorted, so the same series reads the same whatever order the
        // producer kept its attributes in.
        let mut sorted: Vec<&KeyValue> = attributes.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        out.push_str(&pairs_text(sorted.into_iter(), 0));
        out.push_str("  ");
    }
    if flags & NO_RECORDED_VALUE != 0 {
        out.push_str("no recorded value");
    } else {
        out.push_str(&value);
    }
    if !exemplars.is_empty() {
        out.push_str("  exemplars ");
        for (i, e) in exemplars.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&match e.value {
                Some(exemplar::Value::AsDouble(d)) => number(d),
                Some(exemplar::Value::AsInt(n)) => n.to_string(),
                None => "no value".into(),
            });
            if is_set(&e.trace_id) {
                let _ = write!(out, " trace={}", to_hex(&e.trace_id));
            }
        }
    }
    out.push('\n');
}

fn number_point(out: &mut String, p: &NumberDataPoint) {
    let value = match p.value {
        Some(number_data_point::Value::AsDouble(d)) => number(d),
        Some(number_data_point::Value::AsInt(n)) => n.to_string(),
        None => "no value".into(),
    };
    point_line(out, &p.attributes, p.flags, &p.exemplars, value);
}

/// `count=… sum=… min=… max=…`, leaving out what the point does not carry.
fn totals(count: u64, sum: Option<f64>, min: Option<f64>, max: Option<f64>) -> String {
    let mut s = format!("count={count}");
    for (name, v) in [("sum", sum), ("min", min), ("max", max)] {
        if let Some(v) = v {
            let _ = write!(s, " {name}={}", number(v));
        }
    }
    s
}

fn histogram_point(out: &mut String, p: &HistogramDataPoint) {
    let mut value = totals(p.count, p.sum, p.min, p.max);
    // Only buckets that counted something: most of a histogram is usually
    // empty, and the bounds of the non-empty ones say where values fell.
    let mut first = true;
    for (i, &n) in p.bucket_counts.iter().enumerate().filter(|(_, &n)| n > 0) {
        value.push_str(if first { "  " } else { " " });
        first = false;
        match p.explicit_bounds.get(i) {
            Some(&bound) => {
                let _ = write!(value, "≤{}:{n}", number(bound));
            }
            None => {
                let _ = write!(value, "+Inf:{n}");
            }
        }
    }
    point_line(out, &p.attributes, p.flags, &p.exemplars, value);
}

fn exponential_point(out: &mut String, p: &ExponentialHistogramDataPoint) {
    let mut buckets = Vec::new();
    // Neighbouring bounds differ by a factor of 2^(2^-scale), about
    // 1 + 0.69 / 2^scale: finer scales need more digits to read differently.
    let digits = (f64::from(p.scale) * 0.302 + 1.2).ceil().clamp(4.0, 17.0) as usize;
    let upper = |index: i64| ((index + 1) as f64 * (-f64::from(p.scale)).exp2()).exp2();
    if let Some(negative) = &p.negative {
        // Most negative first, so the line reads from low to high.
        let mut neg: Vec<(i64, u64)> = counted(negative).collect();
        neg.reverse();
        buckets.extend(neg.into_iter().map(|(i, n)| format!("≥{}:{n}", significant(-upper(i), digits))));
    }
    if p.zero_count > 0 {
        buckets.push(format!("0:{}", p.zero_count));
    }
    if let Some(positive) = &p.positive {
        buckets.extend(counted(positive).map(|(i, n)| format!("≤{}:{n}", significant(upper(i), digits))));
    }
    let mut value = totals(p.count, p.sum, p.min, p.max);
    if !buckets.is_empty() {
        value.push_str("  ");
        value.push_str(&buckets.join(" "));
    }
    point_line(out, &p.attributes, p.flags, &p.exemplars, value);
}

/// The non-empty buckets of one sign as (bucket index, count).
fn counted(b: &Buckets) -> impl Iterator<Item = (i64, u64)> + '_ {
    let offset = i64::from(b.offset);
    b.bucket_counts.iter().enumerate().filter(|(_, &n)| n > 0).map(move |(k, &n)| (offset + k as i64, n))
}

fn summary_point(out: &mut String, p: &SummaryDataPoint) {
    let mut value = totals(p.count, Some(p.sum), None, None);
    for (i, q) in p.quantile_values.iter().enumerate() {
        value.push_str(if i == 0 { "  " } else { " " });
        let _ = write!(value, "p{}={}", significant(q.quantile * 100.0, 4), number(q.value));
    }
    point_line(out, &p.attributes, p.flags, &[], value);
}

/// A measured number as short as it can be without losing anything: whole
/// numbers without a fraction, the rest in Rust's shortest round-trip form.
fn number(d: f64) -> String {
    if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if d == d.trunc() && d.abs() < 1e16 {
        // Exact: every whole f64 below 2^63 converts without rounding.
        format!("{}", d as i64)
    } else {
        format!("{d:?}")
    }
}

/// A computed number (a bucket bound, a percentile) rounded to `digits`
/// significant digits, since its full binary expansion is noise to a reader.
fn significant(d: f64, digits: usize) -> String {
    if !d.is_finite() || d == 0.0 {
        return number(d);
    }
    let magnitude = d.abs().log10().floor();
    if !(-4.0..16.0).contains(&magnitude) {
        let text = format!("{d:.*e}", digits.saturating_sub(1));
        return match text.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_fraction(mantissa)),
            None => text,
        };
    }
    let decimals = (digits as f64 - 1.0 - magnitude).max(0.0) as usize;
    trim_fraction(&format!("{d:.decimals$}")).to_string()
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::ScopeLogs;
    use opentelemetry_proto::tonic::metrics::v1::{
        summary_data_point::ValueAtQuantile, ExponentialHistogram, Gauge, Histogram, ScopeMetrics, Sum, Summary,
    };
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

    fn any(v: Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    fn int(i: i64) -> AnyValue {
        any(Value::IntValue(i))
    }

    fn metric(name: &str, unit: &str, data: Option<Data>) -> Metric {
        Metric { name: name.into(), unit: unit.into(), data, ..Default::default() }
    }

    fn resource_metrics(service: Option<&str>, metrics: Vec<Metric>) -> ResourceMetrics {
        ResourceMetrics {
            resource: service.map(|s| Resource {
                attributes: vec![key_value("service.name", string_value(s))],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            ..Default::default()
        }
    }

    fn int_point(attributes: Vec<KeyValue>, v: i64) -> NumberDataPoint {
        NumberDataPoint { attributes, value: Some(number_data_point::Value::AsInt(v)), ..Default::default() }
    }

    fn double_point(attributes: Vec<KeyValue>, v: f64) -> NumberDataPoint {
        NumberDataPoint { attributes, value: Some(number_data_point::Value::AsDouble(v)), ..Default::default() }
    }

    #[test]
    fn draws_every_kind_of_metric() {
        let mut requests =
            int_point(vec![key_value("route", string_value("/b")), key_value("method", string_value("GET"))], 12);
        requests.exemplars.push(Exemplar {
            value: Some(exemplar::Value::AsInt(1)),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Default::default()
        });
        requests.exemplars.push(Exemplar { value: Some(exemplar::Value::AsDouble(2.5)), ..Default::default() });
        let mut not_recorded = double_point(vec![key_value("room", string_value("a"))], 0.0);
        not_recorded.flags = NO_RECORDED_VALUE;
        let durations = HistogramDataPoint {
            count: 11,
            sum: Some(12.25),
            min: Some(0.01),
            max: Some(30.0),
            explicit_bounds: vec![0.1, 1.0, 10.0],
            bucket_counts: vec![3, 7, 0, 1],
            exemplars: vec![Exemplar {
                value: Some(exemplar::Value::AsDouble(0.05)),
                trace_id: vec![0xab; 16],
                ..Default::default()
            }],
            ..Default::default()
        };
        let idle = HistogramDataPoint {
            attributes: vec![key_value("idle", any(Value::BoolValue(true)))],
            explicit_bounds: vec![0.1, 1.0, 10.0],
            bucket_counts: vec![0; 4],
            ..Default::default()
        };
        let sizes = ExponentialHistogramDataPoint {
            count: 8,
            sum: Some(10.5),
            min: Some(-3.0),
            max: Some(7.0),
            scale: 0,
            zero_count: 1,
            positive: Some(Buckets { offset: 0, bucket_counts: vec![1, 0, 2] }),
            negative: Some(Buckets { offset: 0, bucket_counts: vec![1, 3] }),
            ..Default::default()
        };
        let fine = ExponentialHistogramDataPoint {
            count: 2,
            scale: 3,
            positive: Some(Buckets { offset: -1, bucket_counts: vec![1, 1] }),
            ..Default::default()
        };
        let latency = SummaryDataPoint {
            count: 5,
            sum: 12.5,
            quantile_values: vec![
                ValueAtQuantile { quantile: 0.5, value: 2.0 },
                ValueAtQuantile { quantile: 0.999, value: 4.75 },
            ],
            ..Default::default()
        };
        let checkout = resource_metrics(
            Some("checkout"),
            vec![
                metric(
                    "requests",
                    "{request}",
                    Some(Data::Sum(Sum {
                        data_points: vec![requests, int_point(vec![], 3)],
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })),
                ),
                metric(
                    "queue.depth",
                    "",
                    Some(Data::Sum(Sum {
                        data_points: vec![int_point(vec![], -2)],
                        aggregation_temporality: 1,
                        is_monotonic: false,
                    })),
                ),
                metric(
                    "temperature",
                    "Cel",
                    Some(Data::Gauge(Gauge { data_points: vec![double_point(vec![], 21.5), not_recorded] })),
                ),
                metric(
                    "http.server.request.duration",
                    "s",
                    Some(Data::Histogram(Histogram { data_points: vec![durations, idle], aggregation_temporality: 2 })),
                ),
                metric(
                    "payload.size",
                    "By",
                    Some(Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: vec![sizes, fine],
                        aggregation_temporality: 1,
                    })),
                ),
                metric("latency", "s", Some(Data::Summary(Summary { data_points: vec![latency] }))),
                metric("nothing.yet", "", None),
            ],
        );
        let other = resource_metrics(
            None,
            vec![metric(
                "ratio",
                "1",
                Some(Data::Gauge(Gauge {
                    data_points: vec![
                        double_point(vec![], 1e20),
                        double_point(vec![], 0.1),
                        double_point(vec![], -0.0),
                    ],
                })),
            )],
        );
        let expected = "\
metric requests ({request}) · counter, cumulative · checkout
  method=\"GET\" route=\"/b\"  12  exemplars 1 trace=01010101010101010101010101010101, 2.5
  3

metric queue.depth · up-down counter, delta · checkout
  -2

metric temperature (Cel) · gauge · checkout
  21.5
  room=\"a\"  no recorded value

metric http.server.request.duration (s) · histogram, cumulative · checkout
  count=11 sum=12.25 min=0.01 max=30  ≤0.1:3 ≤1:7 +Inf:1  exemplars 0.05 trace=abababababababababababababababab
  idle=true  count=0

metric payload.size (By) · exponential histogram, delta · checkout
  count=8 sum=10.5 min=-3 max=7  ≥-4:3 ≥-2:1 0:1 ≤2:1 ≤8:2
  count=2  ≤1:1 ≤1.091:1

metric latency (s) · summary · checkout
  count=5 sum=12.5  p50=2 p99.9=4.75

metric nothing.yet · no data · checkout

metric ratio (1) · gauge · unknown service
  1e20
  0.1
  0

";
        assert_eq!(render_metrics(&[checkout, other]), expected);
    }

    #[test]
    fn malformed_metrics_are_drawn_without_panicking() {
        let histogram = HistogramDataPoint {
            count: u64::MAX,
            sum: Some(f64::NAN),
            min: Some(f64::NEG_INFINITY),
            max: Some(f64::INFINITY),
            explicit_bounds: vec![f64::NAN],
            bucket_counts: vec![1, 2, 3],
            ..Default::default()
        };
        let exponential = |scale, offset| ExponentialHistogramDataPoint {
            scale,
            zero_count: u64::MAX,
            positive: Some(Buckets { offset, bucket_counts: vec![u64::MAX; 3] }),
            negative: Some(Buckets { offset, bucket_counts: vec![1] }),
            ..Default::default()
        };
        let points = vec![
            exponential(i32::MIN, i32::MIN),
            exponential(i32::MAX, i32::MAX),
            exponential(-10, i32::MAX),
            exponential(20, i32::MIN),
        ];
        let summary = SummaryDataPoint {
            sum: f64::NAN,
            quantile_values: vec![ValueAtQuantile { quantile: f64::INFINITY, value: -1e-300 }],
            ..Default::default()
        };
        let rm = resource_metrics(
            Some("line\nbreak"),
            vec![
                metric(
                    "bad",
                    "",
                    Some(Data::Histogram(Histogram { data_points: vec![histogram], aggregation_temporality: 9 })),
                ),
                metric(
                    "worse",
                    "",
                    Some(Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: points,
                        aggregation_temporality: -1,
                    })),
                ),
                metric("odd", "", Some(Data::Summary(Summary { data_points: vec![summary] }))),
                metric("empty", "", Some(Data::Gauge(Gauge { data_points: vec![NumberDataPoint::default()] }))),
            ],
        );
        let text = render_metrics(&[rm]);
        assert!(text.contains("bad · histogram, unspecified temporality · line\\nbreak\n"), "{text}");
        assert!(text.contains("count=18446744073709551615 sum=NaN min=-Inf max=+Inf  ≤NaN:1 +Inf:2 +Inf:3"), "{text}");
        assert!(text.contains("  p+Inf=-1e-300"), "{text}");
        assert!(text.contains("  no value\n"), "{text}");
        assert!(text.contains("  count=0  ≥-Inf:1 0:18446744073709551615 ≤+Inf:18446744073709551615"), "{text}");
        assert_eq!(text.lines().count(), 15, "{text}");
    }

    #[test]
    fn significant_digits() {
        assert_eq!(significant(1.0905077326652577, 4), "1.091");
        assert_eq!(significant(99.9, 4), "99.9");
        assert_eq!(significant(123456.7, 4), "123457");
        assert_eq!(significant(0.000123456, 4), "0.0001235");
        assert_eq!(significant(1.2345e20, 4), "1.234e20");
        assert_eq!(significant(1e-30, 4), "1e-30");
        assert_eq!(significant(-2.0, 4), "-2");
    }

    fn resource_logs(records: Vec<LogRecord>) -> ResourceLogs {
        ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn one_line_per_log_record() {
        let traced = LogRecord {
            time_unix_nano: 1_796_230_763_123_456_789,
            severity_number: 9,
            body: Some(string_value("hello")),
            attributes: vec![key_value("user.id", int(42)), key_value("a", string_value("b"))],
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            ..Default::default()
        };
        let multi_line = LogRecord {
            observed_time_unix_nano: 1_000_000,
            severity_text: "Warning".into(),
            severity_number: 13,
            body: Some(string_value("line one\nline two\ttab")),
            attributes: vec![key_value("multi\nkey", string_value("a\nb"))],
            trace_id: vec![0; 16],
            span_id: vec![0; 8],
            ..Default::default()
        };
        let event = LogRecord {
            time_unix_nano: 1_796_230_763_000_000_000,
            severity_number: 21,
            event_name: "user.login".into(),
            trace_id: vec![0xff; 16],
            ..Default::default()
        };
        let bare = LogRecord::default();
        let text = render_logs(&[resource_logs(vec![traced, multi_line]), resource_logs(vec![event, bare])]);
        let expected = "\
2026-12-02T16:59:23.123Z INFO  hello  user.id=42 a=\"b\"  trace=0102030405060708090a0b0c0d0e0f10 span=0102030405060708
1970-01-01T00:00:00.001Z Warning line one\\nline two\\ttab  multi\\nkey=\"a\\nb\"
2026-12-02T16:59:23.000Z FATAL [user.login]  trace=ffffffffffffffffffffffffffffffff
1970-01-01T00:00:00.000Z UNSPECIFIED
";
        assert_eq!(text, expected);
    }

    #[test]
    fn every_body_type_on_one_line() {
        let bodies = [
            (None, "1970-01-01T00:00:00.000Z DEBUG\n"),
            (Some(AnyValue { value: None }), "1970-01-01T00:00:00.000Z DEBUG\n"),
            (Some(string_value("")), "1970-01-01T00:00:00.000Z DEBUG\n"),
            (
                Some(string_value("a\r\n\u{1b}[31mred\u{2028}")),
                "1970-01-01T00:00:00.000Z DEBUG a\\r\\n\\u{1b}[31mred\\u{2028}\n",
            ),
            (Some(any(Value::BoolValue(true))), "1970-01-01T00:00:00.000Z DEBUG true\n"),
            (Some(int(-7)), "1970-01-01T00:00:00.000Z DEBUG -7\n"),
            (Some(any(Value::DoubleValue(1.5))), "1970-01-01T00:00:00.000Z DEBUG 1.5\n"),
            (Some(any(Value::BytesValue(vec![0xde, 0xad]))), "1970-01-01T00:00:00.000Z DEBUG 0xdead\n"),
            (
                Some(any(Value::ArrayValue(ArrayValue { values: vec![int(1), string_value("x\ny")] }))),
                "1970-01-01T00:00:00.000Z DEBUG [1, \"x\\ny\"]\n",
            ),
            (
                Some(any(Value::KvlistValue(KeyValueList {
                    values: vec![key_value("k\n", string_value("v\n")), key_value("n", int(1))],
                }))),
                "1970-01-01T00:00:00.000Z DEBUG {k\\n=\"v\\n\" n=1}\n",
            ),
            (Some(any(Value::StringValueStrindex(3))), "1970-01-01T00:00:00.000Z DEBUG strindex:3\n"),
        ];
        for (body, expected) in bodies {
            let record = LogRecord { severity_number: 5, body, ..Default::default() };
            assert_eq!(render_logs(&[resource_logs(vec![record])]), expected);
        }
    }

    #[test]
    fn severity_names() {
        let names: Vec<&str> = (-1..=25).map(severity_name).collect();
        let mut expected = vec!["UNSPECIFIED"; 2];
        for name in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] {
            expected.extend([name; 4]);
        }
        expected.push("UNSPECIFIED");
        assert_eq!(names, expected);
        assert_eq!(severity_name(i32::MIN), "UNSPECIFIED");
    }

    #[test]
    fn deep_values_are_cut_off() {
        let mut v = int(1);
        for _ in 0..1_000 {
            v = any(Value::KvlistValue(KeyValueList { values: vec![key_value("k", v)] }));
        }
        let expected = format!("{}{TOO_DEEP}{}", "{k=".repeat(MAX_VALUE_DEPTH), "}".repeat(MAX_VALUE_DEPTH));
        assert_eq!(value_text(Some(&v)), expected);
    }
}
