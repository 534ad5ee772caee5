//! The core's own counters, and warnings shown once per kind.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// Why items were dropped. Each reason is counted separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The queue was full when the item arrived.
    QueueFull,
    /// The record was malformed (bad ids, wrong types).
    Invalid,
    /// The same span id arrived twice.
    Duplicate,
    /// The receiver answered with a status that must not be retried.
    Rejected,
    /// The receiver accepted the request but rejected these items (partial success).
    PartialSuccess,
    /// Retries ran out.
    RetriesExhausted,
    /// One item alone is larger than the receiver accepts.
    TooLarge,
    /// Still queued or pending when the host gave up at shutdown.
    Shutdown,
    /// A measurement that was NaN or infinite.
    InvalidValue,
    /// A negative counter increment or histogram value.
    Negative,
    /// A measurement of an instrument that was registered with an invalid name or kind.
    InvalidInstrument,
    /// The backend's quota or throttling refused them (Application Insights: 402, 439).
    Throttled,
    /// The backend's ingestion sampling discarded them (Application Insights:
    /// "Telemetry sampled out."); they were delivered, and are not retried.
    SampledOut,
}

/// Counters for one signal.
#[derive(Debug, Default, Serialize)]
pub struct SignalStats {
    pub received: u64,
    pub exported: u64,
    pub dropped: BTreeMap<DropReason, u64>,
    pub retried: u64,
    pub queued: u64,
    pub pending: u64,
    /// Attributes, events and links dropped by limits, and values truncated.
    pub limited: Limited,
}

#[derive(Debug, Default, Serialize)]
pub struct Limited {
    pub attributes_dropped: u64,
    pub values_truncated: u64,
    pub events_dropped: u64,
    pub links_dropped: u64,
    /// Measurements folded into the overflow series past the cardinality limit.
    pub series_overflowed: u64,
    /// String values redaction changed (a secret-named attribute's value, or
    /// text with secret-shaped parts).
    pub values_redacted: u64,
}

impl SignalStats {
    pub fn drop(&mut self, reason: DropReason, n: u64) {
        if n > 0 {
            *self.dropped.entry(reason).or_default() += n;
        }
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(&reason).copied().unwrap_or(0)
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub spans: SignalStats,
    /// `received` counts measurements; the rest count data points.
    pub metrics: SignalStats,
    pub logs: SignalStats,
    pub exports: ExportStats,
}

impl Stats {
    pub fn signal(&mut self, signal: crate::config::Signal) -> &mut SignalStats {
        match signal {
            crate::config::Signal::Traces => &mut self.spans,
            crate::config::Signal::Metrics => &mut self.metrics,
            crate::config::Signal::Logs => &mut self.logs,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct ExportStats {
    pub sent: u64,
    pub succeeded: u64,
    pub failed: u64,
}

/// Warnings for the host to show, each kind once per pipeline.
#[derive(Debug, Default)]
pub struct Warnings {
    shown: BTreeSet<&'static str>,
    pending: Vec<String>,
}

impl Warnings {
    /// Queues `message` unless a warning of this `kind` was queued before.
    pub fn once(&mut self, kind: &'static str, message: impl FnOnce() -> String) {
        if self.shown.insert(kind) {
            self.pending.push(message());
        }
    }

    pub fn push(&mut self, message: String) {
        self.pending.push(message);
    }

    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.pending)
    }
}
