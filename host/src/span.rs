//! Spans of the Rust API. A span lives in the host until it ends; then its
//! record (batch JSON, see `wit/polytel.wit`) goes into the buffer the export
//! worker ships to the core.

use std::fmt::Write;
use std::sync::Arc;

use polytel_core::ids::to_hex;

use crate::telemetry::Shared;
use crate::value::{push_hex, push_json_str, push_member, push_scope, write_attributes, AttributeValue, Value};

/// OTLP span kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpanKind {
    #[default]
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Unset,
    Ok,
    Error(String),
}

/// The identity of a span, local or received from upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
    pub remote: bool,
    pub trace_state: String,
}

impl SpanContext {
    pub fn trace_id_hex(&self) -> String {
        to_hex(&self.trace_id)
    }
    pub fn span_id_hex(&self) -> String {
        to_hex(&self.span_id)
    }
}

/// What a recording span holds until it ends. Attributes, events and links
/// are kept as the batch JSON they will be sent as, written when they are set.
struct Recording {
    name: String,
    kind: SpanKind,
    parent: Option<SpanContext>,
    start: u64,
    /// Members of the attributes object, without braces.
    attributes: String,
    /// Elements of the events array, without brackets.
    events: String,
    /// Elements of the links array, without brackets.
    links: String,
    status: Status,
    scope: Option<(String, String)>,
}

/// Configures a span before it starts.
pub struct SpanBuilder {
    pub(crate) shared: Arc<Shared>,
    pub(crate) name: String,
    pub(crate) kind: SpanKind,
    pub(crate) parent: Option<SpanContext>,
    pub(crate) attributes: String,
    pub(crate) links: String,
    pub(crate) scope: Option<(String, String)>,
}

