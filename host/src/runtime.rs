//! Loads the embedded core component with wasmtime: one engine and one compiled
//! component per process, the compiled code cached on disk so start-up after the
//! first run is a deserialisation, not a compilation.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Result;
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "polytel",
});

pub use exports::polytel::telemetry::core as wit;

/// The core component, built by build.rs from guest/.
pub static COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/polytel.wasm"));

struct Loaded {
    engine: Engine,
    pre: PolytelPre<StoreLimits>,
}

/// The core's linear memory may not grow past this unless told otherwise: a
/// runaway batch then traps the core (which the host recovers from) instead of
/// taking the application's memory.
pub const DEFAULT_MEMORY_LIMIT: usize = 512 << 20;

/// One engine per process, and one compiled component per build of the core
/// run (the embedded one, unless `Options::core_component` names another).
fn loaded(component: &'static [u8]) -> Result<&'static Loaded> {
    static LOADED: Mutex<Vec<(&'static [u8], &'static Loaded)>> = Mutex::new(Vec::new());
    let mut all = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, l)) = all.iter().find(|(c, _)| std::ptr::eq(*c, component)) {
        return Ok(l);
    }
    // Every component loaded shares the first one's engine.
    let engine = match all.first() {
        Some((_, l)) => l.engine.clone(),
        None => {
            let mut config = Config::new();
            // Concurrency support makes every call about three times dearer; the core
            // is synchronous.
            config.concurrency_support(false);
            Engine::new(&config)?
        }
    };
    let compiled = load_component(&engine, component)?;
    let mut linker = Linker::new(&engine);
    // The pure core imports nothing. Another build may import WASI (the edge
    // flavour does, for its own sending), which a host never lets it use:
    // those imports trap, and `core` never calls them when given a seed.
    linker.define_unknown_imports_as_traps(&compiled)?;
    let pre = PolytelPre::new(linker.instantiate_pre(&compiled)?)?;
    let l: &'static Loaded = Box::leak(Box::new(Loaded { engine, pre }));
    all.push((component, l));
    Ok(l)
}

/// Where compiled code is cached: `$POLYTEL_CACHE`, else the user's cache directory.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("POLYTEL_CACHE") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("polytel"))
}

fn cache_key(engine: &Engine, component: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    component.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("core-{:016x}.cwasm", h.finish())
}

fn load_component(engine: &Engine, component: &[u8]) -> Result<Component> {
    let path = cache_dir().map(|d| d.join(cache_key(engine, component)));
    if let Some(path) = &path {
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` below for
            // this exact component and engine configuration (both are in the key);
            // a damaged file fails to deserialise and is rebuilt.
            if let Ok(c) = unsafe { Component::deserialize_file(engine, path) } {
                return Ok(c);
            }
        }
    }
    let component =
        Component::new(engine, component).map_err(|e| anyhow::anyhow!("compiling the polytel core component: {e}"))?;
    if let Some(path) = &path {
        // The cache is an optimisation: failing to write it is not an error.
        if let Ok(bytes) = component.serialize() {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| std::fs::write(&tmp, bytes))
                .and_then(|_| std::fs::rename(&tmp, path));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
        }
    }
    Ok(component)
}

/// One instance of the core holding one pipeline. Not thread-safe by itself:
/// callers serialise access (the host keeps it behind a mutex).
pub struct CoreInstance {
    store: Store<StoreLimits>,
    bindings: Polytel,
    pipeline: ResourceAny,
}

impl CoreInstance {
    /// Instantiates the core and creates a pipeline from configuration JSON.
    /// The outer error is a wasmtime failure; the inner one is the core's
    /// one-sentence configuration error.
    pub fn create(config_json: &str) -> Result<std::result::Result<CoreInstance, String>> {
        Self::create_with(config_json, COMPONENT, DEFAULT_MEMORY_LIMIT)
    }

    /// `create` with another build of the core, and a memory limit.
    pub fn create_with(
        config_json: &str,
        component: &'static [u8],
        memory_limit: usize,
    ) -> Result<std::result::Result<CoreInstance, String>> {
        let loaded = loaded(component)?;
        let limits = StoreLimitsBuilder::new().memory_size(memory_limit).build();
        let mut store = Store::new(&loaded.engine, limits);
        store.limiter(|limits| limits);
        let bindings = loaded.pre.instantiate(&mut store)?;
        let created = bindings.polytel_telemetry_core().pipeline().call_create(&mut store, config_json)?;
        Ok(created.map(|pipeline| CoreInstance { store, bindings, pipeline }))
    }

    pub fn plan(&mut self) -> Result<String> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_plan(&mut self.store, p)?)
    }

    pub fn describe(&mut self) -> Result<String> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_describe(&mut self.store, p)?)
    }

    /// Hands a batch of `signal`'s records to the core.
    pub fn record(&mut self, signal: polytel_core::pipeline::Signal, batch: &str) -> Result<()> {
        use polytel_core::pipeline::Signal;
        match signal {
            Signal::Traces => self.record_spans(batch),
            Signal::Metrics => self.record_metrics(batch),
            Signal::Logs => self.record_logs(batch),
        }
    }

    pub fn record_spans(&mut self, batch: &str) -> Result<()> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_record_spans(&mut self.store, p, batch)?)
    }

    pub fn register_instrument(&mut self, instrument_json: &str) -> Result<u32> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_register_instrument(
            &mut self.store,
            p,
            instrument_json,
        )?)
    }

    pub fn record_metrics(&mut self, batch: &str) -> Result<()> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_record_metrics(&mut self.store, p, batch)?)
    }

    pub fn record_logs(&mut self, batch: &str) -> Result<()> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_record_logs(&mut self.store, p, batch)?)
    }

    pub fn render_metrics(&mut self, format: wit::MetricsFormat, now: u64) -> Result<wit::RenderedMetrics> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_render_metrics(&mut self.store, p, format, now)?)
    }

    pub fn poll(&mut self, now: u64, flush: bool) -> Result<wit::PollResult> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_poll(&mut self.store, p, now, flush)?)
    }

    pub fn report(&mut self, id: u64, outcome: &wit::Outcome, now: u64) -> Result<()> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_report(&mut self.store, p, id, outcome, now)?)
    }

    pub fn abandon(&mut self) -> Result<u64> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_abandon(&mut self.store, p)?)
    }

    pub fn stats(&mut self) -> Result<String> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_stats(&mut self.store, p)?)
    }

    pub fn extract(&mut self, headers_json: &str) -> Result<String> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_extract(&mut self.store, p, headers_json)?)
    }

    pub fn inject(&mut self, context_json: &str) -> Result<String> {
        let p = self.pipeline;
        Ok(self.bindings.polytel_telemetry_core().pipeline().call_inject(&mut self.store, p, context_json)?)
    }
}
