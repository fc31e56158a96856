"""The fake market: a deterministic universe of KRX listings and their daily price history.

Everything here is a pure function of the seed. Prices wander deterministically per code over
weekdays from :data:`FIRST_DAY` (no holiday calendar): slow cycles with random phases plus hashed
daily noise, so any day's price costs O(1). Prices are rounded to the KRX tick size.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import threading
from collections.abc import Iterator

import attrs

__all__ = ["FIRST_DAY", "Bar", "Listing", "Universe", "round_to_tick", "tick_size", "weekdays"]

#: The first day with price history; earlier dates have no bars.
FIRST_DAY = dt.date(2010, 1, 4)

_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"  # KRX code letters: no I, O, U (krx-domain.md §1.2)


@attrs.frozen
class Listing:
    """One listed product. ``kind``: stock, preferred, etf, etn, spac or foreign."""

    code: str
    name: str
    market: str
    kind: str
    sector: str
    base_price: int
    shares: int
    halted: bool = False
    warning: str = "00"
    caution: bool = False
    managed: bool = False

    @property
    def quote_code(self) -> str:
        """The code as quote APIs take it: ETNs carry a ``Q`` prefix (krx-domain.md §1.4)."""
        return "Q" + self.code if self.kind == "etn" else self.code


@attrs.frozen
class Bar:
    """One daily bar (prices in KRW, already on the tick grid)."""

    day: dt.date
    open: int
    high: int
    low: int
    close: int
    volume: int
    prev_close: int

    @property
    def value(self) -> int:
        """Traded value (거래대금), approximated from the typical price."""
        return self.volume * (self.high + self.low + self.close) // 3


# Real examples from krx-domain.md §1.3: (code, name, market, kind, sector, price).
_REAL: tuple[tuple[str, str, str, str, str, int], ...] = (
    ("005930", "삼성전자", "KOSPI", "stock", "전기·전자", 71500),
    ("000660", "SK하이닉스", "KOSPI", "stock", "전기·전자", 182000),
    ("005935", "삼성전자우", "KOSPI", "preferred", "전기·전자", 59800),
    ("005385", "현대차우", "KOSPI", "preferred", "운송장비·부품", 168000),
    ("005387", "현대차2우B", "KOSPI", "preferred", "운송장비·부품", 171000),
    ("005389", "현대차3우B", "KOSPI", "preferred", "운송장비·부품", 163000),
    ("00680K", "미래에셋증권2우B", "KOSPI", "preferred", "증권", 4985),
    ("02826K", "삼성물산우B", "KOSPI", "preferred", "유통", 98500),
    ("03473K", "SK우", "KOSPI", "preferred", "금융", 152000),
    ("37550K", "DL이앤씨우", "KOSPI", "preferred", "건설", 21450),
    ("37550L", "DL이앤씨2우(전환)", "KOSPI", "preferred", "건설", 23100),
    ("0037T0", "KB제32호스팩", "KOSDAQ", "spac", "금융", 2075),
    ("0009K0", "에임드바이오", "KOSDAQ", "stock", "제약", 34150),
    ("0126Z0", "삼성에피스홀딩스", "KOSPI", "stock", "제약", 412500),
    ("069500", "KODEX 200", "KOSPI", "etf", "ETF", 35240),
    ("0167A0", "SOL AI반도체TOP2플러스", "KOSPI", "etf", "ETF", 12345),
    ("530036", "삼성 인버스 2X WTI원유 선물 ETN", "KOSPI", "etn", "ETN", 8455),
    ("900110", "이스트아시아홀딩스", "KOSDAQ", "foreign", "외국기업", 152),
)

#: (amplitude, period in weekdays) of the price cycles; with the noise, daily moves of ~1-2%.
_CYCLES = ((0.01, 5), (0.02, 17), (0.04, 53), (0.06, 131), (0.09, 367), (0.12, 997))
_SYLLABLES = "가나다라마바사아자차카타파하한국대신동서남북미래세계우리태평양성진영광명"
_SUFFIXES = ("전자", "화학", "바이오", "제약", "건설", "홀딩스", "소재", "에너지", "테크", "산업")
_SECTORS = ("전기·전자", "화학", "제약", "건설", "금융", "유통", "서비스업", "기계", "철강·금속")
_ETF_BRANDS = ("KODEX", "TIGER", "ACE", "SOL", "RISE", "PLUS")
_ETF_THEMES = ("코스닥150", "2차전지", "미국S&P500", "반도체", "배당성장", "고배당", "단기채권")


def tick_size(price: int, kind: str = "stock") -> int:
    """KRX tick size (호가단위) for *price*: ETF/ETN 5 won below 2,000 and above, 1 won below."""
    if kind in ("etf", "etn"):
        return 1 if price < 2000 else 5
    for bound, tick in (
        (2000, 1),
        (5000, 5),
        (20000, 10),
        (50000, 50),
        (200000, 100),
        (500000, 500),
    ):
        if price < bound:
            return tick
    return 1000


def round_to_tick(price: float, kind: str = "stock") -> int:
    """*price* rounded down to a valid tick (at least 1)."""
    value = max(int(price), 1)
    tick = tick_size(value, kind)
    return max(value - value % tick, 1)


def weekdays(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    """Weekdays from *start* to *end* inclusive, oldest first."""
    day = start
    while day <= end:
        if day.weekday() < 5:
            yield day
        day += dt.timedelta(days=1)


def previous_weekday(day: dt.date) -> dt.date:
    """The last weekday strictly before *day*."""
    day -= dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def _weekday_index(day: dt.date) -> int:
    weeks, rest = divmod((day - FIRST_DAY).days, 7)
    return weeks * 5 + min(rest, 4)


def _deviation_at(cycles: list[tuple[float, float, float]], salt: int, index: int) -> float:
    """The walk's log-price deviation on weekday *index* (see :meth:`Universe._deviation`)."""
    value = sum(
        amp * math.sin(2 * math.pi * index / period + phase) for amp, period, phase in cycles
    )
    mixed = (index * 0x9E3779B1 + salt) & 0xFFFFFFFF
    mixed = ((mixed ^ (mixed >> 15)) * 0x2C1B3C6D) & 0xFFFFFFFF
    mixed ^= mixed >> 12
    return value + (mixed / 2**32 - 0.5) * 0.016


