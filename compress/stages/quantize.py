"""Stage 5, quantization: every candidate quantizer in the recipe's order, each artifact measured on dev the way a
device runs it and kept only while the task's dev metric stays within the tolerance of the fp32 student's."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from compress.artifacts import Artifact, Quantization, Verification
from compress.distributed import pick_device
from compress.errors import UserError
from compress.fsutil import atomic_dir
from compress.progress import info
from compress.stages.common import require_absent

MIN_CALIBRATION_ROWS = 16


def calibration(run, tokenizer):
    """The calibration rows static quantizers read, encoded with the student's tokenizer."""
    from compress.data.batching import encode
    from compress.data.unlabeled import load_unlabeled

    cfg = run.recipe.quantize
    if cfg.calibration_data == "train":
        import random

        rows = list(run.data.train)
        random.Random(run.recipe.seed).shuffle(rows)
        where = "the train split"
    else:
        rows = load_unlabeled(cfg.calibration_data)
        where = cfg.calibration_data
    rows = rows[: cfg.calibration_rows]
    if len(rows) < MIN_CALIBRATION_ROWS:
        raise UserError(
            f"quantize: calibration data {where} has {len(rows)} rows; static ranges need at least "
            f"{MIN_CALIBRATION_ROWS} (and {cfg.calibration_rows} are asked for): give more text"
        )
    return encode(tokenizer, rows, run.recipe.data.max_length)


def qad_trainer(run, tokenizer):
    """Quantization-aware distillation: distil a fake-quantized student with the last stage's losses."""
    from compress.distill.losses import CombinedLoss
    from compress.distill.plan import stage_terms
    from compress.training import fit

    def train(student, epochs: int, lr: float | None) -> None:
        recipe = run.recipe
        teacher = run.load_teacher("quantize")
        device = pick_device(recipe.device)
        name, stage, terms = stage_terms(recipe)[-1]
        loss = CombinedLoss(terms)
        distiller = run.distiller(teacher, student, [loss])  # as the distill stage built it, its projections loaded
        distiller.to(device)
        stage = stage.model_copy(update={"epochs": epochs, **({"lr": lr} if lr else {})})
        info(f"quantization-aware distillation: {epochs} epoch(s) of stage '{name}' losses on a fake-quantized student")
        result = fit(student, lambda batch: distiller.loss(batch, loss), run.encode("train"), run.eval_split("dev", tokenizer),
                     recipe.distill.train_config(stage), recipe.seed + 100, "distill:qad",
                     extra_params=list(distiller.projections.named_parameters()), select_best=True,
                     metric=run.task.metric)
        student.to("cpu")
        return {"stage_losses": name, **result}

    return train


