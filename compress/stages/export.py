"""Stage 4, export: fp32 ONNX (portable), ONNX fused for ONNX Runtime, and bucketed TFLite; each verified on dev
the way a device runs it (one text per call) against the PyTorch student. Only verified files are kept."""

from __future__ import annotations

from pathlib import Path

from compress.artifacts import Artifact
from compress.errors import StageFailed, first_line
from compress.fsutil import atomic_dir
from compress.progress import info
from compress.recipe import Recipe
from compress.stages.common import require_absent


def run(run, force: bool = False) -> dict:
    from compress.evaluate import predict_logits
    from compress.export.onnx import export_onnx
    from compress.export.ort_optimize import optimize_for_ort
    from compress.export.verify import compare, device_logits
    from compress.recipe import tflite_buckets
    from targets.runtime import load_model

    recipe = run.recipe
    require_absent(run.export_dir, force, "export")
    want_tflite = _tflite_wanted(recipe)
    student = run.load_student("export")
    dev = run.encode("dev", run.student_tokenizer())
    reference = predict_logits(student, dev, description="student logits on dev")
    artifacts, rejected = [], []

    def verify(name: str, path: Path, description: str, **extra):
        model = load_model(path)
        candidate = device_logits(model, dev, description=f"verify {path.name} on dev")
        check = compare(reference, candidate, recipe.export.atol, recipe.export.min_label_agreement)
        info(
            f"verify {path.name}: max |Δlogit| {check.max_abs_diff:.2e} (tolerance {check.atol:g}), "
            f"label agreement {check.label_agreement:.4f} over {check.rows} dev rows"
        )
        entry = Artifact(name=name, task=run.task.name, format=path.suffix.lstrip("."), runtime=model.runtime,
                         path=run.layout.rel(run.export_dir / path.name), precision="fp32", compute="fp32",
                         verification=check, description=description,
                         outputs=run.task.output_names, **extra)
        return check, entry

    def keep_if_verified(check, entry, path: Path) -> None:
        if check.passed:
            artifacts.append(entry)
        else:
            path.unlink()
            rejected.append({"name": entry.name, "reason": f"failed verification: {check.as_dict()}"})

    with atomic_dir(run.export_dir) as tmp:
        info("export: ONNX fp32 (dynamic batch and sequence axes)")
        path = export_onnx(student, list(dev.features), tmp / "model.onnx", recipe.export.opset)
        check, entry = verify("student-onnx-fp32", path, "portable ONNX, standard ops only")
        if not check.passed:
            raise StageFailed(
                f"the ONNX export does not match PyTorch on dev: max |Δlogit| {check.max_abs_diff:.3g} "
                f"(tolerance {check.atol:g}), label agreement {check.label_agreement:.4f} "
                f"(needs {check.min_label_agreement}); nothing was kept in {run.export_dir}"
            )
        artifacts.append(entry)

        info("export: ONNX Runtime transformer fusions (Attention, BiasGelu; ONNX Runtime only)")
        opt_path = tmp / "model.ort-opt.onnx"
        try:
            fused = optimize_for_ort(path, opt_path, student.config)
        except Exception as exc:  # the optimizer is best-effort: an unfused graph is still a valid artifact
            rejected.append({"name": "student-onnx-fp32-ort-opt", "reason": f"optimizer failed: {exc}"})
        else:
            check, entry = verify("student-onnx-fp32-ort-opt", opt_path, "fused for ONNX Runtime: " +
                                  ", ".join(f"{k}×{v}" for k, v in fused.items()), fused_ops=fused)
            keep_if_verified(check, entry, opt_path)

        if want_tflite:
            from compress.export.tflite import export_tflite

            buckets = tflite_buckets(recipe.export, recipe.data.max_length)
            info(f"export: TFLite fp32 via litert-torch, one signature per sequence bucket {buckets} (batch 1, int32 inputs)")
            tfl = tmp / "model.tflite"
            try:
                export_tflite(student, list(dev.features), tfl, buckets)
            except Exception as exc:  # litert-torch cannot lower every model: the ONNX artifacts still ship
                rejected.append({"name": "student-tflite-fp32",
                                 "reason": f"litert-torch conversion failed: {type(exc).__name__}: {first_line(exc)}"})
            else:
                check, entry = verify("student-tflite-fp32", tfl, "LiteRT fp32, signatures " +
                                      ", ".join(f"seq_{b}" for b in buckets), buckets=buckets)
                keep_if_verified(check, entry, tfl)
        for r in rejected:
            info(f"[yellow]not shipped[/]: {r['name']}: {r['reason']}")
    return {"artifacts": [a.to_dict() for a in artifacts], "rejected": rejected, "input_names": list(dev.features)}


def _tflite_wanted(recipe: Recipe) -> bool:
    """export.tflite: on needs litert-torch (one line and exit 2 before anything runs); auto uses it when there."""
    from compress.export.tflite import litert_torch_available, require_litert_torch

    if recipe.export.tflite == "off":
        return False
    if recipe.export.tflite == "on":
        require_litert_torch()
        return True
    if not litert_torch_available():
        info("[yellow]note[/]: no TFLite export: litert-torch is not installed (pip install 'bert-compress[tflite]')")
        return False
    return True
