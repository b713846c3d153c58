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
    quantized = [a.to_dict() for a in results.artifacts if a.get("quantization")]
    rejected_q = [r for r in report.get("rejected_artifacts", []) if r.get("quantization")]
    if quantized or rejected_q:
        lines += ["", f"## Quantization (guarded by dev {task.metric_name} against the fp32 student)", "",
                  "Each candidate is measured the way a device runs it (one text per call at its own length) on the CPU "
                  "named in the row: int8 kernels and their rounding differ between instruction sets, so a decision holds "
                  "for that instruction set and is re-checked by the bundle stage on the machine that builds the bundle.", "",
                  "| artifact | backend | settings | fallback | dev drop (points) | shipped | measured on | why |",
                  "|---|---|---|---:|---:|---|---|---|"]
        for a, shipped in [(a, "yes") for a in quantized] + [(r, "no") for r in rejected_q]:
            q = a["quantization"]
            settings = ", ".join(f"{k}={v}" for k, v in q["settings"].items())
            drop = q.get("drop_points")
            on = q.get("measured_on")
            where = f"{on['int8_isa']} ({on['cpu']})" if on else "not recorded"
            lines.append(f"| {a['name']} | {q['backend']} | {settings} | {q['fallback']} | "
                         f"{'—' if drop is None else f'{drop:.2f}'} | {shipped} | {where} | {q['reason']} |")
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
