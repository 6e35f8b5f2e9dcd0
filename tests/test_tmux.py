"""The interactive shell in a real terminal, driven through tmux.

Alice types into a tmux pane; Bob runs in line mode beside her in the same
private namespace.  What matters to a person at the keyboard: a payment that
arrives while she is typing is shown above the prompt, and her half-typed
command is still there, intact, to be finished.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from netlan import DEADLINE, lanpay_command, require_tools

pytestmark = [pytest.mark.tmux, pytest.mark.e2e, pytest.mark.netns, pytest.mark.slow]


class Pane:
    """One tmux pane on a private tmux server, read with capture-pane."""

    def __init__(self, socket_path: Path, config: Path) -> None:
        self.base = ["tmux", "-S", str(socket_path), "-f", str(config)]
        self.target = "alice"

    def tmux(self, *args: str) -> str:
        """One tmux command on our private server (a TERM is needed even when detached)."""
        env = dict(os.environ, TERM=os.environ.get("TERM") or "xterm-256color")
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, env=env,
                              timeout=DEADLINE, check=True)
        return done.stdout

    def start(self, command: list[str]) -> None:
        """Run ``command`` in the pane; a shell around it prints its exit status after it.

        bash, not sh: a Ctrl-C that lanpay handles must not end the shell around it (bash
        waits to see whether its child died of the signal; dash dies at once)."""
        wrapped = ["bash", "--norc", "--noprofile", "-c", '"$@"; echo "[exit status $?]"', "bash", *command]
        self.tmux("new-session", "-d", "-s", self.target, "-x", "110", "-y", "30",
                  shlex.join(wrapped))

    def type(self, text: str) -> None:
        """Keys typed literally, without Enter."""
        self.tmux("send-keys", "-t", self.target, "-l", text)

    def enter(self) -> None:
        """Press Enter."""
        self.tmux("send-keys", "-t", self.target, "Enter")

    def screen(self) -> list[str]:
        """The visible rows, as a person would read them."""
        return self.tmux("capture-pane", "-p", "-t", self.target).split("\n")

    def cursor_row(self) -> int:
        """The row the cursor is on: where the prompt and the typed text are."""
        return int(self.tmux("display-message", "-p", "-t", self.target, "#{cursor_y}"))

    def value(self, fmt: str) -> str:
        """A tmux format expanded for the pane."""
        return self.tmux("display-message", "-p", "-t", self.target, fmt).strip()

    def wait_for(self, check, what: str) -> list[str]:
        """Poll the screen until ``check(screen)`` holds; fail with the screen at the deadline."""
        limit = time.monotonic() + DEADLINE
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if time.monotonic() > limit:
                raise AssertionError(f"pane never showed {what}; it shows:\n" + "\n".join(screen))
            time.sleep(0.1)

    def wait_text(self, pattern: str) -> list[str]:
        """Wait until some row matches ``pattern``."""
        regex = re.compile(pattern)
        return self.wait_for(lambda screen: any(regex.search(line) for line in screen), pattern)


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    """A pane on a tmux server of its own, killed after the test."""
    require_tools("ip", "tmux")
    config = tmp_path / "tmux.conf"
    config.write_text("set -g remain-on-exit on\nset -g status off\n")
    made = Pane(tmp_path / "tmux.sock", config)
    yield made
    subprocess.run([*made.base, "kill-server"], capture_output=True, timeout=DEADLINE)


def index_of(screen: list[str], pattern: str) -> int:
    """The row of the last line matching ``pattern``; -1 if none."""
    rows = [i for i, line in enumerate(screen) if re.search(pattern, line)]
    return rows[-1] if rows else -1


def test_a_payment_arrives_above_a_half_typed_command(pane, lanpay, loopback_ns) -> None:
    pane.start(lanpay_command(["--name", "alice", "--interface", "lo"], netns=loopback_ns))
    bob = lanpay("bob", "--name", "bob", "--interface", "lo", netns=loopback_ns)
    bob.expect(r"^Welcome to your peering relationship!$")
    pane.wait_text(r"Welcome to your peering relationship!")

    pane.type("pay 1")
    pane.wait_for(lambda s: s[pane.cursor_row()].rstrip().endswith("pay 1"), "the typed text")
    bob.send("pay 2")
    bob.expect(r"^Sent")

    def notice_above_intact_input(screen: list[str]) -> bool:
        row = pane.cursor_row()
        paid = index_of(screen, r"You were paid 2\.00!")
        return 0 <= paid < row and screen[row].rstrip().endswith("pay 1")

    screen = pane.wait_for(notice_above_intact_input, "the notice above the half-typed command")
    assert not screen[pane.cursor_row()].rstrip().endswith("pay 1pay 1")

    pane.enter()
    pane.wait_text(r"^Sent 1\.00 to bob")
    bob.expect(r"You were paid 1\.00!")
    assert bob.balance() == -100

    pane.type("balance")
    pane.enter()
    pane.wait_text(r"^1\.00\b")

    pane.type("exit")
    pane.enter()
    pane.wait_text(r"^Goodbye\.$")
    pane.wait_text(r"^\[exit status 0\]$")


def test_tab_in_a_paste_completes_and_ctrl_c_twice_leaves(pane, lanpay, loopback_ns) -> None:
    pane.start(lanpay_command(["--name", "alice", "--interface", "lo"], netns=loopback_ns))
    bob = lanpay("bob", "--name", "bob", "--interface", "lo", netns=loopback_ns)
    bob.expect(r"^Welcome to your peering relationship!$")
    pane.wait_text(r"Welcome to your peering relationship!")
    bob.send("pay 3")
    pane.wait_text(r"You were paid 3\.00!")

    pane.type("bal\t\t")                       # one burst, as a paste arrives; the second Tab adds nothing
    pane.wait_for(lambda s: s[pane.cursor_row()].rstrip().endswith("alice> balance"), "the completion")
    pane.enter()
    pane.wait_text(r"^3\.00$")

    pane.tmux("send-keys", "-t", pane.target, "C-c", "C-c")   # together: well within the 2 s
    pane.wait_text(r"^Goodbye\.$")
    pane.wait_text(r"To leave, type exit or press Ctrl-D, or Ctrl-C again within 2 s")
    pane.wait_text(r"^\[exit status 0\]$")
    bob.expect(r"^alice left$")


def test_ctrl_c_while_exit_waits_still_says_which_payment_is_not_confirmed(pane, lanpay, loopback_ns) -> None:
    """After ``exit`` no prompt takes the keys: Ctrl-C is a signal there, and it cuts the wait short
    without cutting short what lanpay has to say about the payment it leaves unconfirmed."""
    pane.start(lanpay_command(["--name", "alice", "--interface", "lo"], netns=loopback_ns))
    bob = lanpay("bob", "--name", "bob", "--interface", "lo", netns=loopback_ns)
    bob.expect(r"^Welcome to your peering relationship!$")
    pane.wait_text(r"Welcome to your peering relationship!")
    bob.pause()                                    # it will not confirm anything for now
    pane.type("pay 4")
    pane.enter()
    pane.type("exit")
    pane.enter()
    pane.wait_text(r"^Waiting for 1 payment to be confirmed… \(Ctrl-C to leave now\)$")
    pane.tmux("send-keys", "-t", pane.target, "C-c")
    screen = pane.wait_text(r"^\[exit status 130\]$")
    warning = index_of(screen, r"^Warning: leaving with 1 payment\(s\) not confirmed \(#1 4\.00\); "
                               r"bob may or may not have received them$")
    assert 0 <= warning < index_of(screen, r"^Goodbye\.$"), "\n".join(screen)
    assert not any("Traceback" in line for line in screen), "\n".join(screen)
    bob.resume()
    bob.expect(r"You were paid 4\.00!|alice left")


def test_a_pasted_block_runs_line_by_line_and_ctrl_z_suspends_until_fg(pane, lanpay, loopback_ns) -> None:
    pane.start(["bash", "--norc", "--noprofile", "-i"])          # a job-control shell, as a user has
    pane.type("PS1='$ '; " + shlex.join(lanpay_command(["--name", "alice", "--interface", "lo"],
                                                        netns=loopback_ns)))
    pane.enter()
    bob = lanpay("bob", "--name", "bob", "--interface", "lo", netns=loopback_ns)
    bob.expect(r"^Welcome to your peering relationship!$")
    pane.wait_text(r"Welcome to your peering relationship!")

    pane.tmux("set-buffer", "-b", "block", "pay 1 one\npay 2 two\n")
    pane.tmux("paste-buffer", "-p", "-b", "block", "-t", pane.target)    # bracketed, as a terminal pastes
    pane.wait_text(r"^pay 2 two")
    pane.enter()
    pane.wait_text(r"^Sent 2\.00 to bob \(#2\)")
    bob.expect(r"You were paid 1\.00! — one")
    bob.expect(r"You were paid 2\.00! — two")

    pane.type("bal")
    pane.tmux("send-keys", "-t", pane.target, "C-z")
    pane.wait_text(r"Stopped")
    pane.type("fg")
    pane.enter()
    pane.wait_for(lambda s: s[pane.cursor_row()].rstrip().endswith("alice> bal"), "the prompt back, intact")
    pane.type("ance")
    pane.enter()
    pane.wait_text(r"^-3\.00$")
    pane.type("exit")
    pane.enter()
    pane.wait_text(r"^Goodbye\.$")
    bob.expect(r"^alice left$")
