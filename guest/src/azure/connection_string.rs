//! The Application Insights connection string (shared/reference/azure-monitor.md
//! §4(a)): `Key1=Value1;Key2=Value2;…`, keys case-insensitive. Stricter and
//! kinder than the official parser (§4(a) "Parser pitfalls"): empty pairs (a
//! trailing `;`) are skipped, a value is everything after the first `=` so it
//! may itself contain `=`, and every error is one sentence that never quotes
//! the string, since the instrumentation key in it is a credential.

use std::fmt;

use crate::routes::check_url;
use crate::secret::Secret;

/// §4(a) "Defaults when keys are absent": the global ingestion endpoint.
pub const DEFAULT_INGESTION: &str = "https://dc.services.visualstudio.com";
/// §4(a): the global Live Metrics endpoint.
pub const DEFAULT_LIVE: &str = "https://rt.services.visualstudio.com";
/// §4(a) "Format": the MS docs' maximum length.
pub const MAX_LENGTH: usize = 4096;

/// What a connection string says, with the endpoints resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// A GUID; it travels inside every envelope (`iKey`, §4(b)).
    pub instrumentation_key: Secret,
    /// The base URL `/v2.1/track` is appended to, without a trailing `/`.
    pub ingestion_endpoint: String,
    /// The base URL of Live Metrics, without a trailing `/`.
    pub live_endpoint: String,
    /// Set by the portal; not needed to send (§4(a) "Keys").
    pub application_id: Option<String>,
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("instrumentation_key", &self.instrumentation_key)
            .field("ingestion_endpoint", &self.ingestion_endpoint)
            .field("live_endpoint", &self.live_endpoint)
            .field("application_id", &self.application_id)
            .finish()
    }
}

/// `where_` names the setting in errors, e.g. "The connection string
/// (azure_monitor_connection_string / APPLICATIONINSIGHTS_CONNECTION_STRING)".
pub fn parse(text: &str, where_: &str) -> Result<ConnectionString, String> {
    if text.chars().count() > MAX_LENGTH {
        return Err(format!("{where_} is longer than the {MAX_LENGTH} characters Application Insights allows; copy it again from the resource's Overview page."));
    }
    let mut key = None;
    let mut ingestion = None;
    let mut live = None;
    let mut suffix = None;
    let mut location = None;
    let mut application_id = None;
    let mut authorization = None;
    for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(format!(
                "{where_} has a part without '=' in it; it must be Key=Value pairs separated by ';', as the portal shows it."
            ));
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        // A later repeat of a key replaces an earlier one, as in a dictionary.
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "instrumentationkey" => &mut key,
            "ingestionendpoint" => &mut ingestion,
            "liveendpoint" => &mut live,
            "endpointsuffix" => &mut suffix,
            "location" => &mut location,
            "applicationid" => &mut application_id,
            "authorization" => &mut authorization,
            // AADAudience, ProfilerEndpoint, SnapshotEndpoint and keys yet to
            // come are not needed to send telemetry.
            _ => continue,
        };
        *slot = Some(value);
    }
    let key = key.ok_or_else(|| {
        format!("{where_} has no InstrumentationKey; copy the whole connection string from the Application Insights resource's Overview page.")
    })?;
    if !is_guid(key) {
        return Err(format!(
            "{where_} has an InstrumentationKey that is not a GUID (8-4-4-4-12 hexadecimal digits); copy it again from the resource's Overview page."
        ));
    }
    // §4(a): the Python parser accepts only `ikey`; Entra ID is configured
    // apart, so any other mechanism here is a mistake worth naming.
    if let Some(auth) = authorization.filter(|a| !a.eq_ignore_ascii_case("ikey")) {
        let shown = if auth.len() <= 16 && auth.bytes().all(|b| b.is_ascii_alphanumeric()) { auth } else { "another" };
        return Err(format!(
            "{where_} names the authorization mechanism {shown:?}, but only ikey is supported there; remove Authorization from it."
        ));
    }
    let suffix = suffix.map(|s| s.trim_matches(|c| c == '.' || c == '/'));
    let location = location.map(|l| l.trim_matches('.'));
    let prefixed = |service: &str| -> Option<String> {
        let suffix = suffix.filter(|s| !s.is_empty())?;
        Some(match location.filter(|l| !l.is_empty()) {
            Some(l) => format!("https://{l}.{service}.{suffix}"),
            None => format!("https://{service}.{suffix}"),
        })
    };
    let endpoint = |given: Option<&str>, what: &str, service: &str, default: &str| -> Result<String, String> {
        let url = match given {
            Some(u) => u.to_owned(),
            None => prefixed(service).unwrap_or_else(|| default.to_owned()),
        };
        check_url(&url).map_err(|why| format!("{where_} has a {what} that {why}; it should look like https://westeurope-5.in.applicationinsights.azure.com/."))?;
        Ok(url.trim_end_matches('/').to_owned())
    };
    Ok(ConnectionString {
        instrumentation_key: Secret::new(key.to_owned()),
        ingestion_endpoint: endpoint(ingestion, "IngestionEndpoint", "dc", DEFAULT_INGESTION)?,
        live_endpoint: endpoint(live, "LiveEndpoint", "live", DEFAULT_LIVE)?,
        application_id: application_id.map(str::to_owned),
    })
}

