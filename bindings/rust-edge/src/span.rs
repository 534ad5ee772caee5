//! Spans: started with `Telemetry::span`, written as the JSON records of
//! `record-spans` when they end.

use serde_json::{json, Map, Value as Json};

use crate::telemetry::{unix_now, Telemetry};

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

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Str(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Str(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<u16> for Value {
    fn from(v: u16) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Double(v)
    }
}

impl Value {
    /// The attribute value as `record-spans` reads it.
    fn to_json(&self) -> Json {
        match self {
            Value::Str(s) => Json::String(s.clone()),
            Value::Int(i) => json!(i),
            Value::Bool(b) => json!(b),
            Value::Double(d) if d.is_nan() => json!({"double": "NaN"}),
            Value::Double(d) if d.is_infinite() => json!({"double": if *d > 0.0 { "Infinity" } else { "-Infinity" }}),
            Value::Double(d) => json!({"double": d}),
        }
    }
}

/// The identity of a span, local or received from upstream: ids in lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: String,
    pub span_id: String,
    pub sampled: bool,
    pub remote: bool,
    pub trace_state: String,
}

pub struct SpanBuilder<'t> {
    telemetry: &'t Telemetry,
    name: String,
    kind: SpanKind,
    parent: Option<SpanContext>,
    attributes: Map<String, Json>,
}

impl<'t> SpanBuilder<'t> {
    pub(crate) fn new(telemetry: &'t Telemetry, name: String) -> Self {
        SpanBuilder { telemetry, name, kind: SpanKind::Internal, parent: None, attributes: Map::new() }
    }

    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// The parent: a span of this app, or one `extract` read from a request.
    pub fn parent(mut self, parent: &SpanContext) -> Self {
        self.parent = Some(parent.clone());
        self
    }

    pub fn attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.attributes.insert(key.to_owned(), value.into().to_json());
        self
    }

    pub fn start(self) -> Span<'t> {
        let start = unix_now();
        let (trace_id, trace_state, parent_sampled) = match &self.parent {
            Some(p) => (p.trace_id.clone(), p.trace_state.clone(), Some(p.sampled)),
            None => (hex(&[self.telemetry.random(), self.telemetry.random()]), String::new(), None),
        };
        let span_id = hex(&[self.telemetry.random()]);
        let sampled = self.telemetry.sampled(&trace_id, parent_sampled);
        let context = SpanContext { trace_id, span_id, sampled, remote: false, trace_state };
        Span {
            telemetry: self.telemetry,
            context,
            parent: self.parent,
            name: self.name,
            kind: self.kind,
            start,
            attributes: self.attributes,
            events: Vec::new(),
            status: Status::Unset,
            ended: false,
        }
    }
}

/// A span in progress; it ends when `end` is called or it is dropped.
pub struct Span<'t> {
    telemetry: &'t Telemetry,
    context: SpanContext,
    parent: Option<SpanContext>,
    name: String,
    kind: SpanKind,
    start: u64,
    attributes: Map<String, Json>,
    events: Vec<Json>,
    status: Status,
    ended: bool,
}

impl<'t> Span<'t> {
    pub fn context(&self) -> &SpanContext {
        &self.context
    }

    /// A child of this span.
    pub fn child(&self, name: impl Into<String>) -> SpanBuilder<'t> {
        SpanBuilder::new(self.telemetry, name.into()).parent(&self.context)
    }

    pub fn set_attribute(&mut self, key: &str, value: impl Into<Value>) {
        self.attributes.insert(key.to_owned(), value.into().to_json());
    }

    pub fn set_status(&mut self, status: Status) {
        self.status = status;
    }

    /// Records an exception event and sets an error status with `message`.
    pub fn record_error(&mut self, kind: &str, message: &str) {
        self.events.push(json!({"time": unix_now(), "exception": {"type": kind, "message": message}}));
        self.status = Status::Error(message.to_owned());
    }

    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.ended, true) || !self.context.sampled {
            return;
        }
        let mut record = json!({
            "trace_id": self.context.trace_id,
            "span_id": self.context.span_id,
            "name": self.name,
            "kind": self.kind as u8,
            "start": self.start,
            "end": unix_now(),
            "attributes": std::mem::take(&mut self.attributes),
            "events": std::mem::take(&mut self.events),
        });
        if let Some(parent) = &self.parent {
            record["parent_span_id"] = json!(parent.span_id);
            record["parent_remote"] = json!(parent.remote);
        }
        if !self.context.trace_state.is_empty() {
            record["trace_state"] = json!(self.context.trace_state);
        }
        match &self.status {
            Status::Unset => {}
            Status::Ok => record["status"] = json!({"code": 1}),
            Status::Error(message) => record["status"] = json!({"code": 2, "message": message}),
        }
        self.telemetry.ended(record);
    }
}

impl Drop for Span<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

fn hex(values: &[u64]) -> String {
    values.iter().map(|v| format!("{v:016x}")).collect()
}
