"""The scheduler on PostgreSQL in-process (a FakeClock day): a whole day, batch documents in the
database, a refused second leader, a standby taking over a cleanly stopped leader's day without
repeating its work, ``status`` naming the leader and the last takeover, and ``doctor``'s
journal check.

A fake clock's waits jump, so these runs use a lease longer than their day (renewals run on a
real or warped clock: tests/hantu_sched/test_pg_failover.py)."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import socket

import pytest

from hantu_sched import (
    KST,
    FakeClock,
    IntegratedScheduler,
    JobState,
    SchedulerConfig,
    SystemClock,
)
from hantu_sched._batch import BATCH_DIR, BatchHealth
from hantu_sched._cli import build_parser, main
from hantu_sched._inspect import _check_journal, format_status, status_report
from hantu_sched._pg_storage import LeaseHeldError, PostgresStorage
from hantu_sched._settings import load_settings
from hantu_sched.testing import JobLog, make_test_jobs
from pg_support import PgServer

DAY = dt.date(2026, 9, 28)
DAY_LEASE = 2 * 86400.0


def at(hhmm: str) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time.fromisoformat(hhmm), KST)


def _scheduler(
    url: str, clock: FakeClock, data_dir: pathlib.Path, log: JobLog, *, standby: bool = False
) -> tuple[IntegratedScheduler, PostgresStorage]:
    storage = PostgresStorage(url, deployment="desk", clock=clock, lease_s=DAY_LEASE)
    scheduler = IntegratedScheduler(
        SchedulerConfig(), storage, clock, make_test_jobs(log), data_dir=data_dir, standby=standby
    )
    return scheduler, storage


def test_a_day_on_postgresql_keeps_everything_in_the_database(
    pg_url: str, tmp_path: pathlib.Path
) -> None:
    clock, log = FakeClock(at("05:50")), JobLog()
    scheduler, _storage = _scheduler(pg_url, clock, tmp_path / "host-a", log)
    try:
        scheduler.run(until=at("23:00"))
        states = {str(r.key): r.state for r in scheduler.storage.list_jobs(DAY)}
        assert set(states.values()) == {JobState.DONE} and len(states) == 8
        assert len(log.of("start")) == 8
        assert not (tmp_path / "host-a" / BATCH_DIR).exists()  # the documents are in the DB
        other = PostgresStorage(pg_url, deployment="desk", read_only=True)
        try:
            health = other.batch_store(tmp_path / "host-b").health_all(DAY, ("1", "2", "3", "4"))
            assert set(health.values()) == {BatchHealth.VALID}
            assert set(other.get_selection(DAY)) == {"1", "2", "3", "4"}
        finally:
            other.close()
    finally:
        scheduler.storage.close()


def test_a_second_leader_is_refused_and_a_standby_takes_over_the_rest_of_the_day(
    pg_url: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, log = FakeClock(at("05:50")), JobLog()
    first, first_store = _scheduler(pg_url, clock, tmp_path / "host-a", log)
    second, _ = _scheduler(pg_url, clock, tmp_path / "host-b", log)
    standby, _ = _scheduler(pg_url, clock, tmp_path / "host-b", log, standby=True)
    try:
        first_store.claim("host a", clock.now())  # host a leads (its run has not returned)
        with pytest.raises(LeaseHeldError, match="led by host a"):
            second.run(until=at("23:00"))
        first_store.release()
        first.run(until=at("07:25"))  # leads until 07:25, then stops cleanly (releases)
        done_by_a = {str(r.key) for r in first.storage.list_jobs(DAY) if r.state is JobState.DONE}
        assert done_by_a == {"screening@2026-09-28", *(f"selection[{b}]@2026-09-28" for b in "123")}
        standby.run(until=at("23:00"))
        records = standby.storage.list_jobs(DAY)
        assert {r.state for r in records} == {JobState.DONE} and len(records) == 8
        starts = [(e.job, e.batch) for e in log.of("start")]
        assert len(starts) == len(set(starts)) == 8  # nothing ran twice across the hosts
        monkeypatch.delenv("HANTU_CONFIG", raising=False)
        settings = load_settings(
            environ={"HANTU_STORAGE": pg_url, "HANTU_DEPLOYMENT": "desk"},
            data_dir=tmp_path / "host-c",
        )
        report = status_report(settings, at("23:30"), DAY)
        lead = report["leadership"]
        assert lead["deployment"] == "desk" and lead["epoch"] == 3
        assert (
            lead["last_takeover"]["from"]
            == f"hantu_sched pid {os.getpid()} on {socket.gethostname()}"
        )
        assert {job["state"] for job in report["jobs"]} == {"done"}
        assert set(report["batches"].values()) == {"valid"}
        text = format_status(report)
        assert "leader of deployment 'desk': nobody (lease lapsed" in text
        assert "last takeover: 2026-09-28T07:25:00+09:00 by " in text
    finally:
        for scheduler in (first, second, standby):
            scheduler.storage.close()


def test_doctor_checks_the_shared_journal(
    pg_url: str, pg_server: PgServer, tmp_path: pathlib.Path
) -> None:
    def check(url: str) -> tuple[str, str]:
        settings = load_settings(environ={"HANTU_STORAGE": url}, data_dir=tmp_path)
        result = _check_journal(settings, at("08:00"))
        return result.status, result.detail

    status, detail = check(pg_url)
    assert status == "OK" and "no hantu_sched schema yet" in detail
    storage = PostgresStorage(pg_url, clock=FakeClock(at("08:00")))
    try:
        storage.claim("host a", at("08:00"))
    finally:
        storage.close()
    status, detail = check(pg_url)
    assert status == "OK" and "reachable; leader of deployment 'default': host a" in detail
    status, detail = check(pg_server.url("no_such_database"))
    assert status == "FAIL" and "no_such_database" in detail


def test_run_refuses_a_led_deployment_in_one_line(
    pg_url: str,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in list(os.environ):
        if name.startswith(("KIS_", "HANTU_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KIS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("KIS_APP_KEY", "PS" + "k" * 34)
    monkeypatch.setenv("KIS_APP_SECRET", "s" * 180)
    monkeypatch.setenv("KIS_ACCOUNT", "12345678-01")
    monkeypatch.setenv("HANTU_STORAGE", pg_url)
    now = SystemClock().now()
    holder = PostgresStorage(pg_url)
    try:
        holder.claim("host a", now)
        until = (now + dt.timedelta(hours=1)).isoformat()
        code = main(["run", "--data-dir", str(tmp_path / "d"), "--until", until])
    finally:
        holder.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert [line for line in err if "led by host a" in line] == [err[-1]], err
    assert "Traceback" not in "\n".join(err)
    assert build_parser().parse_args(["run", "--standby"]).standby is True
