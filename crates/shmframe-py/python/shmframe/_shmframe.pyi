"""Type stubs of the compiled core ``shmframe._shmframe``; use the ``shmframe`` package API."""

import os
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

#: (type name, size, align, [(field, dtype name, count, offset)])
SchemaTuple = Tuple[str, int, int, List[Tuple[str, str, int, int]]]
#: Turns a frame's metadata bytes into what ``Frame.meta`` holds (without one: the bytes)
Decode = Optional[Callable[[bytes], Any]]
#: A socket path: str or os.PathLike
SocketPath = Union[str, os.PathLike]

MAX_DIMS: int

def monotonic_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds, the clock of ``Frame.timestamp_ns``."""

def prefer_low_latency() -> float:
    """Asks the scheduler to run the calling thread as soon as a frame wakes it: a 0.1 ms time
    slice (Linux 6.12 and later; policy and nice value kept). Call it in the thread that reads.
    Returns the slice in seconds.

    :raises Error: the kernel has no per-thread slices, or the thread is not a normal
        (``SCHED_OTHER``) thread; it is left as it was, and readers work the same.
    :raises PermissionError: the system forbids the call (seccomp, a security module).
    """

def remove(name: str) -> None:
    """Removes channel ``name`` and its pin tables from /dev/shm (``shmframe rm NAME``).

    :raises ChannelNotFound: no such channel.
    :raises ValueError: ``name`` is not a valid channel name.
    :raises PermissionError: the channel belongs to another user.
    """

class LoanMapping:
    """Base object of an ndarray over a loaned slot: keeps the writer's mapping alive."""

class Frame:
    """A received frame (a copy, yours to keep).

    :ivar array: the frame's ndarray.
    :ivar meta: its metadata as a ctypes Structure rebuilt from the channel's schema, or None.
    :ivar index: the writer's frame index (0, 1, 2, … for one writer).
    :ivar timestamp_ns: the writer's ``CLOCK_MONOTONIC`` at publish (compare with
        :func:`monotonic_ns` or ``time.monotonic_ns()``).
    :ivar missed: frames published between the previous frame this reader received and this one.
    """

    array: np.ndarray
    meta: Any
    index: int
    timestamp_ns: int
    missed: int
    def __init__(
        self, array: np.ndarray, meta: Any, index: int, timestamp_ns: int, missed: int
    ) -> None: ...

class FrameView:
    """A frame read in place (zero-copy); see :meth:`Reader.view`.

    Inside its ``with`` block, :attr:`array` is a read-only ndarray over the frame in shared
    memory, and it cannot change or tear: the slot is pinned, so the writer skips it. After the
    block, :attr:`array` raises :class:`Error`. An array you took out of the block stays valid
    memory (it owns the pin, which is released when the array is garbage-collected), but it pins
    a slot until then: copy what you need (``array.copy()``) instead of keeping it.
    """

    meta: Any
    index: int
    timestamp_ns: int
    missed: int
    def __init__(
        self, array: np.ndarray, meta: Any, index: int, timestamp_ns: int, missed: int
    ) -> None: ...
    @property
    def array(self) -> np.ndarray:
        """The read-only zero-copy array; raises :class:`Error` after the ``with`` block."""
    def release(self) -> None:
        """Drops this object's reference to the array (what leaving the ``with`` block does)."""
    def __enter__(self) -> "FrameView": ...
    def __exit__(self, *exc: object) -> None: ...

class ViewOwner:
    """Base object of an ndarray over a zero-copy view: owns the mapping and the slot pin."""

class _Writer:
    def __init__(
        self,
        name: str,
        slots: int,
        mode: int,
        keep: bool,
        schema: Optional[SchemaTuple] = None,
        socket: Optional[SocketPath] = None,
    ) -> None: ...
    def write(self, array: np.ndarray, meta: Optional[bytes] = None) -> int: ...
    def loan(self, shape: Sequence[int], dtype: str) -> np.ndarray: ...
    def publish(self, meta: Optional[bytes] = None) -> int: ...
    def discard(self) -> None: ...
    def close(self) -> None: ...
    def refused_peers(self) -> List[Tuple[int, int, int, str]]:
        """Readers refused since the last call, as (pid, uid, gid, reason)."""
    @property
    def socket(self) -> Optional[str]: ...
    @property
    def closed(self) -> bool: ...
    @property
    def frames_published(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def schema(self) -> Optional[SchemaTuple]: ...

class _Reader:
    def __init__(
        self,
        name: Optional[str] = None,
        timeout: Optional[float] = None,
        socket: Optional[SocketPath] = None,
    ) -> None:
        """Exactly one of ``name`` and ``socket``; TypeError otherwise."""
    def read(self, timeout: Optional[float] = None, decode: Decode = None) -> Frame: ...
    def view(self, timeout: Optional[float] = None, decode: Decode = None) -> FrameView: ...
    def latest(self, decode: Decode = None) -> Optional[Frame]: ...
    def close(self) -> None: ...
    def set_latest_only(self, latest_only: bool) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def name(self) -> str: ...
    @property
    def socket(self) -> Optional[str]: ...
    @property
    def schema(self) -> Optional[SchemaTuple]: ...
    @property
    def writer_pid(self) -> int: ...
    @property
    def writer_alive(self) -> bool: ...
    def fileno(self) -> int: ...
    def _try_read(self, decode: Decode = None) -> Optional[Frame]: ...
    def _try_view(self, decode: Decode = None) -> Optional[FrameView]: ...
