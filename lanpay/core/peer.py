"""The facade the node drives: one local peer, from discovery to payments.

Driven like h11/aioquic: datagrams in with ``receive_datagram(data, addr, now)``,
datagrams out with ``datagrams_to_send(now)``, one timer with
``next_timeout()``/``handle_timeout(now)``, and typed events from
``next_event()``.  It never reads a clock, never touches a socket, and never
raises on what the network sends: bad datagrams are dropped and counted.

The facade owns the peer's state and wires the parts together; the parts that
can be judged on their own live beside it: ``announcer`` (when to announce and
the budget for datagrams sent unasked), ``matching`` (whom we may pair with)
``restart`` (is our counterpart's old process really gone?) and ``handshakes``
(which hello to answer, where handshake messages go, how a handshake ends; it
also holds the relationship's ``State``).  The facade gives ``handshakes`` a
few hooks (``send``, ``emit``, ``move``, ``candidates``, ``conflicted``,
``complete``) and turns each finished handshake into a session.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass

from . import events, matching, pairing, wire
from .announcer import (FIRST_ANNOUNCES, LOOKING_INTERVAL, PAIRED_INTERVAL, UNSOLICITED_PER_SECOND,
                        AnnounceSchedule, Budget, announce)
from .amounts import MAX_PAYMENT_CENTS, format_amount
from .crypto import new_private_key, public_key
from .errors import AmountError, DecodeError, DropReason, NotPaired, OverLimit, UserError
from .handshakes import COOLDOWN, MAX_BLOCKED, REFUSED_COOLDOWN, TRANSITIONS, Matchmaker, State
from .ledger import HistoryEntry, Ledger, Status as EntryStatus
from .peers import PeerRecord, PeerTable
from .restart import IMPOSTOR_COOLDOWN, PROBE_SPACING, PROBE_TIME, Probe, Verdict, probe_time
from .rtt import RttEstimator
from .session import Mode, PeerInfo, Session

__all__ = [
    "BROADCAST", "COOLDOWN", "FIRST_ANNOUNCES", "IMPOSTOR_COOLDOWN", "LOOKING_INTERVAL", "MAX_BLOCKED",
    "PAIRED_INTERVAL", "PROBE_SPACING", "PROBE_TIME", "REFUSED_COOLDOWN", "SETTLE", "TRANSITIONS",
    "UNSOLICITED_PER_SECOND", "Config", "Destination", "HistoryEntry", "Peer", "State", "Status",
]


class _Broadcast:
    def __repr__(self) -> str:
        return "BROADCAST"


#: Destination meaning "every discovery broadcast target": the node resolves it.
BROADCAST = _Broadcast()
Destination = tuple[str, int] | _Broadcast

SETTLE = 0.25           # wait this long after first hearing a candidate, so a namesake can show up too


@dataclass(frozen=True)
class Config:
    """What the user asked for at start; limits are in cents, ``connect`` adds unicast announce targets."""

    name: str
    want_peer: str | None = None
    code: str | None = None
    limit: int | None = None
    connect: tuple[tuple[str, int], ...] = ()
    session_port: int = 0


@dataclass(frozen=True)
class Status:
    """A snapshot for the shell's ``peer`` and ``balance`` commands: copied, so it never changes under the UI."""

    state: str
    peer_name: str | None
    peer_addr: tuple[str, int] | None
    code: str | None
    online: bool
    rtt: float | None
    balance: int
    pending: tuple[tuple[int, int, bool], ...]
    agree: bool | None
    verified: bool
    drops: int


