"""Online backup of the SQLite log, with SQLite's backup API.

The copy is taken from a read-only connection of its own, in one step, so it is
one consistent instant of the log (a WAL reader: the daemon keeps appending
meanwhile, and the copy holds none of those later commits half-way). It is
written beside the target as ``NAME.part``, checked (``PRAGMA integrity_check``),
made a self-contained file (rollback journal instead of WAL, mode 0600) and only
then renamed into place, so a failed backup never leaves a file that looks good.

To restore, stop the daemon and start it on the copy (``ratelord-d --db COPY``),
or put the copy in place of the database (and remove its ``-wal``/``-shm``
files first): start-up replays it like any log.

A PostgreSQL log is backed up with PostgreSQL's own tools (``pg_dump``, or a
base backup with WAL archiving for point-in-time recovery); see the README.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import msgspec


class BackupError(Exception):
    """The backup could not be made; the message says why and what to do.

    ``status``: 400 for a path that can never work, 409 for one taken already.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class BackupResult(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    bytes: int
    #: the newest event in the copy
    high_water_seq: int


def backup_sqlite(source: Path, target: Path) -> BackupResult:
    """Copy the log at ``source`` to ``target`` (a new file) while it is in use."""
    if not target.is_absolute():
        raise BackupError(f"backup path {target} must be absolute")
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new file or remove it first", 409)
    if not target.parent.is_dir():
        raise BackupError(f"directory {target.parent} does not exist")
    part = target.with_name(target.name + ".part")
    part.unlink(missing_ok=True)
    try:
        os.close(os.open(part, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(part)
        try:
            src.backup(dst)  # every page in one step: one consistent instant
            dst.execute("PRAGMA journal_mode=DELETE")
            (check,) = dst.execute("PRAGMA integrity_check").fetchone()
            if check != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
            (high_water,) = dst.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        finally:
            dst.close()
            src.close()
        part.rename(target)
    except (OSError, sqlite3.Error) as exc:
        part.unlink(missing_ok=True)
        raise BackupError(f"cannot write {target}: {exc}") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return BackupResult(path=str(target), bytes=target.stat().st_size, high_water_seq=high_water)
