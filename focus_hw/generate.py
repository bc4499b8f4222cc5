"""Verilog generation: one design point (FocusParams + unit) -> files + manifest.

A *unit* names the component to emit (:data:`UNITS`): ``"mac"`` (one
multiply-accumulate unit), ``"pe"`` (one processing element) or ``"array"``
(the systolic array). :func:`generate` elaborates and converts everything in
memory first, so a bad parameter raises before any file is written; then it
writes ``<top>.v`` and ``manifest.json`` atomically.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import amaranth
from amaranth.back import rtlil, verilog

from .fileio import atomic_write_text
from .params import FocusParams

__all__ = ["UNITS", "Manifest", "ManifestError", "build_unit", "top_name",
           "as_params", "convert_rtlil", "generate"]

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def _mac(p: FocusParams):
    from .arith import MAC
    return MAC(p.dtype, p.mac_pipeline)


def _pe(p: FocusParams):
    from .pe import PE
    return PE(p.dtype, p.mac_pipeline)


def _array(p: FocusParams):
    from .systolic import SystolicArray
    return SystolicArray(p)


#: Unit name -> constructor of the Amaranth component from a FocusParams.
UNITS: dict[str, Callable[[FocusParams], object]] = {"mac": _mac, "pe": _pe, "array": _array}


class ManifestError(ValueError):
    """A manifest that is missing, unreadable or does not match its files."""


def as_params(params) -> FocusParams:
    """Accept a FocusParams, a mapping of fields, or a .json/.toml path."""
    if isinstance(params, FocusParams):
        return params
    if isinstance(params, Mapping):
        return FocusParams.from_dict(dict(params))
    if isinstance(params, (str, Path)):
        return FocusParams.load(params)
    raise TypeError(f"params must be a FocusParams, a dict or a file path, not {type(params).__name__}")


def top_name(unit: str) -> str:
    """Name of the top Verilog module of ``unit``."""
    return f"focus_{unit}"


def build_unit(params, unit: str):
    """The (unelaborated) Amaranth component of ``unit`` for ``params``."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")
    return UNITS[unit](as_params(params))


def convert_rtlil(params, unit: str) -> str:
    """RTLIL text of ``unit`` (what the synthesis flow reads)."""
    return rtlil.convert(build_unit(params, unit), name=top_name(unit), emit_src=False)


_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?(\\\S+|\w+)\s*;")


def _top_ports(text: str, top: str) -> list[dict]:
    """Ports (name, direction, width) declared in module ``top`` of ``text``."""
    ports, inside = [], False
    for line in text.splitlines():
        if line.startswith("module "):
            inside = re.match(rf"module\s+\\?{re.escape(top)}\s*\(", line) is not None
        elif inside and line.startswith("endmodule"):
            break
        elif inside and (m := _PORT.match(line)):
            width = abs(int(m[2]) - int(m[3])) + 1 if m[2] else 1
            ports.append({"name": m[4].lstrip("\\"), "direction": m[1], "width": width})
    return ports


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What :func:`generate` wrote: the design point, its top module, its
    ports and the sha256 of every file (relative names)."""

    unit: str
    top: str
    params: dict
    ports: list[dict]
    files: dict[str, str]
    amaranth_version: str = amaranth.__version__
    version: int = MANIFEST_VERSION
    digest: str = field(default="")

    @property
    def focus_params(self) -> FocusParams:
        return FocusParams.from_dict(self.params)

    @property
    def verilog(self) -> str:
        """Name of the Verilog file (relative to the manifest's folder)."""
        return f"{self.top}.v"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def load(cls, out_dir) -> "Manifest":
        path = Path(out_dir) / MANIFEST
        try:
            data = json.loads(path.read_text())
            manifest = cls(**data)
        except FileNotFoundError:
            raise ManifestError(f"{path}: no manifest") from None
        except (json.JSONDecodeError, TypeError) as e:
            raise ManifestError(f"{path}: unreadable manifest ({e})") from None
        if manifest.version != MANIFEST_VERSION:
            raise ManifestError(f"{path}: manifest version {manifest.version}, expected {MANIFEST_VERSION}")
        return manifest

    def verify(self, out_dir) -> None:
        """Raise :class:`ManifestError` unless every listed file exists with
        its recorded sha256 and the params are valid and match the digest."""
        out_dir = Path(out_dir)
        for name, digest in self.files.items():
            path = out_dir / name
            if not path.is_file():
                raise ManifestError(f"{path}: listed in the manifest but missing")
            if _sha256(path.read_bytes()) != digest:
                raise ManifestError(f"{path}: sha256 does not match the manifest")
        try:
            params = self.focus_params
        except (TypeError, ValueError) as e:
            raise ManifestError(f"{out_dir / MANIFEST}: bad params ({e})") from None
        if params.digest() != self.digest:
            raise ManifestError(f"{out_dir / MANIFEST}: params do not match their digest")


def generate(params, out_dir, unit: str = "array") -> Manifest:
    """Write the Verilog of ``unit`` for ``params`` and ``manifest.json`` to
    ``out_dir``. Nothing is written unless elaboration and conversion succeed."""
    params = as_params(params)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: output path exists and is not a folder")
    top = top_name(unit)
    text = verilog.convert(build_unit(params, unit), name=top, emit_src=False)
    manifest = Manifest(unit=unit, top=top, params=params.to_dict(), ports=_top_ports(text, top),
                        files={f"{top}.v": _sha256(text.encode())}, digest=params.digest())
    atomic_write_text(out_dir / manifest.verilog, text)
    atomic_write_text(out_dir / MANIFEST, manifest.to_json())
    return manifest
