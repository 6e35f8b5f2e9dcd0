"""The real ``lanpay`` across hosts of a virtual LAN (tools/netns_lan.py).

Each host is a network namespace on a bridge of its own; nothing here touches
the machine's real interfaces.  The scenarios are the ones a user would meet:
pairing by broadcast, choosing a peer, a lossy network, a crash and restart, a
peer on another subnet, and someone on the LAN replaying what they overheard.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from netlan import (DEADLINE, LanpayProcess, Spawn, cents, iter_frames, money, netns_lan,
                    require_tools, udp_fields)

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

WELCOME = r"^Welcome to your peering relationship!$"
PAID = r"You were paid (\d+\.\d\d)!"
LOSSY_DEADLINE = max(60.0, DEADLINE)
NETLAN = str(Path(__file__).resolve().parent / "netlan.py")


def start(lanpay: Spawn, lan: netns_lan.Lan, host: str, *args: str) -> LanpayProcess:
    """Run ``lanpay --name HOST ARGS`` on that host of the LAN."""
    return lanpay(host, "--name", host, *args, netns=lan[host].netns)


def consent(survivor: LanpayProcess, reborn: LanpayProcess, name: str = "bob", other: str = "alice",
            timeout: float = DEADLINE) -> str:
    """The survivor's user compares the code on both screens and types ``accept``."""
    asked = survivor.expect(rf"{name} \(\S+\) restarted and asks for the relationship back.*Compare code (\S+) ",
                            timeout)
    waiting = reborn.expect(rf"waiting for {other} to type accept\. Compare code (\S+) ", timeout)
    assert asked.group(1) == waiting.group(1)
    survivor.send("accept")
    return asked.group(1)


def paid_amounts(proc: LanpayProcess) -> Counter[int]:
    """Every payment this process said it received, in cents, with multiplicity."""
    found = (re.search(PAID, line) for line in proc.lines)
    return Counter(cents(m.group(1)) for m in found if m)


def test_two_hosts_pair_by_broadcast(lanpay, make_lan) -> None:
    lan = make_lan(["alice", "bob"])
    alice = start(lanpay, lan, "alice")
    bob = start(lanpay, lan, "bob")
    alice.expect(r"Paired with bob \(10\.77\.0\.2\)")
    bob.expect(r"Paired with alice \(10\.77\.0\.1\)")
    alice.expect(WELCOME)
    bob.expect(WELCOME)
    alice.send("pay 10")
    alice.expect(r"^Sent")
    bob.expect(r"You were paid 10\.00!")
    assert alice.balance() == -1000
    assert bob.balance() == 1000
    assert alice.exit() == 0
    assert bob.exit() == 0


def test_peer_choice_is_mutual_and_a_third_peer_is_left_alone(lanpay, make_lan) -> None:
    lan = make_lan(["alice", "bob", "carol"])
    carol = start(lanpay, lan, "carol")
    carol.expect(r"Looking for")
    alice = start(lanpay, lan, "alice", "--peer", "bob")
    bob = start(lanpay, lan, "bob", "--peer", "alice")
    alice.expect(r"Paired with bob ")
    bob.expect(r"Paired with alice ")
    alice.send("pay 6")
    alice.expect(r"^Sent")
    bob.expect(r"You were paid 6\.00!")
    bob.send("pay 1")
    bob.expect(r"^Sent")
    alice.expect(r"You were paid 1\.00!")
    assert alice.balance() == -500
    assert bob.balance() == 500
    carol.close_input()
    carol.expect(r"^Goodbye\.$")
    assert carol.wait() == 0
    assert not [line for line in carol.lines if "Welcome" in line or "Paired" in line]
    assert not [line for line in alice.lines + bob.lines if "carol" in line and "Paired" in line]


