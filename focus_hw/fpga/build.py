"""Place and route a harness on a board with the yowasp tools; read nextpnr's report.

The board top holds the array's :class:`~focus_hw.fpga.Harness` (unit
``array``) or the accelerator's :class:`~focus_hw.fpga.FocusHarness` (unit
``focus``) and shows its result on the LEDs: the last LED is ``done``, the
others the checksum XOR-folded to their count (:func:`led_pattern`).
amaranth's build plan runs with the board's tools pointed at the yowasp
(WebAssembly) commands, which see only paths relative to the build folder;
nextpnr writes ``report.json`` (Fmax and utilisation) next to its log
``top.tim``. Further placement seeds rerun nextpnr alone on the same netlist.
The accelerator's per-part figures come from a second Yosys run beside the
build (:mod:`focus_hw.fpga.parts`).
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sysconfig
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from amaranth.build import Clock
from amaranth.build.plat import tool_env_var
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io
from tqdm import tqdm

from ..fileio import atomic_write_text
from ..params import FocusParams
from .boards import FAMILIES
from .boards import board as find_board
from .focus_harness import FocusHarness, expected_run, planted_gemm
from .harness import Harness, harness_tiles, pack_row, rotl_checksum
from .parts import ACCEL_PARTS, STAT_FILE, part_utilisation, stat_script

__all__ = [
    "FpgaBuildError",
    "FpgaReport",
    "fpga_build",
    "led_pattern",
    "expected_checksum",
    "read_fmax",
    "critical_path",
    "UNITS",
]

_NAME = "top"
#: What a build can wrap in a harness.
UNITS = ("array", "focus")
#: Build outputs, in the order the steps write them (progress).
_STEPS = {
    "ecp5": ("top.json", "top.config", "top.bit"),
    "ice40": ("top.json", "top.asc", "top.bin"),
}


class FpgaBuildError(RuntimeError):
    """A tool of the FPGA flow failed; the message carries the log's tail."""


def led_pattern(checksum: int, width: int, leds: int, ok: bool | None = None) -> int:
    """LED bits of the finished harness: ``done`` on the last LED, the
    ``width``-bit checksum XOR-folded to the others; with ``ok`` (the
    accelerator's harness) the last but one LED is ``ok``."""
    n, fold = leds - 1 - (ok is not None), 0
    for start in range(0, width, n):
        fold ^= (checksum >> start) & ((1 << n) - 1)
    return fold | (int(bool(ok)) << n if ok is not None else 0) | (1 << (leds - 1))


def expected_checksum(params: FocusParams, tiles) -> int:
    """The checksum a :class:`Harness` of ``tiles`` must end with, from
    :func:`focus_hw.simulate_tiles` (the tests check it against numpy)."""
    from ..simulate import simulate_tiles

    run = simulate_tiles(tiles, params)
    words = [pack_row(params.acc.to_bits(row), params.acc_bits) for out in run.outs for row in out]
    return rotl_checksum(words, params.cols * params.acc_bits)


class _BoardTop(Elaboratable):
    def __init__(self, harness: Harness, leds: int):
        self.harness = harness
        self.leds = leds

    def elaborate(self, platform):
        m = Module()
        m.submodules.harness = h = self.harness
        flags = [h.ok, h.done] if isinstance(h, FocusHarness) else [h.done]
        n = self.leds - len(flags)
        chk = h.checksum
        fold = chk[0:n]
        for start in range(n, len(chk), n):
            fold = fold ^ chk[start : start + n]
        for i, bit in enumerate([*fold, *flags]):
            m.submodules[f"led_{i}"] = led = io.Buffer("o", platform.request("led", i, dir="-"))
            m.d.comb += led.o.eq(bit)
        return m


