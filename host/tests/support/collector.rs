//! A real OpenTelemetry Collector for integration tests, and parsers for the
//! spans, metrics and log records its debug exporter (`verbosity: detailed`)
//! prints.
//!
//! The collector is built by `scripts/install-collector.sh` (once, cached) and
//! configured from `scripts/collector/config.yaml.tmpl`; the output format is
//! documented in `scripts/collector/README.md`. A collector that cannot be built
//! or started is a test failure, never a skip.

#![allow(dead_code)]

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long the collector may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The collector logs this once its pipelines run.
const READY_LOG: &str = "Everything is ready";

/// A running collector; killed (and its temp files removed) on drop.
pub struct Collector {
    child: Child,
    port: u16,
    grpc_port: u16,
    dir: PathBuf,
    stderr_path: PathBuf,
}

impl Collector {
    /// Builds (if needed) and starts a collector on two free loopback ports
    /// (OTLP/HTTP and OTLP/gRPC) and waits until both accept connections.
    /// Panics if any step fails.
    pub fn start() -> Collector {
        let binary = install();
        let template_path = super::repo_root().join("scripts/collector/config.yaml.tmpl");
        let template = fs::read_to_string(&template_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", template_path.display()));
        for placeholder in ["__HTTP_ENDPOINT__", "__GRPC_ENDPOINT__"] {
            assert!(template.contains(placeholder), "{} has no {placeholder}", template_path.display());
        }

        // The port is free when picked but could be taken before the collector
        // binds it (another test picking the same one): then try another.
        let mut failures = Vec::new();
        for _attempt in 0..3 {
            let port = super::free_port();
            let grpc_port = std::iter::repeat_with(super::free_port).find(|p| *p != port).expect("a second port");
            let dir = super::unique_temp_dir("collector");
            let config_path = dir.join("otelcol.yaml");
            let stderr_path = dir.join("otelcol.stderr");
            let config = template
                .replace("__HTTP_ENDPOINT__", &format!("127.0.0.1:{port}"))
                .replace("__GRPC_ENDPOINT__", &format!("127.0.0.1:{grpc_port}"));
            fs::write(&config_path, config).unwrap_or_else(|e| panic!("cannot write {}: {e}", config_path.display()));
            let stderr = fs::File::create(&stderr_path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
            let child = Command::new(&binary)
                .arg(format!("--config={}", config_path.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start the collector {}: {e}", binary.display()));
            let mut collector = Collector { child, port, grpc_port, dir, stderr_path };
            match collector.wait_ready() {
                Ok(()) => return collector,
                Err(why) => {
                    let output = collector.output();
                    let port_taken = output.contains("address already in use");
                    failures.push(format!("ports {port} and {grpc_port}: {why}\n--- collector stderr ---\n{output}"));
                    drop(collector);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!("the OpenTelemetry Collector did not start:\n{}", failures.join("\n"));
    }

    /// Ready = still running, its own log says so, and both ports take connections.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addrs = [self.port, self.grpc_port].map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("the collector exited early with {status}"));
            }
            if self.output().contains(READY_LOG)
                && addrs.iter().all(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok())
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not accepting connections on {addrs:?} after {READY_TIMEOUT:?}"));
            }
            sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The base URL to give polytel as its OTLP endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The OTLP/gRPC receiver, as a gRPC target (h2c).
    pub fn grpc_target(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Everything the collector has written to stderr so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stderr_path).unwrap_or_default()).into_owned()
    }

    /// All spans the collector has printed so far.
    pub fn spans(&self) -> Vec<CollectedSpan> {
        parse_spans(&self.output())
    }

    /// Polls the collector's output until it shows at least `n` spans; panics
    /// with the captured output if that takes longer than `timeout`.
    pub fn wait_for_spans(&mut self, n: usize, timeout: Duration) -> Vec<CollectedSpan> {
        self.wait_for(&format!("at least {n} spans"), parse_spans, |spans| spans.len() >= n, timeout)
    }

    /// All metrics the collector has printed so far, in arrival order.
    pub fn metrics(&self) -> Vec<CollectedMetric> {
        parse_metrics(&self.output())
    }

    /// Polls the collector's output until `ok` accepts the metrics parsed so
    /// far (one export can arrive as several dumps, so a count alone is a poor
    /// test); panics with the captured output after `timeout`.
    pub fn wait_for_metrics(
        &mut self,
        ok: impl Fn(&[CollectedMetric]) -> bool,
        timeout: Duration,
    ) -> Vec<CollectedMetric> {
        self.wait_for("the expected metrics", parse_metrics, ok, timeout)
    }

    /// All log records the collector has printed so far.
    pub fn logs(&self) -> Vec<CollectedLog> {
        parse_logs(&self.output())
    }

    /// Polls the collector's output until it shows at least `n` log records;
    /// panics with the captured output if that takes longer than `timeout`.
    pub fn wait_for_logs(&mut self, n: usize, timeout: Duration) -> Vec<CollectedLog> {
        self.wait_for(&format!("at least {n} log records"), parse_logs, |logs| logs.len() >= n, timeout)
    }

    fn wait_for<T>(
        &mut self,
        what: &str,
        parse: fn(&str) -> Vec<T>,
        ok: impl Fn(&[T]) -> bool,
        timeout: Duration,
    ) -> Vec<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = parse(&self.output());
            if ok(&found) {
                return found;
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let why = match exited {
                    Some(status) => format!("the collector exited with {status}"),
                    None => format!("timed out after {timeout:?}"),
                };
                panic!(
                    "expected {what} from the collector, parsed {} ({why})\n\
                     --- collector stderr ---\n{}",
                    found.len(),
                    self.output()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("collector output kept in {}", self.stderr_path.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs the install script; its last stdout line is the binary's path.
fn install() -> PathBuf {
    super::script_output_path("scripts/install-collector.sh", &[])
}

// ---------------------------------------------------------------------------
// Parsing the debug exporter's output

/// Attributes as printed: key and the typed value, e.g. `("n", "Int(3)")`.
pub type Attributes = Vec<(String, String)>;

/// One span as the collector printed it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CollectedSpan {
    pub resource_attributes: Attributes,
    pub scope_name: String,
    pub scope_version: String,
    pub trace_id: String,
    /// Empty for a root span.
    pub parent_id: String,
    pub span_id: String,
    pub name: String,
    /// `Internal`, `Client`, ...
    pub kind: String,
    pub trace_state: String,
    pub start_time: String,
    pub end_time: String,
    /// `Unset`, `Ok` or `Error`.
    pub status_code: String,
    pub status_message: String,
    pub attributes: Attributes,
    pub events: Vec<CollectedEvent>,
    pub links: Vec<CollectedLink>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CollectedEvent {
    pub name: String,
    pub attributes: Attributes,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CollectedLink {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: Attributes,
}

fn lookup<'a>(attributes: &'a Attributes, key: &str) -> Option<&'a str> {
    attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

impl CollectedSpan {
    /// The typed value of a span attribute, e.g. `Some("Int(3)")`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        lookup(&self.attributes, key)
    }

    pub fn resource_attr(&self, key: &str) -> Option<&str> {
        lookup(&self.resource_attributes, key)
    }
}

impl CollectedEvent {
    pub fn attr(&self, key: &str) -> Option<&str> {
        lookup(&self.attributes, key)
    }
}

/// The span fields the exporter prints as `    %-15s: %s`.
const SPAN_FIELDS: &[&str] = &[
    "Trace ID",
    "Parent ID",
    "ID",
    "Name",
    "Kind",
    "TraceState",
    "Start time",
    "End time",
    "Status code",
    "Status message",
    "DroppedAttributesCount",
    "DroppedEventsCount",
    "DroppedLinksCount",
];

const TOP_ATTR: &str = "     -> ";
const NESTED_ATTR: &str = "          -> ";
const DUMP_END: &str = "\t{";

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Resource,
    ResourceAttributes,
    Scope,
    ScopeAttributes,
    SpanFields,
    SpanAttributes,
    Event,
    EventAttributes,
    Link,
    LinkAttributes,
}

/// Where the last value went, so a continuation line (a string value with a
/// newline in it) can be appended to it.
#[derive(Clone, Copy)]
enum Last {
    Nothing,
    ResourceAttribute,
    SpanField(&'static str),
    SpanAttribute,
    EventName,
    EventAttribute,
    LinkAttribute,
}

/// If `line` is the first line of a dump whose first record is `header`
/// (`<ts>\tinfo\tResourceSpans #0`).
fn is_dump_start(line: &str, header: &str) -> bool {
    let body = line.rsplit('\t').next().unwrap_or(line);
    body.starts_with(header) && (line.contains('\t') || line.starts_with(header))
}

/// The lines of every complete dump starting with `header`, each without its
/// first line and end marker. A dump still being written is left out, so a
/// test polling the output never sees a half-parsed record.
fn complete_dumps<'a>(text: &'a str, header: &str) -> Vec<Vec<&'a str>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut dumps = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if is_dump_start(lines[i], header) {
            match lines[i + 1..].iter().position(|l| l.starts_with(DUMP_END)) {
                Some(len) => {
                    dumps.push(lines[i + 1..i + 1 + len].to_vec());
                    i += len + 2;
                    continue;
                }
                None => break,
            }
        }
        i += 1;
    }
    dumps
}

/// A `    Name           : value` span field line: (field, value).
fn span_field(line: &str) -> Option<(&'static str, &str)> {
    let rest = line.strip_prefix("    ")?;
    if rest.starts_with(' ') {
        return None;
    }
    let (key, value) = rest.split_once(':')?;
    let key = key.trim_end();
    let field = SPAN_FIELDS.iter().find(|f| **f == key)?;
    Some((field, value.strip_prefix(' ').unwrap_or(value)))
}

/// `key: Type(value...` -> (key, `Type(value...`). The separator is the first
/// `: ` followed by a type name and `(`, so keys may contain `: ` too.
fn split_attribute(s: &str) -> Option<(String, String)> {
    let mut from = 0;
    while let Some(i) = s[from..].find(": ") {
        let at = from + i;
        let value = &s[at + 2..];
        let type_len = value.find('(').unwrap_or(0);
        if type_len > 0 && value[..type_len].chars().all(|c| c.is_ascii_alphabetic()) {
            return Some((s[..at].to_owned(), value.to_owned()));
        }
        from = at + 2;
    }
    None
}

/// Lines that start a field, section or attribute (anything else inside a
/// dump continues the previous value).
fn is_structural(line: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "ResourceSpans #",
        "Resource SchemaURL:",
        "Resource attributes:",
        "ScopeSpans #",
        "ScopeSpans SchemaURL:",
        "InstrumentationScope ",
        "Span #",
        "Attributes:",
        "Events:",
        "SpanEvent #",
        "Links:",
        "SpanLink #",
        TOP_ATTR,
        NESTED_ATTR,
        DUMP_END,
    ];
    PREFIXES.iter().any(|p| line.starts_with(p)) || span_field(line).is_some()
}

/// Every span in every complete trace dump of `text` (the collector's stderr).
/// A dump still being written (no end marker yet) is left out.
pub fn parse_spans(text: &str) -> Vec<CollectedSpan> {
    complete_dumps(text, "ResourceSpans #").iter().flat_map(|dump| parse_dump(dump)).collect()
}

/// The lines of one dump after its `ResourceSpans #n` line, up to (without)
/// the end marker.
fn parse_dump(lines: &[&str]) -> Vec<CollectedSpan> {
    let mut spans: Vec<CollectedSpan> = Vec::new();
    let mut resource = Attributes::new();
    let (mut scope_name, mut scope_version) = (String::new(), String::new());
    let mut section = Section::Resource;
    let mut last = Last::Nothing;

    for &line in lines {
        if !is_structural(line) {
            let target: Option<&mut String> = match last {
                Last::Nothing => None,
                Last::ResourceAttribute => resource.last_mut().map(|(_, v)| v),
                Last::SpanField(field) => spans.last_mut().and_then(|s| field_mut(s, field)),
                Last::SpanAttribute => spans.last_mut().and_then(|s| s.attributes.last_mut()).map(|(_, v)| v),
                Last::EventName => spans.last_mut().and_then(|s| s.events.last_mut()).map(|e| &mut e.name),
                Last::EventAttribute => spans
                    .last_mut()
                    .and_then(|s| s.events.last_mut())
                    .and_then(|e| e.attributes.last_mut())
                    .map(|(_, v)| v),
                Last::LinkAttribute => spans
                    .last_mut()
                    .and_then(|s| s.links.last_mut())
                    .and_then(|l| l.attributes.last_mut())
                    .map(|(_, v)| v),
            };
            if let Some(value) = target {
                value.push('\n');
                value.push_str(line);
            }
            continue;
        }
        last = Last::Nothing;

        if line.starts_with("ResourceSpans #") {
            // A dump holds one or more ResourceSpans.
            resource.clear();
            section = Section::Resource;
        } else if line.starts_with("Resource SchemaURL:") {
        } else if line == "Resource attributes:" {
            section = Section::ResourceAttributes;
        } else if line.starts_with("ScopeSpans SchemaURL:") {
        } else if line.starts_with("ScopeSpans #") {
            scope_name.clear();
            scope_version.clear();
            section = Section::Scope;
        } else if line == "InstrumentationScope attributes:" {
            section = Section::ScopeAttributes;
        } else if let Some(rest) = line.strip_prefix("InstrumentationScope ") {
            let (name, version) = rest.rsplit_once(' ').unwrap_or((rest, ""));
            scope_name = name.to_owned();
            scope_version = version.to_owned();
        } else if line.starts_with("Span #") {
            spans.push(CollectedSpan {
                resource_attributes: resource.clone(),
                scope_name: scope_name.clone(),
                scope_version: scope_version.clone(),
                ..Default::default()
            });
            section = Section::SpanFields;
        } else if line == "Attributes:" {
            section = Section::SpanAttributes;
        } else if line == "Events:" || line.starts_with("SpanEvent #") {
            if line.starts_with("SpanEvent #") {
                if let Some(span) = spans.last_mut() {
                    span.events.push(CollectedEvent::default());
                }
            }
            section = Section::Event;
        } else if line == "Links:" || line.starts_with("SpanLink #") {
            if line.starts_with("SpanLink #") {
                if let Some(span) = spans.last_mut() {
                    span.links.push(CollectedLink::default());
                }
            }
            section = Section::Link;
        } else if line.starts_with(DUMP_END) {
        } else if let Some(rest) = line.strip_prefix(NESTED_ATTR) {
            let Some(kv) = split_attribute(rest) else { continue };
            let span = spans.last_mut();
            match section {
                Section::EventAttributes => {
                    if let Some(e) = span.and_then(|s| s.events.last_mut()) {
                        e.attributes.push(kv);
                        last = Last::EventAttribute;
                    }
                }
                Section::LinkAttributes => {
                    if let Some(l) = span.and_then(|s| s.links.last_mut()) {
                        l.attributes.push(kv);
                        last = Last::LinkAttribute;
                    }
                }
                _ => {}
            }
        } else if let Some(rest) = line.strip_prefix(TOP_ATTR) {
            match section {
                Section::ResourceAttributes => {
                    if let Some(kv) = split_attribute(rest) {
                        resource.push(kv);
                        last = Last::ResourceAttribute;
                    }
                }
                Section::ScopeAttributes | Section::Resource | Section::Scope | Section::SpanFields => {}
                Section::SpanAttributes => {
                    if let (Some(kv), Some(span)) = (split_attribute(rest), spans.last_mut()) {
                        span.attributes.push(kv);
                        last = Last::SpanAttribute;
                    }
                }
                Section::Event | Section::EventAttributes => {
                    let Some(event) = spans.last_mut().and_then(|s| s.events.last_mut()) else { continue };
                    if let Some(name) = rest.strip_prefix("Name: ") {
                        event.name = name.to_owned();
                        last = Last::EventName;
                    } else if rest == "Name:" {
                        last = Last::EventName;
                    } else if rest.starts_with("Attributes::") {
                        section = Section::EventAttributes;
                    }
                }
                Section::Link | Section::LinkAttributes => {
                    let Some(link) = spans.last_mut().and_then(|s| s.links.last_mut()) else { continue };
                    if let Some(id) = rest.strip_prefix("Trace ID: ") {
                        link.trace_id = id.to_owned();
                    } else if let Some(id) = rest.strip_prefix("ID: ") {
                        link.span_id = id.to_owned();
                    } else if rest.starts_with("Attributes::") {
                        section = Section::LinkAttributes;
                    }
                }
            }
        } else if let Some((field, value)) = span_field(line) {
            if section == Section::SpanFields {
                if let Some(target) = spans.last_mut().and_then(|s| field_mut(s, field)) {
                    *target = value.to_owned();
                    last = Last::SpanField(field);
                }
            }
        }
    }
    spans
}

fn field_mut<'a>(span: &'a mut CollectedSpan, field: &str) -> Option<&'a mut String> {
    Some(match field {
        "Trace ID" => &mut span.trace_id,
        "Parent ID" => &mut span.parent_id,
        "ID" => &mut span.span_id,
        "Name" => &mut span.name,
        "Kind" => &mut span.kind,
        "TraceState" => &mut span.trace_state,
        "Start time" => &mut span.start_time,
        "End time" => &mut span.end_time,
        "Status code" => &mut span.status_code,
        "Status message" => &mut span.status_message,
        _ => return None,
    })
}

