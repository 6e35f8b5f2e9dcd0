"""What the user reads: events as sentences and as JSON records, and the tables of each command.

Everything here is pure, so every sentence is pinned down by a test.  Text
that came from the network (names, memos, reasons) goes through one
sanitiser, :func:`shown`, before it reaches a sentence, a table or a record:
whatever the text rules refuse is written as ``\\u202e`` instead of acting on
the terminal.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lanpay.commands import HELP, WORDS
from lanpay.core import wire
from lanpay.core.amounts import format_amount
from lanpay.core.errors import NotPaired, PeerUnavailable, UserError
from lanpay.core.events import (
    ImpersonationSeen,
    PeerTaken,
    CodeDiffers,
    WarningsRepeated,
    Event,
    Fenced,
    HandbackAwaited,
    HandbackRequested,
    ImpostorSuspected,
    LedgerAgreement,
    NameConflict,
    OldProcessBack,
    Paired,
    PairingFailed,
    PairingRefused,
    PaymentConfirmed,
    PaymentDeclined,
    PaymentInDoubt,
    PaymentReceived,
    PaymentRejected,
    PaymentsVoided,
    PeerBack,
    PeerLeft,
    PeerRestarted,
    PeerSilent,
    RestoreFailed,
)
from lanpay.core.history import Earlier, Totals

if TYPE_CHECKING:
    from lanpay.core.peer import HistoryEntry, Status

WELCOME = "Welcome to your peering relationship!"
GOODBYE = "Goodbye."


# -- the sanitiser ------------------------------------------------------------------


#: Every character :func:`lanpay.core.text.refused` refuses, as one class: C0 and C1 controls
#: and DEL, the bidirectional controls, the line and paragraph separators, lone surrogates.
#: ``tests/test_ui.py`` checks it against the rules for every code point.
REFUSED = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029"
                     r"\u2066-\u2069\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown(text: str) -> str:
    """Text from the network made safe to print: anything the text rules refuse becomes ``\\u202e``.

    The same result as :func:`lanpay.core.text.escape`, without a call per character:
    every refused character is one ``str.isprintable`` refuses too, so printable text
    (nearly all of it) comes back as it is, and the rest goes through one substitution.
    """
    if text.isprintable():
        return text
    return REFUSED.sub(_escaped, text)


#: The field names of each event type, looked up once per type rather than once per event.
_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(event: Event) -> tuple[str, ...]:
    names = _FIELDS.get(type(event))
    if names is None:
        names = _FIELDS[type(event)] = tuple(f.name for f in dataclasses.fields(event))  # type: ignore[arg-type]
    return names


def _cleaned(event: Event) -> Event:
    """The event with every string field through :func:`shown` (names, memos, reasons, codes).

    The event itself when no field needed escaping (events are frozen, so it reads the same).
    """
    changes = None
    for name in _field_names(event):
        value = getattr(event, name)
        if isinstance(value, str) and not value.isprintable():
            safe = shown(value)
            if safe != value:
                changes = changes or {}
                changes[name] = safe
    return dataclasses.replace(event, **changes) if changes else event  # type: ignore[type-var]


# -- sentences ------------------------------------------------------------------

#: What to do when pairing is refused or fails for a reason the core names.
_ADVICE = {
    wire.REFUSE_TEXT[wire.R_BAD_CODE]:
        "the code words differ (or someone on the network interfered); agree on the words "
        "again, then start both sides with the same --code",
    wire.REFUSE_TEXT[wire.R_CODE_MISMATCH]:
        "one side uses --code and the other does not; start both with the same --code, or both without",
    wire.REFUSE_TEXT[wire.R_NOT_WANTED]:
        "it is waiting for someone else (its --peer names another); lanpay keeps looking",
    wire.REFUSE_TEXT[wire.R_TAKEN]:
        "it is already paired with someone else; lanpay keeps looking",
    wire.REFUSE_TEXT[wire.R_OLD_ALIVE]:
        "it is paired with another lanpay of your name, which still answers (your earlier one, if "
        "you ran it: use that one, or end it with exit; else someone else runs lanpay under your "
        "name: start with another --name); lanpay keeps trying",
    wire.REFUSE_TEXT[wire.R_NAMESAKE]:
        "it also hears another lanpay with your name, and pairs with neither (one of yours that "
        "just ended is forgotten within 10 s; otherwise give one of the two another --name, or "
        "start both sides with the same --code); lanpay keeps trying",
}


def render(event: Event, peer: str | None = None) -> str | None:
    """The text a person reads for ``event``; None for events that need no notice.

    ``peer`` is the counterpart's name for events that do not carry it.  Every
    string in the event came from the network or depends on it, so all of them
    are passed through :func:`shown` first.
    """
    return _sentence(_cleaned(event), peer)


def _sentence(event: Event, peer: str | None) -> str | None:
    """:func:`render` for an event already through :func:`_cleaned`."""
    who = shown(peer) if peer else "the peer"
    match event:
        case Paired():
            return _paired(event)
        case PaymentReceived() | PaymentConfirmed() | PaymentInDoubt() | PaymentRejected() | PaymentDeclined():
            return _payment(event, who)
        case PeerSilent(name=name):
            return f"{name} is not responding"
        case PeerBack(name=name):
            return f"{name} is back"
        case PeerLeft(name=name):
            return f"{name} left"
        case PeerRestarted(name=name, code=code, verified=verified):
            return f"{name} restarted; the relationship was handed back (code {code}{_checked(verified)})"
        case NameConflict(name=name, addrs=addrs):
            hosts = [host for host, _ in addrs]
            one_host = len(set(hosts)) < len(hosts)          # on one machine only the ports differ
            where = ", ".join(f"{host}:{port}" if one_host else host for host, port in addrs)
            return f"Warning: more than one peer is called {name} ({where}); pairing with neither"
        case WarningsRepeated(kind=kind, name=name, count=count):
            what = _REPEATED.get(kind, "warnings")
            return f"Warning: {count} more {what} {name} in the last minute or more (counted, not listed)"
        case ImpersonationSeen(name=name, host=host):
            return f"Warning: {host} claimed to be you restarted; {name} did not hand it the relationship"
        case ImpostorSuspected(name=name, addr=(host, _)):
            return f"Warning: {host} claims to be {name} restarted, but {name} still answers; ignored"
        case PeerTaken(name=name, reason="paired"):
            return f"{name} is already paired with someone else; still looking"
        case CodeDiffers(name=name, host=host, theirs=theirs, holding=False):
            mine = "you do not" if theirs else "you do"
            return (f"{name} ({host}) {'uses' if theirs else 'does not use'} --code and {mine}, so you "
                    "never pair: start both with the same --code, or both without; still looking")
        case CodeDiffers(name=name, host=host, theirs=theirs, holding=True):
            how = "with a --code" if theirs else "without --code"
            again = "without --code" if theirs else "with the same --code"
            yours = "has none" if theirs else "uses one"
            return (f"Warning: a lanpay called {name} ({host}) started {how}, while your relationship "
                    f"with {name} {yours}: it cannot take it over (if {name} restarted, it must start "
                    f"again {again})")
        case PeerTaken(name=name, reason="yours-elsewhere"):
            return (f"{name} is paired with another lanpay of your name, not this one (if that was your "
                    f"earlier lanpay, {name} hands the relationship back once it is gone; else someone "
                    "else runs lanpay under your name: start with another --name); still looking")
        case PeerTaken(name=name, reason="same-name"):
            return (f"Another lanpay on the LAN is also called {name}, and two of one name never pair: "
                    "one of you starts again with another --name; still looking")
        case PeerTaken(name=name):
            return f"{name} is waiting for someone else (it was started with --peer); still looking"
        case PairingRefused(peer_name=name, reason=reason):
            return f"{name} refused to pair: {_ADVICE.get(reason, reason)}"
        case PairingFailed(peer_name=name, reason=reason):
            return f"Pairing with {name} failed: {_ADVICE.get(reason, reason)}"
        case LedgerAgreement(agree=False):
            return f"Warning: your ledger and {who}'s disagree (check 'balance' on both sides)"
        case _:
            return _restart(event, who)


def _payment(event: Event, who: str) -> str | None:
    match event:
        case PaymentReceived(seq=seq, amount=amount, memo=memo, resent=True):
            return (f"You were paid {format_amount(amount)} (#{seq}, completed in the hand-back: "
                    f"your previous process may have shown it already)" + _memo(memo))
        case PaymentReceived(amount=amount, memo=memo):
            return f"You were paid {format_amount(amount)}!" + _memo(memo)
        case PaymentConfirmed(seq=seq, amount=amount, memo=memo, was_in_doubt=late):
            after = " (confirmed after the delay)" if late else ""
            return f"Sent {format_amount(amount)} to {who} (#{seq})" + _memo(memo) + after
        case PaymentInDoubt(seq=seq, amount=amount):
            return (f"Payment #{seq} of {format_amount(amount)} is in doubt: "
                    f"{who} has not confirmed it yet; still trying")
        case PaymentRejected(seq=seq, amount=amount, reason=reason):
            return f"Error: {who} refused payment #{seq} of {format_amount(amount)}: {reason}"
        case PaymentDeclined(seq=seq, amount=amount, memo=memo, reason=reason):
            return (f"Refused {who}'s payment #{seq} of {format_amount(amount)}{_memo(memo)}: "
                    f"{reason}; nothing moved")
    return None


_REPEATED = {
    "claimed": "reports of someone claiming to be you, from",
    "taken": "notices that a peer is taken, about",
    "namesake": "peers also calling themselves",
    "impostor": "claims to be the restarted",
    "code": "peers with the other kind of pairing code calling themselves",
}

_RESTORE_FAILED = {
    "silent": "the other side stopped answering",
    "timeout": "it was not accepted in time; looking again",
    "expired": "it was not accepted in time; the request was dropped",
    "other": "its user accepted another lanpay of your name instead (the one whose code matched)",
    "not-accepted": "its user did not accept it in time; lanpay asks again",
    "left": "the other side left before handing it back",
    "kept": "it hears your earlier lanpay still answering and keeps the relationship with that one "
            "(if it is yours, use it, or end it with exit and start again; else someone else runs "
            "lanpay under your name: start with another --name)",
}


def _restart(event: Event, who: str) -> str | None:
    """The sentences of a hand-back after a restart, on either side."""
    match event:
        case HandbackRequested(name=name, addr=(host, _), code=code, balance=balance,
                               payments=payments, pending=pending):
            return (f"{name} ({host}) restarted and asks for the relationship back (your balance "
                    f"{format_amount(balance)}, {_count(payments, 'payment')}, {pending} pending). "
                    f"Compare code {code} with {name}'s screen, then type accept")
        case HandbackAwaited(name=name, addr=(host, _), code=code):
            return (f"{name} ({host}) still holds the relationship; waiting for {name} to type accept. "
                    f"Compare code {code} with {name}'s screen")
        case PaymentsVoided(first=first, last=last, restart=True):
            return (f"Any payment your previous lanpay numbered #{first} or above never reached {who}: "
                    f"not paid (new payments are numbered from #{last + 1})")
        case PaymentsVoided(first=first, last=last):
            which = f"payment #{first}" if first == last else f"payments #{first}..#{last}"
            return f"Your {which} never reached {who}: not paid"
        case RestoreFailed(name=name, reason=reason):
            return f"Warning: the hand-back with {name} did not complete: {_RESTORE_FAILED.get(reason, reason)}"
        case OldProcessBack(name=name, addr=(host, _)):
            return f"Warning: {name}'s old process ({host}) spoke again after the hand-back; ignored"
        case Fenced(name=name):
            return (f"Warning: {name} handed the relationship to a newer lanpay of yours; "
                    f"this one can no longer pay (type exit)")
    return None


def _paired(event: Paired) -> str:
    host = event.peer_addr[0]
    if event.again:
        return (f"Paired again with {event.peer_name} ({host}) · new code {event.code}{_checked(event.verified)}"
                f" — the first pairing never completed on {event.peer_name}'s side; compare this code")
    lines = [
        f"Paired with {event.peer_name} ({host}) · code {event.code}{_checked(event.verified)}",
        WELCOME,
    ]
    if event.restored:
        lines.append(
            f"Restored from {event.peer_name}'s record: balance {format_amount(event.balance)}"
        )
    return "\n".join(lines)


def _memo(memo: str) -> str:
    return f" — {memo}" if memo else ""


def _checked(verified: bool) -> str:
    return ", verified by the shared code" if verified else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def error_text(exc: UserError, peer: str | None, left: bool = False) -> str:
    """The one ``Error:`` line for a request the core refused; nothing moved."""
    who = shown(peer) if peer else "the peer"
    match exc:
        case NotPaired(reason="restoring"):
            return f"Error: restoring the relationship with {who}; nothing was sent — try again in a moment"
        case NotPaired(reason="fenced"):
            return "Error: a newer lanpay of yours holds the relationship now; this one can no longer pay — nothing was sent"
        case NotPaired(reason="closed"):
            return "Error: this lanpay is closing — nothing was sent"
        case NotPaired():
            return "Error: not paired yet"
        case PeerUnavailable():
            state = "has left" if left else "is not responding"
            return f"Error: {who} {state} — nothing was sent"
        case _:
            return f"Error: {exc}"


# -- records for --json -------------------------------------------------------------

#: Fields that hold cents: a record carries them as "10.00" and as ``<name>_cents``.
_MONEY = {"amount", "balance"}


def money(name: str, cents: int) -> dict[str, Any]:
    """An amount the way every record carries it: a string with two decimals, and cents."""
    return {name: format_amount(cents), f"{name}_cents": cents}


_TYPES: dict[type, str] = {}


def event_type(event: Event) -> str:
    """``PaymentReceived`` -> ``payment_received``: the ``type`` of an event's record."""
    kind = _TYPES.get(type(event))
    if kind is None:
        kind = _TYPES[type(event)] = re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()
    return kind


