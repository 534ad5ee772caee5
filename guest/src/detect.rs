//! Resource detection from facts the host read (host, process, container) and
//! from the environment (Kubernetes, cloud platforms). Attribute names and
//! well-known values follow the OpenTelemetry semantic conventions' attribute
//! registry (open-telemetry/semantic-conventions, docs/registry/attributes).

use opentelemetry_proto::tonic::common::v1::KeyValue;
use serde::Deserialize;

use crate::attributes::{int_value, key_value, string_value};
use crate::env::Env;

/// What the host knows that the core cannot see. Every field is optional: a
/// host passes what its platform offers, as it reads it; the core decides
/// what becomes an attribute.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HostFacts {
    /// telemetry.sdk.language: python, nodejs, webjs, go, rust.
    #[serde(default)]
    pub sdk_language: Option<String>,
    /// Whether the host can make gRPC calls (`destination::grpc`).
    #[serde(default)]
    pub grpc: bool,
    /// The host name as the system reports it.
    #[serde(default)]
    pub host_name: Option<String>,
    /// The CPU architecture, in the semantic conventions' spelling (amd64,
    /// arm64, …) or the language's own (x86_64, aarch64, x64, …).
    #[serde(default)]
    pub host_arch: Option<String>,
    /// The operating system, in the semantic conventions' spelling (linux,
    /// darwin, windows, …) or the language's own (macos, win32, …).
    #[serde(default)]
    pub os_type: Option<String>,
    /// Human-readable OS version, such as "Linux 6.8.0-45-generic".
    #[serde(default)]
    pub os_description: Option<String>,
    #[serde(default)]
    pub process_pid: Option<u64>,
    #[serde(default)]
    pub process_executable_name: Option<String>,
    #[serde(default)]
    pub process_executable_path: Option<String>,
    #[serde(default)]
    pub process_runtime_name: Option<String>,
    #[serde(default)]
    pub process_runtime_version: Option<String>,
    #[serde(default)]
    pub process_runtime_description: Option<String>,
    /// The text of /proc/self/cgroup.
    #[serde(default)]
    pub cgroup: Option<String>,
    /// The text of /proc/self/mountinfo.
    #[serde(default)]
    pub mountinfo: Option<String>,
}

type Detector = fn(&HostFacts, &Env, &mut Vec<KeyValue>);

/// Every detector, in the order their attributes are returned.
const DETECTORS: [(&str, Detector); 5] =
    [("host", host), ("process", process), ("container", container), ("k8s", k8s), ("cloud", cloud)];

/// Detected resource attributes; they rank below OTEL_RESOURCE_ATTRIBUTES.
/// `detectors` is the option `resource_detectors`; `None` defers to
/// POLYTEL_RESOURCE_DETECTORS, and without it every detector runs.
pub fn detect(facts: &HostFacts, env: &mut Env, detectors: Option<&[String]>) -> Vec<KeyValue> {
    let enabled = enabled(env, detectors);
    let mut out = Vec::new();
    for ((_, detector), on) in DETECTORS.iter().zip(enabled) {
        if on {
            detector(facts, env, &mut out);
        }
    }
    out
}

fn enabled(env: &mut Env, option: Option<&[String]>) -> [bool; DETECTORS.len()] {
    let (source, names): (&str, Vec<&str>) = match option {
        Some(list) => ("The option resource_detectors", list.iter().map(String::as_str).collect()),
        None => match env.get("POLYTEL_RESOURCE_DETECTORS") {
            Some(v) => ("POLYTEL_RESOURCE_DETECTORS", v.split(',').collect()),
            None => return [true; DETECTORS.len()],
        },
    };
    let mut on = [false; DETECTORS.len()];
    let mut unknown = Vec::new();
    for name in names.into_iter().map(str::trim).filter(|n| !n.is_empty()) {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "all" => on = [true; DETECTORS.len()],
            "none" => {}
            known => match DETECTORS.iter().position(|(n, _)| *n == known) {
                Some(i) => on[i] = true,
                None => unknown.push(name),
            },
        }
    }
    // One warning however many names are wrong: warnings are deduplicated by
    // comparing with every earlier one.
    let choices = "host, process, container, k8s, cloud, all or none";
    match unknown.as_slice() {
        [] => {}
        [one] => {
            env.warn(format!("{source} names {one:?}, which is not a resource detector ({choices}); ignoring it."))
        }
        [first, ..] => env.warn(format!(
            "{source} has {} names that are not resource detectors ({choices}), {first:?} first; ignoring them.",
            unknown.len()
        )),
    }
    on
}

