"""The datagram codec: one table of messages drives every round-trip and every refusal.

Whatever arrives from the network either decodes to a message or raises
DecodeError; nothing else may escape, or a stray datagram could crash a peer.
"""

from __future__ import annotations

import struct
from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples
from lanpay.core import wire
from lanpay.core.errors import DecodeError

KEY = bytes(range(32))
NONCE = bytes(range(100, 116))
TAG = bytes(range(200, 216))

#: One example of every message, outer and inner, exercising every field kind.
OUTER_CASES: list[wire.Message] = [
    wire.Announce(2**64 - 1, 47474, wire.F_PAIRED | wire.F_CODE, 30_000, "alice", "bob", "bob", 12345, KEY),
    wire.Announce(1, 0, 0, 0, "", "", "", 0, bytes(32)),
    wire.Hello(7, 8, wire.F_CODE, "älice☕", "", KEY, NONCE),
    wire.Reply(8, 7, wire.F_RESUMING, "bob", NONCE, KEY, NONCE, b""),
    wire.Reply(8, 7, wire.F_CODE, "bob", NONCE, KEY, NONCE, bytes(range(32))),
    wire.Reveal(7, 8, KEY, bytes(32), TAG),
    wire.Reveal(7, 8, KEY, b"", TAG),
    wire.Confirm(8, 7, TAG),
    wire.Refuse(8, 7, wire.R_TAKEN, "bob"),
    wire.Sealed(b"\x01" * 8, 0, bytes(17)),
    wire.Sealed(b"sessionX", 2**64 - 1, b"ciphertext and its tag"),
]

INNER_CASES: list[wire.Message] = [
    wire.Pay(1, 0, 1000, "lunch"),
    wire.Pay(2**64 - 1, 2**64 - 2, 2**64 - 1, "m" * wire.MAX_MEMO),
    wire.Pay(3, 2, 1, ""),
    wire.Ack(0, ()),
    wire.Ack(5, (wire.Rejection(4, wire.REJECT_OVER_LIMIT),)),
    wire.Ack(99, tuple(wire.Rejection(i, wire.REJECT_REFUSED) for i in range(1, 1 + wire.MAX_LIST))),
    wire.Ping(2**32 - 1, 1, 0, 0, 7, NONCE),
    wire.Pong(0, 0, 0, 0, 0, NONCE),
    wire.Bye(0, (), 1),
    wire.Bye(7, (wire.Rejection(3, wire.REJECT_OVER_LIMIT),), 0),
    wire.Resume(0, 2, -1050, 4, 9, 11, 1, 9,
                (wire.Entry(1, 1, 1050, wire.E_SETTLED, 0, 1500, "rent"),
                 wire.Entry(0, 9, 5, wire.E_REJECTED, wire.REJECT_OVER_LIMIT, 0, ""),
                 wire.Entry(1, 3, 7, wire.E_PENDING, 0, 2**32 - 1, "☕"))),
    wire.Resume(0, 1, -(2**63), 1, 0, 0, 0, 0, ()),
    wire.Resume(2**32 - 1, 2**32 - 1, 2**63 - 1, 2**64 - 1, 2**64 - 1, 2**64 - 1, 2**64 - 1, 2**64 - 1, ()),
    wire.Resumed(0),
    wire.Resumed(2**32 - 1),
    wire.Fenced(12, (wire.Rejection(3, wire.REJECT_OVER_LIMIT),), 1),
    wire.Fenced(0, (), 0),
    wire.Claimed("10.0.0.9"),
    wire.Claimed("fe80::1%eth0"),
    wire.Declined(wire.D_OLD_ALIVE),
]


def case_id(msg: wire.Message) -> str:
    return type(msg).__name__


def test_the_case_table_covers_every_message_type() -> None:
    assert {type(m) for m in OUTER_CASES} == set(wire.OUTER.values())
    assert {type(m) for m in INNER_CASES} == set(wire.INNER.values())


