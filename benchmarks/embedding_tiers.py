"""Embedding tiers on this CPU: the transformer student (recipe `embedding`) and the static tier (`embedding-static`),
each a whole `bert-compress run`, against the teacher in PyTorch eager and in ONNX Runtime fp32 measured in the same
run, with model2vec's own distillation of the teacher as a peer row (the static run measures it).

    python benchmarks/embedding_tiers.py --work WORK --out benchmarks/results/embedding_tiers_<cpu>.json

Per model (batch 1, seq 128, 1 thread, p50): latency, × eager teacher, × ONNX teacher, size, fidelity, recall@10 /
MRR@10 (symmetric and asymmetric: the model's queries against the teacher's document vectors), probe accuracy, each
as a share of the teacher's, and 128-dimension stored vectors as a share of the model's own full MRR@10; and whether
the faithful-embeddings issue's bars hold: transformer ≥ 10× the eager teacher at ≥ 90% of its MRR@10, ≥ 88%
asymmetric, ≥ 98% probe; teacher width ≥ 97% MRR@10 and asymmetric (no speed bar); static ≥ 100× at ≥ 75% MRR@10
and ≥ 95% probe, above model2vec's own distillation measured in the same run. The pipelines' report.json files are
copied beside the results file. An existing results file is never overwritten.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.bench.env import environment  # noqa: E402
from compress.fsutil import write_json, write_text  # noqa: E402

RECIPES = {"transformer": "embedding", "static": "embedding-static", "wide": "embedding-l3"}
# the faithful-embeddings issue's bars (shares of the teacher; speed-up against the eager teacher in the same run)
TARGETS = {"transformer": {"speedup": 10.0, "mrr": 0.90, "probe": 0.98, "asym_mrr": 0.88},
           "wide": {"speedup": 1.0, "mrr": 0.97, "asym_mrr": 0.97},
           "static": {"speedup": 100.0, "mrr": 0.75, "probe": 0.95}}
PEER = "model2vec-onnx-fp32"  # model2vec's own distillation, which the static tier must beat
SEQ, THREADS = 128, 1


def p50(entry: dict) -> float | None:
    from compress.bench.cells import p50_at

    return p50_at(entry.get("latency", []), SEQ, THREADS)


def rows_of(report: dict, tier: str) -> list[dict]:
    t_ms = p50(report["teacher"])
    onnx = next((r for r in report.get("references", []) if r["name"] == "teacher-onnx-fp32"), None)
    onnx_ms = p50(onnx) if onnx else None
    entries = [("teacher (pytorch eager)", "teacher", report["teacher"]), ("student (pytorch eager)", "student", report["student"])]
    entries += [(a["name"], "artifact", a) for a in report["artifacts"]]
    entries += [(r["name"], "reference", r) for r in report.get("references", [])]
    rows = []
    for name, role, e in entries:
        emb = e.get("embedding") or {}
        rel = emb.get("relative") or {}
        short = (emb.get("shorter") or {}).get("128/float32")
        ms = p50(e)
        rows.append({"tier": tier, "name": name, "role": role, "precision": e.get("precision", "fp32"),
                     "p50_ms": ms, "x_eager_teacher": round(t_ms / ms, 2) if t_ms and ms else None,
                     "x_onnx_teacher": round(onnx_ms / ms, 2) if onnx_ms and ms else None,
                     "size_bytes": e.get("size_bytes"), "dim": emb.get("dim"), "fidelity": emb.get("fidelity"),
                     "recall@10": emb.get("recall@10"), "mrr@10": emb.get("mrr@10"),
                     "asym_recall@10": emb.get("asym_recall@10"), "asym_mrr@10": emb.get("asym_mrr@10"),
                     "probe_accuracy": emb.get("probe_accuracy"), "mrr_of_teacher": rel.get("mrr@10"),
                     "asym_mrr_of_teacher": rel.get("asym_mrr@10"), "probe_of_teacher": rel.get("probe_accuracy"),
                     "short128_of_full": round(short["mrr@10"] / emb["mrr@10"], 4) if short and emb.get("mrr@10") else None})
    return rows


def verdict(rows: list[dict], tier: str) -> dict:
    """The fastest shipped artifact of the tier that meets every quality bar, and whether it meets the speed bar."""
    bars = TARGETS[tier]
    peer = next((r["mrr_of_teacher"] for r in rows if r["name"] == PEER), None)
    ok = [r for r in rows if r["role"] == "artifact" and (r["mrr_of_teacher"] or 0) >= bars["mrr"]
          and ("probe" not in bars or (r["probe_of_teacher"] or 0) >= bars["probe"])
          and ("asym_mrr" not in bars or (r["asym_mrr_of_teacher"] or 0) >= bars["asym_mrr"])
          and (peer is None or (r["mrr_of_teacher"] or 0) > peer)]
    best = min(ok, key=lambda r: r["p50_ms"] or float("inf"), default=None)
    fastest = min((r for r in rows if r["role"] == "artifact"), key=lambda r: r["p50_ms"] or float("inf"), default=None)
    return {"bars": bars, "best_meeting_quality": best and best["name"],
            "speedup": best and best["x_eager_teacher"], "met": bool(best and (best["x_eager_teacher"] or 0) >= bars["speedup"]),
            "fastest": fastest and fastest["name"], "fastest_speedup": fastest and fastest["x_eager_teacher"]}


def pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def markdown(doc: dict) -> str:
    env = doc["environment"]
    lines = ["# Embedding tiers", "", f"Command: `{doc['command']}`", "",
             f"Machine: {env['cpu']}, {env['cores']} cores; " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
             + f". Batch 1, seq {SEQ}, {THREADS} thread, p50; ratios against the teacher measured in the same run.", "",
             "| tier | model | precision | p50 ms | × eager teacher | × ONNX teacher | MB | dim | fidelity % | MRR@10 % | "
             "asym MRR@10 % | probe % | MRR % of teacher | asym % of teacher | probe % of teacher | 128 dims % of full |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in doc["rows"]:
        lines.append(f"| {r['tier']} | {r['name']} | {r['precision']} | {r['p50_ms']} | {r['x_eager_teacher']} | "
                     f"{r['x_onnx_teacher']} | {(r['size_bytes'] or 0) / 1e6:.1f} | {r['dim']} | {pct(r['fidelity'])} | "
                     f"{pct(r['mrr@10'])} | {pct(r['asym_mrr@10'])} | {pct(r['probe_accuracy'])} | {pct(r['mrr_of_teacher'])} | "
                     f"{pct(r['asym_mrr_of_teacher'])} | {pct(r['probe_of_teacher'])} | {pct(r.get('short128_of_full'))} |")
    lines += ["", "| tier | bars | fastest artifact meeting the quality bars | × eager teacher | target met |", "|---|---|---|---:|---|"]
    for tier, v in doc["targets"].items():
        lines.append(f"| {tier} | {v['bars']} | {v['best_meeting_quality'] or 'none'} | {v['speedup']} | {'yes' if v['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="folder for the runs' OUT folders")
    ap.add_argument("--out", required=True, help="results JSON to write (refused if it exists)")
    ap.add_argument("--tiers", default="transformer,static")
    ap.add_argument("--reuse", action="store_true", help="resume runs already in WORK (same settings: nothing is redone)")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        print(f"embedding_tiers: {out} exists: a new measurement goes to a new file", file=sys.stderr)
        return 2
    work = Path(args.work)
    argv = [a.replace(f"{ROOT}/", "") for a in sys.argv]  # repository paths relative to its root
    doc = {"command": "python " + " ".join(argv), "environment": environment(), "runs": {}, "rows": [], "targets": {}}
    for tier in args.tiers.split(","):
        run_out = work / tier
        cmd = ["bert-compress", "run", "--recipe", RECIPES[tier], "--out", str(run_out)] + (["--resume"] if args.reuse and run_out.exists() else [])
        print(f"embedding_tiers: {' '.join(cmd)}", file=sys.stderr)
        if subprocess.run(cmd).returncode != 0:
            print(f"embedding_tiers: the {tier} run failed", file=sys.stderr)
            return 1
        report = json.loads((run_out / "report.json").read_text())
        copy = out.with_name(f"{out.stem}_{tier}_report.json")
        shutil.copy2(run_out / "report.json", copy)
        doc["runs"][tier] = {"command": " ".join(cmd), "recipe": RECIPES[tier], "report": copy.name,
                             "stage_seconds": report.get("stage_seconds")}
        rows = rows_of(report, tier)
        doc["rows"] += rows
        doc["targets"][tier] = verdict(rows, tier)
    write_json(out, doc)
    # the Markdown names the scratch folder WORK and paths relative to the repository (the JSON keeps them as run)
    write_text(out.with_suffix(".md"), markdown(doc).replace(str(work), "WORK").replace(f"{ROOT}/", ""))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
