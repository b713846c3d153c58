"""The iOS ONNX Runtime bundle (OUT/bundle/ios-ort): the Android ONNX Runtime bundle's string-in model, unchanged
(onnxruntime-objc with the onnxruntime-extensions pod runs the same file), with a Swift README."""

from __future__ import annotations

from pathlib import Path

from compress.fsutil import write_text
from compress.platforms.base import BundleInput, Platform, PlatformBundle
from compress.platforms.same_files import ship_same


def build(inp: BundleInput, folder: Path) -> PlatformBundle:
    from compress.platforms.android_ort import readme

    return ship_same(inp, folder, "android-ort", PLATFORM,
                     lambda made: write_text(folder / "README.md", readme(inp, made, "ios")))


PLATFORM = Platform("ios-ort", "iOS (ONNX Runtime + extensions)", build)
