"""Who the counterpart is: the relationship's state, and every rule that may change it.

Discovery and unauthenticated handshake messages are hints: they may start work
(a handshake, a restart probe), never cancel, block or redirect one.  The
counterpart changes only on proof or consent:

* A first pairing: the handshake (the pairing code on both screens, or the PAKE
  of ``--code``) decides; namesakes without ``--code`` are refused, since nothing
  could tell them apart.
* A restart of the counterpart: a newcomer with its name is a new key for a
  known name.  Once the old process is found gone (``restart.Probe``), the
  newcomer's handshake is admitted; with ``--code`` it proves itself and the
  relationship is handed back at once; without it, the user is shown the new
  code and the request, and nothing is handed over until ``accept``.  The old
  session is then fenced: if its process reappears, both users are told.
* A restart of ours: we prefer the survivor paired with our name over any
  stranger, and wait for its record (``RESTORING``), for a bounded time.

Every intermediate state ends within a bounded time, in agreement or in a fresh
start with a notice.
"""

from __future__ import annotations

import random
from collections import Counter

from . import events, matching, pairing, wire
from .announcer import Budget
from .errors import DropReason
from .handshakes import COOLDOWN, MAX_BLOCKED, Admission, Matchmaker
from .ledger import Ledger
from .notices import Notices
from .peers import PeerRecord, PeerTable
from .restart import IMPOSTOR_COOLDOWN, PROBE_SPACING, REPAIR_WINDOW, Probe, Verdict, probe_time
from .rtt import RttEstimator
from .session import Mode, PeerInfo, Session
from .state import State, check

# Members compared on every datagram, bound once: on CPython 3.11 reading a member off its
# Enum class passes through the Enum metaclass's __getattr__ hook, several times the cost of
# reading a global.
_CLOSED, _PAIRED, _REPAIRING, _RESTORING = State.CLOSED, State.PAIRED, State.REPAIRING, State.RESTORING
_NORMAL = Mode.NORMAL

SETTLE = 0.25            # wait this long after first hearing a candidate, so a namesake can show up too
CONSENT_WAIT = 120.0     # how long a request for the relationship waits for the user's accept
RESTORE_WAIT = CONSENT_WAIT + 30.0
RESTORE_SILENCE = 10.0   # the other side of a hand-back silent this long: it is gone
MAX_SUCCESSORS = 4       # newcomers waiting for consent at once
MAX_FENCED = 4
CLAIMANT_ANSWERS = 3     # announces of a would-be restarted counterpart answered when the hello is ours
STARTUP_SETTLE = 0.4     # a fresh start takes no stranger before its first announces could be answered
STARTUP_HOLD = 1.0       # with several peers around, a fresh start waits this long for a survivor to speak
MAX_SURVIVOR_MISSES = 2  # restores a survivor may fail before we stop preferring it
HEARD_ENOUGH = 3         # announces that make a record as likely real as any other
SURVIVOR_WAIT = 10.0     # how long a record claiming our relationship is preferred over strangers
HELLO_OVERDUE = 5.0      # a newcomer whose hello this long in coming gets ours (hellos may go astray)
MAX_INITIATING = 4       # hellos of ours under way at once (namesakes with --code, newcomers)
COURTESY_KEPT = 8        # tokens of the budget for strangers that answers paying for others' hellos leave
MAX_FREE_TRIES = 16      # free peers (namesakes with --code) said hello to at once (half the handshakes: the rest answer hellos); one commits at a time


