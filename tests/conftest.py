"""Hypothesis profiles ("ci", the default, and "slow": HYPOTHESIS_PROFILE=slow),
a one-line summary of skipped tests, no silent empty run under CI, and the
formal proofs' ``free_fp`` fixture."""

import os
from collections import Counter

import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Module
from hypothesis import settings

from focus_hw.arith import MAC, FAdd, FMax, FMul, Narrow, Widen
from tools import in_ci

settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("slow", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter):
    """One line: "skipped 3 tests: missing tool: iverilog, vvp (3)"."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if r.when != "teardown"]
    if skipped:
        reasons = Counter(_skip_reason(r) for r in skipped)
        terminalreporter.write_line(
            f"skipped {len(skipped)} tests: "
            + "; ".join(f"{why} ({n})" for why, n in reasons.most_common())
        )


def pytest_sessionfinish(session, exitstatus):
    """Under CI a run that collected no test fails (exit status 1, not 5)."""
    if in_ci() and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


#: The float units that ``free_fp`` replaces by free outputs.
FP_UNITS = (MAC, FAdd, FMul, FMax, Widen, Narrow)


def _free_output(self, platform):
    m = Module()
    m.d.comb += self.out.eq(AnySeq(len(self.out)))
    return m


@pytest.fixture
def free_fp(monkeypatch):
    """Every float unit's ``out`` free in every cycle (formal proofs: the
    real values are among the free ones, and the solver is spared the fp logic)."""
    for unit in FP_UNITS:
        monkeypatch.setattr(unit, "elaborate", _free_output)
