"""The compiled codec says exactly what the plain field-by-field reading of the table says.

wire.py compiles each message's SPEC into runs of fixed-size fields packed by one
struct.  That must not change a single byte on the wire nor which datagrams are
refused, and why.  So this file keeps the plain interpretation of the table (one
field at a time, as the protocol document reads) as a reference, and checks over
every message type, outer and inner, with generated values: the same bytes out
of encode, the same message or the same DecodeError out of decode, for whole
datagrams, every truncation of them and random mutations.

The text rules themselves (which characters a name may hold) are not the
subject here: the reference asks the Text codec about the text it read.
"""

from __future__ import annotations

import struct
from dataclasses import fields
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples
from fuzzing import mutated
from lanpay.core import wire
from lanpay.core.errors import DecodeError

# ------------------------------------------------------------------ the reference


class RefReader:
    """The plain cursor: every short read is "truncated"."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError("truncated")
        self.pos += n
        return self.data[self.pos - n:self.pos]


def ref_write(codec: wire.Field, value: Any, out: bytearray) -> None:
    if isinstance(codec, wire.Int):
        try:
            out += codec.st.pack(value)
        except struct.error as exc:
            raise ValueError(str(exc)) from exc
    elif isinstance(codec, wire.Fixed):
        if len(value) != codec.n:
            raise ValueError("wrong size")
        out += value
    elif isinstance(codec, wire.Text):
        codec.write(value, out)            # the text rules belong to the Text codec
    elif isinstance(codec, wire.Blob):
        if len(value) > codec.limit:
            raise ValueError("too long")
        out += bytes([len(value)]) + value
    elif isinstance(codec, wire.ListOf):
        if len(value) > wire.MAX_LIST:
            raise ValueError("too many")
        out.append(len(value))
        for item in value:
            ref_write_fields(item, out)
    else:
        raise AssertionError(f"no reference for {codec!r}")


def ref_write_fields(msg: Any, out: bytearray) -> None:
    for f, codec in zip(fields(msg), msg.SPEC):
        ref_write(codec, getattr(msg, f.name), out)


def ref_read(codec: wire.Field, r: RefReader) -> Any:
    if isinstance(codec, wire.Int):
        return codec.st.unpack(r.take(codec.st.size))[0]
    if isinstance(codec, wire.Fixed):
        return r.take(codec.n)
    if isinstance(codec, wire.Blob):
        n = r.take(1)[0]
        if n > codec.limit:
            raise DecodeError("field too long")
        raw = r.take(n)
        if isinstance(codec, wire.Text):
            return codec.read(wire._Reader(bytes([n]) + raw))
        return raw
    if isinstance(codec, wire.ListOf):
        n = r.take(1)[0]
        if n > wire.MAX_LIST:
            raise DecodeError("list too long")
        return tuple(ref_read_fields(codec.cls, r) for _ in range(n))
    raise AssertionError(f"no reference for {codec!r}")


def ref_read_fields(cls: type, r: RefReader) -> Any:
    return cls(*[ref_read(codec, r) for codec in cls.SPEC])  # type: ignore[attr-defined]


def ref_encode(msg: wire.Message) -> bytes:
    out = bytearray(b"LP" + bytes([wire.VERSION, msg.TYPE]))
    ref_write_fields(msg, out)
    if isinstance(msg, wire.Sealed):
        out += msg.ciphertext
    return bytes(out)


def ref_encode_inner(msg: wire.Message) -> bytes:
    out = bytearray([msg.TYPE])
    ref_write_fields(msg, out)
    return bytes(out)


def ref_decode(data: bytes) -> wire.Message:
    if len(data) < 4:
        raise DecodeError("too short")
    if data[:2] != b"LP":
        raise DecodeError("not a lanpay datagram")
    if data[2] != wire.VERSION:
        raise DecodeError(f"unsupported version {data[2]}")
    cls = wire.OUTER.get(data[3])
    if cls is None:
        raise DecodeError(f"unknown type {data[3]}")
    r = RefReader(data, 4)
    if cls is wire.Sealed:
        sid, counter = r.take(8), struct.unpack(">Q", r.take(8))[0]
        body = data[r.pos:]
        if len(body) < wire.TAG_LEN + 1:
            raise DecodeError("sealed body too short")
        return wire.Sealed(sid, counter, body)
    return ref_end(ref_read_fields(cls, r), r)


def ref_decode_inner(data: bytes) -> wire.Message:
    if not data:
        raise DecodeError("empty")
    cls = wire.INNER.get(data[0])
    if cls is None:
        raise DecodeError(f"unknown inner type {data[0]}")
    r = RefReader(data, 1)
    return ref_end(ref_read_fields(cls, r), r)


def ref_end(msg: wire.Message, r: RefReader) -> wire.Message:
    if r.pos != len(r.data):
        raise DecodeError("trailing bytes")
    return msg


# ------------------------------------------------------------------ comparing outcomes

def outcome(fn: Callable[[Any], Any], arg: Any) -> tuple[str, Any]:
    """What a call did: its value, or the kind (and for DecodeError the text) of its error."""
    try:
        return "value", fn(arg)
    except DecodeError as exc:
        return "DecodeError", str(exc)
    except ValueError:
        return "ValueError", None


def same_decoding(data: bytes, outer: bool) -> None:
    new, ref = (wire.decode, ref_decode) if outer else (wire.decode_inner, ref_decode_inner)
    got, want = outcome(new, data), outcome(ref, data)
    assert got == want, data


# ------------------------------------------------------------------ generated messages

def valid_text(codec: wire.Text) -> st.SearchStrategy[str]:
    """Any text the codec accepts (the rules are the codec's, read off by trying)."""
    def encodes(text: str) -> bool:
        try:
            codec.write(text, bytearray())
        except ValueError:
            return False
        return True
    return st.text(max_size=codec.limit).filter(encodes)


def value_for(codec: wire.Field, wild: bool) -> st.SearchStrategy[Any]:
    """Values the codec carries; ``wild`` adds values it must refuse (out of range, wrong size)."""
    if isinstance(codec, wire.Int):
        bits = codec.st.size * 8
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if codec.fmt == "q" else (0, 2**bits - 1)
        return st.integers(low - 2, high + 2) if wild else st.integers(low, high)
    if isinstance(codec, wire.Fixed):
        return st.binary(min_size=codec.n - 1, max_size=codec.n + 1) if wild else st.binary(
            min_size=codec.n, max_size=codec.n)
    if isinstance(codec, wire.Text):
        return st.text(max_size=codec.limit + 2) if wild else valid_text(codec)
    if isinstance(codec, wire.Blob):
        return st.binary(max_size=codec.limit + (2 if wild else 0))
    if isinstance(codec, wire.ListOf):
        limit = wire.MAX_LIST + (1 if wild else 0)
        return st.lists(message_of(codec.cls, wild), max_size=limit).map(tuple)
    raise AssertionError(f"no strategy for {codec!r}")


def message_of(cls: type, wild: bool = False) -> st.SearchStrategy[Any]:
    """A message of ``cls`` with every field drawn from its codec."""
    parts = {f.name: value_for(codec, wild) for f, codec in zip(fields(cls), cls.SPEC)}
    if cls is wire.Sealed:
        parts["ciphertext"] = st.binary(min_size=wire.TAG_LEN + 1, max_size=80)
    return st.builds(cls, **parts)


OUTER_TYPES = sorted(wire.OUTER.values(), key=lambda c: c.TYPE)
INNER_TYPES = sorted(wire.INNER.values(), key=lambda c: c.TYPE)
ALL = [(c, True) for c in OUTER_TYPES] + [(c, False) for c in INNER_TYPES]
IDS = [f"{'outer' if outer else 'inner'}-{c.__name__}" for c, outer in ALL]


def encoders(outer: bool) -> tuple[Callable[[Any], bytes], Callable[[Any], bytes]]:
    return (wire.encode, ref_encode) if outer else (wire.encode_inner, ref_encode_inner)


# ------------------------------------------------------------------ the properties

@pytest.mark.parametrize(("cls", "outer"), ALL, ids=IDS)
@settings(max_examples=examples(60), deadline=None)
@given(data=st.data())
def test_same_bytes_and_round_trip_for_every_type(cls: type, outer: bool, data: st.DataObject) -> None:
    msg = data.draw(message_of(cls))
    new, ref = encoders(outer)
    encoded = new(msg)
    assert encoded == ref(msg)
    assert (wire.decode if outer else wire.decode_inner)(encoded) == msg


@pytest.mark.parametrize(("cls", "outer"), ALL, ids=IDS)
@settings(max_examples=examples(60), deadline=None)
@given(data=st.data())
def test_values_out_of_reach_are_refused_alike(cls: type, outer: bool, data: st.DataObject) -> None:
    """Out-of-range integers, wrong-sized keys, long texts and lists: ValueError in both, or the same bytes."""
    msg = data.draw(message_of(cls, wild=True))
    new, ref = encoders(outer)
    assert outcome(new, msg)[0] == outcome(ref, msg)[0]
    if outcome(ref, msg)[0] == "value":
        assert new(msg) == ref(msg)


@pytest.mark.parametrize(("cls", "outer"), ALL, ids=IDS)
@settings(max_examples=examples(25), deadline=None)
@given(data=st.data())
def test_every_truncation_is_decoded_alike(cls: type, outer: bool, data: st.DataObject) -> None:
    encoded = encoders(outer)[0](data.draw(message_of(cls)))
    for n in range(len(encoded) + 1):
        same_decoding(encoded[:n], outer)
    same_decoding(encoded + b"\x00", outer)


@pytest.mark.parametrize(("cls", "outer"), ALL, ids=IDS)
@settings(max_examples=examples(80), deadline=None)
@given(data=st.data())
def test_mutated_datagrams_are_decoded_alike(cls: type, outer: bool, data: st.DataObject) -> None:
    encoded = encoders(outer)[0](data.draw(message_of(cls)))
    same_decoding(data.draw(mutated(encoded)), outer)


@settings(max_examples=examples(300), deadline=None)
@given(st.integers(0, 9), st.binary(max_size=120))
def test_noise_behind_every_header_is_decoded_alike(kind: int, body: bytes) -> None:
    same_decoding(b"LP\x01" + bytes([kind]) + body, outer=True)
    same_decoding(bytes([kind]) + body, outer=False)


def test_the_sealed_header_is_the_reference_prefix() -> None:
    msg = wire.Sealed(b"12345678", 2**64 - 1, bytes(17))
    assert msg.header == ref_encode(msg)[:20]


def test_a_new_message_type_needs_only_a_spec() -> None:
    """Adding a message is a dataclass with a SPEC: the compiled codec picks it up by itself."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Probe(wire.Message):
        TYPE = 99
        a: int
        name: str
        b: int
        c: bytes
        rows: tuple[wire.Rejection, ...]
        SPEC = (wire.U16, wire.NAME, wire.U8, wire.NONCE, wire.ListOf(wire.Rejection))

    msg = Probe(513, "zoë", 7, bytes(range(16)), (wire.Rejection(1, 2),))
    encoded = wire.encode_inner(msg)
    assert encoded == ref_encode_inner(msg)
    rows = wire.ListOf(Probe)
    out = bytearray()
    rows.write((msg, msg), out)
    r = wire._Reader(bytes(out))
    assert rows.read(r) == (msg, msg) and r.pos == len(out)
