"""Sphinx configuration of the Focus documentation (``make docs``)."""

import importlib
import importlib.metadata
import pkgutil
import shutil
import sys
import types
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

project = "Focus hardware generator"
author = "the Focus hardware generator authors"
copyright = author  # the footer: "Copyright (c) the Focus hardware generator authors"
release = importlib.metadata.version("focus-hw")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_click",
]

exclude_patterns = ["_build"]
# Option names stay as typed: no "--model-name" turned into an en dash.
smartquotes = False
templates_path = ["_templates"]

# The API pages are generated from the packages on every build (docs/api/generated is
# not committed): a new public module is documented without editing docs/, private
# modules (leading underscore) are left out.
autosummary_generate = True
# Written afresh on every build, so a renamed or removed module leaves no stale page.
shutil.rmtree(Path(__file__).parent / "api" / "generated", ignore_errors=True)
autosummary_imported_members = False
# Members are documented where they are defined (not where a package re-exports them).
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_class_signature = "separated"

# Docstrings are reST prose with optional numpydoc sections (Parameters, Returns...).
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# Components list their ports under "Members", laid out like Parameters.
napoleon_custom_sections = [("Members", "params_style")]

# autosummary imports every submodule to list it; ``python -m focus_algo`` runs the CLI on
# import, so a stand-in keeps it from parsing sphinx-build's arguments (it is private anyway).
sys.modules.setdefault("focus_algo.__main__", types.ModuleType("focus_algo.__main__"))

html_theme = "furo"
html_title = f"Focus {release}"


class OptionalAutomodule(SphinxDirective):
    """``.. optional-automodule:: NAME``: autodoc NAME if it imports, else a note.

    For units that are being added (e.g. ``focus_hw.sic``): the page builds
    cleanly before and after the package exists. With ``:submodules:`` the
    package's public submodules follow. Everything is documented with
    ``:no-index:``; the canonical entries are on the generated API pages.
    """

    required_arguments = 1
    option_spec = {"submodules": directives.flag}

    def run(self):
        name = self.arguments[0]
        try:
            module = importlib.import_module(name)
        except ImportError:
            return self._parse([f"``{name}`` is not part of this build yet."])
        names = [name]
        if "submodules" in self.options and hasattr(module, "__path__"):
            names += [
                f"{name}.{info.name}"
                for info in pkgutil.iter_modules(module.__path__)
                if not info.name.startswith("_")
            ]
        lines = []
        for n in names:
            lines += [f".. automodule:: {n}", "   :members:", "   :no-index:", ""]
        return self._parse(lines)

    def _parse(self, lines):
        container = nodes.container()
        self.state.nested_parse(StringList(lines), self.content_offset, container)
        return container.children


def setup(app):
    app.add_directive("optional-automodule", OptionalAutomodule)
