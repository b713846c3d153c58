"""What a task is: everything the pipeline asks a task instead of assuming sequence classification.

A task module builds one `Task` and the registry (compress.tasks) lists it. Stages read the task from the run
(`run.task`): which head the teacher needs and how it gets one, the data reader, which model outputs the
distillation losses may read, the metric that selects checkpoints and guards quantization, the exported outputs
and their names, and which post-processing the device runner applies to them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    head: str
    """The head a teacher needs, in words (error messages, the report)."""
    has_head: Callable[[Any, list[str]], bool]
    """(TeacherSource, task labels) -> the checkpoint already has this task's head for these labels."""
    load_model: Callable[[str, list[str], str, Any], Any]
    """(location, labels, spec, recipe) -> the model with this task's head (a new head when the checkpoint has none)."""
    train_loss: Callable[[Any, dict], Any]
    """(model, batch) -> the loss that fine-tunes the teacher on the task's labels."""
    load_data: Callable[[Any], Any]
    """DataConfig -> compress.data.TaskData."""
    loss_outputs: frozenset[str]
    """The model outputs distillation losses may read (logits, hidden_states, attention_scores, ...)."""
    has_labels: bool
    """Whether rows carry labels (losses with needs_labels, e.g. hard_ce, need them)."""
    metric_name: str
    metric: Callable[[np.ndarray, np.ndarray], float]
    """(outputs, labels) -> the task's quality, higher is better: checkpoint selection and the quantization guard."""
    output_names: tuple[str, ...]
    """The exported graph's outputs, in order."""
    output_shape: Callable[[int], list]
    """width (number of labels, or the vector size) -> the shape of the first output, 'batch' for the batch axis."""
    postprocess: str
    """How the device runner turns outputs into answers (targets.bundle.POSTPROCESS names it)."""
    agreement: Callable[[np.ndarray, np.ndarray], float] = None  # type: ignore[assignment]
    """(reference outputs, candidate outputs) -> how far an artifact agrees with the PyTorch student, 1 = fully."""
    agreement_name: str = "label agreement"
    targets_from_teacher: bool = False
    """True: the metric's 'labels' are the teacher's outputs on the same rows (embeddings: fidelity to the teacher)."""
    default_recipe: str = "default"
    """The named recipe `--task NAME` starts from when no --recipe is given."""
    default_losses: dict | None = None
    """The distillation losses when a recipe of this task names none."""
    load_student: Callable[[Any], Any] = None  # type: ignore[assignment]
    """OUT/student/ -> the PyTorch student (eval mode)."""
    save_student: Callable[[Any, Any, Any, int], None] = None  # type: ignore[assignment]
    """(student, tokenizer, directory, max_length) -> writes OUT/student/ in the task's own format."""
    check_inputs: Callable[[Any, Any], None] | None = None
    """(TeacherSource, recipe) -> raises UserError for a teacher the task cannot use (checked before OUT is touched)."""
    quality: Callable[[Any], Any] | None = None
    """run -> what the bench stage measures beyond the metric on test (embeddings: retrieval, the probe); None: the
    metric on the test split is the quality."""
    metric_for_labels: Callable[[list[str]], Callable[[np.ndarray, np.ndarray], float]] | None = None
    """label names -> the metric, for a metric that reads the names (entity F1 groups B- and I- tags): for_labels."""
    labels_of_head: Callable[[Any], list[str] | None] | None = None
    """TeacherSource -> the labels of the checkpoint's head for this task (None: TeacherSource.head_labels)."""
    check_labels: Callable[[Any, list[str]], None] | None = None
    """(TeacherSource, data labels) -> raises UserError when the checkpoint's head disagrees with the data."""
    unlabelled: Callable[[str, str | None], Any] | None = None
    """(text, second text or None) -> a row without a label (augmented or unlabeled text the teacher labels for
    distillation; compress.distill.transfer); None: compress.data.readers.unlabelled_example."""

    def unlabelled_row(self, text: str, text_pair: str | None = None):
        from compress.data.readers import unlabelled_example

        return (self.unlabelled or unlabelled_example)(text, text_pair)

    def for_labels(self, labels: list[str]) -> "Task":
        """This task with its metric bound to the run's label names (the same task when its metric needs none)."""
        if self.metric_for_labels is None:
            return self
        return replace(self, metric=self.metric_for_labels(list(labels)))

    def head_labels(self, source) -> list[str] | None:
        return self.labels_of_head(source) if self.labels_of_head is not None else source.head_labels()

    def check_losses(self, needs: frozenset[str], needs_labels: bool, what: str) -> str | None:
        """Why a loss cannot be used for this task (None: it can)."""
        missing = sorted(needs - self.loss_outputs)
        if missing:
            article = "an" if self.name[0] in "aeiou" else "a"
            return f"{what} reads {', '.join(missing)}, which {article} {self.name} model does not give"
        if needs_labels and not self.has_labels:
            return f"{what} needs labels, which {self.name} data does not have"
        return None
