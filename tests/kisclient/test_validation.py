"""Stock codes, ISINs and account numbers (krx-domain.md §1, kis-api-facts.md §1)."""

from __future__ import annotations

import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kisclient._errors import InvalidAccount, InvalidISIN, InvalidStockCode, ValidationError
from kisclient._validation import (
    LOOSE_CODE_RE,
    STRICT_CODE_RE,
    Account,
    StockCode,
    is_code,
    isin_check_digit,
    isin_to_short_code,
    normalize_code,
    parse_account,
    validate_code,
    validate_isin,
)

# Every real code of krx-domain.md §1.3.
REAL_CODES = [
    "005930", "000660", "005935", "005385", "005387", "005389",
    "00680K", "02826K", "03473K", "37550K", "37550L", "00104K", "00088K", "28513K",
    "0037T0", "0009K0", "0126Z0", "069500", "0167A0", "0184E0", "0182R0", "0103T0", "0131W0",
    "530036", "900110",
]  # fmt: skip

# The junk of §1.4 that the raw grammar must reject.
JUNK = [
    "5930", "05930", "0059300", "A005930", "Q530036", "005930 ", "005930\n", "00593o", "0037t0",
    "ABCDEF", "0037I0", "0037O0", "00000U", "", "００５９３０",
]  # fmt: skip

ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTVWXYZ"  # no I, O, U
DIGITS = "0123456789"


# --- the raw grammar ------------------------------------------------------------------------


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_codes_match_the_strict_grammar(code: str) -> None:
    assert is_code(code)
    assert is_code(code, strict=False)


@pytest.mark.parametrize("junk", JUNK)
def test_junk_fails_the_strict_grammar(junk: str) -> None:
    assert not is_code(junk)


@pytest.mark.parametrize("junk", ["005930 ", "005930\n", "\t005930", "A005930"])
def test_raw_grammar_does_not_strip_or_drop_prefixes(junk: str) -> None:
    assert not is_code(junk)
    assert not is_code(junk, strict=False)


def test_the_trailing_newline_trap_is_closed() -> None:
    # re.match("^...$") accepts a trailing newline; fullmatch does not (krx-domain.md §1.4).
    assert re.match(r"^\d{6}$", "005930\n") is not None
    assert STRICT_CODE_RE.fullmatch("005930\n") is None
    assert LOOSE_CODE_RE.fullmatch("005930\n") is None


@pytest.mark.parametrize("value", [5930, None, b"005930", ["005930"]])
def test_is_code_is_false_for_non_strings(value: object) -> None:
    assert not is_code(value)


def test_loose_grammar_accepts_future_letter_positions() -> None:
    assert not is_code("0A00I0")
    assert is_code("0A00I0", strict=False)
    assert not is_code("A00000", strict=False)  # first character must be a digit
    assert not is_code("0037t0", strict=False)  # still upper case only


# --- normalize_code -------------------------------------------------------------------------


@pytest.mark.parametrize("code", REAL_CODES)
def test_normalize_accepts_every_real_code(code: str) -> None:
    result = normalize_code(code)
    assert result.code == code
    assert validate_code(code) == code


def test_normalize_strips_the_type_letter_and_remembers_etn() -> None:
    assert normalize_code("A005930") == StockCode("005930", is_etn=False)
    etn = normalize_code("Q530036")
    assert etn.code == "530036"
    assert etn.is_etn
    assert etn.query_code == "Q530036"
    assert str(etn) == "Q530036"


def test_share_codes_query_without_prefix() -> None:
    code = normalize_code("005930")
    assert not code.is_etn
    assert code.query_code == "005930"
    assert str(code) == "005930"


def test_a_bare_all_digit_etn_is_not_detectable() -> None:
    # Before the reform shares also used 5-9 first digits: only the Q prefix marks an ETN.
    assert not normalize_code("530036").is_etn
    assert not normalize_code("900110").is_etn


def test_reform_etn_shape_is_an_etn_without_prefix() -> None:
    code = normalize_code("5A0BCD")
    assert code.is_etn
    assert code.query_code == "Q5A0BCD"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 005930", "005930"),
        ("005930 ", "005930"),
        ("005930\n", "005930"),
        ("\tA005930\r\n", "005930"),
    ],
)
def test_normalize_strips_surrounding_ascii_whitespace(raw: str, expected: str) -> None:
    assert normalize_code(raw).code == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("5930", "4 characters"),
        ("05930", "5 characters"),
        ("0059300", "7 characters"),
        ("00593o", "upper case"),
        ("0037t0", "did you mean '0037T0'"),
        ("ABCDEF", "expected a 6-character"),
        ("0037I0", "I, O or U"),
        ("0037O0", "I, O or U"),
        ("00000U", "I, O or U"),
        ("", "empty"),
        ("   ", "empty"),
        ("００５９３０", "non-ASCII"),
        ("\u3000005930", "non-ASCII"),  # a full-width space is not whitespace we strip
        ("005 930", "expected a 6-character"),
        ("J005930", "7 characters"),  # ELW prefix is not supported
        ("Q005930", "ETN codes start"),
        ("A5A0BCD", "ETN code shape"),
    ],
)
def test_normalize_rejects_junk_with_a_clear_message(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidStockCode) as info:
        normalize_code(raw)
    message = str(info.value)
    assert repr(raw) in message
    assert fragment in message


