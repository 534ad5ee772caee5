//! polytel vs the official OpenTelemetry SDK for Rust (spans, then metrics),
//! the core as wasm vs native, and both switched off (polytel disabled vs the
//! official API's no-op). One run prints everything; see README.md for what
//! is measured.
//!
//!   cargo run --release -p polytel-bench
//!
//! Optional: BENCH_SPANS (spans per repetition, default 200000), BENCH_REPS
//! (repetitions, default 5), BENCH_ENCODE_ITERS (batches per encode
//! repetition, default 100), BENCH_MEASUREMENTS (counter adds and histogram
//! records per repetition, default 200000), BENCH_NOOP_OPS (operations per
//! repetition of the no-op part, default 2000000).

mod disabled;
mod hang;
mod metrics;

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use base64::Engine as _;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider};
use polytel::receiver::Receiver;
use polytel::runtime::{wit, CoreInstance};
use polytel::{Options, Telemetry};
use polytel_core::proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use polytel_core::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use polytel_core::proto::tonic::common::v1::{any_value, KeyValue as ProtoKeyValue};
use polytel_core::proto::tonic::metrics::v1::{metric, number_data_point};
use polytel_core::proto::tonic::resource::v1::Resource as ProtoResource;
use polytel_core::Pipeline;

/// Spans per export request, for both SDKs.
const BATCH: usize = 512;
/// The app-thread record loop is timed in chunks of this many spans.
const CHUNK: usize = 10_000;
const POLYTEL_SERVICE: &str = "bench-polytel";
const OTEL_SERVICE: &str = "bench-otel";

/// Counts allocations per thread, for the no-op part (a thread-local add per allocation).
#[global_allocator]
static ALLOCATOR: disabled::CountingAllocator = disabled::CountingAllocator;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> Result<()> {
    let spans = env_usize("BENCH_SPANS", 200_000).max(CHUNK) / CHUNK * CHUNK;
    let reps = env_usize("BENCH_REPS", 5).max(1);
    let encode_iters = env_usize("BENCH_ENCODE_ITERS", 100).max(1);
    let measurements = env_usize("BENCH_MEASUREMENTS", 200_000).max(CHUNK) / CHUNK * CHUNK;
    let noop_ops = env_usize("BENCH_NOOP_OPS", 2_000_000).max(1000);
    print_machine();
    if let Some((k, _)) = std::env::vars().find(|(k, _)| k.starts_with("OTEL_")) {
        println!("WARNING: {k} is set; the official SDK reads OTEL_* variables (polytel is given an empty env).");
    }
    println!();
    // BENCH_PARTS=3,5 runs only those parts.
    let parts = std::env::var("BENCH_PARTS").unwrap_or_default();
    let part = |n: &str| parts.is_empty() || parts.split(',').any(|p| p.trim() == n);
    if part("1") {
        span_cost(spans, reps)?;
        println!();
    }
    if part("2") {
        encode_throughput(encode_iters, 7)?;
        println!();
    }
    if part("3") {
        metrics::measurement_cost(measurements, reps)?;
        println!();
    }
    if part("4") {
        disabled::noop_cost(noop_ops, 9)?;
        println!();
    }
    if part("5") {
        hang::hang_cost(env_usize("BENCH_HANG_CALLS", 100_000).max(1000))?;
        println!();
    }
    println!("load average at end (1/5/15 min): {}", loadavg());
    Ok(())
}

// ---------------------------------------------------------------- machine

