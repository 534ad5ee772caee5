//! Current metrics as a Prometheus scrape body: the text exposition format
//! 0.0.4 and OpenMetrics 1.0, translated from OTLP by the OpenTelemetry
//! compatibility rules (specification/compatibility/prometheus_and_openmetrics.md).
//!
//! The translation lives in the core so every host serves the same bytes for
//! the same metrics. Output is a pure function of the input: families are
//! sorted by name (the `target` info family first, as OpenMetrics asks),
//! series by their rendered labels, and nothing depends on hash order.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric::Data, number_data_point, AggregationTemporality, Exemplar, HistogramDataPoint, Metric,
    NumberDataPoint, ScopeMetrics, SummaryDataPoint,
};

use crate::ids::to_hex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text004,
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    pub text: String,
    /// One sentence per metric that could not be rendered and why (e.g.
    /// exponential histograms, delta temporality), and per metric that lost
    /// some of its data points.
    pub skipped: Vec<String>,
}

/// Renders the resource as the `target` info metric and every metric of
/// `scopes` that Prometheus can carry; says in `skipped` what it left out.
pub fn render(resource: &[KeyValue], scopes: &[ScopeMetrics], format: Format) -> Rendered {
    let mut b = Builder::default();
    let target = attribute_labels(resource);
    if !target.is_empty() {
        for name in [TARGET, TARGET_INFO] {
            b.claimed.insert(name.to_string(), TARGET.to_string());
        }
    }
    for scope in scopes {
        let labels = scope_labels(scope);
        for metric in &scope.metrics {
            b.add(metric, &labels);
        }
    }
    let mut out = String::new();
    if !target.is_empty() {
        render_target(&mut out, &target, format);
    }
    let mut skipped = b.skipped;
    let mut families = b.families;
    families.sort_by(|a, b| a.name.cmp(&b.name));
    for family in &mut families {
        if family.duplicates > 0 {
            skipped.push(format!(
                "`{}`: {} data point(s) dropped because their labels equal another data point's once sanitised.",
                family.name, family.duplicates
            ));
        }
        if family.series.is_empty() {
            continue;
        }
        family.series.sort_by(|a, b| a.labels.cmp(&b.labels));
        render_family(&mut out, family, format);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    Rendered { text: out, skipped }
}

const TARGET: &str = "target";
const TARGET_INFO: &str = "target_info";
/// The description the OpenTelemetry SDKs give `target_info`; promtool flags a
/// family without HELP.
const TARGET_HELP: &str = "Target metadata";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }

    /// Every sample name a family of this kind may produce in either format,
    /// `_created` included: OpenMetrics forbids families whose names could
    /// clash with another family's samples.
    fn names(self, family: &str) -> Vec<String> {
        let suffixes: &[&str] = match self {
            Kind::Counter => &["", "_total", "_created"],
            Kind::Gauge => &[""],
            Kind::Histogram => &["", "_bucket", "_sum", "_count", "_created"],
            Kind::Summary => &["", "_sum", "_count", "_created"],
        };
        suffixes.iter().map(|s| format!("{family}{s}")).collect()
    }
}

struct Family {
    name: String,
    kind: Kind,
    help: String,
    unit: String,
    series: Vec<Series>,
    /// Identities of the series so far (non-empty labels only: Prometheus
    /// treats an empty label value as no label).
    seen: HashSet<String>,
    duplicates: usize,
}

struct Series {
    labels: String,
    point: Point,
}

enum Point {
    Number { value: Number, exemplar: Option<Ex> },
    Histogram { buckets: Vec<Bucket>, count: u64, sum: Option<f64> },
    Summary { quantiles: Vec<(f64, f64)>, count: u64, sum: Option<f64> },
}

struct Bucket {
    /// `f64::INFINITY` for the last bucket.
    bound: f64,
    cumulative: u64,
    exemplar: Option<Ex>,
}

#[derive(Clone, Copy)]
enum Number {
    Int(i64),
    Double(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Double(d) => d,
        }
    }
}

/// An exemplar ready to print: its label set and value.
struct Ex {
    labels: String,
    value: Number,
    time_unix_nano: u64,
}

#[derive(Default)]
struct Builder {
    families: Vec<Family>,
    by_name: BTreeMap<String, usize>,
    /// Sample and family names already taken, and by which family.
    claimed: BTreeMap<String, String>,
    skipped: Vec<String>,
}

/// Why some data points of one metric were left out: how many, and the first reason.
#[derive(Default)]
struct Dropped {
    count: usize,
    first: Option<String>,
}

impl Dropped {
    fn add(&mut self, why: String) {
        self.count += 1;
        self.first.get_or_insert(why);
    }
}

