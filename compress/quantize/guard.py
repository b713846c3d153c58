"""The accuracy guard: build each candidate, measure it on dev against the fp32 student, fall back when it loses.

For each candidate in the recipe's order: the settings as given, then (when the drop is beyond the tolerance)
the backend's more conservative fallbacks, until one passes. Every attempt is recorded with its numbers, so
the report says what was shipped and why the others were not.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from compress.errors import first_line
from compress.export.base import Made
from compress.progress import info
from compress.quantize import candidate_name, parse_candidate
from compress.quantize.base import Backend, Context, Settings


@dataclass
class Measured:
    quality: float  # the task's dev metric of the quantized artifact (accuracy, entity F1; embeddings: fidelity)
    agreement: float  # the task's agreement with the fp32 student on dev (labels, tokens; embeddings: mean cosine)
    max_abs_diff: float
    confident: dict | None = None  # numerics.confident_agreement: the agreement where the fp32 student is sure
    outputs: np.ndarray | None = field(default=None, repr=False)  # the file's outputs on dev (emulation starts from them)
    emulated_rows: dict | None = None  # under emulation: how many dev texts ran there (numerics.EmulatedNumerics)

    def record(self, passed: bool, where) -> dict:
        """One (file, instruction set) decision as the quantization record keeps it."""
        return {"instruction_set": where.name, "emulated": where.emulated, "core": where.core, "quality": self.quality,
                "agreement": self.agreement, "max_abs_diff": self.max_abs_diff, "passed": passed,
                **({"confident": self.confident} if self.confident else {}), **(self.emulated_rows or {})}


@dataclass
class Attempt:
    name: str
    backend: str
    settings: dict
    path: Path | None
    passed: bool
    reason: str
    measured: Measured | None = None
    seconds: float = 0.0
    fallback: int = 0  # 0: as configured; n: the n-th fallback
    extra: dict = field(default_factory=dict)  # the backend's notes (the QAD history): in the quantization record
    made: Any = None  # the backend's compress.export.base.Made (buckets, extras), when it returned one
    decisions: dict = field(default_factory=dict)  # instruction set -> Measured.record (or {"error": ...})
    passed_on: list = field(default_factory=list)  # the instruction sets whose decision this file holds


def run_guard(
    candidates: list[dict[str, Any]],
    ctx: Context,
    out_dir: Path,
    evaluate: Callable[[Backend, Settings, Path], Measured],
    fp32_quality: float,
    max_drop_points: float,
    min_agreement: float,
    use_fallbacks: bool = True,
    metric_name: str = "accuracy",
    agreement_name: str = "label agreement",
    emulated=None,
    judge: Callable[[np.ndarray, list[int] | None], Measured] | None = None,
) -> list[Attempt]:
    """`emulated` (compress.quantize.numerics.EmulatedNumerics): also measure each file of a bundled runtime on the
    bundles' aarch64 instruction sets, `judge` turning its outputs there into a Measured. A candidate's chain of
    fallbacks goes on until a file passes on every instruction set (each file is kept for those it passes on)."""
    from compress.quantize.numerics import HOST

    attempts: list[Attempt] = []
    taken: set[str] = set()
    made: dict[tuple[str, str], str] = {}  # (backend, settings) -> the attempt that made that file already
    for raw in candidates:
        backend, settings = parse_candidate(raw)
        name = candidate_name(raw, taken)
        taken.add(name)
        chain = [settings] + (backend.fallbacks(settings) if use_fallbacks else [])
        # a torchao file is not bundled: this machine decides it alone
        needed = [HOST, *(emulated.sets if emulated is not None and backend.runtime != "pytorch" else ())]
        for i, s in enumerate(chain):
            key = (backend.name, json.dumps(s.model_dump(), sort_keys=True, default=str))
            if key in made:  # e.g. an int4 candidate's int8 fallback when int8 is a candidate of its own
                info(f"quantize {name}: {s.describe()} is {made[key]}'s setting; not made twice")
                break
            made[key] = f"{name}{'' if i == 0 else f'-fallback{i}'}"
            suffix = "" if i == 0 else f"-fallback{i}"
            dst = out_dir / f"{name}{suffix}{backend.artifact_suffix}"
            t0 = time.perf_counter()
            attempt = Attempt(f"{name}{suffix}", backend.name, s.model_dump(), None, False, "", fallback=i)
            attempts.append(attempt)
            ctx.notes.clear()
            try:
                written = backend.quantize(s, ctx, dst)
                attempt.made = written if isinstance(written, Made) else None
                attempt.extra = dict(ctx.notes)
                m = evaluate(backend, s, dst)
            except Exception as exc:  # a backend that cannot quantize this model: recorded, next candidate
                dst.unlink(missing_ok=True)
                attempt.reason = f"{backend.name} failed: {type(exc).__name__}: {first_line(exc)}"
                attempt.seconds = time.perf_counter() - t0
                info(f"[yellow]quantize {attempt.name}[/]: {attempt.reason}")
                break  # fallbacks of a backend that crashed would crash the same way
            attempt.seconds, attempt.measured = time.perf_counter() - t0, m

            def passes(m: Measured) -> bool:
                return 100 * (fp32_quality - m.quality) <= max_drop_points and m.agreement >= min_agreement

            drop = 100 * (fp32_quality - m.quality)
            attempt.reason = (
                f"dev {metric_name} {100 * m.quality:.2f}% vs fp32 {100 * fp32_quality:.2f}% (drop {drop:.2f} points, "
                f"tolerance {max_drop_points:g}); {agreement_name} {m.agreement:.4f} (needs {min_agreement})"
            )
            measured = {HOST.name: m} if HOST in needed else {}
            arm = [w for w in needed if w.emulated]
            if arm:
                for where, got in emulated.measure(dst, arm, m.outputs).items():
                    if isinstance(got, str):
                        attempt.decisions[where] = {"instruction_set": where, "emulated": True, "error": got}
                    else:
                        out, ran = got
                        measured[where] = judge(out, ran.pop("rows_run"))
                        measured[where].emulated_rows = ran
            for where in needed:
                if where.name in measured:
                    ok = passes(measured[where.name])
                    attempt.decisions[where.name] = measured[where.name].record(ok, where)
                    if ok:
                        attempt.passed_on.append(where.name)
            attempt.passed = bool(attempt.passed_on)
            if arm:
                attempt.reason += "; " + ", ".join(
                    f"{w}: {d['agreement']:.4f}" if "agreement" in d else f"{w}: {d['error']}"
                    for w, d in attempt.decisions.items() if w != HOST.name)
            verdict = (f"[green]kept for {', '.join(attempt.passed_on)}[/]" if attempt.passed and arm else
                       "[green]kept[/]" if attempt.passed else "[yellow]rejected[/]")
            info(f"quantize {attempt.name} ({s.describe()}): {verdict}: {attempt.reason}")
            # satisfied, or not measurable there (recorded: this machine's decision holds for it, Quantization.holds_on)
            needed = [w for w in needed if w.name not in attempt.passed_on and "error" not in attempt.decisions.get(w.name, {})]
            if attempt.passed:
                attempt.path = dst
            else:
                dst.unlink(missing_ok=True)
            if not needed:
                break
    return attempts
