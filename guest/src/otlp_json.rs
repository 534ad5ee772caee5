//! OTLP/JSON for traces, metrics and logs, written and read directly: the
//! Proto3 JSON mapping with OTLP's rules (hex ids, integer enums,
//! lowerCamelCase keys, 64-bit integers as strings, non-finite doubles as
//! "NaN"/"Infinity"/"-Infinity"). Written with default-valued fields left out
//! and members in field-number order, so output is deterministic; read
//! leniently, as receivers must (numbers or strings for 64-bit integers,
//! original snake_case names too, unknown fields ignored, null as the default).
//! Only malformed JSON and ids that are not hex are errors.

use std::fmt::Write;

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use serde_json::Value as Json;

use crate::ids::to_hex;

const TRACE: [&str; 3] = ["resourceSpans", "scopeSpans", "spans"];
const METRICS: [&str; 3] = ["resourceMetrics", "scopeMetrics", "metrics"];
const LOGS: [&str; 3] = ["resourceLogs", "scopeLogs", "logRecords"];

/// Writes an ExportTraceServiceRequest as OTLP/JSON.
pub fn trace_request(r: &ExportTraceServiceRequest) -> String {
    write_envelope(
        TRACE,
        &r.resource_spans,
        |rs| (rs.resource.as_ref(), &rs.scope_spans, &rs.schema_url),
        |ss| (ss.scope.as_ref(), &ss.spans, &ss.schema_url),
        span_json,
    )
}

/// Reads an ExportTraceServiceRequest from OTLP/JSON.
pub fn decode_trace_request(text: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    let resource_spans = read_envelope(
        text,
        TRACE,
        |resource, scope_spans, schema_url| ResourceSpans { resource, scope_spans, schema_url },
        |scope, spans, schema_url| ScopeSpans { scope, spans, schema_url },
        decode_span,
    )?;
    Ok(ExportTraceServiceRequest { resource_spans })
}

/// Writes an ExportMetricsServiceRequest as OTLP/JSON.
pub fn metrics_request(r: &ExportMetricsServiceRequest) -> String {
    write_envelope(
        METRICS,
        &r.resource_metrics,
        |rm| (rm.resource.as_ref(), &rm.scope_metrics, &rm.schema_url),
        |sm| (sm.scope.as_ref(), &sm.metrics, &sm.schema_url),
        metric_json,
    )
}

/// Reads an ExportMetricsServiceRequest from OTLP/JSON.
pub fn decode_metrics_request(text: &[u8]) -> Result<ExportMetricsServiceRequest, String> {
    let resource_metrics = read_envelope(
        text,
        METRICS,
        |resource, scope_metrics, schema_url| ResourceMetrics { resource, scope_metrics, schema_url },
        |scope, metrics, schema_url| ScopeMetrics { scope, metrics, schema_url },
        decode_metric,
    )?;
    Ok(ExportMetricsServiceRequest { resource_metrics })
}

/// Writes an ExportLogsServiceRequest as OTLP/JSON.
pub fn logs_request(r: &ExportLogsServiceRequest) -> String {
    write_envelope(
        LOGS,
        &r.resource_logs,
        |rl| (rl.resource.as_ref(), &rl.scope_logs, &rl.schema_url),
        |sl| (sl.scope.as_ref(), &sl.log_records, &sl.schema_url),
        log_json,
    )
}

/// Reads an ExportLogsServiceRequest from OTLP/JSON.
pub fn decode_logs_request(text: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    let resource_logs = read_envelope(
        text,
        LOGS,
        |resource, scope_logs, schema_url| ResourceLogs { resource, scope_logs, schema_url },
        |scope, log_records, schema_url| ScopeLogs { scope, log_records, schema_url },
        decode_log,
    )?;
    Ok(ExportLogsServiceRequest { resource_logs })
}

/// Writes the resource → scope → item nesting that every signal shares,
/// differing only in its three list names and its items.
fn write_envelope<R, S, T>(
    [resources_key, scopes_key, items_key]: [&str; 3],
    resources: &[R],
    resource_parts: impl Fn(&R) -> (Option<&Resource>, &Vec<S>, &String),
    scope_parts: impl Fn(&S) -> (Option<&InstrumentationScope>, &Vec<T>, &String),
    item: impl Fn(&mut String, &T),
) -> String {
    let mut out = String::with_capacity(4096);
    let mut w = Obj::new(&mut out);
    w.array(resources_key, resources, |out, r| {
        let (resource, scopes, schema_url) = resource_parts(r);
        let mut o = Obj::new(out);
        if let Some(resource) = resource {
            o.object("resource", |ro| {
                ro.attributes("attributes", &resource.attributes);
                ro.uint("droppedAttributesCount", resource.dropped_attributes_count as u64);
            });
        }
        o.array(scopes_key, scopes, |out, s| {
            let (scope, items, schema_url) = scope_parts(s);
            let mut so = Obj::new(out);
            if let Some(scope) = scope {
                so.object("scope", |sc| {
                    sc.string("name", &scope.name);
                    sc.string("version", &scope.version);
                    sc.attributes("attributes", &scope.attributes);
                    sc.uint("droppedAttributesCount", scope.dropped_attributes_count as u64);
                });
            }
            so.array(items_key, items, &item);
            so.string("schemaUrl", schema_url);
            so.end();
        });
        o.string("schemaUrl", schema_url);
        o.end();
    });
    w.end();
    out
}

/// The inverse of `write_envelope`: the messages are built by the callers,
/// since each signal has its own resource and scope message types.
fn read_envelope<R, S, T>(
    text: &[u8],
    [resources_key, scopes_key, items_key]: [&str; 3],
    resource: impl Fn(Option<Resource>, Vec<S>, String) -> R,
    scope: impl Fn(Option<InstrumentationScope>, Vec<T>, String) -> S,
    item: impl Fn(&Json) -> Result<T, String>,
) -> Result<Vec<R>, String> {
    let root: Json = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    read_list(&root, resources_key, |r| {
        let scopes = read_list(r, scopes_key, |s| {
            let items = read_list(s, items_key, &item)?;
            let sc = member(s, "scope").map(|sc| InstrumentationScope {
                name: string(sc, "name"),
                version: string(sc, "version"),
                attributes: read_attributes(sc),
                dropped_attributes_count: uint(sc, "droppedAttributesCount") as u32,
            });
            Ok(scope(sc, items, string(s, "schemaUrl")))
        })?;
        let res = member(r, "resource").map(|res| Resource {
            attributes: read_attributes(res),
            dropped_attributes_count: uint(res, "droppedAttributesCount") as u32,
            ..Default::default()
        });
        Ok(resource(res, scopes, string(r, "schemaUrl")))
    })
}

