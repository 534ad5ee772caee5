//! The `polytel` command: `receive`, `demo`, `check`, `component`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use polytel::receiver::{Received, Receiver};
use polytel::runtime::CoreInstance;
use polytel::{Options, Telemetry};
use polytel_core::console::{render_logs, render_metrics, render_traces};
use polytel_core::ids::to_hex;
use polytel_core::jsonl::{attributes_json, log_lines};
use polytel_core::proto::tonic::trace::v1::ResourceSpans;

const USAGE: &str = "\
usage: polytel <command> [options]

commands:
  receive [--listen 127.0.0.1:4318] [--json]
        a local OTLP/HTTP receiver that prints what arrives (trace trees, metrics,
        log lines), or with --json one JSON object per span, request or log record
  demo [--pace N] [--prometheus-listen HOST:PORT] [BACKEND OPTIONS]
        runs a sample agent workload and prints what a receiver got; with --preset
        (or OTEL_EXPORTER_OTLP_ENDPOINT, POLYTEL_BACKEND or other OTEL_* settings),
        sends it there instead; with --prometheus-listen, then serves its metrics at
        /metrics until interrupted
  fault-receiver [--listen 127.0.0.1:0] [--script JSON]
        a misbehaving OTLP/HTTP receiver for failure tests, scripted per request
        (see host/src/faults.rs); prints its base URL, then serves GET /stats and
        PUT /script until killed
  check [BACKEND OPTIONS] [--service-name S] [--json]
        prints where each signal would go (URL, protocol, encoding, temporality,
        masked headers) without sending; fails on a bad configuration

backend options (each also comes from the environment, as the README lists):
  --preset NAME        a backend: otlp, honeycomb, sentry, datadog, grafana-cloud, ...
                       (comma-separated for several; --backend is the same)
  --set NAME=VALUE     a backend setting, such as honeycomb_api_key=... or sentry_dsn=...
  --endpoint URL       the backend's base URL (/v1/<signal> is appended)
  --protocol P         http/protobuf, http/json or grpc
  --compression C      gzip or none
  --header NAME=VALUE  an extra header for OTLP requests
  --config FILE        a TOML file of the same settings (default: $POLYTEL_CONFIG)
  component --out FILE [--edge]
        writes the core component (for packaging the bindings); with --edge,
        the self-exporting flavour for wasi:http runtimes (examples/edge)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("receive") => receive(&args[1..]),
        Some("demo") => demo(&args[1..]),
        Some("check") => check(&args[1..]),
        Some("fault-receiver") => fault_receiver(&args[1..]),
        Some("component") => component(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("polytel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` flags; repeated flags keep every value.
struct Flags(Vec<(String, Option<String>)>);

impl Flags {
    fn parse(args: &[String], with_value: &[&str], switches: &[&str]) -> Result<Flags> {
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let name = a.as_str();
            if switches.contains(&name) {
                out.push((name.to_owned(), None));
            } else if with_value.contains(&name) {
                let v = it.next().ok_or_else(|| anyhow!("{name} needs a value"))?;
                out.push((name.to_owned(), Some(v.clone())));
            } else {
                bail!("unknown option {name:?}; see `polytel --help`");
            }
        }
        Ok(Flags(out))
    }
    fn value(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, _)| n == name).filter_map(|(_, v)| v.as_deref())
    }
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
}

fn fault_receiver(args: &[String]) -> Result<()> {
    let flags = Flags::parse(args, &["--listen", "--script"], &[])?;
    let script = match flags.value("--script") {
        Some(json) => serde_json::from_str(json).map_err(|e| anyhow!("--script is not a valid script: {e}"))?,
        None => polytel::faults::Script::default(),
    };
    let receiver = polytel::faults::FaultReceiver::start(flags.value("--listen").unwrap_or("127.0.0.1:0"), script)?;
    println!("{}", receiver.endpoint());
    std::io::Write::flush(&mut std::io::stdout())?;
    loop {
        std::thread::park();
    }
}

