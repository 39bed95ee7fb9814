#!/usr/bin/env bash
# The README as a newcomer uses it: every code block runs as written (see scripts/check_readme.py).
# Needs the Python package in .venv (scripts/test.d/40-python.sh) and the workspace build with the
# CLI's zenoh feature (the bridge block).
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
need_venv
build_shared || exit 1
# The release build `cargo run --release -- demo` needs (made in the background by scripts/test.sh).
prebuilt release_setup || exit 1
export SHMFRAME_TEST_PYTHON="$VENV/bin/python"
python scripts/check_readme.py
