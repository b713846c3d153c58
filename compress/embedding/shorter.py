"""Shorter stored vectors: an on-device index of 100,000 documents at 384 float32 dimensions is 150 MB. The vectors are
turned (an orthonormal basis: the eigenvectors of the second moment of the teacher's vectors of the training text, by
decreasing eigenvalue) so that the leading dimensions carry most of the similarity, then cut to `dims` and stored as
float32, int8 (per-dimension ranges from the same vectors, sentence-transformers' `quantize_embeddings`) or binary
(one bit a dimension). The query stays float (it is computed on the device anyway) and is scored against the decoded
documents.

The turn is a rotation: at the full width every cosine is the teacher-space cosine, so the full vector stays in the
teacher's space, and a server that embeds the documents with the teacher applies the same basis to them. The basis
is fitted on the teacher's vectors (not the student's) so that student queries and teacher documents share it.

Stored with the student as `shorter_vectors.safetensors` (basis, int8 ranges) + `shorter_vectors.json` (dims).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.embedding.ranking import mrr_at_k
from compress.errors import UserError
from targets.vectors import cut, unit_rows as _l2

FILE = "shorter_vectors.safetensors"
META = "shorter_vectors.json"
STORAGE = ("float32", "int8", "binary")
BYTES_PER_DIM = {"float32": 4.0, "int8": 1.0, "binary": 1 / 8}
INDEX_DOCS = 100_000  # the index size the report states
FIT_ROWS = 4000  # teacher vectors the basis is fitted on (a 384 x 384 second moment is stable well before)
DEFAULT_DIMS = (256, 128, 64)


def resolve_dims(dims: list[int] | None, width: int) -> list[int]:
    """The recipe's embedding.truncate_dims for a vector of `width`: checked when given, else the defaults that fit."""
    if dims is not None:
        check_dims(dims, width, "embedding.truncate_dims")
        return sorted(set(dims), reverse=True)
    fitting = [d for d in DEFAULT_DIMS if d < width]
    return fitting or [d for d in (width // 2 - width // 2 % 8, width // 4 - width // 4 % 8) if d >= 8]


def check_dims(dims: list[int], width: int, where: str) -> None:
    """One line for a truncation the vectors cannot take (exit 2 through UserError)."""
    for d in dims:
        if d > width:
            raise UserError(f"{where}: {d} dimensions is more than the vector's {width}: use at most {width}")
        if d < 8 or d % 8:
            raise UserError(f"{where}: {d} dimensions is not a multiple of 8 (binary storage packs 8 a byte): "
                            f"use e.g. {max(8, d - d % 8)}")


@dataclass(frozen=True)
class ShorterVectors:
    basis: np.ndarray
    """(D, D) float32, orthonormal columns by decreasing eigenvalue of the teacher vectors' second moment."""
    ranges: dict[int, np.ndarray]
    """dims -> (2, dims) float32: each cut dimension's minimum and maximum over the fitting vectors (int8 storage)."""
    dims: tuple[int, ...]
    fitted_on: int
    """How many teacher vectors the basis was fitted on."""

    @classmethod
    def fit(cls, teacher_vectors: np.ndarray, dims: list[int]) -> "ShorterVectors":
        v = _l2(np.asarray(teacher_vectors, dtype=np.float64))
        check_dims(dims, v.shape[1], "embedding.truncate_dims")
        dims = [d for d in dims if d < v.shape[1]]  # the full width is always scored
        _, vectors = np.linalg.eigh(v.T @ v / len(v))
        basis = vectors[:, ::-1].astype(np.float32)
        shorter = cls(basis, {}, tuple(dims), len(v))
        for dim in shorter.widths:
            cut = shorter.turn(v, dim)
            shorter.ranges[dim] = np.stack([cut.min(0), cut.max(0)]).astype(np.float32)
        return shorter

    @property
    def widths(self) -> tuple[int, ...]:
        """The full width, then the shorter ones."""
        return tuple(dict.fromkeys((len(self.basis), *self.dims)))

    def turn(self, vectors: np.ndarray, dim: int) -> np.ndarray:
        """The leading `dim` dimensions of the turned (unit) vectors, normalised again (as a bundle cuts them)."""
        return cut(vectors, self.basis, dim)

    def stored(self, vectors: np.ndarray, dim: int, storage: str) -> np.ndarray:
        """Vectors as an index keeps them: float32, int8 codes, or packed bits."""
        from sentence_transformers.util.quantization import quantize_embeddings

        short = self.turn(vectors, dim)
        if storage == "float32":
            return short
        if storage == "int8":  # clipped to the fitted ranges first: quantize_embeddings wraps what lies outside
            lo, hi = self.ranges[dim]
            return quantize_embeddings(np.clip(short, lo, hi), "int8", ranges=self.ranges[dim])
        return quantize_embeddings(short, "ubinary")

    def decoded(self, stored: np.ndarray, dim: int, storage: str) -> np.ndarray:
        """What a search compares the float query with: int8 codes back to their values (each dimension's range in 256
        steps, as quantize_embeddings coded it), bits to ±1."""
        if storage == "int8":
            lo, hi = self.ranges[dim]
            return (stored.astype(np.float32) + 128) * ((hi - lo) / 255) + lo
        if storage == "binary":
            return np.unpackbits(stored, axis=1)[:, :dim].astype(np.float32) * 2 - 1
        return stored

    def scores(self, queries: np.ndarray, docs: np.ndarray, dim: int, storage: str) -> np.ndarray:
        """Query-document similarities as a search over the stored index computes them: the float query (computed on
        the device anyway) against the decoded documents."""
        return self.turn(queries, dim) @ self.decoded(self.stored(docs, dim, storage), dim, storage).T

    def save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"basis": self.basis, **{f"ranges_{d}": r for d, r in self.ranges.items()}}, str(Path(directory) / FILE))
        (Path(directory) / META).write_text(json.dumps({"dims": list(self.dims), "fitted_on": self.fitted_on,
                                                        "storage": list(STORAGE)}, indent=2))

    @classmethod
    def load(cls, directory: Path) -> "ShorterVectors | None":
        """The student's basis, or None when it was saved without one."""
        directory = Path(directory)
        if not (directory / FILE).is_file():
            return None
        from safetensors.numpy import load_file

        arrays = load_file(str(directory / FILE))
        meta = json.loads((directory / META).read_text())
        ranges = {int(k.split("_")[1]): v for k, v in arrays.items() if k.startswith("ranges_")}
        return cls(arrays["basis"], ranges, tuple(meta["dims"]), meta["fitted_on"])


