"""Device targets: the TFLite export and LiteRT quantizers, the ONNX Runtime fusions, the app bundle, and the
torch-free runner (its CLI run in a process where torch cannot be imported). The device tokenizer is
tests/test_tokenizer.py; tests that need LiteRT skip without the tflite extra."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import HAS_EXECUTORCH, needs_tflite, run_torch_free

@pytest.mark.slow
@needs_tflite
def test_tflite_export_has_one_signature_per_bucket_and_matches_pytorch(bundled):
    from targets.runtime import LiteRTModel

    export = json.loads((bundled / "stages/export.json").read_text())
    tfl = next(a for a in export["artifacts"] if a["name"] == "student-tflite-fp32")
    assert tfl["buckets"] == [16, 32, 64]  # the recipe's buckets plus data.max_length
    assert tfl["verification"]["passed"] and tfl["verification"]["agreement"] >= 0.999
    assert tfl["verification"]["max_abs_diff"] < 1e-4
    model = LiteRTModel(bundled / tfl["path"])
    assert model.buckets == [16, 32, 64] and model.input_dtypes["input_ids"] == np.int32
    # one copy of the weights for three signatures: about the size of the fp32 ONNX file, not three times it
    assert (bundled / tfl["path"]).stat().st_size < 1.3 * (bundled / "export/model.onnx").stat().st_size
    # a row is padded to the smallest bucket that holds it: the same logits whatever the batch's padding
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, size=(1, 20))
    mask = np.ones_like(ids)
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    wide = {k: np.pad(v, ((0, 0), (0, 30))) for k, v in feeds.items()}
    np.testing.assert_allclose(model(feeds), model(wide), atol=1e-5)
    with pytest.raises(ValueError, match="largest bucket"):
        model({k: np.ones((1, 65), dtype=np.int64) for k in feeds})


@pytest.mark.slow
@needs_tflite
def test_litert_quantizers_ship_smaller_verified_models(bundled):
    quantize = json.loads((bundled / "stages/quantize.json").read_text())
    by_backend = {}
    for a in quantize["artifacts"]:
        by_backend.setdefault(a["quantization"]["backend"], []).append(a)
    fp32 = (bundled / "export/model.tflite").stat().st_size
    dyn = {a["name"]: a for a in by_backend["litert-dynamic"]}
    int8, int4 = dyn["student-int8-litert-dynamic"], dyn["student-int4-litert-int4"]
    assert int8["format"] == "tflite" and int8["buckets"] == [16, 32, 64]
    assert (bundled / int4["path"]).stat().st_size < (bundled / int8["path"]).stat().st_size < 0.6 * fp32
    assert int8["verification"]["agreement"] >= 0.9
    # full integer: ships or is rejected with its measured reason; either way it was built and measured
    static = [a for a in quantize["artifacts"] + quantize["rejected"] if a["quantization"]["backend"] == "litert-static"]
    assert len(static) == 1 and "dev accuracy" in static[0]["quantization"]["reason"]
    report = json.loads((bundled / "report.json").read_text())
    timed = {a["name"]: a for a in report["artifacts"]}
    # timed on the recipe's grid; a row shorter than a bucket is padded to it, as on a device
    assert {e["seq_len"] for e in timed["student-int8-litert-dynamic"]["latency"]} == {16, 32}


@pytest.mark.slow
def test_fused_onnx_has_attention_with_the_raw_mask_and_int8_attention(bundled):
    import onnx

    fused = onnx.load(str(bundled / "export/model.ort-opt.onnx"))
    attention = [n for n in fused.graph.node if n.op_type == "Attention"]
    assert attention and all(n.input[3] == "attention_mask_int32" for n in attention)
    assert not any(n.op_type in ("Where", "GatherND") for n in fused.graph.node)  # the mask subgraph is gone
    assert not any(n.op_type == "SkipLayerNormalization" for n in fused.graph.node)  # split: the fast kernels
    quantized = onnx.load(str(bundled / "quantized/ort-dynamic.onnx"))
    assert "QAttention" in {n.op_type for n in quantized.graph.node}


@pytest.mark.slow
@needs_tflite
def test_bundle_holds_everything_an_app_needs(bundled):
    from targets.bundle import Bundle

    b = bundled / "bundle" / "pi"
    meta = json.loads((b / "metadata.json").read_text())
    files = {m["file"] for m in meta["models"]}
    # the .ort is the mobile bundles' (bundle/android-ort); the .pte runs through ExecuTorch's C++ libraries
    assert files == {"model.onnx", "model.tflite"} | ({"model.pte"} if HAS_EXECUTORCH else set())
    for name in ("vocab.txt", "tokenizer.json", "labels.txt", "README.md", "runner/targets/tokenizer.py", "runner/targets/pyproject.toml"):
        assert (b / name).is_file(), name
    assert (b / "labels.txt").read_text().split() == meta["labels"] == ["negative", "positive"]
    tfl = next(m for m in meta["models"] if m["file"] == "model.tflite")
    assert tfl["buckets"] == [16, 32, 64] and tfl["inputs"][0]["dtype"] == "int32"
    onnx_meta = next(m for m in meta["models"] if m["file"] == "model.onnx")
    assert onnx_meta["inputs"][0]["shape"] == ["batch", "sequence"]
    assert onnx_meta["session_config"] == {"optimization.disable_specified_optimizers": "SkipLayerNormFusion"}
    assert meta["max_length"] == 64 and meta["tokenizer"]["lowercase"] is True
    vocab = (b / "vocab.txt").read_text().split("\n")
    assert {k: vocab[v] for k, v in meta["tokenizer"]["special_tokens"].items()} == {t: t for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")}
    assert meta["teacher"]["test_quality"] is not None and meta["versions"]["onnxruntime"]
    for m in meta["models"]:
        assert m["runner_check"]["rows"] == 48 and m["sha256"] and m["test_quality"] is not None
    readme = (b / "README.md").read_text()
    assert "```kotlin" in readme and "```swift" in readme and "were not run here" in readme
    with zipfile.ZipFile(bundled / "bundle" / "pi.zip") as zf:
        zipped = {n.removeprefix("pi/") for n in zf.namelist()}
    assert {str(p.relative_to(b)) for p in b.rglob("*") if p.is_file()} == zipped
    assert Bundle.load(bundled / "bundle" / "pi.zip").labels == meta["labels"]


@pytest.mark.slow
def test_runner_gives_the_verified_artifacts_outputs(bundled):
    """Raw text -> pure-Python tokenizer -> runtime equals the artifact on HF-tokenized input."""
    from compress import run as api
    from compress.export.verify import device_logits
    from compress.recipe import resolve_recipe
    from targets.bundle import Bundle, Classifier
    from targets.runtime import load_model

    run = api.prepare(resolve_recipe(str(bundled / "recipe.yaml")), bundled, force=False, whole_run=False)
    dev = run.encode("dev", run.student_tokenizer())
    texts = [e.text for e in run.data.dev]
    bundle = Bundle.load(bundled / "bundle" / "pi")
    for m in bundle.metadata["models"]:
        artifact = bundled / next(a["path"] for a in json.loads((bundled / "report.json").read_text())["artifacts"]
                                  if a["name"] == m["artifact"])
        expected = device_logits(load_model(artifact), dev)
        clf = Classifier(bundle, runtime=m["file"])
        np.testing.assert_allclose(clf.logits(texts), expected, atol=1e-5)
        preds = clf.predict(texts[:3])
        assert [p.label for p in preds] == [bundle.labels[i] for i in expected[:3].argmax(-1)]
        assert all(abs(sum(p.probabilities.values()) - 1) < 1e-5 for p in preds)


@pytest.mark.slow
@needs_tflite
def test_runner_cli_runs_without_torch(bundled):
    b = bundled / "bundle" / "pi"
    for runtime in ("onnxruntime", "litert", "model.onnx"):
        r = run_torch_free(b, "predict", str(b), "--runtime", runtime, "--threads", "1", "--json", "a moving film", "dull")
        assert r.returncode == 0, r.stderr
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        assert [row["text"] for row in rows] == ["a moving film", "dull"]
        assert all(row["label"] in ("negative", "positive") and not row["truncated"] for row in rows)
    r = run_torch_free(b, "predict", str(b), stdin="first line\nsecond line\n")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    r = run_torch_free(b, "info", str(b))
    assert r.returncode == 0 and "model.tflite" in r.stdout and "buckets [16, 32, 64]" in r.stdout


@pytest.mark.slow
@needs_tflite
def test_runner_truncates_a_long_text_and_says_so(bundled):
    b = bundled / "bundle" / "pi"
    r = run_torch_free(b, "predict", str(b), "--runtime", "litert", "--json", "word " * 200)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["truncated"] is True and json.loads(r.stdout)["tokens"] == 64
    assert "truncated" in r.stderr and "64 tokens" in r.stderr


@pytest.mark.slow
@needs_tflite
def test_runner_bad_input_is_one_line_and_exit_2(bundled, tmp_path):
    import shutil

    b = tmp_path / "bundle"
    shutil.copytree(bundled / "bundle" / "pi", b)

    def fails(args, message):
        r = run_torch_free(bundled / "bundle" / "pi", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr

    fails(["predict", str(b), "--runtime", "coreml", "x"], "has no model for 'coreml'")
    fails(["predict", str(tmp_path / "nowhere"), "x"], "not a bundle directory")
    try:
        import tflite_runtime  # noqa: F401
    except ImportError:
        fails(["predict", str(b), "--runtime", "litert", "--interpreter", "tflite-runtime", "x"], "pip install ai-edge-litert")
    (b / "model.tflite").write_bytes(b"not a flatbuffer")  # a damaged copy: refused before any interpreter sees it
    fails(["predict", str(b), "--runtime", "litert", "x"], "model.tflite does not match its SHA-256 in metadata.json")
    import hashlib

    meta = json.loads((b / "metadata.json").read_text())  # the same bytes recorded as the model: an interpreter that cannot load it
    for m in meta["models"]:
        if m["file"] == "model.tflite":
            m["sha256"] = hashlib.sha256(b"not a flatbuffer").hexdigest()
    (b / "metadata.json").write_text(json.dumps(meta))
    fails(["predict", str(b), "--runtime", "litert", "x"], "cannot load model.tflite")
    (b / "vocab.txt").unlink()
    fails(["predict", str(b), "x"], "is missing vocab.txt")
    meta = json.loads((bundled / "bundle/pi/metadata.json").read_text())
    newer = tmp_path / "newer"
    shutil.copytree(bundled / "bundle" / "pi", newer)
    (newer / "metadata.json").write_text(json.dumps(meta | {"schema_version": 99}))
    fails(["predict", str(newer), "x"], "schema 99")


def test_runner_package_builds_on_its_own(tmp_path):
    """`pip install ./targets` gives the runner alone: its modules and numpy as the only requirement."""
    import shutil

    root = tmp_path / "targets"  # a copy: setuptools leaves build/ and *.egg-info in the folder it builds
    shutil.copytree(Path(__file__).resolve().parents[1] / "targets", root, ignore=shutil.ignore_patterns("__pycache__", "build"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
                        str(root)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    wheel = next(tmp_path.glob("bert_compress_runner-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert {n for n in names if n.endswith(".py")} == {f"targets/{m}.py" for m in
                                                       ("__init__", "__main__", "bundle", "check", "ner", "normalizer",
                                                        "runtime", "tokenizer", "unicode_tables", "bench", "env", "profile",
                                                        "executorch_native", "vectors", "outputs", "roofline", "archive")}
    assert "targets/pte_native.cc" in names  # the torch-free ExecuTorch library's source travels along
    assert {"targets/gemm_fp32.onnx", "targets/gemm_u8s8.onnx"} <= set(names)  # the GEMM-peak graphs travel along
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist") and "extra ==" not in line]
    assert requires == ["Requires-Dist: numpy>=1.21"]


@needs_tflite
def test_albert_student_converts_to_tflite_with_shared_layers_stored_once(tmp_path):
    import torch
    from transformers import AlbertConfig, AlbertForSequenceClassification

    from compress.export.tflite import export_tflite
    from targets.runtime import LiteRTModel

    torch.manual_seed(0)
    config = AlbertConfig(vocab_size=3000, embedding_size=16, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                          intermediate_size=128, num_labels=2)
    model = AlbertForSequenceClassification(config).eval()
    path = export_tflite(model, ["input_ids", "attention_mask", "token_type_ids"], tmp_path / "albert.tflite", [32])
    ids = torch.randint(5, 3000, (2, 20))
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits.numpy()
    got = LiteRTModel(path)({"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": np.zeros((2, 20))})
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # four layers, one set of weights: a copy per layer would make the file about twice the parameter bytes
    param_bytes = 4 * sum(p.numel() for p in model.parameters())
    assert path.stat().st_size < 1.6 * param_bytes
