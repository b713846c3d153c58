"""End to end on a tiny random BERT (seconds): every stage, the report contract, reuse and refusal."""

import json

import numpy as np
import subprocess
from pathlib import Path
import sys

import pytest

from compress.cli import main

LAT_KEYS = {"threads", "seq_len", "batch", "p50_ms", "p90_ms", "p99_ms", "throughput_per_s", "runs", "achieved_gflop_s"}


def check_timed(entry: dict, seq_lens, threads, batches=(1, 8)):
    """Every cell of the matrix, with sane percentiles, plus the model's load time and peak RSS."""
    assert {(e["seq_len"], e["threads"], e["batch"]) for e in entry["latency"]} == {
        (s, t, b) for s in seq_lens for t in threads for b in batches}
    for e in entry["latency"]:
        assert LAT_KEYS <= set(e) and 0 < e["p50_ms"] <= e["p90_ms"] <= e["p99_ms"] and e["runs"] >= 3
        assert e["throughput_per_s"] > 0 and e["achieved_gflop_s"] > 0
    assert entry["load_s"] > 0 and entry["peak_rss_bytes"] > 10e6


def check_report(report: dict, seq_lens, threads, batches=(1, 8)):
    for key in ("teacher", "student"):
        entry = report[key]
        for field in ("params", "size_bytes", "quality", "latency"):
            assert field in entry, (key, field)
        assert entry["params"] > 0 and entry["size_bytes"] > 0 and 0 <= entry["quality"] <= 1
        check_timed(entry, seq_lens, threads, batches)
    assert report["student"]["params"] < report["teacher"]["params"]
    # the teacher in ONNX Runtime fp32: a reference row timed in the same bench run, the same model as the teacher
    (onnx_teacher,) = [r for r in report["references"] if r["name"] == "teacher-onnx-fp32"]
    check_timed(onnx_teacher, seq_lens, threads, batches)
    assert onnx_teacher["quality"] == pytest.approx(report["teacher"]["quality"], abs=1 / 48 + 1e-9)
    assert report["summary"]["onnx_teacher_p50_ms"] > 0
    fp32 = [a for a in report["artifacts"] if not a.get("quantization")]
    names = [a["name"] for a in fp32]
    # the portable ONNX and its fused variant always; TFLite and ExecuTorch when the recipe and the extras allow them
    assert names[:2] == ["student-onnx-fp32", "student-onnx-fp32-ort-opt"], report.get("rejected_artifacts")
    assert names[2:] in ([], ["student-tflite-fp32"], ["student-pte-fp32"], ["student-tflite-fp32", "student-pte-fp32"])

    for art in report["artifacts"]:
        if art.get("quantization"):  # shipped only within the guard's tolerance
            q = art["quantization"]
            assert q["drop_points"] <= 1.0 and art["agreement"] >= 0.99
            assert q["backend"] in ("ort-dynamic", "ort-static", "litert-dynamic", "executorch-xnnpack")
            check_timed(art, seq_lens, threads, batches)
    for art in fp32:
        for field in ("name", "format", "path", "size_bytes", "quality", "max_abs_diff", "agreement", "latency"):
            assert field in art
        assert art["format"] in ("onnx", "tflite", "pte") and art["max_abs_diff"] < 1e-3 and art["agreement"] >= 0.999
        check_timed(art, seq_lens, threads, batches)
        # the exported model is the student: same test accuracy (one row may flip on a near-tie)
        assert art["quality"] == pytest.approx(report["student"]["quality"], abs=1 / 48 + 1e-9)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_teacher, tiny_data, tiny_recipe):
    out = tmp_path_factory.mktemp("run") / "out"
    code = main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(tiny_recipe), "--out", str(out)])
    assert code == 0
    return out


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_run_writes_every_output(finished_run):
    out = finished_run
    for rel in ("teacher/config.json", "teacher/model.safetensors", "student/config.json", "student/model.safetensors",
                "student/tokenizer.json", "export/model.onnx", "report.json", "report.md", "recipe.yaml"):
        assert (out / rel).is_file(), rel
    report = json.loads((out / "report.json").read_text())
    check_report(report, [32, 16], [1])
    assert report["teacher"]["finetuned"] is True and report["student"]["layers"] == 1
    assert report["data"]["labels"] == ["negative", "positive"]
    student_cfg = json.loads((out / "student/config.json").read_text())
    assert student_cfg["id2label"] == {"0": "negative", "1": "positive"}  # labels travel with the model
    md = (out / "report.md").read_text()
    assert "## Headline" in md and "student-onnx-fp32" in md
    assert "faster than the teacher in ONNX Runtime fp32" in md and "| × eager teacher | × ONNX teacher |" in md
    assert "| teacher-onnx-fp32 (reference, not shipped) | onnxruntime |" in md
    assert not list(out.rglob(".tmp-*")), "temporary files left behind"


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_existing_out_is_refused_without_force(finished_run, tiny_teacher, tiny_data, tiny_recipe, capsys):
    before = (finished_run / "report.json").read_bytes()
    code = main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(tiny_recipe), "--out", str(finished_run)])
    assert code == 2
    assert "already exists" in capsys.readouterr().err
    assert (finished_run / "report.json").read_bytes() == before


