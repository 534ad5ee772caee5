//! Builds the core (guest/) for wasm32-unknown-unknown and turns it into the
//! component this crate embeds, so `cargo build --bin polytel` alone yields a
//! working command. The wasm target is installed with rustup if it is missing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    // Relative to this package: a build directory shared by two checkouts
    // (a cache kept outside the clone, say) then watches the files of the
    // checkout being built, not those of whichever built first.
    for watched in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed=../{watched}");
    }
    println!("cargo:rerun-if-env-changed=POLYTEL_COMPONENT");

    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    // A prebuilt component can be supplied (for example by a packaging step).
    let component = match env::var_os("POLYTEL_COMPONENT") {
        Some(path) => std::fs::read(&path).unwrap_or_else(|e| panic!("reading POLYTEL_COMPONENT {path:?}: {e}")),
        None => componentize(&strip_wasm_bindgen(&build_guest(&root, &out_dir, &[]))),
    };
    std::fs::write(out_dir.join("polytel.wasm"), component).unwrap();
    // The edge flavour: the same core with the `edge` feature (world polytel-edge).
    let edge = componentize(&strip_wasm_bindgen(&build_guest(&root, &out_dir, &["--features", "edge"])));
    std::fs::write(out_dir.join("polytel-edge.wasm"), edge).unwrap();
}

fn build_guest(root: &Path, out_dir: &Path, features: &[&str]) -> Vec<u8> {
    ensure_target();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // A target dir of its own (the outer build holds a lock on its own), kept
    // inside the outer one so it is cached and cleaned with it.
    let target_dir = out_dir.join("guest-target");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--package", "polytel-core", "--target", TARGET])
        .args(features)
        .arg("--target-dir")
        .arg(&target_dir)
        // The component ships: no debug info, one optimised unit.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort");
    // Settings meant for the outer (native) build must not leak into this one.
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER"]
    {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo to build the core for wasm");
    assert!(status.success(), "building the core (guest/) for {TARGET} failed; see the errors above");
    let module = target_dir.join(TARGET).join("release").join("polytel_core.wasm");
    std::fs::read(&module).unwrap_or_else(|e| panic!("reading {}: {e}", module.display()))
}

fn ensure_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == TARGET));
    match installed {
        Ok(true) => {}
        Ok(false) => {
            let ok = Command::new("rustup").args(["target", "add", TARGET]).status().map(|s| s.success());
            assert!(matches!(ok, Ok(true)), "`rustup target add {TARGET}` failed; install that target and build again");
        }
        // No rustup: the toolchain may still carry the target; cargo will say if not.
        Err(_) => {}
    }
}

/// opentelemetry-proto depends on opentelemetry, which depends on js-sys for
/// wasm32-unknown-unknown. js-sys exports wasm-bindgen's descriptor functions
/// and leaves a few wasm-bindgen imports reachable only from JavaScript glue the
/// core never runs. Dropping those exports, collecting garbage and turning the
/// last such imports into traps leaves a module whose only imports and exports
/// are the component's own, so the component imports nothing.
fn strip_wasm_bindgen(module: &[u8]) -> Vec<u8> {
    let is_bindgen = |n: &str| n.starts_with("__wbindgen") || n.starts_with("__wbg") || n.starts_with("__externref");
    let mut m = walrus::Module::from_buffer(module).expect("parsing the core module");
    let foreign: Vec<walrus::ExportId> = m
        .exports
        .iter()
        .filter(|e| {
            let n = e.name.as_str();
            is_bindgen(n) || matches!(n, "__abort_handler" | "__instance_terminated" | "__data_end" | "__heap_base")
        })
        .map(|e| e.id())
        .collect();
    for id in foreign {
        m.exports.delete(id);
    }
    walrus::passes::gc::run(&mut m);
    let imported: Vec<(walrus::ImportId, Option<walrus::FunctionId>)> = m
        .imports
        .iter()
        .filter(|i| is_bindgen(&i.module))
        .map(|i| (i.id(), if let walrus::ImportKind::Function(f) = i.kind { Some(f) } else { None }))
        .collect();
    for (import, func) in imported {
        let func =
            func.unwrap_or_else(|| panic!("the core imports a wasm-bindgen non-function: {:?}", m.imports.get(import)));
        m.replace_imported_func(func, |(body, _)| {
            body.unreachable();
        })
        .expect("replacing a wasm-bindgen import");
    }
    walrus::passes::gc::run(&mut m);
    m.emit_wasm()
}

fn componentize(module: &[u8]) -> Vec<u8> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .expect("the core module carries its WIT in a custom section")
        .validate(true)
        .encode()
        .expect("encoding the core as a component")
}
