"""Proofs (SymbiYosys) that the FocusAccelerator's controller never
deadlocks under arbitrary memory-port backpressure and consumes its streams
exactly: for whole runs of every size up to the largest (IC3/PDR,
unbounded; the larger ones through contracts: the SIC's on its streams and,
for the largest, the ring's between the accelerator's two halves), and for
the first cycles of the largest by BMC as well.

Harness (:class:`Env`): the run's sizes (``tokens``, ``chunks``,
``ntiles``) are constants, fixed or free within a range, started by a pulse
in cycle 0. A free "memory image" (per M tile and K chunk its unique-vector
count ``u``, any value in ``0..tile tokens``) defines well-formed streams,
which the harness emits in the order the engines take them (as
``focus_gemm._streams`` does): per (M tile, N group, chunk) ``ceil(m /
num_scatter)`` map beats and ``u`` vectors (the last flagged) or one
``empty`` beat; per (M tile, N group, chunk, sub-tile) ``rows`` weight rows
if ``u > 0``; per (M tile, N tile) each token's grid position. Each
input's ``valid`` is free (bubbles anywhere) but held until taken, as the
stream rules require; ``out.ready`` is free.

Data: operand payloads and map entries are free, and every float unit
(``conftest.FP_UNITS``: MACs, adders, multipliers, widen/narrow) is replaced by
a free output in every cycle. This over-approximates the datapath (the
real values are among the free ones; the units have no handshake), so what
holds here holds for every data value, and the solver is spared the fp
logic (with the real units the BMC is 3-10x slower per step).

Checked (:class:`Env`'s ``checks``):

* no deadlock (``"deadlock"``): in no window of :data:`WINDOW` consecutive
  cycles in which the environment cooperates (each stream with beats left
  offers one, ``out`` is ready) while ``busy`` is there no handshake.
  (The window, 24 cycles, is longer than the longest handshake-free
  stretch of a cooperative run, the SIC computing a pass.)
* exact consumption (``"complete"``): when ``busy`` drops, every stream
  has been consumed exactly and ``out`` gave one beat per (token, N tile);
  never more ``out`` beats than that;
* with a cooperative environment, ``busy`` is low from the cycle after
  :func:`focus_hw.timing.focus_schedule`'s ``cycles`` (its maximum over
  every image) on: the run ends; for one size some image keeps ``busy``
  high in that very cycle, so the bound is exact.

Configurations: :data:`P` (one scatter lane, N groups of two sub-tiles, a
ring of two blocks) and :data:`P2` (two lanes, one-vector groups, a ring
of three).
Not vacuous: withholding the weights or the positions forever (the rest
cooperating) is flagged as a deadlock, and a cover shows a run ending
despite backpressure.

Scope:

* whole runs: ``"deadlock"`` and ``"complete"`` hold in every reachable
  state of a run of :data:`WHOLE` (1 token, 1 K chunk, 1 N tile) with
  :data:`P` and with :data:`P2`, so for runs of any length under any
  backpressure, by IC3/PDR (:data:`PDR`, which finds the inductive
  invariant itself): ~7-9 s each. The ``slow`` variants grow one size
  each, with :data:`P`: 2 tokens ~12 s, 2 K chunks ~24 s, 2 N tiles ~21 s.
  For these proofs the engines' loop counters are :data:`WALKER_BITS`
  wide instead of 32 (``narrow_walkers``), and the same proof shows that
  they never come near that width's limit, so the narrow design behaves
  as the real one. Since every handshake takes one of finitely many
  beats, such a run ends whenever the environment cooperates for
  :data:`WINDOW` cycles at a time often enough, with every stream consumed
  exactly. Not vacuous: the same engine flags withheld weights and a
  window of 4 cycles as deadlocks, one more expected ``out`` beat as a
  missing one, and 2-bit loop counters as out of range.
* whole runs of larger sizes, compositionally: the whole design is too
  large for PDR past :data:`WHOLE`'s neighbours, most of it in the SIC.
  So the SIC is proven on its own to keep a contract on its two streams
  (``sic_contract``: it sends only beats of passes it has taken, holds at
  most two passes, and moves a beat within :data:`SIC_WINDOW` cycles
  whenever it can), for every input in every cycle
  (:func:`test_sic_keeps_its_contract`, PDR, ~10 s; mutants: a window one
  cycle shorter, passes ending later, a capacity one beat smaller each
  fail). Then the accelerator's properties are proven with
  ``sic_contract.AbstractSIC`` in the SIC's place: a unit whose
  ``inp.ready``, ``out.valid`` and payload are free except for the first
  two of those tests, assumed; it may stall for ever. As the SIC's proof
  assumes nothing of its inputs, every behaviour of the real SIC inside
  the accelerator is one of the abstract unit's, so what holds with it
  holds with the SIC: ``"complete"`` as it stands. ``"deadlock"`` leaves
  the SIC's stalls to its contract: it counts the SIC's input as a
  handshake, and of a stalled stretch only the cycles in which the SIC
  could not move (``could``: ``out`` ready and a vector offered or a
  pass unsent), fewer than :data:`ENGINES_WINDOW`. Between those, the
  cycles in which it could move come in at most :data:`ENGINES_WINDOW`
  runs, each shorter than :data:`SIC_WINDOW` by the contract, and between
  two ``out`` beats the SIC takes at most ``capacity`` (2 ``m_tile``)
  input beats. So with the real SIC every cooperative stretch without a
  handshake on the accelerator's streams is shorter than (2 ``m_tile`` +
  1) x :data:`ENGINES_WINDOW` x :data:`SIC_WINDOW` cycles: no deadlock.
  Proven (PDR, unbounded): :data:`WHOLE` ~4 s, :data:`TWO_TILES` (3
  tokens in two M tiles, so the engines' progress overlaps across tiles)
  ~25 s, 1 token x 2 K chunks x 2 N tiles ~30 s; ``slow``: 3 tokens x 2
  K chunks x 1 N tile ~12 minutes. Not vacuous: withheld weights are a
  deadlock (~7 s), and a window one cycle shorter is one for 1 x 2 x 2
  (~15 s). :data:`LARGEST` gave no verdict in 56 minutes this way.
* whole runs of :data:`LARGEST`, by halves: what grows with the run is
  the relation between the engines' loop walkers and the streams'
  positions, so the accelerator is cut at its concentrate-out ring
  (``ring_contract``): the *front* (load, feed, array, write engine) and
  the *back* (dispatch, scatter, drain, SIC) meet only in the ring's
  ``written``/``empty`` and ``freed`` flags. Each half is proven with the
  other's engine at the ring abstract (:class:`ring_contract.AbstractWrite`,
  :class:`ring_contract.AbstractDispatch`) and its side of the ring's
  contract assumed; it keeps its own side (``"announce"``,
  ``"free"``), takes its streams exactly and does not deadlock. As
  neither side's flags depend on the other's in the same cycle, the two
  proofs prove the contract of the whole accelerator (``ring_contract``).
  ``"complete"``: the front has taken every ``vectors`` and ``weights``
  beat once it has announced the run's last block; when ``busy`` drops,
  the back has freed every block, taken its streams and sent every
  ``out`` beat. (``busy``, which the front reads to take weights, stays
  high in the front's harness; it drops only after the back has freed
  every block, when the front has nothing left to take.)
  ``"deadlock"`` counts each half's stalls only while it could move (the
  front: blocks left to announce and a block not outstanding; the back:
  the next block to free announced, or all of them, and the SIC unable
  to move), fewer than :data:`HALF_WINDOW`; each half's ring flags count
  as handshakes. In a stalled stretch of the whole accelerator (``busy``,
  cooperative, no handshake of any kind) one of the two counts every
  cycle in which the SIC cannot move: the front while blocks are left to
  announce and one is not outstanding, the back otherwise (all blocks
  announced, or all outstanding, the head too). So such
  a stretch is shorter than 2 :data:`HALF_WINDOW` x (:data:`SIC_WINDOW` +
  1) cycles, and a cooperative stretch without a handshake on the
  accelerator's streams holds at most 2 ``m_tile`` SIC input beats and
  2 flags per block (``tokens / m_tile`` x ``chunks`` x ``ntiles``
  blocks) between them: no deadlock. Proven (PDR, unbounded), with
  :data:`P` and :data:`P2`: the back of :data:`LARGEST` ~15-55 s, the
  front of 1 token x 2 K chunks x 2 N tiles ~10-20 s and of 3 tokens x 1
  K chunk x 2 N tiles ~20-55 s; ``slow``: the front of :data:`LARGEST`
  with :data:`P`, 3-11 minutes, and of 3 tokens x 2 K chunks x 1 N tile
  with :data:`P2`, ~4 minutes (the front of :data:`LARGEST` with
  :data:`P2`, whose two N groups read the vectors twice, gave no verdict
  in 50 minutes). Not vacuous: a window one cycle
  shorter is a deadlock of the back of :data:`LARGEST`, withheld weights
  one of the front, withheld positions one of the back; a run one block
  shorter fails the front's ``"announce"``, and a freed flag for the next
  block the back's ``"free"``.
  (Times: the wall clock of one test on a shared 2-core machine.)
* BMC: under backpressure only the first :data:`DEPTH` cycles of a
  run of the largest size (3 tokens in two M tiles, 2 K chunks, 2 N tiles; a
  cooperative run takes up to 108 cycles with :data:`P`, 100 with
  :data:`P2`), and only the smallest run (1, 1, 1) ends within them; the
  solver's time per step grows steeply past about 40 cycles (depth 40:
  ~25 s). The ``slow`` variants go deeper.
"""

