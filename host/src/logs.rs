//! Log records of the Rust API, written as batch JSON (see `record-logs` in
//! `wit/polytel.wit`) into the buffer the export worker ships to the core.

use std::fmt::Write;
use std::sync::Arc;

use polytel_core::pipeline::Signal;

use crate::span::SpanContext;
use crate::telemetry::Shared;
use crate::value::{push_hex, push_json_str, push_member, push_scope, AttributeValue};

/// Severity, as the OpenTelemetry log data model numbers it (the first number of each range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Trace = 1,
    Debug = 5,
    Info = 9,
    Warn = 13,
    Error = 17,
    Fatal = 21,
}

impl Severity {
    pub fn text(self) -> &'static str {
        match self {
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

/// A log record being put together; `emit` sends it.
///
/// With logs going nowhere (or telemetry disabled) it is empty: a null
/// pointer that each method passes along in a register, so a record that is
/// never written costs a branch per call, no copy of its parts, no allocation.
pub struct LogBuilder(Option<Box<Draft>>);

/// What a record to be written holds until it is emitted.
struct Draft {
    shared: Arc<Shared>,
    severity: Severity,
    message: String,
    /// Members of the attributes object, without braces.
    attributes: String,
    span: Option<SpanContext>,
    event_name: String,
    scope: Option<(String, String)>,
}

impl LogBuilder {
    #[inline]
    pub(crate) fn new(shared: &Arc<Shared>, severity: Severity, message: impl Into<String>) -> Self {
        if !shared.plan.logs {
            // The message is never read: do not copy it.
            return LogBuilder(None);
        }
        LogBuilder(Some(Box::new(Draft {
            shared: shared.clone(),
            severity,
            message: message.into(),
            attributes: String::new(),
            span: None,
            event_name: String::new(),
            scope: None,
        })))
    }

    #[inline]
    pub fn attribute(mut self, key: &str, value: impl AttributeValue) -> Self {
        if let Some(d) = &mut self.0 {
            push_member(&mut d.attributes, key, &value);
        }
        self
    }

    /// The span this record belongs to: its trace and span ids go with it.
    /// A span without ids (from disabled telemetry) leaves the record without any.
    #[inline]
    pub fn span(mut self, span: &SpanContext) -> Self {
        if let Some(d) = &mut self.0 {
            if span.is_valid() {
                d.span = Some(span.clone());
            }
        }
        self
    }

    /// Makes the record an event with this name.
    #[inline]
    pub fn event_name(mut self, name: impl Into<String>) -> Self {
        if let Some(d) = &mut self.0 {
            d.event_name = name.into();
        }
        self
    }

    #[inline]
    pub fn scope(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        if let Some(d) = &mut self.0 {
            d.scope = Some((name.into(), version.into()));
        }
        self
    }

    #[inline]
    pub fn emit(self) {
        if let Some(d) = self.0 {
            d.write();
        }
    }
}

impl Draft {
    /// Writes the record into the buffer.
    fn write(self) {
        let now = self.shared.now();
        let mut out = String::with_capacity(128 + self.message.len() + self.attributes.len());
        let _ = write!(
            out,
            r#"{{"time":{now},"observed":{now},"severity":{},"severity_text":"{}","body":"#,
            self.severity as i32,
            self.severity.text()
        );
        push_json_str(&mut out, &self.message);
        if !self.attributes.is_empty() {
            out.push_str(r#","attributes":{"#);
            out.push_str(&self.attributes);
            out.push('}');
        }
        if !self.event_name.is_empty() {
            out.push_str(r#","event_name":"#);
            push_json_str(&mut out, &self.event_name);
        }
        if let Some(ctx) = &self.span {
            out.push_str(r#","trace_id":""#);
            push_hex(&mut out, &ctx.trace_id);
            out.push_str(r#"","span_id":""#);
            push_hex(&mut out, &ctx.span_id);
            let _ = write!(out, r#"","flags":{}"#, u8::from(ctx.sampled));
        }
        if let Some((name, version)) = &self.scope {
            push_scope(&mut out, name, version);
        }
        out.push('}');
        self.shared.enqueue(Signal::Logs, out);
    }
}
