#!/usr/bin/env bash
# The soak run of issue 10: an hour (by default) of steady agent-shaped load
# against a receiver that flaps between healthy, 503, hanging, resetting and
# 429, printing memory and counters every 30 s and, at the end, what was
# generated, accepted, sent twice and dropped (by reason).
#
#   scripts/soak.sh [--minutes 60] [--rate 100] [--sample-secs 30]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
setup_rust
cd "$repo"
step "soak: cargo run --release --example soak -- $*"
cargo run --release --locked -p polytel --example soak -- "$@"
