"""What the user sees: events as sentences, and the two ways of typing commands.

``render`` turns each core event into the line a person reads; it is pure, so
every sentence is pinned down by a test.  Two shells run commands against a
node: the interactive one (prompt_toolkit, notices above the prompt, a status
toolbar) when a person sits at a terminal, and line mode (plain lines, commands
wait for pairing, ``pay`` waits for its outcome) when a script feeds stdin.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from lanpay.commands import (
    HELP,
    WORDS,
    Balance,
    Command,
    CommandError,
    Empty,
    Exit,
    Help,
    History,
    Pay,
    PeerInfo,
    parse,
)
from lanpay.core.amounts import format_amount
from lanpay.core.errors import NotPaired, PeerUnavailable, UserError
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

if TYPE_CHECKING:
    from lanpay.core.peer import HistoryEntry, Status

WELCOME = "Welcome to your peering relationship!"
GOODBYE = "Goodbye."
#: How long ``exit`` waits for in-flight payments before saying BYE anyway.
EXIT_GRACE = 3.0

Out = Callable[[str], None]


class NodeLike(Protocol):
    """What a shell needs from the running node (a fake one in tests)."""

    def status(self) -> Status: ...
    def history(self) -> list[HistoryEntry]: ...
    def wall_time(self, at: float) -> float: ...
    def send_payment(self, cents: int, memo: str = "") -> tuple[int, asyncio.Future[Any]]: ...
    async def close(self, grace: float = EXIT_GRACE) -> None: ...


# -- sentences ------------------------------------------------------------------


def render(event: Event, peer: str | None = None) -> str | None:
    """The text a person reads for ``event``; None for events that need no notice.

    ``peer`` is the counterpart's name for events that do not carry it.
    """
    who = peer or "the peer"
    match event:
        case Paired():
            return _paired(event)
        case PaymentReceived(amount=amount, memo=memo):
            return f"You were paid {format_amount(amount)}!" + _memo(memo)
        case PaymentConfirmed(seq=seq, amount=amount, memo=memo, was_in_doubt=late):
            after = " (confirmed after the delay)" if late else ""
            return f"Sent {format_amount(amount)} to {who} (#{seq})" + _memo(memo) + after
        case PaymentInDoubt(seq=seq, amount=amount):
            return (
                f"Payment #{seq} of {format_amount(amount)} is in doubt: "
                f"{who} has not confirmed it yet; still trying"
            )
        case PaymentRejected(seq=seq, amount=amount, reason=reason):
            return f"Error: {who} refused payment #{seq} of {format_amount(amount)}: {reason}"
        case PeerSilent(name=name):
            return f"{name} is not responding"
        case PeerBack(name=name):
            return f"{name} is back"
        case PeerLeft(name=name):
            return f"{name} left"
        case PeerRestarted(name=name, code=code, verified=verified):
            return f"{name} restarted; the relationship was handed back (code {code}{_checked(verified)})"
        case NameConflict(name=name, addrs=addrs):
            where = ", ".join(host for host, _ in addrs)
            return f"Warning: more than one peer is called {name} ({where}); pairing with neither"
        case ImpostorSuspected(name=name, addr=(host, _)):
            return f"Warning: {host} claims to be {name} restarted, but {name} still answers; ignored"
        case PairingRefused(peer_name=name, reason=reason):
            return f"{name} refused to pair: {reason}"
        case PairingFailed(peer_name=name, reason=reason):
            return f"Pairing with {name} failed: {reason}"
        case LedgerAgreement(agree=False):
            return f"Warning: your ledger and {who}'s disagree (check 'balance' on both sides)"
        case _:
            return None


def _paired(event: Paired) -> str:
    host = event.peer_addr[0]
    if event.again:
        return (f"Paired again with {event.peer_name} ({host}) · new code {event.code}{_checked(event.verified)}"
                f" — the first pairing never completed on {event.peer_name}'s side; compare this code")
    lines = [
        f"Paired with {event.peer_name} ({host}) · code {event.code}{_checked(event.verified)}",
        WELCOME,
    ]
    if event.restored:
        lines.append(
            f"Restored from {event.peer_name}'s record: balance {format_amount(event.balance)}"
        )
    return "\n".join(lines)


def _memo(memo: str) -> str:
    return f" — {memo}" if memo else ""


def _checked(verified: bool) -> str:
    return ", verified by the shared code" if verified else ""


def error_text(exc: UserError, peer: str | None, left: bool = False) -> str:
    """The one ``Error:`` line for a request the core refused; nothing moved."""
    who = peer or "the peer"
    match exc:
        case NotPaired():
            return "Error: not paired yet"
        case PeerUnavailable():
            state = "has left" if left else "is not responding"
            return f"Error: {who} {state} — nothing was sent"
        case _:
            return f"Error: {exc}"


def help_text() -> str:
    """One line per command: usage, then what it is for."""
    width = max(len(entry.usage) for entry in HELP)
    return "\n".join(f"  {entry.usage.ljust(width)}  {entry.summary}" for entry in HELP)


def balance_text(status: Status) -> str:
    """The balance alone on the first line (scripts read it); pending detail after."""
    lines = [format_amount(status.balance)]
    if status.pending:
        total = sum(amount for _, amount, _ in status.pending)
        count = len(status.pending)
        doubt = sum(1 for *_, in_doubt in status.pending if in_doubt)
        detail = f"(pending: {format_amount(total)} in {count} payment{'s' * (count != 1)}"
        lines.append(detail + (f", {doubt} in doubt)" if doubt else ")"))
    return "\n".join(lines)


def history_text(entries: Sequence[HistoryEntry], wall: Callable[[float], float]) -> str:
    """A table of payments, oldest first, with local wall-clock times."""
    if not entries:
        return "No payments yet."
    rows = [("#", "dir", "amount", "status", "time", "memo")]
    for e in entries:
        clock = time.strftime("%H:%M:%S", time.localtime(wall(e.at)))
        state = str(getattr(e.status, "value", e.status))
        rows.append((str(e.seq), e.direction, format_amount(e.amount), state, clock, e.memo))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in (0, 2) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines)


def peer_text(status: Status) -> str:
    """Who the counterpart is and how the link is doing."""
    if status.peer_name is None:
        return "Not paired yet: looking for a peer on the LAN…"
    name = status.peer_name
    if status.peer_addr is None:
        return f"Not paired yet: pairing with {name}…"
    host, port = status.peer_addr
    check = "verified by the shared code" if status.verified else f"compare with {name}'s screen"
    agree = {True: "agree", False: "DISAGREE", None: "not compared yet"}[status.agree]
    return "\n".join(
        [
            f"Peer:     {name} at {host}:{port} ({status.state})",
            f"Code:     {status.code} ({check})",
            f"Link:     {'online' if status.online else 'not responding'}, RTT {_rtt(status.rtt)}",
            f"Views:    {agree}",
            f"Balance:  {format_amount(status.balance)}",
        ]
    )


def toolbar_text(status: Status) -> str:
    """The one-line status under the prompt."""
    parts: list[str] = []
    if status.peer_name is None:
        parts.append("looking for a peer…")
    else:
        host = status.peer_addr[0] if status.peer_addr else "?"
        parts.append(f"{status.peer_name} ({host})")
        parts.append("online" if status.online else "silent")
        parts.append(f"RTT {_rtt(status.rtt)}")
    parts.append(f"balance {format_amount(status.balance)}")
    if status.pending:
        parts.append(f"{len(status.pending)} pending")
    return " · ".join(parts)


def _rtt(rtt: float | None) -> str:
    return "unknown" if rtt is None else f"{rtt * 1000:.1f} ms"


def looking_text(want: str | None) -> str:
    """The first line, so the user knows lanpay is waiting for someone."""
    return f"Looking for {want} on the LAN…" if want else "Looking for a peer on the LAN…"


# -- the shells -----------------------------------------------------------------


class Shell:
    """Runs commands against a node and renders its events; shared by both modes."""

    def __init__(self, out: Out) -> None:
        self.out = out
        self.peer_name: str | None = None
        self.paired = asyncio.Event()
        self._left = False
        self._doubted: dict[int, asyncio.Event] = {}    # payments a waiting command is told are in doubt

    def on_event(self, event: Event) -> None:
        """Given to the node: remember who the peer is, then show the notice."""
        match event:
            case Paired(peer_name=name) | PeerRestarted(name=name):
                self.peer_name, self._left = name, False
                self.paired.set()
            case PeerLeft():
                self._left = True
            case PeerBack():
                self._left = False
            case PaymentInDoubt(seq=seq) if seq in self._doubted:
                self._doubted[seq].set()
        text = render(event, self.peer_name)
        if text is not None:
            self.say(text)

    def say(self, text: str) -> None:
        """Output text one line at a time (line mode's readers count lines)."""
        for line in text.split("\n"):
            self.out(line)

    async def execute(self, node: NodeLike, command: Command) -> bool:
        """Run one command; False means the user asked to leave."""
        match command:
            case Exit():
                return False
            case Help():
                self.say(help_text())
            case Balance():
                self.say(balance_text(node.status()))
            case History():
                self.say(history_text(node.history(), node.wall_time))
            case PeerInfo():
                self.say(peer_text(node.status()))
            case Pay(cents=cents, memo=memo):
                await self.pay(node, cents, memo)
            case Empty():
                pass
        return True

    async def pay(self, node: NodeLike, cents: int, memo: str) -> None:
        """Start a payment; the shells differ in whether they wait for its outcome."""
        self.start_payment(node, cents, memo)

    def start_payment(self, node: NodeLike, cents: int, memo: str) -> tuple[int, asyncio.Future[Any]] | None:
        """Ask the node to pay; print the refusal if the core says no."""
        try:
            return node.send_payment(cents, memo)
        except UserError as exc:
            self.out(error_text(exc, self.peer_name, self._left))
            return None

    def parse(self, line: str) -> Command | None:
        """Parse a line, printing the error for a bad one."""
        try:
            return parse(line)
        except CommandError as exc:
            self.out(f"Error: {exc}")
            return None

    async def leave(self, node: NodeLike) -> None:
        """Let in-flight payments finish (briefly), say BYE, and say goodbye."""
        await node.close(EXIT_GRACE)
        pending = node.status().pending
        if pending:
            listed = ", ".join(f"#{seq} {format_amount(amount)}" for seq, amount, _ in pending)
            who = self.peer_name or "the peer"
            self.out(f"Warning: leaving with {len(pending)} payment(s) not confirmed ({listed}); "
                     f"{who} may or may not have received them")
        self.out(GOODBYE)


class LineShell(Shell):
    """Plain lines for scripts: commands wait for pairing, ``pay`` for its outcome."""

    async def run(self, node: NodeLike, lines: AsyncIterator[str]) -> int:
        """Read commands until ``exit`` or end of input; return the exit status."""
        async for line in lines:
            command = self.parse(line)
            if command is None:
                continue
            if not isinstance(command, (Help, Exit, Empty)):
                await self.paired.wait()
            if not await self.execute(node, command):
                break
        await self.leave(node)
        return 0

    async def pay(self, node: NodeLike, cents: int, memo: str) -> None:
        """Wait for the outcome (its notice, ``Sent`` or ``Error``, is the event's), or until
        the payment is reported in doubt: a script must not hang on a peer that is gone.
        The outcome of a payment in doubt is still printed when it is known."""
        started = self.start_payment(node, cents, memo)
        if started is None:
            return
        seq, outcome = started
        doubted = self._doubted.setdefault(seq, asyncio.Event())
        told = asyncio.ensure_future(doubted.wait())
        try:
            await asyncio.wait({outcome, told}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            told.cancel()
            del self._doubted[seq]


async def stdin_lines(fd: int = 0) -> AsyncIterator[str]:
    """Lines from a file descriptor without blocking the loop, then end at EOF.

    A daemon thread reads with ``os.read`` (it works for pipes, files and
    terminals alike, and holds no interpreter-level lock that could block exit).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                loop.call_soon_threadsafe(queue.put_nowait, raw.decode("utf-8", "replace"))
        if pending:
            loop.call_soon_threadsafe(queue.put_nowait, pending.decode("utf-8", "replace"))
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=reader, name="lanpay-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


class InteractiveShell(Shell):
    """A prompt_toolkit prompt; notices appear above it, status below it."""

    def __init__(self, name: str, out: Out | None = None, **session_args: Any) -> None:
        super().__init__(out or self._print)
        self.name = name
        self._session_args = session_args

    @staticmethod
    def _print(text: str) -> None:
        """Print above the prompt (prompt_toolkit redraws the prompt below)."""
        from prompt_toolkit import print_formatted_text
        from prompt_toolkit.formatted_text import FormattedText

        style = "ansired" if text.startswith(("Error:", "Warning:")) else ""
        if text.startswith("You were paid"):
            style = "ansigreen bold"
        print_formatted_text(FormattedText([(style, text)]))

    def session(self, node: NodeLike) -> Any:
        """The prompt session: completion, in-memory history, live toolbar."""
        from prompt_toolkit import PromptSession
        from prompt_toolkit.completion import WordCompleter
        from prompt_toolkit.history import InMemoryHistory

        return PromptSession(
            f"{self.name}> ",
            completer=WordCompleter(list(WORDS), ignore_case=True),
            history=InMemoryHistory(),
            bottom_toolbar=lambda: toolbar_text(node.status()),
            refresh_interval=0.5,
            **self._session_args,
        )

    async def run(self, node: NodeLike) -> int:
        """Prompt until ``exit``/``quit``/Ctrl-D; Ctrl-C only clears the line."""
        from prompt_toolkit.patch_stdout import patch_stdout

        session = self.session(node)
        with patch_stdout(raw=True):
            while True:
                try:
                    line = await session.prompt_async()
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                command = self.parse(line)
                if command is not None and not await self.execute(node, command):
                    break
            pending = len(node.status().pending)
            if pending:
                self.out(f"Waiting for {pending} payment{'s' * (pending != 1)} to be confirmed…")
            await self.leave(node)
        return 0
