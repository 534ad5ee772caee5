//! Delivery policy: what an export's outcome means. OTLP/HTTP rules: 2xx is
//! success (a partial_success body is counted, never retried); 429, 502, 503,
//! 504 and connection failures are retried with exponential backoff and jitter,
//! honouring Retry-After; 413 splits the batch; every other status is final.
//! OTLP/gRPC rules: OK is success (partial_success as above); CANCELLED,
//! DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are
//! retried, and RESOURCE_EXHAUSTED too when the server sent a RetryInfo delay;
//! every other code is final.

use prost::Message;

use crate::config::Encoding;
use crate::stats::DropReason;

/// How an HTTP export ended, as the host reported it.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Response {
        status: u16,
        retry_after: Option<String>,
        body: Vec<u8>,
    },
    /// A gRPC call answered with HTTP 200: its grpc-status, grpc-message,
    /// grpc-status-details-bin (verbatim) and response message.
    Grpc {
        code: u32,
        message: String,
        details: Option<String>,
        body: Vec<u8>,
    },
    Failed(String),
    /// A 3xx answer the host did not follow, with its Location header (hosts
    /// never follow redirects themselves). The Azure Monitor route follows
    /// 307/308 within Application Insights' domains (`azure::delivery`); an
    /// OTLP route follows 307/308 to the same scheme, host and port only
    /// (`same_origin_redirect`); every other redirect is final.
    Redirect {
        status: u16,
        location: String,
    },
}

/// The outcome of an HTTP answer as the contract's http-response carries it:
/// a 3xx with a Location header is a `Redirect`; anything else a `Response`,
/// whose Retry-After comes from the dedicated field or, failing that, from the
/// headers. Header names are matched without regard to case.
pub fn http_outcome(status: u16, retry_after: Option<String>, headers: &[(String, String)], body: Vec<u8>) -> Outcome {
    let header = |name: &str| headers.iter().find(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v);
    match header("location") {
        Some(location) if (300..400).contains(&status) => {
            Outcome::Redirect { status, location: location.trim().to_owned() }
        }
        _ => Outcome::Response { status, retry_after: retry_after.or_else(|| header("retry-after").cloned()), body },
    }
}

/// Where an OTLP export goes after a 307 or 308 to `location`: the URL the
/// Location names (a path-absolute one resolved against `current`), but only
/// when its scheme, host and port are those of `current`. A redirect to
/// another origin is never followed: the export's headers carry the
/// backend's credentials, and they must not reach another host.
pub fn same_origin_redirect(current: &str, location: &str) -> Option<String> {
    let (scheme, rest) = current.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let location = location.trim();
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let (new_scheme, new_rest) = location.split_once("://")?;
    let at = new_rest.find(['/', '?', '#']).unwrap_or(new_rest.len());
    let (new_authority, tail) = new_rest.split_at(at);
    if new_authority.contains('@')
        || !new_scheme.eq_ignore_ascii_case(scheme)
        || !new_authority.trim_end_matches('.').eq_ignore_ascii_case(authority.trim_end_matches('.'))
    {
        return None;
    }
    let tail = if tail.is_empty() { "/" } else { tail };
    Some(format!("{scheme}://{authority}{tail}"))
}

