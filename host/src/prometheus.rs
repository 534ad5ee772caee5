//! Serves GET /metrics for Prometheus: each scrape runs the observable
//! callbacks, ships buffered measurements and asks the core for the text.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context as _, Result};

use crate::runtime::wit::MetricsFormat;
use crate::telemetry::Shared;

pub(crate) struct PrometheusServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl PrometheusServer {
    pub(crate) fn start(listen: &str, shared: Arc<Shared>) -> Result<PrometheusServer> {
        let server = tiny_http::Server::http(listen)
            .map_err(|e| anyhow!("cannot serve Prometheus metrics on {listen}: {e}; set another host:port with prometheus_listen or OTEL_EXPORTER_PROMETHEUS_HOST/_PORT"))?;
        let addr = server.server_addr().to_ip().context("the Prometheus endpoint is not on an IP address")?;
        let server = Arc::new(server);
        let worker = server.clone();
        let thread = std::thread::Builder::new().name("polytel-prometheus".into()).spawn(move || {
            for request in worker.incoming_requests() {
                answer(request, &shared);
            }
        })?;
        Ok(PrometheusServer { addr, server, thread: Some(thread) })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(request: tiny_http::Request, shared: &Shared) {
    let path = request.url().split('?').next().unwrap_or("");
    if *request.method() != tiny_http::Method::Get || path != "/metrics" {
        let _ =
            request.respond(tiny_http::Response::from_string("polytel serves GET /metrics\n").with_status_code(404));
        return;
    }
    // Prometheus asks for OpenMetrics in its Accept header when it can read it.
    let openmetrics = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text"));
    let format = if openmetrics { MetricsFormat::Openmetrics } else { MetricsFormat::Prometheus };
    let response = match shared.scrape(format) {
        Ok(r) => tiny_http::Response::from_string(r.body).with_header(
            tiny_http::Header::from_bytes("Content-Type", r.content_type.as_bytes())
                .expect("a content type is a valid header"),
        ),
        Err(e) => {
            tiny_http::Response::from_string(format!("polytel could not render metrics: {e:#}\n")).with_status_code(500)
        }
    };
    let _ = request.respond(response);
}