/// Adds `key` when `value` has something besides whitespace.
fn put(out: &mut Vec<KeyValue>, key: &str, value: Option<&str>) {
    if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
        out.push(key_value(key, string_value(v)));
    }
}

fn put_int(out: &mut Vec<KeyValue>, key: &str, value: Option<i64>) {
    if let Some(v) = value {
        out.push(key_value(key, int_value(v)));
    }
}

fn host(f: &HostFacts, _: &Env, out: &mut Vec<KeyValue>) {
    put(out, "host.name", f.host_name.as_deref());
    put(out, "host.arch", f.host_arch.as_deref().map(str::trim).map(arch));
    put(out, "os.type", f.os_type.as_deref().map(str::trim).map(os_type));
    put(out, "os.description", f.os_description.as_deref());
}

/// The well-known host.arch value for the spellings languages use; any other
/// value is kept, as the semantic conventions allow.
fn arch(v: &str) -> &str {
    match v.to_ascii_lowercase().as_str() {
        "amd64" | "x86_64" | "x64" => "amd64",
        "arm64" | "aarch64" => "arm64",
        "arm32" | "arm" | "armv6l" | "armv7l" | "armv7" => "arm32",
        "x86" | "i386" | "i486" | "i586" | "i686" | "ia32" => "x86",
        "ppc64" | "ppc64le" | "powerpc64" | "powerpc64le" => "ppc64",
        "ppc32" | "ppc" | "powerpc" => "ppc32",
        "ia64" => "ia64",
        "s390x" => "s390x",
        _ => v,
    }
}

/// The well-known os.type value for the spellings languages use.
fn os_type(v: &str) -> &str {
    match v.to_ascii_lowercase().as_str() {
        "linux" | "android" => "linux",
        "darwin" | "macos" | "ios" => "darwin",
        "windows" | "win32" => "windows",
        "freebsd" => "freebsd",
        "netbsd" => "netbsd",
        "openbsd" => "openbsd",
        "dragonflybsd" | "dragonfly" => "dragonflybsd",
        // Node reports illumos and Solaris alike as sunos.
        "solaris" | "sunos" | "illumos" => "solaris",
        "aix" => "aix",
        "hpux" => "hpux",
        // Node on z/OS reports os390; `z_os` is the deprecated spelling.
        "zos" | "z_os" | "os390" => "zos",
        _ => v,
    }
}

fn process(f: &HostFacts, _: &Env, out: &mut Vec<KeyValue>) {
    put_int(out, "process.pid", f.process_pid.and_then(|p| i64::try_from(p).ok()));
    put(out, "process.executable.name", f.process_executable_name.as_deref());
    put(out, "process.executable.path", f.process_executable_path.as_deref());
    put(out, "process.runtime.name", f.process_runtime_name.as_deref());
    put(out, "process.runtime.version", f.process_runtime_version.as_deref());
    put(out, "process.runtime.description", f.process_runtime_description.as_deref());
}

fn container(f: &HostFacts, _: &Env, out: &mut Vec<KeyValue>) {
    let id = f
        .cgroup
        .as_deref()
        .and_then(cgroup_container_id)
        .or_else(|| f.mountinfo.as_deref().and_then(mountinfo_container_id));
    put(out, "container.id", id);
}

/// Docker, containerd and CRI-O name a container by 64 hex digits.
fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The id at the end of a cgroup path (`hierarchy:controllers:path` lines):
/// `/docker/<id>`, `/kubepods/…/<id>`, or a systemd unit such as
/// `docker-<id>.scope`, `cri-containerd-<id>.scope` or `crio-<id>.scope`.
fn cgroup_container_id(text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?.trim_end();
        let last = path.rsplit('/').next()?;
        let unit = last.strip_suffix(".scope").unwrap_or(last);
        let id = unit.rsplit('-').next()?;
        is_container_id(id).then_some(id)
    })
}

