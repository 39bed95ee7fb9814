"""shmframe: NumPy arrays (camera frames) and typed metadata between unrelated processes through
named POSIX shared-memory channels.

A :class:`Writer` creates a channel by name; :class:`Reader` objects in any process on the
machine (started in any order) open it by name::

    # writer process
    with shmframe.Writer("camera0") as w:
        w.write(frame)                       # any NumPy array: uint8…float64, bool, 0-d to 8-d

    # reader process
    with shmframe.Reader("camera0") as r:
        for f in r:                          # ends when the writer closes the channel
            print(f.index, f.array.shape, f.missed)

Publishing never waits for readers; readers never see a torn frame; a reader learns that its
writer died (:class:`WriterGone`) within a second. Blocking calls release the GIL and return
to Python on Ctrl-C.

A channel may also be served on a Unix socket instead of named in /dev/shm: the writer keeps it
in anonymous memory and hands it to each reader that connects (peers share a directory, not an
IPC namespace, and nothing is left in /dev/shm)::

    with shmframe.Writer("camera0", socket="/run/cams/camera0.sock") as w: ...
    with shmframe.Reader(socket="/run/cams/camera0.sock") as r: ...
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from typing import Any, Iterator, List, NamedTuple, Optional, Sequence, Type, Union

import numpy as np

from . import _errors, _meta
from ._errors import (
    ChannelBusy,
    ChannelClosed,
    ChannelNotFound,
    Error,
    LayoutMismatch,
    PermissionDenied,
    Timeout,
    WriterGone,
)
from ._shmframe import (
    MAX_DIMS,
    Frame,
    FrameView,
    _Reader,
    _Writer,
    monotonic_ns,
    prefer_low_latency,
    remove,
)

__all__ = [
    "Writer",
    "Reader",
    "Frame",
    "FrameView",
    "RefusedPeer",
    *_errors.__all__,
    "monotonic_ns",
    "prefer_low_latency",
    "remove",
    "MAX_DIMS",
]

#: A socket path: a ``str`` or an ``os.PathLike`` such as ``pathlib.Path``.
SocketPath = Union[str, "os.PathLike[str]"]


class RefusedPeer(NamedTuple):
    """A reader that the writer of a socket-served channel turned away: its credentials do not
    match the channel's mode (see :meth:`Writer.refused_peers`)."""

    #: The peer's process id (0 if it runs in another PID namespace).
    pid: int
    #: The peer's user id.
    uid: int
    #: The peer's group id.
    gid: int
    #: Why, as the peer was told (the peer's :class:`PermissionDenied` carries the same text).
    reason: str


