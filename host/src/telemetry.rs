//! `Telemetry`: one configured pipeline in this process. The application's
//! threads only append finished span, measurement and log records to a
//! buffer; a background worker ships the buffer to the core in one call per
//! batch and signal, asks the core what to export, sends it over HTTP or gRPC
//! outside any lock, and reports the outcome back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};
use polytel_core::ids::{next_span_id, next_trace_id, GAMMA};
use polytel_core::pipeline::Signal;
use polytel_core::sampler::SamplerPlan;
use serde::Deserialize;

use crate::grpc::GrpcSender;
use crate::http::Sender;
use crate::logs::{LogBuilder, Severity};
use crate::metrics::{InstrumentBuilder, Observers};
use crate::options::{Clock, Options};
use crate::prometheus::PrometheusServer;
use crate::runtime::{wit, CoreInstance};
use crate::span::{SpanBuilder, SpanContext};

/// What the core told the host to apply on its hot path.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Plan {
    pub disabled: bool,
    #[serde(deserialize_with = "sampler_plan")]
    pub sampler: SamplerPlan,
    pub max_batch: usize,
    pub max_queue: usize,
    pub traces: bool,
    pub metrics: bool,
    pub logs: bool,
    pub prometheus: Option<String>,
    /// The user opted in to GenAI content capture.
    pub genai_capture: bool,
}

fn sampler_plan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<SamplerPlan, D::Error> {
    #[derive(Deserialize)]
    struct Raw {
        parent_based: bool,
        root_bound: String,
    }
    let raw = Raw::deserialize(d)?;
    let root_bound = raw.root_bound.parse().map_err(serde::de::Error::custom)?;
    Ok(SamplerPlan { parent_based: raw.parent_based, root_bound })
}

/// The core instance and what is needed to rebuild it after a trap.
struct Core {
    instance: CoreInstance,
    config_json: String,
    component: &'static [u8],
    memory_limit: usize,
    /// Items lost because the core trapped while holding them.
    lost_to_traps: u64,
    /// Every instrument registration, in order: a fresh instance after a trap
    /// gets them again, so instrument ids stay valid.
    registrations: Vec<String>,
}

impl Core {
    /// Runs `f` on the instance; if the core traps, instantiates it afresh so
    /// later calls work, and counts what was lost.
    fn call<T>(&mut self, lost_if_trap: u64, f: impl FnOnce(&mut CoreInstance) -> Result<T>) -> Result<T> {
        match f(&mut self.instance) {
            Ok(v) => Ok(v),
            Err(trap) => {
                // What the trapped instance had queued cannot be read any more.
                self.lost_to_traps += lost_if_trap;
                eprintln!(
                    "polytel: the telemetry core failed ({trap:#}); starting it afresh. Queued telemetry was lost."
                );
                match CoreInstance::create_with(&self.config_json, self.component, self.memory_limit)? {
                    Ok(fresh) => self.instance = fresh,
                    Err(e) => return Err(anyhow!(e)),
                }
                for r in &self.registrations {
                    self.instance.register_instrument(r)?;
                }
                Err(trap)
            }
        }
    }
}

/// Records waiting for the worker, per signal.
#[derive(Default)]
struct Records {
    spans: Vec<String>,
    metrics: Vec<String>,
    logs: Vec<String>,
}

impl Records {
    fn of(&mut self, signal: Signal) -> &mut Vec<String> {
        match signal {
            Signal::Traces => &mut self.spans,
            Signal::Metrics => &mut self.metrics,
            Signal::Logs => &mut self.logs,
        }
    }

    fn longest(&self) -> usize {
        self.spans.len().max(self.metrics.len()).max(self.logs.len())
    }

    fn count(&self) -> usize {
        self.spans.len() + self.metrics.len() + self.logs.len()
    }
}

#[derive(Default)]
struct Buffer {
    records: Records,
    /// Records refused because the buffer of their signal was full.
    dropped: [u64; 3],
    /// Flush requests made and completed; a flush waits for `done >= asked`.
    flush_asked: u64,
    flush_done: u64,
    stop: bool,
    /// The shipper moved a full batch into the core: the worker should poll.
    shipped: bool,
}

