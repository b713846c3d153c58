"""The transfer set: rows the teacher labels for task distillation beside the labelled ones, for every task.

- augmented variants of the labelled rows (compress.distill.transfer.augment, TinyBERT-style word replacement);
- unlabeled text (compress.data.unlabeled): the user's own (`--unlabeled`), the task data's `unlabeled` file, the
  default transfer set (Wikipedia lead extracts); cut into segments about as long as the task's texts.

Its rows are the task's unlabelled examples (`Task.unlabelled`): no hard-label loss reads them, the teacher's soft
outputs are their targets (cached like the labelled rows'). Segments that equal a dev or test text or sentence are
dropped, so nothing the student is scored on is distilled on.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from dataclasses import dataclass, field

from compress.data.sentences import split_sentences
from compress.data.text_sets import DEFAULT_SET, TEXT_SETS
from compress.data.unlabeled import data_unlabeled_file, read_texts
from compress.distill.transfer.config import AugmentConfig, TransferConfig  # noqa: F401 (the recipe names them)
from compress.errors import UserError
from compress.progress import info

MIN_SEGMENT_WORDS = 3


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def resolve_unlabeled(cfg: TransferConfig, data_path: str) -> tuple[list[str], list[str]]:
    """The unlabeled specs to read (`auto` expanded) and the notes on what `auto` left out."""
    return resolve_specs(cfg.unlabeled, data_path)


def resolve_specs(listed: list[str], data_path: str) -> tuple[list[str], list[str]]:
    """Text specs with `auto` expanded: `data` when the task data has an unlabeled file, the default transfer set
    when its package is installed (else a note says so)."""
    specs, notes = [], []
    for spec in listed:
        if spec != "auto":
            specs.append(spec)
            continue
        if data_unlabeled_file(data_path) is not None:
            specs.append("data")
        default = TEXT_SETS[DEFAULT_SET]
        if default.available():
            specs.append(DEFAULT_SET)
        else:
            notes.append(f"no default transfer set: {default.missing()}")
    return list(dict.fromkeys(specs)), notes


def check(cfg: TransferConfig, data_path: str) -> None:
    """Refuse what cannot work before OUT is touched (one line each): unreadable unlabeled text, a text set or
    augmentation source the recipe names whose package is missing."""
    specs, _ = resolve_unlabeled(cfg, data_path)
    for spec in specs:
        read_texts(spec, cfg.text_column, data_path)
    if cfg.augment.copies:
        from compress.distill.transfer.neighbours import GloVe

        names = set(cfg.augment.neighbours)
        if names == {"glove"} and GloVe.unavailable():  # the only source asked for (mlm is known once loaded)
            raise UserError(f"distill.transfer.augment.neighbours asks for {GloVe.unavailable()}")


def run_words(train: list) -> int:
    """How many words a sentence run may hold: about as many as the task's training texts (their median)."""
    return max(8, int(statistics.median(len(e.text.split()) for e in train))) if train else 32


def listed(data: str | list[str]) -> list[str]:
    """A recipe's text spec or list of them, as a list."""
    return [data] if isinstance(data, str) else list(data)


def segments(texts: list[str], words: int, mode: str) -> list[str]:
    """Texts cut into runs of whole sentences of at most `words` words (a longer sentence stands alone); mode texts:
    the texts as they are; both: the runs, then the texts that are longer than one run."""
    whole = [t for t in texts if len(t.split()) >= MIN_SEGMENT_WORDS]
    if mode == "texts":
        return whole
    if mode == "both":
        runs = segments(texts, words, "sentences")
        return runs + [t for t in whole if len(t.split()) > words]
    out = []
    for text in texts:
        run: list[str] = []
        for sentence in split_sentences(text):
            if run and len(" ".join(run + [sentence]).split()) > words:
                out.append(" ".join(run))
                run = []
            run.append(sentence)
        if run:
            out.append(" ".join(run))
    return [s for s in out if len(s.split()) >= MIN_SEGMENT_WORDS]


