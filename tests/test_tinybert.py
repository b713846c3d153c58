"""TinyBERT pieces: score capture, each loss against an independent computation, projections, layer maps."""


import numpy as np
import pytest
import torch

from compress.distill.capture import ScoreCapture
from compress.distill.distiller import Distiller, Outputs
from compress.distill.losses import CombinedLoss
from compress.distill.losses.tinybert_attention import tinybert_attention
from compress.distill.losses.tinybert_embedding import tinybert_embedding
from compress.distill.losses.tinybert_hidden import tinybert_hidden
from compress.distill.losses.tinybert_prediction import tinybert_prediction
from compress.distill.mapping import LayerMapConfig, build_layer_map
from compress.errors import UserError
from compress.recipe import StudentConfig
from compress.student import build_student


def bert(layers=4, hidden=32, heads=4, ffn=64, labels=2, seed=0, attn="sdpa"):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=100, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=ffn, num_labels=labels, max_position_embeddings=64)
    cfg._attn_implementation = attn
    return BertForSequenceClassification(cfg).eval()


def batch_with_padding(b=3, s=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (b, s), generator=g)
    mask = torch.ones(b, s, dtype=torch.long)
    mask[0, 4:] = 0
    mask[2, 2:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
            "labels": torch.tensor([0, 1, 1])[:b]}


def test_captured_scores_are_the_pre_softmax_scores():
    model = bert(attn="eager")
    batch = batch_with_padding()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    hooks_before = sum(len(m._forward_hooks) for m in model.modules())
    with ScoreCapture(model) as cap:
        # inside: one hook on each layer's query and key projection (4 layers × 2), nothing else
        assert all(q._forward_hooks and k._forward_hooks and not v._forward_hooks for q, k, v in cap.modules)
        assert sum(len(m._forward_hooks) for m in model.modules()) == hooks_before + 8
        out = model(**inputs, output_attentions=True)
        scores = cap.scores()
    assert len(scores) == 4 and scores[0].shape == (3, 4, 7, 7)
    additive = (1.0 - batch["attention_mask"][:, None, None, :].float()) * torch.finfo(torch.float32).min
    for s, probs in zip(scores, out.attentions):
        torch.testing.assert_close(torch.softmax(s + additive, dim=-1), probs, atol=1e-6, rtol=1e-5)
    # hooks are gone afterwards
    assert all(not q._forward_hooks and not k._forward_hooks for q, k, _ in cap.modules)


def _np_masked_mse(a, b, mask):
    m = mask[..., None].astype(float)
    return ((a - b) ** 2 * m).sum() / (m.sum() * a.shape[-1])


def _ctx(layer_map, proj=None, widths=(4, 4)):
    class Ctx:
        pass

    ctx = Ctx()
    ctx.layer_map, ctx.widths, ctx.projections = layer_map, widths, proj or {}
    ctx.project = (lambda key, x: proj[key](x)) if proj else (lambda key, x: x)
    return ctx


def test_embedding_and_hidden_losses_match_numpy_with_projections():
    rng = np.random.default_rng(0)
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    hs = [rng.normal(size=(2, 4, 3)) for _ in range(3)]  # student: embeddings + 2 layers, width 3
    ht = [rng.normal(size=(2, 4, 5)) for _ in range(5)]  # teacher: embeddings + 4 layers, width 5
    W = {k: rng.normal(size=(3, 5)) for k in ("embeddings", "layer1", "layer2")}
    b = {k: rng.normal(size=5) for k in W}
    proj = {}
    for k in W:
        lin = torch.nn.Linear(3, 5).double()
        lin.weight.data = torch.tensor(W[k].T)
        lin.bias.data = torch.tensor(b[k])
        proj[k] = lin
    ctx = _ctx([(1, 2), (2, 4)], proj, widths=(3, 5))
    s = Outputs(None, tuple(torch.tensor(x) for x in hs))
    t = Outputs(None, tuple(torch.tensor(x) for x in ht))
    batch = {"attention_mask": torch.tensor(mask)}
    emb = _np_masked_mse(hs[0] @ W["embeddings"] + b["embeddings"], ht[0], mask)
    assert float(tinybert_embedding(s, t, batch, ctx)) == pytest.approx(emb, rel=1e-9)
    hid = _np_masked_mse(hs[1] @ W["layer1"] + b["layer1"], ht[2], mask) + _np_masked_mse(hs[2] @ W["layer2"] + b["layer2"], ht[4], mask)
    assert float(tinybert_hidden(s, t, batch, ctx)) == pytest.approx(hid, rel=1e-9)


def test_attention_loss_matches_numpy_and_ignores_padding():
    rng = np.random.default_rng(1)
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    a_s = [rng.normal(size=(2, 2, 3, 3)) for _ in range(2)]
    a_t = [rng.normal(size=(2, 2, 3, 3)) for _ in range(4)]
    expected = 0.0
    for s_l, t_l in [(1, 2), (2, 4)]:
        vals = [(a_s[s_l - 1][b, h, i, j] - a_t[t_l - 1][b, h, i, j]) ** 2
                for b in range(2) for h in range(2) for i in range(3) for j in range(3) if mask[b, i] and mask[b, j]]
        expected += np.mean(vals)
    ctx = _ctx([(1, 2), (2, 4)])
    batch = {"attention_mask": torch.tensor(mask)}
    got = tinybert_attention(Outputs(None, None, [torch.tensor(x) for x in a_s]), Outputs(None, None, [torch.tensor(x) for x in a_t]), batch, ctx)
    assert float(got) == pytest.approx(expected, rel=1e-9)
    # anything at a padded query or key position does not count
    a_s2 = [x.copy() for x in a_s]
    a_s2[0][1, :, 2, :] = 99.0
    a_s2[1][1, :, :, 2] = -99.0
    got2 = tinybert_attention(Outputs(None, None, [torch.tensor(x) for x in a_s2]), Outputs(None, None, [torch.tensor(x) for x in a_t]), batch, ctx)
    assert float(got2) == pytest.approx(float(got), rel=1e-12)


