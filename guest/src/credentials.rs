//! Vendors' credential formats: DSNs, tokens that name their region, and the
//! key shapes that change what a vendor expects. Errors never quote the
//! credential: they say which option held it and what shape was expected.

use base64::Engine as _;

/// A Sentry DSN: `https://PUBLIC_KEY@HOST[/PREFIX]/PROJECT_ID`.
#[derive(Debug, PartialEq, Eq)]
pub struct SentryDsn {
    pub public_key: String,
    /// `scheme://host[:port][/prefix]/api/PROJECT/integration/otlp`: the base
    /// that `/v1/traces` and `/v1/logs` are appended to.
    pub otlp_base: String,
}

/// Splits `scheme://userinfo@host/path?query` into its parts, each possibly empty.
struct UrlParts<'a> {
    scheme: &'a str,
    user: &'a str,
    host: &'a str,
    path: &'a str,
}

fn url_parts(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (user, host),
        None => ("", authority),
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace()) {
        return None;
    }
    Some(UrlParts { scheme, user, host, path })
}

pub fn sentry_dsn(dsn: &str) -> Option<SentryDsn> {
    let parts = url_parts(dsn.trim())?;
    // The public key is the user part; a legacy secret after ':' is not sent.
    let public_key = parts.user.split(':').next().unwrap_or("");
    let path = parts.path.trim_end_matches('/');
    let (prefix, project) = path.rsplit_once('/')?;
    if public_key.is_empty() || project.is_empty() || !project.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(SentryDsn {
        public_key: public_key.to_owned(),
        otlp_base: format!("{}://{}{prefix}/api/{project}/integration/otlp", parts.scheme, parts.host),
    })
}

/// An Uptrace DSN, `https://TOKEN@HOST[:PORT][?grpc=PORT]`: the HTTP base URL
/// and the gRPC target it names.
#[derive(Debug, PartialEq, Eq)]
pub struct UptraceDsn {
    pub http_base: String,
    pub grpc_target: String,
}

pub fn uptrace_dsn(dsn: &str) -> Option<UptraceDsn> {
    let dsn = dsn.trim();
    let parts = url_parts(dsn)?;
    if parts.user.is_empty() {
        return None;
    }
    let grpc_port = dsn
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("grpc=")))
        .filter(|p| p.parse::<u16>().is_ok())
        .unwrap_or("4317");
    let hostname = host_without_port(parts.host);
    Some(UptraceDsn {
        http_base: format!("{}://{}", parts.scheme, parts.host),
        grpc_target: format!("{}://{hostname}:{grpc_port}", parts.scheme),
    })
}

/// The host of `host[:port]` or `[v6]:port`.
pub fn host_without_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(h, _)| h)
}

/// The host of an http(s) URL, without user information or port.
pub fn url_host(url: &str) -> Option<&str> {
    url_parts(url).map(|p| host_without_port(p.host))
}

/// Whether `host` is this machine: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// The URL with any user information (`user:password@`) replaced by `***@`,
/// for messages and descriptions.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The region a Logfire write token names: `pylf_v{n}_{region}_…`; `us` for
/// tokens without one.
pub fn logfire_region(token: &str) -> Option<&str> {
    let mut parts = token.split('_');
    if parts.next()? != "pylf" {
        return Some("us");
    }
    let version = parts.next()?;
    if !version.starts_with('v') {
        return None;
    }
    let region = parts.next()?;
    match region {
        "us" | "eu" => Some(region),
        _ => None,
    }
}

/// Whether a Honeycomb API key is a classic key (32 hex characters, or 64
/// characters of the form `hc?ic_…`): those need the dataset header on traces.
pub fn honeycomb_classic(key: &str) -> bool {
    let hex32 = key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit());
    let ingest64 = key.len() == 64
        && key.starts_with("hc")
        && key.as_bytes()[2].is_ascii_lowercase()
        && key[3..].starts_with("ic_")
        && key[6..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    hex32 || ingest64
}

/// `Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentry_dsns() {
        assert_eq!(
            sentry_dsn("https://PUBLICKEY@o123.ingest.us.sentry.io/456"),
            Some(SentryDsn {
                public_key: "PUBLICKEY".into(),
                otlp_base: "https://o123.ingest.us.sentry.io/api/456/integration/otlp".into()
            })
        );
        assert_eq!(
            sentry_dsn("https://k:legacysecret@sentry.example.com:9000/prefix/7/").unwrap().otlp_base,
            "https://sentry.example.com:9000/prefix/api/7/integration/otlp"
        );
        assert_eq!(sentry_dsn("https://k:legacysecret@h/7").unwrap().public_key, "k");
        for bad in ["", "o123.ingest.sentry.io/456", "https://@h/1", "https://k@h", "https://k@h/abc", "ftp://k@h/1"] {
            assert_eq!(sentry_dsn(bad), None, "{bad}");
        }
    }

    #[test]
    fn uptrace_dsns() {
        assert_eq!(
            uptrace_dsn("https://secret@api.uptrace.dev?grpc=4317"),
            Some(UptraceDsn {
                http_base: "https://api.uptrace.dev".into(),
                grpc_target: "https://api.uptrace.dev:4317".into()
            })
        );
        assert_eq!(
            uptrace_dsn("http://tok@localhost:14318?grpc=14317"),
            Some(UptraceDsn {
                http_base: "http://localhost:14318".into(),
                grpc_target: "http://localhost:14317".into()
            })
        );
        assert_eq!(uptrace_dsn("https://api.uptrace.dev"), None, "no token");
    }

    #[test]
    fn loopback_hosts() {
        for yes in ["localhost", "LOCALHOST.", "127.0.0.1", "127.8.9.10", "::1", "app.localhost"] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in ["10.0.0.1", "collector", "localhost.example.com", "128.0.0.1", "0.0.0.0"] {
            assert!(!is_loopback(no), "{no}");
        }
        assert_eq!(url_host("http://u:p@[::1]:4318/x"), Some("::1"));
        assert_eq!(url_host("https://api.honeycomb.io/v1/traces"), Some("api.honeycomb.io"));
        assert_eq!(url_host("http://127.0.0.1:4318"), Some("127.0.0.1"));
    }

    #[test]
    fn urls_lose_their_user_information() {
        assert_eq!(redact_url("https://user:pw@host:1/p?q=a@b"), "https://***@host:1/p?q=a@b");
        assert_eq!(redact_url("https://host/p@x"), "https://host/p@x");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn logfire_regions() {
        assert_eq!(logfire_region("pylf_v1_eu_abcdef"), Some("eu"));
        assert_eq!(logfire_region("pylf_v2_us_abcdef"), Some("us"));
        assert_eq!(logfire_region("oldstyletoken"), Some("us"));
        assert_eq!(logfire_region("pylf_v1_mars_abc"), None);
        assert_eq!(logfire_region("pylf_x"), None);
    }

    #[test]
    fn honeycomb_key_kinds() {
        assert!(honeycomb_classic("0123456789abcdef0123456789ABCDEF"));
        assert!(honeycomb_classic(&format!("hcaic_{}", "a1".repeat(29))));
        assert!(!honeycomb_classic("hcaik_01hq3fbahv6f2qf7q1qxqs4kcs"));
        assert!(!honeycomb_classic("0123456789abcdef0123456789abcdeg"));
        assert!(!honeycomb_classic(&format!("hcaik_{}", "a1".repeat(29))));
    }

    #[test]
    fn basic_auth_header() {
        assert_eq!(basic_auth("123456", "glc_token"), "Basic MTIzNDU2OmdsY190b2tlbg==");
    }
}
