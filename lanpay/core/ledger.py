"""The relationship as one side sees it: balance, history, what is still pending.

The balance moves only on facts: an incoming payment applied here, or an
outgoing payment the counterpart acknowledged.  Pending and in-doubt payments are
listed but not counted.  Incoming payments are applied strictly in sequence
order (one arriving early waits, unacknowledged, for the gap to fill), so a
payment is judged against the same balance whenever it is judged, and the
acknowledgement is a single cumulative mark: everything at or below it was
applied or refused, nothing above it was.

History lines live in :mod:`.history`, bounded: past ``KEEP_LINES`` in a
direction the oldest are folded into exact totals, which a hand-back carries.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Iterator
from itertools import chain

from . import wire
from .amounts import MAX_PAYMENT_CENTS, format_amount
from .frozen import frozen
from .history import (IN_DOUBT, PENDING, REJECTED, SETTLED, Earlier, HistoryEntry, HistoryLines, Lines, Status,
                      Totals)

__all__ = ["BadHandback", "Earlier", "HistoryEntry", "HistoryLines", "Ledger", "Outcome", "Restore", "Restored",
           "Status", "Totals"]

MAX_AHEAD = 256          # an incoming seq further past the cumulative mark is refused
HELD_BITS = 64           # an Ack tells which of the 64 payments after the gap arrived
SANE = 2**53             # no real relationship gets near this many cents or payments
PART_BYTES = 1000        # bytes of entries and totals in one hand-back part: one datagram, no IP fragments
MAX_PARTS = 1 << 20      # a hand-back claiming more parts cannot describe a real relationship
MAX_DECLINED_LINES = 1000  # refused incoming payments told one by one; later ones are only counted: refusals
                           # cost the sender nothing, so they must not flood the screen (their lines are kept
                           # like any other, within the history's bound)
NUMBER_GAP = 1000        # numbers a restarted side skips: its lost process may have given out some
                         # that never reached the survivor, and a number must never name two payments
_ENTRY_FIXED = 25        # encoded size of a hand-back entry without its memo, counted generously
_EARLIER_SIZE = 41       # encoded size of one direction's totals in a hand-back part


class Outcome(enum.Enum):
    PROCESSED = "processed"     # new: applied or refused now, or held until the gap below fills
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"       # same seq, different amount or memo: a protocol violation
    INVALID = "invalid"         # beyond the window, or an amount no honest peer can send


# Members compared on every datagram, bound once: on CPython 3.11 reading a member off its
# Enum class passes through the Enum metaclass's __getattr__ hook, several times the cost of
# reading a global.
_PROCESSED, _DUPLICATE, _CONFLICT, _INVALID = Outcome.PROCESSED, Outcome.DUPLICATE, Outcome.CONFLICT, Outcome.INVALID
_STATUS_PENDING, _STATUS_CONFIRMED, _STATUS_RECEIVED, _STATUS_REJECTED = \
    Status.PENDING, Status.CONFIRMED, Status.RECEIVED, Status.REJECTED


class Ledger:
    def __init__(self, limit: int | None = None, keep: int | None = None) -> None:
        self.limit = limit
        self.balance = 0
        self.out_next = 1
        self.in_cum = 0
        self.peer_issued = 0                       # the highest seq the counterpart gave out, as far as we know
        self.waiting: dict[int, tuple[int, str, float]] = {}   # early arrivals: seq -> (amount, memo, at)
        self.applied_before_handback: int | None = None   # a hand-back under way: the lost process's in_cum
        self.in_rejected: dict[int, int] = {}     # seq -> reason, pruned by the sender's floor
        self.out_settled = 0
        self.in_settled = 0
        self.declined_lines = 0                     # refusals told one by one
        self.declined_uncounted = 0                 # refusals past MAX_DECLINED_LINES: counted, not told
        self.outs = Lines("out", keep)              # history lines, each direction in seq order
        self.ins = Lines("in", keep)
        self._unresolved: dict[int, HistoryEntry] = {}   # outgoing seq -> entry, oldest first
        self._index: dict[int, int] = {}                 # outgoing seq -> its line, while unresolved

    # ------------------------------------------------------------ outgoing
    def new_outgoing(self, amount: int, memo: str, now: float) -> HistoryEntry:
        entry = HistoryEntry(self.out_next, "out", amount, memo, now, _STATUS_PENDING)
        self._index[entry.seq] = self.outs.add(entry.seq, amount, memo, now, PENDING)
        self._unresolved[entry.seq] = entry
        self.out_next += 1
        return entry

    @property
    def issued(self) -> int:
        """The highest payment number this side has given out."""
        return self.out_next - 1

    def pending(self) -> list[HistoryEntry]:
        """Unresolved outgoing payments, oldest first (their entries are kept ready: this is one copy)."""
        return list(self._unresolved.values())

    @property
    def unresolved(self) -> bool:
        """Whether any outgoing payment awaits its outcome (without copying the list)."""
        return bool(self._unresolved)

    def first_pending(self) -> HistoryEntry | None:
        """The oldest unresolved payment not yet told in doubt (the oldest of all, nearly always)."""
        for entry in self._unresolved.values():
            if entry.status is _STATUS_PENDING:
                return entry
        return None

    def outgoing(self, seq: int) -> HistoryEntry | None:
        entry = self._unresolved.get(seq)
        if entry is not None:
            return entry
        index = self.outs.find(seq)
        return None if index is None else self.outs.entry(index)

    def floor(self) -> int:
        """Every outgoing seq at or below this is resolved."""
        first = next(iter(self._unresolved), self.out_next)
        return first - 1

    def mark_in_doubt(self, seq: int) -> HistoryEntry | None:
        entry = self._unresolved.get(seq)
        if entry is None or entry.status is not Status.PENDING:
            return None
        doubted = HistoryEntry(seq, "out", entry.amount, entry.memo, entry.at, Status.IN_DOUBT)
        self._unresolved[seq] = doubted              # a dict keeps a key's place when its value changes
        self.outs.set_state(self._index[seq], IN_DOUBT)
        return doubted

    def confirm(self, seq: int) -> HistoryEntry | None:
        """The counterpart applied ``seq``: debit it. None if it was not unresolved."""
        entry = self._resolve(seq, SETTLED, _STATUS_CONFIRMED)
        if entry is not None:
            self.balance -= entry.amount
            self.out_settled += 1
        return entry

    def reject(self, seq: int, reason: str) -> HistoryEntry | None:
        return self._resolve(seq, REJECTED, Status.REJECTED, reason)

    def _resolve(self, seq: int, state: int, status: Status, reason: str = "") -> HistoryEntry | None:
        """Settle an unresolved payment: constant work, whatever the history holds."""
        entry = self._unresolved.pop(seq, None)
        if entry is None:
            return None
        self.outs.set_state(self._index.pop(seq), state, reason)
        return HistoryEntry(seq, "out", entry.amount, entry.memo, entry.at, status, reason)

    # ------------------------------------------------------------ incoming
    def processed(self, seq: int) -> bool:
        return seq <= self.in_cum

    def receive(self, seq: int, amount: int, memo: str, now: float) -> tuple[Outcome, list[HistoryEntry]]:
        """Take an incoming payment; return the outcome and the entries processed now, in order.

        A payment arriving before the one below it is held, not acknowledged, and
        processed when the gap fills: the balance it is judged against never
        depends on the order in which the network delivered.
        """
        if seq < 1 or not 1 <= amount <= MAX_PAYMENT_CENTS or seq > self.in_cum + MAX_AHEAD:
            return _INVALID, []
        if seq <= self.in_cum:                  # processed already
            index = self.ins.find(seq)          # a line folded into the totals is only a duplicate
            if index is not None and self.ins.content(index) != (amount, memo):
                return _CONFLICT, []
            return _DUPLICATE, []
        held = self.waiting.get(seq)
        if held is not None:
            return (_DUPLICATE if held[:2] == (amount, memo) else _CONFLICT), []
        if seq > self.peer_issued:
            self.peer_issued = seq
        self.waiting[seq] = (amount, memo, now)
        done = []
        while self.in_cum + 1 in self.waiting:
            self.in_cum += 1
            amount_, memo_, at = self.waiting.pop(self.in_cum)
            done.append(self._judge(self.in_cum, amount_, memo_, at))
        return _PROCESSED, done

    def _judge(self, seq: int, amount: int, memo: str, at: float) -> HistoryEntry:
        """Apply the next incoming payment, or refuse it if it would pass our limit."""
        if self.limit is not None and self.balance + amount > self.limit:
            self.in_rejected[seq] = wire.REJECT_OVER_LIMIT
            reason = wire.REJECT_TEXT[wire.REJECT_OVER_LIMIT]
            if self.declined_lines >= MAX_DECLINED_LINES:
                self.declined_uncounted += 1
            else:
                self.declined_lines += 1
            self.ins.add(seq, amount, memo, at, REJECTED, reason)   # the payer's words, as sent
            mine = f"it would exceed your limit of {format_amount(self.limit)}"
            return HistoryEntry(seq, "in", amount, memo, at, _STATUS_REJECTED, mine)
        self.balance += amount
        self.in_settled += 1
        self.ins.add(seq, amount, memo, at)
        return HistoryEntry(seq, "in", amount, memo, at, _STATUS_RECEIVED)

    def heard_issued(self, issued: int) -> None:
        """The counterpart says it gave out payment numbers up to ``issued``."""
        if issued < SANE:
            self.peer_issued = max(self.peer_issued, issued)

    def forget_rejections(self, floor: int) -> None:
        """The sender has resolved everything up to ``floor``; stop repeating those rejections."""
        if not self.in_rejected:
            return
        for seq in [s for s in self.in_rejected if s <= floor]:
            del self.in_rejected[seq]

    def ack(self) -> wire.Ack:
        """What we processed, and every rejection among it the sender may not know of yet.

        If more rejections are outstanding than one ack can list, the ack covers only
        seqs below the first unlisted one: a covered seq missing from the list would
        read as accepted.
        """
        if not self.in_rejected:
            return wire.Ack(self.in_cum, (), self._held(self.in_cum) if self.waiting else 0)
        cum, rejections, _ = self.final()
        return wire.Ack(cum, rejections, self._held(cum))

    def final(self) -> tuple[int, tuple[wire.Rejection, ...], bool]:
        """What this process applied of the counterpart's payments, said once it will apply no
        more (leaving, or fenced off): the cumulative mark, the rejections the sender may not
        know of, and whether the mark is the whole truth.  A list too long for one message
        lowers the mark below the first unlisted rejection (every Ack is cut the same way);
        then payments above the mark may have been applied, so the mark is not complete."""
        rejections = [wire.Rejection(s, r) for s, r in sorted(self.in_rejected.items())]
        if len(rejections) <= wire.MAX_LIST:
            return self.in_cum, tuple(rejections), True
        cum = min(self.in_cum, rejections[wire.MAX_LIST].seq - 1)
        return cum, tuple(rejections[:wire.MAX_LIST]), False

    def _held(self, cum: int) -> int:
        """The payments waiting beyond the gap at ``cum + 1``, as the Ack's bitmap of the 64 after it."""
        bits = 0
        for seq in self.waiting:
            offset = seq - cum - 2
            if 0 <= offset < HELD_BITS:
                bits |= 1 << offset
        return bits

    # ------------------------------------------------------------ views
    def history(self) -> HistoryLines:
        """The kept lines in time order, with the totals of the lines folded before them."""
        lines = sorted(chain(self.outs.entries(), self.ins.entries()), key=lambda e: (e.at, e.direction, e.seq))
        return HistoryLines(lines, self.earlier())

    def payments(self) -> int:
        """How many lines the whole history holds, folded ones included (without listing them)."""
        return len(self.outs) + len(self.ins) + self.earlier().lines

    def earlier(self) -> Earlier:
        """The totals of every line no longer kept one by one."""
        return Earlier(self.outs.totals(), self.ins.totals())

    def digest(self, mirrored: bool = False) -> bytes:
        """A short fingerprint of the settled view; ``mirrored`` gives the counterpart's expected one."""
        bal, out_n, in_n = self.balance, self.out_settled, self.in_settled
        if mirrored:
            bal, out_n, in_n = -bal, in_n, out_n
        text = f"lanpay-ledger:{bal}:{out_n}:{in_n}".encode()
        return hashlib.sha256(text).digest()[:16]

    # ------------------------------------------------------------ hand-back
    def snapshot(self, now: float) -> list[wire.Resume]:
        """The whole record, in parts of one datagram each, for a restarted counterpart.

        The kept lines go as they are held, each direction in seq order (nothing is
        sorted), with the totals of the folded ones in every part: the work is in
        proportion to what is sent, and what is kept is bounded.
        """
        earlier = tuple(_earlier(lines, outgoing) for outgoing, lines in ((1, self.outs), (0, self.ins))
                        if lines.through)
        entries = chain(_entries(self.outs, 1, now), _entries(self.ins, 0, now))
        chunks = list(_chunks(entries, PART_BYTES - 1 - _EARLIER_SIZE * len(earlier)))
        applied = self.in_cum if self.applied_before_handback is None else self.applied_before_handback
        head = (self.balance, self.out_next, applied, max(self.peer_issued, self.in_cum),
                self.out_settled, self.in_settled)
        return [wire.Resume(i, len(chunks), *head, chunk, earlier) for i, chunk in enumerate(chunks)]

    def adopt_handback(self) -> None:
        """After handing back: what the lost process sent but we never applied is void, and
        its numbers are never used again: the restarted side numbers from past them, and past
        NUMBER_GAP more it may have given out unheard.  A hand-back begun again before the first
        was taken up (the restarted process asked anew) voids from the same number: the restore
        notice must cover every payment the lost process left unapplied."""
        if self.applied_before_handback is None:
            self.applied_before_handback = self.in_cum
        self.in_cum = max(self.in_cum, self.peer_issued) + NUMBER_GAP
        self.peer_issued = self.in_cum
        self.waiting.clear()
        self.in_rejected.clear()

    def handback_taken(self) -> None:
        """The restarted side took the record: the numbers voided are told, nothing is pending."""
        self.applied_before_handback = None


