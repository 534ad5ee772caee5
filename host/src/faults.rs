//! A misbehaving OTLP/HTTP receiver for failure tests, scripted per request:
//! refuse, hang, answer slowly, answer 4xx/5xx with or without Retry-After,
//! answer partial success or a body that is not OTLP, reset the connection
//! mid-body. It counts what it accepted, by span id, so a test can tell what
//! was lost and what arrived twice. `polytel fault-receiver` serves it for
//! the bindings' tests, which drive it over HTTP: `GET /stats`, `PUT /script`.
//!
//! A script is JSON: `{"steps": [step, ...], "then": step}`. Each request
//! takes the next step (a step with `"times": n` serves n requests); once the
//! steps are used up, every request gets `then` (default `{"ok": true}`).
//! A step is one of
//!
//!   {"ok": true}                                   200, full success
//!   {"status": 503, "retry_after": "2"}            any status; Retry-After verbatim,
//!   {"status": 429, "retry_after_date": 2}         or as an HTTP-date that many seconds ahead
//!   {"partial_success": 3, "message": "..."}       200, that many items rejected
//!   {"garbage": true}                              200 with a body that is not OTLP
//!   {"slow_ms": 1500}                              200 after a pause
//!   {"hang": true}                                 read the request, never answer
//!   {"reset": true}                                read half the body, then reset the connection
//!   {"close": true}                                close the connection before reading anything
//!
//! Requests answered `ok`, `partial_success`, `garbage` or `slow_ms` are
//! accepted: their spans, data points and log records are counted (for
//! partial success, all of them, since the rejected ones are not named).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::receiver::{decode_logs, decode_metrics, decode_traces};

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_date: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_success: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garbage: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl Step {
    pub fn ok() -> Step {
        Step { ok: Some(true), ..Default::default() }
    }

    pub fn status(status: u16) -> Step {
        Step { status: Some(status), ..Default::default() }
    }

    pub fn times(self, n: u32) -> Step {
        Step { times: Some(n), ..self }
    }

    /// A short name for the counters: "ok", "503", "hang", …
    pub fn label(&self) -> String {
        let flags = [
            (self.hang, "hang"),
            (self.reset, "reset"),
            (self.close, "close"),
            (self.garbage, "garbage"),
            (self.ok, "ok"),
        ];
        if let Some((_, name)) = flags.iter().find(|(on, _)| *on == Some(true)) {
            return (*name).into();
        }
        match (self.partial_success, self.slow_ms, self.status) {
            (Some(_), ..) => "partial_success".into(),
            (_, Some(_), _) => "slow".into(),
            (.., Some(s)) => s.to_string(),
            _ => "ok".into(),
        }
    }

    fn accepts(&self) -> bool {
        matches!(self.label().as_str(), "ok" | "partial_success" | "garbage" | "slow")
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub then: Option<Step>,
}

impl Script {
    /// Every request answered with `step`.
    pub fn always(step: Step) -> Script {
        Script { steps: Vec::new(), then: Some(step) }
    }
}

/// What the receiver saw; `GET /stats` answers it as JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FaultStats {
    pub requests: u64,
    /// Requests by the step that answered them ("ok", "503", "hang", …).
    pub answered: HashMap<String, u64>,
    /// Spans in accepted requests, counting each span id once.
    pub spans: u64,
    /// Spans accepted again after an earlier accepted request carried them.
    pub duplicate_spans: u64,
    pub data_points: u64,
    pub log_records: u64,
}

#[derive(Default)]
struct State {
    steps: VecDeque<Step>,
    then: Option<Step>,
    stats: FaultStats,
    span_ids: std::collections::HashSet<Vec<u8>>,
}

impl State {
    fn set(&mut self, script: Script) {
        self.steps = script.steps.into();
        self.then = script.then;
    }

    fn next_step(&mut self) -> Step {
        let Some(front) = self.steps.front_mut() else { return self.then.clone().unwrap_or_else(Step::ok) };
        let step = front.clone();
        match front.times {
            Some(n) if n > 1 => front.times = Some(n - 1),
            _ => {
                self.steps.pop_front();
            }
        }
        step
    }
}

pub struct FaultReceiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultReceiver {
    pub fn start(listen: &str, script: Script) -> Result<FaultReceiver> {
        let listener = TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        state.lock().expect("fault receiver lock").set(script);
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopping) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new().name("polytel-faults".into()).spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (state, stop) = (shared.clone(), stopping.clone());
                let _ = std::thread::Builder::new().name("polytel-faults-conn".into()).spawn(move || {
                    let _ = serve(conn, &state, &stop);
                });
            }
        })?;
        Ok(FaultReceiver { addr, state, stop, thread: Some(thread) })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> FaultStats {
        self.state.lock().expect("fault receiver lock").stats.clone()
    }

    pub fn set_script(&self, script: Script) {
        self.state.lock().expect("fault receiver lock").set(script);
    }
}

impl Drop for FaultReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    content_length: usize,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_head(reader: &mut BufReader<TcpStream>) -> Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut request = Request { method, path, headers, content_length: 0 };
    request.content_length = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Some(request))
}

