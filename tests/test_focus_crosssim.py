"""The integrated accelerator's emitted Verilog (`generate(..., unit="focus")`),
simulated by Icarus Verilog, equals the Amaranth simulation cycle by cycle on
one small compressed GEMM and, beside it, one SEC run (random input bubbles
with garbage payloads, random output backpressure); what it streamed out
decodes to :func:`focus_hw.simulate_focus_gemm`'s result and
:func:`focus_hw.simulate_sec`'s kept tokens."""

import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator

from focus_hw import FocusParams, simulate_sec
from focus_hw.accelerator import STAT_NAMES, FocusAccelerator
from focus_hw.focus_gemm import _streams, compress, decode_rows, simulate_focus_gemm
from focus_hw.generate import generate
from focus_hw.sec.encoder import kept_layout
from focus_hw.sec.simulate import sec_beats
from focus_hw.sic.simulate import decode_outputs
from test_crosssim import _ports, _run_iverilog, _trace_tb, _write_inputs
from test_sec_rtl import attention
from tools import require

P = FocusParams(
    rows=2,
    cols=2,
    vector_size=2,
    m_tile=4,
    num_scatter=2,
    max_tokens=32,
    max_frame_tokens=8,
    sic_lanes=2,
    threshold=0.5,
    out_vectors=2,
    ring_blocks=3,
)
GRID = (2, 2, 2)  # frames, height, width
#: Cycles simulated after ``busy`` drops (outputs must stay put in both).
TAIL = 4
MAX_CYCLES = 5000


