"""The WebSocket fake's payloads: trade and order-book records, execution notices, AES.

Field lists follow KIS's documented order. Every value is a string; records are ``^``-joined and a
bundle is its records ``^``-joined with no separator between records. The builders read the fake's
state and must run with ``core.lock`` held; they never log.
"""

from __future__ import annotations

import base64
import random

import attrs

from kisclient._aes import CbcCipher

from ._core import BRANCH, Core
from ._quotes import price_snapshot
from ._state import FakeApp, OrderEvent
from ._universe import tick_size

__all__ = [
    "NOTICE_FIELDS",
    "ORDERBOOK_FIELDS",
    "PROBE",
    "TRADE_FIELDS",
    "Tape",
    "decrypt_notice",
    "encrypt_notice",
    "notice_plaintext",
    "orderbook_record",
    "trade_records",
]


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: H0STCNT0 (and H0NXCNT0 / H0UNCNT0) record, the 46 documented fields.
TRADE_FIELDS: tuple[str, ...] = _names(
    "MKSC_SHRN_ISCD STCK_CNTG_HOUR STCK_PRPR PRDY_VRSS_SIGN PRDY_VRSS PRDY_CTRT "
    "WGHN_AVRG_STCK_PRC STCK_OPRC STCK_HGPR STCK_LWPR ASKP1 BIDP1 CNTG_VOL ACML_VOL "
    "ACML_TR_PBMN SELN_CNTG_CSNU SHNU_CNTG_CSNU NTBY_CNTG_CSNU CTTR SELN_CNTG_SMTN "
    "SHNU_CNTG_SMTN CCLD_DVSN SHNU_RATE PRDY_VOL_VRSS_ACML_VOL_RATE OPRC_HOUR "
    "OPRC_VRSS_PRPR_SIGN OPRC_VRSS_PRPR HGPR_HOUR HGPR_VRSS_PRPR_SIGN HGPR_VRSS_PRPR LWPR_HOUR "
    "LWPR_VRSS_PRPR_SIGN LWPR_VRSS_PRPR BSOP_DATE NEW_MKOP_CLS_CODE TRHT_YN ASKP_RSQN1 "
    "BIDP_RSQN1 TOTAL_ASKP_RSQN TOTAL_BIDP_RSQN VOL_TNRT PRDY_SMNS_HOUR_ACML_VOL "
    "PRDY_SMNS_HOUR_ACML_VOL_RATE HOUR_CLS_CODE MRKT_TRTM_CLS_CODE VI_STND_PRC"
)

#: H0STASP0 record, 59 fields.
ORDERBOOK_FIELDS: tuple[str, ...] = (
    "MKSC_SHRN_ISCD",
    "BSOP_HOUR",
    "HOUR_CLS_CODE",
    *(f"ASKP{i}" for i in range(1, 11)),
    *(f"BIDP{i}" for i in range(1, 11)),
    *(f"ASKP_RSQN{i}" for i in range(1, 11)),
    *(f"BIDP_RSQN{i}" for i in range(1, 11)),
    *_names(
        "TOTAL_ASKP_RSQN TOTAL_BIDP_RSQN OVTM_TOTAL_ASKP_RSQN OVTM_TOTAL_BIDP_RSQN ANTC_CNPR "
        "ANTC_CNQN ANTC_VOL ANTC_CNTG_VRSS ANTC_CNTG_VRSS_SIGN ANTC_CNTG_PRDY_CTRT ACML_VOL "
        "TOTAL_ASKP_RSQN_ICDC TOTAL_BIDP_RSQN_ICDC OVTM_TOTAL_ASKP_ICDC OVTM_TOTAL_BIDP_ICDC "
        "STCK_DEAL_CLS_CODE"
    ),
)

