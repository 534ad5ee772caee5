//! Records, for the report, the versions Cargo.lock resolved and the compiler.

use std::path::Path;

fn main() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    // Relative to the package, so a build directory shared by two checkouts watches the right one.
    println!("cargo:rerun-if-changed=../../Cargo.lock");
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let wanted =
        ["opentelemetry", "opentelemetry_sdk", "opentelemetry-otlp", "opentelemetry-proto", "wasmtime", "reqwest"];
    let mut found: Vec<String> = Vec::new();
    for block in text.split("[[package]]") {
        let field =
            |key: &str| block.lines().find_map(|l| l.strip_prefix(key).map(|v| v.trim().trim_matches('"').to_owned()));
        if let (Some(name), Some(version)) = (field("name = "), field("version = ")) {
            if wanted.contains(&name.as_str()) {
                found.push(format!("{name} {version}"));
            }
        }
    }
    found.sort_by_key(|s| wanted.iter().position(|w| s.split(' ').next() == Some(*w)));
    println!("cargo:rustc-env=BENCH_LOCKED_VERSIONS={}", found.join(", "));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    println!("cargo:rustc-env=BENCH_RUSTC_VERSION={}", version.trim());
}