fn receive(args: &[String]) -> Result<()> {
    let flags = Flags::parse(args, &["--listen"], &["--json"])?;
    let listen = flags.value("--listen").unwrap_or("127.0.0.1:4318").to_owned();
    let json = flags.has("--json");
    let receiver = Receiver::start(&listen, move |r| print_received(&r, json))?;
    eprintln!("polytel: receiving OTLP/HTTP at {}/v1/traces (Ctrl-C to stop)", receiver.endpoint());
    loop {
        std::thread::park();
    }
}

fn print_received(r: &Received, json: bool) {
    use std::io::Write;
    let text = match (json, &r.traces, &r.metrics, &r.logs) {
        (false, Some(t), ..) => render_traces(&t.resource_spans),
        (false, _, Some(m), _) => render_metrics(&m.resource_metrics),
        (false, .., Some(l)) => render_logs(&l.resource_logs),
        (true, Some(t), ..) => span_json_lines(&t.resource_spans).iter().map(|l| format!("{l}\n")).collect(),
        (true, _, Some(m), _) => format!("{}\n", polytel_core::otlp_json::metrics_request(m)),
        (true, .., Some(l)) => log_lines(&l.resource_logs),
        (false, None, None, None) => format!("{}: {} bytes (not an OTLP signal path)\n", r.path, r.body.len()),
        (true, None, None, None) => format!("{}\n", serde_json::json!({"path": r.path, "bytes": r.body.len()})),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// One JSON object per span, with its resource and scope.
fn span_json_lines(resource_spans: &[ResourceSpans]) -> Vec<String> {
    let mut lines = Vec::new();
    for rs in resource_spans {
        let resource = attributes_json(rs.resource.as_ref().map_or(&[][..], |r| &r.attributes));
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref().map(|s| serde_json::json!({"name": s.name, "version": s.version}));
            for s in &ss.spans {
                let status = s.status.as_ref().map(|st| serde_json::json!({"code": st.code, "message": st.message}));
                let events: Vec<_> = s
                    .events
                    .iter()
                    .map(|e| serde_json::json!({"name": e.name, "time": e.time_unix_nano, "attributes": attributes_json(&e.attributes)}))
                    .collect();
                let links: Vec<_> = s
                    .links
                    .iter()
                    .map(|l| serde_json::json!({"trace_id": to_hex(&l.trace_id), "span_id": to_hex(&l.span_id), "attributes": attributes_json(&l.attributes)}))
                    .collect();
                lines.push(
                    serde_json::json!({
                        "trace_id": to_hex(&s.trace_id),
                        "span_id": to_hex(&s.span_id),
                        "parent_span_id": to_hex(&s.parent_span_id),
                        "name": s.name,
                        "kind": s.kind,
                        "start": s.start_time_unix_nano,
                        "end": s.end_time_unix_nano,
                        "status": status,
                        "attributes": attributes_json(&s.attributes),
                        "events": events,
                        "links": links,
                        "scope": scope,
                        "resource": resource,
                    })
                    .to_string(),
                );
            }
        }
    }
    lines
}

fn env_names_destination() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "POLYTEL_BACKEND"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// The flags every command that configures a backend takes.
const BACKEND_FLAGS: &[&str] =
    &["--preset", "--backend", "--set", "--endpoint", "--protocol", "--compression", "--header", "--config"];

/// `NAME=VALUE` pairs of a repeated flag.
fn pairs<'a>(flags: &'a Flags, name: &'a str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in flags.values(name) {
        let (k, v) = pair.split_once('=').ok_or_else(|| anyhow!("{name} takes NAME=VALUE"))?;
        out.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(out)
}

/// Options from the backend flags; what they leave out comes from the environment.
fn backend_options(flags: &Flags) -> Result<Options> {
    let headers = pairs(flags, "--header")?;
    Ok(Options {
        backend: flags.value("--preset").or(flags.value("--backend")).map(Into::into),
        settings: pairs(flags, "--set")?,
        endpoint: flags.value("--endpoint").map(str::to_owned),
        protocol: flags.value("--protocol").map(str::to_owned),
        compression: flags.value("--compression").map(str::to_owned),
        config_file: flags.value("--config").map(str::to_owned),
        headers: (!headers.is_empty()).then_some(headers),
        ..Default::default()
    })
}