fn print_machine() {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("== polytel-bench");
    println!("machine: nproc={nproc}, cpu: {cpu}");
    println!("load average at start (1/5/15 min): {}", loadavg());
    println!("versions: {}", env!("BENCH_LOCKED_VERSIONS"));
    println!(
        "compiler: {}, profile: {}",
        env!("BENCH_RUSTC_VERSION"),
        if cfg!(debug_assertions) { "debug (numbers meaningless)" } else { "release" }
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_clock(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time of the whole process (every thread), in ns.
fn process_cpu_ns() -> u64 {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

// ---------------------------------------------------------------- the sink

#[derive(Default)]
struct Counts {
    /// Spans and requests per service.name, as decoded by the sink.
    spans: BTreeMap<String, u64>,
    requests: BTreeMap<String, u64>,
    /// The latest cumulative point per (service.name, metric, attributes):
    /// its time and its value (a sum's value, a histogram's count).
    points: BTreeMap<(String, String, String), (u64, f64)>,
}

impl Counts {
    fn add_spans(&mut self, req: &ExportTraceServiceRequest) {
        let mut per_service: BTreeMap<String, u64> = BTreeMap::new();
        for rs in &req.resource_spans {
            let n: usize = rs.scope_spans.iter().map(|ss| ss.spans.len()).sum();
            *per_service.entry(service_name(rs.resource.as_ref())).or_default() += n as u64;
        }
        for (service, n) in per_service {
            *self.requests.entry(service.clone()).or_default() += 1;
            *self.spans.entry(service).or_default() += n;
        }
    }

    fn add_metrics(&mut self, req: &ExportMetricsServiceRequest) {
        let mut services = std::collections::BTreeSet::new();
        for rm in &req.resource_metrics {
            let service = service_name(rm.resource.as_ref());
            for m in rm.scope_metrics.iter().flat_map(|sm| &sm.metrics) {
                for (time, attributes, value) in data_points(m.data.as_ref()) {
                    let key = (service.clone(), m.name.clone(), series_key(attributes));
                    let latest = self.points.entry(key).or_insert((time, value));
                    if time >= latest.0 {
                        *latest = (time, value);
                    }
                }
            }
            services.insert(service);
        }
        for service in services {
            *self.requests.entry(service).or_default() += 1;
        }
    }

    /// The latest values of `metric`'s series from `service`: (their sum, how many series).
    fn metric_total(&self, service: &str, metric: &str) -> (f64, usize) {
        self.points
            .iter()
            .filter(|((s, m, _), _)| s == service && m == metric)
            .fold((0.0, 0), |(sum, n), (_, (_, value))| (sum + value, n + 1))
    }
}

fn service_name(resource: Option<&ProtoResource>) -> String {
    resource
        .and_then(|res| res.attributes.iter().find(|kv| kv.key == "service.name"))
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The points of a sum or histogram: (time, attributes, value or count).
fn data_points(data: Option<&metric::Data>) -> Vec<(u64, &[ProtoKeyValue], f64)> {
    match data {
        Some(metric::Data::Sum(sum)) => sum
            .data_points
            .iter()
            .map(|p| {
                let value = match p.value {
                    Some(number_data_point::Value::AsDouble(v)) => v,
                    Some(number_data_point::Value::AsInt(v)) => v as f64,
                    None => 0.0,
                };
                (p.time_unix_nano, &p.attributes[..], value)
            })
            .collect(),
        Some(metric::Data::Histogram(h)) => {
            h.data_points.iter().map(|p| (p.time_unix_nano, &p.attributes[..], p.count as f64)).collect()
        }
        _ => Vec::new(),
    }
}

/// A series' identity: its attributes in key order.
fn series_key(attributes: &[ProtoKeyValue]) -> String {
    let mut pairs: Vec<String> = attributes
        .iter()
        .map(|kv| format!("{}={:?}", kv.key, kv.value.as_ref().and_then(|v| v.value.as_ref())))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// One local OTLP/HTTP receiver for both SDKs: decodes every request
/// (polytel's receiver: tiny_http + prost), counts spans per service and
/// keeps the latest cumulative metric points.
struct Sink {
    counts: Arc<(Mutex<Counts>, Condvar)>,
    /// The receiver thread's own CPU time as of its latest request, so it can
    /// be taken out of the process's CPU time.
    cpu_ns: Arc<AtomicU64>,
    receiver: Receiver,
}

impl Sink {
    fn start() -> Result<Sink> {
        let counts: Arc<(Mutex<Counts>, Condvar)> = Arc::default();
        let c = counts.clone();
        let cpu_ns = Arc::new(AtomicU64::new(0));
        let cpu = cpu_ns.clone();
        let receiver = Receiver::start("127.0.0.1:0", move |r| {
            let (lock, cv) = &*c;
            let mut counts = lock.lock().unwrap();
            if let Some(req) = &r.traces {
                counts.add_spans(req);
            }
            if let Some(req) = &r.metrics {
                counts.add_metrics(req);
            }
            cpu.store(cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID), Ordering::SeqCst);
            cv.notify_all();
        })?;
        Ok(Sink { counts, cpu_ns, receiver })
    }

    fn endpoint(&self) -> String {
        self.receiver.endpoint()
    }

    fn cpu_ns(&self) -> u64 {
        self.cpu_ns.load(Ordering::SeqCst)
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.0.lock().unwrap()
    }

    /// What the sink has decoded so far of `w`'s items.
    fn delivered(&self, w: &dyn Workload) -> u64 {
        w.delivered(&self.counts())
    }

    fn requests(&self, service: &str) -> u64 {
        self.counts().requests.get(service).copied().unwrap_or(0)
    }

    /// Waits until the sink has decoded at least `target` of `w`'s items.
    fn wait_for(&self, w: &dyn Workload, target: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.counts;
        let mut counts = lock.lock().unwrap();
        while w.delivered(&counts) < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            counts = cv.wait_timeout(counts, left).unwrap().0;
        }
        true
    }
}

// ---------------------------------------------------------------- comparisons

/// One side of a comparison: a workload on one SDK, and what the sink got of it.
trait Workload {
    /// "polytel" or "otel-sdk".
    fn name(&self) -> &'static str;
    /// The service.name its telemetry carries.
    fn service(&self) -> &'static str;
    /// What one item is: "span", "add", "record".
    fn unit(&self) -> &'static str;
    /// Records items `first..first + n` on this thread.
    fn record(&self, first: usize, n: usize);
    /// Asks the SDK to export everything it holds; says how that went.
    fn force_flush(&self) -> String;
    /// How many of its items `counts` shows delivered.
    fn delivered(&self, counts: &Counts) -> u64;
}

/// One repetition: record `n` items on this thread (timed in chunks), then
/// force_flush and wait until the sink has decoded all `n`.
struct Rep {
    record: Duration,
    /// CPU time of this (the app) thread while recording.
    record_cpu_ns: u64,
    chunks: Vec<Duration>,
    end_to_end: Duration,
    /// CPU time of every thread but the sink's, from the first item to the last delivery.
    cpu_ns: u64,
    delivered: u64,
    flush: String,
}

fn run_rep(w: &dyn Workload, sink: &Sink, n: usize) -> Result<Rep> {
    let before = sink.delivered(w);
    let mut chunks = Vec::with_capacity(n / CHUNK);
    let (cpu0, sink_cpu0) = (process_cpu_ns(), sink.cpu_ns());
    let start = Instant::now();
    let thread_cpu0 = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID);
    for k in 0..n / CHUNK {
        let t = Instant::now();
        w.record(k * CHUNK, CHUNK);
        chunks.push(t.elapsed());
    }
    let record = start.elapsed();
    let record_cpu_ns = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID) - thread_cpu0;
    let flush = w.force_flush();
    let complete = sink.wait_for(w, before + n as u64, Duration::from_secs(300));
    let end_to_end = start.elapsed();
    let cpu_ns = (process_cpu_ns() - cpu0).saturating_sub(sink.cpu_ns() - sink_cpu0);
    let delivered = sink.delivered(w) - before;
    if !complete {
        bail!("{}: the sink received only {delivered} of {n} {}s within 300 s (flush: {flush})", w.name(), w.unit());
    }
    Ok(Rep { record, record_cpu_ns, chunks, end_to_end, cpu_ns, delivered, flush })
}

/// Items in the warm-up before the repetitions of `n`: a tenth, whole chunks.
fn warmup(n: usize) -> usize {
    (n / 10).max(CHUNK) / CHUNK * CHUNK
}

/// A warm-up per side (delivered in full, not counted), then `reps`
/// repetitions of `n` items. The sides alternate and the order flips on
/// every repetition, so slow phases of a noisy machine affect both.
fn compare(sides: [&dyn Workload; 2], sink: &Sink, n: usize, reps: usize) -> Result<[Vec<Rep>; 2]> {
    for w in sides {
        let r = run_rep(w, sink, warmup(n))?;
        println!("warm-up {:<8}: {} {}s delivered", w.name(), r.delivered, w.unit());
    }
    let mut results = [Vec::new(), Vec::new()];
    for rep in 0..reps {
        let order: [usize; 2] = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let r = run_rep(sides[i], sink, n)?;
            print_rep(rep, sides[i], &r, n);
            results[i].push(r);
        }
    }
    Ok(results)
}

fn print_rep(rep: usize, w: &dyn Workload, r: &Rep, n: usize) {
    let unit = w.unit();
    println!(
        "rep {} {:<8}: app thread {:>7.1} ms ({:>5.0} ns/{unit}), end-to-end {:>7.1} ms ({:>5.0} ns/{unit}), \
         CPU {:>5.0} ns/{unit}, sink got {}/{n}, flush {}",
        rep + 1,
        w.name(),
        r.record.as_secs_f64() * 1e3,
        r.record.as_nanos() as f64 / n as f64,
        r.end_to_end.as_secs_f64() * 1e3,
        r.end_to_end.as_nanos() as f64 / n as f64,
        r.cpu_ns as f64 / n as f64,
        r.delivered,
        r.flush
    );
}

/// Prints whether the sink holds exactly `expected` of `w`'s items; returns whether it does.
fn account(w: &dyn Workload, sink: &Sink, expected: u64, how: &str, note: &str) -> bool {
    let got = sink.delivered(w);
    println!(
        "total {:<8}: sink decoded {got} {}s ({} requests from {}), expected {expected} ({how}): {}; {note}",
        w.name(),
        w.unit(),
        sink.requests(w.service()),
        w.service(),
        if got == expected { "none dropped, none duplicated" } else { "MISMATCH" },
    );
    got == expected
}

/// The rows of a summary table: per-item times of both sides, per repetition.
type Rows = Vec<(String, [Vec<f64>; 2])>;

fn summary_rows(results: &[Vec<Rep>; 2], n: usize, unit: &str) -> Rows {
    let per_rep = |f: &dyn Fn(&Rep) -> f64| -> [Vec<f64>; 2] { [0, 1].map(|i| results[i].iter().map(f).collect()) };
    let per_item = |ns: u128| ns as f64 / n as f64;
    let per_chunk = [0, 1]
        .map(|i| results[i].iter().flat_map(|r| r.chunks.iter().map(|d| d.as_nanos() as f64 / CHUNK as f64)).collect());
    vec![
        (format!("app thread, wall ns/{unit}"), per_rep(&|r| per_item(r.record.as_nanos()))),
        (format!("app thread, CPU ns/{unit}"), per_rep(&|r| per_item(u128::from(r.record_cpu_ns)))),
        (format!("app thread, wall ns/{unit} per 10k chunk"), per_chunk),
        ("end-to-end (record+flush+delivered), wall".into(), per_rep(&|r| per_item(r.end_to_end.as_nanos()))),
        ("end-to-end, CPU of all threads but sink".into(), per_rep(&|r| per_item(u128::from(r.cpu_ns)))),
    ]
}

fn print_summary(rows: &Rows, unit: &str) {
    println!(
        "ns per {unit}: median over repetitions (min-max); the 10k-chunk row is over all chunks of all repetitions"
    );
    println!("{:<42} {:>21}  {:>21}  polytel/otel", "", "polytel", "otel-sdk");
    let mut e2e = (0.0, 0.0);
    for (label, [a, b]) in rows {
        let (ma, mb) = (median(a.clone()), median(b.clone()));
        println!("{label:<42} {:>21}  {:>21}  {:>11.2}x", spread(a), spread(b), ma / mb);
        if label.starts_with("end-to-end (") {
            e2e = (ma, mb);
        }
    }
    println!(
        "{:<42} {:>21.0}  {:>21.0}  {:>11.2}x",
        format!("end-to-end throughput, {unit}s/s (median)"),
        1e9 / e2e.0,
        1e9 / e2e.1,
        e2e.1 / e2e.0
    );
}

// ---------------------------------------------------------------- part 1

/// The two SDKs under the same span workload.
enum Contender {
    Polytel(Telemetry),
    Otel { provider: SdkTracerProvider, tracer: SdkTracer },
}

impl Workload for Contender {
    fn name(&self) -> &'static str {
        match self {
            Contender::Polytel(_) => "polytel",
            Contender::Otel { .. } => "otel-sdk",
        }
    }

    fn service(&self) -> &'static str {
        match self {
            Contender::Polytel(_) => POLYTEL_SERVICE,
            Contender::Otel { .. } => OTEL_SERVICE,
        }
    }

    fn unit(&self) -> &'static str {
        "span"
    }

    /// The workload: start a span, set 4 attributes (string, int, double,
    /// bool), end it. `first` only varies the int attribute.
    #[inline(never)]
    fn record(&self, first: usize, n: usize) {
        match self {
            Contender::Polytel(t) => {
                for i in first..first + n {
                    let mut s = t.span("GET /api/items").start();
                    s.set_attribute("http.request.method", "GET");
                    s.set_attribute("http.response.status_code", (200 + i % 300) as i64);
                    s.set_attribute("server.duration_ms", 12.5f64);
                    s.set_attribute("cache.hit", true);
                    s.end();
                }
            }
            Contender::Otel { tracer, .. } => {
                for i in first..first + n {
                    let mut s = tracer.start("GET /api/items");
                    s.set_attribute(KeyValue::new("http.request.method", "GET"));
                    s.set_attribute(KeyValue::new("http.response.status_code", (200 + i % 300) as i64));
                    s.set_attribute(KeyValue::new("server.duration_ms", 12.5f64));
                    s.set_attribute(KeyValue::new("cache.hit", true));
                    s.end();
                }
            }
        }
    }

    fn force_flush(&self) -> String {
        match self {
            Contender::Polytel(t) => polytel_flush(t),
            // The SDK's force_flush waits at most 5 s (not configurable in 0.33)
            // but keeps exporting after that; delivery is judged by the sink.
            Contender::Otel { provider, .. } => outcome(provider.force_flush()),
        }
    }

    fn delivered(&self, counts: &Counts) -> u64 {
        counts.spans.get(self.service()).copied().unwrap_or(0)
    }
}

