"""What the core tells its user, as small frozen facts in the past tense.

The node drains these with ``Peer.next_event()`` and the UI renders them with a
``match`` statement.  Amounts are integer cents; times are the caller's clock.
"""

from __future__ import annotations

from .frozen import frozen


class Event:
    """Base class of every event the core emits."""

    __slots__ = ()


@frozen
class Paired(Event):
    """A relationship is ready: payments can flow.

    ``restored`` is set on the side that had lost its memory and took the
    relationship back from the counterpart's record; ``verified`` when a shared
    ``--code`` authenticated the counterpart.
    """

    peer_name: str
    peer_addr: tuple[str, int]
    code: str
    restored: bool = False
    verified: bool = False
    balance: int = 0
    again: bool = False      # the same counterpart, paired anew: its first handshake never completed there


@frozen
class PairingRefused(Event):
    """A peer we tried to pair with said no (it is taken, or wants someone else)."""

    peer_name: str
    reason: str


@frozen
class PairingFailed(Event):
    """A handshake did not complete: wrong ``--code``, or the peer stopped answering."""

    peer_name: str
    reason: str


@frozen
class NameConflict(Event):
    """Two different peers answer to the name we would pair with; we pair with neither."""

    name: str
    addrs: tuple[tuple[str, int], ...]


@frozen
class ImpostorSuspected(Event):
    """Someone claimed to be our counterpart restarted while it still answers."""

    name: str
    addr: tuple[str, int]


@frozen
class PaymentReceived(Event):
    """An incoming payment was applied.  ``resent`` marks one the counterpart sent again in
    its hand-back after our restart: our previous process may already have shown it."""

    seq: int
    amount: int
    memo: str
    balance: int
    resent: bool = False


@frozen
class PaymentConfirmed(Event):
    """The counterpart applied our payment; ``was_in_doubt`` if we had said so."""

    seq: int
    amount: int
    memo: str
    balance: int
    was_in_doubt: bool = False


@frozen
class PaymentRejected(Event):
    seq: int
    amount: int
    reason: str


@frozen
class PaymentDeclined(Event):
    """A payment from the counterpart that this side refused (its own ``--limit``); nothing moved."""

    seq: int
    amount: int
    memo: str
    reason: str


@frozen
class PaymentInDoubt(Event):
    """Not acknowledged for a while: it may or may not have arrived; still retried."""

    seq: int
    amount: int


@frozen
class PeerSilent(Event):
    name: str


@frozen
class PeerBack(Event):
    name: str


@frozen
class PeerLeft(Event):
    name: str


@frozen
class PeerRestarted(Event):
    """The counterpart came back as a new process; we handed it the relationship."""

    name: str
    addr: tuple[str, int]
    code: str
    verified: bool = False


@frozen
class LedgerAgreement(Event):
    """Both views were compared while quiet; ``agree`` says whether they match."""

    agree: bool


@frozen
class HandbackRequested(Event):
    """A new process claims to be our counterpart restarted, and no shared ``--code`` proves it.

    Nothing is handed over until the user compares ``code`` with the other screen
    and accepts; ``balance`` and the counts say what would be handed over.
    """

    name: str
    addr: tuple[str, int]
    code: str
    balance: int
    payments: int
    pending: int


@frozen
class HandbackAwaited(Event):
    """We restarted; the counterpart's user must accept before the relationship comes back."""

    name: str
    addr: tuple[str, int]
    code: str


@frozen
class PaymentsVoided(Event):
    """Our payments ``first``..``last`` never reached the counterpart, so they were not paid.

    ``restart`` is set on a restored side: ``first``..``last`` is then every number our
    lost process may have given out unheard (none of them is ever used again), and new
    payments are numbered from ``last + 1``.
    """

    first: int
    last: int
    restart: bool = False


@frozen
class RestoreFailed(Event):
    """A hand-back did not complete (either side gave up or vanished); ``reason`` is a code."""

    name: str
    reason: str


@frozen
class OldProcessBack(Event):
    """After a hand-back, the counterpart's previous process spoke again; it is fenced off."""

    name: str
    addr: tuple[str, int]


@frozen
class Fenced(Event):
    """The counterpart handed the relationship to a newer process of ours; this one can no longer pay."""

    name: str


@frozen
class WarningsRepeated(Event):
    """More warnings of ``kind`` ("namesake", "impostor", "code") about ``name`` came since
    ``since`` (the caller's clock); told at most once a minute instead of one line each."""

    kind: str
    name: str
    count: int
    since: float


@frozen
class CodeDiffers(Event):
    """A lanpay called ``name`` at ``host`` is about whose use of --code (``theirs``) differs from
    ours, so the two never pair.  ``holding``: we hold a relationship with a process of that name
    (the newcomer cannot take it over; if our counterpart restarted, it did so with the wrong
    kind of start)."""

    name: str
    host: str
    theirs: bool
    holding: bool = False


@frozen
class PeerTaken(Event):
    """A peer we would pair with cannot pair with us: ``reason`` is ``"paired"`` (it has a
    counterpart), ``"wants-other"`` (it asked for someone else with --peer), ``"same-name"``
    (it is looking under our own name, which nobody pairs with) or ``"yours-elsewhere"`` (it
    holds a relationship with another process of our name, and did not hand it to us)."""

    name: str
    reason: str


@frozen
class ImpersonationSeen(Event):
    """Our counterpart ``name`` says someone at ``host`` claimed to be us restarted; it was
    not handed the relationship."""

    name: str
    host: str
