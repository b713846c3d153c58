"""Benchmark results documents (schema bert-compress-bench): build one from a pipeline report, render
Markdown for one or several devices, compare repeated runs, and `bert-compress report` (merge files).

A document is one device run: `device` (environment, a name, emulated or not), `grid`, `timing`,
`gemm_peak`, and `models`, each with role (teacher / student / artifact), accuracy, size, load time, peak RSS
and one latency cell per threads × seq_len × batch.
"""

from __future__ import annotations

import json
from pathlib import Path

from compress.bench.cells import cell
from compress.bench.fmt import mb as _mb, num as _num
from compress.bench.record import BenchResults, Measured, reference_cell

STABLE_WITHIN = 0.10  # the target: percentiles within ±10% between two runs on an idle machine


# ---- lookups --------------------------------------------------------------------------------------------
def device_label(doc: dict) -> str:
    d = doc["device"]
    if d.get("name"):
        return d["name"]
    label = f"{d.get('board') or d['cpu']} ({d['machine']})"
    return label + (f" [{d['emulated']}]" if d.get("emulated") else "")


def quality(doc: dict, model: dict) -> float | None:
    """What a model is judged on in the tables and the Pareto plot: its task's ranked quality (the task metric on
    test; for an embedding model, retrieval MRR@10)."""
    from compress.tasks import task_of

    return task_of(doc).ranked_quality(Measured.from_dict(model, model.get("name")))


def quality_label(doc: dict) -> str:
    from compress.tasks import task_of

    return task_of(doc).quality_axis


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(latency, accuracy) points that no other point beats on both (lower latency, higher accuracy)."""
    return [p for p in points if not any(q != p and q[0] <= p[0] and q[1] >= p[1] for q in points)]


def peak_fraction(doc: dict, model: dict, c: dict) -> float | None:
    gemm = (doc.get("gemm_peak") or {}).get("gflop_s") or {}
    peak = (gemm.get(model.get("compute", "fp32")) or {}).get(str(c["threads"]))
    return c["achieved_gflop_s"] / peak if peak and c.get("achieved_gflop_s") else None


# ---- a document from the pipeline's report.json ---------------------------------------------------------
def _model_entry(m: Measured, role: str, fmt: str | None = None) -> dict:
    keep = ("arch", "load_s", "load_s_all", "rss_before_load_bytes", "peak_rss_bytes", "peak_rss_scope", "interpreter",
            "buckets", "embedding")
    return {"name": m.name, "role": role, "format": fmt or m.format, "precision": m.precision, "compute": m.compute,
            "runtime": m.runtime, "size_bytes": m.size_bytes, "quality": m.quality, "latency": m.latency,
            **{k: m.extras[k] for k in keep if k in m.extras}}


def bench_document(report: dict, results: BenchResults | None = None) -> dict:
    """The pipeline's measurements as a device results document (the schema `python -m targets bench` writes);
    results: the report's typed record when the caller has it already."""
    from targets.bench import results_document

    results = results or BenchResults.from_dict(report)
    models = [_model_entry(results.teacher, "teacher", "pytorch"), _model_entry(results.student, "student", "pytorch")]
    models += [_model_entry(a, "artifact") for a in results.artifacts]
    models += [_model_entry(r, "reference") for r in results.references]
    b = report["bench"]
    from targets.bench import Grid, Timing

    device = report["environment"] | {"name": None, "emulated": None}
    doc = results_document(device, models, Grid(**b["grid"]), Timing(**b["timing"]), b["command"], b["gemm_peak"],
                           {"recipe": report["recipe"], "quick": report["quick"],
                            **({"task": report["task"]} if report.get("task") not in (None, "sequence-classification") else {}),
                            **({"budget": report["budget"]} if report.get("budget") else {})})
    return doc | {"created": report.get("created", doc["created"])}  # when it was measured, not when rendered


