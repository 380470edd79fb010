"""Thin training entry point (used by ``MLproject``): ``python training/train.py MODEL --data DIR ...``.

Same arguments as ``telco-nbo train``. Two things only MLproject needs are handled here:
an empty ``--tracking-uri`` (MLproject parameters cannot be omitted) means "the store ``mlflow run``
itself logs to" (``MLFLOW_TRACKING_URI``), and when started by ``mlflow run`` the project's run is
tagged with the ids of the training runs it produced.
"""

from __future__ import annotations

import os
import sys


def _argv(argv: list[str]) -> list[str]:
    out: list[str] = []
    it = iter(range(len(argv)))
    skip = False
    for i in it:
        if skip:
            skip = False
            continue
        if argv[i] in ("--tracking-uri", "--optuna-storage", "--params", "--as-of") and i + 1 < len(argv) and argv[i + 1] == "":
            skip = True  # an empty value = not given
            continue
        if argv[i] == "--trials" and i + 1 < len(argv):
            # MLproject passes numbers as floats ("5.0").
            out += ["--trials", str(int(float(argv[i + 1])))]
            skip = True
            continue
        out.append(argv[i])
    if "--tracking-uri" not in out and os.environ.get("MLFLOW_TRACKING_URI"):
        out += ["--tracking-uri", os.environ["MLFLOW_TRACKING_URI"]]
    return out


def main(argv: list[str] | None = None) -> int:
    """Run ``telco-nbo train`` with ``argv``; return its exit code."""
    from telco_nbo.cli import app

    args = _argv(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=["train", *args], standalone_mode=False)
    except SystemExit as exc:  # typer.Exit from user errors
        return int(exc.code or 0)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.Exit):
            return int(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    _tag_project_run(args)
    return 0


def _tag_project_run(args: list[str]) -> None:
    """Under ``mlflow run``: record on the project run which training runs it produced."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not run_id or not uri:
        return
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    start = client.get_run(run_id).info.start_time
    for exp in client.search_experiments(filter_string="name LIKE 'telco-%'"):
        for run in client.search_runs([exp.experiment_id], filter_string=f"attributes.start_time >= {start}"):
            if "telco_nbo.model_kind" in run.data.tags and "mlflow.parentRunId" not in run.data.tags:
                client.set_tag(run_id, f"telco_nbo.trained.{exp.name}", run.info.run_id)


if __name__ == "__main__":
    sys.exit(main())
