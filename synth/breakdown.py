"""Area of a hierarchical design by instance path, not by module class.

A deduplicated netlist (:func:`synth.dedup.dedup_rtlil`) may share one
module class between units (the SIC's and the scatter's fp32 adders), so
:class:`~synth.area.FlowResult`'s per-class rows cannot say which unit holds
which cells. :func:`cell_breakdown` walks the netlist's instance tree from
the top and charges each synthesized module's own cells to its instance path
cut to ``depth`` levels, indices dropped (``sic.dot``, ``array.pe``,
``scatter.add``; ``""`` is the top's own logic). :func:`memory_breakdown`
lists every ``lib.memory`` array (kept as ``$mem_v2``, not cells) with its
bits, per path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .area import FlowResult
from .dedup import parse_rtlil

__all__ = [
    "PARTS",
    "FOCUS_UNIT",
    "part",
    "FOCUS_SHARE_TARGET",
    "focus_share",
    "cell_breakdown",
    "memory_breakdown",
    "unit_path",
]

_INDEX = re.compile(r"[_\d]+$")
#: Parts of the whole accelerator (the first name of a unit path).
PARTS = ("array", "sic", "sec", "scatter")
#: The parts that make the Focus unit.
FOCUS_UNIT = ("sic", "sec", "scatter")
#: Issue 15's area targets: the Focus unit at most this share of the cells
#: of the array of the same numerics, by ``acc_format``.
FOCUS_SHARE_TARGET = {"wide": 0.075, "operand": 0.05}


def part(unit: str) -> str | None:
    """The :data:`PARTS` entry a unit path of the whole accelerator belongs
    to; ``None`` for the rest (the top's own logic and the engines)."""
    head = unit.split(".")[0]
    return head if head in PARTS else None


def focus_share(rows, column: str = "cells") -> float:
    """The Focus unit's (:data:`FOCUS_UNIT`) ``column`` over the array's,
    from the whole accelerator's :func:`cell_breakdown` rows."""
    totals = dict.fromkeys(PARTS, 0)
    for r in rows:
        if (p := part(r["unit"])) is not None:
            totals[p] += r[column]
    if not totals["array"]:
        raise ValueError("focus_share: no array rows (not a breakdown of the whole accelerator)")
    return sum(totals[p] for p in FOCUS_UNIT) / totals["array"]


def unit_path(path: tuple[str, ...], depth: int) -> str:
    """The row an instance ``path`` below the top counts in: its first
    ``depth`` names without trailing indices (``("array", "pe_3_4")`` ->
    ``"array.pe"``)."""
    return ".".join(_INDEX.sub("", part) or part for part in path[:depth])


def _walk(design: str, top: str) -> Iterator[tuple[tuple[str, ...], object]]:
    """(instance path below ``top``, module) of every instance in ``design``."""
    modules = parse_rtlil(design)
    if top not in modules:
        raise ValueError(f"RTLIL: no top module {top!r}")
    stack = [((), modules[top])]
    while stack:
        path, module = stack.pop()
        yield path, module
        for line in module.body:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "cell" and parts[1][1:] in modules:
                stack.append(((*path, parts[2].lstrip("\\")), modules[parts[1][1:]]))


def cell_breakdown(design: str, top: str, result: FlowResult, depth: int = 2) -> list[dict]:
    """Rows ``{unit, instances, cells, transistors}`` of ``result`` (the
    synthesis of ``design``), one per :func:`unit_path` of a synthesized
    (kept) module, all instances counted; ``instances`` counts the row's
    paths of at most ``depth`` levels (e.g. the PEs of ``array.pe``). The
    rows' cells sum to ``result.total_cells``."""
    synthesized = {m.module: m for m in result.modules}
    rows: dict[str, dict] = {}
    for path, module in _walk(design, top):
        own = synthesized.get(module.name)
        if own is None:
            continue  # flattened into its parent, counted there
        row = rows.setdefault(
            unit_path(path, depth), {"instances": 0, "cells": 0, "transistors": 0}
        )
        row["instances"] += len(path) <= depth
        row["cells"] += own.cells
        if own.transistors is None or row["transistors"] is None:
            row["transistors"] = None
        else:
            row["transistors"] += own.transistors
    return [{"unit": unit, **row} for unit, row in sorted(rows.items())]


def memory_breakdown(design: str, top: str) -> list[dict]:
    """Rows ``{unit, memory, width, depth, instances, bits}``: every memory
    of ``design`` by :func:`unit_path` of its module (full depth) and name;
    ``bits`` counts every instance."""
    rows: dict[tuple[str, str], dict] = {}
    for path, module in _walk(design, top):
        for line in module.body:
            parts = line.split()
            if not parts or parts[0] != "memory":
                continue
            fields = dict(zip(parts[1:-1:2], map(int, parts[2:-1:2])))
            key = (unit_path(path, len(path)), parts[-1].lstrip("\\"))
            row = rows.setdefault(
                key, {"width": fields["width"], "depth": fields["size"], "instances": 0}
            )
            row["instances"] += 1
    return [
        {"unit": u, "memory": name, **row, "bits": row["width"] * row["depth"] * row["instances"]}
        for (u, name), row in sorted(rows.items())
    ]
