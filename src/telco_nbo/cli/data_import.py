"""``telco-nbo data validate``, ``import-csv``, ``fields``, ``suggest-mapping`` and ``import``.

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

        from telco_nbo.data import attributes
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
        if attributes.TABLE in world.tables:
            extra = world.tables[attributes.TABLE]
            table.add_row(attributes.TABLE, f"{len(extra):,}", f"{extra.shape[1] - 1} account_x_ feature(s)")
        out.print(table)
        source = world.meta.get("source")
        as_of = world.meta.get("as_of")
        extra = ", ".join(x for x in (f"source {source}" if source else "", f"as of {as_of}" if as_of else "") if x)
        out.print(f"[green]valid[/] ({seconds:.1f} s{', ' + extra if extra else ''})", highlight=False)


@app.command("import-csv")
def import_csv(
    path: Path = typer.Argument(..., help="A flat churn table, one row per customer (CSV or Parquet)."),
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
            f"[green]imported[/] {counts['accounts']:,} accounts, {counts['lines']:,} lines, "
            f"{counts['usage_monthly']:,} usage rows, {counts['support_tickets']:,} tickets "
            f"({churned:,} churned) as of {world.meta['as_of']} -> {written}",
            highlight=False,
            soft_wrap=True,
        )
        print_import_report(world)


def print_import_report(world) -> None:  # noqa: ANN001 - a World; kept import-free for --help speed
    """Print what became of every input column, the notes, and the constant model features."""
    from rich.table import Table

    from telco_nbo.features import build_account_features, constant_columns, to_model_matrix

    for note in world.meta.get("notes", []):
        out.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    accounting = world.meta.get("columns", [])
    if accounting:
        n = {s: sum(a["status"] == s for a in accounting) for s in ("mapped", "passthrough", "dropped")}
        table = Table(
            title=f"{len(accounting)} input columns: {n['mapped']} mapped, {n['passthrough']} passed through, "
            f"{n['dropped']} dropped",
            title_justify="left",
        )
        cols = ["table", "column", "status", "detail"] if "table" in accounting[0] else ["column", "status", "detail"]
        for col in cols:
            table.add_column(col)
        for a in accounting:
            table.add_row(*[a[c] for c in cols])
        out.print(table)
    X = to_model_matrix(build_account_features(world.tables, world.as_of_date()))
    const = constant_columns(X)
    out.print(
        f"model features: {X.shape[1] - len(const)} of {X.shape[1]} vary; {len(const)} constant "
        f"(left out of training): {', '.join(const) if const else 'none'}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("fields")
def fields(
    folder: bool = typer.Option(False, "--folder", help="The contract columns a folder mapping (data import) fills."),
) -> None:
    """Print every field a mapping can name: table, type, unit, and required or its default."""
    from rich.table import Table

    if folder:
        from telco_nbo.data.folder_import import folder_fields_frame

        frame = folder_fields_frame()
        title = "contract columns of a folder mapping (tables.<table>.columns: column -> your column)"
    else:
        from telco_nbo.data.mapping import fields_frame

        frame = fields_frame()
        title = "mappable fields of a flat mapping (columns: field -> your column; defaults: field -> value)"
    table = Table(title=title, title_justify="left")
    for col in frame.columns:
        table.add_column(col)
    for row in frame.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    out.print(table)
    out.print(
        "Columns a mapping does not name"
        + (" (in the accounts file)" if folder else "")
        + " are kept as typed account features account_x_<name> "
        "(numeric or categorical) unless constant, empty, an identifier or free text.",
        highlight=False, soft_wrap=True,
    )


@app.command("suggest-mapping")
def suggest_mapping_cmd(
    path: Path = typer.Argument(..., help="A flat table, one row per customer (CSV or Parquet)."),
    target: str = typer.Option(..., "--target", "-t", help="The churn column."),
    out_file: Path = typer.Option(..., "--out", "-o", help="The mapping YAML to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Write a draft mapping from the table's column names, types and values (it imports as is)."""
    with user_errors():
        from telco_nbo.data.importers import read_flat_file
        from telco_nbo.data.suggest import mapping_yaml, suggest_mapping
        from telco_nbo.errors import ConfigError

        if out_file.exists() and not overwrite:
            raise ConfigError(f"{out_file} exists; choose another file or pass --overwrite")
        flat = read_flat_file(path)
        draft = suggest_mapping(flat, target, name=path.stem)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(mapping_yaml(draft), encoding="utf-8")
        n_map = len(draft["columns"])
        out.print(
            f"[green]wrote[/] {out_file}: {n_map} column(s) mapped to fields, {len(draft['passthrough'])} passed "
            f"through, {len(draft['drop'])} dropped",
            highlight=False, soft_wrap=True,
        )
        for note in draft["_notes"]:
            out.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


@app.command("import")
def import_dir(
    path: Path = typer.Argument(..., help="A folder of an operator's tables (CSV or Parquet files)."),
    mapping: Path = typer.Option(..., "--mapping", "-m", help="The folder mapping YAML (per table: file, "
                                 "columns, values, units, defaults)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="The data folder to create."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out folder."),
) -> None:
    """Map a folder of tables (households, accounts, lines, usage, tickets, ...) into a data folder.

    Tables you lack are allowed; nothing is written unless every table is valid.
    """
    with user_errors():
        from telco_nbo.data.folder_import import import_folder, load_folder_mapping
        from telco_nbo.data.io import row_counts, write_world

        spec = load_folder_mapping(mapping)
        world = import_folder(path, spec)
        written = write_world(world, out_dir, overwrite=overwrite)
        counts = row_counts(world.tables)
        out.print(
            "[green]imported[/] " + ", ".join(f"{n:,} {t}" for t, n in counts.items() if n)
            + f" ({world.meta['n_churned']:,} churned) as of {world.meta['as_of']} -> {written}",
            highlight=False, soft_wrap=True,
        )
        print_import_report(world)
