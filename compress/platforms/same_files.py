"""A platform that ships another platform's model files unchanged (iOS runs Android's .tflite and .onnx)."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable

from compress.platforms.base import BundleInput, Platform, PlatformBundle


def ship_same(inp: BundleInput, folder: Path, source: str, platform: Platform,
              write_readme: Callable[[PlatformBundle], None]) -> PlatformBundle:
    """Link (or copy) every file of the `source` platform's bundle but its README; the check is the source's."""
    if source not in inp.built:
        return PlatformBundle(platform.name, platform.title, skipped=f"no {source} bundle (see its line) to share files with")
    src, made = inp.built[source]
    for path in sorted(src.rglob("*")):
        if path.is_file() and path.name != "README.md":
            dst = folder / path.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, dst)  # the same bytes: no second copy on disk
            except OSError:
                shutil.copy2(path, dst)
    write_readme(made)
    return replace(made, platform=platform.name, title=platform.title, path=None, zip=None, zip_bytes=None, files={},
                   details=dict(made.details, same_files_as=source))