#: H0STCNI0 / H0STCNI9 execution notice, 26 fields (the layout since 2025-03).
NOTICE_FIELDS: tuple[str, ...] = _names(
    "CUST_ID ACNT_NO ODER_NO OODER_NO SELN_BYOV_CLS RCTF_CLS ODER_KIND ODER_COND STCK_SHRN_ISCD "
    "CNTG_QTY CNTG_UNPR STCK_CNTG_HOUR RFUS_YN CNTG_YN ACPT_YN BRNC_NO ODER_QTY ACNT_NAME "
    "ORD_COND_PRC ORD_EXG_GB POPUP_YN FILLER CRDT_CLS CRDT_LOAN_DATE CNTG_ISNM40 ODER_PRC"
)

#: Placeholder the latency probe replaces with ``time.perf_counter_ns()`` at send time.
PROBE = "\x00PROBE\x00"

assert len(TRADE_FIELDS) == 46
assert len(ORDERBOOK_FIELDS) == 59
assert len(NOTICE_FIELDS) == 26


@attrs.define
class Tape:
    """Running totals of one code's fake trade tape (so ``ACML_VOL`` only grows)."""

    acml_vol: int = 0
    seln_csnu: int = 0
    shnu_csnu: int = 0
    seln_smtn: int = 0
    shnu_smtn: int = 0


def _sign(diff: int) -> str:
    return "2" if diff > 0 else "5" if diff < 0 else "3"


def _fit(fields: list[str], width: int, extra: str) -> list[str]:
    """*fields* cut or padded to *width*; the first padding field is *extra*, then ``"0"``."""
    if width <= len(fields):
        return fields[:width]
    return [*fields, extra, *(["0"] * (width - len(fields) - 1))]


def trade_records(
    core: Core,
    code: str,
    count: int,
    tape: Tape,
    rng: random.Random,
    *,
    width: int = 46,
    extra: str = "0",
) -> list[str]:
    """*count* ``^``-joined trade records for *code* at the fake's current price.

    *width* is the record width (46 documented; 47 adds *extra*, e.g. :data:`PROBE`).
    :class:`KeyError` if *code* is not listed. Call with ``core.lock`` held.
    """
    listing = core.universe.get(code)
    if listing is None:
        raise KeyError(code)
    snap = price_snapshot(core, listing)
    price: int = snap["price"]
    bar = snap["bar"]
    now = core.now()
    hour, date = now.strftime("%H%M%S"), core.session_day().strftime("%Y%m%d")
    tick = tick_size(price, listing.kind)
    high, low = max(bar.high, price), min(bar.low, price)
    records = []
    for _ in range(count):
        volume = rng.randint(1, 500)
        buy = rng.random() < 0.5
        tape.acml_vol += volume
        if buy:
            tape.shnu_csnu += 1
            tape.shnu_smtn += volume
        else:
            tape.seln_csnu += 1
            tape.seln_smtn += volume
        strength = tape.shnu_smtn * 100 / tape.seln_smtn if tape.seln_smtn else 100.0
        ask_rsqn, bid_rsqn = rng.randint(1, 5000), rng.randint(1, 5000)
        fields = [
            listing.code,
            hour,
            str(price),
            snap["sign"],
            str(snap["change"]),
            snap["rate"],
            f"{price:.2f}",
            str(bar.open),
            str(high),
            str(low),
            str(price + tick),
            str(price),
            str(volume),
            str(tape.acml_vol),
            str(tape.acml_vol * price),
            str(tape.seln_csnu),
            str(tape.shnu_csnu),
            str(tape.shnu_csnu - tape.seln_csnu),
            f"{strength:.2f}",
            str(tape.seln_smtn),
            str(tape.shnu_smtn),
            "1" if buy else "5",
            f"{tape.shnu_smtn * 100 / tape.acml_vol:.2f}",
            "0.00",
            "090000",
            _sign(price - bar.open),
            str(price - bar.open),
            "090000",
            _sign(price - high),
            str(price - high),
            "090000",
            _sign(price - low),
            str(price - low),
            date,
            "20",
            "Y" if listing.halted else "N",
            str(ask_rsqn),
            str(bid_rsqn),
            str(ask_rsqn * 10),
            str(bid_rsqn * 10),
            "0.01",
            "0",
            "0.00",
            "0",
            "",
            str(snap["prev"]),
        ]
        records.append("^".join(_fit(fields, width, extra)))
    return records