pub(crate) struct Shared {
    pub(crate) plan: Plan,
    core: Mutex<Core>,
    buffer: Mutex<Buffer>,
    /// Wakes the worker (new records, flush, stop).
    wake: Condvar,
    /// Wakes flushers when a flush completes.
    flushed: Condvar,
    id_state: AtomicU64,
    clock: Option<Clock>,
    pub(crate) observers: Observers,
}

impl Shared {
    pub(crate) fn now(&self) -> u64 {
        match &self.clock {
            Some(c) => c(),
            None => system_now(),
        }
    }

    /// splitmix64 draws without a lock: each caller claims one state step.
    fn draw_state(&self, steps: u64) -> u64 {
        self.id_state.fetch_add(GAMMA.wrapping_mul(steps), Ordering::Relaxed)
    }

    pub(crate) fn next_span_id(&self) -> [u8; 8] {
        next_span_id(&mut self.draw_state(1))
    }

    pub(crate) fn next_trace_id(&self) -> [u8; 16] {
        next_trace_id(&mut self.draw_state(2))
    }

    pub(crate) fn enqueue(&self, signal: Signal, record: String) {
        let mut b = lock(&self.buffer);
        let records = b.records.of(signal);
        if records.len() >= self.plan.max_queue {
            b.dropped[signal as usize] += 1;
            return;
        }
        records.push(record);
        // Once per batch: a wake-up is a system call, and the worker checks the
        // buffer's length itself before it sleeps again.
        if records.len() == self.plan.max_batch {
            self.wake.notify_all();
        }
    }

    /// Registers an instrument with the core; its id for measurement records.
    pub(crate) fn register_instrument(&self, json: String) -> Result<u32> {
        let mut core = lock(&self.core);
        let id = core.call(0, |c| c.register_instrument(&json))?;
        core.registrations.push(json);
        Ok(id)
    }

    /// Hands every buffered record to the core. Taken while the caller holds
    /// the core's lock, so records reach the core in the order they ended,
    /// whichever thread ships them.
    fn ship_buffered(&self, core: &mut Core) -> Result<()> {
        let records = std::mem::take(&mut lock(&self.buffer).records);
        ship(core, &records)
    }

    /// Ships buffered measurements, and what the observable instruments
    /// observe now, to the core.
    fn ship_measurements(&self, core: &mut Core) -> Result<()> {
        let buffered = std::mem::take(&mut lock(&self.buffer).records.metrics);
        let observed = self.observers.observe();
        ship(core, &Records { metrics: buffered, ..Default::default() })?;
        ship(core, &Records { metrics: observed, ..Default::default() })
    }

    /// What a Prometheus scrape reads: current metrics as text.
    pub(crate) fn scrape(&self, format: wit::MetricsFormat) -> Result<wit::RenderedMetrics> {
        let mut core = lock(&self.core);
        // GenAI operations' metrics come from their spans: everything buffered goes first.
        self.ship_buffered(&mut core)?;
        self.ship_measurements(&mut core)?;
        core.call(0, |c| c.render_metrics(format, self.now()))
    }
}

fn system_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take telemetry down with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Upstream context read from incoming headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    pub parent: Option<SpanContext>,
    pub baggage: Vec<(String, String)>,
}

/// What shutdown could not deliver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Spans still queued or pending at the deadline, now dropped.
    pub abandoned: u64,
    /// Whether the final flush finished before the deadline.
    pub flushed: bool,
}

/// One configured telemetry pipeline. Cheap to clone; all clones share it.
#[derive(Clone)]
pub struct Telemetry {
    shared: Arc<Shared>,
    worker: Arc<Mutex<Option<JoinHandle<()>>>>,
    prometheus: Arc<Mutex<Option<PrometheusServer>>>,
}

