"""``telco-nbo data validate`` and ``telco-nbo data import-csv``.

Registers on :data:`telco_nbo.cli.data.app` when imported (``cli/__init__.py`` imports it).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from telco_nbo.cli._common import out, user_errors
from telco_nbo.cli.data import app


@app.command("validate")
def validate(
    path: Path = typer.Argument(..., help="A data folder (<table>.parquet or <table>.csv per table)."),
) -> None:
    """Check a data folder against the contract and the rules between tables.

    Prints the rows per table; exits 2 with every problem listed when the folder is invalid.
    """
    with user_errors():
        from rich.table import Table

        from telco_nbo.data.io import load_world, row_counts, table_files

        started = time.perf_counter()
        world = load_world(path, validate=True)
        seconds = time.perf_counter() - started
        files = table_files(path)
        table = Table(title=f"{path}", title_justify="left")
        table.add_column("table")
        table.add_column("rows", justify="right")
        table.add_column("file")
        for name, n in row_counts(world.tables).items():
            f = files.get(name)
            table.add_row(name, f"{n:,}", f.name if f else "")
        out.print(table)
        source = world.meta.get("source")
        as_of = world.meta.get("as_of")
        extra = ", ".join(x for x in (f"source {source}" if source else "", f"as of {as_of}" if as_of else "") if x)
        out.print(f"[green]valid[/] ({seconds:.1f} s{', ' + extra if extra else ''})", highlight=False)


@app.command("import-csv")
def import_csv(
    path: Path = typer.Argument(..., help="A flat churn table, one row per customer (CSV)."),
    mapping: str = typer.Option("ibm", "--mapping", "-m", help="'ibm' (built in) or a mapping YAML file."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="The data folder to create."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Snapshot date of the flat table, YYYY-MM-DD (default: the mapping's)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out folder."),
) -> None:
    """Map a flat one-row-per-customer churn table into a data folder.

    Nothing is written unless the whole input is valid.
    """
    with user_errors():
        from telco_nbo.data.importers import import_flat_csv, load_mapping
        from telco_nbo.data.io import row_counts, write_world

        spec = load_mapping(mapping)
        world = import_flat_csv(path, spec, as_of=as_of)
        written = write_world(world, out_dir, overwrite=overwrite)
        counts = row_counts(world.tables)
        churned = world.meta.get("n_churned")
        out.print(
            f"[green]imported[/] {counts['accounts']:,} accounts, {counts['lines']:,} lines "
            f"({churned:,} churned) as of {world.meta['as_of']} -> {written}",
            highlight=False,
            soft_wrap=True,
        )
