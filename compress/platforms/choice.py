"""Which measured artifacts the bundles try, per runtime and in what order: a choice made once for every platform
from the bench stage's results (the bundle stage passes it to each platform as BundleInput.candidates)."""

from __future__ import annotations

from compress.bench.record import BenchResults, Measured
from compress.errors import UserError

BUNDLED_RUNTIMES = ("onnxruntime", "litert", "executorch")
"""The runtimes whose files the bundles ship (the pi bundle's runner runs them all without torch)."""
SAME_SPEED = 1.1  # a p50 within 10% of the fastest counts as as fast: bench cells move by a few % between runs


def choose_models(results: BenchResults | dict, wanted: list[str] | None) -> dict[str, list[Measured]]:
    """The measured artifacts to try (the bench stage's results, or a report.json holding them), per runtime in
    the order tried: those named (no fallback: the user chose them), else every verified ONNX and every TFLite
    artifact, fastest first, except that files within SAME_SPEED of the fastest go first smallest first (an int8
    file dequantized at load runs at fp32 speed: it is as fast and a fraction of the size). The first of a list
    that passes a platform's check is bundled; the others are its fallbacks."""
    if not isinstance(results, BenchResults):
        results = BenchResults.from_dict(results)
    artifacts = {a.name: a for a in results.artifacts if a.runtime in BUNDLED_RUNTIMES}
    if wanted:
        unknown = [n for n in wanted if n not in artifacts]
        if unknown:
            raise UserError(f"bundle.artifacts names {', '.join(unknown)}, not a shipped ONNX / TFLite / .pte artifact; "
                            f"shipped: {', '.join(artifacts) or 'none'}")
        chosen: dict[str, list[Measured]] = {}
        for n in wanted:
            chosen.setdefault(artifacts[n].runtime, []).append(artifacts[n])
        return chosen
    seq, threads = results.point
    chosen = {}
    for runtime in BUNDLED_RUNTIMES:
        options = [a for a in artifacts.values() if a.runtime == runtime]
        if options:
            p50 = {a.name: a.p50(seq, threads) or float("inf") for a in options}
            fastest = min(p50.values())
            chosen[runtime] = sorted(options, key=lambda a: (0, a.size_bytes) if p50[a.name] <= fastest * SAME_SPEED
                                     else (1, p50[a.name]))
    if not chosen:
        raise UserError("no verified ONNX, TFLite or .pte artifact to bundle: re-run export (and quantize)")
    return chosen
