"""Run attention probabilities through the generated SEC in Amaranth's simulator.

:func:`simulate_sec` takes the arguments of the reference
(``focus_algo.sec.select_tokens(focus_algo.sec.importance(attn, visual,
text), k)``) and returns the same kept indices, computed by the RTL.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from amaranth.sim import Simulator

from ..params import FocusParams
from .analyzer import attn_layout
from .concentrator import SEC, sec_format

if TYPE_CHECKING:
    import torch

__all__ = ["SECRun", "SECInputError", "SECNaNError", "sec_beats", "simulate_sec"]

_TORCH_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


class SECInputError(ValueError):
    """Arguments :func:`simulate_sec` cannot run (shape, slice, k, dtype)."""


class SECNaNError(ValueError):
    """The SEC flagged a NaN importance (the reference rejects those too)."""


@dataclass(frozen=True)
class SECRun:
    """Result of :func:`simulate_sec`."""

    #: Kept visual-token indices (0-based within ``visual``), ascending, int64.
    kept: torch.Tensor
    #: Cycles from the first attention element accepted to ``done``, both
    #: counted (without backpressure: :func:`focus_hw.timing.sec_cycles`).
    cycles: int


def _check(attn, visual, text, k, params):
    """Validate; return the (rows, n) score matrix of the run and ``k``."""
    import torch

    if not isinstance(params, FocusParams):
        raise SECInputError(f"params must be a FocusParams, not {type(params).__name__}")
    try:
        fmt = sec_format(params)
    except ValueError as err:
        raise SECInputError(str(err)) from None
    if not isinstance(attn, torch.Tensor):
        raise SECInputError(f"attn must be a torch.Tensor, not {type(attn).__name__}")
    if attn.ndim == 4 and attn.shape[0] == 1:
        attn = attn[0]
    if attn.ndim != 3:
        raise SECInputError(
            f"attn must be (heads, Q, K) or (1, heads, Q, K), got shape {tuple(attn.shape)}"
        )
    expected = getattr(torch, _TORCH_DTYPES[fmt])
    if attn.dtype != expected:
        raise SECInputError(
            f"attn.dtype={attn.dtype} does not match params.dtype={fmt!r} (expected {expected})"
        )
    if not isinstance(visual, slice) or not isinstance(text, slice):
        raise SECInputError("visual and text must be slices")
    scores = attn[:, text, visual]
    heads, queries, n = scores.shape
    if queries == 0:
        raise SECInputError(
            f"text slice {text} selects no query rows of attn with Q={attn.shape[1]}"
        )
    if n == 0:
        raise SECInputError(
            f"visual slice {visual} selects no key columns of attn with K={attn.shape[2]}"
        )
    if n > params.max_tokens:
        raise SECInputError(f"{n} visual tokens exceed params.max_tokens={params.max_tokens}")
    try:
        k = operator.index(k)
    except TypeError:
        raise SECInputError(f"k must be an integer, not {type(k).__name__}") from None
    if not 1 <= k <= n:
        raise SECInputError(f"k must lie in [1, {n}], got {k}")
    return scores.reshape(heads * queries, n), k


def sec_beats(attn, visual, text, k, params: FocusParams) -> tuple[list[int], int, int]:
    """One run's ``attn`` payloads (raw bits, ``last`` on the final one) in
    :func:`simulate_sec`'s order, with the run's ``n`` and ``k``; validates
    the arguments as it does."""
    import torch

    scores, k = _check(attn, visual, text, k, params)
    n = scores.shape[1]
    bits = (scores.contiguous().view(torch.int16).reshape(-1).to(torch.int64) & 0xFFFF).tolist()
    layout = attn_layout(sec_format(params))
    beats = [
        layout.const({"data": value, "last": i == len(bits) - 1}).as_bits()
        for i, value in enumerate(bits)
    ]
    return beats, n, k


def simulate_sec(
    attn,
    visual: slice,
    text: slice,
    k: int,
    params: FocusParams,
    *,
    kept_ready: Callable[[int], bool] | None = None,
) -> SECRun:
    """Kept visual tokens of one SEC run, computed by the generated RTL.

    ``attn``: (heads, Q, K) or (1, heads, Q, K) attention probabilities as a
    torch tensor of ``params.dtype`` (float16 / bfloat16); rows ``text`` are
    the text queries, columns ``visual`` the visual keys (at most
    ``params.max_tokens``); ``k`` in ``[1, n_visual]``. The rows are streamed
    head by head, query by query. ``kept_ready(cycle)`` gives the kept
    stream's ``ready`` in each cycle (counted from the first element; default
    always high): refusals stall the encoder and add cycles. Raises
    :class:`SECInputError` before
    simulating for bad arguments, :class:`SECNaNError` when the RTL flags a
    NaN importance (as ``select_tokens`` refuses one).
    """
    import torch

    beats, n, k = sec_beats(attn, visual, text, k, params)
    dut = SEC(params)
    kept, flags = [], {}

    async def bench(ctx):
        ctx.set(dut.n, n)
        ctx.set(dut.k, k)
        ctx.set(dut.attn.valid, 1)
        cycle = 0
        for word in beats:
            ctx.set(dut.attn.payload.as_value(), word)
            while True:
                *_, ready = await ctx.tick().sample(dut.attn.ready)
                cycle += 1
                if ready:
                    break
        ctx.set(dut.attn.valid, 0)
        while True:
            ctx.set(dut.kept.ready, 1 if kept_ready is None else bool(kept_ready(cycle)))
            *_, valid, ready, payload, done, nan = await ctx.tick().sample(
                dut.kept.valid, dut.kept.ready, dut.kept.payload, dut.done, dut.nan
            )
            if valid and ready:
                kept.append((payload.index, payload.last))
            cycle += 1
            if done:
                flags.update(cycles=cycle, nan=nan)
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    if flags["nan"]:
        raise SECNaNError("importance contains NaN (flagged by the SEC's nan output)")
    indices = [index for index, _ in kept]
    lasts = [i for i, (_, last) in enumerate(kept) if last]
    if len(indices) != k or lasts != [k - 1]:
        raise RuntimeError(f"SEC emitted {len(indices)} indices (last flags at {lasts}) for k={k}")
    return SECRun(kept=torch.tensor(indices, dtype=torch.int64), cycles=flags["cycles"])