_WIRE_STATE = {PENDING: wire.E_PENDING, IN_DOUBT: wire.E_PENDING, SETTLED: wire.E_SETTLED, REJECTED: wire.E_REJECTED}


def _entries(lines: Lines, outgoing: int, now: float) -> Iterator[wire.Entry]:
    for seq, amount, memo, at, state, reason in lines.raw():
        age = min(int(max(0.0, now - at) * 1000), 2**32 - 1)
        code = _reason_code(reason) if state == REJECTED else 0
        yield wire.Entry(outgoing, seq, amount, _WIRE_STATE[state], code, age, memo)


def _earlier(lines: Lines, outgoing: int) -> wire.Earlier:
    t = lines.totals()
    return wire.Earlier(outgoing, t.through, t.settled, t.settled_cents, t.refused, t.refused_cents)


def _reason_code(text: str) -> int:
    for code, words in wire.REJECT_TEXT.items():
        if words == text:
            return code
    return wire.REJECT_REFUSED


def _chunks(entries: Iterable[wire.Entry], budget: int) -> Iterator[tuple[wire.Entry, ...]]:
    """Entries grouped so each part fits one datagram (``budget`` bytes of entries); always at least one part."""
    chunk: list[wire.Entry] = []
    size = 0
    for e in entries:
        cost = _ENTRY_FIXED + len(e.memo.encode())
        if chunk and (size + cost > budget or len(chunk) == wire.MAX_LIST):
            yield tuple(chunk)
            chunk, size = [], 0
        chunk.append(e)
        size += cost
    yield tuple(chunk)


