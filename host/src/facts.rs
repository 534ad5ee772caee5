//! The facts resource detection reads, as this machine and process report
//! them. The core decides which become attributes and how they are spelled
//! (`polytel_core::detect`); what a platform does not offer is left out.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

/// The container id is on the first lines of cgroup and mountinfo; a host
/// with thousands of mounts must not make configuration slow.
const MAX_PROC_TEXT: u64 = 64 * 1024;

/// The facts as the `host` member of the core's configuration JSON.
pub fn gather() -> Value {
    let exe = std::env::current_exe().ok();
    let mut facts = Map::new();
    for (key, value) in [
        ("host_name", host_name()),
        ("host_arch", Some(std::env::consts::ARCH.to_owned())),
        ("os_type", Some(std::env::consts::OS.to_owned())),
        ("os_description", os_description()),
        (
            "process_executable_name",
            exe.as_deref().and_then(Path::file_name).and_then(OsStr::to_str).map(str::to_owned),
        ),
        ("process_executable_path", exe.as_deref().and_then(Path::to_str).map(str::to_owned)),
        // A compiled program has no runtime version to report without a build script.
        ("process_runtime_name", Some("rust".to_owned())),
        ("cgroup", read_capped("/proc/self/cgroup")),
        ("mountinfo", read_capped("/proc/self/mountinfo")),
    ] {
        if let Some(v) = value {
            facts.insert(key.to_owned(), Value::String(v));
        }
    }
    facts.insert("process_pid".to_owned(), std::process::id().into());
    Value::Object(facts)
}

fn host_name() -> Option<String> {
    if cfg!(windows) {
        return std::env::var("COMPUTERNAME").ok();
    }
    read_capped("/proc/sys/kernel/hostname")
}

/// The kernel, as `uname -sr` prints it: inside a container /etc/os-release
/// describes the image, not the operating system that runs it.
fn os_description() -> Option<String> {
    let name = read_capped("/proc/sys/kernel/ostype")?;
    let release = read_capped("/proc/sys/kernel/osrelease")?;
    Some(format!("{} {}", name.trim(), release.trim()))
}

/// A file's text, up to `MAX_PROC_TEXT` bytes; `None` where it does not exist.
fn read_capped(path: &str) -> Option<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path).ok()?.take(MAX_PROC_TEXT).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 == MAX_PROC_TEXT {
        // A line cut short could end in what looks like a whole id.
        bytes.truncate(bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1));
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use polytel_core::detect::{detect, HostFacts};
    use polytel_core::env::Env;
    use polytel_core::proto::tonic::common::v1::any_value::Value as Any;

    #[test]
    fn gathered_facts_are_what_the_core_reads() {
        let facts = super::gather();
        assert_eq!(facts["process_pid"], std::process::id());
        let facts: HostFacts = serde_json::from_value(facts).expect("every gathered fact is a HostFacts field");
        let vars = BTreeMap::new();
        let mut warnings = Vec::new();
        let attrs = detect(&facts, &mut Env::new(&vars, &mut warnings), None);
        let get = |key: &str| {
            attrs.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Any::StringValue(s) => Some(s.clone()),
                Any::IntValue(i) => Some(i.to_string()),
                _ => None,
            })
        };
        assert_eq!(get("process.pid"), Some(std::process::id().to_string()));
        assert_eq!(get("process.runtime.name").as_deref(), Some("rust"));
        assert!(get("process.executable.path").is_some_and(|p| p.ends_with(&get("process.executable.name").unwrap())));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(get("host.arch").as_deref(), Some("amd64"));
        }
        if cfg!(target_os = "linux") {
            assert_eq!(get("os.type").as_deref(), Some("linux"));
            assert!(get("os.description").is_some_and(|d| d.starts_with("Linux ")), "{attrs:?}");
            assert!(get("host.name").is_some_and(|h| !h.contains('\n')), "{attrs:?}");
            assert!(facts.cgroup.is_some() && facts.mountinfo.is_some());
        }
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
