//! Where each signal goes and how each destination is reached: the exporter
//! lists and `backend`, the presets, the OTEL_EXPORTER_OTLP_* rules for a
//! plain OTLP receiver, protocols and request size caps, and the rule that
//! credentials never travel over plain http to another machine.

use std::collections::{BTreeMap, HashMap};

use crate::azure::AzureRoute;
use crate::config::{Backend, Options, Signal, Temporality};
use crate::credentials::{is_loopback, redact_url, url_host};
use crate::env::{parse_key_values, Env};
use crate::presets::{self, Inputs, Preset, Target, DEFAULT_MAX_REQUEST_BYTES};
use crate::secret::Secret;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// One place a signal is sent.
#[derive(Clone, Debug)]
pub enum Route {
    Otlp(OtlpRoute),
    /// Human-readable text on standard output.
    Console,
    /// One JSON object per log record on standard output.
    JsonLines,
    /// Application Insights envelopes to the Track API (`crate::azure`).
    Azure(AzureRoute),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Http,
    /// A unary gRPC call; `url` is the target, "http(s)://host:port".
    Grpc,
}

#[derive(Clone, Debug)]
pub struct OtlpRoute {
    /// The backend's name ("otlp", "honeycomb", …), for messages.
    pub destination: &'static str,
    pub url: String,
    pub transport: Transport,
    pub headers: Vec<(String, Secret)>,
    pub encoding: Encoding,
    pub gzip: bool,
    pub timeout_ms: u32,
    /// Requests whose uncompressed body is larger are split before sending.
    pub max_request_bytes: usize,
}

impl OtlpRoute {
    pub fn protocol(&self) -> &'static str {
        match (self.transport, self.encoding) {
            (Transport::Grpc, _) => "grpc",
            (Transport::Http, Encoding::Json) => "http/json",
            (Transport::Http, Encoding::Protobuf) => "http/protobuf",
        }
    }
}

/// Every signal's routes, and what the metric backends want.
pub struct Routes {
    pub traces: Vec<Route>,
    pub metrics: Vec<Route>,
    pub logs: Vec<Route>,
    /// The metrics exporters include a Prometheus scrape endpoint.
    pub prometheus_pull: bool,
    /// The temporality the metric backends prefer, if any does.
    pub temporality: Option<Temporality>,
    /// A metric backend rejects cumulative metrics.
    pub delta_only: Option<&'static str>,
    /// A signal goes to Azure Monitor: JSON-lines logs carry its correlation
    /// fields (`operation_Id`, `operation_ParentId`).
    pub azure_correlation: bool,
}

pub struct RouteInputs<'a> {
    pub opts: &'a Options,
    /// Preset settings (credentials, datasets, regions) by option name.
    pub presets: &'a BTreeMap<String, String>,
    /// The host can make gRPC calls.
    pub host_grpc: bool,
    pub service_name: &'a str,
}

/// One name in an exporter list, and where the list came from.
struct Listed {
    name: String,
    /// "the option backend", "OTEL_TRACES_EXPORTER", …
    origin: String,
    /// The list is one of the specification's exporter lists, where
    /// "prometheus" means a scrape endpoint rather than the preset.
    spec: bool,
    /// An error in it fails configuration; otherwise it is a warning.
    explicit: bool,
}

const GRPC_SERVICES: [&str; 3] = [
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
];

/// The gRPC method that carries `signal`.
pub fn grpc_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => GRPC_SERVICES[0],
        Signal::Metrics => GRPC_SERVICES[1],
        Signal::Logs => GRPC_SERVICES[2],
    }
}

fn exporter_env(signal: Signal) -> String {
    format!("OTEL_{}_EXPORTER", signal.env_name())
}

