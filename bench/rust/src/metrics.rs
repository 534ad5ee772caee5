//! Part 3: a counter add and a histogram record, each with 3 attributes,
//! through polytel and through the official SDK's metrics.

use std::time::Duration;

use anyhow::{bail, Result};
use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use polytel::{Options, Telemetry};

use crate::{
    account, compare, outcome, polytel_flush, polytel_shutdown, print_summary, summary_rows, warmup, Counts, Sink,
    Workload, BATCH, OTEL_SERVICE, POLYTEL_SERVICE,
};

const COUNTER: &str = "llm.calls";
const HISTOGRAM: &str = "llm.duration";
/// Explicit bucket bounds in seconds, the same for both SDKs.
const BOUNDARIES: [f64; 14] = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const MODELS: [&str; 4] = ["gpt-4o", "claude-sonnet-4", "gemini-2.5-pro", "llama-3.1-70b"];
/// Both SDKs also export on their own every this often, besides force_flush.
const INTERVAL: Duration = Duration::from_millis(1000);

/// The attributes of measurement `i` (model, attempt, ok): 12 distinct sets, cycling.
pub(crate) fn series(i: usize) -> (&'static str, i64, bool) {
    (MODELS[i % MODELS.len()], (i % 3) as i64 + 1, i.is_multiple_of(2))
}

/// The value histogram measurement `i` records: 0.05 s to 2 s.
pub(crate) fn duration(i: usize) -> f64 {
    0.05 * (i % 40 + 1) as f64
}

/// What is measured: one operation on one instrument.
#[derive(Clone, Copy)]
enum Op {
    Add,
    Record,
}

impl Op {
    fn metric(self) -> &'static str {
        match self {
            Op::Add => COUNTER,
            Op::Record => HISTOGRAM,
        }
    }
}

/// One SDK's meter pipeline with its two instruments.
enum Meters {
    Polytel { telemetry: Telemetry, counter: polytel::Counter, histogram: polytel::Histogram },
    Otel { provider: SdkMeterProvider, counter: Counter<f64>, histogram: Histogram<f64> },
}

impl Meters {
    fn polytel(sink: &Sink, queue: usize) -> Result<Meters> {
        let telemetry = Telemetry::configure(Options {
            metrics_exporter: Some("otlp".into()),
            traces_exporter: Some("none".into()),
            logs_exporter: Some("none".into()),
            endpoint: Some(sink.endpoint()),
            protocol: Some("http/protobuf".into()),
            compression: Some("none".into()),
            service_name: Some(POLYTEL_SERVICE.into()),
            temporality: Some("cumulative".into()),
            metric_export_interval_ms: Some(INTERVAL.as_millis() as u64),
            max_queue_size: Some(queue as u64),
            max_export_batch_size: Some(BATCH as u64),
            env: Some(Default::default()),
            ..Default::default()
        })?;
        let counter = telemetry.counter(COUNTER).unit("{call}").build();
        let histogram = telemetry.histogram(HISTOGRAM).unit("s").boundaries(&BOUNDARIES).build();
        Ok(Meters::Polytel { telemetry, counter, histogram })
    }

    fn otel(sink: &Sink) -> Result<Meters> {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/metrics", sink.endpoint()))
            .with_timeout(Duration::from_secs(10))
            .with_temporality(Temporality::Cumulative)
            .build()?;
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter).with_interval(INTERVAL).build())
            .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(OTEL_SERVICE).build())
            .build();
        let meter = provider.meter("polytel-bench");
        let counter = meter.f64_counter(COUNTER).with_unit("{call}").build();
        let histogram = meter.f64_histogram(HISTOGRAM).with_unit("s").with_boundaries(BOUNDARIES.to_vec()).build();
        Ok(Meters::Otel { provider, counter, histogram })
    }

    fn name(&self) -> &'static str {
        match self {
            Meters::Polytel { .. } => "polytel",
            Meters::Otel { .. } => "otel-sdk",
        }
    }

    fn service(&self) -> &'static str {
        match self {
            Meters::Polytel { .. } => POLYTEL_SERVICE,
            Meters::Otel { .. } => OTEL_SERVICE,
        }
    }

    /// Shuts the pipeline down; says how that went.
    fn shutdown(&self) -> Result<String> {
        Ok(match self {
            Meters::Polytel { telemetry, .. } => polytel_shutdown(telemetry, "metrics")?,
            Meters::Otel { provider, .. } => format!("shutdown: {}", outcome(provider.shutdown())),
        })
    }
}

/// One operation on one SDK's instruments.
struct Measure<'a> {
    meters: &'a Meters,
    op: Op,
}

