"""The accuracy guard and the bundle check measure artifacts as a device runs them; a bundle model that fails its
check is replaced by the next-fastest artifact of its runtime and the bundle stays consistent."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from compress.cli import main

pytestmark = pytest.mark.slow  # whole runs of the pipeline (or of training, killed and resumed)

RECIPE = """
name: bundle-check
teacher: {epochs: 1, lr: 1.0e-3, batch_size: 16}
student: {num_layers: 1}
distill: {epochs: 2, lr: 1.0e-3, batch_size: 16}
data: {max_length: 64}
export: {tflite: off, executorch: off}
quantize:
  max_accuracy_drop: 100
  min_label_agreement: 0.01
  fallbacks: false
  candidates: [{backend: ort-dynamic}]
bench: {seq_lens: [32], threads: [1], batches: [1], warmup: 1, runs: 3, min_seconds: 0, rounds: 1, isolate: false, gemm_peak: false}
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_teacher, tiny_data):
    root = tmp_path_factory.mktemp("bundle-stage")
    (root / "recipe.yaml").write_text(RECIPE)
    out = root / "out"
    assert main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(root / "recipe.yaml"),
                 "--out", str(out)]) == 0
    return out


def _run(out):
    from compress import run as api
    from compress.recipe import resolve_recipe

    return api.prepare(resolve_recipe(str(out / "recipe.yaml")), out, force=False, whole_run=False)


def test_guard_measures_int8_one_text_per_call_at_its_length(tiny_run):
    """The recorded verification of the int8 ONNX model is what the device runner measures: one text per call,
    unpadded, on this machine (padded batches give a dynamically quantized model other activation scales)."""
    from compress.evaluate import predict_logits
    from targets.runtime import load_model

    run = _run(tiny_run)
    record = json.loads((tiny_run / "stages" / "quantize.json").read_text())
    art = next(a for a in record["artifacts"] if a["quantization"]["backend"] == "ort-dynamic")
    assert record["measured_on"]["int8_isa"] and record["measured_on"]["cpu"]
    dev = run.encode("dev", run.student_tokenizer())
    reference = predict_logits(run.load_student("test"), dev)
    model = load_model(tiny_run / art["path"])
    one_by_one = np.concatenate([model({k: np.asarray([v[i]]) for k, v in dev.features.items()}) for i in range(len(dev))])
    assert art["verification"]["max_abs_diff"] == pytest.approx(float(np.abs(one_by_one - reference).max()), abs=1e-6)
    agreement = float((one_by_one.argmax(-1) == reference.argmax(-1)).mean())
    assert art["verification"]["agreement"] == agreement
    # padded batches measure another model (activation scales per call): the old way would not pass the line above
    from compress.data.batching import collate

    batched = np.concatenate([model({k: v.numpy() for k, v in collate(dev, list(range(i, min(i + 32, len(dev))))).items()
                                     if k != "labels"}) for i in range(0, len(dev), 32)])
    assert float(np.abs(batched - one_by_one).max()) > 1e-5
    report = (tiny_run / "report.md").read_text()
    assert f"| this machine: {record['measured_on']['int8_isa']} (" in report  # the int8 decision names the instruction set


def _damage(path):
    """The same graph with its logits negated: it loads and runs, but picks the other label on every text."""
    import onnx

    model = onnx.load(str(path))
    out = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{out}_raw" if o == out else o for o in node.output]
    model.graph.node.append(onnx.helper.make_node("Neg", [f"{out}_raw"], [out]))
    onnx.save(model, str(path))