/// The host and port (no credentials, no path or query) a Location names,
/// for warnings: never the whole URL, whose query may carry a token.
pub fn location_host(location: &str) -> String {
    let location = location.trim();
    if location.starts_with('/') && !location.starts_with("//") {
        return "the same host".to_owned();
    }
    let Some((_, rest)) = location.split_once("://") else {
        return "an unreadable location".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if crate::credentials::host_without_port(authority).is_empty() {
        "an unreadable location".to_owned()
    } else {
        authority.to_owned()
    }
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Delivered; `rejected` items were refused by the receiver (partial success).
    Done {
        rejected: u64,
        message: String,
    },
    /// Try again at this time (unix ns).
    Retry {
        at: u64,
    },
    /// Too large: split in two and send each half.
    Split,
    Drop(DropReason),
}

/// Redirects followed in a row for one export before it is given up.
pub const MAX_REDIRECTS: u32 = 10;
/// Attempts in all, the first included: a bound for servers that keep
/// asking for a second's wait. The retry budget usually ends retries first.
pub const MAX_ATTEMPTS: u32 = 100;
/// How long after its first attempt an export is still retried: a short
/// outage (a restart, a deploy, a burst of 503s) must cost nothing, while
/// the queues' bounds keep memory flat during a long one.
pub const RETRY_BUDGET_NS: u64 = 120_000_000_000;
const BASE_BACKOFF_NS: u64 = 1_000_000_000;
const MAX_BACKOFF_NS: u64 = 30_000_000_000;
/// A Retry-After longer than this is not waited for; the export is dropped.
const MAX_RETRY_AFTER_NS: u64 = 300_000_000_000;

/// Decides what happens after attempt number `attempts` (1-based) ended with
/// `outcome`. `jitter` is a uniform random value in [0, 1).
pub fn judge(outcome: &Outcome, encoding: Encoding, attempts: u32, now: u64, jitter: f64) -> Verdict {
    let retry = |after: Option<u64>| retry(after, attempts, now, jitter);
    match outcome {
        Outcome::Failed(_) => retry(None),
        Outcome::Redirect { .. } => Verdict::Drop(DropReason::Rejected),
        Outcome::Response { status, retry_after, body } => match status {
            200..=299 => {
                let (rejected, message) = partial_success(body, encoding);
                Verdict::Done { rejected, message }
            }
            413 => Verdict::Split,
            429 | 502 | 503 | 504 => retry(retry_after.as_deref().and_then(|v| retry_after_ns(v, now))),
            _ => Verdict::Drop(DropReason::Rejected),
        },
        Outcome::Grpc { code, details, body, .. } => match code {
            0 => {
                let (rejected, message) = partial_success(body, Encoding::Protobuf);
                Verdict::Done { rejected, message }
            }
            1 | 4 | 10 | 11 | 14 | 15 => retry(details.as_deref().and_then(retry_info_ns)),
            8 => match details.as_deref().and_then(retry_info_ns) {
                Some(delay) => retry(Some(delay)),
                None => Verdict::Drop(DropReason::Rejected),
            },
            _ => Verdict::Drop(DropReason::Rejected),
        },
    }
}

/// Another attempt after attempt number `attempts` (1-based): after the
/// server's delay `after` (nanoseconds) if it gave one, else after an
/// exponential backoff with jitter; or a drop when attempts ran out or the
/// server asks for too long a wait.
pub fn retry(after: Option<u64>, attempts: u32, now: u64, jitter: f64) -> Verdict {
    if attempts >= MAX_ATTEMPTS {
        return Verdict::Drop(DropReason::RetriesExhausted);
    }
    let delay = match after {
        Some(d) if d > MAX_RETRY_AFTER_NS => return Verdict::Drop(DropReason::RetriesExhausted),
        Some(d) => d,
        None => {
            let exp = BASE_BACKOFF_NS.saturating_mul(1 << attempts.saturating_sub(1).min(16)).min(MAX_BACKOFF_NS);
            // Between half and all of the exponential delay.
            exp / 2 + (exp as f64 / 2.0 * jitter) as u64
        }
    };
    Verdict::Retry { at: now.saturating_add(delay) }
}

/// The delay of a google.rpc.RetryInfo in grpc-status-details-bin (base64
/// of a google.rpc.Status), in nanoseconds.
fn retry_info_ns(details: &str) -> Option<u64> {
    use base64::Engine as _;
    #[derive(Clone, PartialEq, prost::Message)]
    struct Status {
        #[prost(message, repeated, tag = "3")]
        details: Vec<Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Any {
        #[prost(string, tag = "1")]
        type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        value: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        retry_delay: Option<Duration>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Duration {
        #[prost(int64, tag = "1")]
        seconds: i64,
        #[prost(int32, tag = "2")]
        nanos: i32,
    }
    // gRPC sends binary metadata as base64, with or without padding.
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD.decode(details.trim().trim_end_matches('=')).ok()?;
    let status = Status::decode(&raw[..]).ok()?;
    let info = status.details.iter().find(|a| a.type_url.ends_with("/google.rpc.RetryInfo"))?;
    let delay = RetryInfo::decode(&info.value[..]).ok()?.retry_delay?;
    let seconds = u64::try_from(delay.seconds).ok()?;
    let nanos = u64::try_from(delay.nanos).ok()?;
    Some(seconds.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// Reads `partial_success` from an Export*ServiceResponse body. Anything
/// unreadable counts as full success: the receiver said 2xx.
fn partial_success(body: &[u8], encoding: Encoding) -> (u64, String) {
    if body.is_empty() {
        return (0, String::new());
    }
    match encoding {
        Encoding::Protobuf => {
            // The metrics and logs responses have the same field numbers, so
            // one decoder reads all three.
            use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
            match ExportTraceServiceResponse::decode(body) {
                Ok(r) => {
                    r.partial_success.map_or((0, String::new()), |p| (p.rejected_spans.max(0) as u64, p.error_message))
                }
                Err(_) => (0, String::new()),
            }
        }
        Encoding::Json => {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return (0, String::new()) };
            let p = v.get("partialSuccess").or_else(|| v.get("partial_success"));
            let Some(p) = p else { return (0, String::new()) };
            let count = ["rejectedSpans", "rejected_spans", "rejectedDataPoints", "rejected_data_points"]
                .into_iter()
                .chain(["rejectedLogRecords", "rejected_log_records"])
                .find_map(|k| p.get(k))
                .and_then(|n| n.as_u64().or_else(|| n.as_str()?.parse().ok()))
                .unwrap_or(0);
            let message =
                ["errorMessage", "error_message"].iter().find_map(|k| p.get(*k)?.as_str()).unwrap_or("").to_owned();
            (count, message)
        }
    }
}

/// Retry-After as a delay in nanoseconds: delta-seconds or an IMF-fixdate.
pub fn retry_after_ns(value: &str, now: u64) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1_000_000_000));
    }
    // delta-seconds is any run of digits (RFC 9110 §10.2.3); one too long
    // for a u64 asks for a very long wait (RFC 9111 §1.2.2: the greatest
    // value representable), not for none.
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(u64::MAX);
    }
    let at = http_date_unix_secs(value)?;
    let now_secs = now / 1_000_000_000;
    Some(at.saturating_sub(now_secs).saturating_mul(1_000_000_000))
}

