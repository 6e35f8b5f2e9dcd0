#!/usr/bin/env python3
"""Twenty lanpays on one virtual LAN: ten pairs chosen by ``--peer``, all paying.

Every host is a network namespace on one bridge (tools/netns_lan.py's Lan), so
nothing reaches the machine's real network.  The run starts all twenty at once,
waits until each is welcomed by the partner it named, has every payer pay its
partner a few times, then leaves the LAN quiet for a while.  nftables counters
in each host's namespace count what each peer sent and received, split into
discovery broadcasts (to the discovery port) and everything else.

It checks, and exits 1 if any fails:

* every peer welcomed by the partner its ``--peer`` names, within ``--pair-limit``;
* every payment confirmed (``Sent``) on the payer's side;
* discovery stays bounded: each peer's broadcasts are at most what the announce
  schedule allows (a start-up burst of 4, then one per 4 s looking or 20 s
  paired); while paired and silent each peer hears at most the others' paired
  announces, and sends at most ``QUIET_SEND_BOUND`` datagrams a second of any
  kind (keepalives included).

Every wait has a deadline, the whole run has one (``--time-limit``), and the
namespaces are deleted on the way out whatever happens (an exception, Ctrl-C,
SIGTERM): the Lan is a context manager and also removes itself at exit.

usage: python3 tools/scale.py [--pairs 10] [--pays 5] [--quiet 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bench
import netns_lan
from lanpay.core.announcer import FIRST_ANNOUNCES

PORT = 47555
COUNTERS = "lanpay_scale"
#: Broadcasts the announce schedule allows: the start-up burst, then one per looking interval.
BURST, LOOKING_EVERY, PAIRED_EVERY = len(FIRST_ANNOUNCES), 4.0, 20.0
#: Datagrams a second a paired, silent peer may send (announces and keepalives together).
QUIET_SEND_BOUND = 2.5


@dataclass(frozen=True)
class Counts:
    """What one host's counters read at one moment."""

    disc_out: int
    other_out: int
    disc_in: int
    other_in: int


def counter_rules(port: int) -> str:
    """An nftables table counting UDP to and from the discovery port, and all other UDP."""
    return (f"table inet {COUNTERS} {{\n"
            "  counter disc_out { }\n  counter other_out { }\n"
            "  counter disc_in { }\n  counter other_in { }\n"
            "  chain out { type filter hook output priority 0; policy accept;\n"
            f'    udp dport {port} counter name "disc_out" accept\n'
            '    meta l4proto udp counter name "other_out"\n  }\n'
            "  chain in { type filter hook input priority 0; policy accept;\n"
            f'    udp dport {port} counter name "disc_in" accept\n'
            '    meta l4proto udp counter name "other_in"\n  }\n}\n')


def read_counts(lan: netns_lan.Lan, host: str) -> Counts:
    out = netns_lan.run(lan.exec_argv(host, ["nft", "list", "counters", "table", "inet", COUNTERS])).stdout
    found = dict(re.findall(r"counter (\w+) \{\s*packets (\d+)", out))
    return Counts(*(int(found[name]) for name in ("disc_out", "other_out", "disc_in", "other_in")))


def pair_names(pairs: int) -> list[tuple[str, str]]:
    """(payer, payee) names: a1 with b1, a2 with b2, ..."""
    return [(f"a{k}", f"b{k}") for k in range(1, pairs + 1)]


def welcomed(kids: bench.Children, procs: dict[str, bench.Child], partner: dict[str, str],
             start: float, limit: float) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds from the start to each peer's first line (it is up) and to its welcome.

    Each welcome must name the partner that peer's ``--peer`` chose.
    """
    up, times = {}, {}
    for name, child in procs.items():
        up[name] = kids.expect(child, lambda text: True, start + limit)[0] - start
        _, text = kids.expect(child, bench.starts_with("Paired with"), start + limit)
        if not text.startswith(f"Paired with {partner[name]} "):
            raise bench.BenchError(f"{name} paired with the wrong peer: {text!r}")
        stamp, _ = kids.expect(child, bench.starts_with(bench.WELCOME), start + limit)
        times[name] = stamp - start
    return up, times


def pay_all(kids: bench.Children, procs: dict[str, bench.Child], payers: Sequence[str],
            pays: int) -> float:
    """Every payer pays its partner ``pays`` times at once; seconds until all are Sent."""
    start = time.perf_counter()
    for name in payers:
        procs[name].send("pay 0.01\n" * pays)
    limit = bench.deadline()
    for name in payers:
        for _ in range(pays):
            _, text = kids.expect(procs[name], bench.OUTCOME, limit)
            if not text.startswith("Sent"):
                raise bench.BenchError(f"{name}: a payment failed: {text!r}")
    return time.perf_counter() - start


def quiet(kids: bench.Children, seconds: float) -> None:
    """Let the LAN be, draining everyone's output meanwhile."""
    end = time.perf_counter() + seconds
    while (now := time.perf_counter()) < end:
        kids.poll(end - now)


def measure(args: argparse.Namespace) -> dict[str, object]:
    """The run itself, inside a LAN that exists for exactly its duration."""
    pairs = pair_names(args.pairs)
    partner = {a: b for a, b in pairs} | {b: a for a, b in pairs}
    names = [n for pair in pairs for n in pair]
    with netns_lan.Lan(names) as lan, bench.children() as kids:
        for name in names:
            netns_lan.run(lan.exec_argv(name, ["nft", "-f", "-"]), stdin=counter_rules(PORT))
        order = names[:]
        random.Random(args.seed).shuffle(order)
        start = time.perf_counter()
        procs = {name: kids.start(name, lan.exec_argv(name, bench.lanpay_argv(
            "--name", name, "--peer", partner[name], "--interface", netns_lan.HOST_IFACE,
            "--port", str(PORT)))) for name in order}
        up, times = welcomed(kids, procs, partner, start, args.pair_limit)
        all_paired = time.perf_counter() - start
        at_pairing = {n: read_counts(lan, n) for n in names}
        paying = pay_all(kids, procs, [a for a, _ in pairs], args.pays)
        before = {n: read_counts(lan, n) for n in names}
        quiet(kids, args.quiet)
        after = {n: read_counts(lan, n) for n in names}
        elapsed = time.perf_counter() - start
    return summarise(args, up, times, all_paired, paying, at_pairing, before, after, elapsed)


