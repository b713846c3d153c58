"""A bundle's own acceptance check, runnable on any device: `python -m targets check BUNDLE`.

int8 kernels, and so int8 outputs, differ between CPUs (AVX2, AVX-512 VNNI, AMX, ARM dot-product): a model that
agreed with the PyTorch student on the build machine may not agree on a phone. So the bundle carries
`check.json` (the dev texts, the PyTorch student's outputs on them and the bars the build used), and this module
runs each model file on them here, one text per call, exactly as the bundle stage did when it built the bundle.

What is compared depends on the task's post-processing (MEASURES): a classifier's logits by label agreement, an
embedding model's vectors by mean cosine similarity (row by row, then averaged), a token classifier's logits by
token agreement; fp32 files also by max |Δ|.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from targets.bundle import Bundle, BundleError, Classifier, Embedder, Tagger, task_of
from targets.vectors import row_cosine
from targets.env import cpu_model, int8_isa

CHECK_FILE = "check.json"


@dataclass(frozen=True)
class Measure:
    """How one post-processing's outputs are held against the PyTorch student's on the check texts."""

    name: str
    """in messages: 'label agreement', 'mean cosine'"""
    field: str
    """the CheckResult field its score goes in"""
    bar: str
    """its bar in check.json's bars (and the CheckSet fields fp32_<bar>, quantized_<bar>)"""
    diff: str
    """what max |Δ| is of, in messages: 'logit', '' (a vector's values)"""
    outputs: Callable[[Bundle, dict, "CheckSet", int], np.ndarray]
    score: Callable[[np.ndarray, np.ndarray], float]
    """(outputs, reference) -> a score in [0, 1]"""
    accuracy: Callable[[np.ndarray, np.ndarray], float] | None
    """(outputs, the check set's labels) -> accuracy, for outputs that are logits over labels (None: no accuracy)"""
    digits: int
    """decimals of the score in messages (a cosine bar such as 0.9999 needs more than 4)"""


MEASURES = {
    Classifier.POSTPROCESS: Measure(
        "label agreement", "label_agreement", "min_label_agreement", "logit",
        lambda b, e, c, t: Classifier(b, runtime=e["file"], threads=t).logits(c.texts, c.pairs),
        lambda out, ref: float((out.argmax(-1) == ref.argmax(-1)).mean()),
        lambda out, labels: float((out.argmax(-1) == labels).mean()), 4),
    Embedder.POSTPROCESS: Measure(
        "mean cosine", "mean_cosine", "min_cosine", "",
        lambda b, e, c, t: Embedder(b, runtime=e["file"], threads=t).outputs(c.texts),
        lambda out, ref: float(row_cosine(out, ref).mean()), None, 6),
    Tagger.POSTPROCESS: Measure(
        "token agreement", "label_agreement", "min_label_agreement", "logit",
        lambda b, e, c, t: Tagger(b, runtime=e["file"], threads=t).logits(c.texts),
        lambda out, ref: _token_agreement(out, ref),
        lambda out, labels: _tag_accuracy(out, labels), 4),
}


def _token_agreement(out: np.ndarray, ref: np.ndarray) -> float:
    """Share of the reference's real tokens (rows not all zero: not padding) where both pick the same tag."""
    real = np.abs(ref).sum(-1) > 0
    return float((out.argmax(-1) == ref.argmax(-1))[real].mean()) if real.any() else 0.0


def _tag_accuracy(out: np.ndarray, labels: np.ndarray) -> float:
    """Share of words (their first pieces: labels not -100) tagged as the dev data tags them."""
    width = min(out.shape[1], labels.shape[1])
    tagged = labels[:, :width] != -100
    return float((out[:, :width].argmax(-1) == labels[:, :width])[tagged].mean()) if tagged.any() else 0.0


def measure_of(bundle: Bundle) -> Measure:
    task = task_of(bundle)
    if task.get("postprocess") not in MEASURES:
        raise BundleError(f"bundle {bundle.root} is a {task.get('name')} model (post-processing '{task.get('postprocess')}'): "
                          "this runner cannot check it; use the runner of the bert-compress version that wrote it")
    return MEASURES[task["postprocess"]]


