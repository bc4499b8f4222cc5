"""External tools that tests need (simulators, solvers, place and route).

:func:`require` skips a test when a tool is missing on a user's machine, but
fails it under CI (``CI`` set in the environment), where ``.ci/run`` installs
every tool: a silent skip there would hide a broken check.
"""

import os
import shutil

import pytest

__all__ = ["in_ci", "require"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def require(*tools: str) -> None:
    """Skip (or, under CI, fail) the calling test unless every command in
    ``tools`` is on PATH."""
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    why = f"missing tool: {', '.join(missing)}"
    if in_ci():
        pytest.fail(f"{why} (CI installs it: see .ci/run)", pytrace=False)
    pytest.skip(why)
