"""ALBERT-style students: factorized embeddings (V×E + E×H) and cross-layer parameter sharing.

The student is a Hugging Face `AlbertForSequenceClassification` (`AlbertForTokenClassification` for a token
classifier teacher):
- sharing `all` with G groups (N layers over G groups, ALBERT's own scheme) and sharing `none` (one group per
  layer) are plain ALBERT checkpoints: `transformers` loads them as they are.
- sharing `attention` / `ffn` are ALBERT with one group per layer whose attention (query/key/value/output
  and its LayerNorm) or FFN (ffn, ffn_output and the layer's output LayerNorm) modules are the *same module*
  in every layer of a group. Transformers has no such config, so `config.json` carries
  `bert_compress_sharing` and `load_student` (here) re-ties the modules before loading the weights.
Shared parameters are one tensor everywhere: in training (the same nn.Parameter), on disk (safetensors
stores each tensor once) and in exports (one initializer).

From a BERT-family teacher: word embeddings by truncated SVD (W ≈ U_E·S_E · V_Eᵀ: the V×E table is U_E·S_E and
the E→H map starts as V_E), position and token-type embeddings projected on V_E, each group's layer copied
from the teacher layer chosen for the group's first layer (truncated where narrower).
"""

from __future__ import annotations

from pathlib import Path

import torch

from compress.errors import UserError

SHARING_KEY = "bert_compress_sharing"
ATTENTION_PART = ("attention",)
FFN_PART = ("ffn", "ffn_output", "full_layer_layer_norm")


def group_of(layer: int, n_layers: int, n_groups: int) -> int:
    """ALBERT's own rule (AlbertTransformer): layer i runs group int(i / (N / G))."""
    return int(layer / (n_layers / n_groups))


def validate(n_layers: int, hidden: int, embedding_size: int | None, sharing: str, groups: int) -> None:
    if embedding_size is not None and embedding_size >= hidden:
        raise UserError(
            f"student.embedding_size {embedding_size} must be below the hidden size {hidden} to factorize "
            "the embeddings; leave it unset for E = H"
        )
    if groups < 1 or n_layers % groups:
        raise UserError(f"student.groups {groups} does not divide student.num_layers {n_layers}: use a divisor")
    if sharing == "none" and groups != 1:
        raise UserError("student.groups needs sharing 'all', 'attention' or 'ffn'; with sharing 'none' every layer is its own")


def with_dropout(config, dropout: float | None):
    """A copy of a BERT-family config with every dropout probability set to `dropout` (None: the config itself)."""
    if dropout is None:
        return config
    import copy

    config = copy.deepcopy(config)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout
    if getattr(config, "classifier_dropout", None) is not None:
        config.classifier_dropout = dropout
    return config


def albert_config(teacher_config, n_layers: int, hidden: int, heads: int, ffn: int, embedding_size: int | None,
                  sharing: str, groups: int, dropout: float | None = None):
    from transformers import AlbertConfig

    validate(n_layers, hidden, embedding_size, sharing, groups)
    t = with_dropout(teacher_config, dropout)
    config = AlbertConfig(
        vocab_size=t.vocab_size,
        embedding_size=embedding_size or hidden,
        hidden_size=hidden,
        num_hidden_layers=n_layers,
        num_hidden_groups=groups if sharing == "all" else n_layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        inner_group_num=1,
        hidden_act=t.hidden_act,
        hidden_dropout_prob=t.hidden_dropout_prob,
        attention_probs_dropout_prob=t.attention_probs_dropout_prob,
        classifier_dropout_prob=getattr(t, "classifier_dropout", None) or t.hidden_dropout_prob,
        max_position_embeddings=t.max_position_embeddings,
        type_vocab_size=t.type_vocab_size,
        layer_norm_eps=t.layer_norm_eps,
        pad_token_id=t.pad_token_id,
        num_labels=t.num_labels,
        id2label=dict(t.id2label),
        label2id=dict(t.label2id),
    )
    if sharing in ("attention", "ffn"):
        setattr(config, SHARING_KEY, {"mode": sharing, "groups": groups})
    return config


