"""Issue 9, item 6: no account number, app key, app secret or access token in any log line of a
whole simulated day, nor in the text of errors whose answers carry them."""

from __future__ import annotations

import datetime as dt
import io
import logging
import pathlib
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

import hantu_sched._simulate as simulate_module
from daemon_support import PaperDaemon
from hantu_sched import KST, FakeClock
from kis_support import make_fake, sync_client
from kisclient import GatewayError, KISError
from kisclient._redaction import redact
from kisclient.testing import FakeApp, FakeKIS, Fault

DAY = dt.date(2026, 6, 4)  # a Thursday, regular session
BALANCE_PATH = "/uapi/domestic-stock/v1/trading/inquire-balance"
TOKEN_PATH = "/oauth2/tokenP"


class _Everything(logging.Handler):
    """Keeps every record, formatted with its traceback, whatever its logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def every_log_line() -> Iterator[_Everything]:
    """The root logger at DEBUG with a catch-all handler; the libraries' top loggers get it too,
    since the simulation stops their propagation while it runs."""
    handler = _Everything()
    root = logging.getLogger()
    tops = [root, logging.getLogger("kisclient"), logging.getLogger("hantu_sched")]
    previous = root.level
    root.setLevel(logging.DEBUG)
    for logger in tops:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in tops:
            logger.removeHandler(handler)
        root.setLevel(previous)


def secrets_of(fakes: list[FakeKIS]) -> dict[str, str]:
    """label → secret: every app's account number, key and secret, every token issued, and the
    start of any JWT (a token cut off anywhere still begins with it)."""
    found: dict[str, str] = {"JWT fragment": "eyJ"}
    for fake in fakes:
        for n, app in enumerate(fake.apps):
            found |= {f"CANO#{n}": app.cano, f"app key#{n}": app.app_key}
            found[f"app secret#{n}"] = app.app_secret
        for n, token in enumerate(fake._core.tokens):
            found[f"access token#{n}"] = token
    return found


def leaks(texts: list[str], secrets: dict[str, str]) -> list[tuple[str, str]]:
    """(label, text) for every text containing a secret."""
    return [(label, text) for text in texts for label, value in secrets.items() if value in text]


def test_item_6_no_secret_in_any_log_line_of_a_simulated_day(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, every_log_line: _Everything
) -> None:
    """simulate_day with every logger at DEBUG: no account number, key, secret or token logged."""
    fakes: list[FakeKIS] = []

    class RecordedFakeKIS(FakeKIS):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            fakes.append(self)

    monkeypatch.setattr(simulate_module, "FakeKIS", RecordedFakeKIS)
    out = io.StringIO()
    result = simulate_module.simulate_day(DAY, tmp_path / "sim", universe_size=40, out=out)
    assert result.complete
    secrets = secrets_of(fakes)
    assert any(label.startswith("access token") for label in secrets)
    lines = every_log_line.lines
    assert any("HTTP Request" in line for line in lines)
    assert any("CANO=***" in line for line in lines)  # account calls were logged, masked
    assert leaks([*lines, out.getvalue()], secrets) == []


def test_item_6_no_secret_in_any_log_line_of_run_daemon(
    tmp_path: pathlib.Path, every_log_line: _Everything
) -> None:
    """run_daemon for a whole day on a fake clock, every logger at DEBUG: no secret logged."""
    clock = FakeClock(dt.datetime(2026, 6, 4, 5, 30, tzinfo=KST))
    fake = FakeKIS(clock=clock, seed=2, universe_size=40)
    code = PaperDaemon.create(tmp_path, fake).run(clock, dt.datetime(2026, 6, 5, 0, 0, tzinfo=KST))
    assert code == 0
    secrets = secrets_of([fake])
    assert any(label.startswith("access token") for label in secrets)
    assert any("CANO=***" in line for line in every_log_line.lines)
    assert leaks(every_log_line.lines, secrets) == []


def error_texts(error: KISError) -> list[str]:
    """Everything an error shows: str, repr, raw body, message, traceback."""
    shown = [str(error), repr(error), error.raw_body or "", error.msg1 or ""]
    return [*shown, "".join(traceback.format_exception(error))]


def paper_client(tmp_path: pathlib.Path) -> tuple[FakeKIS, FakeApp, Any]:
    fake, clock = make_fake()
    app = fake.add_app("paper")
    return fake, app, sync_client(fake, app, clock, tmp_path)


@pytest.mark.parametrize("kind", ["malformed_json", "truncated_json"])
def test_item_6_balance_error_shows_no_account_number(tmp_path: pathlib.Path, kind: str) -> None:
    """A spoiled balance answer (its ctx_area_fk100 holds the account): the error hides it."""
    fake, app, client = paper_client(tmp_path)
    with client:
        fake.seed_holdings(app.app_key, dict.fromkeys(fake.universe[:30], 1))
        fake.faults.add(Fault(kind, path=BALANCE_PATH, times=100))  # type: ignore[arg-type]
        with pytest.raises(GatewayError) as caught:
            client.get_balance()
    assert caught.value.raw_body
    assert leaks(error_texts(caught.value), secrets_of([fake])) == []


def test_item_6_truncated_token_answer_shows_no_token(tmp_path: pathlib.Path) -> None:
    """tokenP's answer is cut in half (the token in it): the error's body masks it."""
    fake, _app, client = paper_client(tmp_path)
    with client:
        fake.faults.add(Fault("truncated_json", path=TOKEN_PATH))
        with pytest.raises(KISError) as caught:
            client.get_price("005930")
    secrets = secrets_of([fake])
    assert any(label.startswith("access token") for label in secrets)
    assert caught.value.raw_body
    assert caught.value.raw_body.startswith('{"access_token":')
    assert leaks(error_texts(caught.value), secrets) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET http://h/x?CANO=12345678&ACNT_PRDT_CD=01&tr_cont=&CTX_AREA_NK100=12345678%5E01%5E",
            "GET http://h/x?CANO=***&ACNT_PRDT_CD=***&tr_cont=&CTX_AREA_NK100=***",
        ),
        (
            '{"ctx_area_fk100": "12345678^01^", "rt_cd": "0"}',
            '{"ctx_area_fk100": "***", "rt_cd": "0"}',
        ),
        ("{'ctx_area_nk100': '12345678^01^A'}", "{'ctx_area_nk100': '***'}"),
        ('{"access_token":"eyJhbGciOi', '{"access_token":"***"'),  # cut off: quote closed
        ('{"appkey": "PSabc", "appsecret": "xyz"}', '{"appkey": "***", "appsecret": "***"}'),
        ("authorization: Bearer abc.def", "authorization: Bearer ***"),
        ("token eyJhbGciOi.eyJzdWIi.c2ln here", "token *** here"),
        ("no secrets: access token (env=real, key=1a2b3c4d)", None),
    ],
)
def test_redact_masks_secret_values_only(text: str, expected: str | None) -> None:
    """redact masks the values of secret fields, keeps everything else, and is idempotent."""
    assert redact(text) == (text if expected is None else expected)
    assert redact(redact(text)) == redact(text)
