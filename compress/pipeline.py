"""The pipeline: teacher -> student -> distill -> export (+ verify) -> bench -> report.

Each stage reads its inputs from OUT and writes its outputs to OUT, so `run` is the stages in order and any
stage can be re-run alone. Everything the user gave is checked before OUT is touched; every output is
written under a temporary name and renamed, so an interrupted stage leaves nothing that looks finished.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from compress import __version__
from compress.data import TaskData, load_task_data
from compress.errors import UserError, first_line
from compress.fsutil import atomic_dir, dir_size, file_digest, read_json, settings_hash, write_json, write_text
from compress.progress import info
from compress.recipe import Recipe, build_recipe
from compress.teacher import (
    WEIGHT_FILES,
    TeacherSource,
    check_max_length,
    load_tokenizer,
    quiet_transformers,
    resolve_teacher,
)

STAGES = ("finetune", "distill", "export", "quantize", "bench", "bundle")
REPORT_SCHEMA_VERSION = 1


class StageFailed(UserError):
    """A stage ran but its result is not acceptable (e.g. an export that does not match PyTorch)."""

    exit_code = 1


@dataclass
class Run:
    recipe: Recipe
    out: Path
    source: TeacherSource
    data: TaskData
    resume: bool = False
    """continue: skip stages finished with the same settings, pick training up from its checkpoints"""
    command: str = "run"

    # ---- layout of OUT ---------------------------------------------------------------------------
    @property
    def teacher_dir(self) -> Path:
        return self.out / "teacher"

    @property
    def student_dir(self) -> Path:
        return self.out / "student"

    @property
    def export_dir(self) -> Path:
        return self.out / "export"

    @property
    def quantized_dir(self) -> Path:
        return self.out / "quantized"

    def stage_file(self, stage: str) -> Path:
        return self.out / "stages" / f"{stage}.json"

    def stage_record(self, stage: str, needed_by: str | None = None) -> dict | None:
        path = self.stage_file(stage)
        if path.is_file():
            return read_json(path)
        if needed_by:
            raise UserError(f"{needed_by} needs the {stage} stage: run `bert-compress {stage} --out {self.out}` first")
        return None

    def checkpoint_dir(self, stage: str) -> Path:
        return self.out / "checkpoints" / stage

    def checkpoint(self, stage: str, fit_name: str):
        """Where one training loop of `stage` saves its state; resumed only under --resume."""
        from compress.checkpoint import Checkpoint

        from compress import distributed

        size = distributed.world().size
        return Checkpoint(self.checkpoint_dir(stage) / f"{fit_name}.pt", settings_hash([stage_key(self, stage), fit_name]),
                          self.recipe.checkpoint_every, self.resume,
                          f"`bert-compress {self.command} --out {self.out} --resume" + (f" --nproc {size}`" if size > 1 else "`"))

    # ---- shared inputs ---------------------------------------------------------------------------
    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.source.location, self.source.spec, self.recipe.data.max_length, self.source.config.vocab_size)

    def student_tokenizer(self):
        """The student's own tokenizer once distilled (a pruned vocabulary has one); the teacher's before."""
        if (self.student_dir / "tokenizer_config.json").is_file():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(self.student_dir)
        return self.tokenizer

    def encode(self, split: str, tokenizer=None):
        from compress.data.batching import encode

        return encode(tokenizer or self.tokenizer, self.data.split(split), self.recipe.data.max_length)

    @cached_property
    def inputs_identity(self) -> dict:
        """The teacher's weights and all task data, hashed once per run (every stage key includes them)."""
        return {"teacher": _weights_identity(self.source), "data": self.data_fingerprint("train", "dev", "test")}

    def data_fingerprint(self, *splits: str) -> str:
        return settings_hash([[(e.text, e.text_pair, e.label) for e in self.data.split(s)] for s in splits] + [self.data.labels])


# ---- preparing OUT ------------------------------------------------------------------------------
def _check_writable(out: Path) -> None:
    """OUT, or the deepest folder above it that exists, must really take a new folder: os.access says yes for
    root on read-only mounts and on /proc, so a throw-away folder is made and removed (nothing stays)."""
    import tempfile

    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"cannot create {out}: {probe} is a file")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".bert-compress-probe-", dir=probe))
    except OSError as exc:
        raise UserError(f"cannot write to {probe} ({exc.strerror or first_line(exc)}): choose another --out "
                        "or fix its permissions") from None


def _reorder_labels(data: TaskData, order: list[str]) -> TaskData:
    """Use the label order of the teacher's existing head, so its outputs keep their meaning."""
    remap = {data.labels.index(lab): i for i, lab in enumerate(order)}
    from dataclasses import replace

    def fix(rows):
        return [replace(e, label=remap[e.label]) for e in rows]

    return replace(data, labels=list(order), train=fix(data.train), dev=fix(data.dev), test=fix(data.test))


