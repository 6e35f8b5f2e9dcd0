"""The scale run pairs every peer with the partner it chose and counts discovery per peer.

A small run (two pairs) of tools/scale.py on a real namespace LAN: its checks
are the assertions.  No figure is asserted beyond what the checks bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netlan import REPO, require_tools

import scale  # tools/ is on the path through netlan


def test_counter_rules_count_discovery_apart_from_the_rest() -> None:
    rules = scale.counter_rules(47000)
    assert "udp dport 47000 counter name \"disc_out\"" in rules
    assert "udp dport 47000 counter name \"disc_in\"" in rules
    assert rules.count("counter name") == 4


def test_pairs_are_named_so_each_side_chooses_the_other() -> None:
    assert scale.pair_names(2) == [("a1", "b1"), ("a2", "b2")]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.netns
def test_a_small_scale_run_passes_its_checks(tmp_path: Path) -> None:
    require_tools("ip", "nft")
    out = tmp_path / "scale.json"
    done = subprocess.run([sys.executable, str(REPO / "tools" / "scale.py"), "--pairs", "2",
                           "--pays", "2", "--quiet", "2", "--json", str(out)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["peers"] == 4 and result["pairs"] == 2
    assert all(result["checks"].values()) and len(result["checks"]) == 5
    assert result["broadcasts_sent_per_peer"]["max"] >= 1
    assert "ok   all 4 welcomed by their chosen partner" in done.stdout
