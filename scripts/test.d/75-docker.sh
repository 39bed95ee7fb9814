#!/usr/bin/env bash
# Containers on a real Docker engine: Debian's docker.io (installed if missing, dockerd started
# here and stopped at the end), the image built by scripts/docker-image.sh, then the scenarios of
# docs/containers.md: the article's writer and readers, the compose file, a too small /dev/shm, a
# killed writer, readers under another uid. Exit code 77 (skipped) when no engine can start, a
# failure on CI (CI=true). The namespace emulation (50-containers) is the fast layer.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=scripts/docker-lib.sh
source scripts/docker-lib.sh

t_part=$SECONDS
skip() {
  if [ "${CI:-}" = true ]; then
    echo "FAILED: $1 (CI must run this part)"
    echo "docker: $passed passed, $((failed + 1)) failed"
    exit 1
  fi
  echo "SKIPPED: $1"
  echo "docker: skipped"
  exit 77
}
timed() {
  local t0=$SECONDS
  "$@"
  local rc=$?
  echo "  ($((SECONDS - t0)) s)"
  return $rc
}

run_id="t$$-$RANDOM"
name="shmframe-$run_id"           # container names start with this
label="shmframe-test=$run_id"     # every container of this run has this label
proj="shmframe-$run_id"           # the compose project
img="shmframe:latest"             # examples/compose.yaml uses this tag
work="$(mktemp -d "${TMPDIR:-/tmp}/docker-$$-XXXX")"
cleanup() {
  if [ -n "${DOCKER:-}" ] && docker_answers; then
    docker_compose -p "$proj" -f examples/compose.yaml down -t 1 >/dev/null 2>&1
    local ids
    ids="$("$DOCKER" ps -aq --filter "label=$label" --filter "label=com.docker.compose.project=$proj")"
    ids="$ids $("$DOCKER" ps -aq --filter "label=$label") $("$DOCKER" ps -aq \
      --filter "label=com.docker.compose.project=$proj")"
    # shellcheck disable=SC2086
    [ -n "${ids// /}" ] && "$DOCKER" rm -f $ids >/dev/null 2>&1
  fi
  docker_engine_stop
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The engine.
t0=$SECONDS
need_apt docker.io mmdebstrap docker-compose || skip "the Docker packages could not be installed"
docker_engine_start || skip "no Docker engine could be started"
echo "engine up in $((SECONDS - t0)) s ($("$DOCKER" version --format '{{.Server.Version}}'),"\
  "$("$DOCKER" info --format '{{.Driver}}'))"

# 2. The image, as users build it without a registry, from the debug build that earlier steps
#    made (a release build takes minutes more on 2 cores); SHMFRAME_IMAGE_PROFILE=release for
#    the release build.
t0=$SECONDS
SHMFRAME_IMAGE_PROFILE="${SHMFRAME_IMAGE_PROFILE:-debug}" scripts/docker-image.sh "$img" || {
  check "scripts/docker-image.sh builds the image" false
  echo "docker: $passed passed, $failed failed"
  exit 1
}
echo "image built in $((SECONDS - t0)) s"

d() { "$DOCKER" "$@"; }
# drun ARGS...: docker run with this run's label.
drun() { d run --label "$label" "$@"; }

image_facts() {
  local ep user size
  ep="$(d image inspect -f '{{json .Config.Entrypoint}}' "$img")"
  user="$(drun --rm --entrypoint id "$img" -u)"
  size="$(d image inspect -f '{{.Size}}' "$img")"
  echo "entrypoint $ep, uid $user, size $((size / 1000000)) MB"
  [ "$ep" = '["shmframe"]' ] && [ "$user" != 0 ] &&
    drun --rm "$img" --version &&
    drun --rm --entrypoint python3 "$img" -c \
      'import numpy, shmframe; print("python", shmframe.__file__, "numpy", numpy.__version__)'
}
check "image: entrypoint shmframe, non-root, python3 imports shmframe" timed image_facts

# The article's scenario: a shareable writer, readers outside and inside its IPC namespace.
article() {
  local w="$name-writer" out rc=0
  drun -d --name "$w" --ipc shareable --shm-size 64m "$img" write camera --fps 30 >/dev/null ||
    return 1
  out="$(drun --rm "$img" read camera --headless --timeout 2 2>&1)" && rc=1
  echo "reader without --ipc: ${out##*$'\n'}"
  [[ "$out" == *"did not appear within"*"IPC namespace"*"--ipc container:"* ]] || rc=1
  out="$(drun --rm --ipc "container:$w" "$img" read camera --headless --frames 30 --timeout 10 \
    --json)" || rc=1
  echo "reader with --ipc container:$w: $out"
  python3 -c 'import json, sys; j = json.loads(sys.argv[1]); sys.exit(not (j["frames"] == 30
and j["shape"] == [480, 640, 3] and j["torn"] == 0))' "${out##*$'\n'}" || rc=1
  out="$(drun --rm --ipc "container:$w" --entrypoint python3 "$img" -c 'import shmframe
