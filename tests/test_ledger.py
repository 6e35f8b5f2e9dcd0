"""The ledger: each payment applied once, limits kept, and a relationship handed back intact."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from lanpay.core import wire
from lanpay.core.ledger import MAX_AHEAD, BadHandback, Ledger, Outcome, Status


# ------------------------------------------------------------------ receiving

def test_a_payment_is_applied_once_however_often_it_arrives() -> None:
    led = Ledger()
    assert led.receive(1, 500, "lunch", now=1.0) is Outcome.APPLIED
    for _ in range(3):
        assert led.receive(1, 500, "lunch", now=2.0) is Outcome.DUPLICATE
    assert led.balance == 500
    [entry] = led.history()
    assert (entry.seq, entry.direction, entry.amount, entry.memo, entry.at, entry.status) == \
        (1, "in", 500, "lunch", 1.0, Status.RECEIVED)


@pytest.mark.parametrize(("amount", "memo"), [(501, "lunch"), (500, "dinner"), (1, "")])
def test_a_reused_sequence_number_with_other_content_is_a_conflict(amount: int, memo: str) -> None:
    led = Ledger()
    led.receive(1, 500, "lunch", now=0.0)
    assert led.receive(1, amount, memo, now=1.0) is Outcome.CONFLICT
    assert led.balance == 500
    assert [e.amount for e in led.history()] == [500]


def test_payments_arriving_out_of_order_are_each_applied_once() -> None:
    led = Ledger()
    for seq in (3, 1, 5, 2, 3, 1):
        led.receive(seq, seq * 100, "", now=0.0)
    assert led.balance == 1100
    assert led.in_cum == 3
    assert led.processed(5) and not led.processed(4)
    assert led.receive(4, 400, "", now=0.0) is Outcome.APPLIED
    assert led.in_cum == 5 and not led.in_above


@pytest.mark.parametrize(("seq", "amount"), [(0, 5), (1, 0), (MAX_AHEAD + 1, 5), (2**64 - 1, 5)])
def test_impossible_payments_are_refused_as_too_far(seq: int, amount: int) -> None:
    led = Ledger()
    assert led.receive(seq, amount, "", now=0.0) is Outcome.INVALID
    assert led.balance == 0 and led.history() == [] and led.in_cum == 0 and not led.in_above


def test_the_furthest_acceptable_sequence_number_moves_with_the_cumulative_mark() -> None:
    led = Ledger()
    assert led.receive(MAX_AHEAD, 1, "", now=0.0) is Outcome.APPLIED
    assert led.receive(MAX_AHEAD + 1, 1, "", now=0.0) is Outcome.INVALID
    led.receive(1, 1, "", now=0.0)
    assert led.receive(MAX_AHEAD + 1, 1, "", now=0.0) is Outcome.APPLIED


def test_the_ack_lists_what_arrived_as_a_cumulative_mark_and_ranges() -> None:
    led = Ledger()
    for seq in (1, 2, 4, 5, 7):
        led.receive(seq, 10, "", now=0.0)
    ack = led.ack()
    assert ack.cumulative == 2
    assert ack.ranges == (wire.Range(4, 5), wire.Range(7, 7))
    assert ack.rejections == ()


def test_an_empty_ack_says_nothing_arrived() -> None:
    assert Ledger().ack() == wire.Ack(0, (), ())


def test_the_ack_always_fits_in_a_datagram() -> None:
    led = Ledger()
    for seq in range(2, 2 + 2 * (wire.MAX_LIST + 5), 2):
        led.receive(seq, 10, "", now=0.0)
    ack = led.ack()
    assert len(ack.ranges) == wire.MAX_LIST
    assert wire.decode_inner(wire.encode_inner(ack)) == ack


# ------------------------------------------------------------------ the credit limit

def test_a_payment_past_the_limit_is_rejected_and_nothing_moves() -> None:
    led = Ledger(limit=1000)
    assert led.receive(1, 600, "", now=0.0) is Outcome.APPLIED
    assert led.receive(2, 500, "too much", now=1.0) is Outcome.REJECTED
    assert led.balance == 600
    rejected = [e for e in led.history() if e.status is Status.REJECTED]
    assert [(e.seq, e.amount, e.reason) for e in rejected] == \
        [(2, 500, wire.REJECT_TEXT[wire.REJECT_OVER_LIMIT])]


def test_a_payment_reaching_the_limit_exactly_is_accepted() -> None:
    led = Ledger(limit=1000)
    assert led.receive(1, 1000, "", now=0.0) is Outcome.APPLIED
    assert led.receive(2, 1, "", now=0.0) is Outcome.REJECTED


def test_paying_out_makes_room_under_the_limit() -> None:
    led = Ledger(limit=1000)
    led.receive(1, 1000, "", now=0.0)
    led.new_outgoing(400, "", now=0.0)
    led.confirm(1)
    assert led.receive(2, 400, "", now=0.0) is Outcome.APPLIED
    assert led.balance == 1000


def test_a_rejection_is_remembered_for_duplicates_until_the_sender_moves_past_it() -> None:
    led = Ledger(limit=100)
    assert led.receive(1, 500, "", now=0.0) is Outcome.REJECTED
    assert led.receive(1, 500, "", now=0.0) is Outcome.DUPLICATE
    assert led.receive(1, 400, "", now=0.0) is Outcome.CONFLICT
    assert led.receive(2, 50, "", now=0.0) is Outcome.APPLIED
    assert led.ack() == wire.Ack(2, (), (wire.Rejection(1, wire.REJECT_OVER_LIMIT),))
    led.forget_rejections(0)
    assert led.ack().rejections == (wire.Rejection(1, wire.REJECT_OVER_LIMIT),)
    led.forget_rejections(1)
    assert led.ack() == wire.Ack(2, (), ())
    assert led.receive(1, 500, "", now=0.0) is Outcome.DUPLICATE     # still never applied
    assert led.balance == 50


def test_an_ack_never_passes_off_a_rejected_payment_as_accepted() -> None:
    """Everything the ack covers that was rejected must be listed as rejected.

    Otherwise the sender reads the cumulative mark as "applied" and debits a
    payment the receiver refused: the two balances no longer mirror.  Here the
    first payment is delayed while the next 62 are refused over the limit; it
    is refused too when it finally arrives.
    """
    led = Ledger(limit=100)
    for seq in range(2, 64):
        assert led.receive(seq, 500, "", now=0.0) is Outcome.REJECTED
    assert led.receive(1, 500, "", now=0.0) is Outcome.REJECTED
    ack = led.ack()
    listed = {r.seq for r in ack.rejections}
    covered = set(range(1, ack.cumulative + 1)).union(*(range(r.first, r.last + 1) for r in ack.ranges))
    assert covered & set(led.in_rejected) <= listed


arrival_orders = st.integers(1, 120).flatmap(lambda n: st.permutations(range(1, n + 1)))


@settings(max_examples=200, deadline=None)
@given(arrival_orders, st.integers(0, 2_000), st.integers(0, 120), st.integers(0, 1_000))
def test_any_ack_lists_every_rejection_it_covers(order: list[int], limit: int, floor: int, salt: int) -> None:
    """Whatever arrives in whatever order, an ack fits in a datagram and never hides a rejection."""
    led = Ledger(limit=limit)
    for seq in order:
        led.receive(seq, 1 + (seq * 7919 + salt) % 900, "", now=0.0)
    led.forget_rejections(floor)
    ack = led.ack()
    assert wire.decode_inner(wire.encode_inner(ack)) == ack
    listed = {r.seq for r in ack.rejections}
    covered = set(range(1, ack.cumulative + 1)).union(*(range(r.first, r.last + 1) for r in ack.ranges))
    assert covered <= {s for s in range(1, 400) if led.processed(s)}
    assert covered & set(led.in_rejected) <= listed


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
    bob.receive(5, 1, "", now=0.0)
    assert alice.digest() != bob.digest(mirrored=True)


def test_pending_payments_do_not_change_the_digest() -> None:
    alice, _ = pair_after_payments()
    before = alice.digest()
    alice.new_outgoing(99, "", now=0.0)
    assert alice.digest() == before


# ------------------------------------------------------------------ hand-back

def survivor() -> Ledger:
    """Alice's record: out 1 confirmed, 2 pending, 3 confirmed, 4 rejected, 5 pending; in 1, 2, 4."""
    led = Ledger()
    for i, amount in enumerate((100, 200, 300, 400, 500), start=1):
        led.new_outgoing(amount, f"out{i}", now=float(i))
    led.confirm(1)
    led.confirm(3)
    led.reject(4, "over limit")
    for seq in (1, 2, 4):
        led.receive(seq, 10 * seq, f"in{seq}", now=10.0 + seq)
    return led