def test_prediction_loss_matches_numpy():
    zs, zt = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 1.0]]), np.array([[0.3, 0.1, 2.0], [1.0, 1.0, -2.0]])
    for t in (1.0, 3.0):
        pt = np.exp(zt / t) / np.exp(zt / t).sum(-1, keepdims=True)
        log_ps = zs / t - np.log(np.exp(zs / t).sum(-1, keepdims=True))
        expected = -(pt * log_ps).sum(-1).mean()
        got = tinybert_prediction(Outputs(torch.tensor(zs)), Outputs(torch.tensor(zt)), {}, None, temperature=t)
        assert float(got) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("mode, n_proj", [("per_layer", 3), ("shared", 1)])
def test_gradients_reach_the_projections(mode, n_proj):
    teacher, student = bert(layers=4, hidden=32), bert(layers=2, hidden=16, heads=4, ffn=32, seed=1)
    distiller = Distiller(teacher, student, build_layer_map(2, 4, LayerMapConfig()), mode)
    assert len(distiller.projections) == n_proj
    loss = CombinedLoss({"tinybert_embedding": {}, "tinybert_hidden": {}, "tinybert_attention": {}})
    distiller.check(loss)
    total, parts = distiller.loss(batch_with_padding(), loss)
    total.backward()
    for p in distiller.projections.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    assert set(parts) == {"tinybert_embedding", "tinybert_hidden", "tinybert_attention"}


def test_impossible_combinations_are_refused_before_training():
    teacher = bert(layers=4, hidden=32, heads=4)
    narrow = bert(layers=2, hidden=16, heads=4, ffn=32)
    with pytest.raises(UserError, match="projection is 'none'"):
        Distiller(teacher, narrow, [(1, 2), (2, 4)], "none").check(CombinedLoss({"tinybert_hidden": {}}))
    with pytest.raises(UserError, match="hidden_cosine needs equal hidden sizes"):
        Distiller(teacher, narrow, [(1, 2), (2, 4)]).check(CombinedLoss({"hidden_cosine": {}}))
    other_heads = bert(layers=2, hidden=32, heads=2)
    with pytest.raises(UserError, match="same number of heads: student 2, teacher 4"):
        Distiller(teacher, other_heads, [(1, 2), (2, 4)]).check(CombinedLoss({"tinybert_attention": {}}))


@pytest.mark.parametrize(
    "n_s, n_t, cfg, expected",
    [
        (4, 12, LayerMapConfig(), [(1, 3), (2, 6), (3, 9), (4, 12)]),
        (4, 6, LayerMapConfig(), [(1, 2), (2, 3), (3, 5), (4, 6)]),
        (2, 6, LayerMapConfig(strategy="last"), [(1, 5), (2, 6)]),
        (2, 6, LayerMapConfig(strategy="explicit", pairs=[(1, 1), (2, 6)]), [(1, 1), (2, 6)]),
    ],
)
def test_layer_maps(n_s, n_t, cfg, expected):
    assert build_layer_map(n_s, n_t, cfg) == expected


@pytest.mark.parametrize(
    "n_s, n_t, cfg, message",
    [
        (2, 6, LayerMapConfig(strategy="explicit", pairs=[(1, 7)]), r"pair \[1, 7\] is out of range: student layers are 1..2, teacher layers 1..6"),
        (2, 6, LayerMapConfig(strategy="explicit", pairs=[(3, 1)]), r"pair \[3, 1\] is out of range"),
        (2, 6, LayerMapConfig(strategy="explicit", pairs=[(1, 1), (1, 2)]), "match a student layer twice"),
        (2, 6, LayerMapConfig(strategy="explicit"), "needs pairs"),
        (8, 6, LayerMapConfig(), "no deeper than the teacher"),
        (2, 6, LayerMapConfig(strategy="uniform", pairs=[(1, 1)]), "only used with strategy 'explicit'"),
    ],
)
def test_impossible_layer_maps(n_s, n_t, cfg, message):
    with pytest.raises(UserError, match=message):
        build_layer_map(n_s, n_t, cfg)


def test_narrow_student_is_truncated_from_the_teacher():
    teacher = bert(layers=4, hidden=32, heads=4, ffn=64)
    student, layers, _ = build_student(teacher, StudentConfig(num_layers=2, hidden_size=16, intermediate_size=40))
    assert layers == [1, 3] and student.config.hidden_size == 16 and student.config.num_attention_heads == 4
    t_q = teacher.bert.encoder.layer[3].attention.self.query.weight
    assert torch.equal(student.bert.encoder.layer[1].attention.self.query.weight, t_q[:16, :16])
    assert torch.equal(student.bert.encoder.layer[0].intermediate.dense.weight, teacher.bert.encoder.layer[1].intermediate.dense.weight[:40, :16])
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight[:, :16])
    random_student, none, _ = build_student(teacher, StudentConfig(num_layers=6, hidden_size=16, init="random"))
    assert none == [] and random_student.config.num_hidden_layers == 6


def test_student_heads_must_divide_width():
    with pytest.raises(UserError, match="not divisible"):
        build_student(bert(hidden=32, heads=4), StudentConfig(num_layers=1, num_attention_heads=5))
