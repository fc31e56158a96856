"""Runner configuration: embedded defaults, then a TOML file, then environment variables.

Precedence (later wins): the defaults → the TOML file (``--config`` or ``HANTU_CONFIG``; no file
is needed) → the credentials file's ``KIS_*`` variables → environment variables → command-line
flags (``--data-dir``). :data:`SETTINGS` is the one table of the runner's settings: each row
names the TOML key, the environment variable, the type an environment string is converted to
(by a cattrs converter), the default, what a valid value is and the documentation text.
Loading, validation, unknown-key detection and the reference table in
``docs/configuration.md`` (:func:`reference_table`, checked by a test) all come from it.
Pipeline settings are :class:`~hantu_sched.pipeline.PipelineConfig`'s fields (``[pipeline]``,
``HANTU_PIPELINE_<FIELD>``). Credentials are never read from the TOML file: only from the
environment (``KIS_APP_KEY``, ``KIS_APP_SECRET``, ``KIS_ACCOUNT``) or from a credentials file of
``KEY=VALUE`` lines whose mode gives nobody but the owner access (0600 or 0400); that file may
also set every other ``KIS_*`` variable kisclient reads (``KIS_ENV``, ``KIS_BASE_URL``,
``KIS_STATE_DIR``), below the real environment.

Every problem raises :class:`SettingsError` with one line saying what is wrong and where, so the
runner can print it and exit 2.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import os
import pathlib
import re
import stat
import tomllib
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import cattrs

from kisclient import (
    Env,
    InvalidAccount,
    default_base_url,
    default_state_dir,
    parse_account,
    parse_env,
)

from ._batch import validate_batch_id
from ._calendar import KRXCalendar, Session
from ._constants import KST
from ._day import (
    DEFAULT_POLICIES,
    JOB_ORDER,
    SELECTION,
    TRADING,
    At,
    IncompleteSelection,
    SchedulerConfig,
)
from ._services import Credentials, KISTarget
from ._telemetry_config import (
    ALERT_KINDS,
    ALERT_SECRET_KEYS,
    ALERT_SECRET_VARS,
    SEVERITIES,
    TelemetryConfig,
)

if TYPE_CHECKING:
    from ._jobs import Job, JobRegistry  # the job machinery loads only when jobs are built

__all__ = [
    "CREDENTIALS_FILE_VARS",
    "CREDENTIAL_VARS",
    "SETTINGS",
    "Credentials",
    "SettingSpec",
    "Settings",
    "SettingsError",
    "load_credentials",
    "load_settings",
    "parse_at",
    "pipeline_env_var",
    "reference_table",
    "resolve_job",
]

#: The secrets: environment variables (or credentials-file keys) that are never configuration.
CREDENTIAL_VARS = (
    "KIS_APP_KEY",
    "KIS_APP_SECRET",
    "KIS_ACCOUNT",
    "KIS_DATA_APP_KEY",
    "KIS_DATA_APP_SECRET",
)


class SettingsError(ValueError):
    """Bad configuration, a missing credential or an unresolvable job: one printable line."""


# --- converting values (cattrs) -------------------------------------------------------------------

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _to_bool(value: object, _: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _to_int(value: object, _: object) -> int:
    if isinstance(value, bool | float):
        raise ValueError(f"not an integer: {value!r}")
    return int(str(value).strip())


def _to_float(value: object, _: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    return float(str(value).strip())


def _to_str(value: object, _: object) -> str:
    if isinstance(value, dict | list):
        raise ValueError(f"not a string: {value!r}")
    return str(value).strip()


def _to_path(value: object, _: object) -> pathlib.Path:
    return pathlib.Path(_to_str(value, None)).expanduser()


def _to_strings(value: object, _: object) -> tuple[str, ...]:
    """A list of strings; an environment string is comma-separated."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if not isinstance(value, list | tuple):
        raise ValueError(f"not a list: {value!r}")
    return tuple(str(item).strip() for item in value)


