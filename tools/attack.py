#!/usr/bin/env python3
"""An attacker host on a namespace LAN forging 1 000 datagrams a second, and what lanpay does then.

Two parts.  ``forge`` is the attacker: run inside its own namespace (root), it
listens on the discovery port to learn the real peers from their broadcast
announces (name, incarnation, key, session port, as anyone on the LAN can),
then sends forged datagrams of ONE kind at a fixed rate, with spoofed IPv4
source addresses: an ``AF_INET``/``SOCK_RAW``/``IPPROTO_RAW`` socket and IPv4
and UDP headers built here by hand.  The datagrams themselves are made with
lanpay's own encoders (``lanpay.core.wire``).  It is bounded in count and in
time, stops when its standard input says ``stop`` or closes, and prints one
JSON summary: datagrams sent, over how long, and its own CPU time.

``run`` is the harness: it builds a LAN (tools/netns_lan.py) with hosts alice,
bob and mallory, and for each kind, with and without ``--code``, starts the
forger on mallory, then alice and bob, and measures the time until both are
welcomed (for a live namesake without ``--code``: the time from the flood's
end), makes a payment each way during the flood, keeps the flood going for a
soak period while sampling each lanpay's RSS, and prints a table::

    sudo python3 tools/attack.py run                    # every kind, both modes
    sudo python3 tools/attack.py run --kinds hello,junk --rate 1000 --soak 20

Kinds (``KINDS``): ``namesake`` (announces of free peers named like a real
one, fresh keys), ``leaving`` (F_LEAVING announces spoofed from the real
peers' own addresses), ``redirect`` (a real peer's announce sent again from
other addresses), ``hello`` (Hellos to both peers, fresh commitments, half
under the real counterpart's incarnation from its own address), ``reply``
(Replies with wrong nonces), ``junk`` (random bytes, truncated and bit-flipped
valid datagrams) and ``fakes`` (announces of many free peers with other names).

Times are measured with ``time.monotonic``; this is a measuring tool, the
assertions live in tests/test_e2e_attack.py.  Every address it sends to is on
the namespace LAN (10.77.0.0/24); spoofed sources are taken from that subnet.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import re
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tools"))

from lanpay.core import announcer, crypto, wire  # noqa: E402
from lanpay.core.errors import DecodeError  # noqa: E402

KINDS = ("namesake", "leaving", "redirect", "hello", "reply", "junk", "fakes")
NAMESAKE = "namesake"            # without --code a live namesake holds pairing off by design
DISCOVERY_PORT = 47474
DEFAULT_RATE = 1000.0
MAX_SECONDS = 120.0              # the forger never runs longer than this, whatever it is told
MAX_DATAGRAMS = 200_000
SPOOF_FIRST, SPOOF_HOSTS = 100, 64   # spoofed sources: 10.77.0.100 .. 10.77.0.163
LAN_NET = ipaddress.ip_network("10.77.0.0/24")
WELCOME = re.compile(r"^Welcome to your peering relationship!$")
#: How long the harness waits for anything before calling it a failure (not a claim of speed).
WAIT = 30.0
BOUND = 3.0              # the promise: both welcomed this long after both were started ...
NAMESAKE_BOUND = 10.0    # ... or, for a live namesake without --code, after it went quiet


# ============================================================== packets

def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_udp(src: tuple[str, int], dst: tuple[str, int], payload: bytes, ident: int = 0) -> bytes:
    """An IPv4 datagram carrying one UDP datagram from ``src`` to ``dst``, headers made by hand.

    The UDP checksum is left 0 ("none", which IPv4 allows), so a forged source costs no
    pseudo-header sum; the IPv4 header checksum is computed (Linux would fill it in anyway).
    """
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0)
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(payload), ident & 0xFFFF, 0x4000,
                       64, socket.IPPROTO_UDP, 0, socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
    return head + udp + payload


def spoofed_host(index: int) -> str:
    """One of the made-up source hosts on the LAN's subnet (nobody has that address)."""
    return str(LAN_NET.network_address + SPOOF_FIRST + index % SPOOF_HOSTS)


