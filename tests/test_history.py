"""The bounded history: past the bound the oldest lines become exact totals, the same on both
sides and on a restored side, and the ``history`` command says what was folded."""

from __future__ import annotations

import dataclasses
import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invariants import Book, check_lives
from lanpay.core import history, wire
from lanpay.core.history import KEEP_LINES, Earlier, HistoryLines, Lines, Status, Totals
from lanpay.core.ledger import BadHandback, Ledger, Restore
from lanpay.render import earlier_text, history_record, history_text
from sim import Conditions, Net

KEEP = 5


def pay(alice: Ledger, bob: Ledger, amount: int, memo: str = "") -> Status:
    """Alice pays Bob over a perfect link: Bob judges it, Alice learns the outcome from his ack."""
    entry = alice.new_outgoing(amount, memo, now=0.0)
    _, [done] = bob.receive(entry.seq, amount, memo, now=0.0)
    if done.status is Status.REJECTED:
        alice.reject(entry.seq, wire.REJECT_TEXT[wire.REJECT_OVER_LIMIT])
    else:
        alice.confirm(entry.seq)
    bob.forget_rejections(entry.seq)
    return done.status


def restore(survivor: Ledger, now: float = 0.0) -> Ledger:
    r = Restore()
    for part in survivor.snapshot(now):
        r.add(part)
    assert r.complete
    return r.build(None, now).ledger


# ------------------------------------------------------------------ folding

def test_past_the_bound_the_oldest_lines_become_exact_totals() -> None:
    alice, bob = Ledger(keep=KEEP), Ledger(keep=KEEP)
    for amount in range(1, 13):                       # 12 payments of 0.01 .. 0.12
        pay(alice, bob, amount, f"m{amount}")
    assert [e.seq for e in alice.history()] == [8, 9, 10, 11, 12]
    assert alice.earlier() == Earlier(sent=Totals(through=7, settled=7, settled_cents=28))
    assert bob.earlier() == Earlier(received=Totals(through=7, settled=7, settled_cents=28))
    assert alice.balance == -78 == -bob.balance
    assert alice.history().earlier.sent.settled_cents + sum(e.amount for e in alice.history()) == 78


def test_refused_payments_are_counted_in_the_totals_apart_from_settled_ones() -> None:
    alice, bob = Ledger(keep=KEEP), Ledger(limit=1000, keep=KEEP)
    statuses = [pay(alice, bob, amount) for amount in (600, 500, 400, 300, 700)]
    assert statuses == [Status.RECEIVED, Status.REJECTED, Status.RECEIVED, Status.REJECTED, Status.REJECTED]
    pay(bob, alice, 500)
    assert [pay(alice, bob, amount) for amount in range(1, 7)] == [Status.RECEIVED] * 6
    assert bob.earlier().received == Totals(through=6, settled=3, settled_cents=1001, refused=3, refused_cents=1500)
    assert alice.earlier().sent == bob.earlier().received
    assert bob.balance == 1000 - 500 + 21 == -alice.balance


def test_a_pending_payment_holds_the_folding_back_until_it_is_resolved() -> None:
    """Only resolved lines are folded, oldest first: the totals never count a payment that may yet fail."""
    alice = Ledger(keep=KEEP)
    for amount in (50, 1, 2, 3, 4, 5, 6, 7, 8):
        alice.new_outgoing(amount, "", now=0.0)
    for seq in range(2, 10):
        alice.confirm(seq)
    alice.mark_in_doubt(1)
    assert len(alice.history()) == 9 and alice.earlier() == Earlier()
    alice.confirm(1)
    assert alice.earlier().sent == Totals(through=4, settled=4, settled_cents=50 + 1 + 2 + 3)
    assert [e.seq for e in alice.history()] == [5, 6, 7, 8, 9] and alice.balance == -86


def test_both_sides_fold_the_same_lines_whatever_order_the_acks_come_in() -> None:
    """Bob judges ten payments before Alice hears of any; she folds once she knows, and they agree."""
    alice, bob = Ledger(keep=KEEP), Ledger(limit=40, keep=KEEP)
    entries = [alice.new_outgoing(amount, "x", now=0.0) for amount in (9, 30, 2, 8, 7, 6, 5, 4, 3, 1)]
    for e in reversed(entries):
        bob.receive(e.seq, e.amount, e.memo, now=0.0)
    assert bob.earlier().received.through == 5 and alice.earlier() == Earlier()
    ack = bob.ack()
    refused = {r.seq for r in ack.rejections}
    for e in entries:
        alice.reject(e.seq, "over") if e.seq in refused else alice.confirm(e.seq)
    assert alice.earlier().mirrored() == bob.earlier()
    assert [(e.seq, e.amount) for e in alice.history()] == [(e.seq, e.amount) for e in bob.history()]
    assert alice.balance == -bob.balance


