"""Evaluate arithmetic units on many input vectors in one Amaranth simulation."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

__all__ = ["evaluate", "run_pipelined"]


def _ports(dut):
    inputs, outputs = [], []
    for name, member in dut.signature.members.items():
        if name == "en":
            continue
        (inputs if member.flow == wiring.In else outputs).append(name)
    return inputs, outputs


def _to_unsigned(values, width):
    return np.asarray(values).astype(np.int64).astype(object) & ((1 << width) - 1)


def evaluate(factory, lanes: int = 8, **inputs) -> dict[str, np.ndarray]:
    """Outputs of the combinational unit ``factory()`` for each input vector.

    ``inputs`` map port names to equal-length integer arrays (raw bit
    patterns; negative values are taken as two's complement). ``lanes``
    copies of the unit are driven through one wide input signal so that each
    simulator step evaluates ``lanes`` vectors. Returns port name ->
    ``np.uint64`` array of raw output bits.
    """
    units = [factory() for _ in range(lanes)]
    if units[0].latency:
        raise ValueError("evaluate() needs a combinational unit (pipeline=0)")
    in_names, out_names = _ports(units[0])
    if set(inputs) != set(in_names):
        raise ValueError(f"inputs must be exactly {in_names}, got {sorted(inputs)}")
    count = len(next(iter(inputs.values())))
    if any(len(v) != count for v in inputs.values()):
        raise ValueError("all input arrays must have the same length")
    m = Module()
    for i, unit in enumerate(units):
        m.submodules[f"u{i}"] = unit
    wide_in = Signal(sum(len(getattr(u, n)) for u in units for n in in_names))
    wide_out = Signal(sum(len(getattr(u, n)) for u in units for n in out_names))
    m.d.comb += Cat(*[getattr(u, n) for u in units for n in in_names]).eq(wide_in)
    m.d.comb += wide_out.eq(Cat(*[getattr(u, n) for u in units for n in out_names]))
    in_widths = [len(getattr(units[0], n)) for n in in_names]
    out_widths = [len(getattr(units[0], n)) for n in out_names]
    columns = [_to_unsigned(inputs[n], w) for n, w in zip(in_names, in_widths)]
    words = []
    for start in range(0, count, lanes):
        word, shift = 0, 0
        for k in range(lanes):
            j = min(start + k, count - 1)
            for column, width in zip(columns, in_widths):
                word |= int(column[j]) << shift
                shift += width
        words.append(word)
    results = []

    async def testbench(ctx):
        for word in words:
            ctx.set(wide_in, word)
            results.append(ctx.get(wide_out))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    out = {n: np.zeros(len(words) * lanes, dtype=np.uint64) for n in out_names}
    for i, word in enumerate(results):
        for k in range(lanes):
            for n, width in zip(out_names, out_widths):
                out[n][i * lanes + k] = word & ((1 << width) - 1)
                word >>= width
    return {n: v[:count] for n, v in out.items()}


def run_pipelined(dut, steps) -> list[dict[str, int]]:
    """Clock ``dut`` once per entry of ``steps`` (dicts of port -> value, ``en`` included).

    Inputs are applied before each clock edge; the outputs are sampled after
    it. Returns one dict of output port values per step.
    """
    _, out_names = _ports(dut)
    samples = []

    async def testbench(ctx):
        for step in steps:
            for name, value in step.items():
                port = getattr(dut, name)
                ctx.set(port, int(value) & ((1 << len(port)) - 1))
            await ctx.tick()
            samples.append({n: ctx.get(getattr(dut, n)) for n in out_names})

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return samples
