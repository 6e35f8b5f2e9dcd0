"""The facade the node drives: one local peer, from discovery to payments.

Driven like h11/aioquic: datagrams in with ``receive_datagram(data, addr, now)``,
datagrams out with ``datagrams_to_send(now)``, one timer with
``next_timeout()``/``handle_timeout(now)``, and typed events from
``next_event()``.  It never reads a clock, never touches a socket, and never
raises on what the network sends: bad datagrams are dropped and counted.

The facade owns the relationship (``state``, the session, newcomers awaiting
consent, fenced old sessions) and decides; its parts do the mechanics and
report back by return value: ``announcer`` (when to announce, the budget for
datagrams sent unasked), ``matching`` (whom we may pair with), ``restart`` (is
our counterpart's old process gone?), ``handshakes`` (the handshakes under
way) and ``session`` (one sealed channel and its payments).  The rules for
who the counterpart is, and how that may change, live in ``counterpart``, which
owns the relationship's state.
"""

from __future__ import annotations

import random
from collections import Counter, deque

from . import events, pairing, wire
from .amounts import MAX_PAYMENT_CENTS, format_amount
from .announcer import AnnounceSchedule, Budget, Credit, announce, authentic
from .crypto import normalise_code
from .errors import AmountError, DecodeError, DropReason, NotPaired, OverLimit, UserError
from .frozen import frozen, lasting
from .handshakes import COOLDOWN, MAX_BLOCKED, Matchmaker
from .counterpart import COURTESY_KEPT, SETTLE, Counterpart
from .notices import Notices
from .ledger import HistoryEntry, Ledger, Status as EntryStatus
from .peers import PeerTable
from .rtt import RttEstimator
from .session import Session
from .state import HOLDING, State

__all__ = ["BROADCAST", "COOLDOWN", "MAX_BLOCKED", "SETTLE", "Config", "Destination", "HistoryEntry",
           "Peer", "State", "Status"]


class _Broadcast:
    def __repr__(self) -> str:
        return "BROADCAST"


#: Destination meaning "every discovery broadcast target": the node resolves it.
BROADCAST = _Broadcast()
Destination = tuple[str, int] | _Broadcast

# Members compared on every datagram, bound once: on CPython 3.11 reading a member off its
# Enum class passes through the Enum metaclass's __getattr__ hook, several times the cost of
# reading a global.
_CLOSED, _LOOKING, _PAIRED, _PAIRING = State.CLOSED, State.LOOKING, State.PAIRED, State.PAIRING
_MALFORMED, _NOT_FOR_US = DropReason.MALFORMED, DropReason.NOT_FOR_US
_HOLDING = tuple(HOLDING)       # a set would hash the member, which Enum does in Python


@lasting
class Config:
    """What the user asked for at start; limits are in cents, ``connect`` adds unicast announce targets."""

    name: str
    want_peer: str | None = None
    code: str | None = None
    limit: int | None = None
    connect: tuple[tuple[str, int], ...] = ()
    session_port: int = 0


@frozen
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
    wanted: str | None = None         # --peer: the only name we pair with
    requests: tuple[tuple[str, tuple[str, int], str], ...] = ()   # (name, address, code) awaiting accept


