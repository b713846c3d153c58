"""A PyTorch model's task outputs over an encoded split (batched, padding-aware): a classifier's logits, a sentence
encoder's vectors."""

from __future__ import annotations

import numpy as np
import torch

from compress.data.batching import Encoded, eval_batches, iterate
from compress.metrics import accuracy  # noqa: F401 (callers read it from here too)
from compress.progress import track


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k not in ("labels", "index")}


def task_output(out) -> torch.Tensor:
    """The output a task is judged on: `sentence_embedding` of a sentence encoder, else the logits."""
    vectors = getattr(out, "sentence_embedding", None)
    return vectors if vectors is not None else out.logits


@torch.inference_mode()
def predict_logits(model, enc: Encoded, batch_size: int = 64, description: str | None = None) -> np.ndarray:
    """Task outputs (task_output) for every row of `enc`, in its order: [rows, width], or for a token classifier
    [rows, longest row, tags] with zeros past each row's own length (padding gives no outputs)."""
    was_training = model.training
    model.eval()
    out = None
    batches = eval_batches(enc, batch_size)
    it = iterate(enc, batches)
    if description:
        it = track(it, description, len(batches))
    device = next(model.parameters()).device
    for idx, batch in it:
        inputs = {k: v.to(device) for k, v in model_inputs(batch).items()}
        values = task_output(model(**inputs)).float().cpu().numpy()
        if out is None:
            out = _output_array(enc, values)
        if values.ndim == 3:
            values = values * batch["attention_mask"].numpy()[..., None]
            out[idx, : values.shape[1]] = values
        else:
            out[idx] = values
    model.train(was_training)
    if out is None:  # no rows
        width = getattr(model, "dim", None) or model.config.num_labels
        out = np.zeros((0, width), dtype=np.float32)
    return out


def _output_array(enc: Encoded, first: np.ndarray) -> np.ndarray:
    """Where a split's outputs go, shaped after the first batch's: a row per text, or a row of tokens per text."""
    if first.ndim == 3:
        return np.zeros((len(enc), max(enc.lengths), first.shape[-1]), dtype=np.float32)
    return np.zeros((len(enc), first.shape[-1]), dtype=np.float32)
