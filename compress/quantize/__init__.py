"""Post-training quantization backends behind one interface, tried in the recipe's order.

A backend is one module with a typed `Settings` (pydantic, unknown keys refused), a `quantize(settings, ctx)`
that writes one artifact, and `fallbacks(settings)`: the more conservative variants the accuracy guard
tries when the first one loses too much (per-channel weights, then the sensitive nodes left in fp32).
Adding a backend is one new file and one line in REGISTRY.
"""

from __future__ import annotations

from typing import Any

from compress.quantize.base import ARTIFACT_SUFFIX, Backend, Context, Settings, require_module  # noqa: F401 (the public names)
from compress.registry import Registered

_REGISTERED = Registered()
registered = _REGISTERED.register
"""with registered(backend): one more backend while the block runs (a test's own)."""


def _registry() -> dict[str, Backend]:
    from compress.quantize import executorch_xnnpack, litert, nncf_ptq, ort_dynamic, ort_static, torchao_ptq

    return {b.name: b for b in (ort_dynamic.BACKEND, ort_static.BACKEND, nncf_ptq.BACKEND, torchao_ptq.BACKEND,
                                litert.DYNAMIC_BACKEND, litert.STATIC_BACKEND, executorch_xnnpack.BACKEND)}


def backends() -> dict[str, Backend]:
    """Every backend: the built-in ones, then any registered while a block runs."""
    return _registry() | {b.name: b for b in _REGISTERED.items}


def backend(name: str) -> Backend:
    registry = backends()
    if name not in registry:
        raise ValueError(f"unknown quantization backend '{name}'; known: {', '.join(registry)}")
    return registry[name]


def parse_candidate(raw: dict[str, Any]) -> tuple[Backend, Settings]:
    """{'backend': name, **settings} -> the backend and its validated settings (ValueError names the bad key)."""
    raw = dict(raw)
    name = raw.pop("backend", None)
    if not name:
        raise ValueError("each quantize candidate needs a 'backend'")
    raw.pop("name", None)
    b = backend(str(name))
    try:
        return b, b.settings(**raw)
    except Exception as exc:  # pydantic.ValidationError -> one line
        errors = getattr(exc, "errors", None)
        if errors:
            e = errors()[0]
            key = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                raise ValueError(f"{name}: unknown setting '{key}'; allowed: {', '.join(b.settings.model_fields)}") from None
            raise ValueError(f"{name}: setting '{key}': {e['msg']}") from None
        raise


def candidate_name(raw: dict[str, Any], taken: set[str]) -> str:
    base = str(raw.get("name") or raw["backend"])
    name, i = base, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    return name


