"""The one retry timer: payments, handshake messages and hand-back parts all use it.

A message is sent, then sent again whenever its timer runs out, each wait
doubling up to a cap, until whoever owns the timer drops it (answered, or given
up at a deadline of its own).  Retransmission is driven by this timer, never by
a duplicate answer (TFTP's Sorcerer's Apprentice); the one exception is a
payment that acknowledgements of later ones show lost, resent once at most
(``early``, see session.py).

``linear`` resends may come first at the base interval, without doubling: a
sender with too few messages in flight for acknowledgements to reveal a loss
has only its timer, and on a LAN with random loss doubling from the first
timeout costs far more than the datagrams it saves (Linux does the same for
thin TCP streams, ``tcp_thin_linear_timeouts``).  The doubling that follows
still bounds what an absent peer is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_DOUBLINGS = 16      # 2**16 times the base is past any cap: huge retry counts neither overflow nor grow


@dataclass(slots=True)
class Retry:
    """When to send again: ``first_sent`` for RTT samples (Karn: only if never repeated);
    ``copy`` is the sender's number for the last copy sent, if it numbers them, and
    ``sent_at`` when that copy went."""

    first_sent: float
    next_at: float
    retries: int = 0
    copy: int = -1
    sent_at: float = 0.0

    @classmethod
    def start(cls, now: float, wait: float) -> "Retry":
        return cls(now, now + wait, sent_at=now)

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def fire(self, now: float, base: float, cap: float, linear: int = 0) -> None:
        """Record a resend at ``now``; the next one waits ``base``, doubled per resend past the
        first ``linear`` ones, at most ``cap``."""
        self.retries += 1
        self.sent_at = now
        doublings = min(max(0, self.retries - linear), MAX_DOUBLINGS)
        self.next_at = now + min(cap, base * 2 ** doublings)
