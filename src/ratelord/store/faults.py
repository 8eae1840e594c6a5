"""Which store errors pass by themselves, and what the daemon says while they last.

A write can fail because of the database (corrupt, a bug) or because of its
surroundings: another process holds the write lock, the disk is full, the
filesystem went read-only, an I/O error.  The second kind clears up without
ratelord doing anything, so the group-commit writer keeps the batch and retries
it with backoff (:mod:`ratelord.store.writer`) instead of giving up for good.

While a fault lasts the daemon is in *read-only safe mode* — it refuses new
intents with the fault's :meth:`StoreFault.reason` and keeps serving reads —
except for a lock, which is waited out for up to :data:`BUSY_GRACE` seconds
first: a maintenance job's short transaction should cost a request its wait,
not an error.
"""

from __future__ import annotations

import errno
import sqlite3
from typing import Literal

import msgspec

FaultKind = Literal["busy", "full", "readonly", "io"]

#: Seconds a foreign lock is waited out before new writes are refused.
BUSY_GRACE = 30.0

#: (first, longest) pause between two attempts: a lock is retried often so that
#: its release costs little; a full or read-only disk needs a person, so it is
#: retried about once a second.
BACKOFF: dict[FaultKind, tuple[float, float]] = {
    "busy": (0.002, 0.05),
    "full": (0.05, 1.0),
    "readonly": (0.05, 1.0),
    "io": (0.05, 1.0),
}

_SQLITE: dict[int, FaultKind] = {
    sqlite3.SQLITE_BUSY: "busy",
    sqlite3.SQLITE_LOCKED: "busy",
    sqlite3.SQLITE_FULL: "full",
    sqlite3.SQLITE_READONLY: "readonly",
    sqlite3.SQLITE_IOERR: "io",
}
_ERRNO: dict[int, FaultKind] = {
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EROFS: "readonly",
    errno.EIO: "io",
}

_WHAT: dict[FaultKind, str] = {
    "busy": "another process holds the database's write lock",
    "full": "the disk holding the event store is full",
    "readonly": "the event store's file or filesystem is read-only",
    "io": "the event store hit an I/O error",
}
_FIX: dict[FaultKind, str] = {
    "busy": "end the other process's transaction",
    "full": "free disk space",
    "readonly": "make the database file and its directory writable again",
    "io": "check the disk",
}


class StoreFault(msgspec.Struct, frozen=True, kw_only=True):
    """A passing fault of the store, as the writer last saw it."""

    kind: FaultKind
    detail: str
    #: when it began (``time.monotonic()``)
    since: float

    def refuses_writes(self, now: float) -> bool:
        """Whether new intents are refused (safe mode) rather than made to wait."""
        return self.kind != "busy" or now - self.since >= BUSY_GRACE

    def reason(self, now: float) -> str:
        """What is wrong, what it means for requests, and what fixes it."""
        if not self.refuses_writes(now):
            return (
                f"{_WHAT[self.kind]} ({self.detail}); writes wait for it, for up to "
                f"{BUSY_GRACE:.0f}s — {_FIX[self.kind]}"
            )
        return (
            f"{_WHAT[self.kind]} ({self.detail}); new intents are refused until it clears "
            f"— {_FIX[self.kind]}; reads still work and ratelord recovers by itself"
        )


def classify(exc: BaseException) -> FaultKind | None:
    """The kind of passing fault ``exc`` is, or None when retrying cannot help."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            return None
        return _SQLITE.get(code & 0xFF)
    if isinstance(exc, OSError) and exc.errno is not None:
        return _ERRNO.get(exc.errno)
    return None