/// `Name: value` (or `Name:` with nothing after it) -> `value`.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

// ---------------------------------------------------------------------------
// Metrics

/// One metric as the collector printed it. The same instrument exported twice
/// appears twice, in arrival order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CollectedMetric {
    pub name: String,
    pub description: String,
    pub unit: String,
    /// `Sum`, `Gauge`, `Histogram`, `ExponentialHistogram` or `Summary`.
    pub data_type: String,
    /// `Cumulative`, `Delta` or `Unspecified`; `None` for gauges and
    /// summaries, whose dumps have no such line.
    pub temporality: Option<String>,
    /// Only sums print it.
    pub monotonic: Option<bool>,
    pub points: Vec<CollectedPoint>,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
}

/// One data point. Doubles are printed with Go's `%f`, i.e. rounded to six
/// decimals (`1e-7` reads back as 0); integers exactly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CollectedPoint {
    pub attributes: Attributes,
    /// A sum's or gauge's value (int or double: the dump does not say which,
    /// except that doubles have six decimals in `raw`).
    pub value: Option<f64>,
    /// Histograms and summaries.
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The upper edge of each bucket. Explicit histograms: their bounds, one
    /// fewer than `bucket_counts` (the +Inf bucket has no printed edge).
    /// Exponential histograms: one per printed bucket, lowest first (negative
    /// buckets, the zero bucket as 0, positive buckets); scale and offsets
    /// are not printed, only these edges, rounded by `%f`.
    pub bucket_bounds: Vec<f64>,
    pub bucket_counts: Vec<u64>,
    pub exemplars: Vec<CollectedExemplar>,
    /// `StartTimestamp`, e.g. `2023-11-14 22:13:20 +0000 UTC`; an unset one
    /// prints as `1970-01-01 00:00:00 +0000 UTC`.
    pub start: String,
    pub time: String,
    /// The point's lines as printed, for assertion messages.
    pub raw: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CollectedExemplar {
    pub trace_id: String,
    pub span_id: String,
    pub value: f64,
}

