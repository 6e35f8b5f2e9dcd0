"""The ledger: each payment applied once, limits kept, and a relationship handed back intact."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from budget import examples
from lanpay.core import wire
from lanpay.core.ledger import (MAX_AHEAD, MAX_DECLINED_LINES, NUMBER_GAP, BadHandback, Ledger, Outcome, Restore,
                                Restored, Status, Totals)


# ------------------------------------------------------------------ receiving

def got(led: Ledger, seq: int, amount: int, memo: str = "", now: float = 0.0) -> tuple[Outcome, list[tuple[int, Status]]]:
    """Offer one payment; the outcome, and (seq, status) of every entry processed because of it."""
    outcome, done = led.receive(seq, amount, memo, now)
    return outcome, [(e.seq, e.status) for e in done]


def test_a_payment_is_applied_once_however_often_it_arrives() -> None:
    led = Ledger()
    assert got(led, 1, 500, "lunch", now=1.0) == (Outcome.PROCESSED, [(1, Status.RECEIVED)])
    for _ in range(3):
        assert got(led, 1, 500, "lunch", now=2.0) == (Outcome.DUPLICATE, [])
    assert led.balance == 500
    [entry] = led.history()
    assert (entry.seq, entry.direction, entry.amount, entry.memo, entry.at, entry.status) == \
        (1, "in", 500, "lunch", 1.0, Status.RECEIVED)


@pytest.mark.parametrize(("amount", "memo"), [(501, "lunch"), (500, "dinner"), (1, "")])
def test_a_reused_sequence_number_with_other_content_is_a_conflict(amount: int, memo: str) -> None:
    led = Ledger()
    led.receive(1, 500, "lunch", now=0.0)
    assert got(led, 1, amount, memo, now=1.0) == (Outcome.CONFLICT, [])
    assert led.balance == 500
    assert [e.amount for e in led.history()] == [500]


@pytest.mark.parametrize(("amount", "memo"), [(301, ""), (300, "other")])
def test_a_held_payment_repeated_with_other_content_is_a_conflict(amount: int, memo: str) -> None:
    led = Ledger()
    assert got(led, 3, 300) == (Outcome.PROCESSED, [])
    assert got(led, 3, amount, memo) == (Outcome.CONFLICT, [])
    assert got(led, 3, 300) == (Outcome.DUPLICATE, [])


def test_payments_are_applied_in_sequence_order_whatever_order_they_arrive_in() -> None:
    led = Ledger()
    assert got(led, 3, 300) == (Outcome.PROCESSED, [])          # held: 1 and 2 come first
    assert got(led, 5, 500) == (Outcome.PROCESSED, [])
    assert led.balance == 0 and led.in_cum == 0 and sorted(led.waiting) == [3, 5]
    assert got(led, 1, 100) == (Outcome.PROCESSED, [(1, Status.RECEIVED)])
    assert got(led, 2, 200) == (Outcome.PROCESSED, [(2, Status.RECEIVED), (3, Status.RECEIVED)])
    assert led.balance == 600 and led.in_cum == 3
    assert got(led, 4, 400) == (Outcome.PROCESSED, [(4, Status.RECEIVED), (5, Status.RECEIVED)])
    assert led.in_cum == 5 and not led.waiting


def test_an_early_payment_is_judged_against_the_balance_of_its_turn() -> None:
    """Under a limit, a payment that overtook an earlier one is judged after it, exactly as
    if the network had kept the order: the same payments are refused whatever the order."""
    in_order, overtaken = Ledger(limit=1000), Ledger(limit=1000)
    for seq, amount in ((1, 700), (2, 400)):
        in_order.receive(seq, amount, "", 0.0)
    for seq, amount in ((2, 400), (1, 700)):
        overtaken.receive(seq, amount, "", 0.0)
    assert [(e.seq, e.status) for e in in_order.history()] == [(1, Status.RECEIVED), (2, Status.REJECTED)]
    assert [(e.seq, e.status) for e in overtaken.history()] == [(1, Status.RECEIVED), (2, Status.REJECTED)]
    assert in_order.balance == overtaken.balance == 700


@pytest.mark.parametrize(("seq", "amount"), [(0, 5), (1, 0), (MAX_AHEAD + 1, 5), (2**64 - 1, 5)])
def test_impossible_payments_are_refused_as_too_far(seq: int, amount: int) -> None:
    led = Ledger()
    assert got(led, seq, amount) == (Outcome.INVALID, [])
    assert led.balance == 0 and led.history() == [] and led.in_cum == 0 and not led.waiting


def test_the_furthest_acceptable_sequence_number_moves_with_the_cumulative_mark() -> None:
    led = Ledger()
    assert got(led, MAX_AHEAD, 1)[0] is Outcome.PROCESSED
    assert got(led, MAX_AHEAD + 1, 1)[0] is Outcome.INVALID
    led.receive(1, 1, "", now=0.0)
    assert got(led, MAX_AHEAD + 1, 1)[0] is Outcome.PROCESSED


def test_the_ack_is_the_cumulative_mark_and_what_waits_beyond_the_gap() -> None:
    """Nothing held above the mark is acknowledged as applied (the payer must not count it
    so); it is only said to have arrived, bit i for seq mark + 2 + i, so the payer resends
    what is missing and nothing else."""
    led = Ledger()
    for seq in (1, 2, 4, 5, 7):
        led.receive(seq, 10, "", now=0.0)
    assert led.ack() == wire.Ack(2, (), held=0b1011)
    assert led.balance == 20
    led.receive(3, 10, "", now=0.0)
    assert led.ack() == wire.Ack(5, (), held=0b1)
    led.receive(MAX_AHEAD, 10, "", now=0.0)              # beyond the 64 the bitmap covers: not told
    assert led.ack() == wire.Ack(5, (), held=0b1)


def test_an_empty_ack_says_nothing_arrived() -> None:
    assert Ledger().ack() == wire.Ack(0, ())


def test_the_payee_learns_the_highest_number_the_payer_gave_out() -> None:
    led = Ledger()
    led.receive(4, 10, "", now=0.0)
    assert led.peer_issued == 4
    led.heard_issued(9)
    led.heard_issued(2)
    assert led.peer_issued == 9


# ------------------------------------------------------------------ the credit limit

def test_a_payment_past_the_limit_is_rejected_and_nothing_moves() -> None:
    led = Ledger(limit=1000)
    assert got(led, 1, 600) == (Outcome.PROCESSED, [(1, Status.RECEIVED)])
    assert got(led, 2, 500, "too much", now=1.0) == (Outcome.PROCESSED, [(2, Status.REJECTED)])
    assert led.balance == 600
    rejected = [e for e in led.history() if e.status is Status.REJECTED]
    assert [(e.seq, e.amount, e.reason) for e in rejected] == \
        [(2, 500, wire.REJECT_TEXT[wire.REJECT_OVER_LIMIT])]


def test_a_payment_reaching_the_limit_exactly_is_accepted() -> None:
    led = Ledger(limit=1000)
    assert got(led, 1, 1000)[1] == [(1, Status.RECEIVED)]
    assert got(led, 2, 1)[1] == [(2, Status.REJECTED)]


def test_paying_out_makes_room_under_the_limit() -> None:
    led = Ledger(limit=1000)
    led.receive(1, 1000, "", now=0.0)
    led.new_outgoing(400, "", now=0.0)
    led.confirm(1)
    assert got(led, 2, 400)[1] == [(2, Status.RECEIVED)]
    assert led.balance == 1000


def test_a_rejection_is_remembered_for_duplicates_until_the_sender_moves_past_it() -> None:
    led = Ledger(limit=100)
    assert got(led, 1, 500)[1] == [(1, Status.REJECTED)]
    assert got(led, 1, 500)[0] is Outcome.DUPLICATE
    assert got(led, 1, 400)[0] is Outcome.CONFLICT
    assert got(led, 2, 50)[1] == [(2, Status.RECEIVED)]
    assert led.ack() == wire.Ack(2, (wire.Rejection(1, wire.REJECT_OVER_LIMIT),))
    led.forget_rejections(0)
    assert led.ack().rejections == (wire.Rejection(1, wire.REJECT_OVER_LIMIT),)
    led.forget_rejections(1)
    assert led.ack() == wire.Ack(2, ())
    assert got(led, 1, 500)[0] is Outcome.DUPLICATE     # still never applied
    assert led.balance == 50


def test_an_ack_never_passes_off_a_rejected_payment_as_accepted() -> None:
    """Everything the ack covers that was rejected must be listed as rejected.

    Otherwise the sender reads the cumulative mark as "applied" and debits a
    payment the receiver refused: the two balances no longer mirror.  Here the
    first payment is delayed while the next 62 wait; all 63 are refused.
    """
    led = Ledger(limit=100)
    for seq in range(2, 64):
        led.receive(seq, 500, "", now=0.0)
    assert len(got(led, 1, 500)[1]) == 63
    ack = led.ack()
    listed = {r.seq for r in ack.rejections}
    assert set(range(1, ack.cumulative + 1)) & set(led.in_rejected) <= listed
    assert ack.cumulative == wire.MAX_LIST and wire.decode_inner(wire.encode_inner(ack)) == ack


def test_the_final_word_is_complete_only_when_its_list_holds_every_refusal() -> None:
    """A leaving ledger's last word: the whole mark when every refusal fits in the list; else the
    mark stops below the first unlisted one and says it is not the whole truth."""
    led = Ledger(limit=100)
    for seq in range(1, 4):
        led.receive(seq, 500 if seq == 2 else 50, "", now=0.0)
    assert led.final() == (3, (wire.Rejection(2, wire.REJECT_OVER_LIMIT),), True)
    many = Ledger(limit=100)
    for seq in range(2, 64):
        many.receive(seq, 500, "", now=0.0)
    got(many, 1, 500)
    cumulative, rejections, complete = many.final()
    assert (cumulative, complete) == (wire.MAX_LIST, False) and many.in_cum == 63
    assert [r.seq for r in rejections] == list(range(1, wire.MAX_LIST + 1))
    bye = wire.Bye(cumulative, rejections, int(complete))
    assert wire.decode_inner(wire.encode_inner(bye)) == bye


arrival_orders = st.integers(1, 120).flatmap(lambda n: st.permutations(range(1, n + 1)))


@settings(max_examples=examples(200), deadline=None)
@given(arrival_orders, st.integers(0, 2_000), st.integers(0, 120), st.integers(0, 1_000))
def test_any_ack_lists_every_rejection_it_covers(order: list[int], limit: int, floor: int, salt: int) -> None:
    """Whatever arrives in whatever order, an ack fits in a datagram and never hides a rejection,
    and the outcome is the one sequence order gives."""
    led, reference = Ledger(limit=limit), Ledger(limit=limit)
    for seq in order:
        led.receive(seq, 1 + (seq * 7919 + salt) % 900, "", now=0.0)
    for seq in sorted(order):
        reference.receive(seq, 1 + (seq * 7919 + salt) % 900, "", now=0.0)
    assert [(e.seq, e.status) for e in led.history()] == [(e.seq, e.status) for e in reference.history()]
    led.forget_rejections(floor)
    ack = led.ack()
    assert wire.decode_inner(wire.encode_inner(ack)) == ack
    listed = {r.seq for r in ack.rejections}
    covered = set(range(1, ack.cumulative + 1))
    assert covered <= {s for s in range(1, 400) if led.processed(s)}
    assert covered & set(led.in_rejected) <= listed
    cumulative, rejections, complete = led.final()
    assert set(range(1, cumulative + 1)) & set(led.in_rejected) <= {r.seq for r in rejections}
    assert cumulative == led.in_cum if complete else cumulative < led.in_cum


# ------------------------------------------------------------------ sending

def test_an_outgoing_payment_is_pending_until_acknowledged() -> None:
    led = Ledger()
    entry = led.new_outgoing(1000, "rent", now=5.0)
    assert (entry.seq, entry.status, entry.at) == (1, Status.PENDING, 5.0)
    assert led.balance == 0 and led.pending() == [entry]
    confirmed = led.confirm(1)
    assert confirmed is not None and confirmed.status is Status.CONFIRMED
    assert led.balance == -1000 and led.pending() == []
    assert led.out_settled == 1


def test_a_payment_can_be_in_doubt_and_still_be_confirmed() -> None:
    led = Ledger()
    led.new_outgoing(1000, "", now=0.0)
    doubted = led.mark_in_doubt(1)
    assert doubted is not None and doubted.status is Status.IN_DOUBT
    assert led.mark_in_doubt(1) is None                 # only a pending payment becomes in doubt
    assert [e.seq for e in led.pending()] == [1]
    assert led.confirm(1) is not None and led.balance == -1000


def test_a_rejected_payment_leaves_the_balance_alone() -> None:
    led = Ledger()
    led.new_outgoing(1000, "", now=0.0)
    rejected = led.reject(1, "over their limit")
    assert rejected is not None and (rejected.status, rejected.reason) == (Status.REJECTED, "over their limit")
    assert led.balance == 0 and led.pending() == []


def test_a_resolved_payment_cannot_be_resolved_again() -> None:
    led = Ledger()
    led.new_outgoing(1000, "", now=0.0)
    led.new_outgoing(2000, "", now=0.0)
    led.confirm(1)
    led.reject(2, "refused")
    for seq in (1, 2):
        assert led.confirm(seq) is None
        assert led.reject(seq, "again") is None
        assert led.mark_in_doubt(seq) is None
    assert led.balance == -1000 and led.out_settled == 1
    assert [e.status for e in led.history()] == [Status.CONFIRMED, Status.REJECTED]


def test_unknown_payments_cannot_be_resolved() -> None:
    led = Ledger()
    assert led.confirm(1) is None and led.reject(1, "") is None and led.mark_in_doubt(1) is None
    assert led.outgoing(1) is None


def test_the_floor_is_the_highest_seq_below_which_all_is_resolved() -> None:
    led = Ledger()
    assert led.floor() == 0
    for _ in range(4):
        led.new_outgoing(10, "", now=0.0)
    assert led.floor() == 0
    led.confirm(1)
    assert led.floor() == 1
    led.confirm(3)
    assert led.floor() == 1
    led.reject(2, "")
    assert led.floor() == 3
    led.mark_in_doubt(4)
    assert led.floor() == 3
    led.confirm(4)
    assert led.floor() == 4


def test_history_is_in_time_order() -> None:
    led = Ledger()
    led.new_outgoing(10, "b", now=2.0)
    led.receive(1, 20, "a", now=1.0)
    led.new_outgoing(30, "c", now=3.0)
    assert [(e.direction, e.memo) for e in led.history()] == [("in", "a"), ("out", "b"), ("out", "c")]


# ------------------------------------------------------------------ digests

def pair_after_payments() -> tuple[Ledger, Ledger]:
    alice, bob = Ledger(), Ledger()
    for amount in (1000, 250):
        seq = alice.new_outgoing(amount, "", now=0.0).seq
        bob.receive(seq, amount, "", now=0.0)
        alice.confirm(seq)
    seq = bob.new_outgoing(75, "", now=0.0).seq
    alice.receive(seq, 75, "", now=0.0)
    bob.confirm(seq)
    return alice, bob


def test_agreeing_views_have_mirrored_digests() -> None:
    alice, bob = pair_after_payments()
    assert alice.balance == -1175 and bob.balance == 1175
    assert alice.digest() == bob.digest(mirrored=True)
    assert bob.digest() == alice.digest(mirrored=True)
    assert alice.digest() != bob.digest()
    assert len(alice.digest()) == 16


def test_a_disagreement_shows_in_the_digest() -> None:
    alice, bob = pair_after_payments()
    bob.receive(3, 1, "", now=0.0)
    assert alice.digest() != bob.digest(mirrored=True)


def test_pending_payments_do_not_change_the_digest() -> None:
    alice, _ = pair_after_payments()
    before = alice.digest()
    alice.new_outgoing(99, "", now=0.0)
    assert alice.digest() == before


# ------------------------------------------------------------------ hand-back

def survivor() -> Ledger:
    """Alice's record: out 1, 2 confirmed, 3 rejected, 4 in doubt, 5 pending; in 1, 2 applied, 4 held."""
    led = Ledger()
    for i, amount in enumerate((100, 200, 300, 400, 500), start=1):
        led.new_outgoing(amount, f"out{i}", now=float(i))
    led.confirm(1)
    led.confirm(2)
    led.reject(3, wire.REJECT_TEXT[wire.REJECT_OVER_LIMIT])
    led.mark_in_doubt(4)
    for seq in (1, 2, 4):
        led.receive(seq, 10 * seq, f"in{seq}", now=10.0 + seq)
    return led


