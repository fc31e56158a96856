"""Typed response models, structured from KIS's all-string JSON by one cattrs converter.

KIS sends every value as a string (its response envelope). Each model is a frozen attrs class
whose fields declare their KIS names in metadata (:func:`_kis`); :func:`structure_kis` renames a
KIS row to field names and lets the module's single :data:`converter` turn the strings into
``int`` / :class:`~decimal.Decimal` / :class:`~datetime.date` / ``bool``. Adding a model means
adding a class, not a parser.

Conversion rules (the converter's hooks):

- ``int``: ASCII digits with an optional sign (``"128500"``, ``"-1500"``, ``"+3"``); a decimal
  string whose fraction is all zeros is accepted (``"128500.00"``); ``""`` is ``0``. Anything
  else (``"1,234"``, ``"12a"``, ``"1.5"``, full-width digits) is an error.
- ``Decimal``: optional sign, digits, optional fraction (``"0.00"``, ``"-2.35"``,
  ``"129097.23"``); ``""`` is ``0``. No exponents, ``NaN`` or ``Infinity``.
- ``date``: ``"YYYYMMDD"``. ``bool``: ``"Y"`` true, ``"N"`` or ``""`` false.
- ``str``: surrounding whitespace stripped (paper messages are right-padded); leading zeros kept.
- A field missing from the row takes its default (documented per model); a *required* field
  that is missing is an error. KIS names are matched case-insensitively (order responses use
  upper case, inquiries lower case).
- Keys the model does not know are kept, raw, in ``extra`` (never an error).

Every problem raises :class:`ModelError` (a :class:`ValueError`) naming the model, the field and
its KIS name. Models hold market and account data only, never secrets; their reprs are safe.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import cache
from typing import Any, Final, Generic, TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError

from ._config import KST, Side
from ._errors import KISError, ValidationError
from ._validation import StockCode

__all__ = [
    "DEFAULT_SOURCE",
    "Balance",
    "BalanceSummary",
    "BatchResult",
    "DailyBar",
    "DailyOrder",
    "Holding",
    "ModelError",
    "OrderResult",
    "PriceBatch",
    "Quote",
    "ReconcileOutcome",
    "Reconciliation",
    "converter",
    "kis_names",
    "structure_kis",
    "to_kis_row",
]

T = TypeVar("T")
_M = TypeVar("_M", bound=attrs.AttrsInstance)

_KIS: Final = "kis"
#: The source name used when a model has only one KIS shape (or for its primary one).
DEFAULT_SOURCE: Final = ""


class ModelError(ValueError):
    """A KIS response could not be structured into a model.

    ``model`` is the class name; ``problems`` maps each bad field (``"price"``) to a description
    naming its KIS field and the offending value.
    """

    def __init__(self, model: str, problems: Mapping[str, str]) -> None:
        self.model = model
        self.problems = dict(problems)
        detail = "; ".join(f"{model}.{name}: {why}" for name, why in self.problems.items())
        super().__init__(f"cannot read {model} from the KIS response: {detail}")


class _BadValue(ValueError):
    """Raised by the converter hooks; turned into :class:`ModelError` with the field's name."""


def _kis(name: str | None, **by_source: str | None) -> dict[str, Any]:
    """Field metadata: the KIS name of a field, and per-source overrides (``None``: absent)."""
    return {_KIS: {DEFAULT_SOURCE: name, **by_source}}


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- the converter ----------------------------------------------------------------------------

_INT_RE: Final = re.compile(r"[+-]?[0-9]+(?:\.0*)?", re.ASCII)
_DECIMAL_RE: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_DATE_RE: Final = re.compile("[0-9]{8}", re.ASCII)
_WS: Final = " \t\n\r\x0b\x0c"
_SIDE_FROM_KIS: Final[dict[str, Side]] = {"01": "sell", "02": "buy", "sell": "sell", "buy": "buy"}
_SIDE_TO_KIS: Final[dict[str, str]] = {"sell": "01", "buy": "02"}


