"""Fault classes that hunt for what decides *who the counterpart is*: restarts, stalls, namesakes.

Each class turns a seed into a :class:`FaultPlan` (conditions, payments and
faults on a timeline); :func:`run_fault_plan` plays it over :mod:`sim`, lets
the network calm down and checks every invariant of docs/DESIGN.md across
lives with :func:`invariants.check_lives`.  The classes:

``restarts``    several restarts per seed, of either side
``stages``      a restart aimed at a protocol stage: while the survivor probes,
                mid-handshake, while the new process restores, after the
                hand-back is sent but before it is acknowledged
``partitions``  partitions of 10-40 s, both ways or one way
``drops``       every datagram of one type lost for a while
``stalls``      a process stopped for seconds, then resumed with all it missed
``namesake``    the old process stalls, a new one of the same name starts
                elsewhere, then the old one runs again
``adversary``   forged namesake announces, leaving announces, redirects,
                Hellos and Replies at stated rates
``bursts``      runs of payments made at one instant (up to 80, beyond the
                window), under loss up to 45 %, duplication and reordering

A user shown ``HandbackRequested`` accepts (``peer.accept``) as the plan says:
by default only when the code shown on the other side is the same.

What every plan's run shares (:class:`Plan`, :func:`book_for`, :func:`pair`,
:func:`settled`, :func:`one_more_each_way`, :func:`seeds`) serves the random
sweep of tests/test_sim.py too.
"""

from __future__ import annotations

import os
import random
import traceback
from dataclasses import dataclass, field, replace

from invariants import Book, check_lives
from lanpay.core import events, wire
from lanpay.core.errors import UserError
from driver import Addr, Speaker, identity_of
from sim import Conditions, Datagram, DropRule, Host, Net

ALICE_BOB = ("alice", "bob")
LIVENESS = 30.0          # docs/DESIGN.md invariant 10: paired again this long after the last fault
SETTLE_LIMIT = 150.0
KINDS = ("restarts", "stages", "partitions", "drops", "stalls", "namesake", "adversary", "bursts", "leaves")
STAGES = ("probe", "handshake", "restoring", "handback")
TYPES = ("announce", "hello", "reply", "reveal", "confirm", "refuse", "sealed:pay", "sealed:ack",
         "sealed:ping", "sealed:pong", "sealed:resume", "sealed:resumed")
FORGERIES = ("namesake", "leaving", "redirect", "hello", "reply")
AMOUNTS = (1, 5, 99, 100, 1000, 2500, 12345)
MEMOS = ("", "", "lunch", "rent for may", "café ☕", "x" * 64)
RERUN = "LANPAY_SIM_SEED={seed} python3 -m pytest tests/test_sim_faults.py -k {kind}"


@dataclass
class Plan:
    """Everything a seed decides, drawn before the run so a failure can describe it."""

    seed: int
    conditions: Conditions
    code: str | None
    limits: dict[str, int | None]
    chaos: float
    actions: list[tuple[float, str, tuple]] = field(default_factory=list)

    def describe(self) -> str:
        c = self.conditions
        kinds = ", ".join(f"{t:.2f}s {kind}{args if args else ''}" for t, kind, args in self.actions)
        return (f"loss {c.loss:.0%}, duplicate {c.duplicate:.0%}, reorder {c.reorder:.0%}, "
                f"delay {c.delay[0] * 1000:.1f}-{c.delay[1] * 1000:.1f} ms, code {self.code!r}, "
                f"limits {self.limits}, chaos {self.chaos:.1f}s: {kinds or 'no actions'}")


