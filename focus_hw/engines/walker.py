"""The run's loop nest as one engine steps through it."""

from __future__ import annotations

from amaranth.hdl import Mux, Signal
from amaranth.lib import data

from ..params import FocusParams

__all__ = ["COUNT_BITS", "Walker", "run_layout", "block_addr"]

#: Width of the run's size registers (K chunks, N tiles) and of the counters.
COUNT_BITS = 32


def run_layout(params: FocusParams) -> data.StructLayout:
    """A run's size, as every engine sees it: surviving ``tokens``, K
    ``chunks`` and N tiles (``ntiles``, of ``cols`` columns each)."""
    return data.StructLayout(
        {
            "tokens": range(params.max_tokens + 1),
            "chunks": COUNT_BITS,
            "ntiles": COUNT_BITS,
        }
    )


def block_addr(block, index, rows: int):
    """Row ``index`` of block ``block`` of a buffer cut in blocks of ``rows``."""
    return block * rows + index


class Walker:
    """One engine's place in the run's loop nest: M tiles of up to
    ``m_tile`` surviving tokens (``base``: first token, ``tokens``: count),
    N groups of up to ``out_vectors`` output sub-tiles (``group``: the first
    N tile of the group), K chunks (``chunk``), then the group's sub-tiles
    (``sub``). ``chunks=False`` or ``subs=False`` leaves that loop out.

    ``advance`` (comb, set by the engine) moves one step on, from the cycle
    after ``start`` on; ``done`` is high before the first run and after the
    last step. ``first``: the step is in chunk 0; ``last_chunk`` /
    ``last_sub``: the step is in the last chunk / the last sub-tile of its
    group; ``ends_group``: both. The run's sizes must stay as they were at
    ``start`` until the walk is done (``tokens`` is a register)."""

    def __init__(self, m, params: FocusParams, run, start, name, *, chunks=True, subs=True):
        mt, vectors = params.m_tile, params.out_vectors
        self.advance = Signal(name=f"{name}_advance")
        self.base = Signal(COUNT_BITS, name=f"{name}_base")
        self.group = Signal(COUNT_BITS, name=f"{name}_group")
        self.chunk = Signal(COUNT_BITS, name=f"{name}_chunk")
        self.sub = Signal(range(vectors), name=f"{name}_sub")
        self.done = Signal(init=1, name=f"{name}_done")
        self.tokens = Signal(range(mt + 1), name=f"{name}_tokens")
        self.first = Signal(name=f"{name}_first")
        self.last_chunk = Signal(name=f"{name}_last_chunk")
        self.last_sub = Signal(name=f"{name}_last_sub")
        self.ends_group = Signal(name=f"{name}_ends_group")
        # tokens is a register: min(run.tokens - base, m_tile), loaded with base.
        left = Signal(COUNT_BITS, name=f"{name}_left")  # tokens from the next M tile on
        last_group = self.group + vectors >= run.ntiles
        m.d.comb += [
            left.eq(run.tokens - self.base - mt),
            self.first.eq(self.chunk == 0),
            self.last_chunk.eq((self.chunk == run.chunks - 1) if chunks else 1),
            self.last_sub.eq(
                ((self.sub == vectors - 1) | (self.group + self.sub == run.ntiles - 1))
                if subs
                else 1
            ),
            self.ends_group.eq(self.last_chunk & self.last_sub),
        ]

        def next_group():
            with m.If(~last_group):
                m.d.sync += self.group.eq(self.group + vectors)
            with m.Else():
                m.d.sync += [
                    self.group.eq(0),
                    self.base.eq(self.base + mt),
                    self.tokens.eq(Mux(left > mt, mt, left)),
                ]
                with m.If(self.base + mt >= run.tokens):
                    m.d.sync += self.done.eq(1)

        def next_chunk():
            if not chunks:
                return next_group()
            with m.If(~self.last_chunk):
                m.d.sync += self.chunk.eq(self.chunk + 1)
            with m.Else():
                m.d.sync += self.chunk.eq(0)
                next_group()

        with m.If(start):
            m.d.sync += [
                self.base.eq(0),
                self.group.eq(0),
                self.chunk.eq(0),
                self.sub.eq(0),
                self.tokens.eq(Mux(run.tokens > mt, mt, run.tokens)),
                self.done.eq(run.tokens == 0),
            ]
        with m.Elif(self.advance):
            if subs:
                with m.If(~self.last_sub):
                    m.d.sync += self.sub.eq(self.sub + 1)
                with m.Else():
                    m.d.sync += self.sub.eq(0)
                    next_chunk()
            else:
                next_chunk()
