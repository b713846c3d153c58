"""What the recipe-variant benchmarks (embedding_losses.py, ner_matrix.py) share: the quality-only bench grid, a whole
`bert-compress run` per variant and seed that is resumed when interrupted and read when finished, and the mean / min
of each variant's rows."""

from __future__ import annotations

import argparse
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


def arguments(script: str, description: str, variants: dict, default: str, note: bool = False):
    """The variant benchmarks' command line: (args, variants asked for, WORK, the command as recorded), or None after
    saying on stderr why not (the results file exists: a new measurement goes to a new file; an unknown variant).
    The recorded command names repository paths from its root and the scratch folder WORK; --note is left out of it."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--work", required=True, help="folder for the runs' OUT folders and recipes")
    ap.add_argument("--out", required=True, help="results JSON to write (refused if it exists)")
    ap.add_argument("--variants", default=default, help=f"comma-separated: {', '.join(variants)}")
    ap.add_argument("--seeds", default="42")
    if note:
        ap.add_argument("--note", help="how runs read from WORK came to be there (stored in the results file)")
    args = ap.parse_args()
    if Path(args.out).exists():
        print(f"{script}: {args.out} exists: a new measurement goes to a new file", file=sys.stderr)
        return None
    asked = args.variants.split(",")
    unknown = [v for v in asked if v not in variants]
    if unknown:
        print(f"{script}: unknown variant(s) {', '.join(unknown)}; known: {', '.join(variants)}", file=sys.stderr)
        return None
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[1]
    argv = [a.replace(f"{root}/", "").replace(str(work), "WORK") for a in sys.argv]
    if getattr(args, "note", None):  # stored as the file's note, not in its command
        at = argv.index("--note") if "--note" in argv else None
        argv = argv[:at] + argv[at + 2:] if at is not None else [a for a in argv if not a.startswith("--note=")]
    return args, asked, work, "python " + " ".join(argv)


def add_row(doc: dict, out: Path, work: Path, cmd: list[str], patch, row: dict, summarise) -> None:
    """One finished run into the results document: its command (WORK for the scratch folder), its row, the summary
    so far; written beside `out` as .partial.json so what is done survives an interruption."""
    from compress.fsutil import write_json

    doc["runs"].append({"variant": row["variant"], "seed": row["seed"],
                        "command": " ".join(cmd).replace(str(work), "WORK"), "patch": patch})
    doc["rows"].append(row)
    doc["summary"] = summarise(doc["rows"])
    write_json(out.with_suffix(".partial.json"), doc)


def finish(doc: dict, out: Path) -> int:
    """The results file written (the partial one removed) and its summary printed."""
    from compress.fsutil import write_json

    write_json(out, doc)
    out.with_suffix(".partial.json").unlink(missing_ok=True)
    print(json.dumps(doc["summary"], indent=1))
    return 0
