"""Area of a big systolic array without elaborating all of its PEs.

Elaborating a 32x32 fp16 array takes Amaranth about 9 minutes (one netlist
per PE instance), so the array's area is composed from two small designs:

* the **shell**: the full-size array with every PE replaced by a blackbox of
  the same ports (skew/de-skew registers, weight-load and handshake logic);
* the **PE classes**: a reduced array of ``min(rows, 3) x min(cols, 3)`` PEs,
  deduplicated (:mod:`synth.dedup`) and synthesized hierarchically. Amaranth
  specializes PEs by context (row 0 adds to a constant zero, the last column
  drives no ``a_out``), so a PE's netlist depends only on whether it is in
  the first, an inner or the last row/column -- all of which the reduced
  array contains. PE ``(k, c)`` of the full array counts as the reduced PE at
  the same edge/inner position.

``tests/test_synth.py`` checks this composition against a direct
hierarchical synthesis of the whole array.
"""

from __future__ import annotations

from unittest import mock

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal
from amaranth.lib import wiring

import focus_hw.systolic
from focus_hw.generate import convert_rtlil, top_name
from focus_hw.params import FocusParams
from focus_hw.pe import PE

from .area import FlowResult, ModuleArea, synthesize
from .dedup import dedup_rtlil

__all__ = ["STUB", "reduced_params", "shell_rtlil", "stub_verilog", "compose_array", "needs_composition"]

#: Name of the blackbox module standing for a PE in the shell.
STUB = "focus_pe_blackbox"
_REDUCED = 3


def needs_composition(params: FocusParams) -> bool:
    return params.rows > _REDUCED or params.cols > _REDUCED


def reduced_params(params: FocusParams) -> FocusParams:
    return params.replace(rows=min(params.rows, _REDUCED), cols=min(params.cols, _REDUCED))


def _reduced_index(i: int, n: int, reduced: int) -> int:
    """First -> first, last -> last, inner -> the reduced array's inner one."""
    if i == 0:
        return 0
    if i == n - 1:
        return reduced - 1
    return 1


class _BlackboxPE(wiring.Component):
    """A PE's ports around an instance of the :data:`STUB` blackbox."""

    def __init__(self, dtype: str, mac_pipeline: int = 0):
        pe = PE(dtype, mac_pipeline)
        pe._MustUse__silence = True     # only its signature is used
        super().__init__(pe.signature)

    def elaborate(self, platform):
        m = Module()
        ports = {("i_" if member.flow == wiring.In else "o_") + "__".join(path): value
                 for path, member, value in self.signature.flatten(self)}
        m.submodules.pe = Instance(STUB, i_clk=ClockSignal(), i_rst=ResetSignal(), **ports)
        return m


def shell_rtlil(params: FocusParams) -> str:
    """RTLIL of the full-size array with blackbox PEs."""
    with mock.patch.object(focus_hw.systolic, "PE", _BlackboxPE):
        text = convert_rtlil(params, "array")
    stubs = text.count(f"cell \\{STUB} ")
    if stubs != params.rows * params.cols:
        raise RuntimeError(f"array shell holds {stubs} blackbox PEs, expected {params.rows * params.cols}: "
                           "focus_hw.systolic no longer builds its PEs through focus_hw.systolic.PE")
    return text


def stub_verilog(params: FocusParams) -> str:
    """Verilog declaration of the :data:`STUB` blackbox for ``params``."""
    pe = PE(params.dtype, params.mac_pipeline)
    pe._MustUse__silence = True
    ports = ["input clk", "input rst"]
    for path, member, value in pe.signature.flatten(pe):
        direction = "input" if member.flow == wiring.In else "output"
        ports.append(f"{direction} [{len(value) - 1}:0] {'__'.join(path)}")
    return f"(* blackbox *)\nmodule {STUB}({', '.join(ports)});\nendmodule\n"


def compose_array(params: FocusParams, workdir, *, flow: str = "generic",
                  timeout: float | None = None, netlists: tuple[str, str] | None = None) -> FlowResult:
    """Composed area of the array for ``params``. ``netlists``: the already
    converted (reduced array, shell) RTLIL texts, if at hand."""
    top = top_name("array")
    reduced = reduced_params(params)
    reduced_text, shell = netlists or (convert_rtlil(reduced, "array"), shell_rtlil(params))
    pe_text, mapping = dedup_rtlil(reduced_text, top)
    (workdir / "pes").mkdir(parents=True, exist_ok=True)
    (workdir / "shell").mkdir(parents=True, exist_ok=True)
    (workdir / "pes" / "design.il").write_text(pe_text)
    (workdir / "shell" / "design.il").write_text(shell)
    (workdir / "shell" / "stub.v").write_text(stub_verilog(params))
    pes = synthesize("design.il", top, workdir / "pes", flow=flow, timeout=timeout)
    shell_area = synthesize("design.il", top, workdir / "shell", flow=flow, timeout=timeout,
                            prelude=["read_verilog -sv stub.v"])

    # instances of each PE class in the full array
    counts: dict[str, int] = {}
    for k in range(params.rows):
        for c in range(params.cols):
            rk = _reduced_index(k, params.rows, reduced.rows)
            rc = _reduced_index(c, params.cols, reduced.cols)
            rep = mapping[f"{top}.pe_{rk}_{rc}"]
            counts[rep] = counts.get(rep, 0) + 1
    pe_modules = {m.module: m for m in pes.modules}
    shell_top = next(m for m in shell_area.modules if m.module == top)
    own = {t: n for t, n in shell_top.cells_by_type.items() if t != STUB and t != f"\\{STUB}"}
    modules = [ModuleArea(module=top, label=top, instances=1, cells=sum(own.values()),
                          cells_by_type=own, transistors=shell_top.transistors)]
    totals = dict(own)
    for rep, n in counts.items():
        m = pe_modules[rep]
        modules.append(ModuleArea(module=m.module, label=m.label, instances=n, cells=m.cells,
                                  cells_by_type=m.cells_by_type, transistors=m.transistors))
        for t, c in m.cells_by_type.items():
            totals[t] = totals.get(t, 0) + n * c
    transistors = None
    if shell_top.transistors is not None:
        transistors = shell_top.transistors + sum(n * pe_modules[r].transistors for r, n in counts.items())
    result = FlowResult(flow=flow, flat=False, top=top, modules=modules,
                        cells_by_type=dict(sorted(totals.items())), total_cells=sum(totals.values()),
                        total_transistors=transistors,
                        # (the shell's estimate is marked incomplete for the blackboxes)
                        transistors_complete=pes.transistors_complete,
                        wall_s=pes.wall_s + shell_area.wall_s,
                        extra={"composed": True, "reduced": [reduced.rows, reduced.cols]})
    return result

