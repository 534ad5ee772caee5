//! An edge app: a wasi:http proxy component whose `/agent` endpoint asks a
//! tool over HTTP (at AGENT_TOOL_URL) and answers with what it said. Each
//! request gets a server span, continuing the caller's W3C trace context; the
//! tool call gets a client span, whose context travels in the call's
//! `traceparent`. The response goes out first; then the component flushes its
//! telemetry within POLYTEL_FLUSH_TIMEOUT_MS (default 2000), so a slow or
//! absent backend never holds up an answer.

mod http;

use std::time::Duration;

use polytel_edge::{Span, SpanKind, Status, Telemetry};
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

struct Agent;

wasi::http::proxy::export!(Agent);

thread_local! {
    // Configured once per instance: a runtime that reuses instances keeps it.
    static TELEMETRY: Telemetry = Telemetry::from_env().unwrap_or_else(|why| {
        eprintln!("polytel: telemetry is off: {why}");
        Telemetry::disabled()
    });
}

impl Guest for Agent {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        TELEMETRY.with(|telemetry| {
            serve(telemetry, &request, out);
            let report = telemetry.flush(flush_timeout());
            if report.abandoned > 0 {
                eprintln!("polytel: flush timed out; {} items dropped", report.abandoned);
            }
        });
    }
}

fn serve(telemetry: &Telemetry, request: &IncomingRequest, out: ResponseOutparam) {
    let headers = http::headers(&request.headers());
    let path = request.path_with_query().unwrap_or_else(|| "/".into());
    let route = path.split('?').next().unwrap_or("/").to_owned();
    let method = http::method_name(&request.method());
    // Named by route, not path: unmatched paths must not make new span names.
    let known = route == "/agent";
    let name = if known { format!("{method} {route}") } else { method.clone() };
    let mut server = telemetry
        .span(name)
        .kind(SpanKind::Server)
        .attribute("http.request.method", method.clone())
        .attribute("url.path", route.clone());
    if let Some(parent) = telemetry.extract(headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))).parent {
        server = server.parent(&parent);
    }
    let mut server = server.start();
    let (status, body) = match (request.method(), route.as_str()) {
        (Method::Get, "/agent") => answer(telemetry, &server, query_param(&path, "q").unwrap_or_default()),
        (_, "/agent") => (405, "only GET\n".to_owned()),
        _ => (404, "not found\n".to_owned()),
    };
    if known {
        server.set_attribute("http.route", route);
    }
    server.set_attribute("http.response.status_code", status);
    if status >= 500 {
        server.set_status(Status::Error(format!("answered {status}")));
    }
    http::respond(out, status, &body);
    server.end();
}

/// The agent's work: one call to the tool, in a client span.
fn answer(telemetry: &Telemetry, server: &Span<'_>, question: String) -> (u16, String) {
    let Ok(tool) = std::env::var("AGENT_TOOL_URL") else {
        return (500, "AGENT_TOOL_URL is not set\n".to_owned());
    };
    let url = format!("{tool}?q={question}");
    let mut call = server
        .child("GET")
        .kind(SpanKind::Client)
        .attribute("http.request.method", "GET")
        .attribute("url.full", url.clone())
        .start();
    let propagated = telemetry.inject(call.context(), &[]);
    match http::get(&url, &propagated) {
        Ok((status, said)) => {
            call.set_attribute("http.response.status_code", status);
            if status >= 400 {
                call.set_status(Status::Error(format!("the tool answered {status}")));
                call.end();
                return (502, format!("the tool answered {status}\n"));
            }
            call.end();
            (200, format!("{{\"answer\":{said:?},\"trace_id\":\"{}\"}}\n", server.context().trace_id))
        }
        Err(why) => {
            call.record_error("ToolCallError", &why);
            call.end();
            (502, format!("the tool could not be reached: {why}\n"))
        }
    }
}

fn query_param(path: &str, name: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')).map(str::to_owned)
}

fn flush_timeout() -> Duration {
    let ms = std::env::var("POLYTEL_FLUSH_TIMEOUT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    Duration::from_millis(ms)
}
