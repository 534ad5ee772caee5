//! Metric instruments of the Rust API. A measurement is written as one
//! record (batch JSON, see `record-metrics` in `wit/polytel.wit`) into the
//! buffer the export worker ships to the core, which aggregates it.

use std::fmt::Write;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use polytel_core::pipeline::Signal;

use crate::span::SpanContext;
use crate::telemetry::Shared;
use crate::value::{push_hex, push_json_str, push_member, push_number, push_scope, AttributeValue};

/// Attributes of a measurement: `&[("model", &"gpt-4o"), ("ok", &true)]`.
pub type Attributes<'a> = [(&'a str, &'a dyn AttributeValue)];

/// One registered instrument; its kind is in the type that wraps it.
#[derive(Clone)]
struct Instrument {
    shared: Arc<Shared>,
    id: u32,
}

impl Instrument {
    /// Disabled (or no metrics exporter): one branch, nothing else.
    #[inline]
    fn measure(&self, value: f64, attributes: &Attributes, span: Option<&SpanContext>) {
        if self.shared.plan.metrics {
            self.write(value, attributes, span);
        }
    }

    /// Writes the measurement's record into the buffer.
    fn write(&self, value: f64, attributes: &Attributes, span: Option<&SpanContext>) {
        // A span without ids (from disabled telemetry) gives no exemplar context.
        let span = span.filter(|s| s.is_valid());
        self.shared.enqueue(Signal::Metrics, measurement(self.id, value, attributes, span, || self.shared.now()));
    }
}

