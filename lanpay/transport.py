"""The UDP endpoint a session speaks through, and why sending never fails loudly.

UDP gives no delivery promise, so the core already copes with loss by
retransmitting.  A send the kernel refuses (no route, a firewall's EPERM, a full
buffer, an interface going down) is therefore just one more lost datagram: it is
counted and logged at debug level, never raised into the event loop.
The same holds for an error the kernel reports on a read.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

Address = tuple[str, int]
Batch = list[tuple[bytes, Address]]
Receiver = Callable[[Batch], None]

#: Larger than any UDP datagram over IPv4 (65,507 bytes of payload), so nothing is ever cut.
RECV_BUFFER = 65536
#: Datagrams read per wake-up at most, so a flood on one socket cannot starve the rest of the loop.
BATCH = 64


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


class DatagramPipe:
    """Reads a UDP socket straight from the event loop's selector; sends without raising.

    asyncio's own datagram transport allocates a 256 KiB buffer for every
    datagram it reads and spends one loop iteration per datagram.  Here one
    buffer, larger than any UDP datagram, is kept for the socket's life; each
    wake-up reads every datagram already waiting (at most ``BATCH``, so the other
    socket and the timer still get their turn) and hands them over as one batch,
    so the node pumps the core once for all of them.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, receiver: Receiver, label: str
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._receiver = receiver
        self._label = label
        self._buffer = bytearray(RECV_BUFFER)
        self._view = memoryview(self._buffer)
        self._open = False
        #: Datagrams the kernel refused or that could not be handed to it.
        self.send_errors = 0
        self.sent = 0
        self.received = 0

    def start(self) -> None:
        """Begin handing datagrams to the receiver."""
        self._loop.add_reader(self._sock.fileno(), self._readable)
        self._open = True

    def _readable(self) -> None:
        batch: Batch = []
        for _ in range(BATCH):
            try:
                size, addr = self._sock.recvfrom_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP report queued on the socket: a loss, nothing more
                self.send_errors += 1
                log.debug("%s socket error: %s", self._label, exc)
                continue
            batch.append((bytes(self._view[:size]), (addr[0], addr[1])))
        if batch:
            self.received += len(batch)
            self._receiver(batch)

    @property
    def local_address(self) -> Address | None:
        """Where this endpoint is bound, while open."""
        if not self._open:
            return None
        host, port = self._sock.getsockname()[:2]
        return host, port

    def send(self, data: bytes, addr: Address) -> bool:
        """Send one datagram now; return False (and count it) if it could not go out.

        A datagram that cannot leave at once (a full buffer included) is better
        lost and retransmitted by the core than queued behind others.
        """
        if not self._open:
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
        if self._open:
            self._open = False
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()


def open_pipe(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, receiver: Receiver, label: str
) -> DatagramPipe:
    """Start reading an already bound, non-blocking socket, feeding batches to ``receiver``."""
    pipe = DatagramPipe(loop, sock, receiver, label)
    pipe.start()
    return pipe
