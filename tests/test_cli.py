"""The ``lanpay`` command: arguments, start-up failures, and the line-mode contract.

Argument checks run in this process (they fail before any socket opens).  Every
real run goes through the suite's ``lanpay`` fixture, confined to loopback in a
namespace of its own or in one namespace shared by two processes.
"""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys

import pytest

import netlan
from lanpay import __version__
from lanpay.cli import UsageError, _print_line, check_name, main, parse_connect, same_file

# -- arguments (no sockets) -----------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"lanpay {__version__}" == "lanpay 0.1.0"


class Recorded(io.StringIO):
    """A stdout that remembers what reached it at each flush."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[str] = []

    def flush(self) -> None:
        self.flushed.append(self.getvalue())


def test_a_line_is_written_and_flushed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    out = Recorded()
    monkeypatch.setattr(sys, "stdout", out)
    _print_line("Sent 0.01 to bob (#1)")
    _print_line("zoë \\u202e")
    assert out.flushed == ["Sent 0.01 to bob (#1)\n", "Sent 0.01 to bob (#1)\nzoë \\u202e\n"]


def test_a_line_for_a_reader_gone_away_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    class Gone(io.StringIO):
        def flush(self) -> None:
            raise BrokenPipeError

    monkeypatch.setattr(sys, "stdout", Gone())
    _print_line("Sent 0.01 to bob (#1)")            # no error: later lines go nowhere
    assert sys.stdout.name == "/dev/null"  # type: ignore[attr-defined]
    sys.stdout.close()


def test_help_shows_every_option_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for option in ("--name", "--peer", "--port", "--interface", "--connect", "--code",
                   "--limit", "--json", "--timeout", "-v", "--version"):
        assert option in text
    assert "examples:" in text and "lanpay --name alice" in text
    for status in ("130 after Ctrl-C", "143 after SIGTERM", "129", "2 for bad arguments"):
        assert status in " ".join(text.split())


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_import_only_what_they_need(args: list[str]) -> None:
    """They print and leave: asyncio, the core, cryptography and prompt_toolkit stay unloaded."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['lanpay', *{args!r}]\n"
        "try:\n    runpy.run_module('lanpay', run_name='__main__')\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('asyncio', 'cryptography', 'prompt_toolkit', 'netifaces', 'socket') or m.startswith('lanpay.core'))\n"
        "print('LOADED', heavy, code, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "LOADED [] 0", done.stderr
    assert done.stdout.startswith("lanpay 0.1.0" if args == ["--version"] else "usage: lanpay")


