"""Shared fixtures: a tiny random BERT checkpoint and a small task data set, both built on the spot; and the guard
that keeps whole pipelines out of the quick tier. Helpers that tests import are in tests/helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the tiny pipelines' int8 files are decided on this machine alone: the emulated aarch64 measurement (a guest Python
# per core and attempt) runs in the `bundled` run only, which every quantize / bundle test of it reads
os.environ.setdefault("BERT_COMPRESS_EMULATE", "off")

from compress.cli import main as _cli_main  # noqa: E402
from tests.helpers import HAS_EXECUTORCH, HAS_TFLITE, make_tiny_bert, rt_rows, write_jsonl  # noqa: E402


@pytest.fixture(scope="module")
def tiny_classifier():
    """A random 2-layer BERT classifier (vocabulary 120, 3 labels) built in memory: what the export tests lower."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     num_labels=3, max_position_embeddings=64)
    return BertForSequenceClassification(cfg).eval()


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "rt-small"
    for split, n in (("train", 96), ("dev", 48), ("test", 48)):
        write_jsonl(root / f"{split}.jsonl", rt_rows(split, n))
    return root


@pytest.fixture(scope="session")
def tiny_recipe(tmp_path_factory) -> Path:
    """Short schedules and few timing runs: the pipeline is exercised end to end in seconds. TFLite is off here
    (litert-torch takes ~20 s per conversion) and models are timed in-process (a fresh interpreter per model
    costs seconds each); `bundled` turns both on."""
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(
        """
name: tiny-test
teacher: {epochs: 1, lr: 1.0e-3, batch_size: 16}
student: {num_layers: 1}
distill: {epochs: 2, lr: 1.0e-3, batch_size: 16}
data: {max_length: 64}
export: {tflite: off, executorch: off}
bench: {seq_lens: [32, 16], threads: [1], warmup: 1, runs: 3, min_seconds: 0, rounds: 1, isolate: false}
"""
    )
    return path


@pytest.fixture(scope="session")
def bundled(tmp_path_factory, tiny_teacher, tiny_data, tiny_recipe):
    """A whole tiny run with TFLite and ExecuTorch on, every LiteRT quantizer and both ExecuTorch ones (ONNX only
    without the tflite / executorch extras): export, quantize, bench, bundle (tests/test_targets.py,
    tests/test_bench.py, tests/test_executorch.py)."""
    root = tmp_path_factory.mktemp("targets")
    recipe = root / "recipe.yaml"
    litert = ("{backend: litert-dynamic},\n    {backend: litert-dynamic, weight_bits: int4, name: litert-int4}, "
              "{backend: litert-static}") if HAS_TFLITE else ""
    pte = ("{backend: executorch-xnnpack}, {backend: executorch-xnnpack, weight_bits: int4, name: executorch-int4}"
           if HAS_EXECUTORCH else "")
    export = (f"export: {{tflite: {'on' if HAS_TFLITE else 'off'}, executorch: {'on' if HAS_EXECUTORCH else 'off'}"
              + (", tflite_buckets: [16, 32]}" if HAS_TFLITE else "}"))
    quantizers = ", ".join(q for q in ("{backend: ort-dynamic}", litert, pte) if q)
    recipe.write_text(tiny_recipe.read_text().replace("export: {tflite: off, executorch: off}", export)
                      .replace("isolate: false", "isolate: true")
                      + "quantize:\n  max_accuracy_drop: 100\n  min_label_agreement: 0.01\n  fallbacks: false\n"
                        f"  calibration_rows: 32\n  candidates: [{quantizers}]\n")
    out = root / "out"
    emulate = os.environ.pop("BERT_COMPRESS_EMULATE", None)  # the recipe's default: aarch64 and aarch64-dotprod
    try:
        assert _cli_main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe),
                          "--out", str(out)]) == 0
    finally:
        if emulate is not None:
            os.environ["BERT_COMPRESS_EMULATE"] = emulate
    return out



# ---- the quick tier builds no whole pipeline -------------------------------------------------------------------
# Every in-process stage call is counted (the stage table's `run` wrapped once); a test that trains a student and
# then exports and measures it (distill, export and bench, in its own body or in a fixture it set up) is a whole
# pipeline and must be marked `slow`, and so must every test that uses a fixture that built one. Runs in
# subprocesses are not counted: the tests that start them are slow for other reasons (kill and resume, torchrun).
WHOLE_PIPELINE = {"distill", "export", "bench"}
_stages_run: list[str] = []
_whole_pipeline_fixtures: set[str] = set()


def _count_stage_calls() -> None:
    from compress.run import table

    for spec in table.STAGES:
        if getattr(spec.run, "counted", False):
            continue

        def counted(*args, _name=spec.name, _run=spec.run, **kwargs):
            _stages_run.append(_name)
            return _run(*args, **kwargs)

        counted.counted = True
        object.__setattr__(spec, "run", counted)  # Stage is frozen; the table itself is not ours to change


_count_stage_calls()


class _WholePipelineGuard:
    """A plugin, not conftest hooks: pytest calls a conftest's hooks only for nodes under its folder, and a
    session-scoped fixture's node is the session itself."""

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        before = len(_stages_run)
        try:
            return (yield)
        finally:
            if WHOLE_PIPELINE <= set(_stages_run[before:]):
                _whole_pipeline_fixtures.add(fixturedef.argname)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        before = len(_stages_run)
        result = yield
        if item.get_closest_marker("slow") is None:
            built = sorted(set(item.fixturenames) & _whole_pipeline_fixtures)
            if built or WHOLE_PIPELINE <= set(_stages_run[before:]):
                pytest.fail(f"{item.nodeid} runs a whole pipeline ({', '.join(built) or 'in its body'}): mark it "
                            "@pytest.mark.slow, or test the part it checks on something smaller", pytrace=False)
        return result


def pytest_configure(config):
    config.pluginmanager.register(_WholePipelineGuard(), "whole-pipeline-guard")
