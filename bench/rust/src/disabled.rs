//! Part 4: what telemetry costs when it is switched off. polytel with
//! OTEL_SDK_DISABLED=true against the official OpenTelemetry API with no SDK
//! installed (its global no-op tracer and meter, and its no-op logger), and
//! against an empty loop that only prepares the same arguments.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use opentelemetry::global::BoxedTracer;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, NoopLoggerProvider};
use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry::KeyValue;
use polytel::receiver::Receiver;
use polytel::{Options, Severity, Telemetry};

use crate::metrics::{duration, series};
use crate::{cpu_clock, median, min_max};

// ---------------------------------------------------------------- allocations

/// The global allocator, counting the allocations each thread makes (a
/// thread-local add, no atomics), so the table can show allocations per
/// operation on the measuring thread.
pub(crate) struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // During thread teardown the counter may be gone; that allocation is not ours.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

// ---------------------------------------------------------------- workloads

/// The operations measured, the same calls as parts 1 and 3 (and a log).
#[derive(Clone, Copy)]
enum Op {
    Span,
    Add,
    Record,
    Log,
}

impl Op {
    const ALL: [Op; 4] = [Op::Span, Op::Add, Op::Record, Op::Log];

    fn label(self) -> &'static str {
        match self {
            Op::Span => "span start + 4 attributes + end",
            Op::Add => "counter add, 3 attributes",
            Op::Record => "histogram record, 3 attributes",
            Op::Log => "log emit, 3 attributes",
        }
    }
}

/// The API's no-op logger (its type is not exported by name).
type NoopLogger = <NoopLoggerProvider as opentelemetry::logs::LoggerProvider>::Logger;

const SIDES: [&str; 3] = ["empty loop", "polytel disabled", "otel no-op API"];

/// Everything the three sides call.
struct Sides {
    polytel: Telemetry,
    counter: polytel::Counter,
    histogram: polytel::Histogram,
    tracer: BoxedTracer,
    otel_counter: Counter<f64>,
    otel_histogram: Histogram<f64>,
    logger: NoopLogger,
}

impl Sides {
    /// Runs `n` operations of `op` on side `side` (an index into SIDES).
    fn run(&self, side: usize, op: Op, n: usize) {
        match (side, op) {
            (0, _) => empty_loop(n),
            (1, Op::Span) => polytel_span(&self.polytel, n),
            (1, Op::Add) => polytel_add(&self.counter, n),
            (1, Op::Record) => polytel_record(&self.histogram, n),
            (1, Op::Log) => polytel_log(&self.polytel, n),
            (_, Op::Span) => otel_span(&self.tracer, n),
            (_, Op::Add) => otel_add(&self.otel_counter, n),
            (_, Op::Record) => otel_record(&self.otel_histogram, n),
            (_, Op::Log) => otel_log(&self.logger, n),
        }
    }
}

/// The loop alone: the same index, made opaque as in the workloads. What the
/// workloads cost over it includes preparing their arguments, unless the
/// compiler could drop that work because nothing reads them.
#[inline(never)]
fn empty_loop(n: usize) {
    for i in 0..n {
        black_box(i);
    }
}

#[inline(never)]
fn polytel_span(t: &Telemetry, n: usize) {
    for i in 0..n {
        let i = black_box(i);
        let mut s = t.span("GET /api/items").start();
        s.set_attribute("http.request.method", "GET");
        s.set_attribute("http.response.status_code", (200 + i % 300) as i64);
        s.set_attribute("server.duration_ms", 12.5f64);
        s.set_attribute("cache.hit", true);
        black_box(&s);
        s.end();
    }
}

#[inline(never)]
fn otel_span(tracer: &BoxedTracer, n: usize) {
    for i in 0..n {
        let i = black_box(i);
        let mut s = tracer.start("GET /api/items");
        s.set_attribute(KeyValue::new("http.request.method", "GET"));
        s.set_attribute(KeyValue::new("http.response.status_code", (200 + i % 300) as i64));
        s.set_attribute(KeyValue::new("server.duration_ms", 12.5f64));
        s.set_attribute(KeyValue::new("cache.hit", true));
        black_box(&s);
        s.end();
    }
}

#[inline(never)]
fn polytel_add(counter: &polytel::Counter, n: usize) {
    for i in 0..n {
        let (model, attempt, ok) = series(black_box(i));
        counter.add(1.0, &[("model", &model), ("attempt", &attempt), ("ok", &ok)]);
    }
}

