#!/usr/bin/env bash
# C and C++ (crates/shmframe-c): installs libshmframe with scripts/install-c.sh into a temporary
# prefix, compiles the C and C++ tests against the *installed* header with pkg-config and
# -Wall -Wextra -Werror, and runs every side as its own process: C -> C, C -> Python,
# Python -> C++, the shmframe command -> C, C -> C and C -> C++ through a socket-served channel
# (a Unix socket in a temporary directory); bad input through every entry point under valgrind;
# cv::Mat in and out; the CMake examples (find_package(shmframe)), show.cpp's window under Xvfb;
# and a video the test makes, decoded by examples/cpp/write.cpp into a channel whose pixels a
# Python reader checks.
# Exits 77 (skipped) when the C/C++ toolchain cannot be installed, except in CI (CI=true).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source scripts/lib.sh

missing_tools() {
  local why="$1"
  if [ "${CI:-}" = true ]; then
    echo "65-c: FAILED — $why"
    exit 1
  fi
  echo "65-c: SKIPPED — $why"
  exit 77
}

need_apt g++ cmake make pkg-config valgrind libopencv-dev xvfb x11-utils xdotool ||
  missing_tools "could not install g++, cmake, pkg-config, valgrind, libopencv-dev, xvfb, xdotool with apt"
for tool in gcc g++ cmake make pkg-config valgrind readelf Xvfb xwininfo xdotool; do
  command -v "$tool" >/dev/null || missing_tools "$tool is not installed"
done
pkg-config --exists opencv4 || missing_tools "OpenCV's pkg-config file (libopencv-dev) is missing"

work="$(mktemp -d "${TMPDIR:-/tmp}/sft-c-XXXXXX")"
tag="sft-c-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$work"
  rm -f /dev/shm/shmframe."$tag"-* 2>/dev/null
}
trap cleanup EXIT

tests=crates/shmframe-c/tests
prefix="$work/prefix"
CWARN=(-Wall -Wextra -Werror)

# ---- install and compile against what was installed --------------------------------------------

check "scripts/install-c.sh --prefix DIR (dev profile)" \
  scripts/install-c.sh --prefix "$prefix" --profile dev

installed_layout() {
  local ok=0 f
  for f in include/shmframe.h include/shmframe.hpp lib/libshmframe.a lib/pkgconfig/shmframe.pc \
    lib/cmake/shmframe/shmframe-config.cmake lib/cmake/shmframe/shmframe-config-version.cmake; do
    [ -f "$prefix/$f" ] || { echo "missing: $f"; ok=1; }
  done
  local soname
  soname="$(readelf -d "$prefix/lib/libshmframe.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
  [[ "$soname" == libshmframe.so.* ]] || { echo "soname: '$soname'"; ok=1; }
  [ -L "$prefix/lib/libshmframe.so" ] && [ -e "$prefix/lib/$soname" ] || { echo "symlinks"; ok=1; }
  # Only the C API is exported: no Rust symbols leak out of the shared library.
  local foreign
  foreign="$(nm -D --defined-only "$prefix/lib/libshmframe.so" | awk '$2 == "T" {print $3}' |
    grep -v '^shmframe_' | head -5)"
  [ -z "$foreign" ] || { echo "exported non-API functions: $foreign"; ok=1; }
  cmp -s crates/shmframe-c/include/shmframe.h "$prefix/include/shmframe.h" || { echo "header"; ok=1; }
  return $ok
}
check "installed: header, libshmframe.so with soname, .a, pkg-config, CMake config" installed_layout

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# shellcheck disable=SC2046
check "C test compiles: gcc -std=c11 ${CWARN[*]} \$(pkg-config --cflags --libs shmframe)" \
  gcc -std=c11 "${CWARN[@]}" -g $(pkg-config --cflags shmframe) "$tests/c/peer.c" \
  -o "$work/peer" $(pkg-config --libs shmframe)
