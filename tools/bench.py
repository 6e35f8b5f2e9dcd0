#!/usr/bin/env python3
"""lanpay benchmarks: every figure stands next to a floor measured in the same run.

A number alone says little on a shared, noisy machine; the same number divided
by what plain Python does on the same path in the same minute says how much
lanpay itself costs.  So each metric is reported as ``lanpay``, ``floor`` and
``ratio = lanpay / floor`` (for times and memory, lower ratios are better; for
rates, higher ones are).  The floors:

* a pipe-driven blocking UDP client: a Python process that reads ``pay`` lines
  from a pipe, sends each to a UDP echo process, waits for the echo and prints
  ``Sent``, measured exactly as lanpay is and in blocks alternated with
  lanpay's, for pay latency in line mode;
* UDP ping-pong between two Python processes on loopback (round trips per
  second) for line-mode throughput;
* two Python processes meeting by broadcast for pairing time;
* ``python3 -c pass`` for start-up (``--version`` and ``--help``), and a Python
  process sending one broadcast for the time to the first announce;
* the resident memory of an idle Python process that imports nothing;
* raw ChaCha20-Poly1305 seal + open of the very datagrams a core-only run
  exchanged, for the core's CPU per datagram;
* lossless line-mode runs of the same size, alternated with the lossy ones, for
  goodput under 10 % and 30 % loss.

One row is a reference rather than lanpay: the smallest sealed pair, two Python
processes on the same loop that seal each pay with ChaCha20-Poly1305, apply it
and acknowledge it, and nothing more, timed against the same blocking client.
Its ratio is the least a program of lanpay's shape reaches in Python; lanpay's
own cost is the distance between that row and lanpay's.

Three rows have no floor a program could run, only a goal: datagrams per second
and CPU of an idle paired pair, and memory kept per settled payment.  Their
"floor" column is that goal, so their ratio still reads "lower is better, at
most 1 is on target".  The command runs on uvloop when it is importable (see
``lanpay.node.new_event_loop``); then pay latency is also measured with both
lanpays on asyncio's own loop, to judge the two loops in one run.

lanpay's bytecode is compiled before the start-up rows, as installing a package
does: in an environment that forbids writing it (``PYTHONDONTWRITEBYTECODE``),
a checkout installed with ``pip install -e`` would otherwise compile every
module at every start, which times the compiler rather than lanpay.

Everything that touches a socket runs in a private network namespace holding
only ``lo`` (this script re-executes itself under ``unshare --net``), and every
lanpay gets ``--interface lo``: nothing can reach the machine's real network.
Loss is an nftables rule on that private ``lo``.  Every wait has a deadline.

usage: python3 tools/bench.py [--quick] [--json FILE] [--core-only] [--instructions]

The core-only rows (CPU per datagram, memory per payment) need no namespace.
``--instructions`` adds the core's instructions per datagram against the AEAD's,
both counted by valgrind: a count that the machine's load does not move.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import platform
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from lanpay import __version__
from lanpay.core import wire
from lanpay.core.events import PaymentConfirmed
from lanpay.core.peer import Peer
from lanpay.core.session import WINDOW

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from driver import Net, Perfect  # noqa: E402  (the tests' in-memory LAN, found through the path above)

INSIDE_ENV = "LANPAY_BENCH_INSIDE"
NFT_TABLE = "lanpay_bench_loss"
FIRST_PORT = 47100          # discovery ports handed out in the private namespace
WELCOME = "Welcome to your peering relationship!"
CHILD_TIMEOUT = 30.0        # how long any child may take to do one thing
SETTLE = 20.0               # how long pending payments may take to drain between runs


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says which and why."""


# ----------------------------------------------------------------- sizes and results

@dataclass(frozen=True)
class Plan:
    """How many repetitions each measurement gets."""

    rtt_round_trips: int = 500
    starts: int = 10
    pairings: int = 5
    pays: int = 200
    burst: int = 500
    lossy: int = 150
    lossy_cap: float = 20.0
    lossy_rounds: int = 3
    core_payments: int = 10000
    core_runs: int = 3
    idle_seconds: float = 15.0
    memory_small: int = 10_000
    memory_large: int = 100_000


QUICK = Plan(rtt_round_trips=100, starts=3, pairings=2, pays=30, burst=60, lossy=20,
             lossy_cap=8.0, lossy_rounds=1, core_payments=300, core_runs=1, idle_seconds=5.0,
             memory_small=500, memory_large=2000)

#: The goals that stand in for a floor where no program gives one (see the module docstring).
IDLE_DATAGRAMS_GOAL = 1.0       # datagrams per second per side, paired and silent
IDLE_CPU_GOAL = 0.2             # per cent of one CPU per side
MEMORY_PER_PAYMENT_GOAL = 100.0  # bytes kept per settled payment per side


@dataclass(frozen=True)
class Metric:
    """One line of the report: lanpay's figure, the floor's, and their ratio."""

    name: str
    label: str
    unit: str
    lanpay: float
    floor: float
    floor_is: str
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """lanpay / floor, the figure that survives a change of machine."""
        return self.lanpay / self.floor

    def as_json(self) -> dict[str, object]:
        """A plain dict, with the ratio written out so readers need not recompute it."""
        out = asdict(self)
        out["ratio"] = self.ratio
        return out


def median(values: Sequence[float]) -> float:
    """The median of at least one value."""
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])


# ----------------------------------------------------------------- confinement

def enter_private_namespace(argv: Sequence[str]) -> None:
    """Re-run this script in a new network namespace that has only ``lo``.

    As root a plain ``unshare --net`` does; otherwise unprivileged user
    namespaces may allow it with ``--map-root-user``.  Does not return.
    """
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        raise BenchError("the network benchmarks need unshare (util-linux) and ip (iproute2); "
                         "--core-only runs without them")
    enter = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--net", "--map-root-user"]
    probe = subprocess.run([*enter, "true"], capture_output=True, timeout=CHILD_TIMEOUT)
    if probe.returncode != 0:
        raise BenchError("cannot create a private network namespace: run as root "
                         "(or enable unprivileged user namespaces); --core-only runs without one")
    os.environ[INSIDE_ENV] = "1"
    os.execvp(enter[0], [*enter, "--", sys.executable, str(Path(__file__).resolve()), *argv])