def prepare(recipe: Recipe, out: Path, *, force: bool, whole_run: bool, resume: bool = False, command: str = "run",
            write: bool = True) -> Run:
    """Validate everything the user gave, then create OUT and save the resolved recipe there.

    write=False: load the same inputs without checking or touching OUT (the other processes under torchrun, once
    rank 0 has prepared it)."""
    out = Path(out)
    if not write:
        return _load_run(recipe, out, resume, command)
    _check_writable(out)
    saved = out / "recipe.yaml"
    if force and resume:
        raise UserError("--force redoes every stage and --resume continues them: pass one of the two")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a directory")
    if resume and not saved.is_file():
        raise UserError(f"nothing to resume in {out}: it holds no bert-compress run (no recipe.yaml); start one without --resume")
    if whole_run and out.is_dir() and any(out.iterdir()) and not force and not resume:
        raise UserError(f"{out} already exists and is not empty: pass --resume to continue it (stages with changed "
                        "settings are redone), --force to start over, or choose another --out")
    if not whole_run and saved.is_file() and not force and not resume:
        import yaml

        previous = build_recipe(yaml.safe_load(saved.read_text()), str(saved))
        if previous != recipe:
            raise UserError(f"{out} was made with other settings ({saved}): pass --resume to redo the stages they change, "
                            "or --force to redo this one")

    from compress import distributed

    distributed.check_batch_sizes(recipe, command, distributed.world().size)
    run = _load_run(recipe, out, resume, command)
    for note in run.data.notes:
        info(f"[yellow]note[/]: {note}")

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a folder made read-only between the check and now
        raise UserError(f"cannot create {out} ({exc.strerror or first_line(exc)}): choose another --out") from None
    if whole_run and force:
        # A forced run redoes every stage; the fine-tuned teacher stays as a cache keyed by its settings.
        for name in ("student", "export", "quantized", "stages", "checkpoints", "report.json", "report.md", "bench.json",
                     "plots", "bundle", "bundle.zip"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    write_text(saved, recipe.to_yaml())
    return run


def _load_run(recipe: Recipe, out: Path, resume: bool, command: str) -> Run:
    """Teacher, data and tokenizer, each checked (one clear error each); nothing is written."""
    pick_device(recipe.device)  # 'cuda' without a GPU is refused before OUT is touched
    source = resolve_teacher(recipe.teacher.checkpoint)
    check_max_length(source.config, source.spec, recipe.data.max_length)
    from compress.distill.plan import validate_plan

    validate_plan(source.config, recipe)
    data = load_task_data(recipe.data)
    head = source.head_labels()
    if head and sorted(head) == sorted(data.labels) and head != data.labels and recipe.data.labels is None:
        data = _reorder_labels(data, head)
    run = Run(recipe=recipe, out=out, source=source, data=data, resume=resume, command=command)
    _ = run.tokenizer  # a tokenizer that does not fit the weights is bad input too: fail before writing
    if recipe.student.vocabulary == "task":
        from compress.vocab import check_prunable

        check_prunable(run.tokenizer)
    return run


def prepare_all_ranks(recipe: Recipe, out: Path, **kw) -> Run:
    """prepare() in rank 0, then the others load the same inputs; one process: prepare() itself. An error in rank 0
    (printed there) ends every process with its exit code."""
    from compress import distributed

    world = distributed.world()
    if not world.distributed:
        return prepare(recipe, out, **kw)
    failure, run = None, None
    if world.is_main:
        try:
            run = prepare(recipe, out, **kw)
        except UserError as exc:
            failure = (str(exc), exc.exit_code)
            raise
        finally:
            distributed.broadcast(failure)
    else:
        failure = distributed.broadcast(None)
        if failure is not None:
            error = UserError(failure[0])
            error.exit_code = failure[1]
            raise error
        run = prepare(recipe, out, write=False, **kw)
    return run


def _require_absent(path: Path, force: bool, stage: str) -> None:
    if path.exists() and not force:
        raise UserError(f"{path} exists already: pass --force to redo the {stage} stage, --resume to keep it "
                        "when its settings are unchanged, or choose another --out")


# ---- stage 1: teacher ---------------------------------------------------------------------------
def _weights_identity(source: TeacherSource) -> dict:
    if not source.is_local:
        return {"hub_id": source.location}
    return {"path": str(Path(source.location).resolve()), "weights": _teacher_identity(source.location)}


def stage_finetune(run: Run, force: bool = False) -> dict:
    """Fine-tune the teacher on the task when it has no head for the task's labels; else use it as it is."""
    import torch

    from compress import distributed
    from compress.evaluate import model_inputs
    from compress.teacher import load_classifier
    from compress.training import fit

    recipe, t0 = run.recipe, time.perf_counter()
    head = run.source.head_labels()
    has_head = head is not None and head == run.data.labels
    mode = recipe.teacher.finetune
    if mode == "never" and not has_head:
        raise UserError(
            f"teacher {run.source.spec} has no classification head for labels {run.data.labels} "
            "and teacher.finetune is 'never': set it to 'auto'"
        )
    if mode == "never" or (mode == "auto" and has_head):
        record = {"finetuned": False, "teacher_path": run.source.location, "reason": "checkpoint has a head for the task's labels"}
        info(f"teacher: {run.source.spec} already classifies {run.data.labels}; no fine-tuning")
        if main_process():
            write_json(run.stage_file("finetune"), record | {"seconds": time.perf_counter() - t0})
        return record

    settings = {
        "teacher": _weights_identity(run.source),
        "train": recipe.teacher.model_dump(exclude={"checkpoint", "finetune"}),
        "seed": recipe.seed,
        "max_length": recipe.data.max_length,
        "data": run.data_fingerprint("train", "dev"),
        **({"precision": recipe.precision} if recipe.precision != "fp32" else {}),  # fp32 keeps earlier teachers valid
    }
    digest = settings_hash(settings)
    marker = run.teacher_dir / "bert_compress_stage.json"
    if marker.is_file() and read_json(marker).get("settings_hash") == digest:
        record = read_json(marker) | {"reused": True, "teacher_path": str(run.teacher_dir)}
        info(f"teacher: reusing the fine-tuned teacher in {run.teacher_dir} (same settings)")
        if main_process():
            write_json(run.stage_file("finetune"), record | {"seconds": time.perf_counter() - t0})
        return record

    device = pick_device(recipe.device)
    info(f"teacher: fine-tuning {run.source.spec} on {len(run.data.train)} training rows ({recipe.teacher.epochs} epochs, {device})")
    torch.manual_seed(recipe.seed)
    model = load_classifier(run.source.location, run.data.labels, run.source.spec).to(device)
    train, dev = run.encode("train"), run.encode("dev")

    def loss_fn(batch):
        loss = model(**model_inputs(batch), labels=batch["labels"]).loss
        return loss, {"ce": float(loss.detach())}

    result = fit(model, loss_fn, train, dev, recipe.teacher, recipe.seed, "fine-tune teacher",
                 checkpoint=run.checkpoint("finetune", "teacher"), precision=recipe.precision)
    model.to("cpu")
    record = {
        "finetuned": True,
        "teacher_path": str(run.teacher_dir),
        "source": run.source.spec,
        "settings_hash": digest,
        "dev_accuracy": result["best_dev_accuracy"],
        "best_epoch": result["best_epoch"],
        "history": result["history"],
        "train_seconds": time.perf_counter() - t0,
        "processes": distributed.world().size,
    }
    if main_process():
        with atomic_dir(run.teacher_dir) as tmp:
            model.save_pretrained(tmp)
            run.tokenizer.save_pretrained(tmp)
            write_json(tmp / "bert_compress_stage.json", record)
        write_json(run.stage_file("finetune"), record | {"seconds": time.perf_counter() - t0})
    return record


def teacher_location(run: Run, needed_by: str) -> str:
    return run.stage_record("finetune", needed_by=needed_by)["teacher_path"]


def load_teacher(run: Run, needed_by: str):
    from compress.teacher import load_classifier

    return load_classifier(teacher_location(run, needed_by), run.data.labels, run.source.spec)


# ---- stage 2+3: student and distillation --------------------------------------------------------
def pick_device(preference: str):
    """auto: a CUDA GPU when one is visible (under torchrun: the one of this process's local rank), else the CPU."""
    import torch

    from compress import distributed

    if preference == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is visible: use device 'auto' or 'cpu'")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", distributed.world().local_rank)


