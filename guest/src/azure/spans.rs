//! Spans as envelopes (shared/reference/azure-monitor.md §4(b) "Span →
//! envelope", `export/trace/_exporter.py`): server and consumer spans become
//! Requests, client, producer and internal spans RemoteDependencies, and each
//! span event an Exception or a Message.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};

use super::envelopes::{
    BaseData, ExceptionData, ExceptionDetails, Item, MessageData, Properties, RemoteDependencyData, RequestData,
    DOMAIN_VERSION, EXCEPTION, MESSAGE, REMOTE_DEPENDENCY, REQUEST,
};
use super::format::{
    duration, first_int, first_number, first_text, properties, time, truncate, MAX_DATA, MAX_MESSAGE, MAX_NAME,
    MAX_PROPERTY_VALUE, MAX_URL,
};
use super::tags::Tags;
use crate::ids::to_hex;
use crate::jsonl::is_set;

/// §4(b): the span attribute that carries a sample rate.
pub const SAMPLE_RATE_KEY: &str = "_MS.sampleRate";
/// §4(b): where links go.
pub const LINKS_KEY: &str = "_MS.links";

/// Attribute prefixes the mapping reads into fields, tags or the dependency
/// type; they are not repeated in `properties`. The exporter's list of
/// OpenTelemetry-standard prefixes, with the current semantic conventions'
/// `url.`, `server.`, `client.`, `network.` and `user_agent.` besides.
const MAPPED_PREFIXES: &[&str] = &[
    "http.",
    "db.",
    "message.",
    "messaging.",
    "rpc.",
    "enduser.",
    "net.",
    "peer.",
    "exception.",
    "thread.",
    "faas.",
    "code.",
    "url.",
    "server.",
    "client.",
    "network.",
    "user_agent.",
];

fn mapped(key: &str) -> bool {
    key == SAMPLE_RATE_KEY || MAPPED_PREFIXES.iter().any(|p| key.starts_with(p))
}

const METHOD: &[&str] = &["http.request.method", "http.method"];
const STATUS: &[&str] = &["http.response.status_code", "http.status_code"];
const DB_SYSTEM: &[&str] = &["db.system.name", "db.system"];
const GENAI_PROVIDER: &[&str] = &["gen_ai.provider.name", "gen_ai.system"];
const PEER: &[&str] = &["server.address", "net.peer.name", "net.peer.ip"];
const PEER_PORT: &[&str] = &["server.port", "net.peer.port"];

/// The envelopes of one span: its own, then one per event.
pub fn items(span: &Span, part_a: &Tags, default_sample_rate: f64) -> Vec<Item> {
    let attrs = &span.attributes;
    let sample_rate = first_number(attrs, &[SAMPLE_RATE_KEY]).unwrap_or(default_sample_rate);
    let trace_id = to_hex(&span.trace_id);
    let span_id = to_hex(&span.span_id);
    let mut tags = part_a.clone();
    tags.insert("ai.operation.id", trace_id.clone());
    if is_set(&span.parent_span_id) {
        tags.insert("ai.operation.parentId", to_hex(&span.parent_span_id));
    }
    for (tag, keys) in [
        ("ai.user.id", &["enduser.pseudo.id"][..]),
        ("ai.user.authUserId", &["enduser.id"]),
        ("ai.session.id", &["session.id"]),
        ("ai.user.userAgent", &["user_agent.original", "http.user_agent"]),
    ] {
        if let Some(v) = first_text(attrs, keys) {
            tags.insert(tag, truncate(&v, MAX_NAME));
        }
    }
    let ok = span.status.as_ref().is_none_or(|s| s.code != StatusCode::Error as i32);
    let elapsed = duration(span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano));
    let mut props = properties(attrs, mapped);
    if let Some(links) = links_json(span) {
        props.insert(LINKS_KEY.to_owned(), links);
    }

    let kind = span.kind;
    let (name, data) = if kind == SpanKind::Server as i32 || kind == SpanKind::Consumer as i32 {
        let r = request(span, ok, elapsed, props);
        if let Some(ip) = first_text(attrs, &["client.address", "http.client_ip", "net.peer.ip"]) {
            tags.insert("ai.location.ip", ip);
        }
        tags.insert("ai.operation.name", r.name.clone());
        (REQUEST, BaseData::Request(r))
    } else {
        let d = dependency(span, ok, elapsed, props);
        tags.insert("ai.operation.name", d.name.clone());
        (REMOTE_DEPENDENCY, BaseData::RemoteDependency(d))
    };
    let mut out = vec![Item { name, time: time(span.start_time_unix_nano), sample_rate, tags, data }];

    // Span events: their operation is the span's, their parent the span.
    let mut event_tags = part_a.clone();
    event_tags.insert("ai.operation.id", trace_id);
    event_tags.insert("ai.operation.parentId", span_id);
    for event in &span.events {
        let (name, data) = if event.name == "exception" {
            (EXCEPTION, BaseData::Exception(exception(&event.attributes, None)))
        } else {
            let properties = properties(&event.attributes, |_| false);
            let message = truncate(&event.name, MAX_MESSAGE);
            (MESSAGE, BaseData::Message(MessageData { ver: DOMAIN_VERSION, message, severity_level: None, properties }))
        };
        out.push(Item { name, time: time(event.time_unix_nano), sample_rate, tags: event_tags.clone(), data });
    }
    out
}

