"""Where the int8 decisions of finished runs were taken, and what they were: every int8 file's dev agreement with the
fp32 student on this machine and on the emulated aarch64 cores, side by side, with the agreement where the student
is sure (its margin beyond the file's own int8 error), how many flips sit where it is unsure, which platform shipped
which file, and what the emulated measurement cost.

    python benchmarks/int8_decisions.py --runs OUT_S42 OUT_S43 OUT_S44 --command "bert-compress run --seed S --out OUT" \
        --tag int8_decisions_issue38_xeon_amx

Each OUT is a finished run (its stages/quantize.json, stages/bundle.json, report.json). Writes
benchmarks/results/<tag>.{json,md}; refuses to overwrite them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.bench.env import environment  # noqa: E402
from compress.fsutil import write_json, write_text  # noqa: E402


def run_rows(out: Path) -> dict:
    quantize = json.loads((out / "stages" / "quantize.json").read_text())
    bundle = json.loads((out / "stages" / "bundle.json").read_text())
    report = json.loads((out / "report.json").read_text())
    files = []
    for a, shipped in [(a, True) for a in quantize["artifacts"]] + [(r, False) for r in quantize["rejected"]]:
        q = a["quantization"]
        for name, d in (q.get("decisions") or {}).items():
            c = d.get("confident") or {}
            files.append({"artifact": a["name"], "backend": q["backend"], "fallback": q["fallback"], "instruction_set": name,
                          "emulated": d.get("emulated"), "core": d.get("core"), "agreement": d.get("agreement"),
                          "drop_points": None if d.get("quality") is None else
                          round(100 * (q["fp32_dev_quality"] - d["quality"]), 3),
                          "passed": d.get("passed"), "error": d.get("error"), "kept": shipped,
                          "rows_emulated": d.get("rows_emulated"), "confident_agreement": c.get("confident_agreement"),
                          "confident_rows": c.get("confident_rows"), "rows": c.get("rows"), "flips": c.get("flips"),
                          "flips_where_unsure": c.get("flips_where_unsure"), "int8_error_p99": c.get("int8_error_p99")})
    platforms = [{"platform": p["platform"], "runs_on": p.get("instruction_sets"), "artifact": p.get("artifact"),
                  "precision": p.get("precision"), "skipped": p.get("skipped"),
                  # the platform's own (re-made) file under the emulated cores, where the bundle stage ran it there
                  "emulated_check": (p.get("check") or {}).get("emulated")} for p in bundle["platforms"]]
    sets = quantize.get("instruction_sets") or {}
    return {"run": out.name, "seed": report["recipe"].get("seed") if isinstance(report.get("recipe"), dict) else None,
            "files": files, "platforms": platforms, "emulated_seconds": sets.get("seconds"),
            "not_emulated": sets.get("not_emulated"), "stage_seconds": report.get("stage_seconds")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, type=Path)
    p.add_argument("--command", required=True, help="the command each run was made with")
    p.add_argument("--tag", required=True)
    args = p.parse_args(argv)
    out = ROOT / "benchmarks" / "results" / f"{args.tag}.json"
    if out.exists() or out.with_suffix(".md").exists():
        print(f"error: {out} exists: choose another --tag (results files are never overwritten)", file=sys.stderr)
        return 2
    doc = {"tag": args.tag, "command": args.command, "environment": environment(),
           "runs": [run_rows(r) for r in args.runs]}
    write_json(out, doc)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from tables_devices import render_int8_decisions

    title = f"# int8 decisions per instruction set ({doc['environment']['cpu']})\n\n"
    write_text(out.with_suffix(".md"), title + "\n".join(render_int8_decisions([f"benchmarks/results/{args.tag}.json"])) + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
