"""The handshakes under way: starting them, routing their messages, ending them.

Several handshakes may run at once (one per peer we initiate with, one per
hello we answer), so a forged hello or reply can never take the place of the
real one: it only starts work of its own, which times out unnoticed.  This
module holds the mechanics only; whom to pair with, and what a finished
handshake becomes, is decided by the facade, which drains ``out`` (datagrams)
and ``events`` after each call and gets finished handshakes as return values.
"""

from __future__ import annotations

import enum
import random
from collections import OrderedDict
from collections.abc import Callable

from . import crypto, events, pairing, wire
from .errors import DropReason
from .peers import PeerRecord

__all__ = ["COOLDOWN", "MAX_ATTEMPTS", "MAX_BLOCKED", "REFUSED_COOLDOWN", "Matchmaker"]

COOLDOWN = 3.0          # after a failed handshake, before trying that incarnation again
REFUSED_COOLDOWN = 10.0
MAX_BLOCKED = 64        # cooldowns and past partners kept: forged incarnations cost bounded memory
MAX_ATTEMPTS = 32       # handshakes under way at once; the oldest answered hello goes first
MAX_LATE = 4            # handshakes given up after revealing, kept in case the peer finished them

class Admission(enum.Enum):
    """The facade's word on committing to a handshake (revealing, or confirming)."""

    YES = "yes"
    LATER = "later"          # not yet (e.g. a restart probe still runs): drop this message, keep the handshake
    NO = "no"                # drop the handshake


Admit = Callable[[pairing.Handshake], Admission]
MAX_BRANCHES = 2        # replies to one hello we reveal to: a forged one cannot shut out the real one