# shellcheck disable=SC2046
check "C test links statically: pkg-config --static --libs shmframe" \
  gcc -std=c11 "${CWARN[@]}" $(pkg-config --cflags shmframe) "$tests/c/peer.c" \
  -o "$work/peer-static" "$prefix/lib/libshmframe.a" $(pkg-config --static --libs-only-l shmframe | sed 's/-lshmframe//')
# shellcheck disable=SC2046
check "C++ test compiles: g++ -std=c++17 ${CWARN[*]} \$(pkg-config --cflags --libs shmframe opencv4)" \
  g++ -std=c++17 "${CWARN[@]}" $(pkg-config --cflags shmframe opencv4) "$tests/cpp/peer.cpp" \
  -o "$work/peer-cpp" $(pkg-config --libs shmframe opencv4)
header_alone() {
  # The C header in strict C99 and C++ (with -pedantic), and the C++ header without OpenCV.
  printf '#include <shmframe.h>\nint main(void) { return shmframe_version() == 0; }\n' >"$work/h.c"
  printf '#include <shmframe.hpp>\nint main() { return shmframe::version().empty(); }\n' >"$work/h.cpp"
  gcc -std=c99 -pedantic "${CWARN[@]}" -I"$prefix/include" -c "$work/h.c" -o "$work/h.o" &&
    g++ -std=c++17 -pedantic "${CWARN[@]}" -I"$prefix/include" "$work/h.cpp" -o "$work/h-cpp" \
      -L"$prefix/lib" -lshmframe && "$work/h-cpp" &&
    ! grep -q SHMFRAME_HAS_OPENCV <(g++ -std=c++17 -dM -E -I"$prefix/include" "$work/h.cpp")
}
check "headers alone: C99 -pedantic, C++17 without OpenCV" header_alone
readme_cpp() {
  awk '/^```cpp$/ {f = 1; next} /^```$/ {f = 0} f' README.md >"$work/readme.cpp"
  [ -s "$work/readme.cpp" ] &&
    # shellcheck disable=SC2046
    g++ -std=c++17 "${CWARN[@]}" $(pkg-config --cflags shmframe opencv4) -c "$work/readme.cpp" \
      -o "$work/readme.o"
}
check "the README's C++ block compiles" readme_cpp

# ---- bad input, memory errors ---------------------------------------------------------------

VALGRIND=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
  --show-leak-kinds=definite,indirect)
# `peer bad DIR` also serves and connects to sockets in DIR (missing, stale, foreign, live ones).
mkdir -p "$work/bad" "$work/bad-static"
check "bad input through every entry point, under valgrind: no crash, no leak, no invalid access" \
  "${VALGRIND[@]}" "$work/peer" bad "$work/bad"
check "bad input, statically linked" "$work/peer-static" bad "$work/bad-static"

# ---- one process per side ------------------------------------------------------------------------

# pair NAME "READER..." "WRITER...": starts the reader, then the writer; both must succeed.
pair() {
  local name="$1" reader="$2" writer="$3"
  rm -f "$work/go-$name" "$work/go-$name.done"
  timeout 120 bash -c "$reader" &
  local rp=$!
  pids+=("$rp")
  timeout 120 bash -c "$writer"
  local wrc=$?
  wait "$rp"
  local rrc=$?
  [ $wrc -eq 0 ] && [ $rrc -eq 0 ]
}

N=20
c_c() {
  local ch="$tag-cc"
  pair "$ch" "${VALGRIND[*]} '$work/peer' read $ch $N '$work/go-$ch'" \
    "'$work/peer' write $ch $N '$work/go-$ch'"
}
check "C -> C: copies and loans in, views and copies out (reader under valgrind)" c_c

