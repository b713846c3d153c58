"""`bert-compress candidates --out CANDS`: untrained students of many shapes, shipped the way the pipeline ships.

Each candidate is built from the teacher the way the distill stage builds a student (the recipe's vocabulary, ALBERT
factorized embeddings where the shape says so; truncated weights, since values do not change latency), exported and
quantized with the recipe's quantizer for the target runtime (ONNX Runtime: fused graph + dynamic int8; LiteRT:
bucketed .tflite + dynamic int8). CANDS/ holds candidates.json, models/ and the torch-free runner (runner/targets),
and CANDS.zip the same: copy the zip to the device and run `python -m targets profile CANDS.zip`.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from compress.budget.shapes import RUNTIME_BACKEND, CandidateGrid, Shape, grid_shapes, recipe_shape, shipped_recipes
from compress.errors import UserError, first_line
from compress.fsutil import atomic_dir, file_digest, write_json
from compress.progress import bar, info, muted
from targets.profile import CANDIDATES_FILE, CANDIDATES_FORMAT, SCHEMA_VERSION

@dataclass(frozen=True)
class Candidate:
    name: str
    kind: str
    """grid: a shape the budget may choose; recipe: a recipe we ship (a reference point)."""
    shape: Shape
    student: object
    """The StudentConfig it is built from."""


PROFILED = {"ort-dynamic": {"per_channel": True}}
"""Settings the archive times instead of the recipe's first ones, and a budget run then starts its quantizer at:
per-tensor ONNX Runtime int8 often fails the accuracy guard (the default student: label agreement 97.9%, per
channel 98.8%) and its per-channel fallback runs slower (issue 22's 3 ms budget: shipped per channel at 3.06 ms,
profiled per tensor at 2.55 ms; benchmarks/results/budget_issue22_epyc_zen4.json). Timing the per-channel file
makes the profile what ships."""


def quantizer_for(recipe, runtime: str) -> tuple[object, object]:
    """(backend, settings): the recipe's first quantize candidate for the runtime (else the backend's defaults),
    with PROFILED's settings."""
    from compress.quantize import parse_candidate

    if runtime not in RUNTIME_BACKEND:
        raise UserError(f"--runtime {runtime}: choose {' or '.join(RUNTIME_BACKEND)}")
    name = RUNTIME_BACKEND[runtime]
    raw = next((r for r in recipe.quantize.candidates if r["backend"] == name), {"backend": name})
    return parse_candidate(raw | PROFILED.get(name, {}))


def teacher_identity(run) -> dict:
    """What a profile must have been made for: the teacher's architecture and weights (not its path)."""
    from compress.teacher import teacher_identity as weights_digest

    c = run.source.config
    return {"checkpoint": run.source.spec,
            "architecture": {"model_type": c.model_type, "layers": c.num_hidden_layers, "hidden_size": c.hidden_size,
                             "heads": c.num_attention_heads, "intermediate_size": c.intermediate_size,
                             "vocab_size": c.vocab_size},
            "weights": weights_digest(run.source.location)}


def identity(run, runtime: str, backend, settings, vocab_size: int) -> dict:
    r = run.recipe
    return {"teacher": teacher_identity(run), "task": r.task, "runtime": runtime, "num_labels": len(run.data.labels),
            "quantizer": {"backend": backend.name, **settings.model_dump()}, "vocabulary": r.student.vocabulary,
            "vocab_size": vocab_size, "max_length": r.data.max_length}


def candidate_list(recipe, teacher_config, grid: CandidateGrid) -> list[Candidate]:
    base = recipe.student.model_copy(update={"init": "teacher"})
    out = [Candidate(s.name, "grid", s, base.model_copy(update=s.student_update())) for s in grid_shapes(grid, teacher_config)]
    if grid.recipes:
        for name, student in shipped_recipes(recipe.task, teacher_config).items():
            shape = recipe_shape(student, teacher_config)
            out.append(Candidate(f"recipe-{name}", "recipe", shape, student.model_copy(update={"init": "teacher"})))
    return out


class Sources:
    """The teacher as the student is built from it, per vocabulary (task: the rows the task's text uses)."""

    def __init__(self, run):
        self.run, self.cache = run, {}
        self.teacher = run.task.load_model(run.source.location, run.data.labels, run.source.spec, run.recipe)

    def get(self, vocabulary: str):
        if vocabulary not in self.cache:
            if vocabulary == "task":
                from compress import vocab as task_vocab

                task_vocab.check_prunable(self.run.tokenizer)
                keep = task_vocab.kept_ids(self.run.tokenizer, task_vocab.used_token_ids(self.run.tokenizer, self.run.data.train))
                self.cache[vocabulary] = (task_vocab.with_kept_rows(self.teacher, keep), len(keep))
            else:
                self.cache[vocabulary] = (self.teacher, self.teacher.config.vocab_size)
        return self.cache[vocabulary]


