"""The platform bundles (OUT/bundle/<platform>/ + .zip) of a whole tiny run, checked with the platforms' own
libraries: MediaPipe Tasks reads the android-litert .tflite from a string, onnxruntime + onnxruntime-extensions run
the string-in ONNX, transformers.js (Node) runs the web folder. Each is compared with the same model fed the
Python tokenizer's ids."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

from tests.helpers import HAS_EXECUTORCH, HAS_TFLITE, needs_tflite

TEXTS = ["a gripping, beautifully acted film", "dull, lifeless and far too long.", "It's OK!", "",
         "the plot... WAS 100% predictable :(", " ".join(["a remarkably tedious and overlong film"] * 40)]


def _report(out):
    return json.loads((out / "report.json").read_text())


def _platform(out, name):
    return next(p for p in _report(out)["bundle"]["platforms"] if p["platform"] == name)


def _hf_ids(out, texts, max_length, pad_to=None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out / "student")
    padding = "max_length" if pad_to else False
    return [tok(t, truncation=True, max_length=pad_to or max_length, padding=padding, return_tensors="np") for t in texts]


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_every_platform_has_a_folder_and_a_zip_of_exactly_its_files(bundled):
    platforms = {p["platform"]: p for p in _report(bundled)["bundle"]["platforms"]}
    assert set(platforms) == {"pi", "android-litert", "ios-litert", "android-ort", "ios-ort", "web", "android-executorch"}
    # the string-in ONNX in ONNX Runtime's format (export.ort_format, on by default)
    expected = {"android-ort": {"README.md", "labels.txt", "model.json", "model.ort"},
                "web": {"README.md", "config.json", "tokenizer.json", "tokenizer_config.json", "onnx/model.onnx",
                        "onnx/model_quantized.onnx"}}
    if HAS_TFLITE:
        expected["android-litert"] = {"README.md", "model.tflite"}  # vocabulary and labels are inside the model
    expected["ios-ort"] = expected["android-ort"]
    if HAS_EXECUTORCH:  # ids in: the app tokenizes with vocab.txt
        # + metadata.json and check.json in the runner's format: `python -m targets check` reads the bundle as it is
        expected["android-executorch"] = {"README.md", "labels.txt", "model.json", "model.pte", "tokenizer.json", "vocab.txt",
                                          "metadata.json", "check.json"}
    for name, files in expected.items():
        p = platforms[name]
        assert p["skipped"] is None, (name, p["skipped"])
        folder = bundled / "bundle" / name
        assert {f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file()} == files
        assert set(p["files"]) == files
        with zipfile.ZipFile(bundled / "bundle" / f"{name}.zip") as zf:  # the zip holds that folder and nothing else
            assert sorted(zf.namelist()) == sorted(f"{name}/{f}" for f in files)
        assert p["zip_bytes"] == (bundled / "bundle" / f"{name}.zip").stat().st_size
    # iOS ships Android's model file byte for byte, with a Swift README
    assert (bundled / "bundle/ios-ort/model.ort").read_bytes() == (bundled / "bundle/android-ort/model.ort").read_bytes()
    assert "```swift" in (bundled / "bundle/ios-ort/README.md").read_text()
    assert "```kotlin" in (bundled / "bundle/android-ort/README.md").read_text()
    for name in expected:  # every README says that text longer than the model's length is cut
        assert "truncated" in (bundled / "bundle" / name / "README.md").read_text() or "cut there" in \
            (bundled / "bundle" / name / "README.md").read_text(), name
    pi = bundled / "bundle" / "pi"
    assert (pi / "runner" / "targets" / "runtime.py").is_file() and not (pi / "model.ort").exists()


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
@needs_tflite
def test_mediapipe_reads_the_android_litert_model_from_a_string(bundled):
    """MediaPipe Tasks' TextClassifier, strings in: the same probabilities as the same .tflite fed the Python
    tokenizer's ids (the metadata's vocabulary, lower-casing and input roles are right), truncation included."""
    from ai_edge_litert.interpreter import Interpreter

    from compress.platforms.mediapipe_check import run_mediapipe

    p = _platform(bundled, "android-litert")
    assert p["skipped"] is None and p["check"]["passed"] and p["check"]["tool"].startswith("MediaPipe Tasks TextClassifier")
    # the bar is taken on the texts MediaPipe's tokenizer reads as the student's (ASCII); all texts are a note
    assert p["check"]["agreement_name"] == "label agreement (ASCII texts)"
    assert any(n.startswith("label agreement on all ") and "ASCII-only texts" in n for n in p["check"]["notes"])
    model = bundled / "bundle" / "android-litert" / "model.tflite"
    max_length = json.loads((bundled / "bundle/pi/metadata.json").read_text())["max_length"]
    got, ms, tool = run_mediapipe(model, TEXTS, embedding=False, width=2)
    assert ms > 0 and "MediaPipe" in tool
    runner = Interpreter(model_path=str(model)).get_signature_runner()
    for text, enc, row in zip(TEXTS, _hf_ids(bundled, TEXTS, max_length, pad_to=max_length), got):
        feeds = {k: enc[k].astype(np.int32) for k in ("input_ids", "attention_mask", "token_type_ids")}
        expected = next(iter(runner(**feeds).values()))[0]
        np.testing.assert_allclose(row, expected, atol=1e-5, err_msg=text)
        assert abs(row.sum() - 1) < 1e-4  # probabilities: MediaPipe's scores


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_the_string_in_onnx_runs_in_onnxruntime_with_the_extensions(bundled):
    """The android-ort model loaded the way an app loads it (onnxruntime + the extensions library, a string in) gives
    the logits of the ids-in artifact it wraps fed Hugging Face's ids, truncation included; offsets come out too."""
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path

    p = _platform(bundled, "android-ort")
    assert p["string_in"] and p["check"]["passed"] and p["details"]["dev_ids_as_huggingface"] == 1.0
    options = ort.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    session = ort.InferenceSession(str(bundled / "bundle/android-ort" / p["model_file"]), options)
    assert p["model_file"] == "model.ort" and any("ONNX Runtime format" in n for n in p["check"]["notes"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [("text", "tensor(string)")]
    assert [o.name for o in session.get_outputs()] == ["logits", "offset_mapping"]
    plain = ort.InferenceSession(str(bundled / next(a["path"] for a in _report(bundled)["artifacts"] if a["name"] == p["artifact"])))
    max_length = json.loads((bundled / "bundle/android-ort/model.json").read_text())["max_length"]
    for text, enc in zip(TEXTS, _hf_ids(bundled, TEXTS, max_length)):
        logits, offsets = session.run(None, {"text": np.array([text], dtype=object)})
        names = [i.name for i in plain.get_inputs()]
        expected = plain.run(["logits"], {n: enc[n].astype(np.int64) for n in names})[0]
        np.testing.assert_allclose(logits, expected, atol=1e-5, err_msg=text)
        assert offsets.shape == (enc["input_ids"].shape[1], 2)
    long = TEXTS[-1]
    assert _hf_ids(bundled, [long], max_length)[0]["input_ids"].shape[1] == max_length  # the long text was cut


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_the_web_folder_runs_in_transformers_js(bundled):
    from compress.platforms.web import run_check, transformers_js_missing

    missing = transformers_js_missing()
    p = _platform(bundled, "web")
    if missing:
        assert any(missing in n for n in p["details"]["notes"])  # built, and the report says why it was not run
        pytest.skip(missing)
    assert p["check"]["passed"] and p["check"]["tool"].startswith("transformers.js")
    import onnxruntime as ort

    folder = bundled / "bundle" / "web"
    got = run_check(folder, TEXTS[:-1], "fp32", "text-classification")
    session = ort.InferenceSession(str(folder / "onnx" / "model.onnx"))
    for text, enc, row in zip(TEXTS, _hf_ids(bundled, TEXTS[:-1], 512), got["results"]):
        assert row["input_ids"] == enc["input_ids"][0].tolist(), text  # transformers.js tokenizes as Hugging Face
        names = [i.name for i in session.get_inputs()]
        expected = session.run(None, {n: enc[n].astype(np.int64) for n in names})[0][0]
        np.testing.assert_allclose(row["logits"], expected, atol=1e-5, err_msg=text)
    assert got["meta"]["model_max_length"] == json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"]


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_the_report_names_what_to_ship_per_platform(bundled):
    md = (bundled / "report.md").read_text()
    assert "### What to ship, per platform" in md and "## Tokenizer in the graph" in md
    for p in _report(bundled)["bundle"]["platforms"]:
        if not p["skipped"]:
            assert f"`{p['zip']}`" in md, p["platform"]
    string_in = _report(bundled)["string_in"]
    assert {r["artifact"] for r in string_in} >= {"student-onnx-fp32"}
    assert all(c["batch"] == 1 for r in string_in for c in r["text_latency"])


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_a_platform_that_cannot_take_the_model_is_skipped_with_its_reason(bundled, tmp_path, capsys):
    """A tokenizer the TFLite metadata and the in-graph tokenizer cannot describe: those bundles are skipped with one
    line each (in the output and the report); the others are built."""
    from compress.cli import main

    out = tmp_path / "out"
    shutil.copytree(bundled, out)
    tok = json.loads((out / "student" / "tokenizer.json").read_text())
    tok["normalizer"]["lowercase"] = False  # a cased WordPiece vocabulary: MediaPipe lower-cases every input
    (out / "student" / "tokenizer.json").write_text(json.dumps(tok))
    assert main(["bundle", "--out", str(out), "--force"]) == 0
    err = capsys.readouterr().err
    if HAS_TFLITE:
        p = _platform(out, "android-litert")
        assert p["skipped"] == "the student's tokenizer is cased; MediaPipe's BERT tokenizer always lower-cases its input"
        assert "bundle android-litert: skipped" in err and not (out / "bundle" / "android-litert").exists()
        assert "not built: the student's tokenizer is cased" in (out / "report.md").read_text()
    assert _platform(out, "pi")["skipped"] is None