@dataclass
class TransferSet:
    examples: list
    """The task's unlabelled examples: augmented variants (copy by copy), then unlabeled segments."""
    blocks: list[list[int]] = field(default_factory=list)
    """per_epoch augmentation: the example indices of each epoch's variants (the unlabeled segments are in every epoch)."""
    record: dict = field(default_factory=dict)

    augmented: int = 0
    """How many of the examples are augmented variants (the first ones)."""

    def epoch_rows(self, labelled: int):
        """epoch -> the rows (of labelled + transfer examples) it trains on, or None when every epoch sees all."""
        if not self.blocks:
            return None
        base = list(range(labelled)) + [labelled + i for i in range(self.augmented, len(self.examples))]

        def rows(epoch: int) -> list[int]:
            return base + [labelled + i for i in self.blocks[(epoch - 1) % len(self.blocks)]]

        return rows


def build(cfg: TransferConfig, *, task, train: list, held_out: list[str], data_path: str, seed: int, teacher,
          tokenizer, checkpoint: str, passes: int = 1, labels: list[str] | None = None,
          max_length: int | None = None) -> TransferSet:
    """The transfer set of a run (see the module docstring). held_out: the texts the student is scored on.
    passes: with augment.per_epoch, how many epochs get their own variants. labels: the task's label names (entity
    augmentation reads the tags). max_length: rows longer are counted (the encoder cuts them there)."""
    t0 = time.perf_counter()
    record: dict = {"rows": {"labelled": len(train)}, "notes": [], "seconds": {}}
    pairs = bool(train) and getattr(train[0], "text_pair", None) is not None
    banned = {_norm(t) for text in held_out for t in [text, *split_sentences(text)]}
    examples, blocks, augmented = [], [], 0

    aug: AugmentConfig = cfg.augment
    if aug.copies:
        from compress.distill.transfer.augment import Augmenter
        from compress.distill.transfer.neighbours import open_sources

        sources, notes = open_sources(aug.neighbours, teacher=teacher, tokenizer=tokenizer, checkpoint=checkpoint,
                                      glove_words=aug.glove_words)
        record["notes"] += [f"augmentation source {n}" for n in notes]
        if not sources:
            raise UserError("distill.transfer.augment: none of its neighbour sources is available ("
                            + "; ".join(notes) + "): install one, or set augment.copies to 0")
        augmenter = Augmenter(sources, aug.p, aug.top_k, seed)
        texts = [e.text for e in train]
        second = [e.text_pair for e in train] if pairs else None
        covered = augmenter.prepare(texts + (second or []))
        n_sets = aug.copies * (passes if aug.per_epoch else 1)
        first = augmenter.all_variants(texts, n_sets, f"augmentation: {n_sets} variant(s) of {len(texts)} rows")
        seconds = augmenter.all_variants(second, n_sets, "augmentation: the second texts") if second else None
        for c in range(n_sets):
            if aug.per_epoch and c % aug.copies == 0:
                blocks.append([])
            for r, text in enumerate(first[c]):
                if _norm(text) in banned:
                    continue
                if aug.per_epoch:
                    blocks[-1].append(len(examples))
                examples.append(task.unlabelled_row(text, seconds[c][r] if seconds else None))
        augmented = len(examples)
        record["rows"]["augmented"] = augmented
        record["augment"] = {"copies": aug.copies, "p": aug.p, "top_k": aug.top_k, "per_epoch": aug.per_epoch,
                             "sets": n_sets, "sources": [s.name for s in sources], "words_per_source": covered}
        record["seconds"]["augment"] = round(time.perf_counter() - t0, 1)

    if cfg.entities.copies:  # after the per-epoch word variants: entity variants are in every epoch
        t1 = time.perf_counter()
        ent = cfg.entities
        made = task.entity_augmenter(train, labels or [], ent.p, seed).variants(ent.copies, ent.operations)
        before, unchanged = len(examples), 0
        for variants in made:
            for words in variants:
                if words is None or _norm(" ".join(words)) in banned:
                    unchanged += words is None
                    continue
                examples.append(task.unlabelled_row(" ".join(words), None))
        record["rows"]["entity_augmented"] = len(examples) - before
        record["entities"] = {"copies": ent.copies, "operations": list(ent.operations), "p": ent.p, "unchanged": unchanged}
        record["seconds"]["entities"] = round(time.perf_counter() - t1, 1)

    specs, notes = resolve_unlabeled(cfg, data_path)
    record["notes"] += notes
    for note in notes:
        info(f"[yellow]note[/]: {note}")
    if specs and pairs:
        note = "unlabeled text is not used: this task's rows are text pairs (augmentation still applies)"
        record["notes"].append(note)
        info(f"[yellow]note[/]: {note}")
        specs = []
    if specs:
        t1 = time.perf_counter()
        words = run_words(train)
        seen: set[str] = set()
        dropped = 0
        budget = cfg.max_unlabeled
        record["unlabeled"] = {}
        for spec in specs:
            pieces = segments(read_texts(spec, cfg.text_column, data_path), words, cfg.segment)
            random.Random(seed).shuffle(pieces)
            taken = 0
            for piece in pieces:
                if budget is not None and budget <= 0:
                    break
                key = _norm(piece)
                leaks = key in banned or any(_norm(s) in banned for s in split_sentences(piece))
                if leaks or key in seen:  # a dev / test text or sentence, or a segment taken already
                    dropped += leaks
                    seen.add(key)
                    continue
                seen.add(key)
                examples.append(task.unlabelled_row(piece, None))
                taken += 1
                budget = None if budget is None else budget - 1
            record["unlabeled"][spec] = taken
        record["rows"]["unlabeled"] = sum(record["unlabeled"].values())
        record["segment"] = {"mode": cfg.segment, "max_words": words}
        record["dropped_held_out"] = dropped
        record["seconds"]["unlabeled"] = round(time.perf_counter() - t1, 1)
    record["rows"]["total"] = len(train) + len(examples)
    if max_length is not None:
        record["truncated"] = truncated(tokenizer, [e.text for e in examples], max_length)
    return TransferSet(examples, blocks, record, augmented)


