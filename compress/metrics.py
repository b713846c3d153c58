"""Task metrics on model outputs (numpy only, so a recipe can name them without loading torch)."""

from __future__ import annotations

import numpy as np


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(-1) == labels).mean())
