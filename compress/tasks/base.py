"""What a task is: everything the pipeline, the bench, the report, the CLI and the platforms ask a task instead of
assuming sequence classification.

A task module defines one subclass of `Task` and the registry (compress.tasks) lists an instance. Stages read the
task from the run (`run.task`): which head the teacher needs and how it gets one, the data reader, which model
outputs the distillation losses may read, the metric that selects checkpoints and guards quantization, the
exported outputs and their names, which post-processing the device runner applies to them, and how the report and
the bundles put its quality and its outputs into words. Nothing outside compress/tasks/ branches on which task it
is: it asks the task.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np


class Task(ABC):
    name: str
    description: str
    head: str
    """The head a teacher needs, in words (error messages, the report)."""
    loss_outputs: frozenset[str]
    """The model outputs distillation losses may read (logits, hidden_states, attention_scores, ...)."""
    has_labels: bool
    """Whether rows carry labels (losses with needs_labels, e.g. hard_ce, need them)."""
    metric_name: str
    """The metric in words ("accuracy", "fidelity", "entity F1")."""
    output_names: tuple[str, ...]
    """The exported graph's outputs, in order."""
    postprocess: str
    """How the device runner turns outputs into answers (targets.bundle.POSTPROCESS names it)."""
    agreement_name: str = "label agreement"
    targets_from_teacher: bool = False
    """True: the metric's 'labels' are the teacher's outputs on the same rows (embeddings: fidelity to the teacher)."""
    default_recipe: str = "default"
    """The named recipe `--task NAME` starts from when no --recipe is given."""
    default_losses: dict | None = None
    """The distillation losses when a recipe of this task names none."""

    # ---- how the report, the CLI and the bundles put it into words -----------------------------------------------
    quality_column: str = "test acc"
    """The column of the task's quality on the test split (report and bundle tables)."""
    quality_axis: str = "test accuracy (%)"
    """The quality the Pareto plot and the tables rank models by, with its unit."""
    kept_words: str = "{kept}% of its test accuracy{spread}"
    """What the CLI's last line says the best artifact keeps of the teacher ({kept}: a share in %, {spread}: its
    interval or nothing)."""
    agreement_column: str = "agreement"
    """The bundle table's column of a platform check's agreement with the PyTorch student."""
    output_unit: str = "logit"
    """What one number of the output is ('max abs Δlogit' in the verification table)."""
    runner_columns: str = "label agreement | dev acc % |"
    """The runner-bundle table's last two columns (the report); `runner_cells` fills them."""
    transformers_js_pipeline: str | None = "text-classification"
    """The transformers.js pipeline the web bundle's check runs (None: no web bundle for this task)."""
    transformers_js_output: str = "logits"
    """The output the web check reads from transformers.js."""
    web_unsupported: str = ("the transformers.js check for this task is not built yet; the android-ort string-in "
                            "model (ONNX Runtime Web runs it) serves the web")
    mediapipe_api: str | None = "TextClassifier"
    """The MediaPipe Tasks API that runs this task's .tflite, TextClassifier (softmax scores over labels) or
    TextEmbedder (a vector); None: the android-litert bundle is skipped, saying `mediapipe_unsupported`."""
    mediapipe_unsupported: str = "MediaPipe Tasks has no task for this model's outputs"
    labelled_outputs: bool = True
    """The outputs have one column per label (bundles ship labels.txt and the config's id2label)."""
    per_token: bool = False
    """The outputs have a row per token (a [texts, tokens, width] output; the device returns character spans)."""

    # ---- the teacher -------------------------------------------------------------------------------------------------
    @abstractmethod
    def has_head(self, source, labels: list[str]) -> bool:
        """(TeacherSource, task labels) -> the checkpoint already has this task's head for these labels."""

    @abstractmethod
    def load_model(self, location: str, labels: list[str], spec: str, recipe=None):
        """(location, labels, spec, recipe) -> the model with this task's head (a new head when it has none)."""

    def train_loss(self, model, batch):
        """The loss that fine-tunes the teacher on the task's labels (the head's own loss)."""
        from compress.evaluate import model_inputs

        return model(**model_inputs(batch), labels=batch["labels"]).loss

    def load_timed_teacher(self, spec: dict):
        """The fine-tuned teacher in a bench worker process, from its job spec (path, labels, what the task adds)."""
        return self.load_model(spec["path"], spec["labels"], spec["path"], None)

    def head_labels(self, source) -> list[str] | None:
        """The labels of the checkpoint's head for this task (None: it has none)."""
        return source.head_labels()

    def check_inputs(self, source, recipe) -> None:
        """Raises UserError for a teacher the task cannot use (checked before OUT is touched)."""
        return None  # any teacher with the task's head, or one it can be given

    def check_labels(self, source, labels: list[str]) -> None:
        """Raises UserError when the checkpoint's head disagrees with the data's labels."""
        return None  # has_head decides: a head for other labels is replaced by fine-tuning

    # ---- data and students -----------------------------------------------------------------------------------------
    @abstractmethod
    def load_data(self, cfg):
        """DataConfig -> compress.data.TaskData."""

    def unlabelled_row(self, text: str, text_pair: str | None = None):
        """A row without a label (augmented or unlabeled text the teacher labels for distillation)."""
        from compress.data.readers import unlabelled_example

        return unlabelled_example(text, text_pair)

    def entity_augmenter(self, train: list, labels: list[str], p: float, seed: int):
        """An augmenter of the training rows' tagged words (distill.transfer.entities); refused for rows without a tag
        per word."""
        from compress.errors import UserError

        raise UserError(f"distill.transfer.entities augments words tagged one by one, which {self.name} data does not "
                        "have: set distill.transfer.entities.copies to 0 (distill.transfer.augment replaces words in any text)")

    def load_student(self, directory):
        """OUT/student/ -> the PyTorch student (eval mode)."""
        from compress.student.albert import load_student

        return load_student(directory)

    def save_student(self, model, tokenizer, directory, max_length: int) -> None:
        """Writes OUT/student/ in the task's own format."""
        from compress.student.albert import save_student
        from compress.vocab import save_tokenizer

        save_student(model, directory)
        save_tokenizer(tokenizer, directory)

    def student_files(self, run, directory, teacher_outputs=None) -> None:
        """Files the task keeps beside the student in OUT/student/ (embeddings: the basis of the shorter vectors).
        teacher_outputs: the teacher's outputs on the training rows, in order, when distillation already has them."""
        return None

    # ---- quality -----------------------------------------------------------------------------------------------------
    @abstractmethod
    def metric(self, outputs: np.ndarray, labels: np.ndarray) -> float:
        """The task's quality, higher is better: checkpoint selection and the quantization guard."""

    @abstractmethod
    def agreement(self, reference: np.ndarray, candidate: np.ndarray) -> float:
        """How far an artifact's outputs agree with the PyTorch student's, 1 = fully."""

    def for_labels(self, labels: list[str]) -> Task:
        """This task with its metric bound to the run's label names (the same task when its metric needs none)."""
        return self

    def quality(self, run) -> Any:
        """What the bench stage measures beyond the metric on test (embeddings: retrieval, the probe); None: the
        metric on the test split is the quality."""
        return None

    def dev_quality(self, outputs: np.ndarray, labels: np.ndarray) -> float | None:
        """A platform check's quality on the dev split from its outputs (None: the task has no labels there)."""
        return float(self.metric(outputs, labels)) if len(labels) else None

    def ranked_quality(self, model) -> float | None:
        """What a model (compress.bench.record.Measured) is judged on in the tables and the Pareto plot."""
        return model.quality

    def kept_sentence(self, pct: str, interval: str) -> str:
        """The report headline's words for what the best artifact keeps of the teacher."""
        return f"**{pct}%** of the teacher's {self.quality_column.replace('test acc', 'test accuracy')}{interval}."

    def runner_cells(self, check: dict, pct) -> str:
        """The runner-bundle table's `runner_columns` for one model's runner check (pct formats a share)."""
        return f"{pct(check['label_agreement_vs_pytorch'])}% | {pct(check.get('dev_accuracy'))} |"

    def outputs_in_words(self, label_names: list[str], tokens_axis: str = "L") -> str:
        """What the exported model returns, for bundle READMEs (tokens_axis: the sequence axis's name there)."""
        return f"the logits, one per label in `labels.txt` ({', '.join(label_names)})"

    def bundle_metadata(self, student, student_dir: Path | None = None) -> dict:
        """What the bundles' metadata.json says of the model's outputs beyond the task and labels."""
        return {}

    def bundle_files(self, student_dir: Path) -> list[Path]:
        """Files of OUT/student/ that every platform bundle carries beside the model (embeddings: the shorter-vector
        basis)."""
        return []

    def bundle_readme(self, meta: dict) -> str:
        """The pi bundle's README.md from its metadata.json."""
        from compress.bundle_readme import render

        return render(meta)

    def report_sections(self, report: dict, results, seq: int, threads: int) -> list[str]:
        """What the report adds for this task after the headline (embeddings: retrieval; entities: per type).
        results: the report's measured models (compress.bench.record.BenchResults)."""
        return []

    def check_losses(self, needs: frozenset[str], needs_labels: bool, what: str) -> str | None:
        """Why a loss cannot be used for this task (None: it can)."""
        missing = sorted(needs - self.loss_outputs)
        if missing:
            article = "an" if self.name[0] in "aeiou" else "a"
            return f"{what} reads {', '.join(missing)}, which {article} {self.name} model does not give"
        if needs_labels and not self.has_labels:
            return f"{what} needs labels, which {self.name} data does not have"
        return None

    # ---- exported outputs --------------------------------------------------------------------------------------------
    @abstractmethod
    def output_shape(self, width: int) -> list:
        """width (number of labels, or the vector size) -> the shape of the first output, 'batch' for the batch
        axis."""

    def bound(self, **changes) -> Task:
        """A copy with some attributes replaced (a task bound to a run's labels)."""
        task = copy.copy(self)
        for key, value in changes.items():
            setattr(task, key, value)
        return task
