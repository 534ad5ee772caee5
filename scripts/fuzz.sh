#!/usr/bin/env bash
# Fuzzes the polytel core: runs every cargo-fuzz target in fuzz/ for a while,
# one after the other, and exits non-zero if any of them crashed.
#
#   scripts/fuzz.sh [seconds-per-target]        (default 120)
#
# Environment:
#   FUZZ_TARGETS      targets to run, space-separated (default: config spans responses propagation)
#   FUZZ_TOOLCHAIN    force a toolchain, e.g. "nightly" or "stable" (stable runs
#                     with RUSTC_BOOTSTRAP=1, which lets it take the -Z flags the
#                     sanitizer build needs)
#   CARGO_TARGET_DIR  defaults to fuzz/target (ignored by git)
#
# Installs what it needs when missing: a nightly toolchain through rustup (or
# falls back to stable with RUSTC_BOOTSTRAP=1), and cargo-fuzz from crates.io.
# Seeds come from fuzz/seeds/<target> (committed); what the fuzzer learns goes
# to fuzz/corpus/<target>, crashes to fuzz/artifacts/<target>, logs to
# $CARGO_TARGET_DIR/fuzz-logs (none of them committed). A crash's input is
# minimised with `cargo fuzz tmin`; keep it under fuzz/regressions/<target>/.
set -euo pipefail

secs="${1:-120}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
    echo "usage: $0 [seconds-per-target]" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/fuzz/target}"
read -r -a targets <<<"${FUZZ_TARGETS:-config spans responses propagation}"

# Longest input per target: spans and propagation need room for batches and
# for baggage past its 8192-byte limit.
max_len() {
    case "$1" in
        config) echo 8192 ;;
        spans) echo 32768 ;;
        propagation) echo 20000 ;;
        *) echo 8192 ;;
    esac
}

# --- toolchain --------------------------------------------------------------
toolchain="${FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
    if rustup run nightly rustc --version >/dev/null 2>&1; then
        toolchain=nightly
    elif rustup toolchain install nightly --profile minimal >&2 && rustup run nightly rustc --version >/dev/null 2>&1; then
        toolchain=nightly
    else
        echo "fuzz.sh: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1" >&2
        toolchain=stable
    fi
fi
if [ "$toolchain" != nightly ]; then
    export RUSTC_BOOTSTRAP=1
fi
echo "fuzz.sh: toolchain $(rustup run "$toolchain" rustc --version)" >&2

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
echo "fuzz.sh: $(cargo fuzz --version)" >&2

# --- build once, then run each target ---------------------------------------
# -a: debug assertions and overflow checks, so an integer overflow is a crash.
cargo "+$toolchain" fuzz build -a

logs="$CARGO_TARGET_DIR/fuzz-logs"
mkdir -p "$logs"
# Crash, timeout and out-of-memory inputs found so far for a target.
findings() {
    find "fuzz/artifacts/$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) 2>/dev/null | sort
}
failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="$logs/$t.log"
    before="$(findings "$t")"
    echo "fuzz.sh: $t for ${secs}s (log: $log)" >&2
    status=0
    # -fork=1: one worker process at a time (the machine has two cores and
    # other work runs); with -ignore_* the run goes on for the whole time
    # after a crash, so one shallow bug does not hide the rest. Every crash is
    # still written to fuzz/artifacts/<target>/ and fails this script.
    cargo "+$toolchain" fuzz run -a "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$secs" \
        -max_len="$(max_len "$t")" \
        -rss_limit_mb=2048 \
        -timeout=60 \
        >"$log" 2>&1 || status=$?
    # The fork-mode parent's last status line: "#<execs>: cov: .. ft: .. corp: ..
    # exec/s: .. oom/timeout/crash: a/b/c time: ..s job: .."
    last="$(grep -E '^#[0-9]+: cov: ' "$log" | tail -n1 || true)"
    new="$(comm -13 <(printf '%s\n' "$before") <(findings "$t") | sed '/^$/d')"
    if [ "$status" -ne 0 ] || [ -n "$new" ]; then
        echo "fuzz.sh: $t FAILED (exit $status): ${last:-no status line}" >&2
        grep -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)" "$log" | sort | uniq -c | sort -rn | head -n 20 >&2 || true
        for input in $new; do
            # Fork mode keeps the workers' output to itself: replay the input
            # to show what it does.
            echo "fuzz.sh:   new input: $input" >&2
            cargo "+$toolchain" fuzz run -a "$t" "$input" 2>&1 |
                grep -E -A1 "panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer: (out-of-memory|timeout)" | head -n 4 | sed 's/^/fuzz.sh:     /' >&2 || true
        done
        failed+=("$t")
    else
        echo "fuzz.sh: $t ok: ${last:-no status line}" >&2
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz.sh: no crashes" >&2
