"""Area of the integrated Focus accelerator by unit, next to the paper's.

    python benchmarks/bench_focus_area.py                     # the three points below
    python benchmarks/bench_focus_area.py --params p.toml --out focus_area.csv

Each point is ``focus-hw synth --unit focus`` (Yosys generic flow, cached;
:mod:`synth.breakdown`). Printed per point:

* logic by unit: cells and CMOS transistors (all instances), priced as mm^2
  at ``sim.tech.NODES[--node]``'s area per transistor;
* storage by memory (``lib.memory``, not in the cells), priced with the SRAM
  macro model of :mod:`sim.sram`;
* the paper's Design Compiler rows (``focus_rtl.csv``: one instance; the
  count is ``detailed_power_area_breakdown.csv``'s total over it) and its
  buffers (that file's SRAM rows); the paper's SFUs are not part of ours;
* the Focus unit's share, (SIC + SEC + scatter) / array, in cells and in
  the paper's mm^2, against the target for its ``acc_format``
  (:data:`synth.breakdown.FOCUS_SHARE_TARGET`).

Without ``--params`` it prices three points: the default ``FocusParams()``
(fp32 partial sums), the same with ``acc_format="operand"`` (fp16 partial
sums), and :data:`PAPER_POINT`, the paper's design point in our flow.

``--out`` writes every row (``source`` yosys or paper) as one CSV.
"""

from __future__ import annotations

import math

import click
import pandas as pd
from tqdm import tqdm

from focus_hw import FocusParams
from focus_hw.accelerator import check_accelerator
from focus_hw.fileio import atomic_write_text
from focus_hw.generate import as_params
from sim import sram
from sim.presets import paper_preset
from sim.tech import NODES, paper_focus_share
from sim.workload import REFERENCE_DIR
from synth import YosysError, area_report
from synth.breakdown import FOCUS_SHARE_TARGET, focus_share, part

#: The paper's design point priced in our flow, its blocks provisioned to its
#: own cycle model: PEs and accumulator with fp16 partial sums, 2 scatter
#: lanes of a 32-wide row each (its cycle model adds ``num_scatter`` rows per
#: cycle), a 96-column output tile and a double-buffered concentrate-out
#: buffer (:func:`sim.presets.paper_preset`); the SIC at 8 lanes keeps up
#: with the array (``bench_focus_stall``).
PAPER_POINT = paper_preset("focus")

#: What each unit path of the breakdown holds ("" is the top's own logic).
UNITS = {
    "": "run registers, counters, buffer ports",
    "load": "load engine (vectors -> input buffer)",
    "feed": "feed engine (input buffer -> array)",
    "write": "write engine (array -> concentrate-out ring)",
    "dispatch": "dispatch engine (ring + map -> scatter lanes)",
    "drain": "drain engine (output buffer -> SIC)",
    "blocks": "ring-block FIFO (feed -> write engine)",
    "array": "array shell (skew, weight load, handshakes)",
    "array.pe": "PEs",
    "scatter": "scatter control, output-buffer ports",
    "scatter.add": "scatter adders (accumulator format)",
    "sic": "SIC control",
    "sic.dot": "SIC dot products (MAC lanes, adder tree)",
    "sic.argmax": "SIC arg-max and threshold",
    "sic.table": "SIC similarity-table ports",
    "sic.map": "SIC similarity-map ports",
    "sic.average": "SIC average update",
    "sic.records": "SIC record FIFO",
    "sec": "SEC control",
    "sec.analyzer": "SEC importance analyzer (max)",
    "sec.select": "SEC radix select",
    "sec.encoder": "SEC offset encoder",
}
#: What each memory holds, by (unit path, memory name).
MEMORIES = {
    ("", "inbuf"): "input buffer",
    ("", "ring"): "concentrate-out ring",
    ("", "keep"): "kept scatter map",
    ("scatter", "memory"): "output buffer",
    ("sic.table", "mem"): "SIC similarity table",
    ("sic.map", "mem"): "SIC similarity map",
    ("sic.average", "sums"): "SIC group sums",
    ("sic.average", "counts"): "SIC group counts",
    ("sic.average", "recip"): "SIC reciprocal ROM",
    ("sic.records", "storage"): "SIC record FIFO",
    ("sec", "buffer"): "SEC importance buffer",
    ("sec.select", "hist"): "SEC radix histogram",
    ("blocks", "storage"): "ring-block FIFO",
}
#: Our group of each paper module (``focus_rtl.csv``) and buffer.
PAPER_GROUPS = {
    "Systolic Array": "array",
    "Cosine Similarity (SIC)": "sic",
    "L2 Norm (SIC)": "sic",
    "Max Unit (SIC)": "sic",
    "Average Update (SIC)": "sic",
    "Accumulator (SIC)": "scatter",
    "Max Unit (SEC)": "sec",
    "Importance Vector Buffer (SEC)": "memory",
    **dict.fromkeys(
        ["input", "wgt", "concentrate_out", "output", "layouter"]
        + ["similarity_table", "similarity_map"],
        "memory",
    ),
}


