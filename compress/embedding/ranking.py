"""Where the relevant document ranks, under one tie rule for every retrieval measure (compress.embedding.evaluate's
cosine retrieval, compress.embedding.shorter's int8 and binary stored vectors).

Tie rule (pessimistic): every other document scoring >= the relevant one ranks ahead of it. It is deterministic and
gives a degenerate model (all vectors equal) the worst rank, not rank 1 for whichever document happens to come first;
int8 codes and bits tie often. Scores within float32 rounding of the relevant one (1e-6 of its size) tie too: the
same vectors multiplied at another row of a batch, or turned by an orthonormal basis, can come out a few ulps apart
on some CPUs (AMX), and a tie must not turn on that.
"""

from __future__ import annotations

import numpy as np


def ranks_of_scores(scores: np.ndarray, relevant: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of each row's relevant column (column `relevant[r]`, by default column r)."""
    rows = np.arange(scores.shape[0])
    own = scores[rows, rows if relevant is None else relevant][:, None]
    # >= counts the relevant document itself once, which is the "1 +"
    return (scores >= own - 1e-6 * np.maximum(1.0, np.abs(own))).sum(axis=1)


def mrr_at_k(scores: np.ndarray, k: int = 10) -> float:
    """Mean of 1/rank (0 beyond k) where query i's relevant document is document i (the retrieval set's layout)."""
    rank = ranks_of_scores(scores)
    return float(np.where(rank <= k, 1.0 / rank, 0.0).mean())
