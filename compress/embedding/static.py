"""The static tier: a static-embedding student distilled from the teacher by model2vec, and its tiny ONNX export.

model2vec (0.10) does the distillation: every vocabulary token goes through the teacher alone ([CLS] tok [SEP]),
mean-pooled, PCA'd to `pca_dims`, and scaled by a Zipf-estimated SIF weight (folded into the table). Its encode,
which `StaticStudent.encode` and the ONNX graph reproduce, is:

- tokenise with the distilled tokenizer (the teacher's WordPiece with [unusedN], [CLS], [SEP] and [MASK] removed, so
  its ids differ from the teacher's), WITHOUT special tokens; the text is first cut to `max_length *
  median_token_length` characters and the ids truncated to `max_length` (512) tokens;
- drop the [UNK] id (it would otherwise pull every unknown word to one vector);
- plain mean of the table rows (no per-token weights in 0.10 unless vocabulary quantisation is asked for; we fold
  those in anyway); an empty sentence gives zeros;
- L2-normalise (distill always sets normalize=True).

With `fit_texts` and the teacher's vectors of them, a ridge map (W, b) from the unnormalised mean to the teacher's
space is fitted in closed form and applied before the normalisation, so static query vectors can be compared with
teacher document vectors. Without them the student is model2vec's own distillation (our peer row).

On disk (`save_static`) the folder is a sentence-transformers model (StaticEmbedding [+ Dense] + Normalize) with the
model2vec model under `model2vec/` and our own fields in `static_student.json`. The [UNK] row is zeroed so that
sentence-transformers, which does not drop [UNK], gives the same direction without a map (with a map it still
counts the [UNK] pieces in the mean's denominator: the only difference, and only for text with [UNK]).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from compress.progress import info

STUDENT_FILE = "static_student.json"
MODEL2VEC_DIR = "model2vec"
OPSET = 18
NORM_EPS = 1e-12  # as torch's F.normalize (sentence-transformers' Normalize): an all-zero row stays zero, never NaN


@dataclass
class StaticStudent:
    """A static-embedding student: table lookup, masked mean, optional linear map, optional L2 normalisation."""

    embedding: np.ndarray  # float32 [V, d], one row per tokenizer id (SIF weights folded in)
    tokenizer: Any  # tokenizers.Tokenizer, padding off, truncation at max_length
    unk_token_id: int | None  # dropped from every sentence (model2vec does)
    pad_token_id: int
    normalize: bool
    W: np.ndarray | None = None  # float32 [d, D]
    b: np.ndarray | None = None  # float32 [D]
    add_special_tokens: bool = False  # model2vec tokenises without [CLS]/[SEP]
    max_length: int | None = 512
    median_token_length: int = 1
    metadata: dict = field(default_factory=dict)
    source: Any = field(default=None, repr=False, compare=False)  # the model2vec StaticModel distilled (not saved)

    @property
    def dim(self) -> int:
        return int(self.W.shape[1] if self.W is not None else self.embedding.shape[1])

    @property
    def max_chars(self) -> int | None:
        """model2vec cuts each text to this many characters before tokenising (it saves time on huge inputs)."""
        return None if self.max_length is None else self.max_length * self.median_token_length

    def token_ids(self, texts: Sequence[str], *, drop_unk: bool = True) -> list[list[int]]:
        """Ids as model2vec's StaticModel.tokenize gives them (drop_unk=False: what a device feeds the graph)."""
        cut = self.max_chars
        texts = [t[:cut] for t in texts] if cut is not None else list(texts)
        ids = [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=self.add_special_tokens)]
        if drop_unk and self.unk_token_id is not None:
            ids = [[i for i in row if i != self.unk_token_id] for row in ids]
        return ids

    def batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Padded int64 input_ids and attention_mask for the ONNX graph ([UNK] kept: the graph drops it)."""
        ids = self.token_ids(texts, drop_unk=False)
        width = max([len(r) for r in ids] + [1])
        input_ids = np.full((len(ids), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return input_ids, mask

    def mean_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unnormalised mean of the kept tokens' rows, [n, d]; zeros for a sentence with none."""
        out = np.zeros((len(texts), self.embedding.shape[1]), dtype=np.float32)
        for i, row in enumerate(self.token_ids(texts)):
            if row:
                out[i] = self.embedding[np.asarray(row, dtype=np.int64)].mean(axis=0)
        return out

    def project(self, means: np.ndarray) -> np.ndarray:
        """The map and the normalisation, applied to mean vectors: the part of encode after pooling."""
        x = means.astype(np.float32)
        if self.W is not None:
            x = x @ self.W + (self.b if self.b is not None else 0.0)
        if self.normalize:
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), NORM_EPS)
        return x.astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Sentence vectors [n, D], float32: the same computation as the ONNX graph."""
        return self.project(self.mean_vectors(texts))

    def to_model2vec(self):
        """The table as a model2vec StaticModel (only a student without a map is one)."""
        from model2vec import StaticModel

        if self.W is not None:
            raise ValueError("a static student with a linear map is not a model2vec model (model2vec has no map)")
        config = {"model_type": "model2vec", "architectures": ["StaticModel"], "hidden_dim": int(self.embedding.shape[1]),
                  "apply_pca": self.metadata.get("pca_dims"), "normalize": self.normalize,
                  "sif_coefficient": self.metadata.get("sif_coefficient"), "tokenizer_name": self.metadata.get("teacher", "")}
        return StaticModel(vectors=self.embedding, tokenizer=self.tokenizer, config=config, normalize=self.normalize,
                           base_model_name=self.metadata.get("teacher"), max_length=self.max_length)


def _from_model2vec(model, metadata: dict) -> StaticStudent:
    import copy

    table = np.array(model.embedding, dtype=np.float32)  # a copy: the [UNK] row is zeroed later
    if model.token_mapping is not None:  # vocabulary quantisation: fold to one row per token id, as encode reads it
        table = table[np.asarray(model.token_mapping, dtype=np.int64)]
    if model.weights is not None:
        table = table * np.asarray(model.weights, dtype=np.float32)[:, None]
    table = np.ascontiguousarray(table, dtype=np.float32)
    tok = copy.deepcopy(model.tokenizer)
    tok.no_padding()
    pad = tok.token_to_id("[PAD]")
    return StaticStudent(embedding=table, tokenizer=tok, unk_token_id=model.unk_token_id,
                         pad_token_id=int(pad if pad is not None else 0), normalize=bool(model.normalize),
                         add_special_tokens=False, max_length=model.max_length,
                         median_token_length=int(model.median_token_length), metadata=metadata, source=model)


def model2vec_gap(student: StaticStudent, model, texts: Sequence[str]) -> float:
    """Largest absolute difference between our encode and model2vec's StaticModel.encode (a student without a map)."""
    ours = student.encode(texts)
    theirs = np.asarray(model.encode(list(texts), use_multiprocessing=False), dtype=np.float32)
    return float(np.abs(ours - theirs).max()) if len(texts) else 0.0