from itertools import product
from types import SimpleNamespace

import pytest
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Array, Assert, Assume, Cat, Const, Cover, Elaboratable, Module, Mux, Signal

import ring_contract
import sic_contract
from focus_hw import FocusParams, accelerator
from focus_hw.accelerator import FocusAccelerator
from focus_hw.engines import DispatchEngine, FeedEngine, WriteEngine, walker
from focus_hw.sic import SIC
from focus_hw.timing import focus_schedule
from formal import TOOLS, check, failed_checks, prove
from ring_contract import AbstractDispatch, AbstractWrite
from sic_contract import AbstractSIC, contract
from tools import require

P = FocusParams(
    rows=1,
    cols=1,
    vector_size=1,
    m_tile=2,
    num_scatter=1,
    sic_lanes=1,
    max_tokens=8,
    max_frame_tokens=4,
    block_frames=1,
    block_height=1,
    block_width=2,
    out_vectors=2,
    ring_blocks=2,
)
#: ... and with two scatter lanes (one map beat per M tile of two tokens).
P2 = P.replace(num_scatter=2, out_vectors=1, ring_blocks=3)
#: The positions' grid: rows of WIDTH patches, FRAME patches per frame.
WIDTH, FRAME = 2, P.max_frame_tokens
#: Cycles of backpressure after which the cover wants a run to end.
PRESSURE = 8
#: The largest run: two M tiles (2 + 1 tokens), 2 K chunks, 2 N tiles.
LARGEST = {"tokens": (3, 3), "chunks": (2, 2), "ntiles": (2, 2)}
#: Every size up to the largest (inclusive ranges).
SIZES = {"tokens": (1, 3), "chunks": (1, 2), "ntiles": (1, 2)}
#: Longest handshake-free stretch the deadlock check allows.
WINDOW = 24
#: BMC depth of the deadlock check (cycles), and of its ``slow`` variant.
DEPTH, DEPTH_SLOW = 40, 46
#: Width of the engines' loop counters in the whole-run proofs (``narrow_walkers``).
WALKER_BITS = 4
#: SBY engine of the whole-run proofs: IC3/PDR (ABC's ``pdr``) on the model
#: as SBY writes it, with localization abstraction (``-t``: PDR proves the
#: property of a model that keeps only some latches, the rest free, and
#: adds latches while a counterexample is spurious; a proof of that model is
#: one of the whole), 1.3-2.7x faster here than without. Every mutant
#: below still fails with it. (ABC's ``scorr -F 2`` reduction once made plain PDR
#: prove a false contract, the ``larger-m-tile`` mutant of
#: :func:`test_sic_contract_can_fail`, which PDR alone and BMC refute; so
#: no reduction is used.)
PDR = "abc pdr -t"
#: The SIC's contract window (``sic_contract``): whenever the SIC can move
#: (``out`` ready, and a vector offered or a finished pass unsent), a beat
#: moves within this many cycles (:func:`test_sic_keeps_its_contract`; one
#: cycle less fails).
SIC_WINDOW = 15
#: The deadlock window of the compositional proofs, which count only the
#: cycles in which the SIC could not move (one cycle less fails for 1
#: token, 2 K chunks and 2 N tiles).
ENGINES_WINDOW = 8
#: The deadlock window of the proofs by halves (``ring_contract``), which
#: count only the cycles in which the half could move (one cycle less fails
#: for the back of the largest run).
HALF_WINDOW = 5
#: The run of the whole-run proofs (and of their mutants).
WHOLE = {"tokens": (1, 1), "chunks": (1, 1), "ntiles": (1, 1)}
#: 3 tokens in two M tiles (1 K chunk, 1 N tile).
TWO_TILES = {"tokens": (3, 3), "chunks": (1, 1), "ntiles": (1, 1)}
STREAMS = ("map", "vectors", "weights", "positions")
#: The streams each half of the accelerator takes (``ring_contract``).
HALF_STREAMS = {"front": ("vectors", "weights"), "back": ("map", "positions")}


