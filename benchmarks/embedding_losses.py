"""Embedding students by loss set: the `embedding` recipe as it ships against the same recipe with other losses, each a
whole `bert-compress run` per seed, scored as the bench stage scores every model (fidelity, retrieval MRR@10
symmetric and asymmetric, the linear probe, as shares of the teacher measured in the same run).

    python benchmarks/embedding_losses.py --work WORK --variants recipe,batch --seeds 42 \
        --out benchmarks/results/embedding_losses_<tag>.json

Only the quality is compared here: the bench grid is cut to seq 128, batch 1, 1 thread (the latency of a shape is
the embedding tiers' question, and every variant has the recipe's shape). An existing results file is never
overwritten.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.bench.env import environment  # noqa: E402
from compress.bench.record import BenchResults  # noqa: E402
from compress.fsutil import write_json  # noqa: E402
from compress.recipe import load_recipe_data  # noqa: E402

BASE = "embedding"
BATCH = {"embedding_batch_kl": {"weight": 1.0}, "embedding_asymmetric": {"weight": 1.0}}
VARIANTS = {  # name -> the losses added to the recipe's (None: the recipe as it ships)
    "recipe": None,
    "batch": BATCH,
    "batch_light": {k: {"weight": 0.1, "temperature": 0.1} for k in BATCH},
    "batch_kl": {"embedding_batch_kl": {"weight": 1.0}},
    "asymmetric": {"embedding_asymmetric": {"weight": 1.0}},
}
QUALITY_ONLY_BENCH = {"seq_lens": [128], "threads": [1], "batches": [1], "gemm_peak": False, "rounds": 1,
                      "warmup": 2, "runs": 10, "min_seconds": 0.2}


def recipe_for(variant: str, seed: int) -> dict:
    raw, _ = load_recipe_data(BASE)
    raw = copy.deepcopy(raw)
    raw["seed"] = seed
    raw["bench"] = dict(raw.get("bench") or {}) | QUALITY_ONLY_BENCH
    added = VARIANTS[variant]
    if added:
        raw["distill"]["losses"] = dict(raw["distill"]["losses"]) | added
    return raw


def row_of(report: dict, variant: str, seed: int, seconds: dict) -> dict:
    student = BenchResults.from_dict(report).student
    emb = student.get("embedding") or {}
    rel = emb.get("relative") or {}
    return {"variant": variant, "seed": seed, "fidelity": emb.get("fidelity"), "mrr@10": emb.get("mrr@10"), "asym_mrr@10": emb.get("asym_mrr@10"),
            "probe_accuracy": emb.get("probe_accuracy"), "mrr_of_teacher": rel.get("mrr@10"),
            "asym_mrr_of_teacher": rel.get("asym_mrr@10"), "probe_of_teacher": rel.get("probe_accuracy"),
            "stage_seconds": seconds}


def summary(rows: list[dict]) -> dict:
    out = {}
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        out[variant] = {"seeds": [r["seed"] for r in mine]} | {
            f"{k}_{stat}": round(fn([r[k] for r in mine]), 4)
            for k in ("mrr_of_teacher", "asym_mrr_of_teacher", "probe_of_teacher", "fidelity")
            for stat, fn in (("mean", statistics.mean), ("min", min)) if all(r[k] is not None for r in mine)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="folder for the runs' OUT folders and recipes")
    ap.add_argument("--out", required=True, help="results JSON to write (refused if it exists)")
    ap.add_argument("--variants", default="recipe,batch", help=f"comma-separated: {', '.join(VARIANTS)}")
    ap.add_argument("--seeds", default="42")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        print(f"embedding_losses: {out} exists: a new measurement goes to a new file", file=sys.stderr)
        return 2
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        print(f"embedding_losses: unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    # repository paths relative to its root, the scratch folder named WORK (as the docs name it)
    argv = [a.replace(f"{ROOT}/", "").replace(str(work), "WORK") for a in sys.argv]
    doc = {"command": "python " + " ".join(argv), "environment": environment(), "base_recipe": BASE,
           "variants": {v: VARIANTS[v] for v in variants}, "bench": QUALITY_ONLY_BENCH, "runs": [], "rows": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        for variant in variants:
            recipe, run_out = work / f"{variant}_s{seed}.yaml", work / f"{variant}_s{seed}"
            recipe.write_text(yaml.safe_dump(recipe_for(variant, seed), sort_keys=False))
            cmd = ["bert-compress", "run", "--recipe", str(recipe), "--out", str(run_out)]
            print(f"embedding_losses: {' '.join(cmd)}", file=sys.stderr, flush=True)
            if subprocess.run(cmd).returncode != 0:
                print(f"embedding_losses: the {variant} seed {seed} run failed", file=sys.stderr)
                return 1
            report = json.loads((run_out / "report.json").read_text())
            doc["runs"].append({"variant": variant, "seed": seed, "command": " ".join(cmd).replace(str(work), "WORK"),
                                "losses": recipe_for(variant, seed)["distill"]["losses"]})
            doc["rows"].append(row_of(report, variant, seed, report.get("stage_seconds")))
            doc["summary"] = summary(doc["rows"])
            write_json(out.with_suffix(".partial.json"), doc)  # what is done so far survives an interruption
    write_json(out, doc)
    out.with_suffix(".partial.json").unlink(missing_ok=True)
    print(json.dumps(doc["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
