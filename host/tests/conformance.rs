//! Replays tests/conformance/scenarios through the Rust API and compares the
//! export bodies with the golden files (see tests/conformance/README.md).
//! `POLYTEL_UPDATE_GOLDEN=1` rewrites the golden files instead.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polytel::receiver::{Received, Receiver};
use polytel::{
    AttributeValue, Counter, Gauge, Histogram, Operation, Operations, Options, Severity, Span, SpanContext, SpanKind,
    Status, Telemetry, UpDownCounter, Usage, Value,
};
use polytel_core::attributes::{parse_attributes, AttributeLimits};
use polytel_core::proto::tonic::common::v1::{any_value, AnyValue};
use serde::Deserialize;
use serde_json::value::RawValue;

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    #[allow(dead_code)]
    description: String,
    options: Options,
    env: BTreeMap<String, String>,
    seed: String,
    clock: ClockSpec,
    steps: Vec<Box<RawValue>>,
}

#[derive(Deserialize)]
struct ClockSpec {
    start: String,
    step: String,
}

/// One step; which action it is follows from the member present.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Step {
    start: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    parent: Option<String>,
    remote_parent: Option<BTreeMap<String, String>>,
    attributes: Option<Box<RawValue>>,
    links: Option<Vec<LinkSpec>>,
    set_attribute: Option<String>,
    key: Option<String>,
    value: Option<Box<RawValue>>,
    add_event: Option<String>,
    record_exception: Option<String>,
    #[serde(rename = "type")]
    exception_type: Option<String>,
    message: Option<String>,
    stacktrace: Option<String>,
    set_status: Option<String>,
    code: Option<String>,
    end: Option<String>,
    inject: Option<String>,
    instrument: Option<String>,
    unit: Option<String>,
    description: Option<String>,
    boundaries: Option<Vec<f64>>,
    add: Option<String>,
    record: Option<String>,
    span: Option<String>,
    log: Option<String>,
    event_name: Option<String>,
    llm_call: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    operation: Option<String>,
    agent: Option<String>,
    tool: Option<String>,
    workflow: Option<String>,
    memory: Option<String>,
    store: Option<String>,
    usage: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    response_model: Option<String>,
    cost: Option<String>,
    usd: Option<f64>,
    capture: Option<String>,
    input: Option<Box<RawValue>>,
    output: Option<Box<RawValue>>,
    stats: Option<bool>,
}

/// A GenAI operation step's kind, name and provider: which `Operations` call starts it.
fn operation_start(s: &Step) -> Option<(&String, &str, &str, &str)> {
    let name = || s.name.as_deref().expect("name");
    if let Some(id) = &s.llm_call {
        return Some((
            id,
            s.operation.as_deref().unwrap_or("chat"),
            s.model.as_deref().expect("model"),
            s.provider.as_deref().expect("provider"),
        ));
    }
    if let Some(id) = &s.memory {
        return Some((id, s.operation.as_deref().expect("operation"), s.store.as_deref().expect("store"), ""));
    }
    [(&s.agent, "invoke_agent"), (&s.tool, "execute_tool"), (&s.workflow, "invoke_workflow")]
        .into_iter()
        .find_map(|(id, op)| id.as_ref().map(|id| (id, op, name(), "")))
}

/// One attribute value of the batch JSON, as the API's `Value`.
fn one_value(raw: &RawValue) -> Value {
    let wrapped = RawValue::from_string(format!("{{\"v\":{}}}", raw.get())).unwrap();
    attributes(Some(&wrapped)).into_iter().next().unwrap().1
}

/// A registered instrument of a scenario.
enum Instrument {
    Counter(Counter),
    UpDownCounter(UpDownCounter),
    Histogram(Histogram),
    Gauge(Gauge),
}

