"""Area of a big systolic array without elaborating all of its PEs.

Elaborating a 32x32 fp16 array takes Amaranth about 9 minutes (one netlist
per PE instance), so the array's area is composed from two small designs:

* the **shell**: the full-size array with every PE replaced by a blackbox of
  the same ports (skew/de-skew registers, weight-load and handshake logic);
* the **PE classes**: a reduced array with one row per distinct *row class*
  and ``min(cols, 3)`` columns, deduplicated (:mod:`synth.dedup`) and
  synthesized hierarchically. Amaranth specializes PEs by context (row 0
  adds to a constant zero, the last column drives no ``a_out``), and int8
  PEs have per-row partial-sum widths
  (:func:`focus_hw.systolic.pe_psum_widths`), so a PE's netlist depends only
  on its row's class -- first/inner/last row and its ``(psum_in, psum_out)``
  widths -- and on whether it is in the first, an inner or the last column.
  The reduced array's row ``i`` is built with the widths of its class's
  first full-array row; PE ``(k, c)`` of the full array counts as the
  reduced PE of its row class at the same edge/inner column position.

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
from focus_hw.systolic import pe_psum_widths

from .area import FlowResult, ModuleArea, synthesize
from .dedup import dedup_rtlil

__all__ = ["STUB", "row_classes", "reduced_params", "reduced_rtlil", "shell_rtlil", "stub_verilog",
           "compose_array", "needs_composition"]

#: Name (prefix) of the blackbox modules standing for the PEs in the shell.
STUB = "focus_pe_blackbox"
_REDUCED = 3


def needs_composition(params: FocusParams) -> bool:
    return params.rows > _REDUCED or params.cols > _REDUCED


def row_classes(params: FocusParams) -> list[int]:
    """Class index (a row of the reduced array) of every row of the array, and
    implicitly the reduced rows: class ``i`` first appears at full row
    ``row_classes(params).index(i)``."""
    widths, classes, index = pe_psum_widths(params), {}, []
    for k in range(params.rows):
        key = (k == 0, k == params.rows - 1, widths[k])
        index.append(classes.setdefault(key, len(classes)))
    return index


def reduced_params(params: FocusParams) -> FocusParams:
    """``rows``: one per row class; ``cols``: first, inner, last (at most 3)."""
    return params.replace(rows=max(row_classes(params)) + 1, cols=min(params.cols, _REDUCED))


def reduced_rtlil(params: FocusParams) -> str:
    """RTLIL of the reduced array: its row ``i`` holds PEs built exactly as
    those of the first full-array row of class ``i``."""
    index, widths = row_classes(params), pe_psum_widths(params)
    reduced = reduced_params(params)
    rep_widths = [widths[index.index(i)] for i in range(reduced.rows)]
    with mock.patch.object(focus_hw.systolic, "pe_psum_widths", lambda p: rep_widths):
        return convert_rtlil(reduced, "array")


def _stub_name(pe: PE) -> str:
    """Blackbox name for a PE's port widths (int8 rows differ)."""
    return f"{STUB}_{len(pe.psum_in)}_{len(pe.psum_out)}"


def _reduced_index(i: int, n: int, reduced: int) -> int:
    """First -> first, last -> last, inner -> the reduced array's inner one."""
    if i == 0:
        return 0
    if i == n - 1:
        return reduced - 1
    return 1


class _BlackboxPE(wiring.Component):
    """A PE's ports around an instance of the :data:`STUB` blackbox of its widths."""

    def __init__(self, *args, **kwargs):
        pe = PE(*args, **kwargs)
        pe._MustUse__silence = True     # only its signature is used
        self.stub = _stub_name(pe)
        super().__init__(pe.signature)

    def elaborate(self, platform):
        m = Module()
        ports = {("i_" if member.flow == wiring.In else "o_") + "__".join(path): value
                 for path, member, value in self.signature.flatten(self)}
        m.submodules.pe = Instance(self.stub, i_clk=ClockSignal(), i_rst=ResetSignal(), **ports)
        return m


def shell_rtlil(params: FocusParams) -> str:
    """RTLIL of the full-size array with blackbox PEs."""
    with mock.patch.object(focus_hw.systolic, "PE", _BlackboxPE):
        text = convert_rtlil(params, "array")
    stubs = text.count(f"cell \\{STUB}_")
    if stubs != params.rows * params.cols:
        raise RuntimeError(f"array shell holds {stubs} blackbox PEs, expected {params.rows * params.cols}: "
                           "focus_hw.systolic no longer builds its PEs through focus_hw.systolic.PE")
    return text


def stub_verilog(params: FocusParams) -> str:
    """Verilog declarations of the :data:`STUB` blackboxes for ``params``."""
    decls = {}
    for widths in pe_psum_widths(params):
        kw = {} if widths is None else dict(zip(("psum_in_bits", "psum_bits"), widths))
        pe = PE(params.dtype, params.mac_pipeline, **kw)
        pe._MustUse__silence = True
        ports = ["input clk", "input rst"]
        for path, member, value in pe.signature.flatten(pe):
            direction = "input" if member.flow == wiring.In else "output"
            ports.append(f"{direction} [{len(value) - 1}:0] {'__'.join(path)}")
        decls[_stub_name(pe)] = f"(* blackbox *)\nmodule {_stub_name(pe)}({', '.join(ports)});\nendmodule\n"
    return "".join(decls.values())


def compose_array(params: FocusParams, workdir, *, flow: str = "generic",
                  timeout: float | None = None, netlists: tuple[str, str] | None = None) -> FlowResult:
    """Composed area of the array for ``params``. ``netlists``: the already
    converted (reduced array, shell) RTLIL texts, if at hand."""
    top = top_name("array")
    reduced = reduced_params(params)
    reduced_text, shell = netlists or (reduced_rtlil(params), shell_rtlil(params))
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
    for k, rk in enumerate(row_classes(params)):
        for c in range(params.cols):
            rc = _reduced_index(c, params.cols, reduced.cols)
            rep = mapping[f"{top}.pe_{rk}_{rc}"]
            counts[rep] = counts.get(rep, 0) + 1
    pe_modules = {m.module: m for m in pes.modules}
    shell_top = next(m for m in shell_area.modules if m.module == top)
    own = {t: n for t, n in shell_top.cells_by_type.items() if not t.lstrip("\\").startswith(STUB)}
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

