"""The restart probe: is the process holding the relationship really gone?

A newcomer announcing our counterpart's name under a new incarnation is only a
claim (announces are unauthenticated).  Before the relationship is handed to
it, the current session is pinged for a while: an answer means the old process
lives and the newcomer is an impostor.  The probe only judges; the facade acts
on its verdict (cooldowns, warnings, state changes).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .pairing import HANDSHAKE_DEADLINE
from .peers import PeerRecord
from .session import Session

PROBE_TIME = 2.5        # how long an old process has to answer before a newcomer may take its place
PROBE_SPACING = 0.15    # pings during that time: many, so loss alone does not make a live process look dead
IMPOSTOR_COOLDOWN = 60.0


class Verdict(enum.Enum):
    WAITING = "waiting"      # nothing to act on yet
    ALIVE = "alive"          # the old process answered: the newcomer is an impostor
    GONE = "gone"            # no answer: the probe passed, re-pair with the newcomer
    GAVE_UP = "gave-up"      # passed, but no handshake with the newcomer completed in time


def probe_time(left: bool, rto: float) -> float:
    """How long the old process gets to answer: nothing if it said goodbye, else
    long enough (and long in RTOs) that loss alone rarely silences it."""
    return 0.0 if left else max(PROBE_TIME, 10 * rto)


@dataclass
class Probe:
    """A new incarnation claims our counterpart's name: is the old one really gone?"""

    rec: PeerRecord
    started: float
    deadline: float
    passed: bool = False
    give_up_at: float = 0.0

    def check(self, now: float, handshaking: bool, old: Session | None) -> Verdict:
        """Judge the probe at ``now``; ``old`` is the session of the process being probed.

        Passing starts the give-up clock: a newcomer that never completes a
        handshake (a forged announce, a process that died again) must not keep
        the relationship waiting for ever.
        """
        if self.passed:
            return Verdict.GAVE_UP if not handshaking and now >= self.give_up_at else Verdict.WAITING
        if old is None or now < self.deadline:
            return Verdict.WAITING
        if old.answered_ping_at >= self.started and not old.left:
            return Verdict.ALIVE        # it answered a ping sent after the newcomer appeared
        self.passed = True
        self.give_up_at = now + HANDSHAKE_DEADLINE
        return Verdict.GONE

    def next_timeout(self, handshaking: bool) -> float | None:
        """When ``check`` may next say something new (a handshake under way has its own timer)."""
        if not self.passed:
            return self.deadline
        return None if handshaking else self.give_up_at
