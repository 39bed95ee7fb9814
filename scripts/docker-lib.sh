# shellcheck shell=bash
# Docker helpers for scripts/docker-image.sh, scripts/test.d/75-docker.sh and the README check
# (sourced after scripts/lib.sh, not run). Root is needed to start an engine.

# The Debian release of the image: the Dockerfile's DEBIAN argument.
DOCKER_DEBIAN="$(sed -n 's/^ARG DEBIAN=//p' "$ROOT/Dockerfile")"
# Packages of the local runtime base image (the Dockerfile's RUNTIME_IMAGE when no registry is
# reachable): what the Dockerfile's runtime stage expects of a base image (python3 with pip, the
# libraries of the reader's window, useradd) plus NumPy, so that nothing comes from the network.
DOCKER_BASE_PACKAGES="python3 python3-pip python3-numpy libx11-6 libxcursor1 passwd"
case "${SHMFRAME_FEATURES:-}" in
*gstreamer*)
  DOCKER_BASE_PACKAGES="$DOCKER_BASE_PACKAGES libgstreamer1.0-0 gstreamer1.0-plugins-base"
  DOCKER_BASE_PACKAGES="$DOCKER_BASE_PACKAGES gstreamer1.0-plugins-good"
  ;;
esac
# Set by docker_engine_start when this shell started the engine.
DOCKERD_PID=""
DOCKERD_LOG=""

# docker_client: picks the `docker` command to use (sets $DOCKER). A client of Docker 23 or later
# builds with BuildKit only through its buildx plugin; an older one (Debian's docker.io) has
# BuildKit built in. The first client on PATH that can build with BuildKit wins.
docker_client() {
  local c major
  DOCKER=""
  while read -r c; do
    [ -n "$c" ] || continue
    if "$c" buildx version >/dev/null 2>&1; then
      DOCKER="$c"
      break
    fi
    major="$("$c" --version 2>/dev/null | sed -n 's/^Docker version \([0-9]*\)\..*/\1/p')"
    if [ -n "$major" ] && [ "$major" -lt 23 ]; then
      DOCKER="$c"
      break
    fi
  done < <(type -aP docker | awk '!seen[$0]++')
  [ -n "$DOCKER" ] || DOCKER="$(type -P docker || true)"
  [ -n "$DOCKER" ]
}

# docker_answers: whether an engine answers the client (within 10 s).
docker_answers() {
  [ -n "${DOCKER:-}" ] || docker_client || return 1
  timeout 10 "$DOCKER" info >/dev/null 2>&1
}

# docker_engine_start: starts dockerd (Debian's docker.io, installed if missing) when no engine
# answers, with the overlay2 storage driver, else vfs. Sets DOCKERD_PID and DOCKERD_LOG. The
# engine keeps running; docker_engine_stop stops it.
docker_engine_start() {
  docker_client 2>/dev/null
  docker_answers && return 0
  command -v dockerd >/dev/null || need_apt docker.io || return 1
  docker_client || return 1
  if [ "$(id -u)" -ne 0 ]; then
    echo "no Docker engine answers, and starting one needs root" >&2
    return 1
  fi
  DOCKERD_LOG="$(mktemp "${TMPDIR:-/tmp}/dockerd-XXXXXX.log")"
  local driver
  for driver in overlay2 vfs; do
    setsid dockerd --storage-driver "$driver" >>"$DOCKERD_LOG" 2>&1 </dev/null &
    DOCKERD_PID=$!
    for _ in $(seq 150); do
      kill -0 "$DOCKERD_PID" 2>/dev/null || break
      if timeout 5 "$DOCKER" info >/dev/null 2>&1; then
        echo "started dockerd (pid $DOCKERD_PID, storage driver $driver, log $DOCKERD_LOG)"
        return 0
      fi
      sleep 0.2
    done
    echo "dockerd with the $driver storage driver did not start:" >&2
    tail -n 5 "$DOCKERD_LOG" >&2
    docker_engine_stop
  done
  return 1
}

# docker_engine_stop: stops the dockerd that docker_engine_start started (if any), waits for it
# and the containerd it runs to end, and removes its log (printing its end if dockerd had to be
# killed).
docker_engine_stop() {
  [ -n "$DOCKERD_PID" ] || return 0
  kill -TERM "$DOCKERD_PID" 2>/dev/null
  for _ in $(seq 150); do
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$DOCKERD_PID" 2>/dev/null; then
    echo "dockerd (pid $DOCKERD_PID) did not stop within 30 s: killing it" >&2
    kill -KILL "$DOCKERD_PID" 2>/dev/null
    tail -n 20 "$DOCKERD_LOG" >&2
  fi
  wait "$DOCKERD_PID" 2>/dev/null
  DOCKERD_PID=""
  rm -f "$DOCKERD_LOG"
}

# docker_base_image: prints the tag of the local runtime base image, a minimal Debian made by
# mmdebstrap from the release's packages and imported into the engine; made once, then reused
# (the tag names a hash of everything that goes into it).
docker_base_image() {
  # shellcheck disable=SC2016 # the customize hook's "$1" is mmdebstrap's
  local opts=(
    --variant=minbase
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --dpkgopt=force-unsafe-io
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --aptopt='Acquire::Languages "none"'
    # pip may install into the system's Python, as in the python:*-slim images.
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED'
    --include="${DOCKER_BASE_PACKAGES// /,}"
  )
  local changes=(--change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]')
  local tag
  tag="shmframe-base:$DOCKER_DEBIAN-$(printf '%s\n' "${opts[@]}" "${changes[@]}" |
    sha256sum | cut -c1-12)"
  if "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"
    return 0
  fi
  need_apt mmdebstrap >&2 || return 1
  # The host's package sources when it runs the image's release (its mirror and security
  # updates), else mmdebstrap's default mirror for that release.
  local sources=() f codename
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  if [ "$codename" = "$DOCKER_DEBIAN" ]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
      [ -s "$f" ] && grep -q '^[^#]' "$f" && sources+=("$f")
    done
  fi
  # dpkg is quicker by far on a tmpfs than on a slow disk: mmdebstrap works in one of its own.
  local tmp
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/shmframe-base-XXXXXX")"
  local mounted=0
  if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=2g,mode=0700 shmframe-base "$tmp" 2>/dev/null; then
    mounted=1
  fi
  echo "making the base image $tag (mmdebstrap $DOCKER_DEBIAN: $DOCKER_BASE_PACKAGES)" >&2
  local t0=$SECONDS rc=0 log
  log="$(mktemp "${TMPDIR:-/tmp}/shmframe-base-XXXXXX.log")"
  TMPDIR="$tmp" mmdebstrap "${opts[@]}" "$DOCKER_DEBIAN" - "${sources[@]}" 2>"$log" |
    "$DOCKER" import "${changes[@]}" - "$tag" >/dev/null || rc=1
  [ "$mounted" = 1 ] && umount "$tmp"
  rmdir "$tmp" 2>/dev/null
  if [ "$rc" -ne 0 ]; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    echo "error: making the base image failed" >&2
    "$DOCKER" image rm "$tag" >/dev/null 2>&1
    return 1
  fi
  rm -f "$log"
  echo "base image $tag made in $((SECONDS - t0)) s" >&2
  echo "$tag"
}

# docker_compose ARGS...: `docker compose` (Compose v2), or Debian bookworm's `docker-compose`
# (v1) where the plugin is missing.
docker_compose() {
  if "${DOCKER:-docker}" compose version >/dev/null 2>&1; then
    "${DOCKER:-docker}" compose "$@"
  else
    docker-compose "$@"
  fi
}
