"""Closed-form timing of the generated systolic array.

This is the single statement of how many cycles the RTL
(:class:`focus_hw.SystolicArray`) takes; the performance model (``sim``)
imports it and the RTL tests assert that :func:`focus_hw.simulate_gemm`
measures exactly this. All counts are clock cycles without backpressure.

Derivation (``R`` = rows, ``C`` = cols, ``P`` = ``mac_pipeline``,
``L = P + 1`` = cycles a partial sum spends in one PE: ``P`` MAC stages plus
the PE's partial-sum register). Let an activation row be accepted in cycle
``t``:

* lane 0 drives PE(0, 0) in cycle ``t`` (no input register); lane ``k`` is
  skewed by ``k*L`` registers, so it meets the partial sum coming down from
  PE(k-1, 0) in cycle ``t + k*L``;
* activations move one PE right per cycle, so PE(k, c) works on the row in
  cycle ``t + k*L + c``, and the bottom PE of column ``c`` holds its result
  from cycle ``t + R*L + c``;
* column ``c`` is de-skewed by ``C-1-c`` registers, so the whole output row is
  valid in cycle ``t + R*L + C - 1``: :func:`array_latency` is ``R*L + C - 1``.

Rows are accepted one per cycle, so ``m`` rows occupy cycles
``t .. t+m-1`` and the last output row is valid in cycle
``t + m - 1 + array_latency``: counting both ends, :func:`tile_cycles` is
``m + array_latency``.

Weight reload (double buffering): the swap that activates a tile travels
through the array with that tile's first row and reaches the last PE of weight
row ``j`` in cycle ``t + j*L + C - 1``; the shadow weights of row ``j`` may be
rewritten from the next cycle on. Weight rows load in order, one per cycle, so
row ``j`` loads in cycle ``t + C + j*L`` (the wave, not the load rate, is the
bound since ``L >= 1``) and the next tile can be swapped in from cycle
``t + (R-1)*L + C + 1``: :func:`reload_cycles`. Consecutive tiles therefore
start ``max(m, reload_cycles)`` cycles apart (:func:`gemm_cycles`).
"""

import functools
import math
import numbers

import numpy as np

from .params import FocusParams

__all__ = [
    "array_latency",
    "tile_cycles",
    "reload_cycles",
    "gemm_cycles",
    "sic_dot_latency",
    "sic_argmax_cycles",
    "sic_mean_lanes",
    "sic_mean_cycles",
    "sic_mean_latency",
    "sic_update_lanes",
    "sic_update_cycles",
    "sic_write_cycle",
    "sic_vector_cycles",
    "sic_output_start",
    "sic_output_cycles",
    "sic_cycles",
    "sic_run_cycles",
    "sic_busy_cycles",
    "sec_cycles",
    "focus_schedule",
    "focus_schedule_arrays",
    "focus_schedule_runs",
    "focus_schedule_tiles",
]