def test_a_repeated_payment_already_folded_is_a_duplicate_not_a_conflict_or_a_second_credit() -> None:
    alice, bob = Ledger(keep=KEEP), Ledger(keep=KEEP)
    for amount in range(1, 13):
        pay(alice, bob, amount)
    outcome, done = bob.receive(1, 1, "", now=1.0)
    assert (outcome.value, done, bob.balance) == ("duplicate", [], 78)
    assert bob.receive(10, 11, "", now=1.0)[0].value == "conflict"      # still kept: still checked


def test_the_incoming_lines_the_counterpart_can_grow_stay_within_the_bound() -> None:
    bob = Ledger(limit=0, keep=KEEP)
    for seq in range(1, 3000):
        bob.receive(seq, 5, "x" * 64, now=0.0)
        bob.forget_rejections(seq - 1)
    assert len(bob.ins) == KEEP and len(bob.ins.seqs) < KEEP + 1024      # folded ones are cut off too
    assert bob.earlier().received == Totals(through=2994, refused=2994, refused_cents=14970)


def test_the_bound_is_ten_thousand_lines_each_way() -> None:
    assert KEEP_LINES == 10_000 and Ledger().outs.keep == Ledger().ins.keep == KEEP_LINES


def test_lines_cut_off_the_front_keep_their_indexes() -> None:
    """Folded lines are cut off the arrays in runs; an unresolved line's index stays valid."""
    lines = Lines("out", keep=3)
    indexes = [lines.add(seq, seq, "", 0.0) for seq in range(1, 3000)]
    pending = lines.add(3000, 77, "late", 1.0, history.PENDING)
    assert lines.base > 0 and lines.find(2999) == indexes[-1] and lines.find(5) is None
    lines.set_state(pending, history.SETTLED)
    assert lines.entry(pending).status is Status.CONFIRMED and lines.entry(pending).memo == "late"
    assert lines.totals() == Totals(2997, 2997, sum(range(1, 2998)))


# ------------------------------------------------------------------ hand-back

def test_a_restored_side_gets_the_totals_and_folds_as_the_survivor_did() -> None:
    alice, bob = Ledger(keep=KEEP), Ledger(limit=20, keep=KEEP)
    for amount in (9, 30, 2, 8, 7, 6, 5, 4, 3, 1, 2, 2):
        pay(alice, bob, amount, "tea")
        pay(bob, alice, 1)
    reborn = restore(alice)                               # bob restarts; alice hands back
    assert reborn.earlier() == alice.earlier().mirrored() == bob.earlier()
    assert [(e.direction, e.seq, e.amount, e.status) for e in reborn.history()] == \
        [(e.direction, e.seq, e.amount, e.status) for e in bob.history()]
    assert reborn.balance == bob.balance and reborn.digest() == bob.digest()
    assert earlier_text(reborn.history().earlier) == earlier_text(bob.history().earlier)


def test_the_restored_side_folds_the_pending_payments_it_judges_like_any_other() -> None:
    alice, bob = Ledger(keep=KEEP), Ledger(keep=KEEP)
    for amount in range(1, 6):
        pay(alice, bob, amount)
    for amount in (10, 20):
        alice.new_outgoing(amount, "", now=0.0)           # bob dies before these arrive
    reborn = restore(alice)
    assert reborn.earlier().received == Totals(through=2, settled=2, settled_cents=3)
    for seq in (6, 7):
        alice.confirm(seq)
    assert alice.earlier() == reborn.earlier().mirrored()


def test_a_hand_back_sends_the_kept_lines_and_the_totals_only() -> None:
    """The snapshot costs what is sent: the lines kept, not the whole history."""
    alice, bob = Ledger(keep=KEEP), Ledger(keep=KEEP)
    for amount in range(1, 500):
        pay(alice, bob, amount, "m" * (amount % 65))
    parts = alice.snapshot(now=0.0)
    assert sum(len(p.entries) for p in parts) == KEEP
    assert {p.earlier for p in parts} == {(wire.Earlier(1, 494, 494, sum(range(1, 495)), 0, 0),)}
    assert all(wire.decode_inner(wire.encode_inner(p)) == p for p in parts)


def test_parts_with_totals_still_fit_the_datagram_of_a_part_without() -> None:
    """Totals take their bytes from the entries' share: no part is over 1 082 bytes on the wire."""
    alice, bob = Ledger(keep=40), Ledger(keep=40)
    for i in range(60):
        pay(alice, bob, 5, "m" * (i % 65))
        pay(bob, alice, 3, "é" * (i % 33))
    parts = alice.snapshot(now=0.0)
    assert len(parts[0].earlier) == 2 and len(parts) > 1
    assert max(len(wire.encode_inner(p)) + 36 for p in parts) <= 1082


