"""GEMM-input hooks: apply a concentrator to the visual rows of every GEMM input.

* Linear sites: forward pre-hooks on ``q_proj`` (k_proj/v_proj get the same
  concentrated tensor), ``o_proj``, ``gate_proj`` (up_proj shares it) and
  ``down_proj``.
* The attention query: a wrapper around the model's attention function
  (registered in transformers' ``AttentionInterface`` as ``focus+<impl>``)
  that sees the post-RoPE query of every head (heads concatenated along
  features), i.e. the real left operand of the Q K^T GEMM.

The concentrator sees the full visual grid of each segment; tokens that SEC
pruned are absent from the sequence and enter it as zero vectors.
"""

from __future__ import annotations

import weakref

import torch
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, AttentionInterface
from transformers.models.qwen2.modeling_qwen2 import eager_attention_forward

__all__ = ["concentrate_visual", "use_focus_attention", "ATTENTION_CALLBACKS", "FOCUS_PREFIX"]

FOCUS_PREFIX = "focus+"
#: attention module -> callback(module, query, key, mask) -> (query, mask)
ATTENTION_CALLBACKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def concentrate_visual(x, state, fn):
    """Concentrate the alive visual tokens ``x`` ((n, D) or (heads, n, d)).

    Returns the new tokens (same shape) and one result per segment, each over
    the segment's full grid with pruned tokens as zero vectors.
    """
    idx, _ = state.visual_rows()
    idx = idx.to(x.device)
    out, results, offset = [], [], 0
    for segment in state.layout.segments:
        inside = (idx >= offset) & (idx < offset + segment.length)
        local = idx[inside] - offset
        offset += segment.length
        part = x[..., inside.nonzero().flatten(), :]
        full = x.new_zeros(*x.shape[:-2], segment.length, x.shape[-1])
        full[..., local, :] = part
        result = fn(full, segment.grid)
        results.append(result)
        out.append(result.tokens[..., local, :])
    return torch.cat(out, dim=-2), results


def _wrap(base):
    def focus_attention(module, query, key, value, attention_mask, *args, **kwargs):
        callback = ATTENTION_CALLBACKS.get(module)
        if callback is not None:
            query, attention_mask = callback(module, query, key, attention_mask)
        return base(module, query, key, value, attention_mask, *args, **kwargs)

    return focus_attention


def use_focus_attention(config) -> str:
    """Switch ``config`` (a text config) to the Focus wrapper of its attention
    implementation; returns the previous implementation name."""
    base = config._attn_implementation
    if base is None or base.startswith(FOCUS_PREFIX):
        raise ValueError(
            f"cannot enable Focus on attention implementation {base!r} "
            "(already enabled on this model?)"
        )
    fn = eager_attention_forward if base == "eager" else ALL_ATTENTION_FUNCTIONS[base]
    name = FOCUS_PREFIX + base
    AttentionInterface.register(name, _wrap(fn))
    if base in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[base])
    config._attn_implementation_internal = name
    return base