@dataclass
class FaultPlan(Plan):
    """A plan of one fault class, with how its users answer and what a forger sends."""

    kind: str = ""
    accept: str = "match"                  # "match" (codes compared), "always" or "never"
    rates: dict[str, float] = field(default_factory=dict)   # forged datagrams per second, by kind

    def describe(self) -> str:
        c = self.conditions
        acts = ", ".join(f"{t:.2f}s {kind}{args if args else ''}" for t, kind, args in self.actions
                         if kind != "pay")
        pays = sum(1 for _, kind, _ in self.actions if kind == "pay")
        rates = f", forging {self.rates}/s" if self.rates else ""
        return (f"{self.kind}: loss {c.loss:.0%}, duplicate {c.duplicate:.0%}, reorder {c.reorder:.0%}, "
                f"code {self.code!r}, limits {self.limits}, accept {self.accept}{rates}, chaos {self.chaos:.1f}s, "
                f"{pays} payments: {acts or 'no faults'}")


# ============================================================== what every plan's run shares
def seeds(default: int, many: str) -> list[int]:
    """The seeds a sweep runs: ``LANPAY_SIM_SEED`` alone when set (a rerun), else as many as the
    variable ``many`` says, else ``default``."""
    one = os.environ.get("LANPAY_SIM_SEED")
    if one:
        return [int(one)]
    return list(range(int(os.environ.get(many, default))))


def book_for(plan: Plan) -> Book:
    """alice and bob on a fresh network of the plan's seed and conditions, with its code and limits,
    and the book that follows them."""
    net = Net(plan.seed, plan.conditions)
    for name in ALICE_BOB:
        net.add(name, code=plan.code, limit=plan.limits[name])
    return Book(net)


def pair(book: Book) -> list[str]:
    """Let alice and bob pair; the sentence saying they did not.

    Under the heaviest loss a plan draws (half of all datagrams) pairing may take longer than
    two minutes: that loss is a fault, and the invariant is liveness once faults stop (DESIGN.md
    invariant 10), so after 120 s the network calms down and they must pair within LIVENESS;
    the plan's conditions then hold again for the rest of the run."""
    net = book.net
    if net.run_until(lambda: both_paired(book), 120, every=0.05):
        return []
    conditions, net.cond = net.cond, Conditions()
    calm = net.run_until(lambda: both_paired(book), LIVENESS, every=0.05)
    net.cond = conditions
    if calm:
        return []
    return [f"alice and bob did not pair within 120 s, nor within {LIVENESS:.0f} s once the loss stopped "
            f"({[h.peer.state.value for h in net.live()]})"]


def both_paired(book: Book) -> bool:
    """The current processes of alice and bob run, are paired, and with each other."""
    a, b = (book.current(n) for n in ALICE_BOB)
    for me, them in ((a, b), (b, a)):
        s = me.peer.session
        if not me.running or me.peer.state.value != "paired" or s is None or not s.ready \
                or s.info.incarnation != them.peer.incarnation:
            return False
    return True


def settled(book: Book) -> bool:
    return both_paired(book) and all(book.current(n).peer.idle for n in ALICE_BOB)


def one_more_each_way(book: Book) -> list[str]:
    """Once calm, the relationship still works: one more payment each way goes through."""
    for name in ALICE_BOB:
        book.pay(name, 1, "after the storm")
    if not book.net.run_until(lambda: settled(book), 10, every=0.05):
        return ["a payment made once calm did not settle within 10 s"]
    return []


# ============================================================== drawing plans
def _base(kind: str, seed: int, rng: random.Random, chaos: tuple[float, float]) -> FaultPlan:
    cond = Conditions(loss=rng.choice((0.0, 0.0, 0.05, 0.15)), duplicate=rng.choice((0.0, 0.05)),
                      reorder=rng.choice((0.0, 0.1)), delay=(0.0002, rng.choice((0.002, 0.01))))
    code = "blue harbour seven" if rng.random() < 0.3 else None
    limits: dict[str, int | None] = {n: None for n in ALICE_BOB}
    if rng.random() < 0.3:
        limits[rng.choice(ALICE_BOB)] = rng.choice((500, 2000, 20000))
    plan = FaultPlan(seed, cond, code, limits, chaos=rng.uniform(*chaos), kind=kind)
    for _ in range(rng.choice((3, 8, 20))):
        amount = rng.choice(AMOUNTS) if rng.random() < 0.7 else rng.randint(1, 50000)
        plan.actions.append((rng.uniform(0, plan.chaos), "pay", (rng.choice(ALICE_BOB), amount, rng.choice(MEMOS))))
    return plan