def test_lowercase_is_rejected_even_when_loose() -> None:
    with pytest.raises(InvalidStockCode, match="upper case"):
        normalize_code("0037t0", strict=False)
    with pytest.raises(InvalidStockCode, match="did you mean 'A005930'"):
        normalize_code("a005930")
    with pytest.raises(InvalidStockCode, match="did you mean 'Q530036'"):
        normalize_code("q530036")


def test_loose_mode_accepts_what_strict_rejects() -> None:
    with pytest.raises(InvalidStockCode):
        normalize_code("0037I0")
    assert normalize_code("0037I0", strict=False).code == "0037I0"
    assert normalize_code("Q005930", strict=False).is_etn


def test_integers_are_rejected_with_a_reason() -> None:
    with pytest.raises(InvalidStockCode, match="leading zeros"):
        normalize_code(5930)  # type: ignore[arg-type]


def test_errors_are_value_errors() -> None:
    assert issubclass(InvalidStockCode, ValueError)
    assert issubclass(InvalidStockCode, ValidationError)


def test_stock_code_constructor_checks_the_code() -> None:
    with pytest.raises(InvalidStockCode):
        StockCode("5930")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        normalize_code("005930").code = "000660"  # type: ignore[misc]


def test_stock_codes_sort_and_hash() -> None:
    codes = [normalize_code(c) for c in ("069500", "005930", "0037T0")]
    assert [c.code for c in sorted(codes)] == ["0037T0", "005930", "069500"]
    assert len({normalize_code("005930"), normalize_code("A005930")}) == 1


# --- property tests -------------------------------------------------------------------------

share_codes = st.builds(
    lambda a, b: a + b,
    st.text(DIGITS, min_size=4, max_size=4),
    st.text(ALPHABET, min_size=2, max_size=2),
)
etn_codes = st.builds(
    lambda first, second, third, rest: first + second + third + rest,
    st.sampled_from("5678"),
    st.sampled_from(ALPHABET),
    st.sampled_from(DIGITS),
    st.text(ALPHABET, min_size=3, max_size=3),
)
strict_codes = share_codes | etn_codes


@given(strict_codes)
def test_every_string_of_the_strict_grammar_is_accepted(code: str) -> None:
    assert is_code(code)
    result = normalize_code(code)
    assert result.code == code


@given(st.text(max_size=10))
def test_text_outside_the_grammar_is_rejected(text: str) -> None:
    if STRICT_CODE_RE.fullmatch(text) is None:
        assert not is_code(text)
        body = text.strip(" \t\n\r\x0b\x0c")
        if len(body) == 7 and body[0] in "AQ":
            body = body[1:]
        if STRICT_CODE_RE.fullmatch(body) is None:
            with pytest.raises(InvalidStockCode):
                normalize_code(text)


@given(st.text(max_size=10) | strict_codes | st.builds(lambda c: "Q" + c, strict_codes))
def test_accepted_codes_are_six_ascii_characters_and_normalising_is_idempotent(
    text: str,
) -> None:
    for strict in (True, False):
        try:
            code = normalize_code(text, strict=strict)
        except InvalidStockCode:
            continue
        assert len(code.code) == 6
        assert code.code.isascii()
        assert is_code(code.code, strict=strict)
        assert normalize_code(code, strict=strict) is code
        assert normalize_code(str(code), strict=strict) == code
        assert normalize_code(code.query_code, strict=strict) == code


@given(st.sampled_from(["", " ", "\t", "\n", "\r\n"]), strict_codes, st.sampled_from(["", "A"]))
def test_whitespace_and_share_prefix_do_not_change_the_code(
    pad: str, code: str, prefix: str
) -> None:
    if prefix == "A" and not re.fullmatch("[0-9]{4}.{2}", code):
        return
    assert normalize_code(f"{pad}{prefix}{code}{pad}").code == code


# --- ISIN -----------------------------------------------------------------------------------

ISINS = {
    "KR7005930003": "005930",
    "KR7000660001": "000660",
    "KR7005931001": "005935",
    "KR7005381009": "005385",
    "KR7005382007": "005387",
    "KR7005383005": "005389",
    "KR702826K016": "02826K",
    "KR70037T0008": "0037T0",
    "KR7069500007": "069500",
}


