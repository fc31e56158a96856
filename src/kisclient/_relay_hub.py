"""The stream relay's bookkeeping, without I/O: who wants which registration, and who gets a frame.

The owner of the app key's WebSocket session serves other participants (processes, or other
streams of this process) through a channel (:mod:`kisclient._relay_channels`). A
:class:`RelayHub` keeps each participant's registrations; the session registers their
**union** once, counted against KIS's 41 (:data:`~kisclient._stream_session.MAX_REGISTRATIONS`),
and each data frame goes to the participants whose registrations it matches.

Messages are small JSON objects (one per line on a socket, one per message on Redis):

=========  ===================================================  =============================
``op``     fields                                               direction
=========  ===================================================  =============================
hello      ``client``, ``pairs`` (all of the client's)          client → owner (at connect;
                                                                periodically on Redis)
sub/unsub  ``client``, ``id``, ``pairs``                        client → owner
bye        ``client``                                           client → owner
ok / err   ``id``; ``err`` also ``message``                     owner → client
frame      ``text``: a plain (flag 0) data frame                owner → client
owner      ``owner``: the owner's id                            owner → all (Redis heartbeat)
=========  ===================================================  =============================
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

from ._errors import SubscriptionLimitExceeded
from ._stream_protocol import TR_FILL_PAPER, TR_FILL_REAL
from ._stream_session import MAX_REGISTRATIONS, Pair

__all__ = ["RelayHub", "decode_message", "encode_message", "frame_route", "pairs_of"]

#: Fill notices are routed by tr_id alone: their records carry no HTS id to match.
_FILL_TRS: Final = frozenset({TR_FILL_REAL, TR_FILL_PAPER})


def encode_message(message: dict[str, Any]) -> str:
    """One message as compact JSON (no newline inside: frames never hold one)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def decode_message(text: str | bytes) -> dict[str, Any] | None:
    """The message in *text*, or ``None`` if it is not a JSON object with a string ``op``."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        return None
    return message


def pairs_of(message: dict[str, Any]) -> list[Pair]:
    """The ``pairs`` of *message* (malformed entries skipped)."""
    out: list[Pair] = []
    for item in message.get("pairs") or ():
        if (
            isinstance(item, list | tuple)
            and len(item) == 2
            and all(isinstance(part, str) for part in item)
        ):
            out.append((item[0], item[1]))
    return out


def frame_route(text: str) -> Pair | None:
    """``(tr_id, tr_key)`` of a plain data frame (the key is its first record's first field),
    or ``None`` if *text* is not one."""
    parts = text.split("|", 3)
    if len(parts) != 4 or parts[0] != "0":
        return None
    return parts[1], parts[3].split("^", 1)[0]


class RelayHub:
    """Each participant's registrations and their union (see the module docstring).

    :meth:`add` checks the limit on the union before changing anything and returns the pairs
    the session must newly register; :meth:`remove` / :meth:`drop` return the pairs nobody
    wants any more (to unregister). :meth:`targets` names the participants of a frame.
    """

    def __init__(self, limit: int = MAX_REGISTRATIONS) -> None:
        self.limit = limit
        self._wants: dict[str, dict[Pair, None]] = {}

    def __repr__(self) -> str:
        return f"RelayHub({len(self._wants)} participants, {len(self.union)} registrations)"

    @property
    def union(self) -> list[Pair]:
        """Every wanted pair once, in first-wanted order."""
        out: dict[Pair, None] = {}
        for pairs in self._wants.values():
            out.update(pairs)
        return list(out)

    @property
    def participants(self) -> list[str]:
        return list(self._wants)

    def wants(self, participant: str) -> list[Pair]:
        return list(self._wants.get(participant, ()))

    def add(self, participant: str, pairs: Iterable[Pair]) -> list[Pair]:
        """Add *pairs* to *participant*'s; the pairs new to the union. Raises
        :class:`SubscriptionLimitExceeded`, changing nothing, if the union would exceed the
        limit."""
        union = set(self.union)
        fresh = [p for p in dict.fromkeys(pairs) if p not in union]
        if len(union) + len(fresh) > self.limit:
            raise SubscriptionLimitExceeded(
                f"subscribing {len(fresh)} more would make {len(union) + len(fresh)} "
                f"registrations on the app key's shared session; KIS allows {self.limit}"
            )
        self._wants.setdefault(participant, {}).update(dict.fromkeys(pairs))
        return fresh

    def remove(self, participant: str, pairs: Iterable[Pair]) -> list[Pair]:
        """Remove *pairs* from *participant*'s; those nobody wants any more."""
        mine = self._wants.get(participant)
        if mine is None:
            return []
        dropped = [p for p in dict.fromkeys(pairs) if p in mine]
        for pair in dropped:
            del mine[pair]
        left = set(self.union)
        return [p for p in dropped if p not in left]

    def drop(self, participant: str) -> list[Pair]:
        """Forget *participant* (it left or died); the pairs nobody wants any more."""
        gone = self.remove(participant, self.wants(participant))
        self._wants.pop(participant, None)
        return gone

    def replace(self, participant: str, pairs: Iterable[Pair]) -> tuple[list[Pair], list[Pair]]:
        """Make *pairs* all of *participant*'s (a ``hello``): ``(new to the union, no longer
        wanted)``. Pairs beyond the limit are left out (the participant was told at ``sub``)."""
        wanted = list(dict.fromkeys(pairs))
        gone = self.remove(participant, [p for p in self.wants(participant) if p not in wanted])
        fresh: list[Pair] = []
        for pair in wanted:
            try:
                fresh += self.add(participant, [pair])
            except SubscriptionLimitExceeded:
                continue
        return fresh, gone

    def targets(self, route: Pair) -> list[str]:
        """The participants that want a frame of *route* (``(tr_id, first field)``)."""
        tr_id = route[0]
        if tr_id in _FILL_TRS:
            return [who for who, pairs in self._wants.items() if any(p[0] == tr_id for p in pairs)]
        return [who for who, pairs in self._wants.items() if route in pairs]