impl Contender {
    /// Shuts the SDK down; says how that went.
    fn shutdown(&self) -> Result<String> {
        Ok(match self {
            Contender::Polytel(t) => polytel_shutdown(t, "spans")?,
            Contender::Otel { provider, .. } => format!("shutdown: {}", outcome(provider.shutdown())),
        })
    }
}

fn polytel_flush(t: &Telemetry) -> String {
    if t.force_flush(Duration::from_secs(300)) {
        "ok".into()
    } else {
        "timed out".into()
    }
}

/// Shuts polytel down; returns the core's stats of `signal` ("spans",
/// "metrics") and what shutdown abandoned.
fn polytel_shutdown(t: &Telemetry, signal: &str) -> Result<String> {
    let report = t.shutdown(Duration::from_secs(60));
    let stats = t.stats()?;
    let s = &stats[signal];
    Ok(format!(
        "core stats: received {}, exported {}, dropped {}, host buffer_dropped {}; shutdown abandoned {}",
        s["received"], s["exported"], s["dropped"], stats["host"]["buffer_dropped"][signal], report.abandoned
    ))
}

/// "ok" or the SDK's error.
fn outcome(r: opentelemetry_sdk::error::OTelSdkResult) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

fn polytel_contender(sink: &Sink, queue: usize) -> Result<Contender> {
    let t = Telemetry::configure(Options {
        backend: Some("otlp".into()),
        endpoint: Some(sink.endpoint()),
        protocol: Some("http/protobuf".into()),
        compression: Some("none".into()),
        service_name: Some(POLYTEL_SERVICE.into()),
        max_queue_size: Some(queue as u64),
        max_export_batch_size: Some(BATCH as u64),
        schedule_delay_ms: Some(1000),
        env: Some(Default::default()),
        ..Default::default()
    })?;
    Ok(Contender::Polytel(t))
}

