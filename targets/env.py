"""The machine a measurement was made on: CPU model and SIMD flags, board, OS, Python, runtime versions.

Torch-free, so a Pi or a phone records the same fields as the build machine. Every benchmark JSON carries it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# ARM "CPU part" codes (ARM Ltd, implementer 0x41) -> core name: /proc/cpuinfo on ARM has no model name
ARM_PARTS = {
    "0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57", "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76", "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78", "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2", "0xd49": "Neoverse-N2", "0xd4d": "Cortex-A715", "0xd4e": "Cortex-X3", "0xd4f": "Neoverse-V2",
    "0xd80": "Cortex-A520", "0xd81": "Cortex-A720", "0xd82": "Cortex-X4",
}
# the flags that decide which int8 / fp32 kernels a runtime can use
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8",
              "asimd", "asimddp", "i8mm", "asimdhp", "bf16", "sve", "sve2")
RUNTIME_PACKAGES = ("numpy", "onnxruntime", "ai-edge-litert", "tflite-runtime", "executorch")


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per processor block (plus trailing machine-wide blocks)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    blocks = []
    for chunk in text.split("\n\n"):
        fields = {}
        for line in chunk.splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                fields[key.strip()] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def cpu_model(blocks: list[dict[str, str]] | None = None) -> str:
    blocks = _cpuinfo() if blocks is None else blocks
    for b in blocks:
        if b.get("model name"):
            return b["model name"]
    parts = sorted({ARM_PARTS.get(b.get("CPU part", "").lower(), b.get("CPU part")) for b in blocks if b.get("CPU part")})
    if parts:  # big.LITTLE phones list several core types
        return " + ".join(p for p in parts if p)
    return platform.processor() or platform.machine()


def cpu_flags(blocks: list[dict[str, str]] | None = None) -> list[str]:
    blocks = _cpuinfo() if blocks is None else blocks
    for b in blocks:
        flags = b.get("flags") or b.get("Features")
        if flags:
            return sorted(set(flags.split()))
    return []


# the widest int8 dot-product instructions, best first: ONNX Runtime (MLAS), XNNPACK and torch pick their int8 kernels,
# and so their speed and rounding, by these; an int8 model checked on one is re-checked on another
INT8_ISAS = (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx512bw", "AVX-512"),
             ("avx2", "AVX2"), ("i8mm", "ARM i8mm"), ("asimddp", "ARM dot-product"), ("asimd", "ARM NEON"),
             ("sse4_1", "SSE4.1"))


# /proc/cpuinfo flag -> numpy's name for the same feature, as the CPU answers CPUID to this process
_NUMPY_FEATURES = {"avx2": "AVX2", "avx512bw": "AVX512BW", "avx512_vnni": "AVX512VNNI", "avx_vnni": "AVXVNNI",
                   "asimddp": "ASIMDDP", "asimd": "ASIMD"}


def _runtime_flags(flags: set[str]) -> set[str]:
    """Drop the flags the CPU does not grant this process: under an emulator (qemu-user shows the host's
    /proc/cpuinfo but answers CPUID as the emulated CPU) the kernels a runtime picks follow CPUID."""
    try:
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as features
        except ImportError:  # numpy < 2
            from numpy.core._multiarray_umath import __cpu_features__ as features
    except ImportError:
        return flags
    absent = {flag for flag, name in _NUMPY_FEATURES.items() if name in features and not features[name] and flag in flags}
    if "avx512bw" in absent:  # no AVX-512 at all: nor its VNNI, nor AMX (which needs it)
        absent |= {"avx512_vnni", "amx_int8"}
    if absent:  # CPUID denies what /proc/cpuinfo lists (an emulator): flags numpy cannot confirm are not trusted either
        absent |= {flag for flag, name in _NUMPY_FEATURES.items() if name not in features}
    return flags - absent


def int8_isa(flags: list[str] | None = None) -> str:
    """The instruction set this CPU's int8 kernels run on, e.g. 'AVX2' or 'AVX-512 VNNI'."""
    have = _runtime_flags(set(cpu_flags())) if flags is None else set(flags)
    return next((name for flag, name in INT8_ISAS if flag in have), "baseline")


def board() -> str | None:
    """The board or phone model when the OS says (Raspberry Pi device tree, Android's getprop)."""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace").strip("\x00\n ") or None
        except OSError:
            continue
    if os.environ.get("ANDROID_ROOT"):
        try:
            out = subprocess.run(["getprop", "ro.product.model"], capture_output=True, text=True, timeout=5).stdout.strip()
            return f"Android {out}" if out else "Android"
        except (OSError, subprocess.SubprocessError):
            return "Android"
    return None


def versions(packages=RUNTIME_PACKAGES) -> dict[str, str | None]:
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment(packages=RUNTIME_PACKAGES) -> dict:
    blocks = _cpuinfo()
    flags = cpu_flags(blocks)
    return {
        "cpu": cpu_model(blocks),
        "board": board() or next((b["Model"] for b in blocks if b.get("Model")), None),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "simd": [f for f in SIMD_FLAGS if f in flags],
        "int8_isa": int8_isa(sorted(_runtime_flags(set(flags)))),
        "cpu_flags": flags,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions(packages),
    }
