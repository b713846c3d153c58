"""The app bundle: model files, tokenizer files, labels and metadata.json, read without PyTorch.

A bundle is a directory (or the zip of one) written by `bert-compress bundle`. metadata.json names every
file; `Bundle.load` checks they are all there and inside the bundle before anything runs, and a model file is
checked against the SHA-256 metadata.json records for it when it is used. A zip is extracted beside itself
(BUNDLE.zip -> BUNDLE.unzipped/), again whenever the zip's contents change. `Classifier` (labels, for
sequence-classification bundles), `Embedder` (sentence vectors, for embedding bundles) and `Tagger` (entities with
character spans, for token-classification bundles) tokenize with the
pure-Python tokenizer (targets.tokenizer.load_tokenizer) and run one model file through targets.runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from targets.archive import ArchiveError, sha256, unzipped
from targets.runtime import load_model
from targets.vectors import Shorter, cosine_matrix
from targets.tokenizer import TokenizerError, load_tokenizer

BUNDLE_FORMAT = "bert-compress-bundle"
SCHEMA_VERSION = 1
# the torch-free runner a bundle carries (runner/targets/): this package's own files
RUNNER_FILES = ("__init__.py", "__main__.py", "bundle.py", "check.py", "ner.py", "normalizer.py", "runtime.py",
                "tokenizer.py", "unicode_tables.py", "bench.py", "env.py", "profile.py", "gemm_fp32.onnx", "gemm_u8s8.onnx",
                "executorch_native.py", "pte_native.cc", "vectors.py", "outputs.py", "roofline.py", "archive.py",
                "pyproject.toml", "README.md")


class BundleError(Exception):
    """A bundle that cannot be used: missing or unreadable files, another format, no model for a runtime."""


def _member(root: Path, name, entry: str) -> Path:
    """The bundle file metadata.json's `entry` names; BundleError unless it is a relative path that stays inside
    the bundle (no absolute path or drive, no '..', no symlink leading out)."""
    if not isinstance(name, str) or not name.strip():
        raise BundleError(f"metadata.json of bundle {root}: {entry} is {json.dumps(name)}, not a file name: rebuild the bundle")
    if PurePosixPath(name).anchor or PureWindowsPath(name).anchor or ".." in PureWindowsPath(name).parts:
        raise BundleError(f"metadata.json of bundle {root}: {entry} '{name}' points outside the bundle (files are named "
                          "relative to the bundle, without '..'): rebuild the bundle")
    path = root / name
    real, base = path.resolve(), root.resolve()
    if real != base and base not in real.parents:
        raise BundleError(f"metadata.json of bundle {root}: {entry} '{name}' is a link to {real}, outside the bundle: "
                          "copy the bundle without links leading out of it")
    return path


@dataclass
class Bundle:
    root: Path
    metadata: dict
    labels: list[str]
    notes: list[str] = field(default_factory=list)
    _verified: dict = field(default_factory=dict, repr=False)
    """file -> (size, mtime_ns) of the model files whose SHA-256 matched"""

    @classmethod
    def load(cls, path: str | Path) -> "Bundle":
        root = Path(path)
        if root.is_file() and root.suffix == ".zip":
            try:
                root = unzipped(root)
            except ArchiveError as exc:
                raise BundleError(str(exc)) from None
        meta_path = root / "metadata.json"
        if not root.is_dir():
            raise BundleError(f"{path} is not a bundle directory or .zip")
        if not meta_path.is_file():
            raise BundleError(f"{root} has no metadata.json: not a bert-compress bundle")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BundleError(f"{meta_path} is not valid JSON: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{meta_path} is not a {BUNDLE_FORMAT} metadata file")
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise BundleError(f"{root} uses bundle schema {meta.get('schema_version')}; this runner reads schema "
                              f"{SCHEMA_VERSION}: update the runner or rebuild the bundle")
        models, tok = meta.get("models"), meta.get("tokenizer")
        if not isinstance(models, list) or not models or not all(isinstance(m, dict) for m in models) or not isinstance(tok, dict):
            raise BundleError(f"{meta_path} lists no models or no tokenizer: rebuild the bundle")
        files = [(f"models[{i}] file", m.get("file")) for i, m in enumerate(models)] + [("labels_file", meta.get("labels_file"))]
        files += [(f"tokenizer {key}", tok[key]) for key in ("vocab", "tokenizer_json") if tok.get(key) is not None]
        if tok.get("vocab") is None and tok.get("tokenizer_json") is None:
            raise BundleError(f"{meta_path} names no tokenizer file (tokenizer vocab or tokenizer_json): rebuild the bundle")
        paths = [(name, _member(root, name, entry)) for entry, name in files]
        missing = [name for name, p in paths if not p.is_file()]
        if missing:
            raise BundleError(f"bundle {root} is missing {', '.join(missing)}: copy the whole bundle (or its .zip)")
        labels_path = root / meta["labels_file"]
        try:
            labels = [line for line in labels_path.read_text(encoding="utf-8").splitlines() if line]
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"cannot read {labels_path}: {exc}") from None
        if labels != meta.get("labels"):
            raise BundleError(f"{labels_path} does not match metadata.json's labels: rebuild the bundle")
        return cls(root, meta, labels)

    def model_entry(self, runtime: str = "auto") -> dict:
        """The bundle's model for a runtime ('onnxruntime', 'litert', or a file name); auto: the first listed.
        Its file is checked against the SHA-256 in metadata.json (model_path)."""
        models = self.metadata["models"]
        if runtime == "auto":
            entry = models[0]
        else:
            entry = next((m for m in models if runtime in (m["runtime"], m["file"], Path(m["file"]).suffix.lstrip("."))), None)
            if entry is None:
                raise BundleError(f"bundle {self.root} has no model for '{runtime}'; it has "
                                  + ", ".join(f"{m['file']} ({m['runtime']})" for m in models))
        self.model_path(entry)
        return entry

    def model_path(self, entry: dict) -> Path:
        """The model file of a metadata.json entry, after checking it is there and matches its recorded SHA-256
        (an entry without one, from an older bundle, is taken as it is). Checked once per file version."""
        name = entry["file"]
        path = _member(self.root, name, "model file")
        try:
            st = path.stat()
        except OSError:
            raise BundleError(f"bundle {self.root} is missing {name}: copy the whole bundle (or its .zip)") from None
        want = entry.get("sha256")
        if want and self._verified.get(name) != (st.st_size, st.st_mtime_ns):
            try:
                got = sha256(path)
            except OSError as exc:
                raise BundleError(f"cannot read {name} of bundle {self.root}: {exc}") from None
            if got != str(want).lower():
                raise BundleError(f"{name} does not match its SHA-256 in metadata.json: the file is damaged or was "
                                  "changed; copy the bundle again")
            self._verified[name] = (st.st_size, st.st_mtime_ns)
        return path

    def tokenizer(self):
        """The bundle's tokenizer: pure-Python WordPiece for BERT WordPiece files, else tokenizers-backed."""
        tok = self.metadata["tokenizer"]
        try:
            # add_special_tokens false: a static-embedding model runs on the word pieces alone, no [CLS] / [SEP]
            return load_tokenizer(self.root / tok["tokenizer_json"] if tok.get("tokenizer_json") else None,
                                  self.root / tok["vocab"] if tok.get("vocab") else None,
                                  lowercase=tok.get("lowercase", True), strip_accents=tok.get("strip_accents"),
                                  add_special_tokens=tok.get("add_special_tokens", True) is not False)
        except TokenizerError as exc:
            raise BundleError(str(exc)) from None


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def refuse_empty(texts: list[str], what: str) -> None:
    """One clear line for the first empty or whitespace-only text (a label or a vector for no words means nothing)."""
    for i, text in enumerate(texts):
        if not str(text).strip():
            raise BundleError(f"text {i + 1} is empty or only whitespace: there is nothing to {what}; pass some words")


