#!/usr/bin/env bash
# All setup, then every test: formatting and lints, the core's unit tests,
# the component through the host, conformance, and the integration tests
# against a real OpenTelemetry Collector; then the Python binding's lints,
# type checks and tests (conformance, polytel receive, the Collector); then
# the JavaScript binding's build, type checks and tests (the same, and npm pack);
# then the Go binding's gofmt, vet and tests (the same, also under -race);
# then promtool's check and unit tests of the example alert rules. The Rust
# tests include the edge example composed with the edge core under a real
# `wasmtime serve`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The example Prometheus alert rules (examples/observability): promtool from
# Debian's package (see setup_prometheus) checks them and runs their unit tests.
test_observability() {
  step "Observability: promtool check rules, promtool test rules (examples/observability)"
  local promtool
  promtool="$("$repo/scripts/install-prometheus.sh" | tail -n1)/promtool"
  (
    cd "$repo"
    "$promtool" check rules examples/observability/alerts.yml
    "$promtool" test rules examples/observability/alerts_test.yml
  )
}

setup_rust
setup_collector
setup_prometheus
setup_python
setup_js
setup_browser
setup_go
setup_edge
cd "$repo"

step "Rust: rustfmt"
cargo fmt --all --check

step "Rust: clippy"
cargo clippy --release --locked -p polytel-core -p polytel -p polytel-bench --all-targets -- -D warnings
# The edge flavour and the edge binding and example, for their wasm targets
# (their own target directory, as scripts/build-edge.sh).
CARGO_TARGET_DIR="${POLYTEL_CACHE}/target-edge" cargo clippy --release --locked \
  -p polytel-core --features edge --target wasm32-unknown-unknown -- -D warnings
CARGO_TARGET_DIR="${POLYTEL_CACHE}/target-edge" cargo clippy --release --locked \
  -p polytel-edge -p polytel-edge-example --target wasm32-wasip2 -- -D warnings

step "Rust: tests (core, host, conformance, collector, edge under wasmtime serve)"
cargo test --release --locked -p polytel-core -p polytel

step "Python: ruff, mypy, pytest (bindings/python)"
(
  cd "$repo/bindings/python"
  "$python_venv/bin/ruff" check src tests ../../examples/python
  "$python_venv/bin/ruff" format --check src tests ../../examples/python
  "$python_venv/bin/mypy"
  "$python_venv/bin/python" -m pytest -q -p no:cacheprovider tests
)

step "JavaScript: type-check and node --test (bindings/js)"
(cd "$repo/bindings/js" && npm run --silent typecheck && POLYTEL_BIN="$polytel_bin" npm test)

step "Go: gofmt, go vet, go test and go test -race (bindings/go, examples/go)"
(
  unformatted="$(gofmt -l "$repo/bindings/go" "$repo/examples/go" "$repo/bench/go")"
  [[ -z "$unformatted" ]] || { echo "gofmt: not formatted: $unformatted" >&2; exit 1; }
  export POLYTEL_BIN="$polytel_bin" GOFLAGS="-mod=readonly"
  cd "$repo/bindings/go"
  go vet ./...
  # -count=1: Go's build cache does not see the Rust library change.
  go test -count=1 ./...
  go test -count=1 -race ./...
  cd "$repo/examples/go"
  go vet ./...
  go test -count=1 ./...
)

test_observability

step "polytel demo (smoke)"
"$polytel_bin" demo --pace 0 >/dev/null

echo "all tests passed" >&2
