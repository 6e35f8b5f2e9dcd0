"""Loss recovery and keepalive traffic between two real peers on the hand-driven LAN.

What is checked is what a user and the network see: which PAY copies go out
and when, the balances after, how many datagrams an idle pair sends, and how
soon a counterpart that went away is told.
"""

from __future__ import annotations

from lanpay.core import events, wire
from lanpay.core.peer import Peer
from lanpay.core.session import PACKET_THRESHOLD, PONG_WAIT, SILENT_AFTER

from test_session import opened, paired, pays


def copies_of(lan, payer: Peer, payee: Peer, lose):  # type: ignore[no-untyped-def]
    """A drop rule that loses what ``lose(seq, copy)`` says and logs (time, seq) of every PAY copy."""
    log: list[tuple[float, int]] = []

    def drop(src: Peer, dst: Peer, data: bytes) -> bool:
        if src is payer:
            for pay in pays(payee, [data]):
                copy = sum(1 for _, s in log if s == pay.seq)
                log.append((lan.now, pay.seq))
                return bool(lose(pay.seq, copy))
        return False

    return drop, log


def test_a_payment_shown_lost_by_three_later_acks_is_resent_at_once_and_only_once() -> None:
    lan, a, b = paired()
    start = lan.now
    drop, log = copies_of(lan, a, b, lambda seq, copy: seq == 1 and copy == 0)
    for _ in range(5):
        a.pay(100, "", start)
    lan.pump(drop)                        # no clock movement: no timer could have fired
    assert [s for t, s in log if s == 1] == [1, 1]
    assert all(t == start for t, _ in log)
    assert a.status().balance == -500 and b.status().balance == 500
    lan.advance(start + 5.0)
    assert [s for _, s in log].count(1) == 2          # nothing more once it was acknowledged


def test_duplicate_acks_draw_no_second_early_resend_when_the_resend_is_lost_too() -> None:
    """Later payments keep drawing acks that repeat the hole, but only the timer resends again."""
    lan, a, b = paired()
    start = lan.now
    drop, log = copies_of(lan, a, b, lambda seq, copy: seq == 1 and copy < 2)
    for _ in range(8):
        a.pay(100, "", start)
    lan.pump(drop)
    assert [s for _, s in log].count(1) == 2           # the first copy and one early resend
    rto = a.rtt.rto
    lan.advance(start + rto / 2, drop)
    assert [s for _, s in log].count(1) == 2
    lan.advance(start + 1.0, drop)
    first_timer = [t for t, s in log if s == 1][2]
    assert first_timer >= start + rto                  # the third copy came from the timer
    assert a.status().balance == -800 and b.status().balance == 800
    assert not lan.events(a, events.PaymentInDoubt)


def test_too_few_payments_in_flight_never_resend_on_acks() -> None:
    """With fewer than the threshold in flight, repeated acks are copies of old news: only the
    timer resends."""
    lan, a, b = paired()
    start = lan.now
    drop, log = copies_of(lan, a, b, lambda seq, copy: seq == 1 and copy == 0)
    for _ in range(PACKET_THRESHOLD):
        a.pay(100, "", start)
    lan.pump(drop)                          # two later payments drew two acks repeating 0
    assert [s for _, s in log].count(1) == 1
    lan.advance(start + 1.0, drop)
    assert [s for t, s in log if s == 1 and t > start] == [1]
    assert a.status().balance == -300


def test_the_payment_timer_follows_the_measured_round_trip() -> None:
    """Round trips measured at 40 ms put the first resend about 40 ms (plus variance) out, not
    at the floor; on the zero-delay LAN it is the 2 ms floor."""
    lan, a, b = paired()
    assert a.rtt.rto == 0.002
    for _ in range(40):
        a.rtt.sample(0.040)
    start = lan.now
    drop, log = copies_of(lan, a, b, lambda seq, copy: copy == 0)
    a.pay(100, "", start)
    lan.advance(start + 1.0, drop)
    resent = [t for t, s in log if s == 1][1]
    assert 0.040 < resent - start < 0.050
    assert a.status().balance == -100


def sent_by(lan, peer: Peer, until: float) -> int:  # type: ignore[no-untyped-def]
    """Datagrams ``peer`` sends from now until ``until`` (everything is delivered)."""
    count = 0

    def drop(src: Peer, dst: Peer, data: bytes) -> bool:
        nonlocal count
        count += src is peer
        return False

    lan.advance(until, drop)
    return count


def test_an_idle_pair_sends_at_most_one_datagram_a_second_per_side_and_both_stay_online() -> None:
    lan, a, b = paired()
    start = lan.now
    counts = {"a": 0, "b": 0}
    kinds: set[type] = set()

    def drop(src: Peer, dst: Peer, data: bytes) -> bool:
        counts["a" if src is a else "b"] += 1
        kinds.add(type(opened(dst, data)))
        return False

    lan.advance(start + 60.0, drop)
    assert 0 < counts["a"] <= 60 and 0 < counts["b"] <= 60
    assert counts["a"] + counts["b"] <= 85                  # one ping and one pong every 1.5 s
    assert kinds <= {wire.Ping, wire.Pong, wire.Announce}
    assert a.status().online and b.status().online
    assert not lan.events(a, events.PeerSilent) and not lan.events(b, events.PeerSilent)


