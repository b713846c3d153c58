"""`bert-compress run --budget-ms MS [--budget-mb MB] [--device-profile FILE]`: the student that fits the device.

1. The profile (a device's, or this machine's, made on the spot and cached) is checked against this run: the same
   teacher (architecture and weights), task and a runtime the pipeline ships.
2. A cost model (compress.budget.latency_model) is fitted to it; its error on shapes held out of the fit is recorded.
3. Each grid shape's expected latency at the budget's length is the higher of its measured p50 and the model's
   prediction (a noisy cell or a poor fit both make it look slower, never faster); it fits with 5% headroom
   (HEADROOM); size is its file's bytes.
4. Among the shapes within budget, the quality prior (compress.budget.quality) picks the one expected to distil best,
   never less in any dimension than a shipped recipe that also fits;
   the recipe's student takes its shape and the run goes on as usual. OUT/budget.json keeps the whole table.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from compress.budget import quality
from compress.budget.latency_model import LatencyModel, fit, held_out_error, points
from compress.budget.report import device_label
from compress.budget.shapes import CandidateGrid, Shape
from compress.errors import UserError
from compress.progress import info

BUDGET_FILE = "budget.json"
HEADROOM = 0.05
"""A shape fits when its expected latency × (1 + HEADROOM) is within the budget: a p50 moves by a few percent between
runs of the same model on one machine (benchmarks/README.md#repeatability), and the trained student must still fit."""


@dataclass
class Row:
    name: str
    kind: str
    shape: Shape
    size_bytes: int
    predicted_ms: float
    measured_ms: float | None
    expected_ms: float
    meets_latency: bool
    meets_size: bool

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "shape": self.shape.as_dict(), "size_bytes": self.size_bytes,
                "predicted_ms": round(self.predicted_ms, 4), "measured_ms": self.measured_ms,
                "expected_ms": round(self.expected_ms, 4), "meets_latency": self.meets_latency,
                "meets_size": self.meets_size, "quality_score": round(quality.score(self.shape), 4),
                "encoder_params": self.shape.encoder_params}


@dataclass
class BudgetPlan:
    budget_ms: float
    budget_mb: float | None
    seq_len: int
    threads: int
    runtime: str
    profile_path: str
    profile_device: dict
    model: LatencyModel
    held_out: dict
    rows: list[Row]
    chosen: Row
    recipe: object
    """the run's recipe with the chosen student shape"""
    notes: list[str] = field(default_factory=list)
    local: dict | None = None
    """this machine's own prediction for the chosen shape when the profile is another device's"""

    def record(self) -> dict:
        return {"budget_ms": self.budget_ms, "budget_mb": self.budget_mb, "seq_len": self.seq_len, "batch": 1,
                "threads": self.threads, "runtime": self.runtime, "profile": self.profile_path,
                "profile_device": self.profile_device, "latency_model": self.model.as_dict(),
                "held_out_error": {k: v for k, v in self.held_out.items() if k != "cells"},
                "held_out_cells": self.held_out.get("cells", []), "expected_latency": "max(measured p50, predicted)",
                "headroom": HEADROOM,
                "chosen": self.chosen.as_dict(), "candidates": [r.as_dict() for r in self.rows],
                "recipes_within_budget": [r.name for r in self.rows if r.kind == "recipe" and r.meets_latency and r.meets_size],
                "this_machine": self.local, "notes": self.notes}


def check_identity(profile: dict, run, path: str, size_budget: bool) -> list[str]:
    """UserError (one line) for a profile of another teacher, task or runtime; notes for what only moves sizes."""
    from compress.budget.candidates import teacher_identity
    from compress.budget.shapes import RUNTIME_BACKEND

    ident = profile["identity"]
    ours = teacher_identity(run)
    theirs = ident.get("teacher") or {}
    if theirs.get("architecture") != ours["architecture"] or (theirs.get("weights") and theirs.get("weights") != ours["weights"]):
        raise UserError(f"device profile {path} was made for teacher {theirs.get('checkpoint')} "
                        f"({json.dumps(theirs.get('architecture'))}), not this run's {ours['checkpoint']}: make candidates "
                        "for this teacher (`bert-compress candidates --teacher ...`) and profile them")
    if ident.get("task") != run.recipe.task:
        raise UserError(f"device profile {path} was made for the {ident.get('task')} task, not {run.recipe.task}: make "
                        f"candidates with `--task {run.recipe.task}` and profile them")
    if ident.get("runtime") not in RUNTIME_BACKEND:
        raise UserError(f"device profile {path} times runtime {ident.get('runtime')}, which the pipeline does not ship "
                        f"({', '.join(RUNTIME_BACKEND)}): make candidates with one of them")
    notes = []
    if ident.get("vocabulary") != run.recipe.student.vocabulary:
        msg = (f"the profile's candidates use the {ident.get('vocabulary')} vocabulary ({ident.get('vocab_size')} pieces), "
               f"this recipe the {run.recipe.student.vocabulary} one")
        if size_budget:
            raise UserError(f"device profile {path}: {msg}, so their sizes are not this student's: make candidates with "
                            "this recipe (`bert-compress candidates --recipe ...`)")
        notes.append(msg + ": latency is the same, sizes differ")
    return notes