impl CollectedMetric {
    pub fn resource_attr(&self, key: &str) -> Option<&str> {
        lookup(&self.resource, key)
    }

    /// The first point whose attribute `key` is printed as `value`, e.g.
    /// `point("route", "Str(/a)")`.
    pub fn point(&self, key: &str, value: &str) -> Option<&CollectedPoint> {
        self.points.iter().find(|p| p.attr(key) == Some(value))
    }
}

impl CollectedPoint {
    /// The typed value of a data point attribute, e.g. `Some("Str(/a)")`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        lookup(&self.attributes, key)
    }

    /// An exponential histogram's zero bucket. The exporter leaves the line
    /// out when the count is 0, and its edge (0) alone could be confused with
    /// a negative bucket's edge rounded to `-0.000000`, hence this look-up.
    pub fn zero_count(&self) -> Option<u64> {
        self.raw.lines().find_map(|l| l.strip_prefix("Bucket [0, 0], Count: ")).and_then(|n| n.parse().ok())
    }
}

const POINT_HEADERS: &[&str] =
    &["NumberDataPoints #", "HistogramDataPoints #", "ExponentialHistogramDataPoints #", "SummaryDataPoints #"];

/// Lines that start a record, section or field of a metrics dump (anything
/// else continues the previous value).
fn is_metric_structural(line: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "ResourceMetrics #",
        "Resource SchemaURL:",
        "Resource attributes:",
        "ScopeMetrics #",
        "ScopeMetrics SchemaURL:",
        "InstrumentationScope ",
        "Metric #",
        "Descriptor:",
        "Data point attributes:",
        "StartTimestamp:",
        "Timestamp:",
        "Value:",
        "Count:",
        "Sum:",
        "Min:",
        "Max:",
        "ExplicitBounds #",
        "Bucket",
        "QuantileValue #",
        "Exemplars:",
        "Exemplar #",
        TOP_ATTR,
        NESTED_ATTR,
        DUMP_END,
    ];
    PREFIXES.iter().chain(POINT_HEADERS).any(|p| line.starts_with(p))
}

