"""Focus hardware generator: Amaranth RTL elaborated from :class:`FocusParams`."""

from .params import DTYPES, FocusParams
from .timing import array_latency, tile_cycles

__all__ = ["DTYPES", "FocusParams", "array_latency", "tile_cycles"]
