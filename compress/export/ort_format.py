"""ONNX -> `.ort`, ONNX Runtime Mobile's flatbuffer format (the android-ort / ios-ort bundles ship it)."""

from __future__ import annotations

from pathlib import Path

from targets.runtime import SESSION_CONFIG


def to_ort_format(src: Path, dst: Path, session_config: dict[str, str] = SESSION_CONFIG) -> Path:
    """ONNX -> ONNX Runtime's flatbuffer format for ORT Mobile. Extended (not 'all') optimizations: those are
    the same on every CPU, so the file does not depend on the x86 it was made on. The runner's session config
    (no SkipLayerNorm fusion) is applied here, so the saved graph keeps it without any app-side setting."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if _uses_extensions(src):  # a string-in graph: the tokenizer's operators must be known to save it
        from onnxruntime_extensions import get_library_path

        options.register_custom_ops_library(get_library_path())
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    for key, value in session_config.items():
        options.add_session_config_entry(key, value)
    options.optimized_model_filepath = str(dst)
    options.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return dst


def _uses_extensions(path: Path) -> bool:
    import onnx

    from targets.runtime import EXTENSIONS_DOMAIN

    return any(o.domain == EXTENSIONS_DOMAIN for o in onnx.load(str(path), load_external_data=False).opset_import)
