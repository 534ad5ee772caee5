//! A real Prometheus server for integration tests: it scrapes the host's
//! `/metrics` the way production would, and tests ask it PromQL questions.
//! Also `promtool check metrics`, the reference linter for the text format.
//!
//! Both come from `scripts/install-prometheus.sh` (Debian's `prometheus`
//! package, installed once). A server that cannot be installed or started is a
//! test failure, never a skip.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the server may take to answer /-/ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The scrape job's name, so queries can select it with `{job="polytel"}`.
pub const JOB: &str = "polytel";

/// One series of a query result: its labels and value.
pub type Sample = (BTreeMap<String, String>, f64);

/// A running Prometheus; killed (and its temp dir removed) on drop.
pub struct Prometheus {
    child: Child,
    port: u16,
    target: SocketAddr,
    dir: PathBuf,
    stderr_path: PathBuf,
    agent: ureq::Agent,
}

impl Prometheus {
    /// Installs (scripts/install-prometheus.sh) if needed, starts prometheus on
    /// a free 127.0.0.1 port with a temp config scraping `target` (path
    /// /metrics) every `scrape_interval`, with its own temp storage, and waits
    /// until /-/ready answers. Panics with the server's output if it does not
    /// start in 30 s.
    pub fn start(target: SocketAddr, scrape_interval: Duration) -> Prometheus {
        let binary = install_dir().join("prometheus");
        assert!(scrape_interval >= Duration::from_millis(1), "scrape interval {scrape_interval:?} is below 1ms");
        let config = scrape_config(target, scrape_interval);

        // The port is free when picked but could be taken before prometheus
        // binds it (another test picking the same one): then try another.
        let mut failures = Vec::new();
        for _attempt in 0..3 {
            let port = super::free_port();
            let dir = super::unique_temp_dir("prometheus");
            let config_path = dir.join("prometheus.yml");
            let stderr_path = dir.join("prometheus.stderr");
            fs::write(&config_path, &config).unwrap_or_else(|e| panic!("cannot write {}: {e}", config_path.display()));
            let stderr = fs::File::create(&stderr_path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
            let started = Instant::now();
            let child = Command::new(&binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // Nothing outlives the test; keep the TSDB from planning for it.
                .arg("--storage.tsdb.retention.time=1h")
                // Relative defaults (console templates, query log) resolve here.
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start prometheus {}: {e}", binary.display()));
            let mut prometheus = Prometheus { child, port, target, dir, stderr_path, agent: agent() };
            match prometheus.wait_ready() {
                Ok(()) => {
                    eprintln!("prometheus ready on {} after {:?}", prometheus.url(), started.elapsed());
                    return prometheus;
                }
                Err(why) => {
                    let output = prometheus.output();
                    let port_taken = output.contains("address already in use");
                    failures.push(format!("port {port}: {why}\n--- prometheus stderr ---\n{output}"));
                    drop(prometheus);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!("Prometheus did not start:\n{}", failures.join("\n"));
    }

    /// Ready = still running and /-/ready answers 200 (the TSDB is open and
    /// the scrape manager runs).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/-/ready", self.url());
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("prometheus exited early with {status}"));
            }
            let answer = self.agent.get(&url).config().timeout_global(Some(Duration::from_millis(500))).build().call();
            if answer.is_ok_and(|r| r.status() == 200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("{url} did not answer 200 within {READY_TIMEOUT:?}"));
            }
            sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything prometheus has written to stderr so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stderr_path).unwrap_or_default()).into_owned()
    }

    /// GETs an API path and returns its `data`; panics with the body on an
    /// HTTP or API error, and with the server's output if it cannot be reached.
    fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let url = format!("{}{path}", self.url());
        let mut request = self.agent.get(&url);
        for (k, v) in params {
            request = request.query(*k, *v);
        }
        let mut response = match request.call() {
            Ok(r) => r,
            Err(e) => panic!("GET {url} {params:?}: {e}\n--- prometheus stderr ---\n{}", self.output()),
        };
        let status = response.status();
        let body = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("GET {url} {params:?}: reading the body: {e}"));
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {url} {params:?}: HTTP {status}, body is not JSON ({e}):\n{body}"));
        if status != 200 || json["status"] != "success" {
            panic!("GET {url} {params:?}: HTTP {status}:\n{body}");
        }
        json["data"].clone()
    }

    /// Instant query via /api/v1/query: each result's labels and value. For a
    /// range vector (`x[1m]`) each series gives its latest sample.
    pub fn query(&self, promql: &str) -> Vec<Sample> {
        let data = self.api("/api/v1/query", &[("query", promql)]);
        parse_query_data(&data).unwrap_or_else(|e| panic!("query {promql:?}: {e}: {data}"))
    }

    /// Polls `query` until `ok` holds for its result or `timeout` passes;
    /// returns the last result either way, for the caller to assert on.
    pub fn wait_for(&self, promql: &str, timeout: Duration, ok: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
        let deadline = Instant::now() + timeout;
        loop {
            let result = self.query(promql);
            if ok(&result) || Instant::now() >= deadline {
                return result;
            }
            sleep(Duration::from_millis(200));
        }
    }

    /// Whether the last scrape of the target succeeded (/api/v1/targets health
    /// "up"), and its lastError. Before the first scrape: false.
    pub fn target_health(&self) -> (bool, String) {
        let data = self.api("/api/v1/targets", &[("state", "active")]);
        let instance = self.target.to_string();
        let targets = data["activeTargets"].as_array().cloned().unwrap_or_default();
        match targets.iter().find(|t| t["labels"]["instance"] == instance.as_str()) {
            Some(t) => (t["health"] == "up", t["lastError"].as_str().unwrap_or_default().to_owned()),
            None => (false, format!("{instance} is not among the active targets: {data}")),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("prometheus output kept in {}", self.stderr_path.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `promtool check metrics` on `exposition`; Err with promtool's output
/// when it complains (a parse error or a lint problem, e.g. a counter without
/// `_total`).
pub fn promtool_check_metrics(exposition: &str) -> Result<(), String> {
    let promtool = install_dir().join("promtool");
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", promtool.display()));
    // Written from another thread so a large exposition cannot deadlock
    // against promtool filling its output pipes.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let text = exposition.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{} check metrics: {e}", promtool.display()));
    // promtool may stop reading at a parse error; its verdict is what counts.
    let _ = writer.join();
    let output =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)).trim().to_owned();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("promtool check metrics: {}: {output}", out.status))
    }
}

