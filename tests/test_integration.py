"""Focus inside tiny random-weight HF VLMs (CPU, offline)."""

import math

import pytest
import torch

from focus_algo.integration import compare, enable_focus, fidelity, find_layout, language_model
from focus_algo.sic import similarity_concentrate
from focus_hw.params import FocusParams
from tiny_models import tiny_llava_onevision, tiny_qwen2_5_vl, tiny_qwen2vl

BUILDERS = {"qwen2vl": tiny_qwen2vl, "qwen2_5_vl": tiny_qwen2_5_vl, "llava": tiny_llava_onevision}
CASES = [
    ("qwen2vl", "image"),
    ("qwen2vl", "video"),
    ("qwen2_5_vl", "video"),
    ("llava", "image"),
    ("llava", "video"),
]
NO_SEC = dict(sec_layers=(), sec_keep=())
_MODELS = {}


def tiny(name, attn="sdpa"):
    if (name, attn) not in _MODELS:
        _MODELS[name, attn] = BUILDERS[name](attn_implementation=attn)
    return _MODELS[name, attn]


def logits(model, inputs, **kw):
    with torch.no_grad():
        return model(**inputs, **kw).logits


def hook_count(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize("name,kind", CASES)
def test_disabled_sic_is_exact_and_remove_restores(name, kind):
    model, make = tiny(name)
    inputs = make(kind)
    lm = language_model(model)
    dense = logits(model, inputs)
    hooks, attn = hook_count(model), lm.config._attn_implementation

    handle = enable_focus(model, FocusParams(threshold=math.inf, **NO_SEC))
    assert torch.equal(logits(model, inputs), dense)
    report = handle.report()
    assert (report["sparsity"] == 0).all() and (report["present"] == report["tokens"]).all()
    assert len(report) == 5 * len(lm.layers)
    handle.remove()

    handle = enable_focus(model, FocusParams(threshold=0.5, **NO_SEC))
    changed = logits(model, inputs)
    assert handle.report()["similar"].sum() > 0
    assert not torch.equal(changed, dense)
    handle.remove()
    assert torch.equal(logits(model, inputs), dense)
    assert hook_count(model) == hooks and lm.config._attn_implementation == attn


def _dense_importance(model, inputs, layer):
    """SEC importance (docs/method.rst, "SEC") from the eager dense model's output_attentions."""
    layout = find_layout(model, inputs)
    probs = model(**inputs, output_attentions=True).attentions[layer][0]  # (heads, S, S)
    vis = layout.positions()
    return probs[:, layout.text_start :][:, :, vis].amax(dim=(0, 1)), layout


@pytest.mark.parametrize(
    "name,kind,layer,ratio",
    [("qwen2vl", "video", 1, 0.3), ("llava", "video", 2, 0.5), ("llava", "image", 0, 0.25)],
)
def test_sec_keeps_topk_of_dense_attention(name, kind, layer, ratio):
    model, make = tiny(name, "eager")
    inputs = make(kind, seed=3)
    with torch.no_grad():
        score, layout = _dense_importance(model, inputs, layer)
    n = layout.num_visual
    k = round(ratio * n)
    order = torch.sort(score, descending=True, stable=True).indices
    expected = torch.sort(order[:k]).values

    params = FocusParams(threshold=math.inf, sec_layers=(layer,), sec_keep=(ratio,))
    handle = enable_focus(model, params)
    try:
        with torch.no_grad():
            out = model(**inputs, output_hidden_states=True)
        state = handle.prefill
        torch.testing.assert_close(state.importance[layer], score.float())
        assert torch.equal(state.alive.nonzero().flatten(), expected)
        report = handle.report()
    finally:
        handle.remove()
    kept = report.groupby("layer")["kept_after"].first()
    assert list(kept) == [n] * layer + [k] * (len(kept) - layer)
    mlp = report[(report.layer == layer) & (report.site == "down_proj")]
    assert int(mlp["present"].iloc[0]) == k  # the SEC layer's MLP already sees k tokens
    S = inputs["input_ids"].shape[1]
    assert out.logits.shape[1] == S - (n - k)
    assert out.hidden_states[-1].shape[1] == S - (n - k)

    # Reference: the dense model whose later layers cannot see the pruned tokens.
    pruned = layout.positions()[~torch.isin(torch.arange(n), expected)]
    keep_rows = ~torch.isin(torch.arange(S), pruned)

    def mask_pruned(module, args, kwargs):
        mask = kwargs["attention_mask"].clone()
        mask[..., pruned] = torch.finfo(mask.dtype).min
        return args, {**kwargs, "attention_mask": mask}

    hooks = [
        lay.register_forward_pre_hook(mask_pruned, with_kwargs=True)
        for lay in language_model(model).layers[layer + 1 :]
    ]
    try:
        ref = logits(model, inputs)
    finally:
        for h in hooks:
            h.remove()
    torch.testing.assert_close(out.logits[0], ref[0, keep_rows], atol=1e-4, rtol=1e-4)


def test_sec_two_layers_counts_and_text_kept():
    model, make = tiny("qwen2vl")
    inputs = make("video", frames=2)
    n = find_layout(model, inputs).num_visual
    handle = enable_focus(model, FocusParams(sec_layers=(0, 2), sec_keep=(0.6, 0.25)))
    try:
        logits(model, inputs)
        state = handle.prefill
    finally:
        handle.remove()
    assert [state.kept[i] for i in range(4)] == [round(0.6 * n)] * 2 + [round(0.25 * n)] * 2
    text = torch.arange(state.layout.seq_len)
    text = text[~torch.isin(text, state.visual)]
    assert torch.isin(text, state.present).all()  # text tokens always survive


def test_trace_matches_independent_sic():
    from transformers.models.qwen2_vl.modeling_qwen2_vl import apply_rotary_pos_emb

    model, make = tiny("qwen2vl")
    lm = language_model(model)
    inputs = make("video", frames=2, seed=1)
    layout = find_layout(model, inputs)
    params = FocusParams(threshold=0.6, vector_size=16, sec_layers=(1,), sec_keep=(0.5,))
    captured, hooks = {}, []
    for i, layer in enumerate(lm.layers):
        for site, mod in (
            ("q_proj", layer.self_attn.q_proj),
            ("o_proj", layer.self_attn.o_proj),
            ("gate_proj", layer.mlp.gate_proj),
            ("down_proj", layer.mlp.down_proj),
        ):
            hooks.append(
                mod.register_forward_pre_hook(
                    lambda m, a, i=i, s=site: captured.__setitem__((i, s), a[0][0].clone())
                )
            )
        hooks.append(
            layer.self_attn.q_proj.register_forward_hook(
                lambda m, a, o, i=i: captured.__setitem__((i, "q_out"), o.clone())
            )
        )
    handle = enable_focus(model, params)
    for i, layer in enumerate(lm.layers):  # after Focus: sees the sliced per-layer tensors
        hooks.append(
            layer.register_forward_pre_hook(
                lambda m, a, kw, i=i: captured.__setitem__((i, "rope"), kw["position_embeddings"]),
                with_kwargs=True,
            )
        )
        hooks.append(
            layer.self_attn.k_proj.register_forward_pre_hook(
                lambda m, a, i=i: captured.__setitem__((i, "k_in"), a[0][0].clone())
            )
        )
    try:
        logits(model, inputs)
        trace = handle.trace(dataset="tiny")
        state = handle.prefill
    finally:
        handle.remove()
        for h in hooks:
            h.remove()
    T = layout.num_visual
    assert trace.meta.num_tokens == T
    assert (trace.meta.frames, trace.meta.height, trace.meta.width) == layout.segments[0].grid
    heads = lm.config.num_attention_heads
    alive_before = torch.ones(T, dtype=torch.bool)
    for i in range(len(lm.layers)):
        present = state.layer_present[i]
        after = alive_before if i != 1 else state.alive
        cos, sin = captured[(i, "rope")]
        q = captured[(i, "q_out")]
        q = q.view(1, q.shape[1], heads, -1).transpose(1, 2)
        query, _ = apply_rotary_pos_emb(q, q, cos, sin)
        inputs_by_site = {
            "q_proj": (captured[(i, "q_proj")], alive_before),
            "query": (query[0], alive_before),
            "o_proj": (captured[(i, "o_proj")], alive_before),
            "gate_proj": (captured[(i, "gate_proj")], after),
            "down_proj": (captured[(i, "down_proj")], after),
        }
        for site, (x, alive) in inputs_by_site.items():
            rows = torch.searchsorted(present, state.visual[alive])
            vis = x[..., rows, :]
            full = x.new_zeros(*x.shape[:-2], T, x.shape[-1])
            full[..., alive.nonzero().flatten(), :] = vis
            ref = similarity_concentrate(full, layout.segments[0].grid, params)
            got = trace.sites[site]
            assert (got.zero[i, 0] == ref.zero.numpy()).all(), (i, site)
            assert (got.similar[i, 0] == ref.similar.numpy()).all(), (i, site)
            assert (got.root[i, 0] == ref.root.numpy()).all(), (i, site)
            if site == "q_proj":  # k/v see exactly q_proj's concentrated input
                assert torch.equal(captured[(i, "k_in")][rows], ref.tokens[alive])
        alive_before = after
    assert trace.sparsity() > 0


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_decode_steps_pass_through(attn):
    model, make = tiny("qwen2vl", attn)
    inputs = make("video", frames=2, seed=2)
    gen = dict(max_new_tokens=4, do_sample=False)
    dense = model.generate(**inputs, **gen)
    handle = enable_focus(model, FocusParams(threshold=math.inf, **NO_SEC))
    try:
        assert torch.equal(model.generate(**inputs, **gen), dense)
    finally:
        handle.remove()

    handle = enable_focus(model, FocusParams(threshold=0.8, sec_layers=(1,), sec_keep=(0.5,)))
    try:
        out = model.generate(**inputs, **gen)  # no grid_thw here: grid from the 3D rope ids
        assert handle.prefill.layout == find_layout(model, inputs)
        with torch.no_grad():
            prefill = model(**inputs, use_cache=True)
        report, state = handle.report(), handle.prefill

        def refuse(x, grid):
            raise AssertionError("concentrator called in a decode step")

        handle._fn = handle._query_fn = refuse
        seen = []
        hook = (
            language_model(model)
            .layers[3]
            .register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[1]))
        )
        S = state.layout.seq_len
        with torch.no_grad():
            step = model(
                input_ids=prefill.logits[:, -1:].argmax(-1),
                past_key_values=prefill.past_key_values,
                use_cache=True,
            )
        hook.remove()
        assert handle.report().equals(report)  # the decode step recorded nothing
    finally:
        handle.remove()
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4
    assert seen == [1] and torch.isfinite(step.logits).all()
    kept = S - (state.num_visual - state.kept[1])
    assert prefill.past_key_values.layers[3].keys.shape[2] == kept + 1
    assert prefill.past_key_values.get_seq_length() == S + 1


