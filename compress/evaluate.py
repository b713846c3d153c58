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
    """Task outputs (task_output) for every row of `enc`, in its order."""
    was_training = model.training
    model.eval()
    width = getattr(model, "dim", None) or model.config.num_labels
    out = np.zeros((len(enc), width), dtype=np.float32)
    batches = eval_batches(enc, batch_size)
    it = iterate(enc, batches)
    if description:
        it = track(it, description, len(batches))
    device = next(model.parameters()).device
    for idx, batch in it:
        inputs = {k: v.to(device) for k, v in model_inputs(batch).items()}
        out[idx] = task_output(model(**inputs)).float().cpu().numpy()
    model.train(was_training)
    return out

