"""Quantization backends on a tiny distilled BERT: each artifact loads, runs, is smaller, agrees with fp32;
the accuracy guard falls back and rejects; bad quantization input is one line and exit 2."""

import json
import re
import shutil

import pytest

from compress.cli import main


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_teacher, tiny_data, tiny_recipe):
    """One tiny run up to the verified fp32 export (no quantization): the backends start from a copy of it."""
    out = tmp_path_factory.mktemp("q") / "out"
    args = ["--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(tiny_recipe), "--out", str(out)]
    for stage in ("finetune", "distill", "export"):
        assert main([stage, *args]) == 0
    return out


def _quantize(exported, tmp_path, tiny_teacher, tiny_data, quantize_yaml: str, name="out"):
    out = tmp_path / name
    shutil.copytree(exported, out)
    recipe = tmp_path / "q.yaml"
    base = (exported / "recipe.yaml").read_text()
    recipe.write_text(base.split("\nquantize:")[0] + "\n" + quantize_yaml + "\nbench:" + base.split("\nbench:")[1])
    code = main(["quantize", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe),
                 "--out", str(out), "--force"])
    return code, out


BACKENDS = {
    "ort-dynamic": "{backend: ort-dynamic}",
    "ort-dynamic-plain-per-channel": "{backend: ort-dynamic, graph: plain, per_channel: true}",
    "ort-dynamic-4bit-embeddings": "{backend: ort-dynamic, embedding_bits: 4, embedding_block_size: 32}",
    "ort-static-x86": "{backend: ort-static, activation_type: uint8, weight_type: int8}",
    "ort-static-arm": "{backend: ort-static, activation_type: int8, weight_type: int8, per_channel: true}",
    "ort-static-percentile": "{backend: ort-static, calibration: percentile}",
    "nncf": "{backend: nncf}",
    "torchao-int8-dynamic": "{backend: torchao, scheme: int8-dynamic, embeddings: int8}",
    "torchao-int4-weight": "{backend: torchao, scheme: int4-weight, group_size: 16, embeddings: int8}",
    "torchao-qad": "{backend: torchao, scheme: int8-dynamic, qad_epochs: 1, embeddings: int8}",
}


@pytest.mark.parametrize("case", list(BACKENDS))
def test_each_backend_gives_a_smaller_artifact_that_agrees(case, exported, tmp_path, tiny_teacher, tiny_data):
    code, out = _quantize(exported, tmp_path, tiny_teacher, tiny_data,
                          f"quantize:\n  max_accuracy_drop: 100\n  min_label_agreement: 0.01\n  fallbacks: false\n"
                          f"  calibration_rows: 64\n  candidates: [{BACKENDS[case]}]")
    assert code == 0
    record = json.loads((out / "stages/quantize.json").read_text())
    assert len(record["artifacts"]) == 1, record
    art = record["artifacts"][0]
    path = out / art["path"]
    fp32 = out / "export/model.onnx"
    assert path.is_file() and path.stat().st_size < 0.6 * fp32.stat().st_size
    assert art["verification"]["agreement"] >= 0.9, art
    if "embedding_bits: 4" in BACKENDS[case]:  # the vocabulary table in 4-bit blocks: under a quarter of its fp32 bytes
        import onnx

        ops = {n.op_type for n in onnx.load(str(path)).graph.node}
        assert "GatherBlockQuantized" in ops and "MatMulInteger" in ops
        assert path.stat().st_size < 30522 * 32 * 4 / 6  # fp32 table alone is 30522 × 32 × 4 bytes
    if "qad_epochs: 1" in BACKENDS[case]:  # quantization-aware distillation trained the fake-quantized student
        assert len(art["quantization"]["qad"]["history"]) == 1 and art["quantization"]["qad"]["stage_losses"] == "task"
    assert art["quantization"]["backend"] == BACKENDS[case].split("backend: ")[1].split(",")[0].rstrip("}")
    # it loads and runs outside the stage, and gives the logits the stage measured
    from compress import run as api
    from compress.evaluate import predict_logits
    from compress.export.verify import device_logits
    from compress.recipe import resolve_recipe
    from targets.runtime import OnnxModel

    run = api.prepare(resolve_recipe(str(out / "recipe.yaml")), out, force=False, whole_run=False)
    dev = run.encode("dev", run.student_tokenizer())
    if art["runtime"] == "pytorch":
        from compress.quantize import backend
        from compress.quantize.torchao_ptq import load

        q = art["quantization"]
        logits = predict_logits(load(path, backend("torchao").settings(**q["settings"]), out / "student"), dev)
    else:
        logits = device_logits(OnnxModel(path), dev)
    reference = predict_logits(run.load_student("test"), dev)
    assert abs(logits - reference).max() == pytest.approx(art["verification"]["max_abs_diff"], rel=1e-4, abs=1e-6)


