//! Part 5: the app's calls never wait on the network. Per-call latency of a
//! span (start, 2 attributes, end), a histogram record and a log emit, with
//! the receiver healthy and with it hanging (every request read, never
//! answered: `polytel::faults`), in the same run; medians and p99s of calls
//! timed one by one, in bursts with pauses so the export worker runs between
//! them as it would in an app. Prints hanging / healthy ratios.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use polytel::faults::{FaultReceiver, Script, Step};
use polytel::{Options, Severity, Telemetry};

const BURST: usize = 50;

fn telemetry(endpoint: String) -> Result<Telemetry> {
    Telemetry::configure(Options {
        backend: Some("otlp".into()),
        endpoint: Some(endpoint),
        service_name: Some("bench-hang".into()),
        env: Some(BTreeMap::new()),
        ..Default::default()
    })
}

/// Nanoseconds per call, each call timed on its own.
fn time_calls(n: usize, mut call: impl FnMut(usize)) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        call(i);
        out.push(t.elapsed().as_nanos() as f64);
        if i % BURST == BURST - 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    out
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

fn measure(t: &Telemetry, n: usize) -> [Vec<f64>; 3] {
    let histogram = t.histogram("bench.latency").unit("s").build();
    [
        time_calls(n, |i| t.span("chat gpt-4o").attribute("i", i as i64).attribute("model", "gpt-4o").start().end()),
        time_calls(n, |_| histogram.record(0.25, &[("model", &"gpt-4o")])),
        time_calls(n, |i| t.log(Severity::Info, "tool finished").attribute("i", i as i64).emit()),
    ]
}

pub fn hang_cost(n: usize) -> Result<()> {
    println!("== 5. per-call latency with the receiver healthy and hanging ({n} calls each, bursts of {BURST}) ==");
    let healthy = FaultReceiver::start("127.0.0.1:0", Script::always(Step::ok()))?;
    let hanging = FaultReceiver::start("127.0.0.1:0", Script::always(Step { hang: Some(true), ..Default::default() }))?;
    let mut results = Vec::new();
    for receiver in [&healthy, &hanging] {
        let t = telemetry(receiver.endpoint())?;
        measure(&t, n / 10); // warm-up
        results.push(measure(&t, n));
        t.shutdown(Duration::from_millis(200));
    }
    println!("requests answered: healthy {:?}, hanging {:?}", healthy.stats().answered, hanging.stats().answered);
    println!(
        "{:<22}{:>14}{:>14}{:>14}{:>14}{:>10}{:>10}",
        "call", "healthy p50", "hanging p50", "healthy p99", "hanging p99", "p50 ×", "p99 ×"
    );
    let [mut ok, mut hung] = [results.remove(0), results.remove(0)];
    for (i, name) in ["span end (2 attrs)", "histogram record", "log emit"].into_iter().enumerate() {
        let (a50, b50) = (quantile(&mut ok[i], 0.5), quantile(&mut hung[i], 0.5));
        let (a99, b99) = (quantile(&mut ok[i], 0.99), quantile(&mut hung[i], 0.99));
        println!(
            "{name:<22}{:>11.0} ns{:>11.0} ns{:>11.0} ns{:>11.0} ns{:>10.2}{:>10.2}",
            a50,
            b50,
            a99,
            b99,
            b50 / a50,
            b99 / a99
        );
    }
    Ok(())
}
