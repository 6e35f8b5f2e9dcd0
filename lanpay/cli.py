"""``lanpay``: check the arguments, wire the node to a shell, turn outcomes into exit codes.

Everything that can be refused before a socket opens is refused here, with one
clear line on stderr and a non-zero status, so a script (or a person) sees why
nothing started.  Exit statuses: 0 after ``exit``/EOF, 1 when a command of a
script was refused (or timed out) or the machine refuses something (a port),
2 for bad arguments, 130 after Ctrl-C, 143 after SIGTERM, 129 after SIGHUP,
141 in line mode once the reader of stdout has gone.

Only argparse is imported at the top: ``--version`` and ``--help`` must not pay
for asyncio, the core, cryptography or prompt_toolkit.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from lanpay import __version__

DEFAULT_PORT = 47474

EPILOG = """\
examples:
  lanpay --name alice                     pair with whoever else is looking on the LAN
  lanpay --name bob --peer alice          pair only with alice (she must not name someone else)
  lanpay --name alice --code 'blue piano' both sides give the same words: no one else can pair
  lanpay --name bob --connect 10.0.1.2    also announce to a host broadcast cannot reach
  printf 'pay 10 lunch\\nbalance\\n' | lanpay --name alice --timeout 30

line mode (when stdin is not a terminal, or with --json or --timeout):
  lanpay reads one command per line and writes plain lines (--json: one JSON
  object per line); each command runs once paired; pays in a row are sent
  without waiting for each other, their outcomes printed in order, and the
  next other command runs once they are known; errors are one line starting
  "Error:", on stdout and on stderr.  Commands: balance, pay AMOUNT [MEMO],
  history, peer, accept, help, exit.

exit status: 0 when every command succeeded; 1 when a command was refused, a
wait passed --timeout, a payment was still unconfirmed at exit, or the machine
refused a port; 2 for bad arguments; 130 after Ctrl-C; 143 after SIGTERM; 129
after SIGHUP; 141 when the reader of stdout went away, after which no further
command runs (each of these still tells the peer goodbye).
"""


class UsageError(Exception):
    """An argument that cannot work; reported as one line, exit status 2."""


class Options:
    """The checked arguments (a plain class: importing dataclasses would slow ``--version``)."""

    __slots__ = ("name", "peer", "port", "interfaces", "connect", "code", "limit", "verbose",
                 "log_file", "as_json", "timeout")

    name: str
    peer: str | None
    port: int
    interfaces: tuple[str, ...]
    connect: tuple[tuple[str, int], ...]
    code: str | None
    limit: int | None
    verbose: int
    log_file: str | None
    as_json: bool
    timeout: float | None

    def __init__(self, **values: object) -> None:
        values = {"as_json": False, "timeout": None, **values}
        for key in self.__slots__:
            setattr(self, key, values.pop(key))
        if values:
            raise TypeError(f"unknown options {sorted(values)}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with the contract's options and a few examples."""
    parser = argparse.ArgumentParser(
        prog="lanpay",
        description="A payment ledger between two people on one LAN: they find each "
        "other by broadcast, pair, and keep a balance in memory.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--name", required=True, help="your name as the peer will see it (1 to 32 bytes of UTF-8, no spaces)")
    add("--peer", metavar="NAME", help="pair only with the peer of this name")
    add("--port", default=str(DEFAULT_PORT), metavar="DISCOVERY_PORT",
        help=f"UDP port for discovery broadcasts (default {DEFAULT_PORT})")
    add("--interface", action="append", default=[], metavar="IFACE",
        help="announce only on this interface (repeatable; default: every IPv4 interface)")
    add("--connect", action="append", default=[], metavar="HOST[:PORT]",
        help="also announce to this IPv4 host, for a peer broadcast cannot reach (repeatable)")
    add("--code", metavar="WORDS",
        help="a secret both sides give: pairing then requires it and proves who the peer is")
    add("--limit", metavar="AMOUNT",
        help="refuse payments that would take the balance past -AMOUNT or +AMOUNT")
    add("--json", action="store_true", dest="as_json",
        help="line mode, one JSON object per line on stdout for every event and command result")
    add("--timeout", metavar="SECONDS",
        help="line mode: give up (status 1) when pairing, or a payment's outcome, takes longer "
        "than SECONDS")
    add("-v", "--verbose", action="count", default=0,
        help="log to stderr: -v every event, -vv every datagram sent and received as well")
    add("--log", metavar="FILE", dest="log_file", help="write the log to FILE instead of stderr")
    add("--version", action="version", version=f"lanpay {__version__}")
    return parser