/// The exporter names of one signal, highest-precedence source first:
/// `<signal>_exporter`, `backend`, POLYTEL_BACKEND, OTEL_<SIGNAL>_EXPORTER, "otlp".
fn listed(env: &Env, opts: &Options, signal: Signal) -> Result<Vec<Listed>, String> {
    let explicit = match signal {
        Signal::Traces => &opts.traces_exporter,
        Signal::Metrics => &opts.metrics_exporter,
        Signal::Logs => &opts.logs_exporter,
    };
    let (list, origin, spec, explicit) = match (explicit, &opts.backend) {
        (Some(list), _) => (list.clone(), format!("the option {}_exporter", signal.path()), true, true),
        (None, Some(Backend::All(list))) => (list.clone(), "the option backend".to_owned(), false, true),
        (None, Some(Backend::PerSignal(map))) => {
            if let Some(bad) = map.keys().find(|k| !Signal::ALL.iter().any(|s| s.path() == k.as_str())) {
                return Err(format!(
                    "The option backend names the signal {bad:?}; use \"traces\", \"metrics\" and \"logs\" as its keys."
                ));
            }
            let list = map.get(signal.path()).cloned().unwrap_or_else(|| "none".to_owned());
            (list, "the option backend".to_owned(), false, true)
        }
        (None, None) => match (env.get("POLYTEL_BACKEND"), env.get(&exporter_env(signal))) {
            (Some(list), _) => (list.to_owned(), "POLYTEL_BACKEND".to_owned(), false, false),
            (None, Some(list)) => (list.to_owned(), exporter_env(signal), true, false),
            (None, None) => ("otlp".to_owned(), String::new(), true, false),
        },
    };
    Ok(list
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .map(|name| Listed { name, origin: origin.clone(), spec, explicit })
        .collect())
}

