"""The teacher's outputs, computed once per data set and read back each step instead of running the teacher.

The teacher is frozen and in eval mode and the batches are not augmented, so its outputs for a row are the same
in every epoch and stage. A cache keeps exactly what the losses read (compress.distill.losses.teacher_reads):
the logits (float32), and only the hidden-state, attention-score and query/key/value layers that the losses
name, each row at its own length without padding (float16 by default). Rows are found through offsets, and the arrays are
.npy files read through memory maps, so a cache larger than RAM works too.

Under torchrun rank 0 lays the files out, every process fills the rows of its share of the batches, and rank 0
marks the cache complete (`meta.json`, written last): an interrupted build is never mistaken for a finished one.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from compress import distributed
from compress.data.batching import Encoded, eval_batches, iterate
from compress.errors import UserError
from compress.progress import info, track

CACHE_VERSION = 2  # 2: sentence vectors in the cache's dtype (were float32)
META = "meta.json"
FP16_MAX = 65504.0


@dataclass(frozen=True)
class CachePlan:
    """What to keep: logits, hidden-state indices (0 = embeddings, L = last layer), attention layers (1..L)."""

    logits: bool
    hidden: tuple[int, ...]
    attention: tuple[int, ...]
    sentence_embedding: bool = False  # the pooled vectors of an embedding teacher (in the cache's dtype)
    qkv: tuple[int, ...] = ()  # layers (1..L) whose query, key and value vectors are kept (MiniLM relations)

    @classmethod
    def from_meta(cls, meta: dict) -> "CachePlan":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["plan"].items()})

    def covers(self, other: "CachePlan") -> bool:
        return ((self.logits or not other.logits) and (self.sentence_embedding or not other.sentence_embedding)
                and set(other.hidden) <= set(self.hidden) and set(other.attention) <= set(self.attention)
                and set(other.qkv) <= set(self.qkv))

    def __str__(self) -> str:
        parts = (["logits"] if self.logits else []) + (["sentence embeddings"] if self.sentence_embedding else []) \
            + ([f"hidden states {list(self.hidden)}"] if self.hidden else []) \
            + ([f"attention scores of layers {list(self.attention)}"] if self.attention else []) \
            + ([f"query/key/value of layers {list(self.qkv)}"] if self.qkv else [])
        return ", ".join(parts) or "nothing"


def plan_for(losses, layer_map: list[tuple[int, int]], teacher_layers: int) -> CachePlan:
    """The union of what the given CombinedLosses read from the teacher."""
    from compress.distill.losses.base import teacher_reads

    logits, vectors, hidden, attention, qkv = False, False, set(), set(), set()
    for loss in losses:
        for spec, _, _ in loss.terms:
            reads = teacher_reads(spec, layer_map, teacher_layers)
            logits |= bool(reads.get("logits"))
            vectors |= bool(reads.get("sentence_embedding"))
            hidden |= reads.get("hidden_states", set())
            attention |= reads.get("attention_scores", set())
            qkv |= reads.get("qkv", set())
    return CachePlan(logits, tuple(sorted(hidden)), tuple(sorted(attention)), vectors, tuple(sorted(qkv)))


def estimate_bytes(enc: Encoded, plan: CachePlan, hidden_size: int, heads: int, dtype: str) -> int:
    item = np.dtype(dtype).itemsize
    lengths = np.asarray(enc.lengths, dtype=np.int64)
    return int(len(enc) * 4 * 64 + lengths.sum() * (len(plan.hidden) + 3 * len(plan.qkv)) * hidden_size * item
               + (lengths ** 2).sum() * len(plan.attention) * heads * item)


def _offsets(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each row starts in the hidden-state file (tokens) and in the attention file ((query, key) pairs)."""
    lengths = lengths.astype(np.int64)
    return np.concatenate([[0], np.cumsum(lengths)]), np.concatenate([[0], np.cumsum(lengths ** 2)])