#[derive(Clone, Copy, PartialEq)]
enum MetricSection {
    Resource,
    ResourceAttributes,
    Scope,
    Descriptor,
    Point,
    PointAttributes,
    Exemplar,
}

#[derive(Clone, Copy)]
enum MetricLast {
    Nothing,
    ResourceAttribute,
    Name,
    Description,
    Unit,
    PointAttribute,
}

/// Every metric in every complete metrics dump of `text` (the collector's
/// stderr), in the order printed. A dump still being written is left out.
pub fn parse_metrics(text: &str) -> Vec<CollectedMetric> {
    complete_dumps(text, "ResourceMetrics #").iter().flat_map(|dump| parse_metric_dump(dump)).collect()
}

fn last_point(metrics: &mut [CollectedMetric]) -> Option<&mut CollectedPoint> {
    metrics.last_mut()?.points.last_mut()
}

/// The lines of one dump after its `ResourceMetrics #n` line, up to (without)
/// the end marker.
fn parse_metric_dump(lines: &[&str]) -> Vec<CollectedMetric> {
    let mut metrics: Vec<CollectedMetric> = Vec::new();
    let mut resource = Attributes::new();
    let (mut scope_name, mut scope_version) = (String::new(), String::new());
    let mut section = MetricSection::Resource;
    let mut last = MetricLast::Nothing;
    let mut in_point = false;

    for &line in lines {
        let starts_point = POINT_HEADERS.iter().any(|h| line.starts_with(h));
        let leaves_point = ["ResourceMetrics #", "ScopeMetrics #", "Metric #"].iter().any(|h| line.starts_with(h));
        if in_point && !starts_point && !leaves_point {
            if let Some(point) = last_point(&mut metrics) {
                point.raw.push('\n');
                point.raw.push_str(line);
            }
        }

        if !is_metric_structural(line) {
            let target = match last {
                MetricLast::Nothing => None,
                MetricLast::ResourceAttribute => resource.last_mut().map(|(_, v)| v),
                MetricLast::Name => metrics.last_mut().map(|m| &mut m.name),
                MetricLast::Description => metrics.last_mut().map(|m| &mut m.description),
                MetricLast::Unit => metrics.last_mut().map(|m| &mut m.unit),
                MetricLast::PointAttribute => {
                    last_point(&mut metrics).and_then(|p| p.attributes.last_mut()).map(|(_, v)| v)
                }
            };
            if let Some(value) = target {
                value.push('\n');
                value.push_str(line);
            }
            continue;
        }
        last = MetricLast::Nothing;

        if line.starts_with("ResourceMetrics #") {
            resource.clear();
            section = MetricSection::Resource;
            in_point = false;
        } else if line.starts_with("Resource SchemaURL:") {
        } else if line == "Resource attributes:" {
            section = MetricSection::ResourceAttributes;
        } else if line.starts_with("ScopeMetrics SchemaURL:") {
        } else if line.starts_with("ScopeMetrics #") {
            scope_name.clear();
            scope_version.clear();
            section = MetricSection::Scope;
            in_point = false;
        } else if line == "InstrumentationScope attributes:" {
            section = MetricSection::Scope;
        } else if let Some(rest) = line.strip_prefix("InstrumentationScope ") {
            let (name, version) = rest.rsplit_once(' ').unwrap_or((rest, ""));
            scope_name = name.to_owned();
            scope_version = version.to_owned();
        } else if line.starts_with("Metric #") {
            metrics.push(CollectedMetric {
                resource: resource.clone(),
                scope_name: scope_name.clone(),
                scope_version: scope_version.clone(),
                ..Default::default()
            });
            section = MetricSection::Descriptor;
            in_point = false;
        } else if line == "Descriptor:" {
            section = MetricSection::Descriptor;
        } else if starts_point {
            if let Some(metric) = metrics.last_mut() {
                metric.points.push(CollectedPoint { raw: line.to_owned(), ..Default::default() });
                in_point = true;
            }
            section = MetricSection::Point;
        } else if line == "Data point attributes:" {
            section = MetricSection::PointAttributes;
        } else if line == "Exemplars:" {
            section = MetricSection::Exemplar;
        } else if line.starts_with("Exemplar #") {
            if let Some(point) = last_point(&mut metrics) {
                point.exemplars.push(CollectedExemplar::default());
            }
            section = MetricSection::Exemplar;
        } else if line.starts_with(NESTED_ATTR) || line.starts_with(DUMP_END) {
            // Nested lines are an exemplar's filtered attributes: kept in `raw` only.
        } else if let Some(rest) = line.strip_prefix(TOP_ATTR) {
            match section {
                MetricSection::ResourceAttributes => {
                    if let Some(kv) = split_attribute(rest) {
                        resource.push(kv);
                        last = MetricLast::ResourceAttribute;
                    }
                }
                MetricSection::Descriptor => {
                    if let Some(metric) = metrics.last_mut() {
                        last = descriptor_field(metric, rest);
                    }
                }
                MetricSection::PointAttributes => {
                    if let (Some(kv), Some(point)) = (split_attribute(rest), last_point(&mut metrics)) {
                        point.attributes.push(kv);
                        last = MetricLast::PointAttribute;
                    }
                }
                MetricSection::Exemplar => {
                    let Some(exemplar) = last_point(&mut metrics).and_then(|p| p.exemplars.last_mut()) else {
                        continue;
                    };
                    if let Some(id) = field(rest, "Trace ID") {
                        exemplar.trace_id = id.to_owned();
                    } else if let Some(id) = field(rest, "Span ID") {
                        exemplar.span_id = id.to_owned();
                    } else if let Some(value) = field(rest, "Value").and_then(parse_f64) {
                        exemplar.value = value;
                    }
                }
                MetricSection::Resource | MetricSection::Scope | MetricSection::Point => {}
            }
        } else if let Some(point) = last_point(&mut metrics) {
            section = MetricSection::Point;
            point_field(point, line);
        }
    }
    metrics
}

