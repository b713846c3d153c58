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


def retained_interval(metric, model: tuple[np.ndarray, np.ndarray], teacher: tuple[np.ndarray, np.ndarray],
                      rounds: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float] | None:
    """A paired bootstrap interval of metric(model) / metric(teacher) over the evaluated rows. model, teacher: each
    one's (outputs, labels) on the same rows, in the same order (a token classifier's labels follow its own
    tokenizer). The rows are resampled with replacement `rounds` times and both models scored on the same resample:
    how far the share of the teacher's quality a model keeps could move by the luck of which rows were in the split
    (on 1,419 rows one accuracy point is within it). None when the teacher scores 0 on every resample."""
    rng = np.random.default_rng(seed)
    n = len(model[1])
    ratios = []
    for _ in range(rounds):
        rows = rng.integers(0, n, n)
        t = metric(teacher[0][rows], teacher[1][rows])
        if t > 0:
            ratios.append(metric(model[0][rows], model[1][rows]) / t)
    if not ratios:
        return None
    lo, hi = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