def _structure_int(value: object, _type: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip(_WS)
        if not text:
            return 0
        if _INT_RE.fullmatch(text):
            return int(text.split(".", 1)[0])
    raise _BadValue(f"expected an integer string like '128500' or '-1500', got {_show(value)}")


def _structure_decimal(value: object, _type: object) -> Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, str):
        text = value.strip(_WS)
        if not text:
            return Decimal(0)
        if _DECIMAL_RE.fullmatch(text):
            return Decimal(text)
    raise _BadValue(f"expected a decimal string like '0.00' or '-2.35', got {_show(value)}")


def _structure_date(value: object, _type: object) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATE_RE.fullmatch(value.strip(_WS)):
        text = value.strip(_WS)
        try:
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            pass
    raise _BadValue(f"expected a date 'YYYYMMDD', got {_show(value)}")


def _structure_bool(value: object, _type: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip(_WS)
        if text == "Y":
            return True
        if text in ("N", ""):
            return False
    raise _BadValue(f"expected 'Y' or 'N', got {_show(value)}")


def _structure_str(value: object, _type: object) -> str:
    if isinstance(value, str):
        return value.strip(_WS)
    raise _BadValue(f"expected a string, got {_show(value)}")


def _structure_side(value: object, _type: object) -> Side:
    if isinstance(value, str) and value.strip(_WS) in _SIDE_FROM_KIS:
        return _SIDE_FROM_KIS[value.strip(_WS)]
    raise _BadValue(f"expected '01' (sell) or '02' (buy), got {_show(value)}")


def _structure_extra(value: object, _type: object) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {str(k): _as_text(v) for k, v in value.items()}
    raise _BadValue(f"expected a mapping, got {_show(value)}")


def _as_text(value: object) -> str:
    """An unknown field's value as text: strings unchanged, ``None`` as ``""``."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _is_side(type_: object) -> bool:
    return bool(type_ == Side)


def _is_extra(type_: object) -> bool:
    return bool(type_ == dict[str, str])


def _unstructure_decimal(value: Decimal) -> str:
    return format(value, "f")


#: The module's one converter. Its hooks implement the conversion rules in the module docstring;
#: :func:`structure_kis` and :func:`to_kis_row` are the only ways models meet raw KIS rows.
converter: Final = cattrs.Converter(detailed_validation=True)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(Decimal, _structure_decimal)
converter.register_structure_hook(dt.date, _structure_date)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook_func(_is_extra, _structure_extra)
converter.register_structure_hook_func(_is_side, _structure_side)
converter.register_unstructure_hook(int, str)
converter.register_unstructure_hook(str, str)
converter.register_unstructure_hook(Decimal, _unstructure_decimal)
converter.register_unstructure_hook(dt.date, lambda d: d.strftime("%Y%m%d"))
converter.register_unstructure_hook(bool, lambda b: "Y" if b else "N")
converter.register_unstructure_hook_func(_is_side, lambda s: _SIDE_TO_KIS[s])


def kis_names(cls: type[attrs.AttrsInstance], source: str = DEFAULT_SOURCE) -> dict[str, str]:
    """Map each attribute of *cls* that is read from *source* to its KIS field name.

    Attributes with no KIS name there (``Quote.code`` from inquire-price, ``extra``) are absent.
    """
    return dict(_kis_names(cls, source))


@cache
def _kis_names(cls: type[attrs.AttrsInstance], source: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for field in attrs.fields(cls):
        by_source = field.metadata.get(_KIS)
        if by_source is None:
            continue
        name = by_source.get(source, by_source[DEFAULT_SOURCE])
        if name is not None:
            names[field.name] = name
    return names


@cache
def _lookup(cls: type[attrs.AttrsInstance], source: str) -> dict[str, str]:
    """Lower-case KIS field name → attribute name."""
    return {kis.lower(): attr for attr, kis in _kis_names(cls, source).items()}


def structure_kis(
    cls: type[_M],
    row: Mapping[str, Any],
    source: str = DEFAULT_SOURCE,
    **given: Any,
) -> _M:
    """Build a *cls* from a KIS row, per the rules in the module docstring.

    *source* picks the KIS field names when a model is read from several responses (``Quote``:
    ``""`` for inquire-price, ``"multprice"``). Keyword arguments set fields directly (structured
    by the same hooks) and take precedence over the row. Unknown keys go to ``extra``. Raises
    :class:`ModelError`.
    """
    model = cls.__name__
    if not isinstance(row, Mapping):
        raise ModelError(model, {"(row)": f"expected a JSON object, got {type(row).__name__}"})
    names = _lookup(cls, source)
    data: dict[str, Any] = dict(given)
    extra: dict[str, object] = {}
    for key, value in row.items():
        attr = names.get(str(key).lower())
        if attr is None:
            extra[str(key)] = value
        elif attr not in data:
            data[attr] = value
    data["extra"] = extra
    kis_of = _kis_names(cls, source)
    missing = {
        field.name: f"required KIS field {kis_of.get(field.name, field.name)!r} is missing"
        for field in attrs.fields(cls)
        if field.default is attrs.NOTHING and field.name not in data
    }
    if missing:
        raise ModelError(model, missing)
    try:
        return converter.structure(data, cls)
    except ClassValidationError as exc:
        problems: dict[str, str] = {}
        with_notes, without = exc.group_exceptions()
        for error, note in with_notes:
            where = f"KIS field {kis_of[note.name]!r}" if note.name in kis_of else "value"
            problems[note.name] = f"{where}: {error}"
        for error in without:
            problems.setdefault("(row)", str(error))
        raise ModelError(model, problems) from exc


def to_kis_row(model: attrs.AttrsInstance, source: str = DEFAULT_SOURCE) -> dict[str, str]:
    """Render *model* back into a KIS row of strings (the inverse of :func:`structure_kis`).

    ``extra`` is merged in first; fields without a KIS name for *source* are left out. Integers
    render as plain digits, decimals without exponent, dates as ``YYYYMMDD``, flags as ``Y``/``N``,
    ``None`` as ``""``. Used by the fake server and by round-trip tests.
    """
    cls = type(model)
    row: dict[str, str] = dict(getattr(model, "extra", {}))
    attr_to_kis = _kis_names(cls, source)
    for field in attrs.fields(cls):
        kis = attr_to_kis.get(field.name)
        if kis is None:
            continue
        value = getattr(model, field.name)
        if value is None:
            row[kis] = ""
        elif field.type is not None and isinstance(value, str) and _is_side(field.type):
            row[kis] = converter.unstructure(value, unstructure_as=field.type)
        else:
            row[kis] = converter.unstructure(value, unstructure_as=type(value))
    return row


def _is_blank(row: object) -> bool:
    """A padding row: a mapping whose values are all empty (``{}`` included)."""
    return isinstance(row, Mapping) and all(_as_text(v).strip(_WS) == "" for v in row.values())


def _bare_code(raw: object) -> object:
    """``"Q530036"`` / ``"A005930"`` → the 6-character code; anything else unchanged."""
    if isinstance(raw, str):
        text = raw.strip(_WS)
        if len(text) == 7 and text[0] in "AQ":
            return text[1:]
    return raw


# --- quotes -----------------------------------------------------------------------------------


@attrs.frozen
class Quote:
    """A current-price snapshot of one code.

    Read from inquire-price ``output`` (:meth:`from_inquire_price`) or one row of
    intstock-multprice ``output`` (:meth:`from_multprice`). Prices and amounts are KRW integers;
    ``change_rate`` is a percentage. Required: ``price`` (and ``code``). Every other field
    defaults when the source omits it: numbers ``0``, ``name`` / ``change_sign`` /
    ``market_warning`` ``""``, ``halted`` ``False``, ``prev_close`` ``None``. inquire-price has no
    name or previous close; intstock-multprice has no warning code or halt flag.
    """

    code: str = attrs.field(metadata=_kis(None, multprice="inter_shrn_iscd"))
    price: int = attrs.field(metadata=_kis("stck_prpr", multprice="inter2_prpr"))
    name: str = attrs.field(default="", metadata=_kis(None, multprice="inter_kor_isnm"))
    change: int = attrs.field(default=0, metadata=_kis("prdy_vrss", multprice="inter2_prdy_vrss"))
    #: ``prdy_vrss_sign``: 1 upper limit, 2 up, 3 unchanged, 4 lower limit, 5 down.
    change_sign: str = attrs.field(default="", metadata=_kis("prdy_vrss_sign"))
    change_rate: Decimal = attrs.field(default=Decimal(0), metadata=_kis("prdy_ctrt"))
    volume: int = attrs.field(default=0, metadata=_kis("acml_vol"))
    traded_value: int = attrs.field(default=0, metadata=_kis("acml_tr_pbmn"))
    open: int = attrs.field(default=0, metadata=_kis("stck_oprc", multprice="inter2_oprc"))
    high: int = attrs.field(default=0, metadata=_kis("stck_hgpr", multprice="inter2_hgpr"))
    low: int = attrs.field(default=0, metadata=_kis("stck_lwpr", multprice="inter2_lwpr"))
    upper_limit: int = attrs.field(default=0, metadata=_kis("stck_mxpr", multprice="inter2_mxpr"))
    lower_limit: int = attrs.field(default=0, metadata=_kis("stck_llam", multprice="inter2_llam"))
    base_price: int = attrs.field(default=0, metadata=_kis("stck_sdpr", multprice="inter2_sdpr"))
    prev_close: int | None = attrs.field(
        default=None, metadata=_kis(None, multprice="inter2_prdy_clpr")
    )
    #: ``mrkt_warn_cls_code``: 00 none, 01 투자주의, 02 투자경고, 03 투자위험.
    market_warning: str = attrs.field(
        default="", metadata=_kis("mrkt_warn_cls_code", multprice=None)
    )
    halted: bool = attrs.field(default=False, metadata=_kis("temp_stop_yn", multprice=None))
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_inquire_price(cls, code: str | StockCode, output: Mapping[str, Any]) -> Quote:
        """Read inquire-price's ``output`` object for *code* (its 6-character form is kept)."""
        bare = code.code if isinstance(code, StockCode) else code
        return structure_kis(cls, output, code=bare)

    @classmethod
    def from_multprice(cls, row: Mapping[str, Any]) -> Quote:
        """Read one row of intstock-multprice's ``output`` array.

        ``code`` comes from ``inter_shrn_iscd``, with an ``A``/``Q`` type prefix removed so that
        ``code`` is always the 6-character form (as in :meth:`from_inquire_price`).
        """
        if isinstance(row, Mapping):
            for key, value in row.items():
                if str(key).lower() == "inter_shrn_iscd":
                    return structure_kis(cls, row, "multprice", code=_bare_code(value))
        return structure_kis(cls, row, "multprice")


@attrs.frozen
class DailyBar:
    """One daily (or weekly/monthly) bar from inquire-daily-price ``output`` or
    inquire-daily-itemchartprice ``output2``. Required: ``date`` and ``close``; other numbers are
    ``0`` when absent (inquire-daily-price has no ``acml_tr_pbmn``, so ``traded_value`` is 0)."""

    date: dt.date = attrs.field(metadata=_kis("stck_bsop_date"))
    close: int = attrs.field(metadata=_kis("stck_clpr"))
    open: int = attrs.field(default=0, metadata=_kis("stck_oprc"))
    high: int = attrs.field(default=0, metadata=_kis("stck_hgpr"))
    low: int = attrs.field(default=0, metadata=_kis("stck_lwpr"))
    volume: int = attrs.field(default=0, metadata=_kis("acml_vol"))
    traded_value: int = attrs.field(default=0, metadata=_kis("acml_tr_pbmn"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DailyBar:
        """Read one bar row."""
        return structure_kis(cls, row)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> tuple[DailyBar, ...]:
        """Read every bar row in order, skipping blank rows (``{}`` or all values ``""``), which
        KIS sends as padding when a range has no data."""
        return tuple(cls.from_row(row) for row in rows if not _is_blank(row))


# --- balance ----------------------------------------------------------------------------------


@attrs.frozen
class Holding:
    """One row of inquire-balance ``output1``. Required: ``code``; numbers default to ``0``.

    A holding sold out today stays listed with ``quantity == 0`` until D+2.
    """

    code: str = attrs.field(metadata=_kis("pdno"))
    name: str = attrs.field(default="", metadata=_kis("prdt_name"))
    quantity: int = attrs.field(default=0, metadata=_kis("hldg_qty"))
    orderable_quantity: int = attrs.field(default=0, metadata=_kis("ord_psbl_qty"))
    avg_price: Decimal = attrs.field(default=Decimal(0), metadata=_kis("pchs_avg_pric"))
    purchase_amount: int = attrs.field(default=0, metadata=_kis("pchs_amt"))
    price: int = attrs.field(default=0, metadata=_kis("prpr"))
    value: int = attrs.field(default=0, metadata=_kis("evlu_amt"))
    profit: int = attrs.field(default=0, metadata=_kis("evlu_pfls_amt"))
    profit_rate: Decimal = attrs.field(default=Decimal(0), metadata=_kis("evlu_pfls_rt"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Holding:
        """Read one ``output1`` row."""
        return structure_kis(cls, row)


@attrs.frozen
class BalanceSummary:
    """inquire-balance ``output2`` (its first element). KRW integers. Required: ``cash``."""

    #: ``dnca_tot_amt`` 예수금총금액.
    cash: int = attrs.field(metadata=_kis("dnca_tot_amt"))
    #: ``nxdy_excc_amt`` 익일정산금액 (cash after D+1 settlement).
    cash_d1: int = attrs.field(default=0, metadata=_kis("nxdy_excc_amt"))
    #: ``prvs_rcdl_excc_amt`` 가수도정산금액 (cash after D+2 settlement).
    cash_d2: int = attrs.field(default=0, metadata=_kis("prvs_rcdl_excc_amt"))
    total_value: int = attrs.field(default=0, metadata=_kis("tot_evlu_amt"))
    net_assets: int = attrs.field(default=0, metadata=_kis("nass_amt"))
    #: ``bfdy_tot_asst_evlu_amt`` 전일총자산평가금액: the total assets at the previous close.
    previous_total: int = attrs.field(default=0, metadata=_kis("bfdy_tot_asst_evlu_amt"))
    securities_value: int = attrs.field(default=0, metadata=_kis("scts_evlu_amt"))
    purchase_amount_total: int = attrs.field(default=0, metadata=_kis("pchs_amt_smtl_amt"))
    value_total: int = attrs.field(default=0, metadata=_kis("evlu_amt_smtl_amt"))
    total_profit: int = attrs.field(default=0, metadata=_kis("evlu_pfls_smtl_amt"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> BalanceSummary:
        """Read the ``output2`` object."""
        return structure_kis(cls, row)


@attrs.frozen
class Balance:
    """An account's holdings and summary. An empty account is a valid ``Balance`` (no holdings,
    :attr:`is_empty` true), never an error."""

    holdings: tuple[Holding, ...]
    summary: BalanceSummary

    @property
    def is_empty(self) -> bool:
        """No holding with a positive quantity (rows sold out today do not count)."""
        return not any(h.quantity > 0 for h in self.holdings)

    @property
    def held(self) -> tuple[Holding, ...]:
        """The holdings with a positive quantity."""
        return tuple(h for h in self.holdings if h.quantity > 0)

    @classmethod
    def from_outputs(
        cls,
        output1: Sequence[Mapping[str, Any]],
        output2: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    ) -> Balance:
        """Build from inquire-balance's ``output1`` (all pages, concatenated) and ``output2``
        (the array, whose first element is used, or that element itself). An empty ``output2``
        raises :class:`ModelError`: a successful balance always carries a summary."""
        if isinstance(output2, Mapping):
            summary_row: Mapping[str, Any] = output2
        elif output2:
            summary_row = output2[0]
        else:
            raise ModelError("Balance", {"summary": "output2 is empty"})
        return cls(
            holdings=tuple(Holding.from_row(row) for row in output1),
            summary=BalanceSummary.from_row(summary_row),
        )

    @classmethod
    def from_rows(
        cls, holdings: Iterable[Mapping[str, Any]], summary: Mapping[str, Any]
    ) -> Balance:
        """Build from holding rows (``output1`` of every page) and one ``output2`` object.

        Blank holding rows are skipped. The summary must carry ``dnca_tot_amt``; an empty
        summary raises :class:`ModelError` rather than pretending the cash is zero.
        """
        return cls(
            holdings=tuple(Holding.from_row(row) for row in holdings if not _is_blank(row)),
            summary=BalanceSummary.from_row(summary),
        )


# --- orders -----------------------------------------------------------------------------------


@attrs.frozen
class OrderResult:
    """An accepted cash order (order-cash ``output`` plus the envelope's message).

    ``order_no`` (``ODNO``) keeps its leading zeros; ``ordered_at_hhmmss`` is ``ORD_TMD`` as sent.
    Required: ``order_no``.
    """

    order_no: str = attrs.field(metadata=_kis("ODNO"))
    branch: str = attrs.field(default="", metadata=_kis("KRX_FWDG_ORD_ORGNO"))
    ordered_at_hhmmss: str = attrs.field(default="", metadata=_kis("ORD_TMD"))
    msg_cd: str = attrs.field(default="", metadata=_kis(None))
    msg1: str = attrs.field(default="", metadata=_kis(None))
    extra: dict[str, str] = attrs.field(factory=dict)
    #: What was ordered, kept from the request (not in KIS's answer) so that
    #: ``revise_order`` / ``cancel_order`` need no look-up: side, code, quantity, limit price
    #: (``None``: no price) and ``ORD_DVSN``; ``None`` / ``""`` on a result built from an answer
    #: alone.
    side: Side | None = attrs.field(default=None, metadata=_kis(None))
    code: str = attrs.field(default="", metadata=_kis(None))
    quantity: int | None = attrs.field(default=None, metadata=_kis(None))
    price: int | None = attrs.field(default=None, metadata=_kis(None))
    order_division: str = attrs.field(default="", metadata=_kis(None))

    @classmethod
    def from_output(
        cls,
        output: Mapping[str, Any],
        msg_cd: str = "",
        msg1: str = "",
        request: Mapping[str, Any] | None = None,
    ) -> OrderResult:
        """Read order-cash (or order-rvsecncl) ``output`` with the envelope's message; the
        order's terms come from *request* (the call's ``request`` record) when given."""
        result = structure_kis(cls, output, msg_cd=msg_cd, msg1=msg1)
        if not request:
            return result
        side = request.get("side")
        qty, price = request.get("qty"), request.get("price")
        return attrs.evolve(
            result,
            side=side if side in ("buy", "sell") else None,
            code=str(request.get("code") or ""),
            quantity=qty if isinstance(qty, int) else None,
            price=price if isinstance(price, int) else None,
            order_division=str(request.get("ord_dvsn") or ""),
        )

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> OrderResult:
        """Read a successful order response body (``{"rt_cd", "msg_cd", "msg1", "output"}``)."""
        output = body.get("output") if isinstance(body, Mapping) else None
        if not isinstance(output, Mapping):
            raise ModelError(cls.__name__, {"(row)": "the response has no 'output' object"})
        return cls.from_output(output, body.get("msg_cd", ""), body.get("msg1", ""))


@attrs.frozen
class DailyOrder:
    """One row of inquire-daily-ccld ``output1``: an order of the day and its fills.

    ``side`` is ``"sell"`` for ``sll_buy_dvsn_cd`` ``01`` and ``"buy"`` for ``02``. Required:
    ``order_date``, ``order_no``, ``side``, ``code``; numbers default to ``0``, text to ``""``.
    """

    order_date: dt.date = attrs.field(metadata=_kis("ord_dt"))
    order_no: str = attrs.field(metadata=_kis("odno"))
    side: Side = attrs.field(metadata=_kis("sll_buy_dvsn_cd"))
    code: str = attrs.field(metadata=_kis("pdno"))
    branch: str = attrs.field(default="", metadata=_kis("ord_gno_brno"))
    original_order_no: str = attrs.field(default="", metadata=_kis("orgn_odno"))
    name: str = attrs.field(default="", metadata=_kis("prdt_name"))
    quantity: int = attrs.field(default=0, metadata=_kis("ord_qty"))
    price: int = attrs.field(default=0, metadata=_kis("ord_unpr"))
    ordered_at: str = attrs.field(default="", metadata=_kis("ord_tmd"))
    filled_quantity: int = attrs.field(default=0, metadata=_kis("tot_ccld_qty"))
    avg_fill_price: Decimal = attrs.field(default=Decimal(0), metadata=_kis("avg_prvs"))
    cancelled: bool = attrs.field(default=False, metadata=_kis("cncl_yn"))
    filled_amount: int = attrs.field(default=0, metadata=_kis("tot_ccld_amt"))
    remaining_quantity: int = attrs.field(default=0, metadata=_kis("rmn_qty"))
    rejected_quantity: int = attrs.field(default=0, metadata=_kis("rjct_qty"))
    #: ``ord_dvsn_cd``: ``"00"`` limit, ``"01"`` market, ... (``""`` when the row has none).
    order_division: str = attrs.field(default="", metadata=_kis("ord_dvsn_cd"))
    # The other documented output1 fields (KIS's 주식일별주문체결조회 documentation). Codes and
    # times stay text.
    order_division_name: str = attrs.field(default="", metadata=_kis("ord_dvsn_name"))
    side_name: str = attrs.field(default="", metadata=_kis("sll_buy_dvsn_cd_name"))
    loan_date: str = attrs.field(default="", metadata=_kis("loan_dt"))
    orderer_employee_no: str = attrs.field(default="", metadata=_kis("ordr_empno"))
    #: ``cnc_cfrm_qty`` (취소확인수량; KIS's spelling, not ``cncl_cfrm_qty``).
    cancel_confirmed_quantity: int = attrs.field(default=0, metadata=_kis("cnc_cfrm_qty"))
    fill_condition_name: str = attrs.field(default="", metadata=_kis("ccld_cndt_name"))
    inquiry_ip: str = attrs.field(default="", metadata=_kis("inqr_ip_addr"))
    receipt_division: str = attrs.field(default="", metadata=_kis("cpbc_ordp_ord_rcit_dvsn_cd"))
    notice_method: str = attrs.field(default="", metadata=_kis("cpbc_ordp_infm_mthd_dvsn_cd"))
    notified_at: str = attrs.field(default="", metadata=_kis("infm_tmd"))
    contact_phone: str = attrs.field(default="", metadata=_kis("ctac_tlno"))
    product_type: str = attrs.field(default="", metadata=_kis("prdt_type_cd"))
    exchange_code: str = attrs.field(default="", metadata=_kis("excg_dvsn_cd"))
    material_division: str = attrs.field(default="", metadata=_kis("cpbc_ordp_mtrl_dvsn_cd"))
    order_org_no: str = attrs.field(default="", metadata=_kis("ord_orgno"))
    reservation_end_date: str = attrs.field(default="", metadata=_kis("rsvn_ord_end_dt"))
    stop_price: str = attrs.field(default="", metadata=_kis("stpm_cndt_pric"))
    stop_triggered_at: str = attrs.field(default="", metadata=_kis("stpm_efct_occr_dtmd"))
    extra: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DailyOrder:
        """Read one ``output1`` row."""
        return structure_kis(cls, row)

    @property
    def exchange_id(self) -> str:
        """``excg_id_dvsn_Cd`` (KRX / NXT / SOR; documented with a capital ``C``, also sent as
        ``excg_id_dvsn_cd``), kept raw in :attr:`extra` under the name the row used."""
        for key, value in self.extra.items():
            if key.lower() == "excg_id_dvsn_cd":
                return value.strip()
        return ""

    @property
    def is_original(self) -> bool:
        """Whether this row is an order as placed, not a revision or cancellation of another.

        A revision or cancellation row names the order it changes in ``orgn_odno``
        (:attr:`original_order_no`; blank or all zeros on an original order) and, where the
        row carries it, says so in ``rvse_cncl_dvsn_name`` / ``rvse_cncl_dvsn_cd``.
        """
        if self.original_order_no.strip().strip("0"):
            return False
        kind = self.extra.get("rvse_cncl_dvsn_name", "").strip()
        code = self.extra.get("rvse_cncl_dvsn_cd", "").strip()
        return kind not in ("정정", "취소") and code not in ("01", "02")

    @property
    def ordered_at_kst(self) -> dt.datetime | None:
        """``ord_dt`` + ``ord_tmd`` as an aware KST time on KIS's clock (``None`` if
        ``ord_tmd`` is not ``HHMMSS``)."""
        text = self.ordered_at.strip()
        if len(text) != 6 or not text.isascii() or not text.isdigit():
            return None
        try:
            clock = dt.time(int(text[:2]), int(text[2:4]), int(text[4:]))
        except ValueError:
            return None
        return dt.datetime.combine(self.order_date, clock, tzinfo=KST)


class ReconcileOutcome(enum.StrEnum):
    """What a reconciliation established about an order whose answer was lost.

    ``FOUND``: the order is among the day's orders. ``ABSENT``: it is certainly not, and can no
    longer arrive (the settle window has passed on KIS's clock): sending it again is safe.
    ``UNKNOWN``: neither is certain yet (not visible, or the look-up failed): do **not** resend.
    """

    FOUND = "found"
    ABSENT = "absent"
    UNKNOWN = "unknown"


@attrs.frozen
class Reconciliation:
    """The answer of ``reconcile_order``.

    ``order``: the matching row when ``FOUND``. ``lookups``: inquiries made. ``settle_until``:
    the moment (KST, on KIS's clock) after which a still-missing order is certainly absent.
    ``reason``: a human-readable explanation (no account data).
    """

    outcome: ReconcileOutcome
    order: DailyOrder | None = None
    lookups: int = 0
    settle_until: dt.datetime | None = None
    reason: str = ""

    @property
    def found(self) -> bool:
        return self.outcome is ReconcileOutcome.FOUND

    @property
    def absent(self) -> bool:
        """True only when absence is certain: the one case in which resending is safe."""
        return self.outcome is ReconcileOutcome.ABSENT

    @property
    def unknown(self) -> bool:
        return self.outcome is ReconcileOutcome.UNKNOWN


# --- batches ----------------------------------------------------------------------------------


#: How many failed codes a :class:`BatchResult` repr names.
_REPR_FAILED: Final = 5


@attrs.define(repr=False)
class BatchResult(Generic[T]):
    """The outcome of a call over many codes: partial success is normal, not an exception.

    ``succeeded`` maps each code to its result, ``failed`` maps each code to the exception that
    stopped it (a :class:`~kisclient.KISError`, or the :class:`~kisclient.ValidationError` of a
    code that is not one); a code is in exactly one of them. ``requests`` counts the HTTP
    requests the batch made, every attempt included (retries, failures), and
    ``elapsed_s`` is the wall time of the whole batch. ``len()`` is the number of codes covered
    (both maps), so an empty batch is falsy; :attr:`ok` is true when nothing failed.

    Mutable, unlike the models: a client fills one in as the requests of a batch settle. Its
    repr counts rather than lists: a batch over the market holds thousands of results, and a
    repr of them all is megabytes (asyncio builds one of a finished main task's result).
    """

    succeeded: dict[str, T] = attrs.field(factory=dict)
    failed: dict[str, KISError | ValidationError] = attrs.field(factory=dict)
    elapsed_s: float = 0.0
    requests: int = 0

    def __len__(self) -> int:
        return len(self.succeeded) + len(self.failed)

    def __repr__(self) -> str:
        shown = sorted(self.failed)[:_REPR_FAILED]
        more = len(self.failed) - len(shown)
        failed = ", ".join(shown) + (f", ... {more} more" if more else "")
        return (
            f"BatchResult({len(self.succeeded)} succeeded, {len(self.failed)} failed"
            f"{f' ({failed})' if failed else ''}, elapsed_s={self.elapsed_s:.3f}, "
            f"requests={self.requests})"
        )

    @property
    def ok(self) -> bool:
        """True when no code failed."""
        return not self.failed


#: The result of a batch quote fetch: code → :class:`Quote`.
PriceBatch = BatchResult[Quote]

for _cls in (
    Quote,
    DailyBar,
    Holding,
    BalanceSummary,
    Balance,
    OrderResult,
    DailyOrder,
    Reconciliation,
):
    attrs.resolve_types(_cls)
