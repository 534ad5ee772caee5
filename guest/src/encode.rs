//! OTLP request bodies for every signal: protobuf (prost) or JSON, optionally
//! gzip-compressed; and back, for splitting a request a receiver found too large.

use std::collections::HashMap;
use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, ExponentialHistogram, Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::config::{Encoding, OtlpRoute, Signal};
use crate::spans::Scope;

/// One export request of any signal.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
}

/// Items in scope order of first appearance, each scope once.
fn by_scope<T>(items: Vec<(Scope, T)>) -> Vec<(InstrumentationScope, Vec<T>)> {
    let mut groups: Vec<(InstrumentationScope, Vec<T>)> = Vec::new();
    let mut index: HashMap<Scope, usize> = HashMap::new();
    for (scope, item) in items {
        let i = *index.entry(scope).or_insert_with_key(|scope| {
            groups.push((
                InstrumentationScope { name: scope.name.clone(), version: scope.version.clone(), ..Default::default() },
                Vec::new(),
            ));
            groups.len() - 1
        });
        groups[i].1.push(item);
    }
    groups
}

fn resource(attributes: &[KeyValue]) -> Option<Resource> {
    Some(Resource { attributes: attributes.to_vec(), ..Default::default() })
}

fn scope_of(s: Option<InstrumentationScope>) -> Scope {
    s.map(|s| Scope { name: s.name, version: s.version }).unwrap_or_default()
}

/// Groups spans under one resource, by scope in order of first appearance.
pub fn trace_request(resource_attributes: &[KeyValue], spans: Vec<(Scope, Span)>) -> ExportTraceServiceRequest {
    let scope_spans = by_scope(spans)
        .into_iter()
        .map(|(scope, spans)| ScopeSpans { scope: Some(scope), spans, schema_url: String::new() })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(resource_attributes),
            scope_spans,
            schema_url: String::new(),
        }],
    }
}

pub fn metrics_request(resource_attributes: &[KeyValue], metrics: Vec<(Scope, Metric)>) -> ExportMetricsServiceRequest {
    let scope_metrics = by_scope(metrics)
        .into_iter()
        .map(|(scope, metrics)| ScopeMetrics { scope: Some(scope), metrics, schema_url: String::new() })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(resource_attributes),
            scope_metrics,
            schema_url: String::new(),
        }],
    }
}

pub fn logs_request(resource_attributes: &[KeyValue], logs: Vec<(Scope, LogRecord)>) -> ExportLogsServiceRequest {
    let scope_logs = by_scope(logs)
        .into_iter()
        .map(|(scope, log_records)| ScopeLogs { scope: Some(scope), log_records, schema_url: String::new() })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(resource_attributes),
            scope_logs,
            schema_url: String::new(),
        }],
    }
}

/// Data points in a metric.
pub fn metric_points(m: &Metric) -> usize {
    match &m.data {
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// The metric with only its first `n` data points, and another with the rest.
fn split_points(m: Metric, n: usize) -> (Metric, Metric) {
    fn cut<T>(v: &mut Vec<T>, n: usize) -> Vec<T> {
        v.split_off(n.min(v.len()))
    }
    let mut first = m;
    let mut second = Metric { data: None, ..first.clone() };
    second.data = match &mut first.data {
        Some(metric::Data::Sum(s)) => Some(metric::Data::Sum(Sum { data_points: cut(&mut s.data_points, n), ..*s })),
        Some(metric::Data::Gauge(g)) => Some(metric::Data::Gauge(Gauge { data_points: cut(&mut g.data_points, n) })),
        Some(metric::Data::Histogram(h)) => Some(metric::Data::Histogram(Histogram {
            data_points: cut(&mut h.data_points, n),
            aggregation_temporality: h.aggregation_temporality,
        })),
        Some(metric::Data::ExponentialHistogram(h)) => Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: cut(&mut h.data_points, n),
            aggregation_temporality: h.aggregation_temporality,
        })),
        Some(metric::Data::Summary(s)) => {
            Some(metric::Data::Summary(Summary { data_points: cut(&mut s.data_points, n) }))
        }
        None => None,
    };
    (first, second)
}

/// Splits `items` in two halves of equal weight (by `weight`), keeping order.
fn halve<T>(mut items: Vec<T>, weight: impl Fn(&T) -> usize) -> (Vec<T>, Vec<T>) {
    let total: usize = items.iter().map(&weight).sum();
    let mut acc = 0;
    let at = items
        .iter()
        .position(|i| {
            acc += weight(i);
            acc * 2 >= total
        })
        .map_or(items.len() / 2, |p| p + 1)
        .clamp(1, items.len().saturating_sub(1).max(1));
    let rest = items.split_off(at.min(items.len()));
    (items, rest)
}

impl Request {
    pub fn signal(&self) -> Signal {
        match self {
            Request::Traces(_) => Signal::Traces,
            Request::Metrics(_) => Signal::Metrics,
            Request::Logs(_) => Signal::Logs,
        }
    }

    /// Spans, data points or log records carried.
    pub fn items(&self) -> usize {
        match self {
            Request::Traces(r) => r.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum(),
            Request::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .map(metric_points)
                .sum(),
            Request::Logs(r) => {
                r.resource_logs.iter().flat_map(|rl| &rl.scope_logs).map(|sl| sl.log_records.len()).sum()
            }
        }
    }

