"""The table of peers heard on the LAN: bounded, expiring, and not rewritable."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from lanpay.core import wire
import pytest

from lanpay.core.peers import (LOOKING_INTERVAL, MAX_PEERS, MAX_PER_HOST, MIN_LIFETIME, MISSED_INTERVALS,
                               MOVE_AFTER, PAIRED_INTERVAL, PeerTable)

ADDR = ("10.0.0.2", 40002)


def announce(inc: int, name: str = "bob", interval_ms: int = 5000, flags: int = 0,
             key: bytes = b"k" * 32, partner: str = "", partner_inc: int = 0) -> wire.Announce:
    return wire.padded(wire.Announce(inc, 40000, flags, interval_ms, name, "", partner, partner_inc, key))


def test_a_new_peer_is_recorded_once() -> None:
    table = PeerTable()
    rec, new = table.update(announce(7), ADDR, now=1.0)
    assert new and rec is not None
    assert (rec.incarnation, rec.name, rec.addr, rec.first_seen) == (7, "bob", ADDR, 1.0)
    again, new_again = table.update(announce(7), ADDR, now=2.0)
    assert again is rec and not new_again
    assert len(table) == 1 and table.get(7) is rec


def test_a_peer_expires_after_three_missed_intervals() -> None:
    assert MISSED_INTERVALS == 3
    table = PeerTable()
    table.update(announce(7, interval_ms=5000, flags=wire.F_PAIRED), ADDR, now=10.0)
    assert table.next_expiry() == 25.0
    assert [r.incarnation for r in table.alive(24.999)] == [7]
    assert table.alive(25.0) == []
    table.expire(24.999)
    assert len(table) == 1
    table.expire(25.0)
    assert len(table) == 0 and table.next_expiry() is None


@pytest.mark.parametrize(("flags", "longest"), [(0, LOOKING_INTERVAL[1]), (wire.F_PAIRED, PAIRED_INTERVAL[1])])
def test_a_claimed_interval_counts_only_up_to_what_the_sender_s_state_uses(flags: int, longest: float) -> None:
    """A forged announce claiming an hour must not keep a free namesake around for three."""
    table = PeerTable()
    table.update(announce(7, interval_ms=3_600_000, flags=flags), ADDR, now=0.0)
    assert table.next_expiry() == MISSED_INTERVALS * longest
    assert MISSED_INTERVALS * LOOKING_INTERVAL[1] < 10.0      # a quiet free namesake is gone within 10 s


def test_fast_announcers_still_get_a_minimum_lifetime() -> None:
    table = PeerTable()
    table.update(announce(7, interval_ms=100), ADDR, now=0.0)
    assert table.next_expiry() == MIN_LIFETIME


def test_each_announce_extends_the_lifetime() -> None:
    table = PeerTable()
    table.update(announce(7, flags=wire.F_PAIRED), ADDR, now=0.0)
    table.update(announce(7, flags=wire.F_PAIRED), ADDR, now=10.0)
    assert table.next_expiry() == 25.0
    assert table.alive(20.0)[0].first_seen == 0.0


def test_a_refresh_updates_state_and_partner() -> None:
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    rec, _ = table.update(announce(7, flags=wire.F_PAIRED | wire.F_CODE, partner="carol", partner_inc=3),
                          ADDR, now=1.0)
    assert rec is not None
    assert rec.addr == ADDR and rec.paired and rec.uses_code
    assert (rec.partner, rec.partner_inc) == ("carol", 3)


def test_an_address_still_announcing_cannot_be_redirected() -> None:
    """Someone repeating a peer's announce from elsewhere must not steer hellos away from it."""
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    evil = ("10.6.6.6", 666)
    for t in (0.5, 2.5, 4.5, 6.5):
        table.update(announce(7), ADDR, now=t)                 # the real one keeps announcing
        rec, _ = table.update(announce(7), evil, now=t + 0.1)
        assert rec is not None and rec.addr == ADDR


def test_a_peer_that_really_moved_is_followed_once_its_old_address_is_quiet() -> None:
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    moved = ("10.0.0.9", 41000)
    assert table.update(announce(7), moved, now=MOVE_AFTER - 0.1)[0].addr == ADDR  # type: ignore[union-attr]
    rec, _ = table.update(announce(7), moved, now=MOVE_AFTER)
    assert rec is not None and rec.addr == moved


def test_a_leaving_announce_takes_the_peer_out_of_pairing_at_once() -> None:
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    rec, new = table.update(announce(7, flags=wire.F_LEAVING), ADDR, now=1.0)
    assert (rec, new) == (None, False)
    assert table.alive(1.0) == [] and table.get(7) is None
    table.expire(LOOKING_INTERVAL[1] * MISSED_INTERVALS)
    assert len(table) == 0


