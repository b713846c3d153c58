"""Token classification (named entities, PII redaction, slot filling): a BIO tag per word, logits per word piece.

The teacher is a `*ForTokenClassification` checkpoint whose labels are the data's tags, or any BERT-family encoder
fine-tuned first (a new head). Data: CoNLL or JSONL (compress.tokens.data); the first piece of each word carries its
tag (compress.tokens.align). The metric is entity-level F1 (seqeval); the quantization guard also reads the
token-level agreement with the fp32 student. The device runner decodes entities with character spans
(targets.ner).
"""

from __future__ import annotations

from functools import partial

from compress.tasks.base import Task
# a token classifier trains (the head's own loss ignores -100), saves and loads as a sequence classifier does
from compress.tasks.sequence_classification import _load_student, _save_student, _train_loss
from compress.tokens.metrics import entity_f1, token_agreement


def head_labels(source) -> list[str] | None:
    archs = getattr(source.config, "architectures", None) or []
    if not any(a.endswith("ForTokenClassification") for a in archs):
        return None
    id2label = getattr(source.config, "id2label", None) or {}
    return [id2label[i] for i in sorted(id2label, key=int)]


def _has_head(source, labels: list[str]) -> bool:
    return head_labels(source) == labels


def _check_inputs(source, recipe) -> None:
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


def _load_model(location: str, labels: list[str], spec: str, recipe=None):
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


def _load_data(cfg):
    from compress.tokens.data import load_token_data

    return load_token_data(cfg)


def _quality(run):
    from compress.tokens.quality import TokenQuality

    return TokenQuality(run)


def _metric(labels: list[str]):
    f = partial(entity_f1, names=labels)
    f.label = "entity F1"
    return f


def _unlabelled(text: str, text_pair=None):
    """Untagged text as words (split on whitespace, as a device reads it) whose first pieces carry UNLABELLED: the
    soft per-token losses score them, the gold-tag loss does not."""
    from compress.data.readers import UNLABELLED
    from compress.tokens.data import TokenExample

    words = tuple(text.split())
    return TokenExample(words=words, tags=(UNLABELLED,) * len(words))


TASK = Task(
    name="token-classification",
    description="a BIO tag per word: named entities, PII, slots (AutoModelForTokenClassification)",
    head="a token-classification head",
    has_head=_has_head,
    load_model=_load_model,
    train_loss=_train_loss,
    load_data=_load_data,
    loss_outputs=frozenset({"logits", "hidden_states", "attention_scores", "qkv"}),
    has_labels=True,
    metric_name="entity F1",
    metric=None,  # type: ignore[arg-type]  (bound to the run's tags: Task.for_labels)
    metric_for_labels=_metric,
    output_names=("logits",),
    output_shape=lambda num_labels: ["batch", "sequence", num_labels],
    postprocess="token-tags",
    agreement=token_agreement,
    agreement_name="token agreement",
    default_recipe="ner",
    load_student=_load_student,
    save_student=_save_student,
    check_inputs=_check_inputs,
    quality=_quality,
    labels_of_head=head_labels,
    check_labels=check_labels,
    unlabelled=_unlabelled,
)
