"""The shape of the code base, checked: no import cycles, no oversized modules, stages that do not import each
other, a device side that never imports torch, benchmarks on the public API, and registries that list every
module they own. Fast: it only parses files."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 450
GENERATED = {"targets/unicode_tables.py"}  # read off the tokenizers library by tests/tokenizer_tables.py


def _modules(*packages: str) -> dict[str, Path]:
    mods = {}
    for pkg in packages:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = f
    return mods


def _imports(name: str, path: Path, known) -> set[str]:
    """Every module `name` imports, at the top or inside a function, resolved to the modules in `known`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph(*packages: str) -> dict[str, set[str]]:
    mods = _modules(*packages)
    return {m: _imports(m, f, mods) for m, f in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_function_level_cycle(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import x\n")
    (pkg / "b.py").write_text("def x():\n    from pkg import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _cycles(_graph("pkg")) == [["pkg.a", "pkg.b"]]


def test_no_import_cycles_in_compress_and_targets():
    assert _cycles(_graph("compress", "targets")) == []


def test_no_module_is_over_the_size_limit():
    too_big = {str(f.relative_to(ROOT)): n for f in _modules("compress", "targets").values()
               if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_LINES
               and f.relative_to(ROOT).as_posix() not in GENERATED}
    assert too_big == {}


def test_stages_import_neither_each_other_nor_the_run_package():
    graph = _graph("compress")
    for stage, deps in graph.items():
        if stage.startswith("compress.stages.") and stage != "compress.stages.common":
            bad = {d for d in deps if d.startswith("compress.run") or (d.startswith("compress.stages.")
                                                                          and d != "compress.stages.common")}
            assert not bad, (stage, bad)


def test_the_device_side_never_imports_torch_or_compress():
    """One exception, by necessity: ExecuTorch's Python runtime links libtorch and takes torch tensors, so the
    .pte session (targets.runtime.ExecuTorchModel, imported only when a .pte is loaded) may use torch."""
    for name, path in _modules("targets").items():
        tree = ast.parse(path.read_text())
        allowed = set()
        if name.endswith("runtime"):
            allowed = {id(n) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) and c.name == "ExecuTorchModel"
                       for n in ast.walk(c)}
        nodes = [n for n in ast.walk(tree) if id(n) not in allowed]
        imported = {a.name.split(".")[0] for n in nodes if isinstance(n, ast.Import) for a in n.names} | {
            n.module.split(".")[0] for n in nodes if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        assert not imported & {"torch", "transformers", "compress"}, name


def test_benchmarks_use_only_the_public_api():
    """benchmarks/ reach a run through compress.run (and the library's public names), never a stage's insides."""
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("compress"):
                assert not node.module.startswith(("compress.stages", "compress.pipeline")), (path.name, node.module)
                assert not any(a.name.startswith("_") for a in node.names), (path.name, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith(("compress.stages", "compress.pipeline")) for a in node.names), path.name
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "api":
                assert not node.attr.startswith("_"), (path.name, node.attr)


def test_every_stage_module_has_a_row_and_every_output_a_layout_path():
    from compress.run import STAGES, Layout

    modules = {p.stem for p in (ROOT / "compress" / "stages").glob("*.py")} - {"__init__", "common"}
    assert {s.name for s in STAGES} == modules
    layout = Layout(Path("/OUT"))
    for s in STAGES:
        for output in s.outputs:
            assert isinstance(getattr(layout, output), Path), (s.name, output)


@pytest.mark.parametrize("folder, registry", [("compress/tasks", "compress.tasks"),
                                              ("compress/distill/losses", "compress.distill.losses"),
                                              ("compress/quantize", "compress.quantize"),
                                              ("compress/export", "compress.export"),
                                              ("compress/platforms", "compress.platforms")])
def test_every_task_loss_and_quantizer_module_is_registered(folder, registry):
    """A new task, loss, quantizer or exporter is one file and one registry line: a file left out of its registry
    is caught here."""
    import importlib

    reg = importlib.import_module(registry)
    # ort_format: the bundle's .ort; config: the recipe section
    # numerics: where the guard measures an int8 file (this machine, emulated aarch64)
    helpers = {"__init__", "base", "guard", "numerics", "onnx_graph", "verify", "ort_format", "config",
               # platforms: the task-library .tflite, the in-graph tokenizer, the checks' runners, the READMEs' snippets
               "tflite_task", "tokenizer_graph", "mediapipe_check", "same_files", "snippets",
               "choice"}  # platforms: which measured artifacts the bundles try
    files = {p.stem for p in (ROOT / folder).glob("*.py")} - helpers
    if registry == "compress.tasks":
        registered = {t.name.replace("-", "_") for t in reg._registry().values()}
    elif registry == "compress.quantize":
        registered = {b.quantize.__module__.rpartition(".")[2] for b in reg._registry().values()}
    elif registry == "compress.export":
        registered = {e.make.__module__.rpartition(".")[2] for e in reg._registry()}
    elif registry == "compress.platforms":
        registered = {p.build.__module__.rpartition(".")[2] for p in reg._registry()}
    else:
        registered = {spec.fn.__module__.rpartition(".")[2] for spec in reg.REGISTRY.values()}
    assert files == registered


def test_the_quick_tier_guard_watches_every_stage(pytestconfig):
    """tests/conftest.py counts every in-process stage call and fails a test outside the slow tier that ran a whole
    pipeline (or used a fixture that did): the quick tier stays quick by construction, not by convention."""
    from compress.run import table

    assert all(getattr(spec.run, "counted", False) for spec in table.STAGES)
    assert pytestconfig.pluginmanager.get_plugin("whole-pipeline-guard") is not None
