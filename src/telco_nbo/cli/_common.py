"""Helpers shared by the CLI modules: error reporting and progress bars."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from telco_nbo.errors import TelcoNboError

#: Exit codes of every command. 1 is reserved for "a check failed" (monitor, readout, promote
#: --fail-if-refused) so that a scheduler never reads a crash as drift.
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 3
EXIT_INTERRUPTED = 130

# Piped output (CI logs, `| tee`) would otherwise wrap tables at 80 columns.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
out = Console(width=None if sys.stdout.isatty() else 140)


@contextlib.contextmanager
def steps(total: int, first: str, *, on: Console | None = None) -> Iterator[Callable[[str], None]]:
    """A progress bar over a command's long steps (spinner, step i of n, elapsed time), on stderr.

    Yields ``step(description)``: call it when the next step starts (``step.describe(text)`` changes
    the text within a step, e.g. an Optuna trial count). The bar is transient and
    drawn only on a terminal (a CI log gets the results, not redraws); results printed to stdout
    meanwhile appear above it.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=on or console, transient=True) as bar:
        task = bar.add_task(first, total=total)
        started = [False]

        def step(description: str) -> None:
            if started[0]:
                bar.update(task, advance=1, description=description)
            else:
                bar.update(task, description=description)
                started[0] = True

        # Within a step: a new description without advancing (e.g. "trial 3/20").
        step.describe = lambda description: bar.update(task, description=description)  # type: ignore[attr-defined]
        yield step
        bar.update(task, completed=total)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`TelcoNboError` into a red message and exit code 2.

    Anything else propagates: it is a bug and its traceback is wanted.
    """
    try:
        yield
    except TelcoNboError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_BAD_INPUT) from None


class AppGroup(TyperGroup):
    """The root command group: an unexpected exception exits 3 with its traceback, never 1.

    Python and Click would exit 1 on an uncaught exception and on Ctrl-C, the code ``monitor`` and
    ``readout`` use for a failed check; a scheduler would then read a bug as drift. Every
    sub-command runs inside this ``invoke``, so the mapping holds for all of them.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        _plain_metavars(self)

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; map a bug to exit 3 and an interrupt to exit 130."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]", highlight=False)
            raise typer.Exit(code=EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            # `telco-nbo ... | head`: the reader left; nothing to report.
            raise typer.Exit(code=0) from None
        except Exception as exc:
            # Exit codes, usage errors (exit 2 with Click's message) and aborts are Click's or
            # Typer's own control flow (Typer vendors a copy of Click, so match by module).
            if type(exc).__module__.split(".")[0] in ("typer", "click") or isinstance(
                exc, (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException, click.Abort)
            ):
                raise
            console.print_exception(show_locals=False)
            console.print(
                "[bold red]internal error[/] (a bug, not a failed check): please report it with the traceback above.",
                highlight=False,
            )
            raise typer.Exit(code=EXIT_INTERNAL_ERROR) from None


def _plain_metavars(command: click.Command) -> None:
    """Name every value in ``--help`` the way people write it, not by its Python type.

    Typer prints ``<str>``, ``<path>``, ``<list[str]>`` and ``{model}`` by default; an explicit
    ``metavar`` wins, so each parameter without one gets ``NAME`` (the parameter's own name in
    capitals: ``--data DATA``, ``MODEL``) and flags get none. Applied once when the app is built.
    """
    params = list(getattr(command, "params", []))
    with contextlib.suppress(Exception):  # --help itself is made lazily, from a context
        params.append(command.get_help_option(_context(command)))
    for param in params:
        if param is None:
            continue
        if getattr(param, "param_type_name", "") == "argument":
            # An argument's type column ignores its metavar; its help text says what it takes.
            param.display_type_rich = lambda ctx: None  # noqa: ARG005
            label = (param.name or "value").upper()
            param._usage_display_name = (lambda label=label, required=param.required: label if required else f"[{label}]")
        if getattr(param, "metavar", "set") is not None:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "is_bool_flag", False):
            param.metavar = ""
            continue
        longest = max((o for o in param.opts if o.startswith("--")), key=len, default=param.name or "value")
        param.metavar = longest.lstrip("-").replace("-", "_").upper() + ("..." if getattr(param, "multiple", False) else "")
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)


def _context(command: click.Command) -> object:
    """A bare context of ``command`` (Typer's own Click copy), enough to build its --help option."""
    from typer import _click as vendored

    return vendored.Context(command)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("telco-nbo")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
            v = "unknown (not installed)"
        out.print(f"telco-nbo {v}", highlight=False)
        raise typer.Exit()


def configure_output(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show library logs (Optuna trials, MLflow)."),
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Keep the terminal for results: library chatter is hidden unless ``--verbose``.

    Runs before every command (not at import), so importing the package stays side-effect free.
    """
    import logging
    import os
    import warnings

    # MLflow 3 and BentoML phone home with usage telemetry by default; a user can opt back in by
    # setting these variables to "false" themselves.
    for var in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "BENTOML_DO_NOT_TRACK"):
        os.environ.setdefault(var, "true")
    if verbose:
        return
    # MLflow draws a progress bar per artifact download and warns about int columns in every
    # inferred signature; neither tells a CLI user anything.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow configures its own loggers at INFO when it is imported (after this runs, since the
    # commands import it lazily), so setting the level here would be undone; its variable is read
    # at that import. It hides "Creating initial MLflow database tables..." and the like.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # numpy's "invalid value encountered" / "Mean of empty slice" come from all-NaN columns the
    # reports already show as missing; they say nothing a user can act on.
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    # Evidently's classification presets compute precision at a 0.5 cut-off that a churn score
    # with a 5 % base rate never reaches; sklearn then warns once per report.
    warnings.filterwarnings("ignore", message=r".*is ill-defined and being set to 0\.0.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("mlflow", "alembic", "optuna", "bentoml", "distributed", "evidently"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Optuna resets its own logger to INFO when it is first imported; telco_nbo.tuning reads this
    # flag when it creates a study (also in Dask workers, which inherit the environment).
    os.environ.setdefault("TELCO_NBO_QUIET", "1")