def confine_to_loopback() -> None:
    """Bring ``lo`` up and refuse to go on if any other interface is visible."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=CHILD_TIMEOUT)
    listed = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                            check=True, timeout=CHILD_TIMEOUT).stdout
    names = [line.split(":")[1].strip() for line in listed.splitlines() if line.strip()]
    if names != ["lo"]:
        raise BenchError(f"expected only lo in the private namespace, found {names}")


def nft(script: str) -> None:
    """Apply an nftables script in this (private) namespace."""
    done = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT)
    if done.returncode != 0:
        raise BenchError(f"nft failed: {done.stderr.strip()}")


@contextmanager
def udp_loss(percent: int) -> Iterator[None]:
    """Drop ``percent`` % of UDP arriving on the private ``lo`` while inside the block."""
    nft(f"table inet {NFT_TABLE} {{\n"
        "  chain input { type filter hook input priority 0; policy accept;\n"
        f"    iifname \"lo\" meta l4proto udp numgen random mod 100 < {percent} drop\n"
        "  }\n}\n")
    try:
        yield
    finally:
        nft(f"delete table inet {NFT_TABLE}\n")


class Ports:
    """Fresh discovery ports, so no run hears a stale announce from the one before."""

    def __init__(self) -> None:
        self._next = FIRST_PORT

    def take(self) -> int:
        port, self._next = self._next, self._next + 1
        return port


# ----------------------------------------------------------------- child programs
# Small Python programs run with ``python3 -c``: the floors.  Each is bounded in
# count and in time and stops by itself.

ECHO = """
import socket, sys
count = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(30)
print(s.getsockname()[1], flush=True)
for _ in range(count):
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        break
    s.sendto(data, addr)
"""

PING = """
import json, socket, sys, time
port, count, warm, size = map(int, sys.argv[1:5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
payload, dest, rtts = bytes(size), ("127.0.0.1", port), []
start = time.perf_counter()
for i in range(warm + count):
    if i == warm:
        start = time.perf_counter()
    sent = time.perf_counter()
    s.sendto(payload, dest)
    s.recvfrom(2048)
    rtts.append(time.perf_counter() - sent)
print(json.dumps({"rtts": rtts[warm:], "total": time.perf_counter() - start}), flush=True)
"""

MEET = """
import os, socket, sys, time
port = int(sys.argv[1])
hello = b"hi" + os.urandom(8)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.bind(("", port))
s.settimeout(0.05)
dest = ("127.255.255.255", port)
s.sendto(hello, dest)
for _ in range(200):
    try:
        data, addr = s.recvfrom(64)
    except socket.timeout:
        s.sendto(hello, dest)
        continue
    if data.startswith(b"hi") and data != hello:
        s.sendto(hello, dest)
        print("met", flush=True)
        break
"""

ANNOUNCE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.sendto(b"announce", ("127.255.255.255", int(sys.argv[1])))
"""

IDLE = "print('ready', flush=True); input()"

PIPE_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
dest = ("127.0.0.1", int(sys.argv[1]))
print("ready", flush=True)
for line in sys.stdin.buffer:
    s.sendto(line, dest)
    s.recvfrom(2048)
    sys.stdout.write("Sent\\n")
    sys.stdout.flush()
"""

# The smallest sealed pair: what a payment must cost at the least in Python on the
# same loop, to read lanpay's own ratio against.  Each pay is parsed as an exact
# amount, sealed with ChaCha20-Poly1305, sent; the payee opens it, applies it
# when it is the next number, seals and sends an acknowledgement, then writes a
# notice; the payer opens that and writes "Sent".  No replay window, ledger,
# retransmission, timers or pairing.  Both end at end of input, or after 300 s.
SEALED_COMMON = """
import asyncio, os, socket, struct, sys
from decimal import Decimal
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
try:
    from uvloop import new_event_loop
except ImportError:
    from asyncio import new_event_loop
HEADER, BODY = struct.Struct("!BQ"), struct.Struct("!QQ")
aead = ChaCha20Poly1305(bytes(32))

def seal(direction, number, body):
    header = HEADER.pack(direction, number)
    return header + aead.encrypt(bytes([direction]) + number.to_bytes(11, "big"), body, header)

def unseal(data):
    direction, number = HEADER.unpack_from(data)
    nonce = bytes([direction]) + number.to_bytes(11, "big")
    return aead.decrypt(nonce, data[HEADER.size:], data[:HEADER.size])

def serve(on_datagram, on_line, port_line):
    loop = new_event_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    os.set_blocking(0, False)
    ended = loop.create_future()
    pending = [b""]

    def readable():
        try:
            data, addr = sock.recvfrom(2048)
        except BlockingIOError:
            return
        on_datagram(sock, data, addr)

    def stdin():
        chunk = os.read(0, 65536)
        if not chunk:
            if not ended.done():
                ended.set_result(None)
            return
        *lines, pending[0] = (pending[0] + chunk).split(b"\\n")
        for line in lines:
            on_line(sock, line)

    loop.add_reader(sock.fileno(), readable)
    loop.add_reader(0, stdin)
    print(port_line(sock), flush=True)
    loop.run_until_complete(asyncio.wait_for(ended, 300))
"""

SEALED_PAYEE = SEALED_COMMON + """
state = {"seq": 0, "cents": 0}

def paid(sock, data, addr):
    seq, cents = BODY.unpack(unseal(data))
    if seq == state["seq"] + 1:
        state["seq"], state["cents"] = seq, state["cents"] + cents
    sock.sendto(seal(2, seq, BODY.pack(seq, state["cents"])), addr)
    sys.stdout.write(f"You were paid {Decimal(cents) / 100}!\\n")
    sys.stdout.flush()

serve(paid, lambda sock, line: None, lambda sock: sock.getsockname()[1])
"""

SEALED_PAYER = SEALED_COMMON + """
dest = ("127.0.0.1", int(sys.argv[1]))
state = {"seq": 0}

def pay(sock, line):
    word, amount = line.decode().split()
    cents = Decimal(amount) * 100
    if word != "pay" or cents != cents.to_integral_value() or cents <= 0:
        sys.stdout.write("Error: bad pay\\n")
        return
    state["seq"] += 1
    sock.sendto(seal(1, state["seq"], BODY.pack(state["seq"], int(cents))), dest)

def acked(sock, data, addr):
    seq, _ = BODY.unpack(unseal(data))
    sys.stdout.write(f"Sent #{seq}\\n")
    sys.stdout.flush()

serve(acked, pay, lambda sock: "ready")
"""

ON_ASYNCIO = ("import asyncio, sys; from lanpay import node; node.new_event_loop = asyncio.new_event_loop; "
              "from lanpay.cli import main; sys.exit(main(sys.argv[1:]))")


def python_argv(source: str, *args: object) -> list[str]:
    """Run a small program with the same interpreter lanpay runs on."""
    return [sys.executable, "-c", source, *map(str, args)]


def lanpay_argv(*args: str) -> list[str]:
    """The installed ``lanpay`` script, run by this interpreter (no shell shims in between)."""
    script = Path(sys.executable).parent / "lanpay"
    entry = [str(script)] if script.is_file() else ["-m", "lanpay"]
    return [sys.executable, *entry, *args]


def lanpay_peer(name: str, port: int, stock_loop: bool = False) -> list[str]:
    """A lanpay confined to loopback, on its own discovery port (on asyncio's own loop if asked)."""
    args = ("--name", name, "--interface", "lo", "--port", str(port))
    return python_argv(ON_ASYNCIO, *args) if stock_loop else lanpay_argv(*args)


def have_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


# ----------------------------------------------------------------- running children

class Child:
    """A child process whose output lines are kept with the time they were read."""

    def __init__(self, label: str, argv: Sequence[str]) -> None:
        self.label = label
        self._stderr = tempfile.TemporaryFile()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, bufsize=0)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.lines: list[tuple[float, str]] = []
        self.cursor = 0
        self.eof = False
        self._partial = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, text: str) -> float:
        """Write lines to the child's stdin; return when they were written."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        return time.perf_counter()

    def close_input(self) -> None:
        """End of input: lanpay leaves (says BYE) and exits."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass

    def read_available(self) -> None:
        """Take whatever the pipe holds now, stamping each complete line."""
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        now = time.perf_counter()
        if not chunk:
            self.eof = True
            return
        self._partial += chunk
        *complete, self._partial = self._partial.split(b"\n")
        self.lines.extend((now, raw.decode("utf-8", "replace")) for raw in complete)

    def stderr_tail(self, limit: int = 800) -> str:
        """The end of what the child wrote on stderr, for error messages."""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-limit:]

    def stop(self, grace: float = 5.0) -> None:
        """Let it end by itself (input closed), then kill this one process if it will not."""
        self.close_input()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(grace)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