@dataclass
class CheckSet:
    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray
    """the dev labels: a classifier's [rows], a token classifier's [rows, tokens] (-100: no tag); empty for an
    embedding bundle"""
    reference: np.ndarray
    """the PyTorch student's outputs on `texts`: logits [rows, labels], sentence vectors [rows, dim], or a token
    classifier's logits [rows, tokens, tags] (zeros past each text's tokens)"""
    fp32_atol: float
    # the bars: a classifier bundle has the label-agreement ones, an embedding bundle the cosine ones
    fp32_min_label_agreement: float | None = None
    quantized_min_label_agreement: float | None = None
    fp32_min_cosine: float | None = None
    quantized_min_cosine: float | None = None

    def bar(self, measure: Measure, quantized: bool) -> float | None:
        return getattr(self, f"{'quantized' if quantized else 'fp32'}_{measure.bar}")

    def write(self, path: Path) -> None:
        bars = {"fp32": {"atol": self.fp32_atol}, "quantized": {}}
        for m in MEASURES.values():  # the bars this set has (a task's own)
            for precision, quantized in (("fp32", False), ("quantized", True)):
                if self.bar(m, quantized) is not None:
                    bars[precision][m.bar] = self.bar(m, quantized)
        what = "sentence embeddings" if self.fp32_min_cosine is not None else "logits"
        doc = {"source": f"the dev split; {what} of the PyTorch student", "texts": self.texts, "pairs": self.pairs,
               "labels": np.asarray(self.labels).tolist(), "reference_logits": self.reference.astype(float).tolist(),
               "bars": bars}
        Path(path).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, bundle: Bundle) -> "CheckSet":
        path = bundle.root / CHECK_FILE
        if not path.is_file():
            raise BundleError(f"bundle {bundle.root} has no {CHECK_FILE}: it was made before bundles carried their check; "
                              "rebuild it with `bert-compress bundle --force`")
        measure = measure_of(bundle)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            bars = doc["bars"]
            optional = {f"{precision}_{m.bar}": float(bars[precision][m.bar]) for m in MEASURES.values()
                        for precision in ("fp32", "quantized") if m.bar in bars[precision]}
            checks = cls(doc["texts"], doc["pairs"], np.asarray(doc["labels"]), np.asarray(doc["reference_logits"], np.float32),
                         float(bars["fp32"]["atol"]), **optional)
            for quantized in (False, True):  # the bars of this bundle's task must be there
                if checks.bar(measure, quantized) is None:
                    raise KeyError(f"bars.{'quantized' if quantized else 'fp32'}.{measure.bar}")
            return checks
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{path} is not a valid check file ({type(exc).__name__}: {exc}): rebuild the bundle") from None

    def subset(self, rows: int) -> "CheckSet":
        pairs = self.pairs[:rows] if self.pairs else None
        return replace(self, texts=self.texts[:rows], pairs=pairs, labels=self.labels[:rows], reference=self.reference[:rows])


@dataclass
class CheckResult:
    file: str
    artifact: str | None
    rows: int
    max_abs_diff: float
    label_agreement: float | None
    """a classifier's (None for an embedding bundle)"""
    accuracy: float | None
    """on the dev labels, a classifier's (None for an embedding bundle)"""
    passed: bool
    failure: str | None
    """why it fails the bar (None when it passes)"""
    int8_isa: str
    cpu: str
    mean_cosine: float | None = None
    """an embedding model's, with the PyTorch student's vectors (None for a classifier)"""
    agreement_name: str = "label agreement"
    """what label_agreement measures: a token classifier's is token agreement"""

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line, as `python -m targets check` prints it."""
        if self.mean_cosine is None:
            what = f"max |Δlogit| vs PyTorch {self.max_abs_diff:.2e}, {self.agreement_name} {self.label_agreement:.4f}"
        else:
            what = f"max |Δ| vs PyTorch {self.max_abs_diff:.2e}, mean cosine {self.mean_cosine:.6f}"
        accuracy = f", accuracy {100 * self.accuracy:.2f}%" if self.accuracy is not None else ""
        return (f"{self.file}: {'pass' if self.passed else 'FAIL'}: {what} over {self.rows} texts{accuracy} "
                f"({self.int8_isa}, {self.cpu})" + (f": {self.failure}" if self.failure else ""))


def check_model(bundle: Bundle, entry: dict, checks: CheckSet, threads: int = 1) -> CheckResult:
    """Run one model file of the bundle over the check texts (raw text -> the runner's tokenizer -> runtime, one text
    per call) and compare its outputs with the PyTorch student's: fp32 files by max |Δ| and the task's measure (label
    agreement, mean cosine), quantized ones (their own rounding) by the measure alone."""
    measure = measure_of(bundle)
    out = measure.outputs(bundle, entry, checks, threads)
    if len(out) and out.shape != checks.reference.shape:
        raise BundleError(f"{entry['file']} gives outputs of shape {list(out.shape)} where {CHECK_FILE} has "
                          f"{list(checks.reference.shape)}: rebuild the bundle")
    diff = float(np.abs(out - checks.reference).max()) if len(out) else 0.0
    score = measure.score(out, checks.reference) if len(out) else 1.0
    quantized = bool(entry.get("quantization"))
    need = checks.bar(measure, quantized)
    if need is None:  # a set built in code with another task's bars (CheckSet.load refuses such a file)
        raise BundleError(f"the check set has no {'quantized' if quantized else 'fp32'}_{measure.bar} bar for {entry['file']}")
    failure = None
    if not quantized and diff > checks.fp32_atol:
        failure = f"max |Δ{measure.diff}| {diff:.2e} above the tolerance {checks.fp32_atol:g}"
    elif score < need:
        failure = f"{measure.name} {score:.{measure.digits}f} below {need}"
    accuracy = None
    if measure.accuracy is not None:
        accuracy = measure.accuracy(out, checks.labels) if len(out) else 0.0
    scores = {"label_agreement": None, measure.field: score,
              **({"agreement_name": measure.name} if measure.field == "label_agreement" else {})}
    return CheckResult(entry["file"], entry.get("artifact"), len(out), diff, accuracy=accuracy, passed=failure is None,
                       failure=failure, int8_isa=int8_isa(), cpu=cpu_model(), **scores)
