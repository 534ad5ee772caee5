#!/usr/bin/env bash
# All setup, then `polytel demo`: an agent workload exported over OTLP/HTTP to
# an in-process receiver (or, with OTEL_EXPORTER_OTLP_ENDPOINT set, to yours).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
setup_rust
step "polytel demo"
exec "$polytel_bin" demo "$@"
