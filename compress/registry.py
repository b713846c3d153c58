"""What a registry adds to its built-in entries while a block runs: a test's own task, exporter or quantizer."""

from __future__ import annotations

import contextlib


class Registered:
    """Entries added on top of a registry's built-in ones, for the duration of a `with register(...)` block."""

    def __init__(self) -> None:
        self.items: list = []

    @contextlib.contextmanager
    def register(self, *items):
        self.items.extend(items)
        try:
            yield
        finally:
            for item in items:
                self.items.remove(item)