/// Parses `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date_unix_secs(s: &str) -> Option<u64> {
    let rest = s.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts[..] else { return None };
    let day: u64 = day.parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == month)? as u64
        + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<u64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, sec] = hms[..] else { return None };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || !(1970..=9999).contains(&year) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as u64 * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_answers_become_outcomes() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        type Row<'a> = (u16, Option<&'a str>, &'a [(&'a str, &'a str)], Outcome);
        let rows: &[Row] = &[
            (
                307,
                None,
                &[("location", " https://a.example/v1/traces ")],
                Outcome::Redirect { status: 307, location: "https://a.example/v1/traces".into() },
            ),
            (
                308,
                None,
                &[("x-other", "1"), ("Location", "/v2")],
                Outcome::Redirect { status: 308, location: "/v2".into() },
            ),
            (
                301,
                None,
                &[("location", "https://b.example/")],
                Outcome::Redirect { status: 301, location: "https://b.example/".into() },
            ),
            // A 3xx without Location, and a Location outside 3xx, are plain responses.
            (307, None, &[], Outcome::Response { status: 307, retry_after: None, body: vec![] }),
            (201, None, &[("location", "/x")], Outcome::Response { status: 201, retry_after: None, body: vec![] }),
            // Retry-After: the field first, the headers otherwise.
            (
                503,
                Some("3"),
                &[("retry-after", "9")],
                Outcome::Response { status: 503, retry_after: Some("3".into()), body: vec![] },
            ),
            (
                429,
                None,
                &[("retry-after", "9")],
                Outcome::Response { status: 429, retry_after: Some("9".into()), body: vec![] },
            ),
        ];
        for (status, retry_after, headers, expected) in rows {
            assert_eq!(
                &http_outcome(*status, retry_after.map(str::to_owned), &h(headers), vec![]),
                expected,
                "{status} {headers:?}"
            );
        }
    }

    #[test]
    fn otlp_redirects_stay_on_the_same_origin() {
        const URL: &str = "https://api.example.com/v1/traces";
        let rows: &[(&str, Option<&str>)] = &[
            ("/v1/traces/", Some("https://api.example.com/v1/traces/")),
            ("https://api.example.com/otlp/v1/traces", Some("https://api.example.com/otlp/v1/traces")),
            ("HTTPS://API.EXAMPLE.COM/x?y=1", Some("https://api.example.com/x?y=1")),
            ("https://api.example.com", Some("https://api.example.com/")),
            ("http://api.example.com/v1/traces", None),
            ("https://api.example.com:8443/v1/traces", None),
            ("https://other.example.com/v1/traces", None),
            ("https://api.example.com.evil.example/v1/traces", None),
            ("https://user@api.example.com/v1/traces", None),
            ("//api.example.com/v1/traces", None),
            ("v1/traces", None),
            ("", None),
        ];
        for (location, expected) in rows {
            assert_eq!(same_origin_redirect(URL, location).as_deref(), *expected, "{location:?}");
        }
        assert_eq!(
            same_origin_redirect("http://127.0.0.1:4318/v1/logs", "/moved/v1/logs").as_deref(),
            Some("http://127.0.0.1:4318/moved/v1/logs")
        );
    }

    #[test]
    fn warnings_name_only_the_location_host() {
        assert_eq!(location_host("https://user:secret@other.example:8443/p?token=abc"), "other.example:8443");
        assert_eq!(location_host("https://[::1]:9/x"), "[::1]:9");
        assert_eq!(location_host("http://login.example/?next=x"), "login.example");
        assert_eq!(location_host("/relative"), "the same host");
        assert_eq!(location_host("relative"), "an unreadable location");
        assert_eq!(location_host("https:///x"), "an unreadable location");
    }

    use super::*;

    const S: u64 = 1_000_000_000;

    fn status(code: u16) -> Outcome {
        Outcome::Response { status: code, retry_after: None, body: vec![] }
    }

    #[test]
    fn status_codes() {
        for ok in [200, 202, 204] {
            assert_eq!(
                judge(&status(ok), Encoding::Protobuf, 1, 0, 0.0),
                Verdict::Done { rejected: 0, message: String::new() }
            );
        }
        for retryable in [429, 502, 503, 504] {
            assert!(matches!(judge(&status(retryable), Encoding::Protobuf, 1, 0, 0.0), Verdict::Retry { .. }));
        }
        for fatal in [400, 401, 403, 404, 500, 501, 301] {
            assert_eq!(judge(&status(fatal), Encoding::Protobuf, 1, 0, 0.0), Verdict::Drop(DropReason::Rejected));
        }
        assert_eq!(judge(&status(413), Encoding::Protobuf, 1, 0, 0.0), Verdict::Split);
        assert!(matches!(judge(&Outcome::Failed("refused".into()), Encoding::Json, 1, 0, 0.0), Verdict::Retry { .. }));
        assert_eq!(
            judge(&status(503), Encoding::Protobuf, MAX_ATTEMPTS, 0, 0.0),
            Verdict::Drop(DropReason::RetriesExhausted)
        );
    }

    fn grpc(code: u32, details: Option<String>) -> Outcome {
        Outcome::Grpc { code, message: String::new(), details, body: vec![] }
    }

    /// grpc-status-details-bin carrying a RetryInfo of `seconds`, as a server writes it.
    fn retry_info(seconds: u8) -> String {
        use base64::Engine as _;
        let duration = [0x08, seconds];
        let info = [&[0x0a, duration.len() as u8][..], &duration].concat();
        let type_url = b"type.googleapis.com/google.rpc.RetryInfo";
        let any = [&[0x0a, type_url.len() as u8][..], type_url, &[0x12, info.len() as u8], &info].concat();
        let status = [&[0x08, 8, 0x1a, any.len() as u8][..], &any].concat();
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(status)
    }

    #[test]
    fn grpc_codes() {
        assert_eq!(
            judge(&grpc(0, None), Encoding::Protobuf, 1, 0, 0.0),
            Verdict::Done { rejected: 0, message: String::new() }
        );
        for retryable in [1, 4, 10, 11, 14, 15] {
            assert!(matches!(judge(&grpc(retryable, None), Encoding::Protobuf, 1, 0, 0.0), Verdict::Retry { .. }));
        }
        for fatal in [2, 3, 5, 6, 7, 9, 12, 13, 16, 99] {
            assert_eq!(judge(&grpc(fatal, None), Encoding::Protobuf, 1, 0, 0.0), Verdict::Drop(DropReason::Rejected));
        }
        assert_eq!(judge(&grpc(8, None), Encoding::Protobuf, 1, 0, 0.0), Verdict::Drop(DropReason::Rejected));
        assert_eq!(judge(&grpc(8, Some(retry_info(7))), Encoding::Protobuf, 1, 0, 0.0), Verdict::Retry { at: 7 * S });
        assert_eq!(judge(&grpc(14, Some(retry_info(3))), Encoding::Protobuf, 1, 0, 0.0), Verdict::Retry { at: 3 * S });
        assert!(matches!(
            judge(&grpc(14, Some("!!not base64".into())), Encoding::Protobuf, 1, 0, 0.0),
            Verdict::Retry { .. }
        ));
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let at = |attempt, jitter| match judge(&status(503), Encoding::Protobuf, attempt, 0, jitter) {
            Verdict::Retry { at } => at,
            v => panic!("{v:?}"),
        };
        assert_eq!(at(1, 0.0), S / 2);
        assert_eq!(at(1, 0.999_999_999), S - 1);
        assert_eq!(at(3, 0.0), 2 * S);
        assert_eq!(at(5, 1.0 - f64::EPSILON), 16 * S - 1);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = 784_111_777 * S; // Sun, 06 Nov 1994 08:49:37 GMT
        let o = Outcome::Response { status: 429, retry_after: Some("7".into()), body: vec![] };
        assert_eq!(judge(&o, Encoding::Protobuf, 1, now, 0.5), Verdict::Retry { at: now + 7 * S });
        let o =
            Outcome::Response { status: 503, retry_after: Some("Sun, 06 Nov 1994 08:50:07 GMT".into()), body: vec![] };
        assert_eq!(judge(&o, Encoding::Protobuf, 1, now, 0.5), Verdict::Retry { at: now + 30 * S });
        let o = Outcome::Response { status: 503, retry_after: Some("86400".into()), body: vec![] };
        assert_eq!(judge(&o, Encoding::Protobuf, 1, now, 0.5), Verdict::Drop(DropReason::RetriesExhausted));
        // delta-seconds past u64 is a very long wait, not garbage: dropped, not retried at once.
        for huge in ["18446744073709551616", "99999999999999999999999"] {
            assert_eq!(retry_after_ns(huge, now), Some(u64::MAX), "{huge}");
            let o = Outcome::Response { status: 503, retry_after: Some(huge.into()), body: vec![] };
            assert_eq!(
                judge(&o, Encoding::Protobuf, 1, now, 0.0),
                Verdict::Drop(DropReason::RetriesExhausted),
                "{huge}"
            );
        }
        // Garbage falls back to backoff.
        let o = Outcome::Response { status: 503, retry_after: Some("soon".into()), body: vec![] };
        assert_eq!(judge(&o, Encoding::Protobuf, 1, now, 0.0), Verdict::Retry { at: now + S / 2 });
        for absurd in
            ["Sun, 06 Nov 99999999999999 08:49:37 GMT", "Sun, 06 Nov -5 08:49:37 GMT", "x, 99 Nov 1994 08:49:37 GMT"]
        {
            let o = Outcome::Response { status: 503, retry_after: Some(absurd.into()), body: vec![] };
            assert_eq!(judge(&o, Encoding::Protobuf, 1, now, 0.0), Verdict::Retry { at: now + S / 2 }, "{absurd}");
        }
    }

    #[test]
    fn partial_success_is_read_in_both_encodings() {
        use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
        let body = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 3, error_message: "bad".into() }),
        }
        .encode_to_vec();
        let o = Outcome::Response { status: 200, retry_after: None, body };
        assert_eq!(judge(&o, Encoding::Protobuf, 1, 0, 0.0), Verdict::Done { rejected: 3, message: "bad".into() });
        let o = Outcome::Response {
            status: 200,
            retry_after: None,
            body: br#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"x"}}"#.to_vec(),
        };
        assert_eq!(judge(&o, Encoding::Json, 1, 0, 0.0), Verdict::Done { rejected: 2, message: "x".into() });
        let o = Outcome::Response { status: 200, retry_after: None, body: b"not protobuf \xff".to_vec() };
        assert!(matches!(judge(&o, Encoding::Protobuf, 1, 0, 0.0), Verdict::Done { rejected: 0, .. }));
    }
}
