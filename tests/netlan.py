"""Helpers for tests that run the real ``lanpay`` command.

Two rules are enforced here rather than trusted to each test:

* every lanpay command line is built by :func:`lanpay_command`, which refuses
  anything that could reach the machine's real interfaces: the process must run
  in a namespace this test run created, or be confined to a fresh namespace with
  only loopback (``--interface lo`` under ``unshare --net``);
* every wait is bounded by a deadline (a bound on failure, never a timed
  assertion), and every process is killed at the end of its test.

Run as a script, this module is also the attacker used by the LAN tests:
``sniff IFACE`` prints every UDP frame it sees as hex, ``replay IFACE`` sends the
frames it reads back onto the wire, unchanged and bit-flipped.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import netns_lan  # noqa: E402  (tools/ is not a package)

#: How long any single wait may take before the test fails.  Generous on purpose:
#: it bounds a hang on a loaded machine; it is not a claim about speed.
DEADLINE = float(os.environ.get("LANPAY_TEST_DEADLINE", "20"))

TAIL = 200  # transcript lines shown on failure

BALANCE = re.compile(r"^(-?\d+\.\d{2})\b")
_AMOUNT = re.compile(r"^(-?)(\d+)\.(\d{2})$")


class UnsafeCommand(Exception):
    """A lanpay command line that might touch the real network; it was not run."""


class NetworkGuardError(PermissionError):
    """A socket in the test process tried to reach a non-loopback address."""


class ExpectFailed(AssertionError):
    """A process did not print what a test waited for before the deadline or its exit."""


def cents(text: str) -> int:
    """``'-10.50'`` → ``-1050``, exactly (no floats)."""
    match = _AMOUNT.match(text)
    if match is None:
        raise ValueError(f"not an amount with two decimals: {text!r}")
    value = int(match.group(2)) * 100 + int(match.group(3))
    return -value if match.group(1) else value


def money(amount: int) -> str:
    """``-1050`` → ``'-10.50'``: what lanpay prints for a number of cents."""
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"


def require(ok: bool, why: str) -> None:
    """Skip a test whose needs are missing, unless this is CI, where that is a failure."""
    import pytest
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test, but {why}", pytrace=False)
    pytest.skip(why)


def require_tools(*tools: str) -> None:
    """Root and the named commands must be present."""
    require(os.geteuid() == 0, "network namespaces need root")
    missing = [t for t in tools if shutil.which(t) is None]
    require(not missing, f"missing commands: {', '.join(missing)}")


# --- the network guard ---------------------------------------------------------

def lanpay_executable() -> list[str]:
    """The installed ``lanpay`` script, or the package run as a module."""
    found = shutil.which("lanpay")
    return [found] if found else [sys.executable, "-m", "lanpay"]


def _option_values(args: Sequence[str], option: str) -> list[str]:
    """Every value given to ``option``, in ``--opt value`` or ``--opt=value`` form."""
    values = []
    for index, arg in enumerate(args):
        if arg == option:
            if index + 1 >= len(args):
                raise UnsafeCommand(f"{option} without a value")
            values.append(args[index + 1])
        elif arg.startswith(option + "="):
            values.append(arg.split("=", 1)[1])
    return values


def _is_loopback_host(host: str) -> bool:
    """True for names and addresses that can only mean this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _connect_host(target: str) -> str:
    """The host part of ``HOST[:PORT]``."""
    return target.rsplit(":", 1)[0] if target.count(":") == 1 else target


def lanpay_command(args: Sequence[str], *, netns: str | None = None) -> list[str]:
    """The one place a lanpay command line is made; refuse anything not confined.

    In a test-made namespace anything goes (it holds only the virtual LAN).
    Outside one, the command must name ``--interface lo`` only, ``--connect``
    only loopback, and it still runs in a new namespace holding just ``lo``.
    """
    args = [str(a) for a in args]
    if netns is not None:
        if not netns.startswith(netns_lan.PREFIX) or netns not in netns_lan.CREATED:
            raise UnsafeCommand(f"{netns!r} is not a namespace this test run created")
        return ["ip", "netns", "exec", netns, *lanpay_executable(), *args]
    interfaces = _option_values(args, "--interface")
    if interfaces != ["lo"]:
        raise UnsafeCommand(f"outside a test namespace lanpay needs exactly --interface lo, "
                            f"not {interfaces or 'none'}: {args}")
    bad = [t for t in _option_values(args, "--connect") if not _is_loopback_host(_connect_host(t))]
    if bad:
        raise UnsafeCommand(f"--connect outside a test namespace must be loopback: {bad}")
    return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "lanpay",
            *lanpay_executable(), *args]


