#!/usr/bin/env bash
# Runs every test of mini-cluster, from a fresh machine: installs what is needed, checks
# formatting and lints, then runs the unit, root integration and end-to-end suites.
# Prerequisites that are missing fail the run (MINI_REQUIRE_ALL=1) instead of skipping tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh

# A target dir outside the clone is reused across runs when present; a fresh one works too.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/minicluster-target}"
# No incremental caches: a test run builds once, and they take tens of GB on a shared target.
export CARGO_INCREMENTAL=0
export MINI_REQUIRE_ALL=1
export RUST_BACKTRACE=1

start=$(date +%s)
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test" >&2
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee /tmp/minicluster-test.log
status=${PIPESTATUS[0]}
set -e
echo "== done in $(( $(date +%s) - start ))s" >&2
awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' /tmp/minicluster-test.log
exit "$status"