def fixed(tokens, chunks, ntiles) -> dict:
    return {"tokens": (tokens, tokens), "chunks": (chunks, chunks), "ntiles": (ntiles, ntiles)}


def schedule_bound(sizes, params=P) -> int:
    """Most cycles of a run without backpressure, over every size and image."""
    worst = 0
    for t, c, n in product(*(range(lo, hi + 1) for lo, hi in sizes.values())):
        ms = [min(params.m_tile, t - b) for b in range(0, t, params.m_tile)]
        for us in product(*(range(m + 1) for m in ms for _ in range(c))):
            tiles = [(m, us[i * c : (i + 1) * c]) for i, m in enumerate(ms)]
            worst = max(worst, focus_schedule(tiles, n, params)["cycles"])
    return worst


@pytest.fixture
def narrow_walkers(monkeypatch):
    """The engines' loop counters (:class:`focus_hw.engines.walker.Walker`:
    ``base``, ``group``, ``chunk``, ``left``, and the run's ``chunks`` and
    ``ntiles``) :data:`WALKER_BITS` wide instead of ``COUNT_BITS`` (32),
    and every Walker asserts that its counters stay far enough below that
    width's limit that no sum wraps (``"walkers"``), so the narrow design
    behaves as the wide one in every reachable state. Returns the dict of
    that assertion's location (pass it to :class:`Env` as ``where``)."""
    where = {}
    init = walker.Walker.__init__

    def record(self, m, params, *args, **kwargs):
        init(self, m, params, *args, **kwargs)
        top = 2**WALKER_BITS - 1
        wraps = (
            (self.base > top - params.m_tile)
            | (self.group > top - params.out_vectors)
            | (self.chunk >= top)
        )
        m.d.comb += check(where, "walkers", ~wraps)

    monkeypatch.setattr(walker, "COUNT_BITS", WALKER_BITS)
    monkeypatch.setattr(walker.Walker, "__init__", record)
    return where


