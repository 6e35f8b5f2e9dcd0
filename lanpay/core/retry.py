"""The one retry timer: payments, handshake messages and hand-back parts all use it.

A message is sent, then sent again whenever its timer runs out, each wait
doubling up to a cap, until whoever owns the timer drops it (answered, or given
up at a deadline of its own).  Retransmission is driven by this timer only,
never by a duplicate answer (TFTP's Sorcerer's Apprentice).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Retry:
    """When to send again: ``first_sent`` for RTT samples (Karn: only if never repeated)."""

    first_sent: float
    next_at: float
    retries: int = 0

    @classmethod
    def start(cls, now: float, wait: float) -> "Retry":
        return cls(now, now + wait)

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def fire(self, now: float, base: float, cap: float) -> None:
        """Record a resend at ``now``; the next one waits ``base`` doubled per resend, at most ``cap``."""
        self.retries += 1
        self.next_at = now + min(cap, base * 2 ** min(self.retries, 16))
