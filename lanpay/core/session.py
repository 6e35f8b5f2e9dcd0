"""One pairing's sealed channel, and reliable payments over it.

Every datagram is sealed with ChaCha20-Poly1305 under a per-direction key, its
64-bit counter both the nonce and the replay-window position.  Payments carry
per-direction sequence numbers; the receiver applies them once each, in order,
and acknowledges duplicates again.  The sender retransmits on its timer, with an
RFC 6298 timeout from the measured round trip, and once early for a payment
that acknowledgements of three later ones show lost (never again because an
acknowledgement came twice); it reports a payment *in doubt* when it stays
unacknowledged for a while: it may have arrived, so it is neither failed nor
forgotten, only retried.

Keepalives: one side of each session (the one whose sending key sorts lower)
pings; the other answers, and pings itself only when no ping came for a while.
An unanswered ping is repeated soon, so one lost datagram is not silence.

A session is in one of a few modes (``Mode``): carrying payments, waiting for
the user's consent before a hand-back, handing the record back, waiting for the
record, or fenced off because the relationship went to a newer process.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from operator import attrgetter

from . import crypto, events, wire
from .errors import DecodeError, DropReason, NotPaired, PeerUnavailable
from .frozen import frozen, lasting
from .handback import Handback
from .ledger import HELD_BITS, MAX_AHEAD, BadHandback, HistoryEntry, Ledger, Outcome, Restore, Restored, Status
from .retry import Retry
from .rtt import RttEstimator

WINDOW = 32             # payments in flight at once
SPAN = MAX_AHEAD // 2   # and never further past the oldest unresolved one than the payee accepts
PING_INTERVAL = 1.5     # the leading side pings this often while its pings are answered
PONG_WAIT = 0.5         # a ping unanswered this long is sent again (until the peer is silent)
FOLLOW_AFTER = 2.0      # the other side pings only when no ping came for this long
SILENT_AFTER = 3.5
IN_DOUBT_AFTER = 3.0
BYE_COPIES = 3
MAX_PINGS = 32          # remembered pings: a probe sends one every PROBE_SPACING
CHALLENGE_SPACING = 0.5
FENCE_SPACING = 0.5     # a fenced session answers its old process at most this often
STALL_GAP = 2.5         # no call for this long (a timer or a ping comes every FOLLOW_AFTER at most): stopped
PACKET_THRESHOLD = 3    # a payment is lost once acknowledgements show three later ones arrived (RFC 9002 §6.1.1)
THIN_LINEAR = 6         # resends at the plain RTO while too few are in flight for acks to show a loss
SILENT_CAP = 3.0        # the longest wait between resends once the counterpart is silent
VOID = "void"           # the reason recorded for a payment that never reached the counterpart
_UNRESOLVED = (Status.PENDING, Status.IN_DOUBT)
_NEXT_AT = attrgetter("next_at")


class Mode(enum.Enum):
    NORMAL = "normal"
    CONSENT = "consent"             # a restarted counterpart, not yet accepted by our user: keepalives only
    HANDING_BACK = "handing-back"   # we survived a restart of the counterpart: send our record first
    AWAITING = "awaiting"           # we restarted: wait for the counterpart's record
    FENCED = "fenced"               # the relationship went to a newer process of the counterpart


# Members compared on every datagram, bound once: on CPython 3.11 reading a member off its
# Enum class passes through the Enum metaclass's __getattr__ hook, several times the cost of
# reading a global.
_NORMAL, _CONSENT, _HANDING_BACK, _AWAITING, _FENCED = \
    Mode.NORMAL, Mode.CONSENT, Mode.HANDING_BACK, Mode.AWAITING, Mode.FENCED
_AUTH, _REPLAY, _UNEXPECTED, _VIOLATION = \
    DropReason.AUTH, DropReason.REPLAY, DropReason.UNEXPECTED, DropReason.VIOLATION
_CONFLICT, _INVALID = Outcome.CONFLICT, Outcome.INVALID
_PENDING, _IN_DOUBT, _RECEIVED = Status.PENDING, Status.IN_DOUBT, Status.RECEIVED


@lasting
class PeerInfo:
    name: str
    addr: tuple[str, int]
    code: str
    verified: bool
    incarnation: int


class Session:
    def __init__(self, keys: crypto.SessionKeys, info: PeerInfo, ledger: Ledger, rtt: RttEstimator,
                 mode: Mode, now: float, emit: Callable[[events.Event], None]) -> None:
        self.keys, self.info, self.ledger, self.rtt, self.mode = keys, info, ledger, rtt, mode
        self.peer_addr = info.addr
        self.emit = emit
        self.window = crypto.ReplayWindow()
        self.send_counter = 0
        self.outbox: list[tuple[bytes, tuple[str, int]]] = []
        self.flights: dict[int, Retry] = {}
        self.leads = keys.send_key < keys.recv_key   # the side that keeps the session alive with pings
        self._out, self._in = crypto.Channel(keys.send_key), crypto.Channel(keys.recv_key)
        self._head = wire.sealed_prefix(keys.session_id)
        self.began = now                 # records silent since then are of processes that went before it
        self.last_heard = now
        self.challenge: tuple[int, tuple[str, int], float] | None = None   # (ping id, new address, sent at)
        self.silent = False
        self.left = False
        self.closed = False
        self.fenced_out = False                 # our counterpart handed the relationship to a newer us
        self.declined = 0                       # awaiting a hand-back the survivor then declined: why
        self.agree: bool | None = None
        self.next_ping = now
        self.ping_id = 0
        self.pings: dict[int, float] = {}
        self.answered_ping_at = float("-inf")   # when the newest ping that got a pong was sent
        self.probe_until = float("-inf")
        self.probe_spacing = PING_INTERVAL
        self.handback: Handback | None = None
        self.restore = Restore()
        self.final_ack: wire.Fenced | None = None
        self.fence_sent_at = float("-inf")
        self.old_heard = False
        self.last_call = now
        self.stale_since: float | None = None    # we were stopped: payments wait until the peer answers anew
        self.unmeasured_before = float("-inf")   # pings sent earlier timed a stop or a silence, not the link
        self.due: float | None = None            # the timer we last asked for (next_timeout)
        if mode is Mode.HANDING_BACK:
            self.begin_handback(now)
        self.handle_timeout(now)

    # ------------------------------------------------------------------ status
    @property
    def online(self) -> bool:
        return not (self.silent or self.left)

    @property
    def ready(self) -> bool:
        return self.mode is Mode.NORMAL

    def check_can_pay(self) -> None:
        name = self.info.name
        if self.mode in (_AWAITING, _CONSENT, _HANDING_BACK):
            raise NotPaired(f"restoring the relationship with {name}; try again in a moment", "restoring")
        if self.fenced_out or self.mode is _FENCED:
            raise NotPaired(f"this relationship with {name} was handed to another process", "fenced")
        if self.left:
            raise PeerUnavailable(f"{name} left — nothing was sent")
        if self.silent:
            raise PeerUnavailable(f"{name} is not responding — nothing was sent")

    # ------------------------------------------------------------------ sending
    def _send(self, msg: wire.Message, to: tuple[str, int] | None = None) -> int:
        """Seal and queue ``msg``; returns its counter, which numbers every datagram we send."""
        counter = self.send_counter
        self.send_counter += 1
        header = self._head + counter.to_bytes(8, "big")      # wire.sealed_header, its prefix made once
        body = self._out.seal(counter, header, wire.encode_inner(msg))
        self.outbox.append((header + body, to or self.peer_addr))
        return counter

    def take_datagrams(self) -> list[tuple[bytes, tuple[str, int]]]:
        out, self.outbox = self.outbox, []
        return out

    def pay(self, amount: int, memo: str, now: float) -> int:
        self.check_can_pay()
        return self.start(amount, memo, now)

    def start(self, amount: int, memo: str, now: float) -> int:
        """``pay`` once ``check_can_pay`` has passed (the peer checks that, then its limit)."""
        entry = self.ledger.new_outgoing(amount, memo, now)
        self._fill_window(now)
        return entry.seq

    def _fill_window(self, now: float) -> None:
        """Send unsent payments, oldest first, while the window and the span allow.

        Payments go out in seq order and resolve from the oldest up, so the ones in
        flight are the seqs just above the floor: the next to send follows the newest
        in flight, and the ledger's whole pending list need not be walked per datagram.
        """
        flights = self.flights
        flying = len(flights)
        if flying >= WINDOW or self.mode is not _NORMAL or self.left or self.closed:
            return
        led = self.ledger
        floor = led.floor()
        if flying and next(reversed(flights)) - floor != flying:
            self._fill_any(now, floor)           # not a run above the floor: look at every pending one
            return
        seq = floor + 1 + flying
        last = led.out_next - 1
        if last > floor + SPAN:
            last = floor + SPAN
        if seq > last:
            return                               # an ack with nothing new to send: the usual case
        rto = self.rtt.rto
        while seq <= last and flying < WINDOW:
            entry = led.outgoing(seq)
            if entry is None or entry.status not in _UNRESOLVED:
                self._fill_any(now, floor)
                return
            flight = flights[seq] = Retry.start(now, rto)
            flight.copy = self._send(wire.Pay(seq, floor, entry.amount, entry.memo))
            seq += 1
            flying += 1

    def _fill_any(self, now: float, floor: int) -> None:
        for entry in self.ledger.pending():
            if len(self.flights) >= WINDOW or entry.seq > floor + SPAN:
                break
            if entry.seq not in self.flights:
                flight = self.flights[entry.seq] = Retry.start(now, self.rtt.rto)
                flight.copy = self._send(wire.Pay(entry.seq, floor, entry.amount, entry.memo))

    def close(self) -> None:
        """Leave: from now on nothing is applied, and the BYE says what was (``Ledger.final``)."""
        if not self.closed:
            if self.mode is not Mode.FENCED:
                cumulative, rejections, complete = self.ledger.final()
                bye = wire.Bye(cumulative, rejections, int(complete))
                for _ in range(BYE_COPIES):
                    self._send(bye)
            self.closed = True

    # ------------------------------------------------------------------ hand-back
    def begin_handback(self, now: float) -> None:
        """Consent given (or proof shown): send our whole record, then carry payments."""
        self.mode = Mode.HANDING_BACK
        self.handback = Handback(self.ledger.snapshot(now))
        self.ledger.adopt_handback()
        self._send_parts(now)

    def _send_parts(self, now: float) -> None:
        assert self.handback is not None
        for part in self.handback.due(now, self.rtt.rto, self.rtt.cap):
            self._send(part)

    def decline(self, reason: int) -> list[tuple[bytes, tuple[str, int]]]:
        """We will not hand the relationship to this session's process after all (``reason``, a
        ``wire.D_*``): tell it, a few copies against loss, and hand back what to send, since this
        session is dropped at once."""
        for _ in range(BYE_COPIES):
            self._send(wire.Declined(reason))
        self.closed = True
        return self.take_datagrams()

    def tell_claimed(self, host: str) -> None:
        """Tell our counterpart that someone at ``host`` claimed to be it restarted."""
        if self.mode is Mode.NORMAL and not self.closed:
            self._send(wire.Claimed(host[:wire.MAX_MEMO]))

    def fence(self) -> None:
        """The relationship goes to a newer process of the counterpart: remember what this
        one had applied, and from now on only tell it so."""
        cumulative, rejections, complete = self.ledger.final()
        self.final_ack = wire.Fenced(cumulative, rejections, int(complete))
        self.mode = Mode.FENCED
        self.flights.clear()

    # ------------------------------------------------------------------ receiving
    def _woke(self, now: float) -> None:
        """Called first on every input: a gap longer than any timer allows means this process
        was stopped (SIGSTOP, a suspended laptop).  What queued up meanwhile may be from a
        relationship that has since gone to another process of ours, so no payment is applied
        until the counterpart answers a ping sent after we woke."""
        if now - self.last_call > STALL_GAP:
            # The time we were stopped (past the timer we had asked for) is not the peer's silence:
            # what it sent meanwhile waits in our socket, read after this. Judged on the time we
            # were awake, it is not told as "not responding" the instant we wake, then "back".
            late = now - self.due if self.due is not None else 0.0
            if late > 0.0:
                self.last_heard += late
                self.unmeasured_before = now
            if self.mode is Mode.NORMAL and not self.closed:
                self.stale_since = now
                self._ping(now)
        self.last_call = now

    def receive(self, msg: wire.Sealed, addr: tuple[str, int], now: float) -> DropReason | None:
        """Open and act on one sealed datagram; return why it was dropped, if it was."""
        if now - self.last_call > STALL_GAP:
            self._woke(now)
        self.last_call = now
        if not self.window.fresh(msg.counter):
            return _REPLAY
        plain = self._in.open(msg.counter, msg.header, msg.ciphertext)
        if plain is None:
            return _AUTH
        self.window.mark(msg.counter)
        if self.mode is _FENCED:
            return self._fenced(addr, now)
        if addr != self.peer_addr:
            self._challenge(addr, now)
        self.last_heard = now
        if self.silent and not self.closed:
            self.silent = False
            self.unmeasured_before = now
            self.emit(events.PeerBack(self.info.name))
        try:
            inner = wire.decode_inner(plain)
        except DecodeError:
            return _VIOLATION
        return self._dispatch(inner, addr, now)

    def _fenced(self, addr: tuple[str, int], now: float) -> DropReason | None:
        """The old process spoke: tell our user once, and tell it (not too often) where things stand."""
        if not self.old_heard:
            self.old_heard = True
            self.emit(events.OldProcessBack(self.info.name, addr))
        if self.final_ack is not None and now >= self.fence_sent_at + FENCE_SPACING:
            self.fence_sent_at = now
            self._send(self.final_ack, to=addr)
        return None

    def _challenge(self, addr: tuple[str, int], now: float) -> None:
        """An authentic datagram from a new address: prove the peer is there before moving.

        Anyone on the LAN can re-send a sealed datagram from elsewhere; it opens, but
        only the peer can answer a ping sent to the new address, from that address.
        """
        if self.challenge is not None and now < self.challenge[2] + CHALLENGE_SPACING:
            return
        ping_id = self._next_ping_id()
        self.challenge = (ping_id, addr, now)
        self._send(self._keepalive(wire.Ping, ping_id), to=addr)

    def _keepalive(self, kind: type[wire.Ping] | type[wire.Pong], ping_id: int) -> wire.Ping | wire.Pong:
        led = self.ledger
        return kind(ping_id, self._quiet(), led.out_settled, led.in_settled, led.issued, led.digest())

    _ALLOWED = {
        Mode.AWAITING: (wire.Resume, wire.Ping, wire.Pong, wire.Bye, wire.Declined),
        Mode.CONSENT: (wire.Ping, wire.Pong, wire.Bye),
        Mode.HANDING_BACK: (wire.Resumed, wire.Ack, wire.Ping, wire.Pong, wire.Bye),
    }

    def _dispatch(self, msg: wire.Message, addr: tuple[str, int], now: float) -> DropReason | None:
        if self.mode is _NORMAL:              # everything is allowed: payments and acks go straight on
            kind = type(msg)
            if kind is wire.Pay:
                return self._on_pay(msg, now)   # type: ignore[arg-type]
            if kind is wire.Ack:
                return self._on_ack(msg, now)   # type: ignore[arg-type]
        allowed = self._ALLOWED.get(self.mode)
        if allowed is not None and not isinstance(msg, allowed):
            return _UNEXPECTED
        match msg:
            case wire.Pay():
                return self._on_pay(msg, now)
            case wire.Ack():
                return self._on_ack(msg, now)
            case wire.Ping():
                self._send(self._keepalive(wire.Pong, msg.ping_id))
                if not self.leads and now >= self.probe_until and self.stale_since is None:
                    # Its pings keep us both heard; but woken from a stop we keep asking until a
                    # ping of ours is answered, or we would never apply a payment again.
                    self.next_ping = max(self.next_ping, now + FOLLOW_AFTER)
                self._heard_keepalive(msg)
            case wire.Pong():
                if self.challenge is not None and (msg.ping_id, addr) == self.challenge[:2]:
                    self.peer_addr, self.challenge = addr, None      # the peer answered from there: follow it
                sent = self.pings.pop(msg.ping_id, None)
                if sent is not None:
                    if sent >= self.unmeasured_before:
                        self.rtt.sample(now - sent)
                    self.answered_ping_at = max(self.answered_ping_at, sent)
                    if now >= self.probe_until:
                        self.next_ping = max(self.next_ping, sent + PING_INTERVAL)
                    if self.stale_since is not None and sent >= self.stale_since:
                        self.stale_since = None       # the session still stands: payments flow again
                self._heard_keepalive(msg)
            case wire.Bye():
                if not self.left:
                    final = self.mode is _NORMAL      # else no payment of ours is in its hands
                    if final and not self._believable(msg):
                        return DropReason.VIOLATION
                    self.left = True
                    self.emit(events.PeerLeft(self.info.name))
                    if final:
                        self._final_word(msg)
            case wire.Resume():
                return self._on_resume(msg, now)
            case wire.Resumed():
                return self._on_resumed(msg, now)
            case wire.Fenced():
                return self._on_fenced(msg)
            case wire.Claimed():
                self.emit(events.ImpersonationSeen(self.info.name, msg.host))
            case wire.Declined():
                self.declined = msg.reason or wire.D_OLD_ALIVE   # only in AWAITING (above): no record comes
        return None

    def _heard_keepalive(self, msg: wire.Ping | wire.Pong) -> None:
        if self.mode is Mode.NORMAL:
            self.ledger.heard_issued(msg.issued)
            self._compare(msg)

    def _on_pay(self, msg: wire.Pay, now: float) -> DropReason | None:
        if self.stale_since is not None:
            return _UNEXPECTED                    # it is sent again once we know the session still stands
        outcome, done = self.ledger.receive(msg.seq, msg.amount, msg.memo, now)
        if outcome in (_CONFLICT, _INVALID):
            return _VIOLATION
        self._tell_incoming(done)
        self.ledger.forget_rejections(msg.floor if msg.floor < msg.seq else msg.seq - 1)
        self._send(self.ledger.ack())
        return None

    def _tell_incoming(self, done: list[HistoryEntry], resent: bool = False) -> None:
        """Tell each payment processed just now, in order, with the balance right after it."""
        if len(done) == 1 and done[0].status is _RECEIVED:            # one payment, in order: the usual
            entry = done[0]
            self.emit(events.PaymentReceived(entry.seq, entry.amount, entry.memo, self.ledger.balance,
                                             resent=resent))
            return
        balance = self.ledger.balance - sum(e.amount for e in done if e.status is _RECEIVED)
        for entry in done:
            if entry.status is _RECEIVED:
                balance += entry.amount
                self.emit(events.PaymentReceived(entry.seq, entry.amount, entry.memo, balance, resent=resent))
            elif not self.ledger.declined_uncounted:       # past the bound, refusals are only counted
                self.emit(events.PaymentDeclined(entry.seq, entry.amount, entry.memo, entry.reason))

    def _on_ack(self, msg: wire.Ack, now: float) -> DropReason | None:
        rejections, cumulative, held = msg.rejections, msg.cumulative, msg.held
        out_next = self.ledger.out_next
        if cumulative >= out_next or (rejections and any(r.seq > cumulative for r in rejections)) \
                or (held and held >> max(0, out_next - cumulative - 2)):
            return _VIOLATION                         # it acknowledges what we never sent
        delivered: tuple[int, float] = (-1, 0.0)
        if cumulative > self.ledger.floor():
            delivered = self._settle_up_to(cumulative, {r.seq: r.reason for r in rejections} if rejections else {},
                                           now)
        if self.flights and (held or delivered[0] >= 0):
            self._find_losses(cumulative, held, *delivered, now)
        self._fill_window(now)
        return None

    def _find_losses(self, cumulative: int, held: int, delivered: int, delivered_at: float, now: float) -> None:
        """Resend, once per sign of it, each payment the payee lacks though a copy we sent after
        it arrived: ``PACKET_THRESHOLD`` datagrams later, or a quarter of a round trip (at least
        the clock's 1 ms granularity) later (RFC 9002 §6.1.1 and RFC 8985, counted in our
        datagram numbers: a resent payment keeps its seq, so the seq alone cannot say what was
        sent after it).  ``delivered`` is the
        number of the latest copy this ack settled, sent at ``delivered_at``; what the payee
        holds beyond the gap counts too.  An ack that came twice shows nothing new, so it
        resends nothing (no Sorcerer's Apprentice)."""
        flights = self.flights
        base = cumulative + 2                          # the seq of bit 0 of ``held``
        if held:
            for seq, flight in flights.items():
                if seq >= base and (held >> (seq - base)) & 1 and flight.copy > delivered:
                    delivered, delivered_at = flight.copy, flight.sent_at
        rtt = self.rtt
        window = (rtt.srtt if rtt.srtt is not None else rtt.rto) / 4
        if window < rtt.granularity:
            window = rtt.granularity
        # Flights are in the order of their first sending, and a resend only makes a copy
        # later: past one never resent that is recent enough, none can be lost by this rule.
        for seq, flight in flights.items():
            if base <= seq < base + HELD_BITS and (held >> (seq - base)) & 1:
                continue                               # it arrived: it waits for the gap
            if flight.copy < delivered and seq <= cumulative + 1 + HELD_BITS and (
                    flight.copy + PACKET_THRESHOLD <= delivered or flight.sent_at + window <= delivered_at):
                self._resend(seq, flight, now, linear=flight.retries + 1)
            elif flight.retries == 0:
                break

    def _settle_up_to(self, cumulative: int, rejected: dict[int, int], now: float) -> tuple[int, float]:
        """The counterpart processed everything up to ``cumulative``: each pending one is
        confirmed, or rejected if it says so.  One RTT sample, from the latest, unless a
        payment it settles was resent.  Returns the number of the latest copy it settled, and
        when that copy was sent."""
        led, flights = self.ledger, self.flights
        newest: Retry | None = None       # the latest payment this ack settles, for an RTT sample
        resent = False
        latest, latest_at = -1, 0.0       # the latest copy of a payment it settles: number, time sent
        for seq in range(led.floor() + 1, cumulative + 1):     # every unresolved one is above the floor
            entry = led.outgoing(seq)
            if entry is None or entry.status not in _UNRESOLVED:
                continue
            flight = flights.pop(seq, None)
            if flight is not None:
                newest = flight
                resent = resent or flight.retries > 0
                if flight.copy > latest:
                    latest, latest_at = flight.copy, flight.sent_at
            if seq in rejected:
                reason = wire.REJECT_TEXT.get(rejected[seq], "refused")
                self.ledger.reject(seq, reason)
                self.emit(events.PaymentRejected(seq, entry.amount, reason))
                continue
            self.ledger.confirm(seq)
            self.emit(events.PaymentConfirmed(seq, entry.amount, entry.memo, self.ledger.balance,
                                              was_in_doubt=entry.status is _IN_DOUBT))
        if newest is not None and not resent:
            self.rtt.sample(now - newest.first_sent)     # Karn: not when a copy may be what was answered
        return latest, latest_at

    def _believable(self, msg: wire.Bye | wire.Fenced) -> bool:
        """Whether a final word claims only what we sent."""
        return msg.cumulative < self.ledger.out_next and all(r.seq <= msg.cumulative for r in msg.rejections)

    def _final_word(self, msg: wire.Bye | wire.Fenced) -> None:
        """The counterpart applies nothing more (it left, or was fenced off): settle what it
        says it applied; the rest never arrived (void), or, when its list could not say all,
        may have (in doubt)."""
        cumulative, rejections = msg.cumulative, msg.rejections
        if cumulative > self.ledger.floor():
            self._settle_up_to(cumulative, {r.seq: r.reason for r in rejections}, self.last_heard)
        self.flights.clear()
        rest = self.ledger.pending()
        if msg.complete == 1:
            for entry in rest:
                self.ledger.reject(entry.seq, VOID)
            if rest:
                self.emit(events.PaymentsVoided(rest[0].seq, rest[-1].seq))
        else:
            for entry in rest:
                if self.ledger.mark_in_doubt(entry.seq) is not None:
                    self.emit(events.PaymentInDoubt(entry.seq, entry.amount))

    def _on_fenced(self, msg: wire.Fenced) -> DropReason | None:
        """Our counterpart gave the relationship to a newer process of ours: settle what it
        applied, void the rest, and stop."""
        if self.fenced_out:
            return None
        if not self._believable(msg):
            return DropReason.VIOLATION
        self._final_word(msg)
        self.fenced_out = self.closed = True
        self.emit(events.Fenced(self.info.name))
        return None

    def _on_resume(self, msg: wire.Resume, now: float) -> DropReason | None:
        if self.mode is Mode.HANDING_BACK:
            return DropReason.UNEXPECTED
        if self.mode is Mode.AWAITING:
            try:
                self.restore.add(msg)
                done = self.restore.build(self.ledger.limit, now) if self.restore.complete else None
            except BadHandback:
                return DropReason.VIOLATION
            self._send(wire.Resumed(msg.part))
            if done is not None:
                self._restored(done)
            return None
        if msg.part >= len(self.restore.parts):
            return DropReason.UNEXPECTED          # not a part of the hand-back we took
        self._send(wire.Resumed(msg.part))
        return None

    def _restored(self, done: Restored) -> None:
        """The record is in: tell the balance it gives, then each payment it completed here."""
        self.ledger = done.ledger
        self.mode = Mode.NORMAL
        balance = self.ledger.balance - sum(e.amount for e in done.judged if e.status is Status.RECEIVED)
        self.emit(events.Paired(self.info.name, self.info.addr, self.info.code, restored=True,
                                verified=self.info.verified, balance=balance))
        self.emit(events.PaymentsVoided(*done.voided, restart=True))
        self._tell_incoming(done.judged, resent=True)
        self._send(self.ledger.ack())

    def _on_resumed(self, msg: wire.Resumed, now: float) -> DropReason | None:
        if self.mode is not Mode.HANDING_BACK or self.handback is None:
            return None
        if not self.handback.acked(msg.part):
            return DropReason.VIOLATION
        if self.handback.done:
            self.mode = Mode.NORMAL
            self.ledger.handback_taken()
            self.emit(events.PeerRestarted(self.info.name, self.info.addr, self.info.code, self.info.verified))
            self._fill_window(now)
        else:
            self._send_parts(now)
        return None

    def _quiet(self) -> int:
        led = self.ledger
        return int(self.mode is Mode.NORMAL and led.floor() == led.out_next - 1)   # nothing unresolved

    def _compare(self, msg: wire.Ping | wire.Pong) -> None:
        """Compare views only when both are quiet and have settled the same payments.

        A keepalive written before its sender settled the payment we just settled
        would otherwise read as a disagreement that is only a matter of timing.
        """
        led = self.ledger
        if not (msg.quiet and self._quiet()) or (msg.out_settled, msg.in_settled) != (led.in_settled, led.out_settled):
            return
        agree = crypto.tags_equal(msg.digest, led.digest(mirrored=True))
        if agree != self.agree:
            if not agree or self.agree is False:
                self.emit(events.LedgerAgreement(agree))
            self.agree = agree

    # ------------------------------------------------------------------ time
    def handle_timeout(self, now: float) -> None:
        if self.closed or self.mode is _FENCED:
            return
        self._woke(now)
        if not self.left and not self.silent and now >= self.last_heard + SILENT_AFTER:
            self.silent = True
            self.emit(events.PeerSilent(self.info.name))
        if not self.left:
            if now >= self.next_ping:
                self._ping(now)
            if self.mode is _HANDING_BACK:
                self._send_parts(now)
        for entry in self._unresolved():    # after a BYE too: one that did not settle them all
            if entry.status is not _PENDING:
                continue
            if now < entry.at + IN_DOUBT_AFTER:
                break
            self.ledger.mark_in_doubt(entry.seq)
            self.emit(events.PaymentInDoubt(entry.seq, entry.amount))
        if self.left:
            return
        self._resend_oldest(now)
        self._fill_window(now)

    def _resend_oldest(self, now: float) -> None:
        """A timer ran out: resend the oldest payment in flight, and only it.

        The payee holds every payment beyond a gap unacknowledged, so the later
        timers running out say nothing of their own payments; they wait for the
        oldest's.  Once it arrives, the acknowledgement it draws shows which are
        missing (``_find_losses``).
        """
        flights = self.flights
        if not flights:
            return
        oldest = min(flights)
        flight = flights[oldest]
        if flight.due(now):
            self._resend(oldest, flight, now, THIN_LINEAR)
        wait = flight.next_at
        for later in flights.values():
            if later.next_at < wait:
                later.next_at = wait

    def _resend(self, seq: int, flight: Retry, now: float, linear: int) -> None:
        entry = self.ledger.outgoing(seq)
        assert entry is not None
        flight.fire(now, self.rtt.rto, SILENT_CAP if self.silent else self.rtt.cap, linear)
        flight.copy = self._send(wire.Pay(seq, self.ledger.floor(), entry.amount, entry.memo))

    def probe(self, now: float, until: float, spacing: float) -> None:
        """Ping often until ``until``: is the process behind this session still there?"""
        self.probe_until, self.probe_spacing = until, spacing
        self._ping(now)

    def _next_ping_id(self) -> int:
        self.ping_id = (self.ping_id + 1) % 2**32
        return self.ping_id

    def _ping(self, now: float) -> None:
        self.pings[self._next_ping_id()] = now
        while len(self.pings) > MAX_PINGS:
            del self.pings[next(iter(self.pings))]
        self._send(self._keepalive(wire.Ping, self.ping_id))
        if now < self.probe_until:
            self.next_ping = now + self.probe_spacing
        else:       # again soon unless answered (a Pong moves this to PING_INTERVAL after the ping)
            self.next_ping = now + (PING_INTERVAL if self.silent else PONG_WAIT)

    def next_timeout(self) -> float | None:
        """When to call ``handle_timeout`` next; remembered as ``due`` (a call long after it means
        this process was stopped, ``_woke``)."""
        if self.closed or self.mode is _FENCED:
            self.due = None
            return None
        if self.left:                     # only a payment still to be told in doubt
            first = self.ledger.first_pending()
            self.due = due = None if first is None else first.at + IN_DOUBT_AFTER
            return due
        soonest = self.next_ping          # asked after every input: comparisons, not min() calls
        if not self.silent and self.last_heard + SILENT_AFTER < soonest:
            soonest = self.last_heard + SILENT_AFTER
        if self.handback is not None and self.mode is _HANDING_BACK:
            t = self.handback.next_timeout()
            if t is not None and t < soonest:
                soonest = t
        if self.flights:
            t = min(map(_NEXT_AT, self.flights.values()))
            if t < soonest:
                soonest = t
        first = self.ledger.first_pending()
        if first is not None and first.at + IN_DOUBT_AFTER < soonest:
            soonest = first.at + IN_DOUBT_AFTER
        self.due = soonest
        return soonest

    def _unresolved(self) -> Iterator[HistoryEntry]:
        """Our unresolved payments, oldest first, found by number from the floor up: asked for
        at every timer and every pump, and the first is usually the one wanted, so the
        ledger's whole pending list is not built for it."""
        led = self.ledger
        for seq in range(led.floor() + 1, led.out_next):
            entry = led.outgoing(seq)
            if entry is not None and entry.status in _UNRESOLVED:
                yield entry