def record(event: Event, peer: str | None = None) -> dict[str, Any]:
    """The JSON object for ``event``: its type, its fields (amounts twice, addresses split), its text."""
    clean = _cleaned(event)
    out: dict[str, Any] = {"type": event_type(event)}
    for name in _field_names(clean):
        value = getattr(clean, name)
        if name in _MONEY:
            out[name] = format_amount(value)
            out[name + "_cents"] = value
        elif name == "addr" or name == "peer_addr":
            out["addr"], out["port"] = value
        elif name == "addrs":
            out["addrs"] = [{"addr": host, "port": port} for host, port in value]
        else:
            out[name] = value
    out["text"] = _sentence(clean, peer)
    return out


def help_text() -> str:
    """One line per command: usage, then what it is for."""
    width = max(len(entry.usage) for entry in HELP)
    return "\n".join(f"  {entry.usage.ljust(width)}  {entry.summary}" for entry in HELP)


#: While a restarted lanpay waits for its relationship to be handed back, it knows no balance.
NOT_KNOWN_YET = "not known yet: it comes with the relationship, which is being handed back"


def balance_text(status: Status) -> str:
    """The balance alone on the first line (scripts read it); pending detail after."""
    if status.state == "restoring":
        return f"Balance {NOT_KNOWN_YET}"
    if status.state == "closed":
        return f"{format_amount(status.balance)}\n(when it was handed over; your newer lanpay has the current one)"
    lines = [format_amount(status.balance)]
    if status.pending:
        total = sum(amount for _, amount, _ in status.pending)
        count = len(status.pending)
        doubt = sum(1 for *_, in_doubt in status.pending if in_doubt)
        detail = f"(pending: {format_amount(total)} in {_count(count, 'payment')}"
        lines.append(detail + (f", {doubt} in doubt)" if doubt else ")"))
    return "\n".join(lines)


