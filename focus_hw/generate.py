"""Verilog generation: one design point (FocusParams + unit) -> files + manifest.

A *unit* names the component to emit (:data:`UNITS`): ``"mac"`` (one
multiply-accumulate unit), ``"pe"`` (one processing element), ``"array"``
(the systolic array), ``"focus"`` (the integrated accelerator) and the SIC's
and SEC's units. A unit's component may instantiate Verilog modules by
name (``Instance``) and list their components in ``instanced_modules()``: the
array is a shell around one module per distinct PE class
(:func:`focus_hw.systolic.pe_classes`), so each class is elaborated once.
:func:`generate` elaborates and converts everything in memory first, so a bad
parameter raises before any file is written; then it writes ``<top>.v`` (the
top, then the instanced modules) and ``manifest.json`` atomically.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import amaranth
from amaranth.back import rtlil
from amaranth.back.verilog import _convert_rtlil_text  # its one Yosys run (amaranth 0.5)
from amaranth.hdl import Const, Value
from amaranth.lib import wiring

from .fileio import atomic_write_text
from .params import FocusParams
from .sec.concentrator import SEC_UNITS
from .sic import SIC_UNITS

__all__ = [
    "UNITS",
    "Manifest",
    "ManifestError",
    "build_unit",
    "top_name",
    "unit_modules",
    "drop_zero_init",
    "rtlil_modules",
    "rtlil_ports",
    "as_params",
    "convert_rtlil",
    "modules_rtlil",
    "modules_verilog",
    "generate",
]

MANIFEST = "manifest.json"
#: 2: the Verilog file may hold several separately elaborated modules (``modules``).
MANIFEST_VERSION = 2
_TOP = "attribute \\top 1\n"
#: A port of an RTLIL module: width, direction, index, name.
_RTLIL_PORT = re.compile(r"^  wire width (\d+) (input|output|inout) (\d+) +\\(\S+)$", re.M)
_MODULE_MARK = re.compile(r"^# module (\S+)$", re.M)
_MEMINIT = re.compile(r"^  cell \$meminit_v2 \S+\n(?:    .*\n)*?  end\n", re.M)
_ZERO_DATA = re.compile(r"^    connect \\DATA \d+'0+$", re.M)


def _mac(p: FocusParams):
    from .arith import MAC

    return MAC(p.dtype, p.mac_pipeline, acc_format=p.acc_format)


def _pe(p: FocusParams):
    from .pe import PE

    return PE(p.dtype, p.mac_pipeline, acc_format=p.acc_format)


def _array(p: FocusParams):
    from .systolic import SystolicArray

    return SystolicArray(p, pe_modules=f"{top_name('array')}.pe")


def _focus(p: FocusParams):
    from .accelerator import FocusAccelerator, check_accelerator

    check_accelerator(p)  # before the component exists: no unused-elaboratable warning
    return FocusAccelerator(p, pe_modules=f"{top_name('focus')}.pe")


#: Unit name -> constructor of the Amaranth component from a FocusParams.
UNITS: dict[str, Callable[[FocusParams], object]] = {
    "mac": _mac,
    "pe": _pe,
    "array": _array,
    "focus": _focus,  # the integrated accelerator
}
UNITS.update(SEC_UNITS)  # "sec" and its parts: analyzer, select, encoder
UNITS.update(SIC_UNITS)  # "sic" and its parts: dot, argmax, table, map, average


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
    raise TypeError(
        f"params must be a FocusParams, a dict or a file path, not {type(params).__name__}"
    )


def top_name(unit: str) -> str:
    """Name of the top Verilog module of ``unit``."""
    return f"focus_{unit}"


def build_unit(params, unit: str):
    """The (unelaborated) Amaranth component of ``unit`` for ``params``."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")
    return UNITS[unit](as_params(params))


def unit_modules(params, unit: str) -> dict:
    """Verilog module name -> component of ``unit``: its top first, then the
    modules the top instantiates by name (each elaborated once)."""
    component = build_unit(params, unit)
    modules = {top_name(unit): component}
    if hasattr(component, "instanced_modules"):
        modules.update(component.instanced_modules())
    return modules


def _port_members(component):
    """The signature members of ``component`` that are wires: a stream that is
    always ready (or always valid) has a constant there, not a port."""
    return [
        (path, member, value)
        for path, member, value in component.signature.flatten(component)
        if not isinstance(Value.cast(value), Const)
    ]