def main_process() -> bool:
    """Only the first process writes OUT (the others under torchrun compute the same record)."""
    from compress import distributed

    return distributed.world().is_main


def _teacher_identity(location: str) -> dict:
    """The weights' digests (not their path): a cache can be shared by runs whose teachers are byte-identical."""
    folder = Path(location)
    if not folder.is_dir():
        return {"hub_id": location}
    return {f: file_digest(folder / f) for f in WEIGHT_FILES if (folder / f).is_file()}


def _teacher_caches(run: Run, distiller, plan, datasets: dict) -> tuple[dict, dict]:
    """One teacher-output cache per distillation data set ('task', 'general'), built or reused; name -> cache,
    and what the stage record says about them."""
    from compress.data.batching import fingerprint
    from compress.distill.teacher_cache import estimate_bytes, open_or_build, plan_for

    cfg = run.recipe.distill.teacher_cache
    if cfg.mode == "off":
        return {}, {"mode": "off"}
    caches, record = {}, {"mode": cfg.mode}
    t_cfg = distiller.teacher.config
    teacher = _teacher_identity(teacher_location(run, "distill"))
    for name, enc in datasets.items():
        losses = [loss for stage_name, _, loss in plan if (stage_name == "general") == (name == "general")]
        what = plan_for(losses, distiller.layer_map, t_cfg.num_hidden_layers)
        size = estimate_bytes(enc, what, t_cfg.hidden_size, t_cfg.num_attention_heads, cfg.dtype)
        if cfg.mode == "auto" and size > cfg.max_gb * 1e9:
            info(f"[yellow]note[/]: no teacher cache for '{name}': it would take {size / 1e9:.1f} GB, over "
                 f"distill.teacher_cache.max_gb {cfg.max_gb:g}; the teacher runs every step")
            record[name] = {"skipped": f"estimated {size / 1e9:.1f} GB > max_gb {cfg.max_gb:g}"}
            continue
        shared = cfg.path is not None
        path = (Path(cfg.path) if shared else run.out / "cache" / "teacher") / name
        cache = open_or_build(path, distiller, enc, what, {"teacher": teacher, "data": fingerprint(enc)}, cfg.dtype,
                              shared, name)
        caches[name] = cache
        record[name] = {"path": str(path), "bytes": cache.meta["bytes"], "build_seconds": cache.meta["build_seconds"],
                        "holds": str(what), "dtype": cfg.dtype, "rows": len(enc)}
    return caches, record


