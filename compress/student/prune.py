"""Structured pruning as the student's starting point: keep the teacher's most important attention heads, FFN
neurons and hidden channels, instead of the leading block of each tensor (truncation).

Importance is first-order Taylor (Molchanov et al. 2019; for heads, Michel et al. 2019 "Are Sixteen Heads Really
Better than One?"): for a structure whose output is a and a loss L, |Σ_tokens a · ∂L/∂a| per example, summed over
a few hundred training rows. That is, to first order, how much the loss moves when the structure is zeroed. The
loss is the task's own: cross-entropy on the labels for a classifier. A sentence encoder has no labels, so its
structures are ranked by mean |activation| over real tokens (Minitron's activation importance, Muralidharan et al.
2024).

- heads: the context vectors entering each layer's attention output projection, per head;
- FFN neurons: the activations entering each layer's FFN output projection;
- hidden channels: the residual stream is shared by every layer, so a channel's score is the sum over every
  LayerNorm output (embeddings and each layer's two); the same channels are kept in every tensor that reads or
  writes the stream (embeddings, LayerNorms, Q/K/V inputs, output projections, pooler, classifier).

Heads keep the teacher's head size, so a pruned student has hidden_size / teacher head size heads (384 / 12 = 32:
hidden 128 → 4 heads, 192 → 6). Layers are chosen as for truncation (every k-th, ending on the last).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from compress.errors import UserError

_LAYER = re.compile(r"\.encoder\.layer\.(\d+)\.")


@dataclass
class Importance:
    """Scores of the teacher's structures: heads[l] (heads,), ffn[l] (intermediate,), hidden (hidden,)."""

    heads: list[torch.Tensor]
    ffn: list[torch.Tensor]
    hidden: torch.Tensor
    method: str  # "taylor" or "activation"
    rows: int
    extra: dict = field(default_factory=dict)


def head_size(config) -> int:
    return config.hidden_size // config.num_attention_heads


def check_prunable(teacher_config, student_config) -> None:
    """A pruned student keeps the teacher's head size and is no wider anywhere; refuse other shapes up front."""
    d = head_size(teacher_config)
    s_heads, s_hidden = student_config.num_attention_heads, student_config.hidden_size
    if s_hidden > teacher_config.hidden_size or student_config.intermediate_size > teacher_config.intermediate_size:
        raise UserError(
            f"student.init 'pruned' keeps a subset of the teacher: hidden {s_hidden} / FFN {student_config.intermediate_size} "
            f"must not exceed the teacher's {teacher_config.hidden_size} / {teacher_config.intermediate_size}"
        )
    if s_hidden % d or s_hidden // d != s_heads:
        raise UserError(
            f"student.init 'pruned' keeps whole teacher heads of size {d}: a hidden size of {s_hidden} needs "
            f"student.num_attention_heads {max(1, s_hidden // d)}" + (f" (and a hidden size divisible by {d})" if s_hidden % d else "")
        )


def _layers(model):
    return model.base_model.encoder.layer


