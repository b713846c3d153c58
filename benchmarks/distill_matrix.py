"""Distillation loss matrix: students × loss sets, test accuracy as % of the fine-tuned teacher.

    python benchmarks/distill_matrix.py --work /tmp/matrix [--teacher DIR] [--students tinybert4,tinybert6]
                                        [--variants distilbert,tinybert,both] [--results benchmarks/results]

Variants (same total epochs for each, so the comparison is at equal training budget):
  distilbert  one stage: distilbert_soft×5 + hard_ce×2 (+ hidden_cosine×1 when widths are equal)
  tinybert    the recipe's two TinyBERT stages: intermediate (embedding + hidden + attention), then prediction
  both        TinyBERT's intermediate stage, then the DistilBERT losses as the prediction stage
  tinybert-general  general distillation on the unlabeled plot summaries (3 epochs) before `tinybert`
  tinybert-long     `tinybert` with twice the intermediate-stage epochs
The teacher is fine-tuned once (default recipe settings) and reused by every student.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress import run as api  # noqa: E402
from compress.bench.env import environment  # noqa: E402
from compress.evaluate import accuracy, predict_logits  # noqa: E402
from compress.fsutil import write_json, write_text  # noqa: E402
from compress.recipe import load_recipe_data, resolve_recipe  # noqa: E402
from compress.student import count_params  # noqa: E402


def variant_overrides(base: dict, variant: str, same_width: bool) -> dict:
    stages = base["distill"]["stages"]
    total_epochs = sum(s.get("epochs", 1) for s in stages)
    distil_losses = {"distilbert_soft": {"weight": 5.0, "temperature": 2.0}, "hard_ce": {"weight": 2.0}}
    if same_width:
        distil_losses["hidden_cosine"] = {"weight": 1.0}
    if variant == "tinybert":
        return {}
    if variant == "distilbert":
        return {"distill": {"stages": [{"name": "task", "epochs": total_epochs, "lr": base["distill"]["lr"], "losses": distil_losses}]}}
    if variant == "tinybert-general":
        return {"distill": {"general": {"data": "default", "epochs": 3}}}
    if variant == "tinybert-long":
        return {"distill": {"stages": [{**stages[0], "epochs": 2 * stages[0].get("epochs", 1)}, stages[1]]}}
    if variant == "both":
        return {"distill": {"stages": [stages[0], {**stages[1], "losses": distil_losses}]}}
    raise SystemExit(f"unknown variant {variant}")


def finetuned_teacher(work: Path, teacher: str | None, quick: bool) -> dict:
    """Fine-tune the teacher once (default recipe settings); everything the matrices compare against."""
    base_recipe = resolve_recipe("default", teacher=teacher, quick=quick)
    run = api.prepare(base_recipe, work / "teacher-run", force=True, whole_run=True)
    ft = api.run_stage(run, "finetune", force=True)
    device = api.pick_device(base_recipe.device)
    model = run.load_teacher("matrix").to(device)
    test = run.encode("test")
    return {"recipe": base_recipe, "run": run, "record": ft, "dir": ft["teacher_path"], "model": model,
            "device": device, "test": test, "accuracy": accuracy(predict_logits(model, test), test.labels)}


def distill_student(recipe, directory: Path, teacher: dict):
    """Distil one student from the fine-tuned teacher.

    Returns it (on the teacher's device), its record, and the test split as the student reads it (its own
    tokenizer: a task vocabulary numbers the pieces differently from the teacher)."""
    r = api.prepare(recipe, directory, force=True, whole_run=True)
    api.run_stage(r, "finetune", force=True)  # the fine-tuned teacher has the task's head: no training
    record = api.run_stage(r, "distill", force=True)
    return r.load_student("matrix").to(teacher["device"]), record, r.encode("test", r.student_tokenizer())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="scratch directory for the runs")
    ap.add_argument("--teacher", default=None, help="teacher checkpoint (default: the package default)")
    ap.add_argument("--students", default="tinybert4,tinybert6")
    ap.add_argument("--variants", default="distilbert,tinybert,both")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--tag", default="distill_matrix")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", default="42", help="comma-separated seeds; each student × variant runs once per seed")
    args = ap.parse_args()
    work = Path(args.work)
    t0 = time.perf_counter()
    teacher = finetuned_teacher(work, args.teacher, args.quick)
    t_cfg = teacher["model"].config
    rows = []
    for student_name in args.students.split(","):
        base, _ = load_recipe_data(student_name)
        same_width = (base["student"].get("hidden_size") or t_cfg.hidden_size) == t_cfg.hidden_size
        for variant, seed in [(v, int(s)) for v in args.variants.split(",") for s in args.seeds.split(",")]:
            recipe = resolve_recipe(student_name, teacher=teacher["dir"], quick=args.quick,
                                    overrides=variant_overrides(base, variant, same_width) | {"seed": seed})
            student, rec, test = distill_student(recipe, work / f"{student_name}-{variant}-{seed}", teacher)
            acc = accuracy(predict_logits(student, test), test.labels)
            rows.append({
                "student": student_name, "variant": variant, "seed": seed,
                "shape": f"{student.config.num_hidden_layers}L/{student.config.hidden_size}H/{student.config.num_attention_heads}A/FFN{student.config.intermediate_size}",
                "params": count_params(student),
                "stages": [{"name": s["stage"], "epochs": len(s["history"]), "losses": list(s["history"][0]["loss_terms"])} for s in rec["stages"]],
                "dev_accuracy": rec["dev_quality"], "test_accuracy": acc,
                "pct_of_teacher": round(100 * acc / teacher["accuracy"], 2),
                "train_seconds": round(sum(h["seconds"] for s in rec["stages"] for h in s["history"]), 1),
            })
            print(json.dumps(rows[-1]), flush=True)
    result = {
        "command": "python " + " ".join(sys.argv),
        "environment": environment() | {"device": str(teacher["device"]), "gpu": gpu_name()},
        "teacher": {"checkpoint": teacher["recipe"].teacher.checkpoint, "test_accuracy": teacher["accuracy"],
                    "params": count_params(teacher["model"]), "finetune_seconds": teacher["record"].get("train_seconds")},
        "rows": rows,
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    out = Path(args.results)
    write_json(out / f"{args.tag}.json", result)
    write_text(out / f"{args.tag}.md", render(result))
    print(render(result))
    return 0


def gpu_name():
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def render(result: dict) -> str:
    t = result["teacher"]
    lines = [f"# Distillation matrix ({result['environment'].get('gpu') or result['environment']['cpu']})", "",
             f"`{result['command']}`", "",
             f"Teacher: {t['checkpoint']} fine-tuned, test accuracy {100 * t['test_accuracy']:.2f}%, {t['params']:,} parameters.", "",
             "| student | losses | seed | params | dev acc % | test acc % | % of teacher | train s |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        stages = " → ".join(f"{s['name']}({s['epochs']}): {'+'.join(s['losses'])}" for s in r["stages"])
        lines.append(f"| {r['student']} {r['shape']} | {r['variant']}: {stages} | {r.get('seed', 42)} | {r['params']:,} | {100 * r['dev_accuracy']:.2f} | "
                     f"{100 * r['test_accuracy']:.2f} | {r['pct_of_teacher']} | {r['train_seconds']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
