"""The virtual LAN the end-to-end tests stand on (tools/netns_lan.py) does what it says.

Datagrams here are sent by small Python snippets running inside the LAN's
namespaces, never from the test process itself.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from netlan import DEADLINE, REPO, LanpayProcess, netns_lan, require_tools

pytestmark = [pytest.mark.netns, pytest.mark.slow]

TOOL = [sys.executable, str(REPO / "tools" / "netns_lan.py")]

RECEIVER = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", 5000))
print("ready", flush=True)
end = time.monotonic() + 20
while time.monotonic() < end:
    s.settimeout(end - time.monotonic())
    data = s.recv(100)
    if data == b"stop":
        break
    print(data.decode(), flush=True)
"""

SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
for item in sys.argv[1:]:
    text, addr = item.split("@")
    s.sendto(text.encode(), (addr, 5000))
"""


def send(lan, host: str, *items: str) -> None:
    """Send ``text@address`` datagrams to port 5000 from ``host``."""
    subprocess.run(lan.exec_argv(host, [sys.executable, "-c", SENDER, *items]),
                   check=True, timeout=DEADLINE)


def receiver(lan, host: str) -> LanpayProcess:
    """A process on ``host`` that prints each datagram to port 5000 until ``stop``."""
    proc = LanpayProcess(f"rx-{host}", lan.exec_argv(host, [sys.executable, "-c", RECEIVER]))
    proc.expect(r"^ready$")
    return proc


def test_broadcast_reaches_the_subnet_and_the_router_carries_unicast(make_lan) -> None:
    lan = make_lan(["alice", "bob"], far=["carol"])
    bob, carol = receiver(lan, "bob"), receiver(lan, "carol")
    send(lan, "alice", "everyone@10.77.0.255", "to-bob@10.77.0.2", "to-carol@10.78.0.1",
         "everyone@255.255.255.255", "stop@10.77.0.2", "stop@10.78.0.1")
    assert bob.wait() == 0 and carol.wait() == 0
    assert bob.lines == ["ready", "everyone", "to-bob", "everyone"]
    assert carol.lines == ["ready", "to-carol"]


def test_loss_drops_udp_arriving_at_a_host_and_counts_it(make_lan) -> None:
    require_tools("nft")
    lan = make_lan(["alice", "bob"], loss={"bob": 100})
    send(lan, "alice", *[f"lost{i}@10.77.0.2" for i in range(5)])
    limit = time.monotonic() + DEADLINE
    while lan.dropped("bob") < 5 and time.monotonic() < limit:
        time.sleep(0.05)
    assert lan.dropped("bob") == 5
    assert lan.dropped("alice") == 0
    lan.set_loss("bob", 0)
    bob = receiver(lan, "bob")
    send(lan, "alice", "kept@10.77.0.2", "stop@10.77.0.2")
    assert bob.wait() == 0
    assert bob.lines == ["ready", "kept"]


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TOOL, *args], capture_output=True, text=True, timeout=DEADLINE)


def test_the_command_line_builds_runs_in_and_removes_a_lan(netns_ok) -> None:
    tag = netns_lan.new_tag()
    try:
        assert _tool("up", "--tag", tag, "--hosts", "a,b").returncode == 0
        assert _tool("up", "--tag", tag, "--hosts", "a,b").returncode == 1  # already up
        listed = _tool("list").stdout.split()
        assert {f"lp-{tag}-a", f"lp-{tag}-b", f"lp-{tag}-sw0"} <= set(listed)
        shown = _tool("exec", "--tag", tag, "a", "--", "ip", "-o", "-4", "addr", "show", "lan0")
        assert "10.77.0.1/24" in shown.stdout
    finally:
        assert _tool("down", "--tag", tag).returncode == 0
    assert not [ns for ns in netns_lan.list_namespaces() if ns.startswith(f"lp-{tag}-")]
    assert _tool("down", "--tag", tag).returncode == 0  # nothing left: still fine


def test_a_build_that_fails_halfway_leaves_no_namespace(netns_ok, monkeypatch) -> None:
    def broken(self: netns_lan.Lan) -> None:
        raise netns_lan.LanError("the router would not start")

    monkeypatch.setattr(netns_lan.Lan, "_make_router", broken)
    lan = netns_lan.Lan(["alice"], far=["bob"])
    with pytest.raises(netns_lan.LanError, match="router"):
        lan.up()
    assert not [ns for ns in netns_lan.list_namespaces() if ns.startswith(f"lp-{lan.tag}-")]
    assert not [ns for ns in netns_lan.CREATED if ns.startswith(f"lp-{lan.tag}-")]
    lan.down()  # idempotent after the failure


@pytest.mark.parametrize("hosts, options", [
    ([], {}),
    (["Alice"], {}),
    (["alice", "alice"], {}),
    (["alice"], {"far": ["alice"]}),
    (["sw0"], {}),
    (["alice"], {"tag": "x-y"}),
    (["alice"], {"loss": 101}),
    (["alice"], {"loss_out": {"alice": -1}}),
])
def test_bad_names_and_percentages_are_refused_before_anything_is_built(hosts, options) -> None:
    with pytest.raises(netns_lan.LanError):
        netns_lan.Lan(hosts, **options)


def test_the_default_tag_is_one_per_user_and_help_shows_defaults(monkeypatch) -> None:
    monkeypatch.setenv("SUDO_UID", "1000")
    first = netns_lan.default_tag()
    monkeypatch.setenv("SUDO_UID", "1001")
    assert first == "u1000" and netns_lan.default_tag() == "u1001"
    monkeypatch.delenv("SUDO_UID")
    import os
    assert netns_lan.default_tag() == f"u{os.getuid()}"
    shown = subprocess.run([*TOOL, "up", "--help"], capture_output=True, text=True, timeout=DEADLINE,
                           env={**os.environ, "SUDO_UID": "1234"})
    text = " ".join(shown.stdout.split())
    for default in ("(default: alice,bob)", "(default: 0)", "(default: u1234, one per user"):
        assert default in text, text
