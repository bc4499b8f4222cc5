"""Analytic SRAM macro model fitted on the paper's memory-compiler points.

``buffer_model_spec.csv`` lists six compiled macros (words x width) with area,
read/write current per MHz, leakage current and voltage. Each quantity is
fitted with a power law in words and width (least squares in log space):

    q(words, width) = c * words**a * width**b

(area grows ~ words^0.63 width^0.80: the per-macro periphery makes small
macros dear; access energy ~ words^0.33 width^0.83, close to the classic
width x sqrt(depth) bit-line scaling). ``fit_errors()`` reports the relative
error at the compiled points: area <= 14%, read/write energy <= 17%,
leakage <= 50% (the 32x256 register-file-like macro leaks far above the
trend; leakage is < 5% of the buffer energy in every workload).

A buffer of ``n`` bytes is built from macros of ``WORD_BITS``-bit words,
32..1024 words deep; energy per access is current x voltage (uA/MHz x V =
pJ per access).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .workload import REFERENCE_DIR

__all__ = ["Macro", "fit", "fit_errors", "macro", "buffer", "Buffer", "WORD_BITS"]

#: Word width of the macros buffers are built from (the widest compiled
#: macro family of the 1024-deep points).
WORD_BITS = 128
_QUANTITIES = {
    "area": "Area(mm2)",
    "read": "Readc(uA/MHz)",
    "write": "Writec(uA/MHz)",
    "leak": "Leakage(uA)",
}


def _points(path=None) -> pd.DataFrame:
    df = pd.read_csv(path or REFERENCE_DIR / "simulator" / "buffer_model_spec.csv")
    shape = df["Model"].str.split("x", expand=True).astype(int)
    return df.assign(words=shape[0], width=shape[1])


@functools.cache
def fit() -> dict[str, np.ndarray]:
    """Power-law coefficients (log c, a, b) per quantity, plus the voltage."""
    df = _points()
    A = np.column_stack([np.ones(len(df)), np.log(df.words), np.log(df.width)])
    out = {
        q: np.linalg.lstsq(A, np.log(df[col].to_numpy(float)), rcond=None)[0]
        for q, col in _QUANTITIES.items()
    }
    volts = df["Voltage(V)"].unique()
    if len(volts) != 1:
        raise ValueError("buffer_model_spec.csv: macros at several voltages")
    out["volts"] = float(volts[0])
    return out


def _law(q: str, words, width):
    c, a, b = fit()[q]
    return np.exp(c) * np.power(words, a) * np.power(width, b)


@dataclass(frozen=True)
class Macro:
    """One SRAM macro: area (mm^2), energy per access (pJ), leakage (uW)."""

    words: int
    width: int
    area_mm2: float
    read_pj: float
    write_pj: float
    leak_uw: float


def macro(words: int, width: int) -> Macro:
    v = fit()["volts"]
    return Macro(
        words,
        width,
        float(_law("area", words, width)),
        float(_law("read", words, width) * v),
        float(_law("write", words, width) * v),
        float(_law("leak", words, width) * v),
    )


def fit_errors() -> pd.DataFrame:
    """Relative error of the fit at each compiled point (model / csv - 1)."""
    df = _points()
    out = pd.DataFrame({"macro": df["Model"]})
    for q, col in _QUANTITIES.items():
        out[q] = _law(q, df.words, df.width) / df[col] - 1
    return out


@dataclass(frozen=True)
class Buffer:
    """A buffer of ``macros`` identical macros."""

    nbytes: int
    macro: Macro
    macros: int

    @property
    def area_mm2(self) -> float:
        return self.macros * self.macro.area_mm2

    @property
    def leak_mw(self) -> float:
        return self.macros * self.macro.leak_uw * 1e-3

    @property
    def read_pj_per_byte(self) -> float:
        return self.macro.read_pj / (self.macro.width / 8)

    @property
    def write_pj_per_byte(self) -> float:
        return self.macro.write_pj / (self.macro.width / 8)


@functools.cache
def buffer(nbytes: int) -> Buffer:
    """The macros of an ``nbytes`` buffer: WORD_BITS-wide words, 32..1024 deep."""
    if nbytes < 1:
        raise ValueError(f"buffer: nbytes={nbytes} must be >= 1")
    words = min(1024, max(32, math.ceil(nbytes * 8 / WORD_BITS)))
    n = math.ceil(nbytes * 8 / (words * WORD_BITS))
    return Buffer(nbytes, macro(words, WORD_BITS), n)
