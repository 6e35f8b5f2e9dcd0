"""tools/attack.py without a network: the headers it builds by hand, where it agrees to run, and
that each kind of forgery is the datagram it claims to be (decoded by lanpay's own codec)."""

from __future__ import annotations

import random
import socket
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import attack  # noqa: E402  (tools/ is not a package)

from lanpay.core import crypto, wire  # noqa: E402
from lanpay.core.errors import DecodeError  # noqa: E402

ALICE, BOB = ("10.77.0.1", 41001), ("10.77.0.2", 41002)


def test_the_hand_made_ipv4_and_udp_headers_say_what_was_asked() -> None:
    packet = attack.ipv4_udp(("10.77.0.2", 41002), ("10.77.0.1", 47474), b"LP\x01\x01hello", ident=7)
    ver_ihl, _, total, ident, frag, ttl, proto, _, src, dst = struct.unpack("!BBHHHBBH4s4s", packet[:20])
    assert (ver_ihl, total, ident, frag, ttl, proto) == (0x45, len(packet), 7, 0x4000, 64, socket.IPPROTO_UDP)
    assert (socket.inet_ntoa(src), socket.inet_ntoa(dst)) == ("10.77.0.2", "10.77.0.1")
    assert attack.checksum(packet[:20]) == 0          # a header with its checksum sums to zero
    sport, dport, length, udp_sum = struct.unpack("!HHHH", packet[20:28])
    assert (sport, dport, length, udp_sum) == (41002, 47474, 8 + len(b"LP\x01\x01hello"), 0)
    assert packet[28:] == b"LP\x01\x01hello"


ROUTES = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"


def test_the_forger_runs_only_on_a_host_of_the_namespace_lan() -> None:
    lan_host = ROUTES + "lan0\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    assert attack.inside_the_lan(lan_host)
    assert not attack.inside_the_lan(lan_host + "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
    assert not attack.inside_the_lan(ROUTES + "eth0\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    assert not attack.inside_the_lan(ROUTES)


def forger(kind: str, code: bool = False) -> tuple[attack.Forger, dict[str, wire.Announce]]:
    """A forger that has overheard alice and bob announce."""
    rng = random.Random(kind)
    f = attack.Forger(kind, {"alice": ALICE[0], "bob": BOB[0]}, code, rng)
    real = {}
    for name, addr, inc in (("alice", ALICE, 1111), ("bob", BOB, 2222)):
        key = crypto.public_key(crypto.new_private_key(rng))
        flags = wire.F_CODE if code else 0
        real[name] = wire.padded(wire.Announce(inc, addr[1], flags, 3000, name, "", "", 0, key))
        f.learn(wire.encode(real[name]), addr)
    assert sorted(f.known) == ["alice", "bob"]
    return f, real


def made(f: attack.Forger, n: int = 200) -> list[tuple[tuple[str, int], tuple[str, int], bytes]]:
    out = [f.next() for _ in range(n)]
    assert all(m is not None for m in out)
    for src, dst, _ in out:            # everything stays on the namespace LAN's subnet
        assert attack._on_lan(src[0]) and attack._on_lan(dst[0])
    return out  # type: ignore[return-value]


@pytest.mark.parametrize("code", [False, True])
def test_each_kind_of_forgery_is_the_datagram_it_claims_to_be(code: bool) -> None:
    victims = {ALICE[0]: "alice", BOB[0]: "bob"}
    other = {"alice": "bob", "bob": "alice"}
    flag = wire.F_CODE if code else 0

    f, real = forger("namesake", code)
    for src, dst, data in made(f):
        msg = wire.decode(data)
        victim = victims[dst[0]]
        assert isinstance(msg, wire.Announce) and len(data) == wire.ANNOUNCE_SIZE and dst[1] == attack.DISCOVERY_PORT
        assert msg.name == other[victim] and msg.incarnation != real[msg.name].incarnation
        assert msg.flags & wire.F_CODE == flag and not msg.flags & wire.F_LEAVING and src not in (ALICE, BOB)

    f, real = forger("fakes", code)
    names = {wire.decode(d).name for _, _, d in made(f)}
    assert len(names) == f.pool and not names & {"alice", "bob"}

    f, real = forger("leaving", code)
    for src, dst, data in made(f):
        msg = wire.decode(data)
        claimed = other[victims[dst[0]]]
        assert msg.flags & wire.F_LEAVING and msg.incarnation == real[claimed].incarnation
        assert src == (ALICE if claimed == "alice" else BOB)          # spoofed: the peer's own address

    f, real = forger("redirect", code)
    for src, dst, data in made(f):
        claimed = other[victims[dst[0]]]
        assert data == wire.encode(real[claimed]) and src not in (ALICE, BOB)

    f, real = forger("hello", code)
    own = 0
    for src, dst, data in made(f):
        msg = wire.decode(data)
        victim = victims[dst[0]]
        assert isinstance(msg, wire.Hello) and len(data) == wire.HELLO_SIZE
        assert msg.target_inc == real[victim].incarnation and msg.name == other[victim]
        assert dst == (ALICE if victim == "alice" else BOB) and msg.flags & wire.F_CODE == flag
        own += msg.sender_inc == real[other[victim]].incarnation
    assert 50 < own < 150                  # about half claim the counterpart's own incarnation

    f, real = forger("reply", code)
    for src, dst, data in made(f):
        msg = wire.decode(data)
        victim = victims[dst[0]]
        assert isinstance(msg, wire.Reply) and msg.target_inc == real[victim].incarnation
        assert msg.sender_inc == real[other[victim]].incarnation and bool(msg.share) == code

    f, real = forger("junk", code)
    broken = 0
    for _, _, data in made(f):
        try:
            wire.decode(data)
        except DecodeError:
            broken += 1
    assert broken > 150                    # nearly all of it is refused by the codec