def general_rows(cfg, *, train: list, seed: int, tokenizer, max_length: int, data_path: str = "default") -> tuple[list, dict]:
    """General distillation's rows (the recipe's distill.general) and their record: the texts as they are, or (segment:
    sentences) runs of whole sentences about as long as the training texts, at most max_rows of them, taken in the
    order the sources are listed (a seeded sample of each)."""
    from compress.data.readers import UNLABELLED, Example

    specs, notes = resolve_specs(listed(cfg.data), data_path)
    for note in notes:
        info(f"[yellow]note[/]: general distillation: {note}")
    if cfg.segment == "texts":
        texts = [t for spec in specs for t in read_texts(spec, cfg.text_column, data_path)][:cfg.max_rows]
    else:
        words = run_words(train)
        pieces: list[str] = []
        for spec in specs:  # in order: --unlabeled's text first
            runs = segments(read_texts(spec, cfg.text_column, data_path), words, "sentences")
            random.Random(seed).shuffle(runs)
            pieces += runs
        texts = list(dict.fromkeys(pieces))[:cfg.max_rows]
    rows = [Example(text=t, label=UNLABELLED) for t in texts]
    record = {"rows": len(rows), "spec": cfg.data, "read": specs, "segment": cfg.segment, "notes": notes,
              "truncated": truncated(tokenizer, texts, max_length)}
    return rows, record


def truncated(tokenizer, texts: list[str], max_length: int) -> int:
    """How many texts are longer than max_length tokens (the encoder cuts them there, and the report counts them)."""
    n = 0
    for start in range(0, len(texts), 4096):
        n += sum(len(ids) > max_length for ids in tokenizer(texts[start:start + 4096], truncation=False, verbose=False)["input_ids"])
    if n:
        info(f"[yellow]note[/]: {n:,} of {len(texts):,} distillation texts are longer than {max_length} tokens: cut to "
             f"{max_length} (data.max_length), counted in the report")
    return n
