"""The two ways of typing commands: the interactive shell and line mode.

Both run commands against a node and show its events through :mod:`lanpay.render`
(sentences, JSON records, and the one sanitiser for network text).  The
interactive shell (prompt_toolkit, notices above the prompt, a status toolbar)
serves a person at a terminal; line mode (plain or JSON lines, commands wait
for pairing, queued ``pay`` lines sent without waiting and their outcomes
printed in order, errors also on stderr, a bounded wait with ``--timeout``)
serves a script feeding stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from lanpay.commands import (
    HELP,
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
from lanpay.core.amounts import format_amount
from lanpay.core.errors import NotPaired, UserError
from lanpay.core.session import WINDOW
from lanpay.core.events import (
    Event,
    Fenced,
    HandbackAwaited,
    NameConflict,
    Paired,
    PairingFailed,
    PairingRefused,
    PeerTaken,
    CodeDiffers,
    PaymentInDoubt,
    PaymentRejected,
    PaymentsVoided,
    PeerBack,
    PeerLeft,
    PeerRestarted,
    PeerSilent,
    RestoreFailed,
)
from lanpay.render import (
    GOODBYE,
    NOT_KNOWN_YET,
    WELCOME,
    balance_record,
    balance_text,
    candidates,
    complete_word,
    error_text,
    event_type,
    help_text,
    history_record,
    history_text,
    looking_text,
    money,
    peer_record,
    peer_text,
    record,
    render,
    shown,
    toolbar_text,
)

if TYPE_CHECKING:
    from lanpay.core.peer import HistoryEntry, Status

__all__ = ["GOODBYE", "WELCOME", "InteractiveShell", "LineShell", "Shell", "looking_text",
           "render", "shown", "stdin_lines"]

#: How long ``exit`` waits for in-flight payments before saying BYE anyway.
EXIT_GRACE = 3.0
#: Line mode: a pay refused while the relationship is handed back waits this long for it (no --timeout).
HANDBACK_WAIT = 60.0
#: A second Ctrl-C on an empty line within this many seconds leaves the shell.
INTERRUPT_WINDOW = 2.0
#: How often the shell looks whether the toolbar's text changed (it redraws only then).
TOOLBAR_CHECK = 1.0

Out = Callable[[str], None]

#: ``json.dumps(obj, ensure_ascii=False)``, with its encoder made once instead of per line.
_json_line = json.JSONEncoder(ensure_ascii=False).encode


class NodeLike(Protocol):
    """What a shell needs from the running node (a fake one in tests)."""

    def status(self) -> Status: ...
    def history(self) -> list[HistoryEntry]: ...
    def wall_time(self, at: float) -> float: ...
    def send_payment(self, cents: int, memo: str = "") -> tuple[int, asyncio.Future[Any]]: ...
    def accept(self, code: str | None = None) -> None: ...
    async def close(self, grace: float = EXIT_GRACE) -> None: ...
    def stop_waiting(self) -> None: ...


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
        self._fenced = False          # a newer process of ours holds the relationship now
        self.why_not: str | None = None   # the last thing the core said stands in the way of pairing
        self._done = False            # Goodbye. was printed: nothing follows it
        self._doubted: dict[int, asyncio.Future[None]] = {}   # payments a waiting command is told of
        self.handed_back = asyncio.Event()   # set when a hand-back we give ends (done, failed, or the peer went)

    # -- output ---------------------------------------------------------------------

    def emit(self, kind: str, text: str | None, /, **fields: Any) -> None:
        """Show one result: its text lines, or one JSON object; errors also to ``err``.

        ``kind`` and ``text`` are positional only, so a record may carry fields of
        those names (``WarningsRepeated`` has a ``kind``).
        """
        if self._done:
            return
        if self.as_json:
            self.out(_json_line({"type": kind, **fields, "text": text}))
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
                self.peer_name, self._left, self.why_not = name, False, None
                self.paired.set()
                self.handed_back.set()
            case PairingRefused() | PairingFailed() | NameConflict() | HandbackAwaited() | RestoreFailed() \
                    | PeerTaken() | CodeDiffers():
                if isinstance(event, RestoreFailed):
                    self.handed_back.set()
                if isinstance(event, HandbackAwaited):
                    self.peer_name = event.name          # who holds our relationship, while it comes back
                if not self.paired.is_set():
                    said = render(event, self.peer_name)
                    self.why_not = said.removeprefix("Warning: ") if said else said   # quoted after "last:"
            case Fenced():
                self._fenced = True
                self.handed_back.set()
            case PeerLeft():
                self._left = True
                self.handed_back.set()
            case PeerSilent() if self._left:
                return                # it left: one wording for that state, not two
            case PeerBack():
                self._left = False
            case PaymentRejected() | PaymentsVoided(restart=False):
                self.refused = True          # not paid: the script did not do what it asked
            case PaymentInDoubt(seq=seq) if seq in self._doubted:
                if not self._doubted[seq].done():
                    self._doubted[seq].set_result(None)
        if self.as_json:
            shown_as = record(event, self.peer_name)
            self.emit(shown_as.pop("type"), shown_as.pop("text"), **shown_as)
        else:                 # plain lines carry only the text: no record to build
            self.emit(event_type(event), render(event, self.peer_name))

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
            case History() if node.status().state == "restoring":
                self.emit("history", f"History {NOT_KNOWN_YET}", known=False)
            case History():
                entries = node.history()
                self.emit("history", history_text(entries, node.wall_time),
                          **history_record(entries, node.wall_time))
            case PeerInfo():
                status = node.status()
                self.emit("peer", peer_text(status, self._left, self.why_not),
                          **peer_record(status, self._left, self.why_not))
            case Accept(code=code):
                self.accept(node, code)
            case Pay(cents=cents, memo=memo):
                await self.pay(node, cents, memo)
            case Empty():
                pass
        return True

    def accept(self, node: NodeLike, code: str | None = None) -> None:
        """Consent to a hand-back; the core says when there is nothing to accept."""
        try:
            node.accept(code)
        except UserError as exc:
            self.fail(error_text(exc, self.peer_name, self._left))
            return
        self.emit("accepted", "Accepted: handing the relationship back")

    async def pay(self, node: NodeLike, cents: int, memo: str) -> None:
        """Start a payment; the shells differ in whether (and when) they wait for its outcome."""
        self.start_payment(node, cents, memo)

    def start_payment(self, node: NodeLike, cents: int, memo: str) -> tuple[int, asyncio.Future[Any]] | None:
        """Ask the node to pay; print the refusal if the core says no."""
        try:
            return node.send_payment(cents, memo)
        except UserError as exc:
            self._refused(exc)
            return None

    def _refused(self, exc: UserError) -> None:
        if self._fenced:
            self.fail("Error: a newer lanpay of yours holds the relationship now; this one can no "
                      "longer pay — nothing was sent")
        else:
            self.fail(error_text(exc, self.peer_name, self._left))

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


class _Interrupted:
    """Whether Ctrl-C came; true once it did."""

    def __init__(self) -> None:
        self.seen = False

    def __bool__(self) -> bool:
        return self.seen


@contextlib.contextmanager
def _interrupt_calls(action: Callable[..., None], *args: Any) -> Iterator[_Interrupted]:
    """While the block runs, Ctrl-C (SIGINT) calls ``action(*args)`` instead of interrupting.

    The wait on the way out has no prompt to take the key, so without this a
    Ctrl-C there would end lanpay before it says which payments it left unconfirmed.
    """
    import signal

    seen = _Interrupted()

    def interrupt() -> None:
        seen.seen = True
        action(*args)

    loop = asyncio.get_running_loop()
    before = signal.getsignal(signal.SIGINT)
    try:
        loop.add_signal_handler(signal.SIGINT, interrupt)
    except (NotImplementedError, RuntimeError, ValueError):   # no signals here: Ctrl-C interrupts
        yield seen
        return
    try:
        yield seen
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if before is not None:
            signal.signal(signal.SIGINT, before)


class _Waiting:
    """A payment line mode started and whose wait has not completed yet."""

    __slots__ = ("seq", "cents", "waiter", "deadline")

    def __init__(self, seq: int, cents: int, waiter: asyncio.Future[None], deadline: float | None) -> None:
        self.seq, self.cents, self.waiter, self.deadline = seq, cents, waiter, deadline


class LineShell(Shell):
    """Plain (or JSON) lines for scripts: commands wait for the pays before them, and all but
    ``peer``, ``help`` and ``accept`` for pairing.

    A ``pay`` starts its payment and the next line is read at once, so pays
    queued one after another are all in flight together (up to the session's
    window).  Every other line (and the end of input) first waits for the
    outcome of each payment still outstanding, oldest first, exactly as if
    each ``pay`` had waited for its own: the outcomes are printed in input
    order, and the command after a run of pays sees them all.

    ``timeout`` bounds each wait, for pairing and for a payment's outcome
    (counted from when that payment started): past it, one ``Error:`` line,
    and the script ends with status 1.
    """

    def __init__(self, out: Out, as_json: bool = False, err: Out | None = None,
                 timeout: float | None = None) -> None:
        super().__init__(out, as_json, err)
        self.timeout = timeout
        self._gave_up = False
        self._waiting: deque[_Waiting] = deque()      # started payments, oldest first

    async def run(self, node: NodeLike, lines: AsyncIterator[str]) -> int:
        """Read commands until ``exit``, end of input or a timeout; return the exit status."""
        source = aiter(lines)
        while not self._gave_up:
            line = await self._next_line(source)
            if line is None:
                break
            try:
                command = parse(line)
            except CommandError as exc:
                if await self._settle_all():
                    self.fail(f"Error: {exc}")
                continue
            if isinstance(command, Empty):
                continue
            if isinstance(command, Pay):
                if not await self._wait_paired() or self._gave_up:
                    break
                await self.pay(node, command.cents, command.memo)
                continue
            if not await self._settle_all():
                break
            if (isinstance(command, (Balance, History)) and not await self._wait_paired()) or self._gave_up:
                break
            if not await self.execute(node, command) or self._gave_up:
                break
        if not self._gave_up:
            await self._settle_all()
        self._forget_waits()
        await self.leave(node)
        return 1 if self.refused else 0

    async def _next_line(self, source: AsyncIterator[str]) -> str | None:
        """The next line, or None at the end of input (or once a payment's wait gave up).

        With a timeout and payments outstanding, the wait for the oldest runs while
        the next line is awaited, so a script that pays and then waits for the
        outcome still sees the shell give up on time.
        """
        if self.timeout is None or not self._drop_finished():
            return await anext(source, None)
        read = asyncio.ensure_future(_read_one(source))
        try:
            loop = asyncio.get_running_loop()
            while self._waiting:
                oldest = self._waiting[0]
                assert oldest.deadline is not None
                if not oldest.waiter.done():
                    await asyncio.wait((read, oldest.waiter), timeout=max(0.0, oldest.deadline - loop.time()),
                                       return_when=asyncio.FIRST_COMPLETED)
                if read.done():
                    return read.result()
                if not oldest.waiter.done():
                    self._timed_out(oldest)
                    return None
                self._finish_wait(self._waiting.popleft())
            return await read
        finally:
            if not read.done():
                read.cancel()
                await asyncio.wait((read,))   # the source is free again once this returns

    def stop(self) -> None:
        """Run no further command: the reader of stdout has gone, or a signal came.  The
        cancellation that comes with it can be lost in ``asyncio.wait_for`` when what it waits
        for completes at the same moment (Python 3.11), so the loop also checks this."""
        self._gave_up = True

    async def _start_after_handback(self, node: NodeLike, cents: int, memo: str) -> tuple[int, Any] | None:
        """Start a payment; one refused only because the relationship is being handed back to
        our restarted peer (a moment, or a while under loss) waits for the hand-back to end, as a
        pay before pairing waits for pairing, within the timeout (else HANDBACK_WAIT): a script
        does not fail for a hand-back it could not see coming."""
        try:
            return node.send_payment(cents, memo)
        except UserError as exc:
            if not isinstance(exc, NotPaired) or exc.reason != "restoring" or self._fenced:
                self._refused(exc)
                return None
        self.handed_back.clear()
        try:
            await asyncio.wait_for(self.handed_back.wait(), self.timeout or HANDBACK_WAIT)
        except asyncio.TimeoutError:
            pass
        return self.start_payment(node, cents, memo)      # the refusal, if it still stands

    async def _wait_paired(self) -> bool:
        """Wait for a peer, for ever or up to the timeout (then say so and give up)."""
        if self.paired.is_set():
            return True
        try:
            await asyncio.wait_for(self.paired.wait(), self.timeout)
        except asyncio.TimeoutError:
            why = f" (last: {self.why_not})" if self.why_not else ""
            self._give_up(f"Error: not paired within {self.timeout:g} s (--timeout); giving up{why}")
            return False
        return True

    def _give_up(self, text: str) -> None:
        self._gave_up = True
        self.fail(text)

    async def pay(self, node: NodeLike, cents: int, memo: str) -> None:
        """Start a payment and leave its wait outstanding (its notice, ``Sent`` or ``Error``, is the event's).

        With the window's worth of payments outstanding, the oldest's wait is
        completed first.  A payment the core refuses while others are
        outstanding is tried again once their waits completed, so the refusal
        (or the success) is the one a script running one payment at a time
        would see, printed after their outcomes.
        """
        waiting = self._drop_finished()
        if waiting and waiting[0].deadline is not None \
                and waiting[0].deadline <= asyncio.get_running_loop().time():
            self._timed_out(waiting[0])                   # the oldest's time is up: send nothing more
            return
        while len(waiting) >= WINDOW:
            if not await self._settle_oldest():
                return
        if waiting:
            try:
                started = node.send_payment(cents, memo)
            except UserError:
                if not await self._settle_all():
                    return
                started = await self._start_after_handback(node, cents, memo)
        else:
            started = await self._start_after_handback(node, cents, memo)
        if started is None:
            return
        seq, outcome = started
        if outcome.done():
            return
        loop = outcome.get_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def settled(_: object) -> None:
            if not waiter.done():
                waiter.set_result(None)

        outcome.add_done_callback(settled)
        if self.timeout is None:
            self._doubted[seq] = waiter       # in doubt, the wait is over (the outcome still prints)
            deadline = None
        else:
            deadline = loop.time() + self.timeout
        waiting.append(_Waiting(seq, cents, waiter, deadline))

    def _drop_finished(self) -> deque[_Waiting]:
        """Forget the oldest payments whose wait is already over (nothing to wait for); the rest."""
        waiting = self._waiting
        while waiting and waiting[0].waiter.done():
            self._finish_wait(waiting.popleft())
        return waiting

    async def _settle_all(self) -> bool:
        """Complete every outstanding payment's wait, oldest first; False if one gave up."""
        while self._waiting:
            if not await self._settle_oldest():
                return False
        return True

    async def _settle_oldest(self) -> bool:
        """Wait for the oldest outstanding payment: its outcome, its doubt, or its timeout.

        Without a timeout the wait ends once the payment is reported in doubt, so a
        script does not hang on a peer that is gone (the outcome is still printed
        when known); with one, the wait is for the outcome, up to the timeout.
        """
        oldest = self._waiting[0]
        if not oldest.waiter.done():
            if oldest.deadline is None:
                await oldest.waiter
            else:
                remaining = oldest.deadline - asyncio.get_running_loop().time()
                await asyncio.wait((oldest.waiter,), timeout=max(0.0, remaining))
                if not oldest.waiter.done():
                    self._timed_out(oldest)
                    return False
        self._finish_wait(self._waiting.popleft())
        return True

    def _timed_out(self, payment: _Waiting) -> None:
        who = shown(self.peer_name) if self.peer_name else "the peer"
        self._give_up(f"Error: payment #{payment.seq} of {format_amount(payment.cents)} not confirmed by {who} "
                      f"within {self.timeout:g} s (--timeout); giving up (it may still arrive)")
        self._forget_waits()

    def _finish_wait(self, payment: _Waiting) -> None:
        self._doubted.pop(payment.seq, None)

    def _forget_waits(self) -> None:
        """No wait will complete any more (giving up, leaving): the payments are the core's to finish."""
        while self._waiting:
            payment = self._waiting.popleft()
            payment.waiter.cancel()
            self._finish_wait(payment)


async def _read_one(source: AsyncIterator[str]) -> str | None:
    return await anext(source, None)


async def stdin_lines(fd: int = 0) -> AsyncGenerator[str, None]:
    """Lines from a file descriptor without blocking the loop and without a thread, then end at EOF.

    Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``), so the
    text rules refuse the line that holds them ("memo is not valid UTF-8") instead of a
    payment going out with its memo silently altered.

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
            yield raw.decode("utf-8", "surrogateescape")
            await asyncio.sleep(0)
    if pending:
        yield pending.decode("utf-8", "surrogateescape")


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
            self.lines.extend(raw.decode("utf-8", "surrogateescape") for raw in complete)
        else:
            self.eof = True
            self.loop.remove_reader(self.fd)
            if self.pending:
                self.lines.append(self.pending.decode("utf-8", "surrogateescape"))
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
        self._drawn = toolbar_text(node.status(), self._left, self._width())
        return self._drawn

    def _width(self) -> int | None:
        """The terminal's width while the prompt runs (the toolbar is fitted to it), else None."""
        app = getattr(self._session, "app", None)
        if app is None or not app.is_running:
            return None
        try:
            return int(app.output.get_size().columns)
        except Exception:  # an output that cannot tell: the line is drawn whole
            return None

    async def _watch_toolbar(self, node: NodeLike) -> None:
        """Redraw only when the toolbar's text changed (the RTT, say), never on a timer alone."""
        while True:
            await asyncio.sleep(TOOLBAR_CHECK)
            if toolbar_text(node.status(), self._left, self._width()) != self._drawn:
                self._redraw()

    def session(self, node: NodeLike) -> Any:
        """The prompt session: Tab completion, in-memory history, the toolbar, Ctrl-C."""
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.keys import Keys

        keys = KeyBindings()

        @keys.add("tab")
        def _complete(event: Any) -> None:
            before = event.current_buffer.document.text_before_cursor
            rest = complete_word(before)
            if rest:
                event.current_buffer.insert_text(rest)
            elif len(could := candidates(before)) > 1:
                self.emit("hint", "  ".join(could))      # several fit: say which, above the prompt

        @keys.add(Keys.Vt100MouseEvent)
        def _not_a_mouse(event: Any) -> None:
            """lanpay asks the terminal for no mouse reports, so what parses as one was typed or
            pasted (``ESC [ 5 m``): ignore it, as prompt_toolkit's own handler would fail on it."""

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
            enable_suspend=True,          # Ctrl-Z stops the process as in any terminal program; fg resumes
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
                    self.emit("waiting", f"Waiting for {pending} payment{'s' * (pending != 1)} to be "
                              "confirmed… (Ctrl-C to leave now)")
                with _interrupt_calls(self._stop_waiting, node) as interrupted:
                    await self.leave(node)
        finally:
            watcher.cancel()
        return 130 if interrupted else 0

    def _stop_waiting(self, node: NodeLike) -> None:
        """Ctrl-C during the wait on the way out: the terminal echoed ``^C``; end its line, stop waiting."""
        self.out("")
        node.stop_waiting()

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
            for command in self.parse_input(line):
                if not await self.execute(node, command):
                    return

    def parse_input(self, text: str) -> list[Command]:
        """The commands of one input; a paste of several lines is several commands, run in order.

        They are all parsed before any runs: when one line is bad, its error is
        printed and none of them runs.  A paste's last newline makes no line.
        """
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        while len(lines) > 1 and not lines[-1].strip():
            lines.pop()
        if len(lines) == 1:
            command = self.parse(lines[0])
            return [] if command is None else [command]
        commands: list[Command] = []
        for number, line in enumerate(lines, 1):
            try:
                commands.append(parse(line))
            except CommandError as exc:
                self.fail(f"Error: line {number}: {exc}; none of the {len(lines)} lines was run")
                return []
        return commands