def _to_dates(value: object, _: object) -> tuple[dt.date, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError(f"not a list of dates: {value!r}")
    days = []
    for item in value:
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
            days.append(item)
        else:
            days.append(dt.date.fromisoformat(str(item).strip()))
    return tuple(days)


def _to_env(value: object, _: object) -> Env:
    return parse_env(str(value))


#: Converts TOML values and environment strings to each setting's type.
CONVERTER = cattrs.Converter()
CONVERTER.register_structure_hook(bool, _to_bool)
CONVERTER.register_structure_hook(int, _to_int)
CONVERTER.register_structure_hook(float, _to_float)
CONVERTER.register_structure_hook(str, _to_str)
CONVERTER.register_structure_hook(pathlib.Path, _to_path)
CONVERTER.register_structure_hook(Env, _to_env)
CONVERTER.register_structure_hook(
    IncompleteSelection, lambda v, _: IncompleteSelection(_to_str(v, None))
)  # a str subclass: without this, the str hook would take it
CONVERTER.register_structure_hook_func(lambda t: t == tuple[str, ...], _to_strings)
CONVERTER.register_structure_hook_func(lambda t: t == tuple[dt.date, ...], _to_dates)


# --- the table ------------------------------------------------------------------------------------

#: At most this many selection batches (each is a journal row and a file every day).
MAX_BATCHES = 100
_MAX_NUMBER = 1e6


def _positive(maximum: float) -> Callable[[Any], bool]:
    return lambda v: math.isfinite(v) and 0 < v <= maximum


@attrs.frozen
class SettingSpec:
    """One runner setting: one row of :data:`SETTINGS` and of the reference table.

    ``key`` is the TOML key (``table.key``); ``env`` the environment variable (``None``: TOML
    only); ``type`` what the value is converted to (:data:`CONVERTER`); ``default`` the value
    when nothing sets it (``None``: unset); ``expect`` what a valid value is (in error
    messages); ``valid`` checks a converted value; ``doc_default``, ``env_note`` and ``doc`` are
    the reference table's cells."""

    key: str
    env: str | None
    type: Any
    default: Any
    expect: str
    doc_default: str
    doc: str
    env_note: str = ""
    valid: Callable[[Any], bool] | None = None

    @property
    def table(self) -> str:
        """The TOML table holding the key (``""`` for the top level)."""
        return self.key.rpartition(".")[0]

    @property
    def name(self) -> str:
        """The key's last part."""
        return self.key.rpartition(".")[2]


_TIMES_DOC = {
    "screening": (
        'Screening start. Every time is `"HH:MM"` (KST), `"open"`, `"open+MIN"`/'
        '`"open-MIN"` or `"close+MIN"`; the deadlines and catch-up rules stay as in '
        "[recovery.md](recovery.md)."
    ),
    "selection": "Start of the first selection batch.",
    "trading": (
        "Trading start (the session open: 09:00, 10:00 on the first trading day of the year "
        "and on 수능 day)."
    ),
    "market_close": "Market-close job start.",
    "performance": "Performance job start.",
}
_TIMES_DEFAULT = {
    "screening": "06:00",
    "selection": "07:00",
    "trading": "open",
    "market_close": "close+30",
    "performance": "close+90",
}
_TIME_EXPECT = "'HH:MM', 'open', 'open+MIN' or 'close+MIN'"

#: Every runner setting (pipeline settings are the ``[pipeline]`` table, see
#: :func:`pipeline_env_var`; job replacements are the ``[jobs]`` table).
SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "data_dir", "HANTU_DATA_DIR", pathlib.Path, "./data", "a directory", "`./data`",
        "Directory of the journal (`hantu_sched.sqlite3`), the batch files (`daily_selection/`), "
        "the reports (`reports/`) and the single-instance lock (`hantu_sched.lock`). "
        "`--data-dir` overrides it for every command. `simulate` uses "
        "`<data_dir>/simulate-<date>` unless `--data-dir` is given.",
    ),
    SettingSpec(
        "log_level", "HANTU_LOG_LEVEL", str, "INFO", "DEBUG, INFO, WARNING or ERROR", "`INFO`",
        "`DEBUG`, `INFO`, `WARNING` or `ERROR` for `run`'s log (stderr, KST timestamps).",
        valid=lambda v: v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"),
    ),
    SettingSpec(
        "storage", "HANTU_STORAGE", str, None, "a postgresql:// URL", "unset (SQLite)",
        "Where the journal, selections, watchlists, records and batch documents live: unset "
        "for the SQLite file in `data_dir`, or `postgresql://user@host:port/db` for a database "
        "several hosts share (a standby takes over the day; needs `hantu-sched[postgresql]`; "
        "see [postgresql.md](postgresql.md)). Keep passwords out of it (`~/.pgpass`, "
        "`PGPASSWORD`).",
        valid=lambda v: v.startswith(("postgresql://", "postgres://")),
    ),
    SettingSpec(
        "leadership.deployment", "HANTU_DEPLOYMENT", str, "default", "1-64 characters",
        "`default`",
        "With PostgreSQL storage: the scheduler the hosts share. One host leads each "
        "deployment at a time; every row is stored under this name.",
        valid=lambda v: 1 <= len(v) <= 64,
    ),
    SettingSpec(
        "leadership.lease_seconds", "HANTU_LEASE_SECONDS", float, 30.0,
        "a number from 3 to 3600", "`30`",
        "With PostgreSQL storage: the leader's lease. It is renewed every third of it; a leader "
        "that cannot renew stops acting after two thirds; a standby (`run --standby`) takes over "
        "once it lapsed.",
        valid=lambda v: 3 <= v <= 3600,
    ),
    SettingSpec(
        "scheduler.batch_ids", "HANTU_BATCH_IDS", tuple[str, ...], None,
        "a non-empty list of batch ids", '`["1", "2", "3", "4"]`',
        "The selection batches (1–32 of `[A-Za-z0-9_-]` each). Batch *i* starts at the "
        "selection start + *i* × the interval.",
        env_note=" (comma-separated)",
    ),
    SettingSpec(
        "scheduler.batch_count", "HANTU_BATCH_COUNT", int, None,
        "an integer >= 1", "unset",
        "Shorthand for `batch_ids = [\"1\", …, \"N\"]`; set one or the other.",
        valid=lambda v: v >= 1,
    ),
    SettingSpec(
        "scheduler.batch_interval_minutes", "HANTU_BATCH_INTERVAL_MINUTES", float, 10.0,
        "a positive number no larger than 1440", "`10`",
        "Minutes between the starts of consecutive batches: a finite number, 0 < *m* ≤ 1440. "
        "The batch schedule must fit before trading starts on a normal 09:00 session — "
        "selection start + N × interval ≤ trading start (the last batch gets one interval to "
        "finish) — and N ≤ 100 batches; otherwise every command refuses the configuration "
        "(`60 selection batch(es) every 10 min from 07:00 run until 17:00 …`).",
        valid=_positive(24 * 60),
    ),
    SettingSpec(
        "scheduler.incomplete_selection", "HANTU_INCOMPLETE_SELECTION", IncompleteSelection,
        IncompleteSelection.COMPLETE_FIRST,
        "one of " + ", ".join(m.value for m in IncompleteSelection), "`complete-first`",
        "What trading does when the selection is incomplete at the open: `complete-first` (run "
        "the missing batches, start trading late) or `skip-trading` (no trading that day). "
        "Trading never starts on an incomplete selection.",
    ),
    *(
        SettingSpec(
            f"scheduler.times.{job}", None, str, default, _TIME_EXPECT, f'`"{default}"`',
            _TIMES_DOC[job],
        )
        for job, default in _TIMES_DEFAULT.items()
    ),
    SettingSpec(
        "calendar.extra_closures", None, tuple[dt.date, ...], (), "a list of dates (YYYY-MM-DD)",
        "`[]`",
        "Extra closed dates (`\"YYYY-MM-DD\"` or TOML dates), e.g. a newly announced 임시공휴일.",
    ),
    SettingSpec(
        "kis.env", "KIS_ENV", Env, Env.REAL, "'real' or 'paper'", "`real`",
        "The KIS environment: `real` or `paper` (`prod`/`vps` accepted). "
        "`pipeline.trading_mode = \"paper\"` needs `paper`; `\"live\"` needs `real`.",
    ),
    SettingSpec(
        "kis.base_url", "KIS_BASE_URL", str, None, "a URL starting with http:// or https://",
        "the environment's official host",
        "Override of every endpoint's host (tests, proxies). `doctor` checks it is reachable.",
        valid=lambda v: v.startswith(("http://", "https://")),
    ),
    SettingSpec(
        "kis.state_dir", "KIS_STATE_DIR", pathlib.Path, None, "a directory",
        "kisclient's cache directory (`~/.cache/kisclient` on Linux)",
        "The token store, its refresh lock and the shared rate-limit state. Mode 0700; share it "
        "between every process using the same app key.",
        valid=lambda v: not v.exists() or v.is_dir(),
    ),
    SettingSpec(
        "kis.ws_url", "KIS_WS_URL", str, None, "a URL starting with ws:// or wss://",
        "the environment's official WebSocket host",
        "The real-time WebSocket (fill notices when `pipeline.fill_notices` is on).",
        valid=lambda v: v.startswith(("ws://", "wss://")),
    ),
    SettingSpec(
        "kis.hts_id", "KIS_HTS_ID", str, None, "an HTS user id (no spaces)", "unset",
        "The HTS user id that KIS sends fill notices under (needed by `pipeline.fill_notices`).",
        valid=lambda v: bool(v) and not any(c.isspace() for c in v),
    ),
    SettingSpec(
        "kis.shared_state", "KIS_SHARED_STATE", str, None, "a URL starting with redis:// or "
        "rediss://", "the state directory's files (one host)",
        "Redis shared by every process and host on this app key: the token, the rate windows "
        "and the stream lease (see shared-state.md). Holds a password: give it by environment.",
        valid=lambda v: v.startswith(("redis://", "rediss://")),
    ),
    SettingSpec(
        "kis.data_base_url", "KIS_DATA_BASE_URL", str, None,
        "a URL starting with http:// or https://", "the real environment's official host",
        "Where market data goes with a data key (`KIS_DATA_APP_KEY` / `KIS_DATA_APP_SECRET`, "
        "secrets: environment or credentials file only): a paper account then takes quotes, "
        "bars and rankings from the real host at 18/s, orders and the balance from paper.",
        valid=lambda v: v.startswith(("http://", "https://")),
    ),
    SettingSpec(
        "kis.credentials_file", "HANTU_CREDENTIALS_FILE", pathlib.Path, None, "a file path",
        "unset",
        "A `KEY=VALUE` file (the systemd `EnvironmentFile` format; `#` comments and `export` "
        "allowed) with `KIS_APP_KEY`, `KIS_APP_SECRET`, `KIS_ACCOUNT` and optionally any other "
        "`KIS_*` variable kisclient reads (`KIS_ENV`, `KIS_BASE_URL`, `KIS_STATE_DIR`). Refused "
        "unless only its owner can read it (mode 0600 or 0400). Values already in the "
        "environment win.",
    ),
    SettingSpec(
        "doctor.clock_warn_seconds", "HANTU_CLOCK_WARN_SECONDS", float, 5.0,
        f"a positive number no larger than {_MAX_NUMBER:g}", "`5`",
        "`doctor` measures the system clock against the gateway's HTTP `Date` header (one "
        "request to `kis.base_url`) and warns past this offset in seconds.",
        valid=_positive(_MAX_NUMBER),
    ),
    SettingSpec(
        "doctor.clock_fail_seconds", "HANTU_CLOCK_FAIL_SECONDS", float, 60.0,
        f"a positive number no larger than {_MAX_NUMBER:g}", "`60`",
        "`doctor` fails past this offset (order reconciliation compares times). Must not be "
        "below the warning threshold.",
        valid=_positive(_MAX_NUMBER),
    ),
    SettingSpec(
        "alerts.events", "HANTU_ALERT_EVENTS", tuple[str, ...], None,
        "a list of: " + ", ".join(ALERT_KINDS), "every kind",
        "Which events alert: " + ", ".join(f"`{k}`" for k in ALERT_KINDS) + ". Channels are "
        "enabled by their settings: `HANTU_ALERT_WEBHOOK_URL` (generic JSON webhook), "
        "`HANTU_ALERT_SLACK_WEBHOOK_URL`, `HANTU_ALERT_TELEGRAM_BOT_TOKEN` with "
        "`alerts.telegram_chat_id`, `alerts.smtp_host` with `alerts.email_to` (secrets: "
        "environment or credentials file only; see [operations.md](operations.md)).",
        env_note=" (comma-separated)",
        valid=lambda v: all(k in ALERT_KINDS for k in v),
    ),
    SettingSpec(
        "alerts.min_severity", "HANTU_ALERT_MIN_SEVERITY", str, "info",
        "info, warning or critical", "`info`",
        "Alerts below this severity are not sent (`info`: performance summary, reconciled "
        "orders, recovered crashes; `warning`; `critical`: failed jobs, incomplete days, token "
        "refusals, unknown order outcomes).",
        valid=lambda v: v.lower() in SEVERITIES,
    ),
    SettingSpec(
        "alerts.rate_per_minute", "HANTU_ALERT_RATE_PER_MINUTE", float, 20.0,
        "a positive number no larger than 1000", "`20`",
        "Deliveries per minute per channel (a burst of that many, then paced); the rest wait "
        "in the channel's queue.",
        valid=_positive(1000),
    ),
    SettingSpec(
        "alerts.queue_size", "HANTU_ALERT_QUEUE_SIZE", int, 100,
        "an integer from 1 to 100000", "`100`",
        "Alerts a channel holds while delivering; when full the oldest is dropped (and counted: "
        "`hantu_alerts_dropped_total`).",
        valid=lambda v: 1 <= v <= 100_000,
    ),
    SettingSpec(
        "alerts.max_attempts", "HANTU_ALERT_MAX_ATTEMPTS", int, 5,
        "an integer from 1 to 100", "`5`",
        "Delivery attempts per alert and channel (retried with doubling backoff).",
        valid=lambda v: 1 <= v <= 100,
    ),
    SettingSpec(
        "alerts.backoff_seconds", "HANTU_ALERT_BACKOFF_SECONDS", float, 2.0,
        "a positive number no larger than 3600", "`2`",
        "The first retry's wait; it doubles up to 5 minutes (a `Retry-After` / Telegram "
        "`retry_after` is honoured).",
        valid=_positive(3600),
    ),
    SettingSpec(
        "alerts.timeout_seconds", "HANTU_ALERT_TIMEOUT_SECONDS", float, 10.0,
        "a positive number no larger than 300", "`10`",
        "Connect/read timeout of one delivery (HTTP or SMTP).",
        valid=_positive(300),
    ),
    SettingSpec(
        "alerts.telegram_chat_id", "HANTU_ALERT_TELEGRAM_CHAT_ID", str, None,
        "a chat id", "unset",
        "The Telegram chat the bot writes to (the bot token is the secret "
        "`HANTU_ALERT_TELEGRAM_BOT_TOKEN`).",
        valid=bool,
    ),
    SettingSpec(
        "alerts.telegram_base_url", "HANTU_ALERT_TELEGRAM_BASE_URL", str,
        "https://api.telegram.org", "a URL starting with http:// or https://",
        "`https://api.telegram.org`",
        "The Bot API host (a proxy, or a loopback receiver in tests).",
        valid=lambda v: v.startswith(("http://", "https://")),
    ),
    SettingSpec(
        "alerts.smtp_host", "HANTU_ALERT_SMTP_HOST", str, None, "a host name", "unset",
        "SMTP server for e-mail alerts (standard library `smtplib`).",
        valid=bool,
    ),
    SettingSpec(
        "alerts.smtp_port", "HANTU_ALERT_SMTP_PORT", int, 587, "a port (1-65535)", "`587`",
        "SMTP port.",
        valid=lambda v: 1 <= v <= 65535,
    ),
    SettingSpec(
        "alerts.smtp_security", "HANTU_ALERT_SMTP_SECURITY", str, "starttls",
        "starttls, ssl or none", "`starttls`",
        "`starttls` (port 587), `ssl` (implicit TLS, port 465) or `none` (loopback relays only).",
        valid=lambda v: v.lower() in ("starttls", "ssl", "none"),
    ),
    SettingSpec(
        "alerts.smtp_user", "HANTU_ALERT_SMTP_USER", str, None, "a user name", "unset",
        "SMTP login (the password is the secret `HANTU_ALERT_SMTP_PASSWORD`).",
        valid=bool,
    ),
    SettingSpec(
        "alerts.email_from", "HANTU_ALERT_EMAIL_FROM", str, None, "an address", "unset",
        "Sender address (default: `alerts.smtp_user`, else `hantu_sched@localhost`).",
        valid=lambda v: "@" in v,
    ),
    SettingSpec(
        "alerts.email_to", "HANTU_ALERT_EMAIL_TO", tuple[str, ...], (), "a list of addresses",
        "`[]`",
        "Recipients of e-mail alerts (none: no e-mail).",
        env_note=" (comma-separated)",
        valid=lambda v: all("@" in a for a in v),
    ),
    SettingSpec(
        "metrics.enabled", "HANTU_METRICS", bool, True, "true or false", "`true`",
        "Write Prometheus metrics (`run` and `simulate`).",
    ),
    SettingSpec(
        "metrics.textfile", "HANTU_METRICS_TEXTFILE", pathlib.Path, None, "a file path",
        "`<data_dir>/metrics/hantu_sched.prom`",
        "The node-exporter textfile (written atomically; point node-exporter's "
        "`--collector.textfile.directory` at its directory).",
    ),
    SettingSpec(
        "metrics.http_port", "HANTU_METRICS_HTTP_PORT", int, 0, "a port (0-65535)", "`0` (off)",
        "Also serve the metrics over HTTP on 127.0.0.1 at this port (`/metrics`).",
        valid=lambda v: 0 <= v <= 65535,
    ),
    SettingSpec(
        "metrics.interval_seconds", "HANTU_METRICS_INTERVAL_SECONDS", float, 15.0,
        "a positive number no larger than 3600", "`15`",
        "How often the textfile is rewritten (also at every job's end and at exit).",
        valid=_positive(3600),
    ),
)  # fmt: skip

