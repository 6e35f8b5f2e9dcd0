"""Restarts as people meet them, with the real ``lanpay`` on a virtual LAN.

A relationship goes back to a restarted process only on proof (``--code``) or on
the survivor's consent (``accept``, after comparing the code on both screens).
Each test is one situation a user can get into: a free third peer on the LAN,
a stalled process beside a namesake, a survivor dying during the hand-back, a
payer dying with a payment in doubt, an old process waking up after its
relationship moved on.  What is checked is what each person is told and what
each balance and history says afterwards.
"""

from __future__ import annotations

import re

import pytest

from lanpay.core.ledger import NUMBER_GAP

from netlan import (BALANCE, DEADLINE, LanpayProcess, Spawn, cents, lanpay_command, money, netns_lan,
                    require_tools)
from test_e2e_netns import WELCOME, consent, pay, start
from test_tmux import pane  # noqa: F401  (the fixture: the restarted bob at a real terminal)

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

ALICE, BOB, THIRD = "10.77.0.1", "10.77.0.2", "10.77.0.3"
REQUEST = r"bob \({host}\) restarted and asks for the relationship back \(your balance {balance}, {counts}\)\. " \
          r"Compare code (\S+) with bob's screen, then type accept"
AWAITED = r"alice \(10\.77\.0\.1\) still holds the relationship; waiting for alice to type accept\. " \
          r"Compare code (\S+) with alice's screen"
HANDED_BACK = r"^bob restarted; the relationship was handed back \(code {code}\)$"
RESTORE_SILENT = r"^Warning: the hand-back with alice did not complete: the other side stopped answering$"
#: A silent other side ends a hand-back after 10 s (RESTORE_SILENCE); the deadline is a bound on failure.
RESTORE_DEADLINE = DEADLINE + 10.0
ROW = re.compile(r"^\s*(\d+)\s+(in|out)\s+(-?\d+\.\d\d)\s+(pending|in-doubt|confirmed|received|rejected)"
                 r"\s+\d\d:\d\d:\d\d(?:  (.*))?$")
HEADER = r"^\s*#\s+dir\s+amount\s+status\s+time"
SENT = r"^Sent {amount} to {who} \(#(\d+)\)"
#: A payment datagram with this memo is larger than any keepalive, so a size rule can drop it alone.
LONG_MEMO = "for the long weekend at the lake house, fuel and groceries"
PAYMENT_BYTES = 100      # sealed keepalives are 82 bytes; a payment with LONG_MEMO is 120

Row = tuple[int, str, int, str, str]


def start_as(lanpay: Spawn, lan: netns_lan.Lan, host: str, name: str, *args: str) -> LanpayProcess:
    """``lanpay --name NAME`` on a host that is not called NAME (a namesake, a second machine)."""
    return lanpay(f"{name}@{host}", "--name", name, *args, netns=lan[host].netns)


def pair(lanpay: Spawn, lan: netns_lan.Lan, *args: str,
         alice_args: tuple[str, ...] = ()) -> tuple[LanpayProcess, LanpayProcess]:
    """alice and bob, paired and welcomed."""
    alice = start(lanpay, lan, "alice", *args, *alice_args)
    bob = start(lanpay, lan, "bob", *args)
    alice.expect(WELCOME)
    bob.expect(WELCOME)
    return alice, bob


def sent_seq(payer: LanpayProcess, amount: str, who: str = "alice") -> int:
    """The number the payer's ``Sent`` line gives its payment."""
    return int(payer.expect(SENT.format(amount=re.escape(amount), who=who)).group(1))


def history(proc: LanpayProcess) -> list[Row]:
    """``history`` as (seq, direction, cents, status, memo) rows, without the times.

    ``balance`` follows it: line mode runs commands in turn, so once the balance is
    printed every row of the table has been printed before it.
    """
    start_at = proc.mark()
    proc.send("history")
    proc.balance()
    end = proc.last - 1
    lines = proc.lines[start_at:end]
    headers = [i for i, line in enumerate(lines) if re.match(HEADER, line)]
    if not headers:
        assert "No payments yet." in lines, proc.transcript()
        return []
    rows = [ROW.match(line) for line in lines[headers[-1] + 1:]]
    return [(int(m[1]), m[2], cents(m[3]), m[4], m[5] or "") for m in rows if m]


