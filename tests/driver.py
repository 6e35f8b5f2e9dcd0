"""One driver for the sans-I/O core: real peers on an in-memory LAN with a virtual clock.

The seeded simulator (:mod:`sim`), the hand-driven session tests and the
benchmark's core rows (tools/bench.py) all drive :class:`lanpay.core.peer.Peer`
the same way: feed it datagrams and time, send what it says to send, collect
what it tells its user.  This module is that loop, once.

It lives in ``tests/`` because it is test equipment, not part of the package
(``lanpay/`` ships only what a user of the library needs); the tools that use
it put ``tests/`` on ``sys.path``, as tools/simulate.py already does.

The wire is either *perfect* (:class:`Perfect`: nothing lost, a fixed latency,
no random draw at all, so a benchmark pays nothing per datagram for faults it
does not want) or *seeded* (:class:`Conditions`: loss, duplication, delay and
reordering drawn from one ``random.Random(seed)``, so a run is reproduced
exactly from its seed).  Either way it can be partitioned (both ways or one
way), drop datagrams by rule (by type: ``kind`` opens sealed datagrams with
the sender's keys), restart a process under a name (a new life: new memory,
new port), stop a process for a while (SIGSTOP: everything waits for it),
and run callbacks at a time or when a watcher sees a moment of the protocol.
Every life keeps what it sent and what it told its user, with the time.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

from lanpay.core import announcer, crypto, events, pairing, wire
from lanpay.core.errors import DecodeError, UserError
from lanpay.core.peer import BROADCAST, Config, Destination, Peer

Addr = tuple[str, int]

#: Datagrams delivered at one instant before the driver calls it a livelock (a bug in a core).
MAX_AT_ONE_INSTANT = 1_000_000


@dataclass
class Host:
    """One process (one life) of a peer: its core, where it listens, and what it did."""

    name: str
    addr: Addr
    config: Config
    peer: Peer
    events: list[events.Event] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    alive: bool = True
    timeline: list[tuple[float, events.Event]] = field(default_factory=list)   # events with the time seen
    accepted: set[str] = field(default_factory=set)    # codes whose hand-back this host's user accepted
    started: float = 0.0
    died: float | None = None
    stalled: bool = False
    backlog: list[tuple[bytes, Addr]] = field(default_factory=list)   # what arrived while stalled
    stalls: list[tuple[float, float]] = field(default_factory=list)    # (stopped, resumed) times
    stalled_since: float = 0.0
    stall_until: float = 0.0

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def running(self) -> bool:
        return self.alive and not self.stalled

    def __repr__(self) -> str:
        return f"<{self.name} {self.addr[0]}:{self.addr[1]} {self.peer.incarnation:#x}>"


@dataclass
class Conditions:
    """A seeded wire: every datagram draws its loss, duplication, delay and reordering."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0            # chance a datagram gets an extra, larger delay
    delay: tuple[float, float] = (0.0002, 0.002)


@dataclass(frozen=True)
class Perfect:
    """A wire that loses, duplicates and reorders nothing and draws no random number:
    every datagram takes ``latency`` (0: delivered at the instant it is sent)."""

    latency: float = 0.0


@dataclass
class Datagram:
    """One datagram on its way to one receiver, as a drop rule sees it."""

    net: Net
    now: float
    data: bytes
    src: Host
    dst: Host | None

    @cached_property
    def kind(self) -> str:
        return self.net.kind(self.data, self.src.addr)


#: A drop rule: True to lose this datagram on its way to this receiver.
DropRule = Callable[[Datagram], bool]
#: A tap sees every datagram sent, before faults: (now, data, source, destination).
Tap = Callable[[float, bytes, Addr, Addr], None]


