"""Workloads, sparsity inputs and traces of the performance model."""

import json

import numpy as np
import pandas as pd
import pytest

from focus_hw import FocusParams
from sim.model import simulate
from sim.sparsity import (
    SparsityError,
    counts_from_trace,
    focus_target,
    sec_survivors,
    synthetic_counts,
    synthetic_trace,
    token_counts,
)
from sim.workload import (
    REFERENCE_DIR,
    Workload,
    WorkloadError,
    from_config,
    paper_workloads,
    qwen2_7b,
)

P = FocusParams(m_tile=64, sec_layers=(1,), sec_keep=(0.5,))
TINY = Workload(
    name="tiny",
    hidden=64,
    heads=2,
    kv_heads=1,
    head_dim=32,
    ffn=96,
    layers=3,
    tokens=150,
    frames=6,
    height=5,
    width=5,
)


def test_paper_workloads_match_meta_and_dense_ops():
    ws = paper_workloads()
    meta = pd.read_csv(REFERENCE_DIR / "algorithm" / "meta_data.csv")
    assert [w.tokens for w in ws] == list(meta["Sequence length"])
    dense = pd.read_csv(REFERENCE_DIR / "simulator" / "main_dense.csv")
    focus = pd.read_csv(REFERENCE_DIR / "simulator" / "main_focus.csv")
    for w in ws:
        # hand formula: 28 layers x T x (q,k,v,o,gate,up,down) + causal attention
        t = w.tokens
        lin = 3584 * 3584 * 2 + 3584 * 512 * 2 + 3 * 3584 * 18944
        want = 28 * (t * lin + 2 * 28 * 128 * ((t * t + 1) // 2))
        assert w.dense_macs() == want
        ref = focus[(focus.model == w.model) & (focus.dataset == w.dataset)].dense_ops
        assert abs(want - float(ref.iloc[0])) <= 28 * 28 * 128  # the artifact floors T^2/2
    assert len(dense) == len(ws) == 15


def test_config_json_plain_and_nested(tmp_path):
    llm = {
        "hidden_size": 3584,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text(json.dumps(llm))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llava_onevision",
                "vision_config": {"hidden_size": 1152},
                "text_config": llm,
            }
        )
    )
    ref = qwen2_7b(1000)
    for d in ("a", "b"):
        w = from_config(tmp_path / d / "config.json", 1000)
        assert (w.hidden, w.heads, w.kv_heads, w.head_dim, w.ffn, w.layers) == (
            ref.hidden,
            ref.heads,
            ref.kv_heads,
            ref.head_dim,
            ref.ffn,
            ref.layers,
        )


def test_malformed_config_json(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(WorkloadError, match="cannot read"):
        from_config(bad, 10)
    bad.write_text(json.dumps({"hidden_size": 64}))
    with pytest.raises(WorkloadError, match="num_attention_heads"):
        from_config(bad, 10)
    bad.write_text(
        json.dumps(
            {
                "hidden_size": 64,
                "num_attention_heads": 3,
                "num_key_value_heads": 2,
                "intermediate_size": 8,
                "num_hidden_layers": 1,
            }
        )
    )
    with pytest.raises(WorkloadError, match="multiple"):
        from_config(bad, 10)


def test_sec_survivors_follow_keep_schedule():
    w = qwen2_7b(1000)
    attn, mlp = sec_survivors(w, FocusParams(sec_layers=(2, 5), sec_keep=(0.4, 0.1)))
    assert list(attn[:4]) == [1000, 1000, 1000, 400] and mlp[2] == 400
    assert attn[5] == 400 and mlp[5] == 100 and attn[27] == 100


def test_token_counts_round_up_per_tile():
    c = token_counts(TINY, P.replace(sec_layers=(), sec_keep=()), {"linear": 0.3, "query": 0.5})
    assert c.sites["q_proj"].nonzero[0].tolist() == [64, 64, 22]
    assert c.sites["q_proj"].rows[0].tolist() == [45, 45, 16]  # ceil(0.7 x tile)
    assert c.sites["query"].rows[0].tolist() == [32, 32, 11]
    assert c.sites["scores"].rows[0].tolist() == [64, 64, 22]


@pytest.mark.parametrize("target", [0.3, 0.8])
def test_synthetic_counts_hit_target(target):
    w = qwen2_7b(4000, frames=20)
    c = synthetic_counts(w, FocusParams(), target)
    for site in ("q_proj", "down_proj"):
        sc = c.sites[site]
        assert sc.sparsity == pytest.approx(target, abs=0.01)
        per_layer = 1 - sc.unique.sum((1, 2)) / (sc.nonzero.sum(1) * sc.unique.shape[2])
        assert per_layer.std() > 0.02  # spread over layers, not uniform
        assert (sc.unique[:, :, :] <= sc.nonzero[:, :, None]).all()


def test_synthetic_trace_round_trip(tmp_path):
    from focus_algo.trace import SparseTrace

    tr = synthetic_trace(TINY, P, 0.6, seed=3)
    path = tmp_path / "t.safetensors"
    tr.save(path)
    back = SparseTrace.load(path)
    c = counts_from_trace(back, TINY, P)
    want = synthetic_counts(TINY, P, 0.6, seed=3)
    for site in ("q_proj", "query", "o_proj", "gate_proj", "down_proj"):
        np.testing.assert_array_equal(c.sites[site].nonzero, want.sites[site].nonzero)
        np.testing.assert_array_equal(c.sites[site].unique, want.sites[site].unique)
    # SEC: layer 1's MLP and layer 2 see half the tokens, pruned = all-zero
    assert back.sites["gate_proj"].zero[1, 0].all(axis=1).sum() == 75
    a = simulate(TINY, P, "focus", back).totals
    b = simulate(TINY, P, "focus", want).totals
    assert a.cycles == b.cycles and a.dram_bytes == b.dram_bytes


def test_trace_mismatch_errors():
    tr = synthetic_trace(TINY, P, 0.5)
    other_t = Workload(**{**TINY.__dict__, "tokens": 100, "frames": 4})
    with pytest.raises(SparsityError, match="T=150"):
        simulate(other_t, P, "focus", tr)
    other_l = Workload(**{**TINY.__dict__, "layers": 2})
    with pytest.raises(SparsityError, match="3 layers"):
        simulate(other_l, P, "focus", tr)
    with pytest.raises(SparsityError, match="vector_size"):
        simulate(TINY, P.replace(vector_size=16), "focus", tr)
    del tr.sites["o_proj"]
    with pytest.raises(SparsityError, match="o_proj"):
        simulate(TINY, P, "focus", tr)


def test_focus_target_from_paper_tables():
    focus = pd.read_csv(REFERENCE_DIR / "simulator" / "main_focus.csv")
    sec = pd.read_csv(REFERENCE_DIR / "simulator" / "main_focus_SEC_only.csv")
    f, s = focus.iloc[0], sec.iloc[0]
    assert focus_target(f.model, f.dataset) == pytest.approx(1 - f.num_ops / s.num_ops)
    assert focus_target("llava_vid", "videomme", "compression") == pytest.approx(1 - 1 / 1.8875)
    with pytest.raises(SparsityError):
        focus_target("nope", "videomme")
