"""Money as integer cents: parsed strictly, formatted with two decimals.

Amounts never touch a float.  What a person types is checked against a plain
ASCII grammar and turned into cents with integer arithmetic, so exponents, NaN,
Infinity, separators and non-ASCII digits cannot slip in; ``to_decimal`` gives
the exact :class:`~decimal.Decimal` for callers that want one.
"""

from __future__ import annotations

import re
from decimal import Decimal

from .errors import AmountError

#: The largest single payment, in cents (one million).
MAX_PAYMENT_CENTS = 1_000_000_00

_GRAMMAR = re.compile(r"(?P<units>[0-9]+)(?:\.(?P<frac>[0-9]*))?|\.(?P<only>[0-9]+)", re.ASCII)


def parse_amount(text: str, maximum: int = MAX_PAYMENT_CENTS) -> int:
    """Return the positive number of cents that ``text`` names, or raise AmountError."""
    raw = text.strip()
    if not raw:
        raise AmountError("amount is missing")
    if raw[0] in "+-":
        if raw[0] == "-" and _GRAMMAR.fullmatch(raw[1:]):
            raise AmountError("amount must be positive")
        raise AmountError(f"{_quoted(raw)} is not an amount (write it like 10 or 10.50)")
    match = _GRAMMAR.fullmatch(raw)
    if match is None:
        raise AmountError(f"{_quoted(raw)} is not an amount (write it like 10 or 10.50)")
    units = (match.group("units") or "0").lstrip("0") or "0"
    frac = match.group("frac") if match.group("units") is not None else match.group("only")
    frac = frac or ""
    if len(frac) > 2:
        raise AmountError("amount can have at most two decimals (cents)")
    if len(units) > 12:
        raise AmountError(f"amount must be at most {format_amount(maximum)}")
    cents = int(units) * 100 + int((frac + "00")[:2])
    if cents == 0:
        raise AmountError("amount must be positive")
    if cents > maximum:
        raise AmountError(f"amount must be at most {format_amount(maximum)}")
    return cents


def _quoted(raw: str) -> str:
    """What was typed, for an error line: quoted with every unprintable character escaped
    (``repr``), and cut short, so a pasted wall of digits stays one readable line."""
    return repr(raw if len(raw) <= 20 else raw[:20] + "…")


def format_amount(cents: int) -> str:
    """Format cents as a signed decimal with two places: ``-1050`` → ``'-10.50'``."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    return f"{sign}{units}.{rest:02d}"


def to_decimal(cents: int) -> Decimal:
    """The exact Decimal for a number of cents (for callers that want one)."""
    return Decimal(cents).scaleb(-2)
