"""Golden test vectors for the RTL, in the hardware's number format.

Every array is a raw bit pattern: fp16/bf16 operands as ``uint16``, int8
operands as ``int8``, accumulator results as their bits (fp32 as ``uint32``,
fp16/bf16 as ``uint16``; int32 as ``int32``), masks as ``uint8`` (0/1),
token indices as ``int32``. All vectors are deterministic functions of
(params, shape, seed).

Arithmetic (the MAC contract, :ref:`hardware-mac`), in the accumulator format
``A = params.acc`` (``params.acc_format``). For float formats one step is::

    acc = A(acc + A(A(a) * A(w)))

numpy operations in ``A``'s type, each rounded to nearest even: float32 for
``acc_format="wide"`` (the product of two fp16 or bf16 values is exact in
fp32 except for under/overflow), the operand type for ``"operand"`` (the
product rounded to it, then the sum). For int8 it is
``acc = wrap32(acc + int32(a) * int32(w))`` with two's-complement
wrap-around.

* :func:`gemm_golden` -- ``out[m, n]``: ``acc = acc0[m, n]`` (``+0.0`` / 0
  unless an initial accumulator is requested), then one step for each
  ``k = 0 .. K-1`` in order.
* :func:`sic_golden` -- a token tile with planted redundancy and the masks and
  concentrated tokens :func:`focus_algo.sic.similarity_concentrate` gives.
* :func:`compressed_gemm_golden` -- the GEMM on the concentrated tokens as the
  Focus array performs it: for each K chunk ``j`` of ``vector_size`` columns
  (``j = 0 ..`` in order), only the unique vectors (roots that are not zero)
  pass through the array; the partial sum of unique vector ``u`` is
  ``p[u, n]`` = steps over ``k`` in the chunk starting from ``+0.0``; then
  every token ``t`` whose vector ``j`` is not zero adds it:
  ``out[t, n] = A(out[t, n] + p[root[t, j], n])`` with ``out`` starting
  at ``+0.0``. Zero vectors contribute nothing.
* :func:`focus_gemm_reference` -- the same order for any ``a @ w`` with
  every non-zero vector its own root (no SIC).

:func:`write_golden` writes all of them as ``.npz`` files plus an
``index.json`` describing each array; :func:`load_golden` reads them back,
checked against the index.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from focus_hw.fileio import atomic_write_bytes, atomic_write_text
from focus_hw.formats import accumulator_format, operand_format
from focus_hw.params import FocusParams

__all__ = [
    "encode",
    "decode",
    "f32_bits",
    "mac_reference",
    "gemm_reference",
    "focus_gemm_reference",
    "mac_golden",
    "gemm_golden",
    "sic_golden",
    "compressed_gemm_golden",
    "write_golden",
    "load_golden",
    "GoldenError",
    "CASES",
]

#: Planted case codes of :func:`sic_golden` (array ``"case"``).
CASES = {"random": 0, "copy": 1, "above": 2, "below": 3, "zero": 4}


# -- number formats -------------------------------------------------------------


def encode(values, dtype: str) -> np.ndarray:
    """Round real ``values`` to the operand format; return its raw bits.

    Floats round once to nearest even (unsigned bits, e.g. uint16); integer
    formats (int8) must get whole numbers in range and are stored as their
    signed values (the same two's-complement bits).
    """
    fmt = operand_format(dtype)
    bits = fmt.encode(values)
    return bits if fmt.is_float else bits.view(fmt.np_type)


def decode(bits, dtype: str, acc_format: str = "wide") -> np.ndarray:
    """Operand bits -> values of the accumulator's type (float32 or int32
    for ``acc_format="wide"``, the operand type for ``"operand"``)."""
    return operand_format(dtype).decode(bits).astype(accumulator_format(dtype, acc_format).np_type)


def f32_bits(x) -> np.ndarray:
    """Raw bits of float32 values as uint32."""
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


def _wrap32(x: np.ndarray) -> np.ndarray:
    return ((x.astype(np.int64) + 2**31) % 2**32 - 2**31).astype(np.int32)


def mac_reference(a_bits, b_bits, acc, dtype: str, acc_format: str = "wide") -> np.ndarray:
    """One MAC step elementwise; ``acc``/result are accumulator bits (int32 for int8)."""
    a, b = decode(a_bits, dtype, acc_format), decode(b_bits, dtype, acc_format)
    fmt = accumulator_format(dtype, acc_format)
    if not fmt.is_float:
        return _wrap32(np.asarray(acc, np.int64) + a.astype(np.int64) * b)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        out = fmt.decode(acc) + a * b
    return fmt.to_bits(out)


def gemm_reference(a_bits, w_bits, dtype: str, acc=None, acc_format: str = "wide") -> np.ndarray:
    """(M, K) x (K, N) with the documented order; result bits (accumulator / int32).

    ``acc`` is the initial accumulator (same format as the result), default 0.
    """
    a, w = decode(a_bits, dtype, acc_format), decode(w_bits, dtype, acc_format)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise ValueError(f"shapes {a.shape} x {w.shape} do not form a GEMM")
    m, n = a.shape[0], w.shape[1]
    fmt = accumulator_format(dtype, acc_format)
    if not fmt.is_float:
        out = np.zeros((m, n), np.int64) if acc is None else np.asarray(acc, np.int64)
        return _wrap32(out + a.astype(np.int64) @ w.astype(np.int64))
    out = np.zeros((m, n), fmt.np_type) if acc is None else fmt.decode(acc).copy()
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for k in range(a.shape[1]):
            out = out + a[:, k, None] * w[None, k, :]  # ops in the accumulator type, RNE each
    return fmt.to_bits(out)


# -- random operands ------------------------------------------------------------


def _operands(rng, shape, dtype: str, special: bool = True) -> np.ndarray:
    """Random operand bits with magnitudes spread over a few binades.

    With ``special``: about 5% +0, 2% -0 and 3% subnormals.
    """
    fmt = operand_format(dtype)
    if not fmt.is_float:
        info = np.iinfo(fmt.np_type)
        return rng.integers(info.min, info.max + 1, size=shape).astype(fmt.np_type)
    v = rng.standard_normal(shape) * np.exp2(rng.integers(-6, 7, size=shape))
    if special:
        u = rng.random(shape)
        v[u < 0.05] = 0.0
        v[(u >= 0.05) & (u < 0.07)] = -0.0
        lay = fmt.layout
        sub = (u >= 0.07) & (u < 0.10)
        v[sub] = (
            rng.choice([-1, 1], size=sub.sum())
            * rng.integers(1, 1 << lay.man_bits, size=sub.sum())
            * 2.0 ** (1 - lay.bias - lay.man_bits)
        )
    return encode(v, dtype)


def _float_acc(rng, shape, params: FocusParams) -> np.ndarray:
    """Random accumulator bits (``params.acc``, a float format)."""
    v = rng.standard_normal(shape) * np.exp2(rng.integers(-8, 9, size=shape))
    v[rng.random(shape) < 0.05] = 0.0
    return params.acc.encode(v)


def _acc_init(rng, shape, params: FocusParams):
    acc = params.acc
    if not acc.is_float:  # near the int32 limits, so that the sum wraps around
        info = np.iinfo(acc.np_type)
        edge = rng.choice([info.min, info.max], size=shape)
        return _wrap32(edge - np.sign(edge) * rng.integers(0, 2**17, size=shape))
    return _float_acc(rng, shape, params)


def mac_golden(params: FocusParams, count: int, seed: int = 0) -> dict:
    """``count`` single MAC steps: keys a, b, acc, out (see :func:`mac_reference`)."""
    rng = np.random.default_rng([seed, 1])
    a = _operands(rng, (count,), params.dtype)
    b = _operands(rng, (count,), params.dtype)
    acc_fmt = params.acc
    if not acc_fmt.is_float:
        info = np.iinfo(acc_fmt.np_type)
        acc = rng.integers(info.min, info.max + 1, size=count).astype(acc_fmt.np_type)
    else:
        acc = _float_acc(rng, (count,), params)
    out = mac_reference(a, b, acc, params.dtype, params.acc_format)
    return {"a": a, "b": b, "acc": acc, "out": out}


def gemm_golden(
    params: FocusParams, m: int, k: int, n: int, seed: int = 0, *, with_acc: bool = False
) -> dict:
    """Random a (m, k) and w (k, n) and out = a @ w in the documented order.

    With ``with_acc`` an initial accumulator ``acc`` (m, n) is included (for
    int8 near the int32 limits, so the result wraps around).
    """
    for name, v in (("m", m), ("k", k), ("n", n)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"gemm_golden: {name}={v!r} must be an integer >= 1")
    rng = np.random.default_rng([seed, 2])
    a = _operands(rng, (m, k), params.dtype)
    w = _operands(rng, (k, n), params.dtype)
    out = {"a": a, "w": w}
    acc = _acc_init(rng, (m, n), params) if with_acc else None
    if acc is not None:
        out["acc"] = acc
    out["out"] = gemm_reference(a, w, params.dtype, acc, params.acc_format)
    return out


# -- SIC ---------------------------------------------------------------------------


def _near(rng, u: np.ndarray, cos: float) -> np.ndarray:
    """A vector of u's norm whose cosine with u is ``cos``."""
    r = rng.standard_normal(u.shape)
    r -= (r @ u) / (u @ u) * u
    return np.linalg.norm(u) * (
        cos * u / np.linalg.norm(u) + math.sqrt(1 - cos * cos) * r / np.linalg.norm(r)
    )


