"""Run a third-party KIS client against ``python -m kisclient.testing serve`` (``nox -s peers``).

The peer is python-kis (``import pykis``; the version is pinned in the noxfile). Only its host
settings change: python-kis keeps its hosts in module constants (``REAL_DOMAIN``,
``VIRTUAL_DOMAIN``, imported by name into ``pykis.kis``), which this script points at the URLs
serve prints. Nothing of the client's code is edited.

For each environment (real, paper) it runs the quote, the daily chart (from the beginning, the way
python-kis asks for it), the balance, a buy order resting below the market, its revision, its
cancellation and the day's orders, then prints a table. Each cell is ``ok``, ``unsupported``
(python-kis refuses the call in that environment by itself, before any request: not the fake's
doing), ``not run`` (an earlier step it needs failed) or ``FAILED`` (the fake refused or answered
something the client could not read). For every failure the request and the answer are printed.
Exit status 1 if anything FAILED, 2 if serve could not be started.

Usage: ``python tools/peers/run_peer.py [--symbol 005930] [--serve-arg ARG ...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# python-kis ships no type information: imported by name, its objects are Any to mypy.
pykis = importlib.import_module("pykis")
PyKis = pykis.PyKis
KisAPIError: type[Exception] = pykis.KisAPIError
KisHTTPError: type[Exception] = pykis.KisHTTPError
balance = importlib.import_module("pykis.api.account.balance").balance
daily_orders = importlib.import_module("pykis.api.account.daily_order").daily_orders
order = importlib.import_module("pykis.api.account.order").order
order_modify = importlib.import_module("pykis.api.account.order_modify")
cancel_order, modify_order = order_modify.cancel_order, order_modify.modify_order
daily_chart = importlib.import_module("pykis.api.stock.daily_chart").daily_chart
quote = importlib.import_module("pykis.api.stock.quote").quote

ENVS = ("real", "paper")
CALLS = ("token", "quote", "daily chart", "balance", "order", "revise", "cancel", "daily orders")
REQUIRED = (
    "KIS_BASE_URL",
    "KIS_APP_KEY",
    "KIS_APP_SECRET",
    "KIS_ACCOUNT",
    "KIS_PAPER_BASE_URL",
    "KIS_PAPER_APP_KEY",
    "KIS_PAPER_APP_SECRET",
    "KIS_PAPER_ACCOUNT",
)
OPTIONAL = ("KIS_HTS_ID", "KIS_PAPER_HTS_ID")
KST = dt.timezone(dt.timedelta(hours=9))
#: Answers that say the market is closed (the gateway's, faithfully served): not the fake's fault.
MARKET_CLOSED_HINTS = ("장운영", "장종료", "장시작", "주문가능시간", "영업일", "market closed")


# ---------------------------------------------------------------- serve


def _serve_supports(flag: str) -> bool:
    """Whether this kisclient's ``serve`` takes *flag* (options come and go between versions)."""
    help_text = subprocess.run(
        [sys.executable, "-m", "kisclient.testing", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return flag in help_text


@contextlib.contextmanager
def serve(extra: Sequence[str], timeout: float = 30.0) -> Iterator[dict[str, str]]:
    """Start serve on a loopback port; yield the ``KEY=value`` variables it printed, by name.

    Works with either shape of serve's output: paper under a path prefix of the real port, or
    paper on its own port. Only the variable names are relied on, not line order or bare URLs.
    """
    args = [sys.executable, "-m", "kisclient.testing", "serve", "--port", "0", *extra]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)  # noqa: S603
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    found: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    try:
        while not all(name in found for name in (*REQUIRED, *OPTIONAL)):
            have_required = all(name in found for name in REQUIRED)
            wait = 0.5 if have_required else deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(wait, 0.01))
            except queue.Empty:
                if have_required:
                    break
                message = f"serve printed no {_missing(found)} within {timeout:.0f} s"
                raise SystemExit(message) from None
            if line is None:
                raise SystemExit(f"serve exited ({proc.wait()}) before printing {_missing(found)}")
            name, sep, value = line.strip().partition("=")
            if sep and name.startswith("KIS_"):
                found[name] = value
        yield found
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _missing(found: Mapping[str, str]) -> str:
    return ", ".join(name for name in REQUIRED if name not in found) or "all it should"