class Children:
    """Every child of one measurement: all their pipes are drained while waiting on any."""

    def __init__(self) -> None:
        self.all: list[Child] = []

    def start(self, label: str, argv: Sequence[str]) -> Child:
        child = Child(label, argv)
        self.all.append(child)
        return child

    def poll(self, timeout: float) -> None:
        """Wait up to ``timeout`` for output from any child and read it."""
        open_ = [c for c in self.all if not c.eof]
        if not open_:
            time.sleep(min(timeout, 0.01))
            return
        ready, _, _ = select.select([c.fd for c in open_], [], [], max(0.0, timeout))
        for child in open_:
            if child.fd in ready:
                child.read_available()

    def expect(self, child: Child, match: Callable[[str], bool], deadline: float,
               ) -> tuple[float, str]:
        """The next line of ``child`` (from its cursor on) that matches; skip the others."""
        while True:
            while child.cursor < len(child.lines):
                stamp, text = child.lines[child.cursor]
                child.cursor += 1
                if match(text):
                    return stamp, text
            now = time.perf_counter()
            if child.eof or now >= deadline:
                why = "exited" if child.eof else "timed out"
                seen = [t for _, t in child.lines[-5:]]
                raise BenchError(f"{child.label} {why} while waiting; last lines {seen}; "
                                 f"stderr: {child.stderr_tail()!r}")
            self.poll(deadline - now)

    def stop_all(self) -> None:
        """Stop every child this measurement started, each by its own handle."""
        for child in self.all:
            if child.proc.poll() is None:
                child.close_input()
        for child in self.all:
            child.stop()
        self.all.clear()


@contextmanager
def children() -> Iterator[Children]:
    """Children that are always stopped, however the measurement ends."""
    group = Children()
    try:
        yield group
    finally:
        group.stop_all()


def starts_with(*prefixes: str) -> Callable[[str], bool]:
    """A line matcher for ``Children.expect``."""
    return lambda text: text.startswith(prefixes)


#: The line that ends a payment in line mode, either way.
OUTCOME = starts_with("Sent", "Error:")


def deadline(seconds: float = CHILD_TIMEOUT) -> float:
    return time.perf_counter() + seconds


def run_to_exit(argv: Sequence[str]) -> float:
    """Wall time from starting a process to its exit (it must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(list(argv), capture_output=True, timeout=CHILD_TIMEOUT)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"{argv[:3]} failed: {done.stderr.decode(errors='replace')[-400:]}")
    return took


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc (kB as the kernel counts them)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        raise BenchError(f"no VmRSS for pid {pid}")
    return int(match.group(1))


# ----------------------------------------------------------------- floors

@dataclass(frozen=True)
class UdpFloor:
    """Plain UDP ping-pong between two Python processes on loopback."""

    rtts: list[float]
    total: float

    @property
    def per_second(self) -> float:
        return len(self.rtts) / self.total


def udp_floor(round_trips: int, size: int = 64) -> UdpFloor:
    """Time ``round_trips`` request/response pairs, after a short warm-up."""
    warm = 20
    with children() as kids:
        echo = kids.start("udp echo", python_argv(ECHO, round_trips + warm))
        _, port = kids.expect(echo, str.isdigit, deadline())
        ping = kids.start("udp ping", python_argv(PING, port, round_trips, warm, size))
        _, report = kids.expect(ping, starts_with("{"), deadline())
    data = json.loads(report)
    return UdpFloor(rtts=data["rtts"], total=data["total"])


def time_pay(kids: Children, payer: Child) -> float:
    """Seconds from writing ``pay 0.01`` to ``payer`` to reading its ``Sent`` line: lanpay's
    pay latency and its floor's are timed by this one function."""
    written = payer.send("pay 0.01\n")
    stamp, _ = kids.expect(payer, starts_with("Sent"), deadline())
    return stamp - written


