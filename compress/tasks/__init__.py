"""Task registry: name -> Task. Adding a task is one module in this folder, one line in `_registry`, and its tests."""

from __future__ import annotations

from compress.registry import Registered
from compress.tasks.base import Task

DEFAULT = "sequence-classification"

_REGISTERED = Registered()
registered = _REGISTERED.register
"""with registered(task): one more task while the block runs (a test's own)."""


def _registry() -> dict[str, Task]:
    from compress.tasks import embedding, sequence_classification, token_classification

    return {t.name: t for t in (sequence_classification.TASK, embedding.TASK, token_classification.TASK,
                                *_REGISTERED.items)}


def names() -> list[str]:
    return list(_registry())


def get(name: str) -> Task:
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown task '{name}'; known tasks: {', '.join(registry)}")
    return registry[name]


def task_of(record: dict) -> Task:
    """The task a report, results or bundle record names (records written before tasks were recorded: the default)."""
    return get(record.get("task") or DEFAULT)


def detect_task(teacher: str | None, data: str | None) -> str | None:
    """'token-classification' when no task was named and the data tags words (CoNLL / BIO files, JSONL with tokens
    and tags); 'embedding' when the teacher is a sentence-transformers checkpoint (it has modules.json)
    and the data is plain text without a label column; None otherwise (the recipe's task stands). The default data
    is labelled, so the default run stays a classifier."""
    from pathlib import Path

    if data is None:
        return None
    path = Path(data).expanduser()
    if path.is_dir():
        path = next((p for p in sorted(path.glob("train.*"))
                     if p.suffix in (".txt", ".jsonl", ".csv", ".tsv", ".conll", ".bio", ".iob")), path)
    if path.is_file() and _tagged(path):
        from compress.progress import info

        info("[yellow]note[/]: the data tags words (CoNLL / BIO): task token-classification (pass --task to choose "
             "another)")
        return "token-classification"
    if not path.is_file() or not _unlabelled(path):
        return None
    if teacher in (None, "default"):
        from compress.teacher import default_teacher_dir

        try:
            folder = default_teacher_dir()
        except Exception:
            return None
    else:
        folder = Path(teacher).expanduser()
    if not (folder / "modules.json").is_file():
        return None
    from compress.progress import info

    info("[yellow]note[/]: the teacher is a sentence-transformers model and the data has no labels: task embedding "
         "(pass --task to choose another)")
    return "embedding"


def _tagged(path) -> bool:
    """CoNLL / BIO files, or JSONL rows with tokens and tags (or text and entities): token classification."""
    import json

    if path.suffix in (".conll", ".bio", ".iob"):
        return True
    if path.suffix != ".jsonl":
        return False
    try:
        with open(path, encoding="utf-8") as fh:
            first = next((line for line in fh if line.strip()), "")
        row = json.loads(first) if first else {}
    except (OSError, ValueError):
        return False
    return isinstance(row, dict) and ({"tokens", "tags"} <= set(row) or {"text", "entities"} <= set(row))


def _unlabelled(path) -> bool:
    """A .txt file, or a table whose first rows have no 'label' column."""
    import csv
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            head = [line for _, line in zip(range(20), fh) if line.strip()]
        if len(head) < (1 if path.suffix == ".jsonl" else 2):  # nothing to tell from: the recipe's task stands
            return False
        if path.suffix == ".txt":
            return True
        if path.suffix == ".jsonl":
            return not any("label" in json.loads(line) for line in head)
        reader = csv.DictReader(head, delimiter="\t" if path.suffix == ".tsv" else ",")
        return "label" not in (reader.fieldnames or [])
    except (OSError, ValueError):
        return False


def load_any_student(directory):
    """OUT/student of whichever task wrote it (a sentence-transformers folder is an embedding student): for code
    that holds only the folder, e.g. the torchao artifact loader."""
    from pathlib import Path

    name = "embedding" if (Path(directory) / "modules.json").is_file() else DEFAULT
    return get(name).load_student(directory)
