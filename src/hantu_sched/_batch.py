"""Selection batch files (the issue's ``batch_utils``).

Each selection batch writes ``<data_dir>/daily_selection/batch_{id}.json`` atomically: the JSON
goes to a temporary file in the same directory, is fsynced, renamed over the target, and the
directory is fsynced, so a reader sees the old file or the new one, never a torn one. The file
carries its own ``trading_date`` and ``batch_id``; completeness is judged from the content, never
from the mtime (which is at most a hint for humans).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import pathlib
import re
from collections.abc import Iterable
from typing import Any

from ._files import atomic_write_bytes

__all__ = [
    "BATCH_DIR",
    "BatchHealth",
    "BatchStore",
    "batch_health",
    "batch_store_for",
    "classify_batch",
    "is_batch_complete",
    "validate_batch_id",
]

BATCH_DIR = "daily_selection"
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
FORMAT_VERSION = 1


class BatchHealth(enum.StrEnum):
    """What a batch file's content says about it. Only ``VALID`` counts as complete."""

    MISSING = "missing"
    EMPTY = "empty"
    CORRUPT = "corrupt"
    STALE = "stale"  # parses, but for another trading date
    WRONG_ID = "wrong-id"  # parses, but for another batch
    VALID = "valid"


def validate_batch_id(batch_id: str) -> str:
    """Return *batch_id* if it is 1–32 of ``[A-Za-z0-9_-]`` (safe in a file name), else raise."""
    if not isinstance(batch_id, str) or not _ID_RE.fullmatch(batch_id):
        raise ValueError(f"invalid batch id {batch_id!r}: use 1-32 of [A-Za-z0-9_-]")
    return batch_id


def batch_health(path: str | os.PathLike[str], trading_date: dt.date, batch_id: str) -> BatchHealth:
    """Classify the batch file at *path* for (*trading_date*, *batch_id*)."""
    target = pathlib.Path(path)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return BatchHealth.MISSING
    except OSError:
        return BatchHealth.CORRUPT
    return classify_batch(raw, trading_date, batch_id)


def classify_batch(raw: bytes | None, trading_date: dt.date, batch_id: str) -> BatchHealth:
    """Classify a batch document's bytes (``None``: there is none) for (*trading_date*,
    *batch_id*): the one rule for files on disk and documents kept in a database."""
    if raw is None:
        return BatchHealth.MISSING
    if not raw.strip():
        return BatchHealth.EMPTY
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return BatchHealth.CORRUPT
    if not isinstance(data, dict) or "items" not in data:
        return BatchHealth.CORRUPT
    if data.get("trading_date") != trading_date.isoformat():
        return BatchHealth.STALE
    if data.get("batch_id") != batch_id:
        return BatchHealth.WRONG_ID
    return BatchHealth.VALID


def is_batch_complete(path: str | os.PathLike[str], trading_date: dt.date, batch_id: str) -> bool:
    """True iff the file exists, is non-empty, parses as JSON, and carries *trading_date* and
    *batch_id* inside. The mtime is not consulted."""
    return batch_health(path, trading_date, batch_id) is BatchHealth.VALID


def batch_store_for(storage: object, data_dir: str | os.PathLike[str]) -> BatchStore:
    """Where *storage*'s deployment keeps its batch documents: a storage that keeps them itself
    (it has ``batch_store(data_dir)``, e.g. PostgreSQL, so a standby host sees them) decides;
    otherwise the files under *data_dir*."""
    make = getattr(storage, "batch_store", None)
    if callable(make):
        store = make(data_dir)
        if isinstance(store, BatchStore):
            return store
    return BatchStore(data_dir)


class BatchStore:
    """Reads and atomically writes the batch files under ``<data_dir>/daily_selection``.

    Subclasses may keep the same documents elsewhere by overriding :meth:`load` and
    :meth:`store`; the evidence rules (:func:`classify_batch`) stay the same.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.directory = pathlib.Path(data_dir) / BATCH_DIR

    def path(self, batch_id: str) -> pathlib.Path:
        """The file for *batch_id* (``batch_{id}.json``)."""
        return self.directory / f"batch_{validate_batch_id(batch_id)}.json"

    def write(
        self,
        trading_date: dt.date,
        batch_id: str,
        items: Any,
        *,
        written_at: dt.datetime | None = None,
    ) -> pathlib.Path:
        """Atomically write batch *batch_id* for *trading_date* with JSON-serialisable *items*."""
        target = self.path(batch_id)
        document = {
            "format": FORMAT_VERSION,
            "trading_date": trading_date.isoformat(),
            "batch_id": batch_id,
            "written_at": None if written_at is None else written_at.isoformat(),
            "items": items,
        }
        self.store(batch_id, json.dumps(document, ensure_ascii=False, sort_keys=True).encode())
        return target

    def store(self, batch_id: str, data: bytes) -> None:
        """Atomically replace *batch_id*'s document with *data*."""
        atomic_write_bytes(self.path(batch_id), data)

    def load(self, batch_id: str) -> bytes | None:
        """*batch_id*'s document (``None`` if there is none); raises :class:`OSError` if it
        cannot be read."""
        try:
            return self.path(batch_id).read_bytes()
        except FileNotFoundError:
            return None

    def health(self, trading_date: dt.date, batch_id: str) -> BatchHealth:
        """:func:`classify_batch` of *batch_id*'s document (unreadable: ``corrupt``)."""
        try:
            raw = self.load(batch_id)
        except OSError:
            return BatchHealth.CORRUPT
        return classify_batch(raw, trading_date, batch_id)

    def is_complete(self, trading_date: dt.date, batch_id: str) -> bool:
        """:func:`is_batch_complete` of *batch_id*'s file."""
        return self.health(trading_date, batch_id) is BatchHealth.VALID

    def read(self, trading_date: dt.date, batch_id: str) -> Any | None:
        """The ``items`` of a valid batch file, or ``None`` if it is not valid."""
        try:
            raw = self.load(batch_id)
        except OSError:
            return None
        if classify_batch(raw, trading_date, batch_id) is not BatchHealth.VALID:
            return None
        assert raw is not None
        return json.loads(raw)["items"]

    def health_all(self, trading_date: dt.date, batch_ids: Iterable[str]) -> dict[str, BatchHealth]:
        """Health of every batch in *batch_ids*."""
        return {b: self.health(trading_date, b) for b in batch_ids}