def test_every_other_keepalive_lost_is_no_silence() -> None:
    """Half of the keepalives lost, each way: the unanswered ping goes again, nobody is told silence."""
    lan, a, b = paired()
    start = lan.now
    sent = {id(a): 0, id(b): 0}

    def drop(src: Peer, dst: Peer, data: bytes) -> bool:
        if isinstance(opened(dst, data), (wire.Ping, wire.Pong)):
            sent[id(src)] += 1
            return sent[id(src)] % 2 == 1
        return False

    lan.advance(start + 30.0, drop)
    assert not lan.events(a, events.PeerSilent) and not lan.events(b, events.PeerSilent)
    assert sent[id(a)] + sent[id(b)] <= 90                  # still under 1.5 datagrams a second per side


def test_a_counterpart_that_went_away_is_told_silent_within_five_seconds_on_either_side() -> None:
    for gone_first in (0, 1):
        lan, a, b = paired(seed=3 + gone_first)
        stays, goes = (a, b) if gone_first else (b, a)
        lan.advance(lan.now + 7.3)              # some way into the keepalive rhythm
        assert stays.session is not None
        heard = stays.session.last_heard
        lan.remove(goes)                        # stopped or dead: nothing in, nothing out
        lan.advance(heard + 5.0)
        assert lan.events(stays, events.PeerSilent) == [events.PeerSilent("alice" if goes is a else "bob")]
        assert heard + SILENT_AFTER <= lan.now


def test_both_sides_ping_only_while_the_other_is_not_heard_from() -> None:
    """The side that does not lead sends Pongs only, unless the leader goes quiet."""
    lan, a, b = paired()
    assert a.session is not None and b.session is not None
    assert a.session.leads != b.session.leads
    follower = b if a.session.leads else a
    leader = a if follower is b else b
    pings: dict[int, int] = {id(a): 0, id(b): 0}

    def drop(src: Peer, dst: Peer, data: bytes) -> bool:
        if isinstance(opened(dst, data), wire.Ping):
            pings[id(src)] += 1
        return False

    lan.advance(lan.now + 30.0, drop)
    assert pings[id(follower)] == 0 and pings[id(leader)] >= 18
    before = pings[id(follower)]

    def leader_stopped(src: Peer, dst: Peer, data: bytes) -> bool:
        if src is follower and isinstance(opened(dst, data), wire.Ping):
            pings[id(src)] += 1
        return src is leader                    # nothing from the leader arrives any more

    lan.advance(lan.now + 3.0, leader_stopped)
    assert pings[id(follower)] > before               # it pings on its own now


def test_an_unanswered_ping_is_sent_again_after_half_a_second() -> None:
    lan, a, b = paired()
    assert a.session is not None
    leader = a if a.session.leads else b
    pinged: list[float] = []

    def drop(src: Peer, dst: Peer, data: bytes) -> bool:
        if src is leader and isinstance(opened(dst, data), wire.Ping):
            pinged.append(lan.now)
            return len(pinged) == 2                 # the second regular ping is lost
        return False

    lan.advance(lan.now + 6.0, drop)
    gaps = [round(t2 - t1, 6) for t1, t2 in zip(pinged, pinged[1:])]
    assert gaps[:3] == [1.5, PONG_WAIT, 1.5]


def test_the_side_that_follows_keepalives_woken_from_a_stop_keeps_pinging_until_answered() -> None:
    """Woken from a stop, a process applies no payment until a ping of its own is answered; the
    side that only answers keepalives must not let the other's pings put its own off, or a lost
    first ping after waking would keep every payment waiting for ever."""
    from driver import Net
    net = Net(4)
    alice, bob = net.add("alice"), net.add("bob")
    assert net.run_until(lambda: all(h.peer.session is not None and h.peer.session.ready for h in (alice, bob)), 10)
    follower, leader = (alice, bob) if not alice.peer.session.leads else (bob, alice)
    net.stall(follower, 4.0)
    net.run(net.now + 1.0)
    leader.peer.pay(700, "while you were stopped", net.now)
    net.flush(leader)
    woke = net.now + 3.0
    lost: list[float] = []

    def first_ping_after_waking(d) -> bool:  # type: ignore[no-untyped-def]
        if d.src is follower and d.now >= woke and not lost and d.kind == "sealed:ping":
            lost.append(d.now)
            return True
        return False
    net.rules.append(first_ping_after_waking)
    assert net.run_until(lambda: follower.peer.ledger.balance == 700, 8.0)
    assert lost, "the first ping after waking was not sent (nothing was lost)"
