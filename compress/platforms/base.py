"""What a platform bundle is: one folder (and one zip) holding exactly what one platform's app needs, its model
checked on the dev split with that platform's own library where that library runs here.

A platform module defines `PLATFORM = Platform(...)` and the registry (compress.platforms) lists it, in the order
the bundle stage builds them. Every platform starts from the same inputs (`BundleInput`: the bench stage's
measurements, the typed artifacts, the dev texts and the PyTorch student's outputs on them) and returns a typed
`PlatformBundle`; a platform that cannot be built for this model (a tokenizer its format cannot describe, a
library that is not installed) returns one with `skipped` set, never raises.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from compress.bench.record import BenchResults, Measured
from compress.quantize import numerics
from compress.student.kind import TRANSFORMER, StudentKind
from compress.tasks.base import Task

FP32_MIN_AGREEMENT = 0.999
"""fp32 files must agree with the PyTorch student on this share of dev labels (or reach this mean cosine)."""
HOST_SLACK = 0.005
"""How far below the guard's own measurement of a file on this machine a platform library may land (its tokenizer,
its single-length signature) when the int8 decision was taken on aarch64 (BundleInput.bar)."""
HOST, MOBILE = numerics.HOST.name, tuple(s.name for s in numerics.ARM)
"""Where a platform's bundle runs (compress.quantize.numerics.INSTRUCTION_SETS): this machine (the desktop runner,
a browser here), and aarch64 with and without the dot-product instructions (phones, Pi 4 / Pi 5)."""


@dataclass
class BundleInput:
    """What every platform may read (built once by the bundle stage)."""

    task: Task  # what the platforms ask instead of branching on which task it is
    out: Path  # the run's OUT folder: the artifacts' paths are relative to it
    results: BenchResults  # what the bench stage measured (latency, quality and size of every artifact)
    typed: dict  # artifact name -> compress.artifacts.Artifact
    candidates: dict[str, list[Measured]]  # runtime -> measured artifacts to try, fastest first (choose_models)
    texts: list[str]  # the dev split's texts
    pairs: list[str] | None  # their second texts (text-pair classification)
    labels: np.ndarray  # dev labels as the task's metric reads them (empty when the task has none)
    reference: np.ndarray  # the PyTorch student's outputs on `texts` (logits, sentence vectors, per-token logits)
    label_names: list[str]
    tokenizer_dir: Path  # the student's folder (config.json, tokenizer files)
    input_names: list[str]  # the exported graphs' inputs
    max_length: int
    meta: dict  # what every bundle's metadata says of the run (teacher, student, recipe, versions, checked_on)
    atol: float  # the export's tolerance: what an fp32 file's outputs may differ by
    min_agreement: float  # the quantization guard's bar: what an int8 file must agree on
    ort_format: bool = False  # the recipe asks for ONNX Runtime's own .ort format beside the .onnx
    student: Any = None  # the PyTorch student (loaded once by the stage; the task-library .tflite converts it)
    kind: StudentKind = TRANSFORMER  # what kind of model it is (a static-embedding table has no transformer)
    built: dict = field(default_factory=dict)  # platform -> (its folder, its PlatformBundle), as they are built
    emulate: bool = False  # the quantization guard measured under emulated aarch64: a re-made int8 file is too
    dev_ids: dict | None = None  # the dev texts' token ids (numerics.feeds_of), what an emulated guest is fed

    def bar(self, quantized: bool, artifact: str | None = None, platform: "Platform | None" = None) -> float:
        """The agreement a file must reach here: the export's bar for fp32, the quantization guard's for int8. An int8
        file of a platform that runs on aarch64 only, decided there (`eligible`), is held here to what the same
        file reached on this machine in the guard, less HOST_SLACK: this check is that the platform's library
        runs the file as the runner does, not the int8 decision, which this machine's kernels cannot take."""
        if not quantized:
            return FP32_MIN_AGREEMENT
        q = self.typed[artifact].quantization if artifact else None
        if q is None or platform is None or HOST in platform.instruction_sets:
            return self.min_agreement
        decided = q.decided_on(platform.instruction_sets)
        host = (q.extra.get("decisions") or {}).get(HOST, {}).get("agreement")
        if host is None or not decided:
            return self.min_agreement
        return round(min(self.min_agreement, host - HOST_SLACK), 4)

    def decision_notes(self, artifact: str, platform: "Platform") -> list[str]:
        """What the guard measured of this int8 file on the emulated instruction sets the platform runs on."""
        q = self.typed[artifact].quantization
        decisions = (q.extra.get("decisions") or {}) if q is not None else {}
        return [f"int8 decided on {name} (emulated {d.get('core')}): {self.agreement_name} {d['agreement']:.4f}"
                for name, d in decisions.items() if name in platform.instruction_sets and "agreement" in d]

    def on_arm(self, path: Path, reference: np.ndarray, platform: "Platform") -> dict | None:
        """A platform's own int8 file (re-made from the artifact the guard measured) run on the dev texts under the
        emulated instruction sets the platform runs on (compress.quantize.numerics), against `reference` (the
        student's outputs in the file's terms: probabilities for a probabilities file). {set: {agreement,
        dev_quality, passed, rows_emulated, ...} or {error}}; None when the guard did not emulate (its decision,
        this machine's, stands)."""
        from targets.outputs import outputs as runner_outputs
        from targets.runtime import load_model

        sets = [s for s in numerics.ARM if s.name in platform.instruction_sets]
        if not self.emulate or not sets or self.dev_ids is None:
            return None
        margins = numerics.margins_of(reference, self.task.labelled_outputs)
        # the same file through the runner here, fed the guest's ids: its int8 error alone (the library's own
        # outputs also carry its tokenizer's differences) sets which texts run under emulation
        host = runner_outputs(load_model(path, threads=1), self.dev_ids)
        emulated = numerics.EmulatedNumerics(tuple(sets), self.dev_ids, reference, margins)
        try:
            got = emulated.measure(path, sets, host)
        finally:
            emulated.close()
        out = {}
        for name, r in got.items():
            if isinstance(r, str):
                out[name] = {"error": r}
                continue
            full, ran = r
            rows = ran.pop("rows_run") if margins is None else list(range(len(full)))  # vectors: the sample alone
            agreement = self.agreement(full[rows], reference[rows])
            out[name] = {"core": numerics.INSTRUCTION_SETS[name].core, "agreement": agreement, "dev_quality": self.dev_quality(full),
                         "passed": agreement >= self.min_agreement, **{k: v for k, v in ran.items() if k != "rows_run"}}
        return out

    def eligible(self, runtime: str, platform: "Platform") -> list[Measured]:
        """The runtime's candidates (fastest first) whose int8 decision holds on every instruction set the platform
        runs on (fp32 files: all)."""
        return [a for a in self.candidates.get(runtime, [])
                if self.typed[a.name].quantization is None or self.typed[a.name].quantization.holds_on(platform.instruction_sets)]

    def agreement(self, outputs: np.ndarray, reference: np.ndarray | None = None) -> float:
        """The task's agreement (label agreement, mean cosine, token agreement) of `outputs` with the PyTorch
        student's (or with `reference`, another file's outputs on the same texts)."""
        return float(self.task.agreement(self.reference if reference is None else reference, outputs))

    def same_shape(self, outputs: np.ndarray, tool: str) -> np.ndarray:
        """`outputs` if they are one row of the task's width per dev text; else the check fails here, not by chance."""
        if outputs.shape != self.reference.shape:
            raise RuntimeError(f"{tool} gave outputs of shape {list(outputs.shape)} for {len(self.texts)} texts; "
                               f"the student gives {list(self.reference.shape)}")
        return outputs

    @property
    def agreement_name(self) -> str:
        return self.task.agreement_name

    def dev_quality(self, outputs: np.ndarray) -> float | None:
        """The task's metric on the dev labels (accuracy, entity F1; None for a task without labels)."""
        return self.task.dev_quality(outputs, self.labels)


