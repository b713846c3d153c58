"""The device side as a user meets it: each bundle's README run as written in a Python holding only what its `pip`
lines install; `check` and `bench` going through every model whose runtime is there and naming the others; empty
input refused in one line; the android-executorch bundle checked by the pi bundle's runner."""

import json
import shutil
import subprocess
import sys

import pytest

from tests.helpers import HAS_EXECUTORCH, HAS_TFLITE, device_python, run_readme_as_written, run_torch_free


@pytest.mark.slow
def test_the_pi_bundle_readme_runs_as_written_with_only_what_it_installs(bundled, tmp_path):
    """The first block installs numpy + onnxruntime only: `check` and `bench` run the ONNX file and list the .tflite
    and .pte as skipped with what to install (exit 0); each other runtime's block runs its own file."""
    bundle = tmp_path / "pi"
    shutil.copytree(bundled / "bundle" / "pi", bundle)
    said = run_readme_as_written(bundle, tmp_path)
    first = said[0]
    assert "model.onnx: pass" in first
    if HAS_TFLITE:
        assert "model.tflite: skipped: no TFLite interpreter is installed: pip install ai-edge-litert" in first
    if HAS_EXECUTORCH:
        assert "model.pte: skipped: ExecuTorch is not installed: pip install --no-deps executorch" in first
    assert "links libtorch" not in first  # the cause named is the missing package, not torch
    bench = json.loads((bundle / "bench.json").read_text())
    assert [m["file"] for m in bench["models"]] == ["model.onnx"]
    assert {s["file"] for s in bench["bundle"]["skipped"]} == {f for f, on in (("model.tflite", HAS_TFLITE),
                                                                                ("model.pte", HAS_EXECUTORCH)) if on}
    assert "negative" in said[-1] or "positive" in said[-1] or "label=" in said[-1]  # the Python block's prediction


