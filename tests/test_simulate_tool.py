"""tools/simulate.py: parallel seeds, failing seeds with their rerun command, exit status."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import faults

TOOL = Path(__file__).resolve().parent.parent / "tools" / "simulate.py"


def _load():
    spec = importlib.util.spec_from_file_location("simulate_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulate_tool"] = module          # so the worker processes find its functions
    spec.loader.exec_module(module)
    return module


def test_a_clean_range_exits_0_with_a_summary() -> None:
    done = subprocess.run([sys.executable, str(TOOL), "--seeds", "0:6", "--jobs", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("6 seeds, 0 failed (random 0/6), ")
    assert "FAIL" not in done.stdout


def test_failing_seeds_are_printed_with_their_rerun_command_and_exit_1(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tool = _load()
    monkeypatch.setattr(faults, "run_fault_plan",
                        lambda plan: [f"seed {plan.seed} broke it", "and this"] if plan.seed in (2, 5) else [])
    assert tool.main(["--kind", "stalls", "--seeds", "0:8", "--jobs", "2", "--full"]) == 1
    out = capsys.readouterr().out.splitlines()
    fails = [line for line in out if line.startswith("FAIL")]
    assert fails == ["FAIL stalls seed 2: seed 2 broke it", "FAIL stalls seed 5: seed 5 broke it"]
    assert "  rerun: LANPAY_SIM_SEED=5 python3 -m pytest tests/test_sim_faults.py -k stalls" in out
    assert "  and this" in out
    assert out[-1].startswith("8 seeds, 2 failed (stalls 2/8), ")


def test_a_bad_range_is_refused() -> None:
    done = subprocess.run([sys.executable, str(TOOL), "--seeds", "9:3"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "empty range" in done.stderr