@dataclass
class ModelCheck:
    """How a platform's model file was run here on the dev split, from raw text, and what it gave."""

    tool: str  # "MediaPipe Tasks TextClassifier 0.10.x (Python)", "onnxruntime 1.x + onnxruntime-extensions 0.x"
    rows: int
    agreement: float  # with the PyTorch student: label agreement, or mean cosine for embeddings
    agreement_name: str
    bar: float
    passed: bool
    max_abs_diff: float | None = None  # of scores the tool returns (probabilities for MediaPipe, logits for ONNX)
    dev_quality: float | None = None  # the task's metric on the dev labels (accuracy, entity F1)
    ms_per_text: float | None = None  # mean wall time of one call from a string, tokenizer included (this machine)
    notes: list[str] = field(default_factory=list)
    emulated: dict | None = None  # BundleInput.on_arm: the same file under emulated aarch64, per instruction set


@dataclass
class PlatformBundle:
    """One platform's bundle as built (or why not)."""

    platform: str
    title: str
    path: str | None = None  # relative to OUT
    zip: str | None = None
    zip_bytes: int | None = None
    files: dict[str, int] = field(default_factory=dict)  # file -> bytes
    model_file: str | None = None
    artifact: str | None = None  # the measured artifact its model is (or is made from)
    precision: str | None = None
    string_in: bool = False  # the model takes text (tokenizer in the graph or in the model's metadata)
    check: ModelCheck | None = None
    skipped: str | None = None  # one line: why this platform has no bundle for this model
    rejected: list[dict] = field(default_factory=list)  # candidates that failed their check, and why
    details: dict = field(default_factory=dict)  # what the platform adds (e.g. the pi bundle's models)
    instruction_sets: list[str] = field(default_factory=list)  # where its model runs (Platform.instruction_sets)

    def to_dict(self) -> dict:
        return asdict(self)


