"""The view of OUT: report.json, report.md, bench.json and plots/, rendered from the stage records alone.

No stage reads the view back, so it can be rendered again at any time (after the bench and bundle stages, and
when `--resume` skips them) and the stages' own outputs are the only files `--resume` has to digest-check.
"""

from __future__ import annotations

from compress import __version__
from compress.fsutil import write_json, write_text
from compress.run.keys import stage_key
from compress.run.table import STAGE_NAMES

REPORT_SCHEMA_VERSION = 2  # 2: a model's task metric is `quality`, an artifact's agreement `agreement` (1: `accuracy`, `label_agreement`)


def report_of(run) -> dict | None:
    """The report (report.json) from the records; None before the bench stage has run."""
    from compress.bench.record import BenchResults
    from compress.bench.report import summary

    bench = run.stage_record("bench")
    if not bench or "results" not in bench:
        return None
    typed = BenchResults.from_dict(bench["results"])  # a record of any version reads with today's names
    results = typed.to_dict()
    export, quantize = run.stage_record("export") or {}, run.stage_record("quantize") or {}
    seconds = {name: round(r["seconds"], 1) for name in STAGE_NAMES
               if (r := run.stage_record(name)) and r.get("seconds") is not None}
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "bert_compress_version": results.get("bert_compress_version", __version__),
        "created": results["created"],
        "recipe": results["recipe"],
        "quick": results["quick"],
        "task": results.get("task", run.task.name),
        "environment": results["environment"],
        "data": results["data"],
        "bench": results["bench"],
        "teacher": results["teacher"],
        "student": results["student"],
        "artifacts": results["artifacts"],
        **({"references": results["references"]} if results.get("references") else {}),
        **({"string_in": results["string_in"]} if results.get("string_in") else {}),
        **({"budget": results["budget"]} if results.get("budget") else {}),
        "rejected_artifacts": export.get("rejected", []) + quantize.get("rejected", []),
        **({"quantization": {"instruction_sets": quantize["instruction_sets"]}} if quantize.get("instruction_sets") else {}),
        "stage_seconds": seconds,
        "training": training_record(run.stage_record("finetune") or {}, run.stage_record("distill") or {}),
    }
    report["summary"] = summary(typed)
    bundle = run.stage_record("bundle")
    if bundle and bundle.get("settings_hash") == stage_key(run, "bundle"):  # not a bundle of an earlier bench run
        where = ({"path": "bundle/pi/", "zip": bundle["zip"], "platforms": bundle["platforms"]} if "platforms" in bundle
                 else {"path": "bundle/", "zip": "bundle.zip"})  # a record from before per-platform bundles
        report["bundle"] = {k: bundle.get(k) for k in ("zip_bytes", "models", "rejected", "checked_on")} | where
    return report


def _curve(fit: dict) -> dict:
    """One training loop's schedule as the report shows it: the dev metric at each evaluation, where it stopped."""
    return {"steps": fit.get("steps"), "planned_steps": fit.get("planned_steps"), "stopped": fit.get("stopped", "schedule"),
            "best_epoch": fit.get("best_epoch"), "best_step": fit.get("best_step"),
            "dev": [{"epoch": h["epoch"], "step": h.get("step"), "dev": round(h.get("dev_quality", h.get("dev_accuracy")), 4)} for h in fit.get("history", [])],
            "seconds": fit.get("seconds") or round(sum(h.get("seconds", 0) for h in fit.get("history", [])), 1)}


def training_record(finetune: dict, distill: dict) -> dict:
    """How the teacher was fine-tuned (its dev curve) and what the student was distilled on (rows per source, what
    the rows beyond the labelled ones cost, each stage's dev curve), from the two stages' records."""
    out: dict = {}
    if finetune.get("finetuned"):
        out["teacher"] = _curve(finetune) | {"seconds": round(finetune.get("train_seconds", 0), 1)}
    if distill:
        out["student"] = {"data": distill.get("data") or {"labelled": None},
                          "stages": [{"stage": st["stage"], **_curve(st)} for st in distill.get("stages", [])],
                          "vocabulary": {k: v for k, v in (distill.get("build") or {}).items()
                                         if k in ("vocabulary", "pieces", "pieces_without_transfer", "teacher_pieces")}}
    return out


def render_view(run) -> dict | None:
    """Write the view; returns the report (None when there is nothing to report yet)."""
    from compress.bench.plots import write_plots
    from compress.bench.report import render_markdown
    from compress.bench.results import bench_document
    from targets.bench import write_results

    report = report_of(run)
    if report is None:
        return None
    layout = run.layout
    doc = bench_document(report)  # the same schema as a device's `python -m targets bench`
    if "bundle" in report:  # device results name the bundled models: mark them as the shipped ones
        shipped = {m["artifact"] for m in report["bundle"]["models"]}
        for m in doc["models"]:
            m["shipped"] = m["name"] in shipped
    write_results(doc, layout.bench_json)
    report["plots"] = [layout.rel(p) for p in write_plots([doc], layout.plots)]
    if "bundle" in report:  # the bundle section after the plots, as a reader meets them
        report["bundle"] = report.pop("bundle")
    write_json(layout.report_json, report)
    write_text(layout.report_md, render_markdown(report))
    return report
