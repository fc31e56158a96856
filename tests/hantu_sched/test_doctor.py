"""doctor proves the credentials with kisclient against the fake KIS on loopback, reuses a
stored token instead of issuing another, says when it could not check, and refuses universe
codes kisclient refuses. Everything goes through the real CLI (``main([...])``)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from hantu_sched._cli import main
from kisclient.testing import FakeApp, FakeKIS, FakeKISServer

TOKEN_PATH = "/oauth2/tokenP"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    for name in list(os.environ):
        if name.startswith(("KIS_", "HANTU_")):
            monkeypatch.delenv(name)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    monkeypatch.setenv("KIS_STATE_DIR", str(state))
    monkeypatch.setenv("KIS_ENV", "paper")
    (tmp_path / "d").mkdir()


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeKIS, FakeApp]]:
    fake = FakeKIS(seed=7)
    app = fake.add_app(env="paper")
    with FakeKISServer(fake) as server:
        monkeypatch.setenv("KIS_BASE_URL", server.base_url("paper"))
        yield fake, app


def _doctor(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, *extra: str
) -> tuple[int, dict[str, str], str]:
    code = main(["doctor", "--data-dir", str(tmp_path / "d"), "--timeout", "2", *extra])
    out, err = capsys.readouterr()
    lines = {line.split()[1]: line for line in out.splitlines()[:-1]}
    return code, lines, out + err


def _use(monkeypatch: pytest.MonkeyPatch, app: FakeApp, *, key: str = "", secret: str = "") -> None:
    monkeypatch.setenv("KIS_APP_KEY", key or app.app_key)
    monkeypatch.setenv("KIS_APP_SECRET", secret or app.app_secret)
    monkeypatch.setenv("KIS_ACCOUNT", app.account)


def test_doctor_issues_one_token_then_reuses_the_stored_one(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    loopback: tuple[FakeKIS, FakeApp],
) -> None:
    fake, app = loopback
    _use(monkeypatch, app)
    code, lines, _ = _doctor(capsys, tmp_path)
    assert code == 0, lines
    assert lines["credentials"].startswith("OK"), lines["credentials"]
    assert "KIS accepted them (issued one token, stored for the next run)" in lines["credentials"]
    assert fake.stats.token_issuances(app.app_key) == 1
    assert lines["token"].startswith("OK") and "valid until" in lines["token"]

    code, lines, _ = _doctor(capsys, tmp_path)
    assert code == 0, lines
    assert "reused the stored token valid until" in lines["credentials"], lines["credentials"]
    assert "no new token issued" in lines["credentials"]
    assert fake.stats.token_issuances(app.app_key) == 1  # the 1-per-minute rule is respected
    assert fake.stats.token_calls(app.app_key) == 1


@pytest.mark.parametrize("wrong", ["key", "secret"])
def test_doctor_fails_credentials_kis_refuses_without_printing_them(
    wrong: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    loopback: tuple[FakeKIS, FakeApp],
) -> None:
    fake, app = loopback
    bad_key = "PS" + "x" * 34
    bad_secret = "y" * 180
    if wrong == "key":
        _use(monkeypatch, app, key=bad_key)
    else:
        _use(monkeypatch, app, secret=bad_secret)
    code, lines, everything = _doctor(capsys, tmp_path)
    assert code == 1
    line = lines["credentials"]
    assert line.startswith("FAIL") and "KIS refused them" in line, line
    assert "EGW001" in line, line  # KIS's own code (EGW00103 unknown key, EGW00105 secret)
    assert fake.stats.token_calls(bad_key if wrong == "key" else app.app_key) == 1
    for secret in (bad_key, bad_secret, app.app_secret):
        assert secret not in everything


def test_doctor_says_it_did_not_check_when_kis_does_not_answer(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = FakeKIS(seed=7).add_app(env="paper")
    with FakeKISServer(FakeKIS()) as server:
        closed = server.base_url("paper")
    monkeypatch.setenv("KIS_BASE_URL", closed)  # the port is released: nobody listens
    _use(monkeypatch, app)
    code, lines, _ = _doctor(capsys, tmp_path)
    assert code == 1  # base_url fails; the credentials are not judged
    line = lines["credentials"]
    assert line.startswith("WARN") and "NOT checked against KIS" in line, line
    assert "KISConnectionError" in line


def test_doctor_without_credentials_sends_nothing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    loopback: tuple[FakeKIS, FakeApp],
) -> None:
    fake, _ = loopback
    code, lines, _ = _doctor(capsys, tmp_path)
    assert code == 1
    assert lines["credentials"].startswith("FAIL  credentials  missing credential(s)")
    assert fake.stats.requests(TOKEN_PATH) == 0


def test_doctor_fails_universe_codes_kisclient_refuses(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    loopback: tuple[FakeKIS, FakeApp],
) -> None:
    _, app = loopback
    _use(monkeypatch, app)
    universe = tmp_path / "universe.txt"
    universe.write_text("005930 5930\n000660 A035720\n")
    monkeypatch.setenv("HANTU_PIPELINE_UNIVERSE", str(universe))
    code, lines, _ = _doctor(capsys, tmp_path)
    assert code == 1
    assert lines["jobs"].startswith("FAIL"), lines["jobs"]
    assert "1 of 4 codes are not KRX codes" in lines["jobs"]
    assert "'5930'" in lines["jobs"]
    universe.write_text("005930 000660 A035720\n")  # a type prefix is fine
    code, lines, _ = _doctor(capsys, tmp_path)
    assert lines["jobs"].startswith("OK") and "universe 3 codes" in lines["jobs"], lines["jobs"]
    assert code == 0, lines


def test_doctor_uses_kis_variables_from_the_credentials_file(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    loopback: tuple[FakeKIS, FakeApp],
) -> None:
    """KIS_ENV, KIS_BASE_URL and KIS_STATE_DIR in the credentials file are used, below the
    environment: the token is issued by the loopback server the file names."""
    fake, app = loopback
    base_url = os.environ["KIS_BASE_URL"]
    for name in ("KIS_BASE_URL", "KIS_ENV", "KIS_STATE_DIR"):
        monkeypatch.delenv(name)
    state = tmp_path / "file-state"
    creds = tmp_path / "credentials.env"
    creds.write_text(
        f"KIS_APP_KEY={app.app_key}\nKIS_APP_SECRET={app.app_secret}\n"
        f"KIS_ACCOUNT={app.account}\nKIS_ENV=paper\nexport KIS_BASE_URL={base_url}\n"
        f"KIS_STATE_DIR={state}\n"
    )
    creds.chmod(0o600)
    monkeypatch.setenv("HANTU_CREDENTIALS_FILE", str(creds))
    code, lines, _ = _doctor(capsys, tmp_path)
    assert lines["config"] == "OK    config       embedded defaults; KIS paper"
    assert "KIS accepted them (issued one token" in lines["credentials"], lines["credentials"]
    assert fake.stats.token_issuances(app.app_key) == 1
    assert str(state) in lines["state_dir"]
    assert code == 0, lines


@pytest.mark.parametrize("good", [True, False])
def test_doctor_proves_the_data_key_on_the_real_host(
    good: bool,
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeKIS(seed=7)
    paper, real = fake.add_app(env="paper"), fake.add_app(env="real")
    secret = real.app_secret if good else "z" * 180
    with FakeKISServer(fake) as server:
        monkeypatch.setenv("KIS_BASE_URL", server.base_url("paper"))
        monkeypatch.setenv("KIS_DATA_BASE_URL", server.base_url("real"))
        _use(monkeypatch, paper)
        monkeypatch.setenv("KIS_DATA_APP_KEY", real.app_key)
        monkeypatch.setenv("KIS_DATA_APP_SECRET", secret)
        code, lines, everything = _doctor(capsys, tmp_path)
    line = lines["credentials"]
    assert "data key (real, market data)" in line, line
    assert fake.stats.token_calls(real.app_key) == 1
    assert fake.stats.token_issuances(paper.app_key) == 1
    calendar = lines["calendar"]
    if good:
        assert code == 0 and line.startswith("OK"), line
        assert fake.stats.token_issuances(real.app_key) == 1  # the calendar reused the token
        # chk-holiday on the real host with the data key; the fake opens every weekday, so it
        # agrees unless a KRX holiday falls in the next 30 days (then it is named)
        assert "chk-holiday" in calendar, calendar
        agrees = "agrees with KIS's chk-holiday" in calendar
        assert agrees != ("disagrees" in calendar and "(KIS: open)" in calendar), calendar
        assert fake.stats.requests("/uapi/domestic-stock/v1/quotations/chk-holiday") == 1
    else:
        assert code == 1 and line.startswith("FAIL"), line
        assert "data key (real, market data): KIS refused them" in line
        assert "not cross-checked" in calendar, calendar  # no second token attempt
    assert secret not in everything and real.app_key not in everything


def test_one_data_variable_without_the_other_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    loopback: tuple[FakeKIS, FakeApp],
) -> None:
    _, app = loopback
    _use(monkeypatch, app)
    monkeypatch.setenv("KIS_DATA_APP_KEY", "real-key")
    code, lines, _ = _doctor(capsys, tmp_path)
    assert code == 1
    assert "KIS_DATA_APP_KEY and KIS_DATA_APP_SECRET go together" in lines["credentials"]
