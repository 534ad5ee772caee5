#!/usr/bin/env bash
# Build (once) a command-line tool from crates.io with `cargo install --locked`
# at a pinned version and feature set: wasmtime-cli (for `wasmtime serve`) and
# wac-cli (for `wac plug`), which the edge example needs.
#
# The binaries and the build directory live outside the clone:
#   ${POLYTEL_CACHE:-$HOME/.cache/polytel}/<crate>-<version>/bin/
#   ${POLYTEL_CACHE:-$HOME/.cache/polytel}/target-<crate>/
# so a rerun (or a fresh clone on the same machine) is a no-op.
#
# Usage: scripts/install-rust-tool.sh CRATE VERSION BIN [FEATURES]
#   FEATURES: comma-separated; given, the crate's default features are off.
# Progress goes to stderr; the last line of stdout is the binary's path.
set -euo pipefail

crate="${1:?usage: install-rust-tool.sh CRATE VERSION BIN [FEATURES]}"
version="${2:?usage: install-rust-tool.sh CRATE VERSION BIN [FEATURES]}"
bin_name="${3:?usage: install-rust-tool.sh CRATE VERSION BIN [FEATURES]}"
features="${4:-}"
cache_root="${POLYTEL_CACHE:-${HOME:?HOME or POLYTEL_CACHE must be set}/.cache/polytel}"
root="${cache_root}/${crate}-${version}"
bin="${root}/bin/${bin_name}"

log() { printf 'install-rust-tool: %s\n' "$*" >&2; }

built() { [[ -x "${bin}" ]] && [[ "$(cat "${root}/.features" 2>/dev/null)" == "${features}" ]]; }

if built; then
  printf '%s\n' "${bin}"
  exit 0
fi
command -v cargo >/dev/null 2>&1 || { log "error: 'cargo' not found on PATH (the Rust toolchain, from rustup)"; exit 1; }

mkdir -p "${root}"
# Serialise concurrent installs when flock exists.
if command -v flock >/dev/null 2>&1; then
  exec 9>"${root}/.lock"
  flock 9
  if built; then
    printf '%s\n' "${bin}"
    exit 0
  fi
fi

feature_args=()
[[ -z "${features}" ]] || feature_args=(--no-default-features --features "${features}")
log "building ${crate} ${version}${features:+ (features ${features})}"
# --locked: the dependency versions the crate was released with.
cargo install --quiet --locked --force "${crate}@${version}" "${feature_args[@]}" \
  --root "${root}" --target-dir "${cache_root}/target-${crate}" >&2
printf '%s\n' "${features}" >"${root}/.features"
printf '%s\n' "${bin}"
