"""The artifact record: one model file a stage made and verified, built and read one way everywhere.

The export and quantize stages write `Artifact.to_dict()` into their stage records; the bench stage, the bundle
stage and the report read them back with `Artifact.from_dict`. Records written before `task`, `precision` and
`compute` were stored (bert-compress 0.x OUT folders) are read the same way: those fields are derived from the
quantization backend's typed settings, the one place that knows what a setting means.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_TASK = "sequence-classification"


@dataclass(frozen=True)
class Verification:
    """How the artifact's outputs compared with the PyTorch student on dev, as the device runs it."""

    max_abs_diff: float
    agreement: float
    """The task's agreement with the PyTorch student (label agreement, token agreement; embeddings: mean cosine)."""
    rows: int
    passed: bool
    atol: float | None  # None: a quantized artifact, judged by the quantization guard instead of a tolerance
    min_agreement: float
    agreement_name: str = "label agreement"

    @classmethod
    def from_dict(cls, d: dict) -> "Verification":
        if isinstance(d.get("agreement", 0.0), str) or "label_agreement" in d:  # written before the names said what they hold
            d = {k: v for k, v in d.items() if k not in ("agreement", "label_agreement", "min_label_agreement")} | {
                "agreement": d["label_agreement"], "min_agreement": d["min_label_agreement"],
                "agreement_name": d.get("agreement", "label agreement")}
        return cls(float(d["max_abs_diff"]), float(d["agreement"]), int(d["rows"]), bool(d["passed"]),
                   d.get("atol"), float(d["min_agreement"]), d.get("agreement_name", "label agreement"))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Quantization:
    """What the quantization guard did to make (or reject) an artifact."""

    backend: str
    settings: dict
    fallback: int
    reason: str
    seconds: float
    measured_on: dict | None = None  # compress.bench.env.machine_identity(): the int8 ISA the decision holds for
    dev_quality: float | None = None  # the task's dev metric (accuracy, entity F1, fidelity) of the file
    fp32_dev_quality: float | None = None  # ... and of the fp32 student it was made from
    drop_points: float | None = None
    extra: dict = field(default_factory=dict)  # backend notes (e.g. the QAD training history)

    FIELDS = ("backend", "settings", "fallback", "reason", "seconds", "measured_on", "dev_quality", "fp32_dev_quality",
              "drop_points")
    OLD_NAMES = {"dev_accuracy": "dev_quality", "fp32_dev_accuracy": "fp32_dev_quality"}  # records of earlier versions

    @classmethod
    def from_dict(cls, d: dict) -> "Quantization":
        d = {cls.OLD_NAMES.get(k, k): v for k, v in d.items()}
        known = {k: d.get(k) for k in cls.FIELDS}
        known["fallback"] = int(known["fallback"] or 0)
        known["reason"] = known["reason"] or ""
        known["seconds"] = float(known["seconds"] or 0.0)
        return cls(**known, extra={k: v for k, v in d.items() if k not in cls.FIELDS})

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.FIELDS}
        return {k: v for k, v in out.items() if v is not None or k in ("backend", "settings")} | self.extra

    def precision(self):
        from compress.quantize import backend

        b = backend(self.backend)
        return b.settings(**self.settings).precision()

    def decided_on(self, sets: tuple[str, ...]) -> bool:
        """Whether every one of `sets` was measured (not left to this machine's numerics)."""
        decisions = self.extra.get("decisions") or {}
        return all("passed" in decisions.get(s, {}) for s in sets)

    def holds_on(self, sets: tuple[str, ...]) -> bool:
        """Whether this file passed the guard on every instruction set of `sets`; one not measured there (no qemu,
        or a record of an earlier version) is held to this machine's decision, as the run said."""
        decisions = self.extra.get("decisions") or {}
        host = decisions.get("host", {}).get("passed", True)
        return all(decisions.get(s, {}).get("passed", host) for s in sets)

    @property
    def is_int4(self) -> bool:
        return self.settings.get("scheme") == "int4-weight" or self.settings.get("weight_bits") == "int4"


@dataclass(frozen=True)
class Artifact:
    name: str
    task: str
    format: str  # onnx | tflite | pte | pytorch
    runtime: str  # onnxruntime | litert | executorch | pytorch: how it is loaded and timed
    path: str  # relative to OUT, posix
    precision: str  # for people: "fp32", "int8 weights, fp32 activations (quantized per call)", ...
    compute: str  # the GEMM peak its matmuls run against: "fp32" or "int8"
    verification: Verification
    description: str = ""
    quantization: Quantization | None = None
    buckets: list[int] | None = None  # the sequence-length signatures / methods of a batch-1 file (LiteRT, .pte)
    outputs: tuple[str, ...] = ("logits",)
    extras: dict = field(default_factory=dict)
    """What the format alone knows of its file (the fused operators of an optimized ONNX graph, a .pte's operators
    XNNPACK did not take, why it has bucket methods): the exporter or quantizer says, the platforms read."""

    def file(self, out: Path) -> Path:
        return Path(out) / self.path

    @property
    def quantized(self) -> bool:
        return self.quantization is not None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verification"] = asdict(self.verification)
        d["quantization"] = self.quantization.to_dict() if self.quantization else None
        d["outputs"] = list(self.outputs)
        return {k: v for k, v in d.items() if (v is not None and v != {}) or k == "quantization"}

    @classmethod
    def from_dict(cls, d: dict) -> "Artifact":
        q = Quantization.from_dict(d["quantization"]) if d.get("quantization") else None
        if "precision" in d and "compute" in d:
            precision, compute = d["precision"], d["compute"]
        elif q is not None:
            p = q.precision()
            precision, compute = p.label, p.compute
        else:
            precision, compute = "fp32", "fp32"
        return cls(name=d["name"], task=d.get("task", DEFAULT_TASK), format=d["format"], runtime=d["runtime"],
                   path=d["path"], precision=precision, compute=compute,
                   verification=Verification.from_dict(d["verification"]), description=d.get("description", ""),
                   quantization=q, buckets=d.get("buckets"), outputs=tuple(d.get("outputs", ("logits",))),
                   # records written before `extras` kept a format's facts as top-level keys: read them into it
                   extras=dict(d.get("extras") or {}) | {k: v for k, v in d.items() if k not in _FIELDS and v is not None})


_FIELDS = {"name", "task", "format", "runtime", "path", "precision", "compute", "verification", "description",
           "quantization", "buckets", "outputs", "extras"}


def artifacts_of(record: dict | None) -> list[Artifact]:
    """The artifacts a stage record (export or quantize) lists; none for a stage that has not run."""
    return [Artifact.from_dict(a) for a in (record or {}).get("artifacts", [])]
