"""The model's tile timing against the generated RTL (focus_hw.simulate_gemm /
simulate_tiles), cycle for cycle."""

import numpy as np
import pytest

from focus_hw import FocusParams
from sim.model import simulate, stream_cycles
from sim.sparsity import dense_counts
from sim.workload import Workload

simulate_mod = pytest.importorskip(
    "focus_hw.simulate", reason="helper 'array' has not delivered simulate_gemm"
)


@pytest.mark.parametrize(
    "m,rows,cols,dtype,pipe",
    [(1, 2, 2, "int8", 0), (5, 2, 3, "int8", 0), (9, 4, 2, "int8", 1), (3, 2, 2, "fp16", 0)],
)
def test_single_tile_cycles_equal_rtl(m, rows, cols, dtype, pipe):
    p = FocusParams(rows=rows, cols=cols, dtype=dtype, mac_pipeline=pipe)
    np_dt = np.int8 if dtype == "int8" else np.float16
    run = simulate_mod.simulate_gemm(np.ones((m, rows), np_dt), np.ones((rows, cols), np_dt), p)
    assert stream_cycles([m], p) == run.cycles


@pytest.mark.parametrize("ms", [[3, 1, 5], [1, 1], [7, 2, 0, 6]])
def test_stream_cycles_equal_rtl(ms):
    p = FocusParams(rows=2, cols=2, dtype="int8")
    tiles = [(np.ones((m, 2), np.int8), np.ones((2, 2), np.int8)) for m in ms if m]
    assert stream_cycles(ms, p) == simulate_mod.simulate_tiles(tiles, p).cycles


def test_model_gemm_stream_equals_rtl():
    """The q projection of a tiny decoder: its weight tiles, in the model's
    order (M tile, K chunk, N tile), streamed through the RTL."""
    p = FocusParams(
        rows=2, cols=2, dtype="int8", m_tile=4, vector_size=2, sec_layers=(), sec_keep=()
    )
    w = Workload(name="t", hidden=4, heads=2, kv_heads=1, head_dim=2, ffn=6, layers=1, tokens=5)
    g = simulate(w, p, "dense").gemms
    q = g[g.gemm == "q"].iloc[0]
    ms = [m for m in (4, 1) for _ in range(2 * 2)]  # 2 K chunks x 2 N tiles
    tiles = [(np.ones((m, 2), np.int8), np.ones((2, 2), np.int8)) for m in ms]
    assert q.compute_cycles == simulate_mod.simulate_tiles(tiles, p).cycles
    assert dense_counts(w, p).sites["q_proj"].nonzero.tolist() == [[4, 1]]


@pytest.mark.parametrize("m,k,n", [(1, 32, 32), (50, 64, 96), (1024, 3584, 512)])
def test_stream_of_equal_tiles_is_timing_gemm_cycles(m, k, n):
    from focus_hw.timing import gemm_cycles

    p = FocusParams()
    tiles = -(-k // p.rows) * -(-n // p.cols)
    assert stream_cycles([m] * tiles, p) == gemm_cycles(m, k, n, p)