def _restarts(plan: FaultPlan, rng: random.Random) -> None:
    """Several restarts of either side.  With a free stranger on the LAN, every restart hits
    one side: the other survives and holds the relationship, which must come back to the
    restarted side and never go to the stranger.  (When both sides lose their memory with a
    free stranger about, a codeless peer without --peer may rightly pair with the stranger.)"""
    stranger = rng.random() < 0.3
    if stranger:
        plan.actions.append((0.0, "third-peer", ()))        # a free stranger on the LAN all along
    who = rng.choice(ALICE_BOB)
    for _ in range(rng.randint(2, 4)):
        plan.actions.append((rng.uniform(0, plan.chaos), "restart", (who if stranger else rng.choice(ALICE_BOB),)))


def _stages(plan: FaultPlan, rng: random.Random) -> None:
    who = rng.choice(ALICE_BOB)
    at = rng.uniform(0, plan.chaos / 2)
    plan.actions.append((at, "restart", (who,)))
    for _ in range(rng.choice((1, 1, 2))):
        target = rng.choice(ALICE_BOB)
        plan.actions.append((at, "aim", (rng.choice(STAGES), who, target, rng.uniform(0.0, 0.3))))


def _partitions(plan: FaultPlan, rng: random.Random) -> None:
    plan.chaos = max(plan.chaos, 45.0)
    for _ in range(rng.randint(1, 2)):
        start = rng.uniform(0, plan.chaos - 10)
        length = rng.uniform(10.0, 40.0)
        if rng.random() < 0.5:
            plan.actions.append((start, "cut", ()))
        else:
            sender = rng.choice(ALICE_BOB)
            plan.actions.append((start, "cut-one-way", (sender, "bob" if sender == "alice" else "alice")))
        plan.actions.append((start + length, "heal", ()))
    if rng.random() < 0.5:
        plan.actions.append((rng.uniform(0, plan.chaos), "restart", (rng.choice(ALICE_BOB),)))


def _drops(plan: FaultPlan, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 3)):
        sender = rng.choice((None, *ALICE_BOB))
        plan.actions.append((rng.uniform(0, plan.chaos), "drop",
                             (rng.choice(TYPES), rng.choice((0.5, 0.9, 1.0)), rng.uniform(5.0, 30.0), sender)))
    if rng.random() < 0.7:
        plan.actions.append((rng.uniform(0, plan.chaos), "restart", (rng.choice(ALICE_BOB),)))


def _stalls(plan: FaultPlan, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 3)):
        plan.actions.append((rng.uniform(0, plan.chaos), "stall", (rng.choice(ALICE_BOB), rng.uniform(1.0, 20.0))))
    if rng.random() < 0.3:
        plan.actions.append((rng.uniform(0, plan.chaos), "restart", (rng.choice(ALICE_BOB),)))


def _namesake(plan: FaultPlan, rng: random.Random) -> None:
    plan.accept = rng.choice(("match", "match", "never"))
    plan.actions.append((rng.uniform(0, plan.chaos / 2), "old-back", (rng.choice(ALICE_BOB), rng.uniform(3.0, 15.0))))


def _adversary(plan: FaultPlan, rng: random.Random) -> None:
    kinds = rng.sample(FORGERIES, rng.randint(1, 3))
    plan.rates = {k: rng.choice((0.05, 0.2, 1.0, 5.0, 20.0)) for k in kinds}     # 0.05/s: three a minute
    if rng.random() < 0.7:
        plan.actions.append((rng.uniform(0, plan.chaos), "restart", (rng.choice(ALICE_BOB),)))


