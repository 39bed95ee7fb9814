"""A live preview of shmframe channels in the browser: one asyncio event loop, any number of
channels and clients.

    python preview_server.py --port 8080 --host 127.0.0.1

    /                      the channels on this machine, with links
    /stream/NAME           channel NAME as a live MJPEG stream (an <img src=...> shows it)
    /snapshot/NAME.jpg     the newest frame of NAME as one JPEG

HTTP is the standard library's asyncio (`asyncio.start_server`, a minimal HTTP/1.1: GET only,
one request per connection); JPEG encoding is Pillow (`pip install pillow`).

Frames must be uint8 and H x W (grey), H x W x 1, H x W x 3 or H x W x 4. Three or four channels
are taken as BGR / BGRA, the order OpenCV produces (`cv2.VideoCapture`, `cv2.imread`), and
converted to RGB; pass --rgb if your writers publish RGB. Other frames are refused (a snapshot
answers 415, a stream ends).

Each channel that someone watches has one reader (latest-only: a slow encoder or client skips
frames instead of falling behind) and one encoder; its JPEGs go to every client of that channel.
The stream of a channel ends when its writer closes the channel or dies.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import io
import os
import re
import signal
import sys
import time
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote, unquote, urlsplit

import numpy as np
from PIL import Image

import shmframe

BOUNDARY = "shmframe-preview"
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
SHM_DIR = "/dev/shm"
OBJECT_PREFIX = "shmframe."  # channel NAME is the object /dev/shm/shmframe.NAME


def channel_names() -> List[str]:
    """The channels in /dev/shm (their objects are shmframe.NAME), sorted."""
    try:
        objects = os.listdir(SHM_DIR)
    except OSError:
        return []
    return sorted(
        o[len(OBJECT_PREFIX):]
        for o in objects
        if o.startswith(OBJECT_PREFIX) and NAME_RE.match(o[len(OBJECT_PREFIX):])
    )


def to_jpeg(array: np.ndarray, rgb: bool, quality: int) -> bytes:
    """A uint8 frame (H x W grey, H x W x 1/3/4, BGR(A) unless `rgb`) as JPEG bytes."""
    if array.dtype != np.uint8:
        raise ValueError(f"frames of dtype {array.dtype} are not shown (uint8 only)")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        image = Image.fromarray(np.ascontiguousarray(array), "L")
    elif array.ndim == 3 and array.shape[2] in (3, 4):
        pixels = array[:, :, :3] if rgb else array[:, :, 2::-1]  # BGR(A) -> RGB
        image = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    else:
        raise ValueError(f"frames of shape {array.shape} are not shown (H x W or H x W x 1/3/4)")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


class Feed:
    """One watched channel: a reader task that encodes the newest frame for all its clients."""

    def __init__(self, server: "Server", name: str) -> None:
        self.server = server
        self.name = name
        self.reader = shmframe.Reader(name, timeout=0)  # ChannelNotFound if there is none
        self.reader.set_latest_only(True)
        self.jpeg: Optional[bytes] = None
        self.seq = 0  # JPEGs made so far
        self.done: Optional[str] = None  # why the feed ended
        self.clients = 0
        self.changed = asyncio.Condition()
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1 / self.server.max_fps if self.server.max_fps > 0 else 0.0
        try:
            async for frame in self.reader:
                started = loop.time()
                # Pillow releases the GIL while it encodes: other channels keep going.
                jpeg = await loop.run_in_executor(
                    None, to_jpeg, frame.array, self.server.rgb, self.server.quality
                )
                async with self.changed:
                    self.jpeg, self.seq = jpeg, self.seq + 1
                    self.changed.notify_all()
                await asyncio.sleep(max(0.0, period - (loop.time() - started)))
            self.done = "the writer closed the channel"
        except (shmframe.Error, ValueError) as e:
            self.done = str(e)
        finally:
            self.reader.close()
            async with self.changed:
                if self.done is None:
                    self.done = "stopped"
                self.changed.notify_all()

    async def next_jpeg(self, seen: int) -> Tuple[Optional[bytes], int]:
        """A JPEG newer than number `seen` and its number, or (None, seen) once the feed ended."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.seq > seen or self.done is not None)
            if self.seq > seen:
                return self.jpeg, self.seq
            return None, seen


