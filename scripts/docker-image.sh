#!/usr/bin/env bash
# Builds the shmframe image from the repository's Dockerfile without any container registry.
#
#   scripts/docker-image.sh [--debug] [TAG]        (TAG: shmframe:latest)
#
# 1. Starts a Docker engine (Debian's docker.io, as root) unless one answers; it keeps running.
# 2. Makes the runtime base image once: a minimal Debian of the Dockerfile's release with python3,
#    pip, NumPy and the window's libraries, by mmdebstrap from Debian packages (`docker import`).
# 3. Builds the binary and the wheel with scripts/build-release.sh (--debug: the debug build,
#    quicker when the workspace's debug build exists, but a larger and slower binary).
# 4. Builds the Dockerfile with that base (RUNTIME_IMAGE) and those files (ARTIFACTS=prebuilt).
# Environment: SHMFRAME_FEATURES (cargo features of the binary, as for build-release.sh; the
# debug build has gstreamer and zenoh, so the base image gets GStreamer's libraries);
# SHMFRAME_IMAGE_PROFILE=debug does what --debug does (the tests use it: a release build takes
# minutes more on 2 cores).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
debug=()
[ "${SHMFRAME_IMAGE_PROFILE:-release}" = debug ] && debug=(--debug)
if [ "${1:-}" = "--debug" ]; then
  debug=(--debug)
  shift
fi
# The shared debug build's binary links GStreamer: the base image needs its libraries.
[ ${#debug[@]} -gt 0 ] && export SHMFRAME_FEATURES="gstreamer,zenoh"
# shellcheck source=scripts/docker-lib.sh
source "$ROOT/scripts/docker-lib.sh"
cd "$ROOT"

tag="${1:-shmframe:latest}"
t_all=$SECONDS

t0=$SECONDS
docker_engine_start || {
  echo "error: no Docker engine answers and none could be started" >&2
  exit 1
}
echo "engine: $((SECONDS - t0)) s ($("$DOCKER" version --format '{{.Server.Version}}'), client $DOCKER)"

t0=$SECONDS
base="$(docker_base_image)"
echo "base image: $base ($((SECONDS - t0)) s)"

# The build context is the build script's output only: the binary and the wheel.
ctx="$(mktemp -d "${TMPDIR:-/tmp}/shmframe-image-XXXXXX")"
trap 'rm -rf "$ctx"' EXIT

t0=$SECONDS
command -v maturin >/dev/null || need_pip -q 'maturin>=1.7,<2'
scripts/build-release.sh "${debug[@]}" "$ctx/out" >"$ctx/build.log" 2>&1 || {
  tail -n 30 "$ctx/build.log" >&2
  echo "error: scripts/build-release.sh ${debug[*]} failed" >&2
  exit 1
}
# Debug information stays in the build tree; the image gets the stripped binary.
strip "$ctx/out/shmframe"
echo "binary and wheel (scripts/build-release.sh ${debug[*]}): $((SECONDS - t0)) s"

t0=$SECONDS
DOCKER_BUILDKIT=1 "$DOCKER" build --quiet -f Dockerfile \
  --build-arg ARTIFACTS=prebuilt \
  --build-arg RUNTIME_IMAGE="$base" \
  --build-arg SHMFRAME_FEATURES="${SHMFRAME_FEATURES:-}" \
  -t "$tag" "$ctx/out" >/dev/null
size="$("$DOCKER" image inspect -f '{{.Size}}' "$tag")"
echo "image build: $((SECONDS - t0)) s"
echo "image $tag: $((size / 1000000)) MB ($size bytes), made in $((SECONDS - t_all)) s"