# ---------------------------------------------------------------- results


@dataclass
class Exchange:
    """One HTTP request the peer sent and the answer it got."""

    method: str
    url: str
    tr_id: str
    body: str
    status: int
    answer: str

    def render(self) -> str:
        lines = [f"    {self.method} {self.url}  tr_id={self.tr_id or '-'}"]
        if self.body:
            lines.append(f"    body: {self.body}")
        lines.append(f"    -> HTTP {self.status}: {self.answer}")
        return "\n".join(lines)


@dataclass
class Outcome:
    status: str  # ok | unsupported | not run | FAILED
    detail: str
    exchange: Exchange | None = None


@dataclass
class Recorder:
    """Keeps the last exchanges of the peer's HTTP sessions (a ``requests`` response hook)."""

    exchanges: list[Exchange] = field(default_factory=list)

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        request = response.request
        body = request.body or b""
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        self.exchanges.append(
            Exchange(
                method=request.method,
                url=request.url,
                tr_id=request.headers.get("tr_id", ""),
                body=_redact(body),
                status=response.status_code,
                answer=_clip(response.text),
            )
        )

    def mark(self) -> int:
        return len(self.exchanges)

    def last_since(self, mark: int) -> Exchange | None:
        return self.exchanges[-1] if len(self.exchanges) > mark else None


def _kis_message(exc: Exception) -> tuple[str, str]:
    """The gateway's ``msg_cd`` and ``msg1`` from a python-kis error (HTTP status if none)."""
    code, message = getattr(exc, "msg_cd", None), getattr(exc, "msg1", None)
    response = getattr(exc, "response", None)
    if not (code or message) and response is not None:
        try:
            data = response.json()
        except ValueError:
            data = {}
        code = data.get("msg_cd") if isinstance(data, dict) else None
        message = data.get("msg1") if isinstance(data, dict) else None
        code = f"HTTP {response.status_code} {code or ''}"
    return str(code or ""), str(message or exc).strip()


def _redact(body: str) -> str:
    """Drop the app secret from token request bodies (fake values, but long and noisy)."""
    if '"appsecret"' in body:
        return body.split('"appsecret"', maxsplit=1)[0] + '"appsecret": "..."}'
    return _clip(body)