fn demo(args: &[String]) -> Result<()> {
    let flags = Flags::parse(args, &[&["--pace", "--prometheus-listen"], BACKEND_FLAGS].concat(), &[])?;
    let pace: f64 = match flags.value("--pace") {
        Some(p) => p.parse().map_err(|_| anyhow!("--pace takes a number, such as 0.1"))?,
        None => 0.2,
    };
    let prometheus = flags.value("--prometheus-listen").map(str::to_owned);
    let service = Some("polytel-demo".to_owned());
    let metrics_exporter = prometheus.as_ref().map(|_| "otlp,prometheus".to_owned());
    let options = backend_options(&flags)?;
    if options.backend.is_some() || options.endpoint.is_some() || env_names_destination() {
        let t = Telemetry::configure(Options {
            service_name: service,
            metrics_exporter,
            prometheus_listen: prometheus,
            ..options
        })?;
        println!("Sending the demo workload to:\n\n{}", plan_text(&t.describe()?)?);
        polytel::demo::run_agent_workload(&t, pace);
        let flushed = t.force_flush(Duration::from_secs(10));
        let stats = t.stats()?;
        println!("GenAI operations:\n{}\n{stats}", polytel::demo::operations_text(&stats));
        serve_prometheus(&t);
        let report = t.shutdown(Duration::from_secs(10));
        if !flushed || !report.flushed || report.abandoned > 0 {
            bail!("{} items could not be delivered before the deadline", report.abandoned);
        }
        return Ok(());
    }

    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = received.clone();
    let receiver = Receiver::start("127.0.0.1:0", move |r| sink.lock().expect("receiver lock").push(r))?;
    let t = Telemetry::configure(Options {
        service_name: service,
        backend: Some("otlp".into()),
        endpoint: Some(receiver.endpoint()),
        metrics_exporter,
        prometheus_listen: prometheus,
        env: Some(BTreeMap::new()),
        ..Default::default()
    })?;
    println!("polytel demo: a workflow running an agent that makes two LLM calls, three tool calls (one fails)");
    println!("and a memory lookup, through the GenAI operation API,");
    println!("exported over OTLP/HTTP to an in-process receiver at {}.\n", receiver.endpoint());
    polytel::demo::run_agent_workload(&t, pace);
    let flushed = t.force_flush(Duration::from_secs(10));
    let (spans, metrics, logs) = {
        let got = received.lock().expect("receiver lock");
        let count = |f: &dyn Fn(&Received) -> Option<usize>| got.iter().filter_map(f).sum::<usize>();
        let spans = count(&|r| Some(polytel_core::encode::Request::Traces(r.traces.clone()?).items()));
        let metrics = count(&|r| Some(polytel_core::encode::Request::Metrics(r.metrics.clone()?).items()));
        let logs = count(&|r| Some(polytel_core::encode::Request::Logs(r.logs.clone()?).items()));
        println!(
            "The receiver got {spans} spans, {metrics} metric data points and {logs} log records in {} request(s):\n",
            got.len()
        );
        for r in got.iter() {
            print_received(r, false);
        }
        (spans, metrics, logs)
    };
    let stats = t.stats()?;
    println!("GenAI operations (stats()[\"operations\"]):\n{}", polytel::demo::operations_text(&stats));
    println!("Core counters: {stats}");
    serve_prometheus(&t);
    let report = t.shutdown(Duration::from_secs(10));
    if !flushed || !report.flushed || spans == 0 || metrics == 0 || logs == 0 {
        bail!("the demo's telemetry did not all arrive");
    }
    Ok(())
}

