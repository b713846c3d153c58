"""Student shapes: the candidate grid a device profile times, and the shapes of the recipes we ship.

A shape is what latency depends on (layers, width, heads, FFN, embedding size); the weights' values do not matter,
so an untrained student of the shape times the same as the trained one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pydantic import Field

from compress.errors import UserError
from compress.schema import Strict as _Strict


RUNTIME_BACKEND = {"onnxruntime": "ort-dynamic", "litert": "litert-dynamic"}
"""The quantizer the pipeline ships for each runtime (the first of its candidates in the recipe wins)."""


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    ffn: int
    embedding: int | None = None
    """ALBERT-style factorized embeddings V×E + E×H; None: E = H (a BERT student)."""
    sharing: str | None = None
    """ALBERT-style cross-layer sharing (recipe shapes only): the same compute, fewer bytes."""

    @property
    def name(self) -> str:
        return (f"l{self.layers}-h{self.hidden}-a{self.heads}-f{self.ffn}" + (f"-e{self.embedding}" if self.embedding else "")
                + (f"-share-{self.sharing}" if self.sharing not in (None, "none") else ""))

    @property
    def encoder_params(self) -> int:
        """Weights of the transformer layers (attention + FFN, per layer; shared layers count per layer): the
        capacity the quality prior ranks by."""
        return self.layers * (4 * self.hidden * self.hidden + 2 * self.hidden * self.ffn)

    def student_update(self) -> dict:
        """The recipe's student settings for this shape (everything else, e.g. init and vocabulary, stays)."""
        return {"num_layers": self.layers, "layers": None, "hidden_size": self.hidden, "num_attention_heads": self.heads,
                "intermediate_size": self.ffn, "embedding_size": self.embedding,
                "sharing": self.sharing if self.sharing else ("none" if self.embedding else None), "groups": 1}

    def arch(self, vocab_size: int, num_labels: int, head: bool) -> dict:
        """What targets.bench and the latency model read (compute: matmul_flops)."""
        return {"layers": self.layers, "hidden_size": self.hidden, "heads": self.heads, "intermediate_size": self.ffn,
                "embedding_size": self.embedding, "num_labels": num_labels, "vocab_size": vocab_size, "head": head}

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Shape":
        return cls(int(d["layers"]), int(d["hidden"]), int(d["heads"]), int(d["ffn"]),
                   int(d["embedding"]) if d.get("embedding") else None, d.get("sharing"))


class CandidateGrid(_Strict):
    """The shapes `bert-compress candidates` builds: every combination that fits under the teacher."""

    layers: list[int] = Field(default_factory=lambda: [2, 3, 4, 6])
    hidden_sizes: list[int] = Field(default_factory=lambda: [128, 192, 256, 384])
    ffn_ratios: list[float] = Field(default_factory=lambda: [2.0, 4.0])
    """FFN width = ratio × hidden."""
    embedding_sizes: list[int] = Field(default_factory=lambda: [0, 64])
    """0: E = H; otherwise ALBERT-style factorized embeddings of that size (only below the hidden size)."""
    head_size: int | None = Field(None, ge=1)
    """Width of one attention head; None: the teacher's (what init 'pruned' keeps)."""
    recipes: bool = True
    """Also the students of the recipes we ship for the task (reference points: which of them meet a budget)."""


def grid_shapes(grid: CandidateGrid, teacher_config) -> list[Shape]:
    t = teacher_config
    head = grid.head_size or t.hidden_size // t.num_attention_heads
    shapes = []
    for layers in sorted(set(grid.layers)):
        if not 1 <= layers <= t.num_hidden_layers:
            continue
        for hidden in sorted(set(grid.hidden_sizes)):
            if hidden > t.hidden_size or hidden % head:
                continue
            for ratio in sorted(set(grid.ffn_ratios)):
                ffn = int(round(ratio * hidden))
                if ffn > t.intermediate_size or ffn < 8:
                    continue
                for e in sorted(set(grid.embedding_sizes)):
                    if e and e >= hidden:
                        continue
                    shapes.append(Shape(layers, hidden, hidden // head, ffn, e or None))
    if not shapes:
        raise UserError(f"the candidate grid has no shape that fits the teacher ({t.num_hidden_layers} layers × "
                        f"{t.hidden_size}, FFN {t.intermediate_size}, head size {head}): widen --layers / --hidden")
    return shapes


def recipe_shape(student, teacher_config) -> Shape:
    """The shape a recipe's student takes under this teacher (unset widths are the teacher's)."""
    t = teacher_config
    return Shape(student.num_layers, student.hidden_size or t.hidden_size,
                 student.num_attention_heads or t.num_attention_heads, student.intermediate_size or t.intermediate_size,
                 student.embedding_size, student.sharing if student.sharing not in (None, "none") else None)


def shipped_recipes(task: str, teacher_config) -> dict[str, object]:
    """name -> the recipe's StudentConfig, for the transformer-student recipes of `task` that fit under the teacher."""
    from compress.recipe import named_recipes, resolve_recipe

    out = {}
    for name in named_recipes():
        try:
            r = resolve_recipe(name)
        except UserError:
            continue
        s = r.student
        if r.task != task or s.kind != "transformer":
            continue
        shape = recipe_shape(s, teacher_config)
        if shape.layers > teacher_config.num_hidden_layers or shape.hidden > teacher_config.hidden_size:
            continue
        out[name] = s
    return out