def restore(parts: list[wire.Resume], limit: int | None = None, now: float = 20.0) -> Restored:
    r = Restore()
    for part in parts:
        r.add(part)
    assert r.complete
    return r.build(limit, now)


def test_a_snapshot_travels_on_the_wire() -> None:
    [part] = survivor().snapshot(now=20.0)
    assert wire.decode_inner(wire.encode_inner(part)) == part
    assert (part.part, part.parts, part.balance, part.out_next, part.in_cum, part.peer_issued) == \
        (0, 1, -300 + 30, 6, 2, 4)
    statuses = {(e.outgoing, e.seq): e.status for e in part.entries}
    assert statuses == {(1, 1): wire.E_SETTLED, (1, 2): wire.E_SETTLED, (1, 3): wire.E_REJECTED,
                        (1, 4): wire.E_PENDING, (1, 5): wire.E_PENDING, (0, 1): wire.E_SETTLED,
                        (0, 2): wire.E_SETTLED}


def test_the_restored_side_sees_the_mirror_of_the_survivor_and_judges_its_pending_payments() -> None:
    alice = survivor()
    done = restore(alice.snapshot(now=20.0))
    bob = done.ledger
    # Alice's payments 4 and 5 had not been confirmed: Bob judges them now, in order, once.
    assert [(e.seq, e.status) for e in done.judged] == [(4, Status.RECEIVED), (5, Status.RECEIVED)]
    assert bob.balance == -alice.balance + 900 == 1170
    assert bob.in_cum == 5 and got(bob, 5, 500, "out5") == (Outcome.DUPLICATE, [])
    assert bob.ack() == wire.Ack(5, ())
    # Bob's lost process gave out 3 and 4, which never reached Alice, and may have given out more
    # unheard: all void, and never used again.
    assert done.voided == (3, 4 + NUMBER_GAP)
    assert bob.new_outgoing(1, "", now=21.0).seq == 5 + NUMBER_GAP