@contextmanager
def pipe_client_floor(plan: Plan) -> Iterator[Callable[[], float]]:
    """The floor's two processes (a blocking UDP client fed ``pay`` lines, and its echo), warmed
    up, for as long as the latency rows alternate with it; what it yields times one pay."""
    warm = 10
    with children() as kids:
        echo = kids.start("udp echo", python_argv(ECHO, plan.pays + 2 * warm))
        _, port = kids.expect(echo, str.isdigit, deadline())
        client = kids.start("pipe client", python_argv(PIPE_CLIENT, port))
        kids.expect(client, starts_with("ready"), deadline())
        for _ in range(warm):
            time_pay(kids, client)
        yield lambda: time_pay(kids, client)


def idle_python_rss() -> int:
    """RSS of a Python process that imported nothing and waits on its input."""
    with children() as kids:
        idle = kids.start("idle python", python_argv(IDLE))
        kids.expect(idle, starts_with("ready"), deadline())
        return rss_kib(idle.pid)


# ----------------------------------------------------------------- start-up

def startup(plan: Plan, flag: str = "--version") -> Metric:
    """``lanpay --version`` (or ``--help``) against ``python3 -c pass``, interleaved so drift hits both."""
    floor, ours = [], []
    for _ in range(plan.starts):
        floor.append(run_to_exit(python_argv("pass")))
        ours.append(run_to_exit(lanpay_argv(flag)))
    name = "startup_s" if flag == "--version" else f"startup_{flag.strip('-')}_s"
    return Metric(name, f"start-up, lanpay {flag} (median of {plan.starts})", "s",
                  median(ours), median(floor), "python3 -c pass",
                  {"lanpay_samples": ours, "floor_samples": floor})


def first_datagram(argv: Sequence[str], port: int) -> float:
    """Seconds from starting ``argv`` to a datagram arriving on the discovery port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("", port))
    listener.settimeout(CHILD_TIMEOUT)
    try:
        with children() as kids:
            child = kids.start("announcer", argv)
            try:
                listener.recvfrom(2048)
            except socket.timeout:
                raise BenchError(f"no datagram from {argv[:3]}: {child.stderr_tail()!r}") from None
            return time.perf_counter() - child.started
    finally:
        listener.close()


def first_announce(plan: Plan, ports: Ports) -> Metric:
    """Time to lanpay's first announce against a Python process that sends one broadcast."""
    floor, ours = [], []
    for _ in range(plan.starts):
        port = ports.take()
        floor.append(first_datagram(python_argv(ANNOUNCE, port), port))
        port = ports.take()
        ours.append(first_datagram(lanpay_peer("solo", port), port))
    return Metric("first_announce_s", f"time to first announce (median of {plan.starts})", "s",
                  median(ours), median(floor), "python sends one broadcast",
                  {"lanpay_samples": ours, "floor_samples": floor})


# ----------------------------------------------------------------- pairing

def meet_time(kids: Children, first: Sequence[str], second: Sequence[str],
              match: Callable[[str], bool]) -> float:
    """Start two processes back to back; seconds until both printed a matching line."""
    start = time.perf_counter()
    one = kids.start("first", first)
    two = kids.start("second", second)
    limit = deadline()
    stamps = [kids.expect(child, match, limit)[0] for child in (one, two)]
    return max(stamps) - start


def pairing(plan: Plan, ports: Ports) -> Metric:
    """Both lanpays welcomed, against two Python processes that meet by broadcast."""
    floor, ours = [], []
    for _ in range(plan.pairings):
        port = ports.take()
        with children() as kids:
            floor.append(meet_time(kids, python_argv(MEET, port), python_argv(MEET, port),
                                   starts_with("met")))
        port = ports.take()
        with children() as kids:
            ours.append(meet_time(kids, lanpay_peer("alice", port), lanpay_peer("bob", port),
                                  starts_with(WELCOME)))
    return Metric("pairing_s", f"pairing, both welcomed (median of {plan.pairings})", "s",
                  median(ours), median(floor), "two pythons meet by broadcast",
                  {"lanpay_samples": ours, "floor_samples": floor})


# ----------------------------------------------------------------- one paired session

@dataclass
class PairedPeers:
    """A paired alice and bob in line mode; alice pays, bob's pipe is drained alongside."""

    kids: Children
    alice: Child
    bob: Child

    def pay_once(self) -> float:
        return time_pay(self.kids, self.alice)

    def burst(self, count: int, cap: float) -> tuple[int, int, float]:
        """Write ``count`` pays at once; count outcomes until all are in or ``cap`` passes.

        Returns (confirmed, refused, seconds).  Line mode sends queued pays
        without waiting for each other (a window at a time) and prints their
        outcomes in order, so this is the rate a script sees.
        """
        start = self.alice.send("pay 0.01\n" * count)
        limit = start + cap
        sent = errors = 0
        last = start
        while sent + errors < count:
            try:
                last, text = self.kids.expect(self.alice, OUTCOME, limit)
            except BenchError:
                if self.alice.eof:
                    raise
                return sent, errors, cap
            sent, errors = sent + text.startswith("Sent"), errors + text.startswith("Error:")
        return sent, errors, last - start

    def settle(self, outstanding: int) -> None:
        """Wait for the outcomes of payments still queued from a capped run."""
        limit = deadline(SETTLE)
        for _ in range(outstanding):
            self.kids.expect(self.alice, OUTCOME, limit)


