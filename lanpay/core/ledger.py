"""The relationship as one side sees it: balance, history, what is still pending.

The balance moves only on facts: an incoming payment applied here, or an
outgoing payment the counterpart acknowledged.  Pending and in-doubt payments are
listed but not counted.  Incoming sequence numbers are remembered as a
cumulative mark plus a bounded set above it, so a duplicate is recognised (and
its amount checked) however late it arrives.
"""

from __future__ import annotations

import hashlib
import enum
from dataclasses import dataclass, replace

from . import wire
from .amounts import MAX_PAYMENT_CENTS

MAX_AHEAD = 256          # an incoming seq further past the cumulative mark is refused
HANDBACK_ENTRIES = 16    # history lines carried in a hand-back
SANE = 2**53             # no real relationship gets near this many cents or payments


class Status(str, enum.Enum):
    PENDING = "pending"
    IN_DOUBT = "in-doubt"
    CONFIRMED = "confirmed"
    RECEIVED = "received"
    REJECTED = "rejected"


class Outcome(enum.Enum):
    APPLIED = "applied"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"       # same seq, different amount: a protocol violation
    INVALID = "invalid"         # beyond the window, or an amount no honest peer can send


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    direction: str   # "in" or "out"
    amount: int
    memo: str
    at: float
    status: Status
    reason: str = ""


class Ledger:
    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.balance = 0
        self.out_next = 1
        self.in_cum = 0
        self.in_above: set[int] = set()
        self.in_rejected: dict[int, int] = {}     # seq -> reason, pruned by the sender's floor
        self.out_settled = 0
        self.in_settled = 0
        self._entries: dict[tuple[str, int], HistoryEntry] = {}
        self._unresolved: dict[int, None] = {}    # outgoing seqs, in order: pending() stays cheap

    # ------------------------------------------------------------ outgoing
    def new_outgoing(self, amount: int, memo: str, now: float) -> HistoryEntry:
        entry = HistoryEntry(self.out_next, "out", amount, memo, now, Status.PENDING)
        self._entries[("out", entry.seq)] = entry
        self._unresolved[entry.seq] = None
        self.out_next += 1
        return entry

    def pending(self) -> list[HistoryEntry]:
        """Unresolved outgoing payments, oldest first."""
        return [self._entries[("out", seq)] for seq in self._unresolved]

    def outgoing(self, seq: int) -> HistoryEntry | None:
        return self._entries.get(("out", seq))

    def floor(self) -> int:
        """Every outgoing seq at or below this is resolved."""
        pend = self.pending()
        return (pend[0].seq if pend else self.out_next) - 1

    def mark_in_doubt(self, seq: int) -> HistoryEntry | None:
        return self._resolve(seq, Status.IN_DOUBT, only_from=(Status.PENDING,))

    def confirm(self, seq: int) -> HistoryEntry | None:
        """The counterpart applied ``seq``: debit it. None if it was not unresolved."""
        entry = self._resolve(seq, Status.CONFIRMED)
        if entry is not None:
            self.balance -= entry.amount
            self.out_settled += 1
        return entry

    def reject(self, seq: int, reason: str) -> HistoryEntry | None:
        return self._resolve(seq, Status.REJECTED, reason=reason)

    def _resolve(self, seq: int, status: Status, reason: str = "",
                 only_from: tuple[Status, ...] = (Status.PENDING, Status.IN_DOUBT)) -> HistoryEntry | None:
        entry = self._entries.get(("out", seq))
        if entry is None or entry.status not in only_from:
            return None
        new = replace(entry, status=status, reason=reason)
        self._entries[("out", seq)] = new
        if status not in (Status.PENDING, Status.IN_DOUBT):
            self._unresolved.pop(seq, None)
        return new

    # ------------------------------------------------------------ incoming
    def processed(self, seq: int) -> bool:
        return seq <= self.in_cum or seq in self.in_above

    def receive(self, seq: int, amount: int, memo: str, now: float) -> Outcome:
        """Apply an incoming payment exactly once, or say why not."""
        if seq < 1 or not 1 <= amount <= MAX_PAYMENT_CENTS or seq > self.in_cum + MAX_AHEAD:
            return Outcome.INVALID
        if self.processed(seq):
            known = self._entries.get(("in", seq))
            if known is not None and (known.amount != amount or known.memo != memo):
                return Outcome.CONFLICT
            return Outcome.DUPLICATE
        if self.limit is not None and self.balance + amount > self.limit:
            self.in_rejected[seq] = wire.REJECT_OVER_LIMIT
            self._entries[("in", seq)] = HistoryEntry(seq, "in", amount, memo, now, Status.REJECTED,
                                                      wire.REJECT_TEXT[wire.REJECT_OVER_LIMIT])
            self._mark_processed(seq)
            return Outcome.REJECTED
        self.balance += amount
        self.in_settled += 1
        self._entries[("in", seq)] = HistoryEntry(seq, "in", amount, memo, now, Status.RECEIVED)
        self._mark_processed(seq)
        return Outcome.APPLIED

    def _mark_processed(self, seq: int) -> None:
        self.in_above.add(seq)
        while self.in_cum + 1 in self.in_above:
            self.in_cum += 1
            self.in_above.discard(self.in_cum)

    def forget_rejections(self, floor: int) -> None:
        """The sender has resolved everything up to ``floor``; stop repeating those rejections."""
        for seq in [s for s in self.in_rejected if s <= floor]:
            del self.in_rejected[seq]

    def ack(self) -> wire.Ack:
        """What we processed, and every rejection among it the sender may not know of yet.

        If more rejections are outstanding than one ack can list, the ack covers only
        seqs below the first unlisted one: a covered seq missing from the list would
        read as accepted.
        """
        rejections = [wire.Rejection(s, r) for s, r in sorted(self.in_rejected.items())]
        cum, above = self.in_cum, self.in_above
        if len(rejections) > wire.MAX_LIST:
            bound = rejections[wire.MAX_LIST].seq
            rejections = rejections[:wire.MAX_LIST]
            cum = min(cum, bound - 1)
            above = {seq for seq in above if seq < bound}
        return wire.Ack(cum, tuple(_ranges(above)[:wire.MAX_LIST]), tuple(rejections))

    # ------------------------------------------------------------ views
    def history(self) -> list[HistoryEntry]:
        return sorted(self._entries.values(), key=lambda e: (e.at, e.direction, e.seq))

    def digest(self, mirrored: bool = False) -> bytes:
        """A short fingerprint of the settled view; ``mirrored`` gives the counterpart's expected one."""
        bal, out_n, in_n = self.balance, self.out_settled, self.in_settled
        if mirrored:
            bal, out_n, in_n = -bal, in_n, out_n
        text = f"lanpay-ledger:{bal}:{out_n}:{in_n}".encode()
        return hashlib.sha256(text).digest()[:16]

    # ------------------------------------------------------------ hand-back
    def snapshot(self, now: float) -> wire.Resume:
        recent = self.history()[-HANDBACK_ENTRIES:]
        entries = tuple(
            wire.Entry(int(e.direction == "out"), e.seq, e.amount, int(e.status == Status.REJECTED),
                       min(int(max(0.0, now - e.at) * 1000), 2**32 - 1), e.memo)
            for e in recent if e.status in (Status.CONFIRMED, Status.RECEIVED, Status.REJECTED))
        in_high = max([self.in_cum, *self.in_above])
        return wire.Resume(self.balance, self.out_next, tuple(_ranges(e.seq for e in self.pending())),
                           in_high, self.out_settled, self.in_settled, entries)

    def adopt_handback(self) -> None:
        """After handing back, gaps in what we received from the lost process are abandoned."""
        self.in_cum = max([self.in_cum, *self.in_above])
        self.in_above.clear()
        self.in_rejected.clear()

    @classmethod
    def restored(cls, snap: wire.Resume, limit: int | None, now: float) -> "Ledger":
        """This side's ledger rebuilt, mirrored, from the counterpart's record."""
        if not (abs(snap.balance) < SANE and snap.in_high < SANE and snap.out_next < SANE
                and snap.out_settled < SANE and snap.in_settled < SANE):
            raise BadHandback("numbers beyond any real relationship")
        led = cls(limit)
        led.balance = -snap.balance
        led.out_next = snap.in_high + 1
        led.out_settled, led.in_settled = snap.in_settled, snap.out_settled
        led.in_cum, led.in_above = _processed_from_pending(snap.out_pending, snap.out_next)
        for e in snap.entries:
            direction = "in" if e.outgoing else "out"
            if e.rejected:
                status = Status.REJECTED
            else:
                status = Status.RECEIVED if direction == "in" else Status.CONFIRMED
            at = now - e.age_ms / 1000
            led._entries[(direction, e.seq)] = HistoryEntry(e.seq, direction, e.amount, e.memo, at, status)
        return led