def _clip(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


# ---------------------------------------------------------------- the peer


def redirect_hosts(real_url: str, paper_url: str) -> None:
    """Point python-kis at serve: its host constants, nothing else."""
    for name in ("pykis.__env__", "pykis.kis"):
        module = importlib.import_module(name)
        setattr(module, "REAL_DOMAIN", real_url)  # noqa: B010 (a module of the peer's)
        setattr(module, "VIRTUAL_DOMAIN", paper_url)  # noqa: B010


def tick_size(price: int) -> int:
    """KRX tick size for a KOSPI/KOSDAQ stock price (2023 table)."""
    for bound, tick in ((2000, 1), (5000, 5), (20000, 10), (50000, 50), (200000, 100)):
        if price < bound:
            return tick
    return 500 if price < 500000 else 1000


def resting_buy_price(price: int, fraction: Decimal) -> int:
    """A price *fraction* below *price*, on the tick grid (a buy that rests, does not fill)."""
    target = int(Decimal(price) * (1 - fraction))
    return max(target - target % tick_size(target), tick_size(target))


class Blocked(Exception):
    """A step cannot run: something it needs from an earlier step is missing."""


class Run:
    """One environment's calls, in order; later calls use what earlier ones returned."""

    def __init__(
        self, env: str, variables: Mapping[str, str], symbol: str, real_token: Any = None
    ) -> None:
        self.env = env
        self.symbol = symbol
        self.results: dict[str, Outcome] = {}
        self.recorder = Recorder()
        real_id = variables.get("KIS_HTS_ID") or "peer"
        paper = env == "paper"
        account = variables["KIS_PAPER_ACCOUNT" if paper else "KIS_ACCOUNT"]
        # python-kis's paper mode needs the real key too: it reads market data from the real host.
        # The real token is reused: a second one for the same key within a minute is EGW00133.
        extra: dict[str, Any] = {"token": real_token}
        if paper:
            extra |= {
                "virtual_id": variables.get("KIS_PAPER_HTS_ID") or real_id,
                "virtual_appkey": variables["KIS_PAPER_APP_KEY"],
                "virtual_secretkey": variables["KIS_PAPER_APP_SECRET"],
            }
        self.kis = PyKis(
            id=real_id,
            account=account,
            appkey=variables["KIS_APP_KEY"],
            secretkey=variables["KIS_APP_SECRET"],
            use_websocket=False,
            keep_token=False,
            **extra,
        )
        for session in self.kis._sessions.values():
            session.hooks["response"].append(self.recorder.hook)
        self.account = self.kis.primary
        self.order: Any = None
        self.revised: Any = None
        self.price: int | None = None  # the symbol's price: the quote's, else the last close

    def step(self, name: str, needs: Sequence[str], call: Callable[[], str]) -> None:
        """Run *call* unless a step in *needs* did not succeed; classify what happened."""
        blocked = [n for n in needs if self.results.get(n, Outcome("ok", "")).status != "ok"]
        if blocked:
            self.results[name] = Outcome("not run", f"needs {', '.join(blocked)}")
            return
        mark = self.recorder.mark()
        try:
            detail = call()
        except Blocked as exc:
            self.results[name] = Outcome("not run", str(exc))
            return
        except NotImplementedError as exc:
            sent = self.recorder.last_since(mark)
            if sent is None:
                self.results[name] = Outcome("unsupported", f"python-kis: {exc}")
            else:
                self.results[name] = Outcome("FAILED", f"NotImplementedError: {exc}", sent)
            return
        except (KisAPIError, KisHTTPError) as exc:
            sent = self.recorder.last_since(mark)
            code, message = _kis_message(exc)
            if any(hint in message for hint in MARKET_CLOSED_HINTS):
                self.results[name] = Outcome("not run", f"market closed: {code} {message}", sent)
            else:
                reason = " ".join(f"{type(exc).__name__} {code} {_clip(message, 160)}".split())
                self.results[name] = Outcome("FAILED", reason, sent)
            return
        except Exception as exc:  # the client could not read the answer, or worse
            sent = self.recorder.last_since(mark)
            reason = f"{type(exc).__name__}: {_clip(str(exc), 200)}"
            self.results[name] = Outcome("FAILED", reason, sent)
            return
        self.results[name] = Outcome("ok", detail)

    # Each call below is one of python-kis's public functions, market given (KRX).

    def token(self) -> str:
        token = self.kis.primary_token if self.env == "paper" else self.kis.token
        return f"expires {token.expired_at:%Y-%m-%d %H:%M}"

    def quote(self) -> str:
        answer = quote(self.kis, self.symbol, "KRX")
        self.price = int(answer.price)
        return f"{answer.name} {answer.price} (limits {answer.low_limit}..{answer.high_limit})"

    def daily_chart(self) -> str:
        chart = daily_chart(self.kis, self.symbol, "KRX")  # no start: from 00000101, paged
        if not chart.bars:
            raise AssertionError("no bars")
        first, last = chart.bars[0], chart.bars[-1]
        self.price = self.price or int(last.close)
        return f"{len(chart.bars)} bars {first.time:%Y-%m-%d}..{last.time:%Y-%m-%d}"

    def balance(self) -> str:
        answer = balance(self.kis, self.account, "KR")
        return f"{len(answer.stocks)} holdings, deposit {answer.deposits['KRW'].amount}"

    def place_order(self) -> str:
        if self.price is None:
            raise Blocked("needs a price: quote and daily chart failed")
        price = resting_buy_price(self.price, Decimal("0.05"))
        self.order = order(self.kis, self.account, "KRX", self.symbol, "buy", price=price, qty=1)
        return f"buy 1 @ {price}: {self.order.branch}-{self.order.number}"

    def revise(self) -> str:
        assert self.price is not None
        price = resting_buy_price(self.price, Decimal("0.07"))
        self.revised = modify_order(self.kis, self.order, price=price)
        return f"@ {price}: {self.revised.branch}-{self.revised.number}"

    def cancel(self) -> str:
        target = self.revised or self.order
        answer = cancel_order(self.kis, target)
        return f"{target.number} -> {answer.number}"

    def daily_orders(self) -> str:
        today = dt.datetime.now(KST).date()
        answer = daily_orders(self.kis, self.account, today, today, "KR")
        numbers = {str(row.number).lstrip("0") for row in answer.orders}
        if self.order is not None and str(self.order.number).lstrip("0") not in numbers:
            raise AssertionError(f"order {self.order.number} missing from {sorted(numbers)}")
        return f"{len(answer.orders)} rows"

    def run(self) -> dict[str, Outcome]:
        self.step("token", [], self.token)
        self.step("quote", ["token"], self.quote)
        self.step("daily chart", ["token"], self.daily_chart)
        self.step("balance", ["token"], self.balance)
        self.step("order", ["token"], self.place_order)
        self.step("revise", ["order"], self.revise)
        self.step("cancel", ["order"], self.cancel)
        self.step("daily orders", ["token"], self.daily_orders)
        return self.results


# ---------------------------------------------------------------- report


def table(results: Mapping[str, Mapping[str, Outcome]]) -> str:
    def cell(outcome: Outcome) -> str:
        if outcome.status == "ok":
            return "ok"
        text = f"{outcome.status}: {outcome.detail}"
        return text if len(text) <= 64 else text[:63] + "…"

    rows = [["call", *ENVS]]
    rows += [[call, *(cell(results[env][call]) for env in ENVS)] for call in CALLS]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbol", default="005930")
    parser.add_argument("--serve-arg", action="append", default=[], help="passed on to serve")
    args = parser.parse_args(argv)

    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost,::1")
    extra = list(args.serve_arg)
    if not any(a.startswith("--market") for a in extra) and _serve_supports("--market"):
        extra += ["--market", "open"]  # orders at any hour; older serves follow the clock
    try:
        with serve(extra) as variables:
            real_url, paper_url = variables["KIS_BASE_URL"], variables["KIS_PAPER_BASE_URL"]
            print(f"peer: python-kis {pykis.__version__}")
            print(f"serve: real {real_url}, paper {paper_url}")
            if urllib.parse.urlsplit(paper_url).path.strip("/"):
                print(
                    "note: the paper URL has a path; python-kis joins absolute paths to its "
                    "domain (urljoin), so its paper requests lose it and reach the real host"
                )
            redirect_hosts(real_url, paper_url)
            real = Run("real", variables, args.symbol)
            results = {"real": real.run()}
            paper = Run("paper", variables, args.symbol, real_token=real.kis._token)
            results["paper"] = paper.run()
    except SystemExit as exc:
        print(f"peers: {exc}", file=sys.stderr)
        return 2
    print()
    print(table(results))
    print()
    print(
        "paper: python-kis reads quotes and charts from the real host with the real key in both "
        "environments; 'unsupported' = python-kis refuses the call itself, sending nothing."
    )
    failed = [
        (env, call, outcome)
        for env in ENVS
        for call, outcome in results[env].items()
        if outcome.status == "FAILED"
    ]
    closed = [o for env in ENVS for o in results[env].values() if o.detail.startswith("market")]
    if closed:
        print("orders not run: the fake's market is closed (a serve with --market open runs them)")
    for env, call, outcome in failed:
        print(f"\nFAILED {call} ({env}): {outcome.detail}")
        if outcome.exchange is not None:
            print(outcome.exchange.render())
    print(f"\n{len(failed)} failed because of the fake" if failed else "\nno call failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