@pytest.fixture
def abstract_sic(monkeypatch):
    """The accelerator of :data:`P` with :class:`sic_contract.AbstractSIC`
    (which may stall for ever) in place of its SIC: any unit that keeps the
    SIC's contract, which :func:`test_sic_keeps_its_contract` proves the
    SIC does (with :data:`SIC_WINDOW`). Returns that unit (:class:`Env`'s
    ``sic``)."""
    return _put_abstract_sic(monkeypatch, P)


def _put_abstract_sic(monkeypatch, params) -> AbstractSIC:
    """Make the accelerator's SIC an :class:`sic_contract.AbstractSIC` of
    ``params``; returns it."""
    sic = AbstractSIC(params)
    monkeypatch.setattr(accelerator, "SIC", lambda _: sic)
    return sic


def ring_half(monkeypatch, side, params=P) -> SimpleNamespace:
    """The accelerator of ``params`` seen from one ``side`` (``"front"`` or
    ``"back"``) of its concentrate-out ring: the other side's engine at the
    ring abstract (:class:`ring_contract.AbstractDispatch`,
    :class:`ring_contract.AbstractWrite`), the SIC a
    :class:`sic_contract.AbstractSIC`. The ring's engines are made here (so
    :class:`Env` can watch their flags) and put in the accelerator's place.
    Returns :class:`Env`'s ``half``."""
    engines = {"feed": FeedEngine, "write": WriteEngine, "dispatch": DispatchEngine}
    abstract = {"front": {"dispatch": AbstractDispatch}, "back": {"write": AbstractWrite}}
    units = {name: cls(params) for name, cls in {**engines, **abstract[side]}.items()}
    for name, cls in engines.items():
        monkeypatch.setattr(accelerator, cls.__name__, lambda _, unit=units[name]: unit)
    return SimpleNamespace(side=side, sic=_put_abstract_sic(monkeypatch, params), **units)


class SICContract(Elaboratable):
    """The SIC of ``params`` with every input free in every cycle (vector,
    position, grid coordinates, flags, ``valid``; ``out.ready``), the grid
    the :class:`Env`'s, and ``sic_contract.contract`` asserted with
    ``window`` (for the pass ends and the capacity of ``contract_params``,
    which mutants change). :attr:`where` names the assertions."""

    def __init__(self, params=P, *, window=SIC_WINDOW, contract_params=None):
        self.params, self.window = params, window
        self.contract_params = params if contract_params is None else contract_params
        self.where = {}

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = SIC(self.params)
        inp, out = dut.inp, dut.out
        m.d.comb += [
            inp.valid.eq(AnySeq(1)),
            inp.payload.eq(AnySeq(len(inp.payload.as_value()))),
            out.ready.eq(AnySeq(1)),
            dut.width.eq(WIDTH),
            dut.frame_tokens.eq(FRAME),
        ]
        tests, _ = contract(m, self.contract_params, inp, out, self.window)
        m.d.comb += check(self.where, "early", tests["early"])  # one line each: SBY
        m.d.comb += check(self.where, "capacity", tests["capacity"])  # names a check
        m.d.comb += check(self.where, "stall", tests["stall"])  # by its line
        return m


class _Nest:
    """A stream's place in a loop nest: ``levels`` (name, count, most) from
    outer to inner, ``count`` a function of the indices, ``most`` its
    largest value; ``step`` moves to the next beat, ``done`` is set after
    the last."""

    def __init__(self, m, name, levels):
        self.idx = {lv: Signal(range(most), name=f"{name}_{lv}") for lv, _, most in levels}
        self.done = Signal(name=f"{name}_done")
        self.step = Signal(name=f"{name}_step")
        carry = self.step
        for lv, count, _ in reversed(levels):
            i, n = self.idx[lv], count(self.idx)
            with m.If(carry):
                m.d.sync += i.eq(Mux(i == n - 1, 0, i + 1))
            carry = carry & (i == n - 1)
        with m.If(carry):
            m.d.sync += self.done.eq(1)


