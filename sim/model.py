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
* **Focus on the integrated accelerator**: every Focus GEMM takes its time
  and its figures from the RTL-exact model, per M tile: the cycles of the
  accelerator's schedule (:func:`focus_hw.timing.focus_schedule`, equal to
  the RTL; **stall** = that time - compute) and what the tile adds to each
  of the RTL's counters (:func:`sim.focus_gemm.tile_counters`: scatter
  beats, SIC busy cycles, each buffer's accesses, the DRAM bytes of the
  input, map, position and weight streams and of the output). The
  projection GEMMs (q, k, v, o, gate, up, down) are one run per layer; k
  and v, whose outputs go to the KV cache whole, bypass the output SIC.
  QK^T bypasses it too (its scores go to softmax whole), one run per KV
  head and M tile: its M tiles are the query heads that share the keys,
  each with the tile's queries (K = ``head_dim``), its N the tile's causal
  keys. S x V is one run per KV head and M tile too (its causal keys are
  its K, its M tiles the query heads that share the V, every probability
  row unique, ``head_dim`` columns). The drain (QK^T) or the SIC passes
  (S x V) that end each run are not hidden. ``sic_stall_cycles`` is the
  part of the stall beyond the scatter's own excess over compute (max(0,
  scatter - compute) per M tile).
* **DRAM** (all machines): compressed input activations (+ similarity-map
  indices), fetched
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
* **SRAM**: reads/writes per buffer of ``params.buffer_bytes``: on Focus's
  accelerator runs each counter's accesses times the bytes one moves
  (:func:`sim.focus_gemm.access_bytes`); otherwise input (every DRAM fill,
  streamed once per weight tile), weight, output (per-chunk
  read-modify-write, or the scatter's) and concentrate_out (unique partial
  sums). Energy per byte from :mod:`sim.sram`, plus
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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from focus_hw import FocusParams
from focus_hw.timing import (
    focus_schedule_arrays,
    focus_schedule_runs,
    focus_schedule_tiles,
    reload_cycles,
    tile_cycles,
)

from . import sram
from .focus_gemm import ACCESSES, access_bytes, tile_counters
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
    L, R, C = w.layers, p.rows, p.cols
    ob = p.operand_bytes
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
        acc_bytes,
        out_elems,
        out_frac,
        exact=None,
    ):
        """One GEMM from (L, NT) arrays; m_last (L,): rows of each layer's
        last weight tile (it drains: tile_cycles instead of its issue slot);
        acc_bytes: array output bytes; exact: ``(cycles, counters,
        bypass)`` of each tile on the integrated accelerator, its (L, NT)
        cycles (they replace compute + stall) and
        :func:`~sim.focus_gemm.tile_counters` (they replace the DRAM input,
        weight and map figures and give the scatter, SIC and SRAM ones);
        None: no scatter or SIC, no stall, read-modify-write accumulation."""
        busy = compute > 0
        last = busy & (np.cumsum(busy[:, ::-1], axis=1)[:, ::-1] == 1)
        compute = compute + last * (lut_last[m_last] - lut[m_last])[:, None]
        zero = 0 * nz
        scatter, sic, stall = zero, zero, zero
        d_out = np.ceil(out_elems * ob * out_frac)
        if cmc:  # off-chip merging: dense write + read back before the merged write
            d_out = d_out + 2 * out_elems * ob
        sr = {
            "input_read": in_reads,
            "input_write": d_in,
            "weight_read": w_bytes,
            "weight_write": w_bytes,
            "output_read": acc_bytes,
            "output_write": acc_bytes,
        }
        if exact is not None:
            tiles, rtl, bypass = exact
            stall = tiles - compute
            scatter, sic = rtl["scatter_cycles"], rtl["sic_cycles"]
            d_in, w_bytes = rtl["dram_inputs"], rtl["dram_weights"]
            # a bypass run writes its rows back whole, others the map and
            # the unique vectors the consumer's SIC leaves
            d_out = rtl["dram_out"] + (0 if bypass else d_out)
            words = access_bytes(p)  # each buffer's accesses as the RTL counts them
            sr = {
                f"{buf}_{op}": rtl[name] * words[buf]
                for name, (buf, op) in ACCESSES.items()
                if buf in words
            }
            sr["weight_read"] = sr["weight_write"]
        scatter_stall = np.maximum(0, scatter - compute)
        dram = d_in + w_bytes + d_out
        cycles = np.maximum(compute + stall, np.ceil(dram / p.dram_bytes_per_cycle))
        z = np.zeros(nz.shape)
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

    def exact(site, u, nz, ntile, bypass):
        """:func:`_exact` and the tiles' counters, once per (input site, N
        tiles, bypass): k and v, gate and up run the same schedule."""
        if (site, ntile, bypass) not in schedules:
            rtl = _counters(nz, u, ntile, p, bypass)
            schedules[site, ntile, bypass] = _exact(u, nz, ntile, p, bypass), rtl, bypass
        return schedules[site, ntile, bypass]

    for gemm, site, K, N in w.linears():
        nz = S[site].nonzero
        starts = np.arange(0, K, R)
        u = streamed(site, starts)
        ntile = _ceil_div(N, C)
        elems = (u * np.minimum(R, K - starts)).sum(-1)
        out_frac = consumer[gemm] if vector else S[site].rows / np.maximum(nz, 1)
        emit(
            gemm,
            site,
            K,
            N,
            nz,
            ntile * lut[u].sum(-1),
            _last_nonzero(u.reshape(L, -1)),
            elems * N,
            elems * ob * _ceil_div(N, out_cols),  # the input, once per output tile
            elems * ob * ntile,
            (u.max(-1) > 0) * K * N * ob,
            u.sum(-1) * ntile * C * p.acc_bytes,
            nz * N,
            out_frac,
            # k and v go to the KV cache whole: past the output SIC
            exact(site, u, nz, ntile, gemm in ("k", "v")) if vector else None,
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
            elems * ob * _ceil_div(keys, out_cols),
            elems * ob * ntile,
            kv,
            u.sum(-1) * ntile * C * p.acc_bytes,
            prow * keys * H,
            1.0,
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
            H * prow * nk * ntn * C * p.acc_bytes,
            nz * H * hd,
            frac["o_proj"] if vector else prow / np.maximum(nz, 1),
            _exact_sv(nz, prow, nk, ntn, H, w.kv_heads, p) if vector else None,
        )
    gemms = {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}
    return _finish(w, p, machine, gemms, tech)


