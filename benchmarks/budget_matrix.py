"""Issue 22's measurements: the cost model's error on held-out shapes, and three budgets against the recipes we ship.

    # the cost model on each profile (this CPU, emulated Cortex-A72, ...): leave one shape out
    python benchmarks/budget_matrix.py model --profile P1 [--profile P2 ...] --tag NAME
    # each budget: `bert-compress run --budget-ms B --device-profile P` (the bench stage measures the chosen student
    # here), and every shipped recipe the profile puts within B distilled from the same teacher (finetune + distill)
    python benchmarks/budget_matrix.py budgets --profile P --teacher T --work WORK --budgets 1.6,2.8,3.6 --tag NAME

Accuracy is compared as the fp32 PyTorch student's test accuracy (what the bench stage reports as the student's),
measured the same way for both. Results: benchmarks/results/budget_<tag>.json (`command`: every invocation, one per line).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.bench.env import environment  # noqa: E402
from compress.budget.latency_model import held_out_error  # noqa: E402
from compress.fsutil import write_json  # noqa: E402
from targets.profile import load_profile  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TARGET_MEDIAN = 0.15  # issue 22: the cost model's median error on held-out shapes


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _save(tag: str, doc: dict, command: str) -> Path:
    path = RESULTS / f"budget_{tag}.json"
    done = [c for c in (doc.get("command") or "").splitlines() if c.strip()]
    doc["command"] = "\n".join(done + ([command] if command not in done else []))  # every invocation, in order
    doc["environment"] = environment()
    write_json(path, doc)
    write_markdown(path)
    return path


def write_markdown(path: Path) -> None:
    """results/budget_<tag>.md: the same tables as benchmarks/README.md#device-budgets."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from readme_tables import render_budget

    rel = path.relative_to(ROOT).as_posix()
    path.with_suffix(".md").write_text(f"# Device budgets: `{path.name}`\n\n" + "\n".join(render_budget([rel])) + "\n",
                                       encoding="utf-8")


def _device(profile: dict) -> str:
    d = profile["device"]
    return (d.get("name") or d.get("cpu") or "?") + (f" [{d['emulated']}]" if d.get("emulated") else "")


def cmd_model(args) -> None:
    doc = _load(RESULTS / f"budget_{args.tag}.json")
    for p in args.profile:
        prof = load_profile(p)
        held = held_out_error(prof)
        entry = {"profile": Path(p).name, "device": prof["device"], "seq_lens": prof["seq_lens"], "threads": prof["threads"],
                 "candidates": len(prof["candidates"]), "profile_command": prof["command"],
                 "held_out": {k: v for k, v in held.items() if k != "cells"}, "cells": held.get("cells", []),
                 "meets_target": held.get("median", 1) <= TARGET_MEDIAN, "target_median": TARGET_MEDIAN}
        doc.setdefault("cost_model", {})[_device(prof)] = entry
        print(f"{_device(prof)}: held-out median {100 * held['median']:.1f}%, p90 {100 * held['p90']:.1f}%, max "
              f"{100 * held['max']:.1f}% over {held['points']} cells ({held['shapes']} shapes)")
    print(_save(args.tag, doc, "python benchmarks/budget_matrix.py " + shlex.join(sys.argv[1:])))


def _bert_compress(*argv: str, log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        proc = subprocess.run([sys.executable, "-m", "compress", *argv], stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"bert-compress {' '.join(argv)} failed (exit {proc.returncode}): see {log}")
    return time.perf_counter() - t0


def _student_test_accuracy(out: Path) -> float:
    from compress.evaluate import predict_logits
    from compress.recipe import resolve_recipe
    from compress.run import load_run

    # as the bench stage scores the student: the task's metric on the test split, through the student's tokenizer
    run = load_run(resolve_recipe(str(out / "recipe.yaml")), out)
    student, tok = run.load_student("budget_matrix"), run.student_tokenizer()
    test = run.encode("test", tok)
    return float(run.task.metric(predict_logits(student, test, description="student on test"), test.labels))


def cmd_budgets(args) -> None:
    doc = _load(RESULTS / f"budget_{args.tag}.json")
    prof = load_profile(args.profile)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "budget_matrix.log"
    recipes_done = doc.setdefault("recipes", {})
    for budget in [float(b) for b in args.budgets.split(",")]:
        key = f"{budget:g}" + (f" ({args.label})" if args.label else "")
        out = work / (f"budget-{budget:g}ms" + (f"-{args.label.replace(' ', '-')}" if args.label else ""))
        if not (out / "report.json").is_file():
            secs = _bert_compress("run", "--teacher", args.teacher, "--out", str(out), "--budget-ms", f"{budget:g}",
                                  "--device-profile", args.profile, "--force", log=log)
        else:
            secs = None
        plan, report = json.loads((out / "budget.json").read_text()), json.loads((out / "report.json").read_text())
        b = report["budget"]
        row = {"budget_ms": budget, "seq_len": plan["seq_len"], "threads": plan["threads"], "chosen": plan["chosen"],
               "run_seconds": secs, "label": args.label, "student_test_accuracy": report["student"]["quality"],
               "teacher_test_accuracy": report["teacher"]["quality"], "shipped": b.get("this_machine"),
               "met_on_profile_device": b.get("met_on_profile_device"), "recipes_within_budget": {}}
        for name in plan["recipes_within_budget"]:
            recipe = name.removeprefix("recipe-")
            rout = work / f"recipe-{recipe}"
            if recipe not in recipes_done:
                t0 = time.perf_counter()
                for stage in ("finetune", "distill"):
                    if not (rout / "stages" / f"{stage}.json").is_file():
                        _bert_compress(stage, "--teacher", args.teacher, "--recipe", recipe, "--out", str(rout), log=log)
                recipes_done[recipe] = {"student_test_accuracy": _student_test_accuracy(rout),
                                        "seconds": round(time.perf_counter() - t0, 1)}
            cand = next(r for r in plan["candidates"] if r["name"] == name)
            row["recipes_within_budget"][recipe] = {"expected_ms": cand["expected_ms"], "measured_ms": cand["measured_ms"],
                                                    **recipes_done[recipe]}
        best_recipe = max((r["student_test_accuracy"] for r in row["recipes_within_budget"].values()), default=None)
        row["at_least_every_recipe_within_budget"] = best_recipe is None or row["student_test_accuracy"] >= best_recipe
        doc.setdefault("budgets", {})[key] = row
        print(f"{budget:g} ms: chose {plan['chosen']['name']} (expected {plan['chosen']['expected_ms']:.3f} ms), measured "
              f"{(b.get('this_machine') or {}).get('measured_ms')} ms here; student {100 * row['student_test_accuracy']:.2f}% "
              f"vs best recipe within budget {best_recipe}")
        _save(args.tag, doc | {"profile": {"file": Path(args.profile).name, "device": prof["device"]},
                               "teacher": args.teacher}, "python benchmarks/budget_matrix.py " + shlex.join(sys.argv[1:]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("--profile", action="append", required=True)
    m.add_argument("--tag", required=True)
    b = sub.add_parser("budgets")
    b.add_argument("--profile", required=True)
    b.add_argument("--teacher", required=True, help="a fine-tuned teacher (OUT/teacher of a finished run)")
    b.add_argument("--work", required=True)
    b.add_argument("--budgets", required=True, help="comma-separated budgets in ms")
    b.add_argument("--tag", required=True)
    b.add_argument("--label", help="a name for these rows beside their budget (e.g. the rule they were chosen by)")
    args = p.parse_args()
    {"model": cmd_model, "budgets": cmd_budgets}[args.cmd](args)


if __name__ == "__main__":
    main()
