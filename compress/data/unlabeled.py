"""Unlabeled in-domain text for general distillation: a .txt file (one text per line), or a .jsonl, .csv or
.tsv file with a text column; 'default' (the vendored plot summaries) or 'vendored' (every vendored text: the Rotten
Tomatoes training snippets, then the plot summaries)."""

from __future__ import annotations

from pathlib import Path

from compress.data.readers import Example, default_data_dir, read_lines, read_rows
from compress.errors import UserError


def load_unlabeled(spec: str, text_column: str = "text", max_rows: int | None = None) -> list[Example]:
    if spec == "vendored":  # e.g. a token classifier's general distillation: names of people, films, places
        rows = load_unlabeled(str(default_data_dir() / "train.jsonl")) + load_unlabeled("default")
        return rows[:max_rows]
    path = default_data_dir() / "unlabeled.jsonl" if spec == "default" else Path(spec).expanduser()
    if not path.is_file():
        raise UserError(f"unlabeled text {spec} does not exist: give a .txt (one text per line) or .jsonl file")
    if path.suffix.lower() == ".txt":
        texts = read_lines(path)
    else:
        texts = []
        for i, row in enumerate(read_rows(path), 1):
            if text_column not in row:
                raise UserError(f"{path}: row {i} has no '{text_column}' field (set distill.general.text_column)")
            if str(row[text_column] or "").strip():
                texts.append(str(row[text_column]).strip())
    if not texts:
        raise UserError(f"unlabeled text {path} holds no text")
    return [Example(text=t, label=-1) for t in texts[:max_rows]]
