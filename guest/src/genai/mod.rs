//! GenAI operations: LLM calls, agent runs, tool calls, workflow runs and
//! memory operations, recorded by the bindings as spans carrying a `genai`
//! member (see `record-spans` in the WIT). From each ended operation the core
//! names and attributes the span per the semantic conventions, prices its
//! token usage, records the conventions' metrics and keeps the summary
//! `stats` reports; it does so for unsampled operations too, and exports only
//! the sampled ones.

mod names;
pub mod prices;
mod summary;

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value as Json};

use crate::attributes::{int_value, key_value, parse_value, string_of, string_value, upsert, AttributeLimits, Double};
use crate::env::Env;
use crate::metrics::{Measurement, Meters};
use crate::redact::Redactor;
use crate::spans::Scope;
use crate::stats::{Limited, SignalStats, Warnings};
pub use names::Conventions;
use names::{Family, UsageField};
use prices::Prices;
use summary::{Observation, Summary};

/// Token counts of an LLM call, as the host sends them; each is absent until
/// recorded. Input tokens include cache reads and writes.
#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    fn get(&self, field: UsageField) -> Option<u64> {
        match field {
            UsageField::Input => self.input_tokens,
            UsageField::Output => self.output_tokens,
            UsageField::CacheRead => self.cache_read_tokens,
            UsageField::CacheWrite => self.cache_write_tokens,
            UsageField::Reasoning => self.reasoning_tokens,
        }
    }
}

/// The `genai` member of a span record.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationRecord<'a> {
    operation: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    response_model: String,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    cost: Option<Double>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output: Option<&'a RawValue>,
}

/// An operation read from its span record.
pub struct Operation {
    operation: String,
    name: String,
    provider: String,
    agent: String,
    response_model: String,
    usage: Option<Usage>,
    cost: Option<f64>,
    input: Option<AnyValue>,
    output: Option<AnyValue>,
}

impl Operation {
    /// Reads the record; content values are cut to the attribute value length limit.
    pub fn parse(
        rec: OperationRecord,
        limits: AttributeLimits,
        limited: &mut Limited,
        notes: &mut Vec<(&'static str, String)>,
    ) -> Result<Operation, String> {
        if rec.operation.is_empty() {
            return Err("genai.operation is empty".into());
        }
        let mut content = |raw: Option<&RawValue>| -> Result<Option<AnyValue>, String> {
            let Some(raw) = raw else { return Ok(None) };
            let (value, truncated) = parse_value(raw.get(), limits).map_err(|e| format!("genai content: {e}"))?;
            limited.values_truncated += u64::from(truncated);
            Ok(value)
        };
        let input = content(rec.input)?;
        let output = content(rec.output)?;
        let cost = match rec.cost.map(|c| c.0) {
            Some(c) if !(c.is_finite() && c >= 0.0) => {
                notes.push((
                    "bad_cost",
                    format!("An operation reported the cost {c}, which is not a finite non-negative number of US dollars; it was priced from the table instead."),
                ));
                None
            }
            c => c,
        };
        Ok(Operation {
            operation: rec.operation,
            name: rec.name,
            provider: rec.provider,
            agent: rec.agent,
            response_model: rec.response_model,
            usage: rec.usage,
            cost,
            input,
            output,
        })
    }
}

/// What the configuration decides about GenAI operations.
pub struct Settings {
    pub conventions: Conventions,
    /// The user opted in to capturing prompts, responses and tool arguments.
    pub capture: bool,
    pub prices: Prices,
}

impl Settings {
    /// From the options `genai_capture_content` and `genai_prices`, over
    /// OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT and
    /// OTEL_SEMCONV_STABILITY_OPT_IN.
    pub fn from_config(
        env: &mut Env,
        capture: Option<bool>,
        prices: Option<&serde_json::Value>,
    ) -> Result<Settings, String> {
        const CAPTURE: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";
        let capture = capture.unwrap_or_else(|| match env.get(CAPTURE).map(str::to_ascii_lowercase).as_deref() {
            None | Some("false" | "no_content") => false,
            Some("true" | "span_only") => true,
            Some(v @ ("event_only" | "span_and_event")) => {
                env.warn(format!("{CAPTURE}={v} asks for content in events, which polytel does not emit; content goes on spans instead."));
                true
            }
            Some(v) => {
                env.warn(format!("{CAPTURE}={v:?} is not true, false, NO_CONTENT or SPAN_ONLY; content is not captured."));
                false
            }
        });
        Ok(Settings {
            conventions: Conventions::from_opt_in(env.get("OTEL_SEMCONV_STABILITY_OPT_IN")),
            capture,
            prices: Prices::new(prices)?,
        })
    }
}

/// Where a decorated operation's metrics go.
pub struct MetricSink<'a> {
    pub meters: &'a mut Meters,
    pub stats: &'a mut SignalStats,
    pub warnings: &'a mut Warnings,
}