def test_guard_tries_fallbacks_and_rejects_an_impossible_tolerance(exported, tmp_path):
    """A tolerance no artifact can meet: the configured settings and every fallback are tried, none is kept."""
    from compress import run as api
    from compress.quantize import Context
    from compress.quantize.guard import Measured, run_guard
    from compress.recipe import resolve_recipe

    run = api.prepare(resolve_recipe(str(exported / "recipe.yaml")), exported, force=False, whole_run=False)
    calls = []

    def evaluate(backend, settings, path):
        calls.append((backend.name, settings.per_channel, settings.exclude, path.stat().st_size))
        return Measured(quality=0.5, agreement=1.0, max_abs_diff=0.0)

    ctx = Context({"onnxruntime": exported / "export/model.onnx", "onnxruntime/fused": exported / "export/model.ort-opt.onnx"},
                  run.encode("train"), exported / "student", tmp_path)
    attempts = run_guard([{"backend": "ort-dynamic"}], ctx, tmp_path, evaluate, fp32_quality=0.5,
                         max_drop_points=-1.0, min_agreement=0.99)
    assert [c[:3] for c in calls] == [("ort-dynamic", False, "none"), ("ort-dynamic", True, "none"), ("ort-dynamic", True, "sensitive"),
                                      ("ort-dynamic", True, "sensitive+ffn-out")]
    assert [a.name for a in attempts] == ["ort-dynamic", "ort-dynamic-fallback1", "ort-dynamic-fallback2", "ort-dynamic-fallback3"]
    assert not any(a.passed for a in attempts) and not list(tmp_path.glob("*.onnx"))
    # the sensitive nodes stayed fp32, then the FFN outputs too: each fallback's file is larger
    assert calls[3][3] > calls[2][3] > calls[0][3]


def test_guard_keeps_the_first_fallback_that_passes(exported, tmp_path):
    """The configured settings are rejected by the guard: the first fallback is quantized for real, measured on dev
    for real, passes and is kept, recorded as '-fallback1' with its own settings; nothing after it is tried."""
    from dataclasses import replace

    from compress import run as api
    from compress.evaluate import accuracy, predict_logits
    from compress.export.verify import device_logits
    from compress.quantize import Context
    from compress.quantize.guard import Measured, run_guard
    from compress.recipe import resolve_recipe
    from targets.runtime import OnnxModel

    run = api.prepare(resolve_recipe(str(exported / "recipe.yaml")), exported, force=False, whole_run=False)
    dev = run.encode("dev", run.student_tokenizer())
    reference = predict_logits(run.load_student("test"), dev)
    built = []

    def evaluate(backend, settings, path):
        logits = device_logits(OnnxModel(path), dev)  # the artifact itself, run on dev
        built.append((settings.model_dump(), path.read_bytes()))
        m = Measured(accuracy(logits, dev.labels), float((logits.argmax(-1) == reference.argmax(-1)).mean()),
                     float(abs(logits - reference).max()))
        # the strict bar: per-tensor weights count as disagreeing everywhere; what happens next is the guard's
        return m if settings.per_channel else replace(m, agreement=0.0)

    ctx = Context({"onnxruntime": exported / "export/model.onnx", "onnxruntime/fused": exported / "export/model.ort-opt.onnx"},
                  run.encode("train"), exported / "student", tmp_path / "work")
    out = tmp_path / "kept"
    out.mkdir()
    ctx.work.mkdir()
    attempts = run_guard([{"backend": "ort-dynamic"}], ctx, out, evaluate, fp32_quality=accuracy(reference, dev.labels),
                         max_drop_points=100, min_agreement=0.5)
    assert [(a.name, a.fallback, a.passed) for a in attempts] == [("ort-dynamic", 0, False), ("ort-dynamic-fallback1", 1, True)], \
        [a.reason for a in attempts]
    first, kept = attempts
    assert first.settings["per_channel"] is False and kept.settings == first.settings | {"per_channel": True}
    assert "label agreement 0.0000 (needs 0.5)" in first.reason and first.path is None and first.measured is not None
    assert kept.measured.agreement >= 0.5 and f"label agreement {kept.measured.agreement:.4f}" in kept.reason
    # two real, different models were built; only the kept one is left, under the fallback's name
    assert [s for s, _ in built] == [first.settings, kept.settings] and built[0][1] != built[1][1]
    assert kept.path == out / "ort-dynamic-fallback1.onnx" and kept.path.read_bytes() == built[1][1]
    assert sorted(p.name for p in out.iterdir()) == ["ort-dynamic-fallback1.onnx"]