def test_dozens_of_payments_agree_exactly_under_25_percent_loss(lanpay, make_lan) -> None:
    require_tools("nft")
    lan = make_lan(["alice", "bob"], loss=25)
    alice = start(lanpay, lan, "alice")
    bob = start(lanpay, lan, "bob")
    alice.expect(WELCOME, LOSSY_DEADLINE)
    bob.expect(WELCOME, LOSSY_DEADLINE)
    from_alice = [100 + 37 * k for k in range(20)]   # 1.00, 1.37, ... 8.03
    from_bob = [5 + 251 * k for k in range(20)]      # 0.05, 2.56, ... 47.74
    for mine, theirs in zip(from_alice, from_bob):
        alice.send(f"pay {money(mine)} a{mine}")
        bob.send(f"pay {money(theirs)}")
    alice.expect_count(r"^Sent", len(from_alice), LOSSY_DEADLINE)
    bob.expect_count(r"^Sent", len(from_bob), LOSSY_DEADLINE)
    expected = sum(from_bob) - sum(from_alice)
    assert alice.balance() == expected
    assert bob.balance() == -expected
    assert paid_amounts(bob) == Counter(from_alice)
    assert paid_amounts(alice) == Counter(from_bob)


def test_a_killed_peer_comes_back_and_gets_the_relationship(lanpay, make_lan) -> None:
    lan = make_lan(["alice", "bob"])
    alice = start(lanpay, lan, "alice")
    bob = start(lanpay, lan, "bob")
    alice.expect(WELCOME)
    bob.expect(WELCOME)
    alice.send("pay 10")
    alice.expect(r"^Sent")
    bob.send("pay 3")
    bob.expect(r"^Sent")
    alice.expect(r"You were paid 3\.00!")
    bob.expect(r"You were paid 10\.00!")
    bob.kill()

    reborn = start(lanpay, lan, "bob")
    consent(alice, reborn)                  # the two screens show one code: alice's user accepts
    reborn.expect(r"Paired with alice ")
    reborn.expect(r"Restored from alice's record: balance 7\.00")
    reborn.expect(WELCOME)
    alice.expect(r"bob restarted")
    assert reborn.balance() == 700
    assert alice.balance() == -700
    reborn.send("pay 2")
    reborn.expect(r"^Sent")
    alice.expect(r"You were paid 2\.00!")
    assert alice.balance() == -500
    assert reborn.balance() == 500
    assert reborn.exit() == 0
    assert alice.exit() == 0


def test_a_payment_made_while_the_peer_is_down_is_settled_either_way(lanpay, make_lan) -> None:
    lan = make_lan(["alice", "bob"])
    alice = start(lanpay, lan, "alice")
    bob = start(lanpay, lan, "bob")
    alice.expect(WELCOME)
    bob.expect(WELCOME)
    alice.send("pay 10")
    alice.expect(r"^Sent")
    bob.kill()
    alice.send("pay 5")  # refused if alice already noticed; else pending until bob is back
    reborn = start(lanpay, lan, "bob")
    consent(alice, reborn, timeout=LOSSY_DEADLINE)
    reborn.expect(WELCOME, LOSSY_DEADLINE)
    outcome = alice.expect(r"^(Sent|Error:)", LOSSY_DEADLINE).group(1)
    expected = 1500 if outcome == "Sent" else 1000
    if outcome == "Sent":
        reborn.expect(r"You were paid 5\.00 \(#2, completed in the hand-back")
    assert alice.balance() == -expected
    assert reborn.balance() == expected


def test_connect_reaches_a_peer_on_another_subnet(lanpay, make_lan) -> None:
    lan = make_lan(["alice"], far=["bob"])
    bob = start(lanpay, lan, "bob")
    alice = start(lanpay, lan, "alice", "--connect", lan["bob"].addr)
    alice.expect(r"Paired with bob \(10\.78\.0\.1\)")
    bob.expect(r"Paired with alice \(10\.77\.0\.1\)")
    alice.expect(WELCOME)
    bob.expect(WELCOME)
    bob.send("pay 12.34")
    bob.expect(r"^Sent")
    alice.expect(r"You were paid 12\.34!")
    assert alice.balance() == 1234
    assert bob.balance() == -1234


def pay(payer: LanpayProcess, payee: LanpayProcess, amount: str, memo: str = "") -> None:
    """``payer`` pays; wait until it says ``Sent`` and ``payee`` says it was paid."""
    payer.send(f"pay {amount} {memo}".rstrip())
    payer.expect(r"^Sent")
    payee.expect(rf"You were paid {re.escape(amount)}!")


