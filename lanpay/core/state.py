"""Where the relationship stands, and the only ways it may move.

Every change of ``Peer.state`` goes through ``TRANSITIONS`` (a wrong move is a
bug in the core, never something the network can cause), as h11 keeps its
connection states in one table.

    LOOKING    no counterpart; handshakes may be under way
    PAIRING    a first handshake is under way (LOOKING with work in hand)
    RESTORING  we restarted; the counterpart's record of us is on its way
    PAIRED     payments flow
    REPAIRING  paired, the counterpart's process looks gone: a newcomer that proves
               (``--code``) or is accepted (the user's consent) takes the relationship
    CLOSED     we left, or the relationship went to a newer process of ours
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    LOOKING = "looking"
    PAIRING = "pairing"
    RESTORING = "restoring"
    PAIRED = "paired"
    REPAIRING = "repairing"
    CLOSED = "closed"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.LOOKING: frozenset({State.PAIRING, State.CLOSED}),
    State.PAIRING: frozenset({State.LOOKING, State.RESTORING, State.PAIRED, State.CLOSED}),
    State.RESTORING: frozenset({State.PAIRED, State.LOOKING, State.CLOSED}),
    State.PAIRED: frozenset({State.REPAIRING, State.CLOSED}),
    State.REPAIRING: frozenset({State.PAIRED, State.CLOSED}),
    State.CLOSED: frozenset(),
}

#: States in which this side holds a relationship (a session with a ledger).
HOLDING = frozenset({State.PAIRED, State.REPAIRING, State.RESTORING})


def check(old: State, new: State) -> State:
    """``new`` if the table allows it from ``old``; anything else is a bug."""
    if new is not old and new not in TRANSITIONS[old]:
        raise AssertionError(f"bad transition {old.value} -> {new.value}")
    return new
