"""kisclient: a client for the Korea Investment & Securities (KIS) Open API.

    from kisclient import KISClient
    with KISClient.from_env() as kis:
        print(kis.get_price("005930").price)

The public API is exactly what ``__all__`` lists; modules whose names start with ``_`` are
private. ``kisclient.testing`` holds the fake KIS server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from ._version import __version__

if TYPE_CHECKING:  # the same names as _EXPORTS, for type checkers and readers
    from ._async_client import AsyncKISClient
    from ._base import ProgressCallback
    from ._client import KISClient
    from ._clock import Clock, FakeClock, SystemClock
    from ._codes import CodeInfo, Kind
    from ._codes import lookup as lookup_code
    from ._config import KST, Env, Side
    from ._defaults import default_base_url, default_state_dir, parse_env
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
    from ._observe import AdmissionWaited, ClientEvent, Observer, RequestObserved, StreamObserved
    from ._operations import Response
    from ._order_models import Buyable, OrderCondition, PendingOrder, Sellable
    from ._rate_windows import CONSERVATIVE, Window
    from ._retries import RetryPolicy
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
        TradeBatch,
    )
    from ._token_status import TokenStatus, token_status
    from ._validation import Account, StockCode, normalize_code, parse_account, validate_isin

#: Where each public name lives: (private module, attribute). Loaded on first use (PEP 562), so
#: that a program needing one name (a CLI asking for ``KST``) does not pay for httpx, asyncio,
#: websockets and cattrs; ``tests/kisclient/test_kisclient_api.py`` keeps this table, the
#: imports above and ``__all__`` in agreement.
_EXPORTS: Final[dict[str, tuple[str, str]]] = {
    "AsyncKISClient": ("_async_client", "AsyncKISClient"),
    "ProgressCallback": ("_base", "ProgressCallback"),
    "KISClient": ("_client", "KISClient"),
    "Clock": ("_clock", "Clock"),
    "FakeClock": ("_clock", "FakeClock"),
    "SystemClock": ("_clock", "SystemClock"),
    "CodeInfo": ("_codes", "CodeInfo"),
    "Kind": ("_codes", "Kind"),
    "lookup_code": ("_codes", "lookup"),
    "KST": ("_config", "KST"),
    "Env": ("_config", "Env"),
    "Side": ("_config", "Side"),
    "RetryPolicy": ("_retries", "RetryPolicy"),
    "AuthError": ("_errors", "AuthError"),
    "BadRequest": ("_errors", "BadRequest"),
    "BusinessRejection": ("_errors", "BusinessRejection"),
    "ConfigurationError": ("_errors", "ConfigurationError"),
    "EndpointUnavailable": ("_errors", "EndpointUnavailable"),
    "GatewayError": ("_errors", "GatewayError"),
    "InvalidAccount": ("_errors", "InvalidAccount"),
    "InvalidISIN": ("_errors", "InvalidISIN"),
    "InvalidStockCode": ("_errors", "InvalidStockCode"),
    "KISConnectionError": ("_errors", "KISConnectionError"),
    "KISError": ("_errors", "KISError"),
    "KISRejected": ("_errors", "KISRejected"),
    "MarketClosed": ("_errors", "MarketClosed"),
    "OrderNotRevisable": ("_errors", "OrderNotRevisable"),
    "OrderOutcomeUnknown": ("_errors", "OrderOutcomeUnknown"),
    "OutcomeUnknown": ("_errors", "OutcomeUnknown"),
    "RateLimited": ("_errors", "RateLimited"),
    "RequestNotSent": ("_errors", "RequestNotSent"),
    "RetryBudgetExhausted": ("_errors", "RetryBudgetExhausted"),
    "ServiceUnavailable": ("_errors", "ServiceUnavailable"),
    "StreamSlotBusy": ("_errors", "StreamSlotBusy"),
    "SubscriptionLimitExceeded": ("_errors", "SubscriptionLimitExceeded"),
    "TokenError": ("_errors", "TokenError"),
    "TokenIssueThrottled": ("_errors", "TokenIssueThrottled"),
    "ValidationError": ("_errors", "ValidationError"),
    "WrongEnvironment": ("_errors", "WrongEnvironment"),
    "ExpectedTrade": ("_market_models", "ExpectedTrade"),
    "MarketDay": ("_market_models", "MarketDay"),
    "MinuteBar": ("_market_models", "MinuteBar"),
    "OrderBookSnapshot": ("_market_models", "OrderBookSnapshot"),
    "PeriodProfit": ("_market_models", "PeriodProfit"),
    "PeriodProfitDay": ("_market_models", "PeriodProfitDay"),
    "PeriodProfitSummary": ("_market_models", "PeriodProfitSummary"),
    "RankedStock": ("_market_models", "RankedStock"),
    "StockInfo": ("_market_models", "StockInfo"),
    "Balance": ("_models", "Balance"),
    "BalanceSummary": ("_models", "BalanceSummary"),
    "DailyBar": ("_models", "DailyBar"),
    "DailyOrder": ("_models", "DailyOrder"),
    "Holding": ("_models", "Holding"),
    "OrderResult": ("_models", "OrderResult"),
    "PriceBatch": ("_models", "PriceBatch"),
    "Quote": ("_models", "Quote"),
    "ReconcileOutcome": ("_models", "ReconcileOutcome"),
    "Reconciliation": ("_models", "Reconciliation"),
    "AdmissionWaited": ("_observe", "AdmissionWaited"),
    "ClientEvent": ("_observe", "ClientEvent"),
    "Observer": ("_observe", "Observer"),
    "RequestObserved": ("_observe", "RequestObserved"),
    "StreamObserved": ("_observe", "StreamObserved"),
    "Response": ("_operations", "Response"),
    "Buyable": ("_order_models", "Buyable"),
    "OrderCondition": ("_order_models", "OrderCondition"),
    "PendingOrder": ("_order_models", "PendingOrder"),
    "Sellable": ("_order_models", "Sellable"),
    "CONSERVATIVE": ("_rate_windows", "CONSERVATIVE"),
    "Window": ("_rate_windows", "Window"),
    "default_base_url": ("_defaults", "default_base_url"),
    "default_state_dir": ("_defaults", "default_state_dir"),
    "parse_env": ("_defaults", "parse_env"),
    "AsyncStream": ("_stream", "AsyncStream"),
    "Stream": ("_stream", "Stream"),
    "Fill": ("_stream_events", "Fill"),
    "Level": ("_stream_events", "Level"),
    "OrderBook": ("_stream_events", "OrderBook"),
    "StreamConnected": ("_stream_events", "StreamConnected"),
    "StreamEvent": ("_stream_events", "StreamEvent"),
    "StreamOverflow": ("_stream_events", "StreamOverflow"),
    "StreamReconnecting": ("_stream_events", "StreamReconnecting"),
    "StreamResubscribed": ("_stream_events", "StreamResubscribed"),
    "SubscriptionRefused": ("_stream_events", "SubscriptionRefused"),
    "Trade": ("_stream_events", "Trade"),
    "TradeBatch": ("_stream_events", "TradeBatch"),
    "TokenStatus": ("_token_status", "TokenStatus"),
    "token_status": ("_token_status", "token_status"),
    "Account": ("_validation", "Account"),
    "StockCode": ("_validation", "StockCode"),
    "normalize_code": ("_validation", "normalize_code"),
    "parse_account": ("_validation", "parse_account"),
    "validate_isin": ("_validation", "validate_isin"),
}

__all__ = [
    "CONSERVATIVE",
    "KST",
    "Account",
    "AdmissionWaited",
    "AsyncKISClient",
    "AsyncStream",
    "AuthError",
    "BadRequest",
    "Balance",
    "BalanceSummary",
    "BusinessRejection",
    "Buyable",
    "ClientEvent",
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
    "Observer",
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
    "RequestObserved",
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
    "StreamObserved",
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
    "TradeBatch",
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


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
