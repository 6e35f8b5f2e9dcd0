"""The test suite cannot reach the real network: these tests prove its guards hold.

Nothing here sends to a non-loopback address: refusals are checked on the
command builder and on a recording stand-in for the socket method, and
confinement is checked by running ``ip link`` where lanpay would run.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

import netlan
from netlan import NetworkGuardError, UnsafeCommand, lanpay_command, require_tools


@pytest.mark.parametrize("args", [
    ["--name", "alice"],
    ["--name", "alice", "--interface", "eth0"],
    ["--name", "alice", "--interface=eth0"],
    ["--name", "alice", "--interface", "lo", "--interface", "eth0"],
    ["--name", "alice", "--interface", "lo", "--connect", "192.0.2.1"],
    ["--name", "alice", "--interface", "lo", "--connect=10.0.0.7:47474"],
    ["--name", "alice", "--interface"],
])
def test_refuses_a_command_that_could_use_real_interfaces(args: list[str]) -> None:
    with pytest.raises(UnsafeCommand):
        lanpay_command(args)


@pytest.mark.parametrize("netns", ["lp-notmine-alice", "default", "", "lp-"])
def test_refuses_a_namespace_this_run_did_not_create(netns: str) -> None:
    with pytest.raises(UnsafeCommand):
        lanpay_command(["--name", "alice"], netns=netns)


def test_the_lanpay_fixture_starts_nothing_it_refuses(lanpay, monkeypatch) -> None:
    started: list[object] = []
    monkeypatch.setattr(netlan.subprocess, "Popen", lambda *a, **k: started.append(a))
    with pytest.raises(UnsafeCommand):
        lanpay("alice", "--name", "alice")
    assert started == []


def test_loopback_command_runs_in_a_fresh_namespace() -> None:
    argv = lanpay_command(["--name", "alice", "--interface", "lo", "--connect", "127.0.0.1:5"])
    assert argv[:3] == ["unshare", "--net", "--"]
    assert argv[-6:] == ["--name", "alice", "--interface", "lo", "--connect", "127.0.0.1:5"]


def _links_seen_by(argv: list[str]) -> list[str]:
    """Run ``ip -o link`` in place of lanpay and return the interface names it sees."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True)
    return sorted(line.split(":")[1].strip().split("@")[0] for line in done.stdout.splitlines())


def test_where_a_loopback_lanpay_runs_there_is_only_lo(monkeypatch) -> None:
    require_tools("ip", "unshare")
    monkeypatch.setattr(netlan, "lanpay_executable", lambda: ["sh", "-c", "ip -o link", "x"])
    assert _links_seen_by(lanpay_command(["--interface", "lo"])) == ["lo"]


def test_where_a_lan_lanpay_runs_there_is_only_the_virtual_lan(make_lan, monkeypatch) -> None:
    lan = make_lan(["alice", "bob"])
    monkeypatch.setattr(netlan, "lanpay_executable", lambda: ["sh", "-c", "ip -o link", "x"])
    assert _links_seen_by(lanpay_command(["--name", "alice"], netns=lan["alice"].netns)) == [
        "lan0", "lo"]


def test_the_socket_guard_is_installed() -> None:
    for method in ("sendto", "sendmsg", "connect", "connect_ex"):
        assert getattr(getattr(socket.socket, method), "lanpay_guard", False), method


class _Recorder:
    """Stands in for a real socket method, so a refusal is proven without sending."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def __call__(self, sock: object, *args: object) -> str:
        self.calls.append(args)
        return "sent"


@pytest.mark.parametrize("args", [
    (b"x", ("192.0.2.1", 9)),
    (b"x", 0, ("10.77.0.2", 47474)),
    (b"x", ("255.255.255.255", 47474)),
    (b"x", ("<broadcast>", 47474)),
    (b"x", ("example.org", 53)),
    (b"x", ("2001:db8::1", 9, 0, 0)),
])
def test_sendto_refuses_non_loopback_destinations(args: tuple[object, ...]) -> None:
    stub = _Recorder()
    with pytest.raises(NetworkGuardError):
        netlan.guarded(stub, None)(object(), *args)
    assert stub.calls == []


@pytest.mark.parametrize("args", [
    (b"x", ("127.0.0.1", 9)),
    (b"x", 0, ("127.255.255.255", 47474)),
    (b"x", ("::1", 9, 0, 0)),
    (b"x", ("localhost", 9)),
    (b"x", "/tmp/some.sock"),
])
def test_sendto_lets_loopback_through(args: tuple[object, ...]) -> None:
    stub = _Recorder()
    assert netlan.guarded(stub, None)(object(), *args) == "sent"
    assert stub.calls == [args]


def test_connect_and_sendmsg_are_guarded_by_position() -> None:
    stub = _Recorder()
    with pytest.raises(NetworkGuardError):
        netlan.guarded(stub, 0)(object(), ("192.0.2.1", 80))
    with pytest.raises(NetworkGuardError):
        netlan.guarded(stub, 3)(object(), [b"x"], [], 0, ("192.0.2.1", 80))
    assert netlan.guarded(stub, 3)(object(), [b"x"]) == "sent"  # connected socket, no address
    assert netlan.guarded(stub, 0)(object(), ("127.0.0.1", 80)) == "sent"
    assert len(stub.calls) == 2


def test_a_real_loopback_datagram_still_arrives() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(20)
        tx.sendto(b"lanpay guard", rx.getsockname())
        assert rx.recv(64) == b"lanpay guard"


def test_a_wait_on_a_finished_process_fails_at_once_and_says_why() -> None:
    proc = netlan.LanpayProcess("echo", [sys.executable, "-c", "print('only line')"])
    proc.expect(r"^only line$")
    with pytest.raises(netlan.ExpectFailed, match="its output ended"):
        proc.expect(r"never printed")
    assert proc.wait() == 0
