"""Fixtures shared by the whole suite: the network guard, namespaces, real lanpays.

The guard is autouse: no test in this process can send to anything but
loopback.  Tests that need a real network run lanpay in namespaces they create,
through :func:`netlan.lanpay_command`, which refuses anything else.

Tests that need root (namespaces) or tools (ip, nft, tmux) skip when those are
missing on a developer's machine, but fail when ``CI`` is set: there they must run.
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import netlan  # noqa: E402
from netlan import require_tools  # noqa: E402

def pytest_configure(config: pytest.Config) -> None:
    """The quick subset (``-m "not slow"``) draws fewer examples in its property tests."""
    import budget

    budget.QUICK = (config.getoption("markexpr") or "").strip() == "not slow"


_GUARDED = (("sendto", None), ("sendmsg", 3), ("connect", 0), ("connect_ex", 0))


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse, inside the test process, any socket destination that is not loopback."""
    for method, position in _GUARDED:
        original = getattr(socket.socket, method)
        monkeypatch.setattr(socket.socket, method, netlan.guarded(original, position))


@pytest.fixture(autouse=True)
def _logging_as_found() -> Iterator[None]:
    """``main()`` installs lanpay's log handler on the root logger, writing to the stderr of its
    test: take it off again, so a later test's records do not go to a stream long closed."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


@pytest.fixture
def netns_ok() -> None:
    """Use in tests that build namespaces: root and ``ip`` are needed."""
    require_tools("ip")


@pytest.fixture
def loopback_ns(netns_ok: None) -> Iterator[str]:
    """A fresh namespace with only ``lo``, deleted (with anything inside) afterwards."""
    with netlan.LoopbackNs() as ns:
        yield ns.name


@pytest.fixture
def make_lan(netns_ok: None) -> Iterator[Callable[..., netlan.netns_lan.Lan]]:
    """Build virtual LANs (``make_lan(["alice", "bob"], loss=25)``); all removed at the end."""
    lans: list[netlan.netns_lan.Lan] = []

    def build(hosts: list[str], **options: object) -> netlan.netns_lan.Lan:
        lan = netlan.netns_lan.Lan(hosts, **options)  # type: ignore[arg-type]
        lans.append(lan)
        return lan.up()

    yield build
    for lan in reversed(lans):
        lan.down()


@pytest.fixture
def lanpay(request: pytest.FixtureRequest) -> Iterator[Callable[..., netlan.LanpayProcess]]:
    """Start real lanpay processes: ``lanpay("alice", "--name", "alice", netns=ns)``.

    Every process is stopped at the end of the test; if the test failed, each one's
    transcript is attached to the report.
    """
    procs: list[netlan.LanpayProcess] = []
    request.node._lanpay_procs = procs

    def start(label: str, *args: str, netns: str | None = None) -> netlan.LanpayProcess:
        proc = netlan.LanpayProcess(label, netlan.lanpay_command(args, netns=netns))
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, show what every lanpay of the test typed and printed."""
    outcome = yield
    report = outcome.get_result()
    procs = getattr(item, "_lanpay_procs", None)
    if report.failed and procs:
        for proc in procs:
            report.sections.append((f"lanpay {proc.label}", proc.transcript()))