# ---- Markdown -------------------------------------------------------------------------------------------
def headline(docs: list[dict]) -> list[str]:
    """The shipped artifact against the teacher, measured in the same run (the run that has a teacher)."""
    for doc in docs:
        teacher = next((m for m in doc["models"] if m["role"] == "teacher"), None)
        arts = [m for m in doc["models"] if m["role"] == "artifact"]
        if not teacher or not arts:
            continue
        seq, threads = reference_cell(doc)
        shipped = [m for m in arts if m.get("shipped")] or arts
        timed = [(cell(m, seq, threads, 1)["p50_ms"], m) for m in shipped if cell(m, seq, threads, 1)]
        if not timed or not cell(teacher, seq, threads, 1):
            continue
        ms, best = min(timed, key=lambda t: t[0])
        t_ms = cell(teacher, seq, threads, 1)["p50_ms"]
        which = "in the bundle" if best.get("shipped") else "fastest verified"
        kept = Measured.from_dict(best).retained(Measured.from_dict(teacher))
        acc = f"**{100 * kept:.2f}%** of the teacher's test accuracy" if kept is not None else "accuracy not measured"
        return ["## Headline", "",
                "| device | shipped artifact | runtime | p50 ms | teacher p50 ms | speed-up | size ratio | accuracy retained |",
                "|---|---|---|---:|---:|---:|---:|---:|",
                f"| {device_label(doc)} | `{best['name']}` ({which}) | {best['runtime']} | {ms} | {t_ms} | "
                f"**{t_ms / ms:.2f}×** | **{teacher['size_bytes'] / best['size_bytes']:.2f}×** smaller | {acc} |", "",
                f"Teacher: PyTorch eager fp32. Batch 1, seq {seq}, {threads} thread(s), full-length inputs.", ""]
    return ["## Headline", "", "No results file has both the teacher and an artifact: the headline needs the "
            "`bert-compress bench` results (OUT/bench.json) among the inputs.", ""]


