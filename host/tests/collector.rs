//! End to end against a real OpenTelemetry Collector: the demo workload goes
//! through polytel's OTLP exporter, and the Collector's own debug output must
//! show every span with the right names, parents, typed attributes, events and
//! status. Needs Go (the collector is built once by scripts/install-collector.sh);
//! without it these tests fail, they never skip.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use polytel::{Options, Telemetry};
use support::collector::{CollectedSpan, Collector};

const ROOT: &str = "invoke_workflow research-report";
const AGENT: &str = "invoke_agent research-assistant";
const STACKTRACE: &str =
    "TimeoutError: fetch_page timed out after 30s\n  at fetch_page (tools.rs:88)\n  at run_tool (agent.rs:41)";

/// Runs the demo workload through polytel into a fresh collector and returns
/// what the collector printed.
fn send_demo(protocol: &str, compression: &str, service_name: &str) -> Vec<CollectedSpan> {
    let started = Instant::now();
    let mut collector = Collector::start();
    let t = Telemetry::configure(Options {
        backend: Some("otlp".into()),
        // gRPC names the Collector's gRPC receiver as it is; HTTP its base URL.
        endpoint: Some(if protocol == "grpc" { collector.grpc_target() } else { collector.endpoint() }),
        protocol: Some(protocol.into()),
        compression: Some(compression.into()),
        service_name: Some(service_name.into()),
        env: Some(BTreeMap::new()),
        ..Default::default()
    })
    .expect("configure polytel");
    polytel::demo::run_agent_workload(&t, 0.0);
    let report = t.shutdown(Duration::from_secs(10));
    let stats = t.stats().expect("stats");
    assert!(report.flushed, "shutdown did not flush: {report:?}\nstats: {stats:#}\n{}", collector.output());
    assert_eq!(report.abandoned, 0, "{report:?}\nstats: {stats:#}");
    assert_eq!(stats["spans"]["exported"], 8, "stats: {stats:#}\n--- collector ---\n{}", collector.output());
    assert_eq!(stats["logs"]["exported"], 4, "stats: {stats:#}\n--- collector ---\n{}", collector.output());
    collector.wait_for_logs(4, Duration::from_secs(20));

    collector.wait_for_spans(8, Duration::from_secs(20));
    // Shutdown returned after the collector answered, and the debug exporter
    // prints before answering: whatever arrives is there now. Look once more
    // after a moment so a duplicate export would be seen too.
    std::thread::sleep(Duration::from_millis(200));
    let spans = collector.spans();
    eprintln!("{protocol}/{compression}: {} spans in {:?}", spans.len(), started.elapsed());
    spans
}

fn attr<'a>(span: &'a CollectedSpan, key: &str) -> &'a str {
    span.attr(key).unwrap_or_else(|| panic!("span {:?} has no attribute {key}: {:#?}", span.name, span.attributes))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

