"""Semantic concentrator (SEC) in RTL: importance analyzer, importance buffer,
radix top-k select and offset encoder (:class:`SEC` composes them), and
:func:`simulate_sec`, which runs them against the reference's arguments."""

from .analyzer import ImportanceAnalyzer
from .concentrator import SEC
from .encoder import OffsetEncoder
from .simulate import SECInputError, SECNaNError, SECRun, simulate_sec
from .topk import RadixSelect, order_key

__all__ = [
    "SEC",
    "ImportanceAnalyzer",
    "RadixSelect",
    "OffsetEncoder",
    "order_key",
    "SECRun",
    "SECInputError",
    "SECNaNError",
    "simulate_sec",
]
