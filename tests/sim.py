"""A seeded, simulated LAN with a fake clock, for driving real cores deterministically.

Every host is a real :class:`lanpay.core.peer.Peer`; the network between them
loses, duplicates, delays and reorders datagrams, partitions and heals, all
from one ``random.Random(seed)``, so any run is reproduced exactly from its seed.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from dataclasses import dataclass, field

from lanpay.core import events
from lanpay.core.errors import UserError
from lanpay.core.peer import BROADCAST, Config, Peer

Addr = tuple[str, int]


@dataclass
class Host:
    name: str
    addr: Addr
    config: Config
    peer: Peer
    events: list[events.Event] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    alive: bool = True
    timeline: list[tuple[float, events.Event]] = field(default_factory=list)   # events with the time seen
    accepted: set[str] = field(default_factory=set)    # codes whose hand-back this host's user accepted

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


@dataclass
class Conditions:
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0            # chance a datagram gets an extra, larger delay
    delay: tuple[float, float] = (0.0002, 0.002)


class Net:
    def __init__(self, seed: int, conditions: Conditions | None = None, record: bool = False) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.cond = conditions or Conditions()
        self.now = 0.0
        self.hosts: dict[str, Host] = {}
        self.by_addr: dict[Addr, Host] = {}
        self._queue: list[tuple[float, int, bytes, Addr, Addr]] = []
        self._n = 0
        self.cut: set[frozenset[str]] = set()
        self.record = record
        self.wire_log: list[tuple[float, bytes, Addr, Addr]] = []
        self.taps: list = []          # callables(now, data, src, dst) seeing every datagram sent
        self.consent = True           # users accept a hand-back when the two screens show one code

    # ------------------------------------------------------------ hosts
    def add(self, name: str, label: str | None = None, incarnation: int | None = None, **kw) -> Host:
        """Start a peer called ``name``; ``label`` names the host when two peers share a name.

        ``incarnation`` overrides the random one, for tests that need a given tie-break.
        """
        index = len(self.by_addr) + 1
        addr = (f"10.0.0.{index}", 40000 + index)
        config = Config(name=name, **kw)
        peer = Peer(config, random.Random(self.rng.getrandbits(64)), self.now)
        if incarnation is not None:
            peer.me = dataclasses.replace(peer.me, incarnation=incarnation)
        host = Host(label or name, addr, config, peer)
        self.hosts[host.name] = host
        self.by_addr[addr] = host
        return host

    def restart(self, name: str) -> Host:
        """Kill a host's process (all memory lost) and start a new one at a new port."""
        old = self.hosts[name]
        old.alive = False
        index = len(self.by_addr) + 1
        addr = (old.addr[0], 40000 + index)
        peer = Peer(old.config, random.Random(self.rng.getrandbits(64)), self.now)
        host = Host(old.name, addr, old.config, peer)
        self.hosts[name] = host
        self.by_addr[addr] = host
        return host

    def kill(self, name: str) -> None:
        self.hosts[name].alive = False

    def partition(self, a: str, b: str) -> None:
        self.cut.add(frozenset((a, b)))

    def heal(self) -> None:
        self.cut.clear()

    # ------------------------------------------------------------ traffic
    def inject(self, data: bytes, src: Addr, dst: Addr, delay: float = 0.0) -> None:
        """Put a datagram on the wire as if someone sent it (attackers, replays)."""
        self._n += 1
        heapq.heappush(self._queue, (self.now + delay, self._n, data, src, dst))

    def _transmit(self, host: Host, data: bytes, dest) -> None:
        targets = [h.addr for h in self.by_addr.values()] if dest is BROADCAST else [dest]
        for dst in targets:
            if self.record:
                self.wire_log.append((self.now, data, host.addr, dst))
            for tap in self.taps:
                tap(self.now, data, host.addr, dst)
            receiver = self.by_addr.get(dst)
            if receiver is not None and frozenset((host.name, receiver.name)) in self.cut:
                continue
            if self.rng.random() < self.cond.loss:
                continue
            copies = 2 if self.rng.random() < self.cond.duplicate else 1
            for _ in range(copies):
                delay = self.rng.uniform(*self.cond.delay)
                if self.rng.random() < self.cond.reorder:
                    delay += self.rng.uniform(0.002, 0.05)
                self.inject(data, host.addr, dst, delay)

    def _flush(self, host: Host) -> None:
        for data, dest in host.peer.datagrams_to_send(self.now):
            host.sent.append(data)
            self._transmit(host, data, dest)
        while (event := host.peer.next_event()) is not None:
            host.events.append(event)
            host.timeline.append((self.now, event))
            if isinstance(event, (events.HandbackRequested, events.HandbackAwaited)):
                self._consent()

    def _consent(self) -> None:
        """The users compare codes: a survivor asked to hand back accepts when the restarted
        side (a live host) shows the same code, as a person reading both screens would."""
        if not self.consent:
            return
        shown = {e.code for h in self.live() for e in h.of(events.HandbackAwaited)}
        for host in self.live():
            for event in host.of(events.HandbackRequested):
                if event.code in shown and event.code not in host.accepted:
                    host.accepted.add(event.code)
                    try:
                        host.peer.accept(self.now, event.code)
                    except UserError:
                        continue
                    self._flush(host)

    def live(self) -> list[Host]:
        return [h for h in self.by_addr.values() if h.alive]

    def step(self) -> bool:
        """Advance to the next thing that happens; False when nothing is scheduled."""
        candidates = []
        if self._queue:
            candidates.append(self._queue[0][0])
        timers = [(h.peer.next_timeout(), h) for h in self.live()]
        candidates += [t for t, _ in timers if t is not None]
        if not candidates:
            return False
        self.now = max(self.now, min(candidates))
        while self._queue and self._queue[0][0] <= self.now:
            _, _, data, src, dst = heapq.heappop(self._queue)
            host = self.by_addr.get(dst)
            if host is not None and host.alive:
                host.peer.receive_datagram(data, src, self.now)
                self._flush(host)
        for host in self.live():
            t = host.peer.next_timeout()
            if t is not None and t <= self.now:
                host.peer.handle_timeout(self.now)
            self._flush(host)
        return True

    def run(self, until: float) -> None:
        """Run the network up to time ``until`` (bounded: the fake clock always advances)."""
        guard = 0
        while self.now < until and guard < 2_000_000:
            guard += 1
            nxt = [self._queue[0][0]] if self._queue else []
            nxt += [t for h in self.live() if (t := h.peer.next_timeout()) is not None]
            if not nxt or min(nxt) > until:
                self.now = until
                break
            self.step()
        for host in self.live():
            self._flush(host)

    def run_until(self, predicate, limit: float, every: float = 0.01) -> bool:
        """Run until ``predicate()`` holds or the fake clock passes ``limit`` seconds from now.

        ``predicate`` is checked every ``every`` simulated seconds; long quiet runs
        use a coarser grain to stay cheap.
        """
        end = self.now + limit
        while not predicate():
            if self.now >= end:
                return False
            self.run(min(end, self.now + every))
        return True

    def pay(self, name: str, cents: int, memo: str = "") -> int:
        host = self.hosts[name]
        seq = host.peer.pay(cents, memo, self.now)
        self._flush(host)
        return seq

    def close(self, name: str) -> None:
        host = self.hosts[name]
        host.peer.close(self.now)
        self._flush(host)