def _planted_tile(params: FocusParams, grid, dim: int, seed: int, margin: float):
    """Tokens (T, dim) in the operand format plus the planted case per vector."""
    frames, height, width = grid
    n, vs = frames * height * width, params.vector_size
    nv = -(-dim // vs)
    rng = np.random.default_rng([seed, 3])
    fmt = params.format.np_type
    shifts = sorted(
        {
            df * height * width + dh * width + dw
            for df in range(params.block_frames)
            for dh in range(params.block_height)
            for dw in range(params.block_width)
        }
        - {0}
    )
    x = np.zeros((n, dim))
    case = np.zeros((n, nv), np.int8)
    pruned = rng.random(n) < 0.08  # whole zero tokens (as SEC leaves them)
    probs = np.array([0.3, 0.3, 0.12, 0.12, 0.16])
    for t in range(n):
        for j in range(nv):
            sl = slice(j * vs, min(dim, (j + 1) * vs))  # the last slot may be short
            width = sl.stop - sl.start
            kind = "zero" if pruned[t] else list(CASES)[rng.choice(5, p=probs)]
            cands = [t - s for s in shifts if s <= t and x[t - s, sl].any()]
            if kind in ("above", "below") and width < 2:
                kind = "copy"
            if kind in ("copy", "above", "below") and (not cands or math.isinf(params.threshold)):
                kind = "random"
            if kind == "random":
                v = rng.standard_normal(width) * 2.0 ** rng.integers(-3, 4)
            elif kind == "zero":
                v = np.zeros(width)
            else:
                u = x[cands[rng.integers(len(cands))], sl]
                cos = {
                    "copy": 1.0,
                    "above": params.threshold + margin,
                    "below": params.threshold - margin,
                }[kind]
                v = u.copy() if kind == "copy" else _near(rng, u, min(max(cos, -0.999), 0.999))
            x[t, sl] = v.astype(fmt).astype(np.float64)
            case[t, j] = CASES[kind]
    return x, case


def sic_golden(
    params: FocusParams,
    grid=(2, 3, 4),
    seed: int = 0,
    *,
    dim: int | None = None,
    margin: float = 0.02,
) -> dict:
    """A token tile with planted redundancy and its SIC result.

    Tokens follow ``grid`` (frames, height, width) in raster order and have
    ``dim`` features (default ``2.5 * vector_size``, so the last vector is
    zero-padded). Per vector: exact copies of a block-window candidate,
    near-copies whose cosine with it is ``threshold + margin`` /
    ``threshold - margin`` (the margin keeps the decision robust against the
    hardware's rounding of the score), zero vectors, whole zero tokens, and
    random vectors. Keys: x, tokens (operand bits, (T, dim)), zero, similar
    (uint8, (T, V)), root (int32, (T, V)), case (int8, :data:`CASES`), grid.
    """
    from focus_algo.sic import similarity_concentrate

    if not params.is_float:
        raise ValueError(
            f"sic_golden: SIC golden vectors need a float operand format, "
            f"params.dtype={params.dtype!r}"
        )
    grid = tuple(int(g) for g in grid)
    dim = dim if dim is not None else 2 * params.vector_size + max(1, params.vector_size // 2)
    if dim < 1:
        raise ValueError(f"sic_golden: dim={dim} must be >= 1")
    x, case = _planted_tile(params, grid, dim, seed, margin)
    import torch

    fmt = params.format
    bits = encode(x, params.dtype)
    raw = torch.from_numpy(bits.view(f"int{fmt.bits}"))  # torch lacks most unsigned types
    res = similarity_concentrate(raw.view(fmt.torch_dtype), grid, params)
    tokens = res.tokens.contiguous().view(raw.dtype).numpy().view(fmt.bits_type)
    return {
        "x": bits,
        "tokens": tokens.copy(),
        "zero": res.zero.numpy().astype(np.uint8),
        "similar": res.similar.numpy().astype(np.uint8),
        "root": res.root.numpy().astype(np.int32),
        "case": case,
        "grid": np.array(grid, np.int32),
    }


def _scatter_gemm(x, w, zero, root, vector_size: int):
    """The Focus array's and scatter's GEMM (module docstring) on values of
    the accumulator's numpy type: ``(out, [per chunk: unique token indices,
    partial sums])``."""
    num_tokens, dim = x.shape
    out = np.zeros((num_tokens, w.shape[1]), x.dtype)
    chunks = []
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for j in range(zero.shape[1]):
            unique = np.flatnonzero(~zero[:, j] & (root[:, j] == np.arange(num_tokens)))
            p = np.zeros((len(unique), w.shape[1]), x.dtype)
            for k in range(j * vector_size, min(dim, (j + 1) * vector_size)):
                p = p + x[unique, k, None] * w[None, k, :]
            members = np.flatnonzero(~zero[:, j])
            slot = np.minimum(np.searchsorted(unique, root[members, j]), len(unique) - 1)
            if not np.array_equal(unique[slot], root[members, j]):
                raise RuntimeError(f"SIC root of a chunk-{j} vector is not a unique vector")
            out[members] = out[members] + p[slot]
            chunks.append((unique, p))
    return out, chunks


def focus_gemm_reference(a_bits, w_bits, params: FocusParams) -> np.ndarray:
    """``a @ w`` (operand bits, any K) in the order of
    :func:`compressed_gemm_golden` with every non-zero vector its own root:
    per K chunk of ``vector_size`` a partial sum from +0.0, added to the
    output row (from +0.0) in K order, all in ``params.acc``. Result bits."""
    x = decode(a_bits, params.dtype, params.acc_format)
    w = decode(w_bits, params.dtype, params.acc_format)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"shapes {x.shape} x {w.shape} do not form a GEMM")
    (t, k), vs = x.shape, params.vector_size
    chunks = np.zeros((t, -(-k // vs) * vs), x.dtype)
    chunks[:, :k] = x
    zero = ~chunks.reshape(t, -1, vs).any(axis=2)
    root = np.broadcast_to(np.arange(t)[:, None], zero.shape)
    return params.acc.to_bits(_scatter_gemm(x, w, zero, root, vs)[0])


def compressed_gemm_golden(
    params: FocusParams, grid=(2, 3, 4), n: int = 8, seed: int = 0, *, dim: int | None = None
) -> dict:
    """GEMM of the SIC-compressed tile from :func:`sic_golden` with w (dim, n).

    Adds to the SIC keys: w (operand bits), unique_count (V,) int32 unique
    vectors per chunk, unique_index (sum, ) int32 their token indices
    (ascending within a chunk, chunks in order), partial (sum, n) accumulator
    bits of the unique vectors' partial sums, out (T, n) accumulator bits
    (module docstring).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"compressed_gemm_golden: n={n!r} must be an integer >= 1")
    g = sic_golden(params, grid, seed, dim=dim)
    rng = np.random.default_rng([seed, 4])
    w_bits = _operands(rng, (g["x"].shape[1], n), params.dtype)
    x = decode(g["tokens"], params.dtype, params.acc_format)
    w = decode(w_bits, params.dtype, params.acc_format)
    zero, root = g["zero"].astype(bool), g["root"]
    out, chunks = _scatter_gemm(x, w, zero, root, params.vector_size)
    g.update(
        {
            "w": w_bits,
            "unique_count": np.array([len(u) for u, _ in chunks], np.int32),
            "unique_index": np.concatenate([u for u, _ in chunks]).astype(np.int32),
            "partial": params.acc.to_bits(np.concatenate([p for _, p in chunks])),
            "out": params.acc.to_bits(out),
        }
    )
    return g


# -- files -------------------------------------------------------------------------

_DOC = {
    "mac": "single MAC steps: out = acc + a*b (module docstring of focus_algo.golden)",
    "gemm": "out = acc0 + a @ w, k = 0..K-1 in order, acc0 = 0",
    "gemm_acc": "out = acc + a @ w with an initial accumulator acc, k in order",
    "sic": "SIC on a planted token tile: masks, roots and concentrated tokens",
    "compressed_gemm": "GEMM on the SIC-compressed tile: unique vectors per K chunk, "
    "partial sums from +0.0, scatter-accumulated into token rows",
}


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_golden(
    out_dir,
    params: FocusParams,
    *,
    seed: int = 0,
    gemm_shape: tuple[int, int, int] = (8, 70, 8),
    grid: tuple[int, int, int] = (2, 3, 4),
    n: int = 8,
    mac_count: int = 256,
) -> dict:
    """Write ``{name}.npz`` golden files and ``index.json`` into ``out_dir``.

    Every file is written atomically, the index last. SIC files are only
    written for float formats. Returns the index (also in ``index.json``).
    """
    out_dir = Path(out_dir)
    sets = {
        "mac": mac_golden(params, mac_count, seed),
        "gemm": gemm_golden(params, *gemm_shape, seed),
        "gemm_acc": gemm_golden(params, *gemm_shape, seed, with_acc=True),
    }
    if params.is_float:
        sets["sic"] = sic_golden(params, grid, seed)
        sets["compressed_gemm"] = compressed_gemm_golden(params, grid, n, seed)
    blobs = {name: _npz_bytes(arrays) for name, arrays in sets.items()}
    index = {
        "format": "focus-golden",
        "version": 1,
        "seed": seed,
        "dtype": params.dtype,
        "params": params.to_dict(),
        "files": {
            f"{name}.npz": {
                "description": _DOC[name],
                "arrays": {
                    k: {"dtype": str(v.dtype), "shape": list(v.shape)}
                    for k, v in sets[name].items()
                },
            }
            for name in sets
        },
    }
    for name, blob in blobs.items():
        atomic_write_bytes(out_dir / f"{name}.npz", blob)
    atomic_write_text(out_dir / "index.json", json.dumps(index, indent=2))
    return index


class GoldenError(ValueError):
    """A golden-vector folder that is missing, malformed or disagrees with its index."""


def _read_npz(path: Path, arrays: dict) -> dict[str, np.ndarray]:
    """The arrays of one golden file, checked against its ``index.json`` entry."""
    if not path.is_file():
        raise GoldenError(f"{path}: listed in index.json but does not exist")
    try:
        with zipfile.ZipFile(path) as z:
            members = {n: z.read(n) for n in z.namelist()}  # CRC-checked
        got = {
            n.removesuffix(".npy"): np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            for n, raw in members.items()
        }
    except Exception as e:  # noqa: BLE001 -- zipfile and numpy raise many types on bad bytes
        raise GoldenError(
            f"{path}: truncated or corrupt .npz ({type(e).__name__}: {' '.join(str(e).split())})"
        ) from None
    if set(got) != set(arrays):
        raise GoldenError(f"{path}: holds arrays {sorted(got)}, index.json lists {sorted(arrays)}")
    for name, spec in arrays.items():
        a = got[name]
        if str(a.dtype) != spec.get("dtype") or list(a.shape) != spec.get("shape"):
            raise GoldenError(
                f"{path}: array {name!r} is {a.dtype} {list(a.shape)}, index.json "
                f"says {spec.get('dtype')} {spec.get('shape')}"
            )
    return got


def load_golden(folder) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """Read a folder written by :func:`write_golden`: ``(index, {set name:
    {array name: array}})``, every array checked against ``index.json``
    (names, dtype, shape). A missing, truncated, corrupt or inconsistent file
    raises :class:`GoldenError` naming it."""
    path = Path(folder) / "index.json"

    def fail(why):
        raise GoldenError(f"{path}: {why}")

    if not path.is_file():
        fail("does not exist")
    try:
        index = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError
        fail(f"not valid JSON ({e})")
    if not isinstance(index, dict) or index.get("format") != "focus-golden":
        fail("not a focus-golden index (field 'format')")
    if type(index.get("version")) is not int or index["version"] != 1:
        fail(f"version {index.get('version')!r} is not supported (this reader reads 1)")
    try:
        params = FocusParams.from_dict(index.get("params"))
    except ValueError as e:
        fail(f"field 'params': {e}")
    if index.get("dtype") != params.dtype:
        fail(f"field 'dtype' {index.get('dtype')!r} differs from params.dtype {params.dtype!r}")
    files = index.get("files")
    if not isinstance(files, dict) or not files:
        fail("field 'files' must be a non-empty object")
    sets = {}
    for name, entry in files.items():
        arrays = entry.get("arrays") if isinstance(entry, dict) else None
        if not isinstance(arrays, dict) or not all(isinstance(a, dict) for a in arrays.values()):
            fail(f"files[{name!r}] needs an 'arrays' object of {{dtype, shape}} objects")
        if not name.endswith(".npz") or Path(name).name != name:
            fail(f"files[{name!r}] must name a .npz file in the folder")
        sets[name.removesuffix(".npz")] = _read_npz(path.parent / name, arrays)
    return index, sets