fn otel_contender(sink: &Sink, queue: usize) -> Result<Contender> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", sink.endpoint()))
        .with_timeout(Duration::from_secs(10))
        .build()?;
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(queue)
        .with_max_export_batch_size(BATCH)
        .with_scheduled_delay(Duration::from_millis(1000))
        .build();
    let processor = BatchSpanProcessor::builder(exporter).with_batch_config(config).build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(OTEL_SERVICE).build())
        .build();
    let tracer = provider.tracer("polytel-bench");
    Ok(Contender::Otel { provider, tracer })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// "median (min-max)" of `v`.
fn spread(v: &[f64]) -> String {
    let (lo, hi) = min_max(v);
    format!("{:.0} ({lo:.0}-{hi:.0})", median(v.to_vec()))
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

fn span_cost(n: usize, reps: usize) -> Result<()> {
    println!("== 1. per-span cost: start + 4 attributes (string, int, double, bool) + end, OTLP/HTTP protobuf");
    println!(
        "N={n} spans per repetition, {reps} repetitions (polytel and otel-sdk alternate), batch {BATCH}, \
         schedule delay 1000 ms, max queue = N for both (no pacing), no gzip, default sampler (parentbased_always_on) for both"
    );
    let sink = Sink::start()?;
    println!(
        "sink: polytel's receiver at {} (tiny_http, decodes every request, counts spans per service.name)",
        sink.endpoint()
    );
    let contenders = [polytel_contender(&sink, n)?, otel_contender(&sink, n)?];
    let results = compare([&contenders[0], &contenders[1]], &sink, n, reps)?;

    // Shut both down and account for every span.
    let expected = (warmup(n) + reps * n) as u64;
    let mut accounted = true;
    for c in &contenders {
        let note = c.shutdown()?;
        accounted &= account(c, &sink, expected, &format!("warm-up + {reps} x {n}"), &note);
    }
    println!();
    print_summary(&summary_rows(&results, n, "span"), "span");
    if !accounted {
        bail!("the sink did not receive exactly the spans recorded");
    }
    Ok(())
}

// ---------------------------------------------------------------- part 2

/// A batch of `n` span records (batch JSON of wit/polytel.wit): traces of 8
/// spans (a root and 7 children), 8 attributes each of mixed types.
fn span_batch(n: usize) -> String {
    let base: u64 = 1_750_000_000_000_000_000;
    let mut out = String::from("[");
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        let trace = i / 8;
        let root = (trace * 8) as u64 + 1;
        let span_id = i as u64 + 1;
        let parent = if i % 8 == 0 { String::new() } else { format!(r#","parent_span_id":"{root:016x}""#) };
        let start = base + i as u64 * 1_000;
        out.push_str(&format!(
            concat!(
                r#"{{"trace_id":"{trace:016x}{tlow:016x}","span_id":"{span_id:016x}"{parent},"#,
                r#""name":"GET /api/items/{{id}}","kind":{kind},"start":{start},"end":{end},"attributes":{{"#,
                r#""http.request.method":"GET","url.full":"https://api.example.com/v1/items/{i}?expand=owner","#,
                r#""http.response.status_code":200,"http.response.body.size":{size},"#,
                r#""server.duration_ms":{{"double":{dur}}},"cache.hit":{hit},"#,
                r#""user_agent.original":"Mozilla/5.0 (X11; Linux x86_64) bench/1.0","server.address":"db-{db}.internal""#,
                r#"}}}}"#
            ),
            trace = 0xabcdu64 + trace as u64,
            tlow = 0x1234_5678_9abc_def0u64 ^ trace as u64,
            span_id = span_id,
            parent = parent,
            kind = if i % 8 == 0 { 2 } else { 3 },
            start = start,
            end = start + 250_000 + (i as u64 % 17) * 1_000,
            i = i,
            size = 4096 + i,
            dur = 0.25 + (i % 100) as f64 * 0.5,
            hit = i % 3 == 0,
            db = i % 4,
        ));
    }
    out.push(']');
    out
}

fn config_json(gzip: bool) -> String {
    serde_json::json!({
        "options": {
            "backend": "otlp",
            "endpoint": "http://127.0.0.1:9",
            "protocol": "http/protobuf",
            "compression": if gzip { "gzip" } else { "none" },
            "max_queue_size": 100_000,
            "max_export_batch_size": BATCH,
        },
        "env": {},
        "seed": "1",
        "host": {"sdk_language": "rust"},
    })
    .to_string()
}

/// The same core behind two doors.
enum Core {
    Native(Box<Pipeline>),
    Wasm(Box<CoreInstance>),
}

const NOW: u64 = 1_750_000_100_000_000_000;

impl Core {
    /// record_spans + poll(now, flush=true), and a 200 reported for each
    /// export so nothing stays pending. Returns the export bodies (base64).
    fn cycle(&mut self, batch: &str, bodies: &mut Vec<String>) -> Result<()> {
        match self {
            Core::Native(p) => {
                p.record_spans(batch);
                let r = p.poll(NOW, true);
                let ok = polytel_core::delivery::Outcome::Response { status: 200, retry_after: None, body: Vec::new() };
                for e in r.exports {
                    p.report(e.id, &ok, NOW);
                    bodies.push(e.body);
                }
            }
            Core::Wasm(c) => {
                c.record_spans(batch)?;
                let r = c.poll(NOW, true)?;
                let ok = wit::Outcome::Response(wit::HttpResponse {
                    status: 200,
                    retry_after: None,
                    body: String::new(),
                    headers: Vec::new(),
                });
                for e in r.exports {
                    c.report(e.id, &ok, NOW)?;
                    bodies.push(e.body);
                }
            }
        }
        Ok(())
    }

    fn exported(&mut self) -> Result<u64> {
        let json = match self {
            Core::Native(p) => p.stats_json(),
            Core::Wasm(c) => c.stats()?,
        };
        let v: serde_json::Value = serde_json::from_str(&json)?;
        v["spans"]["exported"].as_u64().ok_or_else(|| anyhow!("no spans.exported in {json}"))
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.write(bytes);
    h.finish()
}

/// Decodes an export body (base64, maybe gzip) to the OTLP request.
fn decode_body(b64: &str, gzip: bool) -> Result<(Vec<u8>, ExportTraceServiceRequest)> {
    let raw = base64::engine::general_purpose::STANDARD.decode(b64)?;
    let plain = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        out
    } else {
        raw.clone()
    };
    Ok((raw, polytel::receiver::decode_traces(&plain, false)?))
}

fn encode_throughput(iters: usize, reps: usize) -> Result<()> {
    let batch = span_batch(BATCH);
    println!("== 2. core encode throughput: wasm component (wasmtime) vs the same code compiled natively");
    println!(
        "input: {BATCH} spans x 8 attributes (4 string, 2 int, 1 double, 1 bool) as one batch JSON text ({} bytes); \
         per cycle record_spans + poll(now, flush=true) + report(200); {iters} cycles per repetition, {reps} repetitions (native/wasm alternate)",
        batch.len()
    );
    let mut rows = Vec::new();
    for gzip in [false, true] {
        let label = if gzip { "protobuf + gzip" } else { "protobuf" };
        let config = config_json(gzip);
        let native = Core::Native(Box::new(Pipeline::from_json(&config).map_err(|e| anyhow!(e))?));
        let wasm = Core::Wasm(Box::new(CoreInstance::create(&config)?.map_err(|e| anyhow!(e))?));
        let mut cores = [native, wasm];

        // Equivalence check (also warms up): a few cycles on both, body by body.
        let mut bodies = [Vec::new(), Vec::new()];
        for _ in 0..3 {
            for (core, out) in cores.iter_mut().zip(bodies.iter_mut()) {
                core.cycle(&batch, out)?;
            }
        }
        let identical = bodies[0] == bodies[1] && bodies[0].len() == 3;
        let (raw, req) = decode_body(&bodies[0][0], gzip)?;
        let decoded_spans: usize = req.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        let attrs = req.resource_spans[0].scope_spans[0].spans[0].attributes.len();
        println!(
            "{label:<16}: export bodies native vs wasm byte-identical: {} ({} exports compared; body {} bytes, fnv1a {:016x}; \
             decodes to {decoded_spans} spans, {attrs} attributes on the first)",
            if identical { "YES" } else { "NO" },
            bodies[0].len(),
            raw.len(),
            fnv1a(&raw),
        );
        if !identical {
            bail!("native and wasm export bodies differ");
        }

        let mut rates = [Vec::new(), Vec::new()];
        let mut cpu_rates = [Vec::new(), Vec::new()];
        let mut sink = Vec::with_capacity(iters);
        for rep in 0..reps {
            let order: [usize; 2] = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                sink.clear();
                let t = Instant::now();
                let cpu0 = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID);
                for _ in 0..iters {
                    cores[i].cycle(&batch, &mut sink)?;
                }
                let secs = t.elapsed().as_secs_f64();
                let cpu_secs = (cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID) - cpu0) as f64 / 1e9;
                if sink.len() != iters {
                    bail!("expected one export per cycle, got {} for {iters}", sink.len());
                }
                rates[i].push((iters * BATCH) as f64 / secs);
                cpu_rates[i].push((iters * BATCH) as f64 / cpu_secs);
            }
        }
        // Still identical after the timed cycles?
        let mut after = [Vec::new(), Vec::new()];
        for (core, out) in cores.iter_mut().zip(after.iter_mut()) {
            core.cycle(&batch, out)?;
        }
        let still = after[0] == after[1] && after[0][0] == bodies[0][0];
        let exported = [cores[0].exported()?, cores[1].exported()?];
        let expected = ((3 + reps * iters + 1) * BATCH) as u64;
        println!(
            "{label:<16}: after timing: bodies still identical: {}; spans exported per core stats: native {}, wasm {} (expected {expected})",
            if still { "YES" } else { "NO" },
            exported[0],
            exported[1]
        );
        if !still || exported != [expected, expected] {
            bail!("the cores diverged or lost spans");
        }
        rows.push((format!("{label}, wall"), rates));
        rows.push((format!("{label}, CPU"), cpu_rates));
    }
    println!();
    println!("spans/s: median over repetitions (min-max); CPU = this thread's CPU time, less sensitive to other load");
    println!("{:<24} {:>25}  {:>25}  wasm/native  native ns/span  wasm ns/span", "", "native spans/s", "wasm spans/s");
    for (label, [n, w]) in &rows {
        let (mn, mw) = (median(n.clone()), median(w.clone()));
        println!(
            "{label:<24} {:>25}  {:>25}  {:>10.2}x  {:>14.0}  {:>12.0}",
            spread(n),
            spread(w),
            mw / mn,
            1e9 / mn,
            1e9 / mw
        );
    }
    Ok(())
}
