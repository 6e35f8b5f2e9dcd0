"""What the user reads: every event's sentence, the tables, and both shells' behaviour."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from budget import examples
from lanpay.core.errors import NotPaired, OverLimit, PeerUnavailable, UserError
from lanpay.core import text as text_rules
from lanpay.core import wire
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
from lanpay.render import (
    REFUSED,
    balance_text,
    candidates,
    complete_word,
    error_text,
    help_text,
    history_text,
    peer_record,
    peer_text,
    record,
    render,
    shown,
    columns,
    toolbar_text,
)
from lanpay.ui import InteractiveShell, LineShell, Shell, stdin_lines
from lanpay.commands import CommandError, parse

BOB = ("127.0.0.1", 40001)

RENDERED: list[tuple[Event, str | None]] = [
    (
        Paired("bob", BOB, "41-87-03"),
        "Paired with bob (127.0.0.1) · code 41-87-03\nWelcome to your peering relationship!",
    ),
    (
        Paired("bob", BOB, "41-87-03", restored=True, balance=1000),
        "Paired with bob (127.0.0.1) · code 41-87-03\n"
        "Welcome to your peering relationship!\n"
        "Restored from bob's record: balance 10.00",
    ),
    (
        Paired("bob", BOB, "41-87-03", verified=True),
        "Paired with bob (127.0.0.1) · code 41-87-03, verified by the shared code\n"
        "Welcome to your peering relationship!",
    ),
    (
        Paired("bob", BOB, "55-12-90", again=True),
        "Paired again with bob (127.0.0.1) · new code 55-12-90 — the first pairing never completed "
        "on bob's side; compare this code",
    ),
    (PaymentReceived(1, 1000, "", 1000), "You were paid 10.00!"),
    (PaymentReceived(2, 5, "lunch", 1005), "You were paid 0.05! — lunch"),
    (PaymentReceived(3, 700, "", 1705, resent=True),
     "You were paid 7.00 (#3, completed in the hand-back: your previous process may have shown it already)"),
    (PaymentConfirmed(1, 1000, "", -1000), "Sent 10.00 to bob (#1)"),
    (PaymentConfirmed(2, 250, "tea", -1250), "Sent 2.50 to bob (#2) — tea"),
    (
        PaymentConfirmed(3, 1000, "", -2250, was_in_doubt=True),
        "Sent 10.00 to bob (#3) (confirmed after the delay)",
    ),
    (
        PaymentInDoubt(3, 1000),
        "Payment #3 of 10.00 is in doubt: bob has not confirmed it yet; still trying",
    ),
    (
        PaymentRejected(3, 1000, "over bob's limit"),
        "Error: bob refused payment #3 of 10.00: over bob's limit",
    ),
    (PeerSilent("bob"), "bob is not responding"),
    (PeerBack("bob"), "bob is back"),
    (PeerLeft("bob"), "bob left"),
    (
        PeerRestarted("bob", BOB, "12-34-56"),
        "bob restarted; the relationship was handed back (code 12-34-56)",
    ),
    (
        PeerRestarted("bob", BOB, "12-34-56", verified=True),
        "bob restarted; the relationship was handed back "
        "(code 12-34-56, verified by the shared code)",
    ),
    (
        NameConflict("bob", (("10.0.0.2", 47474), ("10.0.0.3", 47474))),
        "Warning: more than one peer is called bob (10.0.0.2, 10.0.0.3); pairing with neither",
    ),
    (
        WarningsRepeated("namesake", "bob", 12, 3.0),
        "Warning: 12 more peers also calling themselves bob in the last minute or more (counted, not listed)",
    ),
    (
        ImpostorSuspected("bob", ("10.0.0.9", 5000)),
        "Warning: 10.0.0.9 claims to be bob restarted, but bob still answers; ignored",
    ),
    (PairingRefused("carol", "already paired"), "carol refused to pair: already paired"),
    (PeerTaken("bob", "paired"), "bob is already paired with someone else; still looking"),
    (ImpersonationSeen("alice", "10.0.0.9"),
     "Warning: 10.0.0.9 claimed to be you restarted; alice did not hand it the relationship"),
    (PeerTaken("bob", "wants-other"), "bob is waiting for someone else (it was started with --peer); still looking"),
    (CodeDiffers("alice", "10.0.0.4", theirs=True),
     "alice (10.0.0.4) uses --code and you do not, so you never pair: start both with the same --code, "
     "or both without; still looking"),
    (CodeDiffers("alice", "10.0.0.4", theirs=False),
     "alice (10.0.0.4) does not use --code and you do, so you never pair: start both with the same --code, "
     "or both without; still looking"),
    (CodeDiffers("bob", "10.0.0.5", theirs=False, holding=True),
     "Warning: a lanpay called bob (10.0.0.5) started without --code, while your relationship with bob "
     "uses one: it cannot take it over (if bob restarted, it must start again with the same --code)"),
    (CodeDiffers("bob", "10.0.0.5", theirs=True, holding=True),
     "Warning: a lanpay called bob (10.0.0.5) started with a --code, while your relationship with bob "
     "has none: it cannot take it over (if bob restarted, it must start again without --code)"),
    (PeerTaken("alice", "yours-elsewhere"),
     "alice is paired with another lanpay of your name, not this one (if that was your earlier lanpay, "
     "alice hands the relationship back once it is gone; else someone else runs lanpay under your name: "
     "start with another --name); still looking"),
    (PeerTaken("bob", "same-name"), "Another lanpay on the LAN is also called bob, and two of one name never pair: "
                                    "one of you starts again with another --name; still looking"),
    (PairingFailed("carol", "wrong code"), "Pairing with carol failed: wrong code"),
    (
        PairingFailed("bob", wire.REFUSE_TEXT[wire.R_BAD_CODE]),
        "Pairing with bob failed: the code words differ (or someone on the network interfered); "
        "agree on the words again, then start both sides with the same --code",
    ),
    (
        PairingRefused("bob", wire.REFUSE_TEXT[wire.R_CODE_MISMATCH]),
        "bob refused to pair: one side uses --code and the other does not; "
        "start both with the same --code, or both without",
    ),
    (
        PairingRefused("bob", wire.REFUSE_TEXT[wire.R_NOT_WANTED]),
        "bob refused to pair: it is waiting for someone else (its --peer names another); "
        "lanpay keeps looking",
    ),
    (
        PairingRefused("bob", wire.REFUSE_TEXT[wire.R_TAKEN]),
        "bob refused to pair: it is already paired with someone else; lanpay keeps looking",
    ),
    (
        PairingRefused("bob", wire.REFUSE_TEXT[wire.R_NAMESAKE]),
        "bob refused to pair: it also hears another lanpay with your name, and pairs with neither "
        "(one of yours that just ended is forgotten within 10 s; otherwise give one of the two another "
        "--name, or start both sides with the same --code); lanpay keeps trying",
    ),
    (
        PaymentDeclined(4, 5000, "rent", "it would exceed your limit of 20.00"),
        "Refused bob's payment #4 of 50.00 — rent: it would exceed your limit of 20.00; nothing moved",
    ),
    (
        HandbackRequested("bob", ("10.0.0.5", 40001), "12-34-56", 1000, 4, 1),
        "bob (10.0.0.5) restarted and asks for the relationship back (your balance 10.00, 4 payments, "
        "1 pending). Compare code 12-34-56 with bob's screen, then type accept",
    ),
    (
        HandbackAwaited("alice", ("10.0.0.4", 40002), "12-34-56"),
        "alice (10.0.0.4) still holds the relationship; waiting for alice to type accept. "
        "Compare code 12-34-56 with alice's screen",
    ),
    (PaymentsVoided(3, 5), "Your payments #3..#5 never reached bob: not paid"),
    (PaymentsVoided(3, 3), "Your payment #3 never reached bob: not paid"),
    (
        RestoreFailed("alice", "timeout"),
        "Warning: the hand-back with alice did not complete: it was not accepted in time; looking again",
    ),
    (
        RestoreFailed("alice", "other"),
        "Warning: the hand-back with alice did not complete: its user accepted another lanpay of your name "
        "instead (the one whose code matched)",
    ),
    (
        RestoreFailed("alice", "not-accepted"),
        "Warning: the hand-back with alice did not complete: its user did not accept it in time; lanpay asks again",
    ),
    (
        RestoreFailed("alice", "left"),
        "Warning: the hand-back with alice did not complete: the other side left before handing it back",
    ),
    (
        RestoreFailed("alice", "kept"),
        "Warning: the hand-back with alice did not complete: it hears your earlier lanpay still answering "
        "and keeps the relationship with that one (if it is yours, use it, or end it with exit and start "
        "again; else someone else runs lanpay under your name: start with another --name)",
    ),
    (
        PairingRefused("alice", wire.REFUSE_TEXT[wire.R_OLD_ALIVE]),
        "alice refused to pair: it is paired with another lanpay of your name, which still answers (your "
        "earlier one, if you ran it: use that one, or end it with exit; else someone else runs lanpay under "
        "your name: start with another --name); lanpay keeps trying",
    ),
    (
        OldProcessBack("bob", ("10.0.0.5", 40001)),
        "Warning: bob's old process (10.0.0.5) spoke again after the hand-back; ignored",
    ),
    (
        Fenced("alice"),
        "Warning: alice handed the relationship to a newer lanpay of yours; this one can no longer "
        "pay (type exit)",
    ),
    (
        LedgerAgreement(False),
        "Warning: your ledger and bob's disagree (check 'balance' on both sides)",
    ),
    (LedgerAgreement(True), None),
]


@pytest.mark.parametrize(("event", "text"), RENDERED)
def test_every_event_has_its_sentence(event: Event, text: str | None) -> None:
    assert render(event, "bob") == text


def test_every_event_type_is_covered() -> None:
    import lanpay.core.events as events

    types = {
        obj
        for obj in vars(events).values()
        if isinstance(obj, type) and issubclass(obj, events.Event) and obj is not events.Event
    }
    assert types == {type(event) for event, _ in RENDERED}


HOSTILE = "x\x9b2J\u202eevil"


def test_network_text_is_never_printed_raw() -> None:
    """A forged name or memo with a C1 CSI and a bidi override is shown escaped, everywhere."""
    events: list[Event] = [
        PairingFailed(HOSTILE, "stopped\x1b[2J answering"),
        PaymentReceived(1, 100, HOSTILE, 100),
        PaymentDeclined(1, 100, HOSTILE, "over\u2066 limit"),
        NameConflict(HOSTILE, (("10.0.0.2", 1), ("10.0.0.3", 1))),
        HandbackRequested(HOSTILE, ("10.0.0.5", 1), "1", 0, 0, 0),
        PaymentConfirmed(1, 100, "\u202dmemo", -100),
    ]
    for event in events:
        text = render(event, HOSTILE)
        assert text is not None
        assert not any(ch in text for ch in "\x9b\x1b\u202e\u202d\u2066"), text
        assert "x\\u009b2J\\u202eevil" in text or "\\u202dmemo" in text, text
        rec = record(event, HOSTILE)
        assert not any(isinstance(v, str) and any(ch in v for ch in "\x9b\u202e") for v in rec.values())
    assert render(PaymentReceived(1, 100, HOSTILE, 100)) == "You were paid 1.00! — x\\u009b2J\\u202eevil"
    assert shown("zoë \U0001F468\u200D\U0001F469") == "zoë \U0001F468\u200D\U0001F469"
    entries = [FakeEntry(1, "in", 100, HOSTILE, 0.0, "received")]
    assert "x\\u009b2J\\u202eevil" in history_text(entries, lambda t: t)
    named = FakeStatus("paired", HOSTILE, BOB, "1", True, None, 0)
    assert "\u202e" not in peer_text(named) and "\u202e" not in toolbar_text(named)


def walked(text: str) -> str:
    """The sanitiser written the plain way: one look at the text rules per character."""
    return "".join(
        (f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        if text_rules.refused(ch) is not None else ch
        for ch in text
    )


@pytest.mark.parametrize(("raw", "safe"), [
    ("", ""),
    ("plain ascii, 10.00 & ~", "plain ascii, 10.00 & ~"),
    ("\x00\x07\x08\t\n\r\x1b\x1f", "\\u0000\\u0007\\u0008\\u0009\\u000a\\u000d\\u001b\\u001f"),
    ("a\x1b[31mred\x1b[0m", "a\\u001b[31mred\\u001b[0m"),
    ("\x7f\x80\x85\x9b\x9f", "\\u007f\\u0080\\u0085\\u009b\\u009f"),
    ("\u061c\u200e\u200f", "\\u061c\\u200e\\u200f"),
    ("\u202a\u202b\u202c\u202d\u202e", "\\u202a\\u202b\\u202c\\u202d\\u202e"),
    ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),
    ("line\u2028para\u2029", "line\\u2028para\\u2029"),
    ("\ud800\udbff\udc00\udfff", "\\ud800\\udbff\\udc00\\udfff"),
    ("10.00\u202e00.01", "10.00\\u202e00.01"),
    # allowed, though some are not "printable": kept exactly as they came
    ("\u00a0\u00ad\u200b\u200c\u200d\u202f\u206a\u3000\ufeff\ufffd", "\u00a0\u00ad\u200b\u200c\u200d\u202f\u206a\u3000\ufeff\ufffd"),
    ("zoë \U0001F468\u200D\U0001F469\u200D\U0001F467 \U0010ffff", "zoë \U0001F468\u200D\U0001F469\u200D\U0001F467 \U0010ffff"),
    ("a\\u202e stays as typed", "a\\u202e stays as typed"),
])
def test_shown_escapes_exactly_what_the_text_rules_refuse(raw: str, safe: str) -> None:
    assert shown(raw) == safe == walked(raw) == text_rules.escape(raw)
    assert shown(safe) == safe


def test_the_refused_class_and_the_printable_shortcut_agree_with_the_rules_for_every_code_point() -> None:
    for code in range(0x110000):
        ch = chr(code)
        rule = text_rules.refused(ch)
        assert (REFUSED.match(ch) is not None) == (rule is not None), hex(code)
        assert rule is None or not ch.isprintable(), hex(code)


#: Text that mixes every kind of character, refused ones included (surrogates too).
ANY_TEXT = st.text(st.one_of(
    st.characters(exclude_categories=()),
    st.sampled_from(sorted(text_rules.BIDI_CONTROLS) + ["\x1b", "\x9b", "\x7f", "\u2028", "\u2029",
                                                         "\ud800", "\u200d", "\u00a0", "\\"]),
))


@settings(deadline=None, max_examples=examples(300))
@given(ANY_TEXT)
def test_shown_is_the_character_walk(raw: str) -> None:
    assert shown(raw) == walked(raw) == text_rules.escape(raw)


@settings(deadline=None, max_examples=examples(150))
@given(st.sampled_from([event for event, _ in RENDERED]), ANY_TEXT, st.one_of(st.none(), ANY_TEXT))
def test_every_string_of_an_event_is_shown_as_the_character_walk_shows_it(
        event: Event, raw: str, peer: str | None) -> None:
    strings = [f.name for f in dataclasses.fields(event) if isinstance(getattr(event, f.name), str)]
    hostile = dataclasses.replace(event, **{name: raw for name in strings})
    walked_event = dataclasses.replace(event, **{name: walked(raw) for name in strings})
    walked_peer = walked(peer) if peer else peer
    assert render(hostile, peer) == render(walked_event, walked_peer)
    rec = record(hostile, peer)
    assert rec == record(walked_event, walked_peer)
    assert all(rec[name] == walked(raw) for name in strings if name in rec)


def test_every_event_has_a_json_record_with_amounts_as_text_and_cents() -> None:
    for event, text in RENDERED:
        rec = record(event, "bob")
        assert rec["text"] == text and isinstance(rec["type"], str)
        assert json.loads(json.dumps(rec)) == rec
    assert record(PaymentReceived(2, 5, "lunch", -1005), "bob") == {
        "type": "payment_received", "seq": 2, "amount": "0.05", "amount_cents": 5, "memo": "lunch",
        "balance": "-10.05", "balance_cents": -1005, "resent": False, "text": "You were paid 0.05! — lunch",
    }
    assert record(Paired("bob", BOB, "41-87-03")) == {
        "type": "paired", "peer_name": "bob", "addr": "127.0.0.1", "port": 40001, "code": "41-87-03",
        "restored": False, "verified": False, "balance": "0.00", "balance_cents": 0, "again": False,
        "text": "Paired with bob (127.0.0.1) · code 41-87-03\nWelcome to your peering relationship!",
    }
    conflict = record(NameConflict("bob", (("10.0.0.2", 1), ("10.0.0.3", 2))))
    assert conflict["addrs"] == [{"addr": "10.0.0.2", "port": 1}, {"addr": "10.0.0.3", "port": 2}]
    assert record(LedgerAgreement(True))["type"] == "ledger_agreement"


def test_tab_completes_the_command_word_once() -> None:
    assert complete_word("bal") == "ance "
    assert complete_word("  BAL") == "ance "
    assert complete_word("pe") == "er "
    assert complete_word("pay") == " "
    assert complete_word("p") is None              # pay and peer: nothing they share to add
    assert complete_word("e") == "xit "
    assert complete_word("balance ") is None       # a second Tab adds nothing, removes nothing
    assert complete_word("pay 10 ba") is None      # only the command word completes
    assert complete_word("") is None and complete_word("zz") is None


def test_tab_names_the_commands_a_word_could_become() -> None:
    assert candidates("p") == ["pay", "peer"] and candidates(" P") == ["pay", "peer"]
    assert candidates("") == ["balance", "pay", "history", "peer", "accept", "help", "exit", "quit"]
    assert candidates("pay 1") == [] and candidates("zz") == []


def test_unknown_peer_name_reads_naturally() -> None:
    assert render(PaymentInDoubt(1, 100)) == (
        "Payment #1 of 1.00 is in doubt: the peer has not confirmed it yet; still trying"
    )


def test_user_errors_become_one_error_line() -> None:
    assert error_text(NotPaired("no peer"), None) == "Error: not paired yet"
    assert error_text(NotPaired("x", "restoring"), "alice") == \
        "Error: restoring the relationship with alice; nothing was sent — try again in a moment"
    assert "can no longer pay" in error_text(NotPaired("x", "fenced"), "alice")
    assert error_text(PeerUnavailable("x"), "bob") == (
        "Error: bob is not responding — nothing was sent"
    )
    assert error_text(PeerUnavailable("x"), "bob", left=True) == (
        "Error: bob has left — nothing was sent"
    )
    assert error_text(OverLimit("over your limit of 50.00"), "bob") == (
        "Error: over your limit of 50.00"
    )


@dataclass(frozen=True)
class FakeStatus:
    state: str = "looking"
    peer_name: str | None = None
    peer_addr: tuple[str, int] | None = None
    code: str | None = None
    online: bool = False
    rtt: float | None = None
    balance: int = 0
    pending: tuple[tuple[int, int, bool], ...] = ()
    agree: bool | None = None
    verified: bool = False
    drops: int = 0
    wanted: str | None = None
    requests: tuple[tuple[str, tuple[str, int], str], ...] = ()


PAIRED = FakeStatus("paired", "bob", BOB, "41-87-03", True, 0.00042, -1000, (), True)


@dataclass(frozen=True)
class FakeEntry:
    seq: int
    direction: str
    amount: int
    memo: str
    at: float
    status: str


def test_balance_is_alone_on_its_line_with_pending_after() -> None:
    assert balance_text(FakeStatus(balance=-1000)) == "-10.00"
    assert balance_text(FakeStatus(balance=0)) == "0.00"
    one = FakeStatus(balance=-1000, pending=((2, 1000, False),))
    assert balance_text(one) == "-10.00\n(pending: 10.00 in 1 payment)"
    two = FakeStatus(balance=500, pending=((2, 1000, True), (3, 250, False)))
    assert balance_text(two) == "5.00\n(pending: 12.50 in 2 payments, 1 in doubt)"


def test_history_is_a_table_in_local_time() -> None:
    import time

    at = time.mktime((2024, 5, 1, 14, 3, 12, 0, 0, -1))
    entries = [
        FakeEntry(1, "out", 1000, "lunch", at, "confirmed"),
        FakeEntry(1, "in", 5, "", at + 61, "received"),
        FakeEntry(12, "out", 123456, "", at + 3600, "in-doubt"),
    ]
    assert history_text(entries, lambda t: t).split("\n") == [
        " #  dir   amount  status     time      memo",
        " 1  out    10.00  confirmed  14:03:12  lunch",
        " 1  in      0.05  received   14:04:13",
        "12  out  1234.56  in-doubt   15:03:12",
    ]
    assert history_text([], lambda t: t) == "No payments yet."


def test_peer_info() -> None:
    assert peer_text(FakeStatus()) == "Not paired yet: looking for a peer on the LAN…"
    assert peer_text(FakeStatus("pairing", "bob")) == "Not paired yet: pairing with bob…"
    assert peer_text(PAIRED).split("\n") == [
        "Peer:     bob at 127.0.0.1:40001 (paired)",
        "Code:     41-87-03 (compare with bob's screen)",
        "Link:     online, RTT 0.4 ms",
        "Views:    agree",
        "Balance:  -10.00",
    ]


def test_a_narrow_toolbar_drops_parts_but_never_cuts_the_balance() -> None:
    busy = FakeStatus("paired", "bob", BOB, "1", True, 0.0004, -123456, ((1, 5, False), (2, 6, False)))
    full = toolbar_text(busy)
    assert full == "bob (127.0.0.1) · online · RTT 0.4 ms · balance -1234.56 · 2 pending"
    assert toolbar_text(busy, width=len(full)) == full
    seen = []
    for width in range(len(full), -1, -1):
        line = toolbar_text(busy, width=width)
        assert columns(line) <= width, (width, line)
        assert line == "" or "-1234.56" in line, (width, line)         # whole, or not at all
        assert "-1234.5 " not in line + " " and not line.endswith("-1234.5")
        seen.append(line)
    assert seen[-1] == "" and "-1234.56" in seen[-9]
    assert "bob (127.0.0.1) · online · balance -1234.56 · 2 pending" in seen      # the RTT goes first
    assert "bob · online · balance -1234.56 · 2 pending" in seen                 # then the address
    assert "bob · balance -1234.56 · 2 pending" in seen                          # then the link
    assert "balance -1234.56" in seen and "-1234.56" in seen


def test_columns_counts_what_a_terminal_shows() -> None:
    assert columns("bob") == 3 and columns("日本") == 4 and columns("e\u0301") == 1


def test_peer_info_after_the_peer_left_says_left() -> None:
    gone = FakeStatus("paired", "bob", BOB, "41-87-03", False, None, 0)
    assert "Link:     left, RTT unknown" in peer_text(gone, left=True).split("\n")
    assert peer_text(gone, left=True).split("\n")[0] == "Peer:     bob at 127.0.0.1:40001 (left)"
    assert "Link:     not responding, RTT unknown" in peer_text(gone).split("\n")


def test_toolbar() -> None:
    assert toolbar_text(FakeStatus()) == "looking for a peer… · balance 0.00"
    busy = FakeStatus("paired", "bob", BOB, "1", False, None, 250, ((1, 5, True),))
    assert toolbar_text(busy) == (
        "bob (127.0.0.1) · not responding · RTT unknown · balance 2.50 · 1 pending")
    assert toolbar_text(busy, left=True) == "bob (127.0.0.1) · left · balance 2.50 · 1 pending"   # no RTT to show
    assert toolbar_text(PAIRED) == "bob (127.0.0.1) · online · RTT 0.4 ms · balance -10.00"
    # a restarted lanpay knows no balance until it is handed back: 0.00 would be a guess
    assert toolbar_text(FakeStatus("restoring", "alice")) == "pairing with alice…"
    restoring = FakeStatus("restoring", "alice", BOB, "1", False, None, 0)
    assert toolbar_text(restoring) == "alice (127.0.0.1) · restoring…"
    assert toolbar_text(restoring, width=18) == "alice · restoring…"
    assert toolbar_text(restoring, width=12) == "alice"
    assert toolbar_text(restoring, width=4) == ""


def test_a_superseded_process_does_not_show_a_live_link_or_a_current_balance() -> None:
    """A newer lanpay of ours took the relationship over: this one's link and balance are history."""
    old = FakeStatus("closed", "bob", BOB, "1", True, 0.013, -1000)
    assert toolbar_text(old) == "bob (127.0.0.1) · superseded: your newer lanpay holds the relationship"
    lines = peer_text(old).split("\n")
    assert "Link:     superseded: your newer lanpay holds the relationship, RTT 13.0 ms" in lines
    assert "Balance:  -10.00 when it was handed over (no longer current)" in lines
    assert "Views:    no longer compared" in lines
    assert balance_text(old) == "-10.00\n(when it was handed over; your newer lanpay has the current one)"


