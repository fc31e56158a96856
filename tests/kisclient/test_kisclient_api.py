"""The public API is exactly what ``__all__`` says; everything else is private."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re

import attrs
import pytest

import kisclient
import kisclient.testing
from kisclient._settings import DEFAULTS, ClientOptions, ClientSettings
from lazy_exports_support import check_lazy_exports, modules_loaded_by

KISCLIENT = {
    "AsyncStream",
    "Stream",
    "Fill",
    "Level",
    "OrderBook",
    "StreamConnected",
    "StreamEvent",
    "StreamOverflow",
    "StreamReconnecting",
    "StreamResubscribed",
    "SubscriptionRefused",
    "Trade",
    "TradeBatch",
    "Account",
    "AsyncKISClient",
    "AuthError",
    "BadRequest",
    "Balance",
    "BalanceSummary",
    "BusinessRejection",
    "Buyable",
    "OrderCondition",
    "OrderNotRevisable",
    "PendingOrder",
    "Sellable",
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
    "StreamSlotBusy",
    "SubscriptionLimitExceeded",
    "Side",
    "StockCode",
    "SystemClock",
    "TokenError",
    "TokenIssueThrottled",
    "TokenStatus",
    "ValidationError",
    "Window",
    "WrongEnvironment",
    # market data (issue 12)
    "ExpectedTrade",
    "MarketDay",
    "MinuteBar",
    "OrderBookSnapshot",
    "PeriodProfit",
    "PeriodProfitDay",
    "PeriodProfitSummary",
    "RankedStock",
    "StockInfo",
    "__version__",
    "default_base_url",
    "default_state_dir",
    "lookup_code",
    "normalize_code",
    "parse_account",
    "parse_env",
    "token_status",
    "validate_isin",
    # the observer seam (issue 15)
    "AdmissionWaited",
    "ClientEvent",
    "Observer",
    "RequestObserved",
    "StreamObserved",
}
TESTING = {
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


# --- the constructors read one table of defaults ---------------------------------------------


def _init_params(cls: type) -> list[inspect.Parameter]:
    return list(inspect.signature(cls.__init__).parameters.values())  # type: ignore[misc]


def test_both_constructors_take_the_settings_table_with_its_defaults() -> None:
    table = {field.name: getattr(DEFAULTS, field.name) for field in attrs.fields(ClientOptions)}
    required = ["self", "app_key", "app_secret"]
    for cls in (kisclient.KISClient, kisclient.AsyncKISClient):
        params = _init_params(cls)
        assert [p.name for p in params[:3]] == required
        optional = {p.name: p.default for p in params[3:] if p.name != "transport"}
        assert optional == table, cls.__name__
        transport = next(p for p in params if p.name == "transport")
        assert transport.default is None
    sync, async_ = (_init_params(kisclient.KISClient), _init_params(kisclient.AsyncKISClient))
    assert [(p.name, p.kind, p.default) for p in sync] == [
        (p.name, p.kind, p.default) for p in async_
    ]


def test_settings_built_from_the_defaults_match_a_default_client(tmp_path: pathlib.Path) -> None:
    from kisclient.testing import FakeKIS

    fake = FakeKIS(seed=1)
    app = fake.add_app(env="real")
    client = kisclient.KISClient(
        app.app_key, app.app_secret, state_dir=tmp_path, transport=fake.transport()
    )
    with client:
        built = ClientSettings.build(
            app.app_key, app.app_secret, attrs.evolve(DEFAULTS, state_dir=tmp_path)
        )
        ours = client._settings  # the settings the constructor made
        assert attrs.evolve(ours, clock=built.clock) == built


def _misspelt_env() -> None:
    """Never called: ``mypy tests`` (strict, so unused ignores are errors) proves that a
    misspelt environment is a type error, for both clients."""
    kisclient.KISClient("key", "secret", env="papre")  # type: ignore[arg-type]
    kisclient.AsyncKISClient("key", "secret", env="prod")  # type: ignore[arg-type]
    kisclient.KISClient("key", "secret", env="paper")
    kisclient.AsyncKISClient("key", "secret", env=kisclient.Env.REAL)


def test_env_is_typed_as_the_two_names_or_env(tmp_path: pathlib.Path) -> None:
    for cls in (kisclient.KISClient, kisclient.AsyncKISClient):
        env = next(p for p in _init_params(cls) if p.name == "env")
        assert env.annotation == "EnvName | Env"  # EnvName is Literal["real", "paper"]
    with pytest.raises(kisclient.ConfigurationError, match="papre"):
        kisclient.KISClient("key", "secret", env="papre", state_dir=tmp_path)  # type: ignore[arg-type]


# --- the guide's error tree is the class tree --------------------------------------------------

GUIDE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "kisclient-guide.md"
_NAME = re.compile(r"[A-Z][A-Za-z]+")


def _guide_tree() -> dict[str, str]:
    """Each class of the guide's error tree mapped to its parent as the tree draws it."""
    text = GUIDE.read_text(encoding="utf-8")
    block = text.split("## Errors: what happened to the request", 1)[1].split("```", 2)[1]
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = _NAME.search(line)
        if match is None:
            continue
        name, column = match.group(), match.start()
        root = re.match(r"([A-Z]\w+)\((\w+)\)", line[column:])
        if root:  # "ValidationError(ValueError) ── ..." names its base
            name = root.group(1)
            parents[name] = root.group(2)
        elif stack:
            while stack and stack[-1][0] >= column:
                stack.pop()
            if stack:
                parents[name] = stack[-1][1]
        stack.append((column, name))
        if "──" in line[column:]:  # "A ── B, C": B and C are children of A
            tail = line[column:].split("──", 1)[1]
            for child in _NAME.findall(tail.split("(")[0]):
                parents[child] = name
    return parents