_BY_KEY = {spec.key: spec for spec in SETTINGS}

#: What a credentials file may set: the secrets and every ``KIS_*`` variable of the table.
CREDENTIALS_FILE_VARS: tuple[str, ...] = (
    CREDENTIAL_VARS
    + ALERT_SECRET_VARS
    + tuple(spec.env for spec in SETTINGS if spec.env is not None and spec.env.startswith("KIS_"))
)


def reference_table() -> str:
    """The "Runner settings" table of ``docs/configuration.md``, rendered from
    :data:`SETTINGS` (a test checks the page holds exactly this)."""
    rows = [
        "| TOML key | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for spec in SETTINGS:
        env = f"`{spec.env}`{spec.env_note}" if spec.env else "—"
        rows.append(f"| `{spec.key}` | {env} | {spec.doc_default} | {spec.doc} |")
    return "\n".join(rows)


#: The session the batch schedule is checked against at load time (a normal 09:00 open).
_REFERENCE_SESSION = Session(
    dt.datetime(2026, 6, 4, 9, 0, tzinfo=KST), dt.datetime(2026, 6, 4, 15, 30, tzinfo=KST)
)

_PIPELINE_ENV_PREFIX = "HANTU_PIPELINE_"
_TIME_RE = re.compile(
    r"^(?:(?P<hh>\d{1,2}):(?P<mm>\d{2})|(?P<anchor>open|close)(?P<off>[+-]\d+)?)$"
)


def pipeline_env_var(field: str) -> str:
    """The environment variable of pipeline setting *field* (``HANTU_PIPELINE_TOP_N``)."""
    return _PIPELINE_ENV_PREFIX + field.upper()


@attrs.frozen
class Settings:
    """The runner's resolved configuration (see :data:`SETTINGS`)."""

    data_dir: pathlib.Path
    log_level: str
    scheduler: SchedulerConfig
    extra_closures: tuple[dt.date, ...]
    pipeline: dict[str, Any]
    jobs: dict[str, dict[str, str]]
    kis_env: Env
    kis_base_url: str | None
    kis_state_dir: pathlib.Path | None
    credentials_file: pathlib.Path | None
    config_path: pathlib.Path | None
    clock_warn_seconds: float = 5.0
    clock_fail_seconds: float = 60.0
    kis_ws_url: str | None = None
    kis_hts_id: str | None = attrs.field(default=None, repr=False)
    kis_shared_state: str | None = attrs.field(default=None, repr=False)  # may hold a password
    kis_data_base_url: str | None = None
    #: The ``[alerts]`` and ``[metrics]`` settings (secrets are not here: see
    #: :func:`hantu_sched._telemetry.load_alert_secrets`).
    telemetry: TelemetryConfig = attrs.field(factory=TelemetryConfig)
    #: ``storage``: a PostgreSQL URL, or ``None`` for the SQLite file in ``data_dir``.
    storage: str | None = attrs.field(default=None, repr=False)
    deployment: str = "default"
    lease_seconds: float = 30.0

    @property
    def base_url(self) -> str:
        """The configured base URL, or the environment's official host."""
        return (self.kis_base_url or default_base_url(self.kis_env)).rstrip("/")

    @property
    def state_dir(self) -> pathlib.Path:
        """The kisclient state directory (token store, shared rate state)."""
        return self.kis_state_dir if self.kis_state_dir is not None else default_state_dir()

    @property
    def kis_target(self) -> KISTarget:
        """Which KIS the clients talk to (see :func:`~hantu_sched.build_services`)."""
        return KISTarget(
            self.kis_env,
            self.kis_base_url,
            self.kis_state_dir,
            self.kis_ws_url,
            self.kis_hts_id,
            self.kis_data_base_url,
            self.kis_shared_state,
        )

    def calendar(self) -> KRXCalendar:
        """The KRX calendar with the configured extra closures."""
        return KRXCalendar(
            extra_closures=dict.fromkeys(self.extra_closures, "extra closure (configuration)")
        )

    def pipeline_config(self, **overrides: Any) -> Any:
        """The :class:`~hantu_sched.pipeline.PipelineConfig` (raises :class:`SettingsError`)."""
        from .pipeline import PipelineConfig  # noqa: PLC0415 - the pipeline imports kisclient

        try:
            return PipelineConfig.from_mapping({**self.pipeline, **overrides})
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"bad [pipeline] configuration: {exc}") from None

    def job_registry(self, pipeline_config: Any) -> JobRegistry:
        """The default pipeline's jobs with the ``[jobs]`` replacements applied."""
        from .pipeline import default_jobs  # noqa: PLC0415

        registry = default_jobs(pipeline_config)
        for name, (run, reconcile) in self._replacements().items():
            registry.register(name, run, reconcile=reconcile)
        return registry

    def check_jobs(self) -> None:
        """Check the ``[pipeline]`` table and import every ``[jobs]`` replacement
        (:class:`SettingsError` naming the first problem), without building the default jobs:
        they import every pipeline job and kisclient's clients, which commands that only read
        (``status``) should not pay for at start-up."""
        self.pipeline_config()
        self._replacements()

    def _replacements(self) -> dict[str, tuple[Job, Job | None]]:
        """The ``[jobs]`` replacements, imported: name -> (run, reconcile or ``None``)."""
        return {
            name: (
                resolve_job(name, spec["run"]),
                resolve_job(name, spec["reconcile"]) if "reconcile" in spec else None,
            )
            for name, spec in self.jobs.items()
        }


