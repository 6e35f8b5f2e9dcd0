"""What the user sees: events as sentences (or JSON lines), and the two ways of typing commands.

``render`` turns each core event into the line a person reads and ``record``
into the JSON object a script reads; both are pure, so every sentence is
pinned down by a test.  Text that came from the network (names, memos,
reasons) goes through one sanitiser, :func:`shown`, before it reaches either.
Two shells run commands against a node: the interactive one (prompt_toolkit,
notices above the prompt, a status toolbar) when a person sits at a terminal,
and line mode (plain or JSON lines, commands wait for pairing, ``pay`` waits
for its outcome, errors also on stderr) when a script feeds stdin.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import stat
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from lanpay.commands import (
    HELP,
    WORDS,
    Accept,
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
from lanpay.core import text as text_rules
from lanpay.core import wire
from lanpay.core.amounts import format_amount
from lanpay.core.errors import NotPaired, PeerUnavailable, UserError
from lanpay.core.events import (
    Event,
    Fenced,
    HandbackAwaited,
    HandbackRequested,
    ImpostorSuspected,
    LedgerAgreement,
    NameConflict,
    OldProcessBack,
    Paired,
    PairingFailed,
    PairingRefused,
    PaymentConfirmed,
    PaymentDeclined,
    PaymentInDoubt,
    PaymentReceived,
    PaymentRejected,
    PaymentsVoided,
    PeerBack,
    PeerLeft,
    PeerRestarted,
    PeerSilent,
    RestoreFailed,
)

if TYPE_CHECKING:
    from lanpay.core.peer import HistoryEntry, Status

WELCOME = "Welcome to your peering relationship!"
GOODBYE = "Goodbye."
#: How long ``exit`` waits for in-flight payments before saying BYE anyway.
EXIT_GRACE = 3.0
#: A second Ctrl-C on an empty line within this many seconds leaves the shell.
INTERRUPT_WINDOW = 2.0
#: How often the shell looks whether the toolbar's text changed (it redraws only then).
TOOLBAR_CHECK = 1.0

Out = Callable[[str], None]


class NodeLike(Protocol):
    """What a shell needs from the running node (a fake one in tests)."""

    def status(self) -> Status: ...
    def history(self) -> list[HistoryEntry]: ...
    def wall_time(self, at: float) -> float: ...
    def send_payment(self, cents: int, memo: str = "") -> tuple[int, asyncio.Future[Any]]: ...
    def accept(self) -> None: ...
    async def close(self, grace: float = EXIT_GRACE) -> None: ...


# -- the sanitiser ------------------------------------------------------------------


def shown(text: str) -> str:
    """Text from the network made safe to print: anything the text rules refuse becomes ``\\u202e``."""
    return text_rules.escape(text)


def _cleaned(event: Event) -> Event:
    """The event with every string field through :func:`shown` (names, memos, reasons, codes)."""
    changes = {f.name: shown(value) for f in dataclasses.fields(event)  # type: ignore[arg-type]
               if isinstance(value := getattr(event, f.name), str)}
    return dataclasses.replace(event, **changes) if changes else event  # type: ignore[type-var]


# -- sentences ------------------------------------------------------------------

#: What to do when pairing is refused or fails for a reason the core names.
_ADVICE = {
    wire.REFUSE_TEXT[wire.R_BAD_CODE]:
        "the code words differ (or someone on the network interfered); agree on the words "
        "again, then start both sides with the same --code",
    wire.REFUSE_TEXT[wire.R_CODE_MISMATCH]:
        "one side uses --code and the other does not; start both with the same --code, or both without",
    wire.REFUSE_TEXT[wire.R_NOT_WANTED]:
        "it is waiting for someone else (its --peer names another); lanpay keeps looking",
    wire.REFUSE_TEXT[wire.R_TAKEN]:
        "it is already paired with someone else; lanpay keeps looking",
}


def render(event: Event, peer: str | None = None) -> str | None:
    """The text a person reads for ``event``; None for events that need no notice.

    ``peer`` is the counterpart's name for events that do not carry it.  Every
    string in the event came from the network or depends on it, so all of them
    are passed through :func:`shown` first.
    """
    event = _cleaned(event)
    who = shown(peer) if peer else "the peer"
    match event:
        case Paired():
            return _paired(event)
        case PaymentReceived() | PaymentConfirmed() | PaymentInDoubt() | PaymentRejected() | PaymentDeclined():
            return _payment(event, who)
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
            return f"{name} refused to pair: {_ADVICE.get(reason, reason)}"
        case PairingFailed(peer_name=name, reason=reason):
            return f"Pairing with {name} failed: {_ADVICE.get(reason, reason)}"
        case LedgerAgreement(agree=False):
            return f"Warning: your ledger and {who}'s disagree (check 'balance' on both sides)"
        case _:
            return _restart(event, who)


def _payment(event: Event, who: str) -> str | None:
    match event:
        case PaymentReceived(amount=amount, memo=memo):
            return f"You were paid {format_amount(amount)}!" + _memo(memo)
        case PaymentConfirmed(seq=seq, amount=amount, memo=memo, was_in_doubt=late):
            after = " (confirmed after the delay)" if late else ""
            return f"Sent {format_amount(amount)} to {who} (#{seq})" + _memo(memo) + after
        case PaymentInDoubt(seq=seq, amount=amount):
            return (f"Payment #{seq} of {format_amount(amount)} is in doubt: "
                    f"{who} has not confirmed it yet; still trying")
        case PaymentRejected(seq=seq, amount=amount, reason=reason):
            return f"Error: {who} refused payment #{seq} of {format_amount(amount)}: {reason}"
        case PaymentDeclined(seq=seq, amount=amount, memo=memo, reason=reason):
            return (f"Refused {who}'s payment #{seq} of {format_amount(amount)}{_memo(memo)}: "
                    f"{reason}; nothing moved")
    return None


def _restart(event: Event, who: str) -> str | None:
    """The sentences of a hand-back after a restart, on either side."""
    match event:
        case HandbackRequested(name=name, addr=(host, _), code=code, balance=balance,
                               payments=payments, pending=pending):
            return (f"{name} ({host}) restarted and asks for the relationship back (balance "
                    f"{format_amount(balance)}, {_count(payments, 'payment')}, {pending} pending). "
                    f"Compare code {code} with {name}'s screen, then type accept")
        case HandbackAwaited(name=name, addr=(host, _), code=code):
            return (f"{name} ({host}) still holds the relationship; waiting for {name} to type accept. "
                    f"Compare code {code} with {name}'s screen")
        case PaymentsVoided(first=first, last=last):
            which = f"payment #{first}" if first == last else f"payments #{first}..#{last}"
            return f"Your {which} never reached {who}: not paid"
        case RestoreFailed(name=name, reason=reason):
            return f"Warning: getting the relationship back from {name} failed: {reason}"
        case OldProcessBack(name=name, addr=(host, _)):
            return f"Warning: {name}'s old process ({host}) spoke again after the hand-back; ignored"
        case Fenced(name=name):
            return (f"Warning: {name} handed the relationship to a newer lanpay of yours; "
                    f"this one can no longer pay (type exit)")
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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def error_text(exc: UserError, peer: str | None, left: bool = False) -> str:
    """The one ``Error:`` line for a request the core refused; nothing moved."""
    who = shown(peer) if peer else "the peer"
    match exc:
        case NotPaired():
            return "Error: not paired yet"
        case PeerUnavailable():
            state = "has left" if left else "is not responding"
            return f"Error: {who} {state} — nothing was sent"
        case _:
            return f"Error: {exc}"


# -- records for --json -------------------------------------------------------------

#: Fields that hold cents: a record carries them as "10.00" and as ``<name>_cents``.
_MONEY = {"amount", "balance"}


def money(name: str, cents: int) -> dict[str, Any]:
    """An amount the way every record carries it: a string with two decimals, and cents."""
    return {name: format_amount(cents), f"{name}_cents": cents}


def event_type(event: Event) -> str:
    """``PaymentReceived`` -> ``payment_received``: the ``type`` of an event's record."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


