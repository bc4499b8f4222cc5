"""The numerics of the SIC hardware, in numpy: the specification of its RTL.

:func:`sic_model` computes, bit for bit, what :class:`focus_hw.sic.SIC`
produces (:func:`focus_hw.simulate_sic` is tested to equal it). It follows
the method of :func:`focus_algo.similarity_concentrate` but fixes every
rounding step the way the hardware takes it. With ``x`` the operand vectors
(fp16 or bf16) widened exactly to fp32, ``L = sic_width`` (``sic_lanes``, at
most ``vector_size``) and every operation below one IEEE fp32 operation
rounded to nearest even:

Zero test
    A vector is zero when every element's magnitude bits are 0 (``-0.0``
    counts as zero, NaN does not). Zero vectors are never similar, never
    candidates and their own roots.

Dot products (:func:`dot`)
    Lane ``l`` accumulates elements ``l, l+L, l+2L, ...`` in that order,
    ``acc = fp32(acc + fp32(a*b))`` from ``acc = +0.0`` (the PE's MAC); the
    ``L`` lane sums are then added as a binary tree, pairing neighbours at
    every level ((0+1) + (2+3) for ``L = 4``). The squared magnitude
    ``n2 = x . x`` uses the same lanes.

Candidate arg-max (:func:`better`)
    Candidates are the block-window offsets in the order of
    :attr:`FocusParams.block_offsets`. A candidate is eligible when it is a
    non-zero vector of an earlier surviving token of the same M tile inside
    the window (no wrap across row/frame edges unless ``block_wrap``) and its
    dot product ``d`` is not NaN. No divide or square root is taken: since
    ``|x|`` is common to all candidates, candidate ``b`` beats the current
    best ``a`` when ``sign(d_b) > sign(d_a)``, or when the signs are equal and
    non-zero and ``fp32(fp32(d_b*d_b) * n2_a)`` is greater (for positive
    signs; smaller for negative ones) than ``fp32(fp32(d_a*d_a) * n2_b)``.
    Equal scores keep the earlier candidate (the tie rule of the reference).

Threshold compare (:func:`passes`)
    With ``T2 = fp32(t*t)`` of ``t = fp32(threshold)`` and ``v =
    fp32(fp32(T2 * n2_x) * n2_best)``: for ``threshold >= 0`` the best
    candidate is similar when ``d > 0`` and ``fp32(d*d) > v``; for a negative
    threshold when ``d >= 0`` or ``fp32(d*d) < v``. A threshold of 1 or more
    (or ``math.inf``) never merges, as in the reference.

Pointer chasing
    A similar vector takes its candidate's root, which is final because
    candidates come earlier in the stream.

Group mean (the average-update unit)
    Per root, a running fp32 sum in token order (the root's widened vector
    first, then ``sum = fp32(sum + x)`` per member) and a member count ``n``.
    Every member of a group with ``n >= 2`` becomes ``narrow(fp32(sum *
    R[n]))`` with ``R[n] = fp32(1 / n)`` from a reciprocal table (no
    divider) and ``narrow`` numpy's round-to-nearest-even cast to the operand
    format; a group of one keeps ``narrow(sum)``, its own value.

Tokens that are zero in every feature are pruned tokens: they are not fed to
the hardware, do not count towards ``m_tile`` and come out unchanged.

Agreement with the fp32 reference: the decisions equal
:func:`focus_algo.similarity_concentrate` on every vector whose reference
score lies farther than :data:`DECISION_BOUND` from the threshold and from
the runner-up candidate's score (tested on planted and random tiles).
Measured by ``benchmarks/bench_sic_model.py --layers 2`` (paper
configuration; the built-in video's 5 GEMM inputs of 2 layers, 1,537,536
vectors, and 46,592 vectors of random tokens with correlation 0.7 and 0.95),
for fp16 and for bf16: no decision differs, and a hardware group mean lies at
most one spacing of the operand format (one ulp) from the fp32 mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import FocusParams

__all__ = [
    "SICRun",
    "DECISION_BOUND",
    "check_input",
    "dot",
    "better",
    "passes",
    "sic_model",
    "candidate_shifts",
    "vector_bits",
    "magnitude_mask",
]

#: Score distance (cosine units) from the threshold and from the runner-up
#: beyond which the hardware's decision equals the fp32 reference's.
DECISION_BOUND = 1e-5


def magnitude_mask(params: FocusParams) -> int:
    """Bits of an operand other than its sign: all zero for +-0.0."""
    return (1 << (params.operand_bits - 1)) - 1


def vector_bits(x: np.ndarray, params: FocusParams) -> np.ndarray:
    """Raw bits (T, V, vector_size) of tokens ``x``, the last slot zero-padded."""
    n, dim = x.shape
    vs = params.vector_size
    nv = -(-dim // vs)
    bits_type = params.format.bits_type
    padded = np.zeros((n, nv * vs), bits_type)
    padded[:, :dim] = x.view(bits_type)
    return padded.reshape(n, nv, vs)


@dataclass(frozen=True)
class SICRun:
    """SIC of one GEMM input, as the hardware computes it.

    ``zero``, ``similar`` (bool) and ``root`` (int64 token index) are (T, V)
    like :class:`focus_algo.sic.SICResult`; ``tokens`` is (T, D) in the
    operand type; ``cycles`` the SIC's clock cycles without backpressure
    (its passes overlapped, :func:`focus_hw.timing.sic_run_cycles`).
    """

    zero: np.ndarray
    similar: np.ndarray
    root: np.ndarray
    tokens: np.ndarray
    cycles: int

    @property
    def sparsity(self) -> float:
        return float((self.zero.sum() + self.similar.sum()) / self.zero.size)


def candidate_shifts(grid, params: FocusParams) -> list[tuple[tuple[int, int, int], int]]:
    """``((df, dh, dw), shift)`` of every block-window offset in tie-break order."""
    _, height, width = grid
    return [
        ((df, dh, dw), df * height * width + dh * width + dw) for df, dh, dw in params.block_offsets
    ]


def check_input(x, grid, params: FocusParams) -> tuple[int, int, int]:
    """Validate a SIC input; returns the grid. Raises ValueError naming the problem."""
    if not isinstance(params, FocusParams):
        raise ValueError(f"params must be FocusParams, not {type(params).__name__}")
    if not params.format.is_float:
        raise ValueError(
            f"SIC hardware needs a float operand format, params.dtype={params.dtype!r}"
        )
    want = np.dtype(params.format.np_type)
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise ValueError(
            f"x must be a 2-D numpy array (T, D), got {getattr(x, 'shape', type(x).__name__)}"
        )
    if x.dtype != want:
        raise ValueError(
            f"x.dtype={x.dtype} does not match params.dtype={params.dtype!r} (expected {want})"
        )
    if x.shape[1] < 1:
        raise ValueError(f"x has D={x.shape[1]} features; need D >= 1")
    try:
        grid = tuple(int(g) for g in grid)
    except (TypeError, ValueError):
        raise ValueError(f"grid must be (frames, height, width), got {grid!r}") from None
    if len(grid) != 3 or min(grid) < 1:
        raise ValueError(f"grid must be three integers >= 1 (frames, height, width), got {grid}")
    frames, height, width = grid
    if frames * height * width != x.shape[0]:
        raise ValueError(
            f"grid {grid} has {frames * height * width} tokens but x has T={x.shape[0]}"
        )
    if height * width > params.max_frame_tokens:
        raise ValueError(
            f"a frame of {height}x{width}={height * width} patches exceeds "
            f"params.max_frame_tokens={params.max_frame_tokens}"
        )
    if x.shape[0] > params.max_tokens:
        raise ValueError(f"T={x.shape[0]} tokens exceed params.max_tokens={params.max_tokens}")
    reach = max((s for _, s in candidate_shifts(grid, params)), default=0)
    if reach >= params.sic_table_depth:
        raise ValueError(
            f"grid {grid}: the block window reaches back {reach} tokens but the "
            f"similarity table holds {params.sic_table_depth} "
            f"(rows wider than isqrt(max_frame_tokens)?)"
        )
    return grid


def dot(a: np.ndarray, b: np.ndarray, lanes: int) -> np.ndarray:
    """fp32 dot products over the last axis, in the lane and tree order of
    the hardware (module docstring)."""
    with np.errstate(all="ignore"):
        acc = np.zeros(a.shape[:-1] + (lanes,), np.float32)
        for c in range(0, a.shape[-1], lanes):
            acc = acc + a[..., c : c + lanes] * b[..., c : c + lanes]
        while acc.shape[-1] > 1:
            acc = acc[..., 0::2] + acc[..., 1::2]
    return acc[..., 0]


def _sign(d: np.ndarray) -> np.ndarray:
    return (d > 0).astype(np.int8) - (d < 0).astype(np.int8)


def better(d_b, n2_b, d_a, n2_a) -> np.ndarray:
    """Whether candidate ``b`` (dot ``d_b``, squared norm ``n2_b``) strictly
    beats ``a``, compared by cross-multiplied squares (module docstring)."""
    sb, sa = _sign(d_b), _sign(d_a)
    with np.errstate(all="ignore"):
        p_b = (d_b * d_b) * n2_a
        p_a = (d_a * d_a) * n2_b
    same = np.where(sb > 0, p_b > p_a, p_b < p_a)
    return np.where(sb != sa, sb > sa, (sb != 0) & same)


def threshold_square(params: FocusParams) -> np.float32 | None:
    """``T2 = fp32(t * t)`` with ``t = fp32(threshold)``; None when SIC never merges."""
    if params.threshold >= 1.0:
        return None
    t = np.float32(params.threshold)
    return t * t


def passes(d, n2_x, n2_c, params: FocusParams) -> np.ndarray:
    """Whether a best candidate's cosine is strictly above the threshold."""
    t2 = threshold_square(params)
    if t2 is None:
        return np.zeros(np.shape(d), bool)
    with np.errstate(all="ignore"):
        v = (t2 * n2_x) * n2_c
        d2 = d * d
    if params.threshold >= 0:
        return (d > 0) & (d2 > v)
    return (d >= 0) | (d2 < v)


