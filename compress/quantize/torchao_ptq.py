"""torchao: quantized PyTorch students, after training (PTQ) or through quantization-aware distillation (QAD).

For PyTorch deployment (a server, a Pi running PyTorch); the ONNX / LiteRT artifacts come from the other
backends. Schemes:
  int8-dynamic  int8 weights per output channel, activations quantized per token at run time
                (Int8DynamicActivationInt8WeightConfig: torchao's x86 int8 kernels)
  int8-weight   int8 weights per output channel, fp32 activations (Int8WeightOnlyConfig)
  int4-weight   int4 weights in groups of `group_size`, fp32 activations (IntxWeightOnlyConfig: torchao's
                int4 kernels need CUDA)
QAD (`qad_epochs` ≥ 1): the student's linears are fake-quantized the same way (torchao QATConfig with
IntxFakeQuantizeConfig), distilled for that many epochs with the last distillation stage's losses, the fake
quantizers removed, then converted exactly like PTQ (`qad_epochs: 0`), so the two compare like for like.
The artifact is the quantized state dict; `load` rebuilds the model from the student and that file, read with
`torch.load(weights_only=True)` allowing only the torchao classes these schemes store (SAFE_GLOBALS): an
artifact from someone else cannot run code when loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from compress.errors import UserError, first_line
from compress.quantize.base import Backend, Context, Precision, Settings as _Settings, require_module


class Settings(_Settings):
    scheme: Literal["int8-dynamic", "int8-weight", "int4-weight"] = "int8-dynamic"
    group_size: int = Field(32, ge=8)
    """int4-weight: weights per group of this many input features share a scale."""
    qad_epochs: int = Field(0, ge=0)
    """0: post-training quantization; ≥ 1: quantization-aware distillation for that many epochs."""
    qad_lr: float | None = Field(None, gt=0)
    """QAD learning rate; default: the last distillation stage's."""
    embeddings: Literal["fp32", "int8"] = "fp32"
    """int8: the word-embedding table weight-only int8 per row, a quarter of its bytes; in eager PyTorch the lookup
    then dequantizes the whole table on every call (measured 3-4× slower on the default student)."""
    exclude: Literal["none", "sensitive"] = "none"
    """sensitive: the classifier (and the embeddings) stay fp32."""

    def precision(self) -> Precision:
        # weight-only schemes dequantize into fp32 matmuls: measured against the fp32 GEMM peak
        if self.scheme == "int8-dynamic":
            return Precision("int8 weights, int8 activations (quantized per call)", "int8")
        if self.scheme == "int8-weight":
            return Precision("int8 weights, fp32 activations", "fp32")
        return Precision("int4 weights", "fp32")


def base_config(settings: Settings):
    """The deployed format: torchao's x86 int8 kernels for int8; int4 as intx (torchao's int4 kernels need CUDA)."""
    import torch

    require_module("torchao")
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerGroup

    if settings.scheme == "int8-dynamic":
        return Int8DynamicActivationInt8WeightConfig()
    if settings.scheme == "int8-weight":
        return Int8WeightOnlyConfig()
    return IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(settings.group_size))


def fake_quant_config(settings: Settings, step: str):
    """QAT: fake-quantize what the deployed format quantizes (per-token int8 activations, int8 / int4 weights)."""
    import torch
    from torchao.quantization.qat import IntxFakeQuantizeConfig, QATConfig

    if step == "convert":  # drop the fake quantizers; the trained weights are then converted like PTQ
        return QATConfig(step="convert")
    act = IntxFakeQuantizeConfig(torch.int8, "per_token", is_symmetric=False) if settings.scheme == "int8-dynamic" else None
    weight = (IntxFakeQuantizeConfig(torch.int4, group_size=settings.group_size, is_symmetric=True)
              if settings.scheme == "int4-weight" else IntxFakeQuantizeConfig(torch.int8, "per_channel", is_symmetric=True))
    return QATConfig(activation_config=act, weight_config=weight, step="prepare")


def _filter(settings: Settings):
    import torch

    seen: set[int] = set()

    def wanted(module, fqn: str) -> bool:
        # torchao walks the module tree, so a module shared by several layers (ALBERT-style sharing) comes up
        # once per layer: quantize it the first time only. Exact type: a FakeQuantizedLinear is not re-wrapped.
        if type(module) is not torch.nn.Linear or id(module) in seen:
            return False
        seen.add(id(module))
        if settings.scheme == "int4-weight" and module.in_features % settings.group_size:
            return False  # groups must tile the input features
        return not (settings.exclude == "sensitive" and fqn.split(".")[0] == "classifier")

    return wanted