@pytest.mark.parametrize("isin", [*ISINS, "HK0000057197", "US0378331005"])
def test_documented_isins_pass_the_check_digit(isin: str) -> None:
    assert validate_isin(isin) == isin
    assert isin_check_digit(isin[:11]) == int(isin[-1])


@pytest.mark.parametrize(("isin", "short"), ISINS.items())
def test_isin_to_short_code(isin: str, short: str) -> None:
    assert isin_to_short_code(isin) == short
    assert normalize_code(isin_to_short_code(isin)).code == short


def test_the_wrong_isin_from_the_wild_is_rejected() -> None:
    with pytest.raises(InvalidISIN, match="check digit is 3") as info:
        validate_isin("KR7005382003")
    assert "'KR7005382003'" in str(info.value)
    with pytest.raises(InvalidISIN):
        isin_to_short_code("KR7005382003")


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "KR700593000",
        "KR70059300033",
        "kr7005930003",
        "KR700593000A",
        "１R7005930003",
        "7R7005930003",
    ],
)
def test_malformed_isins_are_rejected(junk: str) -> None:
    with pytest.raises(InvalidISIN):
        validate_isin(junk)


def test_lowercase_isin_gets_a_hint() -> None:
    with pytest.raises(InvalidISIN, match="did you mean 'KR7005930003'"):
        validate_isin("kr7005930003")


def test_isin_whitespace_is_stripped() -> None:
    assert validate_isin(" KR7005930003\n") == "KR7005930003"


def test_foreign_isin_has_no_short_code() -> None:
    with pytest.raises(InvalidISIN, match="only Korean share ISINs"):
        isin_to_short_code("HK0000057197")


def test_unknown_class_character_has_no_short_code() -> None:
    first11 = "KR700593400"
    isin = first11 + str(isin_check_digit(first11))
    assert validate_isin(isin) == isin
    with pytest.raises(InvalidISIN, match="no known"):
        isin_to_short_code(isin)


@given(st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=9, max_size=9))
def test_a_computed_check_digit_validates_and_any_other_digit_fails(body: str) -> None:
    first11 = "KR" + body
    digit = isin_check_digit(first11)
    assert validate_isin(f"{first11}{digit}")
    for wrong in set(range(10)) - {digit}:
        with pytest.raises(InvalidISIN):
            validate_isin(f"{first11}{wrong}")


# --- accounts -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["12345678-01", "1234567801", " 12345678-01\n"])
def test_parse_account(raw: str) -> None:
    account = parse_account(raw)
    assert account.cano == "12345678"
    assert account.product_code == "01"
    assert account.as_params() == {"CANO": "12345678", "ACNT_PRDT_CD": "01"}
    assert parse_account(account) is account


def test_account_is_masked_everywhere() -> None:
    account = parse_account("98765432-29")
    assert repr(account) == "Account('98******-29')"
    assert str(account) == "98******-29"
    assert f"{account}" == "98******-29"
    assert "98765432" not in repr([account])
    assert "98765432" not in repr({"account": account})


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "12345678",
        "123456789",
        "12345678-1",
        "12345678-012",
        "1234567-801",
        "12345678_01",
        "１２３４５６７８-01",
        "abcdefgh-01",
        "12345678--01",
    ],
)
def test_bad_accounts_are_rejected_without_echoing_the_number(raw: str) -> None:
    with pytest.raises(InvalidAccount) as info:
        parse_account(raw)
    message = str(info.value)
    assert "expected 8+2 ASCII digits" in message
    for run in re.findall("[0-9a-z]{3,}", raw):
        assert run not in message


def test_bad_account_message_shows_only_the_shape() -> None:
    with pytest.raises(InvalidAccount, match="'#######-###'"):
        parse_account("1234567-801")


def test_account_constructor_validates_without_echoing() -> None:
    with pytest.raises(InvalidAccount) as info:
        Account("1234567", "01")
    assert "1234567" not in str(info.value)
    with pytest.raises(InvalidAccount):
        Account("12345678", "1")


def test_non_string_account_is_rejected() -> None:
    with pytest.raises(InvalidAccount) as info:
        parse_account(1234567801)  # type: ignore[arg-type]
    assert "1234567801" not in str(info.value)


@given(st.text(DIGITS, min_size=8, max_size=8), st.text(DIGITS, min_size=2, max_size=2))
def test_any_account_parses_and_never_shows_its_digits(cano: str, product: str) -> None:
    account = parse_account(f"{cano}-{product}")
    assert account == parse_account(cano + product)
    assert cano[2:] not in repr(account).replace("*", "")
    assert repr(account) == f"Account('{cano[:2]}******-{product}')"
