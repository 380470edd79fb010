"""The ``telco-nbo`` command-line app.

Each command group lives in its own module and registers itself here. Heavy libraries (xgboost,
mlflow, bentoml, evidently) are imported inside the commands, so ``telco-nbo --help`` is instant.
"""

from __future__ import annotations

import typer

from telco_nbo.cli import _common
from telco_nbo.cli import data as _data
from telco_nbo.cli import data_generate as _data_generate  # noqa: F401
from telco_nbo.cli import data_import as _data_import  # noqa: F401
from telco_nbo.cli import demo as _demo
from telco_nbo.cli import evaluate as _evaluate
from telco_nbo.cli import monitor as _monitor
from telco_nbo.cli import promote as _promote
from telco_nbo.cli import rank as _rank
from telco_nbo.cli import readout as _readout
from telco_nbo.cli import train as _train

app = typer.Typer(
    name="telco-nbo",
    help="Telecom retention and cross-sell: data, models, next-best offers, A/B readouts, monitoring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=_common.AppGroup,
)
app.callback()(_common.configure_output)
app.add_typer(_data.app, name="data")
_demo.register(app)
_evaluate.register(app)
_monitor.register(app)
_promote.register(app)
_rank.register(app)
_readout.register(app)
from telco_nbo.cli import serve as _serve  # noqa: E402

_serve.register(app)
_train.register(app)


def main() -> None:  # pragma: no cover - console entry
    """Run the app (used by ``python -m telco_nbo``)."""
    app()
