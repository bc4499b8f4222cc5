"""``focus flow``: the whole Focus flow for one :class:`FocusParams`, into one folder.

Steps, on the built-in video workload (:mod:`focus_algo.workload`) or a
video file's (``--video``):

1. ``trace``: SIC on every GEMM input of every layer (as ``focus run``),
   with the error it puts into each, and CMC's and AdapTiV's token-level
   sparsity on the same inputs (``baselines.json``);
2. ``rtlil:<unit>``: the RTLIL of each chosen unit of :data:`UNITS`
   (default: ``focus``, the whole accelerator), elaborated once
   (:func:`focus_hw.generate.convert_rtlil`); from it, at once,
   ``verilog:<unit>``: Verilog + manifest (:func:`focus_hw.generate.generate`),
   and ``area:<unit>``: Yosys area by module, and by part of the accelerator
   (:func:`synth.area_report`);
3. ``model``: time, energy and DRAM traffic of :data:`MODEL_ROWS`
   (:func:`sim.simulate`): dense, Focus (SEC + SIC, :func:`sec_sic_trace`),
   CMC, AdapTiV and the SIC-only and SEC-only ablations (``model.csv``), and
   Focus's time with each of :data:`KNOB_STEPS` moved one step
   (``knobs.csv``, :func:`knob_table`);
4. ``fpga`` (optional): place and route on a board (:func:`focus_hw.fpga.fpga_build`).

Every step is cached by the digest of its inputs (``flow.json``): the
workload options (and the bytes of a ``--video``), the sources of the
package that computes it, its upstream outputs' sha256 and the values
of the FocusParams fields it read (recorded while it ran; the model and
FPGA steps depend on every field).
A rerun with one changed knob therefore redoes only what reads it. The
hardware steps run in two child processes while the SIC passes and the
model run here. The
folder then gets ``params.toml`` and the report, the answer first:
``report.html`` (one page, its CSS and plots embedded) and ``report.md``.
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
from html import escape
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from focus_hw.fileio import atomic_write_text, figure_png
from focus_hw.params import FocusParams

if TYPE_CHECKING:  # pandas is imported where it is used: a fast `--help`
    import pandas as pd

__all__ = [
    "UNITS",
    "DEFAULT_UNITS",
    "FlowResult",
    "MODEL_ROWS",
    "KNOB_STEPS",
    "knob_table",
    "model_table",
    "sec_sic_trace",
    "run_flow",
    "sic_trace",
    "sparsity_plot",
]

#: Hardware units of the flow (names of :data:`focus_hw.generate.UNITS`):
#: the integrated accelerator, or its parts on their own.
UNITS = ("focus", "array", "sic", "sec")
#: What ``focus flow`` builds unless told otherwise: the whole accelerator.
DEFAULT_UNITS = ("focus",)
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
    visit=None,
):
    """SIC on every GEMM input of the video workload of ``options`` (keyword
    arguments of :func:`~focus_algo.workload.video_workload`): returns the
    :class:`~focus_algo.trace.SparseTrace` and the workload; ``visit(site,
    x)``, if given, sees every GEMM input too. ``dataset``
    defaults to ``skimage-video``, or the ``video`` file's name. The
    trace's ``meta.extra["sic_error"]`` holds, per site and layer, the
    relative error SIC puts into the GEMM input, ``|X' - X| / |X|``
    (Frobenius): with i.i.d. random weights, as the workload's are, the
    GEMM output's relative error equals it in mean square."""
    import torch
    from tqdm import tqdm

    from .sic import similarity_concentrate
    from .trace import SITES, SparseTrace, TraceMeta

    workload = _workload(options, params)
    shape = workload.shape
    results = {site: [] for site in SITES}
    errors = {site: [] for site in SITES}
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
                if visit is not None:
                    visit(site, inputs[site])
                r = similarity_concentrate(inputs[site], shape.grid, params)
                results[site].append(
                    SimpleNamespace(
                        zero=r.zero.numpy(),
                        similar=r.similar.numpy(),
                        root=r.root.to(torch.int32).numpy(),
                    )
                )
                x = inputs[site].float()
                errors[site].append(
                    float((r.tokens.float() - x).norm() / x.norm().clamp(min=1e-30))
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
            "sic_error": errors,
        },
    )
    return SparseTrace.from_results(meta, results), workload


class _Baselines:
    """CMC's and AdapTiV's token-level sparsity per site (mean over layers) on
    the GEMM inputs given to :meth:`add`, with the thresholds of their configs'
    default rows; CMC's S x V sparsity: see :data:`CMC_SCORES_FROM`."""

    def __init__(self, shape):
        from .baselines import adaptiv_threshold, cmc_thresholds
        from .trace import SITES

        self.grid, self.layers = shape.grid, shape.layers
        self.cmc_t, self.ada_t = cmc_thresholds("default", ""), adaptiv_threshold("default", "")
        self.sums = {"cmc": dict.fromkeys(SITES, 0.0), "adaptiv": dict.fromkeys(SITES, 0.0)}

    def add(self, site: str, x) -> None:
        from .baselines import adaptiv_concentrate, cmc_concentrate

        thr = self.cmc_t.query if site == "query" else self.cmc_t.linear
        self.sums["cmc"][site] += cmc_concentrate(x, self.grid, thr).sparsity / self.layers
        ada = adaptiv_concentrate(x, self.grid, self.ada_t).sparsity
        self.sums["adaptiv"][site] += ada / self.layers

    def result(self) -> dict:
        from sim.sparsity import baseline_sparsity as paper_sparsity

        out = {machine: dict(sites) for machine, sites in self.sums.items()}
        out["cmc"]["scores"] = paper_sparsity("cmc", *CMC_SCORES_FROM)["scores"]
        out["adaptiv"]["scores"] = out["adaptiv"]["query"]
        return out


