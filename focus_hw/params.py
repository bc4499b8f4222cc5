"""The one parameter object of the project.

:class:`FocusParams` holds every knob of the Focus accelerator. The Amaranth
generator elaborates from it, the performance model (``sim``) and the
synthesis flow (``synth``) read it, and the reference algorithm
(``focus_algo``) takes its SIC/SEC settings from it. Nothing else in the
project restates a hardware number: anything derived (buffer capacities,
element widths) is a property computed here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from .fileio import atomic_write_text
from .formats import ACC_FORMATS, OPERAND_FORMATS, NumberFormat, accumulator_format

__all__ = ["FocusParams", "DTYPES"]

#: Supported operand formats: name -> (operand bits, accumulator bits), from
#: the registry :data:`focus_hw.formats.OPERAND_FORMATS`.
DTYPES = {name: (f.bits, f.acc.bits) for name, f in OPERAND_FORMATS.items()}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class FocusParams:
    """Every parameter of one Focus design point. The defaults are the
    paper's design point except where the project measured a better one:
    3 scatter lanes (the paper has 2), a concentrate-out ring of 4 blocks
    (the paper double-buffers) and fp32 partial sums (the paper's PE keeps
    fp16: ``acc_format="operand"``).

    Validated on construction: an impossible value raises :class:`ValueError`
    naming the field. Rules:

    * ``rows``, ``cols``, ``m_tile``, ``num_scatter``, ``out_vectors``,
      ``block_*``, ``max_frame_tokens``, ``max_tokens`` are integers >= 1
      and ``ring_blocks`` an integer >= 2, with
      ``max_frame_tokens <= max_tokens``; ``mac_pipeline``, ``scatter_pipeline``,
      ``sic_pipeline`` >= 0.
    * ``sic_lanes`` is a positive power of two.
    * ``dtype`` is one of :data:`DTYPES` (the registry's operand formats).
    * ``acc_format`` is one of :data:`focus_hw.formats.ACC_FORMATS`;
      ``"operand"`` needs a float ``dtype``.
    * ``vector_size`` is a positive power of two.
    * ``threshold`` lies in (-1, 1], or is ``math.inf`` (SIC never merges).
    * ``sec_layers`` are distinct, increasing, non-negative layer indices;
      ``sec_keep`` has one ratio per layer, each in (0, 1], non-increasing
      (SEC never brings a pruned token back).
    * ``clock_mhz``, ``dram_bandwidth_gbs`` > 0; ``dram_pj_per_byte`` >= 0.
    """

    # -- systolic array -------------------------------------------------------
    #: PE rows: the reduction (K) dimension of one weight tile.
    rows: int = 32
    #: PE columns: the output (N) dimension of one weight tile.
    cols: int = 32
    #: Operand format of activations and weights: a name of
    #: :data:`focus_hw.formats.OPERAND_FORMATS` ('fp16', 'bf16', 'int8').
    dtype: str = "fp16"
    #: Pipeline registers inside each MAC (0 = single-cycle MAC).
    mac_pipeline: int = 0
    #: Where partial sums are held (PE and scatter): 'wide' in the operand
    #: format's accumulator (fp32 / int32), 'operand' in the operand format
    #: itself (fp16 / bf16 only; every step rounded to it), see :attr:`acc`.
    acc_format: str = "wide"

    # -- similarity concentrator (SIC) ------------------------------------------
    #: Elements per compared vector (the array's K rows in the paper).
    vector_size: int = 32
    #: Spatio-temporal comparison window: frames x rows x columns of patches.
    block_frames: int = 2
    block_height: int = 2
    block_width: int = 2
    #: A vector is similar when its best cosine score is strictly above this.
    threshold: float = 0.9
    #: Surviving tokens per GEMM M tile (one tile is held on chip).
    m_tile: int = 1024
    #: Scatter lanes that add unique partial sums into token rows (a lane is
    #: ``cols`` adders). 3 lanes and a ring of 4 blocks are the smallest that
    #: keep the array's stall near 1% on the paper's video workloads
    #: (``benchmarks/bench_focus_stall.py``); the paper's design point has 2.
    num_scatter: int = 3
    #: Register stages of the output buffer's fp32 arithmetic: inside each
    #: scatter adder (0 = the sum is written the cycle after the row is
    #: read; see :class:`~focus_hw.scatter.ScatterAccumulator`) and in the
    #: drain's fp32 -> operand narrowing (0 = a row read from the buffer
    #: reaches the SIC the cycle after; none with ``acc_format="operand"``,
    #: which has nothing to narrow; see
    #: :class:`~focus_hw.engines.drain.DrainEngine`).
    scatter_pipeline: int = 0
    #: Output tile width in SIC vectors: an M tile's output is produced in
    #: N groups of ``out_vectors`` sub-tiles of ``cols`` columns, each K
    #: chunk loaded once per group (the output buffer holds a group).
    out_vectors: int = 3
    #: Blocks of ``m_tile`` partial-sum rows in the concentrate-out ring: the
    #: array fills one per (chunk, sub-tile) while the scatter empties older
    #: ones, in order.
    ring_blocks: int = 4
    #: Largest frame (patches) the layouter and similarity table hold.
    max_frame_tokens: int = 256
    #: Whether a column-0 token's left neighbour is the previous row's last
    #: token (flattened-sequence semantics, as the paper's artifact does).
    block_wrap: bool = True
    #: Multiply lanes of the SIC's dot-product and average units (a power of
    #: two; at most ``vector_size`` are used, see :attr:`sic_width`). 8 keeps
    #: the SIC's stall under 2% on the paper's video workloads
    #: (``benchmarks/bench_sic_stall.py``).
    sic_lanes: int = 8
    #: Pipeline registers inside each SIC arithmetic unit (0 = single cycle).
    sic_pipeline: int = 0
    #: Largest visual-token count (token positions) the SIC and SEC address.
    max_tokens: int = 16384

    # -- semantic concentrator (SEC) ------------------------------------------
    #: Decoder layers after whose attention SEC prunes visual tokens.
    sec_layers: tuple[int, ...] = (2, 5, 8, 16, 25)
    #: Fraction of the ORIGINAL visual tokens kept after each SEC layer.
    sec_keep: tuple[float, ...] = (0.4, 0.3, 0.2, 0.15, 0.1)

    # -- clock and off-chip memory ----------------------------------------------
    clock_mhz: float = 500.0
    #: DRAM bandwidth in GB/s (DDR4 in the paper).
    dram_bandwidth_gbs: float = 64.0
    #: DRAM access energy in pJ per byte.
    dram_pj_per_byte: float = 100.0

    def __post_init__(self):
        # Sequences may arrive as lists (JSON/TOML): store them as tuples.
        for name in ("sec_layers", "sec_keep"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
        self._validate()

    def _validate(self):
        def fail(name, why):
            raise ValueError(f"FocusParams.{name}={getattr(self, name)!r}: {why}")

        for name in (
            "rows",
            "cols",
            "m_tile",
            "num_scatter",
            "out_vectors",
            "block_frames",
            "block_height",
            "block_width",
            "max_frame_tokens",
            "sic_lanes",
            "max_tokens",
        ):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                fail(name, "must be an integer >= 1")
        if not _is_int(self.ring_blocks) or self.ring_blocks < 2:
            fail("ring_blocks", "must be an integer >= 2")
        for name in ("mac_pipeline", "scatter_pipeline", "sic_pipeline"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                fail(name, "must be an integer >= 0")
        if not isinstance(self.dtype, str) or self.dtype not in DTYPES:
            fail("dtype", f"must be one of {sorted(DTYPES)}")
        if not isinstance(self.acc_format, str) or self.acc_format not in ACC_FORMATS:
            fail("acc_format", f"must be one of {list(ACC_FORMATS)}")
        if self.acc_format == "operand" and not self.is_float:
            fail("acc_format", f"'operand' needs a float dtype, not {self.dtype!r}")
        v = self.vector_size
        if not _is_int(v) or v < 1 or v & (v - 1):
            fail("vector_size", "must be a positive power of two")
        if self.sic_lanes & (self.sic_lanes - 1):
            fail("sic_lanes", "must be a positive power of two")
        if self.max_frame_tokens > self.max_tokens:
            fail("max_frame_tokens", f"must not exceed max_tokens ({self.max_tokens})")
        t = self.threshold
        if not _is_real(t) or not (t == math.inf or -1.0 < t <= 1.0):
            fail("threshold", "must lie in (-1, 1] (or be math.inf to disable SIC)")
        if not isinstance(self.block_wrap, bool):
            fail("block_wrap", "must be a bool")
        layers = self.sec_layers
        if not isinstance(layers, tuple) or any(not _is_int(x) or x < 0 for x in layers):
            fail("sec_layers", "must be non-negative integer layer indices")
        if any(b <= a for a, b in zip(layers, layers[1:])):
            fail("sec_layers", "must be strictly increasing")
        keep = self.sec_keep
        if not isinstance(keep, tuple):
            fail("sec_keep", "must be a list of ratios")
        if len(keep) != len(layers):
            fail("sec_keep", f"needs one ratio per layer of sec_layers ({len(layers)})")
        if any(not _is_real(r) or not 0.0 < r <= 1.0 for r in keep):
            fail("sec_keep", "ratios must lie in (0, 1]")
        if any(b > a for a, b in zip(keep, keep[1:])):
            fail("sec_keep", "ratios must be non-increasing")
        for name in ("clock_mhz", "dram_bandwidth_gbs"):
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 < value < math.inf:
                fail(name, "must be a finite number > 0")
        p = self.dram_pj_per_byte
        if not _is_real(p) or not 0.0 <= p < math.inf:
            fail("dram_pj_per_byte", "must be a finite number >= 0")

    # -- derived quantities ---------------------------------------------------
    @property
    def format(self) -> NumberFormat:
        """The operand format's registry entry (:mod:`focus_hw.formats`)."""
        return OPERAND_FORMATS[self.dtype]

    @property
    def operand_bits(self) -> int:
        """Width of one activation/weight element."""
        return self.format.bits

    @property
    def acc(self) -> NumberFormat:
        """The accumulator's registry entry: the operand format's accumulator
        (fp32, int32) for ``acc_format='wide'``, the operand format for 'operand'."""
        return accumulator_format(self.format, self.acc_format)

    @property
    def acc_bits(self) -> int:
        """Width of the accumulator (:attr:`acc`)."""
        return self.acc.bits

    @property
    def operand_bytes(self) -> int:
        return self.operand_bits // 8

    @property
    def acc_bytes(self) -> int:
        return self.acc_bits // 8

    @property
    def is_float(self) -> bool:
        return self.format.is_float

    @property
    def block(self) -> tuple[int, int, int]:
        """Comparison window as (frames, height, width)."""
        return (self.block_frames, self.block_height, self.block_width)

    @property
    def block_offsets(self) -> tuple[tuple[int, int, int], ...]:
        """SIC candidate offsets (df, dh, dw) of the block window without
        (0, 0, 0), in lexicographic order: the tie-break order (the first of
        equally good candidates wins)."""
        return tuple(
            (df, dh, dw)
            for df in range(self.block_frames)
            for dh in range(self.block_height)
            for dw in range(self.block_width)
            if (df, dh, dw) != (0, 0, 0)
        )

    @property
    def sic_width(self) -> int:
        """Lanes the SIC uses: ``sic_lanes``, at most one per vector element."""
        return min(self.sic_lanes, self.vector_size)

    @property
    def sic_steps(self) -> int:
        """Steps of :attr:`sic_width` elements that cover one vector."""
        return self.vector_size // self.sic_width

    @property
    def sic_window(self) -> int:
        """Farthest back (in token positions) a block-window candidate can lie,
        for frames of ``max_frame_tokens`` patches with rows of at most
        ``isqrt(max_frame_tokens)`` patches."""
        return (
            (self.block_frames - 1) * self.max_frame_tokens
            + (self.block_height - 1) * math.isqrt(self.max_frame_tokens)
            + self.block_width
            - 1
        )

    @property
    def sic_table_depth(self) -> int:
        """Entries of the SIC's similarity table: the smallest power of two
        above :attr:`sic_window` (it is addressed by token position modulo
        its depth)."""
        return 1 << self.sic_window.bit_length()

    @property
    def index_bits(self) -> int:
        """Bits of a token's index within its M tile (0 .. m_tile - 1)."""
        return max(1, (self.m_tile - 1).bit_length())

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram_bandwidth_gbs * 1e9 / self.clock_hz

    @property
    def buffer_bytes(self) -> dict[str, int]:
        """On-chip buffer capacities in bytes, derived from the tiling.

        * input: one M tile x K tile of operands, double-buffered;
        * weight: one K x N weight tile, double-buffered;
        * concentrate_out: a ring of ``ring_blocks`` blocks, each the partial
          sums of up to m_tile unique vectors x cols (the array fills one
          while the scatter reads older ones);
        * output: the m_tile x (out_vectors x cols) output group in
          accumulator precision, double-buffered (the SIC drains one group
          while the next one accumulates);
        * similarity_table: the vectors a block window reaches back over
          ((block_frames - 1) frames + (block_height - 1) rows + block_width
          tokens of the largest frame), one vector each, operand precision;
        * similarity_map: one group index per vector of the M tile;
        * layouter: one output tile row block re-laid out (m_tile x cols);
        * importance: one importance score per token of the M tile (SEC);
        * scatter_map (only with ``out_vectors > 1``): one chunk's similarity
          map as the scatter reads it (``ceil(m_tile / num_scatter)`` beats
          of ``num_scatter`` entries: a zero flag and a slot index), kept for
          the group's later sub-tiles.
        """
        b, acc = self.operand_bytes, self.acc_bytes
        reach = (
            (self.block_frames - 1) * self.max_frame_tokens
            + (self.block_height - 1) * math.isqrt(self.max_frame_tokens)
            + self.block_width
        )
        index_bytes = max(1, math.ceil(math.log2(self.m_tile + 1) / 8))
        sizes = {
            "input": 2 * self.m_tile * self.rows * b,
            "weight": 2 * self.rows * self.cols * b,
            "concentrate_out": self.ring_blocks * self.m_tile * self.cols * acc,
            "output": 2 * self.out_vectors * self.m_tile * self.cols * acc,
            "similarity_table": reach * self.vector_size * b,
            "similarity_map": self.m_tile * index_bytes,
            "layouter": self.m_tile * self.cols * b,
            "importance": self.m_tile * b,
        }
        if self.out_vectors > 1:
            beats = -(-self.m_tile // self.num_scatter)
            sizes["scatter_map"] = beats * -(-self.num_scatter * (1 + self.index_bits) // 8)
        return sizes

    # -- serialisation ----------------------------------------------------------
    def replace(self, **changes) -> FocusParams:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["sec_layers"] = list(self.sec_layers)
        d["sec_keep"] = list(self.sec_keep)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> FocusParams:
        if not isinstance(data, dict):
            raise ValueError(f"FocusParams: expected a table of fields, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(map(repr, set(data) - known))
        if unknown:
            raise ValueError(f"FocusParams: unknown field(s) {', '.join(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FocusParams:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
            raise ValueError(f"FocusParams: not valid JSON ({e})") from None
        return cls.from_dict(data)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str) -> FocusParams:
        try:
            data = tomllib.loads(text)
        except (ValueError, RecursionError) as e:  # TOMLDecodeError is a ValueError
            raise ValueError(f"FocusParams: not valid TOML ({e})") from None
        return cls.from_dict(data)

    def save(self, path) -> None:
        """Write to ``path`` (.json or .toml) atomically."""
        path = Path(path)
        text = self.to_toml() if path.suffix == ".toml" else self.to_json()
        atomic_write_text(path, text)

    @classmethod
    def load(cls, path) -> FocusParams:
        """Read a .json or .toml file written by :meth:`save` (or by hand);
        a malformed file raises :class:`ValueError` naming the problem."""
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"FocusParams: {path} is not UTF-8 text ({e.reason} at byte {e.start})"
            ) from None
        return cls.from_toml(text) if path.suffix == ".toml" else cls.from_json(text)

    def digest(self) -> str:
        """Stable short hash of all fields (cache keys, sweep folders)."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]
