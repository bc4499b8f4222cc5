"""Closed-form timing of the generated systolic array.

This is the single statement of how many cycles the RTL takes; the
performance model (``sim``) imports it and the RTL tests assert that
``focus_hw.simulate_gemm`` measures exactly this.
"""

from .params import FocusParams

__all__ = ["array_latency", "tile_cycles"]


def array_latency(params: FocusParams) -> int:
    """Cycles from accepting one activation row to its output row being valid,
    minus one: the fill/drain overhead of one weight tile."""
    return params.rows * (params.mac_pipeline + 1) + params.cols - 1


def tile_cycles(m: int, params: FocusParams) -> int:
    """Cycles for ``m`` activation rows through one weight tile, counted from
    the first input accepted to the last output valid, without backpressure."""
    if m < 1:
        raise ValueError(f"tile_cycles: m={m} must be >= 1")
    return m + array_latency(params)
