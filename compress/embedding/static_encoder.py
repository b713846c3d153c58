"""The static student as a PyTorch module, so the pipeline runs it like any student: predict on encoded splits (verify,
guard, bench), time it in eager mode. It computes what the ONNX graph (compress.embedding.static.export_static_onnx)
computes from the same ids: the table rows of the real, non-[UNK] tokens, their mean, the linear map, L2 norm."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from compress.embedding.model import EmbeddingOutput
from compress.embedding.static import NORM_EPS, StaticStudent
from compress.student.kind import StudentKind

STATIC = StudentKind("static", special_tokens=False, transformer=False, exports_itself=True,
                     not_a_transformer="a static-embedding model (a table lookup and a mean) has no transformer layers")


class StaticEncoder(torch.nn.Module):
    kind = "static"
    student_kind = STATIC

    def export_onnx(self, path):
        """Its own small graph: Gather + masked mean + linear map + L2 norm (compress.embedding.static)."""
        from compress.embedding.static import export_static_onnx

        return export_static_onnx(self.static, path)

    def __init__(self, student: StaticStudent):
        super().__init__()
        self.static = student
        self.table = torch.nn.Parameter(torch.from_numpy(student.embedding.copy()), requires_grad=False)
        self.W = None if student.W is None else torch.nn.Parameter(torch.from_numpy(student.W.copy()), requires_grad=False)
        self.b = None if student.b is None else torch.nn.Parameter(torch.from_numpy(student.b.copy()), requires_grad=False)
        self.unk = student.unk_token_id
        self.dim = student.dim
        self.normalize = student.normalize
        v, d = student.embedding.shape
        # what reports and the FLOP count read of a student's shape: no layers, no attention
        self.config = SimpleNamespace(num_hidden_layers=0, hidden_size=d, intermediate_size=0, num_attention_heads=0,
                                      embedding_size=d, num_labels=self.dim, vocab_size=v, type_vocab_size=0,
                                      max_position_embeddings=student.max_length or 512, model_type="static")

    def forward(self, input_ids, attention_mask=None, **_ignored) -> EmbeddingOutput:
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        if self.unk is not None:
            mask = mask * (input_ids != self.unk).to(mask.dtype)
        m = mask.unsqueeze(-1).to(self.table.dtype)
        mean = (self.table[input_ids] * m).sum(1) / torch.clamp(m.sum(1), min=1.0)
        x = mean @ self.W if self.W is not None else mean
        if self.b is not None:
            x = x + self.b
        if self.normalize:
            x = x / torch.clamp(torch.linalg.vector_norm(x, dim=-1, keepdim=True), min=NORM_EPS)
        return EmbeddingOutput(sentence_embedding=x)


def is_static(directory) -> bool:
    from pathlib import Path

    from compress.embedding.static import STUDENT_FILE

    return (Path(directory) / STUDENT_FILE).is_file()


def static_tokenizer(directory):
    """The static student's tokenizer as a transformers tokenizer (no [CLS]/[SEP]: model2vec removed its
    post-processor), so splits are encoded for it the way they are for any student."""
    import json
    from pathlib import Path

    from transformers import PreTrainedTokenizerFast

    from compress.embedding.static import STUDENT_FILE

    fields = json.loads((Path(directory) / STUDENT_FILE).read_text(encoding="utf-8"))
    tok = PreTrainedTokenizerFast(tokenizer_file=str(Path(directory) / "tokenizer.json"))
    if tok.pad_token is None:
        tok.pad_token = tok.convert_ids_to_tokens(fields["pad_token_id"])
    return tok
