"""The real ``lanpay`` command, two processes over loopback, driven like a script would.

Both processes run in one namespace that holds nothing but ``lo`` (made for the
test), with ``--interface lo``: they find each other through 127.255.255.255.
Every check is on what the processes print and how they exit.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from lanpay.core.session import IN_DOUBT_AFTER

from netlan import DEADLINE, LanpayProcess, lanpay_command, money

pytestmark = [pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]

WELCOME = r"^Welcome to your peering relationship!$"


def start_pair(lanpay, ns: str, alice_args: tuple[str, ...] = (),
               bob_args: tuple[str, ...] = ()) -> tuple[LanpayProcess, LanpayProcess]:
    """Alice and Bob on the namespace's loopback, paired."""
    alice = lanpay("alice", "--name", "alice", "--interface", "lo", *alice_args, netns=ns)
    bob = lanpay("bob", "--name", "bob", "--interface", "lo", *bob_args, netns=ns)
    alice.expect(WELCOME)
    bob.expect(WELCOME)
    return alice, bob


def test_reference_session(lanpay, loopback_ns) -> None:
    alice, bob = start_pair(lanpay, loopback_ns)
    assert alice.balance() == 0
    assert bob.balance() == 0
    alice.send("pay 10")
    alice.expect(r"^Sent")
    bob.expect(r"You were paid 10\.00!")
    assert alice.balance() == -1000
    assert bob.balance() == 1000
    assert alice.exit() == 0
    assert bob.exit() == 0


def test_both_see_the_same_pairing_code(lanpay, loopback_ns) -> None:
    alice = lanpay("alice", "--name", "alice", "--interface", "lo", netns=loopback_ns)
    bob = lanpay("bob", "--name", "bob", "--interface", "lo", netns=loopback_ns)
    seen_by_alice = alice.expect(r"Paired with bob .*code (\S+)").group(1)
    seen_by_bob = bob.expect(r"Paired with alice .*code (\S+)").group(1)
    assert seen_by_alice == seen_by_bob
    assert sum(ch.isdigit() for ch in seen_by_alice) >= 6


def test_payments_both_ways_with_memos_add_up(lanpay, loopback_ns) -> None:
    alice, bob = start_pair(lanpay, loopback_ns)
    alice.send("pay 2.50 lunch")
    alice.expect(r"^Sent")
    bob.expect(r"You were paid 2\.50!.*lunch")
    bob.send("pay 0.75")
    bob.expect(r"^Sent")
    alice.expect(r"You were paid 0\.75!")
    alice.send("pay 100")
    alice.expect(r"^Sent")
    bob.expect(r"You were paid 100\.00!")
    assert alice.balance() == -250 + 75 - 10000
    assert bob.balance() == 250 - 75 + 10000


def test_commands_typed_before_pairing_wait_for_it(lanpay, loopback_ns) -> None:
    alice = lanpay("alice", "--name", "alice", "--interface", "lo", netns=loopback_ns)
    alice.send("pay 3")
    alice.send("balance")
    bob = lanpay("bob", "--name", "bob", "--interface", "lo", netns=loopback_ns)
    alice.expect(WELCOME)
    alice.expect(r"^Sent")
    assert alice.expect(r"^-?\d+\.\d\d\b").group(0) == "-3.00"
    bob.expect(r"You were paid 3\.00!")
    assert bob.balance() == 300


BAD_COMMANDS = [
    "pay",                          # no amount
    "pay -5",                       # negative
    "pay 0",                        # zero
    "pay 0.00",
    "pay 10.001",                   # below a cent
    "pay ten",
    "pay 1e3",                      # exponent
    "pay 99999999999999999999999",  # huge
    "pay NaN",
    "pay 10,00",
    "frobnicate",                   # unknown command
]


@pytest.mark.parametrize("command", BAD_COMMANDS)
def test_a_bad_command_prints_one_error_and_moves_nothing(lanpay, loopback_ns,
                                                          command: str) -> None:
    alice, bob = start_pair(lanpay, loopback_ns)
    start = alice.mark()
    alice.send(command)
    assert alice.balance() == 0
    said = alice.since(start)[:-1]
    assert [line for line in said if line.startswith("Error:")] == said
    assert len(said) == 1, said
    assert bob.balance() == 0
    assert not [line for line in bob.lines if "You were paid" in line]