def build_file(student, input_names: list[str], recipe, runtime: str, backend, settings, work: Path, output_names) -> Path:
    """The student exported and quantized as the pipeline ships it for `runtime`; returns the quantized file."""
    from compress.export import exporters
    from compress.export.base import ExportInput, Made
    from compress.quantize.base import Context, Fp32File

    inp = ExportInput(student, input_names, recipe, work, output_names=output_names)
    source = backend.source  # the fp32 file it starts from: every fp32 file of that runtime is made, as export does
    fp32 = {}
    for exporter in exporters():
        if source is None or exporter.runtime != source.split("/")[0]:
            continue
        try:
            made = exporter.make(inp)
        except Exception:  # e.g. the fused graph: the pipeline ships the unfused one then, too
            if exporter.hands_on == source:
                raise
            continue
        inp.made[exporter.name] = made.path
        fp32[exporter.hands_on] = Fp32File(made.path, exporter.runtime, made.buckets, dict(made.extras))
    written = backend.quantize(settings, Context(fp32, None, work, work, recipe=recipe),
                               work / f"quantized{backend.artifact_suffix}")
    return written.path if isinstance(written, Made) else written


def make_candidates(recipe, out: Path, grid: CandidateGrid, runtime: str = "onnxruntime", force: bool = False,
                    command: str | None = None) -> dict:
    """Write OUT/ (candidates.json, models/, runner/) and OUT.zip; returns candidates.json's content."""
    import torch

    from compress.run.prepare import load_run
    from compress.student import build_student
    from compress.teacher import quiet_transformers

    out = Path(out)
    zip_path = out.with_name(out.name + ".zip")
    if (out.exists() and (not out.is_dir() or any(out.iterdir())) or zip_path.exists()) and not force:
        raise UserError(f"{out} (or {zip_path.name}) exists: pass --force to overwrite it, or choose another --out")
    if recipe.student.kind != "transformer":
        raise UserError("candidates are transformer students: the recipe's student is static (nothing to shape)")
    backend, settings = quantizer_for(recipe, runtime)
    if runtime == "litert":
        from compress.export.tflite import require_litert_torch

        require_litert_torch()
    quiet_transformers()
    run = load_run(recipe, out)
    cands = candidate_list(recipe, run.source.config, grid)
    sources = Sources(run)
    input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in run.tokenizer.model_input_names]
    head = run.task.labelled_outputs  # a classification head on top of the encoder (an embedding model has none)
    info(f"candidates: {len(cands)} students ({sum(c.kind == 'grid' for c in cands)} grid shapes, "
         f"{sum(c.kind == 'recipe' for c in cands)} shipped recipes) for {runtime} ({backend.name}); untrained: "
         "latency does not depend on the weights")
    entries, t0 = [], time.perf_counter()
    vocab_size = sources.get(recipe.student.vocabulary)[1]
    with atomic_dir(out) as tmp, bar("candidates", len(cands)) as advance:
        (tmp / "models").mkdir()
        for c in cands:
            src, vocab = sources.get(c.student.vocabulary)
            torch.manual_seed(recipe.seed)
            with tempfile.TemporaryDirectory(dir=tmp) as work, muted():
                try:
                    student, _, _ = build_student(src, c.student)
                    made = build_file(student, input_names, recipe, runtime, backend, settings, Path(work),
                                      run.task.output_names)
                except UserError:
                    raise
                except Exception as exc:
                    raise UserError(f"candidate {c.name} could not be built for {runtime}: {type(exc).__name__}: "
                                    f"{first_line(exc)}") from None
                dst = tmp / "models" / f"{c.name}{made.suffix}"
                shutil.move(str(made), dst)
            entries.append({"name": c.name, "kind": c.kind, "shape": c.shape.as_dict(), "file": f"models/{dst.name}",
                            "size_bytes": dst.stat().st_size, "sha256": file_digest(dst, None),
                            "vocabulary": c.student.vocabulary,
                            "arch": c.shape.arch(vocab, len(run.data.labels), head)})
            advance(status=c.name)
        meta = {"format": CANDIDATES_FORMAT, "schema_version": SCHEMA_VERSION,
                "identity": identity(run, runtime, backend, settings, vocab_size), "grid": grid.model_dump(),
                "recipe": recipe.name, "command": command, "candidates": entries}
        meta["digest"] = hashlib.sha256("".join(e["sha256"] for e in entries).encode()).hexdigest()[:16]
        write_json(tmp / CANDIDATES_FILE, meta)
        _copy_runner(tmp / "runner" / "targets")
    _zip(out, zip_path)
    info(f"candidates: {len(entries)} models in {time.perf_counter() - t0:.0f} s -> {out} and {zip_path.name}")
    return meta


def _copy_runner(dst: Path) -> None:
    import targets
    from targets.bundle import RUNNER_FILES

    dst.mkdir(parents=True)
    src = Path(targets.__file__).parent
    for name in RUNNER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)


def _zip(folder: Path, zip_path: Path) -> None:
    tmp = zip_path.with_name(f".tmp-{zip_path.name}")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(folder).as_posix())
    tmp.replace(zip_path)