def test_guard_falls_back_through_the_pipeline(exported, tmp_path, tiny_teacher, tiny_data):
    """Zero tolerance on labels: whatever is kept is recorded with the fallback that got there, or rejected."""
    code, out = _quantize(exported, tmp_path, tiny_teacher, tiny_data,
                          "quantize:\n  max_accuracy_drop: 0\n  min_label_agreement: 1.0\n  candidates: [{backend: ort-static, activation_type: int8}]")
    assert code == 0
    record = json.loads((out / "stages/quantize.json").read_text())
    tried = record["rejected"] + record["artifacts"]
    # one candidate: its first try, then each fallback in turn until one passes or none is left
    assert sorted(t["quantization"]["fallback"] for t in tried) == list(range(len(tried)))
    assert len(record["artifacts"]) <= 1  # the first that passes is kept and ends the chain
    assert all(a["quantization"]["fallback"] == len(tried) - 1 for a in record["artifacts"])
    for t in record["rejected"]:  # each rejection breaks the zero tolerance, by the numbers it records
        agreement = float(re.search(r"label agreement ([0-9.]+)", t["reason"]).group(1))
        assert t["quantization"]["drop_points"] > 0 or agreement < 1.0, t["reason"]
    for art in record["artifacts"]:
        assert art["verification"]["agreement"] == 1.0 and art["quantization"]["drop_points"] <= 0
    assert (out / "export/model.onnx").is_file()


