"""When a peer announces itself, what it says, and how much it may send unasked.

Announces are the only traffic a peer sends to the whole LAN, and answers to
announces (and refusals of hellos) are the only traffic it sends to strangers
without being asked by an authenticated counterpart.  Their timing and their
budget live here, apart from the pairing decisions the facade makes.
"""

from __future__ import annotations

import random
from dataclasses import replace

from . import crypto, wire
from .pairing import Identity
from .peers import LOOKING_INTERVAL, PAIRED_INTERVAL

FIRST_ANNOUNCES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.6)
UNSOLICITED_PER_SECOND = 20.0


def announce(me: Identity, session_port: int, paired: bool, leaving: bool = False,
             partner: tuple[str, int] | None = None, answer: bool = False, counter: int = 0) -> wire.Announce:
    """Our announce, signed; ``partner`` is the counterpart's (name, incarnation) when there is a session.

    The interval it claims is the longest this state draws, so receivers expire a
    record only after the sender has really missed several announces.  ``counter``
    grows with every announce we send: a copy of one, from wherever, is never news.
    """
    flags = (wire.F_PAIRED if paired else 0) | (wire.F_CODE if me.code else 0)
    flags |= (wire.F_LEAVING if leaving else 0) | (wire.F_ANSWER if answer else 0)
    interval = PAIRED_INTERVAL[1] if paired else LOOKING_INTERVAL[1]
    partner_name, partner_inc = partner if partner is not None else ("", 0)
    msg = wire.Announce(me.incarnation, session_port, flags, int(interval * 1000), me.name, me.wants,
                        partner_name, partner_inc, me.public_key, me.sign_public, counter)
    return sign(msg, me.sign_private)


def sign(msg: wire.Announce, private: bytes) -> wire.Announce:
    """``msg`` signed with ``private`` (whose public half it carries) and padded.  The signed
    part is the announce without its pad, with a signature of the same size: its length is the
    unpadded length, so it is encoded once for both."""
    part = wire.signed_part(msg)
    return replace(msg, signature=crypto.sign(private, part), pad=bytes(max(0, wire.ANNOUNCE_SIZE - len(part))))


def authentic(msg: wire.Announce) -> bool:
    """Whether an announce is its incarnation's own: the incarnation is the one its keys make,
    and the signature is by its key.  Anyone may announce a new incarnation of its own; nobody
    can speak for one it does not hold the key of, from any address."""
    return crypto.incarnation_of(msg.sign_key, msg.public_key) == msg.incarnation \
        and crypto.signed_by(msg.sign_key, msg.signature, wire.signed_part(msg))


class AnnounceSchedule:
    """The announces still due: a burst at start, so a listener finds us at once even
    if one is lost, then one interval at a time, drawn from the caller's rng."""

    def __init__(self, now: float) -> None:
        self.times = [now + t for t in FIRST_ANNOUNCES]
        self.next_at = self.times[0]          # kept with ``times``: read at every pump

    def take(self, now: float, rng: random.Random, paired: bool) -> bool:
        """Whether an announce is due at ``now``; if so, consume it and, once the start-up
        burst is spent, draw the next interval (long when ``paired``: nobody needs us)."""
        if now < self.times[0]:
            return False
        self.times.pop(0)
        if not self.times:
            self.redraw(now, rng, paired)
        self.next_at = self.times[0]
        return True

    def redraw(self, now: float, rng: random.Random, paired: bool) -> None:
        """Forget whatever was due and draw one interval from ``now``: a jittered schedule
        keeps peers that started together from announcing in lockstep."""
        low, high = PAIRED_INTERVAL if paired else LOOKING_INTERVAL
        self.times = [now + rng.uniform(low, high)]
        self.next_at = self.times[0]


class Budget:
    """A token bucket for datagrams sent unasked: a flood of forged announces or hellos
    makes us send at most ``rate`` a second, never one answer per datagram."""

    def __init__(self, now: float, rate: float = UNSOLICITED_PER_SECOND) -> None:
        self.rate = rate
        self.tokens, self.at = rate, now

    def spend(self, now: float, keep: int = 0) -> bool:
        """Take one token if there is one beyond ``keep``; refill first for the time since the
        last call.  What is only a courtesy keeps some tokens back for what is not (our hellos,
        our replies to a real peer's)."""
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1 + keep:
            return False
        self.tokens -= 1
        return True


class Credit:
    """Bytes heard from each address and not yet spent on datagrams sent back to it.

    Outside a session, lanpay sends an address at most what it received from it, as
    QUIC limits what it sends an address it has not validated.  What a process
    sends outside a session (announces, handshakes) is banked for its own address,
    host and port: every datagram of a process leaves from its one session socket,
    so another process on that host (a namesake, the dead process before a restart,
    both still tried for a while) cannot spend it.  Session datagrams are banked for
    the host, and pay for any of its processes once their own credit runs out: a
    restarted process gets the survivor's hello on what its predecessor sent.
    Either way a host is sent at most what it sent.  The map is bounded: a flood of
    sources forgets the oldest, which then get nothing until heard again.
    """

    LIMIT = 256          # addresses (and hosts) remembered
    CAP = 1 << 16        # bytes of credit one address (or host) may bank

    def __init__(self) -> None:
        self.bytes: dict[tuple[str, int] | str, int] = {}
        self.withheld = 0    # datagrams not sent for want of credit

    def earn(self, key: tuple[str, int] | str, n: int) -> None:
        """Bank ``n`` bytes for an address (a handshake or announce) or a host (a session datagram)."""
        if key not in self.bytes and len(self.bytes) >= self.LIMIT:
            del self.bytes[next(iter(self.bytes))]
        banked = self.bytes.get(key, 0) + n
        self.bytes[key] = banked if banked < self.CAP else self.CAP

    def spend(self, addr: tuple[str, int], n: int) -> bool:
        """Pay for ``n`` bytes to ``addr``: from its own credit, the rest from its host's."""
        own = self.bytes.get(addr, 0)
        if own >= n:
            self.bytes[addr] = own - n
            return True
        host = addr[0]
        pooled = self.bytes.get(host, 0)
        if own + pooled < n:
            self.withheld += 1
            return False
        if own:
            self.bytes[addr] = 0
        self.bytes[host] = pooled - (n - own)
        return True