def _bursts(plan: FaultPlan, rng: random.Random) -> None:
    """Runs of payments made at one instant, as a script's queued pays are: up to two and a half
    windows in flight or waiting at once, under loss up to 45 %, duplication and reordering,
    with a restart or a partition now and then.  It is where losses are found from what later
    payments' acknowledgements show, and where a timer resends one payment for many."""
    plan.conditions = replace(plan.conditions, loss=rng.choice((0.05, 0.15, 0.3, 0.45)),
                              duplicate=rng.choice((0.0, 0.05, 0.2)), reorder=rng.choice((0.0, 0.1, 0.3)))
    for _ in range(rng.randint(1, 3)):
        at, who = rng.uniform(0, plan.chaos), rng.choice(ALICE_BOB)
        for _ in range(rng.choice((5, 20, 40, 80))):
            amount = rng.choice(AMOUNTS) if rng.random() < 0.7 else rng.randint(1, 50000)
            plan.actions.append((at, "pay", (who, amount, rng.choice(MEMOS))))
    if rng.random() < 0.3:
        plan.actions.append((rng.uniform(0, plan.chaos), "restart", (rng.choice(ALICE_BOB),)))
    if rng.random() < 0.2:
        start = rng.uniform(0, plan.chaos)
        plan.actions.append((start, "cut", ()))
        plan.actions.append((start + rng.uniform(0.5, 8.0), "heal", ()))


def _leaves(plan: FaultPlan, rng: random.Random) -> None:
    """A side leaves (exit: its BYE says what it applied) while payments of both sides are in
    flight or queued, under loss, duplication and reordering, and starts again a moment later
    (the survivor hands the relationship back); now and then the other side restarts too."""
    plan.conditions = replace(plan.conditions, loss=rng.choice((0.0, 0.05, 0.15, 0.3)),
                              duplicate=rng.choice((0.0, 0.05, 0.2)), reorder=rng.choice((0.0, 0.1, 0.3)))
    for _ in range(rng.randint(1, 2)):
        at, who = rng.uniform(0, plan.chaos), rng.choice(ALICE_BOB)
        for name in ALICE_BOB:
            for _ in range(rng.choice((1, 5, 20, 40))):
                payer = name if rng.random() < 0.8 else who
                plan.actions.append((at - rng.uniform(0.0, 0.05), "pay", (payer, rng.choice(AMOUNTS), rng.choice(MEMOS))))
        plan.actions.append((at + rng.choice((0.0, 0.0005, 0.002, 0.02)), "leave", (who, rng.uniform(0.2, 6.0))))
    if rng.random() < 0.2:
        plan.actions.append((rng.uniform(0, plan.chaos), "restart", (rng.choice(ALICE_BOB),)))
    plan.actions.sort(key=lambda action: action[0])


DRAW = {"restarts": (_restarts, (10.0, 40.0)), "stages": (_stages, (10.0, 30.0)),
        "partitions": (_partitions, (20.0, 60.0)), "drops": (_drops, (10.0, 40.0)),
        "stalls": (_stalls, (10.0, 40.0)), "namesake": (_namesake, (10.0, 30.0)),
        "adversary": (_adversary, (10.0, 30.0)), "bursts": (_bursts, (5.0, 20.0)),
        "leaves": (_leaves, (5.0, 20.0))}


def draw(kind: str, seed: int) -> FaultPlan:
    """Turn a seed into one fault class's plan (each class draws from its own stream)."""
    rng = random.Random(f"{kind}-{seed}")
    faults, chaos = DRAW[kind]
    plan = _base(kind, seed, rng, chaos)
    faults(plan, rng)
    plan.actions.sort(key=lambda a: a[0])
    return plan