impl Builder {
    fn add(&mut self, metric: &Metric, scope_labels: &[(String, String)]) {
        let kind = match classify(metric) {
            Ok(kind) => kind,
            Err(why) => return self.skipped.push(why),
        };
        let unit = prometheus_unit(&metric.unit, kind);
        let Some(name) = family_name(&metric.name, &unit, kind) else {
            return self
                .skipped
                .push(format!("`{}` has no letters or digits to build a Prometheus name from; skipped.", metric.name));
        };
        let index = match self.by_name.get(&name) {
            Some(&i) => {
                let existing = self.families.get(i).map(|f| f.kind).unwrap_or(kind);
                if existing != kind {
                    return self.skipped.push(format!(
                        "`{}` maps to the Prometheus family `{name}`, already a {} from an earlier metric; \
                         this {} was skipped.",
                        metric.name,
                        existing.as_str(),
                        kind.as_str()
                    ));
                }
                i
            }
            None => {
                let names = kind.names(&name);
                if let Some((taken, owner)) = names.iter().find_map(|n| self.claimed.get(n).map(|o| (n, o))) {
                    return self.skipped.push(format!(
                        "`{}` maps to the Prometheus family `{name}`, whose sample name `{taken}` \
                         the family `{owner}` already uses; skipped.",
                        metric.name
                    ));
                }
                for n in names {
                    self.claimed.insert(n, name.clone());
                }
                self.families.push(Family {
                    name: name.clone(),
                    kind,
                    help: String::new(),
                    unit: String::new(),
                    series: Vec::new(),
                    seen: HashSet::new(),
                    duplicates: 0,
                });
                self.by_name.insert(name, self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let Some(family) = self.families.get_mut(index) else { return };
        // Metrics merged into one family keep the first HELP and UNIT, as the
        // specification asks when they conflict.
        if family.help.is_empty() {
            family.help = metric.description.clone();
        }
        if family.unit.is_empty() {
            family.unit = unit;
        }
        let points: Vec<(Result<Point, String>, &[KeyValue])> = match &metric.data {
            Some(Data::Sum(s)) => s
                .data_points
                .iter()
                .filter(|p| recorded(p.flags))
                .map(|p| (number_point(p, kind == Kind::Counter), p.attributes.as_slice()))
                .collect(),
            Some(Data::Gauge(g)) => g
                .data_points
                .iter()
                .filter(|p| recorded(p.flags))
                .map(|p| (number_point(p, false), p.attributes.as_slice()))
                .collect(),
            Some(Data::Histogram(h)) => h
                .data_points
                .iter()
                .filter(|p| recorded(p.flags))
                .map(|p| (histogram_point(p), p.attributes.as_slice()))
                .collect(),
            Some(Data::Summary(s)) => s
                .data_points
                .iter()
                .filter(|p| recorded(p.flags))
                .map(|p| (summary_point(p), p.attributes.as_slice()))
                .collect(),
            Some(Data::ExponentialHistogram(_)) | None => Vec::new(),
        };
        let mut dropped = Dropped::default();
        for (point, attributes) in points {
            let point = match point {
                Ok(point) => point,
                Err(why) => {
                    dropped.add(why);
                    continue;
                }
            };
            let labels = series_labels(attributes, scope_labels, kind);
            let identity = render_labels(labels.iter().filter(|(_, v)| !v.is_empty()));
            if !family.seen.insert(identity) {
                family.duplicates += 1;
                continue;
            }
            family.series.push(Series { labels: render_labels(labels.iter()), point });
        }
        if let Some(first) = dropped.first {
            self.skipped.push(format!("`{}`: {} data point(s) skipped; {first}.", metric.name, dropped.count));
        }
    }
}

/// The Prometheus type of a metric, or the sentence saying why it has none.
fn classify(metric: &Metric) -> Result<Kind, String> {
    let name = &metric.name;
    let cumulative = |temporality: i32, what: &str| {
        if temporality == AggregationTemporality::Cumulative as i32 {
            Ok(())
        } else if temporality == AggregationTemporality::Delta as i32 {
            Err(format!("`{name}` is a {what} with delta temporality, which Prometheus cannot carry; skipped."))
        } else {
            Err(format!("`{name}` is a {what} without a valid aggregation temporality; skipped."))
        }
    };
    match &metric.data {
        None => Err(format!("`{name}` has no data; skipped.")),
        Some(Data::Gauge(_)) => Ok(Kind::Gauge),
        Some(Data::Sum(s)) => {
            cumulative(s.aggregation_temporality, "sum")?;
            Ok(if s.is_monotonic { Kind::Counter } else { Kind::Gauge })
        }
        Some(Data::Histogram(h)) => {
            cumulative(h.aggregation_temporality, "histogram")?;
            Ok(Kind::Histogram)
        }
        Some(Data::ExponentialHistogram(_)) => Err(format!(
            "`{name}` is an exponential histogram, which neither Prometheus text format can carry; skipped."
        )),
        Some(Data::Summary(_)) => Ok(Kind::Summary),
    }
}

/// Points flagged "no recorded value" mark a series that ended; a text
/// exposition has no staleness marker, so they are simply left out.
fn recorded(flags: u32) -> bool {
    flags & 1 == 0
}

fn number_point(p: &NumberDataPoint, with_exemplar: bool) -> Result<Point, String> {
    let value = match p.value {
        Some(number_data_point::Value::AsInt(i)) => Number::Int(i),
        Some(number_data_point::Value::AsDouble(d)) => Number::Double(d),
        None => return Err("a data point has no value".into()),
    };
    // One line carries one exemplar: the most recent, then the largest, then
    // the first.
    let exemplar = if with_exemplar {
        p.exemplars
            .iter()
            .filter_map(|e| Some((e, exemplar_value(e)?)))
            .max_by(|(a, av), (b, bv)| {
                a.time_unix_nano
                    .cmp(&b.time_unix_nano)
                    .then(av.as_f64().total_cmp(&bv.as_f64()))
                    .then(std::cmp::Ordering::Greater)
            })
            .map(|(e, v)| exemplar_of(e, v))
    } else {
        None
    };
    Ok(Point::Number { value, exemplar })
}

fn histogram_point(p: &HistogramDataPoint) -> Result<Point, String> {
    let bounds = &p.explicit_bounds;
    let counts = &p.bucket_counts;
    if counts.is_empty() && !bounds.is_empty() || !counts.is_empty() && counts.len() != bounds.len() + 1 {
        return Err(format!("a histogram data point has {} bucket counts for {} bounds", counts.len(), bounds.len()));
    }
    if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err("a histogram data point's bounds are not finite and strictly increasing".into());
    }
    let mut buckets = Vec::with_capacity(counts.len().max(1));
    let mut running: u64 = 0;
    for (i, c) in counts.iter().enumerate() {
        running = running.checked_add(*c).ok_or("a histogram data point's bucket counts overflow")?;
        // -0.0 would print as "-0"; it is the same bound as 0.
        let bound = bounds.get(i).map_or(f64::INFINITY, |b| if *b == 0.0 { 0.0 } else { *b });
        buckets.push(Bucket { bound, cumulative: running, exemplar: None });
    }
    if counts.is_empty() {
        buckets.push(Bucket { bound: f64::INFINITY, cumulative: p.count, exemplar: None });
    } else if running != p.count {
        return Err(format!("a histogram data point's bucket counts add up to {running}, not its count {}", p.count));
    }
    // The largest exemplar of each bucket goes on that bucket's line.
    for e in &p.exemplars {
        let Some(value) = exemplar_value(e) else { continue };
        let v = value.as_f64();
        if v.is_nan() {
            continue;
        }
        let Some(bucket) = buckets.iter_mut().find(|b| v <= b.bound) else { continue };
        if bucket.exemplar.as_ref().is_none_or(|old| v > old.value.as_f64()) {
            bucket.exemplar = Some(exemplar_of(e, value));
        }
    }
    // A sum is a counter only if no observation can be negative; OpenMetrics
    // forbids it otherwise.
    let sum = p.sum.filter(|s| *s >= 0.0 && bounds.first().is_none_or(|b| *b >= 0.0));
    Ok(Point::Histogram { buckets, count: p.count, sum })
}

fn summary_point(p: &SummaryDataPoint) -> Result<Point, String> {
    let mut quantiles: Vec<(f64, f64)> = p.quantile_values.iter().map(|q| (q.quantile, q.value)).collect();
    if quantiles.iter().any(|(q, _)| !(0.0..=1.0).contains(q)) {
        return Err("a summary data point has a quantile outside 0 to 1".into());
    }
    quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
    if quantiles.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err("a summary data point repeats a quantile".into());
    }
    let sum = Some(p.sum).filter(|s| *s >= 0.0);
    Ok(Point::Summary { quantiles, count: p.count, sum })
}

fn exemplar_value(e: &Exemplar) -> Option<Number> {
    match e.value? {
        exemplar::Value::AsInt(i) => Some(Number::Int(i)),
        exemplar::Value::AsDouble(d) => Some(Number::Double(d)),
    }
}

/// OpenMetrics caps an exemplar's label names and values at 128 characters.
const EXEMPLAR_LABEL_CHARS: usize = 128;

fn exemplar_of(e: &Exemplar, value: Number) -> Ex {
    let mut labels: Vec<(String, String)> = Vec::new();
    if e.trace_id.len() == 16 && e.trace_id.iter().any(|b| *b != 0) {
        labels.push(("trace_id".into(), to_hex(&e.trace_id)));
    }
    if e.span_id.len() == 8 && e.span_id.iter().any(|b| *b != 0) {
        labels.push(("span_id".into(), to_hex(&e.span_id)));
    }
    let chars = |l: &[(String, String)]| l.iter().map(|(k, v)| k.chars().count() + v.chars().count()).sum::<usize>();
    let extra: Vec<(String, String)> = attribute_labels(&e.filtered_attributes)
        .into_iter()
        .filter(|(k, _)| k != "trace_id" && k != "span_id")
        .collect();
    // The filtered attributes are optional detail: all of them or none, so
    // what an exemplar carries does not depend on which ones happen to fit.
    if chars(&labels) + chars(&extra) <= EXEMPLAR_LABEL_CHARS {
        labels.extend(extra);
    }
    Ex { labels: render_labels(labels.iter().map(|(k, v)| (k, v))), value, time_unix_nano: e.time_unix_nano }
}

// ---- names and units ----

/// `[a-zA-Z0-9_]` only: every other character, `:` included (reserved for
/// recording rules), becomes `_`, and runs of `_` collapse into one.
fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out
}

