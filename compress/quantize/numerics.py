"""Where an int8 file's numerics are measured: this machine, and the instruction sets the bundles run on.

int8 outputs depend on the CPU's kernels (AVX2 saturates where AVX-512 VNNI and AMX do not; an aarch64 core with or
without the dot-product instructions takes other MLAS / XNNPACK paths, and its fp32 GELU, softmax and layer norm
round differently). A phone or a Pi runs aarch64, so the quantization guard measures each candidate file there too:
the bundle's own runner (`targets.outputs`, numpy + the model's runtime) under qemu-user with a named core per
instruction-set level (compress.bench.arm64 prepares the aarch64 Python and wheels, once, cached), on the dev split,
one text per call; the outputs are compared with the fp32 student here. A platform names the instruction sets its
bundle must pass on (compress.platforms.base.Platform.instruction_sets).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.errors import UserError, first_line
from compress.progress import info


@dataclass(frozen=True)
class InstructionSet:
    name: str
    """what the records and the report call it"""
    title: str
    core: str | None = None
    """the qemu core that emulates it (compress.bench.arm64.CPUS); None: this machine, natively"""

    @property
    def emulated(self) -> bool:
        return self.core is not None


HOST = InstructionSet("host", "this machine (the desktop / server runner)")
INSTRUCTION_SETS = {s.name: s for s in (
    HOST,
    InstructionSet("aarch64", "aarch64 NEON, no dot-product (Cortex-A72: Raspberry Pi 4, older phones)", "cortex-a72"),
    InstructionSet("aarch64-dotprod", "aarch64 with dot-product (Cortex-A76: Raspberry Pi 5, phones since 2018)",
                   "cortex-a76"),
)}
ARM = tuple(s for s in INSTRUCTION_SETS.values() if s.emulated)


SAFETY = 1.5
"""Rows are emulated while their fp32 margin is within SAFETY × twice the largest int8 error seen (see measure)."""
SAMPLE_ROWS = 32
"""Rows drawn at random beside the near-ties: what the file's error is on aarch64 away from them."""
VECTOR_ROWS = 256
"""Rows a vector model (no labels, no margins) is measured on: a seeded sample, the mean cosine taken over it."""


