"""Focus hardware generator: Amaranth RTL elaborated from :class:`FocusParams`.

The names below are imported on first use, so ``import focus_hw.params`` (and
the command-line tools' ``--help``) do not load Amaranth.
"""

import importlib

_LAZY = {
    "FocusAccelerator": "accelerator",
    "FocusRun": "focus_gemm",
    "simulate_focus_gemm": "focus_gemm",
    "DTYPES": "params",
    "FocusParams": "params",
    "PE": "pe",
    "ScatterAccumulator": "scatter",
    "SEC": "sec",
    "SECRun": "sec",
    "simulate_sec": "sec",
    "SIC": "sic",
    "SICRun": "sic",
    "simulate_sic": "sic",
    "GemmRun": "simulate",
    "TilesRun": "simulate",
    "simulate_gemm": "simulate",
    "simulate_tiles": "simulate",
    "SystolicArray": "systolic",
    "array_latency": "timing",
    "gemm_cycles": "timing",
    "reload_cycles": "timing",
    "sec_cycles": "timing",
    "sic_cycles": "timing",
    "tile_cycles": "timing",
}

__all__ = [
    "DTYPES",
    "FocusParams",
    "PE",
    "SystolicArray",
    "GemmRun",
    "TilesRun",
    "simulate_gemm",
    "simulate_tiles",
    "array_latency",
    "tile_cycles",
    "reload_cycles",
    "gemm_cycles",
    "SIC",
    "SICRun",
    "simulate_sic",
    "sic_cycles",
    "SEC",
    "SECRun",
    "simulate_sec",
    "sec_cycles",
    "FocusAccelerator",
    "ScatterAccumulator",
    "FocusRun",
    "simulate_focus_gemm",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