@pytest.mark.parametrize(("args", "message"), [
    (["--name", "a b"], "lanpay: name must not contain spaces (U+0020 SPACE)"),
    (["--name", ""], "lanpay: name must not be empty"),
    (["--name", "x" * 33], "lanpay: name is too long (33 bytes; at most 32 bytes)"),
    (["--name", "é" * 17], "lanpay: name is too long (34 bytes; at most 32 bytes)"),
    (["--name", "tab\there"], "lanpay: name contains a control character (U+0009 CHARACTER TABULATION)"),
    (["--name", "bob\u202egro"],
     "lanpay: name contains a bidirectional control (U+202E RIGHT-TO-LEFT OVERRIDE)"),
    (["--name", "x\x9b2J"],
     "lanpay: name contains a C1 control character (U+009B CONTROL SEQUENCE INTRODUCER)"),
    (["--name", "a", "--peer", "b c"], "lanpay: --peer must not contain spaces (U+0020 SPACE)"),
    (["--name", "a", "--peer", "b\u2066"],
     "lanpay: --peer contains a bidirectional control (U+2066 LEFT-TO-RIGHT ISOLATE)"),
    (["--name", "bob\u200b"],
     "lanpay: name contains a character that shows as nothing (U+200B ZERO WIDTH SPACE)"),
    (["--name", "a", "--peer", "\u3164bob"],
     "lanpay: --peer contains a character that shows as nothing (U+3164 HANGUL FILLER)"),
    (["--name", "bob", "--peer", "bob"],
     "lanpay: --peer bob is your own name; give the name the other person runs lanpay with"),
    (["--name", "a", "--timeout", "0"], "lanpay: --timeout: '0' is not a number of seconds above 0"),
    (["--name", "a", "--timeout", "soon"],
     "lanpay: --timeout: 'soon' is not a number of seconds above 0"),
    (["--name", "a", "--timeout", "nan"], "lanpay: --timeout: 'nan' is not a number of seconds above 0"),
    (["--name", "a", "--timeout", "1_0"], "lanpay: --timeout: '1_0' is not a number of seconds above 0"),
    (["--name", "a", "--timeout", "1e3"], "lanpay: --timeout: '1e3' is not a number of seconds above 0"),
    (["--name", "a", "--timeout", "."], "lanpay: --timeout: '.' is not a number of seconds above 0"),
    (["--name", "a", "--port", "4_7474"], "lanpay: --port: port must be a number from 1 to 65535"),
    (["--name", "a", "--port", "\u0663\u0664\u0665\u0666"], "lanpay: --port: port must be a number from 1 to 65535"),
    (["--name", "a", "--port", "+80"], "lanpay: --port: port must be a number from 1 to 65535"),
    (["--name", "a", "--connect", "[::1]:47474"],
     "lanpay: --connect [::1]:47474: lanpay speaks IPv4 only; give an IPv4 address or a host name with one"),
    (["--name", "a", "--connect", "::1"],
     "lanpay: --connect ::1: lanpay speaks IPv4 only; give an IPv4 address or a host name with one"),
    (["--name", "a", "--port", "0"], "lanpay: --port: port must be a number from 1 to 65535"),
    (["--name", "a", "--port", "70000"], "lanpay: --port: port must be a number from 1 to 65535"),
    (["--name", "a", "--limit", "-5"], "lanpay: --limit: amount must be positive"),
    (["--name", "a", "--limit", "lots"],
     "lanpay: --limit: 'lots' is not an amount (write it like 10 or 10.50)"),
    (["--name", "a", "--code", " "], "lanpay: --code must not be empty"),
    (["--name", "a", "--connect", "127.0.0.1:99999"],
     "lanpay: --connect 127.0.0.1:99999: port must be a number from 1 to 65535"),
    (["--name", "a", "--connect", "127.0.0.1:"],
     "lanpay: --connect 127.0.0.1:: port must be a number from 1 to 65535"),
])
def test_bad_arguments_are_one_line_and_status_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--interface", "lo"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [message]
    assert captured.out == ""


def test_unknown_interface_is_a_start_up_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--name", "alice", "--interface", "nosuch0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lanpay: no such interface 'nosuch0' (available: ")
    assert "lo" in err and len(err.splitlines()) == 1


def test_missing_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--interface", "lo"])
    assert info.value.code == 2
    assert "--name" in capsys.readouterr().err


def test_names_people_use_are_accepted() -> None:
    family = "\U0001F468\u200D\U0001F469\u200D\U0001F467"
    for name in ("alice", "Bob", "zoë", "x" * 32, "the-kitchen.pc", family, "José"):
        assert check_name(name) == name


def test_connect_resolves_once_with_the_discovery_port_by_default() -> None:
    assert parse_connect("127.0.0.1", 47474) == ("127.0.0.1", 47474)
    assert parse_connect("127.0.0.2:5000", 47474) == ("127.0.0.2", 5000)


def test_connect_to_an_unknown_host_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    with pytest.raises(UsageError) as info:
        parse_connect("nosuch.invalid:47474", 47474)
    assert str(info.value) == (
        "cannot resolve 'nosuch.invalid' to an IPv4 address for --connect: "
        "[Errno -2] Name or service not known"
    )


def test_a_port_held_by_a_program_that_does_not_share_is_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("", 0))  # no SO_REUSEADDR/SO_REUSEPORT: lanpay cannot join it
    port = holder.getsockname()[1]
    try:
        assert main(["--name", "alice", "--interface", "lo", "--port", str(port)]) == 1
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert err == f"lanpay: cannot open UDP port {port}: Address already in use\n"


# -- real runs, confined to loopback -------------------------------------------------


def lo(name: str, *more: str) -> list[str]:
    return ["--name", name, "--interface", "lo", *more]


