//! Sends one export over HTTP and reports what happened, in the core's terms.

use std::io::Read;
use std::time::Duration;

use base64::Engine as _;

use crate::runtime::wit;

/// Response bodies matter only for partial_success; more than this is not read.
const MAX_RESPONSE_BODY: u64 = 64 * 1024;

pub struct Sender {
    agent: ureq::Agent,
}

impl Sender {
    pub fn new() -> Sender {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("OTel-OTLP-Exporter-Rust/polytel-", env!("CARGO_PKG_VERSION")))
            // Redirects are the core's decision (Azure Monitor follows 307/308
            // only within Application Insights' domains, OTLP only to the same
            // origin), so the core sees the 3xx and its Location itself. Followed here, ureq re-sent a 301/302/303 as a
            // GET without the body and failed a 307/308 POST outright
            // ("redirect failed"), which the core could only retry in vain.
            .max_redirects(0)
            .build()
            .new_agent();
        Sender { agent }
    }

    /// POSTs `body_b64` (decoded) to the request's URL.
    pub fn send(&self, req: &wit::HttpRequest, body_b64: &str) -> wit::Outcome {
        let body = match base64::engine::general_purpose::STANDARD.decode(body_b64.as_bytes()) {
            Ok(b) => b,
            Err(e) => return wit::Outcome::Failed(format!("the core handed over a body that is not base64: {e}")),
        };
        let mut builder = self.agent.post(&req.url);
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let timeout = Duration::from_millis(u64::from(req.timeout_ms.max(1)));
        let result = builder.config().timeout_global(Some(timeout)).build().send(&body[..]);
        match result {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let mut bytes = Vec::new();
                let _ = resp.body_mut().as_reader().take(MAX_RESPONSE_BODY).read_to_end(&mut bytes);
                wit::Outcome::Response(wit::HttpResponse {
                    status,
                    retry_after,
                    body: base64::engine::general_purpose::STANDARD.encode(bytes),
                    headers: core_headers(resp.headers()),
                })
            }
            // The error text names the failure (refused, timeout, DNS, TLS) but never headers.
            Err(e) => wit::Outcome::Failed(e.to_string()),
        }
    }
}

/// The response headers the core reads (the contract's http-response
/// `headers`): Location, and Application Insights' x-ms-qps-*; names
/// lower-case, values that are not text left out.
pub(crate) fn core_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str(); // http keeps names lower-case
            name == "location" || name.starts_with("x-ms-qps-")
        })
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect()
}

impl Default for Sender {
    fn default() -> Self {
        Self::new()
    }
}
