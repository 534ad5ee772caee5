//! The OTLP/gRPC transport, driven directly with the requests the core hands
//! over: real OTLP messages into a real OpenTelemetry Collector's gRPC
//! receiver (plain and gzip), and a small in-test HTTP/2 server for the
//! answers a Collector does not give on demand (HTTP errors, trailers-only
//! statuses, compressed replies, closed connections). Needs Go for the
//! Collector (built once by scripts/install-collector.sh); without it the
//! Collector tests fail, they never skip.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use polytel::grpc::GrpcSender;
use polytel::runtime::wit;
use polytel_core::proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use polytel_core::proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use polytel_core::proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use polytel_core::proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use polytel_core::proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use polytel_core::proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum,
};
use polytel_core::proto::tonic::resource::v1::Resource;
use polytel_core::proto::tonic::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use support::collector::Collector;

const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const LOGS: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
/// Sent as metadata in every call; it must never show up in an outcome.
const SECRET: &str = "Bearer s3cret-token-value";
/// 2023-11-14 22:13:20 UTC.
const T0: u64 = 1_700_000_000_000_000_000;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("gzip");
    out
}

/// What the core hands over: the request and the body (base64 of the
/// message, gzip-compressed when `compressed`).
fn export(target: &str, path: &str, message: &[u8], compressed: bool, timeout_ms: u32) -> (wit::GrpcRequest, String) {
    let req = wit::GrpcRequest {
        target: target.to_owned(),
        path: path.to_owned(),
        metadata: vec![("authorization".into(), SECRET.into()), ("x-tenant".into(), "acme".into())],
        compressed,
        timeout_ms,
    };
    let body = if compressed { b64(&gzip(message)) } else { b64(message) };
    (req, body)
}

fn call(sender: &mut GrpcSender, target: &str, path: &str, message: &[u8], compressed: bool) -> wit::Outcome {
    let (req, body) = export(target, path, message, compressed, 10_000);
    sender.send(&req, &body)
}

/// The response message of a call that ended with grpc-status OK.
fn ok_body(outcome: &wit::Outcome) -> Vec<u8> {
    match outcome {
        wit::Outcome::Grpc(r) if r.code == 0 && r.message.is_empty() && r.details.is_none() => unb64(&r.body),
        other => panic!("expected grpc-status 0, got {}", describe(other)),
    }
}

