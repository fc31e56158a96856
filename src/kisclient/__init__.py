"""kisclient: a client for the Korea Investment & Securities (KIS) Open API.

    from kisclient import KISClient
    with KISClient.from_env() as kis:
        print(kis.get_price("005930").price)

The public API is exactly what ``__all__`` lists; modules whose names start with ``_`` are
private. ``kisclient.testing`` holds the fake KIS server.
"""

from ._async_client import AsyncKISClient
from ._base import ProgressCallback
from ._client import KISClient
from ._clock import Clock, FakeClock, SystemClock
from ._codes import CodeInfo, Kind
from ._codes import lookup as lookup_code
from ._config import KST, Env, Side
from ._core import RetryPolicy
from ._errors import (
    AuthError,
    BadRequest,
    BusinessRejection,
    ConfigurationError,
    EndpointUnavailable,
    GatewayError,
    InvalidAccount,
    InvalidISIN,
    InvalidStockCode,
    KISConnectionError,
    KISError,
    KISRejected,
    MarketClosed,
    OrderNotRevisable,
    OrderOutcomeUnknown,
    OutcomeUnknown,
    RateLimited,
    RequestNotSent,
    RetryBudgetExhausted,
    ServiceUnavailable,
    StreamSlotBusy,
    SubscriptionLimitExceeded,
    TokenError,
    TokenIssueThrottled,
    ValidationError,
    WrongEnvironment,
)
from ._market_models import (
    ExpectedTrade,
    MarketDay,
    MinuteBar,
    OrderBookSnapshot,
    PeriodProfit,
    PeriodProfitDay,
    PeriodProfitSummary,
    RankedStock,
    StockInfo,
)
from ._models import (
    Balance,
    BalanceSummary,
    DailyBar,
    DailyOrder,
    Holding,
    OrderResult,
    PriceBatch,
    Quote,
    ReconcileOutcome,
    Reconciliation,
)
from ._operations import Response
from ._order_models import Buyable, OrderCondition, PendingOrder, Sellable
from ._ratelimit import CONSERVATIVE, Window
from ._settings import default_base_url, default_state_dir, parse_env
from ._stream import AsyncStream, Stream
from ._stream_events import (
    Fill,
    Level,
    OrderBook,
    StreamConnected,
    StreamEvent,
    StreamOverflow,
    StreamReconnecting,
    StreamResubscribed,
    SubscriptionRefused,
    Trade,
)
from ._token_status import TokenStatus, token_status
from ._validation import Account, StockCode, normalize_code, parse_account, validate_isin
from ._version import __version__

__all__ = [
    "CONSERVATIVE",
    "KST",
    "Account",
    "AsyncKISClient",
    "AsyncStream",
    "AuthError",
    "BadRequest",
    "Balance",
    "BalanceSummary",
    "BusinessRejection",
    "Buyable",
    "Clock",
    "CodeInfo",
    "ConfigurationError",
    "DailyBar",
    "DailyOrder",
    "EndpointUnavailable",
    "Env",
    "ExpectedTrade",
    "FakeClock",
    "Fill",
    "GatewayError",
    "Holding",
    "InvalidAccount",
    "InvalidISIN",
    "InvalidStockCode",
    "KISClient",
    "KISConnectionError",
    "KISError",
    "KISRejected",
    "Kind",
    "Level",
    "MarketClosed",
    "MarketDay",
    "MinuteBar",
    "OrderBook",
    "OrderBookSnapshot",
    "OrderCondition",
    "OrderNotRevisable",
    "OrderOutcomeUnknown",
    "OrderResult",
    "OutcomeUnknown",
    "PendingOrder",
    "PeriodProfit",
    "PeriodProfitDay",
    "PeriodProfitSummary",
    "PriceBatch",
    "ProgressCallback",
    "Quote",
    "RankedStock",
    "RateLimited",
    "ReconcileOutcome",
    "Reconciliation",
    "RequestNotSent",
    "Response",
    "RetryBudgetExhausted",
    "RetryPolicy",
    "Sellable",
    "ServiceUnavailable",
    "Side",
    "StockCode",
    "StockInfo",
    "Stream",
    "StreamConnected",
    "StreamEvent",
    "StreamOverflow",
    "StreamReconnecting",
    "StreamResubscribed",
    "StreamSlotBusy",
    "SubscriptionLimitExceeded",
    "SubscriptionRefused",
    "SystemClock",
    "TokenError",
    "TokenIssueThrottled",
    "TokenStatus",
    "Trade",
    "ValidationError",
    "Window",
    "WrongEnvironment",
    "__version__",
    "default_base_url",
    "default_state_dir",
    "lookup_code",
    "normalize_code",
    "parse_account",
    "parse_env",
    "token_status",
    "validate_isin",
]
