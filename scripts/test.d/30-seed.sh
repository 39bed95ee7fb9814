#!/usr/bin/env bash
# The article's protocol (shmframe::seed): the Rust side against Python peers written from the
# protocol's description (posix_ipc + numpy), in both directions, with crashed peers, growth and
# corrupt segments; then the same through the shmframe command (read/write/bridge --protocol seed).
# The tests with Python peers are #[ignore]d in `cargo test`; this part runs them. Without an
# interpreter with posix_ipc and numpy it runs the others and exits 77 (skipped; a failure when
# CI=true).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1

with_python=0
if need_pip posix_ipc numpy && "$VENV/bin/python" -c "import posix_ipc, numpy" >/dev/null; then
  with_python=1
  export SHMFRAME_TEST_PYTHON="$VENV/bin/python"
fi
ignored=()
[ "$with_python" = 1 ] && ignored=(--include-ignored)

# The shared build's exact selection and features, so nothing is rebuilt.
# shellcheck disable=SC2086
check "shmframe::seed (cargo test --test seed)" \
  cargo test --workspace $CLI_FEATURES --test seed -- "${ignored[@]}"
# shellcheck disable=SC2086
check "shmframe --protocol seed (cargo test --test seed_cli)" \
  cargo test --workspace $CLI_FEATURES --test seed_cli -- "${ignored[@]}"

echo "seed: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || exit 1
[ "$with_python" = 1 ] ||
  skip_or_fail "no Python with posix_ipc and numpy: the tests against the Python peers did not run"
