"""The iOS LiteRT bundle (OUT/bundle/ios-litert): the Android LiteRT bundle's .tflite, unchanged (MediaPipe Tasks'
`MPPTextClassifier` / `MPPTextEmbedder` read the same file and metadata), with a Swift README."""

from __future__ import annotations

from pathlib import Path

from compress.fsutil import write_text
from compress.platforms.base import BundleInput, Platform, PlatformBundle
from compress.platforms.same_files import ship_same


def build(inp: BundleInput, folder: Path) -> PlatformBundle:
    from compress.platforms.android_litert import readme

    return ship_same(inp, folder, "android-litert", PLATFORM,
                     lambda made: write_text(folder / "README.md", readme(inp, made.check, made.precision, "ios")))


PLATFORM = Platform("ios-litert", "iOS (MediaPipe Tasks, LiteRT)", build)
