"""Log line formats of the runner (``run --log-format`` and ``simulate --log-format``).

``text`` (the default) is one readable line per record: KST timestamp, level, logger, message.
The recovery plan and every scheduler decision are logged as :meth:`Action.describe` lines, the
same aligned rows ``recover --dry-run`` prints, never as dict reprs.

``json`` is one JSON object per line for machines (journald → Loki, jq, ...), with the keys
``ts`` (KST, ISO-8601 with milliseconds), ``level``, ``logger`` and ``message``; a record about
a recovery decision also has ``action`` (:meth:`Action.to_dict`), a record with extra
structured data passed as ``extra={"event": {...}}`` has ``event``, a long batch's progress
(``extra={"progress": {"label", "done", "total"}}``) has ``progress``, and one with an
exception has ``exc`` (the formatted traceback). Every line is independent and valid JSON;
messages never hold secrets (kisclient's own rule), so neither do these lines.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from ._constants import KST
from ._recovery import Action

__all__ = ["LOG_FORMATS", "JsonFormatter", "TextFormatter", "log_formatter"]

#: The values of ``--log-format``.
LOG_FORMATS = ("text", "json")


def _kst(record: logging.LogRecord) -> str:
    return dt.datetime.fromtimestamp(record.created, KST).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """``2026-06-04T09:00:00.000+09:00 INFO hantu_sched: plan: run  trading ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _kst(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _kst(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        action = getattr(record, "action", None)
        if isinstance(action, Action):
            line["action"] = action.to_dict()
        for extra in ("event", "progress"):
            value = getattr(record, extra, None)
            if isinstance(value, dict):
                line[extra] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_formatter(name: str) -> logging.Formatter:
    """The formatter for ``--log-format`` *name* (one of :data:`LOG_FORMATS`)."""
    if name == "json":
        return JsonFormatter()
    if name == "text":
        return TextFormatter()
    raise ValueError(f"unknown log format {name!r} (expected one of {', '.join(LOG_FORMATS)})")
