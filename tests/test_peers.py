"""The table of peers heard on the LAN: bounded, expiring, and not rewritable.

The table is given announces that passed ``announcer.authentic`` (the peer checks
that first, and the last tests here check it): each is its incarnation's own, so
what the table must still refuse is old news, a copy or a replay.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

import itertools

import pytest

from lanpay.core import wire
from lanpay.core.announcer import authentic
from lanpay.core.errors import DropReason
from lanpay.core.pairing import new_identity
from lanpay.core.peer import Config, Peer
from lanpay.core.peers import (LOOKING_INTERVAL, MAX_PEERS, MAX_PER_HOST, MIN_LIFETIME, MISSED_INTERVALS,
                               PAIRED_INTERVAL, PeerTable)
from driver import Speaker

ADDR = ("10.0.0.2", 40002)


_counter = itertools.count(1)


def announce(inc: int, name: str = "bob", interval_ms: int = 5000, flags: int = 0,
             key: bytes = b"k" * 32, partner: str = "", partner_inc: int = 0) -> wire.Announce:
    """An announce as it reaches the table (its signature already checked): each newer than the last."""
    return wire.padded(wire.Announce(inc, 40000, flags, interval_ms, name, "", partner, partner_inc, key,
                                     counter=next(_counter)))  # type: ignore[return-value]


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


def test_a_copy_of_an_announce_heard_is_not_news_from_anywhere() -> None:
    """Someone repeating a peer's own signed announce from elsewhere must not steer hellos away
    from it, nor keep its record alive: the counter says it was heard already."""
    table = PeerTable()
    first = announce(7)
    table.update(first, ADDR, now=0.0)
    evil = ("10.6.6.6", 666)
    for t in (0.5, 2.5, 4.5, 6.5):
        assert not table.news(first)
        rec, _ = table.update(first, evil, now=t)
        assert rec is not None and rec.addr == ADDR and rec.expires_at == 9.0 and rec.heard == 1


def test_an_older_announce_overtaken_on_the_way_changes_nothing() -> None:
    table = PeerTable()
    old, new = announce(7, flags=wire.F_PAIRED, partner="carol", partner_inc=3), announce(7)
    table.update(new, ADDR, now=0.0)
    rec, _ = table.update(old, ("10.0.0.9", 41000), now=0.1)
    assert rec is not None and not rec.paired and rec.addr == ADDR and not table.news(old)


def test_a_peer_that_moved_is_followed_at_its_next_announce() -> None:
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    moved = ("10.0.0.9", 41000)
    rec, _ = table.update(announce(7), moved, now=0.5)
    assert rec is not None and rec.addr == moved


def test_a_leaving_announce_takes_the_peer_out_of_pairing_at_once() -> None:
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    rec, new = table.update(announce(7, flags=wire.F_LEAVING), ADDR, now=1.0)
    assert (rec, new) == (None, False)
    assert table.alive(1.0) == [] and table.get(7) is None
    table.expire(LOOKING_INTERVAL[1] * MISSED_INTERVALS)
    assert len(table) == 0


def test_a_goodbye_older_than_what_was_heard_is_ignored() -> None:
    table = PeerTable()
    goodbye = announce(7, flags=wire.F_LEAVING)
    table.update(announce(7), ADDR, now=0.0)
    assert table.update(goodbye, ADDR, now=1.0) == (None, False)
    assert table.get(7) is not None and table.alive(1.0)


def test_a_peer_heard_again_after_its_goodbye_keeps_its_history() -> None:
    table = PeerTable()
    table.update(announce(7), ADDR, now=0.0)
    table.update(announce(7, flags=wire.F_LEAVING), ADDR, now=1.0)
    rec, new = table.update(announce(7), ADDR, now=2.0)
    assert rec is not None and not new and rec.first_seen == 0.0 and rec.heard == 2
    assert table.alive(2.0) == [rec] and table.get(7) is rec
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


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from("uaef"), st.integers(1, 12), st.sampled_from(["bob", "eve", "carol"]),
                          st.floats(0, 4)), max_size=150))
def test_another_of_a_name_is_what_a_walk_over_the_records_finds(
        steps: list[tuple[str, int, str, float]]) -> None:
    """``another`` keeps a count per name; whatever arrives, leaves, expires or is evicted (a
    small table, several per host), it answers as looking at every record would."""
    table = PeerTable(limit=6)
    now = 0.0
    for op, inc, name, dt in steps:
        now += dt
        if op == "u":
            table.update(announce(inc, name=name, interval_ms=1000), host(inc % 3), now)
        elif op == "a":                       # the same incarnation announcing under another name
            table.update(announce(inc, name=name, flags=wire.F_PAIRED), host(inc % 3), now)
        elif op == "e":
            table.expire(now)
        else:
            table.forget(inc)
        records = list(table._by_inc.values())
        for who in ("bob", "eve", "carol"):
            for me in range(0, 13):
                walked = any(r.name == who and r.incarnation != me for r in records)
                assert table.another(who, me) == walked, (who, me)


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



# ---------------------------------------------------------------- what reaches the table at all

def test_an_announce_is_its_incarnation_s_own_or_nothing() -> None:
    """The incarnation is made by the keys, the signature is by the key: a forger can neither
    speak for a process it has not the key of (a rewrite of any field, another key under the
    same incarnation, a made-up incarnation) nor announce anything but incarnations of its own."""
    rng = random.Random(4)
    me, other = new_identity("bob", "", None, rng), new_identity("mallory", "", None, rng)
    real = wire.decode(Speaker(me).announce(wire.F_PAIRED, 30000, "alice", 5))
    assert isinstance(real, wire.Announce) and authentic(real)
    assert authentic(wire.decode(Speaker(other).announce()))               # its own: fine
    for forged in (replace(real, flags=real.flags | wire.F_LEAVING), replace(real, partner="carol"),
                   replace(real, counter=real.counter + 1), replace(real, incarnation=real.incarnation + 1),
                   replace(real, sign_key=other.sign_public), replace(real, public_key=other.public_key),
                   replace(real, signature=bytes(64))):
        assert not authentic(forged)


def test_the_peer_drops_forgeries_and_copies_before_its_table_sees_them() -> None:
    alice = Peer(Config(name="alice"), random.Random(1), 0.0)
    speaker = Speaker(new_identity("bob", "", None, random.Random(2)))
    real = speaker.announce()
    msg = wire.decode(real)
    assert isinstance(msg, wire.Announce)
    alice.receive_datagram(real, ADDR, 0.0)
    rec = alice.table.get(msg.incarnation)
    assert rec is not None and rec.addr == ADDR
    alice.receive_datagram(real, ("10.6.6.6", 666), 0.5)                             # a copy
    leaving = wire.encode(wire.padded(replace(msg, flags=wire.F_LEAVING, counter=msg.counter + 1)))
    alice.receive_datagram(leaving, ADDR, 0.6)                                       # a forged goodbye
    assert alice.drops[DropReason.REPLAY] == 1 and alice.drops[DropReason.AUTH] == 1
    assert alice.table.get(msg.incarnation) is rec and rec.addr == ADDR
    alice.receive_datagram(speaker.announce(wire.F_LEAVING), ADDR, 1.0)              # its own goodbye
    assert alice.table.get(msg.incarnation) is None
