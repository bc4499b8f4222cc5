"""FPGA builds of the array with an on-chip harness (amaranth-boards, yowasp tools)."""

from .harness import Harness, harness_tiles, rotl_checksum

__all__ = ["Harness", "harness_tiles", "rotl_checksum"]
