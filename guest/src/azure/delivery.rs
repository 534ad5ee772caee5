//! What a Track API answer means (shared/reference/azure-monitor.md §4(c)
//! "Status handling"): 200 is delivered; 206 lists the envelopes that failed,
//! of which only the retryable ones are sent again; 401, 403, 408, 429, 500,
//! 502, 503 and 504 are retried whole, honouring Retry-After; 402 and 439
//! (quota, throttling) and 400 are dropped and counted; 307 and 308 are
//! followed, but only to Application Insights' own domains.

use serde_json::Value;

use crate::delivery::{retry, retry_after_ns, Outcome, Verdict};
use crate::stats::DropReason;

/// §4(c) "Retryable" (401 and 403 too: Entra tokens and role assignments can
/// be transient).
pub const RETRYABLE: [u16; 8] = [401, 403, 408, 429, 500, 502, 503, 504];
/// §4(c) "Throttle / quota": not retryable.
pub const THROTTLED: [u16; 2] = [402, 439];
/// §4(c) "206 Partial": items with exactly this message are dropped, never retried.
pub const SAMPLED_OUT: &str = "Telemetry sampled out.";
/// Redirects followed in a row for one export before it is given up.
pub use crate::delivery::MAX_REDIRECTS;

/// What to do with an export after its answer.
#[derive(Debug, PartialEq)]
pub enum Judgement {
    /// The whole export: delivered, retried, split (413) or dropped.
    Whole(Verdict),
    /// Some envelopes failed (§4(c) "206 Partial"); the rest were accepted.
    Partial(Partial),
    /// Send the same body at once to `url` (the same path on the host the
    /// redirect named), and keep sending there.
    Redirect { url: String },
    /// A 307 or 308 whose Location the host did not pass on, or one leading
    /// outside Application Insights' domains: the export is dropped.
    RedirectRefused { location: Option<String> },
}

/// The envelopes of a 206 answer, by their index in the array sent.
#[derive(Debug, Default, PartialEq)]
pub struct Partial {
    /// Retryable failures, in order; `then` says when they go again.
    pub retry: Vec<usize>,
    /// `Retry { at }`, or a drop when attempts ran out (or no envelope is retryable).
    pub then: Option<Verdict>,
    /// Failures that must not be retried.
    pub rejected: Vec<usize>,
    /// Dropped by ingestion sampling.
    pub sampled_out: Vec<usize>,
    /// The first non-retryable failure's message, for a warning.
    pub message: String,
}

/// Decides what happens after attempt `attempts` (1-based) of an export of
/// `envelopes` envelopes to `url` ended with `outcome`; `jitter` is uniform in [0, 1).
pub fn judge(outcome: &Outcome, url: &str, envelopes: usize, attempts: u32, now: u64, jitter: f64) -> Judgement {
    let retry_after = |v: &Option<String>| v.as_deref().and_then(|v| retry_after_ns(v, now));
    match outcome {
        Outcome::Failed(_) => Judgement::Whole(retry(None, attempts, now, jitter)),
        Outcome::Grpc { .. } => Judgement::Whole(Verdict::Drop(DropReason::Rejected)),
        Outcome::Redirect { status: 307 | 308, location } => match redirect_url(url, location) {
            Some(url) => Judgement::Redirect { url },
            None => Judgement::RedirectRefused { location: Some(location.clone()) },
        },
        Outcome::Redirect { .. } => Judgement::Whole(Verdict::Drop(DropReason::Rejected)),
        Outcome::Response { status, retry_after: after, body } => match *status {
            200 | 206 => match item_errors(body) {
                None if *status == 206 => Judgement::Whole(Verdict::Done {
                    rejected: 0,
                    message: "the partial-success answer was unreadable".into(),
                }),
                None => Judgement::Whole(Verdict::Done { rejected: 0, message: String::new() }),
                Some(errors) if errors.is_empty() => {
                    Judgement::Whole(Verdict::Done { rejected: 0, message: String::new() })
                }
                Some(errors) => {
                    let mut p = Partial::default();
                    let mut seen = vec![false; envelopes];
                    for e in errors {
                        // Indexes outside the array, or repeated, are the server's mistake.
                        match seen.get_mut(e.index) {
                            Some(s) if !*s => *s = true,
                            _ => continue,
                        }
                        if e.message == SAMPLED_OUT {
                            p.sampled_out.push(e.index);
                        } else if RETRYABLE.contains(&e.status) {
                            p.retry.push(e.index);
                        } else {
                            if p.message.is_empty() {
                                p.message = format!("{} {}", e.status, e.message).trim().to_owned();
                            }
                            p.rejected.push(e.index);
                        }
                    }
                    p.retry.sort_unstable();
                    if !p.retry.is_empty() {
                        p.then = Some(retry(retry_after(after), attempts, now, jitter));
                    }
                    Judgement::Partial(p)
                }
            },
            s if RETRYABLE.contains(&s) => Judgement::Whole(retry(retry_after(after), attempts, now, jitter)),
            s if THROTTLED.contains(&s) => Judgement::Whole(Verdict::Drop(DropReason::Throttled)),
            // Not in the reference: polytel's rule for every HTTP backend.
            413 => Judgement::Whole(Verdict::Split),
            307 | 308 => Judgement::RedirectRefused { location: None },
            _ => Judgement::Whole(Verdict::Drop(DropReason::Rejected)),
        },
    }
}