class BadHandback(ValueError):
    """A hand-back that cannot describe a real relationship."""


def _ranges(seqs) -> list[wire.Range]:  # type: ignore[no-untyped-def]
    out: list[wire.Range] = []
    for seq in sorted(seqs):
        if out and out[-1].last + 1 == seq:
            out[-1] = wire.Range(out[-1].first, seq)
        else:
            out.append(wire.Range(seq, seq))
    return out


def _processed_from_pending(pending: tuple[wire.Range, ...], out_next: int) -> tuple[int, set[int]]:
    """Which of the counterpart's seqs count as processed here: all below out_next but the pending ones."""
    if out_next < 1:
        raise BadHandback("out_next below 1")
    if not pending:
        return out_next - 1, set()
    ranges = sorted(pending, key=lambda r: r.first)
    above: set[int] = set()
    prev_last = ranges[0].first - 1
    for r in ranges:
        if not (1 <= r.first and prev_last < r.first <= r.last < out_next):
            raise BadHandback("pending ranges out of order")
        above.update(range(prev_last + 1, r.first))
        prev_last = r.last
        if len(above) > MAX_AHEAD:
            raise BadHandback("too many gaps")
    if out_next - 1 - prev_last > MAX_AHEAD:
        raise BadHandback("too many gaps")
    above.update(range(prev_last + 1, out_next))
    return ranges[0].first - 1, above
