"""The task seam: the registry, what a task decides (head, losses, metric, outputs), and the typed artifact record
that every stage builds and reads one way."""

from __future__ import annotations


import numpy as np
import pytest

from compress.cli import main


def test_sequence_classification_is_the_default_task():
    from compress.recipe import resolve_recipe
    from compress.tasks import DEFAULT, get, names

    assert resolve_recipe(None).task == DEFAULT == "sequence-classification"
    assert names() == [DEFAULT, "embedding", "token-classification"]
    task = get(DEFAULT)
    assert task.output_names == ("logits",) and task.output_shape(3) == ["batch", 3]
    assert task.metric(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), np.array([1, 0, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="unknown task 'ner'; known tasks: sequence-classification"):
        get("ner")  # the task is token-classification; `ner` is its recipe


def test_an_unknown_task_in_a_recipe_is_one_line_and_exit_2(tmp_path, tiny_teacher, tiny_data, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: token-tagging\n")
    out = tmp_path / "out"
    code = main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown task 'token-tagging'" in err[0]
    assert not out.exists()


def test_a_loss_reading_an_output_the_task_lacks_is_refused_before_training(tiny_teacher):
    """The task says which outputs losses may read: a task without hidden states refuses tinybert_hidden."""
    from transformers import AutoConfig

    from compress.distill.plan import validate_plan
    from compress.errors import UserError
    from compress.recipe import build_recipe
    from compress.tasks import get

    recipe = build_recipe({"student": {"num_layers": 1}, "distill": {"losses": {"distilbert_soft": {}, "tinybert_hidden": {}}}}, "test")
    config = AutoConfig.from_pretrained(tiny_teacher)
    validate_plan(config, recipe, get("sequence-classification"))  # the classifier gives hidden states
    logits_only = get("sequence-classification").bound(name="logits-only", loss_outputs=frozenset({"logits"}))
    with pytest.raises(UserError, match="loss 'tinybert_hidden' reads hidden_states, which a logits-only model does not give"):
        validate_plan(config, recipe, logits_only)
    unlabeled = get("sequence-classification").bound(name="unlabeled", has_labels=False)
    recipe = build_recipe({"student": {"num_layers": 1}, "distill": {"losses": {"hard_ce": {}}}}, "test")
    with pytest.raises(UserError, match="loss 'hard_ce' needs labels"):
        validate_plan(config, recipe, unlabeled)


def test_fit_picks_the_best_epoch_by_the_tasks_metric(tiny_teacher, tiny_data):
    """The metric the task gives, not accuracy, selects the checkpoint: a metric that prefers the first epoch
    makes fit restore it."""
    import torch

    from compress.data.batching import encode
    from compress.data.config import DataConfig
    from compress.recipe import TrainConfig
    from compress.tasks import get
    from compress.teacher import load_tokenizer, resolve_teacher
    from compress.training import fit

    task = get("sequence-classification")
    data = task.load_data(DataConfig(path=str(tiny_data), max_train=32, max_eval=16))
    source = resolve_teacher(str(tiny_teacher))
    tok = load_tokenizer(source.location, source.spec, 32, source.config.vocab_size)
    train, dev = encode(tok, data.train, 32), encode(tok, data.dev, 32)
    model = task.load_model(source.location, data.labels, source.spec)
    calls = []

    def first_is_best(logits, labels):
        calls.append(1)
        return 1.0 / len(calls)

    result = fit(model, lambda b: (task.train_loss(model, b), {}), train, dev, TrainConfig(epochs=3, batch_size=16),
                 0, "metric-test", metric=first_is_best)
    assert len(calls) == 3 and result["best_epoch"] == 1 and result["best_dev_quality"] == 1.0
    assert isinstance(model, torch.nn.Module)


LEGACY_QUANTIZED = {  # a quantize-stage artifact as bert-compress wrote it before the typed record
    "name": "student-int8-torchao", "format": "pytorch", "runtime": "pytorch", "path": "quantized/torchao.pt",
    "description": "torchao: scheme=int8-weight",
    "verification": {"max_abs_diff": 0.01, "label_agreement": 1.0, "rows": 8, "passed": True, "atol": None,
                     "min_label_agreement": 0.99},
    "quantization": {"backend": "torchao", "settings": {"scheme": "int8-weight", "group_size": 32, "qad_epochs": 0,
                                                         "qad_lr": None, "embeddings": "fp32", "exclude": "none"},
                     "fallback": 0, "reason": "kept", "seconds": 1.0, "dev_accuracy": 0.8, "qad_history": [1]},
}


@pytest.mark.parametrize("backend, settings, precision, compute", [
    ("torchao", {"scheme": "int8-weight"}, "int8 weights, fp32 activations", "fp32"),  # weight-only: the fp32 peak
    ("torchao", {"scheme": "int8-dynamic"}, "int8 weights, int8 activations (quantized per call)", "int8"),
    ("torchao", {"scheme": "int4-weight"}, "int4 weights", "fp32"),
    ("ort-dynamic", {}, "int8 weights, fp32 activations (quantized per call)", "int8"),
    ("ort-static", {}, "int8 weights, int8 activations", "int8"),
    ("litert-dynamic", {"weight_only": True}, "int8 weights, fp32 compute (dequantized at load)", "fp32"),
    ("litert-static", {"activation_bits": 16}, "int8 weights, int16 activations", "int8"),
])
def test_each_backend_says_what_its_settings_produce(backend, settings, precision, compute):
    from compress.artifacts import Artifact

    legacy = LEGACY_QUANTIZED | {"quantization": LEGACY_QUANTIZED["quantization"] | {"backend": backend, "settings": settings}}
    art = Artifact.from_dict(legacy)
    assert (art.precision, art.compute, art.task) == (precision, compute, "sequence-classification")


def test_the_artifact_record_round_trips_and_reads_records_of_earlier_versions():
    from compress.artifacts import Artifact

    art = Artifact.from_dict(LEGACY_QUANTIZED)
    assert art.quantization.extra == {"qad_history": [1]} and art.verification.atol is None and art.quantized
    again = Artifact.from_dict(art.to_dict())
    assert again == art and again.to_dict()["precision"] == "int8 weights, fp32 activations"
    fp32 = Artifact.from_dict({k: v for k, v in LEGACY_QUANTIZED.items() if k != "quantization"} | {"format": "onnx"})
    assert (fp32.precision, fp32.compute, fp32.quantization) == ("fp32", "fp32", None)


@pytest.mark.slow  # a whole quick run with its bundles
def test_a_task_defined_only_in_a_test_runs_every_stage_and_ships_a_pi_bundle(tmp_path):
    """A fourth task, defined here and nowhere else: sentiment judged by balanced accuracy, in its own words. The
    stages, the report, the quantization guard and the bundles ask it; nothing outside compress/tasks knows it."""
    import json

    from compress import tasks
    from compress.tasks.sequence_classification import SequenceClassification
    from tests.helpers import run_torch_free

    def balanced_accuracy(logits, labels):
        labels = np.asarray(labels)
        picked = np.asarray(logits).argmax(-1)
        return float(np.mean([(picked[labels == c] == c).mean() for c in np.unique(labels)]))

    class BalancedSentiment(SequenceClassification):
        name = "balanced-sentiment"
        description = "a label per text, judged by balanced accuracy (the mean of each class's recall)"
        metric_name = "balanced accuracy"
        metric = staticmethod(balanced_accuracy)
        quality_column = "balanced acc"
        quality_axis = "test balanced accuracy (%)"
        kept_words = "{kept}% of its balanced accuracy{spread}"
        mediapipe_api = None
        mediapipe_unsupported = "not for this test's task"
        transformers_js_pipeline = None
        web_unsupported = "not for this test's task"

    # the default recipe, with PyTorch models timed in this process: a task registered here is unknown to a fresh
    # bench worker process (a task in compress/tasks/ is known everywhere)
    import yaml

    from compress.recipe import load_recipe_data

    raw, _ = load_recipe_data("default")
    raw["bench"]["isolate"] = False
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    with tasks.registered(BalancedSentiment()):
        assert main(["run", "--quick", "--task", "balanced-sentiment", "--recipe", str(recipe), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "balanced-sentiment"
    assert json.loads((out / "stages/quantize.json").read_text())["metric"] == "balanced accuracy"
    text = (out / "report.md").read_text()
    assert "| balanced acc % |" in text and "guarded by dev balanced accuracy" in text
    platforms = {p["platform"]: p for p in report["bundle"]["platforms"]}
    assert platforms["android-litert"]["skipped"] == platforms["web"]["skipped"] == "not for this test's task"
    meta = json.loads((out / "bundle/pi/metadata.json").read_text())
    assert meta["task"]["name"] == "balanced-sentiment" and meta["models"]
    proc = run_torch_free(out / "bundle" / "pi", "predict", str(out / "bundle" / "pi"), "a gripping, beautifully acted film")
    assert proc.returncode == 0 and any(label in proc.stdout for label in meta["labels"]), proc.stderr
    assert "balanced-sentiment" not in tasks.names()  # gone after the block
