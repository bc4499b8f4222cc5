"""The concentrate-out ring's contract, for a proof of the accelerator in two halves.

The ring splits the accelerator: the *front* (load, feed, the array, the
write engine) fills ring blocks, the *back* (dispatch, scatter, drain, SIC)
empties them. They meet in three flags of ``ring_blocks`` bits: the front
*announces* a block once its partial sums are written (the write engine's
``written``) or it was fed an empty chunk (the feeder's ``empty``); the
dispatch engine ``freed`` it once its updates are sent. :func:`contract`
follows those flags: the announced blocks not yet freed (``outstanding``),
the next block to free (``head``, ring order) and the count of blocks
announced. The contract, for a run of ``total`` blocks:

* ``"announce"`` (the front's): nothing is announced in the ``start``
  cycle, no outstanding block is announced, and every announced block is
  one of the run's next blocks from the head on (of the ``total`` less the
  freed ones), so no more than ``total`` are announced;
* ``"free"`` (the back's): nothing is freed in the ``start`` cycle, at most
  one block per cycle, the head, and only while it is outstanding.

A proof of each half's test that assumes the other's proves both of the
whole accelerator: neither half's flags depend on the other's flags of the
same cycle (each half reads them into registers first). Were a test broken,
first in cycle ``t``, the half that broke it would have behaved up to ``t``
as in a run of its own harness in which the other half's flags keep their
test (the same up to ``t - 1``, none at ``t``), which its proof excludes.

:class:`AbstractDispatch` (the back, seen from the front) and
:class:`AbstractWrite` (the front, seen from the back) drive their flag
freely; a harness assumes the contract's test of their half. The other
units of that half stay in the design, idle.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Cat, Module, Mux, Signal

from focus_hw.engines import DispatchEngine, WriteEngine

__all__ = ["AbstractDispatch", "AbstractWrite", "contract"]


def contract(m, params, start, announce, freed, total, most: int) -> tuple[dict, dict]:
    """Follow the ring flags ``announce`` (written or empty) and ``freed`` of
    a run of ``total`` blocks (at most ``most``); adds the monitor to ``m``.
    Returns the contract's tests by name (see the module docstring), each to
    hold in every cycle, and the monitor's state: ``outstanding`` (blocks
    announced and not freed), ``head`` (the next block to free), ``count``
    (blocks announced)."""
    nb = params.ring_blocks
    outstanding = Signal(nb, name="ring_outstanding")
    head = Signal(range(nb), name="ring_head")
    count = Signal(range(most + 1), name="ring_count")
    gone = Signal(range(most + 1), name="ring_gone")  # blocks freed
    fresh = sum(announce[i] for i in range(nb))  # blocks announced in this cycle
    m.d.sync += [outstanding.eq((outstanding | announce) & ~freed), count.eq(count + fresh)]
    with m.If(freed != 0):
        m.d.sync += [head.eq(Mux(head == nb - 1, 0, head + 1)), gone.eq(gone + 1)]
    # the blocks the front may hold: the run's next ones from the head on
    ahead = [Mux(i >= head, i - head, i + nb - head) for i in range(nb)]
    held = Cat(ahead[i] < total - gone for i in range(nb))
    tests = {
        "announce": (announce == 0) | (~start & ((announce & (outstanding | ~held)) == 0)),
        "free": (freed == 0) | (~start & (freed == (1 << head)) & outstanding.bit_select(head, 1)),
    }
    return tests, {"outstanding": outstanding, "head": head, "count": count}


class AbstractDispatch(DispatchEngine):
    """A dispatch engine that frees ring blocks freely (a harness assumes
    the contract's ``"free"``) and does nothing else: it takes no map beat,
    sends no update and never ``finished`` a group, so the drain, the SIC
    and ``out`` stay idle and ``busy`` stays high."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.freed.eq(AnySeq(self.params.ring_blocks))
        return m


class AbstractWrite(WriteEngine):
    """A write engine that announces ring blocks freely (``written``; a
    harness assumes the contract's ``"announce"``) and writes nothing."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.sums.ready.eq(1), self.written.eq(AnySeq(self.params.ring_blocks))]
        return m
