"""The UDP endpoint: the discovery port is shared, a port held exclusively is not; reads come in whole, in bounded batches."""

from __future__ import annotations

import asyncio
import socket

import pytest

from lanpay.transport import BATCH, Batch, make_discovery_socket, make_session_socket, open_pipe


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


# -- reading --------------------------------------------------------------------------

def read_all(sends: list[bytes]) -> tuple[list[Batch], int]:
    """Send datagrams to a pipe before the loop runs; return the batches it handed over and its count."""
    async def body() -> tuple[list[Batch], int]:
        loop = asyncio.get_running_loop()
        batches: list[Batch] = []
        sock = make_session_socket("127.0.0.1")
        pipe = open_pipe(loop, sock, batches.append, "test")
        assert pipe.local_address == sock.getsockname()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            sender.bind(("127.0.0.1", 0))
            for data in sends:
                sender.sendto(data, sock.getsockname())
            end = loop.time() + 10
            while sum(map(len, batches)) < len(sends) and loop.time() < end:
                await asyncio.sleep(0.01)
            source = sender.getsockname()
        received = pipe.received
        pipe.close()
        assert pipe.local_address is None and sock.fileno() == -1
        assert all(addr == source for batch in batches for _, addr in batch)
        return batches, received

    return asyncio.run(body())


def test_datagrams_waiting_together_are_handed_over_as_one_batch_each_intact() -> None:
    """One buffer is reused for every read: each datagram must still be its own copy."""
    sends = [bytes([i]) * (i + 1) for i in range(10)]
    batches, received = read_all(sends)
    assert [data for batch in batches for data, _ in batch] == sends
    assert received == len(sends)
    assert len(batches) < len(sends)  # all were waiting: fewer hand-overs than datagrams


def test_a_flood_is_read_in_bounded_batches() -> None:
    sends = [i.to_bytes(4, "big") for i in range(BATCH * 3)]
    batches, _ = read_all(sends)
    assert [data for batch in batches for data, _ in batch] == sends
    assert max(map(len, batches)) <= BATCH


def test_the_largest_udp_datagram_arrives_whole() -> None:
    big = bytes(range(256)) * 255 + bytes(range(227))   # 65,507 bytes, the IPv4 maximum
    batches, _ = read_all([big, b"after"])
    assert [data for batch in batches for data, _ in batch] == [big, b"after"]


def test_a_closed_pipe_refuses_to_send_and_counts_it() -> None:
    async def body() -> None:
        pipe = open_pipe(asyncio.get_running_loop(), make_session_socket("127.0.0.1"), lambda b: None, "t")
        pipe.close()
        assert pipe.send(b"x", ("127.0.0.1", 9)) is False
        assert pipe.send_errors == 1 and pipe.sent == 0
        pipe.close()  # twice is harmless

    asyncio.run(body())
