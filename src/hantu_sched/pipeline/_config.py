"""The default pipeline's configuration: one frozen, validated :class:`PipelineConfig`.

Every field is checked at construction; a bad value raises :class:`ValueError` naming the field,
the value and what is expected, so a runner can print one clear line. ``trading_mode="live"``
places real orders and is refused unless ``allow_live=True`` is set as well.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import attrs

__all__ = ["TRADING_MODES", "PipelineConfig", "TradingMode"]

TradingMode = Literal["dry-run", "paper", "live"]
#: KIS rankings screening can take codes from (``universe_rankings``).
RANKINGS: Final[tuple[str, ...]] = ("volume", "market-cap", "fluctuation")
#: The accepted trading modes, safest first.
TRADING_MODES: Final[tuple[TradingMode, ...]] = ("dry-run", "paper", "live")
OrderType = Literal["limit", "market"]
_ORDER_TYPES: Final[tuple[OrderType, ...]] = ("limit", "market")


def _convert_universe(value: object) -> tuple[str, ...] | pathlib.Path | None:
    """``None``; a path (``str`` or path-like: a file of codes); or an iterable of codes."""
    if value is None or isinstance(value, pathlib.Path):
        return value
    if isinstance(value, str | os.PathLike):
        return pathlib.Path(value)
    if isinstance(value, Iterable):
        codes = tuple(value)
        bad = [c for c in codes if not isinstance(c, str) or not c.strip()]
        if bad:
            raise ValueError(
                f"PipelineConfig.universe: every code must be a non-empty string, got {bad[:3]!r}"
            )
        return tuple(c.strip() for c in codes)
    raise ValueError(
        "PipelineConfig.universe must be None, a list of codes or a path to a file of codes, "
        f"got {type(value).__name__}"
    )


def _convert_rankings(value: object) -> tuple[str, ...]:
    """A list of ranking names (or one, comma separated), each one of :data:`RANKINGS`."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, Iterable):
        raise ValueError(f"PipelineConfig.universe_rankings must be a list, got {value!r}")
    found = tuple(str(n).strip() for n in names if str(n).strip())
    bad = [n for n in found if n not in RANKINGS]
    if bad:
        raise ValueError(
            f"PipelineConfig.universe_rankings: {bad[0]!r} is not one of {', '.join(RANKINGS)}"
        )
    return tuple(dict.fromkeys(found))