class Writer:
    """Creates channel ``name`` and publishes frames to it.

    :param name: channel name, ``[A-Za-z0-9._-]``, at most 200 bytes; the object is
        ``/dev/shm/shmframe.NAME``.
    :param slots: frames the ring holds (1..64). Zero-copy readers each pin one slot while
        they hold a view, so use more slots than views held at once.
    :param mode: permission bits of the object (``0o640`` lets the group read).
    :param meta: the metadata type carried with every frame: a ``ctypes.Structure`` subclass or
        a NumPy structured dtype. Readers get it back as a ctypes structure without your source.
    :param keep: leave the channel in /dev/shm after :meth:`close` (readers can still read the
        last frames); by default it is removed. Not with ``socket``.
    :param socket: serve the channel on a Unix socket at this path (``str`` or
        ``os.PathLike``) instead of naming it in /dev/shm: its memory is anonymous, and each
        reader that connects (``Reader(socket=PATH)``) receives it over the socket. ``mode``
        applies to the socket file and to the credentials of each connecting reader. A stale
        socket at the path (its writer died) is replaced; the socket is removed on
        :meth:`close`. ``name`` still names the channel (readers see it as ``Reader.name``).
    :raises ChannelBusy: a live writer holds the name, or serves a channel on ``socket``.
    :raises PermissionDenied: the name belongs to another user, or the socket's directory does
        not let us create the socket.
    :raises LayoutMismatch: something other than a socket (a file, a directory) is at
        ``socket``; it is left alone.
    :raises ValueError: bad options, e.g. ``keep=True`` with ``socket``.
    """

    def __init__(
        self,
        name: str,
        *,
        slots: int = 3,
        mode: int = 0o600,
        meta: Any = None,
        keep: bool = False,
        socket: Optional[SocketPath] = None,
    ) -> None:
        schema = None
        self._meta_dtype: Optional[np.dtype] = None
        if meta is not None:
            self._meta_dtype, schema = _meta.declared_dtype(meta)
        self._w = _Writer(name, slots, mode, keep, schema, socket)
        self._name = name

    @property
    def name(self) -> str:
        """The channel's name."""
        return self._name

    @property
    def socket(self) -> Optional[str]:
        """The socket path the channel is served on, or None for a channel named in /dev/shm."""
        return self._w.socket

    @property
    def meta_dtype(self) -> Optional[np.dtype]:
        """The declared metadata layout as a structured dtype, or None."""
        return self._meta_dtype

    @property
    def frames_published(self) -> int:
        """Frames published so far."""
        return self._w.frames_published

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._w.closed

    def write(self, array: Any, meta: Any = None) -> int:
        """Publishes a copy of ``array`` (with ``meta``, if given) and returns its frame index.

        ``array``: anything ``numpy.asarray`` accepts, of dtype bool, (u)int8…(u)int64, float32
        or float64, 0-d to 8-d; a non-contiguous array is copied to C order first. ``meta``: a
        ctypes Structure instance, a NumPy structured scalar or 0-d array, or a dict of the
        declared fields (missing fields are zero). Never waits for readers.
        """
        a = np.asarray(array)
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        if not a.flags.c_contiguous:
            a = a.copy(order="C")
        return self._w.write(a, _meta.encode(meta, self._meta_dtype))

    def loan(self, shape: Sequence[int], dtype: Any = np.uint8, meta: Any = None) -> "Loan":
        """Borrows a slot to fill in place (zero-copy)::

            with w.loan((480, 640, 3), np.uint8) as buf:
                cap.read(buf)                 # OpenCV writes straight into shared memory

        The frame is published when the block ends, or discarded if it raises. ``meta`` is
        encoded at that moment, so a ctypes structure may still be changed inside the block.
        After the block the array is made read-only; do not keep it: its memory belongs to the
        channel again (it stays mapped, so holding it never crashes, but its contents change).
        """
        return Loan(self, tuple(int(d) for d in shape), np.dtype(dtype), meta)

    def refused_peers(self) -> List[RefusedPeer]:
        """Readers of a socket-served channel that were turned away since the previous call
        (their uid/gid do not match ``mode``), for the application to log; each such reader got
        :class:`PermissionDenied` with the same reason. Always empty for a named channel (there
        the kernel checks the object's mode and the writer never sees the reader)."""
        return [RefusedPeer(*p) for p in self._w.refused_peers()]

    def close(self) -> None:
        """Closes the channel: readers get :class:`ChannelClosed`; the object is removed unless
        ``keep=True`` (a socket-served channel's socket is removed). Idempotent."""
        self._w.close()

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.frames_published} frames"
        on = "" if self.socket is None else f" on {self.socket!r}"
        return f"<shmframe.Writer {self._name!r}{on} {state}>"


class Loan:
    """Context manager returned by :meth:`Writer.loan`; entering it yields the writable array."""

    def __init__(self, writer: Writer, shape: tuple, dtype: np.dtype, meta: Any) -> None:
        self._writer = writer
        self._shape = shape
        self._dtype = dtype
        self.meta = meta
        self.index: Optional[int] = None
        self._array: Optional[np.ndarray] = None
        self._entered = False

    def __enter__(self) -> np.ndarray:
        if self._entered:
            raise Error("this loan was already used; call Writer.loan() again")
        self._entered = True
        self._array = self._writer._w.loan(list(self._shape), self._dtype.name)
        return self._array

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        array, self._array = self._array, None
        if array is not None:
            array.flags.writeable = False
        if exc_type is not None:
            self._writer._w.discard()
            return
        try:
            meta = _meta.encode(self.meta, self._writer._meta_dtype)
        except BaseException:
            self._writer._w.discard()
            raise
        self.index = self._writer._w.publish(meta)


