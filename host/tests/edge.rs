//! The edge example (examples/edge), composed with the edge flavour of the
//! core by scripts/build-edge.sh, under a real `wasmtime serve`
//! (wasmtime-cli at our wasmtime crate's version, built by
//! scripts/install-wasmtime.sh): requests produce linked traces at
//! `polytel receive`, with W3C context carried to the tool the agent calls,
//! and a receiver that is down or hangs neither fails nor delays a response.
//! The component sends its own exports: no host code of ours runs.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The composed component and the `wasmtime` command, built once per run.
fn artifacts() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let wasmtime = support::script_output_path("scripts/install-wasmtime.sh", &[]);
        let app =
            support::script_output_path("scripts/build-edge.sh", &[("POLYTEL_BIN", env!("CARGO_BIN_EXE_polytel"))]);
        (wasmtime, app)
    })
}

/// Lines a child process wrote, each with when it arrived.
type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

fn collect_lines(stream: impl std::io::Read + Send + 'static) -> Lines {
    let lines: Lines = Arc::default();
    let sink = lines.clone();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push((Instant::now(), line));
        }
    });
    lines
}

/// Waits for a line containing `needle`; returns it and when it came.
fn wait_for_line(lines: &Lines, needle: &str, timeout: Duration) -> Option<(Instant, String)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = lines.lock().unwrap().iter().find(|(_, l)| l.contains(needle)) {
            return Some(found.clone());
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn text(lines: &Lines) -> String {
    lines.lock().unwrap().iter().map(|(_, l)| format!("{l}\n")).collect()
}

/// A child process killed on drop, with its stdout and stderr lines.
struct Process {
    child: Child,
    stdout: Lines,
    stderr: Lines,
}

impl Process {
    fn start(mut command: Command) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdout = collect_lines(child.stdout.take().unwrap());
        let stderr = collect_lines(child.stderr.take().unwrap());
        Process { child, stdout, stderr }
    }

    /// The `http://127.0.0.1:port` the process announced on stderr after `prefix`.
    fn announced(&self, prefix: &str) -> String {
        let (_, line) = wait_for_line(&self.stderr, prefix, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("no {prefix:?} on stderr:\n{}", text(&self.stderr)));
        let at = line.find("http://").unwrap_or_else(|| panic!("no URL in {line:?}"));
        let url = &line[at..];
        let end = url[7..].find('/').map_or(url.len(), |i| i + 7);
        url[..end].to_owned()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `polytel receive --json`: one JSON line per span.
fn receive() -> (Process, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_polytel"));
    command.args(["receive", "--listen", "127.0.0.1:0", "--json"]);
    let process = Process::start(command);
    let endpoint = process.announced("receiving OTLP/HTTP at");
    (process, endpoint)
}

/// `wasmtime serve` running the composed example with `env`.
fn serve(env: &[(&str, &str)]) -> (Process, String) {
    serve_with(&[], env)
}

/// The same, with more of `wasmtime serve`'s options.
fn serve_with(options: &[&str], env: &[(&str, &str)]) -> (Process, String) {
    let (wasmtime, app) = artifacts();
    let mut command = Command::new(wasmtime);
    // -Scli: the app reads its configuration from the environment.
    command.args(["serve", "--addr", "127.0.0.1:0", "-Scli"]).args(options);
    for (k, v) in env {
        command.arg("--env").arg(format!("{k}={v}"));
    }
    command.arg(app);
    let process = Process::start(command);
    let url = process.announced("Serving HTTP on");
    (process, url)
}

/// The tool the agent calls: answers "sunny" and keeps each call's traceparent.
fn tool() -> (String, Arc<Mutex<Vec<String>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("tool server");
    let url = format!("http://{}/tool", server.server_addr().to_ip().expect("an IP address"));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = seen.clone();
    thread::spawn(move || {
        for request in server.incoming_requests() {
            let traceparent = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("traceparent"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            sink.lock().unwrap().push(traceparent);
            let _ = request.respond(tiny_http::Response::from_string("sunny"));
        }
    });
    (url, seen)
}

/// A receiver that accepts connections and holds them open without a word;
/// its base URL.
fn hanging_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    url
}

fn get(url: &str, traceparent: Option<&str>) -> (u16, String) {
    let mut request = ureq::get(url);
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    let mut response = request.config().http_status_as_error(false).build().call().expect("the app answers");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().expect("a text body"))
}

fn spans(receiver: &Process, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines: Vec<Value> =
            receiver.stdout.lock().unwrap().iter().map(|(_, l)| serde_json::from_str(l).expect("JSON")).collect();
        if lines.len() >= n || Instant::now() >= deadline {
            assert_eq!(lines.len(), n, "spans at polytel receive: {lines:#?}");
            return lines;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn requests_produce_linked_traces_at_polytel_receive() {
    let (receiver, endpoint) = receive();
    let (tool_url, tool_saw) = tool();
    let (app, url) = serve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_SERVICE_NAME", "edge-agent"),
        ("AGENT_TOOL_URL", &tool_url),
    ]);
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let (status, body) = get(&format!("{url}/agent?q=weather"), Some(&format!("00-{caller_trace}-{caller_span}-01")));
    assert_eq!(status, 200, "{body}\n{}", text(&app.stderr));
    assert!(body.contains("sunny") && body.contains(caller_trace), "{body}");
    let (status, body) = get(&format!("{url}/agent?q=news"), None);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(caller_trace), "a request without context starts a new trace: {body}");

    let spans = spans(&receiver, 4);
    let seen = tool_saw.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "the tool was called once per request");
    let servers: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 2).collect();
    assert_eq!(servers.len(), 2, "{spans:#?}");
    for server in servers {
        let trace = server["trace_id"].as_str().unwrap();
        assert_eq!(server["name"], "GET /agent");
        assert_eq!(server["attributes"]["http.route"], "/agent");
        assert_eq!(server["attributes"]["http.response.status_code"], 200);
        assert_eq!(server["resource"]["service.name"], "edge-agent");
        if trace == caller_trace {
            assert_eq!(server["parent_span_id"], caller_span, "the server span continues the caller's");
        } else {
            assert!(server["parent_span_id"].as_str().unwrap_or_default().is_empty(), "{server:#}");
        }
        let client = spans
            .iter()
            .find(|s| s["kind"] == 3 && s["trace_id"] == trace)
            .unwrap_or_else(|| panic!("no client span in trace {trace}: {spans:#?}"));
        assert_eq!(client["parent_span_id"], server["span_id"], "the tool call is a child of the request");
        assert_eq!(client["attributes"]["http.response.status_code"], 200);
        let propagated = format!("00-{trace}-{}-01", client["span_id"].as_str().unwrap());
        assert!(seen.contains(&propagated), "the tool saw {seen:?}, not {propagated}");
    }
    assert!(
        wait_for_line(&app.stderr, "flush timed out", Duration::ZERO).is_none(),
        "a healthy receiver settles every flush:\n{}",
        text(&app.stderr)
    );
}

