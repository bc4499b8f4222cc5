"""``focus flow``: the whole Focus flow for one :class:`FocusParams`, into one folder.

Steps, on the built-in video workload (:mod:`focus_algo.workload`) or a
video file's (``--video``):

1. ``trace``: SIC on every GEMM input of every layer (as ``focus run``);
   ``baselines``: CMC's and AdapTiV's token-level sparsity on the same inputs;
2. ``verilog:<unit>``: Verilog + manifest of each chosen unit of
   :data:`UNITS` (default: ``focus``, the whole accelerator)
   (:func:`focus_hw.generate.generate`);
3. ``area:<unit>``: Yosys area by module, and by part of the accelerator
   (:func:`synth.area_report`);
4. ``model``: time and energy of :data:`sim.tech.MACHINES` (:func:`sim.simulate`);
5. ``fpga`` (optional): place and route on a board (:func:`focus_hw.fpga.fpga_build`).

Every step is cached by the digest of its inputs (``flow.json``): the
workload options (and the bytes of a ``--video``), the sources of the
package that computes it, its upstream outputs' sha256 and the values
of the FocusParams fields it read (recorded while it ran; the model and
FPGA steps depend on every field).
A rerun with one changed knob therefore redoes only what reads it. The
area steps run in child processes while the SIC passes run here. The
folder then gets ``report.md``, a self-contained ``report.html`` (plots as
base64 PNG) and ``params.toml``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from focus_hw.fileio import atomic_write_text, figure_png
from focus_hw.params import FocusParams
from sim.tech import MACHINES

if TYPE_CHECKING:  # pandas is imported where it is used: a fast `--help`
    import pandas as pd

__all__ = [
    "UNITS",
    "DEFAULT_UNITS",
    "FlowResult",
    "model_table",
    "run_flow",
    "sic_trace",
    "sparsity_plot",
    "baseline_sparsity",
]

#: Hardware units of the flow (names of :data:`focus_hw.generate.UNITS`):
#: the integrated accelerator, or its parts on their own.
UNITS = ("focus", "array", "sic", "sec")
#: What ``focus flow`` builds unless told otherwise: the whole accelerator.
DEFAULT_UNITS = ("focus",)
#: Where each machine's sparsity comes from (report column ``sparsity``).
SPARSITY_SOURCES = {
    "dense": "none",
    "focus": "SIC trace of this run (SEC off)",
    "focus_sec": "SEC keep schedule of the params (no SIC)",
    "cmc": "focus_algo.baselines on this video (S x V: paper, llava_vid/videomme)",
    "adaptiv": "focus_algo.baselines on this video (S x V: its query sparsity)",
}
#: CMC's attention-score sparsity needs the attention probabilities, which
#: the workload does not expose: the paper's figure of the LLaVA-Video-like
#: workload (the built-in video uses its patch grid) stands in.
CMC_SCORES_FROM = ("llava_vid", "videomme")
_FIELDS = frozenset(f.name for f in dataclasses.fields(FocusParams))
_ROOT = Path(__file__).resolve().parent.parent


class _Recording(FocusParams):
    """FocusParams that records which fields are read (serialisation aside)."""

    def __getattribute__(self, name):
        if name in _FIELDS:
            reads = object.__getattribute__(self, "__dict__").get("_reads")
            if reads is not None:
                reads.add(name)
        return object.__getattribute__(self, name)

    def to_dict(self) -> dict:  # reads every field, so it is not a dependency
        reads = self.__dict__.pop("_reads", None)
        try:
            return super().to_dict()
        finally:
            if reads is not None:
                self.__dict__["_reads"] = reads


def _recording(params: FocusParams) -> _Recording:
    rec = _Recording.from_dict(params.to_dict())
    rec.__dict__["_reads"] = set()
    return rec


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _video_sha(path: Path) -> str:
    """sha256 of a video file, or of a frame folder's file names and bytes."""
    h = hashlib.sha256()
    for f in sorted(path.iterdir()) if path.is_dir() else [path]:
        if f.is_file():
            h.update(f.name.encode() + b"\0" + _file_sha(f).encode())
    return h.hexdigest()


