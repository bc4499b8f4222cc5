"""Bit-exact IEEE 754 and integer arithmetic units for the Focus generator."""

from .formats import BF16, FORMATS, FP16, FP32, FloatFormat, float_format
from .mac import MAC

__all__ = ["MAC", "FloatFormat", "FP16", "BF16", "FP32", "FORMATS", "float_format"]
