//! A local OTLP/HTTP receiver: protobuf or JSON bodies, optionally gzip. Used
//! by `polytel receive`, by `polytel demo` and by tests.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context as _, Result};
use flate2::read::GzDecoder;
use polytel_core::proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use polytel_core::proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use polytel_core::proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;

/// Bodies larger than this are refused with 413.
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body after removing any gzip encoding.
    pub body: Vec<u8>,
    pub json: bool,
    /// Decoded when the path ends in /v1/traces and the body is valid.
    pub traces: Option<ExportTraceServiceRequest>,
    /// Decoded when the path ends in /v1/metrics.
    pub metrics: Option<ExportMetricsServiceRequest>,
    /// Decoded when the path ends in /v1/logs.
    pub logs: Option<ExportLogsServiceRequest>,
}

pub struct Receiver {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Listens on `listen` (port 0 picks a free one) and calls `on_request`
    /// for every OTLP request, from the receiver's own thread.
    pub fn start(listen: &str, on_request: impl Fn(Received) + Send + 'static) -> Result<Receiver> {
        let server = tiny_http::Server::http(listen).map_err(|e| anyhow!("cannot listen on {listen}: {e}"))?;
        let addr = server.server_addr().to_ip().context("the receiver is not on an IP address")?;
        let server = Arc::new(server);
        let worker = server.clone();
        let thread = std::thread::Builder::new().name("polytel-receiver".into()).spawn(move || {
            for request in worker.incoming_requests() {
                handle(request, &on_request);
            }
        })?;
        Ok(Receiver { addr, server, thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to configure an exporter with.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut request: tiny_http::Request, on_request: &impl Fn(Received)) {
    let path = request.url().split('?').next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> =
        request.headers().iter().map(|h| (h.field.as_str().as_str().to_owned(), h.value.as_str().to_owned())).collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let json = header("content-type").is_some_and(|c| c.starts_with("application/json"));
    // Any base path is fine (backends put OTLP under /otlp, /api/…): the
    // signal is the path's last two segments.
    if *request.method() != tiny_http::Method::Post || !path.contains("/v1/") {
        let _ = request.respond(
            tiny_http::Response::from_string(
                "polytel receives OTLP/HTTP: POST [base]/v1/traces, [base]/v1/metrics, [base]/v1/logs\n",
            )
            .with_status_code(404),
        );
        return;
    }
    let mut raw = Vec::new();
    if request.as_reader().take(MAX_BODY + 1).read_to_end(&mut raw).is_err() {
        let _ = request.respond(tiny_http::Response::empty(400));
        return;
    }
    if raw.len() as u64 > MAX_BODY {
        let _ = request.respond(tiny_http::Response::empty(413));
        return;
    }
    let body = if header("content-encoding").is_some_and(|e| e.eq_ignore_ascii_case("gzip")) {
        let mut out = Vec::new();
        if GzDecoder::new(&raw[..]).take(MAX_BODY).read_to_end(&mut out).is_err() {
            let _ =
                request.respond(tiny_http::Response::from_string("the body is not valid gzip").with_status_code(400));
            return;
        }
        out
    } else {
        raw
    };
    let signal = path.rsplit_once("/v1/").map_or("", |(_, signal)| signal);
    let decoded = match signal {
        "traces" => decode_traces(&body, json).map(|t| (Some(t), None, None)),
        "metrics" => decode_metrics(&body, json).map(|m| (None, Some(m), None)),
        "logs" => decode_logs(&body, json).map(|l| (None, None, Some(l))),
        _ => Ok((None, None, None)),
    };
    let (traces, metrics, logs) = match decoded {
        Ok(d) => d,
        Err(e) => {
            let _ = request.respond(
                tiny_http::Response::from_string(format!("cannot decode the request: {e}")).with_status_code(400),
            );
            return;
        }
    };
    on_request(Received { path, headers, body, json, traces, metrics, logs });
    // An empty response means full success for every signal: the three
    // Export*ServiceResponse messages are alike on the wire.
    let (reply, content_type) = if json {
        (b"{}".to_vec(), "application/json")
    } else {
        (ExportTraceServiceResponse::default().encode_to_vec(), "application/x-protobuf")
    };
    let ct = tiny_http::Header::from_bytes("Content-Type", content_type).expect("static header");
    let _ = request.respond(tiny_http::Response::from_data(reply).with_header(ct));
}

pub fn decode_traces(body: &[u8], json: bool) -> Result<ExportTraceServiceRequest> {
    if json {
        polytel_core::otlp_json::decode_trace_request(body).map_err(|e| anyhow!(e))
    } else {
        Ok(ExportTraceServiceRequest::decode(body)?)
    }
}

pub fn decode_metrics(body: &[u8], json: bool) -> Result<ExportMetricsServiceRequest> {
    if json {
        polytel_core::otlp_json::decode_metrics_request(body).map_err(|e| anyhow!(e))
    } else {
        Ok(ExportMetricsServiceRequest::decode(body)?)
    }
}

pub fn decode_logs(body: &[u8], json: bool) -> Result<ExportLogsServiceRequest> {
    if json {
        polytel_core::otlp_json::decode_logs_request(body).map_err(|e| anyhow!(e))
    } else {
        Ok(ExportLogsServiceRequest::decode(body)?)
    }
}
