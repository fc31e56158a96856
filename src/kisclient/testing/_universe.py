"""The fake market: a deterministic universe of KRX listings and their daily price history.

Everything here is a pure function of the seed. Prices wander deterministically per code over
weekdays from :data:`FIRST_DAY` (no holiday calendar): slow cycles with random phases plus hashed
daily noise, so any day's price costs O(1). Prices are rounded to the KRX tick size.

Within a day prices move too (:class:`DayPath`): a seeded path per (code, day) from the day's
open to its close that touches the bar's high and low, one node a minute, linear between nodes,
so the price at any second of the session (:meth:`Universe.price_at`) is a pure function of
(seed, code, time). Volume accumulates along the session (U-shaped per-minute weights) and
reaches the daily bar's volume at 15:30. Daily bars of the day in progress (:meth:`Universe.bar`
with a ``now`` hook) end at the current second: running high and low, volume so far.

The listings start with real KRX products by their real codes and names (from the
exchange's listings: large caps, preferred shares, ETFs, an ETN, a SPAC and
2024-reform alphanumeric codes), interleaved with synthetic filler for size. Prices, share counts
and flags of the real names are synthetic, not market data.
"""

from __future__ import annotations

import array
import datetime as dt
import math
import random
import threading
from collections.abc import Callable, Iterator

import attrs

from kisclient._config import KST

__all__ = [
    "FIRST_DAY",
    "SESSION_CLOSE",
    "SESSION_MINUTES",
    "SESSION_OPEN",
    "SESSION_SECONDS",
    "Bar",
    "DayPath",
    "Listing",
    "MinuteBar",
    "Universe",
    "round_to_tick",
    "session_day_at",
    "tick_size",
    "weekdays",
]

#: The first day with price history; earlier dates have no bars.
FIRST_DAY = dt.date(2010, 1, 4)

_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"  # KRX code letters: no I, O, U (the 2024 code reform)
#: The regular session (KST): prices move from SESSION_OPEN to SESSION_CLOSE.
SESSION_OPEN = dt.time(9, 0)
SESSION_CLOSE = dt.time(15, 30)
#: Seconds and whole minutes in the regular session (09:00:00 to 15:30:00).
SESSION_SECONDS = 6 * 3600 + 30 * 60
SESSION_MINUTES = SESSION_SECONDS // 60


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
        """The code as quote APIs take it: ETNs carry a ``Q`` prefix."""
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


# Real examples by category: (code, name, market, kind, sector, price).
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

