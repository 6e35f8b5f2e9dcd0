"""The rules for text one screen shows on another: names and memos.

A name or memo is typed on one machine and printed on the other, so it must
not be able to act on a terminal or change how a line reads: no C0 or C1
control characters, no DEL, no bidirectional controls (an override can make
``10.00`` read as ``00.01``), no line or paragraph separators, and valid
UTF-8 within a limit in *bytes* (it travels in one datagram).  Everything
else is accepted, so a family emoji joined by ZERO WIDTH JOINERs, accents and
every script pass.  A name is one word: it appears in the prompt and in
sentences, where a space could forge the rest of a line.  A name must also
look like what it is: no character that shows as nothing (a zero-width
space, a word joiner, a soft hyphen, a Hangul filler, a variation selector
or joiner outside an emoji), and no combining mark at the start, so that
``bob`` and ``bob`` with an invisible character added cannot both be shown.

The same rules serve the command line, the command parser and the codec, so
text refused locally is refused from the network too.  Pure, stdlib only.
"""

from __future__ import annotations

import unicodedata

from .frozen import frozen

MAX_NAME_BYTES = 32
MAX_MEMO_BYTES = 64

#: Bidirectional controls: embeddings, overrides, isolates and the invisible marks.
BIDI_CONTROLS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u061c"]
)

#: Characters that show as nothing (Unicode's Default_Ignorable_Code_Point, less the
#: bidirectional controls refused everywhere, plus U+2800 BRAILLE PATTERN BLANK).
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200D), (0x2060, 0x2065), (0x206A, 0x206F),
    (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)

#: Within an emoji a joiner, a variation selector or a tag is part of the picture (a
#: family joined by ZERO WIDTH JOINERs, a heart with VARIATION SELECTOR-16, a flag of
#: tags): each is allowed only where it changes what a symbol looks like.
_ZWJ, _SELECTORS = "\u200d", frozenset("\ufe0e\ufe0f")
_TAGS = frozenset(chr(c) for c in range(0xE0020, 0xE0080))


def invisible(ch: str) -> bool:
    """Whether ``ch`` shows as nothing on a terminal."""
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _INVISIBLE_RANGES)


def _symbol(ch: str) -> bool:
    return unicodedata.category(ch) in ("So", "Sk")


def _hidden_in_name(text: str) -> Problem | None:
    """A leading combining mark, or the first character of a name that shows as nothing where
    it stands.  A joiner must stand between two symbols (a selector or tag may end the
    first); a selector must follow a symbol; a tag must follow a symbol or a tag."""
    if text and unicodedata.category(text[0]).startswith("M"):
        return Problem("must not start with a combining mark", text[0])
    for i, ch in enumerate(text):
        if not invisible(ch):
            continue
        before = text[i - 1] if i else ""
        after = text[i + 1] if i + 1 < len(text) else ""
        if ch == _ZWJ:
            head = before
            j = i - 1
            while head and (head in _SELECTORS or head in _TAGS) and j > 0:
                j -= 1
                head = text[j]
            shown = bool(head) and _symbol(head) and bool(after) and _symbol(after)
        elif ch in _SELECTORS:
            shown = bool(before) and _symbol(before)
        elif ch in _TAGS:
            shown = bool(before) and (_symbol(before) or before in _TAGS)
        else:
            shown = False
        if not shown:
            return Problem("contains a character that shows as nothing", ch)
    return None


#: Names unicodedata does not give (controls have none), for the characters people meet.
_CONTROL_NAMES = {
    0x00: "NULL", 0x07: "BELL", 0x08: "BACKSPACE", 0x09: "CHARACTER TABULATION",
    0x0A: "LINE FEED", 0x0D: "CARRIAGE RETURN", 0x1B: "ESCAPE", 0x7F: "DELETE",
    0x85: "NEXT LINE", 0x9B: "CONTROL SEQUENCE INTRODUCER",
}


class TextError(ValueError):
    """Text that breaks a rule; the message names the rule and the character."""


@frozen
class Problem:
    """The first rule a text breaks, and the character that breaks it (if one does)."""

    rule: str
    char: str | None = None

    def __str__(self) -> str:
        return f"{self.rule} ({describe(self.char)})" if self.char is not None else self.rule


def describe(ch: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: how a message names a character."""
    code = ord(ch)
    name = _CONTROL_NAMES.get(code) or unicodedata.name(ch, "")
    return f"U+{code:04X} {name}".rstrip()


def refused(ch: str) -> str | None:
    """The rule a single character breaks anywhere in shown text, or None."""
    code = ord(ch)
    if code < 0x20 or code == 0x7F:
        return "control character"
    if 0x80 <= code <= 0x9F:
        return "C1 control character"
    if ch in BIDI_CONTROLS:
        return "bidirectional control"
    if ch in ("\u2028", "\u2029"):
        return "line or paragraph separator"
    if 0xD800 <= code <= 0xDFFF:
        return "not valid UTF-8"
    return None


def problem(text: str, limit: int | None = None, word: bool = False) -> Problem | None:
    """The first rule ``text`` breaks, or None; ``word`` (a name) also refuses whitespace,
    characters that show as nothing and a leading combining mark."""
    for ch in text:
        rule = refused(ch)
        if rule is not None:
            return Problem(f"contains a {rule}" if not rule.startswith("not") else f"is {rule}", ch)
        if word and ch.isspace():
            return Problem("must not contain spaces", ch)
    if word and (hidden := _hidden_in_name(text)) is not None:
        return hidden
    if limit is not None:
        size = len(text.encode("utf-8"))
        if size > limit:
            return Problem(f"is too long ({size} bytes; at most {limit} bytes)")
    return None


def check(text: str, what: str, limit: int, word: bool = False) -> str:
    """Return ``text`` if it keeps every rule, else raise TextError naming ``what``."""
    found = problem(text, limit, word)
    if found is not None:
        raise TextError(f"{what} {found}")
    return text


def check_name(name: str, what: str = "name") -> str:
    """A name: 1 to 32 bytes, one word, nothing that acts on a terminal."""
    if not name:
        raise TextError(f"{what} must not be empty")
    return check(name, what, MAX_NAME_BYTES, word=True)


def check_memo(memo: str) -> str:
    """A memo: up to 64 bytes, spaces allowed, nothing that acts on a terminal."""
    return check(memo, "memo", MAX_MEMO_BYTES)


def escape(text: str) -> str:
    """``text`` with every refused character written as ``\\u202e`` (safe on any terminal)."""
    if not any(refused(ch) for ch in text):
        return text
    return "".join(
        (f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}") if refused(ch) else ch
        for ch in text
    )