# ============================================================== what the attacker knows

@dataclass
class Known:
    """A real peer as its broadcast announces show it to anyone on the LAN."""

    name: str
    addr: tuple[str, int]          # its session socket, where its announces come from
    last: wire.Announce

    @property
    def incarnation(self) -> int:
        return self.last.incarnation

    @property
    def code_flag(self) -> int:
        return self.last.flags & wire.F_CODE


@dataclass
class Forger:
    """Makes forged datagrams of one kind; ``next()`` gives (source, destination, payload) or None."""

    kind: str
    victims: dict[str, str]                     # real peer name -> its IPv4 address
    code: bool
    rng: random.Random
    pool: int = 16
    known: dict[str, Known] = field(default_factory=dict)
    turn: int = 0

    def __post_init__(self) -> None:
        keys = [crypto.public_key(crypto.new_private_key(self.rng)) for _ in range(16)]
        self.keys = keys
        size = max(1, self.pool)
        self.identities = []        # (incarnation, handshake key, index, signing seed): the keys make the incarnation
        for i in range(size):
            seed = self.rng.randbytes(crypto.KEY_SIZE)
            key = keys[i % len(keys)]
            self.identities.append((crypto.incarnation_of(crypto.signing_public(seed), key), key, i, seed))
        self.counter = 0            # one for all forged announces: each is news for its incarnation

    def learn(self, data: bytes, addr: tuple[str, int]) -> None:
        """An announce overheard on the discovery port: remember who sent it, from where."""
        try:
            msg = wire.decode(data)
        except DecodeError:
            return
        if isinstance(msg, wire.Announce) and msg.name in self.victims and addr[0] == self.victims[msg.name] \
                and not msg.flags & wire.F_LEAVING:
            self.known[msg.name] = Known(msg.name, addr, msg)

    def _other(self, name: str) -> str:
        others = [n for n in self.victims if n != name]
        return others[0] if others else name

    def next(self) -> tuple[tuple[str, int], tuple[str, int], bytes] | None:
        """The next forged datagram, aimed at the real peers in turn; None while nothing is known yet."""
        names = list(self.victims)
        for _ in range(len(names)):
            self.turn += 1
            victim = names[self.turn % len(names)]
            made = getattr(self, "_" + self.kind)(victim, self._other(victim))
            if made is not None:
                return made
        return None

    # -- one method per kind: (victim's name, the name of the peer it should pair with)

    def _flags(self, victim: str) -> int:
        known = self.known.get(victim)
        return known.code_flag if known is not None else (wire.F_CODE if self.code else 0)

    def _identity(self) -> tuple[int, bytes, int, bytes]:
        return self.identities[self.rng.randrange(len(self.identities))]

    def _discovery(self, victim: str) -> tuple[str, int]:
        return self.victims[victim], DISCOVERY_PORT

    def _announce_as(self, name: str, inc: int, key: bytes, flags: int, seed: bytes) -> bytes:
        """An announce of an incarnation of the forger's own, signed with its key (as it must be)."""
        self.counter += 1
        msg = wire.Announce(inc, 40000, flags, 3000, name, "", "", 0, key, crypto.signing_public(seed), self.counter)
        return wire.encode(announcer.sign(msg, seed))

    def _namesake(self, victim: str, other: str) -> tuple | None:
        """A free peer called like the victim's counterpart, with keys of its own."""
        inc, key, index, seed = self._identity()
        data = self._announce_as(other, inc, key, self._flags(victim), seed)
        return (spoofed_host(index), 40000 + index), self._discovery(victim), data

    def _fakes(self, victim: str, other: str) -> tuple | None:
        """A free peer with a name of its own: many of them, from many hosts."""
        inc, key, index, seed = self._identity()
        data = self._announce_as(f"peer{index}", inc, key, self._flags(victim), seed)
        return (spoofed_host(index), 40000 + index), self._discovery(victim), data

    def _leaving(self, victim: str, other: str) -> tuple | None:
        """The counterpart's own announce, flagged leaving, from its own address (its signature
        no longer matches: dropped unread)."""
        real = self.known.get(other)
        if real is None:
            return None
        msg = replace(real.last, flags=real.last.flags | wire.F_LEAVING, counter=real.last.counter + 1)
        return real.addr, self._discovery(victim), wire.encode(msg)

    def _redirect(self, victim: str, other: str) -> tuple | None:
        """The counterpart's announce, word for word, from another host (a copy: no news)."""
        real = self.known.get(other)
        if real is None:
            return None
        index = self.rng.randrange(self.pool)
        return (spoofed_host(index), 40000 + index), self._discovery(victim), wire.encode(real.last)

    def _hello(self, victim: str, other: str) -> tuple | None:
        """A Hello claiming the counterpart's name, a fresh commitment each time: half under the
        counterpart's own incarnation from its own address, half from made-up ones."""
        target, real = self.known.get(victim), self.known.get(other)
        if target is None:
            return None
        if real is not None and self.rng.random() < 0.5:
            sender, src = real.incarnation, real.addr
        else:
            index = self.rng.randrange(self.pool)
            sender, src = self.rng.randrange(1, max(2, target.incarnation)), (spoofed_host(index), 40000 + index)
        msg = wire.padded(wire.Hello(sender, target.incarnation, target.code_flag, other, "",
                                     self.rng.randbytes(32), self.rng.randbytes(16)))
        return src, target.addr, wire.encode(msg)

    def _reply(self, victim: str, other: str) -> tuple | None:
        """A Reply from the counterpart's address and incarnation, to a Hello nobody sent."""
        target, real = self.known.get(victim), self.known.get(other)
        if target is None or real is None:
            return None
        share = self.rng.randbytes(32) if target.code_flag else b""
        msg = wire.Reply(real.incarnation, target.incarnation, target.code_flag, other, self.rng.randbytes(16),
                         self.keys[self.rng.randrange(len(self.keys))], self.rng.randbytes(16), share)
        return real.addr, target.addr, wire.encode(msg)

    def _junk(self, victim: str, other: str) -> tuple | None:
        """Random bytes, a valid datagram cut short, or one with a bit flipped; to either socket."""
        target, real = self.known.get(victim), self.known.get(other)
        pick = self.rng.random()
        if real is not None and pick < 0.6:
            whole = wire.encode(real.last) if pick < 0.3 else wire.encode(wire.padded(wire.Hello(
                real.incarnation, target.incarnation if target else 1, 0, other, "", self.rng.randbytes(32),
                self.rng.randbytes(16))))
            if pick < 0.45:
                data = whole[:self.rng.randrange(1, len(whole))]
            else:
                flipped = bytearray(whole)
                flipped[self.rng.randrange(len(flipped))] ^= 1 << self.rng.randrange(8)
                data = bytes(flipped)
            src = real.addr
        else:
            data = self.rng.randbytes(self.rng.randrange(1, 300))
            if self.rng.random() < 0.5:
                data = wire.MAGIC + bytes([wire.VERSION]) + data
            index = self.rng.randrange(self.pool)
            src = (spoofed_host(index), 40000 + index)
        dst = target.addr if target is not None and self.rng.random() < 0.5 else self._discovery(victim)
        return src, dst, data