class Counterpart:
    """The relationship: its state, its session, and who may take it over.

    Its context is handed in whole (identity, terms, the peer table, the handshakes,
    the budget for strangers, the notices); what it decides to send, tell and
    announce waits in ``out``, ``told`` and ``changed`` for the facade to collect.
    """

    def __init__(self, me: pairing.Identity, want_peer: str | None, limit: int | None, started: float, *,
                 table: PeerTable, pairer: Matchmaker, budget: Budget, rtt: RttEstimator,
                 notices: Notices, rng: random.Random) -> None:
        self.me, self.want_peer, self.limit, self.started = me, want_peer, limit, started
        self.table, self.pairer, self.budget, self.rtt, self.notices, self.rng = \
            table, pairer, budget, rtt, notices, rng
        self.out: list[tuple[bytes, tuple[str, int]]] = []
        self.told: list[events.Event] = []
        self.changed = False                          # the LAN should hear our new state now
        self.state = State.LOOKING
        self.session: Session | None = None
        self.unpaired = Ledger(limit)                 # the ledger before (and between) sessions
        self.successors: dict[int, Session] = {}      # newcomers awaiting consent, by incarnation
        self.consent_until: dict[int, float] = {}
        self.fenced: list[Session] = []
        self.probe: Probe | None = None
        self.repair_until = 0.0
        self.restore_until = 0.0
        self.past_partners: set[int] = set()          # incarnations we were paired with: never "restarts"
        self.survivor_misses: dict[int, int] = {}

    # ---------------------------------------------------------------- context
    @property
    def terms(self) -> matching.Terms:
        """Read afresh each time: tests may give ``me`` another incarnation after start."""
        return matching.Terms(self.me.name, self.want_peer, bool(self.me.code))

    @property
    def ledger(self) -> Ledger:
        return self.session.ledger if self.session is not None else self.unpaired

    def move(self, new: State) -> None:
        """Change state, only along ``state.TRANSITIONS``: a wrong move is a bug, not a network event."""
        self.state = check(self.state, new)

    def _tell(self, event: events.Event) -> None:
        self.told.append(event)

    def _warn(self, kind: str, name: str, fact: object, event: events.Event, now: float) -> None:
        """Tell a warning about a stranger once; repeats are counted (``notices``)."""
        self.told.extend(self.notices.warn(kind, name, fact, event, now))

    def sessions(self) -> list[Session]:
        out = [self.session] if self.session is not None else []
        if self.successors or self.fenced:          # nearly always neither: no lists to join
            out += [*self.successors.values(), *self.fenced]
        return out

    def _new_session(self, hs: pairing.Handshake, ledger: Ledger, mode: Mode, now: float) -> Session:
        assert hs.keys is not None
        info = PeerInfo(hs.peer_name, hs.peer_addr, hs.keys.code, bool(self.me.code), hs.peer_inc)
        return Session(hs.keys, info, ledger, self.rtt, mode, now, self._tell)

    # ---------------------------------------------------------------- hellos
    def on_hello(self, msg: wire.Hello, addr: tuple[str, int], now: float) -> DropReason | None:
        pairer = self.pairer
        if pairer.answered(msg, addr):
            return None                                  # our reply was lost
        if msg.name == self.me.name:
            return DropReason.UNEXPECTED                 # never pair with our own name
        if self.state in (State.LOOKING, State.PAIRING):
            return self._hello_while_looking(msg, addr, now)
        if self.session is None:
            return DropReason.UNEXPECTED
        return self._hello_while_holding(self.session, msg, addr, now)

    def _respond(self, msg: wire.Hello, addr: tuple[str, int], resuming: bool, now: float) -> DropReason | None:
        """Answer a hello: at once if its sender announced itself from that host, else only
        within the budget for strangers, so a flood of made-up hellos draws bounded answers
        and cannot crowd out a peer we have heard."""
        rec = self.table.get(msg.sender_inc)
        known = rec is not None and rec.addr[0] == addr[0] and rec.name == msg.name
        if not (known or self.budget.spend(now)):
            return DropReason.RATE
        self.pairer.respond(self.me, msg, addr, resuming, self.rng, now)
        return None

    def _hello_while_looking(self, msg: wire.Hello, addr: tuple[str, int], now: float) -> DropReason | None:
        terms = self.terms
        if msg.sender_inc > self.me.incarnation and not (msg.flags & wire.F_RESUMING
                                                          and self._claims_ours(msg.sender_inc, now)):
            # We initiate with this one, not it; unless it says it holds our relationship and
            # offers it back (our hellos may be going to a forger that redirected its record).
            return DropReason.UNEXPECTED
        if not matching.accepts(terms, msg.name, msg.wants):
            self._refuse(msg, addr, wire.R_NOT_WANTED, now)
            return None
        if bool(msg.flags & wire.F_CODE) != bool(self.me.code):
            rec = self.table.get(msg.sender_inc)
            if rec is not None and rec.uses_code == bool(self.me.code):
                return DropReason.UNEXPECTED     # its own announce says otherwise: not its hello
            self._refuse(msg, addr, wire.R_CODE_MISMATCH, now)
            return None
        survivors = self._survivors(now)
        if self.pairer.cooling(msg.sender_inc, now) and not self._offered_back(msg, survivors, now):
            return DropReason.RATE
        if survivors:
            if not self._claims_ours(msg.sender_inc, now):
                return DropReason.UNEXPECTED                 # our relationship is out there: it comes first
            # The one holding our relationship: a free peer of its name beside it is no rival (only
            # the holder can give the relationship back; a namesake of it is a stranger to us).
            return self._respond(msg, addr, resuming=False, now=now)
        if not self.me.code:
            free = [r for r in self.candidates(now) if not r.paired]
            rivals = matching.hello_rivals(msg.name, msg.sender_inc, free, self.table.alive(now))
            if rivals:
                self.conflicted(msg.name, rivals, now)
                self._refuse(msg, addr, wire.R_NAMESAKE, now)     # else it reads our silence as gone
                return None
        return self._respond(msg, addr, resuming=False, now=now)

    def _offered_back(self, msg: wire.Hello, survivors: list[PeerRecord], now: float) -> bool:
        """A current survivor says hello to hand our relationship back: answered even while it
        cools down after a hello of ours went unanswered (that says nothing about the one it
        sends us), but not while it cools down as an impostor."""
        inc = msg.sender_inc
        return bool(msg.flags & wire.F_RESUMING) and any(r.incarnation == inc for r in survivors) \
            and not self.pairer.impostor(inc, now)

    def _hello_while_holding(self, session: Session, msg: wire.Hello, addr: tuple[str, int],
                             now: float) -> DropReason | None:
        inc = msg.sender_inc
        mine = session if inc == session.info.incarnation else self.successors.get(inc)
        if mine is not None:
            # The same process again: it lost the session we hold (a handshake it gave up on,
            # a restore it gave up on). Start again, in the role that session had.
            fresh = mine.mode in (Mode.HANDING_BACK, Mode.CONSENT, Mode.AWAITING) or mine.window.highest < 0
            if not fresh:
                return DropReason.UNEXPECTED
            return self._respond(msg, addr, resuming=mine.mode in (Mode.HANDING_BACK, Mode.CONSENT), now=now)
        if self.state is not State.RESTORING and msg.name == session.info.name and not msg.flags & wire.F_RESUMING:
            # (A Hello with F_RESUMING offers back a relationship of an earlier process of ours: we
            # hold another one now, so it is refused below; it is no claim to be our counterpart.)
            if self.pairer.impostor(inc, now):
                self._refuse(msg, addr, wire.R_OLD_ALIVE, now)        # its claim failed: say why
                return None
            if not self._newcomer(inc, msg.name, msg.wants, bool(msg.flags & wire.F_CODE), now, hello=True):
                return DropReason.UNEXPECTED
            if self.state is State.PAIRED and self.probe is None:
                self._start_probe(msg.name, addr, inc, now)           # a hint may start work
            return self._respond(msg, addr, resuming=True, now=now)       # committing waits for the probe
        self._refuse(msg, addr, wire.R_TAKEN, now)
        return None

    def _refuse(self, msg: wire.Hello, addr: tuple[str, int], reason: int, now: float) -> None:
        self._refuse_to(msg.sender_inc, addr, reason, now)

    def _refuse_to(self, incarnation: int, addr: tuple[str, int], reason: int, now: float) -> None:
        """Tell ``incarnation`` at ``addr`` why not, within the budget for strangers."""
        if self.budget.spend(now):
            refusal = wire.Refuse(self.me.incarnation, incarnation, reason, self.me.name)
            self.out.append((wire.encode(refusal), addr))

    # ---------------------------------------------------------------- who to pair with
    def candidates(self, now: float) -> list[PeerRecord]:
        """Whom we could pair with, in the order to try them: our survivors, free peers, then
        peers still claiming our name past their window (a dead survivor's leftover, or a live
        one we have not reached yet: never a namesake, never ahead of a free peer)."""
        found, wrong_code = matching.candidates(self.terms, self.table.alive(now), self.pairer.cooldown, now)
        for rec in wrong_code:
            self._warn("code", rec.name, ("code", rec.incarnation),
                       events.CodeDiffers(rec.name, rec.addr[0], rec.uses_code), now)
        survivors = {r.incarnation for r in self._survivors(now)}
        ours = _heard_most([r for r in found if r.incarnation in survivors])
        free = [r for r in found if not r.paired]
        leftovers = _heard_most([r for r in found if r.paired and r.incarnation not in survivors])
        return ours + free + leftovers          # a claim of ours past its window comes last

    def _say_why_not(self, now: float) -> None:
        """Tell the user (once per peer, counted after that) why a peer it could mean will not
        pair: it is taken, it asked for someone else, or it has our own name (nobody pairs
        with its own name: a process of our name is our own, earlier or later)."""
        terms = self.terms
        current: set[int] | None = None
        for rec in self.table.alive(now):
            if rec.name == terms.name:
                if not rec.paired and rec.incarnation != self.me.incarnation:
                    self._warn("taken", rec.name, ("taken", rec.incarnation, "same-name"),
                               events.PeerTaken(rec.name, "same-name"), now)
                continue
            if terms.want_peer not in (None, rec.name):
                continue
            if rec.paired and rec.partner == terms.name:
                # It holds a relationship with a process of our name, not this one: ours (if we
                # restarted) comes back through it, so it is said only once that had its time.
                if now < rec.first_seen + SURVIVOR_WAIT or rec.partner_inc == self.me.incarnation:
                    continue
                if current is None:
                    current = {r.incarnation for r in self._survivors(now)}
                if rec.incarnation in current:
                    continue
                reason = "yours-elsewhere"
            elif rec.paired:
                reason = "paired"
            elif rec.wants not in ("", terms.name):
                reason = "wants-other"
            else:
                continue
            self._warn("taken", rec.name, ("taken", rec.incarnation, reason), events.PeerTaken(rec.name, reason), now)

    def _survivors(self, now: float) -> list[PeerRecord]:
        """Peers that say they hold our relationship, preferred over strangers only early in our
        life: a claim first heard in our first STARTUP_HOLD + SURVIVOR_WAIT seconds is preferred for
        SURVIVOR_WAIT after we first hear it (within that time), and for one hello's deadline more
        while a handshake with it is under way.  A live survivor has begun the hand-back by then;
        a dead one's record, or forged claims however many, hold a fresh process back at most
        that long.  A survivor that failed to restore us twice is no longer preferred."""
        early = self.started + STARTUP_HOLD + SURVIVOR_WAIT
        if now >= early + pairing.HELLO_DEADLINE:
            return []       # a restarted process meets its survivor early; later claims are only claims
        pairer = self.pairer
        return [r for r in matching.survivors(self.terms, self.table.alive(now))
                if self.survivor_misses.get(r.incarnation, 0) < MAX_SURVIVOR_MISSES and r.first_seen < early
                and ((now < early and now < r.first_seen + SURVIVOR_WAIT)
                     or (pairer.with_peer(r.incarnation)
                         and now < min(early, r.first_seen + SURVIVOR_WAIT) + pairing.HELLO_DEADLINE))]

    def _claims_ours(self, incarnation: int, now: float) -> bool:
        """Whether ``incarnation`` says it holds our relationship, in its window or past it (the
        survivors we prefer are among these: fresher forged claims must not push the real one out)."""
        return any(r.incarnation == incarnation for r in matching.survivors(self.terms, self.table.alive(now)))

    def conflicted(self, name: str, group: list[PeerRecord], now: float) -> bool:
        """Several live peers answer to ``name``: pair with none, and tell the user once."""
        same = matching.namesakes(name, group)
        if same:
            key = ("conflict", frozenset(r.incarnation for r in same))
            self._warn("namesake", name, key, events.NameConflict(name, tuple(r.addr for r in same)), now)
            return True
        return False

    def choose(self, now: float) -> float | None:
        """Looking: initiate where ours is the lower incarnation (else its hello will come).

        The survivor of our restart comes before any stranger.  With ``--code`` every
        candidate is tried at once (the PAKE tells namesakes and pretenders apart);
        without it, a candidate is tried once it has settled with no namesake beside it.
        Returns when to look again (a candidate still settling), if ever.
        """
        self._say_why_not(now)
        found = self.candidates(now)
        survivors = [r for r in self._survivors(now) if r in found]
        if survivors:
            found = survivors
        if not found:
            return None
        free = [r for r in found if not r.paired]
        for rec in free:
            if not self.me.code:
                self.conflicted(rec.name, free, now)       # told at once, whatever else waits
        hold = self._hold_until(now)
        if not survivors and hold is not None:
            return hold
        if self.me.code:
            for rec in self._uncrowded_first(found, now):
                self._initiate(rec, now, cap=MAX_FREE_TRIES)
            return None
        if not survivors and free:
            return self._try_free(free, now)
        # What is left are claims to hold our relationship (survivors, or leftovers when no free
        # peer is about), one at a time without a code.
        if any(self.pairer.initiating(r.incarnation) for r in found):
            return None
        for rec in found:
            if rec.name != found[0].name:
                break
            if now < rec.first_seen + SETTLE:
                return rec.first_seen + SETTLE
            if self._initiate(rec, now):
                return None
            # Its hello is to come, or it failed us lately: another claim of that name behind it
            # may be the real one (claims are cheap to forge).
        return None

    def _try_free(self, free: list[PeerRecord], now: float) -> float | None:
        """Without a code: say hello to every free candidate that has settled with no namesake
        beside it and whose hello is ours to send, up to MAX_FREE_TRIES at once.  Announces of free
        peers cost a forger nothing, and one that never answers must not keep us waiting on it
        while the real peer waits behind; only one handshake of ours commits at a time (``admit``),
        so two real answers cannot both become the relationship.  Returns when to look again."""
        settling = []
        for rec in free:
            if self.conflicted(rec.name, free, now):
                continue
            if now < rec.first_seen + SETTLE:
                settling.append(rec.first_seen + SETTLE)
                continue
            self._initiate(rec, now, cap=MAX_FREE_TRIES)
        return min(settling, default=None)

    def recall(self, now: float) -> float | None:
        """Reveals that admission put off (``later``): once it may say yes, their initiators are
        asked again at once by our Reply, not left to their own resend.  Returns when to look
        again, if one still waits on the start-up hold (a probe's end is a timer of its own)."""
        waiting = self.pairer.recall(lambda hs: self.admit(hs, now))
        if not waiting or self.state not in (State.LOOKING, State.PAIRING):
            return None
        return self._hold_until(now)

    def _hold_until(self, now: float) -> float | None:
        """Just started, with more than one peer around: one of them may hold our relationship
        (we may be a restarted process) and its answer may still be on the way.  A fresh pairing
        waits until the start-up announces had time to be answered: STARTUP_SETTLE for answers
        to arrive at all, STARTUP_HOLD once more than one peer has answered."""
        started = self.started
        until = started + (STARTUP_HOLD if len(self.table.alive(now)) >= 2 else STARTUP_SETTLE)
        return until if now < until else None

    def _initiate(self, rec: PeerRecord, now: float, resuming: bool = False, overdue: bool = False,
                  cap: int = 0) -> bool:
        """Say hello to ``rec`` if the tie-break makes it ours to start; a hello to someone
        known only from an announce is sent unasked, so it spends the budget for strangers.
        Returns whether a hello went (or is already under way)."""
        pairer = self.pairer
        if pairer.initiating(rec.incarnation):
            return True
        # The higher incarnation waits for the other's hello, unless the other says it is paired
        # with us (a hand-back we gave up on): it holds a session, so its hello will not come.
        ours = overdue or (rec.paired and rec.partner == self.me.name and rec.partner_inc == self.me.incarnation)
        if (self.me.incarnation > rec.incarnation and not ours) or pairer.cooling(rec.incarnation, now) \
                or pairer.initiators() >= (cap or MAX_INITIATING):
            return False
        if not self.budget.spend(now):
            return False
        pairer.initiate(self.me, rec, resuming, self.rng, now)
        return True

    def _newcomer(self, inc: int, name: str, wants: str, code: bool, now: float, hello: bool = False) -> bool:
        """Could this incarnation be our counterpart restarted?  For its own hello, only the long
        cooldown of an impostor stands in the way: our hellos to it failing (they may have gone
        to a forger that redirected its record) says nothing about the one it sends us."""
        s = self.session
        cooling = self.pairer.impostor(inc, now) if hello else self.pairer.cooling(inc, now)
        return (s is not None and name == s.info.name and inc != s.info.incarnation
                and inc not in self.past_partners and matching.accepts(self.terms, name, wants)
                and code == bool(self.me.code) and not cooling)

    def is_claimant(self, rec: PeerRecord, now: float) -> bool:
        """A free newcomer with our counterpart's name: its announces are answered (it may be our
        counterpart restarted, and our answer is how it learns, before any stranger gets to it,
        that we hold its relationship): all of them when the hello is its to send, else its
        first CLAIMANT_ANSWERS (the rest of its bytes pay for our hello)."""
        return self.state in (State.PAIRED, State.REPAIRING) and not self._taken(rec) \
            and (rec.incarnation < self.me.incarnation or rec.heard <= CLAIMANT_ANSWERS) \
            and not self._went_before(rec) \
            and self._newcomer(rec.incarnation, rec.name, rec.wants, rec.uses_code, now)

    def awaits_hello(self, rec: PeerRecord, now: float) -> bool:
        """Looking, a free peer we could pair with whose hello is its to send: its announces are
        answered, since our announce is what pays for its hello (a hello goes to an address only
        as far as that address sent us bytes), and on a lossy link ours every few seconds is too
        little for its hellos and their resends."""
        return self.state in (State.LOOKING, State.PAIRING) and not rec.paired \
            and rec.incarnation < self.me.incarnation and matching.wanted(self.terms, rec) \
            and rec.uses_code == bool(self.me.code) and not self.pairer.with_peer(rec.incarnation) \
            and not self.pairer.cooling(rec.incarnation, now)

    def look_for_restart(self, now: float) -> None:
        """Holding a relationship: a newcomer with our counterpart's name may be its restarted process."""
        s = self.session
        state = self.state
        if s is None or (state is not _PAIRED and state is not _REPAIRING) \
                or not self.table.another(s.info.name, s.info.incarnation):
            return          # nearly every datagram of a session: nobody else has its name
        for rec in self._uncrowded_first(self.table.alive(now), now):
            if rec.name == s.info.name and rec.uses_code != bool(self.me.code) and not self._taken(rec) \
                    and not self._went_before(rec) and rec.incarnation != s.info.incarnation:
                # It cannot take the relationship over; if our counterpart restarted, it must start
                # again the way this relationship was made (with the same --code, or without).
                self._warn("code", rec.name, ("code", rec.incarnation),
                           events.CodeDiffers(rec.name, rec.addr[0], rec.uses_code, holding=True), now)
                continue
            if self._taken(rec) or self._went_before(rec) \
                    or not self._newcomer(rec.incarnation, rec.name, rec.wants, rec.uses_code, now):
                continue
            if self.state is _PAIRED and self.probe is None:
                self._start_probe(rec.name, rec.addr, rec.incarnation, now)
            elif self.state is _REPAIRING and rec.incarnation not in self.successors:
                # Its hello should come, yet it may be sending it to a forger that redirected our
                # record there: past HELLO_OVERDUE we say hello ourselves.
                overdue = now >= rec.first_seen + HELLO_OVERDUE and not self.pairer.with_peer(rec.incarnation)
                self._initiate(rec, now, resuming=True, overdue=overdue)

    def _went_before(self, rec: PeerRecord) -> bool:
        """A record last heard no later than the moment our session began: a process that fell
        silent before we paired with this one (one that died while pairing, say), not the
        counterpart restarted, which can only speak after the process it replaces.  Announces are
        signed and counted, so only that process itself could make its record speak again; if it
        does, it is a claimant like any other."""
        s = self.session
        return s is not None and rec.heard_at <= s.began

    def _taken(self, rec: PeerRecord) -> bool:
        """Whether a record says it is paired, counting a claim to be paired with this very
        process as free: we know whom we are paired with, so that claim is stale or forged."""
        return rec.paired and not (rec.partner == self.me.name and rec.partner_inc == self.me.incarnation)

    def _uncrowded_first(self, records: list[PeerRecord], now: float) -> list[PeerRecord]:
        """The likeliest real peers first: an incarnation heard announcing again and again (a
        forged one is usually heard once), then those from hosts announcing few incarnations (a
        real peer is usually alone on its host, a flood of forged ones is not, though it may spoof
        the real peer's address), so forgeries cannot take every slot."""
        crowd = Counter(r.addr[0] for r in self.table.alive(now))
        return sorted(records, key=lambda r: (-min(r.heard, HEARD_ENOUGH), crowd[r.addr[0]], r.first_seen))

    def _start_probe(self, name: str, addr: tuple[str, int], inc: int, now: float) -> None:
        """Before anyone may take the relationship, check the old process is really gone."""
        assert self.session is not None
        wait = probe_time(self.session.left, self.rtt.rto)
        self.probe = Probe(name, addr, inc, now, now + wait)
        if wait:
            self.session.probe(now, until=now + wait, spacing=PROBE_SPACING)
        self._check_probe(now)

    def _check_probe(self, now: float) -> None:
        """Act on the probe's verdict: the probe judges, we move."""
        probe, s = self.probe, self.session
        if probe is None or s is None:
            return
        verdict = probe.check(now, s)
        if verdict is Verdict.ALIVE:
            self.probe = None
            self._impostor(probe.name, probe.addr, probe.incarnation, now)
        elif verdict is Verdict.GONE:
            self.probe = None
            self.repair_until = now + REPAIR_WINDOW
            self.move(State.REPAIRING)
            self.changed = True         # newcomers hear us (and may answer) at once

    # ---------------------------------------------------------------- committing
    def admit(self, hs: pairing.Handshake, now: float) -> Admission:
        """May we commit to ``hs`` now (reveal, or confirm)?"""
        if self.state in (State.LOOKING, State.PAIRING):
            if self._survivors(now):
                # Our relationship is out there: only its holder may commit, before any stranger and
                # whatever free namesake of it is about (that one could not give it back).
                return Admission.YES if self._claims_ours(hs.peer_inc, now) else Admission.NO
            if not self.me.code and self._rival(hs, now):
                return Admission.NO
            # A fresh pairing waits for the start-up hold, a contested peer or our other commitment.
            if self._hold_until(now) is not None or self._contested(hs, now) or self._committing_elsewhere(hs):
                return Admission.LATER
            return Admission.YES
        if self.state is State.RESTORING:
            return Admission.YES if self.session and hs.peer_inc == self.session.info.incarnation else Admission.NO
        s = self.session
        if s is None or self.state is State.CLOSED:
            return Admission.NO
        if hs.peer_inc == s.info.incarnation or hs.peer_inc in self.successors:
            return Admission.YES
        if self.state is State.PAIRED:
            return Admission.LATER if self.probe is not None else Admission.NO
        return Admission.YES if hs.peer_name == s.info.name else Admission.NO

    def _committing_elsewhere(self, hs: pairing.Handshake) -> bool:
        """A hello of ours to someone else has been answered and we revealed to it: that one may
        become the relationship, so no other commits until it completes or fails."""
        return any(a is not hs and a.initiator and a.peer_inc != hs.peer_inc and a.state is pairing.HsState.REVEAL_SENT
                   for a in self.pairer.attempts.values())

    def _contested(self, hs: pairing.Handshake, now: float) -> bool:
        """Someone else says it holds a relationship with a process of this name, or another
        process of this name says it is paired (with someone not us): the one we are pairing with
        may be that process restarted, on its way back to its survivor.  Either record is enough,
        so a lost announce of the survivor's leaves the other.  We leave the newcomer alone for
        SURVIVOR_WAIT after first hearing it (its survivor reaches it by then), then pair."""
        mine = self.table.get(hs.peer_inc)
        if mine is None or now >= mine.first_seen + SURVIVOR_WAIT:
            return False
        name, inc, me = hs.peer_name, hs.peer_inc, self.me.name
        return any(r.paired and r.incarnation != inc
                   and ((r.partner == name and r.partner_inc != inc) or (r.name == name and r.partner != me))
                   for r in self.table.alive(now))

    def _rival(self, hs: pairing.Handshake, now: float) -> bool:
        """Another live peer answers to the same name: pair with neither, and say so."""
        table = self.table
        free = [r for r in self.candidates(now) if not r.paired]
        rivals = matching.handshake_rivals(hs.peer_name, hs.peer_inc, free, [r for r in table.alive(now) if not r.paired])
        return self.conflicted(hs.peer_name, rivals, now) if rivals else False

    def complete(self, hs: pairing.Handshake, now: float) -> None:
        """A handshake finished: it becomes the relationship, a request for it, or our restore."""
        self.pairer.finished(hs)
        if hs.handing_back:
            self._successor(hs, now)
        elif hs.resuming:
            self._restoring(hs, now)
        else:
            self._paired(hs, now)

    def _paired(self, hs: pairing.Handshake, now: float) -> None:
        again = self.session is not None and self.session.info.incarnation == hs.peer_inc
        if not (again or self.state in (State.LOOKING, State.PAIRING)):
            return
        ledger = self.session.ledger if again and self.session else self.unpaired
        self.session = self._new_session(hs, ledger, Mode.NORMAL, now)
        self.pairer.clear()
        if self.state is State.LOOKING:
            self.move(State.PAIRING)
        if self.state is State.PAIRING:
            self.move(State.PAIRED)
        s = self.session
        self._tell(events.Paired(s.info.name, s.info.addr, s.info.code, verified=s.info.verified,
                                     balance=s.ledger.balance, again=again))
        self.changed = True

    def _restoring(self, hs: pairing.Handshake, now: float) -> None:
        """We restarted and the peer holds our relationship: wait for its record."""
        if self.state not in (State.LOOKING, State.PAIRING, State.RESTORING):
            return
        self.unpaired = Ledger(self.limit)
        self.session = self._new_session(hs, self.unpaired, Mode.AWAITING, now)
        self.pairer.clear()
        self.restore_until = now + RESTORE_WAIT
        if self.state is State.LOOKING:
            self.move(State.PAIRING)
        if self.state is not State.RESTORING:
            self.move(State.RESTORING)
        s = self.session
        if not s.info.verified:
            self._tell(events.HandbackAwaited(s.info.name, s.info.addr, s.info.code))
        self.changed = True

    def _successor(self, hs: pairing.Handshake, now: float) -> None:
        """A newcomer proved (``--code``) or claims to be our counterpart restarted."""
        s = self.session
        if s is None or self.state not in (State.PAIRED, State.REPAIRING):
            return
        new = self._new_session(hs, s.ledger, Mode.CONSENT, now)
        if new.info.verified:
            self.hand_over(new, now)
            return
        old = self.successors.pop(hs.peer_inc, None)
        if old is None and len(self.successors) >= MAX_SUCCESSORS:
            return
        self.successors[hs.peer_inc] = new
        self.consent_until[hs.peer_inc] = now + CONSENT_WAIT
        if self.state is State.PAIRED:
            self.move(State.REPAIRING)        # a handshake begun in the repair window, done after it
        led = s.ledger
        self._tell(events.HandbackRequested(new.info.name, new.info.addr, new.info.code, led.balance,
                                                led.payments(), len(led.pending())))

    def hand_over(self, new: Session, now: float) -> None:
        """Consent given or proof shown: fence the old session, send the record, carry on."""
        old = self.session
        if old is not None and old.info.incarnation != new.info.incarnation:
            old.fence()
            self.fenced = (self.fenced + [old])[-MAX_FENCED:]
            self._retire(old.info.incarnation)
        for inc, other in self.successors.items():
            if inc != new.info.incarnation:
                self.out.extend(other.decline(wire.D_OTHER))     # another of its name was accepted
        self.successors.clear()
        self.consent_until.clear()
        self.probe = None
        self.session = new
        new.begin_handback(now)
        if self.state is State.REPAIRING:
            self.move(State.PAIRED)
        self.changed = True

    def _retire(self, incarnation: int) -> None:
        """A counterpart process we are done with: never mistake it for a newcomer again."""
        if len(self.past_partners) >= MAX_BLOCKED:
            self.past_partners.pop()
        self.past_partners.add(incarnation)
        self.table.forget(incarnation)

    # ---------------------------------------------------------------- following the sessions
    def heard(self, s: Session, now: float) -> None:
        """An authentic datagram opened in ``s``."""
        if s is self.session and self.state is _REPAIRING and s.mode is _NORMAL:
            self._old_is_alive(s, now)

    def _impostor(self, name: str, addr: tuple[str, int], inc: int, now: float) -> None:
        """Someone claimed to be our counterpart restarted while it still answers: it cools down
        IMPOSTOR_COOLDOWN; our user is told, and so is the counterpart itself (both users are
        told), once per claimant.  The claimant's handshakes end, and one whose hello we were
        answering hears why (else it could only read our silence as gone)."""
        for hs in self.pairer.with_peer(inc):
            if not hs.initiator:
                self._refuse_to(inc, hs.peer_addr, wire.R_OLD_ALIVE, now)
            self.pairer.drop(hs, now)
        self.pairer.cool_impostor(inc, now + IMPOSTOR_COOLDOWN)
        fact = ("impostor", inc)
        if not self.notices.seen(fact) and self.session is not None:
            self.session.tell_claimed(addr[0])
        self._warn("impostor", name, fact, events.ImpostorSuspected(name, addr), now)

    def _old_is_alive(self, s: Session, now: float) -> None:
        """The process we thought gone spoke: whoever claimed its place is not it, and is told so
        (under the session begun with it, so it stops waiting for our record)."""
        for inc, succ in list(self.successors.items()):
            self._impostor(succ.info.name, succ.info.addr, inc, now)
            self.out.extend(succ.decline(wire.D_OLD_ALIVE))
        newcomers: dict[int, pairing.Handshake] = {}      # each incarnation's first attempt
        for a in self.pairer.attempts.values():
            if a.peer_name == s.info.name and a.peer_inc != s.info.incarnation:
                newcomers.setdefault(a.peer_inc, a)
        for inc, hs in newcomers.items():
            # A newcomer's handshakes under way, admitted while the old process looked gone: they
            # must not finish into a hand-over now that the old process is back (``_impostor``
            # ends every one of that incarnation).
            self._impostor(hs.peer_name, hs.peer_addr, inc, now)
        self.successors.clear()
        self.consent_until.clear()
        self.move(State.PAIRED)

    def settle(self, now: float) -> None:
        """State changes that follow from what the sessions did."""
        s = self.session
        if s is None:
            return
        if s.fenced_out and self.state is not _CLOSED:
            self.move(_CLOSED)
        elif self.state is _RESTORING and s.ready:
            self.move(_PAIRED)
            self.changed = True
        elif self.state is _RESTORING and (s.declined or s.left):
            self._check_restore(now)        # the survivor will not hand it back: at once, not at a timer

    def timer(self, now: float) -> None:
        for s in self.sessions():
            s.handle_timeout(now)
        self._check_probe(now)
        self._check_restore(now)
        self.check_consent(now)
        if self.state is _REPAIRING and not self.successors and now >= self.repair_until:
            self.move(_PAIRED)            # nobody came: a newcomer's announce starts a new probe

    def _check_restore(self, now: float) -> None:
        s = self.session
        if self.state is not State.RESTORING or s is None:
            return
        if s.declined or s.left or now >= self.restore_until or now >= s.last_heard + RESTORE_SILENCE:
            if s.declined:
                reason = _DECLINED.get(s.declined, "kept")
            else:
                reason = "left" if s.left else "timeout" if now >= self.restore_until else "silent"
            self._tell(events.RestoreFailed(s.info.name, reason))
            self.pairer.cool(s.info.incarnation, now + COOLDOWN)
            gone_elsewhere = s.declined in (wire.D_OLD_ALIVE, wire.D_OTHER)   # it holds the relationship elsewhere
            misses = MAX_SURVIVOR_MISSES if gone_elsewhere else self.survivor_misses.get(s.info.incarnation, 0) + 1
            self.survivor_misses[s.info.incarnation] = misses
            self.session = None
            self.unpaired = Ledger(self.limit)
            self.move(State.LOOKING)
            self.changed = True

    def check_consent(self, now: float) -> None:
        """Requests for the relationship end when the user let them wait too long, or when the
        process asking has gone silent (also checked before an ``accept`` is applied)."""
        for inc, succ in list(self.successors.items()):
            expired = now >= self.consent_until[inc]
            if expired or now >= succ.last_heard + RESTORE_SILENCE:
                if expired:
                    self.out.extend(succ.decline(wire.D_NOT_ACCEPTED))   # it would read our silence as gone
                del self.successors[inc], self.consent_until[inc]
                self.pairer.cool(inc, now + COOLDOWN)
                reason = "expired" if expired else "silent"
                self._tell(events.RestoreFailed(succ.info.name, reason))

    def next_timeout(self) -> float | None:
        s = self.session
        if s is not None and self.state is _PAIRED and self.probe is None and not self.successors \
                and not self.fenced:
            return s.next_timeout()          # paired and settled: only the session's own timers
        times = [t for s in self.sessions() if (t := s.next_timeout()) is not None]
        if self.probe is not None:
            times.append(self.probe.deadline)
        s = self.session
        if self.state is _RESTORING and s is not None:
            times += [self.restore_until, s.last_heard + RESTORE_SILENCE]
        for inc, succ in self.successors.items():
            times += [self.consent_until[inc], succ.last_heard + RESTORE_SILENCE]
        if self.state is _REPAIRING and not self.successors:
            times.append(self.repair_until)
        return min(times, default=None)


_DECLINED = {wire.D_OLD_ALIVE: "kept", wire.D_OTHER: "other", wire.D_NOT_ACCEPTED: "not-accepted"}


def _heard_most(records: list[PeerRecord]) -> list[PeerRecord]:
    """Claims to hold our relationship, the one heard most (then most lately) first: a real
    survivor keeps announcing from one incarnation, forged claims are cheap one-offs."""
    return sorted(records, key=lambda r: (-r.heard, -r.heard_at))
