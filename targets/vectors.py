"""Sentence vectors on the device (numpy, and safetensors for the basis; no PyTorch): cosine similarities, and shorter
vectors: a bundle's `shorter_vectors.safetensors` holds a basis that turns a vector so that its leading dimensions
carry most of the similarity; turned, cut to `dim` and normalised again, vectors make a smaller index. At full width
the turn changes no cosine. compress.embedding.shorter fits the basis and scores the widths."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (float64); an all-zero row stays zero."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] cosine similarities of the rows of a and b."""
    return unit_rows(a) @ unit_rows(b).T


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of a with the same row of b."""
    return (unit_rows(a) * unit_rows(b)).sum(axis=-1)


def load_basis(path: Path) -> np.ndarray:
    """[D, D] float32, the columns by decreasing share of the similarity."""
    from safetensors.numpy import load_file

    return load_file(str(path))["basis"]


def cut(vectors: np.ndarray, basis: np.ndarray, dim: int) -> np.ndarray:
    """The leading `dim` dimensions of the turned unit vectors, normalised again (float32)."""
    return unit_rows(unit_rows(vectors) @ basis[:, :dim]).astype(np.float32)


class Shorter:
    """A bundle's basis and the widths metadata.json offers (embedding.shorter: file, dims)."""

    def __init__(self, path: Path, dims: list[int], width: int):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: copy the whole bundle (or its .zip)")
        self.basis, self.widths = load_basis(path), [width, *dims]

    def cut(self, vectors: np.ndarray, dim: int) -> np.ndarray:
        if dim not in self.widths:
            raise ValueError(f"dim {dim} is not one of this bundle's widths {self.widths}")
        return cut(vectors, self.basis, dim)