def check_name(name: str, what: str = "name") -> str:
    """A name is shown on the other screen: one word, 1 to 32 bytes, nothing that acts on a terminal."""
    from lanpay.core.text import TextError
    from lanpay.core.text import check_name as check

    try:
        return check(name, what)
    except TextError as exc:
        raise UsageError(str(exc)) from None


def parse_connect(text: str, default_port: int) -> tuple[str, int]:
    """Resolve ``HOST[:PORT]`` once, now, to an IPv4 address (discovery is IPv4 broadcast)."""
    import socket

    if text.startswith("[") or text.count(":") > 1:
        raise UsageError(f"--connect {text}: lanpay speaks IPv4 only; give an IPv4 address "
                         "or a host name with one")
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, str(default_port)
    port = _port(port_text, f"--connect {text}")
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"cannot resolve {host!r} to an IPv4 address for --connect: {exc}") from None
    return str(infos[0][4][0]), port


def _digits(text: str) -> bool:
    """Plain ASCII digits only: int() and float() also take '1_0', ' 5', '+5' and other scripts' digits."""
    return text.isascii() and text.isdigit()


def _port(text: str, what: str) -> int:
    if not _digits(text) or not 1 <= int(text) <= 65535:
        raise UsageError(f"{what}: port must be a number from 1 to 65535")
    return int(text)


def _timeout(text: str | None) -> float | None:
    """Seconds, a positive number written in plain digits (fractions allowed: 2.5, .5)."""
    if text is None:
        return None
    whole, _, fraction = text.partition(".")
    plain = (whole or fraction) and all(part == "" or _digits(part) for part in (whole, fraction))
    seconds = float(text) if plain else -1.0
    if not 0 < seconds < 10**9:
        raise UsageError(f"--timeout: {text!r} is not a number of seconds above 0")
    return seconds


def check_options(ns: argparse.Namespace) -> Options:
    """Turn parsed arguments into Options, or raise UsageError."""
    from lanpay.core.amounts import parse_amount
    from lanpay.core.errors import AmountError

    port = _port(ns.port, "--port")
    limit = None
    if ns.limit is not None:
        try:
            limit = parse_amount(ns.limit)
        except AmountError as exc:
            raise UsageError(f"--limit: {exc}") from None
    if ns.code is not None and not ns.code.strip():
        raise UsageError("--code must not be empty")
    name = check_name(ns.name)
    peer = check_name(ns.peer, "--peer") if ns.peer is not None else None
    if peer == name:
        raise UsageError(f"--peer {peer} is your own name; give the name the other person runs "
                         "lanpay with")
    return Options(
        name=name,
        peer=peer,
        port=port,
        interfaces=tuple(ns.interface),
        connect=tuple(parse_connect(c, port) for c in ns.connect),
        code=ns.code,
        limit=limit,
        verbose=ns.verbose,
        log_file=ns.log_file,
        as_json=ns.as_json,
        timeout=_timeout(ns.timeout),
    )


