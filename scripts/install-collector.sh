#!/usr/bin/env bash
# Build (once) a minimal OpenTelemetry Collector for polytel's integration
# tests: OTLP receiver + debug exporter, from the Go sources pinned in
# scripts/collector/ (go.mod + go.sum), fetched through the Go module proxy.
#
# The binary and the Go module/build caches live outside the clone:
#   ${POLYTEL_CACHE:-$HOME/.cache/polytel}/otelcol-<version>/otelcol
#   ${POLYTEL_CACHE:-$HOME/.cache/polytel}/go/{mod,build}
# so a rerun (or a fresh clone on the same machine) is a no-op.
#
# Usage: scripts/install-collector.sh
# Progress goes to stderr; the last line of stdout is the binary's path, e.g.
#   OTELCOL="$(scripts/install-collector.sh | tail -n1)"
set -euo pipefail

# Keep in sync with scripts/collector/go.mod (core "beta" modules version).
COLLECTOR_VERSION="v0.162.0"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src_dir="${script_dir}/collector"
cache_root="${POLYTEL_CACHE:-${HOME:?HOME or POLYTEL_CACHE must be set}/.cache/polytel}"
# The folder is named by the version and a hash of the sources, so a change to
# go.mod, go.sum or the Go files builds afresh instead of reusing a stale binary.
src_hash="$(cat "${src_dir}/go.mod" "${src_dir}/go.sum" "${src_dir}"/*.go | sha256sum | cut -c1-12)"
out_dir="${cache_root}/otelcol-${COLLECTOR_VERSION}-${src_hash}"
bin="${out_dir}/otelcol"

log() { printf 'install-collector: %s\n' "$*" >&2; }

if [[ -x "${bin}" ]]; then
  log "already built: ${bin}"
  printf '%s\n' "${bin}"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  log "error: 'go' not found on PATH (Go >= 1.26 is needed to build the collector)"
  exit 1
fi

mkdir -p "${out_dir}" "${cache_root}/go/mod" "${cache_root}/go/build"

# Serialise concurrent installs (e.g. parallel test runners) when flock exists.
if command -v flock >/dev/null 2>&1; then
  exec 9>"${out_dir}/.lock"
  flock 9
  if [[ -x "${bin}" ]]; then
    log "built by a concurrent run: ${bin}"
    printf '%s\n' "${bin}"
    exit 0
  fi
fi

export GOMODCACHE="${cache_root}/go/mod"
export GOCACHE="${cache_root}/go/build"
# -mod=readonly: build exactly what go.mod/go.sum pin, never rewrite them.
# -modcacherw: keep the module cache deletable with plain `rm -rf`.
export GOFLAGS="-mod=readonly -modcacherw -buildvcs=false"
export CGO_ENABLED=0
export GOWORK=off

log "building OpenTelemetry Collector ${COLLECTOR_VERSION} with $(go version)"
log "  sources: ${src_dir}"
log "  caches:  ${cache_root}/go (a cold build takes a few minutes on 2 cores)"

tmp_bin="$(mktemp "${out_dir}/otelcol.tmp.XXXXXX")"
trap 'rm -f "${tmp_bin}"' EXIT

start=${SECONDS}
(
  cd "${src_dir}"
  go build -trimpath \
    -ldflags "-s -w -X main.version=${COLLECTOR_VERSION}" \
    -o "${tmp_bin}" .
) >&2
chmod 0755 "${tmp_bin}"

# Smoke-check the result before publishing it.
"${tmp_bin}" --version >&2
mv -f "${tmp_bin}" "${bin}"
trap - EXIT

log "built in $((SECONDS - start))s: ${bin}"
printf '%s\n' "${bin}"