def _count(fn: str, name: str, value) -> int:
    """``value`` as an int >= 1 (numpy integers accepted), else ValueError."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{fn}: {name}={value!r} must be an integer >= 1")
    return int(value)


def array_latency(params: FocusParams) -> int:
    """Cycles from the cycle an activation row is accepted to the cycle its
    output row is valid: ``rows * (mac_pipeline + 1) + cols - 1``."""
    return params.rows * (params.mac_pipeline + 1) + params.cols - 1


def tile_cycles(m: int, params: FocusParams) -> int:
    """Cycles for ``m`` activation rows through one weight tile, from the cycle
    the first row is accepted to the cycle the last output row is valid, both
    counted: ``m + array_latency(params)``."""
    return _count("tile_cycles", "m", m) + array_latency(params)


def reload_cycles(params: FocusParams) -> int:
    """Fewest cycles between the first rows of two consecutive weight tiles
    (the swap wave must pass each weight row before its shadow is rewritten):
    ``(rows - 1) * (mac_pipeline + 1) + cols + 1``."""
    return (params.rows - 1) * (params.mac_pipeline + 1) + params.cols + 1


def gemm_cycles(m: int, k: int, n: int, params: FocusParams) -> int:
    """Cycles of an (m x k) @ (k x n) GEMM tiled over
    ``ceil(k/rows) * ceil(n/cols)`` weight tiles streamed back to back, each
    with the same ``m`` rows, the next tile's weights loading while the
    current one streams (the first tile's weights are loaded beforehand; the
    K-tile partial sums are added outside the array). Counted like
    :func:`tile_cycles`, from the first row of the first tile accepted to the
    last output row valid: ``(tiles - 1) * max(m, reload_cycles) +
    tile_cycles(m)``."""
    m, k, n = (_count("gemm_cycles", name, v) for name, v in (("m", m), ("k", k), ("n", n)))
    tiles = math.ceil(k / params.rows) * math.ceil(n / params.cols)
    return (tiles - 1) * max(m, reload_cycles(params)) + tile_cycles(m, params)


# -- similarity concentrator (SIC) ------------------------------------------------
#
# The SIC (:class:`focus_hw.sic.SIC`) is statically scheduled: every step of a
# vector happens a fixed number of cycles after the vector is accepted,
# whatever the data, so a pass of ``n`` vectors takes a closed-form count.
# ``L = sic_width`` lanes, ``S = vector_size / L`` steps, ``P = sic_pipeline``,
# ``T = S*(P+1)`` (one dot product through the lanes), ``K`` candidate
# offsets (``len(block_offsets)``). With the vector accepted in cycle 0:
#
# * cycle 1: its squared magnitude enters the dot-product unit;
# * cycle ``(k+1)*T``: the table read of candidate ``k`` (``k = 0..K-1``);
#   cycle ``(k+1)*T + 1``: its dot product starts (back to back, one per T);
# * cycle ``1 + D`` (``D`` = :func:`sic_dot_latency`): the squared magnitude;
#   cycle ``(k+1)*T + 1 + D``: candidate ``k``'s dot product, taken by the
#   arg-max unit in that cycle (one candidate per ``T >= P+1`` cycles);
# * cycle ``W`` (:func:`sic_write_cycle`), :func:`sic_argmax_cycles` after
#   the last candidate's: the decision; the table entry and the map record
#   are written and the group-sum update starts (:func:`sic_update_cycles`).
#
# The next vector may be accepted from cycle :func:`sic_vector_cycles`: the
# dot-product unit is free from ``(K+1)*T``, its first table read (cycle
# ``T`` after it) must come after this vector's write in ``W``, and this
# vector's group-sum update must be done before the next one's starts.
#
# Passes overlap. Pass ``i`` (``n_i`` vectors, bank ``i mod 2`` of the map,
# sums and counts) has its first vector accepted in ``a_i`` and the rest one
# per ``V``. Its output phase may start ``C(n_i)`` =
# :func:`sic_output_start` after ``a_i`` (its last group-sum update is
# done) and starts in ``s_i = max(a_i + C(n_i), f_{i-1})``, the cycle the
# previous pass's last beat ``f_{i-1}`` is sent; its last beat is sent in
# ``f_i = s_i + O(n_i)`` (:func:`sic_output_cycles`). The next pass's first
# vector is taken from ``a_{i+1} = max(a_i + n_i*V, f_{i-1} + 1)``: one
# period after this pass's last vector, and once its bank is free (the pass
# before this one has sent its last beat). So at most one pass waits for
# the output side while another is sent.


def sic_dot_latency(params: FocusParams) -> int:
    """Cycles from a pair accepted by the dot-product unit to its result
    valid: ``S*(P+1)`` lane steps, one for the lane sums to settle, and
    ``log2(sic_width)*P`` down the adder tree. The unit accepts the next pair
    ``S*(P+1)`` cycles after the previous one."""
    p = params.sic_pipeline
    steps = params.sic_steps
    return steps * (p + 1) + 1 + (params.sic_width.bit_length() - 1) * p


def sic_argmax_cycles(params: FocusParams) -> int:
    """Cycles from the last candidate accepted by the arg-max unit to its
    decision. With one shared multiplier (``S >= 3`` or ``K <= 1``,
    :func:`focus_hw.sic.argmax.shares_multiplier`): square, two cross
    products with the compare, ``T2 * n2_x``, the threshold product, ``P+1``
    each: ``5*P + 5``. With three (otherwise): the square, the cross products
    side by side with the compare, then the threshold product: ``3*P + 3``.
    With ``P > 0`` the decision is registered: one cycle more. Either keeps
    up with one candidate per ``S*(P+1)`` cycles."""
    from .sic.argmax import shares_multiplier

    p = params.sic_pipeline
    return (5 if shares_multiplier(params) else 3) * (p + 1) + (p > 0)


@functools.cache
def sic_mean_lanes(params: FocusParams) -> int:
    """fp32 multipliers (and narrowing units) of the mean path: the fewest,
    a power of two at most ``sic_width``, whose mean period
    ``vector_size / Q`` is at most :func:`sic_vector_cycles`, so a pass's
    output phase is never slower than the next pass's input phase."""
    lanes = 1
    while lanes < params.sic_width and params.vector_size // lanes > sic_vector_cycles(params):
        lanes *= 2
    return lanes


def sic_mean_cycles(params: FocusParams) -> int:
    """``E``: cycles per mean, ``vector_size / Q`` (``Q`` =
    :func:`sic_mean_lanes`) element groups of ``Q`` elements, one a cycle."""
    return params.vector_size // sic_mean_lanes(params)


def sic_mean_latency(params: FocusParams) -> int:
    """Cycles from a mean query accepted by the average-update unit (its
    mean pipeline free) to the mean valid: count read (1), reciprocal read
    with the first element group's sum word (1), ``E`` element groups
    (:func:`sic_mean_cycles`), one per cycle, ``P`` multiplier and ``P``
    narrowing stages, the last group in: ``E + 2P + 2``. Queries are taken
    one per ``E`` cycles."""
    return sic_mean_cycles(params) + 2 * params.sic_pipeline + 2


