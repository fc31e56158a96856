"""The stream relay's channels: how relay messages (:mod:`kisclient._relay_hub`) travel.

- :class:`UnixChannel`: one host, no Redis. The stream owner listens on a Unix domain socket in
  the lease's scope directory (``stream-relay.sock``, mode 0600 like the directory); each
  participant holds one connection, one JSON message per line. A participant whose connection
  ends is gone; an owner whose socket ends is gone (the operating system closes it on death).
- :class:`RedisChannel`: across hosts, Redis pub/sub. Participants publish to the scope's
  ``relay:up`` channel; the owner publishes to ``relay:down:<participant>`` and, every
  ``heartbeat_s``, announces itself on ``relay:owner``. Participants re-send their ``hello``
  every ``heartbeat_s`` (and at once to an owner they have not heard before: a takeover);
  silence for ``3 × heartbeat_s`` means the other side is gone.

Both hand out the same two links: :class:`OwnerLink` (``send(participant, message)``) and
:class:`ClientLink` (``send(message)``, ``closed``: set when the owner is gone). Sending never
blocks; messages are fire-and-forget, as on the WebSocket itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import stat
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, Protocol

from ._relay_hub import decode_message, encode_message

__all__ = [
    "ClientLink",
    "OnGone",
    "OnMessage",
    "OwnerLink",
    "RedisChannel",
    "RelayChannel",
    "UnixChannel",
]

log = logging.getLogger("kisclient.stream")

#: The owner's handlers: a participant's message, and a participant that is gone.
OnMessage = Callable[[str, dict[str, Any]], Awaitable[None]]
OnGone = Callable[[str], Awaitable[None]]

SOCKET_NAME: Final = "stream-relay.sock"
_MAX_SOCKET_PATH: Final = 100  # sun_path is 108 bytes on Linux, 104 on macOS


class OwnerLink(Protocol):
    def send(self, participant: str, message: dict[str, Any]) -> None: ...
    async def aclose(self) -> None: ...


class ClientLink(Protocol):
    #: Set once the owner is gone (or the link was closed).
    closed: asyncio.Event

    def send(self, message: dict[str, Any]) -> None: ...
    async def aclose(self) -> None: ...


class RelayChannel(Protocol):
    """Where the owner of one scope serves, and where participants reach it."""

    async def serve(self, owner: str, on_message: OnMessage, on_gone: OnGone) -> OwnerLink:
        """Start serving as *owner*; the owner holds the stream lease."""
        ...

    async def connect(
        self,
        participant: str,
        on_message: Callable[[dict[str, Any]], None],
        hello: Callable[[], dict[str, Any]],
    ) -> ClientLink:
        """Reach the owner, sending ``hello()``; :class:`ConnectionError` if no owner answers."""
        ...


# --- one host: a Unix domain socket -----------------------------------------------------------


class _UnixOwner:
    def __init__(self) -> None:
        self.writers: dict[str, asyncio.StreamWriter] = {}
        self.server: asyncio.Server | None = None

    def send(self, participant: str, message: dict[str, Any]) -> None:
        writer = self.writers.get(participant)
        if writer is not None and not writer.is_closing():
            writer.write(encode_message(message).encode() + b"\n")

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers.values()):
            writer.close()
        self.writers.clear()


class _UnixClient:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.closed = asyncio.Event()
        self.reader_task: asyncio.Task[None] | None = None

    def send(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_message(message).encode() + b"\n")

    async def aclose(self) -> None:
        self.writer.close()
        if self.reader_task is not None:
            self.reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader_task
        self.closed.set()


class UnixChannel:
    """The relay over ``stream-relay.sock`` in *directory* (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / SOCKET_NAME

    def __repr__(self) -> str:
        return f"UnixChannel({self.path})"

    def _address(self) -> str:
        """The socket's path; for a path too long for a Unix socket, a short one named by its
        hash in this user's private directory under the system's temporary directory."""
        address = str(self.path)
        if len(address.encode()) <= _MAX_SOCKET_PATH:
            return address
        private = Path(tempfile.gettempdir()) / f"kisclient-{os.getuid()}"
        private.mkdir(mode=0o700, exist_ok=True)
        info = private.lstat()
        if info.st_uid != os.getuid() or info.st_mode & 0o077 or not stat.S_ISDIR(info.st_mode):
            raise OSError(f"{private} is not a private directory of this user")
        digest = hashlib.sha256(address.encode()).hexdigest()[:24]
        return str(private / f"{digest}.sock")

    async def serve(self, owner: str, on_message: OnMessage, on_gone: OnGone) -> OwnerLink:
        link = _UnixOwner()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            who = ""
            try:
                while line := await reader.readline():
                    message = decode_message(line)
                    if message is None or not isinstance(message.get("client"), str):
                        continue
                    who = message["client"]
                    link.writers[who] = writer
                    await on_message(who, message)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                if who and link.writers.get(who) is writer:
                    del link.writers[who]
                    await on_gone(who)
                writer.close()

        address = self._address()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)  # a dead owner's socket: the lease says it is ours now
        link.server = await asyncio.start_unix_server(handle, address, limit=1 << 20)
        os.chmod(address, 0o600)
        return link

    async def connect(
        self,
        participant: str,
        on_message: Callable[[dict[str, Any]], None],
        hello: Callable[[], dict[str, Any]],
    ) -> ClientLink:
        try:
            reader, writer = await asyncio.open_unix_connection(self._address(), limit=1 << 24)
        except OSError as exc:
            raise ConnectionError(f"no stream owner on {self.path}: {exc}") from None
        link = _UnixClient(writer)

        async def read() -> None:
            try:
                while line := await reader.readline():
                    message = decode_message(line)
                    if message is not None:
                        on_message(message)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                link.closed.set()

        link.reader_task = asyncio.get_running_loop().create_task(read())
        link.send(hello())
        return link


