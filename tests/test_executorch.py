"""ExecuTorch: the .pte export (XNNPACK, dynamic sequence axis or buckets), its int8 / int4 quantizer, the runner's
session, the bench rows and the android-executorch bundle, checked with ExecuTorch's own runtime."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.helpers import needs_executorch, run_torch_free

pytestmark = needs_executorch


def _feeds(length: int, pad: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 120, size=(1, length))
    mask = np.ones((1, length), dtype=np.int64)
    if pad:
        ids[0, -pad:], mask[0, -pad:] = 0, 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _torch(model, feeds) -> np.ndarray:
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()


def test_pte_has_a_dynamic_sequence_axis_and_matches_pytorch_at_every_length(tiny_classifier, tmp_path, capsys):
    from compress.export.executorch import lower_to_pte, report
    from compress.export.onnx import LogitsOnly
    from targets.runtime import ExecuTorchModel, load_model

    lowered = lower_to_pte(LogitsOnly(tiny_classifier), ["input_ids", "attention_mask", "token_type_ids"],
                           tmp_path / "m.pte", 64, [16, 32, 64])
    assert lowered.dynamic and lowered.buckets is None and lowered.fallback_reason is None
    assert lowered.delegate_calls >= 1
    # XNNPACK does not take this BERT's layer norms and lookups: named, not fatal
    assert "native_layer_norm" in lowered.portable_ops and "embedding" in lowered.portable_ops
    report(lowered)
    said = capsys.readouterr()
    assert len([x for x in (said.err + said.out).splitlines() if "left on ExecuTorch's portable kernels" in x]) == 1
    model = load_model(lowered.path, threads=1)
    assert isinstance(model, ExecuTorchModel) and model.dynamic and model.input_names[:2] == ["input_ids", "attention_mask"]
    for length, pad in ((2, 0), (9, 3), (33, 0), (64, 10)):
        feeds = _feeds(length, pad, seed=length)
        got, want = model(feeds), _torch(tiny_classifier, feeds)
        assert got.shape == want.shape == (1, 3)
        assert np.abs(got - want).max() < 1e-4, length


class LengthBranching(torch.nn.Module):
    """A model whose graph depends on the sequence length (a Python branch): torch.export cannot keep the axis
    dynamic, so the export falls back to one method per bucket."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        logits = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        return logits * 2 if input_ids.shape[1] > 20 else logits


