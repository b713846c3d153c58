"""The embedding section of report.md: per model, fidelity to the teacher, retrieval (symmetric and asymmetric),
the linear probe, each beside latency and as a share of the teacher's; plus what the evaluation set is."""

from __future__ import annotations


from compress.bench.fmt import pct as _pct, ratio


def embedding_section(report: dict, results, seq: int, threads: int) -> list[str]:
    """results: the measured models (compress.bench.record.BenchResults); report: what the evaluation set was."""
    ev = report["data"].get("evaluation") or {}
    t, onnx = results.teacher, results.onnx_teacher
    t_ms, onnx_ms = t.p50(seq, threads), onnx.p50(seq, threads) if onnx else None
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
    rows = [("teacher (pytorch eager)", t), ("student (pytorch)", results.student)]
    rows += [(a.name, a) for a in results.artifacts] + [(r.name + " (reference)", r) for r in results.references]
    for name, m in rows:
        e = m.get("embedding") or {}
        rel = e.get("relative") or {}
        ms = m.p50(seq, threads)
        lines.append(f"| {name} | {e.get('dim', '—')} | {_pct(e.get('fidelity'))} | {_pct(e.get('recall@10'))} | "
                     f"{_pct(e.get('mrr@10'))} | {_pct(e.get('asym_recall@10'))} | {_pct(e.get('asym_mrr@10'))} | "
                     f"{_pct(e.get('probe_accuracy'))} | {_pct(rel.get('mrr@10'))} | {_pct(rel.get('asym_mrr@10'))} | "
                     f"{_pct(rel.get('probe_accuracy'))} | {ms if ms is not None else '—'} | "
                     f"{ratio(t_ms, ms)} | {ratio(onnx_ms, ms)} |")
    return lines + [""] + shorter_table(t, results.student)


def shorter_table(teacher, student) -> list[str]:
    """Retrieval with shorter stored vectors (compress.embedding.shorter), teacher and student side by side."""
    t_short = (teacher.get("embedding") or {}).get("shorter")
    s_emb = student.get("embedding") or {}
    s_short = s_emb.get("shorter")
    if not s_short:
        return []
    t_full = (teacher.get("embedding") or {}).get("mrr@10")
    s_full = s_emb.get("mrr@10")
    lines = ["### Shorter stored vectors", "",
             "The vectors turned so their leading dimensions carry most of the similarity (a rotation fitted on the "
             "teacher's vectors of the training text: at full width nothing changes), then cut and stored as float32, "
             "int8 codes or one bit a dimension (binary: the query stays float). Shares are of the same model's "
             "full-width float32 MRR@10; asymmetric: the student's queries against the teacher's documents, as a share "
             "of the teacher's full MRR@10.", "",
             "| dims | storage | index of 100k docs (MB) | teacher MRR@10 % of full | student MRR@10 % of full | "
             "student asym MRR@10 % of teacher |",
             "|---:|---|---:|---:|---:|---:|"]
    for key, row in s_short.items():
        dims, storage = key.split("/")
        t_row = (t_short or {}).get(key) or {}
        lines.append(f"| {dims} | {storage} | {row['index_mb']:g} | {_pct(_share(t_row.get('mrr@10'), t_full))} | "
                     f"{_pct(_share(row.get('mrr@10'), s_full))} | {_pct(_share(row.get('asym_mrr@10'), t_full))} |")
    return lines + [""]


def _share(value, full):
    return None if value is None or not full else value / full
