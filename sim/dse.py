"""Design-space exploration: m_tile, vector size (which sets the array, since
the integrated accelerator needs rows == cols == vector_size), block shape,
scatter lanes, output-tile width, SIC lanes and partial-sum numerics: speedup
and energy against area.

How SIC's sparsity moves with the knobs comes from the paper's own DSE runs
on LLaVA-Video/VideoMME (a documented fit, read at run time): the fraction of
array work that remains, relative to the default point (m_tile 1024, block
2x2x2, vector 32), is ``num_ops`` of ``dse_a_m_tile_size.csv`` (per m_tile),
of ``dse_c_block_size.csv`` (per block) and ``layer_array_ops`` of
``dse_b_vector_size.csv`` (per vector size), interpolated linearly in log2 of
m_tile / vector size (clamped to the measured range); an unmeasured block
shape takes the measured one with the nearest volume. The three factors are
taken as independent. Area = logic + SRAM buffers (:mod:`sim.sram`) of the
point's ``buffer_bytes``; logic area and power come from our own synthesis,
through :mod:`sim.area_model` (each unit fitted to whole-accelerator Yosys
runs) priced by :meth:`sim.tech.YosysTech.from_breakdown`.

:func:`sweep` runs the points on any :class:`concurrent.futures.Executor`
(:mod:`focus_hw.executors`: a process pool or a dask cluster) and, given an
``out`` folder, appends each finished point as one whole, fsynced line to
``sweep.points.jsonl``: a rerun after a crash computes only the points
missing there (a torn last line is dropped).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import itertools
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from focus_hw import FocusParams
from focus_hw.fileio import atomic_write_bytes, atomic_write_text, figure_png

from . import area_model, sram
from .model import simulate
from .sparsity import synthetic_counts
from .tech import YosysTech
from .workload import REFERENCE_DIR, Workload

__all__ = [
    "GRID",
    "QUICK_GRID",
    "JOURNAL",
    "remaining_factor",
    "area_mm2",
    "yosys_tech",
    "sweep",
    "pareto",
    "plot",
]

GRID = {
    "m_tile": (256, 512, 1024, 2048),
    "vector_size": (16, 32, 64),
    "block": ((1, 2, 2), (2, 2, 2), (3, 3, 3)),
    "num_scatter": (2, 3, 4),
    "out_vectors": (1, 3),
    "sic_lanes": (8, 16),
    "acc_format": ("wide", "operand"),
}
QUICK_GRID = {
    "m_tile": (512, 1024, 2048),
    "vector_size": (32,),
    "block": ((2, 2, 2),),
    "num_scatter": (2, 3, 4),
    "out_vectors": (3,),
    "sic_lanes": (8, 16),
    "acc_format": ("wide", "operand"),
}
JOURNAL = "sweep.points.jsonl"
#: What a journaled row holds (part of each point's key: a journal written
#: before a column was added is not resumed).
_ROW = 2


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
    fa = _interp_log2(params.m_tile, a.m_tile_size, a.num_ops) / _interp_log2(
        ref.m_tile, a.m_tile_size, a.num_ops
    )
    b = _sim_csv("dse_b_vector_size.csv")
    frac = b.layer_array_ops / b.layer_dense_ops
    fb = _interp_log2(params.vector_size, b.vector_size, frac) / _interp_log2(
        ref.vector_size, b.vector_size, frac
    )
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


def yosys_tech(params: FocusParams) -> YosysTech:
    """Logic area and power of the accelerator at ``params``, from the
    per-unit area model fitted to our synthesis (:mod:`sim.area_model`)."""
    return YosysTech.from_breakdown(area_model.breakdown(params))


def area_mm2(params: FocusParams, machine: str = "focus", tech=None) -> float:
    """Logic (``tech``, default :func:`yosys_tech`) + SRAM area of a design point."""
    tech = tech or yosys_tech(params)
    bufs = (
        params.buffer_bytes
        if machine.startswith("focus")
        else {k: params.buffer_bytes[k] for k in ("input", "weight", "output")}
    )
    return tech.logic_area_mm2(machine, params) + sum(
        sram.buffer(b).area_mm2 for b in bufs.values()
    )


def _points(base: FocusParams, grid: dict):
    names = list(grid)
    for values in itertools.product(*grid.values()):
        point = dict(zip(names, values))
        f, h, w = point.pop("block")
        vs = point["vector_size"]
        yield base.replace(**point, rows=vs, cols=vs, block_frames=f, block_height=h, block_width=w)


_COUNTS: dict = {}  # per process: SIC tile counts shared by the points of one worker


def _counts(workload: Workload, p: FocusParams, s: float):
    key = (workload, p.m_tile, p.vector_size, s)  # counts do not depend on the array
    if key not in _COUNTS:
        if len(_COUNTS) >= 8:
            _COUNTS.clear()
        _COUNTS[key] = synthetic_counts(workload, p, s)
    return _COUNTS[key]


def _point_row(
    workload: Workload, p: FocusParams, target: float, dense_time: float, ref_time: float
) -> dict:
    """One row of the sweep table (runs in a worker)."""
    s = float(np.clip(1 - (1 - target) * remaining_factor(p), 0.0, 0.99))
    tech = yosys_tech(p)
    t = simulate(workload, p, "focus", _counts(workload, p, s), tech=tech, compare=False).totals
    return {
        "m_tile": p.m_tile,
        "vector_size": p.vector_size,
        "block": "x".join(map(str, p.block)),
        "num_scatter": p.num_scatter,
        "out_vectors": p.out_vectors,
        "sic_lanes": p.sic_lanes,
        "acc_format": p.acc_format,
        "rows": p.rows,
        "cols": p.cols,
        "sparsity": s,
        "time_s": float(t.time_s),
        "energy_mj": float(t.energy_mj),
        "stall_cycles": float(t.stall_cycles),
        "area_mm2": float(area_mm2(p, tech=tech)),
        "speedup_vs_dense": float(dense_time / t.time_s),
        "speedup_vs_paper": float(ref_time / t.time_s),
        # its MACs on an array busy every cycle: no stall, fill or DRAM wait
        "ideal_vs_paper": float(ref_time * p.clock_hz * p.rows * p.cols / t.macs),
    }


def _point_key(workload: Workload, p: FocusParams, target: float) -> str:
    ident = json.dumps([dataclasses.asdict(workload), repr(target), p.digest(), _ROW])
    return hashlib.sha256(ident.encode()).hexdigest()[:20]


def _read_journal(path: Path) -> dict[str, dict]:
    """Finished rows by point key; cuts a torn last line off the file."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    if len(whole) < len(data):
        os.truncate(path, len(whole))
    rows = {}
    for n, line in enumerate(whole.splitlines(), 1):
        try:
            entry = json.loads(line)
            rows[entry["key"]] = entry["row"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"{path}: line {n} is damaged; delete the file to start over"
            ) from None
    return rows


