"""How many generated examples a property test draws: all of them in the full suite, a
quarter in the quick subset (``-m "not slow"``), so everyday runs stay short while CI
draws the whole count.  The quick subset is told by :func:`conftest.pytest_configure`."""

from __future__ import annotations

QUICK = False


def examples(full: int) -> int:
    """``full`` in the full suite; a quarter of it (at least 10) in the quick subset."""
    return max(10, full // 4) if QUICK else full