@dataclass(frozen=True)
class FpgaReport:
    """Result of one place and route (what ``fpga.json`` holds)."""

    board: str
    device: str
    unit: str  # "array" or "focus"
    params: dict
    luts: int
    ffs: int
    brams: int
    dsps: int
    fmax_mhz: float  # the median over the placement seeds
    target_mhz: float  # the clock constraint nextpnr aimed for
    seeds: dict  # placement seed -> its Fmax (MHz); the bitstream is the first seed's
    nextpnr_opts: str  # options added to the build's nextpnr command
    critical_path: dict  # the median seed's register-to-register path (critical_path())
    utilisation: dict  # nextpnr cell -> {"used", "available"}
    parts: dict  # unit focus: part -> LUTs, FFs, BRAMs, DSPs (focus_hw.fpga.parts)
    checksum: str  # expected final checksum (hex)
    cycles: int | None  # unit focus: the run's expected cycles (start to last beat)
    leds: str  # expected LED pattern, LED 0 last (binary)
    wall_s: float

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """A short text table of the headline figures."""
        u = self.utilisation
        fam = FAMILIES[find_board(self.board).family].cells

        def of(key, value):
            cell = fam[key]
            return f"{value}" if cell is None else f"{value} / {u[cell]['available']}"

        p = self.params
        what = f"{p['rows']}x{p['cols']} {p['dtype']}, mac_pipeline={p['mac_pipeline']}"
        if self.unit == "focus":
            what += (
                f", sic_pipeline={p['sic_pipeline']}, scatter_pipeline={p['scatter_pipeline']}"
                f", vector {p['vector_size']}, {p['sic_lanes']} SIC lanes, m_tile {p['m_tile']}"
            )
        seeds = ", ".join(f"{s}: {f:.2f}" for s, f in self.seeds.items())
        rows = [
            ("board", f"{self.board} ({self.device})"),
            (self.unit, what),
            ("LUTs", of("luts", self.luts)),
            ("FFs", of("ffs", self.ffs)),
            ("BRAMs", of("brams", self.brams)),
            ("DSPs", of("dsps", self.dsps)),
            ("Fmax", f"{self.fmax_mhz:.2f} MHz (target {self.target_mhz:g} MHz)"),
            ("seeds", f"{seeds} MHz" + (" (median above)" if len(self.seeds) > 1 else "")),
            *((("nextpnr", self.nextpnr_opts),) if self.nextpnr_opts else ()),
            ("path", _path_line(self.critical_path)),
            *((name, _part_line(f)) for name, f in self.parts.items()),
            ("LEDs", self.leds),
            ("time", f"{self.wall_s:.0f} s"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}} {v}" for k, v in rows)


def _part_line(f: dict) -> str:
    return f"{f['luts']} LUTs, {f['ffs']} FFs, {f['brams']} BRAMs, {f['dsps']} DSPs (Yosys)"


def critical_path(report: dict) -> dict:
    """The critical path of the slowest clock in nextpnr's ``report.json``:
    its start and end cells, its logic levels, its delay (logic and routing,
    ns) and the lines of our own code its nets come from (package-relative,
    in path order)."""
    clock = min(report["fmax"], key=lambda c: report["fmax"][c]["achieved"])
    path = next(
        c["path"]
        for c in report["critical_paths"]
        if c["from"] == c["to"] and c["from"].endswith(" " + clock)
    )
    root = Path(__file__).resolve().parents[2]
    sources = []
    for seg in path:
        for src in seg.get("sources", []):
            try:
                rel = str(Path(src).relative_to(root))
            except ValueError:  # the tools' own cell libraries
                continue
            if rel not in sources:
                sources.append(rel)
    delay = {
        kind: sum(s["delay"] for s in path if s["type"] == kind) for kind in ("logic", "routing")
    }
    return {
        "from": path[0]["from"]["cell"],
        "to": path[-1]["to"]["cell"],
        "logic_levels": sum(s["type"] == "logic" for s in path),
        "delay_ns": round(sum(s["delay"] for s in path), 3),
        "logic_ns": round(delay["logic"], 3),
        "routing_ns": round(delay["routing"], 3),
        "sources": sources,
    }


def _path_line(path: dict) -> str:
    return (
        f"{path['delay_ns']:.2f} ns, {path['logic_levels']} logic levels "
        f"({path['logic_ns']:.2f} ns logic, {path['routing_ns']:.2f} ns routing): "
        f"{path['from']} -> {path['to']}"
    )


def _tool_env(family: str) -> dict:
    """The environment with each amaranth tool variable set to its yowasp command."""
    path = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    env = dict(os.environ)
    for tool, command in FAMILIES[family].tools.items():
        found = shutil.which(command, path=path)
        if found is None:
            raise FpgaBuildError(f"{command} not found: pip install 'focus-hw[fpga]'")
        env[tool_env_var(tool)] = found
    return env


