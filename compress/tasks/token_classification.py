"""Token classification (named entities, PII redaction, slot filling): a BIO tag per word, logits per word piece.

The teacher is a `*ForTokenClassification` checkpoint whose labels are the data's tags, or any BERT-family encoder
fine-tuned first (a new head). Data: CoNLL or JSONL (compress.token_classification.data); the first piece of each word carries its
tag (compress.token_classification.align). The metric is entity-level F1 (seqeval); the quantization guard also reads the
token-level agreement with the fp32 student. The device runner decodes entities with character spans
(targets.ner).
"""

from __future__ import annotations

from functools import partial

from compress.tasks.base import Task
from compress.token_classification.metrics import entity_f1, token_agreement


def head_labels(source) -> list[str] | None:
    archs = getattr(source.config, "architectures", None) or []
    if not any(a.endswith("ForTokenClassification") for a in archs):
        return None
    id2label = getattr(source.config, "id2label", None) or {}
    return [id2label[i] for i in sorted(id2label, key=int)]


def check_inputs(source, recipe) -> None:
    """A token classifier with other tags than the data's is refused (a new head would throw its training away);
    a sequence classifier is refused too: its head is for texts, not words."""
    from compress.errors import UserError

    archs = getattr(source.config, "architectures", None) or []
    if any(a.endswith("ForSequenceClassification") for a in archs):
        raise UserError(f"teacher {source.spec} is a sequence classifier ({archs[0]}); token classification needs a "
                        "*ForTokenClassification checkpoint or a bare encoder (fine-tuned first)")


def check_labels(source, labels: list[str]) -> None:
    from compress.errors import UserError

    have = head_labels(source)
    if have is not None and have != labels:
        if sorted(have) == sorted(labels):
            raise UserError(f"teacher {source.spec} tags {have} in another order than the data's {labels}: set "
                            "data.labels to the checkpoint's order")
        raise UserError(f"teacher {source.spec} is a token classifier for {have}, the data has {labels}: use data "
                        "with its tags (or set data.labels to them), or a teacher without a token-classification head")


def _metric(labels: list[str]):
    f = partial(entity_f1, names=labels)
    f.label = "entity F1"
    return f


class TokenClassification(Task):
    """Trains (the head's own loss ignores -100), saves and loads as a sequence classifier does (Task's defaults)."""

    name = "token-classification"
    description = "a BIO tag per word: named entities, PII, slots (AutoModelForTokenClassification)"
    head = "a token-classification head"
    loss_outputs = frozenset({"logits", "hidden_states", "attention_scores", "qkv"})
    has_labels = True
    metric_name = "entity F1"
    output_names = ("logits",)
    postprocess = "token-tags"
    agreement = staticmethod(token_agreement)
    agreement_name = "token agreement"
    default_recipe = "ner"
    quality_column = "entity F1"
    quality_axis = "test entity F1 (%)"
    kept_words = "{kept}% of its test entity F1{spread}"
    runner_columns = "token agreement | dev word-tag acc % |"
    transformers_js_pipeline = None
    web_unsupported = ("token classification: the transformers.js token-classification check is not built yet; the "
                       "android-ort string-in model (ONNX Runtime Web runs it) gives tags and character offsets")
    mediapipe_api = None
    mediapipe_unsupported = ("MediaPipe Tasks has no token-classification (NER) task to read the file's metadata; the "
                             "pi bundle's model.tflite runs in LiteRT directly (runner/targets/ner.py decodes its tags)")
    per_token = True

    def metric(self, outputs, labels) -> float:
        raise RuntimeError("entity F1 reads the tag names: use the task bound to the run's labels (for_labels)")

    def for_labels(self, labels: list[str]) -> Task:
        return self.bound(metric=_metric(list(labels)))

    def has_head(self, source, labels: list[str]) -> bool:
        return head_labels(source) == labels

    def head_labels(self, source) -> list[str] | None:
        return head_labels(source)

    def check_inputs(self, source, recipe) -> None:
        check_inputs(source, recipe)

    def check_labels(self, source, labels: list[str]) -> None:
        check_labels(source, labels)

    def load_model(self, location: str, labels: list[str], spec: str, recipe=None):
        import torch
        from transformers import AutoModelForTokenClassification

        from compress.errors import UserError
        from compress.teacher import first_line, quiet_transformers

        quiet_transformers()
        try:
            model = AutoModelForTokenClassification.from_pretrained(
                location, num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={lab: i for i, lab in enumerate(labels)}, ignore_mismatched_sizes=True, dtype=torch.float32)
        except (OSError, ValueError, RuntimeError) as exc:
            raise UserError(f"cannot load the weights of teacher {spec}: {first_line(exc, 1000)}") from None
        return model.eval()

    def load_data(self, cfg):
        from compress.token_classification.data import load_token_data

        return load_token_data(cfg)

    def quality(self, run):
        from compress.token_classification.quality import TokenQuality

        return TokenQuality(run)

    def unlabelled_row(self, text: str, text_pair=None):
        """Untagged text as words (split on whitespace, as a device reads it) whose first pieces carry UNLABELLED:
        the soft per-token losses score them, the gold-tag loss does not."""
        from compress.data.readers import UNLABELLED
        from compress.token_classification.data import TokenExample

        words = tuple(text.split())
        return TokenExample(words=words, tags=(UNLABELLED,) * len(words))

    def entity_augmenter(self, train: list, labels: list[str], p: float, seed: int):
        """compress.token_classification.augment over the training sentences; refused when they tag no entity."""
        from compress.errors import UserError
        from compress.token_classification.augment import EntityAugmenter

        augmenter = EntityAugmenter([(e.words, e.tags) for e in train], labels, p, seed)
        if not augmenter.entity_count:
            raise UserError("distill.transfer.entities: the training data tags no entity (every word is O), so there "
                            "is nothing to replace or shuffle: tag the data, or set distill.transfer.entities.copies to 0")
        return augmenter

    def kept_sentence(self, pct: str, interval: str) -> str:
        return f"**{pct}%** of the teacher's test entity F1{interval}."

    def runner_cells(self, check: dict, pct) -> str:
        return f"{pct(check['label_agreement_vs_pytorch'])}% | {pct(check.get('dev_accuracy', check.get('dev_word_tag_accuracy')))} |"

    def outputs_in_words(self, label_names: list[str], tokens_axis: str = "L") -> str:
        return (f"the tag logits of every token ([1, {tokens_axis}, tags], tags in `labels.txt`; a word's tag is its "
                "first piece's)")

    def bundle_readme(self, meta: dict) -> str:
        from compress.token_classification.bundle_readme import render

        return render(meta)

    def report_sections(self, report: dict, results, seq: int, threads: int) -> list[str]:
        from compress.token_classification.report import entity_section

        return entity_section(results)

    def output_shape(self, width: int) -> list:
        return ["batch", "sequence", width]


TASK = TokenClassification()