def run(run, force: bool = False) -> dict:
    import tempfile

    from compress.bench.env import machine_identity
    from compress.evaluate import predict_logits
    from compress.export.verify import device_logits
    from compress.export import fp32_files, provider
    from compress.quantize import Context, backend as find_backend
    from compress.quantize.guard import Measured, run_guard
    from compress.quantize.numerics import confident_agreement, emulated_numerics
    from compress.token_classification.metrics import max_abs_diff
    from targets.runtime import load_model

    recipe, metric = run.recipe, run.task.metric
    cfg = recipe.quantize
    require_absent(run.layout.quantized, force, "quantize")
    run.stage_record("export", needed_by="quantize")
    if not cfg.candidates:
        shutil.rmtree(run.layout.quantized, ignore_errors=True)  # a forced re-run without candidates ships no int8
        return {"artifacts": [], "rejected": [], "skipped": "quantize.candidates is empty"}
    tokenizer = run.student_tokenizer()
    calibration_rows = calibration(run, tokenizer)
    dev = run.eval_split("dev", tokenizer)
    student = run.load_student("quantize")
    reference = predict_logits(student, dev, description="fp32 student logits on dev")
    fp32_quality = metric(reference, dev.labels)
    del student
    # each backend starts from the fp32 file of a runtime (what an exporter hands on), or from the student itself;
    # a backend whose file the export did not write (the format is off, its package missing) has nothing to do
    fp32 = fp32_files(run.artifacts("export"), run.out)
    candidates, skipped = [], []
    for c in cfg.candidates:
        source = find_backend(c["backend"]).source
        if source is None or source in fp32:
            candidates.append(c)
            continue
        exporter = provider(source)
        what = exporter.what if exporter is not None and exporter.what else f"fp32 {source}"
        if exporter is not None and exporter.required:
            raise UserError(f"quantize needs the verified {what} export: re-run `bert-compress export --out {run.out} --force`")
        info(f"[yellow]note[/]: skipping {c['backend']}: there is no {what} export")
        skipped.append(c | {"_reason": f"no {what} export",
                            "_install": exporter.install if exporter is not None else ""})
    if not candidates:
        raise UserError("quantize: every candidate needs an export that is missing ("
                        + "; ".join(f"{c['backend']}: {c['_reason']}" for c in skipped) + "): "
                        + (", ".join(sorted({c['_install'] for c in skipped if c['_install']})) or "enable the format")
                        + ", and re-run export")

    def judge(logits, emulated_rows: list[int] | None = None) -> Measured:
        """The file's outputs on dev against the fp32 student's. `emulated_rows`: the texts run under emulation (the
        others hold the student's outputs: labels cannot flip there, numerics.EmulatedNumerics), over which a vector
        model's verdict and the int8 error are taken."""
        if not run.task.labelled_outputs and emulated_rows is not None:  # vectors: no margins, the sample alone
            ref, out = reference[emulated_rows], logits[emulated_rows]
            labels = dev.labels[emulated_rows] if len(dev.labels) == len(reference) else dev.labels  # teacher vectors
            return Measured(metric(out, labels), run.task.agreement(ref, out), max_abs_diff(ref, out))
        confident = confident_agreement(reference, logits, emulated_rows) if run.task.labelled_outputs else None
        return Measured(metric(logits, dev.labels), run.task.agreement(reference, logits), max_abs_diff(reference, logits),
                        confident, logits if emulated_rows is None else None)

    emulated, not_emulated = emulated_numerics(cfg.instruction_sets, dev, reference, run.task.labelled_outputs)

    def evaluate(backend, settings, path: Path) -> Measured:
        if backend.runtime == "pytorch":
            from compress.quantize.torchao_ptq import load

            # one text per call, as it is deployed (torchao scales activations per call too)
            logits = predict_logits(load(path, settings, run.layout.student), dev, batch_size=1,
                                    description=f"evaluate {path.name} on dev")
        else:
            logits = device_logits(load_model(path), dev, description=f"evaluate {path.name} on dev")
        return judge(logits)

    info(f"quantize: {len(candidates)} candidate(s), tolerance {cfg.max_accuracy_drop:g} dev {run.task.metric_name} points; "
         f"{len(calibration_rows)} calibration rows")
    with atomic_dir(run.layout.quantized) as tmp, tempfile.TemporaryDirectory(dir=tmp.parent) as work:
        ctx = Context(fp32, calibration_rows, run.layout.student, Path(work), qad_trainer(run, tokenizer), recipe=recipe)
        try:
            attempts = run_guard(candidates, ctx, tmp, evaluate, fp32_quality, cfg.max_accuracy_drop,
                                 cfg.min_label_agreement, cfg.fallbacks, run.task.metric_name, run.task.agreement_name,
                                 emulated, judge)
        finally:
            if emulated is not None:
                emulated.close()
        if not any(a.measured for a in attempts):  # every backend failed to run: nothing was quantized at all
            raise UserError(f"quantize: no backend could quantize this model ({attempts[0].reason}); "
                            "the fp32 artifacts are unchanged")
    artifacts, rejected = [], []
    measured_on = machine_identity()
    for a in attempts:
        q = Quantization.from_dict({"backend": a.backend, "settings": a.settings, "fallback": a.fallback, "reason": a.reason,
                                    "seconds": round(a.seconds, 1), "measured_on": measured_on, **a.extra,
                                    "decisions": a.decisions, "passed_on": a.passed_on})
        if a.measured:
            q = replace(q, dev_quality=a.measured.quality, fp32_dev_quality=fp32_quality,
                        drop_points=round(100 * (fp32_quality - a.measured.quality), 3))
        name = f"student-{'int4' if q.is_int4 else 'int8'}-{a.name}"
        if not a.passed:
            rejected.append({"name": name, "reason": a.reason, "quantization": q.to_dict()})
            continue
        m = a.measured
        backend = find_backend(a.backend)
        runtime, source = backend.runtime, fp32.get(backend.source)
        precision = q.precision()
        # what the quantizer said of its file, else what it inherits from the fp32 file it started from
        buckets = a.made.buckets if a.made is not None else (source.buckets if source is not None else None)
        artifacts.append(Artifact(
            name=name, task=run.task.name, format="pytorch" if runtime == "pytorch" else a.path.suffix.lstrip("."),
            runtime=runtime, path=run.layout.rel(run.layout.quantized / a.path.name), precision=precision.label,
            compute=precision.compute,
            verification=Verification(m.max_abs_diff, m.agreement, len(dev), True, None, cfg.min_label_agreement,
                                      run.task.agreement_name),
            description=f"{a.backend}: " + ", ".join(f"{k}={v}" for k, v in a.settings.items()),
            quantization=q, buckets=buckets, extras=dict(a.made.extras) if a.made is not None else {},
            outputs=run.task.output_names))
    if not artifacts:
        info(f"[yellow]quantize[/]: no candidate kept the dev {run.task.metric_name} within the tolerance; only fp32 "
             "artifacts ship")
    return {"artifacts": [a.to_dict() for a in artifacts], "rejected": rejected, "fp32_dev_quality": fp32_quality,
            "metric": run.task.metric_name, "tolerance_points": cfg.max_accuracy_drop, "measured_on": measured_on,
            "instruction_sets": {"asked": list(cfg.instruction_sets), "emulated": emulated is not None,
                                 "seconds": round(emulated.seconds, 1) if emulated is not None else 0.0,
                                 **({"not_emulated": not_emulated} if not_emulated else {})},
            "skipped": [{"backend": c["backend"], "reason": c["_reason"]} for c in skipped]}
