"""The shared driver: what its two wires, its clock and its hosts promise the tests and the benchmark."""

from __future__ import annotations

from driver import Net, Perfect
from lanpay.core import events, wire
from lanpay.core.errors import DropReason
from lanpay.core.peer import State


def paired(net: Net) -> bool:
    return all(h.peer.state is State.PAIRED for h in net.live())


def test_a_perfect_wire_draws_no_random_number_so_a_late_peer_gets_the_seed_it_would_have_got_first() -> None:
    quiet, busy = Net(5, Perfect()), Net(5, Perfect())
    for net in (quiet, busy):
        net.add("alice"), net.add("bob")
    assert busy.run_until(lambda: paired(busy), 10)
    busy.pay("alice", 300)
    busy.run(busy.now + 5)
    assert busy.rng.getstate() == quiet.rng.getstate()
    assert busy.add("carol").peer.incarnation == quiet.add("carol").peer.incarnation


def test_a_seeded_wire_draws_for_every_datagram() -> None:
    net = Net(5)
    net.add("alice"), net.add("bob")
    before = net.rng.getstate()
    net.run(1.0)
    assert net.rng.getstate() != before and sum(len(h.sent) for h in net.live()) > 0


def test_a_broadcast_reaches_its_sender_only_on_an_echoing_lan() -> None:
    for echo, own in ((True, True), (False, False)):
        net = Net(2, Perfect(), echo=echo)
        alice = net.add("alice")
        net.run(3.0)
        assert alice.sent and bool(alice.peer.drops[DropReason.OWN]) is own


def _paid(latency: float) -> tuple[Net, float]:
    """alice pays bob 5.00 on a quiet paired perfect wire of ``latency``, and the pump runs once."""
    net = Net(3, Perfect(latency=latency))
    net.add("alice"), net.add("bob")
    assert net.run_until(lambda: paired(net), 30)
    net.run(net.now + 1)
    start = net.now
    net.hosts["alice"].peer.pay(500, "", start)
    net.pump()
    return net, start


def test_pump_delivers_at_the_instant_without_moving_the_clock() -> None:
    net, start = _paid(0.0)
    assert net.now == start and net.hosts["bob"].peer.ledger.balance == 500


def test_each_hop_of_a_perfect_wire_takes_its_latency() -> None:
    net, start = _paid(0.25)
    bob = net.hosts["bob"]
    assert bob.peer.ledger.balance == 0
    net.run(start + 0.6)
    assert [(when, e.amount) for when, e in bob.timeline if isinstance(e, events.PaymentReceived)] == \
        [(start + 0.25, 500)]
    assert net.hosts["alice"].peer.ledger.balance == -500


def test_hosts_that_keep_nothing_still_tell_the_hooks_everything() -> None:
    net = Net(4, Perfect(), keep=False)
    seen: list[events.Event] = []
    net.event_hooks.append(lambda host, event: seen.append(event))
    alice, bob = net.add("alice"), net.add("bob")
    assert net.run_until(lambda: paired(net), 10)
    assert alice.events == alice.timeline == alice.sent == [] == bob.events
    assert sum(isinstance(e, events.Paired) for e in seen) == 2


def test_each_restart_is_a_new_life_listed_oldest_first() -> None:
    net = Net(6, Perfect())
    first = net.add("alice")
    net.add("bob")
    net.run(2.0)
    second = net.restart("alice")
    third = net.restart("alice")
    assert net.lives("alice") == [first, second, third]
    assert [h.alive for h in net.lives("alice")] == [False, False, True]
    assert first.died == second.died == 2.0 and net.hosts["alice"] is third


def test_a_moved_host_is_reached_at_its_new_address_only() -> None:
    net = Net(7, Perfect(), echo=False)
    alice, bob = net.add("alice"), net.add("bob")
    old = bob.addr
    net.move(bob, ("10.0.9.9", 4999))
    junk = wire.encode(wire.Confirm(1, 2, bytes(16)))
    net.inject(junk, alice.addr, old)
    net.pump()
    assert sum(bob.peer.drops.values()) == 0
    net.inject(junk, alice.addr, bob.addr)
    net.pump()
    assert sum(bob.peer.drops.values()) == 1


def test_a_timeline_is_played_at_its_times() -> None:
    net = Net(8, Perfect())
    net.add("alice")
    net.run(1.0)
    seen: list[tuple[float, str, tuple]] = []
    net.play([(0.5, "a", (1,)), (2.0, "b", ())], lambda kind, args: seen.append((net.now, kind, args)))
    assert seen == [(1.5, "a", (1,)), (3.0, "b", ())]
