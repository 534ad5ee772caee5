//! Metric instruments and their aggregation. Every series keeps its
//! cumulative state; exports in delta temporality subtract what the previous
//! collection reported (sums) or read a per-interval copy (histograms), so a
//! Prometheus scrape and a delta OTLP exporter can read the same instruments.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, AggregationTemporality, Exemplar, ExponentialHistogram as OtlpExponential,
    ExponentialHistogramDataPoint, Gauge, Histogram as OtlpHistogram, HistogramDataPoint, Metric, NumberDataPoint, Sum,
};
use prost::Message;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::attributes::{key_value, parse_attributes, AttributeLimits, Double};
use crate::config::{ExemplarFilter, MetricSettings, Temporality};
use crate::encode::metric_points;
use crate::exponential::ExponentialHistogram;
use crate::ids::parse_hex_id;
use crate::spans::Scope;
use crate::stats::{DropReason, SignalStats, Warnings};

/// The explicit bucket boundaries the specification gives histograms by default.
pub const DEFAULT_BOUNDARIES: [f64; 15] =
    [0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0, 10000.0];

/// Measurement attributes kept per series; more would only grow memory.
const ATTRIBUTE_LIMITS: AttributeLimits = AttributeLimits { count: 128, value_length: Some(4096) };

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Counter,
    UpDownCounter,
    Histogram,
    Gauge,
    ObservableCounter,
    ObservableUpDownCounter,
    ObservableGauge,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "counter" => Kind::Counter,
            "up_down_counter" => Kind::UpDownCounter,
            "histogram" => Kind::Histogram,
            "gauge" => Kind::Gauge,
            "observable_counter" => Kind::ObservableCounter,
            "observable_up_down_counter" => Kind::ObservableUpDownCounter,
            "observable_gauge" => Kind::ObservableGauge,
            _ => return None,
        })
    }

    pub fn observable(self) -> bool {
        matches!(self, Kind::ObservableCounter | Kind::ObservableUpDownCounter | Kind::ObservableGauge)
    }

    fn monotonic(self) -> bool {
        matches!(self, Kind::Counter | Kind::ObservableCounter)
    }
}

/// What `register-instrument` receives.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstrumentRecord {
    name: String,
    kind: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    boundaries: Option<Vec<Double>>,
    #[serde(default)]
    aggregation: Option<String>,
    #[serde(default)]
    scope: Option<Scope>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeasurementRecord<'a> {
    instrument: u32,
    value: Double,
    #[serde(borrow, default)]
    attributes: Option<&'a RawValue>,
    #[serde(default)]
    time: u64,
    #[serde(default)]
    trace_id: Option<&'a str>,
    #[serde(default)]
    span_id: Option<&'a str>,
    #[serde(default = "yes")]
    sampled: bool,
}

fn yes() -> bool {
    true
}

/// One measurement, read.
pub struct Measurement<'a> {
    pub instrument: u32,
    pub value: f64,
    /// The attributes as JSON text (see `record-spans` in the WIT).
    pub attributes: Option<&'a str>,
    pub time: u64,
    pub trace_id: Option<[u8; 16]>,
    pub span_id: Option<[u8; 8]>,
    pub sampled: bool,
}

#[derive(Clone, Debug)]
enum Aggregation {
    Sum,
    LastValue,
    Explicit(Vec<f64>),
    Exponential,
}

