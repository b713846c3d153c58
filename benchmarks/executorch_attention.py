"""Why the ExecuTorch export lowers eager attention: one student lowered with its own attention (SDPA under
transformers 5) and with eager attention, both timed through the runner's torch-free ExecuTorch library on this
CPU, in interleaved rounds.

    python benchmarks/executorch_attention.py --student OUT/student --out benchmarks/results/executorch_attention_TAG.json

Writes the operators each lowering leaves on ExecuTorch's portable kernels, p50 per sequence length (batch 1,
1 thread) and the largest difference between the two files' outputs, with the CPU and the versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEQ_LENS = (16, 32, 64, 128)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", required=True, type=Path, help="a student folder (OUT/student)")
    ap.add_argument("--out", required=True, type=Path, help="results JSON (refused when it exists)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=200, help="calls per cell and round")
    args = ap.parse_args(argv)
    if args.out.exists():
        print(f"executorch_attention: {args.out} exists: results files are never overwritten", file=sys.stderr)
        return 2

    from compress.bench.env import environment
    from compress.export.executorch import lower_to_pte
    from compress.export.onnx import LogitsOnly
    from compress.tasks import load_any_student
    from targets.bench import bench_inputs
    from targets.runtime import ExecuTorchModel

    student = load_any_student(args.student).eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    variants, models = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for attention, label in (("as-is", "sdpa (the model's own)"), ("eager", "eager")):
            lowered = lower_to_pte(LogitsOnly(student), names, Path(tmp) / f"{attention}.pte", 128, [32, 64, 128],
                                   attention=attention)
            models[attention] = ExecuTorchModel(lowered.path, threads=1, engine="native")
            variants[attention] = {"label": label, "bytes": lowered.path.stat().st_size, "dynamic": lowered.dynamic,
                                   "delegate_calls": lowered.delegate_calls, "portable_ops": lowered.portable_ops,
                                   "samples_ms": {str(s): [] for s in SEQ_LENS}}
        vocab = student.config.vocab_size
        diffs = []
        for seq in SEQ_LENS:
            feeds = bench_inputs(names, vocab, 1, seq)
            feeds["attention_mask"][0, seq * 3 // 4:] = 0  # padding inside the text: the mask path is exercised
            diffs.append(float(np.abs(models["as-is"](feeds) - models["eager"](feeds)).max()))
        for r in range(args.rounds):
            for seq in SEQ_LENS:
                feeds = bench_inputs(names, vocab, 1, seq, seed=r)
                for attention in (("as-is", "eager") if r % 2 == 0 else ("eager", "as-is")):
                    model = models[attention]
                    for _ in range(10):
                        model(feeds)
                    times = []
                    for _ in range(args.runs):
                        t0 = time.perf_counter()
                        model(feeds)
                        times.append(1000 * (time.perf_counter() - t0))
                    variants[attention]["samples_ms"][str(seq)] += times
        interpreter = models["eager"].interpreter
    for v in variants.values():
        v["p50_ms"] = {s: round(float(np.median(x)), 4) for s, x in v.pop("samples_ms").items()}
    doc = {"schema": "bert-compress-executorch-attention", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "command": "python benchmarks/executorch_attention.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "environment": environment(), "student": str(args.student), "interpreter": interpreter,
           "timing": {"batch": 1, "threads": 1, "rounds": args.rounds, "runs_per_round": args.runs, "interleaved": True},
           "max_abs_diff_between_variants": max(diffs), "variants": variants}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    for v in variants.values():
        print(v["label"], v["p50_ms"], v["portable_ops"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