class Net:
    """The LAN: hosts by name and address, the wire between them, the clock and what is scheduled.

    ``echo``: a broadcast reaches its sender too, as on a real LAN (the session
    tests turn it off to count only the drops they provoke).  ``keep``: each
    host keeps every datagram it sent and event it told (a long benchmark run,
    whose memory is what it measures, turns it off; event hooks still see all).
    """

    def __init__(self, seed: int, conditions: Conditions | Perfect | None = None, record: bool = False,
                 echo: bool = True, keep: bool = True) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.cond = conditions or Conditions()
        self.echo, self.keep = echo, keep
        self.now = 0.0
        self.hosts: dict[str, Host] = {}
        self.by_addr: dict[Addr, Host] = {}
        self._queue: list[tuple[float, int, bytes, Addr, Addr]] = []
        self._n = 0
        self.cut: set[frozenset[str]] = set()
        self.one_way: set[tuple[str, str]] = set()     # (sender, receiver) names: that direction only
        self.rules: list[DropRule] = []
        self.record = record
        self.wire_log: list[tuple[float, bytes, Addr, Addr]] = []
        self.taps: list[Tap] = []
        self.consent = True           # users accept a hand-back when the two screens show one code
                                      # (scenarios with users of their own turn this off)
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self.watchers: list[Callable[[], bool]] = []   # called after every step; dropped once they return True
        self.event_hooks: list[Callable[[Host, events.Event], None]] = []
        self._asked: dict[str, int] = {}            # incarnations tests asked for, by host name

    # ------------------------------------------------------------ hosts
    def add(self, name: str, label: str | None = None, incarnation: int | None = None, **kw) -> Host:
        """Start a peer called ``name``; ``label`` names the host when two peers share a name.

        ``incarnation`` overrides the random one, for tests that need a given tie-break.
        """
        index = len(self.by_addr) + 1
        return self._spawn(label or name, (f"10.0.0.{index}", 40000 + index), Config(name=name, **kw), incarnation)

    def _spawn(self, name: str, addr: Addr, config: Config, incarnation: int | None) -> Host:
        """A new process on the LAN; ``incarnation`` orders it against the others (:meth:`_ranked`)."""
        peer = Peer(config, random.Random(self.rng.getrandbits(64)), self.now)
        if incarnation is not None:
            peer.me = self._ranked(config, incarnation)
        host = self._start(Host(name, addr, config, peer, started=self.now))
        if incarnation is not None:
            self._asked[host.name] = incarnation
        return host

    def _ranked(self, config: Config, asked: int) -> pairing.Identity:
        """An identity whose incarnation (made by its keys, so not chosen) sorts against every
        other host's as ``asked`` does against theirs (the one they asked for, or the one they
        have): a small number sorts below every random one."""
        others = [(h.peer.incarnation, self._asked.get(h.name, h.peer.incarnation)) for h in self.by_addr.values()]
        rng = random.Random(f"{config.name}-{asked}-{self.seed}")
        while True:
            me = pairing.new_identity(config.name, config.want_peer or "", config.code or None, rng)
            if all((me.incarnation < actual) == (asked < wanted) for actual, wanted in others):
                return me

    def restart(self, name: str, keep_old: bool = False, incarnation: int | None = None) -> Host:
        """Kill a host's process (all memory lost) and start a new one at a new port.

        With ``keep_old`` the old process is not killed: a newcomer with the same
        name starts on another machine while the old one lives on (stalled, say).
        ``incarnation`` orders the new one against the others, as for :meth:`add`.
        """
        old = self.hosts[name]
        if not keep_old:
            self.kill(name)
        index = len(self.by_addr) + 1
        addr = (f"10.0.1.{index}" if keep_old else old.addr[0], 40000 + index)
        return self._spawn(old.name, addr, old.config, incarnation)

    def _start(self, host: Host) -> Host:
        self.hosts[host.name] = host
        self.by_addr[host.addr] = host
        return host

    def lives(self, name: str) -> list[Host]:
        """Every process that ran under ``name``, oldest first."""
        return [h for h in self.by_addr.values() if h.name == name]

    def kill(self, name: str) -> None:
        self.kill_host(self.hosts[name])

    def kill_host(self, host: Host) -> None:
        if host.alive:
            host.alive, host.died = False, self.now

    def move(self, host: Host, addr: Addr) -> None:
        """The host got a new address (a new lease): same process, same memory; the old one is gone."""
        del self.by_addr[host.addr]
        host.addr = addr
        self.by_addr[addr] = host

    def stall(self, host: Host, seconds: float) -> None:
        """Stop a process (SIGSTOP) for ``seconds``: what arrives meanwhile waits for it."""
        if not host.stalled:
            host.stalled, host.stalled_since = True, self.now
        host.stall_until = max(host.stall_until, self.now + seconds)     # stalls that overlap add up
        self.at(self.now + seconds, lambda: self.resume(host))

    def resume(self, host: Host) -> None:
        """The stopped process runs again: everything queued arrives at once, and its overdue
        timers fire, in either order (an event loop may run either first): every other stop of a
        host reads its socket first, the others run its timers first."""
        if not host.stalled or self.now < host.stall_until:
            return
        host.stalled = False
        host.stalls.append((host.stalled_since, self.now))
        if not host.alive:
            return
        timers_first = len(host.stalls) % 2 == 0
        if timers_first:
            self._overdue(host)
        backlog, host.backlog = host.backlog, []
        for data, src in backlog:
            host.peer.receive_datagram(data, src, self.now)
        if not timers_first:
            self._overdue(host)
        self._flush(host)

    def _overdue(self, host: Host) -> None:
        t = host.peer.next_timeout()
        if t is not None and t <= self.now:
            host.peer.handle_timeout(self.now)

    def live(self) -> list[Host]:
        return [h for h in self.by_addr.values() if h.running]

    # ------------------------------------------------------------ faults on the wire
    def partition(self, a: str, b: str) -> None:
        self.cut.add(frozenset((a, b)))

    def cut_one_way(self, sender: str, receiver: str) -> None:
        """Lose everything ``sender`` sends to ``receiver``; the other direction still flows."""
        self.one_way.add((sender, receiver))

    def heal(self) -> None:
        self.cut.clear()
        self.one_way.clear()

    def kind(self, data: bytes, src: Addr) -> str:
        """Name a datagram's type: ``announce``, ``hello``, ... or ``sealed:pay``, ``sealed:resume``.

        Sealed datagrams are opened with the sender's own session keys (the
        driver holds every core); one that does not open is ``sealed:?``.
        """
        try:
            msg = wire.decode(data)
        except DecodeError:
            return "junk"
        if not isinstance(msg, wire.Sealed):
            return type(msg).__name__.lower()
        sender = self.by_addr.get(src)
        s = sender.peer.session if sender is not None else None
        if s is None or s.keys.session_id != msg.session_id:
            return "sealed:?"
        plain = crypto.open_sealed(s.keys.send_key, msg.counter, msg.header, msg.ciphertext)
        if not plain or plain[0] not in wire.INNER:
            return "sealed:?"
        return "sealed:" + wire.INNER[plain[0]].__name__.lower()

    def _lost(self, host: Host, receiver: Host | None, data: bytes) -> bool:
        """Partitions, then drop rules (only asked when there are some: the fast path has none)."""
        if receiver is not None and (frozenset((host.name, receiver.name)) in self.cut
                                     or (host.name, receiver.name) in self.one_way):
            return True
        if self.rules:
            seen = Datagram(self, self.now, data, host, receiver)
            if any(rule(seen) for rule in self.rules):
                return True
        return False

    # ------------------------------------------------------------ scheduling
    def at(self, when: float, action: Callable[[], None]) -> None:
        """Call ``action`` when the fake clock reaches ``when``."""
        self._n += 1
        heapq.heappush(self._timers, (when, self._n, action))

    def watch(self, predicate: Callable[[], bool]) -> None:
        """Call ``predicate`` after every step until it returns True (it acts when it fires)."""
        self.watchers.append(predicate)

    # ------------------------------------------------------------ traffic
    def inject(self, data: bytes, src: Addr, dst: Addr, delay: float = 0.0) -> None:
        """Put a datagram on the wire as if someone sent it (attackers, replays)."""
        self._n += 1
        heapq.heappush(self._queue, (self.now + delay, self._n, data, src, dst))

    def _transmit(self, host: Host, data: bytes, dest: Destination) -> None:
        src, now, cond = host.addr, self.now, self.cond
        if dest is BROADCAST:
            targets = [a for a in self.by_addr if self.echo or a != src]
        else:
            targets = [dest]     # type: ignore[list-item]
        for dst in targets:
            if self.record:
                self.wire_log.append((now, data, src, dst))
            for tap in self.taps:               # a tap may cut the wire for this very datagram
                tap(now, data, src, dst)
            if (self.cut or self.one_way or self.rules) and self._lost(host, self.by_addr.get(dst), data):
                continue
            if type(cond) is Perfect:
                self._n += 1
                heapq.heappush(self._queue, (now + cond.latency, self._n, data, src, dst))
                continue
            if self.rng.random() < cond.loss:
                continue
            copies = 2 if self.rng.random() < cond.duplicate else 1
            for _ in range(copies):
                delay = self.rng.uniform(*cond.delay)
                if self.rng.random() < cond.reorder:
                    delay += self.rng.uniform(0.002, 0.05)
                self.inject(data, host.addr, dst, delay)

    def take(self, host: Host) -> list[bytes]:
        """What a host wants to send now, taken off it and put on no wire (a test delivers it by hand)."""
        out = [data for data, _ in host.peer.datagrams_to_send(self.now)]
        self.collect(host)
        return out

    def flush(self, host: Host) -> None:
        """Send what a host queued and collect what it told its user (after a user action, say)."""
        self._flush(host)

    def _flush(self, host: Host) -> None:
        if not host.alive or host.stalled:
            return
        for data, dest in host.peer.datagrams_to_send(self.now):
            if self.keep:
                host.sent.append(data)
            self._transmit(host, data, dest)
        self.collect(host)

    def collect(self, host: Host) -> None:
        """Take every event the host's core has for its user, in order, with the time."""
        next_event = host.peer.next_event
        while (event := next_event()) is not None:
            if self.keep:
                host.events.append(event)
                host.timeline.append((self.now, event))
            for hook in self.event_hooks:
                hook(host, event)
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

    # ------------------------------------------------------------ the clock
    def _next_time(self) -> float | None:
        times = [self._queue[0][0]] if self._queue else []
        if self._timers:
            times.append(self._timers[0][0])
        times += [t for h in self.live() if (t := h.peer.next_timeout()) is not None]
        return min(times) if times else None

    def _deliver_due(self) -> None:
        """Deliver everything due by now, and what the receivers send back that is due by now too."""
        for _ in range(MAX_AT_ONE_INSTANT):
            if not self._queue or self._queue[0][0] > self.now:
                return
            _, _, data, src, dst = heapq.heappop(self._queue)
            host = self.by_addr.get(dst)
            if host is None or not host.alive:
                continue
            if host.stalled:
                host.backlog.append((data, src))
                continue
            host.peer.receive_datagram(data, src, self.now)
            self._flush(host)
        raise AssertionError(f"the LAN never went quiet at {self.now:.6f}s")

    def pump(self) -> None:
        """Send what every host queued and deliver until the wire is quiet, without moving the clock."""
        for host in self.live():
            self._flush(host)
        self._deliver_due()

    def step(self, nxt: float | None = None) -> bool:
        """Advance to the next thing that happens (``nxt`` if the caller knows it); False when
        nothing is scheduled."""
        nxt = self._next_time() if nxt is None else nxt
        if nxt is None:
            return False
        self.now = max(self.now, nxt)
        self._deliver_due()
        for host in self.live():
            t = host.peer.next_timeout()
            if t is not None and t <= self.now:
                host.peer.handle_timeout(self.now)
            self._flush(host)
        while self._timers and self._timers[0][0] <= self.now:
            _, _, action = heapq.heappop(self._timers)
            action()
        if self.watchers:
            self.watchers = [w for w in self.watchers if not w()]
        return True

    def run(self, until: float) -> None:
        """Run the network up to time ``until`` (bounded: the fake clock always advances)."""
        guard = 0
        while self.now < until and guard < 2_000_000:
            guard += 1
            nxt = self._next_time()
            if nxt is None or nxt > until:
                self.now = until
                break
            self.step(nxt)
        for host in self.live():
            self._flush(host)

    def play(self, actions: Iterable[tuple[float, str, tuple]], act: Callable[[str, tuple], None]) -> None:
        """Play a timeline: run the clock to each action's time (seconds from now), then ``act(kind, args)``."""
        start = self.now
        for at, kind, args in actions:
            self.run(start + at)
            act(kind, args)

    def run_until(self, predicate: Callable[[], bool], limit: float, every: float = 0.01) -> bool:
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

    # ------------------------------------------------------------ what users do
    def pay(self, name: str, cents: int, memo: str = "") -> int:
        return self.pay_from(self.hosts[name], cents, memo)

    def pay_from(self, host: Host, cents: int, memo: str = "") -> int:
        seq = host.peer.pay(cents, memo, self.now)
        self._flush(host)
        return seq

    def close(self, name: str) -> None:
        host = self.hosts[name]
        host.peer.close(self.now)
        self._flush(host)