def mirrored(rows: list[Row]) -> list[Row]:
    """The same payments as the counterpart lists them."""
    other = {"in": "out", "out": "in"}
    status = {"confirmed": "received", "received": "confirmed", "rejected": "rejected"}
    return sorted((seq, other[d], amount, status[s], memo) for seq, d, amount, s, memo in rows)


def count_lines(proc: LanpayProcess, pattern: str) -> int:
    """How many output lines of ``proc`` match ``pattern``."""
    return sum(1 for line in proc.lines if re.search(pattern, line))


# --- 1. a free third peer on the LAN ----------------------------------------------

def test_a_restarted_peer_gets_its_relationship_back_although_a_free_peer_is_there(
        lanpay, make_lan) -> None:
    lan = make_lan(["alice", "bob", "carol"])
    alice, bob = pair(lanpay, lan)
    carol = start(lanpay, lan, "carol")
    carol.expect(r"^Looking for a peer on the LAN")
    pay(alice, bob, "10.00")
    held = 1000                     # bob's balance
    current = bob
    for round_ in range(3):         # the old failure: 7 restarts in 9 paired with carol
        current.kill()
        reborn = start(lanpay, lan, "bob")
        code = consent(alice, reborn)
        reborn.expect(rf"^Paired with alice \({re.escape(ALICE)}\)")
        reborn.expect(rf"^Restored from alice's record: balance {re.escape(money(held))}$")
        alice.expect(HANDED_BACK.format(code=re.escape(code)))
        pay(reborn, alice, "1.00")
        held -= 100
        assert reborn.balance() == held, f"round {round_ + 1}"
        assert alice.balance() == -held, f"round {round_ + 1}"
        assert not [line for line in reborn.lines if "carol" in line]
        current = reborn
    assert held == 700
    assert count_lines(alice, "asks for the relationship back") == 3
    assert not [line for line in carol.lines if "Welcome" in line or "Paired" in line]
    carol.close_input()
    carol.expect(r"^Goodbye\.$")
    assert carol.wait() == 0


# --- 2. --code: the restarted process proves itself --------------------------------

def test_with_a_shared_code_a_killed_peer_is_restored_without_anyone_accepting(lanpay, make_lan) -> None:
    lan = make_lan(["alice", "bob"])
    code = ("--code", "correct horse battery")
    alice, bob = pair(lanpay, lan, *code)
    pay(bob, alice, "8.00", "tiramisu")
    pay(alice, bob, "2.50", "coffee")
    before = history(bob)
    assert sorted(before) == [(1, "in", 250, "received", "coffee"), (1, "out", 800, "confirmed", "tiramisu")]
    bob.kill()

    reborn = start(lanpay, lan, "bob", *code)
    reborn.expect(rf"^Paired with alice \({re.escape(ALICE)}\) · code \S+, verified by the shared code$")
    reborn.expect(WELCOME)
    reborn.expect(r"^Restored from alice's record: balance -5\.50$")
    alice.expect(r"^bob restarted; the relationship was handed back \(code \S+, verified by the shared code\)$")
    assert sorted(history(reborn)) == sorted(before)
    assert sorted(history(alice)) == mirrored(before)
    assert reborn.balance() == -550
    assert alice.balance() == 550
    for proc in (alice, reborn):    # nobody was asked to compare or accept anything
        assert not [line for line in proc.lines if "type accept" in line], proc.transcript()
    reborn.send("pay 0.50 tip")
    assert sent_seq(reborn, "0.50") == 2 + NUMBER_GAP
    alice.expect(r"^You were paid 0\.50! — tip$")
    assert alice.balance() == 600
    assert reborn.exit() == 0
    assert alice.exit() == 0


@pytest.mark.parametrize("dies_after", [0.3, 0.45])
def test_a_peer_killed_while_pairing_and_started_again_raises_no_impostor_warning(lanpay, make_lan,
                                                                                  dies_after) -> None:
    """alice is killed about when it pairs (just before, or just after) and started again: the
    new one pairs (afresh, or restored by the code), and neither screen says anyone claimed to
    be anyone: the dead process's record that lingers on bob's side is no claimant."""
    import time

    lan = make_lan(["alice", "bob"])
    code = ("--code", "correct horse battery")
    bob = start(lanpay, lan, "bob", *code)
    first = start(lanpay, lan, "alice", *code)
    time.sleep(dies_after)
    first.kill()
    time.sleep(0.5)
    again = lanpay("alice-again", "--name", "alice", *code, netns=lan["alice"].netns)
    again.expect(WELCOME)
    bob.expect(WELCOME)
    time.sleep(4.0)                 # past a restart probe (2.5 s): its verdict would be told by now
    assert again.balance() == 0 and bob.balance() == 0
    for proc in (bob, again):
        assert not [line for line in proc.lines if "claim" in line], proc.transcript()
    assert again.exit() == 0
    assert bob.exit() == 0