/// Under cgroup v2 a container sees `0::/`, but the files the runtime
/// bind-mounts into it come from a directory named by its id, such as
/// `/var/lib/docker/containers/<id>/hostname` or Podman's
/// `…/overlay-containers/<id>/userdata/hostname`. Only those files count: the
/// host's own mountinfo lists every running container's `containers/<id>/mounts/shm`.
fn mountinfo_container_id(text: &str) -> Option<&str> {
    text.lines().flat_map(str::split_whitespace).find_map(|field| {
        if !["/hostname", "/hosts", "/resolv.conf"].iter().any(|f| field.ends_with(f)) {
            return None;
        }
        let segments = field.split('/');
        segments.clone().zip(segments.skip(1)).find_map(|(dir, id)| {
            let named = dir == "containers" || dir.ends_with("-containers");
            (named && is_container_id(id)).then_some(id)
        })
    })
}

fn k8s(_: &HostFacts, env: &Env, out: &mut Vec<KeyValue>) {
    // Set in every container Kubernetes starts; the rest come from the
    // downward API, where the deployment chooses the variable names.
    if env.get("KUBERNETES_SERVICE_HOST").is_none() {
        return;
    }
    // A pod's hostname is its name unless the pod spec sets another.
    put(out, "k8s.pod.name", env.get("K8S_POD_NAME").or_else(|| env.get("HOSTNAME")));
    put(out, "k8s.namespace.name", env.first(&["K8S_NAMESPACE_NAME", "POD_NAMESPACE"]).map(|(_, v)| v));
    put(out, "k8s.node.name", env.get("K8S_NODE_NAME"));
    put(out, "k8s.pod.uid", env.get("K8S_POD_UID"));
}

/// faas.max_memory is in bytes; the platforms give MiB (registry faas.md:
/// "AWS_LAMBDA_FUNCTION_MEMORY_SIZE … must be multiplied by 1,048,576").
fn mib_to_bytes(mib: Option<&str>) -> Option<i64> {
    mib?.parse::<i64>().ok().filter(|m| *m >= 0)?.checked_mul(1 << 20)
}

