"""RoBERTa- and XLM-R-style teachers (byte-level BPE and Unigram tokenizers) through the whole pipeline, bundle
included: the device runner tokenizes them with the `tokenizers` library and gives the artifacts' outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compress.cli import main
from tests.helpers import make_tiny_roberta, run_torch_free

pytestmark = pytest.mark.slow  # whole runs of the pipeline (or of training, killed and resumed)

RECIPE = """
name: other-tokenizers
teacher: {{epochs: 1, lr: 1.0e-3, batch_size: 16}}
student: {{num_layers: 1}}
distill: {{epochs: 1, lr: 1.0e-3, batch_size: 16}}
data: {{max_length: 64}}
export: {{tflite: {tflite}, executorch: off, tflite_buckets: [32, 64]}}
quantize:
  max_accuracy_drop: 100
  min_label_agreement: 0.01
  candidates: [{{backend: ort-dynamic}}]
bench: {{seq_lens: [32], threads: [1], batches: [1], warmup: 1, runs: 3, min_seconds: 0, rounds: 1, isolate: false, gemm_peak: false}}
"""


@pytest.mark.parametrize("kind, model_type, tflite", [("roberta", "bpe", "auto"), ("xlm-roberta", "unigram", "off")])
def test_non_wordpiece_teacher_runs_to_a_checked_bundle(kind, model_type, tflite, tmp_path, tiny_data):
    from compress import run as api
    from compress.export.verify import device_logits
    from compress.recipe import resolve_recipe
    from targets.bundle import Bundle, Classifier
    from targets.runtime import load_model

    teacher = make_tiny_roberta(tmp_path / kind, kind=kind)
    (tmp_path / "recipe.yaml").write_text(RECIPE.format(tflite=tflite))
    out = tmp_path / "out"
    assert main(["run", "--teacher", str(teacher), "--data", str(tiny_data), "--recipe", str(tmp_path / "recipe.yaml"),
                 "--out", str(out)]) == 0
    bundle = Bundle.load(out / "bundle" / "pi")
    tok = bundle.metadata["tokenizer"]
    assert tok["type"] == model_type and tok["vocab"] is None and not (out / "bundle" / "pi" / "vocab.txt").exists()
    assert tok["special_tokens"]["<s>"] == 0 and tok["pad_id"] == 1
    assert not bundle.metadata.get("rejected"), bundle.metadata.get("rejected")
    readme = (out / "bundle" / "pi" / "README.md").read_text()
    assert "pip install tokenizers" in readme and "token_type_ids" not in readme  # these models have no token types

    # the bundles whose formats describe BERT WordPiece only are skipped with the reason, the others are built
    platforms = {p["platform"]: p for p in json.loads((out / "report.json").read_text())["bundle"]["platforms"]}
    assert "BERT WordPiece only" in platforms["android-litert"]["skipped"] or \
        platforms["android-litert"]["skipped"].startswith("no verified TFLite artifact")
    assert platforms["android-ort"]["skipped"] == (f"the student's tokenizer is {model_type}; the in-graph tokenizer "
                                                   "here is onnxruntime-extensions' BERT WordPiece")
    assert platforms["pi"]["skipped"] is None and platforms["web"]["skipped"] is None
    assert f"not built: the student's tokenizer is {model_type}" in (out / "report.md").read_text()

    run = api.prepare(resolve_recipe(str(out / "recipe.yaml")), out, force=False, whole_run=False)
    dev = run.encode("dev", run.student_tokenizer())  # Hugging Face's tokenizer, as the export verified
    texts = [e.text for e in run.data.dev]
    artifacts = {a["name"]: a for a in json.loads((out / "report.json").read_text())["artifacts"]}
    for m in bundle.metadata["models"]:
        expected = device_logits(load_model(out / artifacts[m["artifact"]]["path"]), dev)
        np.testing.assert_allclose(Classifier(bundle, runtime=m["file"]).logits(texts), expected, atol=1e-5)

    r = run_torch_free(out / "bundle" / "pi", "predict", str(out / "bundle" / "pi"), "--json", "a moving film", "dull")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["text"] for line in r.stdout.splitlines()] == ["a moving film", "dull"]
    # a device without the tokenizers package: one line that says what to install
    r = run_torch_free(out / "bundle" / "pi", "predict", str(out / "bundle" / "pi"), "x", blocked=("tokenizers",))
    assert r.returncode == 2 and "pip install tokenizers" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