/// An exception from `exception.*` attributes (span events and log records):
/// §4(b) "Attributes, events and links", "Logs".
pub fn exception(attrs: &[KeyValue], severity_level: Option<u8>) -> ExceptionData {
    let type_name = first_text(attrs, &["exception.type"]).unwrap_or_else(|| "Exception".to_owned());
    let message = first_text(attrs, &["exception.message"]).unwrap_or_else(|| type_name.clone());
    let stack = first_text(attrs, &["exception.stacktrace"]).map(|s| truncate(&s, MAX_MESSAGE));
    ExceptionData {
        ver: DOMAIN_VERSION,
        exceptions: vec![ExceptionDetails {
            type_name: truncate(&type_name, MAX_NAME),
            message: truncate(&message, MAX_MESSAGE),
            has_full_stack: stack.is_some(),
            stack,
        }],
        severity_level,
        properties: properties(attrs, |k| k.starts_with("exception.")),
    }
}

/// Whether a SERVER or CONSUMER span's Request succeeded (its `success`),
/// for Live Metrics' failed requests (§4(e)).
pub fn request_success(span: &Span) -> bool {
    let ok = span.status.as_ref().is_none_or(|s| s.code != StatusCode::Error as i32);
    request(span, ok, String::new(), Properties::new()).success
}

/// SERVER and CONSUMER spans.
fn request(span: &Span, ok: bool, duration: String, properties: Properties) -> RequestData {
    let attrs = &span.attributes;
    let mut r = RequestData {
        ver: DOMAIN_VERSION,
        id: to_hex(&span.span_id),
        name: span.name.clone(),
        duration,
        success: ok,
        response_code: "0".into(),
        source: None,
        url: None,
        properties,
        measurements: Default::default(),
    };
    if let Some(method) = first_text(attrs, METHOD) {
        let url = request_url(attrs);
        let path = first_text(attrs, &["http.route"]).or_else(|| {
            first_text(attrs, &["url.path"]).or_else(|| url.as_deref().map(url_path)).map(|p| {
                if p.is_empty() {
                    "/".to_owned()
                } else {
                    p
                }
            })
        });
        if let Some(path) = path {
            r.name = format!("{method} {path}");
        }
        let code = first_int(attrs, STATUS).unwrap_or(0);
        r.response_code = code.to_string();
        // 4xx is the caller's failure; 5xx fails only through the span status.
        r.success = ok && code != 0 && !(400..500).contains(&code);
        r.url = url.map(|u| truncate(&u, MAX_URL));
    } else if first_text(attrs, &["messaging.system"]).is_some() {
        let destination = first_text(attrs, &["messaging.destination.name", "messaging.destination"]);
        r.source = match (first_text(attrs, PEER), destination) {
            (Some(peer), Some(d)) => Some(format!("{peer}/{d}")),
            (None, d) => d,
            (Some(_), None) => None,
        };
    }
    r.name = truncate(&r.name, MAX_NAME);
    r.response_code = truncate(&r.response_code, MAX_NAME);
    r.source = r.source.map(|s| truncate(&s, MAX_NAME));
    r
}