# ============================================================== the forging loop (inside mallory)

def _listener(port: int) -> socket.socket:
    """Hear the broadcast announces of the LAN, as any host can."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("", port))
    sock.setblocking(False)
    return sock


def _on_lan(addr: str) -> bool:
    return ipaddress.ip_address(addr) in LAN_NET


def inside_the_lan(routes: str | None = None) -> bool:
    """Whether this process runs on a host of the namespace LAN: the LAN's subnet is routed
    through ``lan0`` and nothing leads anywhere else (no default route).  The forger refuses
    to send otherwise: 10.77.0.0/24 outside the namespaces could be someone's real network."""
    text = Path("/proc/net/route").read_text() if routes is None else routes
    rows = [line.split() for line in text.splitlines()[1:] if line.strip()]
    net = socket.inet_aton(str(LAN_NET.network_address))[::-1].hex().upper()
    on_lan = any(r[0] == "lan0" and r[1] == net for r in rows)
    default = any(r[1] == "00000000" for r in rows)
    return on_lan and not default


def _stop_on_input(stop: threading.Event) -> None:
    """``stop`` on standard input, or its end, ends the flood."""
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()


def forge(kind: str, victims: dict[str, str], rate: float, seconds: float, count: int, code: bool,
          pool: int, seed: int | None) -> dict[str, object]:
    """Flood at ``rate`` until ``seconds`` pass, ``count`` datagrams went out, or input says stop."""
    seconds, count = min(seconds, MAX_SECONDS), min(count, MAX_DATAGRAMS)
    forger = Forger(kind, victims, code, random.Random(seed), pool)
    listener = _listener(DISCOVERY_PORT)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    stop = threading.Event()
    threading.Thread(target=_stop_on_input, args=(stop,), daemon=True).start()
    print("forging", flush=True)
    cpu0, start = os.times(), time.monotonic()
    end = start + seconds
    sent = errors = 0
    first = last = None
    due_from = None           # when the first forgeable datagram was due: pacing starts there
    while sent < count and not stop.is_set():
        now = time.monotonic()
        if now >= end:
            break
        _drain(listener, forger)
        if due_from is None:
            made = forger.next()
            if made is None:
                select.select([listener], [], [], 0.005)
                continue
            due_from, pending = now, made
        else:
            pending = None
        due = int((now - due_from) * rate) + 1
        while sent < min(due, count):
            made = pending or forger.next()
            pending = None
            if made is None:
                break
            src, dst, data = made
            if not (_on_lan(src[0]) and _on_lan(dst[0])):
                raise SystemExit(f"refusing to send outside the namespace LAN: {src} -> {dst}")
            try:
                raw.sendto(ipv4_udp(src, dst, data, sent), (dst[0], 0))
            except OSError:
                errors += 1
            sent += 1
            last = time.monotonic()
            first = first or last
        time.sleep(0.001)
    cpu1 = os.times()
    span = (last - first) if first and last and last > first else 0.0
    return {"kind": kind, "sent": sent, "errors": errors, "seconds": round(span, 3),
            "rate": round(sent / span, 1) if span else 0.0, "asked": rate,
            "cpu": round((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system), 3),
            "learned": sorted(forger.known)}