@contextmanager
def paired_session(ports: Ports, stock_loop: bool = False) -> Iterator[PairedPeers]:
    """Alice and bob on a fresh port, both welcomed."""
    port = ports.take()
    with children() as kids:
        alice = kids.start("alice", lanpay_peer("alice", port, stock_loop))
        bob = kids.start("bob", lanpay_peer("bob", port, stock_loop))
        limit = deadline()
        for child in (alice, bob):
            kids.expect(child, starts_with(WELCOME), limit)
        yield PairedPeers(kids, alice, bob)


LATENCY_ROUNDS = 10      # blocks of lanpay's pays and the floor's, alternated


def pay_samples(pay_once: Callable[[], float], plan: Plan) -> tuple[list[float], list[float]]:
    """``pay`` to ``Sent`` after a warm-up of ten, and the floor's samples, taken in alternating
    blocks: a machine whose speed changes from minute to minute moves both alike."""
    for _ in range(10):
        pay_once()
    ours: list[float] = []
    floor: list[float] = []
    block = max(1, plan.pays // LATENCY_ROUNDS)
    with pipe_client_floor(plan) as floor_pay:
        while len(ours) < plan.pays:
            count = min(block, plan.pays - len(ours))
            floor += [floor_pay() for _ in range(count)]
            ours += [pay_once() for _ in range(count)]
    return ours, floor


def latency_metrics(session: PairedPeers, plan: Plan) -> list[Metric]:
    """Pay latency in line mode, median and p95, against the pipe-driven blocking UDP client."""
    samples, floor = pay_samples(session.pay_once, plan)
    what = "pipe-driven blocking UDP client"
    counts = {"n": len(samples), "floor_n": len(floor)}
    return [
        Metric("pay_latency_median_s", f"pay -> Sent, median of {plan.pays}", "s",
               median(samples), median(floor), what, counts),
        Metric("pay_latency_p95_s", f"pay -> Sent, p95 of {plan.pays}", "s",
               percentile(samples, 95), percentile(floor, 95), what, counts),
    ]


def stock_loop_latency_metric(plan: Plan, ports: Ports) -> Metric:
    """The same pay latency with both lanpays on asyncio's own loop, to judge uvloop in the same run."""
    with paired_session(ports, stock_loop=True) as session:
        samples, floor = pay_samples(session.pay_once, plan)
    return Metric("pay_latency_asyncio_median_s", f"pay -> Sent on asyncio's loop, median of {plan.pays}",
                  "s", median(samples), median(floor), "pipe-driven blocking UDP client",
                  {"n": len(samples), "floor_n": len(floor)})


def sealed_pair_metric(plan: Plan) -> Metric:
    """The same pay latency for the smallest sealed pair (``SEALED_PAYER``): no protocol beyond
    one sealed datagram each way, so its ratio is the least any Python program of this shape
    reaches, and lanpay's own cost is the distance between the two rows."""
    with children() as kids:
        payee = kids.start("sealed payee", python_argv(SEALED_PAYEE))
        _, port = kids.expect(payee, str.isdigit, deadline())
        payer = kids.start("sealed payer", python_argv(SEALED_PAYER, port))
        kids.expect(payer, starts_with("ready"), deadline())
        samples, floor = pay_samples(lambda: time_pay(kids, payer), plan)
    return Metric("pay_latency_sealed_pair_median_s", f"pay -> Sent, smallest sealed pair, median of {plan.pays}",
                  "s", median(samples), median(floor), "pipe-driven blocking UDP client",
                  {"n": len(samples), "floor_n": len(floor)})


def burst_metric(session: PairedPeers, plan: Plan, floor: UdpFloor) -> Metric:
    """Payments confirmed per second when a script writes many pays back to back."""
    sent, errors, took = session.burst(plan.burst, CHILD_TIMEOUT + plan.burst * 0.05)
    if sent == 0 or errors:
        raise BenchError(f"lossless burst: {sent} sent, {errors} refused")
    return Metric("throughput_line_per_s", f"throughput, line mode ({plan.burst} pays)", "1/s",
                  sent / took, floor.per_second, "UDP ping-pong round trips/s",
                  {"sent": sent, "seconds": took})


def goodput_metric(session: PairedPeers, plan: Plan, percent: int) -> Metric:
    """Payments confirmed per second with ``percent`` % of UDP dropped, against lossless.

    Line mode keeps queued pays in flight together, so a loss is mostly found by
    the acknowledgements of later payments rather than waited out by the payment
    timer: this is what a script sees.  Each lossy run of ``plan.lossy``
    payments follows a lossless one of the same size on the same pair, and the
    medians of the rounds are compared: on a shared machine the floor must come
    from the same minute, or load drift reads as loss recovery.
    """
    clean, lossy, rounds = [], [], []
    for _ in range(plan.lossy_rounds):
        sent, errors, took = session.burst(plan.lossy, CHILD_TIMEOUT)
        if errors or sent < plan.lossy:
            raise BenchError(f"lossless round before {percent} % loss: {sent} sent, {errors} refused")
        clean.append(sent / took)
        with udp_loss(percent):
            sent, errors, took = session.burst(plan.lossy, plan.lossy_cap)
        session.settle(plan.lossy - sent - errors)
        if sent == 0:
            raise BenchError(f"no payment confirmed at {percent} % loss in {plan.lossy_cap} s")
        lossy.append(sent / took)
        rounds.append({"sent": sent, "refused": errors, "seconds": took, "lossless_per_s": clean[-1]})
    return Metric(f"goodput_loss{percent}_per_s", f"goodput at {percent} % loss ({plan.lossy} pays, "
                  f"median of {plan.lossy_rounds})", "1/s",
                  median(lossy), median(clean), "lossless runs of the same size, alternated",
                  {"asked": plan.lossy, "cap_seconds": plan.lossy_cap, "rounds": rounds})


COUNTER_TABLE = "lanpay_bench_count"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU a process has used, from /proc (in clock ticks)."""
    fields_ = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


def udp_packets_sent(counter: str = "udp_out") -> int:
    """UDP datagrams counted by ``counter`` in this namespace since it was made."""
    listed = subprocess.run(["nft", "list", "counter", "inet", COUNTER_TABLE, counter],
                            capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    match = re.search(r"packets (\d+)", listed.stdout)
    if listed.returncode != 0 or match is None:
        raise BenchError(f"cannot read the UDP counter: {listed.stderr.strip()}")
    return int(match.group(1))


def udp_ports(pid: int) -> set[int]:
    """The UDP ports a process has sockets bound to, from ``ss``."""
    listed = subprocess.run(["ss", "-uanpH"], capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    if listed.returncode != 0:
        raise BenchError(f"ss failed: {listed.stderr.strip()}")
    return {int(line.split()[3].rpartition(":")[2]) for line in listed.stdout.splitlines()
            if f"pid={pid}," in line}


@contextmanager
def udp_counter(sides: Sequence[set[int]] = ()) -> Iterator[Callable[[str], int]]:
    """Count every UDP datagram sent in the private namespace while inside the block, in all
    (``udp_out``) and from each set of source ports (``side0``, ``side1``, ...)."""
    names = [f"side{i}" for i in range(len(sides))]
    counters = "".join(f"  counter {name} {{ }}\n" for name in ["udp_out", *names])
    rules = "".join(f"    udp sport {{ {', '.join(map(str, sorted(ports)))} }} counter name \"{name}\"\n"
                    for name, ports in zip(names, sides) if ports)
    nft(f"table inet {COUNTER_TABLE} {{\n{counters}"
        "  chain output { type filter hook output priority 0; policy accept;\n"
        f"    meta l4proto udp counter name \"udp_out\"\n{rules}  }}\n}}\n")
    try:
        yield udp_packets_sent
    finally:
        nft(f"delete table inet {COUNTER_TABLE}\n")


def idle_metrics(session: PairedPeers, plan: Plan) -> list[Metric]:
    """A paired pair left alone: datagrams per second and CPU of the busier side, against the goals.

    Each side's datagrams are counted by the ports only its process holds (the
    discovery port is shared, and lanpay sends nothing from it): the keepalive
    is asymmetric (one side pings, the other answers), so the busier side is
    what the goal is checked against.  A figure of zero is shown as 0.001 (the
    raw counts are in the detail): a ratio must stay defined, and zero CPU ticks
    only means less than one tick.
    """
    time.sleep(1.0)   # let the last acknowledgements go out
    session.kids.poll(0)
    pids = (session.alice.pid, session.bob.pid)
    ports = [udp_ports(pid) for pid in pids]
    own = [ports[0] - ports[1], ports[1] - ports[0]]
    if not all(own):
        raise BenchError(f"cannot tell the two lanpays' sockets apart: {ports}")
    with udp_counter(own) as sent:
        cpu0 = [cpu_seconds(pid) for pid in pids]
        start = time.perf_counter()
        limit = start + plan.idle_seconds
        while (now := time.perf_counter()) < limit:
            session.kids.poll(limit - now)     # keep draining their output meanwhile
        took = time.perf_counter() - start
        datagrams = sent("udp_out")
        per_side = [sent(f"side{i}") for i in range(2)]
        cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu0)]
    busier = max(max(per_side) / took, 1e-3)
    cpu_pct = max(cpu) / took * 100
    detail = {"seconds": took, "datagrams": datagrams, "sent_per_side": per_side, "cpu_seconds": cpu}
    return [
        Metric("idle_datagrams_per_s", f"idle paired, datagrams/s of the busier side ({took:.0f} s)", "1/s",
               busier, IDLE_DATAGRAMS_GOAL, "goal: 1 datagram/s per side", detail),
        Metric("idle_cpu_pct", f"idle paired, CPU of the busier side ({took:.0f} s)", "%",
               max(cpu_pct, 1e-3), IDLE_CPU_GOAL, "goal: 0.2 % of one CPU", detail),
    ]


def memory_metric(name: str, label: str, pid: int, idle: int) -> Metric:
    """What one lanpay holds in memory, against a Python that holds nothing of its own."""
    return Metric(name, label, "KiB", float(rss_kib(pid)), float(idle),
                  "idle python importing nothing")


def compile_package() -> bool:
    """Write lanpay's bytecode next to its sources, as ``pip install`` does for an installed
    package, so the start-up rows do not time the compiler.  Where the environment forbids
    writing it (``PYTHONDONTWRITEBYTECODE``) and lanpay is installed from a checkout, every
    start would compile every module again.  Returns whether the bytecode is in place."""
    import compileall

    package = Path(__import__("lanpay").__file__).resolve().parent
    try:
        return bool(compileall.compile_dir(str(package), quiet=1))
    except OSError:
        return False


def network_metrics(plan: Plan) -> list[Metric]:
    """Everything that needs sockets; run only inside the private namespace."""
    compile_package()
    ports = Ports()
    floor = udp_floor(plan.rtt_round_trips)
    idle = idle_python_rss()
    metrics = [startup(plan), startup(plan, "--help"), first_announce(plan, ports),
               pairing(plan, ports)]
    with paired_session(ports) as session:
        metrics.append(memory_metric("memory_paired_kib", "memory, paired (RSS)",
                                     session.alice.pid, idle))
        metrics += latency_metrics(session, plan)
        metrics.append(sealed_pair_metric(plan))
        lossless = burst_metric(session, plan, floor)
        metrics.append(lossless)
        metrics += idle_metrics(session, plan)
        metrics += [goodput_metric(session, plan, pct) for pct in (10, 30)]
        metrics.append(memory_metric("memory_after_pays_kib", "memory, after all payments (RSS)",
                                     session.alice.pid, idle))
    if have_uvloop():       # the rows above ran on uvloop: measure the stock loop beside them
        metrics.append(stock_loop_latency_metric(plan, ports))
    return metrics


# ----------------------------------------------------------------- the core alone

Address = tuple[str, int]


class Wire:
    """Two cores wired directly in one process, with a fake clock: no sockets at all.

    They pair on the tests' in-memory LAN (tests/driver.py); the payments then go
    straight from one core to the other, pumped as ``lanpay.node`` pumps a core:
    the datagrams that arrived together are fed in, then what is due is sent,
    the events are drained and the one timer is looked up again.  Each hop
    takes ``HOP`` of the fake clock; hosts keep nothing (the memory rows measure
    what the cores keep).  The simulator's own bookkeeping (its queue, taps and
    hooks) is not in the figure: it is not what a lanpay process runs.
    """

    HOP = 0.0001

    def __init__(self, rng_seed: int = 7) -> None:
        self.net = Net(rng_seed, Perfect(latency=self.HOP), echo=False, keep=False)
        self.alice, bob = self.net.add("alice"), self.net.add("bob")
        self.addrs: tuple[Address, Address] = (self.alice.addr, bob.addr)
        self.peers = {host.addr: host.peer for host in (self.alice, bob)}
        self.record: list[tuple[Address, bytes]] | None = None
        self.confirmed = 0

    def pair(self, limit: float = 100.0) -> None:
        """Run until both cores are paired (bounded in fake seconds)."""
        if not self.net.run_until(lambda: all(p.status().state == "paired" for p in self.peers.values()), limit):
            raise BenchError("the two in-process cores did not pair")

    def _pump(self, peer: Peer, now: float) -> list[tuple[bytes, object]]:
        """What the node does after input: take what is due, drain the events, re-arm the timer."""
        out = peer.datagrams_to_send(now)
        while (event := peer.next_event()) is not None:
            self.confirmed += type(event) is PaymentConfirmed
        peer.next_timeout()
        return out

    def _hop(self, now: float) -> float:
        """One hop of the fake clock; a core whose timer is due handles it, as its node would."""
        now += self.HOP
        for peer in self.peers.values():
            due = peer.next_timeout()
            if due is not None and due <= now:
                peer.handle_timeout(now)
        return now

    def _deliver(self, datagrams: list[tuple[bytes, object]], src: Address, to: Peer, now: float) -> None:
        """Datagrams that arrive together, fed in one after the other."""
        record = self.record
        for data, _dest in datagrams:
            if record is not None:
                record.append((src, data))
            to.receive_datagram(data, src, now)

    def pay_all(self, count: int, steps: int) -> None:
        """Alice pays ``count`` times, keeping the session's window full, until all confirm."""
        (a_addr, b_addr), now = self.addrs, self.net.now
        alice, bob = self.peers[a_addr], self.peers[b_addr]
        asked = 0
        to_bob = self._pump(alice, now)
        for _ in range(steps):
            while asked < count and asked - self.confirmed < WINDOW:
                alice.pay(1, "", now)
                asked += 1
            to_bob += self._pump(alice, now)
            now = self._hop(now)
            self._deliver(to_bob, a_addr, bob, now)
            to_alice = self._pump(bob, now)
            now = self._hop(now)
            self._deliver(to_alice, b_addr, alice, now)
            to_bob = self._pump(alice, now)
            if self.confirmed >= count:
                return
        raise BenchError(f"only {self.confirmed} of {count} in-process payments confirmed")


