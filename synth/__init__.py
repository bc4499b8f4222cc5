"""Yosys synthesis flow and area reports for the generated RTL."""

from .area import FLOWS, FlowResult, ModuleArea, synthesize
from .cache import ResultCache, default_cache_dir
from .dedup import dedup_rtlil
from .report import AreaReport, area_report
from .yosys import YosysError, run_yosys

__all__ = [
    "FLOWS",
    "FlowResult",
    "ModuleArea",
    "synthesize",
    "ResultCache",
    "default_cache_dir",
    "dedup_rtlil",
    "AreaReport",
    "area_report",
    "YosysError",
    "run_yosys",
]
