"""The integrated accelerator's engines, one Component each, in dataflow
order: :class:`LoadEngine` (vectors -> input buffer), :class:`FeedEngine`
(input buffer -> array, a ring block per sub-tile), :class:`WriteEngine`
(array -> concentrate-out ring), :class:`DispatchEngine` (ring + map ->
scatter lanes) and :class:`DrainEngine` (output buffer -> SIC). Each steps
through the run's loop nest with its own :class:`Walker`;
:class:`focus_hw.accelerator.FocusAccelerator` connects them."""

from .dispatch import DispatchEngine, keep_depth, map_beats, map_layout
from .drain import POSITION, DrainEngine, position_layout
from .feed import FeedEngine, block_layout
from .load import LoadEngine, input_depth, input_row, vector_layout
from .walker import COUNT_BITS, Walker, block_addr, run_layout
from .write import WriteEngine, partial_row, ring_depth

__all__ = [
    "COUNT_BITS",
    "POSITION",
    "DispatchEngine",
    "DrainEngine",
    "FeedEngine",
    "LoadEngine",
    "Walker",
    "WriteEngine",
    "block_addr",
    "block_layout",
    "input_depth",
    "input_row",
    "keep_depth",
    "map_beats",
    "map_layout",
    "partial_row",
    "position_layout",
    "ring_depth",
    "run_layout",
    "vector_layout",
]