# Well-known KRX listings by their real codes and names (code and name are facts; the price and
# the share count are plausible round numbers, not market data): (code, name, market, kind,
# sector, price, shares). Interleaved with the synthetic filler after _REAL.
_LARGE: tuple[tuple[str, str, str, str, str, int, int], ...] = (
    ("373220", "LG에너지솔루션", "KOSPI", "stock", "전기·전자", 372000, 234_000_000),
    ("207940", "삼성바이오로직스", "KOSPI", "stock", "제약", 782000, 71_000_000),
    ("005380", "현대차", "KOSPI", "stock", "운송장비·부품", 215000, 209_000_000),
    ("000270", "기아", "KOSPI", "stock", "운송장비·부품", 98000, 397_000_000),
    ("068270", "셀트리온", "KOSPI", "stock", "제약", 178000, 216_000_000),
    ("035420", "NAVER", "KOSPI", "stock", "서비스업", 187000, 158_000_000),
    ("035720", "카카오", "KOSPI", "stock", "서비스업", 41500, 442_000_000),
    ("005490", "POSCO홀딩스", "KOSPI", "stock", "철강·금속", 385000, 84_000_000),
    ("051910", "LG화학", "KOSPI", "stock", "화학", 312000, 70_000_000),
    ("006400", "삼성SDI", "KOSPI", "stock", "전기·전자", 265000, 68_000_000),
    ("105560", "KB금융", "KOSPI", "stock", "금융", 83000, 393_000_000),
    ("055550", "신한지주", "KOSPI", "stock", "금융", 52000, 509_000_000),
    ("086790", "하나금융지주", "KOSPI", "stock", "금융", 61000, 290_000_000),
    ("316140", "우리금융지주", "KOSPI", "stock", "금융", 16500, 742_000_000),
    ("028260", "삼성물산", "KOSPI", "stock", "유통", 142000, 169_000_000),
    ("012330", "현대모비스", "KOSPI", "stock", "운송장비·부품", 245000, 93_000_000),
    ("066570", "LG전자", "KOSPI", "stock", "전기·전자", 95000, 163_000_000),
    ("003550", "LG", "KOSPI", "stock", "금융", 78000, 157_000_000),
    ("034730", "SK", "KOSPI", "stock", "금융", 165000, 72_000_000),
    ("017670", "SK텔레콤", "KOSPI", "stock", "통신업", 53000, 214_000_000),
    ("030200", "KT", "KOSPI", "stock", "통신업", 41000, 252_000_000),
    ("032640", "LG유플러스", "KOSPI", "stock", "통신업", 10500, 436_000_000),
    ("015760", "한국전력", "KOSPI", "stock", "전기·가스업", 21000, 642_000_000),
    ("032830", "삼성생명", "KOSPI", "stock", "금융", 85000, 200_000_000),
    ("000810", "삼성화재", "KOSPI", "stock", "금융", 340000, 47_000_000),
    ("009150", "삼성전기", "KOSPI", "stock", "전기·전자", 135000, 74_000_000),
    ("018260", "삼성에스디에스", "KOSPI", "stock", "서비스업", 150000, 77_000_000),
    ("010130", "고려아연", "KOSPI", "stock", "철강·금속", 780000, 20_000_000),
    ("011200", "HMM", "KOSPI", "stock", "운수창고업", 18500, 1_000_000_000),
    ("096770", "SK이노베이션", "KOSPI", "stock", "화학", 110000, 150_000_000),
    ("010950", "S-Oil", "KOSPI", "stock", "화학", 62000, 112_000_000),
    ("033780", "KT&G", "KOSPI", "stock", "음식료품", 115000, 120_000_000),
    ("090430", "아모레퍼시픽", "KOSPI", "stock", "화학", 130000, 58_000_000),
    ("051900", "LG생활건강", "KOSPI", "stock", "화학", 350000, 15_000_000),
    ("036570", "엔씨소프트", "KOSPI", "stock", "서비스업", 210000, 21_000_000),
    ("251270", "넷마블", "KOSPI", "stock", "서비스업", 52000, 86_000_000),
    ("259960", "크래프톤", "KOSPI", "stock", "서비스업", 330000, 48_000_000),
    ("352820", "하이브", "KOSPI", "stock", "서비스업", 250000, 41_000_000),
    ("323410", "카카오뱅크", "KOSPI", "stock", "금융", 24000, 477_000_000),
    ("377300", "카카오페이", "KOSPI", "stock", "서비스업", 38000, 134_000_000),
    ("011170", "롯데케미칼", "KOSPI", "stock", "화학", 75000, 42_000_000),
    ("009540", "HD한국조선해양", "KOSPI", "stock", "운송장비·부품", 230000, 70_000_000),
    ("329180", "HD현대중공업", "KOSPI", "stock", "운송장비·부품", 380000, 88_000_000),
    ("042660", "한화오션", "KOSPI", "stock", "운송장비·부품", 80000, 306_000_000),
    ("012450", "한화에어로스페이스", "KOSPI", "stock", "기계", 850000, 51_000_000),
    ("047810", "한국항공우주", "KOSPI", "stock", "운송장비·부품", 85000, 97_000_000),
    ("034020", "두산에너빌리티", "KOSPI", "stock", "기계", 55000, 640_000_000),
    ("000100", "유한양행", "KOSPI", "stock", "제약", 110000, 80_000_000),
    ("128940", "한미약품", "KOSPI", "stock", "제약", 310000, 12_000_000),
    ("302440", "SK바이오사이언스", "KOSPI", "stock", "제약", 50000, 76_000_000),
    ("326030", "SK바이오팜", "KOSPI", "stock", "제약", 100000, 78_000_000),
    ("024110", "기업은행", "KOSPI", "stock", "금융", 14500, 797_000_000),
    ("138040", "메리츠금융지주", "KOSPI", "stock", "금융", 115000, 190_000_000),
    ("006800", "미래에셋증권", "KOSPI", "stock", "증권", 15000, 600_000_000),
    ("016360", "삼성증권", "KOSPI", "stock", "증권", 60000, 89_000_000),
    ("071050", "한국금융지주", "KOSPI", "stock", "증권", 120000, 55_000_000),
    ("021240", "코웨이", "KOSPI", "stock", "유통", 90000, 73_000_000),
    ("097950", "CJ제일제당", "KOSPI", "stock", "음식료품", 250000, 15_000_000),
    ("001040", "CJ", "KOSPI", "stock", "금융", 140000, 29_000_000),
    ("004020", "현대제철", "KOSPI", "stock", "철강·금속", 28000, 133_000_000),
    ("000720", "현대건설", "KOSPI", "stock", "건설", 55000, 111_000_000),
    ("086280", "현대글로비스", "KOSPI", "stock", "운수창고업", 140000, 75_000_000),
    ("011070", "LG이노텍", "KOSPI", "stock", "전기·전자", 180000, 23_000_000),
    ("034220", "LG디스플레이", "KOSPI", "stock", "전기·전자", 11000, 500_000_000),
    ("161390", "한국타이어앤테크놀로지", "KOSPI", "stock", "화학", 45000, 123_000_000),
    ("003670", "포스코퓨처엠", "KOSPI", "stock", "화학", 150000, 77_000_000),
    ("375500", "DL이앤씨", "KOSPI", "stock", "건설", 45000, 38_000_000),
    ("066575", "LG전자우", "KOSPI", "preferred", "전기·전자", 52000, 17_000_000),
    ("051915", "LG화학우", "KOSPI", "preferred", "화학", 180000, 7_000_000),
    ("247540", "에코프로비엠", "KOSDAQ", "stock", "화학", 130000, 97_000_000),
    ("086520", "에코프로", "KOSDAQ", "stock", "금융", 65000, 133_000_000),
    ("196170", "알테오젠", "KOSDAQ", "stock", "제약", 420000, 53_000_000),
    ("028300", "HLB", "KOSDAQ", "stock", "제약", 60000, 131_000_000),
    ("293490", "카카오게임즈", "KOSDAQ", "stock", "서비스업", 17000, 83_000_000),
    ("263750", "펄어비스", "KOSDAQ", "stock", "서비스업", 40000, 64_000_000),
    ("041510", "에스엠", "KOSDAQ", "stock", "서비스업", 110000, 23_000_000),
    ("035900", "JYP Ent.", "KOSDAQ", "stock", "서비스업", 70000, 35_000_000),
    ("122870", "와이지엔터테인먼트", "KOSDAQ", "stock", "서비스업", 75000, 18_000_000),
    ("058470", "리노공업", "KOSDAQ", "stock", "전기·전자", 200000, 15_000_000),
    ("240810", "원익IPS", "KOSDAQ", "stock", "전기·전자", 30000, 49_000_000),
    ("102110", "TIGER 200", "KOSPI", "etf", "ETF", 35300, 100_000_000),
    ("122630", "KODEX 레버리지", "KOSPI", "etf", "ETF", 19000, 150_000_000),
    ("114800", "KODEX 인버스", "KOSPI", "etf", "ETF", 4200, 200_000_000),
    ("252670", "KODEX 200선물인버스2X", "KOSPI", "etf", "ETF", 2100, 900_000_000),
    ("229200", "KODEX 코스닥150", "KOSPI", "etf", "ETF", 12000, 60_000_000),
)
_LARGE_CODES = frozenset(row[0] for row in _LARGE)

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


