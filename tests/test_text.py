"""The rules for names and memos, and the codec refusing the same text from the network."""

from __future__ import annotations

import struct

import pytest

from lanpay.core import wire
from lanpay.core.errors import DecodeError
from lanpay.core.text import TextError, check_memo, check_name, describe, escape, problem

FAMILY = "\U0001F468\u200D\U0001F469\u200D\U0001F467"   # man ZWJ woman ZWJ girl: one grapheme


@pytest.mark.parametrize("name", ["alice", "zoë", "x" * 32, "the-kitchen.pc", FAMILY, "José",
                                  "\u05d3\u05df", "\u0645\u0631\u064a\u0645", "👍🏽", "é" * 16])
def test_names_people_use_are_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(("name", "message"), [
    ("", "name must not be empty"),
    ("x" * 33, "name is too long (33 bytes; at most 32 bytes)"),
    ("é" * 17, "name is too long (34 bytes; at most 32 bytes)"),
    ("a b", "name must not contain spaces (U+0020 SPACE)"),
    ("a\u00a0b", "name must not contain spaces (U+00A0 NO-BREAK SPACE)"),
    ("tab\there", "name contains a control character (U+0009 CHARACTER TABULATION)"),
    ("x\x1b[2J", "name contains a control character (U+001B ESCAPE)"),
    ("del\x7f", "name contains a control character (U+007F DELETE)"),
    ("x\x9b2J", "name contains a C1 control character (U+009B CONTROL SEQUENCE INTRODUCER)"),
    ("bob\u202eevil", "name contains a bidirectional control (U+202E RIGHT-TO-LEFT OVERRIDE)"),
    ("a\u2066b", "name contains a bidirectional control (U+2066 LEFT-TO-RIGHT ISOLATE)"),
    ("a\u200fb", "name contains a bidirectional control (U+200F RIGHT-TO-LEFT MARK)"),
    ("a\u061cb", "name contains a bidirectional control (U+061C ARABIC LETTER MARK)"),
    ("a\u2028b", "name contains a line or paragraph separator (U+2028 LINE SEPARATOR)"),
    ("a\udc80b", "name is not valid UTF-8 (U+DC80)"),   # what a bad byte in argv decodes to
])
def test_a_refused_name_says_which_rule_and_which_character(name: str, message: str) -> None:
    with pytest.raises(TextError) as info:
        check_name(name)
    assert str(info.value) == message


def test_memos_may_have_spaces_and_a_byte_limit() -> None:
    assert check_memo("lunch at the café " + FAMILY) == "lunch at the café " + FAMILY
    assert check_memo("x" * 64) == "x" * 64
    with pytest.raises(TextError, match=r"^memo is too long \(65 bytes; at most 64 bytes\)$"):
        check_memo("x" * 65)
    with pytest.raises(TextError, match=r"^memo contains a bidirectional control \(U\+202D "):
        check_memo("pay \u202d01.00")


def test_every_bidi_control_is_refused() -> None:
    for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]:
        found = problem(f"a{chr(code)}b")
        assert found is not None and found.rule == "contains a bidirectional control", hex(code)
        assert found.char == chr(code)


def test_every_c0_c1_and_del_is_refused_and_the_rest_of_latin_1_passes() -> None:
    for code in range(0x100):
        bad = code < 0x20 or 0x7F <= code <= 0x9F
        assert (problem(chr(code)) is not None) == bad, hex(code)


def test_a_character_is_named_the_way_unicode_names_it() -> None:
    assert describe("\u202e") == "U+202E RIGHT-TO-LEFT OVERRIDE"
    assert describe("\u200d") == "U+200D ZERO WIDTH JOINER"
    assert describe("\x85") == "U+0085 NEXT LINE"
    assert describe("\x01") == "U+0001"


def test_escape_writes_refused_characters_as_escapes_and_leaves_the_rest() -> None:
    assert escape("x\x9b2J\u202eevil") == "x\\u009b2J\\u202eevil"
    assert escape("a\nb\x1b[31m") == "a\\u000ab\\u001b[31m"
    assert escape(FAMILY + " zoë") == FAMILY + " zoë"
    assert problem(escape("\u202e\x9b\x00\u2029\udc80")) is None


def refuse_body(name: bytes) -> bytes:
    """A Refuse datagram whose name field holds ``name``."""
    return wire.HEADER.pack(wire.MAGIC, wire.VERSION, wire.Refuse.TYPE) + struct.pack(
        ">QQB", 7, 8, wire.R_TAKEN) + bytes([len(name)]) + name


@pytest.mark.parametrize(("text", "char"), [
    ("x\x9b2J\u202eevil", "U+009B"), ("bob\u202e", "U+202E"), ("a\u2067", "U+2067"),
    ("a\u200e", "U+200E"), ("\u061c", "U+061C"), ("\x85", "U+0085"),
])
def test_the_codec_refuses_the_same_text_from_the_network(text: str, char: str) -> None:
    with pytest.raises(DecodeError, match=char.replace("+", r"\+")):
        wire.decode(refuse_body(text.encode()))
    memo = wire.Pay(1, 0, 5, text)
    with pytest.raises(ValueError, match=char.replace("+", r"\+")):
        wire.encode_inner(memo)
    body = b"\x01" + struct.pack(">QQQ", 1, 0, 5) + bytes([len(text.encode())]) + text.encode()
    with pytest.raises(DecodeError):
        wire.decode_inner(body)


def test_the_codec_carries_a_family_emoji_both_ways() -> None:
    decoded = wire.decode(refuse_body(FAMILY.encode()))
    assert isinstance(decoded, wire.Refuse) and decoded.name == FAMILY
    assert wire.decode_inner(wire.encode_inner(wire.Pay(1, 0, 5, FAMILY))).memo == FAMILY
