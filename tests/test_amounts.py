"""What a person may type as an amount, and how amounts are shown back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanpay.core.amounts import MAX_PAYMENT_CENTS, format_amount, parse_amount, to_decimal
from lanpay.core.errors import AmountError, UserError


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("10", 1000),
        ("10.5", 1050),
        ("10.50", 1050),
        ("0.01", 1),
        (".5", 50),
        (".05", 5),
        ("007.10", 710),
        ("10.", 1000),
        ("  10  ", 1000),
        ("\t12.34\n", 1234),
        ("1000000", MAX_PAYMENT_CENTS),
        ("1000000.00", MAX_PAYMENT_CENTS),
    ],
)
def test_plain_amounts_are_accepted(typed: str, cents: int) -> None:
    assert parse_amount(typed) == cents


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "missing"),
        ("   ", "missing"),
        ("0", "positive"),
        ("0.00", "positive"),
        ("000", "positive"),
        (".0", "positive"),
        ("-5", "positive"),
        ("-0.01", "positive"),
        ("-0", "positive"),
        ("10.123", "two decimals"),
        ("0.001", "two decimals"),
        (".000", "two decimals"),
        ("1000000.01", "at most 1000000.00"),
        ("99999999999999", "at most 1000000.00"),
        ("1e3", "not an amount"),
        ("1E3", "not an amount"),
        ("NaN", "not an amount"),
        ("nan", "not an amount"),
        ("Infinity", "not an amount"),
        ("inf", "not an amount"),
        ("-inf", "not an amount"),
        ("1,000", "not an amount"),
        ("1_000", "not an amount"),
        ("1 000", "not an amount"),
        ("10,50", "not an amount"),
        ("\u0661\u0660", "not an amount"),       # Arabic-Indic ten
        ("\uff11\uff10", "not an amount"),       # full-width ten
        ("1\u0660", "not an amount"),            # mixed scripts
        ("+5", "not an amount"),
        ("--5", "not an amount"),
        ("0x10", "not an amount"),
        ("0b11", "not an amount"),
        ("10$", "not an amount"),
        ("$10", "not an amount"),
        ("1.2.3", "not an amount"),
        (".", "not an amount"),
        ("10 .5", "not an amount"),
        ("10\x00", "not an amount"),
    ],
)
def test_bad_amounts_are_refused_with_a_reason(typed: str, reason: str) -> None:
    with pytest.raises(AmountError, match=reason):
        parse_amount(typed)


def test_an_amount_error_is_a_user_error() -> None:
    """The shell shows user errors as `Error: ...` and moves nothing."""
    with pytest.raises(UserError):
        parse_amount("abc")


def test_a_lower_maximum_can_be_given() -> None:
    assert parse_amount("5", maximum=500) == 500
    with pytest.raises(AmountError, match="at most 5.00"):
        parse_amount("5.01", maximum=500)


def test_many_leading_zeros_are_still_just_an_amount() -> None:
    """Leading zeros do not count towards the size of an amount."""
    assert parse_amount("0" * 20 + "7.25") == 725


def test_thousands_of_leading_zeros_raise_only_an_amount_error() -> None:
    """Python refuses int() of more than 4300 digits; that must not leak out as a bare ValueError."""
    text = "0" * 5000 + "1"
    try:
        assert parse_amount(text) == 100
    except AmountError:
        pass


@pytest.mark.parametrize(
    ("cents", "shown"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (10, "0.10"),
        (99, "0.99"),
        (100, "1.00"),
        (1050, "10.50"),
        (-1, "-0.01"),
        (-99, "-0.99"),
        (-1000, "-10.00"),
        (-1050, "-10.50"),
        (MAX_PAYMENT_CENTS, "1000000.00"),
        (123_456_789_012_345, "1234567890123.45"),
        (-(2**63), "-92233720368547758.08"),
    ],
)
def test_amounts_are_shown_with_two_decimals(cents: int, shown: str) -> None:
    assert format_amount(cents) == shown


def test_to_decimal_is_exact() -> None:
    assert to_decimal(1050) == Decimal("10.50")
    assert to_decimal(-1) == Decimal("-0.01")
    assert str(to_decimal(1)) == "0.01"


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=MAX_PAYMENT_CENTS))
def test_every_amount_shown_reads_back_as_the_same_cents(cents: int) -> None:
    assert parse_amount(format_amount(cents)) == cents


@settings(deadline=None)
@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_shown_amount_matches_decimal_arithmetic(cents: int) -> None:
    assert Decimal(format_amount(cents)) == Decimal(cents) / 100


@settings(deadline=None)
@given(st.text())
def test_any_text_either_parses_or_raises_amount_error(text: str) -> None:
    try:
        cents = parse_amount(text)
    except AmountError:
        return
    assert 1 <= cents <= MAX_PAYMENT_CENTS


@settings(deadline=None)
@given(st.text(alphabet="0123456789.+-eE_, \t", max_size=30))
def test_number_like_text_either_parses_or_raises_amount_error(text: str) -> None:
    """Text built from number-ish characters reaches deeper into the grammar."""
    try:
        cents = parse_amount(text)
    except AmountError:
        return
    assert 1 <= cents <= MAX_PAYMENT_CENTS
    assert Decimal(text.strip() if not text.strip().startswith(".") else "0" + text.strip()) * 100 == cents
