"""The seeded, simulated LAN with a fake clock, for driving real cores deterministically.

Every host is a real :class:`lanpay.core.peer.Peer`; the network between them
loses, duplicates, delays and reorders datagrams, partitions and heals (both
ways or one way), drops datagrams by rule (of one chosen type, say), and lets a
host stall (a stopped process: nothing processed, no timers, everything queued
until it resumes), all from one ``random.Random(seed)``, so any run is
reproduced exactly from its seed.  Scheduled callbacks (``at``) and watchers
(``watch``) let a scenario act at a moment of the protocol rather than at a
fixed time.

The loop itself is :mod:`driver`'s, shared with the session tests and the
benchmark; a :class:`Net` built here draws its faults from :class:`Conditions`
(by default a small random delay on every datagram) and hears its own
broadcasts, as a real LAN does.  The names are kept here because the
simulator's users (faults, invariants, fuzzing, the pairing tests) import them
from here.
"""

from __future__ import annotations

from driver import Addr, Conditions, Datagram, DropRule, Host, Net, Perfect

__all__ = ["Addr", "Conditions", "Datagram", "DropRule", "Host", "Net", "Perfect"]