@dataclass
class Prediction:
    text: str
    label: str
    probabilities: dict[str, float]
    tokens: int
    truncated: bool
    logits: list[float] = field(default_factory=list)


# what a bundle's metadata.json says about its task; bundles written before tasks were named are classifiers
DEFAULT_TASK = {"name": "sequence-classification", "outputs": ["logits"], "postprocess": "softmax-labels"}


def task_of(bundle: Bundle) -> dict:
    return bundle.metadata.get("task") or DEFAULT_TASK


# which class runs which post-processing, for the message when a bundle is opened with the other one
RUNNER_OF = {"softmax-labels": "Classifier (`python -m targets predict BUNDLE TEXT ...`)",
             "embedding": "Embedder (`python -m targets embed BUNDLE TEXT ...`)",
             "token-tags": "Tagger (`python -m targets ner BUNDLE TEXT ...`)"}


class BundleModel:
    """What Classifier and Embedder share: the bundle's task checked against the class's POSTPROCESS, one model
    file loaded, texts tokenized and padded into the feeds every runtime takes (each runtime uses the inputs its
    model has), one call per `batch_size` texts."""

    POSTPROCESS = ""
    WHAT = ""
    """what the class runs, for the refusal message ('a classifier')"""

    def __init__(self, bundle: Bundle | str | Path, runtime: str = "auto", threads: int = 0, interpreter: str = "auto"):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        task = task_of(self.bundle)
        if task.get("postprocess") != self.POSTPROCESS:
            use, name = RUNNER_OF.get(task.get("postprocess")), str(task.get("name"))
            raise BundleError(f"this bundle is {'an' if name[:1] in 'aeiou' else 'a'} {name} model (post-processing "
                              f"'{task.get('postprocess')}'), "
                              f"not {self.WHAT}: " + (f"use {use}" if use else
                                                      "use the runner of the bert-compress version that wrote it"))
        self.entry = self.bundle.model_entry(runtime)
        self.tokenizer = self.bundle.tokenizer()
        path = self.bundle.model_path(self.entry)  # checked against its SHA-256 by model_entry
        self.model = load_model(path, threads, interpreter)
        self.max_length = int(self.bundle.metadata["max_length"])
        if getattr(self.model, "max_length", None):
            self.max_length = min(self.max_length, self.model.max_length)
        self.notes = list(getattr(self.model, "notes", []))

    def encode(self, texts: list[str], pairs: list[str] | None = None, offsets: bool = False):
        """offsets: the encodings also hold each token's character span and word (a token classifier's decoder)."""
        encodings = [self.tokenizer.encode(t, pairs[i] if pairs else None, self.max_length, offsets=offsets)
                     for i, t in enumerate(texts)]
        # at least one column: without special tokens an empty text has no ids (its row is all padding, mask 0)
        width = max([1] + [len(e.input_ids) for e in encodings])
        feeds = {"input_ids": np.full((len(texts), width), self.tokenizer.pad_id, dtype=np.int64),
                 "attention_mask": np.zeros((len(texts), width), dtype=np.int64),
                 "token_type_ids": np.zeros((len(texts), width), dtype=np.int64)}
        for r, e in enumerate(encodings):
            n = len(e.input_ids)
            feeds["input_ids"][r, :n] = e.input_ids
            feeds["attention_mask"][r, :n] = e.attention_mask
            feeds["token_type_ids"][r, :n] = e.token_type_ids
        return feeds, encodings

    def outputs(self, texts: list[str], pairs: list[str] | None = None) -> np.ndarray:
        """The model's raw outputs on `texts`, one text per call (logits, vectors or per-token logits): what a
        check compares with the PyTorch student."""
        raise NotImplementedError

    def _runs(self, texts: list[str], pairs: list[str] | None, batch_size: int, offsets: bool = False):
        """(encodings, outputs) per call of `batch_size` texts. One text per call by default: a dynamically
        quantized model scales its activations per call, so in a batch a text's outputs would depend on the
        texts beside it."""
        for start in range(0, len(texts), batch_size):
            feeds, encodings = self.encode(texts[start:start + batch_size], pairs[start:start + batch_size] if pairs else None,
                                           offsets)
            yield encodings, self.model(feeds)