def test_line_mode_without_a_peer(lanpay, netns_ok) -> None:
    """Errors need no peer; end of input says goodbye even while still looking."""
    alice = lanpay("alice", *lo("alice"))
    alice.expect(r"^Looking for a peer on the LAN…$")
    alice.send("pay -5")
    alice.expect(r"^Error: amount must be positive$")
    alice.send("foo")
    alice.expect(r"^Error: unknown command 'foo' \(try 'help'\)$")
    alice.send("help")
    alice.expect(r"^  balance ")
    alice.close_input()
    alice.expect(r"^Goodbye\.$")
    assert alice.wait() == 1          # commands were refused: the script did not succeed
    assert "err| Error: amount must be positive" in alice.log      # errors go to stderr too
    assert not any("Traceback" in line for line in alice.log)


def test_same_file_tells_one_file_from_two(tmp_path) -> None:
    with open(tmp_path / "a", "w") as a, open(tmp_path / "a", "a") as again, open(tmp_path / "b", "w") as b:
        assert same_file(a, again) and same_file(a, a)
        assert not same_file(a, b)
    assert not same_file(io.StringIO(), io.StringIO())        # no descriptor: not known to be one file
    read, write = socket.socketpair()
    with read, write, open(write.fileno(), "w", closefd=False) as one, open(read.fileno(), "w", closefd=False) as two:
        assert not same_file(one, two)


@pytest.mark.parametrize("as_json", [False, True])
def test_an_error_is_read_once_when_stderr_is_stdout(netns_ok, as_json: bool) -> None:
    """On a terminal, or with ``2>&1``, the copy for stderr would show every error twice (and break
    a stream of JSON lines): with one file for both, each error is written once, on stdout."""
    args = ["--name", "alice", "--interface", "lo", "--port", "47391", *(["--json"] if as_json else [])]
    done = subprocess.run(netlan.lanpay_command(args), input="pay -5\nfoo\n", stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60)
    lines = done.stdout.splitlines()
    errors = [line for line in lines if "amount must be positive" in line]
    assert len(errors) == 1, lines
    assert len([line for line in lines if "unknown command" in line]) == 1, lines
    if as_json:
        assert all(line.startswith("{") for line in lines), lines
    assert done.returncode == 1


def test_two_peers_pay_and_leave(lanpay, loopback_ns) -> None:
    """The line-mode contract of docs/DESIGN.md, end to end on one loopback."""
    alice = lanpay("alice", *lo("alice", "--peer", "bob"), netns=loopback_ns)
    alice.send("balance")  # typed before pairing: waits for it
    bob = lanpay("bob", *lo("bob"), netns=loopback_ns)
    code_a = alice.expect(r"^Paired with bob \(127\.0\.0\.1\) · code (\S+)$").group(1)
    code_b = bob.expect(r"^Paired with alice \(127\.0\.0\.1\) · code (\S+)$").group(1)
    assert code_a == code_b
    alice.expect(r"^Welcome to your peering relationship!$")
    bob.expect(r"^Welcome to your peering relationship!$")
    alice.expect(r"^0\.00$")

    alice.send("pay 10 lunch")
    alice.expect(r"^Sent 10\.00 to bob \(#1\) — lunch$")
    bob.expect(r"^You were paid 10\.00! — lunch$")
    bob.send("pay 2.50")
    bob.expect(r"^Sent 2\.50 to alice \(#1\)$")
    alice.expect(r"^You were paid 2\.50!$")
    assert alice.balance() == -750
    assert bob.balance() == 750

    alice.send("history")
    alice.expect(r"^ *#  dir +amount  status")
    alice.expect(r"^ *1  out +10\.00  confirmed  \d\d:\d\d:\d\d  lunch$")
    alice.expect(r"^ *1  in +2\.50  received  ")
    alice.send("peer")
    alice.expect(rf"^Code: +{code_a} ")
    alice.expect(r"^Link: +online, RTT \d+\.\d ms$")

    assert alice.exit() == 0
    bob.expect(r"^alice left$")
    bob.send("pay 1")
    bob.expect(r"^Error: alice has left — nothing was sent$")
    assert bob.balance() == 750
    bob.close_input()
    bob.expect(r"^Goodbye\.$")
    assert bob.wait() == 1            # its last payment was refused


def test_timeout_gives_up_on_pairing_with_one_error_and_status_1(lanpay, netns_ok) -> None:
    alice = lanpay("alice", *lo("alice", "--timeout", "0.5"))
    alice.send("balance")
    alice.send("pay 1")
    alice.expect(r"^Goodbye\.$")
    assert alice.wait() == 1
    assert alice.lines == ["Looking for a peer on the LAN…",
                           "Error: not paired within 0.5 s (--timeout); giving up", "Goodbye."]
    assert [line for line in alice.log if line.startswith("err|")] == [
        "err| Error: not paired within 0.5 s (--timeout); giving up"]


