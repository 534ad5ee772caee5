//! Spans of the Rust API. A span lives in the host until it ends; then its
//! record (batch JSON, see `wit/polytel.wit`) goes into the buffer the export
//! worker ships to the core.

use std::fmt::Write;
use std::sync::Arc;

use polytel_core::ids::to_hex;

use crate::genai::OperationFields;
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
    /// No span: all-zero ids. A span started while telemetry is disabled
    /// carries it when it has no parent; `inject` writes no `traceparent` for it.
    pub(crate) const INVALID: SpanContext =
        SpanContext { trace_id: [0; 16], span_id: [0; 8], sampled: false, remote: false, trace_state: String::new() };

    /// Whether both ids are set (not all zero), as W3C trace context requires.
    pub(crate) fn is_valid(&self) -> bool {
        self.trace_id != [0; 16] && self.span_id != [0; 8]
    }

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
    /// None: the host chose no kind (internal, or the core's choice for an operation).
    kind: Option<SpanKind>,
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
    /// Sampled, with traces going somewhere: the core exports it. Only a GenAI
    /// operation records without.
    exported: bool,
    operation: Option<Box<OperationFields>>,
}

/// Configures a span before it starts.
pub struct SpanBuilder {
    /// None while telemetry is disabled: then nothing is shared, nothing is
    /// counted (not even the Arc's references), and the span is a no-op.
    shared: Option<Arc<Shared>>,
    name: String,
    kind: Option<SpanKind>,
    parent: Option<SpanContext>,
    attributes: String,
    links: String,
    scope: Option<(String, String)>,
    operation: Option<Box<OperationFields>>,
}

// The builder's and the span's methods are `#[inline]` so that, disabled or
// not recording, a call folds to a branch in the caller instead of moving the
// builder (a few hundred bytes) in and out of a call.
impl SpanBuilder {
    /// A builder for a root span of `shared`'s telemetry.
    #[inline]
    pub(crate) fn new(shared: &Arc<Shared>, name: impl Into<String>) -> SpanBuilder {
        if shared.plan.disabled {
            // The name is never read: do not copy it.
            return SpanBuilder::with(None, String::new());
        }
        SpanBuilder::with(Some(shared.clone()), name.into())
    }

    #[inline]
    fn with(shared: Option<Arc<Shared>>, name: String) -> SpanBuilder {
        SpanBuilder {
            shared,
            name,
            kind: None,
            parent: None,
            attributes: String::new(),
            links: String::new(),
            scope: None,
            operation: None,
        }
    }

    /// Makes the span a GenAI operation: it records whether sampled or not.
    pub(crate) fn operation(mut self, fields: OperationFields) -> Self {
        if self.shared.is_some() {
            self.operation = Some(Box::new(fields));
        }
        self
    }

    /// Whether the span can record: with traces going nowhere (or disabled)
    /// it cannot, GenAI operations excepted, and what would only be recorded
    /// is skipped.
    #[inline]
    fn may_record(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.plan.traces) || self.operation.is_some()
    }

    #[inline]
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = Some(kind);
        self
    }
    #[inline]
    pub fn parent(mut self, parent: &SpanContext) -> Self {
        self.parent = Some(parent.clone());
        self
    }
    #[inline]
    pub fn attribute(mut self, key: &str, value: impl AttributeValue) -> Self {
        if self.may_record() {
            push_member(&mut self.attributes, key, &value);
        }
        self
    }
    pub fn link(mut self, to: &SpanContext, attributes: &[(String, Value)]) -> Self {
        if !self.may_record() {
            return self;
        }
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
    #[inline]
    pub fn scope(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        if self.may_record() {
            self.scope = Some((name.into(), version.into()));
        }
        self
    }

    #[inline]
    pub fn start(mut self) -> Span {
        match self.shared.take() {
            Some(shared) => self.start_with(shared),
            // Disabled: a no-op, like the OpenTelemetry API's tracer without an
            // SDK. No ids drawn, no clock read, nothing recorded. The span
            // carries its parent's context, so propagation still works, or none.
            None => Span { shared: None, context: self.parent.unwrap_or(SpanContext::INVALID), recording: None },
        }
    }

    fn start_with(self, shared: Arc<Shared>) -> Span {
        // A parent without ids (a span of disabled telemetry) is no parent.
        let parent = self.parent.filter(SpanContext::is_valid);
        let trace_id = match &parent {
            Some(p) => p.trace_id,
            None => shared.next_trace_id(),
        };
        let span_id = shared.next_span_id();
        let sampled = match &parent {
            Some(p) if shared.plan.sampler.parent_based => p.sampled,
            _ => shared.plan.sampler.samples_root(&trace_id),
        };
        let context = SpanContext {
            trace_id,
            span_id,
            sampled,
            remote: false,
            trace_state: parent.as_ref().map(|p| p.trace_state.clone()).unwrap_or_default(),
        };
        // With traces going nowhere, spans still carry context but record
        // nothing; operations record for the core's metrics and summary.
        let exported = sampled && shared.plan.traces;
        let recording = (exported || self.operation.is_some()).then(|| {
            Box::new(Recording {
                name: self.name,
                kind: self.kind,
                parent,
                start: shared.now(),
                attributes: self.attributes,
                events: String::new(),
                links: self.links,
                status: Status::Unset,
                scope: self.scope,
                exported,
                operation: self.operation,
            })
        });
        Span { shared: Some(shared), context, recording }
    }
}

