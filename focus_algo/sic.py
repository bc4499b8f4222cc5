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


def _token_nonzero(x: torch.Tensor, step: int) -> torch.Tensor:
    """(T,) bool: token has at least one non-zero element."""
    nz = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for f0 in range(0, x.shape[1], step):
        nz |= (x[:, f0:f0 + step] != 0).any(dim=1)
    return nz


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

    # Tile id of each token: non-zero tokens before it // m_tile.
    token_nz = _token_nonzero(x2, max(vs, _CHUNK_BYTES // (4 * n) // vs * vs))
    tile = (torch.cumsum(token_nz, 0) - 1) // params.m_tile
    offsets = block_offsets(params)
    frames, height, width = grid
    shifts = [df * height * width + dh * width + dw for df, dh, dw in offsets]
    invalid = [~ok for ok in _offset_validity(grid, offsets, tile, params.block_wrap)]
    threshold = torch.tensor(params.threshold, dtype=torch.float32)

    # Output buffer: heads were already concatenated into a fresh copy.
    shares = x2.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    out = x2.clone() if shares else x2
    zero = torch.empty(n, nv, dtype=torch.bool, device=device)
    similar = torch.empty(n, nv, dtype=torch.bool, device=device)
    root = torch.empty(n, nv, dtype=torch.int64, device=device)
    t_index = torch.arange(n, device=device)

    chunk = max(1, _CHUNK_BYTES // (4 * n * vs))
    prod = torch.empty(n, chunk, vs, dtype=torch.float32, device=device)
    for j0 in range(0, nv, chunk):
        j1 = min(nv, j0 + chunk)
        c = j1 - j0
        f0, f1 = j0 * vs, min(d, j1 * vs)
        xc = torch.zeros(n, c * vs, dtype=torch.float32, device=device)
        xc[:, :f1 - f0] = x2[:, f0:f1]
        xc = xc.view(n, c, vs)
        nonzero = (xc != 0).any(dim=2)
        # Unit vectors (zero where the norm is 0): cosine = one dot product.
        norm = torch.linalg.vector_norm(xc, dim=2)
        inv = torch.where(norm > 0, 1.0 / norm, 0.0)
        unit = xc * inv[:, :, None]

        # Best candidate per vector; strict '>' keeps the first of equal scores.
        best = torch.full((n, c), -math.inf, dtype=torch.float32, device=device)
        best_shift = torch.zeros(n, c, dtype=torch.int64, device=device)
        for s, bad in zip(shifts, invalid):
            if s >= n:
                continue
            p = prod[:n - s, :c]
            torch.mul(unit[s:], unit[:n - s], out=p)
            score = p.sum(dim=2).clamp_(-1.0, 1.0)
            score.masked_fill_(bad[:, None] | ~nonzero[:n - s], -math.inf)
            better = score > best[s:]
            torch.maximum(best[s:], score, out=best[s:])
            best_shift[s:].masked_fill_(better, s)
        del unit

        sim = nonzero & (best > threshold)
        ptr = torch.where(sim, t_index[:, None] - best_shift, t_index[:, None])
        # Pointer jumping: every pointer goes backwards, so this terminates.
        while True:
            nxt = torch.gather(ptr, 0, ptr)
            if torch.equal(nxt, ptr):
                break
            ptr = nxt
        zero[:, j0:j1] = ~nonzero
        similar[:, j0:j1] = sim
        root[:, j0:j1] = ptr
        if sim.any():
            _write_group_means(out, xc, ptr, f0, f1)

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
