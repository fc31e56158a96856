"""Models of the order lifecycle (issue 12): order conditions, open orders, buyable cash and
sellable quantity.

Built like :mod:`kisclient._models`: frozen attrs classes whose fields name their KIS fields,
structured by the one converter (:func:`~kisclient._models.structure_kis`); unknown fields are
kept in ``extra``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from ._config import Env, Side
from ._errors import ValidationError
from ._models import DailyOrder, Holding, _kis, structure_kis

__all__ = ["Buyable", "OrderCondition", "PendingOrder", "Sellable"]


class OrderCondition(enum.StrEnum):
    """An order condition, valued by its ``ORD_DVSN`` code.

    Source: KIS's official order sample gives ``00`` 지정가, ``01`` 시장가, ``02`` 조건부지정가
    ("more codes per the spec"); the other codes are the KIS portal's ORD_DVSN table
    (주식주문(현금) v1_국내주식-001): ``03`` 최유리지정가, ``04`` 최우선지정가, ``05`` 장전 시간외,
    ``06`` 장후 시간외, ``07`` 시간외 단일가, ``11`` IOC지정가, ``12`` FOK지정가, ``13`` IOC시장가,
    ``14`` FOK시장가.

    Paper: KIS's public sources say nothing about which codes the paper host accepts, so the client
    takes the safest documented assumption: only :attr:`LIMIT` and :attr:`MARKET` on paper
    (``on_paper``); the others are refused locally with a :class:`~kisclient.ValidationError`
    before anything is sent.
    """

    LIMIT = "00"
    MARKET = "01"
    CONDITIONAL_LIMIT = "02"
    BEST = "03"
    PRIORITY = "04"
    PRE_MARKET = "05"
    AFTER_HOURS = "06"
    AFTER_HOURS_SINGLE_PRICE = "07"
    IOC_LIMIT = "11"
    FOK_LIMIT = "12"
    IOC_MARKET = "13"
    FOK_MARKET = "14"

    @property
    def ord_dvsn(self) -> str:
        """The ``ORD_DVSN`` code sent."""
        return self.value

    @property
    def needs_price(self) -> bool:
        """Whether the order carries a price (``ORD_UNPR``): limit-type conditions do; market,
        best, priority and the pre-/after-market close-price sessions do not (``"0"`` is sent)."""
        return self in _PRICED

    @property
    def on_paper(self) -> bool:
        """Whether the client sends this condition on a paper account (limit and market only)."""
        return self in _PAPER

    def check(self, env: Env, price: int | None) -> None:
        """Raise :class:`~kisclient.ValidationError` when this condition cannot be sent with
        *price* in *env* (nothing is sent)."""
        if env is Env.PAPER and not self.on_paper:
            raise ValidationError(
                f"order condition {self.name} ({self.value}) is not sent on paper: only LIMIT "
                "and MARKET are (KIS documents no other condition for paper accounts)"
            )
        if self.needs_price and price is None:
            raise ValidationError(f"order condition {self.name} ({self.value}) needs a price")
        if not self.needs_price and price is not None:
            raise ValidationError(
                f"order condition {self.name} ({self.value}) takes no price, got {price!r}"
            )


_PRICED = frozenset(
    {
        OrderCondition.LIMIT,
        OrderCondition.CONDITIONAL_LIMIT,
        OrderCondition.AFTER_HOURS_SINGLE_PRICE,
        OrderCondition.IOC_LIMIT,
        OrderCondition.FOK_LIMIT,
    }
)
_PAPER = frozenset({OrderCondition.LIMIT, OrderCondition.MARKET})


@attrs.frozen
class PendingOrder:
    """An order that can still be revised or cancelled: one row of ``inquire-psbl-rvsecncl``
    (real), or derived from the day's orders on paper (:meth:`from_daily_order`).

    ``remaining_quantity`` is ``psbl_qty`` (정정취소가능수량). Required: ``order_no``, ``side``,
    ``code``.
    """

    order_no: str = attrs.field(metadata=_kis("odno"))
    side: Side = attrs.field(metadata=_kis("sll_buy_dvsn_cd"))
    code: str = attrs.field(metadata=_kis("pdno"))
    branch: str = attrs.field(default="", metadata=_kis("ord_gno_brno"))
    original_order_no: str = attrs.field(default="", metadata=_kis("orgn_odno"))
    order_division_name: str = attrs.field(default="", metadata=_kis("ord_dvsn_name"))
    name: str = attrs.field(default="", metadata=_kis("prdt_name"))
    revise_cancel_name: str = attrs.field(default="", metadata=_kis("rvse_cncl_dvsn_name"))
    quantity: int = attrs.field(default=0, metadata=_kis("ord_qty"))
    price: int = attrs.field(default=0, metadata=_kis("ord_unpr"))
    ordered_at: str = attrs.field(default="", metadata=_kis("ord_tmd"))
    filled_quantity: int = attrs.field(default=0, metadata=_kis("tot_ccld_qty"))
    filled_amount: int = attrs.field(default=0, metadata=_kis("tot_ccld_amt"))
    remaining_quantity: int = attrs.field(default=0, metadata=_kis("psbl_qty"))
    order_division: str = attrs.field(default="", metadata=_kis("ord_dvsn_cd"))
    fund_manager_order_no: str = attrs.field(default="", metadata=_kis("mgco_aptm_odno"))
    exchange_code: str = attrs.field(default="", metadata=_kis("excg_dvsn_cd"))
    exchange_id: str = attrs.field(default="", metadata=_kis("excg_id_dvsn_cd"))
    exchange_id_name: str = attrs.field(default="", metadata=_kis("excg_id_dvsn_name"))
    stop_price: str = attrs.field(default="", metadata=_kis("stpm_cndt_pric"))
    stop_triggered: str = attrs.field(default="", metadata=_kis("stpm_efct_occr_yn"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PendingOrder:
        """Read one ``inquire-psbl-rvsecncl`` ``output`` row."""
        return structure_kis(cls, row)

    @classmethod
    def from_daily_order(cls, order: DailyOrder) -> PendingOrder:
        """The pending view of a day's order (paper, where KIS has no revisable-orders call)."""
        return cls(
            order_no=order.order_no,
            side=order.side,
            code=order.code,
            branch=order.branch,
            original_order_no=order.original_order_no,
            order_division_name=order.order_division_name,
            name=order.name,
            revise_cancel_name=order.extra.get("rvse_cncl_dvsn_name", ""),
            quantity=order.quantity,
            price=order.price,
            ordered_at=order.ordered_at,
            filled_quantity=order.filled_quantity,
            filled_amount=order.filled_amount,
            remaining_quantity=order.remaining_quantity,
            order_division=order.order_division,
            exchange_code=order.exchange_code,
            exchange_id=order.exchange_id,
            stop_price=order.stop_price,
            extra=dict(order.extra),
        )


