"""Shorter stored vectors (compress.embedding.shorter): the turn keeps every cosine at full width, the leading
dimensions carry the similarity, int8 / binary storage, the dims checks, and the basis round trip."""

from __future__ import annotations

import numpy as np
import pytest

from compress.embedding.shorter import ShorterVectors, check_dims, mrr_at_k, resolve_dims, shorter_scores
from compress.errors import UserError


def _vectors(n: int, d: int = 64, seed: int = 0) -> np.ndarray:
    """Vectors whose variance sits in a few random directions (as a sentence encoder's does), plus noise."""
    directions = np.linalg.qr(np.random.default_rng(0).normal(size=(d, d)))[0][:, :12]  # the same for every sample
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)) * np.linspace(3, 0.5, 12) @ directions.T + 0.05 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_the_turn_keeps_every_cosine_at_full_width_and_puts_the_similarity_first():
    fit, x = _vectors(2000), _vectors(50, seed=1)
    sv = ShorterVectors.fit(fit, [32, 16])
    assert np.allclose(sv.basis.T @ sv.basis, np.eye(64), atol=1e-5)
    full = sv.turn(x, 64)
    assert np.allclose(full @ full.T, x @ x.T, atol=1e-5)
    # 16 turned dimensions keep the similarities far better than the first 16 raw ones
    cut, raw = sv.turn(x, 16), x[:, :16] / np.linalg.norm(x[:, :16], axis=1, keepdims=True)
    assert np.abs(cut @ cut.T - x @ x.T).mean() < 0.5 * np.abs(raw @ raw.T - x @ x.T).mean()


def test_storage_kinds_and_their_sizes():
    sv = ShorterVectors.fit(_vectors(500), [32])
    x = _vectors(10, seed=2)
    assert sv.stored(x, 32, "float32").shape == (10, 32)
    codes = sv.stored(x, 32, "int8")
    assert codes.dtype == np.int8 and codes.shape == (10, 32)
    bits = sv.stored(x, 32, "binary")
    assert bits.dtype == np.uint8 and bits.shape == (10, 4)


def test_queries_find_their_documents_with_shorter_vectors():
    docs = _vectors(200, seed=3)
    queries = docs + 0.02 * np.random.default_rng(4).normal(size=docs.shape).astype(np.float32)
    sv = ShorterVectors.fit(_vectors(2000), [32, 16])
    rows = shorter_scores(sv, queries, docs, docs)
    assert set(rows) == {f"{d}/{s}" for d in (64, 32, 16) for s in ("float32", "int8", "binary")}
    assert rows["64/float32"]["mrr@10"] > 0.95 and rows["64/float32"]["index_mb"] == 25.6
    assert rows["16/binary"]["index_mb"] == 0.2
    assert rows["64/float32"]["mrr@10"] >= rows["16/float32"]["mrr@10"] > 0.1


def test_ties_count_against_the_relevant_document():
    assert mrr_at_k(np.ones((4, 4))) == 0.25  # all tied: rank 4, not 1
    assert mrr_at_k(np.eye(3)) == 1.0


def test_the_basis_survives_a_round_trip(tmp_path):
    sv = ShorterVectors.fit(_vectors(300), [16, 8])
    sv.save(tmp_path)
    back = ShorterVectors.load(tmp_path)
    assert back.dims == (16, 8) and back.fitted_on == 300 and np.array_equal(back.basis, sv.basis)
    assert all(np.array_equal(back.ranges[d], sv.ranges[d]) for d in (64, 16, 8))
    assert ShorterVectors.load(tmp_path / "none") is None


@pytest.mark.parametrize("dims, message", [([512], "more than the vector's 384"), ([100], "not a multiple of 8"),
                                           ([0], "not a multiple of 8")])
def test_a_width_the_vector_cannot_take_is_refused(dims, message):
    with pytest.raises(UserError, match=message):
        check_dims(dims, 384, "embedding.truncate_dims")


def test_default_widths_fit_the_vector():
    assert resolve_dims(None, 384) == [256, 128, 64]
    assert resolve_dims(None, 32) == [16, 8]
    assert resolve_dims([64, 128, 64], 384) == [128, 64]
    assert resolve_dims([], 384) == []
