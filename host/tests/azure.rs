//! The azure-monitor backend end to end: the Rust API, the core component and
//! the host's HTTP worker, against a local fake of Application Insights'
//! Track API (shared/reference/azure-monitor.md §4(b), §4(c)). The fake
//! records every request and answers from a script, so partial successes and
//! retries are seen on the wire. It also stands in for Live Metrics (§4(e)):
//! pings and posts are answered "subscribed". Tests of exports switch Live
//! Metrics off (it is on by default).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use polytel::{Options, Severity, SpanKind, Telemetry};
use serde_json::{json, Value};

const KEY: &str = "5ec2e7a1-5ec2-4e7a-9ec2-5ec2e7a15ec2";

/// One request as the fake ingestion endpoint saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    envelopes: Vec<Value>,
    /// The body as JSON (a Live Metrics ping's is an object).
    json: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn base_types(&self) -> Vec<&str> {
        self.envelopes.iter().map(|e| e["data"]["baseType"].as_str().unwrap_or("")).collect()
    }
}

/// An answer: status, headers, body.
type Answer = (u16, &'static [(&'static str, &'static str)], String);

/// A fake Track API: answers each request with the next scripted answer,
/// then with 200 accepting everything.
struct FakeIngestion {
    addr: std::net::SocketAddr,
    server: Arc<tiny_http::Server>,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeIngestion {
    fn start(script: Vec<Answer>) -> FakeIngestion {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let addr = server.server_addr().to_ip().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (worker, sink) = (server.clone(), seen.clone());
        let mut script: VecDeque<_> = script.into();
        let thread = std::thread::spawn(move || {
            for mut request in worker.incoming_requests() {
                let mut raw = Vec::new();
                request.as_reader().read_to_end(&mut raw).unwrap();
                let envelopes: Vec<Value> = serde_json::from_slice(&raw).unwrap_or_default();
                let json: Value = serde_json::from_slice(&raw).unwrap_or_default();
                let n = envelopes.len();
                let live = request.url().starts_with("/QuickPulseService.svc/");
                sink.lock().unwrap().push(Seen {
                    method: request.method().to_string(),
                    path: request.url().to_owned(),
                    headers: request
                        .headers()
                        .iter()
                        .map(|h| (h.field.as_str().as_str().to_owned(), h.value.as_str().to_owned()))
                        .collect(),
                    envelopes,
                    json,
                });
                const SUBSCRIBED: &[(&str, &str)] =
                    &[("x-ms-qps-subscribed", "true"), ("x-ms-qps-configuration-etag", "etag-7")];
                let answer = if live { Some((200, SUBSCRIBED, String::new())) } else { script.pop_front() };
                let (status, headers, body) = answer.unwrap_or_else(|| {
                    (200, &[][..], format!(r#"{{"itemsReceived":{n},"itemsAccepted":{n},"errors":[]}}"#))
                });
                let mut response = tiny_http::Response::from_string(body).with_status_code(status);
                for (name, value) in headers {
                    // "{addr}" in a header stands for this fake's own address.
                    let value = value.replace("{addr}", &addr.to_string());
                    response.add_header(tiny_http::Header::from_bytes(*name, value.as_bytes()).unwrap());
                }
                let _ = request.respond(response);
            }
        });
        FakeIngestion { addr, server, seen, thread: Some(thread) }
    }

    fn connection_string(&self) -> String {
        format!("InstrumentationKey={KEY};IngestionEndpoint=http://{}/", self.addr)
    }

    /// With Live Metrics sent to this fake too.
    fn connection_string_with_live(&self) -> String {
        format!("{};LiveEndpoint=http://{}/", self.connection_string(), self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeIngestion {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn telemetry(fake: &FakeIngestion) -> Telemetry {
    telemetry_with(fake.connection_string(), false)
}

fn telemetry_with(connection_string: String, live: bool) -> Telemetry {
    let options = Options {
        backend: Some("azure-monitor".into()),
        service_name: Some("checkout".into()),
        service_version: Some("2.0.1".into()),
        env: Some(BTreeMap::new()),
        host_facts: Some(json!({"host_name": "box-1", "os_type": "linux"})),
        ..Default::default()
    }
    .set("azure_monitor_connection_string", connection_string)
    .set("azure_monitor_live_metrics", if live { "true" } else { "false" });
    Telemetry::configure(options).unwrap()
}

#[test]
fn a_span_a_log_and_a_metric_arrive_as_envelopes() {
    let fake = FakeIngestion::start(vec![]);
    let t = telemetry(&fake);
    let span = t.span("GET /cart").kind(SpanKind::Server).attribute("http.request.method", "GET").start();
    t.counter("agent.runs").build().add(1.0, &[("agent", &"planner")]);
    t.log(Severity::Warn, "cart is empty").span(span.context()).emit();
    let (trace_id, span_id) = (hex(&span.context().trace_id), hex(&span.context().span_id));
    span.end();
    let report = t.shutdown(Duration::from_secs(10));
    assert!(report.flushed && report.abandoned == 0, "{report:?}");

    let seen = fake.seen();
    assert_eq!(seen.len(), 3, "one request per signal: {seen:?}");
    for r in &seen {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v2.1/track"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("content-encoding"), None, "the Track API takes the array uncompressed");
        assert_eq!(r.envelopes.len(), 1);
        let e = &r.envelopes[0];
        assert_eq!((&e["ver"], &e["iKey"]), (&json!(1), &json!(KEY)));
        assert_eq!(e["tags"]["ai.cloud.role"], "checkout");
        assert_eq!(e["tags"]["ai.cloud.roleInstance"], "box-1");
        assert_eq!(e["tags"]["ai.application.ver"], "2.0.1");
        assert!(e["tags"]["ai.internal.sdkVersion"].as_str().unwrap().starts_with("ulm_rust"), "{e}");
        assert!(e["time"].as_str().unwrap().ends_with('Z') && e["time"].as_str().unwrap().len() == 27, "{e}");
    }
    let by_type = |t: &str| seen.iter().find(|r| r.base_types() == [t]).unwrap_or_else(|| panic!("no {t}: {seen:?}"));

    let request = &by_type("RequestData").envelopes[0];
    assert_eq!(request["name"], "Microsoft.ApplicationInsights.Request");
    assert_eq!(request["tags"]["ai.operation.id"], trace_id.as_str());
    let base = &request["data"]["baseData"];
    assert_eq!((&base["id"], &base["name"], &base["ver"]), (&json!(span_id), &json!("GET /cart"), &json!(2)));
    assert!(base["duration"].as_str().unwrap().starts_with("0.00:00:"), "{base}");

    let message = &by_type("MessageData").envelopes[0];
    assert_eq!(message["tags"]["ai.operation.id"], trace_id.as_str());
    assert_eq!(message["tags"]["ai.operation.parentId"], span_id.as_str());
    assert_eq!(message["data"]["baseData"]["message"], "cart is empty");
    assert_eq!(message["data"]["baseData"]["severityLevel"], 2);

    let metric = &by_type("MetricData").envelopes[0];
    assert_eq!(metric["data"]["baseData"]["metrics"], json!([{"name": "agent.runs", "value": 1.0, "count": 1}]));
    assert_eq!(metric["data"]["baseData"]["properties"], json!({"agent": "planner"}));
}

#[test]
fn mixed_answers_lose_nothing_retryable_and_send_nothing_twice() {
    const NOW: &[(&str, &str)] = &[("Retry-After", "0")];
    let fake = FakeIngestion::start(vec![
        // Of four spans: the first accepted, the second throttled (retryable),
        // the third invalid, the fourth sampled out by ingestion.
        (
            206,
            NOW,
            r#"{"itemsReceived":4,"itemsAccepted":1,"errors":[
                {"index":1,"statusCode":429,"message":"Throttled"},
                {"index":2,"statusCode":400,"message":"Invalid"},
                {"index":3,"statusCode":206,"message":"Telemetry sampled out."}]}"#
                .into(),
        ),
        (429, NOW, String::new()),
        (503, NOW, String::new()),
    ]);
    let t = telemetry(&fake);
    for name in ["first", "second", "third", "fourth"] {
        t.span(name).start().end();
    }
    // A flush sends each due export once; Retry-After: 0 makes the retry due
    // at once, so each further flush is one more attempt.
    for _ in 0..5 {
        assert!(t.force_flush(Duration::from_secs(10)));
    }
    let report = t.shutdown(Duration::from_secs(10));
    assert!(report.flushed && report.abandoned == 0, "{report:?}");

    let seen = fake.seen();
    let names: Vec<Vec<&str>> = seen
        .iter()
        .map(|r| r.envelopes.iter().map(|e| e["data"]["baseData"]["name"].as_str().unwrap()).collect())
        .collect();
    assert_eq!(
        names,
        [vec!["first", "second", "third", "fourth"], vec!["second"], vec!["second"], vec!["second"]],
        "only the throttled span goes again, until a 200; then nothing more"
    );
    assert!(seen[1..].iter().all(|r| r.envelopes[0] == seen[0].envelopes[1]), "resent as it was");
    let stats = t.stats().unwrap();
    let spans = &stats["spans"];
    assert_eq!((&spans["exported"], &spans["retried"]), (&json!(2), &json!(3)), "{stats}");
    assert_eq!(spans["dropped"], json!({"partial_success": 1, "sampled_out": 1}), "{stats}");
}

#[test]
fn throttled_exports_are_dropped_and_counted() {
    let fake = FakeIngestion::start(vec![(439, &[], String::new())]);
    let t = telemetry(&fake);
    t.span("one").start().end();
    t.shutdown(Duration::from_secs(10));
    assert_eq!(fake.seen().len(), 1, "439 is not retried");
    let stats = t.stats().unwrap();
    assert_eq!(stats["spans"]["dropped"]["throttled"], 1, "{stats}");
}

/// The host follows no redirect itself: the 3xx and its Location reach the
/// core through the contract's http-response headers, and the core follows a
/// 307/308 only to the same host or within Application Insights' domains
/// (`polytel_core::azure::delivery::redirect_url`), sending the same body again.
#[test]
fn a_redirect_on_the_same_host_is_followed_by_the_core() {
    for status in [307, 308] {
        let to = &[("Location", "http://{addr}/v2.1/track")];
        let fake = FakeIngestion::start(vec![(status, to, String::new())]);
        let t = telemetry(&fake);
        t.span("one").start().end();
        t.force_flush(Duration::from_secs(10));
        // The core makes the export due again at once; the worker's next poll sends it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while fake.seen().len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        t.shutdown(Duration::from_secs(10));
        let seen = fake.seen();
        assert_eq!(seen.len(), 2, "{status}: sent, redirected, sent again");
        assert!(seen.iter().all(|r| r.method == "POST" && r.path == "/v2.1/track"), "{status}: {seen:?}");
        assert_eq!(seen[0].envelopes, seen[1].envelopes, "{status}: the same body goes again");
        let stats = t.stats().unwrap();
        let spans = &stats["spans"];
        assert_eq!(
            (&spans["exported"], &spans["retried"], &spans["dropped"]),
            (&json!(1), &json!(0), &json!({})),
            "{status}: {stats}"
        );
    }
}

/// A redirect outside Application Insights' domains is never followed (the
/// instrumentation key would go with it): dropped at once, counted, not retried.
#[test]
fn a_redirect_to_another_domain_is_dropped() {
    let to = &[("Location", "https://collector.example/v2.1/track")];
    let fake = FakeIngestion::start(vec![(307, to, String::new())]);
    let t = telemetry(&fake);
    t.span("one").start().end();
    t.shutdown(Duration::from_secs(10));
    assert_eq!(fake.seen().len(), 1);
    let stats = t.stats().unwrap();
    assert_eq!((&stats["spans"]["dropped"]["rejected"], &stats["spans"]["retried"]), (&json!(1), &json!(0)), "{stats}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Live Metrics end to end (§4(e)): the core pings the LiveEndpoint at
/// once; answered "subscribed" (an x-ms-qps-subscribed header the host
/// passes back), it posts every second, each request with the x-ms-qps-*
/// headers; none of it counts as an export, and the Track API still gets
/// the span.
#[test]
fn live_metrics_pings_then_posts_with_the_qps_headers() {
    let fake = FakeIngestion::start(vec![]);
    let t = telemetry_with(fake.connection_string_with_live(), true);
    let live = |fake: &FakeIngestion| -> Vec<Seen> {
        fake.seen().into_iter().filter(|r| r.path.starts_with("/QuickPulseService.svc/")).collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while live(&fake).len() < 3 && std::time::Instant::now() < deadline {
        t.span("GET /cart").kind(SpanKind::Server).start().end();
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = t.shutdown(Duration::from_secs(10));
    assert!(report.flushed, "{report:?}");
    let seen = live(&fake);
    assert!(seen.len() >= 3, "a ping, then posts: {seen:?}");
    let query = format!("?api-version=2024-04-01-preview&ikey={KEY}");
    assert_eq!(seen[0].path, format!("/QuickPulseService.svc/ping{query}"));
    assert!(seen[0].json.is_object(), "a ping carries one MonitoringDataPoint: {:?}", seen[0].json);
    for post in &seen[1..] {
        assert_eq!(post.path, format!("/QuickPulseService.svc/post{query}"));
        let metrics = post.json[0]["Metrics"].as_array().unwrap_or_else(|| panic!("{:?}", post.json));
        assert!(metrics.iter().any(|m| m["Name"] == r"\ApplicationInsights\Requests/Sec"), "{metrics:?}");
        // The etag of the answer before is echoed.
        assert_eq!(post.header("x-ms-qps-configuration-etag"), Some("etag-7"));
    }
    for r in &seen {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("x-ms-qps-role-name"), Some("checkout"));
        assert_eq!(r.header("x-ms-qps-machine-name"), Some("box-1"));
        assert_eq!(r.header("x-ms-qps-invariant-version"), Some("1"));
        assert!(r.header("x-ms-qps-transmission-time").is_some_and(|v| v.parse::<u64>().is_ok()), "{r:?}");
        assert_eq!(r.header("x-ms-qps-stream-id"), seen[0].header("x-ms-qps-stream-id"));
    }
    // Requests counted while subscribed show in some post.
    let requests: f64 = seen[1..]
        .iter()
        .filter_map(|p| {
            p.json[0]["Metrics"].as_array()?.iter().find(|m| m["Name"] == r"\ApplicationInsights\Requests/Sec")?
                ["Value"]
                .as_f64()
        })
        .sum();
    assert!(requests > 0.0, "{seen:?}");
    // Only the Track API's requests are exports.
    let track = fake.seen().iter().filter(|r| r.path == "/v2.1/track").count();
    assert!(track >= 1);
    let stats = t.stats().unwrap();
    assert_eq!(stats["exports"]["sent"], json!(track), "{stats}");
}