/// A `     -> Name: value` descriptor line (without its prefix).
fn descriptor_field(metric: &mut CollectedMetric, rest: &str) -> MetricLast {
    if let Some(v) = field(rest, "Name") {
        metric.name = v.to_owned();
        MetricLast::Name
    } else if let Some(v) = field(rest, "Description") {
        metric.description = v.to_owned();
        MetricLast::Description
    } else if let Some(v) = field(rest, "Unit") {
        metric.unit = v.to_owned();
        MetricLast::Unit
    } else {
        if let Some(v) = field(rest, "DataType") {
            metric.data_type = v.to_owned();
        } else if let Some(v) = field(rest, "IsMonotonic") {
            metric.monotonic = v.parse().ok();
        } else if let Some(v) = field(rest, "AggregationTemporality") {
            metric.temporality = Some(v.to_owned());
        }
        MetricLast::Nothing
    }
}

/// A data point line at column 0 (`Count: 3`, `Buckets #1, Count: 2`, ...).
fn point_field(point: &mut CollectedPoint, line: &str) {
    if let Some(v) = field(line, "StartTimestamp") {
        point.start = v.to_owned();
    } else if let Some(v) = field(line, "Timestamp") {
        point.time = v.to_owned();
    } else if let Some(v) = field(line, "Value") {
        point.value = parse_f64(v);
    } else if let Some(v) = field(line, "Count") {
        point.count = v.parse().ok();
    } else if let Some(v) = field(line, "Sum") {
        point.sum = parse_f64(v);
    } else if let Some(v) = field(line, "Min") {
        point.min = parse_f64(v);
    } else if let Some(v) = field(line, "Max") {
        point.max = parse_f64(v);
    } else if let Some(rest) = line.strip_prefix("ExplicitBounds #") {
        if let Some(bound) = rest.split_once(": ").and_then(|(_, v)| parse_f64(v)) {
            point.bucket_bounds.push(bound);
        }
    } else if let Some(rest) = line.strip_prefix("Buckets #") {
        if let Some(count) = rest.split_once(", Count: ").and_then(|(_, n)| n.parse().ok()) {
            point.bucket_counts.push(count);
        }
    } else if let Some(rest) = line.strip_prefix("Bucket ") {
        // `[-2.000000, -1.000000), Count: 4`, `[0, 0], Count: 2`, `(1.414214, 2.000000], Count: 1`
        let Some((range, count)) = rest.split_once(", Count: ") else { return };
        let upper = range.get(1..range.len().saturating_sub(1)).and_then(|r| r.split_once(", ")).map(|(_, u)| u);
        if let (Some(upper), Ok(count)) = (upper.and_then(parse_f64), count.parse()) {
            point.bucket_bounds.push(upper);
            point.bucket_counts.push(count);
        }
    }
}