def stage_distill(run: Run, force: bool = False) -> dict:
    """Build the student, then distil: optional general stage on unlabeled text, then the task stage(s)."""
    import torch

    from compress import distributed
    from compress.data.batching import encode
    from compress.data.unlabeled import load_unlabeled
    from compress.distill.distiller import Distiller
    from compress.distill.losses import CombinedLoss
    from compress.distill.mapping import build_layer_map
    from compress.albert import save_student
    from compress.distill.plan import stage_terms
    from compress import vocab as task_vocab
    from compress.student import build_student, count_params
    from compress.training import fit

    recipe, t0 = run.recipe, time.perf_counter()
    cfg = recipe.distill
    _require_absent(run.student_dir, force, "distill")
    device = pick_device(recipe.device)
    teacher = load_teacher(run, "distill")
    # Every stage and its loss, checked before the first step.
    plan = [(name, st, CombinedLoss(terms)) for name, st, terms in stage_terms(recipe)]
    general = {name: load_unlabeled(st.data, st.text_column, st.max_rows) for name, st, _ in plan if name == "general"}

    source, tokenizer, student_ids, vocab_record = teacher, run.tokenizer, None, {"vocabulary": "full"}
    if recipe.student.vocabulary == "task":
        texts = run.data.train + [e for rows in general.values() for e in rows]
        keep = task_vocab.kept_ids(run.tokenizer, task_vocab.used_token_ids(run.tokenizer, texts))
        tokenizer = task_vocab.pruned_tokenizer(run.tokenizer, keep)
        student_ids = task_vocab.id_map(teacher.config.vocab_size, keep, run.tokenizer.unk_token_id)
        source = task_vocab.with_kept_rows(teacher, keep)
        vocab_record = {"vocabulary": "task", "pieces": len(keep), "teacher_pieces": teacher.config.vocab_size,
                        "from": ["train"] + list(general)}
    torch.manual_seed(recipe.seed)
    student, layers, build_info = build_student(source, recipe.student)
    del source
    layer_map = build_layer_map(student.config.num_hidden_layers, teacher.config.num_hidden_layers, cfg.layer_map)
    distiller = Distiller(teacher, student, layer_map, cfg.projection, student_ids)
    for _, _, loss in plan:
        distiller.check(loss)
    info(
        f"student: {student.config.num_hidden_layers} layers × {student.config.hidden_size} "
        f"({student.config.num_attention_heads} heads, FFN {student.config.intermediate_size}), "
        f"{count_params(student) / 1e6:.1f}M parameters vs teacher {count_params(teacher) / 1e6:.1f}M; "
        f"init {recipe.student.init}" + (f" from teacher layers {layers}" if layers else "")
        + "".join(f"; {k} {v}" for k, v in build_info.items())
        + f"; layer map {layer_map}; {len(distiller.projections)} projection(s); training on {device}"
        + (f"; task vocabulary: {len(keep):,} of {teacher.config.vocab_size:,} word pieces" if student_ids is not None else "")
    )
    distiller.to(device)
    # batches carry teacher ids (the distiller maps them for a pruned student); dev is what the student will read
    train, dev = run.encode("train"), run.encode("dev", tokenizer)
    datasets = {"task": train} if any(name != "general" for name, _, _ in plan) else {}
    if general:
        datasets["general"] = encode(run.tokenizer, general["general"], recipe.data.max_length)
    caches, cache_record = _teacher_caches(run, distiller, plan, datasets)
    history = []
    for i, (name, stage, loss) in enumerate(plan):
        key = "general" if name == "general" else "task"
        data, cache = datasets[key], caches.get(key)
        info(f"distill stage '{name}' ({len(data)} rows): " + ", ".join(f"{s.name}×{w:g}" for s, w, _ in loss.terms)
             + ("; teacher outputs from the cache" if cache is not None else ""))
        result = fit(
            student,
            lambda batch, loss=loss, cache=cache: distiller.loss(batch, loss, cache),
            data,
            dev,
            cfg.train_config(stage),
            recipe.seed + i,
            f"distill:{name}",
            extra_params=list(distiller.projections.named_parameters()),
            select_best=i == len(plan) - 1,
            checkpoint=run.checkpoint("distill", f"{i}-{name}"),
            precision=recipe.precision,
        )
        history.append({"stage": name, **result})
    student.to("cpu")
    record = {
        "teacher_layers": layers,
        "architecture": student.config.model_type,
        "build": build_info | vocab_record,
        "layer_map": layer_map,
        "projections": {k: list(v.weight.shape) for k, v in distiller.projections.items()},
        "num_layers": student.config.num_hidden_layers,
        "dev_accuracy": history[-1]["best_dev_accuracy"],
        "best_epoch": history[-1]["best_epoch"],
        "stages": history,
        "teacher_cache": cache_record,
        "processes": distributed.world().size,
        "device": str(device),
        "precision": recipe.precision,
    }
    if not main_process():
        return record
    with atomic_dir(run.student_dir) as tmp:
        save_student(student, tmp)
        task_vocab.save_tokenizer(tokenizer, tmp)
        write_json(tmp / "bert_compress_student.json", {"teacher": run.source.spec, "teacher_layers": layers} | vocab_record)
        if student_ids is not None:
            write_json(tmp / task_vocab.KEPT_IDS_FILE, keep)
    if len(distiller.projections):
        # Training state only: the projections never become part of the student.
        tmp_state = run.stage_file("distill").with_name(".tmp-distill-projections.pt")
        tmp_state.parent.mkdir(parents=True, exist_ok=True)
        torch.save(distiller.projections.to("cpu").state_dict(), tmp_state)
        os.replace(tmp_state, run.stage_file("distill").with_name("distill-projections.pt"))
    write_json(run.stage_file("distill"), record | {"seconds": time.perf_counter() - t0})
    return record


def load_student(run: Run, needed_by: str):
    from compress.albert import load_student as load

    quiet_transformers()
    run.stage_record("distill", needed_by=needed_by)
    return load(run.student_dir)


