"""Run a GEMM on compressed activations through the generated
:class:`~focus_hw.accelerator.FocusAccelerator` in Amaranth's simulator.

:func:`compress` lays out what the previous layer's SIC left in memory (per
M tile and K chunk: the unique vectors and the similarity map);
:func:`simulate_focus_gemm` streams it and the weights through the RTL and
returns the output (accumulator format), its SIC (or, bypassing the SIC, the
rows written back), the cycles and the counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from .accelerator import (
    STAT_NAMES,
    FocusAccelerator,
    check_accelerator,
    dram_bytes,
    map_layout,
    position_layout,
    vector_layout,
)
from .params import FocusParams
from .sic.model import SICRun, check_input, magnitude_mask, sic_model, vector_bits
from .sic.sic import output_layout
from .sic.simulate import Beat, decode_outputs, enable_bits, enable_pattern, grid_position
from .simulate import pack_row
from .verilator import Bench, check_backend, run_bench

__all__ = [
    "Compressed",
    "FocusRun",
    "StreamPlan",
    "compress",
    "decode_rows",
    "simulate_focus_gemm",
    "stream_plan",
]

#: Longest run of cycles without any handshake before the simulation gives up.
STALL_LIMIT = 20_000
#: The Verilator bench of the accelerator (:mod:`focus_hw.verilator`); the
#: SEC's ports stay low, as in the Amaranth bench.
FOCUS_BENCH = Bench(
    "focus",
    ins=("map", "vectors", "weights", "positions"),
    outs=("out", "result"),
    pulses=("start",),
)


@dataclass(frozen=True)
class Compressed:
    """A SIC-compressed activation matrix as the accelerator reads it.

    ``tiles[i]`` lists M tile ``i``'s surviving token indices;
    ``unique[i][j]`` the tokens whose vector ``j`` is its group's unique
    vector (slot order = token order); ``slot[i][j]`` per token of the tile
    its group's slot, -1 for a zero vector. ``sic`` is the SIC run itself;
    its ``tokens`` (T, D) are the concentrated vectors (operand type)."""

    tiles: list[np.ndarray]
    unique: list[list[np.ndarray]]
    slot: list[list[np.ndarray]]
    sic: SICRun

    @property
    def chunks(self) -> int:
        return self.sic.zero.shape[1]


def compress(x: np.ndarray, grid, params: FocusParams) -> Compressed:
    """The SIC of ``x`` (:func:`~focus_hw.sic.model.sic_model`, bit-exact to
    the RTL) laid out per M tile and K chunk. M tiles hold ``m_tile``
    surviving tokens (all-zero tokens, pruned by SEC, are skipped)."""
    run = sic_model(x, grid, params)
    bits = vector_bits(x, params)
    alive = np.flatnonzero((bits & magnitude_mask(params)).any(axis=(1, 2)))
    tiles, unique, slot = [], [], []
    for start in range(0, len(alive), params.m_tile):
        tile = alive[start : start + params.m_tile]
        tiles.append(tile)
        u_tile, s_tile = [], []
        for j in range(run.zero.shape[1]):
            zero, root = run.zero[tile, j], run.root[tile, j]
            uniq = tile[~zero & (root == tile)]
            where = np.minimum(np.searchsorted(uniq, root), max(len(uniq) - 1, 0))
            found = uniq[where] == root if len(uniq) else np.zeros(len(tile), bool)
            if np.any(~zero & ~found):
                raise RuntimeError(f"a chunk-{j} root lies outside its M tile")
            u_tile.append(uniq)
            s_tile.append(np.where(zero, -1, where))
        unique.append(u_tile)
        slot.append(s_tile)
    return Compressed(tiles, unique, slot, run)


@dataclass(frozen=True)
class FocusRun:
    """Result of :func:`simulate_focus_gemm`."""

    #: (T, N) output in the accumulator format, ``params.acc`` (pruned tokens: +0.0).
    out: np.ndarray
    #: The SIC of the output (as the accelerator wrote it back); of a bypass
    #: run, the rows written back: every vector its own root, none similar.
    compressed: SICRun
    #: Cycles from the run's start to the last ``out`` beat taken, both counted.
    cycles: int
    #: The accelerator's counters (:data:`~focus_hw.accelerator.STAT_NAMES`)
    #: and ``dram_read_bytes`` / ``dram_write_bytes``.
    stats: dict = field(default_factory=dict)
    #: The ``out`` payloads (:func:`~focus_hw.sic.sic.output_layout` bits) as taken, in order.
    words: tuple[int, ...] = ()


@dataclass(frozen=True)
class StreamPlan:
    """What one run streams: ``comp`` the compressed input, ``streams``
    stream name -> payloads in order, ``items`` per beat the memory items it
    carries (:func:`dram_bytes`), ``sizes`` the run inputs (``tokens``,
    ``chunks``, ``ntiles``, ``width``, ``frame_tokens``) and ``total`` the
    ``out`` beats the run ends with."""

    comp: Compressed
    streams: dict[str, list[int]]
    items: dict[str, list[int]]
    sizes: dict[str, int]
    total: int


def _check(x, w, grid, params: FocusParams):
    check_accelerator(params)
    grid = check_input(x, grid, params)
    if not isinstance(w, np.ndarray) or w.ndim != 2:
        raise ValueError(f"w must be a 2-D numpy array (K, N), got {getattr(w, 'shape', w)}")
    if w.dtype != x.dtype:
        raise ValueError(f"w.dtype={w.dtype} does not match x.dtype={x.dtype}")
    if w.shape[0] != x.shape[1]:
        raise ValueError(f"w has K={w.shape[0]} rows but x has K={x.shape[1]} features")
    if w.shape[1] < 1:
        raise ValueError("w has N=0 columns")
    if x.shape[0] > params.max_tokens:
        raise ValueError(f"x has T={x.shape[0]} tokens, more than max_tokens={params.max_tokens}")
    return grid


def _streams(comp: Compressed, w: np.ndarray, grid, params: FocusParams):
    """The payloads of the input streams, in the order the engines take them,
    and per beat the memory items it carries (:func:`dram_bytes`)."""
    p, op = params, params.operand_bits
    _, height, width = grid
    nk, nt = comp.chunks, -(-w.shape[1] // p.cols)
    fmt = p.format
    vec = vector_bits(comp.sic.tokens, p)  # (T, nk, vs)
    wb = np.zeros((nk * p.rows, nt * p.cols), np.int64)
    wb[: w.shape[0], : w.shape[1]] = fmt.to_bits(w)
    vl, ml, pl = vector_layout(p), map_layout(p), position_layout(p)
    streams = {"map": [], "vectors": [], "weights": [], "positions": []}
    items = {name: [] for name in streams}
    for i, tile in enumerate(comp.tiles):
        for group in range(0, nt, p.out_vectors):
            subs = range(group, min(nt, group + p.out_vectors))
            for j in range(nk):
                slots = comp.slot[i][j]
                for b in range(0, len(tile), p.num_scatter):
                    lanes = slots[b : b + p.num_scatter]
                    beat = [{"zero": int(s < 0), "slot": max(int(s), 0)} for s in lanes]
                    beat += [{"zero": 1, "slot": 0}] * (p.num_scatter - len(beat))
                    streams["map"].append(ml.const(beat).as_bits())
                    items["map"].append(len(lanes))
                uniq = comp.unique[i][j]
                if len(uniq) == 0:
                    streams["vectors"].append(vl.const({"empty": 1, "last": 1}).as_bits())
                    items["vectors"].append(0)
                    continue
                for k, t in enumerate(uniq):
                    data = pack_row(vec[t, j], op)
                    word = vl.const({"last": int(k == len(uniq) - 1)}).as_bits()
                    streams["vectors"].append(word | data)
                    items["vectors"].append(1)
                for n in subs:
                    tile_w = wb[j * p.rows : (j + 1) * p.rows, n * p.cols : (n + 1) * p.cols]
                    streams["weights"] += [pack_row(row, op) for row in tile_w]
                    items["weights"] += [1] * p.rows
            for _ in subs:
                for t in tile:
                    f, r, c = grid_position(t, height, width)
                    pos = pl.const({"pos": int(t), "col": c, "row": r, "frame": f})
                    streams["positions"].append(pos.as_bits())
                    items["positions"].append(1)
    return streams, items


def simulate_focus_gemm(
    x: np.ndarray,
    w: np.ndarray,
    grid,
    params: FocusParams,
    *,
    in_valid=None,
    out_ready=None,
    seed: int = 0,
    vcd=None,
    backend: str = "amaranth",
    bypass: bool = False,
) -> FocusRun:
    """``x @ w`` on the generated accelerator, with ``x`` (T, K) compressed
    first by the SIC (as the previous layer's hardware left it) and
    ``grid = (frames, height, width)`` its token grid.

    ``x`` and ``w`` are in the operand type of ``params.dtype``; all-zero
    rows of ``x`` are pruned tokens (not computed, output +0.0).
    ``in_valid`` / ``out_ready`` (a probability per cycle, random with
    ``seed``, or a callable ``cycle -> bool``) throttle every memory stream.
    ``.out`` equals the compressed-GEMM semantics of
    :mod:`focus_algo.golden` on the SIC of ``x``; ``.compressed`` is the SIC
    of ``.out`` cast to the operand type. ``bypass=True`` runs it with the
    output SIC bypassed (as for attention scores): ``.compressed`` holds the
    rows written back, ``.out`` cast to the operand type, none merged. The
    ``positions`` stream is offered in either case; a run ends with its last
    ``out`` beat, and ``dram_read_bytes`` counts the beats the accelerator
    took (a bypass run takes no position). ``backend="verilator"`` runs the
    emitted Verilog in Verilator (:mod:`focus_hw.verilator`) under the same
    patterns instead of Amaranth's simulator: the same result, cycles and
    counters. Bad input raises ValueError before simulating.
    """
    check_backend(backend, vcd)
    plan = stream_plan(x, w, grid, params, bypass=bypass)
    run = (params, plan.streams, plan.sizes, plan.total, in_valid, out_ready, seed)
    if backend == "verilator":
        got, rows, cycles, stats, taken = _verilator_run(*run)
    else:
        got, rows, cycles, stats, taken = _amaranth_run(*run, vcd)
    size = dram_bytes(params)
    read = sum(sum(plan.items[s][: taken[s]]) * size[s] for s in plan.streams)
    stats = dict(stats, dram_read_bytes=read)
    return _result(plan.comp, w, params, got, rows, cycles, stats, bypass)


def stream_plan(
    x: np.ndarray, w: np.ndarray, grid, params: FocusParams, *, bypass: bool = False
) -> StreamPlan:
    """The :class:`StreamPlan` of :func:`simulate_focus_gemm` ``(x, w, grid,
    params, bypass=bypass)``: what it feeds the accelerator (ValueError on
    bad input)."""
    grid = _check(x, w, grid, params)
    comp = compress(x, grid, params)
    streams, items = _streams(comp, w, grid, params)
    nt = -(-w.shape[1] // params.cols)
    tokens = sum(len(t) for t in comp.tiles)
    sizes = {
        "tokens": tokens,
        "chunks": comp.chunks,
        "ntiles": nt,
        "bypass": int(bypass),
        "width": grid[2],
        "frame_tokens": grid[1] * grid[2],
    }
    return StreamPlan(comp, streams, items, sizes, tokens * nt)


def _amaranth_run(p, streams, sizes, total, in_valid, out_ready, seed, vcd):
    """The ``out`` words, the ``result`` rows, the cycles, the counters and
    the beats taken per stream, in Amaranth's simulator."""
    dut = FocusAccelerator(p)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got, rows, span, taken = [], [], [], {name: 0 for name in streams}
    finished = []

    def driver(name, port, k):
        valid_at = enable_pattern(in_valid, seed + 1 + k)

        async def drive(ctx):
            beats, cycle = streams[name], 0
            while taken[name] < len(beats):
                offer = valid_at(cycle)
                ctx.set(port.valid, offer)
                if offer:
                    ctx.set(port.payload.as_value(), beats[taken[name]])
                *_, ready = await ctx.tick().sample(port.ready)
                taken[name] += offer and ready
                cycle += 1
            ctx.set(port.valid, 0)

        return drive

    for k, name in enumerate(streams):  # the run ends with its last output
        sim.add_testbench(driver(name, getattr(dut, name), k), background=True)

    async def control(ctx):
        ready_at = enable_pattern(out_ready, seed)
        for name, value in sizes.items():
            ctx.set(getattr(dut, name), value)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycle = idle = 0
        before = dict(taken)
        while len(got) < total:
            ready = ready_at(cycle)
            ctx.set(dut.out.ready, ready)
            _, _, valid, word, r_valid, r_word = await ctx.tick().sample(
                dut.out.valid,
                dut.out.payload.as_value(),
                dut.result.valid,
                dut.result.payload.as_value(),
            )
            if r_valid:
                rows.append(r_word)
            progress = r_valid or (valid and ready) or taken != before
            before = dict(taken)
            if valid and ready:
                got.append(word)
            idle = 0 if progress else idle + 1
            if idle > STALL_LIMIT:
                raise RuntimeError(
                    f"the accelerator made no progress for {STALL_LIMIT} cycles "
                    f"({len(got)} of {total} outputs; stream beats taken {taken})"
                )
            cycle += 1
        span.append(cycle + 1)
        ctx.set(dut.out.ready, 0)
        await ctx.tick().until(~dut.busy)
        finished.append({name: ctx.get(getattr(dut, name)) for name in STAT_NAMES})

    sim.add_testbench(control)
    if vcd is None:
        sim.run()
    else:
        with sim.write_vcd(str(vcd)):
            sim.run()
    return got, rows, span[0], finished[0], taken


def _verilator_run(p, streams, sizes, total, in_valid, out_ready, seed):
    """As :func:`_amaranth_run`, for the emitted Verilog in Verilator: the
    same patterns, drawn ahead (the control starts the run in cycle 0 and
    takes ``out`` from cycle 1)."""

    def control(n: int) -> dict:
        bits = {name: enable_bits(in_valid, seed + 1 + k, n) for k, name in enumerate(streams)}
        bits["out"] = np.concatenate([[False], enable_bits(out_ready, seed, n - 1)])
        bits["start"] = np.arange(n) == 0
        return bits

    run = run_bench(
        p,
        FOCUS_BENCH,
        streams,
        control,
        statics=sizes,
        beats=total,
        stall=STALL_LIMIT,
        cycles=8 * (sum(map(len, streams.values())) + total) + 1000,
    )
    stats = {name: run.ports[name] for name in STAT_NAMES}
    return run.beats["out"], run.beats["result"], run.done + 1, stats, run.taken


def decode_rows(comp: Compressed, rows, n: int, params: FocusParams):
    """The (T, n) output in the accumulator format (``params.acc``: fp32, or
    the operand format with ``acc_format="operand"``) from the ``result``
    rows (M tile by M tile, N tile by N tile, token order; pruned tokens
    +0.0), and the SIC :class:`~focus_hw.sic.simulate.Beat` of each ``out``
    word (the token, its N tile as the vector slot)."""
    cols, acc = params.cols, params.acc
    nt = -(-n // cols)
    out = np.zeros((comp.sic.tokens.shape[0], nt * cols), np.int64)
    mask = (1 << acc.bits) - 1
    beats, k = [], 0
    for tile in comp.tiles:
        for j in range(nt):
            for t in tile:
                out[t, j * cols : (j + 1) * cols] = [
                    (rows[k] >> (acc.bits * e)) & mask for e in range(cols)
                ]
                beats.append(Beat(int(t), j, 0))
                k += 1
    return acc.decode(out[:, :n]), beats


def _bypass_outputs(comp: Compressed, words, beats: list[Beat], x, params: FocusParams):
    """The :class:`SICRun` of the rows a bypass run wrote back, from its
    ``out`` words (one per beat, each checked: ``pos`` and ``root`` the
    token's index among the run's tokens, not zero, not similar): every
    vector its own root; tokens never fed keep ``x``'s (zero) vectors."""
    run = decode_outputs([], [], x, params)
    index = np.zeros(len(x), np.int64)
    alive = np.concatenate(comp.tiles)
    index[alive] = np.arange(len(alive))
    vectors = vector_bits(run.tokens, params)
    layout, mask = output_layout(params), (1 << params.operand_bits) - 1
    vs = params.vector_size
    for beat, word in zip(beats, words, strict=True):
        rec, t, j = layout.from_bits(word), beat.token, beat.slot
        got = (int(rec.pos), int(rec.root), int(rec.zero), int(rec.similar))
        if got != (index[t], index[t], 0, 0):
            raise RuntimeError(f"bypass beat of token {t}: pos, root, zero, similar = {got}")
        run.zero[t, j] = False
        vectors[t, j] = [(int(rec.data) >> (e * params.operand_bits)) & mask for e in range(vs)]
    tokens = vectors.reshape(len(x), -1)[:, : x.shape[1]].copy().view(x.dtype)
    return SICRun(run.zero, run.similar, run.root, tokens, 0)


def _result(comp, w, p, words, rows, cycles, stats, bypass) -> FocusRun:
    """Assemble the outputs in token order and the statistics."""
    out, beats = decode_rows(comp, rows, w.shape[1], p)
    cast = out.astype(p.format.np_type)
    size = dram_bytes(p)
    if bypass:  # every row written as it is
        compressed = _bypass_outputs(comp, words, beats, cast, p)
        stats["dram_write_bytes"] = len(words) * size["vectors"]
    else:
        compressed = decode_outputs(words, beats, cast, p)
        written = (~compressed.zero & ~compressed.similar)[np.concatenate(comp.tiles)].sum()
        stats["dram_write_bytes"] = len(words) * size["map"] + int(written) * size["vectors"]
    return FocusRun(out=out, compressed=compressed, cycles=cycles, stats=stats, words=tuple(words))
