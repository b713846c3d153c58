"""ExecuTorch without torch: a small C library over ExecuTorch's C++ `Module` (pte_native.cc), built against the
`executorch` wheel's own headers and shared libraries (libexecutorch, the optimized kernels, the XNNPACK backend)
and called through ctypes. The wheel's Python bindings link libtorch; these libraries do not, so a Pi or the
emulated ARM64 runner runs a .pte with numpy and the wheel alone (`pip install --no-deps executorch`).

The library is compiled once per executorch version and machine (g++, 2 s) into ~/.cache/bert-compress/
executorch-native/, or taken from $BERT_COMPRESS_PTE_NATIVE (e.g. cross-compiled for another CPU with `build`).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("pte_native.cc")
ENV = "BERT_COMPRESS_PTE_NATIVE"
LIBS = ("executorch", "executorch_kernels_optimized", "executorch_backend_xnnpack", "executorch_threadpool")


class NativeUnavailable(Exception):
    """No torch-free ExecuTorch library here (no executorch wheel, no compiler): one line saying which."""


def executorch_dir() -> Path:
    """The installed executorch package's folder, found without importing it (its __init__ would import torch)."""
    try:
        spec = importlib.util.find_spec("executorch")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise NativeUnavailable("executorch is not installed (pip install executorch; --no-deps is enough to run a .pte)")
    root = Path(list(spec.submodule_search_locations)[0])
    if not (root / "include").is_dir() or not (root / "lib" / "libexecutorch.so").is_file():
        raise NativeUnavailable(f"{root} has no include/ and lib/libexecutorch.so: an executorch wheel without its C++ libraries")
    return root


def version(root: Path) -> str:
    text = (root / "version.py").read_text() if (root / "version.py").is_file() else ""
    for line in text.splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("'\"")
    return "unknown"


def build(root: Path, out: Path, cxx: str = "g++", libs_at: Path | None = None) -> Path:
    """Compile pte_native.cc against the executorch wheel in `root` (its include/ and lib/) into `out`. `cxx` may be
    a cross compiler (aarch64-linux-gnu-g++) with `root` an aarch64 wheel. The library finds the wheel's libraries
    through its rpath: `libs_at`, default `root`/lib (another path when the wheel moves after the build)."""
    if shutil.which(cxx) is None:
        raise NativeUnavailable(f"no C++ compiler '{cxx}' to build the torch-free ExecuTorch library")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    cmd = [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-DC10_USING_CUSTOM_GENERATED_MACROS", str(SOURCE),
           f"-I{root / 'include'}", f"-I{root / 'include/executorch/runtime/core/portable_type/c10'}",
           f"-L{root / 'lib'}", "-Wl,--no-as-needed", *[f"-l{lib}" for lib in LIBS], f"-Wl,-rpath,{libs_at or root / 'lib'}",
           "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        tail = [line for line in proc.stderr.splitlines() if "error" in line][:1] or proc.stderr.splitlines()[-1:] or ["?"]
        raise NativeUnavailable(f"building the torch-free ExecuTorch library failed: {tail[0][:200]}")
    os.replace(tmp, out)
    return out


def library_path() -> Path:
    """$BERT_COMPRESS_PTE_NATIVE, else this machine's cached build for the installed wheel (built when missing)."""
    if os.environ.get(ENV):
        path = Path(os.environ[ENV])
        if not path.is_file():
            raise NativeUnavailable(f"${ENV} names {path}, which does not exist")
        return path
    root = executorch_dir()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bert-compress" / "executorch-native"
    where = hashlib.sha256(str(root).encode()).hexdigest()[:10]  # one build per installed wheel
    path = base / f"{version(root)}-{platform.machine()}-{where}" / "libbcx_pte.so"
    return path if path.is_file() else build(root, path)


_LIB = None


def _lib():
    global _LIB
    if _LIB is None:
        path = library_path()
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise NativeUnavailable(f"cannot load {path}: {exc}") from None
        lib.bcx_set_threads.argtypes, lib.bcx_set_threads.restype = [ctypes.c_int], ctypes.c_int
        lib.bcx_load.argtypes, lib.bcx_load.restype = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int], ctypes.c_void_p
        lib.bcx_method_names.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.bcx_num_inputs.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.bcx_run.restype = ctypes.c_long
        lib.bcx_run.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                ctypes.c_int, ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        lib.bcx_free.argtypes = [ctypes.c_void_p]
        _LIB = lib
    return _LIB


class stderr_quiet:
    """Silence file descriptor 2 (the C++ runtime logs there, below Python's sys.stderr)."""

    def __enter__(self):
        import sys

        sys.stderr.flush()
        self._saved, self._null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(self._null, 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        os.close(self._null)
        return False


class NativeProgram:
    """One loaded .pte: method names, input counts, and `run(method, int64 arrays [1, L]) -> float32 array`."""

    def __init__(self, path: str | Path, threads: int):
        self.lib = _lib()
        err = ctypes.create_string_buffer(512)
        with stderr_quiet():  # the runtime logs the pool resize and its CPU probing
            self.lib.bcx_set_threads(threads)  # before loading: resizing under a loaded method corrupts the heap
            self.handle = self.lib.bcx_load(str(path).encode(), err, len(err))
        if not self.handle:
            raise RuntimeError(err.value.decode(errors="replace"))
        names = ctypes.create_string_buffer(8192)
        self.lib.bcx_method_names(self.handle, names, len(names))
        self.method_names = sorted(n for n in names.value.decode().splitlines() if n)
        self._out = np.zeros(1 << 20, dtype=np.float32)
        self._shape = np.zeros(4, dtype=np.int64)

    def num_inputs(self, method: str) -> int:
        return int(self.lib.bcx_num_inputs(self.handle, method.encode()))

    def run(self, method: str, inputs: list[np.ndarray]) -> np.ndarray:
        arrays = [np.ascontiguousarray(a, dtype=np.int64) for a in inputs]
        pointers = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
        ndim = ctypes.c_int()
        n = self.lib.bcx_run(self.handle, method.encode(), pointers, len(arrays), arrays[0].shape[1],
                             self._out.ctypes.data, self._out.size, self._shape.ctypes.data, ctypes.byref(ndim))
        if n < 0:
            raise RuntimeError(f"ExecuTorch failed to run {method} (error {-n - 2:#x})" if n < -1 else "output too large")
        return self._out[:n].reshape(self._shape[:ndim.value]).copy()

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.bcx_free(self.handle)
            self.handle = None