def _sic_datapath_period(params: FocusParams) -> int:
    """Fewest cycles between two vectors the dot products and the table
    allow: ``max((K+1)*T, W + 1 - T)``, or ``W`` without candidates."""
    k = len(params.block_offsets)
    t = params.sic_steps * (params.sic_pipeline + 1)
    w = sic_write_cycle(params)
    return w if k == 0 else max((k + 1) * t, w + 1 - t)


def _update_cycles(lanes: int, params: FocusParams) -> int:
    return params.vector_size // lanes + params.sic_pipeline + 2


def sic_update_lanes(params: FocusParams) -> int:
    """fp32 adders of the group-sum update: the fewest (a power of two, at
    most ``sic_width``) whose update (:func:`sic_update_cycles`) fits between
    two vectors of the datapath (``max((K+1)*T, W + 1 - T)``, or ``W``
    without candidates); ``sic_width`` if none does."""
    period = _sic_datapath_period(params)
    lanes = 1
    while lanes < params.sic_width and _update_cycles(lanes, params) > period:
        lanes *= 2
    return lanes


def sic_update_cycles(params: FocusParams) -> int:
    """Cycles the average-update unit is busy with one update: ``vector_size
    / U`` element groups (``U`` = :func:`sic_update_lanes`) read one per
    cycle from the cycle after the accept, each added (``P`` stages) and
    written back: ``vector_size / U + P + 2``, after which it takes the next
    update or a mean query."""
    return _update_cycles(sic_update_lanes(params), params)


def sic_write_cycle(params: FocusParams) -> int:
    """Cycle ``W`` after a vector's accept in which it is decided and
    written: ``1 + K*T + D + A`` (``A`` = :func:`sic_argmax_cycles`);
    without candidates (a 1x1x1 block) ``D + 2``, the cycle after its
    squared magnitude."""
    k = len(params.block_offsets)
    d = sic_dot_latency(params)
    if k == 0:
        return d + 2
    t = params.sic_steps * (params.sic_pipeline + 1)
    return 1 + k * t + d + sic_argmax_cycles(params)


@functools.cache
def sic_vector_cycles(params: FocusParams) -> int:
    """Cycles between two vectors accepted by the SIC within a pass: the
    dot-product unit's work ``(K+1)*T``, unless the next vector's first table
    read (``T`` after its accept) would come before this vector's write
    (``W + 1 - T``), or the group-sum update (:func:`sic_update_cycles`) is
    longer: ``max((K+1)*T, W + 1 - T, sic_update_cycles)``. Without
    candidates: ``max(W, sic_update_cycles)``."""
    return max(_sic_datapath_period(params), sic_update_cycles(params))


def sic_output_start(n: int, params: FocusParams) -> int:
    """``C(n)``: cycles from a pass's first vector accepted to the cycle its
    output phase may start (without an earlier pass still sending). The last
    vector (accepted in ``(n-1)*V``, ``V`` = :func:`sic_vector_cycles`) is
    written in ``(n-1)*V + W``; its group-sum update (``U_c`` =
    :func:`sic_update_cycles`) writes its last sum in ``(n-1)*V + W + U_c -
    1``. The output phase starts two cycles before its first mean query can
    read that sum (the map record is read the cycle before the query):
    ``(n-1)*V + W + U_c - 2``."""
    n = _count("sic_output_start", "n", n)
    return (
        (n - 1) * sic_vector_cycles(params)
        + sic_write_cycle(params)
        + sic_update_cycles(params)
        - 2
    )


def sic_output_cycles(n: int, params: FocusParams) -> int:
    """``O(n)``: cycles from a pass's output phase start ``s`` to its last
    beat sent, without backpressure: the first map read in ``s + 1``, the
    first mean query taken in ``s + 2``, the others one per ``E`` =
    :func:`sic_mean_cycles`, the last mean valid (and sent)
    :func:`sic_mean_latency` after the last query: ``n*E + 2P + 4``."""
    n = _count("sic_output_cycles", "n", n)
    return n * sic_mean_cycles(params) + 2 * params.sic_pipeline + 4


@functools.cache
def sic_cycles(n: int, params: FocusParams) -> int:
    """Cycles of one SIC pass over ``n`` vectors (one M tile's slot) on its
    own, from the first vector accepted to the last concentrated vector
    sent, both counted, without backpressure: ``C(n) + O(n) + 1``
    (:func:`sic_output_start`, :func:`sic_output_cycles`), that is
    ``(n-1)*V + W + U_c + n*E + 2P + 3``."""
    return sic_output_start(n, params) + sic_output_cycles(n, params) + 1


def sic_run_cycles(ns, params: FocusParams) -> int:
    """Cycles of passes of ``ns`` vectors each, every vector offered as soon
    as the SIC can take it, from the first vector accepted to the last
    output sent, both counted, without backpressure: the overlapped
    recurrence of the comment above (0 for no pass)."""
    v = sic_vector_cycles(params)
    start, last, before = 0, None, None  # a_i; f_{i-1}; f_{i-2}
    for n in ns:
        if before is not None:
            start = max(start, before + 1)
        begin = start + sic_output_start(n, params)
        if last is not None:
            begin = max(begin, last)
        before, last = last, begin + sic_output_cycles(n, params)
        start += n * v
    return 0 if last is None else last + 1