def orderbook_record(
    core: Core, code: str, tape: Tape, rng: random.Random, *, width: int = 59
) -> str:
    """One ``^``-joined order-book record for *code*: ten asks from one tick above the current
    price up, ten bids from the current price down, random plausible quantities.
    :class:`KeyError` if *code* is not listed. Call with ``core.lock`` held."""
    listing = core.universe.get(code)
    if listing is None:
        raise KeyError(code)
    price = core.price_of(listing.code)
    asks, bids = [], []
    ask, bid = price, price
    for _ in range(10):
        ask += tick_size(ask, listing.kind)
        asks.append(ask)
        bids.append(bid)
        bid = max(bid - tick_size(max(bid - 1, 1), listing.kind), 1)
    ask_q = [rng.randint(1, 20_000) for _ in range(10)]
    bid_q = [rng.randint(1, 20_000) for _ in range(10)]
    fields = [
        listing.code,
        core.now().strftime("%H%M%S"),
        "0",
        *map(str, asks),
        *map(str, bids),
        *map(str, ask_q),
        *map(str, bid_q),
        str(sum(ask_q)),
        str(sum(bid_q)),
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "3",
        "0.00",
        str(tape.acml_vol),
        "0",
        "0",
        "0",
        "0",
        "0",
    ]
    return "^".join(_fit(fields, width, "0"))


def notice_plaintext(core: Core, app: FakeApp, event: OrderEvent, *, width: int = 26) -> str:
    """The execution notice for *event* of *app*, ``^``-joined, *width* fields (26 documented;
    fewer cuts the tail, more appends ``"0"`` fields). Call with ``core.lock`` held.

    CNTG_YN ``2`` for a fill (CNTG_QTY / CNTG_UNPR: the fill's quantity and price), otherwise
    ``1`` with the order's quantity and price there; RCTF_CLS ``0`` / ``1`` revise / ``2``
    cancel; RFUS_YN ``1`` only for a refusal; ACPT_YN ``1`` for a new order's acceptance and a
    refusal, ``2`` otherwise. ACNT_NO is the 8 + 2 account digits, CUST_ID the HTS ID.
    """
    listing = core.universe.get(event.code)
    fill = event.kind == "filled"
    account = app.account.replace("-", "")
    fields = [
        app.hts_id,
        account,
        event.order_no,
        event.orig_order_no,
        "02" if event.side == "buy" else "01",
        {"revised": "1", "cancelled": "2"}.get(event.kind, "0"),
        event.ord_dvsn,
        "0",
        event.code,
        str(event.fill_qty if fill else event.order_qty),
        str(event.fill_price if fill else event.order_price),
        event.time.strftime("%H%M%S"),
        "1" if event.kind == "refused" else "0",
        "2" if fill else "1",
        "1" if event.kind in ("accepted", "refused") else "2",
        BRANCH,
        str(event.order_qty),
        "테스트",
        "",
        "1",
        "N",
        "",
        "10",
        "",
        listing.name if listing is not None else "",
        str(event.order_price),
    ]
    return "^".join(_fit(fields, width, "0"))


def _cipher(key: str, iv: str) -> CbcCipher:
    return CbcCipher(key.encode("ascii"), iv.encode("ascii"))


def encrypt_notice(plaintext: str, key: str, iv: str) -> str:
    """AES-256-CBC with the ack's 32-character *key* and 16-character *iv*, PKCS#7, base64."""
    secret = _cipher(key, iv).encrypt(plaintext.encode("utf-8"))
    return base64.b64encode(secret).decode("ascii")


def decrypt_notice(ciphertext: str, key: str, iv: str) -> str:
    """The inverse of :func:`encrypt_notice` (for tests)."""
    return _cipher(key, iv).decrypt(base64.b64decode(ciphertext)).decode("utf-8")
