"""The datagram codec: every message type encodes and decodes through one table.

A datagram starts with ``b"LP"``, a protocol version byte and a type byte.
Announces and handshake messages travel in the clear (they carry no money and
are bound into the keys by the transcript); everything after pairing is a
:class:`Sealed` datagram whose plaintext is one *inner* message.

Decoding is strict: exact lengths, bounded strings and lists, no trailing
bytes.  The only exception that leaves this module on bad input is
:class:`~lanpay.core.errors.DecodeError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import fields, replace
from functools import cached_property
from operator import attrgetter
from typing import Any, ClassVar

from . import text as text_rules
from .errors import DecodeError
from .frozen import frozen

MAGIC = b"LP"
VERSION = 1
HEADER = struct.Struct(">2sBB")
MAX_NAME = 32       # bytes of UTF-8
MAX_MEMO = 64       # bytes of UTF-8
MAX_LIST = 32       # entries in any list field
TAG_LEN = 16        # Poly1305 tag / confirmation tag
SIGNATURE = 64      # Ed25519 signature of an announce


class _Reader:
    """Bounds-checked cursor over a datagram; every short read is a DecodeError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError("truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        """One byte as an int (a length or a count)."""
        if self.pos >= len(self.data):
            raise DecodeError("truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def rest(self) -> bytes:
        chunk = self.data[self.pos:]
        self.pos = len(self.data)
        return chunk


class Field:
    """One field's codec.

    ``fmt`` is the struct format of a field whose size never depends on its
    value; runs of such fields are packed and unpacked by one compiled struct
    (see :class:`_Run`), the others go through ``write`` and ``read``.
    """

    fmt: str = ""

    def check(self, value: Any) -> None:
        """Refuse, before packing, a value struct would silently pad or cut."""

    def write(self, value: Any, out: bytearray) -> None:
        raise NotImplementedError

    def read(self, r: _Reader) -> Any:
        raise NotImplementedError


class Int(Field):
    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.st = struct.Struct(">" + fmt)

    def write(self, value: Any, out: bytearray) -> None:
        try:
            out += self.st.pack(value)
        except struct.error as exc:
            raise ValueError(f"integer out of range: {value!r}") from exc

    def read(self, r: _Reader) -> Any:
        return self.st.unpack(r.take(self.st.size))[0]


class Fixed(Field):
    """Exactly ``n`` bytes (keys, nonces, tags)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.fmt = f"{n}s"

    def check(self, value: Any) -> None:
        if len(value) != self.n:
            raise ValueError(f"expected {self.n} bytes, got {len(value)}")

    def write(self, value: Any, out: bytearray) -> None:
        self.check(value)
        out += value

    def read(self, r: _Reader) -> Any:
        return r.take(self.n)


class Blob(Field):
    """Up to ``limit`` bytes behind a one-byte length."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def write(self, value: Any, out: bytearray) -> None:
        if len(value) > self.limit:
            raise ValueError(f"at most {self.limit} bytes")
        out.append(len(value))
        out += value

    def read(self, r: _Reader) -> Any:
        n = r.byte()
        if n > self.limit:
            raise DecodeError("field too long")
        return r.take(n)


def has_control(text: str, word: bool = False) -> bool:
    """Whether text breaks the rules for shown text (:mod:`.text`): controls, bidi, bad UTF-8;
    with ``word``, the rules for a name as well."""
    return not _plain(text, word) and text_rules.problem(text, word=word) is not None


def _plain(text: str, word: bool = False) -> bool:
    """Printable ASCII (U+0020 to U+007E; without the space for a name) breaks none of the
    text rules: most memos and names are, and this is a C call or two where the rules walk
    the text a character at a time."""
    return text.isascii() and text.isprintable() and not (word and " " in text)


class Text(Blob):
    """UTF-8 text, bounded in bytes, keeping :mod:`.text`'s rules (else it could rewrite a terminal)."""

    word = False                      # a name: the rules for a name as well
    what = "text"

    def write(self, value: Any, out: bytearray) -> None:
        word = self.word
        if not (isinstance(value, str) and _plain(value, word)) and (
                found := text_rules.problem(value, word=word)) is not None:
            raise ValueError(f"{self.what} {found}")
        super().write(value.encode("utf-8"), out)

    def read(self, r: _Reader) -> Any:
        return _text(super().read(r), self.word)


def _text(raw: bytes, word: bool = False) -> str:
    """A received text field's bytes as text, or the DecodeError that says why not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("bad utf-8") from exc
    if not _plain(text, word) and (found := text_rules.problem(text, word=word)) is not None:
        raise DecodeError(f"text {found}")
    return text


class Name(Text):
    """A name (or none, empty): :mod:`.text`'s rules for a name, one word that shows as what it is."""

    word = True
    what = "name"


class ListOf(Field):
    """Up to MAX_LIST records of a nested message type behind a one-byte count."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def write(self, value: Any, out: bytearray) -> None:
        if len(value) > MAX_LIST:
            raise ValueError(f"at most {MAX_LIST} entries")
        out.append(len(value))
        if value:
            write = _plan(self.cls).write
            for item in value:
                write(item, out)

    def read(self, r: _Reader) -> Any:
        n = r.byte()
        if n > MAX_LIST:
            raise DecodeError("list too long")
        if not n:
            return ()
        read = _plan(self.cls).read
        return tuple([read(r) for _ in range(n)])


U8, U16, U32, U64, I64 = Int("B"), Int("H"), Int("I"), Int("Q"), Int("q")
NAME, MEMO = Name(MAX_NAME), Text(MAX_MEMO)
KEY, NONCE, TAG, INC = Fixed(32), Fixed(16), Fixed(TAG_LEN), U64
SHARE = Blob(32)   # CPace share: empty unless a --code is in use


class _Run:
    """Consecutive fixed-size fields of one message, packed and unpacked by one struct.

    Reading field by field cost a slice and a struct call per field; a Pay's
    three integers or a Ping's five fields are one ``unpack_from`` this way.
    A short datagram is still the same ``DecodeError("truncated")``.
    """

    def __init__(self, names: list[str], codecs: list[Field]) -> None:
        self.st = struct.Struct(">" + "".join(codec.fmt for codec in codecs))
        self.size = self.st.size
        getter = attrgetter(*names)
        self.get: Callable[[Any], tuple[Any, ...]] = (
            getter if len(names) > 1 else lambda msg: (getter(msg),))
        self.checks = tuple((i, codec) for i, codec in enumerate(codecs)
                            if type(codec).check is not Field.check)

    def write(self, values: tuple[Any, ...], out: bytearray) -> None:
        for i, codec in self.checks:
            codec.check(values[i])
        try:
            out += self.st.pack(*values)
        except struct.error as exc:
            raise ValueError(f"value out of range in {values!r}: {exc}") from exc

    def read(self, r: _Reader) -> tuple[Any, ...]:
        pos = r.pos
        if pos + self.size > len(r.data):
            raise DecodeError("truncated")
        r.pos = pos + self.size
        return self.st.unpack_from(r.data, pos)


_Step = tuple[Callable[[Any], Any], Callable[[Any, bytearray], None], Callable[[_Reader], Any], bool]


def _steps(cls: type) -> list[_Step]:
    """(get, write, read, is_run) per run of fixed-size fields or per variable field, in SPEC order."""
    steps: list[_Step] = []
    run: list[tuple[str, Field]] = []

    def close_run() -> None:
        if run:
            packed = _Run([n for n, _ in run], [c for _, c in run])
            steps.append((packed.get, packed.write, packed.read, True))
            run.clear()

    for f, codec in zip(fields(cls), cls.SPEC):  # type: ignore[attr-defined]
        if codec.fmt:
            run.append((f.name, codec))
        else:
            close_run()
            steps.append((attrgetter(f.name), codec.write, codec.read, False))
    close_run()
    return steps


class _Plan:
    """One message type's codec, compiled once from its SPEC and its dataclass fields.

    Field names are read once here, not per message, and a message whose
    fields are all of fixed size encodes and decodes with a single struct call.
    """

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.steps = tuple(_steps(cls))
        kind = getattr(cls, "TYPE", None)
        self.outer_head = HEADER.pack(MAGIC, VERSION, kind) if kind is not None else b""
        self.inner_head = bytes([kind]) if kind is not None else b""
        if len(self.steps) == 1 and self.steps[0][3]:
            self.values = self.steps[0][2]

    def write(self, msg: Any, out: bytearray) -> None:
        for get, write, _, _ in self.steps:
            write(get(msg), out)

    def values(self, r: _Reader) -> Any:
        """The field values in SPEC order (replaced by the run's own read when there is only one)."""
        values: list[Any] = []
        for _, _, read, is_run in self.steps:
            if is_run:
                values += read(r)
            else:
                values.append(read(r))
        return values

    def read(self, r: _Reader) -> Any:
        return self.cls(*self.values(r))


_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    """The compiled codec of a message type, made on first use (so a new type needs no registration)."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _Plan(cls)
    return plan


# ---------------------------------------------------------------- outer messages

F_PAIRED = 0x01     # announce: the sender has a counterpart
F_LEAVING = 0x02    # announce: the sender is exiting; forget it
F_CODE = 0x04       # announce/handshake: the sender pairs only with a shared --code
F_RESUMING = 0x08   # handshake: the sender holds a relationship with an earlier incarnation of the receiver
F_ANSWER = 0x10     # announce: sent in answer to the receiver's announce; not to be answered again


class Message:
    TYPE: ClassVar[int]
    SPEC: ClassVar[tuple[Field, ...]]


@frozen
class Announce(Message):
    TYPE = 1
    incarnation: int
    session_port: int
    flags: int
    interval_ms: int
    name: str
    wants: str
    partner: str
    partner_inc: int
    public_key: bytes
    sign_key: bytes = bytes(32)          # Ed25519; with public_key, what the incarnation is derived from
    counter: int = 0                     # this announce's number among its sender's, from 1: a copy is never news
    signature: bytes = bytes(SIGNATURE)  # by sign_key, over the announce with this field zero and no pad
    pad: bytes = b""
    SPEC = (INC, U16, U8, U32, NAME, NAME, NAME, INC, KEY, KEY, U32, Fixed(SIGNATURE), Blob(255))


@frozen
class Hello(Message):
    """Initiator → responder: a commitment to its keys, revealed only after the reply."""

    TYPE = 2
    sender_inc: int
    target_inc: int
    flags: int
    name: str
    wants: str
    commitment: bytes
    nonce: bytes
    pad: bytes = b""
    SPEC = (INC, INC, U8, NAME, NAME, KEY, NONCE, Blob(255))


@frozen
class Reply(Message):
    """Responder → initiator; ``hello_nonce`` echoes the hello's, so only someone who saw
    that hello can answer it."""

    TYPE = 3
    sender_inc: int
    target_inc: int
    flags: int
    name: str
    hello_nonce: bytes
    public_key: bytes
    nonce: bytes
    share: bytes
    SPEC = (INC, INC, U8, NAME, NONCE, KEY, NONCE, SHARE)


@frozen
class Reveal(Message):
    TYPE = 4
    sender_inc: int
    target_inc: int
    public_key: bytes
    share: bytes
    tag: bytes
    SPEC = (INC, INC, KEY, SHARE, TAG)


@frozen
class Confirm(Message):
    TYPE = 5
    sender_inc: int
    target_inc: int
    tag: bytes
    SPEC = (INC, INC, TAG)


R_TAKEN, R_NOT_WANTED, R_CODE_MISMATCH, R_BAD_CODE, R_NAMESAKE, R_OLD_ALIVE = 1, 2, 3, 4, 5, 6
REFUSE_TEXT = {
    R_TAKEN: "already paired with someone else",
    R_NOT_WANTED: "waiting for someone else",
    R_CODE_MISMATCH: "one side uses a pairing code and the other does not",
    R_BAD_CODE: "the pairing codes do not match (or someone on the network interfered)",
    R_NAMESAKE: "it hears more than one peer with your name",
    R_OLD_ALIVE: "it is paired with another lanpay of your name, which still answers",
}
PASSING_REFUSALS = frozenset({R_NAMESAKE})    # what passes by itself (a namesake's record expires): no long cooldown


@frozen
class Refuse(Message):
    TYPE = 6
    sender_inc: int
    target_inc: int
    reason: int
    name: str
    SPEC = (INC, INC, U8, NAME)


@frozen
class Sealed(Message):
    """An encrypted session datagram; ``header`` (all before the ciphertext) is the AAD."""

    TYPE = 7
    session_id: bytes
    counter: int
    ciphertext: bytes
    SPEC = (Fixed(8), U64)

    @cached_property
    def header(self) -> bytes:
        """Made once; ``decode`` fills it in with the datagram's own first bytes, which are this."""
        return _SEALED_HEAD + self.session_id + self.counter.to_bytes(8, "big")


_SEALED_HEAD = HEADER.pack(MAGIC, VERSION, Sealed.TYPE)


def sealed_header(session_id: bytes, counter: int) -> bytes:
    """The header (and AAD) of a Sealed datagram; the datagram is this followed by the ciphertext,
    exactly ``encode(Sealed(session_id, counter, ciphertext))``, without making the message."""
    if not 0 <= counter < 2**64:
        raise ValueError("a counter is a u64")
    return sealed_prefix(session_id) + counter.to_bytes(8, "big")


def sealed_prefix(session_id: bytes) -> bytes:
    """What every Sealed header of one session starts with; its 8-byte counter follows."""
    if len(session_id) != 8:
        raise ValueError("a session id is 8 bytes")
    return _SEALED_HEAD + session_id


OUTER: dict[int, type] = {c.TYPE: c for c in (Announce, Hello, Reply, Reveal, Confirm, Refuse, Sealed)}


# ---------------------------------------------------------------- inner messages

@frozen
class Rejection(Message):
    seq: int
    reason: int
    SPEC = (U64, U8)


REJECT_OVER_LIMIT, REJECT_REFUSED = 1, 2
REJECT_TEXT = {REJECT_OVER_LIMIT: "it would exceed their limit", REJECT_REFUSED: "refused"}


@frozen
class Pay(Message):
    """``floor``: every seq at or below it is resolved at the sender."""

    TYPE = 1
    seq: int
    floor: int
    amount: int
    memo: str
    SPEC = (U64, U64, U64, MEMO)


@frozen
class Ack(Message):
    """Cumulative acknowledgement (payments are applied in order: everything up to it is
    processed); ``rejections`` lists every rejected seq up to it above the sender's floor;
    bit i of ``held`` says seq ``cumulative + 2 + i`` arrived and waits for the gap below it."""

    TYPE = 2
    cumulative: int
    rejections: tuple[Rejection, ...]
    held: int = 0
    SPEC = (U64, ListOf(Rejection), U64)


@frozen
class Ping(Message):
    TYPE = 3
    ping_id: int
    quiet: int          # 1 when the sender has nothing outstanding
    out_settled: int    # payments the sender sent and saw confirmed
    in_settled: int     # payments the sender received and applied
    issued: int         # the highest payment number the sender has given out
    digest: bytes
    SPEC = (U32, U8, U64, U64, U64, NONCE)


@frozen
class Pong(Message):
    TYPE = 4
    ping_id: int
    quiet: int
    out_settled: int
    in_settled: int
    issued: int
    digest: bytes
    SPEC = (U32, U8, U64, U64, U64, NONCE)


@frozen
class Bye(Message):
    """The sender leaves: it applies nothing more.  ``cumulative`` and ``rejections`` say what
    it applied of the receiver's payments, as an Ack does; with ``complete`` set nothing above
    ``cumulative`` was applied, so the receiver's later payments never arrived."""

    TYPE = 5
    cumulative: int
    rejections: tuple[Rejection, ...]
    complete: int
    SPEC = (U64, ListOf(Rejection), U8)


E_SETTLED, E_REJECTED, E_PENDING = 0, 1, 2


@frozen
class Entry(Message):
    """One history line in a hand-back, from the sender's point of view.

    ``status`` is ``E_SETTLED`` (confirmed or received), ``E_REJECTED`` (with
    ``reason``, a REJECT_* code) or ``E_PENDING`` (the sender's payment not yet
    acknowledged: the receiver of the hand-back judges it as it would the payment).
    """

    outgoing: int
    seq: int
    amount: int
    status: int
    reason: int
    age_ms: int
    memo: str
    SPEC = (U8, U64, U64, U8, U8, U32, MEMO)


@frozen
class Earlier(Message):
    """The history lines of one direction the sender no longer keeps one by one: every line
    numbered ``through`` or below, as exact totals (from the sender's point of view, as an Entry).

    ``settled`` lines (confirmed or received) moved ``settled_cents`` in all; ``refused``
    lines (rejected) were for ``refused_cents`` that never moved.
    """

    outgoing: int
    through: int
    settled: int
    settled_cents: int
    refused: int
    refused_cents: int
    SPEC = (U8, U64, U64, U64, U64, U64)


@frozen
class Resume(Message):
    """One part of the survivor's record, handed to a restarted counterpart.

    Every part carries the same summary, so the parts may arrive in any order;
    ``in_cum`` is the last of the counterpart's payments the survivor applied,
    ``peer_issued`` the highest number it knows the lost process gave out;
    ``earlier`` holds the totals of the lines no longer kept, one record per
    direction that has any (so it costs one byte while nothing is folded).
    """

    TYPE = 6
    part: int
    parts: int
    balance: int
    out_next: int
    in_cum: int
    peer_issued: int
    out_settled: int
    in_settled: int
    entries: tuple[Entry, ...]
    earlier: tuple[Earlier, ...] = ()
    SPEC = (U32, U32, I64, U64, U64, U64, U64, U64, ListOf(Entry), ListOf(Earlier))


@frozen
class Resumed(Message):
    """The restarted side holds part ``part`` of the hand-back."""

    TYPE = 7
    part: int
    SPEC = (U32,)


@frozen
class Fenced(Message):
    """Sent under an old session's keys: the relationship went to a newer process of the
    receiver; ``cumulative`` is the last of its payments that was applied, and ``complete``
    as in :class:`Bye`."""

    TYPE = 8
    cumulative: int
    rejections: tuple[Rejection, ...]
    complete: int
    SPEC = (U64, ListOf(Rejection), U8)


@frozen
class Claimed(Message):
    """Someone at ``host`` claimed to be the receiver restarted; the sender did not believe it."""

    TYPE = 9
    host: str
    SPEC = (MEMO,)


D_OLD_ALIVE = 1     # the process the receiver would replace still answers: the relationship stays with it
D_OTHER = 2         # the sender's user accepted another process of the receiver's name
D_NOT_ACCEPTED = 3  # the sender's user did not accept in time


@frozen
class Declined(Message):
    """Under a session begun to hand the relationship back to the receiver: the sender will not
    (``reason``: ``D_OLD_ALIVE``, ``D_OTHER``, ``D_NOT_ACCEPTED``); the receiver stops waiting."""

    TYPE = 10
    reason: int
    SPEC = (U8,)


INNER: dict[int, type] = {c.TYPE: c for c in (Pay, Ack, Ping, Pong, Bye, Resume, Resumed, Fenced, Claimed,
                                              Declined)}


# ---------------------------------------------------------------- sizes that answer sizes

#: Every announce and every hello is padded to its kind's size, at least that of anything sent
#: in answer to it (to an announce an announce; to a hello a reply or a refusal): whoever makes
#: lanpay answer a forged source address never gets more bytes sent there than it sent.
ANNOUNCE_SIZE = 260
HELLO_SIZE = 160


def padded(msg: Announce | Hello) -> Announce | Hello:
    """``msg`` with the padding that brings it to its fixed size."""
    target = ANNOUNCE_SIZE if isinstance(msg, Announce) else HELLO_SIZE
    bare = len(encode(replace(msg, pad=b"")))
    return replace(msg, pad=bytes(max(0, target - bare)))


def signed_part(msg: Announce) -> bytes:
    """The bytes an announce's signature covers: all of it but the signature and the padding."""
    return encode(replace(msg, signature=_NO_SIGNATURE, pad=b""))


_NO_SIGNATURE = bytes(SIGNATURE)


def short(msg: Message, size: int) -> bool:
    """A datagram of ``size`` bytes too short for its kind: it may ask for an answer larger than itself."""
    return (isinstance(msg, Announce) and size < ANNOUNCE_SIZE) or (isinstance(msg, Hello) and size < HELLO_SIZE)


# ---------------------------------------------------------------- entry points

def encode(msg: Message) -> bytes:
    """Encode an outer message (announce, handshake or sealed) to a datagram."""
    plan = _plan(type(msg))
    out = bytearray(plan.outer_head)
    plan.write(msg, out)
    if isinstance(msg, Sealed):
        out += msg.ciphertext
    return bytes(out)


def kind_of(data: bytes) -> str:
    """What a datagram says it is (``announce``, ``sealed``, …) from its header alone, for a
    log line: it proves nothing, and ``?`` is anything that is not a lanpay header."""
    if len(data) < HEADER.size:
        return "?"
    magic, version, kind = HEADER.unpack_from(data)
    cls = OUTER.get(kind) if magic == MAGIC and version == VERSION else None
    return cls.__name__.lower() if cls is not None else "?"


def decode(data: bytes) -> Message:
    """Decode a datagram; raise DecodeError for anything not exactly well-formed."""
    if data[:4] == _SEALED_HEAD:          # nearly every datagram: straight to its three parts
        if len(data) < _SEALED_SIZE:
            raise DecodeError("truncated")
        if len(data) < _SEALED_SIZE + TAG_LEN + 1:
            raise DecodeError("sealed body too short")
        msg = Sealed(data[4:12], int.from_bytes(data[12:20], "big"), data[20:])
        msg.__dict__["header"] = data[:_SEALED_SIZE]     # the property's own value, not computed again
        return msg
    if len(data) < HEADER.size:
        raise DecodeError("too short")
    magic, version, kind = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DecodeError("not a lanpay datagram")
    if version != VERSION:
        raise DecodeError(f"unsupported version {version}")
    cls = OUTER.get(kind)
    if cls is None:
        raise DecodeError(f"unknown type {kind}")
    r = _Reader(data)
    r.pos = HEADER.size
    if cls is Sealed:
        sid, counter = _plan(Sealed).values(r)
        body = r.rest()
        if len(body) < TAG_LEN + 1:
            raise DecodeError("sealed body too short")
        return Sealed(sid, counter, body)
    msg = _plan(cls).read(r)
    _expect_end(r)
    return msg


def encode_inner(msg: Message) -> bytes:
    """Encode an inner message, the plaintext of a Sealed datagram."""
    kind = type(msg)
    if kind is Pay:
        return encode_pay(msg)
    if kind is Ack and not msg.rejections:                  # type: ignore[attr-defined]
        try:
            return _ACK_BARE.pack(_ACK_TYPE, msg.cumulative, 0, msg.held)  # type: ignore[attr-defined]
        except struct.error:
            pass                                            # out of range: the table says how
    plan = _plan(kind)
    out = bytearray(plan.inner_head)
    plan.write(msg, out)
    return bytes(out)


def decode_inner(data: bytes) -> Message:
    if not data:
        raise DecodeError("empty")
    if data[0] == _PAY_TYPE:
        return _decode_pay(data)
    if data[0] == _ACK_TYPE and len(data) == _ACK_BARE.size and data[9] == 0:
        _, cumulative, _, held = _ACK_BARE.unpack(data)
        return Ack(cumulative, (), held)              # no rejections: the common ack
    cls = INNER.get(data[0])
    if cls is None:
        raise DecodeError(f"unknown inner type {data[0]}")
    r = _Reader(data)
    r.pos = 1
    msg = _plan(cls).read(r)
    _expect_end(r)
    return msg


_SEALED_SIZE = 20                                   # header, session id, counter
_PAY_HEAD = struct.Struct(">BQQQB")                  # type, seq, floor, amount, memo length
_ACK_BARE = struct.Struct(">BQBQ")                   # type, cumulative, no rejections, held
_PAY_TYPE, _ACK_TYPE = Pay.TYPE, Ack.TYPE            # read once: a class attribute is a slower read


def _decode_pay(data: bytes) -> Pay:
    """Pay's SPEC read directly (the payer's half of every payment); the same errors, in the
    same order, as the table-driven reading it stands in for."""
    if len(data) < _PAY_HEAD.size:
        raise DecodeError("truncated")
    _, seq, floor, amount, n = _PAY_HEAD.unpack_from(data)
    if n > MAX_MEMO:
        raise DecodeError("field too long")
    end = _PAY_HEAD.size + n
    if len(data) < end:
        raise DecodeError("truncated")
    memo = _text(data[_PAY_HEAD.size:end]) if n else ""
    if len(data) != end:
        raise DecodeError("trailing bytes")
    return Pay(seq, floor, amount, memo)


def encode_pay(msg: Pay) -> bytes:
    """``encode_inner`` of a Pay, in one pack."""
    memo = msg.memo
    if not (isinstance(memo, str) and _plain(memo)) and (found := text_rules.problem(memo)) is not None:
        raise ValueError(f"text {found}")
    raw = memo.encode("utf-8")
    if len(raw) > MAX_MEMO:
        raise ValueError(f"at most {MAX_MEMO} bytes")
    try:
        return _PAY_HEAD.pack(_PAY_TYPE, msg.seq, msg.floor, msg.amount, len(raw)) + raw
    except struct.error as exc:
        raise ValueError(f"value out of range in {msg!r}: {exc}") from exc


def _expect_end(r: _Reader) -> None:
    if r.pos != len(r.data):
        raise DecodeError("trailing bytes")
