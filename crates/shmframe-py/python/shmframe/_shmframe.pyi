"""Type stubs of the compiled core ``shmframe._shmframe``; use the ``shmframe`` package API."""

import os
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

#: (type name, size, align, [(field, dtype name, count, offset)])
SchemaTuple = Tuple[str, int, int, List[Tuple[str, str, int, int]]]
#: (array, metadata bytes or None, index, timestamp_ns, missed)
FrameTuple = Tuple[np.ndarray, Optional[bytes], int, int, int]
#: A socket path: str or os.PathLike
SocketPath = Union[str, os.PathLike]

MAX_DIMS: int

def monotonic_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds, the clock of ``Frame.timestamp_ns``."""

def remove(name: str) -> None:
    """Removes channel ``name`` and its pin tables from /dev/shm (``shmframe rm NAME``).

    :raises ChannelNotFound: no such channel.
    :raises ValueError: ``name`` is not a valid channel name.
    :raises PermissionError: the channel belongs to another user.
    """

class LoanMapping:
    """Base object of an ndarray over a loaned slot: keeps the writer's mapping alive."""

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
    def read(self, timeout: Optional[float] = None) -> FrameTuple: ...
    def view(self, timeout: Optional[float] = None) -> FrameTuple: ...
    def latest(self) -> Optional[FrameTuple]: ...
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
    def _try_read(self) -> Optional[FrameTuple]: ...
    def _try_view(self) -> Optional[FrameTuple]: ...