def _append(fd: int, key: str, row: dict) -> None:
    """One whole line per point, in one write, on disk before the next."""
    os.write(fd, (json.dumps({"key": key, "row": row}) + "\n").encode())
    os.fsync(fd)


def sweep(
    workload: Workload,
    base: FocusParams,
    target: float,
    grid: dict = GRID,
    progress=None,
    executor: cf.Executor | None = None,
    out=None,
) -> pd.DataFrame:
    """Simulate Focus on every grid point; ``target``: SIC sparsity at the
    default SIC point (scaled per point by :func:`remaining_factor`).
    ``executor`` runs the points (default: here, in order); with ``out``,
    points already in its journal are not computed again. ``df.attrs``
    holds ``computed`` and ``resumed`` (point counts)."""
    ref_time = simulate(workload, base, "focus", target).totals.time_s
    dense_time = simulate(workload, base, "dense").totals.time_s
    points = list(_points(base, grid))
    keys = [_point_key(workload, p, target) for p in points]
    done: dict[str, dict] = {}
    fd = None
    if out is not None:
        journal = Path(out) / JOURNAL
        journal.parent.mkdir(parents=True, exist_ok=True)
        found = _read_journal(journal)
        done = {k: found[k] for k in keys if k in found}
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    resumed = len(done)
    if progress:
        progress.update(resumed)
    todo = [(k, p) for k, p in zip(keys, points) if k not in done]

    def finish(key, row):
        done[key] = json.loads(json.dumps(row))  # as a resumed row reads back
        if fd is not None:
            _append(fd, key, row)
        if progress:
            progress.update(1)

    try:
        if executor is None:
            for key, p in todo:
                finish(key, _point_row(workload, p, target, dense_time, ref_time))
        else:
            futures = {
                executor.submit(_point_row, workload, p, target, dense_time, ref_time): k
                for k, p in todo
            }
            for future in cf.as_completed(futures):
                finish(futures[future], future.result())
    finally:
        if fd is not None:
            os.close(fd)
    df = pd.DataFrame([done[k] for k in keys])
    df["pareto"] = pareto(df)
    df["energy_pareto"] = pareto(df, "energy_mj", higher=False)
    df.attrs.update(computed=len(todo), resumed=resumed)
    return df


def pareto(df: pd.DataFrame, column: str = "speedup_vs_dense", higher: bool = True) -> np.ndarray:
    """Points no other point beats on both area (lower) and ``column``
    (higher, or lower with ``higher=False``)."""
    a, s = df.area_mm2.to_numpy(), df[column].to_numpy() * (1 if higher else -1)
    return np.array(
        [not np.any((a <= a[i]) & (s >= s[i]) & ((a < a[i]) | (s > s[i]))) for i in range(len(df))],
        bool,
    )


def plot(df: pd.DataFrame, paper_area: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, column, front, label in (
        (axes[0], "speedup_vs_dense", "pareto", "speedup over dense (paper array)"),
        (axes[1], "energy_mj", "energy_pareto", "energy (mJ)"),
    ):
        ax.scatter(df.area_mm2, df[column], s=10, alpha=0.4, label="design points")
        edge = df[df[front]].sort_values("area_mm2")
        ax.plot(edge.area_mm2, edge[column], "r-o", ms=4, label="Pareto front")
        ax.axvline(paper_area, color="k", ls="--", lw=1, label="paper configuration area")
        ax.set_xscale("log")
        ax.set_xlabel("area (mm^2, logic + SRAM)")
        ax.set_ylabel(label)
    axes[1].set_yscale("log")
    axes[0].legend(loc="upper left")
    fig.tight_layout()
    atomic_write_bytes(path, figure_png(fig))


def write(df: pd.DataFrame, paper_area: float, out: Path) -> tuple[pd.Series, float]:
    """Write sweep.csv and sweep.png. Return the best point within the
    paper's area, and the bound no point within it can pass: the most
    ``ideal_vs_paper`` (each point's MACs on an array busy every cycle)."""
    atomic_write_text(out / "sweep.csv", df.to_csv(index=False))
    plot(df, paper_area, out / "sweep.png")
    fit = df[df.area_mm2 <= paper_area * (1 + 1e-9)]
    return fit.loc[fit.speedup_vs_paper.idxmax()], float(fit.ideal_vs_paper.max())
