"""What jobs get to talk to KIS with: :class:`Services`, and :func:`build_services`, the one
place that builds them for both ``run`` and ``simulate``.

``ctx.services`` is a :class:`Services`: typed attributes for the clients the default pipeline
uses (``ctx.services.kis`` is a :class:`kisclient.KISClient`, ``ctx.services.kis_async`` a
zero-argument callable returning a new :class:`kisclient.AsyncKISClient`,
``ctx.services.universe`` the codes to scan when the configuration names none) and ``extra`` for
anything else a custom job needs. It is also a read-only mapping, so a job written against the
older ``ctx.services["kis"]`` keeps working: the keys are ``"kis"``, ``"kis_async"``,
``"universe"`` (each present only when set) and the keys of ``extra``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import attrs

from kisclient import Env

from ._clock import Clock

if TYPE_CHECKING:  # the clients are loaded by build_services, not by importing this module
    import httpx

    from kisclient import AsyncKISClient, KISClient, Observer

__all__ = ["Credentials", "KISTarget", "Services", "build_services", "coerce_services"]

#: The mapping keys of the typed attributes (``ctx.services["kis"]`` is ``ctx.services.kis``).
TYPED_KEYS: Final = ("kis", "kis_async", "universe")


def _codes(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError(f"Services.universe must be a list of codes, got {type(value).__name__}")
    return tuple(str(code) for code in value)


def _extra(value: Mapping[str, Any]) -> Mapping[str, Any]:
    reserved = sorted(set(value) & set(TYPED_KEYS))
    if reserved:
        raise ValueError(f"Services.extra must not use the typed names {reserved}")
    return MappingProxyType(dict(value))


def _callable_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise TypeError(
            f"Services.{attribute.name} must be a zero-argument callable returning an "
            f"AsyncKISClient, got {type(value).__name__}"
        )


def _client_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    from kisclient import KISClient  # noqa: PLC0415 - loaded once a client exists anyway

    if value is not None and not isinstance(value, KISClient):
        raise TypeError(
            f"Services.{attribute.name} must be a kisclient.KISClient, got {type(value).__name__}"
        )


@attrs.frozen
class Services(Mapping[str, Any]):
    """The shared objects a job reaches through ``ctx.services`` (see the module docstring)."""

    kis: KISClient | None = attrs.field(default=None, validator=_client_or_none)
    kis_async: Callable[[], AsyncKISClient] | None = attrs.field(
        default=None, validator=_callable_or_none
    )
    universe: tuple[str, ...] | None = attrs.field(default=None, converter=_codes)
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_extra)

    @classmethod
    def coerce(cls, value: Services | Mapping[str, Any] | None) -> Services:
        """*value* as :class:`Services`: a mapping's ``"kis"``, ``"kis_async"`` and
        ``"universe"`` become the typed attributes (checked), every other key goes to
        ``extra``."""
        if isinstance(value, Services):
            return value
        items = dict(value or {})
        return cls(
            kis=items.pop("kis", None),
            kis_async=items.pop("kis_async", None),
            universe=items.pop("universe", None),
            extra=items,
        )

    def _typed(self) -> dict[str, Any]:
        values = {"kis": self.kis, "kis_async": self.kis_async, "universe": self.universe}
        return {k: v for k, v in values.items() if v is not None}

    def __getitem__(self, key: str) -> Any:
        typed = self._typed()
        if key in typed:
            return typed[key]
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._typed()
        yield from self.extra

    def __len__(self) -> int:
        return len(self._typed()) + len(self.extra)

    def close(self) -> None:
        """Close the sync client (async clients are closed by whoever made them)."""
        if self.kis is not None:
            self.kis.close()


def coerce_services(value: Services | Mapping[str, Any] | None) -> Services:
    """:meth:`Services.coerce` as a plain function (an attrs converter)."""
    return Services.coerce(value)


@attrs.frozen
class Credentials:
    """KIS credentials and where they came from. Secrets never appear in the repr."""

    app_key: str = attrs.field(repr=False)
    app_secret: str = attrs.field(repr=False)
    account: str | None
    source: str
    #: A real key for market data beside a paper account (``KIS_DATA_APP_KEY`` / ``_SECRET``).
    data_key: str | None = attrs.field(default=None, repr=False)
    data_secret: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class KISTarget:
    """Which KIS the clients talk to: the environment, the base URL (``None``: the
    environment's official host), kisclient's state directory (``None``: its default), the
    WebSocket URL (``None``: the environment's), the HTS id fill notices come under, the data
    key's host and the shared state (``None``: the state directory's files; a Redis URL shares
    tokens, rate windows and the stream lease across hosts)."""

    env: Env
    base_url: str | None = None
    state_dir: pathlib.Path | None = None
    ws_url: str | None = None
    hts_id: str | None = attrs.field(default=None, repr=False)
    data_base_url: str | None = None
    shared_state: str | None = attrs.field(default=None, repr=False)


def build_services(
    target: KISTarget,
    credentials: Credentials,
    clock: Clock,
    *,
    transport: httpx.BaseTransport | None = None,
    async_transport: httpx.AsyncBaseTransport | None = None,
    universe: list[str] | tuple[str, ...] | None = None,
    extra: Mapping[str, Any] | None = None,
    observer: Observer | None = None,
) -> Services:
    """The clients every job shares: one sync :class:`~kisclient.KISClient` (close it with
    :meth:`Services.close`) and a factory of :class:`~kisclient.AsyncKISClient` (screening opens
    one inside ``asyncio.run``), both on *clock*, *target* and *credentials*. ``run`` and
    ``simulate`` both call this; the transports are for tests and the fake server; *observer*
    (kisclient's ``observer=``) is given to every client (the runner's metrics and alerts)."""
    common: dict[str, Any] = {
        "app_key": credentials.app_key,
        "app_secret": credentials.app_secret,
        "env": target.env,
        "account": credentials.account,
        "base_url": target.base_url,
        "state_dir": target.state_dir,
        "clock": clock,
        "ws_url": target.ws_url,
        "hts_id": target.hts_id,
        "shared_state": target.shared_state,
        "data_key": credentials.data_key,
        "data_secret": credentials.data_secret,
        "data_base_url": target.data_base_url if credentials.data_key else None,
        "observer": observer,
    }
    from kisclient import AsyncKISClient, KISClient  # noqa: PLC0415 - see the imports above

    kis = KISClient(**common, transport=transport)

    def make_async() -> AsyncKISClient:
        return AsyncKISClient(**common, transport=async_transport)

    return Services(kis=kis, kis_async=make_async, universe=universe, extra=extra or {})
