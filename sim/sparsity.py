"""Sparsity inputs of the performance model, reduced to per-tile counts.

Whatever the source -- a recorded :class:`focus_algo.trace.SparseTrace`, the
paper's per-site summary sparsities of a token-level baseline, SEC's keep
schedule alone, or a synthetic Focus trace aimed at a target sparsity -- the
model only needs, per SIC site, per layer and per GEMM M tile:

* ``nonzero``: surviving (not SEC-pruned) tokens of the tile: the rows the
  scatter accumulators write and the keys a causal attention tile sees;
* ``rows``: token rows a token-level machine streams (``nonzero`` minus the
  tokens a baseline merged away; equal to ``nonzero`` for Focus);
* ``unique``: per vector slot, the non-zero, non-similar vectors: the rows
  Focus streams through the array for that K chunk.

These are :class:`SiteCounts`; :class:`TileCounts` bundles the five sites
(``SITES``; k/v reuse q_proj, up reuses gate_proj, QK^T reuses query) plus
"scores", the attention probabilities feeding S x V.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from focus_algo.trace import SITES, SiteTrace, SparseTrace, TraceMeta
from focus_hw import FocusParams

from .workload import REFERENCE_DIR, Workload

__all__ = [
    "SITES",
    "SparsityError",
    "SiteCounts",
    "TileCounts",
    "sec_survivors",
    "dense_counts",
    "token_counts",
    "synthetic_counts",
    "synthetic_trace",
    "counts_from_trace",
    "baseline_sparsity",
    "focus_target",
]

#: Sites read before a layer's SEC pruning (attention half of the layer).
_ATTN_SITES = ("q_proj", "query", "o_proj", "scores")


class SparsityError(ValueError):
    """A sparsity input that does not fit the workload or the parameters."""


@dataclass
class SiteCounts:
    """Per-tile counts of one GEMM input site (see module docstring)."""

    nonzero: np.ndarray  # (L, NT) int64
    rows: np.ndarray  # (L, NT) int64
    unique: np.ndarray  # (L, NT, V) int64

    @property
    def sparsity(self) -> float:
        """(zero + similar) / vectors over the surviving tokens."""
        total = self.nonzero.sum() * self.unique.shape[2]
        return float(1 - self.unique.sum() / total) if total else 0.0


@dataclass
class TileCounts:
    """Counts for all sites; ``vector`` says whether the merging is
    vector-level (Focus: scatter accumulators needed) or token-level."""

    sites: dict[str, SiteCounts]
    vector: bool
    m_tile: int
    vector_size: int


def _vectors(width: int, params: FocusParams) -> int:
    return math.ceil(width / params.vector_size)


def sec_survivors(workload: Workload, params: FocusParams | None) -> tuple[np.ndarray, np.ndarray]:
    """Visual tokens alive in each layer's attention half and MLP half.

    SEC prunes after the attention of layer ``sec_layers[i]`` down to
    ``max(1, min(alive, round(sec_keep[i] * T)))`` tokens (``params=None``:
    no SEC). Layers outside the workload are ignored.
    """
    L, T = workload.layers, workload.tokens
    attn, mlp = np.full(L, T, np.int64), np.full(L, T, np.int64)
    if params is not None:
        alive = T
        for layer, ratio in zip(params.sec_layers, params.sec_keep):
            if layer >= L:
                break
            alive = max(1, min(alive, round(ratio * T)))
            mlp[layer] = alive
            attn[layer + 1 :] = alive
            mlp[layer + 1 :] = alive
    return attn, mlp


def _tiles(alive: np.ndarray, m_tile: int, T: int) -> np.ndarray:
    """(L, NT) survivors per M tile: consecutive tiles of m_tile survivors."""
    nt = math.ceil(T / m_tile)
    start = np.arange(nt) * m_tile
    return np.clip(alive[:, None] - start[None, :], 0, m_tile).astype(np.int64)


def _site_alive(workload, sec_params):
    attn, mlp = sec_survivors(workload, sec_params)
    return {s: (attn if s in _ATTN_SITES else mlp) for s in SITES + ("scores",)}


def _widths(workload):
    return {**workload.site_widths, "scores": 0}


def dense_counts(
    workload: Workload, params: FocusParams, sec_params: FocusParams | None = None
) -> TileCounts:
    """Every surviving vector unique (dense, or SEC-only when ``sec_params``)."""
    return token_counts(workload, params, 0.0, sec_params)


def token_counts(
    workload: Workload, params: FocusParams, sparsity, sec_params: FocusParams | None = None
) -> TileCounts:
    """Token-level merging (CMC, AdapTiV): a fraction of each tile's tokens is
    dropped from the stream. ``sparsity`` is a float or a dict keyed by site
    (``SITES`` plus "scores"; "linear" sets q_proj/o_proj/gate_proj/down_proj)."""
    per = _site_sparsity(sparsity)
    out = {}
    for site, alive in _site_alive(workload, sec_params).items():
        nz = _tiles(alive, params.m_tile, workload.tokens)
        rows = np.ceil(nz * (1.0 - per[site]) - 1e-9).astype(np.int64)
        v = max(1, _vectors(_widths(workload)[site], params))
        out[site] = SiteCounts(nz, rows, np.repeat(rows[:, :, None], v, axis=2))
    return TileCounts(out, vector=False, m_tile=params.m_tile, vector_size=params.vector_size)


def _check_fraction(name, value):
    if not isinstance(value, (int, float, np.floating)) or not 0.0 <= value < 1.0:
        raise SparsityError(f"sparsity[{name}]={value!r}: must be a number in [0, 1)")
    return float(value)


def _site_sparsity(sparsity) -> dict[str, float]:
    keys = SITES + ("scores",)
    if isinstance(sparsity, dict):
        unknown = set(sparsity) - set(keys) - {"linear"}
        if unknown:
            raise SparsityError(f"sparsity: unknown site(s) {sorted(unknown)}; know {keys}")
        per = dict.fromkeys(keys, 0.0)
        if "linear" in sparsity:
            for s in ("q_proj", "o_proj", "gate_proj", "down_proj"):
                per[s] = sparsity["linear"]
        per.update({k: v for k, v in sparsity.items() if k != "linear"})
        return {k: _check_fraction(k, v) for k, v in per.items()}
    return dict.fromkeys(keys, _check_fraction("all", sparsity))


# -- synthetic Focus sparsity -------------------------------------------------


def _logit(p):
    return math.log(p / (1 - p))


def synthetic_counts(
    workload: Workload,
    params: FocusParams,
    target,
    seed: int = 0,
    sec: bool = True,
    spread: float = 0.6,
) -> TileCounts:
    """Focus counts with SIC sparsity ``target`` (float, or dict per site) over
    the surviving vectors, plus SEC pruning from ``params`` when ``sec``.

    The redundancy is spread realistically rather than uniformly: the logit of
    each (layer, tile, vector slot) sparsity is ``logit(target)`` plus a
    per-layer trend and noise, per-tile noise (scene cuts, motion) and a
    per-slot offset (some channels stay redundant), all of scale ``spread``;
    a common shift then makes the survivor-weighted mean hit ``target``
    exactly (up to rounding to whole vectors). The first row of a tile is
    always unique (it has no earlier candidate).
    """
    per = _site_sparsity(target)
    rng = np.random.default_rng(seed)
    L = workload.layers
    layer_off = spread * (np.linspace(-0.5, 0.5, L) + 0.5 * rng.standard_normal(L))
    alive = _site_alive(workload, params if sec else None)
    out = {}
    for site in SITES + ("scores",):
        nz = _tiles(alive[site], params.m_tile, workload.tokens)
        if site == "scores":  # attention probabilities: not a SIC site
            out[site] = SiteCounts(nz, nz.copy(), nz[:, :, None].copy())
            continue
        v = _vectors(workload.site_widths[site], params)
        s = per[site]
        if s == 0.0:
            out[site] = SiteCounts(nz, nz.copy(), np.repeat(nz[:, :, None], v, axis=2))
            continue
        off = (
            layer_off[:, None, None]
            + 0.5 * spread * rng.standard_normal((L, nz.shape[1], 1))
            + 0.5 * spread * rng.standard_normal((1, 1, v))
        )
        w = np.broadcast_to(nz[:, :, None], off.shape).astype(float)
        x, shift = _logit(s) + off, 0.0  # Newton on the common logit shift
        for _ in range(50):
            p = 0.5 * (1 + np.tanh(0.5 * (x + shift)))  # logistic, overflow-free
            err = (p * w).sum() / w.sum() - s
            if abs(err) < 1e-9:
                break
            shift -= err * w.sum() / max((p * (1 - p) * w).sum(), 1e-12)
        uniq = np.rint(w * (1 - p)).astype(np.int64)
        uniq = np.where(nz[:, :, None] > 0, np.clip(uniq, 1, nz[:, :, None]), 0)
        out[site] = SiteCounts(nz, nz.copy(), uniq)
    return TileCounts(out, vector=True, m_tile=params.m_tile, vector_size=params.vector_size)


def synthetic_trace(
    workload: Workload,
    params: FocusParams,
    target,
    seed: int = 0,
    sec: bool = True,
    spread: float = 0.6,
):
    """A :class:`focus_algo.trace.SparseTrace` realising :func:`synthetic_counts`
    token by token (small workloads: it holds L x T x V masks per site).

    SEC-pruned tokens are a random subset (all vectors zero); within each tile
    and slot the first survivor is unique, the other unique ones are drawn at
    random, and each similar vector points to the latest earlier unique one.
    """
    counts = synthetic_counts(workload, params, target, seed, sec, spread)
    rng = np.random.default_rng(seed + 1)
    L, T, m = workload.layers, workload.tokens, params.m_tile
    alive = _site_alive(workload, params if sec else None)
    # Which tokens survive: nested random subsets (SEC never revives a token).
    order = rng.permutation(T)
    sites = {}
    for site in SITES:
        c = counts.sites[site]
        v = c.unique.shape[2]
        zero = np.ones((L, 1, T, v), bool)
        similar = np.zeros((L, 1, T, v), bool)
        root = np.broadcast_to(
            np.arange(T, dtype=np.int32)[None, None, :, None], (L, 1, T, v)
        ).copy()
        for layer in range(L):
            keep = np.sort(order[: alive[site][layer]])
            n = len(keep)
            nt = math.ceil(n / m)
            pad = np.full(nt * m, -1)
            pad[:n] = keep
            idx = pad.reshape(nt, m)
            valid = idx >= 0
            # Rank rows by random keys; the first row of a tile always ranks 0.
            key = rng.random((nt, m, v))
            key[:, 0, :] = -1.0
            key[~valid] = 2.0
            rank = np.argsort(np.argsort(key, axis=1), axis=1)
            uniq = rank < c.unique[layer, :nt, None, :]
            uniq &= valid[:, :, None]
            # Latest earlier unique row of the same tile and slot.
            pos = np.where(uniq, np.arange(m)[None, :, None], -1)
            last = np.maximum.accumulate(pos, axis=1)
            tok = np.take_along_axis(
                np.broadcast_to(idx[:, :, None], (nt, m, v)), np.maximum(last, 0), axis=1
            )
            sel = valid
            zero[layer, 0, keep] = False
            similar[layer, 0, idx[sel]] = ~uniq[sel]
            root[layer, 0, idx[sel]] = np.where(uniq[sel], idx[sel][:, None], tok[sel])
        sites[site] = SiteTrace(zero=zero, similar=similar, root=root)
    geo = (workload.frames, workload.height, workload.width)
    if math.prod(geo) != T:  # e.g. any-resolution images: one flat frame
        geo = (1, 1, T)
    meta = TraceMeta(
        model=workload.model or workload.name,
        dataset=workload.dataset,
        num_tokens=T,
        frames=geo[0],
        height=geo[1],
        width=geo[2],
        num_layers=L,
        params=params,
        extra={"synthetic_target": target, "seed": seed},
    )
    return SparseTrace(meta=meta, sites=sites)


# -- recorded traces ------------------------------------------------------------


def counts_from_trace(trace, workload: Workload, params: FocusParams) -> TileCounts:
    """Per-tile counts of a recorded :class:`SparseTrace`.

    A token whose vectors are all zero is SEC-pruned; survivors are cut into
    tiles of ``m_tile``. Raises :class:`SparsityError` when the trace does not
    match the workload (T, layers) or the parameters (vector size, m_tile).
    """
    meta = trace.meta
    L, T = workload.layers, workload.tokens
    if meta.num_tokens != T:
        raise SparsityError(
            f"trace {meta.model}/{meta.dataset}: T={meta.num_tokens} "
            f"but workload {workload.name} has T={T}"
        )
    if meta.num_layers != L:
        raise SparsityError(
            f"trace {meta.model}/{meta.dataset}: {meta.num_layers} layers "
            f"but workload {workload.name} has {L}"
        )
    for f in ("vector_size", "m_tile"):
        if getattr(meta.params, f) != getattr(params, f):
            raise SparsityError(
                f"trace was made with {f}={getattr(meta.params, f)} "
                f"but params have {f}={getattr(params, f)}"
            )
    missing = [s for s in SITES if s not in trace.sites]
    if missing:
        raise SparsityError(f"trace lacks site(s) {missing}")
    m = params.m_tile
    nt = math.ceil(T / m)
    out = {}
    for site in SITES:
        st = trace.sites[site]
        v = _vectors(workload.site_widths[site], params)
        for name in ("zero", "similar"):
            shape = getattr(st, name).shape
            if shape != (L, 1, T, v):
                raise SparsityError(
                    f"trace site {site}.{name} has shape {shape}, expected {(L, 1, T, v)}"
                )
        zero, sim = st.zero[:, 0], st.similar[:, 0]
        alive = ~zero.all(axis=2)  # (L, T)
        uniq = ~zero & ~sim
        # Position of each survivor in its layer's survivor order -> tile.
        tile = (np.cumsum(alive, axis=1) - 1) // m
        tile = np.where(alive, tile, nt)  # pruned -> dump tile
        li = np.repeat(np.arange(L), T)
        flat = li * (nt + 1) + tile.ravel()
        nz = np.bincount(flat, minlength=L * (nt + 1)).reshape(L, nt + 1)[:, :nt]
        cells = (flat[:, None] * v + np.arange(v)).ravel()  # (tile, slot) of each vector
        u = np.bincount(cells, weights=uniq.reshape(L * T * v), minlength=L * (nt + 1) * v)
        out[site] = SiteCounts(
            nz.astype(np.int64),
            nz.astype(np.int64),
            u.astype(np.int64).reshape(L, nt + 1, v)[:, :nt],
        )
    q = out["query"].nonzero
    out["scores"] = SiteCounts(q, q.copy(), q[:, :, None].copy())
    return TileCounts(out, vector=True, m_tile=m, vector_size=params.vector_size)


# -- paper summary sparsities ---------------------------------------------------


def baseline_sparsity(machine: str, model: str, dataset: str) -> dict[str, float]:
    """Per-site sparsity of a token-level baseline from the paper's tables:
    CMC (linear / query / attention-score) or AdapTiV (one figure for all)."""
    alg = REFERENCE_DIR / "algorithm"
    if machine == "cmc":
        df = pd.read_csv(alg / "cmc_sparsity.csv")
        r = df[(df.Model == model) & (df.Dataset == dataset)]
        if r.empty:
            raise SparsityError(f"cmc_sparsity.csv has no row {model}/{dataset}")
        r = r.iloc[0]
        return {
            "linear": float(r.linear_sparsity),
            "query": float(r.query_sparsity),
            "scores": float(r.attn_score_sparsity),
        }
    if machine == "adaptiv":
        df = pd.read_csv(alg / "adaptiv_sparsity.csv")
        r = df[(df.Model == model) & (df.Dataset == dataset)]
        if r.empty:
            raise SparsityError(f"adaptiv_sparsity.csv has no row {model}/{dataset}")
        s = float(r.iloc[0].Sparsity)
        return {"linear": s, "query": s, "scores": s}
    raise SparsityError(f"no summary sparsity table for machine {machine!r}")


def focus_target(model: str, dataset: str, source: str = "ops") -> float:
    """Focus's SIC sparsity on the vectors SEC kept, from the paper's tables.

    * "ops" (default): the compute reduction SIC adds to SEC in the paper's
      simulator, ``1 - num_ops(main_focus) / num_ops(main_focus_SEC_only)``;
    * "compression": ``1 - 1 / total_compression_ratio`` of main_focus.csv,
      the DRAM activation compression (counts every activation written,
      including outputs no GEMM re-reads, so it overstates the compute
      reduction by 5-11 points).
    """
    sim_dir = REFERENCE_DIR / "simulator"
    df = pd.read_csv(sim_dir / "main_focus.csv")
    r = df[(df.model == model) & (df.dataset == dataset)]
    if r.empty:
        raise SparsityError(f"main_focus.csv has no row {model}/{dataset}")
    r = r.iloc[0]
    if source == "compression":
        text = str(r.total_compression_ratio)
        return 1.0 - 1.0 / float(text.removeprefix("tensor(").removesuffix(")"))
    if source != "ops":
        raise SparsityError(f"focus_target: source={source!r} must be 'ops' or 'compression'")
    sec = pd.read_csv(sim_dir / "main_focus_SEC_only.csv")
    s = sec[(sec.model == model) & (sec.dataset == dataset)]
    if s.empty:
        raise SparsityError(f"main_focus_SEC_only.csv has no row {model}/{dataset}")
    return 1.0 - float(r.num_ops) / float(s.iloc[0].num_ops)