class Peer:
    """One local peer: discovery, pairing, the session and its ledger, driven from outside."""

    def __init__(self, config: Config, rng: random.Random, now: float) -> None:
        for label, text in (("name", config.name), ("peer name", config.want_peer or "x")):
            if not text or len(text.encode()) > wire.MAX_NAME or wire.has_control(text):
                raise UserError(f"{label} must be 1 to {wire.MAX_NAME} bytes of printable text")
        self.config, self.rng = config, rng
        private = new_private_key(rng)
        self.me = pairing.Identity(config.name, rng.getrandbits(64) or 1, private, public_key(private),
                                   config.want_peer or "", config.code or None)
        self.state = State.LOOKING
        self.table = PeerTable()
        self.rtt = RttEstimator()
        self._ledger = Ledger(config.limit)
        self.session: Session | None = None
        self.probe: Probe | None = None
        self.warned: set[object] = set()
        self.past_partners: set[int] = set()      # incarnations we were paired with: never "restarts"
        self._settle_at: float | None = None
        self.drops: Counter[DropReason] = Counter()
        self._events: deque[events.Event] = deque()
        self._outbox: list[tuple[bytes, Destination]] = []
        self.announces = AnnounceSchedule(now)
        self.budget = Budget(now)
        self.pairer = Matchmaker(self)

    # ================================================================ public API
    @property
    def incarnation(self) -> int:
        return self.me.incarnation

    @property
    def hs(self) -> pairing.Handshake | None:
        return self.pairer.hs

    @property
    def done_hs(self) -> pairing.Handshake | None:
        return self.pairer.done_hs

    @property
    def late_hs(self) -> pairing.Handshake | None:
        return self.pairer.late_hs

    @property
    def cooldown(self) -> dict[int, float]:
        return self.pairer.cooldown

    @property
    def ledger(self) -> Ledger:
        return self.session.ledger if self.session is not None else self._ledger

    @property
    def idle(self) -> bool:
        return not self.ledger.pending()

    def next_event(self) -> events.Event | None:
        return self._events.popleft() if self._events else None

    def history(self) -> list[HistoryEntry]:
        return self.ledger.history()

    def pay(self, cents: int, memo: str, now: float) -> int:
        """Start a payment; raise a UserError (nothing moves) if it cannot be made."""
        if not isinstance(cents, int) or not 0 < cents <= MAX_PAYMENT_CENTS:
            raise AmountError(f"amount must be between 0.01 and {format_amount(MAX_PAYMENT_CENTS)}")
        if len(memo.encode()) > wire.MAX_MEMO or wire.has_control(memo):
            raise UserError(f"memo must be printable and at most {wire.MAX_MEMO} bytes")
        if self.session is None or self.state in (State.LOOKING, State.PAIRING, State.CLOSED):
            raise NotPaired("not paired yet" if self.state is not State.CLOSED else "closed")
        self._check_limit(cents)
        return self.session.pay(cents, memo, now)

    def _check_limit(self, cents: int) -> None:
        """The limit bounds the balance both ways: the payee refuses past it, the payer never tries."""
        limit = self.config.limit
        if limit is None:
            return
        led = self.ledger
        after = led.balance - sum(e.amount for e in led.pending()) - cents
        if after < -limit:
            raise OverLimit(f"paying {format_amount(cents)} would take your balance to {format_amount(after)}, "
                            f"past your limit of -{format_amount(limit)}")

    def accept(self, now: float) -> None:
        """The user compared codes and consents to hand the relationship to a restarted counterpart."""
        raise UserError("nothing is waiting for your consent")

    def close(self, now: float) -> None:
        """Say goodbye: BYE to the counterpart, a leaving announce to everyone."""
        if self.state is State.CLOSED:
            return
        if self.session is not None:
            self.session.close()
        self._broadcast(self._announce(leaving=True))
        self.move(State.CLOSED)

    def status(self) -> Status:
        s = self.session
        hs_name = self.hs.peer_name if self.hs is not None else None
        return Status(
            state=self.state.value,
            peer_name=s.info.name if s else hs_name,
            peer_addr=s.peer_addr if s else None,
            code=s.info.code if s else None,
            online=bool(s and s.online and s.ready),
            rtt=self.rtt.srtt,
            balance=self.ledger.balance,
            pending=tuple((e.seq, e.amount, e.status is EntryStatus.IN_DOUBT) for e in self.ledger.pending()),
            agree=s.agree if s else None,
            verified=bool(s and s.info.verified),
            drops=sum(self.drops.values()),
        )

    # ================================================================ datagrams in
    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        try:
            msg = wire.decode(data)
        except DecodeError:
            self._drop(DropReason.MALFORMED)
            return
        if self.state is State.CLOSED:
            return
        reason = self._dispatch(msg, addr, now)
        if reason is not None:
            self._drop(reason)
        self._settle(now)

    def _dispatch(self, msg: wire.Message, addr: tuple[str, int], now: float) -> DropReason | None:
        match msg:
            case wire.Announce():
                return self._on_announce(msg, addr, now)
            case wire.Hello():
                return self.pairer.on_hello(msg, addr, now)
            case wire.Sealed():
                return self._on_sealed(msg, addr, now)
            case wire.Reply() | wire.Reveal() | wire.Confirm() | wire.Refuse():
                if msg.sender_inc == self.me.incarnation:
                    return DropReason.OWN
                if msg.target_inc != self.me.incarnation:
                    return DropReason.NOT_FOR_US
                return self.pairer.on_handshake(msg, addr, now)
        return DropReason.UNEXPECTED  # pragma: no cover - every outer type is matched above

    def _drop(self, reason: DropReason) -> None:
        self.drops[reason] += 1

    # ---------------------------------------------------------------- discovery
    def _on_announce(self, msg: wire.Announce, addr: tuple[str, int], now: float) -> DropReason | None:
        if msg.incarnation == self.me.incarnation:
            return DropReason.OWN
        rec, new = self.table.update(msg, addr, now)
        if new and rec is not None and self.budget.spend(now):
            self._outbox.append((wire.encode(self._announce()), addr))   # answer at once: pairing in one round trip
        self._consider(now)
        return None

    def _announce(self, leaving: bool = False) -> wire.Announce:
        paired = self.state in (State.PAIRED, State.REPAIRING, State.RESTORING)
        s = self.session
        partner = (s.info.name, s.info.incarnation) if s else None
        return announce(self.me, self.config.session_port, paired, leaving, partner)

    def _broadcast(self, msg: wire.Message) -> None:
        data = wire.encode(msg)
        self._outbox.append((data, BROADCAST))
        self._outbox.extend((data, target) for target in self.config.connect)

    # ---------------------------------------------------------------- who to pair with
    @property
    def terms(self) -> matching.Terms:
        """Read afresh each time: tests may give ``me`` another incarnation after start."""
        return matching.Terms(self.me.name, self.config.want_peer, bool(self.me.code))

    def candidates(self, now: float) -> list[PeerRecord]:
        found, wrong_code = matching.candidates(self.terms, self.table.alive(now), self.cooldown, now)
        for rec in wrong_code:
            self._warn_once(("code", rec.incarnation),
                            events.PairingRefused(rec.name, wire.REFUSE_TEXT[wire.R_CODE_MISMATCH]))
        return found

    def conflicted(self, name: str, group: list[PeerRecord]) -> bool:
        """Several live peers answer to ``name``: pair with none, and tell the user once."""
        same = matching.namesakes(name, group)
        if same:
            key = ("conflict", frozenset(r.incarnation for r in same))
            self._warn_once(key, events.NameConflict(name, tuple(r.addr for r in same)))
            return True
        return False

    def _warn_once(self, key: object, event: events.Event) -> None:
        if key not in self.warned and len(self.warned) < 4 * MAX_BLOCKED:
            self.warned.add(key)
            self._events.append(event)

    def _consider(self, now: float) -> None:
        """Start whatever pairing the current state and peer table call for."""
        if self.state is State.LOOKING:
            self._choose(now)
        elif self.state is State.PAIRED and self.session is not None and self.probe is None:
            self._look_for_restart(self.session, now)
        elif self.state is State.REPAIRING and self.probe is not None and self.probe.passed and self.hs is None:
            rec = self.probe.rec
            if self.me.incarnation < rec.incarnation and not matching.cooling(self.cooldown, rec.incarnation, now):
                self.pairer.initiate(rec, resuming=True, now=now)

    def _choose(self, now: float) -> None:
        """Looking: initiate with the first unambiguous candidate once it has settled,
        if ours is the lower incarnation (else its hello will come)."""
        self._settle_at = None
        candidates = self.candidates(now)
        for rec in candidates:
            if self.conflicted(rec.name, candidates):
                continue
            if now < rec.first_seen + SETTLE:
                self._settle_at = rec.first_seen + SETTLE
            elif self.me.incarnation < rec.incarnation:
                self.pairer.initiate(rec, resuming=False, now=now)
            return          # the first candidate only: wait for its hello if it initiates

    def _look_for_restart(self, session: Session, now: float) -> None:
        """Paired: a newcomer with our counterpart's name may be its restarted process."""
        partner = (session.info.name, session.info.incarnation)
        for rec in self.table.alive(now):
            if matching.is_restart(self.terms, rec, partner, self.past_partners, self.cooldown, now):
                self._start_probe(rec, now)
                return

    def _start_probe(self, rec: PeerRecord, now: float) -> None:
        """Before handing the relationship to a newcomer, check the old process is really gone."""
        assert self.session is not None
        wait = probe_time(self.session.left, self.rtt.rto)
        self.probe = Probe(rec, now, now + wait)
        if wait:
            self.session.probe(now, until=now + wait, spacing=PROBE_SPACING)
        self._check_probe(now)

    def _check_probe(self, now: float) -> None:
        """Act on the probe's verdict: the probe judges, the facade moves."""
        probe = self.probe
        if probe is None:
            return
        verdict = probe.check(now, handshaking=self.hs is not None, old=self.session)
        if verdict is Verdict.GAVE_UP:
            self.probe = None                       # the newcomer never completed a handshake
            self.pairer.cool(probe.rec.incarnation, now + COOLDOWN)
            self.move(State.PAIRED)
        elif verdict is Verdict.ALIVE:
            self.pairer.cool(probe.rec.incarnation, now + IMPOSTOR_COOLDOWN)
            self._warn_once(("impostor", probe.rec.incarnation),
                            events.ImpostorSuspected(probe.rec.name, probe.rec.addr))
            self.probe = None
        elif verdict is Verdict.GONE:
            self.move(State.REPAIRING)
            self._consider(now)

    # ---------------------------------------------------------------- a handshake finished
    def complete(self, hs: pairing.Handshake, now: float) -> None:
        """Turn a finished handshake into the session, in the mode its purpose calls for."""
        assert hs.keys is not None
        info = PeerInfo(hs.peer_name, hs.peer_addr, hs.keys.code, bool(self.me.code), hs.peer_inc)
        self.pairer.completed(hs)
        again = self.session is not None and self.session.info.incarnation == hs.peer_inc
        if self.session is not None and self.session.info.incarnation != hs.peer_inc:
            self._retire(self.session.info.incarnation)
        if hs.handing_back:
            self.probe = None          # any old session is dropped: its process is gone
            self.session = Session(hs.keys, info, self.ledger, self.rtt, Mode.HANDING_BACK, now, self.emit)
            self.move(State.PAIRED)
        elif hs.resuming:
            self.session = Session(hs.keys, info, self._ledger, self.rtt, Mode.AWAITING, now, self.emit)
            self.move(State.RESTORING)
        else:
            self.session = Session(hs.keys, info, self.ledger, self.rtt, Mode.NORMAL, now, self.emit)
            self.move(State.PAIRED)
            self._events.append(events.Paired(info.name, info.addr, info.code, verified=info.verified,
                                              balance=self.session.ledger.balance, again=again))
        self._broadcast(self._announce())           # let the LAN see we are taken
        self._redraw_announces(now)

    def _retire(self, incarnation: int) -> None:
        """A counterpart process we are done with: never mistake it for a newcomer again."""
        if len(self.past_partners) >= MAX_BLOCKED:
            self.past_partners.pop()
        self.past_partners.add(incarnation)
        self.table.forget(incarnation)

    def emit(self, event: events.Event) -> None:
        """Queue an event for ``next_event``: the session and the handshakes report through here."""
        self._events.append(event)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        """Queue a datagram for one address; it leaves with the next ``datagrams_to_send``."""
        self._outbox.append((data, addr))

    # ---------------------------------------------------------------- sealed datagrams
    def _on_sealed(self, msg: wire.Sealed, addr: tuple[str, int], now: float) -> DropReason | None:
        self.pairer.on_sealed(msg, now)
        if self.session is not None and msg.session_id == self.session.keys.session_id:
            return self.session.receive(msg, addr, now)
        return DropReason.NOT_FOR_US

    def _settle(self, now: float) -> None:
        """State changes that follow from what the session did."""
        if self.state is State.RESTORING and self.session is not None and self.session.ready:
            self.move(State.PAIRED)
            self._redraw_announces(now)

    def _redraw_announces(self, now: float) -> None:
        """Announce on the interval the new state calls for, from now."""
        self.announces.redraw(now, self.rng, paired=self.state is State.PAIRED)

    def move(self, new: State) -> None:
        """Change state, only along ``TRANSITIONS``: a wrong move is a bug, not a network event."""
        if new is not self.state:
            if new not in TRANSITIONS[self.state]:
                raise AssertionError(f"bad transition {self.state.value} -> {new.value}")
            self.state = new

    # ================================================================ time
    def next_timeout(self) -> float | None:
        if self.state is State.CLOSED:
            return None
        times = [self.announces.next_at]
        for t in (self.hs.next_timeout() if self.hs else None,
                  self.session.next_timeout() if self.session else None,
                  self.probe.next_timeout(handshaking=self.hs is not None) if self.probe else None):
            if t is not None:
                times.append(t)
        if self._settle_at is not None and self.state is State.LOOKING:
            times.append(self._settle_at)
        waiting = [t for t in self.cooldown.values()]
        if self.state is State.LOOKING and waiting:
            times.append(min(waiting))
        return min(times)

    def handle_timeout(self, now: float) -> None:
        if self.state is State.CLOSED:
            return
        if self.announces.take(now, self.rng, paired=self.state is State.PAIRED):
            self._broadcast(self._announce())
        self.pairer.timer(now)
        if self.session is not None:
            self.session.handle_timeout(now)
        self._check_probe(now)
        self.table.expire(now)
        if self.state is State.LOOKING:
            self.pairer.prune(now)
            self._consider(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Destination]]:
        out, self._outbox = self._outbox, []
        if self.session is not None:
            out.extend(self.session.take_datagrams())
        return out
