"""ALBERT-style students: factorized embeddings, sharing modes, checkpoints, exports without duplicates."""

import numpy as np
import pytest
import torch

from compress.student.albert import load_student, save_student, unique_state_dict
from compress.distill.distiller import Distiller
from compress.distill.losses import CombinedLoss
from compress.distill.mapping import LayerMapConfig, build_layer_map
from compress.errors import UserError
from compress.recipe import StudentConfig
from compress.student import build_student, count_params
from test_tinybert import batch_with_padding, bert


def albert(teacher, **kw):
    cfg = StudentConfig(num_layers=kw.pop("num_layers", 4), **kw)
    return build_student(teacher, cfg)[0]


@pytest.fixture(scope="module")
def teacher():
    return bert(layers=4, hidden=32, heads=4, ffn=64)


def test_factorized_embedding_from_svd(teacher):
    student = albert(teacher, embedding_size=8, sharing="all")
    emb = student.albert.embeddings.word_embeddings.weight
    proj = student.albert.encoder.embedding_hidden_mapping_in.weight
    assert emb.shape == (100, 8) and proj.shape == (32, 8)
    # V×E · E×H is the best rank-8 approximation of the teacher's table
    w = teacher.bert.embeddings.word_embeddings.weight
    s = torch.linalg.svdvals(w.double())
    best = float(torch.sqrt((s[8:] ** 2).sum()) / torch.sqrt((s**2).sum()))
    got = float(torch.linalg.norm(w.double() - (emb @ proj.T).double()) / torch.linalg.norm(w.double()))
    assert got == pytest.approx(best, rel=1e-4)


@pytest.mark.parametrize(
    "sharing, groups, unique_layers_attention, unique_layers_ffn",
    [("none", 1, 4, 4), ("all", 1, 1, 1), ("all", 2, 2, 2), ("attention", 1, 1, 4), ("ffn", 1, 4, 1), ("attention", 2, 2, 4)],
)
def test_sharing_modes_share_one_tensor(teacher, sharing, groups, unique_layers_attention, unique_layers_ffn):
    student = albert(teacher, embedding_size=8, sharing=sharing, groups=groups)
    enc = student.albert.encoder
    n, g = student.config.num_hidden_layers, student.config.num_hidden_groups
    from compress.student.albert import group_of

    layers = [enc.albert_layer_groups[group_of(i, n, g)].albert_layers[0] for i in range(n)]
    assert len({id(layer.attention.query.weight) for layer in layers}) == unique_layers_attention
    assert len({id(layer.ffn.weight) for layer in layers}) == unique_layers_ffn
    per_layer = sum(p.numel() for p in layers[0].parameters())
    attn = sum(p.numel() for p in layers[0].attention.parameters())
    emb = sum(p.numel() for p in student.albert.embeddings.parameters()) + sum(
        p.numel() for p in enc.embedding_hidden_mapping_in.parameters())
    head = sum(p.numel() for p in student.albert.pooler.parameters()) + sum(p.numel() for p in student.classifier.parameters())
    ffn = per_layer - attn
    assert count_params(student) == emb + head + attn * unique_layers_attention + ffn * unique_layers_ffn


@pytest.mark.parametrize("sharing", ["all", "attention", "ffn", "none"])
def test_checkpoint_round_trip_gives_the_same_logits(teacher, tmp_path, sharing):
    student = albert(teacher, embedding_size=8, sharing=sharing, groups=2 if sharing != "none" else 1)
    save_student(student, tmp_path)
    loaded = load_student(tmp_path)
    batch = {k: v for k, v in batch_with_padding().items() if k != "labels"}
    with torch.inference_mode():
        torch.testing.assert_close(loaded(**batch).logits, student(**batch).logits)
    assert count_params(loaded) == count_params(student)
    from safetensors.torch import load_file

    assert len(load_file(tmp_path / "model.safetensors")) == len(unique_state_dict(student))
    if sharing in ("all", "none"):  # plain ALBERT: transformers loads it by itself
        from transformers import AlbertForSequenceClassification

        hf = AlbertForSequenceClassification.from_pretrained(tmp_path).eval()
        with torch.inference_mode():
            torch.testing.assert_close(hf(**batch).logits, student(**batch).logits)


@pytest.mark.parametrize("sharing", ["all", "attention"])
def test_onnx_export_stores_shared_weights_once(teacher, tmp_path, sharing):
    from compress.export.onnx import export_onnx
    from targets.runtime import OnnxModel

    student = albert(teacher, embedding_size=8, sharing=sharing)
    path = export_onnx(student, ["input_ids", "attention_mask", "token_type_ids"], tmp_path / "a.onnx", 18)
    unique_bytes = sum(t.numel() * t.element_size() for t in unique_state_dict(student).values())
    assert path.stat().st_size <= unique_bytes * 1.05 + 64 * 1024
    batch = {k: v for k, v in batch_with_padding().items() if k != "labels"}
    with torch.inference_mode():
        ref = student(**batch).logits.numpy()
    got = OnnxModel(path)({k: v.numpy() for k, v in batch.items()})
    assert np.abs(ref - got).max() < 1e-4


