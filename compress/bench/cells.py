"""The one lookup of a latency cell in a measured model's `latency` list (a leaf: every report module may use it)."""

from __future__ import annotations


def cell(model: dict, seq: int, threads: int, batch: int = 1) -> dict | None:
    """The model's measurement at (sequence length, threads, batch), or None when that cell was not measured."""
    for c in model["latency"]:
        if c["seq_len"] == seq and c["threads"] == threads and c.get("batch", 1) == batch:
            return c
    return None


def p50_at(latency: list[dict], seq_len: int, threads: int, batch: int = 1) -> float | None:
    """The p50 in ms of a latency list at that cell (None: not measured)."""
    c = cell({"latency": latency}, seq_len, threads, batch)
    return c["p50_ms"] if c else None
