#!/usr/bin/env bash
# Puts the core component into the Python package (src/polytel/polytel.wasm):
# builds the polytel command (and with it the component) if needed, then has it
# write the component. Run it before `pip install ./bindings/python`.
#
#   bindings/python/build.sh            # cargo build (a no-op when up to date), then copy
#   POLYTEL_SKIP_CARGO=1 bindings/python/build.sh   # the polytel command is already built
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../scripts/common.sh
source "${here}/../../scripts/common.sh"

if [[ "${POLYTEL_SKIP_CARGO:-}" != 1 ]]; then
  setup_rust
fi
if [[ ! -x "${polytel_bin}" ]]; then
  echo "build.sh: ${polytel_bin} is missing; run without POLYTEL_SKIP_CARGO=1 to build it" >&2
  exit 1
fi
out="${here}/src/polytel/polytel.wasm"
"${polytel_bin}" component --out "${out}.tmp"
mv -f "${out}.tmp" "${out}"
echo "build.sh: ${out} ($(wc -c <"${out}") bytes)" >&2
