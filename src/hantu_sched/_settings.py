"""Runner configuration: embedded defaults, then a TOML file, then environment variables.

Precedence (later wins): the defaults below → the TOML file (``--config`` or ``HANTU_CONFIG``;
no file is needed) → environment variables → command-line flags (``--data-dir``). Every setting
is listed in :data:`SETTINGS` and documented in ``docs/configuration.md`` (a test checks both
agree). Credentials are never read from the TOML file: only from the environment
(``KIS_APP_KEY``, ``KIS_APP_SECRET``, ``KIS_ACCOUNT``) or from a credentials file of
``KEY=VALUE`` lines whose mode gives nobody but the owner access (0600 or 0400).

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
from collections.abc import Mapping
from typing import Any

import attrs

from kisclient import InvalidAccount, parse_account
from kisclient._config import Env, env_settings, parse_env

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
from ._jobs import Job, JobRegistry

__all__ = [
    "CREDENTIAL_VARS",
    "SETTINGS",
    "Credentials",
    "SettingSpec",
    "Settings",
    "SettingsError",
    "load_credentials",
    "load_settings",
    "parse_at",
    "resolve_job",
]

#: Environment variables that may hold credentials (and the only keys a credentials file may
#: set).
CREDENTIAL_VARS = ("KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ACCOUNT")


class SettingsError(ValueError):
    """Bad configuration, a missing credential or an unresolvable job: one printable line."""


@attrs.frozen
class SettingSpec:
    """One setting: its TOML key (``table.key``), environment variable, default and meaning."""

    key: str
    env: str | None
    default: str
    help: str


#: Every runner setting (pipeline settings are the ``[pipeline]`` table, see
#: :func:`pipeline_env_var`; job replacements are the ``[jobs]`` table).
SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("data_dir", "HANTU_DATA_DIR", "./data", "journal, batch files, reports, lock"),
    SettingSpec("log_level", "HANTU_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    SettingSpec(
        "scheduler.batch_ids", "HANTU_BATCH_IDS", '["1", "2", "3", "4"]', "selection batch ids"
    ),
    SettingSpec("scheduler.batch_count", "HANTU_BATCH_COUNT", "(unset)", "shorthand: ids 1..N"),
    SettingSpec(
        "scheduler.batch_interval_minutes",
        "HANTU_BATCH_INTERVAL_MINUTES",
        "10",
        "minutes between batch starts",
    ),
    SettingSpec(
        "scheduler.incomplete_selection",
        "HANTU_INCOMPLETE_SELECTION",
        "complete-first",
        "complete-first or skip-trading",
    ),
    SettingSpec("scheduler.times.screening", None, '"06:00"', "screening start"),
    SettingSpec("scheduler.times.selection", None, '"07:00"', "first selection batch start"),
    SettingSpec("scheduler.times.trading", None, '"open"', "trading start"),
    SettingSpec("scheduler.times.market_close", None, '"close+30"', "market close job start"),
    SettingSpec("scheduler.times.performance", None, '"close+90"', "performance job start"),
    SettingSpec("calendar.extra_closures", None, "[]", "extra closed dates (YYYY-MM-DD)"),
    SettingSpec("kis.env", "KIS_ENV", "real", "KIS environment: real or paper"),
    SettingSpec("kis.base_url", "KIS_BASE_URL", "(the environment's host)", "API base URL"),
    SettingSpec(
        "kis.state_dir", "KIS_STATE_DIR", "(kisclient's cache dir)", "token store, rate state"
    ),
    SettingSpec(
        "kis.credentials_file", "HANTU_CREDENTIALS_FILE", "(unset)", "KEY=VALUE credentials file"
    ),
    SettingSpec(
        "doctor.clock_warn_seconds",
        "HANTU_CLOCK_WARN_SECONDS",
        "5",
        "doctor warns past this clock offset from the gateway",
    ),
    SettingSpec(
        "doctor.clock_fail_seconds",
        "HANTU_CLOCK_FAIL_SECONDS",
        "60",
        "doctor fails past this clock offset from the gateway",
    ),
)

#: At most this many selection batches (each is a journal row and a file every day).
MAX_BATCHES = 100
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
class Credentials:
    """KIS credentials and where they came from. Secrets never appear in the repr."""

    app_key: str = attrs.field(repr=False)
    app_secret: str = attrs.field(repr=False)
    account: str | None
    source: str


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

    @property
    def base_url(self) -> str:
        """The configured base URL, or the environment's official host."""
        return (self.kis_base_url or env_settings(self.kis_env).base_url).rstrip("/")

    @property
    def state_dir(self) -> pathlib.Path:
        """The kisclient state directory (token store, shared rate state)."""
        if self.kis_state_dir is not None:
            return self.kis_state_dir
        from kisclient._settings import default_state_dir  # noqa: PLC0415 - keeps import light

        return default_state_dir()

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
        for name, spec in self.jobs.items():
            run = resolve_job(name, spec["run"])
            reconcile = resolve_job(name, spec["reconcile"]) if "reconcile" in spec else None
            registry.register(name, run, reconcile=reconcile)
        return registry


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
        raise SettingsError(
            f"scheduler.times.{job} = {value!r}: use 'HH:MM', 'open', 'open+MIN' or 'close+MIN'"
        )
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