def _destination_ok(address: object) -> bool:
    """Unix paths and loopback addresses are fine; every other address is refused."""
    if isinstance(address, (str, bytes)):
        return True
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        return _is_loopback_host(address[0])
    return False


def guarded(original: Callable[..., object], position: int | None) -> Callable[..., object]:
    """Wrap a socket method so that a non-loopback destination raises instead.

    ``position`` is where the address sits among the positional arguments
    (``None``: the last one), which covers ``sendto(data[, flags], addr)``,
    ``sendmsg(buffers, anc, flags, addr)`` and ``connect(addr)``.
    """
    def check(self: object, *args: object) -> object:
        if args and (position is None or len(args) > position):
            address = args[-1] if position is None else args[position]
            if not _destination_ok(address):
                raise NetworkGuardError(f"test process may not send to {address!r}; "
                                        "run real-network tests in a namespace")
        return original(self, *args)

    check.lanpay_guard = True  # type: ignore[attr-defined]
    return check


# --- namespaces ------------------------------------------------------------------

@dataclass
class LoopbackNs:
    """A namespace with only ``lo``: two processes inside share one loopback."""

    name: str = field(default_factory=lambda: netns_lan.netns_name(netns_lan.new_tag(), "lo"))

    def __enter__(self) -> "LoopbackNs":
        netns_lan.add_namespace(self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        netns_lan.delete_namespace(self.name)


# --- a running lanpay ------------------------------------------------------------

class LanpayProcess:
    """One real lanpay, driven through pipes one line at a time.

    Output lines are kept in order.  :meth:`expect` takes the earliest line that
    matches and that no earlier ``expect`` took, so notices that arrive in either
    order (a payment received while waiting for one's own ``Sent``) are all found.
    """

    def __init__(self, label: str, argv: list[str]) -> None:
        self.label = label
        self.argv = argv
        self.lines: list[str] = []
        self.log: list[str] = []
        self.taken: set[int] = set()
        self.last = 0
        self._cond = threading.Condition()
        self._open_streams = 2
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     start_new_session=True)
        for stream, sink in ((self.proc.stdout, self.lines), (self.proc.stderr, None)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()

    def _read(self, stream: object, sink: list[str] | None) -> None:
        """Collect one output stream; stderr goes only to the log."""
        tag = "out" if sink is not None else "err"
        for raw in stream:  # type: ignore[attr-defined]
            line = raw.rstrip("\n")
            with self._cond:
                if sink is not None:
                    sink.append(line)
                self.log.append(f"{tag}| {line}")
                self._cond.notify_all()
        with self._cond:
            self._open_streams -= 1
            self._cond.notify_all()

    @property
    def finished_output(self) -> bool:
        """Both output streams are closed: nothing more will ever be printed."""
        return self._open_streams == 0

    def send(self, line: str) -> None:
        """Type one command (a newline is added)."""
        with self._cond:
            self.log.append(f" in| {line}")
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError as exc:
            raise ExpectFailed(f"{self.label} no longer reads input\n{self.transcript()}") from exc

    def close_input(self) -> None:
        """End of input, as when a piped script finishes."""
        with self._cond:
            self.log.append(" in| <end of input>")
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def expect(self, pattern: str, deadline: float = DEADLINE) -> re.Match[str]:
        """Wait for the next output line matching ``pattern`` (re.search); return the match."""
        regex = re.compile(pattern)
        limit = time.monotonic() + deadline
        with self._cond:
            while True:
                for index, line in enumerate(self.lines):
                    found = None if index in self.taken else regex.search(line)
                    if found:
                        self.taken.add(index)
                        self.last = index + 1
                        return found
                left = limit - time.monotonic()
                if left <= 0 or self.finished_output:
                    why = "its output ended" if self.finished_output else f"{deadline:.0f} s passed"
                    raise ExpectFailed(f"{self.label}: no line matching {pattern!r} "
                                       f"({why})\n{self.transcript()}")
                self._cond.wait(min(left, 0.5))

    def expect_count(self, pattern: str, count: int, deadline: float = DEADLINE) -> list[str]:
        """Wait for ``count`` more lines matching ``pattern``; the deadline is per line."""
        return [self.expect(pattern, deadline).string for _ in range(count)]

    def mark(self) -> int:
        """Where the output stands now, for :meth:`since`."""
        with self._cond:
            return len(self.lines)

    def since(self, start: int) -> list[str]:
        """Output lines from ``start`` (a :meth:`mark`) up to the last line matched."""
        with self._cond:
            return self.lines[start:self.last]

    def balance(self, deadline: float = DEADLINE) -> int:
        """Ask for the balance and return it in cents."""
        self.send("balance")
        return cents(self.expect(BALANCE.pattern, deadline).group(1))

    def wait(self, deadline: float = DEADLINE) -> int:
        """Wait for the process to exit; return its status (fail past the deadline)."""
        try:
            return self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired as exc:
            raise ExpectFailed(f"{self.label} did not exit within {deadline:.0f} s\n"
                               f"{self.transcript()}") from exc

    def exit(self, deadline: float = DEADLINE) -> int:
        """Type ``exit``, wait for ``Goodbye.`` and the process end; return the status."""
        self.send("exit")
        self.expect(r"^Goodbye\.", deadline)
        return self.wait(deadline)

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled plug would; reap it."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=DEADLINE)

    def pause(self) -> None:
        """SIGSTOP, as a suspended laptop or a debugger would: sockets and memory stay as they are."""
        self._signal_lanpay(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`: the process carries on where it stopped."""
        self._signal_lanpay(signal.SIGCONT)

    def terminate(self) -> None:
        """SIGTERM, as ``kill`` or a shutting-down session would: lanpay leaves politely."""
        self._signal_lanpay(signal.SIGTERM)

    def _signal_lanpay(self, sig: int) -> None:
        """Signal the process itself: ``ip netns exec`` execs it, so the pid must no longer be ``ip``."""
        try:
            argv0 = Path(f"/proc/{self.proc.pid}/cmdline").read_bytes().split(b"\0")[0]
        except FileNotFoundError as exc:
            raise ExpectFailed(f"{self.label} is not running\n{self.transcript()}") from exc
        if os.path.basename(argv0) == b"ip":
            raise ExpectFailed(f"{self.label}: pid {self.proc.pid} is still ip, not lanpay")
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        """End the process at the end of a test however it is doing: politely, then not."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)    # a paused process cannot exit politely
        self.close_input()
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.kill()

    def transcript(self) -> str:
        """Everything typed and printed so far, for failure reports."""
        with self._cond:
            log = list(self.log)
        shown = [line if len(line) <= 160 else line[:157] + "..." for line in log[-TAIL:]]
        skipped = [f"({len(log) - TAIL} earlier lines not shown)"] if len(log) > TAIL else []
        body = "\n".join(skipped + shown) or "(nothing)"
        status = self.proc.poll()
        state = "running" if status is None else f"exited {status}"
        return f"--- {self.label} ({state}): {' '.join(self.argv)}\n{body}"


#: What the ``lanpay`` fixture is: ``start(label, *args, netns=...)``.
Spawn = Callable[..., LanpayProcess]


# --- counting what reaches a host ---------------------------------------------------

COUNT_TABLE = "lanpay_count"


def count_udp_arrivals(lan: "netns_lan.Lan", name: str) -> None:
    """Count, from now on, every UDP datagram arriving on host ``name``'s LAN interface (an
    nftables counter in its namespace), so a test can show that a flood really reached it."""
    rules = (f"table inet {COUNT_TABLE}\ndelete table inet {COUNT_TABLE}\n"
             f"table inet {COUNT_TABLE} {{\n  chain countin {{ type filter hook input priority -10; "
             f"policy accept;\n    iifname \"{netns_lan.HOST_IFACE}\" meta l4proto udp counter\n  }}\n}}\n")
    netns_lan.run(["ip", "netns", "exec", lan[name].netns, "nft", "-f", "-"], stdin=rules)


def udp_arrivals(lan: "netns_lan.Lan", name: str) -> int:
    """UDP datagrams counted on host ``name`` since :func:`count_udp_arrivals`."""
    out = netns_lan.run(["ip", "netns", "exec", lan[name].netns, "nft", "list", "table", "inet",
                         COUNT_TABLE], check=False).stdout
    return sum(int(n) for n in re.findall(r"counter packets (\d+)", out))


# --- the attacker (run as a script inside its namespace) -----------------------

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAX_FRAMES = 5000


def _udp_frame(frame: bytes) -> tuple[int, int] | None:
    """(IP header offset, UDP header offset) if this is an Ethernet IPv4/UDP frame."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    return 14, 14 + (frame[14] & 0x0F) * 4


def _sniff(iface: str, seconds: float) -> int:
    """Print every UDP frame seen on ``iface`` as hex, one per line, for a bounded time."""
    import socket
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    end = time.monotonic() + seconds
    count = 0
    print("listening", flush=True)
    while count < MAX_FRAMES and time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            frame, addr = sock.recvfrom(65535)
        except TimeoutError:
            break
        if addr[2] != PACKET_OUTGOING and _udp_frame(frame):
            print(frame.hex(), flush=True)
            count += 1
    return 0


def _flipped(frame: bytes, bit: int) -> bytes:
    """A copy with one payload bit flipped and the UDP checksum cleared (still valid IPv4)."""
    _, udp = _udp_frame(frame) or (0, 0)
    data = bytearray(frame)
    payload = len(data) - (udp + 8)
    if payload <= 0:
        return bytes(data)
    pos = udp + 8 + (bit // 8) % payload
    data[pos] ^= 1 << (bit % 8)
    data[udp + 6:udp + 8] = b"\x00\x00"
    return bytes(data)


def _replay(iface: str) -> int:
    """Send each frame read from stdin as-is, bit-flipped, and from our own address."""
    import socket
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    raw.bind((iface, 0))
    own = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sent = 0
    for line in list(sys.stdin)[:MAX_FRAMES]:
        frame = bytes.fromhex(line.strip())
        where = _udp_frame(frame)
        if where is None:
            continue
        ip, udp = where
        raw.send(frame)
        for bit in (0, 7, 8 * 12 + 3, 8 * 40 + 1, 8 * (len(frame) - udp - 9) + 6):
            raw.send(_flipped(frame, bit))
        dst = socket.inet_ntoa(frame[ip + 16:ip + 20])
        port = int.from_bytes(frame[udp + 2:udp + 4], "big")
        own.sendto(frame[udp + 8:], (dst, port))
        sent += 7
        time.sleep(0.001)  # a burst, but not one that drops in the veth queue
    print(f"sent {sent}", flush=True)
    return 0


def iter_frames(lines: Sequence[str]) -> Iterator[bytes]:
    """Captured hex lines back to frames (the ``listening`` banner is skipped)."""
    for line in lines:
        if re.fullmatch(r"[0-9a-f]+", line):
            yield bytes.fromhex(line)


def udp_fields(frame: bytes) -> tuple[str, int, str, int, bytes]:
    """(src ip, src port, dst ip, dst port, payload) of a captured UDP frame."""
    ip, udp = _udp_frame(frame) or (14, 34)
    src = ".".join(str(b) for b in frame[ip + 12:ip + 16])
    dst = ".".join(str(b) for b in frame[ip + 16:ip + 20])
    return (src, int.from_bytes(frame[udp:udp + 2], "big"), dst,
            int.from_bytes(frame[udp + 2:udp + 4], "big"), frame[udp + 8:])


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "sniff":
        sys.exit(_sniff(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 120.0))
    if len(sys.argv) == 3 and sys.argv[1] == "replay":
        sys.exit(_replay(sys.argv[2]))
    print("usage: netlan.py sniff IFACE [SECONDS] | replay IFACE < frames.hex", file=sys.stderr)
    sys.exit(2)
