"""Bit-exact IEEE 754 and integer arithmetic units for the Focus generator.

Every unit is an Amaranth ``wiring.Component`` on raw bit patterns with an
optional ``pipeline`` (register stages, clock-enabled by ``en``) and a
``latency`` attribute. Results match numpy (``ml_dtypes`` for bf16) bit for
bit, NaN payloads included; see :mod:`focus_hw.arith.reference`.
"""

from .compare import FCompare, FMax
from .convert import Narrow, Widen
from .fadd import FAdd
from .fmul import FMul
from .formats import BF16, FORMATS, FP16, FP32, FloatFormat, float_format
from .mac import MAC

__all__ = [
    "MAC",
    "FAdd",
    "FMul",
    "Widen",
    "Narrow",
    "FCompare",
    "FMax",
    "FloatFormat",
    "FP16",
    "BF16",
    "FP32",
    "FORMATS",
    "float_format",
]
