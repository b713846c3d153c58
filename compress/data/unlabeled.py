"""Unlabeled in-domain text for general distillation: a .txt file (one text per line) or a .jsonl file."""

from __future__ import annotations

import json
from pathlib import Path

from compress.data.readers import Example, default_data_dir
from compress.errors import UserError


def load_unlabeled(spec: str, text_column: str = "text", max_rows: int | None = None) -> list[Example]:
    path = default_data_dir() / "unlabeled.jsonl" if spec == "default" else Path(spec).expanduser()
    if not path.is_file():
        raise UserError(f"unlabeled text {spec} does not exist: give a .txt (one text per line) or .jsonl file")
    texts: list[str] = []
    if path.suffix.lower() == ".txt":
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif path.suffix.lower() == ".jsonl":
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or text_column not in obj:
                raise UserError(f"{path}:{i}: no '{text_column}' field (set distill.general.text_column)")
            if str(obj[text_column]).strip():
                texts.append(str(obj[text_column]).strip())
    else:
        raise UserError(f"unlabeled text {path}: use a .txt or .jsonl file, not '{path.suffix}'")
    if not texts:
        raise UserError(f"unlabeled text {path} holds no text")
    return [Example(text=t, label=-1) for t in texts[:max_rows]]