_PROBES = ["The quick brown fox jumps over the lazy dog.", "", "a", "What is the capital of France?",
           "Static embeddings are a table lookup and a mean. ☃ ∰", "x" * 50]


def fit_linear_map(means: np.ndarray, targets: np.ndarray, ridge: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression with an unpenalised bias, in closed form: targets ~ means @ W + b.

    The penalty is `ridge` times the mean diagonal of the centred Gram matrix, so it does not depend on the table's
    scale (PCA and SIF weights make it arbitrary) or on the number of texts.
    """
    X = means.astype(np.float64)
    Y = targets.astype(np.float64)
    mx, my = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - mx, Y - my
    gram = Xc.T @ Xc
    lam = ridge * max(float(np.trace(gram)) / max(gram.shape[0], 1), 1e-12)
    W = np.linalg.solve(gram + lam * np.eye(gram.shape[0]), Xc.T @ Yc)
    b = my - mx @ W
    return W.astype(np.float32), b.astype(np.float32)


def _fit_scores(pred: np.ndarray, targets: np.ndarray) -> dict:
    ss_res = float(((targets - pred) ** 2).sum())
    ss_tot = float(((targets - targets.mean(axis=0)) ** 2).sum())
    p = pred / np.maximum(np.linalg.norm(pred, axis=1, keepdims=True), NORM_EPS)
    t = targets / np.maximum(np.linalg.norm(targets, axis=1, keepdims=True), NORM_EPS)
    return {"fit_r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0, "fit_mean_cosine": float((p * t).sum(axis=1).mean())}


SIF_A = 1e-4  # model2vec's default SIF coefficient, for the counted weights too


def counted_sif(student: StaticStudent, texts: Sequence[str], a: float = SIF_A) -> np.ndarray:
    """SIF weights a / (a + p) with p each word piece's share of the pieces of `texts` (add-one smoothed, so a piece
    the texts never use weighs as the rarest)."""
    counts = np.ones(len(student.embedding), dtype=np.float64)
    for row in student.token_ids(texts):
        np.add.at(counts, np.asarray(row, dtype=np.int64), 1.0)
    return (a / (a + counts / counts.sum())).astype(np.float32)


def _train_model2vec(model, texts: list[str], targets: np.ndarray, seed: int, weights: np.ndarray | None):
    """model2vec's StaticModelForSimilarity on (text, teacher vector) pairs: the table, a weight per token (starting at
    `weights`, else 1) and a linear head to the teacher's width. Returns the trained StaticModel (weights folded into
    the table) and the head as (W, b)."""
    import torch
    from model2vec import StaticModel
    from model2vec.train import StaticModelForSimilarity

    base = model
    if weights is not None:
        base = StaticModel(vectors=np.asarray(model.embedding, np.float32), tokenizer=model.tokenizer, weights=weights,
                           normalize=model.normalize, max_length=model.max_length)
    # normalize=False: the head reads the plain weighted mean, as StaticStudent.project does (the loss is a cosine)
    trainer = StaticModelForSimilarity.from_static_model(model=base, n_layers=0, normalize=False, freeze_weights=False)
    torch.manual_seed(seed)
    from functools import partialmethod

    from tqdm import tqdm

    init = tqdm.__init__
    tqdm.__init__ = partialmethod(init, disable=True)  # its per-step bars would flood the run's log
    try:
        trainer.fit(list(texts), torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32)), device="cpu",
                    random_seed=seed)
    finally:
        tqdm.__init__ = init
    head = trainer.head[0]
    W = head.weight.detach().cpu().numpy().T.astype(np.float32)
    b = head.bias.detach().cpu().numpy().astype(np.float32)
    return trainer.to_static_model(), (W, b)


def distill_static(teacher_dir: str, pca_dims: int | None, *, fit_texts: list[str] | None = None,
                   teacher_vectors: np.ndarray | None = None, ridge: float = 1e-2, device: str | None = None,
                   quantize_to: str = "float32", fit: str = "map", weights: str = "zipf", seed: int = 42) -> StaticStudent:
    """Distil a static student from a local teacher with model2vec; fit a map to the teacher's space if given texts.

    `teacher_vectors` are the teacher's pooled, normalised vectors of `fit_texts` ([n, D_teacher]). model2vec stores
    its table in float16 by default; we keep float32 (sentence-transformers' own from_distillation does too) so the
    exported graph and model2vec agree to float32 rounding. fit / weights: the recipe's student.static_fit and
    student.static_weights (compress.recipe.StudentConfig).
    """
    import model2vec
    from model2vec.distill import distill

    if (fit_texts is None) != (teacher_vectors is None):
        raise ValueError("fit_texts and teacher_vectors go together: pass both or neither")
    if teacher_vectors is not None and (teacher_vectors.ndim != 2 or len(teacher_vectors) != len(fit_texts)):
        raise ValueError(f"teacher_vectors must be [len(fit_texts)={len(fit_texts)}, D], got {teacher_vectors.shape}")
    start = time.perf_counter()
    info(f"static: model2vec {model2vec.__version__} distils {teacher_dir} (pca_dims={pca_dims})")
    # A local directory: distill loads it with AutoModel/AutoTokenizer and skips the hub look-up (os.path.exists).
    if fit_texts is None and (fit == "trained" or weights == "counts"):
        raise ValueError(f"static fit '{fit}' with weights '{weights}' needs fit_texts and teacher_vectors")
    # counted weights replace the Zipf ones: the table comes without any
    model = distill(model_name=str(teacher_dir), pca_dims=pca_dims, device=device, quantize_to=quantize_to,
                    sif_coefficient=None if weights == "counts" else SIF_A)
    seconds = time.perf_counter() - start
    metadata = {"pca_dims": pca_dims, "vocab_size": int(len(model.tokens)), "model2vec_version": model2vec.__version__,
                "teacher": Path(str(teacher_dir)).name, "sif_coefficient": model.config.get("sif_coefficient"),
                "distill_seconds": round(seconds, 2), "fit": fit, "weights": weights}
    student = _from_model2vec(model, metadata)
    head = None
    if weights == "counts" or fit == "trained":
        sif = counted_sif(student, fit_texts) if weights == "counts" else None
        if fit == "trained":
            t0 = time.perf_counter()
            model, head = _train_model2vec(model, fit_texts, np.asarray(teacher_vectors, np.float32), seed, sif)
            metadata["train_seconds"] = round(time.perf_counter() - t0, 1)
            info(f"static: model2vec's trainer fitted the table, token weights and a map on {len(fit_texts)} texts "
                 f"({metadata['train_seconds']:.0f} s)")
        else:
            model.embedding = np.asarray(model.embedding, np.float32) * sif[:, None]
        student = _from_model2vec(model, metadata)
    # model2vec's encode semantics are read, not imported: check they still hold for this version before going on.
    gap = model2vec_gap(student, model, _PROBES + list(fit_texts or [])[:64])
    if gap > 1e-5:
        raise RuntimeError(f"static student differs from model2vec's StaticModel.encode by {gap:.2e}: "
                           f"model2vec {model2vec.__version__} changed its tokenisation or pooling")
    if student.unk_token_id is not None:
        student.embedding[student.unk_token_id] = 0.0  # never read by encode; zero so sentence-transformers agrees
    student.metadata.update({"table_shape": list(student.embedding.shape), "model2vec_gap": gap})
    if fit_texts is not None:
        means = student.mean_vectors(fit_texts)
        targets = np.asarray(teacher_vectors, dtype=np.float32)
        student.W, student.b = head if head is not None else fit_linear_map(means, targets, ridge)
        student.normalize = True  # the teacher's vectors are normalised, so the mapped ones are too
        scores = _fit_scores(means @ student.W + student.b, targets)
        student.metadata.update({"ridge": None if head is not None else ridge, "fit_texts": len(fit_texts),
                                 "teacher_dim": int(targets.shape[1]), **{k: round(v, 6) for k, v in scores.items()}})
        info(f"static: map {student.W.shape[0]} -> {student.W.shape[1]} fitted on {len(fit_texts)} texts "
             f"(R² {scores['fit_r2']:.3f}, mean cosine {scores['fit_mean_cosine']:.3f})")
    info(f"static: table {student.embedding.shape[0]} x {student.embedding.shape[1]} in {seconds:.1f} s")
    return student


def save_static(student: StaticStudent, directory: Path) -> Path:
    """A sentence-transformers folder (StaticEmbedding [+ Dense] [+ Normalize]), model2vec/ and static_student.json."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, StaticEmbedding

    directory = Path(directory)
    modules = [StaticEmbedding(student.tokenizer, embedding_weights=torch.from_numpy(student.embedding.copy()))]
    if student.W is not None:
        d, D = student.W.shape
        bias = torch.from_numpy(student.b.copy()) if student.b is not None else None
        modules.append(Dense(d, D, bias=bias is not None, activation_function=None,
                             init_weight=torch.from_numpy(np.ascontiguousarray(student.W.T)), init_bias=bias))
    if student.normalize:
        modules.append(Normalize())
    SentenceTransformer(modules=modules, device="cpu").save(str(directory))
    if student.W is None:  # model2vec has no map: only the plain student is also a model2vec model
        student.to_model2vec().save_pretrained(directory / MODEL2VEC_DIR)
    fields = {"format": "bert-compress static student", "version": 1, "unk_token_id": student.unk_token_id,
              "pad_token_id": student.pad_token_id, "normalize": student.normalize,
              "add_special_tokens": student.add_special_tokens, "max_length": student.max_length,
              "median_token_length": student.median_token_length, "has_map": student.W is not None,
              "metadata": student.metadata}
    (directory / STUDENT_FILE).write_text(json.dumps(fields, indent=2) + "\n", encoding="utf-8")
    return directory


def load_static(directory: Path) -> StaticStudent:
    """Read a save_static folder without torch (safetensors + tokenizers)."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    directory = Path(directory)
    fields = json.loads((directory / STUDENT_FILE).read_text(encoding="utf-8"))
    modules = json.loads((directory / "modules.json").read_text(encoding="utf-8"))
    table = load_file(str(directory / "model.safetensors"))["embedding.weight"].astype(np.float32)
    W = b = None
    for m in modules:
        if m["type"].endswith("Dense"):
            tensors = load_file(str(directory / m["path"] / "model.safetensors"))
            W = np.ascontiguousarray(tensors["linear.weight"].T, dtype=np.float32)
            b = tensors["linear.bias"].astype(np.float32) if "linear.bias" in tensors else None
    tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tok.no_padding()
    if fields["max_length"] is not None:
        tok.enable_truncation(fields["max_length"])
    return StaticStudent(embedding=table, tokenizer=tok, unk_token_id=fields["unk_token_id"],
                         pad_token_id=fields["pad_token_id"], normalize=fields["normalize"], W=W, b=b,
                         add_special_tokens=fields["add_special_tokens"], max_length=fields["max_length"],
                         median_token_length=fields["median_token_length"], metadata=fields["metadata"])


def export_static_onnx(student: StaticStudent, path: Path) -> Path:
    """Gather, masked mean (attention_mask and != [UNK]), [MatMul + Add], [L2-normalise]; opset 18, no torch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f32 = TensorProto.FLOAT
    inits = [numpy_helper.from_array(student.embedding.astype(np.float32), "embedding"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
             numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis_last"),
             numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
             numpy_helper.from_array(np.array(NORM_EPS, dtype=np.float32), "eps")]
    nodes = [helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=f32)]
    mask = "mask_f"
    if student.unk_token_id is not None:  # model2vec drops [UNK]: mask it here so the device need not
        inits.append(numpy_helper.from_array(np.array(student.unk_token_id, dtype=np.int64), "unk_id"))
        nodes += [helper.make_node("Equal", ["input_ids", "unk_id"], ["is_unk"]),
                  helper.make_node("Not", ["is_unk"], ["not_unk"]),
                  helper.make_node("Cast", ["not_unk"], ["keep_f"], to=f32),
                  helper.make_node("Mul", ["mask_f", "keep_f"], ["keep"])]
        mask = "keep"
    nodes += [helper.make_node("Gather", ["embedding", "input_ids"], ["tokens"], axis=0),  # [B, S, d]
              helper.make_node("Unsqueeze", [mask, "axis_last"], ["mask3"]),  # [B, S, 1]
              helper.make_node("Mul", ["tokens", "mask3"], ["masked"]),
              helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),  # [B, d]
              helper.make_node("ReduceSum", [mask, "axis1"], ["count"], keepdims=1),  # [B, 1]
              # an empty row has count 0: divide by 1 instead, so its mean is zeros, not NaN
              helper.make_node("Max", ["count", "one"], ["count1"]),
              helper.make_node("Div", ["summed", "count1"], ["mean"])]
    x = "mean"
    if student.W is not None:
        inits.append(numpy_helper.from_array(student.W.astype(np.float32), "W"))
        nodes.append(helper.make_node("MatMul", [x, "W"], ["mapped"]))
        x = "mapped"
        if student.b is not None:
            inits.append(numpy_helper.from_array(student.b.astype(np.float32), "b"))
            nodes.append(helper.make_node("Add", [x, "b"], ["biased"]))
            x = "biased"
    if student.normalize:
        nodes += [helper.make_node("ReduceL2", [x, "axis_last"], ["norm"], keepdims=1),
                  helper.make_node("Max", ["norm", "eps"], ["norm1"]),
                  helper.make_node("Div", [x, "norm1"], ["normalised"])]
        x = "normalised"
    nodes.append(helper.make_node("Identity", [x], ["sentence_embedding"]))
    graph = helper.make_graph(
        nodes, "static_embedding",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("sentence_embedding", f32, ["batch", student.dim])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="bert-compress")
    model.ir_version = 8  # readable by onnxruntime releases older than the onnx package
    for key, value in {"add_special_tokens": str(student.add_special_tokens).lower(),
                       "unk_token_id": "" if student.unk_token_id is None else str(student.unk_token_id),
                       "pad_token_id": str(student.pad_token_id), "normalize": str(student.normalize).lower(),
                       "max_length": "" if student.max_length is None else str(student.max_length),
                       "max_chars": "" if student.max_chars is None else str(student.max_chars)}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
