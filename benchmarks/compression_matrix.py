"""Compression matrix: student shape × losses × init × vocabulary / table bits × quantizer, each point distilled from
one fine-tuned teacher, exported, quantized under the guard and benchmarked beside the teacher in one bench run
(seq 128, batch 1, 1 thread: PyTorch eager and ONNX Runtime fp32), so every speed-up is a ratio measured in one run.

    python benchmarks/compression_matrix.py --teacher OUT/teacher --work WORK [--points a,b] [--tag NAME]

The points are named below; `--points` picks some. Each point's recipe is a named recipe (compress/recipes/) plus
overrides, recorded in the results file. The targets of issue 21 are checked per point and written beside it.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress import run as api  # noqa: E402
from compress.bench.env import environment  # noqa: E402
from compress.fsutil import write_json, write_text  # noqa: E402
from compress.recipe import load_recipe_data, resolve_recipe  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from readme_tables import MATRIX_TARGETS, data_matrix_rows, seed_spread  # noqa: E402

KD = {"distilbert_soft": {"weight": 5.0, "temperature": 2.0}, "hard_ce": {"weight": 2.0}}
MINILM = {"minilm_relation": {"weight": 1.0, "relation_heads": 8}}
HIDDEN = {"tinybert_hidden": {"weight": 1.0}}
TINYBERT = {"tinybert_attention": {"weight": 1.0}} | HIDDEN
EPOCHS = 4  # every point trains the same number of epochs (one stage): comparisons are at equal schedules


def student(layers: int, hidden: int, heads: int, ffn: int, init: str, vocabulary: str = "task", **extra) -> dict:
    # every field the default recipe sets is named here, so a point does not change when the default does
    return {"num_layers": layers, "hidden_size": hidden, "num_attention_heads": heads, "intermediate_size": ffn,
            "init": init, "vocabulary": vocabulary, "embedding_size": None, "sharing": None, **extra}


# name -> (student, losses, what the point answers)
POINTS: dict[str, tuple[dict, dict, str]] = {
    "l3-h128-a4-pruned-kd-minilm": (student(3, 128, 4, 512, "pruned"), KD | MINILM, "candidate default"),
    "l3-h128-a4-truncated-kd-minilm": (student(3, 128, 4, 512, "teacher"), KD | MINILM, "init: truncation vs pruning"),
    "l3-h128-a4-pruned-kd": (student(3, 128, 4, 512, "pruned"), KD, "losses: without the relation loss"),
    "l2-h128-a4-pruned-kd-minilm": (student(2, 128, 4, 512, "pruned"), KD | MINILM, "shape: two layers"),
    "l3-h192-a6-pruned-kd-minilm": (student(3, 192, 6, 768, "pruned"), KD | MINILM, "shape: wider"),
    "l3-h192-a12-truncated-kd-tinybert": (student(3, 192, 12, 768, "teacher"), KD | TINYBERT,
                                          "losses: TinyBERT attention (12 heads, the teacher's count)"),
    "l3-h192-a12-truncated-kd-minilm": (student(3, 192, 12, 768, "teacher"), KD | MINILM,
                                        "losses: MiniLM relations at TinyBERT's shape"),
    "l3-h128-a4-pruned-kd-minilm-fullvocab": (student(3, 128, 4, 512, "pruned", "full"), KD | MINILM,
                                              "vocabulary: the full 30,522 pieces"),
    "l3-h192-a6-truncated-kd-minilm": (student(3, 192, 6, 768, "teacher"), KD | MINILM, "init: truncation vs pruning, wider"),
    "l3-h128-a4-pruned-kd-minilm-e10": (student(3, 128, 4, 512, "pruned"), KD | MINILM, "schedule: 10 epochs"),
    "l3-h192-a6-pruned-kd-minilm-e10": (student(3, 192, 6, 768, "pruned"), KD | MINILM, "schedule: 10 epochs, wider"),
    "l3-h192-a6-pruned-kd-minilm-hidden": (student(3, 192, 6, 768, "pruned"), KD | MINILM | HIDDEN,
                                           "losses: with TinyBERT's hidden-state loss (any head count)"),
    "l3-h192-a6-pruned-e64-kd-minilm": (student(3, 192, 6, 768, "pruned", embedding_size=64), KD | MINILM,
                                        "embeddings: factorized E = 64 (SVD of the pruned table)"),
    "l3-h128-a4-pruned-e64-kd-minilm": (student(3, 128, 4, 512, "pruned", embedding_size=64), KD | MINILM,
                                        "embeddings: factorized E = 64, narrower"),
}
EPOCHS_OF = {"l3-h128-a4-pruned-kd-minilm-e10": 10, "l3-h192-a6-pruned-kd-minilm-e10": 10}  # the rest: EPOCHS

# What the student is distilled on (issue 34): a point named "<point>+<data>" is <point> distilled on this data with
# DATA_SCHEDULE instead of EPOCHS: the same number of steps for every data method (a fixed budget, as the default's
# time limit is), so a method wins by what its rows teach, not by more training. These points stop after distillation
# and measure the student itself (PyTorch fp32) on test beside the teacher: the question is what the data teaches;
# what int8 costs on top is measured by the default runs. The transfer rows depend on the seed (augmentation draws),
# so the teacher's outputs are cached per (data, seed) and shared by the shapes, then deleted.
DATA: dict[str, tuple[dict, str]] = {
    "none": ({}, "the labelled rows only"),
    "aug": ({"augment": {"copies": 4}}, "TinyBERT-style augmentation: 4 variants per labelled row (p 0.4, GloVe / teacher "
                                         "embedding neighbours)"),
    "unlabeled": ({"unlabeled": ["auto"], "max_unlabeled": 20000},
                  "unlabeled text: the data's own unlabeled file (plot summaries) and Wikipedia lead extracts, 20,000 "
                  "segments"),
    "both": ({"augment": {"copies": 4}, "unlabeled": ["auto"], "max_unlabeled": 20000}, "augmentation and unlabeled text"),
}
DATA_STEPS = 2000
DATA_SCHEDULE = {"epochs": 100, "min_steps": DATA_STEPS, "max_steps": DATA_STEPS, "eval_every": 500, "patience": None,
                 "max_minutes": None}

CANDIDATES = [{"backend": "ort-dynamic"}, {"backend": "ort-dynamic", "name": "int8-ort-dynamic-emb4", "embedding_bits": 4},
              {"backend": "litert-dynamic"}]
# the factorized points also try 4-bit LiteRT weights (table bits: the last lever on the LiteRT file's size)
INT4_LITERT = {"backend": "litert-dynamic", "name": "litert-int4", "weight_bits": "int4"}
CANDIDATES_OF = {p: CANDIDATES + [INT4_LITERT] for p in POINTS if "-e64-" in p}


def split_point(point: str) -> tuple[str, str | None]:
    """"<point>+<data>" -> (point, data method); a plain point -> (point, None)."""
    base, _, data = point.partition("+")
    if base not in POINTS or (data and data not in DATA):
        raise SystemExit(f"unknown point {point}: a name of POINTS, optionally +{'|+'.join(DATA)}")
    return base, data or None


def overrides(point: str, seed: int, cache: Path) -> dict:
    base, data = split_point(point)
    s, losses, _ = POINTS[base]
    shared_cache = set(losses) <= set(KD | MINILM)  # one cache (logits + the last layer's Q/K/V) serves these
    schedule = {"epochs": EPOCHS_OF.get(base, EPOCHS)} if data is None else dict(DATA_SCHEDULE)
    transfer = {"transfer": {"augment": {"copies": 0}, "unlabeled": [], **copy.deepcopy(DATA[data][0])}} if data else {}
    if data:  # the default's student side: no projections to train (these losses compare logits and relations)
        schedule |= {"projection": "none"}
        cache = cache.with_name(f"{cache.name}-{data}-s{seed}")
    return {
        "seed": seed,
        "student": copy.deepcopy(s),
        "distill": {"lr": 3.0e-4, "batch_size": 32, "losses": copy.deepcopy(losses),
                    "projection": "per_layer", "layer_map": {"strategy": "uniform"}, **schedule, **transfer,
                    **({"teacher_cache": {"mode": "on", "path": str(cache)}} if shared_cache else {})},
        "export": {"tflite": "on"},
        "quantize": {"candidates": CANDIDATES_OF.get(base, CANDIDATES)},
        "bench": {"seq_lens": [128], "threads": [1], "batches": [1], "rounds": 2, "runs": 30, "gemm_peak": False},
    }


def merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def one_point(point: str, seed: int, teacher: str, work: Path) -> dict:
    raw, _ = load_recipe_data("default")
    raw = merged(raw, overrides(point, seed, work / "teacher-cache"))
    raw["distill"]["losses"] = copy.deepcopy(POINTS[split_point(point)[0]][1])  # replaced, not merged into the default's
    raw["name"] = f"matrix-{point}"
    work.mkdir(parents=True, exist_ok=True)
    recipe_file = work / f"{point}-s{seed}.yaml"
    recipe_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    recipe = resolve_recipe(str(recipe_file), teacher=teacher)
    out = work / f"{point}-s{seed}"
    t0 = time.perf_counter()
    # --resume semantics: an interrupted point continues; stages finished with the same settings are kept
    run = api.prepare(recipe, out, force=False, whole_run=True, resume=out.is_dir())
    data = split_point(point)[1]
    for stage in ("finetune", "distill") if data else ("finetune", "distill", "export", "quantize", "bench"):
        api.run_stage(run, stage)
    distill = json.loads((out / "stages" / "distill.json").read_text())
    if data:
        tested = student_on_test(run)
        seconds = {"distill": round(distill["seconds"], 1), "test": tested.pop("seconds")}
        return data_row(point, seed, recipe, distill, tested, seconds, round(time.perf_counter() - t0, 1))
    report = json.loads((out / "report.json").read_text())  # the run's view: teacher, student, artifacts, references
    seconds = {k: round(v, 1) for k, v in report["stage_seconds"].items()}
    return row(point, seed, recipe, distill, report, seconds, round(time.perf_counter() - t0, 1), out)


def student_on_test(run) -> dict:
    """The teacher's and the distilled student's test accuracy (PyTorch fp32), with the paired bootstrap interval of
    the student's share of the teacher's: what the bench stage measures for them, without artifacts and timings."""
    from compress.evaluate import predict_logits
    from compress.metrics import retained_interval

    t0 = time.perf_counter()
    teacher = run.load_teacher("bench")
    test = run.encode("test")
    t_out = predict_logits(teacher, test, description="teacher on test")
    del teacher
    student = run.load_student("bench")
    s_test = run.encode("test", run.student_tokenizer())
    s_out = predict_logits(student, s_test, description="student on test")
    metric = run.task.metric
    interval = retained_interval(metric, (s_out, s_test.labels), (t_out, test.labels))
    return {"teacher": {"accuracy": metric(t_out, test.labels)},
            "student": {"accuracy": metric(s_out, s_test.labels), "retained_interval": list(interval) if interval else None},
            "seconds": round(time.perf_counter() - t0, 1)}


def row(point, seed, recipe, distill, res, seconds, total, out) -> dict:
    from compress.bench.record import BenchResults

    measured = BenchResults.from_dict(res)
    teacher = measured.teacher
    t_eager, t_onnx = teacher.p50(128, 1), measured.onnx_teacher.p50(128, 1)
    models = []
    for entry in [measured.student, *measured.artifacts]:
        ms = entry.p50(128, 1)
        interval = entry.get("retained_interval")
        models.append({"name": entry.name, "runtime": entry.runtime,
                       "precision": entry.precision, "size_bytes": entry.size_bytes,
                       "test_accuracy": entry.quality, "pct_of_teacher": round(100 * entry.retained(teacher), 2),
                       "pct_interval": [round(100 * x, 2) for x in interval] if interval else None,
                       "shipped": entry.name == res["summary"]["best_artifact"],
                       "p50_ms": ms, "x_eager_teacher": round(t_eager / ms, 2) if ms else None,
                       "x_onnx_teacher": round(t_onnx / ms, 2) if ms else None,
                       "x_smaller": round(teacher.size_bytes / entry.size_bytes, 2)})
    s = recipe.student
    base = split_point(point)[0]  # a "+data" point never gets here: data_row
    return {"point": point, "question": POINTS[base][2], "seed": seed,
            "shape": f"{s.num_layers}L/{s.hidden_size}H/{s.num_attention_heads}A/FFN{s.intermediate_size}"
                     + (f"/E{s.embedding_size}" if s.embedding_size else ""),
            "init": s.init, "vocabulary": s.vocabulary, "losses": list(POINTS[base][1]),
            "epochs": recipe.distill.epochs,
            "build": distill.get("build"), "dev_accuracy": distill["dev_quality"],
            "teacher": {"test_accuracy": teacher.quality, "size_bytes": teacher.size_bytes, "p50_ms_eager": t_eager,
                        "p50_ms_onnx_fp32": t_onnx},
            "models": models, "stage_seconds": seconds, "seconds": total,
            "whole_point_seconds": round(sum(seconds.values()), 1), "out": f"WORK/{out.name}"}


def requested(command: str) -> set[tuple[str, int]]:
    """The (point, seed) pairs a recorded command asked for (its --points and --seeds, or their defaults)."""
    words = command.split()
    value = {flag: words[words.index(flag) + 1] for flag in ("--points", "--seeds") if flag in words}
    return {(p, int(seed)) for p in value.get("--points", ",".join(POINTS)).split(",")
            for seed in value.get("--seeds", "42").split(",")}


def not_measured(result: dict) -> list[tuple[str, int]]:
    """Pairs some command asked for that no row measured and no `not_run` entry explains."""
    made = {(r["point"], r["seed"]) for r in result["rows"]}
    explained = {(p, s) for n in result.get("not_run", []) for p in n["points"] for s in n["seeds"]}
    asked = set().union(*(requested(c) for c in result.get("commands", [result["command"]])))
    return sorted(asked - made - explained)


def render(result: dict) -> str:
    env = result["environment"]
    lines = [f"# Compression matrix ({env['cpu']}, int8 ISA {env.get('int8_isa', '?')})", "",
             *[f"`{c}`" for c in result.get("commands", [result["command"]])], "",
             *[f"- Asked for and not run: {', '.join(n['points'])} (seeds {', '.join(map(str, n['seeds']))}): {n['why']}"
               for n in result.get("not_run", [])], *([""] if result.get("not_run") else []),
             f"Teacher: `{result['teacher']}` (fine-tuned all-MiniLM-L6-v2)."]
    full = [r for r in result["rows"] if not r.get("data")]  # points that went through export, quantize and bench
    if full:
        lines += ["", f"Every point: {EPOCHS} epochs (unless its "
                  "name ends in -eN: N) of one distillation stage at lr 3e-4, batch 32; export, quantize (guarded), bench at seq 128, batch 1, 1 thread, "
                  "beside the teacher in PyTorch eager and ONNX Runtime fp32 in the same bench run. Targets (issue 21): "
                  "≥ 20× the eager teacher, ≥ 8× the ONNX fp32 teacher, ≥ 98% of the teacher's test accuracy; the LiteRT "
                  "artifact ≥ 30× smaller than the teacher's fp32 weights.", "",
                  "| point | seed | shape | init | vocab | losses | epochs | model | MB | × smaller | test acc % | % of teacher | p50 ms | "
                  "× eager teacher | × ONNX teacher | meets |",
                  "|---|---:|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in full:
            for m in r["models"]:
                wanted = [k for k in MATRIX_TARGETS if k != "x_smaller" or m["runtime"] == "litert"]  # size: LiteRT only
                ok = [(m[k] or 0) >= MATRIX_TARGETS[k] for k in wanted]
                lines.append(f"| {r['point']} | {r['seed']} | {r['shape']} | {r['init']} | {r['vocabulary']} | {'+'.join(r['losses'])} | {r['epochs']} | "
                             f"{m['name']} | {m['size_bytes'] / 1e6:.2f} | {m['x_smaller']} | {100 * m['test_accuracy']:.2f} | "
                             f"{m['pct_of_teacher']} | {m['p50_ms']} | {m['x_eager_teacher']} | {m['x_onnx_teacher']} | "
                             f"{'all' if all(ok) else 'no'} |")
        lines += ["", "Teacher per point (the same weights; latency from that point's own bench run):", "",
                  "| point | seed | teacher test acc % | teacher eager p50 ms | teacher ONNX fp32 p50 ms | distill s | whole point s |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in full:
            t = r["teacher"]
            lines.append(f"| {r['point']} | {r['seed']} | {100 * t['test_accuracy']:.2f} | {t['p50_ms_eager']} | {t['p50_ms_onnx_fp32']} | "
                         f"{r['stage_seconds']['distill']} | {r['whole_point_seconds']} |")
        lines += seed_spread(full)  # the same table as in benchmarks/README.md
    lines += data_table(result["rows"])
    return "\n".join(lines) + "\n"


def data_row(point, seed, recipe, distill, tested, seconds, total) -> dict:
    base, data = split_point(point)
    s, stage, distilled_on = recipe.student, distill["stages"][-1], distill.get("data") or {}
    t_acc, s_acc = tested["teacher"]["accuracy"], tested["student"]["accuracy"]
    interval = tested["student"].get("retained_interval")
    return {"point": point, "question": POINTS[base][2] + f"; data: {DATA[data][1]}", "seed": seed, "data": data,
            "shape": f"{s.num_layers}L/{s.hidden_size}H/{s.num_attention_heads}A/FFN{s.intermediate_size}"
                     + (f"/E{s.embedding_size}" if s.embedding_size else ""),
            "losses": list(POINTS[base][1]), "transfer": distilled_on.get("transfer"),
            "rows_distilled": ((distilled_on.get("transfer") or {}).get("rows") or {}).get("total", distilled_on.get("labelled")),
            "schedule": {k: stage.get(k) for k in ("steps", "planned_steps", "stopped", "best_step")},
            "dev_accuracy": distill["dev_quality"], "teacher": {"test_accuracy": t_acc},
            "student": {"test_accuracy": s_acc, "pct_of_teacher": round(100 * s_acc / t_acc, 2),
                        "pct_interval": [round(100 * x, 2) for x in interval] if interval else None},
            "stage_seconds": seconds, "seconds": total, "whole_point_seconds": total}


def data_table(rows: list[dict]) -> list[str]:
    table = data_matrix_rows(rows)
    return ["", f"By the data the student was distilled on ({DATA_STEPS} steps of 32 rows each; the distilled student in "
            "PyTorch fp32; % of the teacher's test accuracy per seed, with its 95% bootstrap interval over the test rows):",
            "", *table] if table else []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", required=True, help="a fine-tuned teacher directory (OUT/teacher of a finished run)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--points", default=",".join(POINTS))
    ap.add_argument("--seeds", default="42")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--tag", required=True, help="results file name (a new experiment gets a new tag)")
    args = ap.parse_args()
    out_json = Path(args.results) / f"{args.tag}.json"
    command = " ".join(["python", "benchmarks/compression_matrix.py", *sys.argv[1:]])  # no machine paths
    result = json.loads(out_json.read_text()) if out_json.is_file() else None
    if result is not None and (result["teacher"] != args.teacher or result["environment"]["cpu"] != environment()["cpu"]):
        raise SystemExit(f"{out_json} holds another experiment (another teacher or CPU): pick another --tag")
    # the same experiment continued (more points or seeds): rows are appended, each with the command that made it
    result = result or {"command": command, "environment": environment(), "teacher": args.teacher, "rows": []}
    result.setdefault("commands", [result["command"]])
    if command not in result["commands"]:
        result["commands"].append(command)
    done = {(r["point"], r["seed"]) for r in result["rows"]}
    work = Path(args.work)
    # seeds outermost: the points of one seed share the teacher's outputs on each data method's rows (DATA), and
    # those caches (GBs) are deleted when the seed is done
    for seed in (int(s) for s in args.seeds.split(",")):
        for point in args.points.split(","):
            if (point, seed) in done:
                continue
            # each point in a fresh process: in one process the models and teacher outputs of earlier points are
            # not all freed (23 GB RSS after about 12 points on 24 GB)
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                r = pool.submit(one_point, point, seed, args.teacher, work).result() | {"command": command}
            result["rows"].append(r)
            print(json.dumps({k: r[k] for k in ("point", "seed", "dev_accuracy", "seconds")}), flush=True)
            write_json(out_json, result)  # after every point: an interrupted matrix keeps what it measured
            write_text(out_json.with_suffix(".md"), render(result))
        for cache in work.glob(f"teacher-cache-*-s{seed}"):
            shutil.rmtree(cache, ignore_errors=True)
    print(render(result))
    if missing := not_measured(result):  # an interrupted run: the file must say why before it is committed
        print(f"not measured: {missing}; run them, or say why in the file's not_run "
              '([{"points": [...], "seeds": [...], "why": "..."}])', file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
