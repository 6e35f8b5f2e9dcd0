"""Who the counterpart is, rule by rule: forged claims and stale records never hold up the real one.

Each test drives a real core (``Peer``) with datagrams and time and looks at what
it sends: the rules of ``lanpay.core.counterpart`` that decide whom to say hello
to, whose hello to answer and when a request for the relationship is over.
"""

from __future__ import annotations

import random

import pytest

from lanpay.core import events, wire
from lanpay.core.counterpart import STARTUP_HOLD, SURVIVOR_WAIT
from lanpay.core.errors import UserError
from lanpay.core.pairing import HELLO_DEADLINE, new_identity
from lanpay.core.peer import Config, Peer
from driver import Speaker, identity_in_band, speaker
from sim import Net

LOW, MID, HIGH = 2**61, 2**62, 2**63
REAL = ("10.0.0.7", 47007)


def fresh(name: str, incarnation: int, now: float = 0.0) -> Peer:
    """A peer whose incarnation is in ``[incarnation, 2 * incarnation)`` (LOW < MID < HIGH keep their order)."""
    peer = Peer(Config(name=name), random.Random(incarnation), now)
    peer.me = identity_in_band(name, incarnation)
    return peer


def announce(inc: int, name: str, partner: str = "", partner_inc: int = 0, paired: bool = True) -> bytes:
    """The next signed announce of the process called ``name`` in ``inc``'s band (each call is news)."""
    return speaker(name, inc).announce(wire.F_PAIRED if paired else 0, 30000 if paired else 2500, partner, partner_inc)


def hellos(out: list[tuple[bytes, object]]) -> list[object]:
    return [dest for data, dest in out if isinstance(wire.decode(data), wire.Hello)]


def run(peer: Peer, now: float, until: float) -> list[tuple[bytes, object]]:
    """Let the core's timers fire up to ``until``; everything it sent on the way."""
    out = peer.datagrams_to_send(now)
    while (t := peer.next_timeout()) is not None and t <= until:
        now = max(now, t)
        peer.handle_timeout(now)
        out += peer.datagrams_to_send(now)
    return out


def test_a_claim_whose_hello_is_the_others_to_send_does_not_stop_us_trying_the_next() -> None:
    """A restarted bob hears two processes claim to hold its relationship: the one heard most
    has the lower incarnation (its hello is the one to come, and a forged claim never sends it);
    bob still says hello to the other claim, which may be the real survivor."""
    bob = fresh("bob", MID)
    for i in range(5):
        bob.receive_datagram(announce(LOW, "alice", "bob", 77), ("10.0.200.9", 5000), 0.01 * i)
    for t in (0.1, 0.2):            # heard less than the forged claim; its bytes pay for our hello
        bob.receive_datagram(announce(HIGH, "alice", "bob", 77), REAL, t)
    assert REAL in hellos(run(bob, 0.2, 2.0))


def test_a_claim_to_be_paired_with_this_very_process_is_greeted_whatever_the_tie_break() -> None:
    """alice gave up a hand-back that bob went on with: bob's announce says it is paired with this
    alice, so bob's hello will not come; alice, whose hello it normally is not, says hello."""
    alice = fresh("alice", HIGH)
    for t in (0.0, 0.1):
        alice.receive_datagram(announce(LOW, "bob", "alice", alice.incarnation), REAL, t)
    assert REAL in hellos(run(alice, 0.1, 2.0))


def test_a_claim_to_be_paired_with_someone_else_of_our_name_is_still_waited_for() -> None:
    """The tie-break stands for any other claim: the lower incarnation sends the hello."""
    alice = fresh("alice", HIGH)
    for t in (0.0, 0.1):
        alice.receive_datagram(announce(LOW, "bob", "alice", 12345), REAL, t)
    assert REAL not in hellos(run(alice, 0.1, 2.0))


@pytest.mark.parametrize("who, partner", [("alice", "bob"), ("bob", "alice")],
                         ids=["its-survivor-says-so", "its-earlier-process-says-so"])
