"""The docs can't drift from their results or from the code: every generated table in README.md, docs/*.md and
benchmarks/README.md equals what `python benchmarks/readme_tables.py` makes from the committed results file it
names; every results file stores its command and the machine it ran on; no doc shows a temp-dir path; every list
of tasks, losses, named recipes, quantizers, export formats and platforms in the docs names exactly the registered
ones; every command in the docs' code blocks parses with the CLI it calls; every relative link and anchor
resolves."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import benchmark_script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


tables = benchmark_script("readme_tables")


def _results_files() -> list[Path]:
    return sorted(RESULTS.rglob("*.json"))


def _pages() -> list[Path]:
    """The hand-written docs: the top-level README, every page under docs/, the benchmarks index."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]


def _docs() -> list[Path]:
    return [*_pages(), *sorted(RESULTS.rglob("*.md"))]


# ---- the generated tables ---------------------------------------------------------------------------------
def test_readme_tables_match_their_results_files():
    """The same check as `python benchmarks/readme_tables.py --check` (exit 1 and a diff when a table is stale)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "readme_tables.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, f"stale tables: run python benchmarks/readme_tables.py\n{done.stdout}{done.stderr}"


def test_the_readme_has_a_headline_table_from_a_committed_file():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [m for m in tables.MARKER.finditer(text) if m.group(1) == "headline"]
    assert len(blocks) == 1, "README.md needs exactly one <!-- headline: FILE --> ... <!-- /headline --> block"
    path = blocks[0].group(2).strip()
    assert path.startswith("benchmarks/results/") and (ROOT / path).is_file(), path
    assert "CPU: " in blocks[0].group(3) and "Command: `" in blocks[0].group(3)


def test_the_script_keeps_every_page_of_the_docs():
    assert [ROOT / d for d in tables.docs()] == _pages()


def test_every_marker_names_a_known_renderer_and_existing_files():
    for doc in _pages():
        text = doc.read_text(encoding="utf-8")
        name = doc.relative_to(ROOT).as_posix()
        found = list(tables.MARKER.finditer(text))
        assert len(found) == text.count("<!-- /"), f"{name}: a block without its closing <!-- /KIND -->"
        for m in found:
            assert m.group(1) in tables.RENDERERS, f"{name}: unknown table kind {m.group(1)}"
            for p in m.group(2).split(","):
                assert (ROOT / p.strip()).exists(), f"{name}: {p.strip()} does not exist"


def test_check_mode_fails_on_a_stale_table(tmp_path, monkeypatch):
    doc = tmp_path / "DOC.md"
    doc.write_text("intro\n<!-- headline: benchmarks/results/devices_matrix/inputs/build_machine.json -->\n"
                   "| an old table |\n<!-- /headline -->\nend\n", encoding="utf-8")
    monkeypatch.setattr(tables, "ROOT", ROOT)
    assert tables.main(["--check", str(doc)]) == 1
    assert "an old table" in doc.read_text(encoding="utf-8")  # --check changes nothing
    assert tables.main([str(doc)]) == 0
    fixed = doc.read_text(encoding="utf-8")
    assert "an old table" not in fixed and fixed.startswith("intro\n") and fixed.endswith("<!-- /headline -->\nend\n")
    assert tables.main(["--check", str(doc)]) == 0


def test_an_unknown_kind_or_missing_file_is_one_error(tmp_path, capsys):
    for marker in ("<!-- nosuch: benchmarks/results/quantize_ab.json -->", "<!-- headline: benchmarks/results/missing.json -->"):
        doc = tmp_path / "DOC.md"
        doc.write_text(f"{marker}\n<!-- /{marker[5:].split(':')[0]} -->\n", encoding="utf-8")
        assert tables.main(["--check", str(doc)]) == 2
        assert "readme_tables: error:" in capsys.readouterr().err


# ---- the headline renderer on both schemas and on incomplete files -----------------------------------------
def _cell(threads, p50, seq=128):
    return {"threads": threads, "seq_len": seq, "batch": 1, "p50_ms": p50}


def _write(tmp_path, monkeypatch, doc) -> str:
    monkeypatch.setattr(tables.common, "ROOT", tmp_path)  # where every renderer loads results files from
    (tmp_path / "r.json").write_text(json.dumps(doc), encoding="utf-8")
    return "r.json"


def test_headline_from_a_report_json_with_missing_fields(tmp_path, monkeypatch):
    report = {
        "schema_version": 1, "recipe": "default",
        "environment": {"cpu": "AMD EPYC 7B13", "machine": "x86_64", "cores": 2, "simd": ["avx", "avx2", "fma"],
                        "python": "3.11.7", "versions": {"onnxruntime": "1.32.0", "ai-edge-litert": None}},
        "bench": {"command": "bert-compress bench --out /tmp/full4", "grid": {"threads": [1, 2], "seq_lens": [32, 128]}},
        "teacher": {"layers": 6, "hidden_size": 384, "size_bytes": 90_000_000, "accuracy": 0.8,
                    "latency": [_cell(1, 50.0), _cell(2, 30.0)]},
        "student": {"layers": 3, "hidden_size": 384, "size_bytes": 70_000_000, "accuracy": 0.82, "latency": [_cell(1, 25.0)]},
        "artifacts": [
            {"name": "student-int8-litert-dynamic", "runtime": "litert", "size_bytes": 20_000_000, "accuracy": 0.808,
             "quantization": {"backend": "litert-dynamic", "settings": {"weight_bits": "int8", "weight_only": False}},
             "latency": [_cell(1, 5.0), _cell(2, 4.0)]},
            {"name": "student-onnx-fp32"},  # no size, accuracy or latency
        ],
        "bundle": {"models": [{"file": "model.tflite", "artifact": "student-int8-litert-dynamic"}]},
    }
    lines = tables.render_headline([_write(tmp_path, monkeypatch, report)])
    text = "\n".join(lines)
    assert "| `student-int8-litert-dynamic` (bundled) | LiteRT | int8 weights, fp32 activations (quantized per call) | 20.0 | 80.80% (101.0%) | 5.00 | 4.00 | 10.00× / 7.50× |" in text
    assert "| `student-onnx-fp32` | — | fp32 | — | — | — | — | — / — |" in text
    assert "| student, 3 layers / 384 | PyTorch eager | fp32 | 70.0 | 82.00% (102.5%) | 25.00 | — | 2.00× / — |" in text
    assert "CPU: AMD EPYC 7B13 (x86_64, 2 cores; AVX, AVX2, FMA; int8 kernels: AVX2)" in text
    assert "Command: `bert-compress bench --out OUT`" in text and "/tmp/" not in text
    assert "ai-edge-litert" not in text  # versions that are not installed are left out


def test_headline_from_a_bench_results_file_without_flags_or_command(tmp_path, monkeypatch):
    doc = {"schema": "bert-compress-bench", "schema_version": 1, "device": {"cpu": "Cortex-A76", "machine": "aarch64"},
           "models": [{"name": "teacher", "role": "teacher", "runtime": "pytorch", "precision": "fp32",
                       "arch": {"layers": 6, "hidden_size": 384}, "latency": [_cell(1, 40.0, seq=64)]},
                      {"name": "model.onnx", "role": "artifact", "runtime": "onnxruntime", "precision": "quantized (ort-dynamic)",
                       "compute": "int8", "shipped": True, "size_bytes": 1e6, "latency": [_cell(1, 4.0, seq=64)]}]}
    text = "\n".join(tables.render_headline([_write(tmp_path, monkeypatch, doc)]))
    assert "p50 ms, 1 thread | speed-up vs teacher |" in text  # one thread count measured: one column each
    assert "| `model.onnx` (bundled) | ONNX Runtime | int8 (ort-dynamic) | 1.0 | — | 4.00 | 10.00× |" in text
    assert "sequence length 64" in text
    assert "instruction sets not recorded in this file" in text and "Command: not recorded in this file." in text


# ---- every results file: command and environment ------------------------------------------------------------
def test_every_results_file_stores_its_command():
    missing = [p.relative_to(ROOT).as_posix() for p in _results_files()
               if tables.command_status(json.loads(p.read_text(encoding="utf-8"))) == "none"]
    assert not missing, f"results files without a command (top-level `command` or report `bench.command`): {missing}"


def test_a_command_added_afterwards_says_where_it_came_from():
    for p in _results_files():
        doc = json.loads(p.read_text(encoding="utf-8"))
        if "command_source" in doc:
            assert isinstance(doc.get("command"), str) and doc["command"] and doc["command_source"], p


def test_every_results_file_records_its_machine_or_is_allowed_not_to():
    """A results file names the CPU it ran on (report `environment`, device results `device`, or, for a merged
    report, every merged input's `device`), unless it is in the commented allow-list
    readme_tables.ENVIRONMENT_NOT_RECORDED with the reason."""
    allowed = tables.ENVIRONMENT_NOT_RECORDED
    for path, reason in allowed.items():
        assert (ROOT / path).is_file(), f"allow-list names a file that does not exist: {path}"
        assert reason.strip(), path
    for p in _results_files():
        rel = p.relative_to(ROOT).as_posix()
        status = tables.environment_status(rel, json.loads(p.read_text(encoding="utf-8")))
        if rel in allowed:
            assert status.startswith("none"), f"{rel} records an environment now: take it off the allow-list"
        else:
            assert not status.startswith("none"), f"{rel} records no CPU / environment"


# ---- no temp-dir paths in the docs --------------------------------------------------------------------------
@pytest.mark.parametrize("doc", _docs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_temp_dir_paths_in_docs(doc):
    text = doc.read_text(encoding="utf-8")
    bad = [line for line in text.splitlines() if "/tmp/" in line or "/root/" in line]
    assert not bad, f"{doc.relative_to(ROOT)} shows machine paths (name them OUT / WORK / RESULTS): {bad[:3]}"


# ---- the README stays short ---------------------------------------------------------------------------------------
def test_the_readme_is_at_most_300_lines_and_links_every_page_of_the_docs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300, "README.md: what it does, install, the one command, the headline tables, links"
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name != "README.md":
            assert f"(docs/{page.name})" in text, f"README.md does not link docs/{page.name}"
            assert f"({page.name})" in index, f"docs/README.md does not list {page.name}"


def test_the_table_generator_modules_stay_under_450_lines():
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 450, path.name


# ---- every list of registered names in the docs equals its registry ------------------------------------------------
CHECKED = re.compile(r"<!-- checked by tests/test_docs\.py against the registry of (\w+) -->\n((?:\|.*\n)+)")


def _names(entries) -> list[str]:
    """A registry as its names: a mapping's keys, a list of names, or each entry's `name`."""
    return list(entries) if isinstance(entries, dict) else [e if isinstance(e, str) else e.name for e in entries]


def _registry(module: str, *public: str):
    mod = importlib.import_module(module)
    for attr in (*public, "_registry"):
        if hasattr(mod, attr):
            found = getattr(mod, attr)
            return _names(found() if callable(found) else found)
    raise AssertionError(f"{module} has none of {public} or _registry")


REGISTRIES = {
    "tasks": lambda: _registry("compress.tasks", "names"),
    "losses": lambda: _registry("compress.distill.losses", "REGISTRY"),
    "recipes": lambda: list(importlib.import_module("compress.recipe").named_recipes()),
    "quantizers": lambda: _registry("compress.quantize", "names", "backends", "REGISTRY"),
    "formats": lambda: _registry("compress.export", "exporters"),
    "platforms": lambda: _registry("compress.platforms", "platforms"),
}


def _checked_lists() -> dict[str, tuple[str, list[str]]]:
    """kind -> (the doc that lists it, the first-column names of its table)."""
    found: dict[str, tuple[str, list[str]]] = {}
    for doc in _pages():
        for m in CHECKED.finditer(doc.read_text(encoding="utf-8")):
            kind, rows = m.group(1), m.group(2).splitlines()[2:]  # below the header and the |---| line
            names = []
            for row in rows:
                first = row.strip("|").split("|")[0]
                ticked = re.findall(r"`([^`]+)`", first)
                assert len(ticked) == 1, f"{doc.relative_to(ROOT)}: the {kind} row '{first.strip()}' names no one `name`"
                names.append(ticked[0])
            assert kind not in found, f"{kind} listed twice: {found[kind][0]} and {doc.relative_to(ROOT)}"
            found[kind] = (doc.relative_to(ROOT).as_posix(), names)
    return found


def test_every_registry_has_its_one_checked_list_in_the_docs():
    assert set(_checked_lists()) == set(REGISTRIES)


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_the_docs_list_exactly_the_registered_names(kind):
    doc, listed = _checked_lists()[kind]
    registered = REGISTRIES[kind]()
    assert len(listed) == len(set(listed)), f"{doc}: a {kind} row appears twice"
    assert not set(registered) - set(listed), f"{doc}: registered {kind} missing from its table: {set(registered) - set(listed)}"
    assert not set(listed) - set(registered), f"{doc}: {kind} in its table that are not registered: {set(listed) - set(registered)}"


def test_the_command_line_synopsis_names_the_registered_tasks():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    synopsis = re.search(r"\[--task ([a-z|-]+)\]", text)
    assert synopsis, "docs/cli.md: `bert-compress run ... [--task A|B|...]`"
    assert synopsis.group(1).split("|") == REGISTRIES["tasks"](), "docs/cli.md: --task lists other tasks than the registry"


# ---- every command in the docs' code blocks parses as written -----------------------------------------------------
def _code_lines(doc: Path) -> list[str]:
    """Each command line of the doc's fenced code blocks: continuations joined, comments and env assignments cut."""
    lines = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", doc.read_text(encoding="utf-8"), re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            line = re.sub(r"^(\w+=\S+\s+)+", "", line)
            if line:
                lines.append(line)
    return lines


def _parsers() -> dict[str, object]:
    from compress.cli import build_parser

    out = {"bert-compress": build_parser(), "python -m compress": build_parser()}
    device = importlib.import_module("targets.__main__")
    parser = getattr(device, "build_parser", None) or getattr(device, "_parser", None)
    if parser is not None:
        out["bert-compress-runner"] = out["python -m targets"] = parser()
    return out


@pytest.mark.parametrize("doc", _pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_in_the_docs_parses_with_the_cli_it_calls(doc):
    """Each concrete `bert-compress ...` / `python -m targets ...` line is parsed by that command's own argument
    parser (a synopsis line with [optional] parts or `...` is skipped); nothing is run."""
    parsers = _parsers()
    checked = 0
    for line in _code_lines(doc):
        prog = next((p for p in sorted(parsers, key=len, reverse=True) if line == p or line.startswith(p + " ")), None)
        if prog is None or any(s in line for s in ("[", "...", "|")):
            continue
        args = shlex.split(line[len(prog):])
        try:
            if prog in ("bert-compress-runner", "python -m targets"):
                # as targets.__main__.main: the texts of predict / embed / ner may come after the options
                parsed, extra = parsers[prog].parse_known_args(args)
                if any(e.startswith("-") for e in extra) or (extra and parsed.command not in ("predict", "embed", "ner")):
                    raise SystemExit(2)
            else:
                parsers[prog].parse_args(args)
        except SystemExit as exc:
            raise AssertionError(f"{doc.relative_to(ROOT)}: `{line}` does not parse (exit {exc.code})") from None
        checked += 1
    if doc.name == "README.md" and doc.parent == ROOT:
        assert checked >= 3, "the README's `bert-compress run` lines were not found"


def test_the_readmes_install_and_test_commands_are_the_ones_ci_and_the_tiers_use():
    import tomllib

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = _code_lines(ROOT / "README.md")
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"])
    installs = [line for line in lines if line.startswith("pip install -e ")]
    assert installs, "README.md: the install line"
    for line in installs:
        named = re.search(r'"\.\[([\w,-]+)\]"', line)
        assert named and set(named.group(1).split(",")) <= extras, f"README.md: `{line}` names an extra pyproject.toml lacks"
        assert line.split("#")[0].strip() in (ROOT / ".ci" / "run").read_text(encoding="utf-8"), "CI installs another way"
    for line in (line for line in lines if " npm install " in f" {line} "):
        package = next(w for w in line.split() if w.startswith("@") and "@" in w[1:])
        assert package in (ROOT / ".ci" / "run").read_text(encoding="utf-8"), f"CI installs another {package}"
    tiers = next(m for m in tables.MARKER.finditer(text) if m.group(1) == "test-tiers")
    timed = {t["command"] for t in json.loads((ROOT / tiers.group(2).strip()).read_text(encoding="utf-8"))["tiers"].values()}
    shown = {line for line in lines if line.startswith("python -m pytest")}
    assert shown == timed, f"README.md shows the test commands {shown}; its test-tiers table timed {timed}"


# ---- every relative link and anchor resolves ----------------------------------------------------------------------
def _slugs(doc: Path) -> set[str]:
    """The anchors GitHub gives a page's headings (lower case, punctuation dropped, spaces to '-', repeats -1, -2)."""
    text = re.sub(r"^```.*?^```", "", doc.read_text(encoding="utf-8"), flags=re.S | re.M)
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _check_link(source: str, base: Path, target: str) -> str | None:
    path, _, anchor = target.partition("#")
    dest = (base / path).resolve() if path else ROOT / source
    if not dest.exists():
        return f"{source}: {target} does not exist"
    if anchor and dest.suffix == ".md" and anchor not in _slugs(dest):
        return f"{source}: {target}: no heading with that anchor in {dest.relative_to(ROOT)}"
    return None


def test_every_relative_link_in_the_docs_resolves():
    bad = []
    for doc in _pages():
        text = re.sub(r"^```.*?^```", "", doc.read_text(encoding="utf-8"), flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if not re.match(r"[a-z]+:", target):
                bad.append(_check_link(doc.relative_to(ROOT).as_posix(), doc.parent, target))
    assert not [b for b in bad if b], [b for b in bad if b]


def test_every_readme_anchor_named_in_the_code_resolves():
    """Docstrings, comments and recipe descriptions cite sections as `benchmarks/README.md#anchor` (from the root)."""
    bad = []
    for folder, pattern in (("compress", "**/*.py"), ("compress", "**/*.yaml"), ("targets", "**/*.py"), ("benchmarks", "*.py")):
        for path in sorted((ROOT / folder).glob(pattern)):
            for target in re.findall(r"((?:[\w./-]+/)?(?:README|[\w-]+)\.md#[\w-]+)", path.read_text(encoding="utf-8")):
                bad.append(_check_link(path.relative_to(ROOT).as_posix(), ROOT, target))
    assert not [b for b in bad if b], [b for b in bad if b]
