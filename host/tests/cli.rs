//! The `polytel` command as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn polytel() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_polytel"));
    // The user's OTEL_* and POLYTEL_* settings must not leak into these tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k.starts_with("POLYTEL_") {
            c.env_remove(k);
        }
    }
    c
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn check_describes_without_sending_and_masks_headers() {
    let (ok, out, err) = run(polytel().args([
        "check",
        "--endpoint",
        "https://api.honeycomb.io",
        "--header",
        "x-honeycomb-team=hcaik_01234567890123456789",
        "--protocol",
        "http/json",
        "--json",
    ]));
    assert!(ok, "{err}");
    let described: serde_json::Value = serde_json::from_str(&out).unwrap();
    let route = &described["traces"][0];
    assert_eq!(route["url"], "https://api.honeycomb.io/v1/traces");
    assert_eq!(route["protocol"], "http/json");
    assert_eq!(route["headers"]["x-honeycomb-team"], "hcai… (26 chars)");
    assert!(!out.contains("01234567890123456789"));
}

#[test]
fn check_reads_the_environment_and_fails_in_one_sentence() {
    let (ok, out, _) = run(polytel().arg("check").env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/base"));
    assert!(ok);
    assert!(out.contains("http://collector:4318/base/v1/traces"), "{out}");

    let (ok, _, err) = run(polytel().args(["check", "--preset", "honeycomb"]).env_remove("HONEYCOMB_API_KEY"));
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("honeycomb_api_key") && err.contains("HONEYCOMB_API_KEY"), "{err}");

    let (ok, _, err) = run(polytel().args(["check", "--bogus"]));
    assert!(!ok);
    assert!(err.contains("--bogus"), "{err}");
}

#[test]
fn check_prints_each_signal_of_a_preset_with_masked_credentials() {
    let (ok, out, err) = run(polytel()
        .args(["check", "--preset", "sentry,console", "--service-name", "agent"])
        .env("SENTRY_DSN", "https://SECRETKEY123@o1.ingest.us.sentry.io/42"));
    assert!(ok, "{err}");
    for line in [
        "traces → sentry",
        "  url          https://o1.ingest.us.sentry.io/api/42/integration/otlp/v1/traces",
        "  protocol     http/protobuf (application/x-protobuf), compression none",
        "  headers      x-sentry-auth: sent… (30 chars)",
        "metrics → console (standard output)",
        "logs → sentry",
        "notice: Sentry takes no OTLP metrics, so metrics are not sent to sentry.",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    assert!(!out.contains("SECRETKEY123"), "{out}");

    let (ok, out, err) = run(polytel().args(["check", "--preset", "datadog", "--set", "datadog_api_key=k"]));
    assert!(ok, "{err}");
    assert!(out.contains("temporality  delta"), "{out}");
    assert!(out.contains("traces: not sent"), "{out}");
}

#[test]
fn demo_sends_to_a_preset() {
    let got: std::sync::Arc<std::sync::Mutex<Vec<polytel::receiver::Received>>> = Default::default();
    let sink = got.clone();
    let receiver = polytel::receiver::Receiver::start("127.0.0.1:0", move |r| sink.lock().unwrap().push(r)).unwrap();
    let (ok, out, err) = run(polytel().args([
        "demo",
        "--pace",
        "0",
        "--preset",
        "honeycomb",
        "--endpoint",
        &receiver.endpoint(),
        "--set",
        "honeycomb_api_key=hcaik_demo_key",
    ]));
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("traces → honeycomb"), "{out}");
    let got = got.lock().unwrap();
    for path in ["/v1/traces", "/v1/metrics", "/v1/logs"] {
        let r = got.iter().find(|r| r.path == path).unwrap_or_else(|| panic!("no {path}"));
        let team = r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-honeycomb-team")).map(|(_, v)| v.as_str());
        assert_eq!(team, Some("hcaik_demo_key"), "{path}");
    }
    let spans: usize = got
        .iter()
        .filter_map(|r| r.traces.as_ref())
        .flat_map(|t| &t.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    assert_eq!(spans, 8);
}

#[test]
fn demo_prints_the_trace_tree() {
    let (ok, out, err) = run(polytel().args(["demo", "--pace", "0"]));
    assert!(ok, "{err}");
    assert!(out.contains("The receiver got 8 spans, 10 metric data points and 4 log records"), "{out}");
    for line in [
        "metric gen_ai.client.operation.duration (s) · histogram, cumulative",
        "metric polytel.gen_ai.cost ({USD}) · counter, cumulative",
        "tokens 2042 in / 508 out, cost $0.010185",
        "gen_ai.token.type=\"input\"  count=2 sum=2042",
        "ERROR tool fetch_page finished: error",
        "invoke_agent research-assistant",
        "├─ chat gpt-4o",
        "├─ execute_tool fetch_page",
        "ERROR: fetch_page timed out after 30s",
        "• exception at",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
}

struct Receiving(Child);

impl Drop for Receiving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn demo_sends_where_the_environment_says_and_receive_decodes_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut receiver = Receiving(
        polytel()
            .args(["receive", "--listen", &format!("127.0.0.1:{port}"), "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "polytel receive did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, out, err) = run(polytel()
        .args(["demo", "--pace", "0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"));
    assert!(ok, "{out}\n{err}");

    let mut lines = BufReader::new(receiver.0.stdout.take().unwrap()).lines();
    let spans: Vec<serde_json::Value> =
        (0..8).map(|_| serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap()).collect();
    let root = spans.iter().find(|s| s["parent_span_id"] == "").expect("a root span");
    assert_eq!(root["name"], "invoke_workflow research-report");
    assert_eq!(root["resource"]["service.name"], "polytel-demo");
    let agent = spans.iter().find(|s| s["name"] == "invoke_agent research-assistant").expect("the agent");
    assert_eq!(agent["parent_span_id"], root["span_id"]);
    let others = spans.iter().filter(|s| s["parent_span_id"] != "" && s["span_id"] != agent["span_id"]);
    assert!(others.clone().count() == 6 && others.into_iter().all(|s| s["parent_span_id"] == agent["span_id"]));
    let failed = spans.iter().find(|s| s["name"] == "execute_tool fetch_page").unwrap();
    assert_eq!(failed["status"]["code"], 2);
    assert_eq!(failed["events"][0]["attributes"]["exception.type"], "TimeoutError");
    let chat = spans.iter().find(|s| s["name"] == "chat gpt-4o").unwrap();
    assert_eq!(chat["kind"], 3);
    assert_eq!(chat["attributes"]["gen_ai.request.temperature"], 0.2);
}