# Socket-served channels: the writer keeps the channel in a memfd and hands it to each reader
# that connects to a Unix socket in a temporary directory. The reader starts first (it waits for
# the socket), checks that nothing of the channel is in /dev/shm; closing removes the socket.
mkdir -p "$work/sock"
c_c_socket() {
  local ch="$tag-ccs" sock="$work/sock/$tag-ccs.sock"
  pair "$ch" "${VALGRIND[*]} '$work/peer' read $ch $N '$work/go-$ch' '$sock'" \
    "'$work/peer' write $ch $N '$work/go-$ch' '$sock'" &&
    { [ ! -e "$sock" ] || { echo "socket left: $sock"; return 1; }; }
}
check "C -> C through a Unix socket (shmframe_reader_connect; reader under valgrind)" c_c_socket

need_venv
python_ready() {
  # The extension as scripts/test.d/40-python.sh builds it, from the current sources.
  need_pip maturin "numpy>=2" || return 1
  local wheels="${CARGO_TARGET_DIR:-$ROOT/target}/py-wheels-c"
  rm -rf "$wheels"
  maturin build -q --profile dev --out "$wheels" >/dev/null &&
    python -m pip install -q --force-reinstall --no-deps "$wheels"/shmframe-*.whl &&
    python -c "import shmframe"
}
check "Python package built and installed into .venv" python_ready

c_py() {
  local ch="$tag-cpy"
  pair "$ch" "python '$tests/c/peer.py' read $ch $N '$work/go-$ch'" \
    "'$work/peer' write $ch $N '$work/go-$ch'"
}
check "C -> Python: pixels, dtypes, metadata through the schema" c_py

py_cpp() {
  local ch="$tag-pycpp"
  pair "$ch" "'$work/peer-cpp' read $ch $N '$work/go-$ch'" \
    "python '$tests/c/peer.py' write $ch $N '$work/go-$ch'"
}
check "Python -> C++: Views, Frames and cv::Mat headers" py_cpp

c_cpp_socket() {
  local ch="$tag-cpps" sock="$work/sock/$tag-cpps.sock"
  pair "$ch" "'$work/peer-cpp' read $ch $N '$work/go-$ch' '$sock'" \
    "'$work/peer' write $ch $N '$work/go-$ch' '$sock'" &&
    { [ ! -e "$sock" ] || { echo "socket left: $sock"; return 1; }; }
}
check "C -> C++ through a Unix socket (shmframe::Reader::connect)" c_cpp_socket

cli_c() {
  local ch="$tag-cli" bin="${SHMFRAME_BIN:-}"
  if [ -z "$bin" ]; then
    build_shared || return 1
    bin="$(shmframe_bin)"
  fi
  pair "$ch" "'$work/peer' read-cli $ch 60" \
    "'$bin' write $ch --frames 60 --fps 60 --size 64x48 >/dev/null"
}
check "shmframe write (CLI) -> C" cli_c

mkdir -p "$work/mat"
check "C++: cv::Mat of every depth and channel count, ROIs, N-d, loans, exceptions, a socket" \
  "$work/peer-cpp" mat "$work/mat"

# ---- the examples, built with CMake against find_package(shmframe) -------------------------------

cmake_examples() {
  local lang
  for lang in c cpp; do
    cmake -S "examples/$lang" -B "$work/build-$lang" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_C_FLAGS="${CWARN[*]}" -DCMAKE_CXX_FLAGS="${CWARN[*]}" >"$work/cmake-$lang.log" 2>&1 &&
      cmake --build "$work/build-$lang" -j 2 >>"$work/cmake-$lang.log" 2>&1 ||
      { cat "$work/cmake-$lang.log"; return 1; }
  done
}
check "CMake builds examples/c and examples/cpp with find_package(shmframe)" cmake_examples