def index_mb(dim: int, storage: str, docs: int = INDEX_DOCS) -> float:
    return docs * dim * BYTES_PER_DIM[storage] / 1e6


def shorter_scores(shorter: ShorterVectors, queries: np.ndarray, docs: np.ndarray,
                   teacher_docs: np.ndarray | None, k: int = 10) -> dict:
    """MRR@k per "dims/storage": the model's queries against its own documents and (asymmetric) the teacher's, and the
    size of an index of INDEX_DOCS documents."""
    out = {}
    for dim in shorter.widths:
        for storage in STORAGE:
            row = {f"mrr@{k}": mrr_at_k(shorter.scores(queries, docs, dim, storage), k),
                   "index_mb": round(index_mb(dim, storage), 2)}
            if teacher_docs is not None:
                row[f"asym_mrr@{k}"] = mrr_at_k(shorter.scores(queries, teacher_docs, dim, storage), k)
            out[f"{dim}/{storage}"] = row
    return out


def fit_for_run(run, directory: Path, teacher_vectors: np.ndarray | None = None) -> "ShorterVectors | None":
    """Fit the basis on the teacher's vectors of up to FIT_ROWS training texts (seeded) and save it with the student;
    None when the recipe asks for no shorter vectors. teacher_vectors: the teacher's vectors of the training rows in
    order (the distill stage's teacher cache holds them); without them the teacher embeds the chosen rows."""
    import random

    train = run.data.train
    rows = sorted(random.Random(run.recipe.seed).sample(range(len(train)), min(FIT_ROWS, len(train))))
    if teacher_vectors is not None and len(teacher_vectors) >= len(train):
        vectors = np.asarray(teacher_vectors[rows], dtype=np.float32)
    else:
        from compress.data.batching import encode
        from compress.evaluate import predict_logits

        vectors = predict_logits(run.load_teacher("evaluation"),
                                 encode(run.tokenizer, [train[i] for i in rows], run.recipe.data.max_length),
                                 description="teacher vectors for the shorter-vector basis")
    dims = resolve_dims(run.recipe.embedding.truncate_dims, vectors.shape[1])
    if not dims:
        return None
    shorter = ShorterVectors.fit(vectors, dims)
    shorter.save(directory)
    return shorter
