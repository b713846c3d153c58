"""Tokenise once, then batch with dynamic padding (each batch padded to its own longest row).

Training batches are length-grouped: shuffle, sort within windows of 50 batches, shuffle the batches. That
keeps randomness while padding little (Rotten Tomatoes snippets are 27 tokens on average, 72 at most).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from compress.data.readers import Example


@dataclass
class Encoded:
    features: dict[str, list[list[int]]]  # input_ids, attention_mask, token_type_ids (what the tokenizer gives)
    labels: np.ndarray
    pad_id: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.features["input_ids"]]


def encode(tokenizer, examples: list[Example], max_length: int) -> Encoded:
    if examples and getattr(examples[0], "words", None) is not None:  # token classification: a tag per word
        from compress.token_classification.align import encode_words

        features, tags = encode_words(tokenizer, examples, max_length)
        return Encoded(features, tags, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples] if examples and examples[0].text_pair is not None else None
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in enc]
    return Encoded(
        features={n: list(enc[n]) for n in names},
        labels=np.array([e.label for e in examples], dtype=np.int64),
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
    )


def subset(enc: Encoded, idx: list[int]) -> Encoded:
    return Encoded({n: [rows[i] for i in idx] for n, rows in enc.features.items()}, enc.labels[idx], enc.pad_id)


def fingerprint(enc: Encoded) -> str:
    """Hash of the token ids and labels: what a model sees of this split (tokenizer and max_length included)."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(enc.features):
        h.update(name.encode())
        for row in enc.features[name]:
            h.update(np.asarray(row, dtype=np.int32).tobytes() + b"|")
    h.update(enc.labels.tobytes())
    return h.hexdigest()


def collate(enc: Encoded, idx: list[int], pad_to: int | None = None) -> dict[str, torch.Tensor]:
    width = pad_to or max(len(enc.features["input_ids"][i]) for i in idx)
    batch = {}
    for name, rows in enc.features.items():
        fill = enc.pad_id if name == "input_ids" else 0
        arr = np.full((len(idx), width), fill, dtype=np.int64)
        for r, i in enumerate(idx):
            row = rows[i][:width]
            arr[r, : len(row)] = row
        batch[name] = torch.from_numpy(arr)
    labels = enc.labels[idx]
    if labels.ndim == 2 and labels.dtype == np.int64:  # a tag per token (compress.token_classification.align): cut to the batch
        from compress.token_classification.align import IGNORE

        cut = np.full((len(idx), width), IGNORE, dtype=np.int64)
        cut[:, : min(width, labels.shape[1])] = labels[:, :width]
        labels = cut
    batch["labels"] = torch.from_numpy(np.ascontiguousarray(labels))
    return batch


def train_batches(enc: Encoded, batch_size: int, seed: int, epoch: int, rows: list[int] | None = None) -> list[list[int]]:
    """One pass's batches of `rows` (default: every row), a pure function of seed and epoch."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(enc))) if rows is None else list(rows)
    rng.shuffle(order)
    lengths = enc.lengths
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def eval_batches(enc: Encoded, batch_size: int) -> list[list[int]]:
    """Sorted by length for speed; callers put results back by index."""
    lengths = enc.lengths  # a list built per call: once, not once per row
    order = sorted(range(len(enc)), key=lengths.__getitem__)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def iterate(enc: Encoded, batches: list[list[int]]) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    for idx in batches:
        yield idx, collate(enc, idx)
