"""Models the bench stage measures beside the student, on the same inputs: the teacher in ONNX Runtime fp32 (a fair
speed baseline: eager PyTorch is not how anyone ships), and, for a static embedding student, model2vec's own
distillation of the teacher (the same table without our fitted map: PCA space, its own dimension)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Reference:
    name: str
    path: Path  # an ONNX file (targets.runtime loads it)
    tokenizer: object  # what encodes its inputs
    description: str
    vocab_size: int


def reference_models(run, teacher, directory: Path) -> list[Reference]:
    from compress.embedding.static_encoder import is_static
    from compress.export.onnx import export_onnx
    from compress.progress import info

    directory.mkdir(parents=True, exist_ok=True)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in run.encode("dev").features]
    info("bench: the teacher in ONNX fp32 (a reference row)")
    path = export_onnx(teacher, names, directory / "teacher.onnx", run.recipe.export.opset, run.task.output_names)
    refs = [Reference("teacher-onnx-fp32", path, run.tokenizer, "the teacher exported to ONNX fp32 (reference, not shipped)",
                      teacher.config.vocab_size)]
    if is_static(run.layout.student):
        from compress.embedding.static import export_static_onnx, load_static

        student = load_static(run.layout.student)
        if student.W is not None:
            if student.metadata.get("fit", "map") == "map" and student.metadata.get("weights", "zipf") == "zipf":
                peer = replace(student, W=None, b=None, normalize=True)  # the student's own table is model2vec's
            else:  # trained, or re-weighted: model2vec's plain distillation is made again, with the same PCA size
                from compress.embedding.static import distill_static

                info("bench: model2vec's own distillation of the teacher (the peer row of a trained static student)")
                peer = distill_static(run.teacher_location("bench"), student.metadata.get("pca_dims"))
            export_static_onnx(peer, directory / "model2vec.onnx")
            refs.append(Reference("model2vec-onnx-fp32", directory / "model2vec.onnx", run.student_tokenizer(),
                                  f"model2vec's own distillation (PCA {student.metadata.get('pca_dims')}, no map to the "
                                  "teacher's space; a peer, not shipped)", peer.embedding.shape[0]))
    return refs
