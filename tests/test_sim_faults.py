"""The simulator hunting: one sweep per fault class, named for what a person would see.

Each sweep runs its own seeds of one class of :mod:`faults` and checks every
invariant of docs/DESIGN.md across lives; a failing seed is printed with every
sentence it broke and the command that reruns it alone::

    LANPAY_SIM_SEED=12 python3 -m pytest tests/test_sim_faults.py -k stalls

``LANPAY_SIM_FAULT_SEEDS`` changes how many seeds each class covers (the
defaults keep the whole suite within its time budget); ``tools/simulate.py
--kind KIND --seeds A:B`` runs any range in parallel.

The mutant tests break the hand-back on purpose and assert the checker
catches each break in at least 95 % of restart seeds.
"""

from __future__ import annotations

import dataclasses
import random
import re

import pytest

import faults
from faults import ALICE_BOB, Users
from invariants import Book, check_lives
from lanpay.core import events, wire
from lanpay.core.ledger import Ledger, Restore
from lanpay.core.peer import Peer
from lanpay.core.session import Session
from sim import Conditions, Net

pytestmark = pytest.mark.slow       # simulator sweeps: the full suite runs them, the quick subset does not

DEFAULT_SEEDS = {"restarts": 40, "stages": 40, "partitions": 30, "drops": 30, "stalls": 30, "namesake": 30,
                 "adversary": 10, "bursts": 40, "leaves": 40}


def seeds_for(kind: str) -> list[int]:
    return faults.seeds(DEFAULT_SEEDS[kind], "LANPAY_SIM_FAULT_SEEDS")


def sweep(kind: str) -> None:
    seeds = seeds_for(kind)
    failures = [f for seed in seeds for f in faults.check(kind, seed)]
    assert not failures, f"{len(failures)} of {len(seeds)} {kind} seeds broke an invariant:\n" + "\n".join(failures)


# ============================================================== the sweeps
# Each sweep takes its class as its one parameter, so ``-k KIND`` (the rerun command) selects it.
@pytest.mark.parametrize("kind", ["restarts"])
def test_restarting_either_side_several_times_keeps_every_payment_and_line(kind: str) -> None:
    sweep(kind)


@pytest.mark.parametrize("kind", ["leaves"])
def test_a_side_leaving_with_payments_in_flight_tells_both_people_the_truth(kind: str) -> None:
    sweep(kind)


@pytest.mark.parametrize("kind", ["bursts"])
def test_runs_of_payments_in_flight_together_lose_nothing_under_loss_duplication_and_reordering(kind: str) -> None:
    sweep(kind)


@pytest.mark.parametrize("kind", ["stages"])
def test_a_restart_at_the_worst_moment_of_a_restore_ends_in_agreement_or_a_notice(kind: str) -> None:
    sweep(kind)


@pytest.mark.parametrize("kind", ["partitions"])
def test_a_long_or_one_way_partition_heals_without_losing_what_anyone_was_told(kind: str) -> None:
    sweep(kind)


@pytest.mark.parametrize("kind", ["drops"])
def test_losing_every_datagram_of_one_kind_for_a_while_loses_nothing_told(kind: str) -> None:
    sweep(kind)


@pytest.mark.parametrize("kind", ["stalls"])
def test_a_stopped_process_resumes_and_nothing_told_is_lost(kind: str) -> None:
    sweep(kind)


@pytest.mark.parametrize("kind", ["namesake"])
def test_a_new_process_beside_a_stalled_namesake_never_takes_over_silently(kind: str) -> None:
    sweep(kind)


@pytest.mark.parametrize("kind", ["adversary"])
def test_forged_discovery_and_handshake_datagrams_do_not_keep_the_pair_apart(kind: str) -> None:
    sweep(kind)


# Seeds that once broke an invariant, each for a reason fixed since (named in the commit that
# fixed it): forged claims and namesakes holding a restarted process off, a dead survivor's
# record held too long, a stranger taking a restarted process, an accept after its request
# went silent, a hand-back given up on one side only.
FOUND = [("adversary", 37), ("adversary", 42), ("adversary", 61), ("adversary", 69), ("adversary", 73),
         ("adversary", 191), ("adversary", 197), ("adversary", 226), ("stalls", 105), ("stalls", 145),
         ("restarts", 25), ("restarts", 179), ("restarts", 281), ("stages", 277), ("partitions", 166),
         ("namesake", 50), ("namesake", 294), ("namesake", 121), ("stalls", 204), ("stalls", 255), ("stalls", 277), ("stalls", 478),
         ("partitions", 230), ("partitions", 312), ("restarts", 950), ("stages", 546), ("namesake", 475),
         ("leaves", 2940)]


