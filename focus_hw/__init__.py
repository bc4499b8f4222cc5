"""Focus hardware generator: Amaranth RTL elaborated from :class:`FocusParams`."""

from .accelerator import FocusAccelerator
from .focus_gemm import FocusRun, simulate_focus_gemm
from .params import DTYPES, FocusParams
from .pe import PE
from .scatter import ScatterAccumulator
from .sec import SEC, SECRun, simulate_sec
from .sic import SIC, SICRun, simulate_sic
from .simulate import GemmRun, TilesRun, simulate_gemm, simulate_tiles
from .systolic import SystolicArray
from .timing import array_latency, gemm_cycles, reload_cycles, sec_cycles, sic_cycles, tile_cycles

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
