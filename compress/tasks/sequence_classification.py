"""Sequence classification (single texts and text pairs): a label per text, softmax over the labels."""

from __future__ import annotations

from compress.metrics import accuracy, label_agreement
from compress.tasks.base import Task


class SequenceClassification(Task):
    name = "sequence-classification"
    description = "a label per text or text pair (AutoModelForSequenceClassification)"
    head = "a sequence-classification head"
    loss_outputs = frozenset({"logits", "hidden_states", "attention_scores", "qkv"})
    has_labels = True
    metric_name = "accuracy"
    output_names = ("logits",)
    postprocess = "softmax-labels"
    # plain functions, not methods: training compares the metric with `accuracy` (it sums counts across processes)
    metric = staticmethod(accuracy)
    agreement = staticmethod(label_agreement)

    def has_head(self, source, labels: list[str]) -> bool:
        head = source.head_labels()
        return head is not None and head == labels

    def load_model(self, location: str, labels: list[str], spec: str, recipe=None):
        from compress.teacher import load_classifier

        return load_classifier(location, labels, spec)

    def load_data(self, cfg):
        from compress.data.readers import load_task_data

        return load_task_data(cfg)

    def output_shape(self, width: int) -> list:
        return ["batch", width]


TASK = SequenceClassification()