impl Telemetry {
    /// Configures a pipeline and starts its export worker. Fails with the
    /// core's one-sentence reason on a bad configuration.
    pub fn configure(options: Options) -> Result<Telemetry> {
        let seed = options.seed.unwrap_or_else(random_seed);
        let config_json = options.core_config(seed)?;
        let memory_limit = options.core_memory_limit.unwrap_or(crate::runtime::DEFAULT_MEMORY_LIMIT);
        let component = options.core_component.unwrap_or(crate::runtime::COMPONENT);
        let mut instance = CoreInstance::create_with(&config_json, component, memory_limit)?.map_err(|e| anyhow!(e))?;
        let plan: Plan = serde_json::from_str(&instance.plan()?)?;
        let shared = Arc::new(Shared {
            plan,
            core: Mutex::new(Core {
                instance,
                config_json,
                component,
                memory_limit,
                lost_to_traps: 0,
                registrations: Vec::new(),
            }),
            buffer: Mutex::new(Buffer::default()),
            wake: Condvar::new(),
            flushed: Condvar::new(),
            id_state: AtomicU64::new(seed),
            clock: options.clock.clone(),
            observers: Observers::default(),
        });
        let prometheus = match &shared.plan.prometheus {
            Some(listen) => Some(PrometheusServer::start(listen, shared.clone())?),
            None => None,
        };
        // Disabled, nothing is ever buffered or exported: no worker, no polling.
        let handle = if shared.plan.disabled {
            None
        } else {
            let worker_shared = shared.clone();
            let shipper_shared = shared.clone();
            std::thread::Builder::new()
                .name("polytel-ship".into())
                .spawn(move || ship_full_batches(&shipper_shared))?;
            Some(
                std::thread::Builder::new()
                    .name("polytel-export".into())
                    .spawn(move || Worker::new(worker_shared).run())?,
            )
        };
        Ok(Telemetry { shared, worker: Arc::new(Mutex::new(handle)), prometheus: Arc::new(Mutex::new(prometheus)) })
    }

    /// A builder for a new span (a root unless given a parent).
    pub fn span(&self, name: impl Into<String>) -> SpanBuilder {
        SpanBuilder::new(&self.shared, name)
    }

    /// A monotonic counter: `add` takes non-negative increments.
    pub fn counter(&self, name: impl Into<String>) -> InstrumentBuilder<crate::Counter> {
        InstrumentBuilder::new(self.shared.clone(), name.into())
    }

    /// A counter that goes up and down (queue depth, active sessions).
    pub fn up_down_counter(&self, name: impl Into<String>) -> InstrumentBuilder<crate::UpDownCounter> {
        InstrumentBuilder::new(self.shared.clone(), name.into())
    }

    /// A distribution of values (durations, token counts), in explicit buckets unless told otherwise.
    pub fn histogram(&self, name: impl Into<String>) -> InstrumentBuilder<crate::Histogram> {
        InstrumentBuilder::new(self.shared.clone(), name.into())
    }

    /// The last value recorded wins.
    pub fn gauge(&self, name: impl Into<String>) -> InstrumentBuilder<crate::Gauge> {
        InstrumentBuilder::new(self.shared.clone(), name.into())
    }

    /// A counter whose running total a callback reports at each collection.
    pub fn observable_counter(&self, name: impl Into<String>) -> InstrumentBuilder<crate::ObservableCounter> {
        InstrumentBuilder::new(self.shared.clone(), name.into())
    }

    /// An up-down counter whose current value a callback reports at each collection.
    pub fn observable_up_down_counter(
        &self,
        name: impl Into<String>,
    ) -> InstrumentBuilder<crate::ObservableUpDownCounter> {
        InstrumentBuilder::new(self.shared.clone(), name.into())
    }

    /// A gauge whose value a callback reports at each collection.
    pub fn observable_gauge(&self, name: impl Into<String>) -> InstrumentBuilder<crate::ObservableGauge> {
        InstrumentBuilder::new(self.shared.clone(), name.into())
    }

    /// A log record of `severity` with `message` as its body; `emit` sends it.
    pub fn log(&self, severity: Severity, message: impl Into<String>) -> LogBuilder {
        LogBuilder::new(&self.shared, severity, message)
    }

