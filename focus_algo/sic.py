"""Similarity concentration (SIC): block- and vector-level redundancy removal.

:func:`similarity_concentrate` is the torch reference of :ref:`method-sic`. Each
token's features are cut into vectors of ``params.vector_size``; every vector
slot ``j`` is handled on its own. A vector is compared (cosine similarity,
fp32) with the same slot of up to ``block_frames*block_height*block_width - 1``
earlier tokens of its spatio-temporal window; if the best score is strictly
above ``params.threshold`` it points to that candidate. Pointers are followed
to their root and each group is replaced by the fp32 mean of its members.

Where the method (:ref:`method-sic`) is silent, this reference decides:

* a vector is zero when all its elements compare equal to 0 (-0.0 included);
  zero vectors are never similar, never candidates, and their own roots;
* scores are clamped to [-1, 1] and compared with the threshold in fp32, so
  ``threshold=1.0`` never merges (not even identical vectors);
* a non-zero vector whose fp32 norm is 0 (underflow) scores 0; NaN scores
  never win and never pass the threshold.

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

    ``tokens`` has the shape and dtype of the input, every group replaced by
    its mean; ``zero`` (all-zero vectors), ``similar`` (vectors merged into
    an earlier one) and ``root`` (token index of each vector's group root,
    its own index for roots, zero and unique vectors) are (T, V) with
    V = ceil(D / vector_size). ``sparsity = (zero + similar) / (T * V)``.
    """

    tokens: torch.Tensor
    zero: torch.Tensor
    similar: torch.Tensor
    root: torch.Tensor
    sparsity: float


def block_offsets(params: FocusParams) -> list[tuple[int, int, int]]:
    """Candidate offsets (df, dh, dw) in lexicographic order, without (0,0,0).

    This order is the tie-break order: the first best candidate wins
    (:attr:`FocusParams.block_offsets`, which the hardware uses too).
    """
    return list(params.block_offsets)


def _as_tokens(x, grid) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Validate the input and return it as (T, D) (heads concatenated)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"x must have a floating dtype, got {x.dtype}")
    if x.ndim not in (2, 3):
        raise ValueError(
            f"x must be (T, D) or (heads, T, d), got ndim={x.ndim} shape {tuple(x.shape)}"
        )
    try:
        grid = tuple(grid)
    except TypeError:
        raise ValueError(f"grid must be (frames, height, width), got {grid!r}") from None
    if len(grid) != 3 or any(not isinstance(g, int) or isinstance(g, bool) or g < 1 for g in grid):
        raise ValueError(f"grid must be three integers >= 1 (frames, height, width), got {grid!r}")
    tokens = x.shape[-2]
    if math.prod(grid) != tokens:
        raise ValueError(
            f"grid {grid} has {math.prod(grid)} tokens but x has "
            f"T={tokens} (shape {tuple(x.shape)})"
        )
    if x.shape[-1] < 1 or (x.ndim == 3 and x.shape[0] < 1):
        raise ValueError(f"x has no features (shape {tuple(x.shape)})")
    if x.ndim == 3:
        x = x.permute(1, 0, 2).reshape(tokens, -1)
    return x.contiguous(), grid


def _load_vectors(x: torch.Tensor, j0: int, j1: int, vs: int, buf: torch.Tensor) -> torch.Tensor:
    """Copy vector slots j0..j1-1 of every token into ``buf`` as fp32
    (T, j1-j0, vs), zero-padding the last slot."""
    n, d = x.shape
    c, f0, f1 = j1 - j0, j0 * vs, min(d, j1 * vs)
    xc = buf[: n * c * vs].view(n, c * vs)
    xc[:, : f1 - f0] = x[:, f0:f1]
    xc[:, f1 - f0 :] = 0
    return xc.view(n, c, vs)


