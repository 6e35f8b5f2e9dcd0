#!/usr/bin/env python3
"""A virtual LAN made of Linux network namespaces, for running lanpay across hosts.

Every host is a namespace ``lp-<tag>-<name>`` with a loopback and one veth,
``lan0``.  The other end of each veth sits in a *switch* namespace that holds a
bridge, so no interface of the machine's own namespace is created, renamed or
attached to anything: traffic on this LAN cannot reach the real network.  Hosts
on the far side (``far``) live on a second subnet, reached through a router
namespace with forwarding on; broadcasts do not cross it, which is exactly the
case ``--connect`` exists for.

Loss is an nftables rule in the host's own namespace that drops a random share
of UDP datagrams arriving on (or leaving) ``lan0``.  With ``flood`` the bridge
learns no addresses and so floods every frame to every port, which lets a host
watch the traffic of the others, as an attacker on a hub would.

Usage as a library (the tests)::

    with Lan(["alice", "bob"], loss=25) as lan:
        subprocess.run(lan.exec_argv("alice", ["ip", "-br", "addr"]))

and from a shell (needs root)::

    python3 tools/netns_lan.py up --hosts alice,bob --loss 25
    python3 tools/netns_lan.py exec alice -- ip -br addr
    python3 tools/netns_lan.py down
"""

from __future__ import annotations

import argparse
import atexit
import ipaddress
import os
import re
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

PREFIX = "lp-"
NEAR_SUBNET = "10.77.0.0/24"
FAR_SUBNET = "10.78.0.0/24"
HOST_IFACE = "lan0"
LOSS_TABLE = "lanpay_loss"
BLOCK_TABLE = "lanpay_block"
UDP_HEADER = 8
COMMAND_TIMEOUT = 15.0

_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")
_TAG = re.compile(r"[a-z0-9]{1,10}")

#: Every namespace this process created and has not deleted yet.  The test
#: guard accepts a lanpay command line only if it runs in one of these.
CREATED: set[str] = set()


class LanError(RuntimeError):
    """Building or tearing down the virtual LAN failed; the message says which step."""


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True,
        timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run one ``ip``/``nft`` command, bounded in time; raise LanError with its stderr."""
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LanError(f"timed out after {timeout:.0f} s: {' '.join(argv)}") from exc
    except FileNotFoundError as exc:
        raise LanError(f"command not found: {argv[0]} (install iproute2 / nftables)") from exc
    if check and done.returncode != 0:
        raise LanError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def new_tag() -> str:
    """A short random tag so that parallel runs never pick the same namespace names."""
    return secrets.token_hex(3)


def default_tag() -> str:
    """The tag when none is given: one per user (under sudo, the user who ran sudo).

    Two people on one machine then never tear down each other's LAN, while ``up``,
    ``exec`` and ``down`` run as separate commands by one person still agree.
    """
    uid = os.environ.get("SUDO_UID", "")
    return f"u{uid if uid.isdigit() else os.getuid()}"[:10]


def netns_name(tag: str, name: str) -> str:
    """The namespace name for ``name`` in the LAN tagged ``tag``."""
    return f"{PREFIX}{tag}-{name}"


def list_namespaces() -> list[str]:
    """Names of every network namespace known to ``ip netns``."""
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def add_namespace(name: str) -> None:
    """Create a namespace with only its loopback, up, and IPv6 off (quiet captures)."""
    if not name.startswith(PREFIX):
        raise LanError(f"refusing a namespace name without the {PREFIX!r} prefix: {name}")
    run(["ip", "netns", "add", name])
    CREATED.add(name)
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    _disable_ipv6(name)


def _disable_ipv6(name: str) -> None:
    """Turn IPv6 off so router solicitations and DAD do not mix into captures."""
    script = ("for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 "
              "/proc/sys/net/ipv6/conf/default/disable_ipv6; do "
              "[ -w \"$f\" ] && echo 1 > \"$f\"; done; true")
    run(["ip", "netns", "exec", name, "sh", "-c", script])


def set_sysctl(name: str, key: str, value: str) -> None:
    """Write one sysctl inside a namespace (without needing procps installed)."""
    path = "/proc/sys/" + key.replace(".", "/")
    run(["ip", "netns", "exec", name, "sh", "-c", f"echo {value} > {path}"])


def namespace_pids(name: str) -> list[int]:
    """Processes still running inside a namespace (they would keep it alive)."""
    done = run(["ip", "netns", "pids", name], check=False)
    return [int(tok) for tok in done.stdout.split() if tok.isdigit()]


def delete_namespace(name: str) -> None:
    """Kill what runs inside ``name`` and delete it; quietly do nothing if it is gone."""
    if not name.startswith(PREFIX):
        raise LanError(f"refusing to delete a namespace not made here: {name}")
    for pid in namespace_pids(name):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    done = run(["ip", "netns", "del", name], check=False)
    if done.returncode != 0 and name in list_namespaces():
        raise LanError(f"could not delete namespace {name}: {done.stderr.strip()}")
    CREATED.discard(name)


@dataclass(frozen=True)
class Host:
    """One machine on the virtual LAN."""

    name: str
    netns: str
    addr: str
    prefixlen: int
    far: bool

    @property
    def broadcast(self) -> str:
        """The directed broadcast address of the host's subnet."""
        net = ipaddress.ip_interface(f"{self.addr}/{self.prefixlen}").network
        return str(net.broadcast_address)


