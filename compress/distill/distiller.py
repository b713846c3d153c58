"""The distiller: runs teacher and student on a batch, owns the projections, sums the loss terms.

Projections (d_student -> d_teacher) live here, not in the student, so the student checkpoint stays a
plain Hugging Face model that exports cleanly; they are saved beside the training state. The teacher's side
comes from running it or from a teacher-output cache (compress/distill/teacher_cache.py). Outputs are handed
to the losses in float32, also when the models ran under bf16 autocast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from compress.distill.capture import ScoreCapture
from compress.distill.losses import CombinedLoss
from compress.evaluate import model_inputs

ProjectionMode = Literal["per_layer", "shared", "none"]


@dataclass
class Outputs:
    logits: torch.Tensor | None  # a classifier's (None for a sentence encoder)
    hidden_states: tuple[torch.Tensor, ...] | None = None  # [0] = embedding output, [m] = layer m
    attention_scores: list[torch.Tensor] | None = None  # [m - 1] = layer m, (B, heads, S, S), pre-softmax
    sentence_embedding: torch.Tensor | None = None  # a sentence encoder's pooled (normalised) vectors, (B, D)
    qkv: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None] | None = None  # [m - 1] = layer m, (B, S, A) each


class Distiller(torch.nn.Module):
    def __init__(self, teacher, student, layer_map: list[tuple[int, int]], projection: ProjectionMode = "per_layer",
                 student_ids: torch.Tensor | None = None):
        super().__init__()
        self.teacher = teacher
        self.student = student
        self.layer_map = layer_map
        d_s, d_t = student.config.hidden_size, teacher.config.hidden_size
        self.widths = (d_s, d_t)
        self.projections = torch.nn.ModuleDict()
        if d_s != d_t and projection != "none":
            keys = ["shared"] if projection == "shared" else ["embeddings"] + [f"layer{s}" for s, _ in layer_map]
            for key in keys:
                self.projections[key] = torch.nn.Linear(d_s, d_t)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        # teacher id -> student id when the student has a pruned vocabulary (compress.vocab); batches hold teacher ids
        self.register_buffer("student_ids", student_ids, persistent=False)

    def project(self, key: str, x: torch.Tensor) -> torch.Tensor:
        if not self.projections:  # equal widths (checked by the terms that project)
            return x
        return self.projections["shared" if "shared" in self.projections else key](x)

    def check(self, loss: CombinedLoss) -> None:
        """Refuse impossible combinations before any training step."""
        for spec, _, params in loss.terms:
            spec.check_all(self, params)

    def _run(self, model, batch, needs) -> Outputs:
        inputs = model_inputs(batch)
        if model is self.student and self.student_ids is not None:
            inputs["input_ids"] = self.student_ids[inputs["input_ids"]]
        hidden = "hidden_states" in needs
        scores = qkv = None
        if needs & {"attention_scores", "qkv"}:
            with ScoreCapture(model, with_values="qkv" in needs) as cap:
                out = model(**inputs, output_hidden_states=hidden)
                qkv = [tuple(x.float() for x in t) for t in cap.qkv()] if "qkv" in needs else None
                scores = cap.scores() if "attention_scores" in needs else None
        else:
            out = model(**inputs, output_hidden_states=hidden)
        logits, vectors = getattr(out, "logits", None), getattr(out, "sentence_embedding", None)
        return Outputs(logits.float() if logits is not None else None,
                       tuple(h.float() for h in out.hidden_states) if hidden else None,
                       [s.float() for s in scores] if scores is not None else None,
                       vectors.float() if vectors is not None else None,
                       qkv)

    def teacher_outputs(self, batch, needs) -> Outputs:
        with torch.no_grad():
            return self._run(self.teacher.eval(), batch, needs)

    def outputs(self, batch, needs, cache=None) -> tuple[Outputs, Outputs]:
        t_out = cache.outputs(batch) if cache is not None else self.teacher_outputs(batch, needs)
        s_out = self._run(self.student, batch, needs)
        return s_out, t_out

    def loss(self, batch, loss: CombinedLoss, cache=None):
        """cache: a TeacherCache for the data `batch` comes from (its `index` rows), or None to run the teacher."""
        s_out, t_out = self.outputs(batch, loss.needs, cache)
        return loss(s_out, t_out, batch, self)
