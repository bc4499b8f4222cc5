"""Click parameter types and options shared by the project's command-line tools.

Every command that takes ``--params FILE`` also takes one option per
:class:`FocusParams` field (:func:`field_options`, generated from the
dataclass), applied on top of the file by :func:`point_params`. Bad input is
a usage error (exit status 2) naming the option.
"""

import dataclasses
import os
import re
import typing
from pathlib import Path

import click

from .params import DTYPES, FocusParams

__all__ = [
    "PARAMS_FILE",
    "ParamsFile",
    "OutputPath",
    "option_name",
    "field_options",
    "parse_field",
    "point_params",
]

_FIELDS = dataclasses.fields(FocusParams)
_HINTS = typing.get_type_hints(FocusParams)


class ParamsFile(click.Path):
    """A FocusParams file (.json or .toml): the option's value is the loaded,
    validated :class:`FocusParams`; a missing or invalid file is a usage error
    naming the file and the field."""

    name = "params"

    def __init__(self):
        super().__init__(exists=True, dir_okay=False)

    def convert(self, value, param, ctx):
        if isinstance(value, FocusParams):
            return value
        path = super().convert(value, param, ctx)
        try:
            return FocusParams.load(path)
        except (OSError, ValueError) as e:  # FocusParams.load: ValueError naming the problem
            self.fail(f"{path}: {e}", param, ctx)


PARAMS_FILE = ParamsFile()


class OutputPath(click.Path):
    """A file or folder the command creates (``click.Path`` arguments): its
    nearest existing ancestor must be a folder this process may write in."""

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        if not os.fspath(path):
            self.fail("the path is empty", param, ctx)
        target = there = Path(os.path.abspath(path))
        try:
            while not there.exists():
                there = there.parent
        except OSError as e:  # a name too long, a loop of links
            self.fail(f"cannot create {path}: {e.strerror}", param, ctx)
        if there != target and not there.is_dir():
            self.fail(f"cannot create {path}: {there} is not a folder", param, ctx)
        if not os.access(there, os.W_OK | (os.X_OK if there.is_dir() else 0)):
            self.fail(f"cannot write {path}: {there} is not writable", param, ctx)
        return path


def option_name(field: str) -> str:
    """The option of a FocusParams field: ``m_tile`` -> ``--m-tile``."""
    return "--" + field.replace("_", "-")


def parse_field(field: str, text: str):
    """One value of a field from its option's text (tuple fields: comma-separated)."""
    kind = _HINTS[field]
    try:
        if kind is bool:
            low = text.strip().lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return low in ("true", "1", "yes")
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            return tuple(item(x) for x in text.split(",") if x.strip())
        return kind(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"cannot read {text!r} as {getattr(kind, '__name__', kind)}",
            param_hint=option_name(field),
        ) from None


def field_options(multi: bool = False, exclude: tuple[str, ...] = ()):
    """Decorator adding one option per FocusParams field (values as text; the
    command gets them as keyword arguments named after the fields). ``multi``:
    each takes several values to sweep; ``exclude``: fields left out."""

    def decorate(fn):
        for f in reversed(_FIELDS):
            if f.name in exclude:
                continue
            kind = _HINTS[f.name]
            tuple_field = typing.get_origin(kind) is tuple
            if multi:
                sep = "';'" if tuple_field else "','"
                helptext = f"values of {f.name} to sweep, separated by {sep}"
            elif kind is bool:
                helptext = f"{f.name} (true/false; FocusParams default {f.default})"
            else:
                helptext = f"{f.name} (FocusParams default {f.default})"
            if f.name == "dtype" and not multi:
                helptext += f"; one of {', '.join(sorted(DTYPES))}"
            metavar = "LIST" if tuple_field else kind.__name__.upper()
            fn = click.option(
                option_name(f.name),
                f.name,
                type=str,
                default=None,
                metavar=metavar + ("S" if multi else ""),
                help=helptext,
            )(fn)
        return fn

    return decorate


def point_params(base: FocusParams | None, values: dict) -> FocusParams:
    """``base`` (default: FocusParams()) with the given field options applied.
    A value FocusParams rejects is a usage error naming its option."""
    changes = {k: parse_field(k, v) for k, v in values.items() if v is not None}
    try:
        return (base or FocusParams()).replace(**changes)
    except (TypeError, ValueError) as e:
        field = re.match(r"FocusParams\.(\w+)=", str(e))
        if field and field[1] in changes:
            raise click.BadParameter(str(e), param_hint=option_name(field[1])) from None
        raise click.UsageError(str(e)) from None
