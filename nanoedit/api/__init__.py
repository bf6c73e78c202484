"""The Python API: ``edit``, ``edit_many`` and ``generate`` run as the command line does
(one session wires them) and return frozen values; failures raise the errors of
:mod:`nanoedit.errors`, each carrying its exit code. ``import nanoedit`` exposes them."""

from nanoedit.api.calls import edit, edit_many, generate
from nanoedit.api.results import Batch, Image, Outcome, Result
from nanoedit.jobs import Dials

__all__ = ["Batch", "Dials", "Image", "Outcome", "Result", "edit", "edit_many", "generate"]
