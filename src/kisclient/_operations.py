"""Every client operation as a sans-I/O generator, shared by the sync and async clients.

An operation yields the :class:`~kisclient._core.Call` it needs next and receives the
:class:`Response` (or has the call's :class:`~kisclient.KISError` thrown into it); its return
value is the method's result. Paging, chunking, date-window stepping and parsing therefore exist
once; a client only drives the generator (see :func:`drive` and the async driver).

Reconciling an order whose answer was lost is the same: :func:`reconcile_rows` decides from one
look-up (pure), :class:`Reconciler` holds the state between look-ups and says how long to wait;
the clients only run its look-ups and sleep on their clock.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Callable, Collection, Generator, Iterable, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

import attrs

from ._config import DAILY_CHART_MAX_ROWS, ENDPOINTS, KST, MULTIPRICE_MAX_CODES, Env, Side
from ._core import Call, next_page, parse_http_date
from ._errors import BadRequest, EndpointUnavailable, GatewayError, KISError, ValidationError
from ._models import (
    Balance,
    DailyBar,
    DailyOrder,
    ModelError,
    OrderResult,
    PriceBatch,
    Quote,
    ReconcileOutcome,
    Reconciliation,
)
from ._order_models import OrderCondition
from ._validation import Account, StockCode, normalize_code

__all__ = [
    "RECONCILE_POLL_S",
    "Flow",
    "Gather",
    "Operation",
    "Reconciler",
    "Response",
    "Sleep",
    "daily_orders_seen",
    "matches_request",
    "reconcile_rows",
]


@attrs.frozen
class Response:
    """A successful answer: the parsed body and the (lower-cased) response headers.

    ``attempts`` is how many attempts the answer took (every one was sent, or tried to be);
    ``request`` is, for a call with market side effects, what was sent as an
    :class:`~kisclient.OrderOutcomeUnknown` would report it (with ``sent_at``), else ``None``.
    """

    data: Mapping[str, Any] = attrs.field(repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    status: int = 200
    attempts: int = 1
    request: Mapping[str, Any] | None = attrs.field(default=None, repr=False)

    @property
    def msg_cd(self) -> str:
        return str(self.data.get("msg_cd", "")).strip()

    @property
    def msg1(self) -> str:
        return str(self.data.get("msg1", "")).strip()

    @property
    def has_next_page(self) -> bool:
        return self.headers.get("tr_cont", "").strip().upper() in ("F", "M")


T = TypeVar("T")

#: An operation: yields calls, receives responses, returns a result.
Operation: TypeAlias = Generator[Call, Response, T]


@attrs.frozen
class Sleep:
    """Sleep *seconds* on the client's clock (the shell sends back ``None``)."""

    seconds: float


@attrs.frozen
class Gather:
    """Run *operations* to their ends (at most *limit* at once where the shell can) and send
    back, in order, each one's result or the :class:`~kisclient.KISError` that ended it.

    ``on_done(i)`` is called as operation *i* ends. Any other exception ends the flow.
    """

    operations: Sequence[Operation[Any]]
    limit: int = 1
    on_done: Callable[[int], None] | None = None

    def done(self, index: int) -> None:
        if self.on_done is not None:
            self.on_done(index)


#: A flow behind a public method: an operation that may also sleep and gather sub-operations.
Flow: TypeAlias = Generator[Call | Sleep | Gather, Any, T]


def _tr(endpoint_name: str, env: Env, side: Side | None = None, *, legacy: bool = False) -> str:
    endpoint = ENDPOINTS[endpoint_name]
    try:
        return endpoint.tr_id(env, side, legacy=legacy)
    except KeyError:
        raise EndpointUnavailable(
            f"{endpoint_name} is not available in the {env.value} environment"
        ) from None


def _yyyymmdd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


# --- quotations --------------------------------------------------------------------------------


def price_call(env: Env, code: StockCode) -> Call:
    """The current-price call for one code."""
    return Call(
        ENDPOINTS["inquire_price"],
        _tr("inquire_price", env),
        params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code.query_code},
    )


