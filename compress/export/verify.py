"""Check an artifact against the PyTorch student on real data: max |Δlogit| and label agreement."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from compress.data.batching import Encoded, collate, eval_batches
from compress.progress import track


@dataclass
class Verification:
    max_abs_diff: float
    label_agreement: float
    rows: int
    passed: bool
    atol: float
    min_label_agreement: float

    def as_dict(self) -> dict:
        return asdict(self)


def runtime_logits(run, enc: Encoded, batch_size: int = 32, description: str | None = None) -> np.ndarray:
    """Logits of a numpy runtime (targets.runtime) over a split, in the split's order."""
    batches = eval_batches(enc, batch_size)
    out = None
    items = track(batches, description, len(batches)) if description else batches
    for idx in items:
        batch = collate(enc, idx)
        logits = run({k: v.numpy() for k, v in batch.items() if k != "labels"})
        if out is None:
            out = np.zeros((len(enc), logits.shape[-1]), dtype=np.float32)
        out[idx] = logits
    return out


def compare(reference: np.ndarray, candidate: np.ndarray, atol: float, min_label_agreement: float) -> Verification:
    diff = float(np.abs(reference - candidate).max())
    agree = float((reference.argmax(-1) == candidate.argmax(-1)).mean())
    return Verification(
        max_abs_diff=diff,
        label_agreement=agree,
        rows=len(reference),
        passed=diff <= atol and agree >= min_label_agreement,
        atol=atol,
        min_label_agreement=min_label_agreement,
    )
