"""A TFLite model the platforms' text task libraries read from a string: MediaPipe Tasks `TextClassifier` /
`TextEmbedder` (Android, iOS, Web, Python; one C++ core) and the TFLite Task Library's BERT APIs.

Those libraries tokenize inside, from the model's TFLite metadata: the WordPiece vocabulary, and which input is
ids, mask and segment ids. They take one signature with three int32 [1, L] inputs (the bucketed file of the
export stage, three signatures, is refused: "EMBEDDING_LOOKUP is not produced"), so the student is converted
again at the run's max_length, with the task's output (class probabilities, or the sentence vector), quantized
as the shipped LiteRT artifact was, and the metadata is written with MediaPipe's own metadata writers.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path

MEDIAPIPE_HINT = "pip install mediapipe"
_PYWRAP = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


def unsupported_tokenizer(tokenizer) -> str | None:
    """Why the metadata cannot describe this tokenizer (None: it can). MediaPipe's BERT preprocessor is WordPiece
    that lower-cases its input; its metadata has no field for a cased or a byte-level BPE / Unigram vocabulary."""
    if tokenizer.kind != "bert-wordpiece":
        return (f"the student's tokenizer is {tokenizer.kind}; TFLite text metadata (MediaPipe, TFLite Task Library) "
                "describes BERT WordPiece only")
    if not tokenizer.lowercase:
        return "the student's tokenizer is cased; MediaPipe's BERT tokenizer always lower-cases its input"
    return None


class TaskModel:
    """The single-signature wrapper: ids, mask, segment ids -> probabilities (classifier) or the sentence vector."""

    @staticmethod
    def wrap(student, embedding: bool):
        import torch

        from compress.export.onnx import LogitsOnly

        class _Probabilities(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.inner = LogitsOnly(model)

            def forward(self, input_ids, attention_mask, token_type_ids):
                out = self.inner(input_ids, attention_mask, token_type_ids)
                return out if embedding else torch.softmax(out, dim=-1)

        return _Probabilities(student.eval()).eval()


def convert_single(student, embedding: bool, max_length: int, path: Path) -> Path:
    """fp32 .tflite with one signature: input_ids, attention_mask, token_type_ids int32 [1, max_length]."""
    import torch

    from compress.export.tflite import _converter_quiet, require_litert_torch

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    litert_torch = require_litert_torch()
    sample = {"input_ids": torch.ones(1, max_length, dtype=torch.int32),
              "attention_mask": torch.ones(1, max_length, dtype=torch.int32),
              "token_type_ids": torch.zeros(1, max_length, dtype=torch.int32)}
    with _converter_quiet():
        litert_torch.convert(TaskModel.wrap(student, embedding), sample_kwargs=sample).export(str(path))
    return path


def quantize_like(src: Path, quantization, dst: Path) -> Path:
    """Quantize `src` with the shipped artifact's ai-edge-quantizer recipe (fp32 artifacts: copied)."""
    import shutil

    if quantization is None:
        return Path(shutil.copy2(src, dst))
    from compress.quantize.litert import DYNAMIC_RECIPES, _quantize

    if quantization.backend != "litert-dynamic":
        raise ValueError(f"{quantization.backend} needs calibration per signature; only litert-dynamic artifacts are "
                         "re-made for the task libraries")
    s = quantization.settings
    name = "weight_only_wi8_afp32" if s.get("weight_only") else DYNAMIC_RECIPES[s.get("weight_bits", "int8")]
    return _quantize(src, name, dst)


