"""Sequence classification (single texts and text pairs): a label per text, softmax over the labels."""

from __future__ import annotations

from compress.metrics import accuracy, label_agreement
from compress.tasks.base import Task


def _has_head(source, labels: list[str]) -> bool:
    head = source.head_labels()
    return head is not None and head == labels


def _load_model(location: str, labels: list[str], spec: str, recipe=None):
    from compress.teacher import load_classifier

    return load_classifier(location, labels, spec)


def _train_loss(model, batch):
    from compress.evaluate import model_inputs

    return model(**model_inputs(batch), labels=batch["labels"]).loss


def _load_data(cfg):
    from compress.data.readers import load_task_data

    return load_task_data(cfg)


def _load_student(directory):
    from compress.student.albert import load_student

    return load_student(directory)


def _save_student(model, tokenizer, directory, max_length: int) -> None:
    from compress.student.albert import save_student
    from compress.vocab import save_tokenizer

    save_student(model, directory)
    save_tokenizer(tokenizer, directory)


TASK = Task(
    name="sequence-classification",
    description="a label per text or text pair (AutoModelForSequenceClassification)",
    head="a sequence-classification head",
    has_head=_has_head,
    load_model=_load_model,
    train_loss=_train_loss,
    load_data=_load_data,
    loss_outputs=frozenset({"logits", "hidden_states", "attention_scores", "qkv"}),
    has_labels=True,
    metric_name="accuracy",
    metric=accuracy,
    output_names=("logits",),
    output_shape=lambda num_labels: ["batch", num_labels],
    postprocess="softmax-labels",
    agreement=label_agreement,
    load_student=_load_student,
    save_student=_save_student,
)
