#!/usr/bin/env bash
# The article's protocol (shmframe::seed): the Rust side against Python peers written from the
# protocol's description (posix_ipc + numpy), in both directions, with crashed peers, growth and
# corrupt segments; then the same through the shmframe command (read/write/bridge --protocol seed).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

need_pip posix_ipc numpy
export SHMFRAME_TEST_PYTHON="$VENV/bin/python"
"$SHMFRAME_TEST_PYTHON" -c "import posix_ipc, numpy" >/dev/null

cargo test -p shmframe --test seed
cargo test -p shmframe-cli $CLI_FEATURES --test seed_cli