/// The Prometheus configuration: one job scraping `target`.
fn scrape_config(target: SocketAddr, scrape_interval: Duration) -> String {
    // Prometheus rejects a scrape timeout above the interval; its default
    // (10s) is too long for the short intervals tests use.
    let interval = format!("{}ms", scrape_interval.as_millis());
    let timeout = format!("{}ms", scrape_interval.min(Duration::from_secs(10)).as_millis());
    format!(
        "global:\n  scrape_interval: {interval}\n  scrape_timeout: {timeout}\n  evaluation_interval: {interval}\n\
         scrape_configs:\n  - job_name: {JOB}\n    scheme: http\n    metrics_path: /metrics\n    \
         static_configs:\n      - targets: ['{target}']\n"
    )
}

/// One agent for all requests: bodies of 4xx/5xx answers carry the API's error,
/// and loopback must not go through a proxy from the environment.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// `data` of an instant query: vector and scalar results, and the latest
/// sample of each series of a matrix.
fn parse_query_data(data: &Value) -> Result<Vec<Sample>, String> {
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("vector") => {
            series(result)?.iter().map(|s| Ok((labels(&s["metric"])?, sample_value(&s["value"])?))).collect()
        }
        Some("matrix") => series(result)?
            .iter()
            .map(|s| {
                let last = s["values"].as_array().and_then(|v| v.last()).ok_or("a series without samples")?;
                Ok((labels(&s["metric"])?, sample_value(last)?))
            })
            .collect(),
        Some("scalar") => Ok(vec![(BTreeMap::new(), sample_value(result)?)]),
        other => Err(format!("unexpected resultType {other:?}")),
    }
}

fn series(result: &Value) -> Result<&Vec<Value>, String> {
    result.as_array().ok_or_else(|| "result is not an array".to_owned())
}

fn labels(metric: &Value) -> Result<BTreeMap<String, String>, String> {
    let map = metric.as_object().ok_or("metric is not an object")?;
    map.iter()
        .map(|(k, v)| Ok((k.clone(), v.as_str().ok_or_else(|| format!("label {k} is not a string"))?.to_owned())))
        .collect()
}

/// `[<unix seconds>, "<value>"]`; the value is a string so that NaN and
/// ±Inf survive JSON.
fn sample_value(pair: &Value) -> Result<f64, String> {
    let text = pair.get(1).and_then(Value::as_str).ok_or_else(|| format!("{pair} is not [time, \"value\"]"))?;
    text.parse::<f64>().map_err(|e| format!("value {text:?}: {e}"))
}

/// The directory holding prometheus and promtool; the script runs once per
/// test binary.
fn install_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = super::script_output_path("scripts/install-prometheus.sh", &[]);
        assert!(
            dir.join("prometheus").is_file() && dir.join("promtool").is_file(),
            "{} holds no prometheus and promtool",
            dir.display()
        );
        dir
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_query_results() {
        let vector: Value = serde_json::from_str(
            r#"{"resultType":"vector","result":[
                {"metric":{"__name__":"up","job":"polytel"},"value":[1700000000.5,"1"]},
                {"metric":{},"value":[1700000000.5,"NaN"]},
                {"metric":{"le":"+Inf"},"value":[1700000000.5,"+Inf"]}]}"#,
        )
        .unwrap();
        let got = parse_query_data(&vector).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (map(&[("__name__", "up"), ("job", "polytel")]), 1.0));
        assert!(got[1].0.is_empty() && got[1].1.is_nan());
        assert_eq!(got[2], (map(&[("le", "+Inf")]), f64::INFINITY));

        let scalar: Value = serde_json::from_str(r#"{"resultType":"scalar","result":[1700000000,"-2.5e-3"]}"#).unwrap();
        assert_eq!(parse_query_data(&scalar).unwrap(), vec![(BTreeMap::new(), -0.0025)]);

        let matrix: Value = serde_json::from_str(
            r#"{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1,"1"],[2,"-Inf"]]}]}"#,
        )
        .unwrap();
        assert_eq!(parse_query_data(&matrix).unwrap(), vec![(map(&[("a", "b")]), f64::NEG_INFINITY)]);

        let string: Value = serde_json::from_str(r#"{"resultType":"string","result":[1,"x"]}"#).unwrap();
        assert!(parse_query_data(&string).is_err());
    }

    #[test]
    fn scrape_config_keeps_the_timeout_within_the_interval() {
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, 9100));
        let short = scrape_config(target, Duration::from_millis(1500));
        assert!(short.contains("scrape_interval: 1500ms") && short.contains("scrape_timeout: 1500ms"), "{short}");
        assert!(short.contains("- targets: ['127.0.0.1:9100']"), "{short}");
        let long = scrape_config(target, Duration::from_secs(60));
        assert!(long.contains("scrape_interval: 60000ms") && long.contains("scrape_timeout: 10000ms"), "{long}");
    }
}