# ---- metadata ------------------------------------------------------------------------------------------
def _min_parser_version(buf: bytes) -> str:
    """The metadata parser version a buffer needs (the rules of mediapipe/tasks/cc/metadata/metadata_version.cc):
    the mediapipe wheel ships the writers but not this one compiled helper they call."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    md = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(bytearray(buf), 0))
    v = [(1, 0, 0)]
    units_version = {fb.ProcessUnitOptions.BertTokenizerOptions: (1, 1, 0),
                     fb.ProcessUnitOptions.SentencePieceTokenizerOptions: (1, 1, 0),
                     fb.ProcessUnitOptions.RegexTokenizerOptions: (1, 2, 1)}

    def files(fs):
        for f in fs or []:
            if f.type == fb.AssociatedFileType.VOCABULARY:
                v.append((1, 0, 1))
            if f.type == fb.AssociatedFileType.SCANN_INDEX_FILE:
                v.append((1, 4, 0))
            if f.version is not None:
                v.append((1, 4, 1))

    def units(us):
        for u in us or []:
            v.append(units_version.get(u.optionsType, (1, 0, 0)))

    def tensors(ts):
        for t in ts or []:
            files(t.associatedFiles)
            units(t.processUnits)
            if t.content is not None and t.content.contentPropertiesType == fb.ContentProperties.AudioProperties:
                v.append((1, 3, 0))

    files(md.associatedFiles)
    for sg in md.subgraphMetadata or []:
        tensors(sg.inputTensorMetadata)
        tensors(sg.outputTensorMetadata)
        files(sg.associatedFiles)
        for group in (sg.inputProcessUnits, sg.outputProcessUnits):
            if group is not None:
                v.append((1, 1, 0))
                units(group)
        if sg.inputTensorGroups is not None or sg.outputTensorGroups is not None:
            v.append((1, 2, 0))
        if sg.customMetadata is not None:
            v.append((1, 5, 0))
    return ".".join(map(str, max(v)))


def _metadata_writers():
    """mediapipe's metadata_writers, importable without the compiled version helper the wheel lacks."""
    if importlib.util.find_spec("mediapipe") is None:
        raise ModuleNotFoundError(f"mediapipe is not installed: {MEDIAPIPE_HINT}")
    importlib.import_module("mediapipe.tasks.python")
    audio = sys.modules.get("mediapipe.tasks.python.audio.core.audio_record")
    if getattr(audio, "sd_error", None) is not None:  # its traceback keeps frames (and writers) alive until exit
        audio.sd_error.__traceback__ = None
    if _PYWRAP not in sys.modules and importlib.util.find_spec("mediapipe.tasks.cc") is None:
        parts = _PYWRAP.split(".")
        for i in range(3, len(parts)):
            name = ".".join(parts[:i])
            if name not in sys.modules:
                pkg = types.ModuleType(name)
                pkg.__path__ = []
                sys.modules[name] = pkg
                setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], pkg)
        shim = types.ModuleType(_PYWRAP)
        shim.GetMinimumMetadataParserVersion = _min_parser_version
        sys.modules[_PYWRAP] = shim
        setattr(sys.modules[".".join(parts[:-1])], parts[-1], shim)
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, text_classifier, writer_utils

    return metadata_writer, text_classifier, writer_utils


def inline_external_buffers(buf: bytes) -> bytes:
    """ai-edge-quantizer writes the weights of larger models after the flatbuffer (Buffer.offset/size); the
    metadata populator repacks the flatbuffer and would drop them ("out of range offset" at load): put them inline."""
    import flatbuffers
    import numpy as np
    from mediapipe.tasks.metadata import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(buf, 0)
    if not any(root.Buffers(i).Offset() > 1 for i in range(root.BuffersLength())):
        return buf
    model = schema.ModelT.InitFromObj(root)
    for b in model.buffers:
        if b.offset > 1:
            b.data = np.frombuffer(buf, dtype=np.uint8, count=b.size, offset=b.offset)
            b.offset = b.size = 0
    builder = flatbuffers.Builder(len(buf) + (1 << 16))
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def _input_names(writer_utils, buf: bytes) -> tuple[str, str, str]:
    names = writer_utils.get_input_tensor_names(buf)
    found = []
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        hit = [n for n in names if key in n]
        if len(hit) != 1:
            raise ValueError(f"cannot tell which input tensor is {key} among {names}")
        found.append(hit[0])
    return tuple(found)


def write_metadata(path: Path, vocab: Path, labels: list[str] | None, out: Path) -> Path:
    """Write TFLite metadata: the BERT tokenizer (vocab) on the three inputs, and labels (classifier) or a
    feature-vector output (embedder). `labels` None: an embedder."""
    metadata_writer, text_classifier, writer_utils = _metadata_writers()
    buf = inline_external_buffers(path.read_bytes())
    ids, mask, segment = _input_names(writer_utils, buf)
    tokenizer = metadata_writer.BertTokenizer(str(vocab))
    if labels is not None:
        writer = text_classifier.MetadataWriter.create_for_bert_model(
            buf, tokenizer, metadata_writer.Labels().add(list(labels)), ids_name=ids, mask_name=mask, segment_name=segment)
    else:
        writer = (metadata_writer.MetadataWriter.create(buf)
                  .add_general_info("TextEmbedder", "Embeds a text into one sentence vector (bert-compress).")
                  .add_bert_text_input(tokenizer, ids, mask, segment)
                  .add_feature_output(name="embedding", description="The sentence embedding."))
    model, _ = writer.populate()
    out.write_bytes(model)
    return out
