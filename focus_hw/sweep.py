"""Parameter sweeps: generate one design per point of a grid, in parallel.

:func:`sweep` takes the cartesian product of ``grid`` (FocusParams field ->
values) over a base FocusParams and runs :func:`focus_hw.generate.generate`
for every valid point in its own folder ``<field=value_...>-<digest>``.
Invalid points (FocusParams rejects them) and failed points are recorded in
``sweep.json`` without stopping the others; points whose manifest verifies
are skipped, so an interrupted sweep resumes. Another ``task`` (e.g.
:class:`synth.sweep.Synthesize`) does other work per point. Any
:class:`concurrent.futures.Executor` runs the points (default: a process
pool), e.g. ``dask.distributed.Client().get_executor()``
(:mod:`focus_hw.executors`).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import itertools
import json
import traceback
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .fileio import atomic_write_text
from .generate import UNITS, Manifest, ManifestError, generate
from .params import FocusParams

__all__ = ["Generate", "PointResult", "SweepResult", "sweep", "grid_points"]

SUMMARY = "sweep.json"


@dataclass
class PointResult:
    """Outcome of one grid point: ``ok``, ``skipped`` (already generated),
    ``invalid`` (FocusParams rejected it) or ``failed`` (generation raised)."""

    point: dict
    status: str
    folder: str | None = None
    error: str | None = None


@dataclass
class SweepResult:
    unit: str
    points: list[PointResult]

    def count(self, status: str) -> int:
        return sum(p.status == status for p in self.points)

    @property
    def ok(self) -> bool:
        """True when no point was invalid or failed."""
        return not any(p.status in ("invalid", "failed") for p in self.points)


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Cartesian product of ``grid`` as a list of {field: value} dicts."""
    fields = {f.name for f in dataclasses.fields(FocusParams)}
    unknown = sorted(set(grid) - fields)
    if unknown:
        raise ValueError(f"sweep grid: unknown FocusParams field(s) {', '.join(unknown)}")
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"sweep grid: {name} must map to a list of values, not {values!r}")
        if len(list(values)) == 0:
            raise ValueError(f"sweep grid: {name} has no values")
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(grid[n]) for n in names))]


def _folder_name(point: dict, params: FocusParams) -> str:
    def fmt(v):
        return "-".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    readable = "_".join(f"{k}={fmt(v)}" for k, v in point.items())
    return f"{readable}-{params.digest()[:8]}" if readable else params.digest()[:8]


@dataclass(frozen=True)
class Generate:
    """Sweep task: the Verilog and manifest of ``unit``; done when the
    folder's manifest verifies for the same unit and parameters."""

    unit: str = "array"

    def __call__(self, params: FocusParams, folder: Path) -> None:
        generate(params, folder, unit=self.unit)

    def done(self, params: FocusParams, folder: Path) -> bool:
        try:
            manifest = Manifest.load(folder)
            manifest.verify(folder)
        except ManifestError:
            return False
        return manifest.unit == self.unit and manifest.digest == params.digest()


def _run_point(task, params_dict: dict, folder: str) -> str | None:
    """Run ``task`` on one point (in a worker); returns an error text or None."""
    try:
        task(FocusParams.from_dict(params_dict), Path(folder))
        return None
    except Exception as e:  # recorded in sweep.json; the sweep goes on
        return f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"


def sweep(
    base: FocusParams,
    grid: dict[str, list],
    out_dir,
    unit: str = "array",
    executor: cf.Executor | None = None,
    progress: bool = True,
    jobs: int | None = None,
    task=None,
) -> SweepResult:
    """Run ``task`` (default :class:`Generate` of ``unit``) for every point of
    ``grid`` over ``base``, each in its own folder of ``out_dir``; writes
    ``out_dir/sweep.json``. ``jobs`` sizes the default process pool (ignored
    when ``executor`` is given)."""
    if not isinstance(base, FocusParams):
        raise TypeError(f"sweep: base must be FocusParams, not {type(base).__name__}")
    task = task or Generate(unit)
    unit = task.unit
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")
    out_dir = Path(out_dir)
    results: list[PointResult] = []
    todo: list[tuple[PointResult, FocusParams]] = []
    for point in grid_points(grid):
        try:
            params = base.replace(**point)
        except (TypeError, ValueError) as e:
            results.append(PointResult(point, "invalid", error=str(e)))
            continue
        result = PointResult(point, "skipped", folder=_folder_name(point, params))
        results.append(result)
        if not task.done(params, out_dir / result.folder):
            todo.append((result, params))

    own = executor is None and len(todo) > 0
    if own:
        executor = cf.ProcessPoolExecutor(max_workers=jobs)
    try:
        futures = {
            executor.submit(_run_point, task, params.to_dict(), str(out_dir / r.folder)): r
            for r, params in todo
        }
        for future in tqdm(
            cf.as_completed(futures),
            total=len(futures),
            disable=not progress,
            desc=f"{type(task).__name__.lower()} {unit}",
            unit="point",
        ):
            r = futures[future]
            try:
                error = future.result()
            except Exception as e:  # the worker itself died
                error = f"{type(e).__name__}: {e}"
            r.status, r.error = ("ok", None) if error is None else ("failed", error)
    finally:
        if own:
            executor.shutdown(cancel_futures=True)

    summary = SweepResult(unit, results)
    atomic_write_text(
        out_dir / SUMMARY,
        json.dumps(
            {
                "unit": unit,
                "task": type(task).__name__,
                "base": base.to_dict(),
                "grid": {k: list(v) for k, v in grid.items()},
                "counts": {s: summary.count(s) for s in ("ok", "skipped", "invalid", "failed")},
                "points": [dataclasses.asdict(p) for p in results],
            },
            indent=2,
            default=str,
        ),
    )
    return summary