# --- 3. no code: consent ------------------------------------------------------------

def test_without_a_code_nothing_is_handed_back_until_the_survivor_accepts(lanpay, make_lan) -> None:
    lan = make_lan(["alice", "bob"])
    alice, bob = pair(lanpay, lan, alice_args=("--limit", "20"))
    pay(alice, bob, "10.00", "lunch")
    pay(bob, alice, "3.00")
    bob.send("pay 30 concert")                       # alice's --limit refuses it: 23.00 > 20.00
    bob.expect(r"^Error: alice refused payment #2 of 30\.00")
    alice.expect(r"^Refused bob's payment #2 of 30\.00 — concert: it would exceed your limit of 20\.00; "
                 r"nothing moved$")
    before = history(bob)
    assert sorted(before) == [(1, "in", 1000, "received", "lunch"), (1, "out", 300, "confirmed", ""),
                              (2, "out", 3000, "rejected", "concert")]
    assert sorted(history(alice)) == mirrored(before)
    bob.kill()

    reborn = start(lanpay, lan, "bob")
    asked = alice.expect(REQUEST.format(host=re.escape(BOB), balance="-7\\.00", counts="3 payments, 0 pending"))
    code = reborn.expect(AWAITED).group(1)
    assert asked.group(1) == code
    reborn.send("balance")          # line mode holds it until the relationship is back
    alice.send("peer")
    alice.expect(rf"^Peer:\s+bob at {re.escape(BOB)}:\d+ \(repairing\)$")
    assert alice.balance() == -700
    not_yet = [line for line in reborn.lines if re.search(r"Welcome|Restored|Paired", line) or BALANCE.match(line)]
    assert not not_yet, reborn.transcript()

    alice.send("accept")
    alice.expect(r"^Accepted: handing the relationship back$")
    reborn.expect(rf"^Paired with alice \({re.escape(ALICE)}\) · code {re.escape(code)}$")
    reborn.expect(WELCOME)
    restored = reborn.expect(r"^Restored from alice's record: balance 7\.00$").string
    answer = reborn.expect(BALANCE.pattern)
    assert cents(answer.group(1)) == 700
    assert reborn.lines.index(answer.string) > reborn.lines.index(restored)
    alice.expect(HANDED_BACK.format(code=re.escape(code)))
    after = history(reborn)
    assert sorted(after) == sorted(before)           # every line, the refused payment included
    assert sorted(history(alice)) == mirrored(after)
    reborn.send("pay 2")
    assert sent_seq(reborn, "2.00") == 3 + NUMBER_GAP
    alice.expect(r"^You were paid 2\.00!$")
    assert reborn.balance() == 500
    assert alice.balance() == -500


@pytest.mark.tmux
def test_at_the_keyboard_a_restarted_peer_is_told_it_is_restoring_until_the_survivor_accepts(
        pane, lanpay, make_lan) -> None:  # noqa: F811
    lan = make_lan(["alice", "bob"])
    alice, bob = pair(lanpay, lan)
    pay(alice, bob, "10.00")
    bob.kill()
    pane.start(lanpay_command(["--name", "bob"], netns=lan["bob"].netns))
    asked = alice.expect(REQUEST.format(host=re.escape(BOB), balance="-10\\.00", counts="1 payment, 0 pending"))
    pane.wait_text(rf"waiting for alice to type accept\. Compare code {re.escape(asked.group(1))} ")
    pane.type("balance")
    pane.enter()
    pane.type("pay 1")
    pane.enter()
    screen = pane.wait_text(r"^Error: .*restoring")          # refused, and told why: nothing moved
    assert not [row for row in screen if re.match(r"^10\.00\b", row)], "handed over before accept"
    assert alice.balance() == -1000

    alice.send("accept")
    pane.wait_text(r"^Restored from alice's record: balance 10\.00$")
    pane.type("pay 1")
    pane.enter()
    pane.wait_text(r"^Sent 1\.00 to alice \(#1001\)")
    alice.expect(r"^You were paid 1\.00!$")
    assert alice.balance() == -900