def modules_rtlil(modules: dict) -> str:
    """RTLIL text of name -> component ``modules`` (each converted on its own,
    after a ``# module NAME`` comment; only the first, the top, keeps the
    ``top`` attribute)."""
    texts = []
    for i, (name, component) in enumerate(modules.items()):
        ports = None
        if isinstance(component, wiring.Component):
            ports = [Value.cast(value) for _, _, value in _port_members(component)]
        text = rtlil.convert(component, name=name, emit_src=False, ports=ports)
        texts.append(f"# module {name}\n" + (text if i == 0 else text.replace(_TOP, "", 1)))
    return "\n".join(texts)


def drop_zero_init(text: str) -> str:
    """RTLIL ``text`` without its ``$meminit_v2`` cells that write only
    zeros, an Amaranth memory's default contents (a ROM's stay): for an SRAM
    macro, which has no initial contents, and for simulators that start
    memories at zero. Amaranth 0.5 spells out every bit, 13 Mbit at the
    default accelerator."""
    return _MEMINIT.sub(lambda m: "" if _ZERO_DATA.search(m.group()) else m.group(), text)


def rtlil_modules(rtlil_text: str) -> list[str]:
    """Names of the separately converted modules of a :func:`modules_rtlil`
    text, its top first."""
    return _MODULE_MARK.findall(rtlil_text)


def rtlil_ports(rtlil_text: str) -> list[dict]:
    """Ports (name, direction, width) of the top module of a
    :func:`modules_rtlil` text, in their Verilog order: a component's
    signature members (paths joined with ``__``; a stream that is always
    ready or valid has a constant there, not a port) and the clock and reset
    inputs of the clock domains it uses."""
    start = rtlil_text.index(_TOP + "module ")
    top = rtlil_text[start : rtlil_text.index("\nend\n", start)]
    ports = sorted(_RTLIL_PORT.findall(top), key=lambda port: int(port[2]))
    return [{"name": n, "direction": d, "width": int(w)} for w, d, _, n in ports]


def modules_verilog(modules: dict) -> str:
    """Verilog text of ``modules``: their RTLIL through one Yosys run, as
    ``amaranth.back.verilog.convert`` does for one module."""
    return _convert_rtlil_text(modules_rtlil(modules))


def convert_rtlil(params, unit: str) -> str:
    """RTLIL text of ``unit``, every module of :func:`unit_modules` (what the
    synthesis flow reads)."""
    return modules_rtlil(unit_modules(params, unit))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What :func:`generate` wrote: the design point, its top module, its
    ports, the modules of the Verilog file (top first, each elaborated on its
    own) and the sha256 of every file (relative names)."""

    unit: str
    top: str
    params: dict
    ports: list[dict]
    modules: list[str]
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
    def load(cls, out_dir) -> Manifest:
        path = Path(out_dir) / MANIFEST
        try:
            data = json.loads(path.read_text())
            version = data.get("version") if isinstance(data, dict) else None
            if version != MANIFEST_VERSION:
                raise ManifestError(
                    f"{path}: manifest version {version}, expected {MANIFEST_VERSION}"
                )
            return cls(**data)
        except FileNotFoundError:
            raise ManifestError(f"{path}: no manifest") from None
        except (json.JSONDecodeError, TypeError) as e:
            raise ManifestError(f"{path}: unreadable manifest ({e})") from None

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


def generate(params, out_dir, unit: str = "array", *, rtlil: str | None = None) -> Manifest:
    """Write the Verilog of ``unit`` for ``params`` and ``manifest.json`` to
    ``out_dir``; ``rtlil``: the unit's :func:`convert_rtlil` text, if already
    made (it is not elaborated again). Nothing is written unless elaboration
    and conversion succeed."""
    params = as_params(params)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: output path exists and is not a folder")
    top = top_name(unit)
    if rtlil is None:
        rtlil = convert_rtlil(params, unit)
    text = _convert_rtlil_text(rtlil)
    manifest = Manifest(
        unit=unit,
        top=top,
        params=params.to_dict(),
        ports=rtlil_ports(rtlil),
        modules=rtlil_modules(rtlil),
        files={f"{top}.v": _sha256(text.encode())},
        digest=params.digest(),
    )
    atomic_write_text(out_dir / manifest.verilog, text)
    atomic_write_text(out_dir / MANIFEST, manifest.to_json())
    return manifest