def _source_digest(package: str) -> str:
    """sha256 of the Python sources of a top-level package of the project."""
    h = hashlib.sha256()
    for path in sorted((_ROOT / package).rglob("*.py")):
        h.update(str(path.relative_to(_ROOT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


class _StepCache:
    """``flow.json``: per step its input digest, the params fields it read,
    its output files (sha256), status and wall time."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / "flow.json"
        self.out_dir = out_dir
        try:
            self.state = json.loads(self.path.read_text())["steps"]
        except (OSError, ValueError, KeyError, TypeError):
            self.state = {}
        self.log: dict[str, dict] = {}

    @staticmethod
    def _key(inputs: dict, params: FocusParams, reads) -> str:
        values = params.to_dict()
        return _sha(
            _canon({"inputs": inputs, "params": {f: values[f] for f in sorted(reads)}}).encode()
        )

    def fresh(self, name: str, inputs: dict, params: FocusParams) -> bool:
        """Whether ``name``'s recorded outputs are those of these inputs."""
        entry = self.state.get(name)
        try:
            if entry["key"] != self._key(inputs, params, entry["reads"]):
                return False
            return all(_file_sha(self.out_dir / f) == sha for f, sha in entry["outputs"].items())
        except (OSError, KeyError, TypeError):
            return False

    def reuse(self, name: str) -> None:
        self.log[name] = {**self.state[name], "status": "cached"}

    def record(self, name, inputs, params, reads, outputs, wall_s) -> None:
        reads = sorted(reads)
        self.state[name] = self.log[name] = {
            "key": self._key(inputs, params, reads),
            "reads": reads,
            "status": "ran",
            "wall_s": wall_s,
            "outputs": {
                str(Path(p).relative_to(self.out_dir)): _file_sha(Path(p)) for p in outputs
            },
        }
        self.save()

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps({"steps": self.state}, indent=1, sort_keys=True))


# -- steps ----------------------------------------------------------------------


def _workload(options: dict, params: FocusParams):
    from .workload import video_workload

    # SIC needs float tokens: int8 designs run it on fp16 tokens.
    return video_workload(**options, dtype=params.dtype if params.is_float else "fp16")


def sic_trace(
    params: FocusParams,
    options: dict,
    *,
    model: str = "synthetic",
    dataset: str | None = None,
    progress: bool = True,
):
    """SIC on every GEMM input of the video workload of ``options`` (keyword
    arguments of :func:`~focus_algo.workload.video_workload`): returns the
    :class:`~focus_algo.trace.SparseTrace` and the workload. ``dataset``
    defaults to ``skimage-video``, or the ``video`` file's name."""
    import torch
    from tqdm import tqdm

    from .sic import similarity_concentrate
    from .trace import SITES, SparseTrace, TraceMeta

    workload = _workload(options, params)
    shape = workload.shape
    results = {site: [] for site in SITES}
    with (
        torch.inference_mode(),
        tqdm(
            total=shape.layers * len(SITES),
            desc="SIC",
            unit="gemm",
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        for _, inputs in workload:
            for site in SITES:
                r = similarity_concentrate(inputs[site], shape.grid, params)
                results[site].append(
                    SimpleNamespace(
                        zero=r.zero.numpy(),
                        similar=r.similar.numpy(),
                        root=r.root.to(torch.int32).numpy(),
                    )
                )
                bar.update()
    extra = {
        k: options[k]
        for k in ("seed", "hidden", "ffn", "heads", "kv_groups", "clip_len", "video")
        if options.get(k) is not None
    }
    meta = TraceMeta(
        model=model,
        dataset=dataset or ("skimage-video" if options.get("video") is None else shape.name),
        num_tokens=shape.tokens,
        frames=shape.frames,
        height=shape.height,
        width=shape.width,
        num_layers=shape.layers,
        params=FocusParams.from_dict(params.to_dict()),
        extra={
            "workload": "focus_algo.workload",
            **extra,
            "widths": shape.site_widths,
            "weight_sizes": shape.weight_sizes(),
            "clips": [vars(c) for c in workload.clips],
        },
    )
    return SparseTrace.from_results(meta, results), workload


def baseline_sparsity(params: FocusParams, options: dict, progress: bool = True) -> dict:
    """Per-site token-level sparsity of CMC and AdapTiV on the workload's GEMM
    inputs (mean over layers), with the thresholds of their configs' default
    rows; CMC's S x V sparsity: see :data:`CMC_SCORES_FROM`."""
    import torch
    from tqdm import tqdm

    from sim.sparsity import baseline_sparsity as paper_sparsity

    from .baselines import adaptiv_concentrate, adaptiv_threshold, cmc_concentrate, cmc_thresholds
    from .trace import SITES

    workload = _workload(options, params)
    grid, layers = workload.shape.grid, workload.shape.layers
    cmc_t, ada_t = cmc_thresholds("default", ""), adaptiv_threshold("default", "")
    sums = {"cmc": dict.fromkeys(SITES, 0.0), "adaptiv": dict.fromkeys(SITES, 0.0)}
    with (
        torch.inference_mode(),
        tqdm(
            total=layers * len(SITES),
            desc="baselines",
            unit="gemm",
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        for _, inputs in workload:
            for site in SITES:
                x = inputs[site]
                thr = cmc_t.query if site == "query" else cmc_t.linear
                sums["cmc"][site] += cmc_concentrate(x, grid, thr).sparsity / layers
                sums["adaptiv"][site] += adaptiv_concentrate(x, grid, ada_t).sparsity / layers
                bar.update()
    sums["cmc"]["scores"] = paper_sparsity("cmc", *CMC_SCORES_FROM)["scores"]
    sums["adaptiv"]["scores"] = sums["adaptiv"]["query"]
    return sums


def model_table(params, workload, inputs: dict) -> pd.DataFrame:
    """Modelled time, energy, DRAM traffic, speedup and energy reduction (over
    dense) per machine, for ``inputs``: machine -> sparsity input of
    :func:`sim.simulate`."""
    import pandas as pd

    import sim

    rows = {}
    for machine, sparsity in inputs.items():
        t = sim.simulate(workload, params, machine, sparsity).totals
        rows[machine] = {
            "time_ms": t.time_s * 1e3,
            "energy_mj": t.energy_mj,
            "dram_mb": t.dram_bytes / 1e6,
            "speedup": t.speedup,
            "energy_reduction": t.energy_reduction,
        }
    df = pd.DataFrame(rows).T
    df.index.name = "machine"
    return df


def _load_area(path: Path):
    from synth import AreaReport
    from synth import FlowResult as SynthFlow

    d = json.loads(path.read_text())
    return AreaReport(
        unit=d["unit"],
        top=d["top"],
        params=d["params"],
        digest=d["digest"],
        flat=d["flat"],
        yosys_version=d["yosys_version"],
        cached=d["cached"],
        wall_s=d["wall_s"],
        flows={k: SynthFlow.from_dict(v) for k, v in d["flows"].items()},
        breakdown=d.get("breakdown", {}),
    )


# -- the flow ------------------------------------------------------------------


@dataclass
class FlowResult:
    """What :func:`run_flow` computed (or reused) and wrote."""

    params: FocusParams
    out_dir: Path
    workload: object
    trace: object
    baselines: dict
    areas: dict
    model: pd.DataFrame
    fpga: object = None
    steps: dict = field(default_factory=dict)
    wall_s: float = 0.0


def run_flow(
    params: FocusParams,
    out_dir,
    options: dict | None = None,
    *,
    units=DEFAULT_UNITS,
    fpga: str | None = None,
    cache_dir=None,
    progress: bool = True,
) -> FlowResult:
    """Run (or reuse) every step for ``params`` on the video workload of
    ``options`` (:func:`~focus_algo.workload.video_workload` keywords) into
    ``out_dir``; ``units``: the hardware units to generate and synthesize;
    ``fpga``: also place and route on this board; ``cache_dir``: the Yosys
    result cache (:mod:`synth.cache`)."""
    import pandas as pd
    from tqdm import tqdm

    from focus_hw.generate import generate
    from synth import area_report
    from synth.area import FLOW_VERSION
    from synth.yosys import yosys_version

    from .trace import SparseTrace

    start = time.perf_counter()
    options = dict(options or {})
    units = tuple(units)
    unknown = sorted(set(units) - set(UNITS))
    if unknown or not units:
        raise ValueError(f"units {', '.join(units) or '(none)'}: choose from {', '.join(UNITS)}")
    if "focus" in units:
        from focus_hw.accelerator import check_accelerator

        check_accelerator(params)  # the whole accelerator's constraints, before any work
    out = Path(out_dir)
    if fpga is not None:
        from focus_hw.fpga.boards import board

        board(fpga)  # an unknown board fails before any work
    workload = _workload(options, params)  # bad options fail before any work
    cache = _StepCache(out)
    names = (
        ["trace", "baselines"]
        + [f"verilog:{u}" for u in units]
        + [f"area:{u}" for u in units]
        + ["model"]
        + (["fpga"] if fpga else [])
    )
    bar = tqdm(total=len(names), desc="focus flow", unit="step", disable=not progress)

    lock = threading.Lock()

    def step(name, inputs, compute, outputs, reads=None):
        """Reuse ``name`` if fresh, else run ``compute(p)`` (p records the
        fields read unless ``reads`` is given) and record its outputs."""
        with lock:
            bar.set_postfix_str(name)
            fresh = cache.fresh(name, inputs, params)
            if fresh:
                cache.reuse(name)
        if not fresh:
            t0 = time.perf_counter()
            rec = _recording(params) if reads is None else params
            compute(rec)
            with lock:
                cache.record(
                    name,
                    inputs,
                    params,
                    rec.__dict__["_reads"] if reads is None else reads,
                    outputs,
                    time.perf_counter() - t0,
                )
        with lock:
            bar.update()

    hw_code = _source_digest("focus_hw")
    synth_code = _source_digest("synth")

    def verilog(unit):
        folder = out / "verilog" / unit
        step(
            f"verilog:{unit}",
            {"unit": unit, "code": hw_code},
            lambda p: generate(p, folder, unit),
            [folder / f"focus_{unit}.v", folder / "manifest.json"],
        )

    def area(unit, synth):
        folder = out / "area" / unit
        with lock:
            verilog = cache.state[f"verilog:{unit}"]["outputs"][f"verilog/{unit}/focus_{unit}.v"]
        inputs = {
            "verilog": verilog,
            "code": synth_code,
            "flow_version": FLOW_VERSION,
            "yosys": yosys_version(),
        }
        step(
            f"area:{unit}",
            inputs,
            lambda p: synth.submit(
                area_report, params, unit, cache_dir=cache_dir, out_dir=folder
            ).result(),
            [folder / "area.json"],
            reads=(),
        )

    # Area reports run in two child processes (each waited on by a thread),
    # overlapping the SIC passes and the Verilog of the other units here; the
    # SIC's, the longest, starts first.
    order = sorted(units, key=lambda u: u != "sic")
    algo = {"workload": options, "code": _source_digest("focus_algo")}
    if options.get("video") is not None:
        algo["video"] = _video_sha(Path(options["video"]))
    trace_path, base_path = out / "trace.safetensors", out / "baselines.json"
    with (
        ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as synth,
        ThreadPoolExecutor(2) as waiter,
    ):
        verilog(order[0])
        pending = [waiter.submit(area, order[0], synth)]
        step(
            "trace",
            algo,
            lambda p: sic_trace(p, options, progress=progress)[0].save(trace_path),
            [trace_path],
        )
        step(
            "baselines",
            algo,
            lambda p: atomic_write_text(
                base_path, json.dumps(baseline_sparsity(p, options, progress), indent=1)
            ),
            [base_path],
        )
        for unit in order[1:]:
            verilog(unit)
            pending.append(waiter.submit(area, unit, synth))
        for job in pending:
            job.result()

    trace = SparseTrace.load(trace_path)
    baselines = json.loads(base_path.read_text())
    model_path = out / "model.csv"
    model_in = {
        "trace": _file_sha(trace_path),
        "baselines": _file_sha(base_path),
        "workload": options,
        "code": _source_digest("sim"),
    }
    step(
        "model",
        model_in,
        lambda p: atomic_write_text(
            model_path,
            model_table(
                params,
                workload.shape,
                {m: {"focus": trace, **baselines}.get(m) for m in MACHINES},
            ).to_csv(),
        ),
        [model_path],
        reads=_FIELDS,
    )
    fpga_report = None
    if fpga:
        from focus_hw.fpga import fpga_build

        fpga_dir = out / "fpga"
        step(
            "fpga",
            {"board": fpga, "code": hw_code},
            lambda p: fpga_build(params, fpga, fpga_dir, progress=False),
            [fpga_dir / "fpga.json"],
            reads=_FIELDS,
        )
        fpga_report = json.loads((fpga_dir / "fpga.json").read_text())
    bar.close()
    cache.save()

    result = FlowResult(
        params=params,
        out_dir=out,
        workload=workload,
        trace=trace,
        baselines=baselines,
        areas={u: _load_area(out / "area" / u / "area.json") for u in units},
        model=pd.read_csv(model_path, index_col="machine"),
        fpga=fpga_report,
        steps={name: cache.log[name] for name in names},
    )
    params.save(out / "params.toml")
    result.wall_s = time.perf_counter() - start
    _write_reports(result)
    return result


# -- reports ---------------------------------------------------------------------


def sparsity_plot(summary: pd.DataFrame, weights: dict, params: FocusParams) -> bytes:
    """PNG of per-site sparsity per layer plus the weighted average."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for site, rows in summary.groupby("site", sort=False):
        ax.plot(rows["layer"], rows["sparsity"], marker="o", label=site)
    w = summary["site"].map(weights)
    avg = (summary["sparsity"] * w).groupby(summary["layer"]).sum() / w.groupby(
        summary["layer"]
    ).sum()
    ax.plot(avg.index, avg.values, "k--", label="weighted avg")
    ax.set(
        xlabel="layer",
        ylabel="sparsity (zero + similar vectors)",
        ylim=(0, 1.02),
        title=f"SIC sparsity (threshold {params.threshold}, vector {params.vector_size}, "
        f"block {'x'.join(map(str, params.block))})",
    )
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure_png(fig)


def _model_plot(model: pd.DataFrame, video: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, col, label in zip(axes, ("time_ms", "energy_mj"), ("time (ms)", "energy (mJ)")):
        ax.bar(model.index, model[col], color="tab:blue")
        ax.set(ylabel=label, title=f"{label.split()[0]} on {video}")
        ax.tick_params(axis="x", rotation=30)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)


def _tables(r: FlowResult) -> list[tuple[str, pd.DataFrame, str]]:
    """(title, table, note) of every section of the report."""
    import pandas as pd

    steps = pd.DataFrame(
        [
            {"step": k, "status": v["status"], "wall_s": v["wall_s"], "key": v["key"][:12]}
            for k, v in r.steps.items()
        ]
    )
    summary = r.trace.summary()
    weights = r.workload.shape.weight_sizes()
    sparsity = summary.groupby("site", sort=False)[["zero", "similar", "sparsity"]].mean()
    sparsity.insert(0, "weight", pd.Series(weights))
    sparsity.loc["weighted"] = [
        float("nan"),
        float("nan"),
        float("nan"),
        r.trace.weighted_sparsity(weights),
    ]
    sparsity["weight"] = sparsity["weight"].astype("Int64")
    base = pd.DataFrame(r.baselines)
    base.index.name = "site"
    area = pd.DataFrame(
        [
            {
                "unit": u,
                **{
                    k: row[k]
                    for k in (
                        "module",
                        "instances",
                        "cells",
                        "total_cells",
                        "transistors",
                        "total_transistors",
                        "total_memory_bits",
                    )
                },
            }
            for u, rep in r.areas.items()
            for row in rep.rows()
        ]
    )
    totals = pd.DataFrame(
        [
            {"unit": u, **{k: rep.summary()[k] for k in ("cells", "transistors", "memory_bits")}}
            for u, rep in r.areas.items()
        ]
    )
    model = r.model.assign(sparsity=[SPARSITY_SOURCES[m] for m in r.model.index])
    shape = r.workload.shape
    out = [
        (
            "Steps",
            steps,
            f"flow wall time {r.wall_s:.1f} s; a cached step shows the wall "
            "time of the run that made it",
        ),
        (
            "SIC sparsity per site (mean over layers)",
            sparsity.reset_index(),
            f"{shape.tokens} tokens {shape.grid}, {shape.layers} layers, threshold "
            f"{r.params.threshold}, vector {r.params.vector_size}; weighted = weighted by "
            "GEMM weight size",
        ),
        (
            "Baseline token-level sparsity",
            base.reset_index(),
            "thresholds: the default rows of cmc_config.csv / adaptiv_config.csv; scores: "
            "CMC from the paper's cmc_sparsity.csv (llava_vid/videomme), AdapTiV its query's",
        ),
        (
            "Area by module (generic Yosys cells)",
            area,
            "memories (lib.memory) count as memory bits, not cells",
        ),
        ("Area by unit", totals, ""),
        *[
            (
                f"{u}: area by part (instance path; generic Yosys cells)",
                pd.DataFrame(rep.breakdown["cells"]).replace({"unit": {"": "(top: control)"}})[
                    ["unit", "instances", "cells", "transistors"]
                ],
                "memories by part: area/<unit>/breakdown.csv",
            )
            for u, rep in r.areas.items()
            if u == "focus"
        ],
        (
            "Performance model",
            model.reset_index(),
            f"time and energy on {shape.name} (sim.simulate); speedup and energy "
            "reduction over dense",
        ),
    ]
    if r.fpga is not None:
        keys = ("board", "device", "luts", "ffs", "brams", "dsps", "fmax_mhz", "target_mhz")
        out.append(("FPGA", pd.DataFrame([{k: r.fpga[k] for k in keys}]), ""))
    return out


def _cell(v) -> str:
    import pandas as pd

    if v is pd.NA:
        return ""
    if isinstance(v, float):
        return "" if v != v else f"{v:.6g}"
    return str(v)


def _markdown(df: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _write_reports(r: FlowResult) -> None:
    """report.md and report.html (tables, plus plots as base64 PNG)."""
    weights = r.workload.shape.weight_sizes()
    plots = {"SIC sparsity per layer and site": sparsity_plot(r.trace.summary(), weights, r.params)}
    plots.update({f"Area by module: {u}": rep.plot() for u, rep in r.areas.items()})
    plots["Time and energy against the alternatives"] = _model_plot(r.model, r.workload.shape.name)
    title = f"Focus flow: params {r.params.digest()}"
    md, html = [f"# {title}", ""], [f"<h1>{title}</h1>"]
    for name, df, note in _tables(r):
        md += [f"## {name}", "", _markdown(df), ""] + ([note, ""] if note else [])
        html += [f"<h2>{name}</h2>", df.to_html(index=False, na_rep="", float_format=_cell)]
        html += [f"<p>{note}</p>"] if note else []
    md += [
        "Files: params.toml, trace.safetensors, baselines.json, verilog/<unit>/, "
        "area/<unit>/, model.csv, flow.json, report.html",
        "",
    ]
    for name, png in plots.items():
        html += [
            f"<h2>{name}</h2>",
            f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">',
        ]
    atomic_write_text(r.out_dir / "report.md", "\n".join(md))
    atomic_write_text(
        r.out_dir / "report.html",
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>"
        + title
        + "</title></head><body>\n"
        + "\n".join(html)
        + "\n</body></html>\n",
    )