class Reader:
    """Opens channel ``name``, waiting up to ``timeout`` seconds for it to appear
    (``None``, ``math.inf`` or a timeout beyond the clock's range: wait forever; Ctrl-C still
    interrupts). Every ``timeout`` argument of this class works so; NaN or a negative number is
    a ``ValueError``.

    With ``socket=PATH`` instead of a name (``str`` or ``os.PathLike``), connects to the writer
    serving a channel on that Unix socket (``Writer(name, socket=PATH)``), waiting for it the
    same way; from then on the reader works exactly as one opened by name (a restarted writer
    on the same socket is followed too).

    :raises ChannelNotFound: the channel did not appear in time (with ``socket``: no writer
        served the socket in time; with ``timeout=0``: there is no socket, or a stale one whose
        writer died).
    :raises LayoutMismatch: the object is not a shmframe channel (or another layout version),
        or the name is taken by something that is not a shared-memory object (a FIFO, a
        directory, a link), which is never opened; with ``socket``: the peer at the path is not
        a shmframe writer.
    :raises PermissionDenied: the channel's mode does not let us read it (with ``socket``: the
        socket file's mode, or the writer refused our credentials).
    :raises TypeError: neither or both of ``name`` and ``socket`` given.
    """

    def __init__(
        self,
        name: Optional[str] = None,
        *,
        socket: Optional[SocketPath] = None,
        timeout: Optional[float] = None,
    ) -> None:
        if socket is None:
            self._r = _Reader(name, timeout)
        else:
            self._r = _Reader(name, timeout, socket)
        self._schema: Any = None
        self._meta_type: Optional[Type[ctypes.Structure]] = None

    @property
    def name(self) -> str:
        """The channel's name (with ``socket``: the name its writer gave it)."""
        return self._r.name

    @property
    def socket(self) -> Optional[str]:
        """The socket path the channel was reached through, or None for a channel opened by
        name."""
        return self._r.socket

    @property
    def meta_type(self) -> Optional[Type[ctypes.Structure]]:
        """The ctypes Structure rebuilt from the channel's metadata schema, or None."""
        schema = self._r.schema
        if schema != self._schema:
            self._schema = schema
            self._meta_type = None if schema is None else _meta.ctypes_type(schema)
        return self._meta_type

    @property
    def writer_pid(self) -> int:
        """The writer's process id."""
        return self._r.writer_pid

    @property
    def writer_alive(self) -> bool:
        """True while the writer holds the channel (checked with its lock, not its pid)."""
        return self._r.writer_alive

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._r.closed

    def set_latest_only(self, latest_only: bool) -> None:
        """``True``: :meth:`read`/:meth:`view` skip to the newest frame (the skipped ones count
        as missed), as a display wants. ``False`` (default): every frame, in order, while the
        ring still holds them."""
        self._r.set_latest_only(latest_only)

    def _meta(self, raw: bytes) -> Any:
        # The metadata decoder the compiled reader calls for a frame that has metadata.
        cls = self.meta_type
        if cls is None or ctypes.sizeof(cls) != len(raw):
            return None
        return cls.from_buffer_copy(raw)

    def read(self, timeout: Optional[float] = None) -> Frame:
        """Waits up to ``timeout`` seconds (``None``: forever) for the next frame; returns a copy.

        :raises Timeout: nothing arrived in time.
        :raises WriterGone: the writer died (or :class:`ChannelClosed`: it closed the channel).
        """
        return self._r.read(timeout, self._meta)

    def view(self, timeout: Optional[float] = None) -> FrameView:
        """Waits like :meth:`read` and returns the frame in place (zero-copy)::

            with r.view() as frame:
                process(frame.array)          # read-only, never torn while the block is open

        See :class:`FrameView` for what happens to the array after the block.
        """
        return self._r.view(timeout, self._meta)

    def latest(self) -> Optional[Frame]:
        """The newest frame not yet received (a copy), or None if there is none; never waits."""
        return self._r.latest(self._meta)

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        """The next frame (waiting as long as it takes); stops when the writer closes the
        channel; raises :class:`WriterGone` if the writer dies."""
        try:
            return self.read()
        except ChannelClosed:
            raise StopIteration from None

    def close(self) -> None:
        """Detaches from the channel. Idempotent. May be called from another thread while a
        :meth:`read`, :meth:`view` or iteration waits: it returns promptly, and the waiting call
        raises ``ValueError`` ("reader … is closed")."""
        self._unwatch()
        self._r.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        via = "" if self.socket is None else f" via {self.socket!r}"
        return f"<shmframe.Reader {self.name!r}{via}{' closed' if self.closed else ''}>"

    # asyncio: the same reads without blocking the event loop. A coroutine looks for a frame
    # (`_try_read`/`_try_view` never wait; finding nothing arms the readiness descriptor), and
    # otherwise waits for `fileno()` to turn readable. The descriptor is watched with
    # `loop.add_reader` once, for as long as the reader lives in that loop (no `epoll_ctl` per
    # frame); the watch empties it and wakes the awaiting coroutine, if any. The writer's wake-up
    # reaches the descriptor through an io_uring futex wait (or the process's one waker thread),
    # so one event loop reads any number of channels with no thread per reader and no polling.

    _awaited = False
    _watch_loop: Optional[asyncio.AbstractEventLoop] = None
    _woken: "Optional[asyncio.Future[None]]" = None

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._watch_loop is loop:
            return
        self._unwatch()
        loop.add_reader(self._r.fileno(), self._on_ready)
        self._watch_loop = loop

    def _unwatch(self) -> None:
        loop, self._watch_loop = self._watch_loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._r.fileno())

    def _on_ready(self) -> None:
        # Empty the eventfd (level-triggered: else the loop calls us again and again); the next
        # look decides what there is, so nothing is lost if no coroutine awaits right now.
        try:
            os.read(self._r.fileno(), 8)
        except (BlockingIOError, OSError):
            pass
        woken = self._woken
        if woken is not None and not woken.done():
            woken.set_result(None)

    def fileno(self) -> int:
        """The reader's readiness descriptor (an eventfd), for event loops and ``select``: it
        turns readable when the reader may have something to do (a frame, a close, a dead
        writer) after a non-blocking look found nothing. :meth:`aread`, :meth:`aview` and
        ``async for`` use it; it stays open, with the same number, until :meth:`close`."""
        return self._r.fileno()

    async def aread(self, timeout: Optional[float] = None) -> Frame:
        """:meth:`read` for asyncio: awaits the next frame (a copy) without blocking the loop.

        ``timeout`` as in :meth:`read` (raises :class:`Timeout`); ``asyncio.timeout()`` or
        ``asyncio.wait_for()`` around it work too (cancellation is safe: nothing is consumed or
        pinned by a cancelled await).

        :raises Timeout: nothing arrived in time.
        :raises WriterGone: the writer died (or :class:`ChannelClosed`: it closed the channel).
        """
        frame: Frame = await self._await_frame(self._r._try_read, timeout)
        return frame

    def aview(self, timeout: Optional[float] = None) -> "AsyncView":
        """:meth:`view` for asyncio, as an async context manager::

            async with r.aview() as frame:
                process(frame.array)          # read-only, zero-copy, pinned until the block ends

        Waits like :meth:`aread`; see :class:`FrameView` for the array after the block.
        """
        return AsyncView(self, timeout)

    def __aiter__(self) -> "Reader":
        return self

    async def __anext__(self) -> Frame:
        """``async for frame in reader``: :meth:`aread` forever; stops when the writer closes
        the channel; raises :class:`WriterGone` if the writer dies."""
        try:
            return await self.aread()
        except ChannelClosed:
            raise StopAsyncIteration from None

    async def _await_frame(self, look: Any, timeout: Optional[float]) -> Any:
        """Calls ``look`` (``_try_read``/``_try_view``) until it returns a frame, waiting for
        the readiness descriptor in between."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = None
        if timeout is not None:
            t = float(timeout)
            if not 0 <= t < float("inf"):
                raise ValueError(f"timeout must be a number of seconds ≥ 0 or None, not {timeout}")
            deadline = start + t
        got = look(self._meta)
        if got is not None:
            return got
        if self._awaited:
            raise Error(
                f"another task is already awaiting reader of channel `{self.name}`: use one "
                "Reader per task (or share the frames it reads)"
            )
        self._watch(loop)
        self._awaited = True
        try:
            while True:
                if deadline is not None and loop.time() >= deadline:
                    raise Timeout(
                        f"no frame on channel `{self.name}` within {loop.time() - start:.3f} s "
                        f"(writer pid {self._r.writer_pid} is alive but not publishing)"
                    )
                woken = self._woken = loop.create_future()
                timer = None if deadline is None else loop.call_at(deadline, _wake, woken)
                try:
                    await woken
                finally:
                    self._woken = None
                    if timer is not None:
                        timer.cancel()
                got = look(self._meta)
                if got is not None:
                    return got
        finally:
            self._awaited = False


def _wake(woken: "asyncio.Future[None]") -> None:
    if not woken.done():
        woken.set_result(None)


class AsyncView:
    """Async context manager returned by :meth:`Reader.aview`; entering it awaits the next frame
    and yields it as a :class:`FrameView`, released when the block ends."""

    def __init__(self, reader: Reader, timeout: Optional[float]) -> None:
        self._reader = reader
        self._timeout = timeout
        self._view: Optional[FrameView] = None

    async def __aenter__(self) -> FrameView:
        if self._view is not None:
            raise Error("this aview() is already entered; call Reader.aview() again")
        r = self._reader
        view: FrameView = await r._await_frame(r._r._try_view, self._timeout)
        self._view = view
        return view

    async def __aexit__(self, *exc: Any) -> None:
        view, self._view = self._view, None
        if view is not None:
            view.release()