/// CLIENT, PRODUCER and INTERNAL spans.
fn dependency(span: &Span, ok: bool, duration: String, properties: Properties) -> RemoteDependencyData {
    let attrs = &span.attributes;
    let mut d = RemoteDependencyData {
        ver: DOMAIN_VERSION,
        id: to_hex(&span.span_id),
        name: span.name.clone(),
        result_code: "0".into(),
        data: None,
        kind: None,
        target: None,
        duration,
        // The status alone says whether a dependency call succeeded.
        success: ok,
        properties,
    };
    let az_namespace = first_text(attrs, &["az.namespace"]);
    if span.kind == SpanKind::Internal as i32 {
        d.kind = Some("InProc".into());
    } else if span.kind == SpanKind::Producer as i32 {
        d.kind = Some(match &az_namespace {
            Some(ns) => format!("Queue Message | {ns}"),
            None => "Queue Message".into(),
        });
        d.target = messaging_target(attrs);
    } else if let Some(ns) = az_namespace {
        // Azure SDK spans name their service.
        d.kind = Some(ns);
        d.target = host_port(attrs, None);
    } else if let Some(method) = first_text(attrs, METHOD) {
        let url = first_text(attrs, &["url.full", "http.url"]);
        d.kind = Some("HTTP".into());
        let path = url.as_deref().map(url_path).map(|p| if p.is_empty() { "/".to_owned() } else { p });
        if let Some(path) = path {
            d.name = format!("{method} {path}");
        }
        d.target = host_port(attrs, url.as_deref());
        d.data = url;
        if let Some(code) = first_int(attrs, STATUS) {
            d.result_code = code.to_string();
        }
    } else if let Some(system) = first_text(attrs, DB_SYSTEM) {
        d.kind = Some(db_type(&system));
        d.data = first_text(attrs, &["db.query.text", "db.statement"])
            .or_else(|| first_text(attrs, &["db.operation.name", "db.operation"]));
        d.target = host_port(attrs, None).or_else(|| first_text(attrs, &["db.namespace", "db.name"]));
    } else if let Some(system) = first_text(attrs, &["messaging.system"]) {
        d.kind = Some(system);
        d.target = messaging_target(attrs);
    } else if let Some(system) = first_text(attrs, &["rpc.system"]) {
        d.kind = Some(system);
        d.target = host_port(attrs, None);
    } else if let Some(provider) = first_text(attrs, GENAI_PROVIDER) {
        // The reference gives GenAI spans a branch of their own without
        // naming the type; Application Insights shows "GenAI | {provider}".
        // gen_ai.system is the deprecated name of gen_ai.provider.name
        // (shared/reference/genai-prometheus.md, "Renames").
        d.kind = Some(format!("GenAI | {provider}"));
        d.target = host_port(attrs, None);
    }
    d.name = truncate(&d.name, MAX_NAME);
    d.result_code = truncate(&d.result_code, MAX_NAME);
    d.data = d.data.map(|s| truncate(&s, MAX_DATA));
    d.kind = d.kind.map(|s| truncate(&s, MAX_NAME));
    d.target = d.target.map(|s| truncate(&s, MAX_NAME));
    d
}

/// §4(b): `mysql`, `postgresql`, `mongodb`, `redis`, `SQL` for the other SQL
/// databases, or the system as it is.
fn db_type(system: &str) -> String {
    const SQL: &[&str] = &[
        "mssql",
        "microsoft.sql_server",
        "oracle",
        "oracle.db",
        "db2",
        "ibm.db2",
        "derby",
        "h2",
        "hsqldb",
        "mariadb",
        "sqlite",
        "other_sql",
        "cockroachdb",
        "sap.hana",
        "hanadb",
        "sybase",
        "teradata",
        "informix",
        "ingres",
        "firebird",
        "interbase",
        "pervasive",
        "pointbase",
        "instantdb",
        "cache",
        "intersystems.cache",
        "adabas",
        "edb",
        "netezza",
        "vertica",
        "progress",
        "filemaker",
        "trino",
        "clickhouse",
        "spanner",
        "gcp.spanner",
    ];
    match system {
        "mysql" | "postgresql" | "mongodb" | "redis" => system.to_owned(),
        s if SQL.contains(&s) => "SQL".to_owned(),
        s => s.to_owned(),
    }
}