fn severity(name: &str) -> Severity {
    match name {
        "trace" => Severity::Trace,
        "debug" => Severity::Debug,
        "info" => Severity::Info,
        "warn" => Severity::Warn,
        "error" => Severity::Error,
        "fatal" => Severity::Fatal,
        other => panic!("unknown severity {other}"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkSpec {
    to: String,
    attributes: Option<Box<RawValue>>,
}

/// Attribute JSON (the WIT batch form) as Rust API values, in order.
fn attributes(raw: Option<&RawValue>) -> Vec<(String, Value)> {
    let Some(raw) = raw else { return Vec::new() };
    let parsed = parse_attributes(raw.get(), AttributeLimits::UNLIMITED).expect("scenario attributes");
    parsed.kept.into_iter().map(|kv| (kv.key, value(kv.value.expect("value")))).collect()
}

fn value(v: AnyValue) -> Value {
    match v.value.expect("a value") {
        any_value::Value::StringValue(s) => Value::String(s),
        any_value::Value::BoolValue(b) => Value::Bool(b),
        any_value::Value::IntValue(i) => Value::Int(i),
        any_value::Value::DoubleValue(d) => Value::Double(d),
        any_value::Value::BytesValue(b) => Value::Bytes(b),
        any_value::Value::ArrayValue(a) => Value::Array(a.values.into_iter().map(value).collect()),
        any_value::Value::KvlistValue(kv) => {
            Value::Map(kv.values.into_iter().map(|kv| (kv.key, value(kv.value.expect("value")))).collect())
        }
        other => panic!("unexpected value {other:?}"),
    }
}

fn kind(name: Option<&str>) -> SpanKind {
    match name.unwrap_or("internal") {
        "internal" => SpanKind::Internal,
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        other => panic!("unknown kind {other}"),
    }
}

/// What a scenario produced: export bodies, injected headers and operation summaries.
struct Outputs {
    exports: Vec<(String, Vec<u8>)>,
    injects: Vec<String>,
    operations: Vec<String>,
}

/// The started span or operation named `id`.
fn span_of<'a>(live: &'a mut HashMap<String, Span>, ops: &'a mut HashMap<String, Operation>, id: &str) -> &'a mut Span {
    match ops.get_mut(id) {
        Some(op) => op,
        None => live.get_mut(id).unwrap(),
    }
}

fn replay(scenario: Scenario) -> Outputs {
    let captured: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = captured.clone();
    let receiver = Receiver::start("127.0.0.1:0", move |r| sink.lock().unwrap().push(r)).unwrap();
    let start: u64 = scenario.clock.start.parse().unwrap();
    let step: u64 = scenario.clock.step.parse().unwrap();
    let readings = Arc::new(AtomicU64::new(0));
    let mut options = scenario.options;
    options.endpoint = Some(receiver.endpoint());
    options.env = Some(scenario.env);
    // The golden resource must not depend on the machine the test runs on.
    options.host_facts = Some(serde_json::json!({}));
    options.seed = Some(scenario.seed.parse().unwrap());
    // The export worker's readings (its poll times) do not advance the clock:
    // how often it polls depends on the machine, and the steps' timestamps must not.
    options.clock = Some(Arc::new(move || {
        let worker = std::thread::current().name() == Some("polytel-export");
        start + step * if worker { readings.load(Ordering::SeqCst) } else { readings.fetch_add(1, Ordering::SeqCst) }
    }));
    let t = Telemetry::configure(options).unwrap();

    let mut live: HashMap<String, Span> = HashMap::new();
    let mut ops: HashMap<String, Operation> = HashMap::new();
    let mut operations = Vec::new();
    let mut contexts: HashMap<String, SpanContext> = HashMap::new();
    let mut injects = Vec::new();
    let mut instruments: HashMap<String, Instrument> = HashMap::new();
    for raw in &scenario.steps {
        let s: Step = serde_json::from_str(raw.get()).unwrap_or_else(|e| panic!("step {}: {e}", raw.get()));
        if let Some((id, operation, name, provider)) = operation_start(&s) {
            let mut b = match s.parent.as_ref().and_then(|p| ops.get(p)) {
                Some(parent) => parent.operation(operation, name, provider),
                None => t.operation(operation, name, provider),
            };
            if let Some(p) = s.parent.as_ref().filter(|p| !ops.contains_key(*p)) {
                b = b.parent(&contexts[p]);
            }
            for (k, v) in attributes(s.attributes.as_deref()) {
                b = b.attribute(&k, v);
            }
            let op = b.start();
            contexts.insert(id.clone(), op.context().clone());
            ops.insert(id.clone(), op);
        } else if let Some(id) = &s.usage {
            ops.get_mut(id).unwrap().record_usage(Usage {
                input_tokens: s.input_tokens,
                output_tokens: s.output_tokens,
                cache_read_tokens: s.cache_read_tokens,
                cache_write_tokens: s.cache_write_tokens,
                reasoning_tokens: s.reasoning_tokens,
            });
        } else if let Some(id) = &s.response_model {
            ops.get_mut(id).unwrap().set_response_model(s.model.as_deref().expect("model"));
        } else if let Some(id) = &s.cost {
            ops.get_mut(id).unwrap().record_cost(s.usd.expect("usd"));
        } else if let Some(id) = &s.capture {
            let op = ops.get_mut(id).unwrap();
            if let Some(v) = s.input.as_deref() {
                op.record_input(one_value(v));
            }
            if let Some(v) = s.output.as_deref() {
                op.record_output(one_value(v));
            }
        } else if s.stats == Some(true) {
            operations.push(t.stats().unwrap()["operations"].to_string());
        } else if let Some(id) = &s.start {
            let mut b = t.span(s.name.clone().expect("name")).kind(kind(s.kind.as_deref()));
            if let Some(p) = &s.parent {
                b = b.parent(&contexts[p]);
            }
            if let Some(headers) = &s.remote_parent {
                let extracted = t.extract(headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
                b = b.parent(&extracted.parent.expect("a valid remote parent"));
            }
            for (k, v) in attributes(s.attributes.as_deref()) {
                b = b.attribute(&k, v);
            }
            for l in s.links.iter().flatten() {
                b = b.link(&contexts[&l.to], &attributes(l.attributes.as_deref()));
            }
            let span = b.start();
            contexts.insert(id.clone(), span.context().clone());
            live.insert(id.clone(), span);
        } else if let Some(id) = &s.set_attribute {
            span_of(&mut live, &mut ops, id).set_attribute(&s.key.unwrap(), one_value(s.value.as_deref().unwrap()));
        } else if let Some(id) = &s.add_event {
            span_of(&mut live, &mut ops, id).add_event(&s.name.unwrap(), &attributes(s.attributes.as_deref()));
        } else if let Some(id) = &s.record_exception {
            let span = span_of(&mut live, &mut ops, id);
            span.record_exception(
                &s.exception_type.unwrap(),
                &s.message.unwrap_or_default(),
                &s.stacktrace.unwrap_or_default(),
            );
        } else if let Some(id) = &s.set_status {
            let status = match s.code.as_deref() {
                Some("ok") => Status::Ok,
                Some("error") => Status::Error(s.message.unwrap_or_default()),
                other => panic!("unknown status {other:?}"),
            };
            span_of(&mut live, &mut ops, id).set_status(status);
        } else if let Some(id) = &s.end {
            match ops.remove(id) {
                Some(op) => op.end(),
                None => live.remove(id).unwrap().end(),
            }
        } else if let Some(id) = &s.inject {
            let headers: BTreeMap<String, String> = t.inject(&contexts[id], &[]).unwrap().into_iter().collect();
            injects.push(serde_json::to_string(&headers).unwrap());
        } else if let Some(id) = &s.instrument {
            let name = s.name.clone().expect("name");
            let (unit, description) = (s.unit.clone().unwrap_or_default(), s.description.clone().unwrap_or_default());
            let instrument = match s.kind.as_deref() {
                Some("counter") => Instrument::Counter(t.counter(name).unit(unit).description(description).build()),
                Some("up_down_counter") => {
                    Instrument::UpDownCounter(t.up_down_counter(name).unit(unit).description(description).build())
                }
                Some("histogram") => {
                    let mut b = t.histogram(name).unit(unit).description(description);
                    if let Some(bounds) = &s.boundaries {
                        b = b.boundaries(bounds);
                    }
                    Instrument::Histogram(b.build())
                }
                Some("gauge") => Instrument::Gauge(t.gauge(name).unit(unit).description(description).build()),
                other => panic!("unknown instrument kind {other:?}"),
            };
            instruments.insert(id.clone(), instrument);
        } else if let Some(id) = s.add.as_ref().or(s.record.as_ref()) {
            let v: f64 = serde_json::from_str(s.value.as_ref().expect("value").get()).expect("a number");
            let attrs = attributes(s.attributes.as_deref());
            let attrs: Vec<(&str, &dyn AttributeValue)> =
                attrs.iter().map(|(k, v)| (k.as_str(), v as &dyn AttributeValue)).collect();
            let span = s.span.as_ref().map(|sp| &contexts[sp]);
            match (&instruments[id], span) {
                (Instrument::Counter(c), None) => c.add(v, &attrs),
                (Instrument::Counter(c), Some(sp)) => c.add_in(sp, v, &attrs),
                (Instrument::UpDownCounter(c), _) => c.add(v, &attrs),
                (Instrument::Histogram(h), None) => h.record(v, &attrs),
                (Instrument::Histogram(h), Some(sp)) => h.record_in(sp, v, &attrs),
                (Instrument::Gauge(g), _) => g.record(v, &attrs),
            }
        } else if let Some(level) = &s.log {
            let mut b = t.log(severity(level), s.message.clone().unwrap_or_default());
            for (k, v) in attributes(s.attributes.as_deref()) {
                b = b.attribute(&k, v);
            }
            if let Some(sp) = &s.span {
                b = b.span(&contexts[sp]);
            }
            if let Some(e) = &s.event_name {
                b = b.event_name(e.clone());
            }
            b.emit();
        } else {
            panic!("unknown step {}", raw.get());
        }
    }
    let report = t.shutdown(Duration::from_secs(10));
    assert!(report.flushed && report.abandoned == 0, "{report:?}");
    let stats = t.stats().unwrap();
    for signal in ["spans", "metrics", "logs"] {
        assert_eq!(stats[signal]["dropped"], serde_json::json!({}), "nothing may be dropped: {stats}");
    }
    let exports = captured
        .lock()
        .unwrap()
        .iter()
        .map(|r| (if r.json { "json" } else { "pb" }.to_owned(), r.body.clone()))
        .collect();
    let outputs = Outputs { exports, injects, operations };
    assert!(!outputs.exports.is_empty(), "the scenario exported nothing");
    outputs
}

/// `may_update`: whether POLYTEL_UPDATE_GOLDEN lets this run rewrite the
/// golden files (only the embedded core's run does).
fn check(name: &str, out: Outputs, may_update: bool) {
    let golden = conformance_dir().join("golden").join(name);
    let mut files: Vec<(String, Vec<u8>)> =
        out.exports.into_iter().enumerate().map(|(i, (ext, body))| (format!("export-{i}.{ext}"), body)).collect();
    if !out.injects.is_empty() {
        files.push(("inject.json".into(), (out.injects.join("\n") + "\n").into_bytes()));
    }
    if !out.operations.is_empty() {
        files.push(("operations.json".into(), (out.operations.join("\n") + "\n").into_bytes()));
    }
    if may_update && std::env::var_os("POLYTEL_UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&golden);
        std::fs::create_dir_all(&golden).unwrap();
        for (file, bytes) in &files {
            std::fs::write(golden.join(file), bytes).unwrap();
        }
        return;
    }
    let mut expected: Vec<String> = std::fs::read_dir(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (generate with POLYTEL_UPDATE_GOLDEN=1)", golden.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    expected.sort();
    let mut got: Vec<String> = files.iter().map(|(f, _)| f.clone()).collect();
    got.sort();
    assert_eq!(got, expected, "{name}: the files produced differ from the golden ones");
    for (file, bytes) in files {
        let want = std::fs::read(golden.join(&file)).unwrap();
        if file == "operations.json" {
            let parse = |b: &[u8]| -> Vec<serde_json::Value> {
                String::from_utf8_lossy(b).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
            };
            assert_eq!(parse(&bytes), parse(&want), "{name}/{file}: differs from the golden file");
            continue;
        }
        assert!(bytes == want, "{name}/{file}: differs from the golden file ({} vs {} bytes)", bytes.len(), want.len());
    }
}

/// Every scenario, by name.
fn scenarios() -> Vec<(String, Scenario)> {
    let dir = conformance_dir().join("scenarios");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    assert!(paths.len() >= 4, "scenarios missing from {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let scenario: Scenario = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, scenario)
        })
        .collect()
}

#[test]
fn scenarios_match_golden_payloads() {
    for (name, scenario) in scenarios() {
        check(&name, replay(scenario), true);
    }
}

/// The edge flavour (world polytel-edge, built by build.rs next to the pure
/// core) sends its own exports in wasi:http runtimes. Given the same inputs,
/// its bodies must be the pure core's, byte for byte.
#[test]
fn edge_flavour_matches_golden_payloads() {
    static EDGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/polytel-edge.wasm"));
    assert!(EDGE != polytel::runtime::COMPONENT, "the edge flavour is the pure core's bytes");
    for (name, mut scenario) in scenarios() {
        scenario.options.core_component = Some(EDGE);
        check(&name, replay(scenario), false);
    }
}
