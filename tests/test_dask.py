"""Sweeps on dask.distributed: same results as the process pool, clean
errors for bad scheduler options, and a killed client loses no finished point."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from dask.distributed import LocalCluster

from focus_hw import FocusParams
from focus_hw.cli import main as hw_main
from focus_hw.executors import SchedulerError, open_executor
from focus_hw.generate import Manifest, ManifestError
from focus_hw.sweep import sweep
from sim.cli import main as sim_main

HW_GRID = ["--unit", "mac", "--dtype", "int8", "--mac-pipeline", "0,1,2"]


@pytest.fixture
def cluster():
    """A two-worker scheduler on TCP in this process (threads: starts in well under a second)."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None
    ) as c:
        yield c


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path (the sweeps write no timings)."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _untimed(report):
    if isinstance(report, dict):
        return {k: _untimed(v) for k, v in report.items() if k != "wall_s"}
    return report


def _done(folder: Path) -> bool:
    try:
        Manifest.load(folder).verify(folder)
        return True
    except ManifestError:
        return False


def test_hw_sweep_on_local_cluster_equals_process_pool(tmp_path):
    runner = CliRunner()
    pool = runner.invoke(
        hw_main,
        ["sweep", *HW_GRID, "--jobs", "2", "--no-progress", "--out", str(tmp_path / "pool")],
    )
    assert pool.exit_code == 0, pool.output
    dask = runner.invoke(
        hw_main,
        ["sweep", *HW_GRID, "--workers", "2", "--no-progress", "--out", str(tmp_path / "dask")],
    )
    assert dask.exit_code == 0, dask.output
    assert "3 ok" in dask.output
    a, b = _tree(tmp_path / "pool"), _tree(tmp_path / "dask")
    assert len([k for k in a if k.endswith("manifest.json")]) == 3
    assert a == b


def test_sim_sweep_on_scheduler_equals_process_pool(tmp_path):
    runner = CliRunner()
    pool = runner.invoke(
        sim_main, ["sweep", "--quick", "--jobs", "2", "--out", str(tmp_path / "pool")]
    )
    assert pool.exit_code == 0, pool.output
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None
    ) as c:
        dask = runner.invoke(
            sim_main,
            [
                "sweep",
                "--quick",
                "--scheduler",
                c.scheduler_address,
                "--out",
                str(tmp_path / "dask"),
            ],
        )
    assert dask.exit_code == 0, dask.output
    a = pd.read_csv(tmp_path / "pool" / "sweep.csv")
    b = pd.read_csv(tmp_path / "dask" / "sweep.csv")
    assert len(a) == 36 and a.pareto.any()
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (tmp_path / "pool" / "sweep.csv").read_bytes() == (
        tmp_path / "dask" / "sweep.csv"
    ).read_bytes()


def test_synth_grid_on_scheduler_equals_process_pool(tmp_path, cluster):
    args = ["synth", *HW_GRID[:-1], "0,1", "--no-cache", "--no-progress"]
    runner = CliRunner()
    pool = runner.invoke(hw_main, [*args, "--jobs", "1", "--out", str(tmp_path / "pool")])
    assert pool.exit_code == 0, pool.output
    dask = runner.invoke(
        hw_main, [*args, "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "dask")]
    )
    assert dask.exit_code == 0, dask.output
    a = pd.read_csv(tmp_path / "pool" / "area_summary.csv")
    b = pd.read_csv(tmp_path / "dask" / "area_summary.csv")
    assert sorted(a.mac_pipeline) == [0, 1] and (a.cells > 0).all()
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for folder in a.folder:  # the full reports agree too, but for their wall times
        ra, rb = (
            _untimed(json.loads((tmp_path / d / folder / "area.json").read_text()))
            for d in ("pool", "dask")
        )
        assert ra == rb and ra["digest"][:8] in folder and ra["flows"]["generic"]["total_cells"]


def test_scheduler_and_workers_exclude_each_other(tmp_path):
    res = CliRunner().invoke(
        hw_main,
        [
            "sweep",
            *HW_GRID,
            "--workers",
            "2",
            "--scheduler",
            "tcp://127.0.0.1:8786",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 2 and "--scheduler and --workers exclude each other" in res.output
    res = CliRunner().invoke(
        sim_main, ["sweep", "--quick", "--jobs", "2", "--workers", "2", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "--jobs" in res.output
    with pytest.raises(ValueError, match="not workers and scheduler"):
        with open_executor(workers=2, scheduler="tcp://127.0.0.1:8786"):
            pass
    assert not any(tmp_path.iterdir())


def test_malformed_scheduler_address(tmp_path):
    with pytest.raises(SchedulerError, match="unknown address scheme"):
        with open_executor(scheduler="foo://bar"):
            pass
    res = CliRunner().invoke(
        hw_main, ["synth", *HW_GRID, "--scheduler", "nohost:port", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert res.output.startswith("Error: dask scheduler 'nohost:port': ValueError: ")


def test_unreachable_scheduler_is_one_line_exit_2(tmp_path):
    """In a real process, so what is printed at interpreter exit counts too."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from focus_hw.cli import main; main()",
            "sweep",
            *HW_GRID,
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"Error: dask scheduler 'tcp://127.0.0.1:{port}': OSError: ")
    assert time.monotonic() - start < 60
    assert not (tmp_path / "out").exists()


_KILLED_SWEEP = """
import sys
from focus_hw import FocusParams
from focus_hw.executors import open_executor
from focus_hw.sweep import sweep
with open_executor(workers=2, processes=False) as executor:
    sweep(FocusParams(dtype="int8"), {"mac_pipeline": [0, 1, 2], "rows": [1, 2, 3]},
          sys.argv[1], unit="mac", executor=executor, progress=False)
"""


def test_killed_dask_client_loses_nothing_and_redoes_nothing(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SWEEP, str(out)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while len(list(out.glob("*/manifest.json"))) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the client and the workers inside it
    assert proc.wait() == -signal.SIGKILL, "the sweep finished before it could be killed"
    finished = {
        p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/manifest.json") if _done(p.parent)
    }
    assert 2 <= len(finished) < 9 and not (out / "sweep.json").exists()

    with open_executor(workers=2, processes=False) as executor:
        again = sweep(
            FocusParams(dtype="int8"),
            {"mac_pipeline": [0, 1, 2], "rows": [1, 2, 3]},
            out,
            unit="mac",
            executor=executor,
            progress=False,
        )
    assert again.count("skipped") == len(finished)  # nothing finished is redone
    assert again.count("ok") == 9 - len(finished) and again.ok
    assert all(_done(out / p.folder) for p in again.points)  # nothing is lost
    assert {p.folder for p in again.points} == {p.name for p in out.iterdir() if p.is_dir()}
    for name, mtime in finished.items():
        assert (out / name / "manifest.json").stat().st_mtime_ns == mtime
    assert json.loads((out / "sweep.json").read_text())["counts"] == {
        "ok": 9 - len(finished),
        "skipped": len(finished),
        "invalid": 0,
        "failed": 0,
    }