    /// Where /metrics is served, with the prometheus exporter.
    pub fn prometheus_addr(&self) -> Option<std::net::SocketAddr> {
        lock(&self.prometheus).as_ref().map(PrometheusServer::addr)
    }

    /// Where each signal goes, as the core describes it (secrets masked).
    pub fn describe(&self) -> Result<String> {
        lock(&self.shared.core).call(0, |c| c.describe())
    }

    /// The core's counters as JSON, with the host's own under "host". The
    /// buffered records go to the core first, so "operations" counts every
    /// GenAI operation that has ended.
    pub fn stats(&self) -> Result<serde_json::Value> {
        let (core_json, lost) = {
            let mut core = lock(&self.shared.core);
            self.shared.ship_buffered(&mut core)?;
            let json = core.call(0, |c| c.stats())?;
            (json, core.lost_to_traps)
        };
        let mut stats: serde_json::Value = serde_json::from_str(&core_json)?;
        let buffered = lock(&self.shared.buffer);
        let [spans, metrics, logs] = buffered.dropped;
        stats["host"] = serde_json::json!({
            "buffered": buffered.records.count(),
            "buffer_dropped": {"spans": spans, "metrics": metrics, "logs": logs},
            "lost_to_traps": lost,
        });
        Ok(stats)
    }

    /// Reads W3C trace context and baggage from incoming headers.
    pub fn extract<'a>(&self, headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Extracted> {
        let map: serde_json::Map<String, serde_json::Value> = headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), serde_json::Value::String(v.to_owned())))
            .collect();
        let json = lock(&self.shared.core).call(0, |c| c.extract(&serde_json::Value::Object(map).to_string()))?;
        let ctx: polytel_core::propagation::Context = serde_json::from_str(&json)?;
        let parent = match (
            polytel_core::ids::parse_hex_id::<16>(&ctx.trace_id),
            polytel_core::ids::parse_hex_id::<8>(&ctx.span_id),
        ) {
            (Some(trace_id), Some(span_id)) => Some(SpanContext {
                trace_id,
                span_id,
                sampled: ctx.flags & 1 == 1,
                remote: true,
                trace_state: ctx.trace_state,
            }),
            _ => None,
        };
        Ok(Extracted { parent, baggage: ctx.baggage })
    }

    /// The headers that carry `ctx` (and `baggage`) to a downstream service.
    pub fn inject(&self, ctx: &SpanContext, baggage: &[(String, String)]) -> Result<Vec<(String, String)>> {
        let wire = polytel_core::propagation::Context {
            trace_id: ctx.trace_id_hex(),
            span_id: ctx.span_id_hex(),
            flags: ctx.sampled as u8,
            trace_state: ctx.trace_state.clone(),
            baggage: baggage.to_vec(),
        };
        let json = lock(&self.shared.core)
            .call(0, |c| c.inject(&serde_json::to_string(&wire).expect("context serialises")))?;
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json)?;
        Ok(map.into_iter().filter_map(|(k, v)| Some((k, v.as_str()?.to_owned()))).collect())
    }

    /// Exports everything recorded so far; returns whether that finished in time.
    pub fn force_flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut b = lock(&self.shared.buffer);
        if b.stop || self.shared.plan.disabled {
            return true;
        }
        b.flush_asked += 1;
        let ticket = b.flush_asked;
        self.shared.wake.notify_all();
        while b.flush_done < ticket {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            b = self.shared.flushed.wait_timeout(b, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        true
    }

    /// Flushes within `timeout`, then stops the worker and drops (counting)
    /// whatever could not be delivered. Safe to call more than once.
    pub fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        let flushed = self.force_flush(timeout);
        {
            let mut b = lock(&self.shared.buffer);
            if b.stop {
                return ShutdownReport { abandoned: 0, flushed };
            }
            b.stop = true;
            self.shared.wake.notify_all();
        }
        // A scrape after shutdown would find nothing; stop serving first.
        lock(&self.prometheus).take();
        let abandoned = lock(&self.shared.core).call(0, |c| c.abandon()).unwrap_or(0);
        let left_in_buffer = std::mem::take(&mut lock(&self.shared.buffer).records).count() as u64;
        // The worker exits at its next wake-up; if it is inside a hung request it
        // finishes on its own once the request times out.
        if flushed {
            if let Some(h) = lock(&self.worker).take() {
                let _ = h.join();
            }
        }
        ShutdownReport { abandoned: abandoned + left_in_buffer, flushed }
    }
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: the clock still makes ids differ between processes.
        return system_now() ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_le_bytes(bytes)
}