#[inline(never)]
fn otel_add(counter: &Counter<f64>, n: usize) {
    for i in 0..n {
        let (model, attempt, ok) = series(black_box(i));
        counter.add(1.0, &[KeyValue::new("model", model), KeyValue::new("attempt", attempt), KeyValue::new("ok", ok)]);
    }
}

#[inline(never)]
fn polytel_record(histogram: &polytel::Histogram, n: usize) {
    for i in 0..n {
        let i = black_box(i);
        let (model, attempt, ok) = series(i);
        histogram.record(duration(i), &[("model", &model), ("attempt", &attempt), ("ok", &ok)]);
    }
}

#[inline(never)]
fn otel_record(histogram: &Histogram<f64>, n: usize) {
    for i in 0..n {
        let i = black_box(i);
        let (model, attempt, ok) = series(i);
        histogram.record(
            duration(i),
            &[KeyValue::new("model", model), KeyValue::new("attempt", attempt), KeyValue::new("ok", ok)],
        );
    }
}

#[inline(never)]
fn polytel_log(t: &Telemetry, n: usize) {
    for i in 0..n {
        let (model, attempt, ok) = series(black_box(i));
        t.log(Severity::Info, "tool call finished")
            .attribute("model", model)
            .attribute("attempt", attempt)
            .attribute("ok", ok)
            .emit();
    }
}

/// The logs API as a bridge would call it, without asking `event_enabled` first.
#[inline(never)]
fn otel_log(logger: &NoopLogger, n: usize) {
    for i in 0..n {
        let (model, attempt, ok) = series(black_box(i));
        let mut r = logger.create_log_record();
        r.set_severity_number(opentelemetry::logs::Severity::Info);
        r.set_severity_text("INFO");
        r.set_body("tool call finished".into());
        r.add_attribute("model", model);
        r.add_attribute("attempt", attempt);
        r.add_attribute("ok", ok);
        logger.emit(r);
    }
}

// ---------------------------------------------------------------- the run

/// One side's repetitions of one operation: ns/op (wall, thread CPU) and allocations/op.
#[derive(Default)]
struct Samples {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    allocations: Vec<f64>,
}

/// Times `n` operations on this thread.
fn measure(sides: &Sides, side: usize, op: Op, n: usize, into: &mut Samples) {
    let allocations0 = allocations();
    let cpu0 = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID);
    let start = Instant::now();
    sides.run(side, op, n);
    let wall = start.elapsed();
    let cpu = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID) - cpu0;
    into.wall.push(wall.as_nanos() as f64 / n as f64);
    into.cpu.push(cpu as f64 / n as f64);
    into.allocations.push((allocations() - allocations0) as f64 / n as f64);
}

/// Threads of this process named as polytel's export worker. A new thread
/// names itself once it runs, so this first gives any a moment to start.
fn export_workers() -> usize {
    std::thread::sleep(Duration::from_millis(100));
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim() == "polytel-export")
                .count()
        })
        .unwrap_or(0)
}