class TeacherCache:
    """Read side: `outputs(batch)` gives the teacher's Outputs for a batch's rows, padded to the batch's width."""

    def __init__(self, path: Path, meta: dict):
        self.path, self.meta = path, meta
        self.plan = CachePlan.from_meta(meta)
        self.layers = meta["teacher_layers"]
        self.lengths = np.load(path / "lengths.npy")
        self.token_offsets, self.pair_offsets = _offsets(self.lengths)
        self.logits = np.load(path / "logits.npy") if self.plan.logits else None
        self.token_logits = bool(meta.get("token_logits"))  # a token classifier's: one row per token, like hidden
        self.vectors = np.load(path / "sentence_embedding.npy") if self.plan.sentence_embedding else None
        self.hidden = np.load(path / "hidden.npy", mmap_mode="r") if self.plan.hidden else None
        self.attention = np.load(path / "attention.npy", mmap_mode="r") if self.plan.attention else None
        self.qkv = np.load(path / "qkv.npy", mmap_mode="r") if self.plan.qkv else None

    def outputs(self, batch: dict[str, torch.Tensor]):
        from compress.distill.distiller import Outputs

        rows = batch["index"].cpu().numpy()
        device = batch["input_ids"].device
        b, s = batch["input_ids"].shape
        logits = None
        if self.logits is not None and self.token_logits:
            z = np.zeros((b, s, self.logits.shape[-1]), dtype=np.float32)
            for r, i in enumerate(rows):
                n = self.lengths[i]
                z[r, :n] = self.logits[self.token_offsets[i]:self.token_offsets[i] + n]
            logits = torch.from_numpy(z).to(device)
        elif self.logits is not None:
            logits = torch.from_numpy(self.logits[rows]).to(device)
        vectors = torch.from_numpy(self.vectors[rows].astype(np.float32)).to(device) if self.vectors is not None else None
        hidden = None
        if self.hidden is not None:
            h = np.zeros((len(self.plan.hidden), b, s, self.hidden.shape[-1]), dtype=np.float32)
            for r, i in enumerate(rows):
                n = self.lengths[i]
                h[:, r, :n] = self.hidden[self.token_offsets[i]:self.token_offsets[i] + n].transpose(1, 0, 2)
            h_t = torch.from_numpy(h).to(device)
            hidden = [None] * (self.layers + 1)
            for j, k in enumerate(self.plan.hidden):
                hidden[k] = h_t[j]
            hidden = tuple(hidden)
        scores = None
        if self.attention is not None:
            heads = self.attention.shape[-1]
            a = np.zeros((len(self.plan.attention), b, heads, s, s), dtype=np.float32)
            for r, i in enumerate(rows):
                n = self.lengths[i]
                block = self.attention[self.pair_offsets[i]:self.pair_offsets[i] + n * n].reshape(n, n, -1, heads)
                a[:, r, :, :n, :n] = block.transpose(2, 3, 0, 1)
            a_t = torch.from_numpy(a).to(device)
            scores = [None] * self.layers
            for j, t in enumerate(self.plan.attention):
                scores[t - 1] = a_t[j]
        qkv = None
        if self.qkv is not None:
            x = np.zeros((len(self.plan.qkv), 3, b, s, self.qkv.shape[-1]), dtype=np.float32)
            for r, i in enumerate(rows):
                n = self.lengths[i]
                x[:, :, r, :n] = self.qkv[self.token_offsets[i]:self.token_offsets[i] + n].transpose(1, 2, 0, 3)
            x_t = torch.from_numpy(x).to(device)
            qkv = [None] * self.layers
            for j, t in enumerate(self.plan.qkv):
                qkv[t - 1] = (x_t[j, 0], x_t[j, 1], x_t[j, 2])
        return Outputs(logits, hidden, scores, vectors, qkv)


