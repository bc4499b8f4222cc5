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


def evaluate(unit, **inputs) -> dict[str, np.ndarray]:
    """Outputs of the combinational ``unit`` for each input vector, in one simulation.

    ``inputs`` map every input port (``en`` aside) to equal-length integer
    arrays of raw bit patterns (negative values are taken as two's
    complement). All inputs are packed into one wide signal so that each
    vector costs a single set/settle/get of the simulator (duplicating the
    unit into lanes was measured slower: the Python simulator evaluates every
    copy on each step). Returns port name -> ``np.uint64`` array of raw bits.
    """
    if unit.latency:
        raise ValueError("evaluate() needs a combinational unit (pipeline=0)")
    in_names, out_names = _ports(unit)
    if set(inputs) != set(in_names):
        raise ValueError(f"inputs must be exactly {in_names}, got {sorted(inputs)}")
    count = len(next(iter(inputs.values())))
    if any(len(v) != count for v in inputs.values()):
        raise ValueError("all input arrays must have the same length")
    ins = [getattr(unit, n) for n in in_names]
    outs = [getattr(unit, n) for n in out_names]
    m = Module()
    m.submodules.unit = unit
    wide_in = Signal(sum(len(s) for s in ins))
    wide_out = Signal(sum(len(s) for s in outs))
    m.d.comb += [Cat(*ins).eq(wide_in), wide_out.eq(Cat(*outs))]
    words = np.zeros(count, dtype=object)
    shift = 0
    for name, port in zip(in_names, ins):
        words += _to_unsigned(inputs[name], len(port)) << shift
        shift += len(port)
    results = []

    async def testbench(ctx):
        for word in words:
            ctx.set(wide_in, int(word))
            results.append(ctx.get(wide_out))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    packed = np.array(results, dtype=object)
    out, shift = {}, 0
    for name, port in zip(out_names, outs):
        out[name] = ((packed >> shift) & ((1 << len(port)) - 1)).astype(np.uint64)
        shift += len(port)
    return out


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
