"""Tile-level analytic model of a weight-stationary accelerator running the
decoder GEMMs of a :class:`~sim.workload.Workload`.

Per layer and GEMM (q, k, v, QK^T, SV, o, gate, up, down), per M tile of
``m_tile`` surviving tokens and per K chunk of ``rows``:

* **compute**: ``ceil(N/cols)`` weight tiles per chunk, each streaming the
  chunk's rows through the array. Weight tiles stream back to back (the
  next tile's weights load while the current one streams, as the RTL does):
  a tile of ``m`` rows occupies ``max(m, reload_cycles)`` cycles and the
  last tile of each (layer, GEMM) stream ``tile_cycles(m)`` --
  :func:`stream_cycles`, built on ``focus_hw.timing`` (a chunk with no row
  costs nothing). Focus streams only the unique
  vectors of the chunk; CMC/AdapTiV stream the tokens left after their
  token-level merging; dense streams every token.
* **scatter** (Focus): the accumulators add each unique partial sum into the
  rows of its group: ``nonzero x ceil(K/vector) x ceil(N/cols) / num_scatter``
  per tile.
* **SIC** (Focus): the produced output tile is concentrated, one pass of
  ``nonzero`` vectors per vector slot of its ``N`` features, the passes
  overlapped back to back (``focus_hw.timing.sic_run_cycles``); QK^T's
  scores go to softmax whole, past the SIC.
* **stall** (Focus): each GEMM's time is the integrated accelerator's
  cycle-exact schedule (:func:`focus_hw.timing.focus_schedule`, equal to
  the RTL) on the tiles' counts, and stall = that time - compute, per M
  tile. The projection GEMMs (q, k, v, o, gate, up, down) are one run per
  layer. QK^T bypasses the output SIC, one run per KV head and M tile: its
  M tiles are the query heads that share the keys, each with the tile's
  queries (K = ``head_dim``), its N the tile's causal keys. S x V is one
  run per KV head and M tile too (its causal keys are its K, its M tiles
  the query heads that share the V, every probability row unique,
  ``head_dim`` columns). The drain (QK^T) or the SIC passes (S x V) that
  end each run are not hidden. ``sic_stall_cycles`` is the part of the
  stall beyond the scatter's own excess over compute (max(0, scatter -
  compute) per M tile).
* **DRAM**: compressed input activations (+ similarity-map indices), fetched
  once per output tile: the output buffer holds ``m_tile`` rows of
  accumulators for :func:`_out_cols` (= ``out_vectors x cols``) columns, so an M tile
  produces its ``N`` outputs in ``ceil(N / out_cols)`` tiles, each streaming
  every K chunk of the input again (for attention: the query per key tile,
  the probabilities per ``head_dim`` tile); weights once per M tile, the K/V
  of the tile's causal key range once per query head (the weight buffer
  holds one tile, so a KV head's keys are not kept across its query group);
  outputs compressed by the consumer GEMM's SIC (CMC compresses off chip:
  it writes the dense output, reads it back and writes the merged one).
  A tile takes max(compute + stall, DRAM bytes / bytes per cycle) cycles.
* **SRAM**: reads/writes per buffer of ``params.buffer_bytes``: input
  (every DRAM fill, streamed once per weight tile), weight, output (per-chunk
  read-modify-write, or the scatter's), concentrate_out (unique partial
  sums), layouter / similarity table (block-window reads) / similarity map
  (SIC on each produced tile); energy per byte from :mod:`sim.sram`, plus
  leakage of every buffer the machine has over the run time (the SEC
  importance buffer's few bytes per token are not counted as traffic).
* **energy** = DRAM bytes x ``dram_pj_per_byte`` + SRAM + core power x time.

Attention is causal: the M tile ending at surviving token e sees e keys
(the per-GEMM rows list T as QK^T's N and S x V's K).
QK^T streams the query (site "query", per head: ``head_dim/rows`` chunks);
S x V streams the attention probabilities, which Focus does not concentrate
(only SEC shrinks them); CMC merges them with its attention-score sparsity.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from focus_hw import FocusParams
from focus_hw.timing import (
    focus_schedule_arrays,
    focus_schedule_runs,
    reload_cycles,
    sic_cycles,
    sic_mean_cycles,
    sic_output_cycles,
    sic_vector_cycles,
    tile_cycles,
)

from . import sram
from .sparsity import (
    SparsityError,
    TileCounts,
    counts_from_trace,
    dense_counts,
    synthetic_counts,
    token_counts,
)
from .tech import MACHINES, PaperTech
from .workload import Workload

__all__ = ["MACHINES", "Result", "simulate", "resolve_counts", "stream_cycles", "MachineError"]

_PAPER = PaperTech()


class MachineError(ValueError):
    """An unknown machine or a sparsity input the machine cannot use."""


@dataclass
class Result:
    """One simulation: per (layer, GEMM) rows and the run's totals."""

    workload: Workload
    machine: str
    params: FocusParams
    gemms: pd.DataFrame
    totals: pd.Series

    def summary(self) -> str:
        t = self.totals
        return (
            f"{self.workload.name} on {self.machine}: {t.time_s:.4g} s "
            f"({t.cycles:.4g} cycles, stall {t.stall_cycles:.3g}), "
            f"{t.energy_mj:.4g} mJ (DRAM {t.dram_mj:.3g}, SRAM {t.sram_mj:.3g}, "
            f"core {t.core_mj:.3g}), DRAM {t.dram_bytes / 1e9:.4g} GB, "
            f"utilization {t.utilization:.1%}, speedup over dense "
            f"{t.speedup:.3g}x, energy reduction {t.energy_reduction:.3g}x"
        )