def record(event: Event, peer: str | None = None) -> dict[str, Any]:
    """The JSON object for ``event``: its type, its fields (amounts twice, addresses split), its text."""
    clean = _cleaned(event)
    out: dict[str, Any] = {"type": event_type(event)}
    for f in dataclasses.fields(clean):  # type: ignore[arg-type]
        value = getattr(clean, f.name)
        if f.name in _MONEY:
            out.update(money(f.name, value))
        elif f.name in ("addr", "peer_addr"):
            out["addr"], out["port"] = value
        elif f.name == "addrs":
            out["addrs"] = [{"addr": host, "port": port} for host, port in value]
        else:
            out[f.name] = value
    out["text"] = render(event, peer)
    return out


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
        detail = f"(pending: {format_amount(total)} in {_count(count, 'payment')}"
        lines.append(detail + (f", {doubt} in doubt)" if doubt else ")"))
    return "\n".join(lines)


def balance_record(status: Status) -> dict[str, Any]:
    """``balance`` for scripts: the balance and every pending payment."""
    pending = [{"seq": seq, **money("amount", amount), "in_doubt": doubt}
               for seq, amount, doubt in status.pending]
    return {**money("balance", status.balance), "pending": pending}


def history_text(entries: Sequence[HistoryEntry], wall: Callable[[float], float]) -> str:
    """A table of payments, oldest first, with local wall-clock times."""
    if not entries:
        return "No payments yet."
    rows = [("#", "dir", "amount", "status", "time", "memo")]
    for e in entries:
        clock = time.strftime("%H:%M:%S", time.localtime(wall(e.at)))
        rows.append((str(e.seq), e.direction, format_amount(e.amount), _state(e), clock, shown(e.memo)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in (0, 2) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines)


def history_record(entries: Sequence[HistoryEntry], wall: Callable[[float], float]) -> dict[str, Any]:
    """``history`` for scripts: every payment, with its time in seconds since the epoch."""
    return {"payments": [
        {"seq": e.seq, "direction": e.direction, **money("amount", e.amount), "status": _state(e),
         "time": round(wall(e.at), 3), "memo": shown(e.memo)}
        for e in entries
    ]}


def _state(entry: HistoryEntry) -> str:
    return str(getattr(entry.status, "value", entry.status))


def peer_text(status: Status, left: bool = False) -> str:
    """Who the counterpart is and how the link is doing."""
    if status.peer_name is None:
        return "Not paired yet: looking for a peer on the LAN…"
    name = shown(status.peer_name)
    if status.peer_addr is None:
        return f"Not paired yet: pairing with {name}…"
    host, port = status.peer_addr
    check = "verified by the shared code" if status.verified else f"compare with {name}'s screen"
    agree = {True: "agree", False: "DISAGREE", None: "not compared yet"}[status.agree]
    return "\n".join(
        [
            f"Peer:     {name} at {host}:{port} ({status.state})",
            f"Code:     {status.code} ({check})",
            f"Link:     {_link(status, left)}, RTT {_rtt(status.rtt)}",
            f"Views:    {agree}",
            f"Balance:  {format_amount(status.balance)}",
        ]
    )


def peer_record(status: Status, left: bool = False) -> dict[str, Any]:
    """``peer`` for scripts."""
    host, port = status.peer_addr or (None, None)
    return {"state": status.state, "name": shown(status.peer_name) if status.peer_name else None,
            "addr": host, "port": port, "code": status.code, "verified": status.verified,
            "link": _link(status, left) if status.peer_addr else None,
            "rtt_ms": None if status.rtt is None else round(status.rtt * 1000, 3),
            "agree": status.agree, **money("balance", status.balance)}


def _link(status: Status, left: bool) -> str:
    """One wording per state of the link, used by every line that shows it."""
    if left:
        return "left"
    return "online" if status.online else "not responding"


def toolbar_text(status: Status, left: bool = False) -> str:
    """The one-line status under the prompt."""
    parts: list[str] = []
    if status.peer_name is None:
        parts.append("looking for a peer…")
    elif status.peer_addr is None:
        parts.append(f"pairing with {shown(status.peer_name)}…")
    else:
        parts.append(f"{shown(status.peer_name)} ({status.peer_addr[0]})")
        if status.state == "restoring":
            parts.append("restoring…")
        else:
            parts.append(_link(status, left))
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


def complete_word(before_cursor: str) -> str | None:
    """What Tab inserts: the rest of the one command word that fits (and a space), or of the
    longest prefix the candidates share; None when there is nothing to add.

    Pure and synchronous, so a Tab that arrives in the same burst as the letters
    (a paste) completes them, and a second Tab has nothing left to add.
    """
    typed = before_cursor.lstrip()
    if not typed or any(ch.isspace() for ch in typed):
        return None
    word = typed.lower()
    matches = [w for w in WORDS if w.startswith(word)]
    if len(matches) == 1:
        return matches[0][len(word):] + " "
    rest = os.path.commonprefix(matches)[len(word):] if matches else ""
    return rest or None


# -- the shells -----------------------------------------------------------------


class Shell:
    """Runs commands against a node and shows its events; shared by both modes.

    ``as_json`` prints one JSON object per line instead of text; ``err``, when
    given, also receives every ``Error:`` line (line mode sends them to stderr).
    """

    def __init__(self, out: Out, as_json: bool = False, err: Out | None = None) -> None:
        self.out = out
        self.as_json = as_json
        self.err = err
        self.peer_name: str | None = None
        self.paired = asyncio.Event()
        self.refused = False          # some command was refused: line mode exits with 1
        self._left = False
        self._done = False            # Goodbye. was printed: nothing follows it
        self._doubted: dict[int, asyncio.Future[None]] = {}   # payments a waiting command is told of

    # -- output ---------------------------------------------------------------------

    def emit(self, kind: str, text: str | None, **fields: Any) -> None:
        """Show one result: its text lines, or one JSON object; errors also to ``err``."""
        if self._done:
            return
        if self.as_json:
            self.out(json.dumps({"type": kind, **fields, "text": text}, ensure_ascii=False))
        elif text is not None:
            for line in text.split("\n"):
                self.out(shown(line))
        if text is not None and text.startswith("Error:") and self.err is not None:
            self.err(shown(text))

    def fail(self, text: str) -> None:
        """A command was refused: one ``Error:`` line, and the script's status becomes 1."""
        self.refused = True
        self.emit("error", text, message=text.removeprefix("Error: "))

    def on_event(self, event: Event) -> None:
        """Given to the node: remember who the peer is, then show the notice."""
        if self._done:
            return
        match event:
            case Paired(peer_name=name) | PeerRestarted(name=name):
                self.peer_name, self._left = name, False
                self.paired.set()
            case PeerLeft():
                self._left = True
            case PeerSilent() if self._left:
                return                # it left: one wording for that state, not two
            case PeerBack():
                self._left = False
            case PaymentRejected():
                self.refused = True
            case PaymentInDoubt(seq=seq) if seq in self._doubted:
                if not self._doubted[seq].done():
                    self._doubted[seq].set_result(None)
        shown_as = record(event, self.peer_name)
        self.emit(shown_as.pop("type"), shown_as.pop("text"), **shown_as)

    # -- commands -------------------------------------------------------------------

    async def execute(self, node: NodeLike, command: Command) -> bool:
        """Run one command; False means the user asked to leave."""
        match command:
            case Exit():
                return False
            case Help():
                self.emit("help", help_text(),
                          commands=[{"usage": e.usage, "summary": e.summary} for e in HELP])
            case Balance():
                status = node.status()
                self.emit("balance", balance_text(status), **balance_record(status))
            case History():
                entries = node.history()
                self.emit("history", history_text(entries, node.wall_time),
                          **history_record(entries, node.wall_time))
            case PeerInfo():
                status = node.status()
                self.emit("peer", peer_text(status, self._left), **peer_record(status, self._left))
            case Accept():
                self.accept(node)
            case Pay(cents=cents, memo=memo):
                await self.pay(node, cents, memo)
            case Empty():
                pass
        return True

    def accept(self, node: NodeLike) -> None:
        """Consent to a hand-back; the core says when there is nothing to accept."""
        try:
            node.accept()
        except UserError as exc:
            self.fail(error_text(exc, self.peer_name, self._left))
            return
        self.emit("accepted", "Accepted: handing the relationship back")

    async def pay(self, node: NodeLike, cents: int, memo: str) -> None:
        """Start a payment; the shells differ in whether they wait for its outcome."""
        self.start_payment(node, cents, memo)

    def start_payment(self, node: NodeLike, cents: int, memo: str) -> tuple[int, asyncio.Future[Any]] | None:
        """Ask the node to pay; print the refusal if the core says no."""
        try:
            return node.send_payment(cents, memo)
        except UserError as exc:
            self.fail(error_text(exc, self.peer_name, self._left))
            return None

    def parse(self, line: str) -> Command | None:
        """Parse a line, printing the error for a bad one."""
        try:
            return parse(line)
        except CommandError as exc:
            self.fail(f"Error: {exc}")
            return None

    async def leave(self, node: NodeLike) -> None:
        """Let in-flight payments finish (briefly), say BYE, and say goodbye; then stay quiet."""
        await node.close(EXIT_GRACE)
        pending = node.status().pending
        if pending:
            self.refused = True       # their outcome is unknown: the script did not succeed
            listed = ", ".join(f"#{seq} {format_amount(amount)}" for seq, amount, _ in pending)
            who = shown(self.peer_name) if self.peer_name else "the peer"
            self.emit("unconfirmed",
                      f"Warning: leaving with {len(pending)} payment(s) not confirmed ({listed}); "
                      f"{who} may or may not have received them",
                      payments=[{"seq": s, **money("amount", a)} for s, a, _ in pending])
        self.emit("goodbye", GOODBYE)
        self._done = True


class LineShell(Shell):
    """Plain (or JSON) lines for scripts: commands wait for pairing, ``pay`` for its outcome.

    ``timeout`` bounds each wait, for pairing and for a payment's outcome: past
    it, one ``Error:`` line, and the script ends with status 1.
    """

    def __init__(self, out: Out, as_json: bool = False, err: Out | None = None,
                 timeout: float | None = None) -> None:
        super().__init__(out, as_json, err)
        self.timeout = timeout
        self._gave_up = False

    async def run(self, node: NodeLike, lines: AsyncIterator[str]) -> int:
        """Read commands until ``exit``, end of input or a timeout; return the exit status."""
        async for line in lines:
            command = self.parse(line)
            if command is None:
                continue
            if isinstance(command, (Balance, Pay, History, PeerInfo)) and not await self._wait_paired():
                break
            if not await self.execute(node, command) or self._gave_up:
                break
        await self.leave(node)
        return 1 if self.refused else 0

    async def _wait_paired(self) -> bool:
        """Wait for a peer, for ever or up to the timeout (then say so and give up)."""
        if self.paired.is_set():
            return True
        try:
            await asyncio.wait_for(self.paired.wait(), self.timeout)
        except asyncio.TimeoutError:
            self._give_up(f"Error: not paired within {self.timeout:g} s (--timeout); giving up")
            return False
        return True

    def _give_up(self, text: str) -> None:
        self._gave_up = True
        self.fail(text)

    async def pay(self, node: NodeLike, cents: int, memo: str) -> None:
        """Wait for the outcome (its notice, ``Sent`` or ``Error``, is the event's).

        Without a timeout the next command runs once the payment is reported in
        doubt, so a script does not hang on a peer that is gone (the outcome is
        still printed when known); with one, the wait is for the outcome, up to
        the timeout.
        """
        started = self.start_payment(node, cents, memo)
        if started is None:
            return
        seq, outcome = started
        if outcome.done():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        outcome.add_done_callback(lambda _: waiter.done() or waiter.set_result(None))
        if self.timeout is None:
            self._doubted[seq] = waiter
        try:
            await asyncio.wait_for(waiter, self.timeout)
        except asyncio.TimeoutError:
            who = shown(self.peer_name) if self.peer_name else "the peer"
            self._give_up(f"Error: payment #{seq} of {format_amount(cents)} not confirmed by {who} "
                          f"within {self.timeout:g} s (--timeout); giving up (it may still arrive)")
        finally:
            self._doubted.pop(seq, None)


async def stdin_lines(fd: int = 0) -> AsyncIterator[str]:
    """Lines from a file descriptor without blocking the loop and without a thread, then end at EOF.

    A pipe, socket or terminal is watched by the loop (``add_reader``); a
    regular file (or /dev/null) cannot be polled, but never blocks either, so
    it is read directly, a chunk at a time.  The descriptor's blocking mode is
    restored at the end.
    """
    loop = asyncio.get_running_loop()
    if stat.S_ISREG(os.fstat(fd).st_mode):
        async for line in _file_lines(fd):
            yield line
        return
    was_blocking = os.get_blocking(fd)
    reader = _Reader(fd, loop)
    try:
        os.set_blocking(fd, False)
        loop.add_reader(fd, reader.readable)
    except PermissionError:              # epoll refuses it (/dev/null): it never blocks
        os.set_blocking(fd, was_blocking)
        async for line in _file_lines(fd):
            yield line
        return
    try:
        while True:
            while reader.lines:
                yield reader.lines.popleft()
            if reader.eof:
                return
            reader.waiter = loop.create_future()
            await reader.waiter
    finally:
        loop.remove_reader(fd)
        os.set_blocking(fd, was_blocking)


async def _file_lines(fd: int) -> AsyncIterator[str]:
    """A file that cannot block: read it in chunks, letting the loop run between lines."""
    pending = b""
    while chunk := _read(fd):
        *complete, pending = (pending + chunk).split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", "replace")
            await asyncio.sleep(0)
    if pending:
        yield pending.decode("utf-8", "replace")


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        raise
    except OSError:
        return b""


class _Reader:
    """Called by the loop when the descriptor is readable: split what arrived into lines."""

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self.fd, self.loop = fd, loop
        self.lines: deque[str] = deque()
        self.pending = b""
        self.eof = False
        self.waiter: asyncio.Future[None] | None = None

    def readable(self) -> None:
        try:
            chunk = _read(self.fd)
        except BlockingIOError:
            return
        if chunk:
            *complete, self.pending = (self.pending + chunk).split(b"\n")
            self.lines.extend(raw.decode("utf-8", "replace") for raw in complete)
        else:
            self.eof = True
            self.loop.remove_reader(self.fd)
            if self.pending:
                self.lines.append(self.pending.decode("utf-8", "replace"))
        if self.waiter is not None and not self.waiter.done() and (self.lines or self.eof):
            self.waiter.set_result(None)


class InteractiveShell(Shell):
    """A prompt_toolkit prompt; notices appear above it, status below it.

    ``clock`` tells when two Ctrl-C presses are close enough to leave (tests pass their own).
    """

    def __init__(self, name: str, out: Out | None = None,
                 clock: Callable[[], float] = time.monotonic, **session_args: Any) -> None:
        super().__init__(out or self._print)
        self.name = name
        self.clock = clock
        self._session_args = session_args
        self._session: Any = None
        self._drawn: str | None = None
        self._interrupted_at: float | None = None

    @staticmethod
    def _print(text: str) -> None:
        """Print above the prompt (prompt_toolkit redraws the prompt below)."""
        from prompt_toolkit import print_formatted_text
        from prompt_toolkit.formatted_text import FormattedText

        style = "ansired" if text.startswith(("Error:", "Warning:")) else ""
        if text.startswith("You were paid"):
            style = "ansigreen bold"
        print_formatted_text(FormattedText([(style, text)]))

    def on_event(self, event: Event) -> None:
        """Show the notice, then redraw the toolbar: an event is when it changes."""
        super().on_event(event)
        self._redraw()

    def _redraw(self) -> None:
        app = getattr(self._session, "app", None)
        if app is not None and app.is_running:
            app.invalidate()

    def _toolbar(self, node: NodeLike) -> str:
        self._drawn = toolbar_text(node.status(), self._left)
        return self._drawn

    async def _watch_toolbar(self, node: NodeLike) -> None:
        """Redraw only when the toolbar's text changed (the RTT, say), never on a timer alone."""
        while True:
            await asyncio.sleep(TOOLBAR_CHECK)
            if toolbar_text(node.status(), self._left) != self._drawn:
                self._redraw()

    def session(self, node: NodeLike) -> Any:
        """The prompt session: Tab completion, in-memory history, the toolbar, Ctrl-C."""
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings

        keys = KeyBindings()

        @keys.add("tab")
        def _complete(event: Any) -> None:
            rest = complete_word(event.current_buffer.document.text_before_cursor)
            if rest:
                event.current_buffer.insert_text(rest)

        @keys.add("c-c")
        def _interrupt(event: Any) -> None:
            if event.current_buffer.text:
                event.current_buffer.reset()          # a typed line: just clear it
            else:
                event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

        return PromptSession(
            f"{self.name}> ",
            history=InMemoryHistory(),
            bottom_toolbar=lambda: self._toolbar(node),
            key_bindings=keys,
            **self._session_args,
        )

    def interrupted(self) -> bool:
        """Ctrl-C on an empty line: the first says how to leave, a second within 2 s leaves."""
        now = self.clock()
        if self._interrupted_at is not None and now - self._interrupted_at <= INTERRUPT_WINDOW:
            return True
        self._interrupted_at = now
        self.emit("hint", "(To leave, type exit or press Ctrl-D, or Ctrl-C again within 2 s)")
        return False

    async def run(self, node: NodeLike) -> int:
        """Prompt until ``exit``/``quit``/Ctrl-D or a second Ctrl-C; then leave politely."""
        from prompt_toolkit.patch_stdout import patch_stdout

        self._session = self.session(node)
        watcher = asyncio.ensure_future(self._watch_toolbar(node))
        try:
            with patch_stdout(raw=True):
                await self._prompt_loop(node)
                pending = len(node.status().pending)
                if pending:
                    self.emit("waiting", f"Waiting for {_count(pending, 'payment')} to be confirmed…")
                await self.leave(node)
        finally:
            watcher.cancel()
        return 0

    async def _prompt_loop(self, node: NodeLike) -> None:
        while True:
            try:
                line = await self._session.prompt_async()
            except KeyboardInterrupt:
                if self.interrupted():
                    return
                continue
            except EOFError:
                return
            self._interrupted_at = None
            command = self.parse(line)
            if command is not None and not await self.execute(node, command):
                return