def sic_busy_cycles(n: int, params: FocusParams) -> int:
    """What the accelerator's ``sic_cycles`` counter adds for a pass of
    ``n`` vectors fed without gaps and sent without backpressure: the cycles
    from its first vector accepted to its last, both counted, ``(n-1)*V +
    1``, plus the cycles its output phase is active, ``s+1 .. f``:
    ``O(n)`` (:func:`sic_output_cycles`)."""
    n = _count("sic_busy_cycles", "n", n)
    return (n - 1) * sic_vector_cycles(params) + 1 + sic_output_cycles(n, params)


def sec_cycles(rows: int, n: int, params: FocusParams) -> int:
    """Cycles of one SEC run (:class:`focus_hw.sec.SEC`) over ``rows``
    attention rows (heads x text queries) of ``n`` visual tokens, from the
    first element accepted to ``done``, both counted, without backpressure;
    any ``k``. With ``P = ceil(operand_bits / d)`` radix passes of
    ``d = min(8, operand_bits)`` bits (:data:`focus_hw.sec.topk.DIGIT_BITS`):

    * analyzer: one element per cycle, ``done`` one cycle after the last:
      ``rows * n``, then the done cycle (which starts the select);
    * radix select: per pass ``n`` key reads, 2 pipeline cycles, ``2**d``
      bin reads and 1 for the last bin, then its done cycle (which starts
      the encoder): ``P * (n + 2**d + 3) + 1``;
    * offset encoder: ``n`` key reads, 1 for the last, and its done cycle:
      ``n + 2``.

    Total ``rows*n + P*(n + 2**d + 3) + n + 4`` (fp16/bf16: ``rows*n + 3n +
    522``)."""
    from .sec.topk import DIGIT_BITS

    rows, n = _count("sec_cycles", "rows", rows), _count("sec_cycles", "n", n)
    digit = min(DIGIT_BITS, params.operand_bits)
    passes = math.ceil(params.operand_bits / digit)
    return rows * n + passes * (n + 2**digit + 3) + n + 4


def drain_stages(params: FocusParams) -> int:
    """Register stages of the drain's narrowing (fp32 -> the operand format,
    :class:`focus_hw.engines.drain.DrainEngine`): ``scatter_pipeline``, or 0
    with ``acc_format="operand"`` (the sums are in the operand format, there
    is nothing to narrow)."""
    return 0 if params.acc is params.format else params.scatter_pipeline


