"""The UDP endpoint a session speaks through, and why sending never fails loudly.

UDP gives no delivery promise, so the core already copes with loss by
retransmitting.  A send the kernel refuses (no route, a firewall's EPERM, a full
buffer, an interface going down) is therefore just one more lost datagram: it is
counted and logged at debug level, never raised into the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import cast

log = logging.getLogger(__name__)

Address = tuple[str, int]
Receiver = Callable[[bytes, Address], None]


def make_session_socket(host: str = "0.0.0.0", port: int = 0) -> socket.socket:
    """A non-blocking UDP socket on an ephemeral port that may send broadcasts.

    Every datagram of the process (announces, handshake, sealed session) leaves
    from here, so the counterpart learns one address for us.
    """
    return udp_socket(host, port)


def udp_socket(host: str, port: int, share_port: bool = False) -> socket.socket:
    """A non-blocking UDP socket allowed to broadcast; ``share_port`` lets other processes bind it too."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if share_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def make_discovery_socket(port: int, host: str = "") -> socket.socket:
    """A non-blocking UDP socket that hears broadcasts on ``port``, shared with others.

    Several lanpay processes on one host must all hear the same announces, so the
    port is bound with SO_REUSEADDR and SO_REUSEPORT.  The socket is made here
    rather than by asyncio because asyncio refuses ``reuse_address`` on Linux.
    """
    return udp_socket(host, port, share_port=True)


class DatagramPipe(asyncio.DatagramProtocol):
    """Hands every received datagram to ``receiver``; sends without raising."""

    def __init__(self, sock: socket.socket, receiver: Receiver, label: str) -> None:
        self._sock = sock
        self._receiver = receiver
        self._label = label
        self._transport: asyncio.DatagramTransport | None = None
        #: Datagrams the kernel refused or that could not be handed to it.
        self.send_errors = 0
        self.sent = 0
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.received += 1
        self._receiver(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        """An asynchronous socket error (e.g. an ICMP report): a loss, nothing more."""
        self.send_errors += 1
        log.debug("%s socket error: %s", self._label, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    @property
    def local_address(self) -> Address | None:
        """Where this endpoint is bound, once open."""
        if self._transport is None:
            return None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    def send(self, data: bytes, addr: Address) -> bool:
        """Send one datagram now; return False (and count it) if it could not go out.

        The socket is written directly rather than through the transport's
        buffer: a datagram that cannot leave at once (a full buffer included) is
        better lost and retransmitted by the core than queued behind others.
        """
        if self._transport is None or self._transport.is_closing():
            self.send_errors += 1
            return False
        try:
            self._sock.sendto(data, addr)
        except (OSError, ValueError, TypeError, OverflowError) as exc:
            self.send_errors += 1
            log.debug("%s send to %s failed: %s", self._label, addr, exc)
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        """Stop receiving and release the socket."""
        if self._transport is not None:
            self._transport.close()


async def open_pipe(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, receiver: Receiver, label: str
) -> DatagramPipe:
    """Wrap an already bound socket in an asyncio endpoint feeding ``receiver``."""
    _, protocol = await loop.create_datagram_endpoint(
        lambda: DatagramPipe(sock, receiver, label), sock=sock
    )
    return protocol