def test_a_forged_goodbye_costs_the_real_peer_only_until_it_is_heard_again() -> None:
    """A goodbye spoofed from a peer's own address is still a hint: the peer's next announce
    brings its record back, with its history (first seen, times heard) intact, and meanwhile
    nobody can move the record to another address."""
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    table.update(announce(7, flags=wire.F_LEAVING), ADDR, now=1.0)
    assert table.update(announce(7), ("10.6.6.6", 666), now=1.5)[0].addr == ADDR  # type: ignore[union-attr]
    rec, new = table.update(announce(7), ADDR, now=2.0)
    assert rec is not None and not new and rec.first_seen == 0.0 and rec.heard == 2
    assert table.alive(2.0) == [rec] and table.get(7) is rec


def test_a_leaving_announce_from_another_address_is_ignored() -> None:
    """Anyone can claim a peer is leaving; only a claim from where it announces counts."""
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    assert table.update(announce(7, flags=wire.F_LEAVING), ("10.6.6.6", 666), now=1.0) == (None, False)
    assert table.get(7) is not None


def test_a_leaving_announce_forged_from_the_peer_s_own_address_costs_it_nothing_once_it_announces_again() -> None:
    """A spoofed source can send a peer's own announce flagged leaving from the peer's own address.
    The peer leaves pairing, but the next announce brings it back as it was: first heard when it
    was first heard (else a flood of such forgeries keeps it forever newly seen, and never
    settled enough to be tried), its announces counted."""
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    for now in (0.5, 1.0):
        table.update(announce(7), ADDR, now=now)
    for i in range(1000):
        assert table.update(announce(7, flags=wire.F_LEAVING), ADDR, now=1.0 + i * 0.001) == (None, False)
    assert table.get(7) is None and table.alive(2.0) == []
    rec, new = table.update(announce(7), ADDR, now=2.5)
    assert not new and rec is not None and table.get(7) is rec
    assert (rec.first_seen, rec.heard, rec.expires_at) == (0.0, 4, 2.5 + 9.0)
    assert [r.incarnation for r in table.alive(2.5)] == [7]


def test_a_peer_said_to_leave_keeps_its_identity_and_address_until_its_record_expires() -> None:
    """Between a leaving announce and the record's expiry nobody can take the incarnation over:
    not under another key, not from another address; once expired, it is a new record."""
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    table.update(announce(7, flags=wire.F_LEAVING), ADDR, now=1.0)
    table.update(announce(7, key=b"e" * 32), ADDR, now=1.5)                  # another key: ignored
    table.update(announce(7), ("10.6.6.6", 666), now=1.5)                     # elsewhere: ignored
    assert table.get(7) is None and table.alive(1.5) == []
    rec, new = table.update(announce(7), ADDR, now=2.0)
    assert not new and rec is not None and (rec.addr, rec.public_key, rec.first_seen) == (ADDR, announce(7).public_key, 0.0)
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    table.update(announce(7, flags=wire.F_LEAVING), ADDR, now=1.0)
    table.expire(9.0)
    rec, _ = table.update(announce(7), ADDR, now=9.5)                         # past its expiry: new
    assert rec is not None and rec.first_seen == 9.5


def test_a_leaving_announce_from_a_stranger_is_not_recorded() -> None:
    table = PeerTable()
    assert table.update(announce(9, flags=wire.F_LEAVING), ADDR, now=0.0) == (None, False)
    assert len(table) == 0


def test_someone_reusing_an_incarnation_cannot_rewrite_its_identity() -> None:
    """An incarnation's key and name are fixed: a forged announce must not redirect it."""
    table = PeerTable()
    original, _ = table.update(announce(7, name="bob", key=b"k" * 32), ADDR, now=0.0)
    assert original is not None
    evil = ("10.6.6.6", 666)
    for forged in (announce(7, name="bob", key=b"e" * 32), announce(7, name="mallory", key=b"k" * 32)):
        rec, new = table.update(forged, evil, now=5.0)
        assert rec is original and not new
        assert (rec.name, rec.public_key, rec.addr) == ("bob", b"k" * 32, ADDR)
        assert rec.expires_at == 9.0         # not even kept alive by the forger


def test_alive_lists_peers_by_when_they_were_first_seen() -> None:
    table = PeerTable()
    for inc, t in ((30, 0.0), (10, 1.0), (20, 2.0)):
        table.update(announce(inc, name=f"p{inc}"), ADDR, now=t)
    table.update(announce(30, name="p30"), ADDR, now=3.0)    # a refresh does not reorder
    assert [r.incarnation for r in table.alive(3.0)] == [30, 10, 20]


