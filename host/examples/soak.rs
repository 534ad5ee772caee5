//! A soak run: steady load from an agent-shaped workload for a long time
//! against a receiver that flaps between healthy, 503 with Retry-After,
//! hanging, resetting connections and 429 with an HTTP-date. Every sample
//! prints memory (VmRSS) and the counters; the end prints what was generated,
//! what the receiver accepted (once and twice), and what the core dropped and why.
//! The receiver (`polytel fault-receiver`, next to this example in the target
//! directory, or POLYTEL_BIN) runs in its own process, so the memory measured
//! is the app's and polytel's alone.
//!
//!     cargo run --release --example soak -- [--minutes 60] [--rate 100] [--sample-secs 30]
//!
//! (scripts/soak.sh runs it.) One operation per tick: an agent run with an
//! LLM call and a tool call (3 spans), a histogram record and a log record.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use polytel::faults::{FaultStats, Script, Step};
use polytel::{Operations, Options, Severity, Telemetry, Usage};

/// The receiver's behaviour over each minute: (seconds, step).
fn phases() -> Vec<(u64, Step)> {
    vec![
        (20, Step::ok()),
        (10, Step { retry_after: Some("1".into()), ..Step::status(503) }),
        (10, Step { hang: Some(true), ..Default::default() }),
        (10, Step::ok()),
        (5, Step { reset: Some(true), ..Default::default() }),
        (5, Step { retry_after_date: Some(2), ..Step::status(429) }),
    ]
}

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// `polytel fault-receiver` in a process of its own, driven over HTTP.
struct Receiver {
    child: std::process::Child,
    endpoint: String,
}

impl Receiver {
    fn start() -> anyhow::Result<Receiver> {
        use std::io::BufRead;
        let bin = std::env::var_os("POLYTEL_BIN").map(std::path::PathBuf::from).unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("the example's path");
            exe.parent().and_then(|examples| examples.parent()).expect("a target directory").join("polytel")
        });
        let mut child = std::process::Command::new(&bin)
            .arg("fault-receiver")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.display()))?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        Ok(Receiver { child, endpoint: line.trim().to_owned() })
    }

    fn set_script(&self, script: &Script) {
        let _ = ureq::put(&format!("{}/script", self.endpoint)).send(serde_json::to_string(script).unwrap());
    }

    fn stats(&self) -> FaultStats {
        ureq::get(&format!("{}/stats", self.endpoint))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let minutes = arg(&args, "--minutes", 60.0);
    let rate = arg(&args, "--rate", 100.0);
    let sample = Duration::from_secs_f64(arg(&args, "--sample-secs", 30.0));
    let receiver = Receiver::start()?;
    let t = Telemetry::configure(Options {
        backend: Some("otlp".into()),
        endpoint: Some(receiver.endpoint.clone()),
        service_name: Some("polytel-soak".into()),
        env: Some(BTreeMap::new()),
        ..Default::default()
    })?;
    let tool_time = t.histogram("soak.tool.duration").unit("s").build();

    let start = Instant::now();
    let end = start + Duration::from_secs_f64(minutes * 60.0);
    let tick = Duration::from_secs_f64(1.0 / rate);
    let cycle: u64 = phases().iter().map(|(s, _)| s).sum();
    let mut current_phase = usize::MAX;
    let mut next_sample = start;
    let mut operations: u64 = 0;
    let mut rss = Vec::new();
    println!(
        "{:>6} {:>9} {:>10} {:>10} {:>10} {:>9} {:>8}  phase",
        "min", "rss KiB", "generated", "accepted", "exported", "dropped", "queued"
    );
    while Instant::now() < end {
        let elapsed = start.elapsed().as_secs();
        let mut at = elapsed % cycle;
        let phase = phases().iter().position(|(secs, _)| match at.checked_sub(*secs) {
            Some(rest) => {
                at = rest;
                false
            }
            None => true,
        });
        let phase = phase.unwrap_or(0);
        if phase != current_phase {
            receiver.set_script(&Script::always(phases()[phase].1.clone()));
            current_phase = phase;
        }

        let agent = t.agent("soak-agent").start();
        let mut call = agent.llm_call("openai", "gpt-4o").start();
        call.record_usage(Usage { input_tokens: Some(300), output_tokens: Some(60), ..Default::default() });
        call.end();
        let tool = agent.tool("lookup").start();
        tool_time.record_in(tool.context(), 0.012, &[("tool", &"lookup")]);
        tool.end();
        t.log(Severity::Info, "operation finished").attribute("n", operations as i64).span(agent.context()).emit();
        agent.end();
        operations += 1;

        if Instant::now() >= next_sample {
            let kib = rss_kib();
            rss.push(kib);
            let s = t.stats()?;
            let dropped: u64 =
                s["spans"]["dropped"].as_object().map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum());
            println!(
                "{:>6.1} {:>9} {:>10} {:>10} {:>10} {:>9} {:>8}  {}",
                start.elapsed().as_secs_f64() / 60.0,
                kib,
                operations * 3,
                receiver.stats().spans,
                s["spans"]["exported"],
                dropped,
                s["spans"]["queued"].as_u64().unwrap_or(0) + s["spans"]["pending"].as_u64().unwrap_or(0),
                phases()[phase].1.label(),
            );
            next_sample += sample;
        }
        let next = start + tick * operations as u32;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    receiver.set_script(&Script::always(Step::ok()));
    let report = t.shutdown(Duration::from_secs(30));
    let s = t.stats()?;
    let r = receiver.stats();
    let generated = operations * 3;
    let dropped = &s["spans"]["dropped"];
    let dropped_total: u64 = dropped.as_object().map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum());
    println!("\nafter {minutes} min at {rate} operations/s, shutdown {report:?}");
    println!("spans generated {generated}, accepted by the receiver {} (sent twice: {})", r.spans, r.duplicate_spans);
    println!(
        "core: exported {}, dropped {dropped_total} {dropped}, retried {}",
        s["spans"]["exported"], s["spans"]["retried"]
    );
    let host_dropped = s["host"]["buffer_dropped"]["spans"].as_u64().unwrap_or(0);
    println!(
        "accounted for: accepted {} + dropped in the core {dropped_total} + dropped from the host's full buffer {host_dropped} = {} of {generated} generated",
        r.spans,
        r.spans + dropped_total + host_dropped,
    );
    println!("logs accepted {}, metric data points accepted {}", r.log_records, r.data_points);
    println!(
        "memory: VmRSS min {} KiB, max {} KiB, last {} KiB",
        rss.iter().min().unwrap_or(&0),
        rss.iter().max().unwrap_or(&0),
        rss.last().unwrap_or(&0)
    );
    Ok(())
}