def get_price(env: Env, raw_code: str) -> Operation[Quote]:
    code = normalize_code(raw_code)
    response = yield price_call(env, code)
    return Quote.from_inquire_price(code.code, _output(response, "output"))


def multprice_call(codes: list[StockCode]) -> Call:
    """The multi-symbol quote for up to 30 codes (real only)."""
    if not 0 < len(codes) <= MULTIPRICE_MAX_CODES:
        raise ValueError(f"multprice takes 1 to {MULTIPRICE_MAX_CODES} codes, got {len(codes)}")
    params: dict[str, str] = {}
    for i, code in enumerate(codes, start=1):
        params[f"FID_COND_MRKT_DIV_CODE_{i}"] = "J"
        params[f"FID_INPUT_ISCD_{i}"] = code.query_code
    return Call(ENDPOINTS["intstock_multprice"], _tr("intstock_multprice", Env.REAL), params=params)


def prepare_codes(
    raw_codes: Iterable[str],
) -> tuple[list[StockCode], dict[str, KISError | ValidationError]]:
    """Validate and de-duplicate *raw_codes* in order; bad codes are returned as failures."""
    valid: dict[str, StockCode] = {}
    failed: dict[str, KISError | ValidationError] = {}
    for raw in raw_codes:
        try:
            code = normalize_code(raw)
        except ValidationError as exc:
            failed[raw] = exc
            continue
        valid.setdefault(code.code, code)
    return list(valid.values()), failed


def get_prices_multi(codes: list[StockCode], batch: PriceBatch) -> Operation[None]:
    """Fill *batch* through the 30-code endpoint; a failed chunk fails only its own codes."""
    for start in range(0, len(codes), MULTIPRICE_MAX_CODES):
        chunk = codes[start : start + MULTIPRICE_MAX_CODES]
        call = multprice_call(chunk)
        try:
            response = yield call
        except KISError as exc:
            batch.requests += exc.attempts
            for code in chunk:
                batch.failed[code.code] = exc
            continue
        batch.requests += response.attempts
        rows = response.data.get("output") or []
        by_code = {str(row.get("inter_shrn_iscd", "")).strip(): row for row in rows}
        for code in chunk:
            row = by_code.get(code.code) or by_code.get(code.query_code)
            if row is None:
                batch.failed[code.code] = GatewayError(
                    f"{code.code} missing from the multi-price answer"
                )
            else:
                _settle_quote(batch, code, functools.partial(Quote.from_multprice, row), call.tr_id)


def get_prices_single(env: Env, codes: list[StockCode], batch: PriceBatch) -> Operation[None]:
    """Fill *batch* one code per call; a failed code fails alone."""
    for code in codes:
        try:
            response = yield price_call(env, code)
        except KISError as exc:
            batch.requests += exc.attempts
            batch.failed[code.code] = exc
            continue
        batch.requests += response.attempts
        parse = functools.partial(Quote.from_inquire_price, code.code, _output(response, "output"))
        _settle_quote(batch, code, parse)


def _settle_quote(
    batch: PriceBatch, code: StockCode, parse: Callable[[], Quote], tr_id: str | None = None
) -> None:
    """Record one parsed quote, or a malformed answer as that code's failure.

    The multi-price endpoint answers a code it does not list with an empty row (no name, price
    0) where the single quote refuses it; both end as a failure of that code, never as a quote.
    """
    try:
        quote = parse()
    except ModelError as exc:
        batch.failed[code.code] = GatewayError(f"malformed quote for {code.code}: {exc}")
        return
    if quote.price <= 0 and not quote.name:
        batch.failed[code.code] = BadRequest(
            f"{code.code} is not listed (empty quote)", tr_id=tr_id
        )
        return
    batch.succeeded[code.code] = quote


