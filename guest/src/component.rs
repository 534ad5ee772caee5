//! The component's exports: a thin shell over `Pipeline`.

use std::cell::RefCell;

use crate::pipeline::{self, Destination, Pipeline};

#[cfg(not(feature = "edge"))]
wit_bindgen::generate!({
    path: "../wit",
    world: "polytel",
});

// The edge flavour: the same `core`, plus `edge` (see edge/).
#[cfg(feature = "edge")]
wit_bindgen::generate!({
    path: "../wit",
    world: "polytel-edge",
});

use exports::polytel::telemetry::core as wit;

pub(crate) struct Component;

/// A pipeline behind the resource handle; calls on one handle never overlap.
pub(crate) struct PipelineResource(pub(crate) RefCell<Pipeline>);

impl wit::Guest for Component {
    type Pipeline = PipelineResource;
}

/// A response body as bytes; one that is not base64 is as good as none:
/// only partial_success and per-item errors are read from it.
fn body(b64: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()).unwrap_or_default()
}

fn export(e: pipeline::Export) -> wit::Export {
    wit::Export {
        id: e.id,
        signal: match e.signal {
            pipeline::Signal::Traces => wit::Signal::Traces,
            pipeline::Signal::Metrics => wit::Signal::Metrics,
            pipeline::Signal::Logs => wit::Signal::Logs,
        },
        destination: match e.destination {
            Destination::Stdout => wit::Destination::Stdout,
            Destination::Http { url, headers, timeout_ms } => wit::Destination::Http(wit::HttpRequest {
                url,
                headers: headers.into_iter().map(|(k, v)| (k, v.expose().to_owned())).collect(),
                timeout_ms,
            }),
            Destination::Grpc { target, path, metadata, compressed, timeout_ms } => {
                wit::Destination::Grpc(wit::GrpcRequest {
                    target,
                    path,
                    metadata: metadata.into_iter().map(|(k, v)| (k, v.expose().to_owned())).collect(),
                    compressed,
                    timeout_ms,
                })
            }
        },
        body: e.body,
        items: e.items,
    }
}

impl wit::GuestPipeline for PipelineResource {
    fn create(config: String) -> Result<wit::Pipeline, String> {
        #[cfg(feature = "edge")]
        let config = crate::edge::seeded(config);
        Pipeline::from_json(&config).map(|p| wit::Pipeline::new(PipelineResource(RefCell::new(p))))
    }

    fn plan(&self) -> String {
        self.0.borrow().plan()
    }

    fn describe(&self) -> String {
        self.0.borrow().describe()
    }

    fn record_spans(&self, batch: String) {
        self.0.borrow_mut().record_spans(&batch)
    }

    fn register_instrument(&self, instrument: String) -> u32 {
        self.0.borrow_mut().register_instrument(&instrument)
    }

    fn record_metrics(&self, batch: String) {
        self.0.borrow_mut().record_metrics(&batch)
    }

    fn record_logs(&self, batch: String) {
        self.0.borrow_mut().record_logs(&batch)
    }

    fn render_metrics(&self, format: wit::MetricsFormat, now: u64) -> wit::RenderedMetrics {
        let format = match format {
            wit::MetricsFormat::Prometheus => crate::prometheus::Format::Text004,
            wit::MetricsFormat::Openmetrics => crate::prometheus::Format::OpenMetrics,
        };
        let (content_type, body) = self.0.borrow_mut().render_metrics(format, now);
        wit::RenderedMetrics { content_type, body }
    }

    fn poll(&self, now: u64, flush: bool) -> wit::PollResult {
        let r = self.0.borrow_mut().poll(now, flush);
        wit::PollResult {
            exports: r.exports.into_iter().map(export).collect(),
            warnings: r.warnings,
            next_poll: r.next_poll,
            observe: r.observe,
            outstanding: r.outstanding,
        }
    }

    fn report(&self, id: u64, o: wit::Outcome, now: u64) {
        let mut p = self.0.borrow_mut();
        match o {
            // With its headers: redirects and Live Metrics read them.
            wit::Outcome::Response(r) => p.report_http(id, r.status, r.retry_after, &r.headers, body(&r.body), now),
            wit::Outcome::Grpc(r) => p.report(
                id,
                &pipeline::ExportOutcome::Grpc {
                    code: r.code,
                    message: r.message,
                    details: r.details,
                    body: body(&r.body),
                },
                now,
            ),
            wit::Outcome::Failed(why) => p.report(id, &pipeline::ExportOutcome::Failed(why), now),
        }
    }

    fn abandon(&self) -> u64 {
        self.0.borrow_mut().abandon()
    }

    fn stats(&self) -> String {
        self.0.borrow().stats_json()
    }

    fn extract(&self, headers: String) -> String {
        self.0.borrow().extract(&headers)
    }

    fn inject(&self, context: String) -> String {
        self.0.borrow().inject(&context)
    }
}

export!(Component);
