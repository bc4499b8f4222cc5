"""Sparse traces: the SIC decisions of one run, per GEMM site and layer.

A trace records, for each GEMM site of :data:`SITES` and each decoder layer,
which vectors of the site's input were zero, which were similar to an earlier
vector, and the root token each vector's group points to (:ref:`formats-trace`). The
performance model (``sim``) consumes it.

File format ("focus-trace", version 1)
--------------------------------------
One ``.safetensors`` file per run. For every site present (any subset of
:data:`SITES`) it holds three tensors; ``L`` = layers, ``T`` = visual tokens,
``V`` = vectors per token of that site (``ceil(width / vector_size)``, so it
may differ between sites):

* ``"{site}.zero"`` and ``"{site}.similar"``: uint8, shape
  ``(L, 1, T, ceil(V / 8))`` -- the (L, 1, T, V) bool masks packed along the
  last axis with ``numpy.packbits(..., bitorder="little")`` (vector ``v`` is
  bit ``v % 8`` of byte ``v // 8``; padding bits are 0);
* ``"{site}.root"``: int32, shape ``(L, 1, T, V)`` -- the token index of each
  vector's group root (its own index unless it is similar).

The safetensors ``__metadata__`` (string to string) holds:

* ``"format"``: ``"focus-trace"``; ``"version"``: ``"1"``;
* ``"meta"``: JSON object with the :class:`TraceMeta` fields (``params`` as
  ``FocusParams.to_dict()``, ``extra`` a JSON object);
* ``"vectors"``: JSON object ``{site: V}`` for the sites present.

Invariants checked on load (and by :meth:`SparseTrace.validate`): shapes
agree with the metadata, dtypes are as above, ``0 <= root < T``, a vector is
never both zero and similar, ``root == own index`` where not similar, and a
similar vector points backwards (``root < own index``) to a vector that is
itself neither zero nor similar.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import safetensors.numpy

from focus_hw.fileio import atomic_write_bytes
from focus_hw.params import FocusParams

__all__ = [
    "SITES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "TraceError",
    "SiteTrace",
    "TraceMeta",
    "SparseTrace",
]

#: GEMM sites whose inputs SIC compresses (k/v reuse q_proj, up reuses gate).
SITES = ("q_proj", "query", "o_proj", "gate_proj", "down_proj")
FORMAT_NAME = "focus-trace"
FORMAT_VERSION = 1


class TraceError(ValueError):
    """A trace file or trace object is malformed."""


@dataclass
class SiteTrace:
    """SIC decisions of one GEMM site: arrays of shape (L, 1, T, V)."""

    zero: np.ndarray
    similar: np.ndarray
    root: np.ndarray

    @property
    def num_vectors(self) -> int:
        """Vectors per token (V)."""
        return self.root.shape[-1]


@dataclass
class TraceMeta:
    """What a trace was taken from (patches per frame = height * width)."""

    model: str
    dataset: str
    num_tokens: int
    frames: int
    height: int
    width: int
    num_layers: int
    params: FocusParams
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "num_tokens": self.num_tokens,
            "frames": self.frames,
            "height": self.height,
            "width": self.width,
            "num_layers": self.num_layers,
            "params": self.params.to_dict(),
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TraceMeta:
        """Inverse of :meth:`to_dict`; a bad field raises :class:`TraceError`."""
        if not isinstance(d, dict):
            raise TraceError(f"meta must be a JSON object, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        if set(d) - set(names) or set(names) - set(d) - {"extra"}:
            raise TraceError(f"meta fields {sorted(d)} are not the fields {names}")
        for name in ("model", "dataset"):
            if not isinstance(d[name], str):
                raise TraceError(f"meta field {name!r} must be a string, got {d[name]!r}")
        for name in ("num_tokens", "frames", "height", "width", "num_layers"):
            if not isinstance(d[name], int) or isinstance(d[name], bool) or d[name] < 0:
                raise TraceError(f"meta field {name!r} must be an integer >= 0, got {d[name]!r}")
        if not isinstance(d.get("extra", {}), dict):
            raise TraceError(f"meta field 'extra' must be a JSON object, got {d['extra']!r}")
        try:
            params = FocusParams.from_dict(d["params"])
        except ValueError as e:
            raise TraceError(f"meta field 'params': {e}") from None
        return cls(**{**d, "params": params})


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


@dataclass
class SparseTrace:
    """Per-site, per-layer SIC masks of one run plus its metadata."""

    meta: TraceMeta
    sites: dict[str, SiteTrace]

    # -- construction -----------------------------------------------------------
    @classmethod
    def from_results(cls, meta: TraceMeta, results: dict) -> SparseTrace:
        """Build from ``{site: [result per layer]}``.

        Each result is a :class:`~focus_algo.sic.SICResult` (or anything with
        (T, V) ``zero``, ``similar`` and ``root`` attributes, torch or numpy).
        """
        sites = {}
        for site, layers in results.items():
            if len(layers) != meta.num_layers:
                raise TraceError(
                    f"site {site!r}: {len(layers)} results but meta.num_layers={meta.num_layers}"
                )
            try:
                stack = {
                    name: np.stack([_as_numpy(getattr(r, name)) for r in layers])[:, None]
                    for name in ("zero", "similar", "root")
                }
            except ValueError as e:
                raise TraceError(f"site {site!r}: results of different shapes ({e})") from None
            sites[site] = SiteTrace(
                zero=stack["zero"].astype(bool),
                similar=stack["similar"].astype(bool),
                root=stack["root"].astype(np.int32),
            )
        trace = cls(meta=meta, sites=sites)
        trace.validate()
        return trace

    # -- checks -----------------------------------------------------------------
    def validate(self, source: str = "trace") -> None:
        """Raise :class:`TraceError` (mentioning ``source``) if inconsistent."""

        def fail(msg):
            raise TraceError(f"{source}: {msg}")

        m = self.meta
        if m.num_tokens != m.frames * m.height * m.width:
            fail(
                f"num_tokens={m.num_tokens} != frames*height*width={m.frames}*{m.height}*{m.width}"
            )
        unknown = sorted(set(self.sites) - set(SITES))
        if unknown:
            fail(f"unknown site(s) {unknown}; known sites are {list(SITES)}")
        for site, st in self.sites.items():
            for name in ("zero", "similar", "root"):
                a = getattr(st, name)
                want = np.int32 if name == "root" else np.bool_
                if not isinstance(a, np.ndarray) or a.dtype != want:
                    fail(
                        f"{site}.{name} must be a numpy {np.dtype(want)} array, got "
                        f"{getattr(a, 'dtype', type(a).__name__)}"
                    )
                if (
                    a.ndim != 4
                    or a.shape[:3] != (m.num_layers, 1, m.num_tokens)
                    or a.shape != st.root.shape
                ):
                    fail(
                        f"{site}.{name} has shape {a.shape}, expected "
                        f"(L={m.num_layers}, 1, T={m.num_tokens}, V) with V equal "
                        f"for zero/similar/root (root shape {st.root.shape})"
                    )
            if st.num_vectors < 1:
                fail(f"{site} has V=0 vectors per token")
            root, sim, zero = st.root, st.similar, st.zero
            if root.size and (root.min() < 0 or root.max() >= m.num_tokens):
                fail(
                    f"{site}.root values must lie in [0, {m.num_tokens}), found "
                    f"[{root.min()}, {root.max()}]"
                )
            own = np.arange(m.num_tokens, dtype=np.int32)[None, None, :, None]
            if np.any(zero & sim):
                fail(f"{site}: {int(np.sum(zero & sim))} vector(s) are both zero and similar")
            if np.any(~sim & (root != own)):
                fail(
                    f"{site}.root differs from the own token index at "
                    f"{int(np.sum(~sim & (root != own)))} non-similar vector(s)"
                )
            if np.any(sim & (root >= own)):
                fail(
                    f"{site}: {int(np.sum(sim & (root >= own)))} similar vector(s) "
                    f"do not point to an earlier token"
                )
            bad_root = (
                np.take_along_axis(sim, root, axis=2) | np.take_along_axis(zero, root, axis=2)
            ) & sim
            if np.any(bad_root):
                fail(
                    f"{site}: {int(np.sum(bad_root))} similar vector(s) point to a "
                    f"root that is itself zero or similar"
                )

    # -- statistics -------------------------------------------------------------
    def _select(self, site, layer) -> list[SiteTrace]:
        if site is None:
            names = list(self.sites)
        elif site in self.sites:
            names = [site]
        else:
            raise KeyError(f"site {site!r} not in trace (sites: {list(self.sites)})")
        if layer is not None and not 0 <= layer < self.meta.num_layers:
            raise IndexError(f"layer {layer} out of range for {self.meta.num_layers} layers")
        sl = slice(None) if layer is None else slice(layer, layer + 1)
        return [
            SiteTrace(self.sites[n].zero[sl], self.sites[n].similar[sl], self.sites[n].root[sl])
            for n in names
        ]

    def sparsity(self, site: str | None = None, layer: int | None = None) -> float:
        """(zero + similar vectors) / all vectors over the selected sites/layers."""
        parts = self._select(site, layer)
        total = sum(p.zero.size for p in parts)
        if total == 0:
            raise ValueError("empty selection: no vectors")
        return sum(int(p.zero.sum()) + int(p.similar.sum()) for p in parts) / total

    def weighted_sparsity(self, weights: dict[str, float]) -> float:
        """Average of per-site, per-layer sparsities weighted by ``weights[site]``
        (the GEMM's weight size, :ref:`method-sparsity`), over the sites present."""
        missing = sorted(set(self.sites) - set(weights))
        if missing:
            raise KeyError(f"no weight given for site(s) {missing}")
        num = den = 0.0
        for site in self.sites:
            for layer in range(self.meta.num_layers):
                num += weights[site] * self.sparsity(site, layer)
                den += weights[site]
        return num / den

    def summary(self) -> pd.DataFrame:
        """One row per site and layer: fractions zero, similar, sparsity."""
        rows = []
        for site, st in self.sites.items():
            per_layer = st.zero[0, 0].size
            for layer in range(self.meta.num_layers):
                z = int(st.zero[layer].sum())
                s = int(st.similar[layer].sum())
                rows.append(
                    {
                        "site": site,
                        "layer": layer,
                        "vectors": per_layer,
                        "zero": z / per_layer,
                        "similar": s / per_layer,
                        "sparsity": (z + s) / per_layer,
                    }
                )
        return pd.DataFrame(
            rows, columns=["site", "layer", "vectors", "zero", "similar", "sparsity"]
        )

    # -- file I/O ---------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The safetensors bytes of the file format described above."""
        self.validate()
        tensors, vectors = {}, {}
        for site, st in self.sites.items():
            tensors[f"{site}.zero"] = np.packbits(st.zero, axis=-1, bitorder="little")
            tensors[f"{site}.similar"] = np.packbits(st.similar, axis=-1, bitorder="little")
            tensors[f"{site}.root"] = np.ascontiguousarray(st.root)
            vectors[site] = st.num_vectors
        metadata = {
            "format": FORMAT_NAME,
            "version": str(FORMAT_VERSION),
            "meta": json.dumps(self.meta.to_dict(), sort_keys=True),
            "vectors": json.dumps(vectors),
        }
        return safetensors.numpy.save(tensors, metadata=metadata)

    def save(self, path) -> None:
        """Write the trace to ``path`` atomically (temp file + rename)."""
        atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path) -> SparseTrace:
        """Read and check a trace file; raises :class:`TraceError` naming it."""
        path = Path(path)
        if not path.is_file():
            raise TraceError(f"{path}: trace file does not exist")
        data = path.read_bytes()
        return cls._from_bytes(data, str(path))

    @classmethod
    def _from_bytes(cls, data: bytes, source: str) -> SparseTrace:
        def fail(msg):
            raise TraceError(f"{source}: {msg}")

        header = _read_metadata(data, source)
        fmt = header.get("format")
        if fmt != FORMAT_NAME:
            fail(f"not a {FORMAT_NAME} file (format field is {fmt!r})")
        version = header.get("version")
        if version != str(FORMAT_VERSION):
            fail(
                f"format version {version} is not supported (this reader supports "
                f"version {FORMAT_VERSION})"
            )
        try:
            meta = TraceMeta.from_dict(json.loads(header["meta"]))
            vectors = json.loads(header["vectors"])
        except (KeyError, TypeError, ValueError, RecursionError) as e:
            fail(f"bad metadata ({type(e).__name__}: {e})")
        if not isinstance(vectors, dict):
            fail(f"metadata 'vectors' must be a JSON object, got {vectors!r}")
        try:
            tensors = safetensors.numpy.load(data)
        except Exception as e:  # safetensors raises its own error type
            fail(f"truncated or corrupt tensor data ({e})")

        names = {}
        for key in tensors:
            site, _, kind = key.rpartition(".")
            if kind not in ("zero", "similar", "root"):
                fail(f"unexpected tensor {key!r}")
            names.setdefault(site, set()).add(kind)
        unknown = sorted(set(names) - set(SITES))
        if unknown:
            fail(f"unknown site(s) {unknown}; known sites are {list(SITES)}")
        if set(names) != set(vectors):
            fail(f"sites in tensors {sorted(names)} differ from the metadata {sorted(vectors)}")
        sites = {}
        for site in [s for s in SITES if s in names]:
            missing = sorted({"zero", "similar", "root"} - names[site])
            if missing:
                fail(f"site {site!r} lacks tensor(s) {[f'{site}.{k}' for k in missing]}")
            v = vectors[site]
            if not isinstance(v, int) or v < 1:
                fail(f"metadata gives V={v!r} vectors for site {site!r}")
            packed = (meta.num_layers, 1, meta.num_tokens, (v + 7) // 8)
            masks = {}
            for kind in ("zero", "similar"):
                t = tensors[f"{site}.{kind}"]
                if t.dtype != np.uint8 or t.shape != packed:
                    fail(
                        f"{site}.{kind} is {t.dtype} {t.shape}, expected packed uint8 "
                        f"{packed} for L={meta.num_layers}, T={meta.num_tokens}, V={v}"
                    )
                bits = np.unpackbits(t, axis=-1, bitorder="little")
                if bits[..., v:].any():
                    fail(f"{site}.{kind} has padding bits set beyond V={v}")
                masks[kind] = bits[..., :v].astype(bool)
            root = tensors[f"{site}.root"]
            if root.dtype != np.int32 or root.shape != packed[:3] + (v,):
                fail(
                    f"{site}.root is {root.dtype} {root.shape}, expected int32 {packed[:3] + (v,)}"
                )
            sites[site] = SiteTrace(zero=masks["zero"], similar=masks["similar"], root=root)
        trace = cls(meta=meta, sites=sites)
        trace.validate(source)
        return trace


def _read_metadata(data: bytes, source: str) -> dict:
    """The ``__metadata__`` of a safetensors blob, with errors naming ``source``."""
    if len(data) < 8:
        raise TraceError(f"{source}: truncated or not a safetensors file ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise TraceError(
            f"{source}: truncated or not a safetensors file (header of "
            f"{n} bytes, file has {len(data)} bytes)"
        )
    try:
        header = json.loads(data[8 : 8 + n])
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise TraceError(f"{source}: corrupt safetensors header ({e})") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        raise TraceError(f"{source}: no focus-trace metadata in the safetensors header")
    return meta
