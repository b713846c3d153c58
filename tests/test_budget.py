"""Compress to a device budget (issue 22): candidates -> torch-free profile -> cost model -> the student that fits.

Tiny BERTs from a config; the timings are real (this CPU), so assertions compare the plan with its own profile
(the chosen shape is within budget there and the best by the quality prior), never with a wall-clock number.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from compress.budget import quality
from compress.budget.latency_model import FEATURES, features, fit, held_out_error, points
from compress.budget.shapes import Shape
from compress.cli import main
from tests.helpers import make_tiny_bert, run_torch_free


# ---- the cost model and the prior, on their own ---------------------------------------------------------
def _arch(layers, hidden, heads, ffn, e=None):
    return Shape(layers, hidden, heads, ffn, e).arch(1000, 2, True)


def _synthetic_profile(coef: np.ndarray, noise: float = 0.0, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for layers in (1, 2, 3, 4, 6):
        for hidden in (64, 128, 192, 256):
            for ratio in (2, 4):
                a = _arch(layers, hidden, hidden // 32, ratio * hidden)
                lat = {str(s): {"p50_ms": float(features(a, s) @ coef) * (1 + noise * rng.standard_normal())}
                       for s in (16, 64, 128)}
                rows.append({"name": f"{layers}-{hidden}-{ratio}", "arch": a, "latency": lat})
    return {"candidates": rows, "seq_lens": [16, 64, 128]}


def test_cost_model_recovers_known_costs_and_predicts_held_out_shapes():
    coef = np.array([0.004, 0.001, 0.5, 2.0, 0.3, 0.01, 0.001, 0.02])
    assert len(coef) == len(FEATURES)
    profile = _synthetic_profile(coef)
    model = fit(points(profile))
    for layers, hidden, heads, ffn in ((5, 160, 5, 480), (3, 96, 3, 384)):  # shapes the fit never saw ...
        a = _arch(layers, hidden, heads, ffn)
        for seq in (32, 96):  # ... at lengths it never saw (three profiled lengths pin the quadratic attention term)
            assert model.predict(a, seq) == pytest.approx(float(features(a, seq) @ coef), rel=1e-3)
    held = held_out_error(profile)
    assert held["median"] < 1e-3 and held["shapes"] == 40
    noisy = held_out_error(_synthetic_profile(coef, noise=0.05))
    assert 0.005 < noisy["median"] < 0.15  # 5% noise in the cells: the held-out error sees it, the model stays close


def test_cost_model_never_predicts_a_bigger_student_faster():
    profile = _synthetic_profile(np.array([0.004, 0.001, 0.5, 2.0, 0.3, 0.01, 0.001, 0.02]), noise=0.1, seed=3)
    model = fit(points(profile))
    assert (model.coef >= 0).all()
    small, big = _arch(2, 128, 4, 512), _arch(3, 128, 4, 512)
    wide = _arch(2, 192, 6, 768)
    for s in (16, 64, 128):
        assert model.predict(small, s) <= model.predict(big, s) and model.predict(small, s) <= model.predict(wide, s)


def test_quality_prior_prefers_capacity_and_depth_and_factorizes_only_for_size():
    a, b = Shape(3, 128, 4, 512), Shape(3, 192, 6, 768)
    assert quality.best([a, b]) == b
    # factorized embeddings buy bytes, not accuracy: the unfactorized shape of the same capacity wins
    assert quality.best([Shape(3, 192, 6, 768, 64), b]) == b
    # about equal capacity: the deeper one (depth over width)
    deep, wide = Shape(6, 128, 4, 512), Shape(3, 192, 6, 768)
    assert deep.encoder_params < wide.encoder_params and quality.best([deep, wide]) == deep
    assert quality.best([Shape(3, 128, 4, 512), Shape(2, 128, 4, 512)]).layers == 3
    assert quality.best([Shape(2, 384, 12, 1536), Shape(6, 128, 4, 512)]).hidden == 384  # 4x capacity beats depth


def test_quality_prior_never_takes_less_of_anything_than_a_shipped_recipe_that_fits():
    default = Shape(3, 128, 4, 512, 64)  # the default recipe's student
    deep_thin, same, deeper = Shape(4, 128, 4, 256), Shape(3, 128, 4, 512, 64), Shape(4, 128, 4, 512)
    assert quality.best([deep_thin, same]) == deep_thin  # the score alone prefers depth ...
    assert quality.best([deep_thin, same], [default]) == same  # ... but FFN 256 is less than the recipe's 512
    # a step within the seed spread (1.33x the weights) keeps the recipe's shape; a clear step (3x) replaces it
    assert quality.best([deep_thin, same, deeper], [default]) == same
    assert quality.best([deep_thin, same, deeper, Shape(4, 192, 6, 768)], [default]) == Shape(4, 192, 6, 768)
    assert quality.dominates(Shape(3, 128, 4, 512), default) and not quality.dominates(default, Shape(3, 128, 4, 512))
    assert quality.best([deeper], [default]) == deeper  # nothing as big or bigger: at least no smaller
    assert quality.best([deep_thin], [default]) == deep_thin  # nothing dominates: the score decides


# ---- the whole path on a tiny teacher -------------------------------------------------------------------
GRID = ["--layers", "1,2", "--hidden", "16,32", "--ffn-ratios", "2", "--embedding-sizes", "0,8", "--no-recipes"]


@pytest.fixture(scope="module")
def profiled(tmp_path_factory, tiny_teacher, tiny_data, tiny_recipe):
    root = tmp_path_factory.mktemp("budget")
    cands = root / "cands"
    assert main(["candidates", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(tiny_recipe),
                 "--out", str(cands), *GRID]) == 0
    # the device side: the archive's own runner, in a Python without torch or transformers
    shutil.copy(root / "cands.zip", root / "copy.zip")
    proc = run_torch_free(cands, "profile", str(root / "copy.zip"), "--out", str(root / "device.json"),
                          "--seq-lens", "16,32", "--min-runs", "5", "--min-seconds", "0", "--device", "test box")
    assert proc.returncode == 0, proc.stderr
    return root


def test_candidates_archive_lists_every_shape_built_as_shipped(profiled):
    meta = json.loads((profiled / "cands" / "candidates.json").read_text())
    names = {c["name"] for c in meta["candidates"]}
    # head size 16 (the tiny teacher's 32 / 2 heads); E=8 only where it is below the width
    assert names == {"l1-h16-a1-f32", "l1-h16-a1-f32-e8", "l1-h32-a2-f64", "l1-h32-a2-f64-e8",
                     "l2-h16-a1-f32", "l2-h16-a1-f32-e8", "l2-h32-a2-f64", "l2-h32-a2-f64-e8"}
    ident = meta["identity"]
    assert ident["task"] == "sequence-classification" and ident["runtime"] == "onnxruntime"
    assert ident["quantizer"]["backend"] == "ort-dynamic" and ident["teacher"]["architecture"]["hidden_size"] == 32
    assert ident["quantizer"]["per_channel"] is True  # what the guard ships most often: the profile times that
    import onnx

    for c in meta["candidates"]:
        model = onnx.load(str(profiled / "cands" / c["file"]))
        ops = {n.op_type for n in model.graph.node}
        assert ops & {"DynamicQuantizeMatMul", "MatMulInteger"}, c["name"]  # int8, as the pipeline ships it
        assert c["size_bytes"] == (profiled / "cands" / c["file"]).stat().st_size
    sizes = {c["name"]: c["size_bytes"] for c in meta["candidates"]}
    assert sizes["l2-h32-a2-f64-e8"] < sizes["l2-h32-a2-f64"]  # the factorized table is smaller


def test_profile_times_every_candidate_at_every_length(profiled):
    doc = json.loads((profiled / "device.json").read_text())
    assert doc["format"] == "bert-compress-device-profile" and doc["device"]["name"] == "test box"
    assert doc["threads"] == 1 and doc["seq_lens"] == [16, 32] and len(doc["candidates"]) == 8
    for r in doc["candidates"]:
        assert set(r["latency"]) == {"16", "32"} and all(c["p50_ms"] > 0 and c["runs"] >= 5 for c in r["latency"].values())
    assert doc["identity"] == json.loads((profiled / "cands" / "candidates.json").read_text())["identity"]


def _expected(doc: dict, seq: int) -> dict[str, float]:
    model = fit(points(doc))
    return {r["name"]: max(model.predict(r["arch"], seq), r["latency"][str(seq)]["p50_ms"]) for r in doc["candidates"]}


@pytest.mark.slow  # a whole budget run (every stage) in its body
def test_budget_run_distils_the_best_shape_that_fits_and_reports_it(profiled, tiny_teacher, tiny_data, tiny_recipe):
    doc = json.loads((profiled / "device.json").read_text())
    expected = _expected(doc, 32)
    ordered = sorted(expected.values())
    budget = (ordered[3] + ordered[4]) / 2  # about half the shapes fit
    out = profiled / "run"
    assert main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(tiny_recipe),
                 "--out", str(out), "--budget-ms", f"{budget:.6f}", "--device-profile", str(profiled / "device.json"),
                 "--budget-seq", "32"]) == 0
    plan = json.loads((out / "budget.json").read_text())
    fits = [Shape.from_dict(r["shape"]) for r in plan["candidates"] if r["meets_latency"] and r["kind"] == "grid"]
    refs = [Shape.from_dict(r["shape"]) for r in plan["candidates"] if r["meets_latency"] and r["kind"] == "recipe"]
    fitting = {n for n, t in expected.items() if t * (1 + plan["headroom"]) <= budget}
    assert {r["name"] for r in plan["candidates"] if r["meets_latency"]} == fitting and fitting
    chosen = Shape.from_dict(plan["chosen"]["shape"])
    assert chosen == quality.best(fits, refs) and plan["chosen"]["expected_ms"] * 1.05 <= budget
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    student = saved["student"]
    first_ort = next(c for c in saved["quantize"]["candidates"] if c["backend"] == "ort-dynamic")
    assert first_ort["per_channel"] is True  # the guard starts at the setting the device timed
    assert (student["num_layers"], student["hidden_size"], student["intermediate_size"]) == (chosen.layers, chosen.hidden, chosen.ffn)
    config = json.loads((out / "student" / "config.json").read_text())
    assert config["hidden_size"] == chosen.hidden and config["num_hidden_layers"] == chosen.layers
    assert plan["held_out_error"]["method"] == "leave one shape out" and math.isfinite(plan["held_out_error"]["median"])
    report = json.loads((out / "report.json").read_text())
    b = report["budget"]
    assert b["chosen"] == plan["chosen"]["name"] and b["this_machine"]["measured_ms"] > 0
    assert b["this_machine"]["artifact"] in {a["name"] for a in report["artifacts"]}
    assert "## Latency budget" in (out / "report.md").read_text()
    # a device's results merged later: the profiled device ('test box') is matched and its measurement shown
    bench = json.loads((out / "bench.json").read_text())
    device_doc = dict(bench, device=dict(bench["device"], name="test box"), budget=None)
    (profiled / "device-bench.json").write_text(json.dumps(device_doc))
    assert main(["report", str(out / "bench.json"), str(profiled / "device-bench.json"), "--out", str(profiled / "merged")]) == 0
    assert "## Latency budget on the profiled device" in (profiled / "merged" / "report.md").read_text()


def _run_budget(args, tiny_teacher, tiny_data, tiny_recipe, out: Path, capsys) -> tuple[int, str]:
    code = main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(tiny_recipe),
                 "--out", str(out), *args])
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines and lines[-1].startswith("bert-compress: error: ") and "Traceback" not in err
    return lines[-1]


def test_a_budget_no_candidate_meets_is_refused_before_anything_is_written(profiled, tiny_teacher, tiny_data,
                                                                         tiny_recipe, capsys):
    doc = json.loads((profiled / "device.json").read_text())
    fastest = min(_expected(doc, 32).values())
    out = profiled / "too-fast"
    code, err = _run_budget(["--budget-ms", f"{fastest * 0.5:.6f}", "--device-profile", str(profiled / "device.json"),
                             "--budget-seq", "32"], tiny_teacher, tiny_data, tiny_recipe, out, capsys)
    assert code == 2 and "no candidate student meets" in _one_line(err) and not out.exists()
    code, err = _run_budget(["--budget-ms", "1000", "--budget-mb", "0.0001", "--device-profile", str(profiled / "device.json")],
                            tiny_teacher, tiny_data, tiny_recipe, out, capsys)
    assert code == 2 and "MB" in _one_line(err) and not out.exists()


@pytest.mark.parametrize("damage", ["truncated", "not-a-profile", "negative-latency", "another-task", "missing"])
def test_a_corrupt_or_foreign_profile_is_one_line_exit_2(profiled, tiny_teacher, tiny_data, tiny_recipe, capsys, damage):
    text = (profiled / "device.json").read_text()
    bad = profiled / f"bad-{damage}.json"
    doc = json.loads(text)
    if damage == "truncated":
        bad.write_text(text[: len(text) // 2])
    elif damage == "not-a-profile":
        bad.write_text(json.dumps({"schema": "bert-compress-bench"}))
    elif damage == "negative-latency":
        doc["candidates"][0]["latency"]["32"]["p50_ms"] = -1
        bad.write_text(json.dumps(doc))
    elif damage == "another-task":
        doc["identity"]["task"] = "embedding"
        bad.write_text(json.dumps(doc))
    out = profiled / f"out-{damage}"
    code, err = _run_budget(["--budget-ms", "1000", "--device-profile", str(bad)], tiny_teacher, tiny_data, tiny_recipe,
                            out, capsys)
    line = _one_line(err)
    assert code == 2 and not out.exists(), line
    assert {"truncated": "not valid JSON", "not-a-profile": "not a device profile", "negative-latency": "damaged",
            "another-task": "embedding task", "missing": "does not exist"}[damage] in line


def test_a_profile_of_another_teacher_is_refused(profiled, tmp_path, tiny_data, tiny_recipe, capsys):
    other = make_tiny_bert(tmp_path / "other", seed=7)  # same architecture, other weights
    code, err = _run_budget(["--budget-ms", "1000", "--device-profile", str(profiled / "device.json")], other, tiny_data,
                            tiny_recipe, tmp_path / "out", capsys)
    assert code == 2 and "was made for teacher" in _one_line(err) and not (tmp_path / "out").exists()


def test_budget_flags_without_a_budget_and_bad_grids_are_refused(tmp_path, tiny_teacher, tiny_data, tiny_recipe, capsys):
    code, err = _run_budget(["--device-profile", "x.json"], tiny_teacher, tiny_data, tiny_recipe, tmp_path / "o", capsys)
    assert code == 2 and "needs --budget-ms" in _one_line(err)
    code = main(["candidates", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(tiny_recipe),
                 "--out", str(tmp_path / "c"), "--layers", "9", "--hidden", "512"])
    assert code == 2 and "no shape that fits the teacher" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "c").exists()


def test_profile_refuses_what_is_not_a_candidates_archive(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "targets", "profile", str(tmp_path), "--out", str(tmp_path / "p.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "not a candidates archive" in proc.stderr


@pytest.mark.slow  # a whole budget run (every stage) in its body
def test_without_a_profile_this_machine_is_profiled_on_the_spot_and_cached(tmp_path, tiny_data, tiny_recipe, monkeypatch,
                                                                          capsys):
    # a teacher wide enough for the default grid's narrowest shapes (2 layers x 128, head width 32)
    teacher = make_tiny_bert(tmp_path / "t128", layers=2, hidden=128, heads=4)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code, err = _run_budget(["--budget-ms", "1000"], teacher, tiny_data, tiny_recipe, out, capsys)
    assert code == 0, err
    plan = json.loads((out / "budget.json").read_text())
    assert Path(plan["profile"]).parent == tmp_path / "cache" / "bert-compress" / "profiles"
    assert {r["name"] for r in plan["candidates"]} == {"l2-h128-a4-f256", "l2-h128-a4-f256-e64"}
    assert plan["chosen"]["name"] == "l2-h128-a4-f256"  # no size budget: the factorized table buys nothing
    assert plan["this_machine"] is None and json.loads((out / "report.json").read_text())["budget"]["met_on_profile_device"]
    code, err = _run_budget(["--budget-ms", "1000", "--force"], teacher, tiny_data, tiny_recipe, out, capsys)
    assert code == 0 and "profile from the cache" in err


@pytest.mark.skipif(not (shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")),
                    reason="qemu-user is not installed (apt-get install qemu-user-static debootstrap)")
@pytest.mark.slow
def test_arm64_profiles_a_candidates_archive_under_emulation(profiled, tmp_path):
    """`bert-compress arm64 CANDS`: the archive's runner times candidates under qemu -> an emulated profile the
    budget accepts (same identity as the archive)."""
    from targets.profile import load_profile
    from tests.helpers import aarch64_python_or_skip

    aarch64_python_or_skip()
    out = tmp_path / "arm"
    assert main(["arm64", str(profiled / "cands.zip"), "--out", str(out), "--cpus", "cortex-a72",
                 "--candidates", "l1-h16-a1-f32,l2-h32-a2-f64", "--seq-lens", "16,32"]) == 0
    doc = load_profile(out / "profile-cortex-a72.json")
    assert doc["device"]["cpu"] == "Cortex-A72" and doc["device"]["emulated"] == "qemu-aarch64 -cpu cortex-a72"
    assert [r["name"] for r in doc["candidates"]] == ["l1-h16-a1-f32", "l2-h32-a2-f64"]
    assert doc["identity"] == json.loads((profiled / "cands" / "candidates.json").read_text())["identity"]


@pytest.mark.slow
def test_litert_candidates_are_bucketed_int8_tflite_files_the_runner_profiles(tmp_path, tiny_teacher, tiny_data,
                                                                             tiny_recipe):
    from tests.helpers import HAS_TFLITE

    if not HAS_TFLITE:
        pytest.skip("the tflite extra is not installed: pip install -e '.[tflite]'")
    cands = tmp_path / "lite"
    assert main(["candidates", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(tiny_recipe),
                 "--out", str(cands), "--runtime", "litert", "--layers", "1", "--hidden", "32", "--ffn-ratios", "2",
                 "--embedding-sizes", "0", "--no-recipes"]) == 0
    meta = json.loads((cands / "candidates.json").read_text())
    assert meta["identity"]["runtime"] == "litert" and meta["identity"]["quantizer"]["backend"] == "litert-dynamic"
    [c] = meta["candidates"]
    assert c["file"].endswith(".tflite")
    proc = run_torch_free(cands, "profile", str(cands), "--out", str(tmp_path / "p.json"), "--seq-lens", "16,32",
                          "--min-runs", "3", "--min-seconds", "0")
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads((tmp_path / "p.json").read_text())["candidates"][0]["latency"]) == {"16", "32"}


def test_a_narrower_budget_student_swaps_the_equal_width_loss():
    from compress.budget.plan import losses_for_width
    from compress.recipe import build_recipe, resolve_recipe

    data = resolve_recipe(None).model_dump()
    data["distill"]["losses"] = {"distilbert_soft": {"weight": 5.0}, "hidden_cosine": {"weight": 2.0}}
    data["distill"]["projection"] = "none"
    assert losses_for_width(data["distill"], 384, 384) == [] and "hidden_cosine" in data["distill"]["losses"]
    notes = losses_for_width(data["distill"], 128, 384)
    assert "tinybert_hidden" in notes[0] and data["distill"]["projection"] == "per_layer"
    assert set(data["distill"]["losses"]) == {"distilbert_soft", "tinybert_hidden"}
    assert data["distill"]["losses"]["tinybert_hidden"]["weight"] == 2.0
    build_recipe(data, "test")  # still a valid recipe