def _drain(listener: socket.socket, forger: Forger) -> None:
    for _ in range(64):
        try:
            data, addr = listener.recvfrom(2048)
        except BlockingIOError:
            return
        forger.learn(data, addr)


def forge_argv(kind: str, victims: dict[str, str], *, rate: float = DEFAULT_RATE, seconds: float = 60.0,
               code: bool = False, pool: int = 16, seed: int | None = None) -> list[str]:
    """The command line that runs the forger (to be run inside the attacker's namespace)."""
    argv = [sys.executable, str(Path(__file__).resolve()), "forge", "--kind", kind, "--rate", str(rate),
            "--seconds", str(seconds), "--pool", str(pool),
            "--victims", ",".join(f"{n}={a}" for n, a in victims.items())]
    if code:
        argv.append("--code")
    if seed is not None:
        argv += ["--seed", str(seed)]
    return argv


# ============================================================== measuring a lanpay process

def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc (KiB); 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ============================================================== one scenario

@dataclass
class Outcome:
    """What one run of one kind showed; times are seconds on ``time.monotonic``."""

    kind: str
    code: bool
    welcomed: dict[str, float] = field(default_factory=dict)   # from both started (or from the flood's end)
    from_flood_end: bool = False
    paired_during_flood: bool = False
    rss_start: dict[str, int] = field(default_factory=dict)    # KiB, once welcomed
    rss_end: dict[str, int] = field(default_factory=dict)
    rss_max: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)        # CPU seconds during the run, mallory too
    forged: dict[str, object] = field(default_factory=dict)    # the forger's summary (first flood)
    soak: dict[str, object] = field(default_factory=dict)      # the forger's summary of the soak flood
    seconds: float = 0.0              # wall time the CPU figures cover (the soak, or the whole wait)

    @property
    def both_welcomed(self) -> float | None:
        return max(self.welcomed.values()) if len(self.welcomed) == 2 else None


