//! The TOML config file: the same settings as the options, by the same names,
//! ranking below the environment. A file setting is used only when neither an
//! explicit option nor an environment variable that supplies it is set.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::presets;

/// The file as the host read it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub path: String,
    pub text: String,
}

const PER_SIGNAL: [&str; 3] = ["TRACES", "METRICS", "LOGS"];

/// Every option, with the environment variables that outrank a file's value
/// for it. An OTLP exporter setting is outranked by its generic variable and
/// by each per-signal one.
const OPTIONS: &[(&str, &[&str])] = &[
    ("disabled", &["OTEL_SDK_DISABLED"]),
    ("backend", &["POLYTEL_BACKEND", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"]),
    ("traces_exporter", &["OTEL_TRACES_EXPORTER"]),
    ("metrics_exporter", &["OTEL_METRICS_EXPORTER"]),
    ("logs_exporter", &["OTEL_LOGS_EXPORTER"]),
    ("endpoint", &["OTEL_EXPORTER_OTLP_ENDPOINT"]),
    ("endpoints", &[]),
    ("headers", &["OTEL_EXPORTER_OTLP_HEADERS"]),
    ("protocol", &["OTEL_EXPORTER_OTLP_PROTOCOL"]),
    ("compression", &["OTEL_EXPORTER_OTLP_COMPRESSION"]),
    ("timeout_ms", &["OTEL_EXPORTER_OTLP_TIMEOUT"]),
    ("allow_insecure", &["POLYTEL_ALLOW_INSECURE"]),
    ("service_name", &["OTEL_SERVICE_NAME"]),
    ("service_version", &[]),
    ("service_namespace", &[]),
    ("deployment_environment", &[]),
    ("resource_attributes", &["OTEL_RESOURCE_ATTRIBUTES"]),
    ("resource_detectors", &["POLYTEL_RESOURCE_DETECTORS"]),
    ("sampler", &["OTEL_TRACES_SAMPLER"]),
    ("sampler_arg", &["OTEL_TRACES_SAMPLER_ARG"]),
    ("schedule_delay_ms", &["OTEL_BSP_SCHEDULE_DELAY"]),
    ("max_queue_size", &["OTEL_BSP_MAX_QUEUE_SIZE"]),
    ("max_export_batch_size", &["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"]),
    ("export_timeout_ms", &["OTEL_BSP_EXPORT_TIMEOUT"]),
    (
        "attribute_count_limit",
        &["OTEL_ATTRIBUTE_COUNT_LIMIT", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT"],
    ),
    (
        "attribute_value_length_limit",
        &[
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        ],
    ),
    ("event_count_limit", &["OTEL_SPAN_EVENT_COUNT_LIMIT"]),
    ("link_count_limit", &["OTEL_SPAN_LINK_COUNT_LIMIT"]),
    ("propagators", &["OTEL_PROPAGATORS"]),
    ("metric_export_interval_ms", &["OTEL_METRIC_EXPORT_INTERVAL"]),
    ("metric_export_timeout_ms", &["OTEL_METRIC_EXPORT_TIMEOUT"]),
    ("temporality", &["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"]),
    ("histogram_aggregation", &["OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"]),
    ("exemplar_filter", &["OTEL_METRICS_EXEMPLAR_FILTER"]),
    ("cardinality_limit", &[]),
    ("prometheus_listen", &["OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT"]),
    ("log_schedule_delay_ms", &["OTEL_BLRP_SCHEDULE_DELAY"]),
    ("log_max_queue_size", &["OTEL_BLRP_MAX_QUEUE_SIZE"]),
    ("log_max_export_batch_size", &["OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"]),
    ("log_export_timeout_ms", &["OTEL_BLRP_EXPORT_TIMEOUT"]),
    ("genai_capture_content", &["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"]),
    ("genai_prices", &[]),
    ("redact", &["POLYTEL_REDACT"]),
    ("redact_patterns", &["POLYTEL_REDACT_PATTERNS"]),
    ("self_metrics", &["POLYTEL_SELF_METRICS"]),
];

/// Whether `name` is an option: one of `Options`' fields or a preset setting.
pub fn is_option(name: &str) -> bool {
    name == "config_file" || OPTIONS.iter().any(|(o, _)| *o == name) || presets::KEYS.iter().any(|k| k.option == name)
}

/// Whether an environment variable that supplies `option` is set.
fn set_in_env(option: &str, names: &[&str], env: &BTreeMap<String, String>) -> bool {
    let set = |name: &str| env.get(name).is_some_and(|v| !v.trim().is_empty());
    let otlp_suffix = names
        .first()
        .and_then(|n| n.strip_prefix("OTEL_EXPORTER_OTLP_"))
        .filter(|_| matches!(option, "endpoint" | "headers" | "protocol" | "compression" | "timeout_ms"));
    names.iter().any(|n| set(n))
        || otlp_suffix
            .is_some_and(|suffix| PER_SIGNAL.iter().any(|signal| set(&format!("OTEL_EXPORTER_OTLP_{signal}_{suffix}"))))
}

/// Adds the file's settings to `options` where neither an option nor the
/// environment supplies them.
pub fn merge_below(
    options: &mut Map<String, Value>,
    file: &ConfigFile,
    env: &BTreeMap<String, String>,
) -> Result<(), String> {
    let path = &file.path;
    // toml's own messages quote the offending line, which may hold a key; the
    // line number and the bare message are enough.
    let table: toml::Table = toml::from_str(&file.text).map_err(|e| {
        let line = e.span().map_or(0, |s| file.text[..s.start.min(file.text.len())].matches('\n').count() + 1);
        format!("The config file {path} is not valid TOML (line {line}: {}).", e.message().trim_end_matches('.'))
    })?;
    for (key, value) in table {
        let env_names: &[&str] = match OPTIONS.iter().find(|(o, _)| *o == key) {
            Some((_, names)) => names,
            None => match presets::KEYS.iter().find(|k| k.option == key) {
                Some(k) => k.env,
                None if key == "config_file" => {
                    return Err(format!("The config file {path} names another config file; files do not nest."))
                }
                None => return Err(format!("The config file {path} sets {key:?}, which is not a polytel option.")),
            },
        };
        if options.contains_key(&key) || set_in_env(&key, env_names, env) {
            continue;
        }
        let value = serde_json::to_value(value)
            .map_err(|e| format!("The config file {path} sets {key:?} to a value polytel cannot read: {e}."))?;
        options.insert(key, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(options: Value, text: &str, env: &[(&str, &str)]) -> Result<Value, String> {
        let Value::Object(mut options) = options else { panic!("options are an object") };
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let file = ConfigFile { path: "polytel.toml".into(), text: text.into() };
        merge_below(&mut options, &file, &env).map(|()| Value::Object(options))
    }

    #[test]
    fn options_beat_environment_beats_file() {
        let text = r#"
            service_name = "from-file"
            backend = "honeycomb"
            honeycomb_api_key = "file-key"
            endpoint = "http://file:4318"
            max_queue_size = 100
            propagators = ["tracecontext"]
            [headers]
            x-team = "a"
            [backend_unused_table_is_an_error]
        "#;
        assert!(merged(serde_json::json!({}), text, &[]).unwrap_err().contains("backend_unused_table_is_an_error"));
        let text = text.replace("[backend_unused_table_is_an_error]", "");
        let v = merged(
            serde_json::json!({"service_name": "explicit"}),
            &text,
            &[("HONEYCOMB_API_KEY", "env-key"), ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t")],
        )
        .unwrap();
        assert_eq!(v["service_name"], "explicit");
        assert!(v.get("honeycomb_api_key").is_none(), "the environment supplies it");
        assert!(v.get("endpoint").is_none(), "a per-signal variable outranks the file's endpoint");
        assert_eq!(v["backend"], "honeycomb");
        assert_eq!(v["max_queue_size"], 100);
        assert_eq!(v["propagators"], serde_json::json!(["tracecontext"]));
        assert_eq!(v["headers"], serde_json::json!({"x-team": "a"}));
    }

    #[test]
    fn the_option_table_names_every_option() {
        // serde lists the fields it expects when it meets an unknown one.
        let e = serde_json::from_str::<crate::config::Options>(r#"{"__unknown__": 1}"#).err().unwrap().to_string();
        let expected: Vec<&str> = e.split('`').skip(3).step_by(2).collect();
        let mut table: Vec<&str> = OPTIONS.iter().map(|(o, _)| *o).chain(["config_file"]).collect();
        let mut fields = expected.clone();
        table.sort_unstable();
        fields.sort_unstable();
        assert_eq!(fields, table, "{e}");
    }

    #[test]
    fn bad_files_fail_without_quoting_values() {
        let e = merged(serde_json::json!({}), "honeycomb_api_key = hcaik_secret\n", &[]).unwrap_err();
        assert!(e.starts_with("The config file polytel.toml is not valid TOML (line 1"), "{e}");
        assert!(!e.contains("hcaik_secret"), "{e}");
        let e = merged(serde_json::json!({}), "config_file = \"other.toml\"", &[]).unwrap_err();
        assert!(e.contains("do not nest"), "{e}");
    }
}
