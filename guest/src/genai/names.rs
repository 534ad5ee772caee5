//! The names the GenAI semantic conventions give operations' attributes and
//! metrics, in the two versions a user can choose between with
//! OTEL_SEMCONV_STABILITY_OPT_IN (shared/reference/genai-prometheus.md §5a).

/// Which version of the conventions' names to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conventions {
    /// v1.36-style names, the default instrumentations must keep.
    Default,
    /// `gen_ai_latest_experimental`: inference duration, usage counters by
    /// modality, per-operation token histograms, cache_write.
    Latest,
}

impl Conventions {
    /// From OTEL_SEMCONV_STABILITY_OPT_IN, a comma-separated list.
    pub fn from_opt_in(value: Option<&str>) -> Conventions {
        match value {
            Some(list) if list.split(',').any(|v| v.trim() == "gen_ai_latest_experimental") => Conventions::Latest,
            _ => Conventions::Default,
        }
    }

    pub fn cache_write_attribute(self) -> &'static str {
        match self {
            Conventions::Default => "gen_ai.usage.cache_creation.input_tokens",
            Conventions::Latest => "gen_ai.usage.cache_write.input_tokens",
        }
    }

    /// The duration histogram an operation of `family` is recorded in.
    pub fn duration_metric(self, family: Family) -> &'static str {
        match (self, family) {
            (Conventions::Latest, Family::Inference) => "gen_ai.client.inference.duration",
            _ => "gen_ai.client.operation.duration",
        }
    }
}

/// Operations grouped by what they act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// A model call: chat, text_completion, embeddings, generate_content.
    Inference,
    Agent,
    Tool,
    Workflow,
    Memory,
    Retrieval,
    /// Any other operation name: named and measured, with no subject attribute.
    Other,
}

impl Family {
    pub fn of(operation: &str) -> Family {
        match operation {
            "chat" | "text_completion" | "embeddings" | "generate_content" => Family::Inference,
            "invoke_agent" | "create_agent" => Family::Agent,
            "execute_tool" => Family::Tool,
            "invoke_workflow" => Family::Workflow,
            "retrieval" => Family::Retrieval,
            op if op.ends_with("_memory") || op.ends_with("_memory_store") => Family::Memory,
            _ => Family::Other,
        }
    }

    /// The attribute that names what the operation acts on.
    pub fn subject_attribute(self) -> Option<&'static str> {
        Some(match self {
            Family::Inference => "gen_ai.request.model",
            Family::Agent => "gen_ai.agent.name",
            Family::Tool => "gen_ai.tool.name",
            Family::Workflow => "gen_ai.workflow.name",
            Family::Memory => "gen_ai.memory.store.id",
            Family::Retrieval => "gen_ai.data_source.id",
            Family::Other => return None,
        })
    }

    /// The opt-in attributes captured input and output go in.
    pub fn content_attributes(self) -> (&'static str, &'static str) {
        match self {
            Family::Tool => ("gen_ai.tool.call.arguments", "gen_ai.tool.call.result"),
            Family::Memory => ("gen_ai.memory.query.text", "gen_ai.memory.records"),
            Family::Retrieval => ("gen_ai.retrieval.query.text", "gen_ai.retrieval.documents"),
            _ => ("gen_ai.input.messages", "gen_ai.output.messages"),
        }
    }

    /// OTLP span kind when the host chose none: client for a model call,
    /// internal for in-process work.
    pub fn default_kind(self) -> i32 {
        match self {
            Family::Inference => 3,
            _ => 1,
        }
    }
}

/// The conventions' histogram boundaries for durations in seconds.
pub const DURATION_BOUNDARIES: [f64; 14] =
    [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

/// The conventions' histogram boundaries for token counts.
pub const TOKEN_BOUNDARIES: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];

/// The usage counters of the latest conventions, by usage field.
pub const LATEST_USAGE_COUNTERS: [(UsageField, &str); 5] = [
    (UsageField::Input, "gen_ai.client.inference.usage.input_tokens"),
    (UsageField::Output, "gen_ai.client.inference.usage.output_tokens"),
    (UsageField::CacheRead, "gen_ai.client.inference.usage.cache_read.input_tokens"),
    (UsageField::CacheWrite, "gen_ai.client.inference.usage.cache_write.input_tokens"),
    (UsageField::Reasoning, "gen_ai.client.inference.usage.reasoning.output_tokens"),
];

/// The per-operation token histograms of the latest conventions.
pub const LATEST_TOKEN_HISTOGRAMS: [(UsageField, &str); 2] = [
    (UsageField::Input, "gen_ai.client.inference.operation.input_tokens"),
    (UsageField::Output, "gen_ai.client.inference.operation.output_tokens"),
];

/// The default conventions' token histogram, split by `gen_ai.token.type`.
pub const TOKEN_USAGE: &str = "gen_ai.client.token.usage";

/// No convention prices operations; polytel's own metric and attributes do.
pub const COST_METRIC: &str = "polytel.gen_ai.cost";
pub const COST_ATTRIBUTE: &str = "polytel.gen_ai.cost";
pub const COST_UNKNOWN_ATTRIBUTE: &str = "polytel.gen_ai.cost_unknown";

/// The token counts an operation's usage may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageField {
    Input,
    Output,
    CacheRead,
    CacheWrite,
    Reasoning,
}