def test_the_restored_history_is_the_survivor_s_seen_from_the_other_side() -> None:
    done = restore(survivor().snapshot(now=20.0))
    lines = {(e.direction, e.seq): (e.amount, e.memo, e.status) for e in done.ledger.history()}
    assert lines == {
        ("in", 1): (100, "out1", Status.RECEIVED),
        ("in", 2): (200, "out2", Status.RECEIVED),
        ("in", 3): (300, "out3", Status.REJECTED),
        ("in", 4): (400, "out4", Status.RECEIVED),
        ("in", 5): (500, "out5", Status.RECEIVED),
        ("out", 1): (10, "in1", Status.CONFIRMED),
        ("out", 2): (20, "in2", Status.CONFIRMED),
    }
    assert {e.at for e in done.ledger.history() if e.direction == "in" and e.seq == 2} == {2.0}


def test_both_sides_agree_once_the_survivor_hears_the_restored_side_s_ack() -> None:
    alice = survivor()
    parts = alice.snapshot(now=20.0)
    alice.adopt_handback()
    bob = restore(parts).ledger
    ack = bob.ack()
    for entry in alice.pending():
        if entry.seq <= ack.cumulative:
            alice.confirm(entry.seq)
    assert alice.balance == -bob.balance
    assert alice.digest() == bob.digest(mirrored=True)