def setup_logging(verbose: int, log_file: str | None) -> None:
    """Quiet by default; -v for info, -vv for debug; to a file if asked."""
    import logging

    class CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
        """Writes to whatever sys.stderr is now, so a patched stderr keeps the prompt intact."""

        def emit(self, record: logging.LogRecord) -> None:
            self.setStream(sys.stderr)
            super().emit(record)

    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else CurrentStderr(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.set_name("lanpay")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "lanpay"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run lanpay; return the process exit status (Ctrl-C at any point is 130, quietly)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    from lanpay.discovery import InterfaceError, broadcast_targets, local_adapters

    try:
        opts = check_options(ns)
        targets = broadcast_targets(local_adapters(), opts.interfaces)
    except (UsageError, InterfaceError) as exc:
        print(f"lanpay: {exc}", file=sys.stderr)
        return 2
    try:
        setup_logging(opts.verbose, opts.log_file)
    except OSError as exc:
        print(f"lanpay: cannot open log file: {exc}", file=sys.stderr)
        return 2
    return _run(opts, targets)


def _run(opts: Options, targets: Sequence[str]) -> int:
    """The event loop around :func:`run`; a signal becomes its conventional status.

    The loop is uvloop's when uvloop is installed (``lanpay[fast]``), else asyncio's:
    ``node.new_event_loop`` decides, looked up here so there is one place that does.
    """
    import asyncio

    from lanpay import node

    signals: list[int] = []
    try:
        with asyncio.Runner(loop_factory=node.new_event_loop) as runner:
            status = runner.run(run(opts, targets, signals))
        # A signal that came as the run ended (input ended in the same instant) is handled only
        # while the runner winds the loop down, after the run's task finished: it still ends
        # lanpay as that signal, as it would a moment later, once the loop is closed.
        return 128 + signals[0] if signals else status
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:  # SIGTERM or SIGHUP: the peer was told goodbye
        return 128 + (signals[0] if signals else 15)
    except StartupError as exc:
        print(f"lanpay: {exc}", file=sys.stderr)
        return exc.status


class StartupError(Exception):
    """Something lanpay needs was refused at start; carries the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def line_mode(opts: Options) -> bool:
    """Line mode unless a person is at a terminal and asked for neither JSON nor a timeout."""
    return opts.as_json or opts.timeout is not None or not (sys.stdin.isatty() and sys.stdout.isatty())


async def run(opts: Options, targets: Sequence[str], signals: list[int] | None = None) -> int:
    """Start the node, run the shell that fits stdin/stdout, leave cleanly."""
    import asyncio
    import logging

    from lanpay.core.errors import UserError
    from lanpay.core.peer import Config
    from lanpay.node import Node
    from lanpay.ui import InteractiveShell, LineShell, looking_text, stdin_lines

    shell: InteractiveShell | LineShell
    if line_mode(opts):
        err = None if same_file(sys.stdout, sys.stderr) else _print_error
        shell = LineShell(_print_line, as_json=opts.as_json, err=err, timeout=opts.timeout)
    else:
        shell = InteractiveShell(opts.name)
    config = Config(name=opts.name, want_peer=opts.peer, code=opts.code,
                    limit=opts.limit, connect=opts.connect)
    node = Node(config, targets, opts.port, on_event=shell.on_event)
    try:
        await node.start()
    except OSError as exc:
        raise StartupError(f"cannot open UDP port {opts.port}: {exc.strerror or exc}") from None
    except (UserError, ValueError) as exc:  # the core refused the configuration
        raise StartupError(str(exc), status=2) from None
    log = logging.getLogger(__name__)
    log.info("session socket %s; announcing to %s", node.session_address, ", ".join(targets))
    received = signals if signals is not None else []
    _leave_on_signals(received, shell.stop if isinstance(shell, LineShell) else None)
    shell.emit("looking", looking_text(opts.peer), peer=opts.peer)
    try:
        if isinstance(shell, InteractiveShell):
            return await shell.run(node)
        lines = stdin_lines()
        try:
            status = await shell.run(node, lines)
        finally:
            await lines.aclose()
        if received:                     # a signal's cancellation that asyncio lost: it still ends
            raise asyncio.CancelledError  # the run as the signal does (128 + its number)
        return status
    finally:
        _when_output_gone.clear()        # this run's task is over: nothing left to cancel
        await node.close(0)


#: What to do once the reader of stdout has gone: set by :func:`run` to leave as on a signal.
_when_output_gone: list[Callable[[], None]] = []


def _print_line(text: str) -> None:
    """Line mode: one plain line, flushed at once so a script sees it now.

    If the reader has gone away (``lanpay ... | head -1``), nobody can learn the
    outcome of another command: lanpay says so on stderr and leaves as on
    SIGPIPE (the peer is told goodbye; no later command runs; status 141).
    Later lines are discarded rather than crashing the ledger mid-payment.
    """
    try:
        out = sys.stdout
        out.write(text + "\n")         # what print(text, flush=True) writes, in one call
        out.flush()
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        if _when_output_gone:
            _print_error("lanpay: standard output was closed; leaving, and no later command is run")
            _when_output_gone.pop()()


def same_file(a: object, b: object) -> bool:
    """Whether two streams write to one file (a terminal, or ``2>&1``): an error copied to
    stderr would then be read twice, and would break a stream of JSON lines."""
    try:
        one, two = os.fstat(a.fileno()), os.fstat(b.fileno())      # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
    return (one.st_dev, one.st_ino) == (two.st_dev, two.st_ino)


def _print_error(text: str) -> None:
    """Line mode: an ``Error:`` line also goes to stderr, where scripts look for errors."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def _leave_on_signals(received: list[int], stop: Callable[[], None] | None = None) -> None:
    """SIGTERM and SIGHUP leave like Ctrl-C, and so does a closed stdout (as SIGPIPE, through
    :func:`_print_line`): the peer still gets its BYE; the signal is kept so the exit status
    can name it (128 + its number)."""
    import asyncio
    import signal

    task = asyncio.current_task()
    if task is None:
        return

    def leave(signum: int) -> None:
        received.append(signum)
        if stop is not None:
            stop()                       # no command runs after this, cancellation or not
        task.cancel()

    _when_output_gone[:] = [lambda: leave(int(signal.SIGPIPE))]
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            loop.add_signal_handler(signum, leave, int(signum))
        except (NotImplementedError, RuntimeError, AttributeError):
            pass
