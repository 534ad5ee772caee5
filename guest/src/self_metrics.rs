//! The core's own counters as metrics, when the user asks (`self_metrics`):
//! at every collection and scrape they are observed into instruments of the
//! scope `polytel`, beside the app's metrics, so a dashboard can show what
//! the telemetry pipeline itself exported, dropped (and why), retried and holds.
//!
//!   polytel.exported  counter  {item}  signal
//!   polytel.dropped   counter  {item}  signal, reason
//!   polytel.retried   counter  {item}  signal
//!   polytel.queued    gauge    {item}  signal   (waiting to be exported)
//!   polytel.pending   gauge    {item}  signal   (in exports being sent or retried)
//!
//! `signal` is spans, metrics (data points) or logs; `reason` is a drop reason
//! as `stats` names it.

use serde_json::{json, Value};

use crate::metrics::{Measurement, Meters};
use crate::stats::{SignalStats, Stats, Warnings};

const INSTRUMENTS: [(&str, &str, &str); 5] = [
    ("polytel.exported", "observable_counter", "Items the backends accepted."),
    ("polytel.dropped", "observable_counter", "Items dropped, by reason."),
    ("polytel.retried", "observable_counter", "Items in exports that were retried."),
    ("polytel.queued", "observable_gauge", "Items waiting to be exported."),
    ("polytel.pending", "observable_gauge", "Items in exports being sent or retried."),
];

/// The instruments' ids, registered at the first observation.
#[derive(Default)]
pub struct SelfMetrics {
    ids: Option<[u32; 5]>,
}

impl SelfMetrics {
    /// Records the current counters into the instruments, at `now`.
    pub fn observe(&mut self, meters: &mut Meters, stats: &mut Stats, warnings: &mut Warnings, now: u64) {
        let ids = *self.ids.get_or_insert_with(|| {
            INSTRUMENTS.map(|(name, kind, description)| {
                let spec = json!({"name": name, "kind": kind, "unit": "{item}", "description": description,
                                  "scope": {"name": "polytel", "version": env!("CARGO_PKG_VERSION")}});
                meters.register(&spec.to_string(), warnings)
            })
        });
        let mut points: Vec<(u32, u64, Value)> = Vec::new();
        let signals: [(&str, &SignalStats); 3] =
            [("spans", &stats.spans), ("metrics", &stats.metrics), ("logs", &stats.logs)];
        for (signal, s) in signals {
            points.push((ids[0], s.exported, json!({"signal": signal})));
            for (reason, n) in &s.dropped {
                points.push((ids[1], *n, json!({"signal": signal, "reason": reason})));
            }
            points.push((ids[2], s.retried, json!({"signal": signal})));
            points.push((ids[3], s.queued, json!({"signal": signal})));
            points.push((ids[4], s.pending, json!({"signal": signal})));
        }
        for (instrument, value, attributes) in points {
            let text = attributes.to_string();
            let m = Measurement {
                instrument,
                value: value as f64,
                attributes: Some(&text),
                time: now,
                trace_id: None,
                span_id: None,
                sampled: false,
            };
            meters.record_measurement(m, &mut stats.metrics, warnings);
        }
    }
}
