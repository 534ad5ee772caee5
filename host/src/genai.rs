//! GenAI operations of the Rust API: LLM calls, agent runs, tool calls,
//! workflow runs and memory operations. Each is a span carrying the fields the
//! core turns into the conventions' names, attributes, metrics and cost (see
//! `record-spans` in `wit/polytel.wit`); this module only keeps them.

use std::fmt::Write;
use std::ops::{Deref, DerefMut};

use crate::span::{Span, SpanBuilder, SpanContext, SpanKind};
use crate::telemetry::Telemetry;
use crate::value::{push_json_str, push_number, AttributeValue};

pub use polytel_core::genai::Usage;

/// What an operation's span carries to the core.
#[derive(Debug, Default)]
pub(crate) struct OperationFields {
    operation: String,
    name: String,
    provider: String,
    agent: String,
    response_model: String,
    usage: Usage,
    cost: Option<f64>,
    /// Attribute-value JSON, kept only with content capture on.
    input: Option<String>,
    output: Option<String>,
}

impl OperationFields {
    /// Writes the record's `,"genai":{…}` member.
    pub(crate) fn write_json(&self, out: &mut String) {
        out.push_str(r#","genai":{"operation":"#);
        push_json_str(out, &self.operation);
        for (key, value) in [
            ("name", &self.name),
            ("provider", &self.provider),
            ("agent", &self.agent),
            ("response_model", &self.response_model),
        ] {
            if !value.is_empty() {
                let _ = write!(out, r#","{key}":"#);
                push_json_str(out, value);
            }
        }
        let u = &self.usage;
        let counts = [
            ("input_tokens", u.input_tokens),
            ("output_tokens", u.output_tokens),
            ("cache_read_tokens", u.cache_read_tokens),
            ("cache_write_tokens", u.cache_write_tokens),
            ("reasoning_tokens", u.reasoning_tokens),
        ];
        if counts.iter().any(|(_, n)| n.is_some()) {
            out.push_str(r#","usage":{"#);
            let mut first = true;
            for (key, n) in counts {
                if let Some(n) = n {
                    let _ = write!(out, r#"{}"{key}":{n}"#, if first { "" } else { "," });
                    first = false;
                }
            }
            out.push('}');
        }
        if let Some(usd) = self.cost {
            out.push_str(r#","cost":"#);
            push_number(out, usd);
        }
        for (key, value) in [("input", &self.input), ("output", &self.output)] {
            if let Some(json) = value {
                let _ = write!(out, r#","{key}":{json}"#);
            }
        }
        out.push('}');
    }
}

fn add(total: &mut Option<u64>, n: Option<u64>) {
    if let Some(n) = n {
        *total = Some(total.unwrap_or(0).saturating_add(n));
    }
}

/// Configures an operation before it starts.
pub struct OperationBuilder {
    span: SpanBuilder,
    fields: OperationFields,
}

impl OperationBuilder {
    fn new(span: SpanBuilder, operation: &str, name: &str, provider: &str, agent: &str) -> OperationBuilder {
        let fields = OperationFields {
            operation: operation.to_owned(),
            name: name.to_owned(),
            provider: provider.to_owned(),
            agent: agent.to_owned(),
            ..Default::default()
        };
        OperationBuilder { span, fields }
    }

    /// The operation name, for an LLM call that is not a chat: text_completion,
    /// embeddings or generate_content.
    pub fn operation(mut self, operation: &str) -> Self {
        operation.clone_into(&mut self.fields.operation);
        self
    }

    pub fn parent(mut self, parent: &SpanContext) -> Self {
        self.span = self.span.parent(parent);
        self
    }

    /// The span kind, when the core's choice (client for model calls,
    /// internal otherwise) is wrong, e.g. a remote agent.
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.span = self.span.kind(kind);
        self
    }

    pub fn attribute(mut self, key: &str, value: impl AttributeValue) -> Self {
        self.span = self.span.attribute(key, value);
        self
    }

    pub fn start(self) -> Operation {
        let agent_for_children = match self.fields.operation.as_str() {
            "invoke_agent" | "create_agent" => self.fields.name.clone(),
            _ => self.fields.agent.clone(),
        };
        Operation { span: self.span.operation(self.fields).start(), agent_for_children }
    }
}

/// A started operation: a span (all of `Span`'s methods apply) with usage,
/// cost and content. Ends when `end` is called or when it is dropped.
pub struct Operation {
    span: Span,
    /// The agent the operations started under this one run in.
    agent_for_children: String,
}

impl Deref for Operation {
    type Target = Span;
    fn deref(&self) -> &Span {
        &self.span
    }
}

impl DerefMut for Operation {
    fn deref_mut(&mut self) -> &mut Span {
        &mut self.span
    }
}

impl Operation {
    /// Adds token counts; counts given in several calls add up.
    pub fn record_usage(&mut self, usage: Usage) {
        if let Some(f) = self.span.operation_mut() {
            let u = &mut f.usage;
            add(&mut u.input_tokens, usage.input_tokens);
            add(&mut u.output_tokens, usage.output_tokens);
            add(&mut u.cache_read_tokens, usage.cache_read_tokens);
            add(&mut u.cache_write_tokens, usage.cache_write_tokens);
            add(&mut u.reasoning_tokens, usage.reasoning_tokens);
        }
    }

    /// The model that answered, when the provider says (often a dated snapshot).
    pub fn set_response_model(&mut self, model: &str) {
        if let Some(f) = self.span.operation_mut() {
            model.clone_into(&mut f.response_model);
        }
    }

    /// The cost in US dollars, when the app knows it better than the price table.
    pub fn record_cost(&mut self, usd: f64) {
        if let Some(f) = self.span.operation_mut() {
            f.cost = Some(usd);
        }
    }

    /// The prompt, a tool's arguments or a memory query; kept only with content capture on.
    pub fn record_input(&mut self, value: impl AttributeValue) {
        if let Some(json) = self.content(&value) {
            if let Some(f) = self.span.operation_mut() {
                f.input = Some(json);
            }
        }
    }

    /// The response, a tool's result or the memory records; kept only with content capture on.
    pub fn record_output(&mut self, value: impl AttributeValue) {
        if let Some(json) = self.content(&value) {
            if let Some(f) = self.span.operation_mut() {
                f.output = Some(json);
            }
        }
    }

    fn content(&self, value: &impl AttributeValue) -> Option<String> {
        let capture = self.span.shared().is_some_and(|s| s.plan.genai_capture) && self.span.is_recording();
        capture.then(|| {
            let mut json = String::new();
            value.write_json(&mut json);
            json
        })
    }

    pub fn end(self) {
        self.span.end();
    }
}

/// Starts GenAI operations: from `Telemetry` as roots, from an `Operation`
/// as its children (which carry the enclosing agent's name).
pub trait Operations {
    /// Starts building an operation with this `gen_ai.operation.name`.
    fn operation(&self, operation: &str, name: &str, provider: &str) -> OperationBuilder;

    /// An LLM call (a chat unless `.operation(…)` says otherwise).
    fn llm_call(&self, provider: &str, model: &str) -> OperationBuilder {
        self.operation("chat", model, provider)
    }
    /// An agent run.
    fn agent(&self, name: &str) -> OperationBuilder {
        self.operation("invoke_agent", name, "")
    }
    fn tool(&self, name: &str) -> OperationBuilder {
        self.operation("execute_tool", name, "")
    }
    fn workflow(&self, name: &str) -> OperationBuilder {
        self.operation("invoke_workflow", name, "")
    }
    /// A memory operation (search_memory, create_memory, …) on a store.
    fn memory(&self, operation: &str, store: &str) -> OperationBuilder {
        self.operation(operation, store, "")
    }
}

impl Operations for Telemetry {
    fn operation(&self, operation: &str, name: &str, provider: &str) -> OperationBuilder {
        OperationBuilder::new(self.span(""), operation, name, provider, "")
    }
}

impl Operations for Operation {
    fn operation(&self, operation: &str, name: &str, provider: &str) -> OperationBuilder {
        OperationBuilder::new(self.span.child(""), operation, name, provider, &self.agent_for_children)
    }
}
