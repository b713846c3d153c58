"""Readers for the user's data: a directory of train/dev/test files, or one file that we split.

Formats: .csv, .tsv, .jsonl (one JSON object per line). Column names come from the recipe. Labels are
names (strings); their order is fixed once (recipe `labels`, else sorted train labels) and travels with
the model as id2label, so a label id means the same thing in every artifact.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from compress.errors import UserError
from compress.data.config import DataConfig

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}
SPLIT_NAMES = {"train": ("train",), "dev": ("dev", "validation", "valid", "val"), "test": ("test",)}


UNLABELLED = -1
"""The label of a row without one (unlabeled or augmented text the teacher labels): no hard-label loss reads it."""


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    text_pair: str | None = None


def unlabelled_example(text: str, text_pair: str | None = None) -> Example:
    return Example(text=text, label=UNLABELLED, text_pair=text_pair)


@dataclass
class TaskData:
    labels: list[str]
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    source: str
    notes: list[str] = field(default_factory=list)
    probe_labels: list[str] = field(default_factory=list)
    """Embedding data: the label names a label column held (row labels index them), for the linear probe only."""

    def split(self, name: str) -> list[Example]:
        return getattr(self, name)


def default_data_dir() -> Path:
    return Path(str(resources.files("compress") / "data" / "rotten_tomatoes"))


def read_lines(path: Path) -> list[str]:
    """The non-empty lines of a .txt file (one text per line), stripped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text: convert it to UTF-8") from None
    return [line.strip() for line in lines if line.strip()]


def read_rows(path: Path) -> list[dict]:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unsupported file type '{path.suffix}'; use one of {', '.join(FORMATS)}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text: convert it to UTF-8") from None
    if fmt == "jsonl":
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{i}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{i}: expected a JSON object per line, got {type(obj).__name__}")
            rows.append(obj)
        return rows
    reader = csv.DictReader(text.splitlines(), delimiter="\t" if fmt == "tsv" else ",")
    if reader.fieldnames is None:
        return []
    rows = list(reader)
    for i, row in enumerate(rows, 2):
        if None in row:
            raise UserError(f"{path}:{i}: more fields than the header has; check the delimiter and quoting")
    return rows


def _cell(row: dict, column: str, path: Path, line: int, required: bool) -> str | None:
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise UserError(f"{path}: row {line} has no value in column '{column}'; every row needs one")
        return None
    if isinstance(value, (dict, list)):
        raise UserError(f"{path}: row {line}, column '{column}' holds a {type(value).__name__}, expected text")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _parse(path: Path, cfg: DataConfig) -> list[tuple[str, str | None, str]]:
    if not path.is_file():
        raise UserError(f"data file {path} does not exist")
    rows = read_rows(path)
    if not rows:
        raise UserError(f"data file {path} is empty: it needs a header (CSV/TSV) and labelled rows")
    columns = list(rows[0].keys()) if not path.suffix.lower() == ".jsonl" else sorted({k for r in rows for k in r})
    wanted = [cfg.text_column, cfg.label_column] + ([cfg.text_pair_column] if cfg.text_pair_column else [])
    for col in wanted:
        if col not in columns:
            role = "label" if col == cfg.label_column else "text"
            raise UserError(
                f"{path}: no {role} column '{col}'; columns found: {', '.join(map(str, columns))} "
                f"(set data.{'label' if role == 'label' else 'text'}_column in the recipe)"
            )
    out = []
    for i, row in enumerate(rows, 1):
        text = _cell(row, cfg.text_column, path, i, required=True)
        pair = _cell(row, cfg.text_pair_column, path, i, required=True) if cfg.text_pair_column else None
        label = _cell(row, cfg.label_column, path, i, required=True)
        out.append((text, pair, label))
    return out


def _find_split_files(directory: Path, formats=FORMATS, names: str = "train.csv, train.tsv or train.jsonl") -> dict[str, Path]:
    """train (required), dev and test files of `directory` with one of `formats`' suffixes; `names`: the hint."""
    found: dict[str, Path] = {}
    for split, stems in SPLIT_NAMES.items():
        hits = [directory / f"{n}{ext}" for n in stems for ext in formats if (directory / f"{n}{ext}").is_file()]
        if len(hits) > 1:
            raise UserError(f"{directory}: several {split} files ({', '.join(h.name for h in hits)}); keep one")
        if hits:
            found[split] = hits[0]
    if "train" not in found:
        raise UserError(f"{directory} has no train file: name it {names} (dev/validation and test files are optional)")
    return found