Proc = object   # netlan.LanpayProcess (imported lazily: tests/ is on the path only when run from a checkout)
Spawn = Callable[..., "Proc"]


def welcomed_times(procs: dict[str, Proc], since: float, deadline: float,
                   until: Callable[[], bool] | None = None) -> dict[str, float]:
    """Poll each process's output for the welcome line; return when each showed it (seconds after
    ``since``).  Returns early, with what it has, when ``until()`` turns true."""
    found: dict[str, float] = {}
    marks = {name: 0 for name in procs}
    limit = time.monotonic() + deadline
    while len(found) < len(procs) and time.monotonic() < limit:
        for name, proc in procs.items():
            lines = proc.lines  # type: ignore[attr-defined]
            if name not in found and any(WELCOME.match(l) for l in lines[marks[name]:]):
                found[name] = time.monotonic() - since
            marks[name] = len(lines)
        if until is not None and until():
            break
        time.sleep(0.005)
    return found


def run_kind(kind: str, code: bool, lan: object, spawn: Spawn, attacker: Spawn, *, rate: float = DEFAULT_RATE,
             soak: float = 3.0, namesake_flood: float = 4.0, deadline: float = WAIT,
             words: str = "blue piano seven", lanpay_args: Sequence[str] = ()) -> tuple[Outcome, dict[str, Proc]]:
    """One scenario: forger on mallory, then alice and bob; both welcomed, a payment each way during a
    flood, a soak while RSS is sampled.  Returns the figures and the processes (for the caller to check)."""
    victims = {"alice": lan["alice"].addr, "bob": lan["bob"].addr}  # type: ignore[index]
    out = Outcome(kind, code)
    extra = (*(("--code", words) if code else ()), *lanpay_args)
    holds_off = kind == NAMESAKE and not code
    flood = namesake_flood if holds_off else deadline + soak + 10.0
    forger = attacker("mallory", forge_argv(kind, victims, rate=rate, seconds=flood, code=code))
    forger.expect(r"^forging$")  # type: ignore[attr-defined]
    cpu_m0 = cpu_seconds(forger.proc.pid)  # type: ignore[attr-defined]
    t0 = time.monotonic()
    procs = {name: spawn(name, "--name", name, *extra, netns=lan[name].netns)  # type: ignore[index]
             for name in ("alice", "bob")}
    if holds_off:
        early = welcomed_times(procs, t0, flood + 5.0, until=lambda: forger.proc.poll() is not None)  # type: ignore
        out.paired_during_flood = bool(early) and forger.proc.poll() is None  # type: ignore[attr-defined]
        forger.wait(deadline)  # type: ignore[attr-defined]
        out.forged = _summary(forger)
        stopped = time.monotonic()
        out.welcomed = welcomed_times(procs, stopped, deadline)
        out.from_flood_end = True
        forger = attacker("mallory", forge_argv(kind, victims, rate=rate, seconds=soak + deadline + 10.0,
                                                code=code))
        forger.expect(r"^forging$")  # type: ignore[attr-defined]
    else:
        out.welcomed = welcomed_times(procs, t0, deadline)
    if len(out.welcomed) < 2:        # not paired: still say what the flood and the peers cost
        out.rss_end = {name: rss_kib(p.proc.pid) for name, p in procs.items()}  # type: ignore[attr-defined]
        out.rss_max = dict(out.rss_end)
        out.cpu = {name: round(cpu_seconds(p.proc.pid), 2) for name, p in procs.items()}  # type: ignore
        out.cpu["mallory"] = round(cpu_seconds(forger.proc.pid) - cpu_m0, 2)  # type: ignore[attr-defined]
        out.seconds = round(time.monotonic() - t0, 2)
        forger.send("stop")  # type: ignore[attr-defined]
        forger.wait(deadline)  # type: ignore[attr-defined]
        out.soak = _summary(forger)
        return out, procs
    cpu0 = {name: cpu_seconds(p.proc.pid) for name, p in procs.items()}  # type: ignore[attr-defined]
    pids = {name: p.proc.pid for name, p in procs.items()}  # type: ignore[attr-defined]
    out.rss_start = {name: rss_kib(pid) for name, pid in pids.items()}
    out.rss_max = dict(out.rss_start)
    soak_from = time.monotonic()
    procs["alice"].send("pay 10.00 during the flood")  # type: ignore[attr-defined]
    procs["bob"].send("pay 3.25")  # type: ignore[attr-defined]
    while time.monotonic() < soak_from + soak:
        for name, pid in pids.items():
            out.rss_max[name] = max(out.rss_max[name], rss_kib(pid))
        time.sleep(0.25)
    out.rss_end = {name: rss_kib(pid) for name, pid in pids.items()}
    out.cpu = {name: round(cpu_seconds(pid) - cpu0[name], 2) for name, pid in pids.items()}
    out.cpu["mallory"] = round(cpu_seconds(forger.proc.pid) - cpu_m0, 2)  # type: ignore[attr-defined]
    out.seconds = round(time.monotonic() - soak_from, 2)
    forger.send("stop")  # type: ignore[attr-defined]
    forger.wait(deadline)  # type: ignore[attr-defined]
    summary = _summary(forger)
    if holds_off:
        out.soak = summary
    else:
        out.forged = summary
    return out, procs


