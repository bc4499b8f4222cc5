"""``enable_focus``: put SIC/SEC (or a token-level baseline) inside a HF VLM.

Everything is done with removable hooks on the model's own modules plus a
wrapped attention function (see :mod:`.hooks`, :mod:`.pruning`):

* a forward pre-hook on the top-level model reads ``input_ids`` and the grid
  inputs of each call and starts a prefill (:class:`~.pruning.TokenState`)
  when the call holds visual placeholders and the KV cache is empty;
  every other call (decode steps, text-only) passes through untouched;
* per decoder layer: GEMM-input pre-hooks (q/k/v, o, gate/up, down), the
  attention-query callback (post-RoPE, heads concatenated) which also runs
  SEC at the layers of ``params.sec_layers``, a pre-hook that slices the
  per-forward tensors to the tokens still present, and a forward hook that
  drops the tokens SEC pruned.

Decisions the method (:ref:`method`) leaves open:

* the "query" site is the post-RoPE query (heads concatenated), the actual
  left operand of Q K^T; k/v reuse q_proj's concentrated input, up_proj
  reuses gate_proj's;
* SEC scores come from the layer's own post-SIC query and key, recomputed
  for the text rows only (:func:`~.pruning.text_attention_probs`), so the
  model keeps its attention implementation for the attention output;
* text query rows are every token after the last visual placeholder run;
  SEC's choice takes effect after the attention block (o_proj still sees
  every token), so the SEC layer's MLP already runs on the kept tokens;
* only prefill calls (no cached tokens, >= 2 tokens) are touched; batch 1.

:meth:`FocusHandle.remove` removes all of it and restores the attention
implementation, leaving the model exactly as it was.
"""

from __future__ import annotations

import dataclasses
import functools

import pandas as pd
import torch

from focus_hw.params import FocusParams

from .hooks import ATTENTION_CALLBACKS, concentrate_visual, use_focus_attention
from .pruning import TokenState, decode_mask, slice_layer_kwargs, text_attention_probs
from .spans import find_layout, model_family

__all__ = ["FocusHandle", "enable_focus", "METHODS", "language_model"]

METHODS = ("focus", "cmc", "adaptiv")
_FORWARD_ARGS = ("input_ids",)  # the only positional argument all supported models share


def language_model(model):
    """The decoder stack (module with ``.layers`` and ``.config``) of a supported VLM."""
    model_family(model)
    lm = getattr(getattr(model, "model", None), "language_model", None)
    if lm is None or not hasattr(lm, "layers"):
        raise ValueError(f"{type(model).__name__}: no model.language_model.layers found")
    return lm


def _concentrator(method, params, threshold):
    if method == "focus":
        from focus_algo.sic import similarity_concentrate

        p = params if threshold is None else params.replace(threshold=threshold)
        return functools.partial(_call_focus, similarity_concentrate, p)
    if method in ("cmc", "adaptiv"):
        from focus_algo.baselines import BASELINES

        t = params.threshold if threshold is None else threshold
        return functools.partial(_call_baseline, BASELINES[method], t, params)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _call_focus(kernel, params, x, grid):
    return kernel(x, grid, params)


def _call_baseline(kernel, threshold, params, x, grid):
    return kernel(x, grid, threshold, params=params)


def _masks_only(result):
    """The result without its (large) tokens, masks on the CPU, roots as int32."""
    return dataclasses.replace(
        result,
        tokens=None,
        zero=result.zero.cpu(),
        similar=result.similar.cpu(),
        root=result.root.to(torch.int32).cpu(),
    )


