//! The resource every signal carries: defaults, then detected attributes, then
//! OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME, then explicit options.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use crate::attributes::{key_value, string_value, upsert};
use crate::env::{parse_key_values, Env};

pub const SDK_NAME: &str = "polytel";
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Default)]
pub struct ResourceSettings<'a> {
    pub sdk_language: &'a str,
    /// From `detect::detect`.
    pub detected: Vec<KeyValue>,
    pub service_name: Option<&'a str>,
    pub service_version: Option<&'a str>,
    pub service_namespace: Option<&'a str>,
    pub deployment_environment: Option<&'a str>,
    pub attributes: Vec<KeyValue>,
}

pub fn build_resource(env: &mut Env, s: ResourceSettings) -> Vec<KeyValue> {
    let mut attrs = vec![
        key_value("service.name", string_value("unknown_service")),
        key_value("telemetry.sdk.language", string_value(s.sdk_language)),
        key_value("telemetry.sdk.name", string_value(SDK_NAME)),
        key_value("telemetry.sdk.version", string_value(SDK_VERSION)),
    ];
    s.detected.into_iter().for_each(|kv| upsert(&mut attrs, kv));
    if let Some(v) = env.get("OTEL_RESOURCE_ATTRIBUTES") {
        match parse_key_values(v) {
            Some(pairs) => {
                // Later pairs win; an index keeps a long list linear.
                let mut at: std::collections::HashMap<String, usize> =
                    attrs.iter().enumerate().map(|(i, kv)| (kv.key.clone(), i)).collect();
                for (k, v) in pairs {
                    match at.get(&k) {
                        Some(&i) => attrs[i] = key_value(k, string_value(v)),
                        None => {
                            at.insert(k.clone(), attrs.len());
                            attrs.push(key_value(k, string_value(v)));
                        }
                    }
                }
            }
            None => env.warn(
                "OTEL_RESOURCE_ATTRIBUTES is not a list of key=value pairs with percent-encoded values; ignoring all of it."
                    .into(),
            ),
        }
    }
    if let Some(name) = env.get("OTEL_SERVICE_NAME") {
        upsert(&mut attrs, key_value("service.name", string_value(name)));
    }
    s.attributes.into_iter().for_each(|kv| upsert(&mut attrs, kv));
    for (key, value) in [
        ("service.name", s.service_name),
        ("service.version", s.service_version),
        ("service.namespace", s.service_namespace),
        ("deployment.environment.name", s.deployment_environment),
    ] {
        if let Some(v) = value {
            upsert(&mut attrs, key_value(key, string_value(v)));
        }
    }
    attrs
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        attrs.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
    }

    #[test]
    fn precedence() {
        let vars: BTreeMap<String, String> = [
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,team=a%2Cb,service.version=1"),
            ("OTEL_SERVICE_NAME", "from-env"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        let mut w = Vec::new();
        let mut env = Env::new(&vars, &mut w);
        let attrs = build_resource(
            &mut env,
            ResourceSettings {
                sdk_language: "go",
                service_version: Some("2"),
                deployment_environment: Some("prod"),
                ..Default::default()
            },
        );
        assert_eq!(get(&attrs, "service.name"), Some("from-env"));
        assert_eq!(get(&attrs, "team"), Some("a,b"));
        assert_eq!(get(&attrs, "service.version"), Some("2"));
        assert_eq!(get(&attrs, "deployment.environment.name"), Some("prod"));
        assert_eq!(get(&attrs, "telemetry.sdk.language"), Some("go"));
        assert_eq!(attrs[0].key, "service.name");
    }

    #[test]
    fn malformed_resource_attributes_are_discarded_whole() {
        let vars: BTreeMap<String, String> =
            [("OTEL_RESOURCE_ATTRIBUTES".to_string(), "a=1,b=%zz".to_string())].into_iter().collect();
        let mut w = Vec::new();
        let mut env = Env::new(&vars, &mut w);
        let attrs = build_resource(&mut env, ResourceSettings { sdk_language: "go", ..Default::default() });
        assert_eq!(get(&attrs, "a"), None);
        assert_eq!(w.len(), 1);
    }
}
