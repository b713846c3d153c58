"""Task metrics on model outputs (numpy only, so a recipe can name them without loading torch)."""

from __future__ import annotations

import numpy as np


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(-1) == labels).mean())


def label_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Share of rows where two classifiers pick the same label."""
    return float((reference.argmax(-1) == candidate.argmax(-1)).mean())


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Row-wise cosine similarity, averaged: how close two models' vectors for the same texts are."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return float((num / np.maximum(den, 1e-12)).mean()) if len(a) else 0.0


mean_cosine.label = "fidelity (mean cosine to the teacher)"  # what training logs call it as a dev metric
