"""Unlabeled text: what general distillation reads, and what the transfer set adds to task distillation
(compress/distill/transfer). A spec is one of:

- a path: a .txt file (one text per line), a .jsonl / .csv / .tsv file with a text column, or a folder of such files;
- a named text set (compress.data.text_sets: `wikipedia`, `plots`);
- `data`: the task data's own unlabeled file, an `unlabeled.txt|jsonl|csv|tsv` beside train/dev/test (the vendored
  Rotten Tomatoes data has its plot summaries there);
- `default` (the vendored plot summaries) and `vendored` (the Rotten Tomatoes training snippets, then the plot
  summaries): general distillation's names from before the text sets.

Every refusal is one line (UserError) that names the file and what to do.
"""

from __future__ import annotations

from pathlib import Path

from compress.data.readers import FORMATS, Example, default_data_dir, read_lines, read_rows
from compress.data.text_sets import TEXT_SETS
from compress.errors import UserError

TEXT_SUFFIXES = (".txt", *FORMATS)
UNLABELED_STEM = "unlabeled"


def data_unlabeled_file(data_path: str) -> Path | None:
    """The task data's own unlabeled file (`unlabeled.<txt|jsonl|csv|tsv>` in its folder), if it has one."""
    folder = default_data_dir() if data_path == "default" else Path(data_path).expanduser()
    if not folder.is_dir():
        return None
    hits = [folder / f"{UNLABELED_STEM}{ext}" for ext in TEXT_SUFFIXES if (folder / f"{UNLABELED_STEM}{ext}").is_file()]
    return hits[0] if hits else None


def _check_text_file(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if b"\x00" in head:
        raise UserError(f"{path} looks binary (it has NUL bytes), not text: give a .txt, .jsonl, .csv or .tsv file")


def _file_texts(path: Path, text_column: str) -> list[str]:
    if path.suffix.lower() not in TEXT_SUFFIXES:
        raise UserError(f"{path}: unsupported file type '{path.suffix}' for unlabeled text; use one of {', '.join(TEXT_SUFFIXES)}")
    _check_text_file(path)
    if path.suffix.lower() == ".txt":
        return read_lines(path)
    rows = read_rows(path)
    if rows and not any(text_column in r for r in rows):
        columns = sorted({str(k) for r in rows for k in r})
        raise UserError(f"{path}: no text column '{text_column}'; columns found: {', '.join(columns)} "
                        "(set distill.transfer.text_column, or distill.general.text_column, in the recipe)")
    texts = []
    for r in rows:
        value = r.get(text_column)
        if isinstance(value, (dict, list)):
            raise UserError(f"{path}: column '{text_column}' holds a {type(value).__name__}, expected text")
        if value is not None and str(value).strip():
            texts.append(str(value).strip())
    return texts


def read_texts(spec: str, text_column: str = "text", data_path: str = "default") -> list[str]:
    """The texts a spec names (see the module docstring); UserError when there are none."""
    if spec in TEXT_SETS:
        text_set = TEXT_SETS[spec]
        if not text_set.available():
            raise UserError(text_set.missing())
        return text_set.load()
    if spec == "default":
        return TEXT_SETS["plots"].load()
    if spec == "vendored":  # e.g. a token classifier's general distillation: names of people, films, places
        return read_texts(str(default_data_dir() / "train.jsonl")) + TEXT_SETS["plots"].load()
    if spec == "data":
        found = data_unlabeled_file(data_path)
        if found is None:
            where = "the default data" if data_path == "default" else data_path
            raise UserError(f"{where} has no unlabeled file: put an {UNLABELED_STEM}.txt (one text per line) or "
                            f"{UNLABELED_STEM}.jsonl beside its train file, or name a file instead of 'data'")
        return read_texts(str(found), text_column, data_path)
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise UserError(f"folder {path} holds no {', '.join(TEXT_SUFFIXES)} file of unlabeled text")
        texts = [t for f in files for t in _file_texts(f, text_column)]
    elif path.is_file():
        texts = _file_texts(path, text_column)
    else:
        names = ", ".join([*TEXT_SETS, "data"])
        raise UserError(f"unlabeled text {spec} does not exist: give a .txt (one text per line), .jsonl, .csv or .tsv "
                        f"file, a folder of them, or one of: {names}")
    if not texts:
        raise UserError(f"unlabeled text {path} holds no text")
    return texts


def load_unlabeled(spec: str | list[str], text_column: str = "text", max_rows: int | None = None) -> list[Example]:
    """General distillation's rows: the texts of `spec` (or of each spec in turn), unlabeled (label -1)."""
    texts = [t for one in ([spec] if isinstance(spec, str) else spec) for t in read_texts(one, text_column)]
    return [Example(text=t, label=-1) for t in texts[:max_rows]]
