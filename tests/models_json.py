"""``nanoedit/catalog/models.json``, made from ``nanoedit/catalog/models.toml``.

``python tests/models_json.py`` rewrites the JSON after the TOML was edited; ``test_catalog.py``
fails when the two differ. The TOML is what people read and correct; the JSON is what a run
reads, since parsing TOML at every start would cost more than the rest of the catalog.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nanoedit.catalog.models import SHIPPED_JSON, SHIPPED_TOML, json_of_toml

PACKAGE = Path(__file__).resolve().parent.parent / "nanoedit" / "catalog"


def expected_json() -> str:
    """What models.json must hold for the models.toml there is."""
    return json_of_toml((PACKAGE / SHIPPED_TOML).read_text(encoding="utf-8"))


if __name__ == "__main__":
    (PACKAGE / SHIPPED_JSON).write_text(expected_json(), encoding="utf-8")
    sys.stdout.write(f"wrote nanoedit/catalog/{SHIPPED_JSON}\n")
