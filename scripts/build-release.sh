#!/usr/bin/env bash
# Builds what the container image ships: the `shmframe` binary (crate shmframe-cli) and the
# Python wheel (pyproject.toml, maturin), into OUT_DIR.
#
#   scripts/build-release.sh [--debug] OUT_DIR
#
# The Dockerfile runs exactly this script (release). The tests (scripts/test.d/50-containers.sh,
# 75-docker.sh) run it with --debug: the debug build every test step shares, whose binary has the
# features gstreamer and zenoh. Cargo features of the release binary: SHMFRAME_FEATURES (e.g.
# "gstreamer").
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
if [ "${1:-}" = "--debug" ]; then
  profile=debug
  shift
fi
out="${1:?usage: scripts/build-release.sh [--debug] OUT_DIR}"
mkdir -p "$out"

cargo_profile=(--release)
maturin_profile=(--release)
if [ "$profile" = debug ]; then
  cargo_profile=()
  # pyproject.toml asks maturin for the release profile; debug mode overrides it.
  maturin_profile=(--profile dev)
fi
features=()
[ -n "${SHMFRAME_FEATURES:-}" ] && features=(--features "$SHMFRAME_FEATURES")

if [ "$profile" = debug ]; then
  # The workspace's debug build that every test step shares (scripts/lib.sh build_shared), with
  # its features (CLI_FEATURES: gstreamer and zenoh): a build of this package alone would unify
  # features differently and rebuild much of the workspace. SHMFRAME_FEATURES does not apply.
  # shellcheck source=scripts/lib.sh
  source scripts/lib.sh
  build_shared
else
  cargo build --locked "${cargo_profile[@]}" -p shmframe-cli "${features[@]}"
fi
target="${CARGO_TARGET_DIR:-target}"
install -m 0755 "$target/$profile/shmframe" "$out/shmframe"

if [ ! -f pyproject.toml ]; then
  echo "error: pyproject.toml is missing, so the Python wheel cannot be built" >&2
  exit 1
fi
command -v maturin >/dev/null || {
  echo "error: maturin is not installed: pip install 'maturin>=1.7,<2'" >&2
  exit 1
}

maturin build --locked "${maturin_profile[@]}" --out "$out"
ls -l "$out"
