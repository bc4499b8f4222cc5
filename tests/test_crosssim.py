"""Cross-check: the shipped Verilog, simulated by Icarus Verilog, gives the
same outputs as the Amaranth simulation on the same vectors.

Testbenches are generated here: ``trace`` benches drive one input vector per
cycle and record every output each cycle (MAC, PE; the reference is the
Amaranth simulation of the same component); the array bench drives the
weight/activation streams with valid/ready handshakes and an output
backpressure pattern (reference: :func:`focus_hw.simulate_gemm`, which
simulates the flat Amaranth design; the shipped array Verilog is the shell
around one module per PE class).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from amaranth.sim import Simulator

from focus_hw import FocusParams
from focus_hw.generate import build_unit, generate
from tools import require


@pytest.fixture(autouse=True)
def _icarus():
    require("iverilog", "vvp")


def _run_iverilog(workdir, tb: str, design: str):
    (workdir / "tb.v").write_text(tb)
    # Verilog-2005 semantics: Amaranth's output relies on declaration
    # initializers being events at time 0 (under -g2012 Icarus leaves its
    # combinational ``always @*`` blocks at X until an input changes).
    proc = subprocess.run(
        ["iverilog", "-g2005", "-o", "sim.vvp", "-s", "tb", "tb.v", design],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"iverilog failed:\n{proc.stdout}{proc.stderr}"
    proc = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=workdir, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TB_DONE" in proc.stdout, proc.stdout
    assert "TB_X" not in proc.stdout, f"X/Z on a handshake signal:\n{proc.stdout}"


def _ports(manifest):
    ins = [
        p for p in manifest.ports if p["direction"] == "input" and p["name"] not in ("clk", "rst")
    ]
    outs = [p for p in manifest.ports if p["direction"] == "output"]
    return ins, outs


def _hex(value: int, width: int) -> str:
    return format(value, f"0{(width + 3) // 4}x")


def _write_inputs(workdir, manifest, vectors: list[dict]) -> None:
    """in.hex for :func:`_trace_tb`: line i holds the inputs of cycle i
    (``vectors[i]``: port name -> value), concatenated, the first port most
    significant."""
    ins, _ = _ports(manifest)
    width = sum(p["width"] for p in ins)
    lines = []
    for vec in vectors:
        word = 0
        for p in ins:
            word = (word << p["width"]) | vec[p["name"]]
        lines.append(_hex(word, width))
    (workdir / "in.hex").write_text("\n".join(lines) + "\n")


def _trace_tb(manifest, n: int) -> str:
    """Bench: cycle i applies line i of in.hex (inputs concatenated, first
    port most significant), then writes all outputs (hex) to out.txt."""
    ins, outs = _ports(manifest)
    in_w = sum(p["width"] for p in ins)
    decl = "\n".join(f"  reg [{p['width'] - 1}:0] {p['name']};" for p in ins)
    decl += "\n" + "\n".join(f"  wire [{p['width'] - 1}:0] {p['name']};" for p in outs)
    clocked = [p for p in manifest.ports if p["name"] in ("clk", "rst")]
    conns = ",\n".join(f"    .{p['name']}({p['name']})" for p in clocked + ins + outs)
    fmt = " ".join(["%h"] * len(outs))
    return f"""`timescale 1ns/1ps
module tb;
  reg clk = 0;
  reg rst = 0;
{decl}
  reg [{in_w - 1}:0] vec [0:{n - 1}];
  integer i, f;
  {manifest.top} dut (
{conns}
  );
  always #5 clk = ~clk;
  initial begin
    $readmemh("in.hex", vec);
    f = $fopen("out.txt", "w");
    for (i = 0; i < {n}; i = i + 1) begin
      {{{", ".join(p["name"] for p in ins)}}} = vec[i];
      #1;
      $fwrite(f, "{fmt}\\n", {", ".join(p["name"] for p in outs)});
      @(posedge clk);
      #1;
    end
    $fclose(f);
    $display("TB_DONE");
    $finish;
  end
endmodule
"""


def _amaranth_trace(params, unit: str, manifest, vectors: list[dict]) -> list[list[int]]:
    """Outputs per cycle of the Amaranth simulation of the same unit."""
    dut = build_unit(params, unit)
    ports = {"__".join(map(str, path)): value for path, _, value in dut.signature.flatten(dut)}
    ins, outs = _ports(manifest)
    clocked = any(p["name"] == "clk" for p in manifest.ports)
    trace = []

    async def bench(ctx):
        for vec in vectors:
            for p in ins:
                ctx.set(ports[p["name"]], vec[p["name"]])
            if clocked:
                _, _, *values = await ctx.tick().sample(*[ports[p["name"]] for p in outs])
            else:
                await ctx.delay(1e-8)
                values = [ctx.get(ports[p["name"]]) for p in outs]
            trace.append([int(v) for v in values])

    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return trace


def _verilog_trace(tmp_path, params, unit: str, vectors: list[dict]):
    manifest = generate(params, tmp_path, unit=unit)
    _write_inputs(tmp_path, manifest, vectors)
    _run_iverilog(tmp_path, _trace_tb(manifest, len(vectors)), manifest.verilog)
    got = [
        [int(x, 16) for x in line.split()]
        for line in (tmp_path / "out.txt").read_text().splitlines()
    ]
    return manifest, got


def _random_operand(rng, dtype: str, n: int) -> np.ndarray:
    """Raw bit patterns: random values, with zeros, infinities, NaNs and
    subnormals mixed in for float formats."""
    if dtype == "int8":
        return rng.integers(0, 256, n)
    bits = rng.integers(0, 1 << 16, n)
    special = np.array(
        [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x0001, 0x3C00, 0xBC00]
        if dtype == "fp16"
        else [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x3F80, 0xBF80]
    )
    pick = rng.random(n) < 0.15
    bits[pick] = rng.choice(special, pick.sum())
    return bits


def _random_acc(rng, dtype: str, n: int) -> np.ndarray:
    if dtype == "int8":
        return rng.integers(0, 1 << 32, n)
    values = (rng.standard_normal(n) * 4).astype(np.float32).view(np.uint32).astype(np.int64)
    pick = rng.random(n) < 0.1
    values[pick] = rng.choice([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 1], pick.sum())
    return values


@pytest.mark.parametrize(
    "dtype,pipeline", [("int8", 0), ("int8", 2), ("fp16", 0), ("fp16", 1), ("bf16", 1)]
)
def test_mac_verilog_matches_amaranth(tmp_path, dtype, pipeline):
    params = FocusParams(dtype=dtype, mac_pipeline=pipeline)
    rng = np.random.default_rng(7)
    n = 300
    a, b, acc = (
        _random_operand(rng, dtype, n),
        _random_operand(rng, dtype, n),
        _random_acc(rng, dtype, n),
    )
    en = (rng.random(n) < 0.8).astype(int)
    vectors = [
        {"a": int(a[i]), "b": int(b[i]), "acc": int(acc[i]), "en": int(en[i])} for i in range(n)
    ]
    manifest, got = _verilog_trace(tmp_path, params, "mac", vectors)
    want = _amaranth_trace(params, "mac", manifest, vectors)
    assert got == want
    out = np.array(
        [row[[p["name"] for p in _ports(manifest)[1]].index("out")] for row in got], np.int64
    )
    if pipeline == 0 and dtype == "int8":  # independent numpy reference for the combinational MAC
        prod = a.astype(np.uint8).view(np.int8).astype(np.int64) * b.astype(np.uint8).view(np.int8)
        ref = (acc.astype(np.uint32).view(np.int32).astype(np.int64) + prod) & 0xFFFFFFFF
        assert out.tolist() == ref.tolist()
    if pipeline == 0 and dtype == "fp16":  # numpy IEEE: fp32(acc) + fp32(a) * fp32(b)
        f32 = lambda bits: bits.astype(np.uint16).view(np.float16).astype(np.float32)  # noqa: E731
        with np.errstate(all="ignore"):
            ref = acc.astype(np.uint32).view(np.float32) + f32(a) * f32(b)
        got_f = out.astype(np.uint32).view(np.float32)
        np.testing.assert_array_equal(np.isnan(got_f), np.isnan(ref))
        keep = ~np.isnan(ref)
        np.testing.assert_array_equal(got_f[keep].view(np.uint32), ref[keep].view(np.uint32))


@pytest.mark.parametrize("dtype", ["int8", "fp16"])
def test_pe_verilog_matches_amaranth(tmp_path, dtype):
    params = FocusParams(dtype=dtype, mac_pipeline=1)
    rng = np.random.default_rng(11)
    n = 250
    a, w, psum = (
        _random_operand(rng, dtype, n),
        _random_operand(rng, dtype, n),
        _random_acc(rng, dtype, n),
    )
    bits = lambda p: (rng.random(n) < p).astype(int)  # noqa: E731
    en, swap, we = bits(0.85), bits(0.2), bits(0.3)
    vectors = [
        {
            "a_in": int(a[i]),
            "w_data": int(w[i]),
            "psum_in": int(psum[i]),
            "en": int(en[i]),
            "swap_in": int(swap[i]),
            "w_we": int(we[i]),
        }
        for i in range(n)
    ]
    manifest, got = _verilog_trace(tmp_path, params, "pe", vectors)
    assert {p["name"] for p in _ports(manifest)[0]} == set(vectors[0])
    want = _amaranth_trace(params, "pe", manifest, vectors)
    assert got == want


# -- the systolic array through its stream interfaces ---------------------------


def _array_tb(
    manifest, params: FocusParams, n_w: int, n_a: int, n_ready: int, max_cycles: int
) -> str:
    w_w, a_w, o_w = (
        params.cols * params.operand_bits,
        params.rows * params.operand_bits + 1,
        params.cols * params.acc_bits,
    )
    return f"""`timescale 1ns/1ps