# ---------------------------------------------------------------- identities and announces for tests

_BANDED: dict[tuple, pairing.Identity] = {}


def identity_in_band(name: str, low: int, code: str | None = None, private: bytes | None = None,
                     public: bytes | None = None, high: int | None = None) -> pairing.Identity:
    """An identity whose incarnation is in ``[low, 2 * low)``: incarnations come from keys, so a
    test that needs an order grinds signing keys for it (as a forger could) instead of choosing
    one.  ``private``/``public`` fix the handshake key (``public`` alone: one announced but not held);
    ``high`` moves the band's top (``low=1, high=2**64``: any incarnation, one identity per ``name``)."""
    high = min(2**64, 2 * low if high is None else high)
    assert high - low >= 2**54, "a band this narrow takes too long to grind"
    key = (name, low, high, code, private, public)
    if key not in _BANDED:
        _BANDED[key] = _drawn(name, random.Random(f"band-{name}-{low}-{high}-{code}"), low, high, code, private, public)
    return _BANDED[key]


def identity_of(name: str, seed: object, public: bytes | None = None) -> pairing.Identity:
    """One more identity, drawn from ``seed`` (any incarnation), announcing ``public`` if given."""
    return _drawn(name, random.Random(f"identity-{name}-{seed}"), 1, 2**64, None, None, public)


