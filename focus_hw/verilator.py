"""Simulate a unit's emitted Verilog in Verilator through its stream ports.

The ``backend="verilator"`` of :func:`focus_hw.simulate_gemm` and
:func:`focus_hw.simulate_focus_gemm`. A Verilog bench (:func:`bench_verilog`)
around the unit's top replays what the Amaranth testbenches do, cycle by
cycle: each input stream offers its beats (one hex file per stream) in
order, each recorded output stream's payloads are logged when taken, and
one control byte per cycle (``ctl.hex``) says which input streams may offer,
which output streams are ready and which pulse inputs are high, so a seeded
backpressure pattern is replayed exactly. A fixed C++ main toggles the clock.

The compiled bench is cached under ``<cache root>/verilator/`` (the root:
:func:`~focus_hw.fileio.default_cache_dir`) by the sha256 of the unit's
Verilog, the bench, the main, the flags and Verilator's version: it is
built in a temporary folder and renamed into place, so a second run of the
same design does not compile and no half-built entry is ever visible.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fileio import default_cache_dir
from .params import FocusParams

__all__ = [
    "BACKENDS",
    "Bench",
    "BenchRun",
    "VerilatorError",
    "bench_verilog",
    "build",
    "check_backend",
    "run_bench",
]

#: The simulators of ``simulate_gemm`` and ``simulate_focus_gemm``.
BACKENDS = ("amaranth", "verilator")

#: The C++ main: toggle the clock until the bench calls ``$finish``.
MAIN = """\
#include <memory>
#include "Vtb.h"
#include "verilated.h"

int main(int argc, char** argv) {
    const auto context = std::make_unique<VerilatedContext>();
    context->commandArgs(argc, argv);
    const auto top = std::make_unique<Vtb>(context.get());
    top->clk = 0;
    top->eval();
    while (!context->gotFinish()) {
        top->clk = !top->clk;
        top->eval();
    }
    top->final();
    return 0;
}
"""

#: Verilator's flags. Variables without an initial value start at zero, as
#: in Amaranth's simulator (so the memories' zero initializers are dropped,
#: :func:`~focus_hw.generate.drop_zero_init`); lint is
#: tests/test_verilator.py's business.
#: ``-fno-gate``: one copy of a PE class's code for all its instances, not one
#: per instance (a 32x32 array: 8.5 MB of C++, not 119 MB), for about 25%
#: fewer simulated cycles per second; -O1 compiles almost as fast as -O0.
FLAGS = (
    "--cc --exe --build --top-module tb --prefix Vtb -Mdir obj -o Vtb "
    "--x-assign 0 --x-initial 0 -fno-gate -Wno-fatal -Wno-lint -Wno-style"
).split() + ["-MAKEFLAGS", "OPT_FAST=-O1 OPT_SLOW=-O1 OPT_GLOBAL=-O1"]

#: A control byte as a line of ``ctl.hex``.
_HEX_LINES = [f"{b:x}\n" for b in range(256)]
#: Why a bench run ended (the ``end`` line of its log).
_ENDS = {0: "done", 1: "short", 2: "stall"}


class VerilatorError(RuntimeError):
    """Verilator is missing, or building the bench failed."""


def check_backend(backend: str, vcd=None) -> None:
    """ValueError unless ``backend`` is one of :data:`BACKENDS` (and no VCD
    is asked of Verilator); :class:`VerilatorError` if Verilator's tools are
    missing, before anything is computed."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "verilator":
        if vcd is not None:
            raise ValueError("vcd: only the amaranth backend writes a waveform")
        _require("verilator", "make")


@dataclass(frozen=True)
class Bench:
    """The ports a bench drives around ``unit``'s top (:func:`bench_verilog`)."""

    unit: str
    #: Input streams (``<s>__valid/payload/ready``), fed from files.
    ins: tuple[str, ...]
    #: Output streams logged; the first one counts the run's beats.
    outs: tuple[str, ...]
    #: One-bit inputs set per cycle.
    pulses: tuple[str, ...] = ()


@dataclass(frozen=True)
class BenchRun:
    """What a bench run logged."""

    #: Per recorded output stream, the payloads taken (until ``done``).
    beats: dict[str, list[int]]
    #: Per input stream, the beats taken and the cycle of the first (-1: none).
    taken: dict[str, int]
    first: dict[str, int]
    #: Cycle (from 0) of the last beat of the first recorded output stream.
    done: int
    #: The other outputs, the cycle after the run ended.
    ports: dict[str, int]


