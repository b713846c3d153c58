"""Distillation throughput: training samples/s for 1 vs 2 processes, with and without the teacher-output cache.

    python benchmarks/distill_throughput.py --work /tmp/throughput --teacher /path/to/finetuned-teacher \
        [--recipes default,tinybert4] [--rows 1024] [--rounds 2] [--results benchmarks/results]

Each cell is a real `python -m compress distill` (`--nproc 2` for two processes: torchrun, gloo) on the first
--rows training rows, one epoch per stage, in a fresh OUT, so a cached run pays for building its cache. The
cells run in interleaved rounds (every cell once, then again), because this VM's speed drifts between runs.
Threads: 1 process uses every core (2 here); 2 processes get 1 thread each (what torchrun sets).

Reported per cell (median over rounds): training samples/s (optimizer steps only, from the stage record), the
cache's build time and size, and the distill stage's seconds. --teacher should already classify the task (a
fine-tuned teacher directory): the teacher's quality does not change its speed, and no fine-tuning is redone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.bench.env import environment  # noqa: E402
from compress.fsutil import write_json, write_text  # noqa: E402
from compress.recipe import load_recipe_data  # noqa: E402


def recipe_file(work: Path, name: str, teacher: str | None, rows: int, cache: str) -> Path:
    raw, _ = load_recipe_data(name)
    raw.setdefault("data", {})["max_train"] = rows
    if teacher:
        raw.setdefault("teacher", {})["checkpoint"] = teacher
    distill = raw.setdefault("distill", {})
    distill["epochs"] = 1
    if distill.get("stages"):
        distill["stages"] = [{**st, "epochs": 1} for st in distill["stages"]]
    distill["teacher_cache"] = {"mode": cache}
    raw["export"] = {"tflite": "off"}
    path = work / f"{name}-{cache}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def distill_cell(work: Path, base: Path, recipe: Path, nproc: int, tag: str) -> dict:
    out = work / tag
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(base, out)
    env = {**os.environ, "BERT_COMPRESS_PROGRESS": "0", "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // nproc))}
    cmd = [sys.executable, "-m", "compress", "distill", "--out", str(out), "--recipe", str(recipe), "--force"]
    cmd += ["--nproc", str(nproc)] if nproc > 1 else []
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{tag} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    record = json.loads((out / "stages" / "distill.json").read_text())
    stages = {h["stage"]: h["history"][0] for h in record["stages"]}
    samples = sum(len_ for len_ in (h["samples_per_second"] * h["train_seconds"] for h in stages.values()))
    train_seconds = sum(h["train_seconds"] for h in stages.values())
    cache = {k: v for k, v in record["teacher_cache"].items() if isinstance(v, dict)}
    result = {
        "samples_per_second": samples / train_seconds,
        "per_stage_samples_per_second": {k: h["samples_per_second"] for k, h in stages.items()},
        "train_seconds": train_seconds,
        "cache_build_seconds": sum(c.get("build_seconds", 0) for c in cache.values()),
        "cache_bytes": sum(c.get("bytes", 0) for c in cache.values()),
        "cache_holds": {k: c.get("holds") for k, c in cache.items()},
        "stage_seconds": record["seconds"],
        "process_wall_seconds": wall,
        "dev_accuracy": record["dev_quality"],
        "processes": record["processes"],
    }
    shutil.rmtree(out)
    return result


def full_train_cache_bytes(recipe_name: str, teacher: str | None) -> dict:
    """The cache's size for the whole train split, from its row lengths (the formula tests/test_scale.py checks
    against the written files)."""
    from compress import run as api
    from compress.distill.losses import CombinedLoss
    from compress.distill.mapping import build_layer_map
    from compress.distill.plan import stage_terms
    from compress.distill.teacher_cache import estimate_bytes, plan_for
    from compress.recipe import resolve_recipe

    recipe = resolve_recipe(recipe_name, teacher=teacher)
    run = api.load_run(recipe, Path("/nonexistent"), command="distill")  # the inputs only: nothing is written
    cfg = run.source.config
    layer_map = build_layer_map(recipe.student.num_layers, cfg.num_hidden_layers, recipe.distill.layer_map)
    plan = plan_for([CombinedLoss(t) for _, _, t in stage_terms(recipe)], layer_map, cfg.num_hidden_layers)
    train = run.encode("train")
    return {"rows": len(train), "holds": str(plan),
            "bytes": {dt: estimate_bytes(train, plan, cfg.hidden_size, cfg.num_attention_heads, dt) for dt in ("float16", "float32")}}


def markdown(doc: dict) -> str:
    lines = [
        "# Distillation throughput: processes × teacher-output cache",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"Machine: {doc['environment'].get('cpu', '?')}, {doc['environment'].get('cores', '?')} cores; torch "
        f"{doc['torch']}. {doc['rows']} training rows, one epoch per stage, fresh OUT per cell "
        f"(a cached cell pays for its cache build). Median of {doc['rounds']} interleaved rounds; each round's value in brackets.",
        "",
        "| recipe | processes | cache | train samples/s | vs 1 process, no cache | cache build s | cache MB | distill stage s | dev acc |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for recipe, cells in doc["results"].items():
        base = cells["1-off"]["median"]["samples_per_second"]
        for key, cell in cells.items():
            m = cell["median"]
            rounds = ", ".join(f"{r['samples_per_second']:.0f}" for r in cell["rounds"])
            nproc, cache = key.split("-")
            lines.append(
                f"| {recipe} | {nproc} | {cache} | **{m['samples_per_second']:.0f}** ({rounds}) | "
                f"{m['samples_per_second'] / base:.2f}× | {m['cache_build_seconds']:.1f} | {m['cache_bytes'] / 1e6:.1f} | "
                f"{m['stage_seconds']:.0f} | {m['dev_accuracy']:.3f} |")
    lines += ["", "Cache size for the whole train split (computed from its row lengths):", ""]
    for recipe, full in doc["full_train_cache"].items():
        lines.append(f"- {recipe}: {full['rows']} rows, holds {full['holds']}: "
                     f"{full['bytes']['float16'] / 1e6:.0f} MB as float16 ({full['bytes']['float32'] / 1e6:.0f} MB as float32)")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--teacher", help="a teacher that already classifies the task (default: the default teacher, "
                                      "fine-tuned once on the subset)")
    ap.add_argument("--recipes", default="default,tinybert4")
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--processes", default="1,2")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--name", default="distill_throughput")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    recipes = args.recipes.split(",")
    nprocs = [int(n) for n in args.processes.split(",")]
    bases, files = {}, {}
    for name in recipes:
        base = work / f"base-{name}"
        if not (base / "stages" / "finetune.json").is_file():
            shutil.rmtree(base, ignore_errors=True)
            r = recipe_file(work, name, args.teacher, args.rows, "off")
            subprocess.run([sys.executable, "-m", "compress", "finetune", "--recipe", str(r), "--out", str(base)], check=True)
        bases[name] = base
        files[name] = {c: recipe_file(work, name, args.teacher, args.rows, c) for c in ("off", "on")}
    results = {name: {f"{n}-{c}": {"rounds": []} for n in nprocs for c in ("off", "on")} for name in recipes}
    for r in range(args.rounds):
        for name in recipes:
            for key, cell in results[name].items():
                nproc, cache = key.split("-")
                res = distill_cell(work, bases[name], files[name][cache], int(nproc), f"{name}-{key}-r{r}")
                cell["rounds"].append(res)
                print(f"round {r + 1}: {name} {key}: {res['samples_per_second']:.0f} samples/s "
                      f"(cache build {res['cache_build_seconds']:.1f} s, {res['cache_bytes'] / 1e6:.1f} MB)", flush=True)
    for cells in results.values():
        for cell in cells.values():
            cell["median"] = {k: statistics.median(r[k] for r in cell["rounds"])
                              for k in ("samples_per_second", "cache_build_seconds", "cache_bytes", "stage_seconds",
                                        "process_wall_seconds", "dev_accuracy", "train_seconds")}
    doc = {"command": "python " + " ".join([Path(sys.argv[0]).as_posix().split(str(ROOT) + "/")[-1], *sys.argv[1:]]),
           "environment": environment(), "torch": __import__("torch").__version__, "rows": args.rows, "rounds": args.rounds, "results": results,
           "full_train_cache": {name: full_train_cache_bytes(name, args.teacher) for name in recipes}}
    out = Path(args.results)
    write_json(out / f"{args.name}.json", doc)
    write_text(out / f"{args.name}.md", markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