def _case():
    """x (8, 4): duplicates (1 = 0 beside it, 4 = 0 a frame later, 7 = 5
    below it) that the SIC merges, token 3 all zero (pruned), token 2's
    second chunk zero and M tile 1's second chunk empty; w (4, 5): 2 K
    chunks, 3 N tiles (the third zero-padded) in N groups of 2 + 1."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 4)).astype(P.format.np_type)
    x[1] = x[4] = x[0]
    x[7] = x[5]
    x[3] = 0
    x[2, 2:] = 0
    x[5:, 2:] = 0
    w = rng.standard_normal((4, 5)).astype(P.format.np_type)
    return x, w


def _sec_case():
    """The SEC's run: 2 heads x 2 text queries over 8 visual tokens, with
    ties (probabilities in eighths); keep 3."""
    attn = attention(np.random.default_rng(2), 2, 1, 8, 2, levels=8).half()
    return attn, slice(1, 9), slice(9, None), 3


def _record(manifest, streams, sizes):
    """Reactive bench on the Amaranth design (PEs as submodules, not the
    Verilog's instances): returns the inputs applied and the outputs seen in
    every cycle, the ``out`` words taken, the ``result`` rows, the stream
    beats taken and the SEC's ``kept`` words taken. The run ends when
    ``busy`` drops after the SEC's ``done``."""
    dut = FocusAccelerator(P)
    ports = {
        "__".join(map(str, path)): Value.cast(value)
        for path, _, value in dut.signature.flatten(dut)
    }
    ins, outs = _ports(manifest)
    names = [p["name"] for p in outs]
    rng = np.random.default_rng(11)
    applied, seen, words, rows, kept = [], [], [], [], []
    taken = {name: 0 for name in streams}

    async def bench(ctx):
        cycle, idle_since, sec_done = 0, None, False
        while idle_since is None or cycle < idle_since + TAIL:
            assert cycle < MAX_CYCLES, f"no end after {cycle} cycles; beats taken {taken}"
            vec = {p["name"]: 0 for p in ins}
            vec.update(sizes)
            vec["start"] = int(cycle == 2)  # streams are offered before the start too
            for name, beats in streams.items():
                offer = taken[name] < len(beats) and rng.random() < 0.7
                vec[f"{name}__valid"] = int(offer)
                width = len(ports[f"{name}__payload"])  # garbage unless valid
                payload = beats[taken[name]] if offer else int(rng.integers(0, 1 << width))
                vec[f"{name}__payload"] = payload
            vec["out__ready"] = int(rng.random() < 0.6)
            vec["sec__kept__ready"] = int(rng.random() < 0.6)
            for p in ins:
                ctx.set(ports[p["name"]], vec[p["name"]])
            _, _, *values = await ctx.tick().sample(*[ports[n] for n in names])
            values = dict(zip(names, map(int, values)))
            applied.append(vec)
            seen.append([values[n] for n in names])
            for name in streams:
                taken[name] += vec[f"{name}__valid"] & values[f"{name}__ready"]
            if values["out__valid"] and vec["out__ready"]:
                words.append(values["out__payload"])
            if values["result__valid"]:
                rows.append(values["result__payload"])
            if values["sec__kept__valid"] and vec["sec__kept__ready"]:
                kept.append(values["sec__kept__payload"])
            sec_done |= bool(values["sec__done"])
            if idle_since is None and cycle > 2 and not values["busy"] and sec_done:
                idle_since = cycle
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return applied, seen, words, rows, taken, kept


def _dont_care(name: str, values: dict) -> bool:
    """An output stream's payload while its ``valid`` is low: Icarus may show
    X there (a memory read register without an initial value in the Verilog,
    0 in Amaranth)."""
    stream, _, member = name.rpartition("__")
    return member == "payload" and values.get(f"{stream}__valid") == 0


def test_focus_verilog_equals_amaranth(tmp_path):
    require("iverilog", "vvp")
    x, w = _case()
    comp = compress(x, GRID, P)
    streams, _ = _streams(comp, w, GRID, P)
    attn, visual, text, k = _sec_case()
    streams["sec__attn"], n, k = sec_beats(attn, visual, text, k, P)
    nt = -(-w.shape[1] // P.cols)
    sizes = {
        "tokens": sum(len(t) for t in comp.tiles),
        "chunks": comp.chunks,
        "ntiles": nt,
        "width": GRID[2],
        "frame_tokens": GRID[1] * GRID[2],
        "sec__n": n,
        "sec__k": k,
    }
    manifest = generate(P, tmp_path / "v", unit="focus")
    ins, outs = _ports(manifest)
    names = [p["name"] for p in outs]
    assert {p["name"] for p in ins} >= {f"{s}__payload" for s in streams} | set(sizes)
    applied, seen, words, rows, taken, kept = _record(manifest, streams, sizes)

    # The run ended: every beat taken, busy dropped and stayed down.
    assert taken == {name: len(beats) for name, beats in streams.items()}
    busy = [row[names.index("busy")] for row in seen]
    assert busy[3] == 1 and busy[-TAIL:] == [0] * TAIL

    # Icarus replays the same inputs: every output in every cycle agrees.
    _write_inputs(tmp_path, manifest, applied)
    design = str(tmp_path / "v" / manifest.verilog)
    _run_iverilog(tmp_path, _trace_tb(manifest, len(applied)), design)
    icarus = [  # None: X or Z bits
        [None if set(v) & set("xXzZ") else int(v, 16) for v in line.split()]
        for line in (tmp_path / "out.txt").read_text().splitlines()
    ]
    assert len(icarus) == len(seen)
    for cycle, (got, want) in enumerate(zip(icarus, seen, strict=True)):
        values = dict(zip(names, want, strict=True))
        diff = [
            name
            for name, g, e in zip(names, got, want, strict=True)
            if g != e and not (g is None and _dont_care(name, values))
        ]
        assert not diff, f"cycle {cycle}: Verilog differs from Amaranth on {diff}"

    # What came out is simulate_focus_gemm's result (no bubbles there).
    ref = simulate_focus_gemm(x, w, GRID, P)
    out, beats = decode_rows(comp, rows, w.shape[1], P)
    np.testing.assert_array_equal(out.view(np.uint32), ref.out.view(np.uint32))
    sic = decode_outputs(words, beats, out.astype(P.format.np_type), P)
    for name in ("zero", "similar", "root"):
        np.testing.assert_array_equal(getattr(sic, name), getattr(ref.compressed, name))
    np.testing.assert_array_equal(sic.tokens.view(np.uint16), ref.compressed.tokens.view(np.uint16))
    counters = dict(zip(names, seen[-1], strict=True))
    # Counters that do not depend on the stream timing agree too.
    timed = {"stall_cycles", "sic_cycles"}
    for name in set(STAT_NAMES) - timed:
        assert counters[name] == ref.stats[name], name

    # The SEC kept simulate_sec's tokens: one run, k indices, the last flagged, no NaN.
    layout = kept_layout(P.max_tokens)
    sec_kept = [layout.from_bits(word) for word in kept]
    assert [b.index for b in sec_kept] == simulate_sec(attn, visual, text, k, P).kept.tolist()
    assert [b.last for b in sec_kept] == [0] * (k - 1) + [1]
    assert sum(row[names.index("sec__done")] for row in seen) == 1
    assert counters["sec__nan"] == 0

    # Not vacuous: token 3 was pruned, the input and the output were merged.
    assert 3 not in np.concatenate(comp.tiles)
    assert sum(len(u) for tile in comp.unique for u in tile) < sizes["tokens"] * comp.chunks
    assert sic.similar.any()
    assert len(rows) == sizes["tokens"] * nt == len(words)