# ---- stage 4: export and verification -----------------------------------------------------------
def stage_export(run: Run, force: bool = False) -> dict:
    """fp32 ONNX (portable), ONNX fused for ONNX Runtime, and bucketed TFLite; each verified on dev."""
    from compress.evaluate import predict_logits
    from compress.export.onnx import export_onnx
    from compress.export.ort_optimize import optimize_for_ort
    from compress.export.verify import compare, device_logits
    from compress.recipe import tflite_buckets
    from targets.runtime import load_model

    recipe, t0 = run.recipe, time.perf_counter()
    _require_absent(run.export_dir, force, "export")
    want_tflite = _tflite_wanted(recipe)
    student = load_student(run, "export")
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
        entry = {"name": name, "format": path.suffix.lstrip("."), "runtime": model.runtime, "path": f"export/{path.name}",
                 "description": description, "verification": check.as_dict(), **extra}
        return check, entry

    def keep_if_verified(check, entry, path: Path) -> None:
        if check.passed:
            artifacts.append(entry)
        else:
            path.unlink()
            rejected.append({"name": entry["name"], "reason": f"failed verification: {check.as_dict()}"})

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
    record = {"artifacts": artifacts, "rejected": rejected, "input_names": list(dev.features)}
    write_json(run.stage_file("export"), record | {"seconds": time.perf_counter() - t0})
    return record


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


# ---- stage 5: quantization, guarded by accuracy ---------------------------------------------------
MIN_CALIBRATION_ROWS = 16


def _calibration(run: Run, tokenizer):
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


def _qad_trainer(run: Run, tokenizer):
    """Quantization-aware distillation: distil a fake-quantized student with the last stage's losses."""
    import torch

    from compress.distill.distiller import Distiller
    from compress.distill.losses import CombinedLoss
    from compress.distill.mapping import build_layer_map
    from compress.distill.plan import stage_terms
    from compress.training import fit
    from compress.vocab import KEPT_IDS_FILE, id_map

    def train(student, epochs: int, lr: float | None) -> None:
        recipe = run.recipe
        teacher = load_teacher(run, "quantize")
        device = pick_device(recipe.device)
        name, stage, terms = stage_terms(recipe)[-1]
        layer_map = build_layer_map(student.config.num_hidden_layers, teacher.config.num_hidden_layers, recipe.distill.layer_map)
        kept = run.student_dir / KEPT_IDS_FILE
        ids = id_map(teacher.config.vocab_size, read_json(kept), run.tokenizer.unk_token_id) if kept.is_file() else None
        distiller = Distiller(teacher, student, layer_map, recipe.distill.projection, ids)
        saved = run.stage_file("distill").with_name("distill-projections.pt")
        if len(distiller.projections) and saved.is_file():
            distiller.projections.load_state_dict(torch.load(saved))
        loss = CombinedLoss(terms)
        distiller.check(loss)
        distiller.to(device)
        stage = stage.model_copy(update={"epochs": epochs, **({"lr": lr} if lr else {})})
        info(f"quantization-aware distillation: {epochs} epoch(s) of stage '{name}' losses on a fake-quantized student")
        result = fit(student, lambda batch: distiller.loss(batch, loss), run.encode("train"), run.encode("dev", tokenizer),
                     recipe.distill.train_config(stage), recipe.seed + 100, "distill:qad",
                     extra_params=list(distiller.projections.named_parameters()), select_best=True)
        student.to("cpu")
        return {"stage_losses": name, **result}

    return train