fn span_json(out: &mut String, s: &Span) {
    let mut o = Obj::new(out);
    o.hex("traceId", &s.trace_id);
    o.hex("spanId", &s.span_id);
    o.string("traceState", &s.trace_state);
    o.hex("parentSpanId", &s.parent_span_id);
    o.uint("flags", s.flags as u64);
    o.string("name", &s.name);
    o.uint("kind", s.kind as u64);
    o.u64_string("startTimeUnixNano", s.start_time_unix_nano);
    o.u64_string("endTimeUnixNano", s.end_time_unix_nano);
    o.attributes("attributes", &s.attributes);
    o.uint("droppedAttributesCount", s.dropped_attributes_count as u64);
    o.array("events", &s.events, |out, e: &span::Event| {
        let mut eo = Obj::new(out);
        eo.u64_string("timeUnixNano", e.time_unix_nano);
        eo.string("name", &e.name);
        eo.attributes("attributes", &e.attributes);
        eo.uint("droppedAttributesCount", e.dropped_attributes_count as u64);
        eo.end();
    });
    o.uint("droppedEventsCount", s.dropped_events_count as u64);
    o.array("links", &s.links, |out, l: &span::Link| {
        let mut lo = Obj::new(out);
        lo.hex("traceId", &l.trace_id);
        lo.hex("spanId", &l.span_id);
        lo.string("traceState", &l.trace_state);
        lo.attributes("attributes", &l.attributes);
        lo.uint("droppedAttributesCount", l.dropped_attributes_count as u64);
        lo.uint("flags", l.flags as u64);
        lo.end();
    });
    o.uint("droppedLinksCount", s.dropped_links_count as u64);
    if let Some(st) = &s.status {
        if st.code != 0 || !st.message.is_empty() {
            o.object("status", |so| {
                so.string("message", &st.message);
                so.uint("code", st.code as u64);
            });
        }
    }
    o.end();
}

fn decode_span(s: &Json) -> Result<Span, String> {
    Ok(Span {
        trace_id: hex(s, "traceId")?,
        span_id: hex(s, "spanId")?,
        trace_state: string(s, "traceState"),
        parent_span_id: hex(s, "parentSpanId")?,
        flags: uint(s, "flags") as u32,
        name: string(s, "name"),
        kind: uint(s, "kind") as i32,
        start_time_unix_nano: uint(s, "startTimeUnixNano"),
        end_time_unix_nano: uint(s, "endTimeUnixNano"),
        attributes: read_attributes(s),
        dropped_attributes_count: uint(s, "droppedAttributesCount") as u32,
        events: list(s, "events")
            .iter()
            .map(|e| span::Event {
                time_unix_nano: uint(e, "timeUnixNano"),
                name: string(e, "name"),
                attributes: read_attributes(e),
                dropped_attributes_count: uint(e, "droppedAttributesCount") as u32,
            })
            .collect(),
        dropped_events_count: uint(s, "droppedEventsCount") as u32,
        links: read_list(s, "links", |l| {
            Ok(span::Link {
                trace_id: hex(l, "traceId")?,
                span_id: hex(l, "spanId")?,
                trace_state: string(l, "traceState"),
                attributes: read_attributes(l),
                dropped_attributes_count: uint(l, "droppedAttributesCount") as u32,
                flags: uint(l, "flags") as u32,
            })
        })?,
        dropped_links_count: uint(s, "droppedLinksCount") as u32,
        status: member(s, "status").map(|st| Status { message: string(st, "message"), code: uint(st, "code") as i32 }),
    })
}

fn metric_json(out: &mut String, m: &Metric) {
    let mut o = Obj::new(out);
    o.string("name", &m.name);
    o.string("description", &m.description);
    o.string("unit", &m.unit);
    // A oneof member is written even when empty: its presence says which kind of metric this is.
    match &m.data {
        None => {}
        Some(Data::Gauge(g)) => o.object("gauge", |d| d.array("dataPoints", &g.data_points, number_point_json)),
        Some(Data::Sum(s)) => o.object("sum", |d| {
            d.array("dataPoints", &s.data_points, number_point_json);
            d.int("aggregationTemporality", s.aggregation_temporality as i64);
            d.boolean("isMonotonic", s.is_monotonic);
        }),
        Some(Data::Histogram(h)) => o.object("histogram", |d| {
            d.array("dataPoints", &h.data_points, histogram_point_json);
            d.int("aggregationTemporality", h.aggregation_temporality as i64);
        }),
        Some(Data::ExponentialHistogram(h)) => o.object("exponentialHistogram", |d| {
            d.array("dataPoints", &h.data_points, exponential_point_json);
            d.int("aggregationTemporality", h.aggregation_temporality as i64);
        }),
        Some(Data::Summary(s)) => o.object("summary", |d| d.array("dataPoints", &s.data_points, summary_point_json)),
    }
    o.attributes("metadata", &m.metadata);
    o.end();
}

fn number_point_json(out: &mut String, p: &NumberDataPoint) {
    use number_data_point::Value::{AsDouble, AsInt};
    let mut o = Obj::new(out);
    o.u64_string("startTimeUnixNano", p.start_time_unix_nano);
    o.u64_string("timeUnixNano", p.time_unix_nano);
    o.opt_double("asDouble", if let Some(AsDouble(d)) = p.value { Some(d) } else { None });
    o.array("exemplars", &p.exemplars, exemplar_json);
    o.opt_i64_string("asInt", if let Some(AsInt(i)) = p.value { Some(i) } else { None });
    o.attributes("attributes", &p.attributes);
    o.uint("flags", p.flags as u64);
    o.end();
}

fn histogram_point_json(out: &mut String, p: &HistogramDataPoint) {
    let mut o = Obj::new(out);
    o.u64_string("startTimeUnixNano", p.start_time_unix_nano);
    o.u64_string("timeUnixNano", p.time_unix_nano);
    o.u64_string("count", p.count);
    o.opt_double("sum", p.sum);
    o.u64_strings("bucketCounts", &p.bucket_counts);
    o.array("explicitBounds", &p.explicit_bounds, |out, b| push_double(out, *b));
    o.array("exemplars", &p.exemplars, exemplar_json);
    o.attributes("attributes", &p.attributes);
    o.uint("flags", p.flags as u64);
    o.opt_double("min", p.min);
    o.opt_double("max", p.max);
    o.end();
}

fn exponential_point_json(out: &mut String, p: &ExponentialHistogramDataPoint) {
    let buckets = |o: &mut Obj, k: &str, b: &Option<Buckets>| {
        if let Some(b) = b {
            o.object(k, |bo| {
                bo.int("offset", b.offset as i64);
                bo.u64_strings("bucketCounts", &b.bucket_counts);
            });
        }
    };
    let mut o = Obj::new(out);
    o.attributes("attributes", &p.attributes);
    o.u64_string("startTimeUnixNano", p.start_time_unix_nano);
    o.u64_string("timeUnixNano", p.time_unix_nano);
    o.u64_string("count", p.count);
    o.opt_double("sum", p.sum);
    o.int("scale", p.scale as i64);
    o.u64_string("zeroCount", p.zero_count);
    buckets(&mut o, "positive", &p.positive);
    buckets(&mut o, "negative", &p.negative);
    o.uint("flags", p.flags as u64);
    o.array("exemplars", &p.exemplars, exemplar_json);
    o.opt_double("min", p.min);
    o.opt_double("max", p.max);
    o.double("zeroThreshold", p.zero_threshold);
    o.end();
}

