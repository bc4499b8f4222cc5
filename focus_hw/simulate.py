"""Run numpy matrices through the generated systolic array in Amaranth's simulator.

Accumulation order (fixed by the array, reproduced by a numpy loop bit for
bit): for every output element ``acc = +0.0`` (``0`` for int8), then for
``k = 0..K-1``: ``acc = R(acc + R(a[m, k] * w[k, n]))`` where ``R`` rounds to
nearest even in the accumulator format ``params.acc``: fp32 for
``acc_format="wide"`` (``np.float32(acc) + np.float32(a) * np.float32(w)``),
the operand format for ``"operand"``; for int8 the int32 sum wraps around.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from .fileio import atomic_write_text
from .params import FocusParams
from .systolic import SystolicArray
from .verilator import Bench, check_backend, run_bench

__all__ = ["GemmRun", "TilesRun", "simulate_gemm", "simulate_tiles", "pack_row"]

#: The Verilator bench of the array (:mod:`focus_hw.verilator`).
ARRAY_BENCH = Bench("array", ins=("weight", "act"), outs=("out",))

#: Longest run of cycles with ``out.ready`` (or ``act.valid``) low that a
#: backpressure (or input bubble) pattern may ask for.
MAX_REFUSED = 10_000


@dataclass(frozen=True)
class GemmRun:
    """Result of :func:`simulate_gemm`."""

    #: (M, N) outputs in the accumulator's numpy type (``params.acc``): float32
    #: (fp16/bf16 operands, ``acc_format="wide"``), the operand type
    #: (``"operand"``) or int32 (int8 operands).
    out: np.ndarray
    #: Cycles from the first activation row accepted to the last output row
    #: accepted, both counted (without backpressure: the last row's first
    #: valid cycle, i.e. :func:`focus_hw.timing.tile_cycles`).
    cycles: int


@dataclass(frozen=True)
class TilesRun:
    """Result of :func:`simulate_tiles`: one output per tile, total cycles
    counted like :attr:`GemmRun.cycles`."""

    outs: list[np.ndarray]
    cycles: int


def _operand_bits(x, name: str, params: FocusParams) -> np.ndarray:
    """Raw bit patterns (int64) of an operand matrix, checking its dtype."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, not {type(x).__name__}")
    fmt = params.format
    if x.dtype == fmt.np_type:
        return fmt.to_bits(x).astype(np.int64)
    if fmt.fp32_prefix and x.dtype == np.float32:
        shift = 32 - fmt.bits
        bits = np.ascontiguousarray(x).view(np.uint32).astype(np.int64)
        if np.any(bits & ((1 << shift) - 1)):
            raise ValueError(f"{name}: float32 values are not all representable in {fmt.name}")
        return bits >> shift
    expected = np.dtype(fmt.np_type).name
    if fmt.fp32_prefix:
        expected += f" or float32 ({fmt.name} values)"
    raise ValueError(
        f"{name}.dtype={x.dtype} does not match params.dtype={fmt.name!r} (expected {expected})"
    )


def _check_tile(a, w, params: FocusParams, where: str) -> tuple[np.ndarray, np.ndarray]:
    for name, x in (("a", a), ("w", w)):
        if not isinstance(x, np.ndarray) or x.ndim != 2:
            raise ValueError(
                f"{where}: {name} must be a 2-D numpy array, "
                f"got {getattr(x, 'shape', type(x).__name__)}"
            )
    (m, k), (k2, n) = a.shape, w.shape
    if k != k2:
        raise ValueError(f"{where}: a is {a.shape} and w is {w.shape}: inner dimensions differ")
    if m < 1:
        raise ValueError(f"{where}: a has M={m} rows; need M >= 1")
    if not 1 <= k <= params.rows:
        raise ValueError(f"{where}: K={k} must lie in 1..params.rows={params.rows}")
    if not 1 <= n <= params.cols:
        raise ValueError(f"{where}: N={n} must lie in 1..params.cols={params.cols}")
    return _operand_bits(a, f"{where}: a", params), _operand_bits(w, f"{where}: w", params)


