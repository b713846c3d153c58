"""Paired A/B of int8 ONNX models against ONNX Runtime's `quantize_dynamic` defaults: the speed-up, measured so
that the machine's own drift cannot decide it.

    python benchmarks/quantize_ab.py --out OUT [--seq-lens 32,128] [--iters 400] [--repeats 3] [--tag quantize_ab]

Every model is loaded once (1 thread); then each iteration calls every model once, in alternating order
(A B C D, D C B A, ...), and the speed-up is the ratio of median call times. A slow spell of a shared VM lands
on all models alike, which the row-by-row matrix (`quantize_matrix.py`) cannot promise: there, two runs put
the 1-thread speed-up of the same two files anywhere between 1.25x and 1.9x. One thread only: with several
threads, the idle intra-op pool of the model that just ran keeps spinning and slows the next one down.

Rows: `quantize_dynamic(model.onnx)` with ONNX Runtime's default session (the baseline); the same file with
the runner's session config (`targets.runtime.SESSION_CONFIG`: how much of the gain is that one setting); the
pipeline's `ort-dynamic` on the fused graph, per-tensor and per-channel.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.bench.env import environment  # noqa: E402
from compress.fsutil import write_json, write_text  # noqa: E402
from compress.quantize import Context  # noqa: E402
from compress.quantize.ort_dynamic import Settings, quantize  # noqa: E402
from targets.runtime import OnnxModel  # noqa: E402

BASELINE = "quantize_dynamic defaults (baseline)"


def paired(models: list[tuple[str, OnnxModel]], seq: int, iters: int) -> dict[str, float]:
    """Median ms per call of each model, calls alternating model by model."""
    rng = np.random.default_rng(seq)
    ids = rng.integers(1000, 20000, (1, seq))
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    for _, model in models:
        for _ in range(10):
            model(feeds)
    times = {name: [] for name, _ in models}
    for i in range(iters):
        for name, model in models if i % 2 == 0 else models[::-1]:
            t0 = time.perf_counter()
            model(feeds)
            times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="a bert-compress OUT with a verified export")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--tag", default="quantize_ab")
    ap.add_argument("--seq-lens", default="32,128")
    ap.add_argument("--iters", type=int, default=400, help="calls of each model per repeat")
    ap.add_argument("--repeats", type=int, default=3, help="independent repeats (the spread is reported)")
    args = ap.parse_args()
    from onnxruntime.quantization import quantize_dynamic

    from compress import run as api
    from compress.recipe import resolve_recipe

    out = Path(args.out)
    run = api.load_run(resolve_recipe(str(api.Layout(out).recipe)), out)  # reads OUT, writes nothing
    exported = {a.name: a.file(out) for a in run.artifacts("export")}
    plain, fused = exported["student-onnx-fp32"], exported.get("student-onnx-fp32-ort-opt")
    seqs = [int(s) for s in args.seq_lens.split(",")]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        quantize_dynamic(str(plain), str(work / "baseline.onnx"))
        ctx = Context({"onnxruntime": plain, "onnxruntime/fused": fused}, None, run.layout.student, work)
        quantize(Settings(), ctx, work / "fused.onnx")
        quantize(Settings(per_channel=True), ctx, work / "fused_pc.onnx")
        models = [(BASELINE, OnnxModel(work / "baseline.onnx", 1, session_config={})),
                  ("quantize_dynamic defaults, runner session config", OnnxModel(work / "baseline.onnx", 1)),
                  ("ort-dynamic fused", OnnxModel(work / "fused.onnx", 1)),
                  ("ort-dynamic fused per-channel", OnnxModel(work / "fused_pc.onnx", 1))]
        runs = []
        for seq in seqs:
            for r in range(args.repeats):
                p50 = paired(models, seq, args.iters)
                runs.append({"seq_len": seq, "repeat": r + 1, "p50_ms": p50,
                             "speedup": {n: p50[BASELINE] / v for n, v in p50.items()}})
                print(json.dumps(runs[-1]), flush=True)
    result = {"command": "python " + " ".join(sys.argv), "environment": environment(), "threads": 1, "iters": args.iters,
              "repeats": args.repeats, "runs": runs}
    write_json(Path(args.results) / f"{args.tag}.json", result)
    lines = [f"# Paired A/B vs `quantize_dynamic` defaults ({result['environment']['cpu']}, 1 thread)", "",
             f"`{result['command']}`", "",
             f"Each repeat: {args.iters} calls of every model, alternating model by model; p50 ms and the speed-up "
             "(baseline p50 / model p50). Batch 1, full-length inputs.", "",
             "| model | seq | p50 ms per repeat | speed-up per repeat | speed-up, median |", "|---|---:|---|---|---:|"]
    for seq in seqs:
        mine = [r for r in runs if r["seq_len"] == seq]
        for name, _ in models:
            ups = [r["speedup"][name] for r in mine]
            p50s = ", ".join(f"{r['p50_ms'][name]:.2f}" for r in mine)
            lines.append(f"| {name} | {seq} | {p50s} | {', '.join(f'{u:.2f}×' for u in ups)} | {float(np.median(ups)):.2f}× |")
    write_text(Path(args.results) / f"{args.tag}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
