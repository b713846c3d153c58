"""What kind of model a student is, as the exporters, the bench and the platforms ask it (not `getattr(student,
"kind")` tests scattered through them). A student class names its own kind (`student_kind`); every Hugging Face
model is a transformer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StudentKind:
    name: str
    special_tokens: bool = True
    """Its tokenizer adds [CLS] / [SEP] (what an in-graph or a task-library tokenizer does)."""
    transformer: bool = True
    """Layers of attention: what litert-torch and ExecuTorch lower, what MediaPipe's BERT and transformers.js load,
    what ONNX Runtime's fusions fuse."""
    not_a_transformer: str = ""
    """Why a platform that needs a transformer has no bundle for it (one line)."""
    exports_itself: bool = False
    """It writes its own ONNX graph (`student.export_onnx(path)`) instead of torch.onnx's export of the module."""


TRANSFORMER = StudentKind("transformer")


def kind_of(student) -> StudentKind:
    return getattr(student, "student_kind", TRANSFORMER)
