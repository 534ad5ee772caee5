//! OTLP/gRPC transport: makes one unary gRPC call per export and reports how
//! it ended, in the core's terms. The core builds the message and chooses the
//! metadata; this module only frames the message, sends it over HTTP/2 and
//! reads the answer.
//!
//! Public so that integration tests can drive the transport directly; the
//! export worker is its only caller in the library.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use h2::client::SendRequest;
use h2::RecvStream;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, TE, USER_AGENT};
use http::{Method, Request, Response, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::runtime::wit;

/// Response messages matter only for partial_success; more than this is not kept.
const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// A gRPC message on the wire: compressed flag, then the big-endian length.
const PREFIX_LEN: usize = 5;
/// grpc-status UNKNOWN, for an answer that carries no status.
const UNKNOWN: u32 = 2;

/// Sends exports as unary gRPC calls, keeping one HTTP/2 connection per target.
pub struct GrpcSender {
    connections: HashMap<String, Connection>,
    /// Started on first use, so a host that never exports over gRPC pays nothing.
    runtime: Option<Runtime>,
    tls: Option<Arc<ClientConfig>>,
}

struct Connection {
    send: SendRequest<Bytes>,
    /// The task reading and writing the socket; a dropped connection must not
    /// leave it waiting on a server that stopped answering.
    driver: AbortHandle,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Where a call goes, without any user-info the target URL might carry.
struct Target {
    tls: bool,
    /// For DNS and the TLS server name: IPv6 literals without brackets.
    host: String,
    port: u16,
    /// `host:port` as it goes in `:authority` and in error messages.
    authority: String,
}

impl GrpcSender {
    pub fn new() -> GrpcSender {
        GrpcSender { connections: HashMap::new(), runtime: None, tls: None }
    }

    /// Makes the call `req` describes with `body_b64` (decoded) as its one
    /// message, within the request's timeout.
    pub fn send(&mut self, req: &wit::GrpcRequest, body_b64: &str) -> wit::Outcome {
        match self.try_send(req, body_b64) {
            Ok(outcome) => outcome,
            Err(why) => {
                // The connection may be what failed: the next call starts afresh.
                self.connections.remove(&req.target);
                wit::Outcome::Failed(why)
            }
        }
    }

    fn try_send(&mut self, req: &wit::GrpcRequest, body_b64: &str) -> Result<wit::Outcome, String> {
        let message = base64::engine::general_purpose::STANDARD
            .decode(body_b64.as_bytes())
            .map_err(|e| format!("the core handed over a gRPC body that is not base64: {e}"))?;
        let target = parse_target(&req.target)?;
        let request = build_request(req, &target)?;
        let tls = if target.tls { Some(self.tls_config()?) } else { None };
        let runtime = match self.runtime.take() {
            Some(r) => r,
            None => tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| format!("cannot start the gRPC client: {e}"))?,
        };
        let runtime = self.runtime.insert(runtime);
        let connections = &mut self.connections;
        let key = req.target.as_str();
        let call = call(connections, key, &target, tls, request, frame(&message, req.compressed));
        let timeout_ms = req.timeout_ms.max(1);
        runtime.block_on(async {
            if timeout_ms == u32::MAX {
                return call.await;
            }
            match tokio::time::timeout(Duration::from_millis(u64::from(timeout_ms)), call).await {
                Ok(result) => result,
                Err(_) => Err(format!(
                    "the gRPC call to {}{} got no complete answer within {timeout_ms} ms",
                    target.authority, req.path
                )),
            }
        })
    }

    fn tls_config(&mut self) -> Result<Arc<ClientConfig>, String> {
        if let Some(config) = &self.tls {
            return Ok(config.clone());
        }
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // The provider is named rather than left to the process default, which
        // is unset unless something installed one.
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS for gRPC: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(self.tls.insert(Arc::new(config)).clone())
    }
}

impl Default for GrpcSender {
    fn default() -> Self {
        Self::new()
    }
}

fn parse_target(target: &str) -> Result<Target, String> {
    let invalid = || "the gRPC target is not a URL like http://host:port or https://host:port".to_owned();
    let uri: Uri = target.parse().map_err(|_| invalid())?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(invalid()),
    };
    let authority = uri.authority().ok_or_else(invalid)?;
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bracketed = authority.host();
    let host = bracketed.trim_start_matches('[').trim_end_matches(']').to_owned();
    Ok(Target { tls, host, port, authority: format!("{bracketed}:{port}") })
}

