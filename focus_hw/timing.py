"""Closed-form timing of the generated systolic array.

This is the single statement of how many cycles the RTL
(:class:`focus_hw.SystolicArray`) takes; the performance model (``sim``)
imports it and the RTL tests assert that :func:`focus_hw.simulate_gemm`
measures exactly this. All counts are clock cycles without backpressure.

Derivation (``R`` = rows, ``C`` = cols, ``P`` = ``mac_pipeline``,
``L = P + 1`` = cycles a partial sum spends in one PE: ``P`` MAC stages plus
the PE's partial-sum register). Let an activation row be accepted in cycle
``t``:

* lane 0 drives PE(0, 0) in cycle ``t`` (no input register); lane ``k`` is
  skewed by ``k*L`` registers, so it meets the partial sum coming down from
  PE(k-1, 0) in cycle ``t + k*L``;
* activations move one PE right per cycle, so PE(k, c) works on the row in
  cycle ``t + k*L + c``, and the bottom PE of column ``c`` holds its result
  from cycle ``t + R*L + c``;
* column ``c`` is de-skewed by ``C-1-c`` registers, so the whole output row is
  valid in cycle ``t + R*L + C - 1``: :func:`array_latency` is ``R*L + C - 1``.

Rows are accepted one per cycle, so ``m`` rows occupy cycles
``t .. t+m-1`` and the last output row is valid in cycle
``t + m - 1 + array_latency``: counting both ends, :func:`tile_cycles` is
``m + array_latency``.

Weight reload (double buffering): the swap that activates a tile travels
through the array with that tile's first row and reaches the last PE of weight
row ``j`` in cycle ``t + j*L + C - 1``; the shadow weights of row ``j`` may be
rewritten from the next cycle on. Weight rows load in order, one per cycle, so
row ``j`` loads in cycle ``t + C + j*L`` (the wave, not the load rate, is the
bound since ``L >= 1``) and the next tile can be swapped in from cycle
``t + (R-1)*L + C + 1``: :func:`reload_cycles`. Consecutive tiles therefore
start ``max(m, reload_cycles)`` cycles apart (:func:`gemm_cycles`).
"""

import math
import numbers

from .params import FocusParams

__all__ = ["array_latency", "tile_cycles", "reload_cycles", "gemm_cycles", "sic_dot_latency",
           "sic_argmax_cycles", "sic_mean_latency", "sic_vector_cycles",
           "sic_cycles"]


def _count(fn: str, name: str, value) -> int:
    """``value`` as an int >= 1 (numpy integers accepted), else ValueError."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{fn}: {name}={value!r} must be an integer >= 1")
    return int(value)


def array_latency(params: FocusParams) -> int:
    """Cycles from the cycle an activation row is accepted to the cycle its
    output row is valid: ``rows * (mac_pipeline + 1) + cols - 1``."""
    return params.rows * (params.mac_pipeline + 1) + params.cols - 1


def tile_cycles(m: int, params: FocusParams) -> int:
    """Cycles for ``m`` activation rows through one weight tile, from the cycle
    the first row is accepted to the cycle the last output row is valid, both
    counted: ``m + array_latency(params)``."""
    return _count("tile_cycles", "m", m) + array_latency(params)


def reload_cycles(params: FocusParams) -> int:
    """Fewest cycles between the first rows of two consecutive weight tiles
    (the swap wave must pass each weight row before its shadow is rewritten):
    ``(rows - 1) * (mac_pipeline + 1) + cols + 1``."""
    return (params.rows - 1) * (params.mac_pipeline + 1) + params.cols + 1


def gemm_cycles(m: int, k: int, n: int, params: FocusParams) -> int:
    """Cycles of an (m x k) @ (k x n) GEMM tiled over
    ``ceil(k/rows) * ceil(n/cols)`` weight tiles streamed back to back, each
    with the same ``m`` rows, the next tile's weights loading while the
    current one streams (the first tile's weights are loaded beforehand; the
    K-tile partial sums are added outside the array). Counted like
    :func:`tile_cycles`, from the first row of the first tile accepted to the
    last output row valid: ``(tiles - 1) * max(m, reload_cycles) +
    tile_cycles(m)``."""
    m, k, n = (_count("gemm_cycles", name, v) for name, v in (("m", m), ("k", k), ("n", n)))
    tiles = math.ceil(k / params.rows) * math.ceil(n / params.cols)
    return (tiles - 1) * max(m, reload_cycles(params)) + tile_cycles(m, params)


# -- similarity concentrator (SIC) ------------------------------------------------
#
# The SIC (:class:`focus_hw.sic.SIC`) is a sequential datapath: per vector one
# controller walks through its units, each taking a fixed number of cycles
# whatever the data, so a pass of ``n`` vectors takes a closed-form count.
# ``S = vector_size / sic_lanes`` steps per vector, ``P = sic_pipeline``.


def sic_dot_latency(params: FocusParams) -> int:
    """Cycles from a pair accepted by the dot-product unit to its result
    valid: ``S*(P+1)`` lane steps, ``log2(sic_lanes)*P`` through the adder
    tree, one to register the sum and one to present it."""
    p = params.sic_pipeline
    steps = params.vector_size // params.sic_lanes
    return steps * (p + 1) + (params.sic_lanes.bit_length() - 1) * p + 2


def sic_argmax_cycles(params: FocusParams) -> int:
    """Cycles the arg-max unit is busy per candidate (accept, three fp32
    products, pick): ``3*(P+1) + 2``."""
    return 3 * (params.sic_pipeline + 1) + 2


def sic_mean_latency(params: FocusParams) -> int:
    """Cycles from a mean query accepted by the average-update unit to the
    mean valid (sum and count read, reciprocal read, ``S`` steps):
    ``S*(P+1) + 3``; an update keeps it busy as long."""
    return params.vector_size // params.sic_lanes * (params.sic_pipeline + 1) + 3


def sic_vector_cycles(params: FocusParams) -> int:
    """Cycles between two vectors accepted by the SIC within a pass.

    With ``D`` = :func:`sic_dot_latency` and ``K`` candidate offsets: accept
    (1), squared magnitude (``D + 1``), then per candidate a table read (2),
    its dot product (``D + 1``) and the hand-over to the arg-max unit (1);
    candidates follow each other every ``max(D + 4, argmax busy)`` cycles.
    After the last one the decision needs ``2*(P+1) + 3*(P+1) + 2`` more
    (threshold products), then the writes (1): ``2*D + 5*P + 14 + (K-1) *
    max(D + 4, 3*P + 5)``. Without candidates (a 1x1x1 block): ``D + 4``.
    """
    d, p = sic_dot_latency(params), params.sic_pipeline
    k = len(params.block_offsets)
    if k == 0:
        return d + 4
    return 2 * d + 5 * p + 14 + (k - 1) * max(d + 4, sic_argmax_cycles(params))


def sic_cycles(n: int, params: FocusParams) -> int:
    """Cycles of one SIC pass over ``n`` vectors (one M tile's slot), from
    the first vector accepted to the last concentrated vector sent, both
    counted, without backpressure: ``n`` vectors in
    (:func:`sic_vector_cycles` each), the last group sum settling
    (``S*(P+1)``), then per vector a map read (2), a mean query (1) and the
    mean (:func:`sic_mean_latency`):
    ``n * (sic_vector_cycles + sic_mean_latency + 3) + S*(P+1)``. Passes
    follow each other back to back."""
    n = _count("sic_cycles", "n", n)
    settle = params.vector_size // params.sic_lanes * (params.sic_pipeline + 1)
    return n * (sic_vector_cycles(params) + sic_mean_latency(params) + 3) + settle
