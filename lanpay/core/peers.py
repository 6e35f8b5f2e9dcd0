"""The bounded table of peers heard announcing, with expiry.

Discovery is unauthenticated, so the table trusts nothing: it only remembers who
said what, from where, until they stop saying it.  A record lives on what was
heard (a claimed interval is capped by what the sender's state allows), one
host cannot fill the table, and an incarnation's address moves only once the
old address has gone quiet, so a forger can neither keep a record alive, nor
crowd out a real peer, nor redirect one that is still announcing.  A leaving
announce from a record's own address forgets it, but the table remembers what
it knew until the record would have expired: a leaving announce forged from a
peer's address (a spoofed source) then costs the peer nothing once it announces
again, not even its place in the order peers were first heard.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from . import wire

LOOKING_INTERVAL = (2.0, 3.0)     # announce intervals: three missed expire a free record within 10 s
PAIRED_INTERVAL = (20.0, 30.0)
MAX_PEERS = 64
MAX_PER_HOST = 4         # records one source address may hold: a flood from one host stays its own problem
MISSED_INTERVALS = 3
MIN_LIFETIME = 3.0
MOVE_AFTER = LOOKING_INTERVAL[1] + 0.5   # an address this quiet may be replaced by a new one


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
    heard_at: float = 0.0    # the last announce from ``addr``
    heard: int = 1           # announces heard from this incarnation

    @property
    def paired(self) -> bool:
        return bool(self.flags & wire.F_PAIRED)

    @property
    def uses_code(self) -> bool:
        return bool(self.flags & wire.F_CODE)


def lifetime(msg: wire.Announce) -> float:
    """How long a record outlives its last announce: a few of the sender's intervals, where
    the interval it claims counts only up to the longest its state may use."""
    longest = PAIRED_INTERVAL[1] if msg.flags & wire.F_PAIRED else LOOKING_INTERVAL[1]
    return max(MIN_LIFETIME, MISSED_INTERVALS * min(longest, msg.interval_ms / 1000))


class PeerTable:
    def __init__(self, limit: int = MAX_PEERS) -> None:
        self.limit = limit
        self._by_inc: dict[int, PeerRecord] = {}
        self._left: dict[int, PeerRecord] = {}      # said they leave, until they would have expired

    def __len__(self) -> int:
        return len(self._by_inc)

    def get(self, incarnation: int) -> PeerRecord | None:
        return self._by_inc.get(incarnation)

    def update(self, msg: wire.Announce, addr: tuple[str, int], now: float) -> tuple[PeerRecord | None, bool]:
        """Record an announce; return (record, whether it is a newly seen incarnation)."""
        known = self._by_inc.get(msg.incarnation)
        if msg.flags & wire.F_LEAVING:
            if known is not None and known.addr == addr:
                self._leaves(known)                     # from where it announces: it leaves
            return None, False
        if known is not None:
            return self._refresh(known, msg, addr, now), False
        back = self._back(msg, addr, now)
        if back is not None:
            return back, True
        self._make_room(addr, now)
        rec = PeerRecord(msg.incarnation, msg.name, addr, msg.wants, msg.flags, msg.partner,
                         msg.partner_inc, msg.public_key, now, now + lifetime(msg), now)
        self._by_inc[msg.incarnation] = rec
        return rec, True

    def _leaves(self, rec: PeerRecord) -> None:
        """Forget a record that said it leaves, but remember it (boundedly) in case the claim was forged."""
        del self._by_inc[rec.incarnation]
        if len(self._left) >= self.limit:
            del self._left[next(iter(self._left))]
        self._left[rec.incarnation] = rec

    def _back(self, msg: wire.Announce, addr: tuple[str, int], now: float) -> PeerRecord | None:
        """A peer said to have left announces again, from the same address, unchanged: the leaving
        announce was not its own.  It gets its record back as it was, first heard when it was."""
        rec = self._left.pop(msg.incarnation, None)
        if rec is None or rec.addr != addr or now >= rec.expires_at \
                or (rec.public_key, rec.name) != (msg.public_key, msg.name):
            return None
        self._make_room(addr, now)
        self._by_inc[rec.incarnation] = rec
        return self._refresh(rec, msg, addr, now)

    def _refresh(self, rec: PeerRecord, msg: wire.Announce, addr: tuple[str, int], now: float) -> PeerRecord:
        if rec.public_key != msg.public_key or rec.name != msg.name:
            return rec                  # an incarnation's identity never changes: ignore the rewrite
        if addr != rec.addr:
            if now < rec.heard_at + MOVE_AFTER:
                return rec              # its address still announces: someone else is lying
            rec.addr = addr
        rec.heard_at = now
        rec.heard += 1
        rec.wants, rec.flags = msg.wants, msg.flags
        rec.partner, rec.partner_inc = msg.partner, msg.partner_inc
        rec.expires_at = now + lifetime(msg)
        return rec

    def _make_room(self, addr: tuple[str, int], now: float) -> None:
        """Before a new record: at most MAX_PER_HOST per host, at most ``limit`` in all; the
        host holding the most records gives one up first."""
        self.expire(now)
        host = addr[0]
        mine = [r for r in self._by_inc.values() if r.addr[0] == host]
        if len(mine) >= MAX_PER_HOST:
            self._evict(mine)
        elif len(self._by_inc) >= self.limit:
            counts = Counter(r.addr[0] for r in self._by_inc.values())
            most = max(counts.values())
            self._evict([r for r in self._by_inc.values() if counts[r.addr[0]] == most])

    def _evict(self, group: list[PeerRecord]) -> None:
        """Give up the record heard least often (a forged one-shot incarnation, usually), the one
        closest to expiry among those: a peer that keeps announcing is not pushed out by a flood
        that spoofs its address."""
        del self._by_inc[min(group, key=lambda r: (r.heard, r.expires_at)).incarnation]

    def forget(self, incarnation: int) -> None:
        self._by_inc.pop(incarnation, None)
        self._left.pop(incarnation, None)

    def expire(self, now: float) -> None:
        for inc in [i for i, r in self._by_inc.items() if r.expires_at <= now]:
            del self._by_inc[inc]
        for inc in [i for i, r in self._left.items() if r.expires_at <= now]:
            del self._left[inc]

    def alive(self, now: float) -> list[PeerRecord]:
        """Live records, oldest first seen first."""
        return sorted((r for r in self._by_inc.values() if r.expires_at > now), key=lambda r: r.first_seen)

    def next_expiry(self) -> float | None:
        return min((r.expires_at for r in self._by_inc.values()), default=None)
