//! Metrics and logs through the pipeline's public surface: aggregation,
//! temporality, exemplars, cardinality, observable instruments, bad input,
//! log batching and delivery.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric, NumberDataPoint};
use polytel_core::delivery::Outcome;
use polytel_core::pipeline::{Destination, Export, Pipeline, Signal};
use polytel_core::stats::DropReason;
use prost::Message;

const MS: u64 = 1_000_000;
const T0: u64 = 1_700_000_000_000_000_000;
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn pipeline(extra: &str) -> Pipeline {
    let sep = if extra.is_empty() { "" } else { "," };
    Pipeline::from_json(&format!(
        r#"{{"options":{{"backend":"otlp","endpoint":"http://collector:4318"{sep}{extra}}},"env":{{}},"seed":"7","host":{{"sdk_language":"rust"}}}}"#
    ))
    .unwrap()
}

fn raw(e: &Export) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(&e.body).unwrap()
}

fn metrics_of(r: &[Export]) -> Vec<Metric> {
    r.iter()
        .filter(|e| e.signal == Signal::Metrics)
        .flat_map(|e| ExportMetricsServiceRequest::decode(&raw(e)[..]).unwrap().resource_metrics)
        .flat_map(|rm| rm.scope_metrics)
        .flat_map(|sm| sm.metrics)
        .collect()
}

fn metric<'a>(ms: &'a [Metric], name: &str) -> &'a Metric {
    ms.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no metric {name} in {ms:?}"))
}

fn number(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => f64::NAN,
    }
}