def stage_quantize(run: Run, force: bool = False) -> dict:
    """Every candidate quantizer in order, each artifact checked on dev against the fp32 student."""
    import tempfile

    from compress.evaluate import accuracy, predict_logits
    from compress.export.verify import device_logits
    from compress.quantize import Context, backend as find_backend
    from compress.quantize.guard import Measured, run_guard
    from targets.runtime import load_model

    recipe, t0 = run.recipe, time.perf_counter()
    cfg = recipe.quantize
    _require_absent(run.quantized_dir, force, "quantize")
    export = run.stage_record("export", needed_by="quantize")
    if not cfg.candidates:
        shutil.rmtree(run.quantized_dir, ignore_errors=True)  # a forced re-run without candidates ships no int8
        record = {"artifacts": [], "rejected": [], "skipped": "quantize.candidates is empty"}
        write_json(run.stage_file("quantize"), record | {"seconds": time.perf_counter() - t0})
        return record
    tokenizer = run.student_tokenizer()
    calibration = _calibration(run, tokenizer)
    dev = run.encode("dev", tokenizer)
    student = load_student(run, "quantize")
    reference = predict_logits(student, dev, description="fp32 student logits on dev")
    fp32_accuracy = accuracy(reference, dev.labels)
    del student
    paths = {a["name"]: run.out / a["path"] for a in export["artifacts"]}
    plain = paths.get("student-onnx-fp32")
    if plain is None or not plain.is_file():
        raise UserError(f"quantize needs the verified fp32 ONNX export: re-run `bert-compress export --out {run.out} --force`")
    fused = paths.get("student-onnx-fp32-ort-opt")
    tflite = paths.get("student-tflite-fp32")
    tflite = tflite if tflite is not None and tflite.is_file() else None
    candidates, skipped = cfg.candidates, []
    if tflite is None:  # LiteRT quantizers start from the fp32 .tflite: without one they have nothing to do
        skipped = [c for c in candidates if find_backend(c["backend"]).runtime == "litert"]
        candidates = [c for c in candidates if c not in skipped]
        if skipped:
            info(f"[yellow]note[/]: skipping {', '.join(c['backend'] for c in skipped)}: there is no fp32 .tflite export")
        if not candidates:
            raise UserError("quantize: every candidate is a LiteRT quantizer and there is no .tflite export: "
                            "install the tflite extra (pip install 'bert-compress[tflite]') and re-run export")

    def evaluate(backend, settings, path: Path) -> Measured:
        if backend.runtime == "pytorch":
            from compress.quantize.torchao_ptq import load

            # one text per call, as it is deployed (torchao scales activations per call too)
            logits = predict_logits(load(path, settings, run.student_dir), dev, batch_size=1,
                                    description=f"evaluate {path.name} on dev")
        else:
            logits = device_logits(load_model(path), dev, description=f"evaluate {path.name} on dev")
        return Measured(accuracy(logits, dev.labels), float((logits.argmax(-1) == reference.argmax(-1)).mean()),
                        float(abs(logits - reference).max()))

    info(f"quantize: {len(candidates)} candidate(s), tolerance {cfg.max_accuracy_drop:g} dev accuracy points; "
         f"{len(calibration)} calibration rows")
    with atomic_dir(run.quantized_dir) as tmp, tempfile.TemporaryDirectory(dir=tmp.parent) as work:
        ctx = Context(plain, fused if fused is not None and fused.is_file() else None, calibration, run.student_dir,
                      Path(work), _qad_trainer(run, tokenizer), tflite=tflite)
        attempts = run_guard(candidates, ctx, tmp, evaluate, fp32_accuracy, cfg.max_accuracy_drop,
                             cfg.min_label_agreement, cfg.fallbacks)
        if not any(a.measured for a in attempts):  # every backend failed to run: nothing was quantized at all
            raise UserError(f"quantize: no backend could quantize this model ({attempts[0].reason}); "
                            "the fp32 artifacts are unchanged")
    artifacts, rejected = [], []
    buckets = next((a["buckets"] for a in export["artifacts"] if a["name"] == "student-tflite-fp32"), None)
    from compress.bench.env import machine_identity

    measured_on = machine_identity()
    for a in attempts:
        int4 = a.settings.get("scheme") == "int4-weight" or a.settings.get("weight_bits") == "int4"
        name = f"student-{'int4' if int4 else 'int8'}-{a.name}"
        q = {"backend": a.backend, "settings": a.settings, "fallback": a.fallback, "reason": a.reason,
             "seconds": round(a.seconds, 1), "measured_on": measured_on, **a.extra}
        if a.measured:
            q |= {"dev_accuracy": a.measured.accuracy, "fp32_dev_accuracy": fp32_accuracy,
                  "drop_points": round(100 * (fp32_accuracy - a.measured.accuracy), 3)}
        if not a.passed:
            rejected.append({"name": name, "reason": a.reason, "quantization": q})
            continue
        m = a.measured
        runtime = find_backend(a.backend).runtime
        artifacts.append({
            "name": name,
            "format": "pytorch" if runtime == "pytorch" else a.path.suffix.lstrip("."),
            "runtime": runtime,
            "path": f"quantized/{a.path.name}",
            **({"buckets": buckets} if runtime == "litert" else {}),
            "description": f"{a.backend}: " + ", ".join(f"{k}={v}" for k, v in a.settings.items()),
            "verification": {"max_abs_diff": m.max_abs_diff, "label_agreement": m.label_agreement, "rows": len(dev),
                             "passed": True, "atol": None, "min_label_agreement": cfg.min_label_agreement},
            "quantization": q,
        })
    if not artifacts:
        info("[yellow]quantize[/]: no candidate kept the accuracy within the tolerance; only fp32 artifacts ship")
    record = {"artifacts": artifacts, "rejected": rejected, "fp32_dev_accuracy": fp32_accuracy,
              "tolerance_points": cfg.max_accuracy_drop, "measured_on": measured_on,
              "skipped": [{"backend": c["backend"], "reason": "no fp32 .tflite export"} for c in skipped]}
    write_json(run.stage_file("quantize"), record | {"seconds": time.perf_counter() - t0})
    return record


# ---- stage 6: benchmark and report --------------------------------------------------------------
def _weights_bytes(directory: Path) -> int:
    return dir_size(directory, ("*.safetensors", "*.bin"))


def _torch_entry(model, directory: Path, test, label: str) -> dict:
    from compress.bench.latency import architecture
    from compress.evaluate import accuracy, predict_logits
    from compress.student import count_params

    return {
        "path": str(directory),
        "layers": model.config.num_hidden_layers,
        "hidden_size": model.config.hidden_size,
        "params": count_params(model),
        "size_bytes": _weights_bytes(directory),
        "accuracy": accuracy(predict_logits(model, test, description=f"{label} accuracy on test"), test.labels),
        "arch": architecture(model.config),
        "runtime": "pytorch",
    }


