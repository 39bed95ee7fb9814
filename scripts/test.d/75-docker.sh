#!/usr/bin/env bash
# Containers on a real Docker engine: Debian's docker.io (installed if missing, dockerd started
# here and stopped at the end), the image built by scripts/docker-image.sh, then the scenarios of
# docs/containers.md: the article's writer and readers, the compose file, a too small /dev/shm, a
# killed writer, readers under another uid; then socket-served channels between containers that
# share only a directory (4K frames past the default /dev/shm, a killed writer replaced, other
# uids, examples/compose-socket.yaml). Exit code 77 (skipped) when no engine can start, a failure
# on CI (CI=true). The namespace emulation (50-containers) is the fast layer.
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
sproj="$proj-socket"              # the compose project of examples/compose-socket.yaml
cleanup() {
  if [ -n "${DOCKER:-}" ] && docker_answers; then
    docker_compose -p "$proj" -f examples/compose.yaml down -t 1 >/dev/null 2>&1
    docker_compose -p "$sproj" -f examples/compose-socket.yaml down -v -t 1 >/dev/null 2>&1
    local ids p
    ids="$("$DOCKER" ps -aq --filter "label=$label")"
    for p in "$proj" "$sproj"; do
      ids="$ids $("$DOCKER" ps -aq --filter "label=com.docker.compose.project=$p")"
    done
    # shellcheck disable=SC2086
    [ -n "${ids// /}" ] && "$DOCKER" rm -f $ids >/dev/null 2>&1
    # Volumes after the containers that use them.
    ids="$("$DOCKER" volume ls -q --filter "label=$label")"
    ids="$ids $("$DOCKER" volume ls -q --filter "label=com.docker.compose.project=$sproj")"
    # shellcheck disable=SC2086
    [ -n "${ids// /}" ] && "$DOCKER" volume rm -f $ids >/dev/null 2>&1
  fi
  docker_engine_stop
  # The engine's log, if this run started it (its tail was shown if it did not start).
  [ -n "$DOCKERD_LOG" ] && rm -f "$DOCKERD_LOG"
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
old_img="$("$DOCKER" image inspect -f '{{.Id}}' "$img" 2>/dev/null)"
SHMFRAME_IMAGE_PROFILE="${SHMFRAME_IMAGE_PROFILE:-debug}" scripts/docker-image.sh "$img" || {
  check "scripts/docker-image.sh builds the image" false
  echo "docker: $passed passed, $failed failed"
  exit 1
}
echo "image built in $((SECONDS - t0)) s"
# The previous build of the tag, now untagged: removed, so that runs do not pile images up.
if [ -n "$old_img" ] && [ "$old_img" != "$("$DOCKER" image inspect -f '{{.Id}}' "$img")" ] &&
  [ -z "$("$DOCKER" image inspect -f '{{join .RepoTags ""}}' "$old_img" 2>/dev/null)" ]; then
  "$DOCKER" image rm "$old_img" >/dev/null 2>&1 || true
fi

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

# ---- Socket-served channels: containers that share only a directory ----------------------------
# The writer serves its channel on a Unix socket in a directory mounted into every container (a
# bind-mounted host directory, or a named volume); its memory is an anonymous memfd handed to each
# reader over the socket. No --ipc and no --shm-size: nothing goes to /dev/shm, so Docker's default
# 64 MiB does not limit the ring.
sock=/run/shmframe/cam.sock
# sock_volume NAME: a named volume for sockets, as examples/compose-socket.yaml declares it: a
# tmpfs owned by the image's user (uid 1000), mode 0755 (others may connect where a socket's mode
# lets them). A plain named volume would be root's, and the image's user could not bind in it.
sock_volume() {
  d volume create --label "$label" --driver local --opt type=tmpfs --opt device=tmpfs \
    --opt o=uid=1000,gid=1000,mode=0755 "$1" >/dev/null
}
# json_ok JSON FRAMES: a reader's --json line reports FRAMES frames, none torn.
json_ok() {
  python3 -c 'import json, sys; j = json.loads(sys.argv[1])
sys.exit(not (j["frames"] == int(sys.argv[2]) and j["torn"] == 0))' "$1" "$2" 2>/dev/null
}
# until_ok TRIES COMMAND...: runs COMMAND every 0.2 s until it succeeds (at most TRIES times).
until_ok() {
  local n="$1"
  shift
  for _ in $(seq "$n"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
skipped=0
skip_check() {
  skipped=$((skipped + 1))
  echo "SKIPPED: $1"
}

# stop_leaves_nothing WRITER LIST…: `docker stop` of a socket-serving writer exits 0, says its
# socket was removed, and LIST… (a listing of the shared directory) then prints nothing.
stop_leaves_nothing() {
  local w="$1" out rc=0
  shift
  d stop -t 10 "$w" >/dev/null || rc=1
  [ "$(d inspect -f '{{.State.ExitCode}}' "$w")" = 0 ] || rc=1
  out="$(d logs "$w" 2>&1 | tail -n 1)"
  echo "writer after docker stop: $out"
  [[ "$out" == *"its socket removed"* ]] || rc=1
  out="$("$@")"
  echo "the shared directory afterwards: [$out]"
  [ -z "$out" ] || rc=1
  return $rc
}

# (a) 3840x2160x3 frames between two containers that share only a bind-mounted host directory.
# A named 4K ring of 3 slots takes about 71.2 MiB (docs/containers.md section 2): it would not
# even fit Docker's default 64 MiB /dev/shm — the same writer without --socket fails with the
# library's --shm-size message, proved first.
socket_4k() {
  local w="$name-s4w" r="$name-s4r" dir="$work/sock-4k" rc=0 out
  mkdir "$dir" && chown 1000:1000 "$dir" || return 1
  local m=(-v "$dir:/run/shmframe")
  out="$(drun --rm "$img" write cam --size 3840x2160 --frames 1 2>&1)" && rc=1
  echo "named 4K ring, default /dev/shm: ${out##*$'\n'}"
  if [[ "$out" =~ needs\ ([0-9]+)\ bytes\ but\ /dev/shm\ has\ only\ ([0-9]+)\ free ]]; then
    [ "${BASH_REMATCH[1]}" -gt $((64 << 20)) ] && [ "${BASH_REMATCH[2]}" -le $((64 << 20)) ] &&
      [[ "$out" == *"--shm-size"* ]] || rc=1
  else
    rc=1
  fi
  drun -d --name "$w" "${m[@]}" "$img" write cam --socket "$sock" --size 3840x2160 --fps 10 \
    >/dev/null || return 1
  drun -d --name "$r" "${m[@]}" "$img" read --socket "$sock" --headless --frames 40 \
    --timeout 30 --json >/dev/null || rc=1
  # While the reader receives: it maps the writer's memfds, and neither /dev/shm holds anything.
  until_ok 50 d exec "$r" grep -q 'memfd:shmframe' /proc/1/maps || {
    echo "the reader never mapped the channel's memfd"
    rc=1
  }
  out="$(d exec "$r" shmframe info --socket "$sock" 2>&1 | sed -n 's/^memory *//p')"
  echo "shmframe info --socket in the reader's container: memory $out"
  [[ "$out" =~ memfd,\ ([0-9]+)\ bytes ]] && [ "${BASH_REMATCH[1]}" -gt $((64 << 20)) ] || rc=1
  local c
  for c in "$w" "$r"; do
    out="$(d exec "$c" ls -A /dev/shm 2>&1)" || rc=1
    echo "${c#"$name-"}: /dev/shm holds [${out//$'\n'/ }], $(d exec "$c" df -k /dev/shm |
      awk 'NR == 2 { print $2 " KiB, " $3 " KiB used" }')"
    [ -z "$out" ] || rc=1
  done
  [ "$(timeout 60 "$DOCKER" wait "$r")" = 0 ] || rc=1
  out="$(d logs "$r" 2>/dev/null | tail -n 1)"
  echo "reader: $out"
  json_ok "$out" 40 && [[ "$out" == *'"shape":[2160,3840,3]'* ]] || rc=1
  # A clean stop removes the socket: nothing is left in the shared directory.
  stop_leaves_nothing "$w" ls -A "$dir" || rc=1
  [ "$rc" = 0 ] || d logs "$w" 2>&1 | tail -n 5
  d rm -f "$w" "$r" >/dev/null
  return $rc
}
title="socket: containers sharing only a directory (no --ipc, default 64 MiB /dev/shm) exchange"
check "$title 4K frames, none torn; no /dev/shm object on either side; the named ring would not fit" \
  timed socket_4k

# The Python reader over a socket (shmframe.Reader(socket=…)), where the image's wheel has it.
socket_python() {
  local w="$name-spw" v="$name-spvol" rc=0 out
  sock_volume "$v" || return 1
  drun -d --name "$w" -v "$v:/run/shmframe" "$img" write cam --socket "$sock" --fps 30 \
    >/dev/null || return 1
  out="$(drun --rm -v "$v:/run/shmframe" --entrypoint python3 "$img" -c 'import shmframe, sys
with shmframe.Reader(socket=sys.argv[1], timeout=10) as r:
    f = r.read(10)
    print(r.name, list(f.array.shape), f.array.dtype)' "$sock" 2>&1)" || rc=1
  echo "python reader: ${out##*$'\n'}"
  [ "${out##*$'\n'}" = "cam [480, 640, 3] uint8" ] || rc=1
  d rm -f "$w" >/dev/null
  d volume rm "$v" >/dev/null || rc=1
  return $rc
}
if drun --rm --entrypoint python3 "$img" -c 'import inspect, shmframe, sys
sys.exit("socket" not in inspect.signature(shmframe.Reader).parameters)' 2>/dev/null; then
  check "socket: a Python reader (shmframe.Reader(socket=…)) in another container gets frames" \
    timed socket_python
else
  skip_check "socket: the Python reader (the image's shmframe.Reader has no socket= yet)"
fi

# (b) docker kill of the writer: the reader (started first, waiting for the socket) reports it
# gone; a new writer container on the same volume replaces the stale socket, and the reader goes
# on. A container that only mounts the volume keeps the tmpfs mounted and looks into it.
# holds PATTERN CMD...: CMD's output (stdout and stderr) contains PATTERN. The output is taken
# whole before grep looks: `CMD | grep -q` under pipefail fails at random when grep exits at the
# first match while CMD is still writing (SIGPIPE).
holds() {
  local pattern="$1" out
  shift
  out="$("$@" 2>&1)"
  grep -q -- "$pattern" <<<"$out"
}
says_it_waits() {
  holds "waiting up to .* for the channel served on \`$sock\`" d logs "$1"
}
socket_killed() {
  local w="$name-skw" r="$name-skr" look="$name-slook" v="$name-skvol" rc=0 out t g
  sock_volume "$v" || return 1
  local m=(-v "$v:/run/shmframe")
  drun -d --name "$look" "${m[@]}" --entrypoint sleep "$img" infinity >/dev/null || return 1
  drun -d --name "$r" "${m[@]}" "$img" read --socket "$sock" --headless --frames 150 \
    --timeout 60 --json >/dev/null || rc=1
  # The writer starts only once the reader says it waits (a container may take longer to start
  # than the reader's first 100 ms look at the socket).
  until_ok 50 says_it_waits "$r" || rc=1
  drun -d --name "$w-1" "${m[@]}" "$img" write cam --socket "$sock" --fps 30 >/dev/null || rc=1
  sleep 2
  t="$(date +%s.%N)"
  d kill "$w-1" >/dev/null || rc=1
  sleep 1.2
  g="$(gone_after "$t" "$r")"
  echo "reader: writer gone after $g s: $(d logs "$r" 2>&1 | grep -o 'the writer of .* is gone' |
    head -n 1)"
  python3 -c 'import sys; sys.exit(not float(sys.argv[1]) <= 1.0)' "$g" 2>/dev/null || rc=1
  says_it_waits "$r" || {
    echo "the reader did not say that it waits for the socket"
    rc=1
  }
  out="$(d exec "$look" ls -A /run/shmframe)"
  echo "the volume after the kill: [$out]"
  [ "$out" = cam.sock ] || rc=1
  out="$(d exec "$look" shmframe info --socket "$sock" 2>&1)" && rc=1
  echo "shmframe info --socket: ${out##*$'\n'}"
  [[ "$out" == *"stale socket"* ]] || rc=1
  drun -d --name "$w-2" "${m[@]}" "$img" write cam --socket "$sock" --fps 30 >/dev/null || rc=1
  [ "$(timeout 30 "$DOCKER" wait "$r")" = 0 ] || rc=1
  out="$(d logs "$r" 2>/dev/null | tail -n 1)"
  echo "reader, after the second writer: $out"
  json_ok "$out" 150 || rc=1
  out="$(d exec "$look" ls -A /run/shmframe)"
  echo "the volume with the second writer: [$out]"
  [ "$out" = cam.sock ] || rc=1
  holds '(alive)' d exec "$look" shmframe info --socket "$sock" || rc=1
  stop_leaves_nothing "$w-2" d exec "$look" ls -A /run/shmframe || rc=1
  [ "$rc" = 0 ] || d logs "$r" 2>&1 | tail -n 5
  d rm -f "$look" "$r" "$w-1" "$w-2" >/dev/null
  d volume rm "$v" >/dev/null || rc=1
  return $rc
}
title="socket: docker kill of the writer: the reader sees it gone within 1 s; a new writer on the"
check "$title volume replaces the stale socket and the reader goes on; docker stop leaves nothing" \
  timed socket_killed

# (c) Readers under other uids. The default mode 0600: the socket file refuses uid 2000 (EACCES,
# with what to do); root passes the file's mode but not the writer's SO_PEERCRED check, and the
# writer logs it. --mode 0o660 and the writer's group admit a reader in that group only.
socket_uids() {
  local w="$name-suw" v="$name-suvol" rc=0 out
  sock_volume "$v" || return 1
  local m=(-v "$v:/run/shmframe")
  drun -d --name "$w" "${m[@]}" --user 1000:1000 "$img" write cam --socket "$sock" --fps 30 \
    >/dev/null || return 1
  out="$(drun --rm "${m[@]}" --user 2000:2000 "$img" read --socket "$sock" --headless \
    --frames 5 --timeout 10 2>&1)" && rc=1
  echo "uid 2000, mode 0600: ${out##*$'\n'}"
  [[ "$out" == *"no permission to connect to \`$sock\` (mode 600, owner uid 1000)"*"--mode 0o660"*"join its group"* ]] ||
    rc=1
  out="$(drun --rm "${m[@]}" --user 0:0 "$img" read --socket "$sock" --headless --frames 5 \
    --timeout 10 2>&1)" && rc=1
  echo "root, mode 0600: ${out##*$'\n'}"
  [[ "$out" == *"refused this process"*"admits uid 1000"*"runs as uid 0"* ]] || rc=1
  # The writer prints the peers it refused after its next frame.
  for _ in $(seq 25); do
    out="$(d logs "$w" 2>&1 | grep 'refused a reader' | head -n 1)"
    [ -n "$out" ] && break
    sleep 0.2
  done
  echo "writer: $out"
  [[ "$out" == *"uid 0, gid 0)"* ]] || rc=1
  d rm -f "$w" >/dev/null
  drun -d --name "$w" "${m[@]}" --user 1000:4242 "$img" write cam --socket "$sock" \
    --mode 0o660 --fps 30 >/dev/null || return 1
  out="$(drun --rm "${m[@]}" --user 2000:2000 --group-add 4242 "$img" read --socket "$sock" \
    --headless --frames 10 --timeout 10 --json)" || rc=1
  echo "uid 2000 in group 4242, mode 0660: $out"
  json_ok "${out##*$'\n'}" 10 || rc=1
  out="$(drun --rm "${m[@]}" --user 3000:3000 "$img" read --socket "$sock" --headless \
    --frames 5 --timeout 10 2>&1)" && rc=1
  echo "uid 3000 outside the group: ${out##*$'\n'}"
  [[ "$out" == *"no permission to connect to"*"mode 660"* ]] || rc=1
  d rm -f "$w" >/dev/null
  d volume rm "$v" >/dev/null || rc=1
  return $rc
}
title="socket: another uid is refused on 0600 with what to do, root by the writer (logged);"
check "$title --mode 0o660 and the group admit it" timed socket_uids

# (d) examples/compose-socket.yaml: writer and reader share a named volume, no ipc:.
compose_socket() {
  local c=(-p "$sproj" -f examples/compose-socket.yaml) n=0 rc=1 s out
  docker_compose "${c[@]}" up -d || return 1
  for _ in $(seq 60); do
    n="$(docker_compose "${c[@]}" logs --no-color reader 2>/dev/null |
      sed -n 's/.*camera: \([0-9]*\) frames.*/\1/p' | tail -n 1)"
    [ "${n:-0}" -ge 60 ] && rc=0 && break
    sleep 0.5
  done
  echo "compose reader: ${n:-0} frames"
  for s in writer reader; do
    local id
    id="$(docker_compose "${c[@]}" ps -q "$s")"
    local ipc size held
    ipc="$(d inspect -f '{{.HostConfig.IpcMode}}' "$id")"
    size="$(d exec "$id" df -k /dev/shm | awk 'NR == 2 { print $2 }')"
    held="$(d exec "$id" ls -A /dev/shm)"
    echo "$s: ipc $ipc, /dev/shm of $size KiB holding [${held//$'\n'/ }]"
    [[ "$ipc" != container:* ]] && [ "$size" = 65536 ] && [ -z "$held" ] || rc=1
  done
  [ "$rc" = 0 ] || docker_compose "${c[@]}" logs --no-color | tail -n 20
  docker_compose "${c[@]}" down -v -t 5 || rc=1
  [ -z "$(d ps -aq --filter "label=com.docker.compose.project=$sproj")" ] || rc=1
  [ -z "$(d volume ls -q --filter "label=com.docker.compose.project=$sproj")" ] || rc=1
  return $rc
}
check "docker compose -f examples/compose-socket.yaml up: no ipc:, the reader receives 60 frames; down -v" \
  timed compose_socket

no_leftovers() {
  local left
  left="$(d ps -aq --filter "label=$label")$(d volume ls -q --filter "label=$label")$(leftovers)"
  [ -z "$left" ] || { echo "left: $left"; return 1; }
}
check "no container or volume of this run and nothing in /dev/shm left" no_leftovers

echo "part: $((SECONDS - t_part)) s (engine start, base image, binary, image and scenarios)"
echo "docker: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
