"""report.json -> summary numbers and report.md (tables a person can read)."""

from __future__ import annotations

from pathlib import Path

from compress.bench.bundle_report import headline_rows, platform_section, string_in_section
from compress.bench.fmt import mb as _mb, pct as _pct, ratio as _ratio
from compress.bench.record import BenchResults, Measured
from compress.bench.results import bench_document, device_sections


def _compare(results: BenchResults, entry: Measured, seq: int, threads: int) -> dict:
    t, onnx = results.teacher, results.onnx_teacher
    t_ms, ms = t.p50(seq, threads), entry.p50(seq, threads)
    onnx_ms = onnx.p50(seq, threads) if onnx else None
    retained = entry.retained(t)
    return {
        "p50_ms": ms,
        "speedup": round(t_ms / ms, 2) if t_ms and ms else None,
        "speedup_vs_onnx_teacher": round(onnx_ms / ms, 2) if onnx_ms and ms else None,
        "size_ratio": round(t.size_bytes / entry.size_bytes, 2) if entry.size_bytes else None,
        "quality_retained": None if retained is None else round(retained, 4),  # the task metric, share of the teacher's
        "retained_interval": entry.get("retained_interval"),
    }


def summary(results: BenchResults) -> dict:
    seq, threads = results.point
    rows = {"student (pytorch)": _compare(results, results.student, seq, threads)}
    for art in results.artifacts:
        rows[art.name] = _compare(results, art, seq, threads)
    onnx = results.onnx_teacher
    best = min(results.artifacts, key=lambda a: a.p50(seq, threads) or float("inf"), default=None)
    return {
        "seq_len": seq,
        "threads": threads,
        "teacher_p50_ms": results.teacher.p50(seq, threads),
        "onnx_teacher_p50_ms": onnx.p50(seq, threads) if onnx else None,
        "best_artifact": best.name if best else None,
        "vs_teacher": rows,
    }


def _fit_line(fit: dict, metric: str) -> str:
    curve = " → ".join(f"{100 * d['dev']:.2f}" for d in fit["dev"])
    why = {"patience": "stopped early: no better dev metric", "time": "stopped by its time budget"}.get(fit["stopped"])
    steps = f"{fit['steps']:,} of {fit['planned_steps']:,} planned steps" if fit.get("planned_steps") else "steps"
    best = f"best at epoch {fit['best_epoch']}" + (f" (step {fit['best_step']:,})" if fit.get("best_step") else "")
    return f"{steps}{f' ({why})' if why else ''}, {best}; dev {metric} % at each evaluation: {curve} ({fit['seconds']:.0f} s)"


def training_section(report: dict, metric: str) -> list[str]:
    """What the teacher and the student were trained on and how long (report.json `training`)."""
    training = report.get("training") or {}
    if not training:
        return []
    lines = ["## Training", ""]
    if "teacher" in training:
        lines += [f"- Teacher fine-tuned on the {report['data']['rows']['train']:,} labelled rows: "
                  + _fit_line(training["teacher"], metric) + "."]
    student = training.get("student")
    if student and (student.get("data") or {}).get("labelled") is not None:  # a static student records no rows
        data = student["data"]
        transfer = data.get("transfer") or {}
        rows = transfer.get("rows") or {"labelled": data.get("labelled"), "total": data.get("labelled")}
        parts = [f"{rows['labelled']:,} labelled"]
        if "augmented" in rows:
            a = transfer["augment"]
            parts.append(f"{rows['augmented']:,} augmented ({a['copies']} variant(s) per row{' per epoch' if a['per_epoch'] else ''}, "
                         f"each word replaced with p {a['p']:g} by one of its {a['top_k']} nearest words from "
                         f"{', '.join(a['sources'])})")
        if "entity_augmented" in rows:
            e = transfer["entities"]
            parts.append(f"{rows['entity_augmented']:,} entity-augmented ({e['copies']} variant(s) per tagged sentence by "
                         f"{', '.join(e['operations'])}, p {e['p']:g}; {e['unchanged']:,} unchanged variants left out)")
        if "unlabeled" in rows:
            parts.append(f"{rows['unlabeled']:,} unlabeled segments ("
                         + ", ".join(f"{k} {v:,}" for k, v in transfer["unlabeled"].items()) + ")")
        cost = [f"{k} {v:.0f} s" for k, v in transfer.get("seconds", {}).items()]
        if data.get("teacher_labels_seconds") is not None:
            cost.append(f"the teacher's outputs on them {data['teacher_labels_seconds']:.0f} s")
        line = f"- Student distilled on {rows['total']:,} rows: " + "; ".join(parts)
        if "general" in data:
            g = data["general"]
            line += (f"; general distillation first on {g['rows']:,} unlabeled "
                     f"{'sentence runs' if g.get('segment') == 'sentences' else 'texts'} ({g['spec']})")
        cut = {k: n for k, n in (("transfer", transfer.get("truncated")), ("general", (data.get("general") or {}).get("truncated"))) if n}
        if cut:
            line += (f" ({' and '.join(f'{n:,} {k} texts' for k, n in cut.items())} longer than data.max_length were cut "
                     "to it)")
        lines.append(line + (f". Cost: {', '.join(cost)}." if cost else "."))
        vocab = student.get("vocabulary") or {}
        if vocab.get("pieces_without_transfer"):
            lines.append(f"- Task vocabulary: {vocab['pieces']:,} word pieces, of which {vocab['pieces'] - vocab['pieces_without_transfer']:,} "
                         f"only for the transfer rows ({vocab['pieces_without_transfer']:,} from the labelled rows alone; "
                         f"the teacher has {vocab['teacher_pieces']:,}).")
        for st in student["stages"]:
            lines.append(f"- Distillation stage `{st['stage']}`: " + _fit_line(st, metric) + ".")
        for note in transfer.get("notes", []):
            lines.append(f"- Note: {note}.")
    return lines + [""]