_KNOWN_TABLES = {
    "": {"data_dir", "log_level", "scheduler", "calendar", "pipeline", "jobs", "kis", "doctor"},
    "scheduler": {"batch_ids", "batch_count", "batch_interval_minutes", "incomplete_selection",
                  "times"},
    "calendar": {"extra_closures"},
    "kis": {"env", "base_url", "state_dir", "credentials_file"},
    "doctor": {"clock_warn_seconds", "clock_fail_seconds"},
}  # fmt: skip
_SECRET_KEYS = {"app_key", "app_secret", "account", "appkey", "appsecret"}


def _table(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise SettingsError(f"[{name}] must be a table")
    return value


def _check_keys(data: Mapping[str, Any], table: str) -> None:
    unknown = sorted(set(data) - _KNOWN_TABLES[table])
    if table == "kis" and set(data) & _SECRET_KEYS:
        raise SettingsError(
            "credentials are never read from the configuration file: remove them from [kis] and "
            "set KIS_APP_KEY/KIS_APP_SECRET/KIS_ACCOUNT in the environment or a credentials file"
        )
    if unknown:
        where = f"[{table}]" if table else "the top level"
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)} in {where}")


def _int(name: str, value: object, minimum: int) -> int:
    try:
        number = int(str(value)) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise SettingsError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


def _float(name: str, value: object, maximum: float = 1e6) -> float:
    """A positive, finite number no larger than *maximum* (``inf``, ``nan`` and ``1e308``
    are refused here, before any arithmetic can overflow)."""
    try:
        number = float(str(value)) if not isinstance(value, bool) else -1.0
    except ValueError:
        number = -1.0
    if not (math.isfinite(number) and 0 < number <= maximum):
        raise SettingsError(
            f"{name} must be a positive number no larger than {maximum:g}, got {value!r}"
        )
    return number


def _convert_env(field: attrs.Attribute[Any], raw: str) -> Any:
    """Convert an environment string to pipeline field *field*'s type."""
    kind = str(field.type)
    text = raw.strip()
    if field.name == "universe":
        return text or None
    if "None" in kind and text.lower() in ("", "none", "null"):
        return None
    if kind == "bool":
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{pipeline_env_var(field.name)} must be true or false, got {raw!r}")
    try:
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
    except ValueError:
        raise SettingsError(
            f"{pipeline_env_var(field.name)} must be a number, got {raw!r}"
        ) from None
    return text


def _pipeline_env(environ: Mapping[str, str]) -> dict[str, Any]:
    names = [k for k in environ if k.startswith(_PIPELINE_ENV_PREFIX)]
    if not names:
        return {}
    from .pipeline import PipelineConfig  # noqa: PLC0415

    fields = {f.name: f for f in attrs.fields(PipelineConfig)}
    values: dict[str, Any] = {}
    for name in names:
        field = fields.get(name[len(_PIPELINE_ENV_PREFIX) :].lower())
        if field is None:
            raise SettingsError(
                f"unknown pipeline environment variable {name}; known: "
                f"{', '.join(pipeline_env_var(f) for f in fields)}"
            )
        values[field.name] = _convert_env(field, environ[name])
    return values