def test_the_survivor_drops_what_the_lost_process_sent_but_it_never_applied() -> None:
    """The lost process will never resend 3; its held 4 is void; the new process numbers from
    past every number the lost one may have given out."""
    alice = survivor()
    alice.adopt_handback()
    assert alice.in_cum == 4 + NUMBER_GAP and not alice.waiting
    assert got(alice, 4, 40, "in4")[0] is Outcome.DUPLICATE
    nxt = 5 + NUMBER_GAP
    assert got(alice, nxt, 50) == (Outcome.PROCESSED, [(nxt, Status.RECEIVED)])


def test_under_its_limit_the_restored_side_refuses_a_pending_payment_and_says_so_in_its_ack() -> None:
    alice = survivor()
    done = restore(alice.snapshot(now=20.0), limit=700)
    assert [(e.seq, e.status) for e in done.judged] == [(4, Status.RECEIVED), (5, Status.REJECTED)]
    assert done.ledger.ack() == wire.Ack(5, (wire.Rejection(5, wire.REJECT_OVER_LIMIT),))


def test_the_whole_history_travels_in_parts_that_each_fit_a_datagram_in_any_order() -> None:
    alice = Ledger()
    for i in range(1000):
        alice.confirm(alice.new_outgoing(1 + i, "x" * (i % 65), now=float(i)).seq)
        alice.receive(i + 1, 2 + i, "memo ☕", now=float(i))
    parts = alice.snapshot(now=2000.0)
    assert len(parts) > 1 and {p.parts for p in parts} == {len(parts)}
    assert max(len(wire.encode_inner(p)) for p in parts) <= 1200
    assert sum(len(p.entries) for p in parts) == 2000
    bob = restore(list(reversed(parts)), now=2000.0).ledger
    mirror = {"out": "in", "in": "out"}
    assert sorted((mirror[e.direction], e.seq, e.amount, e.memo) for e in bob.history()) == \
        sorted((e.direction, e.seq, e.amount, e.memo) for e in alice.history())
    assert bob.digest(mirrored=True) == alice.digest()


