"""The UDP endpoint's sockets: the discovery port is shared, a port held exclusively is not."""

from __future__ import annotations

import socket

import pytest

from lanpay.transport import make_discovery_socket, make_session_socket


def test_discovery_sockets_share_the_port() -> None:
    """Two lanpay processes on one host must both be able to listen for announces."""
    first = make_discovery_socket(0, host="127.0.0.1")
    try:
        port = first.getsockname()[1]
        second = make_discovery_socket(port, host="127.0.0.1")
        try:
            assert second.getsockname() == ("127.0.0.1", port)
            assert second.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
            assert not second.getblocking()
        finally:
            second.close()
    finally:
        first.close()


def test_port_held_without_sharing_is_refused() -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(OSError):
            make_discovery_socket(holder.getsockname()[1], host="127.0.0.1")
    finally:
        holder.close()


def test_the_session_socket_may_broadcast_and_never_blocks() -> None:
    sock = make_session_socket("127.0.0.1")
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        assert not sock.getblocking()
        assert sock.getsockname()[1] != 0
    finally:
        sock.close()