/// What the pipeline keeps about operations between batches.
#[derive(Default)]
pub struct GenAi {
    /// Instrument ids by metric name, registered at first use.
    instruments: HashMap<&'static str, u32>,
    summary: Summary,
}

const SCOPE: &str = "polytel.genai";

impl GenAi {
    /// Counts an ended operation in the summary and the metrics (when `metrics`
    /// is given); when `export`, also names and attributes its span. Returns how
    /// many values redaction changed.
    #[allow(clippy::too_many_arguments)]
    pub fn ended(
        &mut self,
        settings: &Settings,
        span: &mut Span,
        scope: &mut Scope,
        op: Operation,
        export: bool,
        metrics: Option<MetricSink>,
        redactor: &Redactor,
    ) -> u64 {
        let family = Family::of(&op.operation);
        let error_type = error_type(span);
        let cost = op.usage.map(|usage| {
            op.cost.or_else(|| {
                settings
                    .prices
                    .find(&op.provider, [op.response_model.as_str(), op.name.as_str()])
                    .map(|p| p.cost(&usage))
            })
        });
        let cost = match (cost, op.cost) {
            (None, Some(c)) => Some(Some(c)),
            (c, _) => c,
        };
        let seconds = span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) as f64 / 1e9;
        let usage = op.usage.unwrap_or_default();
        self.summary.observe(Observation {
            operation: &op.operation,
            name: &op.name,
            provider: &op.provider,
            seconds,
            error_type: error_type.as_deref(),
            input_tokens: usage.input_tokens.unwrap_or(0),
            output_tokens: usage.output_tokens.unwrap_or(0),
            cost,
        });
        if let Some(sink) = metrics {
            self.measure(settings.conventions, sink, span, &op, family, seconds, error_type.as_deref(), cost.flatten());
        }
        if export {
            decorate(settings, span, scope, op, family, error_type, cost, redactor)
        } else {
            0
        }
    }

    pub fn summary_json(&self) -> Json {
        self.summary.to_json()
    }

    #[allow(clippy::too_many_arguments)]
    fn measure(
        &mut self,
        conventions: Conventions,
        sink: MetricSink,
        span: &Span,
        op: &Operation,
        family: Family,
        seconds: f64,
        error_type: Option<&str>,
        cost: Option<f64>,
    ) {
        let mut common = Map::new();
        common.insert("gen_ai.operation.name".into(), json!(op.operation));
        if !op.provider.is_empty() {
            common.insert("gen_ai.provider.name".into(), json!(op.provider));
        }
        if let (Some(subject), false) = (family.subject_attribute(), op.name.is_empty()) {
            common.insert(subject.into(), json!(op.name));
        }
        if !op.agent.is_empty() && family != Family::Agent {
            common.insert("gen_ai.agent.name".into(), json!(op.agent));
        }
        if !op.response_model.is_empty() {
            common.insert("gen_ai.response.model".into(), json!(op.response_model));
        }
        let mut batch = Vec::new();
        let mut duration_attributes = common.clone();
        if let Some(t) = error_type {
            duration_attributes.insert("error.type".into(), json!(t));
        }
        let duration = conventions.duration_metric(family);
        batch.push((self.instrument(sink.meters, sink.warnings, duration), seconds, duration_attributes));
        if let Some(usage) = op.usage.filter(|_| family == Family::Inference) {
            match conventions {
                Conventions::Default => {
                    for (field, kind) in [(UsageField::Input, "input"), (UsageField::Output, "output")] {
                        if let Some(n) = usage.get(field) {
                            let mut a = common.clone();
                            a.insert("gen_ai.token.type".into(), json!(kind));
                            batch.push((self.instrument(sink.meters, sink.warnings, names::TOKEN_USAGE), n as f64, a));
                        }
                    }
                }
                Conventions::Latest => {
                    for (field, metric) in names::LATEST_USAGE_COUNTERS {
                        if let Some(n) = usage.get(field) {
                            let mut a = common.clone();
                            a.insert("gen_ai.token.modality".into(), json!("unknown"));
                            batch.push((self.instrument(sink.meters, sink.warnings, metric), n as f64, a));
                        }
                    }
                    for (field, metric) in names::LATEST_TOKEN_HISTOGRAMS {
                        if let Some(n) = usage.get(field) {
                            batch.push((self.instrument(sink.meters, sink.warnings, metric), n as f64, common.clone()));
                        }
                    }
                }
            }
        }
        if let Some(usd) = cost {
            batch.push((self.instrument(sink.meters, sink.warnings, names::COST_METRIC), usd, common.clone()));
        }
        let sampled = span.flags & 1 == 1;
        let ids = (<[u8; 16]>::try_from(&span.trace_id[..]).ok(), <[u8; 8]>::try_from(&span.span_id[..]).ok());
        for (instrument, value, attributes) in batch {
            let text = Json::Object(attributes).to_string();
            let m = Measurement {
                instrument,
                value,
                attributes: Some(&text),
                time: span.end_time_unix_nano,
                trace_id: ids.0,
                span_id: ids.1,
                sampled,
            };
            sink.meters.record_measurement(m, sink.stats, sink.warnings);
        }
    }

    /// The id of the instrument behind `metric`, registering it at first use.
    fn instrument(&mut self, meters: &mut Meters, warnings: &mut Warnings, metric: &'static str) -> u32 {
        *self.instruments.entry(metric).or_insert_with(|| meters.register(&instrument_json(metric), warnings))
    }
}

