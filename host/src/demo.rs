//! The demo workload: a workflow running an agent that makes two LLM calls,
//! three tool calls (one failing with an exception) and a memory lookup, recorded through the GenAI
//! operation API, so the core names and attributes them per the OpenTelemetry
//! GenAI conventions, records their metrics and prices the tokens; with logs
//! tied to their spans.

use std::thread::sleep;
use std::time::Duration;

use crate::{Operation, Operations, Severity, Status, Telemetry, Usage};

/// Pauses stand in for real work so durations look like an agent's; `pace`
/// scales them (0 for tests).
pub fn run_agent_workload(t: &Telemetry, pace: f64) {
    let pause = |ms: u64| {
        if pace > 0.0 {
            sleep(Duration::from_secs_f64(ms as f64 / 1000.0 * pace));
        }
    };
    let workflow = t.workflow("research-report").start();
    let agent = workflow
        .agent("research-assistant")
        .attribute("gen_ai.agent.id", "agent-7")
        .attribute("gen_ai.conversation.id", "conv-42")
        .start();

    let mut memory = agent.memory("search_memory", "user-preferences").start();
    pause(12);
    memory.record_output("3 preferences: concise answers, French sources, no paywalls");
    memory.set_status(Status::Ok);
    memory.end();

    t.log(Severity::Info, "recalled 3 user preferences")
        .attribute("gen_ai.memory.store.id", "user-preferences")
        .span(agent.context())
        .scope("polytel.demo", env!("CARGO_PKG_VERSION"))
        .emit();

    llm_call(&agent, 412, 96, "tool_calls", pause);

    for (tool, args, fails) in [
        ("web_search", r#"{"q":"wasm component model"}"#, false),
        ("fetch_page", r#"{"url":"https://example.org/paper"}"#, true),
        ("summarize", r#"{"max_words":120}"#, false),
    ] {
        let mut call = agent
            .tool(tool)
            .attribute("gen_ai.tool.call.id", format!("call_{tool}"))
            .attribute("gen_ai.tool.call.arguments", args)
            .start();
        pause(40);
        let outcome = if fails { "error" } else { "ok" };
        let mut log = t
            .log(if fails { Severity::Error } else { Severity::Info }, format!("tool {tool} finished: {outcome}"))
            .attribute("gen_ai.tool.name", tool)
            .span(call.context())
            .scope("polytel.demo", env!("CARGO_PKG_VERSION"));
        if fails {
            log = log.attribute("error.type", "TimeoutError");
        }
        log.emit();
        if fails {
            call.record_exception(
                "TimeoutError",
                "fetch_page timed out after 30s",
                "TimeoutError: fetch_page timed out after 30s\n  at fetch_page (tools.rs:88)\n  at run_tool (agent.rs:41)",
            );
            call.set_status(Status::Error("fetch_page timed out after 30s".into()));
        }
        call.end();
    }

    llm_call(&agent, 1630, 412, "stop", pause);
    agent.end();
    workflow.end();
}

fn llm_call(agent: &Operation, input: u64, output: u64, finish: &str, pause: impl Fn(u64)) {
    let mut call = agent
        .llm_call("openai", "gpt-4o")
        .attribute("gen_ai.request.temperature", 0.2)
        .attribute("server.address", "api.openai.com")
        .attribute("server.port", 443)
        .start();
    call.record_input("Find and summarise the latest paper on the wasm component model.");
    pause(300 + output);
    call.set_response_model("gpt-4o-2024-08-06");
    call.record_usage(Usage { input_tokens: Some(input), output_tokens: Some(output), ..Default::default() });
    call.set_attribute("gen_ai.response.finish_reasons", &[finish][..]);
    call.end();
}

/// The summary `stats()["operations"]` gives, one line per operation.
pub fn operations_text(stats: &serde_json::Value) -> String {
    let rows = stats["operations"].as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    for r in rows {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let q = |k: &str| r["duration_s"][k].as_f64().unwrap_or(0.0);
        let provider = s("provider");
        let subject = if provider.is_empty() { s("name") } else { format!("{} ({provider})", s("name")) };
        let cost = match (r["cost_usd"].as_f64().unwrap_or(0.0), n("cost_unknown")) {
            (usd, 0) if n("input_tokens") + n("output_tokens") > 0 => format!(", cost ${usd:.6}"),
            (_, 0) => String::new(),
            (usd, unknown) => format!(", cost ${usd:.6} ({unknown} unpriced)"),
        };
        let tokens = match (n("input_tokens"), n("output_tokens")) {
            (0, 0) => String::new(),
            (i, o) => format!(", tokens {i} in / {o} out"),
        };
        out.push_str(&format!(
            "  {:<15} {subject:<32} {} done, {} failed, p50 {:.3} s, p95 {:.3} s{tokens}{cost}\n",
            s("operation"),
            n("count"),
            n("errors"),
            q("p50"),
            q("p95"),
        ));
    }
    out
}
