"""The invariants of docs/DESIGN.md, checked over a simulated run.

A :class:`Book` keeps what a scenario did to the two sides of a relationship
(every payment it asked for, every process each side ran) so the checks can
compare what senders saw with what receivers applied, across restarts.  Each
check returns a list of plain sentences, empty when the invariant holds, so a
failing seed reports everything that went wrong at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from lanpay.core import events, session
from lanpay.core.errors import UserError
from lanpay.core.ledger import MAX_AHEAD
from lanpay.core.peer import MAX_BLOCKED, Peer, State
from lanpay.core.session import IN_DOUBT_AFTER
from lanpay.core.peers import MAX_PEERS
from sim import Host, Net


@dataclass(frozen=True)
class Issued:
    """A payment the core accepted from its user (it returned a seq)."""

    host: Host
    seq: int
    amount: int
    memo: str
    at: float = 0.0
    epoch: str | None = None       # the relationship it was made in


class Book:
    """What a scenario asked of the two sides, every process each side ran, and which
    relationship each process held when (its *epochs*, named by the code of the fresh
    pairing that started them; a hand-back carries an epoch into the new life)."""

    def __init__(self, net: Net, a: str = "alice", b: str = "bob") -> None:
        self.net = net
        self.names = (a, b)
        self.lives: dict[str, list[Host]] = {a: [net.hosts[a]], b: [net.hosts[b]]}
        self.issued: list[Issued] = []
        self.refused: list[tuple[str, int, str]] = []
        self.segments: dict[int, list[tuple[int, str]]] = {}     # id(host) -> (timeline index, epoch)
        self.fired: list[tuple[float, str]] = []                 # faults aimed at a stage, when they hit
        self.accepted: list[tuple[float, Host, str]] = []        # a user typed accept: when, where, code shown
        self.restores: list[tuple[float, Host, Host | None]] = []  # when, the restored process, its survivor
        self.impostors = False        # a forger ran, or a process of one name started beside a live one
        net.event_hooks.append(self._on_event)

    def current(self, name: str) -> Host:
        """The process of ``name`` that holds the relationship: the newest one the other
        side is paired with, else the newest one."""
        lives = self.lives[name]
        others = [h for h in self.lives[self.other(name)] if h.alive]
        for host in reversed(lives):
            if host.alive and any(o.peer.session is not None and o.peer.session.info.incarnation
                                  == host.peer.incarnation for o in others):
                return host
        return lives[-1]

    def other(self, name: str) -> str:
        a, b = self.names
        return b if name == a else a

    def pay(self, name: str, cents: int, memo: str = "", host: Host | None = None) -> int | None:
        """Pay through the simulator; a refused payment is remembered, not raised."""
        host = host or self.net.hosts[name]
        try:
            seq = self.net.pay_from(host, cents, memo)
        except UserError as exc:
            self.refused.append((name, cents, str(exc)))
            return None
        self.issued.append(Issued(host, seq, cents, memo, self.net.now, self.epoch_now(host)))
        return seq

    def restart(self, name: str, keep_old: bool = False) -> Host:
        host = self.net.restart(name, keep_old=keep_old)
        self.impostors = self.impostors or keep_old
        self.lives[name].append(host)
        return host

    def issued_by(self, host: Host) -> list[Issued]:
        return [p for p in self.issued if p.host is host]

    def restarts(self) -> int:
        return sum(len(hosts) - 1 for hosts in self.lives.values())

    def name_of(self, host: Host) -> str | None:
        return next((n for n in self.names if any(h is host for h in self.lives[n])), None)

    # ------------------------------------------------------------ epochs
    def _on_event(self, host: Host, event: events.Event) -> None:
        name = self.name_of(host)
        if name is None or not isinstance(event, events.Paired):
            return
        before = self.epoch_now(host)
        if event.restored:
            survivor = self._survivor_of(name, host)
            self.restores.append((self.net.now, host, survivor))
            epoch = self.epoch_now(survivor) if survivor is not None else None
            epoch = epoch or f"orphan {event.code}"
        elif event.again and before is not None:
            epoch = before
        else:
            epoch = f"pairing {event.code}"
        self.segments.setdefault(id(host), []).append((len(host.timeline) - 1, epoch))

    def _survivor_of(self, name: str, host: Host) -> Host | None:
        """The process that handed ``host`` its record: the other side's holding a session with it,
        a live one first (one that died just after sending its last part counts too)."""
        holders = [other for other in self.lives[self.other(name)]
                   if (s := other.peer.session) is not None and s.info.incarnation == host.peer.incarnation]
        return next((h for h in holders if h.alive), holders[-1] if holders else None)

    def epoch_now(self, host: Host) -> str | None:
        segs = self.segments.get(id(host))
        return segs[-1][1] if segs else None

    def epoch_at(self, host: Host, index: int) -> str | None:
        """The relationship ``host`` held when it emitted its ``index``-th event."""
        found = None
        for start, epoch in self.segments.get(id(host), []):
            if start > index:
                break
            found = epoch
        return found

    def told(self, name: str, epoch: str | None, kind: type | tuple[type, ...]) -> list[tuple[Host, float, object]]:
        """Every event of ``kind`` any process of ``name`` emitted within ``epoch``."""
        return [(host, when, e) for host in self.lives[name] for i, (when, e) in enumerate(host.timeline)
                if isinstance(e, kind) and self.epoch_at(host, i) == epoch]


def _received(host: Host) -> list[events.PaymentReceived]:
    return host.of(events.PaymentReceived)


def _confirmed(host: Host) -> list[events.PaymentConfirmed]:
    return host.of(events.PaymentConfirmed)


def _rejected(host: Host) -> list[events.PaymentRejected]:
    return host.of(events.PaymentRejected)


def _voided(host: Host) -> set[int]:
    """The seqs a process was told never reached the counterpart (its BYE or a fence said so)."""
    return {seq for e in host.of(events.PaymentsVoided) if not e.restart for seq in range(e.first, e.last + 1)}


# ----------------------------------------------------------------- invariant 1
def conservation(book: Book) -> list[str]:
    """Invariant 1: once quiet, the two current processes are paired with each other and mirror balances."""
    a, b = (book.current(n) for n in book.names)
    problems = []
    for me, them in ((a, b), (b, a)):
        s = me.peer.session
        if me.peer.state is not State.PAIRED or s is None or not s.ready:
            problems.append(f"{me.name} is {me.peer.state.value}, not paired, once quiet")
        elif s.info.incarnation != them.peer.incarnation:
            problems.append(f"{me.name} is paired with incarnation {s.info.incarnation:#x}, "
                            f"not {them.name}'s current {them.peer.incarnation:#x}")
    if a.peer.ledger.balance != -b.peer.ledger.balance:
        problems.append(f"balances do not mirror: {a.name} {a.peer.ledger.balance}, "
                        f"{b.name} {b.peer.ledger.balance}")
    return problems


def no_false_disagreement(book: Book) -> list[str]:
    """Invariants 1 and 7: keepalives compare ledger digests; in a correct run they never tell a user the
    ledgers differ."""
    return [f"{host.name} was told the ledgers disagree at {when:.3f}s"
            for name in book.names for host in book.lives[name]
            for when, e in host.timeline if isinstance(e, events.LedgerAgreement) and not e.agree]


# ----------------------------------------------------------------- invariant 2
def _applied(book: Book, receiver: str) -> tuple[dict[int, int], list[str]]:
    """Seq -> amount of every payment any process of ``receiver`` applied, and clashes."""
    applied: dict[int, int] = {}
    problems = []
    for host in book.lives[receiver]:
        counts = Counter(e.seq for e in _received(host))
        problems += [f"{host.name} ({host.peer.incarnation:#x}) applied seq {seq} {n} times"
                     for seq, n in sorted(counts.items()) if n > 1]
        for e in _received(host):
            if applied.setdefault(e.seq, e.amount) != e.amount:
                problems.append(f"{receiver} applied seq {e.seq} as {applied[e.seq]} and as {e.amount}")
    return applied, problems


def exactly_once(book: Book) -> list[str]:
    """Invariant 2: every confirmed payment was applied once; nothing was applied that nobody sent."""
    problems = []
    totals = {}
    for sender in book.names:
        receiver = book.other(sender)
        applied, clash = _applied(book, receiver)
        problems += clash
        totals[receiver] = sum(applied.values())
        sent = {(p.seq, p.amount, p.memo) for life in book.lives[sender] for p in book.issued_by(life)}
        for host in book.lives[receiver]:
            for e in _received(host):
                if (e.seq, e.amount, e.memo) not in sent:
                    problems.append(f"{receiver} applied seq {e.seq} ({e.amount}, {e.memo!r}) "
                                    f"that {sender} never sent")
        for host in book.lives[sender]:
            counts = Counter(e.seq for e in _confirmed(host))
            problems += [f"{host.name} saw seq {seq} confirmed {n} times" for seq, n in counts.items() if n > 1]
            for e in _confirmed(host):
                if applied.get(e.seq) != e.amount:
                    problems.append(f"{sender} saw seq {e.seq} ({e.amount}) confirmed but {receiver} "
                                    f"applied {applied.get(e.seq)}")
            for e in _rejected(host):
                if e.seq in applied:
                    problems.append(f"{sender} saw seq {e.seq} rejected but {receiver} applied it")
            problems += [f"{sender} was told seq {seq} never reached {receiver}, but {receiver} applied it"
                         for seq in sorted(_voided(host) & applied.keys())]
    a, b = book.names
    expected = totals[b] - totals[a]
    for name, want in ((b, expected), (a, -expected)):
        got = book.current(name).peer.ledger.balance
        if got != want:
            problems.append(f"{name}'s balance is {got}, but the payments applied add up to {want}")
    return problems


# ----------------------------------------------------------------- invariant 3
def no_silent_loss(book: Book) -> list[str]:
    """Invariant 3: every payment of a living process ended confirmed or rejected, in-doubt ones included."""
    problems = []
    for name in book.names:
        for host in book.lives[name]:
            confirmed = {e.seq: e for e in _confirmed(host)}
            rejected = {e.seq for e in _rejected(host)}
            voided = _voided(host)
            doubted = {e.seq for e in host.of(events.PaymentInDoubt)}
            problems += [f"{name} saw seq {s} both confirmed and rejected" for s in sorted(confirmed.keys() & rejected)]
            problems += [f"{name} saw seq {s} both settled and void" for s in sorted((confirmed.keys() | rejected) & voided)]
            rejected |= voided
            problems += [f"{name} seq {s}: was_in_doubt={e.was_in_doubt} but in-doubt reported={s in doubted}"
                         for s, e in sorted(confirmed.items()) if e.was_in_doubt != (s in doubted)]
            problems += _doubt_reported(book, host)
            if host is not book.current(name):
                continue                 # a process that died takes its pending payments with it
            for p in book.issued_by(host):
                if p.seq not in confirmed and p.seq not in rejected:
                    state = "in doubt" if p.seq in doubted else "pending"
                    problems.append(f"{name}'s payment seq {p.seq} ({p.amount}) is still {state} once healed")
            if host.peer.ledger.pending():
                problems.append(f"{name} still lists pending payments: {host.peer.status().pending}")
    return problems


def _doubt_reported(book: Book, host: Host) -> list[str]:
    """A payment unresolved for longer than IN_DOUBT_AFTER was reported in doubt by then."""
    resolved = {e.seq: when for when, e in host.timeline
                if isinstance(e, (events.PaymentConfirmed, events.PaymentRejected))}
    for when, e in host.timeline:
        if isinstance(e, events.PaymentsVoided) and not e.restart:
            resolved.update((seq, when) for seq in range(e.first, e.last + 1) if seq not in resolved)
    doubted = {e.seq for _, e in host.timeline if isinstance(e, events.PaymentInDoubt)}
    late = []
    for p in book.issued_by(host):
        end = resolved.get(p.seq, book.net.now if host.alive else None)
        if end is not None and any(a < end and b > p.at for a, b in host.stalls):
            continue                 # the process was stopped meanwhile: it could tell nobody anything
        if end is not None and end - p.at > IN_DOUBT_AFTER + 0.01 and p.seq not in doubted:
            late.append(f"{host.name}'s seq {p.seq} went unresolved {end - p.at:.1f}s and was never reported in doubt")
    return late


# ------------------------------------------------------------- invariants 7, 8
def restart_safety(book: Book) -> list[str]:
    """Invariants 7 and 8, for one restart: the restarted side got the relationship back from the
    survivor, and both were told."""
    problems = []
    for name in book.names:
        if len(book.lives[name]) == 1:
            continue
        host, survivor = book.current(name), book.current(book.other(name))
        restored = [e for e in host.of(events.Paired) if e.restored]
        if not restored:
            problems.append(f"restarted {name} never got the relationship back ({host.peer.state.value})")
        if not survivor.of(events.PeerRestarted):
            problems.append(f"{survivor.name} was never told that {name} restarted")
        if restored:
            problems += _history_handed_back(host, survivor)
    return problems


_MIRROR = {("out", "confirmed"): ("in", "received"), ("in", "received"): ("out", "confirmed")}


def _history_handed_back(host: Host, survivor: Host) -> list[str]:
    """Every settled line of the survivor appears, mirrored, in the restored side's history, or
    within the lines it folded into totals: the whole history travels in a hand-back."""
    history = host.peer.history()
    mine = {(e.direction, e.seq, e.amount, e.memo, e.status.value) for e in history}
    missing = []
    for e in survivor.peer.history():
        twin = _MIRROR.get((e.direction, e.status.value))
        if twin is not None and e.seq <= _folded_through(history, twin[0]):
            continue
        if twin is not None and (twin[0], e.seq, e.amount, e.memo, twin[1]) not in mine:
            missing.append(f"{e.direction} seq {e.seq} {e.amount}")
    if missing:
        return [f"restored {host.name}'s history lacks {survivor.name}'s {', '.join(missing[:4])}"]
    return []


# ---------------------------------------------------------------- invariant 11
def outsiders_kept_out(book: Book, outsiders: list[Host]) -> list[str]:
    """Invariant 11: no process of either side ever paired with anyone but the other side."""
    problems = []
    for name in book.names:
        partners = {h.addr for h in book.lives[book.other(name)]}
        for host in book.lives[name]:
            met = [(e.peer_name, e.peer_addr) for e in host.of(events.Paired)]
            met += [(e.name, e.addr) for e in host.of(events.PeerRestarted)]
            problems += [f"{name} paired with {who} at {addr}, not {book.other(name)}"
                         for who, addr in met if addr not in partners]
    for host in outsiders:
        if host.of(events.Paired) and any(e.peer_name in book.names for e in host.of(events.Paired)):
            problems.append(f"outsider {host.name} paired: {host.of(events.Paired)}")
    return problems


# ---------------------------------------------------------------- invariant 13
def _folded_through(history, direction: str) -> int:
    """The highest seq of ``direction`` that ``history`` holds only as totals (0: none)."""
    earlier = history.earlier
    return (earlier.sent if direction == "out" else earlier.received).through


def bounded(peer: Peer) -> list[str]:
    """Invariant 12: every table the network can grow stays under its cap, the history included
    (lines sent are bounded once none is pending: an unresolved one holds back the folding)."""
    limits = {
        "peer table": (len(peer.table), MAX_PEERS),
        "one-time warnings": (len(peer.warned), 4 * MAX_BLOCKED),
        "cooldowns": (len(peer.cooldown), MAX_BLOCKED),
    }
    s = peer.session
    if s is not None:
        limits["payments in flight"] = (len(s.flights), session.WINDOW)
        limits["pings outstanding"] = (len(s.pings), session.MAX_PINGS)
        limits["queued datagrams"] = (len(s.outbox), 4 * session.WINDOW)
        limits["payments held above the cumulative mark"] = (len(s.ledger.waiting), MAX_AHEAD)
        limits["remembered rejections"] = (len(s.ledger.in_rejected), MAX_AHEAD)
        limits["history lines received"] = (len(s.ledger.ins), s.ledger.ins.keep)
        if not s.ledger.pending():
            limits["history lines sent"] = (len(s.ledger.outs), s.ledger.outs.keep)
    limits["queued datagrams (facade)"] = (len(peer._outbox), 4 * MAX_PEERS)
    return [f"{peer.me.name}: {what} holds {n}, over {cap}" for what, (n, cap) in limits.items() if n > cap]


def check_all(book: Book, outsiders: list[Host] | None = None) -> list[str]:
    """Every invariant over a run that has healed and gone quiet."""
    problems = conservation(book) + no_false_disagreement(book) + exactly_once(book) + no_silent_loss(book)
    problems += restart_safety(book)
    problems += outsiders_kept_out(book, outsiders or [])
    for name in book.names:
        problems += bounded(book.current(name).peer)
    return problems


# ======================================================================= across lives
# What each person was told, over every process they ran (docs/DESIGN.md invariants 2-10).

_SETTLED = ("confirmed", "received", "rejected")
_TWIN = {("out", "confirmed"): ("in", "received"), ("in", "received"): ("out", "confirmed"),
         ("out", "rejected"): ("in", "rejected"), ("in", "rejected"): ("out", "rejected")}


def final_epoch(book: Book) -> str | None:
    return book.epoch_now(book.current(book.names[0]))


def same_relationship(book: Book) -> list[str]:
    """Invariant 1: once quiet, the two current processes hold the same relationship."""
    a, b = (book.current(n) for n in book.names)
    ea, eb = book.epoch_now(a), book.epoch_now(b)
    if ea != eb:
        return [f"{a.name} holds relationship {ea!r} but {b.name} holds {eb!r}"]
    return []


def _line(e) -> tuple:
    return (e.direction, e.seq, e.amount, e.memo, e.status.value)


def histories_agree(book: Book) -> list[str]:
    """Invariant 7: the two current histories mirror each other: the totals of the lines folded
    (the same lines, to the same number, each way), then line by line, rejected lines included."""
    a, b = (book.current(n) for n in book.names)
    epoch = final_epoch(book)
    problems = []
    mine, theirs = a.peer.history().earlier, b.peer.history().earlier
    if mine.mirrored() != theirs:
        problems.append(f"folded totals disagree: {a.name} has {mine}, {b.name} has {theirs}")
    for me, them in ((a, b), (b, a)):
        theirs = {_line(e) for e in them.peer.history()}
        voided = [v for _, _, v in book.told(book.name_of(me) or "", epoch, events.PaymentsVoided)]
        missing = []
        for e in me.peer.history():
            if e.direction == "out" and any(v.first <= e.seq <= v.last for v in voided):
                continue                 # it never reached the other side: that is what voided means
            twin = _TWIN.get((e.direction, e.status.value))
            if twin is not None and (twin[0], e.seq, e.amount, e.memo, twin[1]) not in theirs:
                other = [line for line in theirs if line[:2] == (twin[0], e.seq)]
                missing.append(f"{e.direction} #{e.seq} {e.amount} {e.memo!r} {e.status.value} "
                               f"(there: {other[0][2:] if other else 'no line'})")
        if missing:
            problems.append(f"histories disagree: {len(missing)} of {me.name}'s lines are not mirrored in "
                            f"{them.name}'s: {'; '.join(missing[:3])}")
    return problems


def told_once(book: Book) -> list[str]:
    """Invariants 2 and 4: nobody is told received or confirmed twice for one payment, across lives.

    A payment completed in a hand-back is told as such (``resent``: "your previous process may
    have shown it already"), not as news, so it is not a second telling."""
    problems = []
    for name in book.names:
        for epoch in _epochs(book, name):
            for kind, word in ((events.PaymentReceived, "received"), (events.PaymentConfirmed, "confirmed")):
                seen: dict[int, list[float]] = {}
                for _, when, e in book.told(name, epoch, kind):
                    if getattr(e, "resent", False):
                        continue
                    seen.setdefault(e.seq, []).append(when)
                problems += [f"{name} was told #{seq} {word} {len(times)} times (at "
                             f"{', '.join(f'{t:.2f}s' for t in times)})"
                             for seq, times in sorted(seen.items()) if len(times) > 1]
    return problems


def _epochs(book: Book, name: str) -> list[str]:
    found: dict[str, None] = {}
    for host in book.lives[name]:
        for _, epoch in book.segments.get(id(host), []):
            found[epoch] = None
    return list(found)


def exactly_once_across(book: Book) -> list[str]:
    """Invariant 2 per relationship: what was applied was sent, what was confirmed was applied."""
    problems = []
    for sender in book.names:
        receiver = book.other(sender)
        for epoch in _epochs(book, sender):
            applied: dict[int, int] = {}
            for _, _, e in book.told(receiver, epoch, events.PaymentReceived):
                if applied.setdefault(e.seq, e.amount) != e.amount:
                    problems.append(f"{receiver} applied #{e.seq} as {applied[e.seq]} and as {e.amount}")
            sent = {(p.seq, p.amount, p.memo) for p in book.issued if p.epoch == epoch
                    and book.name_of(p.host) == sender}
            problems += [f"{receiver} applied #{e.seq} ({e.amount}, {e.memo!r}) that {sender} never sent"
                         for _, _, e in book.told(receiver, epoch, events.PaymentReceived)
                         if (e.seq, e.amount, e.memo) not in sent]
            problems += [f"{sender} was told #{e.seq} ({e.amount}) confirmed but {receiver} applied "
                         f"{applied.get(e.seq)}" for _, _, e in book.told(sender, epoch, events.PaymentConfirmed)
                         if applied.get(e.seq) != e.amount]
    return problems


def told_stays_true(book: Book) -> list[str]:
    """Invariant 4: what a person was told was received, confirmed or declined is still so in the end."""
    epoch = final_epoch(book)
    problems = []
    for name in book.names:
        history = book.current(name).peer.history()
        lines = {(e.direction, e.seq): e for e in history}
        told = [(h, w, e, "in", "received") for h, w, e in book.told(name, epoch, events.PaymentReceived)]
        told += [(h, w, e, "out", "confirmed") for h, w, e in book.told(name, epoch, events.PaymentConfirmed)]
        told += [(h, w, e, "in", "rejected") for h, w, e in book.told(name, epoch, events.PaymentDeclined)]
        for _, when, e, direction, status in told:
            line = lines.get((direction, e.seq))
            if line is None and e.seq <= _folded_through(history, direction):
                continue                 # folded: it is in the totals, which histories_agree compares
            if line is None:
                problems.append(f"{name} was told #{e.seq} ({e.amount}) {status} at {when:.2f}s, "
                                f"but the history has no such line now")
            elif line.status.value != status or line.amount != e.amount:
                problems.append(f"{name} was told {direction} #{e.seq} ({e.amount}) {status} at {when:.2f}s, "
                                f"but the history now shows it {line.status.value} ({line.amount})")
    return problems


def doubts_resolved(book: Book) -> list[str]:
    """Invariant 3 across lives: a payment left unresolved by a process that died (or was
    fenced) is resolved for its person by an event of a later life."""
    epoch = final_epoch(book)
    problems = []
    for name in book.names:
        current = book.current(name)
        history = current.peer.history()
        final = {(e.direction, e.seq): e.status.value for e in history}
        folded = _folded_through(history, "out")
        for p in book.issued:
            host = p.host
            if book.name_of(host) != name or host is current or p.epoch != epoch:
                continue       # a relationship that ended is judged by fresh_starts_justified
            if any(e.seq == p.seq for e in host.of(events.PaymentConfirmed) + host.of(events.PaymentRejected)) \
                    or p.seq in _voided(host):
                continue
            later = [h for h in book.lives[name] if h.started >= p.at and h is not host]
            voided = any(e.first <= p.seq <= e.last for h in later for e in h.of(events.PaymentsVoided))
            restored = any(e.restored for h in later for e in h.of(events.Paired))
            shown = restored and (p.seq <= folded or final.get(("out", p.seq)) in ("confirmed", "rejected"))
            if not (voided or shown):
                doubted = any(e.seq == p.seq for e in host.of(events.PaymentInDoubt))
                end = f"died at {host.died:.2f}s" if host.died is not None else "was replaced"
                problems.append(f"{name}'s payment #{p.seq} ({p.amount}), {'in doubt' if doubted else 'pending'} "
                                f"when its process {end}, was never resolved by an event "
                                f"(now: {final.get(('out', p.seq), 'no line')})")
    return problems


def one_number_one_payment(book: Book) -> list[str]:
    """Invariant 5: within a relationship a payment number names one payment, and a voided one is never reused."""
    problems = []
    for name in book.names:
        mine = [p for p in book.issued if book.name_of(p.host) == name]
        by: dict[tuple[str | None, int], Issued] = {}
        for p in mine:
            first = by.setdefault((p.epoch, p.seq), p)
            if first is not p:
                problems.append(f"{name}'s payment number {p.seq} names two payments: {first.amount} "
                                f"{first.memo!r} at {first.at:.2f}s and {p.amount} {p.memo!r} at {p.at:.2f}s")
        for epoch in _epochs(book, name):
            for _, when, v in book.told(name, epoch, events.PaymentsVoided):
                problems += [f"{name}'s number {p.seq} was voided at {when:.2f}s and used again at {p.at:.2f}s"
                             for p in mine if p.epoch == epoch and p.at >= when and v.first <= p.seq <= v.last]
    return problems


def balances_in_events(book: Book) -> list[str]:
    """Invariant 6: the balance every event carries is what that process's history adds up to."""
    problems = []
    for name in book.names:
        for host in book.lives[name]:
            running = 0
            for when, e in host.timeline:
                if isinstance(e, events.Paired) and not e.again:
                    if not e.restored and e.balance != 0:
                        problems.append(f"{host.name} started a fresh relationship at {when:.2f}s with a "
                                        f"balance of {e.balance}, not 0")
                    running = e.balance
                    continue
                if isinstance(e, events.PaymentReceived):
                    running += e.amount
                elif isinstance(e, events.PaymentConfirmed):
                    running -= e.amount
                carried = getattr(e, "balance", None)
                if carried is not None and carried != running:
                    problems.append(f"{host.name} was shown a balance of {carried} in {type(e).__name__} "
                                    f"at {when:.2f}s, but its payments add up to {running}")
            if host.alive and host.peer.ledger.balance != running:
                problems.append(f"{host.name}'s balance is {host.peer.ledger.balance}, but what it was told "
                                f"adds up to {running}")
        current = book.current(name)
        lines = current.peer.history()
        total = sum(e.amount for e in lines if e.status.value == "received") \
            - sum(e.amount for e in lines if e.direction == "out" and e.status.value == "confirmed") \
            + lines.earlier.received.settled_cents - lines.earlier.sent.settled_cents
        if total != current.peer.ledger.balance:
            problems.append(f"{name}'s balance is {current.peer.ledger.balance}, but its history "
                            f"({len(lines)} lines and {lines.earlier.lines} folded) adds up to {total}")
    return problems


def restores_told(book: Book) -> list[str]:
    """Invariant 8: a restore is told on both sides (restored ``Paired`` and ``PeerRestarted``, same code)."""
    problems = []
    for name in book.names:
        other = book.other(name)
        restarted = {e.code for h in book.lives[other] for e in h.of(events.PeerRestarted)}
        restored = [e for h in book.lives[name] for e in h.of(events.Paired) if e.restored]
        gone = {e.code for when, h, survivor in book.restores   # one side died mid-hand-back: nothing to tell
                if survivor is None or survivor.died is not None or h.died is not None
                for e in h.of(events.Paired) if e.restored}
        problems += [f"{name} was restored (code {e.code}) but {other} was never told {name} restarted"
                     for e in restored if e.code not in restarted and e.code not in gone]
        got = {e.code for e in restored}
        problems += [f"{other} was told {name} restarted (code {code}) but no process of {name} was restored"
                     for code in sorted(restarted - got)]
    return problems


def _restored_lives(book: Book) -> Iterator[tuple[str, int, list[tuple[float, events.Paired]]]]:
    """Each process of either side that was handed a relationship: its side, its place among that
    side's lives, and every restored ``Paired`` it told, with the time (what restores_consented and old_process_fenced both walk)."""
    for name in book.names:
        for k, host in enumerate(book.lives[name]):
            restored = [(w, e) for w, e in host.timeline if isinstance(e, events.Paired) and e.restored]
            if restored:
                yield name, k, restored


def restores_consented(book: Book) -> list[str]:
    """Invariant 8: a relationship goes to a new process only on proof (``--code``) or after the
    survivor's user accepted that very code."""
    problems = []
    for name, _, restored in _restored_lives(book):
        other = book.other(name)
        for when, e in restored:
            if not e.verified and not any(code == e.code and at <= when and book.name_of(h) == other
                                          for at, h, code in book.accepted):
                problems.append(f"{other} handed the relationship to a new process of {name} at {when:.2f}s "
                                f"(code {e.code}) that proved nothing, and {other}'s user never accepted it")
    return problems


def fresh_starts_justified(book: Book) -> list[str]:
    """Invariant 8: a process holding a relationship never drops it for a fresh one without a notice."""
    problems = []
    for name in book.names:
        for host in book.lives[name]:
            held = None
            for i, (when, e) in enumerate(host.timeline):
                if isinstance(e, events.RestoreFailed):
                    held = None
                now = book.epoch_at(host, i)
                if held is not None and now != held and isinstance(e, events.Paired) and not e.restored:
                    lines = [p for p in book.issued if p.epoch == held]
                    if lines or book.told(name, held, (events.PaymentReceived, events.PaymentDeclined)):
                        problems.append(f"{name} started a fresh relationship at {when:.2f}s "
                                        f"(balance {e.balance}) while holding the old one, with no notice")
                held = now
    return problems


def old_process_fenced(book: Book) -> list[str]:
    """Invariant 9: an old process that speaks after a hand-back is fenced, and both people are told."""
    problems = []
    for name, k, restored in _restored_lives(book):
        restored_at = restored[0][0]
        new = book.lives[name][k]
        for old in book.lives[name][:k]:
            if (old.died is not None and old.died <= restored_at) or old.stalled:
                continue       # gone before the hand-back, or never ran again
            after = [(w, e) for w, e in old.timeline if w > restored_at]
            # The fence settles on the old process what the survivor applied before the hand-back
            # (a confirmation of that moves nothing); anything else would be money moving.
            applied = {(e.seq, e.amount) for h in book.lives[book.other(name)] for w, e in h.timeline
                       if isinstance(e, events.PaymentReceived) and w <= restored_at}
            if any(isinstance(e, events.PaymentReceived)
                   or (isinstance(e, events.PaymentConfirmed) and (e.seq, e.amount) not in applied) for _, e in after):
                problems.append(f"{name}'s old process moved money after its relationship went to a new one")
            # The survivor fences the old session when it hands over, which may be before the
            # new process has its record: told at any time after the new one started.
            since_new = [(w, e) for w, e in old.timeline if w >= new.started]
            if not any(isinstance(e, events.Fenced) for _, e in since_new):
                problems.append(f"{name}'s old process ran again after the hand-back at {restored_at:.2f}s "
                                f"and was never told it is fenced")
            other = book.other(name)
            if not any(isinstance(e, events.OldProcessBack) for h in book.lives[other]
                       for w, e in h.timeline if w >= new.started):
                problems.append(f"{other} was never told that {name}'s old process came back")
            problems += [f"{name}'s old process made payment #{p.seq} after it was replaced"
                         for p in book.issued_by(old) if p.at > restored_at]
    return problems


# ---------------------------------------------------------------- invariant 12
ALARMS = (events.ImpostorSuspected, events.ImpersonationSeen, events.OldProcessBack)


def no_false_alarms(book: Book) -> list[str]:
    """With no forger and never two live processes of one name, nobody impersonated anyone:
    a warning that someone did is false (and teaches users to ignore the true one).  Restarts
    kill the old process first; a namesake's record may outlive it, a late datagram may still
    arrive, and neither is an impostor."""
    if book.impostors:
        return []
    return [f"{h.name}: false alarm at {when:.2f}s: {e}" for n in book.names for h in book.lives[n]
            for when, e in h.timeline if isinstance(e, ALARMS)]


def check_lives(book: Book, outsiders: list[Host] | None = None) -> list[str]:
    """Every invariant over a run with any number of restarts, stalls and namesakes, once quiet."""
    problems = conservation(book) + same_relationship(book) + no_false_disagreement(book)
    problems += exactly_once_across(book) + told_once(book) + no_silent_loss(book) + doubts_resolved(book)
    problems += told_stays_true(book) + one_number_one_payment(book) + balances_in_events(book)
    problems += histories_agree(book) + restores_told(book) + restores_consented(book)
    problems += fresh_starts_justified(book)
    problems += old_process_fenced(book) + outsiders_kept_out(book, outsiders or []) + no_false_alarms(book)
    for name in book.names:
        problems += bounded(book.current(name).peer)
    return problems
