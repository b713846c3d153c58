"""Task registry: name -> Task. Adding a task is one module in this folder, one line in `_registry`, and its tests."""

from __future__ import annotations

from compress.tasks.base import Task

DEFAULT = "sequence-classification"


def _registry() -> dict[str, Task]:
    from compress.tasks import sequence_classification

    return {t.name: t for t in (sequence_classification.TASK,)}


def names() -> list[str]:
    return list(_registry())


def get(name: str) -> Task:
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown task '{name}'; known tasks: {', '.join(registry)}")
    return registry[name]