def devices_table(docs: list[dict]) -> list[str]:
    lines = ["## Devices (one row each)", "",
             "| device | CPU | arch | cores | SIMD | GEMM peak fp32 / int8, 1 thread (GFLOP/s) | models | fastest at seq 128, batch 1, 1 thread | p50 ms | all threads p50 ms | batch 8 throughput /s | load s | peak RSS MB |",
             "|---|---|---|---:|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for doc in docs:
        d, (seq, threads) = doc["device"], reference_cell(doc)
        most = max(doc["grid"]["threads"])
        gemm = (doc.get("gemm_peak") or {}).get("gflop_s") or {}
        peak = " / ".join(_num((gemm.get(p) or {}).get("1")) for p in ("fp32", "int8")) if gemm else "—"
        arts = [m for m in doc["models"] if m["role"] != "teacher" and cell(m, seq, threads, 1)]
        best = min(arts, key=lambda m: cell(m, seq, threads, 1)["p50_ms"], default=None)
        emulated = f" **EMULATED ({d['emulated']}): relative only**" if d.get("emulated") else ""
        if best is None:
            lines.append(f"| {device_label(doc)}{emulated} | {d['cpu']} | {d['machine']} | {d['cores']} | {' '.join(d.get('simd', []))} | {peak} | {len(doc['models'])} | — | — | — | — | — | — |")
            continue
        cpu = f"{d['cpu']} ({d['board']})" if d.get("board") else d["cpu"]
        c_all = cell(best, seq, most, 1)
        c_b8 = cell(best, seq, most, 8)
        lines.append(
            f"| {device_label(doc)}{emulated} | {cpu} | {d['machine']} | {d['cores']} | "
            f"{' '.join(d.get('simd', [])) or '—'} | {peak} | {len(doc['models'])} | `{best['name']}` ({best['runtime']}) | "
            f"{cell(best, seq, threads, 1)['p50_ms']} | {_num(c_all and c_all['p50_ms'])} ({most}t) | "
            f"{_num(c_b8 and c_b8['throughput_per_s'])} | {_num(best.get('load_s'), '{:.3f}')} | {_mb(best.get('peak_rss_bytes'))} |")
    return lines + [""]


def models_table(doc: dict) -> list[str]:
    seq, threads = reference_cell(doc)
    front = pareto_front([(cell(m, seq, threads, 1)["p50_ms"], quality(doc, m)) for m in doc["models"]
                          if quality(doc, m) is not None and cell(m, seq, threads, 1)])
    lines = [f"| model | role | runtime | precision | MB | {quality_label(doc).replace(' (%)', ' %')} | load s | peak RSS MB | p50 / p90 / p99 ms (seq {seq}, b1, {threads}t) | "
             f"GFLOP/s achieved | % of GEMM peak | Pareto |",
             "|---|---|---|---|---:|---:|---:|---:|---|---:|---:|:---:|"]
    for m in doc["models"]:
        c = cell(m, seq, threads, 1)
        frac = peak_fraction(doc, m, c) if c else None
        on_front = c and quality(doc, m) is not None and (c["p50_ms"], quality(doc, m)) in front
        lines.append(
            f"| {m['name']}{' (shipped)' if m.get('shipped') else ''} | {m['role']} | {m['runtime']} | {m.get('precision', '—')} | "
            f"{_mb(m.get('size_bytes'))} | {_num(quality(doc, m) and round(100 * quality(doc, m), 2))} | "
            f"{_num(m.get('load_s'), '{:.3f}')} | {_mb(m.get('peak_rss_bytes'))} | "
            + (f"{c['p50_ms']} / {c['p90_ms']} / {c['p99_ms']} | {_num(c.get('achieved_gflop_s'))} | "
               f"{_num(frac and round(100 * frac, 1))} ({m.get('compute', 'fp32')}) | {'✓' if on_front else ''} |" if c else "— | — | — | |"))
    return lines + [""]


def matrix_table(doc: dict) -> list[str]:
    seqs = sorted(doc["grid"]["seq_lens"])
    lines = ["| model | threads | batch | " + " | ".join(f"seq {s}: p50 (p99) ms" for s in seqs) + " | throughput /s at seq "
             + str(max(seqs)) + " |", "|---|---:|---:|" + "---:|" * (len(seqs) + 1)]
    for m in doc["models"]:
        for threads in doc["grid"]["threads"]:
            for batch in doc["grid"]["batches"]:
                cells = [cell(m, s, threads, batch) for s in seqs]
                if not any(cells):
                    continue
                last = cells[-1]
                lines.append(f"| {m['name']} | {threads} | {batch} | "
                             + " | ".join(f"{c['p50_ms']} ({c['p99_ms']})" if c else "—" for c in cells)
                             + f" | {_num(last and last['throughput_per_s'])} |")
    return lines + [""]


def gemm_lines(doc: dict) -> list[str]:
    gemm = doc.get("gemm_peak")
    if not gemm or not gemm.get("gflop_s"):
        return [f"GEMM peak: {gemm.get('note') if gemm else 'not measured'}.", ""]
    when = f", the higher of {gemm['measurements']} measurements (before and after the models)" if gemm.get("measurements", 1) > 1 else ""
    rows = [f"GEMM peak ({gemm['kernels']}, {gemm['n']}³, best of 7{when}):"]
    for precision, by_threads in gemm["gflop_s"].items():
        rows.append(f"{precision} " + ", ".join(f"{t} thread(s) {v} GFLOP/s" for t, v in by_threads.items()))
    return ["; ".join(rows[:1]) + " " + "; ".join(rows[1:]) + ".", ""]


def device_sections(doc: dict, plots_prefix: str | None = None) -> list[str]:
    d = doc["device"]
    lines = [f"### {device_label(doc)}", ""]
    if d.get("emulated"):
        lines += [f"**Emulated: {d['emulated']}. These timings are relative only (an emulator is hundreds of times "
                  "slower than the chip); they say nothing about a real device's latency.**", ""]
    lines += [f"{d.get('board') or d['cpu']} · {d['machine']} · {d['cores']} cores · SIMD {' '.join(d.get('simd', [])) or '—'} · "
              f"{d['os']} · Python {d['python']} · " + ", ".join(f"{k} {v}" for k, v in d.get("versions", {}).items() if v),
              "", f"Measured {doc['created']} by `{doc['command']}`. Timing: {doc['timing']['warmup']} warm-up calls "
              f"(≥ {doc['timing']['warmup_s']} s), then ≥ {doc['timing']['min_runs']} calls and ≥ {doc['timing']['min_s']} s per cell "
              f"(at most {doc['timing']['max_runs']} calls / {doc['timing']['max_s']} s).", ""]
    lines += gemm_lines(doc) + models_table(doc)
    lines += ["Achieved GFLOP/s: matrix-product FLOPs of the forward pass (projections, FFN, attention scores and "
              "context; not softmax / GELU / layer norm) ÷ p50. % of GEMM peak: against the int8 peak for models whose "
              "activations are quantized, else the fp32 peak, at the same thread count.", ""]
    lines += ["Latency matrix (full-length inputs; a .tflite with batch-1 signatures runs a batch as one call per row, "
              "padded to its bucket):", ""] + matrix_table(doc)
    return lines


def stability(docs: list[dict]) -> list[str]:
    """Repeated runs of one device: how far each cell's percentiles moved between the first two runs."""
    by_device: dict[str, list[dict]] = {}
    for doc in docs:
        by_device.setdefault(device_key(doc), []).append(doc)
    lines = []
    for runs in by_device.values():
        if len(runs) < 2:
            continue
        a, b = runs[0], runs[1]
        table = compare_runs(a, b)
        if not table["cells"]:
            continue
        lines += [f"### {device_label(a)}: {table['cells']} cells measured twice ({a['created']} and {b['created']})", "",
                  "| percentile | cells within ±10% | median change | largest change |", "|---|---:|---:|---:|"]
        for key, stats in table["percentiles"].items():
            lines.append(f"| {key.removesuffix('_ms')} | {stats['within']}/{table['cells']} ({100 * stats['within'] / table['cells']:.0f}%) | "
                         f"{100 * stats['median_change']:.1f}% | {100 * stats['max_change']:.1f}% ({stats['max_where']}) |")
        peaks = [((d.get("gemm_peak") or {}).get("gflop_s") or {}).get("fp32", {}).get("1") for d in (a, b)]
        if all(peaks):
            lines += ["", f"The machine's own speed in the two runs: fp32 GEMM peak on 1 thread {peaks[0]} vs {peaks[1]} GFLOP/s "
                      f"({100 * (peaks[1] / peaks[0] - 1):+.0f}%). A shared (virtual) machine whose neighbours load the same "
                      "physical cores moves every cell; repeatability cannot be better than that."]
        lines.append("")
    return (["## Repeatability (the same device measured twice)", ""] + lines) if lines else []


def device_key(doc: dict) -> str:
    d = doc["device"]
    return json.dumps([d.get("name"), d["cpu"], d["machine"], d.get("emulated")])


def compare_runs(a: dict, b: dict) -> dict:
    import numpy as np

    changes = {"p50_ms": [], "p90_ms": [], "p99_ms": []}
    where = {k: [] for k in changes}
    for ma in a["models"]:
        mb = next((m for m in b["models"] if m["name"] == ma["name"] and m.get("file") == ma.get("file")), None)
        if not mb:
            continue
        for ca in ma["latency"]:
            cb = cell(mb, ca["seq_len"], ca["threads"], ca.get("batch", 1))
            if not cb:
                continue
            for k in changes:
                changes[k].append(abs(cb[k] / ca[k] - 1))
                where[k].append(f"{ma['name']}, {ca['threads']}t, seq {ca['seq_len']}, b{ca.get('batch', 1)}")
    out = {"cells": len(changes["p50_ms"]), "percentiles": {}}
    for k, v in changes.items():
        if v:
            i = int(np.argmax(v))
            out["percentiles"][k] = {"within": sum(x <= STABLE_WITHIN for x in v), "median_change": float(np.median(v)),
                                     "max_change": float(v[i]), "max_where": where[k][i]}
    return out


def render_merged(docs: list[dict], sources: list[str], plots: list[Path], out_dir: Path) -> str:
    lines = ["# bert-compress benchmark report", "",
             f"{len(docs)} results file(s), {len({device_key(d) for d in docs})} device(s):", ""]
    lines += [f"- `{s}`: {device_label(d)}, {d['created']}, {len(d['models'])} models" for s, d in zip(sources, docs)]
    lines += [""] + headline(docs) + devices_table(docs)
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in plots] + [""]
    lines += stability(docs)
    from compress.budget.report import merged_lines

    lines += merged_lines(docs) + ([""] if merged_lines(docs) else [])
    lines += ["## Per device", ""]
    for doc in docs:
        lines += device_sections(doc)
    return "\n".join(lines)
