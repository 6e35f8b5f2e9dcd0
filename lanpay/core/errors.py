"""Two kinds of error, kept apart on purpose.

A *user* error is something the local user asked for that cannot be done (a bad
amount, paying before pairing): it is raised to the caller, with a message fit to
show, and nothing moves.  A *peer* error is something that arrived from the
network: it is never raised out of the core; the datagram is dropped and the drop
is counted under a :class:`DropReason`.  The codec's :class:`DecodeError` is the
one exception that crosses from the wire into the core, and the core catches it.
"""

from __future__ import annotations

import enum


class UserError(Exception):
    """A request from the local user that cannot be carried out; nothing moved."""


class AmountError(UserError, ValueError):
    """The text is not an amount lanpay accepts."""


class NotPaired(UserError):
    """There is no counterpart to pay now; ``reason`` says why, as a code the UI words:
    ``"looking"``, ``"closed"``, ``"restoring"`` (a hand-back is under way) or ``"fenced"``
    (the relationship went to a newer process of ours)."""

    def __init__(self, message: str, reason: str = "looking") -> None:
        super().__init__(message)
        self.reason = reason


class PeerUnavailable(UserError):
    """The counterpart is silent or has left, so a new payment is refused."""


class OverLimit(UserError):
    """Paying this would take a balance past a configured limit."""


class DecodeError(ValueError):
    """A datagram is not a well-formed lanpay message. The codec raises only this."""


class DropReason(enum.Enum):
    """Why a received datagram was dropped; the core counts each."""

    MALFORMED = "malformed"            # does not decode
    OWN = "own"                        # our own broadcast, heard back
    NOT_FOR_US = "not-for-us"          # addressed to another incarnation or session
    AUTH = "auth"                      # failed to open (forged, bit-flipped, stale key)
    REPLAY = "replay"                  # counter already seen or left of the window
    VIOLATION = "violation"            # authenticated but breaks the protocol
    UNEXPECTED = "unexpected"          # well-formed but not wanted in this state
    RATE = "rate"                      # over a flood budget
