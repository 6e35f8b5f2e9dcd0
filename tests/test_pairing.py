"""The pairing handshake: its state machine, its checks, its timers, and a man in the middle.

The first part drives :mod:`lanpay.core.pairing` directly, message by message,
with the clock in the test's hands.  The last part puts a host between alice
and bob on the simulated LAN that ends both handshakes itself, and shows what
the users see: two different pairing codes, or, with ``--code``, no pairing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import importlib
import random
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lanpay.core import (announcer, counterpart, crypto, events, handback, handshakes, ledger, notices, pairing,
                         peers, restart, session, wire)
from lanpay.core.ledger import Ledger
from lanpay.core.retry import Retry
from lanpay.core.rtt import RttEstimator
from lanpay.core.pairing import HANDSHAKE_DEADLINE, HELLO_DEADLINE, TRANSITIONS, HandshakeError, HsState, Identity
from lanpay.core.counterpart import STARTUP_SETTLE
from lanpay.core.peer import SETTLE, Config, Peer, State
from lanpay.core.peers import PeerRecord
from driver import identity_in_band
from sim import Conditions, Host, Net

A_ADDR, B_ADDR = ("10.0.0.1", 40001), ("10.0.0.2", 40002)


def identity(name: str, incarnation: int, seed: int, code: str | None = None, wants: str = "") -> Identity:
    priv = crypto.new_private_key(random.Random(seed))
    return Identity(name, incarnation, priv, crypto.public_key(priv), wants, code)


def record(ident: Identity, addr: tuple[str, int] = B_ADDR, flags: int = 0) -> PeerRecord:
    """What an initiator knows of the responder from its announce."""
    flags |= wire.F_CODE if ident.code else 0
    return PeerRecord(ident.incarnation, ident.name, addr, ident.wants, flags, "", 0, ident.public_key, 0.0, 100.0)


ALICE = identity("alice", 10, 1)
BOB = identity("bob", 20, 2)


def start(i: Identity = ALICE, r: Identity = BOB, seed: int = 7) -> tuple[pairing.Handshake, pairing.Handshake, bytes]:
    """Hello then reply: the initiator (returned first) now holds the reply bytes."""
    rng = random.Random(seed)
    hs_i, hello = pairing.initiate(i, record(r), False, rng, 0.0)
    hs_r, reply = pairing.respond(r, wire.decode(hello), A_ADDR, False, rng, 0.0)
    return hs_i, hs_r, reply


def complete(i: Identity = ALICE, r: Identity = BOB) -> tuple[pairing.Handshake, pairing.Handshake]:
    hs_i, hs_r, reply = start(i, r)
    reveal = pairing.on_reply(hs_i, wire.decode(reply), 0.1)
    confirm = pairing.on_reveal(hs_r, wire.decode(reveal))
    pairing.on_confirm(hs_i, wire.decode(confirm))
    return hs_i, hs_r


# ================================================================ state machine
@pytest.mark.parametrize("old", list(HsState))
@pytest.mark.parametrize("new", list(HsState))
def test_the_transition_table_is_enforced(old: HsState, new: HsState) -> None:
    hs, _, _ = start()
    hs.state = old
    if new in TRANSITIONS[old]:
        hs.move(new)
        assert hs.state is new
    else:
        with pytest.raises(HandshakeError):
            hs.move(new)
        assert hs.state is old


def test_the_table_has_no_way_out_of_done_or_failed_and_every_state_can_fail() -> None:
    assert TRANSITIONS[HsState.DONE] == TRANSITIONS[HsState.FAILED] == frozenset()
    assert all(HsState.FAILED in TRANSITIONS[s] for s in HsState if s not in (HsState.DONE, HsState.FAILED))
    assert set(TRANSITIONS) == set(HsState)


def test_a_complete_handshake_gives_mirrored_keys_and_one_code() -> None:
    hs_i, hs_r = complete()
    assert hs_i.state is HsState.DONE and hs_r.state is HsState.DONE
    ki, kr = hs_i.keys, hs_r.keys
    assert ki is not None and kr is not None
    assert (ki.send_key, ki.recv_key) == (kr.recv_key, kr.send_key) and ki.send_key != ki.recv_key
    assert ki.session_id == kr.session_id and ki.code == kr.code
    assert len(ki.code) == 8 and ki.code[2] == ki.code[5] == "-" and ki.code.replace("-", "").isdigit()


def test_the_hello_carries_a_commitment_not_the_key() -> None:
    hs_i, _, _ = start()
    hello = wire.decode(hs_i.last_sent) if hs_i.state is HsState.HELLO_SENT else None
    assert isinstance(hello, wire.Hello)
    assert hs_i.pub_i not in hs_i.last_sent
    assert hello.commitment == crypto.digest(b"lanpay-v1-commit", hs_i.pub_i, hs_i.share_i, hs_i.nonce_i)


def test_a_reveal_that_does_not_match_the_commitment_is_refused() -> None:
    hs_i, hs_r, reply = start()
    reveal = wire.decode(pairing.on_reply(hs_i, wire.decode(reply), 0.1))
    other = crypto.public_key(crypto.new_private_key(random.Random(99)))
    with pytest.raises(HandshakeError, match="commitment"):
        pairing.on_reveal(hs_r, dataclasses.replace(reveal, public_key=other))
    assert hs_r.state is HsState.REPLY_SENT and hs_r.keys is None


def test_a_reply_whose_key_is_not_the_announced_one_is_refused() -> None:
    hs_i, _, _ = start()
    mallory = identity("bob", 20, 3)
    _, fake_reply = pairing.respond(mallory, wire.decode(hs_i.last_sent), A_ADDR, False, random.Random(1), 0.0)
    with pytest.raises(HandshakeError, match="announced key"):
        pairing.on_reply(hs_i, wire.decode(fake_reply), 0.1)
    assert hs_i.state is HsState.HELLO_SENT and hs_i.keys is None


def test_a_low_order_key_in_the_reply_is_refused() -> None:
    hs_i, _, reply = start()
    hs_i.expected_key = None                      # as when the reply is not checked against an announce
    low = bytes(32)
    with pytest.raises(HandshakeError, match="invalid key"):
        pairing.on_reply(hs_i, dataclasses.replace(wire.decode(reply), public_key=low), 0.1)


def test_a_bad_confirmation_and_a_confirmation_out_of_turn_are_refused() -> None:
    hs_i, hs_r, reply = start()
    with pytest.raises(HandshakeError):
        pairing.on_confirm(hs_i, wire.Confirm(20, 10, bytes(16)))       # before the reveal
    pairing.on_reply(hs_i, wire.decode(reply), 0.1)
    with pytest.raises(HandshakeError, match="does not verify"):
        pairing.on_confirm(hs_i, wire.Confirm(20, 10, bytes(16)))
    assert hs_i.state is HsState.REVEAL_SENT


def test_lost_answers_are_answered_again_with_the_same_bytes() -> None:
    hs_i, hs_r, reply = start()
    reveal = pairing.on_reply(hs_i, wire.decode(reply), 0.1)
    assert pairing.on_reply(hs_i, wire.decode(reply), 0.2) == reveal      # the reply came twice
    confirm = pairing.on_reveal(hs_r, wire.decode(reveal))
    assert pairing.on_reveal(hs_r, wire.decode(reveal)) == confirm        # the reveal came twice


def test_a_name_changed_in_transit_breaks_the_handshake() -> None:
    """Names, incarnations and flags are in the transcript: a tampered hello cannot complete."""
    rng = random.Random(5)
    hs_i, hello = pairing.initiate(ALICE, record(BOB), False, rng, 0.0)
    tampered = dataclasses.replace(wire.decode(hello), name="alice2")
    hs_r, reply = pairing.respond(BOB, tampered, A_ADDR, False, rng, 0.0)
    reveal = pairing.on_reply(hs_i, wire.decode(reply), 0.1)
    with pytest.raises(HandshakeError, match="does not verify"):
        pairing.on_reveal(hs_r, wire.decode(reveal))


# ================================================================ codes
def test_the_same_code_completes_and_binds_the_keys() -> None:
    hs_i, hs_r = complete(identity("alice", 10, 1, code="Blue  Harbour"), identity("bob", 20, 2, code="blue harbour"))
    plain_i, _ = complete()
    assert hs_i.keys.code == hs_r.keys.code
    assert hs_i.share_i and hs_r.share_r and len(hs_i.share_i) == 32
    assert hs_i.keys.send_key != plain_i.keys.send_key


def test_a_different_code_fails_at_the_responder_as_a_bad_code() -> None:
    hs_i, hs_r, reply = start(identity("alice", 10, 1, code="red fox"), identity("bob", 20, 2, code="blue whale"))
    reveal = pairing.on_reply(hs_i, wire.decode(reply), 0.1)
    with pytest.raises(HandshakeError) as caught:
        pairing.on_reveal(hs_r, wire.decode(reveal))
    assert caught.value.bad_code and caught.value.reason == wire.REFUSE_TEXT[wire.R_BAD_CODE]


def test_a_code_on_one_side_only_is_a_mismatch() -> None:
    hs_i, _, reply = start(identity("alice", 10, 1, code="red fox"), BOB)
    with pytest.raises(HandshakeError) as caught:
        pairing.on_reply(hs_i, wire.decode(reply), 0.1)
    assert caught.value.reason == wire.REFUSE_TEXT[wire.R_CODE_MISMATCH] and not caught.value.bad_code


# ================================================================ timers
def test_the_initiator_retransmits_its_hello_with_backoff_until_the_hello_deadline_then_fails() -> None:
    """Nobody answering a hello for HELLO_DEADLINE means it went to no one: try elsewhere."""
    hs_i, _, _ = start()
    hello = hs_i.last_sent
    sent_at = []
    now = 0.0
    while hs_i.state is HsState.HELLO_SENT:
        now = hs_i.next_timeout()
        assert hs_i.timer(now - 1e-9) is None              # nothing before the timer
        if hs_i.timer(now) == hello:
            sent_at.append(now)
    assert sent_at == pytest.approx([0.25, 0.75, 1.75, 3.75])
    assert hs_i.state is HsState.FAILED and now == HELLO_DEADLINE
    assert hs_i.next_timeout() is None and hs_i.timer(now + 100) is None


def test_the_reveal_is_retransmitted_on_its_own_schedule() -> None:
    hs_i, _, reply = start()
    reveal = pairing.on_reply(hs_i, wire.decode(reply), 1.0)
    assert hs_i.next_timeout() == pytest.approx(1.25)
    assert hs_i.timer(1.25) == reveal
    assert hs_i.next_timeout() == pytest.approx(1.75)


def test_handshake_messages_are_retried_on_the_one_retry_timer() -> None:
    """Payments, hand-back parts and handshakes share retry.Retry: the hello's timer is one,
    and a reveal starts a fresh one (a twin for a second reply gets its own)."""
    hs_i, _, reply = start()
    hello_timer = hs_i.retry
    assert isinstance(hello_timer, Retry) and hello_timer.next_at == hs_i.next_timeout() == 0.25
    hs_i.timer(0.25)
    assert hello_timer.retries == 1 and hello_timer.next_at == pytest.approx(0.75)
    pairing.on_reply(hs_i, wire.decode(reply), 1.0)
    assert isinstance(hs_i.retry, Retry) and hs_i.retry is not hello_timer and hs_i.retry.retries == 0


def test_the_responder_never_retransmits_and_fails_at_its_deadline() -> None:
    _, hs_r, _ = start()
    assert hs_r.next_timeout() == HANDSHAKE_DEADLINE
    assert hs_r.timer(5.0) is None and hs_r.state is HsState.REPLY_SENT
    assert hs_r.timer(HANDSHAKE_DEADLINE) is None and hs_r.state is HsState.FAILED


# ================================================================ tie-break, through the facade
def make_peer(name: str, incarnation: int, seed: int) -> Peer:
    """A peer whose incarnation is in ``[incarnation, 2 * incarnation)``: keys make incarnations,
    so an order is ground for, not chosen."""
    peer = Peer(Config(name=name), random.Random(seed), 0.0)
    peer.me = identity_in_band(name, incarnation)
    return peer


def sent_kinds(peer: Peer) -> list[type]:
    return [type(wire.decode(data)) for data, _ in peer.datagrams_to_send(0.0)]


def announce_of(peer: Peer) -> bytes:
    return wire.encode(peer._announce())


def test_the_lower_incarnation_initiates_and_the_higher_waits() -> None:
    low, high = make_peer("alice", 2**61, 1), make_peer("bob", 2**62, 2)
    for _ in range(2):                       # a start-up burst: one announce is answered, one pays the hello
        low.receive_datagram(announce_of(high), B_ADDR, 0.0)
        high.receive_datagram(announce_of(low), A_ADDR, 0.0)
    assert wire.Hello not in sent_kinds(low), "a namesake of bob gets a moment to show up first"
    for peer in (low, high):
        peer.handle_timeout(max(SETTLE, STARTUP_SETTLE))
    assert wire.Hello in sent_kinds(low) and low.state is State.PAIRING
    assert wire.Hello not in sent_kinds(high) and high.state is State.LOOKING


def test_a_hello_from_a_higher_incarnation_is_not_answered() -> None:
    low, high = make_peer("alice", 2**61, 1), make_peer("bob", 2**62, 2)
    rec = record(high.me, A_ADDR)
    _, hello = pairing.initiate(high.me, dataclasses.replace(rec, incarnation=low.incarnation), False,
                                random.Random(3), 0.0)
    low.receive_datagram(hello, B_ADDR, 0.0)
    assert sent_kinds(low) == [] and low.state is State.LOOKING


# ================================================================ a man in the middle
def mitm_lan(seed: int, code: str | None = None, mallory_code: str | None = None) -> tuple[Net, dict[str, Host]]:
    """alice and bob cannot reach each other; mallory answers each as the other.

    Mallory runs a 'bob' that only alice hears and an 'alice' that only bob
    hears: both handshakes end at mallory, which is what re-terminating means.
    """
    net = Net(seed, Conditions())
    hosts = {
        "alice": net.add("alice", code=code),
        "bob": net.add("bob", code=code),
        "m-bob": net.add("bob", label="m-bob", code=mallory_code),
        "m-alice": net.add("alice", label="m-alice", code=mallory_code),
    }
    for a, b in (("alice", "bob"), ("alice", "m-alice"), ("bob", "m-bob"), ("m-alice", "m-bob")):
        net.partition(a, b)
    return net, hosts


def relay(net: Net, hosts: dict[str, Host], until: float) -> None:
    """Mallory forwards every payment alice makes to 'bob' on to the real bob."""
    forwarded = 0
    while net.now < until:
        net.run(net.now + 0.05)
        received = hosts["m-bob"].of(events.PaymentReceived)
        for e in received[forwarded:]:
            hosts["m-alice"].peer.pay(e.amount, e.memo, net.now)
        forwarded = len(received)


@pytest.mark.parametrize("seed", range(3))
def test_a_man_in_the_middle_shows_different_codes_on_the_two_screens(seed: int) -> None:
    net, hosts = mitm_lan(seed)
    net.run(10)
    alice, bob = hosts["alice"], hosts["bob"]
    (to_alice,), (to_bob,) = alice.of(events.Paired), bob.of(events.Paired)
    assert to_alice.peer_addr == hosts["m-bob"].addr and to_bob.peer_addr == hosts["m-alice"].addr
    net.pay("alice", 1500, "hello bob")
    relay(net, hosts, net.now + 5)
    assert bob.of(events.PaymentReceived)[-1].amount == 1500      # the relay works: nothing looks wrong...
    assert to_alice.code != to_bob.code                           # ...except the codes users compare
    assert hosts["m-bob"].of(events.Paired)[0].code == to_alice.code
    assert hosts["m-alice"].of(events.Paired)[0].code == to_bob.code


@pytest.mark.parametrize("mallory_code", [None, "a guess", "blue harbour sevn"])
def test_a_man_in_the_middle_without_the_code_cannot_pair_at_all(mallory_code: str | None) -> None:
    net, hosts = mitm_lan(4, code="blue harbour seven", mallory_code=mallory_code)
    net.run(40)
    for name in ("alice", "bob", "m-alice", "m-bob"):
        assert hosts[name].of(events.Paired) == [], name
        assert hosts[name].peer.state is not State.PAIRED
    if mallory_code is not None:
        assert hosts["alice"].of(events.PairingFailed) and hosts["bob"].of(events.PairingFailed)


# ================================================================ the key schedule and sizes, as docs/PROTOCOL.md writes them
def framed_sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(4, "big") + part)
    return h.digest()


@pytest.mark.parametrize("code", [None, "blue harbour"])
def test_the_documented_key_schedule_reproduces_the_keys(code: str | None) -> None:
    """An independent reading of the protocol document derives the very same keys, code and tags."""
    hs_i, hs_r = complete(identity("alice", 10, 1, code=code), identity("bob", 20, 2, code=code))
    u64 = lambda n: n.to_bytes(8, "big")  # noqa: E731
    transcript = framed_sha256(b"lanpay-v1-pairing", b"alice", b"bob", u64(10), u64(20),
                               bytes([hs_i.flags, hs_r.flags]), hs_i.commitment, hs_i.nonce_i,
                               hs_r.pub_r, hs_r.nonce_r, hs_r.share_r, hs_i.pub_i, hs_i.share_i)
    dh = X25519PrivateKey.from_private_bytes(hs_i.dh_private).exchange(X25519PublicKey.from_public_bytes(hs_r.pub_r))
    pake = b""
    if code:
        pake = X25519PrivateKey.from_private_bytes(hs_i.pake_private).exchange(
            X25519PublicKey.from_public_bytes(hs_r.share_r))
    okm = HKDF(hashes.SHA256(), 112, framed_sha256(transcript), b"lanpay v1 keys").derive(dh + pake)
    keys = hs_i.keys
    assert (keys.send_key, keys.recv_key, keys.session_id) == (okm[:32], okm[32:64], okm[96:104])
    digits = f"{int.from_bytes(okm[104:112], 'big') % 10**6:06d}"
    assert keys.code == f"{digits[:2]}-{digits[2:4]}-{digits[4:]}"
    tag_i = hmac.new(okm[64:96], b"initiator" + framed_sha256(transcript), hashlib.sha256).digest()[:16]
    assert crypto.confirm_tag(keys, b"initiator", hs_i._transcript()) == tag_i
    assert hs_i.commitment == framed_sha256(b"lanpay-v1-commit", hs_i.pub_i, hs_i.share_i, hs_i.nonce_i)


def test_documented_sizes_of_fixed_messages() -> None:
    assert len(wire.encode(wire.Confirm(1, 2, bytes(16)))) == 36
    assert len(wire.encode(wire.Refuse(1, 2, wire.R_TAKEN, "alice"))) == 22 + 5
    assert len(wire.encode(wire.Hello(1, 2, 0, "alice", "", bytes(32), bytes(16)))) == 72 + 5
    assert len(wire.encode(wire.padded(wire.Hello(1, 2, 0, "alice", "", bytes(32), bytes(16))))) == wire.HELLO_SIZE
    assert len(wire.encode(wire.Reply(1, 2, 0, "bob", bytes(16), bytes(32), bytes(16), bytes(32)))) == 87 + 3 + 32
    assert len(wire.encode(wire.Reveal(1, 2, bytes(32), b"", bytes(16)))) == 69
    assert len(wire.encode(wire.Announce(1, 0, 0, 6000, "alice", "bob", "", 0, bytes(32)))) == 163 + 5 + 3
    assert len(wire.encode(wire.padded(wire.Announce(1, 0, 0, 6000, "a", "", "", 0, bytes(32))))) == wire.ANNOUNCE_SIZE
    assert (wire.ANNOUNCE_SIZE, wire.HELLO_SIZE) == (260, 160)
    longest = "x" * wire.MAX_NAME                  # the largest of each, as §3 gives them
    assert len(wire.encode(wire.Announce(1, 0, 0, 6000, longest, longest, longest, 0, bytes(32)))) == 259
    assert len(wire.encode(wire.Reply(1, 2, 0, longest, bytes(16), bytes(32), bytes(16), bytes(32)))) == 151
    assert len(wire.encode(wire.Refuse(1, 2, wire.R_TAKEN, longest))) == 54
    hello = wire.padded(wire.Hello(1, 2, 0, "alice", "bob", bytes(32), bytes(16)))
    assert len(hello.pad) == 160 - (72 + 5 + 3) and set(hello.pad) == {0}


def test_a_padded_hello_or_announce_is_never_smaller_than_what_answers_it() -> None:
    """The largest reply (longest name, a code share), refusal and announce fit in what asked for them."""
    longest = "x" * wire.MAX_NAME
    reply = wire.Reply(1, 2, wire.F_CODE, longest, bytes(16), bytes(32), bytes(16), bytes(32))
    refuse = wire.Refuse(1, 2, wire.R_TAKEN, longest)
    ann = wire.Announce(1, 0, 0, 6000, longest, longest, longest, 0, bytes(32))
    assert len(wire.encode(reply)) <= wire.HELLO_SIZE and len(wire.encode(refuse)) <= wire.HELLO_SIZE
    assert len(wire.encode(ann)) <= wire.ANNOUNCE_SIZE == len(wire.encode(wire.padded(ann)))
    assert len(wire.encode_inner(wire.Ping(1, 1, 0, 0, 0, bytes(16)))) == 46
    assert len(wire.encode_inner(wire.Pong(1, 1, 0, 0, 0, bytes(16)))) == 46
    assert len(wire.encode_inner(wire.Pay(1, 0, 100, "hi"))) == 26 + 2
    assert len(wire.encode_inner(wire.Resumed(7))) == 5
    rejections = (wire.Rejection(3, wire.REJECT_OVER_LIMIT), wire.Rejection(5, wire.REJECT_REFUSED))
    assert len(wire.encode_inner(wire.Bye(9, rejections, 1))) == 11 + 9 * 2
    assert len(wire.encode_inner(wire.Ack(9, rejections))) == 18 + 9 * 2      # held: 8 bytes more
    assert len(wire.encode_inner(wire.Fenced(9, rejections, 1))) == 11 + 9 * 2


def test_documented_sizes_of_sealed_messages() -> None:
    """A sealed datagram is 36 bytes longer than its plaintext: an 82-byte keepalive."""
    keys = crypto.derive_keys(bytes(32), b"", b"t", initiator=True)
    plain = wire.encode_inner(wire.Ping(1, 1, 0, 0, 0, bytes(16)))
    shell = wire.Sealed(keys.session_id, 5, b"")
    sealed = wire.Sealed(keys.session_id, 5, crypto.seal(keys.send_key, 5, shell.header, plain))
    assert len(wire.encode(sealed)) == 36 + len(plain) == 82


def test_documented_sizes_of_hand_back_parts() -> None:
    """59 bytes of summary (41 more per direction of folded totals) plus 24 and the memo per entry;
    the fullest part fits in 1 082 bytes."""
    entry = wire.Entry(1, 1, 100, wire.E_SETTLED, 0, 0, "rent")
    assert len(wire.encode_inner(wire.Resume(0, 1, -5, 2, 0, 0, 1, 0, ()))) == 59
    assert len(wire.encode_inner(wire.Resume(0, 1, -5, 2, 0, 0, 1, 0, (entry, entry)))) == 59 + 2 * (24 + 4)
    both = (wire.Earlier(1, 1, 1, 5, 0, 0), wire.Earlier(0, 1, 1, 5, 0, 0))
    assert len(wire.encode_inner(wire.Resume(0, 1, -5, 2, 0, 0, 1, 0, (), both))) == 59 + 2 * 41
    fullest = Ledger()                            # twelve lines whose memos fill a part to the byte
    for memo in ["m" * 58] * 9 + ["m" * 59] * 3:
        fullest.new_outgoing(1, memo, 0.0)
    [part] = fullest.snapshot(0.0)
    assert len(part.entries) == 12
    assert len(wire.encode_inner(part)) + 36 == 1082
    many = Ledger()
    for i in range(200):
        many.new_outgoing(1, "m" * (i % 65), 0.0)
    parts = many.snapshot(0.0)
    assert len(parts) > 1 and sum(len(p.entries) for p in parts) == 200
    assert all(len(p.entries) <= wire.MAX_LIST and len(wire.encode_inner(p)) + 36 <= 1082 for p in parts)


PROTOCOL = Path(__file__).resolve().parent.parent / "docs" / "PROTOCOL.md"


def test_every_constant_the_document_names_exists_in_the_core() -> None:
    """The constants table names where each value lives; every name it gives is real."""
    table = PROTOCOL.read_text().split("## 13. Constants", 1)[1]
    named = re.findall(r"`(\w+)\.([A-Z][A-Za-z_]*)`", table)
    assert len(named) >= 40
    for module, name in named:
        assert hasattr(importlib.import_module(f"lanpay.core.{module}"), name), f"{module}.{name}"


def test_the_documented_constants_have_their_values() -> None:
    """The values docs/PROTOCOL.md §13 gives: a change in the code must change the document too."""
    handshakes_kept = (handshakes.MAX_ATTEMPTS, handshakes.MAX_BRANCHES, handshakes.MAX_LATE, handshakes.MAX_BLOCKED)
    assert handshakes_kept == (32, 2, 4, 64)
    assert (peers.LOOKING_INTERVAL, peers.PAIRED_INTERVAL) == ((2.0, 3.0), (20.0, 30.0))
    assert (peers.MAX_PEERS, peers.MAX_PER_HOST) == (64, 4)
    assert (peers.MIN_LIFETIME, peers.MISSED_INTERVALS) == (3.0, 3)
    assert (announcer.FIRST_ANNOUNCES, announcer.UNSOLICITED_PER_SECOND) == ((0.0, 0.05, 0.1, 0.2, 0.3, 0.6), 20.0)
    assert (pairing.HELLO_RETRY, pairing.HELLO_RETRY_CAP, HELLO_DEADLINE, HANDSHAKE_DEADLINE) == (0.25, 2.0, 4.0, 10.0)
    assert (handshakes.COOLDOWN, handshakes.REFUSED_COOLDOWN, restart.IMPOSTOR_COOLDOWN) == (3.0, 10.0, 60.0)
    assert (restart.PROBE_TIME, restart.PROBE_SPACING, restart.REPAIR_WINDOW) == (2.5, 0.15, 30.0)
    assert (counterpart.SETTLE, counterpart.MAX_INITIATING, counterpart.MAX_SUCCESSORS) == (0.25, 4, 4)
    assert (counterpart.CONSENT_WAIT, counterpart.RESTORE_WAIT, counterpart.RESTORE_SILENCE) == (120.0, 150.0, 10.0)
    assert (counterpart.MAX_SURVIVOR_MISSES, counterpart.MAX_FENCED, session.FENCE_SPACING) == (2, 4, 0.5)
    assert (session.WINDOW, session.SPAN, session.PING_INTERVAL, session.MAX_PINGS) == (32, 128, 1.5, 32)
    assert (session.PONG_WAIT, session.FOLLOW_AFTER, session.STALL_GAP) == (0.5, 2.0, 2.5)
    assert (session.PACKET_THRESHOLD, session.THIN_LINEAR, session.SILENT_CAP) == (3, 6, 3.0)
    assert (RttEstimator().initial, RttEstimator().floor, RttEstimator().cap) == (0.25, 0.002, 1.0)
    assert (session.SILENT_AFTER, session.IN_DOUBT_AFTER, session.BYE_COPIES) == (3.5, 3.0, 3)
    assert session.CHALLENGE_SPACING == 0.5
    assert (ledger.MAX_AHEAD, ledger.SANE, ledger.PART_BYTES, ledger.MAX_PARTS) == (256, 2**53, 1000, 2**20)
    assert handback.PART_WINDOW == 16
    assert (wire.ANNOUNCE_SIZE, wire.HELLO_SIZE, announcer.Credit.CAP, announcer.Credit.LIMIT) == (260, 160, 65536, 256)
    assert wire.SIGNATURE == 64
    assert (counterpart.STARTUP_HOLD, counterpart.STARTUP_SETTLE, counterpart.SURVIVOR_WAIT) == (1.0, 0.4, 10.0)
    assert (ledger.MAX_DECLINED_LINES, ledger.NUMBER_GAP) == (1000, 1000)
    assert (notices.MAX_FACTS, notices.REPEAT_EVERY, notices.MAX_GROUPS, notices.NEW_PER_MINUTE) == (256, 60.0, 64, 8)
    assert wire.F_ANSWER == 0x10
    assert crypto.ReplayWindow().size == 1024