pub(crate) fn noop_cost(n: usize, reps: usize) -> Result<()> {
    println!(
        "== 4. no-op cost: polytel with OTEL_SDK_DISABLED=true vs the official API without an SDK \
         (global no-op tracer and meter, NoopLogger) vs an empty loop"
    );
    println!(
        "N={n} operations per repetition, {reps} repetitions (the three sides rotate), on this thread, \
         nothing exported; the empty loop only passes its index to black_box, as every workload does"
    );
    // Anything polytel sent would land here.
    let requests = Arc::new(AtomicU64::new(0));
    let seen = requests.clone();
    let receiver = Receiver::start("127.0.0.1:0", move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    })?;
    let workers_before = export_workers();
    let polytel = Telemetry::configure(Options {
        backend: Some("otlp".into()),
        endpoint: Some(receiver.endpoint()),
        traces_exporter: Some("otlp".into()),
        metrics_exporter: Some("otlp".into()),
        logs_exporter: Some("otlp".into()),
        env: Some([("OTEL_SDK_DISABLED".to_owned(), "true".to_owned())].into()),
        ..Default::default()
    })?;
    let workers = export_workers() - workers_before;
    let counter = polytel.counter("llm.calls").unit("{call}").build();
    let histogram = polytel.histogram("llm.duration").unit("s").build();
    let meter = opentelemetry::global::meter("polytel-bench");
    let sides = Sides {
        counter,
        histogram,
        tracer: opentelemetry::global::tracer("polytel-bench"),
        otel_counter: meter.f64_counter("llm.calls").with_unit("{call}").build(),
        otel_histogram: meter.f64_histogram("llm.duration").with_unit("s").build(),
        logger: NoopLoggerProvider::new().logger("polytel-bench"),
        polytel,
    };

    let mut results: Vec<(Op, [Samples; 3])> = Vec::new();
    for op in Op::ALL {
        let mut samples: [Samples; 3] = Default::default();
        let mut warm_up = Samples::default();
        for side in 0..3 {
            measure(&sides, side, op, n / 10, &mut warm_up);
        }
        for rep in 0..reps {
            for k in 0..3 {
                let side = (rep + k) % 3;
                measure(&sides, side, op, n, &mut samples[side]);
            }
        }
        println!("-- {}", op.label());
        for (name, s) in SIDES.iter().zip(&samples) {
            let reps: Vec<String> = s.wall.iter().map(|x| format!("{x:.1}")).collect();
            println!(
                "{name:<16}: wall ns/op per repetition {}; allocations/op {}",
                reps.join(" "),
                one_value(&s.allocations)
            );
        }
        results.push((op, samples));
    }

    // Nothing may have reached the core, the buffer or the receiver.
    sides.polytel.force_flush(Duration::from_secs(5));
    let report = sides.polytel.shutdown(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let stats = sides.polytel.stats()?;
    let received: Vec<String> =
        ["spans", "metrics", "logs"].iter().map(|s| format!("{s} {}", stats[s]["received"])).collect();
    let sent = requests.load(Ordering::SeqCst);
    println!(
        "check polytel: export worker threads started {workers}, requests at the receiver {sent}, \
         core received {}, host buffered {} and buffer_dropped {}, shutdown abandoned {}",
        received.join(", "),
        stats["host"]["buffered"],
        stats["host"]["buffer_dropped"],
        report.abandoned
    );
    let untouched = workers == 0
        && sent == 0
        && report.abandoned == 0
        && stats["host"]["buffered"] == 0
        && ["spans", "metrics", "logs"]
            .iter()
            .all(|s| stats[s]["received"] == 0 && stats["host"]["buffer_dropped"][s] == 0);

    println!();
    println!(
        "ns per operation: median over repetitions (min-max); \"over loop\" = median minus the empty loop's median; \
         allocs = heap allocations per operation on this thread"
    );
    println!(
        "{:<40} {:>16}  {:>16}  {:>16}  {:>9}  {:>9}  {:>12}  {:>14}",
        "", SIDES[0], SIDES[1], SIDES[2], "polytel", "otel", "polytel/otel", "allocs polytel"
    );
    println!(
        "{:<40} {:>16}  {:>16}  {:>16}  {:>9}  {:>9}  {:>12}  {:>14}",
        "", "", "", "", "over loop", "over loop", "", "/ otel"
    );
    for (what, pick) in [("wall", 0), ("CPU", 1)] {
        for (op, samples) in &results {
            let v = |s: &Samples| if pick == 0 { s.wall.clone() } else { s.cpu.clone() };
            let [base, poly, otel] = [0, 1, 2].map(|i| v(&samples[i]));
            let [mb, mp, mo] = [&base, &poly, &otel].map(|x| median(x.clone()));
            println!(
                "{:<40} {:>16}  {:>16}  {:>16}  {:>9.1}  {:>9.1}  {:>11.2}x  {:>14}",
                format!("{}, {what}", op.label()),
                spread1(&base),
                spread1(&poly),
                spread1(&otel),
                mp - mb,
                mo - mb,
                mp / mo,
                format!("{} / {}", one_value(&samples[1].allocations), one_value(&samples[2].allocations)),
            );
        }
    }
    if !untouched {
        bail!("disabled polytel did some work: see the check line above");
    }
    Ok(())
}

/// "median (min-max)" with one decimal: these are a few nanoseconds.
fn spread1(v: &[f64]) -> String {
    let (lo, hi) = min_max(v);
    format!("{:.1} ({lo:.1}-{hi:.1})", median(v.to_vec()))
}

/// Allocations per operation: the same in every repetition, or the range.
fn one_value(v: &[f64]) -> String {
    let (lo, hi) = min_max(v);
    if format!("{lo:.2}") == format!("{hi:.2}") {
        format!("{lo:.2}")
    } else {
        format!("{lo:.2}-{hi:.2}")
    }
}
