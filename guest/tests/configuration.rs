//! Configuration through `pipeline.create`'s JSON: presets with their
//! credentials from options, the environment and the config file; several
//! backends at once; protocols, temporality and the plain-http rule.

use polytel_core::config::{Config, Encoding, OtlpRoute, Route, Signal, Temporality, Transport};
use polytel_core::pipeline::{Destination, Pipeline};
use serde_json::{json, Value};

/// Config from options, environment, host facts and an optional file text.
fn config_with(options: Value, env: &[(&str, &str)], grpc: bool, file: Option<&str>) -> Result<Config, String> {
    let env: serde_json::Map<String, Value> = env.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let mut input = json!({"options": options, "env": env, "host": {"sdk_language": "rust", "grpc": grpc}});
    if let Some(text) = file {
        input["file"] = json!({"path": "/etc/polytel.toml", "text": text});
    }
    Config::from_json(&input.to_string())
}

fn config(options: Value, env: &[(&str, &str)]) -> Result<Config, String> {
    config_with(options, env, false, None)
}

fn otlp(routes: &[Route]) -> Vec<&OtlpRoute> {
    routes.iter().filter_map(|r| if let Route::Otlp(o) = r { Some(o) } else { None }).collect()
}

/// Routes to a backend: OTLP, or Azure Monitor's own.
fn remote(routes: &[Route]) -> usize {
    routes.iter().filter(|r| matches!(r, Route::Otlp(_) | Route::Azure(_))).count()
}

fn header<'a>(route: &'a OtlpRoute, name: &str) -> Option<&'a str> {
    route.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.expose())
}

/// Valid credentials for every preset that needs some, as environment variables.
const CREDENTIALS: &[(&str, &[(&str, &str)])] = &[
    ("sentry", &[("SENTRY_DSN", "https://SECRETVALUE123@o1.ingest.sentry.io/42")]),
    ("honeycomb", &[("HONEYCOMB_API_KEY", "hcaik_SECRETVALUE123")]),
    ("datadog", &[("DD_API_KEY", "SECRETVALUE123"), ("DD_OTLP_SOURCE", "src")]),
    ("datadog-agent", &[]),
    (
        "grafana-cloud",
        &[
            ("GRAFANA_CLOUD_ZONE", "prod-us-east-0"),
            ("GRAFANA_CLOUD_INSTANCE_ID", "1"),
            ("GRAFANA_CLOUD_TOKEN", "glc_SECRETVALUE123"),
        ],
    ),
    ("axiom", &[("AXIOM_TOKEN", "xaat-SECRETVALUE123"), ("AXIOM_DATASET", "d"), ("AXIOM_METRICS_DATASET", "m")]),
    ("newrelic", &[("NEW_RELIC_LICENSE_KEY", "SECRETVALUE123")]),
    (
        "azure-monitor",
        &[("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=5ec2e7a1-5ec2-4e7a-9ec2-5ec2e7a15ec2")],
    ),
    (
        "elastic",
        &[("ELASTIC_APM_SERVER_URL", "https://apm.example.com"), ("ELASTIC_APM_SECRET_TOKEN", "SECRETVALUE123")],
    ),
    (
        "dynatrace",
        &[("DT_ENDPOINT", "https://abc.live.dynatrace.com/api/v2/otlp"), ("DT_API_TOKEN", "dt0c01.SECRETVALUE123")],
    ),
    ("langfuse", &[("LANGFUSE_PUBLIC_KEY", "pk-lf-1"), ("LANGFUSE_SECRET_KEY", "sk-lf-SECRETVALUE123")]),
    ("logfire", &[("LOGFIRE_TOKEN", "pylf_v1_us_SECRETVALUE123")]),
    ("jaeger", &[]),
    ("tempo", &[]),
    ("loki", &[]),
    ("prometheus", &[]),
    ("signoz", &[("SIGNOZ_INGESTION_KEY", "SECRETVALUE123")]),
    ("uptrace", &[("UPTRACE_DSN", "https://SECRETVALUE123@api.uptrace.dev?grpc=4317")]),
];

