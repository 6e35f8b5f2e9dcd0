"""Round-trip estimation and the retransmission timeout, after RFC 6298.

The RFC's one-second floor suits the Internet; a LAN answers in well under a
millisecond, so the floor here is 50 ms and the cap a few seconds: a lost
payment is retried quickly, and a peer that went away is not hammered.
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHA = 1 / 8
BETA = 1 / 4
K = 4


@dataclass
class RttEstimator:
    initial: float = 0.25
    floor: float = 0.05
    cap: float = 3.0
    granularity: float = 0.001
    srtt: float | None = None
    rttvar: float = 0.0
    latest: float | None = None

    @property
    def rto(self) -> float:
        if self.srtt is None:
            return self.initial
        raw = self.srtt + max(self.granularity, K * self.rttvar)
        return min(self.cap, max(self.floor, raw))

    def sample(self, rtt: float) -> None:
        """Feed one measurement; the caller applies Karn's rule (no retransmitted sends)."""
        rtt = max(0.0, rtt)
        self.latest = rtt
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
            return
        self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - rtt)
        self.srtt = (1 - ALPHA) * self.srtt + ALPHA * rtt

    def backoff(self, retries: int) -> float:
        """The timeout after ``retries`` unanswered sends: doubled each time, capped."""
        return min(self.cap, self.rto * (2 ** min(retries, 16)))
