"""Stage 6, benchmark: the task's metric for every model on test, then one latency matrix over all of them
(interleaved rounds, each model in its own process). The stage record holds every measurement; report.json,
report.md, bench.json and the plots are rendered from it (compress.run.view)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from compress import __version__
from compress.errors import UserError
from compress.bench.record import BenchResults, reference_cell
from compress.fsutil import dir_size, read_json


def _weights_bytes(directory: Path) -> int:
    return dir_size(directory, ("*.safetensors", "*.bin"))


class _Quality:
    """A model's quality on test: the task metric, or what the task's own evaluator measures (embeddings: fidelity,
    retrieval, the probe), through predict(encoded split) -> outputs."""

    def __init__(self, run):
        self.run, self.evaluator = run, run.task.quality(run)
        self.teacher_scored = None  # the teacher's (outputs, labels) on test: the other models' bootstrap pairs with it

    def __call__(self, predict, test, tokenizer, teacher: bool = False) -> dict:
        if self.evaluator is None:
            from compress.metrics import retained_interval

            outputs = predict(test)
            measured = {"quality": self.run.task.metric(outputs, test.labels)}
            if teacher:
                self.teacher_scored = (outputs, test.labels)
            elif self.teacher_scored is not None:
                interval = retained_interval(self.run.task.metric, (outputs, test.labels), self.teacher_scored)
                if interval is not None:
                    measured["retained_interval"] = [round(x, 4) for x in interval]
            return measured
        return self.evaluator.teacher(predict, tokenizer) if teacher else self.evaluator.score(predict, tokenizer)


def _torch_entry(model, directory: Path, test, label: str, quality: _Quality, tokenizer, teacher: bool = False) -> dict:
    from compress.bench.latency import architecture
    from compress.evaluate import predict_logits
    from compress.student import count_params

    return {
        "path": str(directory),
        "layers": model.config.num_hidden_layers,
        "hidden_size": model.config.hidden_size,
        "params": count_params(model),
        "size_bytes": _weights_bytes(directory),
        **quality(lambda enc: predict_logits(model, enc, description=f"{label} quality on test"), test, tokenizer, teacher),
        "arch": architecture(model.config),
        "runtime": "pytorch",
    }


def run(run, force: bool = False) -> dict:
    import torch

    from compress.bench import string_in as tokenizer_cost
    from compress.bench.env import environment
    from compress.progress import info
    from compress.bench.latency import architecture, runtime_job, time_jobs, torch_job
    from compress.export.verify import device_logits
    from targets.bench import best_peak, gemm_peak
    from compress.budget.report import bench_block as budget_block
    from targets.runtime import load_model

    recipe, quality = run.recipe, _Quality(run)
    finetune = run.stage_record("finetune", needed_by="bench")
    distill = run.stage_record("distill", needed_by="bench")
    run.stage_record("export", needed_by="bench")
    listed = [(a, "export") for a in run.artifacts("export")] + [(a, "quantize") for a in run.artifacts("quantize")]
    for art, stage in listed:  # before minutes of timing, not after
        if not art.file(run.out).is_file():
            raise UserError(f"artifact {art.file(run.out)} is missing: re-run `bert-compress {stage} --out {run.out} --force`")
    test = run.encode("test")
    student_test = run.encode("test", run.student_tokenizer())
    names = list(test.features)
    threads_before = torch.get_num_threads()
    b = recipe.bench
    try:
        teacher_path = finetune["teacher_path"]
        teacher = run.load_teacher("bench")
        teacher_entry = _torch_entry(teacher, Path(teacher_path), test, "teacher", quality, run.tokenizer, teacher=True)
        teacher_entry |= {"checkpoint": run.source.spec, "finetuned": finetune["finetuned"],
                          "dev_quality": finetune.get("dev_quality", finetune.get("dev_accuracy"))}
        jobs = [torch_job({"kind": "teacher", "path": teacher_path, "labels": run.data.labels, "task": run.task.name,
                           "pooling": getattr(teacher, "pooling_spec", None) and vars(teacher.pooling_spec)}, b,
                          teacher.config.vocab_size, "teacher", teacher_entry["arch"], names)]
        # the teacher stays loaded: the embedding task's reference rows export it
        student = run.load_student("bench")
        student_tokenizer = run.student_tokenizer()
        student_entry = _torch_entry(student, run.layout.student, student_test, "student", quality, student_tokenizer)
        student_entry |= {"teacher_layers": distill.get("teacher_layers", []), "dev_quality": distill.get("dev_quality", distill.get("dev_accuracy"))}
        vocab, arch = student.config.vocab_size, architecture(student.config)
        jobs.append(torch_job({"kind": "student", "path": str(run.layout.student), "task": run.task.name}, b, vocab,
                              "student", arch, names))
        from compress.student.kind import kind_of

        special_tokens = kind_of(student).special_tokens
        del student
        artifacts = []
        for art, _ in listed:
            path = art.file(run.out)
            if art.runtime == "pytorch":
                from compress.evaluate import predict_logits
                from compress.quantize import backend
                from compress.quantize.torchao_ptq import load

                q = art.quantization
                model = load(path, backend(q.backend).settings(**q.settings), run.layout.student)
                measured = quality(lambda enc: predict_logits(model, enc, batch_size=1, description=f"{art.name} quality on test"),  # noqa: B023 (called here)
                                   student_test, student_tokenizer)
                del model
                jobs.append(torch_job({"kind": "torchao", "path": str(path), "settings": q.settings,
                                       "student_dir": str(run.layout.student)}, b, vocab, art.name, arch, names))
            else:
                runtime = load_model(path)
                measured = quality(lambda enc: device_logits(runtime, enc, description=f"{art.name} quality on test"),  # noqa: B023 (called here)
                                   student_test, student_tokenizer)
                jobs.append(runtime_job(path, b, vocab, art.name, arch))
            artifacts.append(measured_entry(art, path.stat().st_size, measured, arch))
        # reference rows: the teacher in ONNX Runtime fp32; for a static student, model2vec's own distillation
        from compress.bench.references import reference_models

        references = []
        for ref in reference_models(run, teacher, run.layout.root / "cache" / "references"):
            enc = run.encode("test", ref.tokenizer)
            runtime = load_model(ref.path)
            measured = quality(lambda e: device_logits(runtime, e, description=f"{ref.name} quality on test"), enc,  # noqa: B023
                               ref.tokenizer)
            references.append({"name": ref.name, "format": "onnx", "runtime": "onnxruntime", "path": run.layout.rel(ref.path),
                               "description": ref.description, "size_bytes": ref.path.stat().st_size, **measured,
                               "precision": "fp32", "compute": "fp32", "reference": True})
            jobs.append(runtime_job(ref.path, b, ref.vocab_size, ref.name, teacher_entry["arch"] if "teacher" in ref.name else arch))
        del teacher
        gemm_before = gemm_peak(b.thread_counts()) if b.gemm_peak else None
        timed = time_jobs(jobs, b)
        for entry, measured in zip([teacher_entry, student_entry, *artifacts, *references], timed):
            entry |= measured
        gemm = best_peak(gemm_before, gemm_peak(b.thread_counts())) if b.gemm_peak else None
        roofline = rooflines(artifacts, reference_cell({"grid": vars(b.grid())})) if b.gemm_peak else {}
        string_in_skipped = tokenizer_cost.skip_reason(run, special_tokens)
        string_in = [] if string_in_skipped else tokenizer_cost.measure(run, artifacts, {"grid": vars(b.grid())}, b, vocab)
        if string_in_skipped:
            info(f"[yellow]bench[/]: no string-in timing: {string_in_skipped}")
    finally:
        torch.set_num_threads(threads_before)

    results = {
        "bert_compress_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": recipe.name,
        "quick": recipe.quick,
        "task": run.task.name,
        "metric": run.task.metric_name,
        "environment": environment(),
        "data": {"source": run.data.source, "labels": run.data.labels,
                 "rows": {s: len(run.data.split(s)) for s in ("train", "dev", "test")},
                 **({"evaluation": quality.evaluator.describe()} if quality.evaluator else {})},
        "bench": {"grid": vars(b.grid()), "timing": vars(b.timing()), "gemm_peak": gemm,
                  **({"roofline": roofline} if roofline else {}),
                  "command": f"bert-compress bench --out {run.out}"},
        "teacher": teacher_entry,
        "student": student_entry,
        "artifacts": artifacts,
        **({"references": references} if references else {}),
        "string_in": string_in,
        **({"string_in_skipped": string_in_skipped} if string_in_skipped else {}),
        **({"budget": budget} if (budget := budget_block(run.layout.budget, artifacts)) else {}),
    }
    return {"results": BenchResults.from_dict(results).to_dict()}  # the one typed record every reader loads


def rooflines(artifacts: list[dict], point: tuple[int, int]) -> dict[str, dict]:
    """artifact -> its own matrix products timed alone at the headline point (targets.bench.shape_gemm_ms), for the
    ONNX Runtime files (the runtime whose kernels the GEMM peak measures); one timing per architecture and compute."""
    import json

    from targets.roofline import shape_gemm_ms

    seq, threads = point
    done: dict[str, dict] = {}
    out = {}
    for a in artifacts:
        if a["runtime"] != "onnxruntime" or not a.get("arch"):
            continue
        key = json.dumps([a["arch"], a.get("compute", "fp32")], sort_keys=True)
        if key not in done:
            done[key] = shape_gemm_ms(a["arch"], seq, threads, a.get("compute", "fp32"))
        out[a["name"]] = done[key]
    return out


def measured_entry(art, size_bytes: int, quality: dict, arch: dict) -> dict:
    """What the bench stage measured of one artifact, beside what its Artifact record says (latency is added).
    quality: {"quality": the task metric on test, ...what the task's evaluator adds}."""
    v = art.verification
    return {"name": art.name, "format": art.format, "runtime": art.runtime, "path": art.path,
            "description": art.description, "size_bytes": size_bytes, **quality,
            "max_abs_diff": v.max_abs_diff, "agreement": v.agreement, "agreement_name": v.agreement_name,
            "verified_on": f"dev ({v.rows} rows)",
            "quantization": art.quantization.to_dict() if art.quantization else None,
            "precision": art.precision, "compute": art.compute, "arch": arch}


RESULT_KEYS = ("bert_compress_version", "created", "recipe", "quick", "task", "environment", "data", "bench", "teacher",
               "student", "artifacts", "references", "string_in", "budget")


def upgrade(run, record: dict) -> dict:
    """A bench record written before the view existed holds only its seconds: its measurements are in report.json.
    They become the record's results (precision and compute from the artifacts' records), the view is rendered
    from them, and the settings hash and run id stay, so no later stage is redone."""
    if "results" in record:
        return record
    report_path = run.layout.report_json
    if not report_path.is_file():
        return record
    report = read_json(report_path)
    results = {k: report[k] for k in RESULT_KEYS if k in report}
    typed = {a.name: a for a in run.artifacts("export", "quantize")}
    for entry in results.get("artifacts", []):
        art = typed.get(entry["name"])
        if art is not None:
            entry.setdefault("precision", art.precision)
            entry.setdefault("compute", art.compute)
    return record | {"results": BenchResults.from_dict(results).to_dict(), "outputs": {}}
