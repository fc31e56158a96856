"""``python -m kisclient.testing serve`` for people who test their own bots: its options over a
subprocess (print-env, the paper port, the clock and market, seeding, disconnects), and the
fake's moving, deterministic prices and realistic universe."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from kisclient import KST, FakeClock, KISClient, MarketClosed
from kisclient._config import ENDPOINTS, Env
from kisclient._settings import ENV_VARS, settings_from_env
from kisclient.testing import FakeKIS, FakeKISServer

SRC = Path(__file__).parents[2] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC)}
PRICE_PATH = ENDPOINTS["inquire_price"].path
PRICE_TR = ENDPOINTS["inquire_price"].tr_id(Env.REAL)
#: A Thursday, inside the regular session.
SESSION = dt.datetime(2026, 11, 26, 10, 0, tzinfo=KST)
_CODE = re.compile(r"[0-9]{4}[0-9A-HJ-NP-TV-Z]{2}|[5-8][0-9A-HJ-NP-TV-Z][0-9][0-9A-HJ-NP-TV-Z]{3}")


class Served:
    """A ``serve`` process: the printed lines as a dict, its stderr kept in a file."""

    def __init__(self, proc: subprocess.Popen[str], values: dict[str, str], err: Path) -> None:
        self.proc = proc
        self.values = values
        self.err = err
        self.real_url = values["KIS_BASE_URL"]
        self.paper_url = values["KIS_PAPER_BASE_URL"]

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8")


@contextlib.contextmanager
def serve(tmp_path: Path, *args: str) -> Iterator[Served]:
    err = tmp_path / f"serve-{time.monotonic_ns()}.err"
    command = [sys.executable, "-m", "kisclient.testing", "serve", "--universe", "40", *args]
    with err.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=ENV)
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip() for _ in range(15)]
    values = dict(line.split("=", 1) for line in lines[2:])
    assert values["KIS_BASE_URL"] == lines[0] and values["KIS_PAPER_BASE_URL"] == lines[1]
    try:
        yield Served(proc, values, err)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        tail = proc.stdout.read().strip().splitlines()
        proc.stdout.close()
        assert tail and tail[-1].startswith("STATS ")


def token(url: str, key: str, secret: str) -> str:
    answer = httpx.post(
        url + "/oauth2/tokenP",
        json={"grant_type": "client_credentials", "appkey": key, "appsecret": secret},
        timeout=5.0,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def client(served: Served, env: Literal["real", "paper"], state: Path) -> KISClient:
    prefix = "KIS_PAPER_" if env == "paper" else "KIS_"
    v = served.values
    return KISClient(
        v[prefix + "APP_KEY"],
        v[prefix + "APP_SECRET"],
        env=env,
        account=v[prefix + "ACCOUNT"],
        base_url=v[prefix + "BASE_URL"],
        state_dir=state,
    )


# --- --print-env ----------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["real", "paper"])
def test_print_env_is_eval_able_and_names_what_from_env_reads(tmp_path: Path, env: str) -> None:
    pid_file = tmp_path / "fake.pid"
    command = [
        sys.executable, "-m", "kisclient.testing", "serve", "--seed", "5", "--universe", "40",
        "--print-env", "--env", env, "--pid-file", str(pid_file),
    ]  # fmt: skip
    printed = subprocess.run(
        command, capture_output=True, text=True, env=ENV, timeout=30, check=True
    ).stdout
    try:
        lines = printed.splitlines()
        names = [line.split("=", 1)[0].removeprefix("export ") for line in lines]
        assert all(line.startswith("export KIS_") for line in lines)
        assert names == [
            "KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ENV", "KIS_ACCOUNT", "KIS_BASE_URL",
            "KIS_WS_URL", "KIS_HTS_ID",
        ]  # fmt: skip
        assert set(names) <= set(ENV_VARS)
        # eval in a real shell, then read the environment back
        script = f"eval {shlex.quote(printed)}; env"
        shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
        seen = dict(
            line.split("=", 1) for line in shell.stdout.splitlines() if line.startswith("KIS_")
        )
        expected = FakeKIS(seed=5).add_app("real")
        if env == "paper":
            fresh = FakeKIS(seed=5)
            fresh.add_app("real")
            expected = fresh.add_app("paper")
        assert seen["KIS_ENV"] == env
        assert seen["KIS_APP_KEY"] == expected.app_key
        assert seen["KIS_APP_SECRET"] == expected.app_secret
        assert seen["KIS_ACCOUNT"] == expected.account
        assert seen["KIS_HTS_ID"] == expected.hts_id
        assert seen["KIS_WS_URL"].startswith("ws://127.0.0.1:")
        # the server runs in the background: from_env reaches it
        for _ in range(50):
            if pid_file.exists():
                break
            time.sleep(0.1)
        settings: dict[str, Any] = dict(settings_from_env(seen))
        with KISClient(**settings, state_dir=tmp_path / "state") as kis:
            assert kis.env == env
            assert kis.get_price("005930").price > 0
    finally:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


def test_print_env_foreground_closes_stdout_and_keeps_serving(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "kisclient.testing", "serve", "--universe", "40",
        "--print-env", "--env", "paper", "--foreground",
    ]  # fmt: skip
    err = tmp_path / "err"
    with err.open("w") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=ENV)
    try:
        assert proc.stdout is not None
        printed = proc.stdout.read()  # returns: stdout is closed after the variables
        values = dict(line.removeprefix("export ").split("=", 1) for line in printed.splitlines())
        assert values["KIS_ENV"] == "paper"
        token(values["KIS_BASE_URL"], values["KIS_APP_KEY"], values["KIS_APP_SECRET"])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        if proc.stdout is not None:
            proc.stdout.close()
    assert err.read_text().splitlines()[-1].startswith("STATS ")


# --- the paper port -------------------------------------------------------------------------


def test_paper_has_its_own_port_and_absolute_paths_reach_it(tmp_path: Path) -> None:
    with serve(tmp_path, "--real-limit", "0", "--paper-limit", "0") as served:
        v = served.values
        assert served.paper_url != served.real_url
        paper_token = token(served.paper_url, v["KIS_PAPER_APP_KEY"], v["KIS_PAPER_APP_SECRET"])
        # a client that joins absolute paths to its domain
        headers = {
            "authorization": f"Bearer {paper_token}",
            "appkey": v["KIS_PAPER_APP_KEY"],
            "appsecret": v["KIS_PAPER_APP_SECRET"],
            "tr_id": PRICE_TR,
        }
        params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
        absolute = httpx.URL(served.paper_url).join(PRICE_PATH)
        answer = httpx.get(absolute, params=params, headers=headers, timeout=5.0)
        assert answer.status_code == 200 and answer.json()["rt_cd"] == "0"
        # the real app is refused on the paper port (it is paper there), accepted on its own
        assert (
            httpx.post(
                served.paper_url + "/oauth2/tokenP",
                json={
                    "grant_type": "client_credentials",
                    "appkey": v["KIS_APP_KEY"],
                    "appsecret": v["KIS_APP_SECRET"],
                },
                timeout=5.0,
            ).status_code
            != 200
        )
        token(served.real_url, v["KIS_APP_KEY"], v["KIS_APP_SECRET"])
        # the single-port alias keeps working
        alias = httpx.get(
            served.real_url + "/paper" + PRICE_PATH, params=params, headers=headers, timeout=5.0
        )
        assert alias.status_code == 200 and alias.json()["rt_cd"] == "0"


def test_server_object_serves_paper_on_its_own_port() -> None:
    fake = FakeKIS(rate_limits={"paper": None})
    app = fake.add_app("paper")
    with FakeKISServer(fake) as server:
        url = server.base_url("paper")
        assert url == f"http://127.0.0.1:{server.paper_port}"
        bearer = token(url, app.app_key, app.app_secret)
        headers = {
            "authorization": f"Bearer {bearer}",
            "appkey": app.app_key,
            "appsecret": app.app_secret,
            "tr_id": PRICE_TR,
        }
        params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
        for base in (url, server.alias_url()):
            answer = httpx.get(base + PRICE_PATH, params=params, headers=headers, timeout=5.0)
            assert answer.json()["rt_cd"] == "0"
    assert fake.stats.requests(path=PRICE_PATH) == 2


# --- clock, market, seeding -----------------------------------------------------------------


def _date_of(answer: httpx.Response) -> dt.datetime:
    parsed = email.utils.parsedate_to_datetime(answer.headers["Date"])
    return parsed.astimezone(KST)


def test_now_sets_the_clock_and_market_open_takes_orders_at_night(tmp_path: Path) -> None:
    night = "2026-12-01T22:00:00"  # a Tuesday night, KST
    with serve(tmp_path, "--now", night, "--market", "open", "--paper-limit", "0") as served:
        v = served.values
        # the Date of an Approval answer (a token here would make the client below wait out
        # the one-token-a-minute rule)
        answer = httpx.post(
            served.paper_url + "/oauth2/Approval",
            json={
                "grant_type": "client_credentials",
                "appkey": v["KIS_PAPER_APP_KEY"],
                "secretkey": v["KIS_PAPER_APP_SECRET"],
            },
            timeout=5.0,
        )
        moment = _date_of(answer)
        start = dt.datetime(2026, 12, 1, 22, 0, tzinfo=KST)
        assert dt.timedelta(0) <= moment - start < dt.timedelta(seconds=30)
        with client(served, "paper", tmp_path / "s1") as kis:
            price = kis.get_price("005930").price
            result = kis.order_cash("buy", "005930", 1, price)
            assert result is not None
    with (
        serve(tmp_path, "--now", night, "--market", "auto", "--paper-limit", "0") as served,
        client(served, "paper", tmp_path / "s2") as kis,
        pytest.raises(MarketClosed),
    ):
        kis.order_cash("buy", "005930", 1, kis.get_price("005930").price)


def test_clock_offsets_parse() -> None:
    from kisclient.testing.__main__ import parse_clock

    base = FakeClock(SESSION)
    assert parse_clock("+3h", base).now() == SESSION + dt.timedelta(hours=3)
    assert parse_clock("-90m", base).now() == SESSION - dt.timedelta(minutes=90)
    assert parse_clock("2026-11-27T09:30", base).now() == dt.datetime(
        2026, 11, 27, 9, 30, tzinfo=KST
    )
    assert parse_clock("system", base) is base
    moving = parse_clock("2026-11-27T09:30", base)
    base.advance(5)
    assert moving.now() == dt.datetime(2026, 11, 27, 9, 30, 5, tzinfo=KST)
    with pytest.raises(ValueError, match="ISO time"):
        parse_clock("tomorrow", base)


def test_cash_and_holdings_seeding(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.toml"
    seed_file.write_text(
        'cash = 7000000\n[holdings]\n"000660" = 4\n[paper.holdings]\n"0037T0" = 2\n',
        encoding="utf-8",
    )
    args = ["--seed-file", str(seed_file), "--hold", "005930=10", "--paper-limit", "0"]
    with serve(tmp_path, *args, "--cash", "5000000") as served:
        with client(served, "paper", tmp_path / "p") as kis:
            balance = kis.get_balance()
            held = {h.code: h.quantity for h in balance.holdings}
            assert held == {"005930": 10, "000660": 4, "0037T0": 2}
            assert balance.summary.cash == 5_000_000
        with client(served, "real", tmp_path / "r") as kis:
            held = {h.code: h.quantity for h in kis.get_balance().holdings}
            assert held == {"005930": 10, "000660": 4}


def test_bad_seeding_is_refused(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "kisclient.testing", "serve", "--universe", "40"]
    for extra in (["--hold", "999999=1"], ["--hold", "005930"], ["--now", "yesterday"]):
        done = subprocess.run(
            [*base, *extra], capture_output=True, text=True, env=ENV, timeout=30, check=False
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stdout == ""


# --- disconnects ----------------------------------------------------------------------------


def test_a_client_that_goes_away_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    with serve(tmp_path, "--real-limit", "0") as served:
        host, port = served.real_url.removeprefix("http://").split(":")
        for body_sent in (b"", b'{"grant'):
            for _ in range(5):
                sock = socket.create_connection((host, int(port)))
                request = (
                    b"POST /oauth2/tokenP HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n" + body_sent
                )
                sock.sendall(request)
                # reset, not a clean close: the server's read fails mid-request
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
        # a burst of answers to a client that is gone before they are written
        v = served.values
        bearer = token(served.real_url, v["KIS_APP_KEY"], v["KIS_APP_SECRET"])
        head = (
            f"GET {PRICE_PATH}?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930 HTTP/1.1\r\n"
            f"Host: x\r\nauthorization: Bearer {bearer}\r\nappkey: {v['KIS_APP_KEY']}\r\n"
            f"appsecret: {v['KIS_APP_SECRET']}\r\ntr_id: {PRICE_TR}\r\n\r\n"
        ).encode()
        for _ in range(5):
            sock = socket.create_connection((host, int(port)))
            sock.sendall(head * 50)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        # the server notices the resets on its own threads: a deadline on its first line
        deadline = time.monotonic() + 10
        while "client went away" not in served.stderr():
            assert time.monotonic() < deadline, "no line about a client that went away"
            time.sleep(0.01)
        # still serving
        headers = {
            "authorization": f"Bearer {bearer}",
            "appkey": v["KIS_APP_KEY"],
            "appsecret": v["KIS_APP_SECRET"],
            "tr_id": PRICE_TR,
        }
        params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
        answer = httpx.get(served.real_url + PRICE_PATH, params=params, headers=headers)
        assert answer.json()["rt_cd"] == "0"
    err = served.stderr()  # complete: the server has exited
    assert "Traceback" not in err
    assert all(line.startswith("fake-kis: ") for line in err.splitlines()), err


# --- moving prices --------------------------------------------------------------------------


def test_prices_move_and_are_a_pure_function_of_the_second(tmp_path: Path) -> None:
    with serve(tmp_path, "--seed", "5", "--now", "2026-11-26T10:30:00", "--real-limit", "0") as s:
        v = s.values
        bearer = token(s.real_url, v["KIS_APP_KEY"], v["KIS_APP_SECRET"])
        headers = {
            "authorization": f"Bearer {bearer}",
            "appkey": v["KIS_APP_KEY"],
            "appsecret": v["KIS_APP_SECRET"],
            "tr_id": PRICE_TR,
        }
        reference = FakeKIS(seed=5, universe_size=40, moving_prices=True)
        with httpx.Client(base_url=s.real_url, headers=headers, timeout=5.0) as http:
            for code in reference.universe[:20]:
                listing = reference.listing(code)
                params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": listing.quote_code}
                answer = http.get(PRICE_PATH, params=params)
                price = int(answer.json()["output"]["stck_prpr"])
                when = _date_of(answer)  # whole seconds; the price may be a second older
                candidates = {
                    reference.price_at(code, when - dt.timedelta(seconds=back)) for back in (0, 1)
                }
                assert price in candidates, code


def test_in_process_path_moves_accumulates_and_agrees_with_bars() -> None:
    clock = FakeClock(SESSION)
    fake = FakeKIS(clock=clock, seed=5, universe_size=40, moving_prices=True)
    twin = FakeKIS(clock=FakeClock(SESSION), seed=5, universe_size=40, moving_prices=True)
    codes = fake.universe[:20]
    opening = {c: fake.price_of(c) for c in codes}
    assert opening == {c: twin.price_of(c) for c in codes}  # same second, same price
    volumes = []
    for hour in (10, 12, 14):
        clock.advance(
            (dt.datetime(2026, 11, 26, hour, 0, tzinfo=KST) - clock.now()).total_seconds()
        )
        bars = fake.minute_bars("005930")
        assert bars[-1].close == fake.price_of("005930")
        volumes.append(sum(b.volume for b in bars))
    assert volumes == sorted(volumes) and volumes[0] < volumes[-1]
    later = {c: fake.price_of(c) for c in codes}
    assert sum(later[c] != opening[c] for c in codes) >= 10  # prices move during the day
    # after the close the day's minute bars span the daily bar and end at its close
    clock.advance((dt.datetime(2026, 11, 26, 16, 0, tzinfo=KST) - clock.now()).total_seconds())
    universe = fake._core.universe
    day = SESSION.date()
    whole = universe.bar("005930", day)
    bars = fake.minute_bars("005930", day)
    assert bars[0].open == whole.open and bars[-1].close == whole.close == fake.price_of("005930")
    assert max(b.high for b in bars) == whole.high and min(b.low for b in bars) == whole.low
    assert sum(b.volume for b in bars) == whole.volume
    # set_price still overrides the path
    fake.set_price("005930", 70000)
    assert fake.price_of("005930") == 70000


def test_quote_volume_and_range_follow_the_day_so_far() -> None:
    clock = FakeClock(SESSION)
    fake = FakeKIS(clock=clock, seed=5, universe_size=40, moving_prices=True)
    app = fake.add_app("real")
    with httpx.Client(
        transport=fake.transport(), base_url="https://openapi.koreainvestment.com:9443"
    ) as http:
        answer = http.post(
            "/oauth2/tokenP",
            json={
                "grant_type": "client_credentials",
                "appkey": app.app_key,
                "appsecret": app.app_secret,
            },
        )
        headers = {
            "authorization": f"Bearer {answer.json()['access_token']}",
            "appkey": app.app_key,
            "appsecret": app.app_secret,
            "tr_id": PRICE_TR,
        }
        seen = []
        for _ in range(3):
            clock.advance(3600)
            params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "000660"}
            out = http.get(PRICE_PATH, params=params, headers=headers).json()["output"]
            bars = fake.minute_bars("000660")
            assert int(out["stck_prpr"]) == fake.price_of("000660") == bars[-1].close
            assert int(out["acml_vol"]) == sum(b.volume for b in bars)
            assert int(out["stck_hgpr"]) == max(b.high for b in bars)
            assert int(out["stck_lwpr"]) == min(b.low for b in bars)
            seen.append(int(out["acml_vol"]))
    assert seen == sorted(seen) and seen[0] < seen[-1]


def test_static_prices_stay_the_default_in_process() -> None:
    clock = FakeClock(SESSION)
    fake = FakeKIS(clock=clock, seed=5, universe_size=40)
    before = {c: fake.price_of(c) for c in fake.universe}
    clock.advance(4 * 3600)
    assert {c: fake.price_of(c) for c in fake.universe} == before


# --- the universe ---------------------------------------------------------------------------


def test_the_universe_lists_real_products_by_their_real_codes() -> None:
    fake = FakeKIS(universe_size=300)
    names = {code: fake.listing(code).name for code in fake.universe}
    for code, name in {
        "005930": "삼성전자",
        "000660": "SK하이닉스",
        "373220": "LG에너지솔루션",
        "207940": "삼성바이오로직스",
        "005380": "현대차",
        "035420": "NAVER",
        "035720": "카카오",
        "005935": "삼성전자우",
        "069500": "KODEX 200",
        "0037T0": "KB제32호스팩",
    }.items():
        assert names[code] == name
    kinds = {fake.listing(c).kind for c in fake.universe}
    assert {"stock", "preferred", "etf", "etn", "spac"} <= kinds
    assert fake.listing("Q530036").kind == "etn"
    assert any(code[4].isalpha() for code in fake.universe)  # 2024-reform codes
    assert all(_CODE.fullmatch(code) for code in fake.universe)
    assert len(set(fake.universe)) == 300
    assert len(FakeKIS(universe_size=40).universe) == 40
    small = FakeKIS(universe_size=40)
    assert any(small.listing(c).halted for c in small.universe)  # synthetic filler stays


def test_serve_universe_option(tmp_path: Path) -> None:
    with serve(tmp_path, "--universe", "25", "--real-limit", "0") as served:
        v = served.values
        bearer = token(served.real_url, v["KIS_APP_KEY"], v["KIS_APP_SECRET"])
        headers = {
            "authorization": f"Bearer {bearer}",
            "appkey": v["KIS_APP_KEY"],
            "appsecret": v["KIS_APP_SECRET"],
            "tr_id": PRICE_TR,
        }
        listed = FakeKIS(universe_size=25).universe
        outside = FakeKIS(universe_size=60).universe[30]
        for code, listed_there in ((listed[-1], True), (outside, False)):
            params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code}
            answer = httpx.get(served.real_url + PRICE_PATH, params=params, headers=headers)
            assert (int(answer.json()["output"]["stck_prpr"]) > 0) is listed_there
