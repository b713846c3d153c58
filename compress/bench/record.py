"""The bench stage's results as one typed record: built once by the bench stage, stored in its stage record, and read
back with `BenchResults.from_dict` by the bundle stage, the view (report.json, report.md, bench.json, plots) and
benchmarks/readme_tables, through its attributes (a Measured still reads like its dict, `m["name"]`, for callers that
held the dicts before).

A measured model's `quality` is the task's metric on test (accuracy, entity F1, embedding fidelity); its
`agreement` the task's agreement with the PyTorch student on dev (label agreement, token agreement, mean cosine),
named by `agreement_name`. Records and reports written before those names read the same (`accuracy`,
`label_agreement` and a string `agreement` are the old keys).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from compress.bench.cells import cell


def upgraded(d: dict) -> dict:
    """A measured model's dict with the keys of earlier versions renamed to what they hold (a copy)."""
    d = dict(d)
    if "accuracy" in d and "quality" not in d:
        d["quality"] = d.pop("accuracy")
    if isinstance(d.get("agreement"), str):  # the agreement's name, beside its value under `label_agreement`
        d["agreement_name"] = d.pop("agreement")
    if "label_agreement" in d:
        d.setdefault("agreement", d.pop("label_agreement"))
    if d.get("quantization") and not ("precision" in d and "compute" in d):
        # a report from before artifacts stated them: derived from the quantization settings, as compress.artifacts does
        from compress.artifacts import Quantization

        p = Quantization.from_dict(d["quantization"]).precision()
        d["precision"], d["compute"] = p.label, p.compute
    return d


@dataclass
class Measured:
    """One model the bench stage measured: the teacher, the PyTorch student, an artifact or a reference row."""

    name: str
    runtime: str | None  # None: not recorded (an entry the bench stage could not measure)
    quality: float | None  # the task's metric on test
    size_bytes: int | None = None
    latency: list[dict] = field(default_factory=list)  # one cell per threads x seq_len x batch (compress.bench.cells)
    format: str | None = None
    path: str | None = None
    precision: str = "fp32"
    compute: str = "fp32"
    agreement: float | None = None  # with the PyTorch student on dev (artifacts)
    agreement_name: str | None = None
    extras: dict = field(default_factory=dict)  # what else was measured or recorded (retrieval, entities, arch, load...)

    @classmethod
    def from_dict(cls, d: dict, name: str | None = None) -> "Measured":
        """`name`: for the teacher's and the student's rows, which the bench stage writes without one."""
        d = upgraded(d)
        known = {k: d[k] for k in _FIELDS if k in d}
        known.setdefault("name", name)
        known.setdefault("quality", None)
        known.setdefault("runtime", "pytorch" if name in ("teacher", "student (pytorch)") else None)
        return cls(**known, extras={k: v for k, v in d.items() if k not in _FIELDS})

    def to_dict(self, named: bool = True) -> dict:
        out = {k: getattr(self, k) for k in _FIELDS if named or k != "name"}
        return {k: v for k, v in out.items() if v is not None or k == "quality"} | self.extras

    def get(self, key: str, default=None):
        """A recorded field that has no attribute of its own (`arch`, `load_s`, `embedding`, `retained_interval`)."""
        return self.extras.get(key, default)

    def __getitem__(self, key: str):
        """Reads like the dict it was loaded from (`m["name"]`, `m["path"]`), for callers that held those dicts."""
        if key in _FIELDS:
            return getattr(self, key)
        return self.extras[key]

    def cell(self, seq: int, threads: int, batch: int = 1) -> dict | None:
        return cell({"latency": self.latency}, seq, threads, batch)

    def p50(self, seq: int, threads: int, batch: int = 1) -> float | None:
        c = self.cell(seq, threads, batch)
        return c["p50_ms"] if c else None

    def retained(self, teacher: "Measured") -> float | None:
        """Its quality as a share of the teacher's (None when either was not measured)."""
        return self.quality / teacher.quality if self.quality is not None and teacher.quality else None


_FIELDS = tuple(f.name for f in fields(Measured) if f.name != "extras")  # in declaration order: stable JSON


def reference_cell(bench: dict) -> tuple[int, int]:
    """The headline point of a bench grid: seq 128 on 1 thread when measured, else the longest seq and fewest threads."""
    seqs, threads = bench["grid"]["seq_lens"], bench["grid"]["threads"]
    return (128 if 128 in seqs else max(seqs)), (1 if 1 in threads else min(threads))


MODEL_KEYS = ("teacher", "student", "artifacts", "references")


@dataclass
class BenchResults:
    """Everything the bench stage measured of one run, on one machine."""

    teacher: Measured
    student: Measured
    artifacts: list[Measured]
    references: list[Measured] = field(default_factory=list)  # the teacher in ONNX Runtime fp32, model2vec's own ...
    bench: dict = field(default_factory=dict)  # grid, timing, gemm_peak, command
    string_in: list[dict] = field(default_factory=list)  # each string-in ONNX timed beside its ids-in file
    meta: dict = field(default_factory=dict)  # version, created, recipe, quick, task, metric, environment, data, budget

    @classmethod
    def from_dict(cls, d: dict) -> "BenchResults":
        """From the bench stage's record or a report.json (any version)."""
        # (a part of a report, e.g. its artifacts alone, reads too: what it lacks is unmeasured)
        return cls(Measured.from_dict(d.get("teacher") or {}, "teacher"),
                   Measured.from_dict(d.get("student") or {}, "student (pytorch)"),
                   [Measured.from_dict(a) for a in d.get("artifacts", [])],
                   [Measured.from_dict(r) for r in d.get("references") or []],
                   d.get("bench", {}), d.get("string_in") or [],
                   {k: v for k, v in d.items() if k not in (*MODEL_KEYS, "bench", "string_in")})

    def to_dict(self) -> dict:
        return {**self.meta, "bench": self.bench, "teacher": self.teacher.to_dict(named=False),
                "student": self.student.to_dict(named=False),
                "artifacts": [a.to_dict() for a in self.artifacts],
                **({"references": [r.to_dict() for r in self.references]} if self.references else {}),
                "string_in": self.string_in}

    @property
    def point(self) -> tuple[int, int]:
        """(seq_len, threads) of the headline comparison (a report from before the grid was stored: from its cells)."""
        if "grid" in self.bench:
            return reference_cell(self.bench)
        cells = [c for m in self.models() for c in m.latency]
        return reference_cell({"grid": {"seq_lens": sorted({c["seq_len"] for c in cells}),
                                        "threads": sorted({c["threads"] for c in cells})}})

    def artifact(self, name: str | None) -> Measured | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def reference(self, name: str) -> Measured | None:
        return next((r for r in self.references if r.name == name), None)

    @property
    def onnx_teacher(self) -> Measured | None:
        """The teacher in ONNX Runtime fp32 (a reference row), when it was measured."""
        return self.reference("teacher-onnx-fp32")

    def models(self) -> list[Measured]:
        return [self.teacher, self.student, *self.artifacts, *self.references]
