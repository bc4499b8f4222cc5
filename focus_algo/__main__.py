"""``python -m focus_algo`` runs the ``focus`` command."""

from .cli import main

main(prog_name="focus")