# ============================================================== who acts during a run
class Forger:
    """A host on the LAN forging discovery and handshake datagrams at the plan's rates."""

    def __init__(self, book: Book, rates: dict[str, float], rng: random.Random) -> None:
        self.book, self.net, self.rng, self.rates = book, book.net, rng, rates
        self.until = 0.0
        self.sent = 0
        self.sent_by: dict[str, int] = {}
        self.overheard: dict[Addr, bytes] = {}      # the latest announce broadcast from each address
        self.net.taps.append(self._overhear)

    def _overhear(self, now: float, data: bytes, src: Addr, dst: Addr) -> None:
        """The forger is on the LAN: it hears every broadcast announce (as the others do, no sooner)."""
        if len(data) > 3 and data[3] == wire.Announce.TYPE and src in self.net.by_addr:
            self.overheard[src] = data

    def start(self, until: float) -> None:
        self.until = until
        self.book.impostors = self.book.impostors or any(rate > 0 for rate in self.rates.values())
        for kind, rate in self.rates.items():
            self._next(kind, rate)

    def _next(self, kind: str, rate: float) -> None:
        when = self.net.now + self.rng.expovariate(rate)
        if when < self.until:
            self.net.at(when, lambda: self._fire(kind, rate))

    def _fire(self, kind: str, rate: float) -> None:
        for name in ALICE_BOB:
            victim, them = self.book.current(name), self.book.current(self.book.other(name))
            if victim.alive:
                self.net.inject(self._forge(kind, victim, them), self._source(them), victim.addr)
                self.sent += 1
                self.sent_by[kind] = self.sent_by.get(kind, 0) + 1
        self._next(kind, rate)

    def _source(self, them: Host) -> tuple[str, int]:
        if self.rng.random() < 0.3:
            return them.addr                                  # spoofed: the counterpart's own address
        return (f"10.0.200.{self.rng.randint(1, 20)}", self.rng.randint(1024, 65535))

    def _forge(self, kind: str, victim: Host, them: Host) -> bytes:
        rng, real = self.rng, them.peer.me
        fake_inc = rng.getrandbits(64) or 1
        if kind == "namesake":
            # A process of the counterpart's name, with keys of its own (it can sign only for those).
            flags = rng.choice((0, wire.F_PAIRED, wire.F_CODE))
            partner = rng.choice(("", victim.config.name))
            speaker = Speaker(identity_of(real.name, fake_inc), port=rng.randint(1024, 65535))
            return speaker.announce(flags, rng.choice((1000, 30000, 2**32 - 1)), partner,
                                    victim.peer.incarnation if partner else 0)
        elif kind in ("leaving", "redirect"):
            # The counterpart's latest announce as overheard: word for word (a copy, from wherever
            # _source puts it), or rewritten to say it leaves or is paired with the victim (its
            # signature then fails).
            heard = self.overheard.get(them.addr)
            if heard is None:
                return rng.randbytes(40)
            msg = wire.decode(heard)
            assert isinstance(msg, wire.Announce)
            if rng.random() < 0.5:
                return heard
            flags = wire.F_LEAVING if kind == "leaving" else wire.F_PAIRED | (msg.flags & wire.F_CODE)
            msg = replace(msg, flags=flags, partner=victim.config.name, partner_inc=victim.peer.incarnation,
                          counter=msg.counter + rng.randint(1, 3))
        elif kind == "hello":
            msg = wire.padded(wire.Hello(rng.choice((fake_inc, real.incarnation)), victim.peer.incarnation,
                                         rng.choice((0, wire.F_RESUMING)), real.name, "", rng.randbytes(32),
                                         rng.randbytes(16)))
        else:
            msg = wire.Reply(rng.choice((fake_inc, real.incarnation)), victim.peer.incarnation,
                             rng.choice((0, wire.F_RESUMING)), real.name, rng.randbytes(16), rng.randbytes(32),
                             rng.randbytes(16), b"")
        return wire.encode(msg)


