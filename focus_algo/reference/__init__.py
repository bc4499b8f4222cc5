"""The Focus paper artifact's published numbers (CSV), shipped as package data.

``algorithm/``: accuracy, sparsity, per-model SEC/SIC configurations and the
sequence shapes of the evaluated workloads; ``simulator/``: per-module area and
power, memory-compiler points and simulator results. They are comparison
targets and calibration inputs (e.g. ``focus-sim reproduce``), never outputs.
"""

from pathlib import Path

__all__ = ["REFERENCE_DIR"]

REFERENCE_DIR = Path(__file__).parent