class BadHandback(ValueError):
    """A hand-back that cannot describe a real relationship."""


@frozen
class Restored:
    """What a completed hand-back gives the restarted side."""

    ledger: Ledger
    judged: list[HistoryEntry]          # the survivor's pending payments, processed here now
    voided: tuple[int, int]             # numbers our lost process may have used that never arrived


_Head = tuple[int, int, int, int, int, int, int, tuple[wire.Earlier, ...]]


class Restore:
    """The restarted side collecting the parts of a hand-back, in any order."""

    def __init__(self) -> None:
        self.head: _Head | None = None
        self.parts: dict[int, tuple[wire.Entry, ...]] = {}

    @property
    def complete(self) -> bool:
        return self.head is not None and len(self.parts) == self.head[0]

    def add(self, msg: wire.Resume) -> None:
        """Keep one part; raise BadHandback if it contradicts the others or no relationship fits it."""
        head: _Head = (msg.parts, msg.balance, msg.out_next, msg.in_cum, msg.peer_issued, msg.out_settled,
                       msg.in_settled, msg.earlier)
        if self.head is None:
            if not (1 <= msg.parts <= MAX_PARTS and abs(msg.balance) < SANE
                    and all(0 <= n < SANE for n in head[2:7]) and msg.out_next >= 1
                    and msg.peer_issued >= msg.in_cum):
                raise BadHandback("numbers beyond any real relationship")
            _check_earlier(msg)
            self.head = head
        elif head != self.head:
            raise BadHandback("parts disagree")
        if msg.part >= msg.parts:
            raise BadHandback("part beyond the count")
        self.parts.setdefault(msg.part, msg.entries)

    def build(self, limit: int | None, now: float) -> Restored:
        """This side's ledger, mirrored from the survivor's record, with its pending payments judged."""
        assert self.head is not None and self.complete
        _, balance, out_next, in_cum, peer_issued, out_settled, in_settled, earlier = self.head
        led = Ledger(limit)
        led.balance = -balance
        led.out_settled, led.in_settled = in_settled, out_settled
        last = {0: 0, 1: 0}                 # per direction of the survivor's: the highest seq given so far
        for e in earlier:
            (led.ins if e.outgoing else led.outs).adopt(
                Totals(e.through, e.settled, e.settled_cents, e.refused, e.refused_cents))
            last[e.outgoing] = e.through
        pending: dict[int, wire.Entry] = {}
        for part in range(len(self.parts)):
            for e in self.parts[part]:
                _check_entry(e, out_next, in_cum, last)
                if e.outgoing and e.status == wire.E_PENDING:
                    pending[e.seq] = e
                else:
                    _mirror(led, e, now)
        if list(pending) != list(range(out_next - len(pending), out_next)):
            raise BadHandback("pending payments are not the newest ones")
        judged = [led._judge(seq, e.amount, e.memo, now - e.age_ms / 1000) for seq, e in pending.items()]
        led.in_cum = out_next - 1
        led.out_next = peer_issued + 1 + NUMBER_GAP
        led.peer_issued = out_next - 1
        return Restored(led, judged, (in_cum + 1, led.out_next - 1))


