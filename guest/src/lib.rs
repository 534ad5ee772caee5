//! The polytel core. Every decision about telemetry lives here; hosts supply
//! time, randomness, records and I/O. `wit/polytel.wit` is the contract; this
//! crate builds to that component for wasm32 and natively as a library for
//! tests, fuzzing, benchmarks and the `polytel` command's receiver.

pub mod attributes;
pub mod azure;
pub mod config;
pub mod config_file;
pub mod console;
pub mod credentials;
pub mod delivery;
pub mod detect;
pub mod encode;
pub mod env;
pub mod exponential;
pub mod genai;
pub mod ids;
pub mod json;
pub mod jsonl;
pub mod logs;
pub mod metrics;
pub mod otlp_json;
pub mod pipeline;
pub mod presets;
pub mod prometheus;
pub mod propagation;
pub mod queue;
pub mod redact;
pub mod resource;
pub mod routes;
pub mod sampler;
pub mod secret;
pub mod self_metrics;
pub mod spans;
pub mod stats;

#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(all(target_arch = "wasm32", feature = "edge"))]
mod edge;

pub use opentelemetry_proto as proto;
pub use pipeline::Pipeline;