def test_a_part_given_twice_is_kept_once() -> None:
    parts = survivor().snapshot(now=20.0)
    r = Restore()
    r.add(parts[0])
    r.add(parts[0])
    assert r.complete and len(r.build(None, 20.0).judged) == 2


def resume(part: int = 0, parts: int = 1, out_next: int = 3, in_cum: int = 0, peer_issued: int = 0,
           entries: tuple[wire.Entry, ...] = ()) -> wire.Resume:
    return wire.Resume(part, parts, 0, out_next, in_cum, peer_issued, 0, 0, entries)


def entry(outgoing: int, seq: int, status: int = wire.E_SETTLED, amount: int = 5) -> wire.Entry:
    return wire.Entry(outgoing, seq, amount, status, 0, 0, "")


@pytest.mark.parametrize(
    ("parts", "why"),
    [
        ([resume(out_next=0)], "out_next below 1"),
        ([resume(parts=0)], "no parts"),
        ([resume(part=1, parts=1)], "a part beyond the count"),
        ([resume(parts=2), resume(part=1, parts=2, out_next=4)], "parts that disagree"),
        ([resume(in_cum=3, peer_issued=2)], "issued below applied"),
        ([resume(out_next=2**64 - 1)], "astronomic numbers"),
        ([resume(entries=(entry(1, 1, wire.E_PENDING), entry(1, 2)))], "pending below a settled one"),
        ([resume(entries=(entry(1, 3),))], "an entry at out_next, never sent"),
        ([resume(entries=(entry(0, 1),))], "a payment received that was never applied"),
        ([resume(in_cum=1, peer_issued=1, entries=(entry(0, 1, wire.E_PENDING),))], "a received one pending"),
        ([resume(entries=(entry(1, 1), entry(1, 1)))], "a line given twice"),
        ([resume(entries=(entry(1, 1, 7),))], "an unknown status"),
        ([resume(entries=(entry(1, 1, amount=0),))], "a zero amount"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_hand_back_that_cannot_be_real_is_refused(parts: list[wire.Resume], why: str) -> None:
    r = Restore()
    with pytest.raises(BadHandback):
        for part in parts:
            r.add(part)
        r.build(None, 0.0)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["pay", "ack", "reject", "doubt", "receive", "announce"]),
                          st.integers(1, 40), st.integers(1, 10_000)), max_size=60))
