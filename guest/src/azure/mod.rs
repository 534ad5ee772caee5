//! Azure Monitor (Application Insights) in the core: Application Insights'
//! classic ingestion takes its own envelopes, not OTLP, so spans, log records
//! and data points are encoded here and delivered by the pipeline's usual
//! pending-export machinery, with the Track API's own answers.
//!
//! The facts come from shared/reference/azure-monitor.md (read from the
//! official Python exporter's source); each module names the section it
//! follows:
//! - `connection_string`: parsing the connection string (§4(a));
//! - `tags`: the part-A tags every envelope carries (§4(b) "Tags");
//! - `format`: times, durations, truncation, properties (§4(b));
//! - `spans`, `logs`, `metrics`: the mapping of each signal (§4(b));
//! - `envelopes`: the envelope shapes and the JSON array body (§4(b));
//! - `delivery`: what the Track API's answers mean (§4(c));
//! - `live`: Live Metrics (QuickPulse, §4(e)): the ping/post state machine,
//!   its counters and requests, which the pipeline sends apart from exports.
//!
//! Not here yet: Live Metrics' documents and filters (§4(e): the
//! `CollectionConfigurationInfo` of a ping's answer is not read, and posts
//! carry no `Documents`), and processor or memory figures; Entra ID authentication
//! (a user can pass `Authorization: Bearer …` in the option `headers`, but
//! polytel does not fetch or refresh tokens); offline storage (§4(c): the
//! pipeline retries from memory instead); AvailabilityData from logs.

pub mod connection_string;
pub mod delivery;
pub mod envelopes;
pub mod format;
pub mod live;
pub mod logs;
pub mod metrics;
pub mod spans;
pub mod tags;

use serde_json::value::RawValue;

use crate::config::Signal;
use crate::encode::Request;
use crate::secret::Secret;

/// §4(b) "Request": the Track API's path under the ingestion endpoint.
pub const TRACK_PATH: &str = "/v2.1/track";

/// Where and how one signal goes to Application Insights.
#[derive(Clone, Debug, PartialEq)]
pub struct AzureRoute {
    /// `{IngestionEndpoint}/v2.1/track`; a followed redirect changes its host.
    pub url: String,
    /// The Live Metrics endpoint (the connection string's LiveEndpoint).
    pub live_endpoint: String,
    /// Live Metrics is on (the default; the preset setting
    /// `azure_monitor_live_metrics` = "false" turns it off).
    pub live_metrics: bool,
    /// Written into every envelope (`iKey`); masked in Debug.
    pub instrumentation_key: Secret,
    /// The user's extra headers (option `headers`), such as an Entra
    /// `Authorization: Bearer` token.
    pub headers: Vec<(String, Secret)>,
    pub timeout_ms: u32,
}

/// The Track URL under an ingestion endpoint.
pub fn track_url(ingestion_endpoint: &str) -> String {
    format!("{}{TRACK_PATH}", ingestion_endpoint.trim_end_matches('/'))
}

/// A request body: the JSON array of envelopes, and how many of the signal's
/// items it carries (see `envelopes::counted`).
#[derive(Debug, PartialEq)]
pub struct Body {
    pub text: String,
    pub envelopes: usize,
    pub items: usize,
}

/// The body for one OTLP request; `None` when it yields no envelope.
/// `span_sample_rate` is the percentage of traces the sampler keeps.
pub fn encode(route: &AzureRoute, request: &Request, span_sample_rate: f64) -> Option<Body> {
    let signal = request.signal();
    let items = envelopes::items(request, span_sample_rate);
    if items.is_empty() {
        return None;
    }
    let key = route.instrumentation_key.expose();
    let json: Vec<String> = items.iter().map(|i| envelopes::to_json(i, key)).collect();
    Some(Body {
        text: envelopes::body(json.iter().map(String::as_str)),
        envelopes: items.len(),
        items: items.iter().filter(|i| envelopes::counted(signal, i.name)).count(),
    })
}

/// The envelopes of a body sent before, as they were written.
fn parse(body: &str) -> Option<Vec<&RawValue>> {
    serde_json::from_str(body).ok()
}

fn counted(signal: Signal, raw: &RawValue) -> bool {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        name: std::borrow::Cow<'a, str>,
    }
    serde_json::from_str::<Named>(raw.get()).is_ok_and(|n| envelopes::counted(signal, &n.name))
}