class FocusHandle:
    """Hooks of one :func:`enable_focus` call and the records of the last prefill."""

    def __init__(
        self,
        model,
        params: FocusParams,
        method: str,
        sec: bool,
        threshold: float | None,
        query_threshold: float | None,
    ):
        self.model, self.params, self.method = model, params, method
        self.lm = language_model(model)
        self.num_layers = len(self.lm.layers)
        self.sec = dict(zip(params.sec_layers, params.sec_keep)) if sec else {}
        bad = [i for i in self.sec if i >= self.num_layers]
        if bad:
            raise ValueError(
                f"FocusParams.sec_layers={params.sec_layers!r}: layers {bad} do "
                f"not exist (the model has {self.num_layers} decoder layers)"
            )
        self._fn = _concentrator(method, params, threshold)
        qt = threshold if query_threshold is None else query_threshold
        self._query_fn = _concentrator(method, params, qt)
        self.state: TokenState | None = None
        #: (layer, site) -> per-segment SICResults of the last prefill (masks only:
        #: ``tokens`` is None, so a long run keeps O(L * T * V) bytes, not activations).
        self.results: dict[tuple[int, str], list] = {}
        #: (layer, site) -> visual tokens present in that GEMM input.
        self.present: dict[tuple[int, str], int] = {}
        #: Token bookkeeping of the last prefill (layout, kept tokens, SEC importance).
        self.prefill: TokenState | None = None
        self._shared: dict = {}
        self._hooks = []
        self._attn_modules = []
        self._previous_attn = use_focus_attention(self.lm.config)
        try:
            self._install()
        except Exception:
            self.remove()
            raise

    # -- installation -------------------------------------------------------------
    def _install(self):
        add = self._hooks.append
        add(self.model.register_forward_pre_hook(self._on_model, with_kwargs=True))
        add(self.model.register_forward_hook(self._on_model_done))
        for i, layer in enumerate(self.lm.layers):
            attn, mlp = layer.self_attn, layer.mlp
            add(
                layer.register_forward_pre_hook(
                    functools.partial(self._on_layer, i), with_kwargs=True
                )
            )
            add(layer.register_forward_hook(functools.partial(self._on_layer_done, i)))
            for site, module, shares in (
                ("q_proj", attn.q_proj, "attn"),
                ("o_proj", attn.o_proj, None),
                ("gate_proj", mlp.gate_proj, "mlp"),
                ("down_proj", mlp.down_proj, None),
            ):
                add(
                    module.register_forward_pre_hook(
                        functools.partial(self._on_gemm, i, site, shares)
                    )
                )
            for module, key in ((attn.k_proj, "attn"), (attn.v_proj, "attn"), (mlp.up_proj, "mlp")):
                add(module.register_forward_pre_hook(functools.partial(self._on_shared, i, key)))
            add(attn.register_forward_hook(functools.partial(self._on_attention_done, i)))
            ATTENTION_CALLBACKS[attn] = functools.partial(self._on_attention, i)
            self._attn_modules.append(attn)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def remove(self) -> None:
        """Remove every hook and restore the attention implementation (idempotent)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        for attn in self._attn_modules:
            ATTENTION_CALLBACKS.pop(attn, None)
        self._attn_modules.clear()
        if self._previous_attn is not None:
            self.lm.config._attn_implementation_internal = self._previous_attn
            self._previous_attn = None
        self.state = None
        self._shared.clear()

    # -- per forward -------------------------------------------------------------
    def _on_model(self, module, args, kwargs):
        inputs = dict(kwargs)
        for name, value in zip(_FORWARD_ARGS, args):
            inputs.setdefault(name, value)
        cache = inputs.get("past_key_values")
        ids = inputs.get("input_ids")
        self.state = None
        cached = cache is not None and cache.get_seq_length() > 0
        if cached or (ids is not None and ids.shape[-1] < 2):
            return  # decode step: untouched
        layout = find_layout(self.model, inputs)
        if layout is not None:
            self.state = self.prefill = TokenState(layout)
            self.results, self.present = {}, {}

    def _on_model_done(self, module, args, output):
        self.state = None
        self._shared.clear()

    def _on_layer(self, i, module, args, kwargs):
        state = self.state
        if state is None:
            return None
        state.layer_present[i] = state.present
        if len(state.present) == state.layout.seq_len:
            return None
        return args, slice_layer_kwargs(kwargs, state.present, state.layout.seq_len)

    def _on_layer_done(self, i, module, args, output):
        state = self.state
        if state is None:
            return None
        rows = state.pending_rows()
        state.kept[i] = int(state.alive.sum())
        if rows is None:
            return None
        state.present = state.present[rows]
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = hidden.index_select(1, rows.to(hidden.device))
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    def _concentrate(self, i, site, x, fn):
        """Concentrate the visual rows of ``x`` (1, S, D) or (1, heads, S, d)."""
        _, rows = self.state.visual_rows()
        rows = rows.to(x.device)
        tokens, results = concentrate_visual(x[0].index_select(-2, rows), self.state, fn)
        self.results[(i, site)] = [_masks_only(r) for r in results]
        self.present[(i, site)] = len(rows)
        out = x.clone()
        out[0].index_copy_(-2, rows, tokens)
        return out

    def _on_gemm(self, i, site, shares, module, args):
        if self.state is None:
            return None
        x = args[0]
        out = self._concentrate(i, site, x, self._fn)
        if shares:
            self._shared[shares] = (x, out)
        return (out, *args[1:])

    def _on_shared(self, i, key, module, args):
        original, replaced = self._shared.get(key, (None, None))
        if self.state is None or args[0] is not original:
            return None
        return (replaced, *args[1:])

    def _on_attention(self, i, module, query, key, mask):
        state = self.state
        if state is None:
            present = self.prefill.layer_present.get(i) if self.prefill else None
            prefill_len = self.prefill.layout.seq_len if self.prefill else 0
            return query, decode_mask(mask, key.shape[-2], present, prefill_len)
        query = self._concentrate(i, "query", query, self._query_fn)
        if i in self.sec:
            self._run_sec(i, module, query, key, mask)
        return query, mask

    def _run_sec(self, i, module, query, key, mask):
        from focus_algo.sec import importance, keep_count, select_tokens

        state = self.state
        text = state.text_rows()
        if len(text) == 0:
            raise ValueError("SEC needs text tokens after the visual span (none in this prompt)")
        _, rows = state.visual_rows()
        probs = text_attention_probs(module, query, key, mask, text, rows)
        score = importance(probs, visual=slice(0, len(rows)), text=slice(0, len(text)))
        k = keep_count(self.sec[i], state.num_visual, len(rows))
        state.importance[i] = score.detach().float().cpu()
        state.selected = select_tokens(score, k)

    def _on_attention_done(self, i, module, args, output):
        """End of the attention block (after o_proj): SEC's choice takes effect."""
        if self.state is not None and self.state.selected is not None:
            self.state.keep(self.state.selected)
            self.state.selected = None

    # -- results -------------------------------------------------------------------
    def report(self) -> pd.DataFrame:
        """Per layer and GEMM site of the last prefill: visual tokens present,
        zero / similar / sparsity fractions (over the original T x V vectors;
        pruned tokens count as zero), and visual tokens kept after the layer."""
        if self.prefill is None:
            raise ValueError("no prefill forward with visual tokens has run since enable_focus")
        kept = self.prefill.kept
        rows = []
        for (i, site), results in sorted(self.results.items(), key=lambda kv: kv[0][0]):
            total = sum(r.zero.numel() for r in results)
            zero = sum(int(r.zero.sum()) for r in results)
            similar = sum(int(r.similar.sum()) for r in results)
            rows.append(
                dict(
                    layer=i,
                    site=site,
                    tokens=self.prefill.num_visual,
                    present=self.present[(i, site)],
                    zero=zero / total,
                    similar=similar / total,
                    sparsity=(zero + similar) / total,
                    kept_after=kept.get(i),
                )
            )
        return pd.DataFrame(rows)

    def trace(self, *, model_name: str | None = None, dataset: str = ""):
        """:class:`~focus_algo.trace.SparseTrace` of the last prefill (one visual segment)."""
        from focus_algo.trace import SITES, SparseTrace, TraceMeta

        if self.prefill is None:
            raise ValueError("no prefill forward with visual tokens has run since enable_focus")
        segments = self.prefill.layout.segments
        if len(segments) != 1:
            raise ValueError(
                f"trace() needs a single visual segment; the last prefill had "
                f"{len(segments)} ({[s.grid for s in segments]})"
            )
        frames, height, width = segments[0].grid
        name = (
            model_name
            or getattr(self.model.config, "_name_or_path", "")
            or self.model.config.model_type
        )
        meta = TraceMeta(
            model=name,
            dataset=dataset,
            num_tokens=segments[0].length,
            frames=frames,
            height=height,
            width=width,
            num_layers=self.num_layers,
            params=self.params,
            extra={
                "method": self.method,
                "kept": {str(k): v for k, v in self.prefill.kept.items()},
            },
        )
        results = {
            site: [self.results[(i, site)][0] for i in range(self.num_layers)] for site in SITES
        }
        return SparseTrace.from_results(meta, results)


def enable_focus(
    model,
    params: FocusParams,
    *,
    method: str = "focus",
    sec: bool = True,
    threshold: float | None = None,
    query_threshold: float | None = None,
) -> FocusHandle:
    """Apply ``method``'s concentrator to every decoder GEMM input of ``model``
    (and SEC at ``params.sec_layers`` when ``sec``). ``threshold`` overrides
    ``params.threshold`` (the baselines' published thresholds differ);
    ``query_threshold`` the one of the attention-query site (default: same)."""
    if not isinstance(params, FocusParams):
        raise ValueError(f"params must be a FocusParams, got {type(params).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return FocusHandle(model, params, method, sec, threshold, query_threshold)