/// A request's full URL: url.full (http.url), else built from the scheme,
/// host, port, path and query attributes.
fn request_url(attrs: &[KeyValue]) -> Option<String> {
    if let Some(u) = first_text(attrs, &["url.full", "http.url"]) {
        return Some(u);
    }
    let scheme = first_text(attrs, &["url.scheme", "http.scheme"])?;
    let host = first_text(attrs, &["server.address", "http.host", "http.server_name", "net.host.name"])?;
    let port = first_int(attrs, &["server.port", "net.host.port"])
        .filter(|p| Some(*p) != default_port(&scheme) && !host.contains(':'));
    let target = match first_text(attrs, &["url.path"]) {
        Some(path) => match first_text(attrs, &["url.query"]) {
            Some(q) => format!("{path}?{q}"),
            None => path,
        },
        None => first_text(attrs, &["http.target"])?,
    };
    Some(match port {
        Some(p) => format!("{scheme}://{host}:{p}{target}"),
        None => format!("{scheme}://{host}{target}"),
    })
}

fn default_port(scheme: &str) -> Option<i64> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The path of a URL, without query or fragment; empty when it has none.
fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    rest.find('/').map_or(String::new(), |i| rest[i..].to_owned())
}

/// `host[:port]` of the called service: the peer attributes, else the URL's
/// authority; a scheme's default port is left out.
fn host_port(attrs: &[KeyValue], url: Option<&str>) -> Option<String> {
    let from_url = url.and_then(|u| {
        let (scheme, rest) = u.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let default = default_port(scheme).map(|p| format!(":{p}"));
        let trimmed = match &default {
            Some(d) => authority.strip_suffix(d.as_str()).unwrap_or(authority),
            None => authority,
        };
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    });
    let Some(host) = first_text(attrs, &["peer.service"]).or_else(|| first_text(attrs, PEER)) else {
        return from_url;
    };
    let scheme = url.and_then(|u| u.split_once("://")).map(|(s, _)| s);
    match first_int(attrs, PEER_PORT) {
        Some(port) if scheme.and_then(default_port) != Some(port) => Some(format!("{host}:{port}")),
        _ => Some(host),
    }
}

/// `{peer}/{destination}`, or the destination alone.
fn messaging_target(attrs: &[KeyValue]) -> Option<String> {
    let destination = first_text(attrs, &["messaging.destination.name", "messaging.destination"]);
    match (first_text(attrs, PEER), destination) {
        (Some(peer), Some(d)) => Some(format!("{peer}/{d}")),
        (peer, None) => peer,
        (None, d) => d,
    }
}