def _run(build_dir: Path, env: dict, family: str, progress: bool) -> None:
    """Run the build script, showing which step's output has appeared."""
    log_path = build_dir / "build.log"
    steps = _STEPS[family]
    for name in (*steps, "report.json"):
        (build_dir / name).unlink(missing_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["sh", f"build_{_NAME}.sh"],
            cwd=build_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        names = ["yosys", "nextpnr", "pack"]
        with tqdm(total=len(steps), desc="fpga", disable=not progress, unit="step") as bar:
            while proc.poll() is None:
                done = sum((build_dir / s).exists() for s in steps)
                bar.update(done - bar.n)
                bar.set_postfix_str(names[min(done, len(names) - 1)])
                time.sleep(0.5)
            bar.update(sum((build_dir / s).exists() for s in steps) - bar.n)
    if proc.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise FpgaBuildError(
            f"FPGA build failed (exit {proc.returncode}) in {build_dir}; log {log_path}:\n{tail}"
        )


def _start_part_stats(build_dir: Path, env: dict, modules: list[str]) -> subprocess.Popen:
    """Start the Yosys run that counts the cells of each of ``modules``
    (:func:`~focus_hw.fpga.parts.stat_script`), logging to ``stat.log``."""
    (build_dir / STAT_FILE).unlink(missing_ok=True)
    script = stat_script(f"{_NAME}.il", modules)
    with open(build_dir / "stat.log", "w") as log:
        return subprocess.Popen(
            [env[tool_env_var("yosys")], "-q", "-p", script],
            cwd=build_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _netlist_cells(path: Path, prefix: str) -> int:
    netlist = json.loads(path.read_text())
    return sum(
        cell["type"].startswith(prefix)
        for mod in netlist["modules"].values()
        for cell in mod["cells"].values()
    )


def _constrain_clock(platform, mhz: float) -> None:
    """Set the board clock's constraint (what nextpnr aims for) to ``mhz``."""
    key = (platform.default_clk, 0)
    resource = copy.copy(platform.resources[key])
    resource.clock = Clock(mhz * 1e6)
    platform.resources[key] = resource


def _harness(params: FocusParams, unit: str, tiles: int, rows_per_tile: int, data_seed: int):
    """The harness of ``unit`` (checked), its expected checksum, the checksum's width
    and the expected cycles (unit ``focus``; else None)."""
    if unit == "array":
        data = harness_tiles(params, tiles, rows_per_tile, data_seed)
        width = params.cols * params.acc_bits
        return Harness(params, data), expected_checksum(params, data), width, None
    gemm = planted_gemm(params, seed=data_seed)
    checksum, cycles = expected_run(params, gemm)
    harness = FocusHarness(params, gemm, checksum)
    return harness, checksum, len(harness.checksum), cycles


def _check_seeds(seeds) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds!r}: need one or more distinct placement seeds")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds={seeds!r}: placement seeds are integers >= 0")
    return seeds


#: nextpnr options the build sets itself.
_OWN_OPTS = ("--seed", "--report", "--log", "--json", "--lpf", "--textcfg")


def _check_nextpnr_opts(opts: str) -> None:
    if not isinstance(opts, str):
        raise ValueError(f"nextpnr_opts={opts!r} must be a string")
    try:
        words = shlex.split(opts)
    except ValueError as e:
        raise ValueError(f"nextpnr_opts={opts!r}: {e}") from None
    own = [w for w in words if w.split("=")[0] in _OWN_OPTS]
    if own:
        raise ValueError(f"nextpnr_opts: {own[0]} is set by the build (seeds: --pnr-seed)")