def batch_groups(env: Env, codes: list[StockCode], multi: bool | None) -> list[list[StockCode]]:
    """Split *codes* into the groups one operation each fetches.

    Groups of up to 30 for the multi-price endpoint where the environment has it
    (``multi=None``) or where asked (``multi=True``, an error where it does not exist); one
    code per group otherwise.
    """
    available = ENDPOINTS["intstock_multprice"].available_in(env)
    if multi and not available:
        raise EndpointUnavailable(f"the multi-price endpoint does not exist in {env.value}")
    if not (available if multi is None else multi):
        return [[code] for code in codes]
    return [codes[i : i + MULTIPRICE_MAX_CODES] for i in range(0, len(codes), MULTIPRICE_MAX_CODES)]


def get_prices_for(env: Env, group: list[StockCode], batch: PriceBatch) -> Operation[None]:
    """Fill *batch* for one group from :func:`batch_groups` (a lone code needs no 30-code call)."""
    if len(group) > 1:
        yield from get_prices_multi(group, batch)
    else:
        yield from get_prices_single(env, group, batch)


def get_daily_prices(
    env: Env, raw_code: str, start: dt.date, end: dt.date
) -> Operation[list[DailyBar]]:
    """Daily bars in ``[start, end]``, oldest first, stepping the date window past 100 rows."""
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    code = normalize_code(raw_code)
    bars: dict[dt.date, DailyBar] = {}
    window_end = end
    while window_end >= start:
        call = Call(
            ENDPOINTS["inquire_daily_itemchartprice"],
            _tr("inquire_daily_itemchartprice", env),
            params={
                "FID_COND_MRKT_DIV_CODE": "J",
                "FID_INPUT_ISCD": code.query_code,
                "FID_INPUT_DATE_1": _yyyymmdd(start),
                "FID_INPUT_DATE_2": _yyyymmdd(window_end),
                "FID_PERIOD_DIV_CODE": "D",
                "FID_ORG_ADJ_PRC": "0",
            },
        )
        response = yield call
        rows = [r for r in (response.data.get("output2") or []) if r and r.get("stck_bsop_date")]
        page = [DailyBar.from_row(row) for row in rows]
        for bar in page:
            if start <= bar.date <= end:
                bars[bar.date] = bar
        if len(page) < DAILY_CHART_MAX_ROWS:
            break
        oldest = min(bar.date for bar in page)
        window_end = oldest - dt.timedelta(days=1)
    return [bars[day] for day in sorted(bars)]


# --- account -----------------------------------------------------------------------------------


def balance_call(env: Env, account: Account) -> Call:
    """The first page of the balance inquiry."""
    return Call(
        ENDPOINTS["inquire_balance"],
        _tr("inquire_balance", env),
        params={
            "CANO": account.cano,
            "ACNT_PRDT_CD": account.product_code,
            "AFHR_FLPR_YN": "N",
            "OFL_YN": "",
            "INQR_DVSN": "02",
            "UNPR_DVSN": "01",
            "FUND_STTL_ICLD_YN": "N",
            "FNCG_AMT_AUTO_RDPT_YN": "N",
            "PRCS_DVSN": "00",
            "CTX_AREA_FK100": "",
            "CTX_AREA_NK100": "",
        },
    )


def get_balance(env: Env, account: Account) -> Operation[Balance]:
    """Every page of holdings plus the summary of the last page."""
    holdings: list[Mapping[str, Any]] = []
    summary: Mapping[str, Any] = {}
    call: Call | None = balance_call(env, account)
    while call is not None:
        response = yield call
        holdings.extend(r for r in (response.data.get("output1") or []) if r)
        summary_rows = response.data.get("output2") or []
        if isinstance(summary_rows, Mapping):
            summary_rows = [summary_rows]
        if summary_rows:
            summary = summary_rows[0]
        call = next_page(call, response.headers, response.data)
    return Balance.from_rows(holdings, summary)


