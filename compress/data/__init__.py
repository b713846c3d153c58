"""Task data: labelled text (pairs optional) from CSV, TSV or JSONL; the vendored default set."""

from compress.data.readers import Example, TaskData, load_task_data

__all__ = ["Example", "TaskData", "load_task_data"]
