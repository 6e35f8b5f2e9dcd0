"""Round-trip estimation and the retransmission timeout, after RFC 6298.

The RFC's one-second floor suits the Internet; a LAN answers in well under a
millisecond, and a floor far above the round trip is what a lost payment waits
for.  So the timeout follows the measured round trip (SRTT + 4 RTTVAR) down to a
floor of 2 ms, a few times what two processes on one host take to answer each
other: below that, scheduling noise alone would read as loss.  On a slower or
jittery link (Wi-Fi) the variance term, not the floor, sets the timeout.

Backoff doubles up to ``cap`` (1 s): a peer that answers is retried at least
once a second, and one that went away draws at most one resend a second per
payment in flight (the session backs off further once it is silent).
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHA = 1 / 8
BETA = 1 / 4
K = 4


@dataclass
class RttEstimator:
    initial: float = 0.25
    floor: float = 0.002
    cap: float = 1.0
    granularity: float = 0.001
    srtt: float | None = None
    rttvar: float = 0.0
    latest: float | None = None

    @property
    def rto(self) -> float:
        if self.srtt is None:
            return self.initial
        # min and max written out: this is read for every payment sent, and the builtins parse
        # their arguments each call
        spread = K * self.rttvar
        raw = self.srtt + (spread if spread > self.granularity else self.granularity)
        if raw < self.floor:
            raw = self.floor
        return self.cap if raw > self.cap else raw

    def sample(self, rtt: float) -> None:
        """Feed one measurement; the caller applies Karn's rule (no retransmitted sends)."""
        if rtt < 0.0:
            rtt = 0.0
        self.latest = rtt
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
            return
        self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - rtt)
        self.srtt = (1 - ALPHA) * self.srtt + ALPHA * rtt

    def backoff(self, retries: int) -> float:
        """The timeout after ``retries`` unanswered sends: doubled each time, capped."""
        return min(self.cap, self.rto * (2 ** min(retries, 16)))