def _place_again(build_dir: Path, env: dict, seed: int, first: int) -> dict:
    """Rerun the build script's nextpnr step with placement ``seed`` (the
    netlist of the first run, seed ``first``); its ``report.json``."""
    script = (build_dir / f"build_{_NAME}.sh").read_text().splitlines()
    line = next(x for x in script if "NEXTPNR" in x and f"--seed {first}" in x)
    for old, new in (
        (f"--seed {first}", f"--seed {seed}"),
        ("report.json", f"report_seed{seed}.json"),
        (f"--log {_NAME}.tim", f"--log {_NAME}_seed{seed}.tim"),
        (f"--textcfg {_NAME}.config", f"--textcfg {_NAME}_seed{seed}.config"),
    ):
        if old not in line:
            raise FpgaBuildError(f"{build_dir}: nextpnr command without {old!r}: {line}")
        line = line.replace(old, new)
    log = build_dir / f"build_seed{seed}.log"
    with open(log, "w") as out:
        proc = subprocess.run(
            ["sh", "-c", line], cwd=build_dir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    if proc.returncode != 0:
        raise FpgaBuildError(
            f"nextpnr seed {seed} failed (exit {proc.returncode}); log {log}:\n"
            + log.read_text()[-3000:]
        )
    return json.loads((build_dir / f"report_seed{seed}.json").read_text())


def _fmax(report: dict) -> float:
    return min(c["achieved"] for c in report["fmax"].values())


def fpga_build(
    params: FocusParams,
    board: str,
    out_dir,
    *,
    unit: str = "array",
    target_mhz: float | None = None,
    seeds=(0,),
    tiles: int = 2,
    rows_per_tile: int = 8,
    data_seed: int = 0,
    nextpnr_opts: str = "",
    progress: bool = True,
) -> FpgaReport:
    """Build the harness of ``unit`` (``array`` or ``focus``, see
    :data:`UNITS`) for ``params`` on ``board`` in ``out_dir``; write
    ``out_dir/fpga.json`` (atomically) and return the report.

    ``target_mhz``: the clock nextpnr aims for (default: the board clock);
    the report's Fmax is what it achieved, met or not: the median (the lower
    of the middle two) over the placement ``seeds``; the first seed's run
    makes the bitstream. ``tiles``, ``rows_per_tile`` (unit ``array``) and
    ``data_seed`` choose the harness's data. ``nextpnr_opts`` are added to
    nextpnr's command (e.g. ``--placer-heap-timingweight 30 --tmg-ripup``:
    placement and routing that work harder on the critical paths).

    Raises :class:`~focus_hw.fpga.UnknownBoardError` for an unknown board
    (before any work) and :class:`FpgaBuildError` when a tool fails."""
    spec = find_board(board)
    if not isinstance(params, FocusParams):
        raise ValueError(f"params must be FocusParams, not {type(params).__name__}")
    seeds = _check_seeds(seeds)
    _check_nextpnr_opts(nextpnr_opts)
    if unit not in UNITS:
        raise ValueError(f"unit={unit!r}: the FPGA build wraps one of {', '.join(UNITS)}")
    env = _tool_env(spec.family)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    platform = spec.make_platform()
    if target_mhz is not None:
        if not target_mhz > 0:
            raise ValueError(f"target_mhz={target_mhz!r} must be > 0")
        _constrain_clock(platform, target_mhz)
    leds = sum(1 for name, _ in platform.resources if name == "led")
    harness, checksum, width, cycles = _harness(params, unit, tiles, rows_per_tile, data_seed)
    overrides = {
        "nextpnr_opts": f"--report report.json --timing-allow-fail --seed {seeds[0]} "
        + nextpnr_opts,
        "synth_opts": FAMILIES[spec.family].synth_opts,
    }
    prefix = f"{_NAME}.harness."
    plan = platform.prepare(_BoardTop(harness, leds), name=_NAME, **overrides)
    build_dir = plan.extract(out_dir)
    stats = None
    if unit == "focus":
        kept = [f"{prefix}accel.{part}" for part in ACCEL_PARTS]
        kept += [f"{prefix}{s}_{k}" for s in harness.plan.streams for k in ("rom", "fifo")]
        stats = _start_part_stats(build_dir, env, kept)
    try:
        _run(build_dir, env, spec.family, progress)
    except BaseException:
        if stats is not None:
            stats.kill()
        raise
    if stats is not None and stats.wait() != 0:
        raise FpgaBuildError(f"Yosys' per-part count failed; log {build_dir / 'stat.log'}")

    reports = {seeds[0]: json.loads((build_dir / "report.json").read_text())}
    for seed in tqdm(seeds[1:], desc="seeds", disable=not progress):
        reports[seed] = _place_again(build_dir, env, seed, seeds[0])
    fmax = {seed: round(_fmax(r), 3) for seed, r in reports.items()}
    median = statistics.median_low(fmax.values())
    chosen = next(seed for seed, f in fmax.items() if f == median)
    util = reports[seeds[0]]["utilization"]
    fam = FAMILIES[spec.family]
    figures = {}
    for key, cell in fam.cells.items():
        figures[key] = (
            util[cell]["used"]
            if cell is not None
            else _netlist_cells(build_dir / f"{_NAME}.json", fam.ff_prefix)
        )
    parts = part_utilisation(build_dir / STAT_FILE, prefix) if unit == "focus" else {}
    result = FpgaReport(
        board=board,
        device=platform.device,
        unit=unit,
        params=params.to_dict(),
        **figures,
        fmax_mhz=median,
        target_mhz=platform.default_clk_frequency / 1e6,
        seeds=fmax,
        nextpnr_opts=nextpnr_opts,
        critical_path=critical_path(reports[chosen]),
        utilisation=util,
        parts=parts,
        checksum=f"{checksum:#x}",
        cycles=cycles,
        leds=format(
            led_pattern(checksum, width, leds, True if unit == "focus" else None), f"0{leds}b"
        ),
        wall_s=round(time.perf_counter() - start, 1),
    )
    atomic_write_text(out_dir / "fpga.json", json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def read_fmax(path) -> float:
    """The achieved Fmax (MHz) in an ``fpga.json`` that :func:`fpga_build`
    wrote; :class:`ValueError` naming the file if it holds none."""
    try:
        fmax = json.loads(Path(path).read_text())["fmax_mhz"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path}: not an fpga.json with fmax_mhz ({type(e).__name__}: {e})"
        ) from None
    if isinstance(fmax, bool) or not isinstance(fmax, (int, float)) or not fmax > 0:
        raise ValueError(f"{path}: fmax_mhz={fmax!r} is not a positive number")
    return float(fmax)
