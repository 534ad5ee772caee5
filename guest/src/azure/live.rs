//! Live Metrics (QuickPulse, shared/reference/azure-monitor.md §4(e)): the
//! ping/post state machine, the counters a post reports, and the requests
//! themselves, as pure functions of the clock and the answers' headers.
//!
//! The pipeline (`crate::pipeline`) keeps one `Session` per pipeline whose
//! azure-monitor route has Live Metrics on (the default; the preset setting
//! `azure_monitor_live_metrics` = "false" turns it off). Its requests go to
//! hosts as ordinary HTTP exports, but outside the pending-export queue: they
//! carry no items, are never retried (the state machine's cadence is their
//! only backoff), are not counted in `exports`, and come after the poll's
//! exports so they never hold one up. Their URL carries the instrumentation
//! key (`ikey=`), so it is masked wherever a destination is printed
//! (`masked_url`), and warnings name only the endpoint's host.
//!
//! The rules (§4(e)):
//! - Unsubscribed, ping every 5 s (or the service's polling-interval hint);
//!   after 60 s without a successful request, every 60 s.
//! - `x-ms-qps-subscribed: true` on a ping's answer: post every 1 s; `false`
//!   on a post's answer: back to pinging.
//! - Posts failing for 20 s: back to pinging.
//! - `x-ms-qps-service-endpoint-redirect-v2`: later requests go to that host,
//!   if it is within Application Insights' domains (as for the Track API).

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, Span};

use crate::azure::delivery::redirect_url;
use crate::azure::format::{first_text, time};
use crate::azure::tags::{cloud_role, cloud_role_instance, sdk_version};
use crate::azure::AzureRoute;
use crate::secret::Secret;

const S: u64 = 1_000_000_000;
/// §4(e) "Cadence".
pub const PING_INTERVAL: u64 = 5 * S;
pub const SLOW_PING_INTERVAL: u64 = 60 * S;
pub const SLOW_AFTER: u64 = 60 * S;
pub const POST_INTERVAL: u64 = S;
/// §4(e) "Fallback".
pub const POST_FAILING_LIMIT: u64 = 20 * S;
/// A polling-interval hint outside this range is ignored.
const MAX_HINT: u64 = 10 * 60 * S;

pub const SUBSCRIBED: &str = "x-ms-qps-subscribed";
pub const POLLING_INTERVAL_HINT: &str = "x-ms-qps-service-polling-interval-hint";
pub const ENDPOINT_REDIRECT: &str = "x-ms-qps-service-endpoint-redirect-v2";
pub const CONFIGURATION_ETAG: &str = "x-ms-qps-configuration-etag";

/// Which request goes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Ping,
    Post,
}

