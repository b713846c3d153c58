"""Token-classification students by recipe variant: the `ner` recipe as it ships against the same recipe without
entity-aware augmentation, and against the recipe before it (issue 23's: 3 x 128, general distillation on the movie
texts only) with and without the recipe's general-stage text (Wikipedia), each a whole `bert-compress run --task token-classification` per seed, scored as the bench stage
scores every model (test entity F1, per type; each model's share of the teacher fine-tuned in the same run).

    python benchmarks/ner_matrix.py --work WORK --variants recipe,issue23 --seeds 42,43,44 \
        --out benchmarks/results/ner_matrix_<tag>.json

The teacher of a seed is fine-tuned once, by the seed's first variant (the same recipe settings give the same
teacher); the seed's other variants start from it (`--teacher WORK/<first>_s<seed>/teacher`: it has the token head,
so they fine-tune nothing), so their stage seconds leave the fine-tuning out. Only quality is compared here: the bench
grid is cut to seq 128, batch 1, 1 thread, the one cell the speed bar (the shipped model against the eager teacher)
reads. An existing results file is never overwritten.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.bench.env import environment  # noqa: E402
from compress.recipe import deep_merge, load_recipe_data  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from recipe_runs import QUALITY_ONLY_BENCH, add_row, arguments, finish, run_or_read  # noqa: E402
from recipe_runs import summary as summarise  # noqa: E402

BASE = "ner"
# the recipe before issue 37 (issue 23's): 3 x 128, general distillation on the vendored movie texts as they are
ISSUE23 = {"student": {"hidden_size": 128, "num_attention_heads": 4, "intermediate_size": 512},
           "distill": {"epochs": 40, "teacher_cache": {"max_gb": 4.0}, "transfer": {"entities": {"copies": 0}},
                       "general": {"data": "vendored", "segment": "texts", "max_rows": None, "epochs": 3}}}
# issue 23's student with the recipe's general stage (the movie texts, then Wikipedia, in sentence runs)
ISSUE23_WIKI = deep_merge(ISSUE23, {"distill": {"teacher_cache": {"max_gb": 6.0}, "general": {
    "data": ["vendored", "auto"], "segment": "sentences", "max_rows": 24000, "epochs": 2}}})
VARIANTS = {  # name -> a patch on the `ner` recipe (merged into it; None: the recipe as it ships)
    "recipe": None,
    "no_entities": {"distill": {"epochs": 20, "transfer": {"entities": {"copies": 0}}}},  # 20 passes over the tagged rows
    "issue23": ISSUE23,
    "issue23_wiki": ISSUE23_WIKI,
}


def recipe_for(variant: str, seed: int) -> dict:
    raw, _ = load_recipe_data(BASE)
    raw = copy.deepcopy(raw)
    raw["seed"] = seed
    raw["bench"] = dict(raw.get("bench") or {}) | QUALITY_ONLY_BENCH
    patch = VARIANTS[variant]
    return deep_merge(raw, patch) if patch else raw


def row_of(report: dict, variant: str, seed: int) -> dict:
    s = report["summary"]
    shipped = s["best_artifact"]
    f1 = {a["name"]: a["quality"] for a in report["artifacts"]}
    student = report["student"]
    int8 = {n: v for n, v in f1.items() if "int8" in n}
    training = (report.get("training") or {}).get("student") or {}
    data = training.get("data") or {}
    return {"variant": variant, "seed": seed, "teacher_f1": report["teacher"]["quality"], "student_f1": student["quality"],
            "student_of_teacher": student["quality"] / report["teacher"]["quality"],
            "shipped": shipped, "shipped_f1": f1.get(shipped, student["quality"]),
            "shipped_of_teacher": s["vs_teacher"][shipped]["quality_retained"],
            "x_eager_teacher": s["vs_teacher"][shipped]["speedup"],
            "student_x_eager_teacher": s["vs_teacher"]["student (pytorch)"]["speedup"],
            # int8 files against their fp32 student, in F1 points (the bar: within 1)
            "int8_minus_fp32_points": {n: round(100 * (v - student["quality"]), 2) for n, v in int8.items()},
            "types": {t: round(v["f1"], 4) for t, v in student["entities"]["types"].items()},
            "teacher_types": {t: round(v["f1"], 4) for t, v in report["teacher"]["entities"]["types"].items()},
            "support": {t: v["support"] for t, v in report["teacher"]["entities"]["types"].items()},  # gold entities
            "rows": {"general": (data.get("general") or {}).get("rows"),
                     "task": ((data.get("transfer") or {}).get("rows") or {}).get("total", data.get("labelled"))},
            "student_shape": {k: student["arch"][k] for k in ("layers", "hidden_size", "heads", "intermediate_size")},
            "stage_seconds": report.get("stage_seconds")}


def summary(rows: list[dict]) -> dict:
    return summarise(rows, ("student_of_teacher", "shipped_of_teacher", "student_f1", "teacher_f1", "x_eager_teacher"))


def main() -> int:
    parsed = arguments("ner_matrix", __doc__.splitlines()[0], VARIANTS, "recipe,issue23", note=True)
    if parsed is None:
        return 2
    args, variants, work, command = parsed
    out = Path(args.out)
    doc = {"command": command, "environment": environment(), "base_recipe": BASE,
           "variants": {v: VARIANTS[v] for v in variants}, "bench": QUALITY_ONLY_BENCH, "runs": [], "rows": []}
    if args.note:
        doc["note"] = args.note
    for seed in (int(s) for s in args.seeds.split(",")):
        first = work / f"{variants[0]}_s{seed}"
        for variant in variants:
            recipe, run_out = work / f"{variant}_s{seed}.yaml", work / f"{variant}_s{seed}"
            recipe.write_text(yaml.safe_dump(recipe_for(variant, seed), sort_keys=False))
            cmd = ["bert-compress", "run", "--recipe", str(recipe), "--out", str(run_out)]
            if run_out != first:  # the seed's teacher, fine-tuned by its first variant
                cmd += ["--teacher", str(first / "teacher")]
            report = run_or_read(cmd, run_out, "ner_matrix", f"{variant} seed {seed}")
            if report is None:
                return 1
            add_row(doc, out, work, cmd, VARIANTS[variant], row_of(report, variant, seed), summary)
    return finish(doc, out)


if __name__ == "__main__":
    raise SystemExit(main())