class EmulatedNumerics:
    """Model files run on token ids under qemu-aarch64 (one guest process per core and round, the cores at once).

    Emulation runs a file 50-100x slower than this machine, so not every dev text is run there: a label can only
    flip where the fp32 student's top-1 / top-2 margin is at most twice the file's error on that text. The texts
    within SAFETY × twice the file's largest error on this machine, and a seeded sample of the others, run first;
    while the largest error seen under emulation could flip a text not yet run (twice it reaches the smallest
    margin left), the texts within reach are run too. A text never run counts with the fp32 student's outputs:
    the decision is then exact for every text whose error stays within the largest one seen. A vector model has
    no margins: a seeded sample of VECTOR_ROWS texts, its mean cosine taken over them."""

    def __init__(self, sets: tuple[InstructionSet, ...], feeds: dict[str, np.ndarray], reference: np.ndarray,
                 margins: np.ndarray | None, cache: Path | None = None):
        from compress.bench.arm64 import default_cache

        self.sets, self.feeds, self.reference, self.margins = sets, feeds, reference, margins
        self.cache = cache or default_cache()
        self._guest_parts = None
        self.seconds = 0.0

    def unavailable(self) -> str | None:
        """Why the aarch64 measurement cannot run here (one line), None when it can."""
        from compress.bench.arm64 import qemu_binary

        try:
            qemu_binary()
        except UserError as exc:
            return str(exc)
        return None if shutil.which("debootstrap") or (self.cache / "sysroot" / ".ready").is_file() else \
            "debootstrap is not installed (it fetches the aarch64 Python once): `apt-get install debootstrap`"

    def _prepare(self, pte: bool):
        from compress.bench.arm64 import fresh_runner, guest_python, prepare_executorch, prepare_sysroot, prepare_wheels

        if self._guest_parts is None:
            root = prepare_sysroot(self.cache)
            py = guest_python(root).name.removeprefix("python")
            self._guest_parts = {"root": root, "site": prepare_wheels(self.cache, py), "py": py,
                                 "runner": fresh_runner(self.cache), "executorch": None}
        parts = self._guest_parts
        if pte and parts["executorch"] is None:
            parts["executorch"] = prepare_executorch(self.cache, parts["py"])
        return parts

    def measure(self, path: Path, sets: list[InstructionSet], host: np.ndarray) -> dict[str, tuple[np.ndarray, dict] | str]:
        """instruction set -> (the file's outputs on every row: emulated where run, the fp32 student's elsewhere;
        what was run: {"rows_emulated", "rows", "rows_run", "max_abs_diff_emulated"}), or one line: why it could not
        run there. A vector model's verdict is to be taken over `rows_run` alone (no margins bound the others).
        `host`: the same file's outputs on this machine (its error there sets the first rows run)."""
        from concurrent.futures import ThreadPoolExecutor

        t0 = time.perf_counter()
        try:
            parts = self._prepare(path.suffix == ".pte")
        except UserError as exc:  # e.g. no cross compiler for the .pte library: recorded, this machine decides
            return {s.name: first_line(exc) for s in sets}
        n = len(self.reference)
        rng = np.random.default_rng(0)
        if self.margins is None:
            first = set(rng.choice(n, size=min(n, VECTOR_ROWS), replace=False).tolist())
        else:
            reach = SAFETY * 2 * float(row_error(host, self.reference).max())
            first = set(np.flatnonzero(self.margins <= reach).tolist()) | set(rng.choice(n, size=min(n, SAMPLE_ROWS), replace=False).tolist())
        todo = {s.name: set(first) for s in sets}
        got = {s.name: {} for s in sets}  # row -> output
        failed: dict[str, str] = {}
        with tempfile.TemporaryDirectory(dir=self.cache) as work, ThreadPoolExecutor(len(sets)) as pool:
            work = Path(work)
            shutil.copy2(path, work / path.name)
            for round_ in range(4):
                jobs = {s: sorted(todo[s.name]) for s in sets if s.name not in failed and todo[s.name]}
                if not jobs:
                    break
                futures = {s: pool.submit(self._run, parts, s, work / path.name, rows, work / f"{s.name}-{round_}")
                           for s, rows in jobs.items()}
                for s, fut in futures.items():
                    out = fut.result()
                    if isinstance(out, str):
                        failed[s.name] = out
                        continue
                    got[s.name].update(zip(jobs[s], out))
                    more = self._more(got[s.name])
                    # a third round that still finds texts within reach: every text left is run
                    todo[s.name] = more if round_ < 2 or not more else set(range(n)) - set(got[s.name])
        self.seconds += time.perf_counter() - t0
        found: dict[str, tuple[np.ndarray, dict] | str] = {}
        for s in sets:
            if s.name in failed:
                found[s.name] = failed[s.name]
                continue
            rows = sorted(got[s.name])
            full = self.reference.copy()
            full[rows] = np.stack([got[s.name][r] for r in rows])
            found[s.name] = (full, {"rows_emulated": len(rows), "rows": n, "rows_run": rows, "max_abs_diff_emulated":
                                    float(row_error(full[rows], self.reference[rows]).max()) if rows else 0.0})
        return found

    def _more(self, got: dict[int, np.ndarray]) -> set[int]:
        """The rows not run yet that the largest error seen so far could still flip (none for a vector model)."""
        if self.margins is None or not got:
            return set()
        rows = sorted(got)
        worst = float(row_error(np.stack([got[r] for r in rows]), self.reference[rows]).max())
        left = np.setdiff1d(np.arange(len(self.reference)), rows)
        return set(left[self.margins[left] <= SAFETY * 2 * worst].tolist())

    def _run(self, parts: dict, where: InstructionSet, model: Path, rows: list[int], out: Path) -> np.ndarray | str:
        from compress.bench.arm64 import Guest, core_view

        guest = Guest(core_view(parts["root"], where.core), parts["site"], parts["runner"], where.core, parts["executorch"])
        out.mkdir()
        feeds = {k: v[rows] for k, v in self.feeds.items()}
        width = max(1, int(feeds["attention_mask"].sum(1).max())) if rows else 1
        np.savez(out / "feeds.npz", **{k: v[:, :width] for k, v in feeds.items()})
        info(f"quantize: {model.name} on {len(rows)} dev text(s) under {guest.label} ({where.name})")
        try:
            guest.run(["targets.outputs", str(out / "feeds.npz"), str(out), str(model)], what="the runner's outputs")
        except UserError as exc:
            return first_line(exc)
        result = np.load(out / f"{model.name}.npy", allow_pickle=False)
        if result.ndim == 3 and result.shape[1] < self.reference.shape[1]:  # a tag per token: back to the split's width
            result = np.pad(result, ((0, 0), (0, self.reference.shape[1] - result.shape[1]), (0, 0)))
        return result

    def close(self) -> None:
        if self._guest_parts is not None:
            shutil.rmtree(self._guest_parts["runner"], ignore_errors=True)