# -- the integrated accelerator ------------------------------------------------
#
# :class:`focus_hw.accelerator.FocusAccelerator` runs five engines that hand
# buffer halves and ring blocks on (load -> feed -> array -> write ->
# dispatch -> scatter -> drain -> SIC). Cycle 0 is the cycle ``start`` is
# taken; every memory stream is valid and ``out`` ready from cycle 1. Steps,
# in the order the hardware takes them: per N group (``out_vectors``
# sub-tiles, fewer in the last) its K chunks ``g`` (``u`` unique vectors,
# ``b = max(u, 1)`` vector beats), per chunk its sub-tiles; each (chunk,
# sub-tile) is a *block* ``k``, the ``k mod ring_blocks``-th of the ring.
# With ``R`` = rows, ``V`` = :func:`sic_vector_cycles`, ``D`` = ring_blocks:
#
# * load (per chunk): beats in ``L_g .. L_g+b-1``, ``L_g = max(L_{g-1}+b_{g-1},
#   Fl_{g-2}+1)`` (the input half is free once the feeder issued the last
#   row of its last sub-tile, ``Fl``);
# * feed (per block): claims it in ``Fs_k = max(ready, Fl_{k-1}+1,
#   Se_{k-D}+1)``: the chunk loaded (``L_g+b``; later sub-tiles: at once),
#   the feeder idle, the ring block freed by the scatter (``Se``). An empty
#   chunk ends there (``Fl_k = Fs_k``, partial sums "written" at
#   ``Fs_k+1``). Otherwise row 0 is read in ``I_k = max(Fs_k+1, a)`` (``a``:
#   the previous row's accept) and the array takes it, swapping weights, in
#   ``A_k = max(I_k+1, W_k)``; rows follow one per cycle. ``W_k = A_prev +
#   reload_cycles`` (the first tile: ``R+1``). ``Fl_k = I_k`` (one row) or
#   ``A_k+u-2``; the last partial sum is written in ``A_k+u-1+array_latency``;
# * scatter (per block, ``P`` = scatter_pipeline): ``ceil(m/num_scatter)``
#   map beats. Beat 0 is taken in ``S_k = max(Ae_{k-1}, written+1, [chunk
#   0:] Dl'+1)`` (``Ae``: the cycle the scatter accepts a block's last beat;
#   ``Dl'``: the last drain read of the group before last) and accepted in
#   ``X_k = max(S_k+1, [later chunks:] X_{k'}+P+1)``, ``k'`` the block of
#   the previous chunk and the same sub-tile: the same rows, each accepted
#   again once its sum is written (``P+1`` cycles after its accept; the
#   scatter holds the lanes until then, which can bind only when ``P >=
#   sub-tiles * beats``; chunk 0's rows were drained since their last
#   update). Both blocks' beats are accepted one
#   a cycle from ``X``, so this one bound serves every beat: beat ``j >= 1``
#   is taken in ``X_k+j-1`` (when the one before is accepted) and accepted
#   in ``X_k+j``. The last beat is taken in ``Se_k`` (``X_k+beats-2``, or
#   ``S_k`` for one beat), which frees the ring block, and accepted in ``Ae_k
#   = X_k+beats-1``; the group's last sum is written in ``Ae+1+P`` of its
#   last block, and its output rows are drainable from ``Ae+2+P``. (With
#   ``P = 0`` no lane waits: ``Ae = Se+1``.)
# * drain (per sub-tile ``i``, one SIC pass of ``m`` rows; ``E`` =
#   :func:`drain_stages`, the narrowing's register stages): starts in ``Ds_i =
#   max(Ae+2+P, Dl_{i-1}+1)`` and reads from ``Ds_i+1`` on. The output buffer's
#   data register and the ``E`` stages behind it are one chain that moves as a
#   whole in the *go* cycles, those in which its last stage is empty or the SIC
#   takes that stage's row. Number the go cycles ``g_1 < g_2 < ...`` and call
#   ``[g_{n-1}, g_n)`` slot ``n``: a row read in it (one at most: a full data
#   register waits for a go) is in the last stage from ``g_{n+E-1}+1`` and
#   leaves in ``g_{n+E}``; an empty slot leaves at once, ``g_{n+E} =
#   g_{n+E-1}+1``. During a pass the drain reads in every go cycle, so its rows
#   fill consecutive slots and each reaches the last stage the cycle after the
#   one before left: the SIC takes row ``j`` in ``s_i+j*V``. Let ``G_y`` (``y >=
#   0``) be the go cycle of slot ``L+y``, ``L`` the last slot of pass ``i-1``,
#   as if nothing followed: for ``y <= E`` the SIC's take of that pass's row
#   ``m_{i-1}-1-E+y`` (for a shorter pass, the slot's go cycle as it was before
#   that pass), then one a cycle, ``G_y = G_E+y-E``. Pass ``i``'s row 0 goes
#   into slot ``L+k``, the first (``k >= 1``) with ``G_k >= Ds_i+2`` (reading
#   must begin before the slot's go; with ``E = 0`` this says reading in
#   ``g_{n-1}``), read in ``max(G_{k-1}, Ds_i+1)``; row ``j`` (``1 <= j <= E``)
#   is read in ``G_{k+j-1}``, row ``j > E`` when the SIC takes row ``j-E-1``. So
#   the SIC takes row 0 in ``s_i = max(G_{k+E-1}+1, s_{i-1}+m_{i-1}*V,
#   f_{i-2}+1)`` (the row there, the input period, and the pass's bank free: the
#   pass before the last one has sent its last beat ``f_{i-2}``), row ``j`` in
#   ``s_i+j*V``; the drain's last read ``Dl_i`` is in ``s_i+(m-2-E)*V`` (``m >=
#   E+2``), ``G_{k+m-2}`` (``2 <= m <= E+1``) or ``max(G_{k-1}, Ds_i+1)`` (``m =
#   1``). Pass ``i``'s own ``G_y`` are ``s_i+(m-1-E+y)*V`` where that row
#   exists, else ``G_{k+m-1+y}``; the schedule keeps ``G_0 .. G_E``. After a gap
#   (the chain empty, as before the run's first pass) this is ``s_i =
#   max(Ds_i+2+E, ...)``, row ``j <= E`` read in ``Ds_i+1+j``, and with ``E =
#   0`` ``Dl_i = s_i+(m-2)*V``; a pass that follows closely can find the
#   previous pass's rows still in the chain (its rows wait behind them, and
#   bubbles between the passes move with the chain), and a one-row pass's row is
#   read only once the previous pass's last row has moved on (``G_{k-1}``);
# * SIC output (per pass): starts in ``o_i = max(s_i+C(m_i), f_{i-1})``
#   (:func:`sic_output_start`), its last beat in ``f_i = o_i+O(m_i)``
#   (:func:`sic_output_cycles`).
#
# A bypass run (``bypass`` high) hands the drain's rows to ``out`` instead:
# ``out`` takes a row as soon as it leaves the last stage, so every cycle is
# a go cycle and the read port takes an address a cycle: row ``j`` is read
# in ``Ds_i+1+j``, the output buffer gives it in ``Ds_i+2+j`` and ``out``
# takes it ``E`` cycles later, in ``Ds_i+2+E+j``: ``Dl_i = Ds_i+m`` and the
# sub-tile's last beat is ``f_i = Ds_i+m+1+E``. The SIC and ``positions``
# take no part.
#
# The run ends with the last pass's last output: ``f_last + 1`` cycles,
# cycle 0 included. The feeder stalls (a loaded chunk waits for a free ring
# block) ``max(0, Se_{k-D}+1 - max(ready, Fl_{k-1}+1))`` cycles per block.