def order_call(
    env: Env,
    account: Account,
    side: Side,
    code: StockCode,
    qty: int,
    price: int | None,
    *,
    legacy_tr_id: bool = False,
    condition: OrderCondition | None = None,
) -> Call:
    """A cash order: limit when *price* is given, market otherwise; or the
    :class:`~kisclient.OrderCondition` *condition* (checked against *price* and *env* first:
    a :class:`~kisclient.ValidationError` and nothing sent when they do not fit)."""
    if side not in ("buy", "sell"):
        raise ValidationError(f"side must be 'buy' or 'sell', not {side!r}")
    if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
        raise ValidationError(f"qty must be a positive int, not {qty!r}")
    if price is not None and (isinstance(price, bool) or not isinstance(price, int) or price <= 0):
        raise ValidationError(f"price must be a positive int or None (market order), not {price!r}")
    if condition is not None:
        condition = OrderCondition(condition)
        condition.check(env, price)
        division = condition.ord_dvsn
    else:
        division = "00" if price is not None else "01"
    tr_id = _tr("order_cash", env, side, legacy=legacy_tr_id)
    body = {
        # PDNO is 6 characters, 7 for an ETN (its Q kept).
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "PDNO": code.query_code,
        "ORD_DVSN": division,
        "ORD_QTY": str(qty),
        "ORD_UNPR": str(price) if price is not None else "0",
    }
    request = {
        "side": side,
        "code": code.code,
        "qty": qty,
        "price": price,
        "ord_dvsn": body["ORD_DVSN"],
        "tr_id": tr_id,
    }
    return Call(ENDPOINTS["order_cash"], tr_id, body=body, request=request)


def order_cash(
    env: Env,
    account: Account,
    side: Side,
    raw_code: str,
    qty: int,
    price: int | None,
    *,
    legacy_tr_id: bool = False,
    condition: OrderCondition | None = None,
) -> Operation[OrderResult]:
    """Place one cash order. The client stamps the call's ``request`` with the moment each
    attempt leaves (``sent_at``, ``sent_at_kis``; see ``kisclient._attempt.GatewayClock.stamp``).
    The result keeps the order's terms from the request (for ``revise_order``)."""
    code = normalize_code(raw_code)
    call = order_call(
        env, account, side, code, qty, price, legacy_tr_id=legacy_tr_id, condition=condition
    )
    response = yield call
    return OrderResult.from_output(
        _output(response, "output"), response.msg_cd, response.msg1, call.request
    )


def daily_orders_call(
    env: Env,
    account: Account,
    start: dt.date,
    end: dt.date,
    *,
    code: str | None = None,
    side: Side | None = None,
    tr_id: str | None = None,
    order_no: str = "",
    open_only: bool = False,
) -> Call:
    """The first page of the daily order/fill inquiry (inquire-daily-ccld): the current
    ``tr_id`` unless *tr_id* is given (see :func:`daily_orders_tr_ids`); *order_no* filters on
    ``ODNO``, *open_only* on ``CCLD_DVSN`` ``02`` (미체결)."""
    pdno = normalize_code(code).code if code else ""
    side_code = {"sell": "01", "buy": "02", None: "00"}[side]
    return Call(
        ENDPOINTS["inquire_daily_ccld"],
        tr_id or _tr("inquire_daily_ccld", env),
        params={
            "CANO": account.cano,
            "ACNT_PRDT_CD": account.product_code,
            "INQR_STRT_DT": _yyyymmdd(start),
            "INQR_END_DT": _yyyymmdd(end),
            "SLL_BUY_DVSN_CD": side_code,
            "INQR_DVSN": "00",
            "PDNO": pdno,
            "CCLD_DVSN": "02" if open_only else "00",
            "ORD_GNO_BRNO": "",
            "ODNO": order_no,
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
            "CTX_AREA_FK100": "",
            "CTX_AREA_NK100": "",
        },
    )