impl SpanBuilder {
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }
    pub fn parent(mut self, parent: &SpanContext) -> Self {
        self.parent = Some(parent.clone());
        self
    }
    pub fn attribute(mut self, key: &str, value: impl AttributeValue) -> Self {
        push_member(&mut self.attributes, key, &value);
        self
    }
    pub fn link(mut self, to: &SpanContext, attributes: &[(String, Value)]) -> Self {
        if !self.links.is_empty() {
            self.links.push(',');
        }
        let l = &mut self.links;
        l.push_str(r#"{"trace_id":""#);
        push_hex(l, &to.trace_id);
        l.push_str(r#"","span_id":""#);
        push_hex(l, &to.span_id);
        l.push('"');
        if !attributes.is_empty() {
            l.push_str(r#","attributes":"#);
            write_attributes(l, attributes);
        }
        l.push('}');
        self
    }
    /// The instrumentation scope (library name and version) the span belongs to.
    pub fn scope(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.scope = Some((name.into(), version.into()));
        self
    }

    pub fn start(self) -> Span {
        let shared = self.shared;
        let trace_id = match &self.parent {
            Some(p) => p.trace_id,
            None => shared.next_trace_id(),
        };
        let span_id = shared.next_span_id();
        let sampled = match &self.parent {
            Some(p) if shared.plan.sampler.parent_based => p.sampled,
            _ => !shared.plan.disabled && shared.plan.sampler.samples_root(&trace_id),
        };
        let context = SpanContext {
            trace_id,
            span_id,
            sampled,
            remote: false,
            trace_state: self.parent.as_ref().map(|p| p.trace_state.clone()).unwrap_or_default(),
        };
        // With traces going nowhere, spans still carry context but record nothing.
        let recording = (sampled && shared.plan.traces).then(|| Recording {
            name: self.name,
            kind: self.kind,
            parent: self.parent,
            start: shared.now(),
            attributes: self.attributes,
            events: String::new(),
            links: self.links,
            status: Status::Unset,
            scope: self.scope,
        });
        Span { shared, context, recording }
    }
}

/// A started span. Ends when `end` is called or when it is dropped.
pub struct Span {
    shared: Arc<Shared>,
    context: SpanContext,
    recording: Option<Recording>,
}

impl Span {
    pub fn context(&self) -> &SpanContext {
        &self.context
    }

    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// A builder for a child of this span.
    pub fn child(&self, name: impl Into<String>) -> SpanBuilder {
        self.shared.builder(name.into()).parent(&self.context)
    }

    /// Sets an attribute; a later value for the same key replaces an earlier one.
    pub fn set_attribute(&mut self, key: &str, value: impl AttributeValue) {
        if let Some(r) = &mut self.recording {
            push_member(&mut r.attributes, key, &value);
        }
    }

    pub fn add_event(&mut self, name: &str, attributes: &[(String, Value)]) {
        if let Some(r) = &mut self.recording {
            let time = self.shared.now();
            let e = start_event(&mut r.events, time);
            e.push_str(r#","name":"#);
            push_json_str(e, name);
            if !attributes.is_empty() {
                e.push_str(r#","attributes":"#);
                write_attributes(e, attributes);
            }
            e.push('}');
        }
    }

    /// Records an exception as an `exception` event (type, message, stack trace).
    pub fn record_exception(&mut self, kind: &str, message: &str, stacktrace: &str) {
        if let Some(r) = &mut self.recording {
            let time = self.shared.now();
            let e = start_event(&mut r.events, time);
            e.push_str(r#","exception":{"type":"#);
            push_json_str(e, kind);
            e.push_str(r#","message":"#);
            push_json_str(e, message);
            if !stacktrace.is_empty() {
                e.push_str(r#","stacktrace":"#);
                push_json_str(e, stacktrace);
            }
            e.push_str("}}");
        }
    }

    /// Records `err` as an exception; its type name is the Rust type's path.
    pub fn record_error<E: std::error::Error>(&mut self, err: &E) {
        self.record_exception(std::any::type_name::<E>(), &err.to_string(), "");
    }

    pub fn set_status(&mut self, status: Status) {
        if let Some(r) = &mut self.recording {
            // Ok is final; Unset never replaces anything.
            match (&r.status, &status) {
                (Status::Ok, _) | (_, Status::Unset) => {}
                _ => r.status = status,
            }
        }
    }

    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(r) = self.recording.take() {
            let end = self.shared.now();
            let record = span_record(&self.context, &r, end);
            self.shared.enqueue(polytel_core::pipeline::Signal::Traces, record);
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Opens the next element of an events array with its time; returns it to be finished.
fn start_event(events: &mut String, time: u64) -> &mut String {
    if !events.is_empty() {
        events.push(',');
    }
    let _ = write!(events, r#"{{"time":{time}"#);
    events
}

fn span_record(ctx: &SpanContext, r: &Recording, end: u64) -> String {
    let mut out = String::with_capacity(160 + r.name.len() + r.attributes.len() + r.events.len() + r.links.len());
    out.push_str(r#"{"trace_id":""#);
    push_hex(&mut out, &ctx.trace_id);
    out.push_str(r#"","span_id":""#);
    push_hex(&mut out, &ctx.span_id);
    out.push('"');
    if let Some(p) = &r.parent {
        out.push_str(r#","parent_span_id":""#);
        push_hex(&mut out, &p.span_id);
        out.push('"');
        if p.remote {
            out.push_str(r#","parent_remote":true"#);
        }
    }
    if !ctx.trace_state.is_empty() {
        out.push_str(r#","trace_state":"#);
        push_json_str(&mut out, &ctx.trace_state);
    }
    out.push_str(r#","name":"#);
    push_json_str(&mut out, &r.name);
    let _ = write!(out, r#","kind":{},"start":{},"end":{}"#, r.kind as i32, r.start, end);
    for (member, open, close, list) in [
        (r#","attributes":"#, '{', '}', &r.attributes),
        (r#","events":"#, '[', ']', &r.events),
        (r#","links":"#, '[', ']', &r.links),
    ] {
        if !list.is_empty() {
            out.push_str(member);
            out.push(open);
            out.push_str(list);
            out.push(close);
        }
    }
    match &r.status {
        Status::Unset => {}
        Status::Ok => out.push_str(r#","status":{"code":1}"#),
        Status::Error(m) => {
            out.push_str(r#","status":{"code":2,"message":"#);
            push_json_str(&mut out, m);
            out.push('}');
        }
    }
    if let Some((name, version)) = &r.scope {
        push_scope(&mut out, name, version);
    }
    out.push('}');
    out
}
