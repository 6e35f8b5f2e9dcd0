"""The benchmark tool reports every metric next to its floor, with consistent ratios.

No speed is asserted here: the figures belong to the machine and the moment.
What is checked is what the report says about lanpay's behaviour (every
lossless payment confirmed, no more confirmed under loss than were asked, two
in-process cores ending with opposite balances) and that each ratio is the
lanpay figure divided by the floor.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netlan import REPO, require_tools

import bench  # tools/ is on the path through netlan
from lanpay.core.wire import Sealed, decode

BENCH = REPO / "tools" / "bench.py"
RUN_LIMIT = 300  # bounds a hang; the quick run takes a fraction of it

CORE_METRICS = {"core_cpu_per_datagram_s", "memory_per_payment_b", "memory_per_payment_large_b"}
NETWORK_METRICS = {
    "startup_s", "startup_help_s", "first_announce_s", "pairing_s", "memory_paired_kib",
    "pay_latency_median_s", "pay_latency_p95_s", "pay_latency_sealed_pair_median_s",
    "throughput_line_per_s",
    "idle_datagrams_per_s", "idle_cpu_pct",
    "goodput_loss10_per_s", "goodput_loss30_per_s", "memory_after_pays_kib",
} | ({"pay_latency_asyncio_median_s"} if bench.have_uvloop() else set())


def run_bench(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    """Run ``bench.py --quick --json`` in a subprocess; return the JSON and the table."""
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", str(out), *extra],
                          capture_output=True, text=True, timeout=RUN_LIMIT)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), done.stdout


def check_figures(report: dict[str, Any], names: set[str], table: str) -> None:
    """Every metric present, positive and finite, its ratio lanpay / floor, and in the table."""
    metrics = report["metrics"]
    assert set(metrics) == names
    for name, metric in metrics.items():
        assert metric["name"] == name
        for key in ("lanpay", "floor", "ratio"):
            assert math.isfinite(metric[key]) and metric[key] > 0, (name, key, metric[key])
        assert metric["ratio"] == pytest.approx(metric["lanpay"] / metric["floor"], rel=1e-12)
        assert metric["label"] in table
    assert report["quick"] is True


def check_core(metrics: dict[str, Any], plan: dict[str, Any]) -> None:
    """Every in-process payment was sealed and sent at least once, and acknowledged;
    the memory runs settled every payment they made, with opposite balances."""
    core = metrics["core_cpu_per_datagram_s"]["detail"]
    assert core["datagrams"] > plan["core_payments"] == core["payments"]
    assert core["payments"] < core["sealed"] <= core["datagrams"]
    assert core["cpu_seconds"] > 0
    for name, key in (("memory_per_payment_b", "memory_small"),
                      ("memory_per_payment_large_b", "memory_large")):
        detail = metrics[name]["detail"]
        count = plan[key]
        assert detail["payments"] == detail["confirmed"] == count
        assert detail["balances"] == [-count, count]


def test_core_only_run_needs_no_namespace(tmp_path: Path) -> None:
    report, table = run_bench(tmp_path, "--core-only")
    check_figures(report, CORE_METRICS, table)
    check_core(report["metrics"], report["plan"])


@pytest.mark.e2e
@pytest.mark.netns
@pytest.mark.slow
def test_quick_run_reports_every_metric_against_its_floor(tmp_path: Path) -> None:
    require_tools("ip", "unshare", "nft")
    report, table = run_bench(tmp_path)
    check_figures(report, NETWORK_METRICS | CORE_METRICS, table)
    metrics, plan = report["metrics"], report["plan"]
    check_core(metrics, plan)
    assert metrics["throughput_line_per_s"]["detail"]["sent"] == plan["burst"]
    for pct in (10, 30):
        lossy = metrics[f"goodput_loss{pct}_per_s"]["detail"]
        assert lossy["asked"] == plan["lossy"] and len(lossy["rounds"]) == plan["lossy_rounds"]
        for one in lossy["rounds"]:
            assert 0 < one["sent"] <= plan["lossy"] and one["seconds"] <= plan["lossy_cap"]
            assert one["lossless_per_s"] > 0
    for name in ("startup_s", "first_announce_s"):
        assert len(metrics[name]["detail"]["lanpay_samples"]) == plan["starts"]
    assert len(metrics["pairing_s"]["detail"]["floor_samples"]) == plan["pairings"]
    assert metrics["pay_latency_median_s"]["detail"]["n"] == plan["pays"]
    assert metrics["pay_latency_median_s"]["detail"]["floor_n"] == plan["pays"]
    assert metrics["pay_latency_sealed_pair_median_s"]["detail"]["n"] == plan["pays"]
    idle = metrics["idle_datagrams_per_s"]["detail"]
    assert idle["seconds"] >= plan["idle_seconds"]
    assert len(idle["cpu_seconds"]) == 2 and len(idle["sent_per_side"]) == 2
    assert sum(idle["sent_per_side"]) <= idle["datagrams"]       # every side's datagram is counted in all
    assert metrics["idle_datagrams_per_s"]["lanpay"] == max(max(idle["sent_per_side"]) / idle["seconds"], 1e-3)


def test_two_cores_wired_directly_end_with_opposite_balances() -> None:
    wire = bench.Wire()
    wire.pair()
    wire.record = []
    wire.pay_all(75, steps=10_000)
    alice, bob = (wire.peers[addr] for addr in wire.addrs)
    assert wire.confirmed == 75
    assert alice.status().balance == -75
    assert bob.status().balance == 75
    sealed = [data for _, data in wire.record if isinstance(decode(data), Sealed)]
    assert len(sealed) > 75  # a PAY for each payment, and acknowledgements


@pytest.mark.parametrize(("values", "pct", "expected"), [
    ([5.0], 95, 5.0),
    ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
    ([float(v) for v in range(1, 101)], 95, 95.0),
    ([float(v) for v in range(1, 201)], 95, 190.0),
    ([3.0, 1.0, 2.0], 100, 3.0),
])
def test_percentile_is_a_value_that_was_observed(values: list[float], pct: float,
                                                 expected: float) -> None:
    assert bench.percentile(values, pct) == expected


def test_ratio_is_lanpay_over_floor() -> None:
    metric = bench.Metric("x", "x", "s", lanpay=3.0, floor=0.5, floor_is="y")
    assert metric.ratio == 6.0
    assert metric.as_json()["ratio"] == 6.0


def test_a_short_time_is_shown_in_milliseconds_and_memory_in_mib() -> None:
    assert bench.show(0.00032, "s") == "0.32 ms"
    assert bench.show(0.0000431, "s") == "43.1 us"
    assert bench.show(277.4, "B") == "277 B"
    assert bench.show(0.25, "%") == "0.25 %"
    assert bench.show(34816.0, "KiB") == "34.0 MiB"
    assert bench.show(3198.4, "1/s") == "3,198/s"
    assert bench.show(4.84, "1/s") == "4.8/s"
    assert bench.show(118_912.0, "instr") == "118.9k"


def test_the_counted_runs_report_the_datagrams_they_made() -> None:
    """What the valgrind rows divide by: a core run's datagrams (a Pay and an Ack per payment
    on a perfect wire), and a floor run's seals and opens, one per sealed datagram and pass."""
    assert bench.instr_child("core", 40) == {"datagrams": 80}
    one = bench.instr_child("floor", 1)["datagrams"]
    assert one >= 600 and bench.instr_child("floor", 3) == {"datagrams": 3 * one}


@pytest.mark.skipif(bench.shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.slow
def test_the_instructions_row_counts_both_sides_with_valgrind() -> None:
    metric = bench.instructions_metric()
    assert metric.floor > 1000 and metric.lanpay > metric.floor
    (c1, d1), (c2, d2) = metric.detail["core_runs"]  # type: ignore[misc]
    assert c2 > c1 and d2 - d1 == 2 * (bench.INSTR_RUNS[1] - bench.INSTR_RUNS[0])