def test_a_snapshot_travels_on_the_wire() -> None:
    snap = survivor().snapshot(now=20.0)
    assert wire.decode_inner(wire.encode_inner(snap)) == snap
    assert snap.out_pending == (wire.Range(2, 2), wire.Range(5, 5))
    assert (snap.balance, snap.out_next, snap.in_high) == (-400 + 70, 6, 4)


def test_the_restored_side_sees_the_mirror_of_the_survivor() -> None:
    alice = survivor()
    bob = Ledger.restored(alice.snapshot(now=20.0), limit=None, now=20.0)
    assert bob.balance == -alice.balance == 330
    # Alice's pending payments were never applied here: they will be replayed and must apply.
    assert not bob.processed(2) and not bob.processed(5)
    assert bob.processed(1) and bob.processed(3) and bob.processed(4)
    assert bob.receive(2, 200, "out2", now=21.0) is Outcome.APPLIED
    assert bob.receive(3, 300, "out3", now=21.0) is Outcome.DUPLICATE
    # Bob's own numbering continues after the highest seq Alice ever received from him.
    assert bob.out_next == 5
    assert bob.new_outgoing(1, "", now=21.0).seq == 5


def test_the_restored_history_is_the_survivor_s_seen_from_the_other_side() -> None:
    alice = survivor()
    bob = Ledger.restored(alice.snapshot(now=20.0), limit=None, now=20.0)
    lines = {(e.direction, e.seq): (e.amount, e.memo, e.status) for e in bob.history()}
    assert lines == {
        ("in", 1): (100, "out1", Status.RECEIVED),
        ("in", 3): (300, "out3", Status.RECEIVED),
        ("in", 4): (400, "out4", Status.REJECTED),
        ("out", 1): (10, "in1", Status.CONFIRMED),
        ("out", 2): (20, "in2", Status.CONFIRMED),
        ("out", 4): (40, "in4", Status.CONFIRMED),
    }
    assert {e.at for e in bob.history() if e.direction == "in" and e.seq == 3} == {3.0}


