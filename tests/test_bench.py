"""Benchmarks: the latency matrix on the build machine and through the device runner, the merged report, ARM64."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from compress.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def _runner(*args, cwd=None):
    env = {**os.environ, "BERT_COMPRESS_QUIET": "1"}
    return subprocess.run([sys.executable, "-m", "targets", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600)


def test_matmul_flops_equal_torch_flop_counter():
    """The achieved-GFLOP/s numerator: every matrix product of a BERT / ALBERT forward, counted by PyTorch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AlbertConfig, AlbertForSequenceClassification, BertConfig, BertForSequenceClassification

    from compress.bench.latency import architecture
    from targets.bench import matmul_flops

    common = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=3)
    for cfg, cls in [(BertConfig(**common), BertForSequenceClassification),
                     (AlbertConfig(embedding_size=16, **common), AlbertForSequenceClassification)]:
        cfg._attn_implementation = "eager"  # attention as explicit matmuls, which the counter sees
        model = cls(cfg).eval()
        for batch, seq in [(1, 16), (3, 8)]:
            ids = torch.randint(5, 100, (batch, seq))
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(input_ids=ids, attention_mask=torch.ones_like(ids))
            assert matmul_flops(architecture(cfg), batch, seq) == counter.get_total_flops()


def test_pareto_front_keeps_only_undominated_points():
    from compress.bench.results import pareto_front

    points = [(1.0, 0.80), (2.0, 0.85), (3.0, 0.84), (0.5, 0.70), (2.0, 0.80)]
    assert sorted(pareto_front(points)) == [(0.5, 0.70), (1.0, 0.80), (2.0, 0.85)]


def test_timing_runs_enough_calls_and_stops_slow_cells():
    import time

    from targets.bench import Timing, summarize, time_calls

    fast = time_calls(lambda: None, Timing(warmup=1, min_runs=50, min_s=0.05, max_runs=400))
    assert 50 <= len(fast) <= 400
    slow = time_calls(lambda: time.sleep(0.02), Timing(warmup=0, warmup_s=0, min_runs=1000, min_s=0, max_s=0.15))
    assert 5 <= len(slow) < 20  # max_s cut it short, but never below 5 calls
    s = summarize(slow, batch=4)
    assert s["p50_ms"] >= 20 and s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] and s["throughput_per_s"] < 4 / 0.02


def test_rounds_interleave_models_and_pool_their_samples():
    """bench_many: every model once per round, in a new order each round; percentiles over all rounds' samples."""
    from targets.bench import Job, Timing, bench_many

    calls = []

    def job(name, ms):
        def run(timing, seed):
            calls.append((name, seed, timing.min_runs))
            return {"load_s_all": [0.1 + seed], "rss_before_load_bytes": 1, "peak_rss_bytes": 100 + seed,
                    "peak_rss_scope": "process", "samples": {"1/16/1": [ms / 1000 * (1 + seed)] * timing.min_runs}}
        return Job(name, {"layers": 3, "hidden_size": 384, "intermediate_size": 1536}, run)

    names = [f"m{i}" for i in range(4)]
    out = bench_many([job(n, 10) for n in names], Timing(min_runs=30, rounds=3))
    assert len(calls) == 12 and {c[2] for c in calls} == {10}  # each round a third of the calls
    orders = [[c[0] for c in calls if c[1] == r] for r in range(3)]
    assert all(sorted(o) == names for o in orders) and len({tuple(o) for o in orders}) > 1
    for entry in out:
        c = entry["latency"][0]
        assert c["runs"] == 30 and c["p50_ms"] == pytest.approx(20.0) and c["min_ms"] == pytest.approx(10.0)
        assert entry["load_s"] == pytest.approx(1.1) and entry["peak_rss_bytes"] == 102 and entry["rounds"] == 3
        assert c["achieved_gflop_s"] > 0


