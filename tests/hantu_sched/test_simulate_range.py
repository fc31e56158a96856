"""Multi-day simulation: consecutive days on one fake server and one paper account, closed days
skipped, the scheduler killed every day, positions and cash carried from day to day."""

from __future__ import annotations

import datetime as dt
import os
import pathlib

import pytest

from hantu_sched import SQLiteStorage
from hantu_sched._cli import main
from hantu_sched._simulate import RangeResult, SimulationError, simulate_range
from report_support import FIRST, LAST, KeepFake, simulated_range


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[RangeResult, KeepFake]:
    hooks = KeepFake()
    return simulated_range(tmp_path_factory.mktemp("range"), hooks), hooks


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("KIS_", "HANTU_")):
            monkeypatch.delenv(name)


def test_trading_days_run_and_closed_days_are_skipped(
    simulated: tuple[RangeResult, KeepFake],
) -> None:
    result, _ = simulated
    assert [d.trading_date for d in result.days] == [
        FIRST + dt.timedelta(days=n) for n in range((LAST - FIRST).days + 1)
    ]
    assert [str(d.trading_date) for d in result.trading_days] == [
        "2026-06-04", "2026-06-05", "2026-06-08"
    ]  # fmt: skip
    closed = [d for d in result.days if d.session is None]
    assert [d.closed_reason for d in closed] == ["weekend (Saturday)", "weekend (Sunday)"]
    assert all(not d.records and not d.events[1:] for d in closed)
    assert result.complete
    for day in result.trading_days:
        assert day.complete, (day.trading_date, day.incomplete, day.unplanned)
        assert day.restarts == 2  # killed mid-screening and mid-trading, every day
        assert {e.label for e in day.of("done")} >= {"screening", "trading", "performance"}
        assert all(e.at.date() == day.trading_date for e in day.events if e.kind != "scheduler")


def test_positions_and_cash_carry_from_day_to_day(
    simulated: tuple[RangeResult, KeepFake],
) -> None:
    result, hooks = simulated
    assert hooks.fake is not None and len(hooks.fake.apps) == 1  # one account throughout
    storage = SQLiteStorage(result.data_dir, read_only=True)
    try:
        snapshots = storage.list_records("balance_snapshot")
        performance = storage.get_record("performance", LAST.isoformat())
        assert isinstance(performance, dict)
    finally:
        storage.close()
    days = [d.trading_date.isoformat() for d in result.trading_days]
    assert sorted(snapshots) == days
    first, second = snapshots[days[0]], snapshots[days[1]]
    held_first = {h["code"]: h["quantity"] for h in first["holdings"]}
    held_second = {h["code"]: h["quantity"] for h in second["holdings"]}
    assert held_first and all(held_second.get(c, 0) >= q for c, q in held_first.items())
    # Day 2 spent from day 1's remaining cash (no fresh 100,000,000 KRW account).
    assert second["cash"] <= first["cash"] < 100_000_000 // 10
    # The last close's snapshot is the one fake account's state at the end of the range.
    app_key = hooks.fake.apps[0].app_key
    assert hooks.fake.cash(app_key) == snapshots[days[-1]]["cash"]
    last = {h["code"]: h["quantity"] for h in snapshots[days[-1]]["holdings"]}
    assert hooks.fake.holdings(app_key) == last
    # Prices moved: each close values the account differently; the performance job of the
    # last day saw every close of the range, and the close before it (the first snapshot's
    # previous close, the account's starting value): three daily returns.
    assert len({s["net_assets"] for s in snapshots.values()}) == 3
    assert first["previous_date"] == "2026-06-02"  # 06-03 is the local elections holiday
    assert first["previous_total"] == 100_000_000
    assert performance["observations"] == 4
    assert len(performance["daily_returns"]) == 3
    assert result.orders == len(hooks.fake.orders(app_key))
    assert result.orders == sum(d.orders for d in result.days)


def test_range_arguments_are_checked(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SimulationError, match="before --from"):
        simulate_range(LAST, FIRST, tmp_path / "x")
    with pytest.raises(SimulationError, match="outside the simulated day"):
        simulate_range(FIRST, LAST, tmp_path / "x", restart_at=[dt.time(5, 0)])
    assert not (tmp_path / "x").exists()


def test_cli_range_summary(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    code = main(["simulate", "--from", "2026-06-05", "--to", "2026-06-08", "--universe", "40",
                 "--restart-at", "11:00", "--quiet", "--data-dir", str(data_dir)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith(
        "simulating 2026-06-05 to 2026-06-08 (2 trading day(s), one account throughout);"
    )
    lines = out.splitlines()
    assert any(line.startswith("  2026-06-05 Fri  COMPLETE: 8/8 units done, 1 crash(es)")
               and "net assets" in line for line in lines)  # fmt: skip
    assert "  2026-06-06 Sat  closed (weekend (Saturday))" in lines
    assert any(line.startswith("range COMPLETE: 2 trading day(s), 2 crash(es)") for line in lines)
    assert any(line.startswith("account: ") and "over 3 close(s)" in line for line in lines)
    assert lines[-1] == (
        f"picture: python -m hantu_sched report --data-dir {data_dir} "
        "--from 2026-06-05 --to 2026-06-08"
    )


def test_cli_range_prints_a_header_per_day(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A weekend only: nothing runs, each day says why; the exit status is 0.
    code = main(["simulate", "--from", "2026-06-06", "--to", "2026-06-07",
                 "--data-dir", str(tmp_path / "d")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "=== 2026-06-06 (Saturday) ===" in out
    assert "=== 2026-06-07 (Sunday) ===" in out
    assert "2026-06-07 is not a KRX trading day (weekend (Sunday)): nothing runs" in out
    assert "range COMPLETE: 0 trading day(s)" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--from", "2026-06-04"], "--from and --to go together"),
        (["--to", "2026-06-04"], "--from and --to go together"),
        (
            ["--date", "2026-06-04", "--from", "2026-06-04", "--to", "2026-06-05"],
            "one or the other",
        ),
        (["--from", "2026-06-05", "--to", "2026-06-04"], "--to 2026-06-04 is before --from"),
    ],
)
def test_cli_range_bad_arguments_are_one_line(
    argv: list[str], fragment: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--data-dir", str(tmp_path / "d"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "d").exists()