def test_both_sides_agree_after_a_hand_back() -> None:
    alice = survivor()
    snap = alice.snapshot(now=20.0)
    alice.adopt_handback()
    bob = Ledger.restored(snap, limit=None, now=20.0)
    assert alice.digest() == bob.digest(mirrored=True)


def test_the_survivor_abandons_gaps_in_what_it_received() -> None:
    """The lost process will never resend seq 3; the survivor stops waiting for it."""
    alice = survivor()
    alice.adopt_handback()
    assert alice.in_cum == 4 and not alice.in_above
    assert alice.receive(3, 30, "", now=0.0) is Outcome.DUPLICATE
    assert alice.receive(5, 50, "", now=0.0) is Outcome.APPLIED


def test_only_the_latest_history_lines_are_handed_back() -> None:
    led = Ledger()
    for _ in range(40):
        led.confirm(led.new_outgoing(1, "", now=0.0).seq)
    snap = led.snapshot(now=0.0)
    assert len(snap.entries) <= wire.MAX_LIST
    assert wire.decode_inner(wire.encode_inner(snap)) == snap


def resume(out_next: int, pending: tuple[wire.Range, ...], in_high: int = 0) -> wire.Resume:
    return wire.Resume(0, out_next, pending, in_high, 0, 0, ())


