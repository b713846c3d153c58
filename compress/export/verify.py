"""Check an artifact against the PyTorch student on real data, run the way a device runs it: max |Δ| of the outputs
and the task's agreement (label agreement; embeddings: mean cosine)."""

from __future__ import annotations

import numpy as np

from compress.artifacts import Verification
from compress.data.batching import Encoded, collate
from compress.evaluate import _output_array
from compress.progress import track


def device_logits(run, enc: Encoded, description: str | None = None) -> np.ndarray:
    """Logits of a numpy runtime (targets.runtime) over a split, measured the way a device runs the model: one
    text per call at its own length, no padding (a LiteRT model pads it to its smallest bucket itself).

    Padded batches would measure another model: a dynamically quantized model scales its activations per call,
    so a text's int8 logits depend on the texts beside it and on the padding; and this machine's int8 kernels
    (AVX2, AVX-512 VNNI, AMX, ARM dot-product) are the ones whose numerics count for the decision made here."""
    lengths = enc.lengths  # built per call: once
    order = sorted(range(len(enc)), key=lengths.__getitem__)  # similar shapes back to back: fewer re-plans
    out = None
    items = track(order, description, len(order)) if description else order
    for i in items:
        batch = collate(enc, [i])
        logits = run({k: v.numpy() for k, v in batch.items() if k != "labels"})
        if out is None:
            out = _output_array(enc, logits)
        if logits.ndim == 3:  # a tag per token: this row's own tokens (a LiteRT bucket may give more)
            n = lengths[i]
            out[i, :n] = logits[0, :n]
        else:
            out[i] = logits[0]
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def compare(reference: np.ndarray, candidate: np.ndarray, atol: float, min_agreement: float, task=None) -> Verification:
    """max |Δ| within atol and the task's agreement (label agreement; embeddings: mean cosine) at least the bar."""
    from compress.metrics import label_agreement
    from compress.token_classification.metrics import max_abs_diff

    diff = max_abs_diff(reference, candidate)
    agree = (task.agreement if task is not None else label_agreement)(reference, candidate)
    return Verification(
        max_abs_diff=diff,
        agreement=agree,
        rows=len(reference),
        passed=diff <= atol and agree >= min_agreement,
        atol=atol,
        min_agreement=min_agreement,
        agreement_name=task.agreement_name if task is not None else "label agreement",
    )
