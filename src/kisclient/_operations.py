"""Every client operation as a sans-I/O generator, shared by the sync and async clients.

An operation yields the :class:`~kisclient._core.Call` it needs next and receives the
:class:`Response` (or has the call's :class:`~kisclient.KISError` thrown into it); its return
value is the method's result. Paging, chunking, date-window stepping and parsing therefore exist
once; a client only drives the generator (see :func:`drive` and the async driver).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, TypeAlias, TypeVar

import attrs

from ._config import DAILY_CHART_MAX_ROWS, ENDPOINTS, KST, MULTIPRICE_MAX_CODES, Env, Side
from ._core import Call, next_page
from ._errors import BadRequest, EndpointUnavailable, GatewayError, KISError, ValidationError
from ._models import Balance, DailyBar, DailyOrder, ModelError, OrderResult, PriceBatch, Quote
from ._validation import Account, StockCode, normalize_code

__all__ = ["Operation", "Response"]


@attrs.frozen
class Response:
    """A successful answer: the parsed body and the (lower-cased) response headers."""

    data: Mapping[str, Any] = attrs.field(repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    status: int = 200

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
    """The current-price call for one code (facts §5.2)."""
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
    """The multi-symbol quote for up to 30 codes (facts §5.6, real only)."""
    if not 0 < len(codes) <= MULTIPRICE_MAX_CODES:
        raise ValueError(f"multprice takes 1 to {MULTIPRICE_MAX_CODES} codes, got {len(codes)}")
    params: dict[str, str] = {}
    for i, code in enumerate(codes, start=1):
        params[f"FID_COND_MRKT_DIV_CODE_{i}"] = "J"
        params[f"FID_INPUT_ISCD_{i}"] = code.query_code
    return Call(ENDPOINTS["intstock_multprice"], _tr("intstock_multprice", Env.REAL), params=params)


def prepare_codes(raw_codes: Iterable[str]) -> tuple[list[StockCode], dict[str, Exception]]:
    """Validate and de-duplicate *raw_codes* in order; bad codes are returned as failures."""
    valid: dict[str, StockCode] = {}
    failed: dict[str, Exception] = {}
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
            for code in chunk:
                batch.failed[code.code] = exc
            continue
        batch.requests += 1
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
            batch.failed[code.code] = exc
            continue
        batch.requests += 1
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
    """The first page of the balance inquiry (facts §5.5)."""
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
) -> Call:
    """A cash order (facts §5.4): limit when *price* is given, market otherwise."""
    if side not in ("buy", "sell"):
        raise ValidationError(f"side must be 'buy' or 'sell', not {side!r}")
    if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
        raise ValidationError(f"qty must be a positive int, not {qty!r}")
    if price is not None and (isinstance(price, bool) or not isinstance(price, int) or price <= 0):
        raise ValidationError(f"price must be a positive int or None (market order), not {price!r}")
    tr_id = _tr("order_cash", env, side, legacy=legacy_tr_id)
    body = {
        # PDNO is 6 characters, 7 for an ETN (its Q kept; facts §5.4).
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "PDNO": code.query_code,
        "ORD_DVSN": "00" if price is not None else "01",
        "ORD_QTY": str(qty),
        "ORD_UNPR": str(price) if price is not None else "0",
    }
    request = {"side": side, "code": code.code, "qty": qty, "price": price, "tr_id": tr_id}
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
    now: dt.datetime | None = None,
) -> Operation[OrderResult]:
    code = normalize_code(raw_code)
    call = order_call(env, account, side, code, qty, price, legacy_tr_id=legacy_tr_id)
    if now is not None and call.request is not None:
        call = attrs.evolve(call, request={**call.request, "sent_at": now.isoformat()})
    response = yield call
    return OrderResult.from_output(_output(response, "output"), response.msg_cd, response.msg1)


def cancel_order(env: Env, account: Account, order: DailyOrder) -> Operation[OrderResult]:
    """Cancel the whole remaining quantity of *order* (facts §5.4, order-rvsecncl)."""
    tr_id = _tr("order_rvsecncl", env)
    body = {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "KRX_FWDG_ORD_ORGNO": order.branch,
        "ORGN_ODNO": order.order_no,
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": "0",
        "ORD_UNPR": "0",
        "QTY_ALL_ORD_YN": "Y",
    }
    request = {"cancel": order.order_no, "code": order.code, "tr_id": tr_id}
    response = yield Call(ENDPOINTS["order_rvsecncl"], tr_id, body=body, request=request)
    return OrderResult.from_output(_output(response, "output"), response.msg_cd, response.msg1)


def get_daily_orders(
    env: Env,
    account: Account,
    start: dt.date,
    end: dt.date,
    *,
    code: str | None = None,
    side: Side | None = None,
) -> Operation[list[DailyOrder]]:
    """Orders and fills in ``[start, end]`` (all pages), for reconciliation."""
    pdno = normalize_code(code).code if code else ""
    side_code = {"sell": "01", "buy": "02", None: "00"}[side]
    call: Call | None = Call(
        ENDPOINTS["inquire_daily_ccld"],
        _tr("inquire_daily_ccld", env),
        params={
            "CANO": account.cano,
            "ACNT_PRDT_CD": account.product_code,
            "INQR_STRT_DT": _yyyymmdd(start),
            "INQR_END_DT": _yyyymmdd(end),
            "SLL_BUY_DVSN_CD": side_code,
            "INQR_DVSN": "00",
            "PDNO": pdno,
            "CCLD_DVSN": "00",
            "ORD_GNO_BRNO": "",
            "ODNO": "",
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
            "CTX_AREA_FK100": "",
            "CTX_AREA_NK100": "",
        },
    )
    orders: list[DailyOrder] = []
    while call is not None:
        response = yield call
        orders.extend(DailyOrder.from_row(r) for r in (response.data.get("output1") or []) if r)
        call = next_page(call, response.headers, response.data)
    return orders


def reconcile(
    env: Env, account: Account, request: Mapping[str, Any], today: dt.date
) -> Operation[DailyOrder | None]:
    """Find the order described by *request* (an :class:`OrderOutcomeUnknown`'s) among today's.

    Returns the matching order (it reached the exchange) or ``None`` (it did not; resending is
    safe). Matches on code, side, quantity and price, and, when the request has a ``sent_at``
    time, on an order time no earlier than one minute before it; the newest match wins.
    """
    side = request.get("side")
    orders = yield from get_daily_orders(
        env,
        account,
        today,
        today,
        code=str(request["code"]),
        side=side if side in ("buy", "sell") else None,
    )
    sent_at = request.get("sent_at")
    earliest = None
    if sent_at:
        earliest = (
            dt.datetime.fromisoformat(str(sent_at)).astimezone(KST) - dt.timedelta(minutes=1)
        ).strftime("%H%M%S")
    matches = [
        o
        for o in orders
        if o.code == request["code"]
        and o.side == side
        and o.quantity == request["qty"]
        and (request.get("price") is None or o.price == request["price"])
        and (earliest is None or o.ordered_at >= earliest)
    ]
    return max(matches, key=lambda o: (o.ordered_at, o.order_no)) if matches else None


def _output(response: Response, key: str) -> Mapping[str, Any]:
    value = response.data.get(key)
    if isinstance(value, list):
        value = value[0] if value else {}
    return value if isinstance(value, Mapping) else {}
