"""The bounded table of peers heard announcing, with expiry.

An announce is signed by its incarnation's key (the incarnation is the one its
keys make, ``announcer.authentic``) and counts its sender's announces, so the
table takes from an incarnation only what it said itself, and only once: a copy
from another address, a replay or a rewrite is not news and changes nothing.
What stays unauthenticated is that an incarnation is who it says: anyone may
announce new ones.  So a record lives on what was heard (a claimed interval is
capped by what the sender's state allows), and one host cannot fill the table.
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
    heard_at: float = 0.0    # the last announce
    heard: int = 1           # announces heard from this incarnation
    leaving: bool = False    # it said goodbye
    counter: int = 0         # the newest of its announces heard

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
        self._names: dict[str, int] = {}       # name -> how many records have it, for ``another``

    def __len__(self) -> int:
        return len(self._by_inc)

    def get(self, incarnation: int) -> PeerRecord | None:
        rec = self._by_inc.get(incarnation)
        return None if rec is None or rec.leaving else rec

    def news(self, msg: wire.Announce) -> bool:
        """Whether an announce could tell us anything: not a copy or replay of one we heard (its
        counter no newer), which is dropped before its signature costs a check."""
        known = self._by_inc.get(msg.incarnation)
        return known is None or msg.counter > known.counter

    def update(self, msg: wire.Announce, addr: tuple[str, int], now: float) -> tuple[PeerRecord | None, bool]:
        """Record an authentic announce; return (record, whether it is a newly seen incarnation)."""
        known = self._by_inc.get(msg.incarnation)
        if msg.flags & wire.F_LEAVING:
            if known is not None and msg.counter > known.counter:
                # Out of pairing at once; the record stays until it would have expired.
                known.leaving, known.counter = True, msg.counter
            return None, False
        if known is not None:
            return self._refresh(known, msg, addr, now), False
        self._make_room(addr, now)
        rec = PeerRecord(msg.incarnation, msg.name, addr, msg.wants, msg.flags, msg.partner,
                         msg.partner_inc, msg.public_key, now, now + lifetime(msg), now, counter=msg.counter)
        self._by_inc[msg.incarnation] = rec
        self._names[rec.name] = self._names.get(rec.name, 0) + 1
        return rec, True

    def _refresh(self, rec: PeerRecord, msg: wire.Announce, addr: tuple[str, int], now: float) -> PeerRecord:
        if msg.counter <= rec.counter:
            return rec                  # not news: a copy, a replay, or overtaken on the way
        rec.counter = msg.counter
        rec.addr = addr                 # its own newest word: where it is now
        rec.heard_at = now
        rec.heard += 1
        rec.leaving = False
        if msg.name != rec.name:
            self._uncount(rec.name)
            self._names[msg.name] = self._names.get(msg.name, 0) + 1
        rec.name, rec.wants, rec.flags = msg.name, msg.wants, msg.flags
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
        self.forget(min(group, key=lambda r: (r.heard, r.expires_at)).incarnation)

    def another(self, name: str, incarnation: int) -> bool:
        """Whether a record other than ``incarnation``'s has ``name`` (expired or not): asked for
        every datagram of a session, so it is a count, not a walk over the records."""
        count = self._names.get(name, 0)
        if count == 0:
            return False
        own = self._by_inc.get(incarnation)
        return count > (1 if own is not None and own.name == name else 0)

    def forget(self, incarnation: int) -> None:
        rec = self._by_inc.pop(incarnation, None)
        if rec is not None:
            self._uncount(rec.name)

    def _uncount(self, name: str) -> None:
        left = self._names[name] - 1
        if left:
            self._names[name] = left
        else:
            del self._names[name]

    def expire(self, now: float) -> None:
        for inc in [i for i, r in self._by_inc.items() if r.expires_at <= now]:
            self.forget(inc)

    def alive(self, now: float) -> list[PeerRecord]:
        """Live records, oldest first seen first (not those that said goodbye since last heard)."""
        return sorted((r for r in self._by_inc.values() if r.expires_at > now and not r.leaving),
                      key=lambda r: r.first_seen)

    def next_expiry(self) -> float | None:
        return min((r.expires_at for r in self._by_inc.values()), default=None)
