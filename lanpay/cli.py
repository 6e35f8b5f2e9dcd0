"""``lanpay``: check the arguments, wire the node to a shell, turn outcomes into exit codes.

Everything that can be refused before a socket opens is refused here, with one
clear line on stderr and a non-zero status, so a script (or a person) sees why
nothing started.  Exit statuses: 0 after ``exit``/EOF, 1 when the machine
refuses (a port), 2 for bad arguments, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from lanpay import __version__
from lanpay.core.amounts import parse_amount
from lanpay.core.errors import AmountError, UserError
from lanpay.discovery import InterfaceError, broadcast_targets, local_adapters

DEFAULT_PORT = 47474
MAX_NAME = 32

EPILOG = """\
examples:
  lanpay --name alice                     pair with whoever else is looking on the LAN
  lanpay --name bob --peer alice          pair only with alice (she must not name someone else)
  lanpay --name alice --code 'blue piano' both sides give the same words: no one else can pair
  lanpay --name bob --connect 10.0.1.2    also announce to a host broadcast cannot reach
  printf 'pay 10 lunch\\nbalance\\n' | lanpay --name alice --interface lo

When stdin is not a terminal, lanpay reads one command per line, writes plain
lines, and runs each command once paired.  Commands: balance, pay AMOUNT [MEMO],
history, peer, help, exit.
"""


class UsageError(Exception):
    """An argument that cannot work; reported as one line, exit status 2."""


@dataclass(frozen=True)
class Options:
    """The checked arguments."""

    name: str
    peer: str | None
    port: int
    interfaces: tuple[str, ...]
    connect: tuple[tuple[str, int], ...]
    code: str | None
    limit: int | None
    verbose: int
    log_file: str | None


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
    add("--name", required=True, help="your name as the peer will see it (up to 32 bytes)")
    add("--peer", metavar="NAME", help="pair only with the peer of this name")
    add("--port", type=int, default=DEFAULT_PORT, metavar="DISCOVERY_PORT",
        help=f"UDP port for discovery broadcasts (default {DEFAULT_PORT})")
    add("--interface", action="append", default=[], metavar="IFACE",
        help="announce only on this interface (repeatable; default: every IPv4 interface)")
    add("--connect", action="append", default=[], metavar="HOST[:PORT]",
        help="also announce to this host, for a peer broadcast cannot reach (repeatable)")
    add("--code", metavar="WORDS",
        help="a secret both sides give: pairing then requires it and proves who the peer is")
    add("--limit", metavar="AMOUNT",
        help="refuse payments that would take the balance past -AMOUNT or +AMOUNT")
    add("-v", "--verbose", action="count", default=0,
        help="log to stderr (-vv for protocol detail)")
    add("--log", metavar="FILE", dest="log_file", help="write the log to FILE instead of stderr")
    add("--version", action="version", version=f"lanpay {__version__}")
    return parser


def check_name(name: str, what: str = "name") -> str:
    """A name is shown on the other screen: short, printable, without spaces."""
    if not name:
        raise UsageError(f"{what} must not be empty")
    if len(name.encode("utf-8")) > MAX_NAME:
        raise UsageError(f"{what} is too long (at most {MAX_NAME} bytes of UTF-8)")
    if not name.isprintable() or any(ch.isspace() for ch in name):
        raise UsageError(f"{what} must be printable and contain no spaces")
    return name


def parse_connect(text: str, default_port: int) -> tuple[str, int]:
    """Resolve ``HOST[:PORT]`` once, now, to an IPv4 address."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, str(default_port)
    port = _port(port_text, f"--connect {text}")
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"cannot resolve {host!r} for --connect: {exc}") from None
    return infos[0][4][0], port


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"{what}: port must be a number from 1 to 65535")
    return int(text)


def check_options(ns: argparse.Namespace) -> Options:
    """Turn parsed arguments into Options, or raise UsageError."""
    port = _port(str(ns.port), "--port")
    limit = None
    if ns.limit is not None:
        try:
            limit = parse_amount(ns.limit)
        except AmountError as exc:
            raise UsageError(f"--limit: {exc}") from None
    if ns.code is not None and not ns.code.strip():
        raise UsageError("--code must not be empty")
    return Options(
        name=check_name(ns.name),
        peer=check_name(ns.peer, "--peer") if ns.peer is not None else None,
        port=port,
        interfaces=tuple(ns.interface),
        connect=tuple(parse_connect(c, port) for c in ns.connect),
        code=ns.code,
        limit=limit,
        verbose=ns.verbose,
        log_file=ns.log_file,
    )


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now, so a patched stderr keeps the prompt intact."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


def setup_logging(verbose: int, log_file: str | None) -> None:
    """Quiet by default; -v for info, -vv for debug; to a file if asked."""
    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else _CurrentStderr(sys.stderr)
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
    try:
        return asyncio.run(run(opts, targets))
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:  # SIGTERM
        return 143
    except StartupError as exc:
        print(f"lanpay: {exc}", file=sys.stderr)
        return exc.status


class StartupError(Exception):
    """Something lanpay needs was refused at start; carries the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


async def run(opts: Options, targets: Sequence[str]) -> int:
    """Start the node, run the shell that fits stdin/stdout, leave cleanly."""
    from lanpay.core.peer import Config
    from lanpay.node import Node
    from lanpay.ui import InteractiveShell, LineShell, looking_text, stdin_lines

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    shell = InteractiveShell(opts.name) if interactive else LineShell(_print_line)
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
    _cancel_on_sigterm()
    shell.out(looking_text(opts.peer))
    try:
        if isinstance(shell, InteractiveShell):
            return await shell.run(node)
        return await shell.run(node, stdin_lines())
    finally:
        await node.close(0)


def _print_line(text: str) -> None:
    """Line mode: one plain line, flushed at once so a script sees it now.

    If the reader has gone away, later lines are discarded rather than crashing
    the ledger in the middle of a payment.
    """
    try:
        print(text, flush=True)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def _cancel_on_sigterm() -> None:
    """SIGTERM leaves like Ctrl-C: the peer still gets its BYE."""
    task = asyncio.current_task()
    if task is not None:
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        except (NotImplementedError, RuntimeError):
            pass
