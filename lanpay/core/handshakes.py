"""The handshakes a peer runs: which hello to answer, where each handshake
message goes, and what happens when one is refused, given up or finished late.

Kept apart from the facade so the rules for starting, routing and ending a
handshake read in one place.  The ``Matchmaker`` owns the handshake under way,
the last one finished, one given up after revealing (its peer may still have
finished it), and the cooldowns that keep a failed incarnation at a distance.
It reaches the rest of the peer (session, probe, peer table, outbox, events,
relationship state) through the small ``Facade`` surface the facade provides.
"""

from __future__ import annotations

import enum
import random
from typing import Protocol

from . import crypto, events, matching, pairing, wire
from .announcer import Budget
from .errors import DropReason
from .peers import PeerRecord, PeerTable
from .restart import Probe
from .session import Mode, Session

__all__ = ["COOLDOWN", "MAX_BLOCKED", "REFUSED_COOLDOWN", "TRANSITIONS", "Facade", "Matchmaker", "State"]

COOLDOWN = 3.0          # after a failed handshake, before trying that incarnation again
REFUSED_COOLDOWN = 10.0
MAX_BLOCKED = 64        # cooldowns and past partners kept: forged incarnations cost bounded memory


class State(enum.Enum):
    """Where the relationship stands; every change goes through ``TRANSITIONS``."""

    LOOKING = "looking"
    PAIRING = "pairing"          # first handshake under way
    RESTORING = "restoring"      # paired, waiting for the counterpart's record of us
    PAIRED = "paired"
    REPAIRING = "repairing"      # paired; the counterpart restarted and is being re-paired
    CLOSED = "closed"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.LOOKING: frozenset({State.PAIRING, State.CLOSED}),
    State.PAIRING: frozenset({State.LOOKING, State.RESTORING, State.PAIRED, State.CLOSED}),
    State.RESTORING: frozenset({State.PAIRED, State.CLOSED}),
    State.PAIRED: frozenset({State.REPAIRING, State.CLOSED}),
    State.REPAIRING: frozenset({State.PAIRED, State.CLOSED}),
    State.CLOSED: frozenset(),
}


class Facade(Protocol):
    """What the handshakes need from the peer around them; ``peer.Peer`` provides it."""

    me: pairing.Identity
    rng: random.Random
    state: State
    session: Session | None
    probe: Probe | None
    table: PeerTable
    budget: Budget

    @property
    def terms(self) -> matching.Terms: ...
    def send(self, data: bytes, addr: tuple[str, int]) -> None: ...
    def emit(self, event: events.Event) -> None: ...
    def move(self, new: State) -> None: ...
    def candidates(self, now: float) -> list[PeerRecord]: ...
    def conflicted(self, name: str, group: list[PeerRecord]) -> bool: ...
    def complete(self, hs: pairing.Handshake, now: float) -> None: ...


