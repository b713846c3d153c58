"""Structured pruning as the student's start: the kept heads / neurons are exactly the teacher's (the pruned
model computes what the teacher computes with the dropped structures zeroed), Taylor importance finds a dead
head, and impossible shapes are refused before anything is trained."""

import pytest
import torch

from compress.data.batching import Encoded
from compress.errors import UserError
from compress.recipe import StudentConfig
from compress.student import build_student
from compress.student.prune import importance
from tests.test_tinybert import batch_with_padding, bert


def _enc(n=24, seed=0):
    import numpy as np

    g = torch.Generator().manual_seed(seed)
    rows = [torch.randint(5, 100, (int(torch.randint(4, 12, (1,), generator=g)),), generator=g).tolist() for _ in range(n)]
    return Encoded({"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows],
                    "token_type_ids": [[0] * len(r) for r in rows]}, np.arange(n) % 2, 0)


def _logits(model, batch):
    with torch.no_grad():
        return model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def test_full_width_pruning_is_the_teacher():
    teacher = bert(layers=4, hidden=32, heads=4, ffn=64)
    cfg = StudentConfig(num_layers=4, init="pruned")
    student, layers, record = build_student(teacher, cfg, importance(teacher, _enc(), 24, 8))
    assert layers == [0, 1, 2, 3] and record["importance"] == "taylor" and record["heads_kept"] == [[0, 1, 2, 3]] * 4
    batch = batch_with_padding()
    torch.testing.assert_close(_logits(student, batch), _logits(teacher, batch))


def test_pruned_neurons_are_the_teachers_with_the_rest_zeroed():
    teacher = bert(layers=2, hidden=32, heads=4, ffn=64, seed=2)
    imp = importance(teacher, _enc(), 24, 8)
    cfg = StudentConfig(num_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=40, init="pruned")
    with pytest.raises(UserError, match="keeps whole teacher heads of size 8: a hidden size of 32 needs student.num_attention_heads 4"):
        build_student(teacher, cfg, imp)
    # the same hidden width: all 4 heads stay and 24 FFN neurons go by Taylor's scores
    cfg = StudentConfig(num_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=40, init="pruned")
    student, _, record = build_student(teacher, cfg, imp)
    assert record["heads_kept"] == [[0, 1, 2, 3]] * 2
    reference = bert(layers=2, hidden=32, heads=4, ffn=64, seed=2)
    for i, layer in enumerate(reference.bert.encoder.layer):
        dropped = sorted(set(range(64)) - set(torch.topk(imp.ffn[i], 40).indices.tolist()))
        layer.output.dense.weight.data[:, dropped] = 0  # a dropped neuron writes nothing
    batch = batch_with_padding()
    torch.testing.assert_close(_logits(student, batch), _logits(reference, batch), atol=1e-5, rtol=1e-5)


def test_heads_are_kept_by_their_scores():
    teacher = bert(layers=2, hidden=32, heads=4, ffn=64, seed=2)
    imp = importance(teacher, _enc(), 24, 8)
    # two of four heads per layer (head size 8: hidden 16), chosen by hand-made scores unlike Taylor's
    imp.heads = [torch.tensor([0.1, 5.0, 0.2, 3.0]), torch.tensor([4.0, 0.0, 2.0, 0.5])]
    cfg = StudentConfig(num_layers=2, hidden_size=16, num_attention_heads=2, intermediate_size=40, init="pruned")
    student, _, record = build_student(teacher, cfg, imp)
    assert record["heads_kept"] == [[1, 3], [0, 2]]
    kept = torch.sort(torch.topk(imp.hidden, 16).indices).values
    for i, heads in enumerate(([1, 3], [0, 2])):
        rows = torch.cat([torch.arange(h * 8, h * 8 + 8) for h in heads])
        for name in ("query", "key", "value"):
            got = getattr(student.bert.encoder.layer[i].attention.self, name).weight
            want = getattr(teacher.bert.encoder.layer[i].attention.self, name).weight[rows][:, kept]
            torch.testing.assert_close(got, want)
        out = teacher.bert.encoder.layer[i].attention.output.dense.weight[kept][:, rows]
        torch.testing.assert_close(student.bert.encoder.layer[i].attention.output.dense.weight, out)