/// What one listed name means for a signal.
enum Kind {
    None,
    Console,
    JsonLines,
    PrometheusPull,
    Otlp(&'static str),
}

fn kind(l: &Listed, signal: Signal) -> Result<Kind, String> {
    Ok(match l.name.as_str() {
        "none" => Kind::None,
        "console" | "logging" => Kind::Console,
        "jsonl" if signal == Signal::Logs => Kind::JsonLines,
        "prometheus" if l.spec && signal == Signal::Metrics => Kind::PrometheusPull,
        name => match presets::NAMES.iter().find(|n| **n == name).filter(|_| !(l.spec && name == "prometheus")) {
            Some(n) => Kind::Otlp(n),
            None => {
                let extra = match signal {
                    Signal::Traces => "",
                    Signal::Metrics => "\"prometheus\" (a scrape endpoint), ",
                    Signal::Logs => "\"jsonl\", ",
                };
                let backends = presets::NAMES.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
                return Err(format!(
                    "{} names {name:?}, which is not an exporter of {}; use \"console\", \"none\", {extra}or a backend: {backends}.",
                    capitalise(&l.origin),
                    signal.path(),
                ));
            }
        },
    })
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

pub fn build(env: &mut Env, inputs: RouteInputs) -> Result<Routes, String> {
    let opts = inputs.opts;
    let mut per_signal: Vec<(Signal, Vec<(Listed, Kind)>)> = Vec::new();
    for signal in Signal::ALL {
        let mut kinds = Vec::new();
        for l in listed(env, opts, signal)? {
            match kind(&l, signal) {
                Ok(k) => kinds.push((l, k)),
                Err(e) if l.explicit => return Err(e),
                Err(_) => env.warn(format!("{} names {:?}, which is not supported; ignoring it.", l.origin, l.name)),
            }
        }
        per_signal.push((signal, kinds));
    }

    let mut destinations: Vec<&'static str> = per_signal
        .iter()
        .flat_map(|(_, kinds)| kinds.iter())
        .filter_map(|(_, k)| if let Kind::Otlp(n) = k { Some(*n) } else { None })
        .collect();
    destinations.sort_unstable();
    destinations.dedup();
    let endpoints = opts.endpoints.clone().unwrap_or_default();
    if let Some(unknown) = endpoints.keys().find(|k| !destinations.contains(&k.as_str())) {
        return Err(format!(
            "The option endpoints names {unknown:?}, which no signal is sent to; its keys are backend names in use ({}).",
            destinations.join(", ")
        ));
    }
    let single = destinations.len() == 1;
    if opts.endpoint.is_some() && !single && destinations.iter().any(|d| !endpoints.contains_key(*d)) {
        return Err(format!(
            "The option endpoint is ambiguous with several backends ({}); give each its own in the option endpoints.",
            destinations.join(", ")
        ));
    }
    let endpoint_of = |name: &str| endpoints.get(name).cloned().or_else(|| opts.endpoint.clone().filter(|_| single));

    let mut resolved: HashMap<&'static str, Preset> = HashMap::new();
    for name in destinations.iter().copied().filter(|n| *n != "otlp") {
        let endpoint = endpoint_of(name);
        if let Some(e) = &endpoint {
            check_url(e).map_err(|why| format!("The endpoint {:?} given for {name} {why}.", redact_url(e)))?;
        }
        let preset = presets::resolve(
            name,
            &mut Inputs { settings: inputs.presets, env, endpoint, single, service_name: inputs.service_name },
        )?;
        resolved.insert(name, preset);
    }

    let allow_insecure = opts.allow_insecure.unwrap_or_else(|| env.bool("POLYTEL_ALLOW_INSECURE"));
    let mut out = Routes {
        traces: Vec::new(),
        metrics: Vec::new(),
        logs: Vec::new(),
        prometheus_pull: false,
        temporality: None,
        delta_only: None,
        azure_correlation: resolved.values().any(|p| p.azure.is_some()),
    };
    for (signal, kinds) in per_signal {
        let mut routes = Vec::new();
        for (_, k) in kinds {
            match k {
                Kind::None => {}
                Kind::Console => routes.push(Route::Console),
                Kind::JsonLines => routes.push(Route::JsonLines),
                Kind::PrometheusPull => out.prometheus_pull = true,
                Kind::Otlp(name) => {
                    let (target, user_headers) = match resolved.get(name) {
                        Some(preset) => match preset.target(signal) {
                            Ok(t) => (t.clone(), opts.headers.clone().unwrap_or_default().into_iter().collect()),
                            Err(notice) => {
                                env.warn(notice.clone());
                                continue;
                            }
                        },
                        None => otlp_target(env, opts, signal, endpoint_of("otlp"))?,
                    };
                    if let Some(cs) = resolved.get(name).and_then(|p| p.azure.as_ref()) {
                        let live = resolved[name].azure_live_metrics;
                        let route = azure_route(env, opts, signal, target, cs, live, user_headers)?;
                        if !allow_insecure {
                            check_key_over_http(&route)?;
                        }
                        routes.push(Route::Azure(route));
                        if signal == Signal::Metrics {
                            prefer_temporality(env, &mut out, &resolved[name]);
                        }
                        continue;
                    }
                    let route = otlp_route(env, opts, signal, name, target, user_headers, inputs.host_grpc)?;
                    if !allow_insecure {
                        check_credentials_over_http(&route)?;
                    }
                    routes.push(Route::Otlp(route));
                    if signal == Signal::Metrics {
                        if let Some(preset) = resolved.get(name) {
                            prefer_temporality(env, &mut out, preset);
                        }
                    }
                }
            }
        }
        *match signal {
            Signal::Traces => &mut out.traces,
            Signal::Metrics => &mut out.metrics,
            Signal::Logs => &mut out.logs,
        } = routes;
    }
    Ok(out)
}

fn prefer_temporality(env: &mut Env, out: &mut Routes, preset: &Preset) {
    if preset.delta_only {
        out.delta_only = Some(preset.name);
    }
    match (out.temporality, preset.temporality) {
        (None, Some(t)) => out.temporality = Some(t),
        (Some(a), Some(b)) if a != b => env.warn(format!(
            "The metric backends prefer different temporalities; {} gets {a:?} like the others, and may reject it.",
            preset.name
        )),
        _ => {}
    }
}

/// A plain OTLP receiver's target for `signal`, from options and the
/// OTEL_EXPORTER_OTLP_* rules, with the user's headers.
fn otlp_target(
    env: &mut Env,
    opts: &Options,
    signal: Signal,
    endpoint: Option<String>,
) -> Result<(Target, Vec<(String, String)>), String> {
    let per_signal = format!("OTEL_EXPORTER_OTLP_{}_ENDPOINT", signal.env_name());
    let generic = "OTEL_EXPORTER_OTLP_ENDPOINT";
    // HTTP: a base gets /v1/<signal>; a per-signal URL is used as it is.
    // gRPC: every form names the target as it is.
    let (url, grpc) = if let Some(base) = &endpoint {
        check_url(base).map_err(|why| format!("The option endpoint {:?} {why}.", redact_url(base)))?;
        (signal_url(base, signal), base.clone())
    } else if let Some(v) = env.get(&per_signal) {
        check_url(v).map_err(|why| format!("{per_signal} {:?} {why}.", redact_url(v)))?;
        (if has_path(v) { v.to_owned() } else { format!("{v}/") }, v.to_owned())
    } else if let Some(v) = env.get(generic) {
        check_url(v).map_err(|why| format!("{generic} {:?} {why}.", redact_url(v)))?;
        (signal_url(v, signal), v.to_owned())
    } else {
        (format!("http://localhost:4318/v1/{}", signal.path()), "http://localhost:4317".to_owned())
    };
    let headers = match &opts.headers {
        Some(h) => h.clone().into_iter().collect(),
        None => {
            let names =
                [format!("OTEL_EXPORTER_OTLP_{}_HEADERS", signal.env_name()), "OTEL_EXPORTER_OTLP_HEADERS".into()];
            match names.iter().find_map(|n| env.get(n).map(|v| (n.clone(), v.to_owned()))) {
                None => Vec::new(),
                Some((name, v)) => parse_key_values(&v).unwrap_or_else(|| {
                    env.warn(format!("{name} is not a list of key=value pairs; no headers are sent from it."));
                    Vec::new()
                }),
            }
        }
    };
    let target =
        Target { url, grpc: Some(grpc), headers: Vec::new(), json: true, max_request_bytes: DEFAULT_MAX_REQUEST_BYTES };
    Ok((target, headers))
}

const PROTOCOLS: &[&str] = &["http/protobuf", "http/json", "grpc"];

/// Turns a target into a route: protocol, compression, timeout and headers.
fn otlp_route(
    env: &mut Env,
    opts: &Options,
    signal: Signal,
    destination: &'static str,
    target: Target,
    user_headers: Vec<(String, String)>,
    host_grpc: bool,
) -> Result<OtlpRoute, String> {
    let per_signal = |suffix: &str| format!("OTEL_EXPORTER_OTLP_{}_{suffix}", signal.env_name());
    let generic = |suffix: &str| format!("OTEL_EXPORTER_OTLP_{suffix}");
    let names = |suffix: &str| [per_signal(suffix), generic(suffix)];

    let (protocol, from_option) = match &opts.protocol {
        Some(p) => {
            let p = p.to_ascii_lowercase();
            if !PROTOCOLS.contains(&p.as_str()) {
                return Err(format!(
                    "The option protocol {p:?} is not known; use \"http/protobuf\", \"http/json\" or \"grpc\"."
                ));
            }
            (p, true)
        }
        None => {
            let [a, b] = names("PROTOCOL");
            (env.choice(&[a.as_str(), b.as_str()], PROTOCOLS).unwrap_or_else(|| "http/protobuf".into()), false)
        }
    };
    let (url, transport, encoding) = match protocol.as_str() {
        "grpc" if !host_grpc => {
            return Err("OTLP over gRPC is not available from this host; set the protocol to http/protobuf \
                        (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)."
                .into())
        }
        "grpc" => match &target.grpc {
            Some(g) => {
                check_url(g).map_err(|why| format!("The gRPC target {:?} {why}.", redact_url(g)))?;
                (g.clone(), Transport::Grpc, Encoding::Protobuf)
            }
            None => {
                return Err(format!("{destination} does not take OTLP over gRPC; set the protocol to http/protobuf."))
            }
        },
        "http/json" if !target.json => {
            let why = format!("{destination} takes only protobuf for {}", signal.path());
            if from_option {
                return Err(format!("{why}; set the protocol to http/protobuf."));
            }
            env.warn(format!("{why}, so it is sent as http/protobuf."));
            (target.url.clone(), Transport::Http, Encoding::Protobuf)
        }
        "http/json" => (target.url.clone(), Transport::Http, Encoding::Json),
        _ => (target.url.clone(), Transport::Http, Encoding::Protobuf),
    };

    let gzip = match &opts.compression {
        Some(c) => match c.to_ascii_lowercase().as_str() {
            "gzip" => true,
            "none" => false,
            _ => return Err(format!("The option compression {c:?} is not known; use \"gzip\" or \"none\".")),
        },
        None => {
            let [a, b] = names("COMPRESSION");
            env.choice(&[a.as_str(), b.as_str()], &["gzip", "none"]).as_deref() == Some("gzip")
        }
    };

    let timeout_ms = match opts.timeout_ms {
        Some(t) => t,
        None => {
            let [a, b] = names("TIMEOUT");
            env.number(&[a.as_str(), b.as_str()]).map_or(10_000, |t| t.min(u32::MAX as u64) as u32)
        }
    };
    let batch_timeout = batch_timeout(env, opts, signal);
    let mut headers = target.headers;
    add_user_headers(&mut headers, user_headers)?;
    if transport == Transport::Grpc {
        // HTTP/2 header names are lower-case.
        headers.iter_mut().for_each(|(n, _)| n.make_ascii_lowercase());
    }

    Ok(OtlpRoute {
        destination,
        url,
        transport,
        headers,
        encoding,
        gzip,
        timeout_ms: effective_timeout(timeout_ms, batch_timeout),
        max_request_bytes: target.max_request_bytes,
    })
}

/// The batch processor's (or metric reader's) export timeout, which bounds
/// each export too (0: none).
fn batch_timeout(env: &mut Env, opts: &Options, signal: Signal) -> u64 {
    let (batch_option, batch_env) = match signal {
        Signal::Traces => (opts.export_timeout_ms, "OTEL_BSP_EXPORT_TIMEOUT"),
        Signal::Metrics => (opts.metric_export_timeout_ms, "OTEL_METRIC_EXPORT_TIMEOUT"),
        Signal::Logs => (opts.log_export_timeout_ms, "OTEL_BLRP_EXPORT_TIMEOUT"),
    };
    batch_option.or_else(|| env.number(&[batch_env])).unwrap_or(30_000)
}

/// Adds the user's headers; each replaces the backend's of the same name.
fn add_user_headers(headers: &mut Vec<(String, Secret)>, user_headers: Vec<(String, String)>) -> Result<(), String> {
    for (name, value) in user_headers {
        if !is_header_name(&name) {
            return Err(format!("The header name {name:?} is not a valid HTTP header name."));
        }
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        let value = if looks_like_credential(&name) { Secret::new(value) } else { Secret::opaque(value) };
        headers.push((name, value));
    }
    Ok(())
}

/// An Application Insights route: the Track URL the preset resolved, the
/// instrumentation key, the user's headers, and a timeout (the option
/// timeout_ms, else 10 s, bounded by the batch export timeout). The OTLP
/// protocol and compression settings do not apply: the Track API takes an
/// uncompressed JSON array (azure-monitor.md §4(b) "Request").
fn azure_route(
    env: &mut Env,
    opts: &Options,
    signal: Signal,
    target: Target,
    cs: &crate::azure::connection_string::ConnectionString,
    live_metrics: bool,
    user_headers: Vec<(String, String)>,
) -> Result<AzureRoute, String> {
    if opts.protocol.as_deref().is_some_and(|p| !p.eq_ignore_ascii_case("http/protobuf")) {
        env.warn(
            "azure-monitor takes Application Insights' own JSON over HTTPS; the option protocol applies only to OTLP backends."
                .into(),
        );
    }
    let mut headers = Vec::new();
    add_user_headers(&mut headers, user_headers)?;
    let batch_timeout = batch_timeout(env, opts, signal);
    Ok(AzureRoute {
        url: target.url,
        live_endpoint: cs.live_endpoint.clone(),
        live_metrics,
        instrumentation_key: cs.instrumentation_key.clone(),
        headers,
        timeout_ms: effective_timeout(opts.timeout_ms.unwrap_or(10_000), batch_timeout),
    })
}

/// The instrumentation key travels in every envelope, and in every Live
/// Metrics request's URL: like any credential, it goes over plain http only
/// to this machine, unless the user allows it.
fn check_key_over_http(route: &AzureRoute) -> Result<(), String> {
    let live = route.live_metrics.then_some(route.live_endpoint.as_str());
    for url in std::iter::once(route.url.as_str()).chain(live) {
        let host = url_host(url).unwrap_or("");
        if !url.starts_with("http://") || is_loopback(host) {
            continue;
        }
        let what = if url == route.url {
            ""
        } else {
            " (Live Metrics' LiveEndpoint; set azure_monitor_live_metrics to \"false\" to turn it off)"
        };
        return Err(format!(
            "Refusing to send the Application Insights instrumentation key to {host}{what} over plain http; use an https endpoint, or set the option allow_insecure (POLYTEL_ALLOW_INSECURE=true) if the network is trusted."
        ));
    }
    Ok(())
}

/// Header names that usually carry a credential.
fn looks_like_credential(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["auth", "key", "token", "secret", "password", "dsn", "cookie", "team"].iter().any(|w| n.contains(w))
}

/// Credentials go over plain http only to this machine, unless the user allows it.
fn check_credentials_over_http(route: &OtlpRoute) -> Result<(), String> {
    if !route.url.starts_with("http://") {
        return Ok(());
    }
    let host = url_host(&route.url).unwrap_or("");
    if is_loopback(host) {
        return Ok(());
    }
    let credentials: Vec<&str> =
        route.headers.iter().filter(|(_, v)| v.is_credential()).map(|(n, _)| n.as_str()).collect();
    if credentials.is_empty() {
        return Ok(());
    }
    Err(format!(
        "Refusing to send credentials ({}) to {} over plain http to {host}; use an https endpoint, or set the option allow_insecure (POLYTEL_ALLOW_INSECURE=true) if the network is trusted.",
        credentials.join(", "),
        route.destination
    ))
}

/// The shorter of two timeouts where 0 means "no limit"; no limit at all is
/// `u32::MAX` milliseconds (49 days), so hosts need no special case.
fn effective_timeout(exporter_ms: u32, batch_ms: u64) -> u32 {
    let as_limit = |ms: u64| if ms == 0 { u64::from(u32::MAX) } else { ms };
    as_limit(u64::from(exporter_ms)).min(as_limit(batch_ms)).min(u64::from(u32::MAX)) as u32
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks an http(s) URL with a host; says what is wrong otherwise.
pub fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("is not an http:// or https:// URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err("has no host");
    }
    if url.chars().any(char::is_whitespace) {
        return Err("contains white space");
    }
    Ok(())
}

fn has_path(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.contains('/')
}

/// The generic endpoint rule: append `v1/<signal>`, adding `/` if needed.
pub fn signal_url(base: &str, signal: Signal) -> String {
    let sep = if base.ends_with('/') { "" } else { "/" };
    format!("{base}{sep}v1/{}", signal.path())
}