#[derive(Clone, Debug)]
struct Buckets {
    counts: Vec<u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Buckets {
    fn new(bounds: &[f64]) -> Buckets {
        Buckets { counts: vec![0; bounds.len() + 1], count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }

    fn record(&mut self, bounds: &[f64], v: f64) {
        // Buckets are upper-inclusive: (bounds[i-1], bounds[i]].
        let i = bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
}

/// The running state of one series.
#[derive(Clone, Debug)]
enum State {
    /// Sums and last values.
    Number(f64),
    Explicit(Buckets),
    Exponential(Box<ExponentialHistogram>),
}

impl State {
    fn new(aggregation: &Aggregation) -> State {
        match aggregation {
            Aggregation::Sum | Aggregation::LastValue => State::Number(0.0),
            Aggregation::Explicit(bounds) => State::Explicit(Buckets::new(bounds)),
            Aggregation::Exponential => State::Exponential(Box::new(ExponentialHistogram::new(
                ExponentialHistogram::DEFAULT_MAX_SIZE,
                ExponentialHistogram::DEFAULT_MAX_SCALE,
            ))),
        }
    }
}

#[derive(Clone, Debug)]
struct Sample {
    value: f64,
    time: u64,
    trace_id: [u8; 16],
    span_id: [u8; 8],
}

struct Series {
    attributes: Vec<KeyValue>,
    /// When the series began (unix ns); 0 until known.
    start: u64,
    cumulative: State,
    /// Histograms exported as deltas: what arrived since the last collection.
    interval: Option<State>,
    /// Sums exported as deltas: the cumulative value the last collection reported.
    reported: f64,
    /// Measured (or observed) since the last collection.
    touched: bool,
    /// The latest exemplar of each bucket (one slot for non-histograms).
    exemplars: Vec<Option<Sample>>,
}

pub struct Instrument {
    pub name: String,
    pub kind: Kind,
    unit: String,
    description: String,
    scope: Scope,
    aggregation: Aggregation,
    /// Measurements of an invalid instrument are dropped and counted.
    valid: bool,
    delta: bool,
    series: Vec<Series>,
    by_attributes: HashMap<Vec<u8>, usize>,
    /// The same attribute JSON text keeps arriving from the same call sites:
    /// looking it up skips parsing.
    by_text: HashMap<Box<str>, usize>,
    overflow: Option<usize>,
    last_collection: Option<u64>,
}

/// What one collection produced.
pub struct Collected {
    pub metrics: Vec<(Scope, Metric)>,
    pub points: usize,
}

pub struct Meters {
    settings: MetricSettings,
    instruments: Vec<Instrument>,
    by_identity: HashMap<(Scope, String, Kind, String, String), u32>,
}

impl Meters {
    pub fn new(settings: MetricSettings) -> Meters {
        Meters { settings, instruments: Vec::new(), by_identity: HashMap::new() }
    }

    pub fn has_observable(&self) -> bool {
        self.instruments.iter().any(|i| i.valid && i.kind.observable())
    }

    /// Registers an instrument (see `register-instrument` in the WIT).
    pub fn register(&mut self, json: &str, warnings: &mut Warnings) -> u32 {
        let rec: InstrumentRecord = match serde_json::from_str(json) {
            Ok(r) => r,
            Err(e) => {
                warnings.once("bad_instrument", || {
                    format!("An instrument description was malformed ({e}); its measurements are dropped.")
                });
                return self.push(invalid_instrument());
            }
        };
        let Some(kind) = Kind::parse(&rec.kind) else {
            let kind = rec.kind.clone();
            warnings.once("bad_instrument_kind", || {
                format!("The instrument {:?} has the unknown kind {kind:?}; its measurements are dropped.", rec.name)
            });
            return self.push(invalid_instrument());
        };
        let scope = rec.scope.unwrap_or_default();
        let identity = (scope.clone(), rec.name.to_ascii_lowercase(), kind, rec.unit.clone(), rec.description.clone());
        if let Some(&id) = self.by_identity.get(&identity) {
            return id;
        }
        let mut valid = true;
        if !valid_name(&rec.name) {
            valid = false;
            warnings.once("bad_instrument_name", || {
                format!(
                    "The instrument name {:?} is not valid (a letter, then up to 254 letters, digits, '_', '.', '-' or '/'); its measurements are dropped.",
                    rec.name
                )
            });
        }
        let mut unit = rec.unit;
        if unit.len() > 63 || !unit.is_ascii() {
            warnings.once("bad_unit", || {
                format!("The unit of instrument {:?} is not up to 63 ASCII characters; it was left out.", rec.name)
            });
            unit = String::new();
        }
        if self.by_identity.keys().any(|(s, n, ..)| *s == scope && *n == identity.1) {
            warnings.once("duplicate_instrument", || {
                format!(
                    "The instrument {:?} was registered again with a different kind, unit or description; both are exported, as separate metrics.",
                    rec.name
                )
            });
        }
        let aggregation = match kind {
            Kind::Counter | Kind::UpDownCounter | Kind::ObservableCounter | Kind::ObservableUpDownCounter => {
                Aggregation::Sum
            }
            Kind::Gauge | Kind::ObservableGauge => Aggregation::LastValue,
            Kind::Histogram => {
                let exponential = match rec.aggregation.as_deref() {
                    Some("exponential") => true,
                    Some("explicit") => false,
                    None => self.settings.exponential_histograms && rec.boundaries.is_none(),
                    Some(other) => {
                        let other = other.to_owned();
                        warnings.once("bad_aggregation", || {
                            format!("The histogram {:?} asks for the unknown aggregation {other:?}; using explicit buckets.", rec.name)
                        });
                        false
                    }
                };
                if exponential {
                    Aggregation::Exponential
                } else {
                    Aggregation::Explicit(boundaries(&rec.name, rec.boundaries, warnings))
                }
            }
        };
        let delta = match self.settings.temporality {
            Temporality::Cumulative => false,
            Temporality::Delta => matches!(kind, Kind::Counter | Kind::Histogram | Kind::ObservableCounter),
            Temporality::LowMemory => matches!(kind, Kind::Counter | Kind::Histogram),
        };
        let id = self.push(Instrument {
            name: rec.name,
            kind,
            unit,
            description: rec.description,
            scope,
            aggregation,
            valid,
            delta,
            ..invalid_instrument()
        });
        self.by_identity.insert(identity, id);
        id
    }

    fn push(&mut self, instrument: Instrument) -> u32 {
        self.instruments.push(instrument);
        (self.instruments.len() - 1) as u32
    }

    /// Adds a JSON array of measurements (see `record-metrics` in the WIT).
    pub fn record(&mut self, batch: &str, stats: &mut SignalStats, warnings: &mut Warnings) {
        for raw in crate::pipeline::records(stats, warnings, "measurement", batch) {
            stats.received += 1;
            if let Err((reason, why)) = self.record_one(raw.get(), stats) {
                stats.drop(reason, 1);
                warnings.once(reason_kind(reason), || why);
            }
        }
    }

    fn record_one(&mut self, json: &str, stats: &mut SignalStats) -> Result<(), (DropReason, String)> {
        let m: MeasurementRecord = serde_json::from_str(json)
            .map_err(|e| (DropReason::Invalid, format!("A measurement was malformed and was dropped ({e}).")))?;
        self.measure(
            Measurement {
                instrument: m.instrument,
                value: m.value.0,
                attributes: m.attributes.map(RawValue::get),
                time: m.time,
                trace_id: m.trace_id.and_then(parse_hex_id::<16>),
                span_id: m.span_id.and_then(parse_hex_id::<8>),
                sampled: m.sampled,
            },
            stats,
        )
    }

    /// Adds one measurement the core made itself (GenAI operations, self
    /// metrics), without writing and reading it as JSON; counted as received.
    pub fn record_measurement(&mut self, m: Measurement, stats: &mut SignalStats, warnings: &mut Warnings) {
        stats.received += 1;
        if let Err((reason, why)) = self.measure(m, stats) {
            stats.drop(reason, 1);
            warnings.once(reason_kind(reason), || why);
        }
    }

    fn measure(&mut self, m: Measurement, stats: &mut SignalStats) -> Result<(), (DropReason, String)> {
        let invalid = |why: String| (DropReason::Invalid, why);
        let filter = self.settings.exemplar_filter;
        let limit = self.settings.cardinality_limit;
        let instrument = self.instruments.get_mut(m.instrument as usize).ok_or_else(|| {
            invalid(format!(
                "A measurement named instrument {}, which was never registered; it was dropped.",
                m.instrument
            ))
        })?;
        if !instrument.valid {
            return Err((
                DropReason::InvalidInstrument,
                "Measurements of an invalid instrument were dropped; see the earlier warning about it.".into(),
            ));
        }
        let value = m.value;
        if !value.is_finite() {
            return Err((
                DropReason::InvalidValue,
                format!(
                    "The instrument {:?} got a measurement of {value}, which is not finite; it was dropped.",
                    instrument.name
                ),
            ));
        }
        if value < 0.0 && matches!(instrument.kind, Kind::Counter | Kind::ObservableCounter | Kind::Histogram) {
            return Err((
                DropReason::Negative,
                format!(
                    "The instrument {:?} got the negative measurement {value}; counters and histograms take only non-negative values, so it was dropped.",
                    instrument.name
                ),
            ));
        }
        let index = instrument.series_for(m.attributes, limit, stats).map_err(invalid)?;
        let exemplar = match (filter, m.trace_id, m.span_id) {
            (ExemplarFilter::AlwaysOff, ..) => None,
            (ExemplarFilter::TraceBased, Some(trace_id), Some(span_id)) if m.sampled => {
                Some(Sample { value, time: m.time, trace_id, span_id })
            }
            (ExemplarFilter::TraceBased, ..) => None,
            (ExemplarFilter::AlwaysOn, trace_id, span_id) => Some(Sample {
                value,
                time: m.time,
                trace_id: trace_id.unwrap_or_default(),
                span_id: span_id.unwrap_or_default(),
            }),
        };
        instrument.measure(index, value, m.time, exemplar);
        Ok(())
    }

    /// The metrics for push exporters, each in its temporality, at `now`;
    /// starts a new collection interval.
    pub fn collect(&mut self, now: u64) -> Collected {
        self.gather(now, true)
    }

    /// Every metric in cumulative temporality, for a Prometheus scrape; starts no interval.
    pub fn snapshot(&mut self, now: u64) -> Collected {
        self.gather(now, false)
    }

    fn gather(&mut self, now: u64, advance: bool) -> Collected {
        let mut metrics = Vec::new();
        let mut points = 0;
        for instrument in self.instruments.iter_mut().filter(|i| i.valid) {
            if let Some(metric) = instrument.collect(now, advance) {
                points += metric_points(&metric);
                metrics.push((instrument.scope.clone(), metric));
            }
        }
        Collected { metrics, points }
    }
}

fn invalid_instrument() -> Instrument {
    Instrument {
        name: String::new(),
        kind: Kind::Counter,
        unit: String::new(),
        description: String::new(),
        scope: Scope::default(),
        aggregation: Aggregation::Sum,
        valid: false,
        delta: false,
        series: Vec::new(),
        by_attributes: HashMap::new(),
        by_text: HashMap::new(),
        overflow: None,
        last_collection: None,
    }
}

/// The instrument-name syntax of the specification.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 255
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
}

/// Explicit boundaries must be finite and strictly increasing; otherwise the defaults, with a warning.
fn boundaries(name: &str, given: Option<Vec<Double>>, warnings: &mut Warnings) -> Vec<f64> {
    let Some(given) = given else { return DEFAULT_BOUNDARIES.to_vec() };
    let bounds: Vec<f64> = given.into_iter().map(|d| d.0).collect();
    let ok = bounds.len() <= 1000 && bounds.iter().all(|b| b.is_finite()) && bounds.windows(2).all(|w| w[0] < w[1]);
    if ok {
        bounds
    } else {
        warnings.once("bad_boundaries", || {
            format!("The histogram {name:?} has bucket boundaries that are not finite and strictly increasing; using the default boundaries.")
        });
        DEFAULT_BOUNDARIES.to_vec()
    }
}

fn reason_kind(reason: DropReason) -> &'static str {
    match reason {
        DropReason::InvalidValue => "metric_invalid_value",
        DropReason::Negative => "metric_negative",
        DropReason::InvalidInstrument => "metric_invalid_instrument",
        _ => "metric_invalid",
    }
}

impl Instrument {
    /// The series for these attributes, made if new; past the cardinality
    /// limit, the overflow series.
    fn series_for(&mut self, text: Option<&str>, limit: usize, stats: &mut SignalStats) -> Result<usize, String> {
        let text = text.unwrap_or("{}");
        if let Some(&i) = self.by_text.get(text) {
            return Ok(i);
        }
        let mut attrs = parse_attributes(text, ATTRIBUTE_LIMITS)
            .map_err(|e| format!("A measurement's attributes were malformed ({e}); it was dropped."))?
            .kept;
        attrs.sort_by(|a, b| a.key.cmp(&b.key));
        let key: Vec<u8> = attrs.iter().flat_map(|kv| kv.encode_length_delimited_to_vec()).collect();
        let index = match self.by_attributes.get(&key) {
            Some(&i) => i,
            None if self.by_attributes.len() + 1 >= limit => {
                stats.limited.series_overflowed += 1;
                return Ok(self.overflow_series());
            }
            None => {
                let i = self.new_series(attrs);
                self.by_attributes.insert(key, i);
                i
            }
        };
        // Bounded like the series themselves: a text cache past that helps no one.
        if self.by_text.len() < 4 * limit {
            self.by_text.insert(text.into(), index);
        }
        Ok(index)
    }

