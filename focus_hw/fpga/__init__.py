"""FPGA builds of the array or the whole accelerator with an on-chip harness
(amaranth-boards, yowasp tools)."""

from .boards import BOARDS, UnknownBoardError
from .build import FpgaBuildError, FpgaReport, expected_checksum, fpga_build, led_pattern, read_fmax
from .focus_harness import FocusHarness, PlantedGemm, expected_run, planted_gemm
from .harness import Harness, harness_tiles, rotl_checksum

__all__ = [
    "BOARDS",
    "UnknownBoardError",
    "FpgaBuildError",
    "FpgaReport",
    "expected_checksum",
    "fpga_build",
    "led_pattern",
    "read_fmax",
    "Harness",
    "FocusHarness",
    "PlantedGemm",
    "expected_run",
    "planted_gemm",
    "harness_tiles",
    "rotl_checksum",
]
