#!/usr/bin/env bash
# Builds the edge example (examples/edge) and composes it with the edge
# flavour of the core: the app's imports of polytel:telemetry/core and /edge
# are plugged with `wac plug`, giving one wasi:http proxy component that sends
# its own telemetry. wac-cli is built once and cached (cold: ~1.5 min).
#
# Usage: scripts/build-edge.sh; the last line of stdout is the composed
# component's path. POLYTEL_BIN names a polytel command already built (the
# tests pass theirs); otherwise it is built first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

wac="$("$repo/scripts/install-rust-tool.sh" wac-cli 0.12.0 wac wit | tail -n1)"
if [[ -z "${POLYTEL_BIN:-}" ]]; then
  (cd "$repo" && cargo build --release --locked --bin polytel >&2)
  POLYTEL_BIN="$polytel_bin"
fi
rustup target add wasm32-wasip2 >&2
# A target directory of its own: this may run while a `cargo test` holds the main one.
edge_target="${POLYTEL_CACHE}/target-edge"
(cd "$repo" && CARGO_TARGET_DIR="$edge_target" CARGO_PROFILE_RELEASE_DEBUG=false \
  cargo build --release --locked -p polytel-edge-example --target wasm32-wasip2 >&2)
out="${edge_target}/composed"
mkdir -p "$out"
"$POLYTEL_BIN" component --edge --out "$out/polytel-edge.wasm" >&2
"$wac" plug "${edge_target}/wasm32-wasip2/release/polytel_edge_example.wasm" \
  --plug "$out/polytel-edge.wasm" -o "$out/agent.wasm" >&2
printf '%s\n' "$out/agent.wasm"