def session_day_at(moment: dt.datetime) -> dt.date:
    """The trading day whose prices are current at *moment* (KST): its date from 09:00 on a
    weekday, otherwise the previous weekday."""
    moment = moment.astimezone(KST) if moment.tzinfo is not None else moment
    today = moment.date()
    if today.weekday() < 5 and moment.time() >= SESSION_OPEN:
        return today
    return previous_weekday(today)


def session_second(moment: dt.datetime, day: dt.date) -> int | None:
    """Whole seconds since 09:00 if *moment* (KST) lies in *day*'s regular session
    (09:00:00 inclusive to 15:30:00 exclusive), else ``None``."""
    moment = moment.astimezone(KST) if moment.tzinfo is not None else moment
    if moment.date() != day or day.weekday() >= 5:
        return None
    clock = moment.time()
    if not SESSION_OPEN <= clock < SESSION_CLOSE:
        return None
    return (clock.hour - SESSION_OPEN.hour) * 3600 + clock.minute * 60 + clock.second


@attrs.frozen
class MinuteBar:
    """One minute of a day's path: ``minute`` counts from 09:00 (0 … :data:`SESSION_MINUTES`;
    the last one, 15:30, is the closing auction: open = close = the day's close)."""

    minute: int
    open: int
    high: int
    low: int
    close: int
    volume: int

    @property
    def time(self) -> dt.time:
        """The minute's start (09:00 + ``minute``)."""
        total = SESSION_OPEN.hour * 60 + self.minute
        return dt.time(total // 60, total % 60)


class DayPath:
    """The intraday path of one code on one day: ``nodes[i]`` is the price at 09:00 + *i*
    minutes (``nodes[0]`` the open, ``nodes[-1]`` the close, the bar's high and low each touched),
    linear (then rounded down to the tick, kept between the two nodes) in between; ``cum[i]`` is
    the volume traded before minute *i* (``cum[0]``: the opening auction), ``volume`` the day's.
    A pure function of (seed, code, day): see :meth:`Universe.day_path`."""

    __slots__ = ("cum", "kind", "nodes", "volume")

    def __init__(self, nodes: array.array[int], cum: array.array[int], volume: int, kind: str):
        self.nodes = nodes
        self.cum = cum
        self.volume = volume
        self.kind = kind

    def price_at(self, second: int) -> int:
        """The price *second* seconds after 09:00 (clamped to the session)."""
        second = min(max(int(second), 0), SESSION_SECONDS)
        minute, rest = divmod(second, 60)
        nodes = self.nodes
        if rest == 0:
            return nodes[minute]
        a, b = nodes[minute], nodes[minute + 1]
        value = round_to_tick(a + (b - a) * rest / 60, self.kind)
        return min(max(value, min(a, b)), max(a, b))

    def volume_at(self, second: int) -> int:
        """The volume traded before *second* (from 09:00, the opening auction included); the
        day's volume from 15:30 on (the closing auction included)."""
        second = max(int(second), 0)
        if second >= SESSION_SECONDS:
            return self.volume
        return self._continuous(second)

    def _continuous(self, second: int) -> int:
        """The volume before *second*, the closing auction left out."""
        if second >= SESSION_SECONDS:
            return self.cum[SESSION_MINUTES]
        minute, rest = divmod(second, 60)
        a, b = self.cum[minute], self.cum[minute + 1]
        return a + (b - a) * rest // 60

    def high_low_until(self, second: int) -> tuple[int, int]:
        """(highest, lowest) price from 09:00 to *second* inclusive."""
        second = min(max(int(second), 0), SESSION_SECONDS)
        seen = self.nodes[: second // 60 + 1]
        price = self.price_at(second)
        return max(*seen, price), min(*seen, price)

    def minute_bar(self, minute: int, until: int | None = None) -> MinuteBar:
        """Minute *minute* (0 = 09:00 … :data:`SESSION_MINUTES` = 15:30, the closing auction),
        cut at second *until* (from 09:00) if the minute is still in progress. Within a minute
        the path is monotonic, so high and low are its open and close. The minutes' volumes add
        up to :meth:`volume_at` (to :attr:`volume` for the whole day)."""
        start = minute * 60
        if minute >= SESSION_MINUTES:
            close = self.nodes[SESSION_MINUTES]
            volume = self.volume - self.cum[SESSION_MINUTES]
            return MinuteBar(SESSION_MINUTES, close, close, close, close, volume)
        end = start + 59 if until is None else min(start + 59, max(until, start))
        stop = start + 60 if until is None else min(start + 60, max(until, start))
        opening, close = self.price_at(start), self.price_at(end)
        volume = self._continuous(stop) - self._continuous(start)
        if minute == 0:
            volume += self.cum[0]
        return MinuteBar(minute, opening, max(opening, close), min(opening, close), close, volume)


class Universe:
    """The listings and their price history for one seed. Thread-safe (history is cached)."""

    def __init__(self, seed: int, size: int, now: Callable[[], dt.datetime] | None = None) -> None:
        self._seed = seed
        #: Where "now" is for :meth:`bar` (the day in progress ends at the current second);
        #: ``None``: every bar is a whole day.
        self.now = now
        self._listings: dict[str, Listing] = {}
        for code, name, market, kind, sector, price in _REAL[: max(size, 0)]:
            shares = 5_969_782_550 if code == "005930" else 50_000_000
            self._listings[code] = Listing(code, name, market, kind, sector, price, shares)
        self._generate(random.Random(f"universe:{seed}"), size)
        self.codes: list[str] = list(self._listings)
        self._walks: dict[str, tuple[list[tuple[float, float, float]], int]] = {}
        self._bars: dict[tuple[str, dt.date, int | None], Bar] = {}
        self._paths: dict[tuple[str, dt.date], DayPath] = {}
        self._lock = threading.Lock()

    def _generate(self, rng: random.Random, size: int) -> None:
        """Synthetic filler up to *size*, with the well-known listings (:data:`_LARGE`) taking
        every other place until they run out (so a small universe still has synthetic codes,
        among them the ones with status flags)."""
        commons: list[str] = []
        special = 0
        large = iter(_LARGE)
        filler = 0
        while len(self._listings) < size:
            if filler % 2 == 0:
                row = next(large, None)
                if row is not None:
                    code, name, market, kind, sector, price, shares = row
                    self._listings[code] = Listing(code, name, market, kind, sector, price, shares)
                    filler += 1
                    continue
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
            if code in self._listings or code in _LARGE_CODES:
                continue
            filler += 1
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

    def price_at(self, code: str, moment: dt.datetime) -> int:
        """The price of *code* at *moment* (KST): on the day's path during the regular session,
        otherwise the current trading day's close (:func:`session_day_at`). A pure function of
        (seed, code, the moment's whole second)."""
        day = session_day_at(moment)
        second = session_second(moment, day)
        if second is None:
            return self.close(code, day)
        return self.day_path(code, day).price_at(second)

    def day_path(self, code: str, day: dt.date) -> DayPath:
        """The intraday path of *code* on weekday *day* (memoised, bounded): from the day's
        open to its close, touching its high and low, as :meth:`bar` (whole day) gives them."""
        key = (code, day)
        found = self._paths.get(key)
        if found is None:
            found = self._make_path(code, day)
            with self._lock:
                if len(self._paths) > 4096:
                    self._paths.clear()
                self._paths[key] = found
        return found

    def _make_path(self, code: str, day: dt.date) -> DayPath:
        listing = self._listings[code]
        bar = self._whole_bar(code, day, None)
        rng = random.Random(f"path:{self._seed}:{code}:{day.toordinal()}")
        steps = SESSION_MINUTES
        walk = [0.0]
        for _ in range(steps):
            walk.append(walk[-1] + rng.gauss(0.0, 1.0))
        end = walk[-1]
        bridge = [w - end * i / steps for i, w in enumerate(walk)]
        top, bottom = max(bridge), min(bridge)
        nodes = array.array("q", [0] * (steps + 1))
        for i, b in enumerate(bridge):
            line = bar.open + (bar.close - bar.open) * i / steps
            if b > 0 and top > 0:
                value = line + (bar.high - line) * b / top
            elif b < 0 and bottom < 0:
                value = line - (line - bar.low) * b / bottom
            else:
                value = line
            nodes[i] = min(max(round_to_tick(value, listing.kind), bar.low), bar.high)
        nodes[0], nodes[steps] = bar.open, bar.close
        # Volume: an opening auction, U-shaped minutes, a closing auction.
        weights = [rng.uniform(0.03, 0.06)]
        for i in range(steps):
            shape = 1.0 + 2.5 * math.exp(-i / 25) + 1.5 * math.exp(-(steps - 1 - i) / 25)
            weights.append(shape * rng.uniform(0.6, 1.4) / steps)
        weights.append(rng.uniform(0.04, 0.08))
        total = sum(weights)
        cum = array.array("q", [0] * (steps + 1))
        running = 0.0
        for i in range(steps + 1):
            running += weights[i]
            cum[i] = int(bar.volume * running / total)
        return DayPath(nodes, cum, bar.volume, listing.kind)

    def bar(self, code: str, day: dt.date, close: int | None = None) -> Bar:
        """The daily bar of *code* on weekday *day*; *close* overrides the close.

        With a :attr:`now` hook and *day* in session at that moment, the bar of the day so far
        (:meth:`bar_at`); otherwise the whole day's, memoised (a pure function of its arguments;
        the memo is bounded)."""
        if self.now is not None:
            second = session_second(self.now(), day)
            if second is not None:
                return self.bar_at(code, day, second, close)
        return self._whole_bar(code, day, close)

    def bar_at(self, code: str, day: dt.date, second: int, close: int | None = None) -> Bar:
        """*day*'s bar of *code* up to *second* seconds after 09:00: the day's open, the running
        high and low, the price then (or *close*) and the volume so far."""
        whole = self._whole_bar(code, day, None)
        path = self.day_path(code, day)
        price = path.price_at(second) if close is None else close
        high, low = path.high_low_until(second)
        return Bar(
            day,
            whole.open,
            max(high, price),
            min(low, price),
            price,
            path.volume_at(second),
            whole.prev_close,
        )

    def minute_bars(
        self, code: str, day: dt.date, until: int | None = None, last: int | None = None
    ) -> list[MinuteBar]:
        """*day*'s minute bars of *code*, oldest first: the whole session (09:00 … 15:30, the
        last the closing auction), or up to second *until* from 09:00 (the bar in progress cut
        there). *last* replaces the last bar's close (a price set by hand), widening its range.
        They agree with :meth:`price_at`, :meth:`bar` and :meth:`bar_at`."""
        path = self.day_path(code, day)
        if until is None:
            bars = [path.minute_bar(m) for m in range(SESSION_MINUTES + 1)]
        else:
            until = min(max(until, 0), SESSION_SECONDS - 1)
            bars = [path.minute_bar(m, until) for m in range(until // 60 + 1)]
        if last is not None and bars:
            end = bars[-1]
            bars[-1] = attrs.evolve(
                end, close=last, high=max(end.high, last), low=min(end.low, last)
            )
        return bars

    def _whole_bar(self, code: str, day: dt.date, close: int | None) -> Bar:
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
