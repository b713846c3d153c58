"""Shared fixtures: a tiny random BERT checkpoint and a small task data set, both built on the spot."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from compress.data.readers import default_data_dir  # noqa: E402
from compress.cli import main as _cli_main  # noqa: E402
from compress.teacher import default_teacher_dir, quiet_transformers  # noqa: E402

# The tflite extra (litert-torch, ai-edge-litert, ai-edge-quantizer): without it the shared runs export ONNX only
# and the tests that need LiteRT skip with this reason.
HAS_TFLITE = all(importlib.util.find_spec(m) is not None for m in ("litert_torch", "ai_edge_litert", "ai_edge_quantizer"))
needs_tflite = pytest.mark.skipif(not HAS_TFLITE, reason="the tflite extra is not installed: pip install -e '.[tflite]'")
# The executorch extra: without it the shared `bundled` run has no .pte and the ExecuTorch tests skip.
HAS_EXECUTORCH = importlib.util.find_spec("executorch") is not None
needs_executorch = pytest.mark.skipif(not HAS_EXECUTORCH, reason="the executorch extra is not installed: pip install -e '.[executorch]'")


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
    assert _cli_main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe), "--out", str(out)]) == 0
    return out


def make_tiny_roberta(path: Path, *, kind: str = "roberta", seed: int = 0) -> Path:
    """A random-weight RoBERTa (byte-level BPE) or XLM-R (Unigram, Metaspace) encoder with a real tokenizer trained
    by the `tokenizers` library on the vendored train text: the non-WordPiece tokenizers a user's teacher may have."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel, XLMRobertaConfig, XLMRobertaModel

    quiet_transformers()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    texts = [json.loads(x)["text"] for x in (default_data_dir() / "train.jsonl").read_text().splitlines()[:3000]]
    if kind == "roberta":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=1500, special_tokens=specials,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
        config_cls, model_cls = RobertaConfig, RobertaModel
    elif kind == "xlm-roberta":
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=1500, special_tokens=specials, unk_token="<unk>"))
        tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                           special_tokens=[("<s>", 0), ("</s>", 2)])
        config_cls, model_cls = XLMRobertaConfig, XLMRobertaModel
    else:
        raise ValueError(kind)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    cfg = config_cls(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=130, pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=1)
    torch.manual_seed(seed)
    model_cls(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def run_torch_free(bundle_root: Path, *args, stdin: str | None = None, blocked: tuple[str, ...] = (),
                   prefix: tuple[str, ...] = (), timeout: int = 120):
    """The bundle's own runner copy (`python -m targets ARGS`), in a Python where importing torch, transformers and
    the `blocked` modules fails, as on a device that has only the runner's requirements. `prefix`: an emulator
    command to run that Python under (e.g. qemu-x86_64-static -cpu Haswell)."""
    import subprocess
    import sys

    blocked = ("torch", "transformers", *blocked)
    # the editable install of this project is not on a device: drop its import hook so the bundle's copy is used
    code = ("import sys; sys.modules.update(dict.fromkeys(sys.argv[2].split(','))); "
            "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')]; "
            "import targets; assert targets.__file__.startswith(sys.argv[1]), targets.__file__; "
            "from targets.__main__ import main; sys.exit(main(sys.argv[3:]))")
    env = dict(os.environ, PYTHONPATH=str(bundle_root / "runner"))
    return subprocess.run([*prefix, sys.executable, "-c", code, str(bundle_root / "runner"), ",".join(blocked), *args],
                          capture_output=True, text=True, env=env, input=stdin, timeout=timeout, cwd=bundle_root)


def aarch64_python_or_skip() -> None:
    """The emulated-ARM64 tests' one network step (Debian mirror, PyPI), once: cached in ~/.cache/bert-compress/arm64.
    Skips the test with the reason when this machine cannot prepare it."""
    from compress.bench.arm64 import default_cache, guest_python, prepare_sysroot, prepare_wheels
    from compress.errors import UserError

    try:
        root = prepare_sysroot(default_cache())
        prepare_wheels(default_cache(), guest_python(root).name.removeprefix("python"))
    except UserError as exc:
        pytest.skip(f"cannot prepare the aarch64 Python here: {exc}")