class Users:
    """The two people: shown a hand-back request, they compare codes and accept as the plan says."""

    REACTION = (0.5, 3.0)
    PATIENCE = 20.0     # how long a person waits for the other screen to show a code to compare

    def __init__(self, book: Book, policy: str, rng: random.Random) -> None:
        self.book, self.policy, self.rng = book, policy, rng
        self.accepted: list[tuple[float, str, str]] = []
        book.net.event_hooks.append(self._on_event)
        book.net.consent = False

    def _on_event(self, host: Host, event: events.Event) -> None:
        if isinstance(event, events.HandbackRequested) and self.policy != "never":
            asked = self.book.net.now
            self.book.net.at(asked + self.rng.uniform(*self.REACTION), lambda: self._decide(host, event, asked))

    def _decide(self, host: Host, request: events.HandbackRequested, asked: float) -> None:
        name = self.book.name_of(host)
        if name is None or not host.alive:
            return
        net = self.book.net
        shown = [e.code for h in self.book.lives[self.book.other(name)] if h.alive
                 for e in h.of(events.HandbackAwaited)]
        waiting = not shown and self.policy == "match" and net.now < asked + self.PATIENCE
        if host.stalled or waiting:
            # Typed into a stopped process (read once it runs again), or the other screen has no
            # code to compare yet: look again in a moment.
            net.at(net.now + 0.5, lambda: self._decide(host, request, asked))
            return
        if self.policy == "always" or (shown and shown[-1] == request.code):
            try:
                host.peer.accept(self.book.net.now, request.code)
            except UserError:
                return
            self.accepted.append((self.book.net.now, host.name, request.code))
            self.book.accepted.append((self.book.net.now, host, request.code))
            self.book.net.flush(host)


# ============================================================== stages
def _stage_reached(stage: str, survivor: Host, restarted: Host) -> bool:
    """Read the protocol stage from the cores' observable state."""
    s_peer, r_peer = survivor.peer, restarted.peer
    if stage == "probe":
        return s_peer.who.probe is not None or s_peer.state.value == "repairing"
    if stage == "handshake":
        return bool(s_peer.pairer) or bool(r_peer.pairer)
    if stage == "restoring":
        mode = r_peer.session.mode.value if r_peer.session is not None else ""
        return r_peer.state.value == "restoring" or mode == "awaiting"
    return False


def _aim(book: Book, stage: str, who: str, target: str, delay: float, rng: random.Random) -> None:
    """Restart ``target`` the moment the restart of ``who`` reaches ``stage`` (within 20 s)."""
    net = book.net
    survivor_name = book.other(who)
    deadline = net.now + 20.0
    fired = []

    def hit() -> None:
        if not fired:
            fired.append(net.now)
            book.fired.append((net.now, stage))
            net.at(net.now + delay, lambda: book.restart(target))

    if stage == "handback":
        survivor = book.current(survivor_name)

        def tap(now: float, data: bytes, src, dst) -> None:
            if not fired and src == survivor.addr and net.kind(data, src) == "sealed:resume":
                hit()
        net.taps.append(tap)
        net.watch(lambda: bool(fired) or net.now > deadline)
        return
    restarted = book.current(who)
    survivor = book.current(survivor_name)

    def check() -> bool:
        if net.now > deadline:
            return True
        if _stage_reached(stage, survivor, restarted):
            hit()
            return True
        return False
    net.watch(check)


# ============================================================== running a plan
def _drop_rule(kind: str, prob: float, until: float, sender: str | None, rng: random.Random) -> DropRule:
    def rule(d: Datagram) -> bool:
        if d.now >= until or d.kind != kind or (sender is not None and d.src.name != sender):
            return False
        return rng.random() < prob
    return rule


def _play(plan: FaultPlan, book: Book, rng: random.Random, outsiders: list[Host]) -> float:
    """The faults at their times; returns when the last one ends."""
    net, start = book.net, book.net.now
    last = start

    def act(kind: str, args: tuple) -> None:
        nonlocal last
        if kind == "pay":
            name, cents, memo = args
            host = net.hosts[name]
            if host.running:
                book.pay(name, cents, memo, host=host)
            return
        last = max(last, net.now, _fault(kind, args, plan, book, rng, outsiders))
    net.play(plan.actions, act)
    net.run(max(start + plan.chaos, last))
    return max(net.now, last)