def _loss_ruleset(inbound: int, outbound: int) -> str:
    """An nftables table that drops a random share of UDP on the LAN interface."""
    rules = []
    for chain, hook, direction, pct in (("lossin", "input", "iifname", inbound),
                                        ("lossout", "output", "oifname", outbound)):
        chance = f"numgen random mod 100 < {pct} " if pct < 100 else ""
        body = f'{direction} "{HOST_IFACE}" meta l4proto udp {chance}counter drop' if pct else ""
        rules.append(f"  chain {chain} {{ type filter hook {hook} priority 0; policy accept;\n"
                     f"    {body}\n  }}")
    return (f"table inet {LOSS_TABLE}\ndelete table inet {LOSS_TABLE}\n"
            f"table inet {LOSS_TABLE} {{\n" + "\n".join(rules) + "\n}\n")


def _block_ruleset(to: str, min_bytes: int) -> str:
    """An nftables table that drops every UDP datagram leaving for ``to`` on the LAN
    interface, or only those whose payload is at least ``min_bytes`` long."""
    size = f"udp length >= {min_bytes + UDP_HEADER} " if min_bytes else "meta l4proto udp "
    body = f'oifname "{HOST_IFACE}" ip daddr {to} {size}counter drop'
    return (f"table inet {BLOCK_TABLE}\ndelete table inet {BLOCK_TABLE}\n"
            f"table inet {BLOCK_TABLE} {{\n  chain blockout {{ type filter hook output priority 0; "
            f"policy accept;\n    {body}\n  }}\n}}\n")


def _check_percent(pct: int) -> int:
    """Loss is a whole percentage from 0 to 100."""
    if not 0 <= pct <= 100:
        raise LanError(f"loss must be between 0 and 100 percent, not {pct}")
    return pct