def resolve_counts(
    workload: Workload, params: FocusParams, machine: str, sparsity=None
) -> TileCounts:
    """Per-tile counts for ``machine`` from a sparsity input:

    * dense: ``None``; focus_sec: ``None`` (SEC keep schedule of ``params``);
    * focus: a ``SparseTrace``, ready :class:`TileCounts`, or a target SIC
      sparsity (float or per-site dict) for the synthetic trace generator;
    * cmc / adaptiv: a float or per-site dict (token-level merging).
    """
    if machine not in MACHINES:
        raise MachineError(f"unknown machine {machine!r}; know {', '.join(MACHINES)}")
    if machine in ("dense", "focus_sec"):
        if sparsity is not None:
            raise MachineError(
                f"machine {machine!r} takes no sparsity input (got {type(sparsity).__name__})"
            )
        return dense_counts(workload, params, params if machine == "focus_sec" else None)
    if sparsity is None:
        raise MachineError(f"machine {machine!r} needs a sparsity input")
    if machine in ("cmc", "adaptiv"):
        if not isinstance(sparsity, (int, float, dict)):
            raise MachineError(
                f"machine {machine!r} takes a float or per-site dict, not {type(sparsity).__name__}"
            )
        return token_counts(workload, params, sparsity)
    if isinstance(sparsity, TileCounts):
        if (sparsity.m_tile, sparsity.vector_size) != (params.m_tile, params.vector_size):
            raise SparsityError("TileCounts were made for another m_tile/vector_size")
        return sparsity
    if isinstance(sparsity, (int, float, dict)):
        return synthetic_counts(workload, params, sparsity)
    if hasattr(sparsity, "sites") and hasattr(sparsity, "meta"):
        return counts_from_trace(sparsity, workload, params)
    raise MachineError(f"focus cannot use a sparsity input of type {type(sparsity).__name__}")


def stream_cycles(ms, params: FocusParams) -> int:
    """Cycles of weight tiles streamed back to back with ``ms[i]`` activation
    rows each (tiles with 0 rows are skipped): tile i+1 starts
    ``max(ms[i], reload_cycles)`` after tile i, the last one takes
    ``tile_cycles``. One tile: ``tile_cycles(m)``."""
    ms = [int(m) for m in ms if m > 0]
    if not ms:
        return 0
    step = reload_cycles(params)
    return sum(max(m, step) for m in ms[:-1]) + tile_cycles(ms[-1], params)


