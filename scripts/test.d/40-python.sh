#!/usr/bin/env bash
# The Python package: builds the extension (abi3 wheel) with maturin, installs it into .venv and
# runs the pytest suite in crates/shmframe-py/tests (dtypes, metadata, separate processes,
# kill -9, Ctrl-C, zero-copy lifetimes, the `shmframe` command on the same channels, the
# article's examples, asyncio in the standard library's event loop and in uvloop's, a process
# under valgrind). Then, with NumPy 1.x in a second venv and the same wheel, the tests that hand
# arrays across the wheel's NumPy interface.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

# valgrind: test_valgrind.py runs a writer and a reader under it.
need_apt valgrind || exit 1
need_venv
need_pip maturin "numpy>=2" pytest pytest-timeout opencv-python-headless posix_ipc pillow "uvloop>=0.18" || exit 1

# The cross-language tests drive the debug build of the `shmframe` command.
build_shared || exit 1
export SHMFRAME_BIN
SHMFRAME_BIN="$(shmframe_bin)"

# One wheel for every CPython >= 3.9 and both NumPy majors; the dev profile shares target/.
WHEELS="$ROOT/target/py-wheels"
rm -rf "$WHEELS"
maturin build -q --profile dev --out "$WHEELS" || exit 1
python -m pip install -q --force-reinstall --no-deps "$WHEELS"/shmframe-*.whl || exit 1

# pytest's temporary directories go into one of this step's own, removed at the end.
BASETEMP="$(mktemp -d "${TMPDIR:-/tmp}/sft-pytest-XXXXXX")"
trap 'rm -rf "$BASETEMP"' EXIT
run_pytest() {
  # Exit code 5 (no tests collected) is a failure too.
  local base="$1"
  shift
  python -m pytest -p no:cacheprovider --basetemp="$BASETEMP/$base" "$@"
}
# What NumPy 1.x changes is the wheel's NumPy interface: arrays and dtypes in and out, views that
# keep their mapping alive, metadata records, arrays across processes and through asyncio. The
# rest of the suite (corrupt segments, sockets, valgrind, the benchmark, the command) runs the same
# code with either NumPy and runs once, above.
NUMPY1_TESTS=(test_arrays.py test_views.py test_meta.py test_layout2.py test_processes.py test_async.py)

status=0
echo "--- pytest, numpy $(python -c 'import numpy; print(numpy.__version__)')"
run_pytest numpy2 crates/shmframe-py/tests || status=1

# NumPy 1.x: a second venv (kept under target/ so reruns are quick).
V1="$ROOT/target/py-numpy1"
if [ ! -x "$V1/bin/python" ]; then
  python3 -m venv "$V1" && "$V1/bin/python" -m pip install -q --upgrade pip || exit 1
fi
"$V1/bin/python" -m pip install -q "numpy<2" pytest pytest-timeout "uvloop>=0.18" || exit 1
"$V1/bin/python" -m pip install -q --force-reinstall --no-deps "$WHEELS"/shmframe-*.whl || exit 1
echo "--- pytest, numpy $("$V1/bin/python" -c 'import numpy; print(numpy.__version__)') (the tests of the NumPy interface; the preview server's is skipped: no Pillow here)"
(
  # shellcheck disable=SC1091
  source "$V1/bin/activate" && run_pytest numpy1 "${NUMPY1_TESTS[@]/#/crates/shmframe-py/tests/}"
) || status=1

exit $status