def tie_modules(model) -> None:
    """Make attention or FFN modules one module per group, as the config says (no-op for plain ALBERT)."""
    spec = getattr(model.config, SHARING_KEY, None)
    if not spec:
        return
    parts = ATTENTION_PART if spec["mode"] == "attention" else FFN_PART
    base = getattr(model, "albert", model)  # a task model or the bare AlbertModel (sentence encoders)
    layers = [g.albert_layers[0] for g in base.encoder.albert_layer_groups]
    n = len(layers)
    for i, layer in enumerate(layers):
        leader = layers[next(j for j in range(n) if group_of(j, n, spec["groups"]) == group_of(i, n, spec["groups"]))]
        if leader is not layer:
            for part in parts:
                setattr(layer, part, getattr(leader, part))


def _svd_embeddings(word: torch.Tensor, e: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """W (V×H) ≈ A (V×E) · B (E×H); returns A, B and the relative Frobenius reconstruction error."""
    u, s, vh = torch.linalg.svd(word.double(), full_matrices=False)
    a, b = u[:, :e] * s[:e], vh[:e]
    error = float(torch.linalg.norm(word.double() - a @ b) / torch.linalg.norm(word.double()))
    return a.float(), b.float(), error


# ALBERT layer parameter -> BERT layer parameter (names relative to the layer)
ALBERT_TO_BERT_LAYER = {
    "attention.query": "attention.self.query",
    "attention.key": "attention.self.key",
    "attention.value": "attention.self.value",
    "attention.dense": "attention.output.dense",
    "attention.LayerNorm": "attention.output.LayerNorm",
    "ffn": "intermediate.dense",
    "ffn_output": "output.dense",
"full_layer_layer_norm": "output.LayerNorm",
}


def build_albert_student(teacher, cfg, layers: list[int]) -> tuple[torch.nn.Module, dict]:
    """The ALBERT-style student and a record (SVD error, which teacher layer seeded which group)."""
    from transformers import AlbertForSequenceClassification, AlbertForTokenClassification

    from compress.student.blocks import truncated_block

    t_cfg = teacher.config
    model_class = AlbertForTokenClassification if is_token_classifier(teacher) else AlbertForSequenceClassification
    hidden = cfg.hidden_size or t_cfg.hidden_size
    config = albert_config(
        t_cfg, cfg.num_layers, hidden, cfg.num_attention_heads or t_cfg.num_attention_heads,
        cfg.intermediate_size or t_cfg.intermediate_size, cfg.embedding_size, cfg.sharing or "none", cfg.groups,
        cfg.dropout,
    )
    model = model_class(config)
    tie_modules(model)
    record: dict = {"embedding_size": config.embedding_size, "sharing": cfg.sharing or "none", "groups": cfg.groups}
    if cfg.init == "random":
        return model.eval(), record

    t_sd = teacher.state_dict()
    base = teacher.base_model_prefix  # 'bert', 'roberta', ...
    state = model.state_dict()
    e = config.embedding_size
    word = t_sd[f"{base}.embeddings.word_embeddings.weight"]
    if cfg.embedding_init == "svd":
        a, b, error = _svd_embeddings(word, e)
        record["svd_relative_error"] = round(error, 4)
    else:
        a, b = state["albert.embeddings.word_embeddings.weight"], state["albert.encoder.embedding_hidden_mapping_in.weight"].T
    state["albert.embeddings.word_embeddings.weight"] = a
    if cfg.embedding_init == "svd":
        for name in ("position_embeddings", "token_type_embeddings"):
            state[f"albert.embeddings.{name}.weight"] = t_sd[f"{base}.embeddings.{name}.weight"] @ b.T
        state["albert.encoder.embedding_hidden_mapping_in.weight"] = b.T[:hidden].clone()
        state["albert.encoder.embedding_hidden_mapping_in.bias"] = torch.zeros(hidden)

    n, groups = config.num_hidden_layers, config.num_hidden_groups
    spec = getattr(config, SHARING_KEY, None)
    tied_parts = (ATTENTION_PART if spec["mode"] == "attention" else FFN_PART) if spec else ()
    seeded = {}
    for g in range(groups):
        first = next(i for i in range(n) if group_of(i, n, groups) == g)
        t_layer = layers[first]
        seeded[g] = t_layer
        # a module tied across layers takes the teacher layer of its group's first layer only
        leader = spec is not None and all(group_of(j, n, spec["groups"]) != group_of(g, n, spec["groups"]) for j in range(g))
        for a_name, b_name in ALBERT_TO_BERT_LAYER.items():
            if a_name.split(".")[0] in tied_parts and spec is not None and not leader:
                continue
            for suffix in ("weight", "bias"):
                key = f"albert.encoder.albert_layer_groups.{g}.albert_layers.0.{a_name}.{suffix}"
                src = t_sd.get(f"{base}.encoder.layer.{t_layer}.{b_name}.{suffix}")
                if key in state and src is not None:
                    block = truncated_block(src, state[key].shape)
                    if block is not None:
                        state[key] = block
    for a_key, b_key in (("albert.pooler.weight", f"{base}.pooler.dense.weight"), ("albert.pooler.bias", f"{base}.pooler.dense.bias"),
                         ("classifier.weight", "classifier.weight"), ("classifier.bias", "classifier.bias")):
        if b_key in t_sd and a_key in state:  # a token classifier has no pooler
            block = truncated_block(t_sd[b_key], state[a_key].shape)
            if block is not None:
                state[a_key] = block
    # a tied tensor appears under several names; the values above were set so that all of them agree
    first = _first_name(model)
    for name, tensor in model.state_dict().items():
        state[name] = state[first[tensor.data_ptr()]]
    model.load_state_dict(state, strict=True)
    record["group_seeded_from_teacher_layer"] = seeded
    return model.eval(), record


def _first_name(model) -> dict[int, str]:
    first: dict[int, str] = {}
    for name, tensor in model.state_dict().items():
        first.setdefault(tensor.data_ptr(), name)
    return first


def unique_state_dict(model) -> dict[str, torch.Tensor]:
    """Each tensor once, under its first name (shared modules appear under several)."""
    seen, out = set(), {}
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        out[name] = tensor.contiguous()
    return out


def save_student(model, directory: Path) -> None:
    """save_pretrained for plain models; for re-tied ALBERT, the config plus each tensor once."""
    if not getattr(model.config, SHARING_KEY, None):
        model.save_pretrained(directory)
        return
    from safetensors.torch import save_file

    model.config.save_pretrained(directory)
    save_file(unique_state_dict(model), str(Path(directory) / "model.safetensors"), metadata={"format": "pt"})


def is_token_classifier(model_or_config) -> bool:
    config = getattr(model_or_config, "config", model_or_config)
    names = [type(model_or_config).__name__, *(getattr(config, "architectures", None) or [])]
    return any(n.endswith("ForTokenClassification") for n in names)


def load_student(directory: Path):
    """Load what save_student wrote (any Hugging Face sequence or token classifier, re-tied ALBERT included)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

    config = AutoConfig.from_pretrained(directory)
    auto = AutoModelForTokenClassification if is_token_classifier(config) else AutoModelForSequenceClassification
    if not getattr(config, SHARING_KEY, None):
        return auto.from_pretrained(directory).eval()
    from safetensors.torch import load_file

    model = auto.from_config(config)
    tie_modules(model)
    stored = load_file(str(Path(directory) / "model.safetensors"))
    missing = [k for k in unique_state_dict(model) if k not in stored]
    if missing:
        raise UserError(f"{directory}/model.safetensors lacks {len(missing)} tensors (e.g. {missing[0]}): re-run distill")
    model.load_state_dict(stored, strict=False)
    return model.eval()
