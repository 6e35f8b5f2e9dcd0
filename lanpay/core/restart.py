"""The restart probe: is the process holding the relationship really gone?

A newcomer announcing our counterpart's name under a new incarnation is only a
claim (announces are unauthenticated).  Before any newcomer may take the
relationship, the current session is pinged for a while: an answer means the
old process lives, and whoever claimed to be its successor is not.  The probe
judges the old session only, never a particular newcomer, so a forged claim
cannot hold up the real successor: once the old process is known to be gone,
every newcomer with the name may try its handshake.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .session import Session

PROBE_TIME = 2.5        # how long an old process has to answer before a newcomer may take its place
PROBE_MAX = 6.0         # however slow the link has been lately
PROBE_SPACING = 0.15    # pings during that time: many, so loss alone does not make a live process look dead
IMPOSTOR_COOLDOWN = 60.0
REPAIR_WINDOW = 30.0    # after the probe passed, how long newcomers may come before we stop waiting


class Verdict(enum.Enum):
    WAITING = "waiting"      # nothing to act on yet
    ALIVE = "alive"          # the old process answered: the newcomer is an impostor
    GONE = "gone"            # no answer: newcomers may re-pair


def probe_time(left: bool, rto: float) -> float:
    """How long the old process gets to answer: nothing if it said goodbye, else
    long enough (and long in RTOs) that loss alone rarely silences it."""
    return 0.0 if left else min(PROBE_MAX, max(PROBE_TIME, 10 * rto))


@dataclass
class Probe:
    """A newcomer (named in any warning) claims our counterpart's name: is the old one gone?"""

    name: str
    addr: tuple[str, int]
    incarnation: int
    started: float
    deadline: float

    def check(self, now: float, old: Session) -> Verdict:
        """Judge the probe at ``now``; ``old`` is the session of the process being probed."""
        if now < self.deadline:
            return Verdict.WAITING
        if old.answered_ping_at > self.started and not old.left:
            return Verdict.ALIVE        # it answered a ping sent after the newcomer appeared
        return Verdict.GONE