def _counters(m, u, ntile, params: FocusParams, bypass: bool) -> dict:
    """:func:`~sim.focus_gemm.tile_counters` of M tiles of ``m`` tokens
    with ``u`` (..., chunks) unique vectors per K chunk; every token counts
    as non-zero in every chunk (the model's counts do not say otherwise)."""
    chunks = u.shape[-1]
    rows, busy = u.sum(-1), (u > 0).sum(-1)
    return tile_counters(
        m, rows, busy, m * chunks, m * (chunks - 1), chunks, ntile, params, bypass=bypass
    )


def _exact(u, nz, ntile: int, params: FocusParams, bypass: bool) -> np.ndarray:
    """(L, NT) cycles each M tile adds on the integrated accelerator
    (:func:`focus_hw.timing.focus_schedule_tiles`), one run per layer."""
    out = np.zeros(nz.shape, np.int64)
    live = nz > 0
    per_layer = live.sum(axis=1)
    first = np.concatenate([[0], np.cumsum(per_layer)[:-1]])[per_layer > 0]
    if len(first):
        out[live] = focus_schedule_tiles(nz[live], u[live], first, ntile, params, bypass=bypass)
    return out


def _exact_qk(nz, u, ntile, heads: int, kv_heads: int, params: FocusParams):
    """QK^T per M tile on the integrated accelerator, bypassing the output
    SIC (the scores go to softmax whole), as ``(cycles, counters, True)``
    of :func:`_run`'s ``exact``: one run per KV head, whose M tiles are the
    query heads that share its keys, each the tile's ``nz`` tokens with K =
    ``head_dim`` (``u``: (L, NT, heads x chunks) unique vectors, head by
    head), N = the tile's causal keys (``ntile`` sub-tiles). Runs of equal
    counts are scheduled once."""
    per_head = u.reshape(*u.shape[:2], heads, -1)  # (L, NT, heads, chunks)
    m = np.repeat(nz[..., None], heads, axis=2)
    rtl = _counters(m, per_head, ntile[..., None], params, True)
    rtl = {name: value.sum(-1) for name, value in rtl.items()}
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
    return out, rtl, True


def _exact_sv(nz, prow, nk, ntn: int, heads: int, kv_heads: int, params: FocusParams):
    """S x V per M tile on the integrated accelerator, as ``(cycles,
    counters, False)`` of :func:`_run`'s ``exact``: per KV head one run per
    M tile (its causal keys are its K), whose M tiles are the ``heads /
    kv_heads`` query heads sharing that V (so each head's SIC passes overlap
    the next head's compute); every probability row unique (P is not
    concentrated), ``ntn`` output sub-tiles of ``head_dim``."""
    rtl = tile_counters(nz, prow * nk, nk * (prow > 0), prow * nk, prow * (nk - 1), nk, ntn, params)
    rtl = {name: heads * value for name, value in rtl.items()}
    group = heads // kv_heads
    out, runs = np.zeros(nz.shape, np.int64), {}
    for layer, t in zip(*np.nonzero(nz > 0)):
        key = (int(nz[layer, t]), int(prow[layer, t]), int(nk[layer, t]))
        if key not in runs:  # layers between SEC points repeat their tiles
            m = np.full(group, key[0], np.int64)
            unique = np.full((group, key[2]), key[1], np.int64)
            runs[key] = focus_schedule_arrays(m, unique, ntn, params)["cycles"]
        out[layer, t] = runs[key]
    return kv_heads * out, rtl, False


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
