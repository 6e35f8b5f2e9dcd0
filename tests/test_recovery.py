"""Loss recovery and keepalive traffic between two real peers on the hand-driven LAN.

What is checked is what a user and the network see: which PAY copies go out
and when, the balances after, how many datagrams an idle pair sends, and how
soon a counterpart that went away is told.
"""

from __future__ import annotations

from lanpay.core import events, wire
from lanpay.core.errors import DropReason
from lanpay.core.peer import Peer
from lanpay.core.session import PACKET_THRESHOLD, PONG_WAIT, SILENT_AFTER

from test_session import drops, forge_msg, opened, paired, pays


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


def test_several_payments_lost_at_once_are_each_resent_once_without_waiting_for_a_timer() -> None:
    """The payee says which payments beyond the gap it holds, so every one it lacks is resent
    as soon as three later copies arrived, and the ones it holds are not sent again."""
    lan, a, b = paired()
    start = lan.now
    lost = {3, 7, 12}
    drop, log = copies_of(lan, a, b, lambda seq, copy: seq in lost and copy == 0)
    for _ in range(20):
        a.pay(100, "", start)
    lan.pump(drop)                                        # no clock movement: no timer fired
    resent = sorted(s for s in {s for _, s in log} if [x for _, x in log].count(s) > 1)
    assert resent == sorted(lost)
    assert all([x for _, x in log].count(s) == 2 for s in lost)
    assert a.status().balance == -2000 and b.status().balance == 2000
    assert [e.seq for e in lan.events(a, events.PaymentConfirmed)] == list(range(1, 21))


def test_a_resend_lost_again_is_found_by_the_acks_of_payments_sent_after_it() -> None:
    lan, a, b = paired()
    start = lan.now
    drop, log = copies_of(lan, a, b, lambda seq, copy: seq == 2 and copy < 2)
    for _ in range(6):
        a.pay(100, "", start)
    lan.pump(drop)
    assert [s for _, s in log].count(2) == 2               # the first copy, and one resend, both lost
    for _ in range(4):                                     # payments made after the resend arrive
        a.pay(100, "", start)
    lan.pump(drop)
    assert [s for _, s in log].count(2) == 3               # so the resend is known lost: a third copy
    assert all(t == start for t, _ in log)                 # still no timer
    assert a.status().balance == -1000 and b.status().balance == 1000


def test_a_timer_resends_the_oldest_payment_only() -> None:
    """Acks lost: every payment's timer runs out together, but the payee may hold the later
    ones, and the oldest's ack tells which are missing; so one copy goes, not one per payment."""
    lan, a, b = paired()
    start = lan.now
    acks_lost = {"on": True}

    def drop(src: Peer, dst: Peer, data: bytes) -> bool:
        return src is b and acks_lost["on"]

    for _ in range(5):
        a.pay(100, "", start)
    lan.pump(drop)
    first = a.next_timeout()
    assert first is not None
    lan.now = first
    a.handle_timeout(first)
    assert [p.seq for p in pays(b, lan.take(a))] == [1]
    acks_lost["on"] = False
    lan.advance(first + 1.0)
    assert a.status().balance == -500 and b.status().balance == 500


def test_an_ack_that_says_it_holds_what_was_never_sent_is_a_violation() -> None:
    lan, a, b = paired()
    a.pay(100, "", lan.now)
    a.pay(100, "", lan.now)                # seqs 1 and 2 exist; bit 0 is seq 2, bit 1 would be seq 3
    lan.deliver(b, a, [forge_msg(b, wire.Ack(0, (), held=0b10))])
    assert drops(a) == {DropReason.VIOLATION: 1}
    lan.deliver(b, a, [forge_msg(b, wire.Ack(0, (), held=0b01))])
    assert drops(a) == {DropReason.VIOLATION: 1}
    assert lan.events(a, events.PaymentConfirmed) == []


def test_an_ack_settling_a_resent_payment_gives_no_round_trip_sample() -> None:
    lan, a, b = paired()
    start = lan.now
    drop, _ = copies_of(lan, a, b, lambda seq, copy: seq == 1 and copy == 0)
    srtt = a.rtt.srtt
    assert srtt is not None                 # the pairing's pings measured it
    for _ in range(6):
        a.pay(100, "", start)
    lan.pump(drop)
    assert a.status().balance == -600
    assert a.rtt.srtt == srtt               # every ack settled after the resend covered seq 1


def test_a_lost_last_payment_is_resent_as_soon_as_the_timer_s_copy_is_acknowledged() -> None:
    """The tail of a run: the last payment is lost and the oldest's ack too, so no later copy
    can show the loss.  The timer resends the oldest; its ack shows the last one missing, and
    as it was sent a whole timeout before that copy, it goes at once, not a timeout later."""
    lan, a, b = paired()
    start = lan.now
    acks = {"seen": 0}
    pay_drop, log = copies_of(lan, a, b, lambda seq, copy: seq == 2 and copy == 0)

    def drop(src: Peer, dst: Peer, data: bytes) -> bool:
        if src is b:
            acks["seen"] += 1
            return acks["seen"] == 1                  # the first ack (of payment 1) is lost
        return pay_drop(src, dst, data)

    a.pay(100, "", start)
    a.pay(100, "", start)
    lan.pump(drop)
    timer = a.next_timeout()
    assert timer is not None and [s for _, s in log] == [1, 2]
    lan.advance(timer + 0.0005, drop)                  # the next timer would be at timer + RTO
    assert [s for _, s in log[2:]] == [1, 2]
    assert all(t < timer + 0.001 for t, _ in log[2:])  # the second right behind the first
    assert a.status().balance == -200 and b.status().balance == 200
