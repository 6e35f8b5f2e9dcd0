"""Who we may pair with: pure predicates over what the peer table heard.

Every record comes from an unauthenticated announce, so these rules decide only
whom to *try*; the handshake decides the rest.  Keeping them free of state
(the facade passes what they need) lets each rule be read, and tested, alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from .frozen import lasting
from .peers import PeerRecord


@lasting
class Terms:
    """What this side asks of a counterpart."""

    name: str                  # our name, which the other side's --peer must allow
    want_peer: str | None      # our --peer, or None for anyone
    code: bool                 # whether we pair only with a shared --code


def accepts(terms: Terms, name: str, wants: str) -> bool:
    """Pairing is mutual: each side must accept the other's name; nobody pairs with its own name."""
    return name != terms.name and (terms.want_peer in (None, name)) and wants in ("", terms.name)


def wanted(terms: Terms, rec: PeerRecord) -> bool:
    return accepts(terms, rec.name, rec.wants)


def available(terms: Terms, rec: PeerRecord) -> bool:
    """Free, or paired with us: an earlier incarnation of us (we restarted), or this one
    (a handshake it finished and we gave up on)."""
    return not rec.paired or rec.partner == terms.name


def cooling(cooldown: dict[int, float], incarnation: int, now: float) -> bool:
    """Whether we leave this incarnation alone for now (it failed or refused us lately)."""
    return cooldown.get(incarnation, 0) > now


def candidates(terms: Terms, alive: Iterable[PeerRecord], cooldown: dict[int, float],
               now: float) -> tuple[list[PeerRecord], list[PeerRecord]]:
    """The records we could pair with, in the table's order, and apart from them those
    that would do but for the code (the user is told about those: neither side can fix it alone)."""
    found, wrong_code = [], []
    for rec in alive:
        if cooling(cooldown, rec.incarnation, now):
            continue
        if not (wanted(terms, rec) and available(terms, rec)):
            continue
        if rec.uses_code != terms.code:
            wrong_code.append(rec)
            continue
        found.append(rec)
    return found, wrong_code


def survivors(terms: Terms, alive: Iterable[PeerRecord]) -> list[PeerRecord]:
    """Peers that say they are paired with someone of our name: after a restart, one of
    them holds our relationship, and it comes before any stranger."""
    return [r for r in alive if r.paired and r.partner == terms.name and wanted(terms, r)
            and r.uses_code == terms.code]


def namesakes(name: str, group: Iterable[PeerRecord]) -> list[PeerRecord]:
    """The records in ``group`` called ``name``, if there is more than one: we cannot
    tell which is meant, so we pair with none of them."""
    same = [r for r in group if r.name == name]
    return same if len(same) > 1 else []


def hello_rivals(name: str, sender: int, found: list[PeerRecord], alive: Iterable[PeerRecord]) -> list[PeerRecord]:
    """A hello from ``sender`` while other candidates share its name: those others and the
    sender's own record, to be checked for a conflict; empty when there are no others."""
    others = [r for r in found if r.name == name and r.incarnation != sender]
    return others + [r for r in alive if r.incarnation == sender] if others else []


def handshake_rivals(name: str, peer_inc: int, found: list[PeerRecord],
                     alive: Iterable[PeerRecord]) -> list[PeerRecord]:
    """Mid-handshake with ``peer_inc``: the candidates named like it, and its own record,
    when some other incarnation shares the name; empty when none does."""
    same = [r for r in found if r.name == name]
    if not any(r.incarnation != peer_inc for r in same):
        return []
    mine = [r for r in alive if r.incarnation == peer_inc]
    return same + [r for r in mine if r not in same]


def is_restart(terms: Terms, rec: PeerRecord, partner: tuple[str, int], past_partners: set[int],
               cooldown: dict[int, float], now: float) -> bool:
    """A new incarnation of our counterpart (``partner`` is its name and incarnation), free and willing.

    An incarnation we were ever paired with is never one: its stale record may still
    say it is free, and taking it for a newcomer would probe a process long gone.
    """
    name, incarnation = partner
    return (rec.name == name and rec.incarnation != incarnation
            and rec.incarnation not in past_partners and not rec.paired and wanted(terms, rec)
            and rec.uses_code == terms.code and not cooling(cooldown, rec.incarnation, now))