def _check_earlier(msg: wire.Resume) -> None:
    """The totals of folded lines must fit the summary: one record per direction, no more lines
    than numbers, no more money than that many payments can carry."""
    if len({e.outgoing for e in msg.earlier}) != len(msg.earlier) or any(e.outgoing > 1 for e in msg.earlier):
        raise BadHandback("totals given twice")
    for e in msg.earlier:
        top, settled = (msg.out_next - 1, msg.out_settled) if e.outgoing else (msg.in_cum, msg.in_settled)
        if not (1 <= e.settled + e.refused <= e.through <= top and e.settled <= settled
                and e.settled <= e.settled_cents <= e.settled * MAX_PAYMENT_CENTS
                and e.refused <= e.refused_cents <= e.refused * MAX_PAYMENT_CENTS):
            raise BadHandback("totals no relationship can hold")


def _check_entry(e: wire.Entry, out_next: int, in_cum: int, last: dict[int, int]) -> None:
    """One line: possible at all, and above every line given before it in its direction (above the
    folded ones too): each direction travels in seq order, so a line given twice shows."""
    limit = out_next if e.outgoing else in_cum + 1
    if not (1 <= e.seq < limit and 1 <= e.amount <= MAX_PAYMENT_CENTS) or e.status > wire.E_PENDING:
        raise BadHandback("an entry no relationship can hold")
    if not e.outgoing and e.status == wire.E_PENDING:
        raise BadHandback("a received payment cannot be pending")
    if e.seq <= last[e.outgoing]:
        raise BadHandback("an entry given twice, out of order, or already in the totals")
    last[e.outgoing] = e.seq


def _mirror(led: Ledger, e: wire.Entry, now: float) -> None:
    lines = led.ins if e.outgoing else led.outs
    if e.status == wire.E_REJECTED:
        lines.add(e.seq, e.amount, e.memo, now - e.age_ms / 1000, REJECTED, wire.REJECT_TEXT.get(e.reason, "refused"))
    else:
        lines.add(e.seq, e.amount, e.memo, now - e.age_ms / 1000)
