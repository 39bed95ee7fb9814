"""Exceptions raised by shmframe. Every message says what went wrong and what to do about it."""

from __future__ import annotations

__all__ = [
    "Error",
    "ChannelNotFound",
    "WriterGone",
    "ChannelClosed",
    "Timeout",
    "LayoutMismatch",
    "ChannelBusy",
    "PermissionDenied",
]


class Error(Exception):
    """Base class of every shmframe error."""


class ChannelNotFound(Error, FileNotFoundError):
    """No channel of that name exists (or it did not appear within the reader's timeout)."""


class WriterGone(Error):
    """The channel's writer is gone: it died (``kill -9``, crash) without closing the channel.

    The reader stays usable: its next read attaches to a new writer of the same name if one
    has started.
    """


class ChannelClosed(WriterGone):
    """The writer closed the channel (a :class:`WriterGone` that was a clean shutdown).

    Iterating over a :class:`~shmframe.Reader` ends on it instead of raising.
    """


class Timeout(Error, TimeoutError):
    """No frame arrived within the timeout (the writer is alive but not publishing)."""


class LayoutMismatch(Error):
    """The object is not a shmframe channel, uses another layout version, or is corrupt."""


class ChannelBusy(Error):
    """A live writer already holds this channel name."""


class PermissionDenied(Error, PermissionError):
    """The channel belongs to another user and its mode does not let us open it."""
