"""The embedding section of report.md: per model, fidelity to the teacher, retrieval (symmetric and asymmetric),
the linear probe, each beside latency and as a share of the teacher's; plus what the evaluation set is."""

from __future__ import annotations


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def _ratio(x) -> str:
    return "—" if x is None else f"{x:.2f}"


def p50_at(latency: list[dict], seq: int, threads: int) -> float | None:
    from compress.bench.cells import p50_at as lookup

    return lookup(latency, seq, threads)


def embedding_section(report: dict, seq: int, threads: int) -> list[str]:
    ev = report["data"].get("evaluation") or {}
    t = report["teacher"]
    t_ms = p50_at(t["latency"], seq, threads)
    onnx = next((r for r in report.get("references", []) if r["name"] == "teacher-onnx-fp32"), None)
    onnx_ms = p50_at(onnx["latency"], seq, threads) if onnx else None
    probe = ev.get("probe")
    lines = ["## Embedding quality", "",
             f"Held-out text: {ev.get('held_out', '—')} test texts (fidelity: mean cosine to the teacher's vectors). "
             f"Retrieval: {ev.get('retrieval_pairs', 0)} query–document pairs by the inverse cloze task (one sentence of a "
             "held-out plot summary is the query, the rest of the summary its document); asymmetric = the model's query "
             "vectors against the teacher's document vectors (documents embedded on a server, queries on the phone). "
             + (f"Linear probe: logistic regression on frozen vectors, {probe['train']} train / {probe['test']} test texts "
                f"labelled {', '.join(probe['labels'])}." if probe else "No linear probe (the data has no labels)."),
             "",
             f"| model | dim | fidelity % | recall@10 % | MRR@10 % | asym recall@10 % | asym MRR@10 % | probe acc % | "
             f"MRR % of teacher | asym MRR % of teacher | probe % of teacher | p50 ms (seq {seq}, {threads}t) | "
             "× eager teacher | × teacher ONNX |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [("teacher (pytorch eager)", t), ("student (pytorch)", report["student"])]
    rows += [(a["name"], a) for a in report["artifacts"]] + [(r["name"] + " (reference)", r) for r in report.get("references", [])]
    for name, m in rows:
        e = m.get("embedding") or {}
        rel = e.get("relative") or {}
        ms = p50_at(m.get("latency", []), seq, threads)
        lines.append(f"| {name} | {e.get('dim', '—')} | {_pct(e.get('fidelity'))} | {_pct(e.get('recall@10'))} | "
                     f"{_pct(e.get('mrr@10'))} | {_pct(e.get('asym_recall@10'))} | {_pct(e.get('asym_mrr@10'))} | "
                     f"{_pct(e.get('probe_accuracy'))} | {_pct(rel.get('mrr@10'))} | {_pct(rel.get('asym_mrr@10'))} | "
                     f"{_pct(rel.get('probe_accuracy'))} | {ms if ms is not None else '—'} | "
                     f"{_ratio(t_ms / ms) if t_ms and ms else '—'} | {_ratio(onnx_ms / ms) if onnx_ms and ms else '—'} |")
    return lines + [""]
