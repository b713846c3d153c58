"""Quantization backends × settings on one distilled student: size, latency, test accuracy and drop.

    python benchmarks/quantize_matrix.py --out OUT [--results benchmarks/results] [--tag quantize_matrix]
                                         [--threads 1,2] [--seq-lens 32,128] [--runs 100] [--only NAME,...]

OUT is a finished `bert-compress run` (or one that has run up to `export`). Every row goes through the same
code the pipeline uses (`compress.quantize` backends), without the guard, so every setting is measured. The
baseline is `quantize_dynamic(model.onnx)` with ONNX Runtime's defaults (no pre-processing, portable graph).
ONNX rows are timed in ONNX Runtime through the runner (its session config: `targets.runtime.SESSION_CONFIG`);
the baseline also with ONNX Runtime's default session, which is what "defaults" means for the speed-up column.
torchao rows run in PyTorch eager (compare them with the PyTorch student). Latency is batch 1, full-length
inputs, p50 after warm-up; all rows are timed together in `--rounds` rounds, each visiting the rows in a new
random order, so that a slow spell of the machine does not land on one row. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress import run as api  # noqa: E402
from compress.bench.env import environment  # noqa: E402
from compress.bench.torch_worker import torch_loader  # noqa: E402
from targets.bench import Grid, Job, Timing, bench_many, measure  # noqa: E402
from compress.evaluate import accuracy, predict_logits  # noqa: E402
from compress.export.verify import device_logits  # noqa: E402
from compress.fsutil import write_json, write_text  # noqa: E402
from compress.quantize import Context, parse_candidate  # noqa: E402
from compress.recipe import resolve_recipe  # noqa: E402
from targets.runtime import OnnxModel, load_model  # noqa: E402

GRID = {
    "ort-dynamic fused": {"backend": "ort-dynamic"},
    "ort-dynamic fused per-channel": {"backend": "ort-dynamic", "per_channel": True},
    "ort-dynamic fused reduce-range": {"backend": "ort-dynamic", "reduce_range": True},
    "ort-dynamic fused uint8 weights": {"backend": "ort-dynamic", "weight_type": "uint8"},
    "ort-dynamic plain": {"backend": "ort-dynamic", "graph": "plain"},
    "ort-dynamic fused, 4-bit embeddings": {"backend": "ort-dynamic", "embedding_bits": 4},
    "ort-dynamic fused, embeddings+classifier fp32": {"backend": "ort-dynamic", "per_channel": True, "exclude": "sensitive"},
    "ort-dynamic fused, + FFN outputs fp32": {"backend": "ort-dynamic", "per_channel": True, "exclude": "sensitive+ffn-out"},
    "ort-static U8S8 (x86)": {"backend": "ort-static"},
    "ort-static U8S8 per-channel": {"backend": "ort-static", "per_channel": True},
    "ort-static S8S8 per-channel (ARM)": {"backend": "ort-static", "activation_type": "int8", "per_channel": True},
    "ort-static U8S8 percentile": {"backend": "ort-static", "calibration": "percentile"},
    "ort-static U8S8 entropy": {"backend": "ort-static", "calibration": "entropy"},
    "nncf performance": {"backend": "nncf"},
    "nncf mixed": {"backend": "nncf", "preset": "mixed"},
    "torchao int8-dynamic (PTQ)": {"backend": "torchao", "scheme": "int8-dynamic"},
    "torchao int8-dynamic + int8 embeddings": {"backend": "torchao", "scheme": "int8-dynamic", "embeddings": "int8"},
    "torchao int8-weight": {"backend": "torchao", "scheme": "int8-weight"},
    "torchao int4-weight": {"backend": "torchao", "scheme": "int4-weight"},
    "torchao int8-dynamic QAD 1 epoch": {"backend": "torchao", "scheme": "int8-dynamic", "qad_epochs": 1},
    "litert-dynamic int8": {"backend": "litert-dynamic"},
    "litert-dynamic int4 weights": {"backend": "litert-dynamic", "weight_bits": "int4"},
    "litert weight-only int8": {"backend": "litert-dynamic", "weight_only": True},
    "litert-static full int8": {"backend": "litert-static"},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="a bert-compress OUT with a verified export")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--tag", default="quantize_matrix")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seq-lens", default="32,128")
    ap.add_argument("--runs", type=int, default=100, help="timed calls per row and cell, over all rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--only", default=None, help="row names from the grid, separated by ';' (or ',' when no name has one)")
    args = ap.parse_args()
    out = Path(args.out)
    threads = [int(x) for x in args.threads.split(",")]
    seqs = [int(x) for x in args.seq_lens.split(",")]
    t_start = time.perf_counter()

    run = api.prepare(resolve_recipe(str(out / "recipe.yaml")), out, force=False, whole_run=False)
    tok = run.student_tokenizer()
    dev, test = run.encode("dev", tok), run.encode("test", tok)
    student = run.load_student("quantize_matrix")
    ref_dev, ref_test = predict_logits(student, dev), predict_logits(student, test)
    fp32_dev, fp32_test = accuracy(ref_dev, dev.labels), accuracy(ref_test, test.labels)
    names, vocab = list(dev.features), student.config.vocab_size
    exported = {a.name: a.file(out) for a in run.artifacts("export")}  # the export stage's verified artifacts
    plain, fused, tflite = (exported.get(n) for n in ("student-onnx-fp32", "student-onnx-fp32-ort-opt", "student-tflite-fp32"))

    grid, jobs = Grid(threads, seqs, [1]), []
    timing = Timing(warmup=args.warmup, min_runs=args.runs, min_s=0, rounds=args.rounds)

    def timed(r, runner):  # timed later, all rows interleaved (time_rows)
        run = lambda t, seed: measure(runner, grid, t, vocab, r["name"], input_names=names, fresh_process=False, seed=seed)  # noqa: E731
        jobs.append((r, Job(r["name"], None, run)))

    def time_rows():
        for (r, _), entry in zip(jobs, bench_many([j for _, j in jobs], timing)):
            r["latency"] = [c | {"runtime": r["runtime"]} for c in entry["latency"]]
            print(json.dumps({"name": r["name"], "p50": {f"{e['threads']}t/{e['seq_len']}": e["p50_ms"] for e in r["latency"]}}), flush=True)
        jobs.clear()

    def row(label, path, runtime, dev_logits, test_logits, seconds, settings=None, runner=None):
        r = {"name": label, "runtime": runtime, "settings": settings, "size_bytes": path.stat().st_size if path else None,
             "dev_accuracy": accuracy(dev_logits, dev.labels), "test_accuracy": accuracy(test_logits, test.labels),
             "label_agreement_dev": float((dev_logits.argmax(-1) == ref_dev.argmax(-1)).mean()),
             "max_abs_diff_dev": float(abs(dev_logits - ref_dev).max()), "quantize_seconds": round(seconds, 1)}
        r["test_drop_points"] = round(100 * (fp32_test - r["test_accuracy"]), 2)
        r["dev_drop_points"] = round(100 * (fp32_dev - r["dev_accuracy"]), 2)
        timed(r, runner or (lambda threads, path=path: load_model(path, threads=threads)))
        print(json.dumps(r), flush=True)
        return r

    rows = []
    only = set(args.only.split(";" if ";" in args.only else ",")) if args.only else None
    want = lambda name: only is None or name in only  # noqa: E731
    student_dir = run.layout.student
    if want("pytorch fp32 student"):
        rows.append(row("pytorch fp32 student", None, "pytorch", ref_dev, ref_test, 0, runner=torch_loader(lambda: student)))
    for label, path in (("onnx fp32", plain), ("onnx fp32 fused (ort-opt)", fused), ("tflite fp32", tflite)):
        if want(label) and path.is_file():
            m = load_model(path)
            rows.append(row(label, path, m.runtime, device_logits(m, dev), device_logits(m, test), 0))
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        if want("quantize_dynamic defaults (baseline)"):
            from onnxruntime.quantization import quantize_dynamic

            t0, dst = time.perf_counter(), work / "baseline.onnx"
            quantize_dynamic(str(plain), str(dst))
            m = load_model(dst)
            dev_logits, test_logits, seconds = device_logits(m, dev), device_logits(m, test), time.perf_counter() - t0
            rows.append(row("quantize_dynamic defaults (baseline)", dst, "onnxruntime", dev_logits, test_logits, seconds,
                            {"backend": "onnxruntime.quantization.quantize_dynamic", "session_config": {}},
                            lambda threads, dst=dst: OnnxModel(dst, threads, session_config={})))
            if want("quantize_dynamic defaults, runner session config"):  # how much of the gain is the session setting
                rows.append(row("quantize_dynamic defaults, runner session config", dst, "onnxruntime", dev_logits, test_logits,
                                seconds, {"backend": "onnxruntime.quantization.quantize_dynamic",
                                          "session_config": OnnxModel(dst, 1).session_config}))
        ctx = Context({"onnxruntime": plain, "onnxruntime/fused": fused, "litert": tflite if tflite.is_file() else None},
                      api.calibration(run, tok), student_dir, work, api.qad_trainer(run, tok), recipe=run.recipe)
        for i, (label, raw) in enumerate(GRID.items()):
            if not want(label):
                continue
            backend, settings = parse_candidate(raw)
            dst = work / f"q{i}{backend.artifact_suffix}"
            t0 = time.perf_counter()
            try:
                backend.quantize(settings, ctx, dst)
            except Exception as exc:  # record what a backend cannot do, keep measuring the rest
                rows.append({"name": label, "settings": raw, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
                print(json.dumps(rows[-1]), flush=True)
                continue
            seconds = time.perf_counter() - t0
            if backend.runtime == "pytorch":
                from compress.quantize.torchao_ptq import load

                model = load(dst, settings, student_dir)
                rows.append(row(label, dst, "pytorch", predict_logits(model, dev), predict_logits(model, test), seconds,
                                {"backend": backend.name, **settings.model_dump()}, torch_loader(lambda model=model: model)))
            else:
                m = load_model(dst)
                rows.append(row(label, dst, m.runtime, device_logits(m, dev), device_logits(m, test), seconds,
                                {"backend": backend.name, **settings.model_dump()}))
        time_rows()  # inside the temporary directory: the quantized files are still there
    result = {"command": "python " + " ".join(sys.argv), "environment": environment(), "student": str(student_dir),
              "fp32": {"dev_accuracy": fp32_dev, "test_accuracy": fp32_test, "dev_rows": len(dev), "test_rows": len(test)},
              "threads": threads, "seq_lens": seqs, "timing": {"runs": args.runs, "rounds": args.rounds, "warmup": args.warmup}, "rows": rows, "total_seconds": round(time.perf_counter() - t_start, 1)}
    previous = Path(args.results) / f"{args.tag}.json"
    if only and previous.is_file():  # re-measured rows replace their namesakes; the rest is kept, commands listed
        old = json.loads(previous.read_text())
        fresh = {r["name"] for r in rows}
        result["rows"] = [r for r in old["rows"] if r["name"] not in fresh] + rows
        order = ["pytorch fp32 student", "onnx fp32", "onnx fp32 fused (ort-opt)", "tflite fp32", "quantize_dynamic defaults (baseline)",
                 "quantize_dynamic defaults, runner session config", *GRID]
        result["rows"].sort(key=lambda r: order.index(r["name"]) if r["name"] in order else len(order))
        result["command"] = old["command"] + "\n" + result["command"]
    write_json(Path(args.results) / f"{args.tag}.json", result)
    write_text(Path(args.results) / f"{args.tag}.md", render(result))
    print(render(result))
    return 0


def _p50(r, threads, seq):
    from compress.bench.cells import p50_at

    return p50_at(r.get("latency", []), seq, threads)


def render(result: dict) -> str:
    th, sq = result["threads"], result["seq_lens"]
    fp32 = result["fp32"]
    rows = {r["name"]: r for r in result["rows"]}
    base = rows.get("onnx fp32")
    dyn = rows.get("quantize_dynamic defaults (baseline)")
    cols = [(t, s) for t in th for s in sq]
    lines = [f"# Quantization matrix ({result['environment']['cpu']}, {result['environment']['cores']} cores)", "",
             *[f"`{c}`" for c in result["command"].splitlines()], "",
             f"Student `{result['student']}`: fp32 test accuracy {100 * fp32['test_accuracy']:.2f}% ({fp32['test_rows']} rows), "
             f"dev {100 * fp32['dev_accuracy']:.2f}% ({fp32['dev_rows']} rows). Latency: p50 ms, batch 1, full-length inputs.", "",
             "| artifact | runtime | MB | test acc % | test drop (pts) | dev drop (pts) | label agr. (dev) | "
             + " | ".join(f"p50 {t}t/{s}" for t, s in cols) + f" | vs fp32 ONNX ({th[0]}t/{sq[-1]}) | vs quantize_dynamic defaults |",
             "|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(cols) + "---:|---:|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['name']} | — | — | — | — | — | — | " + " | ".join("—" for _ in cols) + f" | failed: {r['error'][:120]} | |")
            continue
        ref = _p50(r, th[0], sq[-1])
        on_device = r["runtime"] in ("onnxruntime", "litert")
        speed = f"{_p50(base, th[0], sq[-1]) / ref:.2f}×" if base and ref and on_device else "—"
        speed_dyn = f"{_p50(dyn, th[0], sq[-1]) / ref:.2f}×" if dyn and ref and on_device else "—"
        size = f"{r['size_bytes'] / 1e6:.2f}" if r["size_bytes"] else "—"
        lines.append(f"| {r['name']} | {r['runtime']} | {size} | {100 * r['test_accuracy']:.2f} | {r['test_drop_points']} | "
                     f"{r['dev_drop_points']} | {r['label_agreement_dev']:.4f} | " + " | ".join(str(_p50(r, t, s)) for t, s in cols)
                     + f" | {speed} | {speed_dyn} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