def sec_sic_trace(trace, workload, params: FocusParams, seed: int = 0):
    """Focus's sparsity, SEC + SIC: the SIC ``trace`` restricted to the tokens
    SEC keeps in each layer (:func:`sim.sparsity.sec_survivors` counts).

    The built-in video has no prompt, so no text-to-visual attention ranks
    its tokens: the kept ones are a seeded random subset, nested across
    layers (as :func:`sim.sparsity.synthetic_trace` draws them). A pruned
    token's vectors become zero, which is how the model reads pruning; kept
    vectors keep their SIC decisions, and a group whose root was pruned is
    led by its first kept member.
    """
    import numpy as np

    from sim.sparsity import sec_survivors

    from .trace import SiteTrace, SparseTrace

    attn, mlp = sec_survivors(workload, params)
    order = np.random.default_rng(seed).permutation(workload.tokens)
    sites = {}
    for site, st in trace.sites.items():
        # q, k, v, QK^T and o run before the layer's pruning, the MLP after it
        alive = attn if site in ("q_proj", "query", "o_proj") else mlp
        zero, similar, root = st.zero.copy(), st.similar.copy(), st.root.copy()
        for layer, n in enumerate(alive):
            if n == workload.tokens:
                continue
            pruned = np.zeros(workload.tokens, bool)
            pruned[order[n:]] = True
            z, sim, r = zero[layer, 0], similar[layer, 0], root[layer, 0]
            z[pruned], sim[pruned] = True, False
            r[pruned] = np.flatnonzero(pruned)[:, None]
            t, j = np.nonzero(sim & pruned[r])  # root gone: row-major, so t ascends
            _, first, group = np.unique(
                r[t, j] * r.shape[1] + j, return_index=True, return_inverse=True
            )
            r[t, j] = t[first][group]
            sim[t[first], j[first]] = False
        sites[site] = SiteTrace(zero=zero, similar=similar, root=root)
    return SparseTrace(meta=trace.meta, sites=sites)


#: Rows of the performance model: label -> (:func:`sim.simulate` machine,
#: what it is, where its sparsity comes from).
MODEL_ROWS = {
    "dense": ("dense", "dense", "none"),
    "focus": ("focus", "Focus (SEC + SIC)", "SIC trace on the tokens SEC keeps"),
    "cmc": ("cmc", "CMC", "its token merging on this video"),
    "adaptiv": ("adaptiv", "AdapTiV", "its token merging on this video (S x V: its query's)"),
    "focus_sic": ("focus", "ablation: SIC only", "SIC trace, SEC off"),
    "focus_sec": ("focus_sec", "ablation: SEC only", "SEC keep schedule of the params"),
}


def model_table(params, workload, inputs: dict) -> pd.DataFrame:
    """Modelled time, energy, DRAM traffic, speedup and energy reduction (over
    dense), MACs (share of dense's), stall and DRAM-wait shares of the time,
    per row of ``inputs``: label (a :data:`MODEL_ROWS` key or a machine) ->
    sparsity input of :func:`sim.simulate`."""
    import pandas as pd

    import sim

    dense_macs = sim.simulate(workload, params, "dense").totals.macs
    rows = {}
    for label, sparsity in inputs.items():
        machine = MODEL_ROWS[label][0] if label in MODEL_ROWS else label
        t = sim.simulate(workload, params, machine, sparsity).totals
        rows[label] = {
            "time_ms": t.time_s * 1e3,
            "energy_mj": t.energy_mj,
            "dram_mb": t.dram_bytes / 1e6,
            "speedup": t.speedup,
            "energy_reduction": t.energy_reduction,
            "mac_share": t.macs / dense_macs,
            "stall_share": t.stall_cycles / t.cycles,
            "dram_wait_share": 1 - (t.compute_cycles + t.stall_cycles) / t.cycles,
        }
    df = pd.DataFrame(rows).T
    df.index.name = "machine"
    return df