def group(unit: str) -> str:
    """``array``, ``sic``, ``sec``, ``scatter`` or ``top`` (control)."""
    return part(unit) or "top"


def our_rows(params: FocusParams, node: str, cache_dir, use_cache: bool) -> pd.DataFrame:
    """Logic and memory rows of the accelerator at ``params``."""
    report = area_report(params, "focus", cache_dir=cache_dir, use_cache=use_cache)
    um2 = NODES[node]["um2_per_transistor"]
    rows = [
        {
            "source": "yosys",
            "kind": "logic",
            "group": group(r["unit"]),
            "unit": r["unit"] or "(top)",
            "what": UNITS.get(r["unit"], r["unit"]),
            "instances": r["instances"],
            "cells": r["cells"],
            "transistors": r["transistors"],
            "area_mm2": r["transistors"] * um2 * 1e-6,
        }
        for r in report.breakdown["cells"]
    ]
    rows += [
        {
            "source": "yosys",
            "kind": "memory",
            "group": group(m["unit"]),
            "unit": f"{m['unit'] or '(top)'}.{m['memory']}",
            "what": MEMORIES.get((m["unit"], m["memory"]), m["memory"]),
            "instances": m["instances"],
            "memory_bits": m["bits"],
            "area_mm2": sram.buffer(math.ceil(m["bits"] / 8)).area_mm2,
        }
        for m in report.breakdown["memory"]
    ]
    return pd.DataFrame(rows).assign(
        point=params.digest(), wall_s=report.wall_s, cached=report.cached["generic"]
    )


def paper_rows() -> pd.DataFrame:
    """The paper's Focus modules (one instance, count, totals) and buffers."""
    sim_dir = REFERENCE_DIR / "simulator"
    rtl = pd.read_csv(sim_dir / "focus_rtl.csv").set_index("Module")
    total = pd.read_csv(sim_dir / "detailed_power_area_breakdown.csv").set_index("component")
    rows = []
    for name, grp in PAPER_GROUPS.items():
        row = {"source": "paper", "group": grp, "unit": name}
        if name in rtl.index:
            one = rtl.loc[name]
            row.update(
                kind="memory" if grp == "memory" else "logic",
                instances=round(total.loc[name, "area"] / one.Area),
                area_one_mm2=one.Area,
                power_one_mw=one.Power,
            )
        else:
            row.update(kind="memory")
        row.update(area_mm2=total.loc[name, "area"], power_mw=total.loc[name, "power"])
        rows.append(row)
    return pd.DataFrame(rows)


def shares(ours: pd.DataFrame) -> dict[str, float]:
    """Focus-unit logic over array logic: ours in cells and transistors, the
    paper's in mm^2."""
    logic = ours[ours.kind == "logic"].to_dict("records")
    return {
        "cells": focus_share(logic),
        "transistors": focus_share(logic, "transistors"),
        "paper_mm2": paper_focus_share(),
    }


#: Columns that hold counts (printed as integers).
_COUNTS = ("instances", "cells", "transistors", "memory_bits")


