"""Tags onto word pieces: the first piece of each word carries the word's tag; the other pieces, the special tokens
and the padding carry IGNORE (not trained on, not scored), as Hugging Face's token-classification examples do."""

from __future__ import annotations

import numpy as np

IGNORE = -100


def encode_words(tokenizer, examples, max_length: int) -> tuple[dict[str, list[list[int]]], np.ndarray]:
    """The tokenizer's features and [rows, max_length] tag ids, IGNORE where no tag applies (compress.data.batching
    makes them an Encoded). The ids are those of the words joined by spaces (a device reads that text); words cut
    off by max_length lose their tags."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("token classification needs a fast (Rust) tokenizer for word alignment")
    enc = tokenizer([list(e.words) for e in examples], is_split_into_words=True, truncation=True, max_length=max_length)
    labels = np.full((len(examples), max_length), IGNORE, dtype=np.int64)
    for r, e in enumerate(examples):
        seen = set()
        for k, w in enumerate(enc.word_ids(r)):
            if w is not None and w not in seen:
                seen.add(w)
                labels[r, k] = e.tags[w]
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in enc]
    return {n: list(enc[n]) for n in names}, labels


def first_piece_mask(labels: np.ndarray) -> np.ndarray:
    return labels != IGNORE
