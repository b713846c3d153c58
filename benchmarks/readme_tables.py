"""The tables in README.md, docs/*.md and benchmarks/README.md, generated from committed results files.

    python benchmarks/readme_tables.py              # rewrite every generated block in the docs
    python benchmarks/readme_tables.py --check      # exit 1 (and print a diff) when a block differs from its file
    python benchmarks/readme_tables.py --render KIND FILE[,FILE...]   # print one block

A generated block sits between two marker comments that name what renders it and the results file(s) it
renders (paths relative to the repository root, several separated by commas):

    <!-- headline: benchmarks/results/devices_matrix/inputs/build_machine.json -->
    ... (written by this script: do not edit by hand) ...
    <!-- /headline -->

KIND is one of RENDERERS below. `headline` reads a pipeline report (`OUT/report.json`, the schema of
`bert-compress bench`) or a device results file (`OUT/bench.json`, schema bert-compress-bench) and writes the
model table: runtime, precision, size, test accuracy, p50 at seq 128 / batch 1 on 1 thread and on the most
threads measured, speed-up against the teacher in PyTorch eager measured in the same run, and under it the CPU
(model, instruction sets), the versions and the command, all taken from the file. To point the README at a new
run, commit its report.json under benchmarks/results/ and change the path in the marker; then run this script.

The renderers live beside this file: tables_common.py (loading, formats, the line under a table, what each results
file records), tables_runs.py (pipeline reports and device results), tables_matrices.py (the benchmark scripts'
matrices), tables_devices.py (device-side and one-off measurements). Every name other scripts import from here
(`from readme_tables import ...`) is re-exported below.

Only the standard library is used: the check runs anywhere the repository is checked out.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (HERE, ROOT):  # the sibling tables_*.py modules, and compress.run.table for the stage names
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import tables_common as common  # noqa: E402
from tables_common import (  # noqa: E402, F401 (the names other scripts and tests import from here)
    ENVIRONMENT_NOT_RECORDED,
    INT8_ISAS,
    ISA,
    PLACEHOLDERS,
    RUNTIMES,
    DocError,
    code,
    command_status,
    commands_of,
    env_line,
    environment_of,
    environment_status,
    int8_isa,
    isa_names,
    load,
    mb,
    ms,
    num,
    public_paths,
    ratio,
    results_files,
)
from tables_devices import (  # noqa: E402
    render_arm64_check,
    render_bench_repeats,
    render_budget,
    render_embedding_shorter,
    render_embedding_tiers,
    render_embedding_variants,
    render_executorch_attention,
    render_device_side,
    render_files,
    render_int8_decisions,
    render_isa_check,
    render_repeatability,
    render_test_tiers,
)
from tables_matrices import (  # noqa: E402, F401
    BASELINE,
    MATRIX_TARGETS,
    data_matrix_rows,
    default_seeds_rows,
    matrix_verdict,
    render_albert,
    render_compression_matrix,
    render_data_matrix,
    render_default_seeds,
    render_ner_types,
    render_ner_variants,
    render_distill_matrix,
    render_distill_throughput,
    render_quantize_ab,
    render_quantize_compare,
    render_quantize_matrix,
    seed_spread,
)
from tables_runs import (  # noqa: E402, F401
    STAGES,
    models_of,
    p50,
    reference,
    render_bundle_check,
    render_headline,
    render_platforms,
    render_runtimes_by_length,
    render_stage_seconds,
    render_students,
)


def docs() -> list[str]:
    """The docs this script keeps: the top-level README, every page under docs/, and the benchmarks index."""
    pages = sorted(p.relative_to(common.ROOT).as_posix() for p in (common.ROOT / "docs").glob("*.md"))
    return ["README.md", *pages, "benchmarks/README.md"]


DOCS = tuple(docs())
MARKER = re.compile(r"<!-- ([a-z0-9-]+): ([^>]+?) -->\n(.*?)<!-- /\1 -->", re.S)


RENDERERS = {
    "budget": render_budget,
    "headline": render_headline,
    "students": render_students,
    "quantize-matrix": render_quantize_matrix,
    "quantize-ab": render_quantize_ab,
    "quantize-compare": render_quantize_compare,
    "distill-throughput": render_distill_throughput,
    "distill-matrix": render_distill_matrix,
    "compression-matrix": render_compression_matrix,
    "data-matrix": render_data_matrix,
    "default-seeds": render_default_seeds,
    "ner-variants": render_ner_variants,
    "ner-types": render_ner_types,
    "albert": render_albert,
    "repeatability": render_repeatability,
    "arm64-check": render_arm64_check,
    "stage-seconds": render_stage_seconds,
    "bundle-check": render_bundle_check,
    "platforms": render_platforms,
    "bench-repeats": render_bench_repeats,
    "isa-check": render_isa_check,
    "int8-decisions": render_int8_decisions,
    "device-side": render_device_side,
    "test-tiers": render_test_tiers,
    "embedding-tiers": render_embedding_tiers,
    "embedding-variants": render_embedding_variants,
    "embedding-shorter": render_embedding_shorter,
    "files": render_files,
    "runtimes-by-length": render_runtimes_by_length,
    "executorch-attention": render_executorch_attention,
}


# ---- the docs ---------------------------------------------------------------------------------------------------
def render(kind: str, spec: str) -> str:
    if kind not in RENDERERS:
        raise DocError(f"unknown table kind '{kind}' (known: {', '.join(RENDERERS)})")
    paths = [p.strip() for p in spec.split(",") if p.strip()]
    try:
        return "\n".join(RENDERERS[kind](paths)) + "\n"
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DocError(f"{kind}: cannot render {spec}: {type(exc).__name__} {exc}") from None


def regenerate(text: str) -> str:
    def block(m: re.Match) -> str:
        kind, spec = m.group(1), m.group(2)
        return f"<!-- {kind}: {spec} -->\n{render(kind, spec)}<!-- /{kind} -->"

    return MARKER.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when a doc's tables differ from their files")
    ap.add_argument("--render", nargs=2, metavar=("KIND", "FILES"), help="print one block")
    ap.add_argument("docs", nargs="*", help="docs to process (default: README.md, docs/*.md, benchmarks/README.md)")
    args = ap.parse_args(argv)
    try:
        if args.render:
            print(render(*args.render), end="")
            return 0
        stale = []
        for doc in args.docs or docs():
            path = common.ROOT / doc
            old = path.read_text(encoding="utf-8")
            new = regenerate(old)
            if new == old:
                continue
            if args.check:
                stale.append(doc)
                sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), doc, f"{doc} (from its results files)"))
            else:
                path.write_text(new, encoding="utf-8")
                print(f"rewrote {doc}")
    except DocError as exc:
        print(f"readme_tables: error: {exc}", file=sys.stderr)
        return 2
    if stale:
        print(f"readme_tables: {', '.join(stale)} differ from their results files: run python benchmarks/readme_tables.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