def balance_record(status: Status) -> dict[str, Any]:
    """``balance`` for scripts: the balance and every pending payment."""
    pending = [{"seq": seq, **money("amount", amount), "in_doubt": doubt}
               for seq, amount, doubt in status.pending]
    return {**money("balance", status.balance), "pending": pending}


def history_text(entries: Sequence[HistoryEntry], wall: Callable[[float], float]) -> str:
    """A table of payments, oldest first, with local wall-clock times.

    Above it, one line for the payments no longer listed one by one (``entries.earlier``,
    the totals the ledger folded them into), so the table never seems to be all there was.
    """
    earlier = earlier_text(_earlier_of(entries))
    if not entries:
        return earlier or "No payments yet."
    rows = [("#", "dir", "amount", "status", "time", "memo")]
    for e in entries:
        clock = time.strftime("%H:%M:%S", time.localtime(wall(e.at)))
        rows.append((str(e.seq), e.direction, format_amount(e.amount), _state(e), clock, shown(e.memo)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [earlier] if earlier else []
    for row in rows:
        cells = [
            cell.rjust(width) if i in (0, 2) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines)


def earlier_text(earlier: Earlier) -> str | None:
    """One line for the payments folded into totals: how many, and what they came to each way."""
    if not earlier.lines:
        return None
    sent, received = earlier.sent, earlier.received
    parts = []
    if sent.settled:
        parts.append(f"sent {format_amount(sent.settled_cents)} in {sent.settled}")
    if received.settled:
        parts.append(f"received {format_amount(received.settled_cents)} in {received.settled}")
    if sent.refused and received.refused:
        parts.append(f"{sent.refused + received.refused} refused ({sent.refused} of yours, "
                     f"{received.refused} of theirs)")
    elif sent.refused or received.refused:
        parts.append(f"{sent.refused} of yours refused" if sent.refused else f"{received.refused} of theirs refused")
    return f"{_count(earlier.lines, 'earlier payment')} not listed: " + ", ".join(parts)


def history_record(entries: Sequence[HistoryEntry], wall: Callable[[float], float]) -> dict[str, Any]:
    """``history`` for scripts: every payment listed, with its time in seconds since the epoch, and
    the totals of those no longer listed (``through``: the highest number folded, each way)."""
    earlier = _earlier_of(entries)
    return {"payments": [
        {"seq": e.seq, "direction": e.direction, **money("amount", e.amount), "status": _state(e),
         "time": round(wall(e.at), 3), "memo": shown(e.memo)}
        for e in entries
    ], "earlier": {"payments": earlier.lines, "sent": _totals(earlier.sent), "received": _totals(earlier.received)}}


def _earlier_of(entries: Sequence[HistoryEntry]) -> Earlier:
    return getattr(entries, "earlier", None) or Earlier()


def _totals(t: Totals) -> dict[str, Any]:
    return {"through": t.through, "count": t.settled, **money("amount", t.settled_cents),
            "refused": t.refused, **money("refused_amount", t.refused_cents)}


def _state(entry: HistoryEntry) -> str:
    return str(getattr(entry.status, "value", entry.status))


def peer_text(status: Status, left: bool = False, why_not: str | None = None) -> str:
    """Who the counterpart is and how the link is doing; before pairing, what stands in the way."""
    last = f"\nLast:     {shown(why_not)}" if why_not else ""
    if status.peer_name is None:
        wanted = getattr(status, "wanted", None)
        return f"Not paired yet: looking for {shown(wanted) if wanted else 'a peer'} on the LAN…" + last
    name = shown(status.peer_name)
    if status.peer_addr is None:
        return f"Not paired yet: pairing with {name}…" + last
    host, port = status.peer_addr
    requests = getattr(status, "requests", ())
    if status.verified:
        check = "verified by the shared code"
    elif requests:          # the code to compare now is the request's, below: not this one
        check = "the process you were paired with; compare the request's code below"
    else:
        check = f"compare with {name}'s screen"
    agree = {True: "agree", False: "DISAGREE", None: "not compared yet"}[status.agree]
    asking = [f"Request:  {shown(who)} at {h}:{p} asks for the relationship back; code {code}: compare with "
              f"{shown(who)}'s screen, then type accept" for who, (h, p), code in requests]
    return "\n".join(
        [
            f"Peer:     {name} at {host}:{port} ({'left' if left else status.state})",
            f"Code:     {status.code} ({check})",
            f"Link:     {_link(status, left)}, RTT {_rtt(status.rtt)}",
            f"Views:    {'no longer compared' if status.state == 'closed' else agree}",
            f"Balance:  {_balance_line(status)}",
            *asking,
        ]
    )


def _balance_line(status: Status) -> str:
    if status.state == "restoring":
        return NOT_KNOWN_YET
    if status.state == "closed":
        return f"{format_amount(status.balance)} when it was handed over (no longer current)"
    return format_amount(status.balance)


def peer_record(status: Status, left: bool = False, why_not: str | None = None) -> dict[str, Any]:
    """``peer`` for scripts (``why_not``: the last notice that stood in the way of pairing)."""
    host, port = status.peer_addr or (None, None)
    return {"state": status.state, "name": shown(status.peer_name) if status.peer_name else None,
            "addr": host, "port": port, "code": status.code, "verified": status.verified,
            "link": _link(status, left) if status.peer_addr else None,
            "rtt_ms": None if status.rtt is None else round(status.rtt * 1000, 3),
            "agree": status.agree, **money("balance", status.balance),
            "wanted": getattr(status, "wanted", None),
            "requests": [{"name": shown(who), "addr": h, "port": p, "code": code}
                         for who, (h, p), code in getattr(status, "requests", ())],
            "why_not": shown(why_not) if why_not else None}


#: A process whose relationship a newer lanpay of the same person took over (fenced).
SUPERSEDED = "superseded: your newer lanpay holds the relationship"


def _link(status: Status, left: bool) -> str:
    """One wording per state of the link, used by every line that shows it."""
    if status.state == "closed":
        return SUPERSEDED
    if left:
        return "left"
    return "online" if status.online else "not responding"


def toolbar_text(status: Status, left: bool = False, width: int | None = None) -> str:
    """The one-line status under the prompt, fitted to ``width`` columns when given.

    A terminal cuts what does not fit, and a balance cut short reads as another
    amount ("balance -7" for -7.34).  So when the whole line is too wide, the parts
    that matter least go first (the RTT, the address, the link, who the peer is),
    and the balance is shown whole or, in a very narrow window, not at all.
    """
    who: list[str] = []           # (each list: the parts, least needed last)
    if status.peer_name is None:
        who.append("looking for a peer…")
    elif status.peer_addr is None:
        who.append(f"pairing with {shown(status.peer_name)}…")
    else:
        who.append(shown(status.peer_name))
        if status.state == "restoring":
            who.append("restoring…")
        elif status.state == "closed":
            who.append(SUPERSEDED)
        elif left:
            who.append(_link(status, left))          # no round trip to time any more
        else:
            who += [_link(status, left), f"RTT {_rtt(status.rtt)}"]
        if getattr(status, "requests", ()) and status.state != "restoring":
            who.insert(1, "asks to come back: see peer, then accept")     # kept while there is room
    # no balance is known until it is handed back, and none is current once handed over
    no_balance = status.state in ("restoring", "closed")
    money_parts = [] if no_balance else [f"balance {format_amount(status.balance)}"]
    if status.pending:
        money_parts.append(f"{len(status.pending)} pending")
    address = f" ({status.peer_addr[0]})" if status.peer_name is not None and status.peer_addr is not None else ""
    full = " · ".join([who[0] + address, *who[1:], *money_parts])
    if width is None or columns(full) <= width:
        return full
    named = [who[0] + address, *who[1:]]
    shorter = [named[:2] if len(named) > 2 else None,          # no RTT
               who[:2] if len(who) > 1 else None,              # no address either
               who[:1]]                                        # only who the peer is
    for parts in shorter:
        line = " · ".join([*parts, *money_parts]) if parts is not None else ""
        if line and columns(line) <= width:
            return line
    if no_balance:
        return ""
    for line in (" · ".join(money_parts), money_parts[0], format_amount(status.balance)):
        if columns(line) <= width:
            return line
    return ""


def columns(text: str) -> int:
    """The columns ``text`` takes on a terminal: wide (East Asian) characters take two,
    combining marks none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def _rtt(rtt: float | None) -> str:
    return "unknown" if rtt is None else f"{rtt * 1000:.1f} ms"


def looking_text(want: str | None) -> str:
    """The first line, so the user knows lanpay is waiting for someone."""
    return f"Looking for {want} on the LAN…" if want else "Looking for a peer on the LAN…"


def candidates(before_cursor: str) -> list[str]:
    """The command words the typed word could still become (all of them on an empty line);
    none once a space follows the word."""
    typed = before_cursor.lstrip()
    if any(ch.isspace() for ch in typed):
        return []
    return [w for w in WORDS if w.startswith(typed.lower())]


def complete_word(before_cursor: str) -> str | None:
    """What Tab inserts: the rest of the one command word that fits (and a space), or of the
    longest prefix the candidates share; None when there is nothing to add.

    Pure and synchronous, so a Tab that arrives in the same burst as the letters
    (a paste) completes them, and a second Tab has nothing left to add.
    """
    typed = before_cursor.lstrip()
    if not typed or any(ch.isspace() for ch in typed):
        return None
    word = typed.lower()
    matches = [w for w in WORDS if w.startswith(word)]
    if len(matches) == 1:
        return matches[0][len(word):] + " "
    rest = os.path.commonprefix(matches)[len(word):] if matches else ""
    return rest or None