@pytest.mark.slow
def test_stage_commands_and_teacher_reuse(tmp_path, tiny_teacher, tiny_data, tiny_recipe, capsys):
    out = tmp_path / "staged"
    args = ["--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(tiny_recipe), "--out", str(out)]
    assert main(["bench", *args]) == 2
    assert "needs the finetune stage" in capsys.readouterr().err
    assert main(["finetune", *args]) == 0
    assert main(["finetune", "--out", str(out)]) == 0  # the saved recipe is reused; so is the teacher
    assert "reusing the fine-tuned teacher" in capsys.readouterr().err
    assert main(["distill", "--out", str(out)]) == 0
    assert main(["distill", "--out", str(out)]) == 2  # would overwrite the student
    assert "pass --force" in capsys.readouterr().err
    assert main(["export", "--out", str(out)]) == 0
    assert main(["bench", "--out", str(out)]) == 0
    check_report(json.loads((out / "report.json").read_text()), [32, 16], [1])
    # a whole forced run over it keeps the cached teacher
    assert main(["run", *args, "--force"]) == 0
    assert "reusing the fine-tuned teacher" in capsys.readouterr().err


def test_export_mismatch_stops_the_run(tmp_path, tiny_teacher, tiny_data, tiny_recipe, capsys):
    strict = tmp_path / "strict.yaml"
    strict.write_text(tiny_recipe.read_text() + "export: {atol: 1.0e-12, executorch: off}\n")
    out = tmp_path / "out"
    code = main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(strict), "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "does not match PyTorch" in err and "Traceback" not in err
    assert not (out / "export").exists() and not (out / "report.json").exists()


@pytest.mark.slow
def test_teacher_with_a_matching_head_is_not_finetuned(tmp_path, tiny_data, tiny_recipe, capsys):
    from tests.helpers import make_tiny_bert

    teacher = make_tiny_bert(tmp_path / "headed", head_labels=["positive", "negative"])
    out = tmp_path / "out"
    code = main(["run", "--teacher", str(teacher), "--data", str(tiny_data), "--recipe", str(tiny_recipe), "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["teacher"]["finetuned"] is False and not (out / "teacher").exists()
    # the head's label order wins, so its logits keep their meaning
    assert report["data"]["labels"] == ["positive", "negative"]


def test_console_script_and_module_entry_points(tmp_path):
    # the console script sits beside the interpreter (a virtual environment need not be activated)
    script = Path(sys.executable).with_name("bert-compress")
    assert script.is_file(), f"no console script {script}: install the package with pip"
    for cmd in ([str(script), "recipes"], [sys.executable, "-m", "compress", "recipes"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "default" in proc.stdout


@pytest.mark.slow
def test_tinybert_two_stage_run_with_general_distillation(tmp_path, tiny_teacher, tiny_data):
    """A narrower student, projections, general + two task stages; the exported student holds no projection."""
    import onnx
    import torch
    from tests.helpers import write_jsonl

    unlabeled = write_jsonl(tmp_path / "plots.jsonl", [{"text": f"a film about {w} and more {w}"} for w in ("cats", "war", "love", "space")] * 8)
    recipe = tmp_path / "tb.yaml"
    recipe.write_text(f"""
teacher: {{epochs: 1, lr: 1.0e-3, batch_size: 16}}
student: {{num_layers: 1, hidden_size: 16, num_attention_heads: 2, intermediate_size: 24}}
data: {{max_length: 64}}
export: {{executorch: off}}
distill:
  batch_size: 16
  general: {{data: {unlabeled}, epochs: 1}}
  stages:
    - {{name: intermediate, epochs: 1, lr: 1.0e-3, losses: {{tinybert_embedding: {{}}, tinybert_hidden: {{}}, tinybert_attention: {{}}}}}}
    - {{name: prediction, epochs: 2, losses: {{tinybert_prediction: {{temperature: 1.0}}, hard_ce: {{weight: 0.5}}}}}}
bench: {{seq_lens: [16], threads: [1], warmup: 1, runs: 3, min_seconds: 0, rounds: 1, isolate: false}}
""")
    out = tmp_path / "out"
    assert main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe), "--out", str(out)]) == 0
    record = json.loads((out / "stages/distill.json").read_text())
    assert [s["stage"] for s in record["stages"]] == ["general", "intermediate", "prediction"]
    assert record["layer_map"] == [[1, 2]] and record["projections"] == {"embeddings": [32, 16], "layer1": [32, 16]}
    projections = torch.load(out / "stages/distill-projections.pt")
    assert set(projections) == {"embeddings.weight", "embeddings.bias", "layer1.weight", "layer1.bias"}
    # the student and its ONNX export: no projection anywhere, sizes = the student's own parameters
    from safetensors.torch import load_file

    student_sd = load_file(out / "student/model.safetensors")
    assert not [k for k in student_sd if "projection" in k or k.startswith(("embeddings.", "layer1."))]
    onnx_model = onnx.load(out / "export/model.onnx")
    assert not [t.name for t in onnx_model.graph.initializer if 32 in t.dims], "a teacher-width tensor was exported"
    onnx_params = sum(int(np.prod(t.dims)) for t in onnx_model.graph.initializer)
    one_projection = 32 * 16 + 32
    # beyond the student's own tensors only small graph constants (position ids, shapes) may appear
    assert onnx_params - sum(v.numel() for v in student_sd.values()) < one_projection
    report = json.loads((out / "report.json").read_text())
    assert report["student"]["hidden_size"] == 16


@pytest.mark.slow
@pytest.mark.parametrize("sharing", ["all", "attention", "ffn"])
def test_albert_style_student_end_to_end(tmp_path, tiny_teacher, tiny_data, sharing):
    recipe = tmp_path / "albert.yaml"
    recipe.write_text(f"""
teacher: {{epochs: 1, lr: 1.0e-3, batch_size: 16}}
student: {{num_layers: 2, embedding_size: 8, sharing: {sharing}}}
data: {{max_length: 64}}
export: {{executorch: off}}
distill:
  batch_size: 16
  stages:
    - {{name: intermediate, epochs: 1, lr: 1.0e-3, losses: {{tinybert_embedding: {{}}, tinybert_hidden: {{}}, tinybert_attention: {{}}}}}}
    - {{name: prediction, epochs: 1, losses: {{distilbert_soft: {{}}, hard_ce: {{}}}}}}
quantize:
  max_accuracy_drop: 100
  min_label_agreement: 0.01
  candidates: [{{backend: ort-dynamic}}, {{backend: nncf}}, {{backend: torchao, qad_epochs: 1}}]
bench: {{seq_lens: [16], threads: [1], warmup: 1, runs: 3, min_seconds: 0, rounds: 1, isolate: false}}
""")
    out = tmp_path / "out"
    assert main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe), "--out", str(out)]) == 0
    record = json.loads((out / "stages/distill.json").read_text())
    assert record["architecture"] == "albert" and record["build"]["embedding_size"] == 8
    # every quantization path takes the shared layers: ONNX Runtime, NNCF, torchao with QAD
    shipped = {a["quantization"]["backend"]: a for a in json.loads((out / "stages/quantize.json").read_text())["artifacts"]}
    assert set(shipped) == {"ort-dynamic", "nncf", "torchao"}
    assert (out / shipped["ort-dynamic"]["path"]).stat().st_size < (out / "export/model.onnx").stat().st_size / 2
    assert 0 <= record["build"]["svd_relative_error"] < 1
    from compress.student.albert import load_student, unique_state_dict

    student = load_student(out / "student")
    unique_bytes = sum(t.numel() * t.element_size() for t in unique_state_dict(student).values())
    assert (out / "export/model.onnx").stat().st_size <= unique_bytes * 1.05 + 64 * 1024
    report = json.loads((out / "report.json").read_text())
    assert report["artifacts"][0]["agreement"] >= 0.999