@pytest.mark.parametrize("msg", OUTER_CASES, ids=case_id)
def test_outer_messages_round_trip(msg: wire.Message) -> None:
    data = wire.encode(msg)
    assert data[:3] == b"LP\x01" and data[3] == msg.TYPE
    assert wire.decode(data) == msg


@pytest.mark.parametrize("msg", INNER_CASES, ids=case_id)
def test_inner_messages_round_trip(msg: wire.Message) -> None:
    data = wire.encode_inner(msg)
    assert data[0] == msg.TYPE
    assert wire.decode_inner(data) == msg


def test_sealed_header_is_exactly_the_bytes_before_the_ciphertext() -> None:
    """The header is the AEAD's associated data, so it must be what travels in clear."""
    msg = wire.Sealed(b"abcdefgh", 513, b"x" * 40)
    data = wire.encode(msg)
    assert data == msg.header + msg.ciphertext
    assert msg.header == b"LP\x01\x07" + b"abcdefgh" + (513).to_bytes(8, "big")


def test_known_bytes_of_a_pay() -> None:
    """Pin the layout: a change to it is a protocol version change."""
    data = wire.encode_inner(wire.Pay(1, 0, 1050, "hi"))
    assert data == b"\x01" + struct.pack(">QQQ", 1, 0, 1050) + b"\x02hi"


# ------------------------------------------------------------------ generated values

def text_for(limit: int, word: bool = False) -> st.SearchStrategy[str]:
    """Text the codec carries: a name (``word``) keeps the name rules as well."""
    chars = st.characters(min_codepoint=32, blacklist_categories=("Cs",)).filter(lambda c: not wire.has_control(c))
    return st.text(chars, max_size=limit).filter(
        lambda s: len(s.encode()) <= limit and not (word and wire.has_control(s, word=True)))


def strategy_for_codec(codec: wire.Field) -> st.SearchStrategy[Any]:
    """Every value a field's codec can carry, read off the codec itself."""
    if isinstance(codec, wire.Int):
        bits = codec.st.size * 8
        if codec.st.format.endswith("q"):
            return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return st.integers(0, 2**bits - 1)
    if isinstance(codec, wire.Fixed):
        return st.binary(min_size=codec.n, max_size=codec.n)
    if isinstance(codec, wire.Text):
        return text_for(codec.limit, word=isinstance(codec, wire.Name))
    if isinstance(codec, wire.Blob):
        return st.binary(max_size=codec.limit)
    if isinstance(codec, wire.ListOf):
        return st.lists(strategy_for(codec.cls), max_size=wire.MAX_LIST).map(tuple)
    raise AssertionError(f"no strategy for {codec!r}")


def strategy_for(cls: type) -> st.SearchStrategy[Any]:
    names = [f.name for f in fields(cls)]
    parts = {name: strategy_for_codec(codec) for name, codec in zip(names, cls.SPEC)}
    if cls is wire.Sealed:
        parts["ciphertext"] = st.binary(min_size=wire.TAG_LEN + 1, max_size=200)
    return st.builds(cls, **parts)


outer_messages = st.one_of([strategy_for(c) for c in wire.OUTER.values()])
inner_messages = st.one_of([strategy_for(c) for c in wire.INNER.values()])


@settings(max_examples=examples(300), deadline=None)
@given(outer_messages)
def test_any_outer_message_round_trips(msg: wire.Message) -> None:
    assert wire.decode(wire.encode(msg)) == msg


@settings(max_examples=examples(300), deadline=None)
@given(inner_messages)
def test_any_inner_message_round_trips(msg: wire.Message) -> None:
    assert wire.decode_inner(wire.encode_inner(msg)) == msg


# ------------------------------------------------------------------ truncation and noise

@pytest.mark.parametrize("msg", [m for m in OUTER_CASES if not isinstance(m, wire.Sealed)], ids=case_id)
def test_every_truncation_of_an_outer_message_is_a_decode_error(msg: wire.Message) -> None:
    data = wire.encode(msg)
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            wire.decode(data[:n])