def _stratified_split(rows: list, fractions: dict[str, float], seed: int) -> dict[str, list]:
    """Deterministic stratified split of rows (text, pair, label) into named parts by fraction.

    Rows are ordered so that every label is spread evenly (position within its shuffled label group,
    divided by the group's size), then cut into consecutive ranges: each range keeps the label mix.
    Every part after the first gets at least one row when there are enough rows.
    """
    rng = random.Random(seed)
    by_label: dict[str, list] = {}
    for row in rows:
        by_label.setdefault(row[2], []).append(row)
    keyed = []
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        keyed += [((i + 0.5) / len(group), label, row) for i, row in enumerate(group)]
    ordered = [row for _, _, row in sorted(keyed, key=lambda k: (k[0], k[1]))]
    names = list(fractions)
    sizes = {n: max(1, round(len(ordered) * fractions[n])) for n in names[1:]}
    sizes[names[0]] = len(ordered) - sum(sizes.values())
    parts, start = {}, 0
    for name in names:
        parts[name] = ordered[start : start + max(sizes[name], 0)]
        start += max(sizes[name], 0)
        rng.shuffle(parts[name])
    return parts


def _label_order(train_labels: list[str], cfg: DataConfig, source: str) -> list[str]:
    seen = sorted(set(train_labels))
    if cfg.labels is not None:
        if len(set(cfg.labels)) != len(cfg.labels):
            raise UserError(f"data.labels has duplicates: {cfg.labels}")
        unknown = [lab for lab in seen if lab not in cfg.labels]
        if unknown:
            raise UserError(f"{source}: labels {unknown} are not in data.labels {cfg.labels}: add them or fix the data")
        return list(cfg.labels)
    if len(seen) < 2:
        raise UserError(f"{source}: the train split has only one label ({seen[0]!r}); a classifier needs at least two")
    if all(lab.lstrip("-").isdigit() for lab in seen):
        return sorted(seen, key=int)
    return seen


def load_task_data(cfg: DataConfig) -> TaskData:
    if cfg.path == "default":
        path = default_data_dir()
    else:
        path = Path(cfg.path).expanduser()
        if not path.exists():
            raise UserError(f"data path {cfg.path} does not exist: give a directory with train/dev/test files or one file")
    notes: list[str] = []
    if path.is_dir():
        files = _find_split_files(path)
        raw = {split: _parse(f, cfg) for split, f in files.items()}
        missing = [s for s in ("dev", "test") if s not in raw]
        if missing:
            fr = {"train": 0.9 if len(missing) == 1 else 0.8} | {s: 0.1 for s in missing}
            raw |= _stratified_split(raw["train"], fr, cfg.split_seed)
            notes.append(f"no {' and no '.join(missing)} file: carved {', '.join(missing)} out of train (seed {cfg.split_seed})")
    else:
        raw = _stratified_split(_parse(path, cfg), {"train": 0.8, "dev": 0.1, "test": 0.1}, cfg.split_seed)
        notes.append(f"one file: split 80/10/10 into train/dev/test, stratified by label (seed {cfg.split_seed})")
    for split in ("train", "dev", "test"):
        if not raw[split]:
            raise UserError(f"{path}: the {split} split is empty; it needs labelled rows")

    labels = _label_order([r[2] for r in raw["train"]], cfg, str(path))
    index = {lab: i for i, lab in enumerate(labels)}
    for split in ("dev", "test"):
        unseen = sorted({r[2] for r in raw[split]} - set(index))
        if unseen:
            raise UserError(
                f"{path}: {split} has labels never seen in train: {unseen}; fix the data or list them in data.labels"
            )

    def examples(rows: list, cap: int | None) -> list[Example]:
        rows = rows[:cap] if cap else rows
        return [Example(text=t, text_pair=p, label=index[lab]) for t, p, lab in rows]

    return TaskData(
        labels=labels,
        train=examples(raw["train"], cfg.max_train),
        dev=examples(raw["dev"], cfg.max_eval),
        test=examples(raw["test"], cfg.max_eval),
        source="rotten_tomatoes (vendored)" if cfg.path == "default" else str(path),
        notes=notes,
    )


def label_counts(examples: list[Example]) -> Counter:
    return Counter(e.label for e in examples)