fn build_request(req: &wit::GrpcRequest, target: &Target) -> Result<Request<()>, String> {
    let uri = Uri::builder()
        .scheme(if target.tls { "https" } else { "http" })
        .authority(target.authority.as_str())
        .path_and_query(req.path.as_str())
        .build()
        .map_err(|_| format!("the gRPC method {:?} is not a path like /package.Service/Method", req.path))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &req.metadata {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("the gRPC metadata name {name:?} is not a valid header name"))?;
        // The error names the key only: values hold credentials.
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of gRPC metadata {name} is not a valid header value"))?;
        // Never-indexed in HPACK, so credentials cannot be probed through the
        // compression table.
        value.set_sensitive(true);
        headers.append(name, value);
    }
    // These describe the framing this module does, so they win over metadata.
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(TE, HeaderValue::from_static("trailers"));
    if let Some(timeout) = grpc_timeout(req.timeout_ms) {
        headers.insert("grpc-timeout", timeout);
    }
    if req.compressed {
        headers.insert("grpc-encoding", HeaderValue::from_static("gzip"));
    }
    headers
        .entry(USER_AGENT)
        .or_insert(HeaderValue::from_static(concat!("OTel-OTLP-Exporter-Rust/polytel-", env!("CARGO_PKG_VERSION"))));
    let mut request = Request::new(());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The server's deadline, so it can give up when the client will have: at
/// most 8 digits, so long timeouts are given in seconds.
fn grpc_timeout(timeout_ms: u32) -> Option<HeaderValue> {
    if timeout_ms == u32::MAX {
        return None;
    }
    let ms = timeout_ms.max(1);
    let text = if ms < 100_000_000 { format!("{ms}m") } else { format!("{}S", ms.div_ceil(1000)) };
    HeaderValue::from_str(&text).ok()
}

fn frame(message: &[u8], compressed: bool) -> Bytes {
    let mut framed = Vec::with_capacity(PREFIX_LEN + message.len());
    framed.push(u8::from(compressed));
    // The core's batches are far below 4 GiB; saturating keeps a bad length visible to the server.
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(message);
    Bytes::from(framed)
}

async fn call(
    connections: &mut HashMap<String, Connection>,
    key: &str,
    target: &Target,
    tls: Option<Arc<ClientConfig>>,
    request: Request<()>,
    body: Bytes,
) -> Result<wit::Outcome, String> {
    let what = format!("the gRPC call to {}{}", target.authority, request.uri().path());
    let mut send = ready_connection(connections, key, target, tls).await?;
    let (response, mut stream) = send.send_request(request, false).map_err(|e| format!("{what} failed: {e}"))?;
    stream.send_data(body, true).map_err(|e| format!("{what} failed: {e}"))?;
    let response = response.await.map_err(|e| format!("{what} failed: {e}"))?;
    read_response(response).await.map_err(|e| format!("{what} failed while reading the answer: {e}"))
}

/// A connection to `target` that can take a call: the one kept from earlier
/// calls if it is still open, else a new one.
async fn ready_connection(
    connections: &mut HashMap<String, Connection>,
    key: &str,
    target: &Target,
    tls: Option<Arc<ClientConfig>>,
) -> Result<SendRequest<Bytes>, String> {
    if let Some(kept) = connections.get(key) {
        // The driver only runs during calls. A moment for the reactor to hand
        // it what arrived while idle (a GOAWAY, a close) lets a connection
        // the server dropped be replaced here instead of failing the call;
        // an export does not mind the millisecond.
        tokio::time::sleep(Duration::from_millis(1)).await;
        if !kept.driver.is_finished() {
            if let Ok(send) = kept.send.clone().ready().await {
                return Ok(send);
            }
        }
        connections.remove(key);
    }
    let connection = connect(target, tls).await?;
    let send = connection
        .send
        .clone()
        .ready()
        .await
        .map_err(|e| format!("the HTTP/2 connection to {} failed: {e}", target.authority))?;
    connections.insert(key.to_owned(), connection);
    Ok(send)
}