class Universe:
    """The listings and their price history for one seed. Thread-safe (history is cached)."""

    def __init__(self, seed: int, size: int) -> None:
        self._seed = seed
        self._listings: dict[str, Listing] = {}
        for code, name, market, kind, sector, price in _REAL[: max(size, 0)]:
            shares = 5_969_782_550 if code == "005930" else 50_000_000
            self._listings[code] = Listing(code, name, market, kind, sector, price, shares)
        self._generate(random.Random(f"universe:{seed}"), size)
        self.codes: list[str] = list(self._listings)
        self._walks: dict[str, tuple[list[tuple[float, float, float]], int]] = {}
        self._bars: dict[tuple[str, dt.date, int | None], Bar] = {}
        self._lock = threading.Lock()

    def _generate(self, rng: random.Random, size: int) -> None:
        commons: list[str] = []
        special = 0
        while len(self._listings) < size:
            roll = rng.random()
            sector = rng.choice(_SECTORS)
            name = rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES) + rng.choice(_SUFFIXES)
            market = "KOSPI" if rng.random() < 0.45 else "KOSDAQ"
            kind = "stock"
            if roll < 0.12 and commons:
                base = rng.choice(commons)
                code = base[:5] + rng.choice("579KL")
                name = self._listings[base].name + ("우" if code[5] == "5" else "우B")
                kind, market = "preferred", self._listings[base].market
            elif roll < 0.27:
                code = f"0{rng.randrange(100, 999)}{rng.choice(_LETTERS)}0"
            elif roll < 0.35:
                code = f"{rng.randrange(10000, 49999)}0"
                name = f"{rng.choice(_ETF_BRANDS)} {rng.choice(_ETF_THEMES)}"
                kind, sector, market = "etf", "ETF", "KOSPI"
            else:
                code = f"{rng.randrange(1, 49999):05d}0"
            if code in self._listings:
                continue
            price = round_to_tick(math.exp(rng.uniform(math.log(1000), math.log(300000))), kind)
            halted = warning = caution = managed = False
            if kind == "stock" and special < 12:
                # A few codes with a status flag so clients see the non-default values.
                flag = special % 4
                halted, warning, caution, managed = flag == 0, flag == 1, flag == 2, flag == 3
                special += 1
            self._listings[code] = Listing(
                code,
                name,
                market,
                kind,
                sector,
                price,
                rng.randrange(1, 200) * 1_000_000,
                halted=halted,
                warning=("01", "02", "03")[special % 3] if warning else "00",
                caution=caution,
                managed=managed,
            )
            if kind == "stock":
                commons.append(code)

    def get(self, code: str) -> Listing | None:
        """The listing for *code* (a ``Q`` prefix is accepted for ETNs), or ``None``."""
        code = code.strip()
        if code.startswith("Q") and len(code) == 7:
            found = self._listings.get(code[1:])
            return found if found is not None and found.kind == "etn" else None
        return self._listings.get(code)

    def _walk(self, code: str) -> tuple[list[tuple[float, float, float]], int]:
        """The random walk's parameters for *code*: its cycles and its noise salt (memoised)."""
        with self._lock:
            params = self._walks.get(code)
            if params is None:
                rng = random.Random(f"walk:{self._seed}:{code}")
                cycles = [
                    (amp * rng.uniform(0.5, 1.5), float(period), rng.uniform(0.0, 2 * math.pi))
                    for amp, period in _CYCLES
                ]
                params = self._walks[code] = (cycles, rng.getrandbits(32))
        return params

    def _deviation(self, code: str, index: int) -> float:
        """Log-price deviation from the base on weekday *index*: a sum of slow cycles plus hashed
        daily noise. O(1) per day, so any date is cheap and needs no history."""
        return _deviation_at(*self._walk(code), index)

    def close(self, code: str, day: dt.date) -> int:
        """The closing price of *code* on weekday *day* (on or after :data:`FIRST_DAY`)."""
        listing = self._listings[code]
        deviation = self._deviation(code, _weekday_index(day))
        return round_to_tick(listing.base_price * math.exp(deviation), listing.kind)

    def close_extremes(self, code: str, day: dt.date, days: int) -> tuple[int, int]:
        """(highest, lowest) close of *code* over the *days* weekdays ending on *day* (none
        before :data:`FIRST_DAY`). One price conversion each: the close rises with the walk's
        deviation, so the extremes of the deviations give the extremes of the closes."""
        listing = self._listings[code]
        last = _weekday_index(day)
        cycles, salt = self._walk(code)
        indices = range(max(0, last - days + 1), last + 1)
        deviations = [_deviation_at(cycles, salt, i) for i in indices]

        def price(deviation: float) -> int:
            return round_to_tick(listing.base_price * math.exp(deviation), listing.kind)

        return price(max(deviations)), price(min(deviations))

    def bar(self, code: str, day: dt.date, close: int | None = None) -> Bar:
        """The daily bar of *code* on weekday *day*; *close* overrides the walk's close.

        Memoised (bars are pure functions of their arguments; the memo is bounded)."""
        key = (code, day, close)
        found = self._bars.get(key)
        if found is None:
            found = self._make_bar(code, day, close)
            with self._lock:
                if len(self._bars) > 200_000:
                    self._bars.clear()
                self._bars[key] = found
        return found

    def _make_bar(self, code: str, day: dt.date, close: int | None) -> Bar:
        listing = self._listings[code]
        prev = self.close(code, previous_weekday(day)) if day > FIRST_DAY else listing.base_price
        last = self.close(code, day) if close is None else close
        rng = random.Random(f"bar:{self._seed}:{code}:{day.toordinal()}")
        opening = round_to_tick(prev * math.exp(rng.gauss(0.0, 0.006)), listing.kind)
        high = round_to_tick(max(opening, last) * (1 + abs(rng.gauss(0.0, 0.008))), listing.kind)
        low = round_to_tick(min(opening, last) * (1 - abs(rng.gauss(0.0, 0.008))), listing.kind)
        high, low = max(high, opening, last), min(low, opening, last)
        volume = int(listing.shares * rng.uniform(0.0005, 0.004)) + 1
        return Bar(day, opening, high, low, last, volume, prev)
