"""The pairing handshake: four messages, keys from X25519 and HKDF over the transcript.

::

    initiator                                  responder
    HELLO   commit = H(pub_i, share_i, n_i)  →
                                             ←  REPLY   pub_r, n_r, share_r
    REVEAL  pub_i, share_i, tag_i           →
                                             ←  CONFIRM tag_r

The initiator commits to its key before it sees the responder's fresh nonce and
key, and reveals it only afterwards (as ZRTP does).  A man in the middle must
therefore fix both of its keys before it learns what the pairing code will be:
it gets one guess at making the two screens show the same code, instead of
grinding keys until they match.  With a shared ``--code``, CPace shares bind the
code into the keys, so a peer that does not know it cannot complete the
handshake, and an eavesdropper learns nothing to test guesses against offline.

The lower incarnation id initiates, so two peers that find each other at once
never cross handshakes.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from dataclasses import dataclass

from . import crypto, wire
from .frozen import lasting
from .peers import PeerRecord
from .retry import Retry

HELLO_RETRY = 0.25      # first retransmission of a handshake message
HELLO_RETRY_CAP = 2.0
HANDSHAKE_DEADLINE = 10.0
HELLO_DEADLINE = 4.0    # a hello nobody answers in this long went to no one: try elsewhere


class HsState(enum.Enum):
    HELLO_SENT = "hello-sent"       # initiator: commitment out, waiting for the reply
    REVEAL_SENT = "reveal-sent"     # initiator: keys known, waiting for the confirmation
    REPLY_SENT = "reply-sent"       # responder: waiting for the reveal
    DONE = "done"
    FAILED = "failed"


TRANSITIONS: dict[HsState, frozenset[HsState]] = {
    HsState.HELLO_SENT: frozenset({HsState.REVEAL_SENT, HsState.FAILED}),
    HsState.REVEAL_SENT: frozenset({HsState.DONE, HsState.FAILED}),
    HsState.REPLY_SENT: frozenset({HsState.DONE, HsState.FAILED}),
    HsState.DONE: frozenset(),
    HsState.FAILED: frozenset(),
}


@lasting
class Identity:
    """What this process is for its whole life."""

    name: str
    incarnation: int
    private_key: bytes
    public_key: bytes
    wants: str = ""
    code: str | None = None
    sign_private: bytes = b""      # the Ed25519 seed this process signs its announces with
    sign_public: bytes = b""


def new_identity(name: str, wants: str, code: str | None, rng: random.Random) -> Identity:
    """A process's identity for its life: a key for handshakes, one for signing its announces,
    and the incarnation both keys make (so nobody else's announce can claim it)."""
    private, sign_private = crypto.new_private_key(rng), rng.randbytes(crypto.KEY_SIZE)
    dh, signing = crypto.public_key(private), crypto.signing_public(sign_private)
    return Identity(name, crypto.incarnation_of(signing, dh), private, dh, wants, code, sign_private, signing)


class HandshakeError(Exception):
    """Internal: a handshake message failed a check; ``reason`` is for the user.

    Only a *fatal* error ends the handshake: one that comes from the peer we
    are pairing with (after its reveal matched its commitment).  Anything else
    may be a forgery by a third party and is merely dropped, so one datagram
    cannot stop two peers from pairing.
    """

    def __init__(self, reason: str, fatal: bool = False, bad_code: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
        self.bad_code = bad_code


@dataclass
class Handshake:
    me: Identity
    initiator: bool
    peer_name: str
    peer_inc: int
    peer_addr: tuple[str, int]
    expected_key: bytes | None
    state: HsState
    flags: int
    deadline: float
    peer_flags: int = 0
    nonce_i: bytes = b""
    commitment: bytes = b""
    pub_i: bytes = b""
    share_i: bytes = b""
    pub_r: bytes = b""
    nonce_r: bytes = b""
    share_r: bytes = b""
    dh_private: bytes = b""
    pake_private: bytes = b""
    keys: crypto.SessionKeys | None = None
    last_sent: bytes = b""
    retry: Retry | None = None   # the initiator's timer for last_sent (the responder only answers)
    refusal: str = ""        # what a refusal said; the handshake still waits for its deadline
    refused_for: int = 0     # the refusal's reason code
    bad_tag: bool = False    # responder: a reveal matched the commitment but not the keys (wrong --code?)
    deferred: bool = False   # responder: admission said later to a Reveal; our Reply goes again once it says yes

    def move(self, new: HsState) -> None:
        if new not in TRANSITIONS[self.state]:
            raise HandshakeError(f"bad transition {self.state.value} -> {new.value}")
        self.state = new

    @property
    def resuming(self) -> bool:
        """The counterpart holds a relationship with an earlier incarnation of us."""
        return bool(self.peer_flags & wire.F_RESUMING)

    @property
    def handing_back(self) -> bool:
        return bool(self.flags & wire.F_RESUMING)

    # --------------------------------------------------------- transcript and keys
    def _transcript(self) -> bytes:
        if self.initiator:
            names = (self.me.name, self.peer_name)
            incs = (self.me.incarnation, self.peer_inc)
            flags = (self.flags, self.peer_flags)
        else:
            names = (self.peer_name, self.me.name)
            incs = (self.peer_inc, self.me.incarnation)
            flags = (self.peer_flags, self.flags)
        return crypto.digest(b"lanpay-v1-pairing", names[0].encode(), names[1].encode(),
                             _u64(incs[0]), _u64(incs[1]), bytes(flags), self.commitment,
                             self.nonce_i, self.pub_r, self.nonce_r, self.share_r, self.pub_i, self.share_i)

    def _sid(self) -> bytes:
        first, second = (self.me.incarnation, self.peer_inc) if self.initiator else (self.peer_inc, self.me.incarnation)
        return crypto.digest(b"lanpay-v1-sid", _u64(first), _u64(second), self.nonce_i)

    def _pake_share(self, rng: random.Random) -> bytes:
        if self.me.code is None:
            return b""
        self.pake_private = crypto.new_private_key(rng)
        return crypto.cpace_share(self.pake_private, crypto.cpace_generator(self.me.code, self._sid()))

    def _derive(self, peer_pub: bytes, peer_share: bytes) -> None:
        if bool(self.me.code) != bool(peer_share):
            raise HandshakeError(wire.REFUSE_TEXT[wire.R_CODE_MISMATCH], fatal=not self.initiator)
        try:
            dh = crypto.x25519(self.dh_private, peer_pub)
            pake = crypto.cpace_secret(self.pake_private, peer_share) if self.me.code else b""
        except crypto.CryptoFailure as exc:
            raise HandshakeError("the peer sent an invalid key", fatal=not self.initiator) from exc
        self.keys = crypto.derive_keys(dh, pake, self._transcript(), initiator=self.initiator)

    def _tag(self, label: bytes) -> bytes:
        assert self.keys is not None
        return crypto.confirm_tag(self.keys, label, self._transcript())

    def _send(self, msg: wire.Message, now: float) -> bytes:
        self.last_sent = wire.encode(msg)
        self.retry = Retry.start(now, HELLO_RETRY) if self.initiator else None
        return self.last_sent

    # --------------------------------------------------------- retransmission
    def timer(self, now: float) -> bytes | None:
        """The message to send again now, if any; FAILED once the deadline passes."""
        if self.state in (HsState.DONE, HsState.FAILED):
            return None
        if now >= self.deadline:
            self.move(HsState.FAILED)
            return None
        if self.retry is None or not self.retry.due(now):
            return None
        self.retry.fire(now, HELLO_RETRY, HELLO_RETRY_CAP)
        return self.last_sent

    def next_timeout(self) -> float | None:
        if self.state in (HsState.DONE, HsState.FAILED):
            return None
        return min(self.deadline, self.retry.next_at) if self.retry is not None else self.deadline


# ------------------------------------------------------------------ initiator

def initiate(me: Identity, rec: PeerRecord, resuming: bool, rng: random.Random, now: float) -> tuple[Handshake, bytes]:
    flags = (wire.F_CODE if me.code else 0) | (wire.F_RESUMING if resuming else 0)
    hs = Handshake(me, True, rec.name, rec.incarnation, rec.addr, rec.public_key, HsState.HELLO_SENT,
                   flags, now + HELLO_DEADLINE)
    hs.dh_private = crypto.new_private_key(rng)
    hs.pub_i = crypto.public_key(hs.dh_private)
    hs.nonce_i = rng.randbytes(16)
    hs.share_i = hs._pake_share(rng)
    hs.commitment = _commit(hs.pub_i, hs.share_i, hs.nonce_i)
    hello = wire.padded(wire.Hello(me.incarnation, rec.incarnation, flags, me.name, me.wants, hs.commitment, hs.nonce_i))
    return hs, hs._send(hello, now)


def on_reply(hs: Handshake, msg: wire.Reply, now: float) -> bytes:
    """Initiator: the responder's key and nonce are in; derive keys and reveal ours."""
    if msg.hello_nonce != hs.nonce_i:
        raise HandshakeError("the reply answers another hello")
    if hs.state is HsState.REVEAL_SENT:
        return hs.last_sent              # our reveal was lost; the reply came again
    if hs.expected_key is not None and msg.public_key != hs.expected_key:
        raise HandshakeError("the reply does not match the peer's announced key")
    hs.pub_r, hs.nonce_r, hs.share_r, hs.peer_flags = msg.public_key, msg.nonce, msg.share, msg.flags
    hs._derive(hs.pub_r, hs.share_r)
    hs.move(HsState.REVEAL_SENT)
    hs.deadline = now + HANDSHAKE_DEADLINE   # the responder may be paired already: give its traffic time
    reveal = wire.Reveal(hs.me.incarnation, hs.peer_inc, hs.pub_i, hs.share_i, hs._tag(b"initiator"))
    return hs._send(reveal, now)


def on_confirm(hs: Handshake, msg: wire.Confirm) -> None:
    if hs.state is not HsState.REVEAL_SENT:
        raise HandshakeError("unexpected confirmation")   # e.g. a confirmation before our reveal: forged
    if not crypto.tags_equal(msg.tag, hs._tag(b"responder")):
        raise HandshakeError("the confirmation does not verify")
    hs.move(HsState.DONE)


def confirm_implicitly(hs: Handshake) -> None:
    """Initiator: a sealed datagram opened under the new keys, so the responder has them."""
    if hs.state is HsState.REVEAL_SENT:
        hs.move(HsState.DONE)


# ------------------------------------------------------------------ responder

def respond(me: Identity, msg: wire.Hello, addr: tuple[str, int], resuming: bool,
            rng: random.Random, now: float) -> tuple[Handshake, bytes]:
    flags = (wire.F_CODE if me.code else 0) | (wire.F_RESUMING if resuming else 0)
    hs = Handshake(me, False, msg.name, msg.sender_inc, addr, None, HsState.REPLY_SENT, flags,
                   now + HANDSHAKE_DEADLINE, peer_flags=msg.flags, nonce_i=msg.nonce, commitment=msg.commitment)
    hs.dh_private = me.private_key
    hs.pub_r = me.public_key
    hs.nonce_r = rng.randbytes(16)
    hs.share_r = hs._pake_share(rng)
    reply = wire.Reply(me.incarnation, msg.sender_inc, flags, me.name, msg.nonce, hs.pub_r, hs.nonce_r, hs.share_r)
    return hs, hs._send(reply, now)


def branch(hs: Handshake, msg: wire.Reply, now: float) -> tuple[Handshake, bytes] | None:
    """Initiator: a second, different reply to our hello.  One of the two may be forged by
    someone who saw the hello; reveal to both (a copy of the handshake each) rather than let
    the first to arrive decide.  None when the reply is the one we have (a repeat)."""
    if hs.state is not HsState.REVEAL_SENT or (msg.public_key, msg.nonce, msg.share) == (hs.pub_r, hs.nonce_r, hs.share_r):
        return None
    twin = dataclasses.replace(hs, state=HsState.HELLO_SENT, keys=None, pub_r=b"", nonce_r=b"", share_r=b"",
                               peer_flags=0, refusal="", refused_for=0, retry=None)
    return twin, on_reply(twin, msg, now)


def commitment_of(msg: wire.Reveal, nonce_i: bytes) -> bytes:
    """The commitment a reveal opens, given the hello's nonce."""
    return _commit(msg.public_key, msg.share, nonce_i)


def on_reveal(hs: Handshake, msg: wire.Reveal) -> bytes:
    """Responder: check the reveal against the commitment and the tag; answer with ours."""
    if hs.state is HsState.DONE:
        return hs.last_sent              # our confirmation was lost
    if _commit(msg.public_key, msg.share, hs.nonce_i) != hs.commitment:
        raise HandshakeError("the revealed key does not match its commitment")
    hs.pub_i, hs.share_i = msg.public_key, msg.share
    hs._derive(hs.pub_i, hs.share_i)
    if not crypto.tags_equal(msg.tag, hs._tag(b"initiator")):
        raise HandshakeError(wire.REFUSE_TEXT[wire.R_BAD_CODE] if hs.me.code else "the handshake does not verify",
                             fatal=False, bad_code=bool(hs.me.code))
    hs.move(HsState.DONE)
    confirm = wire.Confirm(hs.me.incarnation, hs.peer_inc, hs._tag(b"responder"))
    hs.last_sent = wire.encode(confirm)
    return hs.last_sent


def _commit(pub: bytes, share: bytes, nonce: bytes) -> bytes:
    return crypto.digest(b"lanpay-v1-commit", pub, share, nonce)


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")