def _int_at_least(minimum: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(
                f"PipelineConfig.{attribute.name} must be an integer >= {minimum}, got {value!r}"
            )

    return check


def _optional_int_at_least(minimum: int) -> Any:
    inner = _int_at_least(minimum)

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            inner(instance, attribute, value)

    return check


def _is_bool(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"PipelineConfig.{attribute.name} must be true or false, got {value!r}")


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in choices:
            raise ValueError(
                f"PipelineConfig.{attribute.name} must be one of {', '.join(choices)}; "
                f"got {value!r}"
            )

    return check


def _fraction(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value <= 1
    )
    if not ok:
        raise ValueError(f"PipelineConfig.{attribute.name} must be in (0, 1], got {value!r}")


def _finite(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok:
        raise ValueError(f"PipelineConfig.{attribute.name} must be a finite number, got {value!r}")


@attrs.frozen(kw_only=True)
class PipelineConfig:
    """Settings of the default daily pipeline (screening → selection → trading → close → report).

    Screening:

    - ``universe``: the codes to scan: ``None`` (use the ``"universe"`` service, e.g. the fake
      server's universe in simulation), a list of codes, or a path (``str`` or path-like) to a
      text file of codes (whitespace or comma separated, ``#`` starts a comment).
    - ``universe_rankings``: KIS rankings whose codes are added to the universe at screening
      time (``"volume"``, ``"market-cap"``, ``"fluctuation"``; each answers its top 30); with
      no ``universe`` they are the universe.
    - ``min_price`` / ``max_price`` (KRW, inclusive; ``max_price=None``: no upper bound),
      ``min_traded_value`` (KRW traded in the latest session), ``exclude_warnings`` (drop codes
      whose market-warning code is not ``"00"``), ``exclude_halted`` (drop halted codes).
    - ``screening_concurrency``: requests in flight for the async quote fetch.

    Selection:

    - ``momentum_days``: the score is the return over the last *momentum_days* trading days
      (close of the last bar before the trading date over the close *momentum_days* bars
      earlier, minus 1). ``lookback_days``: calendar days of bars to request (``None``: enough
      for *momentum_days* with room for holidays). ``min_avg_volume``: a code whose average
      daily volume over those *momentum_days* bars is lower is dropped. ``min_score``: only
      scores strictly above it are eligible (``0.0``: positive momentum only).
    - ``top_n``: how many names the final selection (across all batches) keeps.

    Trading:

    - ``trading_mode``: ``"dry-run"`` (default; logs the orders it would place, places none),
      ``"paper"`` (orders on a paper-environment client) or ``"live"`` (real orders; needs
      ``allow_live=True``).
    - ``max_position_fraction``: each name gets at most cash × fraction, floored to whole shares
      at the current price. ``order_type``: ``"limit"`` at the current price or ``"market"``.
    - ``monitor_interval_minutes``: while holding until the close, wake up this often (on the
      injected clock) to log order status and honour a stop.
    - ``cancel_before_close_minutes``: this long before the close, cancel this strategy's
      unfilled orders of the day (``0``: leave them to ``market_close``).
    - ``fill_notices``: take fills from KIS's real-time notices (the client's stream; needs
      ``KIS_HTS_ID``) as well as from polling, which stays the fallback; the trading record
      counts both.
    """

    universe: tuple[str, ...] | pathlib.Path | None = attrs.field(
        default=None, converter=_convert_universe
    )
    universe_rankings: tuple[str, ...] = attrs.field(default=(), converter=_convert_rankings)
    min_price: int = attrs.field(default=1000, validator=_int_at_least(1))
    max_price: int | None = attrs.field(default=None, validator=_optional_int_at_least(1))
    min_traded_value: int = attrs.field(default=1_000_000_000, validator=_int_at_least(0))
    exclude_warnings: bool = attrs.field(default=True, validator=_is_bool)
    exclude_halted: bool = attrs.field(default=True, validator=_is_bool)
    screening_concurrency: int = attrs.field(default=8, validator=_int_at_least(1))
    momentum_days: int = attrs.field(default=20, validator=_int_at_least(1))
    lookback_days: int | None = attrs.field(default=None, validator=_optional_int_at_least(2))
    min_avg_volume: int = attrs.field(default=50_000, validator=_int_at_least(0))
    min_score: float = attrs.field(default=0.0, validator=_finite)
    top_n: int = attrs.field(default=10, validator=_int_at_least(1))
    trading_mode: TradingMode = attrs.field(default="dry-run", validator=_one_of(TRADING_MODES))
    allow_live: bool = attrs.field(default=False, validator=_is_bool)
    max_position_fraction: float = attrs.field(default=0.1, validator=_fraction)
    order_type: OrderType = attrs.field(default="limit", validator=_one_of(_ORDER_TYPES))
    monitor_interval_minutes: int = attrs.field(default=30, validator=_int_at_least(1))
    cancel_before_close_minutes: int = attrs.field(default=10, validator=_int_at_least(0))
    fill_notices: bool = attrs.field(default=False, validator=_is_bool)

    def __attrs_post_init__(self) -> None:
        if self.max_price is not None and self.max_price < self.min_price:
            raise ValueError(
                f"PipelineConfig.max_price ({self.max_price}) is below min_price ({self.min_price})"
            )
        if self.trading_mode == "live" and not self.allow_live:
            raise ValueError(
                "PipelineConfig.trading_mode='live' places real orders: set allow_live=True to "
                "opt in (or use 'dry-run' / 'paper')"
            )
        if self.lookback_days is not None and self.lookback_days <= self.momentum_days:
            raise ValueError(
                f"PipelineConfig.lookback_days ({self.lookback_days}) must exceed momentum_days "
                f"({self.momentum_days}): the window is in calendar days"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> PipelineConfig:
        """Build from a mapping (e.g. a TOML table); unknown keys raise :class:`ValueError`."""
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown pipeline setting(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**dict(values))

    @property
    def bars_window_days(self) -> int:
        """Calendar days of daily bars selection requests (see ``lookback_days``)."""
        if self.lookback_days is not None:
            return self.lookback_days
        # 5 trading days per 7 calendar days, plus room for a long holiday (추석, 설날).
        return math.ceil((self.momentum_days + 1) * 7 / 5) + 14

    def universe_codes(self) -> tuple[str, ...] | None:
        """The configured codes: the list, the file's codes, or ``None`` when not configured.

        Raises :class:`ValueError` when the file cannot be read or holds no code.
        """
        if self.universe is None or isinstance(self.universe, tuple):
            return self.universe
        path = self.universe
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(
                f"cannot read the universe file {str(path)!r}: {exc.strerror}"
            ) from exc
        return _parse_codes(text, str(path))

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable summary (for logs and reports)."""
        data = attrs.asdict(self)
        universe = self.universe
        data["universe"] = (
            None
            if universe is None
            else str(universe)
            if isinstance(universe, pathlib.Path)
            else f"{len(universe)} codes"
        )
        return data


def _parse_codes(text: str, origin: str) -> tuple[str, ...]:
    codes: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        for token in line.split("#", 1)[0].replace(",", " ").split():
            if token not in seen:
                seen.add(token)
                codes.append(token)
    if not codes:
        raise ValueError(f"the universe file {origin!r} lists no codes")
    return tuple(codes)
