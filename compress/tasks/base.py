"""What a task is: everything the pipeline asks a task instead of assuming sequence classification.

A task module builds one `Task` and the registry (compress.tasks) lists it. Stages read the task from the run
(`run.task`): which head the teacher needs and how it gets one, the data reader, which model outputs the
distillation losses may read, the metric that selects checkpoints and guards quantization, the exported outputs
and their names, and which post-processing the device runner applies to them.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    load_model: Callable[[str, list[str], str], Any]
    """(location, labels, spec) -> the model with this task's head (a new head when the checkpoint has none)."""
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
    """number of labels -> the shape of the first output, with 'batch' for the batch axis."""
    postprocess: str
    """How the device runner turns outputs into answers (targets.bundle.POSTPROCESS names it)."""

    def check_losses(self, needs: frozenset[str], needs_labels: bool, what: str) -> str | None:
        """Why a loss cannot be used for this task (None: it can)."""
        missing = sorted(needs - self.loss_outputs)
        if missing:
            return f"{what} reads {', '.join(missing)}, which a {self.name} model does not give"
        if needs_labels and not self.has_labels:
            return f"{what} needs labels, which {self.name} data does not have"
        return None
