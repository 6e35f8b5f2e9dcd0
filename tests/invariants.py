"""The invariants of docs/DESIGN.md, checked over a simulated run.

A :class:`Book` keeps what a scenario did to the two sides of a relationship
(every payment it asked for, every process each side ran) so the checks can
compare what senders saw with what receivers applied, across restarts.  Each
check returns a list of plain sentences, empty when the invariant holds, so a
failing seed reports everything that went wrong at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from lanpay.core import events, session
from lanpay.core.errors import UserError
from lanpay.core.ledger import HANDBACK_ENTRIES, MAX_AHEAD
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


class Book:
    """What a scenario asked of the two sides, and every process each side ran."""

    def __init__(self, net: Net, a: str = "alice", b: str = "bob") -> None:
        self.net = net
        self.names = (a, b)
        self.lives: dict[str, list[Host]] = {a: [net.hosts[a]], b: [net.hosts[b]]}
        self.issued: list[Issued] = []
        self.refused: list[tuple[str, int, str]] = []

    def current(self, name: str) -> Host:
        return self.lives[name][-1]

    def other(self, name: str) -> str:
        a, b = self.names
        return b if name == a else a

    def pay(self, name: str, cents: int, memo: str = "") -> int | None:
        """Pay through the simulator; a refused payment is remembered, not raised."""
        try:
            seq = self.net.pay(name, cents, memo)
        except UserError as exc:
            self.refused.append((name, cents, str(exc)))
            return None
        self.issued.append(Issued(self.current(name), seq, cents, memo, self.net.now))
        return seq

    def restart(self, name: str) -> Host:
        host = self.net.restart(name)
        self.lives[name].append(host)
        return host

    def issued_by(self, host: Host) -> list[Issued]:
        return [p for p in self.issued if p.host is host]

    def restarts(self) -> int:
        return sum(len(hosts) - 1 for hosts in self.lives.values())


def _received(host: Host) -> list[events.PaymentReceived]:
    return host.of(events.PaymentReceived)


def _confirmed(host: Host) -> list[events.PaymentConfirmed]:
    return host.of(events.PaymentConfirmed)


def _rejected(host: Host) -> list[events.PaymentRejected]:
    return host.of(events.PaymentRejected)


# ----------------------------------------------------------------------- 1
def conservation(book: Book) -> list[str]:
    """Once quiet, the two current processes are paired with each other and mirror balances."""
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
    """Keepalives compare ledger digests; in a correct run they never tell a user the ledgers differ."""
    return [f"{host.name} was told the ledgers disagree at {when:.3f}s"
            for name in book.names for host in book.lives[name]
            for when, e in host.timeline if isinstance(e, events.LedgerAgreement) and not e.agree]


# ----------------------------------------------------------------------- 2
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
    """Every confirmed payment was applied once; nothing was applied that nobody sent."""
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
    a, b = book.names
    expected = totals[b] - totals[a]
    for name, want in ((b, expected), (a, -expected)):
        got = book.current(name).peer.ledger.balance
        if got != want:
            problems.append(f"{name}'s balance is {got}, but the payments applied add up to {want}")
    return problems


# ----------------------------------------------------------------------- 3
def no_silent_loss(book: Book) -> list[str]:
    """Every payment of a living process ended confirmed or rejected, in-doubt ones included."""
    problems = []
    for name in book.names:
        for host in book.lives[name]:
            confirmed = {e.seq: e for e in _confirmed(host)}
            rejected = {e.seq for e in _rejected(host)}
            doubted = {e.seq for e in host.of(events.PaymentInDoubt)}
            problems += [f"{name} saw seq {s} both confirmed and rejected" for s in sorted(confirmed.keys() & rejected)]
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
    doubted = {e.seq for _, e in host.timeline if isinstance(e, events.PaymentInDoubt)}
    late = []
    for p in book.issued_by(host):
        end = resolved.get(p.seq, book.net.now if host.alive else None)
        if end is not None and end - p.at > IN_DOUBT_AFTER + 0.01 and p.seq not in doubted:
            late.append(f"{host.name}'s seq {p.seq} went unresolved {end - p.at:.1f}s and was never reported in doubt")
    return late


# ----------------------------------------------------------------------- 4
def restart_safety(book: Book) -> list[str]:
    """A restarted side got the relationship back from the survivor, and both were told."""
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
    """The survivor's recent settled lines appear, mirrored, in the restored side's history.

    Only the last HANDBACK_ENTRIES lines travel in a hand-back, so only the
    survivor's most recent lines are compared (later ones were seen by both).
    """
    mine = {(e.direction, e.seq, e.amount, e.memo, e.status.value) for e in host.peer.history()}
    missing = []
    for e in survivor.peer.history()[-HANDBACK_ENTRIES:]:
        twin = _MIRROR.get((e.direction, e.status.value))
        if twin is not None and (twin[0], e.seq, e.amount, e.memo, twin[1]) not in mine:
            missing.append(f"{e.direction} seq {e.seq} {e.amount}")
    if missing:
        return [f"restored {host.name}'s history lacks {survivor.name}'s {', '.join(missing[:4])}"]
    return []


# ----------------------------------------------------------------------- 5
def outsiders_kept_out(book: Book, outsiders: list[Host]) -> list[str]:
    """No process of either side ever paired with anyone but the other side."""
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


# ----------------------------------------------------------------------- 6
def bounded(peer: Peer) -> list[str]:
    """Every table the network can grow stays under its cap."""
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
        limits["seqs above the cumulative mark"] = (len(s.ledger.in_above), MAX_AHEAD)
        limits["remembered rejections"] = (len(s.ledger.in_rejected), MAX_AHEAD)
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