show_window() {
  # show.cpp's window on the display of xvfb_start: it shows frames of a writer, q quits.
  local ch="$tag-window" display="$XVFB_DISPLAY"
  "$work/build-cpp/write" "$ch" --fps 30 --size 320x240 --camera 99 >/dev/null 2>&1 &
  local writer=$!
  pids+=("$writer")
  # OpenCV's Qt window wants a runtime directory: this test's own, not /tmp/runtime-$USER.
  mkdir -p -m 0700 "$work/xdg"
  DISPLAY="$display" XDG_RUNTIME_DIR="$work/xdg" timeout 60 "$work/build-cpp/show" "$ch" --timeout 30 >"$work/show.log" 2>&1 &
  local show=$!
  local id="" rc=1
  for _ in $(seq 300); do
    id="$(DISPLAY="$display" xdotool search --name "^$ch\$" 2>/dev/null | head -n1)"
    [ -n "$id" ] && grep -q '^frame ' "$work/show.log" && break
    kill -0 "$show" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$id" ]; then
    DISPLAY="$display" xdotool windowfocus --sync "$id" key q
    wait "$show"
    rc=$?
  else
    echo "no window titled $ch"
    kill "$show" 2>/dev/null
    wait "$show" 2>/dev/null
  fi
  kill "$writer" 2>/dev/null
  wait "$writer" 2>/dev/null
  [ $rc -eq 0 ] && grep -q '^received' "$work/show.log" || { cat "$work/show.log"; return 1; }
}

window() {
  # A fresh Xvfb for show_window. If the X server, not show.cpp, failed (it stopped answering or
  # refused show.cpp's connection), that is said with its log and the test runs once more.
  local attempt rc x_failed
  for attempt in 1 2; do
    xvfb_start "$work" || return 1
    pids+=("$XVFB_PID")
    show_window
    rc=$?
    x_failed=no
    if [ $rc -ne 0 ] && { ! xvfb_answers || grep -q 'could not connect to display' "$work/show.log"; }; then
      x_failed=yes
      echo "the X server on $XVFB_DISPLAY failed (answers now: $(xvfb_answers && echo yes || echo no)); its log:"
      cat "$work/xvfb.log"
    fi
    kill "$XVFB_PID" 2>/dev/null
    wait "$XVFB_PID" 2>/dev/null
    [ $x_failed = yes ] && [ $attempt -eq 1 ] || return $rc
    echo "once more with a new X server"
  done
}
check "show.cpp: cv::imshow window under Xvfb shows frames, q quits" window

# A clip the test makes; examples/cpp/write.cpp decodes it with cv::VideoCapture into a channel
# (zero-copy loans), and a Python reader checks every frame's pixels and metadata.
video() {
  local ch="$tag-video" clip="$work/clip.avi"
  "$work/peer-cpp" make-video "$clip" 30 || return 1
  pair "$ch" "python '$tests/c/peer.py' video $ch 30" \
    "'$work/build-cpp/write' $ch --video '$clip' >'$work/write-video.log' 2>&1" ||
    { cat "$work/write-video.log"; return 1; }
}
check "video: C++ decodes a clip into a channel (examples/cpp/write.cpp), Python checks pixels" video

examples_run() {
  # The test pattern from write.cpp to read.c, then to show.cpp (headless). The writer publishes
  # more frames than the readers take: a reader that attaches a few frames late (it waits for the
  # channel's name to appear) still gets its 20.
  local ch="$tag-ex"
  local writer="'$work/build-cpp/write' $ch --frames 60 --fps 100 --size 320x240 --camera 99 >/dev/null 2>&1"
  pair "$ch" "'$work/build-c/read' $ch 20 | tail -1 | grep -q 'received 20 frames'" "$writer" &&
    pair "$ch" "'$work/build-cpp/show' $ch --frames 20 --headless --timeout 30 | tail -1 | grep -q 'received 20 frames'" \
      "$writer"
}
check "examples: write.cpp (test pattern) -> read.c, -> show.cpp --headless" examples_run

no_leftovers() {
  local left
  left="$(ls /dev/shm | grep -F "$tag" || true)"
  [ -z "$left" ] || { echo "left in /dev/shm: $left"; return 1; }
}
check "no channel left in /dev/shm" no_leftovers

echo "65-c: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