/// A measurement record. The time is only worth a clock read when the
/// measurement can become an exemplar.
fn measurement(
    id: u32,
    value: f64,
    attributes: &Attributes,
    span: Option<&SpanContext>,
    now: impl Fn() -> u64,
) -> String {
    let mut out = String::with_capacity(64 + 24 * attributes.len());
    let _ = write!(out, r#"{{"instrument":{id},"value":"#);
    push_number(&mut out, value);
    if !attributes.is_empty() {
        out.push_str(r#","attributes":{"#);
        let mut members = String::new();
        for (k, v) in attributes {
            push_member(&mut members, k, *v);
        }
        out.push_str(&members);
        out.push('}');
    }
    if let Some(ctx) = span {
        let _ = write!(out, r#","time":{},"trace_id":""#, now());
        push_hex(&mut out, &ctx.trace_id);
        out.push_str(r#"","span_id":""#);
        push_hex(&mut out, &ctx.span_id);
        let _ = write!(out, r#"","sampled":{}"#, ctx.sampled);
    }
    out.push('}');
    out
}

/// What an instrument type is called in `register-instrument`.
pub trait InstrumentKind: Sized {
    #[doc(hidden)]
    const KIND: &'static str;
}

macro_rules! instruments {
    ($($(#[$doc:meta])* $name:ident = $kind:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Instrument);
        impl InstrumentKind for $name {
            const KIND: &'static str = $kind;
        }
    )*};
}

instruments! {
    /// A monotonic sum: agent runs, tool calls, tokens.
    Counter = "counter";
    /// A sum that goes up and down: active sessions, queue depth.
    UpDownCounter = "up_down_counter";
    /// A distribution: durations, token counts per call.
    Histogram = "histogram";
    /// The last value recorded: a temperature, a pool size.
    Gauge = "gauge";
    /// A running total read by a callback at each collection.
    ObservableCounter = "observable_counter";
    /// A current value that goes up and down, read by a callback.
    ObservableUpDownCounter = "observable_up_down_counter";
    /// A current value read by a callback.
    ObservableGauge = "observable_gauge";
}

impl Counter {
    /// Adds a non-negative `increment`; negative ones are dropped and counted by the core.
    #[inline]
    pub fn add(&self, increment: f64, attributes: &Attributes) {
        self.0.measure(increment, attributes, None)
    }

    /// As `add`, inside `span` (the measurement may become an exemplar).
    #[inline]
    pub fn add_in(&self, span: &SpanContext, increment: f64, attributes: &Attributes) {
        self.0.measure(increment, attributes, Some(span))
    }
}

impl UpDownCounter {
    #[inline]
    pub fn add(&self, delta: f64, attributes: &Attributes) {
        self.0.measure(delta, attributes, None)
    }
}

impl Histogram {
    #[inline]
    pub fn record(&self, value: f64, attributes: &Attributes) {
        self.0.measure(value, attributes, None)
    }

    /// As `record`, inside `span` (the measurement may become an exemplar).
    #[inline]
    pub fn record_in(&self, span: &SpanContext, value: f64, attributes: &Attributes) {
        self.0.measure(value, attributes, Some(span))
    }
}

impl Gauge {
    #[inline]
    pub fn record(&self, value: f64, attributes: &Attributes) {
        self.0.measure(value, attributes, None)
    }
}

/// What an observable instrument's callback reports into.
pub struct Observer<'a> {
    id: u32,
    records: &'a mut Vec<String>,
}

impl Observer<'_> {
    pub fn observe(&mut self, value: f64, attributes: &Attributes) {
        self.records.push(measurement(self.id, value, attributes, None, || 0));
    }
}

type Callback = Box<dyn Fn(&mut Observer) + Send + Sync>;

/// The callbacks of every observable instrument.
#[derive(Default)]
pub(crate) struct Observers(Mutex<Vec<(u32, Callback)>>);

impl Observers {
    /// Runs every callback; returns what they observed as measurement records.
    /// A callback that panics loses only its own observations.
    pub(crate) fn observe(&self) -> Vec<String> {
        let callbacks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut records = Vec::new();
        for (id, callback) in callbacks.iter() {
            let mut mine = Vec::new();
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                callback(&mut Observer { id: *id, records: &mut mine })
            }));
            match ran {
                Ok(()) => records.append(&mut mine),
                Err(_) => {
                    eprintln!("polytel: an observable instrument's callback panicked; its observations were skipped.")
                }
            }
        }
        records
    }
}

/// Describes an instrument before it is registered.
pub struct InstrumentBuilder<T: InstrumentKind> {
    shared: Arc<Shared>,
    name: String,
    unit: String,
    description: String,
    boundaries: Option<Vec<f64>>,
    exponential: bool,
    scope: Option<(String, String)>,
    kind: PhantomData<T>,
}

impl<T: InstrumentKind> InstrumentBuilder<T> {
    pub(crate) fn new(shared: Arc<Shared>, name: String) -> Self {
        InstrumentBuilder {
            shared,
            name,
            unit: String::new(),
            description: String::new(),
            boundaries: None,
            exponential: false,
            scope: None,
            kind: PhantomData,
        }
    }

    /// A UCUM unit: "s", "By", "{token}".
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = unit.into();
        self
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The instrumentation scope (library name and version) it belongs to.
    pub fn scope(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.scope = Some((name.into(), version.into()));
        self
    }

    fn register(self) -> Instrument {
        let mut json = String::from(r#"{"name":"#);
        push_json_str(&mut json, &self.name);
        json.push_str(r#","kind":"#);
        push_json_str(&mut json, T::KIND);
        json.push_str(r#","unit":"#);
        push_json_str(&mut json, &self.unit);
        json.push_str(r#","description":"#);
        push_json_str(&mut json, &self.description);
        if let Some(bounds) = &self.boundaries {
            json.push_str(r#","boundaries":["#);
            for (i, b) in bounds.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                push_number(&mut json, *b);
            }
            json.push(']');
        }
        if self.exponential {
            json.push_str(r#","aggregation":"exponential""#);
        }
        if let Some((name, version)) = &self.scope {
            push_scope(&mut json, name, version);
        }
        json.push('}');
        // A core that cannot register (it trapped twice) leaves an instrument
        // whose measurements the core drops as unknown, counted.
        let id = self.shared.register_instrument(json).unwrap_or(u32::MAX);
        Instrument { shared: self.shared, id }
    }
}

macro_rules! synchronous {
    ($($name:ident),*) => {$(
        impl InstrumentBuilder<$name> {
            pub fn build(self) -> $name {
                $name(self.register())
            }
        }
    )*};
}
synchronous!(Counter, UpDownCounter, Histogram, Gauge);

impl InstrumentBuilder<Histogram> {
    /// Explicit bucket upper bounds, strictly increasing.
    pub fn boundaries(mut self, boundaries: &[f64]) -> Self {
        self.boundaries = Some(boundaries.to_vec());
        self
    }

    /// Base-2 exponential buckets instead of explicit ones.
    pub fn exponential(mut self) -> Self {
        self.exponential = true;
        self
    }
}

macro_rules! observable {
    ($($name:ident),*) => {$(
        impl InstrumentBuilder<$name> {
            /// Registers the instrument; `callback` runs before each collection and scrape.
            pub fn callback(self, callback: impl Fn(&mut Observer) + Send + Sync + 'static) -> $name {
                let shared = self.shared.clone();
                let instrument = self.register();
                shared.observers.add(instrument.id, Box::new(callback));
                $name(instrument)
            }
        }
    )*};
}
observable!(ObservableCounter, ObservableUpDownCounter, ObservableGauge);

macro_rules! unregister {
    ($($name:ident),*) => {$(
        impl $name {
            /// Stops calling the callback; the instrument's series end with the next collection.
            pub fn unregister(self) {
                self.0.shared.observers.remove(self.0.id);
            }
        }
    )*};
}
unregister!(ObservableCounter, ObservableUpDownCounter, ObservableGauge);

impl Observers {
    fn add(&self, id: u32, callback: Callback) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push((id, callback));
    }

    fn remove(&self, id: u32) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).retain(|(i, _)| *i != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurement_records_follow_the_contract() {
        let ctx = SpanContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            sampled: true,
            remote: false,
            trace_state: String::new(),
        };
        let r = measurement(3, 1.5, &[("model", &"gpt-4o"), ("n", &2)], Some(&ctx), || 7);
        assert_eq!(
            r,
            r#"{"instrument":3,"value":1.5,"attributes":{"model":"gpt-4o","n":2},"time":7,"trace_id":"01010101010101010101010101010101","span_id":"0202020202020202","sampled":true}"#
        );
        assert_eq!(measurement(0, f64::NAN, &[], None, || 0), r#"{"instrument":0,"value":"NaN"}"#);
        assert_eq!(measurement(0, -f64::INFINITY, &[], None, || 0), r#"{"instrument":0,"value":"-Infinity"}"#);
        assert_eq!(measurement(0, 1e300, &[], None, || 0), r#"{"instrument":0,"value":1e300}"#);
    }
}
