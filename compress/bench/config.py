"""The recipe's `bench` section: the latency matrix and how each cell is timed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from compress.schema import Strict


class BenchConfig(Strict):
    """The latency matrix: every model × threads × sequence length × batch (targets.bench times each cell)."""

    seq_lens: list[int] = Field(default_factory=lambda: [16, 32, 64, 128])
    """default: those up to data.max_length"""
    threads: list[int] | Literal["auto"] = "auto"
    """auto: 1 .. the cores this process may use"""
    batches: list[int] = Field(default_factory=lambda: [1, 8])
    warmup: int = Field(5, ge=0)
    """untimed calls before each cell (and at least 0.2 s of them)"""
    runs: int = Field(50, ge=3)
    """timed calls per cell: at least this many and at least min_seconds ..."""
    min_seconds: float = Field(1.0, ge=0)
    max_seconds: float = Field(20.0, gt=0)
    """... stopping at max_seconds for slow cells (never below 5 timed calls)"""
    rounds: int = Field(3, ge=1)
    """each cell's calls split over this many rounds, every round visiting all models and cells in a new random
    order: a slow spell of a shared machine touches a share of every cell, not all of a few"""
    isolate: bool = True
    """each model (each round) in a fresh process: its own load time and peak RSS"""
    gemm_peak: bool = True
    """measure this CPU's fp32 / int8 GEMM peak, to put each model's achieved GFLOP/s against it"""

    @model_validator(mode="before")
    @classmethod
    def _single_batch(cls, raw):
        if isinstance(raw, dict) and "batch" in raw:  # recipes written before the batch list
            raw = dict(raw)
            batch = raw.pop("batch")
            raw.setdefault("batches", [batch] if isinstance(batch, int) else batch)
        return raw

    @field_validator("seq_lens", "batches")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(x < 1 for x in v):
            raise ValueError("needs a non-empty list of positive integers")
        return v

    @field_validator("threads")
    @classmethod
    def _threads(cls, v):
        if v != "auto" and (not v or any(x < 1 for x in v)):
            raise ValueError("needs 'auto' or a non-empty list of positive integers")
        return v

    def thread_counts(self) -> list[int]:
        from targets.bench import default_threads

        return default_threads() if self.threads == "auto" else list(self.threads)

    def grid(self):
        from targets.bench import Grid

        return Grid(threads=self.thread_counts(), seq_lens=list(self.seq_lens), batches=list(self.batches))

    def timing(self):
        from targets.bench import Timing

        return Timing(warmup=self.warmup, min_runs=self.runs, min_s=self.min_seconds,
                      max_s=max(self.max_seconds, self.min_seconds), rounds=self.rounds)
