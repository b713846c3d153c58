"""The app bundle: model files, tokenizer files, labels and metadata.json, read without PyTorch.

A bundle is a directory (or the zip of one) written by `bert-compress bundle`. metadata.json names every
file; `Bundle.load` checks they are all there before anything runs. `Classifier` tokenizes with the
pure-Python WordPiece tokenizer and runs one model file through targets.runtime.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from targets.runtime import load_model
from targets.tokenizer import TokenizerError, WordPieceTokenizer

BUNDLE_FORMAT = "bert-compress-bundle"
SCHEMA_VERSION = 1


class BundleError(Exception):
    """A bundle that cannot be used: missing or unreadable files, another format, no model for a runtime."""


@dataclass
class Bundle:
    root: Path
    metadata: dict
    labels: list[str]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> "Bundle":
        root = Path(path)
        if root.is_file() and root.suffix == ".zip":
            root = _unzipped(root)
        meta_path = root / "metadata.json"
        if not root.is_dir():
            raise BundleError(f"{path} is not a bundle directory or .zip")
        if not meta_path.is_file():
            raise BundleError(f"{root} has no metadata.json: not a bert-compress bundle")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BundleError(f"{meta_path} is not valid JSON: {exc}") from None
        if meta.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{meta_path} is not a {BUNDLE_FORMAT} metadata file")
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise BundleError(f"{root} uses bundle schema {meta.get('schema_version')}; this runner reads schema "
                              f"{SCHEMA_VERSION}: update the runner or rebuild the bundle")
        files = [m["file"] for m in meta["models"]] + [meta["tokenizer"]["vocab"], meta["labels_file"]]
        if meta["tokenizer"].get("tokenizer_json"):
            files.append(meta["tokenizer"]["tokenizer_json"])
        missing = [f for f in files if not (root / f).is_file()]
        if missing:
            raise BundleError(f"bundle {root} is missing {', '.join(missing)}: copy the whole bundle (or its .zip)")
        labels = [line for line in (root / meta["labels_file"]).read_text(encoding="utf-8").splitlines() if line]
        if labels != meta["labels"]:
            raise BundleError(f"{root / meta['labels_file']} does not match metadata.json's labels: rebuild the bundle")
        return cls(root, meta, labels)

    def model_entry(self, runtime: str = "auto") -> dict:
        """The bundle's model for a runtime ('onnxruntime', 'litert', or a file name); auto: the first listed."""
        models = self.metadata["models"]
        if runtime == "auto":
            return models[0]
        for m in models:
            if runtime in (m["runtime"], m["file"], Path(m["file"]).suffix.lstrip(".")):
                return m
        raise BundleError(f"bundle {self.root} has no model for '{runtime}'; it has "
                          + ", ".join(f"{m['file']} ({m['runtime']})" for m in models))

    def tokenizer(self) -> WordPieceTokenizer:
        tok = self.metadata["tokenizer"]
        try:
            if tok.get("tokenizer_json"):
                return WordPieceTokenizer.from_tokenizer_json(self.root / tok["tokenizer_json"])
            return WordPieceTokenizer.from_vocab_txt(self.root / tok["vocab"], tok["lowercase"], tok.get("strip_accents"))
        except TokenizerError as exc:
            raise BundleError(str(exc)) from None


def _unzipped(path: Path) -> Path:
    """Extract a bundle zip next to itself once (BUNDLE.zip -> BUNDLE.unzipped/)."""
    target = path.with_suffix(".unzipped")
    if not (target / "metadata.json").is_file():
        try:
            with zipfile.ZipFile(path) as zf:
                zf.extractall(target)
        except (zipfile.BadZipFile, OSError) as exc:
            raise BundleError(f"cannot extract {path}: {exc}") from None
    inner = [p for p in target.iterdir() if p.is_dir() and (p / "metadata.json").is_file()]
    return inner[0] if not (target / "metadata.json").is_file() and len(inner) == 1 else target


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class Prediction:
    text: str
    label: str
    probabilities: dict[str, float]
    tokens: int
    truncated: bool
    logits: list[float] = field(default_factory=list)


class Classifier:
    """Text in, label and probabilities out, through one model file of a bundle."""

    def __init__(self, bundle: Bundle | str | Path, runtime: str = "auto", threads: int = 0, interpreter: str = "auto"):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        self.entry = self.bundle.model_entry(runtime)
        self.tokenizer = self.bundle.tokenizer()
        path = self.bundle.root / self.entry["file"]
        self.model = load_model(path, threads, interpreter)
        self.max_length = int(self.bundle.metadata["max_length"])
        if getattr(self.model, "max_length", None):
            self.max_length = min(self.max_length, self.model.max_length)
        self.notes = list(getattr(self.model, "notes", []))

    def encode(self, texts: list[str], pairs: list[str] | None = None):
        encodings = [self.tokenizer.encode(t, pairs[i] if pairs else None, self.max_length) for i, t in enumerate(texts)]
        width = max(len(e.input_ids) for e in encodings)
        feeds = {"input_ids": np.full((len(texts), width), self.tokenizer.pad_id, dtype=np.int64),
                 "attention_mask": np.zeros((len(texts), width), dtype=np.int64),
                 "token_type_ids": np.zeros((len(texts), width), dtype=np.int64)}
        for r, e in enumerate(encodings):
            n = len(e.input_ids)
            feeds["input_ids"][r, :n] = e.input_ids
            feeds["attention_mask"][r, :n] = e.attention_mask
            feeds["token_type_ids"][r, :n] = e.token_type_ids
        return feeds, encodings

    def _runs(self, texts: list[str], pairs: list[str] | None, batch_size: int):
        """(encodings, logits) per call of `batch_size` texts. One text per call by default: a dynamically
        quantized model scales its activations per call, so in a batch a text's logits would depend on the
        texts beside it."""
        for start in range(0, len(texts), batch_size):
            feeds, encodings = self.encode(texts[start:start + batch_size], pairs[start:start + batch_size] if pairs else None)
            yield encodings, self.model(feeds)

    def logits(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 1) -> np.ndarray:
        out = [logits for _, logits in self._runs(texts, pairs, batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.bundle.labels)), dtype=np.float32)

    def predict(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 1) -> list[Prediction]:
        preds = []
        for encodings, logits in self._runs(texts, pairs, batch_size):
            for e, p, raw in zip(encodings, softmax(logits.astype(np.float64)), logits):
                preds.append(Prediction(texts[len(preds)], self.bundle.labels[int(p.argmax())],
                                        {lab: round(float(x), 6) for lab, x in zip(self.bundle.labels, p)},
                                        len(e.input_ids), e.truncated, [float(x) for x in raw]))
        return preds

