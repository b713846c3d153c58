"""Entity-aware augmentation of tagged sentences (Dai & Adel, COLING 2020, "An Analysis of Simple Data Augmentation
for Named Entity Recognition"): new sentences from the training set's own words and mentions, which help most when
the training set is small.

- `mention`: each entity mention is replaced, with probability p, by another mention of the same type from the
  training set (it may have another number of words);
- `token`: each word is replaced, with probability p, by a word the training set tags with the same tag
  (label-wise token replacement: B-person for a B-person word, O for an O word);
- `shuffle`: the sentence is cut into segments of one type (a mention, a run of O words) and the words of each
  segment are shuffled with probability p.

Variant k of every sentence uses operation k mod the number of operations. The distiller relabels the variants with
the teacher's soft tags (they are transfer rows: no gold-tag loss reads them), so a replacement that makes a wrong
sentence costs nothing but a step. Seeded: the same sentences, settings and seed give the same variants.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

OPERATIONS = ("mention", "token", "shuffle")


def segments(tags: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, type) of each run of one type: an entity mention (BIO / IOB2: B- starts one, I- of the same type
    continues it) or a run of O words (type 'O')."""
    out: list[tuple[int, int, str]] = []
    for i, tag in enumerate(tags):
        kind = tag[2:] if tag[:2] in ("B-", "I-") else "O"
        starts = tag.startswith("B-") or not out or out[-1][2] != kind
        if starts:
            out.append((i, i + 1, kind))
        else:
            out[-1] = (out[-1][0], i + 1, kind)
    return out


class EntityAugmenter:
    def __init__(self, sentences: list[tuple[tuple[str, ...], tuple[int, ...]]], labels: list[str], p: float, seed: int):
        """sentences: (words, tag ids) of the training set; labels: the tag names of the ids."""
        self.sentences, self.labels, self.p, self.seed = sentences, labels, p, seed
        mentions: dict[str, dict[tuple[str, ...], None]] = defaultdict(dict)
        words: dict[int, dict[str, None]] = defaultdict(dict)
        for w, t in sentences:
            for start, end, kind in segments([labels[i] for i in t]):
                if kind != "O":
                    mentions[kind][tuple(w[start:end])] = None
            for word, tag in zip(w, t):
                words[tag][word] = None
        # sorted: the same training set gives the same choices whatever order its sentences came in
        self.mentions = {k: sorted(v) for k, v in mentions.items()}
        self.words = {k: sorted(v) for k, v in words.items()}

    @property
    def entity_count(self) -> int:
        return sum(len(v) for v in self.mentions.values())

    def variant(self, words: tuple[str, ...], tags: tuple[int, ...], operation: str, rng) -> tuple[str, ...]:
        if operation == "token":
            return tuple(self.words[t][rng.integers(len(self.words[t]))] if rng.random() < self.p else w
                         for w, t in zip(words, tags))
        out: list[str] = []
        for start, end, kind in segments([self.labels[i] for i in tags]):
            piece = list(words[start:end])
            if operation == "mention" and kind != "O" and rng.random() < self.p:
                options = self.mentions[kind]
                piece = list(options[rng.integers(len(options))])
            elif operation == "shuffle" and len(piece) > 1 and rng.random() < self.p:
                piece = [piece[i] for i in rng.permutation(len(piece))]
            out += piece
        return tuple(out)

    def variants(self, copies: int, operations: list[str]) -> list[list[tuple[str, ...] | None]]:
        """[copy][row]: the words of variant `copy` of every training sentence, None where it came out unchanged (no
        mention to replace, a coin that never fell)."""
        out = []
        for copy in range(copies):
            rng = np.random.default_rng([self.seed, copy])
            operation = operations[copy % len(operations)]
            made = [self.variant(w, t, operation, rng) for w, t in self.sentences]
            out.append([new if new != w else None for new, (w, _) in zip(made, self.sentences)])
        return out
