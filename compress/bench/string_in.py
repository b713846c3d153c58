"""What the tokenizer costs inside the graph: string-in ONNX timed beside the ids-in file it wraps.

The plain fp32 ONNX and the fastest int8 ONNX artifact each get their string-in twin (compress.platforms.
tokenizer_graph, kept in OUT/cache/string-in/), and the pairs are timed in the same interleaved rounds at batch 1
(a string-in graph takes one text per call), fed a text of exactly `seq` tokens (targets.bench.bench_text).
"""

from __future__ import annotations

from compress.bench.cells import p50_at
from compress.bench.results import reference_cell
from compress.errors import first_line
from compress.progress import info


def skip_reason(run, special_tokens: bool) -> str | None:
    import importlib.util

    from compress.platforms.tokenizer_graph import EXTENSIONS_HINT, unsupported_tokenizer

    if importlib.util.find_spec("onnxruntime_extensions") is None:
        return f"onnxruntime-extensions is not installed ({EXTENSIONS_HINT})"
    if not special_tokens:
        return "the student reads word pieces without [CLS] / [SEP] (a static-embedding model)"
    if run.recipe.data.text_pair_column:
        return "text pairs: the string-in graph takes one text"
    return unsupported_tokenizer(run.layout.student)


def pairs_to_time(artifacts: list[dict], bench: dict) -> list[dict]:
    """The plain fp32 ONNX and the fastest int8 ONNX artifact (by the matrix just measured)."""
    seq, threads = reference_cell(bench)
    onnx = [a for a in artifacts if a["format"] == "onnx"]
    chosen = [a for a in onnx if a["name"] == "student-onnx-fp32"]
    quantized = sorted((a for a in onnx if a.get("quantization")),
                       key=lambda a: p50_at(a["latency"], seq, threads) or float("inf"))
    return chosen + quantized[:1]


def measure(run, artifacts: list[dict], bench: dict, cfg, vocab_size: int) -> list[dict]:
    """[{artifact, plain_latency, text_latency}] for the pairs; [] when none could be built (said in a line)."""
    from compress.bench.latency import runtime_job, time_jobs
    from compress.platforms.tokenizer_graph import string_in_model

    cache = run.layout.root / "cache" / "string-in"
    grid = cfg.grid()
    pairs, jobs = [], []
    for art in pairs_to_time(artifacts, bench):
        path = run.out / art["path"]
        text_path = cache / f"{art['name']}.onnx"
        try:
            string_in_model(path, run.layout.student, run.recipe.data.max_length, text_path)
        except Exception as exc:  # noqa: BLE001 - the matrix stands without this row
            info(f"[yellow]bench[/]: no string-in twin of {art['name']}: {first_line(exc)}")
            continue
        one = cfg.model_copy(update={"batches": [1]})
        jobs += [runtime_job(path, one, vocab_size, f"{art['name']} (ids in)", art.get("arch")),
                 runtime_job(text_path, one, vocab_size, f"{art['name']} (string in)", art.get("arch"))]
        pairs.append(art["name"])
    if not jobs:
        return []
    info(f"bench: the tokenizer's cost: {len(pairs)} model(s) with and without the tokenizer in the graph, batch 1, "
         f"threads {grid.threads} × seq {grid.seq_lens}")
    timed = time_jobs(jobs, cfg.model_copy(update={"batches": [1]}))
    return [{"artifact": name, "text_file": run.layout.rel(cache / f"{name}.onnx"),
             "plain_latency": timed[2 * i]["latency"], "text_latency": timed[2 * i + 1]["latency"]}
            for i, name in enumerate(pairs)]