class Lan:
    """Namespaced hosts on one bridge (plus, optionally, a routed second subnet).

    Use it as a context manager, or call :meth:`up` and :meth:`down`; ``down``
    is idempotent and also runs at interpreter exit, so a failed test leaves no
    namespace behind.
    """

    def __init__(self, hosts: Sequence[str], *, far: Sequence[str] = (), tag: str | None = None,
                 loss: int | Mapping[str, int] = 0, loss_out: int | Mapping[str, int] = 0,
                 flood: bool = False) -> None:
        self.tag = tag or new_tag()
        if not _TAG.fullmatch(self.tag):
            raise LanError(f"a tag is 1-10 lowercase letters or digits, not {self.tag!r}")
        names = list(hosts) + list(far)
        bad = [n for n in names if not _NAME.fullmatch(n) or n in ("sw0", "sw1", "router")]
        if bad or len(set(names)) != len(names) or not hosts:
            raise LanError(f"host names must be distinct, short, lowercase words: {names}")
        if len(hosts) > 250 or len(far) > 250:
            raise LanError("at most 250 hosts per subnet")
        self.flood = flood
        self.hosts: dict[str, Host] = {}
        for subnet, group, is_far in ((NEAR_SUBNET, hosts, False), (FAR_SUBNET, far, True)):
            net = ipaddress.ip_network(subnet)
            for index, name in enumerate(group, start=1):
                self.hosts[name] = Host(name, netns_name(self.tag, name),
                                        str(net.network_address + index), net.prefixlen, is_far)
        self._loss = {n: self._pick(loss, n) for n in self.hosts}
        self._loss_out = {n: self._pick(loss_out, n) for n in self.hosts}
        self._up = False

    @staticmethod
    def _pick(value: int | Mapping[str, int], name: str) -> int:
        """A per-host loss from either one number for all or a mapping by name."""
        return _check_percent(value.get(name, 0) if isinstance(value, Mapping) else value)

    @property
    def has_router(self) -> bool:
        """A router exists only when some host lives on the far subnet."""
        return any(h.far for h in self.hosts.values())

    def namespaces(self) -> list[str]:
        """Every namespace this LAN owns, switches and router included."""
        extra = ["sw0"] + (["sw1", "router"] if self.has_router else [])
        return [h.netns for h in self.hosts.values()] + [netns_name(self.tag, e) for e in extra]

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def __enter__(self) -> "Lan":
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> "Lan":
        """Build the namespaces, bridges, links and rules; on any failure, undo all."""
        atexit.register(self.down)
        self._up = True
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        """The construction steps, in an order where each one's inputs exist."""
        for ns in self.namespaces():
            add_namespace(ns)
        self._make_switch("sw0")
        if self.has_router:
            self._make_switch("sw1")
            self._make_router()
        for index, host in enumerate(self.hosts.values()):
            self._attach(host, f"h{index}")
            if self._loss[host.name] or self._loss_out[host.name]:
                self.set_loss(host.name, self._loss[host.name], self._loss_out[host.name])

    def _make_switch(self, switch: str) -> None:
        """A bridge in its own namespace; with ``flood`` it learns nothing, like a hub."""
        ns = netns_name(self.tag, switch)
        run(["ip", "-n", ns, "link", "add", "br0", "type", "bridge", "stp_state", "0"])
        run(["ip", "-n", ns, "link", "set", "br0", "up"])

    def _plug(self, switch: str, port: str) -> None:
        """Attach a switch-side veth end to the bridge and bring it up."""
        ns = netns_name(self.tag, switch)
        run(["ip", "-n", ns, "link", "set", port, "master", "br0"])
        if self.flood:
            run(["ip", "-n", ns, "link", "set", port, "type", "bridge_slave",
                 "learning", "off", "flood", "on"])
        run(["ip", "-n", ns, "link", "set", port, "up"])

    def _attach(self, host: Host, port: str) -> None:
        """One veth from the host's namespace straight into its switch's namespace."""
        switch = netns_name(self.tag, "sw1" if host.far else "sw0")
        run(["ip", "-n", host.netns, "link", "add", HOST_IFACE, "type", "veth",
             "peer", "name", port, "netns", switch])
        self._plug("sw1" if host.far else "sw0", port)
        run(["ip", "-n", host.netns, "addr", "add", f"{host.addr}/{host.prefixlen}",
             "broadcast", host.broadcast, "dev", HOST_IFACE])
        run(["ip", "-n", host.netns, "link", "set", HOST_IFACE, "up"])
        if self.has_router:
            gateway = self._gateway(host.far)
            run(["ip", "-n", host.netns, "route", "add", "default", "via", gateway])

    @staticmethod
    def _gateway(far: bool) -> str:
        """The router's address on a subnet: the last usable one."""
        net = ipaddress.ip_network(FAR_SUBNET if far else NEAR_SUBNET)
        return str(net.broadcast_address - 1)

    def _make_router(self) -> None:
        """A namespace with a leg on each subnet and IPv4 forwarding on."""
        router = netns_name(self.tag, "router")
        for index, (switch, far) in enumerate((("sw0", False), ("sw1", True))):
            leg, port = f"leg{index}", f"r{index}"
            run(["ip", "-n", router, "link", "add", leg, "type", "veth",
                 "peer", "name", port, "netns", netns_name(self.tag, switch)])
            self._plug(switch, port)
            plen = ipaddress.ip_network(FAR_SUBNET if far else NEAR_SUBNET).prefixlen
            run(["ip", "-n", router, "addr", "add", f"{self._gateway(far)}/{plen}", "dev", leg])
            run(["ip", "-n", router, "link", "set", leg, "up"])
        set_sysctl(router, "net.ipv4.ip_forward", "1")

    def set_loss(self, name: str, inbound: int, outbound: int = 0) -> None:
        """Drop ``inbound``% of UDP arriving at host ``name`` and ``outbound``% leaving it."""
        host = self.hosts[name]
        self._loss[name], self._loss_out[name] = _check_percent(inbound), _check_percent(outbound)
        run(["ip", "netns", "exec", host.netns, "nft", "-f", "-"],
            stdin=_loss_ruleset(inbound, outbound))

    def block(self, name: str, to: str, min_bytes: int = 0) -> None:
        """One-way: drop UDP that host ``name`` sends to host ``to`` (a name on this LAN);
        with ``min_bytes``, only datagrams with at least that much payload, so that
        small ones (keepalives) pass and larger ones (a payment with a memo) are lost."""
        if not 0 <= min_bytes <= 65507:
            raise LanError(f"a UDP payload size is between 0 and 65507 bytes, not {min_bytes}")
        ruleset = _block_ruleset(self.hosts[to].addr, min_bytes)
        run(["ip", "netns", "exec", self.hosts[name].netns, "nft", "-f", "-"], stdin=ruleset)

    def unblock(self, name: str) -> None:
        """Remove what :meth:`block` set on host ``name``; nothing happens if none was set."""
        run(["ip", "netns", "exec", self.hosts[name].netns, "nft", "delete", "table", "inet",
             BLOCK_TABLE], check=False)

    def blocked(self, name: str) -> int:
        """How many datagrams the block on host ``name`` has dropped so far."""
        out = run(["ip", "netns", "exec", self.hosts[name].netns, "nft", "list", "table",
                   "inet", BLOCK_TABLE], check=False).stdout
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", out))

    def dropped(self, name: str) -> int:
        """How many UDP datagrams the loss rules of host ``name`` have dropped so far."""
        out = run(["ip", "netns", "exec", self.hosts[name].netns, "nft", "list", "table",
                   "inet", LOSS_TABLE], check=False).stdout
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", out))

    def exec_argv(self, name: str, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` on host ``name``."""
        return ["ip", "netns", "exec", self.hosts[name].netns, *argv]

    def down(self) -> None:
        """Delete every namespace of this LAN (and what still runs in them). Idempotent."""
        if not self._up:
            return
        errors = []
        for ns in reversed(self.namespaces()):
            try:
                delete_namespace(ns)
            except LanError as exc:
                errors.append(str(exc))
        self._up = False
        atexit.unregister(self.down)
        if errors:
            raise LanError("; ".join(errors))


def down_tag(tag: str) -> list[str]:
    """Delete every namespace carrying ``tag``, whoever built it; return their names."""
    mine = [ns for ns in list_namespaces() if ns.startswith(netns_name(tag, ""))]
    for ns in mine:
        delete_namespace(ns)
    return mine


def _split_names(text: str) -> list[str]:
    """``"alice,bob"`` → ``["alice", "bob"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _cmd_up(args: argparse.Namespace) -> int:
    """Build a LAN that outlives this command; print where each host is."""
    if any(ns.startswith(netns_name(args.tag, "")) for ns in list_namespaces()):
        print(f"a LAN tagged {args.tag!r} is already up; run `down` first", file=sys.stderr)
        return 1
    lan = Lan(_split_names(args.hosts), far=_split_names(args.far), tag=args.tag,
              loss=args.loss, loss_out=args.loss_out, flood=args.flood)
    lan.up()
    atexit.unregister(lan.down)  # it is meant to stay up until `down`
    for host in lan.hosts.values():
        side = "far subnet, via router" if host.far else "bridge"
        print(f"{host.name:<12} {host.netns:<24} {host.addr}/{host.prefixlen} ({side})")
    print(f"run a command on a host: {sys.argv[0]} exec --tag {args.tag} HOST -- COMMAND")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    """Remove the LAN tagged ``--tag``; succeed also when there is nothing to remove."""
    for ns in down_tag(args.tag):
        print(f"deleted {ns}")
    return 0


def _cmd_exec(args: argparse.Namespace) -> int:
    """Replace this process with the command, inside the host's namespace."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    ns = netns_name(args.tag, args.host)
    if ns not in list_namespaces():
        print(f"no host {args.host!r} in a LAN tagged {args.tag!r}", file=sys.stderr)
        return 1
    if not command:
        print("give a command after --", file=sys.stderr)
        return 2
    os.execvp("ip", ["ip", "netns", "exec", ns, *command])
    return 127  # not reached


def _cmd_list(args: argparse.Namespace) -> int:
    """Show every namespace any virtual LAN left on this machine."""
    for ns in list_namespaces():
        if ns.startswith(PREFIX):
            print(ns)
    return 0


def parser() -> argparse.ArgumentParser:
    """The command-line interface: up, down, exec, list."""
    top = argparse.ArgumentParser(description="A virtual LAN in network namespaces (needs root).")
    sub = top.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build the LAN")
    up.add_argument("--hosts", default="alice,bob", help="comma-separated host names (default: %(default)s)")
    up.add_argument("--far", default="", help="hosts on a second subnet behind a router (default: none)")
    up.add_argument("--loss", type=int, default=0, help="percent of UDP dropped on arrival (default: %(default)s)")
    up.add_argument("--loss-out", type=int, default=0, help="percent of UDP dropped on sending (default: %(default)s)")
    up.add_argument("--flood", action="store_true", help="bridge floods every frame, like a hub (default: a learning switch)")
    up.set_defaults(func=_cmd_up)
    down = sub.add_parser("down", help="remove the LAN")
    down.set_defaults(func=_cmd_down)
    ex = sub.add_parser("exec", help="run a command on one host")
    ex.add_argument("host")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    ex.set_defaults(func=_cmd_exec)
    ls = sub.add_parser("list", help="list namespaces left by any LAN")
    ls.set_defaults(func=_cmd_list)
    for each in (up, down, ex):
        each.add_argument("--tag", default=default_tag(),
                          help="names namespaces lp-TAG-HOST (default: %(default)s, one per user, "
                               "so two people on one machine keep their LANs apart)")
    return top


def main(argv: Iterable[str] | None = None) -> int:
    """Entry point; errors become one line on stderr and status 1."""
    args = parser().parse_args(None if argv is None else list(argv))
    if os.geteuid() != 0:
        print("network namespaces need root: run with sudo", file=sys.stderr)
        return 1
    try:
        return int(args.func(args))
    except LanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
