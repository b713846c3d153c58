"""Shared fixtures: a tiny random BERT checkpoint and a small task data set, both built on the spot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from compress.data.readers import default_data_dir  # noqa: E402
from compress.cli import main as _cli_main  # noqa: E402
from compress.teacher import default_teacher_dir, quiet_transformers  # noqa: E402


def make_tiny_bert(path: Path, *, layers: int = 2, hidden: int = 32, heads: int = 2, seed: int = 0, head_labels=None) -> Path:
    """A random-weight BERT with the default teacher's tokenizer (so real text tokenises normally)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    quiet_transformers()
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(default_teacher_dir())
    cfg = BertConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=hidden * 2, max_position_embeddings=128,
    )
    if head_labels:
        cfg.num_labels = len(head_labels)
        cfg.id2label = dict(enumerate(head_labels))
        cfg.label2id = {lab: i for i, lab in enumerate(head_labels)}
        model = BertForSequenceClassification(cfg)
    else:
        model = BertModel(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rt_rows(split: str, n: int) -> list[dict]:
    lines = (default_data_dir() / f"{split}.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines[:n]]


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
export: {tflite: off}
bench: {seq_lens: [32, 16], threads: [1], warmup: 1, runs: 3, min_seconds: 0, rounds: 1, isolate: false}
"""
    )
    return path


@pytest.fixture(scope="session")
def bundled(tmp_path_factory, tiny_teacher, tiny_data, tiny_recipe):
    """A whole tiny run with TFLite on and every LiteRT quantizer: export, quantize, bench, bundle (tests/test_targets.py,
    tests/test_bench.py)."""
    root = tmp_path_factory.mktemp("targets")
    recipe = root / "recipe.yaml"
    recipe.write_text(tiny_recipe.read_text().replace("export: {tflite: off}", "export: {tflite: on, tflite_buckets: [16, 32]}")
                      .replace("isolate: false", "isolate: true")
                      + "quantize:\n  max_accuracy_drop: 100\n  min_label_agreement: 0.01\n  fallbacks: false\n"
                        "  calibration_rows: 32\n  candidates: [{backend: ort-dynamic}, {backend: litert-dynamic},\n"
                        "    {backend: litert-dynamic, weight_bits: int4, name: litert-int4}, {backend: litert-static}]\n")
    out = root / "out"
    assert _cli_main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe), "--out", str(out)]) == 0
    return out