def _interval(x: dict) -> str:
    interval = x.get("retained_interval")
    return (f" (95% bootstrap interval over the test rows: {100 * interval[0]:.1f}–{100 * interval[1]:.1f}%)"
            if interval else "")


def _retained(x: dict) -> str:
    """% of the teacher with its bootstrap interval over the test rows."""
    interval = x.get("retained_interval")
    return _pct(x["quality_retained"]) + (f" ({100 * interval[0]:.1f}–{100 * interval[1]:.1f})" if interval else "")


def render_markdown(report: dict) -> str:
    from compress.tasks import task_of

    task = task_of(report)
    metric = task.quality_column  # the task metric the `quality` fields hold
    s = report["summary"]
    results = BenchResults.from_dict(report)
    t, st = results.teacher, results.student
    seq, thr = s["seq_len"], s["threads"]
    lines = [f"# bert-compress report: recipe `{report['recipe']}`" + (" (quick)" if report["quick"] else ""), ""]
    env = report["environment"]
    lines += [
        f"{report['created']} · {env['cpu']} ({env['cores']} cores, {env['machine']}) · Python {env['python']} · "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v),
        "",
        f"Data: {report['data']['source']}" + (f", labels {', '.join(report['data']['labels'])}" if report['data']['labels'] else "")
        + "; rows "
        + ", ".join(f"{k} {v}" for k, v in report["data"]["rows"].items()),
        "",
    ]
    best = s["best_artifact"]
    if best:
        b = s["vs_teacher"][best]
        lines += [
            "## Headline",
            "",
            f"`{best}` vs the teacher in PyTorch eager fp32, batch 1, seq {seq}, {thr} thread(s): "
            f"**{b['speedup']}× faster** ({b['p50_ms']} ms vs {s['teacher_p50_ms']} ms p50)"
            + (f", **{b['speedup_vs_onnx_teacher']}×** faster than the teacher in ONNX Runtime fp32 ({s['onnx_teacher_p50_ms']} ms)"
               if b.get("speedup_vs_onnx_teacher") else "") + ", "
            f"**{b['size_ratio']}× smaller** on disk, "
            + task.kept_sentence(_pct(b["quality_retained"]), _interval(b)),
            "",
        ]
    lines += headline_rows(report, results)
    lines += task.report_sections(report, results, seq, thr)
    lines += training_section(report, task.metric_name)
    lines += ["## Models", "",
              f"| model | runtime | params | MB on disk | {metric} % | % of teacher (95% interval) | p50 ms (seq {seq}, {thr}t) | "
              "× eager teacher | × ONNX teacher |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    onnx_ms = s.get("onnx_teacher_p50_ms")
    t_ms = t.p50(seq, thr)
    lines.append(f"| teacher ({t.get('layers')}L/{t.get('hidden_size')}) | pytorch eager fp32 | {t.get('params'):,} | {_mb(t.size_bytes)} | "
                 f"{_pct(t.quality)} | 100.00 | {t_ms} | 1.00 | {_ratio(onnx_ms, t_ms)} |")
    vs = s["vs_teacher"]["student (pytorch)"]
    lines.append(f"| student ({st.get('layers')}L/{st.get('hidden_size')}) | pytorch eager fp32 | {st.get('params'):,} | {_mb(st.size_bytes)} | "
                 f"{_pct(st.quality)} | {_retained(vs)} | {vs['p50_ms']} | {vs['speedup']} | "
                 f"{_ratio(onnx_ms, vs['p50_ms'])} |")
    for a in results.artifacts:
        vs = s["vs_teacher"][a.name]
        lines.append(f"| {a.name} | {a.runtime} | — | {_mb(a.size_bytes)} | {_pct(a.quality)} | "
                     f"{_retained(vs)} | {vs['p50_ms']} | {vs['speedup']} | {_ratio(onnx_ms, vs['p50_ms'])} |")
    for r in results.references:
        ms = r.p50(seq, thr)
        lines.append(f"| {r.name} (reference, not shipped) | {r.runtime} | — | {_mb(r.size_bytes)} | "
                     f"{_pct(r.quality)} | {_pct(r.retained(t))} | {ms} | {_ratio(t_ms, ms)} | {_ratio(onnx_ms, ms)} |")
    lines += ["", "## Verification against the PyTorch student", "",
              f"| artifact | format | max abs Δ{task.output_unit} | {task.agreement_name} | checked on |",
              "|---|---|---:|---:|---|"]
    for a in results.artifacts:
        lines.append(f"| {a.name} | {a.format} | {a.get('max_abs_diff'):.2e} | {_pct(a.agreement)}% | {a.get('verified_on')} |")
    for r in report.get("rejected_artifacts", []):
        lines.append(f"| {r['name']} | not shipped | — | — | {r['reason']} |")
    lines += quantization_section(report, results, task) + arithmetic_section(results)
    lines += ["", "## Benchmark matrix", ""]
    if report.get("plots"):
        lines += [f"![{Path(p).stem}]({p})" for p in report["plots"]] + [""]
    lines += device_sections(bench_document(report, results))[2:]
    if report.get("bundle"):
        bundle = report["bundle"]
        lines += ["", f"## Runner bundle (`{bundle['path']}`, `{bundle['zip']}` {_mb(bundle['zip_bytes'])} MB)", "",
                  "Each model run the way a device runs it (raw dev text → the runner's tokenizer → runtime, one text per "
                  "call) against the PyTorch student" + (f", on {bundle['checked_on']['int8_isa']} "
                                                          f"({bundle['checked_on']['cpu']})" if bundle.get("checked_on") else "")
                  + ". A file that failed was replaced by the next-fastest verified artifact of its runtime.", "",
                  "| file | artifact | runtime | precision | MB | max abs Δ | " + task.runner_columns,
                  "|---|---|---|---|---:|---:|---:|---:|"]
        for m in bundle["models"]:
            rc = m["runner_check"]
            agree = task.runner_cells(rc, _pct)
            lines.append(f"| {m['file']} | {m['artifact']} | {m['runtime']} | {m['precision']} | {_mb(m['size_bytes'])} | "
                         f"{rc['max_abs_diff_vs_pytorch']:.2e} | {agree}")
        for r in bundle["rejected"]:
            lines.append(f"| {r['file']} | {r['artifact']} | not bundled | — | — | — | — | {r['reason']} |")
    from compress.budget.report import markdown as budget_section

    lines += string_in_section(report) + platform_section(report) + budget_section(report)
    lines += ["", "## Stage wall time (s)", "", "| " + " | ".join(report["stage_seconds"]) + " |",
              "|" + "---:|" * len(report["stage_seconds"]),
              "| " + " | ".join(f"{v:.0f}" for v in report["stage_seconds"].values()) + " |", ""]
    return "\n".join(lines)


def quantization_section(report: dict, results, task) -> list[str]:
    """One row per (int8 file, instruction set it was measured on): this machine's numerics and the emulated aarch64
    cores' side by side, each with its decision (compress.quantize.numerics)."""
    quantized = [a.to_dict() for a in results.artifacts if a.get("quantization")]
    rejected = [r for r in report.get("rejected_artifacts", []) if r.get("quantization")]
    if not quantized and not rejected:
        return []
    lines = ["", f"## Quantization (guarded by dev {task.metric_name} against the fp32 student)", "",
             "Each candidate is measured the way a device runs it (one text per call at its own length) on each "
             "instruction set a bundle runs on: this machine natively, and aarch64 under qemu-user with a named core "
             "(the bundle's own runner and the aarch64 wheels of its runtimes; emulated numerics are the chip's, its "
             "speed is not). int8 kernels and their rounding differ between instruction sets, so each decision holds "
             "for its row; a bundle ships a file only where every instruction set its platform runs on passed. "
             "*Where sure*: the agreement on the rows whose fp32 top-1 / top-2 margin exceeds twice the file's own "
             "99th-percentile int8 error.", "",
             f"| artifact | backend, settings | instruction set | dev drop (points) | {task.agreement_name} | where sure "
             "(rows) | decision | shipped |", "|---|---|---|---:|---:|---:|---|---|"]
    for a, shipped in [(a, True) for a in quantized] + [(r, False) for r in rejected]:
        q = a["quantization"]
        what = f"{q['backend']}: " + ", ".join(f"{k}={v}" for k, v in q["settings"].items())
        on = q.get("measured_on") or {}
        host = f"this machine: {on.get('int8_isa', '?')} ({on.get('cpu', '?')})"
        decisions = q.get("decisions") or {"host": {"passed": shipped, "agreement": None}}
        for k, (name, d) in enumerate(decisions.items()):
            file = (a["name"], what) if k == 0 else ("″", "″")  # the file's name and settings on its first row only
            where = host if name == "host" else f"{name} (emulated {d.get('core')})"
            if "error" in d:
                lines.append(f"| {file[0]} | {file[1]} | {where} | — | — | — | not measured: {d['error']} | — |")
                continue
            drop = q.get("drop_points") if name == "host" else (
                None if d.get("quality") is None or q.get("fp32_dev_quality") is None
                else round(100 * (q["fp32_dev_quality"] - d["quality"]), 3))
            c = d.get("confident") or {}
            sure = (f"{_pct(c['confident_agreement'])}% ({c['confident_rows']}/{c['rows']})"
                    if c.get("confident_agreement") is not None else "—")
            agreement = "—" if d.get("agreement") is None else f"{d['agreement']:.4f}"
            lines.append(f"| {file[0]} | {file[1]} | {where} | {'—' if drop is None else f'{drop:.2f}'} | {agreement} | "
                         f"{sure} | {'pass' if d.get('passed') else 'fail'} | {'yes' if shipped else 'no'} |")
    note = ((report.get("quantization") or {}).get("instruction_sets") or {}).get("not_emulated")
    if note:
        lines += ["", f"The aarch64 decision was not made ({note}): this machine's numerics decided for every bundle."]
    return lines


def arithmetic_section(results) -> list[str]:
    """How much of each ONNX Runtime file's latency its matrix products take: the model's own GEMM shapes timed alone
    in the same kernels (bench.roofline), beside what the FLOPs would take at the 1024³ GEMM peak."""
    roof = results.bench.get("roofline") or {}
    peak = ((results.bench.get("gemm_peak") or {}).get("gflop_s")) or {}
    rows = [(a, roof[a.name]) for a in results.artifacts if a.name in roof and roof[a.name].get("gemm_ms") is not None]
    if not rows:
        return []
    seq, threads = results.point
    lines = ["", f"## Arithmetic and overhead (seq {seq}, batch 1, {threads} thread)", "",
             "Each model's own matrix products (projections, FFN, attention scores and context, pooler and classifier) "
             "timed alone at their own shapes in ONNX Runtime's kernels (int8 weight products for a model whose "
             "activations are quantized), a call's own overhead taken off each: what the arithmetic alone takes at "
             "these narrow shapes. The last columns put the same FLOPs at the GEMM peak measured at 1024³. The rest of "
             "p50 is per-operator overhead and element-wise work (softmax, GELU, layer norm, quantizing activations).", "",
             "| artifact | compute | p50 ms | GEMMs alone ms | share of p50 | GFLOP/s at own shapes | at the 1024³ peak ms "
             "| share of p50 |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for a, r in rows:
        p50 = a.p50(seq, threads)
        at_peak = (peak.get(r["compute"]) or {}).get(str(threads))
        peak_ms = 1e3 * r["gflops"] / at_peak if at_peak else None
        lines.append(f"| {a.name} | {r['compute']} | {p50} | {r['gemm_ms']:.3f} | {_share(r['gemm_ms'], p50)} | "
                     f"{r['gflop_s'] or '—'} | {'—' if peak_ms is None else f'{peak_ms:.3f}'} | {_share(peak_ms, p50)} |")
    return lines


def _share(ms: float | None, p50: float | None) -> str:
    return f"{100 * ms / p50:.0f}%" if p50 and ms is not None else "—"