def test_a_newcomer_someone_may_hold_a_relationship_with_is_left_alone_for_a_while(who: str, partner: str) -> None:
    """carol and a fresh bob are free.  Either alice's announce says she is paired with a bob, or
    (alice's announce lost) an earlier bob's says it is paired with alice: this bob may be that one
    restarted, on its way back to alice.  carol leaves it alone for SURVIVOR_WAIT after first
    hearing it, then pairs with it (a claim costs a bounded wait)."""
    net = Net(3)
    carol, bob = net.add("carol"), net.add("bob")
    says = announce(LOW, who, partner, 4242)
    for k in range(40):
        net.at(0.5 * k, lambda: net.inject(says, REAL, carol.addr))
    net.run(SURVIVOR_WAIT - 1.0)
    assert not carol.of(events.Paired) and not bob.of(events.Paired)
    assert net.run_until(lambda: bool(carol.of(events.Paired)), SURVIVOR_WAIT + 10.0)
    assert carol.of(events.Paired)[0].peer_name == "bob"


def test_without_such_a_claim_two_free_peers_pair_at_once() -> None:
    net = Net(3)
    carol, bob = net.add("carol"), net.add("bob")
    assert net.run_until(lambda: bool(carol.of(events.Paired)) and bool(bob.of(events.Paired)), 3.0)


def test_an_accept_after_the_request_went_silent_hands_nothing_over() -> None:
    """A person who types accept into a process that was stopped meanwhile: the request whose
    process went silent past the restore window is over, and the accept says so."""
    net = Net(11)
    net.consent = False
    alice, _ = net.add("alice"), net.add("bob")
    assert net.run_until(lambda: alice.peer.state.value == "paired", 10)
    net.restart("bob")
    assert net.run_until(lambda: bool(alice.of(events.HandbackRequested)), 30)
    net.kill("bob")
    with pytest.raises(UserError, match="nothing is waiting"):
        alice.peer.accept(net.now + 11.0)
    assert alice.peer.session is not None and alice.peer.session.info.name == "bob"
    assert not alice.peer.who.successors


def test_forged_survivor_claims_however_many_hold_a_fresh_process_back_a_bounded_time() -> None:
    """Announces under fresh incarnations, every 5 s, each saying it is paired with alice: she
    prefers such claims over strangers only early in her life, so she pairs with bob soon after
    (STARTUP_HOLD + SURVIVOR_WAIT + a hello's deadline at most, here 15 s)."""
    bound = STARTUP_HOLD + SURVIVOR_WAIT + HELLO_DEADLINE
    for seed in range(3):
        net = Net(seed)
        alice, bob = net.add("alice"), net.add("bob")
        rng = random.Random(seed)
        for k in range(30):
            forged = Speaker(new_identity("mallory", "", None, rng)).announce(
                wire.F_PAIRED, 30000, "alice", rng.getrandbits(64))
            net.at(5.0 * k, lambda data=forged: net.inject(data, (f"10.0.200.{rng.randint(1, 20)}", 5000), alice.addr))
        assert net.run_until(lambda: bool(alice.of(events.Paired)) and bool(bob.of(events.Paired)), bound + 3.0)
        assert alice.of(events.Paired)[0].peer_name == "bob"


def test_a_survivor_record_redirected_before_the_survivor_is_heard_does_not_keep_the_relationship_away() -> None:
    """A forger hears bob's restarted process announce and, before alice's answer arrives, sends
    copies of alice's latest announce from its own host, again and again.  Only the first one bob
    hears is news: his record of alice follows alice's own next announce (her answer), wherever
    the copies come from, and the hand-back finds the real alice."""
    net = Net(21)
    net.consent = True
    alice, bob = net.add("alice", code="blue harbour seven"), net.add("bob", code="blue harbour seven")
    heard: list[bytes] = []
    net.taps.append(lambda now, data, src, dst: heard.append(data) if src == alice.addr and data[3] == wire.Announce.TYPE else None)
    assert net.run_until(lambda: alice.peer.state.value == "paired" and bob.peer.state.value == "paired", 10)
    net.kill("bob")
    new = net.restart("bob")
    rng = random.Random(5)
    while (me := new_identity("bob", "", "blue harbour seven", rng)).incarnation > alice.peer.incarnation:
        pass
    new.peer.me = me                    # its hello is the one to send
    copy = heard[-1]                    # alice's own latest announce, signed: a copy is all a forger has
    forger = ("10.0.200.5", 5000)
    for k in range(200):
        net.at(net.now + 0.5 * k, lambda: net.inject(copy, forger, new.addr))
    assert net.run_until(lambda: any(e.restored for e in new.of(events.Paired)), 40)
    assert new.peer.session is not None and new.peer.session.peer_addr == alice.addr


