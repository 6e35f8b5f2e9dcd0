"""Warnings about strangers: each fact told once, repeats counted, never running out."""

from __future__ import annotations

from lanpay.core import events
from lanpay.core.notices import MAX_FACTS, MAX_GROUPS, NEW_PER_MINUTE, REPEAT_EVERY, Notices


def conflict(i: int) -> events.NameConflict:
    return events.NameConflict("bob", (("10.0.0.2", 1), ("10.9.0.1", i)))


def test_the_first_warning_is_told_and_the_same_fact_never_again() -> None:
    n = Notices()
    assert n.warn("namesake", "bob", ("conflict", 1), conflict(1), 0.0) == [conflict(1)]
    assert n.warn("namesake", "bob", ("conflict", 1), conflict(1), 100.0) == []


def test_a_flood_of_forged_namesakes_costs_one_line_a_minute() -> None:
    n = Notices()
    told = []
    for i in range(300):
        told += n.warn("namesake", "bob", ("conflict", i), conflict(i), i * 0.5)
    assert told[0] == conflict(0)
    repeats = [e for e in told[1:] if isinstance(e, events.WarningsRepeated)]
    assert len(told) == 1 + len(repeats) and len(repeats) == int(150 // REPEAT_EVERY)
    assert sum(e.count for e in repeats) <= 299 and all(e.name == "bob" for e in repeats)


def test_a_flood_of_names_is_told_a_few_at_a_time_then_counted() -> None:
    n = Notices()
    told = [e for i in range(1000) for e in n.warn("namesake", f"n{i}", ("conflict", i), conflict(i), i * 0.01)]
    assert len(told) == NEW_PER_MINUTE


def test_a_warning_of_a_new_kind_or_name_is_always_told_even_after_a_flood() -> None:
    n = Notices()
    for i in range(1000):
        n.warn("namesake", "bob", ("conflict", i), conflict(i), 0.0)
    real = events.NameConflict("alice", (("10.0.0.5", 1), ("10.0.0.6", 1)))
    assert n.warn("namesake", "alice", ("conflict", "alice"), real, 1.0) == [real]
    imp = events.ImpostorSuspected("bob", ("10.0.0.7", 1))
    assert n.warn("impostor", "bob", ("impostor", 7), imp, 1.0) == [imp]
    assert len(n.groups) <= MAX_GROUPS and len(n) <= MAX_FACTS
