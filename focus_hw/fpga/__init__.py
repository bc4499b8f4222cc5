"""FPGA builds of the array with an on-chip harness (amaranth-boards, yowasp tools)."""

from .boards import BOARDS, UnknownBoardError
from .build import FpgaBuildError, FpgaReport, expected_checksum, fpga_build, led_pattern, read_fmax
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
    "harness_tiles",
    "rotl_checksum",
]
