"""`Run`: one OUT and the inputs every stage shares (recipe, task, teacher, data, tokenizer), loaded and checked once.

Stages receive a Run and never import each other: what one stage hands the next is its record in
OUT/stages/<stage>.json (`run.stage_record`), its artifacts (`run.artifacts`) and the files its layout names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from compress.artifacts import Artifact, artifacts_of
from compress.data import TaskData
from compress.distributed import main_process, pick_device  # noqa: F401 (part of the run API)
from compress.errors import UserError
from compress.fsutil import read_json, settings_hash
from compress.recipe import Recipe
from compress.run.layout import Layout
from compress.tasks import Task, get as get_task
from compress.teacher import TeacherSource, load_tokenizer, quiet_transformers, weights_identity


@dataclass
class Run:
    recipe: Recipe
    out: Path
    source: TeacherSource
    data: TaskData
    resume: bool = False
    """continue: skip stages finished with the same settings, pick training up from its checkpoints"""
    command: str = "run"

    @cached_property
    def layout(self) -> Layout:
        return Layout(self.out)

    @cached_property
    def task(self) -> Task:
        return get_task(self.recipe.task).for_labels(self.data.labels)

    # ---- what the stages recorded (every path: compress.run.layout) ------------------------------------
    def stage_record(self, stage: str, needed_by: str | None = None) -> dict | None:
        path = self.layout.stage_file(stage)
        if path.is_file():
            return read_json(path)
        if needed_by:
            raise UserError(f"{needed_by} needs the {stage} stage: run `bert-compress {stage} --out {self.out}` first")
        return None

    def distiller(self, teacher, student, losses=()):
        """The distill stage's Distiller again (layer map, the task vocabulary's id map, the trained projections):
        what quantization-aware distillation trains with."""
        from compress.distill.build import build_distiller
        from compress.vocab import KEPT_IDS_FILE, id_map

        kept = self.layout.student / KEPT_IDS_FILE
        ids = id_map(teacher.config.vocab_size, read_json(kept), self.tokenizer.unk_token_id) if kept.is_file() else None
        return build_distiller(self.recipe, teacher, student, ids, losses, self.layout.projections)

    def artifacts(self, *stages: str) -> list[Artifact]:
        """The verified artifacts the given stages (export, quantize) made, in stage order."""
        return [a for stage in stages for a in artifacts_of(self.stage_record(stage))]

    def checkpoint(self, stage: str, fit_name: str):
        """Where one training loop of `stage` saves its state; resumed only under --resume."""
        from compress import distributed
        from compress.checkpoint import Checkpoint
        from compress.run.keys import stage_key

        size = distributed.world().size
        return Checkpoint(self.layout.checkpoint_dir(stage) / f"{fit_name}.pt", settings_hash([stage_key(self, stage), fit_name]),
                          self.recipe.checkpoint_every, self.resume,
                          f"`bert-compress {self.command} --out {self.out} --resume" + (f" --nproc {size}`" if size > 1 else "`"))

    # ---- shared inputs -------------------------------------------------------------------------------------
    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.source.location, self.source.spec, self.recipe.data.max_length, self.source.config.vocab_size)

    def student_tokenizer(self):
        """The student's own tokenizer once distilled (a pruned vocabulary has one); the teacher's before."""
        from compress.embedding.static_encoder import is_static, static_tokenizer

        if is_static(self.layout.student):
            return static_tokenizer(self.layout.student)
        if (self.layout.student / "tokenizer_config.json").is_file():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(self.layout.student)
        return self.tokenizer

    def encode(self, split: str, tokenizer=None):
        from compress.data.batching import encode

        return encode(tokenizer or self.tokenizer, self.data.split(split), self.recipe.data.max_length)

    def eval_split(self, split: str, tokenizer=None, teacher=None):
        """An encoded split to score a model on: its labels, or, for a task judged against the teacher (embeddings:
        fidelity), the teacher's outputs on the same rows (teacher_outputs)."""
        enc = self.encode(split, tokenizer)
        if self.task.targets_from_teacher:
            enc.labels = self.teacher_outputs(split, teacher)
        return enc

    def teacher_outputs(self, split: str, teacher=None):
        """The teacher's task outputs on a split (its own tokenizer), kept in OUT/cache/targets/ under a key of the
        teacher's weights, the task settings and the rows, so distill, quantize and bench compute them once."""
        import numpy as np

        from compress.fsutil import read_json, write_json

        key = settings_hash({"inputs": self.inputs_identity, "split": split, "task": self.task.name,
                             "teacher": self.teacher_location("evaluation"), "embedding": self.recipe.embedding.model_dump()})
        path = self.layout.targets_file(split)
        meta = path.with_suffix(".json")
        if path.is_file() and meta.is_file() and read_json(meta).get("key") == key:
            return np.load(path, allow_pickle=False)
        from compress.evaluate import predict_logits

        model = teacher if teacher is not None else self.load_teacher("evaluation")
        out = predict_logits(model, self.encode(split), description=f"teacher outputs on {split}")
        if main_process():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".tmp-{path.name}")
            with open(tmp, "wb") as fh:
                np.save(fh, out, allow_pickle=False)
            tmp.replace(path)
            write_json(meta, {"key": key, "rows": len(out)})
        return out

    @cached_property
    def inputs_identity(self) -> dict:
        """The teacher's weights and all task data, hashed once per run (every stage key includes them)."""
        return {"teacher": weights_identity(self.source), "data": self.data_fingerprint("train", "dev", "test")}

    def data_fingerprint(self, *splits: str) -> str:
        return settings_hash([[(e.text, e.text_pair, e.label) for e in self.data.split(s)] for s in splits] + [self.data.labels])

    # ---- models the stages made ----------------------------------------------------------------------------
    def teacher_location(self, needed_by: str) -> str:
        return self.stage_record("finetune", needed_by=needed_by)["teacher_path"]

    def load_teacher(self, needed_by: str):
        return self.task.load_model(self.teacher_location(needed_by), self.data.labels, self.source.spec, self.recipe)

    def load_student(self, needed_by: str):
        quiet_transformers()
        self.stage_record("distill", needed_by=needed_by)
        return self.task.load_student(self.layout.student)
