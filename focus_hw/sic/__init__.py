"""The similarity concentrator (SIC) in hardware, and the numpy model of its numerics.

:class:`SIC` composes the units below; :mod:`focus_hw.sic.model` states
their arithmetic bit for bit; :func:`simulate_sic` runs tokens through the
generated RTL.
"""

from .argmax import ArgMax
from .average import AverageUpdate
from .dot import DotProduct
from .model import DECISION_BOUND, SICRun, sic_model
from .sic import SIC
from .simulate import simulate_sic
from .table import SimilarityMap, SimilarityTable, StreamMemory

#: Generator units (``focus-hw generate/synth --unit NAME``): the SIC and each part.
SIC_UNITS = {
    "sic": SIC,
    "sic_dot": DotProduct,
    "sic_argmax": ArgMax,
    "sic_table": SimilarityTable,
    "sic_map": SimilarityMap,
    "sic_average": AverageUpdate,
}

__all__ = [
    "SIC_UNITS",
    "SIC",
    "DotProduct",
    "ArgMax",
    "SimilarityTable",
    "SimilarityMap",
    "StreamMemory",
    "AverageUpdate",
    "SICRun",
    "DECISION_BOUND",
    "sic_model",
    "simulate_sic",
]