@pytest.mark.parametrize(("kind", "seed"), FOUND, ids=[f"{k}-{s}" for k, s in FOUND])
def test_seeds_that_once_failed_hold(kind: str, seed: int) -> None:
    assert faults.check(kind, seed) == []


# ============================================================== the hunt reaches what it aims at
def test_restarts_aimed_at_stages_do_hit_those_stages() -> None:
    """The stage class is only worth something if its aims fire: each stage is hit in some seeds."""
    hits: dict[str, int] = {}
    for seed in range(40):
        plan = faults.draw("stages", seed)
        book = _run_keeping_book(plan)
        for _, stage in book.fired:
            hits[stage] = hits.get(stage, 0) + 1
    assert set(hits) == set(faults.STAGES), hits


def _run_keeping_book(plan: faults.FaultPlan) -> Book:
    kept: list[Book] = []
    original = faults.check_lives

    def keep(book: Book, outsiders=None) -> list[str]:
        kept.append(book)
        return original(book, outsiders)
    faults.check_lives = keep
    try:
        faults.run_fault_plan(plan)
    finally:
        faults.check_lives = original
    return kept[0]


def test_a_drop_rule_loses_only_its_own_kind_one_way_cuts_only_one_direction() -> None:
    net = Net(3)
    alice, bob = net.add("alice"), net.add("bob")
    net.run_until(lambda: alice.peer.session is not None and bob.peer.session is not None, 30)
    seen: list[tuple[str, str]] = []
    net.taps.append(lambda now, data, src, dst: seen.append((net.kind(data, src), net.by_addr[src].name)))
    net.rules.append(lambda d: d.kind == "sealed:ack")
    net.cut_one_way("alice", "bob")
    seq = net.pay("bob", 500, "x")
    net.run(net.now + 2)
    assert ("sealed:pay", "bob") in seen and ("sealed:ack", "alice") in seen
    assert alice.peer.ledger.balance == 500                     # bob -> alice flowed
    assert bob.peer.ledger.pending()[0].seq == seq              # nothing alice sent reached bob
    net.heal()
    net.rules.clear()
    net.run(net.now + 3)
    assert bob.peer.ledger.balance == -500 and not bob.peer.ledger.pending()


def test_a_stalled_process_gets_everything_it_missed_when_it_resumes() -> None:
    net = Net(4)
    alice, bob = net.add("alice"), net.add("bob")
    net.run_until(lambda: alice.peer.session is not None and bob.peer.session is not None, 30)
    net.run(net.now + 1)
    net.stall(bob, 5.0)
    net.pay("alice", 700, "")
    net.run(net.now + 4.9)
    assert bob.peer.ledger.balance == 0 and bob.backlog and bob.of(events.PaymentReceived) == []
    net.run(net.now + 0.2)
    assert not bob.backlog and bob.stalls
    # Woken, bob first checks the session still stands (a ping answered), then takes the payment
    # when alice sends it again: nothing that queued up while stopped is applied on trust.
    assert net.run_until(lambda: bob.peer.ledger.balance == 700, 10)
    assert [type(e) for e in bob.of(events.PaymentReceived)] == [events.PaymentReceived]


# ============================================================== the simulated user
@pytest.mark.parametrize(("policy", "shown", "accepts"), [
    ("match", "11-22-33", True), ("match", "99-99-99", False), ("always", "99-99-99", True),
    ("never", "11-22-33", False)])
def test_the_user_accepts_a_hand_back_as_the_plan_says(monkeypatch: pytest.MonkeyPatch, policy: str,
                                                        shown: str, accepts: bool) -> None:
    """By default the survivor's user accepts only when the code on the other screen is the same."""
    calls: list[float] = []
    monkeypatch.setattr(Peer, "accept", lambda self, now, code=None: calls.append(now))
    net = Net(5)
    alice, bob = net.add("alice"), net.add("bob")
    book = Book(net)
    users = Users(book, policy, random.Random(5))
    bob.events.append(events.HandbackAwaited("alice", alice.addr, shown))
    alice.peer.emit(events.HandbackRequested("bob", bob.addr, "11-22-33", 0, 0, 0))
    net.run(5.0)
    assert bool(calls) is accepts and bool(users.accepted) is accepts


