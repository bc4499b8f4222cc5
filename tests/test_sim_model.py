"""Performance model: hand-computed tiny GEMMs, dense == Focus at zero
sparsity, monotonicity (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus_hw import FocusParams
from focus_hw.accelerator import dram_bytes
from focus_hw.timing import focus_schedule, sic_busy_cycles, sic_run_cycles
from sim.focus_gemm import ACCESSES, GemmCounts, access_bytes, focus_gemm
from sim.model import MachineError, simulate
from sim.sparsity import SiteCounts, SparsityError, TileCounts, dense_counts
from sim.workload import Workload, paper_workload

TINY = Workload(
    name="tiny", hidden=64, heads=2, kv_heads=1, head_dim=32, ffn=96, layers=2, tokens=300
)
#: Output tiles of one SIC vector (32 columns), as the hand counts below assume.
P = FocusParams(
    rows=32,
    cols=32,
    m_tile=128,
    vector_size=32,
    num_scatter=2,
    out_vectors=1,
    ring_blocks=2,
    sec_layers=(),
    sec_keep=(),
)
RELOAD = (32 - 1) * 1 + 32 + 1  # rows-1 PE hops + cols + 1 (timing.py derivation)
LAT = 32 + 32 - 1  # fill + drain of one tile


def tc(m):  # tile_cycles by hand
    return m + LAT


def row(res, gemm, layer=0):
    g = res.gemms
    return g[(g.gemm == gemm) & (g.layer == layer)].iloc[0]


def focus_counts(q_unique, site="q_proj"):
    """Dense counts except ``site``'s unique vectors of layer 0."""
    c = dense_counts(TINY, P)
    sites = {k: SiteCounts(v.nonzero, v.rows, v.unique.copy()) for k, v in c.sites.items()}
    sites[site].unique[0] = q_unique
    return TileCounts(sites, vector=True, m_tile=P.m_tile, vector_size=P.vector_size)


def test_dense_q_gemm_by_hand():
    r = simulate(TINY, P, "dense")
    q = row(r, "q")
    # tiles of 128, 128, 44 tokens; K=64 -> 2 chunks, N=64 -> 2 weight tiles each
    assert q.compute_cycles == 8 * 128 + 3 * RELOAD + tc(44)
    assert q.cycles == q.compute_cycles and q.stall_cycles == 0
    assert q.macs == 300 * 64 * 64
    # the output buffer holds 32 columns: the input is fetched once per column tile
    assert q.dram_in == 2 * 300 * 64 * 2
    assert q.dram_weight == 3 * 64 * 64 * 2
    assert q.dram_out == 300 * 64 * 2
    assert q.input_write == q.dram_in


