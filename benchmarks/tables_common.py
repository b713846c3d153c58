"""What every table of the docs shares: the repository root, loading a results file, number formats, the line under
a table (CPU, instruction sets, versions, command), and what each results file records (its command, its machine).

Only the standard library and compress's leaf modules (number formats, the results record): `python
benchmarks/readme_tables.py --check` runs anywhere the repository is checked out.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from compress.bench import fmt  # noqa: E402 (one way to write a number, shared with report.md)
from compress.bench.cells import p50_at  # noqa: E402, F401 (the one latency-cell lookup)
from compress.bench.fmt import mb, ms  # noqa: E402, F401 (the tables import them from here)

# Scratch directories of the machines the results were made on, as the docs name them. The JSON files keep
# the paths as they were run; Markdown never shows a temp-dir path (tests/test_docs.py checks it). A path not
# listed here stays as it is, and that test fails until it is named.
PLACEHOLDERS = (
    (re.compile(r"/tmp/rep7/"), ""),  # run1.json / run2.json, committed beside their merged report
    (re.compile(r"/tmp/am_(?:task|vocab)_results\b"), "RESULTS"),
    (re.compile(r"/root/out\b"), "RESULTS"),
    (re.compile(r"/tmp/(?:full\d*|h192|h3)\b"), "OUT"),
    (re.compile(r"/tmp/(?:am_\w+|mx|tp\d+)\b"), "WORK"),
    (re.compile(r"/tmp/tiers\b"), "WORK"),
)

# /proc/cpuinfo flags -> instruction-set names, in the order they are printed
ISA = (("sse4_2", "SSE4.2"), ("avx", "AVX"), ("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512F"),
       ("avx512bw", "AVX-512BW"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
       ("avx512_bf16", "AVX-512 BF16"), ("amx_int8", "AMX-INT8"), ("amx_bf16", "AMX-BF16"),
       ("asimd", "NEON (ASIMD)"), ("asimdhp", "ASIMD fp16"), ("asimddp", "ARM dot-product"), ("i8mm", "ARM i8mm"),
       ("sve", "SVE"), ("sve2", "SVE2"), ("bf16", "ARM BF16"))

RUNTIMES = {"pytorch": "PyTorch eager", "onnxruntime": "ONNX Runtime", "litert": "LiteRT", "tflite": "LiteRT",
            "executorch": "ExecuTorch"}


class DocError(Exception):
    """A marker that names an unknown renderer or a results file that is missing or cannot be rendered."""


# ---- small helpers -------------------------------------------------------------------------------------------
def public_paths(text: str) -> str:
    """Temp-dir paths of the measuring machine -> the placeholders the docs use (OUT, WORK, RESULTS)."""
    for pattern, repl in PLACEHOLDERS:
        text = pattern.sub(repl, text)
    return text


def code(command: str) -> str:
    """A command as inline Markdown code: public paths, no backticks inside."""
    return "`" + public_paths(command).replace("`", "'") + "`"


def load(path: str) -> dict:
    p = ROOT / path
    if not p.is_file():
        raise DocError(f"{path} does not exist")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DocError(f"{path} is not valid JSON ({exc})") from None


def num(x, form: str = "{:.1f}", none: str = "—") -> str:
    """compress.bench.fmt.num with the tables' default of one decimal."""
    return fmt.num(x, form, none)


ratio = fmt.times  # the tables write ratios as speed-ups: '12.34×'



def isa_names(env: dict) -> list[str] | None:
    flags = env.get("simd") or env.get("cpu_flags")
    if not flags:
        return None
    have = set(flags)
    return [name for flag, name in ISA if flag in have]


# the widest int8 dot-product instructions first (as targets.env.INT8_ISAS): what int8 kernels run on
INT8_ISAS = (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx512bw", "AVX-512"),
             ("avx2", "AVX2"), ("i8mm", "ARM i8mm"), ("asimddp", "ARM dot-product"), ("asimd", "ARM NEON"),
             ("sse4_1", "SSE4.1"))


def int8_isa(env: dict) -> str | None:
    flags = set(env.get("cpu_flags") or env.get("simd") or [])
    return next((name for flag, name in INT8_ISAS if flag in flags), None)


