"""The SIC's emitted Verilog, simulated by Icarus Verilog, equals the Amaranth
simulation cycle by cycle on `focus golden`'s SIC vectors (with backpressure
and input bubbles), and its result equals the numpy model."""

import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator

from focus_algo.golden import sic_golden
from focus_hw import FocusParams
from focus_hw.generate import build_unit, generate
from focus_hw.sic.model import sic_model
from focus_hw.sic.simulate import decode_outputs, sic_beats
from test_crosssim import _ports, _run_iverilog, _trace_tb, _write_inputs
from tools import require

P = FocusParams(vector_size=4, sic_lanes=2, m_tile=16, max_frame_tokens=16, max_tokens=64)


def _record(params, unit, manifest, beats, grid):
    """Reactive stream bench in Amaranth: returns the inputs applied and the
    outputs seen in every cycle, and the output beats taken."""
    dut = build_unit(params, unit)
    ports = {
        "__".join(map(str, path)): Value.cast(value)
        for path, _, value in dut.signature.flatten(dut)
    }
    ins, outs = _ports(manifest)
    rng = np.random.default_rng(7)
    applied, seen, taken = [], [], []

    async def bench(ctx):
        _, height, width = grid
        sent = 0
        while len(taken) < len(beats):
            vec = {p["name"]: 0 for p in ins}
            vec["width"], vec["frame_tokens"] = width, height * width
            offer = sent < len(beats) and rng.random() < 0.8
            vec["inp__valid"] = int(offer)
            if offer:
                vec["inp__payload"] = beats[sent]
            vec["out__ready"] = int(rng.random() < 0.7)
            for p in ins:
                ctx.set(ports[p["name"]], vec[p["name"]])
            _, _, *values = await ctx.tick().sample(*[ports[p["name"]] for p in outs])
            values = dict(zip((p["name"] for p in outs), map(int, values)))
            applied.append(vec)
            seen.append([values[p["name"]] for p in outs])
            if offer and values["inp__ready"]:
                sent += 1
            if values["out__valid"] and vec["out__ready"]:
                taken.append(values["out__payload"])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return applied, seen, taken


def test_sic_verilog_equals_amaranth_on_golden_vectors(tmp_path):
    require("iverilog", "vvp")
    grid = (2, 3, 4)
    g = sic_golden(P, grid=grid, seed=3)
    x = g["x"].view(np.float16)
    manifest = generate(P, tmp_path / "v", unit="sic")
    beats = sic_beats(x, grid, P)
    applied, seen, taken = _record(P, "sic", manifest, [b.word for b in beats], grid)

    _write_inputs(tmp_path, manifest, applied)
    design = str(tmp_path / "v" / f"{manifest.top}.v")
    _run_iverilog(tmp_path, _trace_tb(manifest, len(applied)), design)
    icarus = [
        [int(v, 16) for v in line.split()]
        for line in (tmp_path / "out.txt").read_text().splitlines()
    ]
    assert icarus == seen

    # ... and what came out is the numpy model's SIC of the golden tile.
    model = sic_model(x, grid, P)
    rtl = decode_outputs(taken, beats, x, P)
    for name in ("zero", "similar", "root"):
        np.testing.assert_array_equal(getattr(rtl, name), getattr(model, name))
    np.testing.assert_array_equal(rtl.tokens.view(np.uint16), model.tokens.view(np.uint16))
    assert model.similar.any() and model.zero.any()