#[allow(clippy::too_many_arguments)]
fn decorate(
    settings: &Settings,
    span: &mut Span,
    scope: &mut Scope,
    op: Operation,
    family: Family,
    error_type: Option<String>,
    cost: Option<Option<f64>>,
    redactor: &Redactor,
) -> u64 {
    if span.name.is_empty() {
        span.name = if op.name.is_empty() { op.operation.clone() } else { format!("{} {}", op.operation, op.name) };
    }
    if span.kind == 0 {
        span.kind = family.default_kind();
    }
    if scope.name.is_empty() {
        *scope = Scope { name: SCOPE.into(), version: env!("CARGO_PKG_VERSION").into() };
    }
    let mut attrs = vec![key_value("gen_ai.operation.name", string_value(op.operation))];
    if !op.provider.is_empty() {
        attrs.push(key_value("gen_ai.provider.name", string_value(op.provider)));
    }
    if let (Some(subject), false) = (family.subject_attribute(), op.name.is_empty()) {
        attrs.push(key_value(subject, string_value(op.name)));
    }
    if !op.agent.is_empty() && family != Family::Agent {
        attrs.push(key_value("gen_ai.agent.name", string_value(op.agent)));
    }
    if !op.response_model.is_empty() {
        attrs.push(key_value("gen_ai.response.model", string_value(op.response_model)));
    }
    let usage = op.usage.unwrap_or_default();
    for (field, key) in [
        (UsageField::Input, "gen_ai.usage.input_tokens"),
        (UsageField::Output, "gen_ai.usage.output_tokens"),
        (UsageField::CacheRead, "gen_ai.usage.cache_read.input_tokens"),
        (UsageField::CacheWrite, settings.conventions.cache_write_attribute()),
        (UsageField::Reasoning, "gen_ai.usage.reasoning.output_tokens"),
    ] {
        if let Some(n) = usage.get(field) {
            attrs.push(key_value(key, int_value(i64::try_from(n).unwrap_or(i64::MAX))));
        }
    }
    match cost {
        Some(Some(usd)) => {
            attrs.push(key_value(names::COST_ATTRIBUTE, AnyValue { value: Some(Value::DoubleValue(usd)) }))
        }
        Some(None) => {
            attrs.push(key_value(names::COST_UNKNOWN_ATTRIBUTE, AnyValue { value: Some(Value::BoolValue(true)) }))
        }
        None => {}
    }
    if let Some(t) = error_type {
        attrs.push(key_value("error.type", string_value(t)));
    }
    let mut redacted = 0;
    if settings.capture {
        let (input_key, output_key) = family.content_attributes();
        for (key, value) in [(input_key, op.input), (output_key, op.output)] {
            if let Some(mut value) = value {
                redacted += redactor.value(&mut value);
                attrs.push(key_value(key, content_text(value)));
            }
        }
    }
    for kv in std::mem::take(&mut span.attributes) {
        upsert(&mut attrs, kv);
    }
    span.attributes = attrs;
    redacted
}