def native_bf16(device) -> bool:
    """Whether `device` multiplies bf16 natively (so bf16 autocast is faster there, not slower)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def open_or_build(path: Path, distiller, enc: Encoded, plan: CachePlan, identity: dict, dtype: str,
                  shared: bool, name: str, batch_size: int = 64, precision: str = "fp32") -> TeacherCache:
    """The cache at `path` when it was made from the same teacher and data and holds what `plan` needs; else
    build it. shared: the user named the directory, so a cache there from other inputs is refused (exit 2)
    instead of being replaced."""
    meta_path = path / META
    problem = None
    meta = None
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = None
    if meta is not None and meta.get("complete") and meta.get("version") == CACHE_VERSION:
        cached = CachePlan.from_meta(meta)
        if meta["identity"].get("teacher") != identity["teacher"]:
            problem = "was built from another teacher (its weights differ)"
        elif meta["identity"].get("data") != identity["data"]:
            problem = "was built from other data (the tokenised rows differ)"
        elif not cached.covers(plan):
            problem = f"holds {cached} but this recipe's losses read {plan}"
        elif meta.get("dtype") != dtype:
            problem = f"stores {meta.get('dtype')}, not distill.teacher_cache.dtype {dtype}"
        elif meta.get("precision", "fp32") != precision:
            problem = f"holds a {meta.get('precision', 'fp32')} teacher's outputs, not {precision} (distill.teacher_cache.precision)"
        else:
            info(f"teacher cache '{name}': reusing {path} ({meta['bytes'] / 1e6:.0f} MB, {plan})")
            return TeacherCache(path, meta)
        if shared:
            raise UserError(f"teacher cache {path} {problem}: point distill.teacher_cache.path at another directory, "
                            "or delete it to rebuild it for this run")
        info(f"[yellow]note[/]: teacher cache {path} {problem}: rebuilding it")
    elif shared and path.is_dir() and any(path.iterdir()) and meta is None:
        raise UserError(f"distill.teacher_cache.path {path} is not empty and holds no teacher cache: "
                        "name an empty or new directory")
    return _build(path, distiller, enc, plan, identity, dtype, name, batch_size, precision)


def _build(path: Path, distiller, enc: Encoded, plan: CachePlan, identity: dict, dtype: str, name: str,
           batch_size: int, precision: str = "fp32") -> TeacherCache:
    world = distributed.world()
    t0 = time.perf_counter()
    teacher_cfg = distiller.teacher.config
    lengths = np.asarray(enc.lengths, dtype=np.int64)
    from compress.student.albert import is_token_classifier

    per_token = is_token_classifier(distiller.teacher)  # logits per token (also on untagged general-distillation text)
    shapes = {"hidden.npy": (int(lengths.sum()), len(plan.hidden), teacher_cfg.hidden_size),
              "attention.npy": (int((lengths ** 2).sum()), len(plan.attention), teacher_cfg.num_attention_heads),
              "qkv.npy": (int(lengths.sum()), len(plan.qkv), 3, teacher_cfg.hidden_size)}
    if world.is_main:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        np.save(path / "lengths.npy", lengths)
        if plan.logits:
            rows = int(lengths.sum()) if per_token else len(enc)
            np.lib.format.open_memmap(path / "logits.npy", "w+", np.float32, (rows, teacher_cfg.num_labels)).flush()
        if plan.sentence_embedding:
            # unit-scale vectors: float16 keeps them to 1e-3 (the cache's dtype, as the hidden states)
            np.lib.format.open_memmap(path / "sentence_embedding.npy", "w+", dtype, (len(enc), distiller.teacher.dim)).flush()
        if plan.hidden:
            np.lib.format.open_memmap(path / "hidden.npy", "w+", dtype, shapes["hidden.npy"]).flush()
        if plan.attention:
            np.lib.format.open_memmap(path / "attention.npy", "w+", dtype, shapes["attention.npy"]).flush()
        if plan.qkv:
            np.lib.format.open_memmap(path / "qkv.npy", "w+", dtype, shapes["qkv.npy"]).flush()
    distributed.barrier()
    # every rank fills its own batches' rows (disjoint ranges of the files rank 0 laid out)
    logits = np.load(path / "logits.npy", mmap_mode="r+") if plan.logits else None
    vectors = np.load(path / "sentence_embedding.npy", mmap_mode="r+") if plan.sentence_embedding else None
    hidden = np.load(path / "hidden.npy", mmap_mode="r+") if plan.hidden else None
    attention = np.load(path / "attention.npy", mmap_mode="r+") if plan.attention else None
    qkv = np.load(path / "qkv.npy", mmap_mode="r+") if plan.qkv else None
    token_offsets, pair_offsets = _offsets(lengths)
    needs = ({"hidden_states"} if plan.hidden else set()) | ({"attention_scores"} if plan.attention else set()) \
        | ({"qkv"} if plan.qkv else set())
    batches = eval_batches(enc, batch_size)[world.rank::world.size]
    device = next(distiller.teacher.parameters()).device
    overflow = False
    from compress.training import autocast

    for idx, batch in track(iterate(enc, batches), f"teacher cache '{name}': teacher outputs for {len(enc)} rows", len(batches)):
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device, precision):
            out = distiller.teacher_outputs(batch, needs)
        if logits is not None and per_token:
            z = out.logits.cpu().numpy()
            for r, i in enumerate(idx):
                logits[token_offsets[i]:token_offsets[i + 1]] = z[r, :lengths[i]]
        elif logits is not None:
            logits[idx] = out.logits.cpu().numpy()
        if vectors is not None:
            vectors[idx] = out.sentence_embedding.cpu().numpy()
        if hidden is not None:
            hs = torch.stack([out.hidden_states[k] for k in plan.hidden], dim=2).cpu().numpy()  # (B, S, layers, D)
            overflow |= bool(np.abs(hs).max() > FP16_MAX) and dtype == "float16"
            for r, i in enumerate(idx):
                hidden[token_offsets[i]:token_offsets[i + 1]] = hs[r, :lengths[i]]
        if attention is not None:
            sc = torch.stack([out.attention_scores[t - 1] for t in plan.attention], dim=1).cpu().numpy()  # (B, layers, heads, S, S)
            overflow |= bool(np.abs(sc).max() > FP16_MAX) and dtype == "float16"
            for r, i in enumerate(idx):
                n = lengths[i]
                attention[pair_offsets[i]:pair_offsets[i + 1]] = sc[r, :, :, :n, :n].transpose(2, 3, 0, 1).reshape(n * n, *sc.shape[1:3])
        if qkv is not None:
            x = torch.stack([torch.stack(out.qkv[t - 1], dim=0) for t in plan.qkv], dim=0).cpu().numpy()  # (layers, 3, B, S, A)
            overflow |= bool(np.abs(x).max() > FP16_MAX) and dtype == "float16"
            for r, i in enumerate(idx):
                qkv[token_offsets[i]:token_offsets[i + 1]] = x[:, :, r, :lengths[i]].transpose(2, 0, 1, 3)
    for arr in (logits, vectors, hidden, attention, qkv):
        if arr is not None:
            arr.flush()
    del logits, vectors, hidden, attention, qkv
    overflow = bool(distributed.all_reduce_sum(torch.tensor([float(overflow)]))[0])
    if overflow:
        raise UserError("the teacher's outputs exceed float16's range (65504): set distill.teacher_cache.dtype to float32")
    meta = {"version": CACHE_VERSION, "complete": True, "identity": identity, "plan": asdict(plan), "dtype": dtype,
            "teacher_layers": teacher_cfg.num_hidden_layers, "rows": len(enc), "token_logits": per_token, "precision": precision,
            "build_seconds": round(time.perf_counter() - t0, 2), "processes": world.size}
    distributed.barrier()
    if world.is_main:
        meta["bytes"] = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        (path / META).write_text(json.dumps(meta, indent=2))
    distributed.barrier()
    meta = json.loads((path / META).read_text())
    info(f"teacher cache '{name}': {len(enc)} rows, {plan}, {meta['bytes'] / 1e6:.0f} MB in {meta['build_seconds']:.0f} s "
         f"({precision} teacher; {path})")
    return TeacherCache(path, meta)
