#!/usr/bin/env bash
# Model-checks the lock-free core (seqlock slots, slot choice with pins, the futex wake-up
# protocol) with loom: every interleaving of a writer and readers up to LOOM_MAX_PREEMPTIONS
# preemptions. Builds into target/loom so that the main build is not invalidated.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

prebuilt loom_setup || { echo "loom: 0 passed, 1 failed (build)"; exit 1; }
export RUSTFLAGS="$LOOM_RUSTFLAGS"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
args=("${LOOM_ARGS[@]}")

out="$(mktemp)"
cargo test "${args[@]}" ring::loom_tests 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
passed=$(grep -Eo '[0-9]+ passed' "$out" | tail -1 | grep -Eo '[0-9]+' || echo 0)
failed=$(grep -Eo '[0-9]+ failed' "$out" | tail -1 | grep -Eo '[0-9]+' || echo 0)
[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1

# The model must be able to fail: each deliberately broken wake-up order (a writer that ignores
# the sleeper count; a reader that reads the bell after counting itself in) has to be reported.
for broken in lost_wakeup_is_caught_when_the_writer_ignores_sleepers \
  lost_wakeup_is_caught_when_the_reader_reads_the_bell_late; do
  if cargo test "${args[@]}" "ring::loom_tests::$broken" -- --ignored >"$out" 2>&1; then
    echo "loom: $broken: the broken order was NOT caught (the model is too weak)"
    failed=$((failed + 1))
  elif grep -q deadlock "$out"; then
    echo "loom: $broken: caught (deadlock reported), as it must be"
    passed=$((passed + 1))
  else
    tail -20 "$out"
    failed=$((failed + 1))
  fi
done
rm -f "$out"
echo "loom: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
