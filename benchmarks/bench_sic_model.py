"""How far the SIC hardware's numerics (focus_hw.sic.model) are from the fp32
reference (focus_algo.similarity_concentrate).

For every GEMM input of the built-in video workload, and for random tokens
with planted correlation, it prints: the fraction of vectors whose similar
flag differs, how many of those lie within DECISION_BOUND of the threshold or
of the runner-up score (fp64 cosines), and the largest difference between a
hardware group mean and the reference's fp32 mean (absolute, and in units of
the operand format's spacing at the reference value).

    python benchmarks/bench_sic_model.py [--layers 2] [--dtype fp16]
"""

import argparse

import numpy as np
import torch

from focus_algo import similarity_concentrate
from focus_algo.workload import video_workload
from focus_hw import FocusParams
from focus_hw.formats import operand_format
from focus_hw.sic.model import DECISION_BOUND, candidate_shifts, sic_model


def _scores(x: np.ndarray, grid, params: FocusParams) -> np.ndarray:
    """fp64 cosine of every vector with each window candidate (-inf where the
    candidate is not eligible), shape (offsets, T, V)."""
    n, d = x.shape
    vs = params.vector_size
    nv = -(-d // vs)
    xf = np.zeros((n, nv * vs))
    xf[:, :d] = x.astype(np.float64)
    xf = xf.reshape(n, nv, vs)
    norm = np.linalg.norm(xf, axis=2)
    alive = norm.any(axis=1)
    tile = (np.cumsum(alive) - 1) // params.m_tile
    _, height, width = grid
    t = np.arange(n)
    col, row, frame = t % width, (t // width) % height, t // (height * width)
    out = []
    for (df, dh, dw), s in candidate_shifts(grid, params):
        cos = np.full((n, nv), -np.inf)
        if 0 < s < n:
            ok = alive[s:] & alive[: n - s] & (tile[s:] == tile[: n - s])
            if not params.block_wrap:
                ok &= (col[s:] >= dw) & (row[s:] >= dh) & (frame[s:] >= df)
            with np.errstate(all="ignore"):
                c = (xf[s:] * xf[: n - s]).sum(2) / (norm[s:] * norm[: n - s])
            good = ok[:, None] & (norm[s:] > 0) & (norm[: n - s] > 0)
            cos[s:] = np.where(good, np.clip(c, -1, 1), -np.inf)
        out.append(cos)
    return np.stack(out)


def compare(x: np.ndarray, grid, params: FocusParams) -> dict:
    fmt = operand_format(params.dtype)
    hw = sic_model(x, grid, params)
    ref = similarity_concentrate(
        torch.from_numpy(x.view(fmt.bits_type).astype(np.int32))
        .to(torch.int16)
        .view(fmt.torch_dtype),
        grid,
        params,
    )
    ref_sim = ref.similar.numpy()
    differ = hw.similar != ref_sim
    scores = np.sort(_scores(x, grid, params), axis=0)
    best = scores[-1]
    runner = scores[-2] if len(scores) > 1 else np.full_like(best, -np.inf)
    with np.errstate(invalid="ignore"):
        near = (np.abs(best - params.threshold) <= DECISION_BOUND) | (
            best - runner <= DECISION_BOUND
        )
    # Means: compare where both made the same groups.
    same = np.all((hw.root == ref.root.numpy()), axis=1)
    ref_tok = ref.tokens.float().numpy()[same]
    hw_tok = hw.tokens.astype(np.float32)[same]
    spacing = np.abs(np.spacing(ref_tok.astype(fmt.np_type)).astype(np.float32))
    diff = np.abs(hw_tok - ref_tok)
    return {
        "vectors": differ.size,
        "differ": int(differ.sum()),
        "differ_outside_bound": int((differ & ~near).sum()),
        "max_abs_mean_diff": float(diff.max(initial=0.0)),
        "max_mean_diff_spacings": float((diff / spacing).max(initial=0.0)),
        "sparsity": hw.sparsity,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16"])
    args = ap.parse_args()
    params = FocusParams(dtype=args.dtype)
    work = video_workload(layers=args.layers, dtype=args.dtype)
    grid = (work.shape.frames, work.shape.height, work.shape.width)
    rows = []
    for layer, inputs in work:
        for site, t in inputs.items():
            x = t.contiguous().view(torch.int16).numpy().view(operand_format(args.dtype).np_type)
            rows.append((f"video L{layer} {site}", compare(x, grid, params)))
    rng = np.random.default_rng(0)
    for rho in (0.7, 0.95):
        base = rng.standard_normal((16 * 13 * 14, 256))
        x = base.copy()
        for t in range(1, len(x)):
            x[t] = rho * x[t - 1] + np.sqrt(1 - rho * rho) * base[t]
        x = x.astype(operand_format(args.dtype).np_type)
        rows.append((f"random rho={rho}", compare(x, (16, 13, 14), params)))

    total = sum(r["vectors"] for _, r in rows)
    print(
        f"{'input':28s} {'vectors':>8s} {'sparsity':>8s} {'differ':>8s} {'outside':>8s} "
        f"{'max |mean diff|':>16s} {'(spacings)':>10s}"
    )
    for name, r in rows:
        print(
            f"{name:28s} {r['vectors']:8d} {r['sparsity']:8.3f} {r['differ']:8d} "
            f"{r['differ_outside_bound']:8d} {r['max_abs_mean_diff']:16.3g} "
            f"{r['max_mean_diff_spacings']:10.2f}"
        )
    for label, pick in (("video", "video"), ("random", "random")):
        sel = [r for n, r in rows if n.startswith(pick)]
        v = sum(r["vectors"] for r in sel)
        print(
            f"{label}: decisions differ on {sum(r['differ'] for r in sel) / v:.2e} of "
            f"{v} vectors ({sum(r['differ_outside_bound'] for r in sel)} outside the bound); "
            f"largest mean difference {max(r['max_mean_diff_spacings'] for r in sel):.2f} "
            f"spacings of {args.dtype}"
        )
    print(f"all inputs: {total} vectors")


if __name__ == "__main__":
    main()