def test_a_truncated_sealed_datagram_is_refused_until_its_body_could_hold_a_tag() -> None:
    """The codec cannot see where a ciphertext ends; the AEAD tag catches shorter bodies later."""
    msg = wire.Sealed(b"abcdefgh", 9, bytes(range(40)))
    data = wire.encode(msg)
    minimum = len(msg.header) + wire.TAG_LEN + 1
    for n in range(len(data)):
        if n < minimum:
            with pytest.raises(DecodeError):
                wire.decode(data[:n])
        else:
            assert wire.decode(data[:n]) == replace(msg, ciphertext=msg.ciphertext[:n - len(msg.header)])


@pytest.mark.parametrize("msg", INNER_CASES, ids=case_id)
def test_every_truncation_of_an_inner_message_is_a_decode_error(msg: wire.Message) -> None:
    data = wire.encode_inner(msg)
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            wire.decode_inner(data[:n])


@pytest.mark.parametrize("msg", [m for m in OUTER_CASES if not isinstance(m, wire.Sealed)], ids=case_id)
def test_trailing_bytes_after_an_outer_message_are_refused(msg: wire.Message) -> None:
    with pytest.raises(DecodeError, match="trailing"):
        wire.decode(wire.encode(msg) + b"\x00")


@pytest.mark.parametrize("msg", INNER_CASES, ids=case_id)
def test_trailing_bytes_after_an_inner_message_are_refused(msg: wire.Message) -> None:
    with pytest.raises(DecodeError, match="trailing"):
        wire.decode_inner(wire.encode_inner(msg) + b"\x00")


def decodes_or_refuses(decoder: Any, data: bytes) -> None:
    """The one contract for untrusted bytes: a message, or DecodeError, nothing else."""
    try:
        msg = decoder(data)
    except DecodeError:
        return
    assert isinstance(msg, wire.Message)