/// A body of some of the envelopes of `body` (by index, in the order given;
/// indexes past the end are skipped), for resending the retryable ones of a
/// partial success. The envelopes are copied as they were written.
pub fn subset(signal: Signal, body: &str, indexes: &[usize]) -> Option<Body> {
    let all = parse(body)?;
    let chosen: Vec<&RawValue> = indexes.iter().filter_map(|&i| all.get(i).copied()).collect();
    if chosen.is_empty() {
        return None;
    }
    Some(Body {
        text: envelopes::body(chosen.iter().map(|r| r.get())),
        envelopes: chosen.len(),
        items: chosen.iter().filter(|r| counted(signal, r)).count(),
    })
}

/// The items of `signal` among the envelopes of `body` at `indexes`.
pub fn items_at(signal: Signal, body: &str, indexes: &[usize]) -> usize {
    parse(body).map_or(0, |all| indexes.iter().filter_map(|&i| all.get(i)).filter(|r| counted(signal, r)).count())
}

/// The body cut in two halves of envelopes, for a 413; `None` with one envelope.
pub fn halves(signal: Signal, body: &str) -> Option<(Body, Body)> {
    let n = parse(body)?.len();
    if n < 2 {
        return None;
    }
    let (a, b): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| i < n / 2);
    Some((subset(signal, body, &a)?, subset(signal, body, &b)?))
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::trace::v1::{span, Span};

    use super::*;
    use crate::encode::trace_request;
    use crate::spans::Scope;

    fn route() -> AzureRoute {
        AzureRoute {
            url: track_url("https://in.example/"),
            live_endpoint: connection_string::DEFAULT_LIVE.into(),
            live_metrics: true,
            instrumentation_key: Secret::new("00000000-0000-0000-0000-000000000001".into()),
            headers: vec![],
            timeout_ms: 1000,
        }
    }

    /// Two spans, the first with one event: three envelopes, two items.
    fn request() -> Request {
        let span = |id: u8, events| Span {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            name: format!("s{id}"),
            kind: 2,
            events,
            ..Default::default()
        };
        let event = span::Event { name: "e".into(), ..Default::default() };
        Request::Traces(trace_request(
            &[],
            vec![(Scope::default(), span(1, vec![event])), (Scope::default(), span(2, vec![]))],
        ))
    }

    #[test]
    fn track_urls() {
        assert_eq!(route().url, "https://in.example/v2.1/track");
        assert_eq!(track_url("http://127.0.0.1:9"), "http://127.0.0.1:9/v2.1/track");
    }

    #[test]
    fn bodies_count_items_not_envelopes() {
        let body = encode(&route(), &request(), 100.0).unwrap();
        assert_eq!((body.envelopes, body.items), (3, 2));
        let v: Vec<serde_json::Value> = serde_json::from_str(&body.text).unwrap();
        assert_eq!(v.len(), 3);
        assert!(v.iter().all(|e| e["iKey"] == "00000000-0000-0000-0000-000000000001"));
        assert_eq!(
            v.iter().map(|e| e["name"].as_str().unwrap()).collect::<Vec<_>>(),
            [envelopes::REQUEST, envelopes::MESSAGE, envelopes::REQUEST]
        );
        let empty = Request::Traces(trace_request(&[], vec![]));
        assert_eq!(encode(&route(), &empty, 100.0), None);
    }

    #[test]
    fn subsets_and_halves_keep_envelopes_byte_for_byte() {
        let body = encode(&route(), &request(), 100.0).unwrap();
        let all: Vec<&RawValue> = serde_json::from_str(&body.text).unwrap();
        let s = subset(Signal::Traces, &body.text, &[2, 1, 7]).unwrap();
        assert_eq!(s.text, format!("[{},{}]", all[2].get(), all[1].get()));
        assert_eq!((s.envelopes, s.items), (2, 1));
        assert_eq!(subset(Signal::Traces, &body.text, &[9]), None);
        assert_eq!(subset(Signal::Traces, "not json", &[0]), None);
        assert_eq!(items_at(Signal::Traces, &body.text, &[0, 1]), 1);
        assert_eq!(items_at(Signal::Logs, &body.text, &[0, 1]), 2);
        let (a, b) = halves(Signal::Traces, &body.text).unwrap();
        assert_eq!((a.envelopes, a.items, b.envelopes, b.items), (1, 1, 2, 1));
        assert_eq!(format!("[{},{}", &a.text[1..a.text.len() - 1], &b.text[1..]), body.text);
        assert_eq!(halves(Signal::Traces, &a.text), None);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", route());
        assert!(!shown.contains("00000000-0000-0000-0000-000000000001"), "{shown}");
    }
}
