"""One call interface over on-device runtimes: feed int token arrays, get logits back (numpy only, no torch).

- OnnxModel: ONNX Runtime, .onnx or .ort files, dynamic batch and sequence length.
- LiteRTModel: a .tflite file with one signature per sequence-length bucket (`seq_32`, ...), batch 1: each row
  is padded to the smallest bucket that holds it.
- ExecuTorchModel: an ExecuTorch .pte (XNNPACK delegate), batch 1, a dynamic sequence axis (method `forward`) or
  one method per bucket (`seq_32`, ...), run by ExecuTorch's C++ runtime through a small ctypes library built
  against the `executorch` wheel (targets.executorch_native: no torch), or by the wheel's Python bindings, which
  link libtorch. Imported only when a .pte is loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LITERT_HINT = "pip install ai-edge-litert"
EXECUTORCH_HINT = "pip install executorch (the bert-compress[executorch] extra)"
EXECUTORCH_DEVICE_HINT = "pip install --no-deps executorch, and a C++ compiler (g++): no torch needed"
RUNTIME_OF_SUFFIX = {".onnx": "onnxruntime", ".ort": "onnxruntime", ".tflite": "litert", ".pte": "executorch"}


# ONNX Runtime settings every session of this runner gets (and the bundle's .ort files are made with). Its CPU
# SkipLayerNormalization kernel is slower than the Add + LayerNormalization it fuses, so the optimizer pass that
# fuses them is turned off: the int8 student runs 1.19-1.20x faster with this setting alone (onnxruntime 1.32,
# seq 128, one thread, Intel Xeon: benchmarks/results/quantize_ab.json and quantize_matrix.json). An app using a .onnx file sets the same config entry (the
# bundle README shows how); a .ort file keeps the unfused graph by itself.
SESSION_CONFIG = {"optimization.disable_specified_optimizers": "SkipLayerNormFusion"}


EXTENSIONS_HINT = "pip install onnxruntime-extensions"
EXTENSIONS_DOMAIN = "ai.onnx.contrib"
"""onnxruntime-extensions' operator domain: a graph that uses it has the tokenizer inside (a string input)."""
OFFSETS_OUTPUT = "offset_mapping"


class RuntimeLoadError(Exception):
    """The runtime cannot load this model file (or is not installed)."""


class RuntimeMissing(RuntimeLoadError):
    """The runtime a model file needs is not installed here: the file may be fine (`check` and `bench` skip it and
    say what to install). `install`: the command that installs it."""

    def __init__(self, message: str, install: str):
        super().__init__(message)
        self.install = install


