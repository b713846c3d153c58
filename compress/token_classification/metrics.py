"""Entity-level scores with seqeval (conlleval's rules: an entity counts when its type and every word match) and
token-level agreement between two models' outputs. Outputs are [rows, tokens, tags]; labels [rows, tokens] with
compress.token_classification.align.IGNORE where no word starts."""

from __future__ import annotations

import numpy as np

from compress.token_classification.align import IGNORE


def tag_sequences(outputs: np.ndarray, labels: np.ndarray, names: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """(gold, predicted) tag names per sentence, one per word (its first piece)."""
    width = min(outputs.shape[1], labels.shape[1])
    pred = outputs[:, :width].argmax(-1)
    gold, guess = [], []
    for r in range(len(labels)):
        keep = labels[r, :width] != IGNORE
        gold.append([names[i] for i in labels[r, :width][keep]])
        guess.append([names[i] for i in pred[r][keep]])
    return gold, guess


def entity_f1(outputs: np.ndarray, labels: np.ndarray, names: list[str]) -> float:
    from seqeval.metrics import f1_score

    gold, guess = tag_sequences(outputs, labels, names)
    return float(f1_score(gold, guess, zero_division=0)) if any(gold) else 0.0


def entity_report(outputs: np.ndarray, labels: np.ndarray, names: list[str]) -> dict:
    """Micro precision / recall / F1 and, per entity type, precision, recall, F1 and how many gold entities."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    gold, guess = tag_sequences(outputs, labels, names)
    per_type = classification_report(gold, guess, output_dict=True, zero_division=0)
    types = {k: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
                 "support": int(v["support"])}
             for k, v in per_type.items() if not k.endswith(" avg")}
    words = sum(len(g) for g in gold)
    return {"precision": float(precision_score(gold, guess, zero_division=0)),
            "recall": float(recall_score(gold, guess, zero_division=0)),
            "f1": float(f1_score(gold, guess, zero_division=0)),
            "word_accuracy": float(sum(a == b for g, p in zip(gold, guess) for a, b in zip(g, p)) / max(words, 1)),
            "entities": sum(t["support"] for t in types.values()), "types": types}


def token_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Share of real tokens (not padding: the reference's row is not all zero) where both pick the same tag."""
    width = min(reference.shape[1], candidate.shape[1])
    ref, cand = reference[:, :width], candidate[:, :width]
    real = np.abs(ref).sum(-1) > 0
    if not real.any():
        return 0.0
    return float((ref.argmax(-1) == cand.argmax(-1))[real].mean())


def max_abs_diff(reference: np.ndarray, candidate: np.ndarray) -> float:
    if reference.ndim == 3:
        width = min(reference.shape[1], candidate.shape[1])
        return float(np.abs(reference[:, :width] - candidate[:, :width]).max()) if reference.size else 0.0
    return float(np.abs(reference - candidate).max())
