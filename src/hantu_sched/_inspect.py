"""Read-only views for the runner: ``status``, ``recover --dry-run`` and ``doctor``.

None of these takes the data directory's lock or writes the journal, so they are safe while the
daemon runs: the journal is opened read-only, and a journal that cannot be read (corrupt, or in
an unreadable directory) is reported in one line while the rest (session, batch files, token) is
still shown; nothing is ever moved or repaired by these views. Whether the scheduler runs is read
from the pid file (:func:`~hantu_sched._lock.lock_holder`): a recorded pid whose process is gone
is shown as "not running (stale record of pid N)", and journal rows it left ``running`` are
marked stale. The token expiry is read from kisclient's token store without credentials when the
store is unambiguous (one token file for the environment); with ``KIS_APP_KEY`` set the exact
store is used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import os
import pathlib
import socket
import stat
import time
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from kisclient import (
    AuthError,
    BadRequest,
    BusinessRejection,
    ConfigurationError,
    Env,
    InvalidStockCode,
    KISError,
    RetryPolicy,
    TokenIssueThrottled,
    TokenStatus,
    WrongEnvironment,
    normalize_code,
    token_status,
)

from ._batch import BatchStore, batch_store_for
from ._calendar import EMBEDDED_YEARS, CalendarNotCoveredError, KRXCalendar
from ._constants import KST
from ._day import build_day_plan
from ._journal import Attempt, JobKey, JobRecord, JobState
from ._lock import lock_holder
from ._recovery import Action, RecoveryManager, gather_state
from ._settings import Credentials, Settings, SettingsError, load_credentials
from ._storage import DEFAULT_DB_NAME, MemoryStorage, SQLiteStorage, Storage, StorageError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Check",
    "doctor_checks",
    "format_status",
    "recovery_plan",
    "status_lines",
    "status_report",
    "status_rows",
    "token_info",
]

_RECENT_DAYS = 7


def token_info(settings: Settings, now: dt.datetime, app_key: str | None = None) -> TokenStatus:
    """The stored token's state for the configured environment (kisclient's read-only
    :func:`kisclient.token_status`; never creates anything)."""
    return token_status(settings.state_dir, settings.kis_env, app_key, now=now)


def _open_configured(settings: Settings) -> tuple[Storage, str | None]:
    """:func:`_open_storage` of the configured storage: the PostgreSQL deployment (read-only)
    when ``storage`` names one, else the data directory's journal."""
    if settings.storage is None:
        return _open_storage(settings.data_dir)
    try:
        from ._pg_storage import PostgresStorage  # noqa: PLC0415 - psycopg only when used

        store = PostgresStorage(settings.storage, deployment=settings.deployment, read_only=True)
    except (StorageError, ImportError) as exc:
        return MemoryStorage(), str(exc)
    return store, None


def _journal_name(settings: Settings) -> str | None:
    """Where the journal is (a PostgreSQL deployment, or the SQLite file if it exists)."""
    if settings.storage is not None:
        from ._pg_storage import describe_url  # noqa: PLC0415 - psycopg only when used

        return f"postgresql {describe_url(settings.storage)} deployment {settings.deployment!r}"
    db = settings.data_dir / DEFAULT_DB_NAME
    return str(db) if db.exists() else None


def _leadership(storage: Storage, now: dt.datetime) -> dict[str, Any] | None:
    """Who leads a shared deployment, since when, and the last takeover (``None`` for a
    one-host storage)."""
    lease = getattr(storage, "lease", None)
    if not callable(lease):
        return None
    row = lease()
    return None if row is None else dict(row.to_dict(now))


def _open_storage(data_dir: pathlib.Path) -> tuple[Storage, str | None]:
    """The journal opened read-only, or an empty store and the one-line reason it could not be
    opened. Never creates, moves or changes a file."""
    db = data_dir / DEFAULT_DB_NAME
    if not db.exists():
        return MemoryStorage(), None  # nothing recorded yet; never create a journal from a read
    try:
        return SQLiteStorage(db, read_only=True), None
    except StorageError as exc:
        return MemoryStorage(), str(exc)


def _stale(record: dict[str, Any], running: bool) -> dict[str, Any]:
    if record.get("state") == JobState.RUNNING.value and not running:
        record["stale"] = True  # the process that wrote "running" is gone
    return record


