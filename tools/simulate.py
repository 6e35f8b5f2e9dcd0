#!/usr/bin/env python3
"""Run the simulator over a range of seeds in parallel processes.

    python3 tools/simulate.py --seeds 0:30000 --jobs 4
    python3 tools/simulate.py --kind stalls --seeds 0:500

``--kind random`` (the default) is the chaos-then-calm sweep of tests/test_sim.py;
the other kinds are the fault classes of tests/faults.py, or ``all`` for every
one of them.  Each failing seed is printed with the first invariant sentence it
broke (``--full`` prints them all and the seed's plan) and the exact command that
reruns it; a summary line gives the counts and the time taken.  The exit status
is 1 if any seed failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent))

import faults  # noqa: E402  (found through the path set up above)

Result = tuple[str, int, list[str], str, str]     # kind, seed, problems, plan, rerun command


def run_one(kind: str, seed: int) -> Result:
    """One seed of one kind, never raising: a crash is reported as a problem."""
    if kind == "random":
        import test_sim
        plan = test_sim.draw_plan(seed)
        rerun = test_sim.RERUN.format(seed=seed)
        play = test_sim.run_plan
    else:
        plan = faults.draw(kind, seed)
        rerun = faults.RERUN.format(seed=seed, kind=kind)
        play = faults.run_fault_plan
    try:
        problems = play(plan)
    except Exception:  # noqa: BLE001 - the core must never raise; report it with its seed
        problems = ["raised: " + traceback.format_exc()]
    return kind, seed, problems, plan.describe() if problems else "", rerun


def _run_chunk(work: list[tuple[str, int]]) -> list[Result]:
    return [run_one(kind, seed) for kind, seed in work]


def parse_seeds(text: str) -> range:
    try:
        first, _, last = text.partition(":")
        seeds = range(int(first), int(last)) if last else range(int(first), int(first) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A:B (seeds A to B-1), got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"{text!r} is an empty range")
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=parse_seeds, required=True, help="A:B runs seeds A to B-1")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel processes")
    parser.add_argument("--kind", default="random", choices=("random", "all", *faults.KINDS))
    parser.add_argument("--full", action="store_true", help="print every broken sentence and the plan")
    args = parser.parse_args(argv)
    kinds = faults.KINDS if args.kind == "all" else (args.kind,)
    work = [(kind, seed) for kind in kinds for seed in args.seeds]
    size = max(1, min(50, len(work) // (args.jobs * 8) or 1))
    chunks = [work[i:i + size] for i in range(0, len(work), size)]
    start = time.monotonic()
    failed: list[Result] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for results in pool.map(_run_chunk, chunks):
            for result in results:
                if result[2]:
                    failed.append(result)
                    _report(result, args.full)
    elapsed = time.monotonic() - start
    by_kind = ", ".join(f"{k} {sum(1 for r in failed if r[0] == k)}/{len(args.seeds)}" for k in kinds)
    print(f"{len(work)} seeds, {len(failed)} failed ({by_kind}), {elapsed:.1f} s with {args.jobs} jobs",
          flush=True)
    return 1 if failed else 0


def _report(result: Result, full: bool) -> None:
    kind, seed, problems, plan, rerun = result
    print(f"FAIL {kind} seed {seed}: {problems[0].splitlines()[0]}", flush=True)
    if full:
        print(f"  plan: {plan}")
        for line in problems[1:]:
            print(f"  {line}")
    print(f"  rerun: {rerun}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