def _candidate_offsets(grid, params, tile) -> list[tuple[int, torch.Tensor]]:
    """(shift s, invalid) per window offset in tie-break order, where
    ``invalid[t - s]`` says token t may NOT compare with token t - s.

    Checks the window edges (sequence start, or row/column/frame edges when
    ``block_wrap`` is off) and the M-tile boundary. Tile ids of all-zero
    tokens do not matter: their vectors are zero, never similar nor candidates.
    """
    frames, height, width = grid
    n = frames * height * width
    t = torch.arange(n, device=tile.device)
    col, row, frame = t % width, (t // width) % height, t // (height * width)
    result = []
    for df, dh, dw in block_offsets(params):
        s = df * height * width + dh * width + dw
        if s >= n:
            continue
        ok = tile[s:] == tile[: n - s]
        if not params.block_wrap:
            ok &= (col[s:] >= dw) & (row[s:] >= dh) & (frame[s:] >= df)
        result.append((s, ~ok))
    return result


@torch.no_grad()
def similarity_concentrate(
    x: torch.Tensor, grid: tuple[int, int, int], params: FocusParams | None = None
) -> SICResult:
    """Apply SIC (:ref:`method-sic`) to visual tokens ``x``.

    ``x`` is (T, D) in frame-major raster order, or (heads, T, d) whose heads
    are concatenated along features (and split back in ``tokens``);
    ``grid = (frames, height, width)`` with product T. Settings come from
    ``params`` (vector_size, block_*, block_wrap, threshold, m_tile).
    Raises ValueError for a non-floating dtype, a wrong ndim or a grid that
    does not match T.
    """
    params = params or FocusParams()
    x2, grid = _as_tokens(x, grid)
    n, d = x2.shape
    vs = params.vector_size
    nv = -(-d // vs)
    device = x2.device

    # Tile id of each token: non-zero tokens before it // m_tile.
    token_nz = x2.any(dim=1)
    tile = (torch.cumsum(token_nz, 0) - 1) // params.m_tile
    candidates = _candidate_offsets(grid, params, tile)
    threshold = torch.tensor(params.threshold, dtype=torch.float32)

    # Output buffer (no second copy if concatenating heads already made one).
    shares = x2.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    out = x2.clone() if shares else x2
    zero = torch.empty(n, nv, dtype=torch.bool, device=device)
    similar = torch.empty(n, nv, dtype=torch.bool, device=device)
    root = torch.empty(n, nv, dtype=torch.int64, device=device)
    t_index = torch.arange(n, device=device)[:, None]

    # Work buffers, allocated once (fresh large allocations page-fault).
    chunk = min(nv, max(1, _CHUNK_BYTES // (4 * n * vs)))
    xbuf, prodbuf, sumbuf = torch.empty(3, n * chunk * vs, dtype=torch.float32, device=device)
    for j0 in range(0, nv, chunk):
        j1 = min(nv, j0 + chunk)
        c = j1 - j0
        xc = _load_vectors(x2, j0, j1, vs, xbuf)
        prod = prodbuf[: n * c * vs].view(n, c, vs)
        # cosine = dot * (1/|a|) * (1/|b|), taking 1/0 as 0 (score 0); equal
        # dot products and norms give bit-equal scores (exact ties).
        norm = torch.linalg.vector_norm(xc, dim=2)
        inv = torch.where(norm > 0, 1.0 / norm, 0.0)
        nonzero = norm > 0
        # Norm 0 (underflow) or NaN in a non-zero token: look at the elements.
        maybe = (~nonzero & token_nz[:, None]).nonzero(as_tuple=True)
        if maybe[0].numel():
            nonzero[maybe] = xc[maybe].any(dim=1)
        zero_c = ~nonzero

        # Best candidate per vector; strict '>' keeps the first of equal scores.
        best = torch.full((n, c), -math.inf, dtype=torch.float32, device=device)
        best_shift = torch.zeros(n, c, dtype=torch.int64, device=device)
        for s, bad in candidates:
            p = prod[: n - s]
            torch.mul(xc[s:], xc[: n - s], out=p)
            score = p.sum(dim=2)
            score *= inv[s:]
            score *= inv[: n - s]
            score.clamp_(-1.0, 1.0)
            score.masked_fill_(bad[:, None] | zero_c[: n - s], -math.inf)
            better = score > best[s:]
            torch.maximum(best[s:], score, out=best[s:])
            best_shift[s:].masked_fill_(better, s)

        sim = nonzero & (best > threshold)
        ptr = torch.where(sim, t_index - best_shift, t_index)
        # Pointer jumping: every pointer goes backwards, so this terminates.
        while True:
            nxt = torch.gather(ptr, 0, ptr)
            if torch.equal(nxt, ptr):
                break
            ptr = nxt
        zero[:, j0:j1] = zero_c
        similar[:, j0:j1] = sim
        root[:, j0:j1] = ptr
        if sim.any():
            sums = sumbuf[: n * c * vs].view(n * c, vs).zero_()
            _write_group_means(out, xc, ptr, sums, j0 * vs, min(d, j1 * vs))

    sparsity = float((zero.sum() + similar.sum()).item()) / (n * nv)
    tokens = out
    if x.ndim == 3:
        tokens = out.view(n, x.shape[0], x.shape[2]).permute(1, 0, 2).contiguous()
    return SICResult(tokens=tokens, zero=zero, similar=similar, root=root, sparsity=sparsity)


def _write_group_means(out, xc, root, sums, f0, f1):
    """Replace every group of this slot chunk by its fp32 mean (cast back).

    ``root`` is (T, c) token indices, ``xc`` the fp32 chunk (T, c, vs),
    ``sums`` a zeroed fp32 (T*c, vs) work buffer.
    Vectors of single-member groups are left untouched (bit-identical).
    """
    n, c, vs = xc.shape
    flat_root = (root * c + torch.arange(c, device=root.device)).view(-1)
    count = torch.bincount(flat_root, minlength=n * c)
    sums.index_put_((flat_root,), xc.view(n * c, vs), accumulate=True)
    sums /= count.clamp(min=1).to(torch.float32)[:, None]  # group means at roots
    members = (count[flat_root] > 1).nonzero().squeeze(1)  # of groups of 2 or more
    t, j = members // c, members % c
    mean = sums[flat_root[members]]

    block = out[:, f0:f1]
    if f1 - f0 == c * vs:
        block.view(n, c, vs)[t, j] = mean.to(out.dtype)
    else:  # last slot is zero-padded: edit a padded copy, copy back
        padded = torch.zeros(n, c * vs, dtype=out.dtype, device=out.device)
        padded[:, : f1 - f0] = block
        padded.view(n, c, vs)[t, j] = mean.to(out.dtype)
        block.copy_(padded[:, : f1 - f0])
