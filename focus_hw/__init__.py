"""Focus hardware generator: Amaranth RTL elaborated from :class:`FocusParams`."""

from .params import DTYPES, FocusParams
from .timing import array_latency, tile_cycles
from .pe import PE
from .systolic import SystolicArray
from .simulate import GemmRun, simulate_gemm

__all__ = ["DTYPES", "FocusParams", "array_latency", "tile_cycles",
           "PE", "SystolicArray", "GemmRun", "simulate_gemm"]