fn summary_point_json(out: &mut String, p: &SummaryDataPoint) {
    let mut o = Obj::new(out);
    o.u64_string("startTimeUnixNano", p.start_time_unix_nano);
    o.u64_string("timeUnixNano", p.time_unix_nano);
    o.u64_string("count", p.count);
    o.double("sum", p.sum);
    o.array("quantileValues", &p.quantile_values, |out, q| {
        let mut qo = Obj::new(out);
        qo.double("quantile", q.quantile);
        qo.double("value", q.value);
        qo.end();
    });
    o.attributes("attributes", &p.attributes);
    o.uint("flags", p.flags as u64);
    o.end();
}

fn exemplar_json(out: &mut String, e: &Exemplar) {
    use exemplar::Value::{AsDouble, AsInt};
    let mut o = Obj::new(out);
    o.u64_string("timeUnixNano", e.time_unix_nano);
    o.opt_double("asDouble", if let Some(AsDouble(d)) = e.value { Some(d) } else { None });
    o.hex("spanId", &e.span_id);
    o.hex("traceId", &e.trace_id);
    o.opt_i64_string("asInt", if let Some(AsInt(i)) = e.value { Some(i) } else { None });
    o.attributes("filteredAttributes", &e.filtered_attributes);
    o.end();
}

fn decode_metric(m: &Json) -> Result<Metric, String> {
    let data = if let Some(g) = member(m, "gauge") {
        Some(Data::Gauge(Gauge { data_points: read_list(g, "dataPoints", decode_number_point)? }))
    } else if let Some(s) = member(m, "sum") {
        Some(Data::Sum(Sum {
            data_points: read_list(s, "dataPoints", decode_number_point)?,
            aggregation_temporality: int(s, "aggregationTemporality") as i32,
            is_monotonic: member(s, "isMonotonic").and_then(Json::as_bool).unwrap_or_default(),
        }))
    } else if let Some(h) = member(m, "histogram") {
        Some(Data::Histogram(Histogram {
            data_points: read_list(h, "dataPoints", decode_histogram_point)?,
            aggregation_temporality: int(h, "aggregationTemporality") as i32,
        }))
    } else if let Some(h) = member(m, "exponentialHistogram") {
        Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: read_list(h, "dataPoints", decode_exponential_point)?,
            aggregation_temporality: int(h, "aggregationTemporality") as i32,
        }))
    } else {
        member(m, "summary").map(|s| {
            Data::Summary(Summary { data_points: list(s, "dataPoints").iter().map(decode_summary_point).collect() })
        })
    };
    Ok(Metric {
        name: string(m, "name"),
        description: string(m, "description"),
        unit: string(m, "unit"),
        metadata: read_key_values(m, "metadata"),
        data,
    })
}

fn decode_number_point(p: &Json) -> Result<NumberDataPoint, String> {
    use number_data_point::Value::{AsDouble, AsInt};
    Ok(NumberDataPoint {
        attributes: read_attributes(p),
        start_time_unix_nano: uint(p, "startTimeUnixNano"),
        time_unix_nano: uint(p, "timeUnixNano"),
        exemplars: read_list(p, "exemplars", decode_exemplar)?,
        flags: uint(p, "flags") as u32,
        value: number(p, AsDouble, AsInt),
    })
}

fn decode_histogram_point(p: &Json) -> Result<HistogramDataPoint, String> {
    Ok(HistogramDataPoint {
        attributes: read_attributes(p),
        start_time_unix_nano: uint(p, "startTimeUnixNano"),
        time_unix_nano: uint(p, "timeUnixNano"),
        count: uint(p, "count"),
        sum: opt_double(p, "sum"),
        bucket_counts: u64_list(p, "bucketCounts"),
        explicit_bounds: list(p, "explicitBounds").iter().map(|b| as_double(b).unwrap_or_default()).collect(),
        exemplars: read_list(p, "exemplars", decode_exemplar)?,
        flags: uint(p, "flags") as u32,
        min: opt_double(p, "min"),
        max: opt_double(p, "max"),
    })
}

fn decode_exponential_point(p: &Json) -> Result<ExponentialHistogramDataPoint, String> {
    let buckets = |k| {
        member(p, k).map(|b| Buckets { offset: int(b, "offset") as i32, bucket_counts: u64_list(b, "bucketCounts") })
    };
    Ok(ExponentialHistogramDataPoint {
        attributes: read_attributes(p),
        start_time_unix_nano: uint(p, "startTimeUnixNano"),
        time_unix_nano: uint(p, "timeUnixNano"),
        count: uint(p, "count"),
        sum: opt_double(p, "sum"),
        scale: int(p, "scale") as i32,
        zero_count: uint(p, "zeroCount"),
        positive: buckets("positive"),
        negative: buckets("negative"),
        flags: uint(p, "flags") as u32,
        exemplars: read_list(p, "exemplars", decode_exemplar)?,
        min: opt_double(p, "min"),
        max: opt_double(p, "max"),
        zero_threshold: double(p, "zeroThreshold"),
    })
}

fn decode_summary_point(p: &Json) -> SummaryDataPoint {
    SummaryDataPoint {
        attributes: read_attributes(p),
        start_time_unix_nano: uint(p, "startTimeUnixNano"),
        time_unix_nano: uint(p, "timeUnixNano"),
        count: uint(p, "count"),
        sum: double(p, "sum"),
        quantile_values: list(p, "quantileValues")
            .iter()
            .map(|q| ValueAtQuantile { quantile: double(q, "quantile"), value: double(q, "value") })
            .collect(),
        flags: uint(p, "flags") as u32,
    }
}

fn decode_exemplar(e: &Json) -> Result<Exemplar, String> {
    use exemplar::Value::{AsDouble, AsInt};
    Ok(Exemplar {
        filtered_attributes: read_key_values(e, "filteredAttributes"),
        time_unix_nano: uint(e, "timeUnixNano"),
        span_id: hex(e, "spanId")?,
        trace_id: hex(e, "traceId")?,
        value: number(e, AsDouble, AsInt),
    })
}

/// The `asDouble`/`asInt` oneof of data points and exemplars, built with the
/// variants of whichever of the two message types holds it.
fn number<V>(v: &Json, double: fn(f64) -> V, int: fn(i64) -> V) -> Option<V> {
    match opt_double(v, "asDouble") {
        Some(d) => Some(double(d)),
        None => member(v, "asInt").and_then(as_i64).map(int),
    }
}

fn log_json(out: &mut String, l: &LogRecord) {
    let mut o = Obj::new(out);
    o.u64_string("timeUnixNano", l.time_unix_nano);
    o.int("severityNumber", l.severity_number as i64);
    o.string("severityText", &l.severity_text);
    if let Some(body) = &l.body {
        o.key("body");
        any_value(o.out(), body);
    }
    o.attributes("attributes", &l.attributes);
    o.uint("droppedAttributesCount", l.dropped_attributes_count as u64);
    o.uint("flags", l.flags as u64);
    o.hex("traceId", &l.trace_id);
    o.hex("spanId", &l.span_id);
    o.u64_string("observedTimeUnixNano", l.observed_time_unix_nano);
    o.string("eventName", &l.event_name);
    o.end();
}