def resolve_job(name: str, path: str) -> Job:
    """Import ``package.module:callable`` for job *name*; :class:`SettingsError` if it fails."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise SettingsError(
            f"job {name!r}: import path {path!r} must look like 'package.module:callable'"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise SettingsError(f"job {name!r}: cannot import {module_name!r}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise SettingsError(f"job {name!r}: {module_name!r} has no attribute {attr!r}")
    if not callable(target):
        raise SettingsError(f"job {name!r}: {path!r} is not callable")
    job: Job = target
    return job


def parse_at(job: str, value: object) -> At:
    """``"HH:MM"`` (local KST time), ``"open"``, ``"open+15"``, ``"close+30"`` (minutes)."""
    text = str(value).strip().lower().replace(" ", "")
    match = _TIME_RE.match(text)
    if match is None:
        raise SettingsError(f"scheduler.times.{job} = {value!r}: use {_TIME_EXPECT}")
    if match["hh"] is not None:
        hour, minute = int(match["hh"]), int(match["mm"])
        if hour > 23 or minute > 59:
            raise SettingsError(f"scheduler.times.{job} = {value!r}: not a time of day")
        return At.local(hour, minute)
    offset = int(match["off"] or 0)
    return At.open(offset) if match["anchor"] == "open" else At.close(offset)


# --- loading ------------------------------------------------------------------------------------


def _read_toml(path: pathlib.Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"configuration file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise SettingsError(f"cannot read configuration file {str(path)!r}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"configuration file {str(path)!r} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(
            f"configuration file {str(path)!r} is not UTF-8 text (a binary file?)"
        ) from None


def _known_tables() -> dict[str, set[str]]:
    """Each TOML table's known keys, from :data:`SETTINGS` (plus ``[pipeline]`` and ``[jobs]``,
    whose keys are checked by their own loaders)."""
    known: dict[str, set[str]] = {"": {"pipeline", "jobs"}}
    for spec in SETTINGS:
        parts = spec.key.split(".")
        for depth in range(len(parts)):
            known.setdefault(".".join(parts[:depth]), set()).add(parts[depth])
    return known


_KNOWN_TABLES = _known_tables()
_SECRET_KEYS = {"app_key", "app_secret", "account", "appkey", "appsecret"}


def _check_tables(data: Mapping[str, Any], table: str = "") -> None:
    """Refuse unknown keys (and secrets under ``[kis]``) in *table* and its sub-tables."""
    if table == "alerts" and set(data) & ALERT_SECRET_KEYS:
        raise SettingsError(
            "alert secrets are never read from the configuration file: remove "
            f"{', '.join(sorted(set(data) & ALERT_SECRET_KEYS))} from [alerts] and set "
            f"{', '.join(ALERT_SECRET_VARS)} in the environment or a credentials file"
        )
    if table == "kis" and set(data) & _SECRET_KEYS:
        raise SettingsError(
            "credentials are never read from the configuration file: remove them from [kis] and "
            "set KIS_APP_KEY/KIS_APP_SECRET/KIS_ACCOUNT in the environment or a credentials file"
        )
    if table == "scheduler.times":
        unknown_jobs = [job for job in data if job not in JOB_ORDER]
        if unknown_jobs:
            raise SettingsError(
                f"unknown job {unknown_jobs[0]!r} in [scheduler.times]; known jobs: "
                f"{', '.join(JOB_ORDER)}"
            )
    unknown = sorted(set(data) - _KNOWN_TABLES[table])
    if unknown:
        where = f"[{table}]" if table else "the top level"
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)} in {where}")
    for key, value in data.items():
        name = f"{table}.{key}" if table else key
        if name in _KNOWN_TABLES:
            if not isinstance(value, dict):
                raise SettingsError(f"[{name}] must be a table")
            _check_tables(value, name)
    for extra in ("pipeline", "jobs"):
        if not table and not isinstance(data.get(extra, {}), dict):
            raise SettingsError(f"[{extra}] must be a table")


_MISSING = object()


def _lookup(data: Mapping[str, Any], key: str) -> Any:
    value: Any = data
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _resolve(spec: SettingSpec, data: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    """*spec*'s value: the environment's, else the TOML file's, else the default; converted by
    :data:`CONVERTER` and checked (:class:`SettingsError` naming the key and the variable)."""
    raw: Any = environ.get(spec.env, "") if spec.env else ""
    where = f" (from {spec.env})" if raw.strip() else ""
    if not raw.strip():
        raw = _lookup(data, spec.key)
        if raw is _MISSING:  # a default written as text is converted like any value
            default = spec.default
            return CONVERTER.structure(default, spec.type) if isinstance(default, str) else default
    try:
        value = CONVERTER.structure(raw, spec.type)
    except (ValueError, TypeError, cattrs.BaseValidationError):
        value = _MISSING
    if value is _MISSING or (spec.valid is not None and not spec.valid(value)):
        raise SettingsError(f"{spec.key} must be {spec.expect}, got {raw!r}{where}")
    return value


def _pipeline_env_value(name: str, kind: Any, raw: str) -> Any:
    """Convert environment string *raw* to pipeline field type *kind* (cattrs)."""
    text = raw.strip()
    args = typing.get_args(kind)
    optional = type(None) in args  # ``X | None``
    if optional and text.lower() in ("", "none", "null"):
        return None
    target = next((a for a in args if a is not type(None)), kind) if optional else kind
    if target not in (bool, int, float):
        return text  # strings and literals: PipelineConfig checks them
    try:
        return CONVERTER.structure(text, target)
    except ValueError:
        expected = "true or false" if target is bool else "a number"
        raise SettingsError(f"{name} must be {expected}, got {raw!r}") from None


def _pipeline_env(environ: Mapping[str, str]) -> dict[str, Any]:
    names = [k for k in environ if k.startswith(_PIPELINE_ENV_PREFIX)]
    if not names:
        return {}
    from .pipeline import PipelineConfig  # noqa: PLC0415

    hints = typing.get_type_hints(PipelineConfig)
    fields = {f.name: f for f in attrs.fields(PipelineConfig)}
    values: dict[str, Any] = {}
    for name in names:
        field = fields.get(name[len(_PIPELINE_ENV_PREFIX) :].lower())
        if field is None:
            raise SettingsError(
                f"unknown pipeline environment variable {name}; known: "
                f"{', '.join(pipeline_env_var(f) for f in fields)}"
            )
        if field.name == "universe":  # a path or nothing; PipelineConfig converts it
            values[field.name] = environ[name].strip() or None
        else:
            values[field.name] = _pipeline_env_value(name, hints[field.name], environ[name])
    return values


def _batch_ids(values: Mapping[str, Any]) -> tuple[str, ...]:
    ids: tuple[str, ...] | None = values["scheduler.batch_ids"]
    count: int | None = values["scheduler.batch_count"]
    if count is not None and ids is not None:
        raise SettingsError("set either scheduler.batch_ids or scheduler.batch_count, not both")
    if count is not None:
        if count > MAX_BATCHES:
            raise SettingsError(f"scheduler.batch_count must be at most {MAX_BATCHES}, got {count}")
        return tuple(str(i) for i in range(1, count + 1))
    if ids is None:
        return SchedulerConfig().batch_ids
    if not ids:
        raise SettingsError(f"scheduler.batch_ids must be a non-empty list, got {list(ids)!r}")
    try:
        result = tuple(validate_batch_id(b) for b in ids)
    except ValueError as exc:
        raise SettingsError(f"scheduler.batch_ids: {exc}") from None
    if len(set(result)) != len(result):
        raise SettingsError(f"scheduler.batch_ids has duplicates: {list(result)}")
    if len(result) > MAX_BATCHES:
        raise SettingsError(
            f"scheduler.batch_ids lists {len(result)} batches; at most {MAX_BATCHES}"
        )
    return result


def _check_batches_fit(config: SchedulerConfig) -> None:
    """Refuse a batch schedule that cannot finish before trading starts on a normal 09:00
    session: the last batch starts at the selection start + (N-1) x interval and is given one
    interval to finish (60 batches x 10 min used to leave trading never running)."""
    selection = config.policy(SELECTION).start.resolve(_REFERENCE_SESSION)
    trading = config.policy(TRADING).start.resolve(_REFERENCE_SESSION)
    count = len(config.batch_ids)
    end = selection + count * config.batch_interval
    if end > trading:
        minutes = config.batch_interval.total_seconds() / 60
        raise SettingsError(
            f"{count} selection batch(es) every {minutes:g} min from {selection:%H:%M} run "
            f"until {end:%H:%M} (last start + one interval), after trading starts at "
            f"{trading:%H:%M} on a normal 09:00 session: the selection could never complete "
            "before the open; use fewer batches, a shorter scheduler.batch_interval_minutes or "
            "an earlier scheduler.times.selection"
        )


def _scheduler(values: Mapping[str, Any], data: Mapping[str, Any]) -> SchedulerConfig:
    times = _lookup(data, "scheduler.times")
    policies = {
        job: attrs.evolve(DEFAULT_POLICIES[job], start=parse_at(job, value))
        for job, value in ({} if times is _MISSING else times).items()
    }
    config = SchedulerConfig(
        batch_ids=_batch_ids(values),
        batch_interval=dt.timedelta(minutes=values["scheduler.batch_interval_minutes"]),
        incomplete_selection=values["scheduler.incomplete_selection"],
        policies=policies,
    )
    _check_batches_fit(config)
    return config


def _jobs(table: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    jobs: dict[str, dict[str, str]] = {}
    for name, value in table.items():
        if name not in JOB_ORDER:
            raise SettingsError(
                f"unknown job {name!r} in [jobs]; known jobs: {', '.join(JOB_ORDER)}"
            )
        spec = {"run": value} if isinstance(value, str) else value
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("run"), str)
            or (set(spec) - {"run", "reconcile"})
        ):
            raise SettingsError(
                f"[jobs] {name} must be 'package.module:callable' or "
                "{ run = '...', reconcile = '...' }"
            )
        jobs[name] = {k: str(v) for k, v in spec.items()}
    return jobs


def load_settings(
    config: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
) -> Settings:
    """Resolve the settings (see the module docstring for the precedence). Every problem
    surfaces here, the ``[pipeline]`` and ``[jobs]`` tables included (:meth:`Settings.check_jobs`).
    """
    environ = os.environ if environ is None else environ
    config_file = config if config is not None else environ.get("HANTU_CONFIG")
    config_path = None if not config_file else pathlib.Path(config_file).expanduser()
    data = _read_toml(config_path) if config_path is not None else {}
    _check_tables(data)
    credentials_file = _resolve(_BY_KEY["kis.credentials_file"], data, environ)
    if credentials_file is not None:  # its KIS_* variables sit below the real environment
        from_file = _read_credentials_file(credentials_file)
        environ = {**{k: v for k, v in from_file.items() if k not in CREDENTIAL_VARS}, **environ}
    values = {spec.key: _resolve(spec, data, environ) for spec in SETTINGS}
    if data_dir is not None:
        values["data_dir"] = pathlib.Path(data_dir).expanduser()
    pipeline = dict(_lookup(data, "pipeline") if "pipeline" in data else {})
    pipeline.update(_pipeline_env(environ))
    warn = values["doctor.clock_warn_seconds"]
    fail = values["doctor.clock_fail_seconds"]
    if fail < warn:
        raise SettingsError(
            f"doctor.clock_fail_seconds ({fail:g}) must not be below "
            f"doctor.clock_warn_seconds ({warn:g})"
        )
    state_dir: pathlib.Path | None = values["kis.state_dir"]
    settings = Settings(
        data_dir=values["data_dir"],
        log_level=values["log_level"].upper(),
        scheduler=_scheduler(values, data),
        extra_closures=values["calendar.extra_closures"],
        pipeline=pipeline,
        jobs=_jobs(data.get("jobs", {})),
        kis_env=values["kis.env"],
        kis_base_url=values["kis.base_url"],
        kis_state_dir=state_dir,
        credentials_file=credentials_file,
        config_path=config_path,
        clock_warn_seconds=warn,
        clock_fail_seconds=fail,
        kis_ws_url=values["kis.ws_url"],
        kis_hts_id=values["kis.hts_id"],
        kis_shared_state=values["kis.shared_state"],
        kis_data_base_url=values["kis.data_base_url"],
        telemetry=TelemetryConfig.from_values(values),
        storage=values["storage"],
        deployment=values["leadership.deployment"],
        lease_seconds=values["leadership.lease_seconds"],
    )
    _check_mode_env(settings)
    settings.check_jobs()
    return settings


def _check_mode_env(settings: Settings) -> None:
    mode = settings.pipeline.get("trading_mode")
    if mode == "paper" and settings.kis_env is not Env.PAPER:
        raise SettingsError(
            "pipeline.trading_mode = 'paper' needs kis.env = 'paper' (KIS_ENV=paper)"
        )
    if mode == "live" and settings.kis_env is not Env.REAL:
        raise SettingsError("pipeline.trading_mode = 'live' needs kis.env = 'real'")


# --- credentials --------------------------------------------------------------------------------


def _read_credentials_file(path: pathlib.Path) -> dict[str, str]:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SettingsError(f"credentials file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise SettingsError(f"cannot read credentials file {str(path)!r}: {exc}") from None
    if os.name == "posix" and st.st_mode & 0o077:
        raise SettingsError(
            f"refusing credentials file {str(path)!r}: mode {stat.S_IMODE(st.st_mode):04o} lets "
            f"group or others read it; run: chmod 600 {path}"
        )
    values: dict[str, str] = {}
    try:
        text_lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SettingsError(
            f"credentials file {str(path)!r} is not UTF-8 KEY=VALUE text (a binary file?)"
        ) from None
    except OSError as exc:
        raise SettingsError(f"cannot read credentials file {str(path)!r}: {exc}") from None
    for number, line in enumerate(text_lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or key not in CREDENTIALS_FILE_VARS:
            raise SettingsError(
                f"credentials file {str(path)!r} line {number}: expected one of "
                f"{', '.join(CREDENTIALS_FILE_VARS)} as KEY=VALUE"
            )
        values[key] = value.strip().strip("'\"")
    return values


def load_credentials(
    settings: Settings, environ: Mapping[str, str] | None = None, *, required: bool = True
) -> Credentials | None:
    """Credentials from the environment, completed from the credentials file.

    Raises :class:`SettingsError` for a refused credentials file, and (when *required*) names
    every missing variable; returns ``None`` when not *required* and incomplete.
    """
    environ = os.environ if environ is None else environ
    found = {k: environ[k] for k in CREDENTIAL_VARS if environ.get(k)}
    source = "environment"
    if settings.credentials_file is not None and not (
        "KIS_APP_KEY" in found and "KIS_APP_SECRET" in found
    ):
        from_file = _read_credentials_file(settings.credentials_file)
        found = {**{k: v for k, v in from_file.items() if k in CREDENTIAL_VARS}, **found}
        source = f"credentials file {settings.credentials_file}"
    missing = [k for k in ("KIS_APP_KEY", "KIS_APP_SECRET") if not found.get(k)]
    if missing:
        if not required:
            return None
        raise SettingsError(
            f"missing credential(s) {', '.join(missing)}: set them in the environment or in a "
            "credentials file readable only by its owner (HANTU_CREDENTIALS_FILE, mode 0600)"
        )
    account = found.get("KIS_ACCOUNT")
    if account is not None:
        try:
            parse_account(account)
        except InvalidAccount as exc:  # the message shows the shape only, never the digits
            raise SettingsError(f"KIS_ACCOUNT from {source}: {exc}") from None
    data_key, data_secret = found.get("KIS_DATA_APP_KEY"), found.get("KIS_DATA_APP_SECRET")
    if (data_key is None) != (data_secret is None):
        raise SettingsError(
            f"KIS_DATA_APP_KEY and KIS_DATA_APP_SECRET go together (from {source}): set both "
            "for market data on a real key, or neither"
        )
    return Credentials(
        found["KIS_APP_KEY"], found["KIS_APP_SECRET"], account, source, data_key, data_secret
    )
