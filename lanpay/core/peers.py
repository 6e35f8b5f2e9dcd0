"""The bounded table of peers heard announcing, with expiry.

Discovery is unauthenticated, so the table trusts nothing: it only remembers who
said what, from where, until they stop saying it.  Its size is capped so a flood
of forged announces costs a fixed amount of memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import wire

MAX_PEERS = 64
MISSED_INTERVALS = 3
MIN_LIFETIME = 3.0
MAX_INTERVAL = 30.0      # the slowest announce interval the protocol uses; longer claims are clamped


@dataclass
class PeerRecord:
    incarnation: int
    name: str
    addr: tuple[str, int]
    wants: str
    flags: int
    partner: str
    partner_inc: int
    public_key: bytes
    first_seen: float
    expires_at: float

    @property
    def paired(self) -> bool:
        return bool(self.flags & wire.F_PAIRED)

    @property
    def uses_code(self) -> bool:
        return bool(self.flags & wire.F_CODE)


class PeerTable:
    def __init__(self, limit: int = MAX_PEERS) -> None:
        self.limit = limit
        self._by_inc: dict[int, PeerRecord] = {}

    def __len__(self) -> int:
        return len(self._by_inc)

    def get(self, incarnation: int) -> PeerRecord | None:
        return self._by_inc.get(incarnation)

    def update(self, msg: wire.Announce, addr: tuple[str, int], now: float) -> tuple[PeerRecord | None, bool]:
        """Record an announce; return (record, whether it is a newly seen incarnation)."""
        if msg.flags & wire.F_LEAVING:
            self._by_inc.pop(msg.incarnation, None)
            return None, False
        interval = min(MAX_INTERVAL, msg.interval_ms / 1000)
        lifetime = max(MIN_LIFETIME, MISSED_INTERVALS * interval)
        known = self._by_inc.get(msg.incarnation)
        if known is not None:
            if known.public_key != msg.public_key or known.name != msg.name:
                return known, False     # an incarnation's identity never changes: ignore the rewrite
            known.addr, known.wants, known.flags = addr, msg.wants, msg.flags
            known.partner, known.partner_inc = msg.partner, msg.partner_inc
            known.expires_at = now + lifetime
            return known, False
        if len(self._by_inc) >= self.limit:
            self.expire(now)
        if len(self._by_inc) >= self.limit:
            oldest = min(self._by_inc.values(), key=lambda r: r.expires_at)
            del self._by_inc[oldest.incarnation]
        rec = PeerRecord(msg.incarnation, msg.name, addr, msg.wants, msg.flags, msg.partner,
                         msg.partner_inc, msg.public_key, now, now + lifetime)
        self._by_inc[msg.incarnation] = rec
        return rec, True

    def forget(self, incarnation: int) -> None:
        self._by_inc.pop(incarnation, None)

    def expire(self, now: float) -> None:
        for inc in [i for i, r in self._by_inc.items() if r.expires_at <= now]:
            del self._by_inc[inc]

    def alive(self, now: float) -> list[PeerRecord]:
        """Live records, oldest first seen first."""
        return sorted((r for r in self._by_inc.values() if r.expires_at > now), key=lambda r: r.first_seen)

    def next_expiry(self) -> float | None:
        return min((r.expires_at for r in self._by_inc.values()), default=None)