# --- 4. a stalled process and a namesake --------------------------------------------

def test_a_stalled_peer_keeps_its_relationship_when_a_namesake_asks_for_it(lanpay, make_lan) -> None:
    lan = make_lan(["alice", "bob", "mallory"])
    alice, bob = pair(lanpay, lan)
    pay(alice, bob, "5.00")
    bob.pause()
    namesake = start_as(lanpay, lan, "mallory", "bob")
    asked = alice.expect(REQUEST.format(host=re.escape(THIRD), balance="-5\\.00", counts="1 payment, 0 pending"))
    assert namesake.expect(AWAITED).group(1) == asked.group(1)
    bob.resume()                    # nobody accepted; the real bob wakes up
    alice.expect(rf"^Warning: {re.escape(THIRD)} claims to be bob restarted, but bob still answers; ignored$")
    bob.expect(rf"^Warning: {re.escape(THIRD)} claimed to be you restarted; alice did not hand it the relationship$")
    alice.send("accept")
    alice.expect(r"^Error: nothing is waiting for your consent$")

    pay(bob, alice, "1.00")
    pay(alice, bob, "0.25")
    assert alice.balance() == -425
    assert bob.balance() == 425
    # told at once, under the session begun for the hand-back, not left to read alice's silence
    namesake.expect(r"^Warning: the hand-back with alice did not complete: it hears your earlier lanpay still "
                    r"answering and keeps the relationship with that one")
    assert not [line for line in namesake.lines
                if re.search(r"Welcome|Restored|Paired|You were paid|stopped answering", line) or BALANCE.match(line)]
    assert not [line for line in alice.lines if "handed back" in line]
    assert not [line for line in bob.lines if "Fenced" in line or "newer lanpay" in line]


# --- 5. the survivor dies during the hand-back ---------------------------------------

@pytest.mark.parametrize("when", ["before-accept", "after-accept"])
def test_a_hand_back_whose_survivor_dies_ends_and_the_peers_pair_afresh(lanpay, make_lan, when) -> None:
    lan = make_lan(["alice", "bob"])
    alice, bob = pair(lanpay, lan)
    pay(alice, bob, "4.00")
    bob.kill()
    reborn = start(lanpay, lan, "bob")
    asked = alice.expect(REQUEST.format(host=re.escape(BOB), balance="-4\\.00", counts="1 payment, 0 pending"))
    assert reborn.expect(AWAITED).group(1) == asked.group(1)
    if when == "after-accept":
        require_tools("nft")
        lan.block("alice", "bob")   # the record cannot reach bob: the hand-back is under way when alice dies
        alice.send("accept")
        alice.expect(r"^Accepted: handing the relationship back$")
    alice.kill()
    if when == "after-accept":
        lan.unblock("alice")        # the new alice's host is a healthy one

    reborn.expect(RESTORE_SILENT, RESTORE_DEADLINE)
    again = start(lanpay, lan, "alice")
    again.expect(rf"^Paired with bob \({re.escape(BOB)}\)")
    again.expect(WELCOME)
    reborn.expect(rf"^Paired with alice \({re.escape(ALICE)}\)")
    reborn.expect(WELCOME)
    assert not [line for line in reborn.lines + again.lines if "Restored" in line]
    assert reborn.balance() == 0
    assert again.balance() == 0
    assert history(reborn) == []
    pay(reborn, again, "1.00")
    assert reborn.balance() == -100
    assert again.balance() == 100


# --- 6. the payer dies with a payment in doubt ---------------------------------------

