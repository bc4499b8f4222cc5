"""The performance model and ``focus-sim`` run without importing torch."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

FOCUS_SIM = Path(sys.executable).with_name("focus-sim")


def _imported(stderr: str) -> set[str]:
    """Top-level modules named in a ``-X importtime`` report."""
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)$", stderr, re.M)
    assert names, "no import-time report"
    return {n.strip().split(".")[0] for n in names}


def test_import_sim_without_torch():
    code = (
        "import sys, sim, sim.cli, sim.reproduce, focus_hw.formats, focus_algo, "
        "focus_algo.trace, focus_algo.config; assert 'torch' not in sys.modules, "
        "sorted(m for m in sys.modules if m.startswith('torch'))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--help"], "Usage: focus-sim"),
        (
            ["run", "--workload", "minicpm_v/mvbench", "--machine", "focus"],
            "minicpm_v/mvbench on focus",
        ),
    ],
)
def test_focus_sim_command_without_torch(args, expect):
    if not FOCUS_SIM.is_file():
        pytest.fail(f"{FOCUS_SIM} is not installed (pip install -e .)")
    env = os.environ | {"PYTHONPROFILEIMPORTTIME": "1"}
    res = subprocess.run(
        [str(FOCUS_SIM), *args], capture_output=True, text=True, timeout=300, env=env
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert expect in res.stdout
    modules = _imported(res.stderr)
    assert "sim" in modules and "torch" not in modules
