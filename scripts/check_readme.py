"""Runs the README's code blocks as a newcomer would type them.

- ```rust blocks are compiled and run as doctests of the `shmframe` crate (`cargo test --doc`),
  through `crates/shmframe/src/lib.rs`, which includes README.md under cfg(doctest).
- ```python blocks: the "terminal 1" writer is started, then the "terminal 2" reader two seconds
  later, as the README says; then again in the other order (the reader waits for the channel). Both
  with the .venv's Python (where scripts/test.d/40-python.sh installed the package).
- ```sh blocks run with bash, with the workspace's `shmframe` build first on PATH. A block whose
  commands put a process in the background is run and then waited for; the bridge block is fed by a
  writer and checked by a reader of the copied channel. `scripts/test.sh` is not run again (this
  runs inside it).
- The ```sh block with docker commands runs on a Docker engine: one that answers, else dockerd is
  started for it (scripts/docker-lib.sh) and stopped afterwards; `docker compose` is Debian
  bookworm's `docker-compose` where the Compose plugin is missing, and the compose project gets a
  name of its own. Without an engine the block is reported as skipped (a failure when CI=true).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md")).read()
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", README, re.S | re.M)
BIN_DIR = os.environ.get("SHMFRAME_BIN_DIR", os.path.join(ROOT, "target", "debug"))
# What the blocks leave in the temporary directory (the demo keeps its reader's snapshot there,
# dockerd its log) goes into one of this run's own, removed at the end.
TMP = tempfile.mkdtemp(prefix="shmframe-readme-")
ENV = dict(os.environ, PATH=BIN_DIR + os.pathsep + os.environ["PATH"], TMPDIR=TMP)
PY = os.environ.get("SHMFRAME_TEST_PYTHON", sys.executable)

passed = failed = skipped = 0


def check(title, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {title}")
    else:
        failed += 1
        print(f"FAILED: {title}\n{detail}")


def run(cmd, timeout, **kw):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout, **kw)


# Runs a block of docker commands (argument 1) in bash on an engine, as described above.
DOCKER_HARNESS = r"""
source scripts/lib.sh
source scripts/docker-lib.sh
docker_engine_start >&2 || exit 77
export COMPOSE_PROJECT_NAME="shmframe-readme-$$"
# scripts/docker-image.sh from the debug build the tests share (see scripts/test.d/75-docker.sh).
export SHMFRAME_IMAGE_PROFILE="${SHMFRAME_IMAGE_PROFILE:-debug}"
trap 'docker_compose -f examples/compose.yaml down -t 1 >/dev/null 2>&1; docker_engine_stop' EXIT
docker() {
  if [ "${1:-}" = compose ]; then
    shift
    docker_compose "$@"
  else
    "$DOCKER" "$@"
  fi
}
export DOCKER
export -f docker docker_compose
bash -e -c "$1"
"""


def docker_block(code):
    global skipped
    r = run(["bash", "-c", DOCKER_HARNESS, "docker-block", code], timeout=1800)
    out = r.stdout + r.stderr
    if r.returncode == 77:
        if os.environ.get("CI") == "true":
            check("docker block: no Docker engine could be started (CI=true: it must run)", False, out[-3000:])
        else:
            skipped += 1
            print(f"SKIPPED: docker block (no Docker engine could be started)\n{out[-1000:]}")
        return
    # The block's reader stops after --frames N and says how many it received.
    n = re.search(r"--frames (\d+)", code)
    ok = r.returncode == 0 and n is not None and f"read: {n.group(1)} frames" in out
    check("docker block: image built, compose up, a reader joins the writer's IPC namespace, down",
          ok, out[-4000:])


def sh_block(code):
    lines = [l for l in code.splitlines() if l.strip()]
    if any(l.startswith("docker") or l.startswith("scripts/docker-image.sh") for l in lines):
        docker_block(code)
        return
    if any("scripts/test.sh" in l for l in lines):
        ci = open(os.path.join(ROOT, ".ci", "run")).read()
        check("README's test command is what .ci/run runs", "scripts/test.sh" in ci)
        # The demo line is the other half of this block.
        demo = [l for l in lines if "demo" in l]
        for l in demo:
            cmd = l.split("#")[0].strip()
            r = run(["bash", "-c", cmd], timeout=1500)
            check(f"`{cmd}`", r.returncode == 0 and "torn" in r.stdout + r.stderr,
                  r.stdout[-2000:] + r.stderr[-2000:])
        return
    if "bridge" in code:
        feeder = subprocess.Popen(["shmframe", "write", "cam0", "--fps", "30"], cwd=ROOT, env=ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        block = subprocess.Popen(["bash", "-c", code], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            r = run(["shmframe", "read", "cam0-copy", "--headless", "--frames", "10", "--timeout", "60",
                     "--json"], timeout=120)
            ok = r.returncode == 0 and json.loads(r.stdout.strip().splitlines()[-1])["frames"] == 10
            check("bridge block: frames of cam0 arrive in cam0-copy through Zenoh", ok, r.stdout + r.stderr)
        finally:
            os.killpg(block.pid, 2)
            feeder.send_signal(2)
            block.wait(timeout=30)
            feeder.wait(timeout=30)
        return
    # set -e and waiting for each background job by its pid: a failing command, in the foreground
    # or the background, fails the block; each `--json` reader must report its `--frames N`.
    script = "set -e\n" + code + "\nfor j in $(jobs -p); do wait \"$j\"; done\n"
    r = run(["bash", "-c", script], timeout=300)
    wanted = [int(m) for l in lines if "--json" in l for m in re.findall(r"--frames (\d+)", l)]
    got = [json.loads(l).get("frames") for l in r.stdout.splitlines() if l.startswith("{")]
    check(f"sh block `{lines[0][:60]}…`: every command succeeded, readers got {got} of {wanted} frames",
          r.returncode == 0 and got == wanted, r.stdout[-3000:] + r.stderr[-3000:])


def python_blocks(blocks):
    writer = next(c for c in blocks if c.startswith("# terminal 1"))
    reader = next(c for c in blocks if c.startswith("# terminal 2"))
    for first, second in (("writer", "reader"), ("reader", "writer")):
        code = {"writer": writer, "reader": reader}
        p1 = subprocess.Popen([PY, "-c", code[first]], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)
        r2 = run([PY, "-c", code[second]], timeout=120)
        out1, err1 = p1.communicate(timeout=120)
        w, rd = (p1.returncode, err1), (r2.returncode, r2.stdout, r2.stderr)
        if first == "reader":
            w, rd = (r2.returncode, r2.stderr), (p1.returncode, out1, err1)
        lines = rd[1].splitlines()
        # The writer's stream lasts 10 s; a reader joining 2 s late still sees most of it, and
        # ends by itself when the writer's block closes the channel.
        ok = w[0] == 0 and rd[0] == 0 and len(lines) >= 100
        check(f"python blocks, {first} first: {len(lines)} frames read, reader ended by itself",
              ok, w[1] + rd[1][-1000:] + rd[2][-2000:])

rust = [c for lang, c in BLOCKS if lang == "rust"]
if rust:
    r = subprocess.run(["cargo", "test", "-q", "-p", "shmframe", "--doc", "ReadmeDoctests"], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    ok = r.returncode == 0 and f"{len(rust)} passed" in r.stdout
    check(f"rust blocks ({len(rust)}) as doctests", ok, r.stdout[-3000:] + r.stderr[-3000:])
python_blocks([c for lang, c in BLOCKS if lang == "python"])
for lang, code in BLOCKS:
    if lang == "sh":
        sh_block(code)
shutil.rmtree(TMP, ignore_errors=True)
print(f"readme: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