/// §4(b): links as `[{"operation_Id": trace id, "id": span id}, …]`, as many
/// as fit in a property value (8192 characters: about 100 links).
fn links_json(span: &Span) -> Option<String> {
    if span.links.is_empty() {
        return None;
    }
    let mut out = String::from("[");
    for link in &span.links {
        let entry = format!(r#"{{"operation_Id":"{}","id":"{}"}}"#, to_hex(&link.trace_id), to_hex(&link.span_id));
        if out.len() + entry.len() + 2 > MAX_PROPERTY_VALUE {
            break;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&entry);
    }
    out.push(']');
    Some(out)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue};
    use opentelemetry_proto::tonic::trace::v1::{span, Status};
    use serde_json::{json, Value as Json};

    use super::*;
    use crate::attributes::{int_value, key_value, string_value};

    const TRACE: [u8; 16] =
        [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36];
    const SPAN: [u8; 8] = [0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];
    const PARENT: [u8; 8] = [0x11; 8];

    fn attrs(pairs: &[(&str, Json)]) -> Vec<KeyValue> {
        pairs
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Json::String(s) => string_value(s.as_str()),
                    Json::Number(n) if n.is_i64() => int_value(n.as_i64().unwrap()),
                    Json::Number(n) => AnyValue { value: Some(Value::DoubleValue(n.as_f64().unwrap())) },
                    Json::Bool(b) => AnyValue { value: Some(Value::BoolValue(*b)) },
                    other => panic!("{other}"),
                };
                key_value(*k, value)
            })
            .collect()
    }

    fn span_of(kind: SpanKind, status: i32, pairs: &[(&str, Json)]) -> Span {
        Span {
            trace_id: TRACE.to_vec(),
            span_id: SPAN.to_vec(),
            parent_span_id: PARENT.to_vec(),
            name: "op".into(),
            kind: kind as i32,
            start_time_unix_nano: 1_767_268_800_000_000_000,
            end_time_unix_nano: 1_767_268_801_500_000_000,
            attributes: attrs(pairs),
            status: Some(Status { code: status, message: String::new() }),
            ..Default::default()
        }
    }

    /// The span's own envelope as JSON (with a placeholder key).
    fn envelope(span: &Span) -> Json {
        let items = items(span, &Tags::new(), 100.0);
        serde_json::from_str(&super::super::envelopes::to_json(&items[0], "KEY")).unwrap()
    }

    const OK: i32 = 0;
    const ERROR: i32 = 2;

    /// One row: span kind, status, attributes → envelope name, and the
    /// baseData members (and tags) the row pins down.
    struct Row {
        kind: SpanKind,
        status: i32,
        attrs: Vec<(&'static str, Json)>,
        name: &'static str,
        base: Json,
        tags: Json,
    }

    fn rows() -> Vec<Row> {
        use SpanKind::*;
        vec![
            // Server and consumer spans are Requests.
            Row {
                kind: Server,
                status: OK,
                attrs: vec![],
                name: REQUEST,
                base: json!({"name": "op", "responseCode": "0", "success": true, "id": "00f067aa0ba902b7"}),
                tags: json!({"ai.operation.name": "op"}),
            },
            Row {
                kind: Consumer,
                status: ERROR,
                attrs: vec![],
                name: REQUEST,
                base: json!({"success": false}),
                tags: json!({}),
            },
            // HTTP server: the route names the operation; 4xx fails.
            Row {
                kind: Server,
                status: OK,
                attrs: vec![
                    ("http.request.method", json!("GET")),
                    ("http.route", json!("/users/{id}")),
                    ("url.scheme", json!("https")),
                    ("server.address", json!("api.example")),
                    ("server.port", json!(443)),
                    ("url.path", json!("/users/7")),
                    ("url.query", json!("x=1")),
                    ("http.response.status_code", json!(404)),
                    ("client.address", json!("10.0.0.9")),
                    ("user_agent.original", json!("curl/8")),
                ],
                name: REQUEST,
                base: json!({"name": "GET /users/{id}", "url": "https://api.example/users/7?x=1", "responseCode": "404", "success": false}),
                tags: json!({"ai.operation.name": "GET /users/{id}", "ai.location.ip": "10.0.0.9", "ai.user.userAgent": "curl/8"}),
            },
            // Without a route, the URL's path; old attribute names; 5xx fails only through the status.
            Row {
                kind: Server,
                status: OK,
                attrs: vec![
                    ("http.method", json!("POST")),
                    ("http.url", json!("http://h:8080/a/b?q")),
                    ("http.status_code", json!(503)),
                ],
                name: REQUEST,
                base: json!({"name": "POST /a/b", "url": "http://h:8080/a/b?q", "responseCode": "503", "success": true}),
                tags: json!({"ai.operation.name": "POST /a/b"}),
            },
            Row {
                kind: Server,
                status: OK,
                attrs: vec![("http.method", json!("GET")), ("http.url", json!("https://h"))],
                name: REQUEST,
                base: json!({"name": "GET /", "responseCode": "0", "success": false}),
                tags: json!({}),
            },
            // Messaging consumer: the source is peer/destination.
            Row {
                kind: Consumer,
                status: OK,
                attrs: vec![
                    ("messaging.system", json!("servicebus")),
                    ("server.address", json!("ns.servicebus.windows.net")),
                    ("messaging.destination.name", json!("orders")),
                ],
                name: REQUEST,
                base: json!({"source": "ns.servicebus.windows.net/orders", "name": "op"}),
                tags: json!({}),
            },
            // Client spans are RemoteDependencies; HTTP ones are typed HTTP.
            Row {
                kind: Client,
                status: OK,
                attrs: vec![
                    ("http.request.method", json!("POST")),
                    ("url.full", json!("https://api.openai.com:443/v1/chat/completions?x=1")),
                    ("http.response.status_code", json!(500)),
                ],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "HTTP", "name": "POST /v1/chat/completions", "data": "https://api.openai.com:443/v1/chat/completions?x=1", "target": "api.openai.com", "resultCode": "500", "success": true}),
                tags: json!({"ai.operation.name": "POST /v1/chat/completions"}),
            },
            Row {
                kind: Client,
                status: ERROR,
                attrs: vec![
                    ("http.method", json!("GET")),
                    ("http.url", json!("http://svc:8080/x")),
                    ("server.address", json!("svc")),
                    ("server.port", json!(8080)),
                ],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "HTTP", "target": "svc:8080", "resultCode": "0", "success": false}),
                tags: json!({}),
            },
            // Databases: the system's name, or SQL for the other SQL databases.
            Row {
                kind: Client,
                status: OK,
                attrs: vec![
                    ("db.system.name", json!("postgresql")),
                    ("db.query.text", json!("SELECT 1")),
                    ("server.address", json!("db")),
                    ("server.port", json!(5432)),
                ],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "postgresql", "data": "SELECT 1", "target": "db:5432", "name": "op"}),
                tags: json!({}),
            },
            Row {
                kind: Client,
                status: OK,
                attrs: vec![
                    ("db.system", json!("mssql")),
                    ("db.statement", json!("SELECT 2")),
                    ("db.name", json!("shop")),
                ],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "SQL", "data": "SELECT 2", "target": "shop"}),
                tags: json!({}),
            },
            Row {
                kind: Client,
                status: OK,
                attrs: vec![("db.system", json!("redis")), ("db.operation", json!("GET"))],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "redis", "data": "GET"}),
                tags: json!({}),
            },
            Row {
                kind: Client,
                status: OK,
                attrs: vec![("db.system.name", json!("cassandra"))],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "cassandra"}),
                tags: json!({}),
            },
            Row {
                kind: Client,
                status: OK,
                attrs: vec![("db.system", json!("mysql"))],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "mysql"}),
                tags: json!({}),
            },
            Row {
                kind: Client,
                status: OK,
                attrs: vec![("db.system", json!("mongodb"))],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "mongodb"}),
                tags: json!({}),
            },
            // Producers send queue messages.
            Row {
                kind: Producer,
                status: OK,
                attrs: vec![("messaging.system", json!("kafka")), ("messaging.destination.name", json!("t"))],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "Queue Message", "target": "t"}),
                tags: json!({}),
            },
            Row {
                kind: Producer,
                status: OK,
                attrs: vec![("az.namespace", json!("Microsoft.EventHub"))],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "Queue Message | Microsoft.EventHub"}),
                tags: json!({}),
            },
            // Internal spans are in-process, whatever they carry.
            Row {
                kind: Internal,
                status: OK,
                attrs: vec![("gen_ai.operation.name", json!("execute_tool")), ("http.method", json!("GET"))],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "InProc", "name": "op", "resultCode": "0"}),
                tags: json!({"ai.operation.name": "op"}),
            },
            Row {
                kind: Unspecified,
                status: OK,
                attrs: vec![],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": null}),
                tags: json!({}),
            },
            // Azure SDK clients name their service.
            Row {
                kind: Client,
                status: OK,
                attrs: vec![("az.namespace", json!("Microsoft.Storage")), ("http.method", json!("GET"))],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "Microsoft.Storage"}),
                tags: json!({}),
            },
            // Messaging and RPC clients.
            Row {
                kind: Client,
                status: OK,
                attrs: vec![
                    ("messaging.system", json!("rabbitmq")),
                    ("net.peer.name", json!("mq")),
                    ("messaging.destination", json!("q")),
                ],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "rabbitmq", "target": "mq/q"}),
                tags: json!({}),
            },
            Row {
                kind: Client,
                status: OK,
                attrs: vec![
                    ("rpc.system", json!("grpc")),
                    ("server.address", json!("svc")),
                    ("server.port", json!(50051)),
                ],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "grpc", "target": "svc:50051"}),
                tags: json!({}),
            },
            // GenAI clients, by the current attribute name and the deprecated one.
            Row {
                kind: Client,
                status: OK,
                attrs: vec![
                    ("gen_ai.provider.name", json!("openai")),
                    ("gen_ai.request.model", json!("gpt-4o")),
                    ("server.address", json!("api.openai.com")),
                ],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "GenAI | openai", "target": "api.openai.com", "properties": {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}}),
                tags: json!({}),
            },
            Row {
                kind: Client,
                status: OK,
                attrs: vec![("gen_ai.system", json!("anthropic"))],
                name: REMOTE_DEPENDENCY,
                base: json!({"type": "GenAI | anthropic"}),
                tags: json!({}),
            },
            // Users and sessions.
            Row {
                kind: Client,
                status: OK,
                attrs: vec![
                    ("enduser.id", json!("alice")),
                    ("enduser.pseudo.id", json!("p-1")),
                    ("session.id", json!("s-1")),
                    ("custom", json!(3)),
                ],
                name: REMOTE_DEPENDENCY,
                base: json!({"properties": {"custom": "3", "session.id": "s-1"}}),
                tags: json!({"ai.user.authUserId": "alice", "ai.user.id": "p-1", "ai.session.id": "s-1"}),
            },
        ]
    }

    #[test]
    fn span_rows() {
        for (i, row) in rows().into_iter().enumerate() {
            let e = envelope(&span_of(row.kind, row.status, &row.attrs));
            assert_eq!(e["name"], row.name, "row {i}");
            let base = &e["data"]["baseData"];
            for (k, v) in row.base.as_object().unwrap() {
                assert_eq!(&base[k], v, "row {i} baseData.{k}: {e}");
            }
            for (k, v) in row.tags.as_object().unwrap() {
                assert_eq!(&e["tags"][k], v, "row {i} tags.{k}: {e}");
            }
        }
    }

    #[test]
    fn common_fields() {
        let mut s = span_of(SpanKind::Server, OK, &[("http.method", json!("GET")), ("http.status_code", json!(200))]);
        s.attributes.extend(attrs(&[("url.full", json!("https://h/p")), ("k", json!(true))]));
        let e = envelope(&s);
        assert_eq!(
            e,
            json!({
                "ver": 1,
                "name": REQUEST,
                "time": "2026-01-01T12:00:00.000000Z",
                "sampleRate": 100.0,
                "iKey": "KEY",
                "tags": {
                    "ai.operation.id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "ai.operation.parentId": "1111111111111111",
                    "ai.operation.name": "GET /p"
                },
                "data": {
                    "baseType": "RequestData",
                    "baseData": {
                        "ver": 2,
                        "id": "00f067aa0ba902b7",
                        "name": "GET /p",
                        "duration": "0.00:00:01.500",
                        "success": true,
                        "responseCode": "200",
                        "url": "https://h/p",
                        "properties": {"k": "true"}
                    }
                }
            })
        );
        // A root span has no parent tag.
        s.parent_span_id = vec![];
        assert!(envelope(&s)["tags"].get("ai.operation.parentId").is_none());
    }

    #[test]
    fn sample_rate_from_the_span_else_the_default() {
        let s = span_of(SpanKind::Internal, OK, &[("_MS.sampleRate", json!(25.0))]);
        let items = items(&s, &Tags::new(), 100.0);
        assert_eq!(items[0].sample_rate, 25.0);
        let p = match &items[0].data {
            BaseData::RemoteDependency(d) => &d.properties,
            _ => unreachable!(),
        };
        assert!(!p.contains_key("_MS.sampleRate"));
        let s = span_of(SpanKind::Internal, OK, &[]);
        assert_eq!(super::items(&s, &Tags::new(), 10.0)[0].sample_rate, 10.0);
    }

    #[test]
    fn truncation_limits() {
        let long = "x".repeat(10_000);
        let mut s = span_of(
            SpanKind::Client,
            OK,
            &[
                ("db.system", json!("mysql")),
                ("db.statement", json!(long.clone())),
                ("server.address", json!(long.clone())),
            ],
        );
        s.name = long.clone();
        let e = envelope(&s);
        let b = &e["data"]["baseData"];
        assert_eq!(b["name"].as_str().unwrap().len(), MAX_NAME);
        assert_eq!(b["data"].as_str().unwrap().len(), MAX_DATA);
        assert_eq!(b["target"].as_str().unwrap().len(), MAX_NAME);
        let s = span_of(
            SpanKind::Server,
            OK,
            &[("http.method", json!("GET")), ("url.full", json!(format!("https://h/{long}")))],
        );
        let e = envelope(&s);
        assert_eq!(e["data"]["baseData"]["url"].as_str().unwrap().len(), MAX_URL);
        assert_eq!(e["data"]["baseData"]["name"].as_str().unwrap().len(), MAX_NAME);
    }

    #[test]
    fn links_fit_in_one_property() {
        let mut s = span_of(SpanKind::Internal, OK, &[]);
        let link = |n: u8| span::Link { trace_id: vec![n; 16], span_id: vec![n; 8], ..Default::default() };
        s.links = vec![link(1), link(2)];
        let e = envelope(&s);
        let links: Json =
            serde_json::from_str(e["data"]["baseData"]["properties"][LINKS_KEY].as_str().unwrap()).unwrap();
        assert_eq!(
            links,
            json!([
                {"operation_Id": "01010101010101010101010101010101", "id": "0101010101010101"},
                {"operation_Id": "02020202020202020202020202020202", "id": "0202020202020202"}
            ])
        );
        s.links = (0..200).map(|i| link(i as u8)).collect();
        let e = envelope(&s);
        let text = e["data"]["baseData"]["properties"][LINKS_KEY].as_str().unwrap().to_owned();
        let links: Vec<Json> = serde_json::from_str(&text).unwrap();
        assert!(text.len() <= MAX_PROPERTY_VALUE && (100..=110).contains(&links.len()), "{}", links.len());
        s.links.clear();
        assert!(envelope(&s)["data"]["baseData"]["properties"].get(LINKS_KEY).is_none());
    }

    #[test]
    fn events_become_exceptions_and_messages() {
        let mut s = span_of(SpanKind::Server, OK, &[]);
        s.events = vec![
            span::Event {
                time_unix_nano: 1_767_268_800_250_000_000,
                name: "exception".into(),
                attributes: attrs(&[
                    ("exception.type", json!("ValueError")),
                    ("exception.message", json!("boom")),
                    ("exception.stacktrace", json!("at f")),
                    ("exception.escaped", json!(true)),
                    ("extra", json!("x")),
                ]),
                ..Default::default()
            },
            span::Event {
                time_unix_nano: 1_767_268_800_500_000_000,
                name: "cache miss".into(),
                attributes: attrs(&[("key", json!("k"))]),
                ..Default::default()
            },
            span::Event { name: "exception".into(), ..Default::default() },
        ];
        let items = items(&s, &Tags::new(), 50.0);
        assert_eq!(items.len(), 4);
        let json: Vec<Json> =
            items.iter().map(|i| serde_json::from_str(&super::super::envelopes::to_json(i, "K")).unwrap()).collect();
        let tags =
            json!({"ai.operation.id": "4bf92f3577b34da6a3ce929d0e0e4736", "ai.operation.parentId": "00f067aa0ba902b7"});
        assert_eq!(
            json[1],
            json!({
                "ver": 1, "name": EXCEPTION, "time": "2026-01-01T12:00:00.250000Z", "sampleRate": 50.0, "iKey": "K",
                "tags": tags,
                "data": {"baseType": "ExceptionData", "baseData": {
                    "ver": 2,
                    "exceptions": [{"typeName": "ValueError", "message": "boom", "hasFullStack": true, "stack": "at f"}],
                    "properties": {"extra": "x"}
                }}
            })
        );
        assert_eq!(
            json[2],
            json!({
                "ver": 1, "name": MESSAGE, "time": "2026-01-01T12:00:00.500000Z", "sampleRate": 50.0, "iKey": "K",
                "tags": tags,
                "data": {"baseType": "MessageData", "baseData": {"ver": 2, "message": "cache miss", "properties": {"key": "k"}}}
            })
        );
        assert_eq!(
            json[3]["data"]["baseData"]["exceptions"],
            json!([{"typeName": "Exception", "message": "Exception", "hasFullStack": false}])
        );
    }

    #[test]
    fn db_types() {
        for (system, expected) in [
            ("mysql", "mysql"),
            ("postgresql", "postgresql"),
            ("mongodb", "mongodb"),
            ("redis", "redis"),
            ("mssql", "SQL"),
            ("microsoft.sql_server", "SQL"),
            ("oracle.db", "SQL"),
            ("sqlite", "SQL"),
            ("other_sql", "SQL"),
            ("cosmosdb", "cosmosdb"),
        ] {
            assert_eq!(db_type(system), expected, "{system}");
        }
    }

    #[test]
    fn urls_and_targets() {
        assert_eq!(url_path("https://h:1/a/b?c#d"), "/a/b");
        assert_eq!(url_path("https://h"), "");
        assert_eq!(url_path("/rel/x?y"), "/rel/x");
        let a = attrs(&[]);
        assert_eq!(host_port(&a, Some("https://u:p@h:443/x")).as_deref(), Some("h"));
        assert_eq!(host_port(&a, Some("http://h:8080")).as_deref(), Some("h:8080"));
        assert_eq!(host_port(&a, None), None);
        let a = attrs(&[("peer.service", json!("billing")), ("server.port", json!(443))]);
        assert_eq!(host_port(&a, Some("https://h/x")).as_deref(), Some("billing"));
        let a = attrs(&[
            ("url.scheme", json!("http")),
            ("server.address", json!("h")),
            ("server.port", json!(80)),
            ("http.target", json!("/t")),
        ]);
        assert_eq!(request_url(&a).as_deref(), Some("http://h/t"));
    }
}
