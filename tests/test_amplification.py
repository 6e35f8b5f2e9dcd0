"""No reflection: whatever a stranger sends with a forged source address, lanpay sends that
address at most as many bytes as it received from it (outside an authenticated session).

Each kind of datagram a stranger can make is sent, many times, from one victim address to
a peer that is looking, paired, or using ``--code``; the peer's timers then run for a while
(retransmissions count too).  Bytes out to the victim over bytes in from it must stay <= 1.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driver import Speaker, identity_in_band, identity_of
from budget import examples
from lanpay.core import crypto, wire
from lanpay.core.announcer import Credit
from lanpay.core.peer import BROADCAST, Config, Peer

VICTIM = ("10.0.0.66", 5353)


def paired_pair(code: str | None) -> tuple[Peer, Peer, float]:
    """Alice and Bob on a perfect zero-delay LAN, paired; returns them and the time."""
    rng = random.Random(7)
    kw = {"code": code} if code else {}
    a = Peer(Config("alice", **kw), random.Random(rng.getrandbits(64)), 0.0)
    b = Peer(Config("bob", **kw), random.Random(rng.getrandbits(64)), 0.0)
    addrs = {id(a): ("10.0.0.1", 1), id(b): ("10.0.0.2", 2)}
    now = 0.0
    for _ in range(2000):
        moved = False
        for src, dst in ((a, b), (b, a)):
            for data, dest in src.datagrams_to_send(now):
                if dest is BROADCAST or dest == addrs[id(dst)]:
                    dst.receive_datagram(data, addrs[id(src)], now)
                    moved = True
        if a.state.value == b.state.value == "paired" and not moved:
            break
        if not moved:
            now = min(t for p in (a, b) if (t := p.next_timeout()) is not None)
            for p in (a, b):
                if (t := p.next_timeout()) is not None and t <= now:
                    p.handle_timeout(now)
    assert a.state.value == b.state.value == "paired"
    return a, b, now


def stranger_datagrams(target: Peer, rng: random.Random) -> dict[str, list[bytes]]:
    """Every kind of datagram a stranger can forge, aimed at ``target``."""
    key = crypto.public_key(crypto.new_private_key(rng))
    inc = target.incarnation

    def hello(name: str, flags: int = 0) -> bytes:
        return wire.encode(wire.padded(wire.Hello(rng.getrandbits(63) + 1, inc, flags, name, "",
                                                  rng.randbytes(32), rng.randbytes(16))))

    def announce(name: str, flags: int = 0) -> bytes:
        return Speaker(identity_of(name, rng.getrandbits(64)), port=4000).announce(flags, 5000)
    return {
        "announce": [announce(n) for n in ("carol", "bob", "alice", "x" * 32)],
        "announce-code": [announce("bob", wire.F_CODE)],
        "hello": [hello(n) for n in ("carol", "bob", "mallory")],
        "hello-code": [hello("bob", wire.F_CODE)],
        "hello-short": [wire.encode(wire.Hello(1, inc, 0, "m", "", rng.randbytes(32), rng.randbytes(16)))],
        "reply": [wire.encode(wire.Reply(5, inc, 0, "bob", rng.randbytes(16), key, rng.randbytes(16), b""))],
        "reveal": [wire.encode(wire.Reveal(5, inc, key, b"", rng.randbytes(16)))],
        "confirm": [wire.encode(wire.Confirm(5, inc, rng.randbytes(16)))],
        "refuse": [wire.encode(wire.Refuse(5, inc, wire.R_TAKEN, "bob"))],
        "sealed": [wire.encode(wire.Sealed(rng.randbytes(8), 1, rng.randbytes(40)))],
        "junk": [rng.randbytes(n) for n in (1, 4, 60, 200)],
    }


def reflected(peer: Peer, datagrams: list[bytes], now: float, repeat: int = 50) -> tuple[int, int]:
    """Send the datagrams ``repeat`` times from VICTIM, run timers 20 s; bytes (in, out to VICTIM)."""
    sent_in = sent_out = 0
    for i in range(repeat):
        for data in datagrams:
            peer.receive_datagram(data, VICTIM, now + i * 0.01)
            sent_in += len(data)
        sent_out += sum(len(d) for d, dest in peer.datagrams_to_send(now + i * 0.01) if dest == VICTIM)
    t, end = now + repeat * 0.01, now + 20.0
    while (nxt := peer.next_timeout()) is not None and nxt <= end:
        t = max(t, nxt)
        peer.handle_timeout(t)
        sent_out += sum(len(d) for d, dest in peer.datagrams_to_send(t) if dest == VICTIM)
    return sent_in, sent_out


KINDS = ["announce", "announce-code", "hello", "hello-code", "hello-short", "reply", "reveal", "confirm",
         "refuse", "sealed", "junk"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("code", [None, "blue piano"], ids=["no-code", "code"])
def test_a_looking_peer_sends_a_forged_source_no_more_than_it_received(kind: str, code: str | None) -> None:
    peer = Peer(Config("alice", code=code), random.Random(3), 0.0)
    peer.datagrams_to_send(0.0)
    sent_in, sent_out = reflected(peer, stranger_datagrams(peer, random.Random(kind))[kind], 0.0)
    assert sent_out <= sent_in, f"{kind}: {sent_out} bytes out for {sent_in} in"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("code", [None, "blue piano"], ids=["no-code", "code"])
def test_a_paired_peer_sends_a_forged_source_no_more_than_it_received(kind: str, code: str | None) -> None:
    alice, _, now = paired_pair(code)
    sent_in, sent_out = reflected(alice, stranger_datagrams(alice, random.Random(kind))[kind], now)
    assert sent_out <= sent_in, f"{kind}: {sent_out} bytes out for {sent_in} in"


def test_an_unpadded_hello_or_announce_draws_nothing() -> None:
    peer = Peer(Config("alice"), random.Random(3), 0.0)
    peer.datagrams_to_send(0.0)
    rng = random.Random(1)
    for data in stranger_datagrams(peer, rng)["hello-short"]:
        peer.receive_datagram(data, VICTIM, 0.0)
    short_announce = wire.encode(wire.Announce(9, 1, 0, 5000, "bob", "", "", 0, bytes(32)))
    peer.receive_datagram(short_announce, VICTIM, 0.0)
    assert [d for d, dest in peer.datagrams_to_send(0.0) if dest == VICTIM] == []
    assert peer.table.get(9) is None


def test_one_forged_announce_draws_one_hello_however_long_the_handshake_is_retried() -> None:
    """A forged announce from the victim's address, naming someone we would say hello to: the
    hello is resent only as far as the victim's own traffic pays for it, so one announce in
    means at most one announce's worth of bytes out."""
    peer = Peer(Config("alice"), random.Random(3), 0.0)
    peer.datagrams_to_send(0.0)
    forged = Speaker(identity_in_band("bob", 2**64 - 2**60, high=2**64), port=4000).announce(0, 5000)
    sent_in, sent_out = reflected(peer, [forged], 0.0, repeat=1)
    hellos = peer.credit.withheld
    assert sent_out <= sent_in == len(forged)
    assert hellos >= 2                     # the retries that it would otherwise have drawn


