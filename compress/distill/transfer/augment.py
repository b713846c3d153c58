"""TinyBERT-style data augmentation (Jiao et al. 2020, huawei-noah/Pretrained-Language-Model
`TinyBERT/data_augmentation.py`): each word of a text is replaced with probability p by one of its top-k neighbours
(compress.distill.transfer.neighbours), `copies` times per text. Words are runs of letters that are not part of a
contraction ("don't" stays); a replacement takes the original's case; punctuation and spacing are kept as they were.
Seeded: the same texts, sources and seed give the same variants.
"""

from __future__ import annotations

import re

import numpy as np

from compress.distill.transfer.neighbours import MaskedLM
from compress.progress import track

WORD = re.compile(r"(?<![\w'’])[^\W\d_]+(?![\w'’])")


def cased(replacement: str, original: str) -> str:
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


class Augmenter:
    def __init__(self, sources: list, p: float, top_k: int, seed: int):
        self.sources, self.p, self.top_k, self.seed = sources, p, top_k, seed
        self.static: dict[str, dict[str, list[str]]] = {}
        self._source_of: dict[str, object] = {}

    def prepare(self, texts: list[str]) -> dict[str, int]:
        """Look up the neighbours of every distinct word once; returns how many words each source covers."""
        words = sorted({m.group().lower() for t in texts for m in WORD.finditer(t)})
        left = list(words)
        covered = {}
        for source in self.sources:
            if source.contextual:
                continue
            found = source.neighbours(left, self.top_k)
            self.static[source.name] = found
            covered[source.name] = len(found)
            left = [w for w in left if w not in found]
        covered["none"] = len(left)
        return covered

    def _source(self, word: str):
        key = word.lower()
        if word not in self._source_of:
            self._source_of[word] = None
            for source in self.sources:
                if source.contextual and source.single_piece(word) or not source.contextual and key in self.static[source.name]:
                    self._source_of[word] = source
                    break
        return self._source_of[word]

    def variants(self, texts: list[str], copy: int) -> list[str]:
        """One variant of each text (variant number `copy`: another copy draws other words)."""
        rng = np.random.default_rng([self.seed, copy])
        out, contextual = [], []  # contextual: (row, spans to fill in context, text with them masked)
        for row, text in enumerate(texts):
            spans = [(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]
            chosen = rng.random(len(spans)) < self.p
            picks = rng.integers(0, self.top_k, len(spans))
            pieces, masked, at = [], [], 0
            to_fill = []
            for (start, end, word), take, pick in zip(spans, chosen, picks):
                source = self._source(word) if take else None
                if source is None:
                    continue
                if source.contextual:
                    to_fill.append((start, end, word, int(pick)))
                    continue
                options = self.static[source.name][word.lower()]
                pieces.append((start, end, cased(options[pick % len(options)], word)))
            if to_fill:
                mask = self.sources[[s.contextual for s in self.sources].index(True)].tokenizer.mask_token
                for start, end, _, _ in to_fill:
                    masked.append(text[at:start] + mask)
                    at = end
                masked.append(text[at:])
                contextual.append((row, to_fill, pieces, "".join(masked)))
            out.append((text, pieces))
        if contextual:
            mlm: MaskedLM = next(s for s in self.sources if s.contextual)
            filled = mlm.fill([c[3] for c in contextual], self.top_k)
            for (_, to_fill, pieces, _), predictions in zip(contextual, filled):
                for (start, end, word, pick), options in zip(to_fill, predictions):
                    if options:
                        pieces.append((start, end, cased(options[pick % len(options)], word)))
        return [_apply(text, pieces) for text, pieces in out]

    def all_variants(self, texts: list[str], copies: int, description: str) -> list[list[str]]:
        """[copy][row]: `copies` variants of every text."""
        return [self.variants(texts, c) for c in track(range(copies), description, copies)]


def _apply(text: str, pieces: list[tuple[int, int, str]]) -> str:
    out, at = [], 0
    for start, end, replacement in sorted(pieces):
        out.append(text[at:start] + replacement)
        at = end
    return "".join(out) + text[at:]
