"""The sentence encoder: a BERT-family encoder, pooling, an optional projection and L2 normalisation in one module.

The teacher is read from a sentence-transformers checkpoint (its `modules.json` says the pooling and whether the
vectors are normalised) or from any encoder with the recipe's `embedding.pooling`. The student is the same module
around a smaller encoder; a narrower student carries a projection (Linear d_student -> d_teacher) that is part of
the student and of every export, so its vectors live in the teacher's space (unlike the distiller's training-only
projections). The encoder sits under its Hugging Face prefix (`bert.`, `albert.`), so state-dict keys read as in
Hugging Face's task models and the student builder, the attention hooks and ALBERT's re-tying work unchanged.

OUT/student/ is written in sentence-transformers' own layout (the encoder and tokenizer at the root, `1_Pooling/`,
`2_Dense/` for the projection, a Normalize module): `SentenceTransformer(path)` loads it and gives our vectors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from transformers.utils import ModelOutput

from compress.errors import UserError, first_line

POOLINGS = ("mean", "cls", "max", "mean_sqrt_len_tokens")
# sentence-transformers' legacy pooling flags (modules written before 5.x) -> its pooling_mode names
_LEGACY_FLAGS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                 "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                 "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
MODULE_KINDS = ("Transformer", "Pooling", "Dense", "Normalize")


@dataclass(frozen=True)
class Pooling:
    """How token vectors become one sentence vector."""

    mode: str  # one of POOLINGS
    normalize: bool
    source: str  # where it was read: "modules.json" or "recipe"

    def describe(self) -> str:
        return f"{self.mode} pooling{', L2-normalised' if self.normalize else ''} (from {self.source})"


def _read_json(path: Path, spec: str) -> dict | list:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"teacher {spec}: cannot read {path.name} ({first_line(exc)}): fix or remove the file") from None


def _pooling_mode(config: dict, spec: str) -> str:
    modes = config.get("pooling_mode")
    if modes is None:
        modes = [mode for flag, mode in _LEGACY_FLAGS.items() if config.get(flag)]
    modes = [modes] if isinstance(modes, str) else list(modes)
    if len(modes) != 1 or modes[0] not in POOLINGS:
        raise UserError(f"teacher {spec}: its pooling {modes or 'none'} cannot be used on device; bert-compress reads "
                        f"one of {', '.join(POOLINGS)}: set embedding.pooling to choose one")
    return modes[0]


def st_modules(location: str, spec: str) -> list[dict] | None:
    """The teacher's sentence-transformers modules (modules.json), None when it has none."""
    path = Path(location) / "modules.json"
    if not path.is_file():
        if Path(location).is_dir():
            return None
        try:  # a hub id: modules.json is optional there too
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(location, "modules.json"))
        except Exception:
            return None
    modules = _read_json(path, spec)
    if not isinstance(modules, list) or not all(isinstance(m, dict) and "type" in m for m in modules):
        raise UserError(f"teacher {spec}: modules.json is not a list of sentence-transformers modules: fix the file")
    return modules


def read_pooling(location: str, spec: str) -> Pooling | None:
    """The pooling a sentence-transformers checkpoint declares, or None when it is a bare encoder."""
    modules = st_modules(location, spec)
    if modules is None:
        return None
    kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
    unknown = [k for k in kinds if k not in MODULE_KINDS]
    if unknown or kinds.count("Pooling") != 1 or kinds[0] != "Transformer":
        raise UserError(f"teacher {spec}: modules.json holds {', '.join(kinds)}; bert-compress reads a Transformer, one "
                        "Pooling, and optionally Dense and Normalize modules")
    if "Dense" in kinds:
        raise UserError(f"teacher {spec}: modules.json has a Dense module after pooling, which bert-compress does not "
                        "carry over yet: use a checkpoint without one")
    pooling = modules[kinds.index("Pooling")]
    config_path = Path(location) / str(pooling.get("path", "")) / "config.json"
    if not config_path.is_file():
        raise UserError(f"teacher {spec}: its pooling cannot be read ({config_path} is missing): copy the whole "
                        "sentence-transformers checkpoint or set embedding.pooling")
    config = _read_json(config_path, spec)
    hidden = _hidden_size(location)
    width = config.get("word_embedding_dimension", config.get("embedding_dimension"))
    if hidden is not None and width is not None and int(width) != hidden:
        raise UserError(f"teacher {spec}: its pooling is for {width}-dimensional token vectors but the encoder's are "
                        f"{hidden}: the modules do not belong to these weights")
    return Pooling(_pooling_mode(config, spec), "Normalize" in kinds, "modules.json")