def test_every_bad_command_in_a_row_leaves_balances_alone(lanpay, loopback_ns) -> None:
    alice, bob = start_pair(lanpay, loopback_ns)
    alice.send("pay 1")
    alice.expect(r"^Sent")
    start = alice.mark()
    for command in BAD_COMMANDS:
        alice.send(command)
    assert alice.balance() == -100
    said = alice.since(start)[:-1]
    assert len(said) == len(BAD_COMMANDS)
    assert all(line.startswith("Error:") for line in said), said
    assert bob.balance() == 100


def test_end_of_input_says_goodbye_and_tells_the_peer(lanpay, loopback_ns) -> None:
    alice, bob = start_pair(lanpay, loopback_ns)
    alice.send("pay 4")
    alice.close_input()
    alice.expect(r"^Goodbye\.$")
    assert alice.wait() == 0
    bob.expect(r"You were paid 4\.00!")
    bob.expect(r"^alice left")
    assert bob.balance() == 400


@pytest.mark.parametrize(("stopped_before", "stopped_after", "applied"), [
    (0.0, 0.3, None),      # a short stop: he may apply it as he leaves
    (1.5, 1.2, False),     # stopped past STALL_GAP: woken, he applies nothing unconfirmed, then leaves
])
def test_a_payment_on_its_way_when_the_payee_leaves_is_settled_at_once_either_way(
        lanpay, loopback_ns, stopped_before: float, stopped_after: float, applied: bool | None) -> None:
    """Bob is stopped when Alice pays, then terminated and continued: he leaves with her
    payment queued at his socket.  Whether he applied it before leaving or not, his goodbye
    says which, so Alice's script is told at once (not after seconds, not never) and both
    people were told the same thing."""
    alice, bob = start_pair(lanpay, loopback_ns)
    bob.pause()
    time.sleep(stopped_before)
    alice.send("pay 5 racing")
    time.sleep(stopped_after)
    bob.terminate()
    bob.resume()
    assert bob.wait() == 143
    left = time.monotonic()
    alice.send("balance")
    outcome = alice.expect(r"^(Sent 5\.00|Your payment #1 never reached bob: not paid)", deadline=2.5)
    done = time.monotonic() - left
    paid = outcome.group(1).startswith("Sent")
    assert applied is None or paid == applied
    assert alice.expect(r"^(-?\d+\.\d\d)$").group(1) == ("-5.00" if paid else "0.00")
    assert any("You were paid 5.00" in line for line in bob.lines) == paid
    assert done < IN_DOUBT_AFTER and not any("in doubt" in line for line in alice.lines)
    alice.close_input()
    assert alice.wait() == (0 if paid else 1)


def test_a_limit_refuses_a_payment_that_would_pass_it(lanpay, loopback_ns) -> None:
    alice, bob = start_pair(lanpay, loopback_ns, alice_args=("--limit", "5"))
    start = alice.mark()
    alice.send("pay 10")
    assert alice.balance() == 0
    assert [line for line in alice.since(start)[:-1] if line.startswith("Error:")]
    alice.send("pay 5")
    alice.expect(r"^Sent")
    assert alice.balance() == -500
    assert bob.balance() == 500


def test_the_payee_can_refuse_past_its_limit(lanpay, loopback_ns) -> None:
    alice, bob = start_pair(lanpay, loopback_ns, bob_args=("--limit", "5"))
    alice.send("pay 10")
    alice.expect(r"^Error:.*refused")
    assert alice.balance() == 0
    assert bob.balance() == 0
    alice.send("pay 4.99")
    alice.expect(r"^Sent")
    bob.expect(r"You were paid 4\.99!")
    assert bob.balance() == 499


def _run_to_exit(args: list[str], netns: str | None) -> subprocess.CompletedProcess[str]:
    """Start lanpay with no input and wait for it to give up (bounded)."""
    return subprocess.run(lanpay_command(args, netns=netns), input="", capture_output=True,
                          text=True, timeout=DEADLINE)


@pytest.mark.parametrize("args", [
    ["--interface", "lo"],                                        # no --name
    ["--name", "alice", "--interface", "nosuch0"],
    ["--name", "alice", "--interface", "lo", "--port", "0"],
    ["--name", "alice", "--interface", "lo", "--port", "70000"],
    ["--name", "alice", "--interface", "lo", "--limit", "ten"],
    ["--name", "", "--interface", "lo"],
    ["--name", "alice", "--interface", "lo", "--bogus"],
])
def test_a_bad_start_says_why_and_fails(loopback_ns, args: list[str]) -> None:
    done = _run_to_exit(args, loopback_ns)
    assert done.returncode != 0
    assert done.stderr.strip()
    assert "Welcome" not in done.stdout