def sic_model(x: np.ndarray, grid, params: FocusParams) -> SICRun:
    """SIC of ``x`` (T, D) in the operand type, as the hardware computes it."""
    from ..timing import sic_run_cycles

    grid = check_input(x, grid, params)
    frames, height, width = grid
    n, d = x.shape
    vs, lanes = params.vector_size, params.sic_width
    nv = -(-d // vs)
    vec_bits = vector_bits(x, params)
    xw = vec_bits.view(x.dtype).astype(np.float32)

    zero = ~(vec_bits & magnitude_mask(params)).any(axis=2)
    alive = ~zero.all(axis=1)  # surviving (fed) tokens
    tile = (np.cumsum(alive) - 1) // params.m_tile
    t_idx = np.arange(n)
    col, row, frame = t_idx % width, (t_idx // width) % height, t_idx // (height * width)
    n2 = dot(xw, xw, lanes)

    has = np.zeros((n, nv), bool)
    best_d = np.zeros((n, nv), np.float32)
    best_n2 = np.zeros((n, nv), np.float32)
    best_shift = np.zeros((n, nv), np.int64)
    for (df, dh, dw), s in candidate_shifts(grid, params):
        if s == 0 or s >= n:
            continue
        ok = alive[s:] & alive[: n - s] & (tile[s:] == tile[: n - s])
        if not params.block_wrap:
            ok &= (col[s:] >= dw) & (row[s:] >= dh) & (frame[s:] >= df)
        d_c = dot(xw[s:], xw[: n - s], lanes)
        n2_c = n2[: n - s]
        ok = ok[:, None] & ~zero[s:] & ~zero[: n - s] & ~np.isnan(d_c)
        win = ok & (~has[s:] | better(d_c, n2_c, best_d[s:], best_n2[s:]))
        best_d[s:] = np.where(win, d_c, best_d[s:])
        best_n2[s:] = np.where(win, n2_c, best_n2[s:])
        best_shift[s:] = np.where(win, s, best_shift[s:])
        has[s:] |= win

    similar = has & passes(best_d, n2, best_n2, params)
    root = np.where(similar, t_idx[:, None] - best_shift, t_idx[:, None])
    for t in range(n):  # candidates come first: their roots are final
        root[t] = np.where(similar[t], root[root[t], np.arange(nv)], root[t])

    tokens = _group_means(xw, root, x.dtype)
    tokens = tokens.reshape(n, nv * vs)[:, :d].copy()

    per_tile = np.bincount(tile[alive], minlength=0) if alive.any() else []
    cycles = sic_run_cycles([int(m) for m in per_tile for _ in range(nv)], params)
    return SICRun(zero=zero, similar=similar, root=root, tokens=tokens, cycles=cycles)


def _group_means(xw, root, dtype) -> np.ndarray:
    """Operand values (T, V, vs) of every vector replaced by its group's mean."""
    n, nv, vs = xw.shape
    slot = np.arange(nv)
    sums = np.zeros_like(xw)
    count = np.zeros((n, nv), np.int64)
    with np.errstate(all="ignore"):
        for t in range(n):
            r = root[t]
            own = r == t
            sums[r, slot] = np.where(own[:, None], xw[t], sums[r, slot] + xw[t])
            count[r, slot] += 1
        recip = np.float32(1) / np.maximum(count, 1).astype(np.float32)
        mean = np.where((count > 1)[..., None], sums * recip[..., None], sums)
    return mean[root, slot].astype(dtype)
