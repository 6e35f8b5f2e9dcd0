"""The rules for names and memos, and the codec refusing the same text from the network."""

from __future__ import annotations

import struct

import pytest

from lanpay.core import wire
from lanpay.core.errors import DecodeError
from lanpay.core.text import TextError, check_memo, check_name, describe, escape, problem

FAMILY = "\U0001F468\u200D\U0001F469\u200D\U0001F467"   # man ZWJ woman ZWJ girl: one grapheme


HEART_ON_FIRE = "\u2764\ufe0f\u200d\U0001F525"   # heart, VS16, ZWJ, fire: one emoji
SCOTLAND = "\U0001F3F4" + "".join(chr(0xE0000 + ord(c)) for c in "gbsct") + "\U000E007F"


@pytest.mark.parametrize("name", ["alice", "zoë", "x" * 32, "the-kitchen.pc", FAMILY, "José",
                                  "\u05d3\u05df", "\u0645\u0631\u064a\u0645", "👍🏽", "é" * 16,
                                  "e\u0301", "\u2764\ufe0f", HEART_ON_FIRE, SCOTLAND, "한국"])
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


INVISIBLE = "contains a character that shows as nothing"


@pytest.mark.parametrize(("name", "message"), [
    ("bob\u200b", f"{INVISIBLE} (U+200B ZERO WIDTH SPACE)"),
    ("b\u2060ob", f"{INVISIBLE} (U+2060 WORD JOINER)"),
    ("\ufeffbob", f"{INVISIBLE} (U+FEFF ZERO WIDTH NO-BREAK SPACE)"),
    ("bo\u200cb", f"{INVISIBLE} (U+200C ZERO WIDTH NON-JOINER)"),
    ("bob\u200d", f"{INVISIBLE} (U+200D ZERO WIDTH JOINER)"),
    ("bo\u00adb", f"{INVISIBLE} (U+00AD SOFT HYPHEN)"),
    ("\u115fbob", f"{INVISIBLE} (U+115F HANGUL CHOSEONG FILLER)"),
    ("bob\u1160", f"{INVISIBLE} (U+1160 HANGUL JUNGSEONG FILLER)"),
    ("bob\u3164", f"{INVISIBLE} (U+3164 HANGUL FILLER)"),
    ("bob\uffa0", f"{INVISIBLE} (U+FFA0 HALFWIDTH HANGUL FILLER)"),
    ("bob\u2800", f"{INVISIBLE} (U+2800 BRAILLE PATTERN BLANK)"),
    ("bob\ufe0f", f"{INVISIBLE} (U+FE0F VARIATION SELECTOR-16)"),     # a selector after a letter
    ("\u2764\ufe0f\ufe0f", f"{INVISIBLE} (U+FE0F VARIATION SELECTOR-16)"),
    ("\U0001F44D\u200d", f"{INVISIBLE} (U+200D ZERO WIDTH JOINER)"),  # a joiner with nothing after
    ("bob\U000E0062", f"{INVISIBLE} (U+E0062 TAG LATIN SMALL LETTER B)"),
    ("\u0301bob", "must not start with a combining mark (U+0301 COMBINING ACUTE ACCENT)"),
])
def test_a_name_cannot_hold_what_shows_as_nothing(name: str, message: str) -> None:
    """``bob`` with an invisible character added would look like bob on both screens."""
    with pytest.raises(TextError) as info:
        check_name(name)
    assert str(info.value) == f"name {message}"
    assert check_memo(f"for {name}") == f"for {name}"      # in a memo it harms no one


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


@pytest.mark.parametrize(("name", "char"), [
    ("bob is paid", "U+0020"), ("bob\u200b", "U+200B"), ("\u3164", "U+3164"), ("\u0301b", "U+0301"),
])
def test_the_codec_keeps_the_name_rules_for_a_name_from_the_network(name: str, char: str) -> None:
    """A name arrives in the same field type everywhere: what --name refuses, a datagram cannot bring."""
    with pytest.raises(DecodeError, match=char.replace("+", r"\+")):
        wire.decode(refuse_body(name.encode()))
    with pytest.raises(ValueError, match=char.replace("+", r"\+")):
        wire.encode(wire.Refuse(7, 8, wire.R_TAKEN, name))
    assert wire.decode(refuse_body(b"")).name == ""        # no name (a field left empty) passes


def test_the_codec_carries_a_family_emoji_both_ways() -> None:
    decoded = wire.decode(refuse_body(FAMILY.encode()))
    assert isinstance(decoded, wire.Refuse) and decoded.name == FAMILY
    assert wire.decode_inner(wire.encode_inner(wire.Pay(1, 0, 5, FAMILY))).memo == FAMILY