def get_daily_orders(
    env: Env,
    account: Account,
    start: dt.date,
    end: dt.date,
    *,
    code: str | None = None,
    side: Side | None = None,
    today: dt.date | None = None,
    legacy_tr_id: bool = False,
    order_no: str = "",
    open_only: bool = False,
) -> Operation[list[DailyOrder]]:
    """Orders and fills in ``[start, end]`` (all pages), newest first.

    The range is split at the 3-month boundary (:func:`daily_orders_tr_ids`): the recent part
    with the current id (``TTTC0081R`` / ``VTTC0081R``; ``TTTC8001R`` with *legacy_tr_id*),
    the older part with the archive id (``CTSC9215R`` / ``VTSC9215R``).
    """
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    orders: list[DailyOrder] = []
    for tr_id, first, last in daily_orders_tr_ids(
        env, start, end, today=today or end, legacy=legacy_tr_id
    ):
        call: Call | None = daily_orders_call(
            env,
            account,
            first,
            last,
            code=code,
            side=side,
            tr_id=tr_id,
            order_no=order_no,
            open_only=open_only,
        )
        while call is not None:
            response = yield call
            rows = response.data.get("output1") or []
            orders.extend(DailyOrder.from_row(r) for r in rows if r)
            call = next_page(call, response.headers, response.data)
    return orders


def three_months_before(day: dt.date) -> dt.date:
    """The first day the current daily-ccld ids cover: *day* less three calendar months (the
    day of month clamped, e.g. 31 May → 28/29 Feb)."""
    year, month0 = divmod(day.year * 12 + day.month - 1 - 3, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(day.day, last))


def daily_orders_tr_ids(
    env: Env, start: dt.date, end: dt.date, *, today: dt.date, legacy: bool = False
) -> list[tuple[str, dt.date, dt.date]]:
    """The ``(tr_id, first, last)`` look-ups that cover ``[start, end]``, newest first.

    KIS documents the current ids for orders "within 3 months" and the archive ids for older
    ones (inquire-daily-ccld's documentation) without saying how the boundary is counted; the
    client counts three calendar months back from *today* (KST) inclusive. A range that crosses
    the boundary is split into two look-ups.
    """
    boundary = three_months_before(today)
    recent_tr = _tr("inquire_daily_ccld", env, legacy=legacy)
    looks: list[tuple[str, dt.date, dt.date]] = []
    if end >= boundary:
        looks.append((recent_tr, max(start, boundary), end))
    if start < boundary:
        archive = ENDPOINTS["inquire_daily_ccld"].tr_id(env, archive=True)
        looks.append((archive, start, min(end, boundary - dt.timedelta(days=1))))
    return looks


# --- reconciliation -----------------------------------------------------------------------------

#: ``Date`` headers and ``ord_tmd`` are whole seconds, and the offset estimate runs up to a second
#: early: comparisons of KIS times allow this much.
_TIME_SLACK_S = 2.0
#: Seconds between look-ups while waiting for the settle window to pass.
RECONCILE_POLL_S = 5.0


def daily_orders_seen(
    env: Env, account: Account, day: dt.date, *, code: str, side: Side | None
) -> Operation[tuple[list[DailyOrder], float | None]]:
    """*day*'s orders for *code* and the KIS time (Unix seconds, from the first page's ``Date``
    header; ``None`` without one) at which KIS produced the answer.

    The first page's time is the snapshot's: an order that landed later is in no page.
    """
    seen: float | None = None
    first = True
    orders: list[DailyOrder] = []
    call: Call | None = daily_orders_call(env, account, day, day, code=code, side=side)
    while call is not None:
        response = yield call
        if first:
            seen, first = parse_http_date(response.headers.get("date")), False
        orders.extend(DailyOrder.from_row(r) for r in (response.data.get("output1") or []) if r)
        call = next_page(call, response.headers, response.data)
    return orders, seen


def matches_request(request: Mapping[str, Any], order: DailyOrder) -> bool:
    """Whether *order* (a daily-ccld row) has every field the order *request* carries.

    Side, code, quantity, order division (``ord_dvsn``; rows without ``ord_dvsn_cd`` are not
    filtered on it) and price (a market order's row has ``ord_unpr`` 0, or division ``01``). A
    revision or cancellation row never matches (:attr:`DailyOrder.is_original`).
    """
    if request.get("orgn_odno"):
        return _matches_change(request, order)
    if not order.is_original:
        return False
    if (order.side, order.code, order.quantity) != (
        request.get("side"),
        str(request.get("code")),
        request.get("qty"),
    ):
        return False
    division = str(request.get("ord_dvsn") or ("00" if request.get("price") else "01"))
    if order.order_division and order.order_division != division:
        return False
    price = request.get("price")
    if price is not None:
        return bool(order.price == price)
    return order.price == 0 or order.order_division == "01"


