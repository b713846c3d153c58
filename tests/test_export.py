"""ONNX export keeps dynamic batch and sequence axes and matches PyTorch, padding included."""

import numpy as np
import pytest
import torch

from compress.export.onnx import export_onnx
from compress.export.verify import compare
from targets.runtime import OnnxModel, RuntimeLoadError


@pytest.fixture(scope="module")
def tiny_classifier():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     num_labels=3, max_position_embeddings=64)
    return BertForSequenceClassification(cfg).eval()


def test_onnx_matches_torch_at_other_shapes(tiny_classifier, tmp_path):
    path = export_onnx(tiny_classifier, ["input_ids", "attention_mask", "token_type_ids"], tmp_path / "m.onnx", 18)
    session = OnnxModel(path, threads=1)
    assert session.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    rng = np.random.default_rng(1)
    for batch, seq in [(1, 5), (3, 37), (4, 64)]:  # none of these is the export sample's (2, 16)
        ids = rng.integers(0, 120, size=(batch, seq))
        mask = np.ones_like(ids)
        mask[0, seq // 2 :] = 0  # a padded row
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        with torch.inference_mode():
            ref = tiny_classifier(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
        got = session(feeds)
        assert got.shape == (batch, 3)
        check = compare(ref, got, atol=1e-4, min_label_agreement=1.0)
        assert check.passed, check


def test_compare_flags_a_mismatch():
    ref = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert not compare(ref, ref + 0.01, atol=1e-3, min_label_agreement=0.5).passed
    assert not compare(ref, ref[:, ::-1], atol=10, min_label_agreement=0.99).passed
    assert compare(ref, ref + 1e-5, atol=1e-3, min_label_agreement=1.0).passed


def test_runtime_refuses_a_broken_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(RuntimeLoadError, match="onnxruntime cannot load"):
        OnnxModel(bad)
