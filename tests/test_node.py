"""The asyncio pump: it feeds the core, sends what the core says, and decides nothing.

Real sockets, loopback only (the suite's guard refuses anything else, and every
test checks that no send was refused).  The pump's own rules are checked against
a scripted core; the last tests run two real cores through two nodes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from lanpay.core import wire
from lanpay.core.errors import DropReason, NotPaired
from lanpay.core.events import (
    Event,
    Paired,
    PaymentConfirmed,
    PaymentReceived,
    PeerLeft,
)
from lanpay.core.peer import BROADCAST, Config
from lanpay.node import Node
from lanpay.transport import make_discovery_socket, make_session_socket

LOOPBACK_BROADCAST = "127.255.255.255"


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body on a fresh event loop."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 30))

    return wrapper


def shared_port() -> tuple[int, Callable[[], socket.socket]]:
    """A free discovery port and a maker of sockets that share it."""
    probe = make_discovery_socket(0)
    port = probe.getsockname()[1]
    first = [probe]
    return port, lambda: first.pop() if first else make_discovery_socket(port)


async def until(check: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait for a condition; the limit bounds a hang, it is not a claim about speed."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not check():
        if loop.time() > end:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


# -- the pump against a scripted core ------------------------------------------------


@dataclass
class ScriptedPeer:
    """Stands in for the core: records every call, says what the test scripted."""

    now: float
    outbox: list[tuple[bytes, Any]] = field(default_factory=list)
    received: list[tuple[bytes, tuple[str, int], float]] = field(default_factory=list)
    timeouts: list[tuple[float, float]] = field(default_factory=list)
    deadlines: list[float] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    idle: bool = True
    closed_at: float | None = None

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        self.received.append((data, addr, now))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        out, self.outbox = self.outbox, []
        return out

    def next_timeout(self) -> float | None:
        return self.deadlines[0] if self.deadlines else None

    def handle_timeout(self, now: float) -> None:
        self.timeouts.append((self.deadlines.pop(0), now))

    def next_event(self) -> Event | None:
        return self.events.pop(0) if self.events else None

    def close(self, now: float) -> None:
        self.closed_at = now
        self.outbox.append((b"bye", BROADCAST))


async def scripted_node(
    targets: list[str], script: Callable[[ScriptedPeer], None], sink: list[Event] | None = None
) -> tuple[Node, ScriptedPeer]:
    made: list[ScriptedPeer] = []

    def make_peer(config: Config, rng: random.Random, now: float) -> Any:
        made.append(ScriptedPeer(now))
        script(made[0])
        return made[0]

    port, discovery = shared_port()
    node = Node(Config("alice"), targets, port, (sink if sink is not None else []).append,
                make_peer=make_peer)
    await node.start(make_session_socket("127.0.0.1"), discovery())
    return node, made[0]


@sync
async def test_broadcast_goes_to_every_target_and_the_discovery_socket_hears_it() -> None:
    def script(peer: ScriptedPeer) -> None:
        peer.outbox.append((b"announce", BROADCAST))

    node, peer = await scripted_node([LOOPBACK_BROADCAST, "127.0.0.1"], script)
    await until(lambda: len(peer.received) == 2, "both copies of the announce")
    assert [data for data, _, _ in peer.received] == [b"announce", b"announce"]
    # Both copies came from our one session socket: the peer learns one address.
    assert {addr for _, addr, _ in peer.received} == {node.session_address}
    assert all(now >= peer.now for _, _, now in peer.received)
    await node.close(0)
    assert node.send_errors == 0


@sync
async def test_unicast_goes_to_its_address_only() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(10)
    dest = listener.getsockname()

    def script(peer: ScriptedPeer) -> None:
        peer.outbox.append((b"sealed", dest))

    node, _ = await scripted_node([LOOPBACK_BROADCAST], script)
    data, source = await asyncio.get_running_loop().run_in_executor(None, listener.recvfrom, 100)
    assert (data, source) == (b"sealed", node.session_address)
    await node.close(0)
    listener.close()
    assert node.send_errors == 0


@sync
async def test_one_timer_fires_at_the_deadline_and_never_early() -> None:
    def script(peer: ScriptedPeer) -> None:
        peer.deadlines = [peer.now + 0.05, peer.now + 0.08]

    node, peer = await scripted_node([LOOPBACK_BROADCAST], script)
    await until(lambda: len(peer.timeouts) == 2, "both deadlines")
    assert all(now >= deadline for deadline, now in peer.timeouts)
    assert peer.deadlines == [] and node._timer is None  # nothing left to wake for
    await node.close(0)


@sync
async def test_a_deadline_moved_later_keeps_the_timer_and_the_core_is_not_woken_before_it() -> None:
    def script(peer: ScriptedPeer) -> None:
        peer.deadlines = [peer.now + 0.05]

    node, peer = await scripted_node([LOOPBACK_BROADCAST], script)
    armed = node._timer
    assert armed is not None
    peer.deadlines = [peer.now + 0.15]            # the core's deadline moved on (an ack came)
    node._pump(asyncio.get_running_loop().time())
    assert node._timer is armed                   # no cancel and new timer per datagram
    await asyncio.sleep(0.09)
    assert peer.timeouts == []                    # it fired, found nothing due, re-armed
    assert node._timer is not armed and node._timer_at == peer.deadlines[0]
    await until(lambda: len(peer.timeouts) == 1, "the moved deadline")
    assert peer.timeouts[0][1] >= peer.timeouts[0][0]
    peer.deadlines = [asyncio.get_running_loop().time() + 0.02]
    node._pump(asyncio.get_running_loop().time())  # an earlier deadline re-arms at once
    assert node._timer_at == peer.deadlines[0]
    await until(lambda: len(peer.timeouts) == 2, "the earlier deadline")
    await node.close(0)

@sync
async def test_refused_sends_count_as_loss_and_do_not_stop_the_pump() -> None:
    def script(peer: ScriptedPeer) -> None:
        peer.outbox += [
            (b"x" * 70000, ("127.0.0.1", 9)),  # too long for UDP: EMSGSIZE
            (b"x", ("127.0.0.1", 0)),  # no such port: EINVAL
            (b"after", BROADCAST),
        ]

    node, peer = await scripted_node([LOOPBACK_BROADCAST], script)
    await until(lambda: len(peer.received) == 1, "the datagram after the failures")
    assert node.send_errors == 2
    assert peer.received[0][0] == b"after"
    await node.close(0)


@sync
async def test_events_reach_the_sink_in_order_before_payments_settle() -> None:
    sink: list[Event] = []
    paired = Paired("bob", ("127.0.0.1", 1), "11-22-33")

    def script(peer: ScriptedPeer) -> None:
        peer.events = [paired]

    node, peer = await scripted_node([LOOPBACK_BROADCAST], script, sink)
    assert sink == [paired]
    await node.close(0)


@sync
async def test_close_waits_for_idle_then_says_bye() -> None:
    def script(peer: ScriptedPeer) -> None:
        peer.idle = False

    node, peer = await scripted_node([LOOPBACK_BROADCAST], script)
    assert node._session is not None
    sent = node._session.sent
    closing = asyncio.create_task(node.close(5))
    await asyncio.sleep(0.05)
    assert peer.closed_at is None and not closing.done()
    peer.idle = True
    peer.outbox.append((b"ack", BROADCAST))  # any input lets the pump see the change
    node._received(b"poke", ("127.0.0.1", 1))
    await closing
    assert peer.closed_at is not None
    assert node._session.sent == sent + 2  # the ack, then the BYE, each to one target
    assert node.send_errors == 0


@sync
async def test_close_gives_up_waiting_after_the_grace() -> None:
    def script(peer: ScriptedPeer) -> None:
        peer.idle = False

    node, peer = await scripted_node([LOOPBACK_BROADCAST], script)
    await node.close(0.05)
    assert peer.closed_at is not None
    received = len(peer.received)
    node._received(b"late", ("127.0.0.1", 1))
    assert len(peer.received) == received  # a closed node feeds nothing more


# -- two real cores, two nodes -------------------------------------------------------


@dataclass
class Pair:
    alice: Node
    bob: Node
    events: dict[str, list[Event]]


async def two_nodes() -> Pair:
    port, discovery = shared_port()
    events: dict[str, list[Event]] = {"alice": [], "bob": []}
    nodes = []
    for name in ("alice", "bob"):
        node = Node(Config(name), [LOOPBACK_BROADCAST], port, events[name].append)
        await node.start(make_session_socket("127.0.0.1"), discovery())
        nodes.append(node)
    pair = Pair(nodes[0], nodes[1], events)
    await until(
        lambda: all(isinstance(e[0], Paired) for e in events.values() if e)
        and all(events.values()),
        "pairing",
    )
    return pair


@sync
async def test_two_nodes_pair_and_a_payment_moves_both_views() -> None:
    pair = await two_nodes()
    a_paired, b_paired = pair.events["alice"][0], pair.events["bob"][0]
    assert isinstance(a_paired, Paired) and isinstance(b_paired, Paired)
    assert (a_paired.peer_name, b_paired.peer_name) == ("bob", "alice")
    assert a_paired.code == b_paired.code
    assert a_paired.peer_addr == pair.bob.session_address

    outcome = await pair.alice.pay(1000, "lunch")
    assert outcome == PaymentConfirmed(1, 1000, "lunch", -1000)
    await until(lambda: pair.bob.status().balance == 1000, "bob's view")
    assert pair.alice.status().balance == -1000
    assert PaymentReceived(1, 1000, "lunch", 1000) in pair.events["bob"]
    assert [(e.seq, e.direction, e.amount, e.status) for e in pair.alice.history()] == [
        (1, "out", 1000, "confirmed")
    ]

    await pair.alice.close(1)
    await until(lambda: PeerLeft("alice") in pair.events["bob"], "bob hearing goodbye")
    await pair.bob.close(0)
    assert pair.alice.send_errors == pair.bob.send_errors == 0


@sync
async def test_the_notice_comes_before_the_payment_settles() -> None:
    """Line mode prints ``Sent`` from the event, then runs the next command."""
    pair = await two_nodes()
    seen: list[tuple[Event, bool]] = []
    _, outcome = pair.alice.send_payment(250, "")
    pair.alice._on_event = lambda event: seen.append((event, outcome.done()))
    await outcome
    assert seen == [(PaymentConfirmed(1, 250, "", -250), False)]
    await pair.alice.close(0)
    await pair.bob.close(0)


@sync
async def test_paying_before_pairing_is_refused_and_sends_nothing() -> None:
    port, discovery = shared_port()
    node = Node(Config("alice"), [LOOPBACK_BROADCAST], port, lambda event: None)
    await node.start(make_session_socket("127.0.0.1"), discovery())
    sent = node._session.sent if node._session else -1
    with pytest.raises(NotPaired):
        node.send_payment(1000, "")
    assert node._session is not None and node._session.sent == sent
    assert node.status().balance == 0 and node.history() == []
    await node.close(0)


@sync
async def test_junk_reaches_the_core_which_counts_the_drop() -> None:
    port, discovery = shared_port()
    node = Node(Config("alice"), [LOOPBACK_BROADCAST], port, lambda event: None)
    await node.start(make_session_socket("127.0.0.1"), discovery())
    assert node.peer.drops[DropReason.MALFORMED] == 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
        junk.sendto(b"\x00not lanpay", node.session_address)
    await until(lambda: node.peer.drops[DropReason.MALFORMED] == 1, "the drop to be counted")
    assert node.status().drops >= 1
    await node.close(0)


@sync
async def test_verbose_logs_tell_every_event_and_with_debug_every_datagram(caplog: pytest.LogCaptureFixture) -> None:
    """-v and -vv: what the help promises is in the log, and junk is logged with why it was dropped."""
    caplog.set_level(logging.DEBUG, logger="lanpay.node")
    pair = await two_nodes()
    await pair.alice.pay(150, "hi")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
        junk.sendto(b"\x00not lanpay", pair.alice.session_address)
    await until(lambda: pair.alice.peer.drops[DropReason.MALFORMED] == 1, "the junk to be dropped")
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "lanpay.node"]
    infos = [m for level, m in lines if level == logging.INFO]
    debugs = [m for level, m in lines if level == logging.DEBUG]
    assert any(m.startswith("event Paired(peer_name='bob'") for m in infos)
    assert "event PaymentConfirmed(seq=1, amount=150, memo='hi', balance=-150, was_in_doubt=False)" in infos
    assert any(re.fullmatch(r"sending announce, \d+ bytes, to every broadcast target", m) for m in debugs)
    assert any(re.fullmatch(r"received sealed, \d+ bytes, from 127\.0\.0\.1:\d+: accepted", m) for m in debugs)
    assert any(re.fullmatch(r"received announce, \d+ bytes, from 127\.0\.0\.1:\d+: dropped \(own\)", m)
               for m in debugs)
    assert any(re.fullmatch(r"received \?, 11 bytes, from 127\.0\.0\.1:\d+: dropped \(malformed\)", m)
               for m in debugs)
    await pair.alice.close(0)
    await pair.bob.close(0)


@sync
async def test_announces_name_the_session_port_they_come_from() -> None:
    port, discovery = shared_port()
    node = Node(Config("alice"), [LOOPBACK_BROADCAST], port, lambda event: None)
    await node.start(make_session_socket("127.0.0.1"), discovery())
    assert node.session_address is not None
    announce = wire.decode(wire.encode(node.peer._announce()))
    assert isinstance(announce, wire.Announce) and announce.session_port == node.session_address[1]
    await node.close(0)


# -- the event loop ------------------------------------------------------------------


def test_the_loop_factory_gives_uvloop_when_installed_and_asyncio_otherwise() -> None:
    import importlib.util

    from lanpay.node import new_event_loop

    loop = new_event_loop()
    try:
        expected = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        assert type(loop).__module__.split(".")[0] == expected
    finally:
        loop.close()


def test_two_nodes_pair_and_pay_on_the_factory_loop() -> None:
    """Whichever loop the factory gives, the transport's reader and the one timer work on it."""
    from lanpay.node import new_event_loop

    async def body() -> None:
        pair = await two_nodes()
        assert await pair.alice.pay(500, "") == PaymentConfirmed(1, 500, "", -500)
        await until(lambda: pair.bob.status().balance == 500, "bob's view")
        await pair.alice.close(0)
        await pair.bob.close(0)
        assert pair.alice.send_errors == pair.bob.send_errors == 0

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(asyncio.wait_for(body(), 30))
