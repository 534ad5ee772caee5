# Shared by the setup, demo and test scripts: paths and the one-time setup.
# Sourced, not run.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export POLYTEL_CACHE="${POLYTEL_CACHE:-${HOME}/.cache/polytel}"
# Build output lives outside the clone so a fresh clone on the same machine
# reuses it; nothing depends on it being there.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${POLYTEL_CACHE}/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
polytel_bin="${CARGO_TARGET_DIR}/release/polytel"

step() { printf '\n==> %s\n' "$*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is needed ($2) but is not on PATH" >&2; exit 1; }
}

# The Rust toolchain with the wasm target, and the polytel command.
setup_rust() {
  need cargo "the Rust toolchain, from rustup"
  need rustup "to add the wasm32-unknown-unknown target"
  step "Rust: wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown >&2
  step "Rust: building the core component and the polytel command (cold: ~6 min on 2 cores)"
  (cd "$repo" && cargo build --release --locked --bin polytel)
}

# The OpenTelemetry Collector for the integration tests (cold: ~2.5 min).
setup_collector() {
  need go "to build the OpenTelemetry Collector for the integration tests"
  step "OpenTelemetry Collector"
  "$repo/scripts/install-collector.sh" >/dev/null
}

# A real Prometheus server and promtool for the metrics integration tests,
# from Debian's `prometheus` package (apt-get as root, or with sudo).
setup_prometheus() {
  step "Prometheus"
  "$repo/scripts/install-prometheus.sh" >/dev/null
}