/// Per preset: (traces, metrics, logs) accepted.
const SIGNALS: &[(&str, [bool; 3])] = &[
    ("sentry", [true, false, true]),
    ("honeycomb", [true, true, true]),
    ("datadog", [true, true, true]),
    ("datadog-agent", [true, true, true]),
    ("grafana-cloud", [true, true, true]),
    ("axiom", [true, true, true]),
    ("newrelic", [true, true, true]),
    ("azure-monitor", [true, true, true]),
    ("elastic", [true, true, true]),
    ("dynatrace", [true, true, true]),
    ("langfuse", [true, false, false]),
    ("logfire", [true, true, true]),
    ("jaeger", [true, false, false]),
    ("tempo", [true, false, false]),
    ("loki", [false, false, true]),
    ("prometheus", [false, true, false]),
    ("signoz", [true, true, true]),
    ("uptrace", [true, true, true]),
];

#[test]
fn every_preset_routes_its_signals_and_never_shows_its_secret() {
    for (name, env) in CREDENTIALS {
        let c = config(json!({"backend": name}), env).unwrap_or_else(|e| panic!("{name}: {e}"));
        let accepted = SIGNALS.iter().find(|(n, _)| n == name).unwrap().1;
        for (signal, expected) in Signal::ALL.into_iter().zip(accepted) {
            assert_eq!(remote(c.routes(signal)), usize::from(expected), "{name} {signal:?}");
        }
        let refused = accepted.iter().filter(|a| !**a).count();
        assert_eq!(c.warnings.len(), refused, "{name}: one notice per signal it does not take: {:?}", c.warnings);
        let p = Pipeline::new(c);
        let described = p.describe();
        assert!(!described.contains("SECRETVALUE123"), "{name} shows its secret: {described}");
        let plan: Value = serde_json::from_str(&p.plan()).unwrap();
        assert_eq!([plan["traces"].as_bool(), plan["metrics"].as_bool(), plan["logs"].as_bool()], accepted.map(Some));
    }
}

#[test]
fn missing_credentials_name_the_option_and_the_variable() {
    let cases = [
        ("sentry", "sentry_dsn", "SENTRY_DSN"),
        ("honeycomb", "honeycomb_api_key", "HONEYCOMB_API_KEY"),
        ("datadog", "datadog_api_key", "DD_API_KEY"),
        ("grafana-cloud", "grafana_cloud_instance_id", "GRAFANA_CLOUD_INSTANCE_ID"),
        ("axiom", "axiom_token", "AXIOM_TOKEN"),
        ("newrelic", "newrelic_license_key", "NEW_RELIC_LICENSE_KEY"),
        ("elastic", "endpoint", "ELASTIC_APM_SERVER_URL"),
        ("dynatrace", "dynatrace_api_token", "DT_API_TOKEN"),
        ("langfuse", "langfuse_public_key", "LANGFUSE_PUBLIC_KEY"),
        ("logfire", "logfire_token", "LOGFIRE_TOKEN"),
        ("uptrace", "uptrace_dsn", "UPTRACE_DSN"),
        ("azure-monitor", "azure_monitor_connection_string", "APPLICATIONINSIGHTS_CONNECTION_STRING"),
    ];
    for (name, option, variable) in cases {
        let e = config(json!({"backend": name}), &[]).err().unwrap_or_else(|| panic!("{name} configured"));
        assert!(e.contains(option) && e.contains(variable), "{name}: {e}");
        assert_eq!(e.matches(". ").count(), 0, "one sentence: {e}");
        assert!(e.ends_with('.'), "{e}");
    }
}