def test_quantized_artifacts_are_benchmarked_and_reported(exported, tmp_path, tiny_teacher, tiny_data):
    code, out = _quantize(exported, tmp_path, tiny_teacher, tiny_data,
                          "quantize:\n  max_accuracy_drop: 100\n  min_label_agreement: 0.01\n  candidates: [{backend: ort-dynamic}, {backend: torchao}]")
    assert code == 0
    assert main(["bench", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    by_name = {a["name"]: a for a in report["artifacts"]}
    assert {"student-onnx-fp32", "student-int8-ort-dynamic", "student-int8-torchao"} <= set(by_name)
    q = by_name["student-int8-ort-dynamic"]
    assert q["quantization"]["backend"] == "ort-dynamic" and q["latency"] and 0 <= q["quality"] <= 1
    assert by_name["student-int8-torchao"]["runtime"] == "pytorch"
    assert "Quantization" in (out / "report.md").read_text()


BAD = {
    "unknown backend": ("quantize:\n  candidates: [{backend: tensorrt}]", "unknown quantization backend 'tensorrt'"),
    "unknown setting": ("quantize:\n  candidates: [{backend: ort-dynamic, bits: 3}]", "unknown setting 'bits'"),
    "bad setting value": ("quantize:\n  candidates: [{backend: ort-static, calibration: magic}]", "'calibration'"),
    "empty calibration file": ("quantize:\n  calibration_data: EMPTY\n  candidates: [{backend: ort-static}]", "holds no text"),
    "too small calibration": ("quantize:\n  calibration_data: SMALL\n  candidates: [{backend: ort-static}]", "need at least 16"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_quantization_input(case, exported, tmp_path, tiny_teacher, tiny_data, capsys):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "small.txt").write_text("a fine film\na dull film\n")
    text, message = BAD[case]
    text = text.replace("EMPTY", str(tmp_path / "empty.txt")).replace("SMALL", str(tmp_path / "small.txt"))
    before = (exported / "export/model.onnx").read_bytes()
    capsys.readouterr()
    code, out = _quantize(exported, tmp_path, tiny_teacher, tiny_data, text)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (out / "quantized").exists() and (out / "export/model.onnx").read_bytes() == before


def test_a_model_no_backend_can_quantize(exported, tmp_path, tiny_teacher, tiny_data, capsys):
    """An fp32 export that is not a valid model: every backend fails, one line, exit 2, fp32 kept."""
    out = tmp_path / "broken"
    shutil.copytree(exported, out)
    (out / "export/model.onnx").write_bytes(b"not an onnx model")
    (out / "export/model.ort-opt.onnx").write_bytes(b"not an onnx model")
    recipe = tmp_path / "r.yaml"
    base = (exported / "recipe.yaml").read_text()
    recipe.write_text(base.split("\nquantize:")[0] + "\nquantize:\n  candidates: [{backend: ort-dynamic}, {backend: nncf}]\nbench:"
                      + base.split("\nbench:")[1])
    capsys.readouterr()
    code = main(["quantize", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe),
                 "--out", str(out), "--force"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "no backend could quantize this model" in err[-1]
    assert not (out / "quantized").exists() and (out / "export/model.onnx").read_bytes() == b"not an onnx model"


@pytest.mark.slow  # export, quantize and bench of a copied run
def test_a_format_and_a_quantizer_registered_by_a_test_flow_through_export_quantize_and_bench(exported, tmp_path, tiny_teacher,
                                                                                            tiny_data):
    """A new format is its exporter (what runtime's fp32 file it hands on, its extras) and a new quantizer asks for
    that file by what it is: neither the stages nor the artifact record nor the quantize context learn its name."""
    from compress import export, quantize
    from compress.export.base import Exporter, Made
    from compress.quantize.base import Backend, Precision, Settings

    seen = {}

    def make(inp):
        dst = inp.directory / "model.copy.onnx"
        shutil.copy2(inp.made["student-onnx-fp32"], dst)  # starts from an earlier exporter's file, as fusions do
        return Made(dst, "a copy of the portable ONNX", extras={"copied_from": "model.onnx"})

    class CopySettings(Settings):
        def precision(self):
            return Precision("fp32 (a copy)", "fp32")

    def copy_quantize(settings, ctx, dst):
        source = ctx.require("onnxruntime/copy")
        seen["source"] = (source.path.name, source.extras)
        shutil.copy2(source.path, dst)
        return Made(dst, "", extras={"copy_of": source.path.name})

    exporter = Exporter("student-onnx-copy", make, "copy failed", "onnxruntime", variant="copy", what="copied ONNX")
    backend = Backend("copy", "onnxruntime", CopySettings, copy_quantize, lambda s: [], "copies the copy",
                      starts_from="onnxruntime/copy")
    out = tmp_path / "out"
    shutil.copytree(exported, out)
    recipe = tmp_path / "q.yaml"
    base = (exported / "recipe.yaml").read_text()
    recipe.write_text(base.split("\nquantize:")[0] + "\nquantize:\n  max_accuracy_drop: 100\n  min_label_agreement: 0.01\n"
                      "  fallbacks: false\n  candidates: [{backend: copy}]\nbench:" + base.split("\nbench:")[1])
    with export.registered(exporter), quantize.registered(backend):
        for stage in ("export", "quantize", "bench"):
            assert main([stage, "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe),
                         "--out", str(out), "--force"]) == 0, stage
    exported_arts = {a["name"]: a for a in json.loads((out / "stages/export.json").read_text())["artifacts"]}
    assert exported_arts["student-onnx-copy"]["extras"] == {"copied_from": "model.onnx"}
    assert seen["source"] == ("model.copy.onnx", {"copied_from": "model.onnx"})
    quantized = json.loads((out / "stages/quantize.json").read_text())["artifacts"]
    assert [(a["name"], a["extras"]) for a in quantized] == [("student-int8-copy", {"copy_of": "model.copy.onnx"})]
    report = json.loads((out / "report.json").read_text())
    measured = {a["name"]: a for a in report["artifacts"]}
    assert {"student-onnx-copy", "student-int8-copy"} <= set(measured)
    assert all(measured[n]["latency"] and measured[n]["quality"] is not None for n in ("student-onnx-copy", "student-int8-copy"))
    assert export.provider("onnxruntime/copy") is None and "copy" not in quantize.backends()  # gone after the block
