"""Each distillation loss against an independent hand computation (numpy), padding masked."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from compress.distill.losses import REGISTRY, CombinedLoss, validate_terms
from compress.distill.losses.cosine import hidden_cosine
from compress.distill.losses.hard_ce import hard_ce
from compress.distill.losses.soft_kl import soft_kl


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def out(logits=None, hidden=None):
    return SimpleNamespace(logits=logits, hidden_states=None if hidden is None else (hidden * 0, hidden))


def test_soft_kl_matches_hand_computation():
    zs = np.array([[1.0, -0.5, 0.2], [0.3, 0.3, 2.0]])
    zt = np.array([[2.0, 0.0, -1.0], [-1.0, 0.5, 1.5]])
    t = 2.0
    ps, pt = _softmax(zs / t), _softmax(zt / t)
    expected = np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=-1)) * t * t
    got = soft_kl(out(torch.tensor(zs)), out(torch.tensor(zt)), {}, temperature=t)
    assert math.isclose(float(got), expected, rel_tol=1e-9)


def test_soft_kl_is_zero_for_equal_logits():
    z = torch.randn(4, 2, dtype=torch.float64)
    assert float(soft_kl(out(z), out(z.clone()), {}, temperature=3.0)) == pytest.approx(0.0, abs=1e-7)


def test_hard_ce_matches_hand_computation():
    z = np.array([[2.0, -1.0], [0.5, 1.5], [0.0, 0.0]])
    y = np.array([0, 1, 1])
    expected = -np.mean(np.log(_softmax(z)[np.arange(3), y]))
    got = hard_ce(out(torch.tensor(z)), None, {"labels": torch.tensor(y)})
    assert math.isclose(float(got), expected, rel_tol=1e-9)


def test_hidden_cosine_matches_hand_computation_and_ignores_padding():
    rng = np.random.default_rng(0)
    hs, ht = rng.normal(size=(2, 4, 5)), rng.normal(size=(2, 4, 5))
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    cos = [
        hs[b, i] @ ht[b, i] / (np.linalg.norm(hs[b, i]) * np.linalg.norm(ht[b, i]))
        for b in range(2) for i in range(4) if mask[b, i]
    ]
    expected = np.mean(1 - np.array(cos))
    batch = {"attention_mask": torch.tensor(mask)}
    got = hidden_cosine(out(hidden=torch.tensor(hs)), out(hidden=torch.tensor(ht)), batch)
    assert math.isclose(float(got), expected, rel_tol=1e-9)
    # Whatever sits at padded positions must not matter.
    hs2 = hs.copy()
    hs2[0, 3] = 1e3
    hs2[1, 2:] = -7.0
    got2 = hidden_cosine(out(hidden=torch.tensor(hs2)), out(hidden=torch.tensor(ht)), batch)
    assert float(got2) == pytest.approx(float(got), rel=1e-12)


def test_combined_loss_is_the_weighted_sum():
    torch.manual_seed(0)
    zs, zt = torch.randn(3, 2), torch.randn(3, 2)
    hs, ht = torch.randn(3, 4, 6), torch.randn(3, 4, 6)
    batch = {"labels": torch.tensor([0, 1, 1]), "attention_mask": torch.ones(3, 4, dtype=torch.long)}
    loss = CombinedLoss({"distilbert_soft": {"weight": 5.0, "temperature": 2.0}, "hard_ce": {"weight": 2.0},
                         "hidden_cosine": {"weight": 1.0}})
    assert loss.needs == {"logits", "hidden_states"}
    total, parts = loss(out(zs, hs), out(zt, ht), batch)
    expected = 5 * soft_kl(out(zs), out(zt), batch, 2.0) + 2 * hard_ce(out(zs), None, batch) + hidden_cosine(out(hidden=hs), out(hidden=ht), batch)
    assert float(total) == pytest.approx(float(expected), rel=1e-6)
    assert set(parts) == {"distilbert_soft", "hard_ce", "hidden_cosine"}


def test_zero_weight_terms_are_not_computed():
    loss = CombinedLoss({"hard_ce": {"weight": 1.0}, "hidden_cosine": {"weight": 0.0}})
    assert loss.needs == {"logits"}


@pytest.mark.parametrize(
    "terms, message",
    [
        ({"nope": {}}, "unknown loss 'nope'"),
        ({"hard_ce": {"weight": -1}}, "negative weight"),
        ({"distilbert_soft": {"temperature": 0}}, "temperature"),
        ({"distilbert_soft": {"temp": 2}}, "allowed: temperature"),
    ],
)
def test_bad_loss_settings_are_refused(terms, message):
    with pytest.raises(ValueError, match=message):
        validate_terms(terms)


def test_registry_names():
    assert {"distilbert_soft", "hard_ce", "hidden_cosine"} <= set(REGISTRY)


# ---- losses on the structure of an embedding batch (issue 36) ---------------------------------------------------
def _vectors(v):
    return SimpleNamespace(sentence_embedding=torch.as_tensor(v, dtype=torch.float64))


def _row_kl(target, logits):
    p, q = _softmax(target), _softmax(logits)
    keep = p > 0
    return float(np.mean(np.sum(np.where(keep, p * (np.log(np.where(keep, p, 1)) - np.log(q)), 0.0), axis=-1)))


def _cos(a, b):
    a, b = a / np.linalg.norm(a, axis=-1, keepdims=True), b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


def test_embedding_batch_kl_matches_hand_computation_without_the_diagonal():
    from compress.distill.losses.embedding_batch_kl import embedding_batch_kl

    rng = np.random.default_rng(0)
    s, t, tau = rng.normal(size=(5, 8)), rng.normal(size=(5, 8)), 0.1
    # the diagonal has no weight: the softmax over j != i only (a huge negative stands for -inf here)
    off = np.where(np.eye(5, dtype=bool), -1e9, 0.0)
    expected = _row_kl(_cos(t, t) / tau + off, _cos(s, s) / tau + off)
    got = embedding_batch_kl(_vectors(s), _vectors(t), {}, temperature=tau)
    assert float(got) == pytest.approx(expected, rel=1e-9)
    assert float(embedding_batch_kl(_vectors(2 * t), _vectors(t), {}, temperature=tau)) == pytest.approx(0.0, abs=1e-12)


def test_embedding_asymmetric_scores_student_queries_against_teacher_documents():
    from compress.distill.losses.embedding_asymmetric import embedding_asymmetric

    rng = np.random.default_rng(1)
    s, t, tau = rng.normal(size=(4, 6)), rng.normal(size=(4, 6)), 0.05
    expected = _row_kl(_cos(t, t) / tau, _cos(s, t) / tau)
    student = torch.tensor(s, requires_grad=True)
    teacher = torch.tensor(t, requires_grad=True)
    got = embedding_asymmetric(SimpleNamespace(sentence_embedding=student), SimpleNamespace(sentence_embedding=teacher), {},
                               temperature=tau)
    assert float(got) == pytest.approx(expected, rel=1e-9)
    got.backward()
    assert student.grad is not None and float(student.grad.abs().sum()) > 0 and teacher.grad is None  # the teacher is fixed
    assert float(embedding_asymmetric(_vectors(t), _vectors(t), {}, temperature=tau)) == pytest.approx(0.0, abs=1e-12)


def test_batch_losses_of_tiny_batches_are_zero_and_keep_the_graph():
    from compress.distill.losses.embedding_asymmetric import embedding_asymmetric
    from compress.distill.losses.embedding_batch_kl import embedding_batch_kl

    one = torch.randn(2, 4, requires_grad=True)
    for fn in (embedding_batch_kl, embedding_asymmetric):
        loss = fn(SimpleNamespace(sentence_embedding=one[:1]), _vectors(torch.randn(1, 4)), {})
        assert float(loss) == 0.0 and loss.requires_grad


def test_batch_losses_take_a_temperature_and_refuse_other_settings():
    terms = validate_terms({"embedding_batch_kl": {"temperature": 0.1}, "embedding_asymmetric": {"weight": 0.5}})
    assert terms["embedding_batch_kl"][1].temperature == 0.1 and terms["embedding_asymmetric"][0] == 0.5
    with pytest.raises(ValueError, match="embedding_batch_kl"):
        validate_terms({"embedding_batch_kl": {"tau": 0.1}})
    with pytest.raises(ValueError, match="embedding_asymmetric"):
        validate_terms({"embedding_asymmetric": {"temperature": 0}})