class Env(Elaboratable):
    """The accelerator in the free, well-formed environment above, with the
    ``checks`` asserted: ``"deadlock"`` and ``"complete"`` (the first two
    bullets of the module docstring); ``bound``: ``busy`` low from that
    cycle on; ``"cover"``: a run that ends after :data:`PRESSURE` cycles
    of backpressure (a ready input with beats left not offered, or a valid
    ``out`` not taken). ``cooperative``: every stream offers whenever it has beats
    left, ``out`` is always ready. ``withhold``: a stream that never offers
    (and counts as cooperating). ``window`` and ``extra_out`` make the
    deadlock and the out-beat checks stricter, for mutants.
    ``sic``: the :class:`sic_contract.AbstractSIC` in the accelerator, whose
    own stalls ``"deadlock"`` then leaves to its contract (see the module
    docstring). ``half``: one half of the accelerator (:func:`ring_half`),
    with its side of the ring's contract, its streams only and the checks
    of that half (the module docstring; its SIC is ``sic``). :attr:`where`
    (``where``, if given) maps each assertion's name to its source line
    (:func:`formal.failed_checks`)."""

    def __init__(
        self,
        sizes,
        *,
        params=P,
        checks=(),
        cooperative=False,
        withhold=None,
        bound=None,
        window=WINDOW,
        extra_out=0,
        where=None,
        sic=None,
        half=None,
    ):
        self.params, self.dut = params, FocusAccelerator(params)
        self.half, self.sic = half, (sic if half is None else half.sic)
        self.sizes, self.checks, self.bound = sizes, checks, bound
        self.cooperative, self.withhold = cooperative, withhold
        self.window, self.extra_out = window, extra_out
        self.where = {} if where is None else where

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        mt, ns = self.params.m_tile, self.params.num_scatter

        size = {}
        for name, (lo, hi) in self.sizes.items():
            if lo == hi:
                size[name] = Const(lo, range(hi + 1))
            else:
                size[name] = AnyConst(range(hi + 1))
                m.d.comb += Assume((size[name] >= lo) & (size[name] <= hi))
        tokens, chunks, ntiles = size["tokens"], size["chunks"], size["ntiles"]
        n_m, n_k = -(-self.sizes["tokens"][1] // mt), self.sizes["chunks"][1]
        n_mt = (tokens + mt - 1) // mt  # M tiles of this run
        tile_tokens = Array(Mux(tokens > (i + 1) * mt, mt, tokens - i * mt) for i in range(n_m))
        uniq = Array(Array(AnyConst(range(mt + 1)) for _ in range(n_k)) for _ in range(n_m))
        for i, j in product(range(n_m), range(n_k)):
            m.d.comb += Assume(uniq[i][j] <= Mux(i < n_mt, tile_tokens[i], 0))

        start = Signal(init=1)
        m.d.sync += start.eq(0)
        m.d.comb += [
            dut.start.eq(start),
            dut.tokens.eq(tokens),
            dut.chunks.eq(chunks),
            dut.ntiles.eq(ntiles),
            dut.width.eq(WIDTH),
            dut.frame_tokens.eq(FRAME),
        ]

        # -- the streams, in the engines' order -------------------------------------
        vs = self.params.out_vectors
        groups = (ntiles + vs - 1) // vs
        n_n = self.sizes["ntiles"][1]
        n_g = -(-n_n // vs)
        outer = [("mt", lambda ix: n_mt, n_m), ("group", lambda ix: groups, n_g)]

        def vector_beats(ix):
            u = uniq[ix["mt"]][ix["k"]]
            return Mux(u == 0, 1, u)

        vec = _Nest(m, "vec", [*outer, ("k", lambda ix: chunks, n_k), ("b", vector_beats, mt)])
        pos = _Nest(
            m,
            "pos",
            [
                ("mt", lambda ix: n_mt, n_m),
                ("nt", lambda ix: ntiles, n_n),
                ("b", lambda ix: tile_tokens[ix["mt"]], mt),
            ],
        )
        done = {"vectors": vec.done, "positions": pos.done}
        steps = {"vectors": vec.step, "positions": pos.step}
        u = uniq[vec.idx["mt"]][vec.idx["k"]]
        t = pos.idx["mt"] * mt + pos.idx["b"]
        vp, pp = dut.vectors.payload, dut.positions.payload
        m.d.comb += [
            vp.empty.eq(u == 0),
            vp.last.eq((u == 0) | (vec.idx["b"] == u - 1)),
            vp.data.eq(AnySeq(len(vp.data.as_value()))),
            dut.weights.payload.eq(AnySeq(len(dut.weights.payload.as_value()))),
            dut.map.payload.eq(AnySeq(len(dut.map.payload.as_value()))),
            pp.pos.eq(t),
            pp.col.eq(t % WIDTH),
            pp.row.eq((t % FRAME) // WIDTH),
            pp.frame.eq(t // FRAME),
        ]
        # map and weights: flat counts
        map_beats = sum(Mux(i < n_mt, (tile_tokens[i] + ns - 1) // ns, 0) for i in range(n_m))
        full_chunks = sum(
            (i < n_mt) & (j < chunks) & (uniq[i][j] != 0)
            for i, j in product(range(n_m), range(n_k))
        )
        totals = {
            "map": map_beats * chunks * groups,
            "weights": full_chunks * ntiles * self.params.rows,
        }
        n_t = self.sizes["tokens"][1]
        most = {  # the totals' largest values: every counter is as narrow as it can be
            "map": sum(-(-min(mt, n_t - b) // ns) for b in range(0, n_t, mt)) * n_k * n_g,
            "weights": n_m * n_k * n_n * self.params.rows,
        }
        for name, total in totals.items():
            count = Signal(range(most[name] + 1), name=f"{name}_count")
            done[name], steps[name] = count == total, Signal(name=f"{name}_step")
            with m.If(steps[name]):
                m.d.sync += count.eq(count + 1)

        side = None if self.half is None else self.half.side
        served = STREAMS if side is None else HALF_STREAMS[side]
        offered, refused = [], []
        for name in STREAMS:
            port = getattr(dut, name)
            held = Signal(name=f"{name}_held")
            withheld = name == self.withhold or name not in served
            if withheld:
                want = 0
            else:
                want = 1 if self.cooperative else AnySeq(1)
            m.d.comb += [
                port.valid.eq(~done[name] & (want | held)),
                steps[name].eq(port.valid & port.ready),
            ]
            m.d.sync += held.eq(port.valid & ~port.ready)
            offered.append(port.valid | done[name] | withheld)
            refused.append(port.ready & ~port.valid & ~done[name])
        m.d.comb += dut.out.ready.eq(1 if self.cooperative else AnySeq(1))
        out_take = dut.out.valid & dut.out.ready

        # -- properties -------------------------------------------------------------
        expected = tokens * ntiles + self.extra_out
        n_out = Signal(range(n_t * n_n + self.extra_out + 2))
        with m.If(out_take):
            m.d.sync += n_out.eq(n_out + 1)
        started = Signal()
        m.d.sync += started.eq(1)
        consumed = sum(done[name] for name in served) == len(served)
        moved = 0  # a handshake between the halves
        if side is not None:
            half = self.half
            announce, freed = half.write.written | half.feed.empty, half.dispatch.freed
            total = n_mt * chunks * ntiles  # ring blocks of the run
            tests, flags = ring_contract.contract(
                m, self.params, start, announce, freed, total, most=n_m * n_k * n_n
            )
            mine, theirs = ("announce", "free") if side == "front" else ("free", "announce")
            m.d.comb += check(self.where, mine, tests[mine])
            m.d.comb += Assume(tests[theirs])
            moved = (announce != 0) | (freed != 0)
            all_in = flags["count"] == total  # every block announced
            head_in = flags["outstanding"].bit_select(flags["head"], 1)
            room = flags["outstanding"] != 2**self.params.ring_blocks - 1
        if "complete" in self.checks and side == "front":
            with m.If(all_in):
                m.d.comb += check(self.where, "beats left", consumed)
        elif "complete" in self.checks:
            with m.If(out_take):
                m.d.comb += check(self.where, "too many out beats", n_out < expected)
            with m.If(started & ~dut.busy):
                m.d.comb += [
                    check(self.where, "beats left", consumed),
                    check(self.where, "out beats missing", n_out == expected),
                ]
                if side == "back":
                    blocks_left = ~all_in | (flags["outstanding"] != 0)
                    m.d.comb += check(self.where, "blocks left", ~blocks_left)
        coop = dut.out.ready & (sum(offered) == len(offered))
        if "cover" in self.checks:
            pressed = Signal(range(PRESSURE + 1))
            refusing = (dut.out.valid & ~dut.out.ready) | (sum(refused) != 0)
            with m.If(dut.busy & refusing & (pressed != PRESSURE)):
                m.d.sync += pressed.eq(pressed + 1)
            m.d.comb += Cover(started & ~dut.busy & (pressed == PRESSURE))
        if "deadlock" in self.checks:
            handshake = out_take | (sum(steps.values()) != 0) | moved
            active, counted = dut.busy, 1
            if self.sic is not None:  # the SIC's input is a handshake; its stalls not counted
                handshake = handshake | (self.sic.inp.valid & self.sic.inp.ready)
                counted = ~self.sic.could
            if side == "front":  # blocks left to announce, one not outstanding
                active, counted = started & ~all_in, room
            elif side == "back":  # the head announced, or all blocks
                counted = counted & (head_in | all_in)
            stalled = active & coop & ~handshake
            stuck = Signal(range(self.window))  # counted cycles of the stalled stretch
            with m.If(~stalled):
                m.d.sync += stuck.eq(0)
            with m.Elif(counted):
                m.d.sync += stuck.eq(stuck + 1)
            last = stalled & counted & (stuck == self.window - 1)
            m.d.comb += check(self.where, "deadlock", ~last)
        if self.bound is not None:
            cycle = Signal(range(self.bound + 1))
            with m.If(cycle != self.bound):
                m.d.sync += cycle.eq(cycle + 1)
            with m.Else():
                m.d.comb += Assert(~dut.busy, "run not finished within the schedule")
        return m


@pytest.mark.parametrize("params", [P, P2], ids=["1lane", "2lanes"])
def test_no_deadlock_under_backpressure(free_fp, tmp_path, params):
    require(*TOOLS)
    env = Env(LARGEST, params=params, checks=("deadlock",))
    prove(env, depth=DEPTH, workdir=tmp_path, mode="bmc")


@pytest.mark.parametrize("params", [P, P2], ids=["1lane", "2lanes"])
def test_whole_runs_end_complete_without_deadlock(free_fp, narrow_walkers, tmp_path, params):
    """Every reachable state of :data:`WHOLE` runs, so runs of any length
    under any backpressure (IC3/PDR, unbounded)."""
    require(*TOOLS)
    env = Env(WHOLE, params=params, checks=("deadlock", "complete"), where=narrow_walkers)
    prove(env, depth=1, workdir=tmp_path, engine=PDR)


@pytest.mark.parametrize(
    "mutant, failing",
    [
        ({"cooperative": True, "withhold": "weights"}, {"deadlock"}),
        ({"window": 4}, {"deadlock"}),
        ({"extra_out": 1}, {"out beats missing"}),
    ],
    ids=["withheld-weights", "short-window", "one-more-out-beat"],
)
def test_whole_run_proof_can_fail(free_fp, narrow_walkers, tmp_path, mutant, failing):
    """The same PDR proof finds a withheld stream, a deadlock window
    shorter than a cooperative run's stalls, and a missing out beat."""
    require(*TOOLS)
    env = Env(WHOLE, checks=("deadlock", "complete"), where=narrow_walkers, **mutant)
    assert failed_checks(env, env.where, depth=1, workdir=tmp_path, engine=PDR) == failing


def test_too_narrow_walkers_are_flagged(free_fp, narrow_walkers, monkeypatch, tmp_path):
    """With 2-bit loop counters the range check fails."""
    require(*TOOLS)
    monkeypatch.setattr(walker, "COUNT_BITS", 2)
    monkeypatch.setitem(globals(), "WALKER_BITS", 2)
    env = Env(WHOLE, checks=("deadlock", "complete"), where=narrow_walkers)
    assert "walkers" in failed_checks(env, env.where, depth=1, workdir=tmp_path, engine=PDR)


@pytest.mark.parametrize("mode", ["bmc", "cover"])
def test_streams_consumed_when_busy_drops(free_fp, tmp_path, mode):
    """With backpressure only the smallest run ends within the depth (the
    cover shows one that does)."""
    require(*TOOLS)
    check = "complete" if mode == "bmc" else "cover"
    prove(Env(fixed(1, 1, 1), checks=(check,)), depth=DEPTH, workdir=tmp_path, mode=mode)


@pytest.mark.parametrize(
    "params, sizes",
    [(P, (1, 2, 2)), (P, (2, 2, 2)), (P2, (3, 1, 1))],
    ids=["1lane-1x2x2", "1lane-2x2x2", "2lanes-3x1x1"],
)
def test_cooperative_run_ends_within_schedule(free_fp, tmp_path, params, sizes):
    require(*TOOLS)
    bound = schedule_bound(fixed(*sizes), params) + 1
    env = Env(fixed(*sizes), params=params, checks=("complete",), cooperative=True, bound=bound)
    prove(env, depth=bound + 2, workdir=tmp_path, mode="bmc")


def test_schedule_bound_is_tight(free_fp, tmp_path):
    """Some image keeps ``busy`` high in the schedule's last cycle."""
    require(*TOOLS)
    bound = schedule_bound(fixed(1, 2, 2))
    env = Env(fixed(1, 2, 2), cooperative=True, bound=bound)
    with pytest.raises(AssertionError, match="BMC failed"):
        prove(env, depth=bound + 2, workdir=tmp_path, mode="bmc")


@pytest.mark.parametrize("stream", ["weights", "positions"])
def test_withheld_stream_is_a_deadlock(free_fp, tmp_path, stream):
    require(*TOOLS)
    env = Env(LARGEST, checks=("deadlock",), cooperative=True, withhold=stream)
    with pytest.raises(AssertionError, match="BMC failed"):  # the one Assert: "deadlock"
        prove(env, depth=DEPTH, workdir=tmp_path, mode="bmc")


@pytest.mark.slow
@pytest.mark.parametrize("params", [P, P2], ids=["1lane", "2lanes"])
def test_no_deadlock_deeper(free_fp, tmp_path, params):
    require(*TOOLS)
    env = Env(LARGEST, params=params, checks=("deadlock",))
    prove(env, depth=DEPTH_SLOW, workdir=tmp_path, mode="bmc", timeout=3600)


def _size_id(sizes) -> str:
    return "x".join(map(str, sizes))


@pytest.mark.slow
@pytest.mark.parametrize("sizes", [(2, 1, 1), (1, 2, 1), (1, 1, 2)], ids=_size_id)
def test_larger_whole_runs_end_complete_without_deadlock(free_fp, narrow_walkers, tmp_path, sizes):
    """Whole runs one step larger than :data:`WHOLE` in each size."""
    require(*TOOLS)
    env = Env(fixed(*sizes), checks=("deadlock", "complete"), where=narrow_walkers)
    prove(env, depth=1, workdir=tmp_path, engine=PDR, timeout=1800)


def test_sic_keeps_its_contract(free_fp, tmp_path):
    """Every reachable state of the SIC under any input (IC3/PDR, unbounded)."""
    require(*TOOLS)
    prove(SICContract(), depth=1, workdir=tmp_path, engine=PDR)


@pytest.mark.parametrize(
    "mutant, failing",
    [
        ({"window": SIC_WINDOW - 1}, {"stall"}),
        ({"contract_params": P.replace(m_tile=P.m_tile + 1)}, {"early"}),
    ],
    ids=["short-window", "larger-m-tile"],
)
def test_sic_contract_can_fail(free_fp, tmp_path, mutant, failing):
    """The window is the SIC's longest stall; a contract whose passes end
    later than the SIC's sees beats sent early."""
    require(*TOOLS)
    harness = SICContract(**mutant)
    assert failed_checks(harness, harness.where, depth=1, workdir=tmp_path, engine=PDR) == failing


def test_sic_capacity_is_tight(free_fp, monkeypatch, tmp_path):
    """The SIC does hold two whole passes: one beat less fails."""
    require(*TOOLS)
    monkeypatch.setattr(sic_contract, "capacity", lambda params: 2 * params.m_tile - 1)
    harness = SICContract()
    failed = failed_checks(harness, harness.where, depth=1, workdir=tmp_path, engine=PDR)
    assert failed == {"capacity"}


@pytest.mark.parametrize(
    "sizes",
    [
        WHOLE,
        TWO_TILES,
        fixed(1, 2, 2),
        pytest.param(fixed(3, 2, 1), marks=pytest.mark.slow),
    ],
    ids=["whole", "two-tiles", "1x2x2", "3x2x1"],
)
def test_whole_runs_with_the_sic_contract(free_fp, narrow_walkers, abstract_sic, tmp_path, sizes):
    """Whole runs with any SIC that keeps its contract (IC3/PDR, unbounded)."""
    require(*TOOLS)
    checks = ("deadlock", "complete")
    env = Env(sizes, checks=checks, window=ENGINES_WINDOW, where=narrow_walkers, sic=abstract_sic)
    prove(env, depth=1, workdir=tmp_path, engine=PDR, timeout=3600)


@pytest.mark.parametrize(
    "sizes, mutant",
    [
        (WHOLE, {"cooperative": True, "withhold": "weights"}),
        (fixed(1, 2, 2), {"window": ENGINES_WINDOW - 1}),
    ],
    ids=["withheld-weights", "short-window"],
)
def test_whole_run_proof_with_the_sic_contract_can_fail(
    free_fp, narrow_walkers, abstract_sic, tmp_path, sizes, mutant
):
    """The same proof flags withheld weights as a deadlock, and a window
    one cycle shorter too (1 token, 2 K chunks, 2 N tiles need all of it)."""
    require(*TOOLS)
    checks = ("deadlock", "complete")
    mutant = {"window": ENGINES_WINDOW, **mutant}
    env = Env(sizes, checks=checks, where=narrow_walkers, sic=abstract_sic, **mutant)
    assert failed_checks(env, env.where, depth=1, workdir=tmp_path, engine=PDR) == {"deadlock"}


@pytest.mark.parametrize(
    "params, side, sizes",
    [
        (P, "back", LARGEST),
        (P2, "back", LARGEST),
        (P, "front", fixed(1, 2, 2)),
        (P2, "front", fixed(1, 2, 2)),
        (P, "front", fixed(3, 1, 2)),
        (P2, "front", fixed(3, 1, 2)),
        pytest.param(P, "front", LARGEST, marks=pytest.mark.slow),
        pytest.param(P2, "front", fixed(3, 2, 1), marks=pytest.mark.slow),
    ],
    ids=[
        "1lane-back-largest",
        "2lanes-back-largest",
        "1lane-front-1x2x2",
        "2lanes-front-1x2x2",
        "1lane-front-3x1x2",
        "2lanes-front-3x1x2",
        "1lane-front-largest",
        "2lanes-front-3x2x1",
    ],
)
def test_whole_runs_by_halves(free_fp, narrow_walkers, monkeypatch, tmp_path, params, side, sizes):
    """Each half of the accelerator keeps its side of the ring's contract,
    ends its part of the run complete and does not deadlock, assuming only
    the other half's side (IC3/PDR, unbounded)."""
    require(*TOOLS)
    half = ring_half(monkeypatch, side, params)
    checks = ("deadlock", "complete")
    env = Env(
        sizes, params=params, checks=checks, window=HALF_WINDOW, where=narrow_walkers, half=half
    )
    prove(env, depth=1, workdir=tmp_path, engine=PDR, timeout=3600)


def _contract_with(monkeypatch, *, total=0, freed=None):
    """Make :class:`Env` follow the ring with ``total`` more blocks in the
    run, or with ``freed`` (a function of the flag) for the freed flag."""
    follow = ring_contract.contract

    def mutant(m, params, start, announce, flag, blocks, most):
        flag = flag if freed is None else freed(flag)
        return follow(m, params, start, announce, flag, blocks + total, most)

    monkeypatch.setattr(ring_contract, "contract", mutant)


@pytest.mark.parametrize(
    "side, sizes, mutant, ring, failing",
    [
        ("back", LARGEST, {"window": HALF_WINDOW - 1}, {}, {"deadlock"}),
        ("front", WHOLE, {"cooperative": True, "withhold": "weights"}, {}, {"deadlock"}),
        ("back", WHOLE, {"cooperative": True, "withhold": "positions"}, {}, {"deadlock"}),
        ("front", fixed(1, 2, 2), {}, {"total": -1}, {"announce"}),
        ("back", WHOLE, {}, {"freed": lambda flag: Cat(flag[1:], flag[0])}, {"free"}),
    ],
    ids=["short-window", "withheld-weights", "withheld-positions", "one-block-less", "freed-next"],
)
def test_whole_run_proof_by_halves_can_fail(
    free_fp, narrow_walkers, monkeypatch, tmp_path, side, sizes, mutant, ring, failing
):
    """The same proofs flag a window one cycle shorter, a withheld stream
    on either side, a front that announces a block more than the run has
    and a back that frees the wrong block (``ring``: see
    :func:`_contract_with`)."""
    require(*TOOLS)
    half = ring_half(monkeypatch, side)
    _contract_with(monkeypatch, **ring)
    mutant = {"window": HALF_WINDOW, **mutant}
    env = Env(sizes, checks=("deadlock", "complete"), where=narrow_walkers, half=half, **mutant)
    assert failed_checks(env, env.where, depth=1, workdir=tmp_path, engine=PDR) == failing


@pytest.mark.slow
def test_cooperative_largest_run_ends_within_schedule(free_fp, tmp_path):
    require(*TOOLS)
    bound = schedule_bound(LARGEST) + 1
    env = Env(LARGEST, checks=("complete",), cooperative=True, bound=bound)
    prove(env, depth=bound + 2, workdir=tmp_path, mode="bmc", timeout=3600)
