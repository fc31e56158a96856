"""Batch files: atomic writes, content-based completeness, configured ids."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib

import pytest

from hantu_sched import BatchHealth, BatchStore, batch_health, is_batch_complete

DAY = dt.date(2026, 11, 19)


def test_write_then_complete(tmp_path: pathlib.Path) -> None:
    store = BatchStore(tmp_path)
    path = store.write(DAY, "3", [{"code": "005930"}])
    assert path == tmp_path / "daily_selection" / "batch_3.json"
    doc = json.loads(path.read_text())
    assert doc["trading_date"] == "2026-11-19"
    assert doc["batch_id"] == "3"
    assert is_batch_complete(path, DAY, "3")
    assert store.read(DAY, "3") == [{"code": "005930"}]
    assert [p.name for p in path.parent.iterdir()] == ["batch_3.json"]  # no temp files left


@pytest.mark.parametrize(
    ("content", "health"),
    [
        (None, BatchHealth.MISSING),
        (b"", BatchHealth.EMPTY),
        (b"  \n", BatchHealth.EMPTY),
        (b"{not json", BatchHealth.CORRUPT),
        (b"\xff\xfe", BatchHealth.CORRUPT),
        (b"[1, 2]", BatchHealth.CORRUPT),
        (b'{"trading_date": "2026-11-19", "batch_id": "1"}', BatchHealth.CORRUPT),
        (b'{"trading_date": "2026-11-18", "batch_id": "1", "items": []}', BatchHealth.STALE),
        (b'{"trading_date": "2026-11-19", "batch_id": "2", "items": []}', BatchHealth.WRONG_ID),
        (b'{"trading_date": "2026-11-19", "batch_id": "1", "items": []}', BatchHealth.VALID),
    ],
)
def test_health(tmp_path: pathlib.Path, content: bytes | None, health: BatchHealth) -> None:
    path = tmp_path / "batch_1.json"
    if content is not None:
        path.write_bytes(content)
    assert batch_health(path, DAY, "1") is health
    assert is_batch_complete(path, DAY, "1") is (health is BatchHealth.VALID)


def test_mtime_does_not_matter(tmp_path: pathlib.Path) -> None:
    store = BatchStore(tmp_path)
    path = store.write(DAY, "1", [])
    os.utime(path, (0, 0))  # 1970: a mtime-based check would call this stale
    assert store.is_complete(DAY, "1")
    assert not store.is_complete(DAY + dt.timedelta(days=1), "1")


def test_rewrite_replaces_atomically(tmp_path: pathlib.Path) -> None:
    store = BatchStore(tmp_path)
    store.write(DAY - dt.timedelta(days=1), "1", ["old"])
    assert store.health(DAY, "1") is BatchHealth.STALE
    store.write(DAY, "1", ["new"])
    assert store.read(DAY, "1") == ["new"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: pathlib.Path) -> None:
    store = BatchStore(tmp_path)
    store.write(DAY, "1", ["good"])
    with pytest.raises(TypeError):
        store.write(DAY, "1", [object()])
    assert store.read(DAY, "1") == ["good"]
    assert len(list(store.directory.iterdir())) == 1


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "x" * 33, "a b"])
def test_bad_batch_ids_rejected(tmp_path: pathlib.Path, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid batch id"):
        BatchStore(tmp_path).path(bad)