# --- hosts: Redis pub/sub ------------------------------------------------------------------------


class _Publisher:
    """Publishes queued ``(channel, text)`` in order from one task; ``put`` never blocks."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def put(self, channel: str, message: dict[str, Any]) -> None:
        self._queue.put_nowait((channel, encode_message(message)))

    async def _run(self) -> None:
        while (item := await self._queue.get()) is not None:
            try:
                await self._client.publish(*item)
            except Exception as exc:  # Redis unreachable: the message is lost, like a frame
                log.warning("stream relay: cannot publish (%s)", type(exc).__name__)

    async def aclose(self) -> None:
        """Publish what is queued (a last ``bye``), then stop."""
        self._queue.put_nowait(None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), 1.0)
        self._task.cancel()


class _RedisLink:
    """The tasks and subscriptions of one side; both links are this with a different send."""

    def __init__(self, client: Any, pubsub: Any, publisher: _Publisher) -> None:
        self.client, self.pubsub, self.publisher = client, pubsub, publisher
        self.tasks: list[asyncio.Task[None]] = []
        self.closed = asyncio.Event()

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.publisher.aclose()
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        with contextlib.suppress(Exception):
            await self.client.aclose()
        self.closed.set()


class _RedisOwner(_RedisLink):
    prefix = ""

    def send(self, participant: str, message: dict[str, Any]) -> None:
        self.publisher.put(f"{self.prefix}down:{participant}", message)


class _RedisClient(_RedisLink):
    prefix = ""

    def send(self, message: dict[str, Any]) -> None:
        self.publisher.put(f"{self.prefix}up", message)


class RedisChannel:
    """The relay over Redis pub/sub on the channels ``<prefix>up``, ``<prefix>down:<id>`` and
    ``<prefix>owner`` (see the module docstring). *url* is the shared-state URL."""

    def __init__(self, url: str, prefix: str, *, heartbeat_s: float = 1.0) -> None:
        self._url = url  # may hold a password: never in a repr or a log line
        self.prefix = prefix
        self.heartbeat_s = heartbeat_s

    def __repr__(self) -> str:
        return f"RedisChannel({self.prefix!r})"

    async def _open(self, *channels: str) -> tuple[Any, Any]:
        import redis.asyncio  # noqa: PLC0415 - optional dependency, present with a Redis URL

        client = redis.asyncio.Redis.from_url(self._url, decode_responses=True)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*channels)
        except Exception as exc:
            await client.aclose()
            reason = type(exc).__name__
            raise ConnectionError(f"stream relay: Redis unreachable ({reason})") from None
        return client, pubsub

    async def serve(self, owner: str, on_message: OnMessage, on_gone: OnGone) -> OwnerLink:
        client, pubsub = await self._open(f"{self.prefix}up")
        link = _RedisOwner(client, pubsub, _Publisher(client))
        link.prefix = self.prefix
        seen: dict[str, float] = {}

        async def read() -> None:
            async for item in pubsub.listen():
                message = decode_message(item.get("data") or "")
                if message is None or not isinstance(message.get("client"), str):
                    continue
                who = message["client"]
                seen[who] = time.monotonic()
                if message["op"] == "bye":
                    seen.pop(who, None)
                await on_message(who, message)

        async def beat() -> None:
            while True:
                link.publisher.put(f"{self.prefix}owner", {"op": "owner", "owner": owner})
                await asyncio.sleep(self.heartbeat_s)
                limit = time.monotonic() - 3 * self.heartbeat_s
                for who in [w for w, at in seen.items() if at < limit]:
                    del seen[who]
                    await on_gone(who)

        loop = asyncio.get_running_loop()
        link.tasks = [loop.create_task(read()), loop.create_task(beat())]
        return link

    async def connect(
        self,
        participant: str,
        on_message: Callable[[dict[str, Any]], None],
        hello: Callable[[], dict[str, Any]],
    ) -> ClientLink:
        client, pubsub = await self._open(f"{self.prefix}down:{participant}", f"{self.prefix}owner")
        link = _RedisClient(client, pubsub, _Publisher(client))
        link.prefix = self.prefix
        owner_seen = asyncio.Event()
        owner_id = [""]  # the owner this link follows
        heard = [0.0]  # when it last announced itself (monotonic)

        async def read() -> None:
            try:
                async for item in pubsub.listen():
                    message = decode_message(item.get("data") or "")
                    if message is None:
                        continue
                    if message["op"] == "owner":
                        new = str(message.get("owner"))
                        changed, owner_id[0], heard[0] = new != owner_id[0], new, time.monotonic()
                        owner_seen.set()
                        if changed and len(link.tasks) > 1:  # a new owner: tell it at once
                            link.send(hello())
                    else:
                        on_message(message)
            finally:
                link.closed.set()

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.heartbeat_s)
                if time.monotonic() - heard[0] > 3 * self.heartbeat_s:
                    link.closed.set()  # the owner went silent
                    return
                link.send(hello())

        loop = asyncio.get_running_loop()
        link.tasks = [loop.create_task(read())]
        try:
            async with asyncio.timeout(3 * self.heartbeat_s):
                await owner_seen.wait()
        except TimeoutError:
            await link.aclose()
            raise ConnectionError("no stream owner announces itself on Redis") from None
        link.tasks.append(loop.create_task(beat()))
        link.send(hello())
        return link