def _fmt(df: pd.DataFrame, columns: list[str]) -> str:
    df = df[columns].copy()
    for c in set(columns) & set(_COUNTS):
        df[c] = [("" if pd.isna(v) else f"{v:.0f}") for v in df[c]]
    return df.to_string(index=False, na_rep="", float_format=lambda v: f"{v:.4g}")


@click.command()
@click.option(
    "--params",
    "param_files",
    type=click.Path(exists=True, dir_okay=False),
    multiple=True,
    help="FocusParams .toml/.json (repeatable; default: the three points above)",
)
@click.option(
    "--node",
    type=click.Choice(sorted(NODES)),
    default="28nm",
    show_default=True,
    help="sim.tech node pricing the transistors",
)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="CSV of every row")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None)
@click.option("--no-cache", is_flag=True, help="ignore cached synthesis results")
def main(param_files, node, out, cache_dir, no_cache):
    """Synthesize the Focus accelerator and print its area by unit."""
    try:
        points = [check_accelerator(as_params(f)) for f in param_files] or [
            FocusParams(),
            FocusParams(acc_format="operand"),
            PAPER_POINT,
        ]
    except (OSError, TypeError, ValueError) as e:
        raise click.UsageError(f"--params: {e}") from None
    paper = paper_rows()
    tables = []
    for params in tqdm(points, desc="synthesis", unit="point", disable=len(points) < 2):
        try:
            ours = our_rows(params, node, cache_dir, not no_cache)
        except YosysError as e:
            raise click.ClickException(f"synthesis failed: {e}") from None
        tables.append(ours)
        logic, memory = ours[ours.kind == "logic"], ours[ours.kind == "memory"]
        click.echo(
            f"\n== {params.rows}x{params.cols} {params.dtype}, acc_format {params.acc_format}, "
            f"sic_lanes {params.sic_lanes}, num_scatter {params.num_scatter}, out_vectors "
            f"{params.out_vectors}, ring_blocks {params.ring_blocks}"
            f"{' (the paper point)' if params == PAPER_POINT else ''}, m_tile {params.m_tile}, "
            "max_tokens "
            f"{params.max_tokens} (digest {params.digest()[:12]}; report "
            f"{ours.wall_s.iloc[0]:.0f} s{', synthesis cached' if ours.cached.iloc[0] else ''})"
        )
        click.echo(
            f"logic (mm^2 = CMOS transistors x {NODES[node]['um2_per_transistor']} um^2, "
            f"sim.tech.NODES[{node!r}]):"
        )
        cols = ["group", "unit", "what", "instances", "cells", "transistors", "area_mm2"]
        click.echo(_fmt(logic, cols))
        click.echo(
            f"total: {logic.cells.sum():,.0f} cells, {logic.transistors.sum():,.0f} transistors, "
            f"{logic.area_mm2.sum():.4g} mm^2"
        )
        click.echo("\nstorage (mm^2: sim.sram macro model):")
        click.echo(_fmt(memory, ["group", "unit", "what", "instances", "memory_bits", "area_mm2"]))
        click.echo(f"total: {memory.memory_bits.sum():,.0f} bits, {memory.area_mm2.sum():.4g} mm^2")
        share = shares(ours)
        target = FOCUS_SHARE_TARGET[params.acc_format]
        verdict = "meets" if share["cells"] <= target else "misses"
        click.echo(
            f"\nFocus unit (SIC + SEC + scatter) / array: {share['cells']:.2%} of the cells "
            f"({share['transistors']:.2%} of the transistors); paper {share['paper_mm2']:.2%} "
            f"of the mm^2; target <= {target:.1%}: {verdict}"
        )
    click.echo("\npaper (28 nm, Design Compiler; area_one/power_one: one instance):")
    pcols = ["group", "unit", "instances", "area_one_mm2", "power_one_mw", "area_mm2", "power_mw"]
    click.echo(_fmt(paper, pcols))
    if out is not None:
        table = pd.concat([*tables, paper.assign(point="")], ignore_index=True)
        atomic_write_text(out, table.to_csv(index=False))
        click.echo(f"\ntable: {out}")


if __name__ == "__main__":
    main()