/// How a Live Metrics request ended, as the host reported it.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer<'a> {
    /// An HTTP answer: its status and (lower-case) headers.
    Http { status: u16, headers: &'a [(String, String)] },
    /// No answer: refused, reset, timed out.
    Failed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Live {
    mode: Mode,
    /// When the next request is due (unix ns).
    next: u64,
    in_flight: bool,
    /// The last successful request, or when Live Metrics started.
    last_success: u64,
    /// When posts began failing, while they do.
    post_failing_since: Option<u64>,
    /// The service's polling-interval hint for pings.
    ping_hint: Option<u64>,
    /// The live endpoint's base URL (scheme and host), redirected or not.
    endpoint: String,
    /// The last configuration etag the service sent, echoed on requests.
    etag: String,
}

impl Live {
    /// Starts pinging `endpoint` (the connection string's LiveEndpoint) at `now`.
    pub fn new(endpoint: &str, now: u64) -> Live {
        Live {
            mode: Mode::Ping,
            next: now,
            in_flight: false,
            last_success: now,
            post_failing_since: None,
            ping_hint: None,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            etag: String::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// When the state machine next needs a poll; `u64::MAX` while a request is out.
    pub fn next_due(&self) -> u64 {
        if self.in_flight {
            u64::MAX
        } else {
            self.next
        }
    }

    /// The request to send now, if one is due; it is then in flight until `answered`.
    pub fn due(&mut self, now: u64) -> Option<Mode> {
        if self.in_flight || now < self.next {
            return None;
        }
        self.in_flight = true;
        Some(self.mode)
    }

    /// Moves on after the request in flight ended with `answer` at `now`.
    pub fn answered(&mut self, answer: &Answer, now: u64) {
        self.in_flight = false;
        let ok = match answer {
            Answer::Http { status, headers } => {
                let header =
                    |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
                if let Some(etag) = header(CONFIGURATION_ETAG) {
                    self.etag = etag.to_owned();
                }
                if let Some(to) = header(ENDPOINT_REDIRECT).filter(|v| !v.is_empty()) {
                    // Only the host changes, and only within Application Insights' domains.
                    if let Some(url) = redirect_url(&format!("{}/", self.endpoint), to) {
                        self.endpoint = url.trim_end_matches('/').to_owned();
                    }
                }
                if let Some(hint) = header(POLLING_INTERVAL_HINT) {
                    self.ping_hint = hint
                        .parse::<u64>()
                        .ok()
                        .map(|ms| ms.saturating_mul(1_000_000))
                        .filter(|ns| (1..=MAX_HINT).contains(ns));
                }
                let ok = (200..300).contains(status);
                if ok {
                    match (self.mode, header(SUBSCRIBED)) {
                        (Mode::Ping, Some(v)) if v.eq_ignore_ascii_case("true") => self.mode = Mode::Post,
                        (Mode::Post, Some(v)) if v.eq_ignore_ascii_case("false") => self.mode = Mode::Ping,
                        _ => {}
                    }
                }
                ok
            }
            Answer::Failed => false,
        };
        if ok {
            self.last_success = now;
            self.post_failing_since = None;
        } else if self.mode == Mode::Post {
            let since = *self.post_failing_since.get_or_insert(now);
            if now.saturating_sub(since) >= POST_FAILING_LIMIT {
                self.mode = Mode::Ping;
                self.post_failing_since = None;
            }
        }
        self.next = now.saturating_add(match self.mode {
            Mode::Post => POST_INTERVAL,
            Mode::Ping if now.saturating_sub(self.last_success) >= SLOW_AFTER => SLOW_PING_INTERVAL,
            Mode::Ping => self.ping_hint.unwrap_or(PING_INTERVAL),
        });
    }
}

/// What happened since the last post: the five rates and averages §4(e)
/// names under `Metrics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    pub requests: u64,
    pub failed_requests: u64,
    /// Sum of the requests' durations, in milliseconds.
    pub request_duration_ms: f64,
    pub dependencies: u64,
    pub exceptions: u64,
}

impl Counters {
    /// One finished request (a server or consumer span).
    pub fn request(&mut self, duration_ms: f64, success: bool) {
        self.requests += 1;
        self.failed_requests += u64::from(!success);
        self.request_duration_ms += duration_ms.max(0.0);
    }

    /// The `Metrics` of a post covering `elapsed_ns`: (name, value, weight).
    pub fn metrics(&self, elapsed_ns: u64) -> Vec<(&'static str, f64, u64)> {
        let seconds = (elapsed_ns.max(1) as f64) / S as f64;
        let rate = |n: u64| n as f64 / seconds;
        let duration = if self.requests == 0 { 0.0 } else { self.request_duration_ms / self.requests as f64 };
        vec![
            (r"\ApplicationInsights\Requests/Sec", rate(self.requests), 1),
            (r"\ApplicationInsights\Request Duration", duration, self.requests.max(1)),
            (r"\ApplicationInsights\Requests Failed/Sec", rate(self.failed_requests), 1),
            (r"\ApplicationInsights\Dependency Calls/Sec", rate(self.dependencies), 1),
            (r"\ApplicationInsights\Exceptions/Sec", rate(self.exceptions), 1),
        ]
    }
}

/// §4(e) "Ping": the service under the live endpoint, and its API version.
pub const SERVICE_PATH: &str = "/QuickPulseService.svc";
pub const API_VERSION: &str = "2024-04-01-preview";
/// `InvariantVersion` and `x-ms-qps-invariant-version`: the reference names
/// the field but not its value; polytel sends 1.
pub const INVARIANT_VERSION: u32 = 1;
/// polytel's own bound on one Live Metrics request (the reference gives
/// none): hosts send exports one after another, so a live endpoint that
/// does not answer may hold the sender this long per request, at most
/// every 5 s while pinging (every 60 s after a minute without an answer).
pub const TIMEOUT_MS: u32 = 2_000;
/// Live requests' ids: apart from exports' (which count up from 1), so an
/// outcome reported for one is never taken for the other.
pub const ID_BASE: u64 = 1 << 63;

/// Whether `id` names a Live Metrics request rather than an export.
pub fn is_live_id(id: u64) -> bool {
    id >= ID_BASE
}

/// Ticks (100 ns) between 0001-01-01 and 1970-01-01: .NET's epoch, for
/// `x-ms-qps-transmission-time` (§4(e) "Ping").
const DOTNET_EPOCH_TICKS: u64 = 621_355_968_000_000_000;

/// `unix_ns` as .NET ticks.
pub fn dotnet_ticks(unix_ns: u64) -> u64 {
    (unix_ns / 100).saturating_add(DOTNET_EPOCH_TICKS)
}

/// A URL with the value of its `ikey` query parameter masked, for anything
/// printed (Debug, descriptions, warnings).
pub fn masked_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_owned() };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("ikey") => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// The host (and port) of a URL, for warnings.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

/// One Live Metrics request, for the host to POST.
#[derive(Clone, PartialEq)]
pub struct LiveRequest {
    pub id: u64,
    pub mode: Mode,
    /// `{endpoint}/QuickPulseService.svc/{ping|post}?api-version=…&ikey=…`.
    pub url: String,
    pub headers: Vec<(String, Secret)>,
    /// A `MonitoringDataPoint` (ping) or an array of one (post), as JSON.
    pub body: String,
    pub timeout_ms: u32,
}

impl std::fmt::Debug for LiveRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("LiveRequest")
            .field("id", &self.id)
            .field("mode", &self.mode)
            .field("url", &masked_url(&self.url))
            .field("headers", &self.headers)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// What a `MonitoringDataPoint` says about who sends it (§4(e) "identity fields").
#[derive(Clone, Debug, PartialEq)]
struct Identity {
    version: String,
    role_name: String,
    instance: String,
    machine_name: String,
    stream_id: String,
    is_web_app: bool,
}

/// What happened to a request, for the pipeline's warnings.
#[derive(Clone, Debug, PartialEq)]
pub enum Settled {
    /// A 2xx answer.
    Ok,
    /// No answer, or one that was not 2xx: `status` 0 for none. `host` is
    /// the endpoint's host, never the URL (which carries the key).
    Failed { host: String, status: u16 },
}

/// Live Metrics for one pipeline: the state machine, the counters of the
/// window a post covers, and the request in flight.
#[derive(Clone, Debug)]
pub struct Session {
    live: Live,
    started: bool,
    key: Secret,
    headers: Vec<(String, Secret)>,
    timeout_ms: u32,
    identity: Identity,
    counters: Counters,
    /// The start of the window the next post covers.
    since: u64,
    in_flight: Option<u64>,
    sent: u64,
}

impl Session {
    /// Live Metrics for `route` (its live endpoint, key and user headers),
    /// describing the sender from `resource`; `seed` makes the stream id.
    pub fn new(route: &AzureRoute, resource: &[KeyValue], seed: u64) -> Session {
        let mut state = seed ^ 0x5155_4943_4b50_554c; // apart from the pipeline's own sequence
        let stream_id =
            format!("{:016x}{:016x}", crate::ids::splitmix64(&mut state), crate::ids::splitmix64(&mut state));
        let instance = cloud_role_instance(resource).unwrap_or_default();
        let platform = first_text(resource, &["cloud.platform"]).unwrap_or_default();
        Session {
            live: Live::new(&route.live_endpoint, 0),
            started: false,
            key: route.instrumentation_key.clone(),
            headers: route.headers.clone(),
            timeout_ms: route.timeout_ms.clamp(1, TIMEOUT_MS),
            identity: Identity {
                version: sdk_version(resource),
                role_name: cloud_role(resource).unwrap_or_default(),
                machine_name: first_text(resource, &["host.name"]).unwrap_or_else(|| instance.clone()),
                instance,
                stream_id,
                is_web_app: matches!(platform.as_str(), "azure.app_service" | "azure_app_service"),
            },
            counters: Counters::default(),
            since: 0,
            in_flight: None,
            sent: 0,
        }
    }

    pub fn mode(&self) -> Mode {
        self.live.mode()
    }

    /// The live endpoint (scheme and host), redirected or not.
    pub fn endpoint(&self) -> &str {
        self.live.endpoint()
    }

    /// When a request is next due; `u64::MAX` while one is out. Before the
    /// first poll, at once.
    pub fn next_due(&self) -> u64 {
        if self.started {
            self.live.next_due()
        } else {
            0
        }
    }

    /// Counts a finished span, while posting (a post covers what ended since
    /// the last one; nothing is counted while only pinging).
    pub fn span(&mut self, span: &Span) {
        if self.live.mode() != Mode::Post {
            return;
        }
        if span.kind == SpanKind::Server as i32 || span.kind == SpanKind::Consumer as i32 {
            let ms = span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) as f64 / 1e6;
            self.counters.request(ms, crate::azure::spans::request_success(span));
        } else {
            self.counters.dependencies += 1;
        }
        self.counters.exceptions += span.events.iter().filter(|e| e.name == "exception").count() as u64;
    }

    /// Counts a log record that becomes an Exception envelope, while posting.
    pub fn log(&mut self, record: &LogRecord) {
        if self.live.mode() == Mode::Post
            && first_text(&record.attributes, &["exception.type", "exception.message"]).is_some()
        {
            self.counters.exceptions += 1;
        }
    }

    /// The request due at `now`, if any; it is in flight until `answered`.
    pub fn request(&mut self, now: u64) -> Option<LiveRequest> {
        if !self.started {
            self.started = true;
            self.live = Live::new(self.live.endpoint(), now);
            self.since = now;
        }
        let mode = self.live.due(now)?;
        let id = ID_BASE + self.sent;
        self.sent += 1;
        self.in_flight = Some(id);
        let point = match mode {
            Mode::Ping => self.data_point(now, &[]),
            Mode::Post => {
                let metrics = self.counters.metrics(now.saturating_sub(self.since));
                self.counters = Counters::default();
                self.since = now;
                format!("[{}]", self.data_point(now, &metrics))
            }
        };
        let path = match mode {
            Mode::Ping => "ping",
            Mode::Post => "post",
        };
        let url = format!(
            "{}{SERVICE_PATH}/{path}?api-version={API_VERSION}&ikey={}",
            self.live.endpoint(),
            self.key.expose()
        );
        let public = |name: &str, value: String| (name.to_owned(), Secret::public(value));
        let id_ = &self.identity;
        let mut headers = vec![
            public("Content-Type", "application/json".into()),
            public("x-ms-qps-transmission-time", dotnet_ticks(now).to_string()),
            public("x-ms-qps-machine-name", id_.machine_name.clone()),
            public("x-ms-qps-instance-name", id_.instance.clone()),
            public("x-ms-qps-stream-id", id_.stream_id.clone()),
            public("x-ms-qps-role-name", id_.role_name.clone()),
            public("x-ms-qps-invariant-version", INVARIANT_VERSION.to_string()),
            public(CONFIGURATION_ETAG, self.live.etag().to_owned()),
        ];
        headers.extend(self.headers.iter().cloned());
        Some(LiveRequest { id, mode, url, headers, body: point, timeout_ms: self.timeout_ms })
    }

    /// A `MonitoringDataPoint` (§4(e) "Cadence") at `now` with `metrics`.
    fn data_point(&self, now: u64, metrics: &[(&str, f64, u64)]) -> String {
        let id = &self.identity;
        let at = time(now);
        let metrics: Vec<serde_json::Value> = metrics
            .iter()
            .map(|(name, value, weight)| serde_json::json!({"Name": name, "Value": value, "Weight": weight}))
            .collect();
        serde_json::json!({
            "Version": id.version,
            "InvariantVersion": INVARIANT_VERSION,
            "Instance": id.instance,
            "RoleName": id.role_name,
            "MachineName": id.machine_name,
            "StreamId": id.stream_id,
            "Timestamp": at,
            "TransmissionTime": at,
            "IsWebApp": id.is_web_app,
            // The core sees no processor or memory figures.
            "PerformanceCollectionSupported": false,
            "Metrics": metrics,
            "Documents": [],
            "TopCpuProcesses": [],
            "CollectionConfigurationErrors": [],
        })
        .to_string()
    }

    /// Takes the answer to request `id`; `None` when `id` is not the request
    /// in flight (reported twice, or after a restart).
    pub fn answered(&mut self, id: u64, answer: &Answer, now: u64) -> Option<Settled> {
        if self.in_flight != Some(id) {
            return None;
        }
        self.in_flight = None;
        let before = self.live.mode();
        self.live.answered(answer, now);
        if before == Mode::Ping && self.live.mode() == Mode::Post {
            // Subscribed: the first post covers what ends from now on.
            self.counters = Counters::default();
            self.since = now;
        }
        Some(match answer {
            Answer::Http { status, .. } if (200..300).contains(status) => Settled::Ok,
            Answer::Http { status, .. } => {
                Settled::Failed { host: host_of(self.live.endpoint()).to_owned(), status: *status }
            }
            Answer::Failed => Settled::Failed { host: host_of(self.live.endpoint()).to_owned(), status: 0 },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_767_268_800 * S;
    const LIVE: &str = "https://westeurope.livediagnostics.monitor.azure.com/";

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// One step: at `at` seconds after T0, the request due is answered with
    /// `status` (0: no answer) and `headers`; then the mode and the next due time.
    struct Step {
        at: u64,
        sent: Mode,
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        mode: Mode,
        next: u64,
    }

    fn run(steps: &[Step]) {
        let mut live = Live::new(LIVE, T0);
        for (i, s) in steps.iter().enumerate() {
            let now = T0 + s.at * S;
            assert_eq!(live.due(now), Some(s.sent), "step {i}: the request sent");
            assert_eq!(live.due(now), None, "step {i}: one request at a time");
            let headers = h(s.headers);
            let answer =
                if s.status == 0 { Answer::Failed } else { Answer::Http { status: s.status, headers: &headers } };
            live.answered(&answer, now);
            assert_eq!((live.mode(), live.next_due()), (s.mode, T0 + s.next * S), "step {i}");
        }
    }

    fn step(
        at: u64,
        sent: Mode,
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        mode: Mode,
        next: u64,
    ) -> Step {
        Step { at, sent, status, headers, mode, next }
    }

    const SUB: &[(&str, &str)] = &[("x-ms-qps-subscribed", "true")];
    const UNSUB: &[(&str, &str)] = &[("x-ms-qps-subscribed", "false")];
    const NONE: &[(&str, &str)] = &[];
    use Mode::{Ping, Post};

    #[test]
    fn pings_until_subscribed_then_posts_every_second() {
        run(&[
            step(0, Ping, 200, UNSUB, Ping, 5),
            step(5, Ping, 200, NONE, Ping, 10),
            step(10, Ping, 200, SUB, Post, 11),
            step(11, Post, 200, NONE, Post, 12),
            step(12, Post, 200, SUB, Post, 13),
            step(13, Post, 200, UNSUB, Ping, 18),
        ]);
    }

    #[test]
    fn the_polling_interval_hint_paces_pings() {
        run(&[
            step(0, Ping, 200, &[("x-ms-qps-service-polling-interval-hint", "2000")], Ping, 2),
            step(2, Ping, 200, NONE, Ping, 4),
            // Nonsense hints are ignored.
            step(4, Ping, 200, &[("x-ms-qps-service-polling-interval-hint", "soon")], Ping, 9),
            step(9, Ping, 200, &[("x-ms-qps-service-polling-interval-hint", "0")], Ping, 14),
        ]);
    }

    #[test]
    fn failing_pings_slow_down_after_a_minute() {
        run(&[
            step(0, Ping, 503, NONE, Ping, 5),
            step(5, Ping, 0, NONE, Ping, 10),
            step(55, Ping, 500, NONE, Ping, 60),
            step(60, Ping, 0, NONE, Ping, 120),
            step(120, Ping, 200, NONE, Ping, 125),
            // A subscribed header on a failed answer does not subscribe.
            step(125, Ping, 500, SUB, Ping, 130),
        ]);
    }

    #[test]
    fn posts_failing_for_twenty_seconds_fall_back_to_pings() {
        run(&[
            step(0, Ping, 200, SUB, Post, 1),
            step(1, Post, 500, NONE, Post, 2),
            step(2, Post, 0, NONE, Post, 3),
            step(20, Post, 503, NONE, Post, 21),
            step(21, Post, 0, NONE, Ping, 26),
            step(26, Ping, 200, SUB, Post, 27),
            // A success resets the failing clock.
            step(27, Post, 500, NONE, Post, 28),
            step(40, Post, 200, NONE, Post, 41),
            step(47, Post, 500, NONE, Post, 48),
            step(66, Post, 500, NONE, Post, 67),
        ]);
    }

    #[test]
    fn endpoint_redirects_stay_within_azure_and_etags_are_kept() {
        let mut live = Live::new(LIVE, T0);
        let rows: &[(&str, &str)] = &[
            (
                "https://northeurope.livediagnostics.monitor.azure.com/",
                "https://northeurope.livediagnostics.monitor.azure.com",
            ),
            ("https://evil.example/", "https://northeurope.livediagnostics.monitor.azure.com"),
            ("http://rt.services.visualstudio.com/", "https://northeurope.livediagnostics.monitor.azure.com"),
            ("https://rt.services.visualstudio.com", "https://rt.services.visualstudio.com"),
        ];
        for (to, expected) in rows {
            live.due(live.next_due());
            let headers = h(&[(ENDPOINT_REDIRECT, to), (CONFIGURATION_ETAG, "e1")]);
            live.answered(&Answer::Http { status: 200, headers: &headers }, live.next);
            assert_eq!(live.endpoint(), *expected, "{to}");
        }
        assert_eq!(live.etag(), "e1");
        assert_eq!(live.next_due(), live.next);
        live.due(u64::MAX);
        assert_eq!(live.next_due(), u64::MAX, "nothing more is due while a request is out");
    }

    #[test]
    fn counters_become_rates_and_an_average() {
        let mut c = Counters::default();
        c.request(100.0, true);
        c.request(300.0, false);
        c.request(-5.0, true);
        c.dependencies = 4;
        c.exceptions = 1;
        let m = c.metrics(2 * S);
        assert_eq!(
            m,
            vec![
                (r"\ApplicationInsights\Requests/Sec", 1.5, 1),
                (r"\ApplicationInsights\Request Duration", 400.0 / 3.0, 3),
                (r"\ApplicationInsights\Requests Failed/Sec", 0.5, 1),
                (r"\ApplicationInsights\Dependency Calls/Sec", 2.0, 1),
                (r"\ApplicationInsights\Exceptions/Sec", 0.5, 1),
            ]
        );
        assert_eq!(Counters::default().metrics(0)[1], (r"\ApplicationInsights\Request Duration", 0.0, 1));
    }

    #[test]
    fn ticks_and_masked_urls() {
        assert_eq!(dotnet_ticks(0), 621_355_968_000_000_000);
        assert_eq!(dotnet_ticks(T0), 639_028_656_000_000_000);
        assert_eq!(
            masked_url("https://x.example/QuickPulseService.svc/ping?api-version=1&ikey=SECRET"),
            "https://x.example/QuickPulseService.svc/ping?api-version=1&ikey=***"
        );
        assert_eq!(masked_url("https://x.example/v2.1/track"), "https://x.example/v2.1/track");
        assert_eq!(host_of("https://x.example:8443/a?ikey=SECRET"), "x.example:8443");
        assert!(is_live_id(ID_BASE) && !is_live_id(1));
    }
}
