"""Read pre-softmax attention scores (and the query / key / value vectors) without touching the model: forward
hooks on the attention's Linear modules.

Hugging Face returns post-softmax probabilities (and none at all under SDPA). TinyBERT's attention loss
wants the unnormalised scores QKᵀ/√d_k, so we hook each layer's `attention.self.query` / `.key` Linear
modules, keep their outputs, and form the scores ourselves; MiniLM's relation loss reads the query, key and
value vectors themselves (`qkv()`). Works with any attention implementation and with layers whose modules are
shared (each call is recorded in order).
"""

from __future__ import annotations

import math

import torch


def attention_modules(model) -> list[tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]]:
    """(query, key, value) Linear modules of each encoder layer call, in order (ALBERT: per layer, shared or not)."""
    encoder = model.base_model.encoder
    if hasattr(encoder, "albert_layer_groups"):
        from compress.student.albert import group_of

        n, g = model.config.num_hidden_layers, model.config.num_hidden_groups
        layers = [encoder.albert_layer_groups[group_of(i, n, g)].albert_layers[0] for i in range(n)]
        return [(layer.attention.query, layer.attention.key, layer.attention.value) for layer in layers]
    return [(layer.attention.self.query, layer.attention.self.key, layer.attention.self.value) for layer in encoder.layer]


class ScoreCapture:
    """Context manager: after a forward pass, `scores()` gives one (B, heads, S, S) tensor per layer call and
    `qkv()` one (query, key, value) triple of (B, S, heads · d_k) tensors per layer call (values: with_values)."""

    def __init__(self, model, with_values: bool = False):
        self.heads = model.config.num_attention_heads
        self.modules = attention_modules(model)
        self.with_values = with_values
        self._q: list[torch.Tensor] = []
        self._k: list[torch.Tensor] = []
        self._v: list[torch.Tensor] = []
        self._handles = []

    def __enter__(self) -> "ScoreCapture":
        seen = set()
        for q, k, v in self.modules:
            for module, sink in ((q, self._q), (k, self._k)) + (((v, self._v),) if self.with_values else ()):
                if id(module) in seen:
                    continue
                seen.add(id(module))
                self._handles.append(module.register_forward_hook(lambda _m, _i, out, sink=sink: sink.append(out)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def clear(self) -> None:
        self._q.clear()
        self._k.clear()
        self._v.clear()

    def qkv(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Call before `scores()` (which clears what was recorded)."""
        return list(zip(self._q, self._k, self._v))

    def scores(self) -> list[torch.Tensor]:
        out = []
        for q, k in zip(self._q, self._k):
            b, s, d = q.shape
            dk = d // self.heads
            qh = q.view(b, s, self.heads, dk).transpose(1, 2)
            kh = k.view(b, s, self.heads, dk).transpose(1, 2)
            out.append(qh @ kh.transpose(-1, -2) / math.sqrt(dk))
        self.clear()
        return out