def focus_schedule(
    m_tiles, n_tiles: int, params: FocusParams, *, bypass: bool = False, jump: bool = True
) -> dict:
    """Cycles (``cycles``) and feeder stall (``stall_cycles``) of a
    :class:`~focus_hw.FocusAccelerator` run without backpressure, and the
    cycles each M tile adds to the run's end (``tile_cycles``). ``m_tiles``
    lists the M tiles as ``(m, unique)``: the tile's tokens and its K chunks'
    unique-vector counts; each runs ``n_tiles`` output sub-tiles, in groups
    of ``out_vectors``; ``bypass``: a run that bypasses the output SIC (the
    derivation is the comment above).

    The schedule is a max-plus recurrence: shifting every ready time by ``d``
    shifts the next group's by ``d``. So once a full N group leaves every
    ready time exactly ``d`` later than the previous group did, each
    further full group adds ``d`` cycles and the same stall, and they are
    added in one step: exact, and fast for GEMMs with hundreds of N tiles.
    A last group of fewer sub-tiles follows on its own. ``jump=False``
    steps through every group (the reference the shortcut is tested
    against). The recurrence runs compiled (numba, on first use)."""
    tiles = [
        (_count("focus_schedule", "m", m), [int(u) for u in uniques]) for m, uniques in m_tiles
    ]
    width = max((len(u) for _, u in tiles), default=0)
    unique = np.zeros((len(tiles), width), np.int64)
    for t, (_, u) in enumerate(tiles):
        unique[t, : len(u)] = u
    lengths = np.array([len(u) for _, u in tiles], np.int64)
    m = np.array([m for m, _ in tiles], np.int64)
    return _run_schedule(m, unique, lengths, n_tiles, params, bypass, jump)


def focus_schedule_arrays(
    m, unique, n_tiles: int, params: FocusParams, *, bypass: bool = False
) -> dict:
    """:func:`focus_schedule` of M tiles given as arrays: ``m`` (T,) tokens
    (each >= 1) and ``unique`` (T, chunks) unique-vector counts (>= 0)."""
    m, unique = np.asarray(m), np.asarray(unique)
    if m.ndim != 1 or unique.ndim != 2 or len(unique) != len(m):
        raise ValueError(
            f"focus_schedule: m {m.shape} and unique {unique.shape} must be (T,), (T, K)"
        )
    for name, a, low in (("m", m, 1), ("unique", unique, 0)):
        if a.size and (a.dtype.kind not in "iu" or a.min() < low):
            raise ValueError(f"focus_schedule: {name} must hold integers >= {low}")
    lengths = np.full(len(m), unique.shape[1], np.int64)
    m, unique = m.astype(np.int64), unique.astype(np.int64)
    return _run_schedule(m, unique, lengths, n_tiles, params, bypass)


def focus_schedule_runs(m, unique, n_tiles, params: FocusParams, *, bypass: bool = False) -> dict:
    """:func:`focus_schedule`'s ``cycles`` and ``stall_cycles`` of ``R``
    runs of ``T`` M tiles each at once (arrays of ``R``): ``m`` (R, T)
    tokens (each >= 1), ``unique`` (R, T, chunks) unique-vector counts (>=
    0), ``n_tiles`` (R,) output sub-tiles (each >= 1)."""
    m, unique, n_tiles = np.asarray(m), np.asarray(unique), np.asarray(n_tiles)
    shape = m.shape
    if (
        len(shape) != 2
        or unique.shape[:2] != shape
        or unique.ndim != 3
        or n_tiles.shape != shape[:1]
    ):
        raise ValueError(
            f"focus_schedule_runs: m {m.shape}, unique {unique.shape} and n_tiles "
            f"{n_tiles.shape} must be (R, T), (R, T, K), (R,)"
        )
    for name, a, low in (("m", m, 1), ("unique", unique, 0), ("n_tiles", n_tiles, 1)):
        if a.size and (a.dtype.kind not in "iu" or a.min() < low):
            raise ValueError(f"focus_schedule_runs: {name} must hold integers >= {low}")
    rows, tiles = m.shape
    runs = np.stack([np.arange(rows) * tiles, n_tiles], axis=1).astype(np.int64)
    m = m.reshape(-1).astype(np.int64)
    lengths = np.full(len(m), unique.shape[2], np.int64)
    unique = unique.reshape(len(m), -1).astype(np.int64)
    cycles, stall, _ = _kernel()(
        m, unique, lengths, *_sic_times(m, params), runs, _config(params, True, bypass)
    )
    return {"cycles": cycles, "stall_cycles": stall}


