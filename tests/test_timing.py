"""The closed-form cycle counts of focus_hw.timing against hand values and the RTL."""

import ml_dtypes
import numpy as np
import pytest

from focus_hw import FocusParams
from focus_hw.arith.mac import mac_cuts
from focus_hw.simulate import simulate_gemm, simulate_tiles
from focus_hw.timing import array_latency, gemm_cycles, reload_cycles, tile_cycles

NP_DTYPE = {"int8": np.int8, "fp16": np.float16, "bf16": ml_dtypes.bfloat16}


def P(rows, cols, pipe=0, dtype="int8"):
    return FocusParams(rows=rows, cols=cols, mac_pipeline=pipe, dtype=dtype)


def operands(rng, shape, dtype):
    if dtype == "int8":
        return rng.integers(-128, 128, shape).astype(np.int8)
    return rng.standard_normal(shape).astype(NP_DTYPE[dtype])


# -- hand-computed values -------------------------------------------------------
def test_hand_values():
    # 2 x 3 array, 1 MAC stage: partial sums take 2 cycles per PE row
    p = P(2, 3, 1)
    assert array_latency(p) == 2 * 2 + 3 - 1 == 6
    assert tile_cycles(1, p) == 7
    assert tile_cycles(5, p) == 11
    assert reload_cycles(p) == 1 * 2 + 3 + 1 == 6
    # k=4, n=3: 2 x 1 weight tiles; m=4 < reload: 6 + tile_cycles(4)
    assert gemm_cycles(4, 4, 3, p) == 6 + 10
    # m=9 > reload: tiles start m apart
    assert gemm_cycles(9, 4, 3, p) == 9 + 15
    assert gemm_cycles(9, 2, 3, p) == tile_cycles(9, p)
    # paper point: 32 x 32, single-cycle MAC
    d = FocusParams()
    assert array_latency(d) == 63 and reload_cycles(d) == 64
    assert gemm_cycles(1024, 4096, 4096, d) == (128 * 128 - 1) * 1024 + 1024 + 63


@pytest.mark.parametrize(
    "fn", [lambda m: tile_cycles(m, P(2, 2)), lambda m: gemm_cycles(m, 2, 2, P(2, 2))]
)
@pytest.mark.parametrize("m", [0, -1, 1.5, True])
def test_bad_m(fn, m):
    with pytest.raises(ValueError, match="m="):
        fn(m)


def test_numpy_integers_accepted():
    p = P(2, 3, 1)
    assert tile_cycles(np.int64(5), p) == 11
    assert gemm_cycles(np.int32(4), np.int64(4), np.uint8(3), p) == 16


def test_bad_k_n():
    with pytest.raises(ValueError, match="k=0"):
        gemm_cycles(1, 0, 2, P(2, 2))
    with pytest.raises(ValueError, match="n=2.0"):
        gemm_cycles(1, 2, 2.0, P(2, 2))


# -- the RTL takes exactly these cycles -------------------------------------------
@pytest.mark.parametrize(
    "m,rows,cols,pipe,dtype",
    [
        (1, 1, 1, 0, "int8"),
        (1, 2, 3, 0, "int8"),
        (6, 3, 2, 0, "int8"),
        (4, 2, 2, 3, "int8"),
        (10, 4, 4, 1, "int8"),
        (3, 2, 3, 0, "fp16"),
        (5, 3, 2, 2, "bf16"),
        (4, 3, 2, mac_cuts("fp16"), "fp16"),  # every cut point of the MAC registered
        (3, 2, 3, mac_cuts("bf16"), "bf16"),
    ],
)
def test_tile_cycles_match_rtl(m, rows, cols, pipe, dtype):
    rng = np.random.default_rng(m)
    p = P(rows, cols, pipe, dtype)
    run = simulate_gemm(operands(rng, (m, rows), dtype), operands(rng, (rows, cols), dtype), p)
    assert run.cycles == tile_cycles(m, p)


@pytest.mark.parametrize(
    "m,rows,cols,pipe,kt,nt",
    [
        (2, 2, 2, 0, 1, 2),  # m < reload: the swap wave bounds the tile rate
        (7, 2, 2, 0, 2, 1),  # m > reload: tiles back to back
        (3, 3, 2, 1, 2, 2),
        (1, 1, 1, 0, 3, 1),
        (8, 2, 3, 2, 1, 2),
        (5, 2, 2, 7, 2, 2),
    ],
)
def test_gemm_cycles_match_rtl(m, rows, cols, pipe, kt, nt):
    rng = np.random.default_rng(m + kt)
    p = P(rows, cols, pipe)
    tiles = [
        (operands(rng, (m, rows), "int8"), operands(rng, (rows, cols), "int8"))
        for _ in range(kt * nt)
    ]
    run = simulate_tiles(tiles, p)
    assert run.cycles == gemm_cycles(m, kt * rows, nt * cols, p)
    # a partial last tile costs the same
    k, n = (kt - 1) * rows + 1, (nt - 1) * cols + 1
    assert gemm_cycles(m, k, n, p) == gemm_cycles(m, kt * rows, nt * cols, p)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["int8", "fp16"])
def test_cycles_sweep_slow(dtype):
    rng = np.random.default_rng(0)
    for rows in (1, 3, 5):
        for cols in (1, 2, 6):
            for pipe in (0, 1, 3, mac_cuts(dtype)):
                p = P(rows, cols, pipe, dtype)
                for m in (1, 4, 13):
                    run = simulate_gemm(
                        operands(rng, (m, rows), dtype), operands(rng, (rows, cols), dtype), p
                    )
                    assert run.cycles == tile_cycles(m, p)
                tiles = [
                    (operands(rng, (5, rows), dtype), operands(rng, (rows, cols), dtype))
                    for _ in range(3)
                ]
                assert simulate_tiles(tiles, p).cycles == gemm_cycles(5, 3 * rows, cols, p)
