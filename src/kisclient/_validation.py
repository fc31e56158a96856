"""Input validation: KRX stock codes, ISINs and KIS account numbers.

Everything here runs before a request is built, raises a :class:`ValueError` subclass from
:mod:`kisclient._errors` on bad input, and never talks to the network. Rules follow
KRX's code standard (the 2024 code reform) and KIS's account format.

Stock codes:

- :data:`STRICT_CODE_RE` is the grammar of the 2024 code reform, matched against the *whole*
  string with :func:`re.fullmatch` and ASCII-only classes (``\\d`` would accept full-width digits,
  ``^…$`` would accept a trailing newline). :func:`is_code` applies it to the raw text as is: no
  stripping, no prefixes.
- :func:`normalize_code` is the forgiving front door: it strips surrounding ASCII whitespace and a
  leading type letter (``A`` shares, ``Q`` ETN) and then applies the same full-string check.
- **Lower case is rejected**, in strict and loose mode alike. KRX data is always upper case, so a
  lower-case letter means the text came from somewhere unexpected (``"00593o"`` is a typo for
  ``"005930"``, not a code); the error message suggests the upper-case spelling when that would be
  valid. Callers who want case folding can call ``.upper()`` themselves.
- ``strict=False`` swaps in the loose grammar :data:`LOOSE_CODE_RE` (a digit, then five ASCII
  digits or upper-case letters), the escape hatch for future reform steps that put letters in new
  positions.

Account numbers are secrets in the sense of the project: they never appear in a ``repr``, a
``str`` or an exception message, only masked (``12******-01``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

import attrs

from ._errors import InvalidAccount, InvalidISIN, InvalidStockCode

__all__ = [
    "LOOSE_CODE_RE",
    "STRICT_CODE_RE",
    "Account",
    "StockCode",
    "is_code",
    "isin_check_digit",
    "isin_to_short_code",
    "normalize_code",
    "parse_account",
    "validate_code",
    "validate_isin",
]

#: The KRX short-code alphabet: ASCII digits and upper-case letters except I, O and U.
_CLASS: Final = "[0-9A-HJ-NP-TV-Z]"

#: Strict short-code grammar: shares/ETF/SPAC/REIT/preferred, or a reform-era ETN/ELW code.
STRICT_CODE_RE: Final = re.compile(
    f"[0-9]{{4}}{_CLASS}{{2}}|[5-8]{_CLASS}[0-9]{_CLASS}{{3}}", re.ASCII
)
#: Loose short-code grammar: survives future reform steps, rejects less junk.
LOOSE_CODE_RE: Final = re.compile("[0-9][0-9A-Z]{5}", re.ASCII)

#: The share alternative of the strict grammar alone (a code that fails it but passes
#: :data:`STRICT_CODE_RE` can only be an ETN/ELW-style code).
_SHARE_CODE_RE: Final = re.compile(f"[0-9]{{4}}{_CLASS}{{2}}", re.ASCII)

#: ASCII whitespace only: a full-width space (U+3000) is junk, not padding.
_ASCII_WS: Final = " \t\n\r\x0b\x0c"

_EXPECTED_CODE: Final = (
    "expected a 6-character KRX short code such as '005930', '00680K' or '0037T0' "
    "(ASCII digits and upper-case letters except I, O, U), optionally prefixed with "
    "'A' (shares) or 'Q' (ETN)"
)


def is_code(text: object, *, strict: bool = True) -> bool:
    """Whether *text* is, exactly as given, a 6-character KRX short code.

    A pure full-string grammar check: no whitespace stripping, no prefix handling, no case
    folding, so ``"005930 "``, ``"005930\\n"`` and ``"A005930"`` are all ``False``. Never raises;
    anything that is not a :class:`str` is ``False``.
    """
    if not isinstance(text, str):
        return False
    pattern = STRICT_CODE_RE if strict else LOOSE_CODE_RE
    return pattern.fullmatch(text) is not None


@attrs.frozen(order=True)
class StockCode:
    """A validated KRX short code.

    ``code`` is the bare 6-character code (what ``PDNO`` and most APIs take); ``is_etn`` is true
    when the input carried the ``Q`` prefix or the code has the reform-era ETN shape.
    ``query_code`` is what goes in ``FID_INPUT_ISCD``: ``code``, or ``"Q" + code`` for an ETN.
    ``str()`` gives ``query_code``, so ``normalize_code(str(c)) == c`` for every ``StockCode``.

    Construct through :func:`normalize_code`; the constructor checks only that ``code`` matches
    the loose grammar.
    """

    code: str = attrs.field()
    is_etn: bool = False

    @code.validator
    def _check(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if not is_code(value, strict=False):
            raise InvalidStockCode(f"invalid stock code {value!r}: {_EXPECTED_CODE}")

    @property
    def query_code(self) -> str:
        """The ``FID_INPUT_ISCD`` form: the 6-character code, ``Q``-prefixed for an ETN."""
        return f"Q{self.code}" if self.is_etn else self.code

    def __str__(self) -> str:
        return self.query_code


def _code_problem(raw: str, text: str, body: str, *, strict: bool) -> str:
    """Explain why *raw* is rejected (*text*: stripped; *body*: *text* without a type letter)."""
    prefix = f"invalid stock code {raw!r}"
    if not body:
        return f"{prefix}: it is empty; {_EXPECTED_CODE}"
    if not text.isascii():
        return (
            f"{prefix}: it contains non-ASCII characters (full-width digits or letters?); "
            f"{_EXPECTED_CODE}"
        )
    upper = text.upper()
    if upper != text:
        hint = ""
        try:
            normalize_code(upper, strict=strict)
        except InvalidStockCode:
            pass
        else:
            hint = f" (did you mean {upper!r}?)"
        return f"{prefix}: KRX codes are upper case{hint}; {_EXPECTED_CODE}"
    if len(body) != 6:
        return f"{prefix}: it has {len(body)} characters, not 6; {_EXPECTED_CODE}"
    bad_letters = sorted(set(body) & set("IOU"))
    if strict and bad_letters:
        return (
            f"{prefix}: KRX codes never use the letters I, O or U "
            f"(found {', '.join(bad_letters)}); {_EXPECTED_CODE}"
        )
    return f"{prefix}: {_EXPECTED_CODE}"


def normalize_code(raw: str | StockCode, *, strict: bool = True) -> StockCode:
    """Validate a user-supplied stock code and return it as a :class:`StockCode`.

    Steps, in order: surrounding ASCII whitespace is stripped; if 7 characters remain and the
    first is a type letter, ``A`` (shares) or ``Q`` (ETN), it is removed and remembered; the
    remaining text must fullmatch
    :data:`STRICT_CODE_RE` (or :data:`LOOSE_CODE_RE` when ``strict=False``). Lower-case input is
    rejected (see the module docstring). In strict mode two contradictions are also rejected: a
    ``Q`` prefix on a code whose first digit is not 5–9 (ETN codes start with 5–9), and an ``A``
    prefix on a code that only fits the ETN shape.

    Idempotent: a :class:`StockCode` is returned unchanged, and
    ``normalize_code(str(c)) == c``. Raises :class:`~kisclient.InvalidStockCode` with a message
    quoting the input and saying what was expected.
    """
    if isinstance(raw, StockCode):
        return raw
    if not isinstance(raw, str):
        raise InvalidStockCode(
            f"invalid stock code {raw!r}: stock codes are strings, not {type(raw).__name__} "
            "(an integer loses leading zeros and cannot hold letters)"
        )
    text = raw.strip(_ASCII_WS)
    prefix = ""
    if len(text) == 7 and text[0] in ("A", "Q"):
        prefix, body = text[0], text[1:]
    else:
        body = text
    if not is_code(body, strict=strict):
        raise InvalidStockCode(_code_problem(raw, text, body, strict=strict))
    share_shaped = _SHARE_CODE_RE.fullmatch(body) is not None
    if strict and prefix == "Q" and body[0] not in "56789":
        raise InvalidStockCode(
            f"invalid stock code {raw!r}: the 'Q' prefix marks an ETN, and ETN codes start "
            "with a digit 5-9"
        )
    if strict and prefix == "A" and not share_shaped:
        raise InvalidStockCode(
            f"invalid stock code {raw!r}: the 'A' prefix marks shares, but {body!r} has the ETN "
            "code shape (use 'Q' or no prefix)"
        )
    etn_shaped = not share_shaped and STRICT_CODE_RE.fullmatch(body) is not None
    is_etn = prefix == "Q" or etn_shaped
    return StockCode(body, is_etn=is_etn)


def validate_code(raw: str | StockCode, *, strict: bool = True) -> str:
    """Return the bare 6-character code of *raw*; see :func:`normalize_code` for the rules."""
    return normalize_code(raw, strict=strict).code


# --- ISIN -------------------------------------------------------------------------------------

_ISIN_RE: Final = re.compile("[A-Z]{2}[0-9A-Z]{9}[0-9]", re.ASCII)
#: ISIN class character (position 9) → short-code class character, for KR7 shares.
_ISIN_CLASS_TO_SHORT: Final = {"0": "0", "1": "5", "2": "7", "3": "9"}


def isin_check_digit(first11: str) -> int:
    """The ISIN (Luhn) check digit of the first 11 characters (ISO 6166).

    Each character is replaced by its base-36 value (``0``–``9`` stay, ``A`` = 10 … ``Z`` = 35),
    the digits are concatenated, and walking from the rightmost digit every other digit
    (starting with the rightmost) is doubled, subtracting 9 when the result exceeds 9. The check
    digit is ``(10 - total % 10) % 10``. *first11* must be 11 ASCII digits or upper-case letters.
    """
    if len(first11) != 11 or not re.fullmatch("[0-9A-Z]{11}", first11, re.ASCII):
        raise InvalidISIN(f"cannot compute an ISIN check digit of {first11!r}")
    digits = "".join(str(int(ch, 36)) for ch in first11)
    total = 0
    for position, ch in enumerate(reversed(digits)):
        value = int(ch)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def validate_isin(isin: str) -> str:
    """Return *isin* (surrounding ASCII whitespace stripped) if it is a well-formed ISIN.

    Well-formed: two upper-case letters, nine ASCII digits or upper-case letters, one digit, and a
    correct Luhn check digit. Lower case is rejected like in stock codes. Raises
    :class:`~kisclient.InvalidISIN` quoting the input.
    """
    if not isinstance(isin, str):
        raise InvalidISIN(f"invalid ISIN {isin!r}: ISINs are strings")
    text = isin.strip(_ASCII_WS)
    if not _ISIN_RE.fullmatch(text):
        hint = ""
        if text.upper() != text and _ISIN_RE.fullmatch(text.upper()):
            hint = f" (ISINs are upper case: did you mean {text.upper()!r}?)"
        raise InvalidISIN(
            f"invalid ISIN {isin!r}: expected 12 characters, two upper-case letters, nine ASCII "
            f"digits or upper-case letters and a check digit, like 'KR7005930003'{hint}"
        )
    expected = isin_check_digit(text[:11])
    if int(text[11]) != expected:
        raise InvalidISIN(
            f"invalid ISIN {isin!r}: the check digit is {text[11]}, but the first 11 characters "
            f"give {expected}"
        )
    return text


def isin_to_short_code(isin: str) -> str:
    """Return the 6-character short code of a Korean share ISIN (``KR7…``).

    The short code is the 5-character issuer code (ISIN characters 4–8) plus a class character
    derived from ISIN character 9: ``0→0``, ``1→5``, ``2→7``, ``3→9``, a letter stays
    (KRX's code standard). The ISIN is validated first (check digit included). Raises
    :class:`~kisclient.InvalidISIN` for an invalid ISIN, one that is not ``KR7``, or a class
    character with no known mapping.
    """
    text = validate_isin(isin)
    if not text.startswith("KR7"):
        raise InvalidISIN(
            f"cannot derive a short code from {isin!r}: only Korean share ISINs (KR7...) map to "
            "KRX short codes; look others up in the listing"
        )
    issuer, cls = text[3:8], text[8]
    short_cls = cls if cls.isalpha() else _ISIN_CLASS_TO_SHORT.get(cls)
    if short_cls is None:
        raise InvalidISIN(
            f"cannot derive a short code from {isin!r}: class character {cls!r} has no known "
            "mapping (known: 0, 1, 2, 3 and letters)"
        )
    short = issuer + short_cls
    if not is_code(short, strict=False):
        raise InvalidISIN(f"ISIN {isin!r} gives {short!r}, which is not a KRX short code")
    return short


# --- accounts ---------------------------------------------------------------------------------

_ACCOUNT_RE: Final = re.compile("([0-9]{8})-?([0-9]{2})", re.ASCII)


def _mask_shape(text: str) -> str:
    """The shape of *text* with every letter and digit hidden (``'####-##'``), for messages."""
    return "".join("#" if ch.isalnum() else ch for ch in text)


def _account_error(raw: object, why: str) -> InvalidAccount:
    shape = f"a value shaped {_mask_shape(raw)!r}" if isinstance(raw, str) else type(raw).__name__
    return InvalidAccount(
        f"invalid KIS account number ({shape}): {why}; expected 8+2 ASCII digits written "
        "'NNNNNNNN-NN' or 'NNNNNNNNNN'"
    )


def _check_digits(expected_len: int) -> Callable[[object, attrs.Attribute[str], str], None]:
    def check(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if (
            not isinstance(value, str)
            or len(value) != expected_len
            or not re.fullmatch("[0-9]+", value, re.ASCII)
        ):
            raise _account_error(value, f"{attribute.name} must be {expected_len} ASCII digits")

    return check


@attrs.frozen(repr=False)
class Account:
    """A KIS account number: ``cano`` (8 digits, ``CANO``) and ``product_code`` (2 digits,
    ``ACNT_PRDT_CD``: 01 종합/위탁, 03 국내선물옵션, 08 해외선물옵션, 22 개인연금, 29 퇴직연금).

    ``str()`` and ``repr()`` are masked (``Account('12******-01')``): the number never reaches a
    log by accident. Use :attr:`cano`, :attr:`product_code` or :meth:`as_params` to send it.
    """

    cano: str = attrs.field(validator=_check_digits(8))
    product_code: str = attrs.field(validator=_check_digits(2))

    @property
    def masked(self) -> str:
        """The number with all but the first two digits of ``cano`` hidden: ``12******-01``."""
        return f"{self.cano[:2]}{'*' * 6}-{self.product_code}"

    def as_params(self) -> dict[str, str]:
        """The request fields ``{"CANO": ..., "ACNT_PRDT_CD": ...}`` (unmasked)."""
        return {"CANO": self.cano, "ACNT_PRDT_CD": self.product_code}

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"Account({self.masked!r})"


def parse_account(raw: str | Account) -> Account:
    """Parse ``"12345678-01"`` or ``"1234567801"`` (surrounding ASCII whitespace ignored).

    An :class:`Account` is returned unchanged. Raises :class:`~kisclient.InvalidAccount`; the
    message describes the input only by its masked shape, never its digits.
    """
    if isinstance(raw, Account):
        return raw
    if not isinstance(raw, str):
        raise _account_error(raw, "account numbers are strings")
    match = _ACCOUNT_RE.fullmatch(raw.strip(_ASCII_WS))
    if match is None:
        raise _account_error(raw, "not 8 digits, an optional '-', and 2 digits")
    return Account(match.group(1), match.group(2))
