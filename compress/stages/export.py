"""Stage 4, export: every exporter of compress.export in order (fp32 ONNX, ONNX fused for ONNX Runtime, bucketed
TFLite), each file verified on dev the way a device runs it (one text per call) against the PyTorch student. Only
verified files are kept; the portable ONNX must pass, the others are shipped when they do."""

from __future__ import annotations

from pathlib import Path

from compress.artifacts import Artifact
from compress.errors import StageFailed, first_line
from compress.fsutil import atomic_dir
from compress.progress import info
from compress.stages.common import require_absent


def run(run, force: bool = False) -> dict:
    from compress.evaluate import predict_logits
    from compress.export import exporters
    from compress.export.base import ExportInput
    from compress.export.verify import compare, device_logits
    from targets.runtime import load_model

    recipe = run.recipe
    require_absent(run.layout.export, force, "export")
    chosen = [e for e in exporters() if e.wanted(recipe)]  # an impossible request fails here, before any model loads
    student = run.load_student("export")
    dev = run.encode("dev", run.student_tokenizer())
    reference = predict_logits(student, dev, description="student logits on dev")
    artifacts, rejected = [], []

    def verify(name: str, path: Path, description: str, buckets: list[int] | None, extras: dict):
        model = load_model(path)
        candidate = device_logits(model, dev, description=f"verify {path.name} on dev")
        check = compare(reference, candidate, recipe.export.atol, recipe.export.min_label_agreement, run.task)
        info(
            f"verify {path.name}: max |Δ{run.task.output_names[0]}| {check.max_abs_diff:.2e} (tolerance {check.atol:g}), "
            f"{check.agreement_name} {check.agreement:.4f} over {check.rows} dev rows"
        )
        entry = Artifact(name=name, task=run.task.name, format=path.suffix.lstrip("."), runtime=model.runtime,
                         path=run.layout.rel(run.layout.export / path.name), precision="fp32", compute="fp32",
                         verification=check, description=description, outputs=run.task.output_names,
                         buckets=buckets, extras=dict(extras))
        return check, entry

    with atomic_dir(run.layout.export) as tmp:
        inp = ExportInput(student, list(dev.features), recipe, tmp, output_names=run.task.output_names)
        for exporter in chosen:
            try:
                made = exporter.make(inp)
            except Exception as exc:
                if exporter.required:
                    raise
                rejected.append({"name": exporter.name, "reason": f"{exporter.failure}: {type(exc).__name__}: {first_line(exc)}"})
                continue
            check, entry = verify(exporter.name, made.path, made.description, made.buckets, made.extras)
            if check.passed:
                artifacts.append(entry)
                inp.made[exporter.name] = made.path
            elif exporter.required:
                raise StageFailed(
                    f"the ONNX export does not match PyTorch on dev: max |Δ{run.task.output_names[0]}| {check.max_abs_diff:.3g} "
                    f"(tolerance {check.atol:g}), {check.agreement_name} {check.agreement:.4f} "
                    f"(needs {check.min_agreement}); nothing was kept in {run.layout.export}"
                )
            else:
                made.path.unlink()
                rejected.append({"name": exporter.name, "reason": f"failed verification: {check.as_dict()}"})
        for r in rejected:
            info(f"[yellow]not shipped[/]: {r['name']}: {r['reason']}")
    return {"artifacts": [a.to_dict() for a in artifacts], "rejected": rejected, "input_names": list(dev.features)}