def test_a_bundle_model_failing_the_runner_check_is_replaced_by_the_next_fastest(tiny_run, tmp_path, capsys):
    from compress.stages.bundle import choose_models
    from targets.bundle import Bundle, Classifier

    out = tmp_path / "out"
    shutil.copytree(tiny_run, out)
    report = json.loads((out / "report.json").read_text())
    onnx_options = choose_models(report, None)["onnxruntime"]
    assert len(onnx_options) >= 2
    first, second = onnx_options[0], onnx_options[1]
    _damage(out / first["path"])
    assert main(["bundle", "--out", str(out), "--force"]) == 0
    err = capsys.readouterr().err
    assert f"trying the next-fastest onnxruntime artifact, {second['name']}" in err and "not bundled" in err
    meta = json.loads((out / "bundle" / "pi" / "metadata.json").read_text())
    assert {m["artifact"] for m in meta["models"]} == {second["name"]}
    assert {r["artifact"] for r in meta["rejected"]} == {first["name"]}
    assert "does not match the PyTorch student" in meta["rejected"][0]["reason"]
    bundle = Bundle.load(out / "bundle" / "pi.zip")  # consistent: every listed file there, nothing unlisted
    listed = {m["file"] for m in bundle.metadata["models"]}
    assert listed == {"model.onnx"}  # the .ort is the mobile bundles' format, not the Pi's
    for m in listed:
        assert Classifier(bundle, runtime=m).predict(["a fine film"])[0].label in bundle.labels
    record = json.loads((out / "report.json").read_text())["bundle"]
    assert [r["artifact"] for r in record["rejected"]] == [first["name"]]