def control_names(ports: list[dict], bench: Bench) -> list[str]:
    """What each bit of the control byte drives, bit 0 first."""
    names = {p["name"] for p in ports}
    return [*bench.ins, *(s for s in bench.outs if f"{s}__ready" in names), *bench.pulses]


def _bits(width: int) -> str:
    return f"[{width - 1}:0] " if width > 1 else ""


def bench_verilog(top: str, ports: list[dict], bench: Bench) -> str:
    """The bench (module ``tb``, one ``clk`` input) around module ``top``
    with ``ports`` (:attr:`~focus_hw.generate.Manifest.ports`).

    Output streams with a ``__ready`` input get it from the control byte,
    the others are always ready. Control bit ``i`` belongs to
    ``bench.ins``, then ``bench.outs`` with a ready, then ``bench.pulses``,
    in that order (:func:`control_names`). The other inputs are set from
    plusargs (``+name=HEX``). The run is done when the first output stream has
    taken ``+tb_beats`` beats; then every ready is held low and, if the top
    has a ``busy`` output, the bench waits for a cycle with ``busy`` low.
    It stops early when the control bytes run out (``short``) or nothing is
    handed over for ``+tb_stall`` cycles (``stall``).
    """
    ins, outs, pulses = bench.ins, bench.outs, bench.pulses
    by_name = {p["name"]: p for p in ports}
    control = control_names(ports, bench)
    readies = [s for s in outs if s in control]
    if len(control) > 8:
        raise ValueError(f"bench: {len(control)} control bits, at most 8 fit a byte")
    members = {f"{s}__{m}" for s in (*ins, *outs) for m in ("valid", "payload", "ready")}
    statics = [
        p["name"]
        for p in ports
        if p["direction"] == "input" and p["name"] not in {*members, *pulses, "clk", "rst"}
    ]
    dumped = [p["name"] for p in ports if p["direction"] == "output" and p["name"] not in members]
    busy = "busy" in dumped

    decl = [
        f"  reg {_bits(p['width'])}{p['name']} = 0;"
        if p["direction"] == "input"
        else f"  wire {_bits(p['width'])}{p['name']};"
        for p in ports
        if p["name"] != "clk"
    ]
    for s in ins:
        decl.append(f"  integer tb_{s}_f, tb_{s}_left = 0, tb_{s}_taken = 0, tb_{s}_first = -1;")
        decl.append(f"  reg {_bits(by_name[f'{s}__payload']['width'])}tb_{s}_next = 0;")
    conns = ",\n".join(f"    .{p['name']}({p['name']})" for p in ports)
    keep = sum(1 << i for i, name in enumerate(control) if name not in readies)

    drive = []
    for i, name in enumerate(control):
        if name in ins:
            offer = f"tb_c[{i}] && tb_{name}_left > 0"
            drive.append(f"        {name}__valid <= {offer};")
            drive.append(f"        if ({offer}) {name}__payload <= tb_{name}_next;")
        else:
            drive.append(f"        {name}{'__ready' if name in readies else ''} <= tb_c[{i}];")

    init = [f'    tb_r = $value$plusargs("{n}=%h", {n});' for n in statics]
    for s in ins:
        init.append(f'    tb_r = $value$plusargs("tb_{s}=%d", tb_{s}_left);')
        init.append(f'    tb_{s}_f = $fopen("{s}.hex", "r");')
        init.append(f'    if (tb_{s}_left > 0) tb_r = $fscanf(tb_{s}_f, "%h\\n", tb_{s}_next);')

    taken = []
    for s in ins:
        taken += [
            f"      if ({s}__valid && {s}__ready) begin",
            "        tb_progress = 1;",
            f"        if (tb_{s}_first < 0) tb_{s}_first = tb_cycle;",
            f"        tb_{s}_taken = tb_{s}_taken + 1;",
            f"        tb_{s}_left = tb_{s}_left - 1;",
            f'        if (tb_{s}_left > 0) tb_r = $fscanf(tb_{s}_f, "%h\\n", tb_{s}_next);',
            "      end",
        ]
    logged = []
    for k, s in enumerate(outs):
        handshake = f"{s}__valid && {s}__ready" if s in readies else f"{s}__valid"
        logged += [
            f"        if ({handshake}) begin",
            "          tb_progress = 1;",
            f'          $fwrite(tb_log, "{s} %h\\n", {s}__payload);',
            *(["          tb_count = tb_count + 1;"] if k == 0 else []),
            "        end",
        ]
    report = [
        f'      $fwrite(tb_log, "taken {s} %0d %0d\\n", tb_{s}_taken, tb_{s}_first);' for s in ins
    ]
    report += [f'      $fwrite(tb_log, "port {n} %h\\n", {n});' for n in dumped]
    nl = "\n"
    return f"""// Bench around {top}: see focus_hw/verilator.py.
module tb(input clk);
{nl.join(decl)}
  integer tb_ctl_f, tb_log, tb_r, tb_c, tb_cycle = 0, tb_idle = 0, tb_count = 0;
  integer tb_beats = 0, tb_stall = 0, tb_done = -1, tb_why = 0;
  reg tb_stop = 0, tb_ended = 0, tb_progress = 0;

  {top} dut (
{conns}
  );

  // The inputs of the next cycle, from the next control byte.
  task tb_drive;
    begin
      if ($fscanf(tb_ctl_f, "%h\\n", tb_c) != 1) begin
        tb_why = 1;
        tb_stop = 1;
      end else begin
        if (tb_done >= 0) tb_c = tb_c & {keep};
{nl.join(drive)}
      end
    end
  endtask

  initial begin
    tb_ctl_f = $fopen("ctl.hex", "r");
    tb_log = $fopen("tb.log", "w");
    tb_r = $value$plusargs("tb_beats=%d", tb_beats);
    tb_r = $value$plusargs("tb_stall=%d", tb_stall);
{nl.join(init)}
    // Checking the handles also keeps them: Verilator 5.006 loses a handle
    // that only $fscanf reads outside the block that opened it.
    if (tb_ctl_f == 0 || tb_log == 0{"".join(f" || tb_{s}_f == 0" for s in ins)}) begin
      $display("tb: cannot open its files");
      $finish;
    end
    if (tb_beats == 0) tb_done = 0;
    tb_drive;
  end

  always @(posedge clk) begin
    if (!tb_stop) begin
      tb_progress = 0;
{nl.join(taken)}
      if (tb_done < 0) begin
{nl.join(logged)}
        if (tb_count == tb_beats) begin
          tb_done = tb_cycle;
          tb_stop = {0 if busy else 1};
        end
      end else if (tb_cycle > tb_done) begin
        tb_stop = {"!busy" if busy else 1};
      end
      tb_idle = tb_progress ? 0 : tb_idle + 1;
      if (tb_idle > tb_stall) begin
        tb_why = 2;
        tb_stop = 1;
      end
      if (!tb_stop) tb_drive;
      tb_cycle = tb_cycle + 1;
    end
  end

  // After the last clock edge: report and finish.
  always @(negedge clk) begin
    if (tb_stop && !tb_ended) begin
      tb_ended = 1;
{nl.join(report)}
      $fwrite(tb_log, "done %0d\\nend %0d %0d\\n", tb_done, tb_why, tb_cycle);
      $fclose(tb_log);
      $finish;
    end
  end
endmodule
"""