def test_free_peers_that_never_answer_do_not_keep_two_real_ones_apart() -> None:
    """Announces of sixteen made-up free peers, lowest incarnations of all (their hellos would be
    the ones to come, and never come), heard before the real counterpart: without a code alice
    and bob still find each other, just past the start-up hold, and with each other."""
    for seed in range(4):
        net = Net(seed)
        rng = random.Random(seed)
        fakes = [wire.encode(wire.padded(wire.Announce(k + 1, 40000 + k, 0, 2500, f"peer{k}", "", "", 0,
                                                       rng.randbytes(32)))) for k in range(16)]

        def flood() -> None:
            for k, data in enumerate(fakes):
                for dst in list(net.by_addr):
                    net.inject(data, (f"10.0.200.{k + 1}", 40000 + k), dst)
        for t in range(200):
            net.at(0.1 * t, flood)
        net.run(0.5)
        alice = net.add("alice")
        net.run(1.0)
        bob = net.add("bob")
        start = net.now
        assert net.run_until(lambda: bool(alice.of(events.Paired)) and bool(bob.of(events.Paired)),
                             STARTUP_HOLD + 2.0)
        assert (alice.of(events.Paired)[0].peer_name, bob.of(events.Paired)[0].peer_name) == ("bob", "alice")
        assert net.now - start < STARTUP_HOLD + 2.0


def test_a_free_peer_whose_hello_is_due_has_its_announces_answered_to_pay_for_its_hellos() -> None:
    """bob's hello to alice is bob's to send, and it may go to her only as far as she sent him
    bytes: alice answers each of his announces (not only the first), so on a lossy link his
    hellos and their resends are paid for."""
    alice = fresh("alice", HIGH)
    answers = 0
    for t in (0.0, 2.5, 5.0):
        alice.receive_datagram(announce(LOW, "bob", paired=False), REAL, t)
        answers += sum(1 for data, dest in alice.datagrams_to_send(t)
                       if dest == REAL and wire.decode(data).flags & wire.F_ANSWER)
    assert answers == 3


def test_a_free_peer_whose_hello_is_ours_is_answered_once() -> None:
    alice = fresh("alice", LOW)
    answers = 0
    for t in (0.0, 2.5, 5.0):
        alice.receive_datagram(announce(HIGH, "bob", paired=False), REAL, t)
        answers += sum(1 for data, dest in alice.datagrams_to_send(t)
                       if dest == REAL and isinstance(wire.decode(data), wire.Announce)
                       and wire.decode(data).flags & wire.F_ANSWER)
    assert answers == 1


def test_only_an_impostor_s_cooldown_holds_back_the_claimant_s_own_hello() -> None:
    """Our hellos to a newcomer failing (they may have gone to a forger's address) cools it down
    for our tries only; a claim made while the old process still answers cools its hellos too."""
    from lanpay.core.handshakes import REFUSED_COOLDOWN, Matchmaker
    from lanpay.core.restart import IMPOSTOR_COOLDOWN
    m = Matchmaker()
    m.cool(1, REFUSED_COOLDOWN)
    m.cool_impostor(2, IMPOSTOR_COOLDOWN)
    assert m.cooling(1, 0.0) and m.cooling(2, 0.0)
    assert not m.impostor(1, 0.0) and m.impostor(2, 0.0)
    m.prune(IMPOSTOR_COOLDOWN)
    assert not m.cooldown and not m.impostors
