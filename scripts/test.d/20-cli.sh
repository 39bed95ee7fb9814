#!/usr/bin/env bash
# The reader's window under Xvfb: `shmframe read` shows a channel fed by a PNG of solid colour
# blocks; a screenshot of the X screen must contain the frame pixel for pixel, and the window
# title must show the rate. Then a writer and a reader under valgrind. (The GStreamer source's
# tests run in the main `cargo test` step.)
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt xvfb x11-apps x11-utils imagemagick valgrind


build_shared || exit 1
BIN="$(shmframe_bin)"
WORK="$(mktemp -d /tmp/sft-cli-window.XXXXXX)"
CH="sft-cli-window-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  "$BIN" rm "$CH" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

# A 320x240 PNG of twelve 80x80 blocks of distinct colours (written with the standard library).
python3 - "$WORK/blocks.png" <<'PY'
import struct, sys, zlib
colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0),
           (0, 255, 255), (255, 0, 255), (255, 255, 255), (0, 0, 0),
           (128, 64, 32), (32, 128, 64), (64, 32, 128), (200, 200, 100)]
w, h = 320, 240
rows = b"".join(b"\0" + bytes(c for x in range(w) for c in colours[(y // 80) * 4 + x // 80])
                for y in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png)
PY

xvfb_start "$WORK" 640x480x24 || exit 1
pids+=("$XVFB_PID")
export DISPLAY="$XVFB_DISPLAY"

"$BIN" write "$CH" --source "$WORK/blocks.png" --fps 30 2>"$WORK/writer.log" &
pids+=($!)
"$BIN" read "$CH" --timeout 30 2>"$WORK/reader.log" &
reader=$!
pids+=($reader)

# Wait for the window to show frames: its title gets the rate after the first half second.
title=""
for _ in $(seq 300); do
  title="$(xwininfo -root -tree 2>/dev/null | grep -o '"shmframe [^"]*fps[^"]*"' | head -n1)"
  [ -n "$title" ] && break
  sleep 0.1
done
check "window title shows channel and rate ($title)" test -n "$title"
sleep 0.5
xwd -root -silent >"$WORK/screen.xwd"
convert "xwd:$WORK/screen.xwd" "ppm:$WORK/screen.ppm"

check_pixels() {
  python3 - "$WORK/screen.ppm" "$WORK/blocks.png" <<'PY'
import sys, zlib, struct
def ppm(path):
    data = open(path, "rb").read()
    parts, pos = [], 0
    while len(parts) < 4:  # magic, width, height, maxval; `#` comments to the end of the line
        while data[pos:pos + 1].isspace(): pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace(): end += 1
        parts.append(data[pos:end]); pos = end
    assert parts[0] == b"P6" and parts[3] == b"255", parts
    return int(parts[1]), int(parts[2]), data[pos + 1:]
def png_rgb(path):  # our own 8-bit RGB, filter 0 PNG
    data = open(path, "rb").read()
    w, h = struct.unpack(">II", data[16:24])
    raw, pos, idat = data[8:], 0, b""
    while pos < len(raw):
        n, t = struct.unpack(">I4s", raw[pos:pos + 8])
        if t == b"IDAT": idat += raw[pos + 8:pos + 8 + n]
        pos += 12 + n
    rows = zlib.decompress(idat)
    return w, h, b"".join(rows[y * (w * 3 + 1) + 1:(y + 1) * (w * 3 + 1)] for y in range(h))
sw, sh, screen = ppm(sys.argv[1])
fw, fh, frame = png_rgb(sys.argv[2])
first = frame[:3]
# The window's top-left pixel: the first screen pixel of the frame's first colour.
at = next((i // 3 for i in range(0, len(screen), 3) if screen[i:i + 3] == first), None)
if at is None:
    sys.exit("the frame's colours are not on the screen")
x0, y0 = at % sw, at // sw
bad = sum(1 for y in range(fh) for x in range(fw)
          if screen[((y0 + y) * sw + x0 + x) * 3:((y0 + y) * sw + x0 + x) * 3 + 3]
          != frame[(y * fw + x) * 3:(y * fw + x) * 3 + 3])
print(f"window at +{x0}+{y0}: {fw * fh - bad} of {fw * fh} pixels match the frame")
sys.exit(1 if bad else 0)
PY
}
check "screenshot matches the frame pixel for pixel" check_pixels

kill -INT "$reader"
wait "$reader"
check "reader exits 0 on SIGINT" test $? -eq 0

# The command under valgrind (rustix's own vDSO lookup, which valgrind does not map, crashed it at
# the first clock read): a writer and a reader of small frames both exit 0.
under_valgrind() {
  local ch="sft-cli-valgrind-$$" vg=(valgrind -q --tool=none --error-exitcode=99)
  "${vg[@]}" "$BIN" write "$ch" --fps 30 --size 64x48 --frames 300 >"$WORK/vg-writer.log" 2>&1 &
  local w=$!
  pids+=("$w")
  timeout 120 "${vg[@]}" "$BIN" read "$ch" --headless --frames 5 --timeout 60 --json \
    >"$WORK/vg-reader.json" 2>"$WORK/vg-reader.log" && wait "$w" &&
    grep -q '"frames":5' "$WORK/vg-reader.json" || { tail -n 5 "$WORK"/vg-*.log; return 1; }
}
check "shmframe write and read under valgrind" under_valgrind

echo "cli-window: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