def test_a_model_that_cannot_keep_a_dynamic_axis_gets_bucket_methods(tiny_classifier, tmp_path):
    from compress.export.executorch import lower_to_pte
    from targets.runtime import ExecuTorchModel

    model = LengthBranching(tiny_classifier).eval()
    lowered = lower_to_pte(model, ["input_ids", "attention_mask", "token_type_ids"], tmp_path / "b.pte", 64, [16, 32, 64])
    assert not lowered.dynamic and lowered.buckets == [16, 32, 64] and lowered.fallback_reason
    pte = ExecuTorchModel(lowered.path, threads=1)
    assert pte.buckets == [16, 32, 64] and not pte.dynamic
    feeds = _feeds(12)  # padded to the 16 bucket: the short branch
    assert np.abs(pte(feeds) - _torch(tiny_classifier, feeds)).max() < 1e-4
    feeds = _feeds(25)  # the 32 bucket: the long branch, as PyTorch at 32 padded positions takes it
    assert np.abs(pte(feeds) - 2 * _torch(tiny_classifier, feeds)).max() < 1e-4
    with pytest.raises(ValueError, match="do not fit the largest bucket"):
        pte(_feeds(70))


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_the_pipeline_ships_verified_pte_files_benches_them_and_bundles_one(bundled):
    report = json.loads((bundled / "report.json").read_text())
    arts = {a["name"]: a for a in report["artifacts"]}
    pte = {n: a for n, a in arts.items() if a["runtime"] == "executorch"}
    assert {"student-pte-fp32", "student-int8-executorch-xnnpack", "student-int4-executorch-int4"} <= set(pte)
    for name, a in pte.items():
        assert a["format"] == "pte" and a["latency"], name  # timed through the runner beside the other formats
        # quantized files too: on this tiny student int8 and int4 weights move its logits by about 1e-3
        assert a["agreement"] >= 0.95 and a["max_abs_diff"] < 0.05, name
    assert arts["student-pte-fp32"]["max_abs_diff"] < 1e-3
    assert arts["student-int4-executorch-int4"]["precision"].startswith("int4 weights")
    platforms = {p["platform"]: p for p in report["bundle"]["platforms"]}
    made = platforms["android-executorch"]
    assert not made["skipped"] and made["check"]["passed"] and made["model_file"] == "model.pte"
    folder = bundled / "bundle" / "android-executorch"
    assert {"model.pte", "model.json", "README.md", "labels.txt", "vocab.txt", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    spec = json.loads((folder / "model.json").read_text())
    assert spec["methods"] == ["forward"] and spec["labels"] == ["negative", "positive"]
    assert "native_layer_norm" in spec["portable_ops"]
    assert "org.pytorch.executorch.Module" in (folder / "README.md").read_text()
    # the pi bundle carries the fastest .pte too, and its runner runs it without torch (ExecuTorch's C++ libraries)
    pi = json.loads((bundled / "bundle" / "pi" / "metadata.json").read_text())
    pte = next(m for m in pi["models"] if m["file"] == "model.pte")
    assert pte["runtime"] == "executorch" and pte["methods"] == ["forward"] and pte["runner_check"]["rows"] == 48
    from targets.runtime import ExecuTorchModel
    from targets.tokenizer import load_tokenizer

    folder = bundled / "bundle" / "pi"
    texts = ["a gripping, beautifully acted film", "dull"]
    r = run_torch_free(folder, "predict", str(folder), "--runtime", "executorch", "--threads", "1", "--json", *texts,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    got = np.array([json.loads(line)["logits"] for line in r.stdout.splitlines()])
    bindings = ExecuTorchModel(folder / "model.pte", threads=1, engine="python")  # the wheel's own Python runtime
    tok = load_tokenizer(folder / "tokenizer.json")
    for text, row in zip(texts, got):
        enc = tok.encode(text, max_length=64)
        want = bindings({"input_ids": np.array([enc.input_ids]), "attention_mask": np.array([enc.attention_mask]),
                         "token_type_ids": np.array([enc.token_type_ids])})[0]
        assert np.abs(row - want).max() < 1e-5


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_the_bundled_pte_answers_raw_text_like_the_pytorch_student(bundled):
    """Outside the pipeline: the bundle's own files (tokenizer.json, model.pte) through the runner's tokenizer and
    ExecuTorch, against the PyTorch student, on texts the check did not see."""
    from compress.tasks import load_any_student
    from targets.runtime import ExecuTorchModel
    from targets.tokenizer import load_tokenizer
    from transformers import AutoTokenizer

    folder = bundled / "bundle" / "android-executorch"
    spec = json.loads((folder / "model.json").read_text())
    model = ExecuTorchModel(folder / "model.pte", threads=1)
    ours = load_tokenizer(folder / "tokenizer.json")
    student = load_any_student(bundled / "student").eval()
    hf = AutoTokenizer.from_pretrained(bundled / "student")
    for text in ("a gripping, beautifully acted film", "dull", "It's neither as funny nor as moving as it wants to be."):
        enc = ours.encode(text, max_length=spec["max_length"])
        got = model({"input_ids": np.array([enc.input_ids]), "attention_mask": np.array([enc.attention_mask]),
                     "token_type_ids": np.array([enc.token_type_ids])})
        with torch.no_grad():
            want = student(**hf(text, return_tensors="pt")).logits.numpy()
        assert got.argmax(-1) == want.argmax(-1)
        assert np.abs(got - want).max() < 0.05  # the shipped file may be int8 / int4


def test_export_executorch_on_without_the_package_is_one_line(tiny_teacher, tiny_data, tiny_recipe, tmp_path, monkeypatch, capsys):
    from compress.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(tiny_recipe.read_text().replace("executorch: off", "executorch: on"))
    monkeypatch.setitem(sys.modules, "executorch", None)  # as if the extra were not installed
    rc = main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe),
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "ExecuTorch" in err[0] and "bert-compress[executorch]" in err[0] and "export.executorch: off" in err[0]
    assert not (tmp_path / "out").exists()


def test_a_pte_runs_without_torch_through_the_native_library_and_both_engines_agree(tmp_path, tiny_classifier):
    """The runner's torch-free path: ExecuTorch's C++ runtime through ctypes, in a process where torch cannot be
    imported; the Python bindings (which need torch) give the same logits. Asking for the bindings without torch is
    one clear line."""
    from compress.export.executorch import lower_to_pte
    from compress.export.onnx import LogitsOnly
    from targets.runtime import ExecuTorchModel

    path = lower_to_pte(LogitsOnly(tiny_classifier), ["input_ids", "attention_mask"], tmp_path / "m.pte", 32, [32]).path
    feeds = _feeds(11, pad=2)
    python = ExecuTorchModel(path, threads=1, engine="python")
    assert python.engine == "python" and python.input_names == ["input_ids", "attention_mask"]
    want = python(feeds)
    np.save(tmp_path / "feeds.npy", np.stack([feeds["input_ids"], feeds["attention_mask"]]))
    code = ("import sys, json; sys.modules['torch'] = None\n"
            "import numpy as np\n"
            "from targets.runtime import ExecuTorchModel, RuntimeLoadError\n"
            f"ids, mask = np.load({str(tmp_path / 'feeds.npy')!r})\n"
            f"m = ExecuTorchModel({str(path)!r}, threads=1)\n"
            "print(json.dumps({'engine': m.engine, 'logits': m({'input_ids': ids, 'attention_mask': mask}).tolist()}))\n"
            f"try:\n    ExecuTorchModel({str(path)!r}, engine='python')\nexcept RuntimeLoadError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    got = json.loads(first)
    assert got["engine"] == "native"
    assert np.abs(np.array(got["logits"]) - want).max() < 1e-5
    assert "links libtorch" in second and "needs no torch" in second


def test_a_token_classifier_pte_gives_a_tag_row_per_fed_token(tmp_path):
    """Token logits [1, L, tags] from the .pte, at the text's own length, equal to PyTorch's; the runner gives them
    back at the fed width, as the ONNX and LiteRT sessions do."""
    from transformers import BertConfig, BertForTokenClassification

    from compress.export.executorch import lower_to_pte
    from compress.export.onnx import LogitsOnly
    from targets.runtime import ExecuTorchModel

    torch.manual_seed(1)
    cfg = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                     num_labels=5, max_position_embeddings=64)
    model = BertForTokenClassification(cfg).eval()
    path = lower_to_pte(LogitsOnly(model), ["input_ids", "attention_mask", "token_type_ids"], tmp_path / "t.pte", 64,
                        [64]).path
    pte = ExecuTorchModel(path, threads=1)
    feeds = _feeds(13)
    padded = {k: np.concatenate([v, np.zeros((1, 4), dtype=v.dtype)], axis=1) for k, v in feeds.items()}  # batch padding
    got = pte(padded)
    assert got.shape == (1, 17, 5) and not got[0, 13:].any()
    assert np.abs(got[:, :13] - _torch(model, feeds)).max() < 1e-4