fn decode_log(l: &Json) -> Result<LogRecord, String> {
    Ok(LogRecord {
        time_unix_nano: uint(l, "timeUnixNano"),
        observed_time_unix_nano: uint(l, "observedTimeUnixNano"),
        severity_number: int(l, "severityNumber") as i32,
        severity_text: string(l, "severityText"),
        body: member(l, "body").map(read_value),
        attributes: read_attributes(l),
        dropped_attributes_count: uint(l, "droppedAttributesCount") as u32,
        flags: uint(l, "flags") as u32,
        trace_id: hex(l, "traceId")?,
        span_id: hex(l, "spanId")?,
        event_name: string(l, "eventName"),
    })
}

/// A member by its lowerCamelCase name or its original snake_case name;
/// null counts as absent, as Proto3 JSON says it means the default.
fn member<'a>(v: &'a Json, camel: &str) -> Option<&'a Json> {
    v.get(camel).filter(|m| !m.is_null()).or_else(|| {
        let snake: String = camel
            .chars()
            .flat_map(|c| if c.is_ascii_uppercase() { vec!['_', c.to_ascii_lowercase()] } else { vec![c] })
            .collect();
        v.get(snake).filter(|m| !m.is_null())
    })
}

fn list<'a>(v: &'a Json, name: &str) -> &'a [Json] {
    member(v, name).and_then(Json::as_array).map_or(&[], Vec::as_slice)
}

fn read_list<T>(v: &Json, name: &str, read: impl Fn(&Json) -> Result<T, String>) -> Result<Vec<T>, String> {
    list(v, name).iter().map(read).collect()
}

fn string(v: &Json, name: &str) -> String {
    member(v, name).and_then(Json::as_str).unwrap_or_default().to_owned()
}

/// An unsigned integer written as a number or a decimal string.
fn uint(v: &Json, name: &str) -> u64 {
    member(v, name).and_then(as_u64).unwrap_or(0)
}

/// A signed integer (enums, sint32 fields) written as a number or a decimal string.
fn int(v: &Json, name: &str) -> i64 {
    member(v, name).and_then(as_i64).unwrap_or(0)
}

fn as_u64(n: &Json) -> Option<u64> {
    n.as_u64().or_else(|| n.as_str()?.parse().ok())
}

fn as_i64(n: &Json) -> Option<i64> {
    n.as_i64().or_else(|| n.as_str()?.parse().ok())
}

fn u64_list(v: &Json, name: &str) -> Vec<u64> {
    list(v, name).iter().map(|n| as_u64(n).unwrap_or_default()).collect()
}

/// A double that is present, so that an explicit zero in an optional field or
/// oneof survives; a value that is not a number reads as absent.
fn opt_double(v: &Json, name: &str) -> Option<f64> {
    member(v, name).and_then(as_double)
}

fn double(v: &Json, name: &str) -> f64 {
    opt_double(v, name).unwrap_or(0.0)
}

/// A double as a number or a string. A number reads back bit for bit only
/// with serde_json's `float_roundtrip` feature; without it, one in ten or more
/// doubles needing 17 significant digits comes back one ULP away.
fn as_double(d: &Json) -> Option<f64> {
    d.as_f64().or_else(|| match d.as_str()? {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    })
}

fn hex(v: &Json, name: &str) -> Result<Vec<u8>, String> {
    let Some(text) = member(v, name).and_then(Json::as_str).filter(|t| !t.is_empty()) else { return Ok(Vec::new()) };
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{name} {text:?} is not hex"));
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| e.to_string())).collect()
}

fn read_attributes(v: &Json) -> Vec<KeyValue> {
    read_key_values(v, "attributes")
}

fn read_key_values(v: &Json, name: &str) -> Vec<KeyValue> {
    list(v, name).iter().map(read_key_value).collect()
}

fn read_key_value(kv: &Json) -> KeyValue {
    KeyValue { key: string(kv, "key"), value: member(kv, "value").map(read_value), ..Default::default() }
}

fn read_value(v: &Json) -> AnyValue {
    let value = if let Some(s) = member(v, "stringValue").and_then(Json::as_str) {
        Some(Value::StringValue(s.to_owned()))
    } else if let Some(b) = member(v, "boolValue").and_then(Json::as_bool) {
        Some(Value::BoolValue(b))
    } else if let Some(i) = member(v, "intValue") {
        as_i64(i).map(Value::IntValue)
    } else if let Some(d) = member(v, "doubleValue") {
        as_double(d).map(Value::DoubleValue)
    } else if let Some(b) = member(v, "bytesValue").and_then(Json::as_str) {
        base64::engine::general_purpose::STANDARD.decode(b).ok().map(Value::BytesValue)
    } else if let Some(a) = member(v, "arrayValue") {
        Some(Value::ArrayValue(ArrayValue { values: list(a, "values").iter().map(read_value).collect() }))
    } else {
        member(v, "kvlistValue").map(|kv| Value::KvlistValue(KeyValueList { values: read_key_values(kv, "values") }))
    };
    AnyValue { value }
}

fn key_values(out: &mut String, kvs: &[KeyValue]) {
    out.push('[');
    for (i, kv) in kvs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        push_str(out, &kv.key);
        if let Some(v) = &kv.value {
            out.push_str(",\"value\":");
            any_value(out, v);
        }
        out.push('}');
    }
    out.push(']');
}

fn any_value(out: &mut String, v: &AnyValue) {
    match &v.value {
        None => out.push_str("{}"),
        Some(Value::StringValue(s)) => {
            out.push_str("{\"stringValue\":");
            push_str(out, s);
            out.push('}');
        }
        Some(Value::BoolValue(b)) => {
            let _ = write!(out, "{{\"boolValue\":{b}}}");
        }
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{{\"intValue\":\"{i}\"}}");
        }
        Some(Value::DoubleValue(d)) => {
            out.push_str("{\"doubleValue\":");
            push_double(out, *d);
            out.push('}');
        }
        Some(Value::BytesValue(b)) => {
            out.push_str("{\"bytesValue\":\"");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push_str("\"}");
        }
        Some(Value::ArrayValue(a)) => {
            out.push_str("{\"arrayValue\":{\"values\":[");
            for (i, v) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                any_value(out, v);
            }
            out.push_str("]}}");
        }
        Some(Value::KvlistValue(kv)) => {
            out.push_str("{\"kvlistValue\":{\"values\":");
            key_values(out, &kv.values);
            out.push_str("}}");
        }
        Some(Value::StringValueStrindex(i)) => {
            let _ = write!(out, "{{\"stringValueStrindex\":{i}}}");
        }
    }
}

fn push_double(out: &mut String, d: f64) {
    if d.is_nan() {
        out.push_str("\"NaN\"");
    } else if d.is_infinite() {
        out.push_str(if d > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
    } else {
        // serde_json prints the shortest text that reads back as the same double.
        out.push_str(&serde_json::Number::from_f64(d).expect("finite").to_string());
    }
}

fn push_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("strings always serialise"));
}