def _attacker(lanpay_procs: list[LanpayProcess], lan: netns_lan.Lan,
              mode: str) -> LanpayProcess:
    """The attacker's sniffer or replayer, running on host mallory (not a lanpay)."""
    proc = LanpayProcess(f"mallory-{mode}",
                         lan.exec_argv("mallory", [sys.executable, NETLAN, mode, "lan0"]))
    lanpay_procs.append(proc)
    return proc


def _replay(procs: list[LanpayProcess], lan: netns_lan.Lan, frames: list[bytes]) -> None:
    """Mallory sends every frame back: as captured, bit-flipped, and from her own address."""
    replayer = _attacker(procs, lan, "replay")
    for frame in frames:
        replayer.send(frame.hex())
    replayer.close_input()
    assert int(replayer.expect(r"^sent (\d+)$").group(1)) == 7 * len(frames)
    assert replayer.wait() == 0


def test_an_eavesdropper_replaying_and_flipping_bits_changes_nothing(
        lanpay, make_lan, request) -> None:
    lan = make_lan(["alice", "bob", "mallory"], flood=True)
    procs = request.node._lanpay_procs
    sniffer = _attacker(procs, lan, "sniff")
    sniffer.expect(r"^listening$")
    alice, bob = start(lanpay, lan, "alice"), start(lanpay, lan, "bob")
    alice.expect(WELCOME)
    bob.expect(WELCOME)
    pay(alice, bob, "10.00", "tiramisu")
    pay(bob, alice, "4.00")
    pay(alice, bob, "1.50")
    sniffer.kill()

    couple = {lan["alice"].addr, lan["bob"].addr}
    frames = [f for f in iter_frames(sniffer.lines) if udp_fields(f)[0] in couple]
    assert len(frames) >= 6, "the eavesdropper should have overheard pairing and payments"
    assert not any(b"tiramisu" in udp_fields(f)[4] for f in frames), "a memo went in clear"
    _replay(procs, lan, frames)

    pay(alice, bob, "0.01")
    assert alice.balance() == -1000 + 400 - 150 - 1
    assert bob.balance() == 1000 - 400 + 150 + 1
    assert paid_amounts(bob) == Counter([1000, 150, 1])
    assert paid_amounts(alice) == Counter([400])
    for proc in (alice, bob):
        assert sum(1 for line in proc.lines if "Welcome" in line) == 1
        assert proc.exit() == 0


def test_with_code_words_a_restarted_peer_is_verified(lanpay, make_lan) -> None:
    lan = make_lan(["alice", "bob"])
    code = ("--code", "correct horse")
    alice = start(lanpay, lan, "alice", *code)
    bob = start(lanpay, lan, "bob", *code)
    alice.expect(r"Paired with bob .*verified by the shared code")
    bob.expect(WELCOME)
    bob.send("pay 8")
    bob.expect(r"^Sent")
    bob.kill()
    reborn = start(lanpay, lan, "bob", *code)
    reborn.expect(r"Paired with alice .*verified by the shared code")
    reborn.expect(r"Restored from alice's record: balance -8\.00")
    alice.expect(r"bob restarted.*verified by the shared code")
    assert reborn.balance() == -800
    assert alice.balance() == 800


def test_an_impostor_claiming_to_be_the_restarted_peer_is_ignored(lanpay, make_lan) -> None:
    lan = make_lan(["alice", "bob", "mallory"])
    alice = start(lanpay, lan, "alice")
    bob = start(lanpay, lan, "bob")
    alice.expect(WELCOME)
    bob.expect(WELCOME)
    alice.send("pay 5")
    alice.expect(r"^Sent")
    impostor = lanpay("mallory", "--name", "bob", "--peer", "alice",
                      netns=lan["mallory"].netns)
    alice.expect(r"^Warning: .*claims to be bob restarted")
    bob.send("pay 1")
    bob.expect(r"^Sent")
    alice.expect(r"You were paid 1\.00!")
    assert alice.balance() == -400
    assert bob.balance() == 400
    impostor.close_input()
    impostor.expect(r"^Goodbye\.$")
    assert not [line for line in impostor.lines if "Welcome" in line]
