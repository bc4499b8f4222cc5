"""Similarity concentration (SIC): block- and vector-level redundancy removal.

:func:`similarity_concentrate` is the torch reference of SPEC 2.2. Each
token's features are cut into vectors of ``params.vector_size``; every vector
slot ``j`` is handled on its own. A vector is compared (cosine similarity,
fp32) with the same slot of up to ``block_frames*block_height*block_width - 1``
earlier tokens of its spatio-temporal window; if the best score is strictly
above ``params.threshold`` it points to that candidate. Pointers are followed
to their root and each group is replaced by the fp32 mean of its members.

The kernel works slot-chunk by slot-chunk and loops over the few candidate
offsets, so its working memory is a small multiple of one chunk rather than
(candidates x T x D).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from focus_hw.params import FocusParams

__all__ = ["SICResult", "similarity_concentrate", "block_offsets"]

#: Bytes of fp32 vector data per chunk (few, large torch ops per chunk).
_CHUNK_BYTES = 32 << 20


@dataclass
class SICResult:
    """Outcome of SIC on one GEMM input.

    ``tokens`` has the shape and dtype of the input; ``zero``, ``similar``
    and ``root`` are (T, V) with V = ceil(D / vector_size).
    """

    tokens: torch.Tensor
    zero: torch.Tensor
    similar: torch.Tensor
    root: torch.Tensor
    sparsity: float


def block_offsets(params: FocusParams) -> list[tuple[int, int, int]]:
    """Candidate offsets (df, dh, dw) in lexicographic order, without (0,0,0).

    This order is the tie-break order: the first best candidate wins.
    """
    return [(df, dh, dw)
            for df in range(params.block_frames)
            for dh in range(params.block_height)
            for dw in range(params.block_width)
            if (df, dh, dw) != (0, 0, 0)]


def _as_tokens(x, grid) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Validate the input and return it as (T, D) (heads concatenated)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"x must have a floating dtype, got {x.dtype}")
    if x.ndim not in (2, 3):
        raise ValueError(f"x must be (T, D) or (heads, T, d), got ndim={x.ndim} "
                         f"shape {tuple(x.shape)}")
    try:
        grid = tuple(grid)
    except TypeError:
        raise ValueError(f"grid must be (frames, height, width), got {grid!r}") from None
    if len(grid) != 3 or any(not isinstance(g, int) or isinstance(g, bool) or g < 1
                             for g in grid):
        raise ValueError(f"grid must be three integers >= 1 (frames, height, width), "
                         f"got {grid!r}")
    tokens = x.shape[-2]
    if math.prod(grid) != tokens:
        raise ValueError(f"grid {grid} has {math.prod(grid)} tokens but x has "
                         f"T={tokens} (shape {tuple(x.shape)})")
    if x.shape[-1] < 1 or (x.ndim == 3 and x.shape[0] < 1):
        raise ValueError(f"x has no features (shape {tuple(x.shape)})")
    if x.ndim == 3:
        x = x.permute(1, 0, 2).reshape(tokens, -1)
    return x, grid


def _vectors(x: torch.Tensor, j0: int, j1: int, vs: int) -> torch.Tensor:
    """Vector slots j0..j1-1 of every token as fp32 (T, j1-j0, vs).

    The last slot is zero-padded. fp32 input without padding gives a view.
    """
    n, d = x.shape
    c, f0, f1 = j1 - j0, j0 * vs, min(d, j1 * vs)
    if f1 - f0 == c * vs:
        return x[:, f0:f1].to(torch.float32).view(n, c, vs)
    xc = torch.zeros(n, c * vs, dtype=torch.float32, device=x.device)
    xc[:, :f1 - f0] = x[:, f0:f1]
    return xc.view(n, c, vs)


def _norms(x: torch.Tensor, vs: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per vector: (T, V) bool "not all zero" and fp32 1/norm (0 if norm is 0)."""
    n, d = x.shape
    nv = -(-d // vs)
    nonzero = torch.empty(n, nv, dtype=torch.bool, device=x.device)
    inv = torch.empty(n, nv, dtype=torch.float32, device=x.device)
    for j0 in range(0, nv, chunk):
        j1 = min(nv, j0 + chunk)
        v = _vectors(x, j0, j1, vs)
        norm = torch.linalg.vector_norm(v, dim=2)
        nz = norm > 0
        # A non-zero vector may still have norm 0 (underflow) or NaN: check those.
        maybe = (~nz).nonzero(as_tuple=True)
        if maybe[0].numel():
            nz[maybe] = (v[maybe] != 0).any(dim=1)
        nonzero[:, j0:j1] = nz
        inv[:, j0:j1] = torch.where(norm > 0, 1.0 / norm, 0.0)
    return nonzero, inv


def _offset_validity(grid, offsets, tile, wrap) -> list[torch.Tensor]:
    """Per offset: (T - s,) bool, token t = s.. may compare with t - s.

    Checks the window edges (sequence start, or row/column/frame edges when
    ``wrap`` is off) and the M-tile boundary. Tile ids of all-zero tokens
    do not matter: their vectors are zero, never similar nor candidates.
    """
    frames, height, width = grid
    n = frames * height * width
    t = torch.arange(n, device=tile.device)
    col, row, frame = t % width, (t // width) % height, t // (height * width)
    valid = []
    for df, dh, dw in offsets:
        s = df * height * width + dh * width + dw
        if s >= n:
            valid.append(torch.zeros(0, dtype=torch.bool, device=tile.device))
            continue
        ok = tile[s:] == tile[:n - s]
        if not wrap:
            ok &= (col[s:] >= dw) & (row[s:] >= dh) & (frame[s:] >= df)
        valid.append(ok)
    return valid


def similarity_concentrate(x: torch.Tensor, grid: tuple[int, int, int],
                           params: FocusParams | None = None) -> SICResult:
    """Apply SIC (SPEC 2.2) to visual tokens ``x``.

    ``x`` is (T, D) in frame-major raster order, or (heads, T, d) whose heads
    are concatenated along features (and split back in ``tokens``);
    ``grid = (frames, height, width)`` with product T. Settings come from
    ``params`` (vector_size, block_*, block_wrap, threshold, m_tile).
    The threshold is compared in fp32; scores are clamped to [-1, 1].
    """
    params = params or FocusParams()
    shape = x.shape if isinstance(x, torch.Tensor) else None
    x2, grid = _as_tokens(x, grid)
    n, d = x2.shape
    vs = params.vector_size
    nv = -(-d // vs)
    device = x2.device

    # Per-vector zero flags and inverse norms; cosine = dot * (1/|a|) * (1/|b|),
    # so equal dot products and norms give bit-equal scores (exact ties).
    chunk = max(1, _CHUNK_BYTES // (4 * n * vs))
    nonzero_all, inv_all = _norms(x2, vs, chunk)
    # Tile id of each token: non-zero tokens before it // m_tile.
    tile = (torch.cumsum(nonzero_all.any(dim=1), 0) - 1) // params.m_tile
    offsets = block_offsets(params)
    frames, height, width = grid
    shifts = [df * height * width + dh * width + dw for df, dh, dw in offsets]
    invalid = [~ok for ok in _offset_validity(grid, offsets, tile, params.block_wrap)]
    threshold = torch.tensor(params.threshold, dtype=torch.float32)

    # Output buffer: heads were already concatenated into a fresh copy.
    shares = x2.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    out = x2.clone() if shares else x2
    similar = torch.empty(n, nv, dtype=torch.bool, device=device)
    root = torch.empty(n, nv, dtype=torch.int64, device=device)
    t_index = torch.arange(n, device=device)

    prod = torch.empty(n, chunk, vs, dtype=torch.float32, device=device)
    for j0 in range(0, nv, chunk):
        j1 = min(nv, j0 + chunk)
        c = j1 - j0
        xc = _vectors(x2, j0, j1, vs).contiguous()
        nonzero, inv = nonzero_all[:, j0:j1], inv_all[:, j0:j1]

        # Best candidate per vector; strict '>' keeps the first of equal scores.
        best = torch.full((n, c), -math.inf, dtype=torch.float32, device=device)
        best_shift = torch.zeros(n, c, dtype=torch.int64, device=device)
        for s, bad in zip(shifts, invalid):
            if s >= n:
                continue
            p = prod[:n - s, :c]
            torch.mul(xc[s:], xc[:n - s], out=p)
            score = p.sum(dim=2)
            score *= inv[s:]
            score *= inv[:n - s]
            score.clamp_(-1.0, 1.0)
            score.masked_fill_(bad[:, None] | ~nonzero[:n - s], -math.inf)
            better = score > best[s:]
            torch.maximum(best[s:], score, out=best[s:])
            best_shift[s:].masked_fill_(better, s)

        sim = nonzero & (best > threshold)
        ptr = torch.where(sim, t_index[:, None] - best_shift, t_index[:, None])
        # Pointer jumping: every pointer goes backwards, so this terminates.
        while True:
            nxt = torch.gather(ptr, 0, ptr)
            if torch.equal(nxt, ptr):
                break
            ptr = nxt
        similar[:, j0:j1] = sim
        root[:, j0:j1] = ptr
        if sim.any():
            _write_group_means(out, xc, ptr, j0 * vs, min(d, j1 * vs))

    zero = ~nonzero_all
    sparsity = float((zero.sum() + similar.sum()).item()) / (n * nv)
    tokens = out
    if len(shape) == 3:
        tokens = out.view(n, shape[0], shape[2]).permute(1, 0, 2).contiguous()
    return SICResult(tokens=tokens, zero=zero, similar=similar, root=root,
                     sparsity=sparsity)


def _write_group_means(out, xc, root, f0, f1):
    """Replace every group of this slot chunk by its fp32 mean (cast back).

    ``root`` is (T, c) token indices, ``xc`` the fp32 chunk (T, c, vs).
    Vectors of single-member groups are left untouched (bit-identical).
    """
    n, c, vs = xc.shape
    flat_root = (root * c + torch.arange(c, device=root.device)).view(-1)
    count = torch.bincount(flat_root, minlength=n * c)
    grouped = count[flat_root] > 1  # members (roots with followers included)
    members = grouped.nonzero().squeeze(1)
    t, j = members // c, members % c
    groups = flat_root[members]
    sums = torch.zeros(n * c, vs, dtype=torch.float32, device=xc.device)
    sums.index_put_((groups,), xc.view(n * c, vs)[members], accumulate=True)
    mean = sums[groups] / count[groups, None].to(torch.float32)

    block = out[:, f0:f1]
    if f1 - f0 == c * vs:
        block.view(n, c, vs)[t, j] = mean.to(out.dtype)
    else:  # last slot is zero-padded: edit a padded copy, copy back
        padded = torch.zeros(n, c * vs, dtype=out.dtype, device=out.device)
        padded[:, :f1 - f0] = block
        padded.view(n, c, vs)[t, j] = mean.to(out.dtype)
        block.copy_(padded[:, :f1 - f0])
