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

__all__ = ["GemmCounts", "focus_gemm", "tile_counters", "access_bytes", "ACCESSES"]


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


def access_bytes(params: FocusParams) -> dict[str, int]:
    """Bytes one access of each buffer of :attr:`FocusParams.buffer_bytes`
    moves, as its counter counts them: an input row, a weight row, a
    partial-sum or output row, a similarity-table vector, a similarity-map
    index, a kept scatter-map beat."""
    p = params
    sizes = {
        "input": p.rows * p.operand_bytes,
        "weight": p.cols * p.operand_bytes,
        "concentrate_out": p.cols * p.acc_bytes,
        "output": p.cols * p.acc_bytes,
        "similarity_table": p.vector_size * p.operand_bytes,
        "similarity_map": p.buffer_bytes["similarity_map"] // p.m_tile,
    }
    if p.out_vectors > 1:
        sizes["scatter_map"] = p.buffer_bytes["scatter_map"] // -(-p.m_tile // p.num_scatter)
    return sizes


#: Buffer and direction of each access counter.
ACCESSES = {
    "input_reads": ("input", "read"),
    "input_writes": ("input", "write"),
    "weight_writes": ("weight", "write"),
    "concentrate_out_reads": ("concentrate_out", "read"),
    "concentrate_out_writes": ("concentrate_out", "write"),
    "output_reads": ("output", "read"),
    "output_writes": ("output", "write"),
    "similarity_table_reads": ("similarity_table", "read"),
    "similarity_table_writes": ("similarity_table", "write"),
    "similarity_map_reads": ("similarity_map", "read"),
    "similarity_map_writes": ("similarity_map", "write"),
    "scatter_map_reads": ("scatter_map", "read"),
    "scatter_map_writes": ("scatter_map", "write"),
}


def tile_counters(
    m, rows, busy, nonzero, later, chunks, n_tiles, params: FocusParams, *, bypass: bool = False
) -> dict:
    """What M tiles add to each counter of a run (arrays, elementwise; a
    tile with ``m = 0`` adds nothing), and to the DRAM bytes: ``dram_inputs``
    (unique vectors, similarity map, positions), ``dram_weights`` and
    ``dram_out`` (the output's map written back, or with ``bypass`` every
    output row; the unique vectors the output's SIC writes back are the
    consumer's count). Per tile: ``m`` tokens, ``rows`` unique vectors over
    its ``chunks`` K chunks, ``busy`` chunks with one, ``nonzero`` (token,
    chunk) pairs whose vector is not all zero, ``later`` of them in chunks
    after the first (scatter updates that read the row they add to);
    ``n_tiles`` output sub-tiles; ``bypass``: the output bypasses the SIC."""
    from focus_hw.accelerator import dram_bytes  # Amaranth: on first use

    p = params
    m, nt = np.asarray(m, np.int64), np.asarray(n_tiles, np.int64)
    groups = -(-nt // p.out_vectors)
    passes = 0 * m if bypass else m * nt  # vectors through the output SIC
    beats = -(-m // p.num_scatter) * chunks  # map beats per sub-tile
    kept = beats * groups if p.out_vectors > 1 else 0 * beats
    one, two = sic_busy_cycles(1, p), sic_busy_cycles(2, p)  # affine in m
    size = dram_bytes(p)
    return {
        "compute_cycles": rows * nt,
        "scatter_cycles": beats * nt,
        "sic_cycles": np.where(passes > 0, one + (m - 1) * (two - one), 0) * nt,
        "input_reads": rows * nt,
        "input_writes": rows * groups,
        "weight_writes": busy * nt * p.rows,
        "concentrate_out_reads": nonzero * nt,
        "concentrate_out_writes": rows * nt,
        "output_reads": (later + m) * nt,
        "output_writes": (later + m) * nt,
        "similarity_table_reads": passes * len(p.block_offsets),
        "similarity_table_writes": passes,
        "similarity_map_reads": passes,
        "similarity_map_writes": passes,
        "scatter_map_reads": beats * nt - kept if p.out_vectors > 1 else 0 * beats,
        "scatter_map_writes": kept,
        "dram_inputs": rows * groups * size["vectors"]
        + m * groups * chunks * size["map"]
        + passes * size["positions"],
        "dram_weights": busy * nt * p.rows * size["weights"],
        "dram_out": m * nt * size["vectors"] if bypass else passes * size["map"],
    }


def focus_gemm(counts: GemmCounts, params: FocusParams) -> dict[str, int]:
    """Cycles (``cycles``) and the counters of
    :data:`focus_hw.accelerator.STAT_NAMES` plus ``dram_read_bytes`` /
    ``dram_write_bytes`` of one run, without backpressure: the schedule and
    the sums of :func:`tile_counters` over the M tiles."""
    from focus_hw.accelerator import STAT_NAMES, check_accelerator, dram_bytes

    p = check_accelerator(params)
    m = np.array(counts.tokens, np.int64)
    u, nz, nt = counts.unique, counts.nonzero, counts.n_tiles
    schedule = focus_schedule_arrays(m, u, nt, p, bypass=counts.bypass)
    rows, busy, chunks = u.sum(axis=1), (u > 0).sum(axis=1), u.shape[1]
    per = tile_counters(
        m, rows, busy, nz.sum(axis=1), nz[:, 1:].sum(axis=1), chunks, nt, p, bypass=counts.bypass
    )
    stats = {"cycles": int(schedule["cycles"]), "stall_cycles": schedule["stall_cycles"]}
    stats.update({name: int(np.sum(per[name])) for name in STAT_NAMES if name not in stats})
    stats["dram_read_bytes"] = int(np.sum(per["dram_inputs"]) + np.sum(per["dram_weights"]))
    stats["dram_write_bytes"] = int(
        np.sum(per["dram_out"]) + counts.out_unique * dram_bytes(p)["vectors"]
    )
    return stats
