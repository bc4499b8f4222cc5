"""Synthesis flows and the per-module area read from Yosys ``stat -json``.

Flows:

* ``generic``: ``synth`` to Yosys' internal gate library; cell counts, then
  flip-flops with enables/resets lowered to plain DFF + mux
  (``dfflegalize``) for the ``stat -tech cmos`` transistor estimate;
* ``ecp5``: ``synth_ecp5`` (LUT4, TRELLIS_FF, CCU2C, MULT18X18D...);
* ``ice40``: ``synth_ice40`` (SB_LUT4, SB_DFF*, SB_CARRY...).

Storage (``amaranth.lib.memory``) is not mapped to flip-flops: the generic
flow keeps each memory as one ``$mem_v2`` cell (``synth`` without its
``memory_map`` step), logic cells and transistors exclude it, and its size is
reported in bits (``memory_bits``, read from ``stat -json`` before synthesis)
for an SRAM model to price, as a Design Compiler + CACTI split would.

Every flow flattens the design except modules marked ``keep_hierarchy``: in a
deduplicated netlist (:mod:`synth.dedup`, ``flat=False``) those are the
distinct children of the top (e.g. the PE classes), each synthesized once
and counted once per instance; ``flat=True`` means a netlist without such
marks, synthesized as one flat module.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .dedup import module_label
from .parts import merge_stats, partition
from .yosys import read_json, run_yosys

__all__ = ["FLOW_VERSION", "FLOWS", "ModuleArea", "FlowResult", "synthesize", "parse_stat"]

FLOWS = ("generic", "ecp5", "ice40")
#: Version of the flow scripts (part of every cache key).
FLOW_VERSION = 3
#: Cells that are not logic: debug scopes after flatten, and kept memories
#: (counted in bits instead).
_NOT_LOGIC = {"$scopeinfo", "$mem_v2"}


@dataclass
class ModuleArea:
    """One distinct module: its own cells (submodule instances excluded)."""

    module: str
    label: str
    instances: int
    cells: int
    cells_by_type: dict[str, int]
    transistors: int | None = None  # own CMOS estimate (generic flow only)
    memory_bits: int = 0  # own storage bits (lib.memory), not in cells


@dataclass
class FlowResult:
    """Area of one design through one flow; totals count every instance."""

    flow: str
    flat: bool
    top: str
    modules: list[ModuleArea]
    cells_by_type: dict[str, int]
    total_cells: int
    total_transistors: int | None = None
    transistors_complete: bool = True  # False when Yosys lacked a cell's cost
    total_memory_bits: int = 0  # storage bits, every instance counted
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FlowResult:
        data = dict(data)
        data["modules"] = [ModuleArea(**m) for m in data["modules"]]
        return cls(**data)


def _name(key: str) -> str:
    return key[1:] if key.startswith("\\") else key


def _transistors(entry: dict) -> tuple[int | None, bool]:
    raw = entry.get("estimated_num_transistors")
    if raw is None:
        return None, False
    text = str(raw)
    return int(text.rstrip("+")), not text.endswith("+")


def parse_stat(stat: dict, top: str, cmos: dict | None = None, memory: dict | None = None) -> dict:
    """Per-module own area and instance-weighted totals from ``stat -json``
    (and optionally ``stat -json -tech cmos`` output and the pre-synthesis
    ``stat -json`` that counts memory bits)."""
    raw = {_name(k): v for k, v in stat["modules"].items()}
    if top not in raw:
        raise ValueError(f"stat JSON: no module {top!r} (modules: {sorted(raw)[:5]})")
    children = {
        m: {_name(t): n for t, n in e["num_cells_by_type"].items() if _name(t) in raw}
        for m, e in raw.items()
    }
    own = {
        m: {
            t: n
            for t, n in e["num_cells_by_type"].items()
            if _name(t) not in raw and t not in _NOT_LOGIC
        }
        for m, e in raw.items()
    }
    # propagate counts in topological order (parents before children)
    topo, state = [], {}

    def visit(m):
        if state.get(m):
            return
        state[m] = True
        for child in children[m]:
            visit(child)
        topo.append(m)

    visit(top)
    topo.reverse()
    instances = dict.fromkeys(topo, 0)
    instances[top] = 1
    for m in topo:
        for child, n in children[m].items():
            instances[child] += instances[m] * n

    hier_t, complete = {}, True
    if cmos is not None:
        craw = {_name(k): v for k, v in cmos["modules"].items()}
        for m in topo:
            hier_t[m], ok = _transistors(craw[m])
            complete &= ok
    mem_bits = {}
    if memory is not None:
        mem_bits = {_name(k): v.get("num_memory_bits", 0) for k, v in memory["modules"].items()}
    modules, totals = [], {}
    for m in topo:
        transistors = None
        if hier_t:
            transistors = hier_t[m] - sum(n * hier_t[c] for c, n in children[m].items())
        modules.append(
            ModuleArea(
                module=m,
                label=module_label(m, top),
                instances=instances[m],
                cells=sum(own[m].values()),
                cells_by_type=own[m],
                transistors=transistors,
                memory_bits=mem_bits.get(m, 0),
            )
        )
        for t, n in own[m].items():
            totals[t] = totals.get(t, 0) + instances[m] * n
    return {
        "modules": modules,
        "cells_by_type": dict(sorted(totals.items())),
        "total_cells": sum(totals.values()),
        "total_transistors": hier_t[top] if hier_t else None,
        "transistors_complete": complete,
        "total_memory_bits": sum(instances[m] * mem_bits.get(m, 0) for m in topo),
    }


def _script(flow: str, top: str, source: str, prelude=(), blackbox=(), tag="") -> list[str]:
    """Yosys commands of ``flow``; ``blackbox``: modules to keep out (another
    run synthesizes them); ``tag``: suffix of the stat files' names."""
    read = f"read_rtlil {source}" if source.endswith(".il") else f"read_verilog -sv {source}"
    cmds = [*prelude, read]
    if blackbox:
        cmds.append("blackbox " + " ".join(f"\\{name}" for name in sorted(blackbox)))
    cmds += [f"hierarchy -check -top {top}", f"tee -q -o stat_memory{tag}.json stat -json"]
    if flow == "generic":
        # synth's script, without memory_map (memories stay $mem_v2 cells)
        cmds += [
            f"synth -top {top} -flatten -run :fine",
            "opt -fast -full",
            "opt -full",
            "techmap",
            "opt -fast",
            "abc",
            "opt -fast",
            "hierarchy -check",
            f"tee -q -o stat{tag}.json stat -json",
            "dfflegalize -cell $_DFF_P_ 01",
            "opt_clean",
            "delete t:$mem_v2",
            f"tee -q -o stat_cmos{tag}.json stat -json -tech cmos",
        ]
    elif flow == "ecp5":
        # synth_ecp5 maps LUTs with ABC9, which trips an internal assertion
        # (ABC_OPS_REINTEGRATE, rtlil.cc count_id) on the array netlist in
        # Yosys 0.70: run its steps around the LUT mapping, mapped with ABC.
        cmds += [
            f"synth_ecp5 -top {top} -run :map_luts",
            "abc -lut 4 -dress",
            "clean",
            f"synth_ecp5 -top {top} -run map_cells:",
            f"tee -q -o stat{tag}.json stat -json",
        ]
    elif flow == "ice40":
        cmds += [f"synth_ice40 -top {top}", f"tee -q -o stat{tag}.json stat -json"]
    else:
        raise ValueError(f"unknown synthesis flow {flow!r}; expected one of {FLOWS}")
    return cmds