def seal_open_jobs(record: Sequence[tuple[Address, bytes]]) -> list[tuple[ChaCha20Poly1305, bytes, bytes, bytes]]:
    """Raw ChaCha20-Poly1305 work like the sealed datagrams recorded: same sizes, same headers."""
    ciphers: dict[Address, ChaCha20Poly1305] = {}
    jobs = []
    for src, data in record:
        message = wire.decode(data)
        if isinstance(message, wire.Sealed):
            aead = ciphers.setdefault(src, ChaCha20Poly1305(os.urandom(32)))
            nonce = bytes(4) + message.counter.to_bytes(8, "big")
            plain = bytes(len(message.ciphertext) - 16)
            jobs.append((aead, nonce, plain, message.header))
    return jobs


def seal_open_seconds(jobs: Sequence[tuple[ChaCha20Poly1305, bytes, bytes, bytes]]) -> float:
    """CPU seconds to seal and open every job once."""
    start = time.process_time()
    for aead, nonce, plain, header in jobs:
        aead.decrypt(nonce, aead.encrypt(nonce, plain, header), header)
    return time.process_time() - start


def core_run(plan: Plan) -> tuple[float, list[tuple[Address, bytes]]]:
    """CPU seconds for two cores wired directly to settle ``plan.core_payments``, and their datagrams."""
    net = Wire()
    net.pair()
    net.record = []
    start = time.process_time()
    net.pay_all(plan.core_payments, steps=plan.core_payments * 100)
    return time.process_time() - start, net.record