def test_gemm_peak_keeps_the_higher_measurement():
    from targets.bench import best_peak

    before = {"n": 1024, "kernels": "k", "gflop_s": {"fp32": {"1": 60.0, "2": 130.0}, "int8": {"1": 400.0}}}
    after = {"n": 1024, "kernels": "k", "gflop_s": {"fp32": {"1": 90.0, "2": 120.0}, "int8": {"1": 900.0}}}
    peak = best_peak(before, after)
    assert peak["gflop_s"] == {"fp32": {"1": 90.0, "2": 130.0}, "int8": {"1": 900.0}} and peak["measurements"] == 2
    assert best_peak({"note": "onnxruntime is not installed"}, None) == {"note": "onnxruntime is not installed"}


@pytest.mark.slow
def test_pipeline_bench_writes_device_schema_and_plots(bundled):
    from targets.bench import load_results

    doc = load_results(bundled / "bench.json")
    roles = [m["role"] for m in doc["models"]]
    assert roles[:2] == ["teacher", "student"] and roles.count("reference") == 1  # the teacher in ONNX fp32
    assert roles.count("artifact") == len(doc["models"]) - 3
    assert doc["grid"]["batches"] == [1, 8] and doc["device"]["cpu"] and doc["device"]["versions"]["onnxruntime"]
    gemm = doc["gemm_peak"]["gflop_s"]
    assert gemm["fp32"]["1"] > 0 and gemm["int8"]["1"] > 0
    bundle_meta = json.loads((bundled / "bundle/pi/metadata.json").read_text())
    shipped = {m["artifact"] for m in bundle_meta["models"]}
    assert {m["name"] for m in doc["models"] if m.get("shipped")} == shipped  # marked by the bundle stage
    for m in doc["models"]:
        assert m["load_s"] > 0 and m["peak_rss_bytes"] > 10e6 and m["peak_rss_scope"] == "process"
        assert len(m["latency"]) == 2 * 2 * 1  # seq × batch × threads of the tiny recipe
    for name in ("pareto.png", "latency_vs_seq.png", "size.png"):
        assert (bundled / "plots" / name).read_bytes()[:8] == PNG
    md = (bundled / "report.md").read_text()
    assert "## Benchmark matrix" in md and "plots/pareto.png" in md and "% of GEMM peak" in md
    assert bundle_meta["student"]["architecture"]["hidden_size"] == 32


@pytest.fixture(scope="module")
def device_results(bundled, tmp_path_factory):
    """`python -m targets bench` on the tiny bundle, twice (a repeat for the stability table)."""
    root = tmp_path_factory.mktemp("device")
    paths = []
    for i in range(2):
        path = root / f"device{i}.json"
        proc = _runner("bench", str(bundled / "bundle" / "pi.zip"), "--out", str(path), "--device", "test-device",
                       "--threads", "1", "--seq-lens", "16,32,128", "--batches", "1,2", "--min-runs", "5",
                       "--min-seconds", "0", cwd=root)
        assert proc.returncode == 0, proc.stderr
        paths.append(path)
    return paths


@pytest.mark.slow
def test_device_runner_bench_measures_every_model(bundled, device_results):
    from targets.bench import load_results

    doc = load_results(device_results[0])
    meta = json.loads((bundled / "bundle/pi/metadata.json").read_text())
    assert [m["file"] for m in doc["models"]] == [m["file"] for m in meta["models"]]
    assert doc["device"]["name"] == "test-device" and doc["device"]["emulated"] is None
    assert doc["grid"]["seq_lens"] == [16, 32]  # 128 is above the bundle's max length (64): left out
    for m in doc["models"]:
        assert m["shipped"] and m["quality"] is not None and m["peak_rss_bytes"] > 10e6
        assert {(c["seq_len"], c["batch"]) for c in m["latency"]} == {(16, 1), (16, 2), (32, 1), (32, 2)}
        assert all(c["achieved_gflop_s"] > 0 and c["runs"] >= 5 for c in m["latency"])
        if m["file"].endswith(".tflite"):
            assert m["buckets"] and m["interpreter"].startswith("ai-edge-litert")


