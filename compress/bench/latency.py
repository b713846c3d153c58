"""The bench stage's measurements: runtime files through targets.bench, PyTorch models through its worker.

Both give the same fields per model (load time, peak RSS, one cell per threads × seq × batch), so the teacher
in PyTorch eager and an int8 .tflite sit in one table. With `bench.isolate` each model runs in a fresh process.
"""

from __future__ import annotations

from pathlib import Path

from compress.errors import UserError
from compress.progress import info
from compress.recipe import BenchConfig
from dataclasses import asdict

from targets.bench import BenchError, Job, bench_many, file_job, measure, run_worker


QUIET = {"BERT_COMPRESS_QUIET": "1"}  # one line per model here; the per-cell lines are for device runs


def architecture(config) -> dict:
    """What matmul_flops needs, from a Hugging Face BERT / ALBERT config."""
    return {"layers": config.num_hidden_layers, "hidden_size": config.hidden_size,
            "intermediate_size": config.intermediate_size, "heads": config.num_attention_heads,
            "embedding_size": getattr(config, "embedding_size", None) or config.hidden_size,
            "num_labels": config.num_labels, "vocab_size": config.vocab_size}


def runtime_job(path: Path, cfg: BenchConfig, vocab_size: int, label: str, arch: dict | None) -> Job:
    return file_job(path, cfg.grid(), vocab_size, label, arch, isolate=cfg.isolate, quiet=True)


def torch_job(spec: dict, cfg: BenchConfig, vocab_size: int, label: str, arch: dict, input_names: list[str]) -> Job:
    """spec: {"kind": teacher|student|torchao, "path", ...} as compress.bench.torch_worker reads it."""
    grid = cfg.grid()

    def run(timing, seed: int) -> dict:
        full = spec | {"grid": asdict(grid), "timing": asdict(timing), "vocab_size": vocab_size, "label": label,
                       "input_names": input_names, "seed": seed}
        if cfg.isolate:
            return run_worker("compress.bench.torch_worker", full, QUIET)
        from compress.bench.torch_worker import _load_model, torch_loader

        return measure(torch_loader(lambda: _load_model(full)), grid, timing, vocab_size, label,
                       input_names=input_names, fresh_process=False, seed=seed)

    return Job(f"{label} (pytorch eager)", arch, run)


def time_jobs(jobs: list[Job], cfg: BenchConfig) -> list[dict]:
    """Every model × every cell, interleaved over cfg.rounds rounds (targets.bench.bench_many)."""
    grid = cfg.grid()
    info(f"bench: {len(jobs)} models × {grid.cells} cells (threads {grid.threads} × seq {grid.seq_lens} × batch "
         f"{grid.batches}), {cfg.rounds} interleaved rounds")
    try:
        return bench_many(jobs, cfg.timing())
    except BenchError as exc:
        raise UserError(str(exc)) from None