# ============================================================== mutants: the checker bites
def restart_plan(seed: int) -> Book:
    """A restart seed with everything a hand-back must carry: a rejected line, memos,
    payments each way, and payments of the survivor still pending when the other side died."""
    rng = random.Random(f"restart-{seed}")
    net = Net(seed, Conditions(loss=rng.choice((0.0, 0.05)), duplicate=rng.choice((0.0, 0.05)),
                               delay=(0.0002, rng.choice((0.002, 0.01)))))
    code = "blue harbour seven"        # the hand-back is proved, so it needs nobody's consent
    net.add("alice", code=code)
    net.add("bob", code=code, limit=500)
    book = Book(net)
    assert net.run_until(lambda: faults.both_paired(book), 30)
    book.pay("alice", 600, "too much")                 # over bob's limit: a rejected line on both sides
    assert net.run_until(lambda: faults.settled(book), 30)
    book.pay("bob", 300, "lunch")
    book.pay("alice", 200, "café ☕")
    for _ in range(rng.randint(0, 4)):
        book.pay(rng.choice(ALICE_BOB), rng.randint(1, 100), rng.choice(("", "tea", "bus fare")))
    assert net.run_until(lambda: faults.settled(book), 30)
    net.run(net.now + rng.uniform(0.0, 2.0))
    dead = rng.choice(ALICE_BOB)
    net.kill(dead)
    survivor = book.other(dead)
    for _ in range(rng.randint(1, 2)):
        book.pay(survivor, rng.randint(1, 50), rng.choice(("while you were away", "")))
    net.run(net.now + rng.uniform(0.2, 2.0))
    book.restart(dead)
    if net.run_until(lambda: faults.settled(book), 60, every=0.05):
        for name in ALICE_BOB:
            book.pay(name, 1, "after the restart")
        net.run_until(lambda: faults.settled(book), 10, every=0.05)
    net.run(net.now + 3)
    return book


MUTANT_SEEDS = 20


def _caught(pattern: str) -> list[int]:
    return [seed for seed in range(MUTANT_SEEDS)
            if any(re.search(pattern, p) for p in check_lives(restart_plan(seed)))]


def _mutate_handback(monkeypatch: pytest.MonkeyPatch, change) -> None:
    """Every part of every hand-back passes through ``change`` (a Resume -> Resume)."""
    real = Ledger.snapshot
    monkeypatch.setattr(Ledger, "snapshot", lambda self, now: [change(p) for p in real(self, now)])


def _mutate_entries(monkeypatch: pytest.MonkeyPatch, change) -> None:
    """Every history line of every hand-back passes through ``change`` (an Entry -> Entry or None)."""
    def part(r):  # type: ignore[no-untyped-def]
        kept = tuple(e2 for e in r.entries if (e2 := change(e)) is not None)
        return dataclasses.replace(r, entries=kept)
    _mutate_handback(monkeypatch, part)


def _assert_rate(caught: list[int]) -> None:
    assert len(caught) >= 0.95 * MUTANT_SEEDS, f"caught in only {len(caught)} of {MUTANT_SEEDS} seeds: {caught}"


def test_the_checker_catches_rejected_lines_mirrored_as_received(monkeypatch: pytest.MonkeyPatch) -> None:
    _mutate_entries(monkeypatch, lambda e: dataclasses.replace(e, status=wire.E_SETTLED, reason=0)
                    if e.status == wire.E_REJECTED else e)
    _assert_rate(_caught(r"histories disagree: .*rejected|adds up to"))


def test_the_checker_catches_a_hand_back_that_forgets_pending_payments(monkeypatch: pytest.MonkeyPatch) -> None:
    _mutate_entries(monkeypatch, lambda e: None if e.status == wire.E_PENDING else e)
    _assert_rate(_caught(r"confirmed but \w+ applied None|balances do not mirror|adds up to"))


def test_the_checker_catches_memos_lost_in_a_hand_back(monkeypatch: pytest.MonkeyPatch) -> None:
    _mutate_entries(monkeypatch, lambda e: dataclasses.replace(e, memo=""))
    _assert_rate(_caught(r"histories disagree"))


