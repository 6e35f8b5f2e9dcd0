"""What the fuzz tests (and tools/fuzz.py) throw at a core, and what must still hold after.

A *scene* is a real core caught in one state (looking, mid-handshake as either
side, paired with money already moved) by running the seeded simulator, with
every datagram the simulator carried recorded.  Each fuzz case takes a copy of
the core and feeds it datagrams made from that record (replayed from anywhere,
mutated) or from nothing (noise, well-formed messages with random fields aimed
at it), with the clock moving and timers served.  After it:

* nothing escaped the core (an exception fails the case by itself);
* nothing moved: the balance and the history are what they were, and no
  payment event came out;
* every table a stranger can grow is within its cap (invariants.bounded);
* a paired core still takes a real payment from its real partner.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from invariants import bounded
from lanpay.core import events, wire
from lanpay.core.peer import Peer
from sim import Net

Addr = tuple[str, int]
STRANGER: Addr = ("10.0.0.99", 40099)
MONEY_EVENTS = (events.PaymentReceived, events.PaymentConfirmed, events.PaymentRejected)


@dataclass
class Scene:
    """A core in one state, its partner (when it has one) and the datagrams seen so far."""

    name: str
    peer: Peer
    addr: Addr
    partner: Peer | None
    partner_addr: Addr | None
    now: float
    record: list[bytes] = field(default_factory=list)

    def fresh(self) -> tuple[Peer, Peer | None]:
        """Independent copies of the core and its partner, for one case."""
        return copy.deepcopy(self.peer), copy.deepcopy(self.partner)


def _scene(net: Net, name: str, other: str, label: str) -> Scene:
    host, partner = net.hosts[name], net.hosts[other]
    return Scene(label, copy.deepcopy(host.peer), host.addr, copy.deepcopy(partner.peer),
                 partner.addr, net.now, [d for _, d, _, _ in net.wire_log])


def build_scenes(seed: int = 11) -> list[Scene]:
    """Looking alone; mid-handshake on each side; paired after payments both ways."""
    scenes = []
    lone = Net(seed, record=True)
    lone.add("alice")
    lone.run(0.6)
    scenes.append(Scene("looking", copy.deepcopy(lone.hosts["alice"].peer), lone.hosts["alice"].addr,
                        None, None, lone.now, [d for _, d, _, _ in lone.wire_log]))
    net = Net(seed, record=True)
    net.add("alice")
    net.add("bob")
    seen: set[str] = set()

    def handshaking() -> bool:
        for name, other in (("alice", "bob"), ("bob", "alice")):
            if name not in seen and net.hosts[name].peer.status().state == "pairing":
                seen.add(name)
                scenes.append(_scene(net, name, other, f"handshaking-{len(seen)}"))
        return len(seen) == 2
    net.run_until(handshaking, 5, every=0.0002)
    if not net.run_until(lambda: all(net.hosts[n].peer.status().state == "paired"
                                     for n in ("alice", "bob")), 10):
        raise AssertionError("the scene's two cores did not pair")
    net.pay("alice", 1250, "lunch")
    net.pay("bob", 300, "")
    net.run(net.now + 1.0)
    scenes.append(_scene(net, "alice", "bob", "paired"))
    return scenes


# ------------------------------------------------------------------ what is thrown

@st.composite
def mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    """A datagram with a few bytes flipped, inserted, deleted or set to edge values."""
    out = bytearray(raw)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(out)))
        match draw(st.sampled_from(["flip", "insert", "delete", "set"])):
            case "flip" if out:
                out[where % len(out)] ^= 1 << draw(st.integers(0, 7))
            case "insert":
                out[where:where] = draw(st.binary(min_size=1, max_size=4))
            case "delete" if out:
                del out[where % len(out)]
            case "set" if out:
                out[where % len(out)] = draw(st.sampled_from([0, 1, 0x7F, 0x80, wire.MAX_LIST, 255]))
    return bytes(out)


def _text() -> st.SearchStrategy[str]:
    """Names the codec carries (the rules for a name: no spaces, nothing invisible)."""
    return st.text(max_size=12).filter(
        lambda s: len(s.encode()) <= wire.MAX_NAME and not wire.has_control(s, word=True))


def aimed(scene: Scene) -> st.SearchStrategy[bytes]:
    """Well-formed outer messages with random fields, addressed to the scene's core."""
    me = scene.peer.me.incarnation
    other = scene.partner.me.incarnation if scene.partner is not None else 12345
    inc = st.sampled_from([me, other, 1, 2**64 - 1])
    key, nonce, tag = (st.binary(min_size=n, max_size=n) for n in (32, 16, 16))
    share = st.sampled_from([b"", bytes(32)]) | st.binary(min_size=32, max_size=32)
    flags = st.integers(0, 15)
    names = st.sampled_from(["alice", "bob", ""]) | _text()
    sid = st.binary(min_size=8, max_size=8)
    session = getattr(scene.peer, "session", None)
    if session is not None:   # sealed datagrams that reach the AEAD, not just the session lookup
        sid = sid | st.just(session.keys.session_id)
    messages = st.one_of(
        st.builds(wire.Announce, inc, st.integers(0, 65535), flags, st.integers(0, 2**32 - 1),
                  names, names, names, inc, key).map(wire.padded),
        st.builds(wire.Hello, inc, inc, flags, names, names, key, nonce).map(wire.padded),
        st.builds(wire.Reply, inc, st.just(me), flags, names, nonce, key, nonce, share),
        st.builds(wire.Reveal, inc, st.just(me), key, share, tag),
        st.builds(wire.Confirm, inc, st.just(me), tag),
        st.builds(wire.Refuse, inc, st.just(me), st.integers(0, 255), names),
        st.builds(wire.Sealed, sid, st.integers(0, 2**64 - 1), st.binary(min_size=17, max_size=120)),
    )
    return messages.map(wire.encode)