def focus_schedule_tiles(m, unique, first, n_tiles: int, params: FocusParams, *, bypass=False):
    """:func:`focus_schedule`'s ``tile_cycles`` of many runs at once, each
    with ``n_tiles`` output sub-tiles: the M tiles of all runs in order,
    ``m`` (T,) tokens (each >= 1) and ``unique`` (T, chunks) unique-vector
    counts (>= 0); ``first`` (R,): where each run's tiles begin (rising,
    from 0). Returns (T,) the cycles each tile adds to its run's end."""
    m, unique, first = (np.asarray(a, np.int64) for a in (m, unique, first))
    if m.ndim != 1 or unique.shape[:1] != m.shape or unique.ndim != 2:
        raise ValueError(
            f"focus_schedule_tiles: m {m.shape} and unique {unique.shape} must be (T,), (T, K)"
        )
    if len(m) and (m.min() < 1 or unique.min() < 0):
        raise ValueError("focus_schedule_tiles: m must be >= 1 and unique >= 0")
    if first.ndim != 1 or (len(first) and (first[0] != 0 or np.any(np.diff(first) <= 0))):
        raise ValueError("focus_schedule_tiles: first must rise from 0")
    n_tiles = _count("focus_schedule_tiles", "n_tiles", n_tiles)
    runs = np.stack([first, np.full(len(first), n_tiles)], axis=1)
    lengths = np.full(len(m), unique.shape[1], np.int64)
    *_, ends = _kernel()(
        m, unique, lengths, *_sic_times(m, params), runs, _config(params, True, bypass)
    )
    before = np.concatenate([[0], ends[:-1]])
    before[first] = 0  # each run starts from cycle 0
    return ends - before


def _run_schedule(m, unique, lengths, n_tiles, params, bypass, jump=True) -> dict:
    n_tiles = _count("focus_schedule", "n_tiles", n_tiles)
    cycles, stall, ends = _kernel()(
        m,
        unique,
        lengths,
        *_sic_times(m, params),
        np.array([[0, n_tiles]], np.int64),
        _config(params, jump, bypass),
    )
    ends = ends.tolist()
    return {
        "cycles": int(cycles[0]),
        "stall_cycles": int(stall[0]),
        "tile_cycles": [end - before for before, end in zip([0, *ends], ends)],
    }


def _sic_times(m, params: FocusParams):
    """Per M tile of ``m`` tokens: :func:`sic_output_start` and
    :func:`sic_output_cycles` (both affine in ``n``)."""
    start, v, out, e, _ = _constants(params)
    return start + (m - 1) * v, out + (m - 1) * e


def _config(params: FocusParams, jump: bool, bypass: bool) -> np.ndarray:
    """:func:`_schedule`'s ``config``."""
    return np.array([*_constants(params)[4], int(jump), int(bypass)], np.int64)


@functools.cache
def _constants(params: FocusParams) -> tuple:
    """:func:`sic_output_start` and :func:`sic_output_cycles` of one vector
    with their steps per further vector (both are affine in ``n``), and the
    recurrence's fixed configuration."""
    p = params
    fixed = (
        p.out_vectors,
        p.ring_blocks,
        p.num_scatter,
        reload_cycles(p),
        array_latency(p),
        sic_vector_cycles(p),
        p.rows + 1,  # the first tile's weights are in
        p.scatter_pipeline,
        drain_stages(p),
    )
    step = sic_vector_cycles(p)
    return sic_output_start(1, p), step, sic_output_cycles(1, p), sic_mean_cycles(p), fixed


@functools.cache
def _kernel():
    import numba

    return numba.njit(cache=True)(_schedule)