/// One entry of a TrackResponse's `errors` (§4(c) "Response body").
#[derive(Debug, PartialEq)]
pub struct ItemError {
    pub index: usize,
    pub status: u16,
    pub message: String,
}

/// The `errors` of a TrackResponse; `None` when the body is not one.
pub fn item_errors(body: &[u8]) -> Option<Vec<ItemError>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let v = v.as_object()?;
    let Some(errors) = v.get("errors") else { return Some(Vec::new()) };
    let errors = match errors {
        Value::Null => return Some(Vec::new()),
        Value::Array(a) => a,
        _ => return None,
    };
    Some(
        errors
            .iter()
            .filter_map(|e| {
                Some(ItemError {
                    index: usize::try_from(e.get("index")?.as_u64()?).ok()?,
                    status: u16::try_from(e.get("statusCode")?.as_u64()?).ok()?,
                    message: e.get("message").and_then(Value::as_str).unwrap_or("").to_owned(),
                })
            })
            .collect(),
    )
}

/// §4(c) "Redirect": domains a redirect may lead to.
const AZURE_DOMAINS: &[&str] = &[
    "monitor.azure.com",
    "monitor.azure.us",
    "monitor.azure.cn",
    "services.visualstudio.com",
    "applicationinsights.azure.com",
    "applicationinsights.us",
    "applicationinsights.azure.cn",
];