def totals(outgoing: int = 1, through: int = 3, settled: int = 2, cents: int = 10, refused: int = 1,
           refused_cents: int = 5) -> wire.Earlier:
    return wire.Earlier(outgoing, through, settled, cents, refused, refused_cents)


def test_totals_that_fit_the_summary_are_taken() -> None:
    """The control for the refusals below."""
    r = Restore()
    r.add(wire.Resume(0, 1, 0, 5, 0, 0, 2, 0, (wire.Entry(1, 4, 5, wire.E_SETTLED, 0, 0, ""),), (totals(),)))
    led = r.build(None, 0.0).ledger
    assert led.earlier().received == Totals(3, 2, 10, 1, 5) and [e.seq for e in led.history()] == [4]


@pytest.mark.parametrize(
    ("earlier", "entries", "why"),
    [
        ((totals(), totals()), (), "one direction's totals twice"),
        ((totals(outgoing=2),), (), "an unknown direction"),
        ((totals(through=9),), (), "folded past the last number given out"),
        ((totals(through=2),), (), "more lines than numbers"),
        ((totals(cents=1),), (), "fewer cents than payments"),
        ((totals(cents=2 * 10**8 + 1),), (), "more than that many payments can carry"),
        ((totals(settled=3, refused=0, refused_cents=0),), (), "more settled than the summary says"),
        ((totals(),), (wire.Entry(1, 3, 5, wire.E_SETTLED, 0, 0, ""),), "a line the totals already count"),
        ((), (wire.Entry(1, 2, 5, wire.E_SETTLED, 0, 0, ""), wire.Entry(1, 1, 5, wire.E_SETTLED, 0, 0, "")),
         "lines out of order"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_totals_no_relationship_can_hold_are_refused(earlier: tuple, entries: tuple, why: str) -> None:
    r = Restore()
    with pytest.raises(BadHandback):
        r.add(wire.Resume(0, 1, 0, 5, 0, 0, 2, 0, entries, earlier))
        r.build(None, 0.0)


# ------------------------------------------------------------------ what the user reads

def test_the_history_command_says_in_one_line_what_was_folded() -> None:
    alice, bob = Ledger(keep=2), Ledger(limit=100000, keep=2)
    for amount in (100000, 25000, 25000, 10000, 10000):
        pay(alice, bob, amount)                           # all but the first over bob's limit: refused
    for amount in (30000, 30000, 500):
        pay(bob, alice, amount)
    text = history_text(alice.history(), lambda t: t).split("\n")
    assert text[0] == ("4 earlier payments not listed: sent 1000.00 in 1, received 300.00 in 1, "
                       "2 of yours refused")
    assert text[1].split() == ["#", "dir", "amount", "status", "time", "memo"] and len(text) == 2 + 4
    record = history_record(alice.history(), lambda t: t)
    assert record["earlier"]["payments"] == 4 and len(record["payments"]) == 4
    assert record["earlier"]["sent"] == {"through": 3, "count": 1, "amount": "1000.00", "amount_cents": 100000,
                                         "refused": 2, "refused_amount": "500.00", "refused_amount_cents": 50000}


@pytest.mark.parametrize(
    ("earlier", "line"),
    [
        (Earlier(), None),
        (Earlier(Totals(5000, 5000, 123400), Totals(7000, 7000, 56700)),
         "12000 earlier payments not listed: sent 1234.00 in 5000, received 567.00 in 7000"),
        (Earlier(received=Totals(1, 1, 5)), "1 earlier payment not listed: received 0.05 in 1"),
        (Earlier(Totals(30, 5, 500, 25, 3000), Totals(16, 1, 1, 15, 900)),
         "46 earlier payments not listed: sent 5.00 in 5, received 0.01 in 1, 40 refused (25 of yours, 15 of theirs)"),
        (Earlier(received=Totals(3, 0, 0, 3, 300)), "3 earlier payments not listed: 3 of theirs refused"),
    ],
)
def test_the_folded_line_reads_plainly(earlier: Earlier, line: str | None) -> None:
    assert earlier_text(earlier) == line


def test_a_history_that_is_only_totals_still_says_so() -> None:
    assert history_text(HistoryLines([], Earlier(Totals(2, 2, 300))), lambda t: t) == \
        "2 earlier payments not listed: sent 3.00 in 2"


# ------------------------------------------------------------------ memory

def test_a_settled_payment_costs_the_ledger_a_few_dozen_bytes() -> None:
    """Parallel arrays, not an object per line: the goal is under 100 bytes a payment per side."""
    alice, bob = Ledger(), Ledger()
    pay(alice, bob, 1)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(5000):
        pay(alice, bob, 1)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown / 5000 / 2 < 50, f"{grown / 10000:.1f} B per line"


# ------------------------------------------------------------------ any sequence

@settings(max_examples=150, deadline=None)
@given(st.integers(1, 6), st.integers(0, 3000),
       st.lists(st.tuples(st.booleans(), st.integers(1, 900), st.booleans()), max_size=80))
def test_totals_of_folded_and_kept_lines_are_those_of_the_whole_history(
        keep: int, limit: int, ops: list[tuple[bool, int, bool]]) -> None:
    """Whatever is paid and refused, each way: folded + kept totals equal the unbounded history's,
    both sides agree on the totals, the balance is exact, and a restored side agrees too."""
    alice, bob = Ledger(limit=limit, keep=keep), Ledger(limit=limit, keep=keep)
    full_a, full_b = Ledger(limit=limit, keep=10**6), Ledger(limit=limit, keep=10**6)
    for alice_pays, amount, memo in ops:
        sides = (alice, bob, full_a, full_b) if alice_pays else (bob, alice, full_b, full_a)
        pay(sides[0], sides[1], amount, "m" if memo else "")
        pay(sides[2], sides[3], amount, "m" if memo else "")
    for led, full in ((alice, full_a), (bob, full_b)):
        assert led.balance == full.balance and len(led.outs) <= keep and len(led.ins) <= keep
        earlier, everything = led.earlier(), full.history()
        for direction, folded in (("out", earlier.sent), ("in", earlier.received)):
            kept = [e for e in led.history() if e.direction == direction]
            whole = [e for e in everything if e.direction == direction]
            settled = [e.amount for e in whole if e.status in (Status.CONFIRMED, Status.RECEIVED)]
            refused = [e.amount for e in whole if e.status is Status.REJECTED]
            kept_settled = [e.amount for e in kept if e.status in (Status.CONFIRMED, Status.RECEIVED)]
            kept_refused = [e.amount for e in kept if e.status is Status.REJECTED]
            assert (folded.settled + len(kept_settled), folded.settled_cents + sum(kept_settled)) == \
                (len(settled), sum(settled))
            assert (folded.refused + len(kept_refused), folded.refused_cents + sum(kept_refused)) == \
                (len(refused), sum(refused))
            assert kept == whole[len(whole) - len(kept):]
        assert led.balance == (earlier.received.settled_cents - earlier.sent.settled_cents
                               + sum(e.amount for e in led.history() if e.status is Status.RECEIVED)
                               - sum(e.amount for e in led.history() if e.status is Status.CONFIRMED))
    assert alice.earlier().mirrored() == bob.earlier()
    reborn = restore(alice)
    assert reborn.earlier() == bob.earlier() and reborn.balance == bob.balance


# ------------------------------------------------------------------ the simulator, with a small bound

def test_both_sides_and_a_restored_side_agree_on_the_folded_totals_in_the_simulator(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Payments each way under loss, a refusal, a restart mid-way: every invariant holds with a
    bound of 3 lines, and the two histories were really folded."""
    monkeypatch.setattr(history, "KEEP_LINES", 3)
    rng = random.Random(11)
    net = Net(11, Conditions(loss=0.05, duplicate=0.05, delay=(0.0002, 0.005)))
    code = "blue harbour seven"
    net.add("alice", code=code)
    net.add("bob", code=code, limit=2000)
    book = Book(net)
    net.run(5.0)
    for round_ in range(2):
        for _ in range(8):
            book.pay(rng.choice(("alice", "bob")), rng.randint(100, 900), rng.choice(("", "tea")))
            net.run(net.now + 0.3)
        net.run(net.now + 5.0)
        if round_ == 0:
            net.kill("bob")
            net.run(net.now + 0.5)
            book.restart("bob")
            net.run(net.now + 15.0)
    assert check_lives(book) == []
    alice, bob = (book.current(n).peer for n in ("alice", "bob"))
    assert alice.history().earlier.lines > 0
    assert alice.history().earlier.mirrored() == bob.history().earlier


def test_the_checker_catches_a_hand_back_that_drops_the_totals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "KEEP_LINES", 2)
    real = Ledger.snapshot
    monkeypatch.setattr(Ledger, "snapshot", lambda self, now: [dataclasses.replace(p, earlier=())
                                                               for p in real(self, now)])
    net = Net(3)
    code = "blue harbour seven"
    net.add("alice", code=code)
    net.add("bob", code=code)
    book = Book(net)
    net.run(5.0)
    for amount in (100, 200, 300, 400):
        book.pay("alice", amount)
        net.run(net.now + 0.5)
    net.kill("bob")
    book.restart("bob")
    net.run(net.now + 15.0)
    problems = check_lives(book)
    assert any("folded totals disagree" in p for p in problems), problems
