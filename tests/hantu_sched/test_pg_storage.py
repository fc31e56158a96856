"""PostgreSQL storage beyond the shared contract suite (test_storage.py): schema migrations,
the leadership lease and its fencing, a network partition, batch documents in the database.

A real PostgreSQL server (tests/pg_support.py), a fresh database per test; times come from a
:class:`FakeClock` the storages measure their lease on.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator

import psycopg
import pytest

from hantu_sched import KST, FakeClock, JobKey, JobRecord, JobState
from hantu_sched._batch import BatchHealth, BatchStore, batch_store_for
from hantu_sched._journal import attempt_from_record
from hantu_sched._pg_storage import (
    SCHEMA_VERSION,
    DatabaseBatchStore,
    LeaseHeldError,
    PostgresStorage,
    apply_migrations,
)
from hantu_sched._storage import DeposedError, StorageError
from pg_support import PgServer

DAY = dt.date(2026, 11, 19)
T = dt.datetime(2026, 11, 19, 6, 0, tzinfo=KST)
LEASE = 30.0
_roles = itertools.count(1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T)


@pytest.fixture
def opened() -> Iterator[list[PostgresStorage]]:
    """Storages the test opens (closed at the end)."""
    stores: list[PostgresStorage] = []
    yield stores
    for store in stores:
        store.close()


def _open(
    opened: list[PostgresStorage], url: str, clock: FakeClock, **kw: object
) -> PostgresStorage:
    store = PostgresStorage(url, clock=clock, lease_s=LEASE, **kw)  # type: ignore[arg-type]
    opened.append(store)
    return store


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM hantu_schema ORDER BY 1")]


# --- migrations -------------------------------------------------------------------------------


def test_an_empty_database_is_migrated_to_the_current_version(
    pg_url: str, clock: FakeClock, opened: list[PostgresStorage]
) -> None:
    store = _open(opened, pg_url, clock)
    assert _versions(pg_url) == list(range(1, SCHEMA_VERSION + 1)) == [1, 2]
    key = JobKey("selection", DAY, "1")
    store.put_job(JobRecord(key, JobState.DONE, 1, T, T, T))
    _open(opened, pg_url, clock)  # a second open (another host) changes nothing
    assert _versions(pg_url) == [1, 2]
    assert store.get_job(key) == JobRecord(key, JobState.DONE, 1, T, T, T)


def test_a_version_1_database_is_migrated_keeping_everything_and_backfilling_attempts(
    pg_url: str, clock: FakeClock, opened: list[PostgresStorage]
) -> None:
    rows = [
        JobRecord(JobKey("screening", DAY), JobState.DONE, 1, T, T, T + dt.timedelta(minutes=3)),
        JobRecord(JobKey("selection", DAY, "2"), JobState.RUNNING, 2, T, T),
        JobRecord(JobKey("trading", DAY), JobState.PENDING),  # never started: no attempt
    ]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert apply_migrations(conn, upto=1) == [1]
        for record in rows:
            conn.execute(
                "INSERT INTO jobs VALUES ('default', %s, %s, %s, %s)",
                (
                    DAY.isoformat(),
                    record.key.job,
                    record.key.batch or "",
                    json.dumps(record.to_dict()),
                ),
            )
        conn.execute("INSERT INTO records VALUES ('default', 'k', 'a', '[1, 2]')")
        conn.execute("INSERT INTO batch_files VALUES ('default', '1', 'x')")
    assert _versions(pg_url) == [1]
    store = _open(opened, pg_url, clock)
    assert _versions(pg_url) == [1, 2]
    assert store.list_jobs(DAY) == sorted(rows, key=lambda r: (r.key.job, r.key.batch or ""))
    expected = [a for a in map(attempt_from_record, rows) if a is not None]
    assert len(expected) == 2
    assert sorted(store.list_attempts(DAY), key=lambda a: a.key.job) == expected
    assert store.get_record("k", "a") == [1, 2]
    assert store.get_batch_document("1") == b"x"


def test_a_version_1_database_opened_read_only_is_untouched_but_shows_attempts(
    pg_url: str, clock: FakeClock, opened: list[PostgresStorage]
) -> None:
    record = JobRecord(JobKey("screening", DAY), JobState.RUNNING, 1, T, T)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        apply_migrations(conn, upto=1)
        conn.execute(
            "INSERT INTO jobs VALUES ('default', %s, 'screening', '', %s)",
            (DAY.isoformat(), json.dumps(record.to_dict())),
        )
    store = _open(opened, pg_url, clock, read_only=True)
    assert store.list_attempts(DAY) == [attempt_from_record(record)]
    with pytest.raises(StorageError, match="read-only"):
        store.put_record("k", "a", 1)
    assert _versions(pg_url) == [1]


def test_a_newer_schema_and_an_unreachable_server_are_one_line_storage_errors(
    pg_url: str, pg_server: PgServer, clock: FakeClock, opened: list[PostgresStorage]
) -> None:
    _open(opened, pg_url, clock)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO hantu_schema (version, description) VALUES (99, 'future')")
    with pytest.raises(StorageError, match="newer than this hantu_sched") as info:
        _open(opened, pg_url, clock)
    assert "\n" not in str(info.value)
    secret_url = f"postgresql://u:hunter2@127.0.0.1:{pg_server.port + 0}/nodb"
    with pytest.raises(StorageError) as info:
        _open(opened, secret_url, clock)
    assert "hunter2" not in str(info.value) and "\n" not in str(info.value)


# --- leadership -------------------------------------------------------------------------------


def test_one_leader_per_deployment_and_a_takeover_only_after_the_lease_lapsed(
    pg_url: str, clock: FakeClock, opened: list[PostgresStorage]
) -> None:
    a, b = _open(opened, pg_url, clock), _open(opened, pg_url, clock)
    assert a.claim("host a", clock.now()) == 1
    a.put_record("k", "from a", 1)
    with pytest.raises(LeaseHeldError, match="led by host a"):
        b.claim("host b", clock.now())
    clock.advance(LEASE / 3)
    a.renew(clock.now())  # renewed: valid for a lease from now
    clock.advance(LEASE - 1)
    with pytest.raises(LeaseHeldError):
        b.claim("host b", clock.now())
    clock.advance(1)  # no renewal since: lapsed
    assert b.claim("host b", clock.now()) == 2
    lease = b.lease()
    assert lease is not None and lease.holder == "host b" and lease.epoch == 2
    assert lease.last_takeover is not None
    assert (lease.last_takeover["from"], lease.last_takeover["to"]) == ("host a", "host b")
    other = _open(opened, pg_url, clock, deployment="another desk")
    assert other.claim("host c", clock.now()) == 1  # deployments lead independently
    assert other.get_record("k", "from a") is None


def test_a_deposed_leader_that_wakes_up_cannot_write_renew_or_act(
    pg_url: str, clock: FakeClock, opened: list[PostgresStorage]
) -> None:
    a, b = _open(opened, pg_url, clock), _open(opened, pg_url, clock)
    a.claim("host a", clock.now())
    clock.advance(LEASE + 1)  # host a was paused for longer than its lease
    b.claim("host b", clock.now())
    key = JobKey("trading", DAY)
    with pytest.raises(DeposedError):
        a.put_record("order", f"{DAY}/005930", {"status": "intent"})
    with pytest.raises(DeposedError):
        a.put_job(JobRecord(key, JobState.RUNNING, 1))
    with pytest.raises(DeposedError):
        a.renew(clock.now())
    with pytest.raises(DeposedError, match="no longer the leader"):
        a.check_owner()
    assert b.get_record("order", f"{DAY}/005930") is None and b.get_job(key) is None
    b.put_job(JobRecord(key, JobState.RUNNING, 1))
    assert a.get_job(key) == JobRecord(key, JobState.RUNNING, 1)  # reads still work


def test_a_paused_leader_refuses_its_own_writes_even_before_anyone_took_over(
    pg_url: str, clock: FakeClock, opened: list[PostgresStorage]
) -> None:
    a = _open(opened, pg_url, clock)
    a.claim("host a", clock.now())
    clock.advance(LEASE * 2 / 3 - 1)
    a.put_record("k", "in time", 1)
    a.check_owner()
    clock.advance(2)  # two thirds of the lease without a renewal
    with pytest.raises(DeposedError, match="not renewed in time"):
        a.check_owner()
    with pytest.raises(DeposedError):
        a.put_record("k", "late", 2)
    assert a.get_record("k", "late") is None


def test_a_partitioned_leader_is_demoted_before_the_standby_can_lead(
    pg_server: PgServer, clock: FakeClock, opened: list[PostgresStorage]
) -> None:
    database = pg_server.fresh_database()
    role = f"host_a_{next(_roles)}"
    pg_server.create_role(role)
    a = _open(opened, pg_server.url(database, user=role), clock)
    b = _open(opened, pg_server.url(database), clock)
    a.claim("host a", clock.now())
    clock.advance(LEASE / 3)
    a.renew(clock.now())
    renewed = clock.now()
    assert pg_server.partition(role) >= 1  # host a's sessions are cut, it cannot log in again
    try:
        clock.advance(LEASE / 3)
        with pytest.raises(StorageError) as failed:
            a.renew(clock.now())
        assert not isinstance(failed.value, DeposedError)  # unreachable, not (yet) deposed
        a.check_owner()  # still within its local validity
        with pytest.raises(StorageError):
            a.put_record("order", "x", {"status": "intent"})  # no intent, so no order
        with pytest.raises(StorageError):  # an outage, never taken for a corrupt batch
            a.batch_store("/nonexistent").health(DAY, "1")
        clock.set(renewed + dt.timedelta(seconds=LEASE * 2 / 3))
        with pytest.raises(DeposedError):
            a.check_owner()  # demoted: a third of the lease before anyone may lead
        with pytest.raises(LeaseHeldError):
            b.claim("host b", clock.now())  # the standby cannot lead yet
        clock.set(renewed + dt.timedelta(seconds=LEASE + 0.001))
        assert b.claim("host b", clock.now()) == 2
    finally:
        pg_server.heal(role)
    with pytest.raises(DeposedError):
        a.put_record("order", "x", {"status": "intent"})  # back online: fenced
    assert b.get_record("order", "x") is None


def test_a_clean_stop_releases_the_lease_for_an_immediate_takeover(
    pg_url: str, clock: FakeClock, opened: list[PostgresStorage]
) -> None:
    a, b = _open(opened, pg_url, clock), _open(opened, pg_url, clock)
    a.claim("host a", clock.now())
    a.release()
    assert b.claim("host b", clock.now()) == 2
    with pytest.raises(DeposedError):
        a.put_record("k", "a", 1)


# --- batch documents --------------------------------------------------------------------------


def test_batch_documents_live_in_the_database_with_the_file_evidence_rules(
    pg_url: str, clock: FakeClock, opened: list[PostgresStorage], tmp_path: object
) -> None:
    a, b = _open(opened, pg_url, clock), _open(opened, pg_url, clock)
    store = batch_store_for(a, "/nonexistent/host-a")
    assert isinstance(store, DatabaseBatchStore)
    assert isinstance(batch_store_for(object(), "/x"), BatchStore)
    assert store.health(DAY, "1") is BatchHealth.MISSING
    store.write(DAY, "1", [{"code": "005930"}], written_at=T)
    other_host = batch_store_for(b, "/nonexistent/host-b")
    assert other_host.health(DAY, "1") is BatchHealth.VALID
    assert other_host.read(DAY, "1") == [{"code": "005930"}]
    assert other_host.health(DAY + dt.timedelta(days=1), "1") is BatchHealth.STALE
    a.put_batch_document(
        "2", json.dumps({"trading_date": DAY.isoformat(), "batch_id": "1", "items": []}).encode()
    )
    assert other_host.health(DAY, "2") is BatchHealth.WRONG_ID
    a.put_batch_document("3", b"{not json")
    assert other_host.health(DAY, "3") is BatchHealth.CORRUPT
    a.put_batch_document("4", b"  ")
    assert other_host.health(DAY, "4") is BatchHealth.EMPTY
    assert other_host.read(DAY, "3") is None
    a.claim("host a", clock.now())
    clock.advance(LEASE + 1)
    b.claim("host b", clock.now())
    with pytest.raises(DeposedError):
        store.write(DAY, "1", [], written_at=T)  # a deposed leader's batch write is fenced
    assert other_host.read(DAY, "1") == [{"code": "005930"}]