/// The first platform whose runtime variables are set, the more specific
/// first: Cloud Functions also sets Cloud Run's K_SERVICE and K_REVISION, and
/// Azure Functions runs on App Service and sets its WEBSITE_* variables.
fn cloud(_: &HostFacts, env: &Env, out: &mut Vec<KeyValue>) {
    let mut platform = |provider: &str, name: &str| {
        put(out, "cloud.provider", Some(provider));
        put(out, "cloud.platform", Some(name));
    };
    if let Some(function) = env.get("AWS_LAMBDA_FUNCTION_NAME") {
        platform("aws", "aws_lambda");
        put(out, "cloud.region", env.get("AWS_REGION"));
        put(out, "faas.name", Some(function));
        put(out, "faas.version", env.get("AWS_LAMBDA_FUNCTION_VERSION"));
        // registry faas.md: on AWS Lambda, faas.instance is the log stream name.
        put(out, "faas.instance", env.get("AWS_LAMBDA_LOG_STREAM_NAME"));
        put_int(out, "faas.max_memory", mib_to_bytes(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")));
    } else if env.first(&["ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI"]).is_some() {
        platform("aws", "aws_ecs");
        put(out, "cloud.region", env.get("AWS_REGION"));
    } else if let Some(service) = env.get("K_SERVICE").filter(|_| env.get("FUNCTION_TARGET").is_some()) {
        platform("gcp", "gcp_cloud_functions");
        put(out, "faas.name", Some(service));
        put(out, "faas.version", env.get("K_REVISION"));
        put(out, "cloud.account.id", env.get("GOOGLE_CLOUD_PROJECT"));
    } else if let Some(service) = env.get("K_SERVICE").filter(|_| env.get("K_REVISION").is_some()) {
        platform("gcp", "gcp_cloud_run");
        put(out, "faas.name", Some(service));
        put(out, "faas.version", env.get("K_REVISION"));
        put(out, "cloud.account.id", env.get("GOOGLE_CLOUD_PROJECT"));
    } else if let Some(service) = env.get("GAE_SERVICE") {
        platform("gcp", "gcp_app_engine");
        put(out, "faas.name", Some(service));
        put(out, "faas.version", env.get("GAE_VERSION"));
        put(out, "faas.instance", env.get("GAE_INSTANCE"));
        put(out, "cloud.account.id", env.get("GOOGLE_CLOUD_PROJECT"));
    } else if let Some(site) = env.get("WEBSITE_SITE_NAME") {
        // The registry's current Azure values are dotted; azure_functions and
        // azure_app_service are deprecated (registry cloud.md).
        if env.get("FUNCTIONS_WORKER_RUNTIME").is_some() {
            platform("azure", "azure.functions");
            put(out, "cloud.region", env.get("REGION_NAME"));
            // No faas.version (registry faas.md: not applicable on Azure
            // Functions) and no cloud.resource_id (registry cloud.md: the
            // function's id, so a span attribute).
            put(out, "faas.name", Some(site));
            put(out, "faas.instance", env.get("WEBSITE_INSTANCE_ID"));
            put_int(out, "faas.max_memory", mib_to_bytes(env.get("WEBSITE_MEMORY_LIMIT_MB")));
        } else {
            platform("azure", "azure.app_service");
            put(out, "cloud.region", env.get("REGION_NAME"));
            put(out, "cloud.resource_id", app_service_resource_id(env, site).as_deref());
            put(out, "deployment.environment.name", env.get("WEBSITE_SLOT_NAME"));
            put(out, "host.id", env.get("WEBSITE_HOSTNAME"));
            put(out, "service.instance.id", env.get("WEBSITE_INSTANCE_ID"));
            // Not in the registry; the name the OpenTelemetry Azure detectors use.
            put(out, "azure.app.service.stamp", env.get("WEBSITE_HOME_STAMPNAME"));
        }
    }
}

/// The app's fully qualified Azure resource id. WEBSITE_OWNER_NAME is
/// `<subscription id>+<resource group>-<region>webspace`.
fn app_service_resource_id(env: &Env, site: &str) -> Option<String> {
    let subscription = env.get("WEBSITE_OWNER_NAME")?.split('+').next().filter(|s| !s.is_empty())?;
    let group = env.get("WEBSITE_RESOURCE_GROUP")?;
    Some(format!("/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Web/sites/{site}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    type Vars<'a> = Vec<(&'a str, &'a str)>;
    /// The option resource_detectors.
    type Names<'a> = Option<&'a [&'a str]>;

    const ID: &str = "3f4e2b1a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

    fn s(key: &str, value: &str) -> KeyValue {
        key_value(key, string_value(value))
    }

    fn i(key: &str, value: i64) -> KeyValue {
        key_value(key, int_value(value))
    }

    /// Runs `detect` on facts given as the JSON a host sends; returns the
    /// attributes and the warnings.
    fn run(facts: &str, vars: &[(&str, &str)], detectors: Names) -> (Vec<KeyValue>, Vec<String>) {
        let facts: HostFacts = serde_json::from_str(facts).unwrap();
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let detectors: Option<Vec<String>> = detectors.map(|d| d.iter().map(|n| n.to_string()).collect());
        let mut warnings = Vec::new();
        let attrs = detect(&facts, &mut Env::new(&vars, &mut warnings), detectors.as_deref());
        (attrs, warnings)
    }

    fn facts(cgroup: &str, mountinfo: &str) -> String {
        serde_json::json!({ "cgroup": cgroup, "mountinfo": mountinfo }).to_string()
    }

    #[test]
    fn host_and_process_facts() {
        let facts = r#"{"sdk_language": "rust", "grpc": true, "host_name": "build-7", "host_arch": "x86_64",
            "os_type": "linux", "os_description": "Linux 6.8.0-45-generic", "process_pid": 4242,
            "process_executable_name": "agent", "process_executable_path": "/srv/agent/bin/agent",
            "process_runtime_name": "rust"}"#;
        let (attrs, warnings) = run(facts, &[], None);
        assert_eq!(
            attrs,
            [
                s("host.name", "build-7"),
                s("host.arch", "amd64"),
                s("os.type", "linux"),
                s("os.description", "Linux 6.8.0-45-generic"),
                i("process.pid", 4242),
                s("process.executable.name", "agent"),
                s("process.executable.path", "/srv/agent/bin/agent"),
                s("process.runtime.name", "rust"),
            ]
        );
        assert!(warnings.is_empty());
        let (attrs, _) = run(
            r#"{"process_runtime_name": "CPython", "process_runtime_version": "3.12.3",
                "process_runtime_description": "3.12.3 (main, Apr 10 2024) [GCC 13.2.0]", "host_name": "  "}"#,
            &[],
            None,
        );
        assert_eq!(
            attrs,
            [
                s("process.runtime.name", "CPython"),
                s("process.runtime.version", "3.12.3"),
                s("process.runtime.description", "3.12.3 (main, Apr 10 2024) [GCC 13.2.0]"),
            ]
        );
    }

    #[test]
    fn platform_spellings_become_semconv_values() {
        for (given, expected) in [
            ("x86_64", "amd64"),
            ("x64", "amd64"),
            ("AMD64", "amd64"),
            ("aarch64", "arm64"),
            ("arm", "arm32"),
            ("armv7l", "arm32"),
            ("i686", "x86"),
            ("ia32", "x86"),
            ("powerpc64", "ppc64"),
            ("ppc64le", "ppc64"),
            ("powerpc", "ppc32"),
            ("s390x", "s390x"),
            ("riscv64", "riscv64"),
        ] {
            assert_eq!(arch(given), expected, "{given}");
        }
        for (given, expected) in [
            ("Linux", "linux"),
            ("macos", "darwin"),
            ("Darwin", "darwin"),
            ("win32", "windows"),
            ("dragonfly", "dragonflybsd"),
            ("sunos", "solaris"),
            ("os390", "zos"),
            ("freebsd", "freebsd"),
            ("haiku", "haiku"),
        ] {
            assert_eq!(os_type(given), expected, "{given}");
        }
    }

    #[test]
    fn container_id_from_cgroup_and_mountinfo() {
        let docker_v1 = format!(
            "12:perf_event:/docker/{ID}\n11:cpuset:/docker/{ID}\n4:memory:/docker/{ID}\n\
             1:name=systemd:/docker/{ID}\n0::/system.slice/containerd.service\n"
        );
        let kubepods_v1 = format!("3:cpu,cpuacct:/kubepods/burstable/pod0a1b2c3d-1111-2222-3333-444455556666/{ID}\n");
        let systemd_docker = format!("0::/system.slice/docker-{ID}.scope\n");
        let cri_containerd = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b2c3d_1111.slice/cri-containerd-{ID}.scope\n"
        );
        let crio = format!("1:name=systemd:/kubepods.slice/kubepods-pod0a1b.slice/crio-{ID}.scope\n");
        let docker_v2_mountinfo = format!(
            "736 700 0:51 / / rw,relatime master:309 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC\n\
             755 736 254:1 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw\n\
             756 736 254:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n"
        );
        let desktop_mountinfo =
            format!("901 880 0:80 /docker/containers/{ID}/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n");
        let podman_mountinfo = format!(
            "1200 1100 0:44 /containers/storage/overlay-containers/{ID}/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw\n"
        );
        // A Docker host's own mountinfo: a container's shm, not this process's container.
        let host_mountinfo = format!("312 29 0:60 / /var/lib/docker/containers/{ID}/mounts/shm rw - tmpfs shm rw\n");
        let sandbox_mountinfo = format!(
            "800 790 254:1 /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/{ID}/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n"
        );
        let cases: [(&str, String, Option<&str>); 14] = [
            ("docker cgroup v1", facts(&docker_v1, ""), Some(ID)),
            ("kubepods cgroup v1", facts(&kubepods_v1, ""), Some(ID)),
            ("systemd docker scope", facts(&systemd_docker, ""), Some(ID)),
            ("cri-containerd scope", facts(&cri_containerd, ""), Some(ID)),
            ("crio scope", facts(&crio, ""), Some(ID)),
            ("docker cgroup v2", facts("0::/\n", &docker_v2_mountinfo), Some(ID)),
            ("docker desktop", facts("0::/\n", &desktop_mountinfo), Some(ID)),
            ("podman", facts("0::/\n", &podman_mountinfo), Some(ID)),
            ("docker host", facts("0::/user.slice/user-1000.slice/session-3.scope\n", &host_mountinfo), None),
            ("pod sandbox", facts("0::/\n", &sandbox_mountinfo), None),
            ("63 digits", facts(&format!("1:cpu:/docker/{}\n", &ID[1..]), ""), None),
            ("65 digits", facts(&format!("1:cpu:/docker/a{ID}\n",), ""), None),
            ("not hex", facts(&format!("1:cpu:/docker/{}g\n", &ID[1..]), ""), None),
            ("no facts", "{}".to_string(), None),
        ];
        for (name, facts, expected) in cases {
            let (attrs, _) = run(&facts, &[], Some(&["container"]));
            assert_eq!(attrs, expected.map(|id| s("container.id", id)).into_iter().collect::<Vec<_>>(), "{name}");
        }
    }

    #[test]
    fn kubernetes_needs_its_service_host() {
        let pod = [
            ("HOSTNAME", "checkout-7d9f8-x2x4q"),
            ("POD_NAMESPACE", "shop"),
            ("K8S_NODE_NAME", "node-3"),
            ("K8S_POD_UID", "0a1b2c3d-1111-2222-3333-444455556666"),
        ];
        assert_eq!(run("{}", &pod, None).0, []);
        let mut vars = pod.to_vec();
        vars.push(("KUBERNETES_SERVICE_HOST", "10.96.0.1"));
        assert_eq!(
            run("{}", &vars, None).0,
            [
                s("k8s.pod.name", "checkout-7d9f8-x2x4q"),
                s("k8s.namespace.name", "shop"),
                s("k8s.node.name", "node-3"),
                s("k8s.pod.uid", "0a1b2c3d-1111-2222-3333-444455556666"),
            ]
        );
        vars.extend([("K8S_POD_NAME", "checkout-0"), ("K8S_NAMESPACE_NAME", "store")]);
        let attrs = run("{}", &vars, None).0;
        assert_eq!(attrs[..2], [s("k8s.pod.name", "checkout-0"), s("k8s.namespace.name", "store")]);
    }

    #[test]
    fn cloud_platforms() {
        let cases: Vec<(&str, Vars, Vec<KeyValue>)> = vec![
            (
                "aws lambda",
                vec![
                    ("AWS_LAMBDA_FUNCTION_NAME", "resize-image"),
                    ("AWS_REGION", "eu-west-1"),
                    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                    ("AWS_LAMBDA_LOG_STREAM_NAME", "2024/05/01/[$LATEST]2f399eb14537447da05ab2a2e39309de"),
                    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
                ],
                vec![
                    s("cloud.provider", "aws"),
                    s("cloud.platform", "aws_lambda"),
                    s("cloud.region", "eu-west-1"),
                    s("faas.name", "resize-image"),
                    s("faas.version", "$LATEST"),
                    s("faas.instance", "2024/05/01/[$LATEST]2f399eb14537447da05ab2a2e39309de"),
                    i("faas.max_memory", 134_217_728),
                ],
            ),
            (
                "aws ecs",
                vec![("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/abc"), ("AWS_REGION", "us-east-2")],
                vec![s("cloud.provider", "aws"), s("cloud.platform", "aws_ecs"), s("cloud.region", "us-east-2")],
            ),
            (
                "aws ecs, metadata v3, no region",
                vec![("ECS_CONTAINER_METADATA_URI", "http://169.254.170.2/v3/abc")],
                vec![s("cloud.provider", "aws"), s("cloud.platform", "aws_ecs")],
            ),
            (
                "gcp cloud run",
                vec![
                    ("K_SERVICE", "checkout"),
                    ("K_REVISION", "checkout-00042-xyz"),
                    ("K_CONFIGURATION", "checkout"),
                    ("GOOGLE_CLOUD_PROJECT", "shop-prod"),
                ],
                vec![
                    s("cloud.provider", "gcp"),
                    s("cloud.platform", "gcp_cloud_run"),
                    s("faas.name", "checkout"),
                    s("faas.version", "checkout-00042-xyz"),
                    s("cloud.account.id", "shop-prod"),
                ],
            ),
            (
                "gcp cloud functions",
                vec![("K_SERVICE", "on-upload"), ("K_REVISION", "7"), ("FUNCTION_TARGET", "handle_upload")],
                vec![
                    s("cloud.provider", "gcp"),
                    s("cloud.platform", "gcp_cloud_functions"),
                    s("faas.name", "on-upload"),
                    s("faas.version", "7"),
                ],
            ),
            (
                "gcp app engine",
                vec![
                    ("GAE_SERVICE", "default"),
                    ("GAE_VERSION", "20240501t101010"),
                    ("GAE_INSTANCE", "00c61b117c5f"),
                    ("GOOGLE_CLOUD_PROJECT", "shop-prod"),
                ],
                vec![
                    s("cloud.provider", "gcp"),
                    s("cloud.platform", "gcp_app_engine"),
                    s("faas.name", "default"),
                    s("faas.version", "20240501t101010"),
                    s("faas.instance", "00c61b117c5f"),
                    s("cloud.account.id", "shop-prod"),
                ],
            ),
            (
                "azure functions",
                vec![
                    ("FUNCTIONS_WORKER_RUNTIME", "python"),
                    ("WEBSITE_SITE_NAME", "orders-func"),
                    ("WEBSITE_INSTANCE_ID", "a1b2c3"),
                    ("WEBSITE_MEMORY_LIMIT_MB", "1536"),
                    ("REGION_NAME", "West Europe"),
                    ("WEBSITE_OWNER_NAME", "sub-1+orders-rg-WestEuropewebspace"),
                    ("WEBSITE_RESOURCE_GROUP", "orders-rg"),
                ],
                vec![
                    s("cloud.provider", "azure"),
                    s("cloud.platform", "azure.functions"),
                    s("cloud.region", "West Europe"),
                    s("faas.name", "orders-func"),
                    s("faas.instance", "a1b2c3"),
                    i("faas.max_memory", 1_610_612_736),
                ],
            ),
            (
                "azure app service",
                vec![
                    ("WEBSITE_SITE_NAME", "orders-web"),
                    ("REGION_NAME", "West Europe"),
                    ("WEBSITE_OWNER_NAME", "6f1c2a3b-0000-4000-8000-123456789abc+orders-rg-WestEuropewebspace"),
                    ("WEBSITE_RESOURCE_GROUP", "orders-rg"),
                    ("WEBSITE_SLOT_NAME", "Production"),
                    ("WEBSITE_HOSTNAME", "orders-web.azurewebsites.net"),
                    ("WEBSITE_INSTANCE_ID", "e3b0c44298fc"),
                    ("WEBSITE_HOME_STAMPNAME", "waws-prod-am2-123"),
                ],
                vec![
                    s("cloud.provider", "azure"),
                    s("cloud.platform", "azure.app_service"),
                    s("cloud.region", "West Europe"),
                    s(
                        "cloud.resource_id",
                        "/subscriptions/6f1c2a3b-0000-4000-8000-123456789abc/resourceGroups/orders-rg/providers/Microsoft.Web/sites/orders-web",
                    ),
                    s("deployment.environment.name", "Production"),
                    s("host.id", "orders-web.azurewebsites.net"),
                    s("service.instance.id", "e3b0c44298fc"),
                    s("azure.app.service.stamp", "waws-prod-am2-123"),
                ],
            ),
            (
                "azure app service without its owner",
                vec![("WEBSITE_SITE_NAME", "orders-web"), ("WEBSITE_RESOURCE_GROUP", "orders-rg")],
                vec![s("cloud.provider", "azure"), s("cloud.platform", "azure.app_service")],
            ),
            ("a laptop with a project set", vec![("GOOGLE_CLOUD_PROJECT", "shop-dev"), ("AWS_REGION", "eu-west-1")], vec![]),
            ("knative service without a revision", vec![("K_SERVICE", "checkout")], vec![]),
        ];
        for (name, vars, expected) in cases {
            let (attrs, warnings) = run("{}", &vars, Some(&["cloud"]));
            assert_eq!(attrs, expected, "{name}");
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
        }
    }

    #[test]
    fn which_detectors_run() {
        let facts = format!(r#"{{"host_name": "h", "process_pid": 7, "cgroup": "1:cpu:/docker/{ID}"}}"#);
        let lambda = [("AWS_LAMBDA_FUNCTION_NAME", "f"), ("KUBERNETES_SERVICE_HOST", "10.0.0.1"), ("HOSTNAME", "p")];
        let keys = |vars: &[(&str, &str)], detectors: Names| {
            let (attrs, warnings) = run(&facts, vars, detectors);
            (attrs.into_iter().map(|kv| kv.key).collect::<Vec<_>>(), warnings)
        };
        let everything = vec![
            "host.name",
            "process.pid",
            "container.id",
            "k8s.pod.name",
            "cloud.provider",
            "cloud.platform",
            "faas.name",
        ];
        let cases: [(&str, Vars, Names, Vec<&str>); 8] = [
            ("default: all", lambda.to_vec(), None, everything.clone()),
            (
                "the option, in any order and case",
                lambda.to_vec(),
                Some(&["Cloud", " host "]),
                vec!["host.name", "cloud.provider", "cloud.platform", "faas.name"],
            ),
            (
                "the option wins over the variable",
                vec![("POLYTEL_RESOURCE_DETECTORS", "host")],
                Some(&["process"]),
                vec!["process.pid"],
            ),
            (
                "the variable",
                vec![("POLYTEL_RESOURCE_DETECTORS", "CONTAINER, process")],
                None,
                vec!["process.pid", "container.id"],
            ),
            ("all", [lambda.as_slice(), &[("POLYTEL_RESOURCE_DETECTORS", "all")]].concat(), None, everything.clone()),
            ("none", vec![("POLYTEL_RESOURCE_DETECTORS", "none")], None, vec![]),
            ("an empty option", vec![], Some(&[]), vec![]),
            (
                "an empty variable is unset",
                vec![("POLYTEL_RESOURCE_DETECTORS", " ")],
                None,
                vec!["host.name", "process.pid", "container.id"],
            ),
        ];
        for (name, vars, detectors, expected) in cases {
            let (found, warnings) = keys(&vars, detectors);
            assert_eq!(found, expected, "{name}");
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
        }

        let (found, warnings) = keys(&[("POLYTEL_RESOURCE_DETECTORS", "host,hots")], None);
        assert_eq!(found, ["host.name"]);
        assert_eq!(
            warnings,
            ["POLYTEL_RESOURCE_DETECTORS names \"hots\", which is not a resource detector (host, process, container, k8s, cloud, all or none); ignoring it."]
        );
        let (_, warnings) = keys(&[], Some(&["gce", "eks", "host"]));
        assert_eq!(
            warnings,
            ["The option resource_detectors has 2 names that are not resource detectors (host, process, container, k8s, cloud, all or none), \"gce\" first; ignoring them."]
        );
    }

    #[test]
    fn odd_input_never_panics() {
        let huge = "é".repeat(1 << 20);
        let tricky = [
            format!("{huge}\n::\n:\n\n0::{huge}-{huge}.scope\n1:x:/é{ID}é/.scope"),
            format!("{huge}/containers/{ID}/hostname\n/containers//hostname -\n\u{0}\u{ffff}"),
            "::::::::\n-.scope\n/\n".to_string(),
        ];
        for text in &tricky {
            let facts =
                serde_json::json!({ "cgroup": text, "mountinfo": text, "host_name": huge, "process_pid": u64::MAX });
            let (attrs, _) = run(
                &facts.to_string(),
                &[("AWS_LAMBDA_FUNCTION_NAME", "f"), ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "99999999999999")],
                None,
            );
            assert!(attrs.iter().all(|kv| kv.key != "process.pid" && kv.key != "faas.max_memory"), "{attrs:?}");
        }
        let (attrs, _) = run(&facts("", &tricky[1]), &[], Some(&["container"]));
        assert_eq!(attrs, [s("container.id", ID)]);
        assert!(serde_json::from_str::<HostFacts>(r#"{"process_command_line": "secret"}"#).is_err());
        assert!(serde_json::from_str::<HostFacts>(r#"{"process_pid": -1}"#).is_err());
    }
}