def _per_cycle(pattern) -> Callable[[int], bool]:
    """A handshake flag per cycle: None (always high), a callable of the cycle
    number, or a bit sequence (high once it runs out)."""
    if pattern is None:
        return lambda cycle: True
    if callable(pattern):
        return lambda cycle: bool(pattern(cycle))
    bits = [bool(b) for b in pattern]
    return lambda cycle: bits[cycle] if cycle < len(bits) else True


def pack_row(values, width: int) -> int:
    """Lane ``i`` of ``values`` (raw bits) in bits ``i * width ...`` of one word."""
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << width) - 1)) << (i * width)
    return word


def simulate_tiles(
    tiles: Sequence[tuple[np.ndarray, np.ndarray]],
    params: FocusParams,
    *,
    vcd: str | Path | None = None,
    out_ready=None,
    act_valid=None,
    backend: str = "amaranth",
) -> TilesRun:
    """Stream several weight tiles back to back through one
    :class:`~focus_hw.SystolicArray`.

    ``tiles`` is a sequence of ``(a, w)`` pairs as in :func:`simulate_gemm`
    (each tile its own M, K, N). The weight stream offers the next tile's rows
    as soon as the array takes them, so tile ``i+1`` loads into the shadow
    registers while tile ``i`` streams; the activation stream offers every row
    at once (the first row of each tile with ``swap`` set). ``out_ready``,
    ``act_valid``, ``backend``: see :func:`simulate_gemm`. Raises :class:`ValueError` before
    simulating on bad input, :class:`RuntimeError` if the design stops making progress.
    """
    check_backend(backend, vcd)
    if not isinstance(params, FocusParams):
        raise ValueError(f"params must be FocusParams, not {type(params).__name__}")
    tiles = list(tiles)
    if not tiles:
        raise ValueError("simulate_tiles: no tiles given")
    rows, cols = params.rows, params.cols
    op, acc = params.operand_bits, params.acc_bits
    w_beats, a_beats, shapes = [], [], []
    for i, (a, w) in enumerate(tiles):
        a_bits, w_bits = _check_tile(a, w, params, f"tile {i}")
        (m, k), n = a_bits.shape, w_bits.shape[1]
        shapes.append((m, n))
        w_pad = np.zeros((rows, cols), np.int64)
        w_pad[:k, :n] = w_bits
        w_beats += [pack_row(row, op) for row in w_pad]
        for r in range(m):
            lanes = np.zeros(rows, np.int64)
            lanes[:k] = a_bits[r]
            a_beats.append(pack_row(lanes, op) | (int(r == 0) << (rows * op)))
    # Generous progress bound: every cycle with out.ready high moves the
    # array, so the run ends within this many such cycles.
    lat = params.mac_pipeline + 1
    budget = len(a_beats) + (len(tiles) + 1) * 2 * (rows * lat + cols + rows + 2)
    ready_at, offer_at = _per_cycle(out_ready), _per_cycle(act_valid)
    if backend == "verilator":
        words, first, last = _verilator_tiles(params, w_beats, a_beats, ready_at, offer_at, budget)
    else:
        words, first, last = _amaranth_tiles(
            params, w_beats, a_beats, ready_at, offer_at, budget, vcd
        )

    mask = (1 << acc) - 1
    flat = np.array(
        [[(word >> (c * acc)) & mask for c in range(cols)] for word in words],
        dtype=params.acc.bits_type,
    )
    flat = flat.view(params.acc.np_type)
    outs, start = [], 0
    for m, n in shapes:
        outs.append(flat[start : start + m, :n].copy())
        start += m
    return TilesRun(outs=outs, cycles=last - first + 1)