def _hidden_size(location: str) -> int | None:
    path = Path(location) / "config.json"
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["hidden_size"])
    except (OSError, ValueError, KeyError):
        return None


def pool(tokens: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """sentence-transformers' pooling (models.Pooling) over the real tokens."""
    if mode == "cls":
        return tokens[:, 0]
    m = mask.unsqueeze(-1).to(tokens.dtype)
    if mode == "max":
        return tokens.masked_fill(m == 0, float("-inf")).max(dim=1).values
    count = torch.clamp(m.sum(dim=1), min=1e-9)
    total = (tokens * m).sum(dim=1)
    return total / (count if mode == "mean" else torch.sqrt(count))


@dataclass
class EmbeddingOutput(ModelOutput):
    sentence_embedding: Optional[torch.Tensor] = None
    hidden_states: Optional[tuple] = None


class SentenceEncoder(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module, pooling: str, normalize: bool, dim: int | None = None):
        super().__init__()
        self.prefix = encoder.base_model_prefix
        setattr(self, self.prefix, encoder)
        self.pooling, self.normalize = pooling, normalize
        hidden = encoder.config.hidden_size
        self.dim = dim or hidden
        self.dense = None
        if self.dim != hidden:
            # starts as the identity into the first dimensions (a truncated student's vectors are the teacher's leading
            # block); distillation then learns the map
            self.dense = torch.nn.Linear(hidden, self.dim)
            with torch.no_grad():
                self.dense.weight.zero_()
                self.dense.weight[: min(hidden, self.dim), : min(hidden, self.dim)] = torch.eye(min(hidden, self.dim))
                self.dense.bias.zero_()

    @property
    def base_model(self) -> torch.nn.Module:
        return getattr(self, self.prefix)

    @property
    def config(self):
        return self.base_model.config

    @property
    def base_model_prefix(self) -> str:
        return self.prefix

    def get_input_embeddings(self):
        return self.base_model.get_input_embeddings()

    def set_input_embeddings(self, value) -> None:
        self.base_model.set_input_embeddings(value)

    def new_like(self, config) -> "SentenceEncoder":
        """The same pooling and output size around a fresh encoder of `config` (the student builder)."""
        try:  # the pooler is never used: leave it out (nothing untrained in the student)
            encoder = type(self.base_model)(config, add_pooling_layer=False)
        except TypeError:
            encoder = type(self.base_model)(config)
        return SentenceEncoder(encoder, self.pooling, self.normalize, self.dim)

    def wrap(self, encoder: torch.nn.Module) -> "SentenceEncoder":
        return SentenceEncoder(encoder, self.pooling, self.normalize, self.dim)

    @property
    def pooling_spec(self) -> Pooling:
        return Pooling(self.pooling, self.normalize, "model")

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_hidden_states: bool = False,
                **_ignored) -> EmbeddingOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        out = self.base_model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states,
                              **extra)
        vec = pool(out.last_hidden_state, attention_mask, self.pooling)
        if self.dense is not None:
            vec = self.dense(vec)
        if self.normalize:
            vec = F.normalize(vec, p=2, dim=-1)
        return EmbeddingOutput(sentence_embedding=vec, hidden_states=out.hidden_states if output_hidden_states else None)


def load_encoder(location: str, spec: str, pooling: Pooling) -> SentenceEncoder:
    """The teacher as a sentence encoder: its weights through AutoModel, the pooling as resolved."""
    from transformers import AutoModel

    from compress.teacher import quiet_transformers

    quiet_transformers()
    try:
        encoder = AutoModel.from_pretrained(location, dtype=torch.float32, add_pooling_layer=False)
    except TypeError:  # encoders without a pooling layer to leave out
        encoder = AutoModel.from_pretrained(location, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"cannot load the weights of teacher {spec}: {first_line(exc, 1000)}") from None
    return SentenceEncoder(encoder, pooling.mode, pooling.normalize).eval()