@pytest.mark.slow
def test_json_lines_for_a_whole_session(lanpay, loopback_ns) -> None:
    import json

    alice = lanpay("alice", *lo("alice", "--json", "--timeout", "20"), netns=loopback_ns)
    bob = lanpay("bob", *lo("bob"), netns=loopback_ns)
    alice.send("pay 2.50 tea")
    alice.send("balance")
    alice.send("pay lots")
    alice.close_input()
    bob.expect(r"^You were paid 2\.50! — tea$")
    alice.expect(r'"type": "goodbye"')
    assert alice.wait() == 1                      # "pay lots" was refused
    records = [json.loads(line) for line in alice.lines]
    types = [r["type"] for r in records]
    assert types[:2] == ["looking", "paired"] and types[-1] == "goodbye"
    sent = next(r for r in records if r["type"] == "payment_confirmed")
    assert (sent["amount"], sent["amount_cents"], sent["memo"], sent["balance_cents"]) == (
        "2.50", 250, "tea", -250)
    assert next(r for r in records if r["type"] == "balance")["balance"] == "-2.50"
    assert next(r for r in records if r["type"] == "error")["message"].startswith("'lots'")
    bob.close_input()
    assert bob.wait() == 0


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                             (signal.SIGHUP, 129)])
def test_a_signal_leaves_cleanly_and_tells_the_peer(lanpay, loopback_ns, sig, status) -> None:
    alice = lanpay("alice", *lo("alice"), netns=loopback_ns)
    bob = lanpay("bob", *lo("bob"), netns=loopback_ns)
    alice.expect(r"^Welcome")
    bob.expect(r"^Welcome")
    alice.proc.send_signal(sig)
    assert alice.wait() == status
    bob.expect(r"^alice left$")
    assert not any("Traceback" in line for line in alice.log)


def test_connect_reaches_a_peer_that_broadcast_cannot(lanpay, loopback_ns) -> None:
    """Different discovery ports: only bob's unicast announce can bring them together."""
    alice = lanpay("alice", *lo("alice", "--port", "40001"), netns=loopback_ns)
    bob = lanpay("bob", *lo("bob", "--port", "40002", "--connect", "127.0.0.1:40001"),
                 netns=loopback_ns)
    alice.expect(r"^Paired with bob \(127\.0\.0\.1\)")
    bob.expect(r"^Paired with alice \(127\.0\.0\.1\)")
    bob.send("pay 1")
    alice.expect(r"^You were paid 1\.00!$")
    assert alice.exit() == 0 and bob.exit() == 0


def test_the_command_runs_on_the_loop_the_node_module_offers(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvloop when installed, through node.new_event_loop: the loop the command runs on is that one's."""
    import asyncio

    from lanpay import cli, node

    made: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        made.append(asyncio.new_event_loop())
        return made[-1]

    async def fake_run(opts: object, targets: object, signals: list[int] | None = None) -> int:
        return 7 if asyncio.get_running_loop() is made[0] else 1

    monkeypatch.setattr(node, "new_event_loop", factory)
    monkeypatch.setattr(cli, "run", fake_run)
    assert cli._run(None, []) == 7          # type: ignore[arg-type]
    assert len(made) == 1 and made[0].is_closed()


def test_a_signal_that_comes_as_the_run_ends_still_ends_lanpay_as_that_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM in the very instant input ends: the run's task has finished with status 0 when
    the loop first gets to the signal (as the runner winds down); lanpay still ends as SIGTERM
    does a moment later, 143, not 0 as if nothing had happened."""
    import os

    from lanpay import cli

    async def run(opts: object, targets: object, signals: list[int]) -> int:
        cli._leave_on_signals(signals)
        os.kill(os.getpid(), signal.SIGTERM)     # handled by the loop only after we returned
        return 0

    monkeypatch.setattr(cli, "run", run)
    monkeypatch.setattr(cli, "_when_output_gone", [])
    assert cli._run(None, []) == 128 + signal.SIGTERM   # type: ignore[arg-type]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
