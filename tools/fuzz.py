#!/usr/bin/env python3
"""Long fuzzing runs over the codec and the core's receive path.

Targets:

* ``decode``: any bytes through ``wire.decode``: a message or DecodeError, nothing else;
* ``inner``: the same for ``wire.decode_inner`` (a sealed datagram's plaintext);
* ``receive``: datagrams into a copy of a real core caught looking, mid-handshake
  (either side) or paired with money moved, as in tests/test_fuzz.py: nothing
  escapes, nothing moves, every table stays bounded, and a paired core still
  takes its partner's payment.

With ``--engine atheris`` (the default when ``pip install atheris`` worked: it
has wheels for CPython on Linux) the run is coverage-guided by libFuzzer and
seeded with every datagram the simulator recorded; a crash leaves its input in
the working directory (``crash-*``) and exits non-zero.  ``--engine hypothesis``
is the fallback anywhere: the same checks as the tests, drawn in rounds of
random examples until the time is up.

usage: python3 tools/fuzz.py [--target receive] [--seconds 600] [--engine atheris|hypothesis]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))   # the scenes and checks the tests use

TARGETS = ("decode", "inner", "receive")


def codec_check(inner: bool) -> Callable[[bytes], None]:
    """One input through a decoder: a Message or DecodeError; anything else propagates (a crash)."""
    from lanpay.core import wire
    from lanpay.core.errors import DecodeError

    decoder = wire.decode_inner if inner else wire.decode

    def check(data: bytes) -> None:
        try:
            msg = decoder(data)
        except DecodeError:
            return
        if not isinstance(msg, wire.Message):
            raise AssertionError(f"decoder returned {msg!r}")
    return check


def split(data: bytes) -> list[tuple[bytes, int, int]]:
    """Cut a fuzzer's input into (datagram, source index, gap index) items.

    Each item is a 1-byte length (0 means 'the rest'), a byte choosing the
    source and the gap, then the datagram: libFuzzer's mutations of one input
    then become insertions, deletions and edits of whole datagrams.
    """
    items, pos = [], 0
    while pos + 2 <= len(data) and len(items) < 64:
        size, pick = data[pos], data[pos + 1]
        pos += 2
        chunk = data[pos:pos + size] if size else data[pos:]
        pos += len(chunk)
        items.append((chunk, pick & 0x0F, pick >> 4))
    return items


def receive_check() -> tuple[Callable[[bytes], None], list[bytes]]:
    """The receive-path check for raw fuzzer input, and a seed corpus of recorded datagrams."""
    from fuzzing import STRANGER, build_scenes, check_case

    scenes = build_scenes()
    gaps = (0.0, 0.001, 0.05, 0.3)

    def check(data: bytes) -> None:
        if not data:
            return
        scene = scenes[data[0] % len(scenes)]
        known = [STRANGER, scene.addr] + ([scene.partner_addr] if scene.partner_addr else [])
        items = [(chunk, known[src % len(known)], gaps[gap % len(gaps)])
                 for chunk, src, gap in split(data[1:])]
        if items:
            check_case(scene, items)

    seeds = [bytes([i]) + bytes([len(d) if len(d) < 256 else 0, 0x12]) + d
             for i, scene in enumerate(scenes) for d in scene.record]
    return check, seeds


def target_check(target: str) -> tuple[Callable[[bytes], None], list[bytes]]:
    if target == "receive":
        return receive_check()
    from fuzzing import build_scenes

    seeds = [d for scene in build_scenes() for d in scene.record]
    if target == "inner":
        seeds = [bytes([kind]) + bytes(40) for kind in range(1, 9)]
    return codec_check(target == "inner"), seeds


def run_atheris(target: str, seconds: float, extra: Sequence[str]) -> int:
    """Coverage-guided: libFuzzer drives, seeded from a temporary corpus; returns only on success."""
    import atheris

    with atheris.instrument_imports():
        import lanpay.core.peer  # noqa: F401  (instrumented for coverage)
        import lanpay.core.wire  # noqa: F401
    check, seeds = target_check(target)
    corpus = Path(tempfile.mkdtemp(prefix=f"lanpay-fuzz-{target}-"))
    for i, seed in enumerate(seeds):
        (corpus / f"seed{i:04d}").write_bytes(seed)
    print(f"fuzz: atheris on {target} for {seconds:.0f} s, corpus {corpus} ({len(seeds)} seeds)",
          flush=True)
    argv = [sys.argv[0], f"-max_total_time={int(seconds)}", "-max_len=4096", *extra, str(corpus)]
    atheris.Setup(argv, check)
    atheris.Fuzz()
    return 0


def run_hypothesis(target: str, seconds: float) -> int:
    """The fallback: rounds of random examples until ``seconds`` pass (a failure raises)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from fuzzing import build_scenes, check_case, inputs

    scenes = build_scenes()
    opts = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    if target == "receive":
        @opts
        @given(st.data())
        def one_round(data: st.DataObject) -> None:
            scene = data.draw(st.sampled_from(scenes))
            check_case(scene, data.draw(inputs(scene, max_size=40)))
    else:
        check, _ = target_check(target)

        @opts
        @given(st.binary(max_size=600))
        def one_round(data: bytes) -> None:
            check(data)
    end, rounds = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        one_round()
        rounds += 1
    print(f"fuzz: hypothesis on {target}: {rounds} rounds of 200 examples, no failure")
    return 0


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    have_atheris = importlib.util.find_spec("atheris") is not None
    parser = argparse.ArgumentParser(description="Long fuzzing runs over lanpay's decoders and core.")
    parser.add_argument("--target", choices=TARGETS, default="receive")
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to run")
    parser.add_argument("--engine", choices=("atheris", "hypothesis"),
                        default="atheris" if have_atheris else "hypothesis")
    args, extra = parser.parse_known_args(list(argv))
    if args.engine == "atheris" and not have_atheris:
        parser.error("atheris is not installed here (pip install atheris); use --engine hypothesis")
    return args, extra


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    if args.engine == "atheris":
        return run_atheris(args.target, args.seconds, extra)
    if extra:
        print(f"fuzz: ignoring libFuzzer options {extra} with the hypothesis engine", file=sys.stderr)
    return run_hypothesis(args.target, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