# ---- OUT/student/ in sentence-transformers' layout -------------------------------------------------------------
def _save_encoder(encoder: torch.nn.Module, directory: Path) -> None:
    """save_pretrained, except for ALBERT students with attention / FFN sharing: every tensor under every name (so
    any loader, sentence-transformers' included, gets the right weights; ours re-ties them)."""
    from compress.student.albert import SHARING_KEY

    if not getattr(encoder.config, SHARING_KEY, None):
        encoder.save_pretrained(directory)
        return
    from safetensors.torch import save_file

    encoder.config.save_pretrained(directory)
    save_file({k: v.detach().clone().contiguous() for k, v in encoder.state_dict().items()},
              str(directory / "model.safetensors"), metadata={"format": "pt"})


def save_sentence_transformer(model: SentenceEncoder, tokenizer, directory: Path, max_seq_length: int) -> None:
    """Write `directory` so that sentence_transformers.SentenceTransformer(directory) loads it (and so does
    load_sentence_encoder); the tokenizer is written by compress.vocab's rules (vocab.txt beside tokenizer.json)."""
    from compress.vocab import save_tokenizer

    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense, Normalize, Pooling as STPooling, Transformer

    directory = Path(directory)
    _save_encoder(model.base_model, directory)
    save_tokenizer(tokenizer, directory)
    modules = [Transformer(str(directory), max_seq_length=max_seq_length)]
    modules.append(STPooling(model.config.hidden_size, pooling_mode=model.pooling))
    if model.dense is not None:
        modules.append(Dense(model.config.hidden_size, model.dim, bias=True, activation_function=torch.nn.Identity(),
                             init_weight=model.dense.weight.detach().clone(), init_bias=model.dense.bias.detach().clone()))
    if model.normalize:
        modules.append(Normalize())
    st = SentenceTransformer(modules=modules, device="cpu")
    st.save(str(directory))
    from compress.student.albert import SHARING_KEY

    if getattr(model.config, SHARING_KEY, None):  # st.save re-wrote the encoder with HF's tied-weight rules
        _save_encoder(model.base_model, directory)
    save_tokenizer(tokenizer, directory)  # st.save re-wrote it without vocab.txt


def load_sentence_encoder(directory: Path) -> SentenceEncoder:
    """What save_sentence_transformer wrote (re-tied ALBERT included)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    from compress.student.albert import SHARING_KEY, tie_modules

    directory = Path(directory)
    modules = st_modules(str(directory), str(directory))
    pooling = read_pooling_with_dense(directory, modules)
    config = AutoConfig.from_pretrained(directory)
    if getattr(config, SHARING_KEY, None):
        encoder = AutoModel.from_config(config)
        tie_modules(encoder)
        encoder.load_state_dict(load_file(str(directory / "model.safetensors")), strict=False)
    else:
        encoder = AutoModel.from_pretrained(directory)
    model = SentenceEncoder(encoder, pooling["mode"], pooling["normalize"], pooling["dim"])
    if pooling["dense"] is not None:
        weights = load_file(str(pooling["dense"] / "model.safetensors"))
        model.dense.load_state_dict({"weight": weights["linear.weight"], "bias": weights["linear.bias"]})
    return model.eval()


def read_pooling_with_dense(directory: Path, modules: list[dict] | None) -> dict:
    """pooling mode, normalisation and the projection folder of a student written by save_sentence_transformer."""
    if modules is None:
        raise UserError(f"{directory} has no modules.json: it is not an embedding student; re-run distill")
    kinds = {str(m["type"]).rsplit(".", 1)[-1]: directory / str(m.get("path", "")) for m in modules}
    config = _read_json(kinds["Pooling"] / "config.json", str(directory))
    dense, dim = kinds.get("Dense"), None
    if dense is not None:
        dim = int(_read_json(dense / "config.json", str(directory))["out_features"])
    return {"mode": _pooling_mode(config, str(directory)), "normalize": "Normalize" in kinds, "dense": dense, "dim": dim}