/// With the receiver refusing connections, or accepting and never answering,
/// the app answers at once (it flushes after its response is complete), and
/// its flush gives up by the configured deadline, counting what it dropped:
/// when refused, as soon as the core's next retry would come too late; when
/// hanging, at the deadline.
#[test]
fn a_receiver_down_or_hanging_neither_fails_nor_delays_responses() {
    const FLUSH_MS: u64 = 1500;
    let refusing = format!("http://127.0.0.1:{}", support::free_port());
    let hanging_url = hanging_receiver();
    let (tool_url, _) = tool();
    let flush = Duration::from_millis(FLUSH_MS);
    let slack = Duration::from_millis(100);
    // When the flush may give up, counted from the request.
    let windows = [
        ("refusing", refusing, (Duration::ZERO, flush - slack)),
        ("hanging", hanging_url, (flush - slack, flush + Duration::from_secs(2))),
    ];
    for (what, endpoint, (earliest, latest)) in windows {
        let (app, url) = serve(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("AGENT_TOOL_URL", &tool_url),
            ("POLYTEL_FLUSH_TIMEOUT_MS", &FLUSH_MS.to_string()),
        ]);
        let asked = Instant::now();
        let (status, body) = get(&format!("{url}/agent?q=weather"), None);
        let answered = asked.elapsed();
        assert_eq!(status, 200, "{what}: {body}\n{}", text(&app.stderr));
        assert!(answered < flush / 2, "{what}: the answer took {answered:?}");
        let (at, line) = wait_for_line(&app.stderr, "flush timed out", flush + Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{what}: the flush never gave up:\n{}", text(&app.stderr)));
        let flushed = at.duration_since(asked);
        assert!(
            flushed >= earliest && flushed < latest,
            "{what}: the flush gave up after {flushed:?}, not within {earliest:?}..{latest:?} (deadline {FLUSH_MS} ms)"
        );
        assert!(line.contains("2 items dropped"), "{what}: both spans are counted: {line}");
        // The next request is answered as fast.
        let asked = Instant::now();
        assert_eq!(get(&format!("{url}/agent?q=again"), None).0, 200);
        assert!(asked.elapsed() < flush / 2, "{what}: {:?}", asked.elapsed());
    }
}