def test_the_guide_error_tree_is_the_exception_tree() -> None:
    drawn = _guide_tree()
    assert "KISError" not in drawn  # the root
    exported = {
        name
        for name in kisclient.__all__
        if isinstance(getattr(kisclient, name), type)
        and issubclass(getattr(kisclient, name), Exception)
    }
    assert set(drawn) | {"KISError"} == exported
    for name, parent in drawn.items():
        cls = getattr(kisclient, name)
        assert cls.__bases__[0].__name__ == parent, f"{name}: guide says {parent}"
    not_kis = {n for n in exported if not issubclass(getattr(kisclient, n), kisclient.KISError)}
    assert not_kis == {
        "ValidationError",
        "InvalidStockCode",
        "InvalidISIN",
        "InvalidAccount",
        "ConfigurationError",
    }


def test_public_names_load_on_first_use_and_agree_with_all() -> None:
    check_lazy_exports(kisclient)


def test_asking_for_one_name_does_not_load_the_clients() -> None:
    loaded = modules_loaded_by("from kisclient import KST")
    assert "kisclient._config" in loaded
    assert not {"httpx", "asyncio", "websockets", "kisclient._client"} & loaded
    loaded = modules_loaded_by("from kisclient import token_status")
    assert not {"websockets", "kisclient._client", "kisclient._stream"} & loaded
    assert {"httpx", "kisclient._client"} <= modules_loaded_by("from kisclient import KISClient")


def test_aes_loads_only_with_a_fill_notice_key() -> None:
    """cryptography (about 7 MB resident) is for fill notices: a REST client, its fake and a
    stream decoder that has seen no key leave it unloaded; the first key loads it."""
    statement = (
        "from kisclient import KISClient; from kisclient.testing import FakeKIS; "
        "from kisclient._stream_protocol import FrameDecoder; FrameDecoder()"
    )
    assert "cryptography" not in modules_loaded_by(statement)
    ack = (
        '{"header":{"tr_id":"H0STCNI0","tr_key":"x","encrypt":"N"},"body":{"rt_cd":"0",'
        '"msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS","output":{"iv":"' + "i" * 16 + '",'
        '"key":"' + "k" * 32 + '"}}}'
    )
    statement += f"; d = FrameDecoder(); d.decode({ack!r}); assert d.has_key('H0STCNI0')"
    assert "cryptography" in modules_loaded_by(statement)
