"""kisclient.testing: a faithful fake of the KIS REST API for tests.

Use it in-process (``httpx.Client(transport=fake.transport(), base_url=...)``) or as a real HTTP
server on a loopback port (:class:`FakeKISServer`, or ``python -m kisclient.testing serve``).

- Environments: the URL decides. In-process, the real and paper hosts from
  ``kisclient._config`` map to real and paper. :class:`FakeKISServer` serves real on one
  loopback port and paper on another (``server.base_url("paper")``), so a client that joins
  absolute paths to its host reaches paper; a ``/paper/`` path prefix on the real port is kept
  as an alias.
- Tokens: ``/oauth2/tokenP`` with 1-per-``token_interval_s`` issuance (EGW00133, HTTP 403),
  six-hour reuse, 24-hour lifetime; revokeP, Approval, hashkey.
- Gateway: header checks, per-app-key sliding one-second rate window (EGW00201), environment
  checks (EGW02004, EGW00213), as documented in ``_gateway``.
- Data: quotes, daily prices, daily chart, multi-symbol quote, balance, cash orders, cancel,
  daily order/fill inquiry, deterministic from the seed; with ``moving_prices`` resting limit
  orders fill when the intraday path reaches them (``_resting``).
- Faults (:class:`Fault`) and statistics (``fake.stats``) for tests.
- The WebSocket (:class:`FakeWSServer`): approval keys, one session per app key (OPSP8996, a
  slot held after an unclean end), 41 registrations, PINGPONG, bundled trade and order-book
  frames, AES-encrypted fill notices from the fake's orders, and faults.
- Real time: :class:`FakeWSServer`, the KIS WebSocket (approval keys from ``/oauth2/Approval``,
  registrations and their limits, the one-session-per-app-key slot, PINGPONG, trade and order-book
  frames, AES-encrypted execution notices of the REST fake's orders, and faults).

Every answer carries an HTTP ``Date`` header on the fake's clock, as the real gateway's do (the
client measures KIS's clock from it); :class:`OffsetClock` runs the fake ahead of or behind the
client's clock.

Everything runs on the injected clock, so a :class:`kisclient._clock.FakeClock` makes it exact.
"""

from ._fake import FakeKIS
from ._faults import Fault, FaultKind
from ._offset_clock import OffsetClock
from ._server import FakeKISServer
from ._state import ApprovalKeyRecord, FakeApp, FakeStats, Order, OrderEvent
from ._transport import AsyncFakeTransport, FakeTransport
from ._universe import Listing
from ._ws import FakeWSServer, WSStats
from ._ws_records import decrypt_notice, encrypt_notice

__all__ = [
    "ApprovalKeyRecord",
    "AsyncFakeTransport",
    "FakeApp",
    "FakeKIS",
    "FakeKISServer",
    "FakeStats",
    "FakeTransport",
    "FakeWSServer",
    "Fault",
    "FaultKind",
    "Listing",
    "OffsetClock",
    "Order",
    "OrderEvent",
    "WSStats",
    "decrypt_notice",
    "encrypt_notice",
]
