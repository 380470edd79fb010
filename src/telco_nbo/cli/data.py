"""``telco-nbo data ...``: make, import and validate data folders.

The commands themselves live in ``data_generate.py`` and ``data_import.py`` and register on
:data:`app`, so the generator and the importers can evolve independently.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Make, import and validate data folders.", no_args_is_help=True)