def _schedule(ms, unique, lengths, starts, outs, runs, config):
    """:func:`focus_schedule`'s recurrence over the M tiles (``starts`` and
    ``outs``: each tile's :func:`sic_output_start` and
    :func:`sic_output_cycles`) of each run (``runs``: its first M tile and
    its N tiles; it ends where the next begins): per run its cycles and
    stall, per tile its end. The ready times the engines hand on are one
    array, ``times``: the feeder's last issue per input half, the scatter's
    last map beat per ring block (``Se``, a circular buffer from ``head``),
    the drain's last read per output half, then the single ones named below
    (``scattered``: the last block's ``Ae``; ``sent``: the last pass's last
    beat, ``sent_before``: the one before's), the SIC's last, and the go
    cycles ``G_0 .. G_E`` of the drain's chain (``gos``; a bypass run
    leaves these alone). ``firsts`` holds ``X`` of the group's blocks of the
    last chunk, per sub-tile."""
    group, ring, lanes, reload = config[0], config[1], config[2], config[3]
    latency, v, weights, pipeline = config[4], config[5], config[6], config[7]
    stages, jump, bypass = config[8], config[9], config[10]
    never = -(10**18)  # before cycle 0: no constraint
    fl, se, lr = 0, 2, 2 + ring  # offsets in times
    feed_last, accept, written, drained = 4 + ring, 5 + ring, 6 + ring, 7 + ring
    scattered, weights_at, next_load, sent = 8 + ring, 9 + ring, 10 + ring, 11 + ring
    sic_next, sent_before, gos = 12 + ring, 13 + ring, 14 + ring  # gos: G_0 .. G_E
    size = 15 + ring + stages
    used = 12 + ring if bypass else size  # the times the run moves
    cycles, stalls = np.zeros(len(runs), np.int64), np.zeros(len(runs), np.int64)
    ends = np.zeros(len(ms), np.int64)
    for r in range(len(runs)):
        begin, n_tiles = runs[r, 0], runs[r, 1]
        end = runs[r + 1, 0] if r + 1 < len(runs) else len(ms)
        full, rest = divmod(n_tiles, group)
        times = np.full(size, never, np.int64)
        times[weights_at], times[next_load], times[sic_next] = weights, 1, 0
        times[sent], times[sent_before] = -1, -1  # no pass yet (none at all: 0 cycles)
        head, total = 0, 0
        before = np.empty_like(times)
        firsts = np.empty(group, np.int64)
        moved = np.empty(stages + 1, np.int64)
        for t in range(begin, end):
            m, start_after, out_cycles = ms[t], starts[t], outs[t]
            beats = -(-m // lanes)
            done, shift_known, shift_stall, shift_step = 0, False, 0, 0
            while done < full or (done == full and rest):
                subs = group if done < full else rest
                # -- one N group of ``subs`` sub-tiles: blocks, then the drain
                stall = 0
                out_free = times[lr] + 1
                for j in range(lengths[t]):
                    u = unique[t, j]
                    load = max(times[fl] + 1, times[next_load])
                    loaded = load + max(u, 1)
                    times[next_load] = loaded
                    for sub in range(subs):
                        free = max(times[feed_last] + 1, loaded)
                        oldest = times[se + head] + 1  # the oldest block: its turn again
                        if oldest > free:
                            stall += oldest - free
                            free = oldest
                        if u == 0:
                            times[feed_last], times[written] = free, free + 1
                        else:
                            issue = max(free + 1, times[accept])
                            first = max(issue + 1, times[weights_at])
                            times[weights_at] = first + reload
                            times[feed_last] = issue if u == 1 else first + u - 2
                            times[accept] = first + u - 1
                            times[written] = times[accept] + latency + 1
                        start = max(times[scattered], times[written])
                        if j == 0:
                            start = max(start, out_free)
                        x = start + 1  # beat 0 accepted
                        if j > 0:  # once the previous chunk's sums of these rows are written
                            x = max(x, firsts[sub] + pipeline + 1)
                        firsts[sub] = x
                        times[se + head] = x + beats - 2 if beats >= 2 else start
                        times[scattered] = x + beats - 1
                        head = (head + 1) % ring
                    times[fl], times[fl + 1] = times[fl + 1], times[feed_last]
                ready = times[scattered] + 2 + pipeline
                for _ in range(subs):
                    drain = max(ready, times[drained] + 1)
                    if bypass:
                        times[drained] = drain + m
                        times[sent] = drain + m + 1 + stages
                        continue
                    # the narrowing's go cycles: times[gos + x] (x <= stages),
                    # then one a cycle; row 0 goes into slot k
                    last_go = times[gos + stages]
                    k = 1
                    while k <= stages and times[gos + k] < drain + 2:
                        k += 1
                    if k > stages:
                        k = stages + max(1, drain + 2 - last_go)
                    x = k + stages - 1  # row 0 reaches the SIC after go x
                    at = times[gos + x] if x <= stages else last_go + x - stages
                    s = max(at + 1, times[sic_next], times[sent_before] + 1)
                    times[sic_next] = s + m * v
                    if m >= stages + 2:
                        times[drained] = s + (m - 2 - stages) * v
                    else:  # the read after go k + m - 2 (row 0: or Ds+1)
                        x = k + m - 2
                        at = times[gos + x] if x <= stages else last_go + x - stages
                        times[drained] = at if m >= 2 else max(at, drain + 1)
                    for y in range(stages + 1):  # the go cycles of the pass's last slots
                        row = m - 1 - stages + y
                        x = k + m - 1 + y
                        if row >= 0:
                            moved[y] = s + row * v
                        elif x <= stages:
                            moved[y] = times[gos + x]
                        else:
                            moved[y] = last_go + x - stages
                    times[gos : gos + stages + 1] = moved
                    out = max(s + start_after, times[sent])
                    times[sent_before], times[sent] = times[sent], out + out_cycles
                times[lr], times[lr + 1] = times[lr + 1], times[drained]
                total += stall
                done += 1
                if done > full:  # the last, smaller group
                    break
                # -- the periodic shortcut over identical full groups
                step = times - before
                same = (step[:used] == step[0]).all() and done > 1
                if jump and same and shift_known and shift_stall == stall and shift_step == step[0]:
                    left = full - done
                    times += step[0] * left
                    total += stall * left
                    done = full
                shift_known, shift_stall, shift_step = same, stall, step[0]
                before[:] = times
            ends[t] = times[sent] + 1
        cycles[r], stalls[r] = times[sent] + 1, total
    return cycles, stalls, ends
