"""A bundle's own acceptance check, runnable on any device: `python -m targets check BUNDLE`.

int8 kernels, and so int8 logits, differ between CPUs (AVX2, AVX-512 VNNI, AMX, ARM dot-product): a model that
agreed with the PyTorch student on the build machine may not agree on a phone. So the bundle carries
`check.json` (the dev texts, the PyTorch student's logits on them and the bars the build used), and this module
runs each model file on them here, one text per call, exactly as the bundle stage did when it built the bundle.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from targets.bundle import Bundle, BundleError, Classifier
from targets.env import cpu_model, int8_isa

CHECK_FILE = "check.json"


@dataclass
class CheckSet:
    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray
    reference: np.ndarray
    """the PyTorch student's logits on `texts`"""
    fp32_atol: float
    fp32_min_label_agreement: float
    quantized_min_label_agreement: float

    def write(self, path: Path) -> None:
        doc = {"source": "the dev split; logits of the PyTorch student", "texts": self.texts, "pairs": self.pairs,
               "labels": self.labels.tolist(), "reference_logits": self.reference.astype(float).tolist(),
               "bars": {"fp32": {"atol": self.fp32_atol, "min_label_agreement": self.fp32_min_label_agreement},
                        "quantized": {"min_label_agreement": self.quantized_min_label_agreement}}}
        Path(path).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, bundle: Bundle) -> "CheckSet":
        path = bundle.root / CHECK_FILE
        if not path.is_file():
            raise BundleError(f"bundle {bundle.root} has no {CHECK_FILE}: it was made before bundles carried their check; "
                              "rebuild it with `bert-compress bundle --force`")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            bars = doc["bars"]
            return cls(doc["texts"], doc["pairs"], np.asarray(doc["labels"]), np.asarray(doc["reference_logits"], np.float32),
                       float(bars["fp32"]["atol"]), float(bars["fp32"]["min_label_agreement"]),
                       float(bars["quantized"]["min_label_agreement"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{path} is not a valid check file ({type(exc).__name__}: {exc}): rebuild the bundle") from None

    def subset(self, rows: int) -> "CheckSet":
        pairs = self.pairs[:rows] if self.pairs else None
        return CheckSet(self.texts[:rows], pairs, self.labels[:rows], self.reference[:rows], self.fp32_atol,
                        self.fp32_min_label_agreement, self.quantized_min_label_agreement)


@dataclass
class CheckResult:
    file: str
    artifact: str | None
    rows: int
    max_abs_diff: float
    label_agreement: float
    accuracy: float
    passed: bool
    failure: str | None
    """why it fails the bar (None when it passes)"""
    int8_isa: str
    cpu: str

    def as_dict(self) -> dict:
        return asdict(self)


def check_model(bundle: Bundle, entry: dict, checks: CheckSet, threads: int = 1) -> CheckResult:
    """Run one model file of the bundle over the check texts (raw text -> the runner's tokenizer -> runtime, one text
    per call) and compare its logits with the PyTorch student's: fp32 files by max |Δlogit| and label agreement,
    quantized ones (their own rounding) by label agreement."""
    logits = Classifier(bundle, runtime=entry["file"], threads=threads).logits(checks.texts, checks.pairs)
    diff = float(np.abs(logits - checks.reference).max()) if len(logits) else 0.0
    agreement = float((logits.argmax(-1) == checks.reference.argmax(-1)).mean()) if len(logits) else 1.0
    quantized = bool(entry.get("quantization"))
    need = checks.quantized_min_label_agreement if quantized else checks.fp32_min_label_agreement
    failure = None
    if not quantized and diff > checks.fp32_atol:
        failure = f"max |Δlogit| {diff:.2e} above the tolerance {checks.fp32_atol:g}"
    elif agreement < need:
        failure = f"label agreement {agreement:.4f} below {need}"
    accuracy = float((logits.argmax(-1) == checks.labels).mean()) if len(logits) else 0.0
    return CheckResult(entry["file"], entry.get("artifact"), len(logits), diff, agreement, accuracy, failure is None,
                       failure, int8_isa(), cpu_model())
