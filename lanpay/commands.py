"""What the user typed, as a command value; nothing here touches the network.

Parsing is kept apart from running so that every accepted and refused line can be
checked in a table, and so the interactive shell and line mode agree exactly on
what a line means.  A refused line raises :class:`CommandError` whose text is
ready to follow ``Error:``.
"""

from __future__ import annotations

from lanpay.core import text
from lanpay.core.amounts import parse_amount
from lanpay.core.errors import AmountError, UserError
from lanpay.core.frozen import frozen

#: A memo travels inside one datagram, so its size is capped in bytes, not characters.
MAX_MEMO_BYTES = text.MAX_MEMO_BYTES


class CommandError(UserError):
    """The line is not a command lanpay can run; the message says why."""


@frozen
class Balance:
    """Show the balance (and pending payments, if any)."""


@frozen
class Pay:
    """Pay the counterpart ``cents``, with an optional memo."""

    cents: int
    memo: str = ""


@frozen
class History:
    """Show the payments in and out: the latest line by line, any older ones as totals."""


@frozen
class PeerInfo:
    """Show who the counterpart is and how the link is doing."""


@frozen
class Accept:
    """Consent to hand the relationship back to a restarted counterpart, codes compared;
    ``code`` picks one when several processes ask at once."""

    code: str | None = None


@frozen
class Help:
    """List the commands."""


@frozen
class Exit:
    """Leave: finish in-flight payments, tell the counterpart, stop."""


@frozen
class Empty:
    """A blank line: nothing to do."""


Command = Balance | Pay | History | PeerInfo | Accept | Help | Exit | Empty


@frozen
class CommandHelp:
    """One line of ``help``: the usage and what the command is for."""

    usage: str
    summary: str


#: The commands in the order ``help`` lists them.
HELP: tuple[CommandHelp, ...] = (
    CommandHelp("balance", "show your balance with the peer (and pending payments)"),
    CommandHelp("pay AMOUNT [MEMO]", "pay the peer, e.g. 'pay 10.50 lunch'"),
    CommandHelp("history", "list payments made and received (the oldest as totals)"),
    CommandHelp("peer", "show the peer's name, address, pairing code and link"),
    CommandHelp("accept [CODE]", "hand the relationship back to a restarted peer, once the codes match"),
    CommandHelp("help", "show this list (also '?')"),
    CommandHelp("exit", "finish pending payments, say goodbye and quit (also 'quit', Ctrl-D)"),
)

#: Every word the parser accepts, for completion.
WORDS: tuple[str, ...] = ("balance", "pay", "history", "peer", "accept", "help", "exit", "quit")

_NO_ARGS: dict[str, Command] = {
    "balance": Balance(),
    "history": History(),
    "peer": PeerInfo(),
    "accept": Accept(),
    "help": Help(),
    "?": Help(),
    "exit": Exit(),
    "quit": Exit(),
}


def parse(line: str) -> Command:
    """Turn one typed line into a command, or raise CommandError saying why not."""
    text = line.strip()
    if not text:
        return Empty()
    word, rest = _split(text)
    word = word.lower()
    if word == "pay":
        return _parse_pay(rest)
    if word == "accept" and rest:
        return Accept(_parse_code(rest))
    if word in _NO_ARGS:
        if rest:
            raise CommandError(f"'{word}' takes no arguments")
        return _NO_ARGS[word]
    raise CommandError(f"unknown command {_shown(word)} (try 'help')")


def _parse_pay(rest: str) -> Pay:
    """``pay AMOUNT [MEMO]``: the memo is the rest of the line, as typed."""
    if not rest:
        raise CommandError("amount is missing (usage: pay AMOUNT [MEMO])")
    amount, memo = _split(rest)
    try:
        cents = parse_amount(amount)
    except AmountError as exc:
        raise CommandError(str(exc)) from None
    return Pay(cents, check_memo(memo))


def _parse_code(text: str) -> str:
    """A pairing code as shown, e.g. ``41-87-03`` (the dashes may be left out)."""
    digits = text.replace("-", "").replace(" ", "")
    if not (digits.isascii() and digits.isdigit() and len(digits) == 6):
        raise CommandError("a pairing code is six digits, e.g. 'accept 41-87-03'")
    return "-".join(digits[i:i + 2] for i in range(0, 6, 2))


def _split(text: str) -> tuple[str, str]:
    """The first word and the stripped rest (any whitespace separates them)."""
    parts = text.split(None, 1)
    return parts[0], (parts[1].strip() if len(parts) > 1 else "")


def check_memo(memo: str) -> str:
    """Return the memo if it fits in a datagram and prints cleanly on the other screen, else raise."""
    try:
        return text.check_memo(memo)
    except text.TextError as exc:
        raise CommandError(str(exc)) from None


def _shown(word: str) -> str:
    """Quote an unknown word for an error line, cut short and without control codes."""
    cut = word if len(word) <= 20 else word[:20] + "…"
    return "'" + text.escape(cut) + "'"
