"""Entities from a token classifier's outputs, with character spans in the text (numpy only, no torch).

The model gives a tag score per word piece; a word's tag comes from its pieces by one of Hugging Face's
token-classification pipeline strategies (the names are theirs):
- first: the tag of the word's first piece (what the model was trained on: only first pieces carry tags);
- average: the tag with the highest probability averaged over the word's pieces;
- max: the tag of the word's most confident piece.
Words are the tokenizer's (targets.tokenizer Encoding.word_ids: a run of letters and digits, or one punctuation
character). Tagged words become entities by BIO: B-TYPE starts one, I-TYPE continues one of that type (an I- after O
or after another type starts one, as conlleval reads it), O ends it. Each entity keeps the text between its first
word's start and its last word's end, and the mean of its words' scores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

AGGREGATIONS = ("first", "average", "max")


@dataclass
class Entity:
    entity_group: str
    score: float
    word: str
    start: int
    end: int

    def to_dict(self) -> dict:
        return asdict(self)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def word_tags(logits: np.ndarray, word_ids: list, labels: list[str], aggregation: str = "first"):
    """[(word index, token positions, tag, score)] for every word, in order."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation '{aggregation}': use {', '.join(AGGREGATIONS)}")
    probs = _softmax(np.asarray(logits, dtype=np.float64))
    words: dict[int, list[int]] = {}
    for k, w in enumerate(word_ids[:len(probs)]):
        if w is not None:
            words.setdefault(w, []).append(k)
    out = []
    for w, positions in words.items():
        p = probs[positions]
        if aggregation == "first":
            tag = int(p[0].argmax())
            score = float(p[0, tag])
        elif aggregation == "average":
            mean = p.mean(0)
            tag = int(mean.argmax())
            score = float(mean[tag])
        else:
            best = int(p.max(-1).argmax())
            tag = int(p[best].argmax())
            score = float(p[best, tag])
        out.append((w, positions, labels[tag], score))
    return out


def entities(text: str, logits: np.ndarray, offsets: list, word_ids: list, labels: list[str],
             aggregation: str = "first") -> list[Entity]:
    """The entities of one text: `logits` [tokens, tags] for its tokens (special ones included), `offsets` and
    `word_ids` from the tokenizer (targets.tokenizer.Encoding)."""
    found: list[Entity] = []
    current: dict | None = None

    def close():
        if current is not None:
            s, e = current["start"], current["end"]
            found.append(Entity(current["type"], float(np.mean(current["scores"])), text[s:e], s, e))

    for _, positions, tag, score in word_tags(logits, word_ids, labels, aggregation):
        start, end = offsets[positions[0]][0], offsets[positions[-1]][1]
        kind = tag[2:] if tag[:2] in ("B-", "I-") else None
        if kind is None:
            close()
            current = None
        elif tag.startswith("I-") and current is not None and current["type"] == kind:
            current["end"], current["scores"] = end, current["scores"] + [score]
        else:
            close()
            current = {"type": kind, "start": start, "end": end, "scores": [score]}
    close()
    return found