/// The export loop.
struct Worker {
    shared: Arc<Shared>,
    sender: Sender,
    grpc: GrpcSender,
    next_poll: Option<Instant>,
    /// The flush being worked on: it is done once the core holds nothing
    /// more to send (or the worker stops; flushers time out on their own).
    flushing: Option<u64>,
}

/// How a cycle's last poll left the core.
struct Cycled {
    delivered: usize,
    outstanding: u64,
}

impl Worker {
    fn new(shared: Arc<Shared>) -> Worker {
        Worker { shared, sender: Sender::new(), grpc: GrpcSender::new(), next_poll: None, flushing: None }
    }

    fn run(mut self) {
        loop {
            let (new_flush, stop) = self.wait();
            // Only a flush's first poll asks for one: it sends every queued
            // item and collects metrics; later polls settle the retries.
            let ticket = new_flush.or(self.flushing);
            let cycled = self.cycle(new_flush.is_some());
            if let Some(ticket) = ticket {
                if stop || (cycled.delivered == 0 && cycled.outstanding == 0) {
                    self.flushing = None;
                    let mut b = lock(&self.shared.buffer);
                    b.flush_done = b.flush_done.max(ticket);
                    self.shared.flushed.notify_all();
                } else {
                    self.flushing = Some(ticket);
                }
            }
            // After delivering, poll again at once: the outcomes may have made
            // something due now (a split's halves, a Retry-After: 0), and the
            // next poll time was computed before them.
            if cycled.delivered > 0 {
                self.next_poll = Some(Instant::now());
            }
            if stop {
                return;
            }
        }
    }

