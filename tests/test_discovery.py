"""Broadcast targets come from the interface list alone, so they are tested without one."""

from __future__ import annotations

import pytest

from lanpay.discovery import (
    LOOPBACK_BROADCAST,
    InterfaceError,
    broadcast_targets,
)

# What netifaces reports on a typical Linux host: loopback gives 'peer', not 'broadcast'.
LO = ("lo", [{"addr": "127.0.0.1", "netmask": "255.0.0.0", "peer": "127.0.0.1"}])
ETH = ("eth0", [{"addr": "192.168.1.4", "netmask": "255.255.255.0", "broadcast": "192.168.1.255"}])
WIFI = ("wlan0", [{"addr": "10.0.3.7", "netmask": "255.255.240.0"}])  # broadcast missing
NO_V4 = ("ifb0", [])
TUN = ("tun0", [{"addr": "10.8.0.2", "netmask": "255.255.255.255", "peer": "10.8.0.1"}])
TWO = ("br0", [
    {"addr": "172.16.0.1", "netmask": "255.255.0.0", "broadcast": "172.16.255.255"},
    {"addr": "192.168.1.9", "netmask": "255.255.255.0", "broadcast": "192.168.1.255"},
])


def test_loopback_broadcast_is_computed_from_netmask() -> None:
    assert broadcast_targets([LO], ["lo"]) == [LOOPBACK_BROADCAST] == ["127.255.255.255"]


def test_default_is_every_ipv4_interface_including_loopback() -> None:
    adapters = [LO, NO_V4, ETH, WIFI, TUN]
    assert broadcast_targets(adapters) == ["127.255.255.255", "192.168.1.255", "10.0.15.255"]


def test_missing_broadcast_is_derived_from_address_and_mask() -> None:
    assert broadcast_targets([WIFI], ["wlan0"]) == ["10.0.15.255"]


def test_only_the_named_interfaces_are_used_in_the_given_order() -> None:
    assert broadcast_targets([LO, ETH, WIFI], ["wlan0", "lo"]) == ["10.0.15.255", "127.255.255.255"]


def test_duplicates_are_sent_once() -> None:
    adapters = [ETH, TWO]
    assert broadcast_targets(adapters) == ["192.168.1.255", "172.16.255.255"]
    assert broadcast_targets(adapters, ["eth0", "eth0"]) == ["192.168.1.255"]


def test_unknown_interface_is_a_clear_error_naming_the_choices() -> None:
    with pytest.raises(InterfaceError) as info:
        broadcast_targets([LO, ETH], ["eth9"])
    assert str(info.value) == "no such interface 'eth9' (available: lo, eth0)"


def test_naming_an_interface_without_ipv4_is_an_error() -> None:
    with pytest.raises(InterfaceError) as info:
        broadcast_targets([LO, NO_V4], ["ifb0"])
    assert str(info.value) == "interface 'ifb0' has no IPv4 broadcast address"


def test_no_usable_interface_at_all_is_an_error() -> None:
    with pytest.raises(InterfaceError) as info:
        broadcast_targets([NO_V4, TUN])
    assert str(info.value) == "no IPv4 interface to announce on"


def test_garbage_entries_are_skipped() -> None:
    junk = ("x0", [{"addr": "not an address", "netmask": "255.0.0.0"}, {"addr": "10.1.1.1"}])
    assert broadcast_targets([junk, LO]) == ["127.255.255.255"]
