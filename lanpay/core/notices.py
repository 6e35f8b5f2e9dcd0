"""Warnings about strangers, told once and then counted, so they can never run out.

Anyone on the LAN can make lanpay warn (a namesake, a claim to be our counterpart
restarted, a peer with the wrong kind of code).  Each distinct fact is told once;
a fact of a kind already told about the same name is counted, and the count is
told at most once a minute ("12 more since ..."), so a flood of forgeries costs
two lines a minute and a real warning of a new kind or name is always told.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from . import events

REPEAT_EVERY = 60.0     # how often a count of repeated warnings is told
MAX_GROUPS = 64         # (kind, name) groups remembered
MAX_FACTS = 256         # distinct facts remembered, so a repeat of one is not counted again
NEW_PER_MINUTE = 8      # groups told afresh in one minute; more are counted under "several names"
SEVERAL = "several names"


@dataclass
class _Group:
    told_at: float
    since: float
    count: int = 0


class Notices:
    """Which warnings were told; returns the events to emit for a new one."""

    def __init__(self) -> None:
        self.groups: OrderedDict[tuple[str, str], _Group] = OrderedDict()
        self.facts: OrderedDict[object, None] = OrderedDict()
        self.minute, self.new_this_minute = float("-inf"), 0

    def __len__(self) -> int:
        return len(self.facts)

    def seen(self, fact: object) -> bool:
        """Whether this fact was already warned about (or counted)."""
        return fact in self.facts

    def warn(self, kind: str, name: str, fact: object, event: events.Event, now: float) -> list[events.Event]:
        """``event`` if it is the first of its kind about ``name``; a count of the repeats
        at most once every REPEAT_EVERY; nothing for a fact already seen."""
        if self.seen(fact):
            return []
        self._remember(fact)
        key = (kind, name)
        if key not in self.groups and not self._room_for_new(now):
            key = (kind, SEVERAL)
            if key not in self.groups:
                self.groups[key] = _Group(now, now)
        group = self.groups.get(key)
        if group is None:
            while len(self.groups) >= MAX_GROUPS:
                self.groups.popitem(last=False)
            self.groups[key] = _Group(now, now)
            return [event]
        group.count += 1
        if now < group.told_at + REPEAT_EVERY:
            return []
        told = events.WarningsRepeated(kind, name, group.count, group.since)
        self.groups[key] = _Group(now, now)
        return [told]

    def _room_for_new(self, now: float) -> bool:
        """Whether another name may be told afresh this minute (a flood of names may not)."""
        if now >= self.minute + REPEAT_EVERY:
            self.minute, self.new_this_minute = now, 0
        self.new_this_minute += 1
        return self.new_this_minute <= NEW_PER_MINUTE

    def _remember(self, fact: object) -> None:
        while len(self.facts) >= MAX_FACTS:
            self.facts.popitem(last=False)
        self.facts[fact] = None
