"""What the bench stage measures of an embedding model's quality, beside its latency: fidelity to the teacher on held-out
text, retrieval (recall@10 / MRR@10, and asymmetric: the model's queries against the teacher's document vectors) and
the linear probe. Every model, PyTorch or runtime file, is called through `predict(encoded) -> vectors`, the way
the bench stage runs it for the classifier's accuracy (every task's metric is its `quality`)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from compress.data.batching import Encoded, encode
from compress.data.readers import Example


class EmbeddingQuality:
    def __init__(self, run):
        from compress.embedding.data import suite_for

        self.run = run
        self.suite = suite_for(run.data, run.recipe.data.path, run.recipe.seed, run.recipe.quick)
        self.teacher_vectors = None
        self.teacher_row = None

    @property
    def shorter(self):
        """The student's shorter-vector basis (compress.embedding.shorter), None when it has none. Read when asked:
        this object is made before the student is distilled."""
        from compress.embedding.shorter import ShorterVectors

        return ShorterVectors.load(self.run.layout.student)

    def _embed(self, predict: Callable[[Encoded], np.ndarray], tokenizer):
        max_length = self.run.recipe.data.max_length
        return lambda texts: predict(encode(tokenizer, [Example(t, -1) for t in texts], max_length))

    def teacher(self, predict, tokenizer) -> dict:
        from compress.embedding.evaluate import teacher_scores

        self.teacher_row, self.teacher_vectors = teacher_scores(self._embed(predict, tokenizer), self.suite,
                                                                shorter=self.shorter)
        return self._entry(self.teacher_row)

    def score(self, predict, tokenizer) -> dict:
        from compress.embedding.evaluate import evaluate_embeddings

        return self._entry(evaluate_embeddings(self._embed(predict, tokenizer), self.suite, self.teacher_vectors,
                                               shorter=self.shorter))

    def _entry(self, scores) -> dict:
        """`quality` holds the task metric (fidelity), as for every task; `embedding` the whole row."""
        row = scores.to_dict() | {"relative": scores.relative_to(self.teacher_row)}
        return {"quality": scores.fidelity, "embedding": row}

    def evaluated_texts(self) -> list[str]:
        """Every text the evaluation reads: the transfer set leaves them out (the retrieval passages are not dev / test
        rows)."""
        r, p = self.suite.retrieval, self.suite.probe
        return list(self.suite.held_out) + (r.queries + r.documents if r else []) + (p.test_texts if p else [])

    def describe(self) -> dict:
        r, p = self.suite.retrieval, self.suite.probe
        return {"held_out": len(self.suite.held_out), "retrieval_pairs": len(r) if r else 0,
                "retrieval": "inverse cloze: one sentence of a passage as the query, the rest as its document",
                "probe": {"train": len(p.train_texts), "test": len(p.test_texts), "labels": p.label_names} if p else None}