/// The OTLP exporter's environment rules, one row each: the environment, and
/// the traces route's URL, headers, protocol, gzip and timeout it gives.
#[test]
fn otlp_environment_rules() {
    type Row = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
        bool,
        u32,
    );
    let rows: &[Row] = &[
        (&[], "http://localhost:4318/v1/traces", &[], "http/protobuf", false, 10_000),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
            "http://c:4318/v1/traces",
            &[],
            "http/protobuf",
            false,
            10_000,
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/base/")],
            "http://c:4318/base/v1/traces",
            &[],
            "http/protobuf",
            false,
            10_000,
        ),
        (
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom"),
            ],
            "http://t:1/custom",
            &[],
            "http/protobuf",
            false,
            10_000,
        ),
        (&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1")], "http://t:1/", &[], "http/protobuf", false, 10_000),
        (
            &[("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=x%20y"), ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "m=1")],
            "http://localhost:4318/v1/traces",
            &[("a", "1"), ("b", "x y")],
            "http/protobuf",
            false,
            10_000,
        ),
        (
            &[("OTEL_EXPORTER_OTLP_HEADERS", "a=1"), ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "t=2")],
            "http://localhost:4318/v1/traces",
            &[("t", "2")],
            "http/protobuf",
            false,
            10_000,
        ),
        (
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "HTTP/JSON")],
            "http://localhost:4318/v1/traces",
            &[],
            "http/json",
            false,
            10_000,
        ),
        (
            &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"), ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1500")],
            "http://localhost:4318/v1/traces",
            &[],
            "http/protobuf",
            true,
            1500,
        ),
        (&[("OTEL_EXPORTER_OTLP_TIMEOUT", "")], "http://localhost:4318/v1/traces", &[], "http/protobuf", false, 10_000),
    ];
    for (env, url, headers, protocol, gzip, timeout) in rows {
        let c = config(json!({}), env).unwrap_or_else(|e| panic!("{env:?}: {e}"));
        let r = otlp(&c.traces)[0];
        let got: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
        assert_eq!(
            (r.url.as_str(), &got[..], r.protocol(), r.gzip, r.timeout_ms),
            (*url, *headers, *protocol, *gzip, *timeout),
            "{env:?}"
        );
    }
    assert!(config(json!({}), &[("OTEL_SDK_DISABLED", "TRUE")]).unwrap().disabled);
    assert!(!config(json!({}), &[("OTEL_SDK_DISABLED", "1")]).unwrap().disabled, "only true is true");
    let e = config(json!({}), &[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://user:hunter2@c")]).map(|_| ()).err();
    assert!(e.is_none(), "a URL with user information is a URL");
    let e = config(json!({}), &[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://user:hunter2@c")])
        .err()
        .expect("configuration should fail");
    assert!(e.contains("***@c") && !e.contains("hunter2"), "{e}");
}

#[test]
fn honeycomb_metrics_default_to_the_service_name_dataset() {
    let c = config(json!({"backend": "honeycomb", "service_name": "agent"}), &[("HONEYCOMB_API_KEY", "k")]).unwrap();
    assert_eq!(header(otlp(&c.metric_routes)[0], "x-honeycomb-dataset"), Some("agent"));
}

#[test]
fn credentials_come_from_options_before_the_environment() {
    let c = config(
        json!({"backend": "honeycomb", "honeycomb_api_key": "from-option"}),
        &[("HONEYCOMB_API_KEY", "from-env")],
    )
    .unwrap();
    assert_eq!(header(otlp(&c.traces)[0], "x-honeycomb-team"), Some("from-option"));
    let e =
        config(json!({"backend": "honeycomb", "honeycomb_api_key": 5}), &[]).err().expect("configuration should fail");
    assert_eq!(e, "The option honeycomb_api_key must be a string.");
}

#[test]
fn several_backends_at_once() {
    let c = config(json!({"backend": "console,honeycomb"}), &[("HONEYCOMB_API_KEY", "k")]).unwrap();
    for signal in Signal::ALL {
        assert!(matches!(c.routes(signal), [Route::Console, Route::Otlp(o)] if o.destination == "honeycomb"));
    }

    let c = config(
        json!({
            "backend": {"traces": "tempo", "metrics": "prometheus"},
            "endpoints": {"tempo": "http://tempo:4318", "prometheus": "http://prom:9090/api/v1/otlp"},
        }),
        &[],
    )
    .unwrap();
    assert_eq!(otlp(&c.traces)[0].url, "http://tempo:4318/v1/traces");
    assert_eq!(otlp(&c.metric_routes)[0].url, "http://prom:9090/api/v1/otlp/v1/metrics");
    assert!(c.logs.is_empty(), "a signal left out of the map goes nowhere");
    assert!(c.prometheus.is_none(), "the prometheus backend pushes; it is not a scrape endpoint");

    let e = config(json!({"backend": "tempo,jaeger", "endpoint": "http://x:4318"}), &[])
        .err()
        .expect("configuration should fail");
    assert!(e.contains("ambiguous") && e.contains("endpoints"), "{e}");
    let e = config(json!({"backend": "tempo", "endpoints": {"jaeger": "http://j"}}), &[])
        .err()
        .expect("configuration should fail");
    assert!(e.contains("jaeger"), "{e}");
    let e = config(json!({"backend": {"trace": "tempo"}}), &[]).err().expect("configuration should fail");
    assert!(e.contains("\"trace\""), "{e}");

    // The environment chooses a backend too, below the options.
    let c = config(json!({}), &[("POLYTEL_BACKEND", "jaeger"), ("OTEL_TRACES_EXPORTER", "console")]).unwrap();
    assert_eq!(otlp(&c.traces)[0].destination, "jaeger");
    let c = config(
        json!({"traces_exporter": "console,langfuse"}),
        &[("LANGFUSE_PUBLIC_KEY", "p"), ("LANGFUSE_SECRET_KEY", "s")],
    )
    .unwrap();
    assert!(matches!(&c.traces[..], [Route::Console, Route::Otlp(o)] if o.destination == "langfuse"));
    assert!(matches!(&c.metric_routes[..], [Route::Otlp(o)] if o.destination == "otlp"));
}

#[test]
fn an_endpoint_overrides_a_preset_base() {
    let c = config(
        json!({"backend": "sentry", "endpoint": "http://127.0.0.1:9/api/42/integration/otlp"}),
        &[("SENTRY_DSN", "https://k@o1.ingest.sentry.io/42")],
    )
    .unwrap();
    assert_eq!(otlp(&c.traces)[0].url, "http://127.0.0.1:9/api/42/integration/otlp/v1/traces");
    let e = config(json!({"backend": "honeycomb", "endpoint": "api.honeycomb.io"}), &[("HONEYCOMB_API_KEY", "k")])
        .err()
        .expect("configuration should fail");
    assert!(e.contains("not an http:// or https:// URL"), "{e}");
}

#[test]
fn credentials_never_go_over_plain_http_to_another_machine() {
    let hc = [("HONEYCOMB_API_KEY", "k")];
    let e = config(json!({"backend": "honeycomb", "endpoint": "http://proxy.internal:4318"}), &hc)
        .err()
        .expect("configuration should fail");
    assert!(e.contains("x-honeycomb-team") && e.contains("proxy.internal") && e.contains("allow_insecure"), "{e}");
    assert!(!e.contains(": k") && !e.contains("=k"), "{e}");
    assert!(config(json!({"backend": "honeycomb", "endpoint": "http://127.0.0.1:4318"}), &hc).is_ok());
    assert!(config(json!({"backend": "honeycomb", "endpoint": "http://localhost:4318"}), &hc).is_ok());
    assert!(config(json!({"backend": "honeycomb", "endpoint": "http://proxy.internal", "allow_insecure": true}), &hc)
        .is_ok());
    let env = [("HONEYCOMB_API_KEY", "k"), ("POLYTEL_ALLOW_INSECURE", "true")];
    assert!(config(json!({"backend": "honeycomb", "endpoint": "http://proxy.internal"}), &env).is_ok());

    // A user's header counts as a credential by its name.
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20x"),
    ];
    assert!(config(json!({}), &env).err().expect("configuration should fail").contains("Authorization"));
    let env =
        [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), ("OTEL_EXPORTER_OTLP_HEADERS", "X-Scope-OrgID=t1")];
    assert!(config(json!({}), &env).is_ok());
}

#[test]
fn protocols_per_backend_and_host() {
    let hc = [("HONEYCOMB_API_KEY", "k")];
    let e = config(json!({"backend": "honeycomb", "protocol": "grpc"}), &hc).err().expect("configuration should fail");
    assert!(e.contains("http/protobuf"), "{e}");
    let c = config_with(json!({"backend": "honeycomb", "protocol": "grpc"}), &hc, true, None).unwrap();
    let r = otlp(&c.logs)[0];
    assert_eq!((r.transport, r.url.as_str()), (Transport::Grpc, "https://api.honeycomb.io:443"));
    assert_eq!(header(r, "x-honeycomb-team"), Some("k"));
    let e = config_with(
        json!({"backend": "grafana-cloud", "protocol": "grpc"}),
        &[("GRAFANA_CLOUD_ZONE", "z"), ("GRAFANA_CLOUD_INSTANCE_ID", "1"), ("GRAFANA_CLOUD_TOKEN", "t")],
        true,
        None,
    )
    .err()
    .expect("configuration should fail");
    assert!(e.contains("grafana-cloud does not take OTLP over gRPC"), "{e}");
    let c = config_with(
        json!({}),
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")],
        true,
        None,
    )
    .unwrap();
    assert_eq!(otlp(&c.traces)[0].url, "http://c:4317", "a gRPC endpoint is the target as it is");
    let c = config_with(json!({}), &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")], true, None).unwrap();
    assert_eq!(otlp(&c.metric_routes)[0].url, "http://localhost:4317");

    // Datadog takes protobuf only for traces and logs, JSON too for metrics.
    let dd = [("DD_API_KEY", "k"), ("DD_OTLP_SOURCE", "s")];
    let e =
        config(json!({"backend": "datadog", "protocol": "http/json"}), &dd).err().expect("configuration should fail");
    assert!(e.contains("datadog takes only protobuf for traces"), "{e}");
    let env = [("DD_API_KEY", "k"), ("DD_OTLP_SOURCE", "s"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")];
    let c = config(json!({"backend": "datadog"}), &env).unwrap();
    assert_eq!(otlp(&c.traces)[0].encoding, Encoding::Protobuf);
    assert_eq!(otlp(&c.metric_routes)[0].encoding, Encoding::Json);
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
}

#[test]
fn temporality_follows_the_backend_unless_chosen() {
    let dd = [("DD_API_KEY", "k")];
    assert_eq!(config(json!({"backend": "datadog"}), &dd).unwrap().metrics.temporality, Temporality::Delta);
    let env = [("DD_API_KEY", "k"), ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "cumulative")];
    let c = config(json!({"backend": "datadog"}), &env).unwrap();
    assert_eq!(c.metrics.temporality, Temporality::Cumulative);
    assert!(c.warnings.iter().any(|w| w.contains("accepts only delta")), "{:?}", c.warnings);
    assert_eq!(config(json!({"backend": "prometheus"}), &[]).unwrap().metrics.temporality, Temporality::Cumulative);
    let c =
        config(json!({"backend": "newrelic", "temporality": "lowmemory"}), &[("NEW_RELIC_LICENSE_KEY", "k")]).unwrap();
    assert_eq!(c.metrics.temporality, Temporality::LowMemory);
    let c = config(json!({"backend": "prometheus,newrelic"}), &[("NEW_RELIC_LICENSE_KEY", "k")]).unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("different temporalities")), "{:?}", c.warnings);
}

#[test]
fn the_config_file_ranks_below_the_environment() {
    let file = r#"
        backend = "honeycomb"
        honeycomb_api_key = "file-key"
        honeycomb_dataset = "file-dataset"
        service_name = "file-service"
        max_export_batch_size = 64
    "#;
    let c = config_with(json!({}), &[("HONEYCOMB_API_KEY", "env-key")], false, Some(file)).unwrap();
    let logs = otlp(&c.logs)[0];
    assert_eq!(header(logs, "x-honeycomb-team"), Some("env-key"));
    assert_eq!(header(logs, "x-honeycomb-dataset"), Some("file-dataset"));
    assert_eq!(c.batch.max_batch, 64);
    let c =
        config_with(json!({"max_export_batch_size": 8}), &[("OTEL_SERVICE_NAME", "env-service")], false, Some(file))
            .unwrap();
    assert_eq!(c.batch.max_batch, 8);
    let service = c.resource.iter().find(|kv| kv.key == "service.name").unwrap();
    assert_eq!(service.value, Some(polytel_core::attributes::string_value("env-service")));

    let e = config(json!({"config_file": "/etc/polytel.toml"}), &[]).err().expect("configuration should fail");
    assert!(e.contains("/etc/polytel.toml"), "{e}");
    let e = config(json!({}), &[("POLYTEL_CONFIG", "/x.toml")]).err().expect("configuration should fail");
    assert!(e.contains("/x.toml"), "{e}");
    let e = config_with(json!({}), &[], false, Some("nonsense = = 1")).err().expect("configuration should fail");
    assert!(e.starts_with("The config file /etc/polytel.toml is not valid TOML"), "{e}");
}

#[test]
fn oversized_batches_are_split_to_the_backend_cap() {
    // New Relic caps requests at 1 MB.
    let mut p = Pipeline::from_json(
        &json!({
            "options": {"backend": "newrelic", "max_export_batch_size": 400},
            "env": {"NEW_RELIC_LICENSE_KEY": "k"},
            "host": {"sdk_language": "rust"},
        })
        .to_string(),
    )
    .unwrap();
    let big = "x".repeat(10_000);
    let spans: Vec<String> = (0..400)
        .map(|i| {
            format!(
                r#"{{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"{:016x}","name":"s","start":1,"end":2,"attributes":{{"blob":"{big}"}}}}"#,
                i + 1
            )
        })
        .collect();
    p.record_spans(&format!("[{}]", spans.join(",")));
    let out = p.poll(10, true);
    assert!(out.exports.len() >= 4, "4 MB of spans need at least 4 requests, got {}", out.exports.len());
    let mut items = 0;
    for e in &out.exports {
        let body = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &e.body).unwrap();
        assert!(body.len() <= 1_000_000, "{} bytes", body.len());
        items += e.items;
    }
    assert_eq!(items, 400);
    assert!(out.warnings.iter().any(|w| w.contains("capped at 1000000 bytes")), "{:?}", out.warnings);
}

#[test]
fn grpc_exports_name_target_method_and_metadata() {
    let mut p = Pipeline::from_json(
        &json!({
            "options": {"backend": "honeycomb", "protocol": "grpc", "compression": "gzip"},
            "env": {"HONEYCOMB_API_KEY": "k"},
            "host": {"sdk_language": "rust", "grpc": true},
        })
        .to_string(),
    )
    .unwrap();
    p.record_spans(r#"[{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"0000000000000001","name":"s","start":1,"end":2}]"#);
    let e = p.poll(10, true).exports.remove(0);
    let Destination::Grpc { target, path, metadata, compressed, .. } = &e.destination else {
        panic!("{:?}", e.destination)
    };
    assert_eq!(target, "https://api.honeycomb.io:443");
    assert_eq!(path, "/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    assert!(*compressed);
    let names: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
    assert_eq!(names, [("x-honeycomb-team", "k")]);
    let described = p.describe();
    assert!(described.contains("\"protocol\": \"grpc\""), "{described}");
}
