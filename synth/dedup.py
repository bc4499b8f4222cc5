"""Merge structurally identical modules of an Amaranth RTLIL netlist.

Amaranth emits one module per instance (``top.pe_0_0``, ``top.pe_0_1``...),
so a 32x32 array holds 1024 copies of the PE. :func:`dedup_rtlil` groups
modules whose bodies are equal up to port numbering and statement order
(after their own submodules are replaced by their class), keeps one
representative per class and points every instance at it. Synthesizing the
result hierarchically synthesizes each distinct module once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["RtlilModule", "parse_rtlil", "dedup_rtlil", "module_label"]

_PORT_INDEX = re.compile(r"\b(input|output|inout) \d+ ")


@dataclass
class RtlilModule:
    name: str
    head: list[str]  # attribute lines and the ``module`` line
    body: list[str]  # lines between ``module`` and ``end``


def parse_rtlil(text: str) -> dict[str, RtlilModule]:
    """Modules of an RTLIL text by name (escaped names without the ``\\``)."""
    modules, pending, current = {}, [], None
    for line in text.splitlines():
        if current is None:
            if line.startswith("module "):
                name = line.split(None, 1)[1].strip().lstrip("\\")
                current = RtlilModule(name, pending + [line], [])
                pending = []
            elif line.strip():
                pending.append(line)
        elif line == "end":
            modules[current.name] = current
            current = None
        else:
            current.body.append(line)
    if current is not None:
        raise ValueError(f"RTLIL: module {current.name} has no 'end'")
    return modules


def _cell_type(line: str) -> str | None:
    parts = line.split()
    if len(parts) == 3 and parts[0] == "cell" and parts[1].startswith("\\"):
        return parts[1][1:]
    return None


def _render(module: RtlilModule, rename: dict[str, str], keep: bool = False) -> list[str]:
    head = module.head[:-1] + ["attribute \\keep_hierarchy 1"] * keep + module.head[-1:]
    body = []
    for line in module.body:
        kind = _cell_type(line)
        if kind in rename:
            line = line.replace(f"\\{kind} ", f"\\{rename[kind]} ", 1)
        body.append(line)
    return head + body + ["end", ""]


def _canon_paragraph(lines: list[str]) -> str:
    """A cell's parameters/connections and module-level ``connect``s are
    unordered in RTLIL: sort them. Processes keep their order."""
    unordered = any(line.startswith("  cell ") for line in lines) or all(
        line.lstrip().startswith("connect ") for line in lines
    )
    return "\n".join(sorted(lines) if unordered else lines)


def dedup_rtlil(
    text: str, top: str, *, merge: bool = True, keep_depth: int = 1
) -> tuple[str, dict[str, str]]:
    """Return (deduplicated RTLIL, module name -> representative name).

    Every module reachable from ``top`` appears in the mapping; the text
    holds only the representatives. The modules down to ``keep_depth`` levels
    below ``top`` (1: its direct children), and every class that one module
    instances more than once (the lanes of a unit), carry ``keep_hierarchy``,
    so ``synth -flatten`` keeps them as modules (each synthesized once, with
    its other submodules flattened into it) and flattens everything else.
    Modules merge only below the same module at level ``keep_depth - 1``, so
    with ``keep_depth=2`` each child of the top is synthesized as it would be
    as a top of its own (the SIC's MAC lanes do not merge with the PEs').
    ``merge=False`` keeps every module (each instance its own class) and only
    adds the marks."""
    modules = parse_rtlil(text)
    if top not in modules:
        raise ValueError(f"RTLIL: no top module {top!r}")
    key_of: dict[str, str] = {}

    def key(name: str) -> str:
        if name not in key_of:
            paragraphs, para = [], []
            for line in modules[name].body:
                kind = _cell_type(line)
                if kind in modules:
                    line = line.replace(f"\\{kind} ", f"\\<{key(kind)}> ", 1)
                line = _PORT_INDEX.sub(r"\1 ", line)
                if line.strip():
                    para.append(line)
                elif para:
                    paragraphs.append(_canon_paragraph(para))
                    para = []
            paragraphs.append(_canon_paragraph(para))
            canon = "\n\n".join(sorted(paragraphs))
            key_of[name] = hashlib.sha256(canon.encode()).hexdigest()
        return key_of[name]

    order, owner = [], {}

    def visit(name: str, depth: int, above: str):  # depth-first, children before parents
        if name in owner:
            return
        owner[name] = above = name if depth < keep_depth else above
        for line in modules[name].body:
            kind = _cell_type(line)
            if kind in modules:
                visit(kind, depth + 1, above)
        order.append(name)

    visit(top, 0, top)
    representative, mapping = {}, {}
    for name in order:
        cls = (owner[name], key(name))
        mapping[name] = representative.setdefault(cls, name) if merge else name
    # Kept as modules: the top's descendants down to keep_depth, and every
    # class that one module instances twice or more (the lanes of a unit), so
    # each is synthesized once. A class used once per parent stays flattened
    # into it, where constants at its ports (e.g. the first PE row's zero
    # partial sum) fold.
    keep, level = set(), {top}
    for _ in range(keep_depth):
        level = {k for name in level for k in map(_cell_type, modules[name].body) if k in modules}
        keep |= {mapping[k] for k in level}
    for name in order:
        if mapping[name] == name:
            kinds = [mapping[k] for k in map(_cell_type, modules[name].body) if k in modules]
            keep |= {k for k in kinds if kinds.count(k) >= 2}
    lines = []
    for name in order:
        if mapping[name] == name:
            lines += _render(modules[name], mapping, keep=name in keep)
    return "\n".join(lines), mapping


def module_label(name: str, top: str) -> str:
    """Readable class label: the hierarchical path below ``top`` without
    instance indices (``focus_array.pe_3_4.mac`` -> ``pe.mac``)."""
    if name == top:
        return top
    path = name[len(top) + 1 :] if name.startswith(top + ".") else name
    return ".".join(re.sub(r"(_\d+)+$", "", part) for part in path.split("."))