def row_error(outputs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each row's largest |Δ| (over labels, or tokens × tags)."""
    return np.abs(outputs - reference).reshape(len(reference), -1).max(-1)


def margins_of(reference: np.ndarray, labelled: bool) -> np.ndarray | None:
    """Each row's fp32 top-1 / top-2 margin (a tagger's: its least sure real token's); None for vectors."""
    if not labelled or reference.shape[-1] < 2:
        return None
    top = np.sort(reference, axis=-1)
    margin = top[..., -1] - top[..., -2]
    if margin.ndim == 2:  # [rows, tokens]: padding tokens are all-zero rows, margin 0: left out
        real = np.abs(reference).sum(-1) > 0
        margin = np.where(real, margin, np.inf).min(-1)
    return margin


def feeds_of(enc) -> dict[str, np.ndarray]:
    """The split's token ids as the guest reads them (padded; mask 0 past each text)."""
    from compress.data.batching import collate

    batch = collate(enc, list(range(len(enc))))
    return {k: v.numpy().astype(np.int64) for k, v in batch.items() if k != "labels"}


def confident_agreement(reference: np.ndarray, outputs: np.ndarray, error_rows: list[int] | None = None) -> dict | None:
    """Label agreement on the rows (texts, or tokens of a tagger) where the fp32 student is sure beyond the file's own
    int8 error: its top-1 / top-2 logit margin above twice the file's 99th-percentile max |Δlogit| (a flip there
    needs an error the file makes on fewer than 1% of rows), that error taken over `error_rows` (the texts run under
    emulation; default all). None for outputs without labels (vectors)."""
    if reference.ndim < 2 or reference.shape[-1] < 2 or reference.shape != outputs.shape:
        return None
    measured = reference if error_rows is None else reference[error_rows]
    error = np.abs((outputs if error_rows is None else outputs[error_rows]) - measured).reshape(-1, reference.shape[-1]).max(-1)
    error = error[(np.abs(measured).reshape(-1, reference.shape[-1]).sum(-1) > 0)]  # a tagger's padding rows are zeros
    e99 = float(np.quantile(error, 0.99)) if len(error) else 0.0
    ref, out = reference.reshape(-1, reference.shape[-1]), outputs.reshape(-1, outputs.shape[-1])
    real = np.abs(ref).sum(-1) > 0
    ref, out = ref[real], out[real]
    top = np.sort(ref, axis=-1)
    margin = top[:, -1] - top[:, -2]
    sure = margin > 2 * e99
    same = out.argmax(-1) == ref.argmax(-1)
    return {"int8_error_p99": round(e99, 5), "rows": int(len(ref)), "confident_rows": int(sure.sum()),
            "confident_agreement": round(float(same[sure].mean()), 5) if sure.any() else None,
            "flips": int((~same).sum()), "flips_where_unsure": int((~same & ~sure).sum())}


OFF_ENV = "BERT_COMPRESS_EMULATE"
"""=off: no emulated measurement whatever the recipe asks (the test suite's tiny pipelines; CI time)."""


def emulated_numerics(names: list[str], enc, reference: np.ndarray | None = None,
                      labelled: bool = True) -> tuple[EmulatedNumerics | None, str | None]:
    """The recipe's instruction sets as an EmulatedNumerics over the split `enc`, or (None, why not: one line, said
    here) when none is asked, qemu is missing or the override is set: this machine's numerics then decide alone."""
    import os

    from targets.env import int8_isa

    sets = tuple(INSTRUCTION_SETS[n] for n in names)
    if not sets:
        return None, None
    numerics = EmulatedNumerics(sets, feeds_of(enc), reference, None if reference is None else margins_of(reference, labelled))
    why = (f"{OFF_ENV}=off" if os.environ.get(OFF_ENV, "").lower() in ("off", "0", "no") else numerics.unavailable())
    if why:
        info(f"[yellow]note[/]: the int8 decision for {', '.join(names)} was not made there ({why}): this machine's "
             f"numerics ({int8_isa()}) decide for every bundle")
        return None, why
    return numerics, None
