//! The example dashboard and alert rules (examples/observability) read only
//! metrics the core emits: the demo workload runs, /metrics is scraped, and
//! every metric name the dashboard's queries, the alert rules and the rules'
//! unit-test series mention must be in the scrape, with the test series'
//! labels among those the scrape shows for that metric.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polytel::{Options, Telemetry};

fn example(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/observability").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Names in our namespaces (gen_ai_*, polytel_*, target_info) that `text`
/// mentions: metric names and label names.
fn mentioned_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("gen_ai_") || w.starts_with("polytel_") || *w == "target_info")
        .map(str::to_owned)
        .collect()
}

/// Metric name → label names, from a Prometheus text exposition.
fn scraped_series(exposition: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in exposition.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name_end = line.find(['{', ' ']).unwrap();
        let labels = series.entry(line[..name_end].to_owned()).or_default();
        if let Some(body) = line[name_end..].strip_prefix('{') {
            for pair in body.split("\",") {
                if let Some((key, _)) = pair.split_once("=\"") {
                    labels.insert(key.trim_start_matches(',').to_owned());
                }
            }
        }
    }
    series
}

fn demo_exposition() -> String {
    let t = Telemetry::configure(Options {
        metrics_exporter: Some("prometheus".into()),
        prometheus_listen: Some("127.0.0.1:0".into()),
        traces_exporter: Some("none".into()),
        logs_exporter: Some("none".into()),
        service_name: Some("agent-app".into()),
        env: Some(BTreeMap::new()),
        ..Default::default()
    })
    .unwrap();
    polytel::demo::run_agent_workload(&t, 0.0);
    let addr = t.prometheus_addr().expect("serving /metrics");
    let body = ureq::get(&format!("http://{addr}/metrics")).call().unwrap().body_mut().read_to_string().unwrap();
    t.shutdown(std::time::Duration::from_secs(5));
    body
}

#[test]
fn dashboard_and_alerts_use_only_emitted_metrics() {
    let scraped = scraped_series(&demo_exposition());
    for required in ["gen_ai_client_operation_duration_seconds_bucket", "polytel_gen_ai_cost_total", "target_info"] {
        assert!(scraped.contains_key(required), "the demo's scrape lacks {required}: {:?}", scraped.keys());
    }

    let label_names: BTreeSet<String> = scraped.values().flatten().cloned().collect();
    let dashboard: serde_json::Value = serde_json::from_str(&example("grafana-dashboard.json")).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "the dashboard has only {} queries", exprs.len());
    let alerts = example("alerts.yml");
    for (what, text) in [("dashboard", exprs.join("\n")), ("alerts.yml", alerts.clone())] {
        let names = mentioned_names(&text);
        assert!(names.iter().any(|n| scraped.contains_key(n)), "{what} mentions no metric");
        // A histogram's family name (in a description) counts as its _bucket series.
        let known = |n: &String| scraped.contains_key(n) || scraped.contains_key(&format!("{n}_bucket"));
        let unknown: Vec<_> = names.iter().filter(|n| !known(n) && !label_names.contains(*n)).collect();
        assert!(unknown.is_empty(), "{what} queries metrics or labels the core does not emit: {unknown:?}");
    }

    // The rules' unit tests feed series shaped as the scrape shows them.
    let tests = example("alerts_test.yml");
    let mut checked = 0;
    for series in tests.lines().filter_map(|l| l.trim().strip_prefix("- series: ")) {
        let series = series.trim_matches(['\'', '"']);
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let emitted = scraped.get(name).unwrap_or_else(|| panic!("alerts_test.yml feeds {name}, which is not emitted"));
        for label in labels.trim_end_matches('}').split(',').filter_map(|p| p.split_once('=')).map(|(k, _)| k.trim()) {
            assert!(
                emitted.contains(label) || ["job", "instance"].contains(&label),
                "alerts_test.yml gives {name} the label {label}, which the core does not emit ({emitted:?})"
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} test series found");
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}