def env_line(env: dict | None, commands: list[str], extra: str = "") -> str:
    """One line under a table: the CPU (model, cores, instruction sets), OS, Python, versions, the command."""
    env = env or {}
    parts = []
    cpu = env.get("cpu")
    if cpu:
        where = ", ".join(x for x in (env.get("machine"), f"{env['cores']} cores" if env.get("cores") else None) if x)
        isa = isa_names(env)
        isa_text = ", ".join(isa) if isa else "instruction sets not recorded in this file"
        int8 = env.get("int8_isa") or int8_isa(env)
        if int8:
            isa_text += f"; int8 kernels: {int8}"
        board = f", {env['board']}" if env.get("board") else ""
        parts.append(f"CPU: {cpu} ({where}{board}; {isa_text})")
    else:
        parts.append("CPU: not recorded in this file")
    if env.get("gpu"):
        parts.append(f"GPU: {env['gpu']}")
    if env.get("emulated"):
        parts.append(f"**emulated** ({env['emulated']}): timings rank models only")
    sw = [x for x in (env.get("os"), f"Python {env['python']}" if env.get("python") else None) if x]
    versions = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v)
    if versions:
        sw.append(versions)
    if sw:
        parts.append("; ".join(sw))
    line = ". ".join(parts) + "."
    if extra:
        line += " " + extra
    cmds = [c for c in commands if c]
    if cmds:
        line += " Command: " + "; ".join(code(c) for c in cmds) + "."
    else:
        line += " Command: not recorded in this file."
    return line


def commands_of(doc: dict) -> list[str]:
    """The command that made the file: a top-level one (e.g. the whole run), else the bench stage's own."""
    cmd = doc.get("command")
    cmd = cmd or ((doc.get("bench") or {}).get("command") if isinstance(doc.get("bench"), dict) else None)
    return [c.strip() for c in cmd.splitlines() if c.strip()] if isinstance(cmd, str) else []



def environment_of(doc: dict) -> dict | None:
    return doc.get("environment") or doc.get("device")


# ---- every results file: its command and environment ----------------------------------------------------------
# Results files that record no CPU, and why. tests/test_docs.py requires every other results JSON to carry one.
ENVIRONMENT_NOT_RECORDED = {
    # compares outputs (no timings); the emulated CPUs are in bench-cortex-a72/a76.json beside it, the x86
    # side is ../inputs/build_machine.json
    "benchmarks/results/devices_matrix/arm64/arm64_check.json": "output check only; the emulated CPUs are in bench-cortex-*.json beside it",
    "benchmarks/results/executorch_issue24_arm64/arm64_check.json": "output check only; the emulated CPUs are in bench-cortex-*.json beside it",
    # a copy of OUT/bundle/metadata.json, which records library versions but no CPU
    "benchmarks/results/devices_tinybert3_h192_bundle_metadata.json": "a bundle's metadata.json: library versions, no CPU",
    # four report summaries copied by hand; the last run's full report is devices_tinybert3_h192_report.json
    "benchmarks/results/devices_tinybert3_h192_bench_repeats.json": "summaries of four runs; the last run's report is devices_tinybert3_h192_report.json",
}


def results_files(root: str = "benchmarks/results") -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / root).rglob("*.json"))


def command_status(doc: dict) -> str:
    if doc.get("command_source"):
        return "added from the docs"
    if commands_of(doc):
        return "stored"
    if isinstance(doc.get("merged"), list) and all(commands_of(d) for d in doc["merged"]):
        return "in each merged input"
    return "none"


def environment_status(path: str, doc: dict) -> str:
    envs = [environment_of(doc)] if environment_of(doc) else [d.get("device") for d in doc.get("merged", []) if isinstance(d, dict)]
    envs = [e for e in envs if e]
    if not envs:
        return "none: " + ENVIRONMENT_NOT_RECORDED.get(path, "not recorded")
    cpus = ", ".join(dict.fromkeys(e.get("cpu") or "?" for e in envs))
    flags = all(isa_names(e) for e in envs)
    gpu = next((e["gpu"] for e in envs if e.get("gpu")), None)
    return f"{cpus}{f' + {gpu}' if gpu else ''}; " + ("instruction sets and versions" if flags else "versions; no instruction-set flags")