#: Knobs "what to change next" moves, one step down and one up.
KNOB_STEPS = {
    "num_scatter": lambda v: (v - 1, v + 1),
    "out_vectors": lambda v: (v - 1, v + 1),
    "ring_blocks": lambda v: (v - 1, v + 1),
    "sic_lanes": lambda v: (v // 2, v * 2),
    "m_tile": lambda v: (v // 2, v * 2),
    "dram_bandwidth_gbs": lambda v: (v / 2, v * 2),
}


def knob_table(params: FocusParams, workload, trace) -> pd.DataFrame:
    """Focus's modelled time with each :data:`KNOB_STEPS` knob moved one step
    (valid points only), against ``params``' time: columns knob, now, to,
    time_ms, change (fraction), speedup (over dense at the moved point).
    A moved ``m_tile`` reuses ``trace``'s SIC decisions."""
    import pandas as pd

    import sim

    def run(p):
        meta = dataclasses.replace(trace.meta, params=p)
        return sim.simulate(workload, p, "focus", dataclasses.replace(trace, meta=meta)).totals

    base = run(params).time_s
    rows = []
    for knob, steps in KNOB_STEPS.items():
        now = getattr(params, knob)
        for to in steps(now):
            try:
                p = dataclasses.replace(params, **{knob: to})
            except ValueError:
                continue
            t = run(p)
            rows.append(
                {
                    "knob": knob,
                    "now": now,
                    "to": to,
                    "time_ms": t.time_s * 1e3,
                    "change": t.time_s / base - 1,
                    "speedup": t.speedup,
                }
            )
    return pd.DataFrame(rows).sort_values("change", kind="stable", ignore_index=True)


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
    knobs: pd.DataFrame | None = None
    fpga: object = None
    steps: dict = field(default_factory=dict)
    wall_s: float = 0.0


# The hardware steps' work, run in child processes.


def _recorded(work, params: FocusParams, *args) -> set[str]:
    """Run ``work(params, *args)``: the fields of ``params`` it read."""
    rec = _recording(params)
    work(rec, *args)
    return rec.__dict__["_reads"]


def _write_rtlil(params: FocusParams, path: Path, unit: str) -> None:
    from focus_hw.generate import convert_rtlil

    atomic_write_text(path, convert_rtlil(params, unit))


def _generate(params: FocusParams, folder: Path, unit: str, rtlil: Path) -> None:
    from focus_hw.generate import generate

    generate(params, folder, unit, rtlil=rtlil.read_text())


def _area(params: FocusParams, unit: str, cache_dir, folder: Path, rtlil: Path) -> None:
    from synth import area_report

    area_report(params, unit, cache_dir=cache_dir, out_dir=folder, rtlil=rtlil.read_text())


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
    import torch
    from tqdm import tqdm

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
        ["trace"]
        + [f"{kind}:{u}" for u in units for kind in ("rtlil", "verilog", "area")]
        + ["model"]
        + (["fpga"] if fpga else [])
    )
    bar = tqdm(total=len(names), desc="focus flow", unit="step", disable=not progress)

    lock = threading.Lock()

    def step(name, inputs, compute, outputs, reads=None):
        """Reuse ``name`` if fresh, else run ``compute(p)`` and record its
        outputs. The fields it read: ``reads`` if given, else those ``p``
        records and those ``compute`` returns (a child process's record)."""
        with lock:
            bar.set_postfix_str(name)
            fresh = cache.fresh(name, inputs, params)
            if fresh:
                cache.reuse(name)
        if not fresh:
            t0 = time.perf_counter()
            rec = _recording(params) if reads is None else params
            remote = compute(rec)
            if reads is None:
                reads = rec.__dict__["_reads"] | (remote or set())
            with lock:
                cache.record(name, inputs, params, reads, outputs, time.perf_counter() - t0)
        with lock:
            bar.update()

    hw_code = _source_digest("focus_hw")
    synth_code = _source_digest("synth")

    def output_sha(name, path):
        with lock:
            return cache.state[name]["outputs"][path]

    def hardware(unit, pool, waiter):
        """RTLIL (elaborated once), then its Verilog and its area at once,
        each in a child process."""
        folder, il = out / "verilog" / unit, f"verilog/{unit}/focus_{unit}.il"
        step(
            f"rtlil:{unit}",
            {"unit": unit, "code": hw_code},
            lambda p: pool.submit(_recorded, _write_rtlil, p, out / il, unit).result(),
            [out / il],
        )
        netlist = {"rtlil": output_sha(f"rtlil:{unit}", il)}
        verilog = waiter.submit(
            step,
            f"verilog:{unit}",
            {**netlist, "code": hw_code},
            lambda p: pool.submit(_recorded, _generate, p, folder, unit, out / il).result(),
            [folder / f"focus_{unit}.v", folder / "manifest.json"],
        )
        area_dir = out / "area" / unit
        step(
            f"area:{unit}",
            {**netlist, "code": synth_code, "flow_version": FLOW_VERSION, "yosys": yosys_version()},
            lambda p: pool.submit(_area, params, unit, cache_dir, area_dir, out / il).result(),
            [area_dir / "area.json"],
            reads=(),
        )
        verilog.result()

    # The hardware steps run in two child processes (each waited on by a
    # thread), the SIC passes and the model here, on one torch thread.
    algo = {"workload": options, "code": _source_digest("focus_algo")}
    if options.get("video") is not None:
        algo["video"] = _video_sha(Path(options["video"]))
    trace_path, base_path = out / "trace.safetensors", out / "baselines.json"
    model_path, knobs_path = out / "model.csv", out / "knobs.csv"
    threads = torch.get_num_threads()
    with (
        ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool,
        ThreadPoolExecutor(2 * len(units)) as waiter,
    ):
        chains = [waiter.submit(hardware, unit, pool, waiter) for unit in units]
        torch.set_num_threads(1)
        try:

            def trace_and_baselines(p):  # the baselines on the same inputs
                baselines = _Baselines(workload.shape)
                sic_trace(p, options, progress=progress, visit=baselines.add)[0].save(trace_path)
                atomic_write_text(base_path, json.dumps(baselines.result(), indent=1))

            step("trace", algo, trace_and_baselines, [trace_path, base_path])
            trace = SparseTrace.load(trace_path)
            baselines = json.loads(base_path.read_text())
            model_in = {
                "trace": _file_sha(trace_path),
                "baselines": _file_sha(base_path),
                "workload": options,
                "code": _source_digest("sim"),
                "flow": _source_digest("focus_algo"),
            }

            def model(p):
                focus = sec_sic_trace(trace, workload.shape, p, options.get("seed", 0))
                inputs = {"dense": None, "focus": focus, **baselines}
                inputs.update(focus_sic=trace, focus_sec=None)
                atomic_write_text(model_path, model_table(p, workload.shape, inputs).to_csv())
                atomic_write_text(
                    knobs_path, knob_table(p, workload.shape, focus).to_csv(index=False)
                )

            step("model", model_in, model, [model_path, knobs_path], reads=_FIELDS)
        finally:
            torch.set_num_threads(threads)
        for chain in chains:
            chain.result()

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
        knobs=pd.read_csv(knobs_path),
        fpga=fpga_report,
        steps={name: cache.log[name] for name in names},
    )
    params.save(out / "params.toml")
    result.wall_s = time.perf_counter() - start
    _write_reports(result)
    return result


