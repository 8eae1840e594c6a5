"""Archive segments: old events moved out of the live table into compressed files.

A segment is one gzip file of NDJSON lines, each line one ``events`` row as a
JSON array of its columns in table order (the payload, last, is the JSON it was
stored as, embedded as is), so ``zcat events-….ndjson.gz | jq`` reads it and a row comes
back exactly as it was appended.  Beside it, ``….json`` is its manifest: the
seq and time range it holds, how many events, its size and SHA-256.

Both files are written as ``NAME.part``, flushed to disk, renamed into place
and the directory flushed: a segment either exists whole and durable or not at
all.  Only then may the store delete the rows it holds (see
:mod:`ratelord.store.retention`).  Reading checks the size and checksum first:
a segment that does not match its manifest is refused, never half-trusted.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec

#: Bumped when the line layout changes; a reader refuses a format it does not know.
FORMAT = 1
#: gzip's default trade-off: ~5x smaller than the table at ~10 MB/s of log per core.
LEVEL = 6

_encode_row = msgspec.json.Encoder().encode
#: A row as stored: nineteen columns, then the payload's JSON kept as raw bytes.
_ROW: Any = tuple.__class_getitem__((*(Any,) * 19, msgspec.Raw))
_decode_row = msgspec.json.Decoder(_ROW).decode


class SegmentError(Exception):
    """A segment is missing, damaged or not what its manifest says; the message says which."""


class SegmentManifest(msgspec.Struct, frozen=True, kw_only=True):
    """What one segment file holds, as recorded beside it and in the store."""

    file: str
    first_seq: int
    last_seq: int
    #: ``ts_ingest`` of its first and last event (when they were logged)
    first_ts: float
    last_ts: float
    events: int
    #: the compressed file's size and SHA-256 (hex)
    bytes: int
    sha256: str
    #: the rows' size before compression (NDJSON)
    raw_bytes: int
    format: int = FORMAT


def segment_name(first_seq: int, last_seq: int) -> str:
    return f"events-{first_seq:012d}-{last_seq:012d}.ndjson.gz"


def write_segment(directory: Path, rows: Iterable[tuple[Any, ...]]) -> SegmentManifest:
    """Write ``rows`` (in seq order, at least one) as a durable segment in ``directory``.

    ``rows`` are ``events`` rows in table column order: ``seq`` first, ``ts_ingest`` sixth.
    """
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    first: tuple[Any, ...] | None = None
    last: tuple[Any, ...] | None = None
    for row in rows:
        if first is None:
            first = row
        last = row
        lines.append(_encode_row((*row[:-1], msgspec.Raw(row[-1]))))
    if first is None or last is None:
        raise ValueError("a segment holds at least one event")
    raw = b"\n".join(lines) + b"\n"
    data = gzip.compress(raw, compresslevel=LEVEL, mtime=0)
    name = segment_name(first[0], last[0])
    manifest = SegmentManifest(
        file=name,
        first_seq=first[0],
        last_seq=last[0],
        first_ts=first[5],
        last_ts=last[5],
        events=len(lines),
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        raw_bytes=len(raw),
    )
    _write_durably(directory / name, data)
    _write_durably(manifest_path(directory / name), msgspec.json.encode(manifest) + b"\n")
    _sync_directory(directory)
    return manifest


def manifest_path(segment: Path) -> Path:
    return segment.with_name(segment.name.removesuffix(".ndjson.gz") + ".json")


def read_segment(directory: Path, manifest: SegmentManifest) -> Iterator[tuple[Any, ...]]:
    """The rows of a segment, after checking the file is the one its manifest describes."""
    for line in gzip.decompress(check_segment(directory, manifest)).splitlines():
        yield _decode_row(line)


def check_segment(directory: Path, manifest: SegmentManifest) -> bytes:
    """The segment's bytes, if they are what its manifest says; else :class:`SegmentError`."""
    path = directory / manifest.file
    if manifest.format != FORMAT:
        raise SegmentError(f"{path}: segment format {manifest.format} is not known; upgrade")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SegmentError(
            f"archive segment {path} (events {manifest.first_seq}-{manifest.last_seq}) is "
            "missing: restore the archive directory from its backup"
        ) from None
    except OSError as exc:
        raise SegmentError(f"cannot read archive segment {path}: {exc.strerror}") from None
    if len(data) != manifest.bytes or hashlib.sha256(data).hexdigest() != manifest.sha256:
        raise SegmentError(
            f"archive segment {path} does not match its manifest (size or SHA-256): "
            "restore it from a backup"
        )
    return data


def read_manifest(path: Path) -> SegmentManifest:
    """A manifest file (``….json`` beside its segment)."""
    return msgspec.json.decode(path.read_bytes(), type=SegmentManifest)


def _write_durably(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    fd = os.open(part, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    part.replace(path)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
