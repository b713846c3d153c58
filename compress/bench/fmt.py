"""How every report table writes a number (a leaf: report.md, the bundle sections, the results documents and
benchmarks/readme_tables all use these, so one value reads the same everywhere)."""

from __future__ import annotations

NONE = "—"


def mb(n: float | None) -> str:
    """Bytes as MB with one decimal ('—' when unknown or 0)."""
    return NONE if not n else f"{n / 1e6:.1f}"


def pct(x: float | None, digits: int = 2) -> str:
    """A share as a percentage without the sign ('—' when not measured)."""
    return NONE if x is None else f"{100 * x:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    """a / b to two decimals ('—' when either is missing or 0)."""
    return f"{a / b:.2f}" if a and b else NONE


def num(x, fmt: str = "{}", none: str = NONE) -> str:
    """Any value through a format (`none` when None)."""
    return none if x is None else fmt.format(x)


def ms(x: float | None) -> str:
    """A latency in ms: two decimals under 100 ms, whole ms above ('—' when not measured)."""
    if x is None:
        return NONE
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def times(a: float | None, b: float | None) -> str:
    """a / b as a speed-up or size ratio: '12.34×' ('—' when either is missing or 0)."""
    return f"{a / b:.2f}×" if a and b else NONE