@pytest.mark.slow
def test_check_exits_1_when_a_present_model_fails_and_2_when_no_runtime_is_installed(bundled, tmp_path):
    bundle = tmp_path / "pi"
    shutil.copytree(bundled / "bundle" / "pi", bundle)
    bare = device_python(tmp_path / "bare", ["numpy"])
    env = {"PATH": f"{bare}:/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": "runner"}
    proc = subprocess.run(["python", "-m", "targets", "check", "."], cwd=bundle, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: none of the bundle's models can run here: ") and "pip install onnxruntime" in proc.stderr
    # a present model that fails its bar: exit 1 (the check file's reference moved away from what the model gives)
    check = json.loads((bundle / "check.json").read_text())
    check["reference_logits"] = [[-x for x in row] for row in check["reference_logits"]]
    (bundle / "check.json").write_text(json.dumps(check))
    ort = device_python(tmp_path / "ort", ["numpy", "onnxruntime"])
    proc = subprocess.run(["python", "-m", "targets", "check", "."], cwd=bundle, env=env | {"PATH": f"{ort}:/usr/bin:/bin"},
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "model.onnx: FAIL" in proc.stdout


@pytest.mark.slow
def test_empty_or_blank_text_is_refused_in_one_line(bundled):
    pi = bundled / "bundle" / "pi"
    for text in ("", "   \t"):
        proc = run_torch_free(pi, "predict", ".", text)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "text 1 is empty or only whitespace: there is nothing to classify" in proc.stderr
    from targets.bundle import BundleError, Classifier

    clf = Classifier(pi, runtime="onnxruntime", threads=1)
    with pytest.raises(BundleError, match="text 2 is empty"):
        clf.predict(["a fine film", " "])
    assert clf.predict(["a fine film"])[0].label in clf.bundle.labels


@pytest.mark.slow
@pytest.mark.skipif(not HAS_EXECUTORCH, reason="the executorch extra is not installed: pip install -e '.[executorch]'")
def test_the_android_executorch_bundle_is_checked_by_the_pi_runner_as_its_readme_says(bundled, tmp_path):
    built = json.loads((bundled / "stages" / "bundle.json").read_text())
    made = {p["platform"]: p for p in built["platforms"]}
    if made["android-executorch"].get("skipped"):
        pytest.skip(made["android-executorch"]["skipped"])
    shutil.copytree(bundled / "bundle", tmp_path / "bundle")
    folder = tmp_path / "bundle" / "android-executorch"
    assert {"metadata.json", "check.json", "model.pte"} <= {p.name for p in folder.iterdir()}
    said = run_readme_as_written(folder, tmp_path)
    assert "model.pte: pass" in said[0]


def test_a_missing_executorch_is_named_as_such_not_as_missing_torch(tmp_path):
    """The real cause, from a Python without executorch (and without torch): what to install."""
    bare = device_python(tmp_path / "env", ["numpy"])
    code = ("import sys; sys.path.insert(0, {root!r})\n"
            "from targets.runtime import ExecuTorchModel, RuntimeMissing, missing_runtime\n"
            "print(missing_runtime('model.pte'))\n"
            "open('m.pte', 'wb').write(b'x' * 16)\n"
            "try:\n    ExecuTorchModel('m.pte')\nexcept RuntimeMissing as e:\n    print('raised:', e, '|', e.install)\n")
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([str(bare / "python"), "-c", code.format(root=root)], cwd=tmp_path, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().splitlines()
    assert first.startswith("ExecuTorch is not installed: pip install --no-deps executorch")
    assert second.startswith("raised: ExecuTorch is not installed") and "libtorch" not in second
    assert sys.executable  # the host interpreter is untouched: the venv is its own


# ---- int8 decided on the target's instruction set -----------------------------------------------------------------
@pytest.mark.slow
def test_bundled_int8_files_are_decided_on_this_machine_and_on_emulated_aarch64(bundled):
    """Every bundled runtime's int8 file is measured here and under qemu (Cortex-A72: no dot-product; Cortex-A76: with
    it) on the dev split; each decision is recorded; the report has a row per (file, instruction set); a platform
    ships an int8 file only where it passed on every instruction set it runs on."""
    from compress.artifacts import Quantization
    from compress.platforms import platforms

    quantize = json.loads((bundled / "stages" / "quantize.json").read_text())
    sets = quantize["instruction_sets"]
    assert sets["asked"] == ["aarch64", "aarch64-dotprod"]
    if not sets["emulated"]:
        pytest.skip(f"no emulated aarch64 here: {sets['not_emulated']}")
    report = (bundled / "report.md").read_text()
    for a in quantize["artifacts"] + quantize["rejected"]:
        q = a["quantization"]
        decisions = q["decisions"]
        assert decisions["host"]["emulated"] is False and decisions["host"]["core"] is None
        for name, core in (("aarch64", "cortex-a72"), ("aarch64-dotprod", "cortex-a76")):
            d = decisions[name]
            assert d["emulated"] is True
            if "error" in d:  # e.g. no aarch64 cross compiler for the .pte library: said, and host decides
                continue
            assert d["core"] == core and 0 <= d["agreement"] <= 1 and d["quality"] is not None
            assert f"| {a['name']} | " in report and f"{name} (emulated {core})" in report
        assert q["passed_on"] == [s for s in ("host", "aarch64", "aarch64-dotprod") if decisions[s].get("passed")]
    built = json.loads((bundled / "stages" / "bundle.json").read_text())
    typed = {a["name"]: a for a in quantize["artifacts"]}
    runs_on = {p.name: p.instruction_sets for p in platforms()}
    for p in built["platforms"]:
        assert p["instruction_sets"] == list(runs_on[p["platform"]])
        if p.get("artifact") in typed:  # an int8 file: passed wherever that platform runs
            q = Quantization.from_dict(typed[p["artifact"]]["quantization"])
            assert q.holds_on(tuple(p["instruction_sets"]))
            if p["platform"] == "android-litert" and q.decided_on(tuple(p["instruction_sets"])):
                # the file re-made for the task libraries is itself run under both emulated cores
                emulated = p["check"]["emulated"]
                assert set(emulated) == {"aarch64", "aarch64-dotprod"}
                assert all(d["passed"] and d["rows_emulated"] >= 1 for d in emulated.values() if "error" not in d)


def test_without_qemu_the_aarch64_decision_is_not_made_and_the_run_says_so(monkeypatch, tmp_path, capsys):
    from compress.data.batching import Encoded
    from compress.quantize.numerics import emulated_numerics

    import numpy as np

    enc = Encoded({"input_ids": [[101, 2023, 102]], "attention_mask": [[1, 1, 1]], "token_type_ids": [[0, 0, 0]]},
                  np.array([0]), 0)
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu-aarch64 on it
    monkeypatch.delenv("BERT_COMPRESS_EMULATE", raising=False)
    numerics, why = emulated_numerics(["aarch64", "aarch64-dotprod"], enc)
    assert numerics is None and why.startswith("qemu-user is not installed")
    monkeypatch.setenv("BERT_COMPRESS_EMULATE", "off")
    assert emulated_numerics(["aarch64"], enc) == (None, "BERT_COMPRESS_EMULATE=off")
    assert emulated_numerics([], enc) == (None, None)  # none asked: nothing to say


def test_a_file_ships_where_it_passed_and_where_it_was_not_measured_this_machine_decides():
    from compress.artifacts import Quantization

    def q(decisions):
        return Quantization.from_dict({"backend": "litert-dynamic", "settings": {}, "decisions": decisions})

    arm_only = q({"host": {"passed": False}, "aarch64": {"passed": True}, "aarch64-dotprod": {"passed": True}})
    assert arm_only.holds_on(("aarch64", "aarch64-dotprod")) and not arm_only.holds_on(("host", "aarch64"))
    assert arm_only.decided_on(("aarch64", "aarch64-dotprod")) and not arm_only.decided_on(("aarch64-i8mm",))
    unmeasured = q({"host": {"passed": True}, "aarch64": {"error": "no cross compiler"}})
    assert unmeasured.holds_on(("aarch64",)) and not unmeasured.decided_on(("aarch64",))
    assert q({}).holds_on(("aarch64",))  # a record of an earlier version: the guard on its machine decided


def test_agreement_where_the_student_is_sure_leaves_out_near_ties():
    import numpy as np

    from compress.quantize.numerics import confident_agreement

    reference = np.array([[2.0, -2.0]] * 98 + [[0.01, -0.01], [-0.02, 0.02]], dtype=np.float32)
    outputs = reference.copy()
    outputs[:, 0] += 0.05  # an int8 error of 0.05 on every row: the two near-ties flip
    got = confident_agreement(reference, outputs)
    assert got["flips"] == 1 and got["flips_where_unsure"] == 1  # [0.01,-0.01] stays; [-0.02,0.02] flips
    assert got["confident_rows"] == 98 and got["confident_agreement"] == 1.0
    assert abs(got["int8_error_p99"] - 0.05) < 1e-6
    assert confident_agreement(np.zeros((3, 8)), np.zeros((3, 8)) + 1)["confident_rows"] == 0
    assert confident_agreement(np.zeros((3,)), np.zeros((3,))) is None
