# Shared helpers for scripts/test.sh and scripts/test.d/*.sh (sourced, not run).
# Every part installs what it needs itself, so a fresh machine (Rust, gcc, Python 3.11) suffices.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
export CARGO_TERM_COLOR=never

# need_apt PKG...: installs Debian packages that are missing (apt-get update once per machine).
need_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ ! -f /tmp/.shmframe-apt-updated ]; then
    $sudo apt-get update -qq >/dev/null && touch /tmp/.shmframe-apt-updated
  fi
  echo "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Every cargo command that builds the CLI uses the same features, so the workspace is built once
# and no step relinks `target/debug/shmframe` with a different feature set.
CLI_FEATURES="--features shmframe-cli/gstreamer,shmframe-cli/zenoh,shmframe/tokio"

# need_build_deps: system packages the workspace needs to build with $CLI_FEATURES, and to run
# the GStreamer source's tests (clips made with gst-launch-1.0) in the main `cargo test` step.
need_build_deps() {
  need_apt pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-tools
}

# need_venv: creates .venv (once) and activates it.
need_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
  fi
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
}

# need_pip PKG...: installs PyPI packages into .venv.
need_pip() {
  need_venv
  python -m pip install -q "$@"
}

# build_shared: the one debug build every step shares (the main `cargo build` step's exact
# command, so a no-op after it). Any other package selection or feature set would unify
# features differently and rebuild half the workspace.
build_shared() {
  # shellcheck disable=SC2086
  cargo test -q --workspace $CLI_FEATURES --no-run
}

# Set-ups of the parts that build with other flags or toolchains: loom (60), miri (61), fuzzing
# (62), and the release build of the README's demo (90). scripts/test.sh runs them in the
# background while the steps before those parts test (they mostly wait on processes, sleeps and
# containers); each part runs its own again, a no-op by then. One lock serializes them, so
# nothing is built twice at once.
prebuilt() {
  mkdir -p "$ROOT/target"
  (
    flock 9
    "$@"
  ) 9>"$ROOT/target/.prebuild.lock"
}
LOOM_ARGS=(-p shmframe --lib --release --target-dir "$ROOT/target/loom")
# Our own cfg name: `--cfg loom` would also switch tokio (a dev-dependency) to its loom model.
LOOM_RUSTFLAGS="--cfg shmframe_loom"
loom_setup() {
  RUSTFLAGS="$LOOM_RUSTFLAGS" cargo test -q "${LOOM_ARGS[@]}" --no-run
}
miri_setup() {
  if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "installing the nightly toolchain's miri and rust-src components"
    rustup toolchain install nightly --profile minimal --component miri,rust-src >/dev/null 2>&1 ||
      rustup component add miri rust-src --toolchain nightly >/dev/null 2>&1
  fi
  cargo +nightly miri --version >/dev/null 2>&1 && cargo +nightly miri setup >/dev/null 2>&1
}
release_setup() {
  # What the README's `cargo run --release -- demo` builds (90-readme runs it as written).
  cargo build -q --release -p shmframe-cli
}
fuzz_setup() {
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet || return 1
  fi
  # cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets stable accept them.
  (cd "$ROOT/fuzz" && RUSTC_BOOTSTRAP=1 cargo fuzz build -O)
}

# The debug build of the shmframe binary that every step shares.
shmframe_bin() {
  echo "$ROOT/target/debug/shmframe"
}

# leftovers: lists our objects in /dev/shm (tests must remove what they create).
leftovers() {
  ls /dev/shm 2>/dev/null | grep -E '^(shmframe\.|sem\.shmframe|shmframe-test|sft-)' || true
}

# xvfb_start DIR [WxHxD]: starts Xvfb on a free display (Xvfb picks it and tells it on fd 3),
# its output in DIR/xvfb.log, and waits until the display answers a client (xdpyinfo, x11-utils);
# sets XVFB_PID and XVFB_DISPLAY. Returns 1, with Xvfb's log printed, if none answers in 10 s.
xvfb_start() {
  local dir="$1" screen="${2:-800x600x24}" _
  XVFB_DISPLAY=""
  rm -f "$dir/display"
  exec 3>"$dir/display"
  Xvfb -displayfd 3 -screen 0 "$screen" -nolisten tcp >"$dir/xvfb.log" 2>&1 &
  XVFB_PID=$!
  exec 3>&-
  for _ in $(seq 100); do
    if [ -s "$dir/display" ]; then
      XVFB_DISPLAY=":$(head -n1 "$dir/display")"
      xdpyinfo -display "$XVFB_DISPLAY" >/dev/null 2>&1 && return 0
    fi
    kill -0 "$XVFB_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "Xvfb (pid $XVFB_PID) did not answer on display '${XVFB_DISPLAY}':"
  cat "$dir/xvfb.log"
  kill "$XVFB_PID" 2>/dev/null
  wait "$XVFB_PID" 2>/dev/null
  return 1
}

# xvfb_answers: whether the Xvfb of xvfb_start is alive and its display answers.
xvfb_answers() {
  kill -0 "$XVFB_PID" 2>/dev/null && xdpyinfo -display "$XVFB_DISPLAY" >/dev/null 2>&1
}

# check TITLE COMMAND...: runs one check of a part script, counting it in $passed / $failed.
passed=0
failed=0
check() {
  local title="$1"
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $title"
  else
    failed=$((failed + 1))
    echo "FAILED: $title"
  fi
}

# skip_or_fail WHAT: ends a part whose environment is missing (WHAT says what is missing and
# which tests did not run). Exits 77, which scripts/test.sh counts as skipped; under CI=true,
# where every part must run, exits 1 instead.
skip_or_fail() {
  if [ "${CI:-}" = true ]; then
    echo "FAILED: $1 (CI=true: every part must run)"
    exit 1
  fi
  echo "SKIPPED: $1"
  exit 77
}