def test_a_payment_in_doubt_that_never_arrived_is_reported_not_paid_after_the_restart(
        lanpay, make_lan) -> None:
    require_tools("nft")
    lan = make_lan(["alice", "bob"])
    alice, bob = pair(lanpay, lan)
    pay(bob, alice, "1.00")
    lan.block("bob", "alice", min_bytes=PAYMENT_BYTES)   # the payment is lost, keepalives pass
    bob.send(f"pay 5 {LONG_MEMO}")
    bob.expect(r"^Payment #2 of 5\.00 is in doubt: alice has not confirmed it yet; still trying$")
    assert lan.blocked("bob") > 0
    bob.kill()
    lan.unblock("bob")

    reborn = start(lanpay, lan, "bob")
    code = consent(alice, reborn)
    reborn.expect(r"^Restored from alice's record: balance -1\.00$")
    reborn.expect(r"^Any payment your previous lanpay numbered #2 or above never reached alice: not paid "
                  r"\(new payments are numbered from #1003\)$")
    alice.expect(HANDED_BACK.format(code=re.escape(code)))
    assert not [line for line in alice.lines if "5.00" in line]
    reborn.send("pay 2")
    assert sent_seq(reborn, "2.00") == 3 + NUMBER_GAP                 # #2 named the lost payment: never again
    alice.expect(r"^You were paid 2\.00!$")
    assert reborn.balance() == -300
    assert alice.balance() == 300
    assert sorted(history(reborn)) == [(1, "out", 100, "confirmed", ""), (3 + NUMBER_GAP, "out", 200, "confirmed", "")]
    assert sorted(history(alice)) == mirrored(history(reborn))


def test_a_payment_in_doubt_that_did_arrive_is_in_the_history_as_sent_after_the_restart(
        lanpay, make_lan) -> None:
    require_tools("nft")
    lan = make_lan(["alice", "bob"])
    alice, bob = pair(lanpay, lan)
    pay(bob, alice, "1.00")
    lan.block("alice", "bob")       # the payment arrives; its acknowledgement does not
    bob.send("pay 5 fuel")
    alice.expect(r"^You were paid 5\.00! — fuel$")
    bob.expect(r"^Payment #2 of 5\.00 is in doubt: alice has not confirmed it yet; still trying$")
    bob.kill()
    lan.unblock("alice")

    reborn = start(lanpay, lan, "bob")
    code = consent(alice, reborn)
    reborn.expect(r"^Restored from alice's record: balance -6\.00$")
    alice.expect(HANDED_BACK.format(code=re.escape(code)))
    reborn.expect(r"^Any payment your previous lanpay numbered #3 or above never reached alice")
    assert sorted(history(reborn)) == [(1, "out", 100, "confirmed", ""), (2, "out", 500, "confirmed", "fuel")]
    reborn.send("pay 2")
    assert sent_seq(reborn, "2.00") == 3 + NUMBER_GAP
    alice.expect(r"^You were paid 2\.00!$")
    assert reborn.balance() == -800
    assert alice.balance() == 800
    assert count_lines(alice, r"You were paid 5\.00") == 1


# --- 7. the old process after a hand-back ---------------------------------------------

def test_an_old_process_that_wakes_after_the_hand_back_is_fenced_and_both_are_told(lanpay, make_lan) -> None:
    require_tools("nft")
    lan = make_lan(["alice", "bob", "laptop"])
    alice, bob = pair(lanpay, lan)
    pay(bob, alice, "6.00")
    pay(alice, bob, "1.00")
    lan.block("bob", "alice", min_bytes=PAYMENT_BYTES)
    bob.send(f"pay 3 {LONG_MEMO}")  # lost on the way; alice hears only that #2 was given out
    bob.expect(r"^Payment #2 of 3\.00 is in doubt")
    bob.pause()                     # the lid closes; bob starts lanpay on another machine
    lan.unblock("bob")
    newer = start_as(lanpay, lan, "laptop", "bob")
    code = consent(alice, newer)
    newer.expect(r"^Restored from alice's record: balance -5\.00$")
    newer.expect(r"^Any payment your previous lanpay numbered #2 or above never reached alice")
    alice.expect(HANDED_BACK.format(code=re.escape(code)))

    bob.resume()
    alice.expect(rf"^Warning: bob's old process \({re.escape(BOB)}\) spoke again after the hand-back; ignored$")
    bob.expect(r"^Your payment #2 never reached alice: not paid$")      # the same word on both screens
    bob.expect(r"^Warning: alice handed the relationship to a newer lanpay of yours; "
               r"this one can no longer pay \(type exit\)$")
    assert not [line for line in bob.lines if line.startswith("Sent 3.00")]
    bob.send("pay 1")
    bob.expect(r"^Error: a newer lanpay of yours holds the relationship now; this one can no longer pay"
               r" — nothing was sent$")
    newer.send("pay 0.50")
    assert sent_seq(newer, "0.50") == 3 + NUMBER_GAP
    alice.expect(r"^You were paid 0\.50!$")
    assert alice.balance() == 550
    assert newer.balance() == -550
    assert count_lines(alice, r"You were paid (1|3)\.00") == 0