def test_decode_after_sec_matches_masked_dense():
    """Prefill + one decode step with SEC equal the dense model whose layers
    after the SEC layer cannot see the pruned tokens (same rope positions)."""
    model, make = tiny("qwen2vl", "eager")
    inputs = make("video", frames=2, seed=5)
    params = FocusParams(threshold=math.inf, sec_layers=(1,), sec_keep=(0.4,))
    with enable_focus(model, params) as handle, torch.no_grad():
        prefill = model(**inputs, use_cache=True)
        token = prefill.logits[:, -1:].argmax(-1)
        step = model(input_ids=token, past_key_values=prefill.past_key_values, use_cache=True)
        state = handle.prefill
    pruned = state.visual[~state.alive]

    def mask_pruned(module, args, kwargs):
        mask = kwargs["attention_mask"].clone()
        mask[..., pruned] = torch.finfo(mask.dtype).min
        return args, {**kwargs, "attention_mask": mask}

    hooks = [
        lay.register_forward_pre_hook(mask_pruned, with_kwargs=True)
        for lay in language_model(model).layers[2:]
    ]
    try:
        with torch.no_grad():
            ref = model(**inputs, use_cache=True)
            ref_step = model(input_ids=token, past_key_values=ref.past_key_values, use_cache=True)
    finally:
        for h in hooks:
            h.remove()
    kept = torch.isin(torch.arange(state.layout.seq_len), state.present)
    torch.testing.assert_close(prefill.logits[0], ref.logits[0, kept], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(step.logits, ref_step.logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["image", "video"])
def test_llava_generate(kind):
    model, make = tiny("llava")
    inputs = make(kind, image_size=(32, 16), seed=4) if kind == "image" else make(kind, seed=4)
    gen = dict(max_new_tokens=3, do_sample=False)
    dense = model.generate(**inputs, **gen)
    handle = enable_focus(model, FocusParams(threshold=math.inf, **NO_SEC))
    try:  # generate() passes precomputed features without image_sizes
        assert torch.equal(model.generate(**inputs, **gen), dense)
        assert handle.prefill.layout == find_layout(model, inputs)
    finally:
        handle.remove()


def test_rejects_bad_input():
    model, make = tiny("qwen2vl")
    with pytest.raises(ValueError, match="sec_layers"):
        enable_focus(model, FocusParams(sec_layers=(7,), sec_keep=(0.5,)))
    with pytest.raises(ValueError, match="method"):
        enable_focus(model, FocusParams(), method="nope")
    handle = enable_focus(model, FocusParams(**NO_SEC))
    try:
        with pytest.raises(ValueError, match="already enabled"):
            enable_focus(model, FocusParams(**NO_SEC))
        inputs = make("image")
        batch = {
            k: torch.cat([v, v]) if k in ("input_ids", "attention_mask", "mm_token_type_ids") else v
            for k, v in inputs.items()
        }
        with pytest.raises(ValueError, match="batch size 1"):
            logits(model, batch)
    finally:
        handle.remove()


def test_find_layout_grids():
    model, make = tiny("qwen2vl")
    inputs = make("video", frames=3, height=6, width=8)
    layout = find_layout(model, inputs)
    placeholders = (inputs["input_ids"][0] == model.config.video_token_id).nonzero().flatten()
    assert [s.grid for s in layout.segments] == [(3, 3, 4)]
    assert torch.equal(layout.positions(), placeholders)
    assert layout.text_start == placeholders[-1] + 1
    assert find_layout(model, {"input_ids": torch.tensor([[1, 2, 3]])}) is None

    model, make = tiny("llava")
    inputs = make("video", frames=5)
    layout = find_layout(model, inputs)
    placeholders = (inputs["input_ids"][0] == model.config.video_token_id).nonzero().flatten()
    assert [s.grid for s in layout.segments] == [(5, 2, 2)]  # 4x4 patches pooled 2x2
    assert torch.equal(layout.positions(), placeholders[:-1])  # trailing newline is not visual


def test_llava_anyres_layout_matches_model_features():
    model, make = tiny("llava")
    for size in [(16, 16), (32, 16), (32, 32), (20, 30)]:
        inputs = make("image", image_size=size)
        layout = find_layout(model, inputs)
        with torch.no_grad():
            feats = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"])
        n = feats.pooler_output[0].shape[0]
        assert layout.num_visual == n == inputs["input_ids"].eq(model.config.image_token_id).sum()
        base, hires = (s.grid for s in layout.segments)
        assert base == (1, 4, 4) and hires[2] >= 2


def test_fidelity_metrics_by_hand():
    dense = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    focus = torch.tensor([[1.0, 1.0], [4.0, 3.0]])
    kept = torch.tensor([0, 2])
    dl, fl = torch.tensor([0.0, math.log(3.0)]), torch.tensor([math.log(3.0), 0.0])
    m = fidelity(dense, focus, kept, dl, fl)
    assert m["hidden_cosine"] == pytest.approx((1 / math.sqrt(2) + 24 / 25) / 2)
    assert m["hidden_cosine_last"] == pytest.approx(24 / 25)
    p, q = [0.25, 0.75], [0.75, 0.25]
    assert m["kl_last"] == pytest.approx(sum(a * math.log(a / b) for a, b in zip(p, q)))
    assert m["top1_agree"] == 0.0


def test_compare_dense_vs_focus():
    model, make = tiny("qwen2vl")
    inputs = make("video", frames=2)
    exact = compare(model, inputs, FocusParams(threshold=math.inf, **NO_SEC))
    assert exact["hidden_cosine"] == pytest.approx(1.0)
    assert exact["kl_last"] == pytest.approx(0, abs=1e-9)
    assert exact["top1_agree"] == 1.0 and exact["sparsity"] == 0.0
    lossy = compare(model, inputs, FocusParams(threshold=0.5, sec_layers=(1,), sec_keep=(0.5,)))
    assert lossy["sparsity"] > 0 and lossy["kl_last"] > 0
    assert lossy["visual_kept"] == round(0.5 * lossy["visual_tokens"])


@pytest.mark.parametrize("method", ["cmc", "adaptiv"])
def test_baseline_methods(method):
    from focus_algo.baselines import BASELINES

    model, make = tiny("qwen2vl")
    inputs = make("video", frames=2)
    layout = find_layout(model, inputs)
    captured = {}
    q = language_model(model).layers[0].self_attn.q_proj
    hook = q.register_forward_pre_hook(lambda m, a: captured.__setitem__("x", a[0][0].clone()))
    params = FocusParams(**NO_SEC)
    handle = enable_focus(model, params, method=method, threshold=0.5)
    try:
        logits(model, inputs)
        report = handle.report()
    finally:
        handle.remove()
        hook.remove()
    x = captured["x"][layout.positions()]
    ref = BASELINES[method](x, layout.segments[0].grid, 0.5, params=params)
    row = report[(report.layer == 0) & (report.site == "q_proj")]
    assert row["sparsity"].iloc[0] == pytest.approx(ref.sparsity)
