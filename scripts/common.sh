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

# The Python binding: a virtualenv outside the clone with the pinned tools of
# bindings/python/requirements-dev.txt (pip's downloads cached), the core
# component copied into the package, and the package installed as a user
# would (not editable). Needs setup_rust first. Sets python_venv.
setup_python() {
  need python3 "for the Python binding (3.9 or newer)"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
    || { echo "setup: the Python binding needs python3 >= 3.9, found $(python3 --version 2>&1)" >&2; exit 1; }
  python_venv="${POLYTEL_CACHE}/venv-python"
  export PIP_CACHE_DIR="${POLYTEL_CACHE}/pip"
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  local req="${repo}/bindings/python/requirements-dev.txt"
  local stamp="${python_venv}/.requirements.sha256"
  local want
  want="$(cat "${req}" <(python3 --version 2>&1) | sha256sum | cut -d' ' -f1)"
  step "Python: virtualenv ${python_venv}"
  if [[ ! -x "${python_venv}/bin/python" ]] || ! "${python_venv}/bin/python" -c '' 2>/dev/null \
      || [[ "$(cat "${stamp}" 2>/dev/null)" != "${want}" ]]; then
    rm -rf "${python_venv}"
    python3 -m venv "${python_venv}"
    "${python_venv}/bin/python" -m pip install --quiet -r "${req}"
    echo "${want}" >"${stamp}"
  fi
  step "Python: the core component into bindings/python, then pip install ./bindings/python"
  POLYTEL_SKIP_CARGO=1 "${repo}/bindings/python/build.sh"
  "${python_venv}/bin/python" -m pip install --quiet --no-build-isolation --no-deps --force-reinstall \
    "${repo}/bindings/python"
}

# The JavaScript binding: its pinned build tools (npm ci, npm's cache under
# POLYTEL_CACHE), then the package build: the core component from the polytel
# command, jco transpile, tsc. Needs setup_rust first.
setup_js() {
  need node "for the JavaScript binding (Node 20 or newer)"
  need npm "to install the JavaScript binding's pinned build tools"
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' \
    || { echo "setup: the JavaScript binding needs Node >= 20, found $(node --version)" >&2; exit 1; }
  export npm_config_cache="${POLYTEL_CACHE}/npm"
  export npm_config_update_notifier=false
  step "JavaScript: npm ci, then build bindings/js (component, jco transpile, tsc)"
  (cd "${repo}/bindings/js" && npm ci --no-audit --no-fund >&2 && POLYTEL_BIN="${polytel_bin}" npm run --silent build >&2)
}

# Debian's chromium for the JavaScript binding's headless browser test
# (apt-get as root, or with sudo; a no-op once installed).
setup_browser() {
  step "Chromium (Debian's package) for the headless browser test"
  if [[ ! -x /usr/bin/chromium ]]; then
    local sudo=()
    [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y \
      --no-install-recommends chromium >&2
  fi
  export POLYTEL_REQUIRE_BROWSER=1
}

# The Go binding: cgo against the Rust host built as a static library
# (libpolytel.a, which every build of the host crate leaves next to the polytel
# command). Go's caches live under POLYTEL_CACHE (shared with the Collector's
# build). Needs setup_rust first.
setup_go() {
  need go "for the Go binding (Go 1.26 or newer)"
  need gcc "for cgo: the Go binding links the Rust host's static library"
  export GOCACHE="${POLYTEL_CACHE}/go/build"
  export GOMODCACHE="${POLYTEL_CACHE}/go/mod"
  export GOWORK=off
  export CGO_ENABLED=1
  # The library is found here first (see bindings/go/cgo.go).
  export CGO_LDFLAGS="-L${CARGO_TARGET_DIR}/release"
  step "Go: the host as a static library for cgo (libpolytel.a)"
  (cd "$repo" && cargo build --release --locked -p polytel --lib)
}

# The edge example: wasmtime-cli for `wasmtime serve` and wac-cli for the
# composition, each built once from crates.io and cached (cold: ~6 min on 2
# cores), then the example composed with the edge flavour of the core. Needs
# setup_rust first.
setup_edge() {
  step "Edge: wasmtime-cli and wac-cli, then examples/edge composed with the edge core"
  "$repo/scripts/install-wasmtime.sh" >/dev/null
  POLYTEL_BIN="$polytel_bin" "$repo/scripts/build-edge.sh" >/dev/null
}