class Matchmaker:
    """Starts, routes and ends the peer's handshakes; the facade turns a finished one into a session."""

    def __init__(self, peer: Facade) -> None:
        self.peer = peer
        self.hs: pairing.Handshake | None = None
        self.done_hs: pairing.Handshake | None = None
        self.late_hs: pairing.Handshake | None = None     # revealed, then gave up: the peer may have finished it
        self.cooldown: dict[int, float] = {}

    # ---------------------------------------------------------------- cooldowns
    def cool(self, incarnation: int, until: float) -> None:
        """Leave this incarnation alone until ``until``; the map stays bounded."""
        if len(self.cooldown) >= MAX_BLOCKED:
            del self.cooldown[min(self.cooldown, key=self.cooldown.__getitem__)]
        self.cooldown[incarnation] = until

    def prune(self, now: float) -> None:
        """Forget cooldowns that have run out."""
        self.cooldown = {i: t for i, t in self.cooldown.items() if t > now}

    # ---------------------------------------------------------------- starting
    def initiate(self, rec: PeerRecord, resuming: bool, now: float) -> None:
        peer = self.peer
        self.hs, hello = pairing.initiate(peer.me, rec, resuming, peer.rng, now)
        peer.send(hello, rec.addr)
        if peer.state is State.LOOKING:
            peer.move(State.PAIRING)

    def on_hello(self, msg: wire.Hello, addr: tuple[str, int], now: float) -> DropReason | None:
        peer = self.peer
        if msg.sender_inc == peer.me.incarnation:
            return DropReason.OWN
        if msg.target_inc != peer.me.incarnation:
            return DropReason.NOT_FOR_US
        hs = self.hs
        if hs is not None and not hs.initiator and hs.peer_inc == msg.sender_inc:
            if msg.commitment != hs.commitment:
                return DropReason.UNEXPECTED
            peer.send(hs.last_sent, addr)      # our reply was lost
            return None
        if peer.state is State.LOOKING:
            return self._hello_while_looking(msg, addr, now)
        if peer.probe is not None and msg.sender_inc == peer.probe.rec.incarnation:
            if not peer.probe.passed or self.hs is not None or peer.me.incarnation < msg.sender_inc:
                return DropReason.UNEXPECTED                  # it will send again
            self._respond(msg, addr, resuming=True, now=now)
            return None
        if peer.state in (State.PAIRED, State.REPAIRING, State.RESTORING) and peer.session is not None:
            return self._hello_while_paired(peer.session, msg, addr, now)
        return DropReason.UNEXPECTED                         # busy with another handshake

    def _hello_while_paired(self, session: Session, msg: wire.Hello, addr: tuple[str, int],
                            now: float) -> DropReason | None:
        if msg.name == session.info.name and msg.sender_inc != session.info.incarnation:
            return DropReason.UNEXPECTED                  # perhaps our counterpart restarted: its announce decides
        if msg.sender_inc == session.info.incarnation:
            if self.peer.state is State.PAIRED and self.hs is None and session.window.highest < 0:
                # It never got our confirmation and gave up; nothing it sealed reached us. Start again,
                # still handing the relationship back if that is what the lost session was for.
                self._respond(msg, addr, resuming=session.mode is Mode.HANDING_BACK, now=now)
                return None
            return DropReason.UNEXPECTED
        self._refuse(msg, addr, wire.R_TAKEN, now)
        return None

    def _hello_while_looking(self, msg: wire.Hello, addr: tuple[str, int], now: float) -> DropReason | None:
        peer = self.peer
        if msg.sender_inc > peer.me.incarnation:
            return DropReason.UNEXPECTED                     # we initiate with this one, not it
        if not matching.accepts(peer.terms, msg.name, msg.wants):
            self._refuse(msg, addr, wire.R_NOT_WANTED, now)
            return None
        if bool(msg.flags & wire.F_CODE) != bool(peer.me.code):
            self._refuse(msg, addr, wire.R_CODE_MISMATCH, now)
            return None
        if matching.cooling(self.cooldown, msg.sender_inc, now):
            return DropReason.RATE
        rivals = matching.hello_rivals(msg.name, msg.sender_inc, peer.candidates(now), peer.table.alive(now))
        if rivals:
            peer.conflicted(msg.name, rivals)
            return DropReason.UNEXPECTED
        self._respond(msg, addr, resuming=False, now=now)
        peer.move(State.PAIRING)
        return None

    def _respond(self, msg: wire.Hello, addr: tuple[str, int], resuming: bool, now: float) -> None:
        self.hs, reply = pairing.respond(self.peer.me, msg, addr, resuming, self.peer.rng, now)
        self.peer.send(reply, addr)

    def _refuse(self, msg: wire.Hello, addr: tuple[str, int], reason: int, now: float) -> None:
        peer = self.peer
        if peer.budget.spend(now):
            refusal = wire.Refuse(peer.me.incarnation, msg.sender_inc, reason, peer.me.name)
            peer.send(wire.encode(refusal), addr)

    # ---------------------------------------------------------------- routing
    def on_handshake(self, msg: wire.Message, addr: tuple[str, int], now: float) -> DropReason | None:
        """A Reply, Reveal, Confirm or Refuse addressed to us: to the handshake it belongs to."""
        hs = self.hs
        if isinstance(msg, wire.Reveal) and hs is None and self.done_hs is not None:
            if msg.sender_inc == self.done_hs.peer_inc and not self.done_hs.initiator:
                self.peer.send(self.done_hs.last_sent, addr)   # our confirmation was lost
                return None
        if hs is None or msg.sender_inc != hs.peer_inc:  # type: ignore[attr-defined]
            return DropReason.NOT_FOR_US
        first = (isinstance(msg, wire.Reply) and hs.state is pairing.HsState.HELLO_SENT) or \
            (isinstance(msg, wire.Reveal) and hs.state is pairing.HsState.REPLY_SENT)
        if self.peer.state is State.PAIRING and first and self._rival(hs, now):
            self.abandon(hs, now, COOLDOWN)       # before we commit to it: a namesake showed up
            return None
        return self._advance(hs, msg, addr, now)

    def _advance(self, hs: pairing.Handshake, msg: wire.Message, addr: tuple[str, int],
                 now: float) -> DropReason | None:
        """Take the handshake one step; only a failure its own peer proved ends it."""
        try:
            match msg:
                case wire.Reply() if hs.initiator:
                    self.peer.send(pairing.on_reply(hs, msg, now), hs.peer_addr)
                case wire.Reveal() if not hs.initiator:
                    self.peer.send(pairing.on_reveal(hs, msg), addr)
                case wire.Confirm() if hs.initiator:
                    pairing.on_confirm(hs, msg)
                case wire.Refuse() if hs.initiator:
                    self._on_refuse(hs, msg, now)
                    return None
                case _:
                    return DropReason.UNEXPECTED
        except pairing.HandshakeError as exc:
            if not exc.fatal:
                return DropReason.VIOLATION
            self._handshake_failed(hs, exc, addr, now)
            return None
        if hs.state is pairing.HsState.DONE:
            self.peer.complete(hs, now)
        return None

    def _rival(self, hs: pairing.Handshake, now: float) -> bool:
        """Another live peer answers to the same name: pair with neither, and say so."""
        peer = self.peer
        rivals = matching.handshake_rivals(hs.peer_name, hs.peer_inc, peer.candidates(now), peer.table.alive(now))
        return peer.conflicted(hs.peer_name, rivals) if rivals else False

    def on_sealed(self, msg: wire.Sealed, now: float) -> None:
        """Sealed traffic may finish a handshake: the one under way, or one given up on."""
        hs = self.hs
        if hs is not None and hs.initiator and hs.keys is not None and msg.session_id == hs.keys.session_id:
            pairing.confirm_implicitly(hs)     # the responder already uses the new keys
            if hs.state is pairing.HsState.DONE:
                self.peer.complete(hs, now)
        late = self.late_hs
        if late is not None and late.keys is not None and msg.session_id == late.keys.session_id \
                and crypto.open_sealed(late.keys.recv_key, msg.counter, msg.header, msg.ciphertext) is not None:
            self._finish_late(late, now)          # it opens: the peer really holds these keys

    # ---------------------------------------------------------------- ending
    def _on_refuse(self, hs: pairing.Handshake, msg: wire.Refuse, now: float) -> None:
        """Tell the user at once, but let the handshake run to its deadline: a refusal
        is unauthenticated, and a forged one must not stop a genuine pairing."""
        if hs.refusal:
            return
        hs.refusal = wire.REFUSE_TEXT.get(msg.reason, "refused")
        event: events.Event
        if msg.reason == wire.R_BAD_CODE:
            event = events.PairingFailed(hs.peer_name, hs.refusal)
        else:
            event = events.PairingRefused(hs.peer_name, hs.refusal)
        self.peer.emit(event)

    def _handshake_failed(self, hs: pairing.Handshake, exc: pairing.HandshakeError, addr: tuple[str, int],
                          now: float) -> None:
        peer = self.peer
        if exc.bad_code and not hs.initiator:
            refusal = wire.Refuse(peer.me.incarnation, hs.peer_inc, wire.R_BAD_CODE, peer.me.name)
            peer.send(wire.encode(refusal), addr)
        peer.emit(events.PairingFailed(hs.peer_name, exc.reason))
        self.abandon(hs, now, COOLDOWN)

    def abandon(self, hs: pairing.Handshake, now: float, cooldown: float) -> None:
        peer = self.peer
        self.prune(now)
        self.cool(hs.peer_inc, now + cooldown)
        self.hs = None
        if peer.state is State.PAIRING:
            peer.move(State.LOOKING)
        elif peer.state is State.REPAIRING:
            peer.probe = None
            peer.move(State.PAIRED)

    def completed(self, hs: pairing.Handshake) -> None:
        """``hs`` finished: nothing under way, and nothing given up on is worth taking up again."""
        self.hs, self.done_hs, self.late_hs = None, hs, None

    def _finish_late(self, hs: pairing.Handshake, now: float) -> None:
        """Sealed traffic under keys of a handshake we gave up on: the responder did finish it.

        Taking it up again keeps the two sides from ending up one paired, one not,
        after a loss that outlasted the handshake deadline.
        """
        peer = self.peer
        self.late_hs = None
        if self.hs is not None:
            return
        if peer.state is State.LOOKING and not hs.handing_back:
            peer.move(State.PAIRING)
            peer.complete(hs, now)
        elif peer.state is State.PAIRED and hs.handing_back and peer.session is not None \
                and peer.session.info.name == hs.peer_name:
            peer.complete(hs, now)

    def timer(self, now: float) -> None:
        """Retransmit, or give up at the deadline (keeping a handshake we revealed in:
        the responder may have finished it, and its sealed traffic will say so)."""
        hs = self.hs
        if hs is None:
            return
        again = hs.timer(now)
        if again is not None:
            self.peer.send(again, hs.peer_addr)
        if hs.state is pairing.HsState.FAILED:
            if hs.initiator and hs.keys is not None:
                self.late_hs = hs
            if not hs.refusal:
                self.peer.emit(events.PairingFailed(hs.peer_name, f"{hs.peer_name} stopped answering"))
            self.abandon(hs, now, REFUSED_COOLDOWN if hs.refusal else COOLDOWN)