def _matches_change(request: Mapping[str, Any], order: DailyOrder) -> bool:
    """Whether *order* is the row a revise/cancel *request* (``orgn_odno`` set) produced: a
    row naming that original order, of the same kind (``rvse_cncl``: ``01`` revise, ``02``
    cancel, read from ``cncl_yn`` / ``rvse_cncl_dvsn_name``), with the request's quantity (when
    it named one) and, for a revision, its price. The original order itself never matches."""
    original = str(request.get("orgn_odno", "")).lstrip("0")
    if order.original_order_no.lstrip("0") != original or not original:
        return False
    if (order.side, order.code) != (request.get("side"), str(request.get("code"))):
        return False
    kind = order.extra.get("rvse_cncl_dvsn_name", "").strip()
    is_cancel = order.cancelled or kind == "취소"
    if is_cancel != (request.get("rvse_cncl") == "02"):
        return False
    qty = request.get("qty")
    if isinstance(qty, int) and order.quantity != qty:
        return False
    price = request.get("price")
    return is_cancel or price is None or order.price == price


def reconcile_rows(
    request: Mapping[str, Any],
    orders: Iterable[DailyOrder],
    *,
    sent_kis: float | None,
    seen_kis: float,
    settle_until: float,
    exclude: Collection[str] = (),
) -> tuple[ReconcileOutcome, DailyOrder | None]:
    """The reconciliation decision: a pure function of one look-up.

    *orders*: the rows of the look-up; *seen_kis*: when KIS produced them (KIS clock, Unix
    seconds); *sent_kis*: when the request left, on KIS's clock (``None`` when unknown: then no
    row is ruled out by its time); *settle_until*: the KIS time after which the order can no
    longer arrive; *exclude*: order numbers already matched to other requests.

    A row matches when :func:`matches_request` holds, its order number is not excluded and its
    ``ord_tmd`` is not before *sent_kis* (less :data:`_TIME_SLACK_S`). The earliest match is the
    order (the first such order after the request left is the request). Without a match the
    order is ``ABSENT`` only once *seen_kis* has reached *settle_until*; before that it is
    ``UNKNOWN`` (not visible yet is not "never arrived").
    """
    earliest = None if sent_kis is None else sent_kis - _TIME_SLACK_S
    candidates = []
    for order in orders:
        if order.order_no in exclude or not matches_request(request, order):
            continue
        at = order.ordered_at_kst
        if earliest is not None and at is not None and at.timestamp() < earliest:
            continue
        candidates.append(order)
    if candidates:
        return ReconcileOutcome.FOUND, min(candidates, key=lambda o: (o.ordered_at, o.order_no))
    if seen_kis >= settle_until:
        return ReconcileOutcome.ABSENT, None
    return ReconcileOutcome.UNKNOWN, None


def _epoch(value: Any) -> float | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None