    /// Two requests carrying half the items each; `None` when there is one item.
    pub fn split(self) -> Option<(Request, Request)> {
        if self.items() < 2 {
            return None;
        }
        Some(match self {
            Request::Traces(r) => {
                let attrs = first_resource(r.resource_spans.first().and_then(|rs| rs.resource.as_ref()));
                let spans: Vec<(Scope, Span)> = r
                    .resource_spans
                    .into_iter()
                    .flat_map(|rs| rs.scope_spans)
                    .flat_map(|ss| {
                        let scope = scope_of(ss.scope);
                        ss.spans.into_iter().map(move |s| (scope.clone(), s))
                    })
                    .collect();
                let (a, b) = halve(spans, |_| 1);
                (Request::Traces(trace_request(&attrs, a)), Request::Traces(trace_request(&attrs, b)))
            }
            Request::Logs(r) => {
                let attrs = first_resource(r.resource_logs.first().and_then(|rl| rl.resource.as_ref()));
                let logs: Vec<(Scope, LogRecord)> = r
                    .resource_logs
                    .into_iter()
                    .flat_map(|rl| rl.scope_logs)
                    .flat_map(|sl| {
                        let scope = scope_of(sl.scope);
                        sl.log_records.into_iter().map(move |l| (scope.clone(), l))
                    })
                    .collect();
                let (a, b) = halve(logs, |_| 1);
                (Request::Logs(logs_request(&attrs, a)), Request::Logs(logs_request(&attrs, b)))
            }
            Request::Metrics(r) => {
                let attrs = first_resource(r.resource_metrics.first().and_then(|rm| rm.resource.as_ref()));
                let mut metrics: Vec<(Scope, Metric)> = r
                    .resource_metrics
                    .into_iter()
                    .flat_map(|rm| rm.scope_metrics)
                    .flat_map(|sm| {
                        let scope = scope_of(sm.scope);
                        sm.metrics.into_iter().map(move |m| (scope.clone(), m))
                    })
                    .collect();
                let (a, b) = if metrics.len() == 1 {
                    // One metric: its data points are split instead.
                    let (scope, m) = metrics.remove(0);
                    let n = metric_points(&m) / 2;
                    let (x, y) = split_points(m, n);
                    (vec![(scope.clone(), x)], vec![(scope, y)])
                } else {
                    halve(metrics, |(_, m)| metric_points(m))
                };
                (Request::Metrics(metrics_request(&attrs, a)), Request::Metrics(metrics_request(&attrs, b)))
            }
        })
    }

    fn encode(&self, encoding: Encoding) -> Vec<u8> {
        match (self, encoding) {
            (Request::Traces(r), Encoding::Protobuf) => r.encode_to_vec(),
            (Request::Metrics(r), Encoding::Protobuf) => r.encode_to_vec(),
            (Request::Logs(r), Encoding::Protobuf) => r.encode_to_vec(),
            (Request::Traces(r), Encoding::Json) => crate::otlp_json::trace_request(r).into_bytes(),
            (Request::Metrics(r), Encoding::Json) => crate::otlp_json::metrics_request(r).into_bytes(),
            (Request::Logs(r), Encoding::Json) => crate::otlp_json::logs_request(r).into_bytes(),
        }
    }

    fn decode(signal: Signal, encoding: Encoding, raw: &[u8]) -> Option<Request> {
        Some(match (signal, encoding) {
            (Signal::Traces, Encoding::Protobuf) => Request::Traces(ExportTraceServiceRequest::decode(raw).ok()?),
            (Signal::Metrics, Encoding::Protobuf) => Request::Metrics(ExportMetricsServiceRequest::decode(raw).ok()?),
            (Signal::Logs, Encoding::Protobuf) => Request::Logs(ExportLogsServiceRequest::decode(raw).ok()?),
            (Signal::Traces, Encoding::Json) => Request::Traces(crate::otlp_json::decode_trace_request(raw).ok()?),
            (Signal::Metrics, Encoding::Json) => Request::Metrics(crate::otlp_json::decode_metrics_request(raw).ok()?),
            (Signal::Logs, Encoding::Json) => Request::Logs(crate::otlp_json::decode_logs_request(raw).ok()?),
        })
    }
}

fn first_resource(r: Option<&Resource>) -> Vec<KeyValue> {
    r.map(|r| r.attributes.clone()).unwrap_or_default()
}

pub fn content_type(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    }
}

/// The request body for `route`, compressed if it asks for gzip.
pub fn body(route: &OtlpRoute, request: &Request) -> Vec<u8> {
    finish(route, request.encode(route.encoding))
}

fn finish(route: &OtlpRoute, raw: Vec<u8>) -> Vec<u8> {
    if route.gzip {
        gzip(&raw)
    } else {
        raw
    }
}

/// The request bodies for `route` with their item counts: one, or several
/// when the encoded request is larger than the route's cap. A single item
/// larger than the cap goes as it is, for the receiver to judge.
pub fn sized_bodies(route: &OtlpRoute, request: &Request) -> Vec<(usize, Vec<u8>)> {
    let raw = request.encode(route.encoding);
    if raw.len() <= route.max_request_bytes || request.items() <= 1 {
        return vec![(request.items(), finish(route, raw))];
    }
    match request.clone().split() {
        Some((a, b)) => {
            let mut out = sized_bodies(route, &a);
            out.extend(sized_bodies(route, &b));
            out
        }
        None => vec![(request.items(), finish(route, raw))],
    }
}

/// The request in a body `body` built for `route`: the inverse of `body`.
pub fn request_of_body(signal: Signal, route: &OtlpRoute, body: &[u8]) -> Option<Request> {
    let raw = if route.gzip {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out).ok()?;
        out
    } else {
        body.to_vec()
    };
    Request::decode(signal, route.encoding, &raw)
}

/// Deterministic gzip: no file name, modification time zero.
pub fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(raw.len() / 4 + 64), Compression::default());
    enc.write_all(raw).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}
