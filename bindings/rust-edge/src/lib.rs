//! polytel for Rust WebAssembly components that run where wasi:http is
//! granted (`wasmtime serve`, Spin, wasmCloud). The app imports the core's
//! `core` and `edge` interfaces (world `edge-app` in wit/polytel.wit) and is
//! composed with the edge flavour of the core (`polytel component --edge`),
//! which sends its own exports: there is no host code.
//!
//! The concepts and names are the other bindings': `Telemetry`, spans built
//! with `span(name)`, `extract` and `inject` for W3C context, and a flush,
//! which an edge app calls at the end of every request because its instance
//! may not outlive it.

mod span;
mod telemetry;

wit_bindgen::generate!({
    path: "../../wit",
    world: "edge-app",
});

pub use span::{Span, SpanBuilder, SpanContext, SpanKind, Status, Value};
pub use telemetry::{Extracted, FlushReport, Telemetry};
