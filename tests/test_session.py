"""Sessions between two real peers, driven by hand: what the users see when the network misbehaves.

A small zero-delay LAN with a hand-moved clock (:mod:`driver` on a perfect wire)
carries the datagrams; each test decides what is lost, replayed, forged or
flipped.  Forged datagrams are sealed with a peer's own session keys (an
authenticated peer that misbehaves) or with no key at all (a stranger).  Every
drop is checked by its reason.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from driver import Addr, Conditions, Datagram, Host, Net, Perfect, Speaker, identity_in_band, speaker
from lanpay.core import crypto, events, wire
from lanpay.core.amounts import MAX_PAYMENT_CENTS
from lanpay.core.errors import AmountError, DecodeError, DropReason, NotPaired, OverLimit, PeerUnavailable, UserError
from lanpay.core.ledger import MAX_AHEAD
from lanpay.core.announcer import UNSOLICITED_PER_SECOND
from lanpay.core.counterpart import STARTUP_SETTLE
from lanpay.core.handshakes import COOLDOWN, MAX_ATTEMPTS
from lanpay.core.peer import BROADCAST, MAX_BLOCKED, Config, Peer, State
from lanpay.core.peers import MAX_PEERS
from lanpay.core.session import BYE_COPIES, IN_DOUBT_AFTER, Mode, PACKET_THRESHOLD, SILENT_AFTER, THIN_LINEAR, WINDOW

Drop = Callable[[Peer, Peer, bytes], bool]


def keep_all(src: Peer, dst: Peer, data: bytes) -> bool:
    return False


def lose_all(src: Peer, dst: Peer, data: bytes) -> bool:
    return True


class Lan:
    """Peers on a zero-delay LAN (the shared driver on a perfect wire); the clock moves only when
    a test moves it.  Tests hold the cores themselves and hand datagrams over when they choose."""

    def __init__(self, seed: int = 1) -> None:
        self.net = Net(seed, Perfect(), echo=False)

    @property
    def now(self) -> float:
        return self.net.now

    @now.setter
    def now(self, value: float) -> None:
        self.net.now = value

    def add(self, name: str, **config: object) -> Peer:
        return self.net.add(name, **config).peer

    def host(self, peer: Peer) -> Host:
        return next(h for h in self.net.by_addr.values() if h.peer is peer)

    def addr(self, peer: Peer) -> Addr:
        return self.host(peer).addr

    def remove(self, peer: Peer) -> None:
        """The process is gone: nothing reaches it and it sends nothing."""
        self.net.kill_host(self.host(peer))

    def move(self, peer: Peer, addr: Addr) -> None:
        """The host got a new address (a new lease, another interface): same process, same memory."""
        self.net.move(self.host(peer), addr)

    def take(self, peer: Peer) -> list[bytes]:
        """What a peer wants to send now, taken off it without delivering."""
        return self.net.take(self.host(peer))

    def events(self, peer: Peer, kind: type | None = None) -> list:
        """Everything the peer reported so far (optionally of one kind)."""
        host = self.host(peer)
        self.net.collect(host)
        return list(host.events) if kind is None else host.of(kind)

    def deliver(self, src: Peer, dst: Peer, datagrams: list[bytes]) -> None:
        for data in datagrams:
            dst.receive_datagram(data, self.addr(src), self.now)

    def pump(self, drop: Drop = keep_all) -> None:
        """Deliver until nobody has anything left to send."""
        with self._dropping(drop):
            self.net.pump()

    def advance(self, until: float, drop: Drop = keep_all) -> None:
        """Run every timer due up to ``until``, delivering what they send unless ``drop`` says no."""
        with self._dropping(drop):
            self.net.pump()
            self.net.run(until)

    @contextmanager
    def _dropping(self, drop: Drop) -> Iterator[None]:
        """Lose, for the while, what ``drop`` picks among datagrams bound for a live peer."""
        def rule(d: Datagram) -> bool:
            return d.dst is not None and d.dst.alive and drop(d.src.peer, d.dst.peer, d.data)
        if drop is not keep_all:
            self.net.rules.append(rule)
        try:
            yield
        finally:
            if drop is not keep_all:
                self.net.rules.remove(rule)


def paired(seed: int = 1, alice: dict | None = None, bob: dict | None = None) -> tuple[Lan, Peer, Peer]:
    """Alice and Bob, paired and quiet at t = 1.0."""
    lan = Lan(seed)
    a = lan.add("alice", **(alice or {}))
    b = lan.add("bob", **(bob or {}))
    lan.advance(1.0)
    assert a.state is State.PAIRED and b.state is State.PAIRED
    return lan, a, b


def opened(receiver: Peer, data: bytes) -> wire.Message | None:
    """What a datagram says, read with the receiver's keys; None if it cannot be read."""
    try:
        msg = wire.decode(data)
    except DecodeError:
        return None
    if not isinstance(msg, wire.Sealed):
        return msg
    s = receiver.session
    if s is None or msg.session_id != s.keys.session_id:
        return None
    plain = crypto.open_sealed(s.keys.recv_key, msg.counter, msg.header, msg.ciphertext)
    return None if plain is None else wire.decode_inner(plain)


def of_kind(receiver: Peer, datagrams: list[bytes], kind: type) -> list[bytes]:
    return [d for d in datagrams if isinstance(opened(receiver, d), kind)]


def pays(receiver: Peer, datagrams: list[bytes]) -> list[wire.Pay]:
    return [m for d in datagrams if isinstance(m := opened(receiver, d), wire.Pay)]


def forge(sender: Peer, plaintext: bytes, counter: int | None = None) -> bytes:
    """A datagram sealed with the sender's real session keys: authenticated, but not what it would send."""
    s = sender.session
    assert s is not None
    if counter is None:
        counter = s.send_counter
        s.send_counter += 1
    header = wire.Sealed(s.keys.session_id, counter, b"").header
    return wire.encode(wire.Sealed(s.keys.session_id, counter, crypto.seal(s.keys.send_key, counter, header, plaintext)))


def forge_msg(sender: Peer, msg: wire.Message) -> bytes:
    return forge(sender, wire.encode_inner(msg))


def forge_msg_at(sender: Peer, msg: wire.Message, counter: int) -> bytes:
    return forge(sender, wire.encode_inner(msg), counter)


def drops(peer: Peer) -> dict[DropReason, int]:
    return {reason: n for reason, n in peer.drops.items() if n}


# ================================================================== replays, flips, strangers

def test_a_replayed_payment_is_dropped_and_applied_once() -> None:
    lan, a, b = paired()
    a.pay(1000, "lunch", lan.now)
    [datagram] = of_kind(b, lan.take(a), wire.Pay)
    for _ in range(3):
        lan.deliver(a, b, [datagram])
    assert b.status().balance == 1000
    assert len(lan.events(b, events.PaymentReceived)) == 1
    assert drops(b) == {DropReason.REPLAY: 2}


