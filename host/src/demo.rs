//! The demo workload: an agent run with two LLM calls, three tool calls (one
//! failing with an exception) and a memory lookup, named and attributed per the
//! OpenTelemetry GenAI conventions; with the GenAI metrics (operation duration
//! and token usage), a tool-call counter, and logs tied to their spans.

use std::thread::sleep;
use std::time::Duration;

use crate::{Counter, Histogram, Severity, SpanKind, Status, Telemetry};

/// Bucket boundaries of the GenAI conventions' histograms.
const DURATION_BOUNDARIES: [f64; 14] =
    [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const TOKEN_BOUNDARIES: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];

struct Instruments {
    duration: Histogram,
    tokens: Histogram,
    tool_calls: Counter,
}

impl Instruments {
    fn new(t: &Telemetry) -> Instruments {
        let scope = ("polytel.demo", env!("CARGO_PKG_VERSION"));
        Instruments {
            duration: t
                .histogram("gen_ai.client.operation.duration")
                .unit("s")
                .description("GenAI operation duration.")
                .boundaries(&DURATION_BOUNDARIES)
                .scope(scope.0, scope.1)
                .build(),
            tokens: t
                .histogram("gen_ai.client.token.usage")
                .unit("{token}")
                .description("Number of input and output tokens used.")
                .boundaries(&TOKEN_BOUNDARIES)
                .scope(scope.0, scope.1)
                .build(),
            tool_calls: t
                .counter("agent.tool.calls")
                .unit("{call}")
                .description("Tool calls made by agents, by tool and outcome.")
                .scope(scope.0, scope.1)
                .build(),
        }
    }
}

/// Pauses stand in for real work so durations look like an agent's; `pace`
/// scales them (0 for tests).
pub fn run_agent_workload(t: &Telemetry, pace: f64) {
    let pause = |ms: u64| {
        if pace > 0.0 {
            sleep(Duration::from_secs_f64(ms as f64 / 1000.0 * pace));
        }
    };
    let instruments = Instruments::new(t);
    let agent = t
        .span("invoke_agent research-assistant")
        .kind(SpanKind::Internal)
        .scope("polytel.demo", env!("CARGO_PKG_VERSION"))
        .attribute("gen_ai.operation.name", "invoke_agent")
        .attribute("gen_ai.agent.name", "research-assistant")
        .attribute("gen_ai.agent.id", "agent-7")
        .attribute("gen_ai.conversation.id", "conv-42")
        .start();

    let mut memory = agent
        .child("search_memory user-preferences")
        .scope("polytel.demo", env!("CARGO_PKG_VERSION"))
        .attribute("gen_ai.operation.name", "search_memory")
        .attribute("gen_ai.memory.store", "user-preferences")
        .attribute("gen_ai.memory.hits", 3)
        .start();
    pause(12);
    memory.set_status(Status::Ok);
    memory.end();

    t.log(Severity::Info, "recalled 3 user preferences")
        .attribute("gen_ai.memory.store", "user-preferences")
        .span(agent.context())
        .scope("polytel.demo", env!("CARGO_PKG_VERSION"))
        .emit();

    llm_call(&agent, &instruments, 412, 96, ["tool_calls"], pause);

    for (tool, args, fails) in [
        ("web_search", r#"{"q":"wasm component model"}"#, false),
        ("fetch_page", r#"{"url":"https://example.org/paper"}"#, true),
        ("summarize", r#"{"max_words":120}"#, false),
    ] {
        let mut span = agent
            .child(format!("execute_tool {tool}"))
            .scope("polytel.demo", env!("CARGO_PKG_VERSION"))
            .attribute("gen_ai.operation.name", "execute_tool")
            .attribute("gen_ai.tool.name", tool)
            .attribute("gen_ai.tool.call.id", format!("call_{tool}"))
            .attribute("gen_ai.tool.call.arguments", args)
            .start();
        pause(40);
        let outcome = if fails { "error" } else { "ok" };
        instruments.tool_calls.add_in(span.context(), 1.0, &[("gen_ai.tool.name", &tool), ("outcome", &outcome)]);
        let mut log = t
            .log(if fails { Severity::Error } else { Severity::Info }, format!("tool {tool} finished: {outcome}"))
            .attribute("gen_ai.tool.name", tool)
            .span(span.context())
            .scope("polytel.demo", env!("CARGO_PKG_VERSION"));
        if fails {
            log = log.attribute("error.type", "TimeoutError");
        }
        log.emit();
        if fails {
            span.record_exception(
                "TimeoutError",
                "fetch_page timed out after 30s",
                "TimeoutError: fetch_page timed out after 30s\n  at fetch_page (tools.rs:88)\n  at run_tool (agent.rs:41)",
            );
            span.set_attribute("error.type", "TimeoutError");
            span.set_status(Status::Error("fetch_page timed out after 30s".into()));
        }
        span.end();
    }

    llm_call(&agent, &instruments, 1630, 412, ["stop"], pause);
    drop(agent);
}

fn llm_call(
    agent: &crate::Span,
    instruments: &Instruments,
    input: i64,
    output: i64,
    finish: [&str; 1],
    pause: impl Fn(u64),
) {
    let mut span = agent
        .child("chat gpt-4o")
        .kind(SpanKind::Client)
        .scope("polytel.demo", env!("CARGO_PKG_VERSION"))
        .attribute("gen_ai.operation.name", "chat")
        .attribute("gen_ai.provider.name", "openai")
        .attribute("gen_ai.request.model", "gpt-4o")
        .attribute("gen_ai.request.temperature", 0.2)
        .attribute("server.address", "api.openai.com")
        .attribute("server.port", 443)
        .start();
    pause(300);
    span.set_attribute("gen_ai.response.model", "gpt-4o-2024-08-06");
    span.set_attribute("gen_ai.usage.input_tokens", input);
    span.set_attribute("gen_ai.usage.output_tokens", output);
    span.set_attribute("gen_ai.response.finish_reasons", &finish[..]);
    let common: [(&str, &dyn crate::AttributeValue); 3] =
        [("gen_ai.operation.name", &"chat"), ("gen_ai.provider.name", &"openai"), ("gen_ai.request.model", &"gpt-4o")];
    // Durations are simulated: the paced pause stands for 0.3 s of model time.
    instruments.duration.record_in(span.context(), 0.3 + output as f64 / 1000.0, &common);
    for (kind, tokens) in [("input", input), ("output", output)] {
        let [a, b, c] = common;
        instruments.tokens.record_in(span.context(), tokens as f64, &[a, b, c, ("gen_ai.token.type", &kind)]);
    }
    span.end();
}
