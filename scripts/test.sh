#!/usr/bin/env bash
# All setup, then every test: formatting and lints, the core's unit tests,
# the component through the host, conformance, and the integration tests
# against a real OpenTelemetry Collector; then the Python binding's lints,
# type checks and tests (conformance, polytel receive, the Collector).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
setup_rust
setup_collector
setup_prometheus
setup_python
cd "$repo"

step "Rust: rustfmt"
cargo fmt --all --check

step "Rust: clippy"
cargo clippy --release --locked -p polytel-core -p polytel -p polytel-bench --all-targets -- -D warnings

step "Rust: tests (core, host, conformance, collector)"
cargo test --release --locked -p polytel-core -p polytel

step "Python: ruff, mypy, pytest (bindings/python)"
(
  cd "$repo/bindings/python"
  "$python_venv/bin/ruff" check src tests ../../examples/python
  "$python_venv/bin/ruff" format --check src tests ../../examples/python
  "$python_venv/bin/mypy"
  "$python_venv/bin/python" -m pytest -q -p no:cacheprovider tests
)

step "polytel demo (smoke)"
"$polytel_bin" demo --pace 0 >/dev/null

echo "all tests passed" >&2
