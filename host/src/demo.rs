//! The demo workload: an agent run with two LLM calls, three tool calls (one
//! failing with an exception) and a memory lookup, named and attributed per the
//! OpenTelemetry GenAI conventions.

use std::thread::sleep;
use std::time::Duration;

use crate::{SpanKind, Status, Telemetry};

/// Pauses stand in for real work so durations look like an agent's; `pace`
/// scales them (0 for tests).
pub fn run_agent_workload(t: &Telemetry, pace: f64) {
    let pause = |ms: u64| {
        if pace > 0.0 {
            sleep(Duration::from_secs_f64(ms as f64 / 1000.0 * pace));
        }
    };
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

    llm_call(&agent, 412, 96, ["tool_calls"], pause);

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

    llm_call(&agent, 1630, 412, ["stop"], pause);
    drop(agent);
}

fn llm_call(agent: &crate::Span, input: i64, output: i64, finish: [&str; 1], pause: impl Fn(u64)) {
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
    span.end();
}