/// §4(a): `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`;
/// upper-case digits are accepted too, since a GUID's case carries no meaning.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The Azure region an ingestion endpoint names (§4(a) "Region"):
/// `https://westeurope-5.in.applicationinsights.azure.com` → `westeurope`.
pub fn region(ingestion_endpoint: &str) -> Option<&str> {
    let host = ingestion_endpoint.strip_prefix("https://")?.split(['/', ':']).next()?;
    let first = host.strip_suffix(".in.applicationinsights.azure.com")?;
    let name = match first.split_once('-') {
        Some((name, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => first,
    };
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "00000000-0000-0000-0000-000000000000";
    const WHERE: &str = "The connection string";

    /// (connection string, ingestion endpoint, live endpoint)
    const VALID: &[(&str, &str, &str)] = &[
        // The example of §4(a).
        (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/;ApplicationId=11111111-1111-1111-1111-111111111111",
            "https://westeurope-5.in.applicationinsights.azure.com",
            "https://westeurope.livediagnostics.monitor.azure.com",
        ),
        // Only the key: the global defaults.
        ("InstrumentationKey=00000000-0000-0000-0000-000000000000", DEFAULT_INGESTION, DEFAULT_LIVE),
        // Keys in any case, spaces around pairs, a trailing ';', empty pairs.
        (
            " instrumentationkey = 00000000-0000-0000-0000-000000000000 ;;INGESTIONENDPOINT=https://x.example/; ",
            "https://x.example",
            DEFAULT_LIVE,
        ),
        // EndpointSuffix alone, and with a Location (China, Government clouds).
        (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;EndpointSuffix=applicationinsights.azure.cn",
            "https://dc.applicationinsights.azure.cn",
            "https://live.applicationinsights.azure.cn",
        ),
        (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;EndpointSuffix=applicationinsights.us;Location=usgovvirginia",
            "https://usgovvirginia.dc.applicationinsights.us",
            "https://usgovvirginia.live.applicationinsights.us",
        ),
        // An explicit endpoint beats the suffix; the suffix still gives live.
        (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;EndpointSuffix=applicationinsights.us;IngestionEndpoint=https://in.example",
            "https://in.example",
            "https://live.applicationinsights.us",
        ),
        // A Location without a suffix changes nothing.
        ("InstrumentationKey=00000000-0000-0000-0000-000000000000;Location=westus", DEFAULT_INGESTION, DEFAULT_LIVE),
        // Values may contain '='; unknown keys and empty values are skipped.
        (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://in.example/p?a=b=c;AADAudience=https://monitor.azure.com/;ProfilerEndpoint=",
            "https://in.example/p?a=b=c",
            DEFAULT_LIVE,
        ),
        ("Authorization=ikey;InstrumentationKey=00000000-0000-0000-0000-00000000ABCD", DEFAULT_INGESTION, DEFAULT_LIVE),
    ];

    #[test]
    fn valid_strings() {
        for (text, ingestion, live) in VALID {
            let c = parse(text, WHERE).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((c.ingestion_endpoint.as_str(), c.live_endpoint.as_str()), (*ingestion, *live), "{text}");
            assert!(is_guid(c.instrumentation_key.expose()), "{text}");
        }
        let c = parse(VALID[0].0, WHERE).unwrap();
        assert_eq!(c.instrumentation_key.expose(), KEY);
        assert_eq!(c.application_id.as_deref(), Some("11111111-1111-1111-1111-111111111111"));
    }

    /// (connection string, a phrase the error must contain)
    const INVALID: &[(&str, &str)] = &[
        ("", "no InstrumentationKey"),
        (";;", "no InstrumentationKey"),
        ("IngestionEndpoint=https://x.example", "no InstrumentationKey"),
        ("InstrumentationKey=", "no InstrumentationKey"),
        ("InstrumentationKey=SECRETNOTAGUID", "not a GUID"),
        ("InstrumentationKey=00000000-0000-0000-0000-00000000000g", "not a GUID"),
        ("InstrumentationKey=00000000000000000000000000000000", "not a GUID"),
        ("InstrumentationKey=00000000-0000-0000-0000-000000000000;garbage", "without '='"),
        ("InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=ftp://x", "IngestionEndpoint"),
        ("InstrumentationKey=00000000-0000-0000-0000-000000000000;LiveEndpoint=nohost", "LiveEndpoint"),
        ("InstrumentationKey=00000000-0000-0000-0000-000000000000;Authorization=AAD", "\"AAD\""),
    ];

    #[test]
    fn invalid_strings_fail_in_one_sentence_without_the_key() {
        for (text, phrase) in INVALID {
            let e = parse(text, WHERE).expect_err(text);
            assert!(e.contains(phrase), "{text}: {e}");
            assert!(e.starts_with(WHERE) && e.ends_with('.') && !e.contains(". "), "one sentence: {e}");
            assert!(!e.contains("SECRET") && !e.contains("0000-0000"), "quotes the key: {e}");
        }
        let long = format!("InstrumentationKey={KEY};{}", "x=y;".repeat(1100));
        assert!(parse(&long, WHERE).unwrap_err().contains("4096"));
    }

    #[test]
    fn debug_masks_the_key() {
        let c = parse(VALID[0].0, WHERE).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains(KEY) && shown.contains("0000… (36 chars)"), "{shown}");
    }

    #[test]
    fn guids_and_regions() {
        for (text, guid) in [
            (KEY, true),
            ("0a1B2c3D-0000-0000-0000-000000000000", true),
            ("00000000-0000-0000-0000-0000000000000", false),
            ("00000000-0000-0000-0000", false),
            ("{00000000-0000-0000-0000-000000000000}", false),
            ("", false),
        ] {
            assert_eq!(is_guid(text), guid, "{text}");
        }
        for (endpoint, expected) in [
            ("https://westeurope-5.in.applicationinsights.azure.com", Some("westeurope")),
            ("https://eastus.in.applicationinsights.azure.com/", Some("eastus")),
            ("https://dc.services.visualstudio.com", None),
            ("https://westeurope-x.in.applicationinsights.azure.com", None),
        ] {
            assert_eq!(region(endpoint), expected, "{endpoint}");
        }
    }
}
