"""Logits and accuracy of a PyTorch classifier over an encoded split (batched, padding-aware)."""

from __future__ import annotations

import numpy as np
import torch

from compress.data.batching import Encoded, eval_batches, iterate
from compress.metrics import accuracy  # noqa: F401 (callers read it from here too)
from compress.progress import track


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k not in ("labels", "index")}


@torch.inference_mode()
def predict_logits(model, enc: Encoded, batch_size: int = 64, description: str | None = None) -> np.ndarray:
    was_training = model.training
    model.eval()
    out = np.zeros((len(enc), model.config.num_labels), dtype=np.float32)
    batches = eval_batches(enc, batch_size)
    it = iterate(enc, batches)
    if description:
        it = track(it, description, len(batches))
    device = next(model.parameters()).device
    for idx, batch in it:
        inputs = {k: v.to(device) for k, v in model_inputs(batch).items()}
        out[idx] = model(**inputs).logits.float().cpu().numpy()
    model.train(was_training)
    return out