class Classifier(BundleModel):
    """Text in, label and probabilities out, through one model file of a bundle (post-processing
    'softmax-labels': the sequence-classification task)."""

    POSTPROCESS = "softmax-labels"
    WHAT = "a classifier"

    def logits(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 1) -> np.ndarray:
        out = [logits for _, logits in self._runs(texts, pairs, batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.bundle.labels)), dtype=np.float32)

    def outputs(self, texts: list[str], pairs: list[str] | None = None) -> np.ndarray:
        return self.logits(texts, pairs)

    def predict(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 1) -> list[Prediction]:
        """A label and its probabilities per text. An empty or whitespace-only text is refused (BundleError): the
        model would still pick a label for it, which would mean nothing."""
        if isinstance(texts, str):
            texts = [texts]
        refuse_empty(texts, "classify")
        preds = []
        for encodings, logits in self._runs(texts, pairs, batch_size):
            for e, p, raw in zip(encodings, softmax(logits.astype(np.float64)), logits):
                preds.append(Prediction(texts[len(preds)], self.bundle.labels[int(p.argmax())],
                                        {lab: round(float(x), 6) for lab, x in zip(self.bundle.labels, p)},
                                        len(e.input_ids), e.truncated, [float(x) for x in raw]))
        return preds


class Embedder(BundleModel):
    """Text in, sentence vector out, through one model file of a bundle (post-processing 'embedding'). Pooling, and
    L2 normalisation where metadata.json's embedding.normalized says so, happen inside the model."""

    POSTPROCESS = "embedding"
    WHAT = "an embedding model"

    def __init__(self, bundle: Bundle | str | Path, runtime: str = "auto", threads: int = 0, interpreter: str = "auto"):
        super().__init__(bundle, runtime, threads, interpreter)
        spec = self.bundle.metadata.get("embedding")
        try:
            self.dim = int(spec["dim"])
        except (TypeError, KeyError, ValueError):
            raise BundleError(f"metadata.json of bundle {self.bundle.root} has no embedding dim: rebuild the bundle") from None
        self.normalized = bool(spec.get("normalized", False))
        self.pooling = spec.get("pooling")
        self._shorter = None

    def embed(self, texts: list[str], batch_size: int = 1) -> np.ndarray:
        """[len(texts), dim] float32 vectors, one text per call by default (see BundleModel._runs). An empty or
        whitespace-only text is refused (BundleError): its vector would be the model's vector for no words."""
        if isinstance(texts, str):  # a lone string would otherwise be embedded character by character
            texts = [texts]
        refuse_empty(texts, "embed")
        return self.outputs(texts, None, batch_size)

    def outputs(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 1) -> np.ndarray:
        out = [np.asarray(vectors, dtype=np.float32) for _, vectors in self._runs(list(texts), None, batch_size)]
        vectors = np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise BundleError(f"{self.entry['file']} gives outputs of shape {list(vectors.shape)}, not [texts, {self.dim}] "
                              "as metadata.json's embedding dim says: rebuild the bundle")
        return vectors

    @property
    def shorter_dims(self) -> list[int]:
        """The widths this bundle's vectors can be cut to (metadata.json embedding.shorter; [] without a basis)."""
        return list((self.bundle.metadata["embedding"].get("shorter") or {}).get("dims") or [])

    def shorter(self, vectors: np.ndarray, dim: int) -> np.ndarray:
        """Vectors for a smaller index (targets.vectors): turned by the bundle's basis, cut to `dim`, normalised again;
        the teacher's document vectors take the same turn."""
        spec = self.bundle.metadata["embedding"].get("shorter")
        if not spec:
            raise BundleError(f"bundle {self.bundle.root} has no shorter-vector basis: rebuild it with this version")
        if self._shorter is None:
            try:
                self._shorter = Shorter(_member(self.bundle.root, spec["file"], "embedding.shorter.file"), spec["dims"], self.dim)
            except FileNotFoundError as exc:
                raise BundleError(str(exc)) from None
        return self._shorter.cut(vectors, dim)

    def search(self, query: str, documents: list[str] | np.ndarray, top_k: int | None = 5) -> list[tuple[int, float]]:
        """The `top_k` documents (None: all) most similar to `query` by cosine similarity, best first, as (index,
        score). Texts are embedded; an array is taken as their vectors (embed them once, search many times), full width
        or cut by `shorter`. Cosine even for a normalized=false bundle: the vectors are normalised here."""
        docs = np.asarray(documents, dtype=np.float32) if isinstance(documents, np.ndarray) else self.embed(list(documents))
        widths = [self.dim, *self.shorter_dims]
        if docs.ndim != 2 or docs.shape[1] not in widths:
            raise ValueError(f"documents as vectors must have shape [n, {' | '.join(map(str, widths))}], got {list(docs.shape)}")
        query_vector = self.embed([query])
        if docs.shape[1] != self.dim:  # shorter document vectors (Embedder.shorter): the query is cut the same way
            query_vector = self.shorter(query_vector, docs.shape[1])
        scores = cosine_matrix(query_vector, docs)[0]
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [(int(i), float(scores[i])) for i in order]