async fn connect(target: &Target, tls: Option<Arc<ClientConfig>>) -> Result<Connection, String> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", target.authority))?;
    // Each call is a few small frames; waiting to coalesce them only adds latency.
    let _ = tcp.set_nodelay(true);
    let Some(config) = tls else {
        // Plain http:// is HTTP/2 with prior knowledge (h2c), as gRPC expects.
        return handshake(tcp, target).await;
    };
    let name = ServerName::try_from(target.host.clone())
        .map_err(|_| format!("{} is not a valid TLS server name", target.host))?;
    let stream = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("the TLS handshake with {} failed: {e}", target.authority))?;
    handshake(stream, target).await
}

async fn handshake<T>(io: T, target: &Target) -> Result<Connection, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) = h2::client::handshake(io)
        .await
        .map_err(|e| format!("the HTTP/2 handshake with {} failed: {e}", target.authority))?;
    let driver = tokio::spawn(async move {
        // Its errors reach the calls in flight, which report them.
        let _ = connection.await;
    })
    .abort_handle();
    Ok(Connection { send, driver })
}

async fn read_response(response: Response<RecvStream>) -> Result<wit::Outcome, h2::Error> {
    let (head, mut body) = response.into_parts();
    let ok = head.status == StatusCode::OK;
    // A gRPC answer's status comes after its body, so that is read to the end;
    // any other answer only up to what is kept.
    let keep = if ok { PREFIX_LEN + MAX_RESPONSE_BODY } else { MAX_RESPONSE_BODY };
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        let room = keep.saturating_sub(data.len());
        data.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if !ok && data.len() >= keep {
            break;
        }
    }
    if !ok {
        let retry_after = head.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        return Ok(wit::Outcome::Response(wit::HttpResponse {
            status: head.status.as_u16(),
            retry_after,
            body: base64::engine::general_purpose::STANDARD.encode(data),
            headers: crate::http::core_headers(&head.headers),
        }));
    }
    let trailers = body.trailers().await?;
    // A trailers-only answer carries the status in its headers.
    let status = match &trailers {
        Some(t) if t.contains_key("grpc-status") => t,
        _ => &head.headers,
    };
    let code =
        status.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok()).unwrap_or(UNKNOWN);
    let message = status
        .get("grpc-message")
        .map(|v| percent_encoding::percent_decode(v.as_bytes()).decode_utf8_lossy().into_owned())
        .unwrap_or_default();
    let details = status.get("grpc-status-details-bin").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let gzip = head.headers.get("grpc-encoding").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    Ok(wit::Outcome::Grpc(wit::GrpcResponse {
        code,
        message,
        details,
        body: base64::engine::general_purpose::STANDARD.encode(unframe(&data, gzip)),
    }))
}

/// The first message of a response body, decompressed, at most
/// `MAX_RESPONSE_BODY` bytes of it.
fn unframe(data: &[u8], gzip: bool) -> Vec<u8> {
    let Some((prefix, rest)) = data.split_first_chunk::<PREFIX_LEN>() else {
        return Vec::new();
    };
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    let message = &rest[..rest.len().min(len)];
    if prefix[0] == 0 {
        // Already no longer than MAX_RESPONSE_BODY: only that much was kept.
        return message.to_vec();
    }
    // A message in an encoding this client never offered cannot be read; the
    // status still tells the core how the call ended.
    let mut out = Vec::new();
    if gzip {
        // A truncated message still yields what decompressed before the cut.
        let _ = flate2::read::GzDecoder::new(message).take(MAX_RESPONSE_BODY as u64).read_to_end(&mut out);
    }
    out
}
