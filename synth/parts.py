"""Split one hierarchical synthesis into parallel Yosys runs.

In a deduplicated netlist (:mod:`synth.dedup`) every ``keep_hierarchy``
module is synthesized on its own, so the work splits by subtree: each run
reads the whole netlist, turns the kept modules of the other runs into
blackboxes and synthesizes the top with its own. :func:`partition` shares
the top's subtrees out by their size; :func:`merge_stats` joins
the runs' ``stat -json`` outputs into the one a single run would write (each
module from the run that synthesized it; the top, synthesized by every run,
from the first, with its blackboxed children's transistors added back).
"""

from __future__ import annotations

from .dedup import _cell_type, parse_rtlil

__all__ = ["partition", "merge_stats"]

KEEP = "attribute \\keep_hierarchy 1"


def partition(design: str, top: str, jobs: int) -> list[set[str]]:
    """The kept modules below ``top`` in at most ``jobs`` sets, each closed
    under instantiation, of about equal RTLIL size (largest subtree first
    into the lightest set); empty sets are left out."""
    modules = parse_rtlil(design)
    kids = {
        name: [k for k in map(_cell_type, m.body) if k in modules] for name, m in modules.items()
    }
    kept = {name for name, m in modules.items() if KEEP in m.head}
    groups: list[set[str]] = []
    for child in dict.fromkeys(kids[top]):
        reach, stack = set(), [child]
        while stack:
            name = stack.pop()
            if name not in reach:
                reach.add(name)
                stack += kids[name]
        for group in [g for g in groups if g & reach]:  # a module shared by two subtrees
            groups.remove(group)
            reach |= group
        groups.append(reach)

    def size(group):  # RTLIL lines: Yosys' time goes with them within a few tens of %
        return sum(len(modules[name].body) for name in group)

    bins = [(0, set()) for _ in range(max(jobs, 1))]
    for group in sorted(groups, key=size, reverse=True):
        weight, members = min(bins, key=lambda b: b[0])
        bins.remove((weight, members))
        bins.append((weight + size(group), members | (group & kept)))
    return [members for _, members in bins if members]


def _transistors(value) -> tuple[int, bool]:
    text = str(value)
    return int(text.rstrip("+")), not text.endswith("+")


def merge_stats(stats: list[dict], owners: list[set[str]], top: str, cmos: bool = False) -> dict:
    """One ``stat -json`` from the runs' (``stats[i]`` from the run that
    synthesized the kept modules ``owners[i]``). Module keys are Yosys names
    (``\\name``). ``cmos``: the stats carry ``estimated_num_transistors``,
    which count submodules: the top's gets its blackboxed children's back."""
    merged = {}
    for stat, owned in zip(stats, owners, strict=True):
        for key, entry in stat["modules"].items():
            if key[1:] in owned or key not in merged:
                merged[key] = entry
    key = f"\\{top}"
    if cmos:
        total, complete = _transistors(merged[key]["estimated_num_transistors"])
        first = owners[0]
        for cell, n in merged[key]["num_cells_by_type"].items():
            name = cell.lstrip("\\")
            if name not in first and f"\\{name}" in merged:
                child, ok = _transistors(merged[f"\\{name}"]["estimated_num_transistors"])
                total += n * child
                complete &= ok
        merged[key] = dict(
            merged[key], estimated_num_transistors=f"{total}{'' if complete else '+'}"
        )
    return {"modules": merged}