fn assert_demo_workload(spans: &[CollectedSpan], service_name: &str) {
    assert_eq!(spans.len(), 8, "expected the demo's 8 spans exactly once: {spans:#?}");

    // Names.
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    let mut expected = vec![
        ROOT,
        AGENT,
        "search_memory user-preferences",
        "chat gpt-4o",
        "chat gpt-4o",
        "execute_tool web_search",
        "execute_tool fetch_page",
        "execute_tool summarize",
    ];
    expected.sort_unstable();
    assert_eq!(names, expected);

    // Tree: the workflow is the root, the agent its child, everything else the agent's child.
    let roots: Vec<&CollectedSpan> = spans.iter().filter(|s| s.parent_id.is_empty()).collect();
    assert_eq!(roots.len(), 1, "expected exactly one root (empty Parent ID): {roots:#?}");
    let root = roots[0];
    assert_eq!(root.name, ROOT);
    assert!(is_hex(&root.trace_id, 32), "trace id {:?}", root.trace_id);
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(ids.len(), 8, "span ids are not unique: {ids:?}");
    let agent = spans.iter().find(|s| s.name == AGENT).unwrap();
    assert_eq!(agent.parent_id, root.span_id, "the agent's parent is not the workflow");
    for s in spans {
        assert!(is_hex(&s.span_id, 16), "{}: span id {:?}", s.name, s.span_id);
        assert_eq!(s.trace_id, root.trace_id, "{}: not in the root's trace", s.name);
        if s.span_id != root.span_id && s.span_id != agent.span_id {
            assert_eq!(s.parent_id, agent.span_id, "{}: parent is not the agent", s.name);
        }
        // Resource and scope, on every span.
        assert_eq!(s.resource_attr("service.name"), Some(format!("Str({service_name})").as_str()), "{}", s.name);
        assert_eq!(s.resource_attr("telemetry.sdk.name"), Some("Str(polytel)"), "{}", s.name);
        assert_eq!(s.resource_attr("telemetry.sdk.language"), Some("Str(rust)"), "{}", s.name);
        assert_eq!(s.scope_name, "polytel.genai", "{}", s.name);
        assert_eq!(s.scope_version, env!("CARGO_PKG_VERSION"), "{}", s.name);
        // No attribute twice.
        let keys: BTreeSet<&str> = s.attributes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.len(), s.attributes.len(), "{}: duplicate attributes {:?}", s.name, s.attributes);
        // Only fetch_page failed or recorded an event.
        if s.name != "execute_tool fetch_page" {
            assert!(s.events.is_empty(), "{}: unexpected events {:?}", s.name, s.events);
            assert_ne!(s.status_code, "Error", "{}", s.name);
            assert_eq!(s.status_message, "", "{}", s.name);
        }
        let expected_kind = if s.name == "chat gpt-4o" { "Client" } else { "Internal" };
        assert_eq!(s.kind, expected_kind, "{}: kind", s.name);
        let operation = s.name.split(' ').next().unwrap();
        assert_eq!(attr(s, "gen_ai.operation.name"), format!("Str({operation})"), "{}", s.name);
    }
    let by_name = |name: &str| -> &CollectedSpan {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name:?}"))
    };

    // Workflow and agent.
    assert_eq!(root.status_code, "Unset");
    assert_eq!(attr(root, "gen_ai.workflow.name"), "Str(research-report)");
    assert_eq!(attr(agent, "gen_ai.agent.name"), "Str(research-assistant)");
    assert_eq!(attr(agent, "gen_ai.agent.id"), "Str(agent-7)");
    assert_eq!(attr(agent, "gen_ai.conversation.id"), "Str(conv-42)");

    // Memory lookup: status Ok, in the agent. Content capture is off, so its records are not sent.
    let memory = by_name("search_memory user-preferences");
    assert_eq!(memory.status_code, "Ok");
    assert_eq!(attr(memory, "gen_ai.memory.store.id"), "Str(user-preferences)");
    assert_eq!(attr(memory, "gen_ai.agent.name"), "Str(research-assistant)");
    assert_eq!(memory.attr("gen_ai.memory.records"), None);

    // The two LLM calls: Int, Double and Slice attributes, set before and after start.
    let chats: Vec<&CollectedSpan> = spans.iter().filter(|s| s.name == "chat gpt-4o").collect();
    let mut calls = BTreeSet::new();
    for c in &chats {
        assert_eq!(c.status_code, "Unset");
        assert_eq!(attr(c, "gen_ai.provider.name"), "Str(openai)");
        assert_eq!(attr(c, "gen_ai.request.model"), "Str(gpt-4o)");
        assert_eq!(attr(c, "gen_ai.request.temperature"), "Double(0.2)");
        assert_eq!(attr(c, "server.address"), "Str(api.openai.com)");
        assert_eq!(attr(c, "server.port"), "Int(443)");
        assert_eq!(attr(c, "gen_ai.response.model"), "Str(gpt-4o-2024-08-06)");
        assert!(attr(c, "polytel.gen_ai.cost").starts_with("Double("), "{}: priced from the table", c.name);
        assert_eq!(c.attr("gen_ai.input.messages"), None, "content capture is off by default");
        calls.insert((
            attr(c, "gen_ai.usage.input_tokens"),
            attr(c, "gen_ai.usage.output_tokens"),
            attr(c, "gen_ai.response.finish_reasons"),
        ));
    }
    let expected_calls = BTreeSet::from([
        ("Int(412)", "Int(96)", r#"Slice(["tool_calls"])"#),
        ("Int(1630)", "Int(412)", r#"Slice(["stop"])"#),
    ]);
    assert_eq!(calls, expected_calls);

    // Tool calls.
    for (tool, args) in [
        ("web_search", r#"{"q":"wasm component model"}"#),
        ("fetch_page", r#"{"url":"https://example.org/paper"}"#),
        ("summarize", r#"{"max_words":120}"#),
    ] {
        let s = by_name(&format!("execute_tool {tool}"));
        assert_eq!(attr(s, "gen_ai.tool.name"), format!("Str({tool})"));
        assert_eq!(attr(s, "gen_ai.tool.call.id"), format!("Str(call_{tool})"));
        assert_eq!(attr(s, "gen_ai.tool.call.arguments"), format!("Str({args})"));
        if tool != "fetch_page" {
            assert_eq!(s.status_code, "Unset", "{tool}");
            assert_eq!(s.attr("error.type"), None, "{tool}");
        }
    }

    // The failure: status Error with its message, error.type, an exception event.
    let failed = by_name("execute_tool fetch_page");
    assert_eq!(failed.status_code, "Error");
    assert_eq!(failed.status_message, "fetch_page timed out after 30s");
    assert_eq!(attr(failed, "error.type"), "Str(TimeoutError)");
    assert_eq!(failed.events.len(), 1, "{:#?}", failed.events);
    let event = &failed.events[0];
    assert_eq!(event.name, "exception");
    assert_eq!(event.attr("exception.type"), Some("Str(TimeoutError)"), "{event:#?}");
    assert_eq!(event.attr("exception.message"), Some("Str(fetch_page timed out after 30s)"), "{event:#?}");
    assert_eq!(event.attr("exception.stacktrace"), Some(format!("Str({STACKTRACE})").as_str()), "{event:#?}");
}

#[test]
fn demo_workload_arrives_intact_over_protobuf_gzip() {
    let service = "collector-test-protobuf";
    let spans = send_demo("http/protobuf", "gzip", service);
    assert_demo_workload(&spans, service);
}

#[test]
fn demo_workload_arrives_intact_over_grpc_gzip() {
    let service = "collector-test-grpc";
    let spans = send_demo("grpc", "gzip", service);
    assert_demo_workload(&spans, service);
}

#[test]
fn demo_workload_arrives_intact_over_json() {
    let service = "collector-test-json";
    let spans = send_demo("http/json", "none", service);
    assert_demo_workload(&spans, service);
}