def synthesize(
    source: str,
    top: str,
    workdir,
    *,
    flow: str = "generic",
    flat: bool = False,
    timeout: float | None = None,
    prelude=(),
    jobs: int = 1,
) -> FlowResult:
    """Synthesize ``workdir/source`` (a ``.il`` RTLIL or Verilog file name,
    relative to ``workdir``) and read the area. ``prelude``: Yosys commands
    run first (e.g. reading blackbox declarations). ``jobs`` > 1 splits the
    generic flow of a hierarchical RTLIL netlist into that many parallel runs
    (:mod:`synth.parts`); the top's transistors are then flagged incomplete."""
    start = time.perf_counter()
    owners = [set()]
    if jobs > 1 and flow == "generic" and not flat and source.endswith(".il"):
        owners = partition((Path(workdir) / source).read_text(), top, jobs) or owners
    kept = set().union(*owners)
    tags = [f"_{i}" if len(owners) > 1 else "" for i in range(len(owners))]

    def run(owned, tag):
        script = _script(flow, top, source, prelude, kept - owned, tag)
        run_yosys(script, workdir, log=f"yosys_{flow}{tag}.log", timeout=timeout)

    with ThreadPoolExecutor(len(owners)) as pool:
        list(pool.map(run, owners, tags))

    def stat(name, cmos=False):
        runs = [read_json(Path(workdir) / f"{name}{tag}.json") for tag in tags]
        return runs[0] if len(runs) == 1 else merge_stats(runs, owners, top, cmos)

    parsed = parse_stat(
        stat("stat"),
        top,
        stat("stat_cmos", cmos=True) if flow == "generic" else None,
        stat("stat_memory"),
    )
    return FlowResult(flow=flow, flat=flat, top=top, wall_s=time.perf_counter() - start, **parsed)