class Server:
    def __init__(self, rgb: bool, quality: int, max_fps: float) -> None:
        self.rgb = rgb
        self.quality = quality
        self.max_fps = max_fps
        self.feeds: Dict[str, Feed] = {}

    def feed(self, name: str) -> Feed:
        f = self.feeds.get(name)
        if f is None or f.done is not None:
            f = self.feeds[name] = Feed(self, name)
        return f

    def release(self, feed: Feed) -> None:
        """One client less; the last one stops the feed (its reader closes as the task ends)."""
        feed.clients -= 1
        if feed.clients == 0:
            if self.feeds.get(feed.name) is feed:
                del self.feeds[feed.name]
            feed.task.cancel()

    async def close(self) -> None:
        """Stops every feed (their streams end)."""
        feeds = list(self.feeds.values())
        self.feeds.clear()
        for f in feeds:
            f.task.cancel()
        await asyncio.gather(*(f.task for f in feeds), return_exceptions=True)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(read_request(reader), 10)
            if request is None:
                return
            method, target = request
            if method != "GET":
                await respond(writer, 405, "text/plain", b"GET only\n", [("Allow", "GET")])
                return
            path = urlsplit(target).path
            if path == "/":
                await respond(writer, 200, "text/html; charset=utf-8", index_page())
            elif path.startswith("/stream/"):
                await self.stream(writer, unquote(path[len("/stream/"):]))
            elif path.startswith("/snapshot/") and path.endswith(".jpg"):
                await self.snapshot(writer, unquote(path[len("/snapshot/"):-len(".jpg")]))
            else:
                await respond(writer, 404, "text/plain", b"not found\n")
        except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away (or never sent a request)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    async def snapshot(self, writer: asyncio.StreamWriter, name: str) -> None:
        if not NAME_RE.match(name):
            await respond(writer, 400, "text/plain", b"bad channel name\n")
            return
        try:
            with shmframe.Reader(name, timeout=0) as r:
                frame = r.latest() or await r.aread(timeout=5)
        except shmframe.ChannelNotFound:
            await respond(writer, 404, "text/plain", f"no channel {name}\n".encode())
            return
        except shmframe.Error as e:  # Timeout, WriterGone, ChannelClosed, ...
            await respond(writer, 503, "text/plain", f"{e}\n".encode())
            return
        try:
            jpeg = await asyncio.get_running_loop().run_in_executor(
                None, to_jpeg, frame.array, self.rgb, self.quality
            )
        except ValueError as e:
            await respond(writer, 415, "text/plain", f"{e}\n".encode())
            return
        await respond(writer, 200, "image/jpeg", jpeg, [("Cache-Control", "no-store")])

    async def stream(self, writer: asyncio.StreamWriter, name: str) -> None:
        if not NAME_RE.match(name):
            await respond(writer, 400, "text/plain", b"bad channel name\n")
            return
        try:
            feed = self.feed(name)
        except shmframe.ChannelNotFound:
            await respond(writer, 404, "text/plain", f"no channel {name}\n".encode())
            return
        feed.clients += 1
        try:
            writer.write(
                head(
                    200,
                    f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                    None,
                    [("Cache-Control", "no-store")],
                )
            )
            seen = 0
            while True:
                jpeg, seen = await feed.next_jpeg(seen)
                if jpeg is None:
                    writer.write(f"--{BOUNDARY}--\r\n".encode())
                    await writer.drain()
                    return
                writer.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg
                    + b"\r\n"
                )
                await writer.drain()  # a slow client waits here; it gets the newest JPEG next
        finally:
            self.release(feed)


async def read_request(reader: asyncio.StreamReader) -> Optional[Tuple[str, str]]:
    """(method, target) of the request on `reader`, its headers skipped; None if there is none."""
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    for _ in range(100):  # headers: ignored, up to the blank line
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
    return parts[0], parts[1]


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           415: "Unsupported Media Type", 503: "Service Unavailable"}


def head(status: int, ctype: str, length: Optional[int], extra: List[Tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS[status]}", f"Content-Type: {ctype}", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def respond(
    writer: asyncio.StreamWriter,
    status: int,
    ctype: str,
    body: bytes,
    extra: Optional[List[Tuple[str, str]]] = None,
) -> None:
    writer.write(head(status, ctype, len(body), extra or []) + body)
    await writer.drain()


def index_page() -> bytes:
    rows = []
    for name in channel_names():
        q, h = quote(name), html.escape(name)
        rows.append(
            f'<li><a href="/stream/{q}">{h}</a> '
            f'(<a href="/snapshot/{q}.jpg">snapshot</a>)<br>'
            f'<img src="/snapshot/{q}.jpg" alt="{h}" height="120"></li>'
        )
    body = "\n".join(rows) if rows else "<li>no channels</li>"
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>shmframe channels</title></head>"
        f"<body><h1>shmframe channels</h1><ul>\n{body}\n</ul>"
        f"<p>{time.strftime('%Y-%m-%d %H:%M:%S')}: reload for new channels.</p></body></html>\n"
    ).encode()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (0: any free one; default 8080)")
    p.add_argument("--rgb", action="store_true", help="3/4-channel frames are RGB(A), not BGR(A)")
    p.add_argument("--quality", type=int, default=80, help="JPEG quality 1-95 (default 80)")
    p.add_argument("--max-fps", type=float, default=30.0,
                   help="JPEGs per second and channel at most (0: every frame; default 30)")
    args = p.parse_args()

    server = Server(args.rgb, args.quality, args.max_fps)
    http = await asyncio.start_server(server.handle, args.host, args.port)
    host, port = http.sockets[0].getsockname()[:2]
    print(f"serving on http://{host}:{port}/", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    http.close()  # no new connections
    await server.close()  # streams end
    try:
        await asyncio.wait_for(http.wait_closed(), 5)
    except asyncio.TimeoutError:
        pass


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
