"""Client settings: the constructor arguments of both clients, checked once, in one place."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import attrs

from ._clock import Clock, SystemClock
from ._config import Env, EnvName, env_settings
from ._defaults import default_base_url, default_state_dir, parse_env
from ._errors import ConfigurationError
from ._observe import Observer
from ._rate_windows import Window, documented_limits
from ._retries import RetryPolicy
from ._validation import Account, parse_account

__all__ = [
    "DEFAULTS",
    "ENV_VARS",
    "ClientOptions",
    "ClientSettings",
    "default_base_url",
    "default_state_dir",
    "parse_env",
    "settings_from_env",
]

#: The environment variables :meth:`KISClient.from_env` reads, and the argument each one sets.
#: The first two are required.
ENV_VARS = {
    "KIS_APP_KEY": "app_key",
    "KIS_APP_SECRET": "app_secret",
    "KIS_ENV": "env",
    "KIS_ACCOUNT": "account",
    "KIS_BASE_URL": "base_url",
    "KIS_STATE_DIR": "state_dir",
    "KIS_WS_URL": "ws_url",
    "KIS_HTS_ID": "hts_id",
    "KIS_DATA_APP_KEY": "data_key",
    "KIS_DATA_APP_SECRET": "data_secret",
    "KIS_DATA_BASE_URL": "data_base_url",
    "KIS_SHARED_STATE": "shared_state",
}
_REQUIRED_ENV_VARS = ("KIS_APP_KEY", "KIS_APP_SECRET")


@attrs.frozen(kw_only=True)
class ClientOptions:
    """The optional constructor arguments of both clients and their defaults: the one table.

    :class:`~kisclient.KISClient` and :class:`~kisclient.AsyncKISClient` spell these out as
    keyword arguments (for IDEs) whose defaults are read from :data:`DEFAULTS`, and pass them
    here; :meth:`ClientSettings.build` checks them. A test pins that the constructors' parameters
    are exactly these fields with exactly these defaults.
    """

    env: EnvName | Env = "real"
    account: str | Account | None = None
    base_url: str | None = None
    state_dir: str | os.PathLike[str] | None = None
    rate_limits: Sequence[Window] | None = None
    clock: Clock | None = None
    timeout: float = 10.0
    retry: RetryPolicy | None = None
    retry_budget: int = 100
    refresh_margin: float = 300.0
    token_min_interval: float = 60.0
    legacy_order_tr_ids: bool = False
    quote_cache_ttl: float = 0.0
    rate_margin: float = 0.0
    order_settle: float = 60.0
    ws_url: str | None = None
    hts_id: str | None = None
    data_key: str | None = None
    data_secret: str | None = None
    data_base_url: str | None = None
    #: Told of every request, admission wait and stream event (see :mod:`kisclient._observe`).
    observer: Observer | None = None
    #: Where state shared with other processes lives: ``None`` (the files in ``state_dir``) or a
    #: ``redis://``/``rediss://`` URL (see :mod:`kisclient._shared_state`).
    shared_state: str | None = None


#: The defaults of every optional constructor argument (see :class:`ClientOptions`).
DEFAULTS = ClientOptions()


@attrs.frozen
class ClientSettings:
    """Everything a client needs besides its transport. Secrets never appear in the repr."""

    app_key: str = attrs.field(repr=False)
    app_secret: str = attrs.field(repr=False)
    env: Env
    account: Account | None
    base_url: str
    state_dir: pathlib.Path
    rate_limits: tuple[Window, ...] | None
    clock: Clock
    timeout_s: float
    retry: RetryPolicy
    retry_budget: int
    refresh_margin_s: float
    token_min_interval_s: float
    legacy_order_tr_ids: bool
    quote_cache_ttl_s: float
    rate_margin_s: float
    #: Seconds after an order left within which KIS may still accept it (``order_settle``);
    #: never shorter than ``timeout_s``. See :meth:`settle_window_s`.
    order_settle_s: float
    #: The WebSocket's URL (``ws_url``, default the environment's host).
    ws_url: str
    #: The HTS user id that fill notices are subscribed under (``hts_id``); secret-adjacent,
    #: never in the repr.
    hts_id: str | None = attrs.field(default=None, repr=False)
    #: A real app key (and secret) for market data beside a paper account (``data_key``).
    data_key: str | None = attrs.field(default=None, repr=False)
    data_secret: str | None = attrs.field(default=None, repr=False)
    #: Where market data goes with the data key (``data_base_url``, default the real host).
    data_base_url: str | None = None
    #: The observer (``observer``; see :mod:`kisclient._observe`), or ``None``.
    observer: Observer | None = attrs.field(default=None, repr=False)
    #: ``shared_state``: ``None`` for the files in ``state_dir``, or a Redis URL (it may hold a
    #: password: never in the repr). See :mod:`kisclient._shared_state`.
    shared_state: str | None = attrs.field(default=None, repr=False)

    @property
    def data_env(self) -> Env:
        """The environment market-data calls are made in: real with a data key."""
        return Env.REAL if self.data_key else self.env

    @classmethod
    def build(
        cls, app_key: str, app_secret: str, options: ClientOptions = DEFAULTS
    ) -> ClientSettings:
        """Check and normalise constructor arguments; raise :class:`ConfigurationError`."""
        if not app_key or not isinstance(app_key, str):
            raise ConfigurationError("app_key is required")
        if not app_secret or not isinstance(app_secret, str):
            raise ConfigurationError("app_secret is required")
        if app_secret != app_secret.strip() or app_key != app_key.strip():
            # A trailing newline in the secret is the classic cause of EGW00105.
            raise ConfigurationError("app_key/app_secret have leading or trailing whitespace")
        o = options
        parsed_env = parse_env(o.env)
        account = o.account
        parsed_account = (
            account if isinstance(account, Account) or account is None else parse_account(account)
        )
        url = (o.base_url or env_settings(parsed_env).base_url).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must start with http:// or https://, not {url!r}")
        ws_url = (o.ws_url or env_settings(parsed_env).websocket_url).rstrip("/")
        if not ws_url.startswith(("ws://", "wss://")):
            raise ConfigurationError(f"ws_url must start with ws:// or wss://, not {ws_url!r}")
        if o.hts_id is not None and (not o.hts_id.strip() or o.hts_id != o.hts_id.strip()):
            raise ConfigurationError("hts_id must be a non-empty id without surrounding spaces")
        data_base_url = _data_base_url(o)
        if (
            o.timeout <= 0
            or o.order_settle <= 0
            or min(o.quote_cache_ttl, o.refresh_margin, o.token_min_interval, o.rate_margin) < 0
        ):
            raise ConfigurationError("timeouts, margins and TTLs must not be negative")
        return cls(
            app_key=app_key,
            app_secret=app_secret,
            env=parsed_env,
            account=parsed_account,
            base_url=url,
            state_dir=pathlib.Path(o.state_dir) if o.state_dir is not None else default_state_dir(),
            rate_limits=tuple(o.rate_limits) if o.rate_limits is not None else None,
            clock=o.clock or SystemClock(),
            timeout_s=float(o.timeout),
            retry=o.retry or RetryPolicy(),
            retry_budget=o.retry_budget,
            refresh_margin_s=float(o.refresh_margin),
            token_min_interval_s=float(o.token_min_interval),
            legacy_order_tr_ids=o.legacy_order_tr_ids,
            quote_cache_ttl_s=float(o.quote_cache_ttl),
            rate_margin_s=float(o.rate_margin),
            order_settle_s=float(o.order_settle),
            ws_url=ws_url,
            hts_id=o.hts_id,
            data_key=o.data_key,
            data_secret=o.data_secret,
            data_base_url=data_base_url,
            observer=o.observer,
            shared_state=o.shared_state or None,
        )

    def windows(self, env: Env | None = None) -> tuple[Window, ...]:
        """The client-side windows of *env* (default the account's): the configured (or
        documented) ones, each stretched by ``rate_margin_s`` (default 0: settling each admission
        at its answer already keeps the server's count inside its window; a margin is for
        servers whose windows are fuzzier). A data key on the real host gets the real limits.
        """
        env = env or self.env
        base = documented_limits(env) if self.rate_limits is None else self.rate_limits
        return tuple(Window(w.limit, w.seconds + self.rate_margin_s) for w in base)

    @property
    def settle_window_s(self) -> float:
        """How long after an order left KIS may still accept it: ``order_settle_s``, but never
        less than the read timeout (an answer can take that long, the order as long)."""
        return max(self.order_settle_s, self.timeout_s)

    def url(self, path: str) -> str:
        return self.base_url + path

    def require_account(self) -> Account:
        if self.account is None:
            raise ConfigurationError("this call needs an account: pass account='12345678-01'")
        return self.account


def _data_base_url(o: ClientOptions) -> str | None:
    """Check the data key's arguments; the real host (or ``data_base_url``) when one is set."""
    if (o.data_key is None) != (o.data_secret is None):
        raise ConfigurationError("data_key and data_secret go together")
    if o.data_key is None:
        if o.data_base_url is not None:
            raise ConfigurationError("data_base_url needs data_key and data_secret")
        return None
    for name, value in (("data_key", o.data_key), ("data_secret", o.data_secret)):
        if not value or value != value.strip():
            raise ConfigurationError(f"{name} must be non-empty, without surrounding whitespace")
    url = (o.data_base_url or env_settings(Env.REAL).base_url).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"data_base_url must start with http:// or https://, not {url!r}")
    return url


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Read the ``KIS_*`` variables into constructor keyword arguments.

    Raises :class:`ConfigurationError` naming every missing required variable at once.
    """
    environ = os.environ if environ is None else environ
    missing = [name for name in _REQUIRED_ENV_VARS if not environ.get(name)]
    if missing:
        raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
    return {arg: environ[name] for name, arg in ENV_VARS.items() if environ.get(name)}