/// An outcome for assertion messages (the bindings' types have no Debug).
fn describe(outcome: &wit::Outcome) -> String {
    match outcome {
        wit::Outcome::Response(r) => format!("HTTP {} (retry-after {:?}, body {:?})", r.status, r.retry_after, r.body),
        wit::Outcome::Grpc(r) => {
            format!("grpc {} {:?} (details {:?}, body {:?})", r.code, r.message, r.details, r.body)
        }
        wit::Outcome::Failed(why) => format!("failed: {why}"),
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn str_kv(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn resource() -> Option<Resource> {
    Some(Resource { attributes: vec![str_kv("service.name", "grpc-test")], ..Default::default() })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope { name: "polytel.grpc-test".into(), version: "1.2.3".into(), ..Default::default() })
}

fn trace_request(name: &str, n: u8) -> ExportTraceServiceRequest {
    let span = Span {
        trace_id: vec![n; 16],
        span_id: vec![n; 8],
        name: name.into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + 1_500_000_000,
        attributes: vec![str_kv("http.route", "/chat"), kv("retries", any_value::Value::IntValue(3))],
        status: Some(Status { code: status::StatusCode::Error as i32, message: "upstream timed out".into() }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans { scope: scope(), spans: vec![span], ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn metrics_request(suffix: &str) -> ExportMetricsServiceRequest {
    let point = |value, route: &str| NumberDataPoint {
        attributes: vec![str_kv("route", route)],
        start_time_unix_nano: T0,
        time_unix_nano: T0 + 10_000_000_000,
        value: Some(value),
        ..Default::default()
    };
    let sum = Metric {
        name: format!("requests.{suffix}"),
        description: "requests served".into(),
        unit: "{request}".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![point(number_data_point::Value::AsInt(7), "/chat")],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let gauge = Metric {
        name: format!("load.{suffix}"),
        unit: "1".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![point(number_data_point::Value::AsDouble(0.25), "/tools")],
        })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics { scope: scope(), metrics: vec![sum, gauge], ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn logs_request(body: &str, n: u8) -> ExportLogsServiceRequest {
    let record = LogRecord {
        time_unix_nano: T0,
        observed_time_unix_nano: T0 + 1_000,
        severity_number: 13,
        severity_text: "WARN".into(),
        body: Some(AnyValue { value: Some(any_value::Value::StringValue(body.into())) }),
        attributes: vec![str_kv("tool", "web_search"), kv("attempt", any_value::Value::IntValue(2))],
        trace_id: vec![n; 16],
        span_id: vec![n; 8],
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs { scope: scope(), log_records: vec![record], ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn str_attr(key: &str, value: &str) -> (String, String) {
    (key.to_owned(), format!("Str({value})"))
}

#[test]
fn traces_reach_the_collector_plain_and_gzip() {
    let mut collector = Collector::start();
    let mut sender = GrpcSender::new();
    for (n, compressed) in [(1u8, false), (2, true)] {
        let message = trace_request(&format!("span-{n}"), n).encode_to_vec();
        let outcome = call(&mut sender, &collector.grpc_target(), TRACES, &message, compressed);
        let response = ExportTraceServiceResponse::decode(&ok_body(&outcome)[..]).expect("a trace response");
        assert_eq!(response.partial_success.map_or(0, |p| p.rejected_spans), 0);
    }
    collector.wait_for_spans(2, Duration::from_secs(20));
    // The Collector prints before it answers; a moment more would show a duplicate.
    std::thread::sleep(Duration::from_millis(200));
    let spans = collector.spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    for (span, n) in spans.iter().zip([1u8, 2]) {
        assert_eq!(span.name, format!("span-{n}"));
        assert_eq!(span.trace_id, format!("{n:02x}").repeat(16));
        assert_eq!(span.span_id, format!("{n:02x}").repeat(8));
        assert_eq!(span.parent_id, "");
        assert_eq!(span.kind, "Server");
        assert_eq!(span.start_time, "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(span.end_time, "2023-11-14 22:13:21.5 +0000 UTC");
        assert_eq!((span.status_code.as_str(), span.status_message.as_str()), ("Error", "upstream timed out"));
        assert_eq!(span.attributes, vec![str_attr("http.route", "/chat"), ("retries".into(), "Int(3)".into())]);
        assert_eq!(span.resource_attributes, vec![str_attr("service.name", "grpc-test")]);
        assert_eq!((span.scope_name.as_str(), span.scope_version.as_str()), ("polytel.grpc-test", "1.2.3"));
    }
}

#[test]
fn metrics_reach_the_collector_plain_and_gzip() {
    let mut collector = Collector::start();
    let mut sender = GrpcSender::new();
    for (suffix, compressed) in [("plain", false), ("gzip", true)] {
        let message = metrics_request(suffix).encode_to_vec();
        let outcome = call(&mut sender, &collector.grpc_target(), METRICS, &message, compressed);
        let response = ExportMetricsServiceResponse::decode(&ok_body(&outcome)[..]).expect("a metrics response");
        assert_eq!(response.partial_success.map_or(0, |p| p.rejected_data_points), 0);
    }
    collector.wait_for_metrics(|m| m.len() >= 4, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(200));
    let metrics = collector.metrics();
    let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["requests.plain", "load.plain", "requests.gzip", "load.gzip"], "{metrics:#?}");
    for m in &metrics {
        assert_eq!(m.resource_attr("service.name"), Some("Str(grpc-test)"));
        assert_eq!((m.scope_name.as_str(), m.scope_version.as_str()), ("polytel.grpc-test", "1.2.3"));
        assert_eq!(m.points.len(), 1, "{m:#?}");
        let p = &m.points[0];
        assert_eq!(p.start, "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(p.time, "2023-11-14 22:13:30 +0000 UTC");
        if m.name.starts_with("requests.") {
            assert_eq!(
                (m.data_type.as_str(), m.unit.as_str(), m.description.as_str()),
                ("Sum", "{request}", "requests served")
            );
            assert_eq!((m.temporality.as_deref(), m.monotonic), (Some("Cumulative"), Some(true)));
            assert_eq!((p.attr("route"), p.value), (Some("Str(/chat)"), Some(7.0)));
        } else {
            assert_eq!((m.data_type.as_str(), m.unit.as_str()), ("Gauge", "1"));
            assert_eq!((p.attr("route"), p.value), (Some("Str(/tools)"), Some(0.25)));
        }
    }
}

#[test]
fn logs_reach_the_collector_plain_and_gzip() {
    let mut collector = Collector::start();
    let mut sender = GrpcSender::new();
    for (n, compressed) in [(3u8, false), (4, true)] {
        let message = logs_request(&format!("tool call {n} failed"), n).encode_to_vec();
        let outcome = call(&mut sender, &collector.grpc_target(), LOGS, &message, compressed);
        let response = ExportLogsServiceResponse::decode(&ok_body(&outcome)[..]).expect("a logs response");
        assert_eq!(response.partial_success.map_or(0, |p| p.rejected_log_records), 0);
    }
    collector.wait_for_logs(2, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(200));
    let logs = collector.logs();
    assert_eq!(logs.len(), 2, "{logs:#?}");
    for (log, n) in logs.iter().zip([3u8, 4]) {
        assert_eq!(log.body, format!("Str(tool call {n} failed)"));
        assert_eq!((log.severity_number, log.severity_text.as_str()), (13, "WARN"));
        assert_eq!(log.attributes, vec![str_attr("tool", "web_search"), ("attempt".into(), "Int(2)".into())]);
        assert_eq!(log.trace_id, format!("{n:02x}").repeat(16));
        assert_eq!(log.span_id, format!("{n:02x}").repeat(8));
        assert_eq!(log.time, "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(log.resource_attr("service.name"), Some("Str(grpc-test)"));
        assert_eq!((log.scope_name.as_str(), log.scope_version.as_str()), ("polytel.grpc-test", "1.2.3"));
    }
}

// ---------------------------------------------------------------------------
// A scripted HTTP/2 (h2c) server

/// One request as the server received it.
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// How the server ends a connection.
#[derive(Clone, Copy, Debug)]
enum Close {
    /// Only when the client does.
    Never,
    /// Shortly after the first answer, without a word, as a proxy's idle
    /// timeout would.
    Drop,
    /// Shortly after the first answer, with a GOAWAY first, as a server
    /// limiting a connection's age would.
    GoAway,
}

/// What the server answers: `status` and `headers`, then `body` (if any),
/// then `trailers` (if any); with neither, the headers end the stream.
#[derive(Clone, Default)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    trailers: Option<Vec<(&'static str, &'static str)>>,
}

fn header_map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), http::HeaderValue::from_static(v))).collect()
}

struct H2Server {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    connections: Arc<AtomicUsize>,
}

impl H2Server {
    /// Serves `reply` to every request on a loopback port, in a thread that
    /// ends with the test process.
    fn start(reply: Reply, close: Close) -> H2Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let server = H2Server { addr, received: received.clone(), connections: connections.clone() };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                while let Ok((socket, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(socket, reply.clone(), received.clone(), close));
                }
            });
        });
        server
    }

    fn target(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn received(&self) -> std::sync::MutexGuard<'_, Vec<Received>> {
        self.received.lock().unwrap()
    }
}

async fn serve(socket: tokio::net::TcpStream, reply: Reply, received: Arc<Mutex<Vec<Received>>>, close: Close) {
    let Ok(mut conn) = h2::server::handshake(socket).await else { return };
    while let Some(Ok((request, respond))) = conn.accept().await {
        tokio::spawn(answer(request, respond, reply.clone(), received.clone()));
        if let Close::Drop | Close::GoAway = close {
            // The connection must keep being polled for the answer to go out.
            let _ = tokio::time::timeout(Duration::from_millis(50), conn.accept()).await;
            if let Close::GoAway = close {
                conn.graceful_shutdown();
                while conn.accept().await.is_some() {}
            }
            return;
        }
    }
}

async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    reply: Reply,
    received: Arc<Mutex<Vec<Received>>>,
) {
    let (head, mut body) = request.into_parts();
    let mut bytes = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    received.lock().unwrap().push(Received { path: head.uri.path().to_owned(), headers: head.headers, body: bytes });
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    *response.headers_mut() = header_map(&reply.headers);
    let headers_only = reply.body.is_empty() && reply.trailers.is_none();
    let Ok(mut stream) = respond.send_response(response, headers_only) else { return };
    if !reply.body.is_empty() {
        let _ = stream.send_data(Bytes::from(reply.body), reply.trailers.is_none());
    }
    if let Some(trailers) = reply.trailers {
        let _ = stream.send_trailers(header_map(&trailers));
    }
}

fn grpc_frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn partial_success() -> Vec<u8> {
    ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess { rejected_spans: 3, error_message: "spans too old".into() }),
    }
    .encode_to_vec()
}

