"""Stage 7, the app bundles: one folder and one zip per platform under OUT/bundle/, each holding exactly what that
platform's app needs, its model run on the dev split from raw text with the platform's own library where that
library runs here (compress.platforms: pi, android-litert, android-ort, ios-litert, ios-ort, web).

The candidates and their speeds come from the bench stage's record; what each file is, from its Artifact record.
Everything is built in a temporary folder that replaces OUT/bundle/ only when every platform is done, so a failure
leaves the previous bundles (and the trained student) as they were.
"""

from __future__ import annotations

import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from compress import __version__
from compress.bench.record import BenchResults
from compress.errors import UserError
from compress.fsutil import atomic_dir
from compress.platforms import platforms
from compress.platforms.base import BundleInput, PlatformBundle
from compress.platforms.choice import choose_models
from compress.progress import info
from compress.student.kind import kind_of


def run(run, force: bool = False) -> dict:
    from compress.bench.env import machine_identity
    from compress.evaluate import predict_logits
    from compress.quantize.numerics import feeds_of

    bundle_dir = run.layout.bundle
    for path in (bundle_dir, run.layout.legacy_bundle_zip):
        if path.exists() and not force:
            raise UserError(f"{path} exists already: pass --force to redo the bundle stage, or choose another --out")
    recorded = (run.stage_record("bench", needed_by="bundle") or {}).get("results")
    if recorded is None:
        raise UserError(f"bundle needs the bench stage's results: run `bert-compress bench --out {run.out} --force` first")
    results = BenchResults.from_dict(recorded)
    teacher, student_row = results.teacher, results.student
    export = run.stage_record("export", needed_by="bundle")
    candidates = choose_models(results, run.recipe.bundle.artifacts)
    dev_rows = run.data.split("dev")
    pairs = [e.text_pair for e in dev_rows] if dev_rows and dev_rows[0].text_pair is not None else None
    student = run.load_student("bundle")
    # fp32 files must match as the export did; quantized ones as the quantization guard asked, on this machine
    dev = run.encode("dev", run.student_tokenizer())
    reference = predict_logits(student, dev, description="student outputs on dev")
    meta = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": {"name": run.task.name, "outputs": list(run.task.output_names), "postprocess": run.task.postprocess},
        "metric": run.task.metric_name,  # what every test_quality below is
        "labels": run.data.labels,
        "max_length": run.recipe.data.max_length,
        **run.task.bundle_metadata(student, run.layout.student),
        # test_quality: the task's metric on test (accuracy, entity F1, fidelity)
        "teacher": {"checkpoint": run.source.spec, "test_quality": teacher.quality, "layers": teacher.get("layers"),
                    "hidden_size": teacher.get("hidden_size"), "size_bytes": teacher.size_bytes},
        "student": {"layers": student_row.get("layers"), "hidden_size": student_row.get("hidden_size"),
                    "params": student_row.get("params"), "test_quality": student_row.quality,
                    "architecture": student_row.get("arch")},
        "recipe": run.recipe.name,
        "versions": _versions(),
        "checked_on": machine_identity(),
    }
    inp = BundleInput(
        task=run.task, out=run.out, results=results, typed={a.name: a for a in run.artifacts("export", "quantize")},
        candidates=candidates, texts=[e.text for e in dev_rows], pairs=pairs,
        # as the task's metric reads them (a tag per token for a token classifier); none for a task without labels
        labels=dev.labels if run.task.has_labels else np.array([], dtype=np.int64), reference=reference,
        label_names=run.data.labels, tokenizer_dir=run.layout.student,
        input_names=export["input_names"], max_length=run.recipe.data.max_length, meta=meta, student=student,
        kind=kind_of(student), atol=run.recipe.export.atol, min_agreement=run.recipe.quantize.min_label_agreement,
        ort_format=run.recipe.export.ort_format,
        # the guard measured int8 under emulated aarch64: a platform's re-made int8 file is measured there too
        emulate=bool(((run.stage_record("quantize") or {}).get("instruction_sets") or {}).get("emulated")),
        dev_ids=feeds_of(dev))

    built: list[PlatformBundle] = []
    with atomic_dir(bundle_dir) as tmp:
        for platform in platforms():
            folder = tmp / platform.name
            folder.mkdir()
            info(f"bundle: [bold]{platform.name}[/] ({platform.title})")
            made = platform.build(inp, folder)
            made.instruction_sets = list(platform.instruction_sets)
            if made.skipped:
                info(f"[yellow]bundle {platform.name}: skipped[/]: {made.skipped}")
                shutil.rmtree(folder)
                built.append(made)
                continue
            for extra in run.task.bundle_files(run.layout.student):
                shutil.copy2(extra, folder / extra.name)
            inp.built[platform.name] = (folder, made)
            made.path = run.layout.rel(run.layout.platform_bundle(platform.name)) + "/"
            made.files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
            zip_path = tmp / f"{platform.name}.zip"
            with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        zf.write(path, Path(platform.name) / path.relative_to(folder))
            made.zip, made.zip_bytes = run.layout.rel(run.layout.platform_zip(platform.name)), zip_path.stat().st_size
            info(f"bundle {platform.name}: {made.path} and {made.zip} ({made.zip_bytes / 1e6:.1f} MB)")
            built.append(made)
    run.layout.legacy_bundle_zip.unlink(missing_ok=True)  # the one zip of earlier versions
    pi = next(b for b in built if b.platform == "pi")
    return {"bundle": run.layout.rel(bundle_dir) + "/", "checked_on": meta["checked_on"],
            "platforms": [b.to_dict() for b in built],
            # the pi bundle's models (what the device benchmarks and `python -m targets` run)
            "models": pi.details["models"], "rejected": pi.rejected, "zip": pi.zip, "zip_bytes": pi.zip_bytes}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"bert_compress": __version__}
    for pkg in ("onnxruntime", "onnxruntime-extensions", "ai-edge-litert", "litert-torch", "ai-edge-quantizer",
                "mediapipe", "onnx", "torch", "transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
