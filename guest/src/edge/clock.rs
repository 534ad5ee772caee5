//! Time for the edge flavour: unix nanoseconds from wasi:clocks/wall-clock for
//! the pipeline, monotonic nanoseconds from wasi:clocks/monotonic-clock for
//! deadlines and waits, which must not move when the wall clock is set.

use wasi::clocks::{monotonic_clock, wall_clock};

pub(super) fn unix_now() -> u64 {
    let t = wall_clock::now();
    t.seconds.saturating_mul(1_000_000_000).saturating_add(u64::from(t.nanoseconds))
}

pub(super) fn monotonic_now() -> u64 {
    monotonic_clock::now()
}

/// The monotonic instant `ms` milliseconds from now.
pub(super) fn after_ms(ms: u32) -> u64 {
    monotonic_now().saturating_add(u64::from(ms) * 1_000_000)
}

/// The monotonic instant at which the wall clock reads `unix_ns`.
pub(super) fn at_unix(unix_ns: u64) -> u64 {
    monotonic_now().saturating_add(unix_ns.saturating_sub(unix_now()))
}

pub(super) fn sleep_until(instant: u64) {
    monotonic_clock::subscribe_instant(instant).block();
}