/// Serves one connection's requests (HTTP/1.1 keep-alive) until it closes.
fn serve(conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool) -> Result<()> {
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    while let Some(request) = read_head(&mut reader)? {
        if request.method == "GET" && request.path == "/stats" {
            let stats = serde_json::to_vec(&state.lock().expect("fault receiver lock").stats)?;
            respond(&mut writer, 200, &[("Content-Type", "application/json".into())], &stats)?;
            continue;
        }
        if request.method == "PUT" && request.path == "/script" {
            let mut body = vec![0; request.content_length];
            reader.read_exact(&mut body)?;
            match serde_json::from_slice::<Script>(&body) {
                Ok(script) => {
                    state.lock().expect("fault receiver lock").set(script);
                    respond(&mut writer, 204, &[], b"")?;
                }
                Err(e) => respond(&mut writer, 400, &[], e.to_string().as_bytes())?,
            }
            continue;
        }
        let step = {
            let mut s = state.lock().expect("fault receiver lock");
            s.stats.requests += 1;
            let step = s.next_step();
            *s.stats.answered.entry(step.label()).or_default() += 1;
            step
        };
        if step.close == Some(true) {
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }
        if step.reset == Some(true) {
            let mut half = vec![0; request.content_length / 2];
            let _ = reader.read_exact(&mut half);
            // SO_LINGER 0 is not in std; closing with unread data makes the
            // kernel send RST, which is what a mid-body reset looks like.
            drop(reader);
            drop(writer);
            return Ok(());
        }
        let mut body = vec![0; request.content_length];
        reader.read_exact(&mut body)?;
        if step.hang == Some(true) {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return Ok(());
        }
        if let Some(ms) = step.slow_ms {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let json = request.header("content-type").is_some_and(|c| c.starts_with("application/json"));
        if step.accepts() {
            count(&mut state.lock().expect("fault receiver lock"), &request, &body, json);
        }
        let (status, headers, reply) = answer(&step, &request, json);
        respond(&mut writer, status, &headers, &reply)?;
    }
    Ok(())
}

fn answer(step: &Step, request: &Request, json: bool) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
    let content_type = if json { "application/json" } else { "application/x-protobuf" };
    let mut headers = vec![("Content-Type", content_type.to_owned())];
    if let Some(r) = &step.retry_after {
        headers.push(("Retry-After", r.clone()));
    }
    if let Some(secs) = step.retry_after_date {
        headers.push(("Retry-After", httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(secs))));
    }
    if step.garbage == Some(true) {
        return (200, headers, b"\xff\x00 this is not an OTLP response".to_vec());
    }
    let status = step.status.unwrap_or(200);
    let body = match step.partial_success {
        None if status == 200 => {
            if json {
                b"{}".to_vec()
            } else {
                Vec::new()
            }
        }
        None => b"scripted failure".to_vec(),
        Some(rejected) => {
            let message = step.message.clone().unwrap_or_else(|| "scripted partial success".into());
            if json {
                let field = match request.path.rsplit_once("/v1/").map_or("", |(_, s)| s) {
                    "metrics" => "rejectedDataPoints",
                    "logs" => "rejectedLogRecords",
                    _ => "rejectedSpans",
                };
                serde_json::json!({"partialSuccess": {field: rejected.to_string(), "errorMessage": message}})
                    .to_string()
                    .into_bytes()
            } else {
                // The three Export*ServiceResponse messages are alike on the wire.
                use polytel_core::proto::tonic::collector::trace::v1::{
                    ExportTracePartialSuccess, ExportTraceServiceResponse,
                };
                ExportTraceServiceResponse {
                    partial_success: Some(ExportTracePartialSuccess {
                        rejected_spans: rejected as i64,
                        error_message: message,
                    }),
                }
                .encode_to_vec()
            }
        }
    };
    (status, headers, body)
}

fn respond(w: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) -> Result<()> {
    let mut head = format!("HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()?;
    Ok(())
}

fn count(state: &mut State, request: &Request, body: &[u8], json: bool) {
    let body = if request.header("content-encoding").is_some_and(|e| e.eq_ignore_ascii_case("gzip")) {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(body).read_to_end(&mut out).is_err() {
            return;
        }
        out
    } else {
        body.to_vec()
    };
    match request.path.rsplit_once("/v1/").map_or("", |(_, s)| s) {
        "traces" => {
            let Ok(t) = decode_traces(&body, json) else { return };
            for span in t.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
                if state.span_ids.insert(span.span_id.clone()) {
                    state.stats.spans += 1;
                } else {
                    state.stats.duplicate_spans += 1;
                }
            }
        }
        "metrics" => {
            if let Ok(m) = decode_metrics(&body, json) {
                state.stats.data_points += polytel_core::encode::Request::Metrics(m).items() as u64;
            }
        }
        "logs" => {
            if let Ok(l) = decode_logs(&body, json) {
                state.stats.log_records += polytel_core::encode::Request::Logs(l).items() as u64;
            }
        }
        _ => {}
    }
}