def test_without_the_byte_credit_a_forged_announce_would_reflect(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the test above: the credit is what keeps the ratio at 1."""
    from lanpay.core.announcer import Credit
    monkeypatch.setattr(Credit, "spend", lambda self, host, n: True)
    peer = Peer(Config("alice"), random.Random(3), 0.0)
    peer.datagrams_to_send(0.0)
    forged = Speaker(identity_in_band("bob", 2**64 - 2**60, high=2**64), port=4000).announce(0, 5000)
    sent_in, sent_out = reflected(peer, [forged], 0.0, repeat=1)
    assert sent_out > 2 * sent_in


# ---------------------------------------------------------------- the credit's own rules
def test_one_process_credit_does_not_pay_for_another_on_its_host() -> None:
    """A dead process's announces, or a namesake's, cannot be spent on hellos to the live one."""
    credit = Credit()
    credit.earn(("10.0.0.2", 40004), 260)
    assert not credit.spend(("10.0.0.2", 40006), 160)
    assert credit.spend(("10.0.0.2", 40004), 160)


def test_a_host_session_bytes_pay_for_its_next_process() -> None:
    """The survivor's hello to a restarted process rides on what its predecessor's session sent,
    once the newcomer's own credit (spent first) runs out."""
    credit = Credit()
    credit.earn("10.0.0.1", 1000)                  # session datagrams from the host
    credit.earn(("10.0.0.1", 40004), 100)          # the newcomer's own bytes
    assert credit.spend(("10.0.0.1", 40004), 160)
    assert credit.bytes[("10.0.0.1", 40004)] == 0 and credit.bytes["10.0.0.1"] == 940
    assert not credit.spend(("10.0.0.1", 40004), 941)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["earn-host", "earn-addr", "spend"]), st.integers(1, 3),
                          st.integers(1, 70000)), max_size=60))
def test_a_host_is_never_sent_more_than_it_sent(steps: list[tuple[str, int, int]]) -> None:
    credit = Credit()
    received = sent = 0
    for op, port, n in steps:
        if op == "earn-host":
            credit.earn("10.0.0.9", n)
            received += n
        elif op == "earn-addr":
            credit.earn(("10.0.0.9", port), n)
            received += n
        elif credit.spend(("10.0.0.9", port), n):
            sent += n
        assert sent <= received
