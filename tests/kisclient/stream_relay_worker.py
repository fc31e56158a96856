"""A worker process for the stream relay tests: the owner of a relayed stream.

Usage: ``python stream_relay_worker.py CODE``: opens ``kis.stream(relay=True)`` (it must win the
lease), subscribes trades of CODE, prints ``{"owner": true}`` and reads events until killed.
Credentials, URLs, KIS_STATE_DIR and KIS_SHARED_STATE come from the environment; RELAY_TIMINGS
(JSON) shortens the Redis lease timings as the tests' own participants do.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from kisclient import KISClient
from kisclient._stream_relay import RelayStream


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    kis = KISClient.from_env()
    shared: Any = kis._shared
    timings = json.loads(os.environ.get("RELAY_TIMINGS", "{}"))
    if hasattr(shared, "_lease_timing"):
        shared._lease_timing.update(renew_s=timings["renew_s"], ttl_s=timings["ttl_s"])
        shared._slot_hold_s = timings["slot_hold_s"]
        shared.relay_heartbeat_s = timings["heartbeat_s"]
    with kis, kis.stream(relay=True, subscribe_rate=1000.0) as stream:
        session = stream._session
        assert isinstance(session, RelayStream)
        stream.subscribe_trades([sys.argv[1]])
        print(json.dumps({"owner": session.is_owner}), flush=True)
        for _event in stream:
            pass


if __name__ == "__main__":
    main()
