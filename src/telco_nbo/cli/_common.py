"""Helpers shared by the CLI modules: error reporting and progress bars."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer
from rich.console import Console

from telco_nbo.errors import TelcoNboError

# Piped output (CI logs, `| tee`) would otherwise wrap tables at 80 columns.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
out = Console(width=None if sys.stdout.isatty() else 140)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`TelcoNboError` into a red message and exit code 2.

    Anything else propagates: it is a bug and its traceback is wanted.
    """
    try:
        yield
    except TelcoNboError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