    fn overflow_series(&mut self) -> usize {
        match self.overflow {
            Some(i) => i,
            None => {
                let flag = key_value("otel.metric.overflow", AnyValue { value: Some(Value::BoolValue(true)) });
                let i = self.new_series(vec![flag]);
                self.overflow = Some(i);
                i
            }
        }
    }

    fn new_series(&mut self, attributes: Vec<KeyValue>) -> usize {
        let slots = match &self.aggregation {
            Aggregation::Explicit(bounds) => bounds.len() + 1,
            _ => 1,
        };
        let histogram = matches!(self.aggregation, Aggregation::Explicit(_) | Aggregation::Exponential);
        self.series.push(Series {
            attributes,
            start: 0,
            cumulative: State::new(&self.aggregation),
            interval: (self.delta && histogram).then(|| State::new(&self.aggregation)),
            reported: 0.0,
            touched: false,
            exemplars: vec![None; slots],
        });
        self.series.len() - 1
    }

    fn measure(&mut self, index: usize, value: f64, time: u64, exemplar: Option<Sample>) {
        let observable = self.kind.observable();
        let Some(series) = self.series.get_mut(index) else { return };
        if series.start == 0 {
            series.start = time;
        }
        series.touched = true;
        let mut slot = 0;
        for state in std::iter::once(&mut series.cumulative).chain(series.interval.as_mut()) {
            match (state, &self.aggregation) {
                (State::Number(n), Aggregation::Sum) if !observable => *n += value,
                (State::Number(n), _) => *n = value,
                (State::Explicit(b), Aggregation::Explicit(bounds)) => {
                    b.record(bounds, value);
                    slot = bounds.partition_point(|x| *x < value);
                }
                (State::Exponential(h), _) => h.record(value),
                (State::Explicit(_), _) => {}
            }
        }
        if let (Some(sample), Some(place)) = (exemplar, series.exemplars.get_mut(slot)) {
            *place = Some(sample);
        }
    }