@settings(max_examples=examples(500), deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    decodes_or_refuses(wire.decode, data)
    decodes_or_refuses(wire.decode_inner, data)


@settings(max_examples=examples(500), deadline=None)
@given(st.sampled_from(range(0, 10)), st.binary(max_size=300))
def test_bytes_behind_a_valid_header_decode_or_raise_decode_error(kind: int, body: bytes) -> None:
    decodes_or_refuses(wire.decode, b"LP\x01" + bytes([kind]) + body)
    decodes_or_refuses(wire.decode_inner, bytes([kind]) + body)


@settings(max_examples=examples(300), deadline=None)
@given(st.data())
def test_bit_flipped_messages_decode_or_raise_decode_error(data: st.DataObject) -> None:
    msg = data.draw(st.sampled_from(OUTER_CASES + INNER_CASES))
    outer = msg in OUTER_CASES
    raw = bytearray(wire.encode(msg) if outer else wire.encode_inner(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        bit = data.draw(st.integers(0, len(raw) * 8 - 1))
        raw[bit // 8] ^= 1 << (bit % 8)
    decodes_or_refuses(wire.decode if outer else wire.decode_inner, bytes(raw))


# ------------------------------------------------------------------ specific refusals

ANNOUNCE = OUTER_CASES[0]


def test_bytes_from_another_protocol_are_refused() -> None:
    data = wire.encode(ANNOUNCE)
    with pytest.raises(DecodeError, match="not a lanpay"):
        wire.decode(b"XX" + data[2:])


@pytest.mark.parametrize("version", [0, 2, 255])
def test_other_protocol_versions_are_refused(version: int) -> None:
    data = bytearray(wire.encode(ANNOUNCE))
    data[2] = version
    with pytest.raises(DecodeError, match="version"):
        wire.decode(bytes(data))


@pytest.mark.parametrize("kind", [0, 8, 99, 255])
def test_unknown_outer_types_are_refused(kind: int) -> None:
    with pytest.raises(DecodeError, match="unknown type"):
        wire.decode(b"LP\x01" + bytes([kind]) + bytes(64))


@pytest.mark.parametrize("kind", [0, 11, 255])
def test_unknown_inner_types_are_refused(kind: int) -> None:
    with pytest.raises(DecodeError, match="unknown inner type"):
        wire.decode_inner(bytes([kind]) + bytes(64))


@pytest.mark.parametrize("data", [b"", b"L", b"LP", b"LP\x01"])
def test_datagrams_shorter_than_a_header_are_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        wire.decode(data)


def test_an_empty_inner_message_is_refused() -> None:
    with pytest.raises(DecodeError, match="empty"):
        wire.decode_inner(b"")


def refuse_body(name_field: bytes) -> bytes:
    """A Refuse datagram whose name field is given raw: the easiest place to plant bad text."""
    return b"LP\x01\x06" + struct.pack(">QQB", 8, 7, 1) + name_field


def test_a_string_longer_than_its_limit_is_refused_even_if_the_bytes_are_there() -> None:
    with pytest.raises(DecodeError, match="too long"):
        wire.decode(refuse_body(bytes([wire.MAX_NAME + 1]) + b"a" * (wire.MAX_NAME + 1)))


def test_a_string_at_its_limit_is_accepted() -> None:
    msg = wire.decode(refuse_body(bytes([wire.MAX_NAME]) + b"a" * wire.MAX_NAME))
    assert isinstance(msg, wire.Refuse) and msg.name == "a" * wire.MAX_NAME


def test_a_length_byte_past_the_end_is_a_truncation() -> None:
    with pytest.raises(DecodeError, match="truncated"):
        wire.decode(refuse_body(b"\x05abc"))


@pytest.mark.parametrize("raw", [b"\xff", b"\xc3", b"\xc3\x28", b"\xed\xa0\x80", b"a\xe2\x82"])
def test_bad_utf8_is_refused(raw: bytes) -> None:
    with pytest.raises(DecodeError, match="utf-8"):
        wire.decode(refuse_body(bytes([len(raw)]) + raw))


@pytest.mark.parametrize("text", ["a\nb", "\x00", "tab\there", "\x1b[31m", "del\x7f", "\r"])
def test_control_characters_in_text_are_refused(text: str) -> None:
    raw = text.encode()
    with pytest.raises(DecodeError, match="control"):
        wire.decode(refuse_body(bytes([len(raw)]) + raw))


def test_a_memo_with_a_control_character_is_refused() -> None:
    body = b"\x01" + struct.pack(">QQQ", 1, 0, 5) + b"\x03a\nb"
    with pytest.raises(DecodeError, match="control"):
        wire.decode_inner(body)


def test_a_list_longer_than_its_limit_is_refused() -> None:
    count = wire.MAX_LIST + 1
    body = b"\x02" + struct.pack(">Q", 0) + bytes([count]) + struct.pack(">QQ", 1, 1) * count + b"\x00"
    with pytest.raises(DecodeError, match="list too long"):
        wire.decode_inner(body)


def test_a_share_longer_than_a_key_is_refused() -> None:
    good = wire.encode(wire.Reveal(7, 8, KEY, b"", TAG))
    head = good[:4 + 16 + 32]
    with pytest.raises(DecodeError, match="too long"):
        wire.decode(head + bytes([33]) + bytes(33) + TAG)


def test_a_sealed_body_too_short_for_a_tag_is_refused() -> None:
    data = wire.encode(wire.Sealed(b"abcdefgh", 1, bytes(wire.TAG_LEN + 1)))
    with pytest.raises(DecodeError, match="sealed body too short"):
        wire.decode(data[:-1])


# ------------------------------------------------------------------ what encode refuses

@pytest.mark.parametrize(
    "msg",
    [
        wire.Pay(-1, 0, 5, ""),
        wire.Pay(2**64, 0, 5, ""),
        wire.Pay(1, 0, -5, ""),
        wire.Pay(1, 0, 5, "m" * (wire.MAX_MEMO + 1)),
        wire.Pay(1, 0, 5, "é" * (wire.MAX_MEMO // 2 + 1)),      # short in characters, long in bytes
        wire.Ping(2**32, 0, 0, 0, 0, NONCE),
        wire.Ping(1, 256, 0, 0, 0, NONCE),
        wire.Ping(1, 0, 0, 0, 0, NONCE[:-1]),
        wire.Ack(0, tuple(wire.Rejection(i, 1) for i in range(wire.MAX_LIST + 1))),
        wire.Ack(-1, ()),
        wire.Resume(0, 1, 2**63, 1, 0, 0, 0, 0, ()),
        wire.Resume(0, 1, -(2**63) - 1, 1, 0, 0, 0, 0, ()),
        wire.Pay(1, 0, 1.5, ""),  # type: ignore[arg-type]
    ],
    ids=lambda m: repr(m)[:40],
)
def test_encode_refuses_inner_values_it_cannot_carry(msg: wire.Message) -> None:
    with pytest.raises(ValueError):
        wire.encode_inner(msg)


@pytest.mark.parametrize(
    "msg",
    [
        replace(ANNOUNCE, name="n" * (wire.MAX_NAME + 1)),
        replace(ANNOUNCE, session_port=65536),
        replace(ANNOUNCE, flags=-1),
        replace(ANNOUNCE, incarnation=2**64),
        replace(ANNOUNCE, public_key=KEY + b"\x00"),
        wire.Reply(8, 7, 0, "bob", NONCE, KEY, NONCE, bytes(33)),
        wire.Sealed(b"short", 1, bytes(20)),
    ],
    ids=lambda m: repr(m)[:40],
)
def test_encode_refuses_outer_values_it_cannot_carry(msg: wire.Message) -> None:
    with pytest.raises(ValueError):
        wire.encode(msg)


@pytest.mark.parametrize("text", ["a\nb", "\x00", "tab\there", "del\x7f"])
def test_encode_refuses_text_that_decode_would_refuse(text: str) -> None:
    """Codec symmetry: a datagram we send must be one the peer can read.

    Otherwise a name with a tab in it would be announced, and every listener
    would silently drop the announce as malformed.
    """
    with pytest.raises(ValueError):
        wire.encode(replace(ANNOUNCE, name=text))
    with pytest.raises(ValueError):
        wire.encode_inner(wire.Pay(1, 0, 5, text))


def test_the_sealed_header_helper_gives_the_datagram_prefix_encode_gives() -> None:
    msg = wire.Sealed(b"abcdefgh", 2**40 + 7, bytes(range(20)))
    assert wire.sealed_header(msg.session_id, msg.counter) + msg.ciphertext == wire.encode(msg)
    assert wire.sealed_header(msg.session_id, msg.counter) == msg.header
    for bad in ((b"short", 1), (b"abcdefgh", -1), (b"abcdefgh", 2**64)):
        with pytest.raises(ValueError):
            wire.sealed_header(*bad)


def test_the_direct_pay_codec_is_the_table_codec() -> None:
    """Pay skips the table both ways; every byte and every refusal must stay the table's."""
    plan = wire._plan(wire.Pay)
    for msg in (wire.Pay(1, 0, 1, ""), wire.Pay(2**64 - 1, 5, 100, "lunch"), wire.Pay(3, 2, 7, "café ☕")):
        table = bytearray(plan.inner_head)
        plan.write(msg, table)
        assert wire.encode_inner(msg) == bytes(table)
        assert wire.decode_inner(bytes(table)) == msg
    for bad in (wire.Pay(2**64, 0, 1, ""), wire.Pay(1, 0, 1, "x" * 65), wire.Pay(1, 0, 1, "a\u202eb")):
        with pytest.raises(ValueError):
            wire.encode_inner(bad)