def quantize_embeddings(model, settings: Settings):
    """The vocabulary table (most of a small student's bytes): int8 per row, weight-only (a lookup has no matmul)."""
    import torch
    from torchao.quantization import IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerAxis

    if settings.embeddings == "int8" and settings.exclude == "none":
        quantize_(model, IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0)),
                  filter_fn=lambda m, fqn: isinstance(m, torch.nn.Embedding) and fqn.endswith("word_embeddings"))
    return model


def convert(model, settings: Settings):
    from torchao.quantization import quantize_

    quantize_(model, base_config(settings), filter_fn=_filter(settings))
    return quantize_embeddings(model, settings)


def quantize(settings: Settings, ctx: Context, dst: Path) -> Path:
    import torch

    from compress.student.albert import tie_modules
    from compress.tasks import load_any_student

    student = load_any_student(ctx.student_dir)
    if settings.qad_epochs:
        from torchao.quantization import quantize_

        if ctx.qad is None:
            raise ValueError("quantization-aware distillation needs the distillation set-up (run it through the pipeline)")
        quantize_(student, fake_quant_config(settings, "prepare"), filter_fn=_filter(settings))
        tie_modules(student)  # prepare swaps modules: point every layer of a group at the leader's new ones
        ctx.notes["qad"] = ctx.qad(student, settings.qad_epochs, settings.qad_lr)
        quantize_(student.eval(), fake_quant_config(settings, "convert"))
        tie_modules(student)
    convert(student.eval(), settings)
    torch.save(student.state_dict(), dst)
    return dst


def safe_globals() -> list:
    """The torchao classes a saved artifact of these schemes names: its tensor subclasses and their settings."""
    from torchao.quantization import Int8Tensor, IntxUnpackedToInt8Tensor
    from torchao.quantization.granularity import PerRow
    from torchao.quantization.quant_primitives import MappingType
    from torchao.quantization.quantize_.workflows.int8.int8_tensor import QuantizeTensorToInt8Kwargs

    return [Int8Tensor, IntxUnpackedToInt8Tensor, PerRow, MappingType, QuantizeTensorToInt8Kwargs]


def load(path: Path, settings: Settings, student_dir: Path):
    """The quantized student: rebuilt from the fp32 student's config and the saved quantized tensors.

    The file is loaded as tensors and the classes in safe_globals() only, nothing else is executed; a file that
    needs more, or does not fit the student and settings, is one UserError."""
    import pickle

    import torch

    from compress.tasks import load_any_student

    model = convert(load_any_student(student_dir), settings)
    expected = model.state_dict()
    try:
        with torch.serialization.safe_globals(safe_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:
            names = []
        raise UserError(f"torchao artifact {path} cannot be read: it holds Python objects"
                        f"{' (' + ', '.join(names[:3]) + ')' if names else ''} besides tensors and torchao's quantized "
                        "tensors, which are not loaded because loading them could run code: redo quantize with --force") from None
    except Exception as exc:  # truncated or not a PyTorch file
        raise UserError(f"torchao artifact {path} cannot be read ({first_line(exc)}): redo quantize with --force") from None
    if not isinstance(state, dict):
        raise UserError(f"torchao artifact {path} is not a state dict: redo quantize with --force")
    wrong = [k for k in expected if type(state.get(k)) is not type(expected[k])] + sorted(set(state) - set(expected))
    if wrong:  # another student's or another scheme's tensors (load_state_dict(assign=True) would take them)
        raise UserError(f"torchao artifact {path} does not fit the student in {student_dir} with {settings.describe()} "
                        f"(tensors {', '.join(wrong[:3])}): redo quantize with --force")
    model.load_state_dict(state, assign=True)
    return model.eval()


def fallbacks(settings: Settings) -> list[Settings]:
    return [settings.model_copy(update={"exclude": "sensitive"})] if settings.exclude == "none" else []


BACKEND = Backend("torchao", "pytorch", Settings, quantize, fallbacks,
                  "torchao quantized PyTorch student (PTQ or quantization-aware distillation)", starts_from=None)
