"""Helpers shared by the CLI modules: error reporting and progress bars."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console

from telco_nbo.errors import TelcoNboError

console = Console(stderr=True)
out = Console()


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