def _batch_ids(scheduler: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[str, ...]:
    ids: Any = scheduler.get("batch_ids")
    count: Any = scheduler.get("batch_count")
    if environ.get("HANTU_BATCH_IDS"):
        ids = [part.strip() for part in environ["HANTU_BATCH_IDS"].split(",") if part.strip()]
    if environ.get("HANTU_BATCH_COUNT"):
        count = environ["HANTU_BATCH_COUNT"]
    if count is not None and ids is not None:
        raise SettingsError("set either scheduler.batch_ids or scheduler.batch_count, not both")
    if count is not None:
        number = _int("scheduler.batch_count", count, 1)
        if number > MAX_BATCHES:
            raise SettingsError(
                f"scheduler.batch_count must be at most {MAX_BATCHES}, got {number}"
            )
        return tuple(str(i) for i in range(1, number + 1))
    if ids is None:
        return SchedulerConfig().batch_ids
    if not isinstance(ids, list) or not ids:
        raise SettingsError(f"scheduler.batch_ids must be a non-empty list, got {ids!r}")
    try:
        result = tuple(validate_batch_id(str(b)) for b in ids)
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


def _scheduler(scheduler: Mapping[str, Any], environ: Mapping[str, str]) -> SchedulerConfig:
    _check_keys(scheduler, "scheduler")
    interval = environ.get("HANTU_BATCH_INTERVAL_MINUTES") or scheduler.get(
        "batch_interval_minutes", 10
    )
    mode = environ.get("HANTU_INCOMPLETE_SELECTION") or scheduler.get(
        "incomplete_selection", IncompleteSelection.COMPLETE_FIRST.value
    )
    try:
        incomplete = IncompleteSelection(str(mode))
    except ValueError:
        choices = ", ".join(m.value for m in IncompleteSelection)
        raise SettingsError(
            f"scheduler.incomplete_selection must be one of {choices}, got {mode!r}"
        ) from None
    times = scheduler.get("times", {})
    if not isinstance(times, dict):
        raise SettingsError("[scheduler.times] must be a table")
    policies = {}
    for job, value in times.items():
        if job not in JOB_ORDER:
            raise SettingsError(
                f"unknown job {job!r} in [scheduler.times]; known jobs: {', '.join(JOB_ORDER)}"
            )
        policies[job] = attrs.evolve(DEFAULT_POLICIES[job], start=parse_at(job, value))
    config = SchedulerConfig(
        batch_ids=_batch_ids(scheduler, environ),
        batch_interval=dt.timedelta(
            minutes=_float("scheduler.batch_interval_minutes", interval, maximum=24 * 60)
        ),
        incomplete_selection=incomplete,
        policies=policies,
    )
    _check_batches_fit(config)
    return config


def _clock_thresholds(table: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[float, float]:
    _check_keys(table, "doctor")
    warn = _float(
        "doctor.clock_warn_seconds",
        environ.get("HANTU_CLOCK_WARN_SECONDS") or table.get("clock_warn_seconds", 5),
    )
    fail = _float(
        "doctor.clock_fail_seconds",
        environ.get("HANTU_CLOCK_FAIL_SECONDS") or table.get("clock_fail_seconds", 60),
    )
    if fail < warn:
        raise SettingsError(
            f"doctor.clock_fail_seconds ({fail:g}) must not be below "
            f"doctor.clock_warn_seconds ({warn:g})"
        )
    return warn, fail


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


def _dates(value: object) -> tuple[dt.date, ...]:
    if not isinstance(value, list):
        raise SettingsError("calendar.extra_closures must be a list of dates")
    days = []
    for item in value:
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
            days.append(item)
            continue
        try:
            days.append(dt.date.fromisoformat(str(item)))
        except ValueError:
            raise SettingsError(
                f"calendar.extra_closures: {item!r} is not a date (YYYY-MM-DD)"
            ) from None
    return tuple(days)


def _path(value: object) -> pathlib.Path | None:
    return None if value in (None, "") else pathlib.Path(str(value)).expanduser()


def load_settings(
    config: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
) -> Settings:
    """Resolve the settings (see the module docstring for the precedence)."""
    environ = os.environ if environ is None else environ
    config_path = _path(config if config is not None else environ.get("HANTU_CONFIG"))
    data = _read_toml(config_path) if config_path is not None else {}
    _check_keys(data, "")
    kis = _table(data, "kis")
    _check_keys(kis, "kis")
    calendar = _table(data, "calendar")
    _check_keys(calendar, "calendar")
    pipeline = dict(_table(data, "pipeline"))
    pipeline.update(_pipeline_env(environ))
    level = str(environ.get("HANTU_LOG_LEVEL") or data.get("log_level", "INFO")).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"log_level must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    env_name = environ.get("KIS_ENV") or kis.get("env", "real")
    try:
        env = parse_env(str(env_name))
    except ValueError as exc:
        raise SettingsError(f"kis.env: {exc}") from None
    base_url = environ.get("KIS_BASE_URL") or kis.get("base_url")
    if base_url is not None and not str(base_url).startswith(("http://", "https://")):
        raise SettingsError(f"kis.base_url must start with http:// or https://, got {base_url!r}")
    chosen_dir = data_dir or environ.get("HANTU_DATA_DIR") or data.get("data_dir", "./data")
    state_dir = _path(environ.get("KIS_STATE_DIR") or kis.get("state_dir"))
    if state_dir is not None and state_dir.exists() and not state_dir.is_dir():
        raise SettingsError(f"kis.state_dir (KIS_STATE_DIR) {state_dir} is not a directory")
    warn, fail = _clock_thresholds(_table(data, "doctor"), environ)
    settings = Settings(
        data_dir=pathlib.Path(str(chosen_dir)).expanduser(),
        log_level=level,
        scheduler=_scheduler(_table(data, "scheduler"), environ),
        extra_closures=_dates(calendar.get("extra_closures", [])),
        pipeline=pipeline,
        jobs=_jobs(_table(data, "jobs")),
        kis_env=env,
        kis_base_url=None if base_url is None else str(base_url),
        kis_state_dir=state_dir,
        credentials_file=_path(
            environ.get("HANTU_CREDENTIALS_FILE") or kis.get("credentials_file")
        ),
        config_path=config_path,
        clock_warn_seconds=warn,
        clock_fail_seconds=fail,
    )
    _check_mode_env(settings)
    settings.job_registry(settings.pipeline_config())  # every problem surfaces at load time
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
        if not sep or key not in CREDENTIAL_VARS:
            raise SettingsError(
                f"credentials file {str(path)!r} line {number}: expected one of "
                f"{', '.join(CREDENTIAL_VARS)} as KEY=VALUE"
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
        found = {**from_file, **found}
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
    return Credentials(found["KIS_APP_KEY"], found["KIS_APP_SECRET"], account, source)