@attrs.define
class Reconciler:
    """One ``reconcile_order`` in progress: every decision, no I/O.

    A client drives it: run :meth:`lookup` (an operation), pass its result, or the
    :class:`~kisclient.KISError` it raised, to :meth:`feed` with the current local time and clock
    offset; :meth:`feed` answers a :class:`~kisclient.Reconciliation` (done) or the seconds to
    sleep on the client's clock before the next look-up.

    The send time on KIS's clock is the request's ``sent_at_kis``, else its ``sent_at`` plus the
    measured offset; a request without either is taken as sent when reconciliation started
    (later than in truth: the window only grows) and no row is ruled out by its time. The
    settle window ends *settle_s* (plus the one-second resolution of ``Date``) after the send,
    or after ``sent_by_kis`` when the request has it: the latest moment the request can have
    left, when only an earlier bound is known for ``sent_at_kis`` (a journalled intent).
    """

    request: Mapping[str, Any]
    settle_s: float
    started_local: float
    exclude: frozenset[str] = frozenset()
    wait: bool = True
    poll_s: float = RECONCILE_POLL_S
    lookups: int = 0

    def sent_kis(self, offset: float | None) -> float | None:
        """When the request left, on KIS's clock, or ``None`` if that is not known."""
        stamped = _epoch(self.request.get("sent_at_kis"))
        if stamped is not None:
            return stamped
        local = _epoch(self.request.get("sent_at"))
        return local + offset if local is not None and offset is not None else None

    def settle_until(self, offset: float | None) -> float:
        """The KIS time after which the order, if still missing, certainly never arrives."""
        sent = _epoch(self.request.get("sent_by_kis")) or self.sent_kis(offset)
        if sent is None:
            local = _epoch(self.request.get("sent_at")) or self.started_local
            sent = local + (offset or 0.0)
        return sent + self.settle_s + 1.0

    @property
    def max_lookups(self) -> int:
        """A bound on look-ups however the clocks behave: the window, polled, plus slack, and
        the time until ``sent_by_kis`` when that lies ahead of the start (a restart soon after
        the intent waits for the latest moment the order can still leave)."""
        if not self.wait:
            return 1
        span = self.settle_s + _TIME_SLACK_S
        sent_by = _epoch(self.request.get("sent_by_kis"))
        if sent_by is not None:
            span += max(0.0, sent_by - self.started_local)
        return int(span // self.poll_s) + 4

    def lookup(
        self, env: Env, account: Account, offset: float | None, local_now: float
    ) -> Operation[tuple[list[DailyOrder], float | None]]:
        """The next look-up: the send day's (KST, KIS's clock) orders for the request's code."""
        anchor = self.sent_kis(offset)
        if anchor is None:
            anchor = local_now + (offset or 0.0)
        day = dt.datetime.fromtimestamp(anchor, KST).date()
        side = self.request.get("side")
        return daily_orders_seen(
            env,
            account,
            day,
            code=str(self.request["code"]),
            side=side if side in ("buy", "sell") else None,
        )

    def feed(
        self,
        result: tuple[list[DailyOrder], float | None] | KISError,
        *,
        local_now: float,
        offset: float | None,
    ) -> Reconciliation | float:
        """Take one look-up's result; answer the reconciliation, or seconds to wait."""
        self.lookups += 1
        until = self.settle_until(offset)
        kis_now = local_now + (offset or 0.0)
        if isinstance(result, KISError):
            outcome, order = ReconcileOutcome.UNKNOWN, None
            reason = f"look-up failed ({type(result).__name__}: {result}); outcome unknown"
        else:
            orders, seen = result
            seen_kis = seen if seen is not None else kis_now
            outcome, order = reconcile_rows(
                self.request,
                orders,
                sent_kis=self.sent_kis(offset),
                seen_kis=seen_kis,
                settle_until=until,
                exclude=self.exclude,
            )
            reason = {
                ReconcileOutcome.FOUND: "found among the day's orders",
                ReconcileOutcome.ABSENT: "not among the day's orders after the settle window",
                ReconcileOutcome.UNKNOWN: "not visible yet; the settle window has not passed",
            }[outcome]
        if outcome is not ReconcileOutcome.UNKNOWN or self.lookups >= self.max_lookups:
            return Reconciliation(
                outcome,
                order,
                lookups=self.lookups,
                settle_until=dt.datetime.fromtimestamp(until, KST),
                reason=reason,
            )
        return min(self.poll_s, max(until - kis_now, 0.0) + 1.0)


def _output(response: Response, key: str) -> Mapping[str, Any]:
    value = response.data.get(key)
    if isinstance(value, list):
        value = value[0] if value else {}
    return value if isinstance(value, Mapping) else {}