def importance(model, enc, rows: int, batch_size: int = 32, use_labels: bool = True) -> Importance:
    """Score the model's heads, FFN neurons and hidden channels on `rows` rows spread evenly over `enc`."""
    from compress.data.batching import collate
    from compress.evaluate import model_inputs

    config = model.config
    n_heads, d = config.num_attention_heads, head_size(config)
    layers = _layers(model)
    heads = [torch.zeros(n_heads) for _ in layers]
    ffn = [torch.zeros(config.intermediate_size) for _ in layers]
    hidden = torch.zeros(config.hidden_size)
    taylor = use_labels and getattr(config, "num_labels", 0) and getattr(model, "dim", None) is None
    mask_holder: dict[str, torch.Tensor] = {}

    def score(x: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        """(B, S, C) -> (C,): Σ_examples |Σ_tokens x·g| (Taylor) or Σ_examples mean_tokens |x| (activation)."""
        if g is not None:
            return (x * g).sum(1).abs().sum(0)
        m = mask_holder["mask"].to(x.dtype).unsqueeze(-1)
        return ((x.abs() * m).sum(1) / m.sum(1).clamp(min=1)).sum(0)

    def watch(store: torch.Tensor, reshape=None):
        def record(x: torch.Tensor) -> None:
            x = x.detach() if not taylor else x
            if taylor:
                def on_grad(g: torch.Tensor, x: torch.Tensor = x) -> None:  # returns None: the gradient flows on unchanged
                    store.add_(_fold(score(x.detach(), g), reshape))

                x.register_hook(on_grad)
            else:
                store.add_(_fold(score(x, None), reshape))
        return record

    def _fold(v: torch.Tensor, reshape) -> torch.Tensor:
        return v.view(*reshape).sum(-1) if reshape else v

    handles = []
    grads = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in grads:  # a frozen teacher: its activations need a graph for ∂L/∂a
        p.requires_grad_(bool(taylor))
    try:
        for i, layer in enumerate(layers):
            rec_h = watch(heads[i], (n_heads, d))
            handles.append(layer.attention.output.dense.register_forward_pre_hook(lambda _m, a, rec=rec_h: rec(a[0])))
            rec_f = watch(ffn[i])
            handles.append(layer.output.dense.register_forward_pre_hook(lambda _m, a, rec=rec_f: rec(a[0])))
            for norm in (layer.attention.output.LayerNorm, layer.output.LayerNorm):
                rec_n = watch(hidden)
                handles.append(norm.register_forward_hook(lambda _m, _a, out, rec=rec_n: rec(out)))
        rec_e = watch(hidden)
        handles.append(model.base_model.embeddings.LayerNorm.register_forward_hook(lambda _m, _a, out, rec=rec_e: rec(out)))
        was_training = model.training
        model.eval()  # no dropout: the scores are of the model as it runs
        n = min(rows, len(enc))
        chosen = sorted({round(i * (len(enc) - 1) / max(1, n - 1)) for i in range(n)})  # spread over the file
        for start in range(0, len(chosen), batch_size):
            batch = collate(enc, chosen[start:start + batch_size])
            mask_holder["mask"] = batch["attention_mask"]
            if taylor:
                model.zero_grad(set_to_none=True)
                out = model(**model_inputs(batch))
                # a token classifier's logits are [B, S, tags] against [B, S] tags (-100: no tag)
                torch.nn.functional.cross_entropy(out.logits.flatten(0, -2), batch["labels"].flatten(),
                                                  reduction="sum").backward()
            else:
                with torch.no_grad():
                    model(**model_inputs(batch))
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
        for p, flag in grads:
            p.requires_grad_(flag)
    return Importance(heads, ffn, hidden, "taylor" if taylor else "activation", n)


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k best, in the teacher's order (so kept structures stay where they were)."""
    return torch.sort(torch.topk(scores, k).indices).values


@dataclass
class Kept:
    hidden: torch.Tensor  # residual-stream channels
    attention: list[torch.Tensor]  # per student layer: the kept rows of Q/K/V (whole heads)
    ffn: list[torch.Tensor]  # per student layer: the kept FFN neurons
    heads: list[list[int]]  # per student layer: the teacher heads kept


def choose(imp: Importance, teacher_config, student_config, layers: list[int]) -> Kept:
    d = head_size(teacher_config)
    hidden = _top(imp.hidden, student_config.hidden_size)
    attention, ffn, heads = [], [], []
    for t in layers:
        kept = _top(imp.heads[t], student_config.num_attention_heads)
        heads.append(kept.tolist())
        attention.append(torch.cat([torch.arange(h * d, (h + 1) * d) for h in kept.tolist()]))
        ffn.append(_top(imp.ffn[t], student_config.intermediate_size))
    return Kept(hidden, attention, ffn, heads)


def _slice(key: str, value: torch.Tensor, kept: Kept, m: int | None) -> torch.Tensor | None:
    """The part of a teacher tensor the student keeps, by the tensor's role (None: not a role we know)."""
    h = kept.hidden
    if m is not None:
        a, f = kept.attention[m], kept.ffn[m]
        rules = [
            (r"attention\.self\.(query|key|value)\.weight$", (a, h)),
            (r"attention\.self\.(query|key|value)\.bias$", (a,)),
            (r"attention\.output\.dense\.weight$", (h, a)),
            (r"intermediate\.dense\.weight$", (f, h)),
            (r"intermediate\.dense\.bias$", (f,)),
            (r"\.output\.dense\.weight$", (h, f)),
            (r"(attention\.output\.dense|\.output\.LayerNorm|attention\.output\.LayerNorm)\.(bias|weight)$", (h,)),
            (r"\.output\.dense\.bias$", (h,)),
        ]
    else:
        rules = [
            (r"embeddings\.(word|position|token_type)_embeddings\.weight$", (None, h)),
            (r"embeddings\.LayerNorm\.(weight|bias)$", (h,)),
            (r"pooler\.dense\.weight$", (h, h)),
            (r"pooler\.dense\.bias$", (h,)),
            (r"classifier\.weight$", (None, h)),
        ]
    for pattern, index in rules:
        if re.search(pattern, key):
            out = value
            for dim, idx in enumerate(index):
                if idx is not None:
                    out = out.index_select(dim, idx)
            return out.clone()
    return None


def pruned_state(teacher_state: dict[str, torch.Tensor], student_state: dict[str, torch.Tensor], kept: Kept,
                 layers: list[int]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The student's state dict filled from the teacher's kept structures; also the keys left at their init."""
    from compress.student.blocks import truncated_block

    state, untouched = dict(student_state), []
    for key, target in student_state.items():
        match = _LAYER.search("." + key)
        if match is not None:
            m = int(match.group(1))
            source_key = _LAYER.sub(f".encoder.layer.{layers[m]}.", "." + key, count=1)[1:]
        else:
            m, source_key = None, key
        source = teacher_state.get(source_key)
        if source is None:
            untouched.append(key)
            continue
        block = _slice(key, source, kept, m)
        if block is None:  # a tensor of no known role (e.g. a sentence encoder's projection): as truncation does
            block = truncated_block(source, target.shape)
        if block is None or block.shape != target.shape:
            untouched.append(key)
            continue
        state[key] = block
    return state, untouched
