"""The sans-I/O protocol core: no sockets, no event loop, no clock.

Drive a :class:`Peer` with datagrams and the current time; it answers with
datagrams to send, a deadline for its next timer, and typed events.
"""

from . import events
from .amounts import MAX_PAYMENT_CENTS, format_amount, parse_amount
from .errors import AmountError, DecodeError, DropReason, NotPaired, OverLimit, PeerUnavailable, UserError
from .peer import BROADCAST, Config, Peer, Status

__all__ = [
    "BROADCAST", "Config", "Peer", "Status", "events",
    "parse_amount", "format_amount", "MAX_PAYMENT_CENTS",
    "UserError", "AmountError", "NotPaired", "OverLimit", "PeerUnavailable", "DecodeError", "DropReason",
]