def test_a_bundle_with_no_passing_model_fails_in_one_line_and_keeps_the_student(tiny_run, tmp_path, capsys):
    from compress.stages.bundle import choose_models

    out = tmp_path / "out"
    shutil.copytree(tiny_run, out)
    for art in choose_models(json.loads((out / "report.json").read_text()), None)["onnxruntime"]:
        _damage(out / art["path"])
    before = sorted(p.name for p in (out / "student").iterdir())
    assert main(["bundle", "--out", str(out), "--force"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("bert-compress: error: bundle: no model passed the runner check")
    assert sorted(p.name for p in (out / "student").iterdir()) == before
    assert not list(out.glob(".tmp-bundle*"))


def test_the_bundle_rechecks_itself_on_the_device_cpu(tiny_run, tmp_path):
    """`python -m targets check` runs every bundled model on the bundle's dev texts against the PyTorch student's
    logits it carries; under qemu-x86_64 as an AVX2-only Haswell (no AVX-512, no VNNI: other int8 kernels) too."""
    import shutil as sh

    from tests.helpers import run_torch_free

    b = tiny_run / "bundle" / "pi"
    r = run_torch_free(b, "check", str(b), "--json")
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in r.stdout.splitlines()]
    meta = json.loads((b / "metadata.json").read_text())
    assert [x["file"] for x in results] == [m["file"] for m in meta["models"]]
    by_file = {m["file"]: m["runner_check"] for m in meta["models"]}
    for x in results:  # the device check is the bundle stage's check, run again
        assert x["passed"] and x["rows"] == by_file[x["file"]]["rows"]
        assert x["label_agreement"] == by_file[x["file"]]["label_agreement_vs_pytorch"]
    damaged = tmp_path / "bundle"
    sh.copytree(b, damaged)
    checks = json.loads((damaged / "check.json").read_text())
    checks["reference_logits"] = [[-v for v in row] for row in checks["reference_logits"]]  # the other label everywhere
    (damaged / "check.json").write_text(json.dumps(checks))
    r = run_torch_free(b, "check", str(damaged), "--runtime", "model.onnx")
    assert r.returncode == 1 and "FAIL" in r.stdout, r.stdout + r.stderr

    qemu = sh.which("qemu-x86_64-static")
    if qemu is None:
        pytest.skip("qemu-user-static is not installed: the emulated AVX2 check did not run")
    r = run_torch_free(b, "check", str(b), "--rows", "24", prefix=(qemu, "-cpu", "Haswell"), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count(": pass:") == len(meta["models"]) and "(AVX2," in r.stdout, r.stdout


def _as_written_before_the_view(out):
    """Turn an OUT into what bert-compress wrote before typed artifacts and the view: artifacts without task /
    precision / compute, a bench record holding only its seconds (the measurements were in report.json)."""
    for stage in ("export", "quantize"):
        path = out / "stages" / f"{stage}.json"
        record = json.loads(path.read_text())
        for a in record["artifacts"]:
            for key in ("task", "precision", "compute", "outputs"):
                a.pop(key, None)
        record.pop("metric", None)
        path.write_text(json.dumps(record))
    bench = out / "stages" / "bench.json"
    record = json.loads(bench.read_text())
    bench.write_text(json.dumps({k: record[k] for k in ("seconds", "settings_hash", "run_id")}
                                | {"outputs": {"report.json": None, "bench.json": None}}))
    report = json.loads((out / "report.json").read_text())
    report.pop("task", None)
    for a in report["artifacts"]:
        a.pop("precision", None), a.pop("compute", None)
    (out / "report.json").write_text(json.dumps(report))


def test_an_out_written_before_the_view_resumes_with_every_stage_skipped(tiny_run, tmp_path, capsys):
    out = tmp_path / "legacy"
    shutil.copytree(tiny_run, out)
    _as_written_before_the_view(out)
    before = json.loads((out / "report.json").read_text())
    assert main(["run", "--resume", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    for stage in ("finetune", "distill", "export", "quantize", "bench", "bundle"):
        assert f"{stage}: finished earlier with the same settings and inputs: skipped" in err
    record = json.loads((out / "stages" / "bench.json").read_text())
    assert record["results"]["artifacts"] and record["outputs"] == {}  # upgraded in place
    after = json.loads((out / "report.json").read_text())
    assert after["summary"] == before["summary"] and after["bundle"] == before["bundle"]
    assert [a["compute"] for a in after["artifacts"]] == ["fp32", "fp32", "int8"]
    assert main(["run", "--resume", "--out", str(out)]) == 0  # and again, from the upgraded record
    assert capsys.readouterr().err.count("skipped") == 6


def test_the_bundle_names_its_task_and_a_runner_refuses_a_task_it_cannot_post_process(tiny_run, tmp_path):
    from targets.bundle import Bundle, BundleError, Classifier

    meta = json.loads((tiny_run / "bundle" / "pi" / "metadata.json").read_text())
    assert meta["task"] == {"name": "sequence-classification", "outputs": ["logits"], "postprocess": "softmax-labels"}
    other = tmp_path / "bundle"
    shutil.copytree(tiny_run / "bundle" / "pi", other)
    (other / "metadata.json").write_text(json.dumps(meta | {"task": {"name": "token-classification", "outputs": ["logits"],
                                                                     "postprocess": "bio-entities"}}))
    with pytest.raises(BundleError, match="this bundle is a token-classification model"):
        Classifier(Bundle.load(other))


def test_a_stage_command_on_an_out_written_before_the_view_reads_the_earlier_records(tiny_run, tmp_path):
    """`bert-compress bundle` alone on such an OUT: the bench record is brought to today's form first."""
    out = tmp_path / "legacy"
    shutil.copytree(tiny_run, out)
    _as_written_before_the_view(out)
    assert main(["bundle", "--out", str(out), "--force"]) == 0
    assert json.loads((out / "stages" / "bench.json").read_text())["results"]["artifacts"]
    assert json.loads((out / "report.json").read_text())["bundle"]["models"]


def test_as_fast_files_are_tried_smallest_first_the_rest_fastest_first():
    from compress.stages.bundle import choose_models

    def art(name, runtime, ms, size):
        return {"name": name, "runtime": runtime, "size_bytes": size,
                "latency": [{"seq_len": 128, "threads": 1, "batch": 1, "p50_ms": ms}]}

    results = {"bench": {"grid": {"seq_lens": [32, 128], "threads": [1, 2]}},
               "artifacts": [art("tflite-fp32", "litert", 2.186, 6_969_188), art("int8-weight-only", "litert", 2.191, 2_906_576),
                             art("slow-small", "litert", 3.0, 1_000_000), art("onnx-fp32", "onnxruntime", 2.4, 6_594_950),
                             art("onnx-int8", "onnxruntime", 1.2, 1_691_819)]}
    chosen = choose_models(results, None)
    # 2.191 ms is within 10% of 2.186 ms: the file a third the size goes first; 3.0 ms is not as fast
    assert [a["name"] for a in chosen["litert"]] == ["int8-weight-only", "tflite-fp32", "slow-small"]
    assert [a["name"] for a in chosen["onnxruntime"]] == ["onnx-int8", "onnx-fp32"]