class Peer:
    """One local peer: discovery, pairing, the session and its ledger, driven from outside."""

    def __init__(self, config: Config, rng: random.Random, now: float) -> None:
        for label, text in (("name", config.name), ("peer name", config.want_peer or "x")):
            if not text or len(text.encode()) > wire.MAX_NAME or wire.has_control(text, word=True):
                raise UserError(f"{label} must be one word of 1 to {wire.MAX_NAME} bytes of printable text")
        self.config, self.rng = config, rng
        self.started = self._now = now          # the time of the latest input, for warnings
        me = pairing.new_identity(config.name, config.want_peer or "", config.code or None, rng)
        self.table = PeerTable()
        self.rtt = RttEstimator()
        self.pairer = Matchmaker()
        self.warned = Notices()
        self.budget = Budget(now)
        self.who = Counterpart(me, config.want_peer, config.limit, now, table=self.table, pairer=self.pairer,
                               budget=self.budget, rtt=self.rtt, notices=self.warned, rng=rng)
        self._settle_at: float | None = None
        self.drops: Counter[DropReason] = Counter()
        self._events: deque[events.Event] = deque()
        self._outbox: list[tuple[bytes, Destination]] = []
        self.credit = Credit()
        self.announces = AnnounceSchedule(now)
        self.announced = 0                      # our announces so far: each one's counter

    # ================================================================ public API
    @property
    def me(self) -> pairing.Identity:
        return self.who.me

    @me.setter
    def me(self, identity: pairing.Identity) -> None:
        self.who.me = identity

    @property
    def incarnation(self) -> int:
        return self.me.incarnation

    @property
    def state(self) -> State:
        return self.who.state

    @property
    def session(self) -> Session | None:
        return self.who.session

    @property
    def cooldown(self) -> dict[int, float]:
        return self.pairer.cooldown

    @property
    def ledger(self) -> Ledger:
        return self.who.ledger

    @property
    def idle(self) -> bool:
        return not self.ledger.unresolved

    def next_event(self) -> events.Event | None:
        if not self._events:            # what is queued comes first: anything collected goes after it
            self._collect()
        return self._events.popleft() if self._events else None

    def history(self) -> list[HistoryEntry]:
        return self.ledger.history()

    def pay(self, cents: int, memo: str, now: float) -> int:
        """Start a payment; raise a UserError (nothing moves) if it cannot be made."""
        if not isinstance(cents, int) or not 0 < cents <= MAX_PAYMENT_CENTS:
            raise AmountError(f"amount must be between 0.01 and {format_amount(MAX_PAYMENT_CENTS)}")
        if len(memo.encode()) > wire.MAX_MEMO or wire.has_control(memo):
            raise UserError(f"memo must be printable and at most {wire.MAX_MEMO} bytes")
        session = self.who.session
        if session is None or self.who.state not in _HOLDING:
            closed = self.state is _CLOSED
            raise NotPaired("closed" if closed else "not paired yet", "closed" if closed else "looking")
        session.check_can_pay()
        self._check_limit(cents)
        return session.start(cents, memo, now)

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

    def accept(self, now: float, code: str | None = None) -> None:
        """The user compared codes and consents to hand the relationship to a restarted counterpart.

        With several processes asking at once, ``code`` (the one shown for the right
        one) says which; nothing is handed over on a guess.
        """
        self.who.check_consent(now)          # a request that expired meanwhile is not there to accept
        waiting = list(self.who.successors.values())
        if code is not None:
            waiting = [s for s in waiting if normalise_code(s.info.code) == normalise_code(code)]
        if not waiting:
            raise UserError("nothing is waiting for your consent" if code is None
                            else "no request shows that code")
        if len(waiting) > 1:
            codes = ", ".join(s.info.code for s in waiting)
            raise UserError(f"{len(waiting)} processes ask for this relationship (codes {codes}): "
                            f"type accept and the code that {waiting[0].info.name}'s screen shows")
        self.who.hand_over(waiting[0], now)
        self._after_change(now)

    def close(self, now: float) -> None:
        """Say goodbye: BYE to the counterpart, a leaving announce to everyone."""
        if self.state is State.CLOSED:
            return
        for s in self.who.sessions():
            s.close()
        self._broadcast(self._announce(leaving=True))
        self.who.move(State.CLOSED)

    def status(self) -> Status:
        s = self.who.session
        return Status(
            state=self.state.value,
            peer_name=s.info.name if s else None,
            peer_addr=s.peer_addr if s else None,
            code=s.info.code if s else None,
            online=bool(s and s.online),
            rtt=self.rtt.srtt,
            balance=self.ledger.balance,
            pending=tuple((e.seq, e.amount, e.status is EntryStatus.IN_DOUBT) for e in self.ledger.pending()),
            agree=s.agree if s else None,
            verified=bool(s and s.info.verified),
            drops=sum(self.drops.values()),
            wanted=self.config.want_peer,
            requests=tuple((r.info.name, r.peer_addr, r.info.code) for r in self.who.successors.values()),
        )

    # ================================================================ datagrams in
    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        self._now = now
        try:
            msg = wire.decode(data)
        except DecodeError:
            self._drop(_MALFORMED)
            return
        if self.who.state is _CLOSED:
            return
        size = len(data)
        if type(msg) is wire.Sealed:               # nearly every datagram: no padding rule, one route
            self.credit.earn(addr[0], size)        # a session's bytes are its host's
            reason = self._on_sealed(msg, addr, now)
        else:
            self.credit.earn(addr, size)
            if wire.short(msg, size):
                self._drop(_MALFORMED)             # unpadded: it could draw more bytes than it brought
                return
            reason = self._dispatch(msg, addr, now)
        if reason is not None:
            self._drop(reason)
        self._after_change(now)

    def _dispatch(self, msg: wire.Message, addr: tuple[str, int], now: float) -> DropReason | None:
        match msg:
            case wire.Announce():
                return self._on_announce(msg, addr, now)
            case wire.Sealed():
                return self._on_sealed(msg, addr, now)
            case wire.Hello() | wire.Reply() | wire.Reveal() | wire.Confirm() | wire.Refuse():
                if msg.sender_inc == self.me.incarnation:
                    return DropReason.OWN
                if msg.target_inc != self.me.incarnation:
                    return DropReason.NOT_FOR_US
                if isinstance(msg, wire.Hello):
                    return self.who.on_hello(msg, addr, now)
                return self._on_handshake(msg, addr, now)
        return DropReason.UNEXPECTED  # pragma: no cover - every outer type is matched above

    def _drop(self, reason: DropReason) -> None:
        self.drops[reason] += 1

    def _on_handshake(self, msg: wire.Message, addr: tuple[str, int], now: float) -> DropReason | None:
        reason, done = self.pairer.route(msg, addr, now, lambda hs: self.who.admit(hs, now))
        self._collect()
        if done is not None:
            self.who.complete(done, now)
        return reason

    def _on_sealed(self, msg: wire.Sealed, addr: tuple[str, int], now: float) -> DropReason | None:
        who = self.who
        done = self.pairer.on_sealed(msg)
        if done is not None:
            who.complete(done, now)             # the session it makes opens this datagram below
        s = who.session
        if s is not None and msg.session_id == s.keys.session_id:     # the usual case, without a list
            reason = s.receive(msg, addr, now)
            if reason is None:
                who.heard(s, now)
            return reason
        for s in who.sessions():
            if msg.session_id == s.keys.session_id:
                reason = s.receive(msg, addr, now)
                if reason is None:
                    self.who.heard(s, now)
                return reason
        return _NOT_FOR_US

    # ---------------------------------------------------------------- discovery
    def _on_announce(self, msg: wire.Announce, addr: tuple[str, int], now: float) -> DropReason | None:
        if msg.incarnation == self.me.incarnation:
            return DropReason.OWN
        if not self.table.news(msg):
            return DropReason.REPLAY        # a copy of one we heard (from wherever), or older
        if not authentic(msg):
            return DropReason.AUTH
        rec, new = self.table.update(msg, addr, now)
        if rec is None or msg.flags & wire.F_ANSWER:
            return None
        claimant = self.who.is_claimant(rec, now)
        if new or claimant:
            answer = self.budget.spend(now)
        else:           # only a courtesy: never at the cost of our own hellos and replies
            answer = self.who.awaits_hello(rec, now) and self.budget.spend(now, keep=COURTESY_KEPT)
        if answer:
            self._outbox.append((wire.encode(self._announce(answer=True)), addr))   # pairing in one round trip
            if claimant and self.budget.spend(now):
                # Everyone else on the LAN hears that we hold this name's relationship too, so a
                # stranger the newcomer may meet leaves it to us meanwhile, and the newcomer has a
                # second chance to hear it (its own announce, not a copy: a copy is a replay).
                # A datagram of its own, so a token of its own: the budget bounds every one.
                self._broadcast(self._announce(answer=True))
        return None

    def _announce(self, leaving: bool = False, answer: bool = False) -> wire.Announce:
        s = self.who.session
        partner = (s.info.name, s.info.incarnation) if s else None
        self.announced += 1
        return announce(self.me, self.config.session_port, self.state in HOLDING, leaving, partner, answer,
                        self.announced)

    def _broadcast(self, msg: wire.Message) -> None:
        data = wire.encode(msg)
        self._outbox.append((data, BROADCAST))
        self._outbox.extend((data, target) for target in self.config.connect)

    def emit(self, event: events.Event) -> None:
        """Queue an event for ``next_event`` (a session's report about a stranger counts as a
        warning, told once, then counted)."""
        if isinstance(event, events.ImpersonationSeen):
            self._events.extend(self.warned.warn("claimed", event.name, ("claimed", event.host), event, self._now))
            return
        self._events.append(event)

    def announce_change(self, now: float) -> None:
        """The relationship changed: let the LAN see it now, then on the interval the state calls for."""
        self._broadcast(self._announce())
        self.announces.redraw(now, self.rng, paired=self.state is State.PAIRED)

    # ---------------------------------------------------------------- state
    def _after_change(self, now: float) -> None:
        """After any input: collect what the parts decided, and start what the new situation calls for."""
        if now > self._now:
            self._now = now
        self.who.settle(now)
        self._consider(now)
        self._collect()

    def _collect(self) -> None:
        """Take what the handshakes and the relationship decided to send, tell and announce."""
        who, pairer = self.who, self.pairer
        if not (pairer.out or pairer.events or who.out or who.told or who.changed):
            return                              # most calls: nothing was decided since the last
        self._outbox.extend(self.pairer.out)
        self.pairer.out = []
        self._events.extend(self.pairer.events)
        self.pairer.events = []
        self._outbox.extend(who.out)
        who.out = []
        told, who.told = who.told, []
        for event in told:
            self.emit(event)
        if who.changed:
            who.changed = False
            self.announce_change(self._now)

    def _consider(self, now: float) -> None:
        who = self.who
        state = who.state
        if state is _LOOKING or state is _PAIRING:
            settle = who.choose(now)
        else:
            settle = None
            who.look_for_restart(now)
        if self.pairer.attempts:            # Reveals put off (the start-up hold, a probe), now welcome
            again = who.recall(now)
            if again is not None and (settle is None or again < settle):
                settle = again
        self._settle_at = settle
        state = who.state
        if state is not _LOOKING and state is not _PAIRING:
            return
        if state is _LOOKING and self.pairer:
            who.move(_PAIRING)
        elif state is _PAIRING and not self.pairer:
            who.move(_LOOKING)

    def _may_send(self, data: bytes, dest: Destination) -> bool:
        """Outside a session nothing is sent to an address beyond the bytes heard from it
        (broadcasts and the user's --connect targets aside): a forged source address never
        draws more traffic than the forger sent."""
        if dest is BROADCAST or dest in self.config.connect:
            return True
        assert isinstance(dest, tuple)
        return self.credit.spend(dest, len(data))

    # ================================================================ time
    def next_timeout(self) -> float | None:
        state = self.who.state
        if state is _CLOSED:
            return None
        soonest = self.announces.next_at              # asked after every input: no tuple, no call for nothing
        if self.pairer:
            t = self.pairer.next_timeout()
            if t is not None and t < soonest:
                soonest = t
        t = self.who.next_timeout()
        if t is not None and t < soonest:
            soonest = t
        t = self._settle_at
        if t is not None and t < soonest:
            soonest = t
        if state is _LOOKING or state is _PAIRING:
            if self.cooldown:
                soonest = min(soonest, min(self.cooldown.values()))
            t = self.table.next_expiry()               # a namesake's record gone may free a candidate
            if t is not None and t < soonest:
                soonest = t
        return soonest

    def handle_timeout(self, now: float) -> None:
        self._now = now
        if self.state is _CLOSED:
            return
        if self.announces.take(now, self.rng, paired=self.state is _PAIRED):
            self._broadcast(self._announce())
        self.pairer.timer(now)
        self._collect()
        self.who.timer(now)
        self.table.expire(now)
        self.pairer.prune(now)
        self._after_change(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Destination]]:
        self._collect()
        queued, self._outbox = self._outbox, []
        out = [(data, dest) for data, dest in queued if self._may_send(data, dest)] if queued else []
        for s in self.who.sessions():
            out.extend(s.take_datagrams())
        return out
