"""Latency at batch B and sequence length S: warm-up runs excluded, then p50 / p90 / p99 of timed runs.

Inputs are full-length (every position a real token, mask all ones): the worst case for that length.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from compress.progress import bar


def bench_inputs(input_names: list[str], vocab_size: int, batch: int, seq_len: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {"input_ids": rng.integers(1000 if vocab_size > 2000 else 1, vocab_size, size=(batch, seq_len), dtype=np.int64)}
    if "attention_mask" in input_names:
        feeds["attention_mask"] = np.ones((batch, seq_len), dtype=np.int64)
    if "token_type_ids" in input_names:
        feeds["token_type_ids"] = np.zeros((batch, seq_len), dtype=np.int64)
    return feeds


def time_calls(fn: Callable[[], object], warmup: int, runs: int) -> np.ndarray:
    for _ in range(warmup):
        fn()
    times = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return times


def summarize(times_s: np.ndarray) -> dict[str, float]:
    ms = times_s * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50_ms": round(float(p50), 3), "p90_ms": round(float(p90), 3), "p99_ms": round(float(p99), 3),
            "mean_ms": round(float(ms.mean()), 3), "runs": int(len(ms))}


def latency_grid(
    label: str,
    runtime: str,
    make_runner: Callable[[int], Callable[[dict[str, np.ndarray]], object]],
    input_names: list[str],
    vocab_size: int,
    seq_lens: list[int],
    threads: list[int],
    batch: int,
    warmup: int,
    runs: int,
) -> list[dict]:
    """Latency entries for every (threads, seq_len); make_runner(threads) builds a runner for that thread count."""
    entries = []
    with bar(f"bench {label}", len(seq_lens) * len(threads)) as advance:
        for n_threads in threads:
            run = make_runner(n_threads)
            for seq_len in seq_lens:
                feeds = bench_inputs(input_names, vocab_size, batch, seq_len)
                times = time_calls(lambda: run(feeds), warmup, runs)
                entries.append({"runtime": runtime, "threads": n_threads, "seq_len": seq_len, "batch": batch, **summarize(times)})
                advance()
    return entries


def torch_runner(model):
    """make_runner for a PyTorch model in eager mode, fp32, inference mode."""
    import torch

    def make(threads: int):
        torch.set_num_threads(threads)

        @torch.inference_mode()
        def run(feeds):
            return model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits

        return run

    return make


def runtime_runner(path):
    """make_runner for an on-device artifact (.onnx, .ort, .tflite) through the torch-free runtime."""
    from targets.runtime import load_model

    return lambda threads: load_model(path, threads=threads)