def core_metric(plan: Plan) -> Metric:
    """The core's CPU per datagram (both sides, all it does per datagram), against sealing and opening it.

    The best of ``core_runs`` runs, and of five passes of the floor: on a shared
    machine the least CPU a run took is the closest to what the code costs.
    """
    runs = [core_run(plan) for _ in range(plan.core_runs)]
    took, record = min(runs, key=lambda run: run[0])
    jobs = seal_open_jobs(record)
    floor = min(seal_open_seconds(jobs) for _ in range(5))
    count = plan.core_payments
    return Metric("core_cpu_per_datagram_s", f"core CPU per datagram ({count} pays)", "s",
                  took / len(record), floor / len(jobs), "ChaCha20-Poly1305 seal+open of its datagrams",
                  {"cpu_seconds": took, "floor_cpu_seconds": floor, "datagrams": len(record),
                   "sealed": len(jobs), "payments": count,
                   "payments_per_cpu_s": count / took})


def memory_child(count: int) -> dict[str, float]:
    """In a fresh process: bytes each side keeps per settled payment, after ``count`` of them."""
    net = Wire()
    net.pair()
    gc.collect()
    before = rss_kib(os.getpid())
    net.pay_all(count, steps=count * 100)
    gc.collect()
    after = rss_kib(os.getpid())
    alice, bob = (net.peers[addr] for addr in net.addrs)
    return {"bytes_per_payment": (after - before) * 1024 / 2 / count, "payments": count,
            "confirmed": net.confirmed, "balances": [alice.status().balance, bob.status().balance]}