def _hm(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(KST).isoformat(timespec="seconds")


def _with_history(entry: dict[str, Any], attempts: list[Attempt]) -> dict[str, Any]:
    """*entry* with ``history`` (every attempt, oldest first) and ``last_attempt``."""
    entry["history"] = [a.to_dict() for a in attempts]
    entry["last_attempt"] = entry["history"][-1] if attempts else None
    return entry


def status_report(
    settings: Settings, now: dt.datetime, day: dt.date | None = None
) -> dict[str, Any]:
    """The ``status --json`` document for trading day *day* (default: today, of *now*): each
    unit's journal row with its ``history`` (every attempt) and ``last_attempt`` (see
    ``docs/runbook.md``). Reads one day's rows and attempts plus the rows of the seven days up
    to *day* (recent errors): its cost does not grow with the journal's history."""
    calendar = settings.calendar()
    today = day or now.astimezone(KST).date()
    data_dir = settings.data_dir
    holder = lock_holder(data_dir)
    storage, problem = _open_configured(settings)
    session = calendar.session(today)
    plan = build_day_plan(settings.scheduler, calendar, today)
    jobs: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    batch_ids = settings.scheduler.batch_ids
    batches = BatchStore(data_dir).health_all(today, batch_ids)
    leadership: dict[str, Any] | None = None
    try:
        batches = batch_store_for(storage, data_dir).health_all(today, batch_ids)
        leadership = _leadership(storage, now)
        rows = {r.key: r for r in storage.list_jobs(today)}
        attempts: dict[JobKey, list[Attempt]] = {}
        for attempt in storage.list_attempts(today):
            attempts.setdefault(attempt.key, []).append(attempt)
        for item in plan.jobs if plan else ():
            record = rows.pop(item.key, None)
            entry = (
                record.to_dict()
                if record
                else {**JobRecord(item.key, JobState.PENDING).to_dict(), "state": "not-started"}
            )
            entry["planned_start"] = _hm(item.start)
            entry["deadline"] = _hm(item.deadline)
            jobs.append(_with_history(_stale(entry, holder.running), attempts.get(item.key, [])))
        jobs += [  # e.g. units of an older configuration
            _with_history(_stale(r.to_dict(), holder.running), attempts.get(r.key, []))
            for r in rows.values()
        ]
        for back in range(_RECENT_DAYS):
            earlier = today - dt.timedelta(days=back)
            errors += [
                r.to_dict()
                for r in storage.list_jobs(earlier)
                if r.state is JobState.FAILED or (r.error and r.state is not JobState.DONE)
            ]
    except StorageError as exc:
        problem = problem or str(exc)
    finally:
        storage.close()
    credentials = None
    try:
        credentials = load_credentials(settings, required=False)
    except SettingsError:
        credentials = None
    token = token_info(settings, now, credentials.app_key if credentials else None)
    return {
        "now": now.isoformat(timespec="seconds"),
        "data_dir": str(data_dir),
        "scheduler": {"pid": holder.pid, "running": holder.running, "text": holder.describe()},
        "journal": _journal_name(settings),
        "journal_problem": problem,
        "trading_date": today.isoformat(),
        "session": None
        if session is None
        else {"open": _hm(session.open), "close": _hm(session.close)},
        "closed_reason": calendar.closure_reason(today),
        "jobs": jobs,
        "batches": {b: h.value for b, h in batches.items()},
        "leadership": leadership,
        "token": token.to_dict(),
        "recent_errors": errors,
    }


def _label(job: Mapping[str, Any]) -> str:
    return str(job["job"]) + (f"[{job['batch']}]" if job.get("batch") else "")


def _clock_time(value: str | None) -> str:
    """``HH:MM:SS`` of an ISO time in the report (which is KST already), or ``--:--:--``."""
    if not value:
        return "--:--:--"
    return dt.datetime.fromisoformat(value).astimezone(KST).strftime("%H:%M:%S")


def _who(attempt: Mapping[str, Any]) -> str:
    if attempt.get("pid") is None:
        return "pid unknown (migrated)"
    return f"pid {attempt['pid']} on {attempt['host']}"


def _leadership_lines(lead: Mapping[str, Any] | None) -> list[str]:
    """``leader: ...`` and ``last takeover: ...`` for a shared deployment (else nothing)."""
    if lead is None:
        return []
    who = (
        f"{lead['leader']} (epoch {lead['epoch']}) since {lead['since']}, lease until "
        f"{lead['expires_at']}"
        if lead["held"]
        else f"nobody (lease lapsed; last {lead['leader'] or 'none'}, epoch {lead['epoch']})"
    )
    lines = [f"leader of deployment {lead['deployment']!r}: {who}"]
    takeover = lead.get("last_takeover")
    if takeover:
        lines.append(
            f"last takeover: {takeover['at']} by {takeover['to']} from {takeover['from']} "
            f"(its lease lapsed at {takeover['previous_expired_at']})"
        )
    return lines


def status_lines(report: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The lines of ``status`` before and after the jobs table (shared by the plain and the
    terminal form)."""
    head = [f"now {report['now']}  data dir {report['data_dir']}"]
    session = report["session"]
    if session is None:
        head.append(f"{report['trading_date']}: KRX closed ({report['closed_reason']})")
    else:
        head.append(
            f"{report['trading_date']}: session {session['open'][11:16]}–{session['close'][11:16]}"
        )
    head.append(f"scheduler: {report['scheduler']['text']}")
    head += _leadership_lines(report.get("leadership"))
    if report["journal_problem"]:
        head.append(f"journal: UNREADABLE — {report['journal_problem']}")
    elif report["journal"] is None:
        head.append("journal: none yet (the scheduler has not run in this data directory)")
    tail = []
    if report["batches"]:
        health = ", ".join(f"{b}: {h}" for b, h in report["batches"].items())
        tail.append(f"batch files: {health}")
    token = report["token"]
    expiry = f" (expires {token['expires_at']})" if token["expires_at"] else ""
    detail = f" — {token['detail']}" if token["detail"] else ""
    tail.append(f"token: {token['state']}{expiry}{detail}")
    errors = report["recent_errors"]
    tail.append(f"recent errors: {len(errors) or 'none'}")
    for error in errors[-5:]:
        tail.append(f"  {error['trading_date']} {_label(error)}: {error['error']}")
    return head, tail


#: The jobs table's columns (plain widths; the terminal table sizes itself).
STATUS_COLUMNS = (
    ("unit", 16),
    ("state", 15),
    ("att", 3),
    ("planned", 7),
    ("started", 8),
    ("finished", 8),
    ("last attempt", 0),
)


def status_rows(report: Mapping[str, Any], *, history: bool = False) -> list[tuple[str, ...]]:
    """The jobs table: one row per unit (its state and last attempt), and with *history* one
    row per attempt under it (``#n kind``, outcome, times, who ran it, the decision that
    started it, the error). The first cell of an attempt row starts with two spaces."""
    rows: list[tuple[str, ...]] = []
    for job in report["jobs"]:
        state = str(job["state"]) + (" (stale)" if job.get("stale") else "")
        last = job.get("last_attempt")
        summary = "" if last is None else f"{last['kind']} by {_who(last)}"
        if job.get("error"):
            summary += f"  error: {job['error']}"
        if job.get("stale"):
            summary += "  (the scheduler that ran it is gone)"
        rows.append(
            (
                _label(job),
                state,
                str(job["attempts"]),
                (job.get("planned_start") or "")[11:16],
                _clock_time(job.get("started_at")) if job.get("started_at") else "",
                _clock_time(job.get("finished_at")) if job.get("finished_at") else "",
                summary.strip(),
            )
        )
        for attempt in job.get("history", []) if history else ():
            text = _who(attempt)
            if attempt.get("decision"):
                text += f"; decision: {attempt['decision']}"
            if attempt.get("error"):
                text += f"; error: {attempt['error']}"
            rows.append(
                (
                    f"  #{attempt['number']} {attempt['kind']}",
                    str(attempt["outcome"]),
                    "",
                    "",
                    _clock_time(attempt["started_at"]),
                    _clock_time(attempt.get("finished_at")),
                    text,
                )
            )
    return rows


def format_status(report: Mapping[str, Any], *, history: bool = False) -> str:
    """Human-readable ``status`` as plain text (no colour: for pipes, files and logs)."""
    head, tail = status_lines(report)
    lines = list(head)
    if report["jobs"]:
        widths = [w for _name, w in STATUS_COLUMNS]
        header = tuple(name for name, _w in STATUS_COLUMNS)
        for row in (header, *status_rows(report, history=history)):
            cells = [c.ljust(w) if w else c for c, w in zip(row, widths, strict=True)]
            lines.append(("  " + " ".join(cells)).rstrip())
    return "\n".join([*lines, *tail])


def journal_problem(settings: Settings) -> str | None:
    """One line saying why the journal cannot be read, or ``None`` (none yet counts as fine)."""
    storage, problem = _open_configured(settings)
    try:
        if problem is None:
            storage.list_jobs(dt.date(2000, 1, 1))
    except StorageError as exc:
        problem = str(exc)
    finally:
        storage.close()
    return problem


def recovery_plan(settings: Settings, now: dt.datetime) -> list[Action]:
    """What recovery would do at *now* from the evidence in the data directory. An unreadable
    journal counts as empty (see :func:`journal_problem` for the reason): the plan then shows
    what the batch files alone would make recovery do."""
    calendar = settings.calendar()
    storage, _problem = _open_configured(settings)
    batches = batch_store_for(storage, settings.data_dir)
    try:
        state = gather_state(now, calendar, settings.scheduler, storage, batches)
    except StorageError:
        state = gather_state(now, calendar, settings.scheduler, MemoryStorage(), batches)
    finally:
        storage.close()
    return RecoveryManager(settings.scheduler, calendar).plan(now, state)


# --- doctor -------------------------------------------------------------------------------------


@attrs.frozen
class Check:
    """One doctor line: ``status`` is ``OK``, ``WARN`` or ``FAIL``."""

    name: str
    status: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<12} {self.detail}"


#: The code the credential probe quotes (any listed code would do).
PROBE_CODE = "005930"


def _check_credentials(
    settings: Settings,
    now: dt.datetime,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
) -> Check:
    """Credentials present, then proven against KIS (see :func:`prove_credentials`)."""
    try:
        creds = load_credentials(settings, required=True)
    except SettingsError as exc:
        return Check("credentials", "FAIL", str(exc))
    assert creds is not None
    needs_account = settings.pipeline.get("trading_mode", "dry-run") != "dry-run"
    status, proof = prove_credentials(settings, creds, now, timeout, transport)
    if creds.data_key and creds.data_secret:
        data_creds = Credentials(creds.data_key, creds.data_secret, None, creds.source)
        data_status, data_proof = prove_credentials(
            settings, data_creds, now, timeout, transport, data=True
        )
        status = _worst(status, data_status)
        proof = f"{proof}; data key (real, market data): {data_proof}"
    if creds.account is None:
        account_status = "FAIL" if needs_account else "WARN"
        found = (
            f"app key and secret from {creds.source}; no KIS_ACCOUNT (balance and orders need it)"
        )
        status = _worst(status, account_status)
    else:
        found = f"app key, secret and account from {creds.source}"
    return Check("credentials", status, f"{found}; {proof}")


def _worst(*statuses: str) -> str:
    order = ("OK", "WARN", "FAIL")
    return max(statuses, key=order.index)


def prove_credentials(
    settings: Settings,
    creds: Credentials,
    now: dt.datetime,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
    *,
    data: bool = False,
) -> tuple[str, str]:
    """Prove *creds* with kisclient: one quote of :data:`PROBE_CODE`, which needs a token.
    With *data*, *creds* are a data key: proven on the real environment at
    ``kis.data_base_url`` (default the real host).

    A valid token already stored for this app key is reused (KIS issues one token per minute
    per key, and a new one would replace the one a running scheduler holds); otherwise the
    client issues exactly one (``/oauth2/tokenP``) and stores it for the next run. One attempt,
    no retries, *timeout* seconds. KIS refusing the key or secret (EGW00103, EGW00105...) is
    ``FAIL`` with kisclient's message (which never holds a secret); no answer, or KIS
    refusing a new token within the minute, is ``WARN`` saying the credentials were not
    checked. Returns the status and one line."""
    env = Env.REAL if data else settings.kis_env
    base_url = settings.kis_data_base_url if data else settings.kis_base_url
    stored = token_status(settings.state_dir, env, creds.app_key, now=now)
    reused = (
        f"reused the stored token valid until {stored.expires_at.isoformat()}, no new token issued"
        if stored.state == "valid" and stored.expires_at is not None
        else "reused a stored token, no new token issued"
    )

    def how(issued: int) -> str:
        return "issued one token, stored for the next run" if issued else reused

    from kisclient import KISClient  # noqa: PLC0415 - status and recover never need it

    try:
        with KISClient(
            creds.app_key,
            creds.app_secret,
            env=env,
            base_url=base_url,
            state_dir=settings.state_dir,
            transport=transport,
            timeout=timeout,
            retry=RetryPolicy(max_attempts=1, deadline_s=max(timeout, 1.0)),
        ) as kis:
            try:
                kis.get_price(PROBE_CODE)
            except (BadRequest, BusinessRejection) as exc:  # the token was accepted first
                return "OK", (
                    f"KIS accepted them ({how(kis.token_issuances)}; the probe quote was "
                    f"refused: {exc})"
                )
            issued = kis.token_issuances
    except TokenIssueThrottled as exc:
        return "WARN", f"NOT checked: KIS refused a new token within its one-per-minute rule: {exc}"
    except (AuthError, WrongEnvironment) as exc:
        return "FAIL", f"KIS refused them: {exc}"
    except (KISError, ConfigurationError) as exc:
        return "WARN", f"NOT checked against KIS: {type(exc).__name__}: {exc}"
    return "OK", f"KIS accepted them ({how(issued)})"


def _check_state_dir(settings: Settings) -> Check:
    path = settings.state_dir
    if not path.exists():
        return Check("state_dir", "WARN", f"{path} does not exist yet (created 0700 on first use)")
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if os.name == "posix" and mode & 0o077:
        return Check("state_dir", "FAIL", f"{path} has mode {mode:04o}; run: chmod 700 {path}")
    if not os.access(path, os.W_OK | os.X_OK):
        return Check("state_dir", "FAIL", f"{path} is not writable by this user")
    return Check("state_dir", "OK", f"{path} (mode {mode:04o})")


def _check_token(settings: Settings, now: dt.datetime) -> Check:
    try:
        creds = load_credentials(settings, required=False)
    except SettingsError:
        creds = None
    info = token_info(settings, now, creds.app_key if creds else None)
    if info.state == "valid" and info.expires_at is not None:
        hours = (info.expires_at - now).total_seconds() / 3600
        return Check("token", "OK", f"valid until {info.expires_at.isoformat()} ({hours:.1f} h)")
    if info.state == "expired":
        return Check("token", "WARN", f"expired at {info.expires_at}; a new one is issued on use")
    if info.state == "none":
        return Check("token", "OK", f"none stored yet; issued on first use ({info.detail})")
    return Check("token", "WARN", f"unknown: {info.detail}")


def gateway_offset(
    url: str, timeout: float, transport: httpx.BaseTransport | None = None
) -> tuple[float | None, str]:
    """The gateway's clock minus ours, in seconds, from one cheap request's HTTP ``Date``
    header (compared with the midpoint of the request; ``Date`` has 1 s resolution), or
    ``None`` and why it could not be measured."""
    import httpx  # noqa: PLC0415 - only doctor talks HTTP; status must start quickly

    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            before = time.time()
            response = client.get(url + "/")
            after = time.time()
    except httpx.HTTPError as exc:
        return None, f"no answer from {url}: {type(exc).__name__}: {exc}"
    header = response.headers.get("date")
    if not header:
        return None, f"{url} answered without a Date header: clock offset not measured"
    try:
        server = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None, f"{url} sent an unparseable Date header {header[:40]!r}"
    if server.tzinfo is None:
        server = server.replace(tzinfo=dt.UTC)
    return server.timestamp() - (before + after) / 2, f"from {url}'s Date header"


def _check_clock(
    settings: Settings, timeout: float, transport: httpx.BaseTransport | None = None
) -> Check:
    """The system clock against the gateway's (order reconciliation compares times)."""
    kst = dt.datetime.now(KST)
    if kst.year < 2024:
        return Check("clock", "FAIL", f"system clock says {kst:%Y-%m-%d}: set the time (NTP)")
    offset, how = gateway_offset(settings.base_url, timeout, transport)
    if offset is None:
        return Check("clock", "WARN", f"now {kst:%Y-%m-%d %H:%M:%S} KST; {how}")
    size = abs(offset)
    side = "behind" if offset > 0 else "ahead of"
    text = f"system clock is {size:.1f} s {side} the gateway ({how})"
    if size > settings.clock_fail_seconds:
        limit = (
            f"over {settings.clock_fail_seconds:g} s; fix NTP (order reconciliation compares times)"
        )
        return Check("clock", "FAIL", f"{text}: {limit}")
    if size > settings.clock_warn_seconds:
        return Check("clock", "WARN", f"{text}: over {settings.clock_warn_seconds:g} s; check NTP")
    return Check("clock", "OK", f"now {kst:%Y-%m-%d %H:%M:%S} KST; {text}")


def _check_calendar(
    settings: Settings, now: dt.datetime, transport: httpx.BaseTransport | None = None
) -> Check:
    calendar: KRXCalendar = settings.calendar()
    year = now.astimezone(KST).year
    try:
        days = sum(1 for _ in calendar.trading_days(dt.date(year, 1, 1), dt.date(year, 12, 31)))
    except CalendarNotCoveredError as exc:
        return Check("calendar", "FAIL", str(exc))
    source = "embedded table" if year in EMBEDDED_YEARS else "holidays package"
    if now.month == 12 and year + 1 not in EMBEDDED_YEARS:
        try:
            calendar.is_trading_day(dt.date(year + 1, 1, 2))
        except CalendarNotCoveredError:
            return Check("calendar", "WARN", f"{year}: {days} trading days; {year + 1} not covered")
    status, against = _calendar_against_kis(settings, calendar, now, transport)
    return Check("calendar", status, f"{year}: {days} trading days ({source}); {against}")


def _calendar_against_kis(
    settings: Settings,
    calendar: KRXCalendar,
    now: dt.datetime,
    transport: httpx.BaseTransport | None,
) -> tuple[str, str]:
    """Cross-check the calendar with KIS's ``chk-holiday`` (real only: the account's key on
    ``real``, or the data key) when credentials are configured and a valid token is stored
    (the credentials check, which runs first, issues one; this never does): ``WARN`` naming
    the days the two disagree on, ``OK`` when they agree, ``OK`` saying it was not checked
    otherwise."""
    try:
        creds = load_credentials(settings, required=False)
    except SettingsError:
        creds = None
    if creds is None:
        return "OK", "not cross-checked with KIS (no credentials)"
    if creds.data_key and creds.data_secret:
        key, secret, base_url = creds.data_key, creds.data_secret, settings.kis_data_base_url
    elif settings.kis_env is Env.REAL:
        key, secret, base_url = creds.app_key, creds.app_secret, settings.kis_base_url
    else:
        return "OK", "not cross-checked with KIS (chk-holiday is real only: paper needs a data key)"
    if token_status(settings.state_dir, Env.REAL, key, now=now).state != "valid":
        return "OK", "not cross-checked with KIS (no valid token for the key; none is issued here)"
    from kisclient import KISClient  # noqa: PLC0415 - status and recover never need it

    try:
        with KISClient(
            key, secret, env=Env.REAL, base_url=base_url, state_dir=settings.state_dir,
            transport=transport, retry=RetryPolicy(max_attempts=1),
        ) as kis:  # fmt: skip
            answer = kis.get_holidays(now.astimezone(KST).date())
    except (KISError, ConfigurationError) as exc:
        return "OK", f"not cross-checked with KIS: {type(exc).__name__}: {exc}"
    differ = []
    for day in answer:
        with contextlib.suppress(CalendarNotCoveredError):
            if calendar.is_trading_day(day.date) != day.open_day:
                differ.append(f"{day.date} (KIS: {'open' if day.open_day else 'closed'})")
    if differ:
        return "WARN", (
            f"KIS's chk-holiday disagrees on {len(differ)} day(s): {', '.join(differ[:5])}; "
            "add the closures to calendar.extra_closures or report the embedded table"
        )
    return "OK", f"agrees with KIS's chk-holiday on the next {len(answer)} days"


def _check_base_url(settings: Settings, timeout: float) -> Check:
    url = settings.base_url
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if not host:
        return Check("base_url", "FAIL", f"{url} has no host")
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return Check("base_url", "FAIL", f"{url}: cannot connect to {host}:{port}: {exc}")
    took = (time.perf_counter() - start) * 1000
    return Check("base_url", "OK", f"{url} reachable ({host}:{port}, {took:.0f} ms)")


def _check_data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    if not path.exists():
        return Check("data_dir", "WARN", f"{path} does not exist yet (created on first run)")
    if not path.is_dir():
        return Check("data_dir", "FAIL", f"{path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        return Check("data_dir", "FAIL", f"{path} is not writable by this user")
    return Check("data_dir", "OK", f"{path} writable; scheduler {lock_holder(path).describe()}")


def _check_shared_journal(settings: Settings, now: dt.datetime) -> Check:
    """PostgreSQL storage: reachable, schema known, and who leads."""
    storage, problem = _open_configured(settings)
    try:
        lead = None if problem else _leadership(storage, now)
        if problem is None:
            storage.list_jobs(dt.date(2000, 1, 1))
    except StorageError as exc:
        problem = str(exc)
    finally:
        storage.close()
    if problem is not None:
        if "no hantu_sched schema yet" in problem:
            return Check("journal", "OK", f"{problem}; the first `run` creates it")
        return Check("journal", "FAIL", problem)
    where = _journal_name(settings)
    who = _leadership_lines(lead)[0] if lead else "nobody has led it yet"
    return Check("journal", "OK", f"{where} reachable; {who}")


def _check_journal(settings: Settings, now: dt.datetime | None = None) -> Check:
    if settings.storage is not None:
        return _check_shared_journal(settings, now or dt.datetime.now(KST))
    path = settings.data_dir / DEFAULT_DB_NAME
    if not path.exists():
        return Check("journal", "OK", f"none yet ({path} is created on the first run)")
    try:
        storage = SQLiteStorage(path, read_only=True)
    except StorageError as exc:
        return Check("journal", "FAIL", str(exc))
    try:
        problem = storage.integrity_problem()
    finally:
        storage.close()
    if problem is not None:
        return Check(
            "journal",
            "FAIL",
            f"{path} fails its integrity check ({problem}); `run` refuses it: move it aside "
            "with `hantu_sched run --set-aside-corrupt-journal`",
        )
    return Check("journal", "OK", f"{path} passes its integrity check")


def _bad_codes(codes: tuple[str, ...]) -> list[str]:
    """kisclient's messages for the codes :func:`kisclient.normalize_code` refuses."""
    bad = []
    for code in codes:
        try:
            normalize_code(code)
        except InvalidStockCode as exc:
            bad.append(str(exc))
    return bad


def doctor_checks(
    settings: Settings,
    now: dt.datetime,
    *,
    timeout: float = 3.0,
    transport: httpx.BaseTransport | None = None,
) -> list[Check]:
    """Every doctor check after the configuration loaded (see ``docs/runbook.md``)."""
    checks = []
    try:
        pipeline = settings.pipeline_config()
        settings.job_registry(pipeline)
        codes = pipeline.universe_codes()
    except (SettingsError, ValueError) as exc:
        checks.append(Check("jobs", "FAIL", str(exc)))
    else:
        replaced = ", ".join(sorted(settings.jobs)) or "none replaced"
        what = f"default pipeline ({replaced}), trading {pipeline.trading_mode}"
        if codes is None and "screening" not in settings.jobs:
            checks.append(
                Check("jobs", "WARN", f"{what}; no pipeline.universe: screening will fail")
            )
        elif codes is not None and (bad := _bad_codes(codes)):
            checks.append(
                Check(
                    "jobs",
                    "FAIL",
                    f"{what}; pipeline.universe: {len(bad)} of {len(codes)} codes are not KRX "
                    f"codes, e.g. {bad[0]}",
                )
            )
        else:
            count = "" if codes is None else f", universe {len(codes)} codes"
            checks.append(Check("jobs", "OK", what + count))
    checks += [
        _check_credentials(settings, now, timeout, transport),
        _check_data_dir(settings),
        _check_journal(settings, now),
        _check_state_dir(settings),
        _check_token(settings, now),
        _check_clock(settings, timeout, transport),
        _check_calendar(settings, now, transport),
        _check_base_url(settings, timeout),
    ]
    return checks


def dumps(value: Any) -> str:
    """JSON for the ``--json`` outputs."""
    return json.dumps(value, ensure_ascii=False, indent=2)