/// With the prometheus exporter on, serves /metrics until the process is interrupted.
fn serve_prometheus(t: &Telemetry) {
    if let Some(addr) = t.prometheus_addr() {
        println!("\nServing the demo's metrics at http://{addr}/metrics (Ctrl-C to stop).");
        loop {
            std::thread::park();
        }
    }
}

fn check(args: &[String]) -> Result<()> {
    let flags = Flags::parse(args, &[&["--service-name"], BACKEND_FLAGS].concat(), &["--json"])?;
    let options =
        Options { service_name: flags.value("--service-name").map(str::to_owned), ..backend_options(&flags)? };
    let mut core = CoreInstance::create(&options.core_config(0)?)?.map_err(|e| anyhow!(e))?;
    let described = core.describe()?;
    if flags.has("--json") {
        println!("{described}");
    } else {
        print!("{}", plan_text(&described)?);
    }
    Ok(())
}

/// The core's description of where signals go, as text: per signal each
/// destination with its URL, protocol, encoding and masked headers.
fn plan_text(described: &str) -> Result<String> {
    use std::fmt::Write as _;
    let d: serde_json::Value = serde_json::from_str(described)?;
    let mut out = String::new();
    if d["disabled"].as_bool() == Some(true) {
        return Ok("disabled (OTEL_SDK_DISABLED or the option disabled): nothing is recorded or sent\n".into());
    }
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    for signal in ["traces", "metrics", "logs"] {
        let routes = d[signal].as_array().cloned().unwrap_or_default();
        if routes.is_empty() {
            writeln!(out, "{signal}: not sent")?;
        }
        for r in routes {
            match r["exporter"].as_str() {
                Some("otlp") => {
                    writeln!(out, "{signal} → {}", text(&r["backend"]))?;
                    writeln!(out, "  url          {}", text(&r["url"]))?;
                    writeln!(
                        out,
                        "  protocol     {} ({}), compression {}",
                        text(&r["protocol"]),
                        text(&r["content_type"]),
                        text(&r["compression"])
                    )?;
                    writeln!(
                        out,
                        "  limits       {} ms per request, {} bytes per request",
                        r["timeout_ms"], r["max_request_bytes"]
                    )?;
                    if let Some(headers) = r["headers"].as_object().filter(|h| !h.is_empty()) {
                        for (i, (name, value)) in headers.iter().enumerate() {
                            let label = if i == 0 { "headers" } else { "" };
                            writeln!(out, "  {label:<12} {name}: {}", text(value))?;
                        }
                    }
                }
                Some("prometheus") => writeln!(
                    out,
                    "{signal} → prometheus scrape endpoint at http://{}{}",
                    text(&r["listen"]),
                    text(&r["path"])
                )?,
                Some(other) => writeln!(out, "{signal} → {other} (standard output)")?,
                None => {}
            }
            if signal == "metrics" && r["exporter"].as_str() != Some("prometheus") {
                writeln!(
                    out,
                    "  temporality  {}, every {} ms",
                    text(&d["temporality"]),
                    d["metric_export_interval_ms"]
                )?;
            }
        }
    }
    let service = &d["resource"]["service.name"];
    writeln!(out, "service.name: {}", text(service))?;
    for w in d["warnings"].as_array().into_iter().flatten() {
        writeln!(out, "notice: {}", text(w))?;
    }
    Ok(out)
}

/// The edge flavour (world polytel-edge), built with the pure one by build.rs.
/// Only this command carries it: the library, and so every app, does not.
static EDGE_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/polytel-edge.wasm"));

fn component(args: &[String]) -> Result<()> {
    let flags = Flags::parse(args, &["--out"], &["--edge"])?;
    let out = flags.value("--out").ok_or_else(|| anyhow!("component needs --out FILE"))?;
    let (bytes, what) = if flags.has("--edge") {
        (EDGE_COMPONENT, "edge flavour of the core component")
    } else {
        (polytel::runtime::COMPONENT, "core component")
    };
    std::fs::write(out, bytes)?;
    eprintln!("polytel: wrote the {what} ({} bytes) to {out}", bytes.len());
    Ok(())
}