@attrs.frozen
class Buyable:
    """What can be bought (``inquire-psbl-order`` ``output``), for ``code`` at
    ``unit_price`` (``psbl_qty_calc_unpr``, the price the quantities were computed at).

    ``max_buy_qty`` may use margin (미수); ``no_credit_buy_qty`` (``nrcvb_buy_qty``) does not.
    """

    code: str = attrs.field(metadata=_kis(None))
    orderable_cash: int = attrs.field(default=0, metadata=_kis("ord_psbl_cash"))
    orderable_substitute: int = attrs.field(default=0, metadata=_kis("ord_psbl_sbst"))
    reusable_amount: int = attrs.field(default=0, metadata=_kis("ruse_psbl_amt"))
    fund_redemption: int = attrs.field(default=0, metadata=_kis("fund_rpch_chgs"))
    unit_price: Decimal = attrs.field(default=Decimal(0), metadata=_kis("psbl_qty_calc_unpr"))
    no_credit_buy_amount: int = attrs.field(default=0, metadata=_kis("nrcvb_buy_amt"))
    no_credit_buy_qty: int = attrs.field(default=0, metadata=_kis("nrcvb_buy_qty"))
    max_buy_amount: int = attrs.field(default=0, metadata=_kis("max_buy_amt"))
    max_buy_qty: int = attrs.field(default=0, metadata=_kis("max_buy_qty"))
    cma_value: int = attrs.field(default=0, metadata=_kis("cma_evlu_amt"))
    overseas_reuse_krw: Decimal = attrs.field(
        default=Decimal(0), metadata=_kis("ovrs_re_use_amt_wcrc")
    )
    foreign_orderable_krw: Decimal = attrs.field(
        default=Decimal(0), metadata=_kis("ord_psbl_frcr_amt_wcrc")
    )
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_output(cls, code: str, output: Mapping[str, Any]) -> Buyable:
        return structure_kis(cls, output, code=code)


@attrs.frozen
class Sellable:
    """What can be sold of ``code``: ``inquire-psbl-sell`` ``output`` on real, the balance's
    holding on paper (:meth:`from_holding`; the fields the balance lacks stay ``0``).

    ``orderable_qty`` (``ord_psbl_qty``) is what a sell order may take now (holdings less open
    sell orders).
    """

    code: str = attrs.field(metadata=_kis("pdno"))
    buy_qty: int = attrs.field(default=0, metadata=_kis("buy_qty"))
    sell_qty: int = attrs.field(default=0, metadata=_kis("sll_qty"))
    balance_qty: int = attrs.field(default=0, metadata=_kis("cblc_qty"))
    non_savings_qty: int = attrs.field(default=0, metadata=_kis("nsvg_qty"))
    orderable_qty: int = attrs.field(default=0, metadata=_kis("ord_psbl_qty"))
    avg_price: Decimal = attrs.field(default=Decimal(0), metadata=_kis("pchs_avg_pric"))
    purchase_amount: int = attrs.field(default=0, metadata=_kis("pchs_amt"))
    price: int = attrs.field(default=0, metadata=_kis("now_pric"))
    value: int = attrs.field(default=0, metadata=_kis("evlu_amt"))
    profit: int = attrs.field(default=0, metadata=_kis("evlu_pfls_amt"))
    profit_rate: Decimal = attrs.field(default=Decimal(0), metadata=_kis("evlu_pfls_rt"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_output(cls, code: str, output: Mapping[str, Any]) -> Sellable:
        return structure_kis(cls, output, code=code)

    @classmethod
    def from_holding(cls, code: str, holding: Holding | None) -> Sellable:
        """The paper answer, from the balance (*holding* ``None``: nothing held)."""
        if holding is None:
            return cls(code=code)
        return cls(
            code=code,
            balance_qty=holding.quantity,
            orderable_qty=holding.orderable_quantity,
            avg_price=holding.avg_price,
            purchase_amount=holding.purchase_amount,
            price=holding.price,
            value=holding.value,
            profit=holding.profit,
            profit_rate=holding.profit_rate,
            extra=dict(holding.extra),
        )