def build_rows(profile: dict, model: LatencyModel, seq: int, budget_ms: float, budget_mb: float | None) -> list[Row]:
    rows = []
    for r in profile["candidates"]:
        pred = model.predict(r["arch"], seq)
        cell = r["latency"].get(str(seq))
        measured = float(cell["p50_ms"]) if cell else None
        expected = max(pred, measured) if measured is not None else pred
        size = int(r["size_bytes"])
        rows.append(Row(r["name"], r.get("kind", "grid"), Shape.from_dict(r["shape"]), size, pred, measured, expected,
                        expected * (1 + HEADROOM) <= budget_ms, budget_mb is None or size <= budget_mb * 1e6))
    return rows


def choose(rows: list[Row], budget_ms: float, budget_mb: float | None, seq: int, where: str) -> Row:
    grid = [r for r in rows if r.kind == "grid"]
    fits = [r for r in grid if r.meets_latency and r.meets_size]
    if not fits:
        fastest = min(grid, key=lambda r: r.expected_ms)
        smallest = min(grid, key=lambda r: r.size_bytes)
        what = f"{budget_ms:g} ms at seq {seq}" + (f" and {budget_mb:g} MB" if budget_mb else "")
        raise UserError(f"no candidate student meets {what} on {where}: the fastest, {fastest.name}, takes "
                        f"{fastest.expected_ms:.3g} ms, the smallest, {smallest.name}, is {smallest.size_bytes / 1e6:.2f} MB; "
                        "raise the budget or profile a grid of smaller shapes (`bert-compress candidates --layers ... --hidden ...`)")
    refs = [r.shape for r in rows if r.kind == "recipe" and r.meets_latency and r.meets_size]
    pick = quality.best([r.shape for r in fits], refs)
    return next(r for r in fits if r.shape == pick)


def plan_budget(recipe, run, budget_ms: float, budget_mb: float | None, profile_path: str | None, seq: int | None,
                cache: Path | None = None) -> BudgetPlan:
    from targets.profile import ProfileError, load_profile

    if not budget_ms > 0:
        raise UserError(f"--budget-ms {budget_ms:g}: give a latency above 0 ms")
    if budget_mb is not None and not budget_mb > 0:
        raise UserError(f"--budget-mb {budget_mb:g}: give a size above 0 MB")
    if recipe.student.kind != "transformer":
        raise UserError("--budget-ms shapes a transformer student; this recipe's student is static")
    local = None
    if profile_path is None:
        profile_path = str(local_profile(recipe, run, cache or default_cache()))
    try:
        profile = load_profile(profile_path)
    except ProfileError as exc:
        raise UserError(str(exc)) from None
    notes = check_identity(profile, run, profile_path, budget_mb is not None)
    seqs = [int(s) for s in profile["seq_lens"]]
    seq = seq or (recipe.data.max_length if recipe.data.max_length in seqs else max(seqs))
    if not 1 <= seq <= recipe.data.max_length:
        raise UserError(f"--budget-seq {seq}: give a length from 1 to the recipe's max length {recipe.data.max_length}")
    if seq not in seqs:
        notes.append(f"seq {seq} was not profiled ({seqs}): its latencies are the cost model's predictions")
    model = fit(points(profile))
    held = held_out_error(profile)
    where = device_label(profile["device"])
    rows = build_rows(profile, model, seq, budget_ms, budget_mb)
    chosen = choose(rows, budget_ms, budget_mb, seq, where)
    from compress.recipe import build_recipe

    data = recipe.model_dump()
    data["student"] = recipe.student.model_copy(update=chosen.shape.student_update()).model_dump()
    # the bench stage measures the trained student where the budget holds (its length, its threads)
    data["bench"]["seq_lens"] = sorted(set(recipe.bench.seq_lens) | {seq})
    if recipe.bench.threads != "auto":
        data["bench"]["threads"] = sorted(set(recipe.bench.threads) | {int(profile["threads"])})
    data["quantize"]["candidates"] = profiled_quantizer(recipe.quantize.candidates, profile["identity"].get("quantizer"))
    notes += losses_for_width(data["distill"], chosen.shape.hidden, run.source.config.hidden_size)
    new = build_recipe(data, "the budget's student")
    if not _same_machine(profile["device"]):
        local = _this_machine(recipe, run, chosen, seq, cache or default_cache(), profile["threads"])
    info(f"budget: {budget_ms:g} ms at seq {seq}, {profile['threads']} thread(s)"
         + (f", {budget_mb:g} MB" if budget_mb else "") + f" on {where}: {sum(r.meets_latency and r.meets_size for r in rows if r.kind == 'grid')} "
         f"of {sum(r.kind == 'grid' for r in rows)} shapes fit; chose {chosen.name} (expected {chosen.expected_ms:.3g} ms, "
         f"{chosen.size_bytes / 1e6:.2f} MB); cost model error on held-out shapes: median "
         f"{100 * held.get('median', float('nan')):.1f}%")
    return BudgetPlan(budget_ms, budget_mb, seq, int(profile["threads"]), profile["identity"]["runtime"], profile_path,
                      profile["device"], model, held, rows, chosen, new, notes, local)