@functools.cache
def _sic_luts(params: FocusParams) -> tuple[np.ndarray, np.ndarray]:
    """For n = 0..m_tile vectors a pass (0 -> 0): ``B`` = one pass on its
    own (:func:`~focus_hw.timing.sic_cycles`) and ``X = max(n*V, O(n))``,
    the input phase or the output phase
    (:func:`~focus_hw.timing.sic_output_cycles`); all affine in n."""
    n = np.arange(params.m_tile + 1, dtype=np.int64)
    first = sic_cycles(1, params)
    whole = first + (n - 1) * (sic_cycles(2, params) - first)
    out = sic_output_cycles(1, params) + (n - 1) * sic_mean_cycles(params)
    phase = np.maximum(n * sic_vector_cycles(params), out)
    return np.where(n > 0, whole, 0), np.where(n > 0, phase, 0)


def _sic_passes(n: np.ndarray, c: np.ndarray, params: FocusParams) -> np.ndarray:
    """SIC cycles of ``c`` passes of ``n`` vectors back to back (arrays;
    0 where either is 0): :func:`~focus_hw.timing.sic_run_cycles` of
    ``[n] * c`` in closed form. Unrolled, that recurrence makes the last
    output of pass ``c - 1`` (plus one) the heaviest way to split ``c + 1``
    steps into parts, the last of at least two: a part of one step weighs
    ``n*V`` (the input period), a part of ``j >= 2`` steps ``B + (j-2)*O``
    (a bank reused: one pass whole, then ``j - 2`` output phases). With
    ``X = max(n*V, O)`` and ``p`` parts of two or more the best is ``(c+1)*X
    + p*(B - 2X)``: as many parts as fit, ``p = (c+1) // 2``, if ``B >=
    2X``, else one."""
    whole, phase = (lut[n] for lut in _sic_luts(params))
    parts = np.where(whole >= 2 * phase, (c + 1) // 2, 1)
    return np.where(c > 0, (c + 1) * phase + (whole - 2 * phase) * parts, 0)


@functools.cache
def _luts(params: FocusParams, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For m = 0..n rows (0 rows -> 0 cycles): the cycles a weight tile adds
    when another tile follows it in the stream, ``max(m, reload_cycles)``,
    and when it is the last: ``tile_cycles(m)``."""
    full = np.array([0] + [tile_cycles(m, params) for m in range(1, n + 1)], np.int64)
    step = reload_cycles(params)
    return np.array([0] + [max(m, step) for m in range(1, n + 1)], np.int64), full


def _last_nonzero(u2d: np.ndarray) -> np.ndarray:
    """Per row of (L, X): the last non-zero entry (0 if none)."""
    nz = u2d > 0
    pos = u2d.shape[1] - 1 - np.argmax(nz[:, ::-1], axis=1)
    return np.where(nz.any(axis=1), u2d[np.arange(len(u2d)), pos], 0)


def _chunk_rows(unique, starts, params):
    """Rows streamed per K chunk: a chunk starting at feature ``s`` needs the
    vectors it overlaps; a token enters the chunk when any of them is unique,
    which the per-slot counts bound from below by their maximum."""
    idx = np.asarray(starts) // params.vector_size
    if params.vector_size >= params.rows:
        return unique[..., idx]
    return np.maximum.reduceat(unique, idx, axis=-1)


def _consumer_fraction(counts: TileCounts, site: str | None, layers: int):
    """Fraction of an output written back after the consumer site's SIC."""
    if site is None or not counts.vector:
        return np.ones(layers)
    c = counts.sites[site]
    nz = c.nonzero.sum(axis=1) * c.unique.shape[2]
    return np.where(nz > 0, c.unique.sum(axis=(1, 2)) / np.maximum(nz, 1), 1.0)


def _ceil_div(a, b):
    return -(-a // b)


def _out_cols(params: FocusParams) -> int:
    """Output columns one M tile accumulates on chip: each half of the
    (double-buffered) output buffer holds ``m_tile`` rows of accumulators, so
    a GEMM's N is produced in tiles of this many columns and its input is
    fetched from DRAM once per tile."""
    return params.buffer_bytes["output"] // (2 * params.m_tile * params.acc_bytes)


def simulate(
    workload: Workload,
    params: FocusParams,
    machine: str,
    sparsity=None,
    tech=None,
    compare: bool = True,
) -> Result:
    """Run ``workload`` on ``machine`` (see :data:`MACHINES`, :func:`resolve_counts`).

    Weight tiles stream back to back as the RTL runs them
    (:func:`stream_cycles`). ``tech``: a :mod:`sim.tech` table
    (default :class:`~sim.tech.PaperTech`). ``compare``: also run dense for
    the ``speedup`` / ``energy_reduction`` totals (NaN otherwise).
    """
    counts = resolve_counts(workload, params, machine, sparsity)
    tech = tech or _PAPER
    res = _run(workload, params, machine, counts, tech)
    if not compare:
        res.totals["speedup"] = res.totals["energy_reduction"] = float("nan")
        return res
    if machine == "dense":
        base = res.totals
    else:
        base = _dense_totals(workload, params, tech)
    res.totals["speedup"] = base.time_s / res.totals.time_s
    res.totals["energy_reduction"] = base.energy_mj / res.totals.energy_mj
    return res


@functools.lru_cache(maxsize=64)
def _dense_totals(workload, params, tech) -> pd.Series:
    counts = dense_counts(workload, params)
    return _run(workload, params, "dense", counts, tech).totals


def _run(workload, params, machine, counts, tech) -> Result:
    p, w, S, vector = params, workload, counts.sites, counts.vector
    L, R, C, vs = w.layers, p.rows, p.cols, p.vector_size
    ob, ab = p.operand_bytes, p.acc_bytes
    idx_b = max(1, math.ceil(math.log2(p.m_tile + 1) / 8))
    window = p.block_frames * p.block_height * p.block_width - 1
    lut, lut_last = _luts(p, p.m_tile)
    frac = {
        s: _consumer_fraction(counts, s, L)[:, None]
        for s in ("query", "o_proj", "gate_proj", "down_proj", "q_proj")
    }
    next_q = np.vstack([frac["q_proj"][1:], np.ones((1, 1))])  # next layer's input
    keys = np.cumsum(S["query"].nonzero, axis=1)  # causal key range
    cmc = machine == "cmc"
    frames = []
    out_cols = _out_cols(p)  # the input is fetched once per output tile

    def emit(
        gemm,
        site,
        K,
        N,
        nz,
        compute,
        m_last,
        macs,
        d_in,
        in_reads,
        w_bytes,
        scat_ops,
        acc_bytes,
        out_elems,
        out_frac,
        sic_out,
        exact=None,
    ):
        """One GEMM from (L, NT) arrays; m_last (L,): rows of each layer's
        last weight tile (it drains: tile_cycles instead of its issue slot);
        scat_ops: partial sums to scatter (None: token-level); acc_bytes:
        array output bytes; exact: (L, NT) cycles of each tile on the
        integrated accelerator (compute + stall; None: no scatter or SIC,
        no stall)."""
        busy = compute > 0
        last = busy & (np.cumsum(busy[:, ::-1], axis=1)[:, ::-1] == 1)
        compute = compute + last * (lut_last[m_last] - lut[m_last])[:, None]
        scatter = _ceil_div(scat_ops, p.num_scatter) if scat_ops is not None else 0 * nz
        sic = 0 * nz
        if vector and sic_out:
            sic = _sic_passes(nz, _ceil_div(out_elems // np.maximum(nz, 1), vs), p)
        scatter_stall = np.maximum(0, scatter - compute)
        stall = 0 * nz if exact is None else exact - compute
        d_out = np.ceil(out_elems * ob * out_frac)
        if cmc:  # off-chip merging: dense write + read back before the merged write
            d_out = d_out + 2 * out_elems * ob
        if vector and sic_out:
            d_out = d_out + nz * _ceil_div(out_elems // np.maximum(nz, 1), vs) * idx_b
        dram = d_in + w_bytes + d_out
        cycles = np.maximum(compute + stall, np.ceil(dram / p.dram_bytes_per_cycle))
        z = np.zeros(nz.shape)
        sr = {
            "input_read": in_reads,
            "input_write": d_in,
            "weight_read": w_bytes,
            "weight_write": w_bytes,
        }
        if scat_ops is not None:  # unique partial sums parked, then scattered
            sb = scat_ops * C * ab
            sr.update(
                concentrate_out_write=acc_bytes,
                concentrate_out_read=sb,
                output_read=sb,
                output_write=sb,
            )
        else:  # read-modify-write accumulation per K chunk
            sr.update(output_read=acc_bytes, output_write=acc_bytes)
        if vector and sic_out:  # SIC on the produced tile
            vecs = np.ceil(out_elems / vs)
            sr.update(
                layouter_read=out_elems * ob,
                layouter_write=out_elems * ob,
                similarity_table_read=vecs * window * vs * ob,
                similarity_table_write=vecs * vs * ob,
                similarity_map_write=vecs * idx_b,
            )
            if scat_ops is not None:  # one group lookup per scattered partial sum
                sr["similarity_map_read"] = scat_ops * idx_b
        row = {
            "layer": np.arange(L),
            "gemm": np.full(L, gemm),
            "site": np.full(L, site),
            "K": np.full(L, K),
            "N": np.full(L, N),
            "tokens": nz.sum(1),
            "macs": macs.sum(1),
            "compute_cycles": compute.sum(1),
            "scatter_cycles": scatter.sum(1),
            "stall_cycles": stall.sum(1),
            "sic_cycles": sic.sum(1),
            "sic_stall_cycles": (stall - scatter_stall).sum(1),
            "cycles": cycles.sum(1),
            "dram_in": d_in.sum(1),
            "dram_weight": w_bytes.sum(1),
            "dram_out": d_out.sum(1),
            "dram_bytes": dram.sum(1),
        }
        for b in p.buffer_bytes:
            for op in ("read", "write"):
                row[f"{b}_{op}"] = (sr.get(f"{b}_{op}", z) + z).sum(1)
        frames.append(row)

    def streamed(site, starts):
        c = S[site]
        if vector:
            return _chunk_rows(c.unique, starts, p)
        return np.repeat(c.rows[:, :, None], len(starts), axis=2)

    consumer = {
        "q": frac["query"],
        "k": 1.0,
        "v": 1.0,
        "o": frac["gate_proj"],
        "gate": frac["down_proj"],
        "up": frac["down_proj"],
        "down": next_q,
    }
    schedules = {}

    def exact(site, u, nz, ntile):
        """:func:`_exact`, once per (input site, N tiles): k and v, gate and
        up run the same schedule."""
        if (site, ntile) not in schedules:
            schedules[site, ntile] = _exact(u, nz, ntile, p)
        return schedules[site, ntile]

    for gemm, site, K, N in w.linears():
        nz = S[site].nonzero
        starts = np.arange(0, K, R)
        u = streamed(site, starts)
        ntile = _ceil_div(N, C)
        elems = (u * np.minimum(R, K - starts)).sum(-1)
        out_frac = consumer[gemm] if vector else S[site].rows / np.maximum(nz, 1)
        scat = nz * _ceil_div(K, vs) * ntile if vector else None
        # the input chunks (and their group indices) are fetched per output tile
        d_in = (elems * ob + (nz * _ceil_div(K, vs) * idx_b if vector else 0)) * _ceil_div(
            N, out_cols
        )
        emit(
            gemm,
            site,
            K,
            N,
            nz,
            ntile * lut[u].sum(-1),
            _last_nonzero(u.reshape(L, -1)),
            elems * N,
            d_in,
            elems * ob * ntile,
            (u.max(-1) > 0) * K * N * ob,
            scat,
            u.sum(-1) * ntile * C * ab,
            nz * N,
            out_frac,
            gemm not in ("k", "v"),
            exact(site, u, nz, ntile) if vector else None,
        )
        if gemm != "v":
            continue
        # Attention between v and o. QK^T: per head, head_dim/rows chunks of
        # the query against the tile's causal keys (weights: K of its KV head).
        H, hd = w.heads, w.head_dim
        nz = S["query"].nonzero
        starts = np.array([h * hd + j for h in range(H) for j in range(0, hd, R)])
        u = streamed("query", starts)
        ntile = _ceil_div(keys, C)
        elems = (u * np.minimum(R, hd - starts % hd)).sum(-1)
        # K (and V) tiles are reloaded per query head: the weight buffer holds
        # one rows x cols tile, so a KV head's keys are not kept across its group
        kv = (nz > 0) * H * keys * hd * ob
        per_head = _ceil_div(hd, vs)
        scat = nz * H * per_head * ntile if vector else None
        prow = S["scores"].rows
        emit(
            "qk",
            "query",
            hd,
            w.tokens,
            nz,
            ntile * lut[u].sum(-1),
            _last_nonzero(u.reshape(L, -1)),
            elems * keys,
            (elems * ob + (nz * H * per_head * idx_b if vector else 0)) * _ceil_div(keys, out_cols),
            elems * ob * ntile,
            kv,
            scat,
            u.sum(-1) * ntile * C * ab,
            prow * keys * H,
            1.0,
            False,
            _exact_qk(nz, u, ntile, H, w.kv_heads, p) if vector else None,
        )
        # S x V: H x rows probabilities x keys, N = head_dim (no SIC on P).
        nk, ntn = _ceil_div(keys, R), _ceil_div(hd, C)
        p_el = H * prow * keys
        emit(
            "sv",
            "scores",
            w.tokens,
            hd,
            nz,
            H * nk * ntn * lut[prow],
            _last_nonzero(prow),
            p_el * hd,
            p_el * ob * _ceil_div(hd, out_cols),
            p_el * ob * ntn,
            kv,
            None,
            H * prow * nk * ntn * C * ab,
            nz * H * hd,
            frac["o_proj"] if vector else prow / np.maximum(nz, 1),
            True,
            w.kv_heads * _exact_sv(nz, prow, nk, ntn, H // w.kv_heads, p) if vector else None,
        )
    gemms = {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}
    return _finish(w, p, machine, gemms, tech)


def _exact(u, nz, ntile: int, params: FocusParams) -> np.ndarray:
    """(L, NT) cycles each M tile adds on the integrated accelerator
    (:func:`focus_hw.timing.focus_schedule_arrays`), one run per layer."""
    out = np.zeros(nz.shape, np.int64)
    for layer in range(nz.shape[0]):
        live = np.flatnonzero(nz[layer] > 0)
        if len(live):
            run = focus_schedule_arrays(nz[layer, live], u[layer, live], ntile, params)
            out[layer, live] = run["tile_cycles"]
    return out


def _exact_qk(nz, u, ntile, heads: int, kv_heads: int, params: FocusParams) -> np.ndarray:
    """(L, NT) cycles of QK^T per M tile on the integrated accelerator,
    bypassing the output SIC (the scores go to softmax whole): one run per
    KV head, whose M tiles are the query heads that share its keys, each
    the tile's ``nz`` tokens with K = ``head_dim`` (``u``: (L, NT, heads x
    chunks) unique vectors, head by head), N = the tile's causal keys
    (``ntile`` sub-tiles). Runs of equal counts are scheduled once."""
    live = np.nonzero(nz > 0)
    layer, tile = (np.repeat(i, kv_heads) for i in live)
    group = heads // kv_heads
    # per run: tokens, N tiles, then its query heads' unique counts, chunk by chunk
    runs = np.column_stack(
        [
            nz[layer, tile],
            ntile[layer, tile],
            u[live].reshape(len(layer), group * u.shape[2] // heads),
        ]
    )
    distinct, inverse = np.unique(runs, axis=0, return_inverse=True)
    cycles = focus_schedule_runs(
        np.repeat(distinct[:, :1], group, axis=1),
        distinct[:, 2:].reshape(len(distinct), group, -1),
        distinct[:, 1],
        params,
        bypass=True,
    )["cycles"]
    out = np.zeros(nz.shape, np.int64)
    np.add.at(out, (layer, tile), cycles[inverse.reshape(-1)])
    return out


def _exact_sv(nz, prow, nk, ntn: int, group: int, params: FocusParams) -> np.ndarray:
    """(L, NT) cycles of one KV head's S x V per M tile on the integrated
    accelerator: one run per M tile (its causal keys are its K), whose M
    tiles are the ``group`` query heads sharing that V (so each head's SIC
    passes overlap the next head's compute); every probability row unique
    (P is not concentrated), ``ntn`` output sub-tiles of ``head_dim``."""
    out, runs = np.zeros(nz.shape, np.int64), {}
    for layer, t in zip(*np.nonzero(nz > 0)):
        key = (int(nz[layer, t]), int(prow[layer, t]), int(nk[layer, t]))
        if key not in runs:  # layers between SEC points repeat their tiles
            m = np.full(group, key[0], np.int64)
            unique = np.full((group, key[2]), key[1], np.int64)
            runs[key] = focus_schedule_arrays(m, unique, ntn, params)["cycles"]
        out[layer, t] = runs[key]
    return out


def _buffers(machine: str, params: FocusParams) -> dict[str, int]:
    """Buffers present on a machine (the SIC/SEC ones only on Focus)."""
    bb = params.buffer_bytes
    if machine in ("focus", "focus_sec"):
        return bb
    return {k: bb[k] for k in ("input", "weight", "output")}


def _finish(w, p, machine, g: dict, tech) -> Result:
    bufs = _buffers(machine, p)
    sram_pj = np.zeros(len(g["cycles"]))
    for name in p.buffer_bytes:
        rd, wr = g[f"{name}_read"], g[f"{name}_write"]
        if name not in bufs:
            if rd.sum() + wr.sum() > 0:
                raise MachineError(f"{machine}: traffic on absent buffer {name}")
            continue
        b = sram.buffer(bufs[name])
        sram_pj += rd * b.read_pj_per_byte + wr * b.write_pj_per_byte
    g["time_s"] = g["cycles"] / p.clock_hz
    leak_mw = sum(sram.buffer(n).leak_mw for n in bufs.values())
    core_mw = tech.core_power_mw(machine, p)
    g["dram_mj"] = g["dram_bytes"] * p.dram_pj_per_byte * 1e-9
    g["sram_mj"] = sram_pj * 1e-9 + leak_mw * g["time_s"]
    g["core_mj"] = core_mw * g["time_s"]
    g["energy_mj"] = g["dram_mj"] + g["sram_mj"] + g["core_mj"]
    g["utilization"] = g["macs"] / np.maximum(1, g["cycles"] * p.rows * p.cols)
    cols = [
        "cycles",
        "compute_cycles",
        "scatter_cycles",
        "stall_cycles",
        "sic_cycles",
        "sic_stall_cycles",
        "macs",
        "dram_bytes",
        "dram_in",
        "dram_weight",
        "dram_out",
        "time_s",
        "dram_mj",
        "sram_mj",
        "core_mj",
        "energy_mj",
    ]
    tot = {c: float(g[c].sum()) for c in cols}
    tot["dense_macs"] = float(w.dense_macs())
    tot["utilization"] = tot["macs"] / (tot["cycles"] * p.rows * p.cols)
    tot["core_mw"] = core_mw
    return Result(w, machine, p, pd.DataFrame(g), pd.Series(tot))
