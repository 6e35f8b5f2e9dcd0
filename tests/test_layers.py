"""The layering the design promises, checked from the source itself.

The core must stay sans-I/O (no sockets, event loop, clock or OS randomness),
so every test can drive it deterministically; imports point down the layers
only; and every module imports on its own, so there are no import cycles.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lanpay"
CORE = PACKAGE / "core"

#: Modules the core must never import: each brings I/O, a clock, threads or a UI.
FORBIDDEN_IN_CORE = {
    "asyncio", "socket", "time", "select", "selectors", "threading", "multiprocessing",
    "subprocess", "os", "secrets", "datetime", "signal", "netifaces", "prompt_toolkit",
}

#: The layers, bottom first: a module may import only from layers below its own.
LAYER = {
    "lanpay": 0, "lanpay.core": 0,
    "lanpay.commands": 1, "lanpay.discovery": 1, "lanpay.transport": 1,
    "lanpay.node": 2,
    "lanpay.render": 2,
    "lanpay.ui": 3,
    "lanpay.cli": 4,
    "lanpay.__main__": 5,
}

#: Third-party modules that belong to exactly one place above the core.
ONLY_IN = {"netifaces": {"lanpay.discovery"}, "prompt_toolkit": {"lanpay.ui"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def core_modules() -> list[Path]:
    return sorted(CORE.glob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module a file imports anywhere (top level, in functions, under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def layer_of(name: str) -> int | None:
    """The layer of a lanpay module (its longest known prefix), or None outside lanpay."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYER:
            return LAYER[prefix]
    return None


def test_the_scan_sees_every_kind_of_import() -> None:
    """Guard the guard: relative, absolute and nested imports all show up."""
    peer = imported(CORE / "peer.py")
    assert {"lanpay.core.wire", "lanpay.core.session", "random"} <= peer
    cli = imported(PACKAGE / "cli.py")
    assert {"lanpay.node", "lanpay.ui", "asyncio"} <= cli


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_the_core_does_no_io(path: Path) -> None:
    tops = {name.split(".")[0] for name in imported(path)}
    assert not tops & FORBIDDEN_IN_CORE, f"{path.name} imports {sorted(tops & FORBIDDEN_IN_CORE)}"


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_the_core_takes_randomness_as_an_argument(path: Path) -> None:
    """`random` may name the Random type; drawing from the global or OS generator is refused."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "random":
            assert node.attr == "Random", f"{path.name}:{node.lineno} uses random.{node.attr}"
        if isinstance(node, ast.ImportFrom) and node.module == "random":
            assert [a.name for a in node.names] == ["Random"], f"{path.name}:{node.lineno}"


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_the_core_never_imports_the_layers_above(path: Path) -> None:
    above = {n for n in imported(path) if n.startswith("lanpay") and (layer_of(n) or 0) > 0}
    assert not above, f"{path.name} imports {sorted(above)}"


@pytest.mark.parametrize("path", all_modules(), ids=lambda p: module_name(p))
def test_imports_point_down_the_layers(path: Path) -> None:
    me = module_name(path)
    mine = layer_of(me)
    assert mine is not None, f"{me} has no layer: add it to LAYER"
    for name in imported(path):
        theirs = layer_of(name)
        if theirs is None or name.startswith("lanpay.core") and me.startswith("lanpay.core"):
            continue
        assert theirs < mine or name == "lanpay", f"{me} (layer {mine}) imports {name} (layer {theirs})"


@pytest.mark.parametrize("path", all_modules(), ids=lambda p: module_name(p))
def test_platform_libraries_stay_in_their_one_module(path: Path) -> None:
    me = module_name(path)
    tops = {name.split(".")[0] for name in imported(path)}
    for library, owners in ONLY_IN.items():
        if library in tops:
            assert me in owners, f"{me} imports {library}; only {sorted(owners)} may"


@pytest.mark.parametrize("name", [module_name(p) for p in all_modules()])
def test_every_module_imports_alone(name: str) -> None:
    """A fresh interpreter per module: an import cycle fails here whichever module comes first."""
    result = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

