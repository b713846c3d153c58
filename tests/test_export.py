"""ONNX export keeps dynamic batch and sequence axes and matches PyTorch, padding included."""

import numpy as np
import pytest
import torch

from compress.export.onnx import export_onnx
from compress.export.verify import compare
from targets.runtime import OnnxModel, RuntimeLoadError


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
        check = compare(ref, got, atol=1e-4, min_agreement=1.0)
        assert check.passed, check


def test_compare_flags_a_mismatch():
    ref = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert not compare(ref, ref + 0.01, atol=1e-3, min_agreement=0.5).passed
    assert not compare(ref, ref[:, ::-1], atol=10, min_agreement=0.99).passed
    assert compare(ref, ref + 1e-5, atol=1e-3, min_agreement=1.0).passed


def test_runtime_refuses_a_broken_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(RuntimeLoadError, match="onnxruntime cannot load"):
        OnnxModel(bad)


def _skip_layernorm_model(with_bias: bool, sum_used: bool):
    """One com.microsoft SkipLayerNormalization (x, skip, gamma, beta[, bias]) -> y [+ the residual sum]."""
    from onnx import TensorProto, helper, numpy_helper

    hidden, rng = 16, np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=hidden).astype(np.float32), n) for n in ("gamma", "beta", "bias")]
    inputs = ["x", "skip", "gamma", "beta"] + (["bias"] if with_bias else [])
    outputs = ["y", "", "", "sum"] if sum_used else ["y"]
    nodes = [helper.make_node("SkipLayerNormalization", inputs, outputs, domain="com.microsoft", epsilon=1e-5, name="sln")]
    graph_outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5, hidden])]
    if sum_used:
        nodes.append(helper.make_node("Mul", ["sum", "y"], ["z"]))
        graph_outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 5, hidden]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 5, hidden]) for n in ("x", "skip")],
                              graph_outputs, inits if with_bias else inits[:2])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)])


@pytest.mark.parametrize("with_bias,sum_used", [(False, False), (True, False), (True, True)])
def test_split_skip_layernorm_keeps_the_arithmetic(tmp_path, with_bias, sum_used):
    import onnx

    from compress.export.ort_optimize import split_skip_layernorm

    model = _skip_layernorm_model(with_bias, sum_used)
    onnx.save(model, str(tmp_path / "fused.onnx"))
    assert split_skip_layernorm(model) == 1
    ops = [n.op_type for n in model.graph.node]
    assert "SkipLayerNormalization" not in ops and ops.count("LayerNormalization") == 1
    assert ops.count("Add") == (2 if with_bias else 1)
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "split.onnx"))
    rng = np.random.default_rng(1)
    feeds = {n: rng.normal(size=(2, 5, 16)).astype(np.float32) for n in ("x", "skip")}
    fused, split = (OnnxModel(tmp_path / f, session_config={}).session for f in ("fused.onnx", "split.onnx"))
    for a, b in zip(fused.run(None, feeds), split.run(None, feeds)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_onnx_runtime_keeps_layernorm_unfused_in_runner_sessions_and_ort_files(tiny_classifier, tmp_path):
    """ONNX Runtime fuses Add + LayerNormalization into its slow SkipLayerNormalization kernel at load time
    unless told not to: the runner's sessions and the bundle's .ort files are told; ONNX Runtime's defaults fuse."""
    from compress.export.ort_format import to_ort_format
    from targets.runtime import SESSION_CONFIG

    path = export_onnx(tiny_classifier, ["input_ids", "attention_mask", "token_type_ids"], tmp_path / "m.onnx", 18)
    assert b"SkipLayerNormalization" in to_ort_format(path, tmp_path / "defaults.ort", {}).read_bytes()
    assert b"SkipLayerNormalization" not in to_ort_format(path, tmp_path / "runner.ort").read_bytes()
    assert OnnxModel(path).session_config == SESSION_CONFIG
    assert OnnxModel(tmp_path / "runner.ort").session_config == SESSION_CONFIG