    /// One metric with every series' point at `now`; with `advance`, in the
    /// instrument's export temporality, starting a new interval.
    fn collect(&mut self, now: u64, advance: bool) -> Option<Metric> {
        let delta = advance && self.delta;
        let interval_start = self.last_collection;
        let mut number_points = Vec::new();
        let mut histogram_points = Vec::new();
        let mut exponential_points = Vec::new();
        for series in &mut self.series {
            // Measurements without a time (most: a clock read per measurement is
            // not worth it) start their series at its first collection. The
            // host's first poll would be earlier, but when it happens depends
            // on thread timing, and the same calls must give the same bytes.
            if series.start == 0 {
                series.start = now;
            }
            // A delta of a series that saw nothing is no news; an observable
            // series that was not observed this time no longer exists.
            let unseen = !series.touched && (delta || (advance && self.kind.observable()));
            if unseen {
                continue;
            }
            let start = if delta { interval_start.unwrap_or(series.start) } else { series.start };
            let exemplars = exemplars(&series.exemplars, now);
            let state = if delta { series.interval.as_ref().unwrap_or(&series.cumulative) } else { &series.cumulative };
            match state {
                State::Number(n) => {
                    let value = if delta { n - series.reported } else { *n };
                    number_points.push(NumberDataPoint {
                        attributes: series.attributes.clone(),
                        start_time_unix_nano: if matches!(self.aggregation, Aggregation::LastValue) {
                            0
                        } else {
                            start
                        },
                        time_unix_nano: now,
                        exemplars,
                        flags: 0,
                        value: Some(number_data_point::Value::AsDouble(value)),
                    });
                }
                State::Explicit(b) => {
                    let Aggregation::Explicit(bounds) = &self.aggregation else { continue };
                    histogram_points.push(HistogramDataPoint {
                        attributes: series.attributes.clone(),
                        start_time_unix_nano: start,
                        time_unix_nano: now,
                        count: b.count,
                        sum: Some(b.sum),
                        bucket_counts: b.counts.clone(),
                        explicit_bounds: bounds.clone(),
                        exemplars,
                        flags: 0,
                        min: (b.count > 0).then_some(b.min),
                        max: (b.count > 0).then_some(b.max),
                    });
                }
                State::Exponential(h) => {
                    let mut p = ExponentialHistogramDataPoint {
                        attributes: series.attributes.clone(),
                        start_time_unix_nano: start,
                        time_unix_nano: now,
                        exemplars,
                        ..Default::default()
                    };
                    h.fill(&mut p);
                    exponential_points.push(p);
                }
            }
            if advance {
                if let State::Number(n) = series.cumulative {
                    series.reported = n;
                }
                if let Some(interval) = &mut series.interval {
                    *interval = State::new(&self.aggregation);
                }
                series.exemplars.iter_mut().for_each(|e| *e = None);
                series.touched = false;
            }
        }
        if advance {
            self.last_collection = Some(now);
        }
        let temporality = if delta { AggregationTemporality::Delta } else { AggregationTemporality::Cumulative } as i32;
        let data = match self.aggregation {
            Aggregation::Sum if !number_points.is_empty() => metric::Data::Sum(Sum {
                data_points: number_points,
                aggregation_temporality: temporality,
                is_monotonic: self.kind.monotonic(),
            }),
            Aggregation::LastValue if !number_points.is_empty() => {
                metric::Data::Gauge(Gauge { data_points: number_points })
            }
            Aggregation::Explicit(_) if !histogram_points.is_empty() => metric::Data::Histogram(OtlpHistogram {
                data_points: histogram_points,
                aggregation_temporality: temporality,
            }),
            Aggregation::Exponential if !exponential_points.is_empty() => {
                metric::Data::ExponentialHistogram(OtlpExponential {
                    data_points: exponential_points,
                    aggregation_temporality: temporality,
                })
            }
            _ => return None,
        };
        Some(Metric {
            name: self.name.clone(),
            description: self.description.clone(),
            unit: self.unit.clone(),
            metadata: Vec::new(),
            data: Some(data),
        })
    }
}

fn exemplars(samples: &[Option<Sample>], now: u64) -> Vec<Exemplar> {
    samples
        .iter()
        .flatten()
        .map(|s| Exemplar {
            filtered_attributes: Vec::new(),
            time_unix_nano: if s.time == 0 { now } else { s.time },
            span_id: if s.span_id == [0; 8] { Vec::new() } else { s.span_id.to_vec() },
            trace_id: if s.trace_id == [0; 16] { Vec::new() } else { s.trace_id.to_vec() },
            value: Some(exemplar::Value::AsDouble(s.value)),
        })
        .collect()
}
