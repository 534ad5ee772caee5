//! The app's handle on its pipeline: configuration, sampling as the plan
//! says, a buffer of ended spans, context propagation and the flush.

use std::cell::RefCell;
use std::time::Duration;

use serde_json::{json, Map, Value as Json};

use crate::polytel::telemetry::{core, edge};
use crate::span::{SpanBuilder, SpanContext};

/// What a flush did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Export requests made, retries included.
    pub requests: u32,
    /// Items given up (and counted as dropped) because the timeout passed.
    pub abandoned: u64,
}

/// What `extract` read from a request's headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The remote parent, if a valid `traceparent` came.
    pub parent: Option<SpanContext>,
    pub baggage: Vec<(String, String)>,
}

/// The parts of the core's plan that this binding applies.
struct Plan {
    parent_based: bool,
    root_bound: u64,
    max_batch: usize,
}

/// One configured pipeline. Not `Sync`: a component instance is single-threaded;
/// keep it in a `thread_local!` so an instance the runtime reuses keeps it.
pub struct Telemetry {
    /// None when telemetry is disabled: every span is then a no-op.
    pipeline: Option<(core::Pipeline, Plan)>,
    ended: RefCell<Vec<Json>>,
}

impl Telemetry {
    /// Configures a pipeline from the environment (OTEL_*, POLYTEL_*), as
    /// every binding does. Fails with the core's one-sentence reason.
    pub fn from_env() -> Result<Telemetry, String> {
        Self::configure(json!({}))
    }

    /// Configures a pipeline from options with the names every binding uses
    /// (`backend`, `endpoint`, `service_name`, …), above the environment.
    pub fn configure(options: Json) -> Result<Telemetry, String> {
        let env: Map<String, Json> = std::env::vars().map(|(k, v)| (k, Json::String(v))).collect();
        // No seed: the edge flavour draws one from wasi:random.
        let config = json!({"options": options, "env": env, "host": {"sdk_language": "rust"}});
        let pipeline = core::Pipeline::create(&config.to_string())?;
        let plan: Json = serde_json::from_str(&pipeline.plan()).map_err(|e| format!("the core's plan: {e}"))?;
        if plan["disabled"] == json!(true) || plan["traces"] == json!(false) {
            return Ok(Self::disabled());
        }
        let plan = Plan {
            parent_based: plan["sampler"]["parent_based"].as_bool().unwrap_or(true),
            root_bound: plan["sampler"]["root_bound"].as_str().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX),
            max_batch: plan["max_batch"].as_u64().map_or(512, |n| n as usize),
        };
        Ok(Telemetry { pipeline: Some((pipeline, plan)), ended: RefCell::default() })
    }

    /// Telemetry that records nothing, for when configuration failed.
    pub fn disabled() -> Telemetry {
        Telemetry { pipeline: None, ended: RefCell::default() }
    }

    pub fn span(&self, name: impl Into<String>) -> SpanBuilder<'_> {
        SpanBuilder::new(self, name.into())
    }

    /// Reads W3C trace context and baggage from a request's headers.
    pub fn extract<'a>(&self, headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Extracted {
        let Some((pipeline, _)) = &self.pipeline else { return Extracted::default() };
        let map: Map<String, Json> =
            headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), Json::String(v.to_owned()))).collect();
        let ctx: Json = serde_json::from_str(&pipeline.extract(&Json::Object(map).to_string())).unwrap_or_default();
        let text = |k: &str| ctx[k].as_str().unwrap_or_default().to_owned();
        let baggage = ctx["baggage"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|kv| Some((kv[0].as_str()?.to_owned(), kv[1].as_str()?.to_owned())))
            .collect();
        let parent = (!text("trace_id").is_empty()).then(|| SpanContext {
            trace_id: text("trace_id"),
            span_id: text("span_id"),
            sampled: ctx["flags"].as_u64().unwrap_or(0) & 1 == 1,
            remote: true,
            trace_state: text("trace_state"),
        });
        Extracted { parent, baggage }
    }

    /// The headers that carry `ctx` (and `baggage`) to a downstream service.
    pub fn inject(&self, ctx: &SpanContext, baggage: &[(String, String)]) -> Vec<(String, String)> {
        let Some((pipeline, _)) = &self.pipeline else { return Vec::new() };
        let wire = json!({
            "trace_id": ctx.trace_id, "span_id": ctx.span_id, "flags": u8::from(ctx.sampled),
            "trace_state": ctx.trace_state, "baggage": baggage,
        });
        let headers: Map<String, Json> = serde_json::from_str(&pipeline.inject(&wire.to_string())).unwrap_or_default();
        headers.into_iter().filter_map(|(k, v)| Some((k, v.as_str()?.to_owned()))).collect()
    }

    /// Sends everything recorded so far, within `timeout` whatever the
    /// backend does; what is left then is dropped and counted. Warnings go
    /// to standard error, as the other bindings log them.
    pub fn flush(&self, timeout: Duration) -> FlushReport {
        let Some((pipeline, _)) = &self.pipeline else { return FlushReport::default() };
        self.ship(pipeline);
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let report = edge::flush(pipeline, ms);
        for warning in &report.warnings {
            eprintln!("polytel: {warning}");
        }
        FlushReport { requests: report.requests, abandoned: report.abandoned }
    }

    /// The core's counters (see `stats` in wit/polytel.wit), spans ended so far included.
    pub fn stats(&self) -> Json {
        let Some((pipeline, _)) = &self.pipeline else { return json!({}) };
        self.ship(pipeline);
        serde_json::from_str(&pipeline.stats()).unwrap_or_default()
    }

    /// Ended spans move into the core in batches.
    fn ship(&self, pipeline: &core::Pipeline) {
        let batch = std::mem::take(&mut *self.ended.borrow_mut());
        if !batch.is_empty() {
            pipeline.record_spans(&Json::Array(batch).to_string());
        }
    }

    pub(crate) fn ended(&self, record: Json) {
        let Some((pipeline, plan)) = &self.pipeline else { return };
        let full = {
            let mut ended = self.ended.borrow_mut();
            ended.push(record);
            ended.len() >= plan.max_batch
        };
        if full {
            self.ship(pipeline);
        }
    }

    /// Whether a span of `trace_id` is sampled: a child follows its parent
    /// when the sampler is parent-based; a root compares its trace id's low
    /// 64 bits, shifted right by one, with the plan's bound.
    pub(crate) fn sampled(&self, trace_id: &str, parent_sampled: Option<bool>) -> bool {
        let Some((_, plan)) = &self.pipeline else { return false };
        match parent_sampled {
            Some(sampled) if plan.parent_based => sampled,
            _ => {
                let low = trace_id.get(16..).and_then(|h| u64::from_str_radix(h, 16).ok()).unwrap_or(0);
                (low >> 1) < plan.root_bound
            }
        }
    }

    /// A non-zero random id part, from wasi:random.
    pub(crate) fn random(&self) -> u64 {
        loop {
            let v = wasi::random::random::get_random_u64();
            if v != 0 {
                return v;
            }
        }
    }
}

/// Unix nanoseconds from wasi:clocks/wall-clock.
pub(crate) fn unix_now() -> u64 {
    let t = wasi::clocks::wall_clock::now();
    t.seconds.saturating_mul(1_000_000_000).saturating_add(u64::from(t.nanoseconds))
}
