"""The asyncio runtime around one :class:`~lanpay.core.peer.Peer`: it only pumps.

Every input (a datagram on either socket, a timer, a payment asked for) is handed
to the core with the loop's clock; right after, whatever the core wants sent is
sent, its events are passed on, and the single timer is re-armed at the core's
next deadline.  No protocol decision is taken here: a datagram is never dropped,
delayed or rewritten by the node, because the core is what decides.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence

from lanpay.core import wire
from lanpay.core.events import Event, PaymentConfirmed, PaymentRejected, PaymentsVoided
from lanpay.core.peer import BROADCAST, Config, HistoryEntry, Peer, Status
from lanpay.transport import (
    Address,
    Batch,
    DatagramPipe,
    make_discovery_socket,
    make_session_socket,
    open_pipe,
)

log = logging.getLogger(__name__)

EventSink = Callable[[Event], None]
PeerFactory = Callable[..., Peer]

#: How long the node keeps serving the core's timers after saying BYE.
CLOSE_LINGER = 0.3


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when uvloop is installed (``pip install lanpay[fast]``), else asyncio's.

    For ``asyncio.Runner(loop_factory=new_event_loop)``.  uvloop is optional:
    docs/PERFORMANCE.md has the measurements (tools/bench.py's "pay -> Sent on
    uvloop" row), and the node behaves the same on either loop.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Node:
    """Owns the sockets, the clock and the one timer of a running peer."""

    def __init__(
        self,
        config: Config,
        targets: Sequence[str],
        discovery_port: int,
        on_event: EventSink,
        rng: random.Random | None = None,
        make_peer: PeerFactory = Peer,
    ) -> None:
        self._config = config
        self._make_peer = make_peer
        self._targets = tuple(targets)
        self._discovery_port = discovery_port
        self._on_event = on_event
        self._rng = rng if rng is not None else random.SystemRandom()
        self._loop = asyncio.get_running_loop()
        self._peer: Peer | None = None
        self._session: DatagramPipe | None = None
        self._discovery: DatagramPipe | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._waiters: dict[int, asyncio.Future[Event]] = {}
        self._idle: asyncio.Event | None = None    # while close() waits for payments to finish
        self._closed = False
        # -v tells every event, -vv every datagram as well: decided once, not per datagram.
        self._log_events = log.isEnabledFor(logging.INFO)
        self._log_datagrams = log.isEnabledFor(logging.DEBUG)
        # The core speaks the loop's monotonic clock; people read the wall clock.
        self._wall_offset = time.time() - self._loop.time()

    async def start(
        self,
        session_sock: socket.socket | None = None,
        discovery_sock: socket.socket | None = None,
    ) -> None:
        """Open both sockets, create the core and let it announce itself at once.

        Sockets may be passed in (tests bind them to loopback); otherwise they are
        made here and an OSError (e.g. a port held by a non-sharing program)
        propagates to the caller as a start-up failure.  The core learns the
        session port it announces; a configuration it refuses (a UserError)
        closes the sockets again.
        """
        if session_sock is None:
            session_sock = make_session_socket()
        try:
            if discovery_sock is None:
                discovery_sock = make_discovery_socket(self._discovery_port)
            config = dataclasses.replace(self._config, session_port=session_sock.getsockname()[1])
            self._peer = self._make_peer(config, rng=self._rng, now=self._loop.time())
        except Exception:
            session_sock.close()
            if discovery_sock is not None:
                discovery_sock.close()
            raise
        self._session = open_pipe(self._loop, session_sock, self._received_batch, "session")
        self._discovery = open_pipe(self._loop, discovery_sock, self._received_batch, "discovery")
        self._pump(self._loop.time())

    @property
    def peer(self) -> Peer:
        """The core, for reading its state; all input must go through the node."""
        if self._peer is None:
            raise RuntimeError("node not started")
        return self._peer

    @property
    def session_address(self) -> Address | None:
        """The local address of the session socket (useful in logs and tests)."""
        return self._session.local_address if self._session else None

    @property
    def send_errors(self) -> int:
        """Datagrams the kernel refused; each counts as a loss the core recovers from."""
        pipes = (self._session, self._discovery)
        return sum(p.send_errors for p in pipes if p is not None)

    def status(self) -> Status:
        """The core's status snapshot."""
        return self.peer.status()

    def history(self) -> list[HistoryEntry]:
        """The core's payment history."""
        return self.peer.history()

    def wall_time(self, at: float) -> float:
        """Convert a time on the loop's clock to seconds since the epoch, for display."""
        return at + self._wall_offset

    # -- payments -------------------------------------------------------------

    def send_payment(self, cents: int, memo: str = "") -> tuple[int, asyncio.Future[Event]]:
        """Start a payment; return its seq and a future for its outcome.

        The future resolves to PaymentConfirmed, PaymentRejected, or PaymentsVoided (the
        counterpart left, or was replaced, before it arrived).  User errors
        (NotPaired, PeerUnavailable, OverLimit, AmountError) are raised by the
        core and pass straight through: nothing was sent.
        """
        now = self._loop.time()
        seq = self.peer.pay(cents, memo, now)
        outcome: asyncio.Future[Event] = self._loop.create_future()
        self._waiters[seq] = outcome
        self._pump(now)
        return seq, outcome

    def accept(self, code: str | None = None) -> None:
        """The user consents to a hand-back; a UserError says there is nothing to accept."""
        now = self._loop.time()
        self.peer.accept(now, code)
        self._pump(now)

    async def pay(self, cents: int, memo: str = "") -> Event:
        """Pay and wait for the outcome, however long it takes (in doubt is not final)."""
        _, outcome = self.send_payment(cents, memo)
        return await outcome

    # -- closing --------------------------------------------------------------

    async def close(self, grace: float = 3.0) -> None:
        """Leave politely: let in-flight payments finish, say BYE, release the sockets."""
        if self._closed:
            return
        if self._peer is not None and self._session is not None:
            if not self._peer.idle and grace > 0:
                self._idle = asyncio.Event()
                try:
                    await asyncio.wait_for(self._idle.wait(), grace)
                except asyncio.TimeoutError:
                    log.info("closing with payments still unconfirmed")
            self._peer.close(self._loop.time())
            self._pump(self._loop.time())
            await self._linger()
        self._closed = True
        self._cancel_timer()
        for pipe in (self._session, self._discovery):
            if pipe is not None:
                pipe.close()
        for outcome in self._waiters.values():
            outcome.cancel()
        self._waiters.clear()

    def stop_waiting(self) -> None:
        """End :meth:`close`'s wait for payments now (the user would rather not wait)."""
        if self._idle is not None:
            self._idle.set()

    async def _linger(self) -> None:
        """Serve the core's timers a moment longer so a lost BYE can be repeated."""
        deadline = self._loop.time() + CLOSE_LINGER
        while self._timer_at is not None and self._timer_at <= deadline:
            if self._loop.time() >= deadline:
                break
            await asyncio.sleep(max(0.0, self._timer_at - self._loop.time()) + 0.001)

    # -- the pump -------------------------------------------------------------

    def _received(self, data: bytes, addr: Address) -> None:
        """A datagram from either socket: the core decides what it means."""
        self._received_batch([(data, addr)])

    def _received_batch(self, batch: Batch) -> None:
        """Datagrams that were waiting together: all fed at one time, then one pump."""
        if self._closed or self._peer is None:
            return
        now = self._loop.time()
        if self._log_datagrams:
            for data, addr in batch:
                self._receive_logged(self._peer, data, addr, now)
        else:
            for data, addr in batch:
                self._peer.receive_datagram(data, addr, now)
        self._pump(now)

    @staticmethod
    def _receive_logged(peer: Peer, data: bytes, addr: Address, now: float) -> None:
        """One datagram into the core, and a log line saying what the core made of it."""
        before = dict(peer.drops)
        peer.receive_datagram(data, addr, now)
        dropped = [r.value for r, n in peer.drops.items() if n != before.get(r, 0)]
        log.debug("received %s, %d bytes, from %s:%d: %s", wire.kind_of(data), len(data), addr[0], addr[1],
                  f"dropped ({', '.join(dropped)})" if dropped else "accepted")

    def _on_timer(self) -> None:
        """The one timer fired: the core's timers run only once due, and never see a time before
        their deadline (a loop may fire a little early).  A timer left armed for a deadline
        the core has since moved later finds nothing due: it only re-arms."""
        self._timer = None
        armed, self._timer_at = self._timer_at, None
        if self._closed or self._peer is None:
            return
        peer = self._peer
        now = self._loop.time()
        due = peer.next_timeout()
        if due is not None and due <= max(now, armed or 0.0):
            now = max(now, due)
            peer.handle_timeout(now)
            self._pump(now)
        else:
            self._arm_at(due)             # the core was given nothing: only the timer moves

    def _pump(self, now: float) -> None:
        """After any input: send what is due, pass events on, re-arm the timer."""
        peer = self.peer
        self._flush(peer, now)
        self._drain_events(peer)
        self._arm_timer(peer)
        if self._idle is not None and peer.idle:
            self._idle.set()

    def _flush(self, peer: Peer, now: float) -> None:
        """Send every datagram the core has ready; BROADCAST fans out to all targets."""
        session = self._session
        assert session is not None
        for data, dest in peer.datagrams_to_send(now):
            if self._log_datagrams:
                log.debug("sending %s, %d bytes, to %s", wire.kind_of(data), len(data),
                          "every broadcast target" if dest is BROADCAST else f"{dest[0]}:{dest[1]}")
            if dest is BROADCAST:
                for host in self._targets:
                    session.send(data, (host, self._discovery_port))
            else:
                session.send(data, dest)

    def _drain_events(self, peer: Peer) -> None:
        """Hand every event to the sink first, then settle the matching payment."""
        while (event := peer.next_event()) is not None:
            if self._log_events:
                log.info("event %r", event)        # repr escapes what a terminal would act on
            try:
                self._on_event(event)
            except Exception:  # a display bug must not stop the protocol
                log.exception("event handler failed on %r", event)
            if isinstance(event, (PaymentConfirmed, PaymentRejected)):
                outcome = self._waiters.pop(event.seq, None)
                if outcome is not None and not outcome.done():
                    outcome.set_result(event)
            elif isinstance(event, PaymentsVoided) and not event.restart:
                for seq in [s for s in self._waiters if event.first <= s <= event.last]:
                    outcome = self._waiters.pop(seq)
                    if not outcome.done():
                        outcome.set_result(event)

    def _arm_timer(self, peer: Peer) -> None:
        """Keep one timer, at or before the core's next deadline.

        A deadline that moved later keeps the timer already armed: it fires, finds
        nothing due and re-arms then.  While payments flow (each moves the
        retransmission deadline on) that is one loop timer per round trip's worth
        of them, not a cancel and a new timer for each datagram.
        """
        self._arm_at(peer.next_timeout())

    def _arm_at(self, when: float | None) -> None:
        armed = self._timer_at
        if self._timer is not None and armed is not None and when is not None and armed <= when:
            return
        self._cancel_timer()
        if when is not None and not self._closed:
            self._timer_at = when
            self._timer = self._loop.call_at(when, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None