/// Go prints special doubles as `NaN`, `+Inf` and `-Inf`, which Rust reads too.
fn parse_f64(s: &str) -> Option<f64> {
    s.parse().ok()
}

// ---------------------------------------------------------------------------
// Logs

/// One log record as the collector printed it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CollectedLog {
    pub severity_text: String,
    /// The number in `SeverityNumber: Info(9)`; 0 when unset (`Unspecified(0)`).
    pub severity_number: i32,
    /// The typed value as printed, e.g. `Str(hello)` or `Map({"k":"v"})`.
    pub body: String,
    pub attributes: Attributes,
    /// Empty when the record has none.
    pub trace_id: String,
    pub span_id: String,
    /// Empty when the record has none (the line is then left out).
    pub event_name: String,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
    /// `Timestamp`; an unset one prints as `1970-01-01 00:00:00 +0000 UTC`.
    pub time: String,
    pub observed_time: String,
    pub flags: u32,
    /// The record's lines as printed, for assertion messages.
    pub raw: String,
}

impl CollectedLog {
    /// The typed value of a log attribute, e.g. `Some("Int(42)")`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        lookup(&self.attributes, key)
    }

    pub fn resource_attr(&self, key: &str) -> Option<&str> {
        lookup(&self.resource, key)
    }
}

/// Lines that start a record, section or field of a logs dump (anything else
/// continues the previous value).
fn is_log_structural(line: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "ResourceLog #",
        "Resource SchemaURL:",
        "Resource attributes:",
        "ScopeLogs #",
        "ScopeLogs SchemaURL:",
        "InstrumentationScope ",
        "LogRecord #",
        "ObservedTimestamp:",
        "Timestamp:",
        "SeverityText:",
        "SeverityNumber:",
        "EventName:",
        "Body:",
        "Attributes:",
        "Trace ID:",
        "Span ID:",
        "Flags:",
        TOP_ATTR,
        NESTED_ATTR,
        DUMP_END,
    ];
    PREFIXES.iter().any(|p| line.starts_with(p))
}

#[derive(Clone, Copy, PartialEq)]
enum LogSection {
    Resource,
    ResourceAttributes,
    Scope,
    Record,
    Attributes,
}

#[derive(Clone, Copy)]
enum LogLast {
    Nothing,
    ResourceAttribute,
    SeverityText,
    EventName,
    Body,
    Attribute,
}

/// Every log record in every complete logs dump of `text` (the collector's
/// stderr), in the order printed. A dump still being written is left out.
pub fn parse_logs(text: &str) -> Vec<CollectedLog> {
    complete_dumps(text, "ResourceLog #").iter().flat_map(|dump| parse_log_dump(dump)).collect()
}

/// The lines of one dump after its `ResourceLog #n` line, up to (without) the
/// end marker.
fn parse_log_dump(lines: &[&str]) -> Vec<CollectedLog> {
    let mut logs: Vec<CollectedLog> = Vec::new();
    let mut resource = Attributes::new();
    let (mut scope_name, mut scope_version) = (String::new(), String::new());
    let mut section = LogSection::Resource;
    let mut last = LogLast::Nothing;
    let mut in_record = false;

    for &line in lines {
        let starts_record = line.starts_with("LogRecord #");
        let leaves_record = line.starts_with("ResourceLog #") || line.starts_with("ScopeLogs #");
        if in_record && !starts_record && !leaves_record {
            if let Some(log) = logs.last_mut() {
                log.raw.push('\n');
                log.raw.push_str(line);
            }
        }

        if !is_log_structural(line) {
            let target = match last {
                LogLast::Nothing => None,
                LogLast::ResourceAttribute => resource.last_mut().map(|(_, v)| v),
                LogLast::SeverityText => logs.last_mut().map(|l| &mut l.severity_text),
                LogLast::EventName => logs.last_mut().map(|l| &mut l.event_name),
                LogLast::Body => logs.last_mut().map(|l| &mut l.body),
                LogLast::Attribute => logs.last_mut().and_then(|l| l.attributes.last_mut()).map(|(_, v)| v),
            };
            if let Some(value) = target {
                value.push('\n');
                value.push_str(line);
            }
            continue;
        }
        last = LogLast::Nothing;

        if line.starts_with("ResourceLog #") {
            resource.clear();
            section = LogSection::Resource;
            in_record = false;
        } else if line.starts_with("Resource SchemaURL:") {
        } else if line == "Resource attributes:" {
            section = LogSection::ResourceAttributes;
        } else if line.starts_with("ScopeLogs SchemaURL:") {
        } else if line.starts_with("ScopeLogs #") {
            scope_name.clear();
            scope_version.clear();
            section = LogSection::Scope;
            in_record = false;
        } else if line == "InstrumentationScope attributes:" {
            section = LogSection::Scope;
        } else if let Some(rest) = line.strip_prefix("InstrumentationScope ") {
            let (name, version) = rest.rsplit_once(' ').unwrap_or((rest, ""));
            scope_name = name.to_owned();
            scope_version = version.to_owned();
        } else if starts_record {
            logs.push(CollectedLog {
                resource: resource.clone(),
                scope_name: scope_name.clone(),
                scope_version: scope_version.clone(),
                raw: line.to_owned(),
                ..Default::default()
            });
            section = LogSection::Record;
            in_record = true;
        } else if line == "Attributes:" {
            section = LogSection::Attributes;
        } else if line.starts_with(NESTED_ATTR) || line.starts_with(DUMP_END) {
        } else if let Some(rest) = line.strip_prefix(TOP_ATTR) {
            match section {
                LogSection::ResourceAttributes => {
                    if let Some(kv) = split_attribute(rest) {
                        resource.push(kv);
                        last = LogLast::ResourceAttribute;
                    }
                }
                LogSection::Attributes => {
                    if let (Some(kv), Some(log)) = (split_attribute(rest), logs.last_mut()) {
                        log.attributes.push(kv);
                        last = LogLast::Attribute;
                    }
                }
                LogSection::Resource | LogSection::Scope | LogSection::Record => {}
            }
        } else if let Some(log) = logs.last_mut() {
            section = LogSection::Record;
            last = log_field(log, line);
        }
    }
    logs
}

