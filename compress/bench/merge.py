"""`bert-compress report`: several results files (this machine's, devices', emulated ARM64) merged into one report."""

from __future__ import annotations

from pathlib import Path

from compress.bench.plots import write_plots
from compress.bench.results import render_merged
from compress.errors import UserError
from compress.fsutil import atomic_dir, write_json
from targets.bench import SCHEMA, SCHEMA_VERSION, BenchError, load_results


def merge_report(paths: list[str], out: Path, force: bool) -> Path:
    """report.md + plots/ + merged.json in OUT from several results files (each checked first)."""
    if not paths:
        raise UserError("no results files given: pass one or more bench.json files")
    docs = []
    for p in paths:
        try:
            docs.append(load_results(p))
        except BenchError as exc:
            raise UserError(str(exc)) from None
    if any(out.resolve() in Path(p).resolve().parents for p in paths):
        raise UserError(f"--out {out} holds the results files being merged: choose another directory")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise UserError(f"{out} exists and is not empty: pass --force to overwrite it, or choose another --out")
    with atomic_dir(out) as tmp:
        plots = write_plots(docs, tmp / "plots")
        text = render_merged(docs, paths, [tmp / "plots" / p.name for p in plots], tmp)
        (tmp / "report.md").write_text(text, encoding="utf-8")
        write_json(tmp / "merged.json", {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "merged": docs,
                                         "sources": paths})
    return out / "report.md"