module tb;
  reg clk = 0;
  reg rst = 0;
  reg weight__valid = 0, act__valid = 0, out__ready = 0;
  reg [{w_w - 1}:0] weight__payload = 0;
  reg [{a_w - 1}:0] act__payload = 0;
  wire weight__ready, act__ready, out__valid;
  wire [{o_w - 1}:0] out__payload;
  reg [{w_w - 1}:0] wmem [0:{n_w - 1}];
  reg [{a_w - 1}:0] amem [0:{n_a - 1}];
  reg rmem [0:{n_ready - 1}];
  integer wi = 0, ai = 0, got = 0, cycle = 0, first = -1, f;
  reg w_ready, a_ready, o_valid, o_ready;
  reg [{o_w - 1}:0] o_word;
  {manifest.top} dut (
    .clk(clk), .rst(rst),
    .weight__valid(weight__valid), .weight__ready(weight__ready), .weight__payload(weight__payload),
    .act__valid(act__valid), .act__ready(act__ready), .act__payload(act__payload),
    .out__valid(out__valid), .out__ready(out__ready), .out__payload(out__payload)
  );
  always #5 clk = ~clk;
  initial begin
    $readmemh("w.hex", wmem);
    $readmemh("a.hex", amem);
    $readmemb("ready.bin", rmem);
    f = $fopen("out.txt", "w");
    while (got < {n_a} && cycle < {max_cycles}) begin
      weight__valid = wi < {n_w};
      if (wi < {n_w}) weight__payload = wmem[wi];
      act__valid = ai < {n_a};
      if (ai < {n_a}) act__payload = amem[ai];
      out__ready = cycle < {n_ready} ? rmem[cycle] : 1'b1;
      #1;
      w_ready = weight__ready; a_ready = act__ready; o_valid = out__valid;
      o_ready = out__ready; o_word = out__payload;
      if (^{{w_ready, a_ready, o_valid}} === 1'bx) $display("TB_X at cycle %0d", cycle);
      @(posedge clk);
      #1;
      if (wi < {n_w} && w_ready) wi = wi + 1;
      if (ai < {n_a} && a_ready) begin
        if (first < 0) first = cycle;
        ai = ai + 1;
      end
      if (o_valid && o_ready) begin
        $fwrite(f, "%h\\n", o_word);
        got = got + 1;
      end
      cycle = cycle + 1;
    end
    $fwrite(f, "cycles %0d\\n", cycle - 1 - first + 1);
    $fclose(f);
    $display("TB_DONE");
    $finish;
  end
endmodule
"""


def _gemm_operands(rng, params: FocusParams, m: int, k: int, n: int):
    if params.dtype == "int8":
        return (
            rng.integers(-128, 128, (m, k)).astype(np.int8),
            rng.integers(-128, 128, (k, n)).astype(np.int8),
        )
    return (
        rng.standard_normal((m, k)).astype(np.float16),
        rng.standard_normal((k, n)).astype(np.float16),
    )


@pytest.mark.parametrize(
    "rows,cols,dtype,pipeline",
    [
        (2, 2, "int8", 0),
        (4, 4, "int8", 1),
        (2, 2, "fp16", 0),
        (4, 4, "fp16", 1),
        (8, 8, "int8", 1),
        (8, 8, "fp16", 1),
    ],
)
def test_array_verilog_matches_simulate_gemm(tmp_path, rows, cols, dtype, pipeline):
    from focus_hw import simulate_gemm

    params = FocusParams(rows=rows, cols=cols, dtype=dtype, mac_pipeline=pipeline)
    a, w, ready = array_case(params)
    ref = simulate_gemm(a, w, params, out_ready=ready)
    manifest, tb = write_array_bench(tmp_path, params, a, w, ready)
    _run_iverilog(tmp_path, tb, manifest.verilog)
    got, cycles = read_array_out(tmp_path, params, a.shape[0], w.shape[1])
    np.testing.assert_array_equal(got, ref.out.view(np.uint32))
    assert cycles == ref.cycles
    if dtype == "int8":  # exact integer product as an independent check
        np.testing.assert_array_equal(got.view(np.int32), a.astype(np.int32) @ w.astype(np.int32))


def array_case(params: FocusParams):
    """Operands (M=9, K=rows, N=cols-1 when cols > 2: zero-padded columns)
    and an output-ready pattern for the array benches."""
    rows, cols = params.rows, params.cols
    rng = np.random.default_rng(rows * 10 + cols)
    m, k, n = 9, rows, cols - (cols > 2)
    a, w = _gemm_operands(rng, params, m, k, n)
    ready = [int(x) for x in rng.random(60) < 0.6]
    return a, w, ready


def write_array_bench(workdir, params: FocusParams, a, w, ready):
    """Write the array's Verilog and the stimulus files to ``workdir``;
    return the manifest and the bench's text (:func:`_array_tb`)."""
    rows, cols, dtype = params.rows, params.cols, params.dtype
    (m, k), n = a.shape, w.shape[1]
    op, mask = params.operand_bits, (1 << params.operand_bits) - 1
    a_bits = a.view(np.uint8 if dtype == "int8" else np.uint16).astype(np.int64)
    w_bits = w.view(np.uint8 if dtype == "int8" else np.uint16).astype(np.int64)
    w_lines = []
    for r in range(rows):  # one beat per weight row, column c in bits [c*op, (c+1)*op)
        word = sum((int(w_bits[r, c]) & mask) << (c * op) for c in range(n))
        w_lines.append(_hex(word, cols * op))
    a_lines = []
    for r in range(m):  # lanes k in bits [k*op, ...), swap flag on top, first row only
        word = sum((int(a_bits[r, j]) & mask) << (j * op) for j in range(k)) | (
            int(r == 0) << (rows * op)
        )
        a_lines.append(_hex(word, rows * op + 1))
    (workdir / "w.hex").write_text("\n".join(w_lines) + "\n")
    (workdir / "a.hex").write_text("\n".join(a_lines) + "\n")
    (workdir / "ready.bin").write_text("\n".join(map(str, ready)) + "\n")
    manifest = generate(params, workdir, unit="array")
    return manifest, _array_tb(manifest, params, rows, m, len(ready), 2000)


def read_array_out(workdir, params: FocusParams, m: int, n: int) -> tuple[np.ndarray, int]:
    """The (m, n) output bit patterns (uint32) and cycle count the array bench wrote."""
    lines = (workdir / "out.txt").read_text().split()
    assert lines[-2] == "cycles"
    acc = params.acc_bits
    words = [int(x, 16) for x in lines[:-2]]
    got = np.array(
        [[(wd >> (c * acc)) & ((1 << acc) - 1) for c in range(n)] for wd in words], np.uint32
    )
    assert got.shape == (m, n)
    return got, int(lines[-1])