def losses_for_width(distill: dict, student_hidden: int, teacher_hidden: int) -> list[str]:
    """A budget may choose a student narrower than the teacher: hidden_cosine, which compares equal widths, becomes
    tinybert_hidden (MSE through the distiller's projections) at its weight, in every stage. Returns the notes."""
    if student_hidden == teacher_hidden:
        return []
    changed = False
    for losses in [distill.get("losses") or {}] + [s.get("losses") or {} for s in distill.get("stages") or []]:
        if "hidden_cosine" in losses:
            weight = losses.pop("hidden_cosine").get("weight", 1.0)
            losses.setdefault("tinybert_hidden", {"weight": weight})
            changed = True
    if not changed:
        return []
    if distill.get("projection") == "none":
        distill["projection"] = "per_layer"
    return [f"hidden_cosine compares equal widths and the budget's student is {student_hidden} wide (the teacher "
            f"{teacher_hidden}): tinybert_hidden, through projections, takes its place"]


def profiled_quantizer(candidates: list[dict], profiled: dict | None) -> list[dict]:
    """The recipe's quantize candidates with the first one of the profiled backend set to the profiled settings, so the
    guard starts at what the device timed (its fallbacks still follow)."""
    out = [dict(c) for c in candidates]
    if profiled:
        i = next((i for i, c in enumerate(out) if c.get("backend") == profiled.get("backend")), None)
        if i is None:
            out.insert(0, dict(profiled))
        else:
            out[i] = out[i] | profiled
    return out


# ---- this machine's own profile (no --device-profile, or for the report's "predicted here") -------------------
def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bert-compress" / "profiles"


def _machine_key() -> dict:
    from targets.env import environment

    env = environment()
    return {"cpu": env.get("cpu"), "flags": env.get("simd_flags") or env.get("flags"), "board": env.get("board")}


def _same_machine(device: dict) -> bool:
    me = _machine_key()
    return not device.get("emulated") and device.get("cpu") == me["cpu"] and device.get("board") == me["board"]


def local_profile(recipe, run, cache: Path, threads: int = 1, seq_lens: tuple[int, ...] | None = None) -> Path:
    """This machine's profile of the default grid for this teacher, task and vocabulary (ONNX Runtime), made once
    and cached by what it depends on."""
    from compress.budget.candidates import make_candidates, teacher_identity
    from targets.env import environment
    from targets.profile import Candidates, PROFILE_TIMING, profile, profile_document, write_profile

    seq_lens = list(seq_lens or sorted({32, 64, recipe.data.max_length}))
    key_src = {"teacher": teacher_identity(run), "task": recipe.task, "vocabulary": recipe.student.vocabulary,
               "data": recipe.data.model_dump(), "quantize": recipe.quantize.candidates, "machine": _machine_key(),
               "threads": threads, "seq_lens": seq_lens, "grid": CandidateGrid().model_dump()}
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = cache / f"profile-{key}.json"
    if path.is_file():
        info(f"budget: this machine's profile from the cache ({path})")
        return path
    info("budget: no --device-profile: profiling this machine (once; cached in "
         f"{cache}): candidates first, then their timings")
    cache.mkdir(parents=True, exist_ok=True)
    cands_dir = cache / f"candidates-{key}"
    make_candidates(recipe, cands_dir, CandidateGrid(), "onnxruntime", force=True)
    cands = Candidates.load(cands_dir)
    rows = profile(cands, seq_lens, threads)
    doc = profile_document(cands, rows, seq_lens, threads, environment() | {"name": None, "emulated": None},
                           "bert-compress run --budget-ms (this machine, on the spot)", PROFILE_TIMING)
    write_profile(doc, path)
    return path


def _this_machine(recipe, run, chosen: Row, seq: int, cache: Path, threads: int) -> dict | None:
    """The chosen shape's latency predicted from this machine's own (cached) profile, for the report."""
    from targets.profile import load_profile

    try:
        p = load_profile(local_profile(recipe, run, cache, threads))
    except Exception as exc:  # the report then says so; the budget's choice does not depend on it
        return {"note": f"no profile of this machine: {type(exc).__name__}: {exc}"}
    m = fit(points(p))
    arch = next((r["arch"] for r in p["candidates"] if r["name"] == chosen.name), None)
    if arch is None:
        arch = chosen.shape.arch(int(p["identity"]["vocab_size"]), int(p["identity"]["num_labels"]),
                                 run.task.labelled_outputs)
    return {"predicted_ms": round(m.predict(arch, seq), 4), "profile": str(cache), "device": device_label(p["device"])}


def write_plan(plan: BudgetPlan, out: Path) -> Path:
    from compress.fsutil import write_json

    path = Path(out) / BUDGET_FILE
    write_json(path, plan.record())
    return path
