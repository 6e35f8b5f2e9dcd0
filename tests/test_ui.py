"""What the user reads: every event's sentence, the tables, and both shells' behaviour."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from lanpay.core.errors import NotPaired, OverLimit, PeerUnavailable
from lanpay.core.events import (
    Event,
    ImpostorSuspected,
    LedgerAgreement,
    NameConflict,
    Paired,
    PairingFailed,
    PairingRefused,
    PaymentConfirmed,
    PaymentInDoubt,
    PaymentReceived,
    PaymentRejected,
    PeerBack,
    PeerLeft,
    PeerRestarted,
    PeerSilent,
)
from lanpay.ui import (
    InteractiveShell,
    LineShell,
    balance_text,
    error_text,
    help_text,
    history_text,
    peer_text,
    render,
    stdin_lines,
    toolbar_text,
)

BOB = ("127.0.0.1", 40001)

RENDERED: list[tuple[Event, str | None]] = [
    (
        Paired("bob", BOB, "41-87-03"),
        "Paired with bob (127.0.0.1) · code 41-87-03\nWelcome to your peering relationship!",
    ),
    (
        Paired("bob", BOB, "41-87-03", restored=True, balance=1000),
        "Paired with bob (127.0.0.1) · code 41-87-03\n"
        "Welcome to your peering relationship!\n"
        "Restored from bob's record: balance 10.00",
    ),
    (
        Paired("bob", BOB, "41-87-03", verified=True),
        "Paired with bob (127.0.0.1) · code 41-87-03, verified by the shared code\n"
        "Welcome to your peering relationship!",
    ),
    (
        Paired("bob", BOB, "55-12-90", again=True),
        "Paired again with bob (127.0.0.1) · new code 55-12-90 — the first pairing never completed "
        "on bob's side; compare this code",
    ),
    (PaymentReceived(1, 1000, "", 1000), "You were paid 10.00!"),
    (PaymentReceived(2, 5, "lunch", 1005), "You were paid 0.05! — lunch"),
    (PaymentConfirmed(1, 1000, "", -1000), "Sent 10.00 to bob (#1)"),
    (PaymentConfirmed(2, 250, "tea", -1250), "Sent 2.50 to bob (#2) — tea"),
    (
        PaymentConfirmed(3, 1000, "", -2250, was_in_doubt=True),
        "Sent 10.00 to bob (#3) (confirmed after the delay)",
    ),
    (
        PaymentInDoubt(3, 1000),
        "Payment #3 of 10.00 is in doubt: bob has not confirmed it yet; still trying",
    ),
    (
        PaymentRejected(3, 1000, "over bob's limit"),
        "Error: bob refused payment #3 of 10.00: over bob's limit",
    ),
    (PeerSilent("bob"), "bob is not responding"),
    (PeerBack("bob"), "bob is back"),
    (PeerLeft("bob"), "bob left"),
    (
        PeerRestarted("bob", BOB, "12-34-56"),
        "bob restarted; the relationship was handed back (code 12-34-56)",
    ),
    (
        PeerRestarted("bob", BOB, "12-34-56", verified=True),
        "bob restarted; the relationship was handed back "
        "(code 12-34-56, verified by the shared code)",
    ),
    (
        NameConflict("bob", (("10.0.0.2", 47474), ("10.0.0.3", 47474))),
        "Warning: more than one peer is called bob (10.0.0.2, 10.0.0.3); pairing with neither",
    ),
    (
        ImpostorSuspected("bob", ("10.0.0.9", 5000)),
        "Warning: 10.0.0.9 claims to be bob restarted, but bob still answers; ignored",
    ),
    (PairingRefused("carol", "already paired"), "carol refused to pair: already paired"),
    (PairingFailed("carol", "wrong code"), "Pairing with carol failed: wrong code"),
    (
        LedgerAgreement(False),
        "Warning: your ledger and bob's disagree (check 'balance' on both sides)",
    ),
    (LedgerAgreement(True), None),
]


@pytest.mark.parametrize(("event", "text"), RENDERED)
def test_every_event_has_its_sentence(event: Event, text: str | None) -> None:
    assert render(event, "bob") == text


def test_every_event_type_is_covered() -> None:
    import lanpay.core.events as events

    types = {
        obj
        for obj in vars(events).values()
        if isinstance(obj, type) and issubclass(obj, events.Event) and obj is not events.Event
    }
    assert types == {type(event) for event, _ in RENDERED}


def test_unknown_peer_name_reads_naturally() -> None:
    assert render(PaymentInDoubt(1, 100)) == (
        "Payment #1 of 1.00 is in doubt: the peer has not confirmed it yet; still trying"
    )


def test_user_errors_become_one_error_line() -> None:
    assert error_text(NotPaired("no peer"), None) == "Error: not paired yet"
    assert error_text(PeerUnavailable("x"), "bob") == (
        "Error: bob is not responding — nothing was sent"
    )
    assert error_text(PeerUnavailable("x"), "bob", left=True) == (
        "Error: bob has left — nothing was sent"
    )
    assert error_text(OverLimit("over your limit of 50.00"), "bob") == (
        "Error: over your limit of 50.00"
    )


@dataclass(frozen=True)
class FakeStatus:
    state: str = "looking"
    peer_name: str | None = None
    peer_addr: tuple[str, int] | None = None
    code: str | None = None
    online: bool = False
    rtt: float | None = None
    balance: int = 0
    pending: tuple[tuple[int, int, bool], ...] = ()
    agree: bool | None = None
    verified: bool = False
    drops: int = 0


PAIRED = FakeStatus("paired", "bob", BOB, "41-87-03", True, 0.00042, -1000, (), True)


@dataclass(frozen=True)
class FakeEntry:
    seq: int
    direction: str
    amount: int
    memo: str
    at: float
    status: str


def test_balance_is_alone_on_its_line_with_pending_after() -> None:
    assert balance_text(FakeStatus(balance=-1000)) == "-10.00"
    assert balance_text(FakeStatus(balance=0)) == "0.00"
    one = FakeStatus(balance=-1000, pending=((2, 1000, False),))
    assert balance_text(one) == "-10.00\n(pending: 10.00 in 1 payment)"
    two = FakeStatus(balance=500, pending=((2, 1000, True), (3, 250, False)))
    assert balance_text(two) == "5.00\n(pending: 12.50 in 2 payments, 1 in doubt)"


def test_history_is_a_table_in_local_time() -> None:
    import time

    at = time.mktime((2024, 5, 1, 14, 3, 12, 0, 0, -1))
    entries = [
        FakeEntry(1, "out", 1000, "lunch", at, "confirmed"),
        FakeEntry(1, "in", 5, "", at + 61, "received"),
        FakeEntry(12, "out", 123456, "", at + 3600, "in-doubt"),
    ]
    assert history_text(entries, lambda t: t).split("\n") == [
        " #  dir   amount  status     time      memo",
        " 1  out    10.00  confirmed  14:03:12  lunch",
        " 1  in      0.05  received   14:04:13",
        "12  out  1234.56  in-doubt   15:03:12",
    ]
    assert history_text([], lambda t: t) == "No payments yet."


def test_peer_info() -> None:
    assert peer_text(FakeStatus()) == "Not paired yet: looking for a peer on the LAN…"
    assert peer_text(FakeStatus("pairing", "bob")) == "Not paired yet: pairing with bob…"
    assert peer_text(PAIRED).split("\n") == [
        "Peer:     bob at 127.0.0.1:40001 (paired)",
        "Code:     41-87-03 (compare with bob's screen)",
        "Link:     online, RTT 0.4 ms",
        "Views:    agree",
        "Balance:  -10.00",
    ]


def test_toolbar() -> None:
    assert toolbar_text(FakeStatus()) == "looking for a peer… · balance 0.00"
    busy = FakeStatus("paired", "bob", BOB, "1", False, None, 250, ((1, 5, True),))
    assert toolbar_text(busy) == "bob (127.0.0.1) · silent · RTT unknown · balance 2.50 · 1 pending"
    assert toolbar_text(PAIRED) == "bob (127.0.0.1) · online · RTT 0.4 ms · balance -10.00"


def test_help_lists_every_command() -> None:
    lines = help_text().split("\n")
    assert [line.split()[0] for line in lines] == ["balance", "pay", "history", "peer", "help", "exit"]
    assert all(len(line.split("  ")) >= 2 for line in lines)


# -- the shells against a fake node -------------------------------------------------


@dataclass
class FakeNode:
    """Confirms (or refuses) payments on the next loop turn, as the real node would."""

    shell: Any = None
    balance: int = 0
    refuse: Exception | None = None
    answer: str = "confirm"
    seq: int = 0
    closed: list[float] = field(default_factory=list)
    outcomes: dict[int, asyncio.Future[Any]] = field(default_factory=dict)

    def status(self) -> FakeStatus:
        pending = tuple((s, 1, False) for s, f in self.outcomes.items() if not f.done())
        return FakeStatus(balance=self.balance, pending=pending)

    def history(self) -> list[FakeEntry]:
        return []

    def wall_time(self, at: float) -> float:
        return at

    def send_payment(self, cents: int, memo: str = "") -> tuple[int, asyncio.Future[Any]]:
        if self.refuse is not None:
            raise self.refuse
        self.seq += 1
        outcome = asyncio.get_running_loop().create_future()
        self.outcomes[self.seq] = outcome
        if self.answer == "confirm":
            asyncio.get_running_loop().call_later(0.01, self._confirm, self.seq, cents, memo)
        return self.seq, outcome

    def _confirm(self, seq: int, cents: int, memo: str) -> None:
        self.balance -= cents
        event = PaymentConfirmed(seq, cents, memo, self.balance)
        self.shell.on_event(event)
        self.outcomes[seq].set_result(event)

    async def close(self, grace: float = 3.0) -> None:
        self.closed.append(grace)


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body on a fresh event loop (no plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


async def lines_of(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


def line_shell(**node_args: Any) -> tuple[LineShell, FakeNode, list[str]]:
    out: list[str] = []
    shell = LineShell(out.append)
    node = FakeNode(shell=shell, **node_args)
    return shell, node, out


@sync
async def test_line_mode_commands_wait_for_pairing() -> None:
    shell, node, out = line_shell()
    task = asyncio.create_task(shell.run(node, lines_of("balance", "pay 10 lunch", "balance")))
    await asyncio.sleep(0.05)
    assert out == [] and not task.done()
    shell.on_event(Paired("bob", BOB, "41-87-03"))
    assert await task == 0
    assert out == [
        "Paired with bob (127.0.0.1) · code 41-87-03",
        "Welcome to your peering relationship!",
        "0.00",
        "Sent 10.00 to bob (#1) — lunch",
        "-10.00",
        "Goodbye.",
    ]
    assert node.closed == [3.0]


@sync
async def test_line_mode_help_and_errors_need_no_peer_and_eof_exits() -> None:
    shell, node, out = line_shell()
    assert await shell.run(node, lines_of("help", "", "pay -1", "frobnicate")) == 0
    assert out[:6] == help_text().split("\n")
    assert out[6:] == [
        "Error: amount must be positive",
        "Error: unknown command 'frobnicate' (try 'help')",
        "Goodbye.",
    ]


@sync
async def test_line_mode_exit_stops_reading() -> None:
    shell, node, out = line_shell()
    shell.on_event(Paired("bob", BOB, "1"))
    assert await shell.run(node, lines_of("exit", "pay 10")) == 0
    assert node.seq == 0 and out[-1] == "Goodbye."


@sync
async def test_line_mode_refused_payment_moves_nothing() -> None:
    shell, node, out = line_shell(refuse=PeerUnavailable("silent"))
    shell.on_event(Paired("bob", BOB, "1"))
    shell.on_event(PeerLeft("bob"))
    assert await shell.run(node, lines_of("pay 10", "balance")) == 0
    assert out[-4:] == ["bob left", "Error: bob has left — nothing was sent", "0.00", "Goodbye."]


@sync
async def test_line_mode_pay_moves_on_once_in_doubt_and_still_shows_the_outcome() -> None:
    """A script must not hang on a peer that is gone: in doubt, the next command runs."""
    shell, node, out = line_shell(answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    more = asyncio.Event()

    async def lines() -> AsyncIterator[str]:
        yield "pay 3"
        yield "balance"
        await more.wait()

    task = asyncio.create_task(shell.run(node, lines()))
    await asyncio.sleep(0.02)
    assert out[-1] == "Welcome to your peering relationship!"      # still waiting for the outcome
    shell.on_event(PaymentInDoubt(1, 300))
    await asyncio.sleep(0.02)
    doubt = next(i for i, line in enumerate(out) if line.startswith("Payment #1 of 3.00 is in doubt"))
    assert out[doubt + 1] == "0.00"      # the next command ran
    node._confirm(1, 300, "")
    more.set()
    await asyncio.wait_for(task, 10)
    assert out[-2:] == ["Sent 3.00 to bob (#1)", "Goodbye."]
    assert not any(line.startswith("Warning") for line in out)


@sync
async def test_leaving_with_a_payment_unconfirmed_says_so() -> None:
    shell, node, out = line_shell(answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 3")))
    await asyncio.sleep(0.02)
    shell.on_event(PaymentInDoubt(1, 300))
    await asyncio.wait_for(task, 10)
    assert out[-2:] == [
        "Warning: leaving with 1 payment(s) not confirmed (#1 0.01); bob may or may not have received them",
        "Goodbye.",
    ]


async def run_interactive(keys: str, node: FakeNode | None = None) -> tuple[list[str], FakeNode, int]:
    out: list[str] = []
    shell = InteractiveShell("alice", out=out.append)
    node = node or FakeNode()
    node.shell = shell
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        pipe.send_text(keys)
        status = await asyncio.wait_for(shell.run(node), 10)
    return out, node, status


@sync
async def test_interactive_before_pairing_balance_works_and_pay_is_refused() -> None:
    node = FakeNode(refuse=NotPaired("no peer yet"))
    out, node, status = await run_interactive("balance\rpay 10\rhelp me\rexit\r", node)
    assert status == 0
    assert out == [
        "0.00",
        "Error: not paired yet",
        "Error: 'help' takes no arguments",
        "Goodbye.",
    ]


@sync
async def test_interactive_ctrl_c_clears_the_line_and_ctrl_d_exits() -> None:
    out, node, status = await run_interactive("pay 99\x03balance\r\x04")
    assert status == 0
    assert node.seq == 0  # the interrupted line was never run
    assert out == ["0.00", "Goodbye."]
    assert node.closed == [3.0]


@sync
async def test_interactive_pay_returns_to_the_prompt_and_exit_waits() -> None:
    out, node, status = await run_interactive("PAY 2.5 tea\rquit\r", FakeNode(answer="never"))
    assert status == 0
    assert out == [
        "Waiting for 1 payment to be confirmed…",
        "Warning: leaving with 1 payment(s) not confirmed (#1 0.01); the peer may or may not have received them",
        "Goodbye.",
    ]
    assert node.seq == 1 and node.closed == [3.0]


@sync
async def test_stdin_lines_reads_a_pipe_without_blocking_the_loop() -> None:
    import os

    read, write = os.pipe()
    got: list[str] = []

    async def collect() -> None:
        async for line in stdin_lines(read):
            got.append(line)

    task = asyncio.create_task(collect())
    os.write(write, b"balance\npay 10 caf\xc3\xa9\r\npay 1 \xff")
    for _ in range(1000):  # the loop keeps running while the reader thread waits
        if len(got) == 2:
            break
        await asyncio.sleep(0.01)
    assert got == ["balance", "pay 10 café\r"] and not task.done()
    os.close(write)
    await asyncio.wait_for(task, 10)
    assert got == ["balance", "pay 10 café\r", "pay 1 \ufffd"]
    os.close(read)
