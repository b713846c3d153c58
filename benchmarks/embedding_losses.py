"""Embedding students by recipe variant: the `embedding` recipe as it ships against the same recipe with other losses,
another student init or more text to distil on (and the static tier, recipe `embedding-static`, with model2vec's
trainer, counted weights and more text), each a whole `bert-compress run` per seed (a run folder left by an
interrupted call is resumed, a finished one read), scored as the bench stage scores every model (fidelity, retrieval MRR@10
symmetric and asymmetric, the linear probe, as shares of the teacher measured in the same run).

    python benchmarks/embedding_losses.py --work WORK --variants recipe,batch --seeds 42 \
        --out benchmarks/results/embedding_losses_<tag>.json

Only the quality is compared here: the bench grid is cut to seq 128, batch 1, 1 thread (the latency grid of a shape is
the embedding tiers' question); that one cell still gives each run's fastest artifact against the eager teacher, the
speed bar a wider or deeper variant (`h256`, `l4`) must keep. An existing results file is never overwritten.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.bench.env import environment  # noqa: E402
from compress.bench.record import BenchResults  # noqa: E402
from compress.recipe import deep_merge, load_recipe_data  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from recipe_runs import QUALITY_ONLY_BENCH, add_row, arguments, finish, run_or_read  # noqa: E402
from recipe_runs import summary as summarise  # noqa: E402

BASE = "embedding"
BATCH = {"embedding_batch_kl": {"weight": 1.0}, "embedding_asymmetric": {"weight": 1.0}}
PRUNED = {"student": {"init": "pruned", "num_attention_heads": 6}}  # whole heads of the teacher's size (32)
WIKI = {"distill": {"epochs": 3, "transfer": {"unlabeled": ["auto"], "segment": "both", "max_unlabeled": 30000}}}
# wider (whole teacher heads of 32, FFN 4x) or deeper than the recipe's 3 x 192: the speed headroom above 10x spent
H256 = {"student": {"hidden_size": 256, "num_attention_heads": 8, "intermediate_size": 1024}}
L4 = {"student": {"num_layers": 4}}


def _losses(added: dict) -> dict:
    return {"distill": {"losses": added}}


def _static(fit: str, weights: str) -> dict:
    return {"student": {"kind": "static", "static_fit": fit, "static_weights": weights}}


STATIC = "embedding-static"
VARIANTS = {  # name -> a patch on the `embedding` recipe (merged into it; None: the recipe as it ships)
    "recipe": None,
    "batch": _losses(BATCH),
    "batch_light": _losses({k: {"weight": 0.1, "temperature": 0.1} for k in BATCH}),
    "batch_kl": _losses({"embedding_batch_kl": {"weight": 1.0}}),
    "asymmetric": _losses({"embedding_asymmetric": {"weight": 1.0}}),
    "pruned": PRUNED,
    "wiki": WIKI,
    "pruned_wiki": deep_merge(PRUNED, WIKI),
    "h256": H256,
    "l4": L4,
    # the static tier (recipe embedding-static): the fitted map, model2vec's trainer, counted weights, more text
    # (each names both settings: the recipe's own may change)
    "static_map": _static("map", "zipf"),
    "static_trained": _static("trained", "zipf"),
    "static_trained_counts": _static("trained", "counts"),
    "static_trained_wiki": _static("trained", "zipf") | {"distill": WIKI["distill"]},
    "static_trained_counts_wiki": _static("trained", "counts") | {"distill": WIKI["distill"]},
}


def base_of(variant: str) -> str:
    return STATIC if variant.startswith("static_") else BASE




def recipe_for(variant: str, seed: int) -> dict:
    raw, _ = load_recipe_data(base_of(variant))
    raw = copy.deepcopy(raw)
    raw["seed"] = seed
    raw["bench"] = dict(raw.get("bench") or {}) | QUALITY_ONLY_BENCH
    patch = VARIANTS[variant]
    return deep_merge(raw, patch) if patch else raw


def _shares(model) -> dict:
    rel = (model.get("embedding") or {}).get("relative") or {}
    return {"mrr_of_teacher": rel.get("mrr@10"), "asym_mrr_of_teacher": rel.get("asym_mrr@10"),
            "probe_of_teacher": rel.get("probe_accuracy")}


def _fastest(results) -> dict:
    t_ms = results.teacher.p50(128, 1)
    timed = [(a.p50(128, 1), a.name) for a in results.artifacts if a.p50(128, 1)]
    if not t_ms or not timed:
        return {"fastest": None, "x_eager_teacher": None}
    ms, name = min(timed)
    return {"fastest": name, "x_eager_teacher": round(t_ms / ms, 2)}


def row_of(report: dict, variant: str, seed: int, seconds: dict) -> dict:
    results = BenchResults.from_dict(report)
    emb = results.student.get("embedding") or {}
    short = emb.get("shorter") or {}
    full = emb.get("mrr@10")
    return {"variant": variant, "seed": seed, "fidelity": emb.get("fidelity"), "mrr@10": full,
            "asym_mrr@10": emb.get("asym_mrr@10"), "probe_accuracy": emb.get("probe_accuracy"), **_shares(results.student),
            # shorter stored vectors: each width and storage as a share of the student's own full MRR@10
            "shorter_of_full": {k: round(v["mrr@10"] / full, 4) for k, v in short.items()} if short and full else None,
            "short128_of_full": short["128/float32"]["mrr@10"] / full if "128/float32" in short and full else None,
            # the speed bar: the fastest artifact against the eager teacher at seq 128, batch 1, 1 thread (this bench)
            **_fastest(results),
            # peers measured in the same run (the static run's model2vec-onnx-fp32: model2vec's own distillation)
            "references": {r.name: _shares(r) for r in results.references if r.name != "teacher-onnx-fp32"},
            "stage_seconds": seconds}


def summary(rows: list[dict]) -> dict:
    return summarise(rows, ("mrr_of_teacher", "asym_mrr_of_teacher", "probe_of_teacher", "fidelity", "short128_of_full",
                            "x_eager_teacher"))


def main() -> int:
    parsed = arguments("embedding_losses", __doc__.splitlines()[0], VARIANTS, "recipe,batch")
    if parsed is None:
        return 2
    args, variants, work, command = parsed
    out = Path(args.out)
    doc = {"command": command, "environment": environment(),
           "base_recipe": {v: base_of(v) for v in variants},
           "variants": {v: VARIANTS[v] for v in variants}, "bench": QUALITY_ONLY_BENCH, "runs": [], "rows": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        for variant in variants:
            recipe, run_out = work / f"{variant}_s{seed}.yaml", work / f"{variant}_s{seed}"
            recipe.write_text(yaml.safe_dump(recipe_for(variant, seed), sort_keys=False))
            cmd = ["bert-compress", "run", "--recipe", str(recipe), "--out", str(run_out)]
            report = run_or_read(cmd, run_out, "embedding_losses", f"{variant} seed {seed}")
            if report is None:
                return 1
            add_row(doc, out, work, cmd, VARIANTS[variant], row_of(report, variant, seed, report.get("stage_seconds")), summary)
    return finish(doc, out)


if __name__ == "__main__":
    raise SystemExit(main())
