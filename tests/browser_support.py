"""A real headless Chromium driven over the DevTools protocol (a small script, no framework).

:class:`HeadlessChromium` starts Debian's ``/usr/bin/chromium`` on 127.0.0.1 with a fresh
profile directory, reads the DevTools address it prints, and talks to it with ``websockets``:
open a page, wait for its load event, evaluate expressions, collect console errors and
uncaught exceptions, capture a screenshot. The test session installs Chromium (noxfile.py); a
missing browser is an error, never a skip.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import pathlib
import re
import shutil
import subprocess
import threading
from typing import Any

from websockets.sync.client import ClientConnection, connect

__all__ = ["CHROMIUM", "HeadlessChromium", "chromium_path"]

CHROMIUM = "/usr/bin/chromium"
#: The flags this machine needs (no sandbox as root, no GPU, nothing fetched in the background).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
#: Longest wait for the browser to start or answer (a generous ceiling, not a timing check).
TIMEOUT_S = 60.0
_LISTENING = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:\d+/\S+)")


def chromium_path() -> str:
    """The Chromium binary, or :class:`RuntimeError` saying how the test session installs it."""
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if found is None:
        raise RuntimeError(
            f"{CHROMIUM} is missing: `nox -s tests` installs Debian's chromium package when it "
            "runs as root with apt-get (else install it: apt-get install -y chromium)"
        )
    return found


class HeadlessChromium:
    """One headless Chromium process with one page (see the module docstring). Use as a
    context manager; ``profile`` is a fresh directory the caller owns (e.g. under tmp_path)."""

    def __init__(self, profile: pathlib.Path, *, width: int = 1100, height: int = 1400) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []
        self._session: str | None = None
        self._ws: ClientConnection | None = None
        self._exit = contextlib.ExitStack()
        try:
            self._ws = self._exit.enter_context(
                connect(self._devtools_url(), max_size=None, open_timeout=TIMEOUT_S)
            )
            target = self.call("Target.createTarget", {"url": "about:blank"}, browser=True)
            attached = self.call(
                "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True},
                browser=True,
            )
            self._session = str(attached["sessionId"])
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def _devtools_url(self) -> str:
        """Read the browser's stderr until it prints its DevTools address (a reader thread, so
        a browser that never prints it fails after TIMEOUT_S instead of hanging)."""
        found: list[str] = []
        lines: list[str] = []
        ready = threading.Event()
        stderr = self._proc.stderr
        assert stderr is not None

        def read() -> None:
            for line in stderr:
                lines.append(line.rstrip())
                match = _LISTENING.search(line)
                if match and not found:
                    found.append(match.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(TIMEOUT_S)
        if not found:
            raise RuntimeError("chromium did not start its DevTools endpoint:\n" + "\n".join(lines))
        return found[0]

    # --- protocol ---
    def _receive(self) -> dict[str, Any]:
        assert self._ws is not None
        message: dict[str, Any] = json.loads(self._ws.recv(timeout=TIMEOUT_S))
        return message

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False
    ) -> dict[str, Any]:
        """Send one command (to the page's session unless *browser*) and return its result;
        events that arrive meanwhile are kept for :meth:`wait_for` and :attr:`errors`."""
        assert self._ws is not None
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if not browser and self._session is not None:
            message["sessionId"] = self._session
        self._ws.send(json.dumps(message))
        while True:
            answer = self._receive()
            if answer.get("id") == ident:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            if "method" in answer:
                self._events.append(answer)

    def wait_for(self, event: str) -> dict[str, Any]:
        """The first kept or next arriving *event* (removed from the kept ones)."""
        for index, seen in enumerate(self._events):
            if seen["method"] == event:
                return self._events.pop(index)
        while True:
            answer = self._receive()
            if answer.get("method") == event:
                return answer
            if "method" in answer:
                self._events.append(answer)

    # --- page ---
    def open(self, url: str) -> None:
        """Navigate the page to *url* and wait for its load event."""
        self._events = [e for e in self._events if e["method"] != "Page.loadEventFired"]
        answer = self.call("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise RuntimeError(f"navigation to {url} failed: {answer['errorText']}")
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of *expression* evaluated in the page."""
        answer = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression!r} raised: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        self.call("Runtime.evaluate", {"expression": "0"})  # flush events already queued
        out = []
        for event in self._events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
            ):
                text = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                out.append(f"console.{params['type']}: {text}")
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                out.append(f"log: {params['entry'].get('text')} ({params['entry'].get('url')})")
        return out

    def screenshot(self, path: pathlib.Path) -> bytes:
        """A PNG of the whole page (beyond the viewport) written to *path*; returns it."""
        answer = self.call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        data = base64.b64decode(answer["data"])
        path.write_bytes(data)
        return data

    def close(self) -> None:
        """Close the browser (politely over the protocol, then the process if needed)."""
        if self._ws is not None:
            with contextlib.suppress(Exception):  # the browser may be gone already
                self._ws.send(json.dumps({"id": next(self._ids), "method": "Browser.close"}))
            self._exit.close()
            self._ws = None
        try:
            self._proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stderr is not None:
            self._proc.stderr.close()

    def __enter__(self) -> HeadlessChromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
