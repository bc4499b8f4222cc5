"""Design-space exploration: m_tile, vector size, block shape, scatter
accumulators and array size, speedup against area.

How SIC's sparsity moves with the knobs comes from the paper's own DSE runs
on LLaVA-Video/VideoMME (a documented fit, read at run time): the fraction of
array work that remains, relative to the default point (m_tile 1024, block
2x2x2, vector 32), is ``num_ops`` of ``dse_a_m_tile_size.csv`` (per m_tile),
of ``dse_c_block_size.csv`` (per block) and ``layer_array_ops`` of
``dse_b_vector_size.csv`` (per vector size), interpolated linearly in log2 of
m_tile / vector size (clamped to the measured range); an unmeasured block
shape takes the measured one with the nearest volume. The three factors are
taken as independent. Area = logic (:mod:`sim.tech`) + SRAM buffers
(:mod:`sim.sram`) of the point's ``buffer_bytes``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from focus_hw import FocusParams
from focus_hw.fileio import atomic_write_bytes, atomic_write_text, figure_png

from . import sram
from .model import simulate
from .sparsity import synthetic_counts
from .tech import PaperTech
from .workload import REFERENCE_DIR, Workload

__all__ = ["GRID", "QUICK_GRID", "remaining_factor", "area_mm2", "sweep", "pareto", "plot"]

GRID = {"m_tile": (256, 512, 1024, 2048, 4096), "vector_size": (16, 32, 64),
        "block": ((1, 2, 2), (2, 1, 1), (2, 2, 2), (3, 3, 3)),
        "num_scatter": (1, 2, 3, 4), "array": ((16, 16), (32, 32), (64, 64))}
QUICK_GRID = {"m_tile": (512, 1024, 2048), "vector_size": (32,),
              "block": ((2, 2, 2), (3, 3, 3)), "num_scatter": (1, 2, 4),
              "array": ((32, 32), (64, 64))}


def _sim_csv(name):
    return pd.read_csv(REFERENCE_DIR / "simulator" / name)


def _interp_log2(x, xs, ys):
    order = np.argsort(xs)
    return float(np.interp(np.log2(x), np.log2(np.asarray(xs)[order]), np.asarray(ys)[order]))


def remaining_factor(params: FocusParams) -> float:
    """Array work left at ``params`` relative to the default SIC point."""
    ref = FocusParams()
    a = _sim_csv("dse_a_m_tile_size.csv")
    a = a[a.m_tile_size > 0]
    fa = (_interp_log2(params.m_tile, a.m_tile_size, a.num_ops)
          / _interp_log2(ref.m_tile, a.m_tile_size, a.num_ops))
    b = _sim_csv("dse_b_vector_size.csv")
    frac = b.layer_array_ops / b.layer_dense_ops
    fb = (_interp_log2(params.vector_size, b.vector_size, frac)
          / _interp_log2(ref.vector_size, b.vector_size, frac))
    c = _sim_csv("dse_c_block_size.csv")
    shape = c.block_size.str.split("x", expand=True).astype(int)
    vol = shape.prod(axis=1).to_numpy()
    key = "x".join(map(str, params.block))
    ref_ops = float(c[c.block_size == "x".join(map(str, ref.block))].num_ops.iloc[0])
    hit = c[c.block_size == key]
    if hit.empty:
        hit = c.iloc[[int(np.argmin(np.abs(vol - np.prod(params.block))))]]
    fc = float(hit.num_ops.iloc[0]) / ref_ops
    return fa * fb * fc


def area_mm2(params: FocusParams, machine: str = "focus", tech=None) -> float:
    """Logic + SRAM area of a design point."""
    tech = tech or PaperTech()
    bufs = params.buffer_bytes if machine.startswith("focus") else {
        k: params.buffer_bytes[k] for k in ("input", "weight", "output")}
    return tech.logic_area_mm2(machine, params) + sum(sram.buffer(b).area_mm2
                                                      for b in bufs.values())


def _points(base: FocusParams, grid: dict):
    for mt, vs, blk, ns, (r, c) in itertools.product(
            grid["m_tile"], grid["vector_size"], grid["block"], grid["num_scatter"],
            grid["array"]):
        yield base.replace(m_tile=mt, vector_size=vs, block_frames=blk[0],
                           block_height=blk[1], block_width=blk[2], num_scatter=ns,
                           rows=r, cols=c)


def sweep(workload: Workload, base: FocusParams, target: float, grid: dict = GRID,
          progress=None) -> pd.DataFrame:
    """Simulate Focus on every grid point; ``target``: SIC sparsity at the
    default SIC point (scaled per point by :func:`remaining_factor`)."""
    ref_time = simulate(workload, base, "focus", target).totals.time_s
    dense_time = simulate(workload, base, "dense").totals.time_s
    rows, counts = [], {}
    for p in _points(base, grid):
        s = float(np.clip(1 - (1 - target) * remaining_factor(p), 0.0, 0.99))
        key = (p.m_tile, p.vector_size, s)  # counts do not depend on the array
        if key not in counts:
            counts[key] = synthetic_counts(workload, p, s)
        t = simulate(workload, p, "focus", counts[key], compare=False).totals
        rows.append({"m_tile": p.m_tile, "vector_size": p.vector_size,
                     "block": "x".join(map(str, p.block)), "num_scatter": p.num_scatter,
                     "rows": p.rows, "cols": p.cols, "sparsity": s,
                     "time_s": t.time_s, "energy_mj": t.energy_mj,
                     "stall_cycles": t.stall_cycles, "area_mm2": area_mm2(p),
                     "speedup_vs_dense": dense_time / t.time_s,
                     "speedup_vs_paper": ref_time / t.time_s})
        if progress:
            progress.update(1)
    df = pd.DataFrame(rows)
    df["pareto"] = pareto(df)
    return df


def pareto(df: pd.DataFrame) -> np.ndarray:
    """Points no other point beats on both area (lower) and speedup (higher)."""
    a, s = df.area_mm2.to_numpy(), df.speedup_vs_dense.to_numpy()
    return np.array([not np.any((a <= a[i]) & (s >= s[i]) & ((a < a[i]) | (s > s[i])))
                     for i in range(len(df))], bool)


def plot(df: pd.DataFrame, paper_area: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter(df.area_mm2, df.speedup_vs_dense, s=10, alpha=0.4, label="design points")
    front = df[df.pareto].sort_values("area_mm2")
    ax.plot(front.area_mm2, front.speedup_vs_dense, "r-o", ms=4, label="Pareto front")
    ax.axvline(paper_area, color="k", ls="--", lw=1, label="paper configuration area")
    ax.set_xscale("log")
    ax.set_xlabel("area (mm^2, logic + SRAM)")
    ax.set_ylabel("speedup over dense (paper array)")
    ax.legend()
    fig.tight_layout()
    atomic_write_bytes(path, figure_png(fig))


def write(df: pd.DataFrame, paper_area: float, out: Path) -> pd.Series:
    """Write sweep.csv and sweep.png; return the best point within the paper's area."""
    atomic_write_text(out / "sweep.csv", df.to_csv(index=False))
    plot(df, paper_area, out / "sweep.png")
    fit = df[df.area_mm2 <= paper_area * (1 + 1e-9)]
    return fit.loc[fit.speedup_vs_paper.idxmax()]
