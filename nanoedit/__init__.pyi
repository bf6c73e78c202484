# What `import nanoedit` offers, for type checkers: __init__.py loads the API on first use.
from nanoedit.api import Batch as Batch
from nanoedit.api import Dials as Dials
from nanoedit.api import Image as Image
from nanoedit.api import Outcome as Outcome
from nanoedit.api import Result as Result
from nanoedit.api import edit as edit
from nanoedit.api import edit_many as edit_many
from nanoedit.api import generate as generate

__version__: str
__all__ = [
    "Batch", "Dials", "Image", "Outcome", "Result", "__version__", "edit", "edit_many", "generate",
]  # fmt: skip