def test_taylor_importance_finds_a_dead_head_and_pruning_drops_it():
    teacher = bert(layers=1, hidden=32, heads=4, ffn=64, seed=4)
    with torch.no_grad():  # head 2 of the only layer writes nothing: its Taylor score must be 0
        teacher.bert.encoder.layer[0].attention.output.dense.weight[:, 16:24] = 0
    imp = importance(teacher, _enc(), 24, 8)
    assert imp.heads[0][2] == 0 and (imp.heads[0][[0, 1, 3]] > 0).all() and imp.rows == 24
    assert (imp.ffn[0] > 0).all() and (imp.hidden > 0).all()
    cfg = StudentConfig(num_layers=1, hidden_size=24, num_attention_heads=3, intermediate_size=32, init="pruned")
    student, _, record = build_student(teacher, cfg, imp)
    assert record["heads_kept"] == [[0, 1, 3]]
    kept = torch.sort(torch.topk(imp.hidden, 24).indices).values
    q = student.bert.encoder.layer[0].attention.self.query.weight
    rows = torch.cat([torch.arange(h * 8, h * 8 + 8) for h in (0, 1, 3)])
    torch.testing.assert_close(q, teacher.bert.encoder.layer[0].attention.self.query.weight[rows][:, kept])
    torch.testing.assert_close(student.bert.embeddings.word_embeddings.weight,
                               teacher.bert.embeddings.word_embeddings.weight[:, kept])
    torch.testing.assert_close(student.classifier.weight, teacher.classifier.weight[:, kept])
    assert all(not p.requires_grad or p.grad is None for p in teacher.parameters())  # nothing left behind


def test_sentence_encoders_are_ranked_by_activation():
    from compress.embedding.model import SentenceEncoder

    encoder = SentenceEncoder(bert(layers=2, hidden=32, heads=4).bert, "mean", True)
    imp = importance(encoder, _enc(), 16, 8)
    assert imp.method == "activation" and (imp.hidden > 0).all() and all((h > 0).all() for h in imp.heads)
    student, _, _ = build_student(encoder, StudentConfig(num_layers=1, hidden_size=16, num_attention_heads=2,
                                                         intermediate_size=32, init="pruned"), imp)
    kept = torch.sort(torch.topk(imp.hidden, 16).indices).values
    assert student.dim == 32 and student.dense is not None  # still the teacher's vector size, through a projection
    torch.testing.assert_close(student.get_input_embeddings().weight, encoder.get_input_embeddings().weight[:, kept])


def test_impossible_pruned_students_are_refused_before_training():
    from types import SimpleNamespace

    from compress.distill.plan import validate_plan
    from compress.recipe import Recipe

    teacher = bert(layers=4, hidden=32, heads=4, ffn=64)
    base = {"student": {"num_layers": 2, "init": "pruned"}, "distill": {"losses": {"distilbert_soft": {}}}}
    for student, message in [({"hidden_size": 24, "num_attention_heads": 4}, "needs student.num_attention_heads 3"),
                             ({"intermediate_size": 128}, "must not exceed the teacher's 32 / 64"),
                             ({"hidden_size": 24, "num_attention_heads": 4, "embedding_size": 8},
                              "needs student.num_attention_heads 3")]:
        recipe = Recipe.model_validate({**base, "student": {**base["student"], **student}})
        with pytest.raises(UserError, match=message):
            validate_plan(teacher.config, recipe, SimpleNamespace(check_losses=lambda *a: None))


@pytest.mark.parametrize("sharing", [None, "all"])
def test_a_pruned_albert_student_factorizes_the_pruned_table_and_keeps_the_pruned_layers(sharing):
    from compress.student.albert import _svd_embeddings

    teacher = bert(layers=4, hidden=32, heads=4, ffn=64, seed=3)
    imp = importance(teacher, _enc(), 24, 8)
    shape = dict(num_layers=2, hidden_size=16, num_attention_heads=2, intermediate_size=32, init="pruned")
    pruned, layers, _ = build_student(teacher, StudentConfig(**shape), imp)
    student, albert_layers, record = build_student(teacher, StudentConfig(**shape, embedding_size=8, sharing=sharing), imp)
    assert albert_layers == layers and record["embedding_size"] == 8 and record["heads_kept"]
    a, b, error = _svd_embeddings(pruned.bert.embeddings.word_embeddings.weight.detach(), 8)
    emb = student.albert.embeddings.word_embeddings.weight
    torch.testing.assert_close(emb @ student.albert.encoder.embedding_hidden_mapping_in.weight.T, a @ b)
    assert record["svd_relative_error"] == round(error, 4)
    groups = student.albert.encoder.albert_layer_groups
    # layer 0 of the ALBERT student is the pruned BERT's layer 0 (with sharing: the one set every layer runs)
    torch.testing.assert_close(groups[0].albert_layers[0].attention.query.weight,
                               pruned.bert.encoder.layer[0].attention.self.query.weight)
    torch.testing.assert_close(groups[0].albert_layers[0].ffn.weight, pruned.bert.encoder.layer[0].intermediate.dense.weight)
    torch.testing.assert_close(student.classifier.weight, pruned.classifier.weight)
    if sharing is None:
        torch.testing.assert_close(groups[1].albert_layers[0].ffn_output.weight,
                                   pruned.bert.encoder.layer[1].output.dense.weight)
