"""How long each test tier takes on this machine: the quick loop (`-m "not slow"`) and the whole suite (the
README's test command, what CI runs), each timed once, one after the other, nothing else running.

    python benchmarks/test_tiers.py --out benchmarks/results/test_tiers_<cpu>.json

Writes the command, the CPU and versions, and per tier the wall time and pytest's counts. An existing file is
never overwritten (a new measurement is a new file).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.bench.env import environment  # noqa: E402
from compress.fsutil import write_json  # noqa: E402

TIERS = {"quick": ["-m", "not slow"], "all": []}
COUNTS = re.compile(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed)")


def run_tier(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return {"command": " ".join(["python", "-m", "pytest", *[f'"{a}"' if " " in a else a for a in args]]),
            "exit_code": proc.returncode, "wall_seconds": round(wall, 1), "summary": last,
            "counts": {kind.rstrip("s") if kind.startswith("error") else kind: int(n) for n, kind in COUNTS.findall(last)}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="results JSON to write (refused if it exists)")
    ap.add_argument("--tiers", default="quick,all", help="comma-separated: quick, all")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        print(f"test_tiers: {out} exists: a new measurement goes to a new file", file=sys.stderr)
        return 2
    import importlib.util

    result = {"command": "python " + " ".join(sys.argv), "environment": environment(),
              "tflite_extra": all(importlib.util.find_spec(m) is not None for m in ("litert_torch", "ai_edge_litert")),
              "tiers": {}}
    for name in args.tiers.split(","):
        print(f"test_tiers: {name} ...", file=sys.stderr)
        result["tiers"][name] = run_tier(TIERS[name])
        print(f"test_tiers: {name}: {result['tiers'][name]['summary']} ({result['tiers'][name]['wall_seconds']} s)", file=sys.stderr)
    write_json(out, result)
    return 0 if all(t["exit_code"] == 0 for t in result["tiers"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