def _drawn(name: str, rng: random.Random, low: int, high: int, code: str | None, private: bytes | None,
           public: bytes | None) -> pairing.Identity:
    """The handshake key (unless given), then signing keys until the incarnation they make is in
    ``[low, high)``."""
    private = private if private is not None else crypto.new_private_key(rng)
    public = public if public is not None else crypto.public_key(private)
    while True:
        seed = rng.randbytes(crypto.KEY_SIZE)
        signing = crypto.signing_public(seed)
        if low <= (inc := crypto.incarnation_of(signing, public)) < high:
            return pairing.Identity(name, inc, private, public, "", code, seed, signing)


class Speaker:
    """Announces of one identity, signed, each with the next counter (as its process would send
    them): what a forger sends for an incarnation of its own."""

    def __init__(self, me: pairing.Identity, port: int = 47000) -> None:
        self.me, self.port, self.counter = me, port, 0

    def announce(self, flags: int = 0, interval_ms: int = 2500, partner: str = "", partner_inc: int = 0,
                 wants: str = "") -> bytes:
        self.counter += 1
        msg = wire.Announce(self.me.incarnation, self.port, flags, interval_ms, self.me.name, wants, partner,
                            partner_inc, self.me.public_key, self.me.sign_public, self.counter)
        return wire.encode(announcer.sign(msg, self.me.sign_private))


_SPEAKERS: dict[tuple[object, ...], Speaker] = {}


def speaker(name: str, low: int | None = None, *, seed: object = None, public: bytes | None = None,
            high: int | None = None, port: int = 47000) -> Speaker:
    """The one Speaker of an identity, made once and kept, so that its announces keep counting
    up (each is news): in ``low``'s band (``identity_in_band``), or drawn from ``seed``
    (``identity_of``) when no band is asked for."""
    key = (name, low, seed, public, high, port)
    found = _SPEAKERS.get(key)
    if found is None:
        me = identity_in_band(name, low, public=public, high=high) if low is not None \
            else identity_of(name, seed, public)
        found = _SPEAKERS[key] = Speaker(me, port)
    return found
