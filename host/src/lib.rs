//! The Rust host of polytel: embeds the core component with wasmtime, runs the
//! export worker with a real HTTP client, and offers the Rust API.
//!
//! ```no_run
//! use polytel::{Options, SpanKind, Telemetry};
//! let telemetry = Telemetry::configure(Options { service_name: Some("my-agent".into()), ..Default::default() })?;
//! let agent = telemetry.span("invoke_agent research").attribute("gen_ai.agent.name", "research").start();
//! let mut llm = agent.child("chat gpt-4o").kind(SpanKind::Client).start();
//! llm.set_attribute("gen_ai.usage.input_tokens", 120);
//! llm.end();
//! agent.end();
//! telemetry.shutdown(std::time::Duration::from_secs(5));
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod capi;
pub mod demo;
mod facts;
pub mod faults;
mod genai;
pub mod grpc;
mod http;
mod logs;
mod metrics;
mod options;
mod prometheus;
pub mod receiver;
pub mod runtime;
mod span;
mod telemetry;
mod value;

pub use genai::{Operation, OperationBuilder, Operations, Usage};
pub use logs::{LogBuilder, Severity};
pub use metrics::{
    Attributes, Counter, Gauge, Histogram, InstrumentBuilder, InstrumentKind, ObservableCounter, ObservableGauge,
    ObservableUpDownCounter, Observer, UpDownCounter,
};
pub use options::{Backend, Clock, Options};
pub use span::{Span, SpanBuilder, SpanContext, SpanKind, Status};
pub use telemetry::{Extracted, ShutdownReport, Telemetry};
pub use value::{AttributeValue, Value};
