//! An agent-style app instrumented with polytel: a request handler continuing
//! an upstream trace, LLM calls, a tool that fails, and propagation to a
//! downstream call. Run it with `cargo run --release --example agent`; set
//! OTEL_EXPORTER_OTLP_ENDPOINT to send to a collector, or
//! OTEL_TRACES_EXPORTER=console to print the trace tree here.

use std::time::Duration;

use polytel::{Options, SpanKind, Status, Telemetry};

fn main() -> anyhow::Result<()> {
    let telemetry = Telemetry::configure(Options {
        service_name: Some("example-agent".into()),
        service_version: Some(env!("CARGO_PKG_VERSION").into()),
        ..Default::default()
    })?;

    // An incoming request that carries W3C trace context.
    let upstream = telemetry.extract([("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")])?;
    let mut request = telemetry.span("POST /ask").kind(SpanKind::Server).attribute("http.request.method", "POST");
    if let Some(parent) = &upstream.parent {
        request = request.parent(parent);
    }
    let request = request.start();

    let agent = request
        .child("invoke_agent helper")
        .attribute("gen_ai.operation.name", "invoke_agent")
        .attribute("gen_ai.agent.name", "helper")
        .start();
    for (model, input, output) in [("gpt-4o-mini", 220, 40), ("gpt-4o", 900, 310)] {
        let mut llm = agent
            .child(format!("chat {model}"))
            .kind(SpanKind::Client)
            .attribute("gen_ai.operation.name", "chat")
            .attribute("gen_ai.provider.name", "openai")
            .attribute("gen_ai.request.model", model)
            .start();
        llm.set_attribute("gen_ai.usage.input_tokens", input);
        llm.set_attribute("gen_ai.usage.output_tokens", output);
        llm.end();
    }

    let mut tool = agent.child("execute_tool lookup_order").attribute("gen_ai.tool.name", "lookup_order").start();
    // The headers a real tool call would send downstream.
    let headers = telemetry.inject(tool.context(), &upstream.baggage)?;
    tool.set_attribute("example.downstream.traceparent", headers[0].1.clone());
    let err = std::io::Error::new(std::io::ErrorKind::NotFound, "order 1234 not found");
    tool.record_error(&err);
    tool.set_status(Status::Error(err.to_string()));
    tool.end();

    agent.end();
    request.end();

    let report = telemetry.shutdown(Duration::from_secs(5));
    eprintln!("flushed: {}, abandoned: {}; counters: {}", report.flushed, report.abandoned, telemetry.stats()?);
    Ok(())
}
