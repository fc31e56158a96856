"""The public API is exactly what ``__all__`` says; everything else is private."""

from __future__ import annotations

import importlib
import pathlib

import kisclient
import kisclient.testing

KISCLIENT = {
    "Account",
    "AsyncKISClient",
    "AuthError",
    "BadRequest",
    "Balance",
    "BalanceSummary",
    "BusinessRejection",
    "CONSERVATIVE",
    "Clock",
    "CodeInfo",
    "ConfigurationError",
    "DailyBar",
    "DailyOrder",
    "EndpointUnavailable",
    "Env",
    "FakeClock",
    "GatewayError",
    "Holding",
    "InvalidAccount",
    "InvalidISIN",
    "InvalidStockCode",
    "KISClient",
    "KISConnectionError",
    "KISError",
    "KISRejected",
    "KST",
    "Kind",
    "MarketClosed",
    "OrderOutcomeUnknown",
    "OrderResult",
    "OutcomeUnknown",
    "PriceBatch",
    "ProgressCallback",
    "Quote",
    "RateLimited",
    "ReconcileOutcome",
    "Reconciliation",
    "RequestNotSent",
    "Response",
    "RetryBudgetExhausted",
    "RetryPolicy",
    "ServiceUnavailable",
    "StockCode",
    "SystemClock",
    "TokenError",
    "TokenIssueThrottled",
    "ValidationError",
    "Window",
    "WrongEnvironment",
    "__version__",
    "lookup_code",
    "normalize_code",
    "parse_account",
    "validate_isin",
}
TESTING = {
    "AsyncFakeTransport",
    "FakeApp",
    "FakeKIS",
    "FakeKISServer",
    "FakeStats",
    "FakeTransport",
    "Fault",
    "FaultKind",
    "Listing",
    "OffsetClock",
    "Order",
}


def test_all_is_pinned_and_importable() -> None:
    assert set(kisclient.__all__) == KISCLIENT
    assert set(kisclient.testing.__all__) == TESTING
    for name in kisclient.__all__:
        assert getattr(kisclient, name) is not None
    for name in kisclient.testing.__all__:
        assert getattr(kisclient.testing, name) is not None


def test_modules_other_than_the_packages_are_private() -> None:
    root = pathlib.Path(kisclient.__file__).parent
    for path in root.rglob("*.py"):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        assert path.name.startswith("_"), f"{path} should be a private module"


def test_every_private_module_declares_all() -> None:
    root = pathlib.Path(kisclient.__file__).parent
    for path in sorted(root.rglob("_*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        parts = path.relative_to(root.parent).with_suffix("").parts
        module = importlib.import_module(".".join(parts))
        assert isinstance(getattr(module, "__all__", None), list | tuple), module.__name__


def test_the_package_is_typed() -> None:
    assert (pathlib.Path(kisclient.__file__).parent / "py.typed").is_file()