/// Captured content as a string attribute: text stays text, structures
/// become their JSON, as the conventions ask where spans take no structures.
fn content_text(value: AnyValue) -> AnyValue {
    match value.value {
        Some(Value::StringValue(_)) => value,
        _ => string_value(crate::jsonl::value_json(Some(&value)).to_string()),
    }
}

/// The operation's `error.type` when its status is an error: the attribute
/// the app set, else the type of its last exception, else `_OTHER`.
fn error_type(span: &Span) -> Option<String> {
    if span.status.as_ref().is_none_or(|s| s.code != 2) {
        return None;
    }
    let attribute = |attrs: &[KeyValue], key: &str| {
        attrs.iter().rev().find(|kv| kv.key == key).and_then(|kv| string_of(kv.value.as_ref())).map(str::to_owned)
    };
    attribute(&span.attributes, "error.type")
        .or_else(|| {
            span.events
                .iter()
                .rev()
                .filter(|e| e.name == "exception")
                .find_map(|e| attribute(&e.attributes, "exception.type"))
        })
        .or_else(|| Some("_OTHER".into()))
}

fn instrument_json(metric: &str) -> String {
    let scope = json!({"name": SCOPE, "version": env!("CARGO_PKG_VERSION")});
    let spec = match metric {
        names::TOKEN_USAGE => json!({"kind": "histogram", "unit": "{token}",
            "description": "Number of input and output tokens used.", "boundaries": names::TOKEN_BOUNDARIES}),
        names::COST_METRIC => json!({"kind": "counter", "unit": "{USD}",
            "description": "Cost of GenAI model calls in US dollars, from the app or the price table."}),
        m if m.ends_with(".duration") => json!({"kind": "histogram", "unit": "s",
            "description": "GenAI operation duration.", "boundaries": names::DURATION_BOUNDARIES}),
        m if m.starts_with("gen_ai.client.inference.usage.") => json!({"kind": "counter", "unit": "{token}",
            "description": "Tokens used by GenAI model calls."}),
        _ => json!({"kind": "histogram", "unit": "{token}",
            "description": "Tokens per GenAI model call.", "boundaries": names::TOKEN_BOUNDARIES}),
    };
    let mut spec = spec;
    spec["name"] = json!(metric);
    spec["scope"] = scope;
    spec.to_string()
}