# -- reports ---------------------------------------------------------------------

#: Node pricing the area estimate (:data:`sim.tech.NODES`).
NODE = "28nm"
#: Machines of the summary (the rest of :data:`MODEL_ROWS` are ablations).
HEADLINE = ("dense", "focus", "cmc", "adaptiv")

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1f2633; max-width: 1080px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.55em; margin: 0 0 .2em; }
h2 { font-size: 1.2em; margin: 2em 0 .5em; padding-bottom: .2em;
  border-bottom: 1px solid #d5dbe5; }
p.sub, p.note { color: #5b6576; font-size: .9em; }
section.summary { background: #f3f6fb; border: 1px solid #d5dbe5; border-radius: 8px;
  padding: .2em 1.4em .8em; }
section.summary h2 { border: 0; margin-top: 1em; }
table { border-collapse: collapse; margin: .6em 0; font-variant-numeric: tabular-nums; }
th, td { padding: .25em .75em; border-bottom: 1px solid #e4e8ef; text-align: left; }
thead th { border-bottom: 2px solid #98a2b3; background: #fafbfc; font-weight: 600; }
tbody tr:nth-child(even) { background: #f8f9fb; }
td.lead { font-weight: 600; }
figure { margin: 1em 0; }
img { max-width: 100%; height: auto; }
"""


@dataclass
class _Section:
    """One section of the report: paragraphs, a table, a note, a plot."""

    title: str
    paragraphs: list = field(default_factory=list)
    table: pd.DataFrame | None = None
    note: str = ""
    plot: bytes | None = None
    lead: tuple = ()  # values of the table's first column to set in bold


def _title(p: FocusParams) -> str:
    """The design point in words."""
    return (
        f"Focus accelerator, {p.rows}x{p.cols} {p.dtype} array ({p.acc.name} partial sums), "
        f"{p.sic_lanes} SIC lanes, {p.num_scatter} scatter lanes, {p.m_tile}-token tiles, "
        f"{p.clock_mhz:g} MHz"
    )


def _num(v) -> str:
    """A table cell: integers with thousands separators, other numbers to
    three significant figures, missing values empty."""
    import numpy as np
    import pandas as pd

    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return str(v)


def _pct(v: float) -> str:
    return f"{100 * v:.3g}%"


def _x(v: float) -> str:
    return f"{v:.3g}x"


def _faster(speedup: float) -> str:
    return f"{_x(speedup)} faster" if speedup >= 1 else f"{_x(1 / speedup)} slower"


def _less(reduction: float) -> str:
    return f"{_x(reduction)} less" if reduction >= 1 else f"{_x(1 / reduction)} more"


def area_parts(areas: dict) -> pd.DataFrame:
    """Area by part: for the whole accelerator (unit ``focus``) its
    :data:`synth.breakdown.PARTS`, control (the rest of its logic) and SRAM;
    for another unit its logic and SRAM.
    Columns unit, part, cells, transistors, memory_bits, area_mm2: logic at
    :data:`NODE`'s area per CMOS transistor, SRAM by :func:`sim.sram.buffer`."""
    import math

    import pandas as pd

    from sim import sram
    from sim.tech import NODES
    from synth.breakdown import PARTS, part

    um2 = NODES[NODE]["um2_per_transistor"]
    rows = []
    for unit, rep in areas.items():
        logic = {}
        for row in rep.breakdown["cells"]:
            name = (part(row["unit"]) or "control") if unit == "focus" else unit
            acc = logic.setdefault(name, {"cells": 0, "transistors": 0})
            acc["cells"] += row["cells"]
            acc["transistors"] += row["transistors"] or 0
        order = (*PARTS, "control") if unit == "focus" else (unit,)
        for name in (p for p in order if p in logic):
            t = logic[name]["transistors"]
            rows.append({"unit": unit, "part": name, **logic[name], "area_mm2": t * um2 * 1e-6})
        memory = rep.breakdown["memory"]
        if memory:
            rows.append(
                {
                    "unit": unit,
                    "part": "SRAM",
                    "memory_bits": sum(m["bits"] for m in memory),
                    "area_mm2": sum(sram.buffer(math.ceil(m["bits"] / 8)).area_mm2 for m in memory),
                }
            )
    df = pd.DataFrame(
        rows, columns=["unit", "part", "cells", "transistors", "memory_bits", "area_mm2"]
    )
    return df.astype({c: "Int64" for c in ("cells", "transistors", "memory_bits")})


def _area_plot(parts: pd.DataFrame) -> bytes:
    """Horizontal bars of area by part on a log scale, each labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synth.breakdown import FOCUS_UNIT

    labels = parts["part"] if parts["unit"].nunique() == 1 else parts["unit"] + ": " + parts["part"]
    colors = [
        "tab:orange"
        if u == "focus" and p in FOCUS_UNIT
        else "tab:gray"
        if p in ("SRAM", "control")
        else "tab:blue"
        for u, p in zip(parts["unit"], parts["part"])
    ]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(parts) + 1.4))
    bars = ax.barh(labels, parts["area_mm2"], color=colors)
    total = parts["area_mm2"].sum()
    ax.bar_label(
        bars, [f"{a:.3g} mm² ({_pct(a / total)})" for a in parts["area_mm2"]], padding=3, fontsize=9
    )
    ax.set_xscale("log")
    ax.set_xlim(parts["area_mm2"].min() / 2, parts["area_mm2"].max() * 10)
    ax.invert_yaxis()
    ax.set(
        xlabel=f"area (mm², log scale; {NODE} estimate)",
        title="Area by part (orange: the Focus unit)"
        if "focus" in set(parts["unit"])
        else "Area by part",
    )
    ax.grid(axis="x", alpha=0.3, which="both")
    return figure_png(fig)


def sparsity_plot(summary: pd.DataFrame, weights: dict, params: FocusParams) -> bytes:
    """PNG: one panel per site (zero and similar vectors per layer, stacked)
    and one of the sparsity weighted by GEMM weight size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sites = list(dict.fromkeys(summary["site"]))
    ncols = 3
    nrows = -(-(len(sites) + 1) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.3 * ncols, 2.5 * nrows), sharex=True, sharey=True, squeeze=False
    )
    for ax, site in zip(axes.flat, sites):
        rows = summary[summary["site"] == site]
        ax.bar(rows["layer"], rows["zero"], color="tab:gray", label="zero")
        ax.bar(
            rows["layer"], rows["similar"], bottom=rows["zero"], color="tab:blue", label="similar"
        )
        ax.set_title(site, fontsize=10)
    w = summary["site"].map(weights)
    avg = (summary["sparsity"] * w).groupby(summary["layer"]).sum() / w.groupby(
        summary["layer"]
    ).sum()
    ax = axes.flat[len(sites)]
    ax.plot(avg.index, avg.values, "k-o")
    ax.set_title("weighted by GEMM weight size", fontsize=10)
    for ax in axes.flat[len(sites) + 1 :]:
        ax.set_visible(False)
    for ax in axes.flat:
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes[:, 0]:
        ax.set_ylabel("share of vectors")
    for ax in axes[-1]:
        ax.set_xlabel("layer")
    axes.flat[0].legend(fontsize="small", loc="upper left")
    fig.suptitle(
        f"SIC sparsity per layer (threshold {params.threshold}, vector {params.vector_size}, "
        f"block {'x'.join(map(str, params.block))})"
    )
    fig.tight_layout()
    return figure_png(fig)


def _model_plot(model: pd.DataFrame) -> bytes:
    """Speedup and energy reduction over dense per machine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [MODEL_ROWS.get(m, (m, m))[1] for m in model.index]
    colors = [
        "tab:orange" if m == "focus" else "#f5c99b" if m.startswith("focus") else "tab:blue"
        for m in model.index
    ]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.4 * len(model) + 1.5), sharey=True)
    for ax, col, label in zip(
        axes, ("speedup", "energy_reduction"), ("speedup over dense", "energy reduction")
    ):
        bars = ax.barh(names, model[col], color=colors)
        ax.bar_label(bars, [_x(v) for v in model[col]], padding=3, fontsize=9)
        ax.axvline(1, color="k", lw=0.8)
        ax.set_xlim(0, model[col].max() * 1.2)
        ax.set(xlabel=f"{label} (x)", title=label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return figure_png(fig)


def _sic_error(r: FlowResult) -> tuple[dict, float]:
    """SIC's relative GEMM error per site (mean over layers) and weighted by
    GEMM weight size; ``({}, nan)`` for a trace without it."""
    errors = r.trace.meta.extra.get("sic_error", {})
    weights = r.workload.shape.weight_sizes()
    mean = {s: sum(e) / len(e) for s, e in errors.items()}
    total = sum(weights[s] for s in mean)
    return mean, sum(weights[s] * e for s, e in mean.items()) / total if total else float("nan")


def _performance_lines(r: FlowResult) -> list[str]:
    """The answer: Focus against dense and the baselines, why a baseline
    wins where it does, SIC's error and how SEC chose its tokens."""
    from sim.sparsity import sec_survivors

    m, shape, p = r.model, r.workload.shape, r.params
    f = m.loc["focus"]
    name = {k: v[1] for k, v in MODEL_ROWS.items()}
    lines = [
        f"On this video ({shape.tokens:,} tokens, {'x'.join(map(str, shape.grid))}, "
        f"{shape.layers} layers), Focus (SEC + SIC) runs {_faster(f.speedup)} than dense "
        f"and uses {_less(f.energy_reduction)} energy, with {_num(f.dram_mb)} MB of DRAM "
        f"traffic against dense's {_num(m.loc['dense', 'dram_mb'])} MB. "
        + "; ".join(
            f"{name[b]}: {_faster(m.loc[b, 'speedup'])}, {_less(m.loc[b, 'energy_reduction'])} "
            f"energy, {_num(m.loc[b, 'dram_mb'])} MB"
            for b in ("cmc", "adaptiv")
        )
        + f". Of Focus's two halves, SIC alone gives a speedup of "
        f"{_x(m.loc['focus_sic', 'speedup'])} and SEC alone {_x(m.loc['focus_sec', 'speedup'])}."
    ]
    for b in ("cmc", "adaptiv"):
        o = m.loc[b]
        if o.speedup > f.speedup:
            why = []
            if o.mac_share < f.mac_share:
                why.append(
                    f"its merging leaves {_pct(o.mac_share)} of dense's MACs, Focus's "
                    f"{_pct(f.mac_share)}"
                )
            if f.stall_share > o.stall_share + 0.01:
                why.append(f"Focus's array stalls {_pct(f.stall_share)} of its time on scatter/SIC")
            if f.dram_wait_share > o.dram_wait_share + 0.01:
                why.append(
                    f"Focus waits on DRAM {_pct(f.dram_wait_share)} of its time, "
                    f"{name[b]} {_pct(o.dram_wait_share)}"
                )
            lines.append(
                f"{name[b]} is faster than Focus ({_x(o.speedup)} against {_x(f.speedup)}): "
                + ("; ".join(why) or "see the performance model below")
                + "."
            )
        if o.energy_reduction > f.energy_reduction:
            lines.append(
                f"{name[b]} saves more energy than Focus ({_x(o.energy_reduction)} against "
                f"{_x(f.energy_reduction)}): {_num(o.time_ms)} ms and {_num(o.dram_mb)} MB of "
                f"DRAM traffic against Focus's {_num(f.time_ms)} ms and {_num(f.dram_mb)} MB."
            )
    if all(m.loc[b, "speedup"] <= f.speedup for b in ("cmc", "adaptiv")) and all(
        m.loc[b, "energy_reduction"] <= f.energy_reduction for b in ("cmc", "adaptiv")
    ):
        lines.append("Focus beats both baselines in time and in energy here.")
    mean, avg = _sic_error(r)
    if mean:
        worst = max(mean, key=mean.get)
        lines.append(
            f"SIC changes the GEMM outputs by {_pct(avg)} relative to the dense GEMMs (relative "
            "Frobenius error, mean over layers weighted by GEMM weight size; largest at "
            f"{worst}, {_pct(mean[worst])}). This workload's GEMM weights are random "
            "stand-ins: for such (i.i.d.) weights the output's relative error equals the "
            "input's, |X' - X| / |X|, in mean square, which is what the trace records; a real "
            "model's weights give their own figure."
        )
    attn, mlp = sec_survivors(shape, p)
    if (mlp == shape.tokens).all():
        lines.append(
            f"SEC prunes nothing here: its first pruning layer ({p.sec_layers[0]}) is past "
            f"this workload's {shape.layers} layers, so Focus equals its SIC-only ablation."
        )
    else:
        cuts = [
            f"{n / shape.tokens:.0%} of the tokens from layer {layer}'s MLP on"
            for layer, n in enumerate(mlp)
            if n < (mlp[layer - 1] if layer else shape.tokens)
        ]
        lines.append(
            f"SEC keeps {', then '.join(cuts)} (the params' sec_layers and sec_keep). This "
            "video has no prompt, so no text-to-visual attention ranks its tokens: SEC keeps "
            f"a seeded random subset (seed {r.trace.meta.extra.get('seed', 0)}), nested across "
            "layers, and the kept tokens keep their SIC decisions (a group whose root was "
            "pruned is led by its first kept member)."
        )
    return lines


def _area_lines(r: FlowResult, parts: pd.DataFrame) -> list[str]:
    """Total area, the Focus unit's share and the paper's."""
    from sim.tech import paper_focus_share
    from synth.breakdown import focus_share

    if "focus" not in r.areas:
        built = ", ".join(f"{u} {rep.summary()['cells']:,} cells" for u, rep in r.areas.items())
        return [
            f"Built units: {built}. The whole accelerator's area and the Focus unit's share "
            "need --units focus (the default)."
        ]
    acc = parts[parts["unit"] == "focus"].set_index("part")
    cells = acc["cells"].fillna(0)
    share = focus_share(r.areas["focus"].breakdown["cells"])
    logic_mm2 = acc.drop(index="SRAM", errors="ignore")["area_mm2"].sum()
    return [
        f"The accelerator: {int(cells.sum()):,} cells and {int(acc['transistors'].sum()):,} "
        f"CMOS transistors of logic (Yosys generic cells) plus "
        f"{int(acc['memory_bits'].sum()):,} bits of SRAM, about "
        f"{_num(acc['area_mm2'].sum())} mm² at {NODE} (logic {_num(logic_mm2)} mm², SRAM "
        f"{_num(acc['area_mm2'].sum() - logic_mm2)} mm²; estimates: sim.tech.NODES, sim.sram). "
        f"The Focus unit (SIC + SEC + scatter) is {_pct(share)} of the array's cells; the "
        f"paper's is {_pct(paper_focus_share())} of its array's area (its 28 nm tables). The "
        "paper's design point priced in this flow: python benchmarks/bench_focus_area.py "
        "(another synthesis of the whole accelerator)."
    ]


def _knob_lines(r: FlowResult) -> list[str]:
    """Where Focus's modelled time goes, and which knob steps move it most
    (0.5% or more), either way."""
    knobs, f = r.knobs, r.model.loc["focus"]

    def steps(rows) -> str:
        return "; ".join(
            f"{row.knob} {_num(row.now)} → {_num(row.to)} ({100 * row.change:+.3g}%)"
            for row in rows.drop_duplicates("knob").head(3).itertuples()
        )

    gains = steps(knobs[knobs["change"] <= -0.005])
    losses = steps(knobs[knobs["change"] >= 0.005].iloc[::-1])
    flat = [k for k, g in knobs.groupby("knob", sort=False) if (g["change"].abs() < 0.005).all()]
    lines = [
        f"Focus's time now: its array streams the unique vectors ({_pct(f.mac_share)} of "
        f"dense's MACs) and stalls {_pct(f.stall_share)} of the time on scatter and SIC "
        f"({_pct(f.dram_wait_share)} waiting on DRAM).",
        f"Largest gains, one knob one step: {gains}."
        if gains
        else "No single step of these knobs shortens Focus's time by 0.5% or more.",
    ]
    if losses:
        lines.append(f"Largest losses: {losses}.")
    if flat:
        lines.append(f"Under 0.5% either way: {', '.join(flat)}.")
    lines.append(
        "Each point re-runs the performance model (sim.simulate) on this run's Focus "
        "sparsity; a step's area is not re-synthesized."
    )
    return lines


def _sections(r: FlowResult) -> list[_Section]:
    """Every section of the report, the answer first."""
    import pandas as pd

    shape, p = r.workload.shape, r.params
    name = {k: v[1] for k, v in MODEL_ROWS.items()}
    m = r.model
    parts = area_parts(r.areas)
    model = pd.DataFrame(
        {
            "machine": [name.get(k, k) for k in m.index],
            "time (ms)": m["time_ms"],
            "speedup (x)": m["speedup"],
            "energy (mJ)": m["energy_mj"],
            "energy reduction (x)": m["energy_reduction"],
            "DRAM (MB)": m["dram_mb"],
            "MACs (% of dense)": 100 * m["mac_share"],
            "stall (% of time)": 100 * m["stall_share"],
            "DRAM wait (% of time)": 100 * m["dram_wait_share"],
        }
    )
    summary = model.loc[list(HEADLINE)].iloc[:, :6]
    knobs = r.knobs.assign(change=100 * r.knobs["change"]).rename(
        columns={
            "to": "moved to",
            "time_ms": "Focus time (ms)",
            "change": "change (%)",
            "speedup": "speedup over dense (x)",
        }
    )
    trace = r.trace.summary()
    weights = shape.weight_sizes()
    error, weighted_error = _sic_error(r)
    sparsity = trace.groupby("site", sort=False)[["zero", "similar", "sparsity"]].mean() * 100
    sparsity.insert(0, "GEMM weights per layer", pd.Series(weights))
    sparsity["error"] = 100 * pd.Series(error, dtype=float)
    sparsity.loc["weighted", ["sparsity", "error"]] = [
        100 * r.trace.weighted_sparsity(weights),
        100 * weighted_error,
    ]
    sparsity = sparsity.astype({"GEMM weights per layer": "Int64"}).rename(
        columns={
            "zero": "zero (%)",
            "similar": "similar (%)",
            "sparsity": "sparsity (%)",
            "error": "GEMM output error (%)",
        }
    )
    base = (100 * pd.DataFrame(r.baselines)).rename(
        columns={"cmc": "CMC (%)", "adaptiv": "AdapTiV (%)"}
    )
    base.index.name = "site"
    module_cols = ("module", "instances", "cells", "total_cells", "transistors")
    module_cols += ("total_transistors", "total_memory_bits")
    modules = pd.DataFrame(
        [
            {"unit": u, **{k: row[k] for k in module_cols}}
            for u, rep in r.areas.items()
            for row in rep.rows()
        ]
    )
    totals = pd.DataFrame(
        [
            {"unit": u, **{k: rep.summary()[k] for k in ("cells", "transistors", "memory_bits")}}
            for u, rep in r.areas.items()
        ]
    ).rename(columns={"memory_bits": "memory (bits)"})
    steps = pd.DataFrame(
        [
            {"step": k, "status": v["status"], "wall (s)": v["wall_s"], "key": v["key"][:12]}
            for k, v in r.steps.items()
        ]
    )
    sections = [
        _Section(
            "Summary",
            _performance_lines(r) + _area_lines(r, parts),
            summary,
            "modelled by sim.simulate at the params; speedup and energy reduction over dense",
            lead=(name["focus"],),
        ),
        _Section(
            "What to change next",
            _knob_lines(r),
            knobs,
            "Focus (SEC + SIC) with one knob moved one step; change: of Focus's time now; "
            "a moved m_tile keeps the SIC decisions traced at this one",
        ),
        _Section(
            "Performance model",
            table=model,
            note=f"time and energy on {shape.name} (sim.simulate); sparsity: "
            + "; ".join(f"{v[1]}: {v[2]}" for v in MODEL_ROWS.values())
            + ". CMC's S x V sparsity is the paper's llava_vid/videomme figure (this workload "
            "has no attention probabilities to merge)",
            plot=_model_plot(m),
            lead=(name["focus"],),
        ),
        _Section(
            "Area by part",
            table=parts.rename(
                columns={"memory_bits": "memory (bits)", "area_mm2": f"area (mm², {NODE})"}
            ),
            note=f"logic: CMOS transistors x {NODE} area per transistor (sim.tech.NODES); "
            "SRAM: sim.sram macro model; control: the top's own logic and the engines; "
            "memories by part: area/<unit>/breakdown.csv",
            plot=_area_plot(parts),
        ),
        _Section(
            "SIC sparsity per site (mean over layers)",
            table=sparsity.reset_index(),
            note=f"{shape.tokens:,} tokens {shape.grid}, {shape.layers} layers, threshold "
            f"{p.threshold}, vector {p.vector_size}; weighted: by GEMM weight size; GEMM "
            "output error: relative, with random stand-in weights (see the summary)",
            plot=sparsity_plot(trace, weights, p),
        ),
        _Section(
            "Baseline token-level sparsity",
            table=base.reset_index(),
            note="thresholds: the default rows of cmc_config.csv / adaptiv_config.csv; scores: "
            "CMC from the paper's cmc_sparsity.csv (llava_vid/videomme), AdapTiV its query's",
        ),
        _Section("Area by unit", table=totals, note="generic Yosys cells; memories in bits"),
        _Section(
            "Area by module (generic Yosys cells)",
            table=modules,
            note="memories (lib.memory) count as memory bits, not cells",
        ),
        _Section(
            "Steps",
            table=steps,
            note=f"flow wall time {r.wall_s:.1f} s; a cached step shows the wall time of the "
            "run that made it",
        ),
    ]
    if r.fpga is not None:
        keys = ("board", "device", "luts", "ffs", "brams", "dsps", "fmax_mhz", "target_mhz")
        sections.append(_Section("FPGA", table=pd.DataFrame([{k: r.fpga[k] for k in keys}])))
    return sections


def _markdown(df: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(_num(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _html_table(df: pd.DataFrame, uuid: str, lead: tuple) -> str:
    """The table through a pandas Styler: cells escaped and formatted by
    :func:`_num`, numeric columns right-aligned, ``lead`` rows in bold."""
    import pandas as pd
    from pandas.api.types import is_numeric_dtype
    from pandas.io.formats.style import Styler

    df = df.reset_index(drop=True)
    first = df.columns[0]
    styler = (
        Styler(df, uuid=uuid, cell_ids=False)
        .hide(axis="index")
        .format(_num, escape="html")
        .set_table_styles(
            {
                c: [{"selector": "th, td", "props": "text-align: right"}]
                for c in df.columns
                if is_numeric_dtype(df[c])
            }
        )
        .set_td_classes(
            pd.DataFrame(
                [["lead" if row in lead else ""] * len(df.columns) for row in df[first]],
                columns=df.columns,
            )
        )
    )
    return styler.to_html()


def _write_reports(r: FlowResult) -> None:
    """report.md and report.html (one self-contained page: CSS and plots
    embedded), the summary first."""
    shape = r.workload.shape
    title = _title(r.params)
    sub = (
        f"{shape.name}: {shape.tokens:,} visual tokens ({'x'.join(map(str, shape.grid))}), "
        f"{shape.layers} decoder layers of hidden {shape.hidden}, MLP {shape.ffn}; "
        f"params digest {r.params.digest()[:12]} (params.toml)"
    )
    files = (
        "Files: params.toml, trace.safetensors, baselines.json, verilog/<unit>/, area/<unit>/, "
        "model.csv, knobs.csv, flow.json, report.md, report.html"
    )
    md = [f"# {title}", "", sub, ""]
    body = [f"<h1>{escape(title)}</h1>", f'<p class="sub">{escape(sub)}</p>']
    for i, sec in enumerate(_sections(r)):
        md += [f"## {sec.title}", ""]
        md += [line for text in sec.paragraphs for line in (f"* {text}", "")]
        cls = ' class="summary"' if i == 0 else ""
        body += [f"<section{cls}>", f"<h2>{escape(sec.title)}</h2>"]
        if sec.paragraphs:
            body += ["<ul>"] + [f"<li>{escape(t)}</li>" for t in sec.paragraphs] + ["</ul>"]
        if sec.table is not None:
            md += [_markdown(sec.table), ""]
            body.append(_html_table(sec.table, f"t{i}", sec.lead))
        if sec.note:
            md += [sec.note, ""]
            body.append(f'<p class="note">{escape(sec.note)}</p>')
        if sec.plot is not None:
            data = base64.b64encode(sec.plot).decode()
            body.append(
                f'<figure><img alt="{escape(sec.title)}" src="data:image/png;base64,{data}">'
                "</figure>"
            )
        body.append("</section>")
    md += [files, ""]
    body.append(f'<p class="note">{escape(files)}</p>')
    atomic_write_text(r.out_dir / "report.md", "\n".join(md))
    atomic_write_text(
        r.out_dir / "report.html",
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n",
    )