/// Writes one JSON object member by member, leaving out default values.
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
    }

    fn out(&mut self) -> &mut String {
        self.out
    }

    fn string(&mut self, k: &str, v: &str) {
        if !v.is_empty() {
            self.key(k);
            push_str(self.out, v);
        }
    }

    fn hex(&mut self, k: &str, v: &[u8]) {
        if !v.is_empty() {
            self.key(k);
            self.out.push('"');
            self.out.push_str(&to_hex(v));
            self.out.push('"');
        }
    }

    fn uint(&mut self, k: &str, v: u64) {
        if v != 0 {
            self.key(k);
            let _ = write!(self.out, "{v}");
        }
    }

    fn u64_string(&mut self, k: &str, v: u64) {
        if v != 0 {
            self.key(k);
            let _ = write!(self.out, "\"{v}\"");
        }
    }

    fn attributes(&mut self, k: &str, kvs: &[KeyValue]) {
        if !kvs.is_empty() {
            self.key(k);
            key_values(self.out, kvs);
        }
    }

    fn array<T>(&mut self, k: &str, items: &[T], mut each: impl FnMut(&mut String, &T)) {
        if items.is_empty() {
            return;
        }
        self.key(k);
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            each(self.out, item);
        }
        self.out.push(']');
    }

    /// A nested object, written whatever its contents, for members whose
    /// presence carries meaning (optional messages, oneof members).
    fn object(&mut self, k: &str, members: impl FnOnce(&mut Obj)) {
        self.key(k);
        let mut o = Obj::new(self.out);
        members(&mut o);
        o.end();
    }

    fn int(&mut self, k: &str, v: i64) {
        if v != 0 {
            self.key(k);
            let _ = write!(self.out, "{v}");
        }
    }

    fn boolean(&mut self, k: &str, v: bool) {
        if v {
            self.key(k);
            self.out.push_str("true");
        }
    }

    fn double(&mut self, k: &str, v: f64) {
        if v != 0.0 {
            self.key(k);
            push_double(self.out, v);
        }
    }

    /// Written whenever present, zero included: optional fields and oneof
    /// members keep their presence in the protobuf message.
    fn opt_double(&mut self, k: &str, v: Option<f64>) {
        if let Some(v) = v {
            self.key(k);
            push_double(self.out, v);
        }
    }

    fn opt_i64_string(&mut self, k: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.key(k);
            let _ = write!(self.out, "\"{v}\"");
        }
    }

    fn u64_strings(&mut self, k: &str, vs: &[u64]) {
        self.array(k, vs, |out, v| {
            let _ = write!(out, "\"{v}\"");
        });
    }

    fn end(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point;
    use prost::Message;

    use super::*;
    use crate::attributes::{key_value, string_value};

    /// Compared as protobuf bytes, since NaN is not equal to itself.
    fn assert_same<M: Message + std::fmt::Debug>(got: &M, want: &M) {
        assert_eq!(got.encode_to_vec(), want.encode_to_vec(), "\n got {got:?}\nwant {want:?}");
    }

    fn any(v: Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    #[test]
    fn decode_reads_what_encode_writes() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            name: "n".into(),
            kind: 3,
            start_time_unix_nano: u64::MAX,
            end_time_unix_nano: 6,
            attributes: vec![
                key_value("nan", AnyValue { value: Some(Value::DoubleValue(f64::NEG_INFINITY)) }),
                key_value("b", AnyValue { value: Some(Value::BytesValue(vec![0, 255])) }),
                key_value(
                    "m",
                    AnyValue {
                        value: Some(Value::KvlistValue(KeyValueList {
                            values: vec![key_value("x", string_value("y"))],
                        })),
                    },
                ),
                key_value(
                    "a",
                    AnyValue {
                        value: Some(Value::ArrayValue(ArrayValue {
                            values: vec![AnyValue { value: Some(Value::IntValue(i64::MIN)) }],
                        })),
                    },
                ),
            ],
            events: vec![span::Event { time_unix_nano: 9, name: "e".into(), ..Default::default() }],
            links: vec![span::Link { trace_id: vec![4; 16], span_id: vec![5; 8], flags: 1, ..Default::default() }],
            status: Some(Status { code: 2, message: "m".into() }),
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![key_value("service.name", string_value("s"))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope { name: "sc".into(), ..Default::default() }),
                    spans: vec![span],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let text = trace_request(&req);
        assert_eq!(decode_trace_request(text.as_bytes()).unwrap(), req);
        let snake = r#"{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"0a0b","start_time_unix_nano":12,"attributes":[{"key":"k","value":{"int_value":5}}]}]}]}]}"#;
        let got = decode_trace_request(snake.as_bytes()).unwrap();
        let s = &got.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!((s.trace_id.clone(), s.start_time_unix_nano), (vec![10, 11], 12));
        assert_eq!(s.attributes[0].value.as_ref().unwrap().value, Some(Value::IntValue(5)));
        assert!(decode_trace_request(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#).is_err());
    }

    #[test]
    fn values_and_defaults() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "n".into(),
            kind: 2,
            start_time_unix_nano: 5,
            end_time_unix_nano: 6,
            attributes: vec![
                key_value("s", string_value("a\"b")),
                key_value("nan", AnyValue { value: Some(Value::DoubleValue(f64::NAN)) }),
                key_value("d", AnyValue { value: Some(Value::DoubleValue(1.0)) }),
                key_value("i", AnyValue { value: Some(Value::IntValue(-7)) }),
            ],
            ..Default::default()
        };
        let mut out = String::new();
        span_json(&mut out, &span);
        assert_eq!(
            out,
            r#"{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","name":"n","kind":2,"startTimeUnixNano":"5","endTimeUnixNano":"6","attributes":[{"key":"s","value":{"stringValue":"a\"b"}},{"key":"nan","value":{"doubleValue":"NaN"}},{"key":"d","value":{"doubleValue":1.0}},{"key":"i","value":{"intValue":"-7"}}]}"#
        );
    }

    #[test]
    fn trace_golden_reencodes_to_the_same_bytes() {
        let golden = include_str!("../../tests/conformance/golden/agent_run_json_gzip/export-0.json");
        assert_eq!(trace_request(&decode_trace_request(golden.as_bytes()).unwrap()), golden);
    }

    fn full_resource() -> Option<Resource> {
        Some(Resource {
            attributes: vec![key_value("service.name", string_value("s"))],
            dropped_attributes_count: 3,
            ..Default::default()
        })
    }

    fn full_scope() -> Option<InstrumentationScope> {
        Some(InstrumentationScope {
            name: "sc".into(),
            version: "1.0".into(),
            attributes: vec![key_value("a", any(Value::BoolValue(false)))],
            dropped_attributes_count: 4,
        })
    }

    fn exemplars() -> Vec<Exemplar> {
        use exemplar::Value::{AsDouble, AsInt};
        vec![
            Exemplar {
                filtered_attributes: vec![key_value("f", string_value("x"))],
                time_unix_nano: u64::MAX,
                span_id: vec![7; 8],
                trace_id: vec![8; 16],
                value: Some(AsDouble(f64::NAN)),
            },
            Exemplar { value: Some(AsDouble(0.0)), ..Default::default() },
            Exemplar { value: Some(AsDouble(-0.1)), ..Default::default() },
            Exemplar { value: Some(AsInt(0)), ..Default::default() },
            Exemplar { value: Some(AsInt(i64::MIN)), ..Default::default() },
            Exemplar::default(),
        ]
    }

    fn every_metric() -> ExportMetricsServiceRequest {
        use number_data_point::Value::{AsDouble, AsInt};
        let attributes = vec![key_value("k", string_value("v"))];
        let mut number_points: Vec<NumberDataPoint> = [
            AsDouble(f64::INFINITY),
            AsDouble(f64::NEG_INFINITY),
            AsDouble(f64::NAN),
            AsDouble(0.0),
            AsDouble(-1e-300),
            AsDouble(f64::MAX),
            AsInt(0),
            AsInt(i64::MAX),
            AsInt(-3),
        ]
        .into_iter()
        .map(|v| NumberDataPoint { value: Some(v), ..Default::default() })
        .collect();
        number_points.push(NumberDataPoint::default());
        number_points.push(NumberDataPoint {
            attributes: attributes.clone(),
            start_time_unix_nano: 1,
            time_unix_nano: u64::MAX,
            exemplars: exemplars(),
            flags: 1,
            value: Some(AsInt(i64::MIN)),
        });
        let metrics = vec![
            Metric {
                name: "g".into(),
                description: "a gauge".into(),
                unit: "ms".into(),
                metadata: vec![key_value("m", any(Value::IntValue(1)))],
                data: Some(Data::Gauge(Gauge { data_points: number_points.clone() })),
            },
            Metric {
                name: "s".into(),
                data: Some(Data::Sum(Sum {
                    data_points: number_points,
                    aggregation_temporality: 2,
                    is_monotonic: true,
                })),
                ..Default::default()
            },
            Metric {
                data: Some(Data::Sum(Sum { aggregation_temporality: 1, ..Default::default() })),
                ..Default::default()
            },
            Metric {
                name: "h".into(),
                data: Some(Data::Histogram(Histogram {
                    data_points: vec![
                        HistogramDataPoint {
                            attributes: attributes.clone(),
                            start_time_unix_nano: 1,
                            time_unix_nano: 2,
                            count: u64::MAX,
                            sum: Some(0.0),
                            bucket_counts: vec![0, u64::MAX, 3, 0, 0],
                            explicit_bounds: vec![f64::NEG_INFINITY, -1.5, 0.0, 1e300],
                            exemplars: exemplars(),
                            flags: 1,
                            min: Some(f64::NAN),
                            max: Some(f64::INFINITY),
                        },
                        HistogramDataPoint { sum: Some(-2.5), min: Some(0.0), max: Some(0.0), ..Default::default() },
                        HistogramDataPoint::default(),
                    ],
                    aggregation_temporality: 1,
                })),
                ..Default::default()
            },
            Metric {
                name: "e".into(),
                data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![
                        ExponentialHistogramDataPoint {
                            attributes: attributes.clone(),
                            start_time_unix_nano: 1,
                            time_unix_nano: 2,
                            count: 9,
                            sum: Some(12.5),
                            scale: -4,
                            zero_count: u64::MAX,
                            positive: Some(Buckets { offset: -7, bucket_counts: vec![1, 0, u64::MAX] }),
                            negative: Some(Buckets::default()),
                            flags: 1,
                            exemplars: exemplars(),
                            min: Some(-0.25),
                            max: Some(0.0),
                            zero_threshold: 1e-9,
                        },
                        ExponentialHistogramDataPoint {
                            scale: 20,
                            negative: Some(exponential_histogram_data_point::Buckets {
                                offset: i32::MIN,
                                bucket_counts: vec![0],
                            }),
                            zero_threshold: f64::NAN,
                            ..Default::default()
                        },
                        ExponentialHistogramDataPoint::default(),
                    ],
                    aggregation_temporality: 2,
                })),
                ..Default::default()
            },
            Metric {
                name: "q".into(),
                data: Some(Data::Summary(Summary {
                    data_points: vec![
                        SummaryDataPoint {
                            attributes,
                            start_time_unix_nano: 1,
                            time_unix_nano: 2,
                            count: 4,
                            sum: f64::INFINITY,
                            quantile_values: vec![
                                ValueAtQuantile { quantile: 0.0, value: -1.0 },
                                ValueAtQuantile { quantile: 0.5, value: f64::NAN },
                                ValueAtQuantile { quantile: 1.0, value: 1e10 },
                            ],
                            flags: 1,
                        },
                        SummaryDataPoint { sum: f64::NEG_INFINITY, ..Default::default() },
                        SummaryDataPoint::default(),
                    ],
                })),
                ..Default::default()
            },
            // Empty kinds still say which kind they are.
            Metric { data: Some(Data::Gauge(Gauge::default())), ..Default::default() },
            Metric { data: Some(Data::Histogram(Histogram::default())), ..Default::default() },
            Metric { data: Some(Data::ExponentialHistogram(ExponentialHistogram::default())), ..Default::default() },
            Metric { data: Some(Data::Summary(Summary::default())), ..Default::default() },
            Metric::default(),
        ];
        ExportMetricsServiceRequest {
            resource_metrics: vec![
                ResourceMetrics {
                    resource: full_resource(),
                    scope_metrics: vec![
                        ScopeMetrics { scope: full_scope(), metrics, schema_url: "https://s/1".into() },
                        ScopeMetrics { scope: Some(InstrumentationScope::default()), ..Default::default() },
                        ScopeMetrics::default(),
                    ],
                    schema_url: "https://r/1".into(),
                },
                ResourceMetrics { resource: Some(Resource::default()), ..Default::default() },
                ResourceMetrics::default(),
            ],
        }
    }

    fn every_log() -> ExportLogsServiceRequest {
        let bodies = [
            Value::StringValue("multi\nline \u{1F600} \"quoted\"".into()),
            Value::StringValue(String::new()),
            Value::BoolValue(true),
            Value::BoolValue(false),
            Value::IntValue(i64::MIN),
            Value::IntValue(0),
            Value::DoubleValue(f64::NAN),
            Value::DoubleValue(f64::NEG_INFINITY),
            Value::DoubleValue(0.0),
            Value::BytesValue(vec![0, 1, 254, 255]),
            Value::BytesValue(Vec::new()),
            Value::ArrayValue(ArrayValue {
                values: vec![
                    string_value("x"),
                    any(Value::IntValue(2)),
                    any(Value::ArrayValue(ArrayValue::default())),
                    AnyValue::default(),
                ],
            }),
            Value::KvlistValue(KeyValueList {
                values: vec![
                    key_value("k", string_value("v")),
                    key_value(
                        "nested",
                        any(Value::KvlistValue(KeyValueList {
                            values: vec![key_value("d", any(Value::DoubleValue(f64::INFINITY)))],
                        })),
                    ),
                    key_value("empty", AnyValue::default()),
                    KeyValue { key: "absent".into(), value: None, ..Default::default() },
                ],
            }),
            Value::KvlistValue(KeyValueList::default()),
        ];
        let mut log_records: Vec<LogRecord> =
            bodies.into_iter().map(|b| LogRecord { body: Some(any(b)), ..Default::default() }).collect();
        log_records.push(LogRecord {
            time_unix_nano: u64::MAX,
            observed_time_unix_nano: 2,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: Some(AnyValue::default()),
            attributes: vec![key_value("a", any(Value::DoubleValue(-2.5)))],
            dropped_attributes_count: 5,
            flags: 1,
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            event_name: "ev".into(),
        });
        log_records.push(LogRecord { severity_number: -1, ..Default::default() });
        log_records.push(LogRecord::default());
        ExportLogsServiceRequest {
            resource_logs: vec![
                ResourceLogs {
                    resource: full_resource(),
                    scope_logs: vec![
                        ScopeLogs { scope: full_scope(), log_records, schema_url: "https://s/1".into() },
                        ScopeLogs::default(),
                    ],
                    schema_url: "https://r/1".into(),
                },
                ResourceLogs::default(),
            ],
        }
    }

    #[test]
    fn metrics_read_back_as_written() {
        let req = every_metric();
        let text = metrics_request(&req);
        assert_same(&decode_metrics_request(text.as_bytes()).unwrap(), &req);
        assert_eq!(metrics_request(&decode_metrics_request(text.as_bytes()).unwrap()), text);
    }

    #[test]
    fn logs_read_back_as_written() {
        let req = every_log();
        let text = logs_request(&req);
        assert_same(&decode_logs_request(text.as_bytes()).unwrap(), &req);
        assert_eq!(logs_request(&decode_logs_request(text.as_bytes()).unwrap()), text);
    }

    #[test]
    fn protobuf_goldens_read_back_through_json() {
        for pb in [
            &include_bytes!("../../tests/conformance/golden/agent_run/export-0.pb")[..],
            &include_bytes!("../../tests/conformance/golden/limits/export-0.pb")[..],
        ] {
            let req = ExportTraceServiceRequest::decode(pb).unwrap();
            assert_same(&decode_trace_request(trace_request(&req).as_bytes()).unwrap(), &req);
        }
    }

    fn small_metrics() -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![key_value("service.name", string_value("s"))],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope { name: "m".into(), version: "1".into(), ..Default::default() }),
                    metrics: vec![
                        Metric {
                            name: "requests".into(),
                            unit: "1".into(),
                            data: Some(Data::Sum(Sum {
                                data_points: vec![NumberDataPoint {
                                    attributes: vec![key_value("k", string_value("v"))],
                                    start_time_unix_nano: 1,
                                    time_unix_nano: 2,
                                    value: Some(number_data_point::Value::AsInt(5)),
                                    ..Default::default()
                                }],
                                aggregation_temporality: 2,
                                is_monotonic: true,
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "latency".into(),
                            unit: "ms".into(),
                            data: Some(Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint {
                                    time_unix_nano: 2,
                                    count: 3,
                                    sum: Some(7.5),
                                    bucket_counts: vec![1, 2],
                                    explicit_bounds: vec![5.0],
                                    exemplars: vec![Exemplar {
                                        trace_id: vec![1; 16],
                                        span_id: vec![2; 8],
                                        value: Some(exemplar::Value::AsDouble(6.0)),
                                        ..Default::default()
                                    }],
                                    min: Some(0.0),
                                    max: Some(f64::INFINITY),
                                    ..Default::default()
                                }],
                                aggregation_temporality: 1,
                            })),
                            ..Default::default()
                        },
                    ],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn metrics_exact_json() {
        assert_eq!(
            metrics_request(&small_metrics()),
            concat!(
                r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}}]},"#,
                r#""scopeMetrics":[{"scope":{"name":"m","version":"1"},"metrics":["#,
                r#"{"name":"requests","unit":"1","sum":{"dataPoints":[{"startTimeUnixNano":"1","timeUnixNano":"2","#,
                r#""asInt":"5","attributes":[{"key":"k","value":{"stringValue":"v"}}]}],"aggregationTemporality":2,"#,
                r#""isMonotonic":true}},"#,
                r#"{"name":"latency","unit":"ms","histogram":{"dataPoints":[{"timeUnixNano":"2","count":"3","sum":7.5,"#,
                r#""bucketCounts":["1","2"],"explicitBounds":[5.0],"exemplars":[{"asDouble":6.0,"#,
                r#""spanId":"0202020202020202","traceId":"01010101010101010101010101010101"}],"min":0.0,"#,
                r#""max":"Infinity"}],"aggregationTemporality":1}}]}]}]}"#,
            )
        );
    }

    fn small_logs() -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![key_value("service.name", string_value("s"))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope { name: "l".into(), ..Default::default() }),
                    log_records: vec![LogRecord {
                        time_unix_nano: 1,
                        observed_time_unix_nano: 2,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(string_value("hello")),
                        attributes: vec![key_value("n", any(Value::IntValue(1)))],
                        flags: 1,
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        event_name: "e".into(),
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn logs_exact_json() {
        assert_eq!(
            logs_request(&small_logs()),
            concat!(
                r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}}]},"#,
                r#""scopeLogs":[{"scope":{"name":"l"},"logRecords":[{"timeUnixNano":"1","severityNumber":9,"#,
                r#""severityText":"INFO","body":{"stringValue":"hello"},"attributes":[{"key":"n","value":{"intValue":"1"}}],"#,
                r#""flags":1,"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","#,
                r#""observedTimeUnixNano":"2","eventName":"e"}]}]}]}"#,
            )
        );
    }

    #[test]
    fn metrics_read_leniently() {
        let text = r#"{"resource_metrics":[{"resource":null,"unknown":{"x":[1,2]},"scope_metrics":[{
            "scope":{"name":"s","dropped_attributes_count":"2"},"metrics":[
            {"name":"g","future":1,"gauge":{"data_points":[{"time_unix_nano":12,"as_int":-5,"flags":"1","extra":true,
                "exemplars":[{"as_double":"1.5","trace_id":"0A0b","span_id":"0c0d",
                    "filtered_attributes":[{"key":"a","value":{"bool_value":true}}]}]}]}},
            {"name":"e","exponential_histogram":{"aggregation_temporality":"2","data_points":[{"scale":"-2",
                "zero_count":7,"positive":{"offset":-1,"bucket_counts":[1,"2"]},"zero_threshold":"NaN","sum":3,
                "min":null}]}},
            {"name":"h","histogram":{"data_points":[{"bucket_counts":[4],"explicit_bounds":["Infinity",2],
                "count":"18446744073709551615","start_time_unix_nano":"9"}]}},
            {"name":"q","summary":{"data_points":[{"quantile_values":[{"quantile":0.5,"value":"-Infinity"}]}]}},
            {"name":"s","sum":{"is_monotonic":true,"aggregation_temporality":1,"data_points":[{"as_double":2}]}}
        ]}]}]}"#;
        let got = decode_metrics_request(text.as_bytes()).unwrap();
        let rm = &got.resource_metrics[0];
        assert_eq!(rm.resource, None);
        let sm = &rm.scope_metrics[0];
        assert_eq!(sm.scope.as_ref().map(|s| (s.name.as_str(), s.dropped_attributes_count)), Some(("s", 2)));
        let data: Vec<_> = sm.metrics.iter().map(|m| m.data.clone().unwrap()).collect();
        let Data::Gauge(g) = &data[0] else { panic!("{:?}", data[0]) };
        let p = &g.data_points[0];
        assert_eq!((p.time_unix_nano, p.flags, p.value), (12, 1, Some(number_data_point::Value::AsInt(-5))));
        let e = &p.exemplars[0];
        assert_eq!(
            (e.value, e.trace_id.as_slice(), e.span_id.as_slice()),
            (Some(exemplar::Value::AsDouble(1.5)), &[10, 11][..], &[12, 13][..])
        );
        assert_eq!(e.filtered_attributes[0].value, Some(any(Value::BoolValue(true))));
        let Data::ExponentialHistogram(h) = &data[1] else { panic!("{:?}", data[1]) };
        let p = &h.data_points[0];
        assert_eq!((h.aggregation_temporality, p.scale, p.zero_count, p.sum, p.min), (2, -2, 7, Some(3.0), None));
        assert_eq!(p.positive, Some(Buckets { offset: -1, bucket_counts: vec![1, 2] }));
        assert!(p.zero_threshold.is_nan());
        let Data::Histogram(h) = &data[2] else { panic!("{:?}", data[2]) };
        let p = &h.data_points[0];
        assert_eq!((p.count, p.start_time_unix_nano, p.bucket_counts.as_slice()), (u64::MAX, 9, &[4][..]));
        assert_eq!(p.explicit_bounds, [f64::INFINITY, 2.0]);
        let Data::Summary(s) = &data[3] else { panic!("{:?}", data[3]) };
        assert_eq!(s.data_points[0].quantile_values, [ValueAtQuantile { quantile: 0.5, value: f64::NEG_INFINITY }]);
        let Data::Sum(s) = &data[4] else { panic!("{:?}", data[4]) };
        assert_eq!((s.is_monotonic, s.aggregation_temporality), (true, 1));
        assert_eq!(s.data_points[0].value, Some(number_data_point::Value::AsDouble(2.0)));

        assert!(decode_metrics_request(br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"exemplars":[{"spanId":"0g"}]}]}}]}]}]}"#).is_err());
        assert!(decode_metrics_request(b"{").is_err());
    }

    #[test]
    fn logs_read_leniently() {
        let text = r#"{"resource_logs":[{"scope_logs":[{"log_records":[{"time_unix_nano":5,
            "observed_time_unix_nano":"6","severity_number":"13","severity_text":"WARN",
            "body":{"kvlist_value":{"values":[{"key":"k","value":{"array_value":{"values":[{"bytes_value":"AP8="}]}}}]}},
            "trace_id":"0102","span_id":"03","dropped_attributes_count":4,"flags":257,"event_name":"ev",
            "futureField":{"a":[]}}]}]}],"another":1}"#;
        let got = decode_logs_request(text.as_bytes()).unwrap();
        let want = LogRecord {
            time_unix_nano: 5,
            observed_time_unix_nano: 6,
            severity_number: 13,
            severity_text: "WARN".into(),
            body: Some(any(Value::KvlistValue(KeyValueList {
                values: vec![key_value(
                    "k",
                    any(Value::ArrayValue(ArrayValue { values: vec![any(Value::BytesValue(vec![0, 255]))] })),
                )],
            }))),
            dropped_attributes_count: 4,
            flags: 257,
            trace_id: vec![1, 2],
            span_id: vec![3],
            event_name: "ev".into(),
            ..Default::default()
        };
        assert_eq!(got.resource_logs[0].scope_logs[0].log_records, [want]);
        assert!(
            decode_logs_request(br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"abc"}]}]}]}"#).is_err()
        );
        assert_eq!(decode_logs_request(b"[]").unwrap(), ExportLogsServiceRequest::default());
    }

    /// opentelemetry-proto's own serde mapping, written independently of
    /// this module, must read our output as we do. It takes non-finite
    /// doubles only as numbers, so they are swapped for finite ones first.
    #[test]
    fn opentelemetry_proto_reads_what_we_write() {
        let finite =
            |t: String| t.replace("\"NaN\"", "1.5").replace("\"-Infinity\"", "-2.5").replace("\"Infinity\"", "2.5");
        let text = finite(metrics_request(&every_metric()));
        let theirs: ExportMetricsServiceRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(theirs, decode_metrics_request(text.as_bytes()).unwrap());
        let text = finite(logs_request(&every_log()));
        let theirs: ExportLogsServiceRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(theirs, decode_logs_request(text.as_bytes()).unwrap());
    }

    /// The decoders run inside the component, where a panic would take the
    /// host's call down with it: every damaged document must come back as a
    /// value or an error.
    #[test]
    fn damaged_documents_never_panic() {
        let decode_all = |text: &[u8]| {
            let _ = decode_trace_request(text);
            let _ = decode_metrics_request(text);
            let _ = decode_logs_request(text);
        };
        // Every member and list element in turn holding a value of each wrong type.
        let wrong: Vec<Json> =
            ["null", "true", "-1", "1.5", "18446744073709551616", "\"\u{e9}z\"", "[{}]", "{\"values\":7}"]
                .iter()
                .map(|w| serde_json::from_str(w).unwrap())
                .collect();
        for doc in [metrics_request(&every_metric()), logs_request(&every_log())] {
            let root: Json = serde_json::from_str(&doc).unwrap();
            let mut pointers = Vec::new();
            collect_pointers(&root, String::new(), &mut pointers);
            for pointer in &pointers {
                for w in &wrong {
                    let mut damaged = root.clone();
                    *damaged.pointer_mut(pointer).unwrap() = w.clone();
                    decode_all(&serde_json::to_vec(&damaged).unwrap());
                }
            }
        }
        // Broken syntax anywhere, in documents small enough to try every byte.
        for doc in [metrics_request(&small_metrics()), logs_request(&small_logs())] {
            let bytes = doc.as_bytes();
            for i in 0..bytes.len() {
                decode_all(&bytes[..i]);
                for b in [b'"', b'{', b'}', b'[', b'1', b'-', b'x', b'\\', 0xff] {
                    let mut damaged = bytes.to_vec();
                    damaged[i] = b;
                    decode_all(&damaged);
                }
            }
        }
    }

    fn collect_pointers(v: &Json, at: String, out: &mut Vec<String>) {
        let children: Vec<(String, &Json)> = match v {
            Json::Object(m) => m.iter().map(|(k, c)| (k.replace('~', "~0").replace('/', "~1"), c)).collect(),
            Json::Array(a) => a.iter().enumerate().map(|(i, c)| (i.to_string(), c)).collect(),
            _ => return,
        };
        for (k, c) in children {
            let p = format!("{at}/{k}");
            collect_pointers(c, p.clone(), out);
            out.push(p);
        }
    }
}