def _require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise VerilatorError(
            f"backend='verilator' needs {', '.join(missing)} on PATH "
            "(Debian/Ubuntu: apt-get install verilator make g++)"
        )


#: An ``initial`` block that only sets memory words to zero (Amaranth's
#: ``lib.memory`` with its default init, one assignment per word).
@functools.lru_cache(maxsize=4)
def _design(params: FocusParams, unit: str) -> tuple[str, list[dict], str]:
    """``unit``'s top module name, ports and Verilog (without the memories'
    zero initializers, which are most of the C++ of a large design), kept in
    memory: elaborating a large design takes minutes."""
    # not at the top: the units import the simulators
    from .generate import convert_rtlil, drop_zero_init, generate

    with tempfile.TemporaryDirectory(prefix="focus-verilog-") as tmp:
        rtlil = drop_zero_init(convert_rtlil(params, unit))
        manifest = generate(params, tmp, unit=unit, rtlil=rtlil)
        verilog = (Path(tmp) / manifest.verilog).read_text()
    return manifest.top, manifest.ports, verilog


def build(params: FocusParams, bench: Bench) -> Path:
    """The compiled bench (an executable) of ``bench`` around the Verilog of
    ``bench.unit`` for ``params``, from the cache or built into it. Raises
    :class:`VerilatorError` if Verilator (or make) is missing or the build
    fails."""
    _require("verilator", "make")
    top, ports, verilog = _design(params, bench.unit)
    text = bench_verilog(top, ports, bench)
    version = subprocess.run(["verilator", "--version"], capture_output=True, text=True)
    key = hashlib.sha256(
        "\0".join([verilog, text, MAIN, " ".join(FLAGS), version.stdout]).encode()
    ).hexdigest()
    root = default_cache_dir() / "verilator"
    path = root / f"tb-{key[:32]}"
    if path.is_file():
        return path
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        for name, source in (("dut.v", verilog), ("tb.v", text), ("main.cpp", MAIN)):
            (work / name).write_text(source)
        jobs = ["-j", str(min(os.cpu_count() or 1, 4))]
        proc = subprocess.run(
            ["verilator", *FLAGS, *jobs, "tb.v", "dut.v", "main.cpp"],
            cwd=work,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not (work / "obj" / "Vtb").is_file():
            log = (proc.stdout + proc.stderr)[-4000:]
            raise VerilatorError(f"Verilator build failed (exit {proc.returncode}):\n{log}")
        os.replace(work / "obj" / "Vtb", path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def _parse(text: str, outs) -> tuple[str, int, BenchRun]:
    """Why the run ended, the cycles it ran and what it logged."""
    beats = {s: [] for s in outs}
    taken, first, ports, done, end, cycles = {}, {}, {}, -1, None, 0
    for line in text.splitlines():
        head, *rest = line.split()
        if head in beats:
            beats[head].append(int(rest[0], 16))
        elif head == "taken":
            taken[rest[0]], first[rest[0]] = int(rest[1]), int(rest[2])
        elif head == "port":
            ports[rest[0]] = int(rest[1], 16)
        elif head == "done":
            done = int(rest[0])
        elif head == "end":
            end, cycles = _ENDS[int(rest[0])], int(rest[1])
    if end is None:
        raise VerilatorError(f"the bench's log ends early:\n{text[-2000:]}")
    return end, cycles, BenchRun(beats, taken, first, done, ports)


def run_bench(
    params: FocusParams,
    bench: Bench,
    streams: dict[str, list[int]],
    control: Callable[[int], dict[str, np.ndarray]],
    *,
    statics: dict[str, int] | None = None,
    beats: int,
    stall: int,
    cycles: int,
) -> BenchRun:
    """Run ``bench`` (:func:`build`) for ``params``: ``streams`` the beats
    of each input stream, ``statics`` the other inputs' values, ``beats``
    the run's length in beats of the first output stream. ``control(n)``
    gives the first ``n`` cycles' control bits by name (an input stream's
    offer, an output stream's ready, a pulse); it is asked again for twice
    as many when a run needs more than ``cycles``. Raises RuntimeError if
    nothing moves for ``stall`` cycles."""
    binary = build(params, bench)
    top, ports, _ = _design(params, bench.unit)
    names = control_names(ports, bench)
    args = [f"+tb_beats={beats}", f"+tb_stall={stall}"]
    args += [f"+tb_{s}={len(streams[s])}" for s in bench.ins]
    args += [f"+{name}={value:x}" for name, value in (statics or {}).items()]
    with tempfile.TemporaryDirectory(prefix="focus-verilator-") as tmp:
        work = Path(tmp)
        for name in bench.ins:
            (work / f"{name}.hex").write_text("".join(f"{w:x}\n" for w in streams[name]))
        while True:
            bits = control(cycles)
            byte = sum(np.asarray(bits[n], np.uint8) << i for i, n in enumerate(names))
            (work / "ctl.hex").write_text("".join(_HEX_LINES[b] for b in byte.tolist()))
            proc = subprocess.run([str(binary), *args], cwd=work, capture_output=True, text=True)
            log = work / "tb.log"
            if proc.returncode != 0 or not log.is_file():
                raise VerilatorError(
                    f"the Verilator bench failed (exit {proc.returncode}):\n"
                    f"{(proc.stdout + proc.stderr)[-4000:]}"
                )
            end, ran, run = _parse(log.read_text(), bench.outs)
            if end == "done":
                return run
            if end == "stall":
                first = bench.outs[0]
                raise RuntimeError(
                    f"{top} made no progress for {stall} cycles in Verilator "
                    f"({len(run.beats[first])} of {beats} {first} beats; "
                    f"stream beats taken {run.taken})"
                )
            if ran + 1 < cycles:
                raise VerilatorError(f"the bench read {ran + 1} of {cycles} control lines")
            cycles *= 2
