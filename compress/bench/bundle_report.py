"""The report's per-platform sections: which file a developer takes for each platform (headline), and how each
platform bundle's model was checked. Reads report.json's `bundle.platforms` (the bundle stage's PlatformBundle
records) and the bench results; imports nothing of compress.platforms (the report is rendered from records)."""

from __future__ import annotations

from compress.bench.cells import p50_at
from compress.bench.fmt import mb as _mb, pct as _pct
from compress.bench.record import BenchResults


def tokenizer_cost(report: dict, artifact: str | None, seq: int, threads: int) -> float | None:
    """ms the in-graph tokenizer adds to `artifact` at (seq, threads), from the bench stage's paired timing."""
    for row in report.get("string_in", []):
        if row["artifact"] == artifact:
            plain, text = p50_at(row["plain_latency"], seq, threads), p50_at(row["text_latency"], seq, threads)
            return round(text - plain, 3) if plain is not None and text is not None else None
    return None


def headline_rows(report: dict, results: BenchResults | None = None) -> list[str]:
    """One line per platform: the zip to take, its size, the model's speed and quality, how it was checked."""
    bundle = report.get("bundle") or {}
    platforms = bundle.get("platforms") or []
    if not platforms:
        return []
    s = report["summary"]
    seq, thr = s["seq_len"], s["threads"]
    results = results or BenchResults.from_dict(report)
    teacher = results.teacher
    from compress.tasks import task_of

    task = task_of(report)
    quality = task.quality_column
    lines = ["### What to ship, per platform", "",
             f"Latency: the model's p50 in the bench matrix (seq {seq}, batch 1, {thr} thread(s), this CPU)"
             + (", plus what the in-graph tokenizer adds" if report.get("string_in") else "")
             + f"; {task.metric_name}: test split. Size ratio: the teacher's fp32 weights "
             f"({_mb(teacher.size_bytes)} MB) over the zip.", "",
             f"| platform | take | zip MB | × smaller than teacher | model | p50 ms | {quality} % "
             f"| % of teacher | checked with | dev {task.agreement_column} |",
             "|---|---|---:|---:|---|---:|---:|---:|---|---:|"]
    for p in platforms:
        if p.get("skipped"):
            lines.append(f"| {p['title']} | — | — | — | — | — | — | — | not built: {p['skipped']} | — |")
            continue
        art = results.artifact(p["artifact"])
        fixed = (p.get("details") or {}).get("fixed_length")  # a task-library .tflite runs every text at that length
        at = fixed if fixed and art and art.p50(fixed, thr) is not None else seq
        ms = art.p50(at, thr) if art else None
        extra = tokenizer_cost(report, p["artifact"], seq, thr) if p.get("string_in") and p["platform"].endswith("-ort") else None
        latency = "—" if ms is None else (f"{ms:.2f}" + (f" + {extra:.2f}" if extra else "") + (f" (seq {at})" if at != seq else ""))
        acc = art.quality if art else None
        retained = art.retained(teacher) if art else None
        check = p.get("check") or {}
        lines.append(
            f"| {p['title']} | `{p['zip']}` | {_mb(p['zip_bytes'])} | "
            f"{teacher.size_bytes / p['zip_bytes']:.1f} | `{p['model_file']}` ({p['precision']}) | {latency} | "
            f"{_pct(acc)} | {_pct(retained, 1)} | {check.get('tool', 'not checked here')} | {_pct(check.get('agreement'))}% |")
    return lines + [""]


def platform_section(report: dict) -> list[str]:
    """Every platform bundle: its files and what its check measured (rows, agreement, per-text time)."""
    bundle = report.get("bundle") or {}
    platforms = [p for p in bundle.get("platforms") or [] if not p.get("skipped")]
    if not platforms:
        return []
    lines = ["", "## Platform bundles (`bundle/<platform>/`, `bundle/<platform>.zip`)", "",
             "Each platform's model was run on the dev split from raw text (strings in) with the tool named, and its "
             "outputs compared with the PyTorch student's; ms per text is that tool's mean call time here, "
             "tokenization included.", "",
             "| platform | runs on | model | files | zip MB | checked with | rows | agreement | max abs Δ | ms per text | notes |",
             "|---|---|---|---|---:|---|---:|---:|---:|---:|---|"]
    for p in platforms:
        c = p.get("check") or {}
        files = ", ".join(f"`{f}`" for f in p["files"] if "/" not in f)
        nested = sorted({f.split("/")[0] for f in p["files"] if "/" in f})
        files += "".join(f", `{d}/`" for d in nested)
        diff, ms = c.get("max_abs_diff"), c.get("ms_per_text")
        lines.append(
            f"| {p['platform']} | {', '.join(p.get('instruction_sets') or []) or '—'} | {p.get('artifact') or '—'} | "
            f"{files} | {_mb(p['zip_bytes'])} | {c.get('tool', '—')} | {c.get('rows', '—')} | "
            f"{_pct(c.get('agreement'))}% ({c.get('agreement_name', '—')}) | {'—' if diff is None else f'{diff:.1e}'} | "
            f"{'—' if ms is None else f'{ms:.2f}'} | {'; '.join(c.get('notes') or []) or '—'} |")
    for p in bundle.get("platforms") or []:
        if p.get("skipped"):
            lines.append(f"| {p['platform']} | {', '.join(p.get('instruction_sets') or []) or '—'} | — | not built | — | — "
                         f"| — | — | — | — | {p['skipped']} |")
    return lines


def string_in_section(report: dict) -> list[str]:
    """The tokenizer's cost: each string-in ONNX timed beside the plain model it wraps, in the same interleaved
    rounds (batch 1: a string-in graph takes one text per call)."""
    rows = report.get("string_in") or []
    if not rows:
        return []
    cells = sorted({(c["threads"], c["seq_len"]) for r in rows for c in r["text_latency"]})
    lines = ["", "## Tokenizer in the graph (string-in ONNX vs ids-in ONNX)", "",
             "The same model with onnxruntime-extensions' BERT tokenizer in front, fed a text of exactly `seq` tokens, "
             "timed in the same rounds as the plain file fed ids (batch 1). The difference is what tokenizing costs "
             "on this CPU.", "",
             "| model | threads | seq | ids in p50 ms | string in p50 ms | tokenizer ms | tokenizer share |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        for threads, seq in cells:
            plain, text = p50_at(r["plain_latency"], seq, threads), p50_at(r["text_latency"], seq, threads)
            if plain is None or text is None:
                continue
            lines.append(f"| {r['artifact']} | {threads} | {seq} | {plain:.3f} | {text:.3f} | {text - plain:.3f} | "
                         f"{100 * (text - plain) / text:.1f}% |")
    return lines