def test_any_record_hands_back_as_its_mirror(ops: list[tuple[str, int, int]]) -> None:
    """Driven as a session drives it (acks are cumulative), any record restores as its mirror."""
    alice = Ledger()
    for op, n, amount in ops:
        if op == "pay":
            alice.new_outgoing(amount, "", now=0.0)
        elif op in ("ack", "reject"):
            for e in [e for e in alice.pending() if e.seq <= n]:
                alice.confirm(e.seq) if op == "ack" or e.seq != n else alice.reject(e.seq, "refused")
        elif op == "doubt":
            alice.mark_in_doubt(n)
        elif op == "receive":
            alice.receive(n, amount, "", now=0.0)
        else:
            alice.heard_issued(n)
    pending = [e.seq for e in alice.pending()]
    applied, issued = alice.in_cum, max(alice.in_cum, alice.peer_issued)
    parts = alice.snapshot(now=1.0)
    assert all(wire.decode_inner(wire.encode_inner(p)) == p for p in parts)
    done = restore(parts, now=1.0)
    alice.adopt_handback()
    bob = done.ledger
    assert [e.seq for e in done.judged] == pending
    assert bob.balance == -alice.balance + sum(e.amount for e in done.judged)
    assert bob.out_next == issued + 1 + NUMBER_GAP == alice.in_cum + 1
    assert done.voided == (applied + 1, issued + NUMBER_GAP)
    assert all(bob.processed(seq) for seq in range(1, alice.out_next)) and not bob.processed(alice.out_next)


