"""MiniLMv2 relation loss: against an independent NumPy computation, zero for a copy of the teacher, blind to
padding, any head count, refused settings, and the teacher-output cache giving the same query/key/value."""

import copy

import numpy as np
import pytest
import torch

from compress.distill.distiller import Distiller
from compress.distill.losses import CombinedLoss
from compress.errors import UserError
from tests.test_tinybert import batch_with_padding, bert


def _np_relation_kl(xs, xt, mask, r):
    """KL(teacher ‖ student) of softmax(X_r X_rᵀ / √d) over real keys, mean over relation heads and real queries."""
    total, count = 0.0, 0
    for b in range(xs.shape[0]):
        n = int(mask[b].sum())
        for head in range(r):
            rel = []
            for x in (xs, xt):
                d = x.shape[-1] // r
                part = x[b, :n, head * d:(head + 1) * d].astype(np.float64)
                logits = part @ part.T / np.sqrt(d)
                logits -= logits.max(-1, keepdims=True)
                p = np.exp(logits)
                rel.append(p / p.sum(-1, keepdims=True))
            ps, pt = rel
            total += (pt * (np.log(pt) - np.log(ps))).sum()
            count += n
    return total / count


def test_relation_loss_matches_numpy_with_other_head_counts_and_widths():
    teacher, student = bert(layers=4, hidden=32, heads=4), bert(layers=2, hidden=16, heads=1, ffn=32, seed=3)
    batch = batch_with_padding()
    distiller = Distiller(teacher, student, [(1, 2), (2, 4)])
    loss = CombinedLoss({"minilm_relation": {"relation_heads": 2, "relations": ["query", "value"]}})
    distiller.check(loss)  # 1 student head vs 4 teacher heads, widths 16 vs 32: no projection needed
    s_out, t_out = distiller.outputs(batch, loss.needs)
    total, parts = loss(s_out, t_out, batch, distiller)
    mask = batch["attention_mask"].numpy()
    expected = sum(_np_relation_kl(s_out.qkv[1][i].detach().numpy(), t_out.qkv[3][i].numpy(), mask, 2) for i in (0, 2))
    assert float(total.detach()) == pytest.approx(expected, rel=1e-3)
    total.backward()  # reaches the student's last-layer query and value projections
    layer = student.bert.encoder.layer[1].attention.self
    assert layer.query.weight.grad.abs().sum() > 0 and layer.value.weight.grad.abs().sum() > 0
    assert layer.key.weight.grad is None or layer.key.weight.grad.abs().sum() == 0


def test_relation_loss_is_zero_for_a_copy_and_ignores_padding():
    teacher = bert(layers=2, hidden=32, heads=4)
    distiller = Distiller(teacher, copy.deepcopy(teacher), [(1, 1), (2, 2)])
    loss = CombinedLoss({"minilm_relation": {"relation_heads": 8}})
    batch = batch_with_padding()
    assert float(distiller.loss(batch, loss)[0]) == pytest.approx(0.0, abs=1e-6)
    other = Distiller(teacher, bert(layers=2, hidden=32, heads=4, seed=5), [(1, 1), (2, 2)])
    value = float(other.loss(batch, loss)[0])
    assert value > 1e-5  # random-init BERTs (weights ~0.02) have near-uniform relations: small, not zero
    wider = {k: torch.cat([v, torch.zeros_like(v[:, :3]) if k != "labels" else v[:0]], dim=1) if v.ndim == 2 else v
             for k, v in batch.items()}  # three more padded columns change nothing
    assert float(other.loss(wider, loss)[0]) == pytest.approx(value, rel=1e-5)


def test_relation_heads_must_divide_both_widths():
    teacher, student = bert(layers=2, hidden=32, heads=4), bert(layers=1, hidden=24, heads=2, ffn=32)
    with pytest.raises(UserError, match=r"relation_heads 16 does not divide the attention width of the student \(24\): use one of \[1, 2, 4, 8\]"):
        Distiller(teacher, student, [(1, 2)]).check(CombinedLoss({"minilm_relation": {"relation_heads": 16}}))
    with pytest.raises(ValueError, match="relations"):
        CombinedLoss({"minilm_relation": {"relations": ["queries"]}})


def test_teacher_cache_keeps_the_mapped_layers_query_key_value(tmp_path):
    from compress.data.batching import Encoded, collate
    from compress.distill.teacher_cache import open_or_build, plan_for

    teacher, student = bert(layers=4, hidden=32, heads=4), bert(layers=2, hidden=16, heads=2, ffn=32)
    distiller = Distiller(teacher, student, [(1, 2), (2, 4)])
    loss = CombinedLoss({"minilm_relation": {"relation_heads": 4}, "distilbert_soft": {}})
    plan = plan_for([loss], distiller.layer_map, 4)
    assert plan.qkv == (4,) and plan.logits and not plan.hidden and not plan.attention
    g = torch.Generator().manual_seed(0)
    rows = [torch.randint(5, 100, (n,), generator=g).tolist() for n in (5, 9, 3, 7)]
    enc = Encoded({"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows],
                   "token_type_ids": [[0] * len(r) for r in rows]}, np.array([0, 1, 0, 1]), 0)
    cache = open_or_build(tmp_path / "c", distiller, enc, plan, {"teacher": "t", "data": "d"}, "float32", False, "task")
    batch = collate(enc, [2, 0, 1])
    batch["index"] = torch.tensor([2, 0, 1])
    cached, live = cache.outputs(batch), distiller.teacher_outputs(batch, loss.needs)
    mask = batch["attention_mask"].bool()
    for a, b in zip(cached.qkv[3], live.qkv[3]):
        torch.testing.assert_close(a[mask], b[mask], atol=1e-5, rtol=1e-5)
    assert cached.qkv[0] is None
    s_out = distiller._run(student, batch, loss.needs)
    torch.testing.assert_close(loss(s_out, cached, batch, distiller)[0], loss(s_out, live, batch, distiller)[0], atol=1e-5, rtol=1e-4)