def stage_bench(run: Run, force: bool = False) -> dict:
    """Accuracy of every model on test, then one latency matrix over all of them (interleaved rounds)."""
    import torch

    from compress.bench.env import environment
    from compress.bench.latency import architecture, runtime_job, time_jobs, torch_job
    from compress.bench.plots import write_plots
    from compress.bench.report import render_markdown, summary
    from compress.bench.results import bench_document
    from compress.evaluate import accuracy
    from compress.export.verify import device_logits
    from targets.bench import best_peak, gemm_peak, write_results
    from targets.runtime import load_model

    recipe, t0 = run.recipe, time.perf_counter()
    finetune = run.stage_record("finetune", needed_by="bench")
    distill = run.stage_record("distill", needed_by="bench")
    export = run.stage_record("export", needed_by="bench")
    quantized = run.stage_record("quantize") or {"artifacts": [], "rejected": []}
    listed = [(a, "export") for a in export["artifacts"]] + [(a, "quantize") for a in quantized["artifacts"]]
    for art, stage in listed:  # before minutes of timing, not after
        if not (run.out / art["path"]).is_file():
            raise UserError(f"artifact {run.out / art['path']} is missing: re-run `bert-compress {stage} --out {run.out} --force`")
    test = run.encode("test")
    student_test = run.encode("test", run.student_tokenizer())
    names = list(test.features)
    threads_before = torch.get_num_threads()
    b = recipe.bench
    try:
        teacher_path = finetune["teacher_path"]
        teacher = load_teacher(run, "bench")
        teacher_entry = _torch_entry(teacher, Path(teacher_path), test, "teacher")
        teacher_entry |= {"checkpoint": run.source.spec, "finetuned": finetune["finetuned"],
                          "dev_accuracy": finetune.get("dev_accuracy")}
        jobs = [torch_job({"kind": "teacher", "path": teacher_path, "labels": run.data.labels}, b,
                          teacher.config.vocab_size, "teacher", teacher_entry["arch"], names)]
        del teacher
        student = load_student(run, "bench")
        student_entry = _torch_entry(student, run.student_dir, student_test, "student")
        student_entry |= {"teacher_layers": distill["teacher_layers"], "dev_accuracy": distill["dev_accuracy"]}
        vocab, arch = student.config.vocab_size, architecture(student.config)
        jobs.append(torch_job({"kind": "student", "path": str(run.student_dir)}, b, vocab, "student", arch, names))
        del student
        artifacts = []
        for art, stage in listed:
            path = run.out / art["path"]
            if art["runtime"] == "pytorch":
                from compress.evaluate import predict_logits
                from compress.quantize import backend
                from compress.quantize.torchao_ptq import load

                q = art["quantization"]
                model = load(path, backend(q["backend"]).settings(**q["settings"]), run.student_dir)
                logits = predict_logits(model, student_test, batch_size=1, description=f"{art['name']} accuracy on test")
                del model
                jobs.append(torch_job({"kind": "torchao", "path": str(path), "settings": q["settings"],
                                       "student_dir": str(run.student_dir)}, b, vocab, art["name"], arch, names))
            else:
                logits = device_logits(load_model(path), student_test, description=f"{art['name']} accuracy on test")
                jobs.append(runtime_job(path, b, vocab, art["name"], arch))
            ver = art["verification"]
            artifacts.append({
                "name": art["name"], "format": art["format"], "runtime": art["runtime"], "path": art["path"],
                "description": art.get("description", ""),
                "size_bytes": path.stat().st_size,
                "accuracy": accuracy(logits, student_test.labels),
                "max_abs_diff": ver["max_abs_diff"], "label_agreement": ver["label_agreement"],
                "verified_on": f"dev ({ver['rows']} rows)",
                "quantization": art.get("quantization"),
                "arch": arch,
            })
        gemm_before = gemm_peak(b.thread_counts()) if b.gemm_peak else None
        timed = time_jobs(jobs, b)
        for entry, measured in zip([teacher_entry, student_entry, *artifacts], timed):
            entry |= measured
        gemm = best_peak(gemm_before, gemm_peak(b.thread_counts())) if b.gemm_peak else None
    finally:
        torch.set_num_threads(threads_before)

    stage_seconds = {s: run.stage_record(s)["seconds"] for s in ("finetune", "distill", "export", "quantize") if run.stage_record(s)}
    stage_seconds["bench"] = time.perf_counter() - t0
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "bert_compress_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": recipe.name,
        "quick": recipe.quick,
        "environment": environment(),
        "data": {"source": run.data.source, "labels": run.data.labels,
                 "rows": {s: len(run.data.split(s)) for s in ("train", "dev", "test")}},
        "bench": {"grid": vars(b.grid()), "timing": vars(b.timing()), "gemm_peak": gemm,
                  "command": f"bert-compress bench --out {run.out}"},
        "teacher": teacher_entry,
        "student": student_entry,
        "artifacts": artifacts,
        "rejected_artifacts": export.get("rejected", []) + quantized.get("rejected", []),
        "stage_seconds": {k: round(v, 1) for k, v in stage_seconds.items()},
    }
    report["summary"] = summary(report)
    doc = bench_document(report)
    write_results(doc, run.out / "bench.json")  # the same schema as a device's `python -m targets bench`
    report["plots"] = [p.relative_to(run.out).as_posix() for p in write_plots([doc], run.out / "plots")]
    write_json(run.out / "report.json", report)
    write_text(run.out / "report.md", render_markdown(report))
    write_json(run.stage_file("bench"), {"seconds": stage_seconds["bench"]})
    return report