def _summary(forger: Proc) -> dict[str, object]:
    """The forger's last line: its JSON summary."""
    line = forger.expect(r"^\{.*\}$").group(0)  # type: ignore[attr-defined]
    return json.loads(line)


# ============================================================== the table

def table(outcomes: Sequence[Outcome], rate: float) -> str:
    """The figures as a Markdown table, one row per kind and mode."""
    head = ("| kind | --code | both welcomed | bound met | RSS alice start→end (max) | RSS bob start→end (max) "
            "| sent/s (asked) | CPU s mallory / alice / bob |")
    rows = [head, "|" + "---|" * 8]
    for o in outcomes:
        both = o.both_welcomed
        when = "not within the wait" if both is None else f"{both:.2f} s" + (" after flood end" if o.from_flood_end else "")
        if o.paired_during_flood:
            when += " (paired DURING the flood)"
        mib = {n: (o.rss_start.get(n, 0) / 1024, o.rss_end.get(n, 0) / 1024, o.rss_max.get(n, 0) / 1024)
               for n in ("alice", "bob")}
        rss = [(f"{s:.1f}" if s else "-") + f"→{e:.1f} ({m:.1f}) MiB" for s, e, m in mib.values()]
        f = o.soak or o.forged
        sent = f"{f.get('rate', 0):.0f} ({rate:.0f})" if f else "-"
        if f and float(f.get("rate", 0)) < 0.95 * rate:    # type: ignore[arg-type]
            sent += " Python fell behind"
        cpu = " / ".join(f"{o.cpu.get(n, 0):.2f}" for n in ("mallory", "alice", "bob"))
        bound = NAMESAKE_BOUND if o.from_flood_end else BOUND
        met = "yes" if both is not None and both <= bound and not o.paired_during_flood else f"NO (> {bound:.0f} s)"
        rows.append(f"| {o.kind} | {'yes' if o.code else 'no'} | {when} | {met} | {rss[0]} | {rss[1]} | {sent} "
                    f"| {cpu} in {o.seconds:.1f} s |")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    """Build the LAN once and run every kind asked for, in both modes; print the table."""
    import netlan
    import netns_lan
    kinds = [k for k in args.kinds.split(",") if k]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        print(f"unknown kinds: {bad}; choose from {', '.join(KINDS)}", file=sys.stderr)
        return 2
    modes = {"both": (False, True), "no": (False,), "yes": (True,)}[args.code]
    outcomes = []
    with netns_lan.Lan(["alice", "bob", "mallory"]) as lan:
        for kind in kinds:
            for code in modes:
                procs: list[netlan.LanpayProcess] = []

                def spawn(label: str, *a: str, netns: str) -> netlan.LanpayProcess:
                    p = netlan.LanpayProcess(label, netlan.lanpay_command(a, netns=netns))
                    procs.append(p)
                    return p

                def attacker(host: str, argv: list[str]) -> netlan.LanpayProcess:
                    p = netlan.LanpayProcess(f"{host}-forge", lan.exec_argv(host, argv))
                    procs.append(p)
                    return p

                try:
                    outcome, peers = run_kind(kind, code, lan, spawn, attacker, rate=args.rate, soak=args.soak,
                                              lanpay_args=args.lanpay_arg)
                    if args.transcripts:
                        for p in procs:
                            print(p.transcript(), file=sys.stderr)
                    outcomes.append(outcome)
                    _report_balances(outcome, peers)
                finally:
                    for p in procs:
                        p.stop()
                print(table([outcome], args.rate).splitlines()[-1], flush=True)
    print()
    print(table(outcomes, args.rate))
    return 0


