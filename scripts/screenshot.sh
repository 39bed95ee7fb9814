#!/usr/bin/env bash
# Makes docs/reader-window.png: the reader's window showing the test pattern, captured from an
# Xvfb screen (no desktop needed). Usage: scripts/screenshot.sh [OUTPUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need_apt xvfb x11-apps x11-utils imagemagick fonts-dejavu-core
OUT="${1:-docs/reader-window.png}"
cargo build -q -p shmframe-cli $CLI_FEATURES
BIN="$(shmframe_bin)"
WORK="$(mktemp -d /tmp/sft-screenshot.XXXXXX)"
CH="camera0"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$BIN" rm "$CH" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

xvfb_start "$WORK" || exit 1
pids+=("$XVFB_PID")
export DISPLAY="$XVFB_DISPLAY"

"$BIN" write "$CH" --source testsrc --size 640x480 --fps 30 2>/dev/null &
pids+=($!)
"$BIN" read "$CH" --timeout 30 2>/dev/null &
pids+=($!)

# The window once it shows the rate in its title: its id and geometry.
geom=""
for _ in $(seq 300); do
  geom="$(xwininfo -root -tree | grep '"shmframe [^"]*fps' | head -n1 || true)"
  [ -n "$geom" ] && break
  sleep 0.1
done
[ -n "$geom" ] || { echo "the reader's window did not appear"; exit 1; }
sleep 2
id="$(echo "$geom" | awk '{print $1}')"
# xwininfo's "-geometry WxH+X+Y" line: where the window is on the screen.
crop="$(xwininfo -id "$id" | awk '/-geometry/ {print $2}')"
size="${crop%%+*}"
pos="$(xwininfo -id "$id" | awk '/Absolute upper-left X/ {x=$4} /Absolute upper-left Y/ {y=$4} END {print "+" x "+" y}')"
title="$(echo "$geom" | grep -o '"[^"]*"' | tr -d '"')"
xwd -root -silent >"$WORK/screen.xwd"
# The window (X has no title bar without a window manager), with its title written below it.
convert "xwd:$WORK/screen.xwd" -crop "$size$pos" +repage \
  -background '#202020' -fill white -font DejaVu-Sans -pointsize 12 -gravity south -splice 0x28 \
  -annotate +0+6 "$title" -strip "$OUT"
echo "wrote $OUT ($size window, title: $title)"