def test_balance_and_peer_while_restoring_say_the_balance_is_not_known_yet() -> None:
    restoring = FakeStatus("restoring", "alice", BOB, "1", False, None, 0)
    assert balance_text(restoring) == (
        "Balance not known yet: it comes with the relationship, which is being handed back")
    assert ("Balance:  not known yet: it comes with the relationship, which is being handed back"
            in peer_text(restoring).split("\n"))


def test_help_lists_every_command() -> None:
    lines = help_text().split("\n")
    assert [line.split()[0] for line in lines] == ["balance", "pay", "history", "peer", "accept", "help", "exit"]
    assert all(len(line.split("  ")) >= 2 for line in lines)


# -- the shells against a fake node -------------------------------------------------


@dataclass
class FakeNode:
    """Confirms (or refuses) payments on the next loop turn, as the real node would."""

    shell: Any = None
    balance: int = 0
    refuse: Exception | None = None
    answer: str = "confirm"
    seq: int = 0
    closed: list[float] = field(default_factory=list)
    outcomes: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    known_at_start: list[int] = field(default_factory=list)   # outcomes known when each payment started
    attempts: int = 0                                         # send_payment calls, refused ones included
    limit: int | None = None                                  # like --limit: the pending ones count
    amounts: dict[int, int] = field(default_factory=dict)
    wait_on_close: bool = False      # close() waits out its grace while payments are pending, as the node does
    stop_calls: int = 0
    waited_out: bool = False         # close() waited its whole grace
    _stop: asyncio.Event | None = None

    def status(self) -> FakeStatus:
        pending = tuple((s, 1, False) for s, f in self.outcomes.items() if not f.done())
        return FakeStatus(balance=self.balance, pending=pending)

    def history(self) -> list[FakeEntry]:
        return []

    def wall_time(self, at: float) -> float:
        return at

    def send_payment(self, cents: int, memo: str = "") -> tuple[int, asyncio.Future[Any]]:
        self.attempts += 1
        if self.refuse is not None:
            raise self.refuse
        pending = sum(self.amounts[s] for s, f in self.outcomes.items() if not f.done())
        if self.limit is not None and self.balance - pending - cents < -self.limit:
            raise OverLimit(f"paying {cents} would pass your limit")
        self.known_at_start.append(sum(f.done() for f in self.outcomes.values()))
        self.seq += 1
        self.amounts[self.seq] = cents
        outcome = asyncio.get_running_loop().create_future()
        self.outcomes[self.seq] = outcome
        if self.answer == "confirm":
            asyncio.get_running_loop().call_later(0.01, self._confirm, self.seq, cents, memo)
        return self.seq, outcome

    def _confirm(self, seq: int, cents: int, memo: str) -> None:
        self.balance -= cents
        event = PaymentConfirmed(seq, cents, memo, self.balance)
        self.shell.on_event(event)
        self.outcomes[seq].set_result(event)

    def _reject(self, seq: int, reason: str = "over their limit") -> None:
        event = PaymentRejected(seq, self.amounts[seq], reason)
        self.shell.on_event(event)
        self.outcomes[seq].set_result(event)

    accepted: int = 0
    waiting_consent: bool = False

    def accept(self, code: str | None = None) -> None:
        if not self.waiting_consent:
            raise UserError("nothing is waiting for your consent")
        self.accepted += 1

    async def close(self, grace: float = 3.0) -> None:
        self.closed.append(grace)
        if self.wait_on_close and self.status().pending:
            self._stop = asyncio.Event()
            try:
                await asyncio.wait_for(self._stop.wait(), grace)
            except asyncio.TimeoutError:
                self.waited_out = True

    def stop_waiting(self) -> None:
        self.stop_calls += 1
        if self._stop is not None:
            self._stop.set()


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body on a fresh event loop (no plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


async def lines_of(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


def line_shell(**node_args: Any) -> tuple[LineShell, FakeNode, list[str]]:
    out: list[str] = []
    shell = LineShell(out.append)
    node = FakeNode(shell=shell, **node_args)
    return shell, node, out


def script_shell(timeout: float | None = None, as_json: bool = False,
                 **node_args: Any) -> tuple[LineShell, FakeNode, list[str], list[str]]:
    """A line shell that also keeps what it sent to stderr."""
    out: list[str] = []
    err: list[str] = []
    shell = LineShell(out.append, as_json=as_json, err=err.append, timeout=timeout)
    node = FakeNode(shell=shell, **node_args)
    return shell, node, out, err


@sync
async def test_a_script_whose_commands_all_succeed_exits_0_and_writes_nothing_to_stderr() -> None:
    shell, node, out, err = script_shell()
    shell.on_event(Paired("bob", BOB, "1"))
    assert await shell.run(node, lines_of("pay 1", "balance", "history", "peer", "help")) == 0
    assert err == [] and "Sent 1.00 to bob (#1)" in out


@sync
async def test_a_refused_command_makes_the_status_1_and_its_error_goes_to_stderr_too() -> None:
    shell, node, out, err = script_shell()
    shell.on_event(Paired("bob", BOB, "1"))
    assert await shell.run(node, lines_of("pay abc", "pay 2", "accept")) == 1
    assert err == ["Error: 'abc' is not an amount (write it like 10 or 10.50)",
                   "Error: nothing is waiting for your consent"]
    assert [line for line in out if line.startswith("Error:")] == err
    assert node.balance == -200          # the good command in between still ran


@sync
async def test_a_payment_the_peer_rejects_makes_the_status_1() -> None:
    shell, node, out, err = script_shell(answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 60")))
    await asyncio.sleep(0.02)
    event = PaymentRejected(1, 6000, "it would exceed their limit")
    shell.on_event(event)
    node.outcomes[1].set_result(event)
    assert await asyncio.wait_for(task, 10) == 1
    assert err == ["Error: bob refused payment #1 of 60.00: it would exceed their limit"]


@sync
async def test_timeout_gives_up_waiting_for_pairing_with_one_error_and_status_1() -> None:
    shell, node, out, err = script_shell(timeout=0.05)
    assert await asyncio.wait_for(shell.run(node, lines_of("balance", "pay 1")), 10) == 1
    assert out == ["Error: not paired within 0.05 s (--timeout); giving up", "Goodbye."]
    assert err == out[:1] and node.seq == 0       # the rest of the script did not run


@sync
async def test_timeout_gives_up_waiting_for_a_payment_even_once_in_doubt() -> None:
    shell, node, out, err = script_shell(timeout=0.2, answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 3", "balance")))
    await asyncio.sleep(0.02)
    shell.on_event(PaymentInDoubt(1, 300))
    assert await asyncio.wait_for(task, 10) == 1
    failed = "Error: payment #1 of 3.00 not confirmed by bob within 0.2 s (--timeout); giving up (it may still arrive)"
    assert err == [failed]
    assert out[out.index(failed) + 1].startswith("Warning: leaving with 1 payment(s) not confirmed")
    assert "0.00" not in out               # balance never ran
    assert out[-1] == "Goodbye."


@sync
async def test_with_a_timeout_a_payment_confirmed_in_time_succeeds() -> None:
    shell, node, out, err = script_shell(timeout=30)
    shell.on_event(Paired("bob", BOB, "1"))
    assert await shell.run(node, lines_of("pay 3", "balance")) == 0
    assert out[-3:] == ["Sent 3.00 to bob (#1)", "-3.00", "Goodbye."] and err == []


@sync
async def test_json_lines_for_events_and_command_results() -> None:
    shell, node, out, err = script_shell(as_json=True)
    shell.on_event(Paired("bob", BOB, "41-87-03"))
    assert await shell.run(node, lines_of("pay 10.5 lunch", "balance", "history", "peer",
                                          "pay ten", "help")) == 1
    records = [json.loads(line) for line in out]
    assert [r["type"] for r in records] == [
        "paired", "payment_confirmed", "balance", "history", "peer", "error", "help", "goodbye"]
    sent = records[1]
    assert (sent["seq"], sent["amount"], sent["amount_cents"], sent["memo"]) == (1, "10.50", 1050, "lunch")
    assert sent["balance"] == "-10.50" and sent["balance_cents"] == -1050
    assert records[2] == {"type": "balance", "balance": "-10.50", "balance_cents": -1050,
                          "pending": [], "text": "-10.50"}
    assert records[3]["payments"] == []
    assert records[4]["balance_cents"] == -1050
    assert records[5]["message"] == "'ten' is not an amount (write it like 10 or 10.50)"
    assert [c["usage"].split()[0] for c in records[6]["commands"]][:2] == ["balance", "pay"]
    assert err == ["Error: 'ten' is not an amount (write it like 10 or 10.50)"]


@pytest.mark.parametrize(("event", "text"), RENDERED)
def test_each_mode_prints_the_events_sentence_or_its_record(event: Event, text: str | None) -> None:
    for raw in ("bob", HOSTILE):
        hostile = dataclasses.replace(event, **{f.name: raw for f in dataclasses.fields(event)
                                                if isinstance(getattr(event, f.name), str)})
        plain: list[str] = []
        shell = Shell(plain.append)
        shell.peer_name = raw
        shell.on_event(hostile)
        sentence = render(hostile, raw)
        assert plain == ([] if sentence is None else sentence.split("\n"))
        lines: list[str] = []
        shell = Shell(lines.append, as_json=True)
        shell.peer_name = raw
        shell.on_event(hostile)
        assert [json.loads(line) for line in lines] == [record(hostile, raw)]


def test_an_event_with_a_field_called_kind_is_shown_in_both_modes() -> None:
    repeated = WarningsRepeated("namesake", "bob", 12, 3.0)
    plain: list[str] = []
    Shell(plain.append).on_event(repeated)
    assert plain == [render(repeated)]
    lines: list[str] = []
    Shell(lines.append, as_json=True).on_event(repeated)
    assert [json.loads(line) for line in lines] == [record(repeated)]
    assert json.loads(lines[0])["kind"] == "namesake"


@sync
async def test_nothing_is_printed_after_goodbye_and_left_is_said_once() -> None:
    shell, node, out = line_shell()
    shell.on_event(Paired("bob", BOB, "1"))
    shell.on_event(PeerLeft("bob"))
    shell.on_event(PeerSilent("bob"))      # the same state in other words: not shown
    await shell.run(node, lines_of())
    shell.on_event(PaymentReceived(1, 100, "", 100))
    assert out[-2:] == ["bob left", "Goodbye."]


@sync
async def test_accept_hands_back_once_something_waits_for_consent() -> None:
    shell, node, out = line_shell(waiting_consent=True)
    shell.on_event(HandbackRequested("bob", BOB, "12-34-56", 1000, 4, 1))
    assert await shell.run(node, lines_of("accept")) == 0
    assert node.accepted == 1
    assert out[-2:] == ["Accepted: handing the relationship back", "Goodbye."]


@sync
async def test_line_mode_commands_wait_for_pairing() -> None:
    shell, node, out = line_shell()
    task = asyncio.create_task(shell.run(node, lines_of("balance", "pay 10 lunch", "balance")))
    await asyncio.sleep(0.05)
    assert out == [] and not task.done()
    shell.on_event(Paired("bob", BOB, "41-87-03"))
    assert await task == 0
    assert out == [
        "Paired with bob (127.0.0.1) · code 41-87-03",
        "Welcome to your peering relationship!",
        "0.00",
        "Sent 10.00 to bob (#1) — lunch",
        "-10.00",
        "Goodbye.",
    ]
    assert node.closed == [3.0]


@sync
async def test_line_mode_peer_answers_before_pairing_so_a_script_can_see_why_not() -> None:
    """``peer`` is how one learns what stands in the way of pairing: it must not wait for it."""
    shell, node, out = line_shell()
    shell.why_not = "bob is already paired with someone else; still looking"
    assert await asyncio.wait_for(shell.run(node, lines_of("peer")), 10) == 0
    assert out == ["Not paired yet: looking for a peer on the LAN…",
                   "Last:     bob is already paired with someone else; still looking", "Goodbye."]


@sync
async def test_line_mode_runs_no_command_once_stopped_even_if_pairing_completes_then() -> None:
    """The reader of stdout gone (or a signal) as pairing completes: the pay after it never starts."""
    shell, node, out = line_shell()
    task = asyncio.create_task(shell.run(node, lines_of("pay 10", "balance")))
    await asyncio.sleep(0.05)
    shell.stop()
    shell.on_event(Paired("bob", BOB, "41-87-03"))
    assert await asyncio.wait_for(task, 10) == 0
    assert node.attempts == 0 and out[-1] == "Goodbye."


@sync
async def test_line_mode_help_and_errors_need_no_peer_and_eof_exits() -> None:
    shell, node, out = line_shell()
    assert await shell.run(node, lines_of("help", "", "pay -1", "frobnicate")) == 1
    assert out[:7] == help_text().split("\n")
    assert out[7:] == [
        "Error: amount must be positive",
        "Error: unknown command 'frobnicate' (try 'help')",
        "Goodbye.",
    ]


@sync
async def test_line_mode_exit_stops_reading() -> None:
    shell, node, out = line_shell()
    shell.on_event(Paired("bob", BOB, "1"))
    assert await shell.run(node, lines_of("exit", "pay 10")) == 0
    assert node.seq == 0 and out[-1] == "Goodbye."


@sync
async def test_line_mode_refused_payment_moves_nothing() -> None:
    shell, node, out = line_shell(refuse=PeerUnavailable("silent"))
    shell.on_event(Paired("bob", BOB, "1"))
    shell.on_event(PeerLeft("bob"))
    assert await shell.run(node, lines_of("pay 10", "balance")) == 1
    assert out[-4:] == ["bob left", "Error: bob has left — nothing was sent", "0.00", "Goodbye."]


@sync
async def test_line_mode_pay_waits_out_a_hand_back_as_it_waits_for_pairing() -> None:
    """The survivor's script pays while the relationship is being handed back to the restarted
    peer: the pay waits for the hand-back to end (PeerRestarted) and goes then, instead of failing
    with "try again in a moment" for a moment the script could not see coming."""
    shell, node, out = line_shell(refuse=NotPaired("restoring", "restoring"))
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 2", "balance")))
    await asyncio.sleep(0.05)
    assert node.attempts == 1 and not [line for line in out if line.startswith("Error")]
    node.refuse = None
    shell.on_event(PeerRestarted("bob", BOB, "2", False))
    assert await asyncio.wait_for(task, 10) == 0
    assert node.attempts == 2 and "Sent 2.00 to bob (#1)" in out and out[-2:] == ["-2.00", "Goodbye."]


@sync
async def test_line_mode_pay_refused_for_a_hand_back_that_fails_says_so() -> None:
    shell, node, out = line_shell(refuse=NotPaired("restoring the relationship with bob", "restoring"))
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 2")))
    await asyncio.sleep(0.05)
    shell.on_event(RestoreFailed("bob", "silent"))
    assert await asyncio.wait_for(task, 10) == 1
    assert node.attempts == 2 and [line for line in out if line.startswith("Error")]


@sync
async def test_line_mode_pay_moves_on_once_in_doubt_and_still_shows_the_outcome() -> None:
    """A script must not hang on a peer that is gone: in doubt, the next command runs."""
    shell, node, out = line_shell(answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    more = asyncio.Event()

    async def lines() -> AsyncIterator[str]:
        yield "pay 3"
        yield "balance"
        await more.wait()

    task = asyncio.create_task(shell.run(node, lines()))
    await asyncio.sleep(0.02)
    assert out[-1] == "Welcome to your peering relationship!"      # still waiting for the outcome
    shell.on_event(PaymentInDoubt(1, 300))
    await asyncio.sleep(0.02)
    doubt = next(i for i, line in enumerate(out) if line.startswith("Payment #1 of 3.00 is in doubt"))
    assert out[doubt + 1] == "0.00"      # the next command ran
    node._confirm(1, 300, "")
    more.set()
    await asyncio.wait_for(task, 10)
    assert out[-2:] == ["Sent 3.00 to bob (#1)", "Goodbye."]
    assert not any(line.startswith("Warning") for line in out)


@sync
async def test_leaving_with_a_payment_unconfirmed_says_so() -> None:
    shell, node, out = line_shell(answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 3")))
    await asyncio.sleep(0.02)
    shell.on_event(PaymentInDoubt(1, 300))
    await asyncio.wait_for(task, 10)
    assert out[-2:] == [
        "Warning: leaving with 1 payment(s) not confirmed (#1 0.01); bob may or may not have received them",
        "Goodbye.",
    ]


async def run_interactive(keys: str, node: FakeNode | None = None) -> tuple[list[str], FakeNode, int]:
    out: list[str] = []
    shell = InteractiveShell("alice", out=out.append)
    node = node or FakeNode()
    node.shell = shell
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        pipe.send_text(keys)
        status = await asyncio.wait_for(shell.run(node), 10)
    return out, node, status


@sync
async def test_interactive_before_pairing_balance_works_and_pay_is_refused() -> None:
    node = FakeNode(refuse=NotPaired("no peer yet"))
    out, node, status = await run_interactive("balance\rpay 10\rhelp me\rexit\r", node)
    assert status == 0
    assert out == [
        "0.00",
        "Error: not paired yet",
        "Error: 'help' takes no arguments",
        "Goodbye.",
    ]


@sync
async def test_ctrl_c_while_exit_waits_for_a_payment_leaves_at_once_and_still_warns() -> None:
    """No prompt takes the key during that wait: Ctrl-C (SIGINT) ends the wait, not lanpay's words."""
    before = signal.getsignal(signal.SIGINT)
    node = FakeNode(answer="never", wait_on_close=True)
    task = asyncio.create_task(run_interactive("pay 3\rexit\r", node))
    for _ in range(200):
        if node.closed:
            break
        await asyncio.sleep(0.01)
    assert node.closed == [3.0]
    os.kill(os.getpid(), signal.SIGINT)
    out, node, status = await asyncio.wait_for(task, 10)
    assert status == 130 and node.stop_calls == 1 and not node.waited_out
    assert out[-4:] == [
        "Waiting for 1 payment to be confirmed… (Ctrl-C to leave now)",
        "",                                                  # ends the line the terminal's ^C is on
        "Warning: leaving with 1 payment(s) not confirmed (#1 0.01); the peer may or may not have "
        "received them",
        "Goodbye.",
    ]
    assert signal.getsignal(signal.SIGINT) == before          # Ctrl-C interrupts again afterwards


@pytest.mark.parametrize("keys", ["\x1b[5m", "\x1b[<5m", "\x1b[<0;3;4M", "\x1b[M!!!", "\x1b[1;2;3M",
                                  "\x1b[99999999999999999999;1;1M"])
@sync
async def test_typed_keys_that_parse_as_a_mouse_report_are_ignored_not_a_crash(keys: str) -> None:
    """No mouse reports are asked for: ``ESC [ 5 m`` typed by hand must not stop the prompt."""
    out, node, status = await run_interactive(keys + "balance\rexit\r")
    assert (out, status) == (["0.00", "Goodbye."], 0)


@sync
async def test_history_while_restoring_says_it_is_not_known_yet() -> None:
    """A restarted lanpay's history comes with the hand-back: "No payments yet." would be false."""
    node = FakeNode()
    node.status = lambda: FakeStatus("restoring", "bob", BOB, "1", False, None, 0)   # type: ignore[method-assign]
    out, node, status = await run_interactive("history\rexit\r", node)
    assert out == ["History not known yet: it comes with the relationship, which is being handed back",
                   "Goodbye."]


@sync
async def test_an_ambiguous_tab_shows_the_candidates_above_the_prompt() -> None:
    out, node, status = await run_interactive("p\t\x15bal\t\rexit\r")     # Ctrl-U clears the line
    assert out == ["pay  peer", "0.00", "Goodbye."]


class Clock:
    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


async def run_with_clock(keys: str, clock: Clock) -> tuple[list[str], FakeNode, int]:
    out: list[str] = []
    shell = InteractiveShell("alice", out=out.append, clock=clock)
    node = FakeNode(shell=shell)
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        pipe.send_text(keys)
        status = await asyncio.wait_for(shell.run(node), 10)
    return out, node, status


HINT = "(To leave, type exit or press Ctrl-D, or Ctrl-C again within 2 s)"


@sync
async def test_ctrl_c_on_an_empty_line_says_how_to_leave_and_a_second_soon_leaves() -> None:
    out, node, status = await run_with_clock("\x03\x03", Clock(100.0, 101.5))
    assert status == 0 and out == [HINT, "Goodbye."] and node.closed == [3.0]


@sync
async def test_two_ctrl_c_far_apart_only_repeat_the_hint() -> None:
    out, node, status = await run_with_clock("\x03\x03balance\rexit\r", Clock(100.0, 102.5))
    assert out == [HINT, HINT, "0.00", "Goodbye."]


@sync
async def test_tab_in_the_same_burst_as_the_letters_completes() -> None:
    out, node, status = await run_interactive("bal\t\t\rhist\t\rexit\r")
    assert out == ["0.00", "No payments yet.", "Goodbye."]


@sync
async def test_interactive_ctrl_c_clears_the_line_and_ctrl_d_exits() -> None:
    out, node, status = await run_interactive("pay 99\x03balance\r\x04")
    assert status == 0
    assert node.seq == 0  # the interrupted line was never run
    assert out == ["0.00", "Goodbye."]
    assert node.closed == [3.0]


@sync
async def test_interactive_pay_returns_to_the_prompt_and_exit_waits() -> None:
    out, node, status = await run_interactive("PAY 2.5 tea\rquit\r", FakeNode(answer="never"))
    assert status == 0
    assert out == [
        "Waiting for 1 payment to be confirmed… (Ctrl-C to leave now)",
        "Warning: leaving with 1 payment(s) not confirmed (#1 0.01); the peer may or may not have received them",
        "Goodbye.",
    ]
    assert node.seq == 1 and node.closed == [3.0]


@sync
async def test_stdin_lines_reads_a_pipe_without_blocking_the_loop() -> None:
    import os

    read, write = os.pipe()
    got: list[str] = []

    async def collect() -> None:
        async for line in stdin_lines(read):
            got.append(line)

    task = asyncio.create_task(collect())
    os.write(write, b"balance\npay 10 caf\xc3\xa9\r\npay 1 \xff")
    for _ in range(1000):  # the loop keeps running while the reader thread waits
        if len(got) == 2:
            break
        await asyncio.sleep(0.01)
    assert got == ["balance", "pay 10 café\r"] and not task.done()
    os.close(write)
    await asyncio.wait_for(task, 10)
    assert got == ["balance", "pay 10 café\r", "pay 1 \udcff"]     # kept, for the text rules to refuse
    os.close(read)
    with pytest.raises(CommandError, match=r"memo is not valid UTF-8 \(U\+DCFF\)"):
        parse(got[2])


@sync
async def test_stdin_lines_from_a_pipe_uses_no_thread_and_restores_blocking_mode() -> None:
    import os
    import threading

    read, write = os.pipe()
    os.write(write, b"pay 1\nbalance\n")
    os.close(write)
    before = threading.active_count()
    got = [line async for line in stdin_lines(read)]
    assert got == ["pay 1", "balance"]
    assert threading.active_count() == before
    assert os.get_blocking(read)
    os.close(read)


@sync
async def test_stdin_lines_reads_a_regular_file_and_dev_null_directly(tmp_path) -> None:
    import os

    script = tmp_path / "script.txt"
    script.write_bytes(b"pay 2 tea\nhistory\nexit")
    with open(script, "rb") as f:
        assert [line async for line in stdin_lines(f.fileno())] == ["pay 2 tea", "history", "exit"]
    with open(os.devnull, "rb") as f:
        assert [line async for line in stdin_lines(f.fileno())] == []


@sync
async def test_why_pairing_cannot_happen_is_kept_for_peer_and_the_timeout() -> None:
    shell, node, out, err = script_shell(timeout=0.05)
    shell.on_event(PairingRefused("bob", wire.REFUSE_TEXT[wire.R_NOT_WANTED]))
    assert await shell.run(node, lines_of("help", "peer", "balance")) == 1
    assert "Last:     bob refused to pair: it is waiting for someone else (its --peer names another); " \
           "lanpay keeps looking" in out                           # peer answered before pairing
    assert err == ["Error: not paired within 0.05 s (--timeout); giving up (last: bob refused to pair: "
                   "it is waiting for someone else (its --peer names another); lanpay keeps looking)"]
    assert peer_text(FakeStatus(), why_not="bob refused to pair: x").split("\n") == [
        "Not paired yet: looking for a peer on the LAN…", "Last:     bob refused to pair: x"]


def test_namesakes_on_one_host_are_told_apart_by_port() -> None:
    assert render(NameConflict("bob", (("127.0.0.1", 40001), ("127.0.0.1", 40002)))) == (
        "Warning: more than one peer is called bob (127.0.0.1:40001, 127.0.0.1:40002); pairing with neither")


@sync
async def test_the_last_reason_is_quoted_without_its_warning_prefix() -> None:
    shell, node, out, err = script_shell(timeout=0.05)
    shell.on_event(NameConflict("bob", (("127.0.0.1", 1), ("127.0.0.2", 2))))
    assert await shell.run(node, lines_of("balance")) == 1
    assert err[-1].startswith("Error: not paired within 0.05 s (--timeout); giving up (last: more than one")
    assert "Warning:" not in err[-1]


@sync
async def test_a_fenced_process_says_why_it_cannot_pay() -> None:
    shell, node, out = line_shell(refuse=NotPaired("no"))
    shell.on_event(Paired("alice", BOB, "1"))
    shell.on_event(Fenced("alice"))
    assert await shell.run(node, lines_of("pay 1")) == 1
    assert out[-2] == ("Error: a newer lanpay of yours holds the relationship now; this one can no "
                       "longer pay — nothing was sent")


# -- line mode: queued pays go out together, their outcomes in order ------------------


async def settle() -> None:
    """Let the shell run as far as it can (every fake outcome here is resolved by the test itself)."""
    await asyncio.sleep(0.02)


async def held_open(*lines: str) -> AsyncIterator[str]:
    """A script that wrote ``lines`` and keeps its end of the pipe open without writing more."""
    for line in lines:
        yield line
    await asyncio.Event().wait()


@sync
async def test_queued_pays_are_all_started_before_the_first_outcome() -> None:
    shell, node, out = line_shell(answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 1", "pay 2", "pay 3 tea", "balance")))
    await settle()
    assert node.seq == 3 and node.known_at_start == [0, 0, 0]
    assert not any(f.done() for f in node.outcomes.values())
    assert out[-1] == "Welcome to your peering relationship!"       # balance waits for the three
    node._confirm(1, 100, "")
    node._confirm(2, 200, "")
    await settle()
    assert out[-1] == "Sent 2.00 to bob (#2)"                        # still waiting for #3
    node._confirm(3, 300, "tea")
    assert await asyncio.wait_for(task, 10) == 0
    assert out[-5:] == ["Sent 1.00 to bob (#1)", "Sent 2.00 to bob (#2)", "Sent 3.00 to bob (#3) — tea",
                        "-6.00", "Goodbye."]


@sync
async def test_outputs_stay_in_input_order_around_a_command_and_a_bad_line() -> None:
    shell, node, out, err = script_shell()
    shell.on_event(Paired("bob", BOB, "1"))
    script = lines_of("pay 1", "pay 2", "balance", "pay 3", "", "pay 4", "pay x", "pay 5", "pay 6", "history")
    assert await asyncio.wait_for(shell.run(node, script), 10) == 1
    bad = "Error: 'x' is not an amount (write it like 10 or 10.50)"
    assert out[2:] == [
        "Sent 1.00 to bob (#1)", "Sent 2.00 to bob (#2)", "-3.00",
        "Sent 3.00 to bob (#3)", "Sent 4.00 to bob (#4)", bad,
        "Sent 5.00 to bob (#5)", "Sent 6.00 to bob (#6)", "No payments yet.", "Goodbye.",
    ]
    assert err == [bad]
    # each run of pays went out together; each other line waited for the run before it
    assert node.known_at_start == [0, 0, 2, 2, 4, 4]


@sync
async def test_no_more_than_a_window_of_pays_is_outstanding() -> None:
    from lanpay.core.session import WINDOW

    shell, node, out = line_shell(answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    script = [f"pay {n}" for n in range(1, WINDOW + 3)] + ["balance"]
    task = asyncio.create_task(shell.run(node, lines_of(*script)))
    await settle()
    assert node.seq == WINDOW                 # the next one waits for the oldest
    node._confirm(1, 100, "")
    await settle()
    assert node.seq == WINDOW + 1 and node.known_at_start[-1] == 1
    node._confirm(3, 300, "")                 # not the oldest outstanding (#2): no room yet
    await settle()
    assert node.seq == WINDOW + 1
    node._confirm(2, 200, "")
    await settle()
    assert node.seq == WINDOW + 2
    for seq in range(4, WINDOW + 3):
        node._confirm(seq, seq * 100, "")
    assert await asyncio.wait_for(task, 10) == 0
    total = sum(range(1, WINDOW + 3)) * 100
    assert out[-2:] == [balance_text(FakeStatus(balance=-total)), "Goodbye."]


@sync
async def test_a_pay_refused_while_others_are_outstanding_is_tried_again_once_they_are_known() -> None:
    """The limit counts pending payments; the payee's rejection of #1 makes room for the next."""
    shell, node, out, err = script_shell(answer="never")
    node.limit = 500
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 4", "pay 3", "balance")))
    await settle()
    assert (node.attempts, node.seq) == (2, 1)          # tried at once, refused, nothing sent
    assert err == [] and not task.done()
    node._reject(1)
    await settle()
    assert (node.attempts, node.seq) == (3, 2)          # tried again once #1 was known: room now
    node._confirm(2, 300, "")
    assert await asyncio.wait_for(task, 10) == 1
    assert out[-4:] == ["Error: bob refused payment #1 of 4.00: over their limit",
                        "Sent 3.00 to bob (#2)", "-3.00", "Goodbye."]
    assert err == ["Error: bob refused payment #1 of 4.00: over their limit"]


@sync
async def test_a_pay_still_refused_after_the_wait_prints_its_error_after_the_outcomes() -> None:
    shell, node, out, err = script_shell(answer="never")
    node.limit = 500
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 4", "pay 3", "pay 1", "balance")))
    await settle()
    assert (node.attempts, node.seq) == (2, 1) and err == []
    node._confirm(1, 400, "")
    await settle()
    assert (node.attempts, node.seq) == (4, 2)          # #2 refused again and printed; then pay 1
    node._confirm(2, 100, "")
    assert await asyncio.wait_for(task, 10) == 1
    refused = "Error: paying 300 would pass your limit"
    assert out[-5:] == ["Sent 4.00 to bob (#1)", refused, "Sent 1.00 to bob (#2)", "-5.00", "Goodbye."]
    assert err == [refused]


@sync
async def test_timeout_gives_up_on_the_oldest_outstanding_pay_and_lists_every_unconfirmed_one() -> None:
    shell, node, out, err = script_shell(timeout=0.2, answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 1", "pay 2", "pay 3", "balance", "pay 4")))
    await settle()
    assert node.seq == 3
    node._confirm(1, 100, "")                  # the oldest is known; #2 is the one that times out
    assert await asyncio.wait_for(task, 10) == 1
    failed = ("Error: payment #2 of 2.00 not confirmed by bob within 0.2 s (--timeout); "
              "giving up (it may still arrive)")
    assert err == [failed]
    assert out[-4:] == [
        "Sent 1.00 to bob (#1)", failed,
        "Warning: leaving with 2 payment(s) not confirmed (#2 0.01, #3 0.01); bob may or may not have received them",
        "Goodbye.",
    ]
    assert node.seq == 3 and node.closed == [3.0]       # balance and pay 4 never ran


@sync
async def test_timeout_still_gives_up_while_the_script_writes_nothing_more() -> None:
    shell, node, out, err = script_shell(timeout=0.1, answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    lines = held_open("pay 1", "pay 2")
    assert await asyncio.wait_for(shell.run(node, lines), 10) == 1
    assert err == ["Error: payment #1 of 1.00 not confirmed by bob within 0.1 s (--timeout); "
                   "giving up (it may still arrive)"]
    assert out[-1] == "Goodbye."
    await lines.aclose()                        # the read given up on left the source closable


@sync
async def test_without_a_timeout_each_outstanding_pay_is_waited_for_until_in_doubt_oldest_first() -> None:
    shell, node, out = line_shell(answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, held_open("pay 1", "pay 2", "balance")))
    await settle()
    shell.on_event(PaymentInDoubt(2, 200))      # the newer one in doubt: balance still waits for #1
    await settle()
    assert out[-1].startswith("Payment #2 of 2.00 is in doubt")
    shell.on_event(PaymentInDoubt(1, 100))
    await settle()
    assert out[-3:] == ["Payment #1 of 1.00 is in doubt: bob has not confirmed it yet; still trying",
                        "0.00", "(pending: 0.02 in 2 payments)"]
    node._confirm(1, 100, "")
    node._confirm(2, 200, "")
    await settle()
    assert out[-2:] == ["Sent 1.00 to bob (#1)", "Sent 2.00 to bob (#2)"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@sync
async def test_end_of_input_waits_for_the_outstanding_pays_before_leaving() -> None:
    shell, node, out = line_shell(answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 1", "pay 2")))
    await settle()
    assert node.seq == 2 and node.closed == [] and "Goodbye." not in out
    node._confirm(1, 100, "")
    await settle()
    assert node.closed == []
    node._confirm(2, 200, "")
    assert await asyncio.wait_for(task, 10) == 0
    assert out[-3:] == ["Sent 1.00 to bob (#1)", "Sent 2.00 to bob (#2)", "Goodbye."]
    assert node.closed == [3.0] and node.known_at_start == [0, 0]


@sync
async def test_a_rejection_among_queued_pays_is_printed_in_its_place() -> None:
    shell, node, out, err = script_shell(answer="never")
    shell.on_event(Paired("bob", BOB, "1"))
    task = asyncio.create_task(shell.run(node, lines_of("pay 1", "pay 60", "pay 2", "balance")))
    await settle()
    assert node.seq == 3
    node._confirm(1, 100, "")
    node._reject(2)
    node._confirm(3, 200, "")
    assert await asyncio.wait_for(task, 10) == 1
    assert out[-5:] == ["Sent 1.00 to bob (#1)", "Error: bob refused payment #2 of 60.00: over their limit",
                        "Sent 2.00 to bob (#3)", "-3.00", "Goodbye."]


PASTE, END = "\x1b[200~", "\x1b[201~"


@sync
async def test_a_pasted_block_of_lines_runs_each_line_in_order() -> None:
    out, node, status = await run_interactive(f"{PASTE}pay 1 tea\r\npay 2\nbalance\n{END}\rexit\r")
    assert status == 0 and node.seq == 2
    assert out[0] == "0.00" and out[-1] == "Goodbye."


@sync
async def test_a_pasted_block_with_one_bad_line_runs_none_of_it() -> None:
    out, node, status = await run_interactive(f"{PASTE}pay 1 tea\npay -2\nbalance{END}\rexit\r")
    assert node.seq == 0
    assert out == ["Error: line 2: amount must be positive; none of the 3 lines was run", "Goodbye."]


@sync
async def test_exit_in_a_pasted_block_leaves_before_the_lines_after_it() -> None:
    out, node, status = await run_interactive(f"{PASTE}balance\nexit\npay 1{END}\r")
    assert status == 0 and node.seq == 0 and out == ["0.00", "Goodbye."]


def test_peer_before_pairing_names_whom_it_looks_for() -> None:
    assert peer_text(FakeStatus(wanted="carol")) == "Not paired yet: looking for carol on the LAN…"
    assert peer_record(FakeStatus(wanted="carol"))["wanted"] == "carol"


def test_peer_during_a_hand_back_request_shows_the_request_s_code_to_compare_not_the_old_one() -> None:
    """A real survivor asked for the relationship back: ``peer`` must not tell its user to compare
    the code of the dead process (on no screen any more) but the request's, as the notice did;
    the restarted side, waiting for the accept, sees its link online."""
    from lanpay.core import events
    from sim import Net
    net = Net(5)
    net.consent = False
    alice, bob = net.add("alice"), net.add("bob")
    assert net.run_until(lambda: alice.peer.state.value == "paired" and bob.peer.state.value == "paired", 30)
    old_code = alice.peer.status().code
    net.kill("bob")
    net.run(net.now + 1.0)
    reborn = net.restart("bob")
    assert net.run_until(lambda: bool(alice.of(events.HandbackRequested)), 30)
    [asked] = alice.of(events.HandbackRequested)
    text = peer_text(alice.peer.status())
    assert f"Code:     {old_code} (the process you were paired with; compare the request's code below)" in text
    assert (f"Request:  bob at {reborn.addr[0]}:{reborn.addr[1]} asks for the relationship back; code {asked.code}: "
            f"compare with bob's screen, then type accept") in text.splitlines()
    assert peer_record(alice.peer.status())["requests"] == [
        {"name": "bob", "addr": reborn.addr[0], "port": reborn.addr[1], "code": asked.code}]
    net.run(net.now + 2.0)
    waiting = reborn.peer.status()
    assert waiting.state == "restoring" and waiting.online
    assert "Link:     online" in peer_text(waiting)


def test_the_toolbar_says_a_hand_back_request_waits_for_accept() -> None:
    asking = dataclasses.replace(PAIRED, state="repairing", online=False,
                                 requests=(("bob", ("10.0.0.6", 40002), "12-34-56"),))
    assert toolbar_text(asking) == ("bob (127.0.0.1) · asks to come back: see peer, then accept · not responding"
                                    " · RTT 0.4 ms · balance -10.00")
    assert toolbar_text(asking, width=66) == "bob · asks to come back: see peer, then accept · balance -10.00"