def _fault(kind: str, args: tuple, plan: FaultPlan, book: Book, rng: random.Random, outsiders: list[Host]) -> float:
    """Start one fault now; returns when it ends."""
    net = book.net
    if kind == "restart":
        book.restart(*args)
    elif kind == "aim":
        _aim(book, *args, rng=rng)
        return net.now + 20.0
    elif kind == "cut":
        net.partition(*ALICE_BOB)
    elif kind == "cut-one-way":
        net.cut_one_way(*args)
    elif kind == "heal":
        net.heal()
    elif kind == "drop":
        what, prob, length, sender = args
        net.rules.append(_drop_rule(what, prob, net.now + length, sender, random.Random(rng.random())))
        return net.now + length
    elif kind == "stall":
        name, length = args
        net.stall(net.hosts[name], length)
        return net.now + length
    elif kind == "third-peer":
        outsiders.append(net.add("carol", code=plan.code))
    elif kind == "leave":
        name, pause = args
        host = net.hosts[name]
        if host.running:
            net.close(name)
            net.at(net.now + pause, lambda: book.restart(name) if net.hosts[name] is host else None)
        return net.now + pause
    elif kind == "old-back":
        name, length = args
        net.stall(net.hosts[name], length)
        book.restart(name, keep_old=True)
        return net.now + length
    return net.now


def run_fault_plan(plan: FaultPlan) -> list[str]:
    """Run one seed of a fault class; return every invariant sentence it broke."""
    book = book_for(plan)
    net = book.net
    rng = random.Random(f"run-{plan.kind}-{plan.seed}")
    Users(book, plan.accept, random.Random(rng.random()))
    forger = Forger(book, plan.rates, random.Random(rng.random()))
    if failed := pair(book):
        return failed
    forger.start(until=net.now + plan.chaos + LIVENESS + 40.0)
    outsiders: list[Host] = []
    quiet_from = _play(plan, book, rng, outsiders)
    if plan.code is None and plan.rates.get("namesake"):
        # Without --code a live namesake cannot be told apart and is refused by design: the
        # bound runs from when the forged namesakes go quiet (their records expire within 10 s).
        forger.until = net.now
    net.heal()
    net.rules.clear()
    net.cond = Conditions()
    problems = []
    if not net.run_until(lambda: settled(book), LIVENESS, every=0.25):
        problems.append(f"not paired again within {LIVENESS:.0f} s of the last fault at {quiet_from:.1f}s "
                        f"({_states(book)}; {forger.sent} forged datagrams)")
        if not net.run_until(lambda: settled(book), SETTLE_LIMIT, every=0.5):
            problems.append(f"still not settled {SETTLE_LIMIT + LIVENESS:.0f} s after the last fault ({_states(book)})")
    if settled(book):
        problems += one_more_each_way(book)
    net.run(net.now + 3.0)
    return problems + check_lives(book, outsiders)


def _states(book: Book) -> str:
    return ", ".join(f"{h.name}#{i + 1} {h.peer.state.value}{'' if h.alive else ' dead'}"
                     f"{' stalled' if h.stalled else ''}"
                     for n in ALICE_BOB for i, h in enumerate(book.lives[n]) if h.alive)


def check(kind: str, seed: int) -> list[str]:
    """Every problem one seed of ``kind`` shows, a crash included, with the command that reruns it."""
    plan = draw(kind, seed)
    try:
        problems = run_fault_plan(plan)
    except Exception:  # noqa: BLE001 - a crash is a finding, reported with its seed
        problems = ["raised:\n" + traceback.format_exc()]
    if problems:
        lines = "\n    ".join(problems)
        return [f"{kind} seed {seed}: {plan.describe()}\n    {lines}\n  rerun: {RERUN.format(seed=seed, kind=kind)}"]
    return []