/// Where to send next after a redirect from `current` to `location`: the
/// same path on the host the Location names (§4(c): the new host is cached
/// for later sends). `None` when the Location leads to another host outside
/// Application Insights' domains, or away from https.
pub fn redirect_url(current: &str, location: &str) -> Option<String> {
    let (scheme, rest) = current.split_once("://")?;
    let at = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(at);
    let location = location.trim();
    if location.starts_with('/') && !location.starts_with("//") {
        // A relative Location keeps the host.
        return Some(format!("{scheme}://{authority}{path}"));
    }
    let (new_scheme, new_rest) = location.split_once("://")?;
    let new_authority = new_rest.split(['/', '?', '#']).next()?;
    if new_authority.is_empty() || new_authority.contains('@') {
        return None;
    }
    let same_host = new_authority.eq_ignore_ascii_case(authority) && new_scheme.eq_ignore_ascii_case(scheme);
    if !same_host {
        let host = crate::credentials::host_without_port(new_authority).trim_end_matches('.').to_ascii_lowercase();
        let azure = AZURE_DOMAINS.iter().any(|d| host.ends_with(&format!(".{d}")));
        if !azure || !new_scheme.eq_ignore_ascii_case("https") {
            return None;
        }
    }
    Some(format!("{}://{new_authority}{path}", new_scheme.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const URL: &str = "https://dc.services.visualstudio.com/v2.1/track";

    fn response(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
        Outcome::Response { status, retry_after: retry_after.map(str::to_owned), body: body.as_bytes().to_vec() }
    }

    fn whole(status: u16) -> Judgement {
        judge(&response(status, None, ""), URL, 3, 1, 0, 0.0)
    }

    #[test]
    fn status_rows() {
        let done = Judgement::Whole(Verdict::Done { rejected: 0, message: String::new() });
        assert_eq!(
            judge(&response(200, None, r#"{"itemsReceived":3,"itemsAccepted":3,"errors":[]}"#), URL, 3, 1, 0, 0.0),
            done
        );
        assert_eq!(whole(200), done, "an empty 200 is success");
        for status in RETRYABLE {
            assert_eq!(whole(status), Judgement::Whole(Verdict::Retry { at: S / 2 }), "{status}");
        }
        assert_eq!(whole(402), Judgement::Whole(Verdict::Drop(DropReason::Throttled)));
        assert_eq!(whole(439), Judgement::Whole(Verdict::Drop(DropReason::Throttled)));
        for status in [400, 404, 301, 501] {
            assert_eq!(whole(status), Judgement::Whole(Verdict::Drop(DropReason::Rejected)), "{status}");
        }
        assert_eq!(whole(413), Judgement::Whole(Verdict::Split));
        assert_eq!(whole(307), Judgement::RedirectRefused { location: None });
        assert_eq!(whole(308), Judgement::RedirectRefused { location: None });
        assert_eq!(
            judge(&Outcome::Failed("refused".into()), URL, 3, 1, 0, 0.0),
            Judgement::Whole(Verdict::Retry { at: S / 2 })
        );
        assert_eq!(
            judge(&response(503, None, ""), URL, 3, crate::delivery::MAX_ATTEMPTS, 0, 0.0),
            Judgement::Whole(Verdict::Drop(DropReason::RetriesExhausted))
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = 784_111_777 * S; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            judge(&response(429, Some("7"), ""), URL, 3, 1, now, 0.5),
            Judgement::Whole(Verdict::Retry { at: now + 7 * S })
        );
        assert_eq!(
            judge(&response(503, Some("Sun, 06 Nov 1994 08:50:07 GMT"), ""), URL, 3, 1, now, 0.5),
            Judgement::Whole(Verdict::Retry { at: now + 30 * S })
        );
    }

    #[test]
    fn partial_success_retries_only_the_retryable() {
        let body = r#"{"itemsReceived":6,"itemsAccepted":1,"errors":[
            {"index":4,"statusCode":429,"message":"Throttled"},
            {"index":1,"statusCode":500,"message":"Internal"},
            {"index":2,"statusCode":400,"message":"Invalid field"},
            {"index":3,"statusCode":206,"message":"Telemetry sampled out."},
            {"index":5,"statusCode":402,"message":"Quota"},
            {"index":4,"statusCode":500,"message":"repeated"},
            {"index":9,"statusCode":500,"message":"out of range"}]}"#;
        let j = judge(&response(206, Some("3"), body), URL, 6, 1, 10 * S, 0.0);
        assert_eq!(
            j,
            Judgement::Partial(Partial {
                retry: vec![1, 4],
                then: Some(Verdict::Retry { at: 13 * S }),
                rejected: vec![2, 5],
                sampled_out: vec![3],
                message: "400 Invalid field".into(),
            })
        );
        let last = judge(&response(206, None, body), URL, 6, crate::delivery::MAX_ATTEMPTS, 0, 0.0);
        let Judgement::Partial(p) = last else { panic!("{last:?}") };
        assert_eq!(p.then, Some(Verdict::Drop(DropReason::RetriesExhausted)));
        let only_rejected = r#"{"errors":[{"index":0,"statusCode":400,"message":"bad"}]}"#;
        let Judgement::Partial(p) = judge(&response(206, None, only_rejected), URL, 2, 1, 0, 0.0) else { panic!() };
        assert_eq!((p.retry.len(), p.then, p.rejected), (0, None, vec![0]));
        // A 206 that cannot be read is taken as delivered: resending would duplicate the accepted.
        assert!(matches!(
            judge(&response(206, None, "<html>"), URL, 2, 1, 0, 0.0),
            Judgement::Whole(Verdict::Done { .. })
        ));
    }

    #[test]
    fn item_error_parsing() {
        assert_eq!(item_errors(b"{}"), Some(vec![]));
        assert_eq!(item_errors(br#"{"errors":null}"#), Some(vec![]));
        assert_eq!(item_errors(b"[]"), None);
        assert_eq!(item_errors(br#"{"errors":3}"#), None);
        assert_eq!(
            item_errors(
                br#"{"errors":[{"index":0,"statusCode":503},{"index":-1,"statusCode":500},{"statusCode":500}]}"#
            ),
            Some(vec![ItemError { index: 0, status: 503, message: String::new() }])
        );
    }

    #[test]
    fn redirects_stay_within_azure() {
        let rows: &[(&str, Option<&str>)] = &[
            (
                "https://westeurope-5.in.applicationinsights.azure.com/",
                Some("https://westeurope-5.in.applicationinsights.azure.com/v2.1/track"),
            ),
            (
                "https://westeurope-5.in.applicationinsights.azure.com/v2.1/track?x=1",
                Some("https://westeurope-5.in.applicationinsights.azure.com/v2.1/track"),
            ),
            (
                "https://x.livediagnostics.monitor.azure.com",
                Some("https://x.livediagnostics.monitor.azure.com/v2.1/track"),
            ),
            ("https://dc.applicationinsights.us:443/", Some("https://dc.applicationinsights.us:443/v2.1/track")),
            ("https://dc.applicationinsights.azure.cn/", Some("https://dc.applicationinsights.azure.cn/v2.1/track")),
            (
                "HTTPS://EU.IN.APPLICATIONINSIGHTS.AZURE.COM.",
                Some("https://EU.IN.APPLICATIONINSIGHTS.AZURE.COM./v2.1/track"),
            ),
            ("/elsewhere", Some(URL)),
            ("https://dc.services.visualstudio.com/other", Some(URL)),
            ("https://evil.example/", None),
            ("https://applicationinsights.azure.com.evil.example/", None),
            ("https://evilapplicationinsights.azure.com/", None),
            ("http://eu.in.applicationinsights.azure.com/", None),
            ("https://user@eu.in.applicationinsights.azure.com/", None),
            ("//eu.in.applicationinsights.azure.com/", None),
            ("not a url", None),
        ];
        for (location, expected) in rows {
            assert_eq!(redirect_url(URL, location).as_deref(), *expected, "{location}");
        }
        // The same host may redirect, even a local one over http.
        assert_eq!(
            redirect_url("http://127.0.0.1:9/v2.1/track", "http://127.0.0.1:9/x").as_deref(),
            Some("http://127.0.0.1:9/v2.1/track")
        );
        assert_eq!(redirect_url("http://127.0.0.1:9/v2.1/track", "http://127.0.0.2:9/x"), None);
        let to =
            |location: &str| judge(&Outcome::Redirect { status: 308, location: location.into() }, URL, 1, 1, 0, 0.0);
        assert_eq!(
            to("https://eu.in.applicationinsights.azure.com/"),
            Judgement::Redirect { url: "https://eu.in.applicationinsights.azure.com/v2.1/track".into() }
        );
        assert_eq!(
            to("https://evil.example/"),
            Judgement::RedirectRefused { location: Some("https://evil.example/".into()) }
        );
        assert_eq!(
            judge(
                &Outcome::Redirect { status: 302, location: "https://eu.in.applicationinsights.azure.com/".into() },
                URL,
                1,
                1,
                0,
                0.0
            ),
            Judgement::Whole(Verdict::Drop(DropReason::Rejected))
        );
    }
}
