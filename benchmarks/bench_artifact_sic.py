"""The paper artifact's SIC units through our Yosys flow, beside our own.

The artifact (a public repository; pass your checkout's ``rtl`` folder) ships
hand-written Verilog/SystemVerilog for four SIC units. Each is read with the
artifact's arithmetic files it instantiates by ``read_verilog -sv``; a unit
Yosys cannot parse is reported with the first error line, one that parses is
synthesized with Yosys' generic ``synth`` (cells). Our SIC units are synthesized for the
paper configuration (``FocusParams()``), or those of ``--params``.

    python benchmarks/bench_artifact_sic.py --artifact-rtl PATH/TO/Focus/rtl [--out DIR]
"""

import argparse
import shutil
import tempfile
from pathlib import Path

from focus_hw import FocusParams
from synth.area import parse_stat
from synth.report import area_report
from synth.yosys import YosysError, read_json, run_yosys

#: Artifact SIC unit -> (file, top module, the arithmetic files it instantiates).
ARTIFACT_UNITS = {
    "cosine similarity": (
        "cosine_similarity_unit.sv",
        "cosine_similarity_unit",
        ("fp16_mult.v", "fp16_add.v"),
    ),
    "inverse magnitude (L2 norm)": (
        "inv_magnitude_unit.v",
        "inv_magnitude_unit",
        ("fp16_mult.v", "fp16_add.v"),
    ),
    "max unit": ("max_unit_fp16.v", "max_unit_fp16", ()),
    "average update": (
        "average_update_unit.sv",
        "average_update_unit",
        ("fp16_mult.v", "fp16_add.v"),
    ),
}


def artifact_unit(rtl: Path, file: str, top: str, deps) -> str:
    """Cells of one artifact unit, or why Yosys rejects it."""
    with tempfile.TemporaryDirectory(prefix="focus-artifact-") as tmp:
        work = Path(tmp)
        names = [file, *deps]
        for name in names:
            shutil.copy(rtl / name, work / name)
        reads = [f"read_verilog -sv {n}" for n in names]
        try:
            run_yosys([*reads, f"hierarchy -check -top {top}"], work, log="parse.log")
        except YosysError as e:
            errors = [ln for ln in str(e).splitlines() if "ERROR" in ln]
            return f"does not parse: {errors[0].strip() if errors else str(e)[:200]}"
        # Cells only: its asynchronous resets do not pass the CMOS estimate's
        # flip-flop legalisation.
        run_yosys(
            [*reads, f"synth -top {top} -flatten", "tee -q -o stat.json stat -json"],
            work,
            log="synth.log",
            timeout=1800,
        )
        result = parse_stat(read_json(work / "stat.json"), top)
        return f"parses; {result['total_cells']} generic cells"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--artifact-rtl", type=Path, required=True, help="the artifact checkout's rtl/ folder"
    )
    ap.add_argument("--params", type=Path, help="FocusParams .toml/.json (default: paper)")
    ap.add_argument("--out", type=Path, help="also write our area report here")
    args = ap.parse_args()
    if not (args.artifact_rtl / ARTIFACT_UNITS["max unit"][0]).exists():
        ap.error(f"{args.artifact_rtl}: not the artifact's rtl/ folder")
    print("Artifact SIC units (Yosys generic flow):")
    for name, (file, top, deps) in ARTIFACT_UNITS.items():
        print(f"  {name:30s} {file:28s} {artifact_unit(args.artifact_rtl, file, top, deps)}")
    params = FocusParams.load(args.params) if args.params else FocusParams()
    report = area_report(params, "sic", out_dir=args.out)
    generic = report.flows["generic"]
    print(
        f"\nOurs (unit 'sic', {params.vector_size}-element vectors, "
        f"{params.sic_width} lanes, {params.dtype}):"
    )
    for m in generic.modules:
        print(
            f"  {m.label:30s} {m.cells:8d} cells {m.transistors or 0:10d} transistors "
            f"{m.memory_bits:9d} memory bits"
        )
    print(
        f"  {'total':30s} {generic.total_cells:8d} cells {generic.total_transistors:10d} "
        f"transistors {generic.total_memory_bits:9d} memory bits"
    )


if __name__ == "__main__":
    main()