/// The Prometheus family name: the sanitised name, then the unit unless the
/// name already holds it. Counters leave `_total` to the sample name.
fn family_name(name: &str, unit: &str, kind: Kind) -> Option<String> {
    let mut base = sanitize(name);
    if kind == Kind::Counter {
        if let Some(stripped) = base.strip_suffix("_total") {
            base = stripped.to_string();
        }
    }
    if !unit.is_empty() && !format!("_{base}_").contains(&format!("_{unit}_")) {
        base = sanitize(&format!("{base}_{unit}"));
    }
    if !base.chars().any(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    // The rule the Prometheus OTLP translator follows, so names match what
    // Prometheus itself makes of the same metric.
    if base.starts_with(|c: char| c.is_ascii_digit()) {
        base.insert(0, '_');
    }
    Some(base)
}

/// A UCUM unit as Prometheus words: `s` → `seconds`, `By/s` →
/// `bytes_per_second`, `{token}` → nothing (a count is unitless), `1` →
/// `ratio` for gauges.
fn prometheus_unit(unit: &str, kind: Kind) -> String {
    let unit = unit.trim();
    if unit == "1" {
        return if kind == Kind::Gauge { "ratio".into() } else { String::new() };
    }
    let (num, den) = match unit.split_once('/') {
        Some((n, d)) => (n, Some(d)),
        None => (unit, None),
    };
    let word = |u: &str, per: bool| {
        let u = strip_annotations(u);
        let u = u.trim();
        if u == "1" {
            return String::new();
        }
        let known = if per { per_unit_word(u) } else { unit_word(u) };
        sanitize(known.unwrap_or(u)).trim_matches('_').to_string()
    };
    let num = word(num, false);
    let den = den.map(|d| word(d, true)).unwrap_or_default();
    match (num.is_empty(), den.is_empty()) {
        (_, true) => num,
        (true, false) => format!("per_{den}"),
        (false, false) => format!("{num}_per_{den}"),
    }
}

/// Curly-brace annotations are not units: `{request}` → ``, `k{byte}` → `k`.
fn strip_annotations(u: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::new();
    for c in u.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" | "kBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "bit" => "bits",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

/// Denominators read in the singular: `m/s` → `meters_per_second`.
fn per_unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "ms" => "millisecond",
        "us" => "microsecond",
        "ns" => "nanosecond",
        "min" => "minute",
        "h" => "hour",
        "d" => "day",
        "wk" => "week",
        "mo" => "month",
        "a" | "y" => "year",
        "m" => "meter",
        "By" => "byte",
        "bit" => "bit",
        _ => return None,
    })
}

/// A label name: sanitised like a metric name, and never starting with a
/// digit or `_` (OpenMetrics reserves those), following the Prometheus OTLP
/// translator (`0a` → `key_0a`, `_a` → `key_a`).
fn label_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let s = sanitize(key);
    Some(if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{s}")
    } else if s.starts_with('_') {
        format!("key{s}")
    } else {
        s
    })
}

// ---- labels ----

/// Attributes as labels, sorted by name. Keys that sanitise to the same name
/// keep every value, joined with `;` in the order of the original keys; a
/// key repeated exactly keeps its first value.
fn attribute_labels(attrs: &[KeyValue]) -> BTreeMap<String, String> {
    let mut pairs: Vec<(&str, String)> =
        attrs.iter().filter_map(|kv| Some((kv.key.as_str(), attribute_text(kv.value.as_ref()?)?))).collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs.dedup_by(|later, first| later.0 == first.0);
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in pairs {
        let Some(name) = label_name(key) else { continue };
        labels
            .entry(name)
            .and_modify(|v| {
                v.push(';');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    labels
}

/// The labels every sample of a scope carries. Name and version always, as
/// the specification requires; schema URL and attributes when there are any.
fn scope_labels(scope: &ScopeMetrics) -> Vec<(String, String)> {
    let (name, version, attrs) = match &scope.scope {
        Some(s) => (s.name.clone(), s.version.clone(), s.attributes.as_slice()),
        None => (String::new(), String::new(), &[][..]),
    };
    let prefixed: Vec<KeyValue> = attrs
        .iter()
        .map(|kv| KeyValue { key: format!("otel_scope_{}", kv.key), value: kv.value.clone(), ..Default::default() })
        .collect();
    let mut labels = attribute_labels(&prefixed);
    labels.insert("otel_scope_name".into(), name);
    labels.insert("otel_scope_version".into(), version);
    if scope.schema_url.is_empty() {
        labels.remove("otel_scope_schema_url");
    } else {
        labels.insert("otel_scope_schema_url".into(), scope.schema_url.clone());
    }
    labels.into_iter().collect()
}

/// A data point's labels: its attributes, then the scope's labels over any
/// attribute of the same name, without the label the type itself adds.
fn series_labels(attrs: &[KeyValue], scope: &[(String, String)], kind: Kind) -> BTreeMap<String, String> {
    let mut labels = attribute_labels(attrs);
    for (k, v) in scope {
        labels.insert(k.clone(), v.clone());
    }
    match kind {
        Kind::Histogram => labels.remove("le"),
        Kind::Summary => labels.remove("quantile"),
        Kind::Counter | Kind::Gauge => None,
    };
    labels
}

fn render_labels<'a>(labels: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let mut out = String::new();
    for (k, v) in labels {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_into(&mut out, v, true);
        out.push('"');
    }
    out
}

/// `\` and newline always; `"` inside label values and OpenMetrics HELP (the
/// 0.0.4 HELP line takes it literally).
fn escape_into(out: &mut String, s: &str, quote: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Non-string attributes as strings, by the attribute specification:
/// arrays and maps as JSON, bytes as base64.
fn attribute_text(v: &AnyValue) -> Option<String> {
    Some(match v.value.as_ref()? {
        Value::StringValue(s) => s.clone(),
        Value::BoolValue(b) => b.to_string(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => match special_double(*d) {
            Some(s) => s.to_string(),
            None => text_value(*d),
        },
        Value::BytesValue(b) => base64::engine::general_purpose::STANDARD.encode(b),
        Value::ArrayValue(_) | Value::KvlistValue(_) => json_value(v, 0).to_string(),
        // An index into a dictionary this message does not carry.
        Value::StringValueStrindex(_) => return None,
    })
}

fn special_double(d: f64) -> Option<&'static str> {
    if d.is_nan() {
        Some("NaN")
    } else if d == f64::INFINITY {
        Some("Infinity")
    } else if d == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

/// Deeper nesting becomes null, so no attribute can exhaust the stack.
const MAX_JSON_DEPTH: usize = 32;

fn json_value(v: &AnyValue, depth: usize) -> serde_json::Value {
    use serde_json::Value as J;
    if depth >= MAX_JSON_DEPTH {
        return J::Null;
    }
    match &v.value {
        None | Some(Value::StringValueStrindex(_)) => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => match serde_json::Number::from_f64(*d) {
            Some(n) => J::Number(n),
            None => J::String(special_double(*d).unwrap_or("NaN").into()),
        },
        Some(Value::BytesValue(b)) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(|x| json_value(x, depth + 1)).collect()),
        Some(Value::KvlistValue(kv)) => {
            let mut map = serde_json::Map::new();
            for item in &kv.values {
                let value = item.value.as_ref().map_or(J::Null, |x| json_value(x, depth + 1));
                map.entry(item.key.clone()).or_insert(value);
            }
            J::Object(map)
        }
    }
}

// ---- numbers ----

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which is what Prometheus's
/// own client prints for `le` and `quantile`: shortest digits, exponent form
/// below 1e-4 and from 1e+06 up.
fn go_g(v: f64) -> String {
    if let Some(s) = non_finite(v) {
        return s.into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Go.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    } else if exp < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&digits);
    } else {
        let point = exp as usize + 1;
        if digits.len() <= point {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point - digits.len()));
        } else {
            let (int, frac) = digits.split_at(point);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
    }
    out
}