@pytest.mark.parametrize(
    ("snap", "why"),
    [
        (resume(0, ()), "out_next below 1"),
        (resume(5, (wire.Range(3, 2),)), "first after last"),
        (resume(5, (wire.Range(1, 3), wire.Range(2, 4))), "overlapping"),
        (resume(5, (wire.Range(2, 2), wire.Range(2, 2))), "repeated"),
        (resume(5, (wire.Range(1, 5),)), "pending seq at out_next, never sent"),
        (resume(5, (wire.Range(9, 9),)), "pending seq beyond out_next"),
        (resume(MAX_AHEAD + 10, (wire.Range(1, 1), wire.Range(MAX_AHEAD + 3, MAX_AHEAD + 3))), "huge gap between"),
        (resume(MAX_AHEAD + 3, (wire.Range(1, 1),)), "huge gap after"),
        (resume(2**64 - 1, (wire.Range(1, 1),)), "astronomic gap after"),
        (resume(5, (wire.Range(0, 0),)), "seq 0 is never a payment"),
        (resume(1, (), in_high=2**64 - 1), "no room for another seq"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_hand_back_that_cannot_be_real_is_refused(snap: wire.Resume, why: str) -> None:
    with pytest.raises(BadHandback):
        Ledger.restored(snap, limit=None, now=0.0)


def test_a_hand_back_at_the_gap_bound_is_accepted() -> None:
    led = Ledger.restored(resume(MAX_AHEAD + 2, (wire.Range(1, 1),)), limit=None, now=0.0)
    assert led.in_cum == 0 and len(led.in_above) == MAX_AHEAD
    assert wire.encode_inner(led.ack())


def test_a_restored_ledger_can_always_acknowledge() -> None:
    """Whatever a hand-back the restore accepts, the ack built from it must encode."""
    led = Ledger.restored(resume(3, (wire.Range(2, 2),)), limit=None, now=0.0)
    assert led.receive(2, 5, "", now=0.0) is Outcome.APPLIED
    assert wire.decode_inner(wire.encode_inner(led.ack())) == wire.Ack(2, (), ())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["pay", "confirm", "reject", "doubt", "receive"]),
                          st.integers(1, 40), st.integers(1, 10_000)), max_size=60))
def test_any_record_hands_back_as_its_mirror(ops: list[tuple[str, int, int]]) -> None:
    alice = Ledger()
    for op, n, amount in ops:
        if op == "pay":
            alice.new_outgoing(amount, "", now=0.0)
        elif op == "confirm":
            alice.confirm(n)
        elif op == "reject":
            alice.reject(n, "refused")
        elif op == "doubt":
            alice.mark_in_doubt(n)
        else:
            alice.receive(n, amount, "", now=0.0)
    pending = {e.seq for e in alice.pending()}
    in_high = max([alice.in_cum, *alice.in_above])
    snap = alice.snapshot(now=1.0)
    if len(snap.out_pending) <= wire.MAX_LIST:
        assert wire.decode_inner(wire.encode_inner(snap)) == snap
    bob = Ledger.restored(snap, limit=None, now=1.0)
    alice.adopt_handback()
    assert bob.balance == -alice.balance
    assert bob.out_next == in_high + 1
    for seq in range(1, alice.out_next):
        assert bob.processed(seq) == (seq not in pending)
    assert not bob.processed(alice.out_next)
    assert alice.digest() == bob.digest(mirrored=True)


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
        outcome = self.bob.receive(msg.seq, msg.amount, msg.memo, now=0.0)
        assert outcome in (Outcome.APPLIED, Outcome.REJECTED, Outcome.DUPLICATE)
        if outcome is Outcome.APPLIED:
            self.applied[msg.seq] = msg.amount
            self.applied_count[msg.seq] = self.applied_count.get(msg.seq, 0) + 1
        self.bob.forget_rejections(min(msg.floor, msg.seq - 1))
        self.acks.append(self.bob.ack())

    def alice_gets(self, ack: wire.Ack) -> None:
        rejected = {r.seq for r in ack.rejections}
        for entry in self.alice.pending():
            covered = entry.seq <= ack.cumulative or any(r.first <= entry.seq <= r.last for r in ack.ranges)
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
TestUnreliableDelivery.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestUnreliableDelivery.pytestmark = [pytest.mark.slow]   # 150 stateful runs: in the full suite, not the quick one