class OnnxModel:
    """An ONNX Runtime session on the CPU with an explicit thread count (0 = runtime default).
    `session_config`: ONNX Runtime config entries, SESSION_CONFIG when None ({} = ONNX Runtime's defaults)."""

    runtime = "onnxruntime"

    @staticmethod
    def io(input_names: list[str], output_names: list[str], shape: list, buckets: list[int] | None) -> tuple[list, list]:
        """What an app feeds this runtime's file and gets back (a bundle's metadata.json lists it)."""
        return ([{"name": n, "dtype": "int64", "shape": ["batch", "sequence"]} for n in input_names],
                [{"name": n, "dtype": "float32", "shape": shape} for n in output_names])

    @staticmethod
    def bundle_fields(buckets: list[int] | None, extras: dict) -> dict:
        """What metadata.json says of this runtime's file beyond its inputs and outputs."""
        return {}

    @staticmethod
    def missing(interpreter: str = "auto") -> "RuntimeMissing | None":
        """Why this runtime cannot run here (None: it can), without loading a model."""
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
            return RuntimeMissing("onnxruntime is not installed: pip install onnxruntime", "pip install onnxruntime")
        return None

    def __init__(self, path: str | Path, threads: int = 0, session_config: dict[str, str] | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeMissing("onnxruntime is not installed: pip install onnxruntime", "pip install onnxruntime") from None

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session_config = dict(SESSION_CONFIG if session_config is None else session_config)
        for key, value in self.session_config.items():
            options.add_session_config_entry(key, value)
        self.interpreter = f"onnxruntime {ort.__version__}"
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types per failure
            if EXTENSIONS_DOMAIN not in str(exc):
                raise RuntimeLoadError(f"onnxruntime cannot load {path}: {str(exc).splitlines()[0]}") from None
            # a string-in graph: its tokenizer runs as onnxruntime-extensions operators
            self.session = self._with_extensions(ort, path, options)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_types = {i.name: i.type for i in self.session.get_inputs()}
        self.text_input = next((n for n, t in self.input_types.items() if t == "tensor(string)"), None)
        """The string input of a string-in graph (one text per call), None for a graph fed ids."""
        self.output = next(o.name for o in self.session.get_outputs() if o.name != OFFSETS_OUTPUT)
        """The task output (a string-in graph also gives each token's character span, `offset_mapping`)."""

    def _with_extensions(self, ort, path, options):
        try:
            import onnxruntime_extensions
        except ImportError:
            raise RuntimeMissing(f"{Path(path).name} has the tokenizer in the graph (onnxruntime-extensions "
                                 f"operators): {EXTENSIONS_HINT}", EXTENSIONS_HINT) from None
        options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
        self.interpreter += f" + onnxruntime-extensions {onnxruntime_extensions.__version__}"
        try:
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RuntimeLoadError(f"onnxruntime cannot load {path}: {str(exc).splitlines()[0]}") from None

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self.text_input is not None:  # one text per call, as the graph's tokenizer takes it
            texts = np.asarray(feeds[self.text_input], dtype=object).reshape(-1)
            return np.concatenate([self.session.run([self.output], {self.text_input: texts[i:i + 1]})[0]
                                   for i in range(len(texts))])
        dtype = lambda name: np.int32 if "int32" in self.input_types[name] else np.int64  # noqa: E731
        inputs = {n: np.asarray(feeds[n], dtype=dtype(n)) for n in self.input_names}
        return self.session.run([self.output], inputs)[0]


def _interpreter_classes(choice: str):
    """(label, Interpreter class) candidates in the order tried."""
    found = []
    if choice in ("auto", "tflite-runtime"):
        try:
            import tflite_runtime
            from tflite_runtime.interpreter import Interpreter

            found.append((f"tflite-runtime {getattr(tflite_runtime, '__version__', '?')}", Interpreter))
        except ImportError:
            if choice == "tflite-runtime":
                raise RuntimeMissing(f"tflite-runtime is not installed (pip install tflite-runtime), or use {LITERT_HINT}",
                                     "pip install tflite-runtime") from None
    if choice in ("auto", "ai-edge-litert"):
        try:
            from ai_edge_litert.interpreter import Interpreter
            from importlib.metadata import version

            found.append((f"ai-edge-litert {version('ai-edge-litert')}", Interpreter))
        except ImportError:
            if choice == "ai-edge-litert" or not found:
                raise RuntimeMissing(f"no TFLite interpreter is installed: {LITERT_HINT}", LITERT_HINT) from None
    return found


class LiteRTModel:
    """A bucketed .tflite model: signatures `seq_<L>` with [1, L] int32 inputs (or one signature of fixed length L:
    the task libraries' file of the android-litert bundle, one bucket)."""

    runtime = "litert"

    @staticmethod
    def io(input_names: list[str], output_names: list[str], shape: list, buckets: list[int] | None) -> tuple[list, list]:
        # batch-1 signatures, inputs by name in sorted order; litert-torch names the outputs output_0, output_1, ...
        return ([{"name": n, "dtype": "int32", "shape": [1, "bucket"]} for n in sorted(input_names)],
                [{"name": f"output_{i}", "dtype": "float32", "shape": [1, *shape[1:]]} for i in range(len(output_names))])

    bundle_fields = OnnxModel.bundle_fields

    @staticmethod
    def missing(interpreter: str = "auto") -> "RuntimeMissing | None":
        try:
            _interpreter_classes(interpreter)
        except RuntimeMissing as exc:
            return exc
        return None

    def __init__(self, path: str | Path, threads: int = 0, interpreter: str = "auto"):
        if interpreter not in ("auto", "ai-edge-litert", "tflite-runtime"):
            raise RuntimeLoadError(f"unknown TFLite interpreter '{interpreter}': use auto, ai-edge-litert or tflite-runtime")
        failures = []
        for label, cls in _interpreter_classes(interpreter):
            try:
                self._interp = cls(model_path=str(path), num_threads=threads or None)
                signatures = self._interp.get_signature_list()
                self._runners = {name: self._interp.get_signature_runner(name) for name in signatures}
            except Exception as exc:  # the interpreter raises RuntimeError / ValueError for unknown ops, versions
                failures.append(f"{label} cannot load {Path(path).name}: {str(exc).strip().splitlines()[0][:200]}")
                continue
            self.interpreter = label
            break
        else:
            hint = "" if any("ai-edge-litert" in f for f in failures) else f"; use a current interpreter: {LITERT_HINT}"
            raise RuntimeLoadError("; ".join(failures) + hint)
        self.notes = failures  # e.g. tflite-runtime tried first and failed
        self.buckets = sorted(int(n.split("_", 1)[1]) for n in self._runners if n.startswith("seq_"))
        if not self.buckets and len(self._runners) == 1:  # the task libraries' file: one fixed-length signature
            (name, runner), = self._runners.items()
            self.buckets = [int(next(iter(runner.get_input_details().values()))["shape"][-1])]
            self._runners = {f"seq_{self.buckets[0]}": runner}
        if not self.buckets:
            raise RuntimeLoadError(f"{path} has no seq_<length> signatures: it was not written by bert-compress")
        details = self._runners[f"seq_{self.buckets[0]}"].get_input_details()
        self.input_names = sorted(details)
        self.input_dtypes = {n: d["dtype"] for n, d in details.items()}
        # a full-integer model may give int8 logits: scale and zero point turn them back into floats
        self._dequant = {}
        for b in self.buckets:
            out = next(iter(self._runners[f"seq_{b}"].get_output_details().values()))
            scale, zero = out.get("quantization", (0.0, 0))
            self._dequant[b] = (scale, zero) if scale else None

    @property
    def max_length(self) -> int:
        return self.buckets[-1]

    def bucket_for(self, length: int) -> int:
        for b in self.buckets:
            if length <= b:
                return b
        raise ValueError(f"{length} tokens do not fit the largest bucket ({self.max_length})")

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return one_row_per_call(feeds, self.input_names, self.input_dtypes, self.bucket_for, self._run_bucket)

    def _run_bucket(self, bucket: int, inputs: dict[str, np.ndarray]) -> np.ndarray:
        out = next(iter(self._runners[f"seq_{bucket}"](**inputs).values()))[0]
        if self._dequant[bucket]:
            scale, zero = self._dequant[bucket]
            out = (out.astype(np.float32) - zero) * scale
        return out


class ExecuTorchModel:
    """An ExecuTorch program: int64 inputs [1, L]. A program lowered with a dynamic sequence axis has `forward`;
    one lowered per bucket has `seq_<L>` methods, and each row is padded to the smallest that holds it.

    engine: `native` runs ExecuTorch's C++ runtime through ctypes (targets.executorch_native: no torch, what an app
    runs); `python` its Python bindings (which link libtorch and take torch tensors); `auto` the first that works."""

    runtime = "executorch"

    @staticmethod
    def io(input_names: list[str], output_names: list[str], shape: list, buckets: list[int] | None) -> tuple[list, list]:
        # batch 1, positional inputs; a dynamic sequence axis, or bucket methods
        return ([{"name": n, "dtype": "int64", "shape": [1, "bucket" if buckets else "sequence"]} for n in input_names],
                [{"name": n, "dtype": "float32", "shape": [1, *shape[1:]]} for n in output_names])

    @staticmethod
    def bundle_fields(buckets: list[int] | None, extras: dict) -> dict:
        return {"methods": [f"seq_{b}" for b in buckets] if buckets else ["forward"],
                "portable_ops": extras.get("portable_ops") or {}}

    @staticmethod
    def missing(interpreter: str = "auto") -> "RuntimeMissing | None":
        from targets.executorch_native import NativeUnavailable, _lib

        try:
            _lib()  # the torch-free library (built once, cached)
            return None
        except NativeUnavailable as exc:
            cause = why_no_executorch(ImportError(), [str(exc)])
        return cause if isinstance(cause, RuntimeMissing) else None  # else the Python bindings may run it

    def __init__(self, path: str | Path, threads: int = 0, engine: str = "auto"):
        import os

        if engine not in ("auto", "native", "python"):
            raise RuntimeLoadError(f"unknown ExecuTorch engine '{engine}': use auto, native or python")
        if not Path(path).is_file():
            raise RuntimeLoadError(f"{path} does not exist")
        self.threads = threads or os.cpu_count() or 1
        self.notes: list[str] = []
        self._native = self._program = None
        if engine in ("auto", "native"):
            from targets.executorch_native import NativeProgram, NativeUnavailable, executorch_dir, version

            try:
                self._native = NativeProgram(path, self.threads)
            except NativeUnavailable as exc:
                if engine == "native":
                    raise RuntimeLoadError(str(exc)) from None
                self.notes.append(f"no torch-free ExecuTorch library: {exc}")
            except RuntimeError as exc:
                raise RuntimeLoadError(str(exc)) from None
            else:
                names = self._native.method_names
                inputs = self._native.num_inputs(names[0] if "forward" not in names else "forward")
                self.interpreter = f"executorch {version(executorch_dir())} (C++ runtime through ctypes, XNNPACK)"
        if self._native is None:
            names, inputs = self._load_python(path)
        self.method_names = names
        self.buckets = sorted(int(n.split("_", 1)[1]) for n in names if n.startswith("seq_"))
        self.dynamic = "forward" in names
        if not self.dynamic and not self.buckets:
            raise RuntimeLoadError(f"{path} has neither a `forward` nor `seq_<length>` methods: it was not written by bert-compress")
        self.input_names = list(INPUT_ORDER[:inputs])
        self.max_length = None if self.dynamic else self.buckets[-1]
        self.engine = "native" if self._native is not None else "python"

    def _load_python(self, path) -> tuple[list[str], int]:
        import warnings

        from targets.executorch_native import stderr_quiet as _stderr_quiet

        try:
            with warnings.catch_warnings(), _stderr_quiet():  # an 'experimental API' warning; torchao's CUDA kernels
                warnings.simplefilter("ignore")
                from executorch.runtime import Runtime
                from executorch.extension.pybindings import portable_lib
        except ImportError as exc:
            raise why_no_executorch(exc, [n.removeprefix("no torch-free ExecuTorch library: ") for n in self.notes]) from None
        from importlib.metadata import version

        self.interpreter = f"executorch {version('executorch')} (Python bindings, XNNPACK)"
        # XNNPACK's thread pool is one per process, and resetting it under a loaded method corrupts the heap
        # (measured: executorch 1.5.1 aborted in `free()`): it is sized before the program loads, never after
        with _stderr_quiet():
            if portable_lib._threadpool_get_thread_count() != self.threads:
                portable_lib._unsafe_reset_threadpool(self.threads)
        try:
            with _stderr_quiet():  # the C++ runtime logs its CPU probing to stderr
                program = Runtime.get().load_program(Path(path))
                names = sorted(program.method_names)
                self._methods = {n: program.load_method(n) for n in names}
        except Exception as exc:  # the pybindings raise RuntimeError with the runtime's error code
            raise RuntimeLoadError(f"executorch cannot load {Path(path).name}: {str(exc).strip().splitlines()[0][:200]}") from None
        self._program = program  # methods borrow from it
        meta = program.metadata("forward" if "forward" in names else names[0])
        return names, meta.num_inputs()

    def _execute(self, method: str, inputs: list[np.ndarray]) -> np.ndarray:
        if self._native is not None:
            return self._native.run(method, inputs)
        import torch

        return self._methods[method].execute([torch.from_numpy(a) for a in inputs])[0].numpy()

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return one_row_per_call(feeds, self.input_names, dict.fromkeys(self.input_names, np.int64), self._width,
                                lambda width, inputs: self._execute("forward" if self.dynamic else f"seq_{width}",
                                                                    [inputs[n] for n in self.input_names])[0])

    def _width(self, used: int) -> int:
        """The fed length: the text's own (a dynamic axis), else the smallest bucket method that holds it."""
        if self.dynamic:
            return used
        width = next((b for b in self.buckets if used <= b), None)
        if width is None:
            raise ValueError(f"{used} tokens do not fit the largest bucket ({self.buckets[-1]})")
        return width


def why_no_executorch(exc: ImportError, native_failures: list[str]) -> RuntimeLoadError:
    """Why neither engine runs here, from the real cause: executorch absent, or the torch-free library not
    built (the reason it gave) where the Python bindings would need torch."""
    import importlib.util

    try:
        installed = importlib.util.find_spec("executorch") is not None
    except (ImportError, ValueError):
        installed = False
    if not installed:
        return RuntimeMissing(f"ExecuTorch is not installed: {EXECUTORCH_DEVICE_HINT}", EXECUTORCH_DEVICE_HINT)
    native = "; ".join(native_failures)
    if _torch_missing() and not native:  # the Python engine asked for by name
        return RuntimeLoadError("ExecuTorch's Python runtime links libtorch, which is not installed: use the "
                                "torch-free engine ('native', a C++ compiler builds it once) or install torch (apps "
                                "use ExecuTorch's C++ / Java / Swift runtime, which needs no torch)")
    if _torch_missing():
        return RuntimeMissing(f"executorch is installed, but its torch-free library is unavailable ({native}) and its "
                              "Python bindings link libtorch, which is not installed: install a C++ compiler "
                              "(the runner builds the library once) or torch", "apt-get install g++")
    return RuntimeLoadError(f"executorch's Python runtime cannot be imported ({exc}); the torch-free library: {native or 'not tried'}")


def one_row_per_call(feeds: dict[str, np.ndarray], names: list[str], dtypes: dict, width_for, run) -> np.ndarray:
    """A batch-1 runtime over a batch: each row cut to its used length, zero-padded to `width_for(length)`, run as
    `run(width, {name: [1, width] array})` -> that row's output. A tag per token comes back at the fed positions,
    as an ONNX model gives them (not the bucket's)."""
    mask = np.asarray(feeds["attention_mask"])
    rows = []
    for r in range(mask.shape[0]):
        used = int(mask[r].nonzero()[0].max()) + 1 if mask[r].any() else 1
        width = width_for(used)
        inputs = {}
        for n in names:
            row = np.zeros((1, width), dtype=dtypes[n])
            row[0, :used] = np.asarray(feeds[n])[r, :used]
            inputs[n] = row
        out = run(width, inputs)
        if out.ndim == 2:
            full = np.zeros((mask.shape[1], out.shape[-1]), dtype=np.float32)
            full[:used] = out[:used]
            out = full
        rows.append(out)
    return np.stack(rows).astype(np.float32)


def _torch_missing() -> bool:
    import importlib.util
    import sys

    if "torch" in sys.modules and sys.modules["torch"] is None:  # blocked, as the torch-free runner checks do
        return True
    try:
        return importlib.util.find_spec("torch") is None
    except ValueError:
        return True


INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids")
"""The order every exporter gives the graph's inputs (compress.export.onnx.INPUT_ORDER)."""


RUNTIMES = {cls.runtime: cls for cls in (OnnxModel, LiteRTModel, ExecuTorchModel)}
"""runtime name -> its session class (what a file of that runtime takes and gives: `io`, `bundle_fields`)"""


def load_model(path: str | Path, threads: int = 0, interpreter: str = "auto"):
    """The runtime for a model file, by its suffix."""
    runtime = RUNTIME_OF_SUFFIX.get(Path(path).suffix)
    if runtime == "onnxruntime":
        return OnnxModel(path, threads)
    if runtime == "litert":
        return LiteRTModel(path, threads, interpreter)
    if runtime == "executorch":
        return ExecuTorchModel(path, threads)
    raise RuntimeLoadError(f"{path}: unknown model format '{Path(path).suffix}' (expected .onnx, .ort, .tflite or .pte)")


def missing_runtime(path: str | Path, interpreter: str = "auto") -> RuntimeMissing | None:
    """Why the runtime a model file needs cannot run here (not installed: what to install), None when it can;
    nothing is loaded (`check` and `bench` skip such a file with this line)."""
    runtime = RUNTIME_OF_SUFFIX.get(Path(path).suffix)
    return RUNTIMES[runtime].missing(interpreter) if runtime in RUNTIMES else None