def test_dense_attention_by_hand():
    r = simulate(TINY, P, "dense")
    qk, sv = row(r, "qk"), row(r, "sv")
    keys = np.array([128, 256, 300])
    ntile = -(-keys // 32)  # key columns per query tile
    rows = np.array([128, 128, 44])
    # QK^T: 2 heads x 1 chunk (head_dim 32) per tile, ntile weight tiles each
    issue = sum(2 * n * max(m, RELOAD) for n, m in zip(ntile, rows))
    assert qk.compute_cycles == issue - max(44, RELOAD) + tc(44)
    assert qk.macs == sum(2 * m * 32 * k for m, k in zip(rows, keys))
    # S x V: 2 heads x ceil(keys/32) chunks x 1 column tile
    assert sv.compute_cycles == issue - max(44, RELOAD) + tc(44)
    # K reloaded per query head (2 heads share the one KV head); the query of
    # each head fetched once per 32-key column tile
    assert qk.dram_weight == sum(2 * k * 32 * 2 for k in keys)
    assert qk.dram_in == sum(n * m * 2 * 32 * 2 for n, m in zip(ntile, rows))
    assert qk.dram_out == sum(m * k * 2 * 2 for m, k in zip(rows, keys))  # scores
    # S x V reads those probabilities once per 32-wide column tile of head_dim (1)
    assert sv.dram_in == qk.dram_out
    assert sv.dram_weight == qk.dram_weight


def test_refetch_per_output_column_tile():
    """The output buffer holds one m_tile x cols accumulator tile, so every
    input is fetched from DRAM once per column tile of its GEMM's N."""
    w = Workload(
        name="hd64", hidden=128, heads=2, kv_heads=1, head_dim=64, ffn=96, layers=1, tokens=200
    )
    r = simulate(w, P, "dense")
    q, qk, sv = row(r, "q"), row(r, "qk"), row(r, "sv")
    assert q.dram_in == 4 * 200 * 128 * 2  # N=128: 4 tiles of 32
    keys, rows = np.array([128, 200]), np.array([128, 72])
    # QK^T: each head's 64-dim query fetched per 32-key tile; K per query head
    assert qk.dram_in == sum(-(-k // 32) * m * 2 * 64 * 2 for k, m in zip(keys, rows))
    assert qk.dram_weight == sum(2 * k * 64 * 2 for k in keys)
    # S x V: the probabilities (2 heads x rows x keys) once per 32 of head_dim's 64
    assert sv.dram_in == 2 * sum(2 * m * k * 2 for m, k in zip(rows, keys))
    # twice the columns: half the linear refetches, same compute per MAC
    wide = simulate(w, P.replace(cols=64), "dense")
    assert row(wide, "q").dram_in == 2 * 200 * 128 * 2
    assert row(wide, "q").macs == q.macs
    # output tiles of 3 SIC vectors (96 columns): N=128 in 2 groups (96 + 32)
    grouped = simulate(w, P.replace(out_vectors=3), "dense")
    assert row(grouped, "q").dram_in == 2 * 200 * 128 * 2
    assert row(grouped, "qk").dram_in == sum(
        -(-k // 96) * m * 2 * 64 * 2 for k, m in zip(keys, rows)
    )


def test_focus_q_gemm_by_hand():
    u = np.array([[100, 70], [128, 10], [44, 0]])
    r = simulate(TINY, P, "focus", focus_counts(u))
    q = row(r, "q")
    # u=10 and the first u=44 tile issue at RELOAD; the empty chunk is skipped
    issue = 2 * (100 + 70 + 128 + RELOAD) + RELOAD
    assert q.compute_cycles == issue + tc(44)
    # scatter: tokens x 2 vectors x 2 column tiles / 2 accumulators, below compute
    assert q.scatter_cycles == (128 + 128 + 44) * 2 * 2 // 2
    # the SIC counter: per pass (one per 32-wide slot of N=64) its vectors
    # taken and its output phase active
    assert q.sic_cycles == 2 * sum(sic_busy_cycles(m, P) for m in (128, 128, 44))
    # time: the integrated accelerator's exact schedule on these counts (the
    # RTL equals it: tests/test_focus_gemm.py); the SIC passes, far longer
    # than this K=64 GEMM's compute, set it: at least the six passes back to
    # back on their own
    tiles = [(128, [100, 70]), (128, [128, 10]), (44, [44, 0])]
    exact = focus_schedule(tiles, 2, P)
    assert q.compute_cycles + q.stall_cycles == exact["cycles"]
    assert exact["cycles"] >= sic_run_cycles([128] * 4 + [44] * 2, P) > q.compute_cycles
    assert q.macs == (100 + 70 + 128 + 10 + 44) * 32 * 64
    # DRAM by the RTL's streams, per output column tile (2): the unique
    # vectors, one map entry per (token, chunk), one position per token; the
    # weights of the 5 chunks with a unique vector; the query site dense
    # plus each token's map entry per slot written back
    size = dram_bytes(P)
    assert size["vectors"] == 32 * 2 and size["map"] == 1  # fp16; zero flag + 7-bit slot
    per_tile = (100 + 70 + 128 + 10 + 44) * 64 + 300 * 2 * 1 + 300 * size["positions"]
    assert q.dram_in == 2 * per_tile
    assert q.dram_weight == 5 * 2 * 32 * 64
    assert q.dram_out == 300 * 64 * 2 + 300 * 2 * 1
    # SRAM: each buffer's accesses as the RTL counts them (sim.focus_gemm,
    # equal to the RTL's counters), times the bytes an access moves
    nonzero = np.array([[128, 128], [128, 128], [44, 44]])
    rtl = focus_gemm(GemmCounts((128, 128, 44), u, nonzero, 2, 0), P)
    assert q.dram_in + q.dram_weight == rtl["dram_read_bytes"]
    words = access_bytes(P)
    assert words["input"] == 64 and words["output"] == words["concentrate_out"] == 32 * 4
    for name, (buf, op) in ACCESSES.items():
        if buf in words:
            assert q[f"{buf}_{op}"] == rtl[name] * words[buf], name
    assert q.weight_read == q.weight_write == 5 * 2 * 32 * 64
    assert q.layouter_read == q.layouter_write == 0  # the RTL has no layouter buffer
    # one accumulator, lanes enough for the SIC to hide: the scatter sets the pace
    p1 = P.replace(num_scatter=1, sic_lanes=32)
    q1 = row(simulate(TINY, p1, "focus", focus_counts(u)), "q")
    assert q1.compute_cycles + q1.stall_cycles == focus_schedule(tiles, 2, p1)["cycles"]
    assert q1.scatter_cycles == 2 * q.scatter_cycles


def test_focus_k_and_v_bypass_the_output_sic():
    """k and v go to the KV cache whole: their runs bypass the output SIC
    (no SIC work, every output row written back)."""
    r = simulate(TINY, P, "focus", focus_counts(np.array([[100, 70], [128, 10], [44, 0]])))
    tiles = [(128, [100, 70]), (128, [128, 10]), (44, [44, 0])]
    for gemm in ("k", "v"):
        g = row(r, gemm)
        assert (
            g.compute_cycles + g.stall_cycles == focus_schedule(tiles, 1, P, bypass=True)["cycles"]
        )
        assert g.sic_cycles == g.similarity_table_read == g.similarity_map_write == 0
        assert g.dram_out == 300 * 32 * 2  # N = 32 (one KV head), fp16


def test_focus_sv_gemm_is_one_run_per_kv_head_and_m_tile():
    """S x V on Focus: one run of the integrated accelerator per (KV head,
    M tile), K = the tile's causal keys, its M tiles the query heads that
    share the V, every probability row unique, N = head_dim; the run's
    cycles replace compute + stall."""
    r = simulate(TINY, P, "focus", focus_counts(np.array([[100, 70], [128, 10], [44, 0]])))
    sv = r.gemms[(r.gemms.gemm == "sv") & (r.gemms.layer == 0)].iloc[0]
    keys = (128, 256, 300)  # causal keys of the 3 M tiles
    runs = [  # TINY: 2 query heads share 1 KV head; head_dim 32: 1 sub-tile
        focus_schedule([(m, [m] * -(-k // 32))] * 2, 1, P)["cycles"]
        for m, k in zip((128, 128, 44), keys)
    ]
    assert sv.compute_cycles + sv.stall_cycles == sum(runs)
    # per query head, the V rows of each causal key chunk (32 x 64 bytes each)
    assert sv.dram_weight == 2 * sum(-(-k // 32) * 32 * 64 for k in keys)
    assert sv.stall_cycles > 0  # the SIC's tail of each run is not hidden


def test_focus_qk_gemm_is_one_bypass_run_per_kv_head_and_m_tile():
    """QK^T on Focus: one run of the integrated accelerator per (KV head,
    M tile) with the output SIC bypassed: its M tiles the query heads that
    share the keys, each with the tile's queries and their unique vectors
    per head_dim chunk, N = the tile's causal keys; the runs' cycles replace
    compute + stall."""
    query = np.array([[100, 70], [128, 10], [44, 0]])  # per M tile: head 0, head 1
    r = simulate(TINY, P, "focus", focus_counts(query, "query"))
    qk = row(r, "qk")
    runs = [  # TINY: 2 query heads share 1 KV head; head_dim 32: 1 chunk each
        focus_schedule([(m, [u0]), (m, [u1])], -(-keys // 32), P, bypass=True)["cycles"]
        for m, (u0, u1), keys in zip((128, 128, 44), query, (128, 256, 300))
    ]
    assert qk.compute_cycles + qk.stall_cycles == sum(runs)
    assert qk.sic_cycles == 0 and qk.stall_cycles > 0  # no SIC; the drain ends each run
    assert sum(runs) != sum(  # the SIC's passes would take longer
        focus_schedule([(m, [u0]), (m, [u1])], -(-keys // 32), P)["cycles"]
        for m, (u0, u1), keys in zip((128, 128, 44), query, (128, 256, 300))
    )


def test_baselines_q_gemm_by_hand():
    rows = [64, 64, 22]  # ceil(half of each tile)
    issue = 8 * 64 + 3 * RELOAD
    for machine, extra in (("cmc", 2 * 300 * 64 * 2), ("adaptiv", 0)):
        q = row(simulate(TINY, P, machine, {"linear": 0.5}), "q")
        assert q.compute_cycles == issue + tc(22)
        assert q.dram_in == 2 * sum(rows) * 64 * 2  # 2 column tiles
        assert q.dram_out == sum(rows) * 64 * 2 + extra
        assert q.macs == sum(rows) * 64 * 64


def test_focus_sec_prunes_after_attention():
    p = P.replace(sec_layers=(0,), sec_keep=(0.5,))
    r = simulate(TINY, p, "focus_sec")
    assert row(r, "q").tokens == 300 and row(r, "gate").tokens == 150
    assert row(r, "q", 1).tokens == 150
    # gate: tiles 128 + 22, 2 chunks x 3 column tiles
    assert row(r, "gate").compute_cycles == 6 * 128 + 5 * RELOAD + tc(22)


def test_energy_and_totals_add_up():
    r = simulate(TINY, P, "dense")
    t, g = r.totals, r.gemms
    assert t.dram_mj == pytest.approx(g.dram_bytes.sum() * P.dram_pj_per_byte * 1e-9)
    assert t.core_mj == pytest.approx(t.core_mw * t.time_s)
    assert t.energy_mj == pytest.approx(t.dram_mj + t.sram_mj + t.core_mj)
    assert t.time_s == pytest.approx(t.cycles / P.clock_hz)
    assert t.speedup == 1.0


@pytest.mark.parametrize("workload", [TINY, paper_workload("llava_onevision", "mme")])
def test_dense_equals_focus_at_zero_sparsity(workload):
    """Same compute; Focus only adds the SIC's stall (no scatter stall)."""
    d = simulate(workload, P, "dense").gemms
    f = simulate(workload, P, "focus", 0.0).gemms
    np.testing.assert_array_equal(f.stall_cycles, f.sic_stall_cycles)
    np.testing.assert_array_equal(d.compute_cycles, f.compute_cycles)
    np.testing.assert_array_equal(d.macs, f.macs)


SMALL = Workload(
    name="small", hidden=256, heads=4, kv_heads=2, head_dim=64, ffn=512, layers=3, tokens=700
)


@settings(max_examples=30, deadline=None)
@given(
    a=st.floats(0.0, 0.95),
    b=st.floats(0.0, 0.95),
    machine=st.sampled_from(["focus", "cmc", "adaptiv"]),
    ns=st.integers(1, 4),
)
def test_more_sparsity_never_slower(a, b, machine, ns):
    lo, hi = sorted((a, b))
    p = P.replace(num_scatter=ns)
    t_lo = simulate(SMALL, p, machine, lo).totals
    t_hi = simulate(SMALL, p, machine, hi).totals
    assert t_hi.cycles <= t_lo.cycles
    assert t_hi.macs <= t_lo.macs


@settings(max_examples=30, deadline=None)
@given(s=st.floats(0.0, 0.95), n1=st.integers(1, 6), n2=st.integers(1, 6))
def test_more_scatter_units_never_more_stall(s, n1, n2):
    lo, hi = sorted((n1, n2))
    t_lo = simulate(SMALL, P.replace(num_scatter=lo), "focus", s).totals
    t_hi = simulate(SMALL, P.replace(num_scatter=hi), "focus", s).totals
    assert t_hi.stall_cycles <= t_lo.stall_cycles
    assert t_hi.cycles <= t_lo.cycles


def test_bad_inputs():
    with pytest.raises(MachineError, match="unknown machine"):
        simulate(TINY, P, "tpu")
    with pytest.raises(SparsityError, match=r"\[0, 1\)"):
        simulate(TINY, P, "cmc", -0.1)
    with pytest.raises(SparsityError, match="unknown site"):
        simulate(TINY, P, "adaptiv", {"mlp": 0.3})
    with pytest.raises(MachineError, match="needs a sparsity"):
        simulate(TINY, P, "focus")
    with pytest.raises(MachineError, match="takes no sparsity"):
        simulate(TINY, P, "dense", 0.5)