@dataclass
class Tagged:
    text: str
    entities: list  # targets.ner.Entity, in text order
    tokens: int
    truncated: bool


class Tagger(BundleModel):
    """Text in, entities with character spans out, through one model file of a bundle (post-processing 'token-tags':
    the token-classification task; decoding in targets.ner)."""

    POSTPROCESS = "token-tags"
    WHAT = "a token classifier"

    def logits(self, texts: list[str], batch_size: int = 1) -> np.ndarray:
        """[texts, longest text's tokens, tags], zeros past each text's own tokens."""
        rows = [(e, out[r]) for encodings, out in self._runs(list(texts), None, batch_size) for r, e in enumerate(encodings)]
        width = max([1] + [len(e.input_ids) for e, _ in rows])
        logits = np.zeros((len(rows), width, len(self.bundle.labels)), dtype=np.float32)
        for r, (e, out) in enumerate(rows):
            logits[r, :len(e.input_ids)] = out[:len(e.input_ids)]
        return logits

    def outputs(self, texts: list[str], pairs: list[str] | None = None) -> np.ndarray:
        return self.logits(texts)

    def tag(self, texts: list[str], aggregation: str = "first", batch_size: int = 1) -> list[Tagged]:
        """The entities of each text. An empty or whitespace-only text has no words, so no entities: its Tagged
        has `entities == []` (the model still runs on [CLS] [SEP], as for any text)."""
        from targets.ner import entities

        if isinstance(texts, str):
            texts = [texts]
        out = []
        for encodings, logits in self._runs(list(texts), None, batch_size, offsets=True):
            for e, z in zip(encodings, logits):
                text = texts[len(out)]
                found = entities(text, z[:len(e.input_ids)], e.offsets, e.word_ids, self.bundle.labels, aggregation)
                out.append(Tagged(text, found, len(e.input_ids), e.truncated))
        return out


MODELS = {cls.POSTPROCESS: cls for cls in (Classifier, Embedder, Tagger)}
"""post-processing (metadata.json's task.postprocess) -> the class that runs it"""


def open_model(bundle: Bundle | str | Path, runtime: str = "auto", threads: int = 0, interpreter: str = "auto") -> BundleModel:
    """The runner class the bundle's task needs (Classifier, Embedder or Tagger), opened on one of its model files."""
    bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
    postprocess = task_of(bundle).get("postprocess")
    if postprocess not in MODELS:
        raise BundleError(f"no runner for post-processing '{postprocess}': use the runner of the bert-compress version "
                          "that wrote the bundle")
    return MODELS[postprocess](bundle, runtime, threads, interpreter)
