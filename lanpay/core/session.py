"""One pairing's sealed channel, and reliable payments over it.

Every datagram is sealed with ChaCha20-Poly1305 under a per-direction key, its
64-bit counter both the nonce and the replay-window position.  Payments carry
per-direction sequence numbers; the receiver applies each exactly once and
acknowledges duplicates again.  The sender retransmits on its timer only (never
because an acknowledgement came twice), with an RFC 6298 timeout, and reports a
payment *in doubt* when it stays unacknowledged for a while: it may have
arrived, so it is neither failed nor forgotten, only retried.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from . import crypto, events, wire
from .errors import DecodeError, DropReason, NotPaired, PeerUnavailable
from .ledger import MAX_AHEAD, BadHandback, Ledger, Outcome, Status
from .rtt import RttEstimator

WINDOW = 32             # payments in flight at once
SPAN = MAX_AHEAD // 2   # and never further past the oldest unresolved one than the payee accepts
PING_INTERVAL = 1.0
SILENT_AFTER = 3.5
IN_DOUBT_AFTER = 3.0
BYE_COPIES = 3
MAX_PINGS = 32          # remembered pings: a probe sends one every PROBE_SPACING
CHALLENGE_SPACING = 0.5


class Mode(enum.Enum):
    NORMAL = "normal"
    HANDING_BACK = "handing-back"   # we survived a restart of the counterpart: send our record first
    AWAITING = "awaiting"           # we restarted: wait for the counterpart's record


@dataclass(frozen=True)
class PeerInfo:
    name: str
    addr: tuple[str, int]
    code: str
    verified: bool
    incarnation: int


@dataclass
class Flight:
    first_sent: float
    next_at: float
    retries: int = 0


class Session:
    def __init__(self, keys: crypto.SessionKeys, info: PeerInfo, ledger: Ledger, rtt: RttEstimator,
                 mode: Mode, now: float, emit: Callable[[events.Event], None]) -> None:
        self.keys, self.info, self.ledger, self.rtt, self.mode = keys, info, ledger, rtt, mode
        self.peer_addr = info.addr
        self.emit = emit
        self.window = crypto.ReplayWindow()
        self.send_counter = 0
        self.outbox: list[tuple[bytes, tuple[str, int]]] = []
        self.flights: dict[int, Flight] = {}
        self.last_heard = now
        self.challenge: tuple[int, tuple[str, int], float] | None = None   # (ping id, new address, sent at)
        self.silent = False
        self.left = False
        self.closed = False
        self.agree: bool | None = None
        self.next_ping = now
        self.ping_id = 0
        self.pings: dict[int, float] = {}
        self.answered_ping_at = float("-inf")   # when the newest ping that got a pong was sent
        self.probe_until = float("-inf")
        self.probe_spacing = PING_INTERVAL
        self.handback_at: float | None = None
        self.handback_retries = 0
        if mode is Mode.HANDING_BACK:
            self._handback = ledger.snapshot(now)
            ledger.adopt_handback()
            self.handback_at = now
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
        if self.mode is Mode.AWAITING:
            raise NotPaired(f"restoring the relationship from {name}'s record; try again in a moment")
        if self.left:
            raise PeerUnavailable(f"{name} left — nothing was sent")
        if self.silent:
            raise PeerUnavailable(f"{name} is not responding — nothing was sent")

    # ------------------------------------------------------------------ sending
    def _send(self, msg: wire.Message, to: tuple[str, int] | None = None) -> None:
        counter = self.send_counter
        self.send_counter += 1
        shell = wire.Sealed(self.keys.session_id, counter, b"")
        body = crypto.seal(self.keys.send_key, counter, shell.header, wire.encode_inner(msg))
        self.outbox.append((wire.encode(wire.Sealed(self.keys.session_id, counter, body)), to or self.peer_addr))

    def take_datagrams(self) -> list[tuple[bytes, tuple[str, int]]]:
        out, self.outbox = self.outbox, []
        return out

    def pay(self, amount: int, memo: str, now: float) -> int:
        self.check_can_pay()
        entry = self.ledger.new_outgoing(amount, memo, now)
        self._fill_window(now)
        return entry.seq

    def _fill_window(self, now: float) -> None:
        if self.mode is not Mode.NORMAL or self.left or self.closed:
            return
        span_end = self.ledger.floor() + SPAN
        for entry in self.ledger.pending():
            if len(self.flights) >= WINDOW or entry.seq > span_end:
                break
            if entry.seq not in self.flights:
                self.flights[entry.seq] = Flight(now, now + self.rtt.rto)
                self._send(wire.Pay(entry.seq, self.ledger.floor(), entry.amount, entry.memo))

    def close(self) -> None:
        if not self.closed:
            for _ in range(BYE_COPIES):
                self._send(wire.Bye())
            self.closed = True

    # ------------------------------------------------------------------ receiving
    def receive(self, msg: wire.Sealed, addr: tuple[str, int], now: float) -> DropReason | None:
        """Open and act on one sealed datagram; return why it was dropped, if it was."""
        if not self.window.fresh(msg.counter):
            return DropReason.REPLAY
        plain = crypto.open_sealed(self.keys.recv_key, msg.counter, msg.header, msg.ciphertext)
        if plain is None:
            return DropReason.AUTH
        self.window.mark(msg.counter)
        if addr != self.peer_addr:
            self._challenge(addr, now)
        self.last_heard = now
        if self.silent and not self.closed:
            self.silent = False
            self.emit(events.PeerBack(self.info.name))
        try:
            inner = wire.decode_inner(plain)
        except DecodeError:
            return DropReason.VIOLATION
        return self._dispatch(inner, addr, now)

    def _challenge(self, addr: tuple[str, int], now: float) -> None:
        """An authentic datagram from a new address: prove the peer is there before moving.

        Anyone on the LAN can re-send a sealed datagram from elsewhere; it opens, but
        only the peer can answer a ping sent to the new address, from that address.
        """
        if self.challenge is not None and now < self.challenge[2] + CHALLENGE_SPACING:
            return
        ping_id = self._next_ping_id()
        self.challenge = (ping_id, addr, now)
        self._send(wire.Ping(ping_id, self._quiet(), self.ledger.out_settled, self.ledger.in_settled,
                             self.ledger.digest()), to=addr)

    def _dispatch(self, msg: wire.Message, addr: tuple[str, int], now: float) -> DropReason | None:
        if self.mode is Mode.AWAITING and not isinstance(msg, (wire.Resume, wire.Ping, wire.Pong, wire.Bye)):
            return DropReason.UNEXPECTED
        match msg:
            case wire.Pay():
                return self._on_pay(msg, now)
            case wire.Ack():
                return self._on_ack(msg, now)
            case wire.Ping():
                self._send(wire.Pong(msg.ping_id, self._quiet(), self.ledger.out_settled,
                                     self.ledger.in_settled, self.ledger.digest()))
                self._compare(msg)
            case wire.Pong():
                if self.challenge is not None and (msg.ping_id, addr) == self.challenge[:2]:
                    self.peer_addr, self.challenge = addr, None      # the peer answered from there: follow it
                sent = self.pings.pop(msg.ping_id, None)
                if sent is not None:
                    self.rtt.sample(now - sent)
                    self.answered_ping_at = max(self.answered_ping_at, sent)
                self._compare(msg)
            case wire.Bye():
                if not self.left:
                    self.left = True
                    self.emit(events.PeerLeft(self.info.name))
            case wire.Resume():
                return self._on_resume(msg, now)
            case wire.Resumed():
                return self._on_resumed(now)
        return None

    def _on_pay(self, msg: wire.Pay, now: float) -> DropReason | None:
        outcome = self.ledger.receive(msg.seq, msg.amount, msg.memo, now)
        if outcome in (Outcome.CONFLICT, Outcome.INVALID):
            return DropReason.VIOLATION
        if outcome is Outcome.APPLIED:
            self.emit(events.PaymentReceived(msg.seq, msg.amount, msg.memo, self.ledger.balance))
        self.ledger.forget_rejections(min(msg.floor, msg.seq - 1))
        self._send(self.ledger.ack())
        return None

    def _on_ack(self, msg: wire.Ack, now: float) -> DropReason | None:
        if msg.cumulative >= self.ledger.out_next or any(r.last >= self.ledger.out_next for r in msg.ranges):
            return DropReason.VIOLATION
        rejected = {r.seq: r.reason for r in msg.rejections}
        for entry in self.ledger.pending():
            seq = entry.seq
            if not (seq <= msg.cumulative or any(r.first <= seq <= r.last for r in msg.ranges)):
                continue
            flight = self.flights.pop(seq, None)
            if seq in rejected:
                self.ledger.reject(seq, wire.REJECT_TEXT.get(rejected[seq], "refused"))
                self.emit(events.PaymentRejected(seq, entry.amount, wire.REJECT_TEXT.get(rejected[seq], "refused")))
                continue
            if flight is not None and flight.retries == 0:
                self.rtt.sample(now - flight.first_sent)     # Karn: only sends never repeated
            self.ledger.confirm(seq)
            self.emit(events.PaymentConfirmed(seq, entry.amount, entry.memo, self.ledger.balance,
                                              was_in_doubt=entry.status is Status.IN_DOUBT))
        self._fill_window(now)
        return None

    def _on_resume(self, msg: wire.Resume, now: float) -> DropReason | None:
        if self.mode is Mode.AWAITING:
            try:
                self.ledger = Ledger.restored(msg, self.ledger.limit, now)
            except BadHandback:
                return DropReason.VIOLATION
            self.mode = Mode.NORMAL
            self.emit(events.Paired(self.info.name, self.info.addr, self.info.code, restored=True,
                                    verified=self.info.verified, balance=self.ledger.balance))
        elif self.mode is Mode.HANDING_BACK:
            return DropReason.UNEXPECTED
        self._send(wire.Resumed())
        return None

    def _on_resumed(self, now: float) -> DropReason | None:
        if self.mode is not Mode.HANDING_BACK:
            return None
        self.mode = Mode.NORMAL
        self.handback_at = None
        self.emit(events.PeerRestarted(self.info.name, self.info.addr, self.info.code, self.info.verified))
        self._fill_window(now)
        return None

    def _quiet(self) -> int:
        return int(self.mode is Mode.NORMAL and not self.ledger.pending())

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
        if self.closed:
            return
        if not self.left and not self.silent and now >= self.last_heard + SILENT_AFTER:
            self.silent = True
            self.emit(events.PeerSilent(self.info.name))
        if self.left:
            return
        if now >= self.next_ping:
            self._ping(now)
        if self.handback_at is not None and now >= self.handback_at:
            self._send(self._handback)
            self.handback_retries += 1
            self.handback_at = now + self.rtt.backoff(self.handback_retries)
        for entry in self.ledger.pending():
            if entry.status is Status.PENDING and now >= entry.at + IN_DOUBT_AFTER:
                self.ledger.mark_in_doubt(entry.seq)
                self.emit(events.PaymentInDoubt(entry.seq, entry.amount))
        for seq, flight in list(self.flights.items()):
            if now >= flight.next_at:
                entry = self.ledger.outgoing(seq)
                assert entry is not None
                flight.retries += 1
                flight.next_at = now + self.rtt.backoff(flight.retries)
                self._send(wire.Pay(seq, self.ledger.floor(), entry.amount, entry.memo))
        self._fill_window(now)

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
        self._send(wire.Ping(self.ping_id, self._quiet(), self.ledger.out_settled, self.ledger.in_settled,
                             self.ledger.digest()))
        self.next_ping = now + (self.probe_spacing if now < self.probe_until else PING_INTERVAL)

    def next_timeout(self) -> float | None:
        if self.closed:
            return None
        times = [] if self.silent or self.left else [self.last_heard + SILENT_AFTER]
        if self.left:
            return min(times, default=None)
        times.append(self.next_ping)
        if self.handback_at is not None:
            times.append(self.handback_at)
        times += [f.next_at for f in self.flights.values()]
        times += [e.at + IN_DOUBT_AFTER for e in self.ledger.pending() if e.status is Status.PENDING]
        return min(times)
