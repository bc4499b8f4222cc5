"""SEC token dropping inside a transformers decoder stack.

:class:`TokenState` tracks, for one prefill forward, which original sequence
positions are physically present in the hidden states (``present``) and which
visual tokens SEC has kept so far (``alive``). At an SEC layer the attention
hook scores the visual tokens; the choice takes effect at the end of the
attention block (after o_proj), so the layer's MLP GEMMs already see the
pruned set; the decoder layer's forward
hook then removes the pruned rows from its output, and every later layer's
pre-hook slices the full-length per-forward tensors (attention mask, rotary
cos/sin incl. Qwen2-VL's 3D mrope, position ids) to the present rows. The KV
cache of a later layer therefore holds only kept tokens; decode steps only
get their mask columns matched to that cache (:func:`decode_mask`).

The attention probabilities that score the tokens are recomputed from the
layer's own (post-RoPE, post-SIC) query and key for the text query rows only,
exactly as transformers' eager attention does (q k^T * scaling + mask, fp32
softmax), so any attention implementation (sdpa, flash) can run the layer.
"""

from __future__ import annotations

import torch

__all__ = ["TokenState", "text_attention_probs", "slice_layer_kwargs", "decode_mask"]


class TokenState:
    """Kept/present tokens of one prefill forward (CPU index tensors)."""

    def __init__(self, layout):
        self.layout = layout
        self.visual = layout.positions()
        self.alive = torch.ones(len(self.visual), dtype=torch.bool)
        self.present = torch.arange(layout.seq_len)
        #: layer -> original positions present at that layer's attention (its KV cache).
        self.layer_present: dict[int, torch.Tensor] = {}
        #: layer -> visual tokens kept after that layer.
        self.kept: dict[int, int] = {}
        #: SEC layer -> importance of the visual tokens alive before it.
        self.importance: dict[int, torch.Tensor] = {}
        #: SEC's choice (indices among the alive tokens), applied after the attention block.
        self.selected: torch.Tensor | None = None

    @property
    def num_visual(self) -> int:
        return len(self.visual)

    def visual_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(visual indices of the alive tokens, their rows in the present sequence)."""
        idx = self.alive.nonzero().flatten()
        return idx, torch.searchsorted(self.present, self.visual[idx])

    def text_rows(self) -> torch.Tensor:
        """Rows of the present sequence holding the text after the visual span."""
        return (self.present >= self.layout.text_start).nonzero().flatten()

    def keep(self, selected: torch.Tensor) -> None:
        """Keep only the alive visual tokens at ``selected`` (indices among the alive ones)."""
        idx = self.alive.nonzero().flatten()
        self.alive = torch.zeros_like(self.alive)
        self.alive[idx[selected.cpu()]] = True

    def pending_rows(self) -> torch.Tensor | None:
        """Rows of the present sequence that survive SEC, or None when nothing is pending."""
        dead = self.visual[~self.alive]
        stay = ~torch.isin(self.present, dead)
        return None if bool(stay.all()) else stay.nonzero().flatten()


def text_attention_probs(module, query, key, mask, text_rows, visual_rows) -> torch.Tensor:
    """(heads, text rows, visual columns) attention probabilities of a prefill layer.

    ``query`` (1, heads, S, d) and ``key`` (1, kv_heads, S, d) are the
    layer's post-RoPE states; ``mask`` is what the attention function gets
    (None: causal; bool: allowed; float: additive).
    """
    groups = query.shape[1] // key.shape[1]
    k = key.repeat_interleave(groups, dim=1) if groups > 1 else key
    rows = text_rows.to(query.device)
    scores = torch.matmul(query[:, :, rows], k.transpose(2, 3)) * module.scaling
    if mask is None:
        cols = torch.arange(k.shape[2], device=query.device)
        allowed = cols[None, :] <= rows[:, None]
        scores = scores.masked_fill(~allowed, float("-inf"))
    elif mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask[:, :, rows, : k.shape[2]], float("-inf"))
    else:
        scores = scores + mask[:, :, rows, : k.shape[2]]
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    return probs[0][:, :, visual_rows.to(query.device)]


def slice_layer_kwargs(kwargs: dict, rows: torch.Tensor, seq_len: int) -> dict:
    """Restrict a decoder layer's full-length keyword tensors to ``rows``."""
    out = dict(kwargs)
    mask = kwargs.get("attention_mask")
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.ndim != 4:
            raise ValueError(
                f"SEC needs a 4-D tensor attention mask or None, got {type(mask).__name__}"
            )
        r = rows.to(mask.device)
        out["attention_mask"] = mask.index_select(2, r).index_select(3, r)
    pos_emb = kwargs.get("position_embeddings")
    if pos_emb is not None:
        out["position_embeddings"] = tuple(
            t.index_select(-2, rows.to(t.device)) if t.shape[-2] == seq_len else t for t in pos_emb
        )
    pos = kwargs.get("position_ids")
    if isinstance(pos, torch.Tensor) and pos.shape[-1] == seq_len:
        out["position_ids"] = pos.index_select(-1, rows.to(pos.device))
    return out


def decode_mask(mask, key_len: int, present: torch.Tensor | None, prefill_len: int):
    """Match a decode step's mask columns to a layer whose cache holds only the
    kept prefill tokens (``present``) followed by the decoded ones."""
    if not isinstance(mask, torch.Tensor) or present is None or mask.shape[-1] == key_len:
        return mask
    cols = torch.cat([present, torch.arange(prefill_len, mask.shape[-1])])
    if len(cols) != key_len:
        return mask
    return mask.index_select(3, cols.to(mask.device))
