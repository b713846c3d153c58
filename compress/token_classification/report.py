"""report.md's section for a token classifier: precision, recall and F1 per entity type on test, for the teacher,
the student and every artifact (what the bench stage's TokenQuality measured)."""

from __future__ import annotations


from compress.bench.fmt import pct


def _pct(x) -> str:
    return pct(x, 1)


def entity_section(results) -> list[str]:
    """results: the measured models (compress.bench.record.BenchResults), each with seqeval's `entities`."""
    models = [(m.name, m.get("entities")) for m in (results.teacher, results.student, *results.artifacts)]
    models = [(n, e) for n, e in models if e]
    if not models:
        return []
    types = sorted({t for _, e in models for t in e["types"]})
    support = {t: models[0][1]["types"].get(t, {}).get("support", 0) for t in types}
    lines = ["## Entities on test (seqeval, conlleval rules)", "",
             "Micro precision, recall and F1 over every entity type; an entity counts when its type and all its words "
             "match. Per type: P / R / F1 (%), with the number of gold entities.", "",
             "| model | P % | R % | F1 % | word-tag acc % | " + " | ".join(f"{t} ({support[t]})" for t in types) + " |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(types)]
    for name, e in models:
        cells = []
        for t in types:
            r = e["types"].get(t)
            cells.append("—" if r is None else f"{_pct(r['precision'])} / {_pct(r['recall'])} / {_pct(r['f1'])}")
        lines.append(f"| {name} | {_pct(e['precision'])} | {_pct(e['recall'])} | {_pct(e['f1'])} | "
                     f"{_pct(e.get('word_accuracy'))} | " + " | ".join(cells) + " |")
    return lines + [""]
