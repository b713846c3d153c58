"""Latency matrix of a model: threads × sequence length × batch, with load time, peak RSS and the CPU's GEMM peak.

Torch-free, so `python -m targets bench BUNDLE` on a Pi or a phone writes the same JSON (schema
`bert-compress-bench`) as `bert-compress bench` on the build machine; `bert-compress report` merges them.

Each cell: untimed warm-up calls, then timed calls until both a minimum count and a minimum time are reached
(fast cells run more often, so p99 rests on enough samples), capped by a maximum count and time. Inputs are
full-length (every position a real token): the worst case for that length. Each model runs in a fresh process
by default, so its load time and peak RSS are its own and not those of the models before it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

SCHEMA = "bert-compress-bench"
SCHEMA_VERSION = 1
GEMM_DIR = Path(__file__).parent


@dataclass
class Timing:
    """How long each cell runs."""

    warmup: int = 5
    """untimed calls first (at least this many, and at least warmup_s seconds)"""
    warmup_s: float = 0.2
    min_runs: int = 50
    min_s: float = 1.0
    """timed calls continue until min_runs and min_s are both reached ..."""
    max_runs: int = 2000
    max_s: float = 20.0
    """... or max_runs, or max_s (a slow cell stops there, but never below 5 timed calls)"""
    rounds: int = 3
    """the calls above are split over this many rounds; each round visits every model, and every cell of a
    model, in a new random order (random interleaving): a slow spell of a shared machine then touches a share
    of every cell's samples instead of all samples of a few cells, which is what kept two runs apart"""

    def per_round(self) -> "Timing":
        r = max(1, self.rounds)
        return replace(self, min_runs=max(3, -(-self.min_runs // r)), min_s=self.min_s / r, max_s=self.max_s / r,
                       max_runs=max(3, self.max_runs // r), warmup_s=self.warmup_s / r, rounds=1)


@dataclass
class Grid:
    threads: list[int]
    seq_lens: list[int]
    batches: list[int]

    @property
    def cells(self) -> int:
        return len(self.threads) * len(self.seq_lens) * len(self.batches)


class BenchError(Exception):
    """A benchmark that cannot run: a missing model, a bad setting, a worker that failed."""


# ---- one cell ----------------------------------------------------------------------------------------
TEXT_INPUT = "text"
"""The input of a string-in graph (the tokenizer inside): fed a text of exactly seq_len tokens."""


def bench_text(seq_len: int) -> str:
    """A text that a BERT WordPiece tokenizer turns into exactly seq_len ids: [CLS], seq_len - 2 x 'the', [SEP]."""
    return " ".join(["the"] * max(0, seq_len - 2))


def bench_inputs(input_names: list[str], vocab_size: int, batch: int, seq_len: int, seed: int = 0) -> dict[str, np.ndarray]:
    if TEXT_INPUT in input_names:
        return {TEXT_INPUT: np.array([bench_text(seq_len)] * batch, dtype=object)}
    rng = np.random.default_rng(seed)
    feeds = {"input_ids": rng.integers(1000 if vocab_size > 2000 else 1, vocab_size, size=(batch, seq_len), dtype=np.int64)}
    if "attention_mask" in input_names:
        feeds["attention_mask"] = np.ones((batch, seq_len), dtype=np.int64)
    if "token_type_ids" in input_names:
        feeds["token_type_ids"] = np.zeros((batch, seq_len), dtype=np.int64)
    return feeds


def time_calls(fn: Callable[[], object], timing: Timing) -> np.ndarray:
    start, n = time.perf_counter(), 0
    while n < timing.warmup or time.perf_counter() - start < timing.warmup_s:
        fn()
        n += 1
        if time.perf_counter() - start > timing.max_s / 4 and n >= 1:
            break
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        elapsed = t1 - start
        if len(times) >= timing.max_runs or (elapsed >= timing.max_s and len(times) >= 5):
            break
        if len(times) >= timing.min_runs and elapsed >= timing.min_s:
            break
    return np.asarray(times)


def summarize(times_s: np.ndarray, batch: int) -> dict[str, float]:
    ms = times_s * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50_ms": round(float(p50), 3), "p90_ms": round(float(p90), 3), "p99_ms": round(float(p99), 3),
            "mean_ms": round(float(ms.mean()), 3), "min_ms": round(float(ms.min()), 3), "runs": int(len(ms)),
            "throughput_per_s": round(batch * len(ms) / float(times_s.sum()), 2)}


# ---- compute: how many multiply-adds a forward pass does -----------------------------------------------
def matmul_flops(arch: dict, batch: int, seq_len: int) -> float:
    """FLOPs (2 per multiply-add) of the matrix products in one BERT forward pass.

    Per token and layer: Q, K, V and output projections (4·H²), the FFN (2·H·I), scores and context (2·S·H);
    an ALBERT embedding projection (E·H) when E != H; per sequence: the pooler (H²) and classifier (H·C), unless
    arch["head"] is False (an embedding model: its pooling is no matrix product).
    Element-wise work (softmax, GELU, layer norm) is not counted: this is the GEMM work a kernel can speed up.
    """
    h, i, layers = arch["hidden_size"], arch["intermediate_size"], arch["layers"]
    e, labels = arch.get("embedding_size") or h, arch.get("num_labels", 2)
    per_token = layers * (4 * h * h + 2 * h * i + 2 * seq_len * h) + (e * h if e != h else 0)
    head = h * h + h * labels if arch.get("head", True) else 0
    return 2.0 * batch * (seq_len * per_token + head)


# ---- memory --------------------------------------------------------------------------------------------
def _status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_bytes() -> int | None:
    return _status_bytes("VmRSS")


def reset_peak_rss() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux >= 4.0, Android); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int | None:
    peak = _status_bytes("VmHWM")
    if peak is None:
        try:
            import resource

            ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak = ru if sys.platform == "darwin" else ru * 1024
        except (ImportError, OSError):
            return None
    return peak


# ---- one model -----------------------------------------------------------------------------------------
def measure(load: Callable[[int], Callable], grid: Grid, timing: Timing, vocab_size: int, label: str,
            input_names: list[str] | None = None, fresh_process: bool = True, seed: int = 0) -> dict:
    """One round: load the model once per thread count (runtimes fix threads at load) and time every
    (seq, batch) cell in a random order. Returns raw samples; `pool` turns rounds into percentiles."""
    import_rss = rss_bytes()
    peak_scope = "process" if fresh_process else ("model" if reset_peak_rss() else "process (includes earlier models)")
    samples, load_s, facts = {}, [], {}
    cells = [(seq_len, batch) for seq_len in grid.seq_lens for batch in grid.batches]
    for threads in grid.threads:
        t0 = time.perf_counter()
        run = load(threads)
        load_s.append(time.perf_counter() - t0)
        for key in ("interpreter", "buckets"):
            if getattr(run, key, None):
                facts[key] = getattr(run, key)
        names = input_names or list(getattr(run, "input_names", ["input_ids", "attention_mask", "token_type_ids"]))
        random.Random(seed * 1000 + threads).shuffle(cells)
        for seq_len, batch in cells:
            feeds = bench_inputs(names, vocab_size, batch, seq_len)
            times = time_calls(lambda: run(feeds), timing)  # noqa: B023, F821 (called here, before `del run`)
            samples[cell_key(threads, seq_len, batch)] = [round(t, 7) for t in times.tolist()]
            _progress(f"bench {label}: {threads} thread(s), seq {seq_len}, batch {batch}: "
                      f"p50 {1000 * float(np.median(times)):.3f} ms ({len(samples)}/{grid.cells})")
        del run
    return {"load_s_all": [round(s, 4) for s in load_s], "rss_before_load_bytes": import_rss,
            "peak_rss_bytes": peak_rss_bytes(), "peak_rss_scope": peak_scope, **facts, "samples": samples}


def cell_key(threads: int, seq_len: int, batch: int) -> str:
    return f"{threads}/{seq_len}/{batch}"


def pool(parts: list[dict], arch: dict | None) -> dict:
    """Rounds of one model -> its entry: percentiles over every round's samples, the median load time of the
    rounds' first loads, the highest peak RSS."""
    first = parts[0]
    entry = {k: v for k, v in first.items() if k not in ("samples", "load_s_all", "peak_rss_bytes", "rss_before_load_bytes")}
    entry["load_s"] = round(float(np.median([p["load_s_all"][0] for p in parts])), 4)
    entry["load_s_all"] = [s for p in parts for s in p["load_s_all"]]
    peaks = [p["peak_rss_bytes"] for p in parts if p.get("peak_rss_bytes")]
    entry["peak_rss_bytes"] = max(peaks) if peaks else None
    before = [p["rss_before_load_bytes"] for p in parts if p.get("rss_before_load_bytes")]
    entry["rss_before_load_bytes"] = int(np.median(before)) if before else None
    entry["rounds"] = len(parts)
    latency = []
    for key in first["samples"]:
        threads, seq_len, batch = map(int, key.split("/"))
        times = np.asarray([t for p in parts for t in p["samples"][key]])
        cell = {"threads": threads, "seq_len": seq_len, "batch": batch, **summarize(times, batch)}
        if arch:
            flops = matmul_flops(arch, batch, seq_len)
            cell["gflops"] = round(flops / 1e9, 4)
            cell["achieved_gflop_s"] = round(flops / 1e9 / (cell["p50_ms"] / 1e3), 2)
        latency.append(cell)
    entry["latency"] = sorted(latency, key=lambda c: (c["threads"], c["seq_len"], c["batch"]))
    return entry


@dataclass
class Job:
    """One model to time: `run(timing, seed)` measures one round and returns measure()'s raw result."""

    label: str
    arch: dict | None
    run: Callable[[Timing, int], dict]


def bench_many(jobs: list[Job], timing: Timing) -> list[dict]:
    """Time every job over `timing.rounds` rounds, each visiting the jobs in a new random order."""
    per_round = timing.per_round()
    parts: list[list[dict]] = [[] for _ in jobs]
    rounds = max(1, timing.rounds)
    for r in range(rounds):
        order = list(range(len(jobs)))
        random.Random(r).shuffle(order)
        for i in order:
            _progress(f"bench round {r + 1}/{rounds}: {jobs[i].label}")
            parts[i].append(jobs[i].run(per_round, r))
    return [pool(p, job.arch) for p, job in zip(parts, jobs)]


def _progress(line: str) -> None:
    if os.environ.get("BERT_COMPRESS_QUIET") != "1":
        print(line, file=sys.stderr, flush=True)


def bench_file(path: str | Path, grid: Grid, timing: Timing, vocab_size: int, label: str, interpreter: str = "auto",
               fresh_process: bool = True, seed: int = 0) -> dict:
    """One round of one .onnx / .ort / .tflite file through targets.runtime (what a device runs)."""
    from targets.runtime import load_model

    path = Path(path)
    if not path.is_file():
        raise BenchError(f"model file {path} does not exist")
    result = measure(lambda threads: load_model(path, threads=threads, interpreter=interpreter), grid, timing,
                     vocab_size, label, fresh_process=fresh_process, seed=seed)
    return result | {"size_bytes": path.stat().st_size}


def file_job(path: Path, grid: Grid, vocab_size: int, label: str, arch: dict | None, interpreter: str = "auto",
             isolate: bool = True, quiet: bool = False) -> Job:
    """A model file as a Job: each round in a fresh process (isolate), or in this one."""
    def run(timing: Timing, seed: int) -> dict:
        if not isolate:
            return bench_file(path, grid, timing, vocab_size, label, interpreter, fresh_process=False, seed=seed)
        spec = {"path": str(path), "grid": asdict(grid), "timing": asdict(timing), "vocab_size": vocab_size,
                "label": label, "interpreter": interpreter, "seed": seed}
        return run_worker("targets.bench", spec, {"BERT_COMPRESS_QUIET": "1"} if quiet else None)

    return Job(label, arch, run)


# ---- isolation: each model in its own process -----------------------------------------------------------
def run_worker(module: str, spec: dict, env: dict | None = None) -> dict:
    """`python -m MODULE SPEC_JSON` in a fresh interpreter; its last stdout line is the result JSON.
    A quiet worker's stderr (runtimes' own INFO lines) is kept back and shown only when it fails."""
    quiet = (env or {}).get("BERT_COMPRESS_QUIET") == "1"
    proc = subprocess.run([sys.executable, "-m", module, json.dumps(spec)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE if quiet else None, text=True, env={**os.environ, **(env or {})})
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        said = (proc.stderr or "").strip().splitlines()[-1:] if quiet else []
        raise BenchError(f"benchmark worker for {spec.get('label', spec.get('path'))} failed (exit {proc.returncode})"
                         + (f": {said[0][:300]}" if said else "")
                         + f"; run it alone to see why: {sys.executable} -m {module} '{json.dumps(spec)}'")
    result = json.loads(lines[-1])
    if "error" in result:
        raise BenchError(result["error"])
    return result


def worker_main(argv: list[str], measure_spec: Callable[[dict], dict]) -> int:
    """Worker entry point: one JSON spec in argv, one JSON result line out (an error is {"error": line})."""
    spec = json.loads(argv[0])
    try:
        result = measure_spec(spec)
    except Exception as exc:  # reported to the parent as one line; it decides what to do
        result = {"error": f"{spec.get('label', spec.get('path'))}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"}
    print(json.dumps(result))
    return 0


def _file_spec(spec: dict) -> dict:
    return bench_file(spec["path"], Grid(**spec["grid"]), Timing(**spec["timing"]), spec["vocab_size"], spec["label"],
                      spec.get("interpreter", "auto"), fresh_process=True, seed=spec.get("seed", 0))


# ---- the CPU's GEMM peak --------------------------------------------------------------------------------
GEMM_MODELS = {"fp32": "gemm_fp32.onnx", "int8": "gemm_u8s8.onnx"}


def gemm_peak(threads_list: list[int], n: int = 1024, repeats: int = 7) -> dict:
    """Best GFLOP/s of an n×n×n matrix product in ONNX Runtime's own kernels (MLAS): fp32 MatMul and
    uint8×int8 MatMulInteger, the kernels the fp32 and int8 artifacts run on. Best of `repeats` after warm-up."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"note": "onnxruntime is not installed: no GEMM peak"}
    rng = np.random.default_rng(0)
    feeds = {"fp32": {"A": rng.standard_normal((n, n), dtype=np.float32), "B": rng.standard_normal((n, n), dtype=np.float32)},
             "int8": {"A": rng.integers(0, 255, (n, n), dtype=np.uint8), "B": rng.integers(-127, 127, (n, n), dtype=np.int8)}}
    out = {"n": n, "kernels": "onnxruntime MatMul (fp32), MatMulInteger (uint8 x int8)", "gflop_s": {}}
    for precision, file in GEMM_MODELS.items():
        out["gflop_s"][precision] = {}
        for threads in threads_list:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(GEMM_DIR / file), options, providers=["CPUExecutionProvider"])
            for _ in range(2):
                session.run(None, feeds[precision])
            best = min(_timed(lambda: session.run(None, feeds[precision])) for _ in range(repeats))  # noqa: B023 (called here)
            out["gflop_s"][precision][str(threads)] = round(2.0 * n ** 3 / best / 1e9, 1)
            _progress(f"GEMM peak {precision}, {threads} thread(s): {out['gflop_s'][precision][str(threads)]} GFLOP/s")
    return out


def best_peak(*given: dict | None) -> dict | None:
    """The higher of GEMM peaks measured before and after a benchmark, per precision and thread count: a peak
    is a ceiling, and on a shared machine one measurement may fall into a neighbour's busy spell."""
    measured = [m for m in given if m and m.get("gflop_s")]
    if not measured:  # not measured, or a note such as "onnxruntime is not installed"
        return next((m for m in given if m), None)
    out = dict(measured[0]) | {"gflop_s": {}, "measurements": len(measured)}
    for m in measured:
        for precision, by_threads in m["gflop_s"].items():
            for t, v in by_threads.items():
                out["gflop_s"].setdefault(precision, {})[t] = max(v, out["gflop_s"].get(precision, {}).get(t, 0))
    out["all_gflop_s"] = [m["gflop_s"] for m in measured]
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ---- the results file -----------------------------------------------------------------------------------
def results_document(device: dict, models: list[dict], grid: Grid, timing: Timing, command: str,
                     gemm: dict | None = None, extra: dict | None = None) -> dict:
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": command, "device": device, "grid": asdict(grid), "timing": asdict(timing),
            "gemm_peak": gemm, "models": models, **(extra or {})}


def load_results(path: str | Path) -> dict:
    """A results file, checked: its schema and version must be the ones this code reads."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"results file {path} does not exist")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path} is not valid JSON ({exc}): pass the JSON written by `bench`") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise BenchError(f"{path} is not a {SCHEMA} results file (written by `bert-compress bench` or `python -m targets bench`)")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise BenchError(f"{path} has results schema version {doc.get('schema_version')}; this version reads "
                         f"{SCHEMA_VERSION}: re-run the benchmark with this version")
    return doc


def write_results(doc: dict, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # never a half-written results file


def embedding_quality(bundle, entries: list[dict], rows: int = 64) -> dict[str, dict]:
    """file -> what an embedding bundle's bench records in place of a classifier's label agreement: the model's mean
    cosine with the PyTorch student's vectors (and max |Δ|) on the first `rows` texts of check.json, on this device."""
    from targets.bundle import BundleError
    from targets.check import CHECK_FILE, CheckSet, check_model
    from targets.runtime import RuntimeLoadError

    try:
        checks = CheckSet.load(bundle).subset(rows)
    except BundleError as exc:  # an old or damaged check file: the timings are still worth writing
        return {e["file"]: {"mean_cosine_vs_pytorch": None, "mean_cosine_note": str(exc)} for e in entries}
    out = {}
    for e in entries:
        try:
            r = check_model(bundle, e, checks, threads=1)
        except (BundleError, RuntimeLoadError) as exc:
            out[e["file"]] = {"mean_cosine_vs_pytorch": None, "mean_cosine_note": str(exc)}
            continue
        out[e["file"]] = {"mean_cosine_vs_pytorch": round(r.mean_cosine, 6), "max_abs_diff_vs_pytorch": r.max_abs_diff,
                          "mean_cosine_measured_on": f"this device, the first {r.rows} texts of {CHECK_FILE}"}
    return out


def parse_ints(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BenchError(f"{what} must be comma-separated positive integers, got '{text}'") from None
    if not values or any(v < 1 for v in values):
        raise BenchError(f"{what} must be comma-separated positive integers, got '{text}'")
    return values


def default_threads() -> list[int]:
    """1 .. the cores this process may use (powers of two in between on big machines)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    out = sorted({1, cores} | {t for t in (2, 4, 8, 16, 32) if t < cores})
    return out


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:], _file_spec))