fn attr(kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<Value> {
    kvs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
}

fn register(p: &mut Pipeline, json: &str) -> u32 {
    p.register_instrument(json)
}

fn measure(id: u32, value: &str, attrs: &str) -> String {
    format!(r#"{{"instrument":{id},"value":{value},"attributes":{attrs},"time":{}}}"#, T0 + MS)
}

#[test]
fn counters_sum_per_attribute_set_in_any_key_order() {
    let mut p = pipeline("");
    let c = register(&mut p, r#"{"name":"agent.runs","kind":"counter","unit":"{run}","description":"Agent runs"}"#);
    assert_eq!(
        register(&mut p, r#"{"name":"agent.runs","kind":"counter","unit":"{run}","description":"Agent runs"}"#),
        c
    );
    p.record_metrics(&format!(
        "[{},{},{}]",
        measure(c, "1", r#"{"agent":"a","ok":true}"#),
        measure(c, "2.5", r#"{"ok":true,"agent":"a"}"#),
        measure(c, "4", r#"{"agent":"b","ok":true}"#)
    ));
    let r = p.poll(T0 + 2 * MS, true);
    let ms = metrics_of(&r.exports);
    let m = metric(&ms, "agent.runs");
    assert_eq!((m.unit.as_str(), m.description.as_str()), ("{run}", "Agent runs"));
    let Some(metric::Data::Sum(sum)) = &m.data else { panic!("a sum: {m:?}") };
    assert!(sum.is_monotonic);
    assert_eq!(sum.aggregation_temporality, 2, "cumulative by default");
    let mut values: Vec<(String, f64)> =
        sum.data_points.iter().map(|p| (format!("{:?}", attr(&p.attributes, "agent")), number(p))).collect();
    values.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        values,
        [
            (format!("{:?}", Some(Value::StringValue("a".into()))), 3.5),
            (format!("{:?}", Some(Value::StringValue("b".into()))), 4.0)
        ]
    );
    assert_eq!(r.exports[0].items, 2);
    assert_eq!(p.stats().metrics.received, 3);
}

#[test]
fn delta_temporality_reports_increments_and_skips_quiet_series() {
    let mut p = pipeline(r#""temporality":"delta""#);
    let c = register(&mut p, r#"{"name":"tokens","kind":"counter"}"#);
    let u = register(&mut p, r#"{"name":"queue.depth","kind":"up_down_counter"}"#);
    p.record_metrics(&format!(
        "[{},{},{}]",
        measure(c, "10", r#"{"m":"x"}"#),
        measure(c, "5", r#"{"m":"y"}"#),
        measure(u, "3", "{}")
    ));
    let first = metrics_of(&p.poll(T0 + 2 * MS, true).exports);
    p.record_metrics(&format!("[{},{}]", measure(c, "7", r#"{"m":"x"}"#), measure(u, "-1", "{}")));
    let second = metrics_of(&p.poll(T0 + 3 * MS, true).exports);
    let Some(metric::Data::Sum(s1)) = &metric(&first, "tokens").data else { panic!() };
    let Some(metric::Data::Sum(s2)) = &metric(&second, "tokens").data else { panic!() };
    assert_eq!(s2.aggregation_temporality, 1, "delta");
    assert_eq!(s1.data_points.len(), 2);
    assert_eq!(s2.data_points.len(), 1, "the quiet series is not reported");
    assert_eq!(number(&s2.data_points[0]), 7.0);
    assert_eq!(s2.data_points[0].start_time_unix_nano, T0 + 2 * MS, "a delta starts at the previous collection");
    let Some(metric::Data::Sum(ud)) = &metric(&second, "queue.depth").data else { panic!() };
    assert_eq!((ud.aggregation_temporality, number(&ud.data_points[0])), (2, 2.0), "up-down counters stay cumulative");
}

#[test]
fn histograms_use_their_boundaries_and_keep_exemplars_of_sampled_spans() {
    let mut p = pipeline("");
    let h = register(&mut p, r#"{"name":"llm.duration","kind":"histogram","unit":"s","boundaries":[0.1,1,10]}"#);
    let with_span = |v: &str, sampled: bool| {
        format!(
            r#"{{"instrument":{h},"value":{v},"time":{},"trace_id":"{TRACE}","span_id":"{SPAN}","sampled":{sampled}}}"#,
            T0 + 5
        )
    };
    p.record_metrics(&format!(
        "[{},{},{},{},{}]",
        measure(h, "0.05", "{}"),
        measure(h, "0.1", "{}"),
        with_span("0.5", true),
        with_span("20", false),
        measure(h, "2", "{}")
    ));
    let ms = metrics_of(&p.poll(T0 + 2 * MS, true).exports);
    let Some(metric::Data::Histogram(hist)) = &metric(&ms, "llm.duration").data else { panic!() };
    let d = &hist.data_points[0];
    assert_eq!(d.explicit_bounds, [0.1, 1.0, 10.0]);
    assert_eq!(d.bucket_counts, [2, 1, 1, 1], "upper bounds are inclusive");
    assert_eq!((d.count, d.sum, d.min, d.max), (5, Some(22.65), Some(0.05), Some(20.0)));
    assert_eq!(d.exemplars.len(), 1, "only the sampled span's measurement: {:?}", d.exemplars);
    assert_eq!(polytel_core::ids::to_hex(&d.exemplars[0].trace_id), TRACE);
    assert_eq!(d.exemplars[0].time_unix_nano, T0 + 5);
}

#[test]
fn exponential_histograms_on_request() {
    let mut p = pipeline(r#""histogram_aggregation":"base2_exponential_bucket_histogram""#);
    let h = register(&mut p, r#"{"name":"sizes","kind":"histogram","unit":"By"}"#);
    let explicit = register(&mut p, r#"{"name":"fixed","kind":"histogram","boundaries":[1,2]}"#);
    p.record_metrics(&format!(
        "[{},{},{}]",
        measure(h, "3", "{}"),
        measure(h, "1000", "{}"),
        measure(explicit, "1", "{}")
    ));
    let ms = metrics_of(&p.poll(T0 + 2 * MS, true).exports);
    let Some(metric::Data::ExponentialHistogram(e)) = &metric(&ms, "sizes").data else { panic!() };
    assert_eq!(e.data_points[0].count, 2);
    assert!(matches!(metric(&ms, "fixed").data, Some(metric::Data::Histogram(_))), "explicit boundaries win");
}

#[test]
fn cardinality_limit_folds_new_series_into_the_overflow_series() {
    let mut p = pipeline(r#""cardinality_limit":3"#);
    let c = register(&mut p, r#"{"name":"calls","kind":"counter"}"#);
    let batch: Vec<String> = (0..10).map(|i| measure(c, "1", &format!(r#"{{"user":"u{i}"}}"#))).collect();
    p.record_metrics(&format!("[{}]", batch.join(",")));
    p.record_metrics(&format!("[{}]", measure(c, "1", r#"{"user":"u0"}"#)));
    let ms = metrics_of(&p.poll(T0 + 2 * MS, true).exports);
    let Some(metric::Data::Sum(s)) = &metric(&ms, "calls").data else { panic!() };
    assert_eq!(s.data_points.len(), 3, "two series and the overflow series");
    let overflow = s.data_points.iter().find(|d| attr(&d.attributes, "otel.metric.overflow").is_some()).unwrap();
    assert_eq!(attr(&overflow.attributes, "otel.metric.overflow"), Some(Value::BoolValue(true)));
    assert_eq!(number(overflow), 8.0);
    let total: f64 = s.data_points.iter().map(number).sum();
    assert_eq!(total, 11.0, "nothing is lost");
    assert_eq!(p.stats().metrics.limited.series_overflowed, 8);
}

#[test]
fn bad_measurements_and_instruments_are_dropped_counted_and_warned_once() {
    let mut p = pipeline("");
    let c = register(&mut p, r#"{"name":"ok.counter","kind":"counter"}"#);
    let bad_name = register(&mut p, r#"{"name":"9lives","kind":"counter"}"#);
    let bad_kind = register(&mut p, r#"{"name":"x","kind":"meter"}"#);
    let malformed = register(&mut p, "not json");
    let h = register(&mut p, r#"{"name":"h","kind":"histogram","boundaries":[5,1,1]}"#);
    let nan_bounds = register(&mut p, r#"{"name":"h2","kind":"histogram","boundaries":[1,"NaN"]}"#);
    let g = register(&mut p, r#"{"name":"g","kind":"gauge","unit":"1"}"#);
    let again = register(&mut p, r#"{"name":"OK.counter","kind":"counter","unit":"s"}"#);
    assert_ne!(again, c, "another unit is another instrument");
    p.record_metrics(&format!(
        "[{},{},{},{},{},{},{},{},{},{},{},{}]",
        measure(c, "\"NaN\"", "{}"),
        measure(c, "\"Infinity\"", "{}"),
        measure(c, "-1", "{}"),
        measure(c, "2", "{}"),
        measure(bad_name, "1", "{}"),
        measure(bad_kind, "1", "{}"),
        measure(malformed, "1", "{}"),
        measure(999, "1", "{}"),
        measure(h, "3", "{}"),
        measure(nan_bounds, "3", "{}"),
        measure(g, "-4.5", "{}"),
        r#"{"instrument":0}"#,
    ));
    p.record_metrics("{not an array");
    let s = &p.stats().metrics;
    assert_eq!(s.received, 12);
    assert_eq!(s.dropped(DropReason::InvalidValue), 2);
    assert_eq!(s.dropped(DropReason::Negative), 1);
    assert_eq!(s.dropped(DropReason::InvalidInstrument), 3);
    assert_eq!(s.dropped(DropReason::Invalid), 3, "unknown id, missing value, the bad batch");
    let r = p.poll(T0 + 2 * MS, true);
    let ms = metrics_of(&r.exports);
    let Some(metric::Data::Sum(sum)) = &metric(&ms, "ok.counter").data else { panic!() };
    assert_eq!(number(&sum.data_points[0]), 2.0, "the good measurement in the batch is kept");
    let Some(metric::Data::Histogram(hist)) = &metric(&ms, "h").data else { panic!() };
    assert_eq!(hist.data_points[0].explicit_bounds.len(), 15, "bad boundaries fall back to the defaults");
    let Some(metric::Data::Gauge(gauge)) = &metric(&ms, "g").data else { panic!() };
    assert_eq!(number(&gauge.data_points[0]), -4.5, "gauges take negative values");
    let w = r.warnings.join("\n");
    for needle in [
        "9lives",
        "meter",
        "malformed",
        "not finite",
        "negative",
        "never registered",
        "strictly increasing",
        "registered again",
    ] {
        assert!(w.contains(needle), "no warning about {needle}: {w}");
    }
    p.record_metrics(&format!("[{}]", measure(c, "\"NaN\"", "{}")));
    assert!(p.poll(T0 + 3 * MS, true).warnings.is_empty(), "each kind of warning once");
}

#[test]
fn observable_instruments_are_observed_before_each_collection() {
    let mut p = pipeline(r#""metric_export_interval_ms":1000"#);
    let g = register(&mut p, r#"{"name":"memory.entries","kind":"observable_gauge"}"#);
    let oc = register(&mut p, r#"{"name":"cpu.time","kind":"observable_counter","unit":"s"}"#);
    let r = p.poll(T0, false);
    assert!(!r.observe && r.exports.is_empty(), "the first poll starts the schedule");
    assert_eq!(r.next_poll, T0 + 1000 * MS);
    let r = p.poll(T0 + 1000 * MS, false);
    assert!(r.observe, "collection is due: the host observes first");
    assert!(metrics_of(&r.exports).is_empty());
    p.record_metrics(&format!("[{},{}]", measure(g, "42", r#"{"store":"m"}"#), measure(oc, "1.5", "{}")));
    let r = p.poll(T0 + 1001 * MS, false);
    assert!(!r.observe);
    let ms = metrics_of(&r.exports);
    let Some(metric::Data::Gauge(gauge)) = &metric(&ms, "memory.entries").data else { panic!() };
    assert_eq!(number(&gauge.data_points[0]), 42.0);
    // An observable counter reports its running total, not a sum of observations.
    let id = r.exports[0].id;
    p.report(id, &Outcome::Response { status: 200, retry_after: None, body: vec![] }, T0 + 1002 * MS);
    assert!(p.poll(T0 + 2001 * MS, false).observe);
    p.record_metrics(&format!("[{}]", measure(oc, "4", "{}")));
    let ms = metrics_of(&p.poll(T0 + 2002 * MS, false).exports);
    let Some(metric::Data::Sum(s)) = &metric(&ms, "cpu.time").data else { panic!() };
    assert_eq!(number(&s.data_points[0]), 4.0);
    assert!(ms.iter().all(|m| m.name != "memory.entries"), "a series not observed this time is gone");
}

#[test]
fn metric_requests_split_on_413_and_bound_memory_under_a_dead_receiver() {
    let mut p = pipeline("");
    let c = register(&mut p, r#"{"name":"calls","kind":"counter"}"#);
    let batch: Vec<String> = (0..6).map(|i| measure(c, "1", &format!(r#"{{"k":{i}}}"#))).collect();
    p.record_metrics(&format!("[{}]", batch.join(",")));
    let r = p.poll(T0 + MS, true);
    assert_eq!(r.exports.len(), 1);
    p.report(r.exports[0].id, &Outcome::Response { status: 413, retry_after: None, body: vec![] }, T0 + 2 * MS);
    let r = p.poll(T0 + 3 * MS, false);
    assert_eq!(r.exports.iter().map(|e| e.items).collect::<Vec<_>>(), [3, 3]);
    let points: usize = metrics_of(&r.exports)
        .iter()
        .map(|m| match &m.data {
            Some(metric::Data::Sum(s)) => s.data_points.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(points, 6);
}

fn log(i: u32, extra: &str) -> String {
    format!(
        r#"{{"time":{},"observed":{},"severity":9,"severity_text":"INFO","body":"line {i}"{extra}}}"#,
        T0 + i as u64,
        T0 + i as u64
    )
}

fn logs_of(r: &[Export]) -> ExportLogsServiceRequest {
    let mut all = ExportLogsServiceRequest::default();
    for e in r.iter().filter(|e| e.signal == Signal::Logs) {
        all.resource_logs.extend(ExportLogsServiceRequest::decode(&raw(e)[..]).unwrap().resource_logs);
    }
    all
}

#[test]
fn logs_batch_carry_trace_context_and_keep_the_rest_of_a_bad_batch() {
    let mut p = pipeline(r#""log_max_export_batch_size":3,"log_schedule_delay_ms":1000"#);
    assert!(p.poll(T0, false).exports.is_empty());
    let ctx = format!(
        r#","trace_id":"{TRACE}","span_id":"{SPAN}","flags":1,"attributes":{{"tool":"search"}},"scope":{{"name":"agent"}}"#
    );
    p.record_logs(&format!("[{},{},{{\"bogus\":1}}]", log(0, &ctx), log(1, "")));
    let early = p.poll(T0 + 10 * MS, false);
    assert!(early.exports.is_empty(), "2 < batch size, schedule not due");
    p.record_logs(&format!("[{}]", log(2, "")));
    let r = p.poll(T0 + 20 * MS, false);
    assert_eq!(r.exports.len(), 1);
    assert!(
        matches!(&r.exports[0].destination, Destination::Http { url, .. } if url == "http://collector:4318/v1/logs")
    );
    let req = logs_of(&r.exports);
    let scopes = &req.resource_logs[0].scope_logs;
    assert_eq!(scopes.len(), 2, "grouped by scope");
    let first = &scopes[0].log_records[0];
    assert_eq!(polytel_core::ids::to_hex(&first.trace_id), TRACE);
    assert_eq!((first.severity_number, first.flags), (9, 1));
    assert_eq!(attr(&first.attributes, "tool"), Some(Value::StringValue("search".into())));
    assert_eq!(p.stats().logs.dropped(DropReason::Invalid), 1);
    assert!(early.warnings.iter().any(|w| w.contains("log record was malformed")), "{:?}", early.warnings);
}

#[test]
fn log_queue_is_bounded_and_abandon_counts_everything() {
    let mut p = pipeline(r#""log_max_queue_size":4,"log_max_export_batch_size":4"#);
    let logs: Vec<String> = (0..10).map(|i| log(i, "")).collect();
    p.record_logs(&format!("[{}]", logs.join(",")));
    assert_eq!(p.stats().logs.dropped(DropReason::QueueFull), 6);
    let c = p.register_instrument(r#"{"name":"c","kind":"counter"}"#);
    p.record_metrics(&format!("[{}]", measure(c, "1", "{}")));
    let r = p.poll(T0 + MS, true);
    assert_eq!(r.exports.len(), 2, "one log and one metric export");
    assert_eq!(p.abandon(), 5, "4 log records and 1 data point");
    assert_eq!(p.stats().logs.dropped(DropReason::Shutdown), 4);
    assert_eq!(p.stats().metrics.dropped(DropReason::Shutdown), 1);
}

#[test]
fn a_disabled_signal_records_nothing() {
    let mut p = pipeline(r#""metrics_exporter":"none","logs_exporter":"none""#);
    let plan: serde_json::Value = serde_json::from_str(&p.plan()).unwrap();
    assert_eq!(
        (plan["traces"].as_bool(), plan["metrics"].as_bool(), plan["logs"].as_bool()),
        (Some(true), Some(false), Some(false))
    );
    let c = p.register_instrument(r#"{"name":"c","kind":"counter"}"#);
    p.record_metrics(&format!("[{}]", measure(c, "1", "{}")));
    p.record_logs(&format!("[{}]", log(0, "")));
    assert!(p.poll(T0, true).exports.is_empty());
    assert_eq!((p.stats().metrics.received, p.stats().logs.received), (0, 0));
}

#[test]
fn self_metrics_export_the_cores_own_counters_when_asked() {
    let mut p = pipeline(r#""self_metrics":true"#);
    p.record_spans(&format!(
        r#"[{{"trace_id":"{TRACE}","span_id":"{SPAN}","name":"s","start":{T0},"end":{T0}}},{{"trace_id":"bad","span_id":"{SPAN}","name":"s","start":{T0},"end":{T0}}}]"#
    ));
    let first = p.poll(T0, true).exports;
    for e in &first {
        p.report(e.id, &Outcome::Response { status: 200, retry_after: None, body: vec![] }, T0);
    }
    // The second collection sees the first export's outcome. The instruments
    // are observable, so the core first asks the host to observe.
    let ask = p.poll(T0 + 60_000 * MS, true);
    assert!(ask.observe && ask.exports.is_empty());
    let ms = metrics_of(&p.poll(T0 + 60_000 * MS, true).exports);
    let exported = metric(&ms, "polytel.exported");
    let Some(metric::Data::Sum(sum)) = &exported.data else { panic!("{exported:?}") };
    let spans =
        sum.data_points.iter().find(|d| attr(&d.attributes, "signal") == Some(Value::StringValue("spans".into())));
    assert_eq!(spans.map(number), Some(1.0), "{sum:?}");
    let dropped = metric(&ms, "polytel.dropped");
    let Some(metric::Data::Sum(sum)) = &dropped.data else { panic!("{dropped:?}") };
    let invalid = sum
        .data_points
        .iter()
        .find(|d| attr(&d.attributes, "reason") == Some(Value::StringValue("invalid".into())))
        .expect("the malformed span's drop");
    assert_eq!(number(invalid), 1.0);
    for name in ["polytel.retried", "polytel.queued", "polytel.pending"] {
        metric(&ms, name);
    }

    let mut off = pipeline("");
    off.record_spans(&format!(r#"[{{"trace_id":"{TRACE}","span_id":"{SPAN}","name":"s","start":{T0},"end":{T0}}}]"#));
    let ms = metrics_of(&off.poll(T0, true).exports);
    assert!(ms.iter().all(|m| !m.name.starts_with("polytel.")), "self metrics without being asked: {ms:?}");
}
