"""The SIC's stream contract, for a compositional proof of the accelerator.

:func:`contract` follows the SIC's two streams: it counts the beats of
the pass being taken (a pass ends with a ``last`` beat or its ``m_tile``-th,
as :class:`~focus_hw.sic.SIC` defines it), the beats of taken passes not yet
sent, and the cycles in which the SIC could move and nothing moves. The
contract is then:

* ``"early"``: ``out`` is valid only while a taken pass has beats unsent;
* ``"capacity"``: at most :func:`capacity` beats are taken and not sent;
* ``"stall"``: while ``out`` is ready and a vector is offered or a taken
  pass has beats unsent, a beat moves within ``window`` cycles.

``tests/test_focus_formal.py`` proves that the SIC keeps it (every reachable
state, free data). :class:`AbstractSIC` is any unit that keeps its first
two tests: its ``ready``, ``valid`` and payload are free within them, so
every behaviour of the SIC on its ports is one of its own. With it in
place of the SIC, ``tests/test_focus_formal.py`` proves the controller's
properties for runs the whole design is too large for, counting the
unit's stalls apart (``could``) and leaving them to ``"stall"``.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assume, Module, Signal, Value

from focus_hw.sic import SIC

__all__ = ["AbstractSIC", "capacity", "contract"]


def capacity(params) -> int:
    """Most beats the SIC holds taken and not sent: two passes (its two banks)."""
    return 2 * params.m_tile


def contract(m, params, inp, out, window: int | None) -> tuple[dict, Value]:
    """Follow the streams ``inp`` and ``out`` of an SIC of ``params`` (adds
    the counters to ``m``). Returns the contract's tests by name (see the
    module docstring; ``"stall"`` only with a ``window``), each to hold in
    every cycle, and ``could``: the SIC could move a beat (``out`` is ready,
    and a vector is offered or a taken pass has beats unsent)."""
    take_in, take_out = inp.valid & inp.ready, out.valid & out.ready
    cap = capacity(params)
    taking = Signal(range(params.m_tile), name="contract_taking")  # the open pass's beats
    sendable = Signal(range(2 * cap + 1), name="contract_sendable")  # room past the cap
    ends = inp.payload.last | (taking == params.m_tile - 1)
    with m.If(take_in & ends):
        m.d.sync += [taking.eq(0), sendable.eq(sendable + taking + 1 - take_out)]
    with m.Elif(take_in):
        m.d.sync += [taking.eq(taking + 1), sendable.eq(sendable - take_out)]
    with m.Elif(take_out):
        m.d.sync += sendable.eq(sendable - 1)
    could = out.ready & (inp.valid | (sendable != 0))
    tests = {"early": ~out.valid | (sendable != 0), "capacity": taking + sendable <= cap}
    if window is not None:
        stuck = Signal(range(window + 1), name="contract_stuck")  # cycles it could move, did not
        with m.If(could & ~take_in & ~take_out):
            with m.If(stuck != window):
                m.d.sync += stuck.eq(stuck + 1)
        with m.Else():
            m.d.sync += stuck.eq(0)
        tests["stall"] = stuck < window
    return tests, could


class AbstractSIC(SIC):
    """A unit with the SIC's ports whose ``inp.ready``, ``out.valid`` and
    ``out.payload`` are free in every cycle, except that they keep the
    contract's ``"early"`` and ``"capacity"`` tests (assumed, word for
    word); it may stall for ever. Any SIC that keeps them behaves on these
    ports as some run of this unit does. :attr:`could` is the contract's
    ``could``, with which a harness leaves the unit's stalls to the
    ``"stall"`` test, proven of the SIC on its own. Its counters stay 0."""

    def __init__(self, params):
        super().__init__(params)
        self.could = Signal()

    def elaborate(self, platform):
        m = Module()
        inp, out = self.inp, self.out
        m.d.comb += [
            inp.ready.eq(AnySeq(1)),
            out.valid.eq(AnySeq(1)),
            out.payload.eq(AnySeq(len(out.payload.as_value()))),
        ]
        tests, could = contract(m, self.params, inp, out, window=None)
        m.d.comb += [Assume(test) for test in tests.values()]
        m.d.comb += self.could.eq(could)
        return m
