"""``focus-sim sweep`` is crash-safe: SIGKILLed part-way and rerun, it
computes only the missing points and writes what an uninterrupted run writes."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from sim import dse
from sim.cli import main

POINTS = 36  # dse.QUICK_GRID
KEYS = ["m_tile", "vector_size", "block", "num_scatter", "out_vectors", "sic_lanes", "acc_format"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """sweep.csv of an uninterrupted run (in order, in this process)."""
    out = tmp_path_factory.mktemp("reference")
    res = CliRunner().invoke(main, ["sweep", "--quick", "--jobs", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"{POINTS} points: {POINTS} computed, 0 resumed" in res.output
    return (out / "sweep.csv").read_bytes()


def _journal_lines(out):
    return (out / dse.JOURNAL).read_bytes().split(b"\n") if (out / dse.JOURNAL).exists() else []


def _check_final(out, reference, computed, resumed):
    res = CliRunner().invoke(main, ["sweep", "--quick", "--jobs", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"{POINTS} points: {computed} computed, {resumed} resumed" in res.output
    df = pd.read_csv(out / "sweep.csv")
    assert len(df) == POINTS and not df.duplicated(KEYS).any()  # every point exactly once
    assert (out / "sweep.csv").read_bytes() == reference
    entries = [json.loads(line) for line in _journal_lines(out) if line]
    assert len(entries) == POINTS == len({e["key"] for e in entries})
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_sigkilled_sweep_resumes_to_the_uninterrupted_result(tmp_path, reference):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from sim.cli import main; main()",
            "sweep",
            "--quick",
            "--jobs",
            "1",
            "--out",
            str(out),
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while len(_journal_lines(out)) < 6 and proc.poll() is None:
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its pool worker
    assert proc.wait() == -signal.SIGKILL, "the sweep finished before it could be killed"
    lines = _journal_lines(out)
    assert lines[-1] == b""  # one write per line: SIGKILL leaves no half line
    whole = [json.loads(line) for line in lines[:-1]]
    assert 5 <= len(whole) < POINTS
    assert not (out / "sweep.csv").exists()  # written once, atomically, at the end
    _check_final(out, reference, POINTS - len(whole), len(whole))


def test_torn_last_line_is_dropped(tmp_path, reference):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["sweep", "--quick", "--jobs", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = (out / dse.JOURNAL).read_bytes()
    cut = data.rfind(b"\n", 0, len(data) - 1)  # start of the last line
    (out / dse.JOURNAL).write_bytes(data[: cut + 40])  # the last point half-written
    (out / "sweep.csv").unlink()
    _check_final(out, reference, 1, POINTS - 1)


def test_damaged_journal_is_a_clear_error(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / dse.JOURNAL).write_text('{"key": "a", "row": {}}\nnot json\n')
    res = CliRunner().invoke(main, ["sweep", "--quick", "--jobs", "1", "--out", str(out)])
    assert res.exit_code == 1
    assert f"{dse.JOURNAL}: line 2 is damaged" in res.output