# ------------------------------------------------------------------ two ledgers, an unreliable network

class UnreliableDelivery(RuleBasedStateMachine):
    """Alice pays Bob through a network that drops, duplicates and reorders.

    Bob has a limit, so some payments are refused.  Alice learns outcomes only
    from Bob's acks, exactly as a session does.
    """

    pays = Bundle("pays")

    def __init__(self) -> None:
        super().__init__()
        self.alice = Ledger()
        self.bob = Ledger(limit=5_000)
        self.in_flight: list[wire.Pay] = []
        self.acks: list[wire.Ack] = []
        self.applied: dict[int, int] = {}        # seq -> amount, as Bob applied it
        self.applied_count: dict[int, int] = {}

    @rule(target=pays, amount=st.integers(1, 3_000))
    def pay(self, amount: int) -> int:
        entry = self.alice.new_outgoing(amount, f"m{amount}", now=0.0)
        self.send(entry.seq)
        return entry.seq

    def send(self, seq: int) -> None:
        """Put a PAY on the network, as far ahead as the receiver accepts (as a session's window keeps it)."""
        entry = self.alice.outgoing(seq)
        assert entry is not None
        if seq <= self.alice.floor() + MAX_AHEAD:
            self.in_flight.append(wire.Pay(seq, self.alice.floor(), entry.amount, entry.memo))

    @rule(count=st.integers(2, 45), amount=st.integers(1, 3_000))
    def burst(self, count: int, amount: int) -> None:
        """Many payments at once: more refusals than one ack can list."""
        for _ in range(count):
            self.send(self.alice.new_outgoing(amount, "", now=0.0).seq)

    @rule(seq=pays)
    def retransmit(self, seq: int) -> None:
        entry = self.alice.outgoing(seq)
        if entry is not None and entry.status in (Status.PENDING, Status.IN_DOUBT):
            self.send(seq)

    @precondition(lambda self: self.in_flight)
    @rule(index=st.integers(0, 1_000))
    def deliver_pay(self, index: int) -> None:
        self.bob_gets(self.in_flight.pop(index % len(self.in_flight)))

    @precondition(lambda self: self.in_flight)
    @rule(index=st.integers(0, 1_000))
    def duplicate_pay(self, index: int) -> None:
        self.in_flight.append(self.in_flight[index % len(self.in_flight)])

    @precondition(lambda self: self.in_flight)
    @rule(index=st.integers(0, 1_000))
    def drop_pay(self, index: int) -> None:
        self.in_flight.pop(index % len(self.in_flight))

    @precondition(lambda self: self.acks)
    @rule(index=st.integers(0, 1_000))
    def deliver_ack(self, index: int) -> None:
        self.alice_gets(self.acks.pop(index % len(self.acks)))

    @precondition(lambda self: self.acks)
    @rule(index=st.integers(0, 1_000))
    def drop_ack(self, index: int) -> None:
        self.acks.pop(index % len(self.acks))

    @rule(seq=pays)
    def doubt(self, seq: int) -> None:
        self.alice.mark_in_doubt(seq)

    @rule()
    def deliver_everything(self) -> None:
        """Heal the network: retry until Alice has nothing pending, then compare."""
        for _ in range(100):
            if not self.alice.pending():
                break
            for entry in self.alice.pending():
                self.send(entry.seq)
            while self.in_flight:
                self.bob_gets(self.in_flight.pop(0))
            while self.acks:
                self.alice_gets(self.acks.pop(0))
        assert not self.alice.pending()
        assert self.alice.balance == -self.bob.balance
        assert self.alice.digest() == self.bob.digest(mirrored=True)

    def bob_gets(self, msg: wire.Pay) -> None:
        outcome, done = self.bob.receive(msg.seq, msg.amount, msg.memo, now=0.0)
        assert outcome in (Outcome.PROCESSED, Outcome.DUPLICATE)
        for e in done:
            if e.status is Status.RECEIVED:
                self.applied[e.seq] = e.amount
                self.applied_count[e.seq] = self.applied_count.get(e.seq, 0) + 1
        self.bob.forget_rejections(min(msg.floor, msg.seq - 1))
        self.acks.append(self.bob.ack())

    def alice_gets(self, ack: wire.Ack) -> None:
        rejected = {r.seq for r in ack.rejections}
        for entry in self.alice.pending():
            covered = entry.seq <= ack.cumulative
            if covered and entry.seq in rejected:
                self.alice.reject(entry.seq, "over limit")
            elif covered:
                self.alice.confirm(entry.seq)

    @invariant()
    def applied_at_most_once(self) -> None:
        assert all(count == 1 for count in self.applied_count.values())

    @invariant()
    def confirmed_only_what_bob_applied(self) -> None:
        for e in self.alice.history():
            if e.status is Status.CONFIRMED:
                assert self.applied.get(e.seq) == e.amount
            if e.status is Status.REJECTED:
                assert e.seq not in self.applied

    @invariant()
    def balances_never_cross(self) -> None:
        """Alice debits only what Bob credited: her loss never exceeds his gain."""
        assert -self.alice.balance <= self.bob.balance
        assert self.bob.balance <= 5_000


