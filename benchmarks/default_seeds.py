"""One recipe's `bert-compress run` over several seeds, side by side: what the shipped model keeps of the teacher (mean
and min over seeds, each with its bootstrap interval over the test rows), its speed-ups against the teacher measured
in the same run (seq 128, batch 1, 1 thread), what the student was distilled on, and how long each run took.

    python benchmarks/default_seeds.py --runs OUT_S42 OUT_S43 OUT_S44 --command "bert-compress run --out OUT" \
        --tag default_run_issue34_xeon_amx

Each OUT is a finished run; its report.json (and report.md) are committed beside the summary as
`<tag>_s<seed>_report.{json,md}`. A run's wall time comes from `OUT.wall` when the run was timed into it (one number:
seconds), else from the sum of its stages' seconds. Scratch paths are written as OUT / DATA, never this machine's.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.bench.env import environment  # noqa: E402
from compress.fsutil import write_json, write_text  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from readme_tables import default_seeds_rows, env_line  # noqa: E402


def scrub(text: str, out: Path, data: str | None) -> str:
    text = text.replace(str(out), "OUT")
    return text.replace(data, "DATA") if data else text


def _quality_name(report: dict) -> str:
    """The task's test quality in words ('test acc', 'entity F1')."""
    from compress.tasks import get

    return get(report.get("task") or "sequence-classification").quality_column


def one_run(out: Path, data: str | None) -> dict:
    report = json.loads(scrub((out / "report.json").read_text(), out, data))
    seed = yaml.safe_load((out / "recipe.yaml").read_text())["seed"]  # the resolved recipe the run saved
    s = report["summary"]
    shipped = s["best_artifact"]
    vs = s["vs_teacher"][shipped]
    student = s["vs_teacher"]["student (pytorch)"]
    wall_file = out.with_name(out.name + ".wall")
    wall = float(wall_file.read_text()) if wall_file.is_file() else None
    training = report.get("training") or {}
    stud = training.get("student") or {}
    rows = ((stud.get("data") or {}).get("transfer") or {}).get("rows") or {"total": (stud.get("data") or {}).get("labelled")}
    return {
        "seed": seed, "report": report,
        "row": {
            "seed": seed, "recipe": report["recipe"], "quality_name": _quality_name(report),
            "teacher_test_accuracy": report["teacher"]["quality"],
            "teacher_dev_curve": [d["dev"] for d in (training.get("teacher") or {}).get("dev", [])],
            "teacher_steps": (training.get("teacher") or {}).get("steps"),
            "rows_distilled": rows,
            "distill_steps": [st.get("steps") for st in stud.get("stages", [])],
            "distill_stopped": [st.get("stopped") for st in stud.get("stages", [])],
            "student_pct_of_teacher": round(100 * student["quality_retained"], 2),
            "student_pct_interval": [round(100 * x, 2) for x in student["retained_interval"]] if student.get("retained_interval") else None,
            "shipped": shipped,
            "shipped_accuracy": next(a["quality"] for a in report["artifacts"] if a["name"] == shipped),
            "shipped_pct_of_teacher": round(100 * vs["quality_retained"], 2),
            "shipped_pct_interval": [round(100 * x, 2) for x in vs["retained_interval"]] if vs.get("retained_interval") else None,
            "x_eager_teacher": vs["speedup"], "x_onnx_teacher": vs.get("speedup_vs_onnx_teacher"),
            "x_smaller": vs.get("size_ratio"), "p50_ms": vs["p50_ms"], "seq_len": s["seq_len"], "threads": s["threads"],
            "stage_seconds": report["stage_seconds"],
            "wall_seconds": wall if wall is not None else round(sum(report["stage_seconds"].values()), 1),
            "wall_from": "time of the whole command" if wall is not None else "sum of the stages' seconds",
        },
    }


def render(result: dict) -> str:
    env = result["environment"]
    return "\n".join([f"# {result['title']} ({env['cpu']}, int8 ISA {env.get('int8_isa', '?')})", "",
                      f"`{result['command']}` with seeds {', '.join(str(r['seed']) for r in result['rows'])} (the recipe's "
                      "`seed`)", "", *default_seeds_rows(result), "", env_line(env, [result["summary_command"]])]) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, help="finished OUT directories, one per seed")
    ap.add_argument("--command", required=True, help="the command each run was (OUT for its directory)")
    ap.add_argument("--data", help="the --data path of the runs, written as DATA")
    ap.add_argument("--title", default="Default run over seeds")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--tag", required=True, help="results file name (a new experiment gets a new tag)")
    args = ap.parse_args()
    results = Path(args.results)
    out_json = results / f"{args.tag}.json"
    if out_json.exists():
        raise SystemExit(f"{out_json} exists: a new experiment gets a new --tag")
    runs = [one_run(Path(o), args.data) for o in args.runs]
    for run, o in zip(runs, args.runs):
        name = f"{args.tag}_s{run['seed']}_report"
        write_json(results / f"{name}.json", run["report"])
        write_text(results / f"{name}.md", scrub((Path(o) / "report.md").read_text(), Path(o), args.data))
    cmd = re.sub(r"\s+", " ", args.command)
    result = {"title": args.title, "command": cmd, "environment": environment(), "rows": [r["row"] for r in runs],
              "reports": [f"benchmarks/results/{args.tag}_s{r['seed']}_report.json" for r in runs]}
    result["summary_command"] = f"python benchmarks/default_seeds.py --runs {' '.join('OUT_S' + str(r['seed']) for r in runs)} " \
                                f"--command '{cmd}' --tag {args.tag}" + (" --data DATA" if args.data else "")
    write_json(out_json, result)
    write_text(out_json.with_suffix(".md"), render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
