"""OUT, the folder one run lives in: every path in it is named here and nowhere else.

    recipe.yaml          the resolved recipe (what `--resume` and the stage commands re-read)
    teacher/             the fine-tuned teacher (finetune)
    student/             the distilled student and its tokenizer (distill)
    export/              verified fp32 ONNX / TFLite artifacts (export)
    quantized/           verified int8 / int4 artifacts (quantize)
    bundle/<platform>/, bundle/<platform>.zip
                         one app bundle per platform (bundle): pi (the torch-free runner), android-litert,
                         android-ort, ios-litert, ios-ort, web
    stages/<stage>.json  each stage's record: what it did, its settings hash, the digests of what it wrote
    checkpoints/<stage>/ training state while a stage runs (removed when it finishes)
    cache/teacher/       teacher outputs reused by distillation
    cache/targets/       the teacher's outputs a metric compares with (embeddings: its vectors of dev / test)
    report.json, report.md, bench.json, plots/
                         the view: rendered from the stage records, never read back by a stage
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VIEW_FILES = ("report.json", "report.md", "bench.json", "plots")


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def teacher(self) -> Path:
        return self.root / "teacher"

    @property
    def teacher_marker(self) -> Path:
        return self.teacher / "bert_compress_stage.json"

    @property
    def student(self) -> Path:
        return self.root / "student"

    @property
    def budget(self) -> Path:
        """The latency / size budget's plan (`run --budget-ms`): the profile, the cost model, every shape, the choice."""
        return self.root / "budget.json"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def quantized(self) -> Path:
        return self.root / "quantized"

    @property
    def bundle(self) -> Path:
        return self.root / "bundle"

    def platform_bundle(self, platform: str) -> Path:
        return self.bundle / platform

    def platform_zip(self, platform: str) -> Path:
        return self.bundle / f"{platform}.zip"

    @property
    def pi_bundle(self) -> Path:
        """The torch-free runner's bundle (`python -m targets ...`, `bert-compress arm64`)."""
        return self.platform_bundle("pi")

    @property
    def legacy_bundle_zip(self) -> Path:
        """The one zip of versions before per-platform bundles (removed by `run --force`)."""
        return self.root / "bundle.zip"

    @property
    def stages(self) -> Path:
        return self.root / "stages"

    def stage_file(self, stage: str) -> Path:
        return self.stages / f"{stage}.json"

    @property
    def projections(self) -> Path:
        """The distiller's projections (training state only, never part of the student)."""
        return self.stages / "distill-projections.pt"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint_dir(self, stage: str) -> Path:
        return self.checkpoints / stage

    @property
    def teacher_cache(self) -> Path:
        return self.root / "cache" / "teacher"

    # ---- the view ---------------------------------------------------------------------------------------
    def targets_file(self, name: str) -> Path:
        return self.root / "cache" / "targets" / f"{name}.npy"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def bench_json(self) -> Path:
        return self.root / "bench.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def rel(self, path: Path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def owned(self, names: tuple[str, ...]) -> list[Path]:
        """A stage's outputs (names of properties here) as paths."""
        return [getattr(self, n) for n in names]

    def forced_run_removes(self) -> list[Path]:
        """What `run --force` deletes: every stage's output, the records, checkpoints and the view. The fine-tuned
        teacher stays: it is a cache keyed by its settings."""
        return [self.student, self.export, self.quantized, self.stages, self.checkpoints, self.bundle, self.legacy_bundle_zip,
                *(self.root / v for v in VIEW_FILES)]
