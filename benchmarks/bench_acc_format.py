"""Numerical cost of acc_format="operand" (partial sums held in fp16/bf16)
against "wide" (fp32) on GEMMs.

Both accumulations run in the Focus order (focus_algo.golden.focus_gemm_reference,
checked bit for bit against a scalar model in tests/test_golden.py): per K
chunk of vector_size a partial sum from +0.0, one rounded step per k, the
chunks' partial sums added to the output in K order, every vector through the
array (no SIC). GEMMs: the projections of the built-in video workload
(focus_algo.workload; its visual tokens are the activations, the weights are
seeded random stand-ins N(0, 1/K), not a real model's), one per input site,
and random GEMMs (N(0, 1) activations). Each GEMM is evaluated on a sample of
tokens and output columns. Prints, per GEMM, the error of "operand" against
"wide" normalised by the RMS of the wide output (max and RMS of
|operand - wide| / rms(wide)) and, for scale, the RMS error of "wide"
against the exact (float64) product.

    python benchmarks/bench_acc_format.py [--layers 1] [--tokens 128] [--cols 64]
"""

import argparse

import numpy as np
import pandas as pd
import torch

from focus_algo.golden import focus_gemm_reference
from focus_algo.workload import video_workload
from focus_hw import FocusParams


def errors(a_bits, w_bits, params: FocusParams) -> dict:
    """Normalised errors of the operand-format accumulation of ``a @ w``."""
    wide_p = params.replace(acc_format="wide")
    op_p = params.replace(acc_format="operand")
    wide = wide_p.acc.decode(focus_gemm_reference(a_bits, w_bits, wide_p)).astype(np.float64)
    op = op_p.acc.decode(focus_gemm_reference(a_bits, w_bits, op_p)).astype(np.float64)
    a, w = (params.format.decode(b).astype(np.float64) for b in (a_bits, w_bits))
    rms = np.sqrt(np.mean(wide**2))
    err = np.abs(op - wide) / rms
    return {
        "max_err": err.max(),
        "rms_err": np.sqrt(np.mean(err**2)),
        "wide_vs_fp64": np.sqrt(np.mean((wide - a @ w) ** 2)) / rms,
        "nonfinite": int((~np.isfinite(op)).sum()),
    }


def stand_in_weights(rng, k: int, n: int, params: FocusParams) -> np.ndarray:
    return params.format.encode(rng.standard_normal((k, n)) / np.sqrt(k))


def video_rows(args, params: FocusParams, rng) -> list[dict]:
    work = video_workload(
        layers=args.layers, hidden=args.hidden, ffn=args.ffn, heads=args.heads, dtype=params.dtype
    )
    first = {}  # one projection per input site (the others share its K)
    for gemm, site, k, n in work.shape.linears():
        first.setdefault(site, (gemm, k, n))
    rows = []
    for layer, inputs in work:
        for site, (gemm, k, n) in first.items():
            x = inputs[site]
            pick = np.sort(rng.choice(x.shape[0], min(args.tokens, x.shape[0]), replace=False))
            raw = x[torch.from_numpy(pick)].contiguous().view(torch.int16).numpy()
            a = raw.view(params.format.bits_type)
            w = stand_in_weights(rng, k, min(args.cols, n), params)
            rows.append({"gemm": f"video L{layer} {gemm}", "K": k, **errors(a, w, params)})
    return rows


def random_rows(args, params: FocusParams, rng) -> list[dict]:
    rows = []
    for k in args.random_k:
        a = params.format.encode(rng.standard_normal((args.tokens, k)))
        w = stand_in_weights(rng, k, args.cols, params)
        rows.append({"gemm": "random N(0,1)", "K": k, **errors(a, w, params)})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", nargs="+", default=["fp16", "bf16"], choices=["fp16", "bf16"])
    ap.add_argument("--layers", type=int, default=1, help="video decoder layers")
    ap.add_argument("--tokens", type=int, default=128, help="sampled tokens (GEMM rows)")
    ap.add_argument("--cols", type=int, default=64, help="output columns (GEMM N)")
    ap.add_argument("--hidden", type=int, default=3584, help="video widths: Qwen2-7B's")
    ap.add_argument("--ffn", type=int, default=18944)
    ap.add_argument("--heads", type=int, default=28)
    ap.add_argument("--random-k", type=int, nargs="*", default=[896, 3584, 18944])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(
        "video GEMMs: activations from the built-in video workload, weights are "
        "seeded random stand-ins N(0, 1/K)"
    )
    print(f"errors normalised by rms(wide output); {args.tokens} tokens x {args.cols} columns\n")
    for dtype in args.dtype:
        params = FocusParams(dtype=dtype)
        rng = np.random.default_rng(args.seed)
        table = pd.DataFrame(video_rows(args, params, rng) + random_rows(args, params, rng))
        print(f"{dtype} (vector_size {params.vector_size}):")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print()


if __name__ == "__main__":
    main()
