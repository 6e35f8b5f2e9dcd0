"""The README renders as written: its code fences pair up, and it documents what the program has.

A closing fence that carries text is not a closing fence in CommonMark: from
there on, code and prose swap.  These checks read the file the way a renderer
does, line by line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lanpay.cli import build_parser
from lanpay.commands import HELP

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^(\s*)(```+|~~~+)(.*)$")


def blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(opening, closing) line numbers of every fenced block; fails on a bad or open fence."""
    found: list[tuple[int, int]] = []
    opened: int | None = None
    for number, line in enumerate(lines, 1):
        match = FENCE.match(line)
        if match is None:
            continue
        info = match.group(3).strip()
        if opened is None:
            assert re.fullmatch(r"[A-Za-z0-9_+-]*", info), f"line {number}: odd info string {info!r}"
            opened = number
        else:
            assert not info, f"line {number}: a closing fence carries text {info!r}"
            found.append((opened, number))
            opened = None
    assert opened is None, f"the fence opened on line {opened} is never closed"
    return found


def test_fences_pair_up_and_closing_fences_are_bare() -> None:
    assert len(blocks(README.read_text().splitlines())) >= 5


def test_a_fence_with_text_after_it_is_caught() -> None:
    with pytest.raises(AssertionError, match="line 3: a closing fence carries text"):
        blocks(["```", "lanpay --name alice", "``` Payment notices appear"])
    with pytest.raises(AssertionError, match="never closed"):
        blocks(["```", "code"])


def test_every_heading_and_table_is_prose_not_code() -> None:
    lines = README.read_text().splitlines()
    inside = {n for start, end in blocks(lines) for n in range(start, end + 1)}
    for number, line in enumerate(lines, 1):
        if line.startswith(("#", "| ", "- **")):
            assert number not in inside, f"line {number} renders as code: {line!r}"


def test_the_first_screen_gives_the_demo_and_the_full_tests_then_the_quick_subset() -> None:
    intro = README.read_text().split("\n---\n", 1)[0]
    commands = [line.strip() for line in intro.splitlines() if line.startswith("    ")]
    assert commands == [
        "python3 -m pip install -e . && tools/loopback_demo.sh",
        "python3 -m pip install -e '.[test]' && python3 -m pytest",
    ]
    assert 'python3 -m pytest -m "not slow"' in intro


def test_every_option_and_command_is_documented() -> None:
    text = README.read_text()
    for action in build_parser()._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                assert f"`{option}" in text, option
    for entry in HELP:
        assert f"| `{entry.usage.split()[0]}" in text, entry.usage