def _amaranth_tiles(params, w_beats, a_beats, ready_at, offer_at, budget, vcd):
    """The output words, the cycle of the first activation row taken and that
    of the last output row, in Amaranth's simulator (the flat array)."""
    dut = SystolicArray(params)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    words: list[int] = []
    span: list[int] = []

    async def bench(ctx):
        wi = ai = 0
        first = None
        cycle = moving = refused = withheld = 0
        while True:
            ready = ready_at(cycle)
            offer = ai < len(a_beats) and offer_at(cycle)
            bubble = ai < len(a_beats) and not offer
            withheld = withheld + 1 if bubble else 0
            moving, refused = (moving + (not bubble), 0) if ready else (moving, refused + 1)
            if moving > budget:
                raise RuntimeError(
                    f"systolic array did not finish within {budget} cycles with out.ready high"
                )
            if refused > MAX_REFUSED:
                raise RuntimeError(f"out_ready stayed low for more than {MAX_REFUSED} cycles")
            if withheld > MAX_REFUSED:
                raise RuntimeError(f"act_valid stayed low for more than {MAX_REFUSED} cycles")
            ctx.set(dut.weight.valid, wi < len(w_beats))
            if wi < len(w_beats):
                ctx.set(dut.weight.payload.as_value(), w_beats[wi])
            ctx.set(dut.act.valid, offer)
            if offer:
                ctx.set(dut.act.payload.as_value(), a_beats[ai])
            ctx.set(dut.out.ready, ready)
            _, _, w_ready, a_ready, o_valid, o_word = await ctx.tick().sample(
                dut.weight.ready, dut.act.ready, dut.out.valid, dut.out.payload.as_value()
            )
            if wi < len(w_beats) and w_ready:
                wi += 1
            if offer and a_ready:
                first = cycle if first is None else first
                ai += 1
            if o_valid and ready:
                words.append(o_word)
                if len(words) == len(a_beats):
                    span.extend([first, cycle])
                    return
            cycle += 1

    sim.add_testbench(bench)
    if vcd is None:
        sim.run()
    else:
        buffer = io.StringIO()
        with sim.write_vcd(buffer):
            sim.run()
        atomic_write_text(vcd, buffer.getvalue())

    return words, *span


def _verilator_tiles(params, w_beats, a_beats, ready_at, offer_at, budget):
    """As :func:`_amaranth_tiles`, for the emitted Verilog in Verilator."""

    def control(n: int) -> dict:
        cycles = range(n)
        return {
            "weight": np.ones(n, bool),
            "act": [offer_at(c) for c in cycles],
            "out": [ready_at(c) for c in cycles],
        }

    streams = {"weight": w_beats, "act": a_beats}
    stall = 2 * MAX_REFUSED + budget
    run = run_bench(
        params, ARRAY_BENCH, streams, control, beats=len(a_beats), stall=stall, cycles=budget
    )
    return run.beats["out"], run.first["act"], run.done


def simulate_gemm(
    a: np.ndarray,
    w: np.ndarray,
    params: FocusParams,
    *,
    vcd: str | Path | None = None,
    out_ready=None,
    act_valid=None,
    backend: str = "amaranth",
) -> GemmRun:
    """Compute ``a @ w`` on the generated :class:`~focus_hw.SystolicArray`.

    ``a`` is (M, K), ``w`` is (K, N) with M >= 1, K <= ``params.rows``,
    N <= ``params.cols`` (one weight tile), both of the operand type of
    ``params.dtype``: ``np.int8``, ``np.float16``, or ``ml_dtypes.bfloat16``
    (float32 arrays holding bf16 values are accepted too). The weights are
    loaded, then the rows streamed; unused weight rows/columns are zero and
    unused activation lanes zero. ``out_ready`` gives the output stream's
    backpressure: a callable ``cycle -> bool`` or a bit sequence (ready once
    exhausted), with cycle 0 the first simulated cycle; more than
    :data:`MAX_REFUSED` not-ready cycles in a row raise :class:`RuntimeError`.
    ``act_valid`` likewise gives input bubbles: in a cycle where it is low the
    activation stream withholds its next row (``act.valid`` low mid-tile).
    ``vcd``: write a
    waveform to this path. ``backend="verilator"`` simulates the emitted
    Verilog (the array as a shell around its PE classes) in Verilator
    (:mod:`focus_hw.verilator`) with the same stimulus instead of the flat
    Amaranth design: the same result, cycle for cycle; there a run raises
    :class:`RuntimeError` once nothing moves for ``2 * MAX_REFUSED`` cycles
    plus the progress bound. Returns :class:`GemmRun` with ``out`` (M, N) in
    the accumulator format (:attr:`GemmRun.out`) computed in the order
    documented in this module.
    """
    run = simulate_tiles(
        [(a, w)], params, vcd=vcd, out_ready=out_ready, act_valid=act_valid, backend=backend
    )
    return GemmRun(out=run.outs[0], cycles=run.cycles)