def test_distillation_losses_reach_shared_layers(teacher):
    student = albert(teacher, num_layers=2, hidden_size=16, num_attention_heads=4, intermediate_size=32,
                     embedding_size=8, sharing="all")
    distiller = Distiller(teacher, student, build_layer_map(2, 4, LayerMapConfig()))
    loss = CombinedLoss({"tinybert_embedding": {}, "tinybert_hidden": {}, "tinybert_attention": {}, "distilbert_soft": {}})
    distiller.check(loss)
    s_out, _ = distiller.outputs(batch_with_padding(), loss.needs)
    assert len(s_out.attention_scores) == 2 and len(s_out.hidden_states) == 3
    total, _ = loss(*distiller.outputs(batch_with_padding(), loss.needs), batch_with_padding(), distiller)
    total.backward()
    shared_q = student.albert.encoder.albert_layer_groups[0].albert_layers[0].attention.query.weight
    assert shared_q.grad is not None and shared_q.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"embedding_size": 32, "sharing": "all"}, "must be below the hidden size 32"),
        ({"sharing": "all", "groups": 3}, "does not divide student.num_layers 4"),
        ({"sharing": "none", "groups": 2}, "groups needs sharing"),
    ],
)
def test_bad_albert_settings(teacher, kw, message):
    with pytest.raises(UserError, match=message):
        albert(teacher, **kw)


@pytest.mark.parametrize("candidate", [{"backend": "ort-dynamic", "graph": "plain"}, {"backend": "ort-static"},
                                       {"backend": "ort-static", "activation_type": "int8", "per_channel": True},
                                       {"backend": "nncf"}])
@pytest.mark.slow
def test_int8_quantization_keeps_one_copy_of_shared_weights(tmp_path, candidate):
    """Every ONNX quantization backend on all-shared vs unshared students: the shared layer is quantized once."""
    from compress.data.batching import Encoded
    from compress.export.onnx import export_onnx
    from compress.quantize import Context, parse_candidate
    from compress.quantize.nncf_ptq import shares_weights

    teacher = bert(layers=4, hidden=64, heads=4, ffn=256)
    rng = np.random.default_rng(0)
    rows = [rng.integers(5, teacher.config.vocab_size, size=int(n)).tolist() for n in rng.integers(8, 24, size=32)]
    calibration = Encoded({"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows],
                           "token_type_ids": [[0] * len(r) for r in rows]}, np.zeros(len(rows), dtype=np.int64), 0)
    backend, settings = parse_candidate(candidate)
    sizes = {}
    for sharing in ("none", "all"):
        student = albert(teacher, embedding_size=16, sharing=sharing)
        fp32 = export_onnx(student, ["input_ids", "attention_mask", "token_type_ids"], tmp_path / f"{sharing}.onnx", 18)
        assert shares_weights(fp32) == (sharing == "all")
        int8 = backend.quantize(settings, Context({"onnxruntime": fp32}, calibration, tmp_path, tmp_path), tmp_path / f"{sharing}-int8.onnx")
        sizes[sharing] = (fp32.stat().st_size, int8.stat().st_size)
    layer_fp32 = 4 * (4 * 64 * 64 + 2 * 64 * 256)  # bytes of one layer's matrices
    # all-shared: three layers fewer in fp32, and in int8 about a quarter of that
    assert sizes["none"][0] - sizes["all"][0] >= 3 * layer_fp32 * 0.95
    assert sizes["none"][1] - sizes["all"][1] >= 3 * layer_fp32 / 4 * 0.9
    assert sizes["all"][1] < sizes["all"][0] / 2


@pytest.mark.parametrize("sharing", ["all", "attention", "ffn"])
def test_torchao_quantizes_shared_layers_once_and_reloads(tmp_path, sharing):
    """torchao on an ALBERT-style student: the saved quantized student reloads with the same logits, still tied."""
    from compress.quantize import Context, parse_candidate
    from compress.quantize.torchao_ptq import convert, load

    teacher = bert(layers=4, hidden=64, heads=4, ffn=128)
    student = albert(teacher, embedding_size=16, sharing=sharing)
    save_student(student, tmp_path / "student")
    backend, settings = parse_candidate({"backend": "torchao", "scheme": "int8-dynamic"})
    path = backend.quantize(settings, Context({}, None, tmp_path / "student", tmp_path), tmp_path / "q.pt")
    batch = batch_with_padding()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    again = load(path, settings, tmp_path / "student")
    layers = [g.albert_layers[0] for g in again.albert.encoder.albert_layer_groups]
    part = "ffn" if sharing == "ffn" else "attention"
    assert all(getattr(layer, part) is getattr(layers[0], part) for layer in layers)
    with torch.no_grad():
        want, got = student(**inputs).logits, again(**inputs).logits
    assert (want - got).abs().max() < 0.05 and (want.argmax(-1) == got.argmax(-1)).all()
    # the reloaded file is the quantized model that was saved: the same logits as that model before saving
    # (PTQ is deterministic: quantize() converted exactly this student with these settings)
    before = convert(load_student(tmp_path / "student"), settings)
    assert any(type(v) is not torch.Tensor for v in before.state_dict().values())  # torchao's quantized tensors
    with torch.no_grad():
        saved = before(**inputs).logits
    assert (saved - got).abs().max() <= 1e-6 and (saved - want).abs().max() > 0  # quantized, and unchanged by saving
