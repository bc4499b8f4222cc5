"""Run tokens through the generated SIC in Amaranth's simulator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from ..params import FocusParams
from ..simulate import pack_row
from .model import SICRun, check_input, magnitude_mask, vector_bits
from .sic import SIC, input_layout, output_layout

__all__ = [
    "simulate_sic",
    "sic_passes",
    "sic_beats",
    "decode_outputs",
    "Beat",
    "enable_pattern",
    "enable_bits",
    "grid_position",
]

#: Longest run of cycles without progress before the simulation gives up.
STALL_LIMIT = 100_000


def sic_passes(x: np.ndarray, params: FocusParams):
    """The passes in hardware order: ``(tokens, slot)`` per M tile and vector
    slot, ``tokens`` the surviving (not all-zero) token indices of the tile."""
    alive = np.flatnonzero((x.view(params.format.bits_type) & magnitude_mask(params)).any(axis=1))
    nv = -(-x.shape[1] // params.vector_size)
    for start in range(0, len(alive), params.m_tile):
        tile = alive[start : start + params.m_tile]
        for j in range(nv):
            yield tile, j


def enable_pattern(spec, seed: int):
    """Per-cycle enable: None (always), a float probability, or a callable."""
    if spec is None:
        return lambda cycle: True
    if callable(spec):
        return spec
    rng = np.random.default_rng(seed)
    return lambda cycle: bool(rng.random() < spec)


def enable_bits(spec, seed: int, n: int) -> np.ndarray:
    """The first ``n`` values of :func:`enable_pattern` ``(spec, seed)``, at once."""
    if spec is None:
        return np.ones(n, bool)
    if callable(spec):
        return np.fromiter((bool(spec(cycle)) for cycle in range(n)), bool, n)
    return np.random.default_rng(seed).random(n) < spec


def grid_position(token: int, height: int, width: int) -> tuple[int, int, int]:
    """(frame, row, column) of token position ``token`` in frames of
    ``height`` x ``width`` patches."""
    frame, rest = divmod(int(token), height * width)
    return (frame, *divmod(rest, width))


@dataclass(frozen=True)
class Beat:
    """One input vector of the SIC: its token, its slot and the packed
    ``inp`` payload (:func:`focus_hw.sic.sic.input_layout`)."""

    token: int
    slot: int
    word: int


def sic_beats(x: np.ndarray, grid, params: FocusParams) -> list[Beat]:
    """The input beats of the SIC for ``x``, in hardware order (validated)."""
    grid = check_input(x, grid, params)
    _, height, width = grid
    layout = input_layout(params)
    vectors = vector_bits(x, params)
    op = params.operand_bits
    beats = []
    for tile, j in sic_passes(x, params):
        for i, t in enumerate(tile):
            f, r, c = grid_position(t, height, width)
            word = layout.const(
                {
                    "data": pack_row(vectors[t, j], op),
                    "pos": int(t),
                    "col": c,
                    "row": r,
                    "frame": f,
                    "first": int(i == 0),
                    "last": int(i == len(tile) - 1),
                }
            )
            beats.append(Beat(int(t), j, word.as_bits()))
    return beats


def decode_outputs(
    words, beats: list[Beat], x: np.ndarray, params: FocusParams, cycles: int = 0
) -> SICRun:
    """The :class:`SICRun` from the ``out`` payloads taken, one per beat in
    order (tokens never fed keep their zero vectors and are their own roots)."""
    n, dim = x.shape
    vs, op = params.vector_size, params.operand_bits
    vectors = vector_bits(x, params)
    nv = vectors.shape[1]
    zero = ~(vectors & magnitude_mask(params)).any(axis=2)
    similar = np.zeros((n, nv), bool)
    root = np.repeat(np.arange(n)[:, None], nv, axis=1)
    out = vectors.copy()
    layout = output_layout(params)
    mask = (1 << op) - 1
    for beat, word in zip(beats, words, strict=True):
        rec = layout.from_bits(word)
        t, j = beat.token, beat.slot
        if int(rec.pos) != t:
            raise RuntimeError(f"SIC sent token {int(rec.pos)} where token {t} was due")
        zero[t, j], similar[t, j], root[t, j] = int(rec.zero), int(rec.similar), int(rec.root)
        out[t, j] = [(int(rec.data) >> (e * op)) & mask for e in range(vs)]
    tokens = out.reshape(n, nv * vs)[:, :dim].copy().view(x.dtype)
    return SICRun(zero=zero, similar=similar, root=root, tokens=tokens, cycles=cycles)


def simulate_sic(
    x: np.ndarray,
    grid,
    params: FocusParams,
    *,
    out_ready=None,
    in_valid=None,
    seed: int = 0,
    vcd=None,
) -> SICRun:
    """SIC of ``x`` (T, D) with ``grid = (frames, height, width)`` on the
    generated :class:`~focus_hw.sic.SIC`.

    ``x`` is in the operand type of ``params.dtype`` (``np.float16`` or
    ``ml_dtypes.bfloat16``). Each M tile's surviving tokens go through the
    RTL once per vector slot, in token order (:func:`sic_passes`); all-zero
    (pruned) tokens are not fed and come out unchanged as zero vectors.
    ``out_ready`` / ``in_valid`` add backpressure and input bubbles: a
    probability per cycle (random with ``seed``) or a callable ``cycle ->
    bool``. ``cycles`` counts from the first vector accepted to the last one
    sent, both included. Raises ValueError before simulating on bad input.
    """
    beats = sic_beats(x, grid, params)
    _, height, width = check_input(x, grid, params)
    if not beats:
        return decode_outputs([], [], x, params)

    dut = SIC(params)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    ready_at = enable_pattern(out_ready, seed)
    valid_at = enable_pattern(in_valid, seed + 1)
    received = []
    span = []

    async def bench(ctx):
        ctx.set(dut.width, width)
        ctx.set(dut.frame_tokens, height * width)
        sent = cycle = idle = 0
        first = None
        while len(received) < len(beats):
            offer = sent < len(beats) and valid_at(cycle)
            ready = ready_at(cycle)
            ctx.set(dut.inp.valid, offer)
            if offer:
                ctx.set(dut.inp.payload.as_value(), beats[sent].word)
            ctx.set(dut.out.ready, ready)
            _, _, in_ready, o_valid, o_word = await ctx.tick().sample(
                dut.inp.ready, dut.out.valid, dut.out.payload.as_value()
            )
            progress = False
            if offer and in_ready:
                first = cycle if first is None else first
                sent += 1
                progress = True
            if o_valid and ready:
                received.append(o_word)
                progress = True
                if len(received) == len(beats):
                    span.extend([first, cycle])
            idle = 0 if progress else idle + 1
            if idle > STALL_LIMIT:
                raise RuntimeError(
                    f"SIC made no progress for {STALL_LIMIT} cycles "
                    f"({sent} of {len(beats)} vectors in, {len(received)} out)"
                )
            cycle += 1

    sim.add_testbench(bench)
    if vcd is None:
        sim.run()
    else:
        with sim.write_vcd(str(vcd)):
            sim.run()
    return decode_outputs(received, beats, x, params, cycles=span[1] - span[0] + 1)