def test_help_and_version(loopback_ns) -> None:
    helped = _run_to_exit(["--help"], loopback_ns)
    assert helped.returncode == 0
    for option in ("--name", "--peer", "--port", "--interface", "--connect", "--code", "--limit"):
        assert option in helped.stdout
    version = _run_to_exit(["--version"], loopback_ns)
    assert version.returncode == 0
    assert version.stdout.startswith("lanpay ")


def test_code_words_pair_only_when_they_match(lanpay, loopback_ns) -> None:
    alice, bob = start_pair(lanpay, loopback_ns, alice_args=("--code", "blue piano"),
                            bob_args=("--code", "blue piano"))
    alice.send(f"pay {money(1234)}")
    alice.expect(r"^Sent")
    bob.expect(r"You were paid 12\.34!")
    assert bob.balance() == 1234


@pytest.mark.parametrize("bob_code", [("--code", "red piano"), ()])
def test_without_the_same_code_words_nobody_pairs(lanpay, loopback_ns,
                                                   bob_code: tuple[str, ...]) -> None:
    alice = lanpay("alice", "--name", "alice", "--interface", "lo", "--code", "blue piano",
                   netns=loopback_ns)
    bob = lanpay("bob", "--name", "bob", "--interface", "lo", *bob_code, netns=loopback_ns)
    alice.expect(r"^(Pairing with bob failed|bob refused to pair|bob \(127\.0\.0\.1\) does not use --code and you do)")
    for proc in (alice, bob):
        proc.close_input()
        proc.expect(r"^Goodbye\.$")
        assert proc.wait() == 0
        assert not [line for line in proc.lines if "Welcome" in line or "Paired" in line]


def test_a_script_of_many_pays_then_balance_prints_every_sent_in_order(lanpay, loopback_ns) -> None:
    """Queued pays go out without waiting for each other; what the script reads is unchanged:
    one ``Sent`` per pay, in order, then the balance they add up to."""
    alice, bob = start_pair(lanpay, loopback_ns)
    start = alice.mark()
    alice.send("\n".join(f"pay {money(100 + n)} p{n}" for n in range(1, 101)))
    assert alice.balance() == -sum(100 + n for n in range(1, 101))
    said = alice.since(start)
    sent = [line for line in said if line.startswith("Sent")]
    assert sent == [f"Sent {money(100 + n)} to bob (#{n}) — p{n}" for n in range(1, 101)]
    assert said[-1] == money(-sum(100 + n for n in range(1, 101)))     # after every Sent
    assert not [line for line in said if line.startswith(("Error:", "Warning:"))]
    assert len(bob.expect_count(r"You were paid", 100)) == 100
    assert bob.balance() == sum(100 + n for n in range(1, 101))
    assert alice.exit() == 0


@pytest.mark.parametrize("extra", [[], ["--timeout", "20"], ["--json", "--timeout", "20"]],
                         ids=["plain", "timeout", "json-timeout"])
def test_when_the_reader_of_stdout_goes_away_lanpay_leaves_before_running_more(
        lanpay, loopback_ns, extra: list[str]) -> None:
    """``lanpay ... | head -1``: once nobody can read an outcome, no later command runs.  With
    ``--timeout`` the wait for pairing is an ``asyncio.wait_for``, which on Python 3.11 can
    lose the cancellation that comes as pairing completes: the payment must not go anyway."""
    alice = subprocess.Popen(lanpay_command(["--name", "alice", "--interface", "lo", *extra], netns=loopback_ns),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert alice.stdout is not None and alice.stdin is not None
        assert "Looking for a peer" in alice.stdout.readline()
        alice.stdout.close()                       # the reader has gone, as head -1 goes
        alice.stdin.write("pay 1\n")               # waits for pairing, which is never reported
        alice.stdin.flush()
        bob = lanpay("bob", "--name", "bob", "--interface", "lo", netns=loopback_ns)
        bob.expect(WELCOME)
        assert alice.wait(timeout=DEADLINE) == 141
        assert "standard output was closed" in alice.stderr.read()
        bob.expect(r"^alice left")
        assert bob.balance() == 0
    finally:
        if alice.poll() is None:
            alice.kill()
            alice.wait()