with shmframe.Reader("camera", timeout=10) as r:
    f = r.read(10)
    print(list(f.array.shape), f.array.dtype)')" || rc=1
  echo "python reader with --ipc container:$w: $out"
  [ "$out" = "[480, 640, 3] uint8" ] || rc=1
  d rm -f "$w" >/dev/null
  return $rc
}
title="writer --ipc shareable: a reader without --ipc is told about the IPC namespace; readers"
check "$title with --ipc container: (shmframe and Python) receive frames" timed article

# The compose file as the README runs it.
compose() {
  local c=(-p "$proj" -f examples/compose.yaml) n=0 rc=1
  docker_compose "${c[@]}" up -d || return 1
  for _ in $(seq 40); do
    n="$(docker_compose "${c[@]}" logs --no-color reader 2>/dev/null |
      sed -n 's/.*camera: \([0-9]*\) frames.*/\1/p' | tail -n 1)"
    [ "${n:-0}" -ge 60 ] && rc=0 && break
    sleep 0.5
  done
  echo "compose reader: ${n:-0} frames"
  [ "$rc" = 0 ] || docker_compose "${c[@]}" logs --no-color | tail -n 20
  docker_compose "${c[@]}" down -t 5 || rc=1
  [ -z "$(d ps -aq --filter "label=com.docker.compose.project=$proj")" ] || rc=1
  return $rc
}
check "docker compose -f examples/compose.yaml up: the reader receives 60 frames; down" timed compose

# A ring that does not fit the container's /dev/shm.
no_space() {
  local out
  out="$(drun --rm --shm-size 8m "$img" write big --size 1920x1080 --frames 1 2>&1)" && return 1
  echo "$out"
  # The numbers: 3 slots of 1920x1080x3 plus headers, against what is left of 8 MiB after the
  # channel's pin table.
  [[ "$out" =~ needs\ ([0-9]+)\ bytes\ but\ /dev/shm\ has\ only\ ([0-9]+)\ free ]] || return 1
  local need="${BASH_REMATCH[1]}" free="${BASH_REMATCH[2]}"
  [ "$need" -gt $((3 * 1920 * 1080 * 3)) ] && [ "$free" -le $((8 << 20)) ] &&
    [ "$free" -gt $((7 << 20)) ] && [[ "$out" == *"--shm-size"* ]]
}
check "--shm-size 8m and a 1080p ring: the writer says so and names --shm-size" timed no_space