def stage_bundle(run: Run, force: bool = False) -> dict:
    """The app bundle: chosen model files, tokenizer, labels, metadata, README, runner; checked through the runner."""
    from compress.bundle import write_bundle

    from compress.bench.report import render_markdown

    t0 = time.perf_counter()
    record = write_bundle(run, force)
    seconds = time.perf_counter() - t0
    write_json(run.stage_file("bundle"), record | {"seconds": seconds})
    report = read_json(run.out / "report.json")  # the report names what was bundled and how it checked out
    report["bundle"] = {k: record[k] for k in ("zip_bytes", "models", "rejected", "checked_on")} | {"path": "bundle/", "zip": "bundle.zip"}
    bench_json = run.out / "bench.json"
    if bench_json.is_file():  # device results name the bundled models: mark them as the shipped ones
        shipped = {m["artifact"] for m in record["models"]}
        doc = read_json(bench_json)
        for m in doc["models"]:
            m["shipped"] = m["name"] in shipped
        write_json(bench_json, doc)
    report["stage_seconds"]["bundle"] = round(seconds, 1)
    write_json(run.out / "report.json", report)
    write_text(run.out / "report.md", render_markdown(report))
    return record


STAGE_FUNCS = {"finetune": stage_finetune, "distill": stage_distill, "export": stage_export, "quantize": stage_quantize,
               "bench": stage_bench, "bundle": stage_bundle}


# ---- stage bookkeeping: settings hashes, output digests, skipping finished stages ----------------------
# the recipe sections each stage reads, on top of those of the stages before it
STAGE_SECTIONS = {"finetune": ("teacher", "data", "seed", "precision"), "distill": ("student", "distill", "device"), "export": ("export",),
                  "quantize": ("quantize",), "bench": ("bench",), "bundle": ("bundle",)}
# what each stage leaves in OUT; files later stages rewrite (report.json, bench.json) are checked for presence only
STAGE_OUTPUTS = {"finetune": ("teacher",), "distill": ("student",), "export": ("export",), "quantize": ("quantized",),
                 "bench": ("report.json?", "bench.json?"), "bundle": ("bundle.zip",)}


def stage_key(run: Run, stage: str) -> str:
    """Hash of everything a stage's result depends on: its recipe sections and those of the stages before it,
    the teacher's weights, the task data, and which run of each earlier stage made its inputs (a redone
    earlier stage makes the later ones redo too)."""
    upto = STAGES[: STAGES.index(stage) + 1]
    sections = [name for st in upto for name in STAGE_SECTIONS[st]]
    settings = {name: getattr(run.recipe, name) for name in sections}
    settings = {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v for k, v in settings.items()}
    earlier = {st: (run.stage_record(st) or {}).get("run_id") for st in upto[:-1]}
    return settings_hash({"settings": settings, **run.inputs_identity, "earlier_runs": earlier})


def _stage_outputs(run: Run, stage: str) -> dict[str, str | None]:
    """relative path -> SHA-256 of every output file (None: checked for presence only)."""
    found = {}
    for spec in STAGE_OUTPUTS[stage]:
        name, presence_only = spec.rstrip("?"), spec.endswith("?")
        path = run.out / name
        if stage == "finetune" and not (run.stage_record("finetune") or {}).get("finetuned"):
            continue  # the checkpoint was used as it is: the teacher identity covers it
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path] if path.is_file() else []
        for f in files:
            found[str(f.relative_to(run.out))] = None if presence_only else file_digest(f)
    return found


def _outputs_intact(run: Run, outputs: dict[str, str | None]) -> bool:
    for rel, digest in outputs.items():
        path = run.out / rel
        if not path.is_file() or (digest is not None and file_digest(path) != digest):
            return False
    return True


def run_stage(run: Run, stage: str, force: bool = False) -> dict:
    """One stage, with the bookkeeping: under --resume a stage finished with the same settings and intact
    outputs is skipped, any other is redone (its training resumed from its checkpoints). The stage record then
    gets the settings hash and the digests of what the stage wrote; its checkpoints are removed."""
    import uuid

    key = stage_key(run, stage)
    if run.resume:
        record = run.stage_record(stage)
        if record and record.get("settings_hash") == key and _outputs_intact(run, record.get("outputs", {})):
            info(f"{stage}: finished earlier with the same settings and inputs: skipped")
            return record
        _check_checkpoints(run.checkpoint_dir(stage))  # a damaged one is reported now, not after loading the models
    from compress import distributed

    STAGE_FUNCS[stage](run, force=force or run.resume)
    if main_process():
        record = run.stage_record(stage)
        record |= {"settings_hash": key, "run_id": uuid.uuid4().hex, "outputs": _stage_outputs(run, stage)}
        write_json(run.stage_file(stage), record)
        shutil.rmtree(run.checkpoint_dir(stage), ignore_errors=True)
        if run.checkpoint_dir(stage).parent.is_dir() and not any(run.checkpoint_dir(stage).parent.iterdir()):
            run.checkpoint_dir(stage).parent.rmdir()
    distributed.barrier()  # the next stage, in every process, reads what rank 0 wrote
    return run.stage_record(stage)


def _check_checkpoints(directory: Path) -> None:
    from compress.checkpoint import Checkpoint

    for path in sorted(directory.glob("*.pt")) if directory.is_dir() else []:
        Checkpoint(path, key="").read()


def run_all(run: Run, force: bool) -> dict | None:
    """Every stage in order. Under torchrun the training stages run in every process; then the other processes
    leave and rank 0 exports, quantizes, benchmarks and bundles alone (None in the others)."""
    from compress import distributed

    t0 = time.perf_counter()
    for name in STAGES:
        if name == "export" and distributed.world().distributed:
            main = distributed.world().is_main
            distributed.shutdown()
            if not main:
                return None
        run_stage(run, name, force=force)
    report = read_json(run.out / "report.json")
    info(f"done in {time.perf_counter() - t0:.0f} s: {run.out / 'report.md'}")
    return report
