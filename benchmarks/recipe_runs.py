"""What the recipe-variant benchmarks (embedding_losses.py, ner_matrix.py) share: the quality-only bench grid, a whole
`bert-compress run` per variant and seed that is resumed when interrupted and read when finished, and the mean / min
of each variant's rows."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

QUALITY_ONLY_BENCH = {"seq_lens": [128], "threads": [1], "batches": [1], "gemm_peak": False, "rounds": 1,
                      "warmup": 2, "runs": 10, "min_seconds": 0.2}
"""The bench grid cut to the one cell the speed bars read (seq 128, batch 1, 1 thread): these scripts compare quality."""


def run_or_read(cmd: list[str], run_out: Path, script: str, what: str) -> dict | None:
    """The report of `cmd` (a `bert-compress run ... --out run_out`): read when the run finished already, else run
    (resumed where an interrupted one stopped). None when the run failed (said on stderr)."""
    done = (run_out / "report.json").is_file()
    if run_out.is_dir() and not done:  # an interrupted run of the same recipe goes on where it stopped
        cmd = [*cmd, "--resume"]
    print(f"{script}: {' '.join(cmd)}" + (" (done already: its report is read)" if done else ""), file=sys.stderr, flush=True)
    if not done and subprocess.run(cmd).returncode != 0:
        print(f"{script}: the {what} run failed", file=sys.stderr)
        return None
    return json.loads((run_out / "report.json").read_text())


def summary(rows: list[dict], keys: tuple[str, ...]) -> dict:
    """variant -> its seeds and the mean / min of each key over them (a key some row lacks is left out)."""
    out = {}
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        out[variant] = {"seeds": [r["seed"] for r in mine]} | {
            f"{k}_{stat}": round(fn([r[k] for r in mine]), 4)
            for k in keys for stat, fn in (("mean", statistics.mean), ("min", min))
            if all(r.get(k) is not None for r in mine)}
    return out