def host(n: int) -> tuple[str, int]:
    return (f"10.0.1.{n}", 40000 + n)


def test_a_full_table_drops_the_expired_first() -> None:
    table = PeerTable(limit=3)
    table.update(announce(1, interval_ms=1000), host(1), now=0.0)                      # expires at 3
    table.update(announce(2, interval_ms=10_000, flags=wire.F_PAIRED), host(2), now=0.0)   # at 30
    table.update(announce(3, interval_ms=10_000, flags=wire.F_PAIRED), host(3), now=0.0)
    table.update(announce(4), host(4), now=5.0)
    assert sorted(r.incarnation for r in table.alive(5.0)) == [2, 3, 4]


def test_a_full_table_evicts_the_one_closest_to_expiry() -> None:
    table = PeerTable(limit=3)
    table.update(announce(1, interval_ms=20_000, flags=wire.F_PAIRED), host(1), now=0.0)   # at 60
    table.update(announce(2, interval_ms=5_000), host(2), now=0.0)                         # at 9: evicted
    table.update(announce(3, interval_ms=20_000, flags=wire.F_PAIRED), host(3), now=0.0)
    rec, new = table.update(announce(4), host(4), now=1.0)
    assert new and rec is not None
    assert len(table) == 3 and table.get(2) is None


def test_one_host_cannot_hold_more_than_its_share_of_the_table() -> None:
    """A flood from one host evicts only that host's own records, never a real peer's."""
    table = PeerTable()
    table.update(announce(1, name="bob"), ADDR, now=0.0)
    flooder = ("10.6.6.6", 666)
    for inc in range(100, 1100):
        table.update(announce(inc, name="bob", key=bytes([inc % 256]) * 32), flooder, now=0.001 * inc)
    assert table.get(1) is not None
    assert sum(r.addr == flooder for r in table.alive(1.2)) == MAX_PER_HOST


def test_a_flood_of_forged_announces_keeps_the_table_bounded() -> None:
    rng = random.Random(2024)
    table = PeerTable()
    table.update(announce(1, name="bob", interval_ms=30_000), ADDR, now=0.0)
    now = 0.0
    for _ in range(10_000):
        now += rng.uniform(0.0, 0.01)
        msg = announce(rng.getrandbits(64), name=f"x{rng.getrandbits(16)}",
                       interval_ms=rng.choice([0, 100, 5000, 2**32 - 1]), flags=rng.getrandbits(8) & ~wire.F_LEAVING)
        table.update(msg, (f"10.{rng.randrange(256)}.0.1", rng.randrange(65536)), now)
        assert len(table) <= MAX_PEERS
    assert len(table) == MAX_PEERS
    assert len(table.alive(now)) <= MAX_PEERS


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.booleans(), st.integers(0, 30_000), st.floats(0, 5)),
                max_size=200))
def test_the_table_never_exceeds_its_limit_and_keeps_known_names(
        steps: list[tuple[int, bool, int, float]]) -> None:
    table = PeerTable(limit=8)
    now = 0.0
    names: dict[int, str] = {}
    for inc, leaving, interval, dt in steps:
        now += dt
        msg = announce(inc, name=f"n{inc}", interval_ms=interval, flags=wire.F_LEAVING if leaving else 0)
        table.update(msg, ADDR, now)
        names.setdefault(inc, f"n{inc}")
        assert len(table) <= 8
        if leaving:
            assert table.get(inc) is None and all(r.incarnation != inc for r in table.alive(now))
        else:
            rec = table.get(inc)
            assert rec is not None and rec.name == names[inc] and rec.expires_at > now
        assert all(table.get(r.incarnation) is r for r in table.alive(now))


def test_a_change_of_wants_or_pairing_is_a_normal_refresh() -> None:
    """Changing what a peer wants or whether it is paired is a normal refresh."""
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    changed = replace(announce(7), wants="alice", flags=wire.F_PAIRED)
    rec, _ = table.update(changed, ADDR, now=1.0)
    assert rec is not None and rec.wants == "alice" and rec.paired


def test_a_flood_spoofing_a_peer_s_address_does_not_push_out_the_peer_that_keeps_announcing() -> None:
    table = PeerTable()
    for t in (0.0, 0.1, 0.5):                      # the real bob's start-up announces
        table.update(announce(1, name="bob"), ADDR, now=t)
    for inc in range(100, 400):                     # one-shot incarnations from bob's own address
        table.update(announce(inc, name="bob", key=bytes([inc % 256]) * 32), ADDR, now=0.5 + 0.01 * (inc - 99))
    assert table.get(1) is not None and len([r for r in table.alive(4.0) if r.addr == ADDR]) == MAX_PER_HOST
