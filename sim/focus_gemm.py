"""Exact model of one GEMM on the integrated accelerator.

:func:`focus_gemm` predicts, from counts alone, every figure that
:func:`focus_hw.simulate_focus_gemm` measures on the RTL without
backpressure: the cycles and the feeder stall (from
:func:`focus_hw.timing.focus_schedule`), the compute, scatter and SIC
cycles (per pass :func:`focus_hw.timing.sic_busy_cycles`: its vectors
taken, first to last, and its output phase active; passes overlap, so this
may exceed the run's cycles), each buffer's reads and writes, and the DRAM bytes read and written
(item sizes from :func:`focus_hw.accelerator.dram_bytes`), of a run through
the output SIC or bypassing it. The tests assert equality on random and
planted inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from focus_hw.params import FocusParams
from focus_hw.timing import focus_schedule_arrays, sic_busy_cycles

__all__ = ["GemmCounts", "focus_gemm"]


@dataclass(frozen=True)
class GemmCounts:
    """What a GEMM's cost depends on: per M tile (rows) and K chunk
    (columns) the ``unique`` vectors and the ``nonzero`` tokens (vector not
    all zero) among the tile's ``tokens``; ``n_tiles`` output column tiles;
    ``out_unique`` unique vectors the output's SIC writes back; ``bypass``:
    the output bypasses the SIC (written back whole, ``out_unique`` 0)."""

    tokens: tuple[int, ...]
    unique: np.ndarray
    nonzero: np.ndarray
    n_tiles: int
    out_unique: int
    bypass: bool = False

    def __post_init__(self):
        shape = (len(self.tokens), self.unique.shape[1] if self.unique.ndim == 2 else -1)
        if self.unique.ndim != 2 or self.nonzero.shape != self.unique.shape or shape[1] < 1:
            raise ValueError("GemmCounts: unique and nonzero must be (M tiles, K chunks) arrays")
        if self.unique.shape[0] != len(self.tokens) or min(self.tokens, default=0) < 1:
            raise ValueError("GemmCounts: one token count >= 1 per M tile")
        m = np.array(self.tokens)[:, None]
        u, nz = self.unique, self.nonzero
        if np.any(u < 0) or np.any(u > nz) or np.any(nz > m):
            raise ValueError("GemmCounts: need 0 <= unique <= nonzero <= tokens")
        if self.n_tiles < 1 or self.out_unique < 0:
            raise ValueError("GemmCounts: n_tiles >= 1 and out_unique >= 0")
        if self.bypass and self.out_unique:
            raise ValueError("GemmCounts: a bypass run has no output SIC (out_unique must be 0)")

    @classmethod
    def from_sic(
        cls, zero, root, n: int, out_unique: int, params: FocusParams, *, bypass: bool = False
    ) -> GemmCounts:
        """Counts of an input whose SIC gave ``zero`` / ``root`` (T, chunks),
        for ``N = n`` output columns (``bypass``: of a run that bypasses the
        output SIC); M tiles hold ``m_tile`` surviving (not all-zero) tokens."""
        zero, root = np.asarray(zero, bool), np.asarray(root)
        alive = np.flatnonzero(~zero.all(axis=1))
        tokens, unique, nonzero = [], [], []
        for start in range(0, len(alive), params.m_tile):
            tile = alive[start : start + params.m_tile]
            live = ~zero[tile]
            tokens.append(len(tile))
            unique.append((live & (root[tile] == tile[:, None])).sum(axis=0))
            nonzero.append(live.sum(axis=0))
        return cls(
            tuple(tokens),
            np.array(unique, np.int64),
            np.array(nonzero, np.int64),
            -(-n // params.cols),
            int(out_unique),
            bypass,
        )


def focus_gemm(counts: GemmCounts, params: FocusParams) -> dict[str, int]:
    """Cycles (``cycles``) and the counters of
    :data:`focus_hw.accelerator.STAT_NAMES` plus ``dram_read_bytes`` /
    ``dram_write_bytes`` of one run, without backpressure."""
    from focus_hw.accelerator import check_accelerator, dram_bytes  # Amaranth: on first use

    p = check_accelerator(params)
    m = np.array(counts.tokens, np.int64)
    u, nz, nt = counts.unique, counts.nonzero, counts.n_tiles
    chunks = u.shape[1]
    groups = -(-nt // p.out_vectors)
    schedule = focus_schedule_arrays(m, u, nt, p, bypass=counts.bypass)
    size = dram_bytes(p)
    rows = int(u.sum()) * nt  # rows through the array: every sub-tile's
    loaded = int(u.sum()) * groups  # unique vectors read: once per group
    later = int(nz[:, 1:].sum())  # updates that read the row they add to
    rows_out = int(m.sum()) * nt  # output rows, through the SIC unless bypassed
    passes = 0 if counts.bypass else rows_out  # vectors through the output SIC
    busy_chunks = int((u > 0).sum()) * nt
    beats = int((-(-m // p.num_scatter)).sum()) * chunks  # map beats per sub-tile
    kept = beats * groups if p.out_vectors > 1 else 0
    stats = {
        "cycles": int(schedule["cycles"]),
        "compute_cycles": rows,
        "scatter_cycles": beats * nt,
        "stall_cycles": schedule["stall_cycles"],
        "sic_cycles": sum(sic_busy_cycles(int(mi), p) for mi in m) * nt if passes else 0,
        "input_reads": rows,
        "input_writes": loaded,
        "weight_writes": busy_chunks * p.rows,
        "concentrate_out_reads": int(nz.sum()) * nt,
        "concentrate_out_writes": rows,
        "output_reads": (later + int(m.sum())) * nt,
        "output_writes": (int(m.sum()) + later) * nt,
        "similarity_table_reads": passes * len(p.block_offsets),
        "similarity_table_writes": passes,
        "similarity_map_reads": passes,
        "similarity_map_writes": passes,
        "scatter_map_reads": beats * nt - kept if kept else 0,
        "scatter_map_writes": kept,
    }
    stats["dram_read_bytes"] = (
        busy_chunks * p.rows * size["weights"]
        + loaded * size["vectors"]
        + int(m.sum()) * groups * chunks * size["map"]
        + passes * size["positions"]
    )
    if counts.bypass:  # every row written back as it is
        stats["dram_write_bytes"] = rows_out * size["vectors"]
    else:
        stats["dram_write_bytes"] = passes * size["map"] + counts.out_unique * size["vectors"]
    return stats
