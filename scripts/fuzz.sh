#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for a bounded time; exits non-zero if any target crashes.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   FUZZ_TIME=300 scripts/fuzz.sh patch
#
# Environment: FUZZ_TIME (seconds per target, default 60), FUZZ_JOBS (parallel fuzzing jobs per
# target, default 1), FUZZ_SANITIZER (default none: the code under test is safe Rust; use
# address for ASan). Debug assertions and overflow checks are on. cargo fuzz needs a nightly
# compiler; on a stable toolchain RUSTC_BOOTSTRAP=1 unlocks the flags it passes. Crashing inputs
# are left in fuzz/artifacts/<target>/.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
time_per_target="${FUZZ_TIME:-60}"
jobs="${FUZZ_JOBS:-1}"
sanitizer="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

# cargo fuzz finds its binaries under its own target dir: give it one explicitly.
target_dir="${CARGO_TARGET_DIR:-$root/fuzz/target}"
[ -n "${CARGO_TARGET_DIR:-}" ] && target_dir="$CARGO_TARGET_DIR/fuzz"
unset CARGO_TARGET_DIR

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "fuzz.sh: $t for ${time_per_target}s" >&2
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --debug-assertions --sanitizer "$sanitizer" --target-dir "$target_dir" \
        --jobs "$jobs" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$time_per_target" -dict=k8s.dict -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1; then
        echo "fuzz.sh: $t FAILED; crashing inputs:" >&2
        ls -1 "artifacts/$t" >&2 || true
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: all targets ran clean" >&2
