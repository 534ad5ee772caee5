//! Backend presets: what each vendor's OTLP intake needs, per signal — URL,
//! headers, encodings, gRPC target, request size cap — and what it prefers
//! (temporality). The facts come from shared/reference/presets.md; each preset
//! below names the section it follows.

use std::collections::BTreeMap;

use crate::azure::connection_string::{self, ConnectionString};
use crate::config::{Signal, Temporality};
use crate::credentials::{basic_auth, honeycomb_classic, logfire_region, redact_url, sentry_dsn, uptrace_dsn};
use crate::env::Env;
use crate::routes::{check_url, signal_url};
use crate::secret::Secret;

/// A setting a preset reads: an option, else the first environment variable set.
pub struct Key {
    pub option: &'static str,
    pub env: &'static [&'static str],
    /// What it is, for "needs {what}" errors.
    what: &'static str,
}

const fn key(option: &'static str, env: &'static [&'static str], what: &'static str) -> Key {
    Key { option, env, what }
}

const SENTRY_DSN: Key = key("sentry_dsn", &["SENTRY_DSN"], "a DSN");
const HONEYCOMB_API_KEY: Key = key("honeycomb_api_key", &["HONEYCOMB_API_KEY"], "an API key");
const HONEYCOMB_TRACES_API_KEY: Key = key("honeycomb_traces_api_key", &["HONEYCOMB_TRACES_API_KEY"], "an API key");
const HONEYCOMB_METRICS_API_KEY: Key = key("honeycomb_metrics_api_key", &["HONEYCOMB_METRICS_API_KEY"], "an API key");
const HONEYCOMB_DATASET: Key = key("honeycomb_dataset", &["HONEYCOMB_DATASET"], "a dataset");
const HONEYCOMB_METRICS_DATASET: Key = key("honeycomb_metrics_dataset", &["HONEYCOMB_METRICS_DATASET"], "a dataset");
const HONEYCOMB_REGION: Key = key("honeycomb_region", &[], "a region");
const DATADOG_API_KEY: Key = key("datadog_api_key", &["DD_API_KEY"], "an API key");
const DATADOG_SITE: Key = key("datadog_site", &["DD_SITE"], "a site");
const DATADOG_OTLP_SOURCE: Key = key("datadog_otlp_source", &["DD_OTLP_SOURCE"], "the dd-otlp-source value");
const DATADOG_AGENT_HOST: Key = key("datadog_agent_host", &["DD_AGENT_HOST"], "a host");
const GRAFANA_CLOUD_ZONE: Key = key("grafana_cloud_zone", &["GRAFANA_CLOUD_ZONE"], "a zone");
const GRAFANA_CLOUD_INSTANCE_ID: Key =
    key("grafana_cloud_instance_id", &["GRAFANA_CLOUD_INSTANCE_ID"], "an instance id");
const GRAFANA_CLOUD_TOKEN: Key = key("grafana_cloud_token", &["GRAFANA_CLOUD_TOKEN"], "an access policy token");
const AXIOM_TOKEN: Key = key("axiom_token", &["AXIOM_TOKEN"], "an API token");
const AXIOM_DATASET: Key = key("axiom_dataset", &["AXIOM_DATASET"], "a dataset");
const AXIOM_METRICS_DATASET: Key = key("axiom_metrics_dataset", &["AXIOM_METRICS_DATASET"], "a metrics dataset");
const AXIOM_REGION: Key = key("axiom_region", &[], "a region");
const NEWRELIC_LICENSE_KEY: Key = key("newrelic_license_key", &["NEW_RELIC_LICENSE_KEY"], "a license key");
const NEWRELIC_REGION: Key = key("newrelic_region", &[], "a region");
const AZURE_CONNECTION_STRING: Key =
    key("azure_monitor_connection_string", &["APPLICATIONINSIGHTS_CONNECTION_STRING"], "a connection string");
/// azure-monitor.md §4(e): Live Metrics is on unless this is "false". The
/// reference names no environment variable for it, so it is an option only.
const AZURE_LIVE_METRICS: Key = key("azure_monitor_live_metrics", &[], "true or false");
const ELASTIC_SECRET_TOKEN: Key = key("elastic_secret_token", &["ELASTIC_APM_SECRET_TOKEN"], "a secret token");
const ELASTIC_API_KEY: Key = key("elastic_api_key", &["ELASTIC_APM_API_KEY"], "an API key");
const DYNATRACE_API_TOKEN: Key = key("dynatrace_api_token", &["DT_API_TOKEN"], "an API token");
const DYNATRACE_ENVIRONMENT_ID: Key = key("dynatrace_environment_id", &["DT_ENVIRONMENT_ID"], "an environment id");
const LANGFUSE_PUBLIC_KEY: Key = key("langfuse_public_key", &["LANGFUSE_PUBLIC_KEY"], "a public key");
const LANGFUSE_SECRET_KEY: Key = key("langfuse_secret_key", &["LANGFUSE_SECRET_KEY"], "a secret key");
const LANGFUSE_REGION: Key = key("langfuse_region", &[], "a region");
const LOGFIRE_TOKEN: Key = key("logfire_token", &["LOGFIRE_TOKEN"], "a write token");
const SIGNOZ_INGESTION_KEY: Key = key("signoz_ingestion_key", &["SIGNOZ_INGESTION_KEY"], "an ingestion key");
const SIGNOZ_REGION: Key = key("signoz_region", &[], "a region");
const UPTRACE_DSN: Key = key("uptrace_dsn", &["UPTRACE_DSN"], "a DSN");
const TENANT_ID: Key = key("tenant_id", &[], "a tenant id");
/// azure-monitor.md §4(a): the legacy variable, an instrumentation key alone.
const LEGACY_INSTRUMENTATION_KEY: &str = "APPINSIGHTS_INSTRUMENTATIONKEY";

/// Every preset setting, for reading options and config files.
pub const KEYS: &[Key] = &[
    SENTRY_DSN,
    HONEYCOMB_API_KEY,
    HONEYCOMB_TRACES_API_KEY,
    HONEYCOMB_METRICS_API_KEY,
    HONEYCOMB_DATASET,
    HONEYCOMB_METRICS_DATASET,
    HONEYCOMB_REGION,
    DATADOG_API_KEY,
    DATADOG_SITE,
    DATADOG_OTLP_SOURCE,
    DATADOG_AGENT_HOST,
    GRAFANA_CLOUD_ZONE,
    GRAFANA_CLOUD_INSTANCE_ID,
    GRAFANA_CLOUD_TOKEN,
    AXIOM_TOKEN,
    AXIOM_DATASET,
    AXIOM_METRICS_DATASET,
    AXIOM_REGION,
    NEWRELIC_LICENSE_KEY,
    NEWRELIC_REGION,
    AZURE_CONNECTION_STRING,
    AZURE_LIVE_METRICS,
    ELASTIC_SECRET_TOKEN,
    ELASTIC_API_KEY,
    DYNATRACE_API_TOKEN,
    DYNATRACE_ENVIRONMENT_ID,
    LANGFUSE_PUBLIC_KEY,
    LANGFUSE_SECRET_KEY,
    LANGFUSE_REGION,
    LOGFIRE_TOKEN,
    SIGNOZ_INGESTION_KEY,
    SIGNOZ_REGION,
    UPTRACE_DSN,
    TENANT_ID,
];

/// The preset names, as `backend` takes them.
pub const NAMES: &[&str] = &[
    "otlp",
    "sentry",
    "honeycomb",
    "datadog",
    "datadog-agent",
    "grafana-cloud",
    "axiom",
    "newrelic",
    "azure-monitor",
    "elastic",
    "dynatrace",
    "langfuse",
    "logfire",
    "jaeger",
    "tempo",
    "loki",
    "prometheus",
    "signoz",
    "uptrace",
];

/// The OTLP specification's default cap on a request body (exporter.md).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 << 20;

/// Where one signal goes at one backend.
#[derive(Clone, Debug)]
pub struct Target {
    /// The OTLP/HTTP URL.
    pub url: String,
    /// The OTLP/gRPC target ("https://host:port"), where the backend takes gRPC.
    pub grpc: Option<String>,
    /// Values the backend needs; credentials are secret, the rest public.
    pub headers: Vec<(String, Secret)>,
    /// Whether http/json is accepted (protobuf always is).
    pub json: bool,
    pub max_request_bytes: usize,
}

/// A backend, resolved from its settings.
#[derive(Debug)]
pub struct Preset {
    pub name: &'static str,
    /// Per signal (traces, metrics, logs): where it goes, or why it cannot.
    pub targets: [Result<Target, String>; 3],
    /// The temporality the backend wants, unless the user chose one.
    pub temporality: Option<Temporality>,
    /// The backend rejects cumulative metrics.
    pub delta_only: bool,
    /// Application Insights' connection string: the backend takes Azure
    /// Monitor envelopes (`crate::azure`), not OTLP, at each target's URL.
    pub azure: Option<ConnectionString>,
    /// Application Insights' Live Metrics (§4(e)) is on.
    pub azure_live_metrics: bool,
}

impl Preset {
    pub fn target(&self, signal: Signal) -> &Result<Target, String> {
        &self.targets[signal_index(signal)]
    }
}

fn signal_index(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

/// What resolving a preset reads.
pub struct Inputs<'a, 'e> {
    /// Preset settings from options (and the config file), by option name.
    pub settings: &'a BTreeMap<String, String>,
    pub env: &'a mut Env<'e>,
    /// The base URL the user gave for this backend (`/v1/<signal>` is appended).
    pub endpoint: Option<String>,
    /// Whether the generic OTEL_EXPORTER_OTLP_ENDPOINT may supply the base URL
    /// of a self-hosted backend (it is the only OTLP destination).
    pub single: bool,
    /// service.name, for Honeycomb's dataset defaults.
    pub service_name: &'a str,
}

impl Inputs<'_, '_> {
    fn get(&self, key: &Key) -> Option<String> {
        let from_option = self.settings.get(key.option).map(|v| v.trim()).filter(|v| !v.is_empty());
        from_option.or_else(|| self.env.first(key.env).map(|(_, v)| v)).map(str::to_owned)
    }

    fn require(&self, backend: &str, key: &Key) -> Result<String, String> {
        self.get(key).ok_or_else(|| format!("The {backend} backend needs {}: {}.", key.what, where_to_set(key)))
    }

    /// One of a fixed set of values (lower-cased), or `default`.
    fn choice(&self, backend: &str, key: &Key, allowed: &[&str], default: &str) -> Result<String, String> {
        match self.get(key) {
            None => Ok(default.to_owned()),
            Some(v) if allowed.contains(&v.to_ascii_lowercase().as_str()) => Ok(v.to_ascii_lowercase()),
            Some(v) => Err(format!(
                "The {backend} option {} is {v:?}; use one of {}.",
                key.option,
                allowed.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The base URL: the user's, else the first of `env` set, else `default`.
    fn base(&self, env: &[&str], default: impl FnOnce() -> Result<String, String>) -> Result<String, String> {
        if let Some(endpoint) = &self.endpoint {
            return Ok(endpoint.clone());
        }
        match self.env.first(env) {
            Some((name, v)) => {
                check_url(v).map_err(|why| format!("{name} {:?} {why}.", redact_url(v)))?;
                Ok(v.to_owned())
            }
            None => default(),
        }
    }

    /// The base URL of a self-hosted backend: the user's, else the generic
    /// OTEL_EXPORTER_OTLP_ENDPOINT when this is the only destination, else `default`.
    fn self_hosted_base(&self, default: &str) -> Result<String, String> {
        if let Some(endpoint) = &self.endpoint {
            return Ok(endpoint.clone());
        }
        match self.env.get("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|_| self.single) {
            Some(v) => {
                check_url(v).map_err(|why| format!("OTEL_EXPORTER_OTLP_ENDPOINT {:?} {why}.", redact_url(v)))?;
                Ok(v.to_owned())
            }
            None => Ok(default.to_owned()),
        }
    }
}

/// "set the option X or the environment variable Y".
pub fn where_to_set(key: &Key) -> String {
    match key.env {
        [] => format!("set the option {}", key.option),
        [one] => format!("set the option {} or the environment variable {one}", key.option),
        many => format!("set the option {} or one of the environment variables {}", key.option, many.join(", ")),
    }
}

fn secret(name: &str, value: String) -> (String, Secret) {
    (name.to_owned(), Secret::new(value))
}

fn public(name: &str, value: String) -> (String, Secret) {
    (name.to_owned(), Secret::public(value))
}

/// The same target for every signal, with `per_signal` adjusting each.
fn all_signals(
    base: &str,
    grpc: Option<String>,
    headers: Vec<(String, Secret)>,
    json: bool,
    mut per_signal: impl FnMut(Signal, &mut Target) -> Result<(), String>,
) -> [Result<Target, String>; 3] {
    Signal::ALL.map(|signal| {
        let mut t = Target {
            url: signal_url(base, signal),
            grpc: grpc.clone(),
            headers: headers.clone(),
            json,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        };
        per_signal(signal, &mut t).map(|()| t)
    })
}

fn only(signal: Signal, backend: &str, target: Target) -> [Result<Target, String>; 3] {
    Signal::ALL.map(|s| {
        if s == signal {
            Ok(target.clone())
        } else {
            Err(format!("{backend} takes only {}, so {} are not sent there.", signal.path(), s.path()))
        }
    })
}

/// A self-hosted receiver's gRPC target: its host on port 4317.
fn grpc_4317(base: &str) -> Option<String> {
    let (scheme, rest) = base.split_once("://")?;
    let authority = rest.split('/').next()?;
    let host = crate::credentials::host_without_port(authority);
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
    Some(format!("{scheme}://{host}:4317"))
}

/// The origin (`scheme://host[:port]`) of a URL, as a gRPC target.
fn origin(base: &str) -> Option<String> {
    let (scheme, rest) = base.split_once("://")?;
    Some(format!("{scheme}://{}", rest.split('/').next()?))
}

pub fn resolve(name: &str, inputs: &mut Inputs) -> Result<Preset, String> {
    let name = NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("There is no backend named {name:?}; use one of {}.", NAMES.join(", ")))?;
    let preset = |targets, temporality, delta_only| Preset {
        name,
        targets,
        temporality,
        delta_only,
        azure: None,
        azure_live_metrics: false,
    };
    Ok(match *name {
        // §2.1: DSN → per-signal URLs; traces and logs only.
        "sentry" => {
            let dsn = inputs.require("sentry", &SENTRY_DSN)?;
            let dsn = sentry_dsn(&dsn).ok_or_else(|| {
                format!(
                    "The Sentry DSN ({} / {}) is not of the form https://PUBLIC_KEY@HOST/PROJECT_ID.",
                    SENTRY_DSN.option, SENTRY_DSN.env[0]
                )
            })?;
            let base = inputs.base(&[], || Ok(dsn.otlp_base.clone()))?;
            let auth = vec![secret("x-sentry-auth", format!("sentry sentry_key={}", dsn.public_key))];
            preset(
                all_signals(&base, None, auth, true, |s, _| match s {
                    Signal::Metrics => Err("Sentry takes no OTLP metrics, so metrics are not sent to sentry.".into()),
                    _ => Ok(()),
                }),
                None,
                false,
            )
        }
        // §2.2: one key for all signals (or per signal); datasets by key kind.
        "honeycomb" => {
            let key = inputs.get(&HONEYCOMB_API_KEY);
            let traces_key = inputs.get(&HONEYCOMB_TRACES_API_KEY).or_else(|| key.clone());
            let metrics_key = inputs.get(&HONEYCOMB_METRICS_API_KEY).or_else(|| key.clone());
            if key.is_none() && traces_key.is_none() && metrics_key.is_none() {
                return Err(inputs.require("honeycomb", &HONEYCOMB_API_KEY).unwrap_err());
            }
            let region = inputs.choice("honeycomb", &HONEYCOMB_REGION, &["us", "eu"], "us")?;
            let host = if region == "eu" { "api.eu1.honeycomb.io" } else { "api.honeycomb.io" };
            let base = inputs.base(&["HONEYCOMB_API_ENDPOINT"], || Ok(format!("https://{host}")))?;
            let grpc = origin(&base).map(|o| if o.matches(':').count() > 1 { o } else { format!("{o}:443") });
            let dataset = inputs.get(&HONEYCOMB_DATASET);
            let metrics_dataset = inputs
                .get(&HONEYCOMB_METRICS_DATASET)
                .or_else(|| dataset.clone())
                .unwrap_or_else(|| inputs.service_name.to_owned());
            let missing_key = |signal: &str| {
                format!("The honeycomb backend has no API key for {signal}: {}.", where_to_set(&HONEYCOMB_API_KEY))
            };
            // Environment keys take the traces dataset from service.name; classic keys need it named.
            let classic = traces_key.as_deref().is_some_and(honeycomb_classic);
            if classic && dataset.is_none() {
                return Err(format!(
                    "A classic Honeycomb key needs a dataset for traces: {}.",
                    where_to_set(&HONEYCOMB_DATASET)
                ));
            }
            let logs_key = key.clone().or_else(|| traces_key.clone());
            let targets = all_signals(&base, grpc, Vec::new(), true, |signal, t| {
                let (api_key, dataset) = match signal {
                    Signal::Traces => (traces_key.clone(), dataset.clone().filter(|_| classic)),
                    Signal::Metrics => (metrics_key.clone(), Some(metrics_dataset.clone())),
                    Signal::Logs => (logs_key.clone(), dataset.clone()),
                };
                t.headers.push(secret("x-honeycomb-team", api_key.ok_or_else(|| missing_key(signal.path()))?));
                if let Some(d) = dataset {
                    t.headers.push(public("x-honeycomb-dataset", d));
                }
                Ok(())
            });
            preset(targets, None, false)
        }
        // §2.3: agentless intake by site; delta metrics; protobuf for traces and logs.
        "datadog" => {
            let api_key = inputs.get(&DATADOG_API_KEY).ok_or_else(|| {
                format!(
                    "The datadog backend needs an API key: {} (or use the datadog-agent backend to send through a local Agent).",
                    where_to_set(&DATADOG_API_KEY)
                )
            })?;
            let site = inputs.get(&DATADOG_SITE).unwrap_or_else(|| "datadoghq.com".into());
            if site == "ddog-gov.com" {
                return Err("Datadog lists no OTLP intake for ddog-gov.com; send through a local Agent with the datadog-agent backend.".into());
            }
            let base = inputs.base(&[], || Ok(format!("https://otlp.{site}")))?;
            let source = inputs.get(&DATADOG_OTLP_SOURCE);
            let headers = vec![secret("dd-api-key", api_key)];
            preset(
                all_signals(&base, None, headers, false, |signal, t| {
                    match signal {
                        Signal::Traces => {
                            let source = source.clone().ok_or_else(|| {
                                format!(
                                    "Datadog's OTLP traces intake needs the dd-otlp-source value Datadog gives your organisation ({}), so traces are not sent to datadog.",
                                    where_to_set(&DATADOG_OTLP_SOURCE)
                                )
                            })?;
                            t.headers.push(public("dd-otlp-source", source));
                            t.max_request_bytes = 3_200_000;
                        }
                        Signal::Metrics => {
                            t.json = true;
                            t.max_request_bytes = 500_000;
                        }
                        Signal::Logs => {}
                    }
                    Ok(())
                }),
                Some(Temporality::Delta),
                true,
            )
        }
        // §2.3: the local Agent's OTLP receiver; it holds the API key.
        "datadog-agent" => {
            let host = inputs.get(&DATADOG_AGENT_HOST).unwrap_or_else(|| "localhost".into());
            let base = inputs.self_hosted_base(&format!("http://{host}:4318"))?;
            let grpc = grpc_4317(&base);
            preset(all_signals(&base, grpc, Vec::new(), true, |_, _| Ok(())), Some(Temporality::Delta), false)
        }
        // §2.4: zone + instance id + token → Basic auth; HTTP only.
        "grafana-cloud" => {
            let instance = inputs.require("grafana-cloud", &GRAFANA_CLOUD_INSTANCE_ID)?;
            let token = inputs.require("grafana-cloud", &GRAFANA_CLOUD_TOKEN)?;
            if !instance.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "The grafana-cloud instance id ({}) must be the stack's numeric instance id.",
                    GRAFANA_CLOUD_INSTANCE_ID.option
                ));
            }
            let base = inputs.base(&[], || {
                let zone = inputs.require("grafana-cloud", &GRAFANA_CLOUD_ZONE).map_err(|e| {
                    format!(
                        "{} (or give the full endpoint, such as https://otlp-gateway-prod-us-east-0.grafana.net/otlp).",
                        e.trim_end_matches('.')
                    )
                })?;
                Ok(format!("https://otlp-gateway-{zone}.grafana.net/otlp"))
            })?;
            let headers = vec![secret("Authorization", basic_auth(&instance, &token))];
            preset(all_signals(&base, None, headers, true, |_, _| Ok(())), Some(Temporality::Cumulative), false)
        }
        // §2.5: edge domains; a dataset header per kind; metrics protobuf only.
        "axiom" => {
            let token = inputs.require("axiom", &AXIOM_TOKEN)?;
            let dataset = inputs.require("axiom", &AXIOM_DATASET)?;
            let region = inputs.choice("axiom", &AXIOM_REGION, &["us", "eu"], "us")?;
            let domain = if region == "eu" { "eu-central-1.aws.edge.axiom.co" } else { "us-east-1.aws.edge.axiom.co" };
            let base = inputs.base(&[], || Ok(format!("https://{domain}")))?;
            let metrics_dataset = inputs.get(&AXIOM_METRICS_DATASET);
            let headers = vec![secret("Authorization", format!("Bearer {token}"))];
            preset(
                all_signals(&base, None, headers, true, |signal, t| {
                    if signal == Signal::Metrics {
                        let d = metrics_dataset.clone().ok_or_else(|| {
                            format!(
                                "Axiom keeps metrics in a dataset of their own ({}), so metrics are not sent to axiom.",
                                where_to_set(&AXIOM_METRICS_DATASET)
                            )
                        })?;
                        t.headers.push(public("x-axiom-metrics-dataset", d));
                        t.json = false;
                        t.max_request_bytes = 4 << 20;
                    } else {
                        t.headers.push(public("x-axiom-dataset", dataset.clone()));
                    }
                    Ok(())
                }),
                None,
                false,
            )
        }
        // §2.6: US, EU or FedRAMP; 1 MB payloads; delta preferred.
        "newrelic" => {
            let license = inputs.require("newrelic", &NEWRELIC_LICENSE_KEY)?;
            let region = inputs.choice("newrelic", &NEWRELIC_REGION, &["us", "eu", "fedramp"], "us")?;
            let host = match region.as_str() {
                "eu" => "otlp.eu01.nr-data.net",
                "fedramp" => "gov-otlp.nr-data.net",
                _ => "otlp.nr-data.net",
            };
            let base = inputs.base(&[], || Ok(format!("https://{host}")))?;
            let grpc = origin(&base).map(|o| if o.matches(':').count() > 1 { o } else { format!("{o}:443") });
            let headers = vec![secret("api-key", license)];
            preset(
                all_signals(&base, grpc, headers, true, |_, t| {
                    t.max_request_bytes = 1_000_000;
                    Ok(())
                }),
                Some(Temporality::Delta),
                false,
            )
        }
        // §2.7: Application Insights takes its own envelopes, not OTLP; the
        // connection string follows azure-monitor.md §4(a), the Track API §4(b).
        "azure-monitor" => {
            let where_ = format!(
                "The Azure Monitor connection string ({} / {})",
                AZURE_CONNECTION_STRING.option, AZURE_CONNECTION_STRING.env[0]
            );
            let text = match inputs.get(&AZURE_CONNECTION_STRING) {
                Some(text) => text,
                // §4(a) "Environment variables": the legacy variable holds only a key.
                None => match inputs.env.get(LEGACY_INSTRUMENTATION_KEY) {
                    Some(key) => format!("InstrumentationKey={key}"),
                    None => return Err(inputs.require("azure-monitor", &AZURE_CONNECTION_STRING).unwrap_err()),
                },
            };
            let cs = connection_string::parse(&text, &where_)?;
            let live = inputs.choice("azure-monitor", &AZURE_LIVE_METRICS, &["true", "false"], "true")? == "true";
            // An endpoint replaces the IngestionEndpoint; /v2.1/track is appended.
            let base = inputs.base(&[], || Ok(cs.ingestion_endpoint.clone()))?;
            let target = Target {
                url: crate::azure::track_url(&base),
                grpc: None,
                headers: Vec::new(),
                json: true,
                max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            };
            Preset {
                name,
                targets: Signal::ALL.map(|_| Ok(target.clone())),
                // §4(b) "Metrics": delta for counters and histograms.
                temporality: Some(Temporality::Delta),
                delta_only: false,
                azure: Some(cs),
                azure_live_metrics: live,
            }
        }
        // §2.8: APM Server or managed OTLP; the endpoint is the user's.
        "elastic" => {
            let base = inputs.base(&["ELASTIC_APM_SERVER_URL"], || {
                Err("The elastic backend needs the APM Server or managed OTLP endpoint: set the option endpoint or the environment variable ELASTIC_APM_SERVER_URL.".into())
            })?;
            let auth = match (inputs.get(&ELASTIC_API_KEY), inputs.get(&ELASTIC_SECRET_TOKEN)) {
                (Some(key), _) => vec![secret("Authorization", format!("ApiKey {key}"))],
                (None, Some(token)) => vec![secret("Authorization", format!("Bearer {token}"))],
                (None, None) => Vec::new(),
            };
            let grpc = origin(&base);
            preset(all_signals(&base, grpc, auth, false, |_, _| Ok(())), None, false)
        }
        // §2.9: protobuf only, delta only, 8 MB.
        "dynatrace" => {
            let token = inputs.require("dynatrace", &DYNATRACE_API_TOKEN)?;
            let base = inputs.base(&["DT_ENDPOINT"], || {
                let env_id = inputs.require("dynatrace", &DYNATRACE_ENVIRONMENT_ID).map_err(|e| {
                    format!(
                        "{} (or give the endpoint, such as https://abc12345.live.dynatrace.com/api/v2/otlp).",
                        e.trim_end_matches('.')
                    )
                })?;
                Ok(format!("https://{env_id}.live.dynatrace.com/api/v2/otlp"))
            })?;
            let headers = vec![secret("Authorization", format!("Api-Token {token}"))];
            preset(
                all_signals(&base, None, headers, false, |_, t| {
                    t.max_request_bytes = 8_000_000;
                    Ok(())
                }),
                Some(Temporality::Delta),
                true,
            )
        }
        // §2.10: traces only; Basic auth from the key pair.
        "langfuse" => {
            let public_key = inputs.require("langfuse", &LANGFUSE_PUBLIC_KEY)?;
            let secret_key = inputs.require("langfuse", &LANGFUSE_SECRET_KEY)?;
            let region = inputs.choice("langfuse", &LANGFUSE_REGION, &["eu", "us", "jp", "hipaa"], "eu")?;
            let base = match (&inputs.endpoint, inputs.env.first(&["LANGFUSE_BASE_URL", "LANGFUSE_HOST"])) {
                (Some(endpoint), _) => endpoint.clone(),
                // The SDKs' variables name the Langfuse host; its OTLP API lives under it.
                (None, Some((_, host))) => format!("{}/api/public/otel", host.trim_end_matches('/')),
                (None, None) if region == "eu" => "https://cloud.langfuse.com/api/public/otel".into(),
                (None, None) => format!("https://{region}.cloud.langfuse.com/api/public/otel"),
            };
            let target = Target {
                url: signal_url(&base, Signal::Traces),
                grpc: None,
                headers: vec![secret("Authorization", basic_auth(&public_key, &secret_key))],
                json: true,
                max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            };
            preset(only(Signal::Traces, "Langfuse", target), None, false)
        }
        // §2.11: the region comes from the token; the raw token authorizes.
        "logfire" => {
            let token = inputs.require("logfire", &LOGFIRE_TOKEN)?;
            let region = logfire_region(&token).ok_or_else(|| {
                format!(
                    "The Logfire token ({} / {}) does not look like a write token (pylf_v1_us_… or pylf_v1_eu_…).",
                    LOGFIRE_TOKEN.option, LOGFIRE_TOKEN.env[0]
                )
            })?;
            let base = inputs.base(&["LOGFIRE_BASE_URL"], || Ok(format!("https://logfire-{region}.pydantic.dev")))?;
            let headers = vec![secret("Authorization", token)];
            preset(
                all_signals(&base, None, headers, true, |_, t| {
                    t.max_request_bytes = 5 << 20;
                    Ok(())
                }),
                None,
                false,
            )
        }
        // §2.12: traces only.
        "jaeger" => {
            let base = inputs.self_hosted_base("http://localhost:4318")?;
            let target = Target {
                url: signal_url(&base, Signal::Traces),
                grpc: grpc_4317(&base),
                headers: Vec::new(),
                json: true,
                max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            };
            preset(only(Signal::Traces, "Jaeger", target), None, false)
        }
        // §2.13: traces only; X-Scope-OrgID when multi-tenant.
        "tempo" => {
            let base = inputs.self_hosted_base("http://localhost:4318")?;
            let target = Target {
                url: signal_url(&base, Signal::Traces),
                grpc: grpc_4317(&base),
                headers: inputs.get(&TENANT_ID).map(|t| public("X-Scope-OrgID", t)).into_iter().collect(),
                json: true,
                max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            };
            preset(only(Signal::Traces, "Tempo", target), None, false)
        }
        // §2.14: logs only, under /otlp; JSON unverified, so protobuf.
        "loki" => {
            let base = inputs.self_hosted_base("http://localhost:3100/otlp")?;
            let target = Target {
                url: signal_url(&base, Signal::Logs),
                grpc: None,
                headers: inputs.get(&TENANT_ID).map(|t| public("X-Scope-OrgID", t)).into_iter().collect(),
                json: false,
                max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            };
            preset(only(Signal::Logs, "Loki", target), None, false)
        }
        // §2.15: the OTLP receiver under /api/v1/otlp; metrics only, cumulative.
        "prometheus" => {
            let base = inputs.self_hosted_base("http://localhost:9090/api/v1/otlp")?;
            let target = Target {
                url: signal_url(&base, Signal::Metrics),
                grpc: None,
                headers: Vec::new(),
                json: true,
                max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            };
            preset(only(Signal::Metrics, "Prometheus", target), Some(Temporality::Cumulative), false)
        }
        // §2.16: cloud by region with a key, else a self-hosted Collector.
        "signoz" => {
            let key = inputs.get(&SIGNOZ_INGESTION_KEY);
            let region = inputs.choice("signoz", &SIGNOZ_REGION, &["us", "eu", "in"], "us")?;
            let (base, grpc) = match &key {
                Some(_) => {
                    let base = inputs.base(&[], || Ok(format!("https://ingest.{region}.signoz.cloud:443")))?;
                    let grpc = origin(&base);
                    (base, grpc)
                }
                None => {
                    let base = inputs.self_hosted_base("http://localhost:4318")?;
                    let grpc = grpc_4317(&base);
                    (base, grpc)
                }
            };
            let headers = key.map(|k| secret("signoz-ingestion-key", k)).into_iter().collect();
            preset(all_signals(&base, grpc, headers, false, |_, _| Ok(())), None, false)
        }
        // §2.17: the DSN is the credential and names the host.
        "uptrace" => {
            let raw = inputs.require("uptrace", &UPTRACE_DSN)?;
            let dsn = uptrace_dsn(&raw).ok_or_else(|| {
                format!(
                    "The Uptrace DSN ({} / {}) is not of the form https://TOKEN@HOST[?grpc=PORT].",
                    UPTRACE_DSN.option, UPTRACE_DSN.env[0]
                )
            })?;
            let base = inputs.base(&[], || Ok(dsn.http_base.clone()))?;
            let headers = vec![secret("uptrace-dsn", raw.trim().to_owned())];
            preset(all_signals(&base, Some(dsn.grpc_target), headers, false, |_, _| Ok(())), None, false)
        }
        _ => unreachable!("every name in NAMES has a preset, and otlp is resolved by config"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves `name` with options `settings` and environment `env`.
    fn resolve_with(name: &str, settings: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Preset, String> {
        let settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let vars: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut warnings = Vec::new();
        let mut env = Env::new(&vars, &mut warnings);
        resolve(
            name,
            &mut Inputs { settings: &settings, env: &mut env, endpoint: None, single: true, service_name: "svc" },
        )
    }

    /// (url, headers with exposed values) of one signal.
    fn target(p: &Preset, signal: Signal) -> (String, Vec<(String, String)>) {
        let t = p.target(signal).as_ref().unwrap_or_else(|e| panic!("{signal:?}: {e}"));
        (t.url.clone(), t.headers.iter().map(|(k, v)| (k.clone(), v.expose().to_owned())).collect())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn sentry_from_dsn_without_metrics() {
        let p = resolve_with("sentry", &[], &[("SENTRY_DSN", "https://PUBKEY@o123.ingest.us.sentry.io/456")]).unwrap();
        let auth = pairs(&[("x-sentry-auth", "sentry sentry_key=PUBKEY")]);
        assert_eq!(
            target(&p, Signal::Traces),
            ("https://o123.ingest.us.sentry.io/api/456/integration/otlp/v1/traces".into(), auth.clone())
        );
        assert_eq!(
            target(&p, Signal::Logs),
            ("https://o123.ingest.us.sentry.io/api/456/integration/otlp/v1/logs".into(), auth)
        );
        assert!(p.target(Signal::Metrics).as_ref().unwrap_err().contains("no OTLP metrics"));
        let e = resolve_with("sentry", &[("sentry_dsn", "https://SECRETKEY@nopath")], &[]).unwrap_err();
        assert!(e.contains("sentry_dsn") && !e.contains("SECRETKEY"), "{e}");
        let e = resolve_with("sentry", &[], &[]).unwrap_err();
        assert_eq!(
            e,
            "The sentry backend needs a DSN: set the option sentry_dsn or the environment variable SENTRY_DSN."
        );
    }

    #[test]
    fn honeycomb_keys_datasets_and_regions() {
        let env_key = "hcaik_01hq3fbahv6f2qf7q1qxqs4kcs";
        let p =
            resolve_with("honeycomb", &[("honeycomb_api_key", env_key)], &[("HONEYCOMB_DATASET", "ignored")]).unwrap();
        assert_eq!(
            target(&p, Signal::Traces),
            ("https://api.honeycomb.io/v1/traces".into(), pairs(&[("x-honeycomb-team", env_key)])),
            "an environment key sends no dataset with traces"
        );
        assert_eq!(
            target(&p, Signal::Metrics).1,
            pairs(&[("x-honeycomb-team", env_key), ("x-honeycomb-dataset", "ignored")])
        );
        assert_eq!(
            target(&p, Signal::Logs).1,
            pairs(&[("x-honeycomb-team", env_key), ("x-honeycomb-dataset", "ignored")])
        );
        let p = resolve_with("honeycomb", &[("honeycomb_api_key", env_key), ("honeycomb_region", "EU")], &[]).unwrap();
        assert_eq!(target(&p, Signal::Logs).0, "https://api.eu1.honeycomb.io/v1/logs");
        assert_eq!(target(&p, Signal::Metrics).1[1], ("x-honeycomb-dataset".into(), "svc".into()));
        assert_eq!(
            p.target(Signal::Traces).as_ref().unwrap().grpc.as_deref(),
            Some("https://api.eu1.honeycomb.io:443")
        );

        let classic = "0123456789abcdef0123456789abcdef";
        let e = resolve_with("honeycomb", &[], &[("HONEYCOMB_API_KEY", classic)]).unwrap_err();
        assert!(e.contains("classic") && e.contains("HONEYCOMB_DATASET") && !e.contains(classic), "{e}");
        let p = resolve_with("honeycomb", &[], &[("HONEYCOMB_API_KEY", classic), ("HONEYCOMB_DATASET", "d")]).unwrap();
        assert_eq!(target(&p, Signal::Traces).1, pairs(&[("x-honeycomb-team", classic), ("x-honeycomb-dataset", "d")]));

        let p = resolve_with(
            "honeycomb",
            &[],
            &[
                ("HONEYCOMB_TRACES_API_KEY", "t"),
                ("HONEYCOMB_METRICS_API_KEY", "m"),
                ("HONEYCOMB_METRICS_DATASET", "md"),
            ],
        )
        .unwrap();
        assert_eq!(target(&p, Signal::Traces).1, pairs(&[("x-honeycomb-team", "t")]));
        assert_eq!(target(&p, Signal::Metrics).1, pairs(&[("x-honeycomb-team", "m"), ("x-honeycomb-dataset", "md")]));
        let e = resolve_with("honeycomb", &[], &[]).unwrap_err();
        assert!(e.contains("honeycomb_api_key") && e.contains("HONEYCOMB_API_KEY"), "{e}");
        assert!(resolve_with("honeycomb", &[("honeycomb_api_key", "k"), ("honeycomb_region", "mars")], &[]).is_err());
    }

    #[test]
    fn datadog_by_site_with_limits_and_delta() {
        let p = resolve_with(
            "datadog",
            &[],
            &[("DD_API_KEY", "k"), ("DD_SITE", "datadoghq.eu"), ("DD_OTLP_SOURCE", "src")],
        )
        .unwrap();
        assert_eq!(
            target(&p, Signal::Traces),
            ("https://otlp.datadoghq.eu/v1/traces".into(), pairs(&[("dd-api-key", "k"), ("dd-otlp-source", "src")]))
        );
        assert_eq!(
            target(&p, Signal::Metrics),
            ("https://otlp.datadoghq.eu/v1/metrics".into(), pairs(&[("dd-api-key", "k")]))
        );
        let t = |s| p.target(s).as_ref().unwrap();
        assert_eq!((t(Signal::Traces).json, t(Signal::Traces).max_request_bytes), (false, 3_200_000));
        assert_eq!((t(Signal::Metrics).json, t(Signal::Metrics).max_request_bytes), (true, 500_000));
        assert!(!t(Signal::Logs).json);
        assert_eq!((p.temporality, p.delta_only), (Some(Temporality::Delta), true));

        let p = resolve_with("datadog", &[("datadog_api_key", "k")], &[]).unwrap();
        assert_eq!(target(&p, Signal::Logs).0, "https://otlp.datadoghq.com/v1/logs");
        assert!(p.target(Signal::Traces).as_ref().unwrap_err().contains("datadog_otlp_source"));
        let e = resolve_with("datadog", &[], &[]).unwrap_err();
        assert!(e.contains("DD_API_KEY") && e.contains("datadog-agent"), "{e}");
        assert!(resolve_with("datadog", &[], &[("DD_API_KEY", "k"), ("DD_SITE", "ddog-gov.com")]).is_err());

        let p = resolve_with("datadog-agent", &[], &[("DD_AGENT_HOST", "agent")]).unwrap();
        assert_eq!(target(&p, Signal::Traces), ("http://agent:4318/v1/traces".into(), vec![]));
        assert_eq!(p.target(Signal::Logs).as_ref().unwrap().grpc.as_deref(), Some("http://agent:4317"));
    }

    #[test]
    fn grafana_cloud_basic_auth() {
        let p = resolve_with(
            "grafana-cloud",
            &[("grafana_cloud_zone", "prod-eu-west-0"), ("grafana_cloud_instance_id", "123456")],
            &[("GRAFANA_CLOUD_TOKEN", "glc_token")],
        )
        .unwrap();
        assert_eq!(
            target(&p, Signal::Metrics),
            (
                "https://otlp-gateway-prod-eu-west-0.grafana.net/otlp/v1/metrics".into(),
                pairs(&[("Authorization", "Basic MTIzNDU2OmdsY190b2tlbg==")])
            )
        );
        assert!(p.target(Signal::Traces).as_ref().unwrap().grpc.is_none(), "HTTP only");
        let e = resolve_with("grafana-cloud", &[("grafana_cloud_instance_id", "1"), ("grafana_cloud_token", "t")], &[])
            .unwrap_err();
        assert!(e.contains("grafana_cloud_zone") && e.contains("full endpoint"), "{e}");
        assert!(resolve_with(
            "grafana-cloud",
            &[("grafana_cloud_instance_id", "abc"), ("grafana_cloud_token", "t")],
            &[]
        )
        .unwrap_err()
        .contains("numeric"));
    }

    #[test]
    fn axiom_datasets_per_kind() {
        let p = resolve_with(
            "axiom",
            &[
                ("axiom_token", "xaat-1"),
                ("axiom_dataset", "events"),
                ("axiom_metrics_dataset", "m"),
                ("axiom_region", "eu"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            target(&p, Signal::Traces),
            (
                "https://eu-central-1.aws.edge.axiom.co/v1/traces".into(),
                pairs(&[("Authorization", "Bearer xaat-1"), ("x-axiom-dataset", "events")])
            )
        );
        assert_eq!(
            target(&p, Signal::Metrics).1,
            pairs(&[("Authorization", "Bearer xaat-1"), ("x-axiom-metrics-dataset", "m")])
        );
        let m = p.target(Signal::Metrics).as_ref().unwrap();
        assert_eq!((m.json, m.max_request_bytes), (false, 4 << 20));
        let p = resolve_with("axiom", &[], &[("AXIOM_TOKEN", "t"), ("AXIOM_DATASET", "d")]).unwrap();
        assert_eq!(target(&p, Signal::Logs).0, "https://us-east-1.aws.edge.axiom.co/v1/logs");
        assert!(p.target(Signal::Metrics).as_ref().unwrap_err().contains("axiom_metrics_dataset"));
        assert!(resolve_with("axiom", &[], &[("AXIOM_TOKEN", "t")]).unwrap_err().contains("AXIOM_DATASET"));
    }

    #[test]
    fn newrelic_regions() {
        for (region, host) in
            [("us", "otlp.nr-data.net"), ("eu", "otlp.eu01.nr-data.net"), ("fedramp", "gov-otlp.nr-data.net")]
        {
            let p =
                resolve_with("newrelic", &[("newrelic_region", region)], &[("NEW_RELIC_LICENSE_KEY", "lic")]).unwrap();
            assert_eq!(target(&p, Signal::Traces), (format!("https://{host}/v1/traces"), pairs(&[("api-key", "lic")])));
            assert_eq!(p.target(Signal::Traces).as_ref().unwrap().max_request_bytes, 1_000_000);
            assert_eq!(p.temporality, Some(Temporality::Delta));
        }
    }

    #[test]
    fn azure_monitor_from_the_connection_string() {
        const KEY: &str = "8b1f0b4e-2c49-4a38-9c84-6c1f4d3d2a10";
        let p = resolve_with(
            "azure-monitor",
            &[],
            &[(
                "APPLICATIONINSIGHTS_CONNECTION_STRING",
                &format!(
                    "InstrumentationKey={KEY};IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"
                ),
            )],
        )
        .unwrap();
        for signal in Signal::ALL {
            assert_eq!(
                target(&p, signal),
                ("https://westeurope-5.in.applicationinsights.azure.com/v2.1/track".into(), vec![])
            );
        }
        assert_eq!((p.temporality, p.delta_only), (Some(Temporality::Delta), false));
        assert_eq!(p.azure.as_ref().unwrap().instrumentation_key.expose(), KEY);

        // The option beats the variable; the global endpoint by default.
        let p = resolve_with(
            "azure-monitor",
            &[("azure_monitor_connection_string", &format!("instrumentationkey={KEY};"))],
            &[("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=bad")],
        )
        .unwrap();
        assert_eq!(target(&p, Signal::Logs).0, "https://dc.services.visualstudio.com/v2.1/track");
        // The legacy variable holds a key alone.
        let p = resolve_with("azure-monitor", &[], &[("APPINSIGHTS_INSTRUMENTATIONKEY", KEY)]).unwrap();
        assert_eq!(p.azure.unwrap().instrumentation_key.expose(), KEY);

        let e = resolve_with("azure-monitor", &[], &[]).unwrap_err();
        assert_eq!(
            e,
            "The azure-monitor backend needs a connection string: set the option azure_monitor_connection_string or the environment variable APPLICATIONINSIGHTS_CONNECTION_STRING."
        );
        let e =
            resolve_with("azure-monitor", &[("azure_monitor_connection_string", "InstrumentationKey=SECRETKEY")], &[])
                .unwrap_err();
        assert!(
            e.contains("not a GUID") && e.contains("APPLICATIONINSIGHTS_CONNECTION_STRING") && !e.contains("SECRETKEY"),
            "{e}"
        );
    }

    #[test]
    fn elastic_dynatrace_langfuse_logfire() {
        let p = resolve_with(
            "elastic",
            &[],
            &[("ELASTIC_APM_SERVER_URL", "https://apm.example.com:443"), ("ELASTIC_APM_SECRET_TOKEN", "s")],
        )
        .unwrap();
        assert_eq!(
            target(&p, Signal::Logs),
            ("https://apm.example.com:443/v1/logs".into(), pairs(&[("Authorization", "Bearer s")]))
        );
        let p =
            resolve_with("elastic", &[("elastic_api_key", "a")], &[("ELASTIC_APM_SERVER_URL", "https://e")]).unwrap();
        assert_eq!(target(&p, Signal::Traces).1, pairs(&[("Authorization", "ApiKey a")]));
        assert!(resolve_with("elastic", &[], &[]).unwrap_err().contains("ELASTIC_APM_SERVER_URL"));

        let p = resolve_with("dynatrace", &[("dynatrace_environment_id", "abc12345")], &[("DT_API_TOKEN", "dt0c01.x")])
            .unwrap();
        assert_eq!(
            target(&p, Signal::Metrics),
            (
                "https://abc12345.live.dynatrace.com/api/v2/otlp/v1/metrics".into(),
                pairs(&[("Authorization", "Api-Token dt0c01.x")])
            )
        );
        assert_eq!((p.temporality, p.delta_only), (Some(Temporality::Delta), true));
        assert!(!p.target(Signal::Traces).as_ref().unwrap().json);

        let p =
            resolve_with("langfuse", &[("langfuse_public_key", "pk-lf-1"), ("langfuse_secret_key", "sk-lf-2")], &[])
                .unwrap();
        assert_eq!(
            target(&p, Signal::Traces),
            (
                "https://cloud.langfuse.com/api/public/otel/v1/traces".into(),
                pairs(&[("Authorization", "Basic cGstbGYtMTpzay1sZi0y")])
            )
        );
        assert!(p.target(Signal::Metrics).is_err() && p.target(Signal::Logs).is_err());
        let p = resolve_with(
            "langfuse",
            &[("langfuse_region", "us")],
            &[("LANGFUSE_PUBLIC_KEY", "p"), ("LANGFUSE_SECRET_KEY", "s")],
        )
        .unwrap();
        assert_eq!(target(&p, Signal::Traces).0, "https://us.cloud.langfuse.com/api/public/otel/v1/traces");
        let p = resolve_with(
            "langfuse",
            &[],
            &[("LANGFUSE_PUBLIC_KEY", "p"), ("LANGFUSE_SECRET_KEY", "s"), ("LANGFUSE_HOST", "http://localhost:3000/")],
        )
        .unwrap();
        assert_eq!(target(&p, Signal::Traces).0, "http://localhost:3000/api/public/otel/v1/traces");

        let p = resolve_with("logfire", &[], &[("LOGFIRE_TOKEN", "pylf_v1_eu_abc")]).unwrap();
        assert_eq!(
            target(&p, Signal::Logs),
            ("https://logfire-eu.pydantic.dev/v1/logs".into(), pairs(&[("Authorization", "pylf_v1_eu_abc")]))
        );
        assert!(resolve_with("logfire", &[("logfire_token", "pylf_v1_zz_x")], &[])
            .unwrap_err()
            .contains("logfire_token"));
    }

    #[test]
    fn self_hosted_receivers() {
        let p = resolve_with("jaeger", &[], &[]).unwrap();
        assert_eq!(target(&p, Signal::Traces).0, "http://localhost:4318/v1/traces");
        assert!(p.target(Signal::Logs).as_ref().unwrap_err().contains("only traces"));
        let p =
            resolve_with("tempo", &[("tenant_id", "team-a")], &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://tempo:4318")])
                .unwrap();
        assert_eq!(
            target(&p, Signal::Traces),
            ("http://tempo:4318/v1/traces".into(), pairs(&[("X-Scope-OrgID", "team-a")]))
        );
        assert_eq!(p.target(Signal::Traces).as_ref().unwrap().grpc.as_deref(), Some("http://tempo:4317"));
        let p = resolve_with("loki", &[], &[]).unwrap();
        assert_eq!(target(&p, Signal::Logs).0, "http://localhost:3100/otlp/v1/logs");
        assert!(p.target(Signal::Traces).is_err());
        let p = resolve_with("prometheus", &[], &[]).unwrap();
        assert_eq!(target(&p, Signal::Metrics).0, "http://localhost:9090/api/v1/otlp/v1/metrics");
        assert_eq!(p.temporality, Some(Temporality::Cumulative));
        let p = resolve_with("signoz", &[("signoz_region", "in")], &[("SIGNOZ_INGESTION_KEY", "k")]).unwrap();
        assert_eq!(
            target(&p, Signal::Traces),
            ("https://ingest.in.signoz.cloud:443/v1/traces".into(), pairs(&[("signoz-ingestion-key", "k")]))
        );
        let p = resolve_with("signoz", &[], &[]).unwrap();
        assert_eq!(target(&p, Signal::Metrics), ("http://localhost:4318/v1/metrics".into(), vec![]));
        let p = resolve_with("uptrace", &[], &[("UPTRACE_DSN", "https://tok@api.uptrace.dev?grpc=4317")]).unwrap();
        assert_eq!(
            target(&p, Signal::Metrics),
            (
                "https://api.uptrace.dev/v1/metrics".into(),
                pairs(&[("uptrace-dsn", "https://tok@api.uptrace.dev?grpc=4317")])
            )
        );
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = resolve_with("zipkin", &[], &[]).unwrap_err();
        assert!(e.contains("honeycomb") && e.contains("uptrace"), "{e}");
        assert!(resolve_with("HoneyComb", &[("honeycomb_api_key", "k")], &[]).is_ok());
    }
}