TestUnreliableDelivery = UnreliableDelivery.TestCase
TestUnreliableDelivery.settings = settings(max_examples=examples(150), stateful_step_count=60, deadline=None)
TestUnreliableDelivery.pytestmark = [pytest.mark.slow]   # 150 stateful runs: in the full suite, not the quick one


def test_refusals_past_a_bound_are_counted_not_told_and_their_lines_are_folded_past_the_history_bound() -> None:
    """A counterpart can make us refuse at no cost to itself: past MAX_DECLINED_LINES refusals are
    only counted, not told one by one, and past the history's bound their lines are folded into
    totals like any other, so memory stays flat; every refusal is still acknowledged as one."""
    led = Ledger(limit=0, keep=300)
    for seq in range(1, MAX_DECLINED_LINES + 501):
        outcome, done = led.receive(seq, 5, "x" * 64, now=0.0)
        assert outcome is Outcome.PROCESSED and done[0].status is Status.REJECTED
        led.forget_rejections(seq - 1)
    assert len(led.history()) == 300 and led.declined_uncounted == 500
    assert led.earlier().received == Totals(through=1200, refused=1200, refused_cents=6000)
    assert led.ack() == wire.Ack(MAX_DECLINED_LINES + 500, (wire.Rejection(MAX_DECLINED_LINES + 500, 1),))
    assert led.balance == 0


def test_a_hand_back_begun_again_before_the_first_was_taken_voids_from_the_same_number() -> None:
    """The restarted process gave up on a hand-back and asked anew: the second record must still
    tell it that everything its lost process numbered from the first unapplied payment on (here 3)
    was not paid, not only what came after the first hand-back's gap."""
    alice = survivor()
    first = restore(alice.snapshot(now=20.0))
    alice.adopt_handback()
    again = restore(alice.snapshot(now=30.0))
    alice.adopt_handback()
    assert first.voided[0] == again.voided[0] == 3
    assert again.voided[1] >= alice.in_cum - NUMBER_GAP and again.ledger.out_next > first.ledger.out_next
    alice.handback_taken()
    assert restore(alice.snapshot(now=40.0)).voided[0] == alice.in_cum + 1
