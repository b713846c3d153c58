"""Text for an embedding model: any text, no labels needed.

- default: every vendored text: the Rotten Tomatoes snippets (train / dev / test as shipped) and the plot summaries
  not held out for the retrieval evaluation (those join train).
Training also sees each sentence of every multi-sentence training text on its own (the teacher gives its vector
too): queries are short, documents long.
- a .txt file (one text per line), or a .jsonl / .csv / .tsv file with a text column: split 80/10/10, seeded.
- a directory with train (and optionally dev / test) files in those formats.
A label column, when there is one, is kept for the linear-probe evaluation only (no loss reads labels).
"""

from __future__ import annotations

import random
from pathlib import Path

from compress.data.config import DataConfig
from compress.data.readers import FORMATS, SPLIT_NAMES, Example, TaskData, default_data_dir, read_lines, read_rows
from compress.errors import UserError

TEXT_FORMATS = (".txt", *FORMATS)


def _read(path: Path, cfg: DataConfig) -> list[tuple[str, str | None]]:
    """(text, label or None) rows of one file; one clear error for an empty file or a missing text column."""
    if not path.is_file():
        raise UserError(f"data file {path} does not exist")
    if path.suffix.lower() not in TEXT_FORMATS:
        raise UserError(f"{path}: unsupported file type '{path.suffix}'; use one of {', '.join(TEXT_FORMATS)}")
    if path.suffix.lower() == ".txt":
        rows = [(line, None) for line in read_lines(path)]
    else:
        raw = read_rows(path)
        if raw and not any(cfg.text_column in r for r in raw):
            columns = sorted({k for r in raw for k in r})
            raise UserError(f"{path}: no text column '{cfg.text_column}'; columns found: {', '.join(map(str, columns))} "
                            "(set data.text_column in the recipe)")
        rows = []
        for r in raw:
            text = str(r.get(cfg.text_column) or "").strip()
            if text:
                label = r.get(cfg.label_column)
                rows.append((text, None if label in (None, "") else str(label).strip()))
    if not rows:
        raise UserError(f"data file {path} holds no text: an embedding model needs at least a few hundred texts")
    return rows


def _sentences_of(rows: list[tuple[str, str | None]]) -> list[tuple[str, None]]:
    """Each sentence (4 words or more) of every multi-sentence training text, as a text of its own: the teacher gives
    its vector too, and short queries against long documents are what search on a device sends."""
    from compress.data.sentences import split_sentences

    seen = {t for t, _ in rows}
    out = []
    for text, _ in rows:
        parts = split_sentences(text)
        for sentence in parts if len(parts) > 1 else []:
            if len(sentence.split()) >= 4 and sentence not in seen:
                seen.add(sentence)
                out.append((sentence, None))
    return out


def _examples(rows: list[tuple[str, str | None]], names: list[str], cap: int | None) -> list[Example]:
    index = {n: i for i, n in enumerate(names)}
    rows = rows[:cap] if cap else rows
    return [Example(text=t, label=index.get(lab, -1) if lab is not None else -1) for t, lab in rows]


def load_texts(cfg: DataConfig) -> TaskData:
    from compress.embedding.evaluate import distillation_passages

    notes: list[str] = []
    if cfg.path == "default":
        root = default_data_dir()
        raw = {s: _read(root / f"{s}.jsonl", cfg) for s in ("train", "dev", "test")}
        raw["train"] = raw["train"] + [(t, None) for t in distillation_passages()]
        source = "rotten_tomatoes (vendored): snippets and plot summaries"
    else:
        path = Path(cfg.path).expanduser()
        if not path.exists():
            raise UserError(f"data path {cfg.path} does not exist: give a text file (.txt, .jsonl, .csv, .tsv) or a "
                            "directory of train/dev/test files")
        if path.is_dir():
            raw = {}
            for split, names in SPLIT_NAMES.items():
                hits = [path / f"{n}{ext}" for n in names for ext in TEXT_FORMATS if (path / f"{n}{ext}").is_file()]
                if hits:
                    raw[split] = _read(hits[0], cfg)
            if "train" not in raw:
                raise UserError(f"{path} has no train file: name it train.txt, train.jsonl, train.csv or train.tsv")
            missing = [s for s in ("dev", "test") if s not in raw]
            if missing:
                rows = list(raw["train"])
                random.Random(cfg.split_seed).shuffle(rows)
                n = max(1, len(rows) // 10)
                for i, s in enumerate(missing):
                    raw[s] = rows[i * n:(i + 1) * n]
                raw["train"] = rows[len(missing) * n:]
                notes.append(f"no {' and no '.join(missing)} file: carved {', '.join(missing)} out of train (seed {cfg.split_seed})")
        else:
            rows = _read(path, cfg)
            random.Random(cfg.split_seed).shuffle(rows)
            n = max(1, len(rows) // 10)
            raw = {"dev": rows[:n], "test": rows[n:2 * n], "train": rows[2 * n:]}
            notes.append(f"one file: split 80/10/10 into train/dev/test (seed {cfg.split_seed})")
        source = str(path)
    for split in ("train", "dev", "test"):
        if not raw[split]:
            raise UserError(f"{cfg.path}: the {split} split is empty; give more text (a few hundred lines at least)")
    raw["train"] += _sentences_of(raw["train"])
    # label names, for the probe only: those of train, sorted (an embedding task itself has no labels)
    names = sorted({lab for lab in (lab for _, lab in raw["train"]) if lab is not None})
    return TaskData(labels=[], train=_examples(raw["train"], names, cfg.max_train),
                    dev=_examples(raw["dev"], names, cfg.max_eval), test=_examples(raw["test"], names, cfg.max_eval),
                    source=source, notes=notes, probe_labels=names)


MIN_RETRIEVAL_PAIRS = 20


def suite_for(data: TaskData, data_path: str, seed: int, quick: bool):
    """The evaluation suite of an embedding run (compress.embedding.evaluate): fidelity on the test split; retrieval on
    inverse-cloze pairs (vendored data: the plot summaries held out of training; other data: the test split's
    multi-sentence texts); the linear probe when the data has labels (vendored: sentiment)."""
    from compress.embedding.evaluate import EvalSuite, ProbeSet, build_retrieval_set, retrieval_passages

    passages = retrieval_passages() if data_path == "default" else [e.text for e in data.test]
    retrieval = build_retrieval_set(passages, seed, max_pairs=200 if quick else 500)
    retrieval = retrieval if len(retrieval) >= MIN_RETRIEVAL_PAIRS else None
    probe = None
    labelled_train = [e for e in data.train if e.label >= 0]
    labelled_test = [e for e in data.test if e.label >= 0]
    if len(data.probe_labels) >= 2 and labelled_train and labelled_test:
        rows = sorted(random.Random(seed).sample(range(len(labelled_train)), min(500 if quick else 2000, len(labelled_train))))
        probe = ProbeSet(train_texts=[labelled_train[i].text for i in rows], train_labels=[labelled_train[i].label for i in rows],
                         test_texts=[e.text for e in labelled_test], test_labels=[e.label for e in labelled_test],
                         label_names=list(data.probe_labels))
    return EvalSuite(held_out=[e.text for e in data.test], retrieval=retrieval, probe=probe)