def summarise(args: argparse.Namespace, up: dict[str, float], times: dict[str, float],
              all_paired: float, paying: float,
              at_pairing: dict[str, Counts], before: dict[str, Counts], after: dict[str, Counts],
              elapsed: float) -> dict[str, object]:
    """The figures per peer (max and median over peers) and the checks they pass or fail."""
    quiet_s = args.quiet
    disc_sent = {n: after[n].disc_out for n in after}
    allowed = BURST + all_paired / LOOKING_EVERY + elapsed / PAIRED_EVERY + 1
    quiet_sent = {n: (after[n].disc_out + after[n].other_out - before[n].disc_out - before[n].other_out)
                  / quiet_s for n in after}
    quiet_heard = {n: (after[n].disc_in - before[n].disc_in) / quiet_s for n in after}
    pairing_heard = {n: at_pairing[n].disc_in for n in at_pairing}
    heard_bound = (len(times) - 1) * (1 / PAIRED_EVERY) + 1 / quiet_s
    checks = {
        f"all {len(times)} welcomed by their chosen partner": True,
        f"all {args.pairs * args.pays} payments Sent": True,
        f"broadcasts per peer <= {allowed:.1f} (the schedule's bound)": max(disc_sent.values()) <= allowed,
        f"paired and silent: discovery heard per peer <= {heard_bound:.2f}/s":
            max(quiet_heard.values()) <= heard_bound,
        f"paired and silent: each peer sends <= {QUIET_SEND_BOUND}/s (keepalives included)":
            max(quiet_sent.values()) <= QUIET_SEND_BOUND,
    }
    return {
        "peers": len(times), "pairs": args.pairs, "pays_per_pair": args.pays,
        "up_s": spread(up),
        "welcomed_s": spread(times),
        "welcomed_after_up_s": spread({n: times[n] - up[n] for n in times}),
        "all_paired_s": all_paired, "paying_s": paying, "elapsed_s": elapsed,
        "broadcasts_sent_per_peer": spread(disc_sent),
        "discovery_heard_per_peer_until_paired": spread(pairing_heard),
        "quiet_sent_per_peer_per_s": spread(quiet_sent),
        "quiet_discovery_heard_per_peer_per_s": spread(quiet_heard),
        "quiet_seconds": quiet_s,
        "checks": checks,
    }


def spread(values: dict[str, float]) -> dict[str, float]:
    return {"median": float(statistics.median(values.values())), "max": float(max(values.values()))}


def report(result: dict[str, object]) -> str:
    """The figures as a reader compares them."""
    def mm(key: str, fmt: str = "{:.2f}") -> str:
        pair = result[key]
        assert isinstance(pair, dict)
        return f"median {fmt.format(pair['median'])}, max {fmt.format(pair['max'])}"
    lines = [
        f"{result['peers']} peers, {result['pairs']} pairs by --peer, one LAN",
        f"up (first line) after start (s):          {mm('up_s')}",
        f"welcomed after start (s):                 {mm('welcomed_s')}",
        f"welcomed after its own first line (s):    {mm('welcomed_after_up_s')}",
        f"all paired after (s):                     {result['all_paired_s']:.2f}",
        f"{result['pays_per_pair']} pays per pair, all Sent after (s):  {result['paying_s']:.2f}",
        f"broadcasts sent per peer (whole run):     {mm('broadcasts_sent_per_peer', '{:.0f}')}",
        f"discovery heard per peer until paired:    {mm('discovery_heard_per_peer_until_paired', '{:.0f}')}",
        f"paired+silent, sent per peer (1/s):       {mm('quiet_sent_per_peer_per_s')}",
        f"paired+silent, discovery heard (1/s):     {mm('quiet_discovery_heard_per_peer_per_s')}",
        f"whole run (s):                            {result['elapsed_s']:.1f}",
    ]
    checks = result["checks"]
    assert isinstance(checks, dict)
    lines += [f"{'ok  ' if passed else 'FAIL'} {what}" for what, passed in checks.items()]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Many lanpay pairs on one namespace LAN (needs root).")
    parser.add_argument("--pairs", type=int, default=10, help="pairs of peers (default 10: 20 peers)")
    parser.add_argument("--pays", type=int, default=5, help="payments each payer makes")
    parser.add_argument("--quiet", type=float, default=10.0, help="seconds of silence measured")
    parser.add_argument("--pair-limit", type=float, default=20.0,
                        help="seconds all peers may take to be welcomed")
    parser.add_argument("--time-limit", type=float, default=120.0, help="the whole run's bound")
    parser.add_argument("--seed", type=int, default=1, help="the order the peers start in")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(list(argv))
    if not 1 <= args.pairs <= 100:
        parser.error("--pairs must be from 1 to 100")
    return args


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGALRM, _stop)
    signal.alarm(int(args.time_limit))    # the whole run's bound: cleanup still runs
    try:
        result = measure(args)
    except (bench.BenchError, netns_lan.LanError, subprocess.SubprocessError, OSError) as exc:
        print(f"scale: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    checks = result["checks"]
    assert isinstance(checks, dict)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