# docker kill of the writer: readers see it gone within 1 s. (a) The article's layout, where the
# writer's container owns the IPC namespace; (b) a container that only holds the namespace (as a
# Kubernetes pod's), where a new writer container joins it and the waiting readers follow it.
# gone_after SECONDS_SINCE_EPOCH CONTAINER: seconds from then to the reader's "is gone" line.
gone_after() {
  d logs -t "$2" 2>&1 | python3 -c '
import datetime, re, sys
t0 = float(sys.argv[1])
for line in sys.stdin:
    if "is gone" in line:
        ts = re.match(r"(\S+)T(\d+):(\d+):(\d+)(\.\d+)?Z", line)
        day = datetime.datetime.strptime(ts.group(1), "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
        t = day.timestamp() + int(ts.group(2)) * 3600 + int(ts.group(3)) * 60 + int(ts.group(4))
        print(f"{t + float(ts.group(5) or 0) - t0:.2f}")
        break
else:
    print("never")' "$1"
}
killed_writer() {
  local w="$name-kw" h="$name-holder" rc=0 t r g
  # (a)
  drun -d --name "$w" --ipc shareable "$img" write camera --fps 30 >/dev/null || return 1
  for r in 1 2; do
    drun -d --name "$name-kr$r" --ipc "container:$w" "$img" read camera --headless --timeout 30 \
      >/dev/null || rc=1
  done
  sleep 1.5
  t="$(date +%s.%N)"
  d kill "$w" >/dev/null || rc=1
  sleep 1.2
  for r in 1 2; do
    g="$(gone_after "$t" "$name-kr$r")"
    echo "(a) reader $r: writer gone after $g s"
    python3 -c 'import sys; sys.exit(not float(sys.argv[1]) <= 1.0)' "$g" 2>/dev/null || rc=1
  done
  d rm -f "$w" "$name-kr1" "$name-kr2" >/dev/null
  # (b)
  drun -d --name "$h" --ipc shareable --entrypoint sleep "$img" infinity >/dev/null || return 1
  drun -d --name "$w-1" --ipc "container:$h" "$img" write camera --fps 30 >/dev/null || rc=1
  for r in 1 2; do
    drun -d --name "$name-pr$r" --ipc "container:$h" "$img" read camera --headless --frames 150 \
      --timeout 10 --json >/dev/null || rc=1
  done
  sleep 1.5
  t="$(date +%s.%N)"
  d kill "$w-1" >/dev/null || rc=1
  sleep 1.2
  drun -d --name "$w-2" --ipc "container:$h" "$img" write camera --fps 30 >/dev/null || rc=1
  for r in 1 2; do
    g="$(gone_after "$t" "$name-pr$r")"
    echo "(b) reader $r: writer gone after $g s"
    python3 -c 'import sys; sys.exit(not float(sys.argv[1]) <= 1.0)' "$g" 2>/dev/null || rc=1
    [ "$(timeout 30 "$DOCKER" wait "$name-pr$r")" = 0 ] || rc=1
    local j
    j="$(d logs "$name-pr$r" 2>/dev/null | tail -n 1)"
    echo "(b) reader $r, after the second writer: $j"
    [[ "$j" == *'"frames":150'* ]] || rc=1
  done
  d rm -f "$h" "$w-1" "$w-2" "$name-pr1" "$name-pr2" >/dev/null
  return $rc
}
title="docker kill of the writer: readers see it gone within 1 s and follow a new writer"
check "$title in the same IPC namespace" timed killed_writer

# Readers under another uid than the writer.
other_uid() {
  local w="$name-uw" rc=0 out
  # The default mode 0600: refused, with what to do.
  drun -d --name "$w" --ipc shareable --user 1000:1000 "$img" write camera --fps 30 >/dev/null ||
    return 1
  out="$(drun --rm --ipc "container:$w" --user 2000:2000 "$img" read camera --headless \
    --frames 5 --timeout 5 2>&1)" && rc=1
  echo "uid 2000 on a 0600 channel: ${out##*$'\n'}"
  [[ "$out" == *"no permission to read channel"*"group mode (e.g. 0o640"*"--mode 0o640"*"join its group"* ]] ||
    rc=1
  d rm -f "$w" >/dev/null
  # The documented fix: --mode 0o640 and the writer's group.
  drun -d --name "$w" --ipc shareable --user 1000:4242 "$img" write camera --mode 0o640 --fps 30 \
    >/dev/null || return 1
  out="$(drun --rm --ipc "container:$w" --user 2000:2000 --group-add 4242 "$img" read camera \
    --headless --frames 10 --timeout 10 --json)" || rc=1
  echo "uid 2000 in group 4242 on a 0640 channel: $out"
  [[ "$out" == *'"frames":10'* ]] || rc=1
  out="$(drun --rm --ipc "container:$w" --user 3000:3000 "$img" read camera --headless \
    --frames 5 --timeout 5 2>&1)" && rc=1
  echo "uid 3000 outside the group: ${out##*$'\n'}"
  [[ "$out" == *"no permission to read channel"*"mode 640"* ]] || rc=1
  d rm -f "$w" >/dev/null
  return $rc
}
check "another uid: refused on 0600 with what to do; --mode 0o640 and the group admit it" \
  timed other_uid

no_leftovers() {
  local left
  left="$(d ps -aq --filter "label=$label")$(leftovers)"
  [ -z "$left" ] || { echo "left: $left"; return 1; }
}
check "no container of this run and nothing in /dev/shm left" no_leftovers

echo "part: $((SECONDS - t_part)) s (engine start, base image, binary, image and scenarios)"
echo "docker: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