/// A log record line at column 0 (`Body: Str(x)`, `Flags: 1`, ...).
fn log_field(log: &mut CollectedLog, line: &str) -> LogLast {
    if let Some(v) = field(line, "ObservedTimestamp") {
        log.observed_time = v.to_owned();
    } else if let Some(v) = field(line, "Timestamp") {
        log.time = v.to_owned();
    } else if let Some(v) = field(line, "SeverityText") {
        log.severity_text = v.to_owned();
        return LogLast::SeverityText;
    } else if let Some(v) = field(line, "SeverityNumber") {
        // `Info(9)`; a number without a name (above 24) prints as `(30)`.
        let number = v.strip_suffix(')').and_then(|v| v.rsplit_once('(')).map(|(_, n)| n);
        log.severity_number = number.and_then(|n| n.parse().ok()).unwrap_or_default();
    } else if let Some(v) = field(line, "EventName") {
        log.event_name = v.to_owned();
        return LogLast::EventName;
    } else if let Some(v) = field(line, "Body") {
        log.body = v.to_owned();
        return LogLast::Body;
    } else if let Some(v) = field(line, "Trace ID") {
        log.trace_id = v.to_owned();
    } else if let Some(v) = field(line, "Span ID") {
        log.span_id = v.to_owned();
    } else if let Some(v) = field(line, "Flags") {
        log.flags = v.parse().unwrap_or_default();
    }
    LogLast::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verbatim sample of scripts/collector/README.md (plus a second dump
    /// with a root and a child, and a half-written third dump).
    const SAMPLE: &str = concat!(
        "2026-11-21T12:37:18.000Z\tinfo\tservice@v0.162.0/service.go:200\tEverything is ready. Begin running and processing data.\n",
        "2026-11-21T12:37:18.821Z\tinfo\tTraces\t{\"resource\": {\"service.instance.id\": \"df572c59-39af-4c00-b653-275d7a72f797\", \"service.name\": \"otelcol\", \"service.version\": \"v0.162.0\"}, \"otelcol.component.id\": \"debug\", \"otelcol.component.kind\": \"exporter\", \"otelcol.signal\": \"traces\", \"resource spans\": 1, \"spans\": 1}\n",
        "2026-11-21T12:37:18.822Z\tinfo\tResourceSpans #0\n",
        "Resource SchemaURL: \n",
        "Resource attributes:\n",
        "     -> service.name: Str(polytel-test)\n",
        "     -> host.cores: Int(2)\n",
        "ScopeSpans #0\n",
        "ScopeSpans SchemaURL: https://opentelemetry.io/schemas/1.26.0\n",
        "InstrumentationScope polytel.guest 0.1.0\n",
        "InstrumentationScope attributes:\n",
        "     -> scope.attr: Str(s)\n",
        "Span #0\n",
        "    Trace ID       : 5b8efff798038103d269b633813fc60c\n",
        "    Parent ID      : eee19b7ec3c1b173\n",
        "    ID             : eee19b7ec3c1b174\n",
        "    Name           : handle-request\n",
        "    Kind           : Server\n",
        "    TraceState     : vendor=value\n",
        "    Start time     : 2023-11-14 22:13:20 +0000 UTC\n",
        "    End time       : 2023-11-14 22:13:21.5 +0000 UTC\n",
        "    Status code    : Error\n",
        "    Status message : something failed\n",
        "    DroppedAttributesCount: 0\n",
        "    DroppedEventsCount: 0\n",
        "    DroppedLinksCount: 0\n",
        "Attributes:\n",
        "     -> http.method: Str(GET)\n",
        "     -> retry.count: Int(3)\n",
        "     -> ratio: Double(0.25)\n",
        "     -> cache.hit: Bool(true)\n",
        "     -> tags: Slice([\"a\",\"b with space\",7])\n",
        "     -> nested: Map({\"k\":\"v\",\"n\":1})\n",
        "     -> blob: Bytes(AQID)\n",
        "     -> quote\"d: Str(line1\n",
        "line2 \"q\")\n",
        "Events:\n",
        "SpanEvent #0\n",
        "     -> Name: exception\n",
        "     -> Timestamp: 2023-11-14 22:13:20.5 +0000 UTC\n",
        "     -> DroppedAttributesCount: 0\n",
        "     -> Attributes::\n",
        "          -> exception.message: Str(boom)\n",
        "          -> attempt: Int(1)\n",
        "Links:\n",
        "SpanLink #0\n",
        "     -> Trace ID: 0102030405060708090a0b0c0d0e0f10\n",
        "     -> ID: 0102030405060708\n",
        "     -> TraceState: \n",
        "     -> DroppedAttributesCount: 0\n",
        "     -> Attributes::\n",
        "          -> link.kind: Str(follows)\n",
        "\t{\"resource\": {\"service.instance.id\": \"df572c59-39af-4c00-b653-275d7a72f797\", \"service.name\": \"otelcol\", \"service.version\": \"v0.162.0\"}, \"otelcol.component.id\": \"debug\", \"otelcol.component.kind\": \"exporter\", \"otelcol.signal\": \"traces\"}\n",
        "2026-11-21T12:37:19.000Z\tinfo\tTraces\t{\"resource spans\": 1, \"spans\": 2}\n",
        "2026-11-21T12:37:19.001Z\tinfo\tResourceSpans #0\n",
        "Resource SchemaURL: \n",
        "Resource attributes:\n",
        "     -> service.name: Str(second)\n",
        "ScopeSpans #0\n",
        "ScopeSpans SchemaURL: \n",
        "InstrumentationScope polytel.guest \n",
        "Span #0\n",
        "    Trace ID       : 5b8efff798038103d269b633813fc60c\n",
        "    Parent ID      : \n",
        "    ID             : eee19b7ec3c1b173\n",
        "    Name           : root\n",
        "    Kind           : Internal\n",
        "    Start time     : 2023-11-14 22:13:20 +0000 UTC\n",
        "    End time       : 2023-11-14 22:13:22 +0000 UTC\n",
        "    Status code    : Unset\n",
        "    Status message : \n",
        "    DroppedAttributesCount: 0\n",
        "    DroppedEventsCount: 0\n",
        "    DroppedLinksCount: 0\n",
        "Span #1\n",
        "    Trace ID       : 5b8efff798038103d269b633813fc60c\n",
        "    Parent ID      : eee19b7ec3c1b173\n",
        "    ID             : eee19b7ec3c1b175\n",
        "    Name           : ok-child\n",
        "    Kind           : Unspecified\n",
        "    Start time     : 2023-11-14 22:13:20 +0000 UTC\n",
        "    End time       : 2023-11-14 22:13:20.000001 +0000 UTC\n",
        "    Status code    : Ok\n",
        "    Status message : \n",
        "    DroppedAttributesCount: 0\n",
        "    DroppedEventsCount: 0\n",
        "    DroppedLinksCount: 0\n",
        "Events:\n",
        "SpanEvent #0\n",
        "     -> Name: exception\n",
        "     -> Timestamp: 2023-11-14 22:13:20.5 +0000 UTC\n",
        "     -> DroppedAttributesCount: 0\n",
        "     -> Attributes::\n",
        "          -> exception.type: Str(TimeoutError)\n",
        "          -> exception.stacktrace: Str(TimeoutError: late\n",
        "  at fetch_page (tools.rs:88)\n",
        "    at deeper: Str(x)\n",
        "          -> after: Bool(false)\n",
        "\t{\"otelcol.signal\": \"traces\"}\n",
        "2026-11-21T12:37:20.000Z\tinfo\tResourceSpans #0\n",
        "Resource SchemaURL: \n",
        "Span #0\n",
        "    Name           : half-written\n",
    );

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn parses_the_readme_sample() {
        let spans = parse_spans(SAMPLE);
        assert_eq!(spans.len(), 3, "{spans:#?}");

        let s = &spans[0];
        assert_eq!(s.resource_attributes, vec![kv("service.name", "Str(polytel-test)"), kv("host.cores", "Int(2)")]);
        assert_eq!((s.scope_name.as_str(), s.scope_version.as_str()), ("polytel.guest", "0.1.0"));
        assert_eq!(s.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(s.parent_id, "eee19b7ec3c1b173");
        assert_eq!(s.span_id, "eee19b7ec3c1b174");
        assert_eq!(s.name, "handle-request");
        assert_eq!(s.kind, "Server");
        assert_eq!(s.trace_state, "vendor=value");
        assert_eq!(s.start_time, "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(s.end_time, "2023-11-14 22:13:21.5 +0000 UTC");
        assert_eq!(s.status_code, "Error");
        assert_eq!(s.status_message, "something failed");
        assert_eq!(
            s.attributes,
            vec![
                kv("http.method", "Str(GET)"),
                kv("retry.count", "Int(3)"),
                kv("ratio", "Double(0.25)"),
                kv("cache.hit", "Bool(true)"),
                kv("tags", r#"Slice(["a","b with space",7])"#),
                kv("nested", r#"Map({"k":"v","n":1})"#),
                kv("blob", "Bytes(AQID)"),
                kv("quote\"d", "Str(line1\nline2 \"q\")"),
            ]
        );
        assert_eq!(
            s.events,
            vec![CollectedEvent {
                name: "exception".into(),
                attributes: vec![kv("exception.message", "Str(boom)"), kv("attempt", "Int(1)")],
            }]
        );
        assert_eq!(
            s.links,
            vec![CollectedLink {
                trace_id: "0102030405060708090a0b0c0d0e0f10".into(),
                span_id: "0102030405060708".into(),
                attributes: vec![kv("link.kind", "Str(follows)")],
            }]
        );

        let (root, child) = (&spans[1], &spans[2]);
        for s in [root, child] {
            assert_eq!(s.resource_attributes, vec![kv("service.name", "Str(second)")]);
            assert_eq!((s.scope_name.as_str(), s.scope_version.as_str()), ("polytel.guest", ""));
            assert_eq!(s.status_message, "");
        }
        assert_eq!(root.parent_id, "");
        assert_eq!(root.name, "root");
        assert_eq!(root.status_code, "Unset");
        assert!(root.attributes.is_empty() && root.events.is_empty() && root.links.is_empty());
        assert_eq!(child.parent_id, root.span_id);
        assert_eq!(child.status_code, "Ok");
        assert_eq!(child.events.len(), 1);
        assert_eq!(child.events[0].name, "exception");
        assert_eq!(
            child.events[0].attributes,
            vec![
                kv("exception.type", "Str(TimeoutError)"),
                // A continuation line may even look like a (non-field) indented key.
                kv(
                    "exception.stacktrace",
                    "Str(TimeoutError: late\n  at fetch_page (tools.rs:88)\n    at deeper: Str(x)"
                ),
                kv("after", "Bool(false)"),
            ]
        );
    }

    #[test]
    fn ignores_non_trace_output_and_incomplete_dumps() {
        assert!(parse_spans("").is_empty());
        let logs = "2026-11-21T12:33:53.702Z\tinfo\tResourceLog #0\nResource SchemaURL: \n\
                    LogRecord #0\nBody: Str(x)\n\t{\"otelcol.signal\": \"logs\"}\n";
        assert!(parse_spans(logs).is_empty());
        // Only the first dump of SAMPLE, cut before its end marker.
        let cut = &SAMPLE[..SAMPLE.find("\n\t{").unwrap() + 1];
        assert!(cut.contains("ResourceSpans #0") && cut.ends_with("link.kind: Str(follows)\n"));
        assert!(parse_spans(cut).is_empty());
    }
}
