"""Sending the survivor's record to a restarted counterpart, one part per datagram.

The record can be long (up to 10 000 history lines each way, with the totals of
the older ones), so it goes in parts, a window of them at a time, each retried
on the one retry timer until the restarted side says it holds it.  The
restarted side collects them in any order (``ledger.Restore``).
"""

from __future__ import annotations

from . import wire
from .retry import Retry

PART_WINDOW = 16        # parts in flight at once


class Handback:
    """The parts still to be acknowledged, and when each is due again."""

    def __init__(self, parts: list[wire.Resume]) -> None:
        self.parts = parts
        self.unacked = set(range(len(parts)))
        self.timers: dict[int, Retry] = {}
        self._next = 0          # the first part never sent

    @property
    def done(self) -> bool:
        return not self.unacked

    def acked(self, part: int) -> bool:
        """Part ``part`` arrived; False if no such part exists (a violation)."""
        if not 0 <= part < len(self.parts):
            return False
        self.unacked.discard(part)
        self.timers.pop(part, None)
        return True

    def due(self, now: float, rto: float, cap: float) -> list[wire.Resume]:
        """The parts to send now: those whose timer ran out, then new ones up to the window."""
        out = []
        for part, timer in self.timers.items():
            if timer.due(now):
                timer.fire(now, rto, cap)
                out.append(self.parts[part])
        while len(self.timers) < PART_WINDOW and self._next < len(self.parts):
            part, self._next = self._next, self._next + 1
            if part in self.unacked:
                self.timers[part] = Retry.start(now, rto)
                out.append(self.parts[part])
        return out

    def next_timeout(self) -> float | None:
        return min((t.next_at for t in self.timers.values()), default=None)