class Matchmaker:
    """The handshakes under way, the last finished ones, and the cooldowns."""

    def __init__(self) -> None:
        self.attempts: dict[int, pairing.Handshake] = {}     # by serial number, oldest first
        self._serial = 0
        self.opened: set[int] = set()       # responder attempts whose commitment a Reveal opened
        self.done: dict[int, pairing.Handshake] = {}        # peer incarnation -> its finished handshake
        self.late: list[pairing.Handshake] = []
        self.cooldown: dict[int, float] = {}
        self.impostors: dict[int, float] = {}          # those of the cooldowns set for an impostor
        self.out: list[tuple[bytes, tuple[str, int]]] = []
        self.events: list[events.Event] = []
        self._told: OrderedDict[tuple[int, str], None] = OrderedDict()   # (peer incarnation, reason) told

    # ---------------------------------------------------------------- queries
    def _tell(self, hs: pairing.Handshake, kind: type, reason: str) -> None:
        """Tell how a handshake of ours failed or was refused, once per peer process and reason:
        lanpay keeps trying, and the same words again every few seconds (a namesake that stays,
        a peer that stays silent) would only push the user's screen away."""
        fact = (hs.peer_inc, reason)
        if fact in self._told:
            return
        while len(self._told) >= MAX_BLOCKED:
            self._told.popitem(last=False)
        self._told[fact] = None
        self.events.append(kind(hs.peer_name, reason))

    def __bool__(self) -> bool:
        return bool(self.attempts)

    def with_peer(self, incarnation: int) -> list[pairing.Handshake]:
        return [hs for hs in self.attempts.values() if hs.peer_inc == incarnation]

    def initiators(self) -> int:
        return sum(hs.initiator for hs in self.attempts.values())

    def initiating(self, incarnation: int) -> bool:
        return any(hs.initiator for hs in self.with_peer(incarnation))

    # ---------------------------------------------------------------- cooldowns
    def cool(self, incarnation: int, until: float) -> None:
        """Leave this incarnation alone until ``until``; the map stays bounded."""
        if incarnation not in self.cooldown and len(self.cooldown) >= MAX_BLOCKED:
            oldest = min(self.cooldown, key=self.cooldown.__getitem__)
            del self.cooldown[oldest]
            self.impostors.pop(oldest, None)
        self.cooldown[incarnation] = max(until, self.cooldown.get(incarnation, 0.0))

    def cool_impostor(self, incarnation: int, until: float) -> None:
        """A claim to be our counterpart restarted, made while it still answers: a cooldown that,
        unlike one for a failed or refused handshake, also holds back the claimant's own hellos."""
        self.cool(incarnation, until)
        self.impostors[incarnation] = max(until, self.impostors.get(incarnation, 0.0))

    def cooling(self, incarnation: int, now: float) -> bool:
        return self.cooldown.get(incarnation, 0.0) > now

    def impostor(self, incarnation: int, now: float) -> bool:
        return self.impostors.get(incarnation, 0.0) > now

    def prune(self, now: float) -> None:
        """Forget cooldowns that have run out."""
        self.cooldown = {i: t for i, t in self.cooldown.items() if t > now}
        self.impostors = {i: t for i, t in self.impostors.items() if t > now}

    # ---------------------------------------------------------------- starting
    def initiate(self, me: pairing.Identity, rec: PeerRecord, resuming: bool, rng: random.Random,
                 now: float) -> None:
        if self.initiating(rec.incarnation):
            return
        hs, hello = pairing.initiate(me, rec, resuming, rng, now)
        self._add(hs)
        self.out.append((hello, rec.addr))

    def answered(self, msg: wire.Hello, addr: tuple[str, int]) -> bool:
        """A hello we are already answering: send our reply again (it was lost)."""
        for hs in self.with_peer(msg.sender_inc):
            if not hs.initiator and hs.commitment == msg.commitment:
                self.out.append((hs.last_sent, addr))
                return True
        return False

    def respond(self, me: pairing.Identity, msg: wire.Hello, addr: tuple[str, int], resuming: bool,
                rng: random.Random, now: float) -> None:
        hs, reply = pairing.respond(me, msg, addr, resuming, rng, now)
        self._add(hs)
        self.out.append((reply, addr))

    def _add(self, hs: pairing.Handshake) -> None:
        """Make room by dropping the oldest answered Hello that no Reveal has opened yet: a
        flood of forged Hellos (fresh commitments, the real initiator's incarnation and address)
        then pushes out only its own kind, not the attempt whose initiator has shown it holds the
        key (its Reveal, held back while we waited, is sent again and must still find it)."""
        while len(self.attempts) >= MAX_ATTEMPTS:
            responders = [k for k, h in self.attempts.items() if not h.initiator]
            unopened = [k for k in responders if k not in self.opened]
            oldest = (unopened or responders or list(self.attempts))[0]
            del self.attempts[oldest]
            self.opened.discard(oldest)
        self._serial += 1
        self.attempts[self._serial] = hs

    def _forget(self, hs: pairing.Handshake) -> None:
        for key in [k for k, h in self.attempts.items() if h is hs]:
            del self.attempts[key]
            self.opened.discard(key)

    def drop(self, hs: pairing.Handshake, now: float, cooldown: float = 0.0) -> None:
        self._forget(hs)
        if cooldown:
            self.cool(hs.peer_inc, now + cooldown)

    def clear(self) -> None:
        """A handshake became the relationship: nothing else under way is wanted."""
        self.attempts.clear()
        self.opened.clear()
        self.late.clear()

    # ---------------------------------------------------------------- routing
    def route(self, msg: wire.Message, addr: tuple[str, int], now: float,
              admit: Admit) -> tuple[DropReason | None, pairing.Handshake | None]:
        """A Reply, Reveal, Confirm or Refuse addressed to us: to the handshake it belongs to.

        ``admit(hs)`` is asked before we commit to a handshake (reveal or confirm); a
        refused one is dropped.  Returns a drop reason, and the handshake if it finished.
        """
        match msg:
            case wire.Reply():
                return self._on_reply(msg, now, admit)
            case wire.Reveal():
                return self._on_reveal(msg, addr, admit, now)
            case wire.Confirm():
                return self._on_confirm(msg, addr)
            case wire.Refuse():
                return self._on_refuse(msg, addr)
        return DropReason.UNEXPECTED, None

    def _on_reply(self, msg: wire.Reply, now: float, admit: Admit) -> tuple[DropReason | None, None]:
        mine = [hs for hs in self.with_peer(msg.sender_inc) if hs.initiator and hs.nonce_i == msg.hello_nonce]
        if not mine:
            return DropReason.NOT_FOR_US, None
        first = mine[0]
        try:
            if first.state is pairing.HsState.HELLO_SENT:
                verdict = admit(first)
                if verdict is not Admission.YES:
                    return self._refused(first, verdict, now), None
                self.out.append((pairing.on_reply(first, msg, now), first.peer_addr))
                return None, None
            same = [hs for hs in mine if (hs.pub_r, hs.nonce_r, hs.share_r) == (msg.public_key, msg.nonce, msg.share)]
            if same:
                self.out.append((same[0].last_sent, first.peer_addr))      # our reveal was lost
                return None, None
            if len(mine) >= MAX_BRANCHES:
                return DropReason.UNEXPECTED, None
            branched = pairing.branch(first, msg, now)
        except pairing.HandshakeError:
            return DropReason.VIOLATION, None
        if branched is None:
            return DropReason.UNEXPECTED, None
        twin, reveal = branched
        self._add(twin)
        self.out.append((reveal, first.peer_addr))
        return None, None

    def _on_reveal(self, msg: wire.Reveal, addr: tuple[str, int], admit: Admit,
                   now: float) -> tuple[DropReason | None, pairing.Handshake | None]:
        done = self.done.get(msg.sender_inc)
        if done is not None and not done.initiator and pairing.commitment_of(msg, done.nonce_i) == done.commitment:
            self.out.append((done.last_sent, addr))       # our confirmation was lost
            return None, None
        for key, hs in list(self.attempts.items()):
            if hs.peer_inc != msg.sender_inc or hs.initiator or pairing.commitment_of(msg, hs.nonce_i) != hs.commitment:
                continue
            self.opened.add(key)
            verdict = admit(hs)
            if verdict is not Admission.YES:
                return self._refused(hs, verdict, now), None
            try:
                confirm = pairing.on_reveal(hs, msg)
            except pairing.HandshakeError as exc:
                return self._bad_reveal(hs, exc, addr, now), None
            hs.peer_addr = addr         # where its authenticated Reveal came from: the session's address
            self.out.append((confirm, addr))
            return None, hs
        return DropReason.NOT_FOR_US, None

    def _refused(self, hs: pairing.Handshake, verdict: Admission, now: float) -> DropReason | None:
        if verdict is Admission.LATER:
            if not hs.initiator:
                hs.deferred = True                # our Reply goes again once we may say yes (recall)
            return DropReason.UNEXPECTED          # it is sent again; by then we may say yes
        self.drop(hs, now, COOLDOWN)
        return None

    def recall(self, admit: Admit) -> bool:
        """Responder attempts whose Reveal admission put off: where it now says yes, our Reply
        goes again, once, and the initiator answers a repeated Reply with its Reveal at once
        (rather than on its own timer).  Returns whether any attempt still waits."""
        waiting = False
        for hs in self.attempts.values():
            if not hs.deferred:
                continue
            if admit(hs) is Admission.YES:
                hs.deferred = False
                self.out.append((hs.last_sent, hs.peer_addr))
            else:
                waiting = True
        return waiting

    def _bad_reveal(self, hs: pairing.Handshake, exc: pairing.HandshakeError, addr: tuple[str, int],
                    now: float) -> DropReason | None:
        """The initiator revealed, but the keys disagree: a different --code, or a reveal meant
        for a forged reply.  Say so once; the handshake still runs to its deadline."""
        if exc.fatal:
            self._tell(hs, events.PairingFailed, exc.reason)
            self.drop(hs, now, COOLDOWN)
            return None
        if not exc.bad_code:
            return DropReason.VIOLATION
        if not hs.bad_tag:                    # a typo in the code is a user's mistake, not an attack
            hs.bad_tag = True
            refusal = wire.Refuse(hs.me.incarnation, hs.peer_inc, wire.R_BAD_CODE, hs.me.name)
            self.out.append((wire.encode(refusal), addr))
            self._tell(hs, events.PairingFailed, exc.reason)
        return None

    def _on_confirm(self, msg: wire.Confirm, addr: tuple[str, int]) -> tuple[DropReason | None, pairing.Handshake | None]:
        mine = [hs for hs in self.with_peer(msg.sender_inc) if hs.initiator]
        for hs in mine:
            try:
                pairing.on_confirm(hs, msg)
            except pairing.HandshakeError:
                continue
            hs.peer_addr = addr         # the first authenticated word of the handshake: where the session goes
            return None, hs
        return (DropReason.VIOLATION if mine else DropReason.NOT_FOR_US), None

    def _on_refuse(self, msg: wire.Refuse, addr: tuple[str, int]) -> tuple[DropReason | None, None]:
        """Tell the user at once, but let the handshake run to its deadline: a refusal is
        unauthenticated, and a forged one must not stop a genuine pairing."""
        mine = [hs for hs in self.with_peer(msg.sender_inc) if hs.initiator]
        if not mine:
            return DropReason.NOT_FOR_US, None
        hs = mine[0]
        if addr != hs.peer_addr:
            return DropReason.NOT_FOR_US, None   # not from where our hello went: it answers someone else's
        if not hs.refusal:
            hs.refusal, hs.refused_for = wire.REFUSE_TEXT.get(msg.reason, "refused"), msg.reason
            kind = events.PairingFailed if msg.reason == wire.R_BAD_CODE else events.PairingRefused
            self._tell(hs, kind, hs.refusal)
        return None, None

    def on_sealed(self, msg: wire.Sealed) -> pairing.Handshake | None:
        """Sealed traffic may finish a handshake we initiated: the responder uses the new keys
        (its confirmation was lost), or one we gave up on after revealing."""
        if not self.attempts and not self.late:
            return None                         # paired and settled: every datagram of the session
        for hs in list(self.attempts.values()):
            if hs.initiator and hs.keys is not None and msg.session_id == hs.keys.session_id \
                    and hs.state is pairing.HsState.REVEAL_SENT and _opens(hs, msg):
                pairing.confirm_implicitly(hs)
                return hs
        for hs in self.late:
            if hs.keys is not None and msg.session_id == hs.keys.session_id and _opens(hs, msg):
                self.late.remove(hs)
                return hs
        return None

    def finished(self, hs: pairing.Handshake) -> None:
        """``hs`` became a session: remember it (to answer a repeated reveal), forget its attempt."""
        self._forget(hs)
        for other in self.with_peer(hs.peer_inc):      # crossed or repeated: that peer is settled
            self._forget(other)
        self.done[hs.peer_inc] = hs
        while len(self.done) > MAX_LATE:
            del self.done[next(iter(self.done))]

    # ---------------------------------------------------------------- time
    def timer(self, now: float) -> None:
        """Retransmit, or give up at the deadline; only handshakes we started are reported."""
        for key, hs in list(self.attempts.items()):
            again = hs.timer(now)
            if again is not None:
                self.out.append((again, hs.peer_addr))
            if hs.state is not pairing.HsState.FAILED:
                continue
            del self.attempts[key]
            self.opened.discard(key)
            if hs.initiator and hs.keys is not None:
                self.late = (self.late + [hs])[-MAX_LATE:]
            if hs.initiator and not hs.refusal and not hs.handing_back:     # a newcomer we tried: no news
                self._tell(hs, events.PairingFailed, f"{hs.peer_name} stopped answering")
            if hs.initiator or hs.bad_tag:
                refused = hs.refusal and hs.refused_for not in wire.PASSING_REFUSALS
                self.cool(hs.peer_inc, now + (REFUSED_COOLDOWN if refused else COOLDOWN))

    def next_timeout(self) -> float | None:
        if not self.attempts:
            return None
        return min((t for hs in self.attempts.values() if (t := hs.next_timeout()) is not None), default=None)


def _opens(hs: pairing.Handshake, msg: wire.Sealed) -> bool:
    assert hs.keys is not None
    return crypto.open_sealed(hs.keys.recv_key, msg.counter, msg.header, msg.ciphertext) is not None