    /// Sleeps until there is a batch, a flush, a stop or the core's next poll time.
    fn wait(&mut self) -> (Option<u64>, bool) {
        let mut b = lock(&self.shared.buffer);
        loop {
            // A flush already being worked on waits for its retries' times.
            let flush = b.flush_asked > self.flushing.unwrap_or(b.flush_done);
            let due = self.next_poll.is_none_or(|t| Instant::now() >= t);
            if b.stop || flush || due || b.shipped || b.records.longest() >= self.shared.plan.max_batch {
                b.shipped = false;
                return (flush.then_some(b.flush_asked), b.stop);
            }
            let left = self.next_poll.map_or(Duration::from_secs(1), |t| t.saturating_duration_since(Instant::now()));
            b = self.shared.wake.wait_timeout(b, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    fn cycle(&mut self, flush: bool) -> Cycled {
        let polled = {
            let mut core = lock(&self.shared.core);
            self.shared.ship_buffered(&mut core).and_then(|_| core.call(0, |c| c.poll(self.shared.now(), flush)))
        };
        let Ok(mut result) = polled else {
            self.next_poll = Some(Instant::now() + Duration::from_secs(1));
            return Cycled { delivered: 0, outstanding: 1 };
        };
        let mut delivered = 0;
        // A collection is due: observe, then the next poll collects. Once at
        // most, so a core that keeps asking cannot hold the worker.
        for round in 0..2 {
            for w in &result.warnings {
                eprintln!("polytel: {w}");
            }
            for export in std::mem::take(&mut result.exports) {
                self.deliver(export);
                delivered += 1;
            }
            if !result.observe || round == 1 {
                break;
            }
            let polled = {
                let mut core = lock(&self.shared.core);
                self.shared
                    .ship_measurements(&mut core)
                    .and_then(|_| core.call(0, |c| c.poll(self.shared.now(), flush)))
            };
            match polled {
                Ok(r) => result = r,
                Err(_) => break,
            }
        }
        // The core's times are the configured clock's, so the wait is measured on it too.
        let wait_ns = result.next_poll.saturating_sub(self.shared.now());
        self.next_poll = Some(Instant::now() + Duration::from_nanos(wait_ns));
        Cycled { delivered, outstanding: result.outstanding }
    }

    fn deliver(&mut self, export: wit::Export) {
        let outcome = match &export.destination {
            wit::Destination::Stdout => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(export.body.as_bytes());
                let _ = out.flush();
                return;
            }
            wit::Destination::Http(req) => self.sender.send(req, &export.body),
            wit::Destination::Grpc(req) => self.grpc.send(req, &export.body),
        };
        let mut core = lock(&self.shared.core);
        let _ = core.call(u64::from(export.items), |c| c.report(export.id, &outcome, self.shared.now()));
    }
}

/// Moves full batches from the buffer into the core while the export worker
/// is busy, e.g. waiting on a request that hangs: the core's bounded queues
/// then take them, and aggregate measurements in constant memory, instead of
/// the buffer overflowing. Exits when the telemetry stops.
fn ship_full_batches(shared: &Shared) {
    loop {
        {
            let mut b = lock(&shared.buffer);
            while !b.stop && b.records.longest() < shared.plan.max_batch {
                b = shared.wake.wait(b).unwrap_or_else(|p| p.into_inner());
            }
            if b.stop {
                return;
            }
        }
        let mut core = lock(&shared.core);
        let _ = shared.ship_buffered(&mut core);
        drop(core);
        lock(&shared.buffer).shipped = true;
        shared.wake.notify_all();
    }
}

/// Hands the buffered records to the core, one call per signal.
fn ship(core: &mut Core, records: &Records) -> Result<()> {
    for (signal, batch) in
        [(Signal::Traces, &records.spans), (Signal::Metrics, &records.metrics), (Signal::Logs, &records.logs)]
    {
        if !batch.is_empty() {
            core.call(batch.len() as u64, |c| c.record(signal, &join_records(batch)))?;
        }
    }
    Ok(())
}

/// A JSON array of already-serialised records.
fn join_records(records: &[String]) -> String {
    let mut batch = String::with_capacity(records.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
    batch.push('[');
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            batch.push(',');
        }
        batch.push_str(r);
    }
    batch.push(']');
    batch
}

/// For the C ABI (`capi.rs`), whose callers write records in the batch JSON
/// of `wit/polytel.wit` themselves and apply the plan on their own hot path.
impl Telemetry {
    /// The core's plan JSON, verbatim.
    pub(crate) fn plan_json(&self) -> Result<String> {
        lock(&self.shared.core).call(0, |c| c.plan())
    }

    /// Registers an instrument from its `register-instrument` JSON.
    pub(crate) fn register_instrument_json(&self, json: String) -> Result<u32> {
        self.shared.register_instrument(json)
    }

    /// Appends records, each already batch JSON, to the buffer under one lock,
    /// as `Shared::enqueue` does one by one. A signal that goes nowhere (or
    /// disabled or shut-down telemetry, which has no worker) takes nothing,
    /// except spans: with traces going nowhere a binding still sends its GenAI
    /// operations, for their metrics and summary.
    pub(crate) fn enqueue_records(&self, signal: Signal, records: Vec<String>) {
        let plan = &self.shared.plan;
        let wanted = match signal {
            Signal::Traces => true,
            Signal::Metrics => plan.metrics,
            Signal::Logs => plan.logs,
        };
        if plan.disabled || !wanted || records.is_empty() {
            return;
        }
        let mut b = lock(&self.shared.buffer);
        if b.stop {
            // Shut down: no worker will ship them.
            return;
        }
        let list = b.records.of(signal);
        let before = list.len();
        let room = plan.max_queue.saturating_sub(before);
        let offered = records.len();
        list.extend(records.into_iter().take(room));
        let after = list.len();
        b.dropped[signal as usize] += (offered - (after - before)) as u64;
        // As `enqueue`: wake the worker once the buffer holds a batch.
        if before < plan.max_batch && after >= plan.max_batch {
            self.shared.wake.notify_all();
        }
    }
}
