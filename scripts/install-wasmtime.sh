#!/usr/bin/env bash
# The `wasmtime` command for running the edge example under `wasmtime serve`:
# wasmtime-cli from crates.io at the exact version of the wasmtime crate the
# host embeds (host/Cargo.toml), with the features `serve` needs (the full
# default set takes far longer to build on 2 cores). Built once, cached
# outside the clone (cold: ~5 min on 2 cores).
# Usage: scripts/install-wasmtime.sh; the last line of stdout is its path.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(sed -n 's/^wasmtime = { version = "=\([0-9.]*\)".*/\1/p' "${repo}/host/Cargo.toml")"
[[ -n "${version}" ]] || { echo "install-wasmtime: no pinned wasmtime version in host/Cargo.toml" >&2; exit 1; }
exec "${repo}/scripts/install-rust-tool.sh" wasmtime-cli "${version}" wasmtime \
  run,serve,cranelift,component-model-async,pooling-allocator,clap/default
