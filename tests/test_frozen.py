"""The quick constructor of frozen dataclasses: the same objects as ``@dataclass(frozen=True)``."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from lanpay.core import events, wire
from lanpay.core.frozen import frozen


@frozen
class Sample:
    seq: int
    memo: str = ""
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Reference:
    seq: int
    memo: str = ""
    tags: tuple[str, ...] = ()


def quick(cls: type) -> bool:
    return "_own_" in cls.__init__.__code__.co_varnames


def test_it_makes_what_the_generated_constructor_makes() -> None:
    for args, kwargs in (((1,), {}), ((1, "x"), {}), ((1,), {"tags": ("a",)}), ((), {"seq": 2, "memo": "m"})):
        ours, ref = Sample(*args, **kwargs), Reference(*args, **kwargs)
        assert dataclasses.astuple(ours) == dataclasses.astuple(ref)
        assert repr(ours).replace("Sample", "Reference") == repr(ref)
        assert ours == Sample(*args, **kwargs) and hash(ours) == hash(Sample(*args, **kwargs))
    assert quick(Sample)
    assert [(p.name, p.default) for p in inspect.signature(Sample).parameters.values()] == \
        [(p.name, p.default) for p in inspect.signature(Reference).parameters.values()]


def test_it_refuses_what_the_generated_constructor_refuses() -> None:
    for args, kwargs in (((), {}), ((1, "x", (), 4), {}), ((1,), {"nope": 1}), ((1,), {"seq": 1})):
        with pytest.raises(TypeError):
            Reference(*args, **kwargs)
        with pytest.raises(TypeError):
            Sample(*args, **kwargs)


def test_the_object_stays_frozen() -> None:
    s = Sample(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seq = 2        # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.other = 2      # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del s.memo
    assert (s.seq, s.memo) == (1, "")
    assert dataclasses.replace(s, memo="y") == Sample(1, "y")
    assert Sample.__dataclass_params__.frozen      # type: ignore[attr-defined]


def test_it_is_the_same_class_to_read_compare_and_match() -> None:
    assert Sample.__match_args__ == Reference.__match_args__
    assert [f.name for f in dataclasses.fields(Sample)] == [f.name for f in dataclasses.fields(Reference)]
    assert Sample.__doc__ == Reference.__doc__.replace("Reference", "Sample")
    assert Sample(1) != Sample(2) and Sample(1) != Reference(1) and Sample(1, "x") == Sample(1, "x")
    assert (Sample(1) == 1) is False
    assert {Sample(1): "a"}[Sample(1)] == "a"
    assert dataclasses.asdict(Sample(1, "m", ("t",))) == dataclasses.asdict(Reference(1, "m", ("t",)))
    match Sample(3, "m"):
        case Sample(seq, memo=m):
            assert (seq, m) == (3, "m")
        case _:
            pytest.fail("no match")


def test_a_class_it_cannot_serve_keeps_the_generated_constructor() -> None:
    @frozen
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    @frozen
    class Checked:
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError("negative")

    assert not quick(WithFactory) and WithFactory().items == [] and WithFactory().items is not WithFactory().items
    assert not quick(Checked)
    with pytest.raises(ValueError):
        Checked(-1)


def test_every_message_and_event_has_it_and_round_trips() -> None:
    classes = [c for module in (wire, events) for c in vars(module).values()
               if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == module.__name__]
    assert len(classes) > 40
    for cls in classes:
        assert quick(cls), cls
        assert cls.__dataclass_params__.frozen, cls       # type: ignore[attr-defined]
        values = {f.name: object() for f in dataclasses.fields(cls)}
        made = cls(**values)
        assert all(getattr(made, name) is value for name, value in values.items()), cls
        assert made == cls(**values)


def test_the_objects_a_process_keeps_are_plain_frozen_dataclasses() -> None:
    from lanpay.core.matching import Terms
    from lanpay.core.pairing import Identity
    from lanpay.core.peer import Config
    from lanpay.core.session import PeerInfo

    for cls in (Config, Identity, Terms, PeerInfo):
        assert cls.__dataclass_params__.frozen
        assert "__frozen_names__" not in cls.__dict__        # the generated constructor, not the dict-store one
    config = Config(name="alice", limit=500)
    assert config == Config("alice", None, None, 500) and hash(config) == hash(Config("alice", limit=500))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "mallory"  # type: ignore[misc]