@pytest.mark.parametrize("args, message", [
    (["--threads", "0"], "--threads must be comma-separated positive integers"),
    (["--seq-lens", "512"], "above the bundle's max length"),
    (["--models", "nope.onnx"], "bundle has no model nope.onnx"),
    (["--min-runs", "1"], "--min-runs must be at least 3"),
])
@pytest.mark.slow
def test_device_runner_bench_bad_input(bundled, tmp_path, args, message):
    proc = _runner("bench", str(bundled / "bundle" / "pi"), "--out", str(tmp_path / "r.json"), *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_device_runner_bench_does_not_overwrite(device_results):
    before = device_results[0].read_bytes()
    proc = _runner("bench", "unused", "--out", str(device_results[0]))
    assert proc.returncode == 2 and "exists: pass --force" in proc.stderr
    assert device_results[0].read_bytes() == before


@pytest.mark.slow
def test_report_merges_devices(bundled, device_results, tmp_path, capsys):
    out = tmp_path / "merged"
    assert main(["report", str(bundled / "bench.json"), *map(str, device_results), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "## Headline" in md and "speed-up" in md and "teacher" in md
    table = md.split("## Devices (one row each)")[1].split("\n\n")[1].splitlines()
    assert len(table) == 2 + 3  # header, rule, one row per results file
    assert "## Repeatability" in md and "cells measured twice" in md  # test-device measured twice
    for name in ("pareto.png", "latency_vs_seq.png", "size.png"):
        assert (out / "plots" / name).read_bytes()[:8] == PNG and f"plots/{name}" in md
    merged = json.loads((out / "merged.json").read_text())
    assert len(merged["merged"]) == 3
    # the same --out again: refused without --force, then replaced with it
    assert main(["report", str(device_results[0]), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and (out / "report.md").read_text() == md
    assert main(["report", str(device_results[0]), "--out", str(out), "--force"]) == 0
    assert "## Repeatability" not in (out / "report.md").read_text()


@pytest.mark.slow
def test_report_bad_input(device_results, tmp_path, capsys):
    doc = json.loads(device_results[0].read_text())
    other = tmp_path / "v2.json"
    other.write_text(json.dumps(doc | {"schema_version": 2}))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"hello": 1}))
    cases = [([str(other)], "results schema version 2; this version reads 1"),
             ([str(broken)], "is not valid JSON"),
             ([str(foreign)], "is not a bert-compress-bench results file"),
             ([str(tmp_path / "missing.json")], "does not exist")]
    for files, message in cases:
        assert main(["report", *files, "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "r").exists()
    # an --out that holds the inputs would be replaced whole: refused
    inside = tmp_path / "ok.json"
    shutil.copy(device_results[0], inside)
    assert main(["report", str(inside), "--out", str(tmp_path)]) == 2
    assert "holds the results files" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_refuses_a_missing_artifact_before_timing(bundled, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(bundled, out, ignore=shutil.ignore_patterns("bundle*", "plots"))
    victim = next((out / "quantized").iterdir())
    victim.unlink()
    assert main(["bench", "--out", str(out), "--force"]) == 2
    err = capsys.readouterr().err
    assert f"artifact {victim} is missing" in err and "re-run `bert-compress quantize" in err
    assert json.loads((out / "report.json").read_text()) == json.loads((bundled / "report.json").read_text())


def test_recipe_bench_settings():
    from compress.recipe import BenchConfig, resolve_recipe

    legacy = BenchConfig(batch=4, runs=10)  # recipes saved before batch lists still load
    assert legacy.batches == [4] and legacy.runs == 10
    assert BenchConfig().seq_lens == [16, 32, 64, 128] and BenchConfig().batches == [1, 8]
    r = resolve_recipe("default")  # the default run times what its headline needs: seq 32 and 128, batch 1
    assert r.bench.seq_lens == [32, 128] and r.bench.batches == [1] and r.bench.rounds == 2
    assert r.bench.thread_counts()[0] == 1 and r.bench.thread_counts()[-1] == (len(os.sched_getaffinity(0)))
    short = resolve_recipe("default").model_copy(deep=True)
    from compress.recipe import build_recipe

    raw = short.model_dump(mode="json")
    raw["data"]["max_length"] = 48
    del raw["bench"]["seq_lens"]  # the default lengths: those that fit
    assert build_recipe(raw, "x").bench.seq_lens == [16, 32]


# ---- ARM64 under qemu-user ----------------------------------------------------------------------------
@pytest.mark.slow
def test_arm64_without_qemu_is_one_line(bundled, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu-aarch64 on it
    assert main(["arm64", str(bundled / "bundle" / "pi"), "--out", str(tmp_path / "arm")]) == 2
    err = capsys.readouterr().err
    assert "qemu-user is not installed" in err and "apt-get install qemu-user-static" in err
    assert not (tmp_path / "arm").exists()


@pytest.mark.skipif(not (shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")),
                    reason="qemu-user is not installed (apt-get install qemu-user-static debootstrap)")
@pytest.mark.slow
def test_arm64_outputs_match_x86_under_qemu(bundled, tmp_path):
    """The bundle's models on emulated Cortex-A72: logits equal x86 within 1e-4, timings marked emulated.
    Needs the Debian mirror and PyPI once (the aarch64 Python is cached under ~/.cache/bert-compress/arm64)."""
    from targets.bench import load_results
    from tests.helpers import aarch64_python_or_skip

    aarch64_python_or_skip()
    models = json.loads((bundled / "bundle/pi/metadata.json").read_text())["models"]
    if any(m["file"].endswith(".pte") for m in models) and not shutil.which("aarch64-linux-gnu-g++"):
        pytest.skip("the bundle holds a .pte and there is no aarch64 cross compiler (apt-get install g++-aarch64-linux-gnu)")
    out = tmp_path / "arm"
    code = main(["arm64", str(bundled / "bundle" / "pi"), "--out", str(out), "--cpus", "cortex-a72", "--texts", "6",
                 "--seq-lens", "16"])
    check = json.loads((out / "arm64_check.json").read_text())
    assert code == 0 and check["passed"], check
    checks = check["cpus"]["cortex-a72"]["checks"]
    models = json.loads((bundled / "bundle/pi/metadata.json").read_text())["models"]
    assert set(checks) == {m["file"] for m in models}
    for m in models:
        c = checks[m["file"]]
        assert c["passed"] and c["label_agreement_vs_x86"] == 1.0
        if m["compute"] == "fp32":  # no int8 rounding to move: the same numbers as x86
            assert c["max_abs_diff_vs_x86"] <= 1e-4
    doc = load_results(out / "bench-cortex-a72.json")
    assert doc["device"]["machine"] == "aarch64" and doc["device"]["cpu"] == "Cortex-A72"
    assert doc["device"]["emulated"] == "qemu-aarch64 -cpu cortex-a72"
    assert all(c["p50_ms"] > 0 for m in doc["models"] for c in m["latency"])
    # an emulated device is labelled as such in the merged report
    assert main(["report", str(out / "bench-cortex-a72.json"), "--out", str(tmp_path / "r")]) == 0
    assert "EMULATED" in (tmp_path / "r" / "report.md").read_text()


def test_arm_cpuinfo_names_the_core():
    from compress.bench.arm64 import cpuinfo_text
    from targets.env import cpu_flags, cpu_model

    def blocks(text):
        return [dict((k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in chunk.splitlines() if ":" in line))
                for chunk in text.split("\n\n") if chunk.strip()]

    assert cpu_model(blocks(cpuinfo_text("cortex-a76", 4))) == "Cortex-A76"
    assert "asimddp" in cpu_flags(blocks(cpuinfo_text("cortex-a76", 4)))
    assert cpu_model(blocks(cpuinfo_text("cortex-a72", 2))) == "Cortex-A72"