/// A started span. Ends when `end` is called or when it is dropped.
pub struct Span {
    /// None while telemetry is disabled; always Some while recording.
    shared: Option<Arc<Shared>>,
    context: SpanContext,
    /// Boxed, so that a span that does not record is small and cheap to drop.
    recording: Option<Box<Recording>>,
}

impl Span {
    #[inline]
    pub fn context(&self) -> &SpanContext {
        &self.context
    }

    #[inline]
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// The GenAI fields of a recording operation.
    pub(crate) fn operation_mut(&mut self) -> Option<&mut OperationFields> {
        self.recording.as_mut().and_then(|r| r.operation.as_deref_mut())
    }

    pub(crate) fn shared(&self) -> Option<&Arc<Shared>> {
        self.shared.as_ref()
    }

    /// A builder for a child of this span.
    #[inline]
    pub fn child(&self, name: impl Into<String>) -> SpanBuilder {
        let builder = match &self.shared {
            Some(shared) => SpanBuilder::new(shared, name),
            None => SpanBuilder::with(None, String::new()),
        };
        builder.parent(&self.context)
    }

    /// Sets an attribute; a later value for the same key replaces an earlier one.
    #[inline]
    pub fn set_attribute(&mut self, key: &str, value: impl AttributeValue) {
        if let Some(r) = &mut self.recording {
            push_member(&mut r.attributes, key, &value);
        }
    }

    pub fn add_event(&mut self, name: &str, attributes: &[(String, Value)]) {
        if let (Some(r), Some(shared)) = (&mut self.recording, &self.shared) {
            let time = shared.now();
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
        if let (Some(r), Some(shared)) = (&mut self.recording, &self.shared) {
            let time = shared.now();
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
        if self.recording.is_some() {
            self.record_exception(std::any::type_name::<E>(), &err.to_string(), "");
        }
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

    #[inline]
    pub fn end(mut self) {
        self.finish();
    }

    #[inline]
    fn finish(&mut self) {
        if self.recording.is_some() {
            self.export();
        }
    }

    /// Writes the span's record into the buffer.
    fn export(&mut self) {
        if let (Some(r), Some(shared)) = (self.recording.take(), &self.shared) {
            let end = shared.now();
            let record = span_record(&self.context, &r, end);
            shared.enqueue(polytel_core::pipeline::Signal::Traces, record);
        }
    }
}

impl Drop for Span {
    #[inline]
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
    let kind = match (r.kind, &r.operation) {
        (Some(k), _) => k as i32,
        (None, Some(_)) => 0,
        (None, None) => SpanKind::Internal as i32,
    };
    let _ = write!(out, r#","kind":{kind},"start":{},"end":{}"#, r.start, end);
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
    if !r.exported {
        out.push_str(r#","sampled":false"#);
    }
    if let Some(op) = &r.operation {
        op.write_json(&mut out);
    }
    out.push('}');
    out
}