def memory_per_payment(count: int, name: str) -> Metric:
    """Growth of resident memory per settled payment, per side, in a process of its own."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--memory-child", str(count)],
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT + count / 500)
    if done.returncode != 0:
        raise BenchError(f"memory run failed: {done.stderr[-400:]}")
    figures = json.loads(done.stdout)
    return Metric(name, f"memory per settled payment, per side ({count:,} pays)", "B",
                  max(figures["bytes_per_payment"], 1.0), MEMORY_PER_PAYMENT_GOAL,
                  "goal: 100 B per payment", figures)


INSTR_RUNS = (200, 1200)      # payments in the two counted core runs: their difference is the figure
INSTR_PASSES = (1, 11)        # passes over the recorded datagrams in the two counted floor runs


def instr_child(kind: str, count: int) -> dict[str, int]:
    """In a process counted by valgrind: ``core`` pays ``count`` times between two cores; ``floor``
    seals and opens a 300-payment run's datagrams ``count`` times.  Returns what was done."""
    net = Wire()
    net.pair()
    net.record = []
    if kind == "core":
        net.pay_all(count, steps=count * 100)
        return {"datagrams": len(net.record)}
    net.pay_all(300, steps=300 * 100)
    jobs = seal_open_jobs(net.record)
    for _ in range(count):
        seal_open_seconds(jobs)
    return {"datagrams": len(jobs) * count}


def counted(kind: str, count: int) -> tuple[int, int]:
    """(instructions, datagrams) of one ``instr_child`` run under valgrind (no cache simulation)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise BenchError("--instructions needs valgrind (apt-get install valgrind)")
    done = subprocess.run([valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                           sys.executable, str(Path(__file__).resolve()), "--instr-child", kind, str(count)],
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT * 20)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise BenchError(f"valgrind run failed: {done.stderr[-400:]}")
    return int(found.group(1).replace(",", "")), json.loads(done.stdout)["datagrams"]


def instructions_metric() -> Metric:
    """The core's instructions per datagram against raw ChaCha20-Poly1305's, both counted by
    valgrind: a count does not move with the machine's load as CPU time does.  Each figure is
    the difference of two runs of different lengths, so start-up and pairing cancel out."""
    (c1, d1), (c2, d2) = (counted("core", n) for n in INSTR_RUNS)
    (f1, j1), (f2, j2) = (counted("floor", n) for n in INSTR_PASSES)
    core, floor = (c2 - c1) / (d2 - d1), (f2 - f1) / (j2 - j1)
    return Metric("core_instructions_per_datagram", f"core instructions per datagram ({INSTR_RUNS[1]} pays)",
                  "instr", core, floor, "ChaCha20-Poly1305 seal+open of its datagrams (valgrind)",
                  {"core_runs": [[c1, d1], [c2, d2]], "floor_runs": [[f1, j1], [f2, j2]]})


def core_metrics(plan: Plan) -> list[Metric]:
    """Everything measured without sockets."""
    return [core_metric(plan),
            memory_per_payment(plan.memory_small, "memory_per_payment_b"),
            memory_per_payment(plan.memory_large, "memory_per_payment_large_b")]


# ----------------------------------------------------------------- report

def show(value: float, unit: str) -> str:
    """A figure in the unit a reader expects: ms for short times, MiB for memory."""
    if unit == "s":
        if value < 0.0001:
            return f"{value * 1e6:.1f} us"
        return f"{value * 1000:.2f} ms" if value < 10 else f"{value:.1f} s"
    if unit == "KiB":
        return f"{value / 1024:.1f} MiB"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "instr":
        return f"{value / 1000:,.1f}k"
    return f"{value:,.0f}/s" if value >= 100 else f"{value:.1f}/s"


def table(metrics: Sequence[Metric]) -> str:
    """The human report: one line per metric."""
    rows = [("metric", "lanpay", "floor", "ratio", "floor is")]
    rows += [(m.label, show(m.lanpay, m.unit), show(m.floor, m.unit), f"{m.ratio:.3g}", m.floor_is)
             for m in metrics]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)]
        lines.append("  ".join(cells + [row[4]]))
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def report(metrics: Sequence[Metric], plan: Plan, quick: bool, seconds: float) -> dict[str, object]:
    """What ``--json`` writes: the metrics by name, and what they were measured on."""
    return {
        "lanpay_version": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "quick": quick,
        "bytecode_compiled": compile_package(),
        "plan": asdict(plan),
        "seconds": seconds,
        "metrics": {m.name: m.as_json() for m in metrics},
    }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="lanpay benchmarks, each against a floor measured in the same run "
                    "(in a private network namespace with only lo).")
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--core-only", action="store_true",
                        help="only the in-process core benchmarks (no namespace, no root)")
    parser.add_argument("--instructions", action="store_true",
                        help="also count the core's instructions per datagram with valgrind (about a minute)")
    parser.add_argument("--memory-child", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--instr-child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    return parser.parse_args(list(argv))


def run(args: argparse.Namespace) -> list[Metric]:
    """The measurements, in the order of the report."""
    plan = QUICK if args.quick else Plan()
    metrics = core_metrics(plan)
    if args.instructions:
        metrics.append(instructions_metric())
    if not args.core_only:
        confine_to_loopback()
        metrics = network_metrics(plan) + metrics
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(args_list)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child)))
        return 0
    if args.instr_child:
        kind, count = args.instr_child
        print(json.dumps(instr_child(kind, int(count))))
        return 0
    try:
        if not args.core_only and not os.environ.get(INSIDE_ENV):
            enter_private_namespace(args_list)
        began = time.perf_counter()
        metrics = run(args)
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    took = time.perf_counter() - began
    print(table(metrics))
    print(f"\n{len(metrics)} metrics in {took:.1f} s.  ratio = lanpay / floor: "
          "for times and memory lower is better, for rates higher is better.")
    if args.json:
        plan = QUICK if args.quick else Plan()
        Path(args.json).write_text(json.dumps(report(metrics, plan, args.quick, took), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
