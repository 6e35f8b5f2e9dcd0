"""Fuzzing the decoders and the core's receive path: nothing escapes, nothing moves, nothing grows.

Every decoder, outer and inner, meets noise and mutated valid datagrams.  The
core meets them too, in every state a stranger can find it in (looking, in the
middle of a handshake on either side, paired with money moved), through
``Peer.receive_datagram`` with the clock running; see tests/fuzzing.py for what
is thrown and what is checked.  The default runs are small enough for every CI
run; the ``slow`` ones go further, and tools/fuzz.py runs for as long as asked.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz  # tools/ is on the path through netlan
from budget import examples
from fuzzing import STRANGER, Scene, build_scenes, check_case, feed, inputs, mutated
from invariants import bounded
from netlan import REPO
from lanpay.core import wire
from lanpay.core.errors import DecodeError
from test_wire import INNER_CASES, OUTER_CASES

SCENES = build_scenes()
NAMES = [s.name for s in SCENES]
SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large]


def runs(count: int) -> settings:
    return settings(max_examples=examples(count), deadline=None, suppress_health_check=SUPPRESS)


def test_the_scenes_cover_every_state_a_stranger_can_meet() -> None:
    states = [s.peer.status().state for s in SCENES]
    assert states == ["looking", "pairing", "pairing", "paired"]
    paired = SCENES[-1].peer
    assert paired.status().balance == -1250 + 300
    assert {s.peer.me.incarnation for s in SCENES[1:3]} == {SCENES[1].peer.me.incarnation,
                                                           SCENES[2].peer.me.incarnation}
    assert SCENES[1].peer.me.incarnation != SCENES[2].peer.me.incarnation  # both sides of a handshake


def decodes_or_refuses(decoder, data: bytes) -> None:
    try:
        msg = decoder(data)
    except DecodeError:
        return
    assert isinstance(msg, wire.Message)


@runs(300)
@given(st.data())
def test_every_decoder_takes_mutations_of_every_message(data: st.DataObject) -> None:
    msg = data.draw(st.sampled_from(OUTER_CASES + INNER_CASES))
    outer = msg in OUTER_CASES
    raw = wire.encode(msg) if outer else wire.encode_inner(msg)
    decodes_or_refuses(wire.decode if outer else wire.decode_inner, data.draw(mutated(raw)))


@pytest.mark.parametrize("scene", SCENES, ids=NAMES)
@runs(40)
@given(data=st.data())
def test_the_receive_path_survives_anything_in_every_state(scene: Scene, data: st.DataObject) -> None:
    check_case(scene, data.draw(inputs(scene, max_size=12)))


@pytest.mark.slow
@pytest.mark.parametrize("scene", SCENES, ids=NAMES)
@runs(400)
@given(data=st.data())
def test_the_receive_path_survives_long_sequences(scene: Scene, data: st.DataObject) -> None:
    check_case(scene, data.draw(inputs(scene, max_size=60)))


@pytest.mark.parametrize("scene", SCENES, ids=NAMES)
def test_a_flood_of_strangers_keeps_every_table_bounded(scene: Scene) -> None:
    """2,000 announces and hellos from 2,000 addresses, all different incarnations and names."""
    peer, _ = scene.fresh()
    before = peer.status().balance
    items = []
    for i in range(2000):
        inc = 10_000 + i
        if i % 2:
            msg = wire.padded(wire.Announce(inc, 40000 + i, 0, 5000, f"bob{i % 7}", "", "", 0, bytes(32)))
        else:
            msg = wire.padded(wire.Hello(inc, peer.me.incarnation, 0, "bob", "", bytes(32), bytes(16)))
        items.append((wire.encode(msg), (f"10.1.{i // 250}.{i % 250}", 40000 + i), 0.001))
    feed(peer, items, scene.now)
    assert bounded(peer) == []
    assert peer.status().balance == before


def test_sealed_datagrams_replayed_from_a_stranger_move_nothing() -> None:
    scene = SCENES[-1]
    peer, _ = scene.fresh()
    sealed = [d for d in scene.record if wire.decode(d).TYPE == wire.Sealed.TYPE]
    assert sealed
    before = (peer.status().balance, len(peer.history()))
    feed(peer, [(d, STRANGER, 0.001) for d in sealed * 3], scene.now)
    assert (peer.status().balance, len(peer.history())) == before


# ------------------------------------------------------------------ the long-run tool

def test_the_fuzz_tool_cuts_an_input_into_whole_datagrams() -> None:
    data = bytes([3, 0x21]) + b"abc" + bytes([0, 0x05]) + b"rest of it"
    assert fuzz.split(data) == [(b"abc", 1, 2), (b"rest of it", 5, 0)]
    assert fuzz.split(b"\x05") == []


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["hypothesis", "atheris"])
def test_the_fuzz_tool_runs_each_engine_briefly_and_finds_nothing(engine: str, tmp_path: Path) -> None:
    if engine == "atheris" and importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed")
    done = subprocess.run([sys.executable, str(REPO / "tools" / "fuzz.py"), "--engine", engine,
                           "--target", "decode", "--seconds", "1"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fuzz:" in done.stdout
    assert not list(tmp_path.glob("crash-*"))