impl Workload for Measure<'_> {
    fn name(&self) -> &'static str {
        self.meters.name()
    }

    fn service(&self) -> &'static str {
        self.meters.service()
    }

    fn unit(&self) -> &'static str {
        match self.op {
            Op::Add => "add",
            Op::Record => "record",
        }
    }

    /// The workload: add 1 to the counter, or record a duration in the
    /// histogram, with a string, an int and a bool attribute.
    #[inline(never)]
    fn record(&self, first: usize, n: usize) {
        match (self.meters, self.op) {
            (Meters::Polytel { counter, .. }, Op::Add) => {
                for i in first..first + n {
                    let (model, attempt, ok) = series(i);
                    counter.add(1.0, &[("model", &model), ("attempt", &attempt), ("ok", &ok)]);
                }
            }
            (Meters::Polytel { histogram, .. }, Op::Record) => {
                for i in first..first + n {
                    let (model, attempt, ok) = series(i);
                    histogram.record(duration(i), &[("model", &model), ("attempt", &attempt), ("ok", &ok)]);
                }
            }
            (Meters::Otel { counter, .. }, Op::Add) => {
                for i in first..first + n {
                    let (model, attempt, ok) = series(i);
                    counter.add(
                        1.0,
                        &[KeyValue::new("model", model), KeyValue::new("attempt", attempt), KeyValue::new("ok", ok)],
                    );
                }
            }
            (Meters::Otel { histogram, .. }, Op::Record) => {
                for i in first..first + n {
                    let (model, attempt, ok) = series(i);
                    histogram.record(
                        duration(i),
                        &[KeyValue::new("model", model), KeyValue::new("attempt", attempt), KeyValue::new("ok", ok)],
                    );
                }
            }
        }
    }

    fn force_flush(&self) -> String {
        match self.meters {
            Meters::Polytel { telemetry, .. } => polytel_flush(telemetry),
            Meters::Otel { provider, .. } => outcome(provider.force_flush()),
        }
    }

    /// The counter's total, or the histogram's count, over all series.
    fn delivered(&self, counts: &Counts) -> u64 {
        counts.metric_total(self.service(), self.op.metric()).0.round() as u64
    }
}

pub(crate) fn measurement_cost(n: usize, reps: usize) -> Result<()> {
    println!(
        "== 3. per-measurement cost: counter add (1) and histogram record ({} explicit buckets), \
         3 attributes (string model, int attempt, bool ok; {} series), OTLP/HTTP protobuf",
        BOUNDARIES.len() + 1,
        distinct_series()
    );
    println!(
        "N={n} measurements per repetition and instrument, {reps} repetitions (polytel and otel-sdk alternate), \
         cumulative temporality, export interval {} ms plus force_flush, polytel: max queue = N and batch {BATCH} \
         (no drops), no gzip",
        INTERVAL.as_millis()
    );
    let sink = Sink::start()?;
    println!(
        "sink: polytel's receiver at {} (decodes every request, keeps the latest cumulative point per series)",
        sink.endpoint()
    );
    let sides = [Meters::polytel(&sink, n)?, Meters::otel(&sink)?];
    let mut tables = Vec::new();
    for op in [Op::Add, Op::Record] {
        let [a, b] = [0, 1].map(|i| Measure { meters: &sides[i], op });
        println!("-- {} {}", op.metric(), a.unit());
        tables.push((a.unit(), summary_rows(&compare([&a, &b], &sink, n, reps)?, n, a.unit())));
    }
    let accounted = account_all(&sides, &sink, (warmup(n) + reps * n) as u64, &format!("warm-up + {reps} x {n}"))?;
    for (unit, rows) in &tables {
        println!();
        print_summary(rows, unit);
    }
    if !accounted {
        bail!("the sink's totals do not match the measurements made");
    }
    Ok(())
}

/// How many attribute sets `series` cycles through.
fn distinct_series() -> usize {
    (0..1000).map(series).collect::<std::collections::BTreeSet<_>>().len()
}

/// Shuts both pipelines down and checks, per instrument, the sink's final
/// total against `expected` and its series count against `distinct_series`.
fn account_all(sides: &[Meters; 2], sink: &Sink, expected: u64, how: &str) -> Result<bool> {
    let mut ok = true;
    for meters in sides {
        let note = meters.shutdown()?;
        for op in [Op::Add, Op::Record] {
            let series = sink.counts().metric_total(meters.service(), op.metric()).1;
            ok &= series == distinct_series();
            let note = format!("{} {series} series; {note}", op.metric());
            ok &= account(&Measure { meters, op }, sink, expected, how, &note);
        }
    }
    Ok(ok)
}
