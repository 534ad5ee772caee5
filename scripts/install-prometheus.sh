#!/usr/bin/env bash
# Install (once) a real Prometheus server and promtool for polytel's
# integration tests, from Debian's `prometheus` package (2.42 on bookworm).
#
# The tests start their own Prometheus on a free loopback port with a
# throwaway config and storage; they never use the system service. So if the
# package's postinst starts that service, it is stopped (and disabled) again
# here, leaving nothing bound to :9090.
#
# Usage: scripts/install-prometheus.sh
# Progress goes to stderr; the last line of stdout is the directory holding
# both binaries, e.g.
#   PROM_DIR="$(scripts/install-prometheus.sh | tail -n1)"
#
# Another apt/dpkg run holding the package locks is waited for, up to
# POLYTEL_APT_LOCK_TIMEOUT seconds (default 900).
set -euo pipefail

log() { printf 'install-prometheus: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

lock_timeout="${POLYTEL_APT_LOCK_TIMEOUT:-900}"

# The directory with both executables: where `prometheus` is on PATH, else
# /usr/bin (where Debian puts them, even when /usr/bin is not on PATH).
find_dir() {
  local candidates=() dir
  if command -v prometheus >/dev/null 2>&1; then
    candidates+=("$(dirname "$(command -v prometheus)")")
  fi
  candidates+=(/usr/bin)
  for dir in "${candidates[@]}"; do
    if [[ -x "${dir}/prometheus" && -x "${dir}/promtool" ]]; then
      printf '%s\n' "${dir}"
      return 0
    fi
  done
  return 1
}

found() {
  log "found prometheus and promtool in $1 ($("$1/prometheus" --version 2>&1 | head -n1))"
  printf '%s\n' "$1"
  exit 0
}

if dir="$(find_dir)"; then
  found "${dir}"
fi

command -v apt-get >/dev/null 2>&1 ||
  die "prometheus and promtool are not installed and there is no apt-get to install Debian's 'prometheus' package; install Prometheus 2.x so both are on PATH."

if [[ "$(id -u)" == 0 ]]; then
  as_root=(env)
elif command -v sudo >/dev/null 2>&1; then
  # Without a terminal sudo cannot ask for a password; fail instead of hanging.
  if [[ -t 0 ]]; then as_root=(sudo env); else as_root=(sudo -n env); fi
else
  die "installing Debian's 'prometheus' package needs root, and this is neither root nor has sudo; run 'apt-get install prometheus' as root once."
fi

# Concurrent test runs on one machine install once; the others wait here.
if command -v flock >/dev/null 2>&1; then
  lock_dir="${POLYTEL_CACHE:-${HOME:-/tmp}/.cache/polytel}"
  mkdir -p "${lock_dir}"
  exec 9>"${lock_dir}/install-prometheus.lock"
  flock 9
  if dir="$(find_dir)"; then
    found "${dir}"
  fi
fi

# apt's locks are fcntl locks that `flock` cannot see, so look for the
# processes instead. The wait matters beyond the lock: the other run may be
# installing Prometheus itself, and then there is nothing left to do.
wait_for_other_apt() {
  local deadline=$((SECONDS + lock_timeout)) pids said=""
  while pids="$(pgrep -x 'apt|apt-get|aptitude|dpkg' 2>/dev/null | tr '\n' ' ')" && [[ -n "${pids}" ]]; do
    if [[ -z "${said}" ]]; then
      log "waiting for another apt/dpkg run to finish (pids ${pids% }; see /tmp/apt.log if it is ours)"
      said=1
    fi
    ((SECONDS < deadline)) || die "another apt/dpkg run (pids ${pids% }) still holds the package system after ${lock_timeout}s."
    sleep 2
  done
}

# Runs apt-get as root, retrying while a lock is held by someone else (a run
# that started between the wait above and this call).
apt_get() {
  local deadline=$((SECONDS + lock_timeout)) out status
  out="$(mktemp)"
  while :; do
    # With pipefail the pipeline's status is apt-get's (tee succeeds).
    "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=${lock_timeout}" "$@" 2>&1 |
      tee "${out}" >&2 && status=0 || status=$?
    if ((status == 0)); then
      rm -f "${out}"
      return 0
    fi
    if grep -qE 'Could not get lock|Unable to (acquire|lock)' "${out}" && ((SECONDS < deadline)); then
      log "apt-get $1: the package system is locked; retrying"
      sleep 5
      wait_for_other_apt
      continue
    fi
    rm -f "${out}"
    die "'apt-get $*' failed with exit status ${status} (its output is above)."
  done
}

prometheus_pids() { pgrep -x prometheus 2>/dev/null | sort || true; }
# Alive and not a zombie (a zombie holds no port and only waits to be reaped).
running() { [[ -r "/proc/$1/stat" && "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]]; }

# Waits up to N steps of 0.2 s for the daemons in ${started} to
# exit; leaves the ones still running in ${alive}.
wait_gone() {
  for _ in $(seq "$1"); do
    alive=""
    for pid in ${started}; do
      if running "${pid}"; then alive+=" ${pid}"; fi
    done
    [[ -z "${alive}" ]] && return
    sleep 0.2
  done
}

wait_for_other_apt
if dir="$(find_dir)"; then
  found "${dir}"
fi

before="$(prometheus_pids)"
start=${SECONDS}
log "installing Debian's 'prometheus' package (apt-get update, then install)"
apt_get update
apt_get install -y --no-install-recommends prometheus
log "installed in $((SECONDS - start))s"

# A daemon the install started is whatever runs now and did not before.
started="$(comm -13 <(printf '%s\n' "${before}") <(prometheus_pids) | grep . || true)"
if [[ -n "${started}" ]]; then
  log "the package started the system Prometheus service (pids $(paste -sd' ' <<<"${started}")); stopping it, the tests run their own"
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    "${as_root[@]}" systemctl disable --now prometheus.service >&2 ||
      log "warning: 'systemctl disable --now prometheus' failed"
    log "disabled prometheus.service; 'systemctl enable --now prometheus' restores it"
  elif command -v service >/dev/null 2>&1; then
    "${as_root[@]}" service prometheus stop >&2 || log "warning: 'service prometheus stop' failed"
  fi
  wait_gone 50
  if [[ -n "${alive}" ]]; then
    log "the service manager left${alive} running; terminating those processes"
    for pid in ${alive}; do "${as_root[@]}" kill "${pid}" 2>/dev/null || true; done
    wait_gone 25
    [[ -z "${alive}" ]] || log "warning: prometheus${alive} still running; stop it so nothing holds :9090"
  fi
fi

dir="$(find_dir)" || die "apt-get installed 'prometheus' but prometheus and promtool are still not in /usr/bin."
found "${dir}"