#[test]
fn calls_are_framed_with_grpc_headers_and_metadata_on_one_connection() {
    let answer = partial_success();
    let server = H2Server::start(
        Reply {
            status: 200,
            headers: vec![("content-type", "application/grpc")],
            body: grpc_frame(0, &answer),
            trailers: Some(vec![("grpc-status", "0")]),
        },
        Close::Never,
    );
    let mut sender = GrpcSender::new();
    let message = trace_request("framed", 5).encode_to_vec();
    for compressed in [false, true] {
        let (req, body) = export(&server.target(), TRACES, &message, compressed, 2_500);
        let outcome = sender.send(&req, &body);
        // The response message arrives without its prefix, for the core to read partial_success.
        assert_eq!(ok_body(&outcome), answer);
    }

    let received = server.received();
    assert_eq!(received.len(), 2);
    for (got, compressed) in received.iter().zip([false, true]) {
        let h = |name: &str| got.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(got.path, TRACES);
        assert_eq!(h("content-type").as_deref(), Some("application/grpc"));
        assert_eq!(h("te").as_deref(), Some("trailers"));
        assert_eq!(h("grpc-timeout").as_deref(), Some("2500m"));
        assert_eq!(h("authorization").as_deref(), Some(SECRET));
        assert_eq!(h("x-tenant").as_deref(), Some("acme"));
        let agent = h("user-agent").unwrap_or_default();
        assert!(agent.starts_with("OTel-OTLP-Exporter-Rust/polytel-"), "user-agent {agent:?}");
        assert_eq!(h("grpc-encoding").as_deref(), compressed.then_some("gzip"));
        // The prefix: compressed flag, then the big-endian length of what follows.
        assert!(got.body.len() >= 5, "body {:?}", got.body);
        assert_eq!(got.body[0], u8::from(compressed));
        let len = u32::from_be_bytes(got.body[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, got.body.len() - 5);
        let sent = if compressed { gunzip(&got.body[5..]) } else { got.body[5..].to_vec() };
        assert_eq!(sent, message);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "the connection should be reused");
}

#[test]
fn a_gzip_compressed_response_message_is_decompressed() {
    let answer = partial_success();
    let server = H2Server::start(
        Reply {
            status: 200,
            headers: vec![("content-type", "application/grpc"), ("grpc-encoding", "gzip")],
            body: grpc_frame(1, &gzip(&answer)),
            trailers: Some(vec![("grpc-status", "0")]),
        },
        Close::Never,
    );
    let outcome = call(&mut GrpcSender::new(), &server.target(), TRACES, b"\x0a\x00", false);
    assert_eq!(ok_body(&outcome), answer);
}

#[test]
fn an_http_status_other_than_200_is_reported_as_a_response() {
    let server = H2Server::start(
        Reply {
            status: 503,
            headers: vec![("retry-after", "7"), ("content-type", "text/plain")],
            body: b"overloaded".to_vec(),
            trailers: None,
        },
        Close::Never,
    );
    let outcome = call(&mut GrpcSender::new(), &server.target(), TRACES, b"\x0a\x00", false);
    match &outcome {
        wit::Outcome::Response(r) => {
            assert_eq!((r.status, r.retry_after.as_deref()), (503, Some("7")));
            assert_eq!(unb64(&r.body), b"overloaded");
        }
        other => panic!("expected an HTTP response, got {}", describe(other)),
    }
}

#[test]
fn a_trailers_only_unavailable_is_reported_with_code_message_and_details() {
    let server = H2Server::start(
        Reply {
            status: 200,
            headers: vec![
                ("content-type", "application/grpc"),
                ("grpc-status", "14"),
                ("grpc-message", "backend%20is%20down%3A%20retry%20%E2%9C%93"),
                ("grpc-status-details-bin", "CA4SD2JhY2tlbmQgaXMgZG93bg"),
            ],
            ..Default::default()
        },
        Close::Never,
    );
    let outcome = call(&mut GrpcSender::new(), &server.target(), TRACES, b"\x0a\x00", false);
    match &outcome {
        wit::Outcome::Grpc(r) => {
            assert_eq!(r.code, 14);
            assert_eq!(r.message, "backend is down: retry \u{2713}");
            assert_eq!(r.details.as_deref(), Some("CA4SD2JhY2tlbmQgaXMgZG93bg"));
            assert_eq!(r.body, "");
        }
        other => panic!("expected a gRPC status, got {}", describe(other)),
    }
}

#[test]
fn an_answer_without_grpc_status_is_unknown() {
    let server = H2Server::start(
        Reply {
            status: 200,
            headers: vec![("content-type", "application/grpc")],
            body: grpc_frame(0, b""),
            trailers: Some(vec![("x-other", "1")]),
        },
        Close::Never,
    );
    let outcome = call(&mut GrpcSender::new(), &server.target(), TRACES, b"\x0a\x00", false);
    match &outcome {
        wit::Outcome::Grpc(r) => assert_eq!((r.code, r.message.as_str()), (2, "")),
        other => panic!("expected a gRPC status, got {}", describe(other)),
    }
}

#[test]
fn a_connection_the_server_closed_while_idle_is_replaced() {
    for close in [Close::Drop, Close::GoAway] {
        let server = H2Server::start(
            Reply {
                status: 200,
                headers: vec![("content-type", "application/grpc")],
                body: grpc_frame(0, b""),
                trailers: Some(vec![("grpc-status", "0")]),
            },
            close,
        );
        let mut sender = GrpcSender::new();
        for round in 1..=2 {
            let outcome = call(&mut sender, &server.target(), TRACES, b"\x0a\x00", false);
            let ok = matches!(&outcome, wit::Outcome::Grpc(r) if r.code == 0);
            assert!(ok, "{close:?}, call {round}: {}", describe(&outcome));
            // The server closes the connection while the sender is idle.
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(server.connections.load(Ordering::SeqCst), 2, "{close:?}");
    }
}

#[test]
fn a_refused_connection_fails_without_revealing_metadata() {
    let port = support::free_port();
    let target = format!("http://127.0.0.1:{port}");
    let outcome = call(&mut GrpcSender::new(), &target, TRACES, b"\x0a\x00", false);
    match &outcome {
        wit::Outcome::Failed(why) => {
            assert!(why.contains(&format!("127.0.0.1:{port}")), "{why}");
            assert!(why.to_lowercase().contains("refused"), "{why}");
            assert!(!why.contains("s3cret"), "{why}");
        }
        other => panic!("expected a failure, got {}", describe(other)),
    }
}

#[test]
fn a_server_that_never_answers_fails_within_the_timeout() {
    // Connections are accepted by the kernel's backlog and never read.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let target = format!("http://{}", silent.local_addr().unwrap());
    let (req, body) = export(&target, TRACES, b"\x0a\x00", false, 300);
    let started = Instant::now();
    let outcome = GrpcSender::new().send(&req, &body);
    let took = started.elapsed();
    match &outcome {
        wit::Outcome::Failed(why) => assert!(why.contains("300 ms"), "{why}"),
        other => panic!("expected a failure, got {}", describe(other)),
    }
    assert!(took >= Duration::from_millis(300), "gave up after {took:?}, before the timeout");
    // Generous: only a call that ignores its timeout takes this long.
    assert!(took < Duration::from_secs(10), "took {took:?} with a 300 ms timeout");
}

#[test]
fn an_https_target_speaks_tls() {
    // The h2c server cannot complete a TLS handshake: a client that sent the
    // call in plain text would get an answer instead.
    let server = H2Server::start(Reply { status: 200, ..Default::default() }, Close::Never);
    let target = format!("https://{}", server.addr);
    let outcome = call(&mut GrpcSender::new(), &target, TRACES, b"\x0a\x00", false);
    match &outcome {
        wit::Outcome::Failed(why) => assert!(why.contains("TLS handshake"), "{why}"),
        other => panic!("expected a TLS failure, got {}", describe(other)),
    }
    assert!(server.received().is_empty());
}