fn non_finite(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// A sample value as people read it and Go's ParseFloat accepts: plain
/// decimals (`1000000`, `0.25`) where they stay short, exponent form only for
/// very large or very small magnitudes.
fn text_value(v: f64) -> String {
    if let Some(s) = non_finite(v) {
        return s.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    if (1e-4..1e15).contains(&v.abs()) {
        format!("{v}")
    } else {
        go_g(v)
    }
}

/// OpenMetrics wants a float to look like one (`17.0`); integers stay bare.
fn om_float(mut s: String) -> String {
    if !s.contains(['.', 'e', 'N', 'I']) {
        s.push_str(".0");
    }
    s
}

fn number_text(n: Number, format: Format) -> String {
    match (n, format) {
        (Number::Int(i), _) => i.to_string(),
        (Number::Double(d), Format::Text004) => text_value(d),
        (Number::Double(d), Format::OpenMetrics) => om_float(text_value(d)),
    }
}

fn float_text(v: f64, format: Format) -> String {
    number_text(Number::Double(v), format)
}

/// `le` and `quantile` values: Go's `%g`, with OpenMetrics's canonical `.0`
/// on integers (`1.0`, `0.25`, `1e+06`, `+Inf`).
fn bound_text(v: f64, format: Format) -> String {
    match format {
        Format::Text004 => go_g(v),
        Format::OpenMetrics => om_float(go_g(v)),
    }
}

/// Seconds with the nanoseconds written out, never in exponent form, as
/// OpenMetrics recommends for timestamps.
fn seconds_text(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    let frac = format!("{frac:09}");
    let frac = frac.trim_end_matches('0');
    format!("{secs}.{}", if frac.is_empty() { "0" } else { frac })
}

// ---- output ----

fn render_target(out: &mut String, labels: &BTreeMap<String, String>, format: Format) {
    match format {
        Format::Text004 => {
            let _ = writeln!(out, "# HELP {TARGET_INFO} {TARGET_HELP}");
            let _ = writeln!(out, "# TYPE {TARGET_INFO} gauge");
        }
        Format::OpenMetrics => {
            let _ = writeln!(out, "# TYPE {TARGET} info");
            let _ = writeln!(out, "# HELP {TARGET} {TARGET_HELP}");
        }
    }
    let _ = writeln!(out, "{TARGET_INFO}{{{}}} 1", render_labels(labels.iter()));
}

fn render_family(out: &mut String, f: &Family, format: Format) {
    match format {
        Format::Text004 => {
            // 0.0.4 names a counter's family after its sample.
            let name = if f.kind == Kind::Counter { format!("{}_total", f.name) } else { f.name.clone() };
            if !f.help.is_empty() {
                let _ = write!(out, "# HELP {name} ");
                escape_into(out, &f.help, false);
                out.push('\n');
            }
            let _ = writeln!(out, "# TYPE {name} {}", f.kind.as_str());
        }
        Format::OpenMetrics => {
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            // UNIT must be a suffix of the family name; a name that holds its
            // unit elsewhere gets no UNIT line.
            if !f.unit.is_empty() && f.name.ends_with(&format!("_{}", f.unit)) {
                let _ = writeln!(out, "# UNIT {} {}", f.name, f.unit);
            }
            if !f.help.is_empty() {
                let _ = write!(out, "# HELP {} ", f.name);
                escape_into(out, &f.help, true);
                out.push('\n');
            }
        }
    }
    for s in &f.series {
        render_series(out, f, s, format);
    }
}

fn render_series(out: &mut String, f: &Family, s: &Series, format: Format) {
    let name = f.name.as_str();
    let labels = s.labels.as_str();
    match &s.point {
        Point::Number { value, exemplar } => {
            let sample = if f.kind == Kind::Counter { format!("{name}_total") } else { f.name.clone() };
            sample_line(out, &sample, labels, None, &number_text(*value, format), exemplar.as_ref(), format);
        }
        Point::Histogram { buckets, count, sum } => {
            let bucket_name = format!("{name}_bucket");
            for b in buckets {
                let le = bound_text(b.bound, format);
                let value = b.cumulative.to_string();
                sample_line(out, &bucket_name, labels, Some(("le", &le)), &value, b.exemplar.as_ref(), format);
            }
            if let Some(sum) = sum {
                sample_line(out, &format!("{name}_sum"), labels, None, &float_text(*sum, format), None, format);
            }
            // OpenMetrics ties `_count` to the presence of `_sum`.
            if sum.is_some() || format == Format::Text004 {
                sample_line(out, &format!("{name}_count"), labels, None, &count.to_string(), None, format);
            }
        }
        Point::Summary { quantiles, count, sum } => {
            for (q, v) in quantiles {
                let q = bound_text(*q, format);
                sample_line(out, name, labels, Some(("quantile", &q)), &float_text(*v, format), None, format);
            }
            if let Some(sum) = sum {
                sample_line(out, &format!("{name}_sum"), labels, None, &float_text(*sum, format), None, format);
            }
            sample_line(out, &format!("{name}_count"), labels, None, &count.to_string(), None, format);
        }
    }
}

fn sample_line(
    out: &mut String,
    name: &str,
    labels: &str,
    extra: Option<(&str, &str)>,
    value: &str,
    exemplar: Option<&Ex>,
    format: Format,
) {
    out.push_str(name);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some((k, v)) = extra {
            if !labels.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{v}\"");
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    // 0.0.4 has no exemplar syntax; the specification says to drop them.
    if let (Some(e), Format::OpenMetrics) = (exemplar, format) {
        let _ = write!(out, " # {{{}}} {}", e.labels, number_text(e.value, format));
        if e.time_unix_nano != 0 {
            let _ = write!(out, " {}", seconds_text(e.time_unix_nano));
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
    use opentelemetry_proto::tonic::metrics::v1::{
        summary_data_point::ValueAtQuantile, ExponentialHistogram, Gauge, Histogram, Sum, Summary,
    };

    const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
    const DELTA: i32 = AggregationTemporality::Delta as i32;
    const TRACE: [u8; 16] =
        [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36];
    const SPAN: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];
    const IDS: &str = r#"trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7""#;

    fn any(v: Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(v) })
    }

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue { key: key.into(), value: any(Value::StringValue(value.into())), ..Default::default() }
    }

    fn kv_any(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.into(), value: any(value), ..Default::default() }
    }

    fn scope(name: &str, version: &str, metrics: Vec<Metric>) -> ScopeMetrics {
        ScopeMetrics {
            scope: Some(InstrumentationScope { name: name.into(), version: version.into(), ..Default::default() }),
            metrics,
            schema_url: String::new(),
        }
    }

    fn metric(name: &str, unit: &str, description: &str, data: Data) -> Metric {
        Metric {
            name: name.into(),
            unit: unit.into(),
            description: description.into(),
            data: Some(data),
            ..Default::default()
        }
    }

    fn int(attrs: Vec<KeyValue>, v: i64) -> NumberDataPoint {
        NumberDataPoint { attributes: attrs, value: Some(number_data_point::Value::AsInt(v)), ..Default::default() }
    }

    fn double(attrs: Vec<KeyValue>, v: f64) -> NumberDataPoint {
        NumberDataPoint { attributes: attrs, value: Some(number_data_point::Value::AsDouble(v)), ..Default::default() }
    }

    fn sum(name: &str, unit: &str, monotonic: bool, points: Vec<NumberDataPoint>) -> Metric {
        metric(
            name,
            unit,
            "",
            Data::Sum(Sum { data_points: points, aggregation_temporality: CUMULATIVE, is_monotonic: monotonic }),
        )
    }

    fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
        metric(name, unit, "", Data::Gauge(Gauge { data_points: points }))
    }

    fn hpoint(attrs: Vec<KeyValue>, bounds: &[f64], counts: &[u64], sum: Option<f64>) -> HistogramDataPoint {
        HistogramDataPoint {
            attributes: attrs,
            explicit_bounds: bounds.to_vec(),
            bucket_counts: counts.to_vec(),
            count: counts.iter().sum(),
            sum,
            ..Default::default()
        }
    }

    fn histogram(name: &str, unit: &str, points: Vec<HistogramDataPoint>) -> Metric {
        metric(name, unit, "", Data::Histogram(Histogram { data_points: points, aggregation_temporality: CUMULATIVE }))
    }

    fn ex(value: exemplar::Value, time: u64) -> Exemplar {
        Exemplar {
            value: Some(value),
            time_unix_nano: time,
            trace_id: TRACE.to_vec(),
            span_id: SPAN.to_vec(),
            ..Default::default()
        }
    }

    fn text(scopes: &[ScopeMetrics]) -> String {
        render(&[], scopes, Format::Text004).text
    }

    fn om(scopes: &[ScopeMetrics]) -> String {
        render(&[], scopes, Format::OpenMetrics).text
    }

    /// The sample lines (no metadata) of a text exposition.
    fn samples(scopes: &[ScopeMetrics]) -> Vec<String> {
        text(scopes).lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect()
    }

    fn canonical() -> (Vec<KeyValue>, Vec<ScopeMetrics>) {
        let resource = vec![kv("service.name", "agent"), kv("service.version", "1.2")];
        let mut counter = sum("http.client.requests", "{request}", true, vec![int(vec![kv("http.method", "GET")], 3)]);
        counter.description = "Requests sent.".into();
        if let Some(Data::Sum(s)) = &mut counter.data {
            s.data_points[0].exemplars = vec![ex(exemplar::Value::AsInt(1), 1_700_000_000_500_000_000)];
        }
        let mut point =
            hpoint(vec![kv("gen_ai.operation.name", "chat")], &[0.25, 1.0, 1e6], &[1, 2, 0, 1], Some(2000001.5));
        point.exemplars = vec![
            ex(exemplar::Value::AsDouble(0.5), 1_700_000_000_000_000_000),
            ex(exemplar::Value::AsDouble(0.75), 1_700_000_000_500_000_000),
            ex(exemplar::Value::AsDouble(2e6), 1_700_000_001_000_000_000),
        ];
        let mut hist = histogram("gen_ai.client.operation.duration", "s", vec![point]);
        hist.description = "Duration of GenAI operations.".into();
        (resource, vec![scope("polytel", "0.1.0", vec![counter, hist])])
    }

    #[test]
    fn content_types() {
        assert_eq!(Format::Text004.content_type(), "text/plain; version=0.0.4; charset=utf-8");
        assert_eq!(Format::OpenMetrics.content_type(), "application/openmetrics-text; version=1.0.0; charset=utf-8");
    }

    #[test]
    fn counter_and_histogram_exactly_in_text_004() {
        let (resource, scopes) = canonical();
        let out = render(&resource, &scopes, Format::Text004);
        let l = r#"gen_ai_operation_name="chat",otel_scope_name="polytel",otel_scope_version="0.1.0""#;
        let h = "gen_ai_client_operation_duration_seconds";
        let expected = format!(
            "# HELP target_info Target metadata\n\
             # TYPE target_info gauge\n\
             target_info{{service_name=\"agent\",service_version=\"1.2\"}} 1\n\
             # HELP {h} Duration of GenAI operations.\n\
             # TYPE {h} histogram\n\
             {h}_bucket{{{l},le=\"0.25\"}} 1\n\
             {h}_bucket{{{l},le=\"1\"}} 3\n\
             {h}_bucket{{{l},le=\"1e+06\"}} 3\n\
             {h}_bucket{{{l},le=\"+Inf\"}} 4\n\
             {h}_sum{{{l}}} 2000001.5\n\
             {h}_count{{{l}}} 4\n\
             # HELP http_client_requests_total Requests sent.\n\
             # TYPE http_client_requests_total counter\n\
             http_client_requests_total{{http_method=\"GET\",otel_scope_name=\"polytel\",otel_scope_version=\"0.1.0\"}} 3\n"
        );
        assert_eq!(out.text, expected);
        assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    }

    #[test]
    fn counter_and_histogram_exactly_in_openmetrics() {
        let (resource, scopes) = canonical();
        let out = render(&resource, &scopes, Format::OpenMetrics);
        let l = r#"gen_ai_operation_name="chat",otel_scope_name="polytel",otel_scope_version="0.1.0""#;
        let h = "gen_ai_client_operation_duration_seconds";
        let expected = format!(
            "# TYPE target info\n\
             # HELP target Target metadata\n\
             target_info{{service_name=\"agent\",service_version=\"1.2\"}} 1\n\
             # TYPE {h} histogram\n\
             # UNIT {h} seconds\n\
             # HELP {h} Duration of GenAI operations.\n\
             {h}_bucket{{{l},le=\"0.25\"}} 1\n\
             {h}_bucket{{{l},le=\"1.0\"}} 3 # {{{IDS}}} 0.75 1700000000.5\n\
             {h}_bucket{{{l},le=\"1e+06\"}} 3\n\
             {h}_bucket{{{l},le=\"+Inf\"}} 4 # {{{IDS}}} 2000000.0 1700000001.0\n\
             {h}_sum{{{l}}} 2000001.5\n\
             {h}_count{{{l}}} 4\n\
             # TYPE http_client_requests counter\n\
             # HELP http_client_requests Requests sent.\n\
             http_client_requests_total{{http_method=\"GET\",otel_scope_name=\"polytel\",otel_scope_version=\"0.1.0\"}} 3 # {{{IDS}}} 1 1700000000.5\n\
             # EOF\n"
        );
        assert_eq!(out.text, expected);
        assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    }

    #[test]
    fn metric_names_are_sanitised() {
        let cases = [
            ("gen_ai.client.token.usage", "gen_ai_client_token_usage"),
            ("a..b--c", "a_b_c"),
            ("a__b", "a_b"),
            ("http:requests", "http_requests"),
            ("3d.count", "_3d_count"),
            ("größe", "gr_e"),
            ("_private", "_private"),
        ];
        for (name, expected) in cases {
            let s = samples(&[scope("s", "", vec![gauge(name, "", vec![int(vec![], 1)])])]);
            assert!(s[0].starts_with(&format!("{expected}{{")), "{name}: {s:?}");
        }
        let out = render(&[], &[scope("s", "", vec![gauge("...", "", vec![int(vec![], 1)])])], Format::Text004);
        assert_eq!(out.text, "");
        assert_eq!(out.skipped.len(), 1);
        assert!(out.skipped[0].contains("`...`"), "{:?}", out.skipped);
    }

    #[test]
    fn units_become_prometheus_words() {
        let cases = [
            ("s", Kind::Gauge, "seconds"),
            ("ms", Kind::Gauge, "milliseconds"),
            ("By", Kind::Gauge, "bytes"),
            ("KiBy", Kind::Gauge, "kibibytes"),
            ("{token}", Kind::Counter, ""),
            ("{token}", Kind::Histogram, ""),
            ("1", Kind::Gauge, "ratio"),
            ("1", Kind::Counter, ""),
            ("1", Kind::Histogram, ""),
            ("By/s", Kind::Gauge, "bytes_per_second"),
            ("m/s", Kind::Gauge, "meters_per_second"),
            ("{request}/s", Kind::Counter, "per_second"),
            ("{packet}/min", Kind::Counter, "per_minute"),
            ("Cel", Kind::Gauge, "celsius"),
            ("%", Kind::Gauge, "percent"),
            ("tokens", Kind::Gauge, "tokens"),
            ("k{byte}", Kind::Gauge, "k"),
            (" s ", Kind::Gauge, "seconds"),
            ("", Kind::Gauge, ""),
            ("a b/c.d", Kind::Gauge, "a_b_per_c_d"),
        ];
        for (unit, kind, expected) in cases {
            assert_eq!(prometheus_unit(unit, kind), expected, "{unit} as {kind:?}");
        }
    }

    #[test]
    fn unit_suffix_is_added_once_and_before_total() {
        let names = |m: Metric| samples(&[scope("s", "", vec![m])]).remove(0);
        assert!(names(sum("cpu.time", "s", true, vec![int(vec![], 1)])).starts_with("cpu_time_seconds_total{"));
        assert!(names(sum("cpu.time_total", "s", true, vec![int(vec![], 1)])).starts_with("cpu_time_seconds_total{"));
        assert!(names(sum("cpu.seconds", "s", true, vec![int(vec![], 1)])).starts_with("cpu_seconds_total{"));
        assert!(names(gauge("io.seconds.spent", "s", vec![int(vec![], 1)])).starts_with("io_seconds_spent{"));
        assert!(names(gauge("cpu.utilization", "1", vec![double(vec![], 0.5)])).starts_with("cpu_utilization_ratio{"));
        assert!(names(sum("tokens", "{token}", true, vec![int(vec![], 1)])).starts_with("tokens_total{"));
        assert!(names(sum("queue.size", "{item}", false, vec![int(vec![], 1)])).starts_with("queue_size{"));
    }

    #[test]
    fn openmetrics_unit_only_when_the_name_ends_with_it() {
        let m = |name: &str, unit: &str| gauge(name, unit, vec![int(vec![], 1)]);
        let out = om(&[scope("s", "", vec![m("a", "s"), m("b.seconds.spent", "s"), m("c", "{thing}"), m("d", "1")])]);
        assert!(out.contains("# UNIT a_seconds seconds\n"), "{out}");
        assert!(out.contains("# UNIT d_ratio ratio\n"), "{out}");
        assert!(!out.contains("# UNIT b_"), "{out}");
        assert!(!out.contains("# UNIT c"), "{out}");
        assert_eq!(out.matches("# UNIT").count(), 2);
        // 0.0.4 has no UNIT line.
        assert!(!text(&[scope("s", "", vec![m("a", "s")])]).contains("UNIT"));
    }

    #[test]
    fn label_names_are_sanitised_and_collisions_joined_in_key_order() {
        let attrs = vec![
            kv("a_b", "under"),
            kv("a.b", "dot"),
            kv("a-b", "dash"),
            kv("0day", "digit"),
            kv("_hidden", "under"),
            kv("__x", "double"),
            kv("", "nameless"),
            kv("z", "first"),
            kv("z", "second"),
        ];
        let s = samples(&[scope("s", "1", vec![gauge("g", "", vec![int(attrs, 1)])])]);
        assert_eq!(
            s,
            [
                r#"g{a_b="dash;dot;under",key_0day="digit",key_hidden="under",key_x="double",otel_scope_name="s",otel_scope_version="1",z="first"} 1"#
            ]
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut m = gauge("g", "", vec![int(vec![kv("path", "C:\\dir \"x\"\nnext")], 1)]);
        m.description = "Says \"hi\"\\ on\ntwo lines.".into();
        let scopes = [scope("s", "", vec![m])];
        let t = text(&scopes);
        assert!(t.contains(r#"path="C:\\dir \"x\"\nnext""#), "{t}");
        assert!(t.contains("# HELP g Says \"hi\"\\\\ on\\ntwo lines.\n"), "{t}");
        let o = om(&scopes);
        assert!(o.contains(r#"path="C:\\dir \"x\"\nnext""#), "{o}");
        assert!(o.contains("# HELP g Says \\\"hi\\\"\\\\ on\\ntwo lines.\n"), "{o}");
    }

    #[test]
    fn non_string_attributes_become_strings() {
        let attrs = vec![
            kv_any("b", Value::BoolValue(true)),
            kv_any("i", Value::IntValue(-7)),
            kv_any("d", Value::DoubleValue(0.5)),
            kv_any("n", Value::DoubleValue(f64::NAN)),
            kv_any("y", Value::BytesValue(vec![1, 2, 3])),
            kv_any(
                "arr",
                Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue { value: Some(Value::StringValue("x".into())) },
                        AnyValue { value: Some(Value::IntValue(2)) },
                    ],
                }),
            ),
            kv_any("m", Value::KvlistValue(KeyValueList { values: vec![kv("k", "v")] })),
            KeyValue { key: "none".into(), value: None, ..Default::default() },
        ];
        let s = samples(&[scope("s", "", vec![gauge("g", "", vec![int(attrs, 1)])])]);
        assert_eq!(
            s,
            [
                r#"g{arr="[\"x\",2]",b="true",d="0.5",i="-7",m="{\"k\":\"v\"}",n="NaN",otel_scope_name="s",otel_scope_version="",y="AQID"} 1"#
            ]
        );
    }

    #[test]
    fn scope_labels_are_on_every_sample_and_win_over_attributes() {
        let mut sc = scope(
            "lib",
            "2.0",
            vec![
                gauge("g", "", vec![int(vec![kv("otel.scope.name", "spoof")], 1)]),
                histogram("h", "", vec![hpoint(vec![kv("le", "x")], &[1.0], &[1, 1], Some(1.0))]),
            ],
        );
        sc.schema_url = "https://opentelemetry.io/schemas/1.30.0".into();
        if let Some(s) = &mut sc.scope {
            s.attributes = vec![kv("team", "ai")];
        }
        let lines = samples(&[sc]);
        assert_eq!(lines.len(), 5);
        let scope_labels = r#"otel_scope_name="lib",otel_scope_schema_url="https://opentelemetry.io/schemas/1.30.0",otel_scope_team="ai",otel_scope_version="2.0""#;
        for l in &lines {
            assert!(l.contains(scope_labels), "{l}");
            assert!(!l.contains("spoof") && !l.contains("le=\"x\""), "{l}");
        }
        // Without a scope the labels are still there, empty.
        let lines =
            samples(&[ScopeMetrics { metrics: vec![gauge("g", "", vec![int(vec![], 1)])], ..Default::default() }]);
        assert_eq!(lines, [r#"g{otel_scope_name="",otel_scope_version=""} 1"#]);
    }

    #[test]
    fn target_info_comes_from_the_resource() {
        let resource = vec![kv("service.name", "agent"), kv("host.name", "h\"1")];
        let scopes = [scope("s", "", vec![gauge("a", "", vec![int(vec![], 1)])])];
        let t = render(&resource, &scopes, Format::Text004).text;
        assert!(
            t.starts_with(
                "# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info{host_name=\"h\\\"1\",service_name=\"agent\"} 1\n"
            ),
            "{t}"
        );
        let o = render(&resource, &scopes, Format::OpenMetrics).text;
        assert!(
            o.starts_with("# TYPE target info\n# HELP target Target metadata\ntarget_info{host_name=\"h\\\"1\",service_name=\"agent\"} 1\n"),
            "{o}"
        );
        assert!(!text(&scopes).contains("target"));
        // A metric may not take the info metric's names.
        let out =
            render(&resource, &[scope("s", "", vec![gauge("target_info", "", vec![int(vec![], 1)])])], Format::Text004);
        assert_eq!(out.text.matches("target_info{").count(), 1, "{}", out.text);
        assert_eq!(out.skipped.len(), 1);
    }

    #[test]
    fn openmetrics_ends_with_eof_even_when_empty() {
        assert_eq!(render(&[], &[], Format::OpenMetrics).text, "# EOF\n");
        assert_eq!(render(&[], &[], Format::Text004).text, "");
        let (resource, scopes) = canonical();
        assert!(render(&resource, &scopes, Format::OpenMetrics).text.ends_with("\n# EOF\n"));
    }

    #[test]
    fn exemplars_only_in_openmetrics_on_their_own_bucket() {
        let mut p = hpoint(vec![], &[1.0, 2.0, 5.0], &[1, 2, 0, 0], Some(4.0));
        p.exemplars = vec![
            ex(exemplar::Value::AsDouble(1.5), 10),
            ex(exemplar::Value::AsDouble(1.9), 0),
            ex(exemplar::Value::AsInt(2), 20),
            ex(exemplar::Value::AsDouble(f64::NAN), 30),
            Exemplar { value: None, ..ex(exemplar::Value::AsInt(0), 0) },
        ];
        let scopes = [ScopeMetrics { metrics: vec![histogram("h", "", vec![p])], ..Default::default() }];
        let o = om(&scopes);
        let buckets: Vec<&str> = o.lines().filter(|l| l.starts_with("h_bucket")).collect();
        assert_eq!(buckets[0], r#"h_bucket{otel_scope_name="",otel_scope_version="",le="1.0"} 1"#);
        // 1.5, 1.9 and 2 fall in (1, 2]; the largest wins. No time, no timestamp.
        assert_eq!(
            buckets[1],
            format!(r#"h_bucket{{otel_scope_name="",otel_scope_version="",le="2.0"}} 3 # {{{IDS}}} 2 0.00000002"#)
        );
        assert!(!buckets[2].contains('#') && !buckets[3].contains('#'), "{o}");
        assert!(!text(&scopes).contains("trace_id"));

        let mut c = int(vec![], 5);
        let mut bare = ex(exemplar::Value::AsDouble(0.25), 3);
        bare.trace_id.clear();
        bare.span_id = vec![0; 8];
        c.exemplars = vec![ex(exemplar::Value::AsInt(9), 2), bare];
        let mut g = int(vec![], 5);
        g.exemplars = vec![ex(exemplar::Value::AsInt(9), 2)];
        let scopes = [scope("s", "", vec![sum("c", "", true, vec![c]), gauge("g", "", vec![g])])];
        let o = om(&scopes);
        // The most recent exemplar; one without ids has an empty label set.
        assert!(o.contains("c_total{otel_scope_name=\"s\",otel_scope_version=\"\"} 5 # {} 0.25 0.000000003\n"), "{o}");
        assert!(o.contains("g{otel_scope_name=\"s\",otel_scope_version=\"\"} 5\n"), "gauges carry no exemplar: {o}");
    }

    #[test]
    fn exemplar_attributes_fit_in_128_characters_or_are_left_out() {
        let mut short = ex(exemplar::Value::AsInt(1), 0);
        short.filtered_attributes = vec![kv("user.id", "u1")];
        let mut long = ex(exemplar::Value::AsInt(1), 0);
        long.filtered_attributes = vec![kv("note", &"x".repeat(80))];
        let mut a = int(vec![kv("k", "a")], 1);
        a.exemplars = vec![short];
        let mut b = int(vec![kv("k", "b")], 1);
        b.exemplars = vec![long];
        let o = om(&[scope("s", "", vec![sum("c", "", true, vec![a, b])])]);
        assert!(o.contains(&format!("# {{{IDS},user_id=\"u1\"}} 1\n")), "{o}");
        assert!(o.contains(&format!("# {{{IDS}}} 1\n")), "{o}");
    }

    #[test]
    fn numbers_print_as_go_parses_them() {
        let g = [
            (0.0, "0"),
            (1.0, "1"),
            (0.25, "0.25"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.5, "1.2345675e+06"),
            (-2.5, "-2.5"),
            (1e-10, "1e-10"),
            (1e100, "1e+100"),
            (123456.0, "123456"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, s) in g {
            assert_eq!(go_g(v), s, "{v}");
        }
        let om_canonical = [(1.0, "1.0"), (10.0, "10.0"), (0.25, "0.25"), (1e6, "1e+06"), (100000.0, "100000.0")];
        for (v, s) in om_canonical {
            assert_eq!(bound_text(v, Format::OpenMetrics), s);
        }
        let values = [
            (1e6, "1000000"),
            (2.5, "2.5"),
            (-0.0, "0"),
            (1e20, "1e+20"),
            (1.5e-7, "1.5e-07"),
            (123456789.125, "123456789.125"),
            (f64::NAN, "NaN"),
        ];
        for (v, s) in values {
            assert_eq!(text_value(v), s, "{v}");
        }
        assert_eq!(number_text(Number::Double(3.0), Format::OpenMetrics), "3.0");
        assert_eq!(number_text(Number::Double(f64::NEG_INFINITY), Format::OpenMetrics), "-Inf");
        assert_eq!(number_text(Number::Int(i64::MIN), Format::OpenMetrics), "-9223372036854775808");
        assert_eq!(seconds_text(1_000_000_000), "1.0");
        assert_eq!(seconds_text(u64::MAX), "18446744073.709551615");
    }

    #[test]
    fn int_and_double_values() {
        let g = |p: NumberDataPoint| samples(&[scope("s", "", vec![gauge("g", "", vec![p])])]).remove(0);
        assert!(g(int(vec![], -42)).ends_with(" -42"));
        assert!(g(double(vec![], 1e6)).ends_with(" 1000000"));
        assert!(g(double(vec![], f64::NAN)).ends_with(" NaN"));
        assert!(g(double(vec![], f64::INFINITY)).ends_with(" +Inf"));
        let o = om(&[scope("s", "", vec![gauge("g", "", vec![double(vec![], 2.0), int(vec![kv("a", "b")], 2)])])]);
        assert!(o.contains("g{otel_scope_name=\"s\",otel_scope_version=\"\"} 2.0\n"), "{o}");
        assert!(o.contains("g{a=\"b\",otel_scope_name=\"s\",otel_scope_version=\"\"} 2\n"), "{o}");
    }

    #[test]
    fn families_from_several_scopes_are_grouped() {
        let mk = |v: i64| sum("requests", "", true, vec![int(vec![], v)]);
        let mut first = mk(1);
        first.description = "First.".into();
        let mut second = mk(2);
        second.description = "Second.".into();
        let scopes = [
            scope("b", "", vec![first]),
            scope("x", "", vec![gauge("other", "", vec![int(vec![], 0)])]),
            scope("a", "", vec![second]),
        ];
        let t = text(&scopes);
        assert_eq!(
            t,
            "# TYPE other gauge\n\
             other{otel_scope_name=\"x\",otel_scope_version=\"\"} 0\n\
             # HELP requests_total First.\n\
             # TYPE requests_total counter\n\
             requests_total{otel_scope_name=\"a\",otel_scope_version=\"\"} 2\n\
             requests_total{otel_scope_name=\"b\",otel_scope_version=\"\"} 1\n"
        );
        assert_eq!(om(&scopes).matches("# TYPE requests counter").count(), 1);
    }

    #[test]
    fn conflicting_types_keep_the_first() {
        let scopes = [
            scope("a", "", vec![sum("jobs", "", false, vec![int(vec![], 1)])]),
            scope("b", "", vec![histogram("jobs", "", vec![hpoint(vec![], &[], &[], None)])]),
        ];
        let out = render(&[], &scopes, Format::Text004);
        assert_eq!(out.text, "# TYPE jobs gauge\njobs{otel_scope_name=\"a\",otel_scope_version=\"\"} 1\n");
        assert_eq!(out.skipped.len(), 1);
        assert!(out.skipped[0].contains("`jobs`") && out.skipped[0].contains("gauge"), "{:?}", out.skipped);

        // Distinct names whose samples would collide count as a conflict too.
        let scopes = [scope(
            "a",
            "",
            vec![
                histogram("lat", "", vec![hpoint(vec![], &[], &[], None)]),
                gauge("lat_count", "", vec![int(vec![], 1)]),
                sum("req", "", true, vec![int(vec![], 1)]),
                gauge("req_total", "", vec![int(vec![], 1)]),
                gauge("req_created", "", vec![int(vec![], 1)]),
            ],
        )];
        let out = render(&[], &scopes, Format::OpenMetrics);
        assert_eq!(out.skipped.len(), 3, "{:?}", out.skipped);
        assert!(!out.text.contains("lat_count{") && !out.text.contains("req_created"), "{}", out.text);
    }

    #[test]
    fn exponential_histograms_and_delta_temporality_are_skipped() {
        let delta_sum = metric(
            "d.sum",
            "",
            "",
            Data::Sum(Sum { data_points: vec![int(vec![], 1)], aggregation_temporality: DELTA, is_monotonic: true }),
        );
        let delta_hist = metric(
            "d.hist",
            "",
            "",
            Data::Histogram(Histogram {
                data_points: vec![hpoint(vec![], &[], &[], None)],
                aggregation_temporality: DELTA,
            }),
        );
        let unspecified =
            metric("u.sum", "", "", Data::Sum(Sum { data_points: vec![int(vec![], 1)], ..Default::default() }));
        let exp = metric(
            "e.hist",
            "",
            "",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![],
                aggregation_temporality: CUMULATIVE,
            }),
        );
        let empty = Metric { name: "nothing".into(), ..Default::default() };
        let out =
            render(&[], &[scope("s", "", vec![delta_sum, delta_hist, unspecified, exp, empty])], Format::OpenMetrics);
        assert_eq!(out.text, "# EOF\n");
        assert_eq!(out.skipped.len(), 5);
        assert!(out.skipped[0].contains("`d.sum`") && out.skipped[0].contains("delta"));
        assert!(out.skipped[1].contains("`d.hist`") && out.skipped[1].contains("delta"));
        assert!(out.skipped[2].contains("`u.sum`"));
        assert!(out.skipped[3].contains("`e.hist`") && out.skipped[3].contains("exponential"));
        assert!(out.skipped[4].contains("`nothing`"));
        assert!(out.skipped.iter().all(|s| s.ends_with('.') && s.matches(". ").count() == 0), "{:?}", out.skipped);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let lines = samples(&[scope(
            "",
            "",
            vec![histogram("h", "", vec![hpoint(vec![], &[0.5, 2.0], &[3, 0, 4], Some(9.5))])],
        )]);
        let values: Vec<&str> = lines.iter().map(|l| l.rsplit(' ').next().unwrap_or("")).collect();
        assert_eq!(values, ["3", "3", "7", "9.5", "7"]);
        assert!(lines[2].contains("le=\"+Inf\"") && lines[4].starts_with("h_count"));
        // No buckets at all: only +Inf, equal to the count.
        let lines = samples(&[scope("", "", vec![histogram("h", "", vec![hpoint(vec![], &[], &[], Some(0.0))])])]);
        assert_eq!(lines[0], r#"h_bucket{otel_scope_name="",otel_scope_version="",le="+Inf"} 0"#);
    }

    #[test]
    fn histogram_sum_only_when_it_can_only_grow() {
        let negative_bound = hpoint(vec![kv("k", "a")], &[-1.0, 1.0], &[1, 1, 0], Some(0.5));
        let no_sum = hpoint(vec![kv("k", "b")], &[1.0], &[1, 0], None);
        let negative_sum = hpoint(vec![kv("k", "c")], &[1.0], &[1, 0], Some(-3.0));
        let scopes = [scope("", "", vec![histogram("h", "", vec![negative_bound, no_sum, negative_sum])])];
        let t = text(&scopes);
        assert!(!t.contains("h_sum"), "{t}");
        assert_eq!(t.matches("h_count").count(), 3);
        let o = om(&scopes);
        assert!(!o.contains("h_sum") && !o.contains("h_count"), "{o}");
    }

    #[test]
    fn invalid_histogram_points_are_skipped_with_a_sentence() {
        let mut wrong_count = hpoint(vec![kv("k", "count")], &[1.0], &[1, 1], None);
        wrong_count.count = 5;
        let points = vec![
            hpoint(vec![kv("k", "ok")], &[1.0], &[1, 1], Some(1.0)),
            hpoint(vec![kv("k", "short")], &[1.0, 2.0], &[1, 1], None),
            hpoint(vec![kv("k", "nan")], &[f64::NAN], &[1, 1], None),
            hpoint(vec![kv("k", "order")], &[2.0, 1.0], &[1, 1, 1], None),
            hpoint(vec![kv("k", "inf")], &[f64::INFINITY], &[1, 1], None),
            HistogramDataPoint { bucket_counts: vec![u64::MAX, 1], explicit_bounds: vec![1.0], ..Default::default() },
            wrong_count,
        ];
        let out = render(&[], &[scope("", "", vec![histogram("h", "", points)])], Format::Text004);
        assert_eq!(out.text.matches("h_count").count(), 1, "{}", out.text);
        assert_eq!(
            out.skipped,
            ["`h`: 6 data point(s) skipped; a histogram data point has 2 bucket counts for 2 bounds."]
        );
    }

    #[test]
    fn summaries_render_quantiles() {
        let p = SummaryDataPoint {
            count: 10,
            sum: 12.5,
            quantile_values: vec![
                ValueAtQuantile { quantile: 0.99, value: 3.0 },
                ValueAtQuantile { quantile: 0.5, value: 1.0 },
            ],
            ..Default::default()
        };
        let m = metric("rpc.latency", "s", "", Data::Summary(Summary { data_points: vec![p] }));
        let scopes = [ScopeMetrics { metrics: vec![m], ..Default::default() }];
        let l = r#"otel_scope_name="",otel_scope_version="""#;
        assert_eq!(
            text(&scopes),
            format!(
                "# TYPE rpc_latency_seconds summary\n\
                 rpc_latency_seconds{{{l},quantile=\"0.5\"}} 1\n\
                 rpc_latency_seconds{{{l},quantile=\"0.99\"}} 3\n\
                 rpc_latency_seconds_sum{{{l}}} 12.5\n\
                 rpc_latency_seconds_count{{{l}}} 10\n"
            )
        );
        assert!(om(&scopes).contains("quantile=\"0.5\"} 1.0\n"));
    }

    #[test]
    fn points_without_a_recorded_value_are_left_out() {
        let mut gone = int(vec![kv("k", "gone")], 1);
        gone.flags = 1;
        let out = render(
            &[],
            &[scope("s", "", vec![gauge("g", "", vec![gone, int(vec![kv("k", "here")], 2)])])],
            Format::Text004,
        );
        assert!(!out.text.contains("gone") && out.text.contains("here"), "{}", out.text);
        assert!(out.skipped.is_empty());
        let mut none = int(vec![], 0);
        none.value = None;
        let out = render(&[], &[scope("s", "", vec![gauge("g", "", vec![none])])], Format::Text004);
        assert_eq!(out.text, "");
        assert_eq!(out.skipped, ["`g`: 1 data point(s) skipped; a data point has no value."]);
    }

    #[test]
    fn output_is_deterministic_and_independent_of_point_order() {
        let points = || vec![int(vec![kv("k", "b")], 2), int(vec![kv("k", "a")], 1), int(vec![kv("k", "c")], 3)];
        let mut reversed = points();
        reversed.reverse();
        let a = text(&[scope("s", "", vec![gauge("g", "", points())])]);
        let b = text(&[scope("s", "", vec![gauge("g", "", reversed)])]);
        assert_eq!(a, b);
        let (resource, scopes) = canonical();
        assert_eq!(render(&resource, &scopes, Format::OpenMetrics), render(&resource, &scopes, Format::OpenMetrics));
        let l = r#"otel_scope_name="s",otel_scope_version="""#;
        assert_eq!(a, format!("# TYPE g gauge\ng{{k=\"a\",{l}}} 1\ng{{k=\"b\",{l}}} 2\ng{{k=\"c\",{l}}} 3\n"));
    }

    #[test]
    fn series_equal_after_sanitising_keep_the_first() {
        let points = vec![
            int(vec![kv("a.b", "x")], 1),
            int(vec![kv("a_b", "x")], 2),
            int(vec![kv("a_b", "")], 3),
            int(vec![], 4),
        ];
        let out = render(&[], &[scope("s", "", vec![gauge("g", "", points)])], Format::Text004);
        assert!(out.text.contains("a_b=\"x\",otel_scope_name=\"s\",otel_scope_version=\"\"} 1\n"), "{}", out.text);
        // An empty value is no label to Prometheus: {a_b=""} and {} are one series.
        assert_eq!(out.text.lines().filter(|l| !l.starts_with('#')).count(), 2, "{}", out.text);
        assert_eq!(
            out.skipped,
            ["`g`: 2 data point(s) dropped because their labels equal another data point's once sanitised."]
        );
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let mut deep = AnyValue { value: Some(Value::StringValue("leaf".into())) };
        for _ in 0..1000 {
            deep = AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![deep] })) };
        }
        let attrs = vec![
            KeyValue { key: "deep".into(), value: Some(deep), ..Default::default() },
            kv("\u{0}\n\"", "\u{0}\r\n\\"),
        ];
        let mut weird_ex = ex(exemplar::Value::AsDouble(f64::INFINITY), u64::MAX);
        weird_ex.trace_id = vec![1; 3];
        let mut p = hpoint(attrs.clone(), &[f64::MIN_POSITIVE, f64::MAX], &[u64::MAX, 0, 0], Some(f64::INFINITY));
        p.exemplars = vec![weird_ex.clone()];
        let mut n = double(attrs.clone(), -0.0);
        n.exemplars = vec![weird_ex];
        let scopes = [scope(
            "\n",
            "\"",
            vec![
                histogram("h", "{", vec![p]),
                sum("_total", "}/", true, vec![n]),
                gauge("", "1/1", vec![int(attrs.clone(), i64::MIN)]),
                metric(
                    "s",
                    "/",
                    "\\",
                    Data::Summary(Summary {
                        data_points: vec![SummaryDataPoint {
                            sum: f64::NAN,
                            quantile_values: vec![ValueAtQuantile { quantile: f64::NAN, value: 1.0 }],
                            ..Default::default()
                        }],
                    }),
                ),
            ],
        )];
        for format in [Format::Text004, Format::OpenMetrics] {
            let out = render(&attrs, &scopes, format);
            assert!(out.text.lines().all(|l| !l.is_empty()), "{}", out.text);
        }
    }
}