/// A flush holds its instance until it gives up, so under load with a
/// hanging receiver many instances linger at once; with the pooling limits
/// the README gives, every request is still answered, and answered fast.
#[test]
fn a_hanging_receiver_under_load_fails_no_request() {
    const REQUESTS: usize = 400;
    let hanging_url = hanging_receiver();
    let (tool_url, _) = tool();
    let limits = [
        "-Opooling-total-component-instances=20000",
        "-Opooling-total-core-instances=20000",
        "-Opooling-total-memories=20000",
        "-Opooling-total-tables=20000",
    ];
    let (app, url) = serve_with(
        &limits,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &hanging_url),
            ("AGENT_TOOL_URL", &tool_url),
            ("POLYTEL_FLUSH_TIMEOUT_MS", "2000"),
        ],
    );
    let mut slowest = Duration::ZERO;
    for i in 0..REQUESTS {
        let asked = Instant::now();
        let (status, body) = get(&format!("{url}/agent?q={i}"), None);
        assert_eq!(status, 200, "request {i}: {body}\n{}", text(&app.stderr));
        slowest = slowest.max(asked.elapsed());
    }
    assert!(slowest < Duration::from_millis(1000), "the slowest answer took {slowest:?}");
}

/// The core's delivery decisions hold inside the component: a 503 with
/// Retry-After is retried after the pause it asks for, within the flush, and
/// every span arrives once.
#[test]
fn the_flush_retries_as_the_core_decides() {
    use polytel::faults::{FaultReceiver, Script, Step};
    let script = Script {
        steps: vec![Step { status: Some(503), retry_after: Some("1".into()), ..Default::default() }],
        then: None,
    };
    let receiver = FaultReceiver::start("127.0.0.1:0", script).expect("fault receiver");
    let (tool_url, _) = tool();
    let (app, url) = serve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint()),
        ("AGENT_TOOL_URL", &tool_url),
        ("POLYTEL_FLUSH_TIMEOUT_MS", "5000"),
    ]);
    let asked = Instant::now();
    assert_eq!(get(&format!("{url}/agent?q=weather"), None).0, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.stats().spans < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let delivered = asked.elapsed();
    let stats = receiver.stats();
    assert_eq!((stats.requests, stats.spans, stats.duplicate_spans), (2, 2, 0), "{stats:?}\n{}", text(&app.stderr));
    assert!(delivered >= Duration::from_millis(950), "Retry-After: 1 was not honoured: {delivered:?}");
    thread::sleep(Duration::from_millis(200));
    assert!(wait_for_line(&app.stderr, "flush timed out", Duration::ZERO).is_none(), "{}", text(&app.stderr));
}