def datagrams(scene: Scene) -> st.SearchStrategy[bytes]:
    """Noise, replays, mutations of what was seen, and well-formed messages aimed at the core."""
    recorded = st.sampled_from(scene.record) if scene.record else st.just(b"")
    return st.one_of(
        st.binary(max_size=200),
        recorded,
        recorded.flatmap(mutated),
        aimed(scene),
    )


def sources(scene: Scene) -> st.SearchStrategy[Addr]:
    """Where a datagram claims to come from: the partner, the core itself, strangers."""
    known = [STRANGER, scene.addr] + ([scene.partner_addr] if scene.partner_addr else [])
    return st.sampled_from(known) | st.tuples(st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.77"]),
                                              st.integers(1, 65535))


def inputs(scene: Scene, max_size: int) -> st.SearchStrategy[list[tuple[bytes, Addr, float]]]:
    """A sequence of (datagram, source, seconds since the previous one)."""
    gap = st.sampled_from([0.0, 0.001, 0.05, 0.3])
    return st.lists(st.tuples(datagrams(scene), sources(scene), gap), min_size=1, max_size=max_size)


# ------------------------------------------------------------------ feeding and checking

def _ledger(peer: Peer) -> tuple[int, list[tuple[int, str, int, str]]]:
    return peer.status().balance, [(e.seq, e.direction, e.amount, str(e.status)) for e in peer.history()]


def feed(peer: Peer, items: Sequence[tuple[bytes, Addr, float]], now: float) -> tuple[float, list[Any]]:
    """Deliver each datagram at its time, serving timers in between; return the clock and the events."""
    seen: list[Any] = []
    for data, src, gap in items:
        now += gap
        due = peer.next_timeout()
        if due is not None and due <= now:
            peer.handle_timeout(now)
        peer.receive_datagram(data, src, now)
        peer.datagrams_to_send(now)
        while (event := peer.next_event()) is not None:
            seen.append(event)
    return now, seen


def still_pays(peer: Peer, partner: Peer, addr: Addr, partner_addr: Addr, now: float) -> bool:
    """The real partner pays once: the payment arrives, so fuzzing broke nothing."""
    if partner.status().state != "paired" or peer.status().state != "paired":
        return False
    before = peer.status().balance
    partner.pay(7, "after", now)
    for data, dest in partner.datagrams_to_send(now):
        if dest == addr:
            peer.receive_datagram(data, partner_addr, now)
    return peer.status().balance == before + 7


def check_case(scene: Scene, items: Sequence[tuple[bytes, Addr, float]]) -> None:
    """One fuzz case against a fresh copy of the scene's core: see the module docstring."""
    peer, partner = scene.fresh()
    before = _ledger(peer)
    end, seen = feed(peer, items, scene.now)
    assert _ledger(peer) == before, f"{scene.name}: the ledger moved"
    assert not [e for e in seen if isinstance(e, MONEY_EVENTS)], f"{scene.name}: {seen}"
    assert bounded(peer) == [], bounded(peer)
    if scene.name == "paired" and partner is not None and scene.partner_addr is not None:
        elapsed = end - scene.now
        if elapsed < 1.0:   # within a second nothing legitimate ends a session
            assert still_pays(peer, partner, scene.addr, scene.partner_addr, end), \
                f"paired core no longer takes its partner's payment: {peer.status()}"


def scene_named(scenes: Sequence[Scene], name: str) -> Scene:
    return next(s for s in scenes if s.name == name)
