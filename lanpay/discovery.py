"""Where announces go and where they are heard.

This is the only module that asks the operating system about interfaces
(through ``netifaces``).  The choice of broadcast targets is a pure function over
an injected adapter list, so it is tested without touching the machine, and the
one place that reads real interfaces stays a few lines long.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

#: One interface as netifaces describes it: its name and its IPv4 address entries
#: (``{'addr': ..., 'netmask': ..., 'broadcast'|'peer': ...}``).
Adapter = tuple[str, Sequence[Mapping[str, str]]]

#: Where the loopback interface's announces go: every process on this host hears it.
LOOPBACK_BROADCAST = "127.255.255.255"


class InterfaceError(ValueError):
    """The interfaces asked for cannot be used; the message is fit for the user."""


def broadcast_targets(adapters: Iterable[Adapter], names: Sequence[str] = ()) -> list[str]:
    """The IPv4 broadcast addresses to announce on, without duplicates, in order.

    With no ``names`` every interface that has an IPv4 address is used (that is
    the point: the counterpart can be behind any of them).  Naming an interface
    that does not exist, or that has no IPv4 address, is an error rather than a
    silent no-op, because then nobody would ever be found.
    """
    table = {name: list(addrs) for name, addrs in adapters}
    wanted = list(dict.fromkeys(names)) or list(table)
    unknown = [name for name in wanted if name not in table]
    if unknown:
        known = ", ".join(table) or "none"
        raise InterfaceError(f"no such interface {unknown[0]!r} (available: {known})")
    targets: list[str] = []
    for name in wanted:
        found = [b for b in map(_broadcast_of, table[name]) if b is not None]
        if not found and names:
            raise InterfaceError(f"interface {name!r} has no IPv4 broadcast address")
        targets.extend(b for b in found if b not in targets)
    if not targets:
        raise InterfaceError("no IPv4 interface to announce on")
    return targets


def _broadcast_of(entry: Mapping[str, str]) -> str | None:
    """The broadcast address of one IPv4 address entry, computed when not given.

    netifaces reports ``peer`` rather than ``broadcast`` for loopback and
    point-to-point links, so the address is derived from ``addr``/``netmask``.  A
    /31 or /32 outside loopback has no broadcast domain and yields nothing.
    """
    given = entry.get("broadcast")
    if given:
        return given
    addr, mask = entry.get("addr"), entry.get("netmask")
    if not addr or not mask:
        return None
    try:
        net = ipaddress.IPv4Network(f"{addr}/{mask}", strict=False)
    except ValueError:
        return None
    if net.is_loopback:
        return str(net.broadcast_address)
    if net.prefixlen >= 31:
        return None
    return str(net.broadcast_address)


def local_adapters() -> list[Adapter]:
    """Read this machine's interfaces and their IPv4 addresses from netifaces."""
    import netifaces  # imported here so the pure part loads without it

    adapters: list[Adapter] = []
    for name in netifaces.interfaces():
        try:
            addrs = netifaces.ifaddresses(name).get(netifaces.AF_INET, [])
        except ValueError:  # the interface vanished between the two calls
            continue
        adapters.append((name, addrs))
    return adapters
