"""ALBERT-style students: sharing × embedding size -> parameters, bytes (fp32 / int8), latency, accuracy.

    python benchmarks/albert_matrix.py --work /tmp/albert [--train] [--teacher DIR] [--sharing none,attention,ffn,all]
                                       [--embedding-sizes 64,128,H] [--results benchmarks/results]

Every student is the `albert-tinybert4` recipe (4 layers, hidden 312, FFN 1200, 12 heads) with the sharing
mode and E swapped in. Without --train the students are built from the fine-tuned teacher (SVD embeddings,
copied layers) but not distilled: parameters, bytes and latency do not depend on training. int8 is the
pipeline's `ort-dynamic` backend (ONNX Runtime dynamic quantization, QInt8 weights, portable graph) of the fp32
ONNX export; `--embedding-bits 4` stores the embedding tables as 4-bit blocks instead. `--vocabulary task`
prunes the vocabulary to the training text's word pieces. Latency: ONNX Runtime, batch 1, seq 128, 1 thread,
p50 of 50 runs after 10 warm-up runs.
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from distill_matrix import distill_student, finetuned_teacher, gpu_name  # noqa: E402

from compress.student.albert import save_student  # noqa: E402
from compress.bench.env import environment  # noqa: E402
from targets.bench import Timing, bench_inputs, summarize, time_calls  # noqa: E402
from compress.evaluate import accuracy, predict_logits  # noqa: E402
from compress.export.onnx import export_onnx  # noqa: E402
from compress.export.verify import device_logits  # noqa: E402
from compress.fsutil import dir_size, write_json, write_text  # noqa: E402
from compress.recipe import load_recipe_data, resolve_recipe  # noqa: E402
from compress.student import build_student, count_params  # noqa: E402
from compress import vocab as task_vocab  # noqa: E402
from targets.runtime import OnnxModel  # noqa: E402


def reuse_student(recipe, directory: Path, teacher: dict):
    """A student distilled by an earlier --train run in the same WORK (same recipe), with its record and test split."""
    from compress import run as api

    r = api.prepare(recipe, directory, force=True, whole_run=False)  # rewrites recipe.yaml only
    record = r.stage_record("distill")
    return r.load_student("matrix").to(teacher["device"]), record, r.encode("test", r.student_tokenizer())


def latency_ms(path: Path, names: list[str], vocab: int) -> float:
    model = OnnxModel(path, threads=1)
    feeds = bench_inputs(names, vocab, 1, 128)
    return summarize(time_calls(lambda: model(feeds), Timing(warmup=10, min_runs=50, min_s=0)), 1)["p50_ms"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--teacher", default=None)
    ap.add_argument("--train", action="store_true", help="distil each student (else: sizes and latency only)")
    ap.add_argument("--sharing", default="none,attention,ffn,all")
    ap.add_argument("--embedding-sizes", default="64,128,H")
    ap.add_argument("--configs", default=None, help="explicit SHARING:E list instead of the grid, e.g. all:64,none:128")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--tag", default="albert_matrix")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--stage-epochs", type=int, default=None,
                    help="train every distillation stage for this many epochs (a cheaper, equal budget for the grid)")
    ap.add_argument("--vocabulary", choices=["full", "task"], default="full",
                    help="task: prune the vocabulary to the training text's word pieces (compress.vocab)")
    ap.add_argument("--embedding-bits", type=int, choices=[8, 4], default=8,
                    help="int8 file: the word-embedding table in 8 or 4 bits (ort-dynamic embedding_bits)")
    ap.add_argument("--reuse", action="store_true",
                    help="with --train: load a student already distilled in WORK/NAME instead of training it again")
    ap.add_argument("--skip-latency", action="store_true",
                    help="no latency columns (they do not depend on training; take them from an idle untrained run)")
    args = ap.parse_args()
    from compress.quantize import Context, parse_candidate

    int8_backend, int8_settings = parse_candidate({"backend": "ort-dynamic", "graph": "plain", "embedding_bits": args.embedding_bits})

    work = Path(args.work)
    t0 = time.perf_counter()
    teacher = finetuned_teacher(work, args.teacher, args.quick)
    teacher_bytes = dir_size(Path(teacher["dir"]), ("*.safetensors",))
    test, names = teacher["test"], list(teacher["test"].features)
    rows = []
    grid = ([tuple(c.split(":")) for c in args.configs.split(",")] if args.configs else
            [(sh, e) for sh in args.sharing.split(",") for e in args.embedding_sizes.split(",")])
    for sharing, e in grid:
        if True:
            overrides = {"student": {"sharing": sharing, "embedding_size": None if e == "H" else int(e),
                                     "vocabulary": args.vocabulary}}
            if args.stage_epochs:
                stages = load_recipe_data("albert-tinybert4")[0]["distill"]["stages"]
                overrides["distill"] = {"stages": [{**st, "epochs": args.stage_epochs} for st in stages]}
            recipe = resolve_recipe("albert-tinybert4", teacher=teacher["dir"], quick=args.quick, overrides=overrides)
            name = f"{sharing}-E{e}" + ("-task-vocab" if args.vocabulary == "task" else "")
            student_test = test
            if args.train and args.reuse and (work / name / "stages" / "distill.json").is_file():
                student, rec, student_test = reuse_student(recipe, work / name, teacher)
            elif args.train:
                student, rec, student_test = distill_student(recipe, work / name, teacher)
            else:
                source = teacher["model"].to("cpu")
                if args.vocabulary == "task":  # the same pruning stage_distill does, without training
                    run = teacher["run"]
                    keep = task_vocab.kept_ids(run.tokenizer, task_vocab.used_token_ids(run.tokenizer, run.data.train))
                    source = task_vocab.with_kept_rows(source, keep)
                student, _, rec = build_student(source, recipe.student)
            student = student.to("cpu").eval()
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                tmp = Path(tmp)
                save_student(student, tmp / "student")
                fp32 = export_onnx(student, names, tmp / "fp32.onnx", 18)
                # ONNX Runtime dynamic int8 (the pipeline's ort-dynamic backend, portable graph); shared weights once
                int8 = int8_backend.quantize(int8_settings, Context({"onnxruntime": fp32}, None, tmp / "student", tmp), tmp / "int8.onnx")
                row = {
                    "sharing": sharing, "embedding_size": e, "vocab_size": student.config.vocab_size,
                    "embedding_bits": args.embedding_bits,
                    "params": count_params(student),
                    "safetensors_bytes": dir_size(tmp / "student", ("*.safetensors",)),
                    "onnx_fp32_bytes": fp32.stat().st_size, "onnx_int8_bytes": int8.stat().st_size,
                    "teacher_over_int8": round(teacher_bytes / int8.stat().st_size, 1),
                    "p50_ms_fp32": None if args.skip_latency else latency_ms(fp32, names, student.config.vocab_size),
                    "p50_ms_int8": None if args.skip_latency else latency_ms(int8, names, student.config.vocab_size),
                    "svd_relative_error": (rec.get("build") or rec).get("svd_relative_error"),
                }
                if args.train:
                    row["distill_seconds"] = round(sum(h["seconds"] for st in rec["stages"] for h in st["history"]), 1)
                    acc = accuracy(predict_logits(student, student_test), student_test.labels)
                    acc8 = accuracy(device_logits(OnnxModel(int8), student_test), student_test.labels)
                    row |= {"test_accuracy": acc, "pct_of_teacher": round(100 * acc / teacher["accuracy"], 2),
                            "int8_test_accuracy": acc8, "int8_pct_of_teacher": round(100 * acc8 / teacher["accuracy"], 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {
        "command": "python " + " ".join(sys.argv),
        "environment": environment() | {"gpu": gpu_name()},
        "teacher": {"checkpoint": teacher["recipe"].teacher.checkpoint, "test_accuracy": teacher["accuracy"],
                    "params": count_params(teacher["model"]), "fp32_bytes": teacher_bytes},
        "rows": rows,
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    write_json(Path(args.results) / f"{args.tag}.json", result)
    write_text(Path(args.results) / f"{args.tag}.md", render(result))
    print(render(result))
    return 0


def render(result: dict) -> str:
    t = result["teacher"]
    mb = lambda n: f"{n / 1e6:.2f}"  # noqa: E731
    lines = [f"# ALBERT-style students ({result['environment'].get('gpu') or result['environment']['cpu']})", "",
             f"`{result['command']}`", "",
             f"Teacher: {t['checkpoint']} fine-tuned, {t['params']:,} parameters, {mb(t['fp32_bytes'])} MB fp32, "
             f"test accuracy {100 * t['test_accuracy']:.2f}%.", "",
             "| sharing | E | vocab | emb. bits | params | fp32 MB | ONNX fp32 MB | ONNX int8 MB | teacher fp32 / int8 | p50 ms fp32 | p50 ms int8 | SVD err | test % of teacher (fp32 / int8) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        acc = f"{r['pct_of_teacher']} / {r['int8_pct_of_teacher']}" if "pct_of_teacher" in r else "not trained"
        lines.append(f"| {r['sharing']} | {r['embedding_size']} | {r.get('vocab_size', 30522):,} | {r.get('embedding_bits', 8)} | {r['params']:,} | {mb(r['safetensors_bytes'])} | {mb(r['onnx_fp32_bytes'])} | {mb(r['onnx_int8_bytes'])} | "
                     f"{r['teacher_over_int8']}× | {r['p50_ms_fp32'] or '–'} | {r['p50_ms_int8'] or '–'} | {r['svd_relative_error']} | {acc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