def _report_balances(outcome: Outcome, peers: dict[str, Proc]) -> None:
    """Ask both for their balance once the flood is over: the payments must have landed once each."""
    if outcome.both_welcomed is None:
        return
    for name, proc in peers.items():
        try:
            proc.expect(r"You were paid", 10)  # type: ignore[attr-defined]
            got = proc.balance(10)  # type: ignore[attr-defined]
        except AssertionError:
            got = None
        want = {"alice": -675, "bob": 675}[name]
        if got != want:
            print(f"  {outcome.kind}: {name}'s balance is {got}, expected {want} cents", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("forge", help="the attacker: run inside its namespace (root)")
    f.add_argument("--kind", choices=KINDS, required=True)
    f.add_argument("--victims", required=True, help="name=ipv4,... of the real peers")
    f.add_argument("--rate", type=float, default=DEFAULT_RATE, help="datagrams per second (default %(default)s)")
    f.add_argument("--seconds", type=float, default=10.0, help=f"flood at most this long (capped at {MAX_SECONDS:.0f})")
    f.add_argument("--count", type=int, default=MAX_DATAGRAMS, help="and at most this many datagrams")
    f.add_argument("--code", action="store_true", help="the peers use --code (forged flags follow theirs once heard)")
    f.add_argument("--pool", type=int, default=16, help="forged identities and source hosts cycled through")
    f.add_argument("--seed", type=int)
    r = sub.add_parser("run", help="build a namespace LAN, run each kind, print the table (root)")
    r.add_argument("--kinds", default=",".join(KINDS), help="comma-separated (default: all)")
    r.add_argument("--code", choices=("both", "no", "yes"), default="both", help="with --code, without, or both")
    r.add_argument("--rate", type=float, default=DEFAULT_RATE)
    r.add_argument("--soak", type=float, default=10.0, help="seconds of flood after pairing, sampling RSS")
    r.add_argument("--lanpay-arg", action="append", default=[], help="pass this to both lanpays (e.g. -vv)")
    r.add_argument("--transcripts", action="store_true", help="print what each process printed, on stderr")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if os.geteuid() != 0:
        print("raw sockets and network namespaces need root: run with sudo", file=sys.stderr)
        return 1
    if args.cmd == "forge":
        if not inside_the_lan():
            print("forge runs only on a host of the namespace LAN (tools/netns_lan.py exec HOST -- ...)",
                  file=sys.stderr)
            return 2
        victims = dict(item.split("=", 1) for item in args.victims.split(","))
        if not all(_on_lan(a) for a in victims.values()):
            print(f"victims must be on the namespace LAN {LAN_NET}", file=sys.stderr)
            return 2
        summary = forge(args.kind, victims, args.rate, args.seconds, args.count, args.code, args.pool, args.seed)
        print(json.dumps(summary), flush=True)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
