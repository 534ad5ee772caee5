//! Application Insights envelopes (shared/reference/azure-monitor.md §4(b)
//! "Envelope (TelemetryItem)", "baseData fields"): their shape, their JSON, and
//! the request body — a JSON array of them — built from one OTLP request.

use std::collections::BTreeMap;

use serde::Serialize;

use super::tags::{part_a, Tags};
use crate::config::Signal;
use crate::encode::Request;

/// §4(b) "Envelope names".
pub const REQUEST: &str = "Microsoft.ApplicationInsights.Request";
pub const REMOTE_DEPENDENCY: &str = "Microsoft.ApplicationInsights.RemoteDependency";
pub const MESSAGE: &str = "Microsoft.ApplicationInsights.Message";
pub const EXCEPTION: &str = "Microsoft.ApplicationInsights.Exception";
pub const EVENT: &str = "Microsoft.ApplicationInsights.Event";
pub const METRIC: &str = "Microsoft.ApplicationInsights.Metric";

/// One envelope without its instrumentation key, which is added only when the
/// body is written, so no envelope in memory, in a test failure or in Debug
/// output carries the credential.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub name: &'static str,
    /// §4(b): ISO-8601 UTC (see `format::time`).
    pub time: String,
    /// §4(b): a percentage; 100 means unsampled.
    pub sample_rate: f64,
    pub tags: Tags,
    pub data: BaseData,
}

/// Whether an envelope named `name` is one of `signal`'s items in the
/// counters: a span's Request or RemoteDependency (the envelopes of its events
/// ride along uncounted), every log record's and every data point's envelope.
pub fn counted(signal: Signal, name: &str) -> bool {
    signal != Signal::Traces || name == REQUEST || name == REMOTE_DEPENDENCY
}

/// `data.baseData`, by `data.baseType` (§4(b) "baseData fields"). Every one
/// has `ver` 2 (`_EXPORTER_DOMAIN_SCHEMA_VERSION`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum BaseData {
    Request(RequestData),
    RemoteDependency(RemoteDependencyData),
    Message(MessageData),
    Exception(ExceptionData),
    Event(EventData),
    Metric(MetricData),
}

impl BaseData {
    pub fn base_type(&self) -> &'static str {
        match self {
            BaseData::Request(_) => "RequestData",
            BaseData::RemoteDependency(_) => "RemoteDependencyData",
            BaseData::Message(_) => "MessageData",
            BaseData::Exception(_) => "ExceptionData",
            BaseData::Event(_) => "EventData",
            BaseData::Metric(_) => "MetricData",
        }
    }
}

pub type Properties = BTreeMap<String, String>;

fn is_empty(m: &BTreeMap<String, f64>) -> bool {
    m.is_empty()
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestData {
    pub ver: u8,
    pub id: String,
    pub name: String,
    pub duration: String,
    pub success: bool,
    pub response_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub properties: Properties,
    #[serde(skip_serializing_if = "is_empty")]
    pub measurements: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteDependencyData {
    pub ver: u8,
    pub id: String,
    pub name: String,
    pub result_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub duration: String,
    pub success: bool,
    pub properties: Properties,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageData {
    pub ver: u8,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity_level: Option<u8>,
    pub properties: Properties,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionData {
    pub ver: u8,
    pub exceptions: Vec<ExceptionDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity_level: Option<u8>,
    pub properties: Properties,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionDetails {
    pub type_name: String,
    pub message: String,
    pub has_full_stack: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    pub ver: u8,
    pub name: String,
    pub properties: Properties,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricData {
    pub ver: u8,
    pub metrics: Vec<DataPoint>,
    pub properties: Properties,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataPoint {
    pub name: String,
    pub value: f64,
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// `_EXPORTER_DOMAIN_SCHEMA_VERSION`.
pub const DOMAIN_VERSION: u8 = 2;

/// The envelopes of one OTLP request, in order: each span followed by its
/// events' envelopes, each log record, each data point. `span_sample_rate`
/// is the percentage of traces the pipeline's sampler keeps, for spans that
/// do not say their own (`_MS.sampleRate`).
pub fn items(request: &Request, span_sample_rate: f64) -> Vec<Item> {
    let mut out = Vec::new();
    match request {
        Request::Traces(r) => {
            for rs in &r.resource_spans {
                let tags = part_a(rs.resource.as_ref().map_or(&[][..], |r| &r.attributes));
                for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                    out.extend(super::spans::items(span, &tags, span_sample_rate));
                }
            }
        }
        Request::Logs(r) => {
            for rl in &r.resource_logs {
                let tags = part_a(rl.resource.as_ref().map_or(&[][..], |r| &r.attributes));
                for record in rl.scope_logs.iter().flat_map(|sl| &sl.log_records) {
                    out.push(super::logs::item(record, &tags));
                }
            }
        }
        Request::Metrics(r) => {
            for rm in &r.resource_metrics {
                let tags = part_a(rm.resource.as_ref().map_or(&[][..], |r| &r.attributes));
                for metric in rm.scope_metrics.iter().flat_map(|sm| &sm.metrics) {
                    out.extend(super::metrics::items(metric, &tags));
                }
            }
        }
    }
    out
}

/// One envelope as JSON, with the instrumentation key (§4(b): `iKey`; the
/// key travels inside each envelope).
pub fn to_json(item: &Item, ikey: &str) -> String {
    #[derive(Serialize)]
    struct Envelope<'a> {
        ver: u8,
        name: &'static str,
        time: &'a str,
        #[serde(rename = "sampleRate")]
        sample_rate: f64,
        #[serde(rename = "iKey")]
        ikey: &'a str,
        tags: &'a Tags,
        data: Data<'a>,
    }
    #[derive(Serialize)]
    struct Data<'a> {
        #[serde(rename = "baseType")]
        base_type: &'static str,
        #[serde(rename = "baseData")]
        base_data: &'a BaseData,
    }
    let envelope = Envelope {
        ver: 1,
        name: item.name,
        time: &item.time,
        sample_rate: item.sample_rate,
        ikey,
        tags: &item.tags,
        data: Data { base_type: item.data.base_type(), base_data: &item.data },
    };
    serde_json::to_string(&envelope).expect("envelopes serialise: every float in them is finite")
}

/// §4(b) "Request": the body is a JSON array of envelopes.
pub fn body<'a>(envelopes: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, e) in envelopes.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(e);
    }
    out.push(']');
    out
}