def test_every_bit_flip_of_a_payment_is_dropped_and_changes_nothing() -> None:
    lan, a, b = paired()
    a.pay(1000, "lunch", lan.now)
    [datagram] = of_kind(b, lan.take(a), wire.Pay)
    for bit in range(len(datagram) * 8):
        flipped = bytearray(datagram)
        flipped[bit // 8] ^= 1 << (bit % 8)
        lan.deliver(a, b, [bytes(flipped)])
    assert b.status().balance == 0 and b.history() == []
    assert lan.events(b, events.PaymentReceived) == []
    assert sum(b.drops.values()) == len(datagram) * 8
    assert set(drops(b)) <= {DropReason.MALFORMED, DropReason.NOT_FOR_US, DropReason.AUTH, DropReason.REPLAY}
    header = len(wire.Sealed(b"", 0, b"").header) + 8
    assert b.drops[DropReason.AUTH] >= (len(datagram) - header) * 8      # every flip in the sealed body
    lan.deliver(a, b, [datagram])                  # the genuine datagram still gets through afterwards
    assert b.status().balance == 1000


def test_a_stranger_without_the_key_fails_authentication() -> None:
    lan, a, b = paired()
    assert b.session is not None
    sid = b.session.keys.session_id
    header = wire.Sealed(sid, 5000, b"").header
    body = crypto.seal(bytes(32), 5000, header, wire.encode_inner(wire.Pay(1, 0, 1000, "")))
    lan.deliver(a, b, [wire.encode(wire.Sealed(sid, 5000, body))])
    assert drops(b) == {DropReason.AUTH: 1}
    assert b.status().balance == 0


def test_a_sealed_datagram_for_another_session_is_not_for_us() -> None:
    lan, a, b = paired()
    lan.deliver(a, b, [wire.encode(wire.Sealed(b"otherses", 1, bytes(40)))])
    assert drops(b) == {DropReason.NOT_FOR_US: 1}


def test_a_datagram_far_left_of_the_replay_window_is_dropped_unopened() -> None:
    lan, a, b = paired()
    a.pay(1000, "lunch", lan.now)
    [late] = of_kind(b, lan.take(a), wire.Pay)
    counter = wire.decode(late).counter  # type: ignore[attr-defined]
    lan.deliver(a, b, [forge_msg_at(a, wire.Ping(77, 0, 0, 0, 0, bytes(16)), counter + 5000)])  # the window moves on
    lan.deliver(a, b, [late])
    assert drops(b) == {DropReason.REPLAY: 1}
    assert b.status().balance == 0


# ================================================================== authenticated but wrong

@pytest.mark.parametrize(
    "plaintext",
    [
        b"\x00",
        b"\xff" * 20,
        wire.encode_inner(wire.Pay(1, 0, 1000, "lunch"))[:-1],
        wire.encode_inner(wire.Pay(1, 0, 1000, "lunch")) + b"\x00",
        b"\x01" + bytes(24) + b"\x03a\nb",
    ],
    ids=["unknown-type", "junk", "truncated-pay", "trailing-byte", "control-char-memo"],
)
def test_authenticated_garbage_is_a_violation(plaintext: bytes) -> None:
    lan, a, b = paired()
    lan.deliver(a, b, [forge(a, plaintext)])
    assert drops(b) == {DropReason.VIOLATION: 1}
    assert b.status().balance == 0 and b.history() == []


@pytest.mark.parametrize(
    "ack",
    [wire.Ack(1, ()), wire.Ack(0, (wire.Rejection(1, 1),)), wire.Ack(2**64 - 1, ())],
    ids=["cumulative", "range", "huge"],
)
def test_an_ack_for_payments_never_sent_is_a_violation(ack: wire.Ack) -> None:
    lan, a, b = paired()
    lan.deliver(b, a, [forge_msg(b, ack)])
    assert drops(a) == {DropReason.VIOLATION: 1}


def test_an_ack_past_what_was_sent_confirms_nothing() -> None:
    lan, a, b = paired()
    a.pay(1000, "", lan.now)
    lan.take(a)                                   # the payment is lost
    lan.deliver(b, a, [forge_msg(b, wire.Ack(2, ()))])
    assert drops(a) == {DropReason.VIOLATION: 1}
    assert a.status().pending == ((1, 1000, False),) and a.status().balance == 0
    assert lan.events(a, events.PaymentConfirmed) == []


@pytest.mark.parametrize(("amount", "memo"), [(5000, "lunch"), (1000, "dinner")])
def test_a_reused_seq_with_other_content_is_a_violation_and_moves_nothing(amount: int, memo: str) -> None:
    lan, a, b = paired()
    a.pay(1000, "lunch", lan.now)
    lan.pump()
    lan.deliver(a, b, [forge_msg(a, wire.Pay(1, 0, amount, memo))])
    assert drops(b) == {DropReason.VIOLATION: 1}
    assert b.status().balance == 1000
    assert [(e.amount, e.memo) for e in b.history()] == [(1000, "lunch")]


def test_an_exact_duplicate_payment_is_acknowledged_again() -> None:
    lan, a, b = paired()
    a.pay(1000, "lunch", lan.now)
    lan.pump()
    lan.deliver(a, b, [forge_msg(a, wire.Pay(1, 0, 1000, "lunch"))])
    acks = [opened(a, d) for d in of_kind(a, lan.take(b), wire.Ack)]
    assert acks == [wire.Ack(1, ())]
    assert b.status().balance == 1000 and drops(b) == {}
    assert len(lan.events(b, events.PaymentReceived)) == 1


@pytest.mark.parametrize(
    "pay",
    [wire.Pay(MAX_AHEAD + 1, 0, 100, ""), wire.Pay(0, 0, 100, ""), wire.Pay(1, 0, 0, "")],
    ids=["too-far-ahead", "seq-zero", "amount-zero"],
)
def test_an_impossible_payment_is_a_violation(pay: wire.Pay) -> None:
    lan, a, b = paired()
    lan.deliver(a, b, [forge_msg(a, pay)])
    assert drops(b) == {DropReason.VIOLATION: 1}
    assert b.status().balance == 0 and b.history() == []


@pytest.mark.parametrize("amount", [MAX_PAYMENT_CENTS + 1, 2**63, 2**64 - 1])
def test_a_payment_larger_than_anyone_can_send_is_a_violation(amount: int) -> None:
    """No honest peer can send more than MAX_PAYMENT_CENTS; taking it could push the
    balance past what a hand-back can carry."""
    lan, a, b = paired()
    lan.deliver(a, b, [forge_msg(a, wire.Pay(1, 0, amount, ""))])
    assert drops(b) == {DropReason.VIOLATION: 1}
    assert b.status().balance == 0


# ================================================================== retransmission

def test_duplicate_acks_never_trigger_a_retransmission() -> None:
    """TFTP's Sorcerer's Apprentice: resending on every duplicate ack doubles traffic forever."""
    lan, a, b = paired()
    a.pay(100, "first", lan.now)
    a.pay(200, "second", lan.now)
    first, second = of_kind(b, lan.take(a), wire.Pay)
    lan.deliver(a, b, [second])                                   # the first is lost
    for _ in range(50):                                           # the second arrives again and again
        lan.deliver(a, b, [forge_msg(a, wire.Pay(2, 0, 200, "second"))])
    acks = of_kind(a, lan.take(b), wire.Ack)
    assert len(acks) == 51
    timer = a.next_timeout()
    lan.deliver(b, a, acks)
    assert pays(b, lan.take(a)) == []
    assert a.next_timeout() == timer
    assert lan.events(a, events.PaymentConfirmed) == []           # the second waits for the first
    assert timer is not None
    lan.now = timer
    a.handle_timeout(lan.now)
    resent = of_kind(b, lan.take(a), wire.Pay)
    assert [p.seq for p in pays(b, resent)] == [1]   # the timer resends the oldest only: b holds the second
    lan.deliver(a, b, resent)
    lan.deliver(b, a, lan.take(b))
    assert [e.seq for e in lan.events(a, events.PaymentConfirmed)] == [1, 2]
    assert pays(b, lan.take(a)) == []


def test_an_unanswered_payment_is_resent_at_the_rto_then_with_doubling_intervals_up_to_a_cap() -> None:
    """Alone in flight, the first six resends wait one RTO each (no ack can reveal a loss
    sooner); then the wait doubles, up to 1 s while the peer may be there and 3 s once it is
    silent."""
    lan, a, b = paired()
    start = lan.now
    assert a.session is not None
    silent_at = a.session.last_heard + SILENT_AFTER      # nothing is heard from here on
    a.pay(100, "", start)
    sent_at: list[float] = []

    def record(src: Peer, dst: Peer, data: bytes) -> bool:
        if src is a and pays(b, [data]):
            sent_at.append(lan.now)
        return True

    lan.advance(start + 20.0, drop=record)
    gaps = [t2 - t1 for t1, t2 in zip(sent_at, sent_at[1:])]
    rto = a.rtt.rto
    assert rto == 0.002                          # a zero-delay LAN: the floor
    doubling = [min(1.0, rto * 2**n) for n in range(1, 12)]
    expected = [rto] * (1 + THIN_LINEAR) + doubling
    assert sent_at[0] == start
    armed_before_silence = sum(1 for t in sent_at[1:] if t <= silent_at)    # gaps ending before the peer went silent
    assert armed_before_silence >= 1 + THIN_LINEAR + 6
    n = min(len(expected), armed_before_silence)
    assert gaps[:n] == pytest.approx(expected[:n])
    after = [g for t, g in zip(sent_at, gaps) if t > silent_at]   # resends armed once silent
    assert all(g <= 1.0 + 1e-9 for t, g in zip(sent_at[1:], gaps) if t <= silent_at)
    assert after and after == pytest.approx([3.0] * len(after))
    assert len(sent_at) < 30                      # 20 s of a lost payment cost a bounded number of copies


def test_a_retransmitted_payment_is_not_used_to_measure_the_round_trip() -> None:
    """Karn's rule: an ack for a resent payment may answer either copy."""
    lan, a, b = paired()
    before = (a.rtt.srtt, a.rtt.rttvar, a.rtt.latest)
    a.pay(100, "", lan.now)
    lan.take(a)                                                   # the first copy is lost
    timer = a.next_timeout()
    assert timer is not None
    lan.now = timer
    a.handle_timeout(lan.now)
    resent = of_kind(b, lan.take(a), wire.Pay)
    lan.now += 0.004
    lan.deliver(a, b, resent)
    lan.deliver(b, a, of_kind(a, lan.take(b), wire.Ack))
    assert [e.seq for e in lan.events(a, events.PaymentConfirmed)] == [1]
    assert (a.rtt.srtt, a.rtt.rttvar, a.rtt.latest) == before


def test_a_payment_acknowledged_first_time_measures_the_round_trip() -> None:
    lan, a, b = paired()
    sent = lan.now
    a.pay(100, "", sent)
    datagrams = of_kind(b, lan.take(a), wire.Pay)
    lan.now += 0.004
    lan.deliver(a, b, datagrams)
    lan.deliver(b, a, of_kind(a, lan.take(b), wire.Ack))
    assert a.rtt.latest == lan.now - sent


def test_at_most_a_window_of_payments_is_in_flight_while_the_peer_is_unreachable() -> None:
    lan, a, b = paired()
    for n in range(1, 101):
        a.pay(n, f"p{n}", lan.now)
    seen: set[int] = set()

    def record(src: Peer, dst: Peer, data: bytes) -> bool:
        if src is a:
            seen.update(p.seq for p in pays(b, [data]))
        return True

    lan.advance(lan.now + 10.0, drop=record)
    assert seen == set(range(1, WINDOW + 1))
    lan.advance(lan.now + 30.0)
    assert a.status().pending == ()
    assert b.status().balance == sum(range(1, 101)) == -a.status().balance
    assert sorted(e.seq for e in lan.events(b, events.PaymentReceived)) == list(range(1, 101))


@pytest.mark.parametrize("seed", range(4))
def test_outcomes_of_payments_in_flight_together_are_told_in_number_order(seed: int) -> None:
    """Line mode prints each outcome as the core tells it: under loss, duplication and
    reordering, the confirmations (acks are cumulative) and a rejection among them come
    in payment-number order, each once."""
    net = Net(seed, Conditions(loss=0.3, duplicate=0.1, reorder=0.3, delay=(0.0002, 0.005)))
    alice, bob = net.add("alice"), net.add("bob", limit=10_000)
    assert net.run_until(lambda: alice.peer.state is State.PAIRED and bob.peer.state is State.PAIRED, 30)
    amounts = [100] * 60
    amounts[6] = amounts[40] = 20_000          # past bob's limit: rejected, the rest go on
    for cents in amounts:
        net.pay("alice", cents)
    assert net.run_until(lambda: alice.peer.status().pending == (), 120, every=0.1)
    told = [e for e in alice.events if isinstance(e, (events.PaymentConfirmed, events.PaymentRejected))]
    assert [e.seq for e in told] == list(range(1, 61))
    assert [e.seq for e in told if isinstance(e, events.PaymentRejected)] == [7, 41]
    assert alice.peer.status().balance == -5800 == -bob.peer.status().balance


# ================================================================== in doubt, silence, leaving

def between(x: Peer, y: Peer) -> Drop:
    """Lose everything either way between x and y."""
    return lambda src, dst, data: {src, dst} == {x, y}


def test_a_payment_unanswered_for_a_while_is_in_doubt_and_confirmed_when_the_peer_returns() -> None:
    lan, a, b = paired()
    start = lan.now
    a.pay(1000, "rent", start)
    cut = between(a, b)
    lan.advance(start + IN_DOUBT_AFTER - 0.001, drop=cut)
    assert lan.events(a, events.PaymentInDoubt) == []
    lan.advance(start + IN_DOUBT_AFTER, drop=cut)
    assert lan.events(a, events.PaymentInDoubt) == [events.PaymentInDoubt(1, 1000)]
    assert a.status().pending == ((1, 1000, True),)
    lan.advance(start + 8.0, drop=cut)
    assert lan.events(a, events.PaymentInDoubt) == [events.PaymentInDoubt(1, 1000)]    # told once
    assert a.status().balance == 0 and b.status().balance == 0
    lan.advance(start + 15.0)
    assert lan.events(a, events.PaymentConfirmed) == [
        events.PaymentConfirmed(1, 1000, "rent", -1000, was_in_doubt=True)]
    assert b.status().balance == 1000 and a.status().pending == ()


def test_a_payment_that_arrived_but_was_never_acknowledged_is_applied_once() -> None:
    lan, a, b = paired()
    start = lan.now
    a.pay(1000, "rent", start)
    acks_lost: Drop = lambda src, dst, data: src is b and dst is a
    lan.advance(start + 6.0, drop=acks_lost)
    assert b.status().balance == 1000
    assert lan.events(a, events.PaymentInDoubt) == [events.PaymentInDoubt(1, 1000)]
    lan.advance(start + 15.0)
    assert [e.was_in_doubt for e in lan.events(a, events.PaymentConfirmed)] == [True]
    assert len(lan.events(b, events.PaymentReceived)) == 1
    assert (a.status().balance, b.status().balance) == (-1000, 1000)


def test_silence_is_told_and_payments_wait_until_the_peer_is_back() -> None:
    lan, a, b = paired()
    assert a.session is not None
    quiet_from_bob: Drop = lambda src, dst, data: src is b
    lan.advance(lan.now + 0.5, drop=quiet_from_bob)
    heard = a.session.last_heard
    lan.advance(heard + SILENT_AFTER - 0.001, drop=quiet_from_bob)
    assert lan.events(a, events.PeerSilent) == [] and a.status().online
    lan.advance(heard + SILENT_AFTER, drop=quiet_from_bob)
    assert lan.events(a, events.PeerSilent) == [events.PeerSilent("bob")]
    assert not a.status().online
    with pytest.raises(PeerUnavailable, match="not responding"):
        a.pay(100, "", lan.now)
    assert a.history() == [] and a.status().pending == ()
    lan.advance(lan.now + 5.0)
    assert lan.events(a, events.PeerBack) == [events.PeerBack("bob")]
    assert len(lan.events(a, events.PeerSilent)) == 1
    a.pay(100, "", lan.now)
    lan.pump()
    assert b.status().balance == 100


def test_a_peer_that_says_goodbye_is_told_as_left_once_and_cannot_be_paid() -> None:
    lan, a, b = paired()
    b.close(lan.now)
    byes = of_kind(a, lan.take(b), wire.Bye)
    assert len(byes) == BYE_COPIES
    lan.deliver(b, a, byes)
    assert lan.events(a, events.PeerLeft) == [events.PeerLeft("bob")]
    assert not a.status().online
    with pytest.raises(PeerUnavailable, match="left"):
        a.pay(100, "", lan.now)
    with pytest.raises(NotPaired, match="closed"):
        b.pay(100, "", lan.now)
    assert b.status().state == "closed" and b.next_timeout() is None
    lan.remove(b)
    lan.advance(lan.now + 10.0)
    assert lan.events(a, events.PeerSilent) == []                 # left is not silent
    assert [d for d in lan.take(a) if isinstance(wire.decode(d), wire.Sealed)] == []


def test_a_payment_the_leaver_never_applied_is_void_at_its_bye_not_pending_for_ever() -> None:
    """Bob leaves while Alice's payment is on its way: he applies nothing more, and his BYE
    says so, so Alice is told at once that it never reached him (nothing moved on either side)."""
    lan, a, b = paired()
    a.pay(1000, "lunch", lan.now)
    lost = lan.take(a)                               # the PAY is still in flight
    b.close(lan.now)
    lan.deliver(b, a, lan.take(b))
    lan.deliver(a, b, lost)                          # arrives after he closed: not applied
    assert lan.events(a, events.PeerLeft) == [events.PeerLeft("bob")]
    assert lan.events(a, events.PaymentsVoided) == [events.PaymentsVoided(1, 1)]
    assert a.status().pending == () and a.status().balance == 0
    assert [(e.seq, e.status.value, e.reason) for e in a.history()] == [(1, "rejected", "void")]
    assert b.status().balance == 0 and lan.events(b, events.PaymentReceived) == []
    lan.advance(lan.now + 2 * IN_DOUBT_AFTER)
    assert lan.events(a, events.PaymentInDoubt) == []           # resolved: never in doubt


def test_a_bye_confirms_what_the_leaver_applied_when_its_ack_was_lost() -> None:
    lan, a, b = paired(bob={"limit": 500})
    a.pay(300, "", lan.now)
    a.pay(900, "", lan.now)                          # past bob's limit: refused
    lan.deliver(a, b, lan.take(a))
    lan.take(b)                                      # both acks lost
    b.close(lan.now)
    lan.deliver(b, a, lan.take(b))
    assert [e.seq for e in lan.events(a, events.PaymentConfirmed)] == [1]
    assert [e.seq for e in lan.events(a, events.PaymentRejected)] == [2]
    assert lan.events(a, events.PaymentsVoided) == []
    assert a.status().balance == -300 == -b.status().balance


def test_a_bye_that_claims_payments_never_sent_is_dropped() -> None:
    lan, a, b = paired()
    a.pay(100, "", lan.now)
    lan.take(a)
    lan.deliver(b, a, [forge_msg(b, wire.Bye(5, (), 1))])
    assert drops(a) == {DropReason.VIOLATION: 1}
    assert lan.events(a, events.PeerLeft) == [] and a.status().pending != ()


def test_a_bye_whose_list_cannot_hold_every_refusal_leaves_the_rest_in_doubt() -> None:
    """A BYE not ``complete`` (its list could not hold every refusal, ``Ledger.final``): what it
    settles is settled, and what lies above its mark may have been applied, so it is told in
    doubt, never void and never confirmed."""
    lan, a, b = paired()
    for _ in range(3):
        a.pay(200, "", lan.now)
    lan.take(a)
    lan.deliver(b, a, [forge_msg(b, wire.Bye(1, (wire.Rejection(1, wire.REJECT_OVER_LIMIT),), 0))])
    assert [e.seq for e in lan.events(a, events.PaymentRejected)] == [1]
    assert [e.seq for e in lan.events(a, events.PaymentInDoubt)] == [2, 3]
    assert lan.events(a, events.PaymentConfirmed) == [] and lan.events(a, events.PaymentsVoided) == []
    assert a.status().balance == 0 and [seq for seq, _, _ in a.status().pending] == [2, 3]


def test_after_a_bye_outside_normal_mode_a_pending_payment_is_still_told_in_doubt() -> None:
    """A BYE taken outside normal mode does not settle our payments (the mode is set by hand
    here): they stay pending, and are still told in doubt on time, so no wait lasts for ever."""
    lan, a, b = paired()
    a.pay(100, "", lan.now)
    lan.take(a)
    session = a.session
    assert session is not None
    session.mode = Mode.HANDING_BACK
    lan.deliver(b, a, [forge_msg(b, wire.Bye(0, (), 1))])
    assert lan.events(a, events.PeerLeft) == [events.PeerLeft("bob")]
    assert lan.events(a, events.PaymentsVoided) == []
    due = a.next_timeout()
    assert due is not None and due <= lan.now + IN_DOUBT_AFTER
    lan.advance(lan.now + IN_DOUBT_AFTER + 0.1)
    assert [e.seq for e in lan.events(a, events.PaymentInDoubt)] == [1]


def test_a_closed_peer_ignores_whatever_still_arrives() -> None:
    lan, a, b = paired()
    a.pay(1000, "", lan.now)
    late = lan.take(a)
    b.close(lan.now)
    lan.deliver(a, b, late)
    assert b.status().balance == 0 and lan.events(b, events.PaymentReceived) == []


def test_the_leaving_announce_makes_the_lan_forget_the_peer() -> None:
    lan, a, b = paired()
    assert a.table.get(b.incarnation) is not None
    b.close(lan.now)
    lan.pump()
    assert a.table.get(b.incarnation) is None


# ================================================================== limits

def test_a_refused_payment_is_never_confirmed_however_many_are_refused() -> None:
    """Bob's limit refuses everything; the first payment is delayed behind 62 others.

    Conservation: whatever the order of arrival, Alice is never debited for a
    payment Bob refused.
    """
    lan, a, b = paired(bob={"limit": 100})
    for _ in range(70):
        a.pay(500, "", lan.now)
    first_window = of_kind(b, lan.take(a), wire.Pay)
    lan.deliver(a, b, [d for d in first_window if opened(b, d).seq != 1])  # type: ignore[union-attr]
    lan.deliver(b, a, lan.take(b))
    lan.deliver(a, b, of_kind(b, lan.take(a), wire.Pay))            # the window refilled: 33..63
    lan.deliver(b, a, lan.take(b))
    lan.advance(lan.now + 20.0)
    assert a.status().pending == ()
    assert lan.events(a, events.PaymentConfirmed) == []
    assert len(lan.events(a, events.PaymentRejected)) == 70
    assert a.status().balance == b.status().balance == 0


def test_a_payment_past_the_payee_limit_is_rejected_with_a_reason() -> None:
    lan, a, b = paired(bob={"limit": 1500})
    a.pay(1000, "", lan.now)
    a.pay(1000, "", lan.now)
    lan.pump()
    assert lan.events(a, events.PaymentRejected) == [
        events.PaymentRejected(2, 1000, wire.REJECT_TEXT[wire.REJECT_OVER_LIMIT])]
    # each side in its own words: the payer hears of "their limit", the payee of its own
    assert wire.REJECT_TEXT[wire.REJECT_OVER_LIMIT] == "it would exceed their limit"
    assert lan.events(b, events.PaymentDeclined) == [
        events.PaymentDeclined(2, 1000, "", "it would exceed your limit of 15.00")]
    assert (a.status().balance, b.status().balance) == (-1000, 1000)


# ================================================================== restart and hand-back

def is_resume(receiver: Peer) -> Drop:
    return lambda src, dst, data: dst is receiver and isinstance(opened(receiver, data), wire.Resume)


def restarted_awaiting(seed: int = 1) -> tuple[Lan, Peer, Peer]:
    """Bob restarts; Alice (the survivor) re-pairs, but her hand-back has not arrived yet."""
    lan, a, b = paired(seed)
    a.pay(1000, "before", lan.now)
    lan.advance(10.5)
    lan.remove(b)
    b2 = lan.add("bob")
    lan.advance(20.0, drop=is_resume(b2))
    assert b2.state is State.RESTORING and a.state is State.PAIRED
    return lan, a, b2


def test_while_restoring_nothing_but_the_hand_back_is_taken() -> None:
    lan, a, b2 = restarted_awaiting()
    before = dict(b2.drops)
    lan.deliver(a, b2, [forge_msg(a, wire.Pay(1, 0, 500, ""))])
    assert b2.drops[DropReason.UNEXPECTED] == before.get(DropReason.UNEXPECTED, 0) + 1
    assert b2.status().balance == 0
    with pytest.raises(NotPaired, match="restoring"):
        b2.pay(100, "", lan.now)
    lan.advance(30.0)
    assert b2.state is State.PAIRED
    [restored] = lan.events(b2, events.Paired)
    assert restored.restored and restored.balance == 1000
    assert lan.events(a, events.PeerRestarted)
    b2.pay(100, "after", lan.now)
    lan.pump()
    assert (a.status().balance, b2.status().balance) == (-900, 900)


@pytest.mark.parametrize(
    "snap",
    [
        wire.Resume(0, 1, 0, 0, 0, 0, 0, 0, ()),
        wire.Resume(0, 0, 0, 5, 0, 0, 0, 0, ()),
        wire.Resume(0, 1, 0, 5, 0, 0, 0, 0, (wire.Entry(1, 9, 5, wire.E_SETTLED, 0, 0, ""),)),
        wire.Resume(0, 1, 0, 5, 0, 0, 0, 0, (wire.Entry(1, 0, 5, wire.E_SETTLED, 0, 0, ""),)),
        wire.Resume(0, 1, 0, 5, 3, 1, 0, 0, ()),
    ],
    ids=["no-next-seq", "no-parts", "entry-past-next", "seq-zero", "issued-below-applied"],
)
def test_a_hand_back_that_cannot_be_real_is_a_violation(snap: wire.Resume) -> None:
    lan, a, b2 = restarted_awaiting()
    before = b2.drops[DropReason.VIOLATION]
    lan.deliver(a, b2, [forge_msg(a, snap)])
    assert b2.drops[DropReason.VIOLATION] == before + 1
    assert b2.state is State.RESTORING


def test_the_survivor_refuses_a_hand_back_from_the_restarted_side() -> None:
    lan, a, b2 = restarted_awaiting()
    before = a.drops[DropReason.UNEXPECTED]
    lan.deliver(b2, a, [forge_msg(b2, wire.Resume(0, 1, 5, 1, 0, 0, 0, 0, ()))])
    assert a.drops[DropReason.UNEXPECTED] == before + 1
    assert a.status().balance == -1000


def test_a_stray_resumed_is_harmless() -> None:
    lan, a, b = paired()
    lan.deliver(b, a, [forge_msg(b, wire.Resumed(0))])
    assert drops(a) == {} and a.state is State.PAIRED


def test_a_part_of_a_hand_back_never_taken_is_unexpected() -> None:
    lan, a, b = paired()
    lan.deliver(a, b, [forge_msg(a, wire.Resume(0, 1, 0, 1, 0, 0, 0, 0, ()))])
    assert drops(b) == {DropReason.UNEXPECTED: 1}
    assert lan.take(b) == []


# ================================================================== the facade's own drops

def lone(seed: int = 3, **config: object) -> tuple[Lan, Peer]:
    """Alice, up for a moment (past her start-up wait) with nobody else around, at t = 0."""
    lan = Lan(seed)
    lan.now = -STARTUP_SETTLE
    p = lan.add("alice", **config)
    p.me = identity_in_band("alice", 2**62, code=p.me.code)      # between the strangers' bands below
    lan.now = 0.0
    lan.take(p)
    return lan, p


STRANGER = ("10.0.0.66", 4666)
KEY = bytes(range(32))


def hello(p: Peer, sender: int = 1, name: str = "mallory", wants: str = "", flags: int = 0,
          commitment: bytes = b"c" * 32, target: int | None = None) -> bytes:
    target = p.incarnation if target is None else target
    return wire.encode(wire.padded(wire.Hello(sender, target, flags, name, wants, commitment, b"n" * 16)))


def reason_of(p: Peer, data: bytes, now: float = 0.0) -> set[DropReason]:
    before = dict(p.drops)
    p.receive_datagram(data, STRANGER, now)
    return {r for r, n in p.drops.items() if n != before.get(r, 0)}


def test_junk_is_malformed() -> None:
    _, p = lone()
    assert reason_of(p, b"junk") == {DropReason.MALFORMED}
    assert reason_of(p, b"") == {DropReason.MALFORMED}


def test_our_own_broadcast_heard_back_is_ours() -> None:
    lan, p = lone()
    p.handle_timeout(lan.now)
    [announce] = lan.take(p)
    assert reason_of(p, announce) == {DropReason.OWN}
    assert len(p.table) == 0


@pytest.mark.parametrize(
    "kind",
    [
        lambda me, other: wire.padded(wire.Hello(me, other, 0, "x", "", KEY, b"n" * 16)),
        lambda me, other: wire.Reply(me, other, 0, "x", b"h" * 16, KEY, b"n" * 16, b""),
        lambda me, other: wire.Reveal(me, other, KEY, b"", b"t" * 16),
        lambda me, other: wire.Confirm(me, other, b"t" * 16),
        lambda me, other: wire.Refuse(me, other, wire.R_TAKEN, "x"),
    ],
    ids=["hello", "reply", "reveal", "confirm", "refuse"],
)
def test_handshake_messages_are_sorted_by_who_sent_them_and_to_whom(kind: Callable[[int, int], wire.Message]) -> None:
    _, p = lone()
    me = p.incarnation
    assert reason_of(p, wire.encode(kind(me, me))) == {DropReason.OWN}
    assert reason_of(p, wire.encode(kind(77, me + 1))) == {DropReason.NOT_FOR_US}


@pytest.mark.parametrize("kind", [wire.Reply, wire.Reveal, wire.Confirm, wire.Refuse])
def test_a_handshake_reply_nobody_asked_for_is_not_for_us(kind: type) -> None:
    _, p = lone()
    msgs = {
        wire.Reply: wire.Reply(1, p.incarnation, 0, "x", b"h" * 16, KEY, b"n" * 16, b""),
        wire.Reveal: wire.Reveal(1, p.incarnation, KEY, b"", b"t" * 16),
        wire.Confirm: wire.Confirm(1, p.incarnation, b"t" * 16),
        wire.Refuse: wire.Refuse(1, p.incarnation, wire.R_TAKEN, "x"),
    }
    assert reason_of(p, wire.encode(msgs[kind])) == {DropReason.NOT_FOR_US}


def test_a_hello_from_a_higher_incarnation_is_unexpected_we_would_initiate() -> None:
    _, p = lone()
    assert reason_of(p, hello(p, sender=2**64 - 1)) == {DropReason.UNEXPECTED}
    assert p.state is State.LOOKING


def test_a_hello_answers_with_a_reply_and_a_resent_hello_gets_it_again() -> None:
    lan, p = lone()
    assert reason_of(p, hello(p)) == set()
    [reply] = lan.take(p)
    assert isinstance(wire.decode(reply), wire.Reply) and p.state is State.PAIRING
    assert reason_of(p, hello(p)) == set()
    assert lan.take(p) == [reply]


def test_a_second_hello_with_another_commitment_gets_a_handshake_of_its_own() -> None:
    """A forged hello in the name of a peer cannot take the place of its real one."""
    lan, p = lone()
    p.receive_datagram(hello(p), STRANGER, 0.0)
    assert reason_of(p, hello(p, commitment=b"d" * 32)) == set()
    replies = [wire.decode(d) for d in lan.take(p)]
    assert [type(m) for m in replies] == [wire.Reply, wire.Reply] and len(p.pairer.attempts) == 2


def test_a_hello_while_another_handshake_is_under_way_is_answered_too() -> None:
    lan, p = lone()
    p.receive_datagram(hello(p, sender=1), STRANGER, 0.0)
    assert reason_of(p, hello(p, sender=2, name="trudy")) == set()
    assert len(p.pairer.attempts) == 2


@pytest.mark.parametrize("kind", ["reply", "confirm"])
def test_an_initiator_s_message_sent_to_the_responder_belongs_to_no_handshake(kind: str) -> None:
    _, p = lone()
    p.receive_datagram(hello(p, sender=1), STRANGER, 0.0)
    msg = (wire.Reply(1, p.incarnation, 0, "mallory", b"h" * 16, KEY, b"n" * 16, b"") if kind == "reply"
           else wire.Confirm(1, p.incarnation, b"t" * 16))
    assert reason_of(p, wire.encode(msg)) == {DropReason.NOT_FOR_US}


def test_a_reveal_that_breaks_its_commitment_belongs_to_no_handshake_and_pairs_nothing() -> None:
    lan, p = lone()
    p.receive_datagram(hello(p, sender=1), STRANGER, 0.0)
    lan.take(p)
    reveal = wire.encode(wire.Reveal(1, p.incarnation, KEY, b"", b"t" * 16))
    assert reason_of(p, reveal) == {DropReason.NOT_FOR_US}
    assert_not_paired(lan, p, "the revealed key does not match its commitment")
    assert [wire.decode(d) for d in lan.take(p) if isinstance(wire.decode(d), wire.Confirm)] == []


def test_a_hello_that_never_led_anywhere_ends_unnoticed_and_blocks_nobody() -> None:
    """Anyone can send a hello in anyone's name: one that is never followed up must cost
    the named peer nothing (no warning, no cooldown)."""
    lan, p = lone()
    p.receive_datagram(hello(p, sender=1), STRANGER, 0.0)
    lan.take(p)
    while (t := p.next_timeout()) is not None and p.state is State.PAIRING:   # no reveal ever comes
        p.handle_timeout(t)
    assert p.state is State.LOOKING
    assert lan.events(p, events.PairingFailed) == []
    lan.take(p)
    assert reason_of(p, hello(p, sender=1, commitment=b"e" * 32), now=t) == set()
    assert [type(wire.decode(d)) for d in lan.take(p)] == [wire.Reply] and p.state is State.PAIRING


def test_a_hello_naming_someone_else_is_refused_politely() -> None:
    lan, p = lone()
    assert reason_of(p, hello(p, wants="carol")) == set()
    [refusal] = lan.take(p)
    refuse = wire.decode(refusal)
    assert isinstance(refuse, wire.Refuse) and refuse.reason == wire.R_NOT_WANTED
    assert p.state is State.LOOKING


def test_a_hello_without_the_shared_code_is_refused() -> None:
    lan, p = lone(code="blue piano")
    assert reason_of(p, hello(p)) == set()
    [refusal] = lan.take(p)
    assert wire.decode(refusal).reason == wire.R_CODE_MISMATCH  # type: ignore[attr-defined]


def test_a_paired_peer_refuses_a_third_and_ignores_its_partner_s_old_hello() -> None:
    lan, a, b = paired()
    a.receive_datagram(hello(a, sender=1, name="carol"), STRANGER, lan.now)
    [refusal] = lan.take(a)
    assert wire.decode(refusal).reason == wire.R_TAKEN  # type: ignore[attr-defined]
    assert reason_of(a, hello(a, sender=b.incarnation, name="bob"), now=lan.now) == {DropReason.UNEXPECTED}
    assert a.state is State.PAIRED and a.status().peer_name == "bob"


def test_a_restarted_peer_s_hello_waits_until_the_old_process_is_judged_gone() -> None:
    """The survivor does not hand the relationship to a newcomer before its probe ends."""
    for seed in range(1, 40):
        lan, a, b = paired(seed)
        lan.advance(10.5)
        lan.remove(b)
        b2 = lan.add("bob")
        if b2.incarnation < a.incarnation:
            break
    else:
        pytest.fail("no seed gave the restarted peer the lower incarnation")
    lan.advance(20.0)
    assert a.drops[DropReason.UNEXPECTED] >= 1
    assert b2.state is State.PAIRED and a.state is State.PAIRED
    assert lan.events(a, events.PeerRestarted)



def test_a_hand_back_survives_losing_the_restarted_side_for_longer_than_the_handshake_deadline() -> None:
    """The survivor reveals, then hears nothing back for 12 s and gives up; the restarted side
    had finished the handshake. Once traffic flows again, both end paired and restored."""
    for seed in range(1, 40):
        lan, a, b = paired(seed)
        a.pay(250, "before", lan.now)
        lan.advance(3.0)
        lan.remove(b)
        b2 = lan.add("bob")
        if b2.incarnation > a.incarnation:      # the survivor initiates the re-pairing
            break
    else:
        pytest.fail("no seed gave the survivor the lower incarnation")
    revealed: list[float] = []

    def lose_restarted_side(src: Peer, dst: Peer, data: bytes) -> bool:
        if src is a and isinstance(wire.decode(data), wire.Reveal) and not revealed:
            revealed.append(lan.now)
        return src is b2 and bool(revealed) and lan.now < revealed[0] + 12.0

    lan.advance(lan.now + 20.0, drop=lose_restarted_side)
    assert revealed and lan.events(a, events.PairingFailed) == []    # a newcomer that went quiet is no news
    lan.advance(lan.now + 10.0)
    assert a.state is State.PAIRED and b2.state is State.PAIRED
    assert a.session is not None and a.session.info.incarnation == b2.incarnation
    assert b2.ledger.balance == 250 == -a.ledger.balance
    assert lan.events(b2, events.Paired)[-1].restored


# ================================================================== what the user may ask

@pytest.mark.parametrize(
    "config",
    [Config(name=""), Config(name="n" * 33), Config(name="a\tb"), Config(name="alice", want_peer="b\nob"),
     Config(name="alice", want_peer="x" * 33)],
    ids=["empty", "too-long", "tab", "peer-newline", "peer-too-long"],
)
def test_a_name_that_cannot_travel_is_refused_at_start(config: Config) -> None:
    with pytest.raises(UserError, match="printable"):
        Peer(config, random.Random(1), 0.0)


@pytest.mark.parametrize("cents", [0, -5, MAX_PAYMENT_CENTS + 1, 1.5, "10"], ids=repr)
def test_a_bad_amount_is_refused_and_nothing_moves(cents: object) -> None:
    lan, a, b = paired()
    with pytest.raises(AmountError):
        a.pay(cents, "", lan.now)  # type: ignore[arg-type]
    assert a.history() == [] and lan.take(a) == []


@pytest.mark.parametrize("memo", ["m" * 65, "é" * 33, "line\nbreak", "\x1b[2J"], ids=repr)
def test_a_memo_that_cannot_travel_is_refused(memo: str) -> None:
    lan, a, b = paired()
    with pytest.raises(UserError, match="memo"):
        a.pay(100, memo, lan.now)
    assert a.history() == []


def test_paying_before_pairing_is_refused() -> None:
    _, p = lone()
    with pytest.raises(NotPaired, match="not paired"):
        p.pay(100, "", 0.0)


def test_paying_past_one_s_own_limit_is_refused_counting_what_is_pending() -> None:
    lan, a, b = paired(alice={"limit": 1000})
    a.pay(600, "", lan.now)
    with pytest.raises(OverLimit, match="past your limit"):
        a.pay(401, "", lan.now)
    a.pay(400, "", lan.now)
    lan.pump()
    assert a.status().balance == -1000


# ================================================================== liveness odds and ends

def test_a_pong_for_a_ping_never_sent_does_not_skew_the_round_trip() -> None:
    lan, a, b = paired()
    before = (a.rtt.srtt, a.rtt.rttvar, a.rtt.latest)
    lan.deliver(b, a, [forge_msg(b, wire.Pong(123456, 0, 0, 0, 0, bytes(16)))])
    assert drops(a) == {}
    assert (a.rtt.srtt, a.rtt.rttvar, a.rtt.latest) == before


def test_a_peer_that_left_is_no_longer_pinged() -> None:
    lan, a, b = paired()
    b.close(lan.now)
    lan.pump()
    lan.remove(b)
    sealed: list[bytes] = []

    def record(src: Peer, dst: Peer, data: bytes) -> bool:
        if isinstance(wire.decode(data), wire.Sealed):
            sealed.append(data)
        return False

    lan.advance(lan.now + 60.0, drop=record)
    assert sealed == []
    assert lan.events(a, events.PeerSilent) == []


def test_both_views_are_compared_and_agree_when_quiet() -> None:
    lan, a, b = paired()
    a.pay(1000, "", lan.now)
    lan.advance(lan.now + 3.0)
    assert a.status().agree is True and b.status().agree is True
    assert lan.events(a, events.LedgerAgreement) == []


def test_a_real_disagreement_between_the_views_is_told_and_so_is_its_end() -> None:
    lan, a, b = paired()
    b.ledger.balance += 1                    # Bob's view goes wrong (as a bug or a bit rot would)
    lan.advance(lan.now + 5.0)
    assert events.LedgerAgreement(False) in lan.events(a, events.LedgerAgreement)
    assert a.status().agree is False
    b.ledger.balance -= 1
    lan.advance(lan.now + 5.0)
    assert lan.events(a, events.LedgerAgreement)[-1] == events.LedgerAgreement(True)
    assert a.status().agree is True


# ================================================================== floods stay bounded

def stranger(inc: int, name: str = "bob", key: bytes = KEY) -> Speaker:
    """Whoever announces as ``name`` with handshake key ``key``: from 2**40 up, ``inc`` names the band
    ``[inc, 2 * inc)`` its incarnation is in (past 2**63: the top sixteenth); below, ``inc`` just
    tells strangers apart."""
    if inc > 2**63:                # the top: above any incarnation but one in sixteen
        return speaker(name, 2**64 - 2**60, public=key, high=2**64, port=40000)
    if inc >= 2**40:
        return speaker(name, inc, public=key, port=40000)
    return speaker(name, seed=inc, public=key, port=40000)


def stranger_announce(inc: int, name: str = "bob", flags: int = 0, key: bytes = KEY, wants: str = "") -> bytes:
    return stranger(inc, name, key).announce(flags, 5000, wants=wants)


def inc_of(inc: int, name: str = "bob", key: bytes = KEY) -> int:
    return stranger(inc, name, key).me.incarnation


def test_a_flood_of_announces_gets_a_bounded_number_of_answers() -> None:
    lan, p = lone(code="secret words")          # a code nobody else has: nothing pairs
    for inc in range(10, 1010):
        p.receive_datagram(stranger_announce(inc, name=f"s{inc}", flags=wire.F_CODE | wire.F_PAIRED),
                           STRANGER, 0.0)
    answers = lan.take(p)
    assert 1 <= len(answers) <= UNSOLICITED_PER_SECOND
    assert len(p.table) <= MAX_PEERS
    p.receive_datagram(stranger_announce(5000, name="late", flags=wire.F_PAIRED), STRANGER, 1.0)
    assert len(lan.take(p)) == 1                # the budget refills with time


def test_a_flood_of_unwanted_hellos_gets_a_bounded_number_of_refusals() -> None:
    lan, p = lone()
    for sender in range(1, 1001):
        p.receive_datagram(hello(p, sender=sender, wants="carol"), STRANGER, 0.0)
    refusals = lan.take(p)
    assert 1 <= len(refusals) <= UNSOLICITED_PER_SECOND
    assert p.state is State.LOOKING and drops(p) == {}


def test_a_peer_using_a_code_when_we_do_not_is_reported_once() -> None:
    lan, p = lone()
    for _ in range(5):
        p.receive_datagram(stranger_announce(2**63, flags=wire.F_CODE), STRANGER, 0.0)
    assert lan.events(p) == [events.CodeDiffers("bob", STRANGER[0], theirs=True)]
    assert p.state is State.LOOKING


def test_two_peers_answering_to_one_name_get_neither_paired() -> None:
    lan, p = lone(want_peer="bob")
    p.receive_datagram(stranger_announce(2, key=KEY), ("10.0.0.7", 1), 0.0)     # lower incarnations:
    p.receive_datagram(stranger_announce(3, key=bytes(32)), ("10.0.0.8", 1), 0.0)  # they would initiate
    p.handle_timeout(1.0)
    conflicts = lan.events(p, events.NameConflict)
    assert [c.name for c in conflicts] == ["bob"]
    assert set(conflicts[0].addrs) == {("10.0.0.7", 1), ("10.0.0.8", 1)}
    assert p.state is State.LOOKING
    assert reason_of(p, hello(p, sender=inc_of(2, key=KEY), name="bob"), now=1.0) == {DropReason.UNEXPECTED}
    assert p.state is State.LOOKING


# ================================================================== pairing that goes wrong

class Stranger:
    """Someone on the LAN who speaks the handshake by hand, with a real key pair."""

    def __init__(self, lan: Lan, target: Peer, inc: int, seed: int = 9, key: bytes | None = None) -> None:
        rng = random.Random(seed)
        self.lan, self.target = lan, target
        self.private = crypto.new_private_key(rng)
        self.public = crypto.public_key(self.private)
        self.addr = ("10.0.0.99", 4999)
        # ``key``: the one its announces carry, if not its own (its incarnation is made from it)
        me = identity_in_band("bob", inc, private=self.private, public=self.public if key is None else key)
        self.speaker = Speaker(me, port=self.addr[1])
        self.inc = me.incarnation

    def announce(self) -> bytes:
        return self.speaker.announce(0, 5000)

    def reply(self, key: bytes | None = None, share: bytes = b"") -> bytes:
        """A reply to the hello the target sent us (its nonce echoed)."""
        [hs] = [h for h in self.target.pairer.attempts.values() if h.initiator]
        return wire.encode(wire.Reply(self.inc, self.target.incarnation, 0, "bob", hs.nonce_i,
                                      self.public if key is None else key, b"r" * 16, share))

    def send(self, data: bytes) -> set[DropReason]:
        before = dict(self.target.drops)
        self.target.receive_datagram(data, self.addr, self.lan.now)
        return {r for r, n in self.target.drops.items() if n != before.get(r, 0)}


def run_timers(lan: Lan, p: Peer, until: float, stop: Callable[[], bool] = lambda: False) -> list[wire.Message]:
    """Run one peer's timers up to ``until`` (or until ``stop()``); return what it sent, decoded."""
    sent: list[wire.Message] = []
    while not stop() and (t := p.next_timeout()) is not None and t <= until:
        lan.now = max(lan.now, t)
        p.handle_timeout(lan.now)
        sent += [wire.decode(d) for d in lan.take(p)]
    return sent


def initiating(key: bytes | None = None) -> tuple[Lan, Peer, Stranger]:
    """Alice has sent a Hello to a stranger calling itself bob (it has the higher incarnation)."""
    lan, p = lone()
    bob = Stranger(lan, p, 2**63, key=key)
    assert bob.send(bob.announce()) == set()        # a start-up burst: the first is answered,
    assert bob.send(bob.announce()) == set()        # the second pays for our hello
    sent = [wire.decode(d) for d in lan.take(p)]
    sent += run_timers(lan, p, 2.0, stop=lambda: bool(p.pairer))
    assert p.state is State.PAIRING and p.pairer.initiators() == 1
    assert any(isinstance(m, wire.Hello) for m in sent + [wire.decode(d) for d in lan.take(p)])
    return lan, p, bob


def attempt_ends(lan: Lan, p: Peer) -> None:
    """Let a pairing attempt run out (at once, or at its deadline)."""
    run_timers(lan, p, lan.now + 30.0, stop=lambda: p.state is not State.PAIRING)
    assert p.state is State.LOOKING


def assert_not_paired(lan: Lan, p: Peer, reason: str) -> None:
    """Nothing paired, and if the user was told, the reason names the check that failed.

    Whether one bad unauthenticated handshake message ends the attempt or is
    only dropped while the attempt waits for the genuine one is a policy choice;
    either way it must never pair and must be counted.
    """
    assert p.session is None and p.state in (State.LOOKING, State.PAIRING)
    assert lan.events(p, events.Paired) == []
    assert all(e.reason == reason for e in lan.events(p, events.PairingFailed))


def no_reveal_sent(lan: Lan, p: Peer) -> bool:
    return not any(isinstance(wire.decode(d), wire.Reveal) for d in lan.take(p))


def test_a_reply_with_a_key_other_than_the_announced_one_is_a_violation() -> None:
    lan, p, bob = initiating()
    assert bob.send(bob.reply(key=crypto.public_key(bytes(range(1, 33))))) == {DropReason.VIOLATION}
    assert_not_paired(lan, p, "the reply does not match the peer's announced key")
    assert no_reveal_sent(lan, p)


def test_a_reply_with_a_low_order_key_is_a_violation() -> None:
    lan, p, bob = initiating(key=bytes(32))
    assert bob.send(bob.reply(key=bytes(32))) == {DropReason.VIOLATION}
    assert_not_paired(lan, p, "the peer sent an invalid key")
    assert no_reveal_sent(lan, p)


def test_a_reply_carrying_a_code_share_when_we_use_no_code_is_a_violation() -> None:
    lan, p, bob = initiating()
    assert bob.send(bob.reply(share=b"s" * 32)) == {DropReason.VIOLATION}
    assert_not_paired(lan, p, wire.REFUSE_TEXT[wire.R_CODE_MISMATCH])
    assert no_reveal_sent(lan, p)


def test_a_confirmation_before_the_reply_is_a_violation() -> None:
    lan, p, bob = initiating()
    confirm = wire.encode(wire.Confirm(bob.inc, p.incarnation, b"t" * 16))
    assert bob.send(confirm) == {DropReason.VIOLATION}
    assert_not_paired(lan, p, "unexpected confirmation")


def test_a_confirmation_that_does_not_verify_never_pairs() -> None:
    lan, p, bob = initiating()
    assert bob.send(bob.reply()) == set()
    reveal = wire.decode(lan.take(p)[0])
    assert isinstance(reveal, wire.Reveal)
    assert bob.send(bob.reply()) == set()                      # a duplicated reply: the reveal again
    assert [wire.decode(d) for d in lan.take(p)] == [reveal]
    confirm = wire.encode(wire.Confirm(bob.inc, p.incarnation, b"t" * 16))
    assert bob.send(confirm) == {DropReason.VIOLATION}
    assert_not_paired(lan, p, "the confirmation does not verify")
    attempt_ends(lan, p)
    assert p.session is None and lan.events(p, events.Paired) == []


@pytest.mark.parametrize(("reason", "kind"), [(wire.R_TAKEN, events.PairingRefused),
                                              (wire.R_NOT_WANTED, events.PairingRefused),
                                              (wire.R_BAD_CODE, events.PairingFailed),
                                              (200, events.PairingRefused)])
def test_a_refusal_is_told_once_and_the_peer_left_alone_for_a_while(reason: int, kind: type) -> None:
    lan, p, bob = initiating()
    refusal = wire.encode(wire.Refuse(bob.inc, p.incarnation, reason, "bob"))
    assert bob.send(refusal) == set()
    bob.send(refusal)
    [told] = lan.events(p)
    assert isinstance(told, kind) and told.reason == wire.REFUSE_TEXT.get(reason, "refused")
    attempt_ends(lan, p)
    assert len(lan.events(p, kind)) == 1 and p.session is None
    lan.take(p)
    lan.now += 1.0
    bob.send(bob.announce())
    sent = run_timers(lan, p, lan.now + 2.0)
    assert p.state is State.LOOKING                            # cooling down: no new hello
    assert not any(isinstance(m, wire.Hello) for m in sent + [wire.decode(d) for d in lan.take(p)])


def test_a_namesake_refusal_passes_by_itself_the_peer_is_tried_again_soon_and_told_once() -> None:
    """bob hears another peer with our name and refuses us: that passes by itself (an ended
    process's record expires), so bob is tried again after the short cooldown, not the long
    one of a refusal that stays; the same refusal from the same process is told only once."""
    lan, p, bob = initiating()
    refusal = wire.encode(wire.Refuse(bob.inc, p.incarnation, wire.R_NAMESAKE, "bob"))
    bob.send(refusal)
    attempt_ends(lan, p)
    lan.take(p)
    lan.now += COOLDOWN + 0.1
    bob.send(bob.announce())
    bob.send(bob.announce())
    sent = [wire.decode(d) for d in lan.take(p)] + run_timers(lan, p, lan.now + 1.0, stop=lambda: bool(p.pairer))
    assert p.state is State.PAIRING and any(isinstance(m, wire.Hello) for m in sent + [wire.decode(d) for d in lan.take(p)])
    bob.send(refusal)
    attempt_ends(lan, p)
    assert lan.events(p) == [events.PairingRefused("bob", wire.REFUSE_TEXT[wire.R_NAMESAKE])]


def test_an_unanswered_hello_is_resent_only_as_far_as_the_target_s_own_traffic_pays_then_given_up() -> None:
    """A hello goes to an address known from an announce that may be forged: it is resent only
    while what that address sent covers it, so a forged source never draws more bytes than it sent."""
    lan, p, bob = initiating()
    sent = run_timers(lan, p, 1.0)
    assert not any(isinstance(m, wire.Hello) for m in sent)          # its announces paid for one hello
    assert bob.send(bob.announce()) == set()                         # its next announce pays for more
    sent = run_timers(lan, p, 30.0, stop=lambda: p.state is not State.PAIRING)
    # Its three announces brought 3 x 260 B; our answer and three hellos of 160 B took 740 B of it.
    assert wire.ANNOUNCE_SIZE == 260 and wire.HELLO_SIZE == 160
    assert sum(isinstance(m, wire.Hello) for m in sent) == 2
    assert p.state is State.LOOKING and p.credit.withheld >= 2
    assert [e.reason for e in lan.events(p, events.PairingFailed)] == ["bob stopped answering"]


def responding(code: str | None = None) -> tuple[Lan, Peer, Stranger, bytes]:
    """A stranger with the lower incarnation sent Alice a Hello committing to its real key
    (and, with a code, to a share that is a valid point but not made from Alice's code)."""
    lan, p = lone(**({"code": code} if code else {}))
    bob = Stranger(lan, p, 2**56)
    nonce = b"n" * 16
    share = crypto.public_key(bytes(range(2, 34))) if code else b""
    commitment = crypto.digest(b"lanpay-v1-commit", bob.public, share, nonce)
    flags = wire.F_CODE if code else 0
    assert bob.send(wire.encode(wire.padded(wire.Hello(bob.inc, p.incarnation, flags, "bob", "", commitment, nonce)))) == set()
    assert p.state is State.PAIRING
    lan.take(p)
    return lan, p, bob, share


def test_a_reveal_whose_tag_does_not_verify_pairs_nothing_and_ends_the_attempt_at_its_deadline() -> None:
    """The reveal matched the commitment, but the keys disagree: the initiator may have
    revealed for a forged reply.  Counted, never confirmed, and the real reveal may still come."""
    lan, p, bob, share = responding()
    reveal = wire.encode(wire.Reveal(bob.inc, p.incarnation, bob.public, share, b"t" * 16))
    assert bob.send(reveal) == {DropReason.VIOLATION}
    assert p.state is State.PAIRING and p.session is None and lan.take(p) == []
    attempt_ends(lan, p)
    assert lan.events(p, events.Paired) == [] and lan.events(p, events.PairingFailed) == []


def test_a_wrong_pairing_code_is_refused_back_and_not_counted_as_an_attack() -> None:
    """A typo in the code is a user's mistake: the other side is told, nothing is counted."""
    lan, p, bob, share = responding(code="blue piano")
    reveal = wire.encode(wire.Reveal(bob.inc, p.incarnation, bob.public, share, b"t" * 16))
    assert bob.send(reveal) == set()
    [refusal] = [wire.decode(d) for d in lan.take(p)]
    assert isinstance(refusal, wire.Refuse) and refusal.reason == wire.R_BAD_CODE
    assert [e.reason for e in lan.events(p, events.PairingFailed)] == [wire.REFUSE_TEXT[wire.R_BAD_CODE]]


def test_different_codes_never_pair() -> None:
    lan = Lan(1)
    a = lan.add("alice", code="blue piano")
    b = lan.add("bob", code="red piano")
    lan.advance(30.0)
    assert a.session is None and b.session is None
    assert lan.events(a, events.Paired) == [] and lan.events(b, events.Paired) == []
    bad_code = wire.REFUSE_TEXT[wire.R_BAD_CODE]
    assert bad_code in {e.reason for e in lan.events(a, events.PairingFailed) + lan.events(b, events.PairingFailed)}


def test_the_same_code_typed_differently_pairs_verified() -> None:
    lan = Lan(1)
    a = lan.add("alice", code="blue piano")
    b = lan.add("bob", code="  Blue   PIANO ")
    lan.advance(2.0)
    [pa], [pb] = lan.events(a, events.Paired), lan.events(b, events.Paired)
    assert pa.verified and pb.verified and pa.code == pb.code


def roles(a: Peer, b: Peer) -> tuple[Peer, Peer]:
    """(initiator, responder): the lower incarnation initiates."""
    return (a, b) if a.incarnation < b.incarnation else (b, a)


def test_a_lost_confirmation_is_made_up_for_by_the_first_sealed_datagram() -> None:
    lan = Lan(1)
    a, b = lan.add("alice"), lan.add("bob")
    initiator, responder = roles(a, b)
    no_confirm: Drop = lambda src, dst, data: src is responder and isinstance(wire.decode(data), wire.Confirm)
    lan.advance(2.0, drop=no_confirm)
    assert a.state is State.PAIRED and b.state is State.PAIRED
    assert lan.events(initiator, events.Paired)


def test_a_lost_confirmation_is_sent_again_when_the_reveal_is() -> None:
    lan = Lan(1)
    a, b = lan.add("alice"), lan.add("bob")
    initiator, responder = roles(a, b)
    confirms: list[float] = []

    def silent_responder(src: Peer, dst: Peer, data: bytes) -> bool:
        if src is responder and isinstance(wire.decode(data), wire.Confirm):
            confirms.append(lan.now)
            return len(confirms) == 1
        return src is responder and isinstance(wire.decode(data), wire.Sealed) and len(confirms) < 2

    lan.advance(3.0, drop=silent_responder)
    assert len(confirms) >= 2
    assert initiator.state is State.PAIRED and lan.events(initiator, events.Paired)


# ================================================================== restarts, real and claimed

@pytest.mark.parametrize("seed", [1, 3], ids=["newcomer-initiates", "survivor-initiates"])
def test_a_peer_that_left_and_came_back_gets_the_relationship_back(seed: int) -> None:
    lan, a, b = paired(seed)
    a.pay(1000, "", lan.now)
    lan.pump()
    b.close(lan.now)
    lan.pump()
    lan.remove(b)
    lan.advance(4.0)
    b2 = lan.add("bob")
    lan.advance(15.0)
    assert a.state is State.PAIRED and b2.state is State.PAIRED
    assert b2.status().balance == 1000 and a.status().balance == -1000
    told = lan.events(a)[-3:]
    assert [type(e) for e in told] == [events.PeerLeft, events.HandbackRequested, events.PeerRestarted]
    [awaited] = lan.events(b2, events.HandbackAwaited)
    assert told[1].code == awaited.code and (told[1].balance, told[1].payments) == (-1000, 1)
    assert drops(a) == {} and drops(b2) == {}


def claim_to_be_bob(a: Peer, now: float) -> None:
    """A newcomer announces itself as a fresh, free 'bob'."""
    a.receive_datagram(stranger_announce(2**64 - 1, name="bob"), STRANGER, now)


def test_someone_claiming_to_be_a_restarted_counterpart_that_still_answers_is_called_out() -> None:
    lan, a, b = paired()
    lan.advance(5.5)
    claim_to_be_bob(a, lan.now)
    lan.advance(10.0)
    assert a.state is State.PAIRED and a.status().peer_addr == lan.addr(b)
    assert lan.events(a, events.ImpostorSuspected) == [events.ImpostorSuspected("bob", STRANGER)]
    claim_to_be_bob(a, lan.now)                          # cooling down: no second probe
    assert a.state is State.PAIRED
    a.pay(100, "", lan.now)
    lan.pump()
    assert b.status().balance == 100


@pytest.mark.parametrize("newcomer", [2**64 - 1, 2**56], ids=["we-would-initiate", "it-would-initiate"])
def test_a_newcomer_that_never_finishes_pairing_leaves_the_relationship_as_it_was(newcomer: int) -> None:
    lan, a, b = paired()
    cut = between(a, b)
    lan.advance(5.5, drop=cut)
    a.receive_datagram(stranger_announce(newcomer, name="bob"), STRANGER, lan.now)
    lan.advance(25.0, drop=cut)
    assert a.state in (State.PAIRED, State.REPAIRING) and a.session is not None
    assert a.session.info.incarnation == b.incarnation and not a.who.successors
    assert all(e.reason == "bob stopped answering" for e in lan.events(a, events.PairingFailed))
    lan.advance(30.0)
    assert lan.events(a, events.PeerBack) == [events.PeerBack("bob")] and a.state is State.PAIRED
    a.pay(100, "", lan.now)
    lan.pump()
    assert b.status().balance == 100


def test_failed_handshakes_from_many_strangers_keep_memory_bounded() -> None:
    lan, p = lone()
    for sender in range(1, 3 * MAX_BLOCKED):
        p.receive_datagram(hello(p, sender=sender), STRANGER, lan.now)
        p.receive_datagram(wire.encode(wire.Reveal(sender, p.incarnation, KEY, b"", b"t" * 16)), STRANGER, lan.now)
        assert len(p.pairer.attempts) <= MAX_ATTEMPTS
        lan.take(p)
    attempt_ends(lan, p)
    assert p.drops[DropReason.NOT_FOR_US] == 3 * MAX_BLOCKED - 1
    assert lan.events(p, events.PairingFailed) == [] and not p.pairer.attempts
    assert len(p.cooldown) <= MAX_BLOCKED and len(p.warned) <= 4 * MAX_BLOCKED


def test_a_reveal_from_a_stranger_after_pairing_is_not_for_us() -> None:
    lan, a, b = paired()
    reveal = wire.encode(wire.Reveal(1, a.incarnation, KEY, b"", b"t" * 16))
    assert reason_of(a, reveal, now=lan.now) == {DropReason.NOT_FOR_US}


# ================================================================== closing

def test_closing_before_pairing_says_goodbye_to_the_lan_once() -> None:
    lan, p = lone()
    assert repr(BROADCAST) == "BROADCAST"
    p.close(0.0)
    out = p.datagrams_to_send(0.0)
    assert [dest for _, dest in out] == [BROADCAST]
    announce = wire.decode(out[0][0])
    assert isinstance(announce, wire.Announce) and announce.flags & wire.F_LEAVING
    p.close(1.0)
    p.handle_timeout(5.0)
    assert p.datagrams_to_send(5.0) == [] and p.next_timeout() is None


def test_a_peer_is_idle_once_its_payments_are_resolved() -> None:
    lan, a, b = paired()
    assert a.idle
    a.pay(100, "", lan.now)
    assert not a.idle
    lan.pump()
    assert a.idle


# ================================================================== who the session talks to

def test_a_copy_resent_by_a_third_host_does_not_steer_the_session() -> None:
    """Anyone can re-send a sealed datagram from elsewhere; it opens, but must not redirect our traffic."""
    lan, a, b = paired()
    a.pay(1000, "", lan.now)
    [pay] = of_kind(b, lan.take(a), wire.Pay)
    b.receive_datagram(pay, STRANGER, lan.now)             # the eavesdropper's copy arrives first
    lan.deliver(a, b, [pay])                                # the original is now a replay
    assert b.status().balance == 1000 and drops(b) == {DropReason.REPLAY: 1}
    assert b.status().peer_addr == lan.addr(a)
    to_alice = [data for data, dest in b.datagrams_to_send(lan.now) if dest == lan.addr(a)]
    assert of_kind(a, to_alice, wire.Ack)                   # the ack still goes to alice
    lan.deliver(b, a, to_alice)
    lan.advance(lan.now + 2.0)
    assert a.status().pending == () and a.status().balance == -1000


def test_a_peer_that_really_moved_is_followed() -> None:
    lan, a, b = paired()
    moved = ("10.0.0.42", 47999)
    lan.move(b, moved)
    lan.advance(lan.now + 10.0)
    assert a.status().peer_addr == moved
    a.pay(100, "", lan.now)
    lan.advance(lan.now + 1.0)
    assert b.status().balance == 100 and a.status().pending == ()


# ================================================================== namesakes and lost confirmations

def test_a_namesake_showing_up_mid_handshake_stops_the_pairing() -> None:
    lan, p, bob = initiating()
    p.receive_datagram(stranger_announce(2**64 - 2, name="bob", key=bytes(range(5, 37))), ("10.0.0.77", 1), lan.now)
    bob.send(bob.reply())
    assert p.session is None and lan.events(p, events.Paired) == []
    assert [c.name for c in lan.events(p, events.NameConflict)] == ["bob"]


def test_fatal_handshake_failures_from_many_strangers_keep_the_cooldowns_bounded() -> None:
    lan, p = lone()
    private = bytes(range(3, 35))
    public = crypto.public_key(private)
    nonce = b"n" * 16
    commitment = crypto.digest(b"lanpay-v1-commit", public, b"", nonce)
    for sender in range(1, 3 * MAX_BLOCKED):
        lan.now += 0.05                   # hellos from strangers are answered within a budget
        p.receive_datagram(wire.encode(wire.padded(wire.Hello(sender, p.incarnation, 0, f"s{sender}", "", commitment, nonce))),
                           STRANGER, lan.now)
        p.receive_datagram(wire.encode(wire.Reveal(sender, p.incarnation, public, b"", b"t" * 16)), STRANGER, lan.now)
        assert len(p.pairer.attempts) <= MAX_ATTEMPTS and p.session is None
    assert p.drops[DropReason.VIOLATION] == 3 * MAX_BLOCKED - 1
    attempt_ends(lan, p)
    assert lan.events(p, events.PairingFailed) == [] and len(p.cooldown) <= MAX_BLOCKED


def test_a_hello_from_someone_using_the_partner_s_name_while_paired_starts_a_probe_and_nothing_more() -> None:
    """Our counterpart may have restarted: the hello is answered and the old process probed,
    but nothing is committed before the probe says the old process is gone."""
    lan, a, b = paired()
    assert reason_of(a, hello(a, sender=1, name="bob"), now=lan.now) == set()
    assert wire.Reply in [type(wire.decode(d)) for d in lan.take(a)]
    assert a.state is State.PAIRED and a.who.probe is not None
    assert a.session is not None and a.session.info.incarnation == b.incarnation


def test_a_hello_offering_back_an_earlier_relationship_of_ours_is_refused_not_probed() -> None:
    """A Hello with F_RESUMING comes from a survivor of an earlier process of ours, offering its
    relationship back: we hold another now, so it is refused as taken; it is no claim to be our
    counterpart restarted, so no probe starts and nobody is told of an impostor."""
    lan, a, b = paired()
    assert reason_of(a, hello(a, sender=1, name="bob", flags=wire.F_RESUMING), now=lan.now) == set()
    [refusal] = lan.take(a)
    assert wire.decode(refusal).reason == wire.R_TAKEN  # type: ignore[attr-defined]
    assert a.state is State.PAIRED and a.who.probe is None
    lan.advance(10.0)
    assert not lan.events(a, events.ImpostorSuspected) and a.session.info.incarnation == b.incarnation


def test_a_pairing_whose_confirmation_never_arrives_still_ends_paired_on_both_sides() -> None:
    lan = Lan(1)
    a, b = lan.add("alice"), lan.add("bob")
    initiator, responder = roles(a, b)
    def mute(src: Peer, dst: Peer, data: bytes) -> bool:
        """The responder's confirmation and everything it seals are lost for 15 s."""
        return src is responder and lan.now < 15.0 and isinstance(wire.decode(data), (wire.Confirm, wire.Sealed))

    lan.advance(15.0, drop=mute)
    lan.advance(40.0)
    assert a.state is State.PAIRED and b.state is State.PAIRED
    assert a.session is not None and b.session is not None
    assert a.session.keys.session_id == b.session.keys.session_id
    for peer in (a, b):     # a second "Paired" says it is a redo, so the user compares the new code
        told = lan.events(peer, events.Paired)
        assert told and not told[0].again and all(e.again for e in told[1:])
        assert told[-1].code == peer.session.keys.code
    a.pay(100, "", lan.now)
    lan.pump()
    assert b.status().balance == 100


def test_one_long_lost_payment_does_not_make_later_ones_violations() -> None:
    """Seq 1 stays lost while hundreds of later payments go through: none of them is refused."""
    lan, a, b = paired()
    first = a.pay(1, "lost for a while", lan.now)

    def lose_first(src: Peer, dst: Peer, data: bytes) -> bool:
        msg = opened(dst, data)
        return isinstance(msg, wire.Pay) and msg.seq == first

    for _ in range(2 * MAX_AHEAD):
        a.pay(1, "", lan.now)
        lan.advance(lan.now + 0.01, drop=lose_first)
    assert b.drops[DropReason.VIOLATION] == 0
    lan.advance(lan.now + 30.0)
    assert a.idle and b.drops[DropReason.VIOLATION] == 0
    assert a.ledger.balance == -(2 * MAX_AHEAD + 1) and b.ledger.balance == 2 * MAX_AHEAD + 1
