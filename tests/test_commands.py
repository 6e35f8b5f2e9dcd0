"""The command grammar, as a table: each line either means one command or one error."""

from __future__ import annotations

import pytest

from lanpay.commands import (
    HELP,
    MAX_MEMO_BYTES,
    WORDS,
    Accept,
    Balance,
    CommandError,
    Empty,
    Exit,
    Help,
    History,
    Pay,
    PeerInfo,
    parse,
)
from lanpay.core.errors import UserError

GOOD = [
    ("", Empty()),
    ("   ", Empty()),
    ("balance", Balance()),
    ("BALANCE", Balance()),
    ("  Balance  ", Balance()),
    ("history", History()),
    ("peer", PeerInfo()),
    ("accept", Accept()),
    ("ACCEPT", Accept()),
    ("accept 41-87-03", Accept("41-87-03")),
    ("accept 418703", Accept("41-87-03")),
    ("help", Help()),
    ("?", Help()),
    ("exit", Exit()),
    ("quit", Exit()),
    ("QUIT", Exit()),
    ("pay 10", Pay(1000, "")),
    ("PAY 10", Pay(1000, "")),
    ("pay 10.5", Pay(1050, "")),
    ("pay 10.50", Pay(1050, "")),
    ("pay 0.01", Pay(1, "")),
    ("pay .5", Pay(50, "")),
    ("pay 007", Pay(700, "")),
    ("pay 1000000", Pay(100_000_000, "")),
    ("pay\t3\tcoffee", Pay(300, "coffee")),
    ("pay 10 lunch", Pay(1000, "lunch")),
    ("pay 10 lunch with  Bob ", Pay(1000, "lunch with  Bob")),
    ("pay 2 café ☕", Pay(200, "café ☕")),
    ("pay 3 for the 👨‍👩‍👧", Pay(300, "for the 👨‍👩‍👧")),
    ("pay 5.", Pay(500, "")),
    ("pay 00010", Pay(1000, "")),
    ("pay 1 " + "x" * MAX_MEMO_BYTES, Pay(100, "x" * MAX_MEMO_BYTES)),
    ("pay 1 " + "é" * (MAX_MEMO_BYTES // 2), Pay(100, "é" * (MAX_MEMO_BYTES // 2))),
]

BAD = [
    ("pay", "amount is missing (usage: pay AMOUNT [MEMO])"),
    ("pay   ", "amount is missing (usage: pay AMOUNT [MEMO])"),
    ("pay -5", "amount must be positive"),
    ("pay 0", "amount must be positive"),
    ("pay 0.00", "amount must be positive"),
    ("pay 1.234", "amount can have at most two decimals (cents)"),
    ("pay ten", "'ten' is not an amount (write it like 10 or 10.50)"),
    ("pay 1e3", "'1e3' is not an amount (write it like 10 or 10.50)"),
    ("pay 1,50", "'1,50' is not an amount (write it like 10 or 10.50)"),
    ("pay NaN", "'NaN' is not an amount (write it like 10 or 10.50)"),
    ("pay 99999999999999999999", "amount must be at most 1000000.00"),
    ("pay 1000000.01", "amount must be at most 1000000.00"),
    ("pay 1 " + "x" * (MAX_MEMO_BYTES + 1), "memo is too long (65 bytes; at most 64 bytes)"),
    ("pay 1 " + "é" * 33, "memo is too long (66 bytes; at most 64 bytes)"),
    ("pay 1 bell\x07", "memo contains a control character (U+0007 BELL)"),
    ("pay 1 a\tb", "memo contains a control character (U+0009 CHARACTER TABULATION)"),
    ("pay 1 a\u202eb", "memo contains a bidirectional control (U+202E RIGHT-TO-LEFT OVERRIDE)"),
    ("pay 1 x\x9b2J", "memo contains a C1 control character (U+009B CONTROL SEQUENCE INTRODUCER)"),
    ("accept now", "a pairing code is six digits, e.g. 'accept 41-87-03'"),
    ("foo", "unknown command 'foo' (try 'help')"),
    ("FOO bar", "unknown command 'foo' (try 'help')"),
    ("paid 10", "unknown command 'paid' (try 'help')"),
    ("x" * 40, "unknown command '" + "x" * 20 + "…' (try 'help')"),
    ("\x1b[2J", "unknown command '\\u001b[2j' (try 'help')"),
    ("\u202eyap", "unknown command '\\u202eyap' (try 'help')"),
    ("balance now", "'balance' takes no arguments"),
    ("exit 0", "'exit' takes no arguments"),
    ("history 5", "'history' takes no arguments"),
]


@pytest.mark.parametrize(("line", "command"), GOOD)
def test_line_means_command(line: str, command: object) -> None:
    assert parse(line) == command


@pytest.mark.parametrize(("line", "message"), BAD)
def test_bad_line_is_one_clear_error(line: str, message: str) -> None:
    with pytest.raises(CommandError) as info:
        parse(line)
    assert str(info.value) == message


def test_command_errors_are_user_errors() -> None:
    """A bad line is the user's error: shown, and nothing moves."""
    assert issubclass(CommandError, UserError)


def test_every_help_entry_is_a_word_the_parser_accepts() -> None:
    for entry in HELP:
        word = entry.usage.split()[0]
        assert word in WORDS
        assert not isinstance(parse(word if word != "pay" else "pay 1"), Empty)


def test_a_long_bad_amount_is_quoted_cut_short_and_escaped() -> None:
    with pytest.raises(CommandError) as caught:
        parse("pay " + "1" * 3000 + "x")
    message = str(caught.value)
    assert len(message) < 100 and "1" * 20 + "…" in message
    with pytest.raises(CommandError, match=r"'1\\udcff' is not an amount"):
        parse("pay 1\udcff")