def first_passing(candidates: list[Measured], model: Path, attempt: Callable[[Measured], ModelCheck]):
    """Try the measured artifacts fastest first: `attempt(artifact)` writes `model` from it and checks it (an
    exception: it cannot be made or run). Returns (the artifact that passed or None, its check, the rejections);
    a failed candidate's file is removed."""
    from compress.errors import first_line

    rejected = []
    for art in candidates:
        try:
            check = attempt(art)
        except Exception as exc:  # noqa: BLE001 - this candidate cannot be made or run: the next one may
            rejected.append({"file": model.name, "artifact": art.name, "reason": first_line(exc)})
            model.unlink(missing_ok=True)
            continue
        if check.passed:
            return art, check, rejected
        failed_on = [f"{name} (emulated): {d['agreement']:.4f}" for name, d in (check.emulated or {}).items()
                     if not d.get("passed", True)]
        rejected.append({"file": model.name, "artifact": art.name,
                         "reason": f"{check.agreement_name} {check.agreement:.4f} under the bar {check.bar}"
                         if check.agreement < check.bar else f"under the bar {check.bar} on " + ", ".join(failed_on)})
        model.unlink(missing_ok=True)
    return None, None, rejected


def none_passed(platform: "Platform", rejected: list[dict]) -> PlatformBundle:
    return PlatformBundle(platform.name, platform.title, rejected=rejected,
                          skipped="no candidate passed its check: " + "; ".join(f"{r['artifact']}: {r['reason']}" for r in rejected))


@dataclass(frozen=True)
class Platform:
    name: str
    """The folder under OUT/bundle/ and the zip's name."""
    title: str
    """What a person calls it: 'Android (MediaPipe Tasks / LiteRT)'."""
    build: Callable[[BundleInput, Path], PlatformBundle]
    """Write the bundle into the (empty) folder; return what was built. Never raises for a model the platform
    cannot take: returns `skipped` instead."""
    instruction_sets: tuple[str, ...] = MOBILE
    """Where its model runs: an int8 file ships only where it passed the guard on each (BundleInput.eligible)."""
