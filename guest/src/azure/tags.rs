//! Part-A tags: what every envelope says about where it came from
//! (shared/reference/azure-monitor.md §4(b) "Tags"), read once per export from
//! the resource.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::format::{first_text, truncate, MAX_NAME};
use crate::resource::SDK_VERSION;

pub type Tags = BTreeMap<&'static str, String>;

/// The tags every envelope of one resource carries.
pub fn part_a(resource: &[KeyValue]) -> Tags {
    let mut tags = Tags::new();
    let mut put = |key: &'static str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            tags.insert(key, truncate(&v, MAX_NAME));
        }
    };
    put("ai.cloud.role", cloud_role(resource));
    let instance = cloud_role_instance(resource);
    put("ai.cloud.roleInstance", instance.clone());
    put("ai.internal.nodeName", instance);
    put("ai.application.ver", first_text(resource, &["service.version"]));
    put("ai.device.id", first_text(resource, &["device.id", "host.name"]));
    put("ai.device.model", first_text(resource, &["device.model.name"]));
    put("ai.device.oemName", first_text(resource, &["device.manufacturer"]));
    put("ai.device.type", Some("Other".into()));
    put("ai.internal.sdkVersion", Some(sdk_version(resource)));
    tags
}

/// `ai.cloud.role`: `service.namespace.service.name`, or `service.name`;
/// a name starting with `unknown_service` gives way to the Kubernetes
/// workload's name.
pub fn cloud_role(resource: &[KeyValue]) -> Option<String> {
    let name = first_text(resource, &["service.name"]);
    let role = name.as_ref().map(|n| match first_text(resource, &["service.namespace"]) {
        Some(ns) => format!("{ns}.{n}"),
        None => n.clone(),
    });
    if name.as_deref().is_some_and(|n| !n.starts_with("unknown_service")) {
        return role;
    }
    const WORKLOADS: [&str; 6] = [
        "k8s.deployment.name",
        "k8s.replicaset.name",
        "k8s.statefulset.name",
        "k8s.job.name",
        "k8s.cronjob.name",
        "k8s.daemonset.name",
    ];
    first_text(resource, &WORKLOADS).or(role)
}

/// `ai.cloud.roleInstance`: `k8s.pod.name`, else `service.instance.id`, else
/// the host's name.
pub fn cloud_role_instance(resource: &[KeyValue]) -> Option<String> {
    first_text(resource, &["k8s.pod.name", "service.instance.id", "host.name"])
}

/// `ai.internal.sdkVersion`. The official form is
/// `{rp}{os}{attach}_py{python}:otel{otel}:ext{exporter}`; polytel keeps the
/// prefix codes (rp `f` Functions, `a` App Service, `k` Kubernetes, else `u`;
/// os `l`, `w` or `u`; attach `m`, manual) and names the host language, its
/// runtime version and polytel's version instead, e.g. `ulm_py3.12.1:polytel0.1.0`.
pub fn sdk_version(resource: &[KeyValue]) -> String {
    let platform = first_text(resource, &["cloud.platform"]).unwrap_or_default();
    let rp = match platform.as_str() {
        "azure.functions" | "azure_functions" => 'f',
        "azure.app_service" | "azure_app_service" => 'a',
        "azure.aks" | "azure_aks" => 'k',
        _ if resource.iter().any(|kv| kv.key.starts_with("k8s.")) => 'k',
        _ => 'u',
    };
    let os = match first_text(resource, &["os.type"]).as_deref() {
        Some("linux") => 'l',
        Some("windows") => 'w',
        _ => 'u',
    };
    let language = match first_text(resource, &["telemetry.sdk.language"]).as_deref() {
        Some("python") => "py".to_owned(),
        Some("nodejs" | "webjs") => "node".to_owned(),
        Some(other) => other.to_owned(),
        None => "unknown".to_owned(),
    };
    let runtime = first_text(resource, &["process.runtime.version"]).unwrap_or_default();
    format!("{rp}{os}m_{language}{runtime}:polytel{SDK_VERSION}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::{key_value, string_value};

    /// Resource attributes, and the value a row expects.
    type Row<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);

    fn resource(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
        pairs.iter().map(|(k, v)| key_value(*k, string_value(*v))).collect()
    }

    #[test]
    fn cloud_role_rows() {
        let rows: &[Row] = &[
            (&[("service.name", "api")], Some("api")),
            (&[("service.name", "api"), ("service.namespace", "shop")], Some("shop.api")),
            (&[("service.name", "api"), ("k8s.deployment.name", "web")], Some("api")),
            (&[("service.name", "unknown_service:python"), ("k8s.deployment.name", "web")], Some("web")),
            (&[("service.name", "unknown_service"), ("k8s.job.name", "j"), ("k8s.daemonset.name", "d")], Some("j")),
            (&[("service.name", "unknown_service"), ("service.namespace", "ns")], Some("ns.unknown_service")),
            (&[("k8s.cronjob.name", "c")], Some("c")),
            (&[], None),
        ];
        for (attrs, expected) in rows {
            assert_eq!(cloud_role(&resource(attrs)).as_deref(), *expected, "{attrs:?}");
        }
    }

    #[test]
    fn cloud_role_instance_rows() {
        let rows: &[Row] = &[
            (&[("k8s.pod.name", "pod-1"), ("service.instance.id", "i"), ("host.name", "h")], Some("pod-1")),
            (&[("service.instance.id", "i"), ("host.name", "h")], Some("i")),
            (&[("host.name", "h")], Some("h")),
            (&[], None),
        ];
        for (attrs, expected) in rows {
            assert_eq!(cloud_role_instance(&resource(attrs)).as_deref(), *expected, "{attrs:?}");
        }
    }

    #[test]
    fn sdk_version_rows() {
        let v = SDK_VERSION;
        let rows: &[(&[(&str, &str)], String)] = &[
            (
                &[("telemetry.sdk.language", "python"), ("process.runtime.version", "3.12.1"), ("os.type", "linux")],
                format!("ulm_py3.12.1:polytel{v}"),
            ),
            (
                &[
                    ("telemetry.sdk.language", "nodejs"),
                    ("os.type", "windows"),
                    ("cloud.platform", "azure.app_service"),
                ],
                format!("awm_node:polytel{v}"),
            ),
            (&[("telemetry.sdk.language", "go"), ("cloud.platform", "azure.functions")], format!("fum_go:polytel{v}")),
            (&[("telemetry.sdk.language", "rust"), ("k8s.pod.name", "p")], format!("kum_rust:polytel{v}")),
            (&[("os.type", "darwin")], format!("uum_unknown:polytel{v}")),
        ];
        for (attrs, expected) in rows {
            assert_eq!(&sdk_version(&resource(attrs)), expected, "{attrs:?}");
        }
    }

    #[test]
    fn part_a_tags() {
        let tags = part_a(&resource(&[
            ("service.name", "api"),
            ("service.version", "1.2.3"),
            ("service.instance.id", "inst"),
            ("host.name", "box"),
            ("telemetry.sdk.language", "rust"),
        ]));
        let expected: Tags = [
            ("ai.cloud.role", "api"),
            ("ai.cloud.roleInstance", "inst"),
            ("ai.internal.nodeName", "inst"),
            ("ai.application.ver", "1.2.3"),
            ("ai.device.id", "box"),
            ("ai.device.type", "Other"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .chain([("ai.internal.sdkVersion", format!("uum_rust:polytel{SDK_VERSION}"))])
        .collect();
        assert_eq!(tags, expected);
    }
}
