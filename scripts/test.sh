#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the Rust suites, then each part in
# scripts/test.d/ (Python, window under Xvfb, namespaces, loom, fuzzing, …). This is the README's
# test command and what CI runs. It installs what it needs (apt packages, a .venv) by itself.
# A step that exits 77 is counted as skipped (its environment is missing; a part fails instead
# when CI=true).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

passed=0
failed=0
skipped=0
failures=()
skips=()
started=$SECONDS
step() {
  local title="$1"
  shift
  echo
  echo "=== $title"
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "=== ok: $title ($((SECONDS - t0)) s)"
  elif [ "$rc" -eq 77 ]; then
    skipped=$((skipped + 1))
    skips+=("$title")
    echo "=== skipped: $title ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1))
    failures+=("$title")
    echo "=== FAILED: $title ($((SECONDS - t0)) s)"
  fi
}

only="${1:-}"
step "build dependencies (apt)" need_build_deps
if [ -z "$only" ]; then
  step "cargo fmt --check" cargo fmt --all -- --check
  step "cargo build (shared by every step)" build_shared
  # shellcheck disable=SC2086
  step "cargo clippy -D warnings" cargo clippy --workspace --all-targets $CLI_FEATURES -- -D warnings
  # shellcheck disable=SC2086
  step "cargo doc (warnings are errors)" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps $CLI_FEATURES
  # The loom, miri, fuzzing and release builds (parts 60-62, 90) go on in the background from
  # here, on the core the test steps leave idle; those parts wait for them (lib.sh prebuilt).
  mkdir -p target
  prebuilds() {
    prebuilt loom_setup
    prebuilt miri_setup
    prebuilt fuzz_setup
    prebuilt release_setup
  }
  prebuilds >target/prebuild.log 2>&1 &
  prebuild_pid=$!
  # shellcheck disable=SC2086
  step "cargo test" cargo test --workspace --no-fail-fast $CLI_FEATURES
fi
for part in scripts/test.d/*.sh; do
  [ -e "$part" ] || continue
  [ -n "$only" ] && [[ "$part" != *"$only"* ]] && continue
  step "$(basename "$part")" bash "$part"
done
[ -n "${prebuild_pid:-}" ] && wait "$prebuild_pid" 2>/dev/null
left="$(leftovers)"
if [ -n "$left" ]; then
  failed=$((failed + 1))
  failures+=("leftovers in /dev/shm: $left")
  echo "=== FAILED: tests left objects in /dev/shm:"
  echo "$left"
else
  passed=$((passed + 1))
fi

echo
[ ${#skips[@]} -gt 0 ] && printf 'skipped step: %s\n' "${skips[@]}"
[ ${#failures[@]} -gt 0 ] && printf 'failed step: %s\n' "${failures[@]}"
echo "steps: $passed passed, $failed failed, $skipped skipped"
total=$((SECONDS - started))
echo "total: $((total / 60)) min $((total % 60)) s"
[ "$failed" -eq 0 ]
