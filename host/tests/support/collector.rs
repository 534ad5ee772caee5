//! A real OpenTelemetry Collector for integration tests, and a parser for the
//! spans its debug exporter (`verbosity: detailed`) prints.
//!
//! The collector is built by `scripts/install-collector.sh` (once, cached) and
//! configured from `scripts/collector/config.yaml.tmpl`; the output format is
//! documented in `scripts/collector/README.md`. A collector that cannot be built
//! or started is a test failure, never a skip.

#![allow(dead_code)]

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the collector may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The collector logs this once its pipelines run.
const READY_LOG: &str = "Everything is ready";

fn repo_root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).to_path_buf()
}

/// A running collector; killed (and its temp files removed) on drop.
pub struct Collector {
    child: Child,
    port: u16,
    dir: PathBuf,
    stderr_path: PathBuf,
}

impl Collector {
    /// Builds (if needed) and starts a collector on a free loopback port and
    /// waits until it accepts connections. Panics if any step fails.
    pub fn start() -> Collector {
        let binary = install();
        let template_path = repo_root().join("scripts/collector/config.yaml.tmpl");
        let template = fs::read_to_string(&template_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", template_path.display()));
        assert!(template.contains("__HTTP_ENDPOINT__"), "{} has no __HTTP_ENDPOINT__", template_path.display());

        // The port is free when picked but could be taken before the collector
        // binds it (another test picking the same one): then try another.
        let mut failures = Vec::new();
        for _attempt in 0..3 {
            let port = free_port();
            let dir = unique_temp_dir();
            let config_path = dir.join("otelcol.yaml");
            let stderr_path = dir.join("otelcol.stderr");
            fs::write(&config_path, template.replace("__HTTP_ENDPOINT__", &format!("127.0.0.1:{port}")))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", config_path.display()));
            let stderr = fs::File::create(&stderr_path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
            let child = Command::new(&binary)
                .arg(format!("--config={}", config_path.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start the collector {}: {e}", binary.display()));
            let mut collector = Collector { child, port, dir, stderr_path };
            match collector.wait_ready() {
                Ok(()) => return collector,
                Err(why) => {
                    let output = collector.output();
                    let port_taken = output.contains("address already in use");
                    failures.push(format!("port {port}: {why}\n--- collector stderr ---\n{output}"));
                    drop(collector);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!("the OpenTelemetry Collector did not start:\n{}", failures.join("\n"));
    }

    /// Ready = still running, its own log says so, and the port takes connections.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("the collector exited early with {status}"));
            }
            if self.output().contains(READY_LOG)
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not accepting connections on {addr} after {READY_TIMEOUT:?}"));
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
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if spans.len() >= n {
                return spans;
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let why = match exited {
                    Some(status) => format!("the collector exited with {status}"),
                    None => format!("timed out after {timeout:?}"),
                };
                panic!(
                    "expected at least {n} spans from the collector, parsed {} ({why})\n\
                     --- collector stderr ---\n{}",
                    spans.len(),
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
    let script = repo_root().join("scripts/install-collector.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({}); the collector is required for this test.\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        script.display(),
        out.status
    );
    let path = stdout.lines().rev().find(|l| !l.trim().is_empty()).map(|l| PathBuf::from(l.trim()));
    match path {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "{} printed no collector binary path as its last line.\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            script.display()
        ),
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn unique_temp_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "polytel-collector-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
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

/// If `line` is the first line of a trace dump (`<ts>\tinfo\tResourceSpans #0`).
fn is_dump_start(line: &str) -> bool {
    let body = line.rsplit('\t').next().unwrap_or(line);
    body.starts_with("ResourceSpans #") && (line.contains('\t') || line.starts_with("ResourceSpans #"))
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
    let lines: Vec<&str> = text.lines().collect();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if is_dump_start(lines[i]) {
            match lines[i + 1..].iter().position(|l| l.starts_with(DUMP_END)) {
                Some(len) => {
                    spans.extend(parse_dump(&lines[i + 1..i + 1 + len]));
                    i += len + 2;
                    continue;
                }
                None => break,
            }
        }
        i += 1;
    }
    spans
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
