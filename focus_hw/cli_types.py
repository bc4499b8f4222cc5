"""Click parameter types shared by the project's command-line tools."""

import click

from .params import FocusParams

__all__ = ["PARAMS_FILE", "ParamsFile"]


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