def test_the_checker_catches_an_off_by_one_in_the_restored_next_number(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Restore.build

    def off_by_one(self, limit, now):  # type: ignore[no-untyped-def]
        done = real(self, limit, now)
        done.ledger.out_next = max(1, done.ledger.out_next - 1)
        return done
    monkeypatch.setattr(Restore, "build", off_by_one)
    _assert_rate(_caught(r"names two payments|confirmed but \w+ applied None|balances do not mirror|adds up to"))


def test_the_unbroken_hand_back_passes_the_same_restart_seeds() -> None:
    """The control for the four mutants: the real core passes those very runs."""
    assert {seed: p for seed in range(MUTANT_SEEDS) if (p := check_lives(restart_plan(seed)))} == {}


def test_the_checker_catches_false_impostor_alarms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take every lingering record of a process killed before the current pairing for a claimant
    (the probe then finds the counterpart alive and both users are warned of an impostor that
    never was): the restart sweeps must see it.  The real core passes the same seeds (the sweeps)."""
    from lanpay.core.counterpart import Counterpart
    monkeypatch.setattr(Counterpart, "_went_before", lambda self, rec: False)
    caught = [seed for seed in range(40) if any("false alarm" in p for p in faults.check("restarts", seed))]
    assert len(caught) >= 8, f"caught in only {len(caught)} of 40 seeds: {caught}"


def test_the_checker_catches_payments_only_held_by_the_payee_taken_as_settled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A sender that read the Ack's ``held`` as settled would tell its user Sent for payments
    the payee may never apply: the bursts sweep must see it.  The real core passes the same
    seeds (the sweep above)."""
    real = Session._find_losses

    def held_as_settled(self, cumulative, held, delivered, now):  # type: ignore[no-untyped-def]
        base = cumulative + 2
        for seq in [s for s in self.flights if s >= base and (held >> (s - base)) & 1]:
            entry = self.ledger.outgoing(seq)
            self.flights.pop(seq)
            self.ledger.confirm(seq)
            self.emit(events.PaymentConfirmed(seq, entry.amount, entry.memo, self.ledger.balance))
        return real(self, cumulative, held, delivered, now)
    monkeypatch.setattr(Session, "_find_losses", held_as_settled)
    caught = [seed for seed in range(40) if faults.check("bursts", seed)]
    assert len(caught) >= 6, f"caught in only {len(caught)} of 40 bursts seeds: {caught}"


def test_the_forger_sends_each_kind_at_its_rate() -> None:
    """The adversary's rates are what the liveness bound is stated against."""
    net = Net(6)
    net.add("alice"), net.add("bob")
    book = Book(net)
    forger = faults.Forger(book, {"namesake": 5.0, "hello": 2.0, "leaving": 1.0}, random.Random(6))
    forger.start(until=100.0)
    net.run(100.0)
    for kind, rate in (("namesake", 5.0), ("hello", 2.0), ("leaving", 1.0)):
        assert 0.8 * 2 * rate * 100 < forger.sent_by[kind] < 1.2 * 2 * rate * 100, forger.sent_by


# ============================================================== the restarts a person meets, one by one
def _pair(seed: int, code: str | None = None, policy: str = "match", **bob: object) -> tuple[Net, Book]:
    net = Net(seed, Conditions(delay=(0.0002, 0.002)))
    net.add("alice", code=code)
    net.add("bob", code=code, **bob)
    book = Book(net)
    Users(book, policy, random.Random(seed))
    assert net.run_until(lambda: faults.both_paired(book), 30)
    return net, book


def _calm(net: Net, book: Book, within: float = faults.LIVENESS) -> list[str]:
    """Heal, give the pair the liveness bound to settle, then check every invariant across lives."""
    net.heal()
    net.rules.clear()
    problems = [] if net.run_until(lambda: faults.settled(book), within, every=0.05) else \
        [f"not settled within {within:.0f} s"]
    net.run(net.now + 3)
    return problems + check_lives(book)


@pytest.mark.parametrize("seed", range(4))
def test_a_restarted_peer_gets_its_relationship_back_though_a_free_stranger_is_on_the_lan(seed: int) -> None:
    net, book = _pair(seed)
    book.pay("alice", 1000, "ten")
    carol = net.add("carol")
    net.run(net.now + 5)
    bob = book.restart("bob")
    assert _calm(net, book) == [], bob.events
    assert carol.of(events.Paired) == []


@pytest.mark.parametrize("seed", range(4))
def test_a_payer_restarting_with_a_payment_in_doubt_is_told_it_was_not_paid(seed: int) -> None:
    """The payment never reached bob: the restored alice is told it was voided, and #2 is never reused."""
    net, book = _pair(seed, code="blue harbour seven")
    book.pay("alice", 300, "first")
    net.run(net.now + 1)
    net.cut_one_way("alice", "bob")
    seq = book.pay("alice", 500, "in doubt")
    net.run(net.now + 4)
    alice = net.hosts["alice"]
    assert events.PaymentInDoubt(seq, 500) in alice.events
    alice2 = book.restart("alice")
    net.heal()
    problems = _calm(net, book)
    voided = alice2.of(events.PaymentsVoided)
    assert voided and voided[0].first <= seq <= voided[0].last, alice2.events
    assert book.pay("alice", 100, "next") != seq
    assert problems == []


@pytest.mark.parametrize("seed", range(4))
def test_the_survivor_dying_mid_hand_back_ends_in_agreement_or_a_fresh_start_with_a_notice(seed: int) -> None:
    net, book = _pair(seed, code="blue harbour seven")
    book.pay("alice", 700, "")
    net.run(net.now + 1)
    book.restart("bob")
    faults._aim(book, "handback", "bob", "alice", 0.0, random.Random(seed))
    net.run(net.now + 20)
    assert book.fired, "the hand-back was never sent"
    assert _calm(net, book) == []


def test_a_stalled_process_beside_a_new_namesake_is_not_replaced_without_consent() -> None:
    """Without --code and with a user who does not accept, the newcomer gets nothing; bob's
    own process resumes with its relationship, and both people were told of the newcomer."""
    net, book = _pair(7, policy="never")
    book.pay("alice", 900, "rent")
    net.run(net.now + 2)
    old = net.hosts["bob"]
    net.stall(old, 6.0)
    newcomer = book.restart("bob", keep_old=True)
    net.run(net.now + 10)
    alice = net.hosts["alice"]
    assert not [e for e in newcomer.of(events.Paired) if e.peer_name == "alice"]
    assert alice.of(events.HandbackRequested) and newcomer.of(events.HandbackAwaited)
    assert _calm(net, book) == []
    assert book.current("bob") is old and old.peer.ledger.balance == 900


# ============================================================== the old broken cores, through the new checker
@pytest.mark.parametrize("broken", ["duplicates", "no-retransmission"])
def test_the_across_lives_checker_still_catches_the_old_broken_cores(monkeypatch: pytest.MonkeyPatch,
                                                                     broken: str) -> None:
    """The same broken cores tests/test_sim.py catches (every seq looks new; no retransmission
    timer) are caught when the runs are judged by ``check_lives`` instead."""
    import test_sim
    from lanpay.core.rtt import RttEstimator
    monkeypatch.setattr(test_sim, "check_all", check_lives)
    if broken == "duplicates":
        receive = Ledger.receive

        def forgetful(self: Ledger, seq: int, amount: int, memo: str, now: float):  # type: ignore[no-untyped-def]
            if seq <= self.in_cum:
                self.in_cum = seq - 1          # a repeat is judged again as if new
            return receive(self, seq, amount, memo, now)
        monkeypatch.setattr(Ledger, "receive", forgetful)
    else:
        monkeypatch.setattr(RttEstimator, "rto", property(lambda self: 1e9))
        monkeypatch.setattr(RttEstimator, "backoff", lambda self, retries: 1e9)
        monkeypatch.setattr(Session, "_find_losses", lambda self, *args: None)   # nor on what acks show
    caught = [seed for seed in range(10) if test_sim.run_plan(test_sim._payments_only(seed, loss=0.3))]
    assert len(caught) >= 8, caught


def test_the_old_healthy_runs_pass_the_across_lives_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    import test_sim
    monkeypatch.setattr(test_sim, "check_all", check_lives)
    assert {s: p for s in range(10) if (p := test_sim.run_plan(test_sim._payments_only(s, loss=0.3)))} == {}
